/* Small helpers shared by the test suites. */
#ifndef KLC_TESTUTIL_H
#define KLC_TESTUTIL_H

#include <check.h>
#include <stddef.h>

#include "klc.h"

/* Fails the test with klc_last_error() when a klc call does not return KLC_OK. */
#define ck_klc(expr)                                                                               \
    do {                                                                                           \
        int ck_klc_status_ = (expr);                                                               \
        ck_assert_msg(ck_klc_status_ == KLC_OK, "%s -> %s: %s", #expr,                             \
                      klc_status_str(ck_klc_status_), klc_last_error());                           \
    } while (0)

/* A fresh empty directory under the build tree's tmp folder; caller frees the string. */
char *tu_make_temp_dir(const char *tag);
/* Removes a directory tree (best effort). */
void tu_remove_tree(const char *path);
/* Reads a whole file; returns NULL if it cannot. *size receives the byte count. */
char *tu_read_file(const char *path, size_t *size);
/* Writes a whole file; returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t size);
/* Runs a suite and returns the process exit status (0 when every test passed). */
int tu_run_suite(Suite *s);

#endif
