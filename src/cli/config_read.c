/* The typed accessors: each looks a key up, checks its type and range, records the
 * effective value in the resolved configuration, and reports errors at the value's
 * position. */
#include "cli/config_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* --- The resolved configuration ----------------------------------------------------------- */

static cfg_out *out_child(cfg_out *parent, const char *key, int kind) {
    if (key)
        for (cfg_out *o = parent->child; o; o = o->next)
            if (o->key && !strcmp(o->key, key)) {
                if (o->kind != kind) { /* read again with another shape: start over */
                    o->kind = kind;
                    free(o->text);
                    o->text = NULL;
                }
                return o;
            }
    cfg_out *o = cfg_xalloc(sizeof *o);
    o->kind = kind;
    o->key = key ? cfg_xstrdup(key) : NULL;
    if (parent->last)
        parent->last->next = o;
    else
        parent->child = o;
    parent->last = o;
    return o;
}

static void out_free_children(cfg_out *o) {
    cfg_out_free(o->child);
    o->child = o->last = NULL;
}

static void out_scalar(cfg_map *m, const char *key, const char *yaml_text) {
    cfg_out *o = out_child(m->out, key, CFG_SCALAR);
    free(o->text);
    o->text = cfg_xstrdup(yaml_text);
}

/* A string as YAML: plain when that reads back as the same string, else double-quoted. */
static void yaml_quote(const char *s, char *buf, size_t cap) {
    static const char *const specials[] = {"true", "false", "null", "Null",  "NULL", "~",
                                           "True", "False", "TRUE", "FALSE", "yes",  "no"};
    int plain = *s && (s[0] == '/' || s[0] == '.' || s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') ||
                       (s[0] >= 'a' && s[0] <= 'z'));
    for (const char *p = s; plain && *p; p++)
        plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                *p == '_' || *p == '-' || *p == '.' || *p == '/' || *p == '+';
    for (size_t i = 0; plain && i < sizeof specials / sizeof *specials; i++)
        if (!strcmp(s, specials[i])) plain = 0;
    if (plain) {
        snprintf(buf, cap, "%s", s);
        return;
    }
    size_t n = 0;
    if (cap < 8) return;
    buf[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p && n + 6 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)*p;
        } else if (*p == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else if (*p == '\t') {
            buf[n++] = '\\';
            buf[n++] = 't';
        } else if (*p < 0x20 || *p == 0x7f) {
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", *p);
        } else {
            buf[n++] = (char)*p;
        }
    }
    buf[n++] = '"';
    buf[n] = 0;
}

/* The shortest decimal spelling that reads back as the same double. */
static void format_double(double v, char *buf, size_t cap) {
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, cap, "%.1f", v); /* 50.0, not 5e+01 */
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    /* "1" would read back as an integer; YAML readers that care see a float this way. */
    if (!strpbrk(buf, ".eEn")) {
        size_t l = strlen(buf);
        if (l + 2 < cap) memcpy(buf + l, ".0", 3);
    }
}

/* --- Keys ---------------------------------------------------------------------------------- */

static void record_key_path(cfg_map *m, const char *key) {
    char path[256];
    size_t n = 0;
    /* Indices of lists are dropped: "target.constraints[2]" -> "target.constraints[]". */
    for (const char *p = m->path; *p && n + 1 < sizeof path; p++) {
        if (*p == '[') {
            path[n++] = '[';
            while (*p && *p != ']') p++;
            if (!*p) break;
            if (n + 1 < sizeof path) path[n++] = ']';
            continue;
        }
        path[n++] = *p;
    }
    path[n] = 0;
    char full[320];
    snprintf(full, sizeof full, "%s%s%s", path, n ? "." : "", key);
    cfg *c = m->c;
    for (int i = 0; i < c->n_keys; i++)
        if (!strcmp(c->keys[i], full)) return;
    if (c->n_keys == c->cap_keys) {
        c->cap_keys = c->cap_keys ? 2 * c->cap_keys : 64;
        c->keys = realloc(c->keys, sizeof *c->keys * (size_t)c->cap_keys);
        if (!c->keys) exit(1);
    }
    c->keys[c->n_keys++] = cfg_xstrdup(full);
}

void cfg_each_key(const cfg *c, void (*fn)(void *ud, const char *path), void *ud) {
    for (int i = 0; i < c->n_keys; i++) fn(ud, c->keys[i]);
}

/* Marks key as valid here and returns its value node, or NULL when absent or null. */
static cfg_node *lookup(cfg_map *m, const char *key) {
    int seen = 0;
    for (int i = 0; i < m->n_asked; i++)
        if (!strcmp(m->asked[i], key)) seen = 1;
    if (!seen && m->n_asked < CFG_MAX_KEYS) m->asked[m->n_asked++] = key;
    record_key_path(m, key);
    cfg_node *v = cfg_map_get(m->node, key, NULL);
    return cfg_is_null(v) ? NULL : v;
}

void cfg_allow(cfg_map *m, const char *key) {
    (void)lookup(m, key);
}

int cfg_has(const cfg_map *m, const char *key) {
    return !cfg_is_null(cfg_map_get(m->node, key, NULL));
}

static void full_name(const cfg_map *m, const char *key, char *buf, size_t cap) {
    snprintf(buf, cap, "%s%s%s", m->path, *m->path ? "." : "", key);
}

/* How a value of the wrong type looks, for messages. */
static void describe(const cfg_node *v, char *buf, size_t cap) {
    if (v->kind == CFG_MAP)
        snprintf(buf, cap, "a mapping");
    else if (v->kind == CFG_SEQ)
        snprintf(buf, cap, "a list");
    else if (strlen(v->text) > 40)
        snprintf(buf, cap, "'%.37s...'", v->text);
    else
        snprintf(buf, cap, "'%s'", v->text);
}

int cfg_fail(cfg_map *m, const char *key, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cfg_node *v = key ? cfg_map_get(m->node, key, NULL) : NULL;
    return cfg_error_at(m->c, v ? v : (m->node ? m->node : m->where), "%s", msg);
}

static int type_error(cfg_map *m, const char *key, cfg_node *v, const char *want) {
    char name[256], got[64];
    full_name(m, key, name, sizeof name);
    describe(v, got, sizeof got);
    return cfg_error_at(m->c, v, "'%s' must be %s, got %s", name, want, got);
}

static int missing(cfg_map *m, const char *key) {
    char name[256];
    full_name(m, key, name, sizeof name);
    return cfg_error_at(m->c, m->node ? m->node : m->where, "missing key '%s'", name);
}

/* --- Numbers ------------------------------------------------------------------------------ */

static void range_text(double lo, double hi, int flags, int integer, char *buf, size_t cap) {
    char a[48], b[48];
    if (integer) {
        snprintf(a, sizeof a, "%.0f", lo);
        snprintf(b, sizeof b, "%.0f", hi);
    } else {
        snprintf(a, sizeof a, "%g", lo);
        snprintf(b, sizeof b, "%g", hi);
    }
    if (isinf(hi))
        snprintf(buf, cap, "%s %s", flags & CFG_LO_OPEN ? ">" : ">=", a);
    else if (isinf(lo))
        snprintf(buf, cap, "%s %s", flags & CFG_HI_OPEN ? "<" : "<=", b);
    else
        snprintf(buf, cap, "in %c%.40s, %.40s%c", flags & CFG_LO_OPEN ? '(' : '[', a, b,
                 flags & CFG_HI_OPEN ? ')' : ']');
}

int64_t cfg_int(cfg_map *m, const char *key, int64_t def, int64_t lo, int64_t hi) {
    cfg_node *v = lookup(m, key);
    int64_t x = def;
    if (v && !m->c->error) {
        if (v->kind != CFG_SCALAR) {
            type_error(m, key, v, "an integer");
        } else {
            char *end;
            errno = 0;
            long long r = strtoll(v->text, &end, 10);
            if (end == v->text || *end || errno) {
                /* 1e4 and 2.0 are integers too. */
                double d = strtod(v->text, &end);
                if (end == v->text || *end || !isfinite(d) || d != floor(d) || fabs(d) > 9e18)
                    type_error(m, key, v, "an integer");
                else
                    x = (int64_t)d;
            } else {
                x = r;
            }
            if (!m->c->error && (x < lo || x > hi)) {
                char name[256], range[128];
                full_name(m, key, name, sizeof name);
                range_text(lo == INT64_MIN ? -INFINITY : (double)lo,
                           hi == INT64_MAX ? INFINITY : (double)hi, 0, 1, range, sizeof range);
                cfg_error_at(m->c, v, "'%s' = %lld is out of range: it must be %s", name,
                             (long long)x, range);
            }
        }
        if (m->c->error) x = def;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)x);
    out_scalar(m, key, buf);
    return x;
}

double cfg_double(cfg_map *m, const char *key, double def, double lo, double hi, int flags) {
    cfg_node *v = lookup(m, key);
    double x = def;
    if (v && !m->c->error) {
        char *end = NULL;
        if (v->kind == CFG_SCALAR) x = strtod(v->text, &end);
        if (v->kind != CFG_SCALAR || end == v->text || *end || !isfinite(x)) {
            type_error(m, key, v, "a finite number");
        } else {
            int below = (flags & CFG_LO_OPEN) ? !(x > lo) : !(x >= lo);
            int above = (flags & CFG_HI_OPEN) ? !(x < hi) : !(x <= hi);
            if (below || above) {
                char name[256], range[128];
                full_name(m, key, name, sizeof name);
                range_text(lo, hi, flags, 0, range, sizeof range);
                cfg_error_at(m->c, v, "'%s' = %s is out of range: it must be %s", name, v->text,
                             range);
            }
        }
        if (m->c->error) x = def;
    }
    char buf[40];
    format_double(x, buf, sizeof buf);
    out_scalar(m, key, buf);
    return x;
}

int cfg_bool(cfg_map *m, const char *key, int def) {
    cfg_node *v = lookup(m, key);
    int x = def;
    if (v && !m->c->error) {
        const char *t = v->kind == CFG_SCALAR ? v->text : "";
        if (!strcmp(t, "true") || !strcmp(t, "True") || !strcmp(t, "TRUE"))
            x = 1;
        else if (!strcmp(t, "false") || !strcmp(t, "False") || !strcmp(t, "FALSE"))
            x = 0;
        else
            type_error(m, key, v, "true or false");
    }
    out_scalar(m, key, x ? "true" : "false");
    return x;
}

/* --- Strings, paths and choices ---------------------------------------------------------- */

/* The text of a scalar key, def when absent; *node receives the value's node. */
static const char *scalar_text(cfg_map *m, const char *key, const char *def, int required,
                               const char *want, cfg_node **node) {
    cfg_node *v = *node = lookup(m, key);
    if (v && !m->c->error) {
        if (v->kind == CFG_SCALAR) return v->text;
        type_error(m, key, v, want);
    } else if (!v && required) {
        missing(m, key);
    }
    return def;
}

const char *cfg_string(cfg_map *m, const char *key, const char *def, int required) {
    cfg_node *v;
    const char *x = scalar_text(m, key, def, required, "a string", &v);
    char buf[2048];
    if (x)
        yaml_quote(x, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "null");
    out_scalar(m, key, buf);
    return x;
}

/* Resolves and checks one path value; NULL (with the error recorded) when it fails. */
static const char *resolve_path(cfg_map *m, const char *key, const char *text, cfg_node *v,
                                int what) {
    cfg *c = m->c;
    char *joined;
    if (text[0] == '/') {
        joined = cfg_xstrdup(text);
    } else {
        char cwd[4096];
        const char *base = v && v->from_override ? (getcwd(cwd, sizeof cwd) ? cwd : ".") : c->dir;
        size_t len = strlen(base) + strlen(text) + 2;
        joined = cfg_xalloc(len);
        snprintf(joined, len, "%s/%s", base, text);
    }
    if (what != CFG_PATH_ANY) {
        struct stat st;
        char name[256];
        full_name(m, key, name, sizeof name);
        const char *kind = what == CFG_PATH_DIR ? "directory" : "file";
        if (stat(joined, &st) != 0) {
            cfg_error_at(c, v ? v : m->node, "'%s': cannot open %s '%s': %s", name, kind, joined,
                         strerror(errno));
            free(joined);
            return NULL;
        }
        if (what == CFG_PATH_DIR && !S_ISDIR(st.st_mode)) {
            cfg_error_at(c, v ? v : m->node, "'%s': '%s' is not a directory", name, joined);
            free(joined);
            return NULL;
        }
        if (what == CFG_PATH_FILE && S_ISDIR(st.st_mode)) {
            cfg_error_at(c, v ? v : m->node, "'%s': '%s' is a directory, not a file", name, joined);
            free(joined);
            return NULL;
        }
    }
    char *real = realpath(joined, NULL);
    if (real) {
        free(joined);
        joined = real;
    }
    return cfg_keep(c, joined);
}

const char *cfg_path(cfg_map *m, const char *key, const char *def, int what, int required) {
    cfg_node *v;
    const char *text = scalar_text(m, key, def, required, "a path", &v), *x = NULL;
    if (text && !m->c->error) x = resolve_path(m, key, text, v, what);
    char buf[4200];
    if (x)
        yaml_quote(x, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "null");
    out_scalar(m, key, buf);
    return x;
}

/* Edit distance, for suggestions. */
static int distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (int i = 0; i <= la; i++) d[i][0] = i;
    for (int j = 0; j <= lb; j++) d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* 1 when every character of abbrev appears in word in order, starting with its first
 * ("lr" in "learning_rate"). */
static int abbreviates(const char *abbrev, const char *word) {
    if (!*abbrev || *abbrev != *word) return 0;
    for (; *word && *abbrev; word++)
        if (*word == *abbrev) abbrev++;
    return !*abbrev;
}

/* The valid name nearest to `given`, or NULL when none is near enough. */
static const char *suggest(const char *given, const char *const *valid, int n) {
    const char *best = NULL;
    int best_d = 99;
    for (int i = 0; i < n; i++) {
        int d = distance(given, valid[i]);
        if (d < best_d) {
            best_d = d;
            best = valid[i];
        }
    }
    int len = (int)strlen(given);
    if (best && best_d <= (len < 6 ? 2 : len / 3)) return best;
    /* Abbreviations: the shortest valid name that abbreviates what was written. */
    best = NULL;
    for (int i = 0; i < n; i++)
        if (strlen(valid[i]) < strlen(given) && abbreviates(valid[i], given) &&
            (!best || strlen(valid[i]) < strlen(best)))
            best = valid[i];
    return best;
}

static void list_text(const char *const *names, int n, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len + 1 < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", names[i]);
}

int cfg_enum(cfg_map *m, const char *key, const char *const *choices, int n, int def) {
    cfg_node *v = lookup(m, key);
    int x = def;
    if (v && !m->c->error) {
        char name[256], valid[1024];
        full_name(m, key, name, sizeof name);
        list_text(choices, n, valid, sizeof valid);
        if (v->kind != CFG_SCALAR) {
            char got[64];
            describe(v, got, sizeof got);
            cfg_error_at(m->c, v, "'%s' must be one of %s; got %s", name, valid, got);
        } else {
            x = -1;
            for (int i = 0; i < n; i++)
                if (!strcmp(v->text, choices[i])) x = i;
            if (x < 0) {
                const char *near = suggest(v->text, choices, n);
                char hint[128] = "";
                if (near) snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
                cfg_error_at(m->c, v, "'%s' must be one of %s; got '%s'%s", name, valid, v->text,
                             hint);
                x = def;
            }
        }
    }
    out_scalar(m, key, choices[x]);
    return x;
}

const char **cfg_strings(cfg_map *m, const char *key, int what, int required, int *n) {
    cfg_node *v = lookup(m, key);
    *n = 0;
    cfg_out *o = out_child(m->out, key, CFG_SEQ);
    out_free_children(o);
    if (!v) {
        if (required && !m->c->error) missing(m, key);
        out_scalar(m, key, "null"); /* absent stays absent when read back */
        return NULL;
    }
    if (m->c->error) return NULL;
    int count = v->kind == CFG_SEQ ? v->n : 1;
    const char **items = (const char **)cfg_keep(m->c, cfg_xalloc(sizeof(char *) * (size_t)count));
    for (int i = 0; i < count; i++) {
        cfg_node *it = v->kind == CFG_SEQ ? v->vals[i] : v;
        char item_key[200];
        snprintf(item_key, sizeof item_key, "%s[%d]", key, i);
        if (it->kind != CFG_SCALAR || cfg_is_null(it)) {
            type_error(m, item_key, it, what >= 0 ? "a path" : "a string");
            return NULL;
        }
        items[i] = what >= 0 ? resolve_path(m, item_key, it->text, it, what) : it->text;
        if (!items[i]) return NULL;
        char buf[4200];
        yaml_quote(items[i], buf, sizeof buf);
        cfg_out *e = out_child(o, NULL, CFG_SCALAR);
        e->text = cfg_xstrdup(buf);
    }
    *n = count;
    return items;
}

/* --- Sections and lists -------------------------------------------------------------------- */

void cfg_root(cfg *c, cfg_map *out) {
    memset(out, 0, sizeof *out);
    out->c = c;
    out->node = c->root;
    out->out = c->out;
}

static void sub_map(cfg_map *m, const char *path, cfg_node *v, cfg_node *where, cfg_out *o,
                    cfg_map *out) {
    memset(out, 0, sizeof *out);
    out->c = m->c;
    out->node = v;
    out->where = where;
    out->out = o;
    snprintf(out->path, sizeof out->path, "%.159s", path);
}

int cfg_section(cfg_map *m, const char *key, cfg_map *out) {
    cfg_node *v = lookup(m, key);
    char name[256];
    full_name(m, key, name, sizeof name);
    if (v && v->kind != CFG_MAP && !m->c->error) type_error(m, key, v, "a mapping");
    cfg_out *o = out_child(m->out, key, CFG_MAP);
    sub_map(m, name, v && v->kind == CFG_MAP ? v : NULL, v ? v : (m->node ? m->node : m->where), o,
            out);
    return v != NULL && v->kind == CFG_MAP;
}

int cfg_list(cfg_map *m, const char *key) {
    cfg_node *v = lookup(m, key);
    cfg_out *o = out_child(m->out, key, CFG_SEQ);
    out_free_children(o);
    if (!v || m->c->error) return 0;
    if (v->kind != CFG_SEQ) {
        type_error(m, key, v, "a list");
        return 0;
    }
    return v->n;
}

void cfg_list_item(cfg_map *m, const char *key, int index, cfg_map *out) {
    cfg_node *v = cfg_map_get(m->node, key, NULL);
    cfg_node *it = v && v->kind == CFG_SEQ && index < v->n ? v->vals[index] : NULL;
    char name[256], path[300];
    full_name(m, key, name, sizeof name);
    snprintf(path, sizeof path, "%s[%d]", name, index);
    cfg_out *o = out_child(out_child(m->out, key, CFG_SEQ), NULL, CFG_MAP);
    if (it && it->kind != CFG_MAP && !m->c->error)
        cfg_error_at(m->c, it, "'%s' must be a mapping, got %s", path,
                     it->kind == CFG_SEQ ? "a list" : "a single value");
    sub_map(m, path, it && it->kind == CFG_MAP ? it : NULL, it ? it : v, o, out);
}

int cfg_end(cfg_map *m) {
    if (!m->node || m->node->kind != CFG_MAP || m->c->error) return m->c->error ? -1 : 0;
    for (int i = 0; i < m->node->n; i++) {
        const char *k = m->node->keys[i]->text;
        int ok = 0;
        for (int j = 0; j < m->n_asked; j++)
            if (!strcmp(k, m->asked[j])) ok = 1;
        if (ok) continue;
        char valid[1024], hint[128] = "", under[256];
        list_text(m->asked, m->n_asked, valid, sizeof valid);
        const char *near = suggest(k, m->asked, m->n_asked);
        if (near) snprintf(hint, sizeof hint, "; did you mean '%s'?", near);
        if (*m->path)
            snprintf(under, sizeof under, "under '%s'", m->path);
        else
            snprintf(under, sizeof under, "at the top level");
        return cfg_error_at(m->c, m->node->keys[i], "unknown key '%s' %s%s%s (valid: %s%s)", k,
                            under, *m->note ? " " : "", m->note, valid, hint);
    }
    return 0;
}
