/* One PPO minibatch: the clipped surrogate and the (clipped) value loss over its generated
 * tokens, and their gradients: per-token logit coefficients for the policy, a hidden-state
 * gradient and the value head's own gradient for the value loss. */
#include "ppo.h"

#include <math.h>
#include <string.h>

/* The work space of one micro-batch of r rows, carved from one block. */
typedef struct mb_work {
    int32_t *tokens, *lengths, *score_from; /* [r*T], [r], [r] */
    int64_t *ids;                           /* [r] */
    float *logp, *on, *sm;                  /* [r*T] each */
    float *hidden, *d_hidden;               /* [r*T*E] each */
} mb_work;

static size_t align64(size_t n) {
    return (n + 63) / 64 * 64;
}

static size_t carve(mb_work *w, char *base, int32_t r, int32_t T, int32_t E) {
    const size_t rt = (size_t)r * (size_t)T, rte = rt * (size_t)E;
    size_t at = 0;
#define KLC_CARVE(field, type, count)                                                              \
    do {                                                                                           \
        if (base) w->field = (type *)(base + at);                                                  \
        at += align64((count) * sizeof(type));                                                     \
    } while (0)
    KLC_CARVE(tokens, int32_t, rt);
    KLC_CARVE(lengths, int32_t, (size_t)r);
    KLC_CARVE(score_from, int32_t, (size_t)r);
    KLC_CARVE(ids, int64_t, (size_t)r);
    KLC_CARVE(logp, float, rt);
    KLC_CARVE(on, float, rt);
    KLC_CARVE(sm, float, rt);
    KLC_CARVE(hidden, float, rte);
    KLC_CARVE(d_hidden, float, rte);
#undef KLC_CARVE
    return at;
}

size_t klc_ppo_minibatch_bytes(int32_t rows, int32_t max_len, int32_t n_embd) {
    mb_work w;
    return carve(&w, NULL, rows, max_len, n_embd);
}

/* Copies rows[0..r) of the batch into contiguous sequences the model can read. */
static void gather(const klc_ppo_batch *b, const int32_t *rows, int32_t r, mb_work *w,
                   klc_seqs *seqs) {
    const int32_t T = b->max_len;
    for (int32_t j = 0; j < r; j++) {
        const int32_t i = rows[j];
        memcpy(w->tokens + (size_t)j * T, b->tokens + (size_t)i * T, (size_t)T * sizeof(int32_t));
        w->lengths[j] = b->lengths[i];
        w->score_from[j] = b->score_from ? b->score_from[i] : 1;
        w->ids[j] = b->sample_ids ? b->sample_ids[i] : i;
    }
    *seqs = (klc_seqs){r, T, w->tokens, w->lengths, w->score_from, w->ids};
}

/* V(h) = w . h + b for one position's hidden state h [n_embd]. */
static double head_value(const klc_ppo *p, const float *h) {
    double value = p->head[p->n_embd];
    for (int32_t e = 0; e < p->n_embd; e++) value += (double)p->head[e] * h[e];
    return value;
}

int klc_ppo_values(klc_ppo *p, klc_model *model, const klc_ppo_batch *b, int32_t rows, void *work,
                   double *values) {
    const int32_t T = b->max_len;
    mb_work w;
    carve(&w, work, rows, T, p->n_embd);
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.hidden = w.hidden;
    for (int32_t start = 0; start < b->n_seq; start += rows) {
        const int32_t r = b->n_seq - start < rows ? b->n_seq - start : rows;
        klc_seqs seqs = {r,
                         T,
                         b->tokens + (size_t)start * T,
                         b->lengths + start,
                         b->score_from ? b->score_from + start : NULL,
                         b->sample_ids ? b->sample_ids + start : NULL};
        KLC_TRY(klc_model_score(model, &seqs, &fo));
        for (int32_t j = 0; j < r; j++) {
            const int32_t i = start + j;
            for (int32_t t = klc_ppo_first(b->score_from, i); t < b->lengths[i] - 1; t++)
                values[(size_t)i * T + t] =
                    head_value(p, w.hidden + ((size_t)j * T + t) * p->n_embd);
        }
    }
    return KLC_OK;
}

static double clamp(double x, double lo, double hi) {
    return x < lo ? lo : x > hi ? hi : x;
}

/* One token's loss terms and their derivatives with respect to log pi and V. */
typedef struct token_terms {
    double pg, vf, d_logp, d_value;
    int clipped;
} token_terms;

static token_terms terms(const klc_objective_options *o, double logp, double old_logp, double adv,
                         double value, double old_value, double ret) {
    token_terms r;
    const double ratio = exp(logp - old_logp);
    const double pg1 = -adv * ratio;
    const double pg2 = -adv * clamp(ratio, 1.0 - o->ppo_clip, 1.0 + o->ppo_clip);
    r.clipped = pg2 > pg1;
    r.pg = r.clipped ? pg2 : pg1;
    /* Where the clipped term wins, the ratio is outside the interval and the term is
     * constant; inside it both terms are -A rho. */
    r.d_logp = r.clipped ? 0.0 : pg1;
    const double v1 = (value - ret) * (value - ret);
    r.vf = 0.5 * v1;
    r.d_value = value - ret;
    if (o->ppo_value_clip > 0) {
        const double c = o->ppo_value_clip, dv = value - old_value;
        const double vc = old_value + clamp(dv, -c, c);
        const double v2 = (vc - ret) * (vc - ret);
        if (v2 > v1) {
            r.vf = 0.5 * v2;
            r.d_value = fabs(dv) < c ? vc - ret : 0.0;
        }
    }
    return r;
}

static double generated_tokens(const klc_ppo_batch *b, const int32_t *rows, int32_t m) {
    double n = 0;
    for (int32_t j = 0; j < m; j++)
        n += b->lengths[rows[j]] - 1 - klc_ppo_first(b->score_from, rows[j]);
    return n;
}

/* Loss sums of a forwarded micro-batch, and with `backward` the coefficients, the hidden
 * gradient and the value head's gradient (scaled by 1/n_tok). */
static void micro_terms(klc_ppo *p, const klc_objective_options *o, const klc_ppo_batch *b,
                        const int32_t *rows, int32_t r, double n_tok, int backward, mb_work *w,
                        klc_ppo_sums *s) {
    const int32_t T = b->max_len, E = p->n_embd;
    const float *head = p->head;
    if (backward) {
        memset(w->on, 0, (size_t)r * T * sizeof(float));
        memset(w->sm, 0, (size_t)r * T * sizeof(float));
        memset(w->d_hidden, 0, (size_t)r * T * E * sizeof(float));
    }
    for (int32_t j = 0; j < r; j++) {
        const int32_t i = rows[j];
        for (int32_t t = klc_ppo_first(b->score_from, i); t < b->lengths[i] - 1; t++) {
            const size_t k = (size_t)j * T + t, g = (size_t)i * T + t;
            const float *h = w->hidden + k * E;
            const double value = head_value(p, h);
            const double d = (double)w->logp[k] - b->old_logp[g];
            const token_terms tt =
                terms(o, w->logp[k], b->old_logp[g], b->adv[g], value, b->old_values[g], b->ret[g]);
            s->pg_loss += tt.pg;
            s->vf_loss += tt.vf;
            s->clipped += tt.clipped;
            s->approx_kl += 0.5 * d * d;
            if (!backward) continue;
            /* dL/dlogits = dL/dlogp (onehot - softmax). */
            w->on[k] = (float)(tt.d_logp / n_tok);
            w->sm[k] = (float)(-tt.d_logp / n_tok);
            const double dv = o->ppo_vf_coef * tt.d_value / n_tok;
            float *dh = w->d_hidden + k * E;
            for (int32_t e = 0; e < E; e++) {
                dh[e] = (float)(dv * head[e]);
                p->head_grad[e] += (float)(dv * h[e]);
            }
            p->head_grad[E] += (float)dv;
        }
    }
}

int klc_ppo_minibatch(klc_ppo *p, const klc_objective_options *o, klc_model *model,
                      const klc_ppo_batch *b, const int32_t *rows, int32_t m, int32_t micro_batch,
                      int backward, void *work, klc_ppo_sums *sums) {
    memset(sums, 0, sizeof *sums);
    const double n_tok = generated_tokens(b, rows, m);
    sums->n_tok = n_tok;
    if (n_tok == 0) return KLC_OK;
    const int32_t mb = micro_batch > 0 && micro_batch < m ? micro_batch : m;
    mb_work w;
    carve(&w, work, mb, b->max_len, p->n_embd);
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.token_logprobs = w.logp;
    fo.hidden = w.hidden;
    for (int32_t start = 0; start < m; start += mb) {
        const int32_t r = m - start < mb ? m - start : mb;
        klc_seqs seqs;
        gather(b, rows + start, r, &w, &seqs);
        KLC_TRY(backward ? klc_model_forward(model, &seqs, &fo)
                         : klc_model_score(model, &seqs, &fo));
        micro_terms(p, o, b, rows + start, r, n_tok, backward, &w, sums);
        if (backward) KLC_TRY(klc_model_backward(model, &seqs, w.on, w.sm, w.d_hidden));
    }
    return KLC_OK;
}
