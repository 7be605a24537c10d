/* The model's element-wise kernels against libm and against their definitions. */
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

int main(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("kernels");
    tcase_add_test(tc, fast_exp_is_accurate);
    tcase_add_test(tc, gelu_matches_its_definition_and_derivative);
    tcase_add_test(tc, logsumexp_of_a_long_row);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
