/* The optimizer: Adam, AdamW and SGD against values PyTorch computed
 * (tests/data/optim/reference.json, from tools/make_optim_reference.py), schedules at
 * chosen steps, bit-exact save and restore, hostile state blobs, invalid options, and the
 * guarantees of a step (no allocation, thread-count independence, nothing written on a
 * non-finite gradient). */
#include "optim/optim.h"
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static klc_optimizer_options defaults(void) {
    klc_optimizer_options o;
    ck_klc(klc_optimizer_options_init(&o, KLC_OPTIMIZER_OPTIONS_VERSION));
    return o;
}

static klc_optimizer *make(const klc_optimizer_options *o, size_t n) {
    klc_optimizer *opt = NULL;
    ck_klc(klc_optimizer_create(o, n, &opt));
    return opt;
}

/* Deterministic test data: normal values keyed by (seed, step, index). */
static void fill_normal(float *x, size_t n, uint64_t seed, uint64_t step, double scale) {
    klc_rng r;
    klc_rng_init(&r, seed, KLC_STREAM_USER);
    r.step = step;
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * klc_rng_normal(&r, i, 0));
}

/* ------------------------------------------------------------------------------------ */
/* Against PyTorch                                                                      */
/* ------------------------------------------------------------------------------------ */

static double jnum(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    ck_assert_msg(v && json_is_number(v), "fixture: '%s' missing", key);
    return json_number_value(v);
}

static int32_t code_of(json_t *obj, const char *key, const char *const *names, int32_t n) {
    const char *s = json_string_value(json_object_get(obj, key));
    ck_assert_msg(s != NULL, "fixture: '%s' missing", key);
    for (int32_t i = 0; i < n; i++)
        if (names[i] && strcmp(s, names[i]) == 0) return i;
    ck_abort_msg("fixture: unknown %s '%s'", key, s);
    return -1;
}

static void read_floats(json_t *arr, float *out, size_t n) {
    ck_assert(json_is_array(arr) && json_array_size(arr) == n);
    for (size_t i = 0; i < n; i++) out[i] = (float)json_number_value(json_array_get(arr, i));
}

START_TEST(matches_pytorch) {
    json_error_t err;
    json_t *doc = json_load_file(KLC_TEST_DATA "/optim/reference.json", 0, &err);
    ck_assert_msg(doc != NULL, "reference.json: %s at line %d", err.text, err.line);
    const size_t n = (size_t)json_integer_value(json_object_get(doc, "n"));
    const size_t steps = (size_t)json_integer_value(json_object_get(doc, "steps"));
    json_t *cases = json_object_get(doc, "cases");
    ck_assert(json_array_size(cases) >= 19);
    static const char *const kinds[] = {NULL, "adam", "adamw", "sgd"};
    static const char *const schedules[] = {"constant", "cosine", "linear"};
    float *p = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float)),
          *want = malloc(n * sizeof(float));
    for (size_t ci = 0; ci < json_array_size(cases); ci++) {
        json_t *c = json_array_get(cases, ci), *jo = json_object_get(c, "options");
        const char *name = json_string_value(json_object_get(c, "name"));
        klc_optimizer_options o = defaults();
        o.kind = code_of(jo, "kind", kinds, 4);
        o.lr = jnum(jo, "lr");
        o.beta1 = jnum(jo, "beta1");
        o.beta2 = jnum(jo, "beta2");
        o.eps = jnum(jo, "eps");
        o.weight_decay = jnum(jo, "weight_decay");
        o.momentum = jnum(jo, "momentum");
        o.dampening = jnum(jo, "dampening");
        o.nesterov = (int32_t)jnum(jo, "nesterov");
        o.clip_norm = jnum(jo, "clip_norm");
        o.clip_value = jnum(jo, "clip_value");
        o.schedule = code_of(jo, "schedule", schedules, 3);
        o.warmup_steps = (int64_t)jnum(jo, "warmup_steps");
        o.total_steps = (int64_t)jnum(jo, "total_steps");
        o.min_lr = jnum(jo, "min_lr");
        klc_optimizer *opt = make(&o, n);
        read_floats(json_object_get(c, "params0"), p, n);
        for (size_t k = 0; k < steps; k++) {
            read_floats(json_array_get(json_object_get(c, "grads"), k), g, n);
            read_floats(json_array_get(json_object_get(c, "params"), k), want, n);
            klc_optimizer_report rep = {.version = KLC_OPTIMIZER_REPORT_VERSION};
            ck_klc(klc_optimizer_step(opt, p, g, n, &rep));
            const double lr = json_number_value(json_array_get(json_object_get(c, "lr"), k));
            const double norm =
                json_number_value(json_array_get(json_object_get(c, "grad_norm"), k));
            ck_assert_int_eq(rep.step, (int64_t)k + 1);
            ck_assert_msg(fabs(rep.lr - lr) <= 1e-12 * lr, "%s step %zu: lr %.17g, torch %.17g",
                          name, k, rep.lr, lr);
            ck_assert_msg(fabs(rep.grad_norm - norm) <= 1e-12 * norm,
                          "%s step %zu: grad_norm %.17g, torch %.17g", name, k, rep.grad_norm,
                          norm);
            for (size_t i = 0; i < n; i++) {
                /* Float rounding differs from torch's only by operation grouping (fused
                 * multiply-adds, the clip factor from a double norm): at most 5e-7 here,
                 * while a wrong formula is off by 1e-4 or more. */
                double d = fabs((double)p[i] - want[i]) / (1.0 + fabs(want[i]));
                ck_assert_msg(d < 1e-6, "%s step %zu: param %zu = %.9g, torch %.9g", name, k, i,
                              (double)p[i], (double)want[i]);
            }
        }
        klc_optimizer_destroy(opt);
    }
    free(p);
    free(g);
    free(want);
    json_decref(doc);
}
END_TEST

/* Independent of the fixture: Adam's first update is -lr * g / (|g| + eps') whatever the
 * betas, because the bias corrections undo the moments' (1 - beta) factors. */
START_TEST(first_adam_step_is_sign_descent) {
    klc_optimizer_options o = defaults();
    o.kind = KLC_OPTIMIZER_ADAM;
    o.lr = 0.01;
    o.beta1 = 0.7;
    o.beta2 = 0.9;
    o.eps = 1e-3;
    const size_t n = 33;
    float p[33], g[33];
    fill_normal(p, n, 1, 0, 1.0);
    fill_normal(g, n, 2, 0, 0.1);
    float p0[33];
    memcpy(p0, p, sizeof p);
    klc_optimizer *opt = make(&o, n);
    ck_klc(klc_optimizer_step(opt, p, g, n, NULL));
    for (size_t i = 0; i < n; i++) {
        double gi = g[i], want = p0[i] - 0.01 * gi / (fabs(gi) + 1e-3);
        ck_assert_msg(fabs(p[i] - want) < 1e-6, "param %zu: %.9g, want %.9g", i, (double)p[i],
                      want);
    }
    klc_optimizer_destroy(opt);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Schedules                                                                            */
/* ------------------------------------------------------------------------------------ */

static double lr_at(const klc_optimizer_options *o, int64_t t) {
    double lr = -1;
    ck_klc(klc_optimizer_lr_at(o, t, &lr));
    return lr;
}

START_TEST(schedules_at_chosen_steps) {
    klc_optimizer_options o = defaults();
    o.lr = 0.1;
    /* constant */
    ck_assert_double_eq(lr_at(&o, 0), 0.1);
    ck_assert_double_eq(lr_at(&o, 1000000), 0.1);
    /* warm-up then constant: (t + 1) / W */
    o.warmup_steps = 4;
    ck_assert_double_eq_tol(lr_at(&o, 0), 0.025, 1e-15);
    ck_assert_double_eq_tol(lr_at(&o, 1), 0.05, 1e-15);
    ck_assert_double_eq_tol(lr_at(&o, 3), 0.1, 1e-15);
    ck_assert_double_eq(lr_at(&o, 4), 0.1);
    ck_assert_double_eq(lr_at(&o, 99), 0.1);
    /* cosine from 0.1 to 0.01 over updates 4..104 */
    o.schedule = KLC_LR_COSINE;
    o.total_steps = 104;
    o.min_lr = 0.01;
    ck_assert_double_eq_tol(lr_at(&o, 1), 0.05, 1e-15);
    ck_assert_double_eq_tol(lr_at(&o, 4), 0.1, 1e-15);
    ck_assert_double_eq_tol(lr_at(&o, 54), 0.055, 1e-15); /* half way */
    ck_assert_double_eq_tol(lr_at(&o, 29), 0.01 + 0.09 * (1 + sqrt(0.5)) / 2, 1e-15);
    ck_assert_double_eq_tol(lr_at(&o, 79), 0.01 + 0.09 * (1 - sqrt(0.5)) / 2, 1e-15);
    ck_assert_double_eq(lr_at(&o, 104), 0.01);
    ck_assert_double_eq(lr_at(&o, 5000), 0.01); /* stays at min_lr, does not climb again */
    /* linear decay */
    o.schedule = KLC_LR_LINEAR;
    ck_assert_double_eq_tol(lr_at(&o, 2), 0.075, 1e-15);
    ck_assert_double_eq_tol(lr_at(&o, 4), 0.1, 1e-15);
    ck_assert_double_eq_tol(lr_at(&o, 29), 0.1 - 0.09 * 0.25, 1e-15);
    ck_assert_double_eq_tol(lr_at(&o, 103), 0.01 + 0.09 / 100, 1e-15);
    ck_assert_double_eq(lr_at(&o, 104), 0.01);
    ck_assert_double_eq(lr_at(&o, 1 << 30), 0.01);
    /* no warm-up: the first update uses the peak */
    o.warmup_steps = 0;
    o.total_steps = 10;
    o.min_lr = 0.0;
    ck_assert_double_eq(lr_at(&o, 0), 0.1);
    ck_assert_double_eq_tol(lr_at(&o, 5), 0.05, 1e-15);
    ck_assert_double_eq(lr_at(&o, 10), 0.0);
    double lr;
    ck_status(klc_optimizer_lr_at(&o, -1, &lr), KLC_ERR_INVALID_ARGUMENT, "t = -1");
    o.total_steps = 0;
    ck_status(klc_optimizer_lr_at(&o, 0, &lr), KLC_ERR_INVALID_ARGUMENT, "total_steps");
}
END_TEST

/* The optimizer reports and uses the schedule's value, continuing across a restore. */
START_TEST(step_reports_the_schedule) {
    klc_optimizer_options o = defaults();
    o.kind = KLC_OPTIMIZER_SGD;
    o.lr = 1.0;
    o.schedule = KLC_LR_COSINE;
    o.warmup_steps = 3;
    o.total_steps = 20;
    const size_t n = 5;
    float p[5] = {0}, g[5] = {1, 1, 1, 1, 1};
    klc_optimizer *opt = make(&o, n);
    for (int64_t t = 0; t < 25; t++) {
        float before = p[0];
        klc_optimizer_report rep = {.version = 1};
        ck_klc(klc_optimizer_step(opt, p, g, n, &rep));
        ck_assert_double_eq(rep.lr, lr_at(&o, t));
        ck_assert_int_eq(rep.step, t + 1);
        ck_assert_int_eq(klc_optimizer_steps(opt), t + 1);
        ck_assert_float_eq(p[0], before - (float)rep.lr);
    }
    klc_optimizer_destroy(opt);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* State                                                                                */
/* ------------------------------------------------------------------------------------ */

static void *save(const klc_optimizer *opt, size_t *size) {
    size_t need = 0;
    ck_status(klc_optimizer_save_state(opt, NULL, 0, &need), KLC_ERR_INVALID_ARGUMENT, "needs");
    ck_assert_uint_eq(need, klc_optimizer_state_size(opt));
    void *buf = malloc(need);
    ck_klc(klc_optimizer_save_state(opt, buf, need, size));
    ck_assert_uint_eq(*size, need);
    return buf;
}

/* Runs `steps` updates from step `from` with gradients keyed by the step number. */
static void run(klc_optimizer *opt, float *p, float *g, size_t n, int from, int steps) {
    for (int t = from; t < from + steps; t++) {
        fill_normal(g, n, 77, (uint64_t)t, t % 3 == 0 ? 3.0 : 0.3);
        ck_klc(klc_optimizer_step(opt, p, g, n, NULL));
    }
}

static void check_resume_bit_exact(const klc_optimizer_options *o, size_t n) {
    const int total = 12, cut = 5;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)),
          *g = malloc(n * sizeof(float));
    fill_normal(a, n, 5, 0, 1.0);
    memcpy(b, a, n * sizeof(float));
    klc_optimizer *straight = make(o, n);
    run(straight, a, g, n, 0, total);

    klc_optimizer *first = make(o, n);
    run(first, b, g, n, 0, cut);
    size_t size;
    void *blob = save(first, &size);
    klc_optimizer_destroy(first);
    klc_optimizer *resumed = make(o, n);
    ck_klc(klc_optimizer_load_state(resumed, blob, size));
    ck_assert_int_eq(klc_optimizer_steps(resumed), cut);
    run(resumed, b, g, n, cut, total - cut);

    ck_assert_msg(memcmp(a, b, n * sizeof(float)) == 0,
                  "kind %d: resumed parameters differ from the straight run", o->kind);
    size_t sa, sb;
    void *ba = save(straight, &sa), *bb = save(resumed, &sb);
    ck_assert_uint_eq(sa, sb);
    ck_assert_msg(memcmp(ba, bb, sa) == 0, "kind %d: resumed state differs", o->kind);
    free(ba);
    free(bb);
    free(blob);
    klc_optimizer_destroy(straight);
    klc_optimizer_destroy(resumed);
    free(a);
    free(b);
    free(g);
}

START_TEST(save_and_restore_is_bit_exact) {
    /* Several chunks, parallel: 3 * 65536 + 7 elements. */
    const size_t big = 3 * 65536 + 7;
    klc_optimizer_options o = defaults();
    o.kind = KLC_OPTIMIZER_ADAM;
    o.weight_decay = 0.01;
    check_resume_bit_exact(&o, 101);
    o = defaults();
    o.kind = KLC_OPTIMIZER_ADAMW;
    o.weight_decay = 0.1;
    o.clip_norm = 1.0;
    o.schedule = KLC_LR_COSINE;
    o.warmup_steps = 3;
    o.total_steps = 10;
    o.min_lr = 1e-5;
    check_resume_bit_exact(&o, big);
    o = defaults();
    o.kind = KLC_OPTIMIZER_SGD;
    o.lr = 0.05;
    o.momentum = 0.9;
    o.nesterov = 1;
    o.clip_value = 0.5;
    o.schedule = KLC_LR_LINEAR;
    o.total_steps = 8;
    check_resume_bit_exact(&o, big);
    o = defaults();
    o.kind = KLC_OPTIMIZER_SGD;
    o.lr = 0.05;
    o.warmup_steps = 7;
    check_resume_bit_exact(&o, 64);
}
END_TEST

START_TEST(results_do_not_depend_on_thread_count) {
    const size_t n = 5 * 65536 + 3;
    klc_optimizer_options o = defaults();
    o.clip_norm = 0.5;
    o.weight_decay = 0.1;
    float *p[2], *g = malloc(n * sizeof(float));
    klc_optimizer_report rep[2] = {{.version = 1}, {.version = 1}};
    for (int k = 0; k < 2; k++) {
        ck_klc(klc_set_num_threads(k + 1));
        p[k] = malloc(n * sizeof(float));
        fill_normal(p[k], n, 9, 0, 1.0);
        klc_optimizer *opt = make(&o, n);
        for (int t = 0; t < 3; t++) {
            fill_normal(g, n, 10, (uint64_t)t, 1.0);
            ck_klc(klc_optimizer_step(opt, p[k], g, n, &rep[k]));
        }
        klc_optimizer_destroy(opt);
    }
    ck_klc(klc_set_num_threads(0));
    ck_assert(rep[0].grad_norm == rep[1].grad_norm);
    ck_assert(rep[0].clip_coef < 1.0);
    ck_assert(memcmp(p[0], p[1], n * sizeof(float)) == 0);
    free(p[0]);
    free(p[1]);
    free(g);
}
END_TEST

static unsigned char *adam_blob(size_t n, int steps, size_t *size) {
    klc_optimizer_options o = defaults();
    klc_optimizer *opt = make(&o, n);
    float *p = calloc(n, sizeof(float)), *g = malloc(n * sizeof(float));
    run(opt, p, g, n, 0, steps);
    unsigned char *blob = save(opt, size);
    klc_optimizer_destroy(opt);
    free(p);
    free(g);
    return blob;
}

/* Loads `blob` into `opt`, expects the failure, and checks that the state did not move. */
static void expect_refused(klc_optimizer *opt, const void *blob, size_t size, int status,
                           const char *fragment) {
    size_t s0, s1;
    void *before = save(opt, &s0);
    ck_status(klc_optimizer_load_state(opt, blob, size), status, fragment);
    void *after = save(opt, &s1);
    ck_assert(s0 == s1 && memcmp(before, after, s0) == 0);
    free(before);
    free(after);
}

START_TEST(bad_state_blobs_are_refused) {
    const size_t n = 40;
    size_t size;
    unsigned char *good = adam_blob(n, 3, &size);
    ck_assert_uint_eq(size, 64 + 2 * n * sizeof(float));
    unsigned char *b = malloc(size);
    klc_optimizer_options o = defaults();
    klc_optimizer *opt = make(&o, n);
    /* Move it off its fresh state so "unchanged" means something. */
    float *p = calloc(n, sizeof(float)), *g = malloc(n * sizeof(float));
    run(opt, p, g, n, 0, 2);

    expect_refused(opt, good, 10, KLC_ERR_FORMAT, "shorter than the 64-byte header");
    expect_refused(opt, good, size - 4, KLC_ERR_FORMAT, "expected");
    memcpy(b, good, size);
    b[0] = 'X';
    expect_refused(opt, b, size, KLC_ERR_FORMAT, "bad magic");
    memcpy(b, good, size);
    b[8] = 2;
    expect_refused(opt, b, size, KLC_ERR_FORMAT, "format version 2");
    memcpy(b, good, size);
    b[12] = KLC_OPTIMIZER_ADAM;
    expect_refused(opt, b, size, KLC_ERR_FORMAT,
                   "saved by an Adam optimizer (kind 1), loading into AdamW");
    memcpy(b, good, size);
    b[16] = 41;
    expect_refused(opt, b, size, KLC_ERR_FORMAT, "saved for 41 parameters");
    memcpy(b, good, size);
    b[31] = 0x80; /* step negative */
    expect_refused(opt, b, size, KLC_ERR_FORMAT, "is negative");
    memcpy(b, good, size);
    b[32] = 1;
    expect_refused(opt, b, size, KLC_ERR_FORMAT, "1 moment arrays");
    memcpy(b, good, size);
    b[40] = 1;
    expect_refused(opt, b, size, KLC_ERR_FORMAT, "reserved header byte 40");
    float bad_value = NAN;
    memcpy(b, good, size);
    memcpy(b + 64 + 5 * sizeof(float), &bad_value, sizeof(float));
    expect_refused(opt, b, size, KLC_ERR_FORMAT, "exp_avg[5] = nan is not finite");
    bad_value = -1.0f;
    memcpy(b, good, size);
    memcpy(b + 64 + (n + 7) * sizeof(float), &bad_value, sizeof(float));
    expect_refused(opt, b, size, KLC_ERR_FORMAT, "exp_avg_sq[7] = -1 is negative");
    /* A different optimizer's blob: SGD without momentum has no arrays. */
    klc_optimizer_options so = defaults();
    so.kind = KLC_OPTIMIZER_SGD;
    klc_optimizer *sgd = make(&so, n);
    size_t ssize;
    void *sblob = save(sgd, &ssize);
    ck_assert_uint_eq(ssize, 64);
    expect_refused(opt, sblob, ssize, KLC_ERR_FORMAT, "SGD");
    so.momentum = 0.9;
    klc_optimizer *sgdm = make(&so, n);
    expect_refused(sgdm, sblob, ssize, KLC_ERR_FORMAT, "0 moment arrays");
    ck_status(klc_optimizer_load_state(opt, NULL, 5), KLC_ERR_INVALID_ARGUMENT, "NULL");
    /* The good blob still loads after all that. */
    ck_klc(klc_optimizer_load_state(opt, good, size));
    ck_assert_int_eq(klc_optimizer_steps(opt), 3);
    ck_klc(klc_optimizer_load_state(sgd, sblob, ssize));
    /* A buffer one byte short is refused and not written past. */
    unsigned char *small = malloc(size);
    memset(small, 0xAB, size);
    size_t need = 0;
    ck_status(klc_optimizer_save_state(opt, small, size - 1, &need), KLC_ERR_INVALID_ARGUMENT,
              "needs");
    ck_assert_uint_eq(need, size);
    ck_assert_int_eq(small[0], 0xAB);
    free(small);
    klc_optimizer_destroy(sgd);
    klc_optimizer_destroy(sgdm);
    klc_optimizer_destroy(opt);
    free(sblob);
    free(good);
    free(b);
    free(p);
    free(g);
}
END_TEST

START_TEST(moments_are_named_tensors) {
    const size_t n = 10;
    klc_optimizer_options o = defaults();
    klc_optimizer *adam = make(&o, n);
    float p[10] = {0}, g[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    ck_klc(klc_optimizer_step(adam, p, g, n, NULL));
    ck_assert_int_eq(klc_optimizer_num_tensors(adam), 2);
    const char *name;
    const float *data;
    size_t count;
    ck_klc(klc_optimizer_tensor(adam, 0, &name, &data, &count));
    ck_assert_str_eq(name, "exp_avg");
    ck_assert_uint_eq(count, n);
    ck_assert_float_eq_tol(data[3], 0.4f, 1e-6f); /* (1 - beta1) * g */
    ck_klc(klc_optimizer_tensor(adam, 1, &name, &data, NULL));
    ck_assert_str_eq(name, "exp_avg_sq");
    ck_assert_float_eq_tol(data[3], 0.016f, 1e-8f); /* (1 - beta2) * g^2 */
    /* The blob holds the same arrays, after the header. */
    size_t size;
    unsigned char *blob = save(adam, &size);
    ck_assert(memcmp(blob + 64 + n * sizeof(float), data, n * sizeof(float)) == 0);
    free(blob);
    ck_status(klc_optimizer_tensor(adam, 2, &name, &data, &count), KLC_ERR_INVALID_ARGUMENT,
              "index 2");
    o.kind = KLC_OPTIMIZER_SGD;
    klc_optimizer *sgd = make(&o, n);
    ck_assert_int_eq(klc_optimizer_num_tensors(sgd), 0);
    o.momentum = 0.5;
    klc_optimizer *sgdm = make(&o, n);
    ck_assert_int_eq(klc_optimizer_num_tensors(sgdm), 1);
    ck_klc(klc_optimizer_tensor(sgdm, 0, &name, NULL, NULL));
    ck_assert_str_eq(name, "momentum_buffer");
    klc_optimizer_destroy(adam);
    klc_optimizer_destroy(sgd);
    klc_optimizer_destroy(sgdm);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Options and arguments                                                                */
/* ------------------------------------------------------------------------------------ */

static void expect_bad_option(const klc_optimizer_options *o, const char *fragment) {
    klc_optimizer *opt = (klc_optimizer *)1;
    ck_status(klc_optimizer_create(o, 10, &opt), KLC_ERR_INVALID_ARGUMENT, fragment);
    ck_assert_ptr_null(opt);
    double lr;
    ck_status(klc_optimizer_lr_at(o, 0, &lr), KLC_ERR_INVALID_ARGUMENT, fragment);
}

START_TEST(invalid_options_name_the_field) {
    klc_optimizer_options o;
#define BAD(field, value, fragment)                                                                \
    do {                                                                                           \
        o = defaults();                                                                            \
        o.field = value;                                                                           \
        expect_bad_option(&o, fragment);                                                           \
    } while (0)
    BAD(version, 0, "version 0");
    BAD(version, 99, "version 99");
    BAD(kind, 0, "kind = 0");
    BAD(kind, 4, "kind = 4");
    BAD(lr, -0.1, "option lr = -0.1 must be >= 0");
    BAD(lr, NAN, "option lr = nan");
    BAD(lr, INFINITY, "option lr = inf");
    BAD(beta1, 1.0, "option beta1 = 1 must be in [0, 1)");
    BAD(beta1, -0.5, "option beta1 = -0.5");
    BAD(beta2, 1.5, "option beta2 = 1.5");
    BAD(beta2, NAN, "option beta2 = nan");
    BAD(eps, -1e-8, "option eps = -1e-08");
    BAD(weight_decay, -0.01, "option weight_decay = -0.01");
    BAD(momentum, -0.9, "option momentum = -0.9");
    BAD(dampening, 1.5, "option dampening = 1.5 must be in [0, 1]");
    BAD(nesterov, 2, "option nesterov = 2 must be 0 or 1");
    BAD(clip_norm, -1.0, "option clip_norm = -1");
    BAD(clip_value, NAN, "option clip_value = nan");
    BAD(schedule, 7, "option schedule = 7");
    BAD(warmup_steps, -1, "option warmup_steps = -1");
    BAD(total_steps, -1, "option total_steps = -1");
#undef BAD
    o = defaults();
    o.kind = KLC_OPTIMIZER_SGD;
    o.nesterov = 1;
    expect_bad_option(&o, "nesterov = 1 needs momentum > 0");
    o.momentum = 0.9;
    o.dampening = 0.1;
    expect_bad_option(&o, "dampening = 0.1");
    o = defaults();
    o.schedule = KLC_LR_COSINE;
    o.warmup_steps = 10;
    o.total_steps = 10;
    expect_bad_option(&o, "total_steps = 10 must be > warmup_steps = 10");
    o.total_steps = 100;
    o.min_lr = 0.5;
    expect_bad_option(&o, "min_lr = 0.5 must be in [0, lr = 0.001]");
    o = defaults();
    klc_optimizer *opt = NULL;
    ck_status(klc_optimizer_create(&o, 0, &opt), KLC_ERR_INVALID_ARGUMENT, "n_params = 0");
    ck_status(klc_optimizer_create(&o, SIZE_MAX / 4, &opt), KLC_ERR_INVALID_ARGUMENT, "n_params");
    ck_status(klc_optimizer_create(NULL, 5, &opt), KLC_ERR_INVALID_ARGUMENT, "NULL");
    ck_status(klc_optimizer_create(&o, 5, NULL), KLC_ERR_INVALID_ARGUMENT, "NULL");
    ck_status(klc_optimizer_options_init(&o, 2), KLC_ERR_INVALID_ARGUMENT, "version 2");
    /* Every default is valid, and get_options returns what was given. */
    o = defaults();
    o.lr = 0.25;
    opt = make(&o, 3);
    klc_optimizer_options back;
    ck_klc(klc_optimizer_get_options(opt, &back));
    ck_assert_double_eq(back.lr, 0.25);
    ck_assert_int_eq(back.kind, KLC_OPTIMIZER_ADAMW);
    ck_assert_double_eq(back.weight_decay, 0.0);
    klc_optimizer_destroy(opt);
    klc_optimizer_destroy(NULL);
    ck_assert_int_eq(klc_optimizer_steps(NULL), -1);
    ck_assert_uint_eq(klc_optimizer_state_size(NULL), 0);
}
END_TEST

START_TEST(bad_steps_change_nothing) {
    const size_t n = 1000;
    klc_optimizer_options o = defaults();
    o.clip_norm = 1.0;
    klc_optimizer *opt = make(&o, n);
    float *p = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float)),
          *p_saved = malloc(n * sizeof(float));
    run(opt, p, g, n, 0, 2);
    memcpy(p_saved, p, n * sizeof(float));
    size_t s0;
    void *before = save(opt, &s0);

    fill_normal(g, n, 3, 3, 1.0);
    g[617] = NAN;
    ck_status(klc_optimizer_step(opt, p, g, n, NULL), KLC_ERR_NUMERIC,
              "grads[617] = nan is not finite; nothing was updated");
    g[617] = -INFINITY;
    ck_status(klc_optimizer_step(opt, p, g, n, NULL), KLC_ERR_NUMERIC, "grads[617] = -inf");
    g[617] = 0.0f;
    ck_status(klc_optimizer_step(opt, p, g, n - 1, NULL), KLC_ERR_INVALID_ARGUMENT,
              "n = 999, but the optimizer was created for 1000");
    ck_status(klc_optimizer_step(opt, p, p + 10, n, NULL), KLC_ERR_INVALID_ARGUMENT, "overlap");
    ck_status(klc_optimizer_step(opt, NULL, g, n, NULL), KLC_ERR_INVALID_ARGUMENT, "NULL");
    klc_optimizer_report rep = {.version = 0};
    ck_status(klc_optimizer_step(opt, p, g, n, &rep), KLC_ERR_INVALID_ARGUMENT, "report version 0");
    ck_status(klc_optimizer_step_model(opt, NULL, NULL), KLC_ERR_INVALID_ARGUMENT, "NULL");

    size_t s1;
    void *after = save(opt, &s1);
    ck_assert(s0 == s1 && memcmp(before, after, s0) == 0);
    ck_assert(memcmp(p, p_saved, n * sizeof(float)) == 0);
    /* And it is still usable. */
    rep.version = KLC_OPTIMIZER_REPORT_VERSION;
    ck_klc(klc_optimizer_step(opt, p, g, n, &rep));
    ck_assert_int_eq(rep.step, 3);
    free(before);
    free(after);
    free(p);
    free(g);
    free(p_saved);
    klc_optimizer_destroy(opt);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Memory and models                                                                    */
/* ------------------------------------------------------------------------------------ */

typedef struct counting {
    size_t allocs, frees, live_bytes;
} counting;

static void *count_alloc(void *ud, size_t size, size_t alignment) {
    counting *c = ud;
    c->allocs++;
    c->live_bytes += size;
    return aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}

static void count_free(void *ud, void *ptr, size_t size) {
    counting *c = ud;
    c->frees++;
    c->live_bytes -= size;
    free(ptr);
}

START_TEST(allocator_is_used_and_step_allocates_nothing) {
    counting c = {0};
    klc_allocator a = {count_alloc, count_free, &c};
    const size_t n = 70000;
    klc_optimizer_options o = defaults();
    o.allocator = &a;
    klc_optimizer *opt = make(&o, n);
    ck_assert_uint_ge(c.live_bytes, 2 * n * sizeof(float));
    const size_t allocs = c.allocs;
    float *p = calloc(n, sizeof(float)), *g = malloc(n * sizeof(float));
    run(opt, p, g, n, 0, 3);
    size_t size;
    void *blob = save(opt, &size);
    ck_klc(klc_optimizer_load_state(opt, blob, size));
    ck_assert_uint_eq(c.allocs, allocs);
    klc_optimizer_destroy(opt);
    ck_assert_uint_eq(c.frees, c.allocs);
    ck_assert_uint_eq(c.live_bytes, 0);
    free(blob);
    free(p);
    free(g);
}
END_TEST

START_TEST(model_step_equals_array_step) {
    klc_model_options mo;
    klc_model_options_init(&mo, KLC_MODEL_OPTIONS_VERSION);
    mo.n_layer = 1;
    mo.n_embd = 8;
    mo.n_head = 2;
    mo.vocab_size = 13;
    mo.n_ctx = 8;
    klc_model *m = NULL;
    ck_klc(klc_model_create(&mo, &m));
    size_t n = 0;
    float *params = klc_model_params(m, &n);
    float *grads = klc_model_grads(m, NULL);
    fill_normal(grads, n, 4, 0, 1.0);
    float *copy = malloc(n * sizeof(float));
    memcpy(copy, params, n * sizeof(float));
    klc_optimizer_options o = defaults();
    o.weight_decay = 0.1;
    klc_optimizer *a = make(&o, n), *b = make(&o, n);
    klc_optimizer_report rep = {.version = 1};
    ck_klc(klc_optimizer_step_model(a, m, &rep));
    ck_klc(klc_optimizer_step(b, copy, grads, n, NULL));
    ck_assert(memcmp(copy, params, n * sizeof(float)) == 0);
    ck_assert_double_gt(rep.grad_norm, 0.0);
    klc_optimizer *wrong = make(&o, n + 1);
    ck_status(klc_optimizer_step_model(wrong, m, NULL), KLC_ERR_INVALID_ARGUMENT, "the model has");
    klc_optimizer_destroy(a);
    klc_optimizer_destroy(b);
    klc_optimizer_destroy(wrong);
    klc_model_destroy(m);
    free(copy);
}
END_TEST

int main(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, matches_pytorch);
    tcase_add_test(tc, first_adam_step_is_sign_descent);
    tcase_add_test(tc, schedules_at_chosen_steps);
    tcase_add_test(tc, step_reports_the_schedule);
    tcase_add_test(tc, save_and_restore_is_bit_exact);
    tcase_add_test(tc, results_do_not_depend_on_thread_count);
    tcase_add_test(tc, bad_state_blobs_are_refused);
    tcase_add_test(tc, moments_are_named_tensors);
    tcase_add_test(tc, invalid_options_name_the_field);
    tcase_add_test(tc, bad_steps_change_nothing);
    tcase_add_test(tc, allocator_is_used_and_step_allocates_nothing);
    tcase_add_test(tc, model_step_equals_array_step);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
