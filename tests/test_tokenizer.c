/* The tokenizer: exactness against GPT-2's reference ids, round trips, the end-of-text
 * flags, hostile files, and the trainer (hand-computed merges, an independent naive
 * trainer, determinism, reloading). */
#include "testutil.h"
#include "tokenizer/bytes.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define GPT2_DIR KLC_TEST_DATA "/gpt2"

static klc_tokenizer *gpt2;

static void load_gpt2(void) {
    ck_klc(klc_tokenizer_load(GPT2_DIR, NULL, &gpt2));
}
static void free_gpt2(void) {
    klc_tokenizer_destroy(gpt2);
    gpt2 = NULL;
}

/* Encodes into a malloc'd array; *n receives the count. */
static int32_t *encode(klc_tokenizer *t, const char *s, size_t len, uint32_t flags, size_t *n) {
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    ck_klc(klc_tokenizer_encode(t, s, len, flags, ids, len + 2, n));
    return ids;
}

static void assert_round_trip(klc_tokenizer *t, const char *s, size_t len) {
    size_t n, m;
    int32_t *ids = encode(t, s, len, 0, &n);
    char *back = malloc(len + 1);
    ck_klc(klc_tokenizer_decode(t, ids, n, back, len + 1, &m));
    ck_assert_uint_eq(m, len);
    ck_assert(memcmp(back, s, len) == 0);
    free(back);
    free(ids);
}

/* --- GPT-2 exactness ------------------------------------------------------------------ */

START_TEST(all_reference_vectors_give_exact_ids) {
    FILE *f = fopen(GPT2_DIR "/vectors.jsonl", "r");
    ck_assert_ptr_nonnull(f);
    char *line = NULL;
    size_t cap = 0;
    int count = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t err;
        json_t *v = json_loads(line, 0, &err);
        ck_assert_ptr_nonnull(v);
        json_t *text = json_object_get(v, "text"), *want = json_object_get(v, "ids");
        size_t len = json_string_length(text), n;
        int32_t *ids = encode(gpt2, json_string_value(text), len, 0, &n);
        ck_assert_msg(n == json_array_size(want), "vector %d: %zu ids, expected %zu", count + 1, n,
                      json_array_size(want));
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(ids[i] == json_integer_value(json_array_get(want, i)),
                          "vector %d, id %zu: %d", count + 1, i, ids[i]);
        assert_round_trip(gpt2, json_string_value(text), len);
        free(ids);
        json_decref(v);
        count++;
    }
    free(line);
    fclose(f);
    ck_assert_int_eq(count, 43);
}
END_TEST

/* GPT-2's bpe() transcribed literally (quadratic): find the lowest-ranked adjacent pair,
 * merge all its occurrences left to right, repeat. The library's heap version must agree
 * on every piece. */
static size_t reference_bpe(const klc_tokenizer *t, const uint8_t *p, size_t n, int32_t *w) {
    for (size_t i = 0; i < n; i++) w[i] = t->byte_token[p[i]];
    for (;;) {
        int64_t best = -1;
        for (size_t i = 0; i + 1 < n; i++) {
            uint64_t *r = klc_u64map_find(&t->pair_rank, klc_pair_key(w[i], w[i + 1]));
            if (r && (best < 0 || (int64_t)*r < best)) best = (int64_t)*r;
        }
        if (best < 0) return n;
        const klc_tok_merge *m = &t->merges[best];
        size_t o = 0;
        for (size_t i = 0; i < n;) {
            if (i + 1 < n && w[i] == m->left && w[i + 1] == m->right) {
                w[o++] = m->result;
                i += 2;
            } else {
                w[o++] = w[i++];
            }
        }
        n = o;
    }
}

static uint32_t rnd(klc_rng *r, uint64_t *ctr) {
    uint32_t w[4];
    klc_rng_words(r, 0, (*ctr)++, w);
    return w[0];
}

START_TEST(heap_bpe_equals_reference_bpe_on_random_pieces) {
    klc_rng r;
    klc_rng_init(&r, 7, KLC_STREAM_USER);
    uint64_t ctr = 0;
    /* Letters from a small alphabet make many merges apply; some pieces are long. */
    static const char alpha[] = "etaoinshrdlu Ġ!.,'0123";
    for (int trial = 0; trial < 3000; trial++) {
        size_t n = 1 + rnd(&r, &ctr) % (trial % 50 == 0 ? 400 : 24);
        uint8_t p[400];
        for (size_t i = 0; i < n; i++)
            p[i] = (trial % 3 == 0) ? (uint8_t)rnd(&r, &ctr)
                                    : (uint8_t)alpha[rnd(&r, &ctr) % (sizeof alpha - 1)];
        int32_t a[400], b[400];
        size_t na, nb = reference_bpe(gpt2, p, n, b);
        ck_klc(klc_bpe_piece(gpt2, p, n, a, &na));
        ck_assert_uint_eq(na, nb);
        for (size_t i = 0; i < na; i++) ck_assert_int_eq(a[i], b[i]);
    }
}
END_TEST

START_TEST(gpt2_facts) {
    ck_assert_int_eq(klc_tokenizer_vocab_size(gpt2), 50257);
    ck_assert_int_eq(klc_tokenizer_eot_id(gpt2), 50256);
    ck_assert_int_eq(gpt2->n_merges, 50000);
    const char *b;
    size_t n;
    ck_klc(klc_tokenizer_token_bytes(gpt2, 220, &b, &n));
    ck_assert(n == 1 && b[0] == ' ');
    ck_klc(klc_tokenizer_token_bytes(gpt2, 50256, &b, &n));
    ck_assert(n == 13 && memcmp(b, "<|endoftext|>", 13) == 0);
    ck_klc(klc_tokenizer_token_bytes(gpt2, 995, &b, &n));
    ck_assert(n == 6 && memcmp(b, " world", 6) == 0);
    int32_t id;
    ck_klc(klc_tokenizer_token_id(gpt2, " world", 6, &id));
    ck_assert_int_eq(id, 995);
    ck_klc(klc_tokenizer_token_id(gpt2, "qqqqqqqqqqqqqqq", 15, &id));
    ck_assert_int_eq(id, -1);
    ck_assert_int_eq(klc_tokenizer_token_bytes(gpt2, 50257, &b, &n), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(klc_tokenizer_token_bytes(gpt2, -1, &b, &n), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(klc_tokenizer_vocab_size(NULL), -1);
}
END_TEST

/* The ASCII shortcut and PCRE2 alone must cut every text identically. Random texts mix
 * the characters where the rules are subtle (quotes, white space runs, digits) with
 * non-ASCII letters, numbers, spaces and punctuation next to them. */
static void assert_same_pieces(klc_pretok *fast, klc_pretok *slow, const char *s, size_t len) {
    klc_pretok_iter a, b;
    klc_pretok_begin(&a, s, len);
    klc_pretok_begin(&b, s, len);
    for (;;) {
        size_t sa = 0, na = 0, sb = 0, nb = 0;
        int ra = klc_pretok_next(fast, &a, &sa, &na), rb = klc_pretok_next(slow, &b, &sb, &nb);
        ck_assert_int_eq(ra, rb);
        if (ra <= 0) break;
        ck_assert_msg(sa == sb && na == nb, "piece at %zu: %zu vs %zu bytes in '%.*s'", sa, na, nb,
                      (int)len, s);
    }
}

START_TEST(ascii_shortcut_cuts_like_pcre2) {
    klc_pretok fast, slow;
    ck_klc(klc_pretok_init(&fast));
    ck_klc(klc_pretok_init(&slow));
    ck_assert_int_eq(fast.ascii_fast, 1);
    slow.ascii_fast = 0;
    ck_assert_int_eq(fast.ascii_class['a'], KLC_PRETOK_LETTER);
    ck_assert_int_eq(fast.ascii_class['7'], KLC_PRETOK_NUMBER);
    ck_assert_int_eq(fast.ascii_class['\t'], KLC_PRETOK_SPACE);
    ck_assert_int_eq(fast.ascii_class['\''], KLC_PRETOK_OTHER);
    static const char *const atoms[] = {
        "a",
        "Z",
        "q",
        "0",
        "9",
        " ",
        " ",
        " ",
        "\n",
        "\t",
        "\r\n",
        "\v",
        "\f",
        "'",
        "'",
        "s",
        "t",
        "re",
        "ve",
        "m",
        "ll",
        "d",
        "S",
        "!",
        ".",
        "\"",
        "-",
        "\x01",
        "\x1c",
        "\x7f",
        "\xc3\xa9",         /* é, a letter */
        "\xc2\xa0",         /* no-break space */
        "\xe2\x80\x83",     /* em space */
        "\xe2\x80\x9c",     /* left double quote, punctuation */
        "\xd9\xa3",         /* Arabic-Indic digit three */
        "\xc2\xbd",         /* one half, a number */
        "\xcc\x81",         /* combining acute, a mark (neither L nor N) */
        "\xf0\x9f\x98\x80", /* emoji */
        "\xe2\x80\xa8",     /* line separator */
        "\xc2\x85",         /* next line */
    };
    const size_t na = sizeof atoms / sizeof atoms[0];
    klc_rng r;
    klc_rng_init(&r, 13, KLC_STREAM_USER);
    uint64_t ctr = 0;
    char s[512];
    for (int trial = 0; trial < 20000; trial++) {
        size_t len = 0, k = 1 + rnd(&r, &ctr) % 24;
        for (size_t i = 0; i < k; i++) {
            const char *a = atoms[rnd(&r, &ctr) % na];
            size_t al = strlen(a);
            memcpy(s + len, a, al);
            len += al;
        }
        assert_same_pieces(&fast, &slow, s, len);
    }
    /* And the reference texts. */
    FILE *f = fopen(GPT2_DIR "/vectors.jsonl", "r");
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *v = json_loads(line, 0, NULL);
        json_t *t = json_object_get(v, "text");
        assert_same_pieces(&fast, &slow, json_string_value(t), json_string_length(t));
        json_decref(v);
    }
    free(line);
    fclose(f);
    klc_pretok_free(&fast);
    klc_pretok_free(&slow);
}
END_TEST

/* --- end of text ---------------------------------------------------------------------- */

START_TEST(eot_only_through_flags) {
    size_t n;
    int32_t *ids = encode(gpt2, "<|endoftext|>", 13, 0, &n);
    static const int32_t literal[] = {27, 91, 437, 1659, 5239, 91, 29};
    ck_assert_uint_eq(n, 7);
    for (int i = 0; i < 7; i++) ck_assert_int_eq(ids[i], literal[i]);
    free(ids);
    ids = encode(gpt2, "Hello world", 11, KLC_TOKENIZE_EOT_BEFORE, &n);
    ck_assert(n == 3 && ids[0] == 50256 && ids[1] == 15496 && ids[2] == 995);
    free(ids);
    ids = encode(gpt2, "Hello world", 11, KLC_TOKENIZE_EOT_AFTER, &n);
    ck_assert(n == 3 && ids[0] == 15496 && ids[1] == 995 && ids[2] == 50256);
    free(ids);
    ids = encode(gpt2, "", 0, KLC_TOKENIZE_EOT_BEFORE | KLC_TOKENIZE_EOT_AFTER, &n);
    ck_assert(n == 2 && ids[0] == 50256 && ids[1] == 50256);
    free(ids);
    int32_t one[4];
    ck_assert_int_eq(klc_tokenizer_encode(gpt2, "x", 1, 4, one, 4, &n), KLC_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(klc_last_error(), "unknown flags"));
    /* The end-of-text token decodes to its text. */
    char buf[32];
    int32_t e[2] = {50256, 13};
    ck_klc(klc_tokenizer_decode(gpt2, e, 2, buf, sizeof buf, &n));
    ck_assert(n == 14 && memcmp(buf, "<|endoftext|>.", 14) == 0);
}
END_TEST

/* --- buffers -------------------------------------------------------------------------- */

START_TEST(capacity_and_needed_sizes) {
    const char *s = "It is a truth universally acknowledged";
    size_t n = 99;
    ck_assert_int_eq(klc_tokenizer_encode(gpt2, s, strlen(s), 0, NULL, 0, &n),
                     KLC_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(n, 6);
    ck_assert(strstr(klc_last_error(), "6 ids needed"));
    int32_t ids[8] = {-7, -7, -7, -7, -7, -7, -7, -7};
    ck_assert_int_eq(klc_tokenizer_encode(gpt2, s, strlen(s), 0, ids, 4, &n),
                     KLC_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(n, 6);
    ck_assert(ids[0] == 1026 && ids[3] == 3872 && ids[4] == -7);
    ck_klc(klc_tokenizer_encode(gpt2, s, strlen(s), 0, ids, 6, &n));
    ck_assert(n == 6 && ids[5] == 10810);
    size_t len = 0;
    ck_assert_int_eq(klc_tokenizer_decode(gpt2, ids, 6, NULL, 0, &len), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_uint_eq(len, strlen(s));
    char buf[64];
    memset(buf, '#', sizeof buf);
    ck_assert_int_eq(klc_tokenizer_decode(gpt2, ids, 6, buf, 10, &len), KLC_ERR_INVALID_ARGUMENT);
    ck_assert(memcmp(buf, s, 10) == 0 && buf[10] == '#');
    ids[1] = 50257;
    ck_assert_int_eq(klc_tokenizer_decode(gpt2, ids, 6, buf, sizeof buf, &len),
                     KLC_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(klc_last_error(), "id 50257 at index 1 is out of range 0..50256"), "%s",
                  klc_last_error());
    ids[1] = -3;
    ck_assert_int_eq(klc_tokenizer_decode(gpt2, ids, 6, buf, sizeof buf, &len),
                     KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(klc_tokenizer_encode(gpt2, NULL, 3, 0, ids, 8, &n), KLC_ERR_INVALID_ARGUMENT);
    ck_klc(klc_tokenizer_encode(gpt2, NULL, 0, 0, ids, 8, &n));
    ck_assert_uint_eq(n, 0);
}
END_TEST

/* --- round trips and invalid UTF-8 ----------------------------------------------------- */

/* Appends code point cp as UTF-8. */
static size_t put_utf8(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

START_TEST(round_trip_random_valid_utf8) {
    klc_rng r;
    klc_rng_init(&r, 11, KLC_STREAM_USER);
    uint64_t ctr = 0;
    char *s = malloc(4 * 600);
    for (int trial = 0; trial < 400; trial++) {
        size_t len = 0, chars = rnd(&r, &ctr) % 600;
        for (size_t i = 0; i < chars; i++) {
            uint32_t k = rnd(&r, &ctr), cp;
            switch (k % 6) {
            case 0:
                cp = 0x20 + (k >> 8) % 0x5f;
                break; /* ASCII */
            case 1:
                cp = " \t\n\r\v\f"[(k >> 8) % 6];
                break; /* white space */
            case 2:
                cp = 0x80 + (k >> 8) % 0x780;
                break; /* two bytes */
            case 3:
                cp = 0x800 + (k >> 8) % (0xd800 - 0x800);
                break; /* BMP below surrogates */
            case 4:
                cp = 0xe000 + (k >> 8) % 0x2000;
                break; /* BMP above them */
            default:
                cp = 0x10000 + (k >> 8) % 0x100000;
                break; /* astral planes */
            }
            len += put_utf8(cp, s + len);
        }
        ck_assert_uint_eq(klc_utf8_valid_prefix((const uint8_t *)s, len), len);
        assert_round_trip(gpt2, s, len);
    }
    free(s);
}
END_TEST

START_TEST(round_trip_random_bytes) {
    klc_rng r;
    klc_rng_init(&r, 12, KLC_STREAM_USER);
    uint64_t ctr = 0;
    char s[1000];
    for (int trial = 0; trial < 400; trial++) {
        size_t len = rnd(&r, &ctr) % sizeof s;
        for (size_t i = 0; i < len; i++) {
            uint32_t k = rnd(&r, &ctr);
            /* Half the trials mostly text, so that invalid bytes sit inside words. */
            s[i] = (trial & 1) && (k & 7) ? "ab \n'1"[(k >> 8) % 6] : (char)(k >> 16);
        }
        assert_round_trip(gpt2, s, len);
    }
    /* Long runs: one piece of 200k letters, 200k spaces, 200k invalid bytes. */
    size_t big = 200000;
    char *b = malloc(big);
    const char fills[3] = {'a', ' ', (char)0xff};
    for (int k = 0; k < 3; k++) {
        memset(b, fills[k], big);
        assert_round_trip(gpt2, b, big);
    }
    free(b);
}
END_TEST

static void assert_ids_concat(const char *whole, size_t wlen, const char *const *parts,
                              const size_t *lens, int np) {
    size_t n, total = 0;
    int32_t *ids = encode(gpt2, whole, wlen, 0, &n);
    for (int p = 0; p < np; p++) {
        size_t m;
        int32_t *part = encode(gpt2, parts[p], lens[p], 0, &m);
        ck_assert_uint_le(total + m, n);
        for (size_t i = 0; i < m; i++) ck_assert_int_eq(ids[total + i], part[i]);
        total += m;
        free(part);
    }
    ck_assert_uint_eq(total, n);
    free(ids);
}

START_TEST(invalid_utf8_splits_text_into_independent_runs) {
    /* Well-formed runs are pre-tokenized as whole texts; an ill-formed run is one piece. */
    const char *p1[] = {"Hello", "\xff", " world"};
    size_t l1[] = {5, 1, 6};
    assert_ids_concat("Hello\xff world", 12, p1, l1, 3);
    /* A space before an invalid byte ends its run: " " then the byte, not " \xff". */
    const char *p2[] = {"a ", "\xe2\x82", "b"}; /* a truncated euro sign */
    size_t l2[] = {2, 2, 1};
    assert_ids_concat("a \xe2\x82"
                      "b",
                      5, p2, l2, 3);
    size_t n;
    int32_t *ids = encode(gpt2,
                          "a \xe2\x82"
                          "b",
                          5, 0, &n);
    ck_assert(n >= 4 && ids[0] == 64 && ids[1] == 220 && ids[n - 1] == 65);
    char mid[8];
    size_t m;
    ck_klc(klc_tokenizer_decode(gpt2, ids + 2, n - 3, mid, sizeof mid, &m));
    ck_assert(m == 2 && memcmp(mid, "\xe2\x82", 2) == 0);
    free(ids);
    /* Surrogates and overlong forms are ill-formed too. */
    const char *p3[] = {"x", "\xed\xa0\x80\xc0\xaf", "y"};
    size_t l3[] = {1, 5, 1};
    assert_ids_concat("x\xed\xa0\x80\xc0\xafy", 7, p3, l3, 3);
    ck_assert_uint_eq(klc_utf8_valid_prefix((const uint8_t *)"\xf4\x90\x80\x80", 4), 0);
    ck_assert_uint_eq(klc_utf8_valid_prefix((const uint8_t *)"\xf4\x8f\xbf\xbf", 4), 4);
}
END_TEST

/* --- hostile files --------------------------------------------------------------------- */

/* A minimal valid vocabulary: the 256 byte tokens in GPT-2's order, then `extra` (a JSON
 * fragment like ",\"ab\":256" or ""). */
static char *byte_vocab_json(const char *extra) {
    size_t cap = 8192 + strlen(extra);
    char *s = malloc(cap), *o = s;
    *o++ = '{';
    for (int i = 0; i < 256; i++) {
        uint8_t b = klc_gpt2_byte_order(i);
        char c[4];
        size_t m = klc_bytes_to_chars(&b, 1, c);
        o += sprintf(o, "%s\"%s%.*s\":%d", i ? "," : "", (c[0] == '"' || c[0] == '\\') ? "\\" : "",
                     (int)m, c, i);
    }
    o += sprintf(o, "%s}", extra);
    return s;
}

typedef struct bad_case {
    const char *name;
    const char *vocab; /* NULL: the byte vocabulary plus vocab_extra */
    const char *vocab_extra;
    const char *merges;
    int status;
    const char *fragment;
} bad_case;

START_TEST(bad_files_fail_with_file_and_line) {
    static const bad_case cases[] = {
        {"syntax", "{\"a\": 1,\n \"b\" 2}", NULL, "", KLC_ERR_FORMAT, "vocab.json:2:"},
        {"not object", "[1, 2]", NULL, "", KLC_ERR_FORMAT, "vocab.json: expected a JSON object"},
        {"duplicate key", NULL, ",\"ab\":256,\"ab\":257", "", KLC_ERR_FORMAT, "vocab.json:1:"},
        {"float id", NULL, ",\"ab\":256.0", "", KLC_ERR_FORMAT,
         "vocab.json: token 'ab': the id is not an integer"},
        {"string id", NULL, ",\"ab\":\"256\"", "", KLC_ERR_FORMAT, "not an integer"},
        {"id out of range", NULL, ",\"ab\":300", "", KLC_ERR_FORMAT,
         "token 'ab': id 300 is out of range"},
        {"negative id", NULL, ",\"ab\":-1", "", KLC_ERR_FORMAT, "id -1 is out of range"},
        {"id twice", NULL, ",\"ab\":256,\"cd\":256", "", KLC_ERR_FORMAT, "id 256 is used twice"},
        {"non-byte char", NULL, ",\"a\xe2\x82\xac\":256", "", KLC_ERR_FORMAT,
         "character U+20AC at byte 1 stands for no byte"},
        {"empty token", NULL, ",\"\":256", "", KLC_ERR_FORMAT, "id 256 is empty"},
        {"too few tokens", "{\"a\":0}", NULL, "", KLC_ERR_FORMAT, "1 tokens"},
        {"unknown token", NULL, ",\"ab\":256", "#version: 0.2\na b\nx yz\n", KLC_ERR_FORMAT,
         "merges.txt:3: unknown token 'yz'"},
        {"duplicate merge", NULL, ",\"ab\":256", "#version: 0.2\na b\n\na b\n", KLC_ERR_FORMAT,
         "merges.txt:4: duplicate merge 'a b' (also line 2)"},
        {"no result", NULL, ",\"ab\":256", "a b\nb a\n", KLC_ERR_FORMAT,
         "merges.txt:2: merging 'b' and 'a' gives a token that is not in the vocabulary"},
        {"one field", NULL, "", "ab\n", KLC_ERR_FORMAT,
         "merges.txt:1: expected two tokens separated by one space, got 'ab'"},
        {"three fields", NULL, "", "#version: 0.2\na b c\n", KLC_ERR_FORMAT,
         "merges.txt:2: expected two tokens"},
        {"double space", NULL, "", "a  b\n", KLC_ERR_FORMAT, "merges.txt:1: expected two"},
        {"bad utf8", NULL, "", "a b\xff\n", KLC_ERR_FORMAT, "merges.txt:1: invalid UTF-8"},
        {"raw space token", NULL, "", "a \xc4\xa0 b\n", KLC_ERR_FORMAT, "merges.txt:1:"},
    };
    char *dir = tu_make_temp_dir("tok-bad");
    char vpath[4300], mpath[4300];
    snprintf(vpath, sizeof vpath, "%s/vocab.json", dir);
    snprintf(mpath, sizeof mpath, "%s/merges.txt", dir);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const bad_case *c = &cases[k];
        char *v = c->vocab ? strdup(c->vocab) : byte_vocab_json(c->vocab_extra);
        ck_assert_int_eq(tu_write_file(vpath, v, strlen(v)), 0);
        ck_assert_int_eq(tu_write_file(mpath, c->merges, strlen(c->merges)), 0);
        klc_tokenizer *t = (klc_tokenizer *)0x1;
        int st = klc_tokenizer_load(dir, NULL, &t);
        ck_assert_msg(st == c->status, "%s: status %s (%s)", c->name, klc_status_str(st),
                      klc_last_error());
        ck_assert_ptr_null(t);
        ck_assert_msg(strstr(klc_last_error(), c->fragment), "%s: message '%s' lacks '%s'", c->name,
                      klc_last_error(), c->fragment);
        free(v);
    }
    /* And the same files made valid load. */
    char *v = byte_vocab_json(",\"ab\":256,\"Ġab\":257");
    tu_write_file(vpath, v, strlen(v));
    tu_write_file(mpath, "#version: 0.2\r\na b\r\nĠ ab\r\n", 27);
    klc_tokenizer *t;
    ck_klc(klc_tokenizer_load(dir, NULL, &t));
    size_t n;
    int32_t ids[4];
    ck_klc(klc_tokenizer_encode(t, " ab ab", 6, 0, ids, 4, &n));
    ck_assert(n == 2 && ids[0] == 257 && ids[1] == 257);
    ck_assert_int_eq(klc_tokenizer_eot_id(t), -1);
    ck_assert_int_eq(klc_tokenizer_encode(t, "x", 1, KLC_TOKENIZE_EOT_AFTER, ids, 4, &n),
                     KLC_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(klc_last_error(), "no '<|endoftext|>' token"));
    klc_tokenizer_destroy(t);
    free(v);
    /* Missing files. */
    remove(mpath);
    klc_tokenizer *t2;
    ck_assert_int_eq(klc_tokenizer_load(dir, NULL, &t2), KLC_ERR_IO);
    ck_assert(strstr(klc_last_error(), "has vocab.json but not merges.txt"));
    remove(vpath);
    ck_assert_int_eq(klc_tokenizer_load(dir, NULL, &t2), KLC_ERR_IO);
    ck_assert(strstr(klc_last_error(), "no tokenizer files"));
    ck_assert_int_eq(klc_tokenizer_load("/nonexistent/klc", NULL, &t2), KLC_ERR_IO);
    ck_assert_int_eq(klc_tokenizer_load_files("/nonexistent/v.json", mpath, NULL, &t2), KLC_ERR_IO);
    ck_assert(strstr(klc_last_error(), "/nonexistent/v.json: cannot open"));
    ck_assert_int_eq(klc_tokenizer_load(NULL, NULL, &t2), KLC_ERR_INVALID_ARGUMENT);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(save_reproduces_gpt2_files) {
    char *dir = tu_make_temp_dir("tok-save");
    ck_klc(klc_tokenizer_save(gpt2, dir));
    char path[4300];
    size_t a, b;
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    char *mine = tu_read_file(path, &a), *ref = tu_read_file(GPT2_DIR "/vocab.bpe", &b);
    ck_assert(mine && ref && a == b && memcmp(mine, ref, a) == 0);
    free(mine);
    free(ref);
    /* vocab.json: the same object as encoder.json (key order and spacing may differ). */
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    json_error_t err;
    json_t *x = json_load_file(path, 0, &err),
           *y = json_load_file(GPT2_DIR "/encoder.json", 0, &err);
    ck_assert(x && y && json_equal(x, y));
    json_decref(x);
    json_decref(y);
    klc_tokenizer *t;
    ck_klc(klc_tokenizer_load(dir, NULL, &t));
    const char *s = "Reloaded from the Hugging Face pair, it's the same tokenizer.";
    size_t n1, n2;
    int32_t *i1 = encode(gpt2, s, strlen(s), 0, &n1), *i2 = encode(t, s, strlen(s), 0, &n2);
    ck_assert(n1 == n2 && memcmp(i1, i2, n1 * sizeof *i1) == 0);
    free(i1);
    free(i2);
    klc_tokenizer_destroy(t);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

/* --- training -------------------------------------------------------------------------- */

static char *write_temp_text(const char *dir, const char *name, const char *text, size_t len) {
    char *path = malloc(4400);
    snprintf(path, 4400, "%s/%s", dir, name);
    ck_assert_int_eq(tu_write_file(path, text, len), 0);
    return path;
}

static klc_tokenizer *train_text(const char *text, int32_t vocab, int64_t minf) {
    char *dir = tu_make_temp_dir("tok-train");
    char *path = write_temp_text(dir, "a.txt", text, strlen(text));
    klc_tokenizer_train_options o;
    ck_klc(klc_tokenizer_train_options_init(&o, KLC_TOKENIZER_TRAIN_OPTIONS_VERSION));
    o.vocab_size = vocab;
    o.min_frequency = minf;
    klc_tokenizer *t;
    const char *files[1] = {path};
    ck_klc(klc_tokenizer_train(files, 1, &o, &t));
    free(path);
    tu_remove_tree(dir);
    free(dir);
    return t;
}

/* The merges as "left right" strings in byte characters, joined by '|'. */
static void merges_string(const klc_tokenizer *t, char *out, size_t cap) {
    size_t o = 0;
    out[0] = '\0';
    for (int32_t k = 0; k < t->n_merges; k++) {
        const int32_t side[2] = {t->merges[k].left, t->merges[k].right};
        for (int j = 0; j < 2; j++) {
            char c[256];
            size_t n = t->tok_off[side[j] + 1] - t->tok_off[side[j]];
            ck_assert_uint_lt(2 * n, sizeof c);
            size_t m =
                klc_bytes_to_chars((const uint8_t *)t->tok_bytes + t->tok_off[side[j]], n, c);
            o += (size_t)snprintf(out + o, cap - o, "%s%.*s", j ? " " : (k ? "|" : ""), (int)m, c);
        }
    }
}

START_TEST(train_hand_computed_single_word) {
    /* One piece, counted once: pairs aa:4 ab:2 bd da ba ac:1. Merge 1 "a a" gives
     * [aa a b d aa a b a c]; then (aa,a) and (a,b) tie at 2 and 'a' < 'aa' picks "a b",
     * giving [aa ab d aa ab a c]; then (aa,ab):2 is the only pair seen twice. */
    klc_tokenizer *t = train_text("aaabdaaabac", 300, 2);
    char m[256];
    merges_string(t, m, sizeof m);
    ck_assert_str_eq(m, "a a|a b|aa ab");
    ck_assert_int_eq(klc_tokenizer_vocab_size(t), 260);
    ck_assert_int_eq(klc_tokenizer_eot_id(t), 259);
    int32_t id;
    ck_klc(klc_tokenizer_token_id(t, "aaab", 4, &id));
    ck_assert_int_eq(id, 258);
    /* Byte tokens keep GPT-2's ids. */
    ck_klc(klc_tokenizer_token_id(t, "a", 1, &id));
    ck_assert_int_eq(id, 64);
    ck_klc(klc_tokenizer_token_id(t, " ", 1, &id));
    ck_assert_int_eq(id, 220);
    size_t n;
    int32_t ids[16];
    ck_klc(klc_tokenizer_encode(t, "aaabdaaabac", 11, 0, ids, 16, &n));
    /* a a a b d a a a b a c -> aa a b d aa a b a c -> aa ab d aa ab a c -> aaab d aaab a c */
    ck_assert(n == 5 && ids[0] == 258 && ids[1] == 67 && ids[2] == 258 && ids[3] == 64 &&
              ids[4] == 66);
    klc_tokenizer_destroy(t);
    /* With min_frequency 1 and room for one more, the next merge is the smallest of the
     * pairs seen once, (a, c). */
    t = train_text("aaabdaaabac", 261, 1);
    merges_string(t, m, sizeof m);
    ck_assert_str_eq(m, "a a|a b|aa ab|a c");
    ck_assert_int_eq(klc_tokenizer_eot_id(t), 260);
    klc_tokenizer_destroy(t);
}
END_TEST

START_TEST(train_hand_computed_counts_across_pieces) {
    /* Pieces: "hug" x1, " hug" x2, " pug", " pun", " bun". Counts: ug 4, hu 3, then
     * (h,ug) 3; then (Ġ,hug), (Ġ,p), (u,n) tie at 2 and byte order picks them in that
     * order (' ' < 'u'; "hug" < "p"). */
    klc_tokenizer *t = train_text("hug hug hug pug pun bun", 262, 2);
    char m[256];
    merges_string(t, m, sizeof m);
    ck_assert_str_eq(m, "u g|h ug|Ġ hug|Ġ p|u n");
    ck_assert_int_eq(klc_tokenizer_vocab_size(t), 262);
    klc_tokenizer_destroy(t);
}
END_TEST

/* An independent trainer that recounts every pair of every piece before each merge, with
 * the same tie rule; the incremental trainer must learn exactly the same merges. */
typedef struct naive_word {
    int32_t *s;
    size_t n;
    int64_t count;
} naive_word;

static int naive_token_cmp(char **tok, size_t *len, int32_t a, int32_t b) {
    size_t m = len[a] < len[b] ? len[a] : len[b];
    int c = memcmp(tok[a], tok[b], m);
    return c ? c : (len[a] < len[b] ? -1 : len[a] > len[b]);
}

START_TEST(train_matches_naive_trainer) {
    /* Text: the reference vectors, twice over with variations, so counts tie often. */
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    FILE *f = fopen(GPT2_DIR "/vectors.jsonl", "r");
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        json_t *v = json_loads(line, 0, NULL);
        const char *s = json_string_value(json_object_get(v, "text"));
        size_t n = json_string_length(json_object_get(v, "text"));
        ck_assert_uint_lt(len + 2 * n, cap);
        memcpy(text + len, s, n);
        len += n;
        for (size_t i = 0; i < n; i++) text[len + i] = (char)(s[i] == 'e' ? 'E' : s[i]);
        len += n;
        json_decref(v);
    }
    free(line);
    fclose(f);
    text[len] = '\0';
    const int32_t vocab = 700;
    klc_tokenizer *t = train_text(text, vocab, 2);

    /* Pieces through the same pre-tokenizer, one word per occurrence (no dedup). */
    klc_pretok pre;
    ck_klc(klc_pretok_init(&pre));
    klc_pretok_iter it;
    klc_pretok_begin(&it, text, len);
    naive_word *w = malloc(len * sizeof *w);
    size_t nw = 0, st, n;
    while (klc_pretok_next(&pre, &it, &st, &n) > 0) {
        w[nw].s = malloc(n * sizeof(int32_t));
        for (size_t i = 0; i < n; i++) w[nw].s[i] = (uint8_t)text[st + i];
        w[nw].n = n;
        w[nw].count = 1;
        nw++;
    }
    klc_pretok_free(&pre);
    /* Tokens: 0..255 are the bytes themselves here; learned ones follow. */
    char *tok[4096];
    size_t tlen[4096];
    int32_t ntok = 256;
    for (int i = 0; i < 256; i++) {
        tok[i] = malloc(1);
        tok[i][0] = (char)i;
        tlen[i] = 1;
    }
    int32_t learned = 0;
    while (ntok + 1 < vocab) {
        /* Count all pairs (quadratic in the number of distinct pairs, fine here). */
        int32_t *pl = malloc(len * sizeof *pl), *pr = malloc(len * sizeof *pr);
        int64_t *pc = malloc(len * sizeof *pc);
        size_t np = 0;
        for (size_t k = 0; k < nw; k++)
            for (size_t i = 0; i + 1 < w[k].n; i++) {
                size_t j = 0;
                while (j < np && !(pl[j] == w[k].s[i] && pr[j] == w[k].s[i + 1])) j++;
                if (j == np) {
                    pl[np] = w[k].s[i];
                    pr[np] = w[k].s[i + 1];
                    pc[np++] = 0;
                }
                pc[j] += w[k].count;
            }
        ptrdiff_t best = -1;
        for (size_t j = 0; j < np; j++) {
            if (pc[j] < 2) continue;
            if (best < 0 || pc[j] > pc[best] ||
                (pc[j] == pc[best] &&
                 (naive_token_cmp(tok, tlen, pl[j], pl[best]) < 0 ||
                  (pl[j] == pl[best] && naive_token_cmp(tok, tlen, pr[j], pr[best]) < 0))))
                best = (ptrdiff_t)j;
        }
        if (best < 0) {
            free(pl), free(pr), free(pc);
            break;
        }
        int32_t l = pl[best], r = pr[best];
        free(pl), free(pr), free(pc);
        /* The library's merge k must be this one (compared by bytes). */
        ck_assert_int_lt(learned, t->n_merges);
        const klc_tok_merge *m = &t->merges[learned];
        const char *lb, *rb;
        size_t ln, rn;
        ck_klc(klc_tokenizer_token_bytes(t, m->left, &lb, &ln));
        ck_klc(klc_tokenizer_token_bytes(t, m->right, &rb, &rn));
        ck_assert_msg(ln == tlen[l] && memcmp(lb, tok[l], ln) == 0 && rn == tlen[r] &&
                          memcmp(rb, tok[r], rn) == 0,
                      "merge %d differs", learned);
        /* New token, or the existing one with the same bytes. */
        char *cat = malloc(tlen[l] + tlen[r]);
        memcpy(cat, tok[l], tlen[l]);
        memcpy(cat + tlen[l], tok[r], tlen[r]);
        int32_t mid = -1;
        for (int32_t i = 0; i < ntok; i++)
            if (tlen[i] == tlen[l] + tlen[r] && memcmp(tok[i], cat, tlen[i]) == 0) mid = i;
        if (mid < 0) {
            tok[ntok] = cat;
            tlen[ntok] = tlen[l] + tlen[r];
            mid = ntok++;
        } else {
            free(cat);
        }
        for (size_t k = 0; k < nw; k++) {
            size_t o = 0;
            for (size_t i = 0; i < w[k].n;) {
                if (i + 1 < w[k].n && w[k].s[i] == l && w[k].s[i + 1] == r) {
                    w[k].s[o++] = mid;
                    i += 2;
                } else {
                    w[k].s[o++] = w[k].s[i++];
                }
            }
            w[k].n = o;
        }
        learned++;
    }
    ck_assert_int_eq(learned, t->n_merges);
    ck_assert_int_eq(ntok + 1, klc_tokenizer_vocab_size(t));
    ck_assert_int_gt(learned, 300);
    for (size_t k = 0; k < nw; k++) free(w[k].s);
    free(w);
    for (int32_t i = 0; i < ntok; i++) free(tok[i]);
    klc_tokenizer_destroy(t);
    free(text);
}
END_TEST

START_TEST(train_is_deterministic_and_reloads) {
    char *dir = tu_make_temp_dir("tok-det");
    /* Two files from the reference vectors file and the merges file itself: varied text. */
    size_t a_len, b_len;
    char *a = tu_read_file(GPT2_DIR "/vectors.jsonl", &a_len);
    char *b = tu_read_file(GPT2_DIR "/vocab.bpe", &b_len);
    b_len = b_len > 60000 ? 60000 : b_len;
    char *pa = write_temp_text(dir, "a.txt", a, a_len),
         *pb = write_temp_text(dir, "b.txt", b, b_len);
    const char *files[2] = {pa, pb};
    klc_tokenizer_train_options o;
    ck_klc(klc_tokenizer_train_options_init(&o, KLC_TOKENIZER_TRAIN_OPTIONS_VERSION));
    o.vocab_size = 2000;
    klc_tokenizer *t1, *t2;
    ck_klc(klc_tokenizer_train(files, 2, &o, &t1));
    ck_klc(klc_tokenizer_train(files, 2, &o, &t2));
    ck_assert_int_eq(klc_tokenizer_vocab_size(t1), 2000);
    ck_assert_int_eq(klc_tokenizer_eot_id(t1), 1999);
    char d1[4400], d2[4400];
    snprintf(d1, sizeof d1, "%s/one", dir);
    snprintf(d2, sizeof d2, "%s/two/nested", dir);
    ck_klc(klc_tokenizer_save(t1, d1));
    ck_klc(klc_tokenizer_save(t2, d2));
    const char *names[2] = {"vocab.json", "merges.txt"};
    for (int k = 0; k < 2; k++) {
        char p1[4500], p2[4500];
        snprintf(p1, sizeof p1, "%s/%s", d1, names[k]);
        snprintf(p2, sizeof p2, "%s/%s", d2, names[k]);
        size_t n1, n2;
        char *f1 = tu_read_file(p1, &n1), *f2 = tu_read_file(p2, &n2);
        ck_assert(f1 && f2 && n1 == n2 && memcmp(f1, f2, n1) == 0);
        free(f1);
        free(f2);
    }
    /* The merges file is a valid BPE: each merge uses bytes or earlier merges' tokens. */
    char *made = calloc((size_t)klc_tokenizer_vocab_size(t1), 1);
    for (int i = 0; i < 256; i++) made[i] = 1;
    for (int32_t k = 0; k < t1->n_merges; k++) {
        ck_assert(made[t1->merges[k].left] && made[t1->merges[k].right]);
        made[t1->merges[k].result] = 1;
    }
    for (int32_t i = 0; i < klc_tokenizer_vocab_size(t1) - 1; i++) ck_assert(made[i]);
    free(made);
    /* Reloaded from its files it encodes identically, and round-trips. */
    klc_tokenizer *r;
    ck_klc(klc_tokenizer_load(d1, NULL, &r));
    ck_assert_int_eq(klc_tokenizer_vocab_size(r), 2000);
    ck_assert_int_eq(klc_tokenizer_eot_id(r), 1999);
    size_t n1, n2;
    int32_t *i1 = encode(t1, a, a_len, KLC_TOKENIZE_EOT_AFTER, &n1);
    int32_t *i2 = encode(r, a, a_len, KLC_TOKENIZE_EOT_AFTER, &n2);
    ck_assert(n1 == n2 && memcmp(i1, i2, n1 * sizeof *i1) == 0);
    ck_assert_uint_lt(n1, a_len * 6 / 10); /* it learned something */
    free(i1);
    free(i2);
    assert_round_trip(r, a, a_len);
    char bytes[3000];
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (char)(i * 7919 >> 3);
    assert_round_trip(r, bytes, sizeof bytes);
    klc_tokenizer_destroy(r);
    klc_tokenizer_destroy(t1);
    klc_tokenizer_destroy(t2);
    /* Bad arguments. */
    o.vocab_size = 256;
    ck_assert_int_eq(klc_tokenizer_train(files, 2, &o, &t1), KLC_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(klc_last_error(), "vocab_size 256"));
    o.vocab_size = 300;
    const char *missing[1] = {"/nonexistent/corpus.txt"};
    ck_assert_int_eq(klc_tokenizer_train(missing, 1, &o, &t1), KLC_ERR_IO);
    ck_assert(strstr(klc_last_error(), "/nonexistent/corpus.txt"));
    /* No text at all still gives a usable tokenizer: bytes and end of text. */
    ck_klc(klc_tokenizer_train(NULL, 0, &o, &t1));
    ck_assert_int_eq(klc_tokenizer_vocab_size(t1), 257);
    klc_tokenizer_destroy(t1);
    free(pa);
    free(pb);
    free(a);
    free(b);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

/* --- the klc program -------------------------------------------------------------------- */

/* Runs a shell command, returning its exit status and its standard output (malloc'd). */
static int run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + n, 1, cap - 1 - n, p)) > 0) n += got;
    buf[n] = '\0';
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(cli_encode_decode_train) {
    char cmd[8192], *out;
    const char *klc = KLC_BINARY_DIR "/klc";
    char *dir = tu_make_temp_dir("tok-cli");
    char *in = write_temp_text(dir, "in.txt", "Hello world", 11);
    snprintf(cmd, sizeof cmd, "%s tokenizer encode -t %s %s", klc, GPT2_DIR, in);
    ck_assert_int_eq(run(cmd, &out), 0);
    ck_assert_str_eq(out, "15496 995\n");
    free(out);
    snprintf(cmd, sizeof cmd, "%s tokenizer encode --eot-after -t %s < %s", klc, GPT2_DIR, in);
    ck_assert_int_eq(run(cmd, &out), 0);
    ck_assert_str_eq(out, "15496 995 50256\n");
    free(out);
    char *ids = write_temp_text(dir, "ids.txt", "15496\n  995 13\n", 15);
    snprintf(cmd, sizeof cmd, "%s tokenizer decode -t %s %s", klc, GPT2_DIR, ids);
    ck_assert_int_eq(run(cmd, &out), 0);
    ck_assert_str_eq(out, "Hello world.");
    free(out);
    /* Errors name the file and line. */
    char *bad = write_temp_text(dir, "bad.txt", "15496\n995 50257\n", 16);
    snprintf(cmd, sizeof cmd, "%s tokenizer decode -t %s %s 2>&1", klc, GPT2_DIR, bad);
    ck_assert_int_eq(run(cmd, &out), 1);
    ck_assert_msg(strstr(out, "bad.txt:2: token id 50257 is out of range 0..50256"), "%s", out);
    free(out);
    char *junk = write_temp_text(dir, "junk.txt", "1 2\n3 x4\n", 9);
    snprintf(cmd, sizeof cmd, "%s tokenizer decode -t %s %s 2>&1", klc, GPT2_DIR, junk);
    ck_assert_int_eq(run(cmd, &out), 1);
    ck_assert_msg(strstr(out, "junk.txt:2: 'x4' is not a token id"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s tokenizer encode -t %s/nowhere %s 2>&1", klc, dir, in);
    ck_assert_int_eq(run(cmd, &out), 1);
    ck_assert(strstr(out, "nowhere: no such directory"));
    free(out);
    /* Train, then use what it wrote. */
    char *corpus = write_temp_text(dir, "corpus.txt", "hug hug hug pug pun bun", 23);
    snprintf(cmd, sizeof cmd, "%s tokenizer train --vocab-size 262 -o %s/tok %s 2>&1", klc, dir,
             corpus);
    ck_assert_int_eq(run(cmd, &out), 0);
    ck_assert_msg(strstr(out, "262 tokens (end-of-text id 261)"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s tokenizer encode -t %s/tok --eot-before %s", klc, dir, corpus);
    ck_assert_int_eq(run(cmd, &out), 0);
    /* hug, " hug" x2, " p"+ug, " p"+un, " "+b+un after the end-of-text token */
    ck_assert_str_eq(out, "261 257 258 258 259 256 259 260 220 65 260\n");
    free(out);
    snprintf(cmd, sizeof cmd, "%s/tok/merges.txt", dir);
    size_t n;
    char *merges = tu_read_file(cmd, &n);
    ck_assert_str_eq(merges, "#version: 0.2\nu g\nh ug\nĠ hug\nĠ p\nu n\n");
    free(merges);
    /* Every subcommand has --help; usage errors exit with 2. */
    const char *helps[] = {"", " encode", " decode", " train"};
    for (int k = 0; k < 4; k++) {
        snprintf(cmd, sizeof cmd, "%s tokenizer%s --help", klc, helps[k]);
        ck_assert_int_eq(run(cmd, &out), 0);
        ck_assert(strstr(out, "usage: klc tokenizer"));
        free(out);
    }
    snprintf(cmd, sizeof cmd, "%s tokenizer train --vocab-size 12 -o %s/x %s 2>&1", klc, dir, in);
    ck_assert_int_eq(run(cmd, &out), 2);
    free(out);
    free(in), free(ids), free(bad), free(junk), free(corpus);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

/* --- allocator ------------------------------------------------------------------------- */

typedef struct counting {
    size_t live, calls;
} counting;

static void *c_alloc(void *ud, size_t size, size_t al) {
    counting *c = ud;
    c->live += size;
    c->calls++;
    return aligned_alloc(al, (size + al - 1) / al * al);
}

static void c_free(void *ud, void *p, size_t size) {
    ((counting *)ud)->live -= size;
    free(p);
}

START_TEST(everything_goes_through_the_allocator) {
    counting c = {0, 0};
    klc_allocator a = {c_alloc, c_free, &c};
    klc_tokenizer *t;
    ck_klc(klc_tokenizer_load(GPT2_DIR, &a, &t));
    size_t n;
    int32_t ids[64];
    ck_klc(klc_tokenizer_encode(t, "allocator accounting", 20, 0, ids, 64, &n));
    klc_tokenizer_destroy(t);
    ck_assert_uint_gt(c.calls, 0);
    ck_assert_uint_eq(c.live, 0);
    klc_tokenizer_train_options o;
    ck_klc(klc_tokenizer_train_options_init(&o, KLC_TOKENIZER_TRAIN_OPTIONS_VERSION));
    o.vocab_size = 400;
    o.allocator = &a;
    const char *files[1] = {GPT2_DIR "/vectors.jsonl"};
    size_t before = c.calls;
    ck_klc(klc_tokenizer_train(files, 1, &o, &t));
    ck_assert_uint_gt(c.calls, before);
    klc_tokenizer_destroy(t);
    ck_assert_uint_eq(c.live, 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("tokenizer");
    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, load_gpt2, free_gpt2);
    tcase_add_test(tc, all_reference_vectors_give_exact_ids);
    tcase_add_test(tc, heap_bpe_equals_reference_bpe_on_random_pieces);
    tcase_add_test(tc, gpt2_facts);
    tcase_add_test(tc, ascii_shortcut_cuts_like_pcre2);
    tcase_add_test(tc, eot_only_through_flags);
    tcase_add_test(tc, capacity_and_needed_sizes);
    tcase_add_test(tc, round_trip_random_valid_utf8);
    tcase_add_test(tc, round_trip_random_bytes);
    tcase_add_test(tc, invalid_utf8_splits_text_into_independent_runs);
    tcase_add_test(tc, bad_files_fail_with_file_and_line);
    tcase_add_test(tc, save_reproduces_gpt2_files);
    tcase_add_test(tc, train_hand_computed_single_word);
    tcase_add_test(tc, train_hand_computed_counts_across_pieces);
    tcase_add_test(tc, train_matches_naive_trainer);
    tcase_add_test(tc, train_is_deterministic_and_reloads);
    tcase_add_test(tc, everything_goes_through_the_allocator);
    tcase_add_test(tc, cli_encode_decode_train);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
