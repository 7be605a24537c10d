/* KL-control per token (Ziegler's implementation): every generated token t earns
 * r_t = -beta (log pi_t - log a_t), the last one r(x) as well, and each token's
 * coefficient is its reward-to-go G_t = sum_{s>=t} gamma^(s-t) r_s minus a baseline for
 * its position j = t - (score_from - 1) among the generated tokens. With gamma = 1 the
 * expectation equals the sequence-level gradient: E[r_s grad log pi_t] = 0 for s < t. */
#include "objective.h"

#include <string.h>

/* Reward-to-go [n_seq*max_len] at the generated positions; per-position sums and counts
 * [max_len] of the batch; *kl the batch mean of sum_t (log pi_t - log a_t). */
static void reward_to_go(const klc_builtin *s, const klc_step_view *v, double *rtg, double *pos_sum,
                         double *pos_count, double *kl) {
    const int32_t T = v->max_len;
    memset(pos_sum, 0, (size_t)T * sizeof *pos_sum);
    memset(pos_count, 0, (size_t)T * sizeof *pos_count);
    double kl_sum = 0;
    for (int32_t i = 0; i < v->n_seq; i++) {
        const int32_t first = klc_view_from(v, i) - 1, last = v->lengths[i] - 2;
        const float *lp = v->logpi_tok + (size_t)i * T, *la = v->loga_tok + (size_t)i * T;
        double g = 0;
        for (int32_t t = last; t >= first; t--) {
            kl_sum += (double)lp[t] - (double)la[t];
            g = klc_kl_token_reward(v, s->beta, i, t) + s->o.gamma * g;
            rtg[(size_t)i * T + t] = g;
            pos_sum[t - first] += g;
            pos_count[t - first] += 1;
        }
    }
    *kl = kl_sum / v->n_seq;
}

static int kl_token_coeffs(void *self, const klc_step_view *v, float *on, float *sm) {
    klc_builtin *s = self;
    const int32_t T = v->max_len;
    double *rtg = klc_builtin_scratch(s, (size_t)v->n_seq * T + 2 * (size_t)T);
    if (!rtg) return KLC_ERR_OUT_OF_MEMORY;
    double *pos_sum = rtg + (size_t)v->n_seq * T, *pos_count = pos_sum + T, kl;
    reward_to_go(s, v, rtg, pos_sum, pos_count, &kl);
    for (int32_t i = 0; i < v->n_seq; i++) {
        const int32_t first = klc_view_from(v, i) - 1;
        for (int32_t t = first; t < v->lengths[i] - 1; t++) {
            const size_t k = (size_t)i * T + t;
            const int32_t j = t - first;
            double b = 0;
            if (s->o.baseline == KLC_BASELINE_MOVING_AVERAGE)
                b = klc_baseline_mean(&s->base, j);
            else if (s->o.baseline == KLC_BASELINE_LEAVE_ONE_OUT && pos_count[j] > 1)
                b = (pos_sum[j] - rtg[k]) / (pos_count[j] - 1);
            const double a = rtg[k] - b;
            on[k] = (float)-a;
            sm[k] = (float)a;
        }
    }
    return KLC_OK;
}

static int kl_token_after_step(void *self, const klc_step_view *v, klc_metrics *m) {
    klc_builtin *s = self;
    const int32_t T = v->max_len;
    double *rtg = klc_builtin_scratch(s, (size_t)v->n_seq * T + 2 * (size_t)T);
    if (!rtg) return KLC_ERR_OUT_OF_MEMORY;
    double *pos_sum = rtg + (size_t)v->n_seq * T, *pos_count = pos_sum + T, kl, reward = 0;
    reward_to_go(s, v, rtg, pos_sum, pos_count, &kl);
    for (int32_t i = 0; i < v->n_seq; i++) reward += v->reward[i];
    if (m) {
        KLC_TRY(klc_metrics_set(m, "reward", reward / v->n_seq));
        if (s->o.baseline == KLC_BASELINE_MOVING_AVERAGE)
            KLC_TRY(klc_metrics_set(m, "baseline", klc_baseline_mean(&s->base, 0)));
    }
    KLC_TRY(klc_baseline_push(&s->base, &s->alloc, T, pos_sum, pos_count));
    return klc_kl_adapt(s, kl, v->n_seq, m);
}

void klc_kl_token_ops(const klc_objective_options *o, klc_objective_ops *ops) {
    (void)o;
    *ops = (klc_objective_ops){.name = "kl_control_token",
                               .needs = KLC_NEED_REWARD | KLC_NEED_ON_POLICY | KLC_NEED_BASE_LOGP |
                                        KLC_NEED_POLICY_LOGP | KLC_NEED_TOKEN_LOGP,
                               .token_coeffs = kl_token_coeffs,
                               .after_step = kl_token_after_step};
}
