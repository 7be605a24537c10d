/* The model's element-wise kernels against libm and against their definitions. */
#include "model/decode_gemm.h"
#include "model/kernels.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

START_TEST(fast_exp_is_accurate) {
    double worst = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = -87.0f + 175.0f * (float)i / 2000000.0f;
        double want = exp((double)x), got = klc_fast_expf(x);
        double rel = fabs(got - want) / want;
        if (rel > worst) worst = rel;
    }
    ck_assert_msg(worst < 4e-7, "worst relative error %.3e", worst);
    ck_assert(isnan(klc_fast_expf(NAN)));
    float tiny = klc_fast_expf(-INFINITY);
    ck_assert(tiny >= 0.0f && tiny < 1e-37f);
    ck_assert(klc_fast_expf(0.0f) == 1.0f);
}
END_TEST

START_TEST(gelu_matches_its_definition_and_derivative) {
    const int n = 4001;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    float *ones = malloc(sizeof(float) * n), *d = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) x[i] = -10.0f + 20.0f * (float)i / (n - 1), ones[i] = 1.0f;
    klc_gelu_forward(y, x, n);
    klc_gelu_backward(ones, x, n);
    for (int i = 0; i < n; i++) d[i] = ones[i];
    float *z = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) z[i] = x[i];
    klc_gelu_forward_inplace(z, n);
    for (int i = 0; i < n; i++) ck_assert(z[i] == y[i]);
    free(z);
    for (int i = 0; i < n; i++) {
        double v = x[i];
        double g = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        ck_assert_msg(fabs(y[i] - g) < 2e-6 * (1 + fabs(g)), "gelu(%g) = %g, want %g", v, y[i], g);
        double h = 1e-3;
        double gp =
            0.5 * (v + h) * (1 + tanh(sqrt(2 / M_PI) * ((v + h) + 0.044715 * pow(v + h, 3))));
        double gm =
            0.5 * (v - h) * (1 + tanh(sqrt(2 / M_PI) * ((v - h) + 0.044715 * pow(v - h, 3))));
        ck_assert_msg(fabs(d[i] - (gp - gm) / (2 * h)) < 1e-5, "gelu'(%g)", v);
    }
    free(x), free(y), free(ones), free(d);
}
END_TEST

START_TEST(logsumexp_of_a_long_row) {
    const int V = 50257;
    float *row = malloc(sizeof(float) * V);
    double mx = -1e30, s = 0;
    for (int i = 0; i < V; i++) row[i] = (float)(10.0 * sin(i * 0.37) + 0.001 * i);
    for (int i = 0; i < V; i++) mx = row[i] > mx ? row[i] : mx;
    for (int i = 0; i < V; i++) s += exp(row[i] - mx);
    ck_assert_double_eq_tol(klc_row_logsumexp(row, V), mx + log(s), 2e-6);
    free(row);
}
END_TEST

static float *filled(size_t n, double phase) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = (float)sin(0.731 * (double)i + phase);
    return p;
}

/* The decoding products against a double-precision triple loop, over shapes that exercise
 * whole and partial panels of columns, whole and partial blocks of rows, and one row. */
START_TEST(decode_products_match_a_reference) {
    const int ns[] = {1, 3, 64, 65, 130}, Ks[] = {8, 256}, Ns[] = {5, 64, 100, 768};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof Ks / sizeof *Ks; b++)
            for (size_t c = 0; c < sizeof Ns / sizeof *Ns; c++)
                for (int with_bias = 0; with_bias < 2; with_bias++) {
                    const int n = ns[a], K = Ks[b], N = Ns[c];
                    float *x = filled((size_t)n * K, 0.1), *W = filled((size_t)K * N, 0.7);
                    float *bias = filled((size_t)N, 2.0), *out = filled((size_t)n * N, 5.0);
                    klc_decode_matmul(out, x, W, with_bias ? bias : NULL, n, K, N);
                    for (int i = 0; i < n; i++)
                        for (int j = 0; j < N; j++) {
                            double ref = with_bias ? bias[j] : 0.0;
                            for (int k = 0; k < K; k++)
                                ref += (double)x[i * K + k] * W[(size_t)k * N + j];
                            ck_assert_msg(fabs(out[(size_t)i * N + j] - ref) < 1e-4 * sqrt(K),
                                          "n=%d K=%d N=%d bias=%d (%d,%d): %g vs %g", n, K, N,
                                          with_bias, i, j, out[(size_t)i * N + j], ref);
                        }
                    free(x), free(W), free(bias), free(out);
                }
}
END_TEST

START_TEST(decode_lm_head_matches_a_reference) {
    const int ns[] = {1, 7, 64, 70}, Cs[] = {8, 256}, Vs[] = {7, 64, 200};
    const int threads = 4;
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof Cs / sizeof *Cs; b++)
            for (size_t c = 0; c < sizeof Vs / sizeof *Vs; c++) {
                const int n = ns[a], C = Cs[b], V = Vs[c];
                float *h = filled((size_t)n * C, 0.3), *wte = filled((size_t)V * C, 1.1);
                float *logits = filled((size_t)n * V, 4.0);
                float *scratch = filled(klc_decode_lm_head_scratch(n, C, threads), 9.0);
                klc_decode_lm_head(logits, h, wte, n, C, V, scratch);
                for (int i = 0; i < n; i++)
                    for (int v = 0; v < V; v++) {
                        double ref = 0.0;
                        for (int k = 0; k < C; k++)
                            ref += (double)h[(size_t)i * C + k] * wte[(size_t)v * C + k];
                        ck_assert_msg(fabs(logits[(size_t)i * V + v] - ref) < 1e-4 * sqrt(C),
                                      "n=%d C=%d V=%d (%d,%d): %g vs %g", n, C, V, i, v,
                                      logits[(size_t)i * V + v], ref);
                    }
                free(h), free(wte), free(logits), free(scratch);
            }
}
END_TEST

int main(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("kernels");
    tcase_add_test(tc, fast_exp_is_accurate);
    tcase_add_test(tc, gelu_matches_its_definition_and_derivative);
    tcase_add_test(tc, logsumexp_of_a_long_row);
    tcase_add_test(tc, decode_products_match_a_reference);
    tcase_add_test(tc, decode_lm_head_matches_a_reference);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
