/* Word-list and lexicon files. The whole file is read first so that a line number is
 * always exact and a file that stops being readable halfway cannot leave half a list. */
#include "target/entry_file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *klc_base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int read_whole(const klc_alloc_ctx *ac, const char *path, char **data, size_t *size,
                      size_t *cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return klc_fail(KLC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t n = 0, c = 4096;
    char *buf = klc_alloc(ac, c);
    if (!buf) {
        fclose(f);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    for (;;) {
        if (n == c) {
            char *bigger = klc_alloc(ac, c * 2);
            if (!bigger) {
                klc_free(ac, buf, c);
                fclose(f);
                return KLC_ERR_OUT_OF_MEMORY;
            }
            memcpy(bigger, buf, n);
            klc_free(ac, buf, c);
            buf = bigger;
            c *= 2;
        }
        size_t got = fread(buf + n, 1, c - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        klc_free(ac, buf, c);
        return klc_fail(KLC_ERR_IO, "%s: read error", path);
    }
    *data = buf;
    *size = n;
    *cap = c;
    return KLC_OK;
}

static bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Parses a value field (already trimmed): a finite number and nothing else. */
static int parse_value(const char *s, size_t n, double *out) {
    char tmp[128];
    if (n == 0) return klc_fail(KLC_ERR_FORMAT, "empty value after the TAB");
    if (n >= sizeof tmp) return klc_fail(KLC_ERR_FORMAT, "value '%.20s...' is too long", s);
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (end == tmp || *end != '\0')
        return klc_fail(KLC_ERR_FORMAT, "value '%s' is not a number", tmp);
    if (!isfinite(v)) return klc_fail(KLC_ERR_FORMAT, "value '%s' is not finite", tmp);
    *out = v;
    return KLC_OK;
}

static int one_line(klc_phrases *ph, const char *p, size_t n, bool with_values,
                    double default_value, int64_t line) {
    if (memchr(p, '\0', n)) return klc_fail(KLC_ERR_FORMAT, "contains a NUL byte");
    while (n > 0 && is_blank(p[n - 1])) n--;
    while (n > 0 && (p[0] == ' ' || p[0] == '\t')) p++, n--;
    if (n == 0) return KLC_OK;
    const char *tab = memchr(p, '\t', n);
    double value = default_value;
    size_t entry_len = n;
    if (tab) {
        if (!with_values)
            return klc_fail(KLC_ERR_FORMAT,
                            "a word list has one entry per line and no TAB (a lexicon file has "
                            "'entry<TAB>value')");
        entry_len = (size_t)(tab - p);
        const char *v = tab + 1;
        size_t vn = n - entry_len - 1;
        while (vn > 0 && is_blank(*v)) v++, vn--;
        KLC_TRY(parse_value(v, vn, &value));
        while (entry_len > 0 && is_blank(p[entry_len - 1])) entry_len--;
        if (entry_len == 0) return klc_fail(KLC_ERR_FORMAT, "empty entry before the TAB");
    }
    return klc_phrases_add(ph, p, entry_len, value, line);
}

int klc_entry_file_read(klc_phrases *ph, const char *path, bool with_values, double default_value) {
    char *data = NULL;
    size_t size = 0, cap = 0;
    KLC_TRY(read_whole(ph->ac, path, &data, &size, &cap));
    int64_t line = 0;
    size_t before = ph->n_entries, pos = 0;
    int st = KLC_OK;
    while (pos < size && st == KLC_OK) {
        const char *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size;
        line++;
        st = one_line(ph, data + pos, end - pos, with_values, default_value, line);
        if (st) klc_fail_context(st, "%s:%lld: ", path, (long long)line);
        pos = end + 1;
    }
    klc_free(ph->ac, data, cap);
    if (st == KLC_OK && ph->n_entries == before)
        st = klc_fail(KLC_ERR_FORMAT, "%s: no entries", path);
    return st;
}
