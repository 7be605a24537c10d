/* klc train CONFIG [-o key=value]... [--resume DIR]: fine-tuning as a configuration says,
 * with progress, metrics as JSON lines, the resolved configuration, samples before and
 * after, and the final model in OUT/model. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/report.h"
#include "cli/run_output.h"
#include "cli/train_config.h"

static const char usage[] =
    "usage: klc train CONFIG [-o key.path=value]... [--resume DIR]\n"
    "\n"
    "Fine-tunes the configuration's model toward its target or reward (docs/configuration.md\n"
    "describes every key). Writes into the output directory (output.dir):\n"
    "  config.yaml          the resolved configuration (every key, given or default)\n"
    "  metrics.jsonl        one JSON object of metrics per step\n"
    "  samples_before.txt   texts of the model before training (one per line, line breaks\n"
    "                       written as \\n), samples_after.txt after\n"
    "  model/               the trained model (Hugging Face GPT-2 directory + tokenizer)\n"
    "  report.md            the final metrics, the curves (metrics.svg) and samples\n"
    "\n"
    "  -o, --override K=V   set a key before reading (repeatable), e.g. -o optimizer.lr=1e-5\n"
    "  --resume DIR         continue the run in DIR (its config.yaml and latest checkpoint)\n"
    "  -h, --help           this help\n"
    "\n"
    "Exit status: 0 done, 1 a failure while running, 2 invalid usage or configuration.\n";

static void print_memory(klc_trainer *t) {
    klc_trainer_memory_info mi;
    mi.version = KLC_TRAINER_MEMORY_VERSION;
    if (klc_trainer_memory(t, &mi) != KLC_OK) return;
    const double MiB = 1048576.0;
    printf("memory: %.1f MiB (policy %.1f, base %.1f, proposal %.1f, optimizer %.1f, samplers "
           "%.1f, batches %.1f)\n",
           mi.total_bytes / MiB, mi.policy_bytes / MiB, mi.base_bytes / MiB,
           mi.proposal_bytes / MiB, mi.optimizer_bytes / MiB, mi.sampler_bytes / MiB,
           mi.batch_bytes / MiB);
}

static void print_fit(const engine *e, const klc_fit_report *r) {
    int32_t nl = klc_target_num_lambda(e->target);
    double lambda[2 * MAX_TERMS];
    klc_target_get_lambda(e->target, lambda, (size_t)nl);
    printf("lambda fitted in %d iterations (ESS %.1f of %lld samples):", r->iterations, r->ess,
           (long long)r->n_used);
    for (int32_t i = 0; i < nl; i++) printf(" %.4g", lambda[i]);
    printf("\n");
}

/* Samples of the policy now, written to OUT/name. */
static int write_samples(engine *e, const train_settings *s, const char *name,
                         const char *heading) {
    if (s->n_samples == 0) return 0;
    char **texts;
    int st =
        engine_sample_texts(e->policy, e->tok, s->n_samples, s->tr.max_len, s->sample_temperature,
                            s->sample_top_k, s->sample_top_p, s->seed, NULL, &texts);
    if (st != KLC_OK) return engine_report_error("train", "sampling", st);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", s->out_dir, name);
    int rc = samples_write(path, heading, texts, s->n_samples, s->show_samples);
    if (rc) fprintf(stderr, "klc train: cannot write %s: %s\n", path, strerror(errno));
    engine_free_texts(texts, s->n_samples);
    return rc ? 1 : 0;
}

static void print_summary(const char *when, const klc_metrics *m) {
    static const char *const keys[] = {"eval.b_mean",     "eval.reward_mean", "eval.kl_pi_a",
                                       "eval.kl_p_pi",    "eval.tv_p_pi",     "eval.length_mean",
                                       "eval.distinct_1", "eval.distinct_2"};
    printf("%s:", when);
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        double v = klc_metrics_get(m, keys[k]);
        if (!isnan(v)) printf(" %s %.4g", keys[k] + 5, v);
    }
    int32_t n = klc_metrics_count(m);
    for (int32_t i = 0; i < n; i++) {
        const char *name;
        double v;
        klc_metrics_entry(m, i, &name, &v);
        if (!strncmp(name, "eval.phi.", 9) && isfinite(v)) printf(" %s %.4g", name + 5, v);
    }
    printf("\n");
}

static int run(cfg *c, train_settings *s, int resume, const char *command) {
    engine e;
    if (engine_load(&e, s, NULL)) {
        engine_free(&e);
        return 1;
    }
    int rc = 1;
    klc_metrics *m = NULL;
    FILE *jsonl = NULL;
    if (e.target && klc_target_num_lambda(e.target) > 0 && s->fit_samples > 0) {
        klc_fit_report r = {.version = KLC_FIT_REPORT_VERSION};
        int st = engine_fit(&e, s, &r);
        if (st != KLC_OK) {
            engine_report_error("train", "fitting lambda (see 'klc fit-target')", st);
            goto done;
        }
        print_fit(&e, &r);
    }
    if (engine_trainer(&e, s)) goto done;
    print_memory(e.trainer);
    if (klc_metrics_create(NULL, &m) != KLC_OK) goto done;
    char path[4200];
    if (resume) {
        int st = klc_trainer_load_checkpoint(e.trainer, s->out_dir);
        if (st != KLC_OK) {
            engine_report_error("train", "--resume", st);
            goto done;
        }
        printf("resumed %s at step %lld\n", s->out_dir, (long long)klc_trainer_steps(e.trainer));
    }
    /* Written once the run can start (a failed --resume leaves the old one). */
    if (cli_write_resolved("train", c, s->out_dir)) goto done;
    int64_t start = klc_trainer_steps(e.trainer);
    snprintf(path, sizeof path, "%s/%s", s->out_dir, REPORT_METRICS_FILE);
    /* Lines written after the checkpoint (a run stopped between two) are dropped. */
    if (start > 0 && metrics_truncate_after(path, start)) {
        fprintf(stderr, "klc train: cannot rewrite %s: %s\n", path, strerror(errno));
        goto done;
    }
    jsonl = fopen(path, start > 0 ? "a" : "w");
    if (!jsonl) {
        fprintf(stderr, "klc train: cannot write %s: %s\n", path, strerror(errno));
        goto done;
    }
    if (start == 0) {
        if (write_samples(&e, s, REPORT_SAMPLES_BEFORE, "samples before training:")) goto done;
        /* The policy before any update, as step 0 of the metrics. */
        if (s->tr.eval_samples > 0) {
            int st = klc_trainer_evaluate(e.trainer, m);
            if (st != KLC_OK) {
                engine_report_error("train", "evaluation", st);
                goto done;
            }
            klc_metrics_set(m, "step", 0);
            print_summary("before", m);
            metrics_write_jsonl(jsonl, m);
        }
    }
    progress pr;
    progress_start(&pr, start, s->steps, s->log_period);
    int64_t last_eval = -1;
    for (int64_t step = start; step < s->steps; step++) {
        int st = klc_trainer_step(e.trainer, m);
        if (st != KLC_OK) {
            progress_break(&pr);
            engine_report_error("train", "step", st);
            goto done;
        }
        if (!isnan(klc_metrics_get(m, "eval.b_mean")) ||
            !isnan(klc_metrics_get(m, "eval.length_mean")))
            last_eval = step + 1;
        if (metrics_write_jsonl(jsonl, m)) {
            progress_break(&pr);
            fprintf(stderr, "klc train: cannot write %s\n", path);
            goto done;
        }
        progress_update(&pr, step + 1, m);
        int last = step + 1 == s->steps;
        if (s->checkpoint_period > 0 && ((step + 1) % s->checkpoint_period == 0 || last)) {
            char ck[4300];
            st = klc_trainer_save_checkpoint(e.trainer, s->out_dir, s->keep_last, ck, sizeof ck);
            if (st != KLC_OK) {
                progress_break(&pr);
                engine_report_error("train", "checkpoint", st);
                goto done;
            }
        }
    }
    progress_break(&pr);
    if (s->tr.eval_samples > 0) {
        if (last_eval != s->steps) {
            int st = klc_trainer_evaluate(e.trainer, m);
            if (st != KLC_OK) {
                engine_report_error("train", "evaluation", st);
                goto done;
            }
        }
        print_summary("after", m);
    }
    snprintf(path, sizeof path, "%s/model", s->out_dir);
    int st = klc_model_save(e.policy, path);
    if (st == KLC_OK) st = klc_tokenizer_save(e.tok, path);
    if (st != KLC_OK) {
        engine_report_error("train", "saving the model", st);
        goto done;
    }
    if (write_samples(&e, s, REPORT_SAMPLES_AFTER, "samples after training:")) goto done;
    if (report_write(s->out_dir, command, cfg_label(c))) goto done;
    printf("run directory: %s (report: %s/%s)\n", s->out_dir, s->out_dir, REPORT_FILE);
    rc = 0;
done:
    if (jsonl) fclose(jsonl);
    klc_metrics_destroy(m);
    engine_free(&e);
    return rc;
}

int klc_cmd_train(int argc, char **argv) {
    cli_args a;
    const char *resume;
    int rc0 = cli_parse("train", usage, argc, argv, &a, "--resume", &resume);
    if (rc0 >= 0) return rc0;
    char resumed_config[4200], out_override[4300];
    if (resume) {
        if (a.config)
            return cli_usage_error("train", usage,
                                   "give either CONFIG or --resume DIR (whose config.yaml is "
                                   "used), not both%s",
                                   "");
        snprintf(resumed_config, sizeof resumed_config, "%s/config.yaml", resume);
        a.config = resumed_config;
        /* The run continues where it is, even if the directory was moved. */
        snprintf(out_override, sizeof out_override, "output.dir=%s", resume);
        if (a.n_overrides == CLI_MAX_OVERRIDES)
            return cli_usage_error("train", usage, "too many overrides%s", "");
        a.overrides[a.n_overrides++] = out_override;
    }
    if (!a.config) return cli_usage_error("train", usage, "missing CONFIG%s", "");
    cfg *c = cli_load_config("train", &a);
    if (!c) return 2;
    train_settings s;
    if (train_settings_read(c, &s)) {
        fprintf(stderr, "klc train: %s\n", cfg_error(c));
        cfg_free(c);
        return 2;
    }
    /* The command as typed, for the report. */
    char command[4096];
    size_t len = (size_t)snprintf(command, sizeof command, "klc");
    for (int i = 0; i < argc && len < sizeof command; i++)
        len += (size_t)snprintf(command + len, sizeof command - len, " %s", argv[i]);
    int rc = run(c, &s, resume != NULL, command);
    cfg_free(c);
    return rc;
}
