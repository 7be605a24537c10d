/* klc eval CONFIG --model DIR: a model against the configuration's target, as JSON. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/run_output.h"
#include "cli/train_config.h"

static const char usage[] =
    "usage: klc eval CONFIG --model DIR [-o key.path=value]...\n"
    "\n"
    "Evaluates the model in DIR as the policy of the configuration's run (its base model,\n"
    "target, reward and evaluation settings: eval.samples samples) and prints the trainer's\n"
    "evaluation metrics (eval.b_mean, eval.kl_pi_a, eval.kl_p_pi, ...) as one JSON object.\n"
    "Moment constraints have their lambda fitted first, as 'klc train' does.\n"
    "\n"
    "  --model DIR          the model to evaluate (Hugging Face GPT-2 directory)\n"
    "  -o, --override K=V   set a key of the configuration (repeatable)\n"
    "  -h, --help           this help\n";

int klc_cmd_eval(int argc, char **argv) {
    cli_args a;
    const char *model_dir;
    int rc0 = cli_parse("eval", usage, argc, argv, &a, "--model", &model_dir);
    if (rc0 >= 0) return rc0;
    if (!a.config) return cli_usage_error("eval", usage, "missing CONFIG%s", "");
    if (!model_dir) return cli_usage_error("eval", usage, "missing --model DIR%s", "");
    cfg *c = cli_load_config("eval", &a);
    if (!c) return 2;
    train_settings s;
    if (train_settings_read(c, &s)) {
        fprintf(stderr, "klc eval: %s\n", cfg_error(c));
        cfg_free(c);
        return 2;
    }
    if (s.tr.eval_samples < 1) {
        fprintf(stderr, "klc eval: eval.samples is 0: nothing to evaluate on\n");
        cfg_free(c);
        return 2;
    }
    engine e;
    int rc = 1;
    klc_metrics *m = NULL;
    if (engine_load(&e, &s, model_dir)) goto done;
    if (e.target && klc_target_num_lambda(e.target) > 0) {
        int st = engine_fit(&e, &s, NULL);
        if (st != KLC_OK) {
            engine_report_error("eval", "fitting lambda (see 'klc fit-target')", st);
            goto done;
        }
    }
    if (engine_trainer(&e, &s)) goto done;
    int st = klc_metrics_create(NULL, &m);
    if (st == KLC_OK) st = klc_trainer_evaluate(e.trainer, m);
    if (st != KLC_OK) {
        engine_report_error("eval", "evaluation", st);
        goto done;
    }
    metrics_write_json(stdout, m, 1);
    printf("\n");
    rc = 0;
done:
    klc_metrics_destroy(m);
    engine_free(&e);
    cfg_free(c);
    return rc;
}
