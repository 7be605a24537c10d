/* Cutting text into words, white space and other characters (klc.h, "Words"). */
#ifndef KLC_TARGET_PIECES_H
#define KLC_TARGET_PIECES_H

#include "target/pcre_ctx.h"

enum { KLC_PIECE_WORD = 0, KLC_PIECE_SPACE = 1, KLC_PIECE_OTHER = 2, KLC_PIECE_INVALID = 3 };

/* A piece's normalised bytes are norm[off, off + len): a word lower-cased when caseless,
 * white space as one " ", U+2019 as "'", anything else as it is. Pieces are stored in
 * order and back to back, so the key of pieces k..m is one contiguous slice of norm. */
typedef struct klc_piece {
    uint32_t off, len;
    uint8_t kind;
} klc_piece;

typedef struct klc_splitter {
    const klc_alloc_ctx *ac;
    pcre2_general_context *gctx;
    pcre2_code *split; /* a word, a run of white space, or one character */
    pcre2_code *lower; /* the whole subject, for \L substitution */
    pcre2_match_data *md;
    bool caseless;
    klc_piece *pieces;
    size_t n_pieces, cap_pieces;
    char *norm;
    size_t norm_len, norm_cap;
} klc_splitter;

/* *ac must stay at the same address until klc_splitter_free. */
int klc_splitter_init(klc_splitter *s, klc_alloc_ctx *ac, bool caseless);
void klc_splitter_free(klc_splitter *s);
/* Cuts text[0..len) into s->pieces / s->norm, replacing what was there. */
int klc_splitter_run(klc_splitter *s, const char *text, size_t len);

#endif
