/* log P = log a + log b + coef . phi, in log space and never NaN. */
#include "target/target.h"

#include <math.h>
#include <string.h>

int klc_target_combine(const klc_target *t, int32_t n, const double *log_a, const double *phi,
                       const unsigned char *b, double *log_P_out) {
    KLC_CHECK_ARG(t != NULL);
    KLC_CHECK_ARG(n >= 0);
    if (n == 0) return KLC_OK;
    KLC_CHECK_ARG(log_P_out != NULL);
    KLC_CHECK_ARG(phi != NULL || t->phi_dim == 0);
    size_t D = (size_t)t->phi_dim;
    for (int32_t i = 0; i < n; i++) {
        double la = log_a ? log_a[i] : 0.0;
        if (isnan(la) || la == INFINITY)
            return klc_fail(KLC_ERR_NUMERIC, "log a of sequence %d is %g", i, la);
        const double *row = phi ? phi + (size_t)i * D : NULL;
        double s = 0.0;
        for (size_t j = 0; j < D; j++) {
            if (!isfinite(row[j]))
                return klc_fail(KLC_ERR_NUMERIC, "phi of sequence %d, index %zu is %g", i, j,
                                row[j]);
            s += t->coef[j] * row[j];
        }
        if ((b && !b[i]) || la == -INFINITY) {
            log_P_out[i] = -INFINITY;
            continue;
        }
        double lp = la + s;
        if (isnan(lp) || lp == INFINITY)
            return klc_fail(KLC_ERR_NUMERIC,
                            "log P of sequence %d overflows: log a = %g, lambda . phi = %g", i, la,
                            s);
        log_P_out[i] = lp;
    }
    return KLC_OK;
}

/* Scores one pointwise term into b. */
static int apply_pointwise(const klc_term *tm, int32_t n, const double *vals, unsigned char *b) {
    for (int32_t i = 0; i < n; i++)
        for (int32_t d = 0; d < tm->dim; d++) {
            double v = vals[(size_t)i * (size_t)tm->dim + (size_t)d];
            if (v != 0.0 && v != 1.0)
                return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                                "pointwise feature '%s' gave %g for sequence %d, dimension %d; a "
                                "pointwise constraint must be 0 or 1",
                                tm->feature->name, v, i, d);
            if (v == 0.0) b[i] = 0;
        }
    return KLC_OK;
}

int klc_target_log_prob(klc_target *t, const klc_seq_batch *seqs, const double *log_a,
                        double *log_P_out, double *phi_out, unsigned char *b_out) {
    KLC_CHECK_ARG(t != NULL);
    KLC_TRY(klc_seq_batch_check(seqs));
    int32_t n = seqs->n;
    if (n == 0) return KLC_OK;
    size_t D = (size_t)t->phi_dim, max_dim = 1;
    for (int32_t k = 0; k < t->n_terms; k++)
        if ((size_t)t->terms[k].dim > max_dim) max_dim = (size_t)t->terms[k].dim;
    /* One scratch block: a term's values, then phi and b when the caller wants neither. */
    size_t n_vals = (size_t)n * max_dim, n_phi = phi_out ? 0 : (size_t)n * D;
    size_t n_b = b_out ? 0 : (size_t)n;
    size_t bytes = (n_vals + n_phi) * sizeof(double) + n_b;
    unsigned char *block = klc_alloc(&t->ac, bytes);
    if (!block) return KLC_ERR_OUT_OF_MEMORY;
    double *vals = (double *)block;
    double *phi = phi_out ? phi_out : vals + n_vals;
    unsigned char *b = b_out ? b_out : (unsigned char *)(vals + n_vals + n_phi);
    memset(b, 1, (size_t)n);
    int st = KLC_OK;
    for (int32_t k = 0; k < t->n_terms && st == KLC_OK; k++) {
        const klc_term *tm = &t->terms[k];
        st = klc_feature_score(tm->feature, seqs, vals);
        if (st) break;
        if (tm->kind == KLC_TERM_POINTWISE) {
            st = apply_pointwise(tm, n, vals, b);
        } else {
            for (int32_t i = 0; i < n; i++)
                memcpy(phi + (size_t)i * D + (size_t)tm->phi_offset,
                       vals + (size_t)i * (size_t)tm->dim, (size_t)tm->dim * sizeof(double));
        }
    }
    if (st == KLC_OK && log_P_out) st = klc_target_combine(t, n, log_a, phi, b, log_P_out);
    klc_free(&t->ac, block, bytes);
    return st;
}
