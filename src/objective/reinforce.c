/* Reward maximisation at the sequence level: REINFORCE, w = R - b, and KL-control
 * (Ziegler), the same with R = r - beta (log pi - log a). Both are on-policy. */
#include "objective.h"

#include <math.h>

/* R per sequence, with the beta the step uses. */
static void returns(const klc_builtin *s, const klc_step_view *v, double *R) {
    const int kl = s->o.kind == KLC_OBJECTIVE_KL_CONTROL;
    for (int32_t i = 0; i < v->n_seq; i++)
        R[i] = v->reward[i] - (kl ? s->beta * (v->logpi[i] - v->loga[i]) : 0.0);
}

static int rm_weights(void *self, const klc_step_view *v, double *w) {
    klc_builtin *s = self;
    const int32_t n = v->n_seq;
    returns(s, v, w);
    if (s->o.baseline == KLC_BASELINE_MOVING_AVERAGE) {
        const double b = klc_baseline_mean(&s->base, 0);
        for (int32_t i = 0; i < n; i++) w[i] -= b;
    } else if (s->o.baseline == KLC_BASELINE_LEAVE_ONE_OUT) {
        double *loo = klc_builtin_scratch(s, (size_t)n);
        if (!loo) return KLC_ERR_OUT_OF_MEMORY;
        klc_leave_one_out(n, w, loo);
        for (int32_t i = 0; i < n; i++) w[i] -= loo[i];
    }
    return KLC_OK;
}

int klc_kl_adapt(klc_builtin *s, double kl, int32_t n, klc_metrics *m) {
    if (m) {
        KLC_TRY(klc_metrics_set(m, "kl", kl));
        KLC_TRY(klc_metrics_set(m, "beta", s->beta));
    }
    if (!s->o.adaptive_beta) return KLC_OK;
    if (!isfinite(kl))
        return klc_fail(KLC_ERR_NUMERIC, "adaptive beta: the step's KL(pi||a) is %g", kl);
    double e = kl / s->o.kl_target - 1.0;
    e = e < -0.2 ? -0.2 : e > 0.2 ? 0.2 : e;
    s->beta *= 1.0 + e * (double)n / s->o.kl_horizon;
    return KLC_OK;
}

static int rm_after_step(void *self, const klc_step_view *v, klc_metrics *m) {
    klc_builtin *s = self;
    const int32_t n = v->n_seq;
    double *R = klc_builtin_scratch(s, (size_t)n);
    if (!R) return KLC_ERR_OUT_OF_MEMORY;
    returns(s, v, R);
    double sum = 0, reward = 0, kl = 0;
    for (int32_t i = 0; i < n; i++) {
        sum += R[i];
        reward += v->reward[i];
    }
    if (m) {
        KLC_TRY(klc_metrics_set(m, "reward", reward / n));
        if (s->o.baseline == KLC_BASELINE_MOVING_AVERAGE)
            KLC_TRY(klc_metrics_set(m, "baseline", klc_baseline_mean(&s->base, 0)));
    }
    const double count = n;
    KLC_TRY(klc_baseline_push(&s->base, &s->alloc, 1, &sum, &count));
    if (s->o.kind != KLC_OBJECTIVE_KL_CONTROL) return KLC_OK;
    for (int32_t i = 0; i < n; i++) kl += v->logpi[i] - v->loga[i];
    return klc_kl_adapt(s, kl / n, n, m);
}

void klc_reinforce_ops(const klc_objective_options *o, klc_objective_ops *ops) {
    (void)o;
    *ops = (klc_objective_ops){.name = "reinforce",
                               .needs = KLC_NEED_REWARD | KLC_NEED_ON_POLICY,
                               .weights = rm_weights,
                               .after_step = rm_after_step};
}

void klc_kl_control_ops(const klc_objective_options *o, klc_objective_ops *ops) {
    (void)o;
    *ops = (klc_objective_ops){.name = "kl_control",
                               .needs = KLC_NEED_REWARD | KLC_NEED_ON_POLICY | KLC_NEED_BASE_LOGP |
                                        KLC_NEED_POLICY_LOGP,
                               .weights = rm_weights,
                               .after_step = rm_after_step};
}
