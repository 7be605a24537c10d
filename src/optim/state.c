/* The optimizer's state as a blob: a little-endian 64-byte header (see klc.h) and the
 * moment arrays. Loading validates the whole blob before it writes anything. */
#include "core/le_bytes.h"
#include "optim.h"

#include <math.h>
#include <string.h>

/* The arrays are copied as they are in memory. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "klc's optimizer state format assumes a little-endian host"
#endif

enum { HEADER_BYTES = 64, FORMAT_VERSION = 1 };
static const char MAGIC[8] = {'K', 'L', 'C', 'O', 'P', 'T', 'I', 'M'};

static const char *kind_name(uint32_t kind) {
    switch (kind) {
    case KLC_OPTIMIZER_ADAM:
        return "Adam";
    case KLC_OPTIMIZER_ADAMW:
        return "AdamW";
    case KLC_OPTIMIZER_SGD:
        return "SGD";
    default:
        return "unknown";
    }
}

size_t klc_optimizer_state_size(const klc_optimizer *opt) {
    if (!opt) return 0;
    /* Cannot overflow: create checked n * 2 floats. */
    return HEADER_BYTES + (size_t)opt->n_moments * opt->n * sizeof(float);
}

int klc_optimizer_save_state(const klc_optimizer *opt, void *buf, size_t capacity, size_t *needed) {
    if (!opt) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_optimizer_save_state: NULL optimizer");
    const size_t size = klc_optimizer_state_size(opt);
    if (needed) *needed = size;
    if (!buf || capacity < size)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_optimizer_save_state: the state needs %zu bytes, the buffer has %zu",
                        size, buf ? capacity : 0);
    unsigned char *h = buf;
    memset(h, 0, HEADER_BYTES);
    memcpy(h, MAGIC, sizeof MAGIC);
    klc_put_u32(h + 8, FORMAT_VERSION);
    klc_put_u32(h + 12, (uint32_t)opt->opts.kind);
    klc_put_u64(h + 16, (uint64_t)opt->n);
    klc_put_u64(h + 24, (uint64_t)opt->step);
    klc_put_u32(h + 32, (uint32_t)opt->n_moments);
    const size_t bytes = opt->n * sizeof(float);
    if (opt->n_moments >= 1) memcpy(h + HEADER_BYTES, opt->m, bytes);
    if (opt->n_moments >= 2) memcpy(h + HEADER_BYTES + bytes, opt->v, bytes);
    return KLC_OK;
}

/* Every element finite, and (for exp_avg_sq) non-negative: a blob that passes cannot put
 * NaN into the parameters. */
static int check_array(const unsigned char *p, size_t n, const char *name, int nonneg) {
    for (size_t i = 0; i < n; i++) {
        float x;
        memcpy(&x, p + i * sizeof(float), sizeof x);
        if (!isfinite(x) || (nonneg && x < 0.0f))
            return klc_fail(KLC_ERR_FORMAT, "optimizer state: %s[%zu] = %g is %s", name, i,
                            (double)x, isfinite(x) ? "negative" : "not finite");
    }
    return KLC_OK;
}

int klc_optimizer_load_state(klc_optimizer *opt, const void *buf, size_t size) {
    if (!opt || (!buf && size))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_optimizer_load_state: NULL argument");
    const unsigned char *h = buf;
    if (size < HEADER_BYTES)
        return klc_fail(KLC_ERR_FORMAT,
                        "optimizer state: %zu bytes is shorter than the %d-byte header", size,
                        HEADER_BYTES);
    if (memcmp(h, MAGIC, sizeof MAGIC) != 0)
        return klc_fail(KLC_ERR_FORMAT,
                        "optimizer state: bad magic (not a klc optimizer state blob)");
    const uint32_t version = klc_get_u32(h + 8);
    if (version != FORMAT_VERSION)
        return klc_fail(KLC_ERR_FORMAT,
                        "optimizer state: format version %u is not one this library reads (%d)",
                        version, FORMAT_VERSION);
    const uint32_t kind = klc_get_u32(h + 12);
    if (kind != (uint32_t)opt->opts.kind)
        return klc_fail(KLC_ERR_FORMAT,
                        "optimizer state: saved by a%s %s optimizer (kind %u), loading into %s "
                        "(kind %d)",
                        kind == KLC_OPTIMIZER_ADAM || kind == KLC_OPTIMIZER_ADAMW ? "n" : "",
                        kind_name(kind), kind, kind_name((uint32_t)opt->opts.kind), opt->opts.kind);
    const uint64_t n = klc_get_u64(h + 16);
    if (n != (uint64_t)opt->n)
        return klc_fail(KLC_ERR_FORMAT,
                        "optimizer state: saved for %llu parameters, the optimizer has %zu",
                        (unsigned long long)n, opt->n);
    const int64_t step = (int64_t)klc_get_u64(h + 24);
    if (step < 0)
        return klc_fail(KLC_ERR_FORMAT, "optimizer state: step %lld is negative", (long long)step);
    const uint32_t n_arrays = klc_get_u32(h + 32);
    if (n_arrays != (uint32_t)opt->n_moments)
        return klc_fail(KLC_ERR_FORMAT,
                        "optimizer state: has %u moment arrays, this optimizer has %d (SGD has "
                        "a momentum buffer only when momentum > 0)",
                        n_arrays, opt->n_moments);
    for (int i = 36; i < HEADER_BYTES; i++)
        if (h[i] != 0)
            return klc_fail(KLC_ERR_FORMAT, "optimizer state: reserved header byte %d is not 0", i);
    const size_t want = klc_optimizer_state_size(opt);
    if (size != want)
        return klc_fail(KLC_ERR_FORMAT,
                        "optimizer state: %zu bytes, expected %zu for %zu parameters and %d "
                        "arrays",
                        size, want, opt->n, opt->n_moments);
    const size_t bytes = opt->n * sizeof(float);
    const int sgd = opt->opts.kind == KLC_OPTIMIZER_SGD;
    if (opt->n_moments >= 1)
        KLC_TRY(check_array(h + HEADER_BYTES, opt->n, sgd ? "momentum_buffer" : "exp_avg", 0));
    if (opt->n_moments >= 2)
        KLC_TRY(check_array(h + HEADER_BYTES + bytes, opt->n, "exp_avg_sq", 1));

    if (opt->n_moments >= 1) memcpy(opt->m, h + HEADER_BYTES, bytes);
    if (opt->n_moments >= 2) memcpy(opt->v, h + HEADER_BYTES + bytes, bytes);
    opt->step = step;
    return KLC_OK;
}
