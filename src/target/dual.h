/* The dual of the moment-matching problem on a fixed sample, for klc_target_fit. */
#ifndef KLC_TARGET_DUAL_H
#define KLC_TARGET_DUAL_H

#include "core/internal.h"

/* n samples with m fitted features X [n*m] (row-major), fixed log-weights base [n]
 * (log importance weight plus the terms that are not fitted) and targets mu [m]. */
typedef struct klc_dual {
    size_t n, m;
    const double *X, *base, *mu;
    double *e, *p; /* [n] scratch: log-weights, normalised weights */
} klc_dual;

/* Everything the fit looks at for one lambda. */
typedef struct klc_dual_eval {
    double L;         /* lambda . mu - log sum exp(base + lambda . X) */
    double *grad;     /* [m] mu - mu_hat (caller's buffer) */
    double *cov;      /* [m*m] Cov_w(X), or NULL: not computed */
    double grad_norm; /* ||grad||_2 */
    double spread;    /* max - min over samples of lambda . X_i */
    double ess;       /* 1 / sum p_i^2 */
    double max_share; /* max p_i */
} klc_dual_eval;

/* Evaluates the dual at lambda; leaves the normalised weights in d->p. Fails with
 * KLC_ERR_NUMERIC if the weights are not finite. */
int klc_dual_eval_at(klc_dual *d, const double *lambda, klc_dual_eval *ev);
/* L alone (cheaper: for the line search). */
double klc_dual_value(klc_dual *d, const double *lambda);
/* max - min over samples of dir . X_i: how far a step dir moves the log-weights apart. */
double klc_dual_spread_of(const klc_dual *d, const double *dir);

/* Solves (A + ridge I) x = b for a symmetric m x m A by Cholesky (A is not changed; work
 * holds m*m doubles). Returns false if the matrix is not positive definite. */
bool klc_solve_spd(size_t m, const double *A, double ridge, const double *b, double *x,
                   double *work);

#endif
