/* Entries are stored by the normalised bytes of their pieces; every proper prefix that
 * ends at a piece boundary is stored too, flagged, so that the longest match at a piece
 * is found by extending one piece at a time and stopping at the first unknown key. */
#include "target/phrases.h"

#include "tokenizer/bytes.h"

#include <string.h>

#define FLAG_ENTRY  (1ull << 63)
#define FLAG_PREFIX (1ull << 62)
#define INDEX_MASK  0xffffffffull

int klc_phrases_init(klc_phrases *ph, klc_alloc_ctx *ac, bool caseless, bool names) {
    memset(ph, 0, sizeof *ph);
    ph->ac = ac;
    ph->names = names;
    ph->where_word = "line";
    KLC_TRY(klc_splitter_init(&ph->sp, ac, caseless));
    int st = klc_bytesmap_init(&ph->map, ac, 64);
    if (st) {
        klc_splitter_free(&ph->sp);
        ph->ac = NULL;
        return st;
    }
    if (names) {
        int err;
        PCRE2_SIZE off;
        pcre2_compile_context *cc = pcre2_compile_context_create(ph->sp.gctx);
        bool have_cc = cc != NULL;
        if (cc)
            ph->capital = pcre2_compile((PCRE2_SPTR) "[\\p{Lu}\\p{Lt}]", PCRE2_ZERO_TERMINATED,
                                        PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &err, &off, cc);
        pcre2_compile_context_free(cc);
        if (!ph->capital) {
            klc_phrases_free(ph);
            return have_cc
                       ? klc_pcre_fail(KLC_ERR_INTERNAL, err, "capital letter pattern")
                       : klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory creating a PCRE2 context");
        }
    }
    return KLC_OK;
}

void klc_phrases_free(klc_phrases *ph) {
    if (!ph->ac) return;
    klc_bytesmap_free(&ph->map);
    pcre2_code_free(ph->capital);
    klc_splitter_free(&ph->sp);
    klc_free(ph->ac, ph->values, ph->cap_entries * sizeof(double));
    klc_free(ph->ac, ph->lines, ph->cap_entries * sizeof(int64_t));
    memset(ph, 0, sizeof *ph);
}

static int grow_entries(klc_phrases *ph) {
    if (ph->n_entries < ph->cap_entries) return KLC_OK;
    if (ph->n_entries >= INDEX_MASK) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "too many entries");
    size_t cap = ph->cap_entries ? ph->cap_entries * 2 : 64;
    double *v = klc_alloc(ph->ac, cap * sizeof *v);
    int64_t *l = klc_alloc(ph->ac, cap * sizeof *l);
    if (!v || !l) {
        klc_free(ph->ac, v, cap * sizeof *v);
        klc_free(ph->ac, l, cap * sizeof *l);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    if (ph->n_entries) {
        memcpy(v, ph->values, ph->n_entries * sizeof *v);
        memcpy(l, ph->lines, ph->n_entries * sizeof *l);
    }
    klc_free(ph->ac, ph->values, ph->cap_entries * sizeof *v);
    klc_free(ph->ac, ph->lines, ph->cap_entries * sizeof *l);
    ph->values = v;
    ph->lines = l;
    ph->cap_entries = cap;
    return KLC_OK;
}

static int is_capitalised(klc_phrases *ph, const char *w, size_t n, bool *yes) {
    int rc = pcre2_match(ph->capital, (PCRE2_SPTR)w, n, 0, PCRE2_NO_UTF_CHECK, ph->sp.md, NULL);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
        return klc_pcre_fail(KLC_ERR_INTERNAL, rc, "capital letter match");
    *yes = rc > 0;
    return KLC_OK;
}

static int mark(klc_phrases *ph, const char *key, size_t len, uint64_t bits,
                klc_bytesmap_slot **slot) {
    uint64_t h = klc_hash_bytes(key, len);
    klc_bytesmap_slot *s = klc_bytesmap_find(&ph->map, key, len, h);
    if (s) {
        s->val |= bits;
    } else {
        KLC_TRY(klc_bytesmap_insert(&ph->map, key, len, h, bits, &s));
    }
    if (slot) *slot = s;
    return KLC_OK;
}

int klc_phrases_add(klc_phrases *ph, const char *entry, size_t len, double value, int64_t where) {
    if (klc_utf8_valid_prefix((const uint8_t *)entry, len) != len)
        return klc_fail(KLC_ERR_FORMAT, "not valid UTF-8");
    if (memchr(entry, '\0', len)) return klc_fail(KLC_ERR_FORMAT, "contains a NUL byte");
    if (ph->names) {
        bool cap = false;
        KLC_TRY(is_capitalised(ph, entry, len, &cap));
        if (!cap)
            return klc_fail(KLC_ERR_FORMAT, "name '%.*s' does not start with a capital letter",
                            (int)len, entry);
    }
    klc_splitter *sp = &ph->sp;
    KLC_TRY(klc_splitter_run(sp, entry, len));
    size_t first = 0, last = sp->n_pieces;
    while (first < last && sp->pieces[first].kind == KLC_PIECE_SPACE) first++;
    while (last > first && sp->pieces[last - 1].kind == KLC_PIECE_SPACE) last--;
    if (first == last) return klc_fail(KLC_ERR_FORMAT, "empty entry");
    KLC_TRY(grow_entries(ph));
    const char *base = sp->norm + sp->pieces[first].off;
    for (size_t k = first; k + 1 < last; k++) {
        size_t plen = sp->pieces[k].off + sp->pieces[k].len - sp->pieces[first].off;
        KLC_TRY(mark(ph, base, plen, FLAG_PREFIX, NULL));
    }
    size_t full = sp->pieces[last - 1].off + sp->pieces[last - 1].len - sp->pieces[first].off;
    uint64_t h = klc_hash_bytes(base, full);
    klc_bytesmap_slot *s = klc_bytesmap_find(&ph->map, base, full, h);
    if (s && (s->val & FLAG_ENTRY)) {
        size_t i = (size_t)(s->val & INDEX_MASK);
        if (ph->values[i] != value)
            return klc_fail(KLC_ERR_FORMAT,
                            "'%.*s' has value %g here but %g at %s %lld (the same entry after "
                            "normalisation)",
                            (int)len, entry, value, ph->values[i], ph->where_word,
                            (long long)ph->lines[i]);
        return KLC_OK;
    }
    size_t idx = ph->n_entries;
    KLC_TRY(mark(ph, base, full, FLAG_ENTRY | (uint64_t)idx, NULL));
    ph->values[idx] = value;
    ph->lines[idx] = where;
    ph->n_entries++;
    return KLC_OK;
}

int klc_phrases_scan(klc_phrases *ph, const char *text, size_t len, bool any, int64_t *count,
                     double *sum) {
    *count = 0;
    *sum = 0.0;
    klc_splitter *sp = &ph->sp;
    KLC_TRY(klc_splitter_run(sp, text, len));
    const klc_piece *pc = sp->pieces;
    size_t n = sp->n_pieces, k = 0;
    while (k < n) {
        size_t best_len = 0, best_idx = 0;
        if (pc[k].kind != KLC_PIECE_SPACE) {
            for (size_t m = k; m < n && pc[m].kind != KLC_PIECE_INVALID; m++) {
                const char *key = sp->norm + pc[k].off;
                size_t klen = pc[m].off + pc[m].len - pc[k].off;
                klc_bytesmap_slot *s =
                    klc_bytesmap_find(&ph->map, key, klen, klc_hash_bytes(key, klen));
                if (!s) break;
                if (s->val & FLAG_ENTRY) {
                    best_len = m - k + 1;
                    best_idx = (size_t)(s->val & INDEX_MASK);
                }
                if (!(s->val & FLAG_PREFIX)) break;
            }
        }
        if (best_len) {
            (*count)++;
            *sum += ph->values[best_idx];
            if (any) return KLC_OK;
            k += best_len;
        } else {
            k++;
        }
    }
    return KLC_OK;
}
