/* The tokenizer's internal layout, shared by its loader, encoder, saver and trainer. */
#ifndef KLC_TOKENIZER_TOKENIZER_H
#define KLC_TOKENIZER_TOKENIZER_H

#include "core/internal.h"
#include "tokenizer/hash.h"
#include "tokenizer/pretokenize.h"

typedef struct klc_tok_merge {
    int32_t left, right, result;
} klc_tok_merge;

/* Work space of one BPE run over a piece of n bytes: a linked list of symbols and a
 * min-heap of candidate merges. */
typedef struct klc_bpe_scratch {
    int32_t *id, *next, *prev; /* [cap] */
    uint64_t *heap, *round;    /* [3 * cap] */
    size_t cap;
} klc_bpe_scratch;

/* Pieces up to this many bytes have their BPE result cached; longer ones are rare, and
 * hashing them would cost about as much as merging them. */
enum { KLC_BPE_CACHE_MAX_PIECE = 64, KLC_BPE_CACHE_MAX_ENTRIES = 1 << 18 };

struct klc_tokenizer {
    klc_alloc_ctx ac;
    int32_t n_tokens;
    uint32_t *tok_off; /* [n_tokens + 1]: token i is tok_bytes[tok_off[i] .. tok_off[i+1]) */
    char *tok_bytes;
    size_t tok_bytes_len;
    klc_bytesmap token_ids; /* token bytes -> id */
    int32_t byte_token[256];
    int32_t eot_id;

    int32_t n_merges, merges_cap;
    klc_tok_merge *merges; /* by rank */
    klc_u64map pair_rank;  /* (left << 32 | right) -> rank */

    klc_pretok pre;
    klc_bytesmap cache; /* piece -> (offset into cache_ids << 8 | count) */
    int32_t *cache_ids;
    size_t cache_ids_len, cache_ids_cap;
    klc_bpe_scratch bpe;
};

static inline uint64_t klc_pair_key(int32_t left, int32_t right) {
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

/* A tokenizer with the given vocabulary (token i = bytes[off[i] .. off[i+1])) and no
 * merges. Fails with KLC_ERR_FORMAT if a token is empty or repeated or a byte has no
 * token; the message names the token and is meant to be prefixed with the file name. */
int klc_tok_create(const klc_alloc_ctx *ac, int32_t n_tokens, const uint32_t *off,
                   const char *bytes, klc_tokenizer **out);

/* Results of klc_tok_add_merge besides KLC_OK and errors (which are negative). */
enum { KLC_TOK_MERGE_DUPLICATE = 1, KLC_TOK_MERGE_NO_RESULT = 2 };
/* Appends the merge (left, right) as the next rank. Returns KLC_OK, or
 * KLC_TOK_MERGE_DUPLICATE with *other = the earlier rank, or KLC_TOK_MERGE_NO_RESULT
 * when the concatenation is not a token, or a negative status. */
int klc_tok_add_merge(klc_tokenizer *tok, int32_t left, int32_t right, int32_t *other);

/* A token's bytes written for a message: GPT-2's characters, quoted, shortened. */
void klc_tok_describe(const char *bytes, size_t n, char *out, size_t cap);

/* BPE over one piece: writes at most n ids to out and their count to *n_out. */
int klc_bpe_piece(klc_tokenizer *tok, const uint8_t *piece, size_t n, int32_t *out, size_t *n_out);

/* Parsers over whole file contents; `name` is the file name used in messages. */
int klc_tok_parse_vocab(const klc_alloc_ctx *ac, const char *buf, size_t len, const char *name,
                        klc_tokenizer **out);
int klc_tok_parse_merges(klc_tokenizer *tok, const char *buf, size_t len, const char *name);

/* Reads a whole file into *buf (NUL-terminated, len + 1 bytes from ac). */
int klc_tok_read_file(const klc_alloc_ctx *ac, const char *path, char **buf, size_t *len);

#endif
