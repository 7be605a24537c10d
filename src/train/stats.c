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

static int feature_means(klc_trainer *t, const klc_batch *b, int32_t n, const char *prefix) {
    int32_t nt = klc_target_num_terms(t->target);
    for (int32_t k = 0; k < nt; k++) {
        klc_term_info ti;
        ti.version = KLC_TERM_INFO_VERSION;
        KLC_TRY(klc_target_term_info(t->target, k, &ti));
        if (ti.phi_offset < 0) continue;
        for (int32_t d = 0; d < ti.dim; d++) {
            double sum = 0;
            for (int32_t i = 0; i < n; i++)
                sum += b->phi[(size_t)i * t->phi_dim + ti.phi_offset + d];
            char name[KLC_METRICS_NAME_MAX];
            if (ti.dim > 1)
                snprintf(name, sizeof name, "phi.%s.%d", ti.name, d);
            else
                snprintf(name, sizeof name, "phi.%s", ti.name);
            KLC_TRY(tr_metric(t->m, prefix, name, sum / n));
        }
    }
    return KLC_OK;
}

/* Divergences to p, which need samples with full support and a finite Z estimate. */
static int divergences(klc_trainer *t, tr_batch *tb, int32_t n, const double *logpi,
                       const char *prefix) {
    klc_batch *b = tb->b;
    const double *lpi = logpi ? logpi : b->logq;
    double ess, share, v;
    KLC_TRY(klc_estimate_ess(n, b->logP, b->logq, &ess, &share));
    KLC_TRY(tr_metric(t->m, prefix, "ess", ess));
    KLC_TRY(tr_metric(t->m, prefix, "max_weight_share", share));
    const double log_z = klc_z_estimate_log_z(t->z, 0);
    if (!isfinite(log_z)) return KLC_OK;
    KLC_TRY(klc_estimate_kl_target(n, b->logP, b->logq, lpi, log_z, &v));
    KLC_TRY(tr_metric(t->m, prefix, "kl_p_pi", v));
    KLC_TRY(klc_estimate_tv_target(n, b->logP, b->logq, lpi, log_z, &v));
    KLC_TRY(tr_metric(t->m, prefix, "tv_p_pi", v));
    if (logpi) {
        KLC_TRY(klc_estimate_kl_target(n, b->logP, b->logq, b->logq, log_z, &v));
        KLC_TRY(tr_metric(t->m, prefix, "kl_p_q", v));
    }
    return KLC_OK;
}

int tr_batch_metrics(klc_trainer *t, tr_batch *tb, const double *logpi, const char *prefix) {
    klc_batch *b = tb->b;
    const int32_t n = b->n_seq;
    const int full = (b->flags & KLC_BATCH_FULL_SUPPORT) != 0;
    double len = 0;
    for (int32_t i = 0; i < n; i++) len += tb->gen_lengths[i];
    KLC_TRY(tr_metric(t->m, prefix, "length_mean", len / n));
    if (t->target && t->has_pointwise) {
        double s = 0;
        for (int32_t i = 0; i < n; i++) s += tb->b_ind[i];
        KLC_TRY(tr_metric(t->m, prefix, "b_mean", s / n));
    }
    if (t->target) KLC_TRY(feature_means(t, b, n, prefix));
    if (t->o.reward || t->reward_col >= 0) {
        double s = 0;
        for (int32_t i = 0; i < n; i++) s += tb->reward[i];
        KLC_TRY(tr_metric(t->m, prefix, "reward_mean", s / n));
    }
    if (!logpi) {
        double v;
        KLC_TRY(klc_estimate_kl_sampled(n, b->logq, b->loga, &v));
        KLC_TRY(tr_metric(t->m, prefix, "kl_pi_a", v));
    } else if (full) {
        /* Samples of q: weight each log-ratio by pi/q so that the mean is over pi. */
        double s = 0;
        for (int32_t i = 0; i < n; i++) s += exp(logpi[i] - b->logq[i]) * (logpi[i] - b->loga[i]);
        KLC_TRY(tr_metric(t->m, prefix, "kl_pi_a", s / n));
    }
    if (t->target && full) KLC_TRY(divergences(t, tb, n, logpi, prefix));
    return KLC_OK;
}
