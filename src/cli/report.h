/* The end-of-run report: a Markdown page in the run directory that a person reads first. */
#ifndef KLC_CLI_REPORT_H
#define KLC_CLI_REPORT_H

/* The files of a run directory the report reads and writes. */
#define REPORT_FILE           "report.md"
#define REPORT_METRICS_FILE   "metrics.jsonl" /* the run's metrics, one JSON object per step */
#define REPORT_PLOT_FILE      "metrics.svg"   /* written by report_write */
#define REPORT_SAMPLES_BEFORE "samples_before.txt"
#define REPORT_SAMPLES_AFTER  "samples_after.txt"
/* Samples shown from each samples file. */
#define REPORT_MAX_SAMPLES 5

/* Writes run_dir/report.md for a finished (or stopped) run:
 *   - the command that ran and the configuration's name, each when not NULL;
 *   - how many steps the metrics log holds;
 *   - a table of every metric of run_dir/metrics.jsonl with its first and last finite
 *     values (in the order the log first lists them);
 *   - the curves: run_dir/metrics.svg, drawn by plot_metrics_svg with the default panels,
 *     embedded as ![](metrics.svg);
 *   - samples before and after training: the first REPORT_MAX_SAMPLES lines of
 *     run_dir/samples_before.txt and samples_after.txt when present, one sample per line
 *     (a writer puts a sample's own line breaks as the two characters "\n"), each cut to
 *     500 bytes.
 * A missing or unreadable metrics log, a plot that cannot be drawn or a missing samples
 * file is said in the report, which is still written. Returns 0, or -1 with a message on
 * stderr when report.md cannot be written. */
int report_write(const char *run_dir, const char *command, const char *config);

#endif
