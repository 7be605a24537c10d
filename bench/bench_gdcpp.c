/* One on-policy GDC++ step on klc's small shape, timed phase by phase, for comparison with
 * bench/torch_gdcpp.py (the same step in PyTorch; bench/gdcpp_vs_torch.sh runs both).
 *
 * The step: 64 sequences of 40 tokens (a start token and 39 sampled ones, no end-of-text
 * token, so every sequence has the same length on both sides) drawn from the policy by
 * pure ancestral sampling; the target is P(x) = a(x) b(x), b(x) = 1 when a generated token
 * has an id below LOW_IDS (a pointwise constraint that a freshly initialised model meets
 * about half the time); Z is estimated on the batch itself; w = P/(Z q) - pi/q (q = pi);
 * L = -(1/N) sum w log pi; Adam. Phases:
 *
 *   sample   klc_sampler_sample on the policy (gives log q = log pi), keeping the
 *            policy's activations (KLC_SAMPLE_KEEP_ACTIVATIONS, as the trainer does
 *            on-policy)
 *   score    klc_model_score of the frozen base (log a), klc_target_log_prob (log P),
 *            klc_estimate_log_z on the batch
 *   fwdbwd   zeroing the gradients and klc_objective_accumulate (the GDC++ weights and one
 *            fused forward + backward of the policy, whose forward through the blocks the
 *            kept activations replace)
 *   update   klc_optimizer_step_model (Adam)
 *
 * and, as a check that the handles are used as the library itself uses them, the same
 * step through klc_trainer_step (z_period 1, so a Z check on every batch; it also computes
 * its metrics), timed end to end only; and, as the yardstick, the dense products of the
 * forward/backward phase over the 64 x 39 predicted positions straight through
 * cblas_sgemm (bench/sgemm_yardstick.h), in the same process.
 *
 *   bench_gdcpp [--threads 1,2] [--steps N] [--json] [--round R]
 *
 * Prints one line per measured step (JSON with --json), after one warm-up step per
 * thread count; steps interleave the thread counts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/blas_core.h"
#include "klc.h"
#include "sgemm_yardstick.h"

enum { N_LAYER = 4, N_HEAD = 4, N_EMBD = 256, VOCAB = 8192, N_CTX = 64 };
enum { BATCH = 64, SEQ_LEN = 40, BOS = 0, LOW_IDS = 128 };
#define LR 1e-4

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void check(int st, const char *what) {
    if (st != KLC_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, klc_status_str(st), klc_last_error());
        exit(1);
    }
}

static double load_average(void) {
    double l = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = NAN;
        fclose(f);
    }
    return l;
}

/* b(x) = 1 when some generated token has an id below LOW_IDS. */
static int contains_low_id(void *self, const klc_seq_batch *s, double *out) {
    (void)self;
    for (int32_t i = 0; i < s->n; i++) {
        const int32_t *ids = s->ids + (size_t)i * (size_t)s->stride;
        int hit = 0;
        for (int32_t t = 0; t < s->lengths[i] && !hit; t++) hit = ids[t] < LOW_IDS;
        out[i] = hit;
    }
    return 0;
}

static klc_model *make_model(uint64_t seed) {
    klc_model_options o;
    klc_model_options_init(&o, KLC_MODEL_OPTIONS_VERSION);
    o.n_layer = N_LAYER;
    o.n_head = N_HEAD;
    o.n_embd = N_EMBD;
    o.vocab_size = VOCAB;
    o.n_ctx = N_CTX;
    o.init_seed = seed;
    klc_model *m;
    check(klc_model_create(&o, &m), "klc_model_create");
    return m;
}

static klc_optimizer *make_adam(klc_model *m) {
    klc_optimizer_options o;
    klc_optimizer_options_init(&o, KLC_OPTIMIZER_OPTIONS_VERSION);
    o.kind = KLC_OPTIMIZER_ADAM;
    o.lr = LR;
    size_t n;
    klc_model_params(m, &n);
    klc_optimizer *opt;
    check(klc_optimizer_create(&o, n, &opt), "klc_optimizer_create");
    return opt;
}

static klc_objective *make_gdcpp(void) {
    klc_objective_options o;
    klc_objective_options_init(&o, KLC_OBJECTIVE_OPTIONS_VERSION);
    o.kind = KLC_OBJECTIVE_GDCPP;
    klc_objective *obj;
    check(klc_objective_builtin(&o, &obj), "klc_objective_builtin");
    return obj;
}

/* The custom loop: every handle of a step, so that each phase can be timed. */
typedef struct phased {
    klc_model *policy, *base;
    klc_sampler *sampler;
    klc_batch *batch;
    klc_objective *obj;
    klc_optimizer *opt;
    klc_target *target;
    int32_t gen_lengths[BATCH];
    double weights[BATCH], logpi[BATCH];
    int64_t step;
} phased;

typedef struct step_times {
    double sample, score, fwdbwd, update, total;
    double b_mean, log_z, loss;
} step_times;

static void phased_init(phased *p, klc_feature *feature) {
    p->base = make_model(1);
    check(klc_model_clone(p->base, &p->policy), "klc_model_clone");
    klc_sampler_options so;
    klc_sampler_options_init(&so, KLC_SAMPLER_OPTIONS_VERSION);
    so.max_rows = BATCH;
    so.max_len = SEQ_LEN;
    so.max_prompt_len = 1;
    check(klc_sampler_create(p->policy, &so, &p->sampler), "klc_sampler_create");
    check(klc_batch_create(BATCH, SEQ_LEN, 0, NULL, &p->batch), "klc_batch_create");
    check(klc_model_reserve(p->base, BATCH, SEQ_LEN, 0), "reserve base");
    check(klc_model_reserve(p->policy, BATCH, SEQ_LEN, 1), "reserve policy");
    check(klc_target_create(p->base, NULL, &p->target), "klc_target_create");
    check(klc_target_add_pointwise(p->target, feature), "klc_target_add_pointwise");
    p->obj = make_gdcpp();
    p->opt = make_adam(p->policy);
    p->step = 0;
}

static void phased_free(phased *p) {
    klc_target_destroy(p->target);
    klc_optimizer_destroy(p->opt);
    klc_objective_destroy(p->obj);
    klc_batch_destroy(p->batch);
    klc_sampler_destroy(p->sampler);
    klc_model_destroy(p->policy);
    klc_model_destroy(p->base);
}

static void phased_step(phased *p, step_times *out) {
    klc_batch *b = p->batch;
    const double t0 = now();

    klc_sample_options so;
    klc_sample_options_init(&so, KLC_SAMPLE_OPTIONS_VERSION);
    klc_rng_init(&so.rng, 7, KLC_STREAM_SAMPLE);
    so.rng.step = (uint64_t)p->step;
    so.eos_id = -1;
    so.bos_id = BOS;
    so.flags = KLC_SAMPLE_KEEP_ACTIVATIONS; /* on-policy: as klc_trainer_step samples */
    check(klc_sampler_sample(p->sampler, &so, BATCH, b), "klc_sampler_sample");
    const double t1 = now();

    klc_seqs seqs;
    check(klc_batch_seqs(b, &seqs), "klc_batch_seqs");
    double *loga = klc_batch_loga(b), *logq = klc_batch_logq(b), *logP = klc_batch_logP(b);
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.seq_logprobs = loga;
    check(klc_model_score(p->base, &seqs, &fo), "score base");
    const int32_t *lengths = klc_batch_lengths(b), *prompt = klc_batch_prompt_lengths(b);
    for (int i = 0; i < BATCH; i++) p->gen_lengths[i] = lengths[i] - prompt[i];
    klc_seq_batch sb;
    memset(&sb, 0, sizeof sb);
    sb.struct_size = sizeof sb;
    sb.n = BATCH;
    sb.stride = SEQ_LEN;
    sb.ids = klc_batch_tokens(b) + 1; /* the prompt is the single start token */
    sb.lengths = p->gen_lengths;
    check(klc_target_log_prob(p->target, &sb, loga, logP, NULL, NULL), "target");
    double log_z;
    check(klc_estimate_log_z(BATCH, logP, logq, &log_z), "log Z");
    const double t2 = now();

    klc_step_view v;
    klc_step_view_init(&v, KLC_STEP_VIEW_VERSION);
    v.n_seq = BATCH;
    v.max_len = SEQ_LEN;
    v.tokens = seqs.tokens;
    v.lengths = seqs.lengths;
    v.score_from = seqs.score_from;
    v.logq = logq;
    v.loga = loga;
    v.logP = logP;
    v.log_z = log_z;
    v.on_policy = 1;
    v.full_support = (klc_batch_flags(b) & KLC_BATCH_FULL_SUPPORT) != 0;
    v.step = p->step;
    klc_accumulate_options ao;
    klc_accumulate_options_init(&ao, KLC_ACCUMULATE_OPTIONS_VERSION);
    ao.weights_out = p->weights;
    ao.logpi_out = p->logpi;
    check(klc_model_zero_grads(p->policy), "zero grads");
    check(klc_objective_accumulate(p->obj, p->policy, &v, &seqs, &ao), "accumulate");
    const double t3 = now();

    check(klc_optimizer_step_model(p->opt, p->policy, NULL), "optimizer");
    const double t4 = now();
    p->step++;

    double hits = 0, loss = 0;
    for (int i = 0; i < BATCH; i++) {
        hits += isfinite(logP[i]);
        loss -= p->weights[i] * p->logpi[i] / BATCH;
    }
    *out = (step_times){t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, hits / BATCH, log_z, loss};
}

/* The same step through klc_trainer. */
typedef struct trained {
    klc_model *policy, *base;
    klc_objective *obj;
    klc_optimizer *opt;
    klc_target *target;
    klc_trainer *trainer;
    klc_metrics *metrics;
} trained;

static void trained_init(trained *t, klc_feature *feature) {
    t->base = make_model(1);
    check(klc_model_clone(t->base, &t->policy), "klc_model_clone");
    check(klc_target_create(t->base, NULL, &t->target), "klc_target_create");
    check(klc_target_add_pointwise(t->target, feature), "klc_target_add_pointwise");
    t->obj = make_gdcpp();
    t->opt = make_adam(t->policy);
    klc_trainer_options o;
    klc_trainer_options_init(&o, KLC_TRAINER_OPTIONS_VERSION);
    o.batch_size = BATCH;
    o.max_len = SEQ_LEN;
    o.eos_id = -1;
    o.bos_id = BOS;
    o.z_period = 1;
    o.seed = 7;
    check(klc_trainer_create(t->policy, t->base, t->target, t->obj, t->opt, NULL, &o, &t->trainer),
          "klc_trainer_create");
    check(klc_metrics_create(NULL, &t->metrics), "klc_metrics_create");
}

static void trained_free(trained *t) {
    klc_metrics_destroy(t->metrics);
    klc_trainer_destroy(t->trainer);
    klc_target_destroy(t->target);
    klc_optimizer_destroy(t->opt);
    klc_objective_destroy(t->obj);
    klc_model_destroy(t->policy);
    klc_model_destroy(t->base);
}

static double trained_step(trained *t) {
    const double t0 = now();
    check(klc_trainer_step(t->trainer, t->metrics), "klc_trainer_step");
    return now() - t0;
}

/* Rows of the products: the positions that predict a token. */
#define PRED_ROWS (BATCH * (SEQ_LEN - 1))

static void report(int json, int round, int threads, int step, const step_times *s,
                   double trainer_s, double sgemm_s, double load) {
    if (json) {
        printf("{\"impl\":\"klc\",\"round\":%d,\"threads\":%d,\"step\":%d,\"load\":%.2f,"
               "\"sample_s\":%.5f,\"score_s\":%.5f,\"fwdbwd_s\":%.5f,\"update_s\":%.5f,"
               "\"total_s\":%.5f,\"trainer_s\":%.5f,\"sgemm_s\":%.5f,\"sgemm_gflops\":%.2f,"
               "\"b_mean\":%.4f,\"log_z\":%.4f,"
               "\"loss\":%.5f,\"batch\":%d,\"seq_len\":%d}\n",
               round, threads, step, load, s->sample, s->score, s->fwdbwd, s->update, s->total,
               trainer_s, sgemm_s,
               yardstick_flops(PRED_ROWS, N_LAYER, N_EMBD, VOCAB) / sgemm_s / 1e9, s->b_mean,
               s->log_z, s->loss, BATCH, SEQ_LEN);
    } else {
        printf(
            "klc threads %d step %d (load %.2f): samples/s  sample %7.1f  score %7.1f  fwdbwd "
            "%7.1f  update %7.1f  | step %6.1f  trainer %6.1f | sgemm %.1f GFLOP/s | b_mean %.3f "
            "log Z %.3f\n",
            threads, step, load, BATCH / s->sample, BATCH / s->score, BATCH / s->fwdbwd,
            BATCH / s->update, BATCH / s->total, BATCH / trainer_s,
            yardstick_flops(PRED_ROWS, N_LAYER, N_EMBD, VOCAB) / sgemm_s / 1e9, s->b_mean,
            s->log_z);
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    /* First, while argv is intact (strtok below cuts it). */
    klc_blas_select_core_or_reexec(argv);
    int json = 0, steps = 3, round = 0, threads_list[4] = {1, 2}, n_threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--round") && i + 1 < argc)
            round = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            n_threads = 0;
            for (char *tok = strtok(argv[++i], ","); tok && n_threads < 4; tok = strtok(NULL, ","))
                threads_list[n_threads++] = atoi(tok);
        } else {
            fprintf(stderr, "usage: %s [--threads 1,2] [--steps N] [--json] [--round R]\n",
                    argv[0]);
            return 2;
        }
    }
    fprintf(stderr, "OpenBLAS kernels: %s\n", klc_blas_core());
    int max_threads = 1;
    for (int i = 0; i < n_threads; i++)
        if (threads_list[i] > max_threads) max_threads = threads_list[i];
    /* Samplers are planned for the largest thread count they will run with. */
    check(klc_set_num_threads(max_threads), "klc_set_num_threads");

    klc_feature_ops ops = {KLC_FEATURE_OPS_VERSION, "contains_low_id", 1, contains_low_id, NULL};
    klc_feature *feature;
    check(klc_feature_create(&ops, NULL, NULL, &feature), "klc_feature_create");
    phased p;
    trained t;
    phased_init(&p, feature);
    trained_init(&t, feature);
    const size_t yard = yardstick_floats(PRED_ROWS, N_EMBD, VOCAB);
    float *ya = calloc(yard, sizeof(float)), *yb = calloc(yard, sizeof(float)),
          *yc = calloc(yard, sizeof(float));
    if (!ya || !yb || !yc) return fprintf(stderr, "out of memory\n"), 1;

    for (int ti = 0; ti < n_threads; ti++) { /* warm-up: first-touch, thread pools */
        check(klc_set_num_threads(threads_list[ti]), "klc_set_num_threads");
        step_times s;
        phased_step(&p, &s);
        trained_step(&t);
        yardstick_step_seconds(PRED_ROWS, N_LAYER, N_EMBD, VOCAB, ya, yb, yc);
    }
    for (int k = 0; k < steps; k++)
        for (int ti = 0; ti < n_threads; ti++) {
            const int th = threads_list[k % 2 ? n_threads - 1 - ti : ti];
            check(klc_set_num_threads(th), "klc_set_num_threads");
            const double load = load_average();
            step_times s;
            double tr;
            if (k % 2) { /* alternate which variant goes first */
                tr = trained_step(&t);
                phased_step(&p, &s);
            } else {
                phased_step(&p, &s);
                tr = trained_step(&t);
            }
            const double sg = yardstick_step_seconds(PRED_ROWS, N_LAYER, N_EMBD, VOCAB, ya, yb, yc);
            report(json, round, th, k, &s, tr, sg, load);
        }
    free(ya), free(yb), free(yc);
    trained_free(&t);
    phased_free(&p);
    klc_feature_destroy(feature);
    return 0;
}
