/* The token stream `klc pretrain` learns from: text files encoded once, joined by the
 * end-of-text token, with the positions where a training window may start. */
#ifndef KLC_CLI_PRETRAIN_DATA_H
#define KLC_CLI_PRETRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "klc.h"

typedef struct pt_corpus {
    int32_t *ids; /* [n] every file's tokens, an end-of-text token after each file */
    size_t n;
    size_t *starts; /* [n_starts] positions that begin a sentence or a paragraph */
    size_t n_starts;
    size_t bytes; /* text bytes encoded (after unwrapping) */
} pt_corpus;

/* Reads and encodes the files. unwrap joins hard-wrapped lines (a single newline between
 * two non-empty lines becomes a space; blank lines still separate paragraphs), so that
 * novels wrapped at 70 columns and speeches written one paragraph per line look alike.
 * Prints nothing; on failure sets the library's error message and returns a status. */
int pt_corpus_load(klc_tokenizer *tok, const char *const *files, int32_t n_files, int unwrap,
                   pt_corpus *out);
void pt_corpus_free(pt_corpus *c);

/* Fills n_seq windows of len tokens: the end-of-text token (what generation starts from),
 * then len - 1 tokens of the corpus from a sentence start drawn by rng (keyed by the step)
 * for window i. */
void pt_corpus_windows(const pt_corpus *c, const klc_rng *rng, int32_t n_seq, int32_t len,
                       int32_t eot, int32_t *tokens /* [n_seq*len] */);

#endif
