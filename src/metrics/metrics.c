/* klc_metrics: a small insertion-ordered table of named doubles. A step reports a dozen
 * values at most, so a linear search over fixed-size names beats any hashing, and one
 * growing array keeps the allocator traffic to a few calls per run. */
#include "core/internal.h"

#include <math.h>
#include <string.h>

typedef struct metric_entry {
    char name[KLC_METRICS_NAME_MAX];
    double value;
} metric_entry;

struct klc_metrics {
    klc_alloc_ctx alloc;
    metric_entry *entries;
    int32_t count, capacity;
};

int klc_metrics_create(const klc_allocator *allocator, klc_metrics **out) {
    if (!out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_metrics_create: NULL out");
    *out = NULL;
    klc_alloc_ctx ctx;
    klc_alloc_ctx_init(&ctx, allocator);
    klc_metrics *m = klc_alloc_zeroed(&ctx, sizeof *m);
    if (!m) return KLC_ERR_OUT_OF_MEMORY;
    m->alloc = ctx;
    *out = m;
    return KLC_OK;
}

void klc_metrics_destroy(klc_metrics *m) {
    if (!m) return;
    klc_alloc_ctx ctx = m->alloc;
    klc_free(&ctx, m->entries, (size_t)m->capacity * sizeof(metric_entry));
    klc_free(&ctx, m, sizeof *m);
}

static int32_t find(const klc_metrics *m, const char *name) {
    for (int32_t i = 0; i < m->count; i++)
        if (strcmp(m->entries[i].name, name) == 0) return i;
    return -1;
}

int klc_metrics_set(klc_metrics *m, const char *name, double value) {
    if (!m || !name) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_metrics_set: NULL argument");
    size_t len = strnlen(name, KLC_METRICS_NAME_MAX);
    if (len == 0 || len >= KLC_METRICS_NAME_MAX)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_metrics_set: a metric name must have 1 to %d bytes (got %s)",
                        KLC_METRICS_NAME_MAX - 1, len == 0 ? "an empty name" : "a longer one");
    int32_t i = find(m, name);
    if (i >= 0) {
        m->entries[i].value = value;
        return KLC_OK;
    }
    if (m->count == m->capacity) {
        int32_t cap = m->capacity ? 2 * m->capacity : 16;
        metric_entry *grown = klc_alloc(&m->alloc, (size_t)cap * sizeof *grown);
        if (!grown) return KLC_ERR_OUT_OF_MEMORY;
        if (m->count) memcpy(grown, m->entries, (size_t)m->count * sizeof *grown);
        klc_free(&m->alloc, m->entries, (size_t)m->capacity * sizeof *grown);
        m->entries = grown;
        m->capacity = cap;
    }
    metric_entry *e = &m->entries[m->count++];
    memcpy(e->name, name, len + 1);
    e->value = value;
    return KLC_OK;
}

double klc_metrics_get(const klc_metrics *m, const char *name) {
    if (!m || !name) return NAN;
    int32_t i = find(m, name);
    return i >= 0 ? m->entries[i].value : NAN;
}

int32_t klc_metrics_count(const klc_metrics *m) {
    return m ? m->count : 0;
}

int klc_metrics_entry(const klc_metrics *m, int32_t i, const char **name, double *value) {
    if (!m) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_metrics_entry: NULL metrics");
    if (i < 0 || i >= m->count)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_metrics_entry: index %d is out of range (the table has %d entries)", i,
                        m->count);
    if (name) *name = m->entries[i].name;
    if (value) *value = m->entries[i].value;
    return KLC_OK;
}

int klc_metrics_clear(klc_metrics *m) {
    if (!m) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_metrics_clear: NULL metrics");
    m->count = 0;
    return KLC_OK;
}
