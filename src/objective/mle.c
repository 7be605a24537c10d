/* Maximum likelihood (pretraining, behaviour cloning): w = 1, the mean negative
 * log-likelihood per sequence; or, with token_mean, per generated token of the batch. */
#include "objective.h"

static int mle_weights(void *self, const klc_step_view *v, double *w) {
    (void)self;
    for (int32_t i = 0; i < v->n_seq; i++) w[i] = 1.0;
    return KLC_OK;
}

/* The library multiplies by 1/N afterwards, so N/T per token makes L the mean over the
 * T generated tokens of the whole batch (never of a micro-batch). */
static int mle_token_coeffs(void *self, const klc_step_view *v, float *on, float *sm) {
    (void)self;
    int64_t tokens = 0;
    for (int32_t i = 0; i < v->n_seq; i++) tokens += v->lengths[i] - klc_view_from(v, i);
    if (tokens == 0) return KLC_OK;
    const float c = (float)((double)v->n_seq / (double)tokens);
    for (int32_t i = 0; i < v->n_seq; i++)
        for (int32_t t = klc_view_from(v, i) - 1; t < v->lengths[i] - 1; t++) {
            on[(size_t)i * v->max_len + t] = -c;
            sm[(size_t)i * v->max_len + t] = c;
        }
    return KLC_OK;
}

void klc_mle_ops(const klc_objective_options *o, klc_objective_ops *ops) {
    if (o->token_mean)
        *ops = (klc_objective_ops){.name = "mle_token_mean", .token_coeffs = mle_token_coeffs};
    else
        *ops = (klc_objective_ops){.name = "mle", .weights = mle_weights};
}
