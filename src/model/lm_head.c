#include "lm_head.h"
#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void klc_lm_head(klc_model *m, klc_activations *a, int64_t R, klc_lm_mode mode,
                 const float *onehot_coef, const float *softmax_coef, float *dlnf) {
    const int C = m->cfg.n_embd, V = m->cfg.vocab_size;
    const float *wte = m->p.wte;
    if (mode == KLC_LM_NONE) return;
    const int grad = mode != KLC_LM_LOGPROBS;
    for (int64_t r0 = 0; r0 < R; r0 += a->logits_rows) {
        const int n = (int)(R - r0 < a->logits_rows ? R - r0 : a->logits_rows);
        const float *h = a->lnf + r0 * C;
        float *logits = a->logits;
        /* logits[n,V] = h[n,C] wte[V,C]^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, V, C, 1.0f, h, C, wte, C, 0.0f,
                    logits, V);
        int any_grad = 0;
#pragma omp parallel for schedule(static)                                                          \
    reduction(|                                                                                    \
              : any_grad) if ((int64_t)n * V > KLC_PAR_MIN_WORK)
        for (int i = 0; i < n; i++) {
            const int64_t r = r0 + i;
            float *row = logits + (int64_t)i * V;
            const int32_t target = a->row_target[r];
            float on = 0.0f, sm = 0.0f;
            if (grad && target >= 0) {
                const int64_t k = a->row_index[r];
                on = onehot_coef ? onehot_coef[k] : 0.0f;
                sm = softmax_coef ? softmax_coef[k] : 0.0f;
            }
            if (mode == KLC_LM_FUSED_GRAD && sm != 0.0f) {
                /* The log-softmax and the gradient's softmax from one exponential each. */
                const float y = target >= 0 ? row[target] : 0.0f;
                const float lse = klc_row_softmax_scaled(row, V, sm);
                a->lse[r] = lse;
                a->token_lp[r] = target >= 0 ? y - lse : 0.0f;
            } else {
                float lse;
                if (mode == KLC_LM_RECOMPUTE_GRAD) {
                    lse = a->lse[r];
                } else {
                    lse = klc_row_logsumexp(row, V);
                    a->lse[r] = lse;
                    a->token_lp[r] = target >= 0 ? row[target] - lse : 0.0f;
                }
                if (!grad) continue;
                if (sm == 0.0f) {
                    memset(row, 0, sizeof(float) * (size_t)V);
                } else {
#pragma omp simd
                    for (int j = 0; j < V; j++) row[j] = sm * klc_fast_expf(row[j] - lse);
                }
            }
            if (target >= 0) row[target] += on;
            any_grad |= (sm != 0.0f || on != 0.0f);
        }
        if (!grad) continue;
        float *dh = dlnf + r0 * C;
        if (!any_grad) {
            memset(dh, 0, sizeof(float) * (size_t)n * C);
            continue;
        }
        /* dh[n,C] = dlogits[n,V] wte[V,C] ; dwte[V,C] += dlogits^T h */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, C, V, 1.0f, logits, V, wte, C,
                    0.0f, dh, C);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, C, n, 1.0f, logits, V, h, C, 1.0f,
                    m->g.wte, C);
    }
}
