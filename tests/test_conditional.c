/* Conditional (prompted) targets in the trainer, against exact enumeration. A tiny model
 * over a vocabulary of 4 (tokens 0, 1, 2 and the end-of-text token 3) continues three
 * prompts of different lengths by at most 3 tokens, so the 40 continuations of each are
 * listed and Z_c, p(x|c) and KL(p(.|c) || pi(.|c)) are exact sums, while the trainer only
 * sees samples. The target is pointwise and conditional: a continuation of context c must
 * contain the token c. Every prompt already contains its context's token, so a feature
 * that saw the prompt would find every continuation valid. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { V = 4, EOT = 3, GEN = 3, NC = 3, PMAX = 3, T = PMAX + GEN, NX = 40 };

static const int32_t PROMPT[NC][PMAX] = {{0}, {EOT, 1}, {2, EOT, 0}};
static const int32_t PROMPT_LEN[NC] = {1, 2, 3};

/* Every continuation of every context: X_TOK[(c*NX + j)*T ..], prompt included. */
static int32_t X_TOK[NC * NX * T], X_LEN[NC * NX], X_FROM[NC * NX];

static void enumerate(void) {
    int n = 0;
    for (int c = 0; c < NC; c++) {
        const int p = PROMPT_LEN[c];
        for (int j = 0; j < NX; j++, n++) {
            int32_t *x = X_TOK + (size_t)n * T;
            memset(x, 0, sizeof(int32_t) * T);
            memcpy(x, PROMPT[c], sizeof(int32_t) * p);
            /* j = 0: the end-of-text token alone; 1..3: one token then it; 4..39: three
             * tokens, the last of which may be the end-of-text token. */
            int g;
            if (j == 0) {
                x[p] = EOT, g = 1;
            } else if (j < 4) {
                x[p] = j - 1, x[p + 1] = EOT, g = 2;
            } else {
                const int k = j - 4;
                x[p] = k / 12, x[p + 1] = (k / 4) % 3, x[p + 2] = k % 4, g = 3;
            }
            X_LEN[n] = p + g;
            X_FROM[n] = p;
        }
    }
}

static klc_model *tiny_model(uint64_t seed) {
    return tu_model(1, 16, 2, V, T, 0.2f, seed, NULL);
}

/* log m(x|c) of every listed continuation, the prompt excluded. */
static void exact_logp(klc_model *m, double *lp) {
    klc_seqs s = {NC * NX, T, X_TOK, X_LEN, X_FROM, NULL};
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    o.seq_logprobs = lp;
    ck_klc(klc_model_score(m, &s, &o));
}

static int valid(int n) {
    const int c = n / NX;
    for (int t = X_FROM[n]; t < X_LEN[n]; t++)
        if (X_TOK[(size_t)n * T + t] == c) return 1;
    return 0;
}

/* The mean over contexts of KL(p(.|c) || m(.|c)), exactly. */
static double exact_kl(const double *logP, klc_model *m) {
    double lm[NC * NX], kl = 0;
    exact_logp(m, lm);
    for (int c = 0; c < NC; c++) kl += tu_exact_kl(logP + c * NX, lm + c * NX, NX);
    return kl / NC;
}

/* b(x, c) = 1 when the generated tokens contain the token c. */
static int contains_context(void *self, const klc_seq_batch *s, double *out) {
    (void)self;
    for (int i = 0; i < s->n; i++) {
        const int32_t c = s->context_ids ? s->context_ids[i] : 0;
        int has = 0;
        for (int t = 0; t < s->lengths[i]; t++) has |= s->ids[(size_t)i * s->stride + t] == c;
        out[i] = has;
    }
    return 0;
}

typedef struct setup {
    klc_model *a, *pi;
    klc_feature *f;
    klc_target *target;
    klc_objective *obj;
    klc_optimizer *opt;
    klc_trainer *tr;
    klc_metrics *m;
    double logP[NC * NX]; /* exact log P(x|c) of every listed continuation */
    klc_seqs contexts;
} setup;

static void trainer_options(setup *s, klc_trainer_options *o) {
    klc_trainer_options_init(o, KLC_TRAINER_OPTIONS_VERSION);
    o->batch_size = 129;
    o->max_len = T;
    o->max_new_tokens = GEN;
    o->eos_id = EOT;
    o->bos_id = 0; /* unused with contexts */
    o->seed = 11;
    o->eval_samples = 0;
    s->contexts = (klc_seqs){NC, PMAX, &PROMPT[0][0], PROMPT_LEN, NULL, NULL};
    o->contexts = &s->contexts;
}

static void setup_make(setup *s, const klc_optimizer_options *po, const klc_trainer_options *to) {
    enumerate();
    s->a = tiny_model(2);
    ck_klc(klc_model_clone(s->a, &s->pi));
    double la[NC * NX];
    exact_logp(s->a, la);
    for (int n = 0; n < NC * NX; n++) s->logP[n] = valid(n) ? la[n] : -INFINITY;
    klc_feature_ops ops = {KLC_FEATURE_OPS_VERSION, "contains_c", 1, contains_context, NULL};
    ck_klc(klc_feature_create(&ops, NULL, NULL, &s->f));
    ck_klc(klc_target_create(s->a, NULL, &s->target));
    ck_klc(klc_target_add_pointwise(s->target, s->f));
    klc_objective_options oo;
    klc_objective_options_init(&oo, KLC_OBJECTIVE_OPTIONS_VERSION);
    oo.kind = KLC_OBJECTIVE_GDCPP;
    ck_klc(klc_objective_builtin(&oo, &s->obj));
    size_t n = 0;
    klc_model_params(s->pi, &n);
    ck_klc(klc_optimizer_create(po, n, &s->opt));
    ck_klc(klc_trainer_create(s->pi, s->a, s->target, s->obj, s->opt, NULL, to, &s->tr));
    ck_klc(klc_metrics_create(NULL, &s->m));
}

static void setup_free(setup *s) {
    klc_trainer_destroy(s->tr);
    klc_metrics_destroy(s->m);
    klc_optimizer_destroy(s->opt);
    klc_objective_destroy(s->obj);
    klc_target_destroy(s->target);
    klc_feature_destroy(s->f);
    klc_model_destroy(s->pi);
    klc_model_destroy(s->a);
}

/* A trainer whose policy stays a (learning rate 0), so that every check samples the same
 * q; batch_size sequences per step assigned to contexts by `order`. */
static void setup_frozen(setup *s, int32_t batch_size, int32_t order) {
    klc_optimizer_options po;
    klc_optimizer_options_init(&po, KLC_OPTIMIZER_OPTIONS_VERSION);
    po.kind = KLC_OPTIMIZER_ADAM;
    po.lr = 0;
    klc_trainer_options to;
    trainer_options(s, &to);
    to.batch_size = batch_size;
    to.context_order = order;
    setup_make(s, &po, &to);
}

/* The listed continuation a batch row is, or -1. */
static int find(const klc_batch *cb, int32_t i) {
    klc_batch *b = (klc_batch *)cb;
    const int32_t L = klc_batch_max_len(b), *tok = klc_batch_tokens(b) + (size_t)i * L;
    const int32_t len = klc_batch_lengths(b)[i], c = klc_batch_context_ids(b)[i];
    for (int j = 0; j < NX; j++) {
        const int n = c * NX + j;
        if (X_LEN[n] == len && memcmp(X_TOK + (size_t)n * T, tok, sizeof(int32_t) * len) == 0)
            return n;
    }
    return -1;
}

/* The batch holds each sequence's prompt, its log q, log a and log P sum the generated part
 * only (the exact conditional values), and contexts go round-robin. */
START_TEST(test_batch_is_conditional) {
    setup s;
    setup_frozen(&s, 129, KLC_CONTEXTS_ROUND_ROBIN);
    ck_klc(klc_trainer_step(s.tr, s.m));
    klc_batch *b = klc_trainer_batch(s.tr);
    double la[NC * NX];
    exact_logp(s.a, la);
    const double *logq = klc_batch_logq(b), *loga = klc_batch_loga(b), *logP = klc_batch_logP(b);
    int valid_seen[NC] = {0}, seen[NC] = {0};
    for (int32_t i = 0; i < klc_batch_size(b); i++) {
        const int32_t c = klc_batch_context_ids(b)[i];
        ck_assert_int_eq(c, i % NC);
        ck_assert_int_eq(klc_batch_prompt_lengths(b)[i], PROMPT_LEN[c]);
        const int n = find(b, i);
        seen[c]++;
        ck_assert_msg(n >= 0, "sequence %d is not a continuation of its context %d", i, c);
        ck_assert_double_eq_tol(logq[i], la[n], 1e-4);
        ck_assert_double_eq_tol(loga[i], la[n], 1e-4);
        if (s.logP[n] == -INFINITY) {
            ck_assert(logP[i] == -INFINITY);
        } else {
            ck_assert_double_eq_tol(logP[i], s.logP[n], 1e-4);
            valid_seen[c]++;
        }
    }
    /* Each prompt holds its context's token: only a feature that sees the continuation
     * alone rejects some of them. */
    for (int c = 0; c < NC; c++) {
        ck_assert_int_eq(seen[c], klc_batch_size(b) / NC);
        ck_assert_int_gt(valid_seen[c], 0);
        ck_assert_int_lt(valid_seen[c], seen[c]);
    }
    setup_free(&s);
}
END_TEST

/* The exact Z_c of each context and the variance of the one-check estimator
 * mean_i P(x_i|c)/q(x_i|c) over n_c samples of q = a: Var = (sum_x P^2/q - Z^2) / n_c. */
static void exact_z(const setup *s, double z[NC], double var1[NC]) {
    double la[NC * NX];
    exact_logp(s->a, la);
    for (int c = 0; c < NC; c++) {
        double zc = 0, m2 = 0;
        for (int j = 0; j < NX; j++) {
            const int n = c * NX + j;
            if (s->logP[n] == -INFINITY) continue;
            zc += exp(s->logP[n]);
            m2 += exp(2 * s->logP[n] - la[n]);
        }
        z[c] = zc;
        var1[c] = m2 - zc * zc;
    }
}

/* Each context's running Z against its exact Z_c, within four standard errors of the
 * estimator, for round-robin and random assignment. The running estimate is the mean of
 * the checks in linear space, check k being mean_i P/q over the n_ck samples of context c
 * in its batch, so its variance is Var1_c sum_k (1/n_ck) / K^2 over K checks. */
START_TEST(test_z_per_context) {
    for (int order = 0; order < 2; order++) {
        setup s;
        const int32_t batch_size = 3000;
        setup_frozen(&s, batch_size, order ? KLC_CONTEXTS_RANDOM : KLC_CONTEXTS_ROUND_ROBIN);
        double z[NC], var1[NC], inv_counts[NC] = {0};
        exact_z(&s, z, var1);
        int checks = 0;
        for (int k = 0; k < 21; k++) {
            ck_klc(klc_trainer_step(s.tr, s.m));
            ck_assert_double_eq(klc_metrics_get(s.m, "z_check"), k % 10 == 0);
            if (k % 10 != 0) continue; /* steps 0, 10 and 20 check */
            checks++;
            ck_assert_double_eq(klc_metrics_get(s.m, "z_checks"), checks);
            klc_batch *b = klc_trainer_batch(s.tr);
            int32_t count[NC] = {0};
            for (int32_t i = 0; i < klc_batch_size(b); i++) count[klc_batch_context_ids(b)[i]]++;
            if (order == 0)
                for (int c = 0; c < NC; c++) ck_assert_int_eq(count[c], batch_size / NC);
            else
                ck_assert(count[0] != count[1] || count[1] != count[2]);
            for (int c = 0; c < NC; c++) inv_counts[c] += 1.0 / count[c];
        }
        for (int c = 0; c < NC; c++) {
            const double est = exp(klc_trainer_context_log_z(s.tr, c));
            const double se = sqrt(var1[c] * inv_counts[c]) / checks;
            printf("Z (%s), context %d: exact %.5f, estimate %.5f (se %.5f)\n",
                   order ? "random" : "round-robin", c, z[c], est, se);
            ck_assert_msg(fabs(est - z[c]) <= 4 * se,
                          "context %d: Z estimate %.5f vs exact %.5f (4 se %.5f)", c, est, z[c],
                          4 * se);
        }
        ck_assert(isnan(klc_trainer_context_log_z(s.tr, NC)));
        ck_assert_double_eq(klc_trainer_log_z(s.tr), klc_trainer_context_log_z(s.tr, 0));
        setup_free(&s);
    }
}
END_TEST

/* The step's metrics are means over contexts, each with its own Z_c: recomputed here from
 * the batch, with contexts drawn at random so that their sample counts differ. */
START_TEST(test_metrics_average_contexts) {
    setup s;
    setup_frozen(&s, 600, KLC_CONTEXTS_RANDOM);
    ck_klc(klc_trainer_step(s.tr, s.m));
    klc_batch *b = klc_trainer_batch(s.tr);
    const double *logP = klc_batch_logP(b), *logq = klc_batch_logq(b);
    double kl = 0, b_mean = 0, pooled_b = 0;
    for (int c = 0; c < NC; c++) {
        const double lz = klc_trainer_context_log_z(s.tr, c);
        double sum = 0, valid_c = 0;
        int n_c = 0;
        for (int32_t i = 0; i < klc_batch_size(b); i++) {
            if (klc_batch_context_ids(b)[i] != c) continue;
            n_c++;
            if (logP[i] == -INFINITY) continue;
            valid_c++;
            sum += exp(logP[i] - logq[i]) * (logP[i] - logq[i]);
        }
        kl += -lz + sum / (n_c * exp(lz));
        b_mean += valid_c / n_c;
        pooled_b += valid_c;
    }
    kl /= NC, b_mean /= NC, pooled_b /= klc_batch_size(b);
    printf("metrics: train.kl_p_pi %.6f (recomputed %.6f, exact %.6f), b_mean %.4f (pooled %.4f)\n",
           klc_metrics_get(s.m, "train.kl_p_pi"), kl, exact_kl(s.logP, s.pi), b_mean, pooled_b);
    ck_assert_double_eq_tol(klc_metrics_get(s.m, "train.kl_p_pi"), kl, 1e-9);
    ck_assert_double_eq_tol(klc_metrics_get(s.m, "train.b_mean"), b_mean, 1e-12);
    /* Each context's ESS is at most its sample count; their sum at most the batch. */
    const double ess = klc_metrics_get(s.m, "train.ess");
    ck_assert(ess > 0.5 * pooled_b * klc_batch_size(b) && ess <= klc_batch_size(b));
    setup_free(&s);
}
END_TEST

/* GDC++ on the conditional pointwise target, with the settings of the unconditional
 * convergence tests (test_trainer.c): the exact KL averaged over the contexts falls from
 * 0.48 to below 0.01 (measured 0.003-0.0045 over seeds 1-11, each context alike). */
START_TEST(test_gdcpp_converges_per_context) {
    setup s;
    klc_optimizer_options po;
    klc_optimizer_options_init(&po, KLC_OPTIMIZER_OPTIONS_VERSION);
    po.kind = KLC_OPTIMIZER_ADAM;
    po.lr = 0.005;
    po.schedule = KLC_LR_COSINE;
    po.total_steps = 600;
    klc_trainer_options to;
    trainer_options(&s, &to);
    setup_make(&s, &po, &to);
    const double kl0 = exact_kl(s.logP, s.pi);
    for (int k = 0; k < 600; k++) ck_klc(klc_trainer_step(s.tr, s.m));
    const double kl = exact_kl(s.logP, s.pi);
    printf("conditional GDC++: exact mean KL(p||pi) over contexts %.4f -> %.3g in 600 steps "
           "(train.kl_p_pi %.4f, b_mean %.3f)\n",
           kl0, kl, klc_metrics_get(s.m, "train.kl_p_pi"), klc_metrics_get(s.m, "train.b_mean"));
    ck_assert_msg(kl < 0.01, "KL(p||pi) averaged over contexts = %g", kl);
    setup_free(&s);
}
END_TEST

/* Version 1 and 2 options (without contexts) are still accepted and their caller's struct is
 * never read past its end; bad contexts are refused at creation. */
START_TEST(test_options_and_refusals) {
    setup s;
    setup_frozen(&s, 129, KLC_CONTEXTS_ROUND_ROBIN);
    klc_trainer_options to;
    klc_trainer *tr = NULL;
    /* Version-1 and version-2 structs: whatever follows their last field is not the
     * caller's, and they have no contexts. */
    for (uint32_t version = 1; version <= 2; version++) {
        klc_trainer_options old;
        memset(&old, 0xA5, sizeof old);
        ck_klc(klc_trainer_options_init(&old, version));
        const unsigned char *tail = version == 1 ? (const unsigned char *)&old.diversity_period
                                                 : (const unsigned char *)&old.contexts;
        ck_assert_int_eq(tail[0], 0xA5);
        old.max_len = T, old.max_new_tokens = GEN, old.eos_id = EOT, old.bos_id = EOT;
        old.eval_samples = 0;
        ck_klc(klc_trainer_create(s.pi, s.a, s.target, s.obj, s.opt, NULL, &old, &tr));
        ck_klc(klc_trainer_step(tr, s.m));
        ck_assert_int_eq(klc_batch_context_ids(klc_trainer_batch(tr))[5], 0);
        ck_assert_int_eq(klc_batch_prompt_lengths(klc_trainer_batch(tr))[5], 1);
        ck_assert(isnan(klc_trainer_context_log_z(tr, 1)));
        klc_trainer_destroy(tr);
    }

    const int32_t too_long[1] = {T}, bad_token[NC] = {1, 1, 1}, long_prompt[T] = {0};
    klc_seqs c = s.contexts;
    trainer_options(&s, &to);
    to.contexts = &c;
    c.tokens = long_prompt, c.lengths = too_long, c.n_seq = 1, c.max_len = T;
    ck_status(klc_trainer_create(s.pi, s.a, s.target, s.obj, s.opt, NULL, &to, &tr),
              KLC_ERR_INVALID_ARGUMENT, "no room for a generated token");
    c = s.contexts;
    const int32_t tokens[NC * PMAX] = {0, 0, 0, 7, 0, 0, 1, 0, 0};
    c.tokens = tokens, c.lengths = bad_token;
    ck_status(klc_trainer_create(s.pi, s.a, s.target, s.obj, s.opt, NULL, &to, &tr),
              KLC_ERR_INVALID_ARGUMENT, "context 1: token outside the vocabulary");
    c = s.contexts;
    to.z_samples = NC - 1;
    ck_status(klc_trainer_create(s.pi, s.a, s.target, s.obj, s.opt, NULL, &to, &tr),
              KLC_ERR_INVALID_ARGUMENT, "z_samples = 2 must be 0 or at least the 3 contexts");
    /* Extra Z samples go round-robin, whatever the training batch's order. */
    to.z_samples = 300;
    to.context_order = KLC_CONTEXTS_RANDOM;
    ck_klc(klc_trainer_create(s.pi, s.a, s.target, s.obj, s.opt, NULL, &to, &tr));
    ck_klc(klc_trainer_step(tr, s.m));
    double z[NC], var1[NC];
    exact_z(&s, z, var1);
    for (int k = 0; k < NC; k++) {
        const double se = sqrt(var1[k] / (300 / NC));
        ck_assert_double_le(fabs(exp(klc_trainer_context_log_z(tr, k)) - z[k]), 4 * se);
    }
    klc_trainer_destroy(tr);
    tr = NULL;
    to.context_order = 2;
    ck_status(klc_trainer_create(s.pi, s.a, s.target, s.obj, s.opt, NULL, &to, &tr),
              KLC_ERR_INVALID_ARGUMENT, "context_order");
    ck_assert_ptr_null(tr);
    setup_free(&s);
}
END_TEST

int main(void) {
    Suite *s = suite_create("conditional");
    TCase *tc = tcase_create("exact");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_batch_is_conditional);
    tcase_add_test(tc, test_z_per_context);
    tcase_add_test(tc, test_metrics_average_contexts);
    tcase_add_test(tc, test_gdcpp_converges_per_context);
    tcase_add_test(tc, test_options_and_refusals);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
