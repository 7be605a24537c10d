/* klc pretrain CONFIG [-o key=value]...: maximum likelihood on text files, with the
 * settings read from a YAML configuration (docs/configuration.md, "Pretrain
 * configurations") into pretrain_settings; pretrain_run does the work. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/pretrain_config.h"

static const char usage[] =
    "usage: klc pretrain CONFIG [-o key.path=value]... [--resume CHECKPOINT]\n"
    "\n"
    "Trains a GPT-2 by maximum likelihood on the configuration's text files (AdamW, warm-up\n"
    "then cosine decay), reporting held-out perplexity. Writes output.dir/config.yaml (the\n"
    "resolved configuration), output.dir/model (the final Hugging Face directory),\n"
    "output.dir/metrics.jsonl and checkpoints under output.dir/checkpoints.\n"
    "\n"
    "  -o, --override K=V   set a key before reading (repeatable), e.g. -o steps=100\n"
    "  --resume CHECKPOINT  continue from a checkpoint directory of an earlier run\n"
    "  -h, --help           this help\n"
    "\n"
    "Exit status: 0 done, 1 a failure while running, 2 invalid usage or configuration.\n";

int klc_cmd_pretrain(int argc, char **argv) {
    cli_args a;
    const char *resume;
    int rc0 = cli_parse("pretrain", usage, argc, argv, &a, "--resume", &resume);
    if (rc0 >= 0) return rc0;
    if (!a.config) return cli_usage_error("pretrain", usage, "missing CONFIG%s", "");
    cfg *c = cli_load_config("pretrain", &a);
    if (!c) return 2;
    pretrain_settings s;
    if (pretrain_settings_read(c, &s)) {
        fprintf(stderr, "klc pretrain: %s\n", cfg_error(c));
        cfg_free(c);
        return 2;
    }
    s.resume_dir = resume;
    int rc = cli_write_resolved("pretrain", c, s.out_dir) ? 1 : pretrain_run(&s);
    cfg_free(c);
    return rc;
}
