/* A complete training loop built from klc's handles: a byte-level GPT-2 learns English
 * from public-domain novels by maximum likelihood, reports held-out bits per byte, is
 * saved as a Hugging Face directory, reloaded, and sampled with the KV cache.
 *
 *   train_bytes --out DIR [--seconds S] [--heldout FILE] FILES...
 *
 * Tokens are bytes (0..255) and 256 marks a document's start, so no tokenizer is needed.
 * The loop owns its data and schedule; the update is klc's AdamW with warm-up and clipping. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "klc.h"

#define BOS  256
#define SEQS 16
#define LEN  128

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void check(int status, const char *what) {
    if (status != KLC_OK) {
        fprintf(stderr, "%s failed: %s: %s\n", what, klc_status_str(status), klc_last_error());
        exit(1);
    }
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) exit(1);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

/* Fills a batch of windows: token 0 is BOS, then LEN-1 bytes from random offsets. */
static void fill_batch(int32_t *tokens, const unsigned char *text, size_t n, const klc_rng *rng,
                       uint64_t step, int fixed) {
    for (int i = 0; i < SEQS; i++) {
        size_t off =
            fixed
                ? (size_t)i * (n / SEQS)
                : (size_t)(klc_rng_uniform(rng, step * SEQS + (uint64_t)i, 0) * (double)(n - LEN));
        tokens[i * LEN] = BOS;
        for (int t = 1; t < LEN; t++) tokens[i * LEN + t] = text[off + (size_t)t - 1];
    }
}

/* Mean nats per predicted byte over a batch. */
static double batch_loss(klc_model *m, const int32_t *tokens) {
    int32_t lengths[SEQS];
    double lp[SEQS];
    for (int i = 0; i < SEQS; i++) lengths[i] = LEN;
    klc_seqs s = {SEQS, LEN, tokens, lengths, NULL, NULL};
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    o.seq_logprobs = lp;
    check(klc_model_score(m, &s, &o), "score");
    double sum = 0;
    for (int i = 0; i < SEQS; i++) sum -= lp[i];
    return sum / (SEQS * (LEN - 1));
}

static void sample(klc_model *m, const char *prompt, int n_new, uint64_t seed) {
    klc_kv_cache *c;
    check(klc_kv_cache_create(m, 1, LEN, NULL, &c), "kv cache");
    int32_t toks[LEN], len = 1;
    toks[0] = BOS;
    for (const char *p = prompt; *p && len < LEN / 2; p++) toks[len++] = (unsigned char)*p;
    float logits[257];
    klc_seqs s = {1, len, toks, &len, NULL, NULL};
    check(klc_model_prefill(m, c, &s, logits), "prefill");
    klc_rng rng;
    klc_rng_init(&rng, seed, KLC_STREAM_SAMPLE);
    printf("  \"%s", prompt);
    for (int t = 0; t < n_new && len < LEN; t++) {
        /* Temperature 0.8, then inverse-CDF sampling from the counter-based generator. */
        double mx = -INFINITY, z = 0, p[257];
        for (int j = 0; j < 256; j++) mx = logits[j] / 0.8 > mx ? logits[j] / 0.8 : mx;
        for (int j = 0; j < 256; j++) z += p[j] = exp(logits[j] / 0.8 - mx);
        double u = klc_rng_uniform(&rng, 0, (uint64_t)t) * z, acc = 0;
        int next = 0;
        for (; next < 255; next++)
            if ((acc += p[next]) > u) break;
        putchar(next == '\n' ? ' ' : next);
        int32_t row = 0, tok = next;
        check(klc_model_decode(m, c, 1, &row, &tok, logits), "decode");
        len++;
    }
    printf("\"\n");
    klc_kv_cache_destroy(c);
}

int main(int argc, char **argv) {
    /* OpenBLAS reads OPENBLAS_CORETYPE only when it loads: restart once if it picked slow
     * fallback kernels on a CPU it does not know. */
    const char *core = klc_blas_suggested_core();
    if (core && !getenv("OPENBLAS_CORETYPE")) {
        setenv("OPENBLAS_CORETYPE", core, 1);
        execv("/proc/self/exe", argv);
    }
    const char *out = NULL, *heldout_path = NULL;
    double seconds = 60;
    size_t n = 0, cap = 0;
    unsigned char *text = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--heldout") && i + 1 < argc)
            heldout_path = argv[++i];
        else {
            size_t k;
            unsigned char *t = read_all(argv[i], &k);
            if (n + k > cap) text = realloc(text, cap = (n + k) * 2);
            memcpy(text + n, t, k);
            n += k;
            free(t);
        }
    }
    if (!out || n < LEN * SEQS) {
        fprintf(stderr, "usage: %s --out DIR [--seconds S] [--heldout FILE] FILES...\n", argv[0]);
        return 2;
    }
    size_t n_held = 0;
    unsigned char *held = heldout_path ? read_all(heldout_path, &n_held) : NULL;

    klc_model_options mo;
    klc_model_options_init(&mo, KLC_MODEL_OPTIONS_VERSION);
    mo.n_layer = 4;
    mo.n_head = 6;
    mo.n_embd = 192;
    mo.n_ctx = LEN;
    mo.vocab_size = 257;
    mo.init_seed = 1;
    klc_model *m;
    check(klc_model_create(&mo, &m), "create");
    check(klc_model_reserve(m, SEQS, LEN, 1), "reserve");
    klc_memory_info mem;
    klc_model_memory(m, &mem);
    size_t n_params;
    float *w = klc_model_params(m, &n_params);
    printf("byte-level GPT-2: %d layers, width %d, %zu parameters; %.1f MiB planned for "
           "training (%d x %d tokens per step); %zu bytes of text\n",
           mo.n_layer, mo.n_embd, n_params, mem.total_bytes / 1048576.0, SEQS, LEN, n);

    (void)w;
    klc_optimizer_options oo;
    klc_optimizer_options_init(&oo, KLC_OPTIMIZER_OPTIONS_VERSION);
    oo.kind = KLC_OPTIMIZER_ADAMW;
    oo.lr = 2e-3;
    oo.beta2 = 0.99;
    oo.weight_decay = 0.01;
    oo.clip_norm = 1.0;
    oo.warmup_steps = 30;
    klc_optimizer *opt;
    check(klc_optimizer_create(&oo, n_params, &opt), "optimizer");
    int32_t tokens[SEQS * LEN], lengths[SEQS], held_tokens[SEQS * LEN];
    float on[SEQS * LEN], sm[SEQS * LEN];
    const float coef = 1.0f / (SEQS * (LEN - 1)); /* mean loss per predicted byte */
    for (int i = 0; i < SEQS * LEN; i++) on[i] = -coef, sm[i] = coef;
    for (int i = 0; i < SEQS; i++) lengths[i] = LEN;
    if (held) fill_batch(held_tokens, held, n_held, NULL, 0, 1);
    klc_rng data;
    klc_rng_init(&data, 7, KLC_STREAM_DATA);
    klc_seqs s = {SEQS, LEN, tokens, lengths, NULL, NULL};
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    double lp[SEQS];
    fo.seq_logprobs = lp;
    const double t0 = now();
    double last_report = t0, first_held = held ? batch_loss(m, held_tokens) : 0;
    int step = 0;
    while (now() - t0 < seconds) {
        fill_batch(tokens, text, n, &data, (uint64_t)step, 0);
        check(klc_model_zero_grads(m), "zero");
        check(klc_model_forward_backward(m, &s, &fo, on, sm), "forward_backward");
        step++;
        check(klc_optimizer_step_model(opt, m, NULL), "optimizer step");
        if (now() - last_report > 10 || step == 1) {
            double loss = 0;
            for (int i = 0; i < SEQS; i++) loss -= lp[i];
            loss /= SEQS * (LEN - 1);
            printf("step %4d  %5.1fs  train %.3f bits/byte", step, now() - t0, loss / log(2));
            if (held) printf("  held-out %.3f bits/byte", batch_loss(m, held_tokens) / log(2));
            printf("  %.0f tokens/s\n", step * (double)SEQS * LEN / (now() - t0));
            fflush(stdout);
            last_report = now();
        }
    }
    double final_held = held ? batch_loss(m, held_tokens) : 0;
    check(klc_model_save(m, out), "save");
    klc_model *reloaded;
    check(klc_model_load(out, NULL, &reloaded), "load");
    if (held) {
        double again = batch_loss(reloaded, held_tokens);
        printf("held-out: %.3f -> %.3f bits/byte after %d steps; reloaded from %s: %.3f\n",
               first_held / log(2), final_held / log(2), step, out, again / log(2));
        if (again != final_held) {
            fprintf(stderr, "reloaded model scores differently\n");
            return 1;
        }
    }
    printf("samples (temperature 0.8, KV-cache decoding):\n");
    sample(reloaded, "It was", 100, 1);
    sample(reloaded, "The sea", 100, 2);
    sample(reloaded, "Mr. Darcy", 100, 3);
    klc_model_destroy(reloaded);
    klc_model_destroy(m);
    klc_optimizer_destroy(opt);
    free(text), free(held);
    return 0;
}
