#include "matmul.h"
#include "kernels.h"

#include <cblas.h>

void klc_matmul_forward(float *out, const float *inp, const float *W, const float *bias, int64_t R,
                        int K, int N) {
    if (bias) klc_fill_rows(out, bias, R, N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, N, K, 1.0f, inp, K, W, N,
                bias ? 1.0f : 0.0f, out, N);
}

void klc_matmul_backward(float *dinp, int accumulate, float *dW, float *dbias, const float *dout,
                         const float *inp, const float *W, int64_t R, int K, int N) {
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, K, N, 1.0f, dout, N, W, N,
                    accumulate ? 1.0f : 0.0f, dinp, K);
    if (dW)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, (int)R, 1.0f, inp, K, dout, N,
                    1.0f, dW, N);
    if (dbias) klc_bias_backward(dbias, dout, R, N);
}
