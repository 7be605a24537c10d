/* The configuration tree: YAML (libyaml's document loader) into nodes that keep their
 * position, overrides, and the error messages every accessor shares. The typed accessors
 * are in config_read.c, the resolved-configuration writer in config_write.c. */
#include "cli/config_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void *cfg_xalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "klc: out of memory\n");
        exit(1);
    }
    return p;
}

char *cfg_xstrndup(const char *s, size_t n) {
    char *d = cfg_xalloc(n + 1);
    memcpy(d, s, n);
    return d;
}

char *cfg_xstrdup(const char *s) {
    return cfg_xstrndup(s, strlen(s));
}

char *cfg_keep(cfg *c, char *p) {
    if (c->n_keep == c->cap_keep) {
        c->cap_keep = c->cap_keep ? 2 * c->cap_keep : 16;
        c->keep = realloc(c->keep, sizeof *c->keep * (size_t)c->cap_keep);
        if (!c->keep) exit(1);
    }
    c->keep[c->n_keep++] = p;
    return p;
}

static cfg_node *node_new(int kind, int line, int col, const char *origin, int from_override) {
    cfg_node *n = cfg_xalloc(sizeof *n);
    n->kind = kind;
    n->line = line;
    n->col = col;
    n->origin = origin;
    n->from_override = from_override;
    return n;
}

static void node_push(cfg_node *n, cfg_node *key, cfg_node *val) {
    if (n->n == n->cap) {
        n->cap = n->cap ? 2 * n->cap : 4;
        n->keys = realloc(n->keys, sizeof *n->keys * (size_t)n->cap);
        n->vals = realloc(n->vals, sizeof *n->vals * (size_t)n->cap);
        if (!n->keys || !n->vals) exit(1);
    }
    n->keys[n->n] = key;
    n->vals[n->n] = val;
    n->n++;
}

void cfg_node_free(cfg_node *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) {
        cfg_node_free(n->keys[i]);
        cfg_node_free(n->vals[i]);
    }
    free(n->keys);
    free(n->vals);
    free(n->text);
    free(n);
}

int cfg_is_null(const cfg_node *n) {
    if (!n) return 1;
    if (n->kind != CFG_SCALAR || !n->plain) return 0;
    const char *t = n->text;
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

cfg_node *cfg_map_get(const cfg_node *map, const char *key, int *index) {
    if (!map || map->kind != CFG_MAP) return NULL;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i]->text, key)) {
            if (index) *index = i;
            return map->vals[i];
        }
    return NULL;
}

/* --- Positions and errors --------------------------------------------------------------- */

void cfg_where(const cfg *c, const cfg_node *n, char *buf, size_t cap) {
    if (!n)
        snprintf(buf, cap, "%s", c->label);
    else if (n->from_override)
        snprintf(buf, cap, "-o '%s'", n->origin);
    else
        snprintf(buf, cap, "%s:%d:%d", n->origin, n->line, n->col);
}

int cfg_error_at(cfg *c, const cfg_node *n, const char *fmt, ...) {
    if (c->error) return -1;
    char where[512], msg[1536];
    cfg_where(c, n, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = strlen(where) + strlen(msg) + 3;
    c->error = cfg_xalloc(len);
    snprintf(c->error, len, "%s: %s", where, msg);
    return -1;
}

const char *cfg_error(const cfg *c) {
    return c->error;
}

const char *cfg_label(const cfg *c) {
    return c->label;
}

const char *cfg_base_dir(const cfg *c) {
    return c->dir;
}

/* --- Loading ---------------------------------------------------------------------------- */

static cfg_node *convert(cfg *c, yaml_document_t *d, yaml_node_t *y, int depth, char **err) {
    if (depth > 64) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s:%d:%d: nesting deeper than 64 levels (a recursive alias?)",
                 c->parsing, (int)y->start_mark.line + 1, (int)y->start_mark.column + 1);
        *err = cfg_xstrdup(buf);
        return NULL;
    }
    int line = (int)y->start_mark.line + 1, col = (int)y->start_mark.column + 1;
    if (y->type == YAML_SCALAR_NODE) {
        cfg_node *n = node_new(CFG_SCALAR, line, col, c->parsing, 0);
        size_t len = y->data.scalar.length;
        if (memchr(y->data.scalar.value, 0, len)) {
            char buf[512];
            snprintf(buf, sizeof buf, "%s:%d:%d: a value contains a NUL character", c->parsing,
                     line, col);
            *err = cfg_xstrdup(buf);
            cfg_node_free(n);
            return NULL;
        }
        n->text = cfg_xstrndup((const char *)y->data.scalar.value, len);
        n->plain = y->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        return n;
    }
    if (y->type == YAML_SEQUENCE_NODE) {
        cfg_node *n = node_new(CFG_SEQ, line, col, c->parsing, 0);
        for (yaml_node_item_t *it = y->data.sequence.items.start; it < y->data.sequence.items.top;
             it++) {
            cfg_node *v = convert(c, d, yaml_document_get_node(d, *it), depth + 1, err);
            if (!v) {
                cfg_node_free(n);
                return NULL;
            }
            node_push(n, NULL, v);
        }
        return n;
    }
    cfg_node *n = node_new(CFG_MAP, line, col, c->parsing, 0);
    for (yaml_node_pair_t *p = y->data.mapping.pairs.start; p < y->data.mapping.pairs.top; p++) {
        yaml_node_t *yk = yaml_document_get_node(d, p->key);
        char buf[512];
        if (yk->type != YAML_SCALAR_NODE) {
            snprintf(buf, sizeof buf, "%s:%d:%d: a key must be a plain name", c->parsing,
                     (int)yk->start_mark.line + 1, (int)yk->start_mark.column + 1);
            *err = cfg_xstrdup(buf);
            cfg_node_free(n);
            return NULL;
        }
        cfg_node *k = convert(c, d, yk, depth + 1, err);
        if (!k) {
            cfg_node_free(n);
            return NULL;
        }
        int prev;
        if (cfg_map_get(n, k->text, &prev)) {
            snprintf(buf, sizeof buf, "%s:%d:%d: duplicate key '%s' (first at line %d)", c->parsing,
                     k->line, k->col, k->text, n->keys[prev]->line);
            *err = cfg_xstrdup(buf);
            cfg_node_free(k);
            cfg_node_free(n);
            return NULL;
        }
        cfg_node *v = convert(c, d, yaml_document_get_node(d, p->value), depth + 1, err);
        if (!v) {
            cfg_node_free(k);
            cfg_node_free(n);
            return NULL;
        }
        node_push(n, k, v);
    }
    return n;
}

static char *parser_error(const char *label, yaml_parser_t *p) {
    char buf[1024];
    const yaml_mark_t *mk = p->problem ? &p->problem_mark : &p->context_mark;
    snprintf(buf, sizeof buf, "%s:%d:%d: %s%s%s", label, (int)mk->line + 1, (int)mk->column + 1,
             p->problem ? p->problem : "invalid YAML", p->context ? " " : "",
             p->context ? p->context : "");
    return cfg_xstrdup(buf);
}

/* Parses one YAML document from text into a tree labelled `label`; NULL root for an empty
 * document. Returns 0 or -1 with *err set. */
static int parse_text(cfg *c, const char *text, size_t len, const char *label,
                      const char *override_origin, cfg_node **root, char **err) {
    yaml_parser_t p;
    yaml_document_t d;
    *root = NULL;
    if (!yaml_parser_initialize(&p)) {
        *err = cfg_xstrdup("out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &d)) {
        *err = parser_error(label, &p);
        yaml_parser_delete(&p);
        return -1;
    }
    int rc = 0;
    yaml_node_t *y = yaml_document_get_root_node(&d);
    const char *saved = c->parsing;
    c->parsing = label;
    if (y) {
        *root = convert(c, &d, y, 0, err);
        if (!*root) rc = -1;
    }
    c->parsing = saved;
    yaml_document_delete(&d);
    if (rc == 0 && y) {
        /* A second document is a mistake (a stray "---"), not something to ignore. */
        yaml_document_t d2;
        if (!yaml_parser_load(&p, &d2)) {
            *err = parser_error(label, &p);
            rc = -1;
        } else {
            yaml_node_t *y2 = yaml_document_get_root_node(&d2);
            if (y2) {
                char buf[512];
                snprintf(buf, sizeof buf, "%s:%d:%d: only one YAML document is allowed", label,
                         (int)y2->start_mark.line + 1, (int)y2->start_mark.column + 1);
                *err = cfg_xstrdup(buf);
                rc = -1;
            }
            yaml_document_delete(&d2);
        }
        if (rc) {
            cfg_node_free(*root);
            *root = NULL;
        }
    }
    yaml_parser_delete(&p);
    if (rc == 0 && *root && override_origin) {
        /* Mark every node as the override's. */
        cfg_node *stack[256];
        int top = 0;
        stack[top++] = *root;
        while (top) {
            cfg_node *n = stack[--top];
            n->from_override = 1;
            n->origin = override_origin;
            for (int i = 0; i < n->n && top < 254; i++) {
                if (n->keys && n->keys[i]) stack[top++] = n->keys[i];
                stack[top++] = n->vals[i];
            }
        }
    }
    return rc;
}

static cfg *cfg_new(const char *label) {
    cfg *c = cfg_xalloc(sizeof *c);
    c->label = cfg_xstrdup(label);
    c->out = cfg_xalloc(sizeof *c->out);
    c->out->kind = CFG_MAP;
    return c;
}

cfg *cfg_empty(const char *label) {
    cfg *c = cfg_new(label);
    char cwd[4096];
    c->dir = cfg_xstrdup(getcwd(cwd, sizeof cwd) ? cwd : ".");
    c->root = node_new(CFG_MAP, 1, 1, c->label, 0);
    return c;
}

cfg *cfg_load(const char *path, char **err) {
    *err = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s: cannot open: %s", path, strerror(errno));
        *err = cfg_xstrdup(buf);
        return NULL;
    }
    size_t cap = 1 << 14, len = 0;
    char *text = cfg_xalloc(cap);
    size_t got;
    while ((got = fread(text + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            text = realloc(text, cap);
            if (!text) exit(1);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s: cannot read", path);
        *err = cfg_xstrdup(buf);
        free(text);
        return NULL;
    }
    cfg *c = cfg_new(path);
    /* Relative paths in the file are relative to the file's directory. */
    char *abs = realpath(path, NULL);
    if (abs) {
        char *slash = strrchr(abs, '/');
        if (slash == abs)
            slash[1] = 0;
        else
            *slash = 0;
        c->dir = abs;
    } else {
        c->dir = cfg_xstrdup(".");
    }
    if (parse_text(c, text, len, c->label, NULL, &c->root, err)) {
        free(text);
        cfg_free(c);
        return NULL;
    }
    free(text);
    if (!c->root) {
        c->root = node_new(CFG_MAP, 1, 1, c->label, 0);
    } else if (c->root->kind != CFG_MAP) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s:%d:%d: the configuration must be a mapping of keys to values",
                 path, c->root->line, c->root->col);
        *err = cfg_xstrdup(buf);
        cfg_free(c);
        return NULL;
    }
    return c;
}

void cfg_out_free(cfg_out *o) {
    while (o) {
        cfg_out *next = o->next;
        cfg_out_free(o->child);
        free(o->key);
        free(o->text);
        free(o);
        o = next;
    }
}

void cfg_free(cfg *c) {
    if (!c) return;
    cfg_node_free(c->root);
    cfg_out_free(c->out);
    for (int i = 0; i < c->n_keep; i++) free(c->keep[i]);
    free(c->keep);
    for (int i = 0; i < c->n_keys; i++) free(c->keys[i]);
    free(c->keys);
    free(c->error);
    free(c->label);
    free(c->dir);
    free(c);
}

/* --- Overrides -------------------------------------------------------------------------- */

/* Sets map[key] = value (replacing and freeing an old value); returns value. */
static cfg_node *map_set(cfg_node *map, const char *key, cfg_node *value, const char *origin) {
    int idx;
    cfg_node *old = cfg_map_get(map, key, &idx);
    if (old) {
        cfg_node_free(old);
        map->vals[idx] = value;
    } else {
        cfg_node *k = node_new(CFG_SCALAR, 1, 1, origin, 1);
        k->text = cfg_xstrdup(key);
        k->plain = 1;
        node_push(map, k, value);
    }
    return value;
}

int cfg_override(cfg *c, const char *assignment) {
    const char *origin = cfg_keep(c, cfg_xstrdup(assignment));
    cfg_node at = {.from_override = 1, .origin = origin};
    const char *eq = strchr(origin, '=');
    if (!eq || eq == origin)
        return cfg_error_at(c, &at, "an override must have the form key.path=value");
    cfg_node *value = NULL;
    char *err = NULL;
    if (parse_text(c, eq + 1, strlen(eq + 1), "value", origin, &value, &err)) {
        cfg_error_at(c, &at, "%s", err); /* "value:1:col: why" */
        free(err);
        return -1;
    }
    if (!value) {
        value = node_new(CFG_SCALAR, 1, 1, origin, 1);
        value->text = cfg_xstrdup("");
        value->plain = 1;
    }
    /* Walk the key path, creating mappings as needed. */
    cfg_node *n = c->root;
    const char *p = origin;
    char dotted[512] = "";
    for (;;) {
        const char *end = p;
        while (end < eq && *end != '.') end++;
        if (end == p) {
            cfg_node_free(value);
            return cfg_error_at(c, &at, "empty key in the key path");
        }
        char comp[256];
        snprintf(comp, sizeof comp, "%.*s", (int)(end - p), p);
        int last = end == eq;
        if (n->kind == CFG_SEQ) {
            char *e;
            long idx = strtol(comp, &e, 10);
            if (*e || idx < 0 || idx > n->n || (idx == n->n && !last)) {
                cfg_node_free(value);
                return cfg_error_at(c, &at,
                                    "'%s' is a list of %d item%s: '%s' is not an index of it",
                                    dotted, n->n, n->n == 1 ? "" : "s", comp);
            }
            if (last) {
                if (idx == n->n) {
                    node_push(n, NULL, value);
                } else {
                    cfg_node_free(n->vals[idx]);
                    n->vals[idx] = value;
                }
                return 0;
            }
            n = n->vals[idx];
        } else if (n->kind == CFG_MAP) {
            cfg_node *child = cfg_map_get(n, comp, NULL);
            if (last) {
                map_set(n, comp, value, origin);
                return 0;
            }
            if (!child || cfg_is_null(child))
                child = map_set(n, comp, node_new(CFG_MAP, 1, 1, origin, 1), origin);
            n = child;
        } else {
            cfg_node_free(value);
            return cfg_error_at(c, &at, "'%s' is a single value, not a mapping or a list", dotted);
        }
        size_t dl = strlen(dotted);
        snprintf(dotted + dl, sizeof dotted - dl, "%s%s", dl ? "." : "", comp);
        p = end + 1;
    }
}
