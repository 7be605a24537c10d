/* The element-wise and row-wise layers of GPT-2, each a forward/backward pair, over packed
 * rows (R tokens, no padding). Matrix products are in matmul.c. */
#ifndef KLC_MODEL_KERNELS_H
#define KLC_MODEL_KERNELS_H

#include <stdint.h>

/* A vectorisable exp for float, accurate to about 2 ulp over [-87, 88]; inputs outside
 * are clamped (so exp(-inf) gives about 1e-38), and NaN stays NaN. */
static inline float klc_fast_expf(float x) {
    /* Clamp a copy (NaN goes to the low end, so the integer conversion below is always
     * defined), and let NaN through at the end. */
    float xc = x > -87.3f ? x : -87.3f;
    xc = xc < 88.3f ? xc : 88.3f;
    /* Round x/ln2 to the nearest integer with the 1.5 * 2^23 trick (vectorises). */
    const float magic = 12582912.0f;
    float n = (xc * 1.44269504088896341f + magic) - magic;
    float r = xc - n * 0.693145751953125f; /* ln2 high part, exact product */
    r = r - n * 1.428606765330187045e-06f; /* ln2 low part */
    /* Taylor series to degree 7: |r| <= 0.347, remainder < 6e-9 relative. */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale;
    scale.i = ((int32_t)n + 127) << 23;
    float y = p * scale.f;
    return x == x ? y : x;
}

/* Below this much work (elements or multiply-adds) a loop runs on one thread: waking a
 * second one costs more, and far more when the machine is oversubscribed. */
#define KLC_PAR_MIN_WORK 65536

/* out[R,C] = (inp - mean) * rstd * weight + bias; mean, rstd [R] kept for backward. */
void klc_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int64_t R, int C, float eps);
/* dinp[R,C] += ...; dweight[C], dbias[C] += ... The partial sums of dweight/dbias use
 * scratch [n_threads * 2C]. */
void klc_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int64_t R, int C, float *scratch);

/* out[n] = gelu_tanh(inp), out and inp distinct. (Element-wise kernels come in distinct
 * and in-place forms because GCC versions loops on a run-time overlap check and runs the
 * scalar version when the pointers are equal.) */
void klc_gelu_forward(float *restrict out, const float *restrict inp, int64_t n);
/* x[n] = gelu_tanh(x). */
void klc_gelu_forward_inplace(float *x, int64_t n);
/* d[n] *= gelu'(inp): the gradient through the GELU, in place on the incoming gradient. */
void klc_gelu_backward(float *restrict d, const float *restrict inp, int64_t n);

/* Each row of out[R,N] = bias[N] (the products then accumulate onto it). */
void klc_fill_rows(float *out, const float *bias, int64_t R, int N);
/* dbias[N] += column sums of dout[R,N]. */
void klc_bias_backward(float *dbias, const float *dout, int64_t R, int N);
/* a[n] += b[n] (a and b distinct). */
void klc_add_inplace(float *a, const float *b, int64_t n);
/* a[n] *= b[n] (a and b distinct). */
void klc_mul_inplace(float *a, const float *b, int64_t n);

/* Log-softmax helpers for one row of logits. Returns logsumexp(row[0..V-1]). */
float klc_row_logsumexp(const float *row, int V);
/* row <- scale * softmax(row), with one exponential per element; returns the row's
 * logsumexp (as klc_row_logsumexp computes it). */
float klc_row_softmax_scaled(float *row, int V, float scale);

#endif
