/* Sampling one token. Probabilities are exp(y - max y) in float with the maximum
 * subtracted (the vectorised exp of the model's kernels), summed in double; the chosen
 * token's log-probability is (y - max y) - log(sum), the log-softmax, rather than the log
 * of a rounded probability. A logit of -inf has probability 0 and is never chosen, so no
 * -inf reaches a subtraction that could make NaN.
 *
 * Truncated sampling never sorts the vocabulary: vectorised passes count (top-k) or weigh
 * (top-p) the tokens within several distances of the maximum logit, the nearest distance
 * that provably holds the answer is kept, and only those tokens go through the selection.
 * The result is the same set as selecting over all tokens. */
#include "draw.h"
#include "core/internal.h"
#include "model/kernels.h"

#include <math.h>
#include <string.h>

/* Below this, exp underflows float; the fast exp clamps instead of returning 0. */
#define EXP_FLOOR (-87.0f)
/* Tokens per block of the cumulative sum: the inversion walks block sums, then one block. */
#define BLOCK 512
/* Distances below the maximum logit the prefilters tally in one pass. */
#define N_LEVELS 5

size_t klc_draw_work_floats(int32_t V) {
    const size_t blocks = ((size_t)V + BLOCK - 1) / BLOCK;
    return (size_t)V + 2 * blocks + 2; /* e, then the block sums as doubles */
}

static inline float exp_shifted(float d) {
    const float e = klc_fast_expf(d);
    return d < EXP_FLOOR ? 0.0f : e;
}

/* Scales by 1/temperature and returns the maximum; *bad is set when a logit is NaN. */
static KLC_HOT float scale_and_max(float *y, int32_t n, float inv_t, int *bad) {
    if (inv_t != 1.0f)
#pragma omp simd
        for (int32_t i = 0; i < n; i++) y[i] *= inv_t;
    float mx = -INFINITY;
    int nan_seen = 0;
#pragma omp simd reduction(max : mx) reduction(| : nan_seen)
    for (int32_t i = 0; i < n; i++) {
        nan_seen |= y[i] != y[i];
        mx = y[i] > mx ? y[i] : mx;
    }
    *bad = nan_seen;
    return mx;
}

/* e[i] = exp(y[i] - mx) and the sums of each block; returns the total. */
static KLC_HOT double exp_blocks(float *restrict e, double *restrict bsum, const float *restrict y,
                                 int32_t n, float mx) {
    double total = 0.0;
    for (int32_t b0 = 0, b = 0; b0 < n; b0 += BLOCK, b++) {
        const int32_t b1 = b0 + BLOCK < n ? b0 + BLOCK : n;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int32_t i = b0; i < b1; i++) {
            e[i] = exp_shifted(y[i] - mx);
            s += (double)e[i];
        }
        bsum[b] = s;
        total += s;
    }
    return total;
}

/* The token where the running sum first exceeds target: block sums first, then within the
 * block. If rounding leaves the running sum short, the last token with positive mass. */
static int32_t invert_blocks(const float *e, const double *bsum, int32_t n, double target) {
    double cum = 0.0;
    int32_t b0 = 0, b = 0;
    for (; b0 < n; b0 += BLOCK, b++) {
        if (cum + bsum[b] > target) break;
        cum += bsum[b];
    }
    int32_t last = -1;
    if (b0 < n) {
        const int32_t b1 = b0 + BLOCK < n ? b0 + BLOCK : n;
        for (int32_t i = b0; i < b1; i++) {
            if (!(e[i] > 0.0f)) continue;
            cum += (double)e[i];
            last = i;
            if (cum > target) return i;
        }
        if (last >= 0) return last;
    }
    for (int32_t i = n - 1; i >= 0; i--)
        if (e[i] > 0.0f) return i;
    return -1;
}

static int32_t invert_cands(const klc_cand *c, int32_t n, double target) {
    double cum = 0.0;
    int32_t last = -1;
    for (int32_t i = 0; i < n; i++) {
        if (!(c[i].key > 0.0f)) continue;
        cum += (double)c[i].key;
        last = i;
        if (cum > target) return c[i].id;
    }
    return last < 0 ? -1 : c[last].id;
}

static double sum_keys(const klc_cand *c, int32_t n) {
    double s = 0.0;
    for (int32_t i = 0; i < n; i++) s += (double)c[i].key;
    return s;
}

/* For each threshold t[l]: how many values v[i] >= t[l] and, when mass is wanted, the sum
 * of those v (v is then a probability). */
static KLC_HOT void tally(const float *restrict v, int32_t n, const float t[N_LEVELS],
                          int want_mass, int32_t count[N_LEVELS], double mass[N_LEVELS]) {
    int32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0;
    const float t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4];
    if (!want_mass) {
#pragma omp simd reduction(+ : c0, c1, c2, c3, c4)
        for (int32_t i = 0; i < n; i++) {
            c0 += v[i] >= t0;
            c1 += v[i] >= t1;
            c2 += v[i] >= t2;
            c3 += v[i] >= t3;
            c4 += v[i] >= t4;
        }
    } else {
        double m0 = 0, m1 = 0, m2 = 0, m3 = 0, m4 = 0;
#pragma omp simd reduction(+ : c0, c1, c2, c3, c4, m0, m1, m2, m3, m4)
        for (int32_t i = 0; i < n; i++) {
            const double d = (double)v[i];
            c0 += v[i] >= t0;
            c1 += v[i] >= t1;
            c2 += v[i] >= t2;
            c3 += v[i] >= t3;
            c4 += v[i] >= t4;
            m0 += v[i] >= t0 ? d : 0.0;
            m1 += v[i] >= t1 ? d : 0.0;
            m2 += v[i] >= t2 ? d : 0.0;
            m3 += v[i] >= t3 ? d : 0.0;
            m4 += v[i] >= t4 ? d : 0.0;
        }
        mass[0] = m0, mass[1] = m1, mass[2] = m2, mass[3] = m3, mass[4] = m4;
    }
    count[0] = c0, count[1] = c1, count[2] = c2, count[3] = c3, count[4] = c4;
}

/* Two thresholds on v: every token with v >= sure belongs to the answer (they fall short
 * of k tokens, or of the mass needed, so the answer holds them all), and the answer lies
 * within v >= cand. Values are logits (top-k: v = y, thresholds mx - distance) or
 * probabilities (top-p: v = exp(y - mx), thresholds exp(-distance)). Each pass tallies five
 * distances below the maximum at once and keeps the nearest that suffices; later passes
 * subdivide between the last distance that fell short and the one that sufficed, so a flat
 * distribution (a fresh model) narrows as well as a peaked one. */
typedef struct band {
    float sure, cand;
} band;

static band narrow(const float *v, int32_t n, float mx, int is_prob, int32_t k, double need) {
    static const float first[N_LEVELS] = {1.0f, 2.0f, 4.0f, 8.0f, 16.0f};
    static const float split[N_LEVELS] = {1.0f / 32, 1.0f / 16, 1.0f / 8, 1.0f / 4, 1.0f / 2};
    float lo = -1.0f, hi = INFINITY; /* distances: lo falls short (-1: none tried), hi suffices */
    float t_lo = INFINITY, t_hi = -INFINITY;
    int32_t hi_count = n;
    for (int pass = 0; pass < 6 && hi_count > 4 * k + 1024; pass++) {
        float t[N_LEVELS], d[N_LEVELS];
        for (int l = 0; l < N_LEVELS; l++) {
            d[l] = isinf(hi) ? first[l] : (lo > 0 ? lo : 0) + (hi - (lo > 0 ? lo : 0)) * split[l];
            t[l] = is_prob ? exp_shifted(-d[l]) : mx - d[l];
        }
        int32_t count[N_LEVELS];
        double mass[N_LEVELS];
        tally(v, n, t, is_prob, count, mass);
        int l = 0;
        while (l < N_LEVELS && !(is_prob ? mass[l] >= need : count[l] >= k)) l++;
        if (l > 0) lo = d[l - 1], t_lo = t[l - 1];
        if (l == N_LEVELS) continue;
        /* A pass that removed little means the mass is spread thin near the top (a flat
         * distribution, a wide nucleus): more passes would cost more than they save. */
        const int poor = pass > 0 && count[l] > hi_count - hi_count / 4;
        hi = d[l], t_hi = t[l];
        hi_count = count[l];
        if (poor || !(hi > lo)) break; /* or float resolution reached */
    }
    return (band){t_lo, t_hi};
}

/* Candidates (v[i], i) for the tokens with v >= b.cand, those with v >= b.sure first
 * (*n_sure of them); c has room for all n. Returns the total. */
static int32_t gather(klc_cand *c, const float *v, int32_t n, band b, int32_t *n_sure) {
    int32_t m = 0, back = n; /* the band fills c from the end, then moves up */
    for (int32_t i = 0; i < n; i++) {
        if (v[i] >= b.sure)
            c[m++] = (klc_cand){v[i], i};
        else if (v[i] >= b.cand)
            c[--back] = (klc_cand){v[i], i};
    }
    *n_sure = m;
    const int32_t nb = n - back;
    if (back > m) memmove(c + m, c + back, sizeof(klc_cand) * (size_t)nb);
    return m + nb;
}

/* Top-k: the k first-ranked tokens, as candidates keyed by exp(y - mx); returns k. */
static int32_t top_k_cands(const float *y, int32_t V, float mx, int32_t k, klc_cand *c) {
    int32_t a;
    const int32_t n = gather(c, y, V, narrow(y, V, mx, 0, k, 0.0), &a);
    if (n > k) klc_select_top_count(c + a, n - a, k - a);
    for (int32_t i = 0; i < k; i++) c[i].key = exp_shifted(c[i].key - mx);
    return k;
}

/* Top-p over candidates c[0..n) keyed by probability, of which c[0..a) are certainly in:
 * returns how many first candidates form the nucleus of mass `need`. */
static int32_t nucleus(klc_cand *c, int32_t n, int32_t a, double need) {
    const double rest = need - sum_keys(c, a);
    if (!(rest > 0.0) && a > 0) return a;
    return a + klc_select_top_mass(c + a, n - a, rest);
}

int klc_draw(const klc_draw_params *p, float *y, klc_cand *c, float *work, double u, int32_t *token,
             double *logprob) {
    const int32_t V = p->vocab;
    int bad;
    const float mx = scale_and_max(y, V, p->inv_temperature, &bad);
    if (bad || !isfinite(mx)) return KLC_ERR_NUMERIC;
    const int use_k = p->top_k > 0 && p->top_k < V, use_p = p->top_p < 1.0;
    double *bsum = (double *)(void *)(work + V + (V & 1)); /* 8-byte aligned */
    int32_t tok;
    double sum;
    if (!use_k && !use_p) {
        sum = exp_blocks(work, bsum, y, V, mx);
        tok = invert_blocks(work, bsum, V, u * sum);
    } else {
        int32_t n;
        if (use_k) {
            n = top_k_cands(y, V, mx, p->top_k, c);
            if (use_p) n = klc_select_top_mass(c, n, p->top_p * sum_keys(c, n));
        } else {
            /* The margin keeps the prefilter's differently ordered sums on the safe side. */
            const double total = exp_blocks(work, bsum, y, V, mx), need = p->top_p * total;
            int32_t a;
            n = gather(c, work, V, narrow(work, V, 1.0f, 1, 1, need * (1.0 + 1e-9)), &a);
            n = nucleus(c, n, a, need);
        }
        sum = sum_keys(c, n);
        tok = invert_cands(c, n, u * sum);
    }
    if (tok < 0 || !(sum > 0.0) || !isfinite(sum)) return KLC_ERR_NUMERIC;
    *token = tok;
    *logprob = ((double)y[tok] - (double)mx) - log(sum);
    return KLC_OK;
}
