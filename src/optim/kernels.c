/* The element-wise loops of an update, over one chunk. They are compiled for several
 * instruction sets (KLC_HOT) and kept free of calls and data-dependent branches so that
 * they vectorise: options enter as loop-invariant selects, which pick exact values, so a
 * switched-off feature changes no bits (multiplying by 1 and clamping to +inf are exact). */
#include "optim.h"

#include <math.h>

KLC_HOT void klc_optim_sumsq(const float *restrict g, size_t n, float clip, double *raw,
                             double *clipped) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
    *raw = s;
    if (isinf(clip)) {
        *clipped = s;
        return;
    }
    double sc = 0.0;
#pragma omp simd reduction(+ : sc)
    for (size_t i = 0; i < n; i++) {
        float x = g[i] > clip ? clip : g[i];
        x = x < -clip ? -clip : x;
        sc += (double)x * (double)x;
    }
    *clipped = sc;
}

/* PyTorch's operation order, element by element:
 *   g = clip(g) * scale [+ weight_decay * p]             clip_grad_*, Adam's L2
 *   m = m * beta1 + (1 - beta1) * g                      exp_avg.mul_().add_()
 *   v = v * beta2 + (1 - beta2) * (g * g)                exp_avg_sq.mul_().addcmul_()
 *   p = p * decay - step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *                                                        AdamW's param.mul_(), addcdiv_() */
KLC_HOT void klc_optim_adam_chunk(float *restrict p, float *restrict m, float *restrict v,
                                  const float *restrict g, size_t n, const klc_update_coefs *c) {
    const float cv = c->clip_value, cs = c->clip_scale, wd = c->l2, decay = c->decay;
    const float b1 = c->beta1, ob1 = c->one_minus_beta1, b2 = c->beta2, ob2 = c->one_minus_beta2;
    const float ss = c->step_size, bc2 = c->bias2_sqrt, eps = c->eps;
    const int l2 = wd != 0.0f;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] > cv ? cv : g[i];
        gi = gi < -cv ? -cv : gi;
        gi = gi * cs;
        gi = l2 ? gi + wd * p[i] : gi;
        const float mi = m[i] * b1 + ob1 * gi;
        const float vi = v[i] * b2 + ob2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        const float denom = sqrtf(vi) / bc2 + eps;
        p[i] = p[i] * decay - ss * mi / denom;
    }
}

/* torch.optim.SGD's order:
 *   g = clip(g) * scale [+ weight_decay * p]
 *   buf = g (first step) or buf * momentum + (1 - dampening) * g
 *   g = g + momentum * buf (Nesterov) or buf
 *   p = p - lr * g */
KLC_HOT void klc_optim_sgd_chunk(float *restrict p, float *restrict m, const float *restrict g,
                                 size_t n, const klc_update_coefs *c) {
    const float cv = c->clip_value, cs = c->clip_scale, wd = c->l2, lr = c->lr;
    const float mom = c->momentum, od = c->one_minus_dampening;
    const int l2 = wd != 0.0f, first = c->first, nesterov = c->nesterov;
    if (!m) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] > cv ? cv : g[i];
            gi = gi < -cv ? -cv : gi;
            gi = gi * cs;
            gi = l2 ? gi + wd * p[i] : gi;
            p[i] = p[i] - lr * gi;
        }
        return;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] > cv ? cv : g[i];
        gi = gi < -cv ? -cv : gi;
        gi = gi * cs;
        gi = l2 ? gi + wd * p[i] : gi;
        const float b = first ? gi : m[i] * mom + od * gi;
        m[i] = b;
        gi = nesterov ? gi + mom * b : b;
        p[i] = p[i] - lr * gi;
    }
}
