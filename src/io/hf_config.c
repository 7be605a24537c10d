/* Reading and writing GPT-2's config.json (see hf_config.h). */
#include "io/hf_config.h"
#include "model/model.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

typedef struct reader {
    const char *path;
    json_t *root;
} reader;

/* *found = 0 and KLC_OK when an optional key is absent; null counts as absent, as
 * Hugging Face's configuration classes then take their defaults. */
static int get_int(const reader *r, const char *key, int required, int64_t lo, int64_t hi,
                   int32_t *out, int *found) {
    json_t *v = json_object_get(r->root, key);
    if (found) *found = 0;
    if (!v || json_is_null(v)) {
        if (required) return klc_fail(KLC_ERR_FORMAT, "%s: missing key '%s'", r->path, key);
        return KLC_OK;
    }
    if (!json_is_integer(v))
        return klc_fail(KLC_ERR_FORMAT, "%s: key '%s' must be an integer, not %s", r->path, key,
                        type_name(v));
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return klc_fail(KLC_ERR_FORMAT, "%s: key '%s' = %lld is out of range [%lld, %lld]", r->path,
                        key, (long long)x, (long long)lo, (long long)hi);
    *out = (int32_t)x;
    if (found) *found = 1;
    return KLC_OK;
}

/* A probability or epsilon: any JSON number within [lo, hi) (hi excluded when open_hi). */
static int get_real(const reader *r, const char *key, double lo, double hi, int open_lo,
                    float *out) {
    json_t *v = json_object_get(r->root, key);
    if (!v || json_is_null(v)) return KLC_OK;
    if (!json_is_number(v))
        return klc_fail(KLC_ERR_FORMAT, "%s: key '%s' must be a number, not %s", r->path, key,
                        type_name(v));
    double x = json_number_value(v);
    if (!(open_lo ? x > lo : x >= lo) || !(x < hi))
        return klc_fail(KLC_ERR_FORMAT, "%s: key '%s' = %g is out of range %s%g, %g)", r->path, key,
                        x, open_lo ? "(" : "[", lo, hi);
    *out = (float)x;
    return KLC_OK;
}

/* A boolean key that, if present, must have the value klc implements. */
static int require_bool(const reader *r, const char *key, int expected) {
    json_t *v = json_object_get(r->root, key);
    if (!v || json_is_null(v)) return KLC_OK;
    if (!json_is_boolean(v))
        return klc_fail(KLC_ERR_FORMAT, "%s: key '%s' must be a boolean, not %s", r->path, key,
                        type_name(v));
    if (json_is_true(v) != expected)
        return klc_fail(KLC_ERR_UNSUPPORTED,
                        "%s: key '%s' = %s is not supported (klc implements %s)", r->path, key,
                        expected ? "false" : "true", expected ? "true" : "false");
    return KLC_OK;
}

/* Hugging Face's names for GELU with the tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi)
 * (x + 0.044715 x^3))): NewGELUActivation, PytorchGELUTanh, FastGELUActivation (the same
 * formula with sqrt(2/pi) rounded to 10 digits) and AccurateGELUActivation. */
static const char *const tanh_gelu_names[] = {"gelu_new", "gelu_pytorch_tanh", "gelu_fast",
                                              "gelu_accurate"};

static int parse_config(const reader *r, klc_model_options *o) {
    if (!json_is_object(r->root)) return klc_fail(KLC_ERR_FORMAT, "%s: not a JSON object", r->path);
    json_t *mt = json_object_get(r->root, "model_type");
    if (mt && !json_is_string(mt))
        return klc_fail(KLC_ERR_FORMAT, "%s: key 'model_type' must be a string, not %s", r->path,
                        type_name(mt));
    if (mt && strcmp(json_string_value(mt), "gpt2") != 0)
        return klc_fail(KLC_ERR_UNSUPPORTED,
                        "%s: key 'model_type' = '%s' is not supported (klc reads 'gpt2')", r->path,
                        json_string_value(mt));
    KLC_TRY(get_int(r, "n_layer", 1, 1, 1024, &o->n_layer, NULL));
    KLC_TRY(get_int(r, "n_head", 1, 1, 1024, &o->n_head, NULL));
    KLC_TRY(get_int(r, "n_embd", 1, 1, 65536, &o->n_embd, NULL));
    KLC_TRY(get_int(r, "vocab_size", 1, 1, 1 << 24, &o->vocab_size, NULL));
    int found;
    KLC_TRY(get_int(r, "n_positions", 0, 1, 1 << 20, &o->n_ctx, &found));
    if (!found) {
        KLC_TRY(get_int(r, "n_ctx", 0, 1, 1 << 20, &o->n_ctx, &found));
        if (!found)
            return klc_fail(KLC_ERR_FORMAT, "%s: missing key 'n_positions' (or the older 'n_ctx')",
                            r->path);
    }
    if (o->n_embd % o->n_head != 0)
        return klc_fail(KLC_ERR_FORMAT, "%s: key 'n_embd' = %d is not divisible by 'n_head' = %d",
                        r->path, o->n_embd, o->n_head);
    int32_t n_inner = 0;
    KLC_TRY(get_int(r, "n_inner", 0, 1, INT32_MAX, &n_inner, &found));
    if (found && (int64_t)n_inner != 4 * (int64_t)o->n_embd)
        return klc_fail(KLC_ERR_UNSUPPORTED,
                        "%s: key 'n_inner' = %d is not supported (klc's MLP is 4 * n_embd = %lld)",
                        r->path, n_inner, 4 * (long long)o->n_embd);
    KLC_TRY(get_real(r, "layer_norm_epsilon", 0.0, 1.0, 1, &o->layer_norm_eps));
    if (!(o->layer_norm_eps > 0.0f))
        return klc_fail(KLC_ERR_FORMAT, "%s: key 'layer_norm_epsilon' rounds to 0 in float",
                        r->path);
    KLC_TRY(get_real(r, "embd_pdrop", 0.0, 1.0, 0, &o->embd_pdrop));
    KLC_TRY(get_real(r, "attn_pdrop", 0.0, 1.0, 0, &o->attn_pdrop));
    KLC_TRY(get_real(r, "resid_pdrop", 0.0, 1.0, 0, &o->resid_pdrop));
    KLC_TRY(get_real(r, "initializer_range", 0.0, INFINITY, 0, &o->init_std));
    json_t *act = json_object_get(r->root, "activation_function");
    if (act && !json_is_null(act)) {
        if (!json_is_string(act))
            return klc_fail(KLC_ERR_FORMAT,
                            "%s: key 'activation_function' must be a string, not %s", r->path,
                            type_name(act));
        const char *name = json_string_value(act);
        int ok = 0;
        for (size_t i = 0; i < sizeof tanh_gelu_names / sizeof *tanh_gelu_names; i++)
            ok |= strcmp(name, tanh_gelu_names[i]) == 0;
        if (!ok)
            return klc_fail(KLC_ERR_UNSUPPORTED,
                            "%s: key 'activation_function' = '%s' is not supported (klc implements "
                            "GELU with the tanh approximation: 'gelu_new', 'gelu_pytorch_tanh', "
                            "'gelu_fast', 'gelu_accurate')",
                            r->path, name);
    }
    KLC_TRY(require_bool(r, "scale_attn_weights", 1));
    KLC_TRY(require_bool(r, "scale_attn_by_inverse_layer_idx", 0));
    KLC_TRY(require_bool(r, "reorder_and_upcast_attn", 0));
    KLC_TRY(require_bool(r, "tie_word_embeddings", 1));
    KLC_TRY(require_bool(r, "add_cross_attention", 0));
    if (klc_model_check_options(o) != KLC_OK)
        return klc_fail_context(KLC_ERR_FORMAT, "%s: ", r->path);
    return KLC_OK;
}

int klc_hf_config_read(const char *path, const klc_alloc_ctx *alloc, klc_model_options *out) {
    klc_model_options o;
    klc_model_options_init(&o, KLC_MODEL_OPTIONS_VERSION);
    /* Hugging Face's GPT2Config defaults for the optional keys. */
    o.layer_norm_eps = 1e-5f;
    o.embd_pdrop = o.attn_pdrop = o.resid_pdrop = 0.1f;
    o.init_std = 0.02f;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return klc_fail(KLC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return klc_fail(KLC_ERR_IO, "%s: not a readable regular file", path);
    }
    if ((uint64_t)st.st_size > KLC_HF_CONFIG_MAX_BYTES) {
        close(fd);
        return klc_fail(KLC_ERR_FORMAT, "%s: %lld bytes is too large for a config (limit %zu)",
                        path, (long long)st.st_size, KLC_HF_CONFIG_MAX_BYTES);
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *text = klc_alloc(alloc, size + 1);
    if (!text) {
        close(fd);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    while (got < size) {
        ssize_t r = read(fd, text + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        klc_free(alloc, text, size + 1);
        return klc_fail(KLC_ERR_IO, "%s: cannot read the whole file", path);
    }
    json_error_t err;
    json_t *root = json_loadb(text, size, JSON_REJECT_DUPLICATES, &err);
    klc_free(alloc, text, size + 1);
    if (!root)
        return klc_fail(KLC_ERR_FORMAT, "%s:%d:%d: invalid JSON: %s", path, err.line, err.column,
                        err.text);
    reader r = {path, root};
    int status = parse_config(&r, &o);
    json_decref(root);
    if (status != KLC_OK) return status;
    *out = o;
    return KLC_OK;
}

/* The shortest decimal that reads back as the same float, so that 1e-5f is written as
 * 1e-05 rather than 9.99999974737875e-06, with '.' whatever the C locale says. */
static void format_float(float x, char *buf, size_t cap) {
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)x);
        if (strtof(buf, NULL) == x) break;
    }
    for (char *c = buf; *c; c++)
        if (*c == ',') *c = '.';
    /* A bare integer would read back as an int in Python; HF's floats stay floats. */
    if (!strpbrk(buf, ".eE") && strlen(buf) + 2 < cap) strcat(buf, ".0");
}

int klc_hf_config_format(const klc_model_options *o, char *buf, size_t cap, size_t *len) {
    KLC_TRY(klc_model_check_options(o));
    char eps[32], pe[32], pa[32], pr[32], init[32], tok[16];
    format_float(o->layer_norm_eps, eps, sizeof eps);
    format_float(o->embd_pdrop, pe, sizeof pe);
    format_float(o->attn_pdrop, pa, sizeof pa);
    format_float(o->resid_pdrop, pr, sizeof pr);
    format_float(o->init_std, init, sizeof init);
    /* GPT-2's <|endoftext|> is 50256; a smaller vocabulary has no such token, and null
     * stops transformers from defaulting to it. */
    snprintf(tok, sizeof tok, "%s", o->vocab_size > 50256 ? "50256" : "null");
    int n = snprintf(buf, cap,
                     "{\n"
                     "  \"activation_function\": \"gelu_new\",\n"
                     "  \"architectures\": [\n"
                     "    \"GPT2LMHeadModel\"\n"
                     "  ],\n"
                     "  \"attn_pdrop\": %s,\n"
                     "  \"bos_token_id\": %s,\n"
                     "  \"embd_pdrop\": %s,\n"
                     "  \"eos_token_id\": %s,\n"
                     "  \"initializer_range\": %s,\n"
                     "  \"layer_norm_epsilon\": %s,\n"
                     "  \"model_type\": \"gpt2\",\n"
                     "  \"n_ctx\": %d,\n"
                     "  \"n_embd\": %d,\n"
                     "  \"n_head\": %d,\n"
                     "  \"n_inner\": null,\n"
                     "  \"n_layer\": %d,\n"
                     "  \"n_positions\": %d,\n"
                     "  \"reorder_and_upcast_attn\": false,\n"
                     "  \"resid_pdrop\": %s,\n"
                     "  \"scale_attn_by_inverse_layer_idx\": false,\n"
                     "  \"scale_attn_weights\": true,\n"
                     "  \"tie_word_embeddings\": true,\n"
                     "  \"use_cache\": true,\n"
                     "  \"vocab_size\": %d\n"
                     "}\n",
                     pa, tok, pe, tok, init, eps, o->n_ctx, o->n_embd, o->n_head, o->n_layer,
                     o->n_ctx, pr, o->vocab_size);
    if (n < 0 || (size_t)n >= cap)
        return klc_fail(KLC_ERR_INTERNAL, "config.json does not fit in %zu bytes", cap);
    *len = (size_t)n;
    return KLC_OK;
}
