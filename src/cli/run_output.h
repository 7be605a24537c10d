/* What a run writes and shows: metrics as JSON lines, the progress line, sample files. */
#ifndef KLC_CLI_RUN_OUTPUT_H
#define KLC_CLI_RUN_OUTPUT_H

#include <stdint.h>
#include <stdio.h>

#include "klc.h"

/* One JSON object per line: {"name": value, ...} in the table's order, NaN and
 * infinities as null. Flushed, so that a reader (or a crash) sees whole lines. Returns 0
 * or -1. */
int metrics_write_jsonl(FILE *f, const klc_metrics *m);
/* The same object without the newline, for `klc eval`. */
int metrics_write_json(FILE *f, const klc_metrics *m, int indent);

/* Keeps the lines of a metrics log whose "step" is at most max_step (a resumed run
 * continues after its checkpoint). A missing file is fine. Returns 0 or -1 (errno). */
int metrics_truncate_after(const char *path, int64_t max_step);

/* The progress of a run on stderr: redrawn in place on a terminal, else a plain line every
 * log_period steps (and at the last step). */
typedef struct progress {
    int tty;
    int64_t total, first_step;
    int32_t log_period;
    double t0;
    int drawn;
} progress;

void progress_start(progress *p, int64_t first_step, int64_t total, int32_t log_period);
void progress_update(progress *p, int64_t step, const klc_metrics *m);
/* Ends the in-place line (a newline) before other output. */
void progress_break(progress *p);

/* Writes texts to path, one per line (line breaks written as the two characters \n,
 * backslashes doubled: the format report_write reads); prints the first `show` of them to
 * stdout under a heading. Returns 0 or -1 (errno). */
int samples_write(const char *path, const char *heading, char **texts, int32_t n, int32_t show);

double now_seconds(void);

#endif
