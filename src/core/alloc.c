/* Allocation through the caller's allocator or the C library, 64-byte aligned. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

enum { KLC_ALIGNMENT = 64 };

void klc_alloc_ctx_init(klc_alloc_ctx *ctx, const klc_allocator *user) {
    memset(ctx, 0, sizeof *ctx);
    if (user && user->alloc && user->free) ctx->a = *user;
}

bool klc_mul_overflows(size_t a, size_t b, size_t *out) {
    return __builtin_mul_overflow(a, b, out);
}

void *klc_alloc(const klc_alloc_ctx *ctx, size_t size) {
    if (size == 0) size = 1;
    void *p = NULL;
    if (ctx && ctx->a.alloc) {
        p = ctx->a.alloc(ctx->a.userdata, size, KLC_ALIGNMENT);
    } else {
        size_t rounded = (size + KLC_ALIGNMENT - 1) / KLC_ALIGNMENT * KLC_ALIGNMENT;
        if (rounded >= size) p = aligned_alloc(KLC_ALIGNMENT, rounded);
    }
    if (!p) klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes", size);
    return p;
}

void *klc_alloc_zeroed(const klc_alloc_ctx *ctx, size_t size) {
    void *p = klc_alloc(ctx, size);
    if (p) memset(p, 0, size);
    return p;
}

void klc_free(const klc_alloc_ctx *ctx, void *ptr, size_t size) {
    if (!ptr) return;
    if (size == 0) size = 1;
    if (ctx && ctx->a.free)
        ctx->a.free(ctx->a.userdata, ptr, size);
    else
        free(ptr);
}

char *klc_strdup(const klc_alloc_ctx *ctx, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = klc_alloc(ctx, n);
    if (d) memcpy(d, s, n);
    return d;
}

void klc_free_str(const klc_alloc_ctx *ctx, char *s) {
    if (s) klc_free(ctx, s, strlen(s) + 1);
}
