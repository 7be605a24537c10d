/* Argument handling shared by train, eval, fit-target and pretrain. */
#include "cli/cli_args.h"

#include <errno.h>

#include "io/atomic_file.h"

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

int cli_parse(const char *cmd, const char *usage, int argc, char **argv, cli_args *a,
              const char *opt, const char **opt_value) {
    memset(a, 0, sizeof *a);
    if (opt_value) *opt_value = NULL;
    for (int i = 1; i < argc; i++) {
        int took = cli_take_override(cmd, argc, argv, &i, a);
        if (took < 0) return 2;
        if (took) continue;
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return 0;
        } else if (opt && !strcmp(argv[i], opt)) {
            if (i + 1 >= argc) return cli_usage_error(cmd, usage, "%s needs a value", argv[i]);
            *opt_value = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error(cmd, usage, "unknown option '%s'", argv[i]);
        } else if (!a->config) {
            a->config = argv[i];
        } else {
            return cli_usage_error(cmd, usage, "unexpected argument '%s'", argv[i]);
        }
    }
    return -1;
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

int cli_write_resolved(const char *cmd, const cfg *c, const char *dir) {
    if (klc_mkdir_p(dir) != KLC_OK) {
        fprintf(stderr, "klc %s: cannot create %s: %s\n", cmd, dir, klc_last_error());
        return -1;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f || cfg_write_resolved(c, f) || fclose(f)) {
        fprintf(stderr, "klc %s: cannot write %s: %s\n", cmd, path, strerror(errno));
        return -1;
    }
    return 0;
}
