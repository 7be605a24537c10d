/* Features: the built-in word, word-list, lexicon, name-list, length and regex features
 * on hand-made texts (punctuation, case, Unicode letters, word boundaries, empty and
 * ill-formed texts), the shipped lexicons, file errors with file:line, user features
 * through ops (release exactly once, failing callbacks), and allocator balance. */
#include "core/internal.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEX KLC_SOURCE_DIR "/data/lexicons/"
enum { MAXN = 32, STRIDE = 8 };

/* A batch of texts; sequence i has i % STRIDE + 1 tokens. */
typedef struct tbatch {
    klc_seq_batch b;
    int32_t ids[MAXN * STRIDE], lengths[MAXN];
    size_t tl[MAXN];
    const char *texts[MAXN];
} tbatch;

static void tb_make(tbatch *t, const char *const *texts, int n) {
    ck_assert_int_le(n, MAXN);
    memset(t, 0, sizeof *t);
    for (int i = 0; i < n; i++) {
        t->texts[i] = texts[i];
        t->tl[i] = texts[i] ? strlen(texts[i]) : 0;
        t->lengths[i] = i % STRIDE + 1;
        for (int k = 0; k < STRIDE; k++) t->ids[i * STRIDE + k] = 100 + i;
    }
    t->b = (klc_seq_batch){
        sizeof(klc_seq_batch), n, STRIDE, t->ids, t->lengths, t->texts, t->tl, NULL};
}

/* Scores texts with f and compares with want[], naming the text on a mismatch. */
static void expect(klc_feature *f, const char *const *texts, const double *want, int n) {
    tbatch t;
    tb_make(&t, texts, n);
    double out[MAXN];
    ck_klc(klc_feature_score(f, &t.b, out));
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(out[i] - want[i]) < 1e-12, "%s on \"%s\": got %g, want %g",
                      klc_feature_name(f), texts[i] ? texts[i] : "(null)", out[i], want[i]);
}

static klc_feature *word(const char *w, uint32_t flags) {
    klc_feature_options o;
    klc_feature_options_init(&o, KLC_FEATURE_OPTIONS_VERSION);
    o.flags = flags;
    klc_feature *f = NULL;
    ck_klc(klc_feature_word(w, &o, &f));
    return f;
}

START_TEST(test_word_boundaries) {
    klc_feature *f = word("sea", 0), *fc = word("sea", KLC_FEATURE_CASELESS);
    ck_assert_str_eq(klc_feature_name(f), "word:sea");
    ck_assert_int_eq(klc_feature_dim(f), 1);
    const char *texts[] = {"the sea.",
                           "seasick",
                           "Sea",
                           "sea-sick",
                           "",
                           "the seas",
                           "sea's",
                           "sea\xE2\x80\x99s",
                           "to\tsea\n",
                           "xsea",
                           "sea2",
                           "_sea_",
                           "seaé",
                           "éSEA",
                           "(sea)",
                           "SEA!",
                           "sea\xff",
                           "\xffsea",
                           "se\xff"
                           "a",
                           "sEa"};
    const double want[] = {1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0};
    const double want_c[] = {1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0, 1};
    int n = (int)(sizeof texts / sizeof texts[0]);
    expect(f, texts, want, n);
    expect(fc, texts, want_c, n);
    klc_feature_destroy(f);
    klc_feature_destroy(fc);
}
END_TEST

START_TEST(test_word_unicode) {
    klc_feature *f = word("café", 0), *fc = word("CAFÉ", KLC_FEATURE_CASELESS);
    const char *texts[] = {"un café.", "cafés", "CAFÉ noir", "cafe", "cafe\xCC\x81", "Café!"};
    const double want[] = {1, 0, 0, 0, 0, 0};
    const double want_c[] = {1, 0, 1, 0, 0, 1};
    expect(f, texts, want, 6);
    expect(fc, texts, want_c, 6);
    klc_feature_destroy(f);
    klc_feature_destroy(fc);

    f = word("naïve", KLC_FEATURE_CASELESS);
    const char *t2[] = {"so naïve!", "naïveté", "NAÏVE", "naive", "«naïve»"};
    const double w2[] = {1, 0, 1, 0, 1};
    expect(f, t2, w2, 5);
    klc_feature_destroy(f);

    /* Greek: simple case mapping, final sigma stays itself. */
    f = word("σοφός", KLC_FEATURE_CASELESS);
    const char *t3[] = {"ΣΟΦΌΣ", "σοφός.", "ΣΟΦΌΣ"};
    const double w3[] = {0, 1, 0};
    expect(f, t3, w3, 3);
    klc_feature_destroy(f);
    f = word("σοφόσ", KLC_FEATURE_CASELESS);
    const double w4[] = {1, 0, 1};
    expect(f, t3, w4, 3);
    klc_feature_destroy(f);
    /* A decomposed entry matches decomposed text only. */
    f = word("cafe\xCC\x81", 0);
    const double w5[] = {0, 0, 0, 0, 1, 0};
    expect(f, texts, w5, 6);
    klc_feature_destroy(f);
}
END_TEST

START_TEST(test_phrases_and_punctuation) {
    klc_feature *f = word("  fed up ", 0);
    const char *texts[] = {"I am fed   up.", "fed\n up",     "fedup",
                           "fed, up",        "fed up-tight", "unfed up"};
    const double want[] = {1, 1, 0, 0, 1, 0};
    expect(f, texts, want, 6);
    klc_feature_destroy(f);

    f = word("don't", 0);
    const char *t2[] = {"I don\xE2\x80\x99t know", "don't!", "dont", "don 't", "don"};
    const double w2[] = {1, 1, 0, 0, 0};
    expect(f, t2, w2, 5);
    klc_feature_destroy(f);

    const char *list[] = {"ocean", "a+", "sea"};
    klc_feature *wl = NULL;
    ck_klc(klc_feature_word_list(list, 3, NULL, &wl));
    ck_assert_str_eq(klc_feature_name(wl), "word_list");
    const char *t3[] = {"an a+ grade", "a+b", "ba+", "a +", "Ocean", "oceanic sea!", "", "a"};
    const double w3[] = {1, 1, 0, 0, 0, 1, 0, 0};
    expect(wl, t3, w3, 8);
    klc_feature_destroy(wl);
}
END_TEST

static klc_feature *lexicon(const char *const *w, const double *v, size_t n, int32_t agg) {
    klc_feature_options o;
    klc_feature_options_init(&o, KLC_FEATURE_OPTIONS_VERSION);
    o.aggregate = agg;
    klc_feature *f = NULL;
    ck_klc(klc_feature_lexicon(w, v, n, &o, &f));
    return f;
}

START_TEST(test_lexicon_aggregation) {
    const char *w[] = {"good", "not good", "bad", "very good"};
    const double v[] = {3, -2, -3, 4};
    const char *texts[] = {"good good",
                           "not good",
                           "not good but good",
                           "bad.",
                           "",
                           "good bad bad",
                           "very good, not good, very very good",
                           "goodness"};
    const double sum[] = {6, -2, 1, -3, 0, -3, 6, 0};
    const double mean[] = {3, -2, 0.5, -3, 0, -1, 2, 0};
    const double count[] = {2, 1, 2, 1, 0, 3, 3, 0};
    klc_feature *f = lexicon(w, v, 4, KLC_AGGREGATE_SUM);
    ck_assert_str_eq(klc_feature_name(f), "lexicon");
    expect(f, texts, sum, 8);
    klc_feature_destroy(f);
    f = lexicon(w, v, 4, KLC_AGGREGATE_MEAN);
    expect(f, texts, mean, 8);
    klc_feature_destroy(f);
    f = lexicon(w, v, 4, KLC_AGGREGATE_COUNT);
    expect(f, texts, count, 8);
    klc_feature_destroy(f);

    /* The same entry twice: equal values merge, different values are an error. */
    const char *dup[] = {"good", "good"};
    const double same[] = {1, 1}, diff[] = {1, 2};
    f = lexicon(dup, same, 2, KLC_AGGREGATE_SUM);
    klc_feature_destroy(f);
    f = NULL;
    ck_assert_int_eq(klc_feature_lexicon(dup, diff, 2, NULL, &f), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(f);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "entry 1"));
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "index 0"));
    const double bad[] = {1, NAN};
    ck_assert_int_eq(klc_feature_lexicon(dup, bad, 2, NULL, &f), KLC_ERR_INVALID_ARGUMENT);
    klc_feature_options o;
    klc_feature_options_init(&o, KLC_FEATURE_OPTIONS_VERSION);
    o.aggregate = 7;
    ck_assert_int_eq(klc_feature_lexicon(w, v, 4, &o, &f), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "aggregate"));
}
END_TEST

START_TEST(test_shipped_lexicons) {
    klc_feature_options o;
    klc_feature_options_init(&o, KLC_FEATURE_OPTIONS_VERSION);
    o.flags = KLC_FEATURE_CASELESS;
    klc_feature *afinn = NULL, *afinn_cs = NULL;
    ck_klc(klc_feature_lexicon_file(LEX "afinn-111.tsv", &o, &afinn));
    ck_assert_str_eq(klc_feature_name(afinn), "lexicon:afinn-111.tsv");
    ck_klc(klc_feature_lexicon_file(LEX "afinn-111.tsv", NULL, &afinn_cs));
    /* love 3, fun 4, can't stand -3 (curly apostrophe), not good -2 (longest match);
     * case-sensitive, "Not good" is not "not good" but "good" (3) still is. */
    const char *texts[] = {"I love fun but can\xE2\x80\x99t stand it. Not good!", "", "naïve"};
    const double want[] = {2, 0, -2}, want_cs[] = {7, 0, -2};
    expect(afinn, texts, want, 3);
    expect(afinn_cs, texts, want_cs, 3);
    klc_feature_destroy(afinn);
    klc_feature_destroy(afinn_cs);

    /* Hu & Liu's plain lists as lexicons with +1 / -1, counted. */
    klc_feature *pos = NULL, *neg = NULL;
    o.default_value = -1;
    ck_klc(klc_feature_lexicon_file(LEX "liu-negative.txt", &o, &neg));
    o.default_value = 1;
    ck_klc(klc_feature_lexicon_file(LEX "liu-positive.txt", &o, &pos));
    const char *t2[] = {"A good, great and bad day.", "Good GREAT good"};
    const double wp[] = {2, 3}, wn[] = {-1, 0};
    expect(pos, t2, wp, 2);
    expect(neg, t2, wn, 2);
    klc_feature_destroy(pos);
    klc_feature_destroy(neg);

    klc_feature *female = NULL, *male = NULL;
    ck_klc(klc_feature_name_list_file(LEX "female-first-names.txt", NULL, &female));
    ck_klc(klc_feature_name_list_file(LEX "male-first-names.txt", NULL, &male));
    ck_assert_str_eq(klc_feature_name(female), "name_list:female-first-names.txt");
    const char *t3[] = {"Mary went home.", "mary went home", "MARY",
                        "Mary's hat",      "John and Alex",  "Johnny"};
    const double wf[] = {1, 0, 0, 1, 1, 0}, wm[] = {0, 0, 0, 0, 1, 1};
    expect(female, t3, wf, 6);
    expect(male, t3, wm, 6);
    klc_feature_destroy(female);
    klc_feature_destroy(male);

    klc_feature *stop = NULL;
    ck_klc(klc_feature_word_list_file(LEX "stopwords-en.txt", NULL, &stop));
    klc_feature_destroy(stop);

    /* Every topic list loads; "coach" is a sport term, "at home" a sport phrase. */
    const char *topics[] = {"art",         "astronomy",        "biology",  "chemistry",
                            "commerce",    "computer_science", "cooking",  "law",
                            "mathematics", "medicine",         "military", "music",
                            "philosophy",  "physics",          "religion", "sport"};
    for (int k = 0; k < 16; k++) {
        char path[512];
        snprintf(path, sizeof path, LEX "topics/%s.txt", topics[k]);
        klc_feature *f = NULL;
        ck_klc(klc_feature_word_list_file(path, &o, &f));
        if (k == 15) {
            const char *t4[] = {"The Coach shouted.", "They played at\nhome.", "coaches",
                                "at homely"};
            const double w4[] = {1, 1, 0, 0};
            expect(f, t4, w4, 4);
        }
        klc_feature_destroy(f);
    }
}
END_TEST

static char *write_temp(const char *dir, const char *name, const char *data, size_t n) {
    char *path = malloc(4300);
    snprintf(path, 4300, "%s/%s", dir, name);
    ck_assert_int_eq(tu_write_file(path, data, n), 0);
    return path;
}

/* Writes `data` to a file, loads it as `kind` and checks the status and that the message
 * holds "<path>:<line>:" (line 0: just the path) and `why`. */
static void bad_file(const char *dir, int kind, const char *data, size_t n, int status, int line,
                     const char *why) {
    char *path = write_temp(dir,
                            kind == 0   ? "list.txt"
                            : kind == 1 ? "lex.tsv"
                                        : "names.txt",
                            data, n);
    klc_feature *f = (klc_feature *)1;
    int st = kind == 0   ? klc_feature_word_list_file(path, NULL, &f)
             : kind == 1 ? klc_feature_lexicon_file(path, NULL, &f)
                         : klc_feature_name_list_file(path, NULL, &f);
    ck_assert_msg(st == status, "%s: got %s (%s), want %s", data, klc_status_str(st),
                  klc_last_error(), klc_status_str(status));
    ck_assert_ptr_null(f);
    char where[4400];
    if (line)
        snprintf(where, sizeof where, "%s:%d: ", path, line);
    else
        snprintf(where, sizeof where, "%s", path);
    ck_assert_msg(strstr(klc_last_error(), where) != NULL, "'%s' lacks '%s'", klc_last_error(),
                  where);
    ck_assert_msg(strstr(klc_last_error(), why) != NULL, "'%s' lacks '%s'", klc_last_error(), why);
    free(path);
}

START_TEST(test_bad_files) {
    char *dir = tu_make_temp_dir("features");
    ck_assert_ptr_nonnull(dir);
    bad_file(dir, 1, "good\t3\nbad\tx\n", 13, KLC_ERR_FORMAT, 2, "'x' is not a number");
    bad_file(dir, 1, "good\t3\n\nbad\t3x\n", 15, KLC_ERR_FORMAT, 3, "'3x' is not a number");
    bad_file(dir, 1, "good\t3\ngood\t2\n", 14, KLC_ERR_FORMAT, 2, "line 1");
    bad_file(dir, 1, "good\tinf\n", 9, KLC_ERR_FORMAT, 1, "not finite");
    bad_file(dir, 0, "sea\nsea\tsalt\n", 13, KLC_ERR_FORMAT, 2, "TAB");
    bad_file(dir, 0, "a\nb\nc\xff\n", 7, KLC_ERR_FORMAT, 3, "UTF-8");
    bad_file(dir, 0, "a\nb\0c\n", 6, KLC_ERR_FORMAT, 2, "NUL");
    bad_file(dir, 0, "\n  \n\r\n", 6, KLC_ERR_FORMAT, 0, "no entries");
    bad_file(dir, 0, "", 0, KLC_ERR_FORMAT, 0, "no entries");
    bad_file(dir, 2, "Mary\nAnn\njohn\n", 14, KLC_ERR_FORMAT, 3, "capital letter");
    klc_feature *f = NULL;
    ck_assert_int_eq(klc_feature_lexicon_file("/nonexistent/afinn.tsv", NULL, &f), KLC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "/nonexistent/afinn.tsv"));

    /* CRLF lines, blanks, surrounding white space and duplicates are fine. */
    const char *ok = " good \t 3 \r\n\r\nnot good\t-2\r\ngood\t3\n";
    char *path = write_temp(dir, "ok.tsv", ok, strlen(ok));
    ck_klc(klc_feature_lexicon_file(path, NULL, &f));
    const char *texts[] = {"not good, good"};
    const double want[] = {1};
    expect(f, texts, want, 1);
    klc_feature_destroy(f);
    free(path);
    path = write_temp(dir, "names.txt", "Émile\nZoë\n", strlen("Émile\nZoë\n"));
    ck_klc(klc_feature_name_list_file(path, NULL, &f));
    const char *t2[] = {"Zoë and Émile", "émile", "Zoe"};
    const double w2[] = {1, 0, 0};
    expect(f, t2, w2, 3);
    klc_feature_destroy(f);
    free(path);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(test_name_list_rules) {
    const char *names[] = {"Mary", "Anne-Marie", "O'Neil"};
    klc_feature *f = NULL;
    ck_klc(klc_feature_name_list(names, 3, NULL, &f));
    const char *texts[] = {"Anne-Marie came", "Anne came", "Mr O’Neil", "Marys", "Mary."};
    const double want[] = {1, 0, 1, 0, 1};
    expect(f, texts, want, 5);
    klc_feature_destroy(f);
    const char *lower[] = {"Mary", "mary"};
    f = (klc_feature *)1;
    ck_assert_int_eq(klc_feature_name_list(lower, 2, NULL, &f), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(f);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "entry 1"));
    klc_feature_options o;
    klc_feature_options_init(&o, KLC_FEATURE_OPTIONS_VERSION);
    o.flags = KLC_FEATURE_CASELESS;
    ck_assert_int_eq(klc_feature_name_list(names, 3, &o, &f), KLC_ERR_INVALID_ARGUMENT);
    const char *empty[] = {"  "};
    ck_assert_int_eq(klc_feature_word_list(empty, 1, NULL, &f), KLC_ERR_INVALID_ARGUMENT);
    const char *bad_utf8[] = {"ok", "caf\xc3"};
    ck_assert_int_eq(klc_feature_word_list(bad_utf8, 2, NULL, &f), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(klc_feature_word_list(names, 0, NULL, &f), KLC_ERR_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_regex_and_length) {
    klc_feature *f = NULL, *fc = NULL;
    ck_klc(klc_feature_regex("\\bsea\\b", NULL, &f));
    ck_assert_str_eq(klc_feature_name(f), "regex:\\bsea\\b");
    klc_feature_options o;
    klc_feature_options_init(&o, KLC_FEATURE_OPTIONS_VERSION);
    o.flags = KLC_FEATURE_CASELESS;
    o.name = "sea-ish";
    ck_klc(klc_feature_regex("\\bsea\\b", &o, &fc));
    ck_assert_str_eq(klc_feature_name(fc), "sea-ish");
    /* UCP: \b knows that é is a letter. */
    const char *texts[] = {"the sea.", "seasick", "Sea", "seaé", "", "\xff sea \xfe"};
    const double want[] = {1, 0, 0, 0, 0, 1}, want_c[] = {1, 0, 1, 0, 0, 1};
    expect(f, texts, want, 6);
    expect(fc, texts, want_c, 6);
    klc_feature_destroy(f);
    klc_feature_destroy(fc);

    ck_klc(klc_feature_regex("^$", NULL, &f));
    const char *t2[] = {"", "x"};
    const double w2[] = {1, 0};
    expect(f, t2, w2, 2);
    klc_feature_destroy(f);
    ck_klc(klc_feature_regex("^\\p{Lu}\\w+$", NULL, &f));
    const char *t3[] = {"Élan", "élan", "Łódź", "A b"};
    const double w3[] = {1, 0, 1, 0};
    expect(f, t3, w3, 4);
    klc_feature_destroy(f);

    f = (klc_feature *)1;
    ck_assert_int_eq(klc_feature_regex("sea(", NULL, &f), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(f);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "offset 4"));

    ck_klc(klc_feature_length(NULL, &f));
    ck_assert_str_eq(klc_feature_name(f), "length");
    tbatch t;
    const char *t4[] = {"a", "b", "c"};
    tb_make(&t, t4, 3);
    t.lengths[1] = 0;
    t.b.texts = NULL; /* length needs no text */
    double out[3];
    ck_klc(klc_feature_score(f, &t.b, out));
    ck_assert(out[0] == 1 && out[1] == 0 && out[2] == 3);
    klc_feature_destroy(f);
}
END_TEST

START_TEST(test_batch_checks) {
    klc_feature *f = word("sea", 0);
    tbatch t;
    const char *texts[] = {"sea", "x"};
    tb_make(&t, texts, 2);
    double out[2];
    t.b.texts = NULL;
    ck_assert_int_eq(klc_feature_score(f, &t.b, out), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "feature 'word:sea'"));
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "texts is NULL"));
    tb_make(&t, texts, 2);
    t.b.struct_size = 8;
    ck_assert_int_eq(klc_feature_score(f, &t.b, out), KLC_ERR_INVALID_ARGUMENT);
    tb_make(&t, texts, 2);
    t.lengths[1] = STRIDE + 1;
    ck_assert_int_eq(klc_feature_score(f, &t.b, out), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "lengths[1]"));
    tb_make(&t, texts, 2);
    t.texts[1] = NULL;
    ck_assert_int_eq(klc_feature_score(f, &t.b, out), KLC_ERR_INVALID_ARGUMENT);
    t.tl[1] = 0; /* a NULL text of length 0 is an empty text */
    ck_klc(klc_feature_score(f, &t.b, out));
    ck_assert(out[0] == 1 && out[1] == 0);
    /* An empty batch needs no output buffer. */
    tb_make(&t, texts, 0);
    ck_klc(klc_feature_score(f, &t.b, NULL));
    klc_feature_destroy(f);
}
END_TEST

/* A user feature: dim 2, (length, sequence index), failing on request. */
typedef struct user_state {
    int releases, calls;
    int fail_with; /* returned by the next call when non-zero */
    int give_nan;
} user_state;

static int user_score(void *self, const klc_seq_batch *s, double *out) {
    user_state *u = self;
    u->calls++;
    if (u->fail_with) {
        int r = u->fail_with;
        u->fail_with = 0;
        return r;
    }
    for (int32_t i = 0; i < s->n; i++) {
        out[2 * i] = s->lengths[i];
        out[2 * i + 1] = u->give_nan && i == 1 ? NAN : (double)i;
    }
    return 0;
}

static void user_release(void *self) {
    ((user_state *)self)->releases++;
}

START_TEST(test_user_feature) {
    user_state u = {0};
    klc_feature_ops ops = {KLC_FEATURE_OPS_VERSION, "mine", 2, user_score, user_release};
    klc_feature *f = NULL;
    char name[8] = "mine";
    ops.name = name;
    ck_klc(klc_feature_create(&ops, &u, NULL, &f));
    /* The ops and the name were copied. */
    ops.dim = 5;
    name[0] = 'X';
    ck_assert_str_eq(klc_feature_name(f), "mine");
    ck_assert_int_eq(klc_feature_dim(f), 2);
    tbatch t;
    const char *texts[] = {"a", "b", "c"};
    tb_make(&t, texts, 3);
    double out[6];
    ck_klc(klc_feature_score(f, &t.b, out));
    ck_assert(out[0] == 1 && out[1] == 0 && out[2] == 2 && out[3] == 1 && out[5] == 2);

    u.fail_with = 42;
    ck_assert_int_eq(klc_feature_score(f, &t.b, out), KLC_ERR_CALLBACK);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "'mine'"));
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "42"));
    u.fail_with = -3; /* negative values are not passed through as klc statuses */
    ck_assert_int_eq(klc_feature_score(f, &t.b, out), KLC_ERR_CALLBACK);
    ck_klc(klc_feature_score(f, &t.b, out)); /* still usable */
    ck_assert(out[4] == 3);
    u.give_nan = 1;
    ck_assert_int_eq(klc_feature_score(f, &t.b, out), KLC_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(klc_last_error(), "sequence 1, dimension 1"));
    u.give_nan = 0;
    ck_assert_int_eq(u.releases, 0);
    klc_feature_destroy(f);
    ck_assert_int_eq(u.releases, 1);
    klc_feature_destroy(NULL);

    /* Invalid ops fail without calling release. */
    klc_feature_ops bad = {KLC_FEATURE_OPS_VERSION, "bad", 0, user_score, user_release};
    ck_assert_int_eq(klc_feature_create(&bad, &u, NULL, &f), KLC_ERR_INVALID_ARGUMENT);
    bad.dim = 1;
    bad.score_batch = NULL;
    ck_assert_int_eq(klc_feature_create(&bad, &u, NULL, &f), KLC_ERR_INVALID_ARGUMENT);
    bad.score_batch = user_score;
    bad.name = NULL;
    ck_assert_int_eq(klc_feature_create(&bad, &u, NULL, &f), KLC_ERR_INVALID_ARGUMENT);
    bad.name = "x";
    bad.version = 99;
    ck_assert_int_eq(klc_feature_create(&bad, &u, NULL, &f), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(f);
    ck_assert_int_eq(u.releases, 1);
    /* No release is fine, and the options' name overrides the ops' name. */
    bad.version = KLC_FEATURE_OPS_VERSION;
    bad.release = NULL;
    klc_feature_options o;
    klc_feature_options_init(&o, KLC_FEATURE_OPTIONS_VERSION);
    o.name = "renamed";
    ck_klc(klc_feature_create(&bad, &u, &o, &f));
    ck_assert_str_eq(klc_feature_name(f), "renamed");
    klc_feature_destroy(f);
    ck_assert_int_eq(u.releases, 1);
}
END_TEST

/* An allocator that counts, so that every built-in can be shown to free what it takes. */
typedef struct counting {
    long allocs, frees;
    size_t live;
} counting;

static void *c_alloc(void *ud, size_t size, size_t align) {
    counting *c = ud;
    c->allocs++;
    c->live += size;
    return aligned_alloc(align, (size + align - 1) / align * align);
}

static void c_free(void *ud, void *p, size_t size) {
    counting *c = ud;
    c->frees++;
    c->live -= size;
    free(p);
}

START_TEST(test_allocator_balance) {
    counting c = {0};
    klc_allocator a = {c_alloc, c_free, &c};
    klc_feature_options o;
    klc_feature_options_init(&o, KLC_FEATURE_OPTIONS_VERSION);
    o.allocator = &a;
    o.flags = KLC_FEATURE_CASELESS;
    klc_feature *fs[4] = {NULL};
    ck_klc(klc_feature_lexicon_file(LEX "afinn-111.tsv", &o, &fs[0]));
    ck_klc(klc_feature_regex("s[eé]a", &o, &fs[1]));
    ck_klc(klc_feature_length(&o, &fs[2]));
    o.flags = 0;
    ck_klc(klc_feature_name_list_file(LEX "female-first-names.txt", &o, &fs[3]));
    long after_create = c.allocs;
    ck_assert_int_gt(after_create, 4);
    const char *texts[] = {"ÉCOLE sea, good Mary", "bad", ""};
    tbatch t;
    tb_make(&t, texts, 3);
    double out[3];
    for (int k = 0; k < 4; k++) ck_klc(klc_feature_score(fs[k], &t.b, out));
    for (int k = 0; k < 4; k++) klc_feature_destroy(fs[k]);
    ck_assert_int_eq(c.allocs, c.frees);
    ck_assert_uint_eq(c.live, 0);
    /* A failed constructor frees everything too. */
    fs[0] = NULL;
    ck_assert_int_ne(klc_feature_regex("(", &o, &fs[0]), KLC_OK);
    ck_assert_int_ne(klc_feature_lexicon_file("/nonexistent", &o, &fs[0]), KLC_OK);
    ck_assert_int_eq(c.allocs, c.frees);
    ck_assert_uint_eq(c.live, 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("features");
    TCase *tc = tcase_create("features");
    tcase_add_test(tc, test_word_boundaries);
    tcase_add_test(tc, test_word_unicode);
    tcase_add_test(tc, test_phrases_and_punctuation);
    tcase_add_test(tc, test_lexicon_aggregation);
    tcase_add_test(tc, test_shipped_lexicons);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_name_list_rules);
    tcase_add_test(tc, test_regex_and_length);
    tcase_add_test(tc, test_batch_checks);
    tcase_add_test(tc, test_user_feature);
    tcase_add_test(tc, test_allocator_balance);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
