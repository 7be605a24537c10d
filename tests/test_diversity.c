/* The trainer's diversity and variance metrics: Distinct-n and Self-BLEU-n against values
 * worked out by hand and against a plain quadratic implementation written from the
 * definition (strings compared word by word, no hashing), and the gradient variance
 * against a computation that keeps every per-sample gradient. */
#include "testutil.h"
#include "sampler/batch.h"
#include "train/diversity.h"
#include "train/grad_variance.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- Texts as words, for the reference implementation ------------------------------------- */

enum { MAX_W = 64 };

typedef struct words {
    int n;
    const char *w[MAX_W];
    size_t len[MAX_W];
} words;

static int space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void split(const char *s, words *out) {
    out->n = 0;
    size_t i = 0, n = strlen(s);
    while (i < n) {
        while (i < n && space(s[i])) i++;
        if (i == n) break;
        size_t st = i;
        while (i < n && !space(s[i])) i++;
        ck_assert_int_lt(out->n, MAX_W);
        out->w[out->n] = s + st;
        out->len[out->n++] = i - st;
    }
}

/* Whether the k-grams of a at i and of b at j are the same words. */
static int same(const words *a, int i, const words *b, int j, int k) {
    for (int m = 0; m < k; m++)
        if (a->len[i + m] != b->len[j + m] || memcmp(a->w[i + m], b->w[j + m], a->len[i + m]))
            return 0;
    return 1;
}

/* Occurrences in b of a's k-gram at i. */
static int count_in(const words *a, int i, const words *b, int k) {
    int c = 0;
    for (int j = 0; j + k <= b->n; j++) c += same(a, i, b, j, k);
    return c;
}

/* NLTK's sentence_bleu(references = the others, hypothesis = text h, weights 1/N,
 * SmoothingFunction().method1), written as the definition reads. */
static double ref_bleu(const words *t, int n, int h, int N) {
    const words *hy = &t[h];
    double num[6] = {0}, den[6] = {0};
    for (int k = 1; k <= N; k++) {
        for (int i = 0; i + k <= hy->n; i++) {
            /* Count each distinct k-gram once, at its first occurrence. */
            int first = 1;
            for (int j = 0; j < i; j++) first &= !same(hy, i, hy, j, k);
            if (!first) continue;
            int c = count_in(hy, i, hy, k), ref = 0;
            for (int r = 0; r < n; r++) {
                if (r == h) continue;
                int cr = count_in(hy, i, &t[r], k);
                ref = cr > ref ? cr : ref;
            }
            num[k] += c < ref ? c : ref;
        }
        den[k] = hy->n - k + 1 > 0 ? hy->n - k + 1 : 1;
    }
    if (num[1] == 0) return 0;
    int r_best = -1;
    for (int r = 0; r < n; r++) {
        if (r == h) continue;
        int d = abs(t[r].n - hy->n), db = abs(r_best - hy->n);
        if (r_best < 0 || d < db || (d == db && t[r].n < r_best)) r_best = t[r].n;
    }
    double bp = hy->n > r_best ? 1 : exp(1 - (double)r_best / hy->n);
    double s = 0;
    for (int k = 1; k <= N; k++) s += log((num[k] > 0 ? num[k] : 0.1) / den[k]) / N;
    return bp * exp(s);
}

static void ref_self_bleu(const char *const *texts, int n, double out[3]) {
    words *t = malloc((size_t)n * sizeof *t);
    for (int i = 0; i < n; i++) split(texts[i], &t[i]);
    for (int N = 3; N <= 5; N++) {
        double s = 0;
        for (int h = 0; h < n; h++) s += ref_bleu(t, n, h, N);
        out[N - 3] = s / n;
    }
    free(t);
}

static void self_bleu(const char *const *texts, int n, double out[3]) {
    size_t *len = malloc((size_t)n * sizeof *len);
    for (int i = 0; i < n; i++) len[i] = strlen(texts[i]);
    klc_alloc_ctx a;
    klc_alloc_ctx_init(&a, NULL);
    ck_klc(tr_self_bleu(&a, n, texts, len, out));
    free(len);
}

#define ck_close(got, want, tol)                                                                   \
    ck_assert_msg(fabs((got) - (want)) <= (tol), "%s = %.15g, expected %.15g", #got,               \
                  (double)(got), (double)(want))

/* --- Self-BLEU ---------------------------------------------------------------------------- */

START_TEST(test_self_bleu_by_hand) {
    double b[3], r[3];
    /* Identical texts: every precision and the brevity penalty are 1. */
    const char *same3[] = {"a b c d e f", "a b c d e f", " a  b\tc d\ne f "};
    self_bleu(same3, 3, b);
    for (int k = 0; k < 3; k++) ck_close(b[k], 1.0, 1e-12);
    /* No word in common: 0. */
    const char *disjoint[] = {"a b c d e", "f g h i j", "k l m"};
    self_bleu(disjoint, 3, b);
    for (int k = 0; k < 3; k++) ck_close(b[k], 0.0, 0);
    /* "the cat sat on the mat" / "the cat sat on a mat": each against the other has
     * matches 5/6, 3/5, 2/4, 1/3 and 0/2 (smoothed to 0.1/2) for orders 1..5, equal
     * lengths (BP 1), the same both ways. */
    const char *cats[] = {"the cat sat on the mat", "the cat sat on a mat"};
    self_bleu(cats, 2, b);
    ck_close(b[0], cbrt(5.0 / 6 * 3.0 / 5 * 2.0 / 4), 1e-12);
    ck_close(b[1], pow(5.0 / 6 * 3.0 / 5 * 2.0 / 4 * 1.0 / 3, 0.25), 1e-12);
    ck_close(b[2], pow(5.0 / 6 * 3.0 / 5 * 2.0 / 4 * 1.0 / 3 * 0.05, 0.2), 1e-12);
    /* A short text: "a b" against "a b c d" has p1 = p2 = 1 and no trigram (0.1/1), and
     * BP exp(1 - 4/2); "a b c d" against "a b" has 2/4, 1/3, then 0.1/2, 0.1/1, 0.1/1 and
     * BP 1 (longer than its reference). */
    const char *shortt[] = {"a b", "a b c d"};
    self_bleu(shortt, 2, b);
    const double h0[3] = {exp(-1) * pow(0.1, 1.0 / 3), exp(-1) * pow(0.01, 0.25),
                          exp(-1) * pow(0.001, 0.2)};
    const double h1[3] = {cbrt(0.5 / 3 * 0.05), pow(0.5 / 3 * 0.05 * 0.1, 0.25),
                          pow(0.5 / 3 * 0.05 * 0.1 * 0.1, 0.2)};
    for (int k = 0; k < 3; k++) ck_close(b[k], (h0[k] + h1[k]) / 2, 1e-12);
    /* Empty and one-word texts count as 0 unless a word matches. */
    const char *tiny[] = {"", "x", "x", "  "};
    self_bleu(tiny, 4, b);
    ref_self_bleu(tiny, 4, r);
    for (int k = 0; k < 3; k++) ck_close(b[k], r[k], 1e-12);
    /* "x" against "x": p1 = 1, orders 2..N 0.1/1 each, BP 1; the empty ones 0. */
    ck_close(b[0], 2 * pow(0.01, 1.0 / 3) / 4, 1e-12);
    /* Fewer than two texts: no references. */
    self_bleu(tiny, 1, b);
    ck_assert(isnan(b[0]) && isnan(b[1]) && isnan(b[2]));
}
END_TEST

/* Leave-one-out reference counts: the text holding an n-gram's largest count must be
 * clipped by the second largest, ties included. */
START_TEST(test_self_bleu_leave_one_out) {
    const char *t[] = {"x x x y", "x x y", "x z", "x x x y"};
    double b[3], r[3];
    self_bleu(t, 4, b);
    ref_self_bleu(t, 4, r);
    for (int k = 0; k < 3; k++) ck_close(b[k], r[k], 1e-12);
    self_bleu(t, 3, b);
    ref_self_bleu(t, 3, r);
    for (int k = 0; k < 3; k++) ck_close(b[k], r[k], 1e-12);
}
END_TEST

/* Many texts over a five-word vocabulary (so n-grams repeat within and across texts),
 * empty ones and mixed white space included. */
START_TEST(test_self_bleu_random) {
    static const char *vocab[] = {"a", "bb", "c", "dd", "e"};
    static const char *seps[] = {" ", "  ", "\t", "\n "};
    enum { N = 60 };
    char buf[N][256];
    const char *texts[N];
    uint64_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int nw = (int)((s >> 33) % 14), pos = 0;
        buf[i][0] = 0;
        for (int w = 0; w < nw; w++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            pos += snprintf(buf[i] + pos, sizeof buf[i] - pos, "%s%s", seps[(s >> 20) % 4],
                            vocab[(s >> 40) % ((i % 3) + 3)]);
        }
        texts[i] = buf[i];
    }
    double b[3], r[3];
    self_bleu(texts, N, b);
    ref_self_bleu(texts, N, r);
    printf("Self-BLEU-3/4/5 of %d random texts: %.6f %.6f %.6f (reference %.6f %.6f %.6f)\n", N,
           b[0], b[1], b[2], r[0], r[1], r[2]);
    for (int k = 0; k < 3; k++) ck_close(b[k], r[k], 1e-12);
    ck_assert(b[0] > 0.1 && b[0] < 1); /* a case where the values are not degenerate */
}
END_TEST

/* --- Distinct-n --------------------------------------------------------------------------- */

static void distinct(const char *const *texts, int n, double out[3]) {
    klc_trainer t;
    tr_batch tb;
    memset(&t, 0, sizeof t);
    memset(&tb, 0, sizeof tb);
    size_t len[16], cap = 1;
    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++) {
        len[i] = strlen(texts[i]);
        cap = len[i] + 1 > cap ? len[i] + 1 : cap;
    }
    t.hashes = malloc(cap * sizeof(uint64_t));
    t.hash_cap = cap;
    tb.texts = (const char **)texts;
    tb.text_lengths = len;
    tr_distinct(&t, &tb, n, out);
    free(t.hashes);
}

START_TEST(test_distinct_exact) {
    double d[3];
    /* "a b a b": 2 of 4 words, 2 of 3 bigrams ("a b" twice), 2 of 2 trigrams. */
    const char *one[] = {"a b a b"};
    distinct(one, 1, d);
    ck_close(d[0], 0.5, 1e-15);
    ck_close(d[1], 2.0 / 3, 1e-15);
    ck_close(d[2], 1.0, 1e-15);
    /* With "x" (1 of 1 word, no bigram) and white space only (no word): the means are
     * over the texts that have n-grams of that order. */
    const char *mixed[] = {"a\tb\n a  b ", "x", " \t\n", ""};
    distinct(mixed, 4, d);
    ck_close(d[0], (0.5 + 1.0) / 2, 1e-15);
    ck_close(d[1], 2.0 / 3, 1e-15);
    ck_close(d[2], 1.0, 1e-15);
    /* Words differ by bytes, not by case or punctuation; repeated trigrams count once. */
    const char *t2[] = {"the The the, the the the", "p q r p q r p q r"};
    distinct(t2, 2, d);
    /* Text 1: words {the, The, the,} of 6 -> 3/6; bigrams 5: "the The", "The the,",
     * "the, the", "the the" x2 -> 4/5; trigrams 4, all different -> 4/4. Text 2: 3/9,
     * 3/8, 3/7. */
    ck_close(d[0], (3.0 / 6 + 3.0 / 9) / 2, 1e-15);
    ck_close(d[1], (4.0 / 5 + 3.0 / 8) / 2, 1e-15);
    ck_close(d[2], (4.0 / 4 + 3.0 / 7) / 2, 1e-15);
    /* No text at all. */
    distinct(one, 0, d);
    ck_assert(d[0] == 0 && d[1] == 0 && d[2] == 0);
}
END_TEST

/* --- Gradient variance -------------------------------------------------------------------- */

enum { GV_N = 6, GV_T = 6, GV_V = 7 };

typedef struct gv_case {
    klc_model *m;
    int32_t tok[GV_N * GV_T], len[GV_N];
    double logq[GV_N], reward[GV_N];
    klc_step_view v;
    klc_seqs seqs;
} gv_case;

static void gv_make(gv_case *c) {
    memset(c, 0, sizeof *c);
    c->m = tu_model(1, 16, 2, GV_V, GV_T, 0.3f, 5, NULL);
    static const int32_t lens[GV_N] = {6, 3, 5, 2, 6, 4};
    for (int i = 0; i < GV_N; i++) {
        c->len[i] = lens[i];
        for (int t = 0; t < GV_T; t++) c->tok[i * GV_T + t] = (i * 3 + t * 5 + i * t) % GV_V;
        c->reward[i] = (double)((i * 7) % 5) - 1.5;
    }
    c->seqs = (klc_seqs){GV_N, GV_T, c->tok, c->len, NULL, NULL};
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.seq_logprobs = c->logq;
    ck_klc(klc_model_score(c->m, &c->seqs, &fo));
    klc_step_view_init(&c->v, KLC_STEP_VIEW_VERSION);
    c->v.n_seq = GV_N;
    c->v.max_len = GV_T;
    c->v.tokens = c->tok;
    c->v.lengths = c->len;
    c->v.logq = c->logq;
    c->v.reward = c->reward;
    c->v.on_policy = 1;
    c->v.full_support = 1;
}

/* Every per-sample gradient kept: g_i from klc_objective_accumulate with mass 1 on
 * sequence i alone, then the covariance trace by the two-pass formula. */
static void gv_reference(gv_case *c, klc_objective *obj, int n, double *trace, double *mean_sq) {
    size_t np = 0;
    float *grads = klc_model_grads(c->m, &np);
    double *g = calloc((size_t)n * np, sizeof *g), *mean = calloc(np, sizeof *mean);
    for (int i = 0; i < n; i++) {
        double mass[GV_N] = {0};
        mass[i] = 1;
        klc_accumulate_options ao;
        klc_accumulate_options_init(&ao, KLC_ACCUMULATE_OPTIONS_VERSION);
        ao.mass = mass;
        ck_klc(klc_model_zero_grads(c->m));
        ck_klc(klc_objective_accumulate(obj, c->m, &c->v, &c->seqs, &ao));
        for (size_t k = 0; k < np; k++) {
            g[(size_t)i * np + k] = grads[k];
            mean[k] += grads[k] / n;
        }
    }
    double ss = 0, msq = 0;
    for (size_t k = 0; k < np; k++) {
        msq += mean[k] * mean[k];
        for (int i = 0; i < n; i++) {
            double d = g[(size_t)i * np + k] - mean[k];
            ss += d * d;
        }
    }
    *trace = ss / (n - 1);
    *mean_sq = msq;
    free(g);
    free(mean);
}

static void gv_check(int32_t kind, int32_t baseline, int token_mean, const char *name) {
    gv_case c;
    gv_make(&c);
    klc_objective_options oo;
    klc_objective_options_init(&oo, KLC_OBJECTIVE_OPTIONS_VERSION);
    oo.kind = kind;
    oo.baseline = baseline;
    oo.token_mean = token_mean;
    klc_objective *obj = NULL;
    ck_klc(klc_objective_builtin(&oo, &obj));
    size_t np = 0;
    klc_model_params(c.m, &np);
    klc_alloc_ctx a;
    klc_alloc_ctx_init(&a, NULL);
    tr_grad_var *gv = NULL;
    ck_klc(tr_grad_var_create(&a, np, GV_N, GV_T, &gv));
    for (int n = 2; n <= GV_N; n += GV_N - 2) {
        double tr = 0, ms = 0, tr_ref = 0, ms_ref = 0;
        ck_klc(tr_grad_variance(gv, obj, c.m, &c.v, &c.seqs, n, &tr, &ms));
        gv_reference(&c, obj, n, &tr_ref, &ms_ref);
        printf("%s, %d of %d samples: trace Cov %.6e (kept gradients: %.6e), ||mean||^2 %.6e "
               "(%.6e)\n",
               name, n, GV_N, tr, tr_ref, ms, ms_ref);
        ck_assert(tr_ref > 0);
        ck_assert_msg(fabs(tr - tr_ref) <= 1e-4 * tr_ref, "%s: %g vs %g", name, tr, tr_ref);
        ck_assert_msg(fabs(ms - ms_ref) <= 1e-4 * ms_ref + 1e-9, "%s: %g vs %g", name, ms, ms_ref);
    }
    /* The mean of all N per-sample gradients is the batch gradient. */
    double tr = 0, ms = 0;
    ck_klc(tr_grad_variance(gv, obj, c.m, &c.v, &c.seqs, GV_N, &tr, &ms));
    float *grads = klc_model_grads(c.m, &np);
    ck_klc(klc_model_zero_grads(c.m));
    ck_klc(klc_objective_accumulate(obj, c.m, &c.v, &c.seqs, NULL));
    double batch_sq = 0;
    for (size_t k = 0; k < np; k++) batch_sq += (double)grads[k] * grads[k];
    ck_assert_msg(fabs(batch_sq - ms) <= 1e-4 * batch_sq, "%s: ||batch grad||^2 %g vs %g", name,
                  batch_sq, ms);
    /* Refusals. */
    ck_assert_int_eq(tr_grad_variance(gv, obj, c.m, &c.v, &c.seqs, 1, &tr, &ms),
                     KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(tr_grad_variance(gv, obj, c.m, &c.v, &c.seqs, GV_N + 1, &tr, &ms),
                     KLC_ERR_INVALID_ARGUMENT);
    tr_grad_var_destroy(&a, gv);
    klc_objective_destroy(obj);
    klc_model_destroy(c.m);
}

START_TEST(test_grad_variance) {
    /* Leave-one-out: each coefficient depends on the whole batch. */
    gv_check(KLC_OBJECTIVE_REINFORCE, KLC_BASELINE_LEAVE_ONE_OUT, 0, "REINFORCE leave-one-out");
    /* Token-level, normalised by the batch's token count. */
    gv_check(KLC_OBJECTIVE_MLE, KLC_BASELINE_DEFAULT, 1, "MLE per token");
}
END_TEST

/* --- Through the trainer ------------------------------------------------------------------ */

typedef struct tsetup {
    klc_tokenizer *tok;
    klc_model *pi, *a;
    klc_objective *obj;
    klc_optimizer *opt;
    char *dir;
} tsetup;

/* A byte-level tokenizer (256 bytes + end-of-text = 257 ids) and an MLE trainer's handles. */
static void tsetup_make(tsetup *s) {
    memset(s, 0, sizeof s[0]);
    s->dir = tu_make_temp_dir("diversity");
    char path[512];
    snprintf(path, sizeof path, "%s/text.txt", s->dir);
    const char *text = "ab ab ba ab\n";
    ck_assert_int_eq(tu_write_file(path, text, strlen(text)), 0);
    const char *files[] = {path};
    klc_tokenizer_train_options to;
    klc_tokenizer_train_options_init(&to, KLC_TOKENIZER_TRAIN_OPTIONS_VERSION);
    to.vocab_size = 257;
    ck_klc(klc_tokenizer_train(files, 1, &to, &s->tok));
    ck_assert_int_eq(klc_tokenizer_vocab_size(s->tok), 257);
    s->a = tu_model(1, 16, 2, 257, 10, 0.02f, 3, NULL);
    /* A policy that mostly writes 'a', 'b' and spaces, so that texts share words. */
    ck_klc(klc_model_clone(s->a, &s->pi));
    klc_objective_options oo;
    klc_objective_options_init(&oo, KLC_OBJECTIVE_OPTIONS_VERSION);
    oo.kind = KLC_OBJECTIVE_MLE;
    ck_klc(klc_objective_builtin(&oo, &s->obj));
    klc_optimizer_options po;
    klc_optimizer_options_init(&po, KLC_OPTIMIZER_OPTIONS_VERSION);
    po.lr = 0.03;
    size_t n = 0;
    klc_model_params(s->pi, &n);
    ck_klc(klc_optimizer_create(&po, n, &s->opt));
    /* Teach the policy a little of the text so that its samples share words and
     * Self-BLEU is not trivially 0. */
    int32_t seqs_tok[2 * 10];
    int32_t lens[2] = {10, 10};
    const char *lines[2] = {"ab ba ab ", "ba ab ab "}; /* one token per byte */
    for (int i = 0; i < 2; i++) {
        size_t got = 0;
        seqs_tok[i * 10] = 256;
        ck_klc(klc_tokenizer_encode(s->tok, lines[i], strlen(lines[i]), 0, seqs_tok + i * 10 + 1, 9,
                                    &got));
        ck_assert_uint_eq(got, 9);
    }
    klc_seqs seqs = {2, 10, seqs_tok, lens, NULL, NULL};
    klc_step_view v;
    klc_step_view_init(&v, KLC_STEP_VIEW_VERSION);
    v.n_seq = 2;
    v.max_len = 10;
    for (int k = 0; k < 60; k++) {
        ck_klc(klc_model_zero_grads(s->pi));
        ck_klc(klc_objective_accumulate(s->obj, s->pi, &v, &seqs, NULL));
        ck_klc(klc_optimizer_step_model(s->opt, s->pi, NULL));
    }
}

static void tsetup_free(tsetup *s) {
    klc_optimizer_destroy(s->opt);
    klc_objective_destroy(s->obj);
    klc_model_destroy(s->pi);
    klc_model_destroy(s->a);
    klc_tokenizer_destroy(s->tok);
    tu_remove_tree(s->dir);
    free(s->dir);
}

static void options_v2(klc_trainer_options *o) {
    klc_trainer_options_init(o, KLC_TRAINER_OPTIONS_VERSION);
    o->batch_size = 8;
    o->max_len = 10;
    o->eos_id = 256;
    o->bos_id = 256;
    o->eval_samples = 0;
    o->seed = 3;
}

START_TEST(test_trainer_reports) {
    tsetup s;
    tsetup_make(&s);
    klc_trainer_options o;
    options_v2(&o);
    ck_assert_int_eq(o.diversity_samples, 500);
    ck_assert(o.diversity_top_p == 0.9 && o.grad_variance_samples == 32);
    o.diversity_period = 2;
    o.diversity_samples = 40;
    o.grad_variance_period = 3;
    o.grad_variance_samples = 5;
    klc_trainer *tr = NULL;
    ck_klc(klc_trainer_create(s.pi, s.a, NULL, s.obj, s.opt, s.tok, &o, &tr));
    klc_metrics *m = NULL;
    ck_klc(klc_metrics_create(NULL, &m));
    for (int step = 1; step <= 6; step++) {
        ck_klc(klc_trainer_step(tr, m));
        const double gv = klc_metrics_get(m, "grad_variance");
        const double d1 = klc_metrics_get(m, "diversity.distinct_1");
        const double b3 = klc_metrics_get(m, "diversity.self_bleu_3");
        ck_assert_int_eq(isnan(gv), step % 3 != 0);
        ck_assert_int_eq(isnan(d1), step % 2 != 0);
        if (step % 3 == 0) {
            ck_assert(gv > 0 && isfinite(klc_metrics_get(m, "grad_mean_sq_norm")));
        }
        if (step % 2 == 0) {
            /* The texts the trainer sampled, scored again by the reference. */
            const tr_batch *d = &tr->div;
            ck_assert_int_eq(d->b->n_seq, 40);
            char *texts[40];
            for (int i = 0; i < 40; i++) texts[i] = strndup(d->texts[i], d->text_lengths[i]);
            double r[3];
            ref_self_bleu((const char *const *)texts, 40, r);
            ck_close(b3, r[0], 1e-12);
            ck_close(klc_metrics_get(m, "diversity.self_bleu_5"), r[2], 1e-12);
            ck_assert(d1 > 0 && d1 <= 1);
            ck_assert_msg(b3 > 0.05, "self-BLEU-3 %g: the texts share too little", b3);
            if (step == 2)
                printf("trainer diversity: distinct-1 %.4f, self-BLEU-3 %.4f; first text '%s'\n",
                       d1, b3, texts[0]);
            for (int i = 0; i < 40; i++) free(texts[i]);
        }
    }
    klc_trainer_memory_info mi;
    mi.version = KLC_TRAINER_MEMORY_VERSION;
    ck_klc(klc_trainer_memory(tr, &mi));
    size_t np = 0;
    klc_model_params(s.pi, &np);
    ck_assert_uint_ge(mi.batch_bytes, np * sizeof(float) + tr->div.bytes);
    klc_trainer_destroy(tr);
    /* Bad values. */
    options_v2(&o);
    o.diversity_top_p = 0;
    ck_status(klc_trainer_create(s.pi, s.a, NULL, s.obj, s.opt, s.tok, &o, &tr),
              KLC_ERR_INVALID_ARGUMENT, "diversity_top_p");
    options_v2(&o);
    o.diversity_period = 1;
    ck_status(klc_trainer_create(s.pi, s.a, NULL, s.obj, s.opt, NULL, &o, &tr),
              KLC_ERR_INVALID_ARGUMENT, "needs a tokenizer");
    options_v2(&o);
    o.grad_variance_samples = 1;
    ck_status(klc_trainer_create(s.pi, s.a, NULL, s.obj, s.opt, s.tok, &o, &tr),
              KLC_ERR_INVALID_ARGUMENT, "grad_variance_samples");
    klc_metrics_destroy(m);
    tsetup_free(&s);
}
END_TEST

/* A version-1 options struct, exactly as large as version 1 was, is still accepted: the
 * appended fields take their defaults (no diversity, no gradient variance). */
START_TEST(test_options_v1) {
    tsetup s;
    tsetup_make(&s);
    const size_t v1 = tr_options_size(1);
    ck_assert_uint_lt(v1, sizeof(klc_trainer_options));
    /* Only v1 bytes exist: the library must neither write nor read past them (the
     * sanitizer build checks). Fields are set on a full copy, copied back. */
    klc_trainer_options *o = malloc(v1), full;
    ck_klc(klc_trainer_options_init(o, 1));
    memset(&full, 0xff, sizeof full);
    memcpy(&full, o, v1);
    ck_assert_int_eq(full.batch_size, 64);
    full.batch_size = 4;
    full.max_len = 10;
    full.eos_id = 256;
    full.bos_id = 256;
    full.eval_period = 1;
    full.eval_samples = 4;
    memcpy(o, &full, v1);
    klc_trainer *tr = NULL;
    ck_klc(klc_trainer_create(s.pi, s.a, NULL, s.obj, s.opt, s.tok, o, &tr));
    klc_metrics *m = NULL;
    ck_klc(klc_metrics_create(NULL, &m));
    ck_klc(klc_trainer_step(tr, m));
    ck_assert(isfinite(klc_metrics_get(m, "eval.distinct_1")));
    ck_assert(isnan(klc_metrics_get(m, "diversity.distinct_1")));
    ck_assert(isnan(klc_metrics_get(m, "grad_variance")));
    klc_metrics_destroy(m);
    klc_trainer_destroy(tr);
    free(o);
    tsetup_free(&s);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("diversity");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_self_bleu_by_hand);
    tcase_add_test(tc, test_self_bleu_leave_one_out);
    tcase_add_test(tc, test_self_bleu_random);
    tcase_add_test(tc, test_distinct_exact);
    tcase_add_test(tc, test_grad_variance);
    tcase_add_test(tc, test_trainer_reports);
    tcase_add_test(tc, test_options_v1);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return tu_run_suite(suite());
}
