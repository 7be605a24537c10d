/* Causal self-attention, one (sequence, head) pair per work item: the products go through
 * single-threaded sgemm calls inside the parallel loop (OpenBLAS's OpenMP build runs
 * one thread when called from a parallel region), the causal softmax in between. */
#include "attention.h"
#include "dropout.h"
#include "kernels.h"
#include "core/internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

void klc_attention_dropout_mask(float *buf, int T, const klc_attn_dropout *drop, uint64_t sample,
                                int head) {
    const uint64_t n_ctx = (uint64_t)drop->n_ctx;
    for (int t = 0; t < T; t++) {
        float *row = buf + (int64_t)t * T;
        klc_dropout_mask(row, t + 1, drop->p, drop->rng, sample, drop->site,
                         ((uint64_t)head * n_ctx + (uint64_t)t) * n_ctx);
        for (int s = t + 1; s < T; s++) row[s] = 0.0f;
    }
}

/* Multiply-adds of one attention pass, to decide whether threads pay for themselves. */
static int64_t attention_work(const klc_packing *pk, int C) {
    int64_t w = 0;
    for (int32_t b = 0; b < pk->n_seq; b++) w += (int64_t)pk->len[b] * pk->len[b] * C;
    return w;
}

/* In place: row t of P[T,T] becomes softmax over columns 0..t, zero after. */
static KLC_HOT void causal_softmax(float *P, int T) {
    for (int t = 0; t < T; t++) {
        float *row = P + (int64_t)t * T;
        float mx = -INFINITY;
        for (int s = 0; s <= t; s++) mx = row[s] > mx ? row[s] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int s = 0; s <= t; s++) {
            float e = klc_fast_expf(row[s] - mx);
            row[s] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int s = 0; s <= t; s++) row[s] *= inv;
        for (int s = t + 1; s < T; s++) row[s] = 0.0f;
    }
}

void klc_attention_forward(float *out, float *att, const float *qkv, const klc_packing *pk, int C,
                           int H, const klc_attn_dropout *drop, float *scratch,
                           int64_t scratch_per_thread) {
    const int hs = C / H;
    const float scale = 1.0f / sqrtf((float)hs);
    const int64_t items = (int64_t)pk->n_seq * H;
    const int dropping = drop && drop->p > 0.0f;
#pragma omp parallel for schedule(dynamic, 1) if (attention_work(pk, C) > KLC_PAR_MIN_WORK)
    for (int64_t it = 0; it < items; it++) {
        const int b = (int)(it / H), h = (int)(it % H);
        const int T = pk->len[b];
        const int64_t r0 = pk->row_off[b];
        float *mine = scratch + (int64_t)omp_get_thread_num() * scratch_per_thread;
        float *P = att ? att + pk->att_off[b] + (int64_t)h * T * T : mine;
        float *Pd = mine + (int64_t)T * T, *M = Pd + (int64_t)T * T;
        const float *Q = qkv + r0 * 3 * C + h * hs, *K = Q + C, *V = Q + 2 * C;
        float *O = out + r0 * C + h * hs;
        /* S[T,T] = Q[T,hs] K[T,hs]^T * scale */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, Q, 3 * C, K, 3 * C,
                    0.0f, P, T);
        causal_softmax(P, T);
        const float *Puse = P;
        if (dropping) {
            klc_attention_dropout_mask(M, T, drop, (uint64_t)pk->sample[b], h);
            for (int64_t i = 0; i < (int64_t)T * T; i++) Pd[i] = P[i] * M[i];
            Puse = Pd;
        }
        /* O[T,hs] = P[T,T] V[T,hs] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, Puse, T, V, 3 * C,
                    0.0f, O, C);
    }
}

void klc_attention_backward(float *dqkv, const float *dout, const float *att, const float *qkv,
                            const klc_packing *pk, int C, int H, const klc_attn_dropout *drop,
                            float *scratch, int64_t scratch_per_thread) {
    const int hs = C / H;
    const float scale = 1.0f / sqrtf((float)hs);
    const int64_t items = (int64_t)pk->n_seq * H;
    const int dropping = drop && drop->p > 0.0f;
#pragma omp parallel for schedule(dynamic, 1) if (attention_work(pk, C) > KLC_PAR_MIN_WORK)
    for (int64_t it = 0; it < items; it++) {
        const int b = (int)(it / H), h = (int)(it % H);
        const int T = pk->len[b];
        const int64_t r0 = pk->row_off[b];
        float *dP = scratch + (int64_t)omp_get_thread_num() * scratch_per_thread;
        float *Pd = dP + (int64_t)T * T, *M = Pd + (int64_t)T * T;
        const float *P = att + pk->att_off[b] + (int64_t)h * T * T;
        const float *Q = qkv + r0 * 3 * C + h * hs, *K = Q + C, *V = Q + 2 * C;
        float *dQ = dqkv + r0 * 3 * C + h * hs, *dK = dQ + C, *dV = dQ + 2 * C;
        const float *dO = dout + r0 * C + h * hs;
        const float *Puse = P;
        if (dropping) {
            klc_attention_dropout_mask(M, T, drop, (uint64_t)pk->sample[b], h);
            for (int64_t i = 0; i < (int64_t)T * T; i++) Pd[i] = P[i] * M[i];
            Puse = Pd;
        }
        /* dP[T,T] = dO[T,hs] V[T,hs]^T ; dV[T,hs] = P^T dO */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, dO, C, V, 3 * C, 0.0f,
                    dP, T);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, Puse, T, dO, C, 0.0f,
                    dV, 3 * C);
        /* Softmax backward, in place: dS = P * (dP - sum_s P dP), causal part only. */
        for (int t = 0; t < T; t++) {
            float *drow = dP + (int64_t)t * T;
            const float *prow = P + (int64_t)t * T;
            if (dropping) {
                const float *mrow = M + (int64_t)t * T;
                for (int s = 0; s <= t; s++) drow[s] *= mrow[s];
            }
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int s = 0; s <= t; s++) dot += prow[s] * drow[s];
#pragma omp simd
            for (int s = 0; s <= t; s++) drow[s] = prow[s] * (drow[s] - dot);
            for (int s = t + 1; s < T; s++) drow[s] = 0.0f;
        }
        /* dQ = dS K * scale ; dK = dS^T Q * scale */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, scale, dP, T, K, 3 * C,
                    0.0f, dQ, 3 * C);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, scale, dP, T, Q, 3 * C, 0.0f,
                    dK, 3 * C);
    }
}
