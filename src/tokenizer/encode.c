/* Encoding (pieces -> BPE, through a per-handle cache of piece results) and decoding. */
#include "tokenizer/tokenizer.h"

#include <string.h>

static int cache_reserve_ids(klc_tokenizer *t, size_t more) {
    if (t->cache_ids_len + more <= t->cache_ids_cap) return KLC_OK;
    size_t cap = t->cache_ids_cap ? t->cache_ids_cap : 16384;
    while (cap < t->cache_ids_len + more) cap *= 2;
    int32_t *ids = klc_alloc(&t->ac, cap * sizeof(int32_t));
    if (!ids) return KLC_ERR_OUT_OF_MEMORY;
    if (t->cache_ids_len) memcpy(ids, t->cache_ids, t->cache_ids_len * sizeof(int32_t));
    klc_free(&t->ac, t->cache_ids, t->cache_ids_cap * sizeof(int32_t));
    t->cache_ids = ids;
    t->cache_ids_cap = cap;
    return KLC_OK;
}

/* The ids of one piece: from the cache, or by BPE (then remembered). *ids points into the
 * cache or into tmp (room for KLC_BPE_CACHE_MAX_PIECE ids) and is valid until the next
 * call. */
static int piece_ids(klc_tokenizer *t, const uint8_t *p, size_t n, int32_t *tmp,
                     const int32_t **ids, size_t *count) {
    uint64_t h = klc_hash_bytes(p, n);
    klc_bytesmap_slot *s = klc_bytesmap_find(&t->cache, p, n, h);
    if (s) {
        *ids = t->cache_ids + (s->val >> 8);
        *count = (size_t)(s->val & 0xff);
        return KLC_OK;
    }
    KLC_TRY(klc_bpe_piece(t, p, n, tmp, count));
    *ids = tmp;
    /* Bounded: a stream of distinct pieces (hostile or just huge input) must not grow
     * the handle without limit, and starting afresh costs only a few misses. */
    if (t->cache.count >= KLC_BPE_CACHE_MAX_ENTRIES) {
        klc_bytesmap_clear(&t->cache);
        t->cache_ids_len = 0;
    }
    KLC_TRY(cache_reserve_ids(t, *count));
    uint64_t val = ((uint64_t)t->cache_ids_len << 8) | *count;
    KLC_TRY(klc_bytesmap_insert(&t->cache, p, n, h, val, NULL));
    memcpy(t->cache_ids + t->cache_ids_len, tmp, *count * sizeof(int32_t));
    t->cache_ids_len += *count;
    return KLC_OK;
}

int klc_tokenizer_encode(klc_tokenizer *t, const char *text, size_t len, uint32_t flags,
                         int32_t *ids, size_t capacity, size_t *n_out) {
    KLC_CHECK_ARG(t && n_out && (text || len == 0) && (ids || capacity == 0));
    *n_out = 0;
    if (flags & ~(uint32_t)(KLC_TOKENIZE_EOT_BEFORE | KLC_TOKENIZE_EOT_AFTER))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_tokenizer_encode: unknown flags 0x%x",
                        (unsigned)flags);
    if (flags && t->eot_id < 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_tokenizer_encode: an end-of-text flag was given but the "
                        "vocabulary has no '<|endoftext|>' token");
    size_t total = 0;
    if (flags & KLC_TOKENIZE_EOT_BEFORE) {
        if (capacity > 0) ids[0] = t->eot_id;
        total = 1;
    }
    int32_t tmp[KLC_BPE_CACHE_MAX_PIECE];
    int32_t *big = NULL;
    size_t big_cap = 0;
    int st = KLC_OK;
    klc_pretok_iter it;
    klc_pretok_begin(&it, text, len);
    size_t start, n;
    while ((st = klc_pretok_next(&t->pre, &it, &start, &n)) > 0) {
        const uint8_t *p = (const uint8_t *)text + start;
        const int32_t *pid;
        size_t cnt;
        if (n <= KLC_BPE_CACHE_MAX_PIECE) {
            if ((st = piece_ids(t, p, n, tmp, &pid, &cnt))) break;
        } else {
            if (n > big_cap) {
                klc_free(&t->ac, big, big_cap * sizeof(int32_t));
                big_cap = n;
                big = klc_alloc(&t->ac, big_cap * sizeof(int32_t));
                if (!big) {
                    big_cap = 0;
                    st = KLC_ERR_OUT_OF_MEMORY;
                    break;
                }
            }
            if ((st = klc_bpe_piece(t, p, n, big, &cnt))) break;
            pid = big;
        }
        if (total + cnt <= capacity) {
            memcpy(ids + total, pid, cnt * sizeof(int32_t));
        } else if (total < capacity) {
            memcpy(ids + total, pid, (capacity - total) * sizeof(int32_t));
        }
        total += cnt;
    }
    klc_free(&t->ac, big, big_cap * sizeof(int32_t));
    if (st < 0) return st;
    if (flags & KLC_TOKENIZE_EOT_AFTER) {
        if (total < capacity) ids[total] = t->eot_id;
        total++;
    }
    *n_out = total;
    if (total > capacity)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_tokenizer_encode: %zu ids needed, capacity is %zu", total, capacity);
    return KLC_OK;
}

int klc_tokenizer_decode(const klc_tokenizer *t, const int32_t *ids, size_t n, char *buf,
                         size_t capacity, size_t *len_out) {
    KLC_CHECK_ARG(t && len_out && (ids || n == 0) && (buf || capacity == 0));
    *len_out = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_tokens)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_tokenizer_decode: id %d at index %zu is out of range 0..%d",
                            ids[i], i, t->n_tokens - 1);
        total += t->tok_off[ids[i] + 1] - t->tok_off[ids[i]];
    }
    size_t o = 0;
    for (size_t i = 0; i < n && o < capacity; i++) {
        size_t len = t->tok_off[ids[i] + 1] - t->tok_off[ids[i]];
        if (len > capacity - o) len = capacity - o;
        memcpy(buf + o, t->tok_bytes + t->tok_off[ids[i]], len);
        o += len;
    }
    *len_out = total;
    if (total > capacity)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_tokenizer_decode: %zu bytes needed, capacity is %zu", total, capacity);
    return KLC_OK;
}
