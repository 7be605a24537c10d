/* Objectives and the gradient-estimator core, by exact enumeration: a tiny model over a
 * vocabulary of 4 (tokens 0, 1, 2 and the end-of-text token 3) generates at most 3
 * tokens after a 1-token prompt, so every sequence it can produce is listed (40 of them)
 * and Z, p, every divergence and every expected gradient are exact sums.
 *
 * The distribution: x = [EOT, g1, .., gk], generation stops after the end-of-text token
 * or after 3 tokens, whichever comes first; pi(x) is the product of the model's
 * next-token probabilities of g1..gk. The 40 sequences are [EOT] (k = 1), [a, EOT]
 * (a in 0..2) and [a, b, c] (a, b in 0..2, c in 0..3, c = EOT or truncated); their
 * probabilities sum to 1 exactly, truncated ones included as they are. */
#include "core/internal.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { V = 4, EOT = 3, GEN = 3, T = 1 + GEN, NX = 40 };

typedef struct world {
    klc_model *pi, *a, *q;
    int32_t tokens[NX * T], lengths[NX];
    klc_seqs seqs;
    double logpi[NX], loga[NX], logq[NX];
    float logpi_tok[NX * T], loga_tok[NX * T], logq_tok[NX * T];
    double logP_pw[NX], logP_d[NX], reward[NX];
    double logZ_pw, logZ_d;
    size_t n_params;
} world;

static klc_model *tiny_model(uint64_t seed, float std) {
    klc_model_options o;
    klc_model_options_init(&o, KLC_MODEL_OPTIONS_VERSION);
    o.n_layer = 1;
    o.n_embd = 8;
    o.n_head = 2;
    o.vocab_size = V;
    o.n_ctx = T;
    o.init_std = std;
    o.init_seed = seed;
    klc_model *m = NULL;
    ck_klc(klc_model_create(&o, &m));
    return m;
}

static void score(klc_model *m, const klc_seqs *s, double *seq_lp, float *tok_lp) {
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    o.seq_logprobs = seq_lp;
    o.token_logprobs = tok_lp;
    ck_klc(klc_model_score(m, s, &o));
}

static int count_token(const world *w, int i, int tok) {
    int c = 0;
    for (int t = 1; t < w->lengths[i]; t++) c += w->tokens[i * T + t] == tok;
    return c;
}

static void world_make(world *w) {
    memset(w, 0, sizeof *w);
    int n = 0;
    w->tokens[n * T] = EOT, w->tokens[n * T + 1] = EOT, w->lengths[n++] = 2;
    for (int a = 0; a < 3; a++) {
        const int32_t x[T] = {EOT, a, EOT, 0};
        memcpy(w->tokens + n * T, x, sizeof x);
        w->lengths[n++] = 3;
    }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 4; c++) {
                const int32_t x[T] = {EOT, a, b, c};
                memcpy(w->tokens + n * T, x, sizeof x);
                w->lengths[n++] = 4;
            }
    ck_assert_int_eq(n, NX);
    w->seqs = (klc_seqs){NX, T, w->tokens, w->lengths, NULL, NULL};
    /* Logits of a few tenths: distributions far from uniform, yet no sequence so rare
     * under q that importance weights P/q become heavy-tailed (max p/q is 29 here). */
    w->pi = tiny_model(1, 0.2f);
    w->a = tiny_model(2, 0.2f);
    w->q = tiny_model(3, 0.2f);
    klc_model_params(w->pi, &w->n_params);
    score(w->pi, &w->seqs, w->logpi, w->logpi_tok);
    score(w->a, &w->seqs, w->loga, w->loga_tok);
    score(w->q, &w->seqs, w->logq, w->logq_tok);
    double total = 0;
    for (int i = 0; i < NX; i++) {
        total += exp(w->logpi[i]);
        /* pointwise: x must contain token 0; distributional: exp(0.8 * #token 1) */
        w->logP_pw[i] = count_token(w, i, 0) > 0 ? w->loga[i] : -INFINITY;
        w->logP_d[i] = w->loga[i] + 0.8 * count_token(w, i, 1);
        w->reward[i] = count_token(w, i, 0) + 0.25 * count_token(w, i, 2);
    }
    ck_assert_msg(fabs(total - 1) < 1e-5, "the enumerated pi sums to %.8f", total);
    w->logZ_pw = tu_logsumexp(w->logP_pw, NX);
    w->logZ_d = tu_logsumexp(w->logP_d, NX);
}

static void world_free(world *w) {
    klc_model_destroy(w->pi);
    klc_model_destroy(w->a);
    klc_model_destroy(w->q);
}

/* --- Exact objectives -------------------------------------------------------------------- */

typedef struct ocase {
    const char *label;
    int32_t kind, baseline, divergence, token_mean;
    double beta, gamma;
    int target;    /* 0 none, 1 pointwise, 2 distributional */
    int on_policy; /* q = pi */
    int preload;   /* a moving-average baseline loaded from one earlier batch */
} ocase;

static const double *target_of(const world *w, const ocase *c, double *log_z) {
    *log_z = c->target == 1 ? w->logZ_pw : w->logZ_d;
    return c->target == 1 ? w->logP_pw : w->logP_d;
}

/* The objective's exact value as a function of the policy's log-probabilities lp (every
 * other distribution fixed): the core's gradient must be its gradient. */
static double exact_loss(const world *w, const ocase *c, const double *lp) {
    double L = 0, lz;
    const double *logP = target_of(w, c, &lz);
    for (int i = 0; i < NX; i++) {
        const double pi = exp(lp[i]), q = exp(w->logq[i]);
        const double p = exp(logP[i] - lz);
        switch (c->kind) {
        case KLC_OBJECTIVE_REINFORCE:
            L -= pi * w->reward[i];
            break;
        case KLC_OBJECTIVE_KL_CONTROL:
        case KLC_OBJECTIVE_KL_CONTROL_TOKEN:
            L -= pi * (w->reward[i] - c->beta * (lp[i] - w->loga[i]));
            break;
        case KLC_OBJECTIVE_DPG:
        case KLC_OBJECTIVE_GDCPP:
            L -= p * lp[i];
            break;
        case KLC_OBJECTIVE_MLE:
            L -= q * lp[i] * (c->token_mean ? NX / 115.0 : 1.0);
            break;
        case KLC_OBJECTIVE_FDPG:
            switch (c->divergence) {
            case KLC_DIVERGENCE_FORWARD_KL:
                L += p > 0 ? p * (log(p) - lp[i]) : 0;
                break;
            case KLC_DIVERGENCE_REVERSE_KL:
                L += pi * (lp[i] - log(p));
                break;
            case KLC_DIVERGENCE_JS:
                L += 0.5 * (pi * log(2 * pi / (pi + p)) + (p > 0 ? p * log(2 * p / (pi + p)) : 0));
                break;
            case KLC_DIVERGENCE_TV:
                L += 0.5 * fabs(pi - p);
                break;
            default:
                L += (pi - p) * (pi - p) / pi;
                break;
            }
            break;
        }
    }
    return L;
}

static klc_objective *make_objective(const ocase *c) {
    klc_objective_options o;
    ck_klc(klc_objective_options_init(&o, KLC_OBJECTIVE_OPTIONS_VERSION));
    o.kind = c->kind;
    o.baseline = c->baseline;
    o.divergence = c->divergence ? c->divergence : KLC_DIVERGENCE_FORWARD_KL;
    o.token_mean = c->token_mean;
    if (c->beta > 0) o.beta = c->beta;
    if (c->gamma > 0) o.gamma = c->gamma;
    klc_objective *obj = NULL;
    ck_klc(klc_objective_builtin(&o, &obj));
    return obj;
}

/* A view of a batch of sequences idx[0..n) of the world (all of them when idx is NULL),
 * with its arrays gathered into b. */
typedef struct batch {
    int n;
    int32_t tokens[NX * T * 8], lengths[NX * 8];
    double logpi[NX * 8], loga[NX * 8], logq[NX * 8], logP[NX * 8], reward[NX * 8];
    float logpi_tok[NX * T * 8], loga_tok[NX * T * 8], logq_tok[NX * T * 8];
    klc_seqs seqs;
    klc_step_view view;
} batch;

static void batch_make(batch *b, const world *w, const ocase *c, const int *idx, int n) {
    b->n = n;
    double lz = NAN;
    const double *logP = c->target ? target_of(w, c, &lz) : NULL;
    for (int j = 0; j < n; j++) {
        const int i = idx ? idx[j] : j;
        memcpy(b->tokens + j * T, w->tokens + i * T, sizeof(int32_t) * T);
        memcpy(b->logpi_tok + j * T, w->logpi_tok + i * T, sizeof(float) * T);
        memcpy(b->loga_tok + j * T, w->loga_tok + i * T, sizeof(float) * T);
        memcpy(b->logq_tok + j * T, (c->on_policy ? w->logpi_tok : w->logq_tok) + i * T,
               sizeof(float) * T);
        b->lengths[j] = w->lengths[i];
        b->logpi[j] = w->logpi[i];
        b->loga[j] = w->loga[i];
        b->logq[j] = c->on_policy ? w->logpi[i] : w->logq[i];
        b->logP[j] = logP ? logP[i] : NAN;
        b->reward[j] = w->reward[i];
    }
    b->seqs = (klc_seqs){n, T, b->tokens, b->lengths, NULL, NULL};
    klc_step_view *v = &b->view;
    ck_klc(klc_step_view_init(v, KLC_STEP_VIEW_VERSION));
    v->n_seq = n;
    v->max_len = T;
    v->tokens = b->tokens;
    v->lengths = b->lengths;
    v->logq = b->logq;
    v->loga = b->loga;
    /* On-policy steps leave logpi out: the library must take logq in its place. */
    v->logpi = c->on_policy ? NULL : b->logpi;
    v->logP = logP ? b->logP : NULL;
    v->reward = b->reward;
    v->logq_tok = b->logq_tok;
    v->loga_tok = b->loga_tok;
    v->logpi_tok = c->on_policy ? NULL : b->logpi_tok;
    v->log_z = lz;
    v->on_policy = c->on_policy;
    v->full_support = 1;
}

/* The gradient the core accumulates for a batch, into g [n_params]. */
static void core_grad(const world *w, klc_objective *obj, const batch *b, const double *mass,
                      int micro_batch, float *g) {
    ck_klc(klc_model_zero_grads(w->pi));
    klc_accumulate_options o;
    ck_klc(klc_accumulate_options_init(&o, KLC_ACCUMULATE_OPTIONS_VERSION));
    o.mass = mass;
    o.micro_batch = micro_batch;
    ck_klc(klc_objective_accumulate(obj, w->pi, &b->view, &b->seqs, &o));
    memcpy(g, klc_model_grads(w->pi, NULL), sizeof(float) * w->n_params);
}

static double dot(const float *x, const float *y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * y[i];
    return s;
}

static void random_direction(float *d, size_t n, uint64_t seed) {
    klc_rng r;
    klc_rng_init(&r, seed, KLC_STREAM_USER);
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        d[i] = (float)klc_rng_normal(&r, i, 0);
        s += (double)d[i] * d[i];
    }
    for (size_t i = 0; i < n; i++) d[i] = (float)(d[i] / sqrt(s));
}

/* The exact gradient of the enumerated objective: the core over every sequence, each with
 * mass q(x) (pi(x) on-policy), so that sum_x q(x) w(x) grad log pi(x) is summed exactly. */
static void exact_expectation(const world *w, const ocase *c, klc_objective *obj, float *g) {
    static batch b;
    batch_make(&b, w, c, NULL, NX);
    double mass[NX];
    for (int i = 0; i < NX; i++) mass[i] = exp(c->on_policy ? w->logpi[i] : w->logq[i]);
    core_grad(w, obj, &b, mass, 0, g);
}

/* (L(theta + h d) - L(theta - h d)) against g . (theta+ - theta-), along d. */
static void check_directional(world *w, const ocase *c, const float *g, const float *d,
                              const char *dir_name) {
    const double h = 1e-2;
    size_t n = w->n_params;
    float *p = klc_model_params(w->pi, NULL);
    float *saved = malloc(sizeof(float) * n), *delta = malloc(sizeof(float) * n);
    memcpy(saved, p, sizeof(float) * n);
    double lp[NX], L[2];
    for (int s = 0; s < 2; s++) {
        for (size_t k = 0; k < n; k++) p[k] = (float)(saved[k] + (s ? -h : h) * d[k]);
        if (s == 0)
            memcpy(delta, p, sizeof(float) * n);
        else
            for (size_t k = 0; k < n; k++) delta[k] -= p[k];
        score(w->pi, &w->seqs, lp, NULL);
        L[s] = exact_loss(w, c, lp);
    }
    memcpy(p, saved, sizeof(float) * n);
    const double fd = L[0] - L[1], an = dot(g, delta, n);
    const double scale = 2 * h * sqrt(dot(g, g, n));
    ck_assert_msg(fabs(fd - an) <= 2e-3 * scale + 1e-7,
                  "%s along %s: finite difference %.8e, core gradient %.8e (|g| 2h = %.3e)",
                  c->label, dir_name, fd, an, scale);
    free(saved);
    free(delta);
}

static const ocase CASES[] = {
    {"reinforce", KLC_OBJECTIVE_REINFORCE, KLC_BASELINE_NONE, 0, 0, 0, 0, 0, 1, 0},
    {"reinforce, moving average", KLC_OBJECTIVE_REINFORCE, KLC_BASELINE_MOVING_AVERAGE, 0, 0, 0, 0,
     0, 1, 1},
    {"kl_control", KLC_OBJECTIVE_KL_CONTROL, KLC_BASELINE_NONE, 0, 0, 0.3, 0, 0, 1, 0},
    {"kl_control, moving average", KLC_OBJECTIVE_KL_CONTROL, KLC_BASELINE_MOVING_AVERAGE, 0, 0, 0.3,
     0, 0, 1, 1},
    {"kl_control_token", KLC_OBJECTIVE_KL_CONTROL_TOKEN, KLC_BASELINE_NONE, 0, 0, 0.3, 1, 0, 1, 0},
    {"kl_control_token, moving average", KLC_OBJECTIVE_KL_CONTROL_TOKEN,
     KLC_BASELINE_MOVING_AVERAGE, 0, 0, 0.3, 1, 0, 1, 1},
    {"dpg, pointwise", KLC_OBJECTIVE_DPG, 0, 0, 0, 0, 0, 1, 0, 0},
    {"dpg, distributional", KLC_OBJECTIVE_DPG, 0, 0, 0, 0, 0, 2, 0, 0},
    {"gdcpp, pointwise", KLC_OBJECTIVE_GDCPP, 0, 0, 0, 0, 0, 1, 0, 0},
    {"gdcpp, on-policy", KLC_OBJECTIVE_GDCPP, 0, 0, 0, 0, 0, 2, 1, 0},
    {"fdpg forward kl", KLC_OBJECTIVE_FDPG, KLC_BASELINE_NONE, KLC_DIVERGENCE_FORWARD_KL, 0, 0, 0,
     1, 0, 0},
    {"fdpg reverse kl", KLC_OBJECTIVE_FDPG, KLC_BASELINE_NONE, KLC_DIVERGENCE_REVERSE_KL, 0, 0, 0,
     2, 0, 0},
    {"fdpg js", KLC_OBJECTIVE_FDPG, KLC_BASELINE_NONE, KLC_DIVERGENCE_JS, 0, 0, 0, 1, 0, 0},
    {"fdpg js, moving average", KLC_OBJECTIVE_FDPG, KLC_BASELINE_MOVING_AVERAGE, KLC_DIVERGENCE_JS,
     0, 0, 0, 1, 0, 1},
    {"fdpg tv", KLC_OBJECTIVE_FDPG, KLC_BASELINE_NONE, KLC_DIVERGENCE_TV, 0, 0, 0, 1, 0, 0},
    {"fdpg chi2", KLC_OBJECTIVE_FDPG, KLC_BASELINE_NONE, KLC_DIVERGENCE_CHI2, 0, 0, 0, 1, 0, 0},
    {"fdpg chi2, distributional", KLC_OBJECTIVE_FDPG, KLC_BASELINE_NONE, KLC_DIVERGENCE_CHI2, 0, 0,
     0, 2, 0, 0},
    {"mle", KLC_OBJECTIVE_MLE, 0, 0, 0, 0, 0, 0, 0, 0},
    {"mle, token mean", KLC_OBJECTIVE_MLE, 0, 0, 1, 0, 0, 0, 0, 0},
};
enum { N_CASES = sizeof CASES / sizeof CASES[0] };

static int takes_no_baseline(const ocase *c) {
    return c->kind == KLC_OBJECTIVE_DPG || c->kind == KLC_OBJECTIVE_GDCPP ||
           c->kind == KLC_OBJECTIVE_MLE;
}

/* A moving-average baseline loaded from one earlier batch (the first 24 sequences): a
 * constant during the step, so the expected gradient must not change. */
static void preload(const world *w, const ocase *c, klc_objective *obj) {
    static batch b;
    batch_make(&b, w, c, NULL, 24);
    ck_klc(klc_objective_after_step(obj, &b.view, NULL));
}

START_TEST(expected_gradient_is_the_objective_gradient) {
    const ocase *c = &CASES[_i];
    world w;
    world_make(&w);
    klc_objective *obj = make_objective(c);
    if (c->preload) preload(&w, c, obj);
    float *g = malloc(sizeof(float) * w.n_params), *d = malloc(sizeof(float) * w.n_params);
    exact_expectation(&w, c, obj, g);
    const double norm = sqrt(dot(g, g, w.n_params));
    ck_assert_msg(norm > 1e-3, "%s: gradient norm %.3e is too small to test", c->label, norm);
    for (size_t k = 0; k < w.n_params; k++) d[k] = (float)(g[k] / norm);
    check_directional(&w, c, g, d, "the gradient");
    for (int r = 0; r < 2; r++) {
        random_direction(d, w.n_params, 100 + r);
        check_directional(&w, c, g, d, r ? "random direction 2" : "random direction 1");
    }
    free(g);
    free(d);
    klc_objective_destroy(obj);
    world_free(&w);
}
END_TEST

/* --- Monte-Carlo ------------------------------------------------------------------------ */

/* n draws from the enumerated distribution exp(logp) by inverse CDF, keyed by (seed, batch). */
static void draw(const double *logp, int n, uint64_t seed, uint64_t batch_id, int *idx) {
    double cdf[NX], total = 0;
    for (int i = 0; i < NX; i++) cdf[i] = total += exp(logp[i]);
    klc_rng r;
    klc_rng_init(&r, seed, KLC_STREAM_SAMPLE);
    r.step = batch_id;
    for (int j = 0; j < n; j++) {
        const double u = klc_rng_uniform(&r, (uint64_t)j, 0) * total;
        int i = 0;
        while (i < NX - 1 && cdf[i] <= u) i++;
        idx[j] = i;
    }
}

static const ocase MC_CASES[] = {
    {"reinforce, leave-one-out", KLC_OBJECTIVE_REINFORCE, KLC_BASELINE_LEAVE_ONE_OUT, 0, 0, 0, 0, 0,
     1, 0},
    {"reinforce, moving average", KLC_OBJECTIVE_REINFORCE, KLC_BASELINE_MOVING_AVERAGE, 0, 0, 0, 0,
     0, 1, 0},
    {"kl_control, leave-one-out", KLC_OBJECTIVE_KL_CONTROL, KLC_BASELINE_LEAVE_ONE_OUT, 0, 0, 0.3,
     0, 0, 1, 0},
    {"kl_control_token, leave-one-out", KLC_OBJECTIVE_KL_CONTROL_TOKEN, KLC_BASELINE_LEAVE_ONE_OUT,
     0, 0, 0.3, 1, 0, 1, 0},
    {"dpg, pointwise", KLC_OBJECTIVE_DPG, 0, 0, 0, 0, 0, 1, 0, 0},
    {"gdcpp, pointwise", KLC_OBJECTIVE_GDCPP, 0, 0, 0, 0, 0, 1, 0, 0},
    {"fdpg js, leave-one-out", KLC_OBJECTIVE_FDPG, KLC_BASELINE_LEAVE_ONE_OUT, KLC_DIVERGENCE_JS, 0,
     0, 0, 1, 0, 0},
    {"fdpg reverse kl, moving average", KLC_OBJECTIVE_FDPG, KLC_BASELINE_MOVING_AVERAGE,
     KLC_DIVERGENCE_REVERSE_KL, 0, 0, 0, 2, 0, 0},
};
enum { N_MC_CASES = sizeof MC_CASES / sizeof MC_CASES[0] };

/* The mean of the estimator over B batches of n samples, projected on three directions
 * (the exact gradient's and two random ones), is within 4 standard errors of the exact
 * gradient's projection; and the test has power: 4 standard errors are well below the
 * gradient along its own direction. The estimator with no baseline is the reference:
 * baselines must not change the expectation. */
START_TEST(monte_carlo_mean_matches_the_exact_gradient) {
    const ocase *c = &MC_CASES[_i];
    /* Small batches, so that a baseline that saw its own sample (a bias of 1/n) would
     * stand out against the standard error of many batches. */
    enum { B = 1500, n = 4, D = 3 };
    world w;
    world_make(&w);
    const size_t np = w.n_params;
    ocase plain = *c;
    plain.baseline = takes_no_baseline(c) ? 0 : KLC_BASELINE_NONE;
    klc_objective *ref = make_objective(&plain), *obj = make_objective(c);
    float *exact = malloc(sizeof(float) * np), *g = malloc(sizeof(float) * np);
    float *dirs = malloc(sizeof(float) * np * D);
    exact_expectation(&w, &plain, ref, exact);
    const double norm = sqrt(dot(exact, exact, np));
    for (size_t k = 0; k < np; k++) dirs[k] = (float)(exact[k] / norm);
    random_direction(dirs + np, np, 7);
    random_direction(dirs + 2 * np, np, 8);
    double sum[D] = {0}, sum2[D] = {0};
    static batch b;
    int idx[n];
    for (int k = 0; k < B; k++) {
        draw(c->on_policy ? w.logpi : w.logq, n, 42, (uint64_t)k, idx);
        batch_make(&b, &w, c, idx, n);
        core_grad(&w, obj, &b, NULL, 0, g);
        ck_klc(klc_objective_after_step(obj, &b.view, NULL));
        for (int d = 0; d < D; d++) {
            const double x = dot(g, dirs + d * np, np);
            sum[d] += x;
            sum2[d] += x * x;
        }
    }
    for (int d = 0; d < D; d++) {
        const double mean = sum[d] / B, var = (sum2[d] - B * mean * mean) / (B - 1);
        const double se = sqrt(var / B), want = dot(exact, dirs + d * np, np);
        ck_assert_msg(fabs(mean - want) <= 4 * se,
                      "%s, direction %d: mean %.6e, exact %.6e, 4 se %.3e", c->label, d, mean, want,
                      4 * se);
        if (d == 0 && getenv("SHOWSE")) fprintf(stderr, "%s rel se %.4f\n", c->label, se / want);
        if (d == 0)
            ck_assert_msg(4 * se < 0.5 * want, "%s: 4 se = %.3e is too wide against %.3e", c->label,
                          4 * se, want);
    }
    free(exact);
    free(g);
    free(dirs);
    klc_objective_destroy(ref);
    klc_objective_destroy(obj);
    world_free(&w);
}
END_TEST

/* --- Variance --------------------------------------------------------------------------- */

/* grad log pi(x) of every sequence, [NX][n_params]. */
static float *per_sequence_grads(world *w) {
    const size_t np = w->n_params;
    float *G = malloc(sizeof(float) * np * NX);
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    float on[T], sm[T];
    for (int t = 0; t < T; t++) on[t] = 1.0f, sm[t] = -1.0f; /* L = +log pi(x) */
    for (int i = 0; i < NX; i++) {
        klc_seqs one = {1, T, w->tokens + i * T, &w->lengths[i], NULL, NULL};
        ck_klc(klc_model_zero_grads(w->pi));
        ck_klc(klc_model_forward_backward(w->pi, &one, &fo, on, sm));
        memcpy(G + i * np, klc_model_grads(w->pi, NULL), sizeof(float) * np);
    }
    return G;
}

/* The trace of the covariance of the per-sample estimator w(x) grad log pi(x) under q,
 * summed exactly over the enumeration. */
static double exact_variance(const world *w, const float *G, const double *logq, const double *wt) {
    const size_t np = w->n_params;
    double second = 0, *mean = calloc(np, sizeof(double)), first = 0;
    for (int i = 0; i < NX; i++) {
        const double q = exp(logq[i]);
        second += q * wt[i] * wt[i] * dot(G + i * np, G + i * np, np);
        for (size_t k = 0; k < np; k++) mean[k] += q * wt[i] * G[i * np + k];
    }
    for (size_t k = 0; k < np; k++) first += mean[k] * mean[k];
    free(mean);
    return second - first;
}

START_TEST(gdcpp_has_lower_variance_than_gdc_on_a_pointwise_task) {
    world w;
    world_make(&w);
    float *G = per_sequence_grads(&w);
    for (int on_policy = 0; on_policy < 2; on_policy++) {
        ocase c = {"", KLC_OBJECTIVE_DPG, 0, 0, 0, 0, 0, 1, on_policy, 0};
        static batch b;
        batch_make(&b, &w, &c, NULL, NX);
        double wd[NX], wg[NX];
        klc_objective *dpg = make_objective(&c);
        c.kind = KLC_OBJECTIVE_GDCPP;
        klc_objective *gdcpp = make_objective(&c);
        ck_klc(klc_objective_weights(dpg, &b.view, wd));
        ck_klc(klc_objective_weights(gdcpp, &b.view, wg));
        const double *logq = on_policy ? w.logpi : w.logq;
        const double vd = exact_variance(&w, G, logq, wd), vg = exact_variance(&w, G, logq, wg);
        ck_assert_msg(vg < vd, "%s: GDC++ variance %.5e is not below GDC's %.5e",
                      on_policy ? "on-policy" : "off-policy", vg, vd);
        klc_objective_destroy(dpg);
        klc_objective_destroy(gdcpp);
    }
    free(G);
    world_free(&w);
}
END_TEST

/* --- Estimation helpers ------------------------------------------------------------------- */

START_TEST(estimators_compute_their_formulas) {
    const double logP[4] = {log(2.0), -INFINITY, log(0.5), log(3.0)};
    const double logq[4] = {log(0.5), log(0.25), log(0.125), log(0.125)};
    const double logm[4] = {log(0.4), log(0.1), log(0.2), log(0.3)};
    /* P/q = 4, 0, 4, 24 */
    double x, ess, share;
    ck_klc(klc_estimate_log_z(4, logP, logq, &x));
    ck_assert_double_eq_tol(x, log(32.0 / 4), 1e-13);
    const double lz = log(8.0);
    ck_klc(klc_estimate_proposal_criterion(4, logP, logq, logm, lz, &x));
    ck_assert_double_eq_tol(
        x, (4 * log(0.5 / 0.4) + 4 * log(0.125 / 0.2) + 24 * log(0.125 / 0.3)) / (4 * 8), 1e-13);
    ck_klc(klc_estimate_kl_target(4, logP, logq, logm, lz, &x));
    ck_assert_double_eq_tol(
        x, -lz + (4 * log(2 / 0.4) + 4 * log(0.5 / 0.2) + 24 * log(3 / 0.3)) / (4 * 8), 1e-13);
    ck_klc(klc_estimate_tv_target(4, logP, logq, logm, lz, &x));
    ck_assert_double_eq_tol(
        x, 0.5 * (fabs(0.8 - 0.5) + fabs(0.4 - 0) + fabs(1.6 - 0.5) + fabs(2.4 - 3)) / 4, 1e-13);
    ck_klc(klc_estimate_kl_sampled(4, logm, logq, &x));
    ck_assert_double_eq_tol(x, (log(0.8) + log(0.4) + log(1.6) + log(2.4)) / 4, 1e-13);
    ck_klc(klc_estimate_ess(4, logP, logq, &ess, &share));
    ck_assert_double_eq_tol(ess, 32.0 * 32 / (16 + 16 + 576), 1e-12);
    ck_assert_double_eq_tol(share, 24.0 / 32, 1e-13);
    /* Every P = 0: Z is 0, and the effective sample size too. */
    const double none[2] = {-INFINITY, -INFINITY};
    ck_klc(klc_estimate_log_z(2, none, logq, &x));
    ck_assert(x == -INFINITY);
    ck_klc(klc_estimate_ess(2, none, logq, &ess, &share));
    ck_assert(ess == 0 && share == 0);
    /* Large log-weights stay finite in log space. */
    const double big[2] = {900, 901}, zero[2] = {0, 0};
    ck_klc(klc_estimate_log_z(2, big, zero, &x));
    ck_assert_double_eq_tol(x, 900 + log((1 + exp(1.0)) / 2), 1e-10);
    /* Bad input names the index. */
    const double nan_q[2] = {0, NAN};
    ck_assert_int_eq(klc_estimate_log_z(2, zero, nan_q, &x), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(klc_last_error(), "logq[1]") != NULL, "%s", klc_last_error());
    ck_assert_int_eq(klc_estimate_log_z(0, zero, zero, &x), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(klc_estimate_kl_target(2, zero, zero, zero, NAN, &x),
                     KLC_ERR_INVALID_ARGUMENT);
}
END_TEST

START_TEST(running_z_is_the_linear_mean_and_resets_with_the_target) {
    klc_z_estimate *z;
    ck_klc(klc_z_estimate_create(2, NULL, &z));
    ck_assert(isnan(klc_z_estimate_log_z(z, 0)));
    ck_klc(klc_z_estimate_add(z, 1, 0, log(2.0)));
    ck_klc(klc_z_estimate_add(z, 1, 0, log(6.0)));
    ck_klc(klc_z_estimate_add(z, 1, 0, -INFINITY));
    ck_assert_double_eq_tol(klc_z_estimate_log_z(z, 0), log(8.0 / 3), 1e-14);
    ck_assert_int_eq(klc_z_estimate_checks(z, 0), 3);
    ck_assert(isnan(klc_z_estimate_log_z(z, 1)));
    /* Per context: a batch adds one check to each context present, from its own samples. */
    const int32_t ctx[4] = {1, 0, 1, 1};
    const double logP[4] = {log(1.0), log(4.0), log(2.0), -INFINITY}, logq[4] = {0, 0, 0, 0};
    ck_klc(klc_z_estimate_add_batch(z, 1, 4, ctx, logP, logq));
    ck_assert_double_eq_tol(klc_z_estimate_log_z(z, 1), log(1.0), 1e-14);
    ck_assert_double_eq_tol(klc_z_estimate_log_z(z, 0), log(12.0 / 4), 1e-14);
    ck_assert_double_eq_tol(klc_z_estimate_table(z)[1], log(1.0), 1e-14);
    /* A new target version forgets everything. */
    ck_klc(klc_z_estimate_add(z, 2, 1, log(5.0)));
    ck_assert_int_eq(klc_z_estimate_target_version(z), 2);
    ck_assert_int_eq(klc_z_estimate_checks(z, 0), 0);
    ck_assert(isnan(klc_z_estimate_log_z(z, 0)));
    ck_assert_double_eq_tol(klc_z_estimate_log_z(z, 1), log(5.0), 1e-14);
    ck_assert_int_eq(klc_z_estimate_add(z, 2, 2, 0.0), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(klc_z_estimate_add(z, 3, 0, NAN), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(klc_z_estimate_target_version(z), 2); /* a refused add resets nothing */
    klc_z_estimate_destroy(z);
}
END_TEST

/* The sample mean and standard error of per-sample terms f_i. */
static void mean_se(const double *f, int n, double *mean, double *se) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) s += f[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) s2 += (f[i] - *mean) * (f[i] - *mean);
    *se = sqrt(s2 / (n - 1) / n);
}

START_TEST(estimates_match_exact_values_within_their_errors) {
    enum { n = 20000, B = 1000, nb = 20 };
    world w;
    world_make(&w);
    /* Exact values on the pointwise target, q the proposal model. */
    const double lz = w.logZ_pw;
    double kl_p_pi = 0, kl_p_q = 0, tv_p_pi = 0, kl_pi_a = 0, second = 0;
    for (int i = 0; i < NX; i++) {
        const double p = exp(w.logP_pw[i] - lz), pi = exp(w.logpi[i]), q = exp(w.logq[i]);
        if (p > 0) kl_p_pi += p * (log(p) - w.logpi[i]), kl_p_q += p * (log(p) - w.logq[i]);
        tv_p_pi += 0.5 * fabs(p - pi);
        kl_pi_a += pi * (w.logpi[i] - w.loga[i]);
        second += exp(2 * (w.logP_pw[i] - lz)) / q; /* E_q[(p/q)^2] */
    }
    static int idx[n];
    static double P[n], q[n], pi[n], a[n], f[n];
    draw(w.logq, n, 5, 0, idx);
    for (int j = 0; j < n; j++) {
        P[j] = w.logP_pw[idx[j]], q[j] = w.logq[idx[j]], pi[j] = w.logpi[idx[j]],
        a[j] = w.loga[idx[j]];
    }
    double x, m, se;
    /* The proposal criterion estimates KL(p||pi) - KL(p||q), sign included. */
    ck_klc(klc_estimate_proposal_criterion(n, P, q, pi, lz, &x));
    for (int j = 0; j < n; j++)
        f[j] = P[j] == -INFINITY ? 0 : exp(P[j] - q[j] - lz) * (q[j] - pi[j]);
    mean_se(f, n, &m, &se);
    ck_assert_double_eq_tol(x, m, 1e-12);
    const double gap = kl_p_pi - kl_p_q;
    ck_assert_msg(fabs(x - gap) <= 4 * se, "criterion %.5f vs exact %.5f (4 se %.4f)", x, gap,
                  4 * se);
    ck_assert_msg(fabs(gap) > 4 * se && (x < 0) == (gap < 0), "sign: %.5f vs %.5f", x, gap);
    /* KL(p||pi) and TV(p, pi) from q-samples. */
    ck_klc(klc_estimate_kl_target(n, P, q, pi, lz, &x));
    for (int j = 0; j < n; j++)
        f[j] = P[j] == -INFINITY ? 0 : exp(P[j] - q[j] - lz) * (P[j] - pi[j]);
    mean_se(f, n, &m, &se);
    ck_assert_msg(fabs(x - kl_p_pi) <= 4 * se, "KL(p||pi) %.5f vs exact %.5f", x, kl_p_pi);
    ck_klc(klc_estimate_tv_target(n, P, q, pi, lz, &x));
    for (int j = 0; j < n; j++) f[j] = 0.5 * fabs(exp(pi[j] - q[j]) - exp(P[j] - q[j] - lz));
    mean_se(f, n, &m, &se);
    ck_assert_msg(fabs(x - tv_p_pi) <= 4 * se, "TV %.5f vs exact %.5f", x, tv_p_pi);
    /* KL(pi||a) on pi-samples. */
    draw(w.logpi, n, 6, 0, idx);
    for (int j = 0; j < n; j++) pi[j] = w.logpi[idx[j]], a[j] = w.loga[idx[j]], f[j] = pi[j] - a[j];
    ck_klc(klc_estimate_kl_sampled(n, pi, a, &x));
    mean_se(f, n, &m, &se);
    ck_assert_msg(fabs(x - kl_pi_a) <= 4 * se, "KL(pi||a) %.5f vs exact %.5f", x, kl_pi_a);
    /* The effective sample size approaches n / E_q[(p/q)^2]. */
    ck_klc(klc_estimate_ess(n, P, q, &x, NULL));
    ck_assert_msg(fabs(x / n - 1 / second) < 0.05 / second, "ESS/n %.4f vs %.4f", x / n,
                  1 / second);

    /* The running Z over B checks of nb samples against the exact Z, in linear space; the
     * linear mean is unbiased where the mean of the log Z_k is biased low. */
    klc_z_estimate *z;
    ck_klc(klc_z_estimate_create(1, NULL, &z));
    static double zk[B];
    double mean_log = 0;
    for (int k = 0; k < B; k++) {
        draw(w.logq, nb, 9, (uint64_t)k, idx);
        for (int j = 0; j < nb; j++) P[j] = w.logP_pw[idx[j]], q[j] = w.logq[idx[j]];
        ck_klc(klc_z_estimate_add_batch(z, 0, nb, NULL, P, q));
        ck_klc(klc_estimate_log_z(nb, P, q, &x));
        zk[k] = exp(x);
        mean_log += x / B;
    }
    mean_se(zk, B, &m, &se);
    ck_assert_double_eq_tol(klc_z_estimate_log_z(z, 0), log(m), 1e-12);
    ck_assert_msg(fabs(m - exp(lz)) <= 4 * se, "running Z %.5f vs exact %.5f (4 se %.4f)", m,
                  exp(lz), 4 * se);
    ck_assert_msg(mean_log < lz - 4 * se / exp(lz), "mean log Z_k %.4f should be below log Z %.4f",
                  mean_log, lz);
    klc_z_estimate_destroy(z);
    world_free(&w);
}
END_TEST

/* --- The core -------------------------------------------------------------------------- */

START_TEST(micro_batches_give_the_gradient_of_one_batch) {
    world w;
    world_make(&w);
    const size_t np = w.n_params;
    ocase c = {"gdcpp", KLC_OBJECTIVE_GDCPP, 0, 0, 0, 0, 0, 1, 0, 0};
    static batch b;
    int idx[64];
    draw(w.logq, 64, 3, 0, idx);
    batch_make(&b, &w, &c, idx, 64);
    klc_objective *obj = make_objective(&c);
    float *g1 = malloc(sizeof(float) * np), *g = malloc(sizeof(float) * np);
    core_grad(&w, obj, &b, NULL, 0, g1);
    const int sizes[3] = {1, 7, 63};
    for (int s = 0; s < 3; s++) {
        core_grad(&w, obj, &b, NULL, sizes[s], g);
        double err = 0, ref = 0;
        for (size_t k = 0; k < np; k++)
            err += (double)(g[k] - g1[k]) * (g[k] - g1[k]), ref += (double)g1[k] * g1[k];
        ck_assert_msg(sqrt(err) <= 1e-5 * sqrt(ref), "micro-batch %d: %.3e of %.3e", sizes[s],
                      sqrt(err), sqrt(ref));
    }
    /* Token-level objectives and masses too; logpi_out is the training forward's. */
    ocase t = {"kl_control_token",
               KLC_OBJECTIVE_KL_CONTROL_TOKEN,
               KLC_BASELINE_LEAVE_ONE_OUT,
               0,
               0,
               0.3,
               0.9,
               0,
               1,
               0};
    klc_objective *tok = make_objective(&t);
    batch_make(&b, &w, &t, NULL, NX);
    double mass[NX], logpi_out[NX];
    for (int i = 0; i < NX; i++) mass[i] = 0.5 + 0.01 * i;
    core_grad(&w, tok, &b, mass, 0, g1);
    klc_accumulate_options o;
    klc_accumulate_options_init(&o, KLC_ACCUMULATE_OPTIONS_VERSION);
    o.mass = mass;
    o.micro_batch = 3;
    o.logpi_out = logpi_out;
    ck_klc(klc_model_zero_grads(w.pi));
    ck_klc(klc_objective_accumulate(tok, w.pi, &b.view, &b.seqs, &o));
    memcpy(g, klc_model_grads(w.pi, NULL), sizeof(float) * np);
    double err = 0, ref = 0;
    for (size_t k = 0; k < np; k++)
        err += (double)(g[k] - g1[k]) * (g[k] - g1[k]), ref += (double)g1[k] * g1[k];
    ck_assert_msg(sqrt(err) <= 1e-5 * sqrt(ref), "token-level micro-batches: %.3e of %.3e",
                  sqrt(err), sqrt(ref));
    for (int i = 0; i < NX; i++) ck_assert_double_eq_tol(logpi_out[i], w.logpi[i], 1e-5);
    free(g1);
    free(g);
    klc_objective_destroy(obj);
    klc_objective_destroy(tok);
    world_free(&w);
}
END_TEST

/* --- Formulas on hand-made views ------------------------------------------------------- */

typedef struct small {
    int32_t lengths[3], from[3];
    double logq[3], loga[3], logpi[3], logP[3], reward[3];
    float logpi_tok[3 * 5], loga_tok[3 * 5];
    klc_step_view v;
} small;

static void small_make(small *s) {
    const small init = {.lengths = {5, 3, 2},
                        .from = {2, 1, 2},
                        .logq = {-2, -3, -1},
                        .loga = {-2.5, -2, -1.5},
                        .logpi = {-1.5, -3.5, -1},
                        .logP = {-1, -INFINITY, -2},
                        .reward = {1, 2, 6}};
    *s = init;
    for (int k = 0; k < 15; k++) s->logpi_tok[k] = -0.1f * (float)(k + 1), s->loga_tok[k] = -0.2f;
    klc_step_view_init(&s->v, KLC_STEP_VIEW_VERSION);
    s->v.n_seq = 3, s->v.max_len = 5;
    s->v.lengths = s->lengths, s->v.score_from = s->from;
    s->v.logq = s->logq, s->v.loga = s->loga, s->v.logpi = s->logpi, s->v.logP = s->logP;
    s->v.reward = s->reward;
    s->v.logpi_tok = s->logpi_tok, s->v.loga_tok = s->loga_tok;
    s->v.log_z = log(0.5);
    s->v.full_support = 1;
}

static klc_objective *builtin(int32_t kind, int32_t baseline, int32_t divergence) {
    ocase c = {"", kind, baseline, divergence, 0, 0.5, 0, 0, 0, 0};
    return make_objective(&c);
}

START_TEST(weights_follow_the_formulas) {
    small s;
    small_make(&s);
    double w[3];
    klc_objective *o = builtin(KLC_OBJECTIVE_DPG, 0, 0);
    ck_klc(klc_objective_weights(o, &s.v, w));
    ck_assert_double_eq_tol(w[0], exp(-1 + 2 - log(0.5)), 1e-14);
    ck_assert(w[1] == 0.0); /* P = 0 */
    klc_objective_destroy(o);
    o = builtin(KLC_OBJECTIVE_GDCPP, 0, 0);
    ck_klc(klc_objective_weights(o, &s.v, w));
    ck_assert_double_eq_tol(w[0], exp(-1 + 2 - log(0.5)) - exp(-1.5 + 2), 1e-14);
    ck_assert_double_eq_tol(w[1], -exp(-3.5 + 3), 1e-14);
    klc_objective_destroy(o);
    /* f-DPG at P = 0 (t = +inf): -f'(+inf) is 0, -log(2)/2, -1/2, -1. */
    const double at_inf[6] = {0, 0, 0, -0.5 * log(2.0), -0.5, -1};
    for (int d = KLC_DIVERGENCE_FORWARD_KL; d <= KLC_DIVERGENCE_CHI2; d++) {
        if (d == KLC_DIVERGENCE_REVERSE_KL) continue;
        o = builtin(KLC_OBJECTIVE_FDPG, KLC_BASELINE_NONE, d);
        ck_klc(klc_objective_weights(o, &s.v, w));
        const double ratio = exp(-3.5 + 3);
        ck_assert_msg(fabs(w[1] - ratio * at_inf[d]) < 1e-14, "divergence %d: %.17g", d, w[1]);
        /* Sequence 0: log t = log pi - log P + log Z. */
        const double lt = -1.5 + 1 + log(0.5), t = exp(lt), r0 = exp(-1.5 + 2);
        const double nf[6] = {0, 1 / t, 0, -0.5 * log(2 * t / (1 + t)), 0.5, 1 / (t * t) - 1};
        ck_assert_msg(fabs(w[0] - r0 * nf[d]) < 1e-13, "divergence %d: %.17g vs %.17g", d, w[0],
                      r0 * nf[d]);
        klc_objective_destroy(o);
    }
    /* Conditional targets: each sequence is normalised by its context's Z. */
    const int32_t ctx[3] = {1, 0, 1};
    const double log_z_ctx[2] = {log(2.0), log(4.0)};
    s.v.context_ids = ctx, s.v.n_contexts = 2, s.v.log_z_ctx = log_z_ctx;
    o = builtin(KLC_OBJECTIVE_DPG, 0, 0);
    ck_klc(klc_objective_weights(o, &s.v, w));
    ck_assert_double_eq_tol(w[0], exp(-1 + 2 - log(4.0)), 1e-14);
    ck_assert_double_eq_tol(w[2], exp(-2 + 1 - log(4.0)), 1e-14);
    const double no_z[2] = {log(2.0), NAN};
    s.v.log_z_ctx = no_z;
    ck_assert_int_eq(klc_objective_weights(o, &s.v, w), KLC_ERR_STATE);
    ck_assert_msg(strstr(klc_last_error(), "log_z_ctx[1]") != NULL, "%s", klc_last_error());
    klc_objective_destroy(o);
    s.v.context_ids = NULL, s.v.n_contexts = 0, s.v.log_z_ctx = NULL;

    /* REINFORCE and KL-control with leave-one-out baselines, on-policy (logpi = logq). */
    s.v.on_policy = 1;
    s.v.logpi = NULL;
    o = builtin(KLC_OBJECTIVE_REINFORCE, KLC_BASELINE_LEAVE_ONE_OUT, 0);
    ck_klc(klc_objective_weights(o, &s.v, w));
    ck_assert_double_eq_tol(w[0], 1 - 4.0, 1e-14);
    ck_assert_double_eq_tol(w[1], 2 - 3.5, 1e-14);
    ck_assert_double_eq_tol(w[2], 6 - 1.5, 1e-14);
    klc_objective_destroy(o);
    o = builtin(KLC_OBJECTIVE_KL_CONTROL, KLC_BASELINE_NONE, 0);
    ck_klc(klc_objective_weights(o, &s.v, w));
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(w[i], s.reward[i] - 0.5 * (s.logq[i] - s.loga[i]), 1e-14);
    klc_objective_destroy(o);
}
END_TEST

START_TEST(token_coefficients_are_rewards_to_go) {
    small s;
    small_make(&s);
    s.v.on_policy = 1;
    s.v.logq = s.logpi, s.v.logq_tok = s.logpi_tok;
    klc_objective_options o;
    klc_objective_options_init(&o, KLC_OBJECTIVE_OPTIONS_VERSION);
    o.kind = KLC_OBJECTIVE_KL_CONTROL_TOKEN;
    o.baseline = KLC_BASELINE_NONE;
    o.beta = 0.5;
    o.gamma = 0.5;
    klc_objective *obj;
    ck_klc(klc_objective_builtin(&o, &obj));
    float on[15], sm[15];
    ck_klc(klc_objective_token_coeffs(obj, &s.v, on, sm));
    /* Sequence 0: length 5, prompt 2, generated predictions at t = 1, 2, 3. */
    double g = 0, want[5] = {0};
    for (int t = 3; t >= 1; t--) {
        g = -0.5 * ((double)s.logpi_tok[t] - (double)s.loga_tok[t]) + (t == 3 ? 1.0 : 0) + 0.5 * g;
        want[t] = g;
    }
    for (int t = 0; t < 5; t++) {
        ck_assert_msg(fabs(on[t] + want[t] / 3) < 1e-6 && fabs(sm[t] - want[t] / 3) < 1e-6,
                      "t = %d: on %.7f sm %.7f want %.7f", t, on[t], sm[t], want[t] / 3);
    }
    /* Sequence 2 generated nothing (length = prompt): no coefficient at all. */
    for (int t = 0; t < 5; t++) ck_assert(on[10 + t] == 0 && sm[10 + t] == 0);
    ck_assert_int_eq(klc_objective_weights(obj, &s.v, (double[3]){0}), KLC_ERR_UNSUPPORTED);
    klc_objective_destroy(obj);

    /* Maximum likelihood per token: 1/T on each of the batch's T = 3 + 2 + 0 tokens. */
    o.kind = KLC_OBJECTIVE_MLE;
    o.token_mean = 1;
    o.baseline = KLC_BASELINE_DEFAULT;
    ck_klc(klc_objective_builtin(&o, &obj));
    ck_klc(klc_objective_token_coeffs(obj, &s.v, on, sm));
    float total = 0;
    for (int k = 0; k < 15; k++) total += sm[k];
    ck_assert_float_eq_tol(total, 1.0f, 1e-6f);
    ck_assert_float_eq_tol(sm[1], 0.2f, 1e-7f);
    ck_assert(sm[0] == 0.0f); /* the prompt */
    klc_objective_destroy(obj);
}
END_TEST

START_TEST(adaptive_beta_follows_ziegler) {
    small s;
    small_make(&s);
    s.v.on_policy = 1;
    klc_objective_options o;
    klc_objective_options_init(&o, KLC_OBJECTIVE_OPTIONS_VERSION);
    o.kind = KLC_OBJECTIVE_KL_CONTROL;
    o.adaptive_beta = 1;
    o.kl_target = 0.25;
    o.kl_horizon = 30;
    klc_objective *obj;
    ck_klc(klc_objective_builtin(&o, &obj));
    ck_assert_double_eq(klc_objective_beta(obj), 0.15);
    s.v.logpi = NULL; /* on-policy: log pi is log q */
    klc_metrics *m;
    ck_klc(klc_metrics_create(NULL, &m));
    /* KL = mean(log q - log a) = (0.5 - 1 + 0.5)/3 = 0: e = clip(-1) = -0.2. */
    ck_klc(klc_objective_after_step(obj, &s.v, m));
    ck_assert_double_eq_tol(klc_objective_beta(obj), 0.15 * (1 - 0.2 * 3 / 30.0), 1e-15);
    ck_assert_double_eq_tol(klc_metrics_get(m, "kl"), 0.0, 1e-15);
    ck_assert_double_eq(klc_metrics_get(m, "beta"), 0.15);
    ck_assert_double_eq_tol(klc_metrics_get(m, "reward"), 3.0, 1e-15);
    /* KL = 0.275: e = 0.1. */
    s.logq[0] = -2 + 0.825;
    const double b = klc_objective_beta(obj);
    ck_klc(klc_objective_after_step(obj, &s.v, m));
    ck_assert_double_eq_tol(klc_objective_beta(obj), b * (1 + 0.1 * 3 / 30.0), 1e-15);
    ck_klc(klc_objective_set_beta(obj, 0.4));
    ck_assert_double_eq(klc_objective_beta(obj), 0.4);
    ck_assert_int_eq(klc_objective_set_beta(obj, -1), KLC_ERR_INVALID_ARGUMENT);
    klc_objective_destroy(obj);
    obj = builtin(KLC_OBJECTIVE_DPG, 0, 0);
    ck_assert(isnan(klc_objective_beta(obj)));
    ck_assert_int_eq(klc_objective_set_beta(obj, 1), KLC_ERR_UNSUPPORTED);
    klc_objective_destroy(obj);
    klc_metrics_destroy(m);
}
END_TEST

/* --- Refusals and errors ---------------------------------------------------------------- */

START_TEST(bad_steps_are_refused_and_leave_the_objective_usable) {
    world w;
    world_make(&w);
    const size_t np = w.n_params;
    double wt[NX];
    static batch b;
    /* Reverse KL on a pointwise target: refused, naming the reason. */
    ocase c = {"", KLC_OBJECTIVE_FDPG, KLC_BASELINE_NONE, KLC_DIVERGENCE_REVERSE_KL, 0, 0, 0, 1, 0,
               0};
    klc_objective *rkl = make_objective(&c);
    batch_make(&b, &w, &c, NULL, NX);
    ck_klc(klc_model_zero_grads(w.pi));
    ck_assert_int_eq(klc_objective_accumulate(rkl, w.pi, &b.view, &b.seqs, NULL),
                     KLC_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(klc_last_error(), "log P = -inf") != NULL, "%s", klc_last_error());
    const float *g = klc_model_grads(w.pi, NULL);
    for (size_t k = 0; k < np; k++) ck_assert(g[k] == 0.0f); /* nothing accumulated */
    c.target = 2;
    batch_make(&b, &w, &c, NULL, NX);
    ck_klc(klc_objective_weights(rkl, &b.view, wt));
    klc_objective_destroy(rkl);

    /* GDC++: a missing array, no Z estimate, no full support. */
    c = (ocase){"", KLC_OBJECTIVE_GDCPP, 0, 0, 0, 0, 0, 1, 0, 0};
    klc_objective *gd = make_objective(&c);
    batch_make(&b, &w, &c, NULL, NX);
    b.view.logpi = NULL;
    ck_assert_int_eq(klc_objective_weights(gd, &b.view, wt), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(klc_last_error(), "logpi") != NULL, "%s", klc_last_error());
    b.view.logpi = b.logpi;
    b.view.log_z = NAN;
    ck_assert_int_eq(klc_objective_weights(gd, &b.view, wt), KLC_ERR_STATE);
    ck_assert_msg(strstr(klc_last_error(), "Z estimate") != NULL, "%s", klc_last_error());
    b.view.log_z = w.logZ_pw;
    b.view.full_support = 0;
    ck_assert_int_eq(klc_objective_accumulate(gd, w.pi, &b.view, &b.seqs, NULL), KLC_ERR_STATE);
    ck_assert_msg(strstr(klc_last_error(), "full support") != NULL, "%s", klc_last_error());
    b.view.full_support = 1;
    b.logP[3] = NAN;
    ck_assert_int_eq(klc_objective_weights(gd, &b.view, wt), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(klc_last_error(), "logP[3]") != NULL, "%s", klc_last_error());
    b.logP[3] = w.logP_pw[3];
    ck_klc(klc_objective_accumulate(gd, w.pi, &b.view, &b.seqs, NULL));
    /* -inf log P flows through every formula: finite weights, 0 for DPG. */
    ck_klc(klc_objective_weights(gd, &b.view, wt));
    for (int i = 0; i < NX; i++) ck_assert(isfinite(wt[i]));
    /* A view that does not match the sequences. */
    b.view.n_seq = NX - 1;
    ck_assert_int_eq(klc_objective_accumulate(gd, w.pi, &b.view, &b.seqs, NULL),
                     KLC_ERR_INVALID_ARGUMENT);
    klc_objective_destroy(gd);

    /* On-policy objectives refuse off-policy steps; rewards are required. */
    c = (ocase){"", KLC_OBJECTIVE_REINFORCE, 0, 0, 0, 0, 0, 0, 1, 0};
    klc_objective *rf = make_objective(&c);
    batch_make(&b, &w, &c, NULL, NX);
    b.view.on_policy = 0;
    ck_assert_int_eq(klc_objective_weights(rf, &b.view, wt), KLC_ERR_STATE);
    ck_assert_msg(strstr(klc_last_error(), "on-policy") != NULL, "%s", klc_last_error());
    b.view.on_policy = 1;
    b.view.reward = NULL;
    ck_assert_int_eq(klc_objective_after_step(rf, &b.view, NULL), KLC_ERR_INVALID_ARGUMENT);
    b.view.reward = b.reward;
    ck_klc(klc_objective_weights(rf, &b.view, wt));
    klc_objective_destroy(rf);

    /* Options are validated. */
    klc_objective_options o;
    klc_objective_options_init(&o, KLC_OBJECTIVE_OPTIONS_VERSION);
    klc_objective *x = (klc_objective *)1;
    o.kind = KLC_OBJECTIVE_DPG;
    o.baseline = KLC_BASELINE_LEAVE_ONE_OUT;
    ck_assert_int_eq(klc_objective_builtin(&o, &x), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(x);
    ck_assert_msg(strstr(klc_last_error(), "baseline") != NULL, "%s", klc_last_error());
    klc_objective_options_init(&o, KLC_OBJECTIVE_OPTIONS_VERSION);
    o.gamma = 0;
    ck_assert_int_eq(klc_objective_builtin(&o, &x), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(klc_last_error(), "gamma") != NULL, "%s", klc_last_error());
    world_free(&w);
}
END_TEST

typedef struct user_state {
    int fail, released, calls;
} user_state;

static int user_weights(void *self, const klc_step_view *v, double *w) {
    user_state *u = self;
    u->calls++;
    if (u->fail) return u->fail;
    for (int32_t i = 0; i < v->n_seq; i++) w[i] = v->reward[i];
    return 0;
}

static int user_token_coeffs(void *self, const klc_step_view *v, float *on, float *sm) {
    (void)self, (void)v, (void)on, (void)sm;
    return 0;
}

static void user_release(void *self) {
    ((user_state *)self)->released++;
}

START_TEST(user_objectives_are_objectives) {
    world w;
    world_make(&w);
    user_state u = {0, 0, 0};
    /* A version-1 struct (no state hooks) is still accepted. */
    klc_objective_ops ops = {.version = 1,
                             .name = "my_reward",
                             .needs = KLC_NEED_REWARD,
                             .weights = user_weights,
                             .release = user_release};
    klc_objective *obj;
    ck_klc(klc_objective_create(&ops, &u, NULL, &obj));
    ops.name = "changed"; /* the struct and the name were copied */
    ck_assert_str_eq(klc_objective_name(obj), "my_reward");
    ck_assert_uint_eq(klc_objective_needs(obj), KLC_NEED_REWARD);
    ocase c = {"", 0, 0, 0, 0, 0, 0, 0, 1, 0};
    static batch b;
    batch_make(&b, &w, &c, NULL, NX);
    /* Its gradient is REINFORCE's without a baseline. */
    const size_t np = w.n_params;
    float *g1 = malloc(sizeof(float) * np), *g2 = malloc(sizeof(float) * np);
    core_grad(&w, obj, &b, NULL, 5, g1);
    c.kind = KLC_OBJECTIVE_REINFORCE;
    c.baseline = KLC_BASELINE_NONE;
    klc_objective *rf = make_objective(&c);
    core_grad(&w, rf, &b, NULL, 0, g2);
    for (size_t k = 0; k < np; k++)
        ck_assert_msg(fabsf(g1[k] - g2[k]) <= 1e-5f * (1 + fabsf(g2[k])), "%zu: %g vs %g", k, g1[k],
                      g2[k]);
    /* A failing callback: KLC_ERR_CALLBACK, nothing accumulated, still usable. */
    u.fail = 3;
    ck_klc(klc_model_zero_grads(w.pi));
    ck_assert_int_eq(klc_objective_accumulate(obj, w.pi, &b.view, &b.seqs, NULL), KLC_ERR_CALLBACK);
    ck_assert_msg(strstr(klc_last_error(), "my_reward") && strstr(klc_last_error(), "returned 3"),
                  "%s", klc_last_error());
    const float *g = klc_model_grads(w.pi, NULL);
    for (size_t k = 0; k < np; k++) ck_assert(g[k] == 0.0f);
    u.fail = 0;
    ck_klc(klc_objective_accumulate(obj, w.pi, &b.view, &b.seqs, NULL));
    ck_klc(klc_objective_after_step(obj, &b.view, NULL)); /* no after_step: nothing to do */
    /* Non-finite weights are numeric errors. */
    b.reward[2] = INFINITY;
    ck_assert_int_eq(klc_objective_weights(obj, &b.view, (double[NX]){0}),
                     KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(u.released, 0);
    klc_objective_destroy(obj);
    ck_assert_int_eq(u.released, 1);
    /* Creation failures do not release. */
    ops.token_coeffs = user_token_coeffs;
    ck_assert_int_eq(klc_objective_create(&ops, &u, NULL, &obj), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(obj);
    ops.token_coeffs = NULL;
    ops.name = "";
    ck_assert_int_eq(klc_objective_create(&ops, &u, NULL, &obj), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(u.released, 1);
    free(g1);
    free(g2);
    klc_objective_destroy(rf);
    world_free(&w);
}
END_TEST

/* --- Metrics ---------------------------------------------------------------------------- */

typedef struct counting {
    long live;
    size_t calls;
} counting;
static void *c_alloc(void *ud, size_t size, size_t al) {
    ((counting *)ud)->live++, ((counting *)ud)->calls++;
    return aligned_alloc(al, (size + al - 1) / al * al);
}
static void c_free(void *ud, void *p, size_t size) {
    ((counting *)ud)->live--;
    free(p);
}

START_TEST(metrics_keep_insertion_order) {
    counting cnt = {0, 0};
    klc_allocator a = {c_alloc, c_free, &cnt};
    klc_metrics *m;
    ck_klc(klc_metrics_create(&a, &m));
    char name[32];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "m%02d", 39 - i);
        ck_klc(klc_metrics_set(m, name, i));
    }
    ck_klc(klc_metrics_set(m, "m39", -1)); /* replaced in place */
    ck_assert_int_eq(klc_metrics_count(m), 40);
    const char *n;
    double v;
    ck_klc(klc_metrics_entry(m, 0, &n, &v));
    ck_assert_str_eq(n, "m39");
    ck_assert_double_eq(v, -1);
    ck_klc(klc_metrics_entry(m, 39, &n, &v));
    ck_assert_str_eq(n, "m00");
    ck_assert_double_eq(klc_metrics_get(m, "m10"), 29);
    ck_assert(isnan(klc_metrics_get(m, "absent")));
    ck_assert_int_eq(klc_metrics_entry(m, 40, &n, &v), KLC_ERR_INVALID_ARGUMENT);
    char long_name[80];
    memset(long_name, 'x', 79);
    long_name[79] = 0;
    ck_assert_int_eq(klc_metrics_set(m, long_name, 1), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(klc_metrics_set(m, "", 1), KLC_ERR_INVALID_ARGUMENT);
    ck_klc(klc_metrics_clear(m));
    ck_assert_int_eq(klc_metrics_count(m), 0);
    ck_klc(klc_metrics_set(m, "again", 2));
    ck_assert_double_eq(klc_metrics_get(m, "again"), 2);
    klc_metrics_destroy(m);
    ck_assert_int_eq(cnt.live, 0);
    ck_assert_uint_gt(cnt.calls, 1);

    /* Objectives and Z estimates use their allocator for everything too. */
    cnt.calls = 0;
    klc_objective_options o;
    klc_objective_options_init(&o, KLC_OBJECTIVE_OPTIONS_VERSION);
    o.kind = KLC_OBJECTIVE_REINFORCE;
    o.baseline = KLC_BASELINE_LEAVE_ONE_OUT;
    o.allocator = &a;
    klc_objective *obj;
    ck_klc(klc_objective_builtin(&o, &obj));
    small s;
    small_make(&s);
    s.v.on_policy = 1;
    double w[3];
    ck_klc(klc_objective_weights(obj, &s.v, w));
    /* Work buffers are kept by the handle: a second step of the same size allocates
     * nothing. */
    float on[3 * 5], sm[3 * 5];
    ck_klc(klc_objective_token_coeffs(obj, &s.v, on, sm));
    const size_t calls_after_first = cnt.calls;
    ck_klc(klc_objective_token_coeffs(obj, &s.v, on, sm));
    ck_assert_uint_eq(cnt.calls, calls_after_first);
    klc_objective_destroy(obj);
    klc_z_estimate *z;
    ck_klc(klc_z_estimate_create(3, &a, &z));
    klc_z_estimate_destroy(z);
    ck_assert_int_eq(cnt.live, 0);
    ck_assert_uint_ge(cnt.calls, 4);
}
END_TEST

int main(void) {
    Suite *s = suite_create("objective");
    TCase *tc = tcase_create("objective");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, expected_gradient_is_the_objective_gradient, 0, N_CASES);
    tcase_add_loop_test(tc, monte_carlo_mean_matches_the_exact_gradient, 0, N_MC_CASES);
    tcase_add_test(tc, gdcpp_has_lower_variance_than_gdc_on_a_pointwise_task);
    tcase_add_test(tc, estimators_compute_their_formulas);
    tcase_add_test(tc, running_z_is_the_linear_mean_and_resets_with_the_target);
    tcase_add_test(tc, estimates_match_exact_values_within_their_errors);
    tcase_add_test(tc, micro_batches_give_the_gradient_of_one_batch);
    tcase_add_test(tc, weights_follow_the_formulas);
    tcase_add_test(tc, token_coefficients_are_rewards_to_go);
    tcase_add_test(tc, adaptive_beta_follows_ziegler);
    tcase_add_test(tc, bad_steps_are_refused_and_leave_the_objective_usable);
    tcase_add_test(tc, user_objectives_are_objectives);
    tcase_add_test(tc, metrics_keep_insertion_order);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
