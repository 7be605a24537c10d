/* Internal helpers shared by every part of the library: errors, allocation, checks. */
#ifndef KLC_CORE_INTERNAL_H
#define KLC_CORE_INTERNAL_H

#include "klc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define KLC_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define KLC_PRINTF(fmt, args)
#endif

/* Hot numeric kernels are compiled for several instruction sets and picked at load time,
 * so one portable binary runs at full width on AVX-512 and AVX2 machines. Sanitizer
 * builds use the plain version (ifunc resolvers run before the sanitizer runtime). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(KLC_NO_TARGET_CLONES)
#define KLC_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KLC_HOT
#endif

/* Sets the thread's error message (printf format) and returns `status`, so that a failing
 * path reads `return klc_fail(KLC_ERR_FORMAT, "...", ...);`. */
int klc_fail(int status, const char *fmt, ...) KLC_PRINTF(2, 3);
/* Prepends context ("file.json: ") to the current message and returns status. */
int klc_fail_context(int status, const char *fmt, ...) KLC_PRINTF(2, 3);

/* Allocation through an optional user allocator. Memory is 64-byte aligned and, for
 * klc_alloc_zeroed, zeroed. klc_alloc sets the error message on failure. */
typedef struct klc_alloc_ctx {
    klc_allocator a; /* a.alloc == NULL: the C library */
} klc_alloc_ctx;

void klc_alloc_ctx_init(klc_alloc_ctx *ctx, const klc_allocator *user);
void *klc_alloc(const klc_alloc_ctx *ctx, size_t size);
void *klc_alloc_zeroed(const klc_alloc_ctx *ctx, size_t size);
void klc_free(const klc_alloc_ctx *ctx, void *ptr, size_t size);
char *klc_strdup(const klc_alloc_ctx *ctx, const char *s);
void klc_free_str(const klc_alloc_ctx *ctx, char *s);

/* size = a * b with overflow detection. */
bool klc_mul_overflows(size_t a, size_t b, size_t *out);

#define KLC_CHECK_ARG(cond)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: invalid argument: %s", __func__,        \
                            #cond);                                                                \
    } while (0)

#define KLC_TRY(expr)                                                                              \
    do {                                                                                           \
        int klc_try_status_ = (expr);                                                              \
        if (klc_try_status_ != KLC_OK) return klc_try_status_;                                     \
    } while (0)

#endif
