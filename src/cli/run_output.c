/* Metrics as JSON lines, the progress line and the sample files of a run. */
#include "cli/run_output.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double v) {
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        fprintf(f, "%.0f", v);
        return;
    }
    char buf[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, f);
}

int metrics_write_json(FILE *f, const klc_metrics *m, int indent) {
    int32_t n = klc_metrics_count(m), written = 0;
    fputc('{', f);
    /* "step" first, whatever its place in the table, so that lines read well. */
    for (int pass = 0; pass < 2; pass++)
        for (int32_t i = 0; i < n; i++) {
            const char *name;
            double v;
            klc_metrics_entry(m, i, &name, &v);
            if ((strcmp(name, "step") == 0) != (pass == 0)) continue;
            if (written++) fputc(',', f);
            if (indent)
                fputs("\n  ", f);
            else if (written > 1)
                fputc(' ', f);
            json_string(f, name);
            fputs(": ", f);
            json_number(f, v);
        }
    if (indent && n) fputc('\n', f);
    fputc('}', f);
    return ferror(f) ? -1 : 0;
}

int metrics_write_jsonl(FILE *f, const klc_metrics *m) {
    metrics_write_json(f, m, 0);
    fputc('\n', f);
    return fflush(f) || ferror(f) ? -1 : 0;
}

int metrics_truncate_after(const char *path, int64_t max_step) {
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : -1;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(f);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        const char *p = strstr(line, "\"step\": ");
        if (p && strtod(p + 8, NULL) > (double)max_step) continue;
        fputs(line, out);
    }
    free(line);
    fclose(f);
    if (fclose(out)) return -1;
    return rename(tmp, path);
}

void progress_start(progress *p, int64_t first_step, int64_t total, int32_t log_period) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDERR_FILENO);
    p->first_step = first_step;
    p->total = total;
    p->log_period = log_period;
    p->t0 = now_seconds();
}

static void format_duration(double s, char *buf, size_t cap) {
    if (!isfinite(s) || s < 0)
        snprintf(buf, cap, "?");
    else if (s < 60)
        snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

/* The key metrics that the step has, as " name value" pairs. */
static void key_metrics(const klc_metrics *m, char *buf, size_t cap) {
    static const char *const keys[][2] = {{"eval.b_mean", "b(eval)"},
                                          {"train.b_mean", "b"},
                                          {"train.reward_mean", "reward"},
                                          {"train.kl_p_pi", "KL(p|pi)"},
                                          {"train.kl_pi_a", "KL(pi|a)"},
                                          {"log_z", "logZ"},
                                          {"beta", "beta"},
                                          {"loss", "loss"}};
    size_t len = 0;
    buf[0] = 0;
    for (size_t k = 0; k < sizeof keys / sizeof *keys && len + 1 < cap; k++) {
        double v = klc_metrics_get(m, keys[k][0]);
        if (!isnan(v)) len += (size_t)snprintf(buf + len, cap - len, " %s %.4g", keys[k][1], v);
    }
    /* Moment features: their train means. */
    int32_t n = klc_metrics_count(m);
    for (int32_t i = 0; i < n && len + 1 < cap; i++) {
        const char *name;
        double v;
        klc_metrics_entry(m, i, &name, &v);
        if (!strncmp(name, "train.phi.", 10) && isfinite(v))
            len += (size_t)snprintf(buf + len, cap - len, " %s %.4g", name + 10, v);
    }
}

void progress_update(progress *p, int64_t step, const klc_metrics *m) {
    double elapsed = now_seconds() - p->t0;
    int64_t done = step - p->first_step;
    double per_step = done > 0 ? elapsed / (double)done : NAN;
    char eta[32], keys[512];
    format_duration(per_step * (double)(p->total - step), eta, sizeof eta);
    key_metrics(m, keys, sizeof keys);
    double sps = klc_metrics_get(m, "samples_per_s");
    if (p->tty) {
        int width = 20, filled = p->total > 0 ? (int)(width * step / p->total) : width;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r\033[K%lld/%lld [%s] %.1f samples/s ETA %s |%s", (long long)step,
                (long long)p->total, bar, sps, eta, keys);
        p->drawn = 1;
    } else if (step % p->log_period == 0 || step == p->total) {
        fprintf(stderr, "step %lld/%lld %.1f samples/s ETA %s |%s\n", (long long)step,
                (long long)p->total, sps, eta, keys);
    }
    fflush(stderr);
}

void progress_break(progress *p) {
    if (p->tty && p->drawn) fputc('\n', stderr);
    p->drawn = 0;
}

/* A sample on one line: its line breaks and backslashes escaped as \n and \\. */
static void write_escaped(FILE *f, const char *text) {
    for (const char *p = text; *p; p++) {
        if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\\')
            fputs("\\\\", f);
        else
            fputc(*p, f);
    }
    fputc('\n', f);
}

int samples_write(const char *path, const char *heading, char **texts, int32_t n, int32_t show) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    for (int32_t i = 0; i < n; i++) write_escaped(f, texts[i]);
    int bad = ferror(f);
    if (fclose(f) || bad) return -1;
    if (show > 0 && n > 0) {
        printf("%s\n", heading);
        for (int32_t i = 0; i < n && i < show; i++) {
            printf("  [%d] ", i + 1);
            write_escaped(stdout, texts[i]);
        }
        fflush(stdout);
    }
    return 0;
}
