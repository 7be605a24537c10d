/* PCRE2 allocating through a handle's allocator. */
#ifndef KLC_TARGET_PCRE_CTX_H
#define KLC_TARGET_PCRE_CTX_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/internal.h"

/* A PCRE2 general context whose allocations go through *ac, which must stay at the same
 * address for the context's life (keep both in the same heap object). NULL with the
 * error set when out of memory. */
pcre2_general_context *klc_pcre_context(klc_alloc_ctx *ac);

/* "pattern: message at offset N" for a PCRE2 error code, into the thread's error. */
int klc_pcre_fail(int status, int pcre_error, const char *what);

#endif
