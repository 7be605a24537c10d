/* Argument handling the configuration-driven commands share. */
#ifndef KLC_CLI_ARGS_H
#define KLC_CLI_ARGS_H

#include "cli/config.h"

#define CLI_MAX_OVERRIDES 64

/* CONFIG, -o/--override key=value (repeatable) and the options a command adds. */
typedef struct cli_args {
    const char *config;
    const char *overrides[CLI_MAX_OVERRIDES];
    int n_overrides;
} cli_args;

/* Parses "CONFIG [-o K=V]... [OPT VALUE]" (opt NULL: no such option) into a and
 * *opt_value (NULL when absent). CONFIG is optional here (--resume replaces it). Returns -1
 * to go on, or the exit status to return: 0 after --help (usage printed), 2 after a usage
 * error (printed). */
int cli_parse(const char *cmd, const char *usage, int argc, char **argv, cli_args *a,
              const char *opt, const char **opt_value);
/* 1 for "-h" and "--help". */
int cli_is_help(const char *arg);
/* Takes argv[*i] if it is -o/--override (with its value, as "-o K=V", "-oK=V" or
 * "--override=K=V"); returns 1 when taken, 0 when not, -1 on a missing value (printed). */
int cli_take_override(const char *cmd, int argc, char **argv, int *i, cli_args *a);
/* Prints "klc CMD: message" and the usage to stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *usage, const char *message, const char *arg);
/* Loads the configuration and applies the overrides; prints the error and returns NULL. */
cfg *cli_load_config(const char *cmd, const cli_args *a);

/* Creates dir (and its parents) and writes dir/config.yaml, the resolved configuration;
 * prints the error and returns -1 on failure. */
int cli_write_resolved(const char *cmd, const cfg *c, const char *dir);

#endif
