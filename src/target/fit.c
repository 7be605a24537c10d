/* klc_target_fit: checks, the per-dimension feasibility test, damped Newton or gradient
 * ascent on the dual, divergence detection, and the report. lambda is written only when
 * the fit succeeds. */
#include "target/dual.h"
#include "target/target.h"

#include <math.h>
#include <string.h>

/* The largest change of the log-weights' spread one step may make: keeps a step from
 * jumping into regions where a few samples carry all the weight before the fit has seen
 * the way there, and makes divergence show up over several steps. */
#define MAX_STEP_SPREAD 20.0

int klc_fit_options_init(klc_fit_options *o, uint32_t version) {
    if (!o) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_fit_options_init: NULL options");
    if (version == 0 || version > KLC_FIT_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_fit_options_init: unknown options version %u (this library knows "
                        "1..%d)",
                        version, KLC_FIT_OPTIONS_VERSION);
    memset(o, 0, sizeof *o);
    o->version = version;
    o->method = KLC_FIT_NEWTON;
    o->tol = 1e-4;
    o->max_iter = 0;
    o->ridge = 1e-9;
    o->step = 1.0;
    o->max_spread = 50.0;
    return KLC_OK;
}

static int check_options(const klc_fit_options *in, klc_fit_options *o) {
    klc_fit_options_init(o, KLC_FIT_OPTIONS_VERSION);
    if (in) {
        if (in->version == 0 || in->version > KLC_FIT_OPTIONS_VERSION)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "fit options version %u is not one this library knows (1..%d); fill "
                            "the struct with klc_fit_options_init",
                            in->version, KLC_FIT_OPTIONS_VERSION);
        *o = *in;
    }
    if (o->method != KLC_FIT_NEWTON && o->method != KLC_FIT_GRADIENT)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "fit option method = %d is not KLC_FIT_NEWTON (0) or KLC_FIT_GRADIENT (1)",
                        o->method);
    if (!(o->tol > 0.0 && isfinite(o->tol)))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "fit option tol = %g must be > 0", o->tol);
    if (o->max_iter < 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "fit option max_iter = %d must be >= 0",
                        o->max_iter);
    if (o->max_iter == 0) o->max_iter = o->method == KLC_FIT_NEWTON ? 100 : 10000;
    if (!(o->ridge >= 0.0 && isfinite(o->ridge)))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "fit option ridge = %g must be >= 0", o->ridge);
    if (!(o->step > 0.0 && isfinite(o->step)))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "fit option step = %g must be > 0", o->step);
    if (!(o->max_spread > 0.0 && isfinite(o->max_spread)))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "fit option max_spread = %g must be > 0",
                        o->max_spread);
    return KLC_OK;
}

/* The term and dimension of lambda index j, for messages. */
static void lambda_owner(const klc_target *t, int32_t j, const char **name, int32_t *dim) {
    for (int32_t k = 0; k < t->n_terms; k++) {
        const klc_term *tm = &t->terms[k];
        if (tm->kind == KLC_TERM_MOMENT && j >= tm->lambda_offset &&
            j < tm->lambda_offset + tm->dim) {
            *name = tm->feature->name;
            *dim = j - tm->lambda_offset;
            return;
        }
    }
    *name = "?";
    *dim = 0;
}

/* The phi column of lambda index j. */
static size_t lambda_column(const klc_target *t, int32_t j) {
    for (int32_t k = 0; k < t->n_terms; k++) {
        const klc_term *tm = &t->terms[k];
        if (tm->kind == KLC_TERM_MOMENT && j >= tm->lambda_offset &&
            j < tm->lambda_offset + tm->dim)
            return (size_t)(tm->phi_offset + (j - tm->lambda_offset));
    }
    return 0;
}

typedef struct fit_work {
    const klc_alloc_ctx *ac;
    size_t bytes;
    unsigned char *block;
} fit_work;

/* Everything the fit needs, carved from one allocation. */
typedef struct fit_state {
    size_t n_used, m, L;   /* samples used, fitted dims, all lambda dims */
    size_t *used;          /* [n_used] sample indices */
    int32_t *fitted;       /* [m] lambda index of each fitted dim */
    double *lo, *hi;       /* [L] ranges */
    double *X, *base, *mu; /* [n_used*m], [n_used], [m] */
    double *e, *p;         /* [n_used] */
    double *lam, *trial, *dir, *grad, *tgrad, *cov, *chol; /* [m] x5, [m*m] x2 */
    size_t *cols;                                          /* [m] phi column of each fitted dim */
    bool *col_fitted;                                      /* [phi_dim] */
} fit_state;

static void *carve(unsigned char **at, size_t count, size_t size) {
    void *p = *at;
    *at += (count * size + 63) / 64 * 64;
    return p;
}

static int fit_alloc(fit_work *w, fit_state *s, size_t n, size_t L, size_t D) {
    size_t m = L; /* at most */
    if (n > SIZE_MAX / 16 / (m + 8) || m > 1000000)
        return klc_fail(KLC_ERR_OUT_OF_MEMORY, "fit too large");
    size_t sizes[] = {n * sizeof(size_t),     m * sizeof(int32_t),
                      2 * L * sizeof(double), n * m * sizeof(double),
                      5 * n * sizeof(double), (6 * m + 2 * m * m) * sizeof(double),
                      m * sizeof(size_t),     D + 1};
    size_t total = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) total += sizes[k] + 64 * 8;
    w->bytes = total;
    w->block = klc_alloc(w->ac, total);
    if (!w->block) return KLC_ERR_OUT_OF_MEMORY;
    unsigned char *at = w->block;
    s->used = carve(&at, n, sizeof(size_t));
    s->fitted = carve(&at, m, sizeof(int32_t));
    s->lo = carve(&at, L, sizeof(double));
    s->hi = carve(&at, L, sizeof(double));
    s->X = carve(&at, n * m, sizeof(double));
    s->base = carve(&at, n, sizeof(double));
    s->mu = carve(&at, m, sizeof(double));
    s->e = carve(&at, n, sizeof(double));
    s->p = carve(&at, n, sizeof(double));
    s->lam = carve(&at, m, sizeof(double));
    s->trial = carve(&at, m, sizeof(double));
    s->dir = carve(&at, m, sizeof(double));
    s->grad = carve(&at, m, sizeof(double));
    s->tgrad = carve(&at, m, sizeof(double));
    s->cov = carve(&at, m * m, sizeof(double));
    s->chol = carve(&at, m * m, sizeof(double));
    s->cols = carve(&at, m, sizeof(size_t));
    s->col_fitted = carve(&at, D + 1, sizeof(bool));
    return KLC_OK;
}

/* Picks the samples that count and checks every input value. */
static int select_samples(const klc_target *t, size_t n, const double *phi, const unsigned char *b,
                          const double *log_w, fit_state *s) {
    size_t D = (size_t)t->phi_dim;
    s->n_used = 0;
    for (size_t i = 0; i < n; i++) {
        if (b && b[i] > 1)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT, "b[%zu] = %u must be 0 or 1", i, b[i]);
        double lw = log_w ? log_w[i] : 0.0;
        if (isnan(lw) || lw == INFINITY)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT, "log_w[%zu] = %g (must be < +inf)", i, lw);
        for (size_t j = 0; j < D; j++)
            if (!isfinite(phi[i * D + j]))
                return klc_fail(KLC_ERR_INVALID_ARGUMENT, "phi of sample %zu, index %zu is %g", i,
                                j, phi[i * D + j]);
        if ((b && !b[i]) || lw == -INFINITY) continue;
        s->used[s->n_used++] = i;
    }
    if (s->n_used == 0)
        return klc_fail(KLC_ERR_NUMERIC,
                        "no sample counts for the fit: all %zu have b = 0 or log_w = -inf (the "
                        "pointwise constraints are never met on this sample)",
                        n);
    return KLC_OK;
}

/* mu_bar_j must lie strictly inside the range the samples reach, or equal a constant. */
static int check_ranges(const klc_target *t, const double *phi, fit_state *s, klc_fit_report *rep) {
    size_t D = (size_t)t->phi_dim;
    s->m = 0;
    for (size_t j = 0; j < s->L; j++) {
        size_t col = lambda_column(t, (int32_t)j);
        double lo = INFINITY, hi = -INFINITY;
        for (size_t u = 0; u < s->n_used; u++) {
            double v = phi[s->used[u] * D + col];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        s->lo[j] = lo;
        s->hi[j] = hi;
        double want = t->mu_bar[j];
        if (lo == hi && want == lo) continue; /* constant and already met */
        if (lo < want && want < hi) {
            s->fitted[s->m++] = (int32_t)j;
            continue;
        }
        const char *name;
        int32_t dim;
        lambda_owner(t, (int32_t)j, &name, &dim);
        if (rep) {
            rep->infeasible = 1;
            rep->infeasible_index = (int32_t)j;
        }
        if (lo == hi) {
            const char *hint = lo == 0.0   ? " (the feature never fires on them)"
                               : lo == 1.0 ? " (the feature always fires on them)"
                                           : "";
            return klc_fail(KLC_ERR_NUMERIC,
                            "infeasible moment: feature '%s' dimension %d has target %g, but it "
                            "is %g on all %zu samples that count%s",
                            name, dim, want, lo, s->n_used, hint);
        }
        if (want == lo || want == hi)
            return klc_fail(KLC_ERR_NUMERIC,
                            "infeasible moment: feature '%s' dimension %d has target %g, the %s "
                            "value the %zu samples that count reach (range [%g, %g]): only "
                            "lambda = %s attains it; use a pointwise constraint instead",
                            name, dim, want, want == lo ? "smallest" : "largest", s->n_used, lo, hi,
                            want == lo ? "-inf" : "+inf");
        return klc_fail(KLC_ERR_NUMERIC,
                        "infeasible moment: feature '%s' dimension %d has target %g, outside "
                        "the range [%g, %g] the %zu samples that count reach",
                        name, dim, want, lo, hi, s->n_used);
    }
    return KLC_OK;
}

static void build_problem(const klc_target *t, const double *phi, const double *log_w,
                          fit_state *s) {
    size_t D = (size_t)t->phi_dim, m = s->m;
    /* Phi columns not fitted (reward dims, constant moments) go into the fixed part. */
    bool *is_fitted_col = s->col_fitted;
    size_t *cols = s->cols;
    memset(is_fitted_col, 0, D * sizeof(bool));
    for (size_t k = 0; k < m; k++) {
        cols[k] = lambda_column(t, s->fitted[k]);
        is_fitted_col[cols[k]] = true;
        s->mu[k] = t->mu_bar[s->fitted[k]];
        s->lam[k] = t->lambda[s->fitted[k]];
    }
    for (size_t u = 0; u < s->n_used; u++) {
        size_t i = s->used[u];
        const double *row = phi + i * D;
        double fixed = log_w ? log_w[i] : 0.0;
        for (size_t j = 0; j < D; j++)
            if (!is_fitted_col[j]) fixed += t->coef[j] * row[j];
        s->base[u] = fixed;
        for (size_t k = 0; k < m; k++) s->X[u * m + k] = row[cols[k]];
    }
}

/* How far lambda (or a step) moves the log-weights: the spread of lambda . X, or one
 * coordinate times its range when features are collinear and the spread cannot see the
 * motion. */
static double reach(const klc_dual *d, const fit_state *s, const double *v) {
    double r = klc_dual_spread_of(d, v);
    for (size_t k = 0; k < s->m; k++) {
        int32_t j = s->fitted[k];
        double c = fabs(v[k]) * (s->hi[j] - s->lo[j]);
        if (c > r) r = c;
    }
    return r;
}

/* Fills the report's residual and weight statistics from the weights in d->p. */
static void final_report(const klc_target *t, const double *phi, const fit_state *s,
                         const klc_dual *d, const klc_dual_eval *ev, klc_fit_report *rep) {
    if (!rep) return;
    size_t D = (size_t)t->phi_dim;
    double r2 = 0.0;
    for (size_t j = 0; j < s->L; j++) {
        size_t col = lambda_column(t, (int32_t)j);
        double mh = 0.0;
        for (size_t u = 0; u < s->n_used; u++) mh += d->p[u] * phi[s->used[u] * D + col];
        double r = t->mu_bar[j] - mh;
        r2 += r * r;
        if (rep->residual) rep->residual[j] = r;
    }
    rep->residual_norm = sqrt(r2);
    rep->ess = ev->ess;
    rep->max_weight_share = ev->max_share;
    rep->spread = ev->spread;
}

/* The fitted dim with the largest residual, for messages. */
static size_t worst_dim(const fit_state *s, const double *grad) {
    size_t w = 0;
    for (size_t k = 1; k < s->m; k++)
        if (fabs(grad[k]) > fabs(grad[w])) w = k;
    return w;
}

static int iterate(const klc_target *t, const klc_fit_options *o, fit_state *s, klc_dual *d,
                   klc_dual_eval *ev, klc_fit_report *rep) {
    size_t m = s->m;
    double grad_step = o->step;
    if (reach(d, s, s->lam) > o->max_spread) memset(s->lam, 0, m * sizeof(double));
    for (int32_t it = 0;; it++) {
        ev->grad = s->grad;
        ev->cov = o->method == KLC_FIT_NEWTON ? s->cov : NULL;
        KLC_TRY(klc_dual_eval_at(d, s->lam, ev));
        if (rep) rep->iterations = it;
        if (ev->grad_norm < o->tol) return KLC_OK;
        if (reach(d, s, s->lam) > o->max_spread) {
            size_t w = worst_dim(s, s->grad);
            const char *name;
            int32_t dim;
            lambda_owner(t, s->fitted[w], &name, &dim);
            if (rep) rep->infeasible = 1;
            return klc_fail(KLC_ERR_NUMERIC,
                            "infeasible moments: mu_bar lies outside the convex hull of the "
                            "features of the %zu samples that count; lambda diverges (its "
                            "log-weights spread over %.3g) while ||mu_bar - mu_hat|| stalls at "
                            "%.3g; the worst is feature '%s' dimension %d, target %g, reached "
                            "%g",
                            s->n_used, ev->spread, ev->grad_norm, name, dim, s->mu[w],
                            s->mu[w] - s->grad[w]);
        }
        if (it >= o->max_iter)
            return klc_fail(KLC_ERR_NUMERIC,
                            "the fit did not converge in %d iterations: ||mu_bar - mu_hat|| = "
                            "%.3g, tol %.3g",
                            o->max_iter, ev->grad_norm, o->tol);
        bool newton = false;
        if (o->method == KLC_FIT_NEWTON) {
            double diag = 0.0;
            for (size_t k = 0; k < m; k++)
                if (s->cov[k * m + k] > diag) diag = s->cov[k * m + k];
            double ridge = o->ridge * diag + 1e-300;
            for (int tries = 0; tries < 6 && !newton; tries++, ridge *= 1e3)
                newton = klc_solve_spd(m, s->cov, ridge, s->grad, s->dir, s->chol);
        }
        if (!newton)
            for (size_t k = 0; k < m; k++) s->dir[k] = grad_step * s->grad[k];
        double r = reach(d, s, s->dir);
        if (r > MAX_STEP_SPREAD)
            for (size_t k = 0; k < m; k++) s->dir[k] *= MAX_STEP_SPREAD / r;
        double slope = 0.0;
        for (size_t k = 0; k < m; k++) slope += s->grad[k] * s->dir[k];
        double step = 1.0;
        bool accepted = false;
        for (int ls = 0; ls < 60 && !accepted; ls++, step *= 0.5) {
            for (size_t k = 0; k < m; k++) s->trial[k] = s->lam[k] + step * s->dir[k];
            double gain = step * slope;
            if (gain > 1e-13 * (1.0 + fabs(ev->L))) {
                accepted = klc_dual_value(d, s->trial) >= ev->L + 1e-4 * gain;
            } else {
                /* Near the optimum the dual's increase drowns in rounding: judge the step
                 * by the gradient instead. */
                klc_dual_eval tev = {.grad = s->tgrad, .cov = NULL};
                accepted =
                    klc_dual_eval_at(d, s->trial, &tev) == KLC_OK && tev.grad_norm < ev->grad_norm;
            }
            if (accepted) break;
        }
        if (!accepted) {
            /* The report describes lambda, not the last trial. */
            KLC_TRY(klc_dual_eval_at(d, s->lam, ev));
            return klc_fail(KLC_ERR_NUMERIC,
                            "the fit stalled after %d iterations: no step along the %s "
                            "direction increases the dual; ||mu_bar - mu_hat|| = %.3g, tol %.3g",
                            it, newton ? "Newton" : "gradient", ev->grad_norm, o->tol);
        }
        memcpy(s->lam, s->trial, m * sizeof(double));
        if (!newton) grad_step = step == 1.0 ? grad_step * 2.0 : grad_step * step;
    }
}

int klc_target_fit(klc_target *t, int64_t n, const double *phi, const unsigned char *b,
                   const double *log_w, const klc_fit_options *opts, klc_fit_report *report) {
    KLC_CHECK_ARG(t != NULL);
    if (report) {
        if (report->version == 0 || report->version > KLC_FIT_REPORT_VERSION)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_fit_report version %u is not one this library knows (1..%d)",
                            report->version, KLC_FIT_REPORT_VERSION);
        double *residual = report->residual;
        uint32_t version = report->version;
        memset(report, 0, sizeof *report);
        report->version = version;
        report->residual = residual;
        report->infeasible_index = -1;
    }
    klc_fit_options o;
    KLC_TRY(check_options(opts, &o));
    if (t->n_lambda == 0)
        return klc_fail(KLC_ERR_STATE, "the target has no moment constraint to fit");
    KLC_CHECK_ARG(n >= 1);
    KLC_CHECK_ARG(phi != NULL);
    if ((uint64_t)n > SIZE_MAX / ((size_t)t->phi_dim + 1) / sizeof(double))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "n = %lld is too large", (long long)n);

    fit_work w = {&t->ac, 0, NULL};
    fit_state s;
    memset(&s, 0, sizeof s);
    s.L = (size_t)t->n_lambda;
    KLC_TRY(fit_alloc(&w, &s, (size_t)n, s.L, (size_t)t->phi_dim));
    int st = select_samples(t, (size_t)n, phi, b, log_w, &s);
    if (report) report->n_used = (int64_t)s.n_used;
    if (!st) st = check_ranges(t, phi, &s, report);
    klc_dual d = {0};
    klc_dual_eval ev = {0};
    if (!st) {
        build_problem(t, phi, log_w, &s);
        d = (klc_dual){s.n_used, s.m, s.X, s.base, s.mu, s.e, s.p};
        st = iterate(t, &o, &s, &d, &ev, report);
        /* The weights of the last evaluation are in d.p whether or not it converged. */
        if (report && ev.ess > 0.0) final_report(t, phi, &s, &d, &ev, report);
    }
    if (!st) {
        if (report) report->converged = 1;
        for (size_t k = 0; k < s.m; k++) t->lambda[s.fitted[k]] = s.lam[k];
        klc_target_refresh_coef(t);
        t->version++;
    }
    klc_free(w.ac, w.block, w.bytes);
    return st;
}
