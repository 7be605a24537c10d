/* Core: versions, status codes, error messages, the allocator, the random generator. */
#include "core/internal.h"
#include "core/rng.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

START_TEST(version_matches_header) {
    ck_assert_uint_eq(klc_version(), KLC_VERSION);
    ck_assert_str_eq(klc_version_string(), KLC_VERSION_STRING);
}
END_TEST

START_TEST(status_names) {
    ck_assert_str_eq(klc_status_str(KLC_OK), "KLC_OK");
    ck_assert_str_eq(klc_status_str(KLC_ERR_FORMAT), "KLC_ERR_FORMAT");
    ck_assert_str_eq(klc_status_str(12345), "KLC_ERR_UNKNOWN");
}
END_TEST

START_TEST(error_message_is_thread_local_and_formatted) {
    klc_clear_error();
    ck_assert_str_eq(klc_last_error(), "");
    int s = klc_fail(KLC_ERR_IO, "cannot open '%s': %s", "x.bin", "No such file");
    ck_assert_int_eq(s, KLC_ERR_IO);
    ck_assert_str_eq(klc_last_error(), "cannot open 'x.bin': No such file");
    klc_fail_context(KLC_ERR_IO, "%s: ", "model");
    ck_assert_str_eq(klc_last_error(), "model: cannot open 'x.bin': No such file");
}
END_TEST

START_TEST(invalid_arguments_are_reported) {
    klc_model *m = (klc_model *)0x1;
    ck_assert_int_eq(klc_model_create(NULL, &m), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    ck_assert(strlen(klc_last_error()) > 0);
}
END_TEST

/* Random123's published known-answer vectors for Philox4x32-10. */
START_TEST(philox_known_answers) {
    static const uint32_t cases[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        klc_philox4x32_10(cases[i], cases[i] + 4, out);
        for (int j = 0; j < 4; j++) ck_assert_uint_eq(out[j], cases[i][6 + j]);
    }
}
END_TEST

START_TEST(rng_is_a_pure_function_of_its_key) {
    klc_rng a, b;
    klc_rng_init(&a, 42, KLC_STREAM_SAMPLE);
    klc_rng_init(&b, 42, KLC_STREAM_SAMPLE);
    /* Order of evaluation does not matter: (sample, counter) addresses a number. */
    double x1 = klc_rng_uniform(&a, 7, 3), y1 = klc_rng_uniform(&a, 2, 0);
    double y2 = klc_rng_uniform(&b, 2, 0), x2 = klc_rng_uniform(&b, 7, 3);
    ck_assert(x1 == x2 && y1 == y2);
    /* Seed, stream, step, sample and counter all change the value. */
    klc_rng c = a;
    c.step = 1;
    ck_assert(klc_rng_uniform(&c, 7, 3) != x1);
    c = a;
    c.stream = KLC_STREAM_DROPOUT;
    ck_assert(klc_rng_uniform(&c, 7, 3) != x1);
    c = a;
    c.seed = 43;
    ck_assert(klc_rng_uniform(&c, 7, 3) != x1);
    ck_assert(klc_rng_uniform(&a, 8, 3) != x1);
    ck_assert(klc_rng_uniform(&a, 7, 4) != x1);
}
END_TEST

START_TEST(rng_moments) {
    klc_rng r;
    klc_rng_init(&r, 1, KLC_STREAM_USER);
    const int n = 200000;
    double su = 0, su2 = 0, sn = 0, sn2 = 0, sn4 = 0;
    for (int i = 0; i < n; i++) {
        double u = klc_rng_uniform(&r, (uint64_t)i, 0);
        ck_assert(u >= 0.0 && u < 1.0);
        su += u;
        su2 += u * u;
        double z = klc_rng_normal(&r, (uint64_t)i, 1);
        ck_assert(isfinite(z));
        sn += z;
        sn2 += z * z;
        sn4 += z * z * z * z;
    }
    /* Standard errors: mean of U ~ 0.29/sqrt(n) = 6.5e-4; we allow 5 of them. */
    ck_assert_double_eq_tol(su / n, 0.5, 3.3e-3);
    ck_assert_double_eq_tol(su2 / n - (su / n) * (su / n), 1.0 / 12, 2e-3);
    ck_assert_double_eq_tol(sn / n, 0.0, 1.2e-2);
    ck_assert_double_eq_tol(sn2 / n, 1.0, 1.6e-2);
    ck_assert_double_eq_tol(sn4 / n, 3.0, 0.15);
}
END_TEST

typedef struct counting_allocator {
    size_t live_bytes, calls;
} counting_allocator;

static void *count_alloc(void *ud, size_t size, size_t alignment) {
    counting_allocator *c = ud;
    c->live_bytes += size;
    c->calls++;
    return aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}

static void count_free(void *ud, void *p, size_t size) {
    counting_allocator *c = ud;
    c->live_bytes -= size;
    free(p);
}

START_TEST(model_uses_the_callers_allocator_for_everything) {
    counting_allocator c = {0, 0};
    klc_allocator a = {count_alloc, count_free, &c};
    klc_model_options o;
    ck_klc(klc_model_options_init(&o, KLC_MODEL_OPTIONS_VERSION));
    o.n_layer = 2;
    o.n_embd = 32;
    o.n_head = 2;
    o.n_ctx = 16;
    o.vocab_size = 50;
    o.allocator = &a;
    klc_model *m;
    ck_klc(klc_model_create(&o, &m));
    ck_assert_uint_gt(c.calls, 0);
    ck_klc(klc_model_reserve(m, 2, 8, 1));
    ck_assert_ptr_nonnull(klc_model_grads(m, NULL));
    klc_model *copy;
    ck_klc(klc_model_clone(m, &copy));
    klc_model_destroy(m);
    klc_model_destroy(copy);
    ck_assert_uint_eq(c.live_bytes, 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, version_matches_header);
    tcase_add_test(tc, status_names);
    tcase_add_test(tc, error_message_is_thread_local_and_formatted);
    tcase_add_test(tc, invalid_arguments_are_reported);
    tcase_add_test(tc, philox_known_answers);
    tcase_add_test(tc, rng_is_a_pure_function_of_its_key);
    tcase_add_test(tc, rng_moments);
    tcase_add_test(tc, model_uses_the_callers_allocator_for_everything);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
