/* Creation, the tensor table, initialisation, cloning and destruction of klc_model. */
#include "model.h"
#include "workspace.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int klc_model_options_init(klc_model_options *o, uint32_t version) {
    if (!o) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_options_init: NULL options");
    if (version == 0 || version > KLC_MODEL_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_model_options_init: unknown options version %u (this library "
                        "knows 1..%d)",
                        version, KLC_MODEL_OPTIONS_VERSION);
    memset(o, 0, sizeof *o);
    o->version = version;
    o->n_layer = 4;
    o->n_head = 4;
    o->n_embd = 256;
    o->n_ctx = 256;
    o->vocab_size = 8192;
    o->layer_norm_eps = 1e-5f;
    o->embd_pdrop = o->attn_pdrop = o->resid_pdrop = 0.1f;
    o->init_std = 0.02f;
    o->init_seed = 0;
    o->allocator = NULL;
    return KLC_OK;
}

static int check_range(const char *name, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "model option %s = %lld is out of range [%lld, %lld]", name, (long long)v,
                        (long long)lo, (long long)hi);
    return KLC_OK;
}

static int check_prob(const char *name, float p) {
    if (!(p >= 0.0f && p < 1.0f))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "model option %s = %g must be in [0, 1)", name,
                        (double)p);
    return KLC_OK;
}

int klc_model_check_options(const klc_model_options *o) {
    if (!o) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "model options are NULL");
    if (o->version == 0 || o->version > KLC_MODEL_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "model options version %u is not one this library knows (1..%d); "
                        "fill the struct with klc_model_options_init",
                        o->version, KLC_MODEL_OPTIONS_VERSION);
    KLC_TRY(check_range("n_layer", o->n_layer, 1, 1024));
    KLC_TRY(check_range("n_head", o->n_head, 1, 1024));
    KLC_TRY(check_range("n_embd", o->n_embd, 1, 65536));
    KLC_TRY(check_range("n_ctx", o->n_ctx, 1, 1 << 20));
    KLC_TRY(check_range("vocab_size", o->vocab_size, 1, 1 << 24));
    if (o->n_embd % o->n_head != 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "model option n_embd = %d is not divisible by n_head = %d", o->n_embd,
                        o->n_head);
    if (!(o->layer_norm_eps > 0.0f && o->layer_norm_eps < 1.0f))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "model option layer_norm_eps = %g must be in (0, 1)",
                        (double)o->layer_norm_eps);
    KLC_TRY(check_prob("embd_pdrop", o->embd_pdrop));
    KLC_TRY(check_prob("attn_pdrop", o->attn_pdrop));
    KLC_TRY(check_prob("resid_pdrop", o->resid_pdrop));
    if (!(o->init_std >= 0.0f && isfinite(o->init_std)))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "model option init_std = %g must be >= 0",
                        (double)o->init_std);
    /* The parameter count must fit comfortably in memory arithmetic. */
    double c = o->n_embd, n = 12.0 * c * c * o->n_layer + (o->vocab_size + o->n_ctx) * c;
    if (n > 4e10)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "model of %.3g parameters is too large", n);
    return KLC_OK;
}

int32_t klc_model_count_tensors(const klc_model_options *o) {
    return 2 + 12 * o->n_layer + 2;
}

typedef struct tensor_builder {
    klc_model *m;
    int32_t index;
    int64_t offset;
    char *names;
    size_t names_used;
} tensor_builder;

static float *add_tensor(tensor_builder *b, const char *name, int64_t d0, int64_t d1) {
    klc_tensor_info *t = &b->m->tensors[b->index++];
    size_t len = strlen(name) + 1;
    memcpy(b->names + b->names_used, name, len);
    t->name = b->names + b->names_used;
    b->names_used += len;
    t->ndim = d1 > 0 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1 > 0 ? d1 : 0;
    t->shape[2] = t->shape[3] = 0;
    t->numel = d1 > 0 ? d0 * d1 : d0;
    t->offset = b->offset;
    b->offset += t->numel;
    return (float *)(intptr_t)t->offset; /* an offset for now; rebased by bind_views */
}

/* Walks the tensor table in block order, writing names/shapes (when m->tensors is set) and
 * returning the total float count; `views` receives offsets encoded as pointers. */
static int64_t layout(klc_model *m, char *names, klc_model_tensors *views) {
    const klc_model_options *o = &m->cfg;
    const int64_t C = o->n_embd;
    tensor_builder b = {m, 0, 0, names, 0};
    char name[64];
    views->wte = add_tensor(&b, "wte.weight", o->vocab_size, C);
    views->wpe = add_tensor(&b, "wpe.weight", o->n_ctx, C);
    for (int l = 0; l < o->n_layer; l++) {
        klc_layer_tensors *h = &views->h[l];
#define T(field, suffix, d0, d1)                                                                   \
    snprintf(name, sizeof name, "h.%d.%s", l, suffix);                                             \
    h->field = add_tensor(&b, name, d0, d1)
        T(ln_1_w, "ln_1.weight", C, 0);
        T(ln_1_b, "ln_1.bias", C, 0);
        T(c_attn_w, "attn.c_attn.weight", C, 3 * C);
        T(c_attn_b, "attn.c_attn.bias", 3 * C, 0);
        T(attn_c_proj_w, "attn.c_proj.weight", C, C);
        T(attn_c_proj_b, "attn.c_proj.bias", C, 0);
        T(ln_2_w, "ln_2.weight", C, 0);
        T(ln_2_b, "ln_2.bias", C, 0);
        T(c_fc_w, "mlp.c_fc.weight", C, 4 * C);
        T(c_fc_b, "mlp.c_fc.bias", 4 * C, 0);
        T(mlp_c_proj_w, "mlp.c_proj.weight", 4 * C, C);
        T(mlp_c_proj_b, "mlp.c_proj.bias", C, 0);
#undef T
    }
    views->ln_f_w = add_tensor(&b, "ln_f.weight", C, 0);
    views->ln_f_b = add_tensor(&b, "ln_f.bias", C, 0);
    m->name_storage_bytes = b.names_used;
    return b.offset;
}

static void bind_views(klc_model_tensors *dst, const klc_model_tensors *offsets, int32_t n_layer,
                       float *base) {
#define REBASE(ptr) ((ptr) = base + (intptr_t)(ptr))
    klc_layer_tensors *h = dst->h;
    *dst = *offsets;
    dst->h = h;
    REBASE(dst->wte);
    REBASE(dst->wpe);
    REBASE(dst->ln_f_w);
    REBASE(dst->ln_f_b);
    for (int l = 0; l < n_layer; l++) {
        klc_layer_tensors t = offsets->h[l];
        float **f = (float **)&t;
        for (size_t i = 0; i < sizeof t / sizeof(float *); i++) REBASE(f[i]);
        h[l] = t;
    }
#undef REBASE
}

static void free_model(klc_model *m) {
    if (!m) return;
    klc_alloc_ctx a = m->alloc;
    klc_workspace_free(m);
    klc_free(&a, m->params, m->n_params * sizeof(float));
    klc_free(&a, m->grads, m->n_params * sizeof(float));
    klc_free(&a, m->name_storage, m->name_storage_bytes ? m->name_storage_bytes : 1);
    klc_free(&a, m->tensors, (size_t)m->n_tensors * sizeof(klc_tensor_info));
    klc_free(&a, m->p.h, (size_t)m->cfg.n_layer * sizeof(klc_layer_tensors));
    klc_free(&a, m->g.h, (size_t)m->cfg.n_layer * sizeof(klc_layer_tensors));
    klc_free(&a, m, sizeof *m);
}

int klc_model_new_zeroed(const klc_model_options *o, const klc_allocator *allocator,
                         klc_model **out) {
    KLC_TRY(klc_model_check_options(o));
    klc_alloc_ctx a;
    klc_alloc_ctx_init(&a, allocator);
    klc_model *m = klc_alloc_zeroed(&a, sizeof *m);
    if (!m) return KLC_ERR_OUT_OF_MEMORY;
    m->alloc = a;
    m->cfg = *o;
    m->cfg.allocator = NULL;
    m->n_tensors = klc_model_count_tensors(o);
    size_t lsize = (size_t)o->n_layer * sizeof(klc_layer_tensors);
    m->tensors = klc_alloc_zeroed(&a, (size_t)m->n_tensors * sizeof(klc_tensor_info));
    m->p.h = klc_alloc_zeroed(&a, lsize);
    m->g.h = klc_alloc_zeroed(&a, lsize);
    /* Names are at most "h.NNNN.attn.c_attn.weight" long. */
    size_t names_cap = (size_t)m->n_tensors * 40;
    m->name_storage = klc_alloc(&a, names_cap);
    if (!m->tensors || !m->p.h || !m->g.h || !m->name_storage) {
        m->name_storage_bytes = names_cap;
        free_model(m);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    klc_model_tensors offsets;
    offsets.h = klc_alloc_zeroed(&a, lsize);
    if (!offsets.h) {
        m->name_storage_bytes = names_cap;
        free_model(m);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    m->n_params = (size_t)layout(m, m->name_storage, &offsets);
    m->name_storage_bytes = names_cap;
    m->params = klc_alloc_zeroed(&a, m->n_params * sizeof(float));
    if (!m->params) {
        klc_free(&a, offsets.h, lsize);
        free_model(m);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    bind_views(&m->p, &offsets, o->n_layer, m->params);
    /* Gradient views are bound when the block is allocated; keep the offsets there. */
    klc_layer_tensors *gh = m->g.h;
    m->g = offsets;
    m->g.h = gh;
    memcpy(m->g.h, offsets.h, lsize);
    klc_free(&a, offsets.h, lsize);
    *out = m;
    return KLC_OK;
}

static void init_tensor(float *w, int64_t n, float std, const klc_rng *rng, uint64_t tensor) {
    for (int64_t i = 0; i < n; i++) w[i] = (float)(std * klc_rng_normal(rng, tensor, (uint64_t)i));
}

int klc_model_create(const klc_model_options *opts, klc_model **out) {
    if (out) *out = NULL;
    if (!opts || !out)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_create: NULL %s",
                        opts ? "out" : "options");
    klc_model *m;
    KLC_TRY(klc_model_new_zeroed(opts, opts->allocator, &m));
    klc_rng rng;
    klc_rng_init(&rng, opts->init_seed, KLC_STREAM_INIT);
    const float std = opts->init_std, proj_std = std / sqrtf(2.0f * (float)opts->n_layer);
    /* Each tensor draws from its own sample index, so shapes elsewhere never shift it. */
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const klc_tensor_info *t = &m->tensors[i];
        float *w = m->params + t->offset;
        const char *suffix = strrchr(t->name, '.');
        int is_ln = strstr(t->name, "ln_") != NULL;
        if (strcmp(suffix, ".bias") == 0) continue; /* zero */
        if (is_ln) {
            for (int64_t k = 0; k < t->numel; k++) w[k] = 1.0f;
        } else {
            int is_proj = strstr(t->name, "c_proj.weight") != NULL;
            init_tensor(w, t->numel, is_proj ? proj_std : std, &rng, (uint64_t)i);
        }
    }
    *out = m;
    return KLC_OK;
}

int klc_model_clone(const klc_model *src, klc_model **out) {
    if (out) *out = NULL;
    if (!src || !out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_clone: NULL argument");
    klc_model *m;
    klc_allocator user = src->alloc.a;
    KLC_TRY(klc_model_new_zeroed(&src->cfg, user.alloc ? &user : NULL, &m));
    memcpy(m->params, src->params, src->n_params * sizeof(float));
    if (src->grads) {
        if (!klc_model_grads(m, NULL)) {
            klc_model_destroy(m);
            return KLC_ERR_OUT_OF_MEMORY;
        }
        memcpy(m->grads, src->grads, src->n_params * sizeof(float));
    }
    *out = m;
    return KLC_OK;
}

void klc_model_destroy(klc_model *m) {
    free_model(m);
}

int klc_model_get_options(const klc_model *m, klc_model_options *out) {
    if (!m || !out)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_get_options: NULL argument");
    *out = m->cfg;
    out->allocator = NULL;
    return KLC_OK;
}

int32_t klc_model_num_tensors(const klc_model *m) {
    return m ? m->n_tensors : 0;
}

int klc_model_tensor_info(const klc_model *m, int32_t index, klc_tensor_info *out) {
    if (!m || !out)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_tensor_info: NULL argument");
    if (index < 0 || index >= m->n_tensors)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "tensor index %d out of range [0, %d)", index,
                        m->n_tensors);
    *out = m->tensors[index];
    return KLC_OK;
}

int32_t klc_model_find_tensor(const klc_model *m, const char *name) {
    if (!m || !name) return -1;
    if (strncmp(name, "transformer.", 12) == 0) name += 12;
    for (int32_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

float *klc_model_params(klc_model *m, size_t *count) {
    if (!m) {
        klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_params: NULL model");
        return NULL;
    }
    if (count) *count = m->n_params;
    return m->params;
}

float *klc_model_grads(klc_model *m, size_t *count) {
    if (!m) {
        klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_grads: NULL model");
        return NULL;
    }
    if (!m->grads) {
        float *g = klc_alloc_zeroed(&m->alloc, m->n_params * sizeof(float));
        if (!g) return NULL;
        m->grads = g;
        klc_model_tensors offsets = m->g;
        bind_views(&m->g, &offsets, m->cfg.n_layer, g);
    }
    if (count) *count = m->n_params;
    return m->grads;
}

int klc_model_zero_grads(klc_model *m) {
    if (!m) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_zero_grads: NULL model");
    if (!klc_model_grads(m, NULL)) return KLC_ERR_OUT_OF_MEMORY;
    memset(m->grads, 0, m->n_params * sizeof(float));
    return KLC_OK;
}
