/* f-DPG (Go et al. 2023): minimise D_f(pi || p) = E_p[f(pi/p)], whose gradient is
 * E_pi[f'(t) grad log pi] with t = pi/p, estimated on q-samples as
 * w = (pi/q) (-f'(t) - b). Everything goes through log t = log pi - log P + log Z_hat,
 * which is +inf where P = 0; each -f' below has its limit there. */
#include "objective.h"

#include <math.h>

static const char *divergence_name(int32_t d) {
    switch (d) {
    case KLC_DIVERGENCE_FORWARD_KL:
        return "fdpg_forward_kl";
    case KLC_DIVERGENCE_REVERSE_KL:
        return "fdpg_reverse_kl";
    case KLC_DIVERGENCE_JS:
        return "fdpg_js";
    case KLC_DIVERGENCE_TV:
        return "fdpg_tv";
    default:
        return "fdpg_chi2";
    }
}

/* -f'(t) from log t, for the divergences whose -f' is bounded where pi/q is not. */
static double neg_fprime(int32_t d, double lt) {
    switch (d) {
    case KLC_DIVERGENCE_REVERSE_KL:
        return -lt - 1.0;
    case KLC_DIVERGENCE_JS:
        /* log(2t/(1+t)) = log 2 - log(1 + 1/t) */
        return -0.5 * (M_LN2 - klc_softplus(-lt));
    default:
        return lt > 0 ? -0.5 : lt < 0 ? 0.5 : 0.0; /* TV */
    }
}

/* pseudo[i] = (pi/q)(-f'(t)) and ratio[i] = pi/q. */
static int pseudo_rewards(const klc_builtin *s, const klc_step_view *v, double *pseudo,
                          double *ratio) {
    const int32_t d = s->o.divergence;
    for (int32_t i = 0; i < v->n_seq; i++) {
        if (d == KLC_DIVERGENCE_REVERSE_KL && v->logP[i] == -INFINITY)
            return klc_fail(KLC_ERR_UNSUPPORTED,
                            "objective '%s': sequence %d has log P = -inf (a pointwise target "
                            "rules it out), where the reverse KL(pi||p) is infinite and has no "
                            "gradient; use the forward KL (DPG/GDC++), JS, TV or chi-square",
                            divergence_name(d), i);
        const double lt = v->logpi[i] - v->logP[i] + klc_view_log_z(v, i);
        const double log_ratio = v->logpi[i] - v->logq[i];
        ratio[i] = exp(log_ratio);
        /* The forward KL's and chi-square's 1/t and t^-2 are unbounded: their product with
         * pi/q is formed in log space, so that a tiny pi never gives 0 * inf. */
        if (d == KLC_DIVERGENCE_FORWARD_KL)
            pseudo[i] = exp(v->logP[i] - v->logq[i] - klc_view_log_z(v, i)); /* p/q */
        else if (d == KLC_DIVERGENCE_CHI2)
            pseudo[i] = exp(log_ratio - 2.0 * lt) - ratio[i]; /* (pi/q)(t^-2 - 1) */
        else
            pseudo[i] = ratio[i] * neg_fprime(d, lt);
    }
    return KLC_OK;
}

static int fdpg_weights(void *self, const klc_step_view *v, double *w) {
    klc_builtin *s = self;
    const int32_t n = v->n_seq;
    double *ratio = klc_builtin_scratch(s, 2 * (size_t)n);
    if (!ratio) return KLC_ERR_OUT_OF_MEMORY;
    double *loo = ratio + n;
    KLC_TRY(pseudo_rewards(s, v, w, ratio));
    if (s->o.baseline == KLC_BASELINE_MOVING_AVERAGE) {
        const double b = klc_baseline_mean(&s->base, 0);
        for (int32_t i = 0; i < n; i++) w[i] -= ratio[i] * b;
    } else if (s->o.baseline == KLC_BASELINE_LEAVE_ONE_OUT) {
        klc_leave_one_out(n, w, loo);
        for (int32_t i = 0; i < n; i++) w[i] -= ratio[i] * loo[i];
    }
    return KLC_OK;
}

static int fdpg_after_step(void *self, const klc_step_view *v, klc_metrics *m) {
    klc_builtin *s = self;
    const int32_t n = v->n_seq;
    double *pseudo = klc_builtin_scratch(s, 2 * (size_t)n);
    if (!pseudo) return KLC_ERR_OUT_OF_MEMORY;
    KLC_TRY(pseudo_rewards(s, v, pseudo, pseudo + n));
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += pseudo[i];
    if (m) {
        KLC_TRY(klc_metrics_set(m, "pseudo_reward", sum / n));
        if (s->o.baseline == KLC_BASELINE_MOVING_AVERAGE)
            KLC_TRY(klc_metrics_set(m, "baseline", klc_baseline_mean(&s->base, 0)));
    }
    const double count = n;
    return klc_baseline_push(&s->base, &s->alloc, 1, &sum, &count);
}

void klc_fdpg_ops(const klc_objective_options *o, klc_objective_ops *ops) {
    *ops = (klc_objective_ops){.name = divergence_name(o->divergence),
                               .needs = KLC_NEED_TARGET | KLC_NEED_PROPOSAL_LOGP |
                                        KLC_NEED_POLICY_LOGP | KLC_NEED_FULL_SUPPORT,
                               .weights = fdpg_weights,
                               .after_step = fdpg_after_step};
}
