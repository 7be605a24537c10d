/* Writing vocab.json and merges.txt in Hugging Face's formats, atomically. */
#include "tokenizer/tokenizer.h"

#include "tokenizer/bytes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A growable byte buffer; `failed` latches the first allocation failure so that callers
 * check once at the end. */
typedef struct outbuf {
    const klc_alloc_ctx *ac;
    char *p;
    size_t len, cap;
    int failed;
} outbuf;

static void put(outbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n) cap *= 2;
        char *q = klc_alloc(b->ac, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        if (b->len) memcpy(q, b->p, b->len);
        klc_free(b->ac, b->p, b->cap);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* A token in byte characters, which are never controls, so JSON needs only '"' and '\'
 * escaped. */
static void put_chars(outbuf *b, const klc_tokenizer *t, int32_t id, int json) {
    size_t n = t->tok_off[id + 1] - t->tok_off[id];
    char stack[512], *c = stack;
    if (2 * n > sizeof stack) c = klc_alloc(b->ac, 2 * n);
    if (!c) {
        b->failed = 1;
        return;
    }
    size_t m = klc_bytes_to_chars((const uint8_t *)t->tok_bytes + t->tok_off[id], n, c);
    for (size_t i = 0; i < m; i++) {
        if (json && (c[i] == '"' || c[i] == '\\')) put(b, "\\", 1);
        put(b, c + i, 1);
    }
    if (c != stack) klc_free(b->ac, c, 2 * n);
}

static int make_dir(const char *dir) {
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) return klc_fail(KLC_ERR_IO, "%s: bad directory name", dir);
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] == '/' || path[i] == '\0') {
            char c = path[i];
            path[i] = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return klc_fail(KLC_ERR_IO, "%s: cannot create directory: %s", path,
                                strerror(errno));
            path[i] = c;
        }
    }
    return KLC_OK;
}

/* Temporary file in the same directory, fsync, rename: a crash leaves the old file or
 * the new one, never a mixture. */
static int write_atomic(const char *dir, const char *name, const outbuf *b) {
    char tmp[4200], dst[4200];
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name);
    int fd = mkstemp(tmp);
    if (fd < 0) return klc_fail(KLC_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(fd, b->p + off, b->len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return klc_fail(KLC_ERR_IO, "%s: write error: %s", dst, strerror(e));
        }
        off += (size_t)w;
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return klc_fail(KLC_ERR_IO, "%s: cannot sync: %s", dst, strerror(e));
    }
    close(fd);
    if (rename(tmp, dst) != 0) {
        int e = errno;
        unlink(tmp);
        return klc_fail(KLC_ERR_IO, "%s: cannot rename into place: %s", dst, strerror(e));
    }
    return KLC_OK;
}

int klc_tokenizer_save(const klc_tokenizer *t, const char *dir) {
    KLC_CHECK_ARG(t && dir);
    KLC_TRY(make_dir(dir));
    outbuf v = {&t->ac, NULL, 0, 0, 0}, m = {&t->ac, NULL, 0, 0, 0};
    put(&v, "{", 1);
    for (int32_t i = 0; i < t->n_tokens; i++) {
        char num[32];
        int k = snprintf(num, sizeof num, "\":%d", i);
        put(&v, i ? ",\"" : "\"", i ? 2 : 1);
        put_chars(&v, t, i, 1);
        put(&v, num, (size_t)k);
    }
    put(&v, "}\n", 2);
    put(&m, "#version: 0.2\n", 14);
    for (int32_t r = 0; r < t->n_merges; r++) {
        put_chars(&m, t, t->merges[r].left, 0);
        put(&m, " ", 1);
        put_chars(&m, t, t->merges[r].right, 0);
        put(&m, "\n", 1);
    }
    int st =
        (v.failed || m.failed) ? klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory saving") : KLC_OK;
    if (!st) st = write_atomic(dir, "vocab.json", &v);
    if (!st) st = write_atomic(dir, "merges.txt", &m);
    klc_free(&t->ac, v.p, v.cap);
    klc_free(&t->ac, m.p, m.cap);
    return st;
}
