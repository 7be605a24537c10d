/* Reading a run's metrics log (JSON lines) and drawing it as an SVG of small panels,
 * written by hand (no plotting dependency). Used by `klc plot` and the run report. */
#ifndef KLC_CLI_SVG_PLOT_H
#define KLC_CLI_SVG_PLOT_H

#include <stddef.h>

/* One metric's values in the order of the log's lines: x the line's "step" (the line's
 * 1-based number when it has none), y the value, NaN where the line had the metric as
 * null, NaN, an infinity or a non-number (a gap in the curve). Lines without the metric
 * add no point. */
typedef struct metric_series {
    char *name;
    size_t n, cap;
    double *x, *y; /* [n] */
} metric_series;

/* Every metric of a log, in the order of their first appearance; "step" is not one. */
typedef struct metrics_log {
    metric_series *series;
    size_t n, cap;
    size_t lines; /* JSON objects read */
} metrics_log;

/* Reads a JSON-lines metrics log: one object per line of metric names and numbers (plus
 * "step"); blank lines are skipped, bare NaN / Infinity / -Infinity tokens (as Python's
 * json writes them) read as gaps. Returns 0, or -1 after printing to stderr a message
 * naming the file and line (unreadable file, a line that is not a JSON object). */
int metrics_log_read(const char *path, metrics_log *out);
void metrics_log_free(metrics_log *log);
/* The series of a name, or NULL. */
const metric_series *metrics_log_find(const metrics_log *log, const char *name);

/* Draws the metrics of jsonl_path into svg_path.
 *
 * With metrics NULL (or n_metrics 0): one panel per default group that has data, in this
 * order: constraint satisfaction (train./eval. b_mean and phi.* means), KL(p || pi)
 * (kl_p_pi, kl_p_q), KL(pi || a), log Z, reward, beta, effective sample size (ess), then
 * loss (with heldout.loss), diversity (distinct_n, self_bleu_n) and gradient variance when present.
 *
 * Otherwise each element of metrics is one panel: its series are names separated by '+',
 * a name ending in '*' matching every metric with that prefix (e.g.
 * "train.b_mean+eval.b_mean", "train.phi.*"). A panel that matches nothing is an error.
 *
 * Each panel has axes with round tick values, axis titles ("step" and the group's unit),
 * a legend, and one polyline per run of finite values (a gap where a value is missing:
 * null, NaN or infinite); a run of a single value is drawn as a dot. Returns 0, or -1
 * with a message on stderr. The SVG marks its parts with classes for machines: panel
 * groups "panel", "title", "xtick"/"ytick" labels, "xlabel"/"ylabel", "legend" labels,
 * "series" polylines and "point" dots with data-series="<metric>". */
int plot_metrics_svg(const char *jsonl_path, const char *svg_path, const char *const *metrics,
                     int n_metrics);

/* Round tick values covering [lo, hi]: a step of 1, 2 or 5 times a power of ten giving
 * about `target` ticks; writes at most `cap` values to ticks and returns their count, and
 * the decimals that print them exactly enough to *decimals. */
int plot_nice_ticks(double lo, double hi, int target, double *ticks, int cap, int *decimals);

#endif
