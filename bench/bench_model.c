/* Model benchmark: training step (forward + backward) and KV-cache decoding for GPT-2
 * small and klc's small shape, with the sgemm rate of the same products and the memory
 * bandwidth measured in the same run as yardsticks. Repetitions of the configurations are
 * interleaved and medians reported, because this machine is shared and noisy.
 *
 *   bench_model [--quick] [--shape small|gpt2] [--threads 1,2] [--reps N] [--json]
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/blas_core.h"
#include "klc.h"
#include "sgemm_yardstick.h"

typedef struct shape {
    const char *name;
    int n_layer, n_head, n_embd, vocab, n_ctx;
    int train_seqs, train_len; /* tokens per training step = seqs * len */
} shape;

static const shape SHAPES[] = {
    {"small", 4, 4, 256, 8192, 256, 8, 256},
    {"gpt2", 12, 12, 768, 50257, 1024, 8, 256},
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const char *what, int st) {
    fprintf(stderr, "%s: %s: %s\n", what, klc_status_str(st), klc_last_error());
    exit(1);
}

static klc_model *make_model(const shape *s) {
    klc_model_options o;
    klc_model_options_init(&o, KLC_MODEL_OPTIONS_VERSION);
    o.n_layer = s->n_layer;
    o.n_head = s->n_head;
    o.n_embd = s->n_embd;
    o.vocab_size = s->vocab;
    o.n_ctx = s->n_ctx;
    klc_model *m;
    int st = klc_model_create(&o, &m);
    if (st) die("klc_model_create", st);
    return m;
}

/* Matmul FLOPs of one forward over `tokens` tokens in sequences of length T, attention
 * counted over the full T x T square as both klc and PyTorch compute it. */
static double forward_flops(const shape *s, double tokens, double T) {
    double C = s->n_embd;
    double dense = 2.0 * tokens * (s->n_layer * 12.0 * C * C + (double)s->vocab * C);
    double attn = 2.0 * 2.0 * tokens * T * C * s->n_layer;
    return dense + attn;
}

/* One training step: fused forward + backward with sequence weights (the DM/RM case). */
static double time_train_step(klc_model *m, const shape *s, int32_t *tokens, int32_t *lengths,
                              float *on, float *sm) {
    klc_seqs seqs = {s->train_seqs, s->train_len, tokens, lengths, NULL, NULL};
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    double t0 = now();
    int st = klc_model_forward_backward(m, &seqs, &o, on, sm);
    if (st) die("forward_backward", st);
    return now() - t0;
}

/* Greedy decoding of n_new tokens after an 8-token prompt, `rows` sequences at once;
 * returns seconds spent in the decoding steps (prefill excluded, as in the reference). */
static double time_decode(klc_model *m, const shape *s, int rows, int n_new, float *logits) {
    const int prompt = 8;
    klc_kv_cache *c;
    int st = klc_kv_cache_create(m, rows, prompt + n_new, NULL, &c);
    if (st) die("kv_cache_create", st);
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)rows * prompt),
            *lens = malloc(sizeof(int32_t) * (size_t)rows);
    int32_t *row_ids = malloc(sizeof(int32_t) * (size_t)rows),
            *next = malloc(sizeof(int32_t) * (size_t)rows);
    for (int i = 0; i < rows; i++) {
        lens[i] = prompt;
        row_ids[i] = i;
        for (int t = 0; t < prompt; t++) toks[i * prompt + t] = (i * 31 + t * 7) % s->vocab;
    }
    klc_seqs ps = {rows, prompt, toks, lens, NULL, NULL};
    st = klc_model_prefill(m, c, &ps, logits);
    if (st) die("prefill", st);
    double t0 = now();
    for (int step = 0; step < n_new; step++) {
        for (int i = 0; i < rows; i++) {
            const float *row = logits + (size_t)i * s->vocab;
            int best = 0;
            for (int j = 1; j < s->vocab; j++)
                if (row[j] > row[best]) best = j;
            next[i] = best;
        }
        st = klc_model_decode(m, c, rows, row_ids, next, logits);
        if (st) die("decode", st);
    }
    double dt = now() - t0;
    klc_kv_cache_destroy(c);
    free(toks);
    free(lens);
    free(row_ids);
    free(next);
    return dt;
}

/* The same products as one training step's dense layers, straight through sgemm with the
 * layouts the model uses: the yardstick for "fraction of the sgemm rate". */
static double time_sgemm_step(const shape *s, float *A, float *B, float *Cm) {
    return yardstick_step_seconds(s->train_seqs * s->train_len, s->n_layer, s->n_embd, s->vocab, A,
                                  B, Cm);
}

static double dense_flops(const shape *s) {
    return yardstick_flops(s->train_seqs * s->train_len, s->n_layer, s->n_embd, s->vocab);
}

/* Triad a = b + k c over buffers far larger than the caches: GB/s of bytes moved. */
static double bandwidth(size_t n, float *a, float *b, float *c) {
    double t0 = now();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = b[i] + 1.5f * c[i];
    double dt = now() - t0;
    return 3.0 * 4.0 * (double)n / dt / 1e9;
}

int main(int argc, char **argv) {
    int quick = 0, json = 0, reps = 5, only = -1, threads_list[4] = {1, 2}, n_threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1, reps = 3;
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            const char *n = argv[++i];
            only = !strcmp(n, "small") ? 0 : !strcmp(n, "gpt2") ? 1 : -2;
            if (only == -2) return fprintf(stderr, "unknown shape %s\n", n), 2;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            n_threads = 0;
            for (char *tok = strtok(argv[++i], ","); tok && n_threads < 4; tok = strtok(NULL, ","))
                threads_list[n_threads++] = atoi(tok);
        } else {
            fprintf(
                stderr,
                "usage: %s [--quick] [--shape small|gpt2] [--threads 1,2] [--reps N] [--json]\n",
                argv[0]);
            return 2;
        }
    }
    klc_blas_select_core_or_reexec(argv);
    fprintf(stderr, "OpenBLAS kernels: %s\n", klc_blas_core());
    const int n_new = quick ? 16 : 64;
    for (int si = 0; si < 2; si++) {
        if (only >= 0 && only != si) continue;
        const shape *s = &SHAPES[si];
        klc_model *m = make_model(s);
        const int M = s->train_seqs * s->train_len;
        int32_t *tokens = malloc(sizeof(int32_t) * (size_t)M),
                *lengths = malloc(sizeof(int32_t) * (size_t)s->train_seqs);
        float *on = malloc(sizeof(float) * (size_t)M), *sm = malloc(sizeof(float) * (size_t)M);
        for (int i = 0; i < M; i++) {
            tokens[i] = (i * 7919) % s->vocab;
            on[i] = -1.0f / s->train_seqs;
            sm[i] = 1.0f / s->train_seqs;
        }
        for (int i = 0; i < s->train_seqs; i++) lengths[i] = s->train_len;
        int st = klc_model_reserve(m, s->train_seqs, s->train_len, 1);
        if (st) die("reserve", st);
        klc_memory_info mem;
        klc_model_memory(m, &mem);
        float *logits = malloc(sizeof(float) * 32 * (size_t)s->vocab);
        /* Big enough for every operand of time_sgemm_step, logit chunks included. */
        size_t big = yardstick_floats(M, s->n_embd, s->vocab);
        float *A = calloc(big, 4), *B = calloc(big, 4), *Cm = calloc(big, 4);
        double train[4][16], dec1[4][16], dec32[4][16], gemm[4][16];
        for (int r = 0; r < reps; r++)
            for (int ti = 0; ti < n_threads; ti++) {
                klc_set_num_threads(threads_list[ti]);
                if (r == 0) time_train_step(m, s, tokens, lengths, on, sm); /* warm-up */
                train[ti][r] = time_train_step(m, s, tokens, lengths, on, sm);
                gemm[ti][r] = time_sgemm_step(s, A, B, Cm);
                dec1[ti][r] = time_decode(m, s, 1, n_new, logits);
                dec32[ti][r] = time_decode(m, s, 32, n_new, logits);
            }
        double params_bytes = (double)mem.params_bytes;
        for (int ti = 0; ti < n_threads; ti++) {
            int t = threads_list[ti];
            klc_set_num_threads(t);
            size_t nb = (size_t)1 << 28; /* 1 GiB per array */
            float *a = malloc(nb * 4), *b = malloc(nb * 4), *c = malloc(nb * 4);
            for (size_t i = 0; i < nb; i++) a[i] = b[i] = c[i] = (float)(i & 7);
            double bw[3];
            for (int k = 0; k < 3; k++) bw[k] = bandwidth(nb, a, b, c);
            free(a), free(b), free(c);
            double bwm = median(bw, 3);
            double tt = median(train[ti], reps), tg = median(gemm[ti], reps);
            double d1 = median(dec1[ti], reps), d32 = median(dec32[ti], reps);
            double fl = 3.0 * forward_flops(s, M, s->train_len);
            double bound = bwm * 1e9 / params_bytes;
            if (json) {
                printf(
                    "{\"impl\":\"klc\",\"shape\":\"%s\",\"threads\":%d,\"train_tokens_per_s\":%.1f,"
                    "\"train_gflops\":%.2f,\"sgemm_gflops\":%.2f,\"train_vs_sgemm\":%.3f,"
                    "\"decode_b1_tokens_per_s\":%.2f,\"decode_b32_tokens_per_s\":%.1f,"
                    "\"bandwidth_gbs\":%.2f,\"decode_b1_bound_tokens_per_s\":%.2f,"
                    "\"decode_b1_vs_bound\":%.3f,\"train_memory_mib\":%.1f}\n",
                    s->name, t, M / tt, fl / tt / 1e9, dense_flops(s) / tg / 1e9,
                    (fl / tt) / (dense_flops(s) / tg), n_new / d1, 32.0 * n_new / d32, bwm, bound,
                    (n_new / d1) / bound, mem.total_bytes / 1048576.0);
            } else {
                printf(
                    "%-6s threads %d | train %8.0f tok/s %7.1f GFLOP/s (sgemm same products %7.1f "
                    "GFLOP/s, ratio %.2f) | decode b1 %7.1f tok/s (bound %.1f at %.1f GB/s, ratio "
                    "%.2f) b32 %8.1f tok/s | memory %.0f MiB\n",
                    s->name, t, M / tt, fl / tt / 1e9, dense_flops(s) / tg / 1e9,
                    (fl / tt) / (dense_flops(s) / tg), n_new / d1, bound, bwm, (n_new / d1) / bound,
                    32.0 * n_new / d32, mem.total_bytes / 1048576.0);
            }
            fflush(stdout);
        }
        free(A), free(B), free(Cm), free(logits), free(tokens), free(lengths), free(on), free(sm);
        klc_model_destroy(m);
    }
    return 0;
}
