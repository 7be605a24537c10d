/* klc sample --model DIR: texts sampled from a model, to standard output. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/train_config.h"

static const char usage[] =
    "usage: klc sample --model DIR [--tokenizer DIR] [-n N] [--max-len L] [--temperature T]\n"
    "                  [--top-k K] [--top-p P] [--seed S] [--prompt TEXT]\n"
    "\n"
    "Samples N texts (default 5) from a Hugging Face GPT-2 directory and prints each after a\n"
    "line '--- sample i ---'. Every text starts from the end-of-text token (then the prompt,\n"
    "printed as part of the text) and ends at the end-of-text token or at L tokens.\n"
    "\n"
    "  --model DIR          the model (config.json + model.safetensors)\n"
    "  --tokenizer DIR      vocab.json + merges.txt (default: the model's directory)\n"
    "  -n N                 how many texts (default 5)\n"
    "  --max-len L          tokens per text, prompt included (default min(64, n_ctx))\n"
    "  --temperature T      > 0 (default 1)\n"
    "  --top-k K            keep the K most probable tokens (default 0: all)\n"
    "  --top-p P            nucleus sampling, in (0, 1] (default 1: off)\n"
    "  --seed S             (default 0)\n"
    "  --prompt TEXT        a beginning that every text continues\n"
    "  -h, --help           this help\n";

/* Parses a number argument; returns 0 or prints a usage error and returns 2. */
static int number(const char *opt, const char *text, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !(v >= lo && v <= hi)) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s must be a number in [%g, %g], got '%%s'", opt, lo, hi);
        return cli_usage_error("sample", usage, msg, text);
    }
    *out = v;
    return 0;
}

int klc_cmd_sample(int argc, char **argv) {
    const char *model_dir = NULL, *tok_dir = NULL, *prompt = NULL;
    double n = 5, max_len = 0, temperature = 1, top_k = 0, top_p = 1, seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        }
        if (a[0] != '-') return cli_usage_error("sample", usage, "unexpected argument '%s'", a);
        if (i + 1 >= argc) return cli_usage_error("sample", usage, "%s needs a value", a);
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--model"))
            model_dir = v;
        else if (!strcmp(a, "--tokenizer"))
            tok_dir = v;
        else if (!strcmp(a, "--prompt"))
            prompt = v;
        else if (!strcmp(a, "-n"))
            rc = number(a, v, 1, 1e6, &n);
        else if (!strcmp(a, "--max-len"))
            rc = number(a, v, 2, 1e6, &max_len);
        else if (!strcmp(a, "--temperature"))
            rc = number(a, v, 1e-6, 1e6, &temperature);
        else if (!strcmp(a, "--top-k"))
            rc = number(a, v, 0, 1e9, &top_k);
        else if (!strcmp(a, "--top-p"))
            rc = number(a, v, 1e-9, 1, &top_p);
        else if (!strcmp(a, "--seed"))
            rc = number(a, v, 0, 9e15, &seed);
        else
            return cli_usage_error("sample", usage, "unknown option '%s'", a);
        if (rc) return rc;
    }
    if (!model_dir) return cli_usage_error("sample", usage, "missing --model DIR%s", "");
    klc_model *model = NULL;
    klc_tokenizer *tok = NULL;
    int st = klc_model_load(model_dir, NULL, &model);
    if (st != KLC_OK) return engine_report_error("sample", model_dir, st);
    st = klc_tokenizer_load(tok_dir ? tok_dir : model_dir, NULL, &tok);
    if (st != KLC_OK) {
        klc_model_destroy(model);
        return engine_report_error("sample", tok_dir ? tok_dir : model_dir, st);
    }
    klc_model_options mo;
    klc_model_get_options(model, &mo);
    int32_t len = max_len > 0 ? (int32_t)max_len : (mo.n_ctx < 64 ? mo.n_ctx : 64);
    int rc = 0;
    if (len > mo.n_ctx) {
        fprintf(stderr, "klc sample: --max-len %d exceeds the model's context of %d tokens\n", len,
                mo.n_ctx);
        rc = 2;
    } else if (klc_tokenizer_eot_id(tok) < 0) {
        fprintf(stderr, "klc sample: the tokenizer has no end-of-text token to start from\n");
        rc = 1;
    } else {
        char **texts;
        klc_clear_error(); /* an empty message below means the prompt was too long */
        st = engine_sample_texts(model, tok, (int32_t)n, len, temperature, (int32_t)top_k, top_p,
                                 (uint64_t)seed, prompt, &texts);
        if (st == KLC_ERR_INVALID_ARGUMENT && prompt && !*klc_last_error()) {
            fprintf(stderr,
                    "klc sample: the prompt does not leave room for new tokens within "
                    "--max-len %d\n",
                    len);
            rc = 2;
        } else if (st != KLC_OK) {
            rc = engine_report_error("sample", "sampling", st);
        } else {
            for (int32_t i = 0; i < (int32_t)n; i++)
                printf("--- sample %d ---\n%s\n", i + 1, texts[i]);
            engine_free_texts(texts, (int32_t)n);
        }
    }
    klc_tokenizer_destroy(tok);
    klc_model_destroy(model);
    return rc;
}
