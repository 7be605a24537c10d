/* GPT-2's pre-tokenization pattern through PCRE2 (Unicode properties, JIT-compiled). */
#include "tokenizer/pretokenize.h"

#include "tokenizer/bytes.h"

#include <string.h>

/* Written exactly as GPT-2's encoder has it; UCP makes \s Unicode white space. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* The class of each ASCII character according to PCRE2's own \p{L}, \p{N} and \s. */
static int ascii_classes(uint8_t *cls) {
    static const char *const pats[3] = {"\\p{L}", "\\p{N}", "\\s"};
    memset(cls, KLC_PRETOK_OTHER, 128);
    for (int k = 0; k < 3; k++) {
        int err;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pats[k], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &err, &off, NULL);
        pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
        if (!md) {
            pcre2_code_free(re);
            return klc_fail(KLC_ERR_INTERNAL, "cannot compile a PCRE2 character class");
        }
        for (int c = 0; c < 128; c++) {
            uint8_t ch = (uint8_t)c;
            if (pcre2_match(re, &ch, 1, 0, 0, md, NULL) > 0) cls[c] = (uint8_t)(k + 1);
        }
        pcre2_match_data_free(md);
        pcre2_code_free(re);
    }
    return KLC_OK;
}

/* The end of the piece at s[i] (ASCII) in a text ending at `end`, as GPT-2's pattern cuts
 * it, or 0 when the answer depends on a non-ASCII character. */
static size_t ascii_piece(const uint8_t *cls, const uint8_t *s, size_t i, size_t end) {
    uint8_t c = s[i];
    if (c == '\'' && i + 1 < end) {
        uint8_t d = s[i + 1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd') return i + 2;
        if (i + 2 < end) {
            uint8_t e = s[i + 2];
            if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l'))
                return i + 3;
        }
    }
    size_t j = i;
    int k = cls[c];
    if (c == ' ' && i + 1 < end) {
        if (s[i + 1] >= 0x80) return 0;
        /* " ?X+": a space joins a following letter, number or other run. */
        if (cls[s[i + 1]] != KLC_PRETOK_SPACE) k = cls[s[j = i + 1]];
    }
    size_t e = j + 1;
    if (k != KLC_PRETOK_SPACE) {
        while (e < end && s[e] < 0x80 && cls[s[e]] == k) e++;
        return (e < end && s[e] >= 0x80) ? 0 : e;
    }
    while (e < end && s[e] < 0x80 && cls[s[e]] == KLC_PRETOK_SPACE) e++;
    if (e == end) return e;
    if (s[e] >= 0x80) return 0;
    /* "\s+(?!\S)" leaves the last white space to start the next piece; a single one is
     * taken by "\s+". */
    return e - i >= 2 ? e - 1 : e;
}

int klc_pretok_init(klc_pretok *p) {
    memset(p, 0, sizeof *p);
    int err;
    PCRE2_SIZE off;
    p->code = pcre2_compile((PCRE2_SPTR)gpt2_pattern, PCRE2_ZERO_TERMINATED,
                            PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, NULL);
    if (!p->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return klc_fail(KLC_ERR_INTERNAL, "pre-tokenizer pattern does not compile at %zu: %s",
                        (size_t)off, (const char *)msg);
    }
    /* Without JIT (a PCRE2 built without it) the interpreter gives the same pieces,
     * only more slowly. */
    p->jit = pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE) == 0;
    int st = ascii_classes(p->ascii_class);
    if (st) {
        pcre2_code_free(p->code);
        p->code = NULL;
        return st;
    }
    p->ascii_fast = 1;
    p->match = pcre2_match_data_create_from_pattern(p->code, NULL);
    if (!p->match) {
        pcre2_code_free(p->code);
        p->code = NULL;
        return klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory creating PCRE2 match data");
    }
    return KLC_OK;
}

void klc_pretok_free(klc_pretok *p) {
    pcre2_match_data_free(p->match);
    pcre2_code_free(p->code);
    memset(p, 0, sizeof *p);
}

int klc_pretok_next(klc_pretok *p, klc_pretok_iter *it, size_t *start, size_t *n) {
    if (it->pos >= it->len) return 0;
    if (it->pos >= it->seg_end) {
        size_t v = klc_utf8_valid_prefix(it->text + it->pos, it->len - it->pos);
        if (v == 0) {
            size_t r = klc_utf8_invalid_run(it->text + it->pos, it->len - it->pos);
            *start = it->pos;
            *n = r;
            it->pos += r;
            return 1;
        }
        it->seg_start = it->pos;
        it->seg_end = it->pos + v;
    }
    if (p->ascii_fast && it->text[it->pos] < 0x80) {
        size_t e = ascii_piece(p->ascii_class, it->text, it->pos, it->seg_end);
        if (e) {
            *start = it->pos;
            *n = e - it->pos;
            it->pos = e;
            return 1;
        }
    }
    const uint8_t *seg = it->text + it->seg_start;
    size_t seg_len = it->seg_end - it->seg_start, at = it->pos - it->seg_start;
    int rc = p->jit ? pcre2_jit_match(p->code, seg, seg_len, at, 0, p->match, NULL)
                    : pcre2_match(p->code, seg, seg_len, at, PCRE2_NO_UTF_CHECK, p->match, NULL);
    size_t end;
    if (rc > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->match);
        /* Every character matches one of the alternatives, so a match starts where the
         * previous one ended; a gap would mean a broken PCRE2, and is still kept as its
         * own piece so that no byte is ever lost. */
        end = ov[0] > at ? ov[0] : ov[1];
    } else if (rc == PCRE2_ERROR_NOMATCH) {
        end = seg_len;
    } else {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return klc_fail(KLC_ERR_INTERNAL, "pre-tokenizer match failed at byte %zu: %s", it->pos,
                        (const char *)msg);
    }
    if (end <= at) end = at + 1; /* never stall on an empty match */
    *start = it->pos;
    *n = end - at;
    it->pos = it->seg_start + end;
    return 1;
}
