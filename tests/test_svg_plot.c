/* The klc program's SVG plots and run report: the SVG written for a known metrics log is
 * parsed back (panels, polylines and their points, dots, tick labels, legend, gaps), and
 * the report's Markdown is checked line by line. */
#include "cli/report.h"
#include "cli/svg_plot.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Five steps: eval.b_mean only at steps 3 and 5; train.kl_p_pi NaN at step 2 (a gap after
 * a lone first value); log_z null at 1 and infinite at 4; lr in no default panel. */
static const char *LOG =
    "{\"step\": 1, \"train.b_mean\": 0.0, \"train.kl_p_pi\": 2.0, \"log_z\": null}\n"
    "{\"step\": 2, \"train.b_mean\": 0.5, \"train.kl_p_pi\": NaN, \"log_z\": -3.0}\n"
    "\n"
    "{\"step\": 3, \"train.b_mean\": 1.0, \"train.kl_p_pi\": 1.0, \"eval.b_mean\": 0.25, "
    "\"log_z\": -3.5, \"note\": \"a|b\"}\n"
    "{\"step\": 4, \"train.b_mean\": 0.75, \"train.kl_p_pi\": 0.5, \"log_z\": Infinity}\n"
    "{\"step\": 5, \"train.b_mean\": 0.5, \"train.kl_p_pi\": 0.25, \"eval.b_mean\": 0.5, "
    "\"log_z\": -4.0, \"lr\": 0.001}\n";

/* --- A small reader of the SVG the plotter writes ----------------------------------------- */

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++) n++;
    return n;
}

/* A panel's SVG text (a malloc'd copy), panel i. */
static char *panel(const char *svg, int i) {
    char id[32];
    snprintf(id, sizeof id, "id=\"panel-%d\"", i);
    const char *p = strstr(svg, id);
    if (!p) return NULL;
    const char *e = strstr(p, "</g>");
    ck_assert_ptr_nonnull(e);
    return strndup(p, (size_t)(e - p));
}

/* The labels of class cls in order, joined by spaces, into buf. */
static const char *labels(const char *s, const char *cls, char *buf, size_t cap) {
    char open[64];
    snprintf(open, sizeof open, "class=\"%s\"", cls);
    buf[0] = 0;
    for (const char *p = s; (p = strstr(p, open)); p++) {
        const char *b = strchr(p, '>') + 1, *e = strstr(b, "</text>");
        size_t used = strlen(buf);
        snprintf(buf + used, cap - used, "%s%.*s", used ? " " : "", (int)(e - b), b);
    }
    return buf;
}

/* The point lists of a series' polylines, in order: polyline k's points attribute. */
static int polylines(const char *s, const char *series, char out[][512], int cap) {
    char key[128];
    snprintf(key, sizeof key, "<polyline class=\"series\" data-series=\"%s\"", series);
    int n = 0;
    for (const char *p = s; (p = strstr(p, key)) && n < cap; p++) {
        const char *b = strstr(p, "points=\"") + 8, *e = strchr(b, '"');
        snprintf(out[n++], 512, "%.*s", (int)(e - b), b);
    }
    return n;
}

static int n_points(const char *points) {
    return *points ? count(points, " ") + 1 : 0;
}

static int dots(const char *s, const char *series) {
    char key[128];
    snprintf(key, sizeof key, "<circle class=\"point\" data-series=\"%s\"", series);
    return count(s, key);
}

static char *write_log(const char *dir, const char *text) {
    char *path = malloc(strlen(dir) + 32);
    sprintf(path, "%s/metrics.jsonl", dir);
    ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
    return path;
}

/* --- Tests -------------------------------------------------------------------------------- */

START_TEST(test_nice_ticks) {
    double t[32];
    int d, n;
    n = plot_nice_ticks(0, 1, 5, t, 32, &d);
    ck_assert_int_eq(n, 6);
    ck_assert(t[0] == 0 && fabs(t[1] - 0.2) < 1e-15 && fabs(t[5] - 1) < 1e-15 && d == 1);
    n = plot_nice_ticks(0, 97, 6, t, 32, &d);
    ck_assert(n == 6 && t[0] == 0 && t[5] == 100 && d == 0);
    n = plot_nice_ticks(-3.7, 12.2, 5, t, 32, &d);
    ck_assert(n == 5 && t[0] == -5 && t[4] == 15 && d == 0);
    /* One value: widened by 10% each way. */
    n = plot_nice_ticks(2, 2, 5, t, 32, &d);
    ck_assert(n == 5 && fabs(t[0] - 1.8) < 1e-12 && fabs(t[4] - 2.2) < 1e-12 && d == 1);
    n = plot_nice_ticks(0, 0, 5, t, 32, &d);
    ck_assert(t[0] <= 0 && t[n - 1] >= 0 && n >= 3);
    n = plot_nice_ticks(0, 1.2e-5, 5, t, 32, &d);
    ck_assert(n == 4 && fabs(t[3] - 1.5e-5) < 1e-18 && d == 6);
    /* Never a negative zero. */
    n = plot_nice_ticks(-0.3, 0.3, 5, t, 32, &d);
    for (int i = 0; i < n; i++)
        if (t[i] == 0) ck_assert(!signbit(t[i]));
}
END_TEST

START_TEST(test_read_log) {
    char *dir = tu_make_temp_dir("svg_read");
    char *path = write_log(dir, LOG);
    metrics_log log;
    ck_assert_int_eq(metrics_log_read(path, &log), 0);
    ck_assert_uint_eq(log.lines, 5);
    ck_assert_uint_eq(log.n, 5); /* b_mean, kl_p_pi, log_z, eval.b_mean, lr ("note": no) */
    ck_assert_str_eq(log.series[0].name, "train.b_mean");
    const metric_series *z = metrics_log_find(&log, "log_z");
    ck_assert_uint_eq(z->n, 5);
    ck_assert(isnan(z->y[0]) && z->y[1] == -3 && isnan(z->y[3]) && z->x[4] == 5);
    const metric_series *e = metrics_log_find(&log, "eval.b_mean");
    ck_assert(e->n == 2 && e->x[0] == 3 && e->y[1] == 0.5);
    ck_assert_ptr_null(metrics_log_find(&log, "note"));
    metrics_log_free(&log);
    /* Errors name the file and line. */
    free(write_log(dir, "{\"step\": 1}\n[1, 2]\n"));
    ck_assert_int_eq(metrics_log_read(path, &log), -1);
    free(write_log(dir, "{\"step\": 1}\n{\"a\": \n"));
    ck_assert_int_eq(metrics_log_read(path, &log), -1);
    free(path);
    path = malloc(strlen(dir) + 32);
    sprintf(path, "%s/absent.jsonl", dir);
    ck_assert_int_eq(metrics_log_read(path, &log), -1);
    free(path);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(test_default_panels) {
    char *dir = tu_make_temp_dir("svg_default");
    char *path = write_log(dir, LOG);
    char svg_path[512];
    snprintf(svg_path, sizeof svg_path, "%s/m.svg", dir);
    ck_assert_int_eq(plot_metrics_svg(path, svg_path, NULL, 0), 0);
    size_t size;
    char *svg = tu_read_file(svg_path, &size);
    ck_assert_ptr_nonnull(svg);
    ck_assert(strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "</svg>"));
    /* Constraint satisfaction, KL(p || pi), log Z; nothing else has data. */
    ck_assert_int_eq(count(svg, "class=\"panel\""), 3);
    char buf[1024], pts[8][512];
    char *p0 = panel(svg, 0), *p1 = panel(svg, 1), *p2 = panel(svg, 2);
    ck_assert_str_eq(labels(p0, "title", buf, sizeof buf), "Constraint satisfaction");
    ck_assert_str_eq(labels(p1, "title", buf, sizeof buf), "KL(p || pi)");
    ck_assert_str_eq(labels(p2, "title", buf, sizeof buf), "log Z");
    ck_assert_str_eq(labels(p0, "legend", buf, sizeof buf), "train.b_mean eval.b_mean");
    ck_assert_str_eq(labels(p1, "legend", buf, sizeof buf), "train.kl_p_pi");
    ck_assert_str_eq(labels(p0, "ytick", buf, sizeof buf), "0.0 0.2 0.4 0.6 0.8 1.0");
    ck_assert_str_eq(labels(p0, "xtick", buf, sizeof buf), "1 2 3 4 5");
    ck_assert_str_eq(labels(p1, "ytick", buf, sizeof buf), "0.0 0.5 1.0 1.5 2.0");
    ck_assert_str_eq(labels(p2, "ytick", buf, sizeof buf), "-4.0 -3.8 -3.6 -3.4 -3.2 -3.0");
    ck_assert_str_eq(labels(p0, "xlabel", buf, sizeof buf), "step");
    ck_assert_str_eq(labels(p2, "ylabel", buf, sizeof buf), "log Z");
    /* train.b_mean: one curve of 5 points from the frame's bottom-left (step 1, value
     * 0) to step 5 at mid-height (0.5); the frame is x 72..430, y 32..224. */
    ck_assert_int_eq(polylines(p0, "train.b_mean", pts, 8), 1);
    ck_assert_int_eq(n_points(pts[0]), 5);
    ck_assert(strncmp(pts[0], "72.0,224.0 ", 11) == 0);
    ck_assert_str_eq(strrchr(pts[0], ' ') + 1, "430.0,128.0");
    /* eval.b_mean: steps 3 and 5 joined (lines without it are no gap). */
    ck_assert_int_eq(polylines(p0, "eval.b_mean", pts, 8), 1);
    ck_assert_str_eq(pts[0], "251.0,176.0 430.0,128.0");
    /* train.kl_p_pi: a dot at step 1, the NaN at step 2, then a curve of 3 points. */
    ck_assert_int_eq(dots(p1, "train.kl_p_pi"), 1);
    ck_assert_int_eq(polylines(p1, "train.kl_p_pi", pts, 8), 1);
    ck_assert_int_eq(n_points(pts[0]), 3);
    /* log_z: null at 1 and +inf at 4: a curve over steps 2-3 and a dot at 5. */
    ck_assert_int_eq(polylines(p2, "log_z", pts, 8), 1);
    ck_assert_int_eq(n_points(pts[0]), 2);
    ck_assert_int_eq(dots(p2, "log_z"), 1);
    ck_assert_int_eq(count(svg, "data-series=\"lr\""), 0);
    free(p0), free(p1), free(p2), free(svg), free(path);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(test_chosen_panels) {
    char *dir = tu_make_temp_dir("svg_chosen");
    char *path = write_log(dir, LOG);
    char svg_path[512];
    snprintf(svg_path, sizeof svg_path, "%s/m.svg", dir);
    const char *specs[] = {"train.b_mean+eval.b_mean", "train.*", "lr"};
    ck_assert_int_eq(plot_metrics_svg(path, svg_path, specs, 3), 0);
    char *svg = tu_read_file(svg_path, NULL), buf[1024];
    ck_assert_int_eq(count(svg, "class=\"panel\""), 3);
    char *p1 = panel(svg, 1), *p2 = panel(svg, 2);
    ck_assert_str_eq(labels(p1, "title", buf, sizeof buf), "train.*");
    ck_assert_str_eq(labels(p1, "legend", buf, sizeof buf), "train.b_mean train.kl_p_pi");
    /* A single value: one dot, ticks around it. */
    ck_assert_int_eq(dots(p2, "lr"), 1);
    ck_assert_str_eq(labels(p2, "xtick", buf, sizeof buf), "4.4 4.6 4.8 5.0 5.2 5.4 5.6");
    free(p1), free(p2), free(svg);
    /* A name the log lacks. */
    const char *bad[] = {"train.b_mean+nope"};
    ck_assert_int_eq(plot_metrics_svg(path, svg_path, bad, 1), -1);
    /* A log with none of the default metrics. */
    free(write_log(dir, "{\"step\": 1, \"something\": 2}\n"));
    ck_assert_int_eq(plot_metrics_svg(path, svg_path, NULL, 0), -1);
    free(path);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(test_report) {
    char *dir = tu_make_temp_dir("report");
    char *path = write_log(dir, LOG);
    char p[512];
    snprintf(p, sizeof p, "%s/samples_before.txt", dir);
    char before[2048] = "";
    for (int i = 1; i <= 7; i++) {
        char line[64];
        snprintf(line, sizeof line, i == 2 ? "code ``` inside %d\n" : "sample %d\n", i);
        strcat(before, line);
        if (i == 4) {
            for (int k = 0; k < 600; k++) strcat(before, "x");
            strcat(before, "\n");
        }
    }
    ck_assert_int_eq(tu_write_file(p, before, strlen(before)), 0);
    ck_assert_int_eq(report_write(dir, "klc train --config run.yaml", "run.yaml"), 0);
    snprintf(p, sizeof p, "%s/report.md", dir);
    char *md = tu_read_file(p, NULL);
    ck_assert_ptr_nonnull(md);
    ck_assert(strstr(md, "- Configuration: `run.yaml`\n"));
    ck_assert(strstr(md, "- Command: `klc train --config run.yaml`\n"));
    ck_assert(strstr(md, "- Metrics: 5 lines of `metrics.jsonl`, steps 1 to 5\n"));
    ck_assert(strstr(md, "| train.b_mean | 0 | 0.5 |\n"));
    ck_assert(strstr(md, "| train.kl_p_pi | 2 | 0.25 |\n"));
    ck_assert(strstr(md, "| log_z | -3 | -4 |\n"));
    ck_assert(strstr(md, "| eval.b_mean | 0.25 | 0.5 |\n"));
    ck_assert(strstr(md, "| lr | 0.001 | 0.001 |\n"));
    ck_assert(strstr(md, "![metrics](metrics.svg)\n"));
    snprintf(p, sizeof p, "%s/metrics.svg", dir);
    char *svg = tu_read_file(p, NULL);
    ck_assert(svg && count(svg, "class=\"panel\"") == 3);
    free(svg);
    /* Five of the seven samples, the long one cut, the fence longer than "```". */
    ck_assert(strstr(md, "5 of 8 samples from `samples_before.txt`:\n\n````\n[1] sample 1\n"));
    ck_assert(strstr(md, "[2] code ``` inside 2\n"));
    ck_assert(strstr(md, "[5] xxxx"));
    ck_assert(strstr(md, "x ...\n"));
    ck_assert(!strstr(md, "[6]"));
    ck_assert(strstr(md, "No samples (samples_after.txt is absent)."));
    free(md);
    /* Without a metrics log, the report still comes. */
    remove(path);
    ck_assert_int_eq(report_write(dir, NULL, NULL), 0);
    snprintf(p, sizeof p, "%s/report.md", dir);
    md = tu_read_file(p, NULL);
    ck_assert(strstr(md, "No metrics: `metrics.jsonl` is absent or unreadable."));
    ck_assert(!strstr(md, "Command"));
    free(md);
    /* An unwritable directory. */
    snprintf(p, sizeof p, "%s/no/such/dir", dir);
    ck_assert_int_eq(report_write(p, NULL, NULL), -1);
    free(path);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("svg_plot");
    TCase *tc = tcase_create("plot");
    tcase_add_test(tc, test_nice_ticks);
    tcase_add_test(tc, test_read_log);
    tcase_add_test(tc, test_default_panels);
    tcase_add_test(tc, test_chosen_panels);
    tcase_add_test(tc, test_report);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return tu_run_suite(suite());
}
