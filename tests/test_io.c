/* The Hugging Face checkpoint reader and writer: safetensors, config.json, atomic files,
 * klc_model_load and klc_model_save, and the hostile files they must refuse. Every bad file
 * is built here byte by byte. */
#include "io/atomic_file.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                              */
/* ------------------------------------------------------------------------------------ */

static char *path_in(const char *dir, const char *file) {
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, file);
    return p;
}

/* A safetensors file from a header length field, header text and data bytes. */
static void write_st_raw(const char *path, uint64_t len_field, const char *header, const void *data,
                         size_t data_len) {
    size_t hl = strlen(header);
    unsigned char *buf = malloc(8 + hl + data_len + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len_field >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (data_len) memcpy(buf + 8 + hl, data, data_len);
    ck_assert_int_eq(tu_write_file(path, buf, 8 + hl + data_len), 0);
    free(buf);
}

static void write_st(const char *path, const char *header, const void *data, size_t data_len) {
    write_st_raw(path, strlen(header), header, data, data_len);
}

static const unsigned char zeros[64];

/* Opens a hand-built safetensors file and expects it refused. */
static void expect_st_error(const char *header, size_t data_len, int status, const char *fragment) {
    char *dir = tu_make_temp_dir("st");
    char *path = path_in(dir, "bad.safetensors");
    write_st(path, header, zeros, data_len);
    klc_st_file *f = (klc_st_file *)0x1;
    klc_clear_error();
    int s = klc_st_open(path, NULL, &f);
    ck_assert_msg(s == status, "header %s -> %s (expected %s): %s", header, klc_status_str(s),
                  klc_status_str(status), klc_last_error());
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(klc_last_error(), fragment), "message '%s' lacks '%s'", klc_last_error(),
                  fragment);
    ck_assert_msg(strstr(klc_last_error(), "bad.safetensors"), "message '%s' lacks the file",
                  klc_last_error());
    free(path);
    tu_remove_tree(dir);
    free(dir);
}

/* A small model for save/load round trips. */
static klc_model *small_model(uint64_t seed, int32_t n_layer, int32_t n_embd) {
    klc_model_options o;
    ck_klc(klc_model_options_init(&o, KLC_MODEL_OPTIONS_VERSION));
    o.n_layer = n_layer;
    o.n_head = 2;
    o.n_embd = n_embd;
    o.n_ctx = 8;
    o.vocab_size = 11;
    o.layer_norm_eps = 3e-4f;
    o.embd_pdrop = 0.0f;
    o.attn_pdrop = 0.25f;
    o.resid_pdrop = 0.125f;
    o.init_std = 0.5f;
    o.init_seed = seed;
    klc_model *m;
    ck_klc(klc_model_create(&o, &m));
    /* Biases and gains too, so that a swapped tensor would show. */
    size_t n;
    float *p = klc_model_params(m, &n);
    klc_rng r;
    klc_rng_init(&r, seed, KLC_STREAM_USER);
    for (size_t i = 0; i < n; i++)
        if (p[i] == 0.0f || p[i] == 1.0f) p[i] += (float)klc_rng_normal(&r, i, 0);
    return m;
}

static void expect_same_model(const klc_model *a, const klc_model *b) {
    klc_model_options oa, ob;
    ck_klc(klc_model_get_options(a, &oa));
    ck_klc(klc_model_get_options(b, &ob));
    ck_assert_int_eq(oa.n_layer, ob.n_layer);
    ck_assert_int_eq(oa.n_head, ob.n_head);
    ck_assert_int_eq(oa.n_embd, ob.n_embd);
    ck_assert_int_eq(oa.n_ctx, ob.n_ctx);
    ck_assert_int_eq(oa.vocab_size, ob.vocab_size);
    ck_assert(oa.layer_norm_eps == ob.layer_norm_eps);
    ck_assert(oa.embd_pdrop == ob.embd_pdrop);
    ck_assert(oa.attn_pdrop == ob.attn_pdrop);
    ck_assert(oa.resid_pdrop == ob.resid_pdrop);
    ck_assert(oa.init_std == ob.init_std);
    size_t na, nb;
    const float *pa = klc_model_params((klc_model *)a, &na);
    const float *pb = klc_model_params((klc_model *)b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_int_eq(memcmp(pa, pb, na * sizeof(float)), 0);
}

/* Only config.json and model.safetensors: no temporary file left behind. */
static void expect_only_checkpoint_files(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        ck_assert_msg(!strcmp(e->d_name, "config.json") || !strcmp(e->d_name, "model.safetensors"),
                      "unexpected file '%s' in %s", e->d_name, dir);
        n++;
    }
    closedir(d);
    ck_assert_int_eq(n, 2);
}

/* ------------------------------------------------------------------------------------ */
/* A hand-serialised GPT-2 checkpoint, to be mutated into hostile ones                  */
/* ------------------------------------------------------------------------------------ */

typedef struct fake_tensor {
    char name[96];
    char dtype[8];
    int ndim;
    int64_t shape[4];
    const void *data; /* NULL: zeros */
    size_t bytes;
} fake_tensor;

typedef struct fake_ckpt {
    fake_tensor t[64];
    int n;
} fake_ckpt;

/* The tensors of m in Hugging Face names with `prefix`, F32. */
static void fake_from_model(fake_ckpt *c, klc_model *m, const char *prefix) {
    memset(c, 0, sizeof *c);
    const float *p = klc_model_params(m, NULL);
    for (int32_t i = 0; i < klc_model_num_tensors(m); i++) {
        klc_tensor_info info;
        ck_klc(klc_model_tensor_info(m, i, &info));
        fake_tensor *t = &c->t[c->n++];
        snprintf(t->name, sizeof t->name, "%s%s", prefix, info.name);
        strcpy(t->dtype, "F32");
        t->ndim = info.ndim;
        for (int d = 0; d < info.ndim; d++) t->shape[d] = info.shape[d];
        t->data = p + info.offset;
        t->bytes = (size_t)info.numel * 4;
    }
}

static fake_tensor *fake_find(fake_ckpt *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->t[i].name, name)) return &c->t[i];
    ck_abort_msg("no tensor %s", name);
    return NULL;
}

static void fake_remove(fake_ckpt *c, const char *name) {
    fake_tensor *t = fake_find(c, name);
    *t = c->t[--c->n];
}

static fake_tensor *fake_add(fake_ckpt *c, const char *name, const char *dtype, int ndim,
                             const int64_t *shape, size_t elem_size) {
    fake_tensor *t = &c->t[c->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->ndim = ndim;
    t->bytes = elem_size;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->bytes *= (size_t)shape[d];
    }
    return t;
}

/* Serialises in list order (not sorted: the reader must not care). */
static void fake_write(const fake_ckpt *c, const char *path) {
    size_t cap = 65536, len = 0, off = 0, data_len = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < c->n; i++) {
        const fake_tensor *t = &c->t[i];
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                t->name, t->dtype);
        for (int d = 0; d < t->ndim; d++)
            len += (size_t)snprintf(h + len, cap - len, "%s%lld", d ? "," : "",
                                    (long long)t->shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off,
                                off + t->bytes);
        off += t->bytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    ck_assert_uint_lt(len, cap);
    data_len = off;
    unsigned char *data = calloc(1, data_len + 1);
    off = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->t[i].data) memcpy(data + off, c->t[i].data, c->t[i].bytes);
        off += c->t[i].bytes;
    }
    write_st(path, h, data, data_len);
    free(h);
    free(data);
}

/* A directory with m's config (saved by klc) and the fake safetensors. */
static char *fake_dir(klc_model *m, const fake_ckpt *c) {
    char *dir = tu_make_temp_dir("fake");
    ck_klc(klc_model_save(m, dir));
    char *p = path_in(dir, "model.safetensors");
    fake_write(c, p);
    free(p);
    return dir;
}

static void expect_load_error(const char *dir, int status, const char *fragment) {
    klc_model *m = (klc_model *)0x1;
    klc_clear_error();
    int s = klc_model_load(dir, NULL, &m);
    ck_assert_msg(s == status, "load -> %s (expected %s): %s", klc_status_str(s),
                  klc_status_str(status), klc_last_error());
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(klc_last_error(), fragment), "message '%s' lacks '%s'", klc_last_error(),
                  fragment);
}

static void expect_fake_error(klc_model *m, const fake_ckpt *c, int status, const char *fragment) {
    char *dir = fake_dir(m, c);
    expect_load_error(dir, status, fragment);
    ck_assert_msg(strstr(klc_last_error(), "model.safetensors"), "message '%s' lacks the file",
                  klc_last_error());
    tu_remove_tree(dir);
    free(dir);
}

/* ------------------------------------------------------------------------------------ */
/* Conversions                                                                          */
/* ------------------------------------------------------------------------------------ */

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

START_TEST(f16_conversion_hand_values) {
    static const struct {
        uint16_t h;
        double v;
    } cases[] = {
        {0x3C00, 1.0},
        {0xC000, -2.0},
        {0x3555, 0.333251953125},
        {0x7BFF, 65504.0},
        {0x0400, 6.103515625e-05},        /* smallest normal, 2^-14 */
        {0x03FF, 6.097555160522461e-05},  /* largest subnormal, 1023 * 2^-24 */
        {0x0001, 5.960464477539063e-08},  /* smallest subnormal, 2^-24 */
        {0x8001, -5.960464477539063e-08}, /* negative subnormal */
        {0x0000, 0.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        float f = klc_f16_to_f32(cases[i].h);
        ck_assert_msg((double)f == cases[i].v, "f16 %04x -> %.17g, expected %.17g", cases[i].h,
                      (double)f, cases[i].v);
    }
    ck_assert_uint_eq(bits_of(klc_f16_to_f32(0x0000)), 0x00000000u);
    ck_assert_uint_eq(bits_of(klc_f16_to_f32(0x8000)), 0x80000000u); /* -0 */
    ck_assert_uint_eq(bits_of(klc_f16_to_f32(0x7C00)), 0x7f800000u); /* +inf */
    ck_assert_uint_eq(bits_of(klc_f16_to_f32(0xFC00)), 0xff800000u); /* -inf */
    ck_assert_uint_eq(bits_of(klc_f16_to_f32(0x7E00)), 0x7fc00000u); /* quiet NaN */
    ck_assert(isnan(klc_f16_to_f32(0x7C01)));                        /* signalling NaN */
    ck_assert(isnan(klc_f16_to_f32(0xFE00)));
    ck_assert(signbit(klc_f16_to_f32(0xFE00)));
    /* Every finite half converts exactly: compare with ldexp on the fields. */
    for (uint32_t h = 0; h < 0x10000; h++) {
        uint32_t e = (h >> 10) & 0x1f, mant = h & 0x3ff;
        if (e == 0x1f) continue;
        double v = e ? ldexp(1024 + mant, (int)e - 25) : ldexp(mant, -24);
        if (h & 0x8000) v = -v;
        ck_assert_msg((double)klc_f16_to_f32((uint16_t)h) == v, "f16 %04x", h);
    }
}
END_TEST

START_TEST(bf16_conversion_hand_values) {
    ck_assert(klc_bf16_to_f32(0x3F80) == 1.0f);
    ck_assert(klc_bf16_to_f32(0xC040) == -3.0f);
    ck_assert((double)klc_bf16_to_f32(0x3EAB) == 0.333984375);
    ck_assert((double)klc_bf16_to_f32(0x7F7F) == 3.3895313892515355e+38);
    ck_assert((double)klc_bf16_to_f32(0x0001) == ldexp(1.0, -133)); /* subnormal */
    ck_assert((double)klc_bf16_to_f32(0x0080) == ldexp(1.0, -126)); /* smallest normal */
    ck_assert_uint_eq(bits_of(klc_bf16_to_f32(0x8000)), 0x80000000u);
    ck_assert_uint_eq(bits_of(klc_bf16_to_f32(0x7F80)), 0x7f800000u);
    ck_assert_uint_eq(bits_of(klc_bf16_to_f32(0xFF80)), 0xff800000u);
    ck_assert(isnan(klc_bf16_to_f32(0x7FC0)));
    ck_assert(isnan(klc_bf16_to_f32(0x7F81)));
}
END_TEST

/* The same values through a file: F16, BF16 and F32 tensors, a scalar, an empty tensor,
 * metadata. */
START_TEST(safetensors_reads_f16_bf16_f32) {
    static const uint16_t h[6] = {0x3C00, 0x8000, 0x0001, 0x7C00, 0xFC00, 0x7E00};
    static const uint16_t b[4] = {0x3F80, 0xC040, 0x0001, 0x7FC0};
    static const float f[2] = {1.5f, -0.25f};
    unsigned char data[12 + 8 + 8 + 4];
    memcpy(data, h, 12);
    memcpy(data + 12, b, 8);
    memcpy(data + 20, f, 8);
    memcpy(data + 28, &f[0], 4);
    const char *header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                         "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[12,20]},"
                         "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[20,20]},"
                         "\"f\":{\"shape\":[2],\"data_offsets\":[20,28],\"dtype\":\"F32\"},"
                         "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[28,32]},"
                         "\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\"}}   ";
    char *dir = tu_make_temp_dir("st");
    char *path = path_in(dir, "ok.safetensors");
    write_st(path, header, data, sizeof data);
    klc_st_file *sf;
    ck_klc(klc_st_open(path, NULL, &sf));
    ck_assert_int_eq(klc_st_count(sf), 5);
    ck_assert_str_eq(klc_st_metadata(sf, "format"), "pt");
    ck_assert_str_eq(klc_st_metadata(sf, "note"), "x");
    ck_assert_ptr_null(klc_st_metadata(sf, "other"));
    float out[6];
    int32_t ih = klc_st_find(sf, "h");
    ck_assert_int_ge(ih, 0);
    const klc_st_tensor *th = klc_st_tensor_at(sf, ih);
    ck_assert_int_eq(th->dtype, KLC_ST_F16);
    ck_assert_int_eq(th->ndim, 2);
    ck_assert_int_eq(th->shape[0], 2);
    ck_assert_int_eq(th->shape[1], 3);
    ck_klc(klc_st_read_f32(sf, ih, 0, 6, out));
    ck_assert(out[0] == 1.0f);
    ck_assert_uint_eq(bits_of(out[1]), 0x80000000u);
    ck_assert((double)out[2] == ldexp(1.0, -24));
    ck_assert(isinf(out[3]) && out[3] > 0);
    ck_assert(isinf(out[4]) && out[4] < 0);
    ck_assert(isnan(out[5]));
    ck_klc(klc_st_read_f32(sf, ih, 2, 2, out)); /* a sub-range */
    ck_assert((double)out[0] == ldexp(1.0, -24));
    ck_assert(isinf(out[1]));
    int32_t ib = klc_st_find(sf, "b");
    ck_klc(klc_st_read_f32(sf, ib, 0, 4, out));
    ck_assert(out[0] == 1.0f && out[1] == -3.0f && (double)out[2] == ldexp(1.0, -133));
    ck_assert(isnan(out[3]));
    ck_klc(klc_st_read_f32(sf, klc_st_find(sf, "f"), 0, 2, out));
    ck_assert(out[0] == 1.5f && out[1] == -0.25f);
    int32_t is = klc_st_find(sf, "s");
    ck_assert_int_eq(klc_st_tensor_at(sf, is)->ndim, 0);
    ck_assert_uint_eq(klc_st_tensor_at(sf, is)->numel, 1);
    ck_klc(klc_st_read_f32(sf, is, 0, 1, out));
    ck_assert(out[0] == 1.5f);
    ck_assert_uint_eq(klc_st_tensor_at(sf, klc_st_find(sf, "empty"))->numel, 0);
    ck_assert_int_eq(klc_st_find(sf, "nope"), -1);
    ck_status(klc_st_read_f32(sf, ih, 5, 2, out), KLC_ERR_INVALID_ARGUMENT, "out of range");
    klc_st_close(sf);
    free(path);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(safetensors_other_dtypes_are_unsupported_as_float) {
    const char *header = "{\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}";
    char *dir = tu_make_temp_dir("st");
    char *path = path_in(dir, "i.safetensors");
    write_st(path, header, zeros, 8);
    klc_st_file *sf;
    ck_klc(klc_st_open(path, NULL, &sf));
    float x;
    ck_status(klc_st_read_f32(sf, 0, 0, 1, &x), KLC_ERR_UNSUPPORTED, "dtype I64");
    klc_st_close(sf);
    free(path);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Hostile safetensors files                                                            */
/* ------------------------------------------------------------------------------------ */

#define A8 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

START_TEST(st_missing_and_empty_files) {
    char *dir = tu_make_temp_dir("st");
    char *path = path_in(dir, "none.safetensors");
    klc_st_file *f;
    ck_status(klc_st_open(path, NULL, &f), KLC_ERR_IO, "none.safetensors: cannot open");
    ck_assert_int_eq(tu_write_file(path, "", 0), 0);
    ck_status(klc_st_open(path, NULL, &f), KLC_ERR_FORMAT, "too short");
    ck_assert_int_eq(tu_write_file(path, "\x02\0\0", 3), 0);
    ck_status(klc_st_open(path, NULL, &f), KLC_ERR_FORMAT, "too short");
    ck_status(klc_st_open(dir, NULL, &f), KLC_ERR_IO, "not a readable regular file");
    free(path);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(st_header_length_out_of_range) {
    char *dir = tu_make_temp_dir("st");
    char *path = path_in(dir, "len.safetensors");
    klc_st_file *f;
    write_st_raw(path, 1000, "{}", NULL, 0);
    ck_status(klc_st_open(path, NULL, &f), KLC_ERR_FORMAT,
              "header length 1000 is larger than the 2 bytes");
    write_st_raw(path, (uint64_t)200 << 20, "{}", NULL, 0);
    ck_status(klc_st_open(path, NULL, &f), KLC_ERR_FORMAT, "exceeds the limit");
    write_st_raw(path, UINT64_MAX, "{}", NULL, 0);
    ck_status(klc_st_open(path, NULL, &f), KLC_ERR_FORMAT, "exceeds the limit");
    /* Header length 0: nothing to parse. */
    write_st_raw(path, 0, "", NULL, 0);
    ck_status(klc_st_open(path, NULL, &f), KLC_ERR_FORMAT, "not valid JSON");
    free(path);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(st_bad_json) {
    expect_st_error("{\"a\": {\"dtype\": ", 0, KLC_ERR_FORMAT, "not valid JSON");
    expect_st_error("not json at all", 0, KLC_ERR_FORMAT, "not valid JSON");
    expect_st_error("{} trailing", 0, KLC_ERR_FORMAT, "not valid JSON");
    expect_st_error("[1, 2, 3]", 0, KLC_ERR_FORMAT, "header is not a JSON object");
    expect_st_error("\"text\"", 0, KLC_ERR_FORMAT, "not");
    expect_st_error("{" A8 "," A8 "}", 8, KLC_ERR_FORMAT, "duplicate");
    expect_st_error("{\"a\": 3}", 0, KLC_ERR_FORMAT, "tensor 'a': entry is not a JSON object");
    expect_st_error("{\"__metadata__\": [1]}", 0, KLC_ERR_FORMAT, "__metadata__ is not");
    expect_st_error("{\"__metadata__\": {\"k\": 1}}", 0, KLC_ERR_FORMAT,
                    "value of 'k' is not a string");
    /* Invalid UTF-8 in a name. */
    expect_st_error("{\"\xff\xfe\": {}}", 0, KLC_ERR_FORMAT, "not valid JSON");
}
END_TEST

START_TEST(st_bad_entries) {
    expect_st_error("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, KLC_ERR_FORMAT,
                    "tensor 'a': missing 'dtype'");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, KLC_ERR_FORMAT,
                    "tensor 'a': missing 'shape'");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, KLC_ERR_FORMAT,
                    "tensor 'a': missing 'data_offsets'");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8,
                    KLC_ERR_FORMAT, "unexpected key 'x'");
    expect_st_error("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                    KLC_ERR_FORMAT, "tensor 'a': unknown dtype 'F33'");
    expect_st_error("{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, KLC_ERR_FORMAT,
                    "'dtype' is not a string");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
                    KLC_ERR_FORMAT, "'shape' is not an array");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
                    KLC_ERR_FORMAT, "shape[0] = -2 is negative");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1, 2.0],\"data_offsets\":[0,8]}}", 8,
                    KLC_ERR_FORMAT, "shape[1] is not an integer");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
                    KLC_ERR_FORMAT, "shape[0] is not an integer");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
                    "\"data_offsets\":[0,8]}}",
                    8, KLC_ERR_FORMAT, "element count overflows");
    expect_st_error("{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,536870912],"
                    "\"data_offsets\":[0,8]}}",
                    8, KLC_ERR_FORMAT, "byte count overflows");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                    "\"data_offsets\":[0,4]}}",
                    4, KLC_ERR_UNSUPPORTED, "9 dimensions");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
                    KLC_ERR_FORMAT, "not an array of two integers");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 8,
                    KLC_ERR_FORMAT, "not an array of two integers");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
                    KLC_ERR_FORMAT, "negative");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
                    KLC_ERR_FORMAT, "begin after they end");
}
END_TEST

START_TEST(st_bad_offsets) {
    /* Truncated data section: the tensor needs 8 bytes, the file holds 4. */
    expect_st_error("{" A8 "}", 4, KLC_ERR_FORMAT,
                    "tensor 'a': data_offsets [0, 8] out of bounds (data section is 4 bytes)");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,"
                    "18446744073709551615]}}",
                    8, KLC_ERR_FORMAT, "not valid JSON"); /* beyond int64: jansson refuses */
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[9223372036854775800,"
                    "9223372036854775807]}}",
                    8, KLC_ERR_FORMAT, "out of bounds");
    /* Wrong byte size for the shape. */
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                    KLC_ERR_FORMAT, "hold 8 bytes but shape and dtype F32 need 12");
    expect_st_error("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                    KLC_ERR_FORMAT, "need 4");
    /* Overlap, hole, trailing bytes, a hole at the start. */
    expect_st_error("{" A8 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
                    KLC_ERR_FORMAT, "overlap");
    expect_st_error("{" A8 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                    KLC_ERR_FORMAT, "overlap");
    expect_st_error("{" A8 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20,
                    KLC_ERR_FORMAT,
                    "tensor 'b': data_offsets [12, 20] leave a hole: bytes [8, 12)");
    expect_st_error("{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
                    KLC_ERR_FORMAT, "hole");
    expect_st_error("{" A8 "}", 12, KLC_ERR_FORMAT,
                    "the tensors cover 8 bytes but the data section is 12 bytes");
    expect_st_error("{}", 4, KLC_ERR_FORMAT, "cover 0 bytes");
}
END_TEST

START_TEST(st_valid_edge_cases) {
    /* An empty file (no tensors), zero-size tensors anywhere, shape dims of 0. */
    char *dir = tu_make_temp_dir("st");
    char *path = path_in(dir, "edge.safetensors");
    klc_st_file *f;
    write_st(path, "{}", NULL, 0);
    ck_klc(klc_st_open(path, NULL, &f));
    ck_assert_int_eq(klc_st_count(f), 0);
    klc_st_close(f);
    write_st(path,
             "{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}," A8
             ",\"y\":{\"dtype\":\"BOOL\",\"shape\":[3,0],\"data_offsets\":[0,0]}}",
             zeros, 8);
    ck_klc(klc_st_open(path, NULL, &f));
    ck_assert_int_eq(klc_st_count(f), 3);
    klc_st_close(f);
    free(path);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

/* The writer's output: sorted names, 8-byte padding, metadata, escaping, and that the
 * reader gives the same bits back. */
START_TEST(st_writer_round_trip) {
    char *dir = tu_make_temp_dir("st");
    char *path = path_in(dir, "w.safetensors");
    float a[6] = {1, 2, 3, 4, 5, NAN}, b[1] = {-0.0f}, c[2] = {INFINITY, 1e-45f};
    klc_st_entry e[3] = {
        {"zeta", 2, {2, 3}, a},
        {"alpha \"quoted\\\"\n", 0, {0}, b},
        {"mid", 1, {2}, c},
    };
    static const char *const meta[] = {"format", "pt", "k\"", "v\\", NULL};
    klc_atomic_file af;
    ck_klc(klc_atomic_open(&af, path, NULL));
    ck_klc(klc_st_write(&af, e, 3, meta, NULL));
    ck_klc(klc_atomic_commit(&af));
    klc_atomic_abort(&af);
    size_t size;
    char *raw = tu_read_file(path, &size);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | (unsigned char)raw[i];
    ck_assert_uint_eq(hl % 8, 0);
    ck_assert_uint_eq(size, 8 + hl + 4 * 9);
    ck_assert(raw[8] == '{' && raw[8 + hl - 1] == ' ');
    /* Data section in name order: alpha (b), mid (c), zeta (a). */
    ck_assert_int_eq(memcmp(raw + 8 + hl, b, 4), 0);
    ck_assert_int_eq(memcmp(raw + 8 + hl + 4, c, 8), 0);
    ck_assert_int_eq(memcmp(raw + 8 + hl + 12, a, 24), 0);
    free(raw);
    klc_st_file *f;
    ck_klc(klc_st_open(path, NULL, &f));
    ck_assert_str_eq(klc_st_metadata(f, "format"), "pt");
    ck_assert_str_eq(klc_st_metadata(f, "k\""), "v\\");
    for (int i = 0; i < 3; i++) {
        int32_t k = klc_st_find(f, e[i].name);
        ck_assert_int_ge(k, 0);
        const klc_st_tensor *t = klc_st_tensor_at(f, k);
        ck_assert_int_eq(t->ndim, e[i].ndim);
        float buf[6];
        ck_klc(klc_st_read_f32(f, k, 0, t->numel, buf));
        ck_assert_int_eq(memcmp(buf, e[i].data, t->numel * 4), 0);
    }
    klc_st_close(f);
    /* Duplicate names are refused and nothing is renamed into place. */
    klc_st_entry dup[2] = {{"x", 1, {1}, a}, {"x", 1, {1}, b}};
    char *path2 = path_in(dir, "dup.safetensors");
    ck_klc(klc_atomic_open(&af, path2, NULL));
    ck_status(klc_st_write(&af, dup, 2, NULL, NULL), KLC_ERR_INVALID_ARGUMENT, "repeated");
    klc_atomic_abort(&af);
    ck_assert_int_ne(access(path2, F_OK), 0);
    free(path2);
    free(path);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Atomic files                                                                         */
/* ------------------------------------------------------------------------------------ */

START_TEST(atomic_file_replaces_or_leaves_intact) {
    char *dir = tu_make_temp_dir("atomic");
    char *path = path_in(dir, "f.txt");
    ck_klc(klc_atomic_write_file(path, "old", 3, NULL));
    klc_atomic_file af;
    ck_klc(klc_atomic_open(&af, path, NULL));
    ck_klc(klc_atomic_write(&af, "new contents", 12));
    /* Not yet committed: the old content is what readers see. */
    size_t n;
    char *s = tu_read_file(path, &n);
    ck_assert_str_eq(s, "old");
    free(s);
    klc_atomic_abort(&af);
    s = tu_read_file(path, &n);
    ck_assert_str_eq(s, "old");
    free(s);
    ck_klc(klc_atomic_write_file(path, "new", 3, NULL));
    s = tu_read_file(path, &n);
    ck_assert_str_eq(s, "new");
    free(s);
    /* Only f.txt in the directory: no temporary left by the abort or the commits. */
    DIR *d = opendir(dir);
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            ck_assert_str_eq(e->d_name, "f.txt");
            count++;
        }
    closedir(d);
    ck_assert_int_eq(count, 1);
    /* A directory that does not exist: nothing can be created. */
    char *missing = path_in(dir, "no/such/f.txt");
    ck_status(klc_atomic_write_file(missing, "x", 1, NULL), KLC_ERR_IO, "cannot create temporary");
    free(missing);
    /* Rename over a directory fails, and the temporary is removed. */
    char *sub = path_in(dir, "sub");
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    char *inner = path_in(sub, "keep");
    ck_assert_int_eq(tu_write_file(inner, "k", 1), 0);
    ck_status(klc_atomic_write_file(sub, "x", 1, NULL), KLC_ERR_IO, "cannot rename");
    ck_assert_int_eq(access(inner, F_OK), 0);
    free(inner);
    free(sub);
    free(path);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* config.json                                                                          */
/* ------------------------------------------------------------------------------------ */

static const char *good_config =
    "{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, "
    "\"n_positions\": 16, \"vocab_size\": 20, \"layer_norm_epsilon\": 1e-05, "
    "\"activation_function\": \"gelu_new\", \"resid_pdrop\": 0.0, \"embd_pdrop\": 0, "
    "\"attn_pdrop\": 0.2, \"architectures\": [\"GPT2LMHeadModel\"], \"n_inner\": null, "
    "\"summary_type\": \"cls_index\", \"scale_attn_weights\": true, \"use_cache\": true}";

static int read_config_text(const char *text, klc_model_options *o) {
    char *dir = tu_make_temp_dir("cfg");
    char *path = path_in(dir, "config.json");
    ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
    klc_clear_error();
    int s = klc_hf_config_read(path, NULL, o);
    free(path);
    tu_remove_tree(dir);
    free(dir);
    return s;
}

/* good_config with `key` replaced by `replacement` ("" removes it). */
static int read_config_with(const char *key, const char *replacement, klc_model_options *o) {
    char text[2048];
    const char *k = strstr(good_config, key);
    ck_assert_ptr_nonnull(k);
    const char *end = strpbrk(strchr(k, ':'), ",}");
    if (*end == ',') end++;
    snprintf(text, sizeof text, "%.*s%s%s", (int)(k - good_config), good_config, replacement, end);
    /* Removing the last key may leave "..., }": drop that comma. */
    char *bad = strstr(text, ", }");
    if (bad) memmove(bad, bad + 1, strlen(bad));
    return read_config_text(text, o);
}

#define ck_config(key, repl, status, fragment)                                                     \
    do {                                                                                           \
        klc_model_options o_;                                                                      \
        int s_ = read_config_with(key, repl, &o_);                                                 \
        ck_assert_msg(s_ == (status), "%s -> %s: %s", repl, klc_status_str(s_), klc_last_error()); \
        if ((status) != KLC_OK) {                                                                  \
            ck_assert_msg(strstr(klc_last_error(), fragment), "'%s' lacks '%s'", klc_last_error(), \
                          fragment);                                                               \
            ck_assert_msg(strstr(klc_last_error(), "config.json"), "'%s' lacks the file",          \
                          klc_last_error());                                                       \
        }                                                                                          \
    } while (0)

START_TEST(config_reads_gpt2_keys) {
    klc_model_options o;
    ck_klc(read_config_text(good_config, &o));
    ck_assert_int_eq(o.n_layer, 2);
    ck_assert_int_eq(o.n_head, 2);
    ck_assert_int_eq(o.n_embd, 8);
    ck_assert_int_eq(o.n_ctx, 16);
    ck_assert_int_eq(o.vocab_size, 20);
    ck_assert(o.layer_norm_eps == 1e-5f);
    ck_assert(o.resid_pdrop == 0.0f && o.embd_pdrop == 0.0f && o.attn_pdrop == 0.2f);
    ck_assert(o.init_std == 0.02f); /* Hugging Face's default initializer_range */
    /* Older files: n_ctx instead of n_positions; n_positions wins when both are there. */
    ck_config("\"n_positions\": 16, ", "\"n_ctx\": 12, ", KLC_OK, "");
    ck_klc(read_config_with("\"n_positions\": 16, ", "\"n_ctx\": 12, ", &o));
    ck_assert_int_eq(o.n_ctx, 12);
    ck_klc(read_config_with("\"n_positions\": 16, ", "\"n_positions\": 16, \"n_ctx\": 12, ", &o));
    ck_assert_int_eq(o.n_ctx, 16);
    /* Defaults for optional keys. */
    ck_klc(read_config_text("{\"n_layer\": 1, \"n_head\": 1, \"n_embd\": 4, \"n_ctx\": 4, "
                            "\"vocab_size\": 3}",
                            &o));
    ck_assert(o.layer_norm_eps == 1e-5f && o.attn_pdrop == 0.1f && o.embd_pdrop == 0.1f &&
              o.resid_pdrop == 0.1f);
    /* The tanh-GELU synonyms Hugging Face computes identically. */
    ck_config("\"activation_function\": \"gelu_new\", ",
              "\"activation_function\": \"gelu_pytorch_tanh\", ", KLC_OK, "");
    ck_config("\"activation_function\": \"gelu_new\", ", "\"activation_function\": \"gelu_fast\", ",
              KLC_OK, "");
    ck_config("\"activation_function\": \"gelu_new\", ",
              "\"activation_function\": \"gelu_accurate\", ", KLC_OK, "");
    ck_config("\"n_inner\": null, ", "\"n_inner\": 32, ", KLC_OK, "");
    ck_config("\"scale_attn_weights\": true, ",
              "\"scale_attn_weights\": true, \"scale_attn_by_inverse_layer_idx\": false, "
              "\"reorder_and_upcast_attn\": false, \"tie_word_embeddings\": true, ",
              KLC_OK, "");
}
END_TEST

START_TEST(config_refuses_bad_and_unsupported) {
    klc_model_options o;
    ck_assert_int_eq(read_config_text("{\"n_layer\": 2,", &o), KLC_ERR_FORMAT);
    ck_assert_msg(strstr(klc_last_error(), "config.json:1:"), "%s", klc_last_error());
    ck_assert_int_eq(read_config_text("", &o), KLC_ERR_FORMAT);
    ck_assert_int_eq(read_config_text("[]", &o), KLC_ERR_FORMAT);
    ck_assert_msg(strstr(klc_last_error(), "not a JSON object"), "%s", klc_last_error());
    ck_assert_int_eq(read_config_text("{\"n_layer\": 1, \"n_layer\": 2}", &o), KLC_ERR_FORMAT);
    ck_assert_msg(strstr(klc_last_error(), "duplicate"), "%s", klc_last_error());
    ck_config("\"n_layer\": 2, ", "", KLC_ERR_FORMAT, "missing key 'n_layer'");
    ck_config("\"n_head\": 2, ", "", KLC_ERR_FORMAT, "missing key 'n_head'");
    ck_config("\"n_embd\": 8, ", "", KLC_ERR_FORMAT, "missing key 'n_embd'");
    ck_config("\"vocab_size\": 20, ", "", KLC_ERR_FORMAT, "missing key 'vocab_size'");
    ck_config("\"n_positions\": 16, ", "", KLC_ERR_FORMAT, "missing key 'n_positions'");
    ck_config("\"n_embd\": 8, ", "\"n_embd\": \"8\", ", KLC_ERR_FORMAT,
              "key 'n_embd' must be an integer, not a string");
    ck_config("\"n_embd\": 8, ", "\"n_embd\": 8.0, ", KLC_ERR_FORMAT,
              "'n_embd' must be an integer");
    ck_config("\"n_layer\": 2, ", "\"n_layer\": 0, ", KLC_ERR_FORMAT,
              "'n_layer' = 0 is out of range");
    ck_config("\"n_layer\": 2, ", "\"n_layer\": -3, ", KLC_ERR_FORMAT, "out of range");
    ck_config("\"n_layer\": 2, ", "\"n_layer\": 99999999999999, ", KLC_ERR_FORMAT, "out of range");
    ck_config("\"n_embd\": 8, ", "\"n_embd\": 9, ", KLC_ERR_FORMAT, "not divisible");
    ck_config("\"layer_norm_epsilon\": 1e-05, ", "\"layer_norm_epsilon\": \"small\", ",
              KLC_ERR_FORMAT, "'layer_norm_epsilon' must be a number");
    ck_config("\"layer_norm_epsilon\": 1e-05, ", "\"layer_norm_epsilon\": 0, ", KLC_ERR_FORMAT,
              "'layer_norm_epsilon' = 0 is out of range");
    ck_config("\"attn_pdrop\": 0.2, ", "\"attn_pdrop\": 1.5, ", KLC_ERR_FORMAT, "'attn_pdrop'");
    ck_config("\"resid_pdrop\": 0.0, ", "\"resid_pdrop\": -0.1, ", KLC_ERR_FORMAT, "'resid_pdrop'");
    ck_config("\"activation_function\": \"gelu_new\", ", "\"activation_function\": \"relu\", ",
              KLC_ERR_UNSUPPORTED, "'activation_function' = 'relu' is not supported");
    ck_config("\"activation_function\": \"gelu_new\", ", "\"activation_function\": \"gelu\", ",
              KLC_ERR_UNSUPPORTED, "'activation_function' = 'gelu'");
    ck_config("\"activation_function\": \"gelu_new\", ", "\"activation_function\": 3, ",
              KLC_ERR_FORMAT, "'activation_function' must be a string");
    ck_config("\"model_type\": \"gpt2\", ", "\"model_type\": \"llama\", ", KLC_ERR_UNSUPPORTED,
              "'model_type' = 'llama'");
    ck_config("\"scale_attn_weights\": true, ", "\"scale_attn_weights\": false, ",
              KLC_ERR_UNSUPPORTED, "'scale_attn_weights'");
    ck_config("\"scale_attn_weights\": true, ", "\"scale_attn_weights\": 1, ", KLC_ERR_FORMAT,
              "must be a boolean");
    ck_config("\"use_cache\": true", "\"scale_attn_by_inverse_layer_idx\": true",
              KLC_ERR_UNSUPPORTED, "'scale_attn_by_inverse_layer_idx'");
    ck_config("\"use_cache\": true", "\"reorder_and_upcast_attn\": true", KLC_ERR_UNSUPPORTED,
              "'reorder_and_upcast_attn'");
    ck_config("\"use_cache\": true", "\"tie_word_embeddings\": false", KLC_ERR_UNSUPPORTED,
              "'tie_word_embeddings'");
    ck_config("\"use_cache\": true", "\"add_cross_attention\": true", KLC_ERR_UNSUPPORTED,
              "'add_cross_attention'");
    ck_config("\"n_inner\": null, ", "\"n_inner\": 16, ", KLC_ERR_UNSUPPORTED, "'n_inner' = 16");
}
END_TEST

/* What klc writes, key by key, as transformers expects it. */
START_TEST(config_written_for_transformers) {
    klc_model *m = small_model(1, 1, 8);
    char *dir = tu_make_temp_dir("cfgw");
    ck_klc(klc_model_save(m, dir));
    char *path = path_in(dir, "config.json");
    char *text = tu_read_file(path, NULL);
    static const char *const expected[] = {"\"architectures\": [\n    \"GPT2LMHeadModel\"\n  ]",
                                           "\"model_type\": \"gpt2\"",
                                           "\"activation_function\": \"gelu_new\"",
                                           "\"n_layer\": 1,",
                                           "\"n_head\": 2,",
                                           "\"n_embd\": 8,",
                                           "\"n_positions\": 8,",
                                           "\"n_ctx\": 8,",
                                           "\"vocab_size\": 11\n",
                                           "\"layer_norm_epsilon\": 0.0003,",
                                           "\"attn_pdrop\": 0.25,",
                                           "\"resid_pdrop\": 0.125,",
                                           "\"embd_pdrop\": 0.0,",
                                           "\"n_inner\": null,",
                                           "\"bos_token_id\": null,",
                                           "\"eos_token_id\": null,",
                                           "\"tie_word_embeddings\": true,",
                                           "\"scale_attn_weights\": true,",
                                           "\"initializer_range\": 0.5,"};
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++)
        ck_assert_msg(strstr(text, expected[i]), "config.json lacks %s:\n%s", expected[i], text);
    free(text);
    /* A GPT-2-sized vocabulary gets GPT-2's <|endoftext|> as bos and eos. */
    klc_model_options o;
    ck_klc(klc_model_get_options(m, &o));
    o.vocab_size = 50257;
    char buf[4096];
    size_t len;
    ck_klc(klc_hf_config_format(&o, buf, sizeof buf, &len));
    ck_assert_uint_eq(strlen(buf), len);
    ck_assert(strstr(buf, "\"bos_token_id\": 50256,") && strstr(buf, "\"eos_token_id\": 50256,"));
    o.layer_norm_eps = 1e-5f;
    ck_klc(klc_hf_config_format(&o, buf, sizeof buf, &len));
    ck_assert_msg(strstr(buf, "\"layer_norm_epsilon\": 1e-05,"), "%s", buf);
    free(path);
    tu_remove_tree(dir);
    free(dir);
    klc_model_destroy(m);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* klc_model_save and klc_model_load                                                    */
/* ------------------------------------------------------------------------------------ */

START_TEST(save_then_load_is_identical) {
    klc_model *m = small_model(7, 2, 8);
    char *base = tu_make_temp_dir("save");
    char *dir = path_in(base, "nested/ckpt"); /* created by save */
    ck_klc(klc_model_save(m, dir));
    expect_only_checkpoint_files(dir);
    klc_model *back;
    ck_klc(klc_model_load(dir, NULL, &back));
    expect_same_model(m, back);
    /* The file holds prefixed names, F32, no lm_head, format pt. */
    char *path = path_in(dir, "model.safetensors");
    klc_st_file *f;
    ck_klc(klc_st_open(path, NULL, &f));
    ck_assert_int_eq(klc_st_count(f), klc_model_num_tensors(m));
    ck_assert_int_ge(klc_st_find(f, "transformer.h.1.attn.c_attn.weight"), 0);
    ck_assert_int_lt(klc_st_find(f, "lm_head.weight"), 0);
    ck_assert_str_eq(klc_st_metadata(f, "format"), "pt");
    const klc_st_tensor *t = klc_st_tensor_at(f, klc_st_find(f, "transformer.h.0.mlp.c_fc.weight"));
    ck_assert_int_eq(t->dtype, KLC_ST_F32);
    ck_assert_int_eq(t->shape[0], 8);
    ck_assert_int_eq(t->shape[1], 32);
    klc_st_close(f);
    /* Saving again over the checkpoint replaces it. */
    klc_model *m2 = small_model(8, 2, 8);
    ck_klc(klc_model_save(m2, dir));
    expect_only_checkpoint_files(dir);
    klc_model *back2;
    ck_klc(klc_model_load(dir, NULL, &back2));
    expect_same_model(m2, back2);
    klc_model_destroy(back2);
    klc_model_destroy(m2);
    klc_model_destroy(back);
    klc_model_destroy(m);
    free(path);
    free(dir);
    tu_remove_tree(base);
    free(base);
}
END_TEST

typedef struct counting_allocator {
    long live;
    long calls;
} counting_allocator;

static void *count_alloc(void *ud, size_t size, size_t alignment) {
    counting_allocator *c = ud;
    c->live += (long)size;
    c->calls++;
    return aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}

static void count_free(void *ud, void *p, size_t size) {
    ((counting_allocator *)ud)->live -= (long)size;
    free(p);
}

START_TEST(load_uses_the_callers_allocator) {
    klc_model *m = small_model(3, 1, 8);
    char *dir = tu_make_temp_dir("alloc");
    ck_klc(klc_model_save(m, dir));
    counting_allocator c = {0, 0};
    klc_allocator a = {count_alloc, count_free, &c};
    klc_model *back;
    ck_klc(klc_model_load(dir, &a, &back));
    ck_assert_int_gt(c.calls, 0);
    expect_same_model(m, back);
    ck_klc(klc_model_save(back, dir)); /* save allocates through it too */
    klc_model_destroy(back);
    ck_assert_int_eq(c.live, 0);
    /* A failing load releases everything it took. */
    char *path = path_in(dir, "model.safetensors");
    write_st(path, "{" A8 "}", zeros, 8);
    ck_assert_int_eq(klc_model_load(dir, &a, &back), KLC_ERR_FORMAT);
    ck_assert_int_eq(c.live, 0);
    free(path);
    tu_remove_tree(dir);
    free(dir);
    klc_model_destroy(m);
}
END_TEST

START_TEST(load_missing_paths) {
    char *dir = tu_make_temp_dir("missing");
    char *none = path_in(dir, "does-not-exist");
    expect_load_error(none, KLC_ERR_IO, "does-not-exist: cannot open model directory");
    expect_load_error(dir, KLC_ERR_IO, "config.json: cannot open");
    klc_model *m = small_model(1, 1, 8);
    ck_klc(klc_model_save(m, dir));
    char *st = path_in(dir, "model.safetensors");
    ck_assert_int_eq(unlink(st), 0);
    expect_load_error(dir, KLC_ERR_IO, "model.safetensors: cannot open");
    ck_assert_int_eq(tu_write_file(st, "", 0), 0);
    expect_load_error(dir, KLC_ERR_FORMAT, "model.safetensors: file is 0 bytes");
    expect_load_error(st, KLC_ERR_IO, "not a directory");
    klc_model *out = (klc_model *)0x1;
    ck_status(klc_model_load(NULL, NULL, &out), KLC_ERR_INVALID_ARGUMENT, "NULL");
    ck_assert_ptr_null(out);
    ck_status(klc_model_load(dir, NULL, NULL), KLC_ERR_INVALID_ARGUMENT, "NULL");
    ck_status(klc_model_save(NULL, dir), KLC_ERR_INVALID_ARGUMENT, "NULL");
    free(st);
    free(none);
    tu_remove_tree(dir);
    free(dir);
    klc_model_destroy(m);
}
END_TEST

START_TEST(load_config_errors_name_the_key) {
    klc_model *m = small_model(1, 1, 8);
    char *dir = tu_make_temp_dir("cfgerr");
    ck_klc(klc_model_save(m, dir));
    char *cfg = path_in(dir, "config.json");
    const char *bad = "{\"n_layer\": 1, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 8, "
                      "\"vocab_size\": 11, \"activation_function\": \"swish\"}";
    ck_assert_int_eq(tu_write_file(cfg, bad, strlen(bad)), 0);
    expect_load_error(dir, KLC_ERR_UNSUPPORTED, "config.json: key 'activation_function' = 'swish'");
    ck_assert_int_eq(tu_write_file(cfg, "{\"n_layer\": 1", 13), 0);
    expect_load_error(dir, KLC_ERR_FORMAT, "config.json:1:");
    const char *missing = "{\"n_layer\": 1, \"n_head\": 2, \"n_positions\": 8, \"vocab_size\": 11}";
    ck_assert_int_eq(tu_write_file(cfg, missing, strlen(missing)), 0);
    expect_load_error(dir, KLC_ERR_FORMAT, "config.json: missing key 'n_embd'");
    /* A config that disagrees with the tensors: one layer more than the file holds. */
    const char *two = "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 8, "
                      "\"vocab_size\": 11}";
    ck_assert_int_eq(tu_write_file(cfg, two, strlen(two)), 0);
    expect_load_error(dir, KLC_ERR_FORMAT, "missing tensor 'transformer.h.1.ln_1.weight'");
    /* ... or a wider vocabulary. */
    const char *wide = "{\"n_layer\": 1, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 8, "
                       "\"vocab_size\": 12}";
    ck_assert_int_eq(tu_write_file(cfg, wide, strlen(wide)), 0);
    expect_load_error(dir, KLC_ERR_FORMAT,
                      "tensor 'transformer.wte.weight' has shape [11, 8], but");
    ck_assert_msg(strstr(klc_last_error(), "requires [12, 8]"), "%s", klc_last_error());
    free(cfg);
    tu_remove_tree(dir);
    free(dir);
    klc_model_destroy(m);
}
END_TEST

START_TEST(load_accepts_hf_variants) {
    klc_model *m = small_model(5, 2, 8);
    fake_ckpt c;
    /* Unprefixed names, an lm_head copy, attention-mask buffers of both vintages. */
    fake_from_model(&c, m, "");
    klc_tensor_info wte;
    ck_klc(klc_model_tensor_info(m, 0, &wte));
    fake_tensor *lm = fake_add(&c, "lm_head.weight", "F32", 2, wte.shape, 4);
    lm->data = klc_model_params(m, NULL) + wte.offset;
    int64_t mask_shape[4] = {1, 1, 8, 8};
    fake_add(&c, "h.0.attn.bias", "BOOL", 4, mask_shape, 1);
    fake_add(&c, "h.1.attn.bias", "F32", 4, mask_shape, 4);
    fake_add(&c, "h.1.attn.masked_bias", "F32", 0, mask_shape, 4);
    char *dir = fake_dir(m, &c);
    klc_model *back;
    ck_klc(klc_model_load(dir, NULL, &back));
    expect_same_model(m, back);
    klc_model_destroy(back);
    tu_remove_tree(dir);
    free(dir);
    /* Prefixed names with the lm_head copy (older GPT2LMHeadModel saves). */
    fake_from_model(&c, m, "transformer.");
    lm = fake_add(&c, "lm_head.weight", "F32", 2, wte.shape, 4);
    lm->data = klc_model_params(m, NULL) + wte.offset;
    fake_add(&c, "transformer.h.0.attn.masked_bias", "F32", 0, mask_shape, 4);
    dir = fake_dir(m, &c);
    ck_klc(klc_model_load(dir, NULL, &back));
    expect_same_model(m, back);
    klc_model_destroy(back);
    tu_remove_tree(dir);
    free(dir);
    klc_model_destroy(m);
}
END_TEST

START_TEST(load_refuses_mismatched_tensors) {
    klc_model *m = small_model(9, 2, 8);
    fake_ckpt c;
    klc_tensor_info wte;
    ck_klc(klc_model_tensor_info(m, 0, &wte));

    fake_from_model(&c, m, "transformer.");
    fake_remove(&c, "transformer.h.1.ln_2.bias");
    expect_fake_error(m, &c, KLC_ERR_FORMAT, "missing tensor 'transformer.h.1.ln_2.bias'");

    fake_from_model(&c, m, "");
    fake_remove(&c, "wpe.weight");
    expect_fake_error(m, &c, KLC_ERR_FORMAT, "missing tensor 'wpe.weight'");

    int64_t s1[1] = {8};
    fake_from_model(&c, m, "transformer.");
    fake_add(&c, "transformer.h.0.attn.extra", "F32", 1, s1, 4);
    expect_fake_error(m, &c, KLC_ERR_FORMAT, "unknown tensor 'transformer.h.0.attn.extra'");
    fake_from_model(&c, m, "transformer.");
    fake_add(&c, "transformer.h.2.ln_1.weight", "F32", 1, s1, 4); /* a layer too many */
    expect_fake_error(m, &c, KLC_ERR_FORMAT, "unknown tensor 'transformer.h.2.ln_1.weight'");
    fake_from_model(&c, m, "transformer.");
    fake_add(&c, "transformer.h.01.ln_1.weight", "F32", 1, s1, 4);
    expect_fake_error(m, &c, KLC_ERR_FORMAT, "unknown tensor 'transformer.h.01.ln_1.weight'");
    fake_from_model(&c, m, "");
    fake_add(&c, "score.weight", "F32", 1, s1, 4);
    expect_fake_error(m, &c, KLC_ERR_FORMAT, "unknown tensor 'score.weight'");

    /* c_attn stored [out, in] (a Linear, not HF's Conv1D). */
    fake_from_model(&c, m, "transformer.");
    fake_tensor *t = fake_find(&c, "transformer.h.0.attn.c_attn.weight");
    t->shape[0] = 24;
    t->shape[1] = 8;
    expect_fake_error(m, &c, KLC_ERR_FORMAT,
                      "tensor 'transformer.h.0.attn.c_attn.weight' has shape [24, 8]");
    ck_assert_msg(strstr(klc_last_error(), "requires [8, 24]"), "%s", klc_last_error());
    /* A bias with an extra dimension. */
    fake_from_model(&c, m, "transformer.");
    t = fake_find(&c, "transformer.ln_f.bias");
    t->ndim = 2;
    t->shape[1] = 1;
    expect_fake_error(m, &c, KLC_ERR_FORMAT, "has shape [8, 1]");

    /* Mixed naming conventions. */
    fake_from_model(&c, m, "transformer.");
    snprintf(fake_find(&c, "transformer.ln_f.bias")->name, 96, "ln_f.bias");
    expect_fake_error(m, &c, KLC_ERR_FORMAT, "mix the 'transformer.' prefix");

    /* A parameter in a dtype klc cannot read as float. */
    fake_from_model(&c, m, "transformer.");
    snprintf(fake_find(&c, "transformer.ln_f.bias")->dtype, 8, "I32");
    expect_fake_error(m, &c, KLC_ERR_UNSUPPORTED, "tensor 'transformer.ln_f.bias': dtype I32");

    /* An untied LM head. */
    size_t n_wte = (size_t)wte.numel;
    float *other = malloc(n_wte * sizeof(float));
    memcpy(other, klc_model_params(m, NULL) + wte.offset, n_wte * sizeof(float));
    other[n_wte - 3] += 1.0f;
    fake_from_model(&c, m, "transformer.");
    fake_add(&c, "lm_head.weight", "F32", 2, wte.shape, 4)->data = other;
    expect_fake_error(m, &c, KLC_ERR_UNSUPPORTED, "untied LM heads are not supported");
    ck_assert_msg(strstr(klc_last_error(), "element 85"), "%s", klc_last_error());
    int64_t wrong[2] = {wte.shape[1], wte.shape[0]};
    fake_from_model(&c, m, "transformer.");
    fake_add(&c, "lm_head.weight", "F32", 2, wrong, 4);
    expect_fake_error(m, &c, KLC_ERR_FORMAT, "tensor 'lm_head.weight' has shape [8, 11]");
    free(other);
    klc_model_destroy(m);
}
END_TEST

/* A save that fails midway (here: the file size limit, as a full disk would) reports the
 * error, leaves the previous checkpoint loadable and bit-identical, and no temporary file. */
START_TEST(failed_save_keeps_the_old_checkpoint) {
    klc_model *old_model = small_model(11, 1, 8);
    klc_model *new_model = small_model(12, 2, 16);
    char *dir = tu_make_temp_dir("keep");
    ck_klc(klc_model_save(old_model, dir));
    struct rlimit saved, small;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = 4096; /* config.json fits, the new model.safetensors does not */
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    /* No check assertions while the limit holds: Check writes its own files. */
    int lim = setrlimit(RLIMIT_FSIZE, &small);
    klc_clear_error();
    int s = klc_model_save(new_model, dir);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", klc_last_error());
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, old_handler);
    ck_assert_int_eq(lim, 0);
    ck_assert_msg(s == KLC_ERR_IO, "save -> %s: %s", klc_status_str(s), msg);
    ck_assert_msg(strstr(msg, "model.safetensors") && strstr(msg, "cannot write"), "%s", msg);
    expect_only_checkpoint_files(dir);
    klc_model *back;
    ck_klc(klc_model_load(dir, NULL, &back));
    expect_same_model(old_model, back);
    klc_model_destroy(back);

    /* A rename that fails (the target is a directory) also leaves the old config.json. */
    char *st = path_in(dir, "model.safetensors");
    char *cfg = path_in(dir, "config.json");
    size_t cfg_len;
    char *cfg_before = tu_read_file(cfg, &cfg_len);
    ck_assert_int_eq(unlink(st), 0);
    ck_assert_int_eq(mkdir(st, 0755), 0);
    char *inner = path_in(st, "x");
    ck_assert_int_eq(tu_write_file(inner, "x", 1), 0);
    ck_status(klc_model_save(new_model, dir), KLC_ERR_IO, "cannot rename");
    char *cfg_after = tu_read_file(cfg, NULL);
    ck_assert_str_eq(cfg_before, cfg_after);
    expect_only_checkpoint_files(dir);
    /* The target directory is a file. */
    ck_status(klc_model_save(new_model, cfg), KLC_ERR_IO, "not a directory");
    free(cfg_before);
    free(cfg_after);
    free(inner);
    free(cfg);
    free(st);
    tu_remove_tree(dir);
    free(dir);
    klc_model_destroy(old_model);
    klc_model_destroy(new_model);
}
END_TEST

/* The committed reference checkpoint loads in all four layouts (its forward values are
 * checked by test_reference). */
START_TEST(reference_checkpoints_load) {
    static const char *const variants[] = {"f32", "f32-noprefix", "f16", "bf16"};
    klc_model *m[4];
    for (int i = 0; i < 4; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/ref-tiny/%s", KLC_TEST_DATA, variants[i]);
        ck_klc(klc_model_load(dir, NULL, &m[i]));
        klc_model_options o;
        ck_klc(klc_model_get_options(m[i], &o));
        ck_assert_int_eq(o.n_layer, 2);
        ck_assert_int_eq(o.n_head, 2);
        ck_assert_int_eq(o.n_embd, 16);
        ck_assert_int_eq(o.n_ctx, 32);
        ck_assert_int_eq(o.vocab_size, 50);
        ck_assert(o.layer_norm_eps == 1e-3f);
    }
    size_t n;
    const float *p32 = klc_model_params(m[0], &n);
    ck_assert_int_eq(memcmp(p32, klc_model_params(m[1], NULL), n * sizeof(float)), 0);
    /* The rounded variants are close to F32 and hold exactly representable values. */
    const float *p16 = klc_model_params(m[2], NULL), *pb = klc_model_params(m[3], NULL);
    double max16 = 0, maxb = 0;
    for (size_t i = 0; i < n; i++) {
        max16 = fmax(max16, fabs((double)p16[i] - p32[i]) / (fabs(p32[i]) + 1e-3));
        maxb = fmax(maxb, fabs((double)pb[i] - p32[i]) / (fabs(p32[i]) + 1e-3));
        uint32_t u;
        memcpy(&u, &pb[i], 4);
        ck_assert_uint_eq(u & 0xffffu, 0);
    }
    ck_assert(max16 > 0 && max16 < 1e-3);
    ck_assert(maxb > 0 && maxb < 1e-2);
    for (int i = 0; i < 4; i++) klc_model_destroy(m[i]);
}
END_TEST

/* Seeded random damage to a valid checkpoint (byte flips in the header and data, the
 * header length, truncation): every load must fail cleanly or succeed, never crash (run
 * under the sanitizers), and only with the statuses klc.h promises for bad files. */
START_TEST(damaged_files_fail_cleanly) {
    klc_model *m = small_model(21, 1, 8);
    char *dir = tu_make_temp_dir("damage");
    ck_klc(klc_model_save(m, dir));
    char *path = path_in(dir, "model.safetensors");
    size_t size;
    unsigned char *good = (unsigned char *)tu_read_file(path, &size);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | good[i];
    unsigned char *bad = malloc(size);
    klc_rng r;
    klc_rng_init(&r, 99, KLC_STREAM_USER);
    int outcomes[3] = {0, 0, 0};
    for (uint64_t iter = 0; iter < 1500; iter++) {
        memcpy(bad, good, size);
        size_t len = size;
        uint32_t w[4];
        klc_rng_words(&r, iter, 0, w);
        int kind = (int)(w[0] % 4);
        if (kind == 0) { /* a few bytes of the header */
            for (uint32_t k = 0; k <= w[1] % 4; k++) {
                klc_rng_words(&r, iter, k + 1, w);
                bad[8 + w[2] % hl] = (unsigned char)w[3];
            }
        } else if (kind == 1) { /* a printable character, which keeps more of the JSON */
            bad[8 + w[2] % hl] = (unsigned char)(' ' + w[3] % 95);
        } else if (kind == 2) { /* the header length */
            bad[w[2] % 8] = (unsigned char)w[3];
        } else { /* truncation */
            len = w[2] % size;
        }
        ck_assert_int_eq(tu_write_file(path, bad, len), 0);
        klc_model *back = NULL;
        int s = klc_model_load(dir, NULL, &back);
        ck_assert_msg(s == KLC_OK || s == KLC_ERR_FORMAT || s == KLC_ERR_UNSUPPORTED,
                      "iteration %llu: %s: %s", (unsigned long long)iter, klc_status_str(s),
                      klc_last_error());
        ck_assert(s == KLC_OK ? back != NULL : back == NULL);
        if (s != KLC_OK) ck_assert(strstr(klc_last_error(), "model.safetensors") != NULL);
        outcomes[s == KLC_OK ? 0 : s == KLC_ERR_FORMAT ? 1 : 2]++;
        klc_model_destroy(back);
    }
    /* Most damage is caught; some (a changed digit inside a float's bytes) is not damage. */
    ck_assert_int_gt(outcomes[1], 1000);
    free(bad);
    free(good);
    free(path);
    tu_remove_tree(dir);
    free(dir);
    klc_model_destroy(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("io");
    TCase *conv = tcase_create("conversions");
    tcase_add_test(conv, f16_conversion_hand_values);
    tcase_add_test(conv, bf16_conversion_hand_values);
    suite_add_tcase(s, conv);
    TCase *st = tcase_create("safetensors");
    tcase_add_test(st, safetensors_reads_f16_bf16_f32);
    tcase_add_test(st, safetensors_other_dtypes_are_unsupported_as_float);
    tcase_add_test(st, st_missing_and_empty_files);
    tcase_add_test(st, st_header_length_out_of_range);
    tcase_add_test(st, st_bad_json);
    tcase_add_test(st, st_bad_entries);
    tcase_add_test(st, st_bad_offsets);
    tcase_add_test(st, st_valid_edge_cases);
    tcase_add_test(st, st_writer_round_trip);
    tcase_add_test(st, atomic_file_replaces_or_leaves_intact);
    suite_add_tcase(s, st);
    TCase *cfg = tcase_create("config");
    tcase_add_test(cfg, config_reads_gpt2_keys);
    tcase_add_test(cfg, config_refuses_bad_and_unsupported);
    tcase_add_test(cfg, config_written_for_transformers);
    suite_add_tcase(s, cfg);
    TCase *model = tcase_create("model");
    tcase_add_test(model, save_then_load_is_identical);
    tcase_add_test(model, load_uses_the_callers_allocator);
    tcase_add_test(model, load_missing_paths);
    tcase_add_test(model, load_config_errors_name_the_key);
    tcase_add_test(model, load_accepts_hf_variants);
    tcase_add_test(model, load_refuses_mismatched_tensors);
    tcase_add_test(model, failed_save_keeps_the_old_checkpoint);
    tcase_add_test(model, reference_checkpoints_load);
    tcase_add_test(model, damaged_files_fail_cleanly);
    suite_add_tcase(s, model);
    return tu_run_suite(s);
}
