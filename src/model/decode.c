/* Batched incremental decoding with a KV cache. Each step advances any subset of rows by
 * one token; keys and values of a (layer, row, head) are contiguous over positions, so the
 * attention of a step reads them in one sweep. With one row the products are
 * matrix-vector products (sgemv streams the weights at memory speed; sgemm with one row
 * does not). */
#include "decode.h"
#include "decode_gemm.h"
#include "keep.h"
#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

static size_t cache_floats(int64_t L, int64_t rows, int64_t H, int64_t T, int64_t hs) {
    return (size_t)(L * rows * H * T * hs);
}

int klc_kv_cache_create(const klc_model *m, int32_t max_rows, int32_t max_len,
                        const klc_allocator *allocator, klc_kv_cache **out) {
    if (out) *out = NULL;
    if (!m || !out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_kv_cache_create: NULL argument");
    if (max_rows < 1 || max_len < 1 || max_len > m->cfg.n_ctx)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_kv_cache_create: max_rows = %d must be >= 1 and max_len = %d in "
                        "[1, n_ctx = %d]",
                        max_rows, max_len, m->cfg.n_ctx);
    klc_alloc_ctx a;
    klc_alloc_ctx_init(&a, allocator);
    klc_kv_cache *c = klc_alloc_zeroed(&a, sizeof *c);
    if (!c) return KLC_ERR_OUT_OF_MEMORY;
    c->alloc = a;
    c->n_layer = m->cfg.n_layer;
    c->n_head = m->cfg.n_head;
    c->n_embd = m->cfg.n_embd;
    c->head_dim = m->cfg.n_embd / m->cfg.n_head;
    c->vocab_size = m->cfg.vocab_size;
    c->max_rows = max_rows;
    c->max_len = max_len;
    c->threads = omp_get_max_threads();
    const size_t kv = cache_floats(c->n_layer, max_rows, c->n_head, max_len, c->head_dim);
    const size_t C = (size_t)c->n_embd, rows = (size_t)max_rows;
    const size_t head = klc_decode_lm_head_scratch(max_rows, c->n_embd, c->threads);
    const size_t total = 2 * kv + rows * C * 4 + rows * 3 * C + rows * 4 * C + 2 * rows +
                         (size_t)c->threads * (size_t)max_len + head + (size_t)max_rows;
    c->bytes = total * sizeof(float);
    c->block = klc_alloc(&a, c->bytes);
    if (!c->block) {
        klc_free(&a, c, sizeof *c);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    float *p = c->block;
    c->k = p, p += kv;
    c->v = p, p += kv;
    c->x = p, p += rows * C;
    c->ln = p, p += rows * C;
    c->atty = p, p += rows * C;
    c->tmp = p, p += rows * C;
    c->qkv = p, p += rows * 3 * C;
    c->fch = p, p += rows * 4 * C;
    c->mean = p, p += rows;
    c->rstd = p, p += rows;
    c->scores = p, p += (size_t)c->threads * (size_t)max_len;
    c->head_scratch = p, p += head;
    c->len = (int32_t *)p;
    memset(c->len, 0, sizeof(int32_t) * rows);
    *out = c;
    return KLC_OK;
}

void klc_kv_cache_destroy(klc_kv_cache *c) {
    if (!c) return;
    klc_alloc_ctx a = c->alloc;
    klc_free(&a, c->block, c->bytes);
    klc_free(&a, c, sizeof *c);
}

int klc_kv_cache_reset(klc_kv_cache *c) {
    if (!c) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_kv_cache_reset: NULL cache");
    memset(c->len, 0, sizeof(int32_t) * (size_t)c->max_rows);
    return KLC_OK;
}

int32_t klc_kv_cache_length(const klc_kv_cache *c, int32_t row) {
    if (!c) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_kv_cache_length: NULL cache");
    if (row < 0 || row >= c->max_rows)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "row %d out of range [0, %d)", row, c->max_rows);
    return c->len[row];
}

size_t klc_kv_cache_bytes(const klc_kv_cache *c) {
    return c ? c->bytes + sizeof *c : 0;
}

/* The keys and the values of (layer, row, head): [max_len, head_dim] each, so that the
 * positions a step attends to are one contiguous prefix. */
static inline float *cache_k(const klc_kv_cache *c, int l, int row, int h) {
    return c->k + ((((int64_t)l * c->max_rows + row) * c->n_head + h) * c->max_len) * c->head_dim;
}
static inline float *cache_v(const klc_kv_cache *c, int l, int row, int h) {
    return c->v + ((((int64_t)l * c->max_rows + row) * c->n_head + h) * c->max_len) * c->head_dim;
}

void klc_kv_cache_store_prompts(klc_kv_cache *c, int l, const float *qkv, const klc_activations *a,
                                int32_t n_seq) {
    const int C = c->n_embd, hs = c->head_dim;
#pragma omp parallel for schedule(static) if ((int64_t)n_seq * C > KLC_PAR_MIN_WORK / 64)
    for (int32_t b = 0; b < n_seq; b++)
        for (int h = 0; h < c->n_head; h++) {
            float *K = cache_k(c, l, b, h), *V = cache_v(c, l, b, h);
            for (int32_t t = 0; t < a->len[b]; t++) {
                const float *src = qkv + (a->row_off[b] + t) * 3 * C + h * hs;
                memcpy(K + (int64_t)t * hs, src + C, sizeof(float) * (size_t)hs);
                memcpy(V + (int64_t)t * hs, src + 2 * C, sizeof(float) * (size_t)hs);
            }
        }
}

/* out[n,N] = inp[n,K] W[K,N] + bias: a matrix-vector product when n == 1. */
static void project(float *out, const float *inp, const float *W, const float *bias, int n, int K,
                    int N) {
    if (n == 1) {
        memcpy(out, bias, sizeof(float) * (size_t)N);
        cblas_sgemv(CblasRowMajor, CblasTrans, K, N, 1.0f, W, N, inp, 1, 1.0f, out, 1);
    } else {
        klc_decode_matmul(out, inp, W, bias, n, K, N);
    }
}

/* One query per (row, head) against the row's cached keys, positions 0..pos: a dot product
 * per position over contiguous memory (the cache of a step is too large for the caches,
 * so reading only the positions in use, in order, is what counts). */
static inline __attribute__((always_inline)) void
attend_body(float *restrict out, const float *restrict q, const float *restrict K,
            const float *restrict V, int pos, int hs, float scale, float *restrict scores,
            float *restrict att, int att_len) {
    const int n = pos + 1;
    float mx = -INFINITY;
    for (int s = 0; s < n; s++) {
        const float *k = K + (int64_t)s * hs;
        float d = 0.0f;
#pragma omp simd reduction(+ : d)
        for (int i = 0; i < hs; i++) d += q[i] * k[i];
        scores[s] = d * scale;
        mx = scores[s] > mx ? scores[s] : mx;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int s = 0; s < n; s++) {
        scores[s] = klc_fast_expf(scores[s] - mx);
        sum += scores[s];
    }
    const float inv = 1.0f / sum;
    if (att) { /* kept for the backward: the row of the training forward's causal softmax */
        for (int s = 0; s < n; s++) att[s] = scores[s] * inv;
        for (int s = n; s < att_len; s++) att[s] = 0.0f;
    }
    for (int i = 0; i < hs; i++) out[i] = 0.0f;
    for (int s = 0; s < n; s++) {
        const float p = scores[s] * inv, *v = V + (int64_t)s * hs;
#pragma omp simd
        for (int i = 0; i < hs; i++) out[i] += p * v[i];
    }
}

/* GPT-2's heads are 64 wide at every size: with the width known, the output and the
 * query stay in registers. */
static KLC_HOT void attend_64(float *restrict out, const float *restrict q, const float *restrict K,
                              const float *restrict V, int pos, float scale, float *restrict scores,
                              float *restrict att, int att_len) {
    attend_body(out, q, K, V, pos, 64, scale, scores, att, att_len);
}

static KLC_HOT void attend_any(float *restrict out, const float *restrict q,
                               const float *restrict K, const float *restrict V, int pos, int hs,
                               float scale, float *restrict scores, float *restrict att,
                               int att_len) {
    attend_body(out, q, K, V, pos, hs, scale, scores, att, att_len);
}

static void attend_one(float *restrict out, const float *restrict q, const float *restrict K,
                       const float *restrict V, int pos, int hs, float scale,
                       float *restrict scores, float *restrict att, int att_len) {
    if (hs == 64)
        attend_64(out, q, K, V, pos, scale, scores, att, att_len);
    else
        attend_any(out, q, K, V, pos, hs, scale, scores, att, att_len);
}

int klc_model_decode(klc_model *m, klc_kv_cache *c, int32_t n, const int32_t *rows,
                     const int32_t *tokens, float *logits) {
    if (!m || !c || !rows || !tokens)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_decode: NULL argument");
    if (c->n_layer != m->cfg.n_layer || c->n_embd != m->cfg.n_embd || c->n_head != m->cfg.n_head)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_decode: the cache was made for a "
                                                  "model of another shape");
    if (n < 1 || n > c->max_rows)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_decode: n = %d must be in [1, %d]", n,
                        c->max_rows);
    if (omp_get_max_threads() > c->threads)
        return klc_fail(KLC_ERR_STATE,
                        "klc_model_decode: the cache was made for %d threads and %d are now "
                        "set; create the cache after klc_set_num_threads",
                        c->threads, omp_get_max_threads());
    for (int32_t j = 0; j < n; j++) {
        if (rows[j] < 0 || rows[j] >= c->max_rows)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_model_decode: rows[%d] = %d out of range [0, %d)", j, rows[j],
                            c->max_rows);
        if (c->len[rows[j]] >= c->max_len)
            return klc_fail(KLC_ERR_STATE, "klc_model_decode: row %d is full (%d tokens)", rows[j],
                            c->max_len);
        if (tokens[j] < 0 || tokens[j] >= m->cfg.vocab_size)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_model_decode: tokens[%d] = %d is outside the vocabulary [0, %d)",
                            j, tokens[j], m->cfg.vocab_size);
        for (int32_t i = 0; i < j; i++)
            if (rows[i] == rows[j])
                return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_decode: row %d appears twice",
                                rows[j]);
    }
    return klc_decode_run(m, c, n, rows, tokens, logits, NULL);
}

int klc_decode_run(klc_model *m, klc_kv_cache *c, int32_t n, const int32_t *rows,
                   const int32_t *tokens, float *logits, const int64_t *keep) {
    const int C = m->cfg.n_embd, H = m->cfg.n_head, hs = C / H;
    const float eps = m->cfg.layer_norm_eps, scale = 1.0f / sqrtf((float)hs);
    klc_activations *ka = keep ? m->ws.acts : NULL; /* the training workspace, when keeping */
    float *mean = keep ? c->mean : NULL, *rstd = keep ? c->rstd : NULL;
    const int32_t stride = m->kept.stride;
    for (int32_t j = 0; j < n; j++) {
        const float *te = m->p.wte + (int64_t)tokens[j] * C;
        const float *pe = m->p.wpe + (int64_t)c->len[rows[j]] * C;
        for (int i = 0; i < C; i++) c->x[(int64_t)j * C + i] = te[i] + pe[i];
    }
    if (ka) klc_keep_rows(ka->encoded, C, c->x, keep, n);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const klc_layer_tensors *w = &m->p.h[l];
        klc_layer_acts *L = ka ? &ka->layers[l] : NULL;
        klc_layernorm_forward(c->ln, mean, rstd, c->x, w->ln_1_w, w->ln_1_b, n, C, eps);
        project(c->qkv, c->ln, w->c_attn_w, w->c_attn_b, n, C, 3 * C);
        if (L) {
            klc_keep_rows(L->ln1, C, c->ln, keep, n);
            klc_keep_rows(L->ln1_mean, 1, mean, keep, n);
            klc_keep_rows(L->ln1_rstd, 1, rstd, keep, n);
            klc_keep_rows(L->qkv, 3 * C, c->qkv, keep, n);
        }
#pragma omp parallel for schedule(static) if ((int64_t)n * C * c->len[rows[0]] > KLC_PAR_MIN_WORK)
        for (int64_t it = 0; it < (int64_t)n * H; it++) {
            const int j = (int)(it / H), h = (int)(it % H), row = rows[j];
            const int pos = c->len[row];
            const float *q = c->qkv + (int64_t)j * 3 * C + h * hs;
            float *K = cache_k(c, l, row, h), *V = cache_v(c, l, row, h);
            if (it + 1 < (int64_t)n * H) { /* the next item's cache, while this one computes */
                const int jn = (int)((it + 1) / H), hn = (int)((it + 1) % H);
                const char *kn = (const char *)cache_k(c, l, rows[jn], hn);
                const char *vn = (const char *)cache_v(c, l, rows[jn], hn);
                const int64_t bytes = (int64_t)(c->len[rows[jn]] + 1) * hs * (int64_t)sizeof(float);
                for (int64_t o = 0; o < bytes; o += 64) {
                    __builtin_prefetch(kn + o);
                    __builtin_prefetch(vn + o);
                }
            }
            memcpy(K + (int64_t)pos * hs, q + C, sizeof(float) * (size_t)hs);
            memcpy(V + (int64_t)pos * hs, q + 2 * C, sizeof(float) * (size_t)hs);
            float *att = L ? klc_keep_att_row(m, l, (int32_t)(keep[j] / stride), h,
                                              (int32_t)(keep[j] % stride))
                           : NULL;
            attend_one(c->atty + (int64_t)j * C + h * hs, q, K, V, pos, hs, scale,
                       c->scores + (int64_t)omp_get_thread_num() * c->max_len, att, stride);
        }
        project(c->tmp, c->atty, w->attn_c_proj_w, w->attn_c_proj_b, n, C, C);
        klc_add_inplace(c->x, c->tmp, (int64_t)n * C);
        klc_layernorm_forward(c->ln, mean, rstd, c->x, w->ln_2_w, w->ln_2_b, n, C, eps);
        project(c->fch, c->ln, w->c_fc_w, w->c_fc_b, n, C, 4 * C);
        if (L) {
            klc_keep_rows(L->atty, C, c->atty, keep, n);
            klc_keep_rows(L->res2, C, c->x, keep, n);
            klc_keep_rows(L->ln2, C, c->ln, keep, n);
            klc_keep_rows(L->ln2_mean, 1, mean, keep, n);
            klc_keep_rows(L->ln2_rstd, 1, rstd, keep, n);
            klc_keep_rows(L->fch, 4 * C, c->fch, keep, n);
        }
        klc_gelu_forward_inplace(c->fch, (int64_t)n * 4 * C);
        project(c->tmp, c->fch, w->mlp_c_proj_w, w->mlp_c_proj_b, n, 4 * C, C);
        klc_add_inplace(c->x, c->tmp, (int64_t)n * C);
        if (L) {
            klc_keep_rows(L->fch_gelu, 4 * C, c->fch, keep, n);
            klc_keep_rows(L->res3, C, c->x, keep, n);
        }
    }
    for (int32_t j = 0; j < n; j++) c->len[rows[j]]++;
    if (!logits && !ka) return KLC_OK;
    klc_layernorm_forward(c->ln, mean, rstd, c->x, m->p.ln_f_w, m->p.ln_f_b, n, C, eps);
    if (ka) {
        klc_keep_rows(ka->lnf, C, c->ln, keep, n);
        klc_keep_rows(ka->lnf_mean, 1, mean, keep, n);
        klc_keep_rows(ka->lnf_rstd, 1, rstd, keep, n);
    }
    if (!logits) return KLC_OK;
    const int V = m->cfg.vocab_size;
    if (n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, V, C, 1.0f, m->p.wte, C, c->ln, 1, 0.0f, logits,
                    1);
    else
        klc_decode_lm_head(logits, c->ln, m->p.wte, n, C, V, c->head_scratch);
    return KLC_OK;
}

int klc_model_prefill(klc_model *m, klc_kv_cache *c, const klc_seqs *s, float *logits) {
    if (!m || !c || !s)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_prefill: NULL argument");
    if (c->n_layer != m->cfg.n_layer || c->n_embd != m->cfg.n_embd || c->n_head != m->cfg.n_head)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_prefill: the cache was made for a "
                                                  "model of another shape");
    if (s->n_seq < 1 || s->n_seq > c->max_rows)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_model_prefill: n_seq = %d must be in [1, %d]", s->n_seq, c->max_rows);
    if (s->max_len > c->max_len)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_model_prefill: max_len = %d exceeds the cache's %d positions",
                        s->max_len, c->max_len);
    for (int32_t b = 0; b < s->n_seq; b++)
        if (c->len[b] != 0)
            return klc_fail(KLC_ERR_STATE, "klc_model_prefill: row %d is not empty", b);
    m->prefill_cache = c;
    int st = klc_model_run_forward(m, s, NULL, 0, KLC_LM_NONE, NULL, NULL);
    m->prefill_cache = NULL;
    if (st != KLC_OK) return st;
    const klc_activations *a = m->ws.acts;
    const int C = m->cfg.n_embd;
    for (int32_t b = 0; b < s->n_seq; b++) {
        c->len[b] = s->lengths[b];
        memcpy(c->x + (int64_t)b * C, a->lnf + (a->row_off[b] + a->len[b] - 1) * C,
               sizeof(float) * (size_t)C);
    }
    if (logits)
        klc_decode_lm_head(logits, c->x, m->p.wte, s->n_seq, C, m->cfg.vocab_size, c->head_scratch);
    return KLC_OK;
}
