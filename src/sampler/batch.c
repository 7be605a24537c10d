/* klc_batch: right-padded sequences and the slots the steps of training fill, in one
 * allocation made at creation so that the arrays handed out never move. */
#include "batch.h"

#include <math.h>
#include <string.h>

/* Arrays in decreasing alignment order, each rounded to 64 bytes so every view is
 * cache-line aligned. */
static size_t round64(size_t n) {
    return (n + 63) / 64 * 64;
}

typedef struct layout {
    size_t tok, seq32, seq64, seqd, phi, total;
} layout;

static bool plan(int32_t cap, int32_t max_len, int32_t n_features, layout *l) {
    size_t cells;
    if (klc_mul_overflows((size_t)cap, (size_t)max_len, &cells)) return false;
    size_t phi_n;
    if (klc_mul_overflows((size_t)cap, (size_t)n_features, &phi_n)) return false;
    if (cells > SIZE_MAX / 64 || phi_n > SIZE_MAX / 64) return false;
    l->tok = round64(cells * sizeof(int32_t));
    l->seq32 = round64((size_t)cap * sizeof(int32_t));
    l->seq64 = round64((size_t)cap * sizeof(int64_t));
    l->seqd = round64((size_t)cap * sizeof(double));
    l->phi = round64(phi_n * sizeof(double));
    /* tokens + 3 per-token float slots; 4 int32 per-sequence arrays (with the flags); sample
     * ids; 4 per-sequence doubles; phi. */
    l->total = 4 * l->tok + 4 * l->seq32 + l->seq64 + 4 * l->seqd + l->phi;
    return true;
}

int klc_batch_create(int32_t capacity, int32_t max_len, int32_t n_features,
                     const klc_allocator *allocator, klc_batch **out) {
    if (out) *out = NULL;
    if (!out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_batch_create: out is NULL");
    if (capacity < 1 || max_len < 1 || n_features < 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_batch_create: capacity = %d and max_len = %d must be >= 1, "
                        "n_features = %d >= 0",
                        capacity, max_len, n_features);
    layout l;
    if (!plan(capacity, max_len, n_features, &l))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_batch_create: %d sequences of %d tokens with %d features do not fit "
                        "in memory",
                        capacity, max_len, n_features);
    klc_alloc_ctx a;
    klc_alloc_ctx_init(&a, allocator);
    klc_batch *b = klc_alloc_zeroed(&a, sizeof *b);
    if (!b) return KLC_ERR_OUT_OF_MEMORY;
    b->alloc = a;
    b->capacity = capacity;
    b->max_len = max_len;
    b->n_features = n_features;
    b->bytes = l.total;
    b->block = klc_alloc(&a, l.total);
    if (!b->block) {
        klc_free(&a, b, sizeof *b);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    char *p = b->block;
    b->logq = (double *)p, p += l.seqd;
    b->loga = (double *)p, p += l.seqd;
    b->logpi = (double *)p, p += l.seqd;
    b->logP = (double *)p, p += l.seqd;
    b->phi = n_features ? (double *)p : NULL, p += l.phi;
    b->sample_ids = (int64_t *)p, p += l.seq64;
    b->tokens = (int32_t *)p, p += l.tok;
    b->logq_tok = (float *)p, p += l.tok;
    b->loga_tok = (float *)p, p += l.tok;
    b->logpi_tok = (float *)p, p += l.tok;
    b->lengths = (int32_t *)p, p += l.seq32;
    b->prompt_lengths = (int32_t *)p, p += l.seq32;
    b->context_ids = (int32_t *)p, p += l.seq32;
    b->seq_flags = (uint32_t *)p;
    memset(b->block, 0, l.total);
    klc_batch_reset_slots(b, capacity);
    *out = b;
    return KLC_OK;
}

void klc_batch_destroy(klc_batch *b) {
    if (!b) return;
    klc_alloc_ctx a = b->alloc;
    klc_free(&a, b->block, b->bytes);
    klc_free(&a, b, sizeof *b);
}

void klc_batch_reset_slots(klc_batch *b, int32_t n) {
    const size_t cells = (size_t)n * (size_t)b->max_len;
    for (int32_t i = 0; i < n; i++) {
        b->logq[i] = b->loga[i] = b->logpi[i] = b->logP[i] = NAN;
        b->seq_flags[i] = 0;
    }
    for (size_t k = 0; k < (size_t)n * (size_t)b->n_features; k++) b->phi[k] = NAN;
    memset(b->logq_tok, 0, cells * sizeof(float));
    memset(b->loga_tok, 0, cells * sizeof(float));
    memset(b->logpi_tok, 0, cells * sizeof(float));
}

int klc_batch_fill(klc_batch *b, const klc_seqs *s, const int32_t *context_ids) {
    if (!b || !s) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_batch_fill: NULL argument");
    if (s->n_seq < 0 || s->n_seq > b->capacity)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_batch_fill: n_seq = %d must be in [0, capacity = %d]", s->n_seq,
                        b->capacity);
    if (s->n_seq > 0 && (!s->tokens || !s->lengths || s->max_len < 1))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_batch_fill: sequences need tokens, lengths and max_len >= 1");
    for (int32_t i = 0; i < s->n_seq; i++) {
        const int32_t len = s->lengths[i];
        if (len < 1 || len > s->max_len || len > b->max_len)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_batch_fill: sequence %d: length %d must be in [1, %d] (the "
                            "sequences' max_len %d, the batch's %d)",
                            i, len, s->max_len < b->max_len ? s->max_len : b->max_len, s->max_len,
                            b->max_len);
        if (s->score_from && (s->score_from[i] < 1 || s->score_from[i] > len))
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_batch_fill: sequence %d: prompt length (score_from) %d must be "
                            "in [1, length = %d]",
                            i, s->score_from[i], len);
        const int32_t *tok = s->tokens + (int64_t)i * s->max_len;
        for (int32_t t = 0; t < len; t++)
            if (tok[t] < 0)
                return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                                "klc_batch_fill: sequence %d, position %d: token id %d is "
                                "negative",
                                i, t, tok[t]);
        if (context_ids && context_ids[i] < 0)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_batch_fill: sequence %d: context id %d is negative", i,
                            context_ids[i]);
    }
    for (int32_t i = 0; i < s->n_seq; i++) {
        const int32_t len = s->lengths[i];
        int32_t *dst = b->tokens + (int64_t)i * b->max_len;
        memcpy(dst, s->tokens + (int64_t)i * s->max_len, sizeof(int32_t) * (size_t)len);
        /* Padding is never read as input; zeros keep dumps of the batch readable. */
        memset(dst + len, 0, sizeof(int32_t) * (size_t)(b->max_len - len));
        b->lengths[i] = len;
        b->prompt_lengths[i] = s->score_from ? s->score_from[i] : 1;
        b->sample_ids[i] = s->sample_ids ? s->sample_ids[i] : i;
        b->context_ids[i] = context_ids ? context_ids[i] : 0;
    }
    klc_batch_reset_slots(b, s->n_seq);
    b->n_seq = s->n_seq;
    b->flags = 0;
    return KLC_OK;
}

int klc_batch_clear(klc_batch *b) {
    if (!b) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_batch_clear: NULL batch");
    b->n_seq = 0;
    b->flags = 0;
    return KLC_OK;
}

int klc_batch_seqs(const klc_batch *b, klc_seqs *out) {
    if (!b || !out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_batch_seqs: NULL argument");
    out->n_seq = b->n_seq;
    out->max_len = b->max_len;
    out->tokens = b->tokens;
    out->lengths = b->lengths;
    out->score_from = b->prompt_lengths;
    out->sample_ids = b->sample_ids;
    return KLC_OK;
}

#define SIZE_GETTER(name, field)                                                                   \
    int32_t klc_batch_##name(const klc_batch *b) {                                                 \
        if (!b) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_batch_" #name ": NULL batch");      \
        return b->field;                                                                           \
    }
SIZE_GETTER(size, n_seq)
SIZE_GETTER(capacity, capacity)
SIZE_GETTER(max_len, max_len)
SIZE_GETTER(n_features, n_features)

uint32_t klc_batch_flags(const klc_batch *b) {
    return b ? b->flags : 0;
}

int klc_batch_set_flags(klc_batch *b, uint32_t flags) {
    if (!b) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_batch_set_flags: NULL batch");
    b->flags = flags;
    return KLC_OK;
}

#define ARRAY_GETTER(type, name)                                                                   \
    type *klc_batch_##name(klc_batch *b) {                                                         \
        return b ? b->name : NULL;                                                                 \
    }
ARRAY_GETTER(int32_t, tokens)
ARRAY_GETTER(int32_t, lengths)
ARRAY_GETTER(int32_t, prompt_lengths)
ARRAY_GETTER(int32_t, context_ids)
ARRAY_GETTER(int64_t, sample_ids)
ARRAY_GETTER(uint32_t, seq_flags)
ARRAY_GETTER(double, logq)
ARRAY_GETTER(double, loga)
ARRAY_GETTER(double, logpi)
ARRAY_GETTER(double, logP)
ARRAY_GETTER(double, phi)
ARRAY_GETTER(float, logq_tok)
ARRAY_GETTER(float, loga_tok)
ARRAY_GETTER(float, logpi_tok)
