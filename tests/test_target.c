/* Targets: log P over a tiny model's whole sequence space, lambda fits against exact
 * enumeration and closed forms (Newton and gradient steps, importance weights), hybrid
 * pointwise + moment targets, infeasible targets with the target left unchanged, -inf
 * without NaN, from_reward, the version counter and failing features. */
#include "core/internal.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- Features over token ids ----------------------------------------------------------- */

typedef struct id_feature {
    int kind; /* 0: any id == 1; 1: count of id 2; 2: last id != 0; 3: the first id */
    int fail; /* the next call returns this when non-zero */
    int releases;
} id_feature;

static int id_score(void *self, const klc_seq_batch *s, double *out) {
    id_feature *f = self;
    if (f->fail) return f->fail;
    for (int32_t i = 0; i < s->n; i++) {
        const int32_t *x = s->ids + (size_t)i * (size_t)s->stride;
        int32_t n = s->lengths[i];
        double v = 0;
        if (f->kind == 0) {
            for (int32_t t = 0; t < n; t++) v = v || x[t] == 1;
        } else if (f->kind == 1) {
            for (int32_t t = 0; t < n; t++) v += x[t] == 2;
        } else if (f->kind == 2) {
            v = n > 0 && x[n - 1] != 0;
        } else {
            v = n > 0 ? x[0] : 0;
        }
        out[i] = v;
    }
    return 0;
}

static void id_release(void *self) {
    ((id_feature *)self)->releases++;
}

static klc_feature *id_feat(id_feature *st, int kind, const char *name) {
    memset(st, 0, sizeof *st);
    st->kind = kind;
    klc_feature_ops ops = {KLC_FEATURE_OPS_VERSION, name, 1, id_score, id_release};
    klc_feature *f = NULL;
    ck_klc(klc_feature_create(&ops, st, NULL, &f));
    return f;
}

/* --- Every sequence of a tiny model ---------------------------------------------------- */

enum { V = 3, GEN = 3, NSEQ = 27 };

typedef struct space {
    klc_model *model;
    int32_t ids[NSEQ * GEN], lengths[NSEQ];
    double log_a[NSEQ];
    klc_seq_batch b;
} space;

/* All V^GEN continuations of the token 0, with their exact log-probabilities. */
static void space_make(space *sp) {
    klc_model_options o;
    klc_model_options_init(&o, KLC_MODEL_OPTIONS_VERSION);
    o.n_layer = 1;
    o.n_head = 2;
    o.n_embd = 8;
    o.n_ctx = 8;
    o.vocab_size = V;
    o.init_std = 0.6f;
    o.init_seed = 11;
    ck_klc(klc_model_create(&o, &sp->model));
    int32_t tokens[NSEQ * (GEN + 1)], len[NSEQ];
    for (int i = 0; i < NSEQ; i++) {
        int r = i;
        tokens[i * (GEN + 1)] = 0;
        for (int t = GEN - 1; t >= 0; t--) {
            sp->ids[i * GEN + t] = r % V;
            tokens[i * (GEN + 1) + 1 + t] = r % V;
            r /= V;
        }
        len[i] = GEN + 1;
        sp->lengths[i] = GEN;
    }
    klc_seqs s = {NSEQ, GEN + 1, tokens, len, NULL, NULL};
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.seq_logprobs = sp->log_a;
    ck_klc(klc_model_score(sp->model, &s, &fo));
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < NSEQ; i++) mx = fmax(mx, sp->log_a[i]);
    for (int i = 0; i < NSEQ; i++) z += exp(sp->log_a[i] - mx);
    ck_assert_double_lt(fabs(mx + log(z)), 1e-5); /* a sums to 1 over the space */
    sp->b =
        (klc_seq_batch){sizeof(klc_seq_batch), NSEQ, GEN, sp->ids, sp->lengths, NULL, NULL, NULL};
}

static void space_free(space *sp) {
    klc_model_destroy(sp->model);
}

/* E_p[phi] with p proportional to exp(log_P), exactly over the given points. */
static void exact_moments(int n, const double *log_P, const double *phi, int D, double *mu) {
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, log_P[i]);
    for (int j = 0; j < D; j++) mu[j] = 0;
    for (int i = 0; i < n; i++) {
        double w = isinf(log_P[i]) ? 0.0 : exp(log_P[i] - mx);
        z += w;
        for (int j = 0; j < D; j++) mu[j] += w * phi[i * D + j];
    }
    for (int j = 0; j < D; j++) mu[j] /= z;
}

static klc_fit_report new_report(double *residual) {
    klc_fit_report r;
    memset(&r, 0, sizeof r);
    r.version = KLC_FIT_REPORT_VERSION;
    r.residual = residual;
    return r;
}

/* --- Tests ------------------------------------------------------------------------------ */

/* One binary feature over an explicit distribution: lambda has a closed form. */
START_TEST(test_fit_closed_form) {
    const double a[6] = {0.1, 0.2, 0.3, 0.15, 0.05, 0.2};
    const double phi[6] = {1, 0, 0, 1, 0, 1};
    double log_w[6];
    for (int i = 0; i < 6; i++) log_w[i] = log(a[i]);
    double p = 0.1 + 0.15 + 0.2, mu = 0.7;
    double exact = log(mu * (1 - p) / (p * (1 - mu)));
    for (int method = 0; method < 2; method++) {
        id_feature st;
        klc_feature *f = id_feat(&st, 0, "binary");
        klc_target *t = NULL;
        ck_klc(klc_target_create(NULL, NULL, &t));
        ck_klc(klc_target_add_moment(t, f, &mu));
        uint64_t v0 = klc_target_version(t);
        klc_fit_options o;
        klc_fit_options_init(&o, KLC_FIT_OPTIONS_VERSION);
        o.method = method;
        o.tol = 1e-10;
        double res;
        klc_fit_report r = new_report(&res);
        ck_klc(klc_target_fit(t, 6, phi, NULL, log_w, &o, &r));
        double lam;
        ck_klc(klc_target_get_lambda(t, &lam, 1));
        ck_assert_msg(fabs(lam - exact) < 1e-7, "method %d: lambda %.10f, exact %.10f", method, lam,
                      exact);
        ck_assert_int_eq(r.converged, 1);
        ck_assert_int_eq(r.infeasible, 0);
        ck_assert_int_eq(r.n_used, 6);
        ck_assert_double_lt(fabs(res), 1e-10);
        ck_assert_double_eq(r.residual_norm, fabs(res));
        ck_assert_uint_eq(klc_target_version(t), v0 + 1);
        if (method == KLC_FIT_NEWTON) ck_assert_int_le(r.iterations, 10);
        /* ESS and the largest share of the final weights, exactly. */
        double w[6], s = 0, s2 = 0, top = 0;
        for (int i = 0; i < 6; i++) {
            w[i] = a[i] * exp(lam * phi[i]);
            s += w[i];
            s2 += w[i] * w[i];
        }
        for (int i = 0; i < 6; i++) top = fmax(top, w[i] / s);
        ck_assert_double_lt(fabs(r.ess - s * s / s2), 1e-9);
        ck_assert_double_lt(fabs(r.max_weight_share - top), 1e-12);
        ck_assert_double_lt(fabs(r.spread - fabs(lam)), 1e-12);
        klc_target_destroy(t);
        klc_feature_destroy(f);
        ck_assert_int_eq(st.releases, 1);
    }
}
END_TEST

/* Three features over every sequence of a tiny model (one constant on the space),
 * fitted by Newton and by gradient steps; the fitted target meets mu_bar exactly. */
START_TEST(test_fit_enumeration) {
    space sp;
    space_make(&sp);
    id_feature s1, s2;
    klc_feature *has1 = id_feat(&s1, 0, "has1"), *count2 = id_feat(&s2, 1, "count2"), *len = NULL;
    ck_klc(klc_feature_length(NULL, &len));
    for (int method = 0; method < 2; method++) {
        klc_target *t = NULL;
        ck_klc(klc_target_create(sp.model, NULL, &t));
        ck_assert_ptr_eq(klc_target_base(t), sp.model);
        double mu1 = 0.35, mu2[1] = {1.4}, mu3 = GEN;
        ck_klc(klc_target_add_moment(t, has1, &mu1));
        ck_klc(klc_target_add_moment(t, len, &mu3)); /* constant 3 on every sequence */
        ck_klc(klc_target_add_moment(t, count2, mu2));
        ck_assert_int_eq(klc_target_phi_dim(t), 3);
        ck_assert_int_eq(klc_target_num_lambda(t), 3);
        double lam_len[3] = {0, 0.25, 0}; /* the constant dim keeps its lambda */
        ck_klc(klc_target_set_lambda(t, lam_len, 3));
        double phi[NSEQ * 3], log_P[NSEQ];
        unsigned char b[NSEQ];
        ck_klc(klc_target_log_prob(t, &sp.b, sp.log_a, log_P, phi, b));
        klc_fit_options o;
        klc_fit_options_init(&o, KLC_FIT_OPTIONS_VERSION);
        o.method = method;
        o.tol = 1e-9;
        double res[3];
        klc_fit_report r = new_report(res);
        ck_klc(klc_target_fit(t, NSEQ, phi, b, sp.log_a, &o, &r));
        ck_assert_int_eq(r.converged, 1);
        double lam[3];
        ck_klc(klc_target_get_lambda(t, lam, 3));
        ck_assert_double_eq(lam[1], 0.25);
        /* Exact: log P of every sequence from the fitted target, normalised. */
        ck_klc(klc_target_log_prob(t, &sp.b, sp.log_a, log_P, phi, b));
        double mu[3];
        exact_moments(NSEQ, log_P, phi, 3, mu);
        ck_assert_msg(fabs(mu[0] - mu1) < 1e-6 && fabs(mu[2] - mu2[0]) < 1e-6 &&
                          fabs(mu[1] - 3) < 1e-12,
                      "method %d: E_p[phi] = (%g, %g, %g)", method, mu[0], mu[1], mu[2]);
        for (int j = 0; j < 3; j++) ck_assert_double_lt(fabs(res[j]), 1e-8);
        /* log P = log a + lambda . phi. */
        for (int i = 0; i < NSEQ; i++)
            ck_assert_double_lt(
                fabs(log_P[i] - (sp.log_a[i] + lam[0] * phi[i * 3] + lam[1] * phi[i * 3 + 1] +
                                 lam[2] * phi[i * 3 + 2])),
                1e-12);
        klc_target_destroy(t);
    }
    klc_feature_destroy(has1);
    klc_feature_destroy(count2);
    klc_feature_destroy(len);
    space_free(&sp);
}
END_TEST

/* Importance-sampled fit: samples from q with log_w = log a - log q recover the exact
 * lambda to Monte-Carlo accuracy. */
START_TEST(test_fit_importance_weights) {
    const double a[8] = {0.05, 0.1, 0.2, 0.05, 0.15, 0.25, 0.1, 0.1};
    const double q[8] = {0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125};
    const double f[8] = {1, 0, 1, 0, 0, 1, 0, 0};
    double p = 0.05 + 0.2 + 0.25, mu = 0.3;
    double exact = log(mu * (1 - p) / (p * (1 - mu)));
    enum { N = 40000 };
    double *phi = malloc(N * sizeof(double)), *log_w = malloc(N * sizeof(double));
    klc_rng rng;
    klc_rng_init(&rng, 5, KLC_STREAM_USER);
    for (int i = 0; i < N; i++) {
        int k = (int)(klc_rng_uniform(&rng, (uint64_t)i, 0) * 8);
        phi[i] = f[k];
        log_w[i] = log(a[k]) - log(q[k]);
    }
    id_feature st;
    klc_feature *feat = id_feat(&st, 0, "binary");
    klc_target *t = NULL;
    ck_klc(klc_target_create(NULL, NULL, &t));
    ck_klc(klc_target_add_moment(t, feat, &mu));
    klc_fit_report r = new_report(NULL);
    ck_klc(klc_target_fit(t, N, phi, NULL, log_w, NULL, &r));
    double lam;
    ck_klc(klc_target_get_lambda(t, &lam, 1));
    /* The standard error of lambda here is about 0.015. */
    ck_assert_msg(fabs(lam - exact) < 0.06, "lambda %g, exact %g", lam, exact);
    ck_assert_double_lt(r.residual_norm, 1e-4);
    ck_assert_double_gt(r.ess, N / 3.0);
    ck_assert_double_lt(r.ess, N);
    free(phi);
    free(log_w);
    klc_target_destroy(t);
    klc_feature_destroy(feat);
}
END_TEST

/* Hybrid: a pointwise constraint plus a moment, over the tiny model's space. */
START_TEST(test_hybrid) {
    space sp;
    space_make(&sp);
    id_feature s1, s2;
    klc_feature *notlast0 = id_feat(&s1, 2, "last!=0"), *has1 = id_feat(&s2, 0, "has1");
    klc_target *t = NULL;
    ck_klc(klc_target_create(sp.model, NULL, &t));
    ck_klc(klc_target_add_pointwise(t, notlast0));
    double mu = 0.8;
    ck_klc(klc_target_add_moment(t, has1, &mu));
    ck_assert_int_eq(klc_target_phi_dim(t), 1);
    klc_term_info ti = {.version = KLC_TERM_INFO_VERSION};
    ck_klc(klc_target_term_info(t, 0, &ti));
    ck_assert_int_eq(ti.kind, KLC_TERM_POINTWISE);
    ck_assert_int_eq(ti.phi_offset, -1);
    ck_assert_str_eq(ti.name, "last!=0");
    ck_klc(klc_target_term_info(t, 1, &ti));
    ck_assert_int_eq(ti.kind, KLC_TERM_MOMENT);
    ck_assert_int_eq(ti.phi_offset, 0);
    ck_assert_int_eq(ti.lambda_offset, 0);
    ck_assert_ptr_eq(ti.feature, has1);
    ck_assert_int_eq(klc_target_term_info(t, 2, &ti), KLC_ERR_INVALID_ARGUMENT);

    double phi[NSEQ], log_P[NSEQ];
    unsigned char b[NSEQ];
    ck_klc(klc_target_log_prob(t, &sp.b, sp.log_a, log_P, phi, b));
    int zeros = 0;
    for (int i = 0; i < NSEQ; i++) {
        ck_assert_int_eq(b[i], sp.ids[i * GEN + GEN - 1] != 0);
        if (!b[i]) {
            ck_assert(log_P[i] == -INFINITY);
            zeros++;
        } else {
            ck_assert_double_eq(log_P[i], sp.log_a[i]); /* lambda is still 0 */
        }
    }
    ck_assert_int_eq(zeros, 9);
    klc_fit_options o;
    klc_fit_options_init(&o, KLC_FIT_OPTIONS_VERSION);
    o.tol = 1e-9;
    klc_fit_report r = new_report(NULL);
    ck_klc(klc_target_fit(t, NSEQ, phi, b, sp.log_a, &o, &r));
    ck_assert_int_eq(r.n_used, 18);
    ck_klc(klc_target_log_prob(t, &sp.b, sp.log_a, log_P, phi, b));
    double m;
    exact_moments(NSEQ, log_P, phi, 1, &m);
    ck_assert_double_lt(fabs(m - mu), 1e-6);
    /* The same fit through klc_target_combine, without scoring again. */
    double log_P2[NSEQ];
    ck_klc(klc_target_combine(t, NSEQ, sp.log_a, phi, b, log_P2));
    for (int i = 0; i < NSEQ; i++) ck_assert(log_P2[i] == log_P[i]);
    klc_target_destroy(t);
    klc_feature_destroy(notlast0);
    klc_feature_destroy(has1);
    space_free(&sp);
}
END_TEST

/* Fits that must fail, leaving lambda and the version as they were. */
static void expect_infeasible(klc_target *t, int n, const double *phi, const unsigned char *b,
                              const double *log_w, int index, const char *const *needles) {
    int32_t L = klc_target_num_lambda(t);
    double before[8], after[8];
    ck_klc(klc_target_get_lambda(t, before, (size_t)L));
    uint64_t v = klc_target_version(t);
    klc_fit_report r = new_report(NULL);
    int st = klc_target_fit(t, n, phi, b, log_w, NULL, &r);
    ck_assert_msg(st == KLC_ERR_NUMERIC, "got %s: %s", klc_status_str(st), klc_last_error());
    for (int k = 0; needles[k]; k++)
        ck_assert_msg(strstr(klc_last_error(), needles[k]) != NULL, "'%s' lacks '%s'",
                      klc_last_error(), needles[k]);
    ck_assert_int_eq(r.infeasible, 1);
    ck_assert_int_eq(r.converged, 0);
    ck_assert_int_eq(r.infeasible_index, index);
    ck_klc(klc_target_get_lambda(t, after, (size_t)L));
    for (int j = 0; j < L; j++) ck_assert_double_eq(before[j], after[j]);
    ck_assert_uint_eq(klc_target_version(t), v);
}

START_TEST(test_infeasible_ranges) {
    id_feature s1, s2;
    klc_feature *f1 = id_feat(&s1, 0, "topic:sport"), *f2 = id_feat(&s2, 1, "other");
    klc_target *t = NULL;
    ck_klc(klc_target_create(NULL, NULL, &t));
    double mu[2] = {0.3, 0.5};
    ck_klc(klc_target_add_moment(t, f2, &mu[1]));
    ck_klc(klc_target_add_moment(t, f1, &mu[0]));
    double lam[2] = {0.125, -0.5};
    ck_klc(klc_target_set_lambda(t, lam, 2));
    /* phi rows: (other, sport). */
    const double never[8] = {0, 0, 1, 0, 0, 0, 1, 0};
    const char *n1[] = {"'topic:sport' dimension 0", "target 0.3", "never fires", "4 samples",
                        NULL};
    expect_infeasible(t, 4, never, NULL, NULL, 1, n1);
    const double always[8] = {0, 1, 1, 1, 0, 1, 1, 1};
    const char *n2[] = {"'topic:sport'", "always fires", NULL};
    expect_infeasible(t, 4, always, NULL, NULL, 1, n2);
    /* Fires only where the pointwise constraint fails: never, on the samples that count. */
    const double filtered[8] = {0, 1, 1, 0, 0, 1, 0, 0};
    const unsigned char b[4] = {0, 1, 0, 1};
    const char *n3[] = {"never fires", "2 samples that count", NULL};
    expect_infeasible(t, 4, filtered, b, NULL, 1, n3);
    /* ... or where the importance weight is zero. */
    const double log_w[4] = {-INFINITY, 0, 0, 0};
    const double once[8] = {0, 1, 1, 0, 0, 0, 1, 0};
    const char *n3w[] = {"never fires", "3 samples that count", NULL};
    expect_infeasible(t, 4, once, NULL, log_w, 1, n3w);
    /* A target on the edge of the range needs an infinite lambda. */
    mu[0] = 0.0;
    klc_target_destroy(t);
    ck_klc(klc_target_create(NULL, NULL, &t));
    ck_klc(klc_target_add_moment(t, f1, &mu[0]));
    const double some[3] = {0, 1, 0};
    const char *n4[] = {"'topic:sport'", "smallest", "-inf", "pointwise", NULL};
    expect_infeasible(t, 3, some, NULL, NULL, 0, n4);
    /* Outside the range of a real-valued feature. */
    klc_target_destroy(t);
    ck_klc(klc_target_create(NULL, NULL, &t));
    double mu_big = 3.5;
    ck_klc(klc_target_add_moment(t, f2, &mu_big));
    const double counts[3] = {0, 1, 3};
    const char *n5[] = {"'other'", "outside the range [0, 3]", NULL};
    expect_infeasible(t, 3, counts, NULL, NULL, 0, n5);
    /* No sample counts at all. */
    const unsigned char none[3] = {0, 0, 0};
    ck_assert_int_eq(klc_target_fit(t, 3, counts, none, NULL, NULL, NULL), KLC_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "no sample counts"));
    klc_target_destroy(t);
    klc_feature_destroy(f1);
    klc_feature_destroy(f2);
}
END_TEST

/* A feature of dim 4 from a table: row i of phi is table[i]. */
typedef struct table_feature {
    const double *rows;
    int dim;
} table_feature;

static int table_score(void *self, const klc_seq_batch *s, double *out) {
    table_feature *tf = self;
    for (int32_t i = 0; i < s->n; i++)
        for (int k = 0; k < tf->dim; k++) out[i * tf->dim + k] = tf->rows[i * tf->dim + k];
    return 0;
}

START_TEST(test_infeasible_hull) {
    /* Four mutually exclusive topics; a fifth of the samples has none. Each topic at 30%
     * sums to 1.2 > 1: outside the hull (the simplex sum <= 1) though every coordinate is
     * inside its range. */
    enum { N = 10 };
    double rows[N * 4] = {0};
    for (int i = 0; i < 8; i++) rows[i * 4 + i % 4] = 1;
    table_feature tf = {rows, 4};
    klc_feature_ops ops = {KLC_FEATURE_OPS_VERSION, "topics", 4, table_score, NULL};
    klc_feature *f = NULL;
    ck_klc(klc_feature_create(&ops, &tf, NULL, &f));
    klc_target *t = NULL;
    ck_klc(klc_target_create(NULL, NULL, &t));
    const double at30[4] = {0.3, 0.3, 0.3, 0.3};
    ck_klc(klc_target_add_moment(t, f, at30));
    const char *n1[] = {"convex hull", "'topics'", "target 0.3", NULL};
    expect_infeasible(t, N, rows, NULL, NULL, -1, n1);
    /* Gradient steps detect it too. */
    klc_fit_options o;
    klc_fit_options_init(&o, KLC_FIT_OPTIONS_VERSION);
    o.method = KLC_FIT_GRADIENT;
    klc_fit_report r = new_report(NULL);
    ck_assert_int_eq(klc_target_fit(t, N, rows, NULL, NULL, &o, &r), KLC_ERR_NUMERIC);
    ck_assert_int_eq(r.infeasible, 1);
    klc_target_destroy(t);

    /* At exactly 25% each the target lies on the hull's boundary: the fit gets within
     * tol by pushing the samples without a topic towards weight 0, as documented. */
    ck_klc(klc_target_create(NULL, NULL, &t));
    const double at25[4] = {0.25, 0.25, 0.25, 0.25};
    ck_klc(klc_target_add_moment(t, f, at25));
    r = new_report(NULL);
    ck_klc(klc_target_fit(t, N, rows, NULL, NULL, NULL, &r));
    ck_assert_double_lt(r.residual_norm, 1e-4);
    ck_assert_double_gt(r.spread, 5.0);
    klc_target_destroy(t);

    /* Collinear features: the second is 1 - the first on every sample, so targets off
     * the line are outside the hull while each coordinate is inside its range. */
    double rows2[N * 2];
    for (int i = 0; i < N; i++) {
        rows2[2 * i] = i % 3 == 0;
        rows2[2 * i + 1] = 1 - rows2[2 * i];
    }
    table_feature tf2 = {rows2, 2};
    klc_feature_ops ops2 = {KLC_FEATURE_OPS_VERSION, "pair", 2, table_score, NULL};
    klc_feature *f2 = NULL;
    ck_klc(klc_feature_create(&ops2, &tf2, NULL, &f2));
    ck_klc(klc_target_create(NULL, NULL, &t));
    const double off_line[2] = {0.3, 0.3};
    ck_klc(klc_target_add_moment(t, f2, off_line));
    const char *n2[] = {"convex hull", "'pair'", NULL};
    expect_infeasible(t, N, rows2, NULL, NULL, -1, n2);
    klc_target_destroy(t);
    /* On the line it is feasible despite the singular covariance. */
    ck_klc(klc_target_create(NULL, NULL, &t));
    const double on_line[2] = {0.3, 0.7};
    ck_klc(klc_target_add_moment(t, f2, on_line));
    r = new_report(NULL);
    ck_klc(klc_target_fit(t, N, rows2, NULL, NULL, NULL, &r));
    ck_assert_double_lt(r.residual_norm, 1e-4);
    klc_target_destroy(t);
    klc_feature_destroy(f);
    klc_feature_destroy(f2);
}
END_TEST

/* -inf flows through log P without NaN; NaN and +inf are refused. */
START_TEST(test_minus_infinity) {
    id_feature s1, s2;
    klc_feature *pw = id_feat(&s1, 2, "last!=0"), *m = id_feat(&s2, 3, "first");
    klc_target *t = NULL;
    ck_klc(klc_target_create(NULL, NULL, &t));
    ck_klc(klc_target_add_pointwise(t, pw));
    double mu = 1.0;
    ck_klc(klc_target_add_moment(t, m, &mu));
    double lam = -1e308;
    ck_klc(klc_target_set_lambda(t, &lam, 1));
    int32_t ids[4 * 2] = {1, 1, 2, 0, 0, 1, 3, 3}, lengths[4] = {2, 2, 2, 0};
    klc_seq_batch b = {sizeof b, 4, 2, ids, lengths, NULL, NULL, NULL};
    double log_a[4] = {-1.0, -2.0, -INFINITY, -3.0}, log_P[4], phi[4];
    unsigned char bb[4];
    /* Seq 0: first 1, lambda*1 = -1e308: finite. Seq 1: b = 0. Seq 2: log a = -inf.
     * Seq 3: empty, b = 0. */
    ck_klc(klc_target_log_prob(t, &b, log_a, log_P, phi, bb));
    ck_assert(isfinite(log_P[0]) && log_P[0] < -1e307);
    ck_assert(log_P[1] == -INFINITY && log_P[2] == -INFINITY && log_P[3] == -INFINITY);
    /* 2 * -1e308 overflows to -inf: a valid log P. */
    ids[0] = 2;
    ck_klc(klc_target_log_prob(t, &b, log_a, log_P, NULL, NULL));
    ck_assert(log_P[0] == -INFINITY);
    for (int i = 0; i < 4; i++) ck_assert(!isnan(log_P[i]));
    /* ... while +inf is an error. */
    lam = 1e308;
    ck_klc(klc_target_set_lambda(t, &lam, 1));
    ck_assert_int_eq(klc_target_log_prob(t, &b, log_a, log_P, NULL, NULL), KLC_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "sequence 0"));
    lam = 0.5;
    ck_klc(klc_target_set_lambda(t, &lam, 1));
    log_a[1] = NAN;
    ck_assert_int_eq(klc_target_log_prob(t, &b, log_a, log_P, NULL, NULL), KLC_ERR_NUMERIC);
    log_a[1] = INFINITY;
    ck_assert_int_eq(klc_target_log_prob(t, &b, log_a, log_P, NULL, NULL), KLC_ERR_NUMERIC);
    /* NULL log a: log P - log a. */
    ck_klc(klc_target_log_prob(t, &b, NULL, log_P, phi, bb));
    ck_assert_double_eq(log_P[0], 0.5 * 2);
    ck_assert(log_P[1] == -INFINITY);
    ck_assert(log_P[2] == 0.0 && phi[2] == 0.0);
    /* combine refuses a non-finite phi and an out-of-range b in fit. */
    phi[0] = NAN;
    ck_assert_int_eq(klc_target_combine(t, 4, NULL, phi, bb, log_P), KLC_ERR_NUMERIC);
    phi[0] = 2;
    unsigned char bad_b[4] = {1, 2, 1, 1};
    ck_assert_int_eq(klc_target_fit(t, 4, phi, bad_b, NULL, NULL, NULL), KLC_ERR_INVALID_ARGUMENT);
    double bad_w[4] = {0, NAN, 0, 0};
    ck_assert_int_eq(klc_target_fit(t, 4, phi, NULL, bad_w, NULL, NULL), KLC_ERR_INVALID_ARGUMENT);
    klc_target_destroy(t);
    klc_feature_destroy(pw);
    klc_feature_destroy(m);
}
END_TEST

START_TEST(test_from_reward) {
    id_feature s1, s2;
    klc_feature *r = id_feat(&s1, 1, "reward"), *m = id_feat(&s2, 0, "has1");
    klc_target *t = NULL;
    ck_assert_int_eq(klc_target_from_reward(NULL, r, 0.0, NULL, &t), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(klc_target_from_reward(NULL, r, NAN, NULL, &t), KLC_ERR_INVALID_ARGUMENT);
    ck_klc(klc_target_from_reward(NULL, r, 0.5, NULL, &t));
    double beta = 0;
    ck_klc(klc_target_get_beta(t, &beta));
    ck_assert_double_eq(beta, 0.5);
    ck_assert_int_eq(klc_target_num_lambda(t), 0);
    ck_assert_int_eq(klc_target_phi_dim(t), 1);
    int32_t ids[3 * 3] = {2, 2, 0, 1, 0, 0, 2, 1, 2}, lengths[3] = {3, 3, 3};
    klc_seq_batch b = {sizeof b, 3, 3, ids, lengths, NULL, NULL, NULL};
    double log_a[3] = {-1, -2, -3}, log_P[3], phi[3];
    ck_klc(klc_target_log_prob(t, &b, log_a, log_P, phi, NULL));
    for (int i = 0; i < 3; i++) ck_assert_double_eq(log_P[i], log_a[i] + phi[i] / 0.5);
    ck_assert(phi[0] == 2 && phi[1] == 0 && phi[2] == 2);
    uint64_t v = klc_target_version(t);
    ck_klc(klc_target_set_beta(t, 4.0));
    ck_assert_uint_eq(klc_target_version(t), v + 1);
    ck_assert_int_eq(klc_target_set_beta(t, -1.0), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(klc_target_version(t), v + 1);
    ck_klc(klc_target_log_prob(t, &b, log_a, log_P, NULL, NULL));
    for (int i = 0; i < 3; i++) ck_assert_double_eq(log_P[i], log_a[i] + phi[i] / 4.0);
    /* Nothing to fit yet; then a moment on top of the reward: the reward stays fixed in
     * the fit, and the fitted target meets the moment exactly. */
    ck_assert_int_eq(klc_target_fit(t, 3, phi, NULL, NULL, NULL, NULL), KLC_ERR_STATE);
    double mu = 0.5;
    ck_klc(klc_target_add_moment(t, m, &mu));
    ck_assert_int_eq(klc_target_phi_dim(t), 2);
    double phi2[6];
    ck_klc(klc_target_log_prob(t, &b, log_a, log_P, phi2, NULL));
    klc_fit_options o;
    klc_fit_options_init(&o, KLC_FIT_OPTIONS_VERSION);
    o.tol = 1e-10;
    ck_klc(klc_target_fit(t, 3, phi2, NULL, log_a, &o, NULL));
    ck_klc(klc_target_log_prob(t, &b, log_a, log_P, phi2, NULL));
    double mom[2];
    exact_moments(3, log_P, phi2, 2, mom);
    ck_assert_double_lt(fabs(mom[1] - 0.5), 1e-9);
    ck_klc(klc_target_get_beta(t, &beta));
    ck_assert_double_eq(beta, 4.0);
    klc_target_destroy(t);
    /* Only reward targets have a beta; a reward has dim 1. */
    ck_klc(klc_target_create(NULL, NULL, &t));
    ck_assert_int_eq(klc_target_get_beta(t, &beta), KLC_ERR_STATE);
    ck_assert_int_eq(klc_target_set_beta(t, 1.0), KLC_ERR_STATE);
    klc_target_destroy(t);
    double rows[2] = {0};
    table_feature tf = {rows, 2};
    klc_feature_ops ops = {KLC_FEATURE_OPS_VERSION, "two", 2, table_score, NULL};
    klc_feature *two = NULL;
    ck_klc(klc_feature_create(&ops, &tf, NULL, &two));
    t = (klc_target *)1;
    ck_assert_int_eq(klc_target_from_reward(NULL, two, 1.0, NULL, &t), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(t);
    klc_feature_destroy(two);
    klc_feature_destroy(r);
    klc_feature_destroy(m);
}
END_TEST

/* The version counter and the target's state across failures. */
START_TEST(test_version_and_failures) {
    id_feature s1, s2;
    klc_feature *f = id_feat(&s1, 0, "has1"), *pw = id_feat(&s2, 1, "count2-as-pointwise");
    klc_target *t = NULL;
    ck_klc(klc_target_create(NULL, NULL, &t));
    ck_assert_uint_eq(klc_target_version(NULL), 0);
    uint64_t v = klc_target_version(t);
    ck_assert_uint_ge(v, 1);
    double mu = 0.5, lam = 0.25, nan_mu = NAN;
    ck_assert_int_eq(klc_target_add_moment(t, f, &nan_mu), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(klc_target_version(t), v);
    ck_assert_int_eq(klc_target_num_terms(t), 0);
    ck_klc(klc_target_add_moment(t, f, &mu));
    ck_assert_uint_eq(klc_target_version(t), ++v);
    ck_klc(klc_target_set_lambda(t, &lam, 1));
    ck_assert_uint_eq(klc_target_version(t), ++v);
    double inf = INFINITY;
    ck_assert_int_eq(klc_target_set_lambda(t, &inf, 1), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(klc_target_set_lambda(t, &lam, 2), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(klc_target_version(t), v);
    double got;
    ck_klc(klc_target_get_mu_bar(t, &got, 1));
    ck_assert_double_eq(got, 0.5);
    ck_klc(klc_target_add_pointwise(t, pw));
    ck_assert_uint_eq(klc_target_version(t), ++v);
    ck_assert_int_eq(klc_target_num_terms(t), 2);

    /* A pointwise feature that gives 2 is an error naming it. */
    int32_t ids[2 * 2] = {2, 2, 1, 0}, lengths[2] = {2, 2};
    klc_seq_batch b = {sizeof b, 2, 2, ids, lengths, NULL, NULL, NULL};
    double log_P[2];
    ck_assert_int_eq(klc_target_log_prob(t, &b, NULL, log_P, NULL, NULL), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "'count2-as-pointwise'"));
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "gave 2"));
    /* A failing user feature: KLC_ERR_CALLBACK, and the target still works. */
    ids[0] = 2;
    ids[1] = 1;
    s1.fail = 5;
    ck_assert_int_eq(klc_target_log_prob(t, &b, NULL, log_P, NULL, NULL), KLC_ERR_CALLBACK);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "'has1'"));
    s1.fail = 0;
    ck_klc(klc_target_log_prob(t, &b, NULL, log_P, NULL, NULL));
    ck_assert_double_eq(log_P[0], 0.25);
    ck_assert(log_P[1] == -INFINITY); /* count2 = 0 there */
    ck_assert_uint_eq(klc_target_version(t), v);

    /* A fit that does not converge in its iterations fails and changes nothing. */
    const double phi[4] = {1, 0, 0, 0};
    klc_fit_options o;
    klc_fit_options_init(&o, KLC_FIT_OPTIONS_VERSION);
    o.method = KLC_FIT_GRADIENT;
    o.max_iter = 1;
    o.tol = 1e-12;
    o.step = 1e-6;
    ck_assert_int_eq(klc_target_fit(t, 4, phi, NULL, NULL, &o, NULL), KLC_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "did not converge"));
    ck_klc(klc_target_get_lambda(t, &got, 1));
    ck_assert_double_eq(got, 0.25);
    ck_assert_uint_eq(klc_target_version(t), v);
    o.method = 9;
    ck_assert_int_eq(klc_target_fit(t, 4, phi, NULL, NULL, &o, NULL), KLC_ERR_INVALID_ARGUMENT);
    klc_fit_report bad_report = {0};
    ck_assert_int_eq(klc_target_fit(t, 4, phi, NULL, NULL, NULL, &bad_report),
                     KLC_ERR_INVALID_ARGUMENT);
    klc_target_destroy(t);
    klc_target_destroy(NULL);
    klc_feature_destroy(f);
    klc_feature_destroy(pw);
    ck_assert_int_eq(s1.releases, 1);
    ck_assert_int_eq(s2.releases, 1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("target");
    TCase *tc = tcase_create("target");
    tcase_add_test(tc, test_fit_closed_form);
    tcase_add_test(tc, test_fit_enumeration);
    tcase_add_test(tc, test_fit_importance_weights);
    tcase_add_test(tc, test_hybrid);
    tcase_add_test(tc, test_infeasible_ranges);
    tcase_add_test(tc, test_infeasible_hull);
    tcase_add_test(tc, test_minus_infinity);
    tcase_add_test(tc, test_from_reward);
    tcase_add_test(tc, test_version_and_failures);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
