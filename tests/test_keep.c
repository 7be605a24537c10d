/* KLC_SAMPLE_KEEP_ACTIVATIONS: the activations decoding keeps give the gradient the fused
 * forward/backward computes itself, they are used only while provably the batch's, and the
 * flag never changes what is sampled. */
#include "model/model.h"
#include "testutil.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { V = 50, C = 32, T = 12, N = 10, EOS = 7 };

typedef struct setup {
    klc_model *m;
    klc_sampler *s;
    klc_batch *b;
    klc_seqs contexts;
    int32_t ctx_tokens[3 * T], ctx_lengths[3];
} setup;

static void setup_make(setup *u, int max_rows, int reserve_training) {
    memset(u, 0, sizeof *u);
    u->m = tu_model(2, C, 2, V, 32, 0.3f, 11, NULL);
    if (reserve_training) ck_klc(klc_model_reserve(u->m, N, T, 1));
    klc_sampler_options so;
    klc_sampler_options_init(&so, KLC_SAMPLER_OPTIONS_VERSION);
    so.max_rows = max_rows;
    so.max_len = T;
    so.max_prompt_len = 4;
    ck_klc(klc_sampler_create(u->m, &so, &u->s));
    ck_klc(klc_batch_create(N, T, 0, NULL, &u->b));
    for (int k = 0; k < 3 * T; k++) u->ctx_tokens[k] = (5 * k + 3) % V;
    u->contexts = (klc_seqs){3, T, u->ctx_tokens, u->ctx_lengths, NULL, NULL};
    for (int c = 0; c < 3; c++) u->ctx_lengths[c] = 3;
}

static void setup_free(setup *u) {
    klc_batch_destroy(u->b);
    klc_sampler_destroy(u->s);
    klc_model_destroy(u->m);
}

static void sample(setup *u, int keep, int eos, int with_contexts, uint64_t seed) {
    klc_sample_options o;
    klc_sample_options_init(&o, KLC_SAMPLE_OPTIONS_VERSION);
    klc_rng_init(&o.rng, seed, KLC_STREAM_SAMPLE);
    o.eos_id = eos;
    o.bos_id = 0;
    o.flags = keep ? KLC_SAMPLE_KEEP_ACTIVATIONS : 0;
    if (with_contexts) o.contexts = &u->contexts;
    ck_klc(klc_sampler_sample(u->s, &o, N, u->b));
}

/* The gradient (and log pi) of one fused forward/backward with fixed coefficients. */
static float *gradient(setup *u, double *logpi, uint32_t flags) {
    klc_seqs seqs;
    ck_klc(klc_batch_seqs(u->b, &seqs));
    float on[N * T], sm[N * T];
    for (int k = 0; k < N * T; k++) {
        on[k] = -0.1f * (float)(1 + k % 3);
        sm[k] = 0.05f * (float)(1 + k % 5);
    }
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.seq_logprobs = logpi;
    fo.flags = flags;
    ck_klc(klc_model_zero_grads(u->m));
    ck_klc(klc_model_forward_backward(u->m, &seqs, &fo, on, sm));
    size_t n;
    klc_model_params(u->m, &n);
    float *g = malloc(sizeof(float) * n);
    memcpy(g, klc_model_grads(u->m, NULL), sizeof(float) * n);
    return g;
}

static double rel_diff(const float *a, const float *b, size_t n) {
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return sqrt(e / r);
}

/* Kept, then computed: the second call on the same batch recomputes (kept activations are
 * used once). */
static void check_kept_equals_computed(setup *u, int eos, int with_contexts, const char *what) {
    sample(u, 1, eos, with_contexts, 5);
    const int64_t before = u->m->kept.reuses;
    double lp_kept[N], lp[N];
    float *g_kept = gradient(u, lp_kept, 0);
    ck_assert_msg(u->m->kept.reuses == before + 1, "%s: the kept activations were not used", what);
    float *g = gradient(u, lp, 0);
    ck_assert_msg(u->m->kept.reuses == before + 1, "%s: used twice", what);
    size_t n;
    klc_model_params(u->m, &n);
    const double d = rel_diff(g_kept, g, n);
    ck_assert_msg(d < 1e-5, "%s: gradients differ by %.3e (relative)", what, d);
    for (int i = 0; i < N; i++)
        ck_assert_msg(fabs(lp_kept[i] - lp[i]) < 1e-5, "%s: log pi of %d: %.8f vs %.8f", what, i,
                      lp_kept[i], lp[i]);
    free(g_kept);
    free(g);
}

START_TEST(kept_activations_give_the_computed_gradient) {
    setup u;
    setup_make(&u, 4, 1); /* three rounds of at most 4 rows */
    check_kept_equals_computed(&u, -1, 0, "start token, full length");
    check_kept_equals_computed(&u, EOS, 0, "end-of-text: sequences of several lengths");
    const int32_t *len = klc_batch_lengths(u.b);
    int shorter = 0;
    for (int i = 0; i < N; i++) shorter += len[i] < T;
    ck_assert_msg(shorter > 0, "no sequence ended early: the compaction was not exercised");
    check_kept_equals_computed(&u, EOS, 1, "contexts of three tokens");
    setup_free(&u);

    setup_make(&u, N, 1); /* one round */
    check_kept_equals_computed(&u, EOS, 0, "one round");
    setup_free(&u);
}
END_TEST

START_TEST(kept_activations_are_used_only_while_valid) {
    setup u;
    setup_make(&u, 4, 1);
    double lp[N];
    /* A parameter changed after sampling. */
    sample(&u, 1, EOS, 0, 9);
    klc_model_params(u.m, NULL)[123] += 1e-3f;
    int64_t r = u.m->kept.reuses;
    free(gradient(&u, lp, 0));
    ck_assert_int_eq(u.m->kept.reuses, r);
    /* Another forward of the model in between. */
    sample(&u, 1, EOS, 0, 9);
    klc_seqs seqs;
    ck_klc(klc_batch_seqs(u.b, &seqs));
    ck_klc(klc_model_score(u.m, &seqs, NULL));
    free(gradient(&u, lp, 0));
    ck_assert_int_eq(u.m->kept.reuses, r);
    /* Another batch. */
    sample(&u, 1, EOS, 0, 9);
    klc_batch_tokens(u.b)[3] = (klc_batch_tokens(u.b)[3] + 1) % V;
    free(gradient(&u, lp, 0));
    ck_assert_int_eq(u.m->kept.reuses, r);
    /* Dropout asked for. */
    sample(&u, 1, EOS, 0, 9);
    free(gradient(&u, lp, KLC_FORWARD_DROPOUT));
    ck_assert_int_eq(u.m->kept.reuses, r);
    /* And the same batch, untouched, is used. */
    sample(&u, 1, EOS, 0, 9);
    free(gradient(&u, lp, 0));
    ck_assert_int_eq(u.m->kept.reuses, r + 1);
    setup_free(&u);
}
END_TEST

/* Whether or not anything is kept, the same tokens and log q. */
static void check_same_samples(setup *u, int with_contexts, const char *what) {
    int32_t tok[N * T], len[N];
    double logq[N];
    sample(u, 0, EOS, with_contexts, 21);
    memcpy(tok, klc_batch_tokens(u->b), sizeof tok);
    memcpy(len, klc_batch_lengths(u->b), sizeof len);
    memcpy(logq, klc_batch_logq(u->b), sizeof logq);
    sample(u, 1, EOS, with_contexts, 21);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(len[i] == klc_batch_lengths(u->b)[i], "%s: length of %d", what, i);
        ck_assert_msg(logq[i] == klc_batch_logq(u->b)[i], "%s: log q of %d", what, i);
    }
    ck_assert_msg(memcmp(tok, klc_batch_tokens(u->b), sizeof tok) == 0, "%s: tokens", what);
}

START_TEST(the_flag_never_changes_the_samples) {
    setup u;
    setup_make(&u, 4, 1);
    check_same_samples(&u, 0, "kept");
    ck_assert_int_eq(u.m->kept.state, KLC_KEPT_READY);
    u.ctx_lengths[1] = 2; /* prompts of two lengths: nothing can be kept */
    check_same_samples(&u, 1, "prompts of two lengths");
    ck_assert_int_eq(u.m->kept.state, KLC_KEPT_NONE);
    setup_free(&u);

    setup_make(&u, 4, 0); /* no training workspace: nothing can be kept */
    check_same_samples(&u, 0, "no training workspace");
    ck_assert_int_eq(u.m->kept.state, KLC_KEPT_NONE);
    setup_free(&u);
}
END_TEST

START_TEST(version_1_options_and_unknown_flags) {
    /* A version-1 struct is shorter: init must not write past it. */
    unsigned char buf[sizeof(klc_sample_options) + 8];
    memset(buf, 0xAB, sizeof buf);
    const size_t v1 = offsetof(klc_sample_options, flags);
    ck_klc(klc_sample_options_init((klc_sample_options *)buf, 1));
    for (size_t k = v1; k < sizeof buf; k++) ck_assert_int_eq(buf[k], 0xAB);
    setup u;
    setup_make(&u, 4, 1);
    klc_sample_options o;
    klc_sample_options_init(&o, KLC_SAMPLE_OPTIONS_VERSION);
    o.bos_id = 0;
    o.eos_id = EOS;
    o.flags = 1u << 7;
    ck_status(klc_sampler_sample(u.s, &o, N, u.b), KLC_ERR_INVALID_ARGUMENT, "unknown bits");
    setup_free(&u);
}
END_TEST

int main(void) {
    Suite *s = suite_create("keep");
    TCase *tc = tcase_create("keep");
    tcase_add_test(tc, kept_activations_give_the_computed_gradient);
    tcase_add_test(tc, kept_activations_are_used_only_while_valid);
    tcase_add_test(tc, the_flag_never_changes_the_samples);
    tcase_add_test(tc, version_1_options_and_unknown_flags);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
