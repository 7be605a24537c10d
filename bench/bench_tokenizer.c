/* Tokenizer speed: encode throughput (MB/s, one core) and training time.
 *
 *   bench_tokenizer encode TOKDIR FILE [--reps N] [--paragraphs] [--ids OUT]
 *   bench_tokenizer train --vocab-size N [--reps N] FILE...
 *
 * encode reports the median of N runs for a cold handle (freshly loaded: the per-piece
 * cache starts empty) and a warm one (the same handle encoding the file again), since a
 * training loop tokenizes with a long-lived handle. --paragraphs encodes the text in
 * pieces ending after each "\n\n", one call each, as the reference benchmark does for its
 * per-paragraph figure. --ids writes the ids (one line, spaces) for comparison. */
#include "klc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int die(const char *what) {
    fprintf(stderr, "bench_tokenizer: %s: %s\n", what, klc_last_error());
    return 1;
}

/* Encodes text whole or paragraph by paragraph; returns the number of ids. */
static size_t encode_all(klc_tokenizer *t, const char *text, size_t len, int paragraphs,
                         int32_t *ids) {
    size_t total = 0, n;
    if (!paragraphs) {
        if (klc_tokenizer_encode(t, text, len, 0, ids, len + 2, &n)) return (size_t)-1;
        return n;
    }
    /* Cut after every "\n\n", overlapping ones included, as JavaScript's
     * split(/(?<=\n\n)/) does on the reference side. */
    size_t start = 0;
    while (start < len) {
        size_t stop = start + 1;
        while (stop < len && !(stop >= 2 && text[stop - 2] == '\n' && text[stop - 1] == '\n'))
            stop++;
        if (klc_tokenizer_encode(t, text + start, stop - start, 0, ids + total, len + 2 - total,
                                 &n))
            return (size_t)-1;
        total += n;
        start = stop;
    }
    return total;
}

static int bench_encode(int argc, char **argv) {
    if (argc < 4) return 2;
    const char *dir = argv[2], *file = argv[3], *ids_out = NULL;
    int reps = 5, paragraphs = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--paragraphs"))
            paragraphs = 1;
        else if (!strcmp(argv[i], "--ids") && i + 1 < argc)
            ids_out = argv[++i];
        else
            return 2;
    }
    if (reps < 1 || reps > 100) reps = 5;
    size_t len;
    char *text = read_file(file, &len);
    if (!text) {
        fprintf(stderr, "bench_tokenizer: cannot read %s\n", file);
        return 1;
    }
    text[len] = '\0';
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    double cold[100], warm[100], load[100];
    size_t n = 0;
    for (int r = 0; r < reps; r++) {
        klc_tokenizer *t;
        double t0 = now();
        if (klc_tokenizer_load(dir, NULL, &t)) return die("load");
        double t1 = now();
        n = encode_all(t, text, len, paragraphs, ids);
        double t2 = now();
        if (n == (size_t)-1) return die("encode");
        encode_all(t, text, len, paragraphs, ids);
        double t3 = now();
        load[r] = t1 - t0;
        cold[r] = t2 - t1;
        warm[r] = t3 - t2;
        klc_tokenizer_destroy(t);
    }
    double mb = (double)len / 1e6;
    printf("klc encode file=%s mode=%s bytes=%zu ids=%zu reps=%d load_s=%.4f cold_s=%.4f "
           "warm_s=%.4f cold_MBps=%.2f warm_MBps=%.2f\n",
           file, paragraphs ? "paragraphs" : "whole", len, n, reps, median(load, reps),
           median(cold, reps), median(warm, reps), mb / median(cold, reps),
           mb / median(warm, reps));
    if (ids_out) {
        FILE *f = fopen(ids_out, "w");
        for (size_t i = 0; f && i < n; i++) fprintf(f, i ? " %d" : "%d", (int)ids[i]);
        if (f) fputc('\n', f), fclose(f);
    }
    free(ids);
    free(text);
    return 0;
}

static int bench_train(int argc, char **argv) {
    int vocab = 8192, reps = 1;
    const char **files = calloc((size_t)argc, sizeof *files);
    size_t nf = 0, bytes = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--vocab-size") && i + 1 < argc)
            vocab = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else
            files[nf++] = argv[i];
    }
    if (reps < 1 || reps > 100) reps = 1;
    for (size_t i = 0; i < nf; i++) {
        FILE *f = fopen(files[i], "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        bytes += (size_t)ftell(f);
        fclose(f);
    }
    klc_tokenizer_train_options o;
    klc_tokenizer_train_options_init(&o, KLC_TOKENIZER_TRAIN_OPTIONS_VERSION);
    o.vocab_size = vocab;
    double secs[100];
    int32_t got = 0;
    for (int r = 0; r < reps; r++) {
        klc_tokenizer *t;
        double t0 = now();
        if (klc_tokenizer_train(files, nf, &o, &t)) return die("train");
        secs[r] = now() - t0;
        got = klc_tokenizer_vocab_size(t);
        klc_tokenizer_destroy(t);
    }
    printf("klc train files=%zu bytes=%zu vocab=%d reps=%d median_s=%.3f\n", nf, bytes, (int)got,
           reps, median(secs, reps));
    free(files);
    return 0;
}

int main(int argc, char **argv) {
    int rc = 2;
    if (argc > 1 && !strcmp(argv[1], "encode"))
        rc = bench_encode(argc, argv);
    else if (argc > 1 && !strcmp(argv[1], "train"))
        rc = bench_train(argc, argv);
    if (rc == 2)
        fprintf(stderr, "usage: bench_tokenizer encode TOKDIR FILE [--reps N] [--paragraphs] "
                        "[--ids OUT]\n       bench_tokenizer train --vocab-size N [--reps N] "
                        "FILE...\n");
    return rc;
}
