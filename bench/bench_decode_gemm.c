/* The products of one decoding step on klc's small shape (4 layers, 256 wide, vocab 8192):
 * 64 rows against every weight matrix (c_attn, attn.c_proj, c_fc, mlp.c_proj per layer,
 * then the tied LM head), each matrix in its own memory as in a model, timed through
 * cblas_sgemm (the decoder's products before; OpenBLAS repacks every weight matrix at every
 * call) and through klc's decoding products (src/model/decode_gemm.c: libxsmm's kernels
 * reading the weights in place), in the same process, alternating.
 *
 *   bench_decode_gemm [--rows N] [--reps N] [--rounds N]
 *
 * Prints, per round, the milliseconds of one step each way, GFLOP/s and the ratio; then
 * the medians. Set OMP_NUM_THREADS for the thread count (klc restarts the benchmarks
 * with OPENBLAS_CORETYPE set when OpenBLAS does not know the CPU). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/blas_core.h"
#include "klc.h"
#include "model/decode_gemm.h"

#include <omp.h>

enum { LAYERS = 4, C = 256, V = 8192, MAX_ROUNDS = 64 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *filled(size_t n, unsigned seed) {
    float *p = malloc(sizeof(float) * n);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = (float)sin(0.37 * (double)(i + seed)) * 0.05f;
    return p;
}

/* (in, out) of the four products of a layer. */
static const int shape[4][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}};

typedef struct weights {
    float *w[LAYERS][4], *b[LAYERS][4], *wte;
} weights;

static void step_blas(const weights *m, const float *x, float *out, int n) {
    for (int l = 0; l < LAYERS; l++)
        for (int k = 0; k < 4; k++) {
            const int K = shape[k][0], N = shape[k][1];
            for (int i = 0; i < n; i++) memcpy(out + (size_t)i * N, m->b[l][k], sizeof(float) * N);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, N, K, 1.0f, x, K, m->w[l][k],
                        N, 1.0f, out, N);
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, V, C, 1.0f, x, C, m->wte, C, 0.0f, out,
                V);
}

static void step_klc(const weights *m, const float *x, float *out, int n, float *scratch) {
    for (int l = 0; l < LAYERS; l++)
        for (int k = 0; k < 4; k++)
            klc_decode_matmul(out, x, m->w[l][k], m->b[l][k], n, shape[k][0], shape[k][1]);
    klc_decode_lm_head(out, x, m->wte, n, C, V, scratch);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int arg_int(int argc, char **argv, int *i, const char *name, int lo, int hi) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s needs a value\n", name);
        exit(2);
    }
    const int v = atoi(argv[++*i]);
    if (v < lo || v > hi) {
        fprintf(stderr, "%s must be in [%d, %d]\n", name, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    klc_blas_select_core_or_reexec(argv);
    int n = 64, reps = 50, rounds = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows"))
            n = arg_int(argc, argv, &i, "--rows", 1, 1024);
        else if (!strcmp(argv[i], "--reps"))
            reps = arg_int(argc, argv, &i, "--reps", 1, 100000);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = arg_int(argc, argv, &i, "--rounds", 1, MAX_ROUNDS);
        else {
            fprintf(stderr, "usage: %s [--rows N] [--reps N] [--rounds N]\n", argv[0]);
            return 2;
        }
    }
    weights m;
    unsigned seed = 1;
    for (int l = 0; l < LAYERS; l++)
        for (int k = 0; k < 4; k++) {
            m.w[l][k] = filled((size_t)shape[k][0] * shape[k][1], seed++);
            m.b[l][k] = filled((size_t)shape[k][1], seed++);
        }
    m.wte = filled((size_t)V * C, seed++);
    float *x = filled((size_t)n * 4 * C, seed++), *out = filled((size_t)n * V, seed++);
    float *scratch = filled(klc_decode_lm_head_scratch(n, C, 64), seed++);
    double flops = 2.0 * n * (double)V * C;
    for (int k = 0; k < 4; k++) flops += 2.0 * n * LAYERS * shape[k][0] * shape[k][1];

    printf("one decoding step's products, %d rows, small shape (%.0f MFLOP), %d threads, "
           "OpenBLAS kernels %s\n",
           n, flops * 1e-6, omp_get_max_threads(), klc_blas_core());
    double tb[MAX_ROUNDS], tk[MAX_ROUNDS], ratio[MAX_ROUNDS];
    step_blas(&m, x, out, n); /* warm-up, and libxsmm generates its kernels */
    step_klc(&m, x, out, n, scratch);
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        for (int k = 0; k < reps; k++) step_blas(&m, x, out, n);
        tb[r] = (now() - t0) / reps;
        t0 = now();
        for (int k = 0; k < reps; k++) step_klc(&m, x, out, n, scratch);
        tk[r] = (now() - t0) / reps;
        ratio[r] = tb[r] / tk[r];
        printf("round %d: cblas_sgemm %.3f ms (%.1f GFLOP/s), klc %.3f ms (%.1f GFLOP/s), %.2fx\n",
               r + 1, tb[r] * 1e3, flops / tb[r] * 1e-9, tk[r] * 1e3, flops / tk[r] * 1e-9,
               ratio[r]);
    }
    const double mb = median(tb, rounds), mk = median(tk, rounds), mr = median(ratio, rounds);
    printf("median: cblas_sgemm %.3f ms (%.1f GFLOP/s), klc %.3f ms (%.1f GFLOP/s), median "
           "ratio %.2fx\n",
           mb * 1e3, flops / mb * 1e-9, mk * 1e3, flops / mk * 1e-9, mr);
    return 0;
}
