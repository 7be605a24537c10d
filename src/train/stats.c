/* The metrics of one batch: constraint satisfaction, features, rewards and the
 * importance-sampled divergences (ALGORITHMS.md section 3). */
#include "sampler/batch.h"
#include "trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int tr_metric(klc_metrics *m, const char *prefix, const char *name, double value) {
    char full[KLC_METRICS_NAME_MAX];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return klc_metrics_set(m, full, value);
}

static int feature_means(klc_trainer *t, const klc_batch *b, const char *prefix) {
    int32_t nt = klc_target_num_terms(t->target);
    for (int32_t k = 0; k < nt; k++) {
        klc_term_info ti;
        ti.version = KLC_TERM_INFO_VERSION;
        KLC_TRY(klc_target_term_info(t->target, k, &ti));
        if (ti.phi_offset < 0) continue;
        for (int32_t d = 0; d < ti.dim; d++) {
            const double mean = tr_context_mean(t, b->phi + ti.phi_offset + d, (size_t)t->phi_dim);
            char name[KLC_METRICS_NAME_MAX];
            if (ti.dim > 1)
                snprintf(name, sizeof name, "phi.%s.%d", ti.name, d);
            else
                snprintf(name, sizeof name, "phi.%s", ti.name);
            KLC_TRY(tr_metric(t->m, prefix, name, mean));
        }
    }
    return KLC_OK;
}

/* Divergences to p, which need samples with full support and a finite Z estimate of every
 * context present; each is the mean over contexts of the context's estimate. */
static int divergences(klc_trainer *t, tr_batch *tb, const double *logpi, const char *prefix) {
    klc_batch *b = tb->b;
    const double *lpi = logpi ? logpi : b->logq;
    double ess, share, v;
    KLC_TRY(tr_context_ess(t, b, &ess, &share));
    KLC_TRY(tr_metric(t->m, prefix, "ess", ess));
    KLC_TRY(tr_metric(t->m, prefix, "max_weight_share", share));
    KLC_TRY(tr_context_estimate(t, b, lpi, klc_estimate_kl_target, &v));
    if (isnan(v)) return KLC_OK;
    KLC_TRY(tr_metric(t->m, prefix, "kl_p_pi", v));
    KLC_TRY(tr_context_estimate(t, b, lpi, klc_estimate_tv_target, &v));
    KLC_TRY(tr_metric(t->m, prefix, "tv_p_pi", v));
    if (logpi) {
        KLC_TRY(tr_context_estimate(t, b, b->logq, klc_estimate_kl_target, &v));
        KLC_TRY(tr_metric(t->m, prefix, "kl_p_q", v));
    }
    return KLC_OK;
}

/* Every mean below is over contexts (tr_context_mean); tb->scratch holds the
 * per-sequence values of one metric at a time. */
int tr_batch_metrics(klc_trainer *t, tr_batch *tb, const double *logpi, const char *prefix) {
    klc_batch *b = tb->b;
    const int32_t n = b->n_seq;
    const int full = (b->flags & KLC_BATCH_FULL_SUPPORT) != 0;
    double *v = tb->scratch;
    tr_group(t, b);
    for (int32_t i = 0; i < n; i++) v[i] = tb->gen_lengths[i];
    KLC_TRY(tr_metric(t->m, prefix, "length_mean", tr_context_mean(t, v, 1)));
    if (t->target && t->has_pointwise) {
        for (int32_t i = 0; i < n; i++) v[i] = tb->b_ind[i];
        KLC_TRY(tr_metric(t->m, prefix, "b_mean", tr_context_mean(t, v, 1)));
    }
    if (t->target) KLC_TRY(feature_means(t, b, prefix));
    if (t->o.reward || t->reward_col >= 0)
        KLC_TRY(tr_metric(t->m, prefix, "reward_mean", tr_context_mean(t, tb->reward, 1)));
    if (!logpi || full) {
        /* KL(pi||a) = E_pi[log pi - log a]; on samples of q each log-ratio is weighted by
         * pi/q so that the mean is over pi. */
        for (int32_t i = 0; i < n; i++)
            v[i] = logpi ? exp(logpi[i] - b->logq[i]) * (logpi[i] - b->loga[i])
                         : b->logq[i] - b->loga[i];
        KLC_TRY(tr_metric(t->m, prefix, "kl_pi_a", tr_context_mean(t, v, 1)));
    }
    if (t->target && full) KLC_TRY(divergences(t, tb, logpi, prefix));
    return KLC_OK;
}
