/* klc's forward against an independent float64 GPT-2 in PyTorch (tools/make_reference.py)
 * on the committed tiny checkpoint tests/data/ref-tiny, in all four layouts. */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOLERANCE 1e-4

typedef struct expected_seq {
    int32_t len;
    int32_t tokens[64];
    double token_logprobs[64];
    double logprob;
} expected_seq;

typedef struct expected_set {
    int n;
    expected_seq seq[32];
} expected_set;

static void read_expected(const char *file, expected_set *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/ref-tiny/%s", KLC_TEST_DATA, file);
    char *text = tu_read_file(path, NULL);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    e->n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        ck_assert_msg(o != NULL, "%s: %s", path, err.text);
        ck_assert_int_lt(e->n, 32);
        expected_seq *s = &e->seq[e->n++];
        json_t *tok = json_object_get(o, "tokens"), *lp = json_object_get(o, "token_logprobs");
        s->len = (int32_t)json_array_size(tok);
        ck_assert(s->len >= 1 && s->len <= 64);
        ck_assert_int_eq(json_array_size(lp), (size_t)(s->len - 1));
        for (int32_t t = 0; t < s->len; t++)
            s->tokens[t] = (int32_t)json_integer_value(json_array_get(tok, (size_t)t));
        for (int32_t t = 0; t + 1 < s->len; t++)
            s->token_logprobs[t] = json_number_value(json_array_get(lp, (size_t)t));
        s->logprob = json_number_value(json_object_get(o, "logprob"));
        json_decref(o);
    }
    free(text);
    ck_assert_int_gt(e->n, 0);
}

static klc_model *load_variant(const char *variant) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ref-tiny/%s", KLC_TEST_DATA, variant);
    klc_model *m;
    ck_klc(klc_model_load(dir, NULL, &m));
    return m;
}

/* Scores sequences [first, first + count) of e as one right-padded batch and compares. */
static void score_and_compare(klc_model *m, const expected_set *e, int first, int count,
                              const char *variant) {
    int32_t max_len = 1;
    for (int i = first; i < first + count; i++)
        if (e->seq[i].len > max_len) max_len = e->seq[i].len;
    size_t cells = (size_t)count * (size_t)max_len;
    int32_t *tokens = malloc(cells * sizeof *tokens), *lengths = malloc((size_t)count * 4);
    float *tok_lp = malloc(cells * sizeof *tok_lp);
    double *seq_lp = malloc((size_t)count * sizeof *seq_lp);
    for (int i = 0; i < count; i++) {
        const expected_seq *s = &e->seq[first + i];
        lengths[i] = s->len;
        for (int32_t t = 0; t < max_len; t++)
            /* Padding may hold anything; an out-of-range id shows if it is ever read. */
            tokens[(size_t)i * max_len + t] = t < s->len ? s->tokens[t] : -1;
    }
    for (size_t k = 0; k < cells; k++) tok_lp[k] = NAN;
    klc_seqs seqs = {count, max_len, tokens, lengths, NULL, NULL};
    klc_forward_options fo;
    ck_klc(klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION));
    fo.token_logprobs = tok_lp;
    fo.seq_logprobs = seq_lp;
    ck_klc(klc_model_score(m, &seqs, &fo));
    for (int i = 0; i < count; i++) {
        const expected_seq *s = &e->seq[first + i];
        for (int32_t t = 0; t < max_len; t++) {
            float got = tok_lp[(size_t)i * max_len + t];
            if (t + 1 < s->len)
                ck_assert_msg(fabs((double)got - s->token_logprobs[t]) <= TOLERANCE,
                              "%s: sequence %d (length %d) token %d: klc %.9g, reference %.9g",
                              variant, first + i, s->len, t, (double)got, s->token_logprobs[t]);
            else
                ck_assert_msg(got == 0.0f, "%s: sequence %d position %d (not a prediction) = %g",
                              variant, first + i, t, (double)got);
        }
        double tol = TOLERANCE * (s->len > 1 ? s->len - 1 : 1);
        ck_assert_msg(fabs(seq_lp[i] - s->logprob) <= tol,
                      "%s: sequence %d: klc log-probability %.9g, reference %.9g", variant,
                      first + i, seq_lp[i], s->logprob);
    }
    free(tokens);
    free(lengths);
    free(tok_lp);
    free(seq_lp);
}

static const struct {
    const char *dir, *expected;
} variants[] = {
    {"f32", "expected.jsonl"},
    {"f32-noprefix", "expected.jsonl"},
    {"f16", "expected-f16.jsonl"},
    {"bf16", "expected-bf16.jsonl"},
};
#define N_VARIANTS ((int)(sizeof variants / sizeof *variants))

/* All sequences in one right-padded batch. */
START_TEST(batch_matches_reference) {
    expected_set *e = malloc(sizeof *e);
    read_expected(variants[_i].expected, e);
    klc_model *m = load_variant(variants[_i].dir);
    score_and_compare(m, e, 0, e->n, variants[_i].dir);
    klc_model_destroy(m);
    free(e);
}
END_TEST

/* Each sequence alone: the same values as in the padded batch. */
START_TEST(single_sequences_match_reference) {
    expected_set *e = malloc(sizeof *e);
    read_expected(variants[_i].expected, e);
    klc_model *m = load_variant(variants[_i].dir);
    for (int i = 0; i < e->n; i++) score_and_compare(m, e, i, 1, variants[_i].dir);
    klc_model_destroy(m);
    free(e);
}
END_TEST

/* The rounded checkpoints' expectations differ from F32's by far more than the tolerance,
 * so that a loader that ignored the rounding (or a wrong conversion) could not pass. */
START_TEST(reference_values_discriminate_dtypes) {
    expected_set *f32 = malloc(sizeof *f32), *other = malloc(sizeof *other);
    read_expected("expected.jsonl", f32);
    for (int v = 2; v < N_VARIANTS; v++) {
        read_expected(variants[v].expected, other);
        ck_assert_int_eq(other->n, f32->n);
        double max_diff = 0;
        for (int i = 0; i < f32->n; i++)
            for (int32_t t = 0; t + 1 < f32->seq[i].len; t++)
                max_diff = fmax(max_diff, fabs(f32->seq[i].token_logprobs[t] -
                                               other->seq[i].token_logprobs[t]));
        ck_assert_msg(max_diff > 20 * TOLERANCE, "%s: max difference to F32 %g", variants[v].dir,
                      max_diff);
    }
    free(f32);
    free(other);
}
END_TEST

int main(void) {
    Suite *s = suite_create("reference");
    TCase *data = tcase_create("data");
    tcase_add_test(data, reference_values_discriminate_dtypes);
    suite_add_tcase(s, data);
    TCase *fwd = tcase_create("forward");
    tcase_add_loop_test(fwd, batch_matches_reference, 0, N_VARIANTS);
    tcase_add_loop_test(fwd, single_sequences_match_reference, 0, N_VARIANTS);
    suite_add_tcase(s, fwd);
    return tu_run_suite(s);
}
