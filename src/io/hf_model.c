/* klc_model_load and klc_model_save: the Hugging Face GPT-2 directory layout
 * (config.json + model.safetensors). */
#include "io/atomic_file.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/model.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PREFIX     "transformer."
#define PREFIX_LEN 12

/* The per-layer tensors in the model's block order (model.h). */
static const char *const layer_suffixes[12] = {
    "ln_1.weight",        "ln_1.bias",        "attn.c_attn.weight", "attn.c_attn.bias",
    "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",        "ln_2.bias",
    "mlp.c_fc.weight",    "mlp.c_fc.bias",    "mlp.c_proj.weight",  "mlp.c_proj.bias"};

/* Parses "h.<n>." with a canonical decimal n; returns the rest or NULL. */
static const char *parse_layer(const char *name, int32_t *layer) {
    if (strncmp(name, "h.", 2) != 0) return NULL;
    const char *p = name + 2;
    int64_t n = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 8) n = n * 10 + (*p++ - '0'), digits++;
    if (digits == 0 || *p != '.' || (digits > 1 && name[2] == '0')) return NULL;
    *layer = (int32_t)n;
    return p + 1;
}

/* The attention-mask buffers older transformers saved, which are not parameters. */
static int is_ignored_buffer(const char *name) {
    int32_t layer;
    const char *rest = parse_layer(name, &layer);
    return rest && (strcmp(rest, "attn.bias") == 0 || strcmp(rest, "attn.masked_bias") == 0);
}

/* The model tensor index of an unprefixed Hugging Face name, or -1. */
static int32_t model_index(const klc_model *m, const char *name) {
    int32_t guess = -1, layer;
    if (strcmp(name, "wte.weight") == 0)
        guess = 0;
    else if (strcmp(name, "wpe.weight") == 0)
        guess = 1;
    else if (strcmp(name, "ln_f.weight") == 0)
        guess = m->n_tensors - 2;
    else if (strcmp(name, "ln_f.bias") == 0)
        guess = m->n_tensors - 1;
    else {
        const char *rest = parse_layer(name, &layer);
        if (!rest || layer >= m->cfg.n_layer) return -1;
        for (int k = 0; k < 12; k++)
            if (strcmp(rest, layer_suffixes[k]) == 0) guess = 2 + 12 * layer + k;
    }
    if (guess < 0 || guess >= m->n_tensors) return -1;
    /* The table above mirrors model.c's layout; confirm rather than trust it. */
    if (strcmp(m->tensors[guess].name, name) == 0) return guess;
    return klc_model_find_tensor(m, name);
}

static void format_shape(char *buf, size_t cap, int32_t ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int32_t d = 0; d < ndim && used < cap; d++)
        used +=
            (size_t)snprintf(buf + used, cap - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

static int same_shape(const klc_st_tensor *t, const klc_tensor_info *info) {
    if (t->ndim != info->ndim) return 0;
    for (int32_t d = 0; d < info->ndim; d++)
        if (t->shape[d] != info->shape[d]) return 0;
    return 1;
}

static int check_float_dtype(const klc_st_file *f, const klc_st_tensor *t) {
    if (t->dtype == KLC_ST_F32 || t->dtype == KLC_ST_F16 || t->dtype == KLC_ST_BF16) return KLC_OK;
    return klc_fail(KLC_ERR_UNSUPPORTED,
                    "%s: tensor '%s': dtype %s is not supported (F32, F16, BF16)", klc_st_path(f),
                    t->name, klc_st_dtype_name(t->dtype));
}

/* Decides whether the file's parameter names carry "transformer." (lm_head.weight never
 * does); a file mixing both conventions is refused. */
static int detect_prefix(const klc_st_file *f, int *prefixed) {
    const char *with = NULL, *without = NULL;
    for (int32_t i = 0; i < klc_st_count(f); i++) {
        const char *name = klc_st_tensor_at(f, i)->name;
        if (strcmp(name, "lm_head.weight") == 0) continue;
        if (strncmp(name, PREFIX, PREFIX_LEN) == 0) {
            if (!with) with = name;
        } else if (!without) {
            without = name;
        }
    }
    if (with && without)
        return klc_fail(KLC_ERR_FORMAT,
                        "%s: tensor names mix the 'transformer.' prefix ('%s') with unprefixed "
                        "names ('%s')",
                        klc_st_path(f), with, without);
    *prefixed = with != NULL;
    return KLC_OK;
}

/* lm_head.weight must be a bit-exact copy of wte.weight: klc's head is tied. */
static int check_lm_head(const klc_st_file *f, int32_t index, const klc_model *m) {
    const klc_st_tensor *t = klc_st_tensor_at(f, index);
    const klc_tensor_info *wte = &m->tensors[0];
    if (!same_shape(t, wte)) {
        char got[128], want[128];
        format_shape(got, sizeof got, t->ndim, t->shape);
        format_shape(want, sizeof want, wte->ndim, wte->shape);
        return klc_fail(KLC_ERR_FORMAT, "%s: tensor 'lm_head.weight' has shape %s, expected %s",
                        klc_st_path(f), got, want);
    }
    KLC_TRY(check_float_dtype(f, t));
    enum { CHUNK = 16384 };
    float buf[CHUNK];
    const float *w = m->params + wte->offset;
    for (uint64_t done = 0; done < t->numel;) {
        size_t k = t->numel - done > CHUNK ? CHUNK : (size_t)(t->numel - done);
        KLC_TRY(klc_st_read_f32(f, index, done, k, buf));
        if (memcmp(buf, w + done, k * sizeof(float)) != 0) {
            size_t i = 0;
            while (memcmp(&buf[i], &w[done + i], sizeof(float)) == 0) i++;
            return klc_fail(KLC_ERR_UNSUPPORTED,
                            "%s: tensor 'lm_head.weight' differs from 'wte.weight' (element "
                            "%llu: %.9g vs %.9g); untied LM heads are not supported",
                            klc_st_path(f), (unsigned long long)(done + i), (double)buf[i],
                            (double)w[done + i]);
        }
        done += k;
    }
    return KLC_OK;
}

static int fill_params(const klc_st_file *f, klc_model *m, const char *cfg_path,
                       unsigned char *seen) {
    int prefixed = 0;
    KLC_TRY(detect_prefix(f, &prefixed));
    int32_t lm_head = -1;
    for (int32_t i = 0; i < klc_st_count(f); i++) {
        const klc_st_tensor *t = klc_st_tensor_at(f, i);
        if (strcmp(t->name, "lm_head.weight") == 0) {
            lm_head = i;
            continue;
        }
        const char *name = prefixed ? t->name + PREFIX_LEN : t->name;
        if (is_ignored_buffer(name)) continue;
        int32_t idx = model_index(m, name);
        if (idx < 0)
            return klc_fail(KLC_ERR_FORMAT,
                            "%s: unknown tensor '%s' (not part of a GPT-2 model with n_layer = %d)",
                            klc_st_path(f), t->name, m->cfg.n_layer);
        const klc_tensor_info *info = &m->tensors[idx];
        if (seen[idx])
            return klc_fail(KLC_ERR_FORMAT, "%s: tensor '%s' appears twice", klc_st_path(f),
                            t->name);
        seen[idx] = 1;
        if (!same_shape(t, info)) {
            char got[128], want[128];
            format_shape(got, sizeof got, t->ndim, t->shape);
            format_shape(want, sizeof want, info->ndim, info->shape);
            return klc_fail(KLC_ERR_FORMAT,
                            "%s: tensor '%s' has shape %s, but %s (n_layer %d, n_embd %d, "
                            "n_positions %d, vocab_size %d) requires %s",
                            klc_st_path(f), t->name, got, cfg_path, m->cfg.n_layer, m->cfg.n_embd,
                            m->cfg.n_ctx, m->cfg.vocab_size, want);
        }
        KLC_TRY(check_float_dtype(f, t));
        KLC_TRY(klc_st_read_f32(f, i, 0, t->numel, m->params + info->offset));
    }
    for (int32_t k = 0; k < m->n_tensors; k++)
        if (!seen[k])
            return klc_fail(KLC_ERR_FORMAT, "%s: missing tensor '%s%s'", klc_st_path(f),
                            prefixed ? PREFIX : "", m->tensors[k].name);
    if (lm_head >= 0) KLC_TRY(check_lm_head(f, lm_head, m));
    return KLC_OK;
}

static int join_path(char *buf, size_t cap, const char *dir, const char *file) {
    int n = snprintf(buf, cap, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= cap)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
    return KLC_OK;
}

int klc_model_load(const char *dir, const klc_allocator *allocator, klc_model **out) {
    if (out) *out = NULL;
    if (!dir || !out)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_load: NULL %s", dir ? "out" : "dir");
    char cfg_path[4096], st_path[4096];
    KLC_TRY(join_path(cfg_path, sizeof cfg_path, dir, "config.json"));
    KLC_TRY(join_path(st_path, sizeof st_path, dir, "model.safetensors"));
    struct stat st;
    if (stat(dir, &st) != 0)
        return klc_fail(KLC_ERR_IO, "%s: cannot open model directory: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return klc_fail(KLC_ERR_IO, "%s: not a directory", dir);
    klc_alloc_ctx a;
    klc_alloc_ctx_init(&a, allocator);
    klc_model_options o;
    KLC_TRY(klc_hf_config_read(cfg_path, &a, &o));
    klc_st_file *f;
    KLC_TRY(klc_st_open(st_path, &a, &f));
    klc_model *m = NULL;
    unsigned char *seen = NULL;
    int status = klc_model_new_zeroed(&o, allocator, &m);
    if (status == KLC_OK) {
        seen = klc_alloc_zeroed(&a, (size_t)m->n_tensors);
        status = seen ? fill_params(f, m, cfg_path, seen) : KLC_ERR_OUT_OF_MEMORY;
    }
    if (m) klc_free(&a, seen, (size_t)m->n_tensors);
    klc_st_close(f);
    if (status != KLC_OK) {
        klc_model_destroy(m);
        return status;
    }
    *out = m;
    return KLC_OK;
}

int klc_model_save(const klc_model *m, const char *dir) {
    if (!m || !dir)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_save: NULL %s", m ? "dir" : "model");
    char cfg_path[4096], st_path[4096], cfg_text[4096];
    size_t cfg_len;
    KLC_TRY(join_path(cfg_path, sizeof cfg_path, dir, "config.json"));
    KLC_TRY(join_path(st_path, sizeof st_path, dir, "model.safetensors"));
    KLC_TRY(klc_hf_config_format(&m->cfg, cfg_text, sizeof cfg_text, &cfg_len));
    KLC_TRY(klc_mkdir_p(dir));
    const klc_alloc_ctx *a = &m->alloc;
    enum { NAME_CAP = 64 };
    size_t n = (size_t)m->n_tensors;
    klc_st_entry *entries = klc_alloc_zeroed(a, n * sizeof *entries);
    char *names = klc_alloc(a, n * NAME_CAP);
    if (!entries || !names) {
        klc_free(a, entries, n * sizeof *entries);
        klc_free(a, names, n * NAME_CAP);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < n; i++) {
        const klc_tensor_info *t = &m->tensors[i];
        snprintf(names + i * NAME_CAP, NAME_CAP, PREFIX "%s", t->name);
        entries[i].name = names + i * NAME_CAP;
        entries[i].ndim = t->ndim;
        for (int32_t d = 0; d < t->ndim; d++) entries[i].shape[d] = t->shape[d];
        entries[i].data = m->params + t->offset;
    }
    static const char *const metadata[] = {"format", "pt", NULL};
    klc_atomic_file st_file, cfg_file;
    /* Both files are written and synced before either is renamed, so that running out of
     * space or any write error leaves the old checkpoint whole. */
    int status = klc_atomic_open(&st_file, st_path, a);
    if (status == KLC_OK) {
        status = klc_st_write(&st_file, entries, (int32_t)n, metadata, a);
        if (status == KLC_OK) status = klc_atomic_finish(&st_file);
        if (status == KLC_OK) {
            status = klc_atomic_open(&cfg_file, cfg_path, a);
            if (status == KLC_OK) {
                status = klc_atomic_write(&cfg_file, cfg_text, cfg_len);
                if (status == KLC_OK) status = klc_atomic_finish(&cfg_file);
                if (status == KLC_OK) status = klc_atomic_rename(&st_file);
                if (status == KLC_OK) status = klc_atomic_rename(&cfg_file);
            }
            klc_atomic_abort(&cfg_file);
        }
    }
    klc_atomic_abort(&st_file);
    klc_free(a, entries, n * sizeof *entries);
    klc_free(a, names, n * NAME_CAP);
    return status;
}
