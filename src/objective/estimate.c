/* Monte-Carlo estimates over arrays of sequence log-probabilities of q-samples
 * (ALGORITHMS.md sections 2 and 3). Importance weights stay in log space: each sum is
 * shifted by the largest log-weight, which cancels exactly in the formulas below. */
#include "objective.h"

#include <math.h>

static int check_n(const char *fn, int32_t n) {
    if (n < 1) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: n = %d must be >= 1", fn, n);
    return KLC_OK;
}

/* x must be finite (allow_neg_inf: or -inf). */
static int check(const char *fn, const char *name, const double *x, int32_t n, int allow_neg_inf) {
    if (!x) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, name);
    for (int32_t i = 0; i < n; i++)
        if (!isfinite(x[i]) && !(allow_neg_inf && x[i] == -INFINITY))
            return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: %s[%d] = %g must be finite%s", fn, name,
                            i, x[i], allow_neg_inf ? " or -inf" : "");
    return KLC_OK;
}

static int check_log_z(const char *fn, double log_z) {
    if (!isfinite(log_z))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: log_z = %g must be finite", fn, log_z);
    return KLC_OK;
}

static int check_out(const char *fn, const void *out) {
    if (!out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: NULL output", fn);
    return KLC_OK;
}

/* max_i(logP_i - logq_i), -inf when every P is 0. */
static double max_log_weight(int32_t n, const double *logP, const double *logq) {
    double mx = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (logP[i] - logq[i] > mx) mx = logP[i] - logq[i];
    return mx;
}

static double log_mean_weight(int32_t n, const double *logP, const double *logq) {
    const double mx = max_log_weight(n, logP, logq);
    if (mx == -INFINITY) return -INFINITY;
    double s = 0;
    for (int32_t i = 0; i < n; i++) s += exp(logP[i] - logq[i] - mx);
    return mx + log(s) - log((double)n);
}

int klc_estimate_log_z(int32_t n, const double *logP, const double *logq, double *out) {
    static const char fn[] = "klc_estimate_log_z";
    KLC_TRY(check_out(fn, out));
    KLC_TRY(check_n(fn, n));
    KLC_TRY(check(fn, "logP", logP, n, 1));
    KLC_TRY(check(fn, "logq", logq, n, 0));
    *out = log_mean_weight(n, logP, logq);
    return KLC_OK;
}

/* The checks shared by the estimators over (log P, log q, log m) with a Z estimate. */
static int check_target_args(const char *fn, int32_t n, const double *logP, const double *logq,
                             const char *m_name, const double *logm, double log_z,
                             const double *out) {
    KLC_TRY(check_out(fn, out));
    KLC_TRY(check_n(fn, n));
    KLC_TRY(check(fn, "logP", logP, n, 1));
    KLC_TRY(check(fn, "logq", logq, n, 0));
    KLC_TRY(check(fn, m_name, logm, n, 0));
    return check_log_z(fn, log_z);
}

int klc_estimate_proposal_criterion(int32_t n, const double *logP, const double *logq,
                                    const double *logpi, double log_z, double *out) {
    static const char fn[] = "klc_estimate_proposal_criterion";
    KLC_TRY(check_target_args(fn, n, logP, logq, "logpi", logpi, log_z, out));
    double s = 0;
    for (int32_t i = 0; i < n; i++)
        if (logP[i] != -INFINITY) s += exp(logP[i] - logq[i] - log_z) * (logq[i] - logpi[i]);
    *out = s / n;
    return KLC_OK;
}

int klc_estimate_kl_target(int32_t n, const double *logP, const double *logq, const double *logm,
                           double log_z, double *out) {
    static const char fn[] = "klc_estimate_kl_target";
    KLC_TRY(check_target_args(fn, n, logP, logq, "logm", logm, log_z, out));
    double s = 0;
    for (int32_t i = 0; i < n; i++)
        if (logP[i] != -INFINITY) s += exp(logP[i] - logq[i] - log_z) * (logP[i] - logm[i]);
    *out = -log_z + s / n;
    return KLC_OK;
}

int klc_estimate_tv_target(int32_t n, const double *logP, const double *logq, const double *logm,
                           double log_z, double *out) {
    static const char fn[] = "klc_estimate_tv_target";
    KLC_TRY(check_target_args(fn, n, logP, logq, "logm", logm, log_z, out));
    double s = 0;
    for (int32_t i = 0; i < n; i++)
        s += fabs(exp(logm[i] - logq[i]) - exp(logP[i] - logq[i] - log_z));
    *out = 0.5 * s / n;
    return KLC_OK;
}

int klc_estimate_kl_sampled(int32_t n, const double *logm, const double *loga, double *out) {
    static const char fn[] = "klc_estimate_kl_sampled";
    KLC_TRY(check_out(fn, out));
    KLC_TRY(check_n(fn, n));
    KLC_TRY(check(fn, "logm", logm, n, 0));
    KLC_TRY(check(fn, "loga", loga, n, 0));
    double s = 0;
    for (int32_t i = 0; i < n; i++) s += logm[i] - loga[i];
    *out = s / n;
    return KLC_OK;
}

int klc_estimate_ess(int32_t n, const double *logP, const double *logq, double *ess,
                     double *max_share) {
    static const char fn[] = "klc_estimate_ess";
    KLC_TRY(check_n(fn, n));
    KLC_TRY(check(fn, "logP", logP, n, 1));
    KLC_TRY(check(fn, "logq", logq, n, 0));
    const double mx = max_log_weight(n, logP, logq);
    double s = 0, s2 = 0;
    if (mx != -INFINITY)
        for (int32_t i = 0; i < n; i++) {
            const double w = exp(logP[i] - logq[i] - mx);
            s += w;
            s2 += w * w;
        }
    if (ess) *ess = s > 0 ? s * s / s2 : 0.0;
    if (max_share) *max_share = s > 0 ? 1.0 / s : 0.0; /* the largest weight is 1 after the shift */
    return KLC_OK;
}
