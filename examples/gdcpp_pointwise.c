/* Fine-tuning the shipped base model toward a pointwise constraint with GDC++, through
 * klc_trainer and the public API alone.
 *
 *   gdcpp_pointwise [--model DIR] [--words FILE] [--steps N] [--batch N]
 *
 * The base model a is a Hugging Face GPT-2 directory with its tokenizer (default
 * data/models/klc-small, paths relative to the current directory). The target is
 *     p(x) proportional to a(x) b(x),   b(x) = 1 when the text x contains a word of FILE
 *                                              (default data/lexicons/sea.txt, caseless)
 * and 0 otherwise: the distribution closest to a (in KL(p || a)) among those that meet
 * the constraint on every text. GDC++ trains the policy pi toward p by minimising KL(p || pi) with
 * samples of a proposal q, a frozen copy of pi that the trainer replaces by pi every 10 steps if
 * its estimate says pi is closer to p than q is (KLC_PROPOSAL_KL_CHECK); importance
 * weights P(x) / (Z q(x)) correct for sampling q rather than p.
 *
 * The model is loaded twice: the policy is trained in place, while the target keeps
 * scoring against a frozen base. GPT-2 uses its end-of-text token as the beginning of a
 * text too, so it is both bos_id and eos_id. The settings are those of the `klc train`
 * demo (configs/demo.yaml): Adam, lr 5e-5 after 10 warm-up steps, clipping at norm 1,
 * 64 texts of up to 40 tokens per step, Z checked every 10 steps.
 *
 * Prints the trainer's memory estimate; a few of pi's texts before training (pi = a
 * then); a table of metrics on 256 fresh samples of pi at the start, every 25 steps and
 * after the last step; and the texts drawn with the same random numbers after training. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "klc.h"

#define MAX_LEN      40  /* tokens per text, the beginning token included */
#define EVAL_PERIOD  25  /* steps between evaluations */
#define EVAL_SAMPLES 256 /* samples of pi per evaluation */
#define SHOW         4   /* texts shown before and after */
#define SHOW_SEED    7   /* the same random numbers before and after, for comparison */

static void check(int status, const char *what) {
    if (status != KLC_OK) {
        fprintf(stderr, "%s failed: %s: %s\n", what, klc_status_str(status), klc_last_error());
        exit(1);
    }
}

static const char usage[] = "usage: gdcpp_pointwise [--model DIR] [--words FILE] [--steps N] "
                            "[--batch N]\n";

/* A positive integer argument, or a usage error. */
static int positive(const char *opt, const char *text) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno || v < 1 || v > 1000000) {
        fprintf(stderr, "%s must be an integer in [1, 1000000], got '%s'\n%s", opt, text, usage);
        exit(2);
    }
    return (int)v;
}

/* Samples SHOW texts of the model with fixed random numbers and prints each on one line
 * (new lines shown as spaces), marked [b=1] when it contains a word of the list. */
static void show_texts(const char *title, klc_model *model, klc_tokenizer *tok,
                       klc_feature *words) {
    const int32_t eot = klc_tokenizer_eot_id(tok);
    klc_sampler_options so;
    klc_sampler_options_init(&so, KLC_SAMPLER_OPTIONS_VERSION);
    so.max_rows = SHOW;
    so.max_len = MAX_LEN;
    klc_sampler *sampler;
    check(klc_sampler_create(model, &so, &sampler), "sampler");
    klc_batch *batch;
    check(klc_batch_create(SHOW, MAX_LEN, 0, NULL, &batch), "batch");
    klc_sample_options sa;
    klc_sample_options_init(&sa, KLC_SAMPLE_OPTIONS_VERSION);
    klc_rng_init(&sa.rng, SHOW_SEED, KLC_STREAM_USER);
    sa.bos_id = sa.eos_id = eot;
    check(klc_sampler_sample(sampler, &sa, SHOW, batch), "sampling");

    /* The generated tokens of each text, after its one-token prompt (the beginning token)
     * and without the final end-of-text token: what features see. */
    const int32_t *generated = klc_batch_tokens(batch) + 1, *lengths = klc_batch_lengths(batch);
    int32_t gen_len[SHOW];
    char *texts[SHOW];
    size_t text_len[SHOW];
    for (int i = 0; i < SHOW; i++) {
        const int32_t *ids = generated + i * MAX_LEN;
        gen_len[i] = lengths[i] - 1;
        if (gen_len[i] > 0 && ids[gen_len[i] - 1] == eot) gen_len[i]--;
        size_t need = 0;
        klc_tokenizer_decode(tok, ids, (size_t)gen_len[i], NULL, 0, &need); /* the size */
        texts[i] = malloc(need + 1);
        if (!texts[i]) exit(1);
        check(klc_tokenizer_decode(tok, ids, (size_t)gen_len[i], texts[i], need, &text_len[i]),
              "decode");
        texts[i][text_len[i]] = '\0';
    }
    klc_seq_batch sb = {.struct_size = sizeof sb,
                        .n = SHOW,
                        .stride = MAX_LEN,
                        .ids = generated,
                        .lengths = gen_len,
                        .texts = (const char *const *)texts,
                        .text_lengths = text_len};
    double b[SHOW];
    check(klc_feature_score(words, &sb, b), "feature");

    printf("%s\n", title);
    for (int i = 0; i < SHOW; i++) {
        for (char *c = texts[i]; *c; c++)
            if (*c == '\n' || *c == '\r') *c = ' ';
        printf("  [b=%.0f] %s\n", b[i], texts[i]);
        free(texts[i]);
    }
    klc_batch_destroy(batch);
    klc_sampler_destroy(sampler);
}

/* A table cell: the value, or "-" when the metric is absent (NaN). */
static void cell(double v, int width, int decimals) {
    if (isnan(v))
        printf(" %*s", width, "-");
    else
        printf(" %*.*f", width, decimals, v);
}

static void table_header(void) {
    printf("%6s %9s %9s %9s %9s %9s %9s\n", "step", "b_mean", "kl_pi_a", "kl_p_pi", "log_z", "ess",
           "samples/s");
}

/* One row after an evaluation. */
static void table_row(const klc_metrics *m, int64_t step, double samples_per_s) {
    printf("%6lld", (long long)step);
    cell(klc_metrics_get(m, "eval.b_mean"), 9, 3);
    cell(klc_metrics_get(m, "eval.kl_pi_a"), 9, 3);
    cell(klc_metrics_get(m, "eval.kl_p_pi"), 9, 3);
    cell(klc_metrics_get(m, "log_z"), 9, 3);
    cell(klc_metrics_get(m, "train.ess"), 9, 1);
    cell(samples_per_s, 9, 1);
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    /* OpenBLAS picks its kernels once, when it loads: on a CPU newer than it knows, set
     * the better kernel set and start again. */
    const char *core = klc_blas_suggested_core();
    if (core && !getenv("OPENBLAS_CORETYPE")) {
        setenv("OPENBLAS_CORETYPE", core, 1);
        execv("/proc/self/exe", argv);
    }
    const char *model_dir = "data/models/klc-small", *words_path = "data/lexicons/sea.txt";
    int steps = 150, batch_size = 64;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "unexpected or incomplete argument '%s'\n%s", argv[i], usage);
            return 2;
        }
        const char *opt = argv[i], *value = argv[++i];
        if (!strcmp(opt, "--model"))
            model_dir = value;
        else if (!strcmp(opt, "--words"))
            words_path = value;
        else if (!strcmp(opt, "--steps"))
            steps = positive(opt, value);
        else if (!strcmp(opt, "--batch"))
            batch_size = positive(opt, value);
        else {
            fprintf(stderr, "unknown option '%s'\n%s", opt, usage);
            return 2;
        }
    }

    /* The policy pi (trained in place), the frozen base a (the same weights in a
     * separate handle) and the tokenizer, whose vocab.json and merges.txt sit beside the
     * weights. */
    klc_model *policy, *base;
    check(klc_model_load(model_dir, NULL, &policy), "loading the policy");
    check(klc_model_load(model_dir, NULL, &base), "loading the base model");
    klc_tokenizer *tok;
    check(klc_tokenizer_load(model_dir, NULL, &tok), "loading the tokenizer");
    const int32_t eot = klc_tokenizer_eot_id(tok);
    if (eot < 0) {
        fprintf(stderr, "%s: the tokenizer has no end-of-text token\n", model_dir);
        return 1;
    }

    /* b(x): 1 when the text contains a word of the list, ignoring case. */
    klc_feature_options fo;
    klc_feature_options_init(&fo, KLC_FEATURE_OPTIONS_VERSION);
    fo.flags = KLC_FEATURE_CASELESS;
    klc_feature *words;
    check(klc_feature_word_list_file(words_path, &fo, &words), "word list");
    klc_target *target;
    check(klc_target_create(base, NULL, &target), "target");
    check(klc_target_add_pointwise(target, words), "pointwise constraint");

    klc_objective_options oo;
    klc_objective_options_init(&oo, KLC_OBJECTIVE_OPTIONS_VERSION);
    oo.kind = KLC_OBJECTIVE_GDCPP;
    klc_objective *objective;
    check(klc_objective_builtin(&oo, &objective), "objective");

    klc_optimizer_options po;
    klc_optimizer_options_init(&po, KLC_OPTIMIZER_OPTIONS_VERSION);
    po.kind = KLC_OPTIMIZER_ADAM;
    po.lr = 5e-5;
    po.warmup_steps = 10; /* then constant */
    po.clip_norm = 1.0;
    size_t n_params;
    klc_model_params(policy, &n_params);
    klc_optimizer *opt;
    check(klc_optimizer_create(&po, n_params, &opt), "optimizer");

    klc_trainer_options to;
    klc_trainer_options_init(&to, KLC_TRAINER_OPTIONS_VERSION);
    to.batch_size = batch_size;
    to.max_len = MAX_LEN;
    to.bos_id = to.eos_id = eot;
    to.proposal = KLC_PROPOSAL_KL_CHECK;
    to.proposal_period = 10;
    to.z_period = 10;
    to.eval_period = EVAL_PERIOD;
    to.eval_samples = EVAL_SAMPLES;
    to.seed = 1;
    klc_trainer *tr;
    check(klc_trainer_create(policy, base, target, objective, opt, tok, &to, &tr), "trainer");

    /* Every buffer a step uses is allocated by now, so the estimate is exact. */
    klc_trainer_memory_info mi;
    mi.version = KLC_TRAINER_MEMORY_VERSION;
    check(klc_trainer_memory(tr, &mi), "memory");
    const double mib = 1048576.0;
    printf("%s: %zu parameters; fine-tuning toward texts with a word of %s\n", model_dir, n_params,
           words_path);
    printf("memory: %.1f MiB in all (policy %.1f, base %.1f, proposal %.1f, optimizer %.1f, "
           "samplers %.1f, batches %.1f)\n\n",
           mi.total_bytes / mib, mi.policy_bytes / mib, mi.base_bytes / mib,
           mi.proposal_bytes / mib, mi.optimizer_bytes / mib, mi.sampler_bytes / mib,
           mi.batch_bytes / mib);

    show_texts("texts of pi before training (pi = a):", policy, tok, words);
    printf("\n");

    /* eval.* on samples of pi; log_z, ess on the step's training batch (samples of q);
     * samples/s: training samples per second of step time since the previous row (the
     * evaluation's time included, as the trainer's step_time_s includes it). */
    klc_metrics *m;
    check(klc_metrics_create(NULL, &m), "metrics");
    table_header();
    check(klc_trainer_evaluate(tr, m), "evaluation"); /* step 0: pi is a, there is no Z yet */
    table_row(m, 0, NAN);
    double samples = 0, seconds = 0;
    for (int k = 1; k <= steps; k++) {
        check(klc_trainer_step(tr, m), "training step");
        samples += batch_size;
        seconds += klc_metrics_get(m, "step_time_s");
        const int evaluated = !isnan(klc_metrics_get(m, "eval.b_mean"));
        if (!evaluated && k == steps) check(klc_trainer_evaluate(tr, m), "evaluation");
        if (evaluated || k == steps) {
            table_row(m, klc_trainer_steps(tr), samples / seconds);
            samples = seconds = 0;
        }
    }
    const double log_z = klc_trainer_log_z(tr);
    printf("\nlog Z = %.3f: p is KL(p || a) = -log Z = %.3f nats from a, the KL(pi || a) that "
           "pi reaches when it matches p; q was replaced by pi %.0f times\n\n",
           log_z, -log_z, klc_metrics_get(m, "proposal_updates"));

    show_texts("texts of pi after training (the same random numbers):", policy, tok, words);

    klc_metrics_destroy(m);
    klc_trainer_destroy(tr);
    klc_optimizer_destroy(opt);
    klc_objective_destroy(objective);
    klc_target_destroy(target);
    klc_feature_destroy(words);
    klc_tokenizer_destroy(tok);
    klc_model_destroy(base);
    klc_model_destroy(policy);
    return 0;
}
