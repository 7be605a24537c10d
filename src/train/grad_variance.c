/* The trace of the per-sample gradient covariance: one forward-backward per sequence with
 * the whole batch's coefficients scaled to that sequence alone, accumulating sum g_i
 * (floats, in a buffer the size of the gradient block) and sum ||g_i||^2 (double), so
 * that 32 samples cost one extra gradient-sized buffer, not 32. */
#include "grad_variance.h"

#include "sampler/batch.h"

#include <string.h>

int tr_grad_var_create(const klc_alloc_ctx *alloc, size_t n_params, int32_t n_seq, int32_t max_len,
                       tr_grad_var **out) {
    const size_t coeffs = (size_t)n_seq * (size_t)max_len, row = (size_t)max_len;
    const size_t bytes = sizeof(tr_grad_var) + (n_params + 2 * coeffs + 2 * row) * sizeof(float);
    tr_grad_var *g = klc_alloc_zeroed(alloc, bytes);
    if (!g) return KLC_ERR_OUT_OF_MEMORY;
    g->n_params = n_params;
    g->n_seq = n_seq;
    g->max_len = max_len;
    g->sum = (float *)(g + 1);
    g->on = g->sum + n_params;
    g->sm = g->on + coeffs;
    g->on_row = g->sm + coeffs;
    g->sm_row = g->on_row + row;
    g->bytes = bytes;
    *out = g;
    return KLC_OK;
}

void tr_grad_var_destroy(const klc_alloc_ctx *alloc, tr_grad_var *g) {
    if (g) klc_free(alloc, g, g->bytes);
}

int tr_grad_variance(tr_grad_var *g, klc_objective *obj, klc_model *model,
                     const klc_step_view *view, const klc_seqs *seqs, int32_t n, double *trace,
                     double *mean_sq) {
    const int32_t N = seqs->n_seq, T = seqs->max_len;
    if (n < 2 || n > N || N > g->n_seq || T != g->max_len)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "gradient variance: %d samples of a batch of %d (buffers for %d x %d, "
                        "batch max_len %d)",
                        n, N, g->n_seq, g->max_len, T);
    size_t n_params = 0;
    float *grads = klc_model_grads(model, &n_params);
    if (!grads || n_params != g->n_params)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "gradient variance: the model has %zu parameters, the buffers %zu",
                        n_params, g->n_params);
    /* [N*T] coefficients of L with masses 1/N; times N they are sequence i's alone. */
    KLC_TRY(klc_objective_token_coeffs(obj, view, g->on, g->sm));
    memset(g->sum, 0, n_params * sizeof(float));
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    double sum_sq = 0;
    for (int32_t i = 0; i < n; i++) {
        for (int32_t t = 0; t < T; t++) {
            g->on_row[t] = g->on[(size_t)i * T + t] * (float)N;
            g->sm_row[t] = g->sm[(size_t)i * T + t] * (float)N;
        }
        const klc_seqs one = {1,
                              T,
                              seqs->tokens + (size_t)i * T,
                              seqs->lengths + i,
                              seqs->score_from ? seqs->score_from + i : NULL,
                              seqs->sample_ids ? seqs->sample_ids + i : NULL};
        KLC_TRY(klc_model_zero_grads(model));
        KLC_TRY(klc_model_forward_backward(model, &one, &fo, g->on_row, g->sm_row));
        double sq = 0;
#pragma omp parallel for reduction(+ : sq) schedule(static)
        for (size_t k = 0; k < n_params; k++) {
            sq += (double)grads[k] * grads[k];
            g->sum[k] += grads[k];
        }
        sum_sq += sq;
    }
    double norm_sq = 0;
#pragma omp parallel for reduction(+ : norm_sq) schedule(static)
    for (size_t k = 0; k < n_params; k++) norm_sq += (double)g->sum[k] * g->sum[k];
    *trace = (sum_sq - norm_sq / n) / (n - 1);
    *mean_sq = norm_sq / ((double)n * n);
    return KLC_OK;
}

int tr_grad_variance_step(klc_trainer *t, const klc_step_view *view) {
    klc_seqs seqs;
    KLC_TRY(klc_batch_seqs(t->train.b, &seqs));
    const int32_t n =
        t->o.grad_variance_samples < seqs.n_seq ? t->o.grad_variance_samples : seqs.n_seq;
    double trace = 0, mean_sq = 0;
    KLC_TRY(tr_grad_variance(t->gvar, t->obj, t->policy, view, &seqs, n, &trace, &mean_sq));
    KLC_TRY(klc_metrics_set(t->m, "grad_variance", trace));
    return klc_metrics_set(t->m, "grad_mean_sq_norm", mean_sq);
}
