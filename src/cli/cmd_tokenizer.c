/* klc tokenizer encode | decode | train. */
#include "cli/commands.h"

#include "klc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_main[] = "usage: klc tokenizer <command> [options]\n"
                                 "\n"
                                 "commands:\n"
                                 "  encode   text -> token ids\n"
                                 "  decode   token ids -> text\n"
                                 "  train    learn a byte-level BPE vocabulary from text files\n"
                                 "\n"
                                 "Run 'klc tokenizer <command> --help' for a command's options.\n";

static const char usage_encode[] =
    "usage: klc tokenizer encode -t DIR [--eot-before] [--eot-after] [FILE]\n"
    "\n"
    "Encodes the whole of FILE (or standard input if FILE is absent or '-') and prints\n"
    "its token ids on one line, separated by single spaces.\n"
    "\n"
    "  -t, --tokenizer DIR  directory with vocab.json + merges.txt (or encoder.json +\n"
    "                       vocab.bpe)\n"
    "  --eot-before         put the end-of-text token before the text\n"
    "  --eot-after          put the end-of-text token after the text\n"
    "  -h, --help           this help\n"
    "\n"
    "The literal text \"<|endoftext|>\" is encoded as ordinary text; only the flags above\n"
    "produce the end-of-text token.\n";

static const char usage_decode[] =
    "usage: klc tokenizer decode -t DIR [FILE]\n"
    "\n"
    "Reads token ids (decimal, separated by any white space, over any number of lines)\n"
    "from FILE or standard input and writes the bytes they stand for to standard output,\n"
    "adding nothing.\n"
    "\n"
    "  -t, --tokenizer DIR  directory with vocab.json + merges.txt (or encoder.json +\n"
    "                       vocab.bpe)\n"
    "  -h, --help           this help\n";

static const char usage_train[] =
    "usage: klc tokenizer train --vocab-size N -o DIR [--min-frequency K] FILE...\n"
    "\n"
    "Learns a byte-level BPE (GPT-2's pre-tokenization, 256 byte tokens, '<|endoftext|>'\n"
    "as the last id) from the files and writes DIR/vocab.json and DIR/merges.txt.\n"
    "\n"
    "  --vocab-size N       tokens wanted, 257 or more, counting bytes and end-of-text\n"
    "  -o, --output DIR     where to write (created if needed)\n"
    "  --min-frequency K    merge only pairs seen at least K times (default 2)\n"
    "  -h, --help           this help\n";

static int is_help(const char *a) {
    return !strcmp(a, "-h") || !strcmp(a, "--help");
}

static int usage_error(const char *usage, const char *fmt, const char *arg) {
    fprintf(stderr, "klc tokenizer: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    return 2;
}

/* The whole of a file, or of standard input for NULL or "-". */
static char *read_all(const char *path, size_t *len) {
    FILE *f = (!path || !strcmp(path, "-")) ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "klc tokenizer: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || err) {
        fprintf(stderr, "klc tokenizer: %s: %s\n", path ? path : "<stdin>",
                buf ? "read error" : "out of memory");
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static klc_tokenizer *load(const char *dir) {
    klc_tokenizer *tok;
    if (klc_tokenizer_load(dir, NULL, &tok) != KLC_OK) {
        fprintf(stderr, "klc tokenizer: %s\n", klc_last_error());
        return NULL;
    }
    return tok;
}

static int cmd_encode(int argc, char **argv) {
    const char *dir = NULL, *file = NULL;
    uint32_t flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            fputs(usage_encode, stdout);
            return 0;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) {
            if (++i >= argc) return usage_error(usage_encode, "%s needs a directory", a);
            dir = argv[i];
        } else if (!strcmp(a, "--eot-before")) {
            flags |= KLC_TOKENIZE_EOT_BEFORE;
        } else if (!strcmp(a, "--eot-after")) {
            flags |= KLC_TOKENIZE_EOT_AFTER;
        } else if (a[0] == '-' && a[1]) {
            return usage_error(usage_encode, "unknown option '%s'", a);
        } else if (file) {
            return usage_error(usage_encode, "one input file at most ('%s')", a);
        } else {
            file = a;
        }
    }
    if (!dir) return usage_error(usage_encode, "%s", "-t DIR is required");
    klc_tokenizer *tok = load(dir);
    if (!tok) return 1;
    size_t len;
    char *text = read_all(file, &len);
    int32_t *ids = text ? malloc((len + 2) * sizeof *ids) : NULL;
    size_t n = 0;
    int rc = 1;
    if (text && !ids) fprintf(stderr, "klc tokenizer: out of memory\n");
    if (ids) {
        if (klc_tokenizer_encode(tok, text, len, flags, ids, len + 2, &n) != KLC_OK) {
            fprintf(stderr, "klc tokenizer: %s\n", klc_last_error());
        } else {
            for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
            putchar('\n');
            rc = fflush(stdout) == 0 ? 0 : 1;
        }
    }
    free(ids);
    free(text);
    klc_tokenizer_destroy(tok);
    return rc;
}

/* Parses whitespace-separated ids, checking each against the vocabulary so that an error
 * names its line. */
static int parse_ids(const char *name, const char *text, size_t len, int32_t vocab,
                     int32_t **ids_out, size_t *n_out) {
    size_t cap = 1024, n = 0, line = 1, i = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return -1;
    while (i < len) {
        char c = text[i];
        if (c == '\n') line++;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && !strchr(" \t\n\r\f\v", text[j])) j++;
        long long v = 0;
        int ok = 1;
        for (size_t k = i; k < j; k++) {
            if (text[k] < '0' || text[k] > '9' || v > INT32_MAX)
                ok = 0;
            else
                v = v * 10 + (text[k] - '0');
        }
        if (!ok) {
            fprintf(stderr, "klc tokenizer: %s:%zu: '%.*s' is not a token id\n", name, line,
                    (int)(j - i > 40 ? 40 : j - i), text + i);
            free(ids);
            return -1;
        }
        if (v >= vocab) {
            fprintf(stderr, "klc tokenizer: %s:%zu: token id %lld is out of range 0..%d\n", name,
                    line, v, (int)vocab - 1);
            free(ids);
            return -1;
        }
        if (n == cap) {
            int32_t *b = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!b) {
                free(ids);
                return -1;
            }
            ids = b;
        }
        ids[n++] = (int32_t)v;
        i = j;
    }
    *ids_out = ids;
    *n_out = n;
    return 0;
}

static int cmd_decode(int argc, char **argv) {
    const char *dir = NULL, *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            fputs(usage_decode, stdout);
            return 0;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) {
            if (++i >= argc) return usage_error(usage_decode, "%s needs a directory", a);
            dir = argv[i];
        } else if (a[0] == '-' && a[1]) {
            return usage_error(usage_decode, "unknown option '%s'", a);
        } else if (file) {
            return usage_error(usage_decode, "one input file at most ('%s')", a);
        } else {
            file = a;
        }
    }
    if (!dir) return usage_error(usage_decode, "%s", "-t DIR is required");
    klc_tokenizer *tok = load(dir);
    if (!tok) return 1;
    size_t len, n = 0, out_len = 0;
    int32_t *ids = NULL;
    char *out = NULL;
    int rc = 1;
    char *text = read_all(file, &len);
    const char *name = (!file || !strcmp(file, "-")) ? "<stdin>" : file;
    if (text && parse_ids(name, text, len, klc_tokenizer_vocab_size(tok), &ids, &n) == 0) {
        if (klc_tokenizer_decode(tok, ids, n, NULL, 0, &out_len) != KLC_OK && out_len == 0 &&
            n > 0) {
            fprintf(stderr, "klc tokenizer: %s\n", klc_last_error());
        } else if (!(out = malloc(out_len ? out_len : 1))) {
            fprintf(stderr, "klc tokenizer: out of memory\n");
        } else if (klc_tokenizer_decode(tok, ids, n, out, out_len, &out_len) != KLC_OK) {
            fprintf(stderr, "klc tokenizer: %s\n", klc_last_error());
        } else {
            rc = (fwrite(out, 1, out_len, stdout) == out_len && fflush(stdout) == 0) ? 0 : 1;
        }
    }
    free(out);
    free(ids);
    free(text);
    klc_tokenizer_destroy(tok);
    return rc;
}

static int parse_int(const char *s, long long lo, long long hi, long long *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

static int cmd_train(int argc, char **argv) {
    const char *dir = NULL;
    long long vocab = -1, minf = 2;
    const char **files = calloc((size_t)argc, sizeof *files);
    size_t n_files = 0;
    int rc = 2;
    if (!files) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            fputs(usage_train, stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (++i >= argc) {
                rc = usage_error(usage_train, "%s needs a directory", a);
                goto out;
            }
            dir = argv[i];
        } else if (!strcmp(a, "--vocab-size") || !strcmp(a, "--min-frequency")) {
            int is_vocab = !strcmp(a, "--vocab-size");
            if (++i >= argc ||
                parse_int(argv[i], is_vocab ? 257 : 1, is_vocab ? (1 << 24) : INT64_MAX,
                          is_vocab ? &vocab : &minf)) {
                rc = usage_error(usage_train,
                                 is_vocab ? "%s needs a number from 257 to 16777216"
                                          : "%s needs a number of at least 1",
                                 a);
                goto out;
            }
        } else if (a[0] == '-' && a[1]) {
            rc = usage_error(usage_train, "unknown option '%s'", a);
            goto out;
        } else {
            files[n_files++] = a;
        }
    }
    if (vocab < 0 || !dir || n_files == 0) {
        rc = usage_error(usage_train, "%s", "--vocab-size, -o and at least one FILE are required");
        goto out;
    }
    klc_tokenizer_train_options o;
    klc_tokenizer_train_options_init(&o, KLC_TOKENIZER_TRAIN_OPTIONS_VERSION);
    o.vocab_size = (int32_t)vocab;
    o.min_frequency = minf;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    klc_tokenizer *tok;
    rc = 1;
    if (klc_tokenizer_train(files, n_files, &o, &tok) != KLC_OK) {
        fprintf(stderr, "klc tokenizer: %s\n", klc_last_error());
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (klc_tokenizer_save(tok, dir) != KLC_OK) {
        fprintf(stderr, "klc tokenizer: %s\n", klc_last_error());
    } else {
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        fprintf(stderr,
                "klc tokenizer: %d tokens (end-of-text id %d) in %.2f s; wrote %s/vocab.json "
                "and %s/merges.txt\n",
                (int)klc_tokenizer_vocab_size(tok), (int)klc_tokenizer_eot_id(tok), s, dir, dir);
        rc = 0;
    }
    klc_tokenizer_destroy(tok);
out:
    free(files);
    return rc;
}

int klc_cmd_tokenizer(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *c = argv[1];
    if (is_help(c)) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(c, "encode")) return cmd_encode(argc - 1, argv + 1);
    if (!strcmp(c, "decode")) return cmd_decode(argc - 1, argv + 1);
    if (!strcmp(c, "train")) return cmd_train(argc - 1, argv + 1);
    return usage_error(usage_main, "unknown command '%s'", c);
}
