/* The resolved configuration as YAML: every key read, in reading order, with the value the
 * run used. Scalars were spelled as YAML when they were recorded. */
#include "cli/config_internal.h"

#include <errno.h>

static void indent(FILE *f, int depth) {
    for (int i = 0; i < depth; i++) fputs("  ", f);
}

static int empty_value(const cfg_out *o) {
    return (o->kind == CFG_MAP || o->kind == CFG_SEQ) && !o->child;
}

static void write_children(const cfg_out *parent, int depth, int first_inline, FILE *f);

/* One entry: "key: value", "key:" and its block, or "- ..." for list items. */
static void write_entry(const cfg_out *o, int depth, int inline_first, FILE *f) {
    if (!inline_first) indent(f, depth);
    if (o->key) fprintf(f, "%s:", o->key);
    if (o->kind == CFG_SCALAR) {
        fprintf(f, "%s%s\n", o->key ? " " : "", o->text ? o->text : "null");
    } else if (empty_value(o)) {
        fprintf(f, "%s%s\n", o->key ? " " : "", o->kind == CFG_MAP ? "{}" : "[]");
    } else if (o->kind == CFG_MAP) {
        if (o->key) {
            fputc('\n', f);
            write_children(o, depth + 1, 0, f);
        } else {
            write_children(o, depth, 1, f); /* a list item: its first key follows "- " */
        }
    } else {
        fputc('\n', f);
        for (const cfg_out *c = o->child; c; c = c->next) {
            indent(f, depth + 1);
            fputs("- ", f);
            write_entry(c, depth + 2, 1, f);
        }
    }
}

static void write_children(const cfg_out *parent, int depth, int first_inline, FILE *f) {
    for (const cfg_out *c = parent->child; c; c = c->next) {
        write_entry(c, depth, first_inline && c == parent->child, f);
    }
}

int cfg_write_resolved(const cfg *c, FILE *f) {
    fprintf(f, "# The resolved configuration: every key with the value the run used.\n");
    write_children(c->out, 0, 0, f);
    if (fflush(f) != 0 || ferror(f)) {
        if (!errno) errno = EIO;
        return -1;
    }
    return 0;
}
