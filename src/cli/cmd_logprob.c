/* klc logprob --model DIR [FILE]: one JSON object per input line of token ids,
 * {"logprob": sum, "token_logprobs": [log p(x[i+1] | x[0..i]) ...]}. Lines are scored in
 * batches so that long inputs run at the model's batched speed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "klc.h"

#define BATCH_LINES 64

static void help(FILE *f) {
    fprintf(f, "usage: klc logprob --model DIR [--threads N] [FILE]\n\n"
               "Reads sequences of token ids, one sequence per line, ids separated by spaces\n"
               "(standard input without FILE), and prints one JSON object per line:\n"
               "  {\"logprob\": <sum>, \"token_logprobs\": [...]}\n"
               "where token_logprobs[i] = log p(x[i+1] | x[0..i]) under the model and logprob is\n"
               "their sum (in double precision). DIR is a Hugging Face GPT-2 directory\n"
               "(config.json + model.safetensors).\n");
}

typedef struct line_batch {
    int32_t *tokens; /* [n * max_len] */
    int32_t lengths[BATCH_LINES];
    int32_t n, max_len;
    int32_t **rows; /* parsed rows before padding */
} line_batch;

/* Parses one line of ids; returns the count, or -1 with a message on stderr. */
static int parse_line(const char *path, long lineno, char *line, int32_t *out, int cap, int vocab) {
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ' ' && *end != '\t' && *end != '\r' && *end != '\n')) {
            fprintf(stderr, "klc logprob: %s:%ld:%ld: '%.*s' is not a token id\n", path, lineno,
                    (long)(p - line) + 1, (int)strcspn(p, " \t\r\n"), p);
            return -1;
        }
        if (errno || v < 0 || v >= vocab) {
            fprintf(stderr,
                    "klc logprob: %s:%ld:%ld: token id %.*s is outside the model's vocabulary "
                    "[0, %d)\n",
                    path, lineno, (long)(p - line) + 1, (int)(end - p), p, vocab);
            return -1;
        }
        if (n == cap) {
            fprintf(stderr,
                    "klc logprob: %s:%ld: the sequence is longer than the model's context of %d "
                    "tokens\n",
                    path, lineno, cap);
            return -1;
        }
        out[n++] = (int32_t)v;
        p = end;
    }
    if (n == 0) fprintf(stderr, "klc logprob: %s:%ld: empty sequence\n", path, lineno);
    return n == 0 ? -1 : n;
}

static int flush_batch(klc_model *m, int32_t *rows, int32_t *lengths, int n, int n_ctx, float *lp,
                       double *seq) {
    int32_t max_len = 1;
    for (int i = 0; i < n; i++) max_len = lengths[i] > max_len ? lengths[i] : max_len;
    /* Rows are stored n_ctx apart; score them in place with that stride as max_len would
     * waste work, so compact them to max_len first. */
    for (int i = 1; i < n; i++)
        memmove(rows + (size_t)i * max_len, rows + (size_t)i * n_ctx,
                sizeof(int32_t) * (size_t)lengths[i]);
    klc_seqs s = {n, max_len, rows, lengths, NULL, NULL};
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    o.token_logprobs = lp;
    o.seq_logprobs = seq;
    int st = klc_model_score(m, &s, &o);
    if (st != KLC_OK) {
        fprintf(stderr, "klc logprob: %s\n", klc_last_error());
        return 1;
    }
    for (int i = 0; i < n; i++) {
        printf("{\"logprob\": %.17g, \"token_logprobs\": [", seq[i]);
        for (int t = 0; t + 1 < lengths[i]; t++)
            printf("%s%.9g", t ? ", " : "", (double)lp[(size_t)i * max_len + t]);
        printf("]}\n");
    }
    return 0;
}

int klc_cmd_logprob(int argc, char **argv) {
    const char *model_dir = NULL, *path = NULL;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help(stdout);
            return 0;
        } else if ((!strcmp(argv[i], "--model") || !strcmp(argv[i], "-m")) && i + 1 < argc) {
            model_dir = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "klc logprob: unknown option '%s'\n", argv[i]);
            help(stderr);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "klc logprob: more than one input file\n");
            return 2;
        }
    }
    if (!model_dir) {
        fprintf(stderr, "klc logprob: --model DIR is required\n");
        help(stderr);
        return 2;
    }
    if (threads > 0) klc_set_num_threads(threads);
    klc_model *m;
    if (klc_model_load(model_dir, NULL, &m) != KLC_OK) {
        fprintf(stderr, "klc logprob: %s\n", klc_last_error());
        return 1;
    }
    FILE *in = path ? fopen(path, "r") : stdin;
    if (!in) {
        fprintf(stderr, "klc logprob: cannot open '%s': %s\n", path, strerror(errno));
        klc_model_destroy(m);
        return 1;
    }
    const char *name = path ? path : "<stdin>";
    klc_model_options cfg;
    klc_model_get_options(m, &cfg);
    const int n_ctx = cfg.n_ctx;
    int32_t *rows = malloc(sizeof(int32_t) * (size_t)BATCH_LINES * n_ctx);
    float *lp = malloc(sizeof(float) * (size_t)BATCH_LINES * n_ctx);
    double seq[BATCH_LINES];
    int32_t lengths[BATCH_LINES];
    int n = 0, status = 0;
    long lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    while (!status && getline(&line, &cap, in) >= 0) {
        lineno++;
        int k = parse_line(name, lineno, line, rows + (size_t)n * n_ctx, n_ctx, cfg.vocab_size);
        if (k < 0) {
            status = 1;
            break;
        }
        lengths[n++] = k;
        if (n == BATCH_LINES) {
            status = flush_batch(m, rows, lengths, n, n_ctx, lp, seq);
            n = 0;
        }
    }
    if (!status && n > 0) status = flush_batch(m, rows, lengths, n, n_ctx, lp, seq);
    free(line);
    free(rows);
    free(lp);
    if (path) fclose(in);
    klc_model_destroy(m);
    return status;
}
