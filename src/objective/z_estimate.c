/* The running Z estimate: per context, the log of the sum of the checks' Z_k and their
 * count, so that the mean is taken in linear space without ever leaving log space. */
#include "objective.h"

#include <math.h>
#include <string.h>

struct klc_z_estimate {
    klc_alloc_ctx alloc;
    int32_t n_contexts;
    uint64_t version;
    double *log_sum; /* [n_contexts] logsumexp of the checks' log Z_k, -inf before any */
    int64_t *checks; /* [n_contexts] */
    double *table;   /* [n_contexts] log Z_MA, NaN before any check */
};

static size_t ctx_bytes(int32_t n) {
    return (size_t)n * (2 * sizeof(double) + sizeof(int64_t));
}

static void clear(klc_z_estimate *z) {
    for (int32_t c = 0; c < z->n_contexts; c++) {
        z->log_sum[c] = -INFINITY;
        z->checks[c] = 0;
        z->table[c] = NAN;
    }
}

int klc_z_estimate_create(int32_t n_contexts, const klc_allocator *allocator,
                          klc_z_estimate **out) {
    if (!out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_z_estimate_create: NULL out");
    *out = NULL;
    if (n_contexts < 1 || n_contexts > (1 << 28))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_z_estimate_create: n_contexts = %d must be in [1, 2^28]", n_contexts);
    klc_alloc_ctx ctx;
    klc_alloc_ctx_init(&ctx, allocator);
    klc_z_estimate *z = klc_alloc_zeroed(&ctx, sizeof *z);
    char *block = z ? klc_alloc(&ctx, ctx_bytes(n_contexts)) : NULL;
    if (!block) {
        klc_free(&ctx, z, sizeof *z);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    z->alloc = ctx;
    z->n_contexts = n_contexts;
    z->log_sum = (double *)block;
    z->table = z->log_sum + n_contexts;
    z->checks = (int64_t *)(z->table + n_contexts);
    clear(z);
    *out = z;
    return KLC_OK;
}

void klc_z_estimate_destroy(klc_z_estimate *z) {
    if (!z) return;
    klc_alloc_ctx ctx = z->alloc;
    klc_free(&ctx, z->log_sum, ctx_bytes(z->n_contexts));
    klc_free(&ctx, z, sizeof *z);
}

int klc_z_estimate_reset(klc_z_estimate *z, uint64_t target_version) {
    if (!z) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_z_estimate_reset: NULL estimate");
    clear(z);
    z->version = target_version;
    return KLC_OK;
}

static void add(klc_z_estimate *z, int32_t c, double log_z_k) {
    z->log_sum[c] = klc_logaddexp(z->log_sum[c], log_z_k);
    z->checks[c]++;
    z->table[c] = z->log_sum[c] - log((double)z->checks[c]);
}

int klc_z_estimate_add(klc_z_estimate *z, uint64_t target_version, int32_t context,
                       double log_z_k) {
    if (!z) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_z_estimate_add: NULL estimate");
    if (context < 0 || context >= z->n_contexts)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_z_estimate_add: context %d is out of range [0, %d)", context,
                        z->n_contexts);
    if (!isfinite(log_z_k) && log_z_k != -INFINITY)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_z_estimate_add: log_z_k = %g must be finite or -inf", log_z_k);
    if (target_version != z->version) klc_z_estimate_reset(z, target_version);
    add(z, context, log_z_k);
    return KLC_OK;
}

int klc_z_estimate_add_batch(klc_z_estimate *z, uint64_t target_version, int32_t n,
                             const int32_t *context_ids, const double *logP, const double *logq) {
    static const char fn[] = "klc_z_estimate_add_batch";
    if (!z || !logP || !logq) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: NULL argument", fn);
    if (n < 1) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: n = %d must be >= 1", fn, n);
    for (int32_t i = 0; i < n; i++) {
        if (context_ids && (context_ids[i] < 0 || context_ids[i] >= z->n_contexts))
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "%s: context_ids[%d] = %d is out of range [0, %d)", fn, i,
                            context_ids[i], z->n_contexts);
        if (!isfinite(logq[i]))
            return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: logq[%d] = %g must be finite", fn, i,
                            logq[i]);
        if (!isfinite(logP[i]) && logP[i] != -INFINITY)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: logP[%d] = %g must be finite or -inf",
                            fn, i, logP[i]);
    }
    if (target_version != z->version) klc_z_estimate_reset(z, target_version);
    if (!context_ids) {
        double lz;
        KLC_TRY(klc_estimate_log_z(n, logP, logq, &lz));
        add(z, 0, lz);
        return KLC_OK;
    }
    /* One pass per context present: conditional batches hold few contexts, each with
     * several samples, and a pass needs no work space. */
    for (int32_t i = 0; i < n; i++) {
        const int32_t c = context_ids[i];
        int seen = 0;
        for (int32_t j = 0; j < i && !seen; j++) seen = context_ids[j] == c;
        if (seen) continue;
        double mx = -INFINITY, s = 0;
        int32_t count = 0;
        for (int32_t j = i; j < n; j++)
            if (context_ids[j] == c && logP[j] - logq[j] > mx) mx = logP[j] - logq[j];
        for (int32_t j = i; j < n; j++)
            if (context_ids[j] == c) {
                count++;
                if (mx != -INFINITY) s += exp(logP[j] - logq[j] - mx);
            }
        add(z, c, mx == -INFINITY ? -INFINITY : mx + log(s) - log((double)count));
    }
    return KLC_OK;
}

double klc_z_estimate_log_z(const klc_z_estimate *z, int32_t context) {
    if (!z || context < 0 || context >= z->n_contexts) return NAN;
    return z->table[context];
}

const double *klc_z_estimate_table(const klc_z_estimate *z) {
    return z ? z->table : NULL;
}

int64_t klc_z_estimate_checks(const klc_z_estimate *z, int32_t context) {
    if (!z || context < 0 || context >= z->n_contexts) return -1;
    return z->checks[context];
}

uint64_t klc_z_estimate_target_version(const klc_z_estimate *z) {
    return z ? z->version : 0;
}

int32_t klc_z_estimate_num_contexts(const klc_z_estimate *z) {
    return z ? z->n_contexts : -1;
}

static int check_n(const klc_z_estimate *z, int32_t n, const void *a, const void *b,
                   const char *fn) {
    if (!z || !a || !b) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: NULL argument", fn);
    if (n != z->n_contexts)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: n = %d, the estimate has %d contexts", fn, n,
                        z->n_contexts);
    return KLC_OK;
}

int klc_z_estimate_get_state(const klc_z_estimate *z, int32_t n, double *log_sum, int64_t *checks) {
    KLC_TRY(check_n(z, n, log_sum, checks, "klc_z_estimate_get_state"));
    memcpy(log_sum, z->log_sum, (size_t)n * sizeof *log_sum);
    memcpy(checks, z->checks, (size_t)n * sizeof *checks);
    return KLC_OK;
}

int klc_z_estimate_set_state(klc_z_estimate *z, uint64_t target_version, int32_t n,
                             const double *log_sum, const int64_t *checks) {
    static const char fn[] = "klc_z_estimate_set_state";
    KLC_TRY(check_n(z, n, log_sum, checks, fn));
    for (int32_t c = 0; c < n; c++) {
        if (checks[c] < 0)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: context %d: checks = %lld < 0", fn, c,
                            (long long)checks[c]);
        if (isnan(log_sum[c]) || log_sum[c] == INFINITY || (checks[c] == 0 && isfinite(log_sum[c])))
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "%s: context %d: log_sum = %g with %lld checks (must be finite or "
                            "-inf, and -inf without checks)",
                            fn, c, log_sum[c], (long long)checks[c]);
    }
    z->version = target_version;
    for (int32_t c = 0; c < n; c++) {
        z->log_sum[c] = log_sum[c];
        z->checks[c] = checks[c];
        /* The expression add() uses, so that the restored estimate has the same bits. */
        z->table[c] = checks[c] > 0 ? z->log_sum[c] - log((double)z->checks[c]) : NAN;
    }
    return KLC_OK;
}
