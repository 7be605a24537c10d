/* A run's metrics log as SVG panels (see svg_plot.h). The log is read whole (runs log a
 * few dozen numbers per step), then each panel is laid out on its own: round ticks from
 * plot_nice_ticks, one polyline per run of finite values, a legend to the right. */
#include "cli/svg_plot.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- Reading the log ---------------------------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static metric_series *series_get(metrics_log *log, const char *name, size_t *hint) {
    /* Lines usually list their metrics in the same order: try the one after the last. */
    if (*hint < log->n && strcmp(log->series[*hint].name, name) == 0)
        return &log->series[(*hint)++];
    for (size_t i = 0; i < log->n; i++)
        if (strcmp(log->series[i].name, name) == 0) {
            *hint = i + 1;
            return &log->series[i];
        }
    if (grow((void **)&log->series, &log->cap, log->n + 1, sizeof *log->series)) return NULL;
    metric_series *s = &log->series[log->n++];
    memset(s, 0, sizeof *s);
    s->name = strdup(name);
    *hint = log->n;
    return s->name ? s : NULL;
}

static int series_add(metric_series *s, double x, double y) {
    size_t cap = s->cap;
    if (grow((void **)&s->x, &cap, s->n + 1, sizeof(double))) return -1;
    cap = s->cap;
    if (grow((void **)&s->y, &cap, s->n + 1, sizeof(double))) return -1;
    s->cap = cap;
    s->x[s->n] = x;
    s->y[s->n++] = y;
    return 0;
}

/* A copy of a line with the bare tokens NaN, Infinity and -Infinity outside strings
 * replaced by null (which jansson reads); NULL when out of memory. "NaN" grows by one
 * byte, so the copy needs at most 4/3 of the line. */
static char *nan_to_null(const char *s) {
    char *out = malloc(strlen(s) / 3 * 4 + 8), *w = out;
    if (!out) return NULL;
    int in_str = 0;
    for (const char *r = s; *r;) {
        if (in_str) {
            if (*r == '\\' && r[1])
                *w++ = *r++;
            else if (*r == '"')
                in_str = 0;
            *w++ = *r++;
            continue;
        }
        static const char *const bare[] = {"-Infinity", "Infinity", "NaN"};
        int replaced = 0;
        for (int k = 0; k < 3 && !replaced; k++) {
            size_t n = strlen(bare[k]);
            if (strncmp(r, bare[k], n) == 0) {
                memcpy(w, "null", 4);
                w += 4;
                r += n;
                replaced = 1;
            }
        }
        if (replaced) continue;
        if (*r == '"') in_str = 1;
        *w++ = *r++;
    }
    *w = 0;
    return out;
}

/* A metric's value: numbers as they are, null as a gap, strings such as "nan" or "inf" as
 * parsed (a gap unless finite); *skip for anything else (booleans, objects, arrays). */
static double value_of(json_t *v, int *skip) {
    *skip = 0;
    if (json_is_number(v)) return json_number_value(v);
    if (json_is_null(v)) return NAN;
    if (json_is_string(v)) {
        char *end;
        double d = strtod(json_string_value(v), &end);
        if (end != json_string_value(v) && *end == 0) return isfinite(d) ? d : NAN;
    }
    *skip = 1;
    return NAN;
}

int metrics_log_read(const char *path, metrics_log *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "klc: cannot open metrics log '%s': %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t line_cap = 0;
    long lineno = 0;
    int status = 0;
    while (getline(&line, &line_cap, f) >= 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == 0) continue;
        char *clean = nan_to_null(line);
        json_error_t err;
        json_t *obj = clean ? json_loads(clean, 0, &err) : NULL;
        if (!clean) snprintf(err.text, sizeof err.text, "out of memory");
        free(clean);
        if (!obj || !json_is_object(obj)) {
            fprintf(stderr, "klc: %s:%ld: %s\n", path, lineno,
                    obj ? "not a JSON object" : err.text);
            json_decref(obj);
            status = -1;
            break;
        }
        out->lines++;
        json_t *step = json_object_get(obj, "step");
        const double x = json_is_number(step) ? json_number_value(step) : (double)out->lines;
        const char *key;
        json_t *v;
        size_t hint = 0;
        json_object_foreach(obj, key, v) {
            if (strcmp(key, "step") == 0) continue;
            int skip;
            double y = value_of(v, &skip);
            if (skip) continue;
            metric_series *s = series_get(out, key, &hint);
            if (!s || series_add(s, x, isfinite(y) ? y : NAN)) {
                fprintf(stderr, "klc: %s: out of memory\n", path);
                status = -1;
                break;
            }
        }
        json_decref(obj);
        if (status) break;
    }
    free(line);
    fclose(f);
    if (status) metrics_log_free(out);
    return status;
}

void metrics_log_free(metrics_log *log) {
    for (size_t i = 0; i < log->n; i++) {
        free(log->series[i].name);
        free(log->series[i].x);
        free(log->series[i].y);
    }
    free(log->series);
    memset(log, 0, sizeof *log);
}

const metric_series *metrics_log_find(const metrics_log *log, const char *name) {
    for (size_t i = 0; i < log->n; i++)
        if (strcmp(log->series[i].name, name) == 0) return &log->series[i];
    return NULL;
}

/* --- Ticks -------------------------------------------------------------------------------- */

int plot_nice_ticks(double lo, double hi, int target, double *ticks, int cap, int *decimals) {
    if (!(hi > lo)) {
        const double d = lo != 0 ? fabs(lo) * 0.1 : 1;
        lo -= d;
        hi += d;
    }
    const double raw = (hi - lo) / (target > 1 ? target - 1 : 1);
    const double mag = pow(10, floor(log10(raw)));
    const double r = raw / mag;
    const double step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
    const double first = floor(lo / step + 1e-9) * step;
    const double last = ceil(hi / step - 1e-9) * step;
    int n = (int)llround((last - first) / step) + 1;
    if (n > cap) n = cap;
    for (int i = 0; i < n; i++) {
        double t = first + i * step;
        ticks[i] = fabs(t) < step * 1e-9 ? 0 : t; /* no "-0" */
    }
    const int dec = (int)-floor(log10(step) + 1e-9);
    *decimals = dec > 0 ? dec : 0;
    return n;
}

/* A tick label: fixed decimals for ordinary magnitudes, %g beyond them. */
static void tick_label(char *buf, size_t cap, double v, int decimals, double step) {
    if (fabs(v) >= 1e6 || (step < 1e-4 && v != 0))
        snprintf(buf, cap, "%.3g", v);
    else
        snprintf(buf, cap, "%.*f", decimals, v);
}

/* --- Panels ------------------------------------------------------------------------------- */

enum { MAX_PANEL_SERIES = 24, MAX_PATTERNS = 8 };

typedef struct group {
    const char *title, *ylabel;
    const char *patterns[MAX_PATTERNS];
} group;

static const group GROUPS[] = {
    {"Constraint satisfaction",
     "fraction / feature mean",
     {"train.b_mean", "eval.b_mean", "train.phi.*", "eval.phi.*"}},
    {"KL(p || pi)", "nats", {"train.kl_p_pi", "eval.kl_p_pi", "train.kl_p_q"}},
    {"KL(pi || a)", "nats", {"train.kl_pi_a", "eval.kl_pi_a"}},
    {"log Z", "log Z", {"log_z"}},
    {"Reward", "mean reward", {"train.reward_mean", "eval.reward_mean"}},
    {"beta", "beta", {"beta"}},
    {"Effective sample size", "samples", {"train.ess", "eval.ess"}},
    {"Loss", "loss", {"loss", "heldout.loss"}},
    {"Diversity", "score", {"eval.distinct_*", "diversity.*"}},
    {"Gradient variance", "squared norm", {"grad_variance", "grad_mean_sq_norm"}},
};
#define N_GROUPS (sizeof GROUPS / sizeof *GROUPS)

typedef struct panel {
    char title[128];
    const char *ylabel;
    const metric_series *s[MAX_PANEL_SERIES];
    int n, dropped; /* dropped: matches beyond MAX_PANEL_SERIES */
} panel;

static int matches(const char *pattern, size_t len, const char *name) {
    if (len > 0 && pattern[len - 1] == '*') return strncmp(pattern, name, len - 1) == 0;
    return strlen(name) == len && strncmp(pattern, name, len) == 0;
}

/* Adds every series matching pattern[0..len) not yet in the panel; returns the matches. */
static int add_matching(panel *p, const metrics_log *log, const char *pattern, size_t len) {
    int found = 0;
    for (size_t i = 0; i < log->n; i++) {
        const metric_series *s = &log->series[i];
        if (!matches(pattern, len, s->name)) continue;
        found++;
        int have = 0;
        for (int k = 0; k < p->n; k++) have |= p->s[k] == s;
        if (have) continue;
        if (p->n < MAX_PANEL_SERIES)
            p->s[p->n++] = s;
        else
            p->dropped++;
    }
    return found;
}

static int has_finite(const metric_series *s) {
    for (size_t i = 0; i < s->n; i++)
        if (isfinite(s->y[i]) && isfinite(s->x[i])) return 1;
    return 0;
}

/* --- Writing SVG -------------------------------------------------------------------------- */

enum { PANEL_W = 620, PANEL_H = 270, LEFT = 72, LEGEND_W = 190, TOP = 32, BOTTOM = 46 };
static const char *const COLORS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static void xml_text(FILE *f, const char *s, size_t max_chars) {
    size_t n = 0;
    for (; *s && n < max_chars; s++, n++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
    if (*s) fputs("...", f);
}

typedef struct frame {
    double x0, x1, y0, y1; /* pixels of the plot area */
    double xa, xb, ya, yb; /* data range shown */
} frame;

static double px(const frame *fr, double x) {
    return fr->x0 + (x - fr->xa) / (fr->xb - fr->xa) * (fr->x1 - fr->x0);
}
static double py(const frame *fr, double y) {
    return fr->y1 - (y - fr->ya) / (fr->yb - fr->ya) * (fr->y1 - fr->y0);
}

/* Ticks, grid lines and labels of one axis; sets the frame's range to the ticks'. */
static void axis(FILE *f, frame *fr, int vertical, double lo, double hi) {
    double t[32];
    int dec;
    const int n = plot_nice_ticks(lo, hi, vertical ? 5 : 6, t, 32, &dec);
    const double step = n > 1 ? t[1] - t[0] : 1;
    if (vertical)
        fr->ya = t[0], fr->yb = t[n - 1];
    else
        fr->xa = t[0], fr->xb = t[n - 1];
    for (int i = 0; i < n; i++) {
        char label[32];
        tick_label(label, sizeof label, t[i], dec, step);
        if (vertical) {
            const double y = py(fr, t[i]);
            fprintf(f,
                    "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
                    "<text class=\"ytick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                    fr->x0, y, fr->x1, y, fr->x0 - 6, y + 4, label);
        } else {
            const double x = px(fr, t[i]);
            fprintf(
                f,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
                "<text class=\"xtick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                x, fr->y0, x, fr->y1, x, fr->y1 + 16, label);
        }
    }
}

static void series_curves(FILE *f, const frame *fr, const metric_series *s, const char *color) {
    size_t i = 0;
    while (i < s->n) {
        while (i < s->n && !(isfinite(s->y[i]) && isfinite(s->x[i]))) i++;
        size_t e = i;
        while (e < s->n && isfinite(s->y[e]) && isfinite(s->x[e])) e++;
        if (e == i) break;
        if (e - i == 1) {
            fprintf(f, "<circle class=\"point\" data-series=\"");
            xml_text(f, s->name, (size_t)-1);
            fprintf(f, "\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", px(fr, s->x[i]),
                    py(fr, s->y[i]), color);
        } else {
            fprintf(f, "<polyline class=\"series\" data-series=\"");
            xml_text(f, s->name, (size_t)-1);
            fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
            for (size_t k = i; k < e; k++)
                fprintf(f, "%s%.1f,%.1f", k > i ? " " : "", px(fr, s->x[k]), py(fr, s->y[k]));
            fprintf(f, "\"/>\n");
        }
        i = e;
    }
}

static void draw_panel(FILE *f, const panel *p, int index, double ox, double oy) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < p->n; k++) {
        const metric_series *s = p->s[k];
        for (size_t i = 0; i < s->n; i++) {
            if (!isfinite(s->y[i]) || !isfinite(s->x[i])) continue;
            xlo = fmin(xlo, s->x[i]), xhi = fmax(xhi, s->x[i]);
            ylo = fmin(ylo, s->y[i]), yhi = fmax(yhi, s->y[i]);
        }
    }
    if (!(xlo <= xhi)) xlo = 0, xhi = 1; /* nothing finite: an empty frame */
    if (!(ylo <= yhi)) ylo = 0, yhi = 1;
    frame fr = {ox + LEFT, ox + PANEL_W - LEGEND_W, oy + TOP, oy + PANEL_H - BOTTOM, 0, 1, 0, 1};
    fprintf(f, "<g class=\"panel\" id=\"panel-%d\">\n", index);
    fprintf(f, "<text class=\"title\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
            (fr.x0 + fr.x1) / 2, oy + 20);
    xml_text(f, p->title, 60);
    fprintf(f, "</text>\n");
    axis(f, &fr, 1, ylo, yhi);
    axis(f, &fr, 0, xlo, xhi);
    fprintf(f,
            "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"none\"/>\n",
            fr.x0, fr.y0, fr.x1 - fr.x0, fr.y1 - fr.y0);
    fprintf(f, "<text class=\"xlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">step</text>\n",
            (fr.x0 + fr.x1) / 2, fr.y1 + 34);
    const double ly = (fr.y0 + fr.y1) / 2, lx = ox + 18;
    fprintf(f,
            "<text class=\"ylabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %.1f %.1f)\">",
            lx, ly, lx, ly);
    xml_text(f, p->ylabel, 40);
    fprintf(f, "</text>\n");
    const int per_column = (int)((fr.y1 - fr.y0) / 16);
    for (int k = 0; k < p->n; k++) {
        const char *color = COLORS[k % (sizeof COLORS / sizeof *COLORS)];
        series_curves(f, &fr, p->s[k], color);
        if (k < per_column - 1 || (k == per_column - 1 && p->n == per_column)) {
            const double y = fr.y0 + 8 + 16 * k;
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-width=\"2\"/>\n<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">",
                    fr.x1 + 12, y, fr.x1 + 30, y, color, fr.x1 + 36, y + 4);
            xml_text(f, p->s[k]->name, 26);
            fprintf(f, "</text>\n");
        }
    }
    const int hidden = (p->n > per_column ? p->n - per_column + 1 : 0) + p->dropped;
    if (hidden > 0)
        fprintf(f, "<text class=\"legend-more\" x=\"%.1f\" y=\"%.1f\">+%d more</text>\n",
                fr.x1 + 12, fr.y0 + 12 + 16 * (per_column - 1), hidden);
    fprintf(f, "</g>\n");
}

static int write_svg(const char *path, const panel *panels, int n) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "klc: cannot write '%s': %s\n", path, strerror(errno));
        return -1;
    }
    const int cols = n > 1 ? 2 : 1, rows = (n + cols - 1) / cols;
    const int w = cols * PANEL_W, h = rows * PANEL_H;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
            "font-size=\"11\">\n"
            "<style>.title{font-size:13px;font-weight:bold}.grid{stroke:#e4e4e4}"
            ".frame{stroke:#444}.xlabel,.ylabel{font-size:12px}.ytick,.xtick{fill:#333}"
            "</style>\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            w, h, w, h);
    for (int i = 0; i < n; i++)
        draw_panel(f, &panels[i], i, (double)(i % cols) * PANEL_W, (double)(i / cols) * PANEL_H);
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "klc: writing '%s': %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Panels from the caller's specifications, or the default groups that have data. */
static int make_panels(const metrics_log *log, const char *jsonl_path, const char *const *metrics,
                       int n_metrics, panel **out, int *n_out) {
    const int n_max = n_metrics > 0 ? n_metrics : (int)N_GROUPS;
    panel *panels = calloc((size_t)n_max, sizeof *panels);
    if (!panels) return -1;
    int n = 0;
    for (int g = 0; g < n_max; g++) {
        panel *p = &panels[n];
        memset(p, 0, sizeof *p);
        if (n_metrics > 0) {
            const char *spec = metrics[g];
            snprintf(p->title, sizeof p->title, "%s", spec);
            p->ylabel = "value";
            for (const char *s = spec; *s;) {
                size_t len = strcspn(s, "+");
                if (len > 0 && add_matching(p, log, s, len) == 0) {
                    fprintf(stderr, "klc: %s has no metric '%.*s'\n", jsonl_path, (int)len, s);
                    free(panels);
                    return -1;
                }
                s += len + (s[len] == '+');
            }
            if (p->n == 0) {
                fprintf(stderr, "klc: empty metric list '%s'\n", spec);
                free(panels);
                return -1;
            }
        } else {
            snprintf(p->title, sizeof p->title, "%s", GROUPS[g].title);
            p->ylabel = GROUPS[g].ylabel;
            for (int k = 0; k < MAX_PATTERNS && GROUPS[g].patterns[k]; k++)
                add_matching(p, log, GROUPS[g].patterns[k], strlen(GROUPS[g].patterns[k]));
            /* Series without one finite value would only add a legend entry. */
            int kept = 0;
            for (int k = 0; k < p->n; k++)
                if (has_finite(p->s[k])) p->s[kept++] = p->s[k];
            p->n = kept;
            if (p->n == 0) continue;
        }
        n++;
    }
    if (n == 0) {
        fprintf(stderr,
                "klc: %s has none of the default metrics (b_mean, kl_p_pi, kl_pi_a, log_z, "
                "reward_mean, beta, ess, loss, ...); name some with --metrics\n",
                jsonl_path);
        free(panels);
        return -1;
    }
    *out = panels;
    *n_out = n;
    return 0;
}

int plot_metrics_svg(const char *jsonl_path, const char *svg_path, const char *const *metrics,
                     int n_metrics) {
    metrics_log log;
    if (metrics_log_read(jsonl_path, &log)) return -1;
    panel *panels = NULL;
    int n = 0;
    int status = make_panels(&log, jsonl_path, metrics, metrics ? n_metrics : 0, &panels, &n);
    if (status == 0) status = write_svg(svg_path, panels, n);
    free(panels);
    metrics_log_free(&log);
    return status;
}
