/* The klc program's configurations: every YAML file of examples/configs runs `klc train` for two
 * steps on a tiny random model (with a tokenizer trained here), leaving metrics, the
 * resolved configuration (which reads back) and the model; every key the readers accept
 * is documented in docs/configuration.md; the commands answer --help and usage errors. */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cli/config.h"
#include "cli/pretrain_config.h"
#include "cli/train_config.h"
#include "testutil.h"

static char *tmp, model_dir[4300];

#define KLC_BIN KLC_BINARY_DIR "/klc"

/* Runs a shell command; returns its exit status. */
static int run(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Words that the example configurations' features look for (each becomes one token). */
static const char *const WORDS[] = {"sea",   "ocean", "ship",      "whale",   "love",
                                    "Anne",  "Mary",  "acquittal", "army",    "anglican",
                                    "trade", "good",  "happy",     "auction", "the"};
#define N_WORDS (sizeof WORDS / sizeof *WORDS)

/* A tokenizer trained on the words above and a tiny GPT-2 that is a unigram model: the
 * final LayerNorm's gain is 0 and its bias a unit vector, so the logits are the first
 * column of the (tied) token embedding whatever the context. The words get logit 3 and
 * every other token 0, so about half of the tokens are words the features match and every
 * constraint of the examples is met by some samples. Saved as one Hugging Face directory. */
static void make_tiny_model(void) {
    char corpus[4300];
    snprintf(corpus, sizeof corpus, "%s/words.txt", tmp);
    FILE *f = fopen(corpus, "w");
    ck_assert_ptr_nonnull(f);
    for (int r = 0; r < 50; r++)
        for (size_t w = 0; w < N_WORDS; w++) fprintf(f, " %s", WORDS[w]);
    fclose(f);
    const char *files[] = {corpus};
    klc_tokenizer_train_options to;
    klc_tokenizer_train_options_init(&to, KLC_TOKENIZER_TRAIN_OPTIONS_VERSION);
    to.vocab_size = 400;
    klc_tokenizer *tok;
    ck_klc(klc_tokenizer_train(files, 1, &to, &tok));
    snprintf(model_dir, sizeof model_dir, "%s/model", tmp);
    ck_klc(klc_tokenizer_save(tok, model_dir));
    int32_t vocab = klc_tokenizer_vocab_size(tok), n_embd = 32;
    klc_model *m = tu_model(2, n_embd, 2, vocab, 48, 0.02f, 7, NULL);
    size_t n;
    float *p = klc_model_params(m, &n);
    klc_tensor_info g, b, wte;
    ck_klc(klc_model_tensor_info(m, klc_model_find_tensor(m, "ln_f.weight"), &g));
    ck_klc(klc_model_tensor_info(m, klc_model_find_tensor(m, "ln_f.bias"), &b));
    ck_klc(klc_model_tensor_info(m, klc_model_find_tensor(m, "wte.weight"), &wte));
    for (int k = 0; k < n_embd; k++) {
        p[g.offset + k] = 0;
        p[b.offset + k] = k == 0;
    }
    for (int32_t t = 0; t < vocab; t++) p[wte.offset + (int64_t)t * n_embd] = 0;
    for (size_t w = 0; w < N_WORDS; w++) {
        char text[64];
        snprintf(text, sizeof text, " %s", WORDS[w]);
        int32_t ids[64];
        size_t got;
        ck_klc(klc_tokenizer_encode(tok, text, strlen(text), 0, ids, 64, &got));
        ck_assert_msg(got == 1, "'%s' is %zu tokens", text, got);
        p[wte.offset + (int64_t)ids[0] * n_embd] = 3.0f;
    }
    ck_klc(klc_model_save(m, model_dir));
    klc_model_destroy(m);
    klc_tokenizer_destroy(tok);
}

static int count_lines_and_steps(const char *path, int *last_step) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1 << 16];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        ck_assert_msg(j != NULL, "%s: line %d is not JSON: %s", path, n + 1, err.text);
        json_t *step = json_object_get(j, "step");
        ck_assert_msg(json_is_number(step), "%s: line %d has no step", path, n + 1);
        *last_step = (int)json_number_value(step);
        json_decref(j);
        n++;
    }
    fclose(f);
    return n;
}

static int is_yaml(const struct dirent *d) {
    size_t n = strlen(d->d_name);
    return n > 5 && !strcmp(d->d_name + n - 5, ".yaml");
}

START_TEST(test_every_example_config_runs) {
    struct dirent **list;
    int n = scandir(KLC_SOURCE_DIR "/examples/configs", &list, is_yaml, alphasort);
    ck_assert_int_ge(n, 11);
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        char out[4400], cmd[32768], path[4600];
        snprintf(out, sizeof out, "%s/run-%.*s", tmp, (int)strlen(name) - 5, name);
        snprintf(cmd, sizeof cmd,
                 "%s train %s/examples/configs/%s -o model=%s -o tokenizer=%s -o steps=2 "
                 "-o sampler.batch_size=8 -o sampler.max_len=24 -o eval.samples=8 "
                 "-o eval.period=1 -o target.fit.samples=0 -o output.dir=%s -o output.samples=2 "
                 "-o output.show=0 -o optimizer.warmup_steps=0 > %s.log 2>&1",
                 KLC_BIN, KLC_SOURCE_DIR, name, model_dir, model_dir, out, out);
        int rc = run(cmd);
        if (rc != 0) {
            snprintf(path, sizeof path, "%s.log", out);
            char *log = tu_read_file(path, &(size_t){0});
            ck_assert_msg(0, "%s: exit status %d:\n%s", name, rc, log ? log : "");
        }
        /* Step 0 (the evaluation before training) and one line per step. */
        snprintf(path, sizeof path, "%s/metrics.jsonl", out);
        int last = -1;
        ck_assert_int_eq(count_lines_and_steps(path, &last), 3);
        ck_assert_int_eq(last, 2);
        /* The resolved configuration reads back as the same run. */
        snprintf(path, sizeof path, "%s/config.yaml", out);
        char *err = NULL;
        cfg *c = cfg_load(path, &err);
        ck_assert_msg(c != NULL, "%s: %s", name, err ? err : "");
        train_settings s;
        ck_assert_msg(train_settings_read(c, &s) == 0, "%s: %s", name, cfg_error(c));
        ck_assert_int_eq(s.steps, 2);
        ck_assert_int_eq(s.tr.batch_size, 8);
        ck_assert_str_eq(s.out_dir, out);
        cfg_free(c);
        struct stat st;
        snprintf(path, sizeof path, "%s/model/model.safetensors", out);
        ck_assert_msg(stat(path, &st) == 0, "%s: no final model", name);
        /* Two samples, one per line, and the report. */
        snprintf(path, sizeof path, "%s/samples_after.txt", out);
        char *samples = tu_read_file(path, &(size_t){0});
        ck_assert_msg(samples != NULL, "%s: no samples after", name);
        int lines = 0;
        for (char *p = samples; *p; p++) lines += *p == '\n';
        ck_assert_int_eq(lines, 2);
        free(samples);
        snprintf(path, sizeof path, "%s/report.md", out);
        ck_assert_msg(stat(path, &st) == 0, "%s: no report", name);
        free(list[i]);
    }
    free(list);
}
END_TEST

/* Collects key paths. */
typedef struct keys {
    char *names[512];
    int n;
} keys;

static void add_key(void *ud, const char *path) {
    keys *k = ud;
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->names[i], path)) return;
    if (k->n < 512) k->names[k->n++] = strdup(path);
}

/* Reads text (with the model overridden) and collects the keys read. */
static void read_keys(const char *text, const char *const *overrides, int n_overrides, keys *k) {
    char path[4400], ovr[4600];
    snprintf(path, sizeof path, "%s/keys.yaml", tmp);
    ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
    char *err = NULL;
    cfg *c = cfg_load(path, &err);
    ck_assert_msg(c != NULL, "%s", err ? err : "");
    snprintf(ovr, sizeof ovr, "model=%s", model_dir);
    ck_assert_int_eq(cfg_override(c, ovr), 0);
    for (int i = 0; i < n_overrides; i++) ck_assert_int_eq(cfg_override(c, overrides[i]), 0);
    train_settings s;
    ck_assert_msg(train_settings_read(c, &s) == 0, "%s", cfg_error(c));
    cfg_each_key(c, add_key, k);
    cfg_free(c);
}

START_TEST(test_every_key_is_documented) {
    keys k = {.n = 0};
    /* Every feature kind, in every place. */
    char text[8192];
    snprintf(text, sizeof text,
             "reward: {kind: regex, pattern: 'sea', caseless: true, name: r}\n"
             "target:\n"
             "  reward_beta: 1\n"
             "  constraints:\n"
             "    - {kind: word, word: sea}\n"
             "    - {kind: word_list, words: [a, b]}\n"
             "    - {kind: name_list, names: [Anne]}\n"
             "    - {kind: regex, pattern: x}\n"
             "  moments:\n"
             "    - {kind: lexicon, file: %s/data/lexicons/afinn-111.tsv, mean: 1}\n"
             "    - {kind: length, mean: 10}\n",
             KLC_SOURCE_DIR);
    for (int o = 0; o < N_OBJECTIVES; o++) {
        char kind[128];
        snprintf(kind, sizeof kind, "objective.kind=%s", OBJECTIVE_NAMES[o]);
        const char *ovr[] = {kind};
        read_keys(text, ovr, 1, &k);
    }
    const char *sgd[] = {"optimizer.kind=sgd"};
    read_keys(text, sgd, 1, &k);
    /* A pretrain configuration, every key defaulted but the required ones. */
    char path[4400];
    snprintf(path, sizeof path, "%s/pretrain-keys.yaml", tmp);
    snprintf(text, sizeof text, "tokenizer: %s\ndata: {train: [%s/words.txt]}\noutput: {dir: x}\n",
             model_dir, tmp);
    ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
    char *err = NULL;
    cfg *c = cfg_load(path, &err);
    ck_assert_ptr_nonnull(c);
    pretrain_settings ps;
    ck_assert_msg(pretrain_settings_read(c, &ps) == 0, "%s", cfg_error(c));
    cfg_each_key(c, add_key, &k);
    cfg_free(c);

    size_t size;
    char *doc = tu_read_file(KLC_SOURCE_DIR "/docs/configuration.md", &size);
    ck_assert_ptr_nonnull(doc);
    ck_assert_int_ge(k.n, 60);
    for (int i = 0; i < k.n; i++) {
        char quoted[400];
        snprintf(quoted, sizeof quoted, "`%s`", k.names[i]);
        ck_assert_msg(strstr(doc, quoted) != NULL, "docs/configuration.md does not document %s",
                      quoted);
        free(k.names[i]);
    }
    free(doc);
}
END_TEST

START_TEST(test_help_and_usage_errors) {
    static const char *const cmds[] = {"train", "eval", "fit-target", "sample", "pretrain"};
    char cmd[4600];
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        snprintf(cmd, sizeof cmd, "%s %s --help > /dev/null", KLC_BIN, cmds[i]);
        ck_assert_msg(run(cmd) == 0, "%s --help", cmds[i]);
        snprintf(cmd, sizeof cmd, "%s %s --no-such-option 2> /dev/null", KLC_BIN, cmds[i]);
        ck_assert_msg(run(cmd) == 2, "%s with a bad option", cmds[i]);
    }
    /* A configuration error is a usage error, with its position. */
    snprintf(cmd, sizeof cmd,
             "%s train %s/examples/configs/gdcpp.yaml -o model=%s -o optimizer.lerning_rate=1 "
             "2> %s/err.txt",
             KLC_BIN, KLC_SOURCE_DIR, model_dir, tmp);
    ck_assert_int_eq(run(cmd), 2);
    char path[4400];
    snprintf(path, sizeof path, "%s/err.txt", tmp);
    char *err = tu_read_file(path, &(size_t){0});
    ck_assert_str_eq(err, "klc train: -o 'optimizer.lerning_rate=1': unknown key 'lerning_rate' "
                          "under 'optimizer' for kind 'adam' (valid: kind, lr, beta1, beta2, "
                          "eps, weight_decay, clip_norm, clip_value, schedule, warmup_steps, "
                          "total_steps, min_lr; did you mean 'lr'?)\n");
    free(err);
    /* klc sample prints the texts it draws. */
    snprintf(cmd, sizeof cmd, "%s sample --model %s -n 3 --max-len 10 --seed 4 > %s/s.txt", KLC_BIN,
             model_dir, tmp);
    ck_assert_int_eq(run(cmd), 0);
    snprintf(path, sizeof path, "%s/s.txt", tmp);
    char *out = tu_read_file(path, &(size_t){0});
    ck_assert_ptr_nonnull(strstr(out, "--- sample 3 ---\n"));
    free(out);
    /* With a prompt, every text starts with it. */
    snprintf(cmd, sizeof cmd,
             "%s sample --model %s -n 2 --max-len 10 --prompt ' whale ship' --top-k 5 "
             "--temperature 0.7 > %s/s.txt",
             KLC_BIN, model_dir, tmp);
    ck_assert_int_eq(run(cmd), 0);
    out = tu_read_file(path, &(size_t){0});
    ck_assert_msg(strstr(out, "--- sample 1 ---\n whale ship") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "--- sample 2 ---\n whale ship") != NULL, "%s", out);
    free(out);
    /* A prompt that leaves no room is a usage error. */
    snprintf(cmd, sizeof cmd,
             "%s sample --model %s --max-len 3 --prompt ' whale ship sea' 2> /dev/null", KLC_BIN,
             model_dir);
    ck_assert_int_eq(run(cmd), 2);
}
END_TEST

/* fit-target on a feasible moment (the length of texts) reaches it; an impossible one is
 * reported as infeasible. */
START_TEST(test_fit_target) {
    char path[4400], cmd[9000];
    snprintf(path, sizeof path, "%s/fit.yaml", tmp);
    char text[4600];
    snprintf(text, sizeof text,
             "model: %s\nsampler: {max_len: 24, max_new_tokens: 0}\n"
             "target:\n  moments:\n    - {kind: length, mean: 12}\n  fit: {samples: 256}\n",
             model_dir);
    ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
    snprintf(cmd, sizeof cmd, "%s fit-target %s > %s/fit.txt 2>&1", KLC_BIN, path, tmp);
    ck_assert_int_eq(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/fit.txt", tmp);
    char *out = tu_read_file(cmd, &(size_t){0});
    ck_assert_msg(strstr(out, "(converged)") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "length") != NULL, "%s", out);
    free(out);
    /* At most 23 tokens are generated: a mean of 40 is out of reach. */
    snprintf(cmd, sizeof cmd, "%s fit-target %s -o target.moments.0.mean=40 > %s/fit.txt 2>&1",
             KLC_BIN, path, tmp);
    ck_assert_int_eq(run(cmd), 1);
    snprintf(cmd, sizeof cmd, "%s/fit.txt", tmp);
    out = tu_read_file(cmd, &(size_t){0});
    ck_assert_msg(strstr(out, "infeasible") != NULL, "%s", out);
    free(out);
}
END_TEST

/* klc eval of the base model itself: KL(pi||a) is 0 up to float rounding (log pi comes from
 * the sampler's incremental decoding, log a from a batched forward) and the constraint's rate is a
 * fraction of the samples. */
START_TEST(test_eval_prints_json) {
    char cmd[20000], path[4400];
    snprintf(path, sizeof path, "%s/eval.json", tmp);
    snprintf(cmd, sizeof cmd,
             "%s eval %s/examples/configs/single-word.yaml --model %s -o model=%s "
             "-o sampler.max_len=24 -o eval.samples=16 > %s",
             KLC_BIN, KLC_SOURCE_DIR, model_dir, model_dir, path);
    ck_assert_int_eq(run(cmd), 0);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    ck_assert_msg(j != NULL, "%s", err.text);
    json_t *kl = json_object_get(j, "eval.kl_pi_a");
    ck_assert(json_is_number(kl));
    ck_assert_msg(fabs(json_number_value(kl)) < 1e-4, "KL(pi||a) %g", json_number_value(kl));
    json_t *b = json_object_get(j, "eval.b_mean");
    ck_assert(json_is_number(b));
    double bm = json_number_value(b);
    ck_assert_msg(bm > 0 && bm <= 1 && bm * 16 == floor(bm * 16), "b_mean %g", bm);
    json_decref(j);
}
END_TEST

/* klc pretrain binds its configuration and runs: two steps of a tiny model. */
START_TEST(test_pretrain_runs) {
    char path[4400], text[9000], cmd[20000];
    snprintf(path, sizeof path, "%s/pretrain.yaml", tmp);
    snprintf(text, sizeof text,
             "model: {n_layer: 1, n_embd: 16, n_head: 2, n_ctx: 16}\n"
             "tokenizer: %s\n"
             "data: {train: [%s/words.txt], heldout: [%s/words.txt], seq_len: 8}\n"
             "batch_size: 2\nsteps: 2\noptimizer: {warmup_steps: 1}\n"
             "output: {dir: %s/pretrain-run, eval_period: 0, checkpoint_period: 0}\n",
             model_dir, tmp, tmp, tmp);
    ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
    snprintf(cmd, sizeof cmd, "%s pretrain %s > %s/pretrain.log 2>&1", KLC_BIN, path, tmp);
    int rc = run(cmd);
    snprintf(path, sizeof path, "%s/pretrain.log", tmp);
    char *log = tu_read_file(path, &(size_t){0});
    ck_assert_msg(rc == 0, "exit %d: %s", rc, log ? log : "");
    free(log);
    struct stat st;
    snprintf(path, sizeof path, "%s/pretrain-run/model/model.safetensors", tmp);
    ck_assert_msg(stat(path, &st) == 0, "no model");
    /* The resolved configuration holds the recipe's defaults and reads back. */
    snprintf(path, sizeof path, "%s/pretrain-run/config.yaml", tmp);
    char *err = NULL;
    cfg *c = cfg_load(path, &err);
    ck_assert_msg(c != NULL, "%s", err ? err : "");
    pretrain_settings ps, dflt;
    ck_assert_msg(pretrain_settings_read(c, &ps) == 0, "%s", cfg_error(c));
    pretrain_settings_init(&dflt);
    ck_assert_int_eq(ps.steps, 2);
    ck_assert_int_eq(ps.n_embd, 16);
    ck_assert(ps.lr == dflt.lr);
    ck_assert_int_eq(ps.keep_last, dflt.keep_last);
    cfg_free(c);
}
END_TEST

/* klc pretrain --resume: continuing from the step-3 checkpoint of a 6-step run gives the
 * same final parameters, bit for bit, as the run itself (data windows and dropout masks are
 * keyed by the step; the optimizer's moments and step come from the checkpoint). */
static char *pretrain_model_bytes(const char *config, const char *out, const char *resume,
                                  size_t *size) {
    char cmd[20000], path[4400];
    snprintf(cmd, sizeof cmd, "%s pretrain %s -o output.dir=%s%s%s > %s.log 2>&1", KLC_BIN, config,
             out, resume ? " --resume " : "", resume ? resume : "", out);
    int rc = run(cmd);
    snprintf(path, sizeof path, "%s.log", out);
    char *log = tu_read_file(path, &(size_t){0});
    ck_assert_msg(rc == 0, "exit %d: %s", rc, log ? log : "");
    free(log);
    snprintf(path, sizeof path, "%s/model/model.safetensors", out);
    char *bytes = tu_read_file(path, size);
    ck_assert_msg(bytes != NULL, "no model in %s", out);
    return bytes;
}

START_TEST(test_pretrain_resumes) {
    char path[4800], text[9000], out[4400], ckpt[4600];
    snprintf(path, sizeof path, "%s/pretrain-resume.yaml", tmp);
    snprintf(text, sizeof text,
             "model: {n_layer: 1, n_embd: 16, n_head: 2, n_ctx: 16, dropout: 0.1}\n"
             "tokenizer: %s\n"
             "data: {train: [%s/words.txt], seq_len: 8}\n"
             "batch_size: 2\nsteps: 6\noptimizer: {warmup_steps: 2}\n"
             "output: {dir: unused, eval_period: 0, checkpoint_period: 3, keep_last: 1}\n",
             model_dir, tmp);
    ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
    size_t n_straight = 0, n_resumed = 0;
    snprintf(out, sizeof out, "%s/pretrain-straight", tmp);
    char *straight = pretrain_model_bytes(path, out, NULL, &n_straight);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/step-000000000003", out);
    snprintf(out, sizeof out, "%s/pretrain-resumed", tmp);
    char *resumed = pretrain_model_bytes(path, out, ckpt, &n_resumed);
    ck_assert_uint_eq(n_straight, n_resumed);
    ck_assert_msg(memcmp(straight, resumed, n_straight) == 0, "resumed parameters differ");
    /* The resumed run made steps 4 to 6 only. */
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    char *metrics = tu_read_file(path, &(size_t){0});
    ck_assert(metrics && strncmp(metrics, "{\"step\": 4,", 11) == 0);
    free(metrics), free(straight), free(resumed);
}
END_TEST

/* Resume: 2N steps straight against N, --resume, N more; the final parameters must be the
 * same bits. Off-policy GDC++ (a proposal that is replaced, Z checks, moving state) with a
 * moment constraint (lambda) and a cosine schedule, so that every part of the state
 * matters. */
static void train_run(const char *out, int steps, const char *extra, int expect) {
    char cmd[20000];
    snprintf(cmd, sizeof cmd,
             "%s train %s/examples/configs/hybrid.yaml -o model=%s -o steps=%d "
             "-o sampler.batch_size=8 -o sampler.max_len=16 -o eval.samples=4 -o eval.period=2 "
             "-o target.fit.samples=64 -o target.fit.tol=0.01 -o proposal.period=2 -o z.period=2 "
             "-o optimizer.schedule=cosine -o optimizer.total_steps=6 -o optimizer.warmup_steps=1 "
             "-o output.dir=%s -o output.samples=1 -o output.show=0 "
             "-o output.checkpoint_period=2 -o output.keep_last=2 %s > %s.log 2>&1",
             KLC_BIN, KLC_SOURCE_DIR, model_dir, steps, out, extra, out);
    int rc = run(cmd);
    char path[4400];
    snprintf(path, sizeof path, "%s.log", out);
    char *log = tu_read_file(path, &(size_t){0});
    ck_assert_msg(rc == expect, "exit %d: %s", rc, log ? log : "");
    free(log);
}

START_TEST(test_resume_is_bit_exact) {
    char straight[4400], resumed[4400], a[4600], b[4600];
    snprintf(straight, sizeof straight, "%s/straight", tmp);
    snprintf(resumed, sizeof resumed, "%s/resumed", tmp);
    train_run(straight, 6, "", 0);
    train_run(resumed, 3, "", 0);
    /* --resume takes the run's own config.yaml: CONFIG is not given. */
    char cmd2[20000];
    snprintf(cmd2, sizeof cmd2, "%s train --resume %s -o steps=6 > %s.log2 2>&1", KLC_BIN, resumed,
             resumed);
    ck_assert_int_eq(run(cmd2), 0);
    /* It continued from the checkpoint of step 3 (a rerun from scratch would give the same
     * bits too). */
    snprintf(a, sizeof a, "%s.log2", resumed);
    char *log = tu_read_file(a, &(size_t){0});
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, " at step 3\n") != NULL, "%s", log);
    free(log);
    snprintf(a, sizeof a, "%s/model/model.safetensors", straight);
    snprintf(b, sizeof b, "%s/model/model.safetensors", resumed);
    size_t na, nb;
    char *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
    ck_assert_ptr_nonnull(da);
    ck_assert_ptr_nonnull(db);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(da, db, na) == 0, "the resumed run's parameters differ");
    free(da);
    free(db);
    /* The metrics log holds each step once: step 0, then 1..6. */
    int last = -1;
    snprintf(a, sizeof a, "%s/metrics.jsonl", resumed);
    ck_assert_int_eq(count_lines_and_steps(a, &last), 7);
    ck_assert_int_eq(last, 6);
    /* keep_last 2: steps 4 and 6 remain. */
    struct stat st;
    snprintf(a, sizeof a, "%s/checkpoints/step-000000000006", resumed);
    ck_assert_int_eq(stat(a, &st), 0);
    snprintf(a, sizeof a, "%s/checkpoints/step-000000000002", resumed);
    ck_assert_int_ne(stat(a, &st), 0);
}
END_TEST

static Suite *resume_suite(void) {
    Suite *s = suite_create("cli_resume");
    TCase *t = tcase_create("cli_resume");
    tcase_set_timeout(t, 600);
    tcase_add_unchecked_fixture(t, make_tiny_model, NULL);
    tcase_add_test(t, test_resume_is_bit_exact);
    suite_add_tcase(s, t);
    return s;
}

static Suite *suite(void) {
    Suite *s = suite_create("cli_configs");
    TCase *t = tcase_create("cli_configs");
    tcase_set_timeout(t, 600);
    tcase_add_unchecked_fixture(t, make_tiny_model, NULL);
    tcase_add_test(t, test_help_and_usage_errors);
    tcase_add_test(t, test_fit_target);
    tcase_add_test(t, test_every_key_is_documented);
    tcase_add_test(t, test_every_example_config_runs);
    tcase_add_test(t, test_pretrain_runs);
    tcase_add_test(t, test_pretrain_resumes);
    tcase_add_test(t, test_eval_prints_json);
    suite_add_tcase(s, t);
    return s;
}

/* "resume" as the argument runs the resume test alone (ctest label resume). */
int main(int argc, char **argv) {
    int resume = argc > 1 && !strcmp(argv[1], "resume");
    tmp = tu_make_temp_dir(resume ? "cli-resume" : "cli-configs");
    char *real = realpath(tmp, NULL);
    free(tmp);
    tmp = real;
    int rc = tu_run_suite(resume ? resume_suite() : suite());
    if (rc == 0 && !getenv("KLC_KEEP_TMP")) tu_remove_tree(tmp); /* kept for inspection */
    free(tmp);
    return rc;
}
