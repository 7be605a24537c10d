/* Distribution matching toward a pointwise constraint with GDC++ through klc_trainer.
 *
 *   gdcpp_pointwise CORPUS.txt [--pretrain-seconds S] [--steps N] [--pattern REGEX]
 *
 * No pretrained English model ships yet, so the program first trains a small byte-level
 * GPT-2 on CORPUS by maximum likelihood (tokens are bytes, 256 starts a text) for S
 * seconds: that model is the base a. Then it fine-tunes a copy of it toward
 * p(x) proportional to a(x) b(x), b(x) = 1 when the 32-byte text x matches REGEX (default
 * "\bthe\b"), printing the trainer's metrics, and shows constraint satisfaction and
 * KL(pi || a) before and after. Byte ids are texts already, so the constraint wraps
 * klc's regex feature in a feature of our own that hands it the bytes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "klc.h"

#define BOS      256
#define GEN      32
#define PRE_SEQS 16
#define PRE_LEN  64

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
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) exit(1);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

/* Maximum likelihood on random windows of the corpus, through the MLE objective. */
static void pretrain(klc_model *m, const unsigned char *text, size_t n, double seconds) {
    klc_objective_options oo;
    klc_objective_options_init(&oo, KLC_OBJECTIVE_OPTIONS_VERSION);
    oo.kind = KLC_OBJECTIVE_MLE;
    oo.token_mean = 1;
    klc_objective *mle;
    check(klc_objective_builtin(&oo, &mle), "MLE objective");
    klc_optimizer_options po;
    klc_optimizer_options_init(&po, KLC_OPTIMIZER_OPTIONS_VERSION);
    po.lr = 3e-3;
    po.clip_norm = 1.0;
    size_t np;
    klc_model_params(m, &np);
    klc_optimizer *opt;
    check(klc_optimizer_create(&po, np, &opt), "optimizer");
    static int32_t tokens[PRE_SEQS * PRE_LEN], lengths[PRE_SEQS];
    klc_rng rng;
    klc_rng_init(&rng, 1, KLC_STREAM_DATA);
    klc_seqs seqs = {PRE_SEQS, PRE_LEN, tokens, lengths, NULL, NULL};
    klc_step_view v;
    klc_step_view_init(&v, KLC_STEP_VIEW_VERSION);
    v.n_seq = PRE_SEQS;
    v.max_len = PRE_LEN;
    const double t0 = now();
    int64_t step = 0;
    while (now() - t0 < seconds) {
        for (int i = 0; i < PRE_SEQS; i++) {
            size_t off = (size_t)(klc_rng_uniform(&rng, (uint64_t)(step * PRE_SEQS + i), 0) *
                                  (double)(n - PRE_LEN));
            tokens[i * PRE_LEN] = BOS;
            for (int t = 1; t < PRE_LEN; t++) tokens[i * PRE_LEN + t] = text[off + (size_t)t - 1];
            lengths[i] = PRE_LEN;
        }
        check(klc_model_zero_grads(m), "zero grads");
        check(klc_objective_accumulate(mle, m, &v, &seqs, NULL), "accumulate");
        check(klc_optimizer_step_model(opt, m, NULL), "optimizer step");
        step++;
    }
    double lp[PRE_SEQS];
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.seq_logprobs = lp;
    check(klc_model_score(m, &seqs, &fo), "score");
    double nats = 0;
    for (int i = 0; i < PRE_SEQS; i++) nats -= lp[i];
    printf("pretrained %lld steps in %.0f s: %.3f bits per byte on the last batch\n",
           (long long)step, now() - t0, nats / (PRE_SEQS * (PRE_LEN - 1)) / log(2));
    klc_optimizer_destroy(opt);
    klc_objective_destroy(mle);
}

/* The regex feature over byte ids: the ids are the text's bytes. */
typedef struct bytes_regex {
    klc_feature *regex;
    char text[GEN + 1];
} bytes_regex;

static int score_bytes(void *self, const klc_seq_batch *s, double *out) {
    bytes_regex *br = self;
    for (int i = 0; i < s->n; i++) {
        size_t len = (size_t)s->lengths[i];
        for (size_t t = 0; t < len && t < GEN; t++)
            br->text[t] = (char)s->ids[(size_t)i * s->stride + t];
        const char *texts[1] = {br->text};
        size_t text_lengths[1] = {len};
        klc_seq_batch one = *s;
        one.n = 1;
        one.ids = s->ids + (size_t)i * s->stride;
        one.lengths = s->lengths + i;
        one.texts = texts;
        one.text_lengths = text_lengths;
        one.context_ids = NULL;
        if (klc_feature_score(br->regex, &one, out + i) != KLC_OK) return 1;
    }
    return 0;
}

static void show(const char *when, const klc_metrics *m) {
    printf("%s: constraint satisfied by %.1f%% of pi's samples, KL(pi||a) = %.3f nats, "
           "KL(p||pi) ~ %.3f\n",
           when, 100 * klc_metrics_get(m, "eval.b_mean"), klc_metrics_get(m, "eval.kl_pi_a"),
           klc_metrics_get(m, "eval.kl_p_pi"));
}

int main(int argc, char **argv) {
    const char *core = klc_blas_suggested_core();
    if (core && !getenv("OPENBLAS_CORETYPE")) {
        setenv("OPENBLAS_CORETYPE", core, 1);
        execv("/proc/self/exe", argv);
    }
    const char *corpus = NULL, *pattern = "\\bthe\\b";
    double pre_seconds = 60;
    int steps = 100;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--pretrain-seconds") && i + 1 < argc)
            pre_seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pattern") && i + 1 < argc)
            pattern = argv[++i];
        else
            corpus = argv[i];
    }
    if (!corpus) {
        fprintf(stderr,
                "usage: %s CORPUS.txt [--pretrain-seconds S] [--steps N] "
                "[--pattern REGEX]\n",
                argv[0]);
        return 2;
    }
    size_t n;
    unsigned char *text = read_all(corpus, &n);

    klc_model_options mo;
    klc_model_options_init(&mo, KLC_MODEL_OPTIONS_VERSION);
    mo.n_layer = 2;
    mo.n_head = 4;
    mo.n_embd = 128;
    mo.n_ctx = PRE_LEN;
    mo.vocab_size = 257;
    klc_model *policy, *base;
    check(klc_model_create(&mo, &policy), "model");
    pretrain(policy, text, n, pre_seconds);
    check(klc_model_clone(policy, &base), "clone");

    bytes_regex br;
    klc_feature_options fopt;
    klc_feature_options_init(&fopt, KLC_FEATURE_OPTIONS_VERSION);
    check(klc_feature_regex(pattern, &fopt, &br.regex), "regex feature");
    klc_feature_ops ops = {KLC_FEATURE_OPS_VERSION, "pattern", 1, score_bytes, NULL};
    klc_feature *b;
    check(klc_feature_create(&ops, &br, NULL, &b), "feature");
    klc_target *target;
    check(klc_target_create(base, NULL, &target), "target");
    check(klc_target_add_pointwise(target, b), "pointwise constraint");

    klc_objective_options oo;
    klc_objective_options_init(&oo, KLC_OBJECTIVE_OPTIONS_VERSION);
    oo.kind = KLC_OBJECTIVE_GDCPP;
    klc_objective *obj;
    check(klc_objective_builtin(&oo, &obj), "objective");
    klc_optimizer_options po;
    klc_optimizer_options_init(&po, KLC_OPTIMIZER_OPTIONS_VERSION);
    po.lr = 1e-4;
    po.clip_norm = 1.0;
    size_t np;
    klc_model_params(policy, &np);
    klc_optimizer *opt;
    check(klc_optimizer_create(&po, np, &opt), "optimizer");

    klc_trainer_options to;
    klc_trainer_options_init(&to, KLC_TRAINER_OPTIONS_VERSION);
    to.batch_size = 64;
    to.max_len = 1 + GEN;
    to.eos_id = -1; /* bytes have no end-of-text token: every text has GEN bytes */
    to.bos_id = BOS;
    to.eval_samples = 256;
    to.eval_period = 10;
    to.seed = 1;
    klc_trainer *tr;
    check(klc_trainer_create(policy, base, target, obj, opt, NULL, &to, &tr), "trainer");
    klc_trainer_memory_info mi;
    mi.version = KLC_TRAINER_MEMORY_VERSION;
    check(klc_trainer_memory(tr, &mi), "memory");
    printf("memory: %.2f MiB in all (policy %.2f, base %.2f, optimizer %.2f, samplers %.2f, "
           "batches %.2f)\n",
           mi.total_bytes / 1048576.0, mi.policy_bytes / 1048576.0, mi.base_bytes / 1048576.0,
           mi.optimizer_bytes / 1048576.0, mi.sampler_bytes / 1048576.0,
           mi.batch_bytes / 1048576.0);

    klc_metrics *m;
    check(klc_metrics_create(NULL, &m), "metrics");
    check(klc_trainer_step(tr, m), "first step"); /* makes the first Z estimate */
    check(klc_trainer_evaluate(tr, m), "evaluate");
    show("after 1 step", m);
    printf("%6s %9s %9s %9s %9s %9s %7s %9s\n", "step", "b_mean", "kl_p_pi", "kl_pi_a", "log_z",
           "ess", "loss", "samples/s");
    for (int k = 1; k < steps; k++) {
        check(klc_trainer_step(tr, m), "step");
        if (!isnan(klc_metrics_get(m, "eval.b_mean")))
            printf("%6.0f %9.3f %9.3f %9.3f %9.3f %9.1f %7.3f %9.0f\n", klc_metrics_get(m, "step"),
                   klc_metrics_get(m, "eval.b_mean"), klc_metrics_get(m, "eval.kl_p_pi"),
                   klc_metrics_get(m, "eval.kl_pi_a"), klc_metrics_get(m, "log_z"),
                   klc_metrics_get(m, "train.ess"), klc_metrics_get(m, "loss"),
                   klc_metrics_get(m, "samples_per_s"));
    }
    check(klc_trainer_evaluate(tr, m), "evaluate");
    show("after training", m);

    klc_metrics_destroy(m);
    klc_trainer_destroy(tr);
    klc_optimizer_destroy(opt);
    klc_objective_destroy(obj);
    klc_target_destroy(target);
    klc_feature_destroy(b);
    klc_feature_destroy(br.regex);
    klc_model_destroy(base);
    klc_model_destroy(policy);
    free(text);
    return 0;
}
