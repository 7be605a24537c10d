/* Baselines from earlier batches: a ring of the last `window` batches' per-slot sums and
 * counts, pooled slot by slot. */
#include "objective.h"

#include <string.h>

void klc_baseline_init(klc_baseline *b, int32_t kind, int32_t window) {
    memset(b, 0, sizeof *b);
    b->kind = kind;
    b->window = window;
}

static size_t ring_bytes(const klc_baseline *b) {
    return (size_t)b->window * (size_t)b->n_slots * sizeof(double);
}

void klc_baseline_free(klc_baseline *b, const klc_alloc_ctx *alloc) {
    klc_free(alloc, b->sum, ring_bytes(b));
    klc_free(alloc, b->count, ring_bytes(b));
    b->sum = b->count = NULL;
    b->n_slots = 0;
}

double klc_baseline_mean(const klc_baseline *b, int32_t slot) {
    if (slot < 0 || slot >= b->n_slots) return 0.0;
    double s = 0, c = 0;
    for (int32_t k = 0; k < b->n_batches; k++) {
        s += b->sum[(size_t)k * b->n_slots + slot];
        c += b->count[(size_t)k * b->n_slots + slot];
    }
    return c > 0 ? s / c : 0.0;
}

/* Widens every batch row to n_slots, the new slots empty. */
static int grow(klc_baseline *b, const klc_alloc_ctx *alloc, int32_t n_slots) {
    const size_t bytes = (size_t)b->window * (size_t)n_slots * sizeof(double);
    double *sum = klc_alloc_zeroed(alloc, bytes), *count = klc_alloc_zeroed(alloc, bytes);
    if (!sum || !count) {
        klc_free(alloc, sum, bytes);
        klc_free(alloc, count, bytes);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    for (int32_t k = 0; k < b->window && b->n_slots > 0; k++) {
        memcpy(sum + (size_t)k * n_slots, b->sum + (size_t)k * b->n_slots,
               (size_t)b->n_slots * sizeof(double));
        memcpy(count + (size_t)k * n_slots, b->count + (size_t)k * b->n_slots,
               (size_t)b->n_slots * sizeof(double));
    }
    klc_free(alloc, b->sum, ring_bytes(b));
    klc_free(alloc, b->count, ring_bytes(b));
    b->sum = sum;
    b->count = count;
    b->n_slots = n_slots;
    return KLC_OK;
}

int klc_baseline_push(klc_baseline *b, const klc_alloc_ctx *alloc, int32_t n_slots,
                      const double *slot_sum, const double *slot_count) {
    if (b->kind != KLC_BASELINE_MOVING_AVERAGE) return KLC_OK;
    if (n_slots > b->n_slots) KLC_TRY(grow(b, alloc, n_slots));
    double *s = b->sum + (size_t)b->next * b->n_slots, *c = b->count + (size_t)b->next * b->n_slots;
    memset(s, 0, (size_t)b->n_slots * sizeof *s);
    memset(c, 0, (size_t)b->n_slots * sizeof *c);
    memcpy(s, slot_sum, (size_t)n_slots * sizeof *s);
    memcpy(c, slot_count, (size_t)n_slots * sizeof *c);
    b->next = (b->next + 1) % b->window;
    if (b->n_batches < b->window) b->n_batches++;
    return KLC_OK;
}

void klc_leave_one_out(int32_t n, const double *v, double *out) {
    double total = 0;
    for (int32_t i = 0; i < n; i++) total += v[i];
    for (int32_t i = 0; i < n; i++) out[i] = n > 1 ? (total - v[i]) / (n - 1) : 0.0;
}
