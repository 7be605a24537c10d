/* PCRE2's allocator hooks pass no size to free, and klc_allocator's free wants one: each
 * block carries its size in a header as wide as the strictest alignment PCRE2 needs. */
#include "target/pcre_ctx.h"

#include <stdalign.h>
#include <stddef.h>

enum { HEADER = alignof(max_align_t) > sizeof(size_t) ? alignof(max_align_t) : sizeof(size_t) };

static void *pcre_malloc(PCRE2_SIZE size, void *data) {
    const klc_alloc_ctx *ac = data;
    if (size > SIZE_MAX - HEADER) return NULL;
    unsigned char *p = klc_alloc(ac, size + HEADER);
    if (!p) return NULL;
    *(size_t *)p = size + HEADER;
    return p + HEADER;
}

static void pcre_free(void *ptr, void *data) {
    if (!ptr) return;
    unsigned char *p = (unsigned char *)ptr - HEADER;
    klc_free(data, p, *(size_t *)p);
}

pcre2_general_context *klc_pcre_context(klc_alloc_ctx *ac) {
    pcre2_general_context *g = pcre2_general_context_create(pcre_malloc, pcre_free, ac);
    if (!g) klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory creating a PCRE2 context");
    return g;
}

int klc_pcre_fail(int status, int pcre_error, const char *what) {
    PCRE2_UCHAR msg[256];
    if (pcre2_get_error_message(pcre_error, msg, sizeof msg) < 0) msg[0] = '\0';
    return klc_fail(status, "%s: %s", what, (const char *)msg);
}
