/* Loading a tokenizer from its two files, or from a directory holding either pair. */
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int klc_tok_read_file(const klc_alloc_ctx *ac, const char *path, char **buf, size_t *len) {
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return klc_fail(KLC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return klc_fail(KLC_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    char *b = klc_alloc(ac, n + 1);
    if (!b) {
        fclose(f);
        return klc_fail_context(KLC_ERR_OUT_OF_MEMORY, "%s: ", path);
    }
    size_t got = fread(b, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        klc_free(ac, b, n + 1);
        return klc_fail(KLC_ERR_IO, "%s: read error", path);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return KLC_OK;
}

int klc_tokenizer_load_files(const char *vocab_path, const char *merges_path,
                             const klc_allocator *allocator, klc_tokenizer **out) {
    KLC_CHECK_ARG(out);
    *out = NULL;
    KLC_CHECK_ARG(vocab_path && merges_path);
    klc_alloc_ctx ac;
    klc_alloc_ctx_init(&ac, allocator);
    char *vbuf, *mbuf;
    size_t vlen, mlen;
    KLC_TRY(klc_tok_read_file(&ac, vocab_path, &vbuf, &vlen));
    klc_tokenizer *t;
    int st = klc_tok_parse_vocab(&ac, vbuf, vlen, vocab_path, &t);
    klc_free(&ac, vbuf, vlen + 1);
    if (st) return st;
    if ((st = klc_tok_read_file(&ac, merges_path, &mbuf, &mlen))) {
        klc_tokenizer_destroy(t);
        return st;
    }
    st = klc_tok_parse_merges(t, mbuf, mlen, merges_path);
    klc_free(&ac, mbuf, mlen + 1);
    if (st) {
        klc_tokenizer_destroy(t);
        return st;
    }
    *out = t;
    return KLC_OK;
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

int klc_tokenizer_load(const char *dir, const klc_allocator *allocator, klc_tokenizer **out) {
    KLC_CHECK_ARG(out);
    *out = NULL;
    KLC_CHECK_ARG(dir);
    static const char *const pairs[2][2] = {{"vocab.json", "merges.txt"},
                                            {"encoder.json", "vocab.bpe"}};
    size_t dn = strlen(dir);
    char v[4096], m[4096];
    if (dn + 16 > sizeof v) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
    for (int k = 0; k < 2; k++) {
        snprintf(v, sizeof v, "%s/%s", dir, pairs[k][0]);
        snprintf(m, sizeof m, "%s/%s", dir, pairs[k][1]);
        int hv = exists(v), hm = exists(m);
        if (hv && hm) return klc_tokenizer_load_files(v, m, allocator, out);
        if (hv || hm)
            return klc_fail(KLC_ERR_IO, "%s: has %s but not %s", dir, pairs[k][hv ? 0 : 1],
                            pairs[k][hv ? 1 : 0]);
    }
    if (!exists(dir)) return klc_fail(KLC_ERR_IO, "%s: no such directory", dir);
    return klc_fail(KLC_ERR_IO,
                    "%s: no tokenizer files (expected vocab.json and merges.txt, or "
                    "encoder.json and vocab.bpe)",
                    dir);
}
