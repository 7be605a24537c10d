/* The configuration layer: parsing, typed accessors, exact error messages and positions,
 * overrides, and the resolved configuration. */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config.h"
#include "testutil.h"

static char *dir;

/* Writes text to DIR/name and loads it; fails the test if it does not parse. */
static cfg *load_text(const char *name, const char *text) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
    char *err = NULL;
    cfg *c = cfg_load(path, &err);
    ck_assert_msg(c != NULL, "%s", err ? err : "");
    return c;
}

/* The error message with the directory prefix removed, so tests compare whole messages. */
static const char *msg(const cfg *c) {
    const char *e = cfg_error(c);
    ck_assert_msg(e != NULL, "no error recorded");
    size_t n = strlen(dir);
    return strncmp(e, dir, n) == 0 ? e + n + 1 : e;
}

static const char *const OPT_KEYS[] = {"lr", "beta1", "beta2", "weight_decay"};

/* A small reader: optimizer {lr, beta1, beta2, weight_decay}, steps, name. */
static void read_small(cfg *c, double *lr, int64_t *steps) {
    cfg_map root, opt;
    cfg_root(c, &root);
    cfg_section(&root, "optimizer", &opt);
    *lr = cfg_double(&opt, OPT_KEYS[0], 1e-3, 0, INFINITY, 0);
    cfg_double(&opt, OPT_KEYS[1], 0.9, 0, 1, CFG_HI_OPEN);
    cfg_double(&opt, OPT_KEYS[2], 0.999, 0, 1, CFG_HI_OPEN);
    cfg_double(&opt, OPT_KEYS[3], 0, 0, INFINITY, 0);
    cfg_end(&opt);
    *steps = cfg_int(&root, "steps", 100, 1, INT64_MAX);
    cfg_string(&root, "name", "run", 0);
    cfg_end(&root);
}

START_TEST(test_values_and_defaults) {
    cfg *c = load_text("a.yaml", "optimizer:\n  lr: 3e-4\nsteps: 1e3\n");
    double lr;
    int64_t steps;
    read_small(c, &lr, &steps);
    ck_assert_ptr_null(cfg_error(c));
    ck_assert(lr == 3e-4);
    ck_assert_int_eq(steps, 1000);
    cfg_free(c);
}
END_TEST

START_TEST(test_unknown_key_suggests) {
    cfg *c = load_text("a.yaml", "steps: 5\noptimizer:\n  lr: 0.1\n  lerning_rate: 0.2\n");
    double lr;
    int64_t steps;
    read_small(c, &lr, &steps);
    ck_assert_str_eq(msg(c), "a.yaml:4:3: unknown key 'lerning_rate' under 'optimizer' (valid: "
                             "lr, beta1, beta2, weight_decay; did you mean 'lr'?)");
    cfg_free(c);

    c = load_text("b.yaml", "optimizer:\n  beta_2: 0.99\n");
    read_small(c, &lr, &steps);
    ck_assert_str_eq(msg(c), "b.yaml:2:3: unknown key 'beta_2' under 'optimizer' (valid: lr, "
                             "beta1, beta2, weight_decay; did you mean 'beta2'?)");
    cfg_free(c);

    c = load_text("c.yaml", "stepz: 3\n");
    read_small(c, &lr, &steps);
    ck_assert_str_eq(msg(c), "c.yaml:1:1: unknown key 'stepz' at the top level (valid: "
                             "optimizer, steps, name; did you mean 'steps'?)");
    cfg_free(c);

    /* Nothing near: no suggestion. */
    c = load_text("d.yaml", "optimizer: {zzzzzz: 1}\n");
    read_small(c, &lr, &steps);
    ck_assert_str_eq(msg(c), "d.yaml:1:13: unknown key 'zzzzzz' under 'optimizer' (valid: lr, "
                             "beta1, beta2, weight_decay)");
    cfg_free(c);
}
END_TEST

START_TEST(test_types_and_ranges) {
    double lr;
    int64_t steps;
    cfg *c = load_text("a.yaml", "optimizer:\n  lr: fast\n");
    read_small(c, &lr, &steps);
    ck_assert_str_eq(msg(c), "a.yaml:2:7: 'optimizer.lr' must be a finite number, got 'fast'");
    ck_assert(lr == 1e-3); /* the default after an error */
    cfg_free(c);

    c = load_text("a.yaml", "optimizer:\n  beta2: 1\n");
    read_small(c, &lr, &steps);
    ck_assert_str_eq(msg(c),
                     "a.yaml:2:10: 'optimizer.beta2' = 1 is out of range: it must be in [0, 1)");
    cfg_free(c);

    c = load_text("a.yaml", "steps: 0\n");
    read_small(c, &lr, &steps);
    ck_assert_str_eq(msg(c), "a.yaml:1:8: 'steps' = 0 is out of range: it must be >= 1");
    cfg_free(c);

    c = load_text("a.yaml", "steps: 2.5\n");
    read_small(c, &lr, &steps);
    ck_assert_str_eq(msg(c), "a.yaml:1:8: 'steps' must be an integer, got '2.5'");
    cfg_free(c);

    c = load_text("a.yaml", "optimizer: [1, 2]\n");
    read_small(c, &lr, &steps);
    ck_assert_str_eq(msg(c), "a.yaml:1:12: 'optimizer' must be a mapping, got a list");
    cfg_free(c);

    c = load_text("a.yaml", "optimizer:\n  lr: {a: 1}\n");
    read_small(c, &lr, &steps);
    ck_assert_str_eq(msg(c), "a.yaml:2:7: 'optimizer.lr' must be a finite number, got a mapping");
    cfg_free(c);

    c = load_text("a.yaml", "optimizer:\n  lr: .nan\n");
    read_small(c, &lr, &steps);
    ck_assert_str_eq(msg(c), "a.yaml:2:7: 'optimizer.lr' must be a finite number, got '.nan'");
    cfg_free(c);
}
END_TEST

START_TEST(test_bool_enum_string) {
    static const char *const kinds[] = {"reinforce", "kl_control", "gdc", "gdcpp"};
    cfg *c = load_text("a.yaml", "kind: gdcc\nflag: yes\n");
    cfg_map root;
    cfg_root(c, &root);
    ck_assert_int_eq(cfg_enum(&root, "kind", kinds, 4, 3), 3);
    ck_assert_str_eq(msg(c), "a.yaml:1:7: 'kind' must be one of reinforce, kl_control, gdc, "
                             "gdcpp; got 'gdcc' (did you mean 'gdc'?)");
    cfg_free(c);

    c = load_text("a.yaml", "kind: kl_control\nflag: yes\n");
    cfg_root(c, &root);
    ck_assert_int_eq(cfg_enum(&root, "kind", kinds, 4, 3), 1);
    cfg_bool(&root, "flag", 0);
    ck_assert_str_eq(msg(c), "a.yaml:2:7: 'flag' must be true or false, got 'yes'");
    cfg_free(c);

    c = load_text("a.yaml", "flag: true\nword: \"sea\"\nnothing: ~\n");
    cfg_root(c, &root);
    ck_assert_int_eq(cfg_bool(&root, "flag", 0), 1);
    ck_assert_str_eq(cfg_string(&root, "word", NULL, 1), "sea");
    ck_assert_ptr_null(cfg_string(&root, "nothing", NULL, 0));
    ck_assert_int_eq(cfg_end(&root), 0);
    cfg_string(&root, "absent", NULL, 1);
    ck_assert_str_eq(msg(c), "a.yaml:1:1: missing key 'absent'");
    cfg_free(c);
}
END_TEST

START_TEST(test_paths) {
    char sub[4300];
    snprintf(sub, sizeof sub, "%s/lex", dir);
    ck_assert_int_eq(mkdir(sub, 0755) == 0 || errno == EEXIST, 1);
    char file[4400];
    snprintf(file, sizeof file, "%s/words.txt", sub);
    ck_assert_int_eq(tu_write_file(file, "a\n", 2), 0);

    cfg *c = load_text("p.yaml", "words: lex/words.txt\nmodel: lex\nfiles: [lex/words.txt]\n");
    cfg_map root;
    cfg_root(c, &root);
    char *want = realpath(file, NULL);
    ck_assert_str_eq(cfg_path(&root, "words", NULL, CFG_PATH_FILE, 1), want);
    int n;
    const char **files = cfg_strings(&root, "files", CFG_PATH_FILE, 1, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(files[0], want);
    cfg_path(&root, "model", NULL, CFG_PATH_FILE, 1);
    char expect[9000];
    snprintf(expect, sizeof expect, "p.yaml:2:8: 'model': '%s' is a directory, not a file", sub);
    ck_assert_str_eq(msg(c), expect);
    cfg_free(c);

    c = load_text("p.yaml", "\nwords: nowhere.txt\n");
    cfg_root(c, &root);
    cfg_path(&root, "words", NULL, CFG_PATH_FILE, 1);
    snprintf(expect, sizeof expect,
             "p.yaml:2:8: 'words': cannot open file '%s/nowhere.txt': No such file or directory",
             dir);
    ck_assert_str_eq(msg(c), expect);
    free(want);
    cfg_free(c);
}
END_TEST

START_TEST(test_lists_of_mappings) {
    cfg *c =
        load_text("l.yaml", "items:\n  - {kind: word, word: sea}\n  - kind: word\n    wrd: x\n");
    cfg_map root;
    cfg_root(c, &root);
    int n = cfg_list(&root, "items");
    ck_assert_int_eq(n, 2);
    for (int i = 0; i < n; i++) {
        cfg_map it;
        cfg_list_item(&root, "items", i, &it);
        cfg_string(&it, "kind", NULL, 1);
        snprintf(it.note, sizeof it.note, "for kind 'word'");
        cfg_string(&it, "word", NULL, 0);
        cfg_end(&it);
    }
    ck_assert_str_eq(msg(c), "l.yaml:4:5: unknown key 'wrd' under 'items[1]' for kind 'word' "
                             "(valid: kind, word; did you mean 'word'?)");
    cfg_free(c);
}
END_TEST

START_TEST(test_overrides) {
    double lr;
    int64_t steps;
    cfg *c = load_text("o.yaml", "optimizer:\n  lr: 0.1\n");
    ck_assert_int_eq(cfg_override(c, "optimizer.lr=0.5"), 0);
    ck_assert_int_eq(cfg_override(c, "steps=7"), 0);
    read_small(c, &lr, &steps);
    ck_assert_ptr_null(cfg_error(c));
    ck_assert(lr == 0.5);
    ck_assert_int_eq(steps, 7);
    cfg_free(c);

    /* A key that does not exist is named as the override's. */
    c = load_text("o.yaml", "optimizer:\n  lr: 0.1\n");
    ck_assert_int_eq(cfg_override(c, "optimizer.lerning_rate=0.5"), 0);
    read_small(c, &lr, &steps);
    ck_assert_str_eq(cfg_error(c), "-o 'optimizer.lerning_rate=0.5': unknown key 'lerning_rate' "
                                   "under 'optimizer' (valid: lr, beta1, beta2, weight_decay; "
                                   "did you mean 'lr'?)");
    cfg_free(c);

    c = load_text("o.yaml", "");
    ck_assert_int_eq(cfg_override(c, "optimizer.beta1=2"), 0);
    read_small(c, &lr, &steps);
    ck_assert_str_eq(cfg_error(c), "-o 'optimizer.beta1=2': 'optimizer.beta1' = 2 is out of "
                                   "range: it must be in [0, 1)");
    cfg_free(c);

    c = load_text("o.yaml", "steps: 3\n");
    ck_assert_int_eq(cfg_override(c, "steps.x=1"), -1);
    ck_assert_str_eq(cfg_error(c), "-o 'steps.x=1': 'steps' is a single value, not a mapping or "
                                   "a list");
    cfg_free(c);

    c = load_text("o.yaml", "");
    ck_assert_int_eq(cfg_override(c, "steps"), -1);
    ck_assert_str_eq(cfg_error(c), "-o 'steps': an override must have the form key.path=value");
    cfg_free(c);

    /* Lists: an index replaces an item's key. */
    c = load_text("o.yaml", "items:\n  - {word: sea}\n");
    ck_assert_int_eq(cfg_override(c, "items.0.word=ocean"), 0);
    ck_assert_int_eq(cfg_override(c, "items.3.word=x"), -1);
    ck_assert_str_eq(cfg_error(c), "-o 'items.3.word=x': 'items' is a list of 1 item: '3' is "
                                   "not an index of it");
    cfg_free(c);
    c = load_text("o.yaml", "items:\n  - {word: sea}\n");
    ck_assert_int_eq(cfg_override(c, "items.0.word=ocean"), 0);
    cfg_map root, it;
    cfg_root(c, &root);
    ck_assert_int_eq(cfg_list(&root, "items"), 1);
    cfg_list_item(&root, "items", 0, &it);
    ck_assert_str_eq(cfg_string(&it, "word", NULL, 1), "ocean");
    cfg_free(c);
}
END_TEST

START_TEST(test_syntax_errors) {
    char path[4300];
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    const char *text = "a: 1\nb: [1, 2\n";
    ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
    char *err = NULL;
    ck_assert_ptr_null(cfg_load(path, &err));
    ck_assert_msg(strstr(err, "bad.yaml:3:1: did not find expected ',' or ']'") != NULL, "%s", err);
    free(err);

    text = "a: 1\na: 2\n";
    ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
    ck_assert_ptr_null(cfg_load(path, &err));
    ck_assert_msg(strstr(err, "bad.yaml:2:1: duplicate key 'a' (first at line 1)") != NULL, "%s",
                  err);
    free(err);

    text = "- a\n- b\n";
    ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
    ck_assert_ptr_null(cfg_load(path, &err));
    ck_assert_msg(strstr(err, "bad.yaml:1:1: the configuration must be a mapping") != NULL, "%s",
                  err);
    free(err);

    snprintf(path, sizeof path, "%s/none.yaml", dir);
    ck_assert_ptr_null(cfg_load(path, &err));
    ck_assert_msg(strstr(err, "none.yaml: cannot open: No such file or directory") != NULL, "%s",
                  err);
    free(err);
}
END_TEST

/* The resolved configuration reads back as the same values. */
START_TEST(test_resolved_round_trip) {
    cfg *c = load_text("r.yaml", "optimizer:\n  lr: 0.1\nname: \"two words: yes\"\n"
                                 "items:\n  - {word: sea, n: 3}\n  - {word: 'true'}\n");
    double lr;
    int64_t steps;
    cfg_map root, it;
    cfg_root(c, &root);
    cfg_map opt;
    cfg_section(&root, "optimizer", &opt);
    lr = cfg_double(&opt, "lr", 1e-3, 0, INFINITY, 0);
    cfg_double(&opt, "beta1", 0.9, 0, 1, CFG_HI_OPEN);
    steps = cfg_int(&root, "steps", 100, 1, INT64_MAX);
    cfg_string(&root, "name", NULL, 0);
    int n = cfg_list(&root, "items");
    for (int i = 0; i < n; i++) {
        cfg_list_item(&root, "items", i, &it);
        cfg_string(&it, "word", NULL, 1);
        cfg_int(&it, "n", 1, 0, 10);
    }
    cfg_map empty;
    cfg_section(&root, "empty", &empty);
    ck_assert_ptr_null(cfg_error(c));
    char out[4300];
    snprintf(out, sizeof out, "%s/resolved.yaml", dir);
    FILE *f = fopen(out, "w");
    ck_assert_int_eq(cfg_write_resolved(c, f), 0);
    fclose(f);
    size_t size;
    char *text = tu_read_file(out, &size);
    ck_assert_str_eq(text, "# The resolved configuration: every key with the value the run used.\n"
                           "optimizer:\n"
                           "  lr: 0.1\n"
                           "  beta1: 0.9\n"
                           "steps: 100\n"
                           "name: \"two words: yes\"\n"
                           "items:\n"
                           "  - word: sea\n"
                           "    n: 3\n"
                           "  - word: \"true\"\n"
                           "    n: 1\n"
                           "empty: {}\n");
    free(text);
    cfg_free(c);

    char *err = NULL;
    c = cfg_load(out, &err);
    ck_assert_ptr_nonnull(c);
    cfg_root(c, &root);
    cfg_section(&root, "optimizer", &opt);
    ck_assert(cfg_double(&opt, "lr", 1, 0, 1, 0) == lr);
    ck_assert_int_eq(cfg_int(&root, "steps", 1, 1, 1000), steps);
    ck_assert_str_eq(cfg_string(&root, "name", NULL, 1), "two words: yes");
    cfg_list_item(&root, "items", 1, &it);
    ck_assert_str_eq(cfg_string(&it, "word", NULL, 1), "true");
    ck_assert_ptr_null(cfg_error(c));
    cfg_free(c);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("config");
    TCase *t = tcase_create("config");
    tcase_add_test(t, test_values_and_defaults);
    tcase_add_test(t, test_unknown_key_suggests);
    tcase_add_test(t, test_types_and_ranges);
    tcase_add_test(t, test_bool_enum_string);
    tcase_add_test(t, test_paths);
    tcase_add_test(t, test_lists_of_mappings);
    tcase_add_test(t, test_overrides);
    tcase_add_test(t, test_syntax_errors);
    tcase_add_test(t, test_resolved_round_trip);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    dir = tu_make_temp_dir("config");
    char *real = realpath(dir, NULL);
    free(dir);
    dir = real;
    int rc = tu_run_suite(suite());
    tu_remove_tree(dir);
    free(dir);
    return rc;
}
