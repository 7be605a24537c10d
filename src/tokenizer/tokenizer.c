/* The tokenizer handle: its vocabulary, merges, and accessors. */
#include "tokenizer/tokenizer.h"

#include "tokenizer/bytes.h"

#include <stdio.h>
#include <string.h>

static const char eot_text[] = "<|endoftext|>";

void klc_tok_describe(const char *bytes, size_t n, char *out, size_t cap) {
    enum { SHOWN = 40 };
    char chars[2 * SHOWN + 1];
    size_t m = klc_bytes_to_chars((const uint8_t *)bytes, n < SHOWN ? n : SHOWN, chars);
    chars[m] = '\0';
    snprintf(out, cap, "'%s%s'", chars, n > SHOWN ? "..." : "");
}

int klc_tok_create(const klc_alloc_ctx *ac, int32_t n_tokens, const uint32_t *off,
                   const char *bytes, klc_tokenizer **out) {
    *out = NULL;
    if (n_tokens < 256 || n_tokens > (1 << 24))
        return klc_fail(KLC_ERR_FORMAT, "%d tokens; a byte-level vocabulary has 256..%d", n_tokens,
                        1 << 24);
    klc_tokenizer *t = klc_alloc_zeroed(ac, sizeof *t);
    if (!t) return KLC_ERR_OUT_OF_MEMORY;
    t->ac = *ac;
    t->n_tokens = n_tokens;
    t->eot_id = -1;
    for (int i = 0; i < 256; i++) t->byte_token[i] = -1;
    int st;
    size_t total = off[n_tokens];
    t->tok_off = klc_alloc(ac, ((size_t)n_tokens + 1) * sizeof(uint32_t));
    t->tok_bytes = klc_alloc(ac, total);
    t->tok_bytes_len = total;
    if (!t->tok_off || !t->tok_bytes) {
        st = KLC_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    memcpy(t->tok_off, off, ((size_t)n_tokens + 1) * sizeof(uint32_t));
    memcpy(t->tok_bytes, bytes, total);
    if ((st = klc_bytesmap_init(&t->token_ids, ac, (size_t)n_tokens)) ||
        (st = klc_u64map_init(&t->pair_rank, ac, (size_t)n_tokens)) ||
        (st = klc_bytesmap_init(&t->cache, ac, 4096)) || (st = klc_pretok_init(&t->pre)))
        goto fail;
    for (int32_t i = 0; i < n_tokens; i++) {
        const char *b = bytes + off[i];
        size_t n = off[i + 1] - off[i];
        char desc[128];
        if (n == 0) {
            st = klc_fail(KLC_ERR_FORMAT, "token %d is empty", i);
            goto fail;
        }
        uint64_t h = klc_hash_bytes(b, n);
        klc_bytesmap_slot *s = klc_bytesmap_find(&t->token_ids, b, n, h);
        if (s) {
            klc_tok_describe(b, n, desc, sizeof desc);
            st = klc_fail(KLC_ERR_FORMAT, "token %s has two ids, %d and %d", desc, (int)s->val, i);
            goto fail;
        }
        if ((st = klc_bytesmap_insert(&t->token_ids, b, n, h, (uint64_t)i, NULL))) goto fail;
        if (n == 1) t->byte_token[(uint8_t)b[0]] = i;
        if (n == sizeof eot_text - 1 && memcmp(b, eot_text, n) == 0) t->eot_id = i;
    }
    for (int i = 0; i < 256; i++) {
        if (t->byte_token[i] < 0) {
            char desc[128];
            uint8_t b = (uint8_t)i;
            klc_tok_describe((const char *)&b, 1, desc, sizeof desc);
            st = klc_fail(KLC_ERR_FORMAT,
                          "no token for byte 0x%02X (%s): byte-level BPE needs all 256", i, desc);
            goto fail;
        }
    }
    *out = t;
    return KLC_OK;
fail:
    klc_tokenizer_destroy(t);
    return st;
}

int klc_tok_add_merge(klc_tokenizer *t, int32_t left, int32_t right, int32_t *other) {
    uint64_t key = klc_pair_key(left, right);
    uint64_t *r = klc_u64map_find(&t->pair_rank, key);
    if (r) {
        *other = (int32_t)*r;
        return KLC_TOK_MERGE_DUPLICATE;
    }
    size_t ln = t->tok_off[left + 1] - t->tok_off[left];
    size_t rn = t->tok_off[right + 1] - t->tok_off[right];
    char stack[256], *cat = stack;
    if (ln + rn > sizeof stack) {
        cat = klc_alloc(&t->ac, ln + rn);
        if (!cat) return KLC_ERR_OUT_OF_MEMORY;
    }
    memcpy(cat, t->tok_bytes + t->tok_off[left], ln);
    memcpy(cat + ln, t->tok_bytes + t->tok_off[right], rn);
    klc_bytesmap_slot *s =
        klc_bytesmap_find(&t->token_ids, cat, ln + rn, klc_hash_bytes(cat, ln + rn));
    if (cat != stack) klc_free(&t->ac, cat, ln + rn);
    if (!s) return KLC_TOK_MERGE_NO_RESULT;
    if (t->n_merges == t->merges_cap) {
        int32_t cap = t->merges_cap ? t->merges_cap * 2 : 1024;
        klc_tok_merge *m = klc_alloc(&t->ac, (size_t)cap * sizeof *m);
        if (!m) return KLC_ERR_OUT_OF_MEMORY;
        if (t->n_merges) memcpy(m, t->merges, (size_t)t->n_merges * sizeof *m);
        klc_free(&t->ac, t->merges, (size_t)t->merges_cap * sizeof *m);
        t->merges = m;
        t->merges_cap = cap;
    }
    KLC_TRY(klc_u64map_put(&t->pair_rank, key, (uint64_t)t->n_merges));
    t->merges[t->n_merges++] = (klc_tok_merge){left, right, (int32_t)s->val};
    return KLC_OK;
}

void klc_tokenizer_destroy(klc_tokenizer *t) {
    if (!t) return;
    klc_alloc_ctx ac = t->ac;
    klc_free(&ac, t->tok_off, ((size_t)t->n_tokens + 1) * sizeof(uint32_t));
    klc_free(&ac, t->tok_bytes, t->tok_bytes_len);
    klc_bytesmap_free(&t->token_ids);
    klc_u64map_free(&t->pair_rank);
    klc_free(&ac, t->merges, (size_t)t->merges_cap * sizeof(klc_tok_merge));
    klc_pretok_free(&t->pre);
    klc_bytesmap_free(&t->cache);
    klc_free(&ac, t->cache_ids, t->cache_ids_cap * sizeof(int32_t));
    klc_bpe_scratch *b = &t->bpe;
    klc_free(&ac, b->id, b->cap * sizeof(int32_t));
    klc_free(&ac, b->next, b->cap * sizeof(int32_t));
    klc_free(&ac, b->prev, b->cap * sizeof(int32_t));
    klc_free(&ac, b->heap, 3 * b->cap * sizeof(uint64_t));
    klc_free(&ac, b->round, 3 * b->cap * sizeof(uint64_t));
    klc_free(&ac, t, sizeof *t);
}

int32_t klc_tokenizer_vocab_size(const klc_tokenizer *t) {
    return t ? t->n_tokens : -1;
}

int32_t klc_tokenizer_eot_id(const klc_tokenizer *t) {
    return t ? t->eot_id : -1;
}

int klc_tokenizer_token_bytes(const klc_tokenizer *t, int32_t id, const char **bytes, size_t *len) {
    KLC_CHECK_ARG(t && bytes && len);
    if (id < 0 || id >= t->n_tokens)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "token id %d is out of range 0..%d", id,
                        t->n_tokens - 1);
    *bytes = t->tok_bytes + t->tok_off[id];
    *len = t->tok_off[id + 1] - t->tok_off[id];
    return KLC_OK;
}

int klc_tokenizer_token_id(const klc_tokenizer *t, const char *bytes, size_t len, int32_t *id) {
    KLC_CHECK_ARG(t && id && (bytes || len == 0));
    if (len == 0) {
        *id = -1;
        return KLC_OK;
    }
    klc_bytesmap_slot *s = klc_bytesmap_find(&t->token_ids, bytes, len, klc_hash_bytes(bytes, len));
    *id = s ? (int32_t)s->val : -1;
    return KLC_OK;
}
