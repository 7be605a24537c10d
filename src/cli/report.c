/* The end-of-run report (see report.h): Markdown written from the run directory's files. */
#include "cli/report.h"

#include "cli/svg_plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SAMPLE_MAX_BYTES = 500 };

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Text inside a Markdown table cell or inline code: '|' and '`' would end them. */
static void cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|' || *s == '`') fputc('\\', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
}

static void number(FILE *f, double v) {
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("-", f);
}

static void metrics_table(FILE *f, const metrics_log *log) {
    fprintf(f, "| metric | first | last |\n|---|---:|---:|\n");
    for (size_t i = 0; i < log->n; i++) {
        const metric_series *s = &log->series[i];
        double first = NAN, last = NAN;
        for (size_t k = 0; k < s->n; k++)
            if (isfinite(s->y[k])) {
                if (isnan(first)) first = s->y[k];
                last = s->y[k];
            }
        fputs("| ", f);
        cell(f, s->name);
        fputs(" | ", f);
        number(f, first);
        fputs(" | ", f);
        number(f, last);
        fputs(" |\n", f);
    }
}

/* The step range the log covers, from any series' x values. */
static void step_range(const metrics_log *log, double *lo, double *hi) {
    *lo = INFINITY, *hi = -INFINITY;
    for (size_t i = 0; i < log->n; i++)
        for (size_t k = 0; k < log->series[i].n; k++) {
            *lo = fmin(*lo, log->series[i].x[k]);
            *hi = fmax(*hi, log->series[i].x[k]);
        }
}

/* The longest run of backticks in s, so that a code fence can be longer. */
static size_t backtick_run(const char *s, size_t n) {
    size_t best = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        run = s[i] == '`' ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best;
}

/* Up to REPORT_MAX_SAMPLES lines of a samples file in a code fence, each cut to
 * SAMPLE_MAX_BYTES at a UTF-8 character boundary. */
static void samples(FILE *f, const char *run_dir, const char *name, const char *heading) {
    fprintf(f, "\n## %s\n\n", heading);
    char *path = join(run_dir, name);
    FILE *in = path ? fopen(path, "r") : NULL;
    if (!in) {
        fprintf(f, "No samples (%s is absent).\n", name);
        free(path);
        return;
    }
    char *lines[REPORT_MAX_SAMPLES];
    int cut[REPORT_MAX_SAMPLES];
    int n = 0;
    long total = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    size_t fence = 3;
    while ((got = getline(&line, &cap, in)) >= 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) got--;
        total++;
        if (n == REPORT_MAX_SAMPLES) continue;
        size_t len = (size_t)got;
        if (len > SAMPLE_MAX_BYTES) {
            len = SAMPLE_MAX_BYTES;
            while (len > 0 && ((unsigned char)line[len] & 0xC0) == 0x80) len--;
        }
        lines[n] = malloc(len + 1);
        if (!lines[n]) break;
        memcpy(lines[n], line, len);
        lines[n][len] = 0;
        cut[n] = len < (size_t)got;
        size_t run = backtick_run(lines[n], len);
        fence = run + 1 > fence ? run + 1 : fence;
        n++;
    }
    free(line);
    fclose(in);
    free(path);
    fprintf(f, "%d of %ld samples from `%s`:\n\n", n, total, name);
    for (size_t k = 0; k < fence; k++) fputc('`', f);
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "[%d] %s%s\n", i + 1, lines[i], cut[i] ? " ..." : "");
        free(lines[i]);
    }
    for (size_t k = 0; k < fence; k++) fputc('`', f);
    fputc('\n', f);
}

int report_write(const char *run_dir, const char *command, const char *config) {
    char *md_path = join(run_dir, REPORT_FILE);
    char *log_path = join(run_dir, REPORT_METRICS_FILE);
    char *svg_path = join(run_dir, REPORT_PLOT_FILE);
    FILE *f = md_path ? fopen(md_path, "w") : NULL;
    if (!f || !log_path || !svg_path) {
        fprintf(stderr, "klc: cannot write the report '%s': %s\n", md_path ? md_path : run_dir,
                strerror(errno ? errno : ENOMEM));
        if (f) fclose(f);
        free(md_path), free(log_path), free(svg_path);
        return -1;
    }
    fprintf(f, "# Run report\n\n");
    if (config) {
        fputs("- Configuration: `", f);
        cell(f, config);
        fputs("`\n", f);
    }
    if (command) {
        fputs("- Command: `", f);
        cell(f, command);
        fputs("`\n", f);
    }
    metrics_log log;
    const int have_log = metrics_log_read(log_path, &log) == 0;
    if (have_log && log.lines > 0) {
        double lo, hi;
        step_range(&log, &lo, &hi);
        fprintf(f, "- Metrics: %zu lines of `%s`", log.lines, REPORT_METRICS_FILE);
        if (lo <= hi) fprintf(f, ", steps %.0f to %.0f", lo, hi);
        fprintf(f, "\n\n## Final metrics\n\n");
        metrics_table(f, &log);
        fprintf(f, "\n## Curves\n\n");
        if (plot_metrics_svg(log_path, svg_path, NULL, 0) == 0)
            fprintf(f, "![metrics](%s)\n", REPORT_PLOT_FILE);
        else
            fprintf(f, "The metrics could not be drawn (none of the default panels' metrics).\n");
    } else {
        fprintf(f, "\nNo metrics: `%s` is %s.\n", REPORT_METRICS_FILE,
                have_log ? "empty" : "absent or unreadable");
    }
    if (have_log) metrics_log_free(&log);
    samples(f, run_dir, REPORT_SAMPLES_BEFORE, "Samples before training");
    samples(f, run_dir, REPORT_SAMPLES_AFTER, "Samples after training");
    const int bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "klc: writing '%s' failed\n", md_path);
        free(md_path), free(log_path), free(svg_path);
        return -1;
    }
    free(md_path), free(log_path), free(svg_path);
    return 0;
}
