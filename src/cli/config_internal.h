/* What the configuration files share among themselves (config.c, config_read.c,
 * config_write.c); the rest of the program uses config.h only. */
#ifndef KLC_CLI_CONFIG_INTERNAL_H
#define KLC_CLI_CONFIG_INTERNAL_H

#include <unistd.h>

#include "cli/config.h"

enum { CFG_SCALAR = 1, CFG_MAP = 2, CFG_SEQ = 3 };

/* A node of the parsed file. Mappings keep their keys (scalar nodes) in keys[] and the
 * values in vals[]; lists keep their items in vals[] (keys NULL). */
struct cfg_node {
    int kind;
    int line, col;      /* 1-based */
    const char *origin; /* the file's label, or the override's text */
    int from_override;
    char *text; /* scalars */
    int plain;  /* scalars: written without quotes */
    int n, cap;
    cfg_node **keys, **vals;
};

/* A node of the resolved configuration: a mapping (children), a list (children without
 * keys) or a scalar already spelled as YAML. */
struct cfg_out {
    int kind;
    char *key;  /* NULL for list items */
    char *text; /* scalars */
    cfg_out *child, *last, *next;
};

struct cfg {
    char *label;         /* the file name as given, for messages */
    const char *parsing; /* the label of the text being parsed */
    char *dir;           /* absolute directory relative paths are resolved against */
    cfg_node *root;
    char *error;
    cfg_out *out;
    char **keep; /* strings handed out to readers, freed with the configuration */
    int n_keep, cap_keep;
    char **keys; /* key paths read, for cfg_each_key */
    int n_keys, cap_keys;
};

void *cfg_xalloc(size_t n);
char *cfg_xstrdup(const char *s);
char *cfg_xstrndup(const char *s, size_t n);
char *cfg_keep(cfg *c, char *p);
void cfg_node_free(cfg_node *n);
/* Frees o, its children and the siblings after it. */
void cfg_out_free(cfg_out *o);
int cfg_is_null(const cfg_node *n);
cfg_node *cfg_map_get(const cfg_node *map, const char *key, int *index);
void cfg_where(const cfg *c, const cfg_node *n, char *buf, size_t cap);
int cfg_error_at(cfg *c, const cfg_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
