/* Sampling one token. Probabilities are exp(y - max y) in float with the maximum
 * subtracted (the vectorised exp of the model's kernels), summed in double; the chosen
 * token's log-probability is (y - max y) - log(sum), exact up to the sum's rounding rather
 * than the log of a rounded probability. A logit of -inf has probability 0 and is never
 * chosen, so no -inf reaches a subtraction that could make NaN. */
#include "draw.h"
#include "core/internal.h"
#include "model/kernels.h"

#include <math.h>

/* Below this, exp underflows float anyway; the fast exp clamps instead of returning 0. */
#define EXP_FLOOR (-87.0f)

static inline float exp_shifted(float d) {
    return d < EXP_FLOOR ? 0.0f : klc_fast_expf(d);
}

/* Scales by 1/temperature and returns the maximum; *bad is set when a logit is NaN. */
static KLC_HOT float scale_and_max(float *y, int32_t n, float inv_t, int *bad) {
    float mx = -INFINITY;
    int nan_seen = 0;
    if (inv_t != 1.0f)
        for (int32_t i = 0; i < n; i++) y[i] *= inv_t;
    for (int32_t i = 0; i < n; i++) {
        nan_seen |= y[i] != y[i];
        mx = y[i] > mx ? y[i] : mx;
    }
    *bad = nan_seen;
    return mx;
}

/* e[i] = exp(y[i] - mx); returns the sum in double. */
static KLC_HOT double exp_shifted_all(float *restrict e, const float *restrict y, int32_t n,
                                      float mx) {
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int32_t i = 0; i < n; i++) {
        e[i] = exp_shifted(y[i] - mx);
        sum += (double)e[i];
    }
    return sum;
}

/* The first index whose running sum exceeds target; the last with positive mass if
 * rounding leaves the running total short of it. */
static int32_t invert_dense(const float *e, int32_t n, double target) {
    double cum = 0.0;
    int32_t last = -1;
    for (int32_t i = 0; i < n; i++) {
        if (e[i] <= 0.0f) continue;
        cum += (double)e[i];
        last = i;
        if (cum > target) return i;
    }
    return last;
}

static int32_t invert_cands(const klc_cand *c, int32_t n, double target) {
    double cum = 0.0;
    int32_t last = -1;
    for (int32_t i = 0; i < n; i++) {
        if (c[i].key <= 0.0f) continue;
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

int klc_draw(const klc_draw_params *p, float *y, klc_cand *c, float *e, double u, int32_t *token,
             double *logprob) {
    const int32_t V = p->vocab;
    int bad;
    const float mx = scale_and_max(y, V, p->inv_temperature, &bad);
    if (bad || !isfinite(mx)) return KLC_ERR_NUMERIC;
    const int use_k = p->top_k > 0 && p->top_k < V, use_p = p->top_p < 1.0;
    int32_t tok, n;
    double sum;
    if (!use_k && !use_p) {
        sum = exp_shifted_all(e, y, V, mx);
        tok = invert_dense(e, V, u * sum);
    } else {
        if (use_k) {
            for (int32_t i = 0; i < V; i++) c[i] = (klc_cand){y[i], i};
            klc_select_top_count(c, V, p->top_k);
            n = p->top_k;
            for (int32_t i = 0; i < n; i++) c[i].key = exp_shifted(c[i].key - mx);
        } else {
            exp_shifted_all(e, y, V, mx);
            for (int32_t i = 0; i < V; i++) c[i] = (klc_cand){e[i], i};
            n = V;
        }
        sum = sum_keys(c, n);
        if (use_p) {
            n = klc_select_top_mass(c, n, p->top_p * sum);
            sum = sum_keys(c, n);
        }
        tok = invert_cands(c, n, u * sum);
    }
    if (tok < 0 || !(sum > 0.0) || !isfinite(sum)) return KLC_ERR_NUMERIC;
    *token = tok;
    *logprob = ((double)y[tok] - (double)mx) - log(sum);
    return KLC_OK;
}
