/* GPT-2's pre-tokenization: splitting text into the pieces BPE works on. */
#ifndef KLC_TOKENIZER_PRETOKENIZE_H
#define KLC_TOKENIZER_PRETOKENIZE_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/internal.h"

typedef struct klc_pretok {
    pcre2_code *code;
    pcre2_match_data *match;
    int jit; /* the pattern was JIT-compiled */
    /* The ASCII shortcut: pieces made only of ASCII characters are cut by hand, with the
     * character classes taken from PCRE2 itself (so both agree by construction); anything
     * that could reach a non-ASCII character goes to PCRE2. On by default; tests turn it
     * off to check that both paths cut every text the same way. */
    int ascii_fast;
    uint8_t ascii_class[128]; /* KLC_PRETOK_* */
} klc_pretok;

enum { KLC_PRETOK_OTHER = 0, KLC_PRETOK_LETTER = 1, KLC_PRETOK_NUMBER = 2, KLC_PRETOK_SPACE = 3 };

int klc_pretok_init(klc_pretok *p);
void klc_pretok_free(klc_pretok *p);

/* Walks over text[0..len) piece by piece. Invalid UTF-8 is handled as klc.h says: the
 * text is cut into runs of well-formed and ill-formed bytes, each well-formed run is
 * matched as if it were a whole text, and each ill-formed run is one piece. */
typedef struct klc_pretok_iter {
    const uint8_t *text;
    size_t len, pos;
    size_t seg_start, seg_end; /* the current well-formed run */
} klc_pretok_iter;

static inline void klc_pretok_begin(klc_pretok_iter *it, const void *text, size_t len) {
    it->text = text;
    it->len = len;
    it->pos = it->seg_start = it->seg_end = 0;
}

/* 1 and the piece [*start, *start + *n), 0 at the end, or a negative status. */
int klc_pretok_next(klc_pretok *p, klc_pretok_iter *it, size_t *start, size_t *n);

#endif
