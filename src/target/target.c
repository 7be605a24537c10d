/* klc_target: building the list of terms and reading it back. */
#include "target/target.h"

#include <math.h>
#include <string.h>

int klc_target_options_init(klc_target_options *o, uint32_t version) {
    if (!o) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_target_options_init: NULL options");
    if (version == 0 || version > KLC_TARGET_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_target_options_init: unknown options version %u (this library "
                        "knows 1..%d)",
                        version, KLC_TARGET_OPTIONS_VERSION);
    memset(o, 0, sizeof *o);
    o->version = version;
    return KLC_OK;
}

int klc_target_create(klc_model *base, const klc_target_options *opts, klc_target **out) {
    KLC_CHECK_ARG(out != NULL);
    *out = NULL;
    if (opts && (opts->version == 0 || opts->version > KLC_TARGET_OPTIONS_VERSION))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "target options version %u is not one this library knows (1..%d); fill "
                        "the struct with klc_target_options_init",
                        opts->version, KLC_TARGET_OPTIONS_VERSION);
    klc_alloc_ctx ac;
    klc_alloc_ctx_init(&ac, opts ? opts->allocator : NULL);
    klc_target *t = klc_alloc_zeroed(&ac, sizeof *t);
    if (!t) return KLC_ERR_OUT_OF_MEMORY;
    t->ac = ac;
    t->base = base;
    t->version = 1;
    t->beta = 1.0;
    *out = t;
    return KLC_OK;
}

void klc_target_destroy(klc_target *t) {
    if (!t) return;
    klc_alloc_ctx ac = t->ac;
    klc_free(&ac, t->terms, (size_t)t->cap_terms * sizeof(klc_term));
    klc_free(&ac, t->lambda, (size_t)t->n_lambda * sizeof(double));
    klc_free(&ac, t->mu_bar, (size_t)t->n_lambda * sizeof(double));
    klc_free(&ac, t->coef, (size_t)t->phi_dim * sizeof(double));
    klc_free(&ac, t, sizeof *t);
}

void klc_target_refresh_coef(klc_target *t) {
    for (int32_t k = 0; k < t->n_terms; k++) {
        const klc_term *tm = &t->terms[k];
        for (int32_t d = 0; d < tm->dim; d++) {
            if (tm->kind == KLC_TERM_MOMENT)
                t->coef[tm->phi_offset + d] = t->lambda[tm->lambda_offset + d];
            else if (tm->kind == KLC_TERM_REWARD)
                t->coef[tm->phi_offset + d] = 1.0 / t->beta;
        }
    }
}

/* Grows an array of doubles from `old` to `n` elements, zero-filling the new ones; the
 * old array stays valid until the caller swaps it in. */
static double *grown(const klc_alloc_ctx *ac, const double *old, int32_t n_old, int32_t n) {
    double *p = klc_alloc_zeroed(ac, (size_t)n * sizeof *p);
    if (p && n_old) memcpy(p, old, (size_t)n_old * sizeof *p);
    return p;
}

/* Appends a term; everything is allocated before anything changes, so a failure leaves
 * the target as it was. */
static int add_term(klc_target *t, int32_t kind, klc_feature *f, const double *mu_bar) {
    int32_t dim = f->dim;
    if (t->phi_dim > INT32_MAX - dim || t->n_terms == INT32_MAX)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "target has too many terms");
    bool in_phi = kind != KLC_TERM_POINTWISE, fitted = kind == KLC_TERM_MOMENT;
    int32_t new_phi = t->phi_dim + (in_phi ? dim : 0);
    int32_t new_lambda = t->n_lambda + (fitted ? dim : 0);
    klc_term *terms = t->terms;
    int32_t cap = t->cap_terms;
    bool oom = false;
    if (t->n_terms == cap) {
        cap = cap ? cap * 2 : 4;
        terms = klc_alloc(&t->ac, (size_t)cap * sizeof *terms);
        oom |= !terms;
        if (terms && t->n_terms) memcpy(terms, t->terms, (size_t)t->n_terms * sizeof *terms);
    }
    double *coef = t->coef, *lambda = t->lambda, *mu = t->mu_bar;
    if (in_phi) oom |= !(coef = grown(&t->ac, t->coef, t->phi_dim, new_phi));
    if (fitted) {
        oom |= !(lambda = grown(&t->ac, t->lambda, t->n_lambda, new_lambda));
        oom |= !(mu = grown(&t->ac, t->mu_bar, t->n_lambda, new_lambda));
    }
    if (oom) {
        if (terms != t->terms) klc_free(&t->ac, terms, (size_t)cap * sizeof *terms);
        if (coef != t->coef) klc_free(&t->ac, coef, (size_t)new_phi * sizeof *coef);
        if (lambda != t->lambda) klc_free(&t->ac, lambda, (size_t)new_lambda * sizeof *lambda);
        if (mu != t->mu_bar) klc_free(&t->ac, mu, (size_t)new_lambda * sizeof *mu);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    if (terms != t->terms) {
        klc_free(&t->ac, t->terms, (size_t)t->cap_terms * sizeof *terms);
        t->terms = terms;
        t->cap_terms = cap;
    }
    if (coef != t->coef) {
        klc_free(&t->ac, t->coef, (size_t)t->phi_dim * sizeof *coef);
        t->coef = coef;
    }
    if (fitted) {
        klc_free(&t->ac, t->lambda, (size_t)t->n_lambda * sizeof *lambda);
        klc_free(&t->ac, t->mu_bar, (size_t)t->n_lambda * sizeof *mu);
        t->lambda = lambda;
        t->mu_bar = mu;
        memcpy(mu + t->n_lambda, mu_bar, (size_t)dim * sizeof *mu);
    }
    t->terms[t->n_terms++] =
        (klc_term){kind, f, dim, in_phi ? t->phi_dim : -1, fitted ? t->n_lambda : -1};
    t->phi_dim = new_phi;
    t->n_lambda = new_lambda;
    klc_target_refresh_coef(t);
    t->version++;
    return KLC_OK;
}

int klc_target_add_pointwise(klc_target *t, klc_feature *f) {
    KLC_CHECK_ARG(t != NULL);
    KLC_CHECK_ARG(f != NULL);
    return add_term(t, KLC_TERM_POINTWISE, f, NULL);
}

int klc_target_add_moment(klc_target *t, klc_feature *f, const double *mu_bar) {
    KLC_CHECK_ARG(t != NULL);
    KLC_CHECK_ARG(f != NULL);
    KLC_CHECK_ARG(mu_bar != NULL);
    for (int32_t d = 0; d < f->dim; d++)
        if (!isfinite(mu_bar[d]))
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "moment of feature '%s': mu_bar[%d] = %g is not finite", f->name, d,
                            mu_bar[d]);
    return add_term(t, KLC_TERM_MOMENT, f, mu_bar);
}

int klc_target_from_reward(klc_model *base, klc_feature *reward, double beta,
                           const klc_target_options *opts, klc_target **out) {
    KLC_CHECK_ARG(out != NULL);
    *out = NULL;
    KLC_CHECK_ARG(reward != NULL);
    if (reward->dim != 1)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "reward feature '%s' has dim %d; a reward has dim 1", reward->name,
                        reward->dim);
    if (!(beta > 0.0 && isfinite(beta)))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "beta = %g must be > 0 and finite", beta);
    klc_target *t;
    KLC_TRY(klc_target_create(base, opts, &t));
    t->beta = beta;
    t->has_reward = true;
    int st = add_term(t, KLC_TERM_REWARD, reward, NULL);
    if (st) {
        klc_target_destroy(t);
        return st;
    }
    *out = t;
    return KLC_OK;
}

klc_model *klc_target_base(const klc_target *t) {
    return t ? t->base : NULL;
}

uint64_t klc_target_version(const klc_target *t) {
    return t ? t->version : 0;
}

int32_t klc_target_num_terms(const klc_target *t) {
    return t ? t->n_terms : -1;
}

int klc_target_term_info(const klc_target *t, int32_t index, klc_term_info *out) {
    KLC_CHECK_ARG(t != NULL);
    KLC_CHECK_ARG(out != NULL);
    if (out->version == 0 || out->version > KLC_TERM_INFO_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_term_info version %u is not one this library knows (1..%d)",
                        out->version, KLC_TERM_INFO_VERSION);
    if (index < 0 || index >= t->n_terms)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "term index %d is not in 0..%d", index,
                        t->n_terms - 1);
    const klc_term *tm = &t->terms[index];
    out->kind = tm->kind;
    out->name = tm->feature->name;
    out->feature = tm->feature;
    out->dim = tm->dim;
    out->phi_offset = tm->phi_offset;
    out->lambda_offset = tm->lambda_offset;
    return KLC_OK;
}

int32_t klc_target_phi_dim(const klc_target *t) {
    return t ? t->phi_dim : -1;
}

int32_t klc_target_num_lambda(const klc_target *t) {
    return t ? t->n_lambda : -1;
}

static int check_count(const klc_target *t, size_t n, const char *what) {
    if (n != (size_t)t->n_lambda)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: n = %zu, but the target has %d lambdas",
                        what, n, t->n_lambda);
    return KLC_OK;
}

int klc_target_get_lambda(const klc_target *t, double *lambda, size_t n) {
    KLC_CHECK_ARG(t != NULL);
    KLC_TRY(check_count(t, n, "klc_target_get_lambda"));
    KLC_CHECK_ARG(lambda != NULL || n == 0);
    if (n) memcpy(lambda, t->lambda, n * sizeof *lambda);
    return KLC_OK;
}

int klc_target_set_lambda(klc_target *t, const double *lambda, size_t n) {
    KLC_CHECK_ARG(t != NULL);
    KLC_TRY(check_count(t, n, "klc_target_set_lambda"));
    KLC_CHECK_ARG(lambda != NULL || n == 0);
    for (size_t k = 0; k < n; k++)
        if (!isfinite(lambda[k]))
            return klc_fail(KLC_ERR_INVALID_ARGUMENT, "lambda[%zu] = %g is not finite", k,
                            lambda[k]);
    if (n) memcpy(t->lambda, lambda, n * sizeof *lambda);
    klc_target_refresh_coef(t);
    t->version++;
    return KLC_OK;
}

int klc_target_get_mu_bar(const klc_target *t, double *mu_bar, size_t n) {
    KLC_CHECK_ARG(t != NULL);
    KLC_TRY(check_count(t, n, "klc_target_get_mu_bar"));
    KLC_CHECK_ARG(mu_bar != NULL || n == 0);
    if (n) memcpy(mu_bar, t->mu_bar, n * sizeof *mu_bar);
    return KLC_OK;
}

int klc_target_get_beta(const klc_target *t, double *beta) {
    KLC_CHECK_ARG(t != NULL);
    KLC_CHECK_ARG(beta != NULL);
    if (!t->has_reward)
        return klc_fail(KLC_ERR_STATE, "the target has no reward (only klc_target_from_reward "
                                       "makes targets with a beta)");
    *beta = t->beta;
    return KLC_OK;
}

int klc_target_set_beta(klc_target *t, double beta) {
    KLC_CHECK_ARG(t != NULL);
    if (!t->has_reward)
        return klc_fail(KLC_ERR_STATE, "the target has no reward (only klc_target_from_reward "
                                       "makes targets with a beta)");
    if (!(beta > 0.0 && isfinite(beta)))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "beta = %g must be > 0 and finite", beta);
    t->beta = beta;
    klc_target_refresh_coef(t);
    t->version++;
    return KLC_OK;
}
