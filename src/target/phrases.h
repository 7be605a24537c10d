/* A set of entries (words or phrases, optionally with values) matched against the
 * pieces of a text, longest first (klc.h, "Words"). */
#ifndef KLC_TARGET_PHRASES_H
#define KLC_TARGET_PHRASES_H

#include "target/pieces.h"
#include "tokenizer/hash.h"

typedef struct klc_phrases {
    klc_alloc_ctx *ac;
    klc_splitter sp;  /* for entries at build time and texts at scoring time */
    klc_bytesmap map; /* key -> flags | entry index; keys are also every proper prefix */
    double *values;
    int64_t *lines; /* where each entry came from (file line or array index + 1) */
    size_t n_entries, cap_entries;
    bool names;             /* entries must be capitalised */
    pcre2_code *capital;    /* names: an upper-case or title-case letter */
    const char *where_word; /* what `where` counts in messages: "line" or "index" */
} klc_phrases;

int klc_phrases_init(klc_phrases *ph, klc_alloc_ctx *ac, bool caseless, bool names);
void klc_phrases_free(klc_phrases *ph);
/* Adds an entry; `where` is a line number for messages. Fails (message without location)
 * for an entry that is empty, not valid UTF-8, not capitalised in a name list, or already
 * present with another value. */
int klc_phrases_add(klc_phrases *ph, const char *entry, size_t len, double value, int64_t where);

/* Scans a text, splitting it first. any: stop at the first occurrence. Writes the number
 * of occurrences and the sum of their values. */
int klc_phrases_scan(klc_phrases *ph, const char *text, size_t len, bool any, int64_t *count,
                     double *sum);

#endif
