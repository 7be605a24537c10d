/* merges.txt / vocab.bpe: "#version" line, then one merge "left right" per line. */
#include "tokenizer/tokenizer.h"

#include "tokenizer/bytes.h"

#include <stdio.h>
#include <string.h>

static void quote_field(const char *s, size_t n, char *out, size_t cap) {
    snprintf(out, cap, "'%.*s%s'", n > 60 ? 60 : (int)n, s, n > 60 ? "..." : "");
}

/* The id of a field spelled in byte characters, or -1. */
static int32_t field_id(const klc_tokenizer *t, const char *s, size_t n, uint8_t *scratch) {
    size_t bn, bad;
    uint32_t cp;
    if (klc_chars_to_bytes(s, n, scratch, &bn, &bad, &cp) != 0) return -1;
    klc_bytesmap_slot *slot =
        klc_bytesmap_find(&t->token_ids, scratch, bn, klc_hash_bytes(scratch, bn));
    return slot ? (int32_t)slot->val : -1;
}

int klc_tok_parse_merges(klc_tokenizer *t, const char *buf, size_t len, const char *name) {
    int st = KLC_OK;
    uint8_t *scratch = klc_alloc(&t->ac, len + 1);
    /* Line numbers of the ranks, for "also line N" in duplicate messages. */
    size_t lines_cap = 1024, *lines = klc_alloc(&t->ac, lines_cap * sizeof(size_t));
    if (!scratch || !lines) {
        st = KLC_ERR_OUT_OF_MEMORY;
        goto done;
    }
    size_t pos = 0, line = 0;
    while (pos < len) {
        line++;
        const char *s = buf + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > 0 && s[n - 1] == '\r') n--;
        if (n == 0) continue;
        if (line == 1 && n >= 8 && memcmp(s, "#version", 8) == 0) continue;
        if (klc_utf8_valid_prefix((const uint8_t *)s, n) != n) {
            st = klc_fail(KLC_ERR_FORMAT, "%s:%zu: invalid UTF-8", name, line);
            goto done;
        }
        const char *sp = memchr(s, ' ', n);
        if (!sp || sp == s || sp == s + n - 1 || memchr(sp + 1, ' ', (size_t)(s + n - sp - 1))) {
            char q[80];
            quote_field(s, n, q, sizeof q);
            st = klc_fail(KLC_ERR_FORMAT,
                          "%s:%zu: expected two tokens separated by one space, got %s", name, line,
                          q);
            goto done;
        }
        size_t ln = (size_t)(sp - s), rn = n - ln - 1;
        int32_t ids[2] = {field_id(t, s, ln, scratch), field_id(t, sp + 1, rn, scratch)};
        for (int k = 0; k < 2; k++) {
            if (ids[k] < 0) {
                char q[80];
                quote_field(k ? sp + 1 : s, k ? rn : ln, q, sizeof q);
                st = klc_fail(KLC_ERR_FORMAT, "%s:%zu: unknown token %s", name, line, q);
                goto done;
            }
        }
        int32_t other = -1;
        st = klc_tok_add_merge(t, ids[0], ids[1], &other);
        if (st == KLC_TOK_MERGE_DUPLICATE) {
            char q[80];
            quote_field(s, n, q, sizeof q);
            st = klc_fail(KLC_ERR_FORMAT, "%s:%zu: duplicate merge %s (also line %zu)", name, line,
                          q, lines[other]);
            goto done;
        }
        if (st == KLC_TOK_MERGE_NO_RESULT) {
            char q1[80], q2[80];
            quote_field(s, ln, q1, sizeof q1);
            quote_field(sp + 1, rn, q2, sizeof q2);
            st = klc_fail(KLC_ERR_FORMAT,
                          "%s:%zu: merging %s and %s gives a token that is not in the "
                          "vocabulary",
                          name, line, q1, q2);
            goto done;
        }
        if (st < 0) goto done;
        if ((size_t)t->n_merges > lines_cap) {
            size_t *nl2 = klc_alloc(&t->ac, 2 * lines_cap * sizeof(size_t));
            if (!nl2) {
                st = KLC_ERR_OUT_OF_MEMORY;
                goto done;
            }
            memcpy(nl2, lines, lines_cap * sizeof(size_t));
            klc_free(&t->ac, lines, lines_cap * sizeof(size_t));
            lines = nl2;
            lines_cap *= 2;
        }
        lines[t->n_merges - 1] = line;
    }
done:
    klc_free(&t->ac, scratch, len + 1);
    klc_free(&t->ac, lines, lines_cap * sizeof(size_t));
    return st;
}
