/* The klc program's configuration files: YAML read strictly through typed accessors.
 *
 * A file is parsed (libyaml) into a tree whose every node keeps its file, line and
 * column. `-o key.path=value` overrides are applied to the tree before anything reads it.
 * Readers then walk it through cfg_map cursors; each accessor names a key, its type, its
 * default and its range, and
 *  - records the effective value (given or default) in the resolved configuration, which
 *    cfg_write_resolved writes back as YAML;
 *  - records the first error, "file:line:col: message" (or "-o 'k=v': message" for a
 *    value that came from an override), after which every accessor returns its default
 *    and the caller checks cfg_error() once at the end.
 * cfg_end(map) closes a mapping: any key it holds that no accessor asked for is an error
 * that lists the valid keys and suggests the nearest one. */
#ifndef KLC_CLI_CONFIG_H
#define KLC_CLI_CONFIG_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cfg cfg;
typedef struct cfg_node cfg_node;
typedef struct cfg_out cfg_out;

#define CFG_MAX_KEYS 48

/* A cursor on one mapping of the file (or on an absent one: every key takes its default). */
typedef struct cfg_map {
    cfg *c;
    cfg_node *node;  /* NULL when the section is absent */
    cfg_node *where; /* the node errors about the section point at (its key, or NULL) */
    cfg_out *out;    /* the resolved mapping being written */
    char path[160];  /* "optimizer", "target.constraints[0]"; "" at the top level */
    char note[96];   /* appended to unknown-key messages, e.g. "for kind 'word'" */
    const char *asked[CFG_MAX_KEYS];
    int n_asked;
} cfg_map;

/* Bounds of cfg_double. */
enum { CFG_LO_OPEN = 1, CFG_HI_OPEN = 2 };
/* What cfg_path checks. */
enum { CFG_PATH_ANY = 0, CFG_PATH_FILE = 1, CFG_PATH_DIR = 2 };

/* Parses path. On failure returns NULL and *err (malloc'd) says why, e.g.
 * "config.yaml:3:5: mapping values are not allowed in this context". */
cfg *cfg_load(const char *path, char **err);
/* An empty configuration (every key takes its default); label names it in messages. */
cfg *cfg_empty(const char *label);
void cfg_free(cfg *c);

/* Applies "a.b.c=value" (value is YAML: a scalar, [a, b] or {k: v}); a numeric component
 * indexes a list. Returns 0, or -1 with the error recorded. Paths given in overrides are
 * relative to the current directory. */
int cfg_override(cfg *c, const char *assignment);

/* The first error, or NULL. */
const char *cfg_error(const cfg *c);
/* Records an error about map's key (or the map itself when key is NULL or absent), with
 * the position of the value, unless an error is already recorded. Returns -1. */
int cfg_fail(cfg_map *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The file name as given (or the label of cfg_empty). */
const char *cfg_label(const cfg *c);
/* Marks key as valid in m without reading or recording it (an optional section that is
 * absent). */
void cfg_allow(cfg_map *m, const char *key);

/* The directory relative paths are resolved against (the config file's). */
const char *cfg_base_dir(const cfg *c);

/* The top-level mapping. */
void cfg_root(cfg *c, cfg_map *out);
/* A nested mapping (absent: every key defaults). Returns 1 when present in the file. */
int cfg_section(cfg_map *m, const char *key, cfg_map *out);
/* Closes a mapping: unknown keys are errors. Returns 0 or -1. */
int cfg_end(cfg_map *m);
/* 1 when the key is present (and not null) in the file. Does not mark it as read. */
int cfg_has(const cfg_map *m, const char *key);

/* Typed values. Absent or null keys take the default; a value of the wrong type or out of
 * range is an error. Ranges are inclusive unless a CFG_*_OPEN flag says otherwise; use
 * INT64_MIN/INT64_MAX or -INFINITY/INFINITY for no bound. */
int64_t cfg_int(cfg_map *m, const char *key, int64_t def, int64_t lo, int64_t hi);
double cfg_double(cfg_map *m, const char *key, double def, double lo, double hi, int flags);
int cfg_bool(cfg_map *m, const char *key, int def);
/* A string; def NULL with required 0 leaves it absent (NULL, recorded as null); required
 * 1 makes its absence an error. The string belongs to the configuration. */
const char *cfg_string(cfg_map *m, const char *key, const char *def, int required);
/* A path, relative to the config file's directory (to the current directory for values
 * from overrides); checked as a file or directory when what says so. def is taken as
 * given (relative to the config's directory). The result is absolute where the file
 * exists, and belongs to the configuration. */
const char *cfg_path(cfg_map *m, const char *key, const char *def, int what, int required);
/* One of choices[0..n) (their index), or def. */
int cfg_enum(cfg_map *m, const char *key, const char *const *choices, int n, int def);
/* A list of strings (a single string counts as a list of one); *n receives the count.
 * Paths (what >= 0) are resolved and checked as cfg_path does; what < 0: plain strings.
 * The array belongs to the configuration. Absent: NULL and 0 (an error when required). */
const char **cfg_strings(cfg_map *m, const char *key, int what, int required, int *n);
/* A list of mappings: the count (0 when absent), then each item as a cursor. */
int cfg_list(cfg_map *m, const char *key);
void cfg_list_item(cfg_map *m, const char *key, int index, cfg_map *out);

/* Writes the resolved configuration (every key read, with its effective value) as YAML.
 * Returns 0, or -1 with errno set. */
int cfg_write_resolved(const cfg *c, FILE *f);
/* Every key path read so far ("optimizer.lr", "target.constraints[].word"), one per call
 * of fn, in reading order and without repeats. */
void cfg_each_key(const cfg *c, void (*fn)(void *ud, const char *path), void *ud);

#endif
