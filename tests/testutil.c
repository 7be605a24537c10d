#include "testutil.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *tu_make_temp_dir(const char *tag) {
    char base[4096];
    snprintf(base, sizeof base, "%s/tmp", KLC_BINARY_DIR);
    mkdir(base, 0755);
    char *path = malloc(4200);
    snprintf(path, 4200, "%s/%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_remove_tree(const char *path) {
    if (path) nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (size) *size = (size_t)n;
    }
    return buf;
}

int tu_write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, size, f);
    return (fclose(f) == 0 && w == size) ? 0 : -1;
}

double tu_logsumexp(const double *x, int n) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY) return mx;
    for (int i = 0; i < n; i++) s += exp(x[i] - mx);
    return mx + log(s);
}

double tu_exact_kl(const double *logP, const double *logm, int n) {
    const double logz = tu_logsumexp(logP, n);
    double kl = 0;
    for (int i = 0; i < n; i++)
        if (logP[i] > -INFINITY) kl += exp(logP[i] - logz) * (logP[i] - logz - logm[i]);
    return kl;
}

int tu_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

klc_model *tu_model(int n_layer, int n_embd, int n_head, int vocab, int n_ctx, float std,
                    uint64_t seed, const klc_allocator *allocator) {
    klc_model_options o;
    klc_model_options_init(&o, KLC_MODEL_OPTIONS_VERSION);
    o.n_layer = n_layer;
    o.n_embd = n_embd;
    o.n_head = n_head;
    o.vocab_size = vocab;
    o.n_ctx = n_ctx;
    o.init_std = std;
    o.init_seed = seed;
    o.allocator = allocator;
    klc_model *m = NULL;
    ck_klc(klc_model_create(&o, &m));
    return m;
}

int tu_tiny_sequences(int32_t *tokens, int32_t *lengths) {
    enum { EOT = 3, L = 4 };
    int n = 0;
    memset(tokens, 0, 40 * L * sizeof *tokens);
    tokens[0] = EOT, tokens[1] = EOT, lengths[n++] = 2;
    for (int a = 0; a < 3; a++) {
        const int32_t x[L] = {EOT, a, EOT, 0};
        memcpy(tokens + n * L, x, sizeof x);
        lengths[n++] = 3;
    }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 4; c++) {
                const int32_t x[L] = {EOT, a, b, c};
                memcpy(tokens + n * L, x, sizeof x);
                lengths[n++] = 4;
            }
    return n;
}
