/* Creating a sampler: every buffer a sampling call needs is sized here from max_rows,
 * max_len and max_prompt_len, and the model's prefill buffers are reserved, so that calls
 * never allocate. */
#include "draw.h"
#include "sampler.h"
#include "model/model.h"

#include <omp.h>
#include <string.h>

int klc_sampler_options_init(klc_sampler_options *o, uint32_t version) {
    if (!o) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_sampler_options_init: NULL options");
    if (version < 1 || version > KLC_SAMPLER_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_sampler_options_init: unknown version %u (this library knows 1..%d)",
                        version, KLC_SAMPLER_OPTIONS_VERSION);
    memset(o, 0, sizeof *o);
    o->version = version;
    o->max_rows = 32;
    return KLC_OK;
}

/* Resolves the defaults and checks the sizes against the model. */
static int resolve(const klc_model *m, const klc_sampler_options *o, int32_t *rows, int32_t *len,
                   int32_t *plen) {
    const int32_t n_ctx = m->cfg.n_ctx;
    if (o->version < 1 || o->version > KLC_SAMPLER_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_sampler_create: options version %u unknown; fill them with "
                        "klc_sampler_options_init",
                        o->version);
    if (o->max_rows < 1)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_sampler_create: max_rows = %d must be >= 1",
                        o->max_rows);
    *rows = o->max_rows;
    *len = o->max_len ? o->max_len : (n_ctx < 64 ? n_ctx : 64);
    if (*len < 2 || *len > n_ctx)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_sampler_create: max_len = %d must be in [2, n_ctx = %d] (a prompt "
                        "token and one new token at least, within the model's positions)",
                        *len, n_ctx);
    *plen = o->max_prompt_len ? o->max_prompt_len : (*len / 2 > 1 ? *len / 2 : 1);
    if (*plen < 1 || *plen >= *len)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_sampler_create: max_prompt_len = %d must be in [1, max_len - 1 = %d]",
                        *plen, *len - 1);
    return KLC_OK;
}

static size_t round64(size_t n) {
    return (n + 63) / 64 * 64;
}

int klc_sampler_create(klc_model *m, const klc_sampler_options *o, klc_sampler **out) {
    if (out) *out = NULL;
    if (!m || !o || !out)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_sampler_create: NULL argument");
    int32_t rows = 0, len = 0, plen = 0;
    KLC_TRY(resolve(m, o, &rows, &len, &plen));
    const int32_t V = m->cfg.vocab_size;
    const int threads = omp_get_max_threads() > 0 ? omp_get_max_threads() : 1;
    const size_t R = (size_t)rows, T = (size_t)threads, VV = (size_t)V;
    const size_t sz_logits = round64(R * VV * sizeof(float));
    const size_t sz_cands = round64(T * VV * sizeof(klc_cand));
    const size_t work_floats = round64(klc_draw_work_floats(V) * sizeof(float)) / sizeof(float);
    const size_t sz_work = T * work_floats * sizeof(float);
    const size_t sz_prompts = round64(R * (size_t)plen * sizeof(int32_t));
    const size_t sz_row = round64(R * sizeof(int32_t));
    const size_t sz_rowd = round64(R * sizeof(double));
    const size_t total = sz_logits + sz_cands + sz_work + sz_prompts + 6 * sz_row + 2 * sz_rowd +
                         round64(R * sizeof(int));
    /* Reserve the model's buffers for the largest prefill first: it is the step most
     * likely to fail for lack of memory, and it changes nothing the model computes. */
    KLC_TRY(klc_model_reserve(m, rows, plen, 0));
    klc_alloc_ctx a;
    klc_alloc_ctx_init(&a, o->allocator);
    klc_sampler *s = klc_alloc_zeroed(&a, sizeof *s);
    if (!s) return KLC_ERR_OUT_OF_MEMORY;
    s->alloc = a;
    s->model = m;
    s->vocab = V;
    s->n_ctx = m->cfg.n_ctx;
    s->max_rows = rows;
    s->max_len = len;
    s->max_prompt_len = plen;
    s->threads = threads;
    s->work_stride = work_floats;
    s->bytes = total;
    s->block = klc_alloc(&a, total);
    int st = s->block ? klc_kv_cache_create(m, rows, len, o->allocator, &s->cache)
                      : KLC_ERR_OUT_OF_MEMORY;
    if (st != KLC_OK) {
        klc_sampler_destroy(s);
        return st;
    }
    char *p = s->block;
    s->logits = (float *)p, p += sz_logits;
    s->cands = (klc_cand *)p, p += sz_cands;
    s->work = (float *)p, p += sz_work;
    s->drawn_lp = (double *)p, p += sz_rowd;
    s->keep_dest = (int64_t *)p, p += sz_rowd;
    s->prompt_tokens = (int32_t *)p, p += sz_prompts;
    s->prompt_lengths = (int32_t *)p, p += sz_row;
    s->row_seq = (int32_t *)p, p += sz_row;
    s->row_limit = (int32_t *)p, p += sz_row;
    s->active = (int32_t *)p, p += sz_row;
    s->feed = (int32_t *)p, p += sz_row;
    s->drawn = (int32_t *)p, p += sz_row;
    s->status = (int *)p;
    *out = s;
    return KLC_OK;
}

void klc_sampler_destroy(klc_sampler *s) {
    if (!s) return;
    klc_alloc_ctx a = s->alloc;
    klc_kv_cache_destroy(s->cache);
    klc_free(&a, s->block, s->bytes);
    klc_free(&a, s, sizeof *s);
}

size_t klc_sampler_bytes(const klc_sampler *s) {
    return s ? sizeof *s + s->bytes + klc_kv_cache_bytes(s->cache) : 0;
}
