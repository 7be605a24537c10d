/* What a run writes: metrics as JSON lines, samples one per line, the metrics log cut at a
 * checkpoint's step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/run_output.h"
#include "testutil.h"

static char *dir;

static char *write_metrics(klc_metrics *m, const char *name) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(metrics_write_jsonl(f, m), 0);
    fclose(f);
    char *text = tu_read_file(path, &(size_t){0});
    ck_assert_ptr_nonnull(text);
    return text;
}

START_TEST(test_metrics_line) {
    klc_metrics *m;
    ck_klc(klc_metrics_create(NULL, &m));
    ck_klc(klc_metrics_set(m, "loss", 0.5));
    ck_klc(klc_metrics_set(m, "train.phi.regex:\"a\\b\"", -3));
    ck_klc(klc_metrics_set(m, "log_z", NAN));
    ck_klc(klc_metrics_set(m, "kl", INFINITY));
    ck_klc(klc_metrics_set(m, "lr", 1.41e-5));
    ck_klc(klc_metrics_set(m, "step", 12));
    char *text = write_metrics(m, "m.jsonl");
    /* The step first; quotes and backslashes escaped; non-finite values null; doubles read
     * back exactly. */
    ck_assert_str_eq(text, "{\"step\": 12, \"loss\": 0.5, \"train.phi.regex:\\\"a\\\\b\\\"\": -3, "
                           "\"log_z\": null, \"kl\": null, \"lr\": 1.41e-05}\n");
    free(text);
    ck_klc(klc_metrics_clear(m));
    ck_klc(klc_metrics_set(m, "x", 0.1 + 0.2));
    text = write_metrics(m, "m2.jsonl");
    ck_assert_str_eq(text, "{\"x\": 0.30000000000000004}\n");
    free(text);
    klc_metrics_destroy(m);
}
END_TEST

START_TEST(test_samples_one_per_line) {
    char path[4300];
    snprintf(path, sizeof path, "%s/samples.txt", dir);
    char a[] = "two\nlines", b[] = "back\\slash", c[] = "";
    char *texts[] = {a, b, c};
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    ck_assert_int_eq(samples_write(path, "samples:", texts, 3, 2), 0);
    fclose(stdout);
    stdout = saved;
    char *text = tu_read_file(path, &(size_t){0});
    ck_assert_str_eq(text, "two\\nlines\nback\\\\slash\n\n");
    free(text);
}
END_TEST

START_TEST(test_truncate_after_checkpoint) {
    char path[4300];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    const char *log = "{\"step\": 0, \"a\": 1}\n{\"step\": 1}\n{\"step\": 2}\n{\"step\": 3}\n";
    ck_assert_int_eq(tu_write_file(path, log, strlen(log)), 0);
    ck_assert_int_eq(metrics_truncate_after(path, 2), 0);
    char *text = tu_read_file(path, &(size_t){0});
    ck_assert_str_eq(text, "{\"step\": 0, \"a\": 1}\n{\"step\": 1}\n{\"step\": 2}\n");
    free(text);
    snprintf(path, sizeof path, "%s/absent.jsonl", dir);
    ck_assert_int_eq(metrics_truncate_after(path, 2), 0);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("cli_output");
    TCase *t = tcase_create("cli_output");
    tcase_add_test(t, test_metrics_line);
    tcase_add_test(t, test_samples_one_per_line);
    tcase_add_test(t, test_truncate_after_checkpoint);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    dir = tu_make_temp_dir("cli-output");
    int rc = tu_run_suite(suite());
    tu_remove_tree(dir);
    free(dir);
    return rc;
}
