/* The products of decoding: a few rows (one per sequence being sampled) against whole
 * weight matrices. OpenBLAS packs the weights into its own layout at every call, which
 * with 64 rows costs a third of the product; libxsmm's generated kernels read the weights
 * where they are, one panel of output columns at a time (bench/RESULTS.md, "Decoding
 * products"). Either falls back to CBLAS when libxsmm has no kernel for the shape or the
 * machine. */
#ifndef KLC_MODEL_DECODE_GEMM_H
#define KLC_MODEL_DECODE_GEMM_H

#include <stddef.h>

/* Output columns per kernel call: a panel of the weights is K x 64 floats. */
#define KLC_DECODE_PANEL 64
/* Rows per kernel call; larger batches go through in blocks of this many rows. */
#define KLC_DECODE_ROW_BLOCK 64

/* out[n,N] = inp[n,K] W[K,N] + bias[N] (bias may be NULL); row-major, W as stored. */
void klc_decode_matmul(float *out, const float *inp, const float *W, const float *bias, int n,
                       int K, int N);

/* Floats of scratch klc_decode_lm_head needs for n rows of width C with `threads` threads. */
size_t klc_decode_lm_head_scratch(int n, int C, int threads);

/* logits[n,V] = h[n,C] wte[V,C]^T, with scratch of klc_decode_lm_head_scratch floats. */
void klc_decode_lm_head(float *logits, const float *h, const float *wte, int n, int C, int V,
                        float *scratch);

#endif
