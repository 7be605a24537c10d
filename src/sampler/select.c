/* Quickselect over candidates with a strict total order (ties in key broken by id), so
 * every selection is unique and reproducible whatever order the candidates come in. */
#include "select.h"

static inline int before(klc_cand a, klc_cand b) {
    return a.key > b.key || (a.key == b.key && a.id < b.id);
}

static inline void swap(klc_cand *a, klc_cand *b) {
    klc_cand t = *a;
    *a = *b;
    *b = t;
}

/* Median of three as the pivot: logits arrive in token-id order, which is often far from
 * random (embedding rows of related tokens), and this keeps sorted runs from going
 * quadratic. */
static int32_t pick_pivot(const klc_cand *c, int32_t lo, int32_t hi) {
    int32_t a = lo, b = lo + (hi - lo) / 2, d = hi - 1;
    if (before(c[b], c[a])) {
        int32_t t = a;
        a = b;
        b = t;
    }
    if (before(c[d], c[b])) {
        b = d;
        if (before(c[b], c[a])) b = a;
    }
    return b;
}

/* Partitions c[lo..hi) around a pivot; returns the pivot's final index p, with c[lo..p)
 * ranked before it and c(p..hi) after. *mass_before receives the key sum of c[lo..p). */
static int32_t partition(klc_cand *c, int32_t lo, int32_t hi, double *mass_before) {
    swap(&c[pick_pivot(c, lo, hi)], &c[hi - 1]);
    const klc_cand pv = c[hi - 1];
    int32_t store = lo;
    double mass = 0.0;
    for (int32_t i = lo; i < hi - 1; i++)
        if (before(c[i], pv)) {
            mass += c[i].key;
            swap(&c[i], &c[store++]);
        }
    swap(&c[store], &c[hi - 1]);
    *mass_before = mass;
    return store;
}

void klc_select_top_count(klc_cand *c, int32_t n, int32_t k) {
    int32_t lo = 0, hi = n;
    while (hi - lo > 1) {
        double unused;
        const int32_t p = partition(c, lo, hi, &unused);
        if (p + 1 == k || p == k) return;
        if (p > k)
            hi = p;
        else
            lo = p + 1;
    }
}

int32_t klc_select_top_mass(klc_cand *c, int32_t n, double target) {
    /* Invariant: c[0..lo) rank before c[lo..hi), which rank before c[hi..n); the mass of
     * c[0..lo) is acc < target, so the answer lies in (lo, hi]. */
    int32_t lo = 0, hi = n;
    double acc = 0.0;
    while (lo < hi) {
        if (hi - lo == 1) return hi;
        double mb;
        const int32_t p = partition(c, lo, hi, &mb);
        mb += acc;
        if (mb >= target) {
            hi = p;
        } else if (mb + c[p].key >= target) {
            return p + 1;
        } else {
            acc = mb + c[p].key;
            lo = p + 1;
        }
    }
    return n;
}
