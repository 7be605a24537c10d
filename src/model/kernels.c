/* Layer norm, GELU, bias and residual kernels (llm.c-style forward/backward pairs). */
#include "kernels.h"
#include "core/internal.h"

#include <math.h>
#include <omp.h>
#include <string.h>

KLC_HOT void klc_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                   const float *weight, const float *bias, int64_t R, int C,
                                   float eps) {
#pragma omp parallel for schedule(static) if (R * C > KLC_PAR_MIN_WORK)
    for (int64_t r = 0; r < R; r++) {
        const float *x = inp + r * C;
        float *y = out + r * C;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < C; i++) s += x[i];
        float m = s / C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int i = 0; i < C; i++) {
            float d = x[i] - m;
            v += d * d;
        }
        float rs = 1.0f / sqrtf(v / C + eps);
#pragma omp simd
        for (int i = 0; i < C; i++) y[i] = (x[i] - m) * rs * weight[i] + bias[i];
        if (mean) mean[r] = m;
        if (rstd) rstd[r] = rs;
    }
}

KLC_HOT void klc_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                    const float *inp, const float *weight, const float *mean,
                                    const float *rstd, int64_t R, int C, float *scratch) {
    int nt = omp_get_max_threads();
    memset(scratch, 0, sizeof(float) * 2 * (size_t)C * (size_t)nt);
#pragma omp parallel if (R * C > KLC_PAR_MIN_WORK)
    {
        float *dw = scratch + (size_t)omp_get_thread_num() * 2 * C, *db = dw + C;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            const float *x = inp + r * C, *dy = dout + r * C;
            float *dx = dinp + r * C;
            const float m = mean[r], rs = rstd[r];
            float sum_dn = 0.0f, sum_dn_n = 0.0f;
#pragma omp simd reduction(+ : sum_dn, sum_dn_n)
            for (int i = 0; i < C; i++) {
                float n = (x[i] - m) * rs, dn = weight[i] * dy[i];
                sum_dn += dn;
                sum_dn_n += dn * n;
            }
            const float mean_dn = sum_dn / C, mean_dn_n = sum_dn_n / C;
#pragma omp simd
            for (int i = 0; i < C; i++) {
                float n = (x[i] - m) * rs, dn = weight[i] * dy[i];
                db[i] += dy[i];
                dw[i] += n * dy[i];
                dx[i] += rs * (dn - mean_dn - n * mean_dn_n);
            }
        }
    }
    for (int t = 0; t < nt; t++) {
        const float *dw = scratch + (size_t)t * 2 * C, *db = dw + C;
        for (int i = 0; i < C; i++) {
            dweight[i] += dw[i];
            dbias[i] += db[i];
        }
    }
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

/* tanh(u) = 1 - 2/(exp(2u) + 1), through the vectorisable exp. */
static inline float fast_tanhf(float u) {
    return 1.0f - 2.0f / (klc_fast_expf(2.0f * u) + 1.0f);
}

static inline float gelu(float x) {
    float u = GELU_K * (x + GELU_A * x * x * x);
    return 0.5f * x * (1.0f + fast_tanhf(u));
}

/* The element-wise kernels run a plain simd loop on a contiguous part of the range per
 * thread (split_range): with `parallel for simd` GCC ran the scalar version whenever the
 * region's `if` kept it on one thread. Each takes (a, b, n); b is NULL where unused. */
typedef void (*span_fn)(float *restrict a, const float *restrict b, int64_t n);

static void split_range(span_fn f, float *a, const float *b, int64_t n) {
    if (n <= KLC_PAR_MIN_WORK) {
        f(a, b, n);
        return;
    }
#pragma omp parallel
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
        f(a + lo, b ? b + lo : NULL, hi - lo);
    }
}

static KLC_HOT void gelu_span(float *restrict out, const float *restrict inp, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = gelu(inp[i]);
}

static KLC_HOT void gelu_inplace_span(float *restrict x, const float *restrict unused, int64_t n) {
    (void)unused;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) x[i] = gelu(x[i]);
}

static KLC_HOT void gelu_backward_span(float *restrict d, const float *restrict inp, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        float t = fast_tanhf(u);
        float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
        d[i] *= 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    }
}

static KLC_HOT void mul_span(float *restrict a, const float *restrict b, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) a[i] *= b[i];
}

static KLC_HOT void add_span(float *restrict a, const float *restrict b, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) a[i] += b[i];
}

void klc_gelu_forward(float *restrict out, const float *restrict inp, int64_t n) {
    split_range(gelu_span, out, inp, n);
}

void klc_gelu_forward_inplace(float *x, int64_t n) {
    split_range(gelu_inplace_span, x, NULL, n);
}

void klc_gelu_backward(float *restrict d, const float *restrict inp, int64_t n) {
    split_range(gelu_backward_span, d, inp, n);
}

void klc_add_inplace(float *a, const float *b, int64_t n) {
    split_range(add_span, a, b, n);
}

void klc_mul_inplace(float *a, const float *b, int64_t n) {
    split_range(mul_span, a, b, n);
}

KLC_HOT void klc_fill_rows(float *out, const float *bias, int64_t R, int N) {
#pragma omp parallel for schedule(static) if (R * N > KLC_PAR_MIN_WORK)
    for (int64_t r = 0; r < R; r++) memcpy(out + r * N, bias, sizeof(float) * (size_t)N);
}

KLC_HOT void klc_bias_backward(float *dbias, const float *dout, int64_t R, int N) {
    /* Columns split across threads, rows streamed: no reduction races. */
    const int block = 256;
    int nblocks = (N + block - 1) / block;
#pragma omp parallel for schedule(static) if (R * N > KLC_PAR_MIN_WORK)
    for (int b = 0; b < nblocks; b++) {
        int j0 = b * block, j1 = j0 + block < N ? j0 + block : N;
        float acc[256];
        for (int j = j0; j < j1; j++) acc[j - j0] = 0.0f;
        for (int64_t r = 0; r < R; r++) {
            const float *row = dout + r * N;
#pragma omp simd
            for (int j = j0; j < j1; j++) acc[j - j0] += row[j];
        }
        for (int j = j0; j < j1; j++) dbias[j] += acc[j - j0];
    }
}

KLC_HOT float klc_row_logsumexp(const float *row, int V) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < V; i++) mx = row[i] > mx ? row[i] : mx;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < V; i++) s += klc_fast_expf(row[i] - mx);
    return mx + logf(s);
}

KLC_HOT float klc_row_softmax_scaled(float *row, int V, float scale) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < V; i++) mx = row[i] > mx ? row[i] : mx;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < V; i++) {
        row[i] = klc_fast_expf(row[i] - mx);
        s += row[i];
    }
    const float f = scale / s;
#pragma omp simd
    for (int i = 0; i < V; i++) row[i] *= f;
    return mx + logf(s);
}
