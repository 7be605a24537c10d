/* The yardstick of the model benchmarks: the dense products of one training step (forward
 * and backward of every block matrix and of the tied LM head, in logit chunks of the
 * model's size) straight through cblas_sgemm with the model's layouts, so that a step's
 * rate can be stated as a fraction of what sgemm itself delivers on the same products, in
 * the same process. Header-only: each benchmark is one file. */
#ifndef KLC_BENCH_SGEMM_YARDSTICK_H
#define KLC_BENCH_SGEMM_YARDSTICK_H

#include <cblas.h>
#include <stddef.h>
#include <time.h>

static inline double yardstick_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Floats each of the three operand buffers of yardstick_step_seconds needs. */
static inline size_t yardstick_floats(int M, int C, int V) {
    size_t big = (size_t)(4 * C) * (size_t)(V > M ? V : M);
    if (big < ((size_t)64 << 20) / 4 + (size_t)V) big = ((size_t)64 << 20) / 4 + (size_t)V;
    return big;
}

/* FLOPs of those products: forward, input gradient and weight gradient, 2 per
 * multiply-add, over M rows. */
static inline double yardstick_flops(int M, int n_layer, int C, int V) {
    return 3.0 * 2.0 * M * (n_layer * 12.0 * C * C + (double)V * C);
}

/* Seconds for the products of one training step over M rows (A, B, Cm of
 * yardstick_floats floats each; their contents do not matter). */
static inline double yardstick_step_seconds(int M, int n_layer, int C, int V, float *A, float *B,
                                            float *Cm) {
    const int kn[4][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}};
    double t0 = yardstick_now();
    for (int l = 0; l < n_layer; l++)
        for (int p = 0; p < 4; p++) {
            int K = kn[p][0], N = kn[p][1];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, B, N, 0, Cm,
                        N);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, N, 1, Cm, N, B, N, 0, A, K);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, M, 1, A, K, Cm, N, 1, B, N);
        }
    /* LM head in logit chunks of the model's size: forward, dH, dwte. */
    int chunk = (int)((64u << 20) / (4u * (unsigned)V));
    if (chunk > M) chunk = M;
    for (int r = 0; r < M; r += chunk) {
        int n = M - r < chunk ? M - r : chunk;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, V, C, 1, A, C, B, C, 0, Cm, V);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, C, V, 1, Cm, V, B, C, 0, A, C);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, C, n, 1, Cm, V, A, C, 1, B, C);
    }
    return yardstick_now() - t0;
}

#endif
