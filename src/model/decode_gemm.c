/* Decoding products through libxsmm. libxsmm works column-major: a row-major [R, N] matrix
 * is its column-major [N, R], so out[n,N] = inp[n,K] W[K,N] is out' = W' inp' with W' the
 * stored weights (lda = N) and inp' the stored rows (ldb = K); one kernel call covers one
 * panel of output columns for one block of rows. */
#include "decode_gemm.h"
#include "kernels.h"

#include <cblas.h>
#include <libxsmm.h>
#include <omp.h>

enum { P = KLC_DECODE_PANEL, RB = KLC_DECODE_ROW_BLOCK };

/* C[m,n] = A[m,k] B[k,n] (+ C when accumulate), column-major with the given strides; NULL
 * when libxsmm cannot generate it here. libxsmm caches what it generates, so asking again
 * for a shape costs a table lookup. */
static libxsmm_smmfunction kernel(int m, int n, int k, int lda, int ldb, int ldc, int accumulate) {
    if (m < 1 || n < 1) return NULL;
    const libxsmm_blasint la = lda, lb = ldb, lc = ldc;
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    const int flags = LIBXSMM_GEMM_FLAG_NONE, prefetch = LIBXSMM_PREFETCH_NONE;
    return libxsmm_smmdispatch(m, n, k, &la, &lb, &lc, &alpha, &beta, &flags, &prefetch);
}

/* The kernel for a panel of m columns and a block of r rows: full or tail in each. */
typedef struct kernels4 {
    libxsmm_smmfunction k[2][2]; /* [tail panel][tail rows] */
} kernels4;

static int kernels4_get(kernels4 *ks, int n, int N, int K, int accumulate) {
    const int m_tail = N % P, r_tail = n % RB;
    const int ms[2] = {N >= P ? P : 0, m_tail}, rs[2] = {n >= RB ? RB : 0, r_tail};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            ks->k[a][b] = NULL;
            if (ms[a] == 0 || rs[b] == 0) continue;
            ks->k[a][b] = kernel(ms[a], rs[b], K, N, K, N, accumulate);
            if (!ks->k[a][b]) return 0;
        }
    return 1;
}

void klc_decode_matmul(float *out, const float *inp, const float *W, const float *bias, int n,
                       int K, int N) {
    if (bias) klc_fill_rows(out, bias, n, N);
    kernels4 ks;
    if (!kernels4_get(&ks, n, N, K, bias != NULL)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, N, K, 1.0f, inp, K, W, N,
                    bias ? 1.0f : 0.0f, out, N);
        return;
    }
    const int panels = (N + P - 1) / P, blocks = (n + RB - 1) / RB;
    /* Each (panel, row block) is computed whole by one thread: results do not depend on the
     * thread count. */
#pragma omp parallel for schedule(static) if ((int64_t)n * K * N >= 16 * KLC_PAR_MIN_WORK)
    for (int t = 0; t < panels * blocks; t++) {
        const int j = (t % panels) * P, i0 = (t / panels) * RB;
        const libxsmm_smmfunction f = ks.k[N - j < P][n - i0 < RB];
        f(W + j, inp + (int64_t)i0 * K, out + (int64_t)i0 * N + j);
    }
}

size_t klc_decode_lm_head_scratch(int n, int C, int threads) {
    return (size_t)n * (size_t)C + (size_t)threads * RB * P;
}

/* The head as tiles of logits^T: for a block of r rows, tile'[r, P] = hT'[r, C] wte'[C, P]
 * where hT' is the block's rows transposed (lda = r) and wte' is P consecutive rows of the
 * embedding as stored (ldb = C); each tile is transposed into the logits while it is in
 * cache. Every weight is read once per block of rows and never copied. */
void klc_decode_lm_head(float *logits, const float *h, const float *wte, int n, int C, int V,
                        float *scratch) {
    float *hT = scratch, *tiles = scratch + (size_t)n * (size_t)C;
    for (int i0 = 0; i0 < n; i0 += RB) {
        const int r = n - i0 < RB ? n - i0 : RB;
        const libxsmm_smmfunction full = V >= P ? kernel(r, P, C, r, C, r, 0) : NULL;
        const libxsmm_smmfunction tail = V % P ? kernel(r, V % P, C, r, C, r, 0) : NULL;
        if ((V >= P && !full) || (V % P && !tail)) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r, V, C, 1.0f, h + (int64_t)i0 * C,
                        C, wte, C, 0.0f, logits + (int64_t)i0 * V, V);
            continue;
        }
        float *blockT = hT + (int64_t)i0 * C; /* [C, r] */
        for (int i = 0; i < r; i++)
            for (int k = 0; k < C; k++) blockT[(int64_t)k * r + i] = h[(int64_t)(i0 + i) * C + k];
        const int panels = (V + P - 1) / P;
#pragma omp parallel for schedule(static) if ((int64_t)r * C * V > 64 * KLC_PAR_MIN_WORK)
        for (int p = 0; p < panels; p++) {
            const int v0 = p * P, w = V - v0 < P ? V - v0 : P;
            float *tile = tiles + (size_t)omp_get_thread_num() * RB * P; /* [w][r] */
            (w == P ? full : tail)(blockT, wte + (int64_t)v0 * C, tile);
            for (int i = 0; i < r; i++) {
                float *dst = logits + (int64_t)(i0 + i) * V + v0;
                for (int v = 0; v < w; v++) dst[v] = tile[v * r + i];
            }
        }
    }
}
