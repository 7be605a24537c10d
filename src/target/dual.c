/* The dual L(lambda) = lambda . mu - log sum_i exp(base_i + lambda . X_i): the largest
 * log-weight is taken out before exponentiating, and the covariance is formed around the
 * mean (two passes) so that large feature values do not cancel catastrophically. */
#include "target/dual.h"

#include <math.h>
#include <string.h>

static double dot(const double *a, const double *b, size_t m) {
    double s = 0.0;
    for (size_t k = 0; k < m; k++) s += a[k] * b[k];
    return s;
}

/* Fills e with the log-weights; returns their maximum and the spread of lambda . X. */
static double log_weights(klc_dual *d, const double *lambda, double *spread) {
    double mx = -INFINITY, lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < d->n; i++) {
        double s = dot(lambda, d->X + i * d->m, d->m);
        if (s < lo) lo = s;
        if (s > hi) hi = s;
        d->e[i] = d->base[i] + s;
        if (d->e[i] > mx) mx = d->e[i];
    }
    if (spread) *spread = hi - lo;
    return mx;
}

double klc_dual_value(klc_dual *d, const double *lambda) {
    double mx = log_weights(d, lambda, NULL);
    if (!isfinite(mx)) return -INFINITY;
    double s = 0.0;
    for (size_t i = 0; i < d->n; i++) s += exp(d->e[i] - mx);
    double L = dot(lambda, d->mu, d->m) - (mx + log(s));
    return isnan(L) ? -INFINITY : L;
}

double klc_dual_spread_of(const klc_dual *d, const double *dir) {
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < d->n; i++) {
        double s = dot(dir, d->X + i * d->m, d->m);
        if (s < lo) lo = s;
        if (s > hi) hi = s;
    }
    return hi - lo;
}

int klc_dual_eval_at(klc_dual *d, const double *lambda, klc_dual_eval *ev) {
    size_t n = d->n, m = d->m;
    double mx = log_weights(d, lambda, &ev->spread);
    if (!isfinite(mx))
        return klc_fail(KLC_ERR_NUMERIC, "the fit's log-weights reached %g at this lambda", mx);
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (d->p[i] = exp(d->e[i] - mx));
    double inv = 1.0 / s, sq = 0.0, top = 0.0;
    for (size_t i = 0; i < n; i++) {
        d->p[i] *= inv;
        sq += d->p[i] * d->p[i];
        if (d->p[i] > top) top = d->p[i];
    }
    ev->L = dot(lambda, d->mu, m) - (mx + log(s));
    ev->ess = 1.0 / sq;
    ev->max_share = top;
    /* grad holds mu_hat first, then mu - mu_hat. */
    memset(ev->grad, 0, m * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        const double *x = d->X + i * m;
        for (size_t k = 0; k < m; k++) ev->grad[k] += d->p[i] * x[k];
    }
    if (ev->cov) {
        memset(ev->cov, 0, m * m * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            const double *x = d->X + i * m;
            for (size_t a = 0; a < m; a++) {
                double da = d->p[i] * (x[a] - ev->grad[a]);
                for (size_t b = 0; b <= a; b++) ev->cov[a * m + b] += da * (x[b] - ev->grad[b]);
            }
        }
        for (size_t a = 0; a < m; a++)
            for (size_t b = 0; b < a; b++) ev->cov[b * m + a] = ev->cov[a * m + b];
    }
    double g2 = 0.0;
    for (size_t k = 0; k < m; k++) {
        ev->grad[k] = d->mu[k] - ev->grad[k];
        g2 += ev->grad[k] * ev->grad[k];
    }
    ev->grad_norm = sqrt(g2);
    if (!isfinite(ev->L) || !isfinite(ev->grad_norm))
        return klc_fail(KLC_ERR_NUMERIC, "the fit's dual is not finite at this lambda");
    return KLC_OK;
}

bool klc_solve_spd(size_t m, const double *A, double ridge, const double *b, double *x,
                   double *work) {
    double *Lm = work; /* lower triangle of the Cholesky factor */
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j <= i; j++) {
            double s = A[i * m + j] + (i == j ? ridge : 0.0);
            for (size_t k = 0; k < j; k++) s -= Lm[i * m + k] * Lm[j * m + k];
            if (i == j) {
                if (!(s > 0.0) || !isfinite(s)) return false;
                Lm[i * m + i] = sqrt(s);
            } else {
                Lm[i * m + j] = s / Lm[j * m + j];
            }
        }
    }
    for (size_t i = 0; i < m; i++) {
        double s = b[i];
        for (size_t k = 0; k < i; k++) s -= Lm[i * m + k] * x[k];
        x[i] = s / Lm[i * m + i];
    }
    for (size_t i = m; i-- > 0;) {
        double s = x[i];
        for (size_t k = i + 1; k < m; k++) s -= Lm[k * m + i] * x[k];
        x[i] = s / Lm[i * m + i];
    }
    for (size_t i = 0; i < m; i++)
        if (!isfinite(x[i])) return false;
    return true;
}
