/* The klc program: subcommands over the library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/blas_core.h"
#include "klc.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command COMMANDS[] = {
    {"train", klc_cmd_train, "fine-tune a model as a configuration says"},
    {"pretrain", klc_cmd_pretrain, "train a GPT-2 by maximum likelihood on text files"},
    {"sample", klc_cmd_sample, "texts sampled from a model"},
    {"eval", klc_cmd_eval, "evaluate a model against a configuration's target"},
    {"fit-target", klc_cmd_fit_target, "fit a target's lambda on samples of the base model"},
    {"logprob", klc_cmd_logprob, "log-probabilities of token sequences under a model"},
    {"plot", klc_cmd_plot, "draw a run's metrics log (JSON lines) as SVG curves"},
    {"tokenizer", klc_cmd_tokenizer, "encode, decode, or train a byte-level BPE tokenizer"},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof *COMMANDS)

static void usage(FILE *f) {
    fprintf(f, "usage: klc <command> [options]\n       klc --version\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "\n'klc <command> --help' describes a command.\n");
}

int main(int argc, char **argv) {
    klc_blas_select_core_or_reexec(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("klc %s\n", klc_version_string());
        const char *was = getenv("KLC_BLAS_FALLBACK_WAS");
        printf("OpenBLAS kernels: %s", klc_blas_core());
        if (was)
            printf(" (OpenBLAS chose %s for this unrecognised CPU; klc restarted itself with "
                   "OPENBLAS_CORETYPE set)",
                   was);
        printf("\n");
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "klc: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
