/* The Conv1D products of GPT-2 through CBLAS, weights stored [in, out] as Hugging Face
 * stores them (bench/RESULTS.md records why this layout is kept). */
#ifndef KLC_MODEL_MATMUL_H
#define KLC_MODEL_MATMUL_H

#include <stdint.h>

/* out[R,N] = inp[R,K] W[K,N] + bias[N] (bias may be NULL). */
void klc_matmul_forward(float *out, const float *inp, const float *W, const float *bias, int64_t R,
                        int K, int N);
/* dinp[R,K] (= or += when accumulate) dout[R,N] W^T ; dW[K,N] += inp^T dout ;
 * dbias[N] += column sums of dout. dinp, dW or dbias may be NULL to skip. */
void klc_matmul_backward(float *dinp, int accumulate, float *dW, float *dbias, const float *dout,
                         const float *inp, const float *W, int64_t R, int K, int N);

#endif
