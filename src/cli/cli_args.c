/* Argument handling shared by train, eval, fit-target and pretrain. */
#include "cli/cli_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_is_help(const char *arg) {
    return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int cli_take_override(const char *cmd, int argc, char **argv, int *i, cli_args *a) {
    const char *arg = argv[*i], *value = NULL;
    if (!strcmp(arg, "-o") || !strcmp(arg, "--override")) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "klc %s: %s needs key.path=value\n", cmd, arg);
            return -1;
        }
        value = argv[++*i];
    } else if (!strncmp(arg, "--override=", 11)) {
        value = arg + 11;
    } else if (!strncmp(arg, "-o", 2)) {
        value = arg + 2;
    } else {
        return 0;
    }
    if (a->n_overrides == CLI_MAX_OVERRIDES) {
        fprintf(stderr, "klc %s: at most %d overrides\n", cmd, CLI_MAX_OVERRIDES);
        return -1;
    }
    a->overrides[a->n_overrides++] = value;
    return 1;
}

int cli_usage_error(const char *cmd, const char *usage, const char *message, const char *arg) {
    fprintf(stderr, "klc %s: ", cmd);
    fprintf(stderr, message, arg);
    fprintf(stderr, "\n\n%s", usage);
    return 2;
}

cfg *cli_load_config(const char *cmd, const cli_args *a) {
    char *err = NULL;
    cfg *c = cfg_load(a->config, &err);
    if (!c) {
        fprintf(stderr, "klc %s: %s\n", cmd, err);
        free(err);
        return NULL;
    }
    for (int i = 0; i < a->n_overrides; i++)
        if (cfg_override(c, a->overrides[i])) {
            fprintf(stderr, "klc %s: %s\n", cmd, cfg_error(c));
            cfg_free(c);
            return NULL;
        }
    return c;
}
