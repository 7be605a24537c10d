/* klc plot METRICS.jsonl -o FILE.svg [--metrics LIST]: a run's metrics log as SVG curves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/svg_plot.h"

static void help(FILE *f) {
    fprintf(f, "usage: klc plot METRICS.jsonl -o FILE.svg [--metrics LIST]\n\n"
               "Draws the JSON lines a training run writes (one object per step: \"step\" and\n"
               "metric names such as train.b_mean, train.kl_p_pi, log_z) as an SVG of small\n"
               "panels with axes, round ticks and a legend. Missing, null, NaN and infinite\n"
               "values leave gaps.\n\n"
               "By default, one panel per group present: constraint satisfaction (b_mean and\n"
               "phi.* means), KL(p || pi), KL(pi || a), log Z, reward, beta, effective sample\n"
               "size, loss, diversity, gradient variance.\n\n"
               "  -o, --output FILE.svg   where to write the plot (required)\n"
               "  --metrics LIST          panels of your own: comma-separated panels, each a\n"
               "                          '+'-separated list of metric names; a name ending in\n"
               "                          '*' takes every metric with that prefix, e.g.\n"
               "                          --metrics 'train.b_mean+eval.b_mean,train.phi.*,lr'\n"
               "  -h, --help              this text\n");
}

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "klc plot: %s%s\n\n", msg, arg ? arg : "");
    help(stderr);
    return 2;
}

int klc_cmd_plot(int argc, char **argv) {
    const char *input = NULL, *output = NULL, *list = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help(stdout);
            return 0;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (++i == argc) return usage_error("missing value after ", a);
            output = argv[i];
        } else if (strcmp(a, "--metrics") == 0) {
            if (++i == argc) return usage_error("missing value after ", a);
            list = argv[i];
        } else if (a[0] == '-' && a[1] != 0) {
            return usage_error("unknown option ", a);
        } else if (input) {
            return usage_error("more than one metrics file: ", a);
        } else {
            input = a;
        }
    }
    if (!input) return usage_error("missing METRICS.jsonl", NULL);
    if (!output) return usage_error("missing -o FILE.svg", NULL);
    char *copy = NULL;
    const char **panels = NULL;
    int n = 0;
    if (list) {
        copy = strdup(list);
        panels = calloc(strlen(list) + 1, sizeof *panels);
        if (!copy || !panels) {
            fprintf(stderr, "klc plot: out of memory\n");
            free(copy);
            free(panels);
            return 1;
        }
        for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save))
            panels[n++] = tok;
        if (n == 0) {
            free(copy);
            free(panels);
            return usage_error("--metrics names no metric", NULL);
        }
    }
    int status = plot_metrics_svg(input, output, panels, n);
    free(copy);
    free(panels);
    return status == 0 ? 0 : 1;
}
