/* Text -> pieces with PCRE2's Unicode classes; case folding through PCRE2's \L so that
 * classes and case come from the same Unicode tables. */
#include "target/pieces.h"

#include <string.h>

/* Groups tell the kinds apart: 1 a word, 2 white space, none any other character. */
static const char split_pattern[] = "([\\p{L}\\p{M}\\p{N}]+)|(\\s+)|.";

int klc_splitter_init(klc_splitter *s, klc_alloc_ctx *ac, bool caseless) {
    memset(s, 0, sizeof *s);
    s->ac = ac;
    s->caseless = caseless;
    s->gctx = klc_pcre_context(ac);
    if (!s->gctx) return KLC_ERR_OUT_OF_MEMORY;
    pcre2_compile_context *cc = pcre2_compile_context_create(s->gctx);
    if (!cc) {
        klc_splitter_free(s);
        return klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory creating a PCRE2 context");
    }
    int err;
    PCRE2_SIZE off;
    s->split = pcre2_compile((PCRE2_SPTR)split_pattern, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_UCP | PCRE2_DOTALL | PCRE2_MATCH_INVALID_UTF, &err,
                             &off, cc);
    if (s->split)
        s->lower = pcre2_compile((PCRE2_SPTR) "(?s).+", PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP, &err, &off, cc);
    pcre2_compile_context_free(cc);
    if (!s->split || !s->lower) {
        klc_splitter_free(s);
        return klc_pcre_fail(KLC_ERR_INTERNAL, err, "word splitting pattern");
    }
    /* Without JIT PCRE2 interprets the same pattern, more slowly. */
    (void)pcre2_jit_compile(s->split, PCRE2_JIT_COMPLETE);
    s->md = pcre2_match_data_create(3, s->gctx);
    if (!s->md) {
        klc_splitter_free(s);
        return klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory creating PCRE2 match data");
    }
    return KLC_OK;
}

void klc_splitter_free(klc_splitter *s) {
    pcre2_match_data_free(s->md);
    pcre2_code_free(s->lower);
    pcre2_code_free(s->split);
    pcre2_general_context_free(s->gctx);
    klc_free(s->ac, s->pieces, s->cap_pieces * sizeof(klc_piece));
    klc_free(s->ac, s->norm, s->norm_cap);
    memset(s, 0, sizeof *s);
}

static int reserve_norm(klc_splitter *s, size_t extra) {
    if (extra > UINT32_MAX || s->norm_len + extra > UINT32_MAX)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "text too long (at most 4 GiB)");
    size_t need = s->norm_len + extra;
    if (need <= s->norm_cap) return KLC_OK;
    size_t cap = s->norm_cap ? s->norm_cap : 256;
    while (cap < need) cap *= 2;
    char *p = klc_alloc(s->ac, cap);
    if (!p) return KLC_ERR_OUT_OF_MEMORY;
    if (s->norm_len) memcpy(p, s->norm, s->norm_len);
    klc_free(s->ac, s->norm, s->norm_cap);
    s->norm = p;
    s->norm_cap = cap;
    return KLC_OK;
}

static int push_piece(klc_splitter *s, int kind, size_t start) {
    if (s->n_pieces == s->cap_pieces) {
        size_t cap = s->cap_pieces ? s->cap_pieces * 2 : 64;
        klc_piece *p = klc_alloc(s->ac, cap * sizeof *p);
        if (!p) return KLC_ERR_OUT_OF_MEMORY;
        if (s->n_pieces) memcpy(p, s->pieces, s->n_pieces * sizeof *p);
        klc_free(s->ac, s->pieces, s->cap_pieces * sizeof *p);
        s->pieces = p;
        s->cap_pieces = cap;
    }
    s->pieces[s->n_pieces++] =
        (klc_piece){(uint32_t)start, (uint32_t)(s->norm_len - start), (uint8_t)kind};
    return KLC_OK;
}

static int append(klc_splitter *s, const char *bytes, size_t n) {
    KLC_TRY(reserve_norm(s, n));
    memcpy(s->norm + s->norm_len, bytes, n);
    s->norm_len += n;
    return KLC_OK;
}

static int append_lower(klc_splitter *s, const char *w, size_t n) {
    bool ascii = true;
    for (size_t i = 0; i < n && ascii; i++) ascii = (unsigned char)w[i] < 0x80;
    if (ascii) {
        KLC_TRY(reserve_norm(s, n));
        for (size_t i = 0; i < n; i++) {
            char c = w[i];
            s->norm[s->norm_len + i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        s->norm_len += n;
        return KLC_OK;
    }
    /* A simple case mapping may change a character's UTF-8 length either way. */
    size_t room = 2 * n + 8;
    for (;;) {
        KLC_TRY(reserve_norm(s, room));
        PCRE2_SIZE out_len = s->norm_cap - s->norm_len;
        int rc = pcre2_substitute(s->lower, (PCRE2_SPTR)w, n, 0,
                                  PCRE2_SUBSTITUTE_EXTENDED | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH |
                                      PCRE2_NO_UTF_CHECK,
                                  s->md, NULL, (PCRE2_SPTR) "\\L$0", PCRE2_ZERO_TERMINATED,
                                  (PCRE2_UCHAR *)s->norm + s->norm_len, &out_len);
        if (rc == PCRE2_ERROR_NOMEMORY) {
            room = out_len + 1;
            continue;
        }
        if (rc < 0) return klc_pcre_fail(KLC_ERR_INTERNAL, rc, "lower-casing a word");
        s->norm_len += out_len;
        return KLC_OK;
    }
}

static int add_invalid(klc_splitter *s, const char *text, size_t from, size_t to) {
    size_t start = s->norm_len;
    KLC_TRY(append(s, text + from, to - from));
    return push_piece(s, KLC_PIECE_INVALID, start);
}

int klc_splitter_run(klc_splitter *s, const char *text, size_t len) {
    s->n_pieces = 0;
    s->norm_len = 0;
    if (len > UINT32_MAX)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "text too long (at most 4 GiB)");
    size_t pos = 0;
    while (pos < len) {
        int rc = pcre2_match(s->split, (PCRE2_SPTR)text, len, pos, 0, s->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) return add_invalid(s, text, pos, len);
        if (rc < 0) return klc_pcre_fail(KLC_ERR_INTERNAL, rc, "splitting a text into words");
        /* Copied out: lower-casing reuses the match data. */
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        size_t m0 = ov[0], m1 = ov[1];
        bool is_word = rc >= 2 && ov[2] != PCRE2_UNSET;
        /* Every well-formed character matches, so a gap is ill-formed UTF-8. */
        if (m0 > pos) KLC_TRY(add_invalid(s, text, pos, m0));
        const char *p = text + m0;
        size_t n = m1 - m0, start = s->norm_len;
        int kind;
        if (is_word) {
            kind = KLC_PIECE_WORD;
            KLC_TRY(s->caseless ? append_lower(s, p, n) : append(s, p, n));
        } else if (rc >= 3) {
            kind = KLC_PIECE_SPACE;
            KLC_TRY(append(s, " ", 1));
        } else {
            kind = KLC_PIECE_OTHER;
            if (n == 3 && memcmp(p, "\xE2\x80\x99", 3) == 0)
                KLC_TRY(append(s, "'", 1));
            else
                KLC_TRY(append(s, p, n));
        }
        KLC_TRY(push_piece(s, kind, start));
        pos = m1 > m0 ? m1 : m0 + 1;
    }
    return KLC_OK;
}
