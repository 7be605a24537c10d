/* Small helpers shared by the test suites. */
#ifndef KLC_TESTUTIL_H
#define KLC_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "klc.h"

/* Fails the test with klc_last_error() when a klc call does not return KLC_OK. */
#define ck_klc(expr)                                                                               \
    do {                                                                                           \
        int ck_klc_status_ = (expr);                                                               \
        ck_assert_msg(ck_klc_status_ == KLC_OK, "%s -> %s: %s", #expr,                             \
                      klc_status_str(ck_klc_status_), klc_last_error());                           \
    } while (0)

/* Asserts that a klc call fails with `expected` and a message containing `fragment`. */
#define ck_status(expr, expected, fragment)                                                        \
    do {                                                                                           \
        klc_clear_error();                                                                         \
        int ck_s_ = (expr);                                                                        \
        ck_assert_msg(ck_s_ == (expected), "%s -> %s (expected %s): %s", #expr,                    \
                      klc_status_str(ck_s_), klc_status_str(expected), klc_last_error());          \
        ck_assert_msg(strstr(klc_last_error(), (fragment)) != NULL, "%s: message '%s' lacks '%s'", \
                      #expr, klc_last_error(), (fragment));                                        \
    } while (0)

/* A GPT-2 of the given shape with freshly initialised weights (N(0, std^2)); allocator may
 * be NULL. */
klc_model *tu_model(int n_layer, int n_embd, int n_head, int vocab, int n_ctx, float std,
                    uint64_t seed, const klc_allocator *allocator);

/* The 40 sequences a model over a vocabulary of 4 (tokens 0, 1, 2 and the end-of-text
 * token 3) can generate in at most 3 tokens after an end-of-text token, right-padded to 4:
 * [3, 3], [3, a, 3] and [3, a, b, c] (c = 3 or truncated). tokens [40*4], lengths [40];
 * returns 40. */
int tu_tiny_sequences(int32_t *tokens, int32_t *lengths);

/* A fresh empty directory under the build tree's tmp folder; caller frees the string. */
char *tu_make_temp_dir(const char *tag);
/* Removes a directory tree (best effort). */
void tu_remove_tree(const char *path);
/* Reads a whole file; returns NULL if it cannot. *size receives the byte count. */
char *tu_read_file(const char *path, size_t *size);
/* Writes a whole file; returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t size);
/* log sum_i exp(x[i]) in double, the largest term taken out; -inf when every x is -inf. */
double tu_logsumexp(const double *x, int n);
/* KL(p||m) over n listed sequences, exactly: p proportional to exp(logP) (-inf for P = 0),
 * logm the normalised log-probabilities of a model m. */
double tu_exact_kl(const double *logP, const double *logm, int n);

/* Runs a suite and returns the process exit status (0 when every test passed). */
int tu_run_suite(Suite *s);

#endif
