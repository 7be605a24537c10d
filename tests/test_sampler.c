/* Batches and the sampler, against exact references: on a tiny vocabulary every sequence
 * of a few tokens is enumerated, so the distribution sampled from (plain, tempered, top-k,
 * top-p) is known exactly; recorded log-probabilities are checked against klc_model_score
 * and the enumeration, frequencies against the enumeration by a chi-square test. */
#include "core/internal.h"
#include "sampler/draw.h"
#include "sampler/select.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static klc_model *make_model(float std, uint64_t seed, int n_layer, int n_embd, int n_head, int V,
                             int n_ctx, const klc_allocator *a) {
    return tu_model(n_layer, n_embd, n_head, V, n_ctx, std, seed, a);
}

static klc_sampler *make_sampler(klc_model *m, int32_t max_rows, int32_t max_len,
                                 int32_t max_prompt_len, const klc_allocator *a) {
    klc_sampler_options o;
    ck_klc(klc_sampler_options_init(&o, KLC_SAMPLER_OPTIONS_VERSION));
    o.max_rows = max_rows;
    o.max_len = max_len;
    o.max_prompt_len = max_prompt_len;
    o.allocator = a;
    klc_sampler *s = NULL;
    ck_klc(klc_sampler_create(m, &o, &s));
    return s;
}

static klc_sample_options sample_opts(uint64_t seed, int32_t eos, int32_t bos, int32_t max_new) {
    klc_sample_options o;
    klc_sample_options_init(&o, KLC_SAMPLE_OPTIONS_VERSION);
    o.rng.seed = seed;
    o.eos_id = eos;
    o.bos_id = bos;
    o.max_new_tokens = max_new;
    return o;
}

/* ---- Exact enumeration ------------------------------------------------------------------ */

/* The sampling distribution over whole sequences of a tiny model: V tokens, token V-1 is
 * both the beginning and the end of text, at most N_NEW new tokens. A generated string is
 * coded as n * V^N_NEW + (its tokens in base V). */
enum { TV = 5, EOS = TV - 1, N_NEW = 3, N_CODES = (N_NEW + 1) * TV * TV * TV };

typedef struct rule {
    double temperature;
    int32_t top_k;
    double top_p;
} rule;

typedef struct enumeration {
    double prob[N_CODES]; /* probability of each outcome under the rule */
} enumeration;

static int32_t code_of(const int32_t *gen, int32_t n) {
    int32_t c = 0;
    for (int32_t t = 0; t < n; t++) c = c * TV + gen[t];
    return n * TV * TV * TV + c;
}

/* log p(v | prefix) for every v, from klc_model_score (the full forward, not decoding). */
static void next_logprobs(klc_model *m, const int32_t *prefix, int32_t len, double *out) {
    int32_t toks[TV * (N_NEW + 8)], lens[TV];
    const int32_t L = len + 1;
    for (int32_t v = 0; v < TV; v++) {
        memcpy(toks + v * L, prefix, sizeof(int32_t) * (size_t)len);
        toks[v * L + len] = v;
        lens[v] = L;
    }
    float lp[TV * (N_NEW + 8)];
    klc_seqs s = {TV, L, toks, lens, NULL, NULL};
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    o.token_logprobs = lp;
    ck_klc(klc_model_score(m, &s, &o));
    for (int32_t v = 0; v < TV; v++) out[v] = lp[v * L + len - 1];
}

/* The rule applied to one next-token distribution, in double, with the documented tie
 * order (larger probability first, then smaller id). Checks that no decision is within
 * 1e-4 of a boundary, so that float rounding in the library cannot flip it. */
static void apply_rule(const rule *r, const double *logp, double *q) {
    double y[TV], mx = -INFINITY;
    for (int v = 0; v < TV; v++) {
        y[v] = logp[v] / r->temperature;
        if (y[v] > mx) mx = y[v];
    }
    int order[TV];
    for (int v = 0; v < TV; v++) order[v] = v;
    for (int a = 0; a < TV; a++) /* selection sort: 5 elements */
        for (int b = a + 1; b < TV; b++)
            if (y[order[b]] > y[order[a]] || (y[order[b]] == y[order[a]] && order[b] < order[a])) {
                int t = order[a];
                order[a] = order[b];
                order[b] = t;
            }
    int keep = TV;
    if (r->top_k > 0 && r->top_k < TV) {
        keep = r->top_k;
        ck_assert_msg(y[order[keep - 1]] - y[order[keep]] > 1e-4, "top-k boundary too close");
    }
    double sum = 0;
    for (int a = 0; a < keep; a++) sum += exp(y[order[a]] - mx);
    if (r->top_p < 1.0) {
        double cum = 0;
        int n = 0;
        while (n < keep) {
            cum += exp(y[order[n]] - mx) / sum;
            n++;
            ck_assert_msg(fabs(cum - r->top_p) > 1e-4, "top-p boundary too close: %.6f", cum);
            if (cum >= r->top_p) break;
        }
        keep = n;
        sum = 0;
        for (int a = 0; a < keep; a++) sum += exp(y[order[a]] - mx);
    }
    for (int v = 0; v < TV; v++) q[v] = 0;
    for (int a = 0; a < keep; a++) q[order[a]] = exp(y[order[a]] - mx) / sum;
}

/* Depth-first over generated strings after `prompt`, multiplying the rule's conditionals. */
static void enumerate_from(klc_model *m, const rule *r, int32_t *seq, int32_t plen, int32_t n,
                           double p, enumeration *e) {
    double logp[TV], q[TV];
    next_logprobs(m, seq, plen + n, logp);
    apply_rule(r, logp, q);
    for (int32_t v = 0; v < TV; v++) {
        if (q[v] == 0) continue;
        seq[plen + n] = v;
        if (v == EOS || n + 1 == N_NEW)
            e->prob[code_of(seq + plen, n + 1)] += p * q[v];
        else
            enumerate_from(m, r, seq, plen, n + 1, p * q[v], e);
    }
}

static void enumerate(klc_model *m, const rule *r, const int32_t *prompt, int32_t plen,
                      enumeration *e) {
    memset(e, 0, sizeof *e);
    int32_t seq[16];
    memcpy(seq, prompt, sizeof(int32_t) * (size_t)plen);
    enumerate_from(m, r, seq, plen, 0, 1.0, e);
    double total = 0;
    for (int c = 0; c < N_CODES; c++) total += e->prob[c];
    ck_assert_msg(fabs(total - 1.0) < 1e-9, "enumeration sums to %.12f", total);
}

/* The 0.999 quantile of chi-square with df degrees of freedom, by the Wilson-Hilferty
 * approximation (18.72 for df = 4 against the exact 18.47; closer for larger df). */
static double chi2_q999(int df) {
    const double z = 3.0902, a = 2.0 / (9.0 * df);
    const double c = 1.0 - a + z * sqrt(a);
    return df * c * c * c;
}

/* Pearson's statistic over the cells with expected count >= 5, the others pooled. Fails
 * if an outcome of probability 0 occurred. */
static double chi_square(const enumeration *e, const long *count, long N, int *df) {
    double stat = 0, pool_e = 0;
    long pool_o = 0;
    int cells = 0;
    for (int c = 0; c < N_CODES; c++) {
        if (e->prob[c] == 0) {
            ck_assert_msg(count[c] == 0, "outcome %d of probability 0 sampled %ld times", c,
                          count[c]);
            continue;
        }
        const double E = e->prob[c] * N;
        if (E < 5) {
            pool_e += E;
            pool_o += count[c];
            continue;
        }
        stat += (count[c] - E) * (count[c] - E) / E;
        cells++;
    }
    if (pool_e > 0) {
        stat += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
        cells++;
    }
    *df = cells - 1;
    return stat;
}

/* ---- Batches ------------------------------------------------------------------------------ */

typedef struct counting {
    size_t calls, live;
} counting;
static void *c_alloc(void *ud, size_t size, size_t al) {
    ((counting *)ud)->calls++;
    ((counting *)ud)->live++;
    return aligned_alloc(al, (size + al - 1) / al * al);
}
static void c_free(void *ud, void *p, size_t size) {
    ((counting *)ud)->live--;
    free(p);
}

START_TEST(batch_fill_views_and_errors) {
    counting cnt = {0, 0};
    klc_allocator a = {c_alloc, c_free, &cnt};
    klc_batch *b = NULL;
    ck_klc(klc_batch_create(4, 6, 2, &a, &b));
    ck_assert_uint_gt(cnt.calls, 0);
    ck_assert_int_eq(klc_batch_size(b), 0);
    ck_assert_int_eq(klc_batch_capacity(b), 4);
    ck_assert_int_eq(klc_batch_max_len(b), 6);
    ck_assert_int_eq(klc_batch_n_features(b), 2);
    int32_t toks[3 * 5] = {7, 1, 2, 3, 4, 7, 9, 0, 0, 0, 7, 5, 5, 0, 0};
    int32_t lens[3] = {5, 2, 3}, from[3] = {1, 2, 2}, ctx[3] = {0, 3, 1};
    int64_t ids[3] = {40, 41, 42};
    klc_seqs s = {3, 5, toks, lens, from, ids};
    ck_klc(klc_batch_fill(b, &s, ctx));
    ck_assert_int_eq(klc_batch_size(b), 3);
    ck_assert_uint_eq(klc_batch_flags(b), 0);
    for (int i = 0; i < 3; i++) {
        for (int t = 0; t < lens[i]; t++)
            ck_assert_int_eq(klc_batch_tokens(b)[i * 6 + t], toks[i * 5 + t]);
        ck_assert_int_eq(klc_batch_lengths(b)[i], lens[i]);
        ck_assert_int_eq(klc_batch_prompt_lengths(b)[i], from[i]);
        ck_assert_int_eq(klc_batch_context_ids(b)[i], ctx[i]);
        ck_assert_int_eq(klc_batch_sample_ids(b)[i], ids[i]);
        ck_assert_uint_eq(klc_batch_seq_flags(b)[i], 0);
        ck_assert(isnan(klc_batch_logq(b)[i]) && isnan(klc_batch_loga(b)[i]));
        ck_assert(isnan(klc_batch_logpi(b)[i]) && isnan(klc_batch_logP(b)[i]));
        ck_assert(isnan(klc_batch_phi(b)[2 * i]) && isnan(klc_batch_phi(b)[2 * i + 1]));
        for (int t = 0; t < 6; t++) ck_assert(klc_batch_logq_tok(b)[i * 6 + t] == 0.0f);
    }
    klc_seqs view;
    ck_klc(klc_batch_seqs(b, &view));
    ck_assert_int_eq(view.n_seq, 3);
    ck_assert_int_eq(view.max_len, 6);
    ck_assert_ptr_eq(view.tokens, klc_batch_tokens(b));
    ck_assert_ptr_eq(view.score_from, klc_batch_prompt_lengths(b));
    ck_assert_ptr_eq(view.sample_ids, klc_batch_sample_ids(b));
    /* Defaults: prompt length 1, sample ids 0.., context 0. */
    klc_seqs plain = {2, 5, toks, lens, NULL, NULL};
    ck_klc(klc_batch_fill(b, &plain, NULL));
    ck_assert_int_eq(klc_batch_prompt_lengths(b)[1], 1);
    ck_assert_int_eq(klc_batch_sample_ids(b)[1], 1);
    ck_assert_int_eq(klc_batch_context_ids(b)[1], 0);
    ck_klc(klc_batch_set_flags(b, KLC_BATCH_HAS_LOGPI));
    ck_assert_uint_eq(klc_batch_flags(b), KLC_BATCH_HAS_LOGPI);

    /* Errors leave the batch unchanged. */
    const int32_t before = klc_batch_tokens(b)[0];
    int32_t long_lens[3] = {5, 7, 3};
    klc_seqs bad = {3, 8, toks, long_lens, NULL, NULL};
    ck_assert_int_eq(klc_batch_fill(b, &bad, NULL), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(klc_last_error(), "sequence 1: length 7") != NULL, "%s", klc_last_error());
    int32_t bad_from[3] = {1, 3, 1};
    klc_seqs bad2 = {3, 5, toks, lens, bad_from, NULL};
    ck_assert_int_eq(klc_batch_fill(b, &bad2, NULL), KLC_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(klc_last_error(), "prompt length") != NULL);
    toks[11] = -3;
    ck_assert_int_eq(klc_batch_fill(b, &s, NULL), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(klc_last_error(), "sequence 2, position 1: token id -3") != NULL, "%s",
                  klc_last_error());
    toks[11] = 5;
    klc_seqs too_many = {5, 5, toks, lens, NULL, NULL};
    ck_assert_int_eq(klc_batch_fill(b, &too_many, NULL), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(klc_batch_size(b), 2);
    ck_assert_int_eq(klc_batch_tokens(b)[0], before);
    ck_assert_uint_eq(klc_batch_flags(b), KLC_BATCH_HAS_LOGPI);

    ck_klc(klc_batch_clear(b));
    ck_assert_int_eq(klc_batch_size(b), 0);
    klc_batch *x = (klc_batch *)1;
    ck_assert_int_eq(klc_batch_create(0, 4, 0, NULL, &x), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(x);
    ck_assert_ptr_null(klc_batch_logq(NULL));
    ck_assert_int_lt(klc_batch_size(NULL), 0);
    klc_batch_destroy(b);
    klc_batch_destroy(NULL);
    ck_assert_uint_eq(cnt.live, 0);
}
END_TEST

/* ---- (a) log q against klc_model_score ---------------------------------------------------- */

START_TEST(full_support_logq_matches_score) {
    const int V = 50, T = 14;
    klc_model *m = make_model(0.3f, 4, 2, 32, 4, V, 16, NULL);
    klc_sampler *s = make_sampler(m, 5, T, 4, NULL);
    klc_batch *b;
    ck_klc(klc_batch_create(12, T, 0, NULL, &b));
    int32_t ctx_tok[3 * 4] = {3, 0, 0, 0, 10, 11, 12, 13, 7, 8, 0, 0};
    int32_t ctx_len[3] = {1, 4, 2};
    klc_seqs contexts = {3, 4, ctx_tok, ctx_len, NULL, NULL};
    for (int with_ctx = 0; with_ctx < 2; with_ctx++) {
        klc_sample_options o = sample_opts(9, 1, 0, 0);
        if (with_ctx) o.contexts = &contexts;
        ck_klc(klc_sampler_sample(s, &o, 12, b));
        ck_assert_uint_eq(klc_batch_flags(b), KLC_BATCH_HAS_LOGQ | KLC_BATCH_FULL_SUPPORT);
        klc_seqs view;
        ck_klc(klc_batch_seqs(b, &view));
        double lp[12];
        float *tok_lp = calloc((size_t)(12 * T), sizeof(float));
        klc_forward_options fo;
        klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
        fo.seq_logprobs = lp;
        fo.token_logprobs = tok_lp;
        ck_klc(klc_model_score(m, &view, &fo));
        const int32_t *len = klc_batch_lengths(b), *pl = klc_batch_prompt_lengths(b);
        int generated = 0;
        for (int i = 0; i < 12; i++) {
            ck_assert_msg(fabs(klc_batch_logq(b)[i] - lp[i]) < 1e-5,
                          "ctx %d seq %d: log q %.8f, score %.8f", with_ctx, i,
                          klc_batch_logq(b)[i], lp[i]);
            double sum = 0;
            for (int t = 0; t < T; t++) {
                const float q = klc_batch_logq_tok(b)[i * T + t];
                if (t + 1 >= pl[i] && t + 1 < len[i]) {
                    ck_assert(fabsf(q - tok_lp[i * T + t]) < 1e-5f);
                    sum += q;
                } else {
                    ck_assert(q == 0.0f); /* prompt and padding are not scored */
                }
            }
            ck_assert(fabs(sum - klc_batch_logq(b)[i]) < 1e-5);
            generated += len[i] - pl[i];
        }
        ck_assert_int_gt(generated, 12 * 3); /* the test exercised real sequences */
        free(tok_lp);
    }
    klc_batch_destroy(b);
    klc_sampler_destroy(s);
    klc_model_destroy(m);
}
END_TEST

/* ---- (b) frequencies against the enumeration ----------------------------------------------- */

static void check_rule(klc_model *m, klc_sampler *s, klc_batch *b, const rule *r, uint64_t seed) {
    enumeration e;
    const int32_t bos = EOS;
    enumerate(m, r, &bos, 1, &e);
    const long N = 20000, per_call = 5000;
    long *count = calloc(N_CODES, sizeof(long));
    for (long first = 0; first < N; first += per_call) {
        klc_sample_options o = sample_opts(seed, EOS, EOS, N_NEW);
        o.temperature = r->temperature;
        o.top_k = r->top_k;
        o.top_p = r->top_p;
        o.first_sample = first;
        ck_klc(klc_sampler_sample(s, &o, (int32_t)per_call, b));
        const int full = r->temperature == 1.0 && r->top_k == 0 && r->top_p == 1.0;
        ck_assert_uint_eq(klc_batch_flags(b),
                          KLC_BATCH_HAS_LOGQ | (full ? KLC_BATCH_FULL_SUPPORT : 0));
        const int32_t ml = klc_batch_max_len(b);
        for (int i = 0; i < per_call; i++) {
            const int32_t *tok = klc_batch_tokens(b) + i * ml;
            const int32_t n = klc_batch_lengths(b)[i] - 1;
            ck_assert_int_eq(klc_batch_prompt_lengths(b)[i], 1);
            ck_assert_int_eq(tok[0], bos);
            const int c = code_of(tok + 1, n);
            count[c]++;
            /* The recorded log q is the log of the enumerated probability. The two come from
             * different float products (decoding's kernels against the full forward's),
             * each token's log-probability within a few 1e-6, scaled by 1/temperature and
             * summed over up to N_NEW tokens. */
            ck_assert_msg(e.prob[c] > 0 && fabs(klc_batch_logq(b)[i] - log(e.prob[c])) < 3e-5,
                          "T %.2f k %d p %.2f: sequence %d: log q %.8f, enumerated %.8f",
                          r->temperature, r->top_k, r->top_p, i, klc_batch_logq(b)[i],
                          log(e.prob[c]));
        }
    }
    int df;
    const double stat = chi_square(&e, count, N, &df);
    ck_assert_int_ge(df, 3);
    ck_assert_msg(stat < chi2_q999(df),
                  "T %.2f k %d p %.2f: chi-square %.2f with %d df (0.999 "
                  "quantile %.2f)",
                  r->temperature, r->top_k, r->top_p, stat, df, chi2_q999(df));
    free(count);
}

START_TEST(frequencies_match_enumeration) {
    klc_model *m = make_model(0.6f, 12, 1, 16, 2, TV, 8, NULL);
    klc_sampler *s = make_sampler(m, 256, 1 + N_NEW, 1, NULL);
    klc_batch *b;
    ck_klc(klc_batch_create(5000, 1 + N_NEW, 0, NULL, &b));
    /* Statistic at a fixed seed against the 0.999 quantile: a correct sampler fails one
     * configuration in a thousand seeds; a wrong distribution (a missing renormalisation,
     * an off-by-one in the truncation) gives statistics in the hundreds. */
    const rule rules[] = {
        {1.0, 0, 1.0}, {0.7, 0, 1.0}, {1.0, 2, 1.0}, {1.0, 0, 0.75}, {0.8, 3, 0.9}};
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++) check_rule(m, s, b, &rules[k], 5);
    klc_batch_destroy(b);
    klc_sampler_destroy(s);
    klc_model_destroy(m);
}
END_TEST

/* A wrong distribution is caught: samples at temperature 1 against the enumeration at
 * temperature 0.9 exceed the threshold (the test has power, not only a threshold). */
START_TEST(chi_square_detects_a_wrong_distribution) {
    klc_model *m = make_model(0.6f, 12, 1, 16, 2, TV, 8, NULL);
    klc_sampler *s = make_sampler(m, 256, 1 + N_NEW, 1, NULL);
    klc_batch *b;
    ck_klc(klc_batch_create(20000, 1 + N_NEW, 0, NULL, &b));
    enumeration e;
    const int32_t bos = EOS;
    const rule wrong = {0.9, 0, 1.0};
    enumerate(m, &wrong, &bos, 1, &e);
    klc_sample_options o = sample_opts(5, EOS, EOS, N_NEW);
    ck_klc(klc_sampler_sample(s, &o, 20000, b));
    long *count = calloc(N_CODES, sizeof(long));
    for (int i = 0; i < 20000; i++)
        count[code_of(klc_batch_tokens(b) + i * (1 + N_NEW) + 1, klc_batch_lengths(b)[i] - 1)]++;
    int df;
    const double stat = chi_square(&e, count, 20000, &df);
    ck_assert_msg(stat > 2 * chi2_q999(df), "chi-square %.2f with %d df", stat, df);
    free(count);
    klc_batch_destroy(b);
    klc_sampler_destroy(s);
    klc_model_destroy(m);
}
END_TEST

/* ---- (c) end of text and truncation ------------------------------------------------------- */

START_TEST(eos_and_truncation) {
    klc_model *m = make_model(0.6f, 12, 1, 16, 2, TV, 8, NULL);
    klc_sampler *s = make_sampler(m, 16, 6, 2, NULL);
    klc_batch *b;
    ck_klc(klc_batch_create(400, 8, 0, NULL, &b));
    klc_sample_options o = sample_opts(3, EOS, EOS, N_NEW);
    ck_klc(klc_sampler_sample(s, &o, 400, b));
    int n_eos = 0, n_trunc = 0;
    for (int i = 0; i < 400; i++) {
        const int32_t *tok = klc_batch_tokens(b) + i * 8, len = klc_batch_lengths(b)[i];
        const uint32_t f = klc_batch_seq_flags(b)[i];
        ck_assert(len >= 2 && len <= 1 + N_NEW);
        for (int t = 1; t < len - 1; t++) ck_assert_int_ne(tok[t], EOS); /* stops at the first */
        if (tok[len - 1] == EOS) {
            ck_assert_uint_eq(f, 0);
            n_eos++;
        } else {
            ck_assert_int_eq(len, 1 + N_NEW);
            ck_assert_uint_eq(f, KLC_SEQ_TRUNCATED);
            n_trunc++;
        }
        for (int t = len; t < 8; t++) ck_assert_int_eq(tok[t], 0);
    }
    ck_assert(n_eos > 20 && n_trunc > 20);

    /* No end-of-text token: every sequence runs to its limit and is truncated, here the
     * sampler's max_len 6 (max_new_tokens 0: no other limit). */
    o.eos_id = -1;
    o.max_new_tokens = 0;
    ck_klc(klc_sampler_sample(s, &o, 50, b));
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(klc_batch_lengths(b)[i], 6);
        ck_assert_uint_eq(klc_batch_seq_flags(b)[i], KLC_SEQ_TRUNCATED);
    }
    /* A batch with shorter rows than the sampler limits the length too. */
    klc_batch *small;
    ck_klc(klc_batch_create(10, 3, 0, NULL, &small));
    ck_klc(klc_sampler_sample(s, &o, 10, small));
    for (int i = 0; i < 10; i++) ck_assert_int_eq(klc_batch_lengths(small)[i], 3);
    /* One new token: the prefill's logits alone, no decoding. */
    o.max_new_tokens = 1;
    o.eos_id = EOS;
    ck_klc(klc_sampler_sample(s, &o, 10, small));
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(klc_batch_lengths(small)[i], 2);
        const int is_eos = klc_batch_tokens(small)[i * 3 + 1] == EOS;
        ck_assert_uint_eq(klc_batch_seq_flags(small)[i], is_eos ? 0 : KLC_SEQ_TRUNCATED);
    }
    klc_batch_destroy(small);
    klc_batch_destroy(b);
    klc_sampler_destroy(s);
    klc_model_destroy(m);
}
END_TEST

/* ---- (d) micro-batching and row batching -------------------------------------------------- */

static void assert_same_sequences(klc_batch *a, int32_t ia, klc_batch *b, int32_t ib, int32_t n,
                                  int exact_logq) {
    const int32_t ml = klc_batch_max_len(a);
    ck_assert_int_eq(ml, klc_batch_max_len(b));
    for (int32_t k = 0; k < n; k++) {
        const int32_t i = ia + k, j = ib + k;
        ck_assert_int_eq(klc_batch_lengths(a)[i], klc_batch_lengths(b)[j]);
        ck_assert_int_eq(klc_batch_prompt_lengths(a)[i], klc_batch_prompt_lengths(b)[j]);
        ck_assert_int_eq(klc_batch_context_ids(a)[i], klc_batch_context_ids(b)[j]);
        ck_assert_int_eq(klc_batch_sample_ids(a)[i], klc_batch_sample_ids(b)[j]);
        ck_assert_uint_eq(klc_batch_seq_flags(a)[i], klc_batch_seq_flags(b)[j]);
        ck_assert_msg(memcmp(klc_batch_tokens(a) + i * ml, klc_batch_tokens(b) + j * ml,
                             sizeof(int32_t) * (size_t)ml) == 0,
                      "sequence %d differs", k);
        const double qa = klc_batch_logq(a)[i], qb = klc_batch_logq(b)[j];
        if (exact_logq)
            ck_assert(memcmp(&qa, &qb, sizeof qa) == 0);
        else
            ck_assert_msg(fabs(qa - qb) < 1e-5, "sequence %d: log q %.9f vs %.9f", k, qa, qb);
    }
}

START_TEST(grouping_does_not_change_the_sequences) {
    const int V = 8, T = 20;
    klc_model *m = make_model(0.25f, 7, 2, 32, 4, V, 32, NULL);
    klc_sampler *s8 = make_sampler(m, 8, T, 3, NULL), *s3 = make_sampler(m, 3, T, 3, NULL);
    klc_sampler *s1 = make_sampler(m, 1, T, 3, NULL);
    klc_batch *all, *again, *half, *rows3, *rows1;
    ck_klc(klc_batch_create(8, T, 0, NULL, &all));
    ck_klc(klc_batch_create(8, T, 0, NULL, &again));
    ck_klc(klc_batch_create(4, T, 0, NULL, &half));
    ck_klc(klc_batch_create(8, T, 0, NULL, &rows3));
    ck_klc(klc_batch_create(8, T, 0, NULL, &rows1));
    int32_t ctx_tok[2 * 3] = {5, 6, 7, 3, 0, 0};
    int32_t ctx_len[2] = {3, 1};
    klc_seqs contexts = {2, 3, ctx_tok, ctx_len, NULL, NULL};
    const rule rules[] = {{1.0, 0, 1.0}, {0.8, 4, 1.0}, {1.3, 0, 0.9}};
    for (int k = 0; k < 3; k++) {
        klc_sample_options o = sample_opts(11, 2, 0, 0);
        o.rng.step = 4;
        o.temperature = rules[k].temperature;
        o.top_k = rules[k].top_k;
        o.top_p = rules[k].top_p;
        o.contexts = k == 2 ? &contexts : NULL;
        o.first_sample = 100;
        ck_klc(klc_sampler_sample(s8, &o, 8, all));
        /* Sequences end at different times, so rows are dropped along the way. */
        int shortest = T, longest = 0;
        for (int i = 0; i < 8; i++) {
            const int len = klc_batch_lengths(all)[i];
            shortest = len < shortest ? len : shortest;
            longest = len > longest ? len : longest;
        }
        ck_assert_msg(shortest < longest, "rule %d: every sequence has length %d", k, longest);
        /* The same call again repeats bit for bit, log q included. */
        ck_klc(klc_sampler_sample(s8, &o, 8, again));
        assert_same_sequences(all, 0, again, 0, 8, 1);
        /* Two calls of four with their first global indices. */
        ck_klc(klc_sampler_sample(s8, &o, 4, half));
        assert_same_sequences(all, 0, half, 0, 4, 0);
        o.first_sample = 104;
        ck_klc(klc_sampler_sample(s8, &o, 4, half));
        assert_same_sequences(all, 4, half, 0, 4, 0);
        /* Other row batchings: rounds of 3 and of 1 (matrix-vector decoding). */
        o.first_sample = 100;
        ck_klc(klc_sampler_sample(s3, &o, 8, rows3));
        assert_same_sequences(all, 0, rows3, 0, 8, 0);
        ck_klc(klc_sampler_sample(s1, &o, 8, rows1));
        assert_same_sequences(all, 0, rows1, 0, 8, 0);
        /* Another step draws other numbers. */
        o.rng.step = 5;
        ck_klc(klc_sampler_sample(s8, &o, 8, again));
        int differ = 0;
        for (int i = 0; i < 8; i++)
            differ |= memcmp(klc_batch_tokens(all) + i * T, klc_batch_tokens(again) + i * T,
                             sizeof(int32_t) * T) != 0;
        ck_assert(differ);
    }
    klc_batch_destroy(all);
    klc_batch_destroy(again);
    klc_batch_destroy(half);
    klc_batch_destroy(rows3);
    klc_batch_destroy(rows1);
    klc_sampler_destroy(s8);
    klc_sampler_destroy(s3);
    klc_sampler_destroy(s1);
    klc_model_destroy(m);
}
END_TEST

/* ---- (e) contexts ------------------------------------------------------------------------- */

START_TEST(contexts_and_prompts) {
    const int V = 40, T = 12;
    klc_model *m = make_model(0.3f, 2, 1, 16, 2, V, 16, NULL);
    klc_sampler *s = make_sampler(m, 4, T, 4, NULL);
    klc_batch *b;
    ck_klc(klc_batch_create(7, T, 0, NULL, &b));
    int32_t ctx_tok[3 * 4] = {1, 0, 0, 0, 20, 21, 22, 0, 30, 31, 0, 0};
    int32_t ctx_len[3] = {1, 3, 2};
    klc_seqs contexts = {3, 4, ctx_tok, ctx_len, NULL, NULL};
    klc_sample_options o = sample_opts(1, 0, 0, 5);
    o.contexts = &contexts;
    o.first_sample = 5;
    const int32_t explicit_ids[7] = {2, 2, 0, 1, 0, 2, 1};
    for (int mode = 0; mode < 3; mode++) {
        o.context_ids = mode == 1 ? explicit_ids : NULL;
        contexts.n_seq = mode == 2 ? 1 : 3; /* mode 2: one fixed prefix */
        ck_klc(klc_sampler_sample(s, &o, 7, b));
        klc_seqs view;
        ck_klc(klc_batch_seqs(b, &view));
        double lp[7];
        klc_forward_options fo;
        klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
        fo.seq_logprobs = lp;
        ck_klc(klc_model_score(m, &view, &fo));
        for (int i = 0; i < 7; i++) {
            const int want = mode == 1 ? explicit_ids[i] : mode == 2 ? 0 : (5 + i) % 3;
            ck_assert_int_eq(klc_batch_context_ids(b)[i], want);
            ck_assert_int_eq(klc_batch_sample_ids(b)[i], 5 + i);
            const int32_t pl = klc_batch_prompt_lengths(b)[i];
            ck_assert_int_eq(pl, ctx_len[want]);
            ck_assert_int_eq(memcmp(klc_batch_tokens(b) + i * T, ctx_tok + want * 4,
                                    sizeof(int32_t) * (size_t)pl),
                             0);
            const int32_t len = klc_batch_lengths(b)[i];
            ck_assert(len > pl && len <= pl + 5);
            /* log q sums the generated positions only, as the score from the prompt does. */
            ck_assert_msg(fabs(klc_batch_logq(b)[i] - lp[i]) < 1e-5, "%.8f vs %.8f",
                          klc_batch_logq(b)[i], lp[i]);
            for (int t = 0; t < pl - 1; t++) ck_assert(klc_batch_logq_tok(b)[i * T + t] == 0.0f);
        }
    }
    klc_batch_destroy(b);
    klc_sampler_destroy(s);
    klc_model_destroy(m);
}
END_TEST

/* ---- (f) bad arguments -------------------------------------------------------------------- */

static void expect_error(klc_sampler *s, const klc_sample_options *o, int32_t n, klc_batch *b,
                         int status, const char *needle) {
    ck_assert_int_eq(klc_sampler_sample(s, o, n, b), status);
    ck_assert_msg(strstr(klc_last_error(), needle) != NULL, "'%s' not in: %s", needle,
                  klc_last_error());
}

START_TEST(bad_arguments_leave_the_sampler_usable) {
    const int V = 20, T = 8;
    klc_model *m = make_model(0.3f, 2, 1, 16, 2, V, 8, NULL);
    klc_sampler_options so;
    klc_sampler_options_init(&so, KLC_SAMPLER_OPTIONS_VERSION);
    so.max_len = 9;
    klc_sampler *x = (klc_sampler *)1;
    ck_assert_int_eq(klc_sampler_create(m, &so, &x), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(x);
    ck_assert_msg(strstr(klc_last_error(), "max_len = 9 must be in [2, n_ctx = 8]") != NULL, "%s",
                  klc_last_error());
    so.max_len = 8;
    so.max_prompt_len = 8;
    ck_assert_int_eq(klc_sampler_create(m, &so, &x), KLC_ERR_INVALID_ARGUMENT);
    so.max_prompt_len = 0;
    so.max_rows = 0;
    ck_assert_int_eq(klc_sampler_create(m, &so, &x), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(klc_sampler_options_init(&so, 99), KLC_ERR_INVALID_ARGUMENT);

    klc_sampler *s = make_sampler(m, 4, T, 3, NULL);
    klc_batch *b, *ref;
    ck_klc(klc_batch_create(6, T, 0, NULL, &b));
    ck_klc(klc_batch_create(6, T, 0, NULL, &ref));
    const klc_sample_options good = sample_opts(3, 1, 0, 0);
    ck_klc(klc_sampler_sample(s, &good, 6, ref));
    ck_klc(klc_sampler_sample(s, &good, 6, b));

    klc_sample_options o = good;
    o.temperature = 0;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "temperature = 0 must be > 0");
    o.temperature = -1;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "temperature");
    o.temperature = NAN;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "temperature");
    o.temperature = 1e-300;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "temperature");
    o = good;
    o.top_p = 0;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "top_p = 0 must be in (0, 1]");
    o.top_p = 1.5;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "top_p = 1.5");
    o.top_p = NAN;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "top_p");
    o = good;
    o.top_k = -1;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "top_k = -1 must be >= 0");
    o = good;
    o.max_new_tokens = -2;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "max_new_tokens");
    o = good;
    o.eos_id = V;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "eos_id = 20 must be in [0, 20) or -1");
    o = good;
    o.bos_id = 50256;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "bos_id = 50256 is outside");
    o = good;
    expect_error(s, &o, 7, b, KLC_ERR_INVALID_ARGUMENT, "n_seq = 7 must be in [1, the batch's");
    expect_error(s, &o, 0, b, KLC_ERR_INVALID_ARGUMENT, "n_seq = 0");
    o.version = 0;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "version");

    int32_t ctx_tok[2 * 4] = {1, 2, 3, 0, 4, V, 0, 0};
    int32_t ctx_len[2] = {3, 2};
    klc_seqs contexts = {2, 4, ctx_tok, ctx_len, NULL, NULL};
    o = good;
    o.contexts = &contexts;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT,
                 "context 1, position 1: token id 20 is outside the vocabulary [0, 20)");
    ctx_tok[5] = -4;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "token id -4");
    ctx_tok[5] = 5;
    ctx_len[0] = 4; /* longer than max_prompt_len 3 */
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "context 0: length 4");
    ctx_len[0] = 3;
    const int32_t bad_ids[6] = {0, 1, 2, 0, 1, 0};
    o.context_ids = bad_ids;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "context_ids[2] = 2 must be in [0, 2)");
    o = good;
    o.context_ids = bad_ids;
    expect_error(s, &o, 6, b, KLC_ERR_INVALID_ARGUMENT, "context_ids given without contexts");
    ck_assert_int_eq(klc_sampler_sample(NULL, &good, 1, b), KLC_ERR_INVALID_ARGUMENT);

    /* Nothing changed: the batch still holds the last good call's sequences, and the
     * sampler repeats them. */
    assert_same_sequences(ref, 0, b, 0, 6, 1);
    ck_assert_uint_eq(klc_batch_flags(b), KLC_BATCH_HAS_LOGQ | KLC_BATCH_FULL_SUPPORT);
    ck_klc(klc_sampler_sample(s, &good, 6, b));
    assert_same_sequences(ref, 0, b, 0, 6, 1);

    /* Logits that are NaN: KLC_ERR_NUMERIC naming the place, the batch left empty; with the
     * model repaired the sampler works again. */
    float *w = klc_model_params(m, NULL);
    const float saved = w[7 * 16]; /* token 7's embedding (the tied LM head's row), in no prompt */
    w[7 * 16] = NAN;
    o = good;
    o.contexts = &contexts; /* keeps NaN out of the prompts' hidden states */
    ctx_tok[5] = 5;
    expect_error(s, &o, 6, b, KLC_ERR_NUMERIC, "the model's logits are NaN or infinite");
    ck_assert_msg(strstr(klc_last_error(), "sequence 0 (sample 0), position 3") != NULL, "%s",
                  klc_last_error());
    ck_assert_int_eq(klc_batch_size(b), 0);
    ck_assert_uint_eq(klc_batch_flags(b), 0);
    w[7 * 16] = saved;
    ck_klc(klc_sampler_sample(s, &good, 6, b));
    assert_same_sequences(ref, 0, b, 0, 6, 1);

    klc_batch_destroy(b);
    klc_batch_destroy(ref);
    klc_sampler_destroy(s);
    klc_sampler_destroy(NULL);
    klc_model_destroy(m);
}
END_TEST

/* ---- Memory ------------------------------------------------------------------------------- */

START_TEST(sampling_allocates_nothing) {
    counting cm = {0, 0}, cs = {0, 0}, cb = {0, 0};
    klc_allocator am = {c_alloc, c_free, &cm}, as = {c_alloc, c_free, &cs},
                  ab = {c_alloc, c_free, &cb};
    klc_model *m = make_model(0.3f, 2, 2, 32, 4, 70, 24, &am);
    klc_sampler *s = make_sampler(m, 6, 20, 5, &as);
    klc_batch *b;
    ck_klc(klc_batch_create(40, 20, 3, &ab, &b));
    ck_assert_uint_gt(cs.calls, 0);
    ck_assert_uint_gt(klc_sampler_bytes(s), (size_t)(6 * 70 * 4));
    const size_t calls_m = cm.calls, calls_s = cs.calls, calls_b = cb.calls;
    int32_t ctx_tok[2 * 5] = {1, 2, 3, 4, 5, 6, 7, 0, 0, 0};
    int32_t ctx_len[2] = {5, 2};
    klc_seqs contexts = {2, 5, ctx_tok, ctx_len, NULL, NULL};
    klc_sample_options o = sample_opts(1, 0, 0, 0);
    o.top_p = 0.9;
    o.top_k = 30;
    ck_klc(klc_sampler_sample(s, &o, 40, b));
    o.contexts = &contexts;
    ck_klc(klc_sampler_sample(s, &o, 40, b));
    ck_assert_uint_eq(cm.calls, calls_m);
    klc_memory_info mi;
    ck_klc(klc_model_memory(m, &mi));
    ck_assert_uint_eq(mi.grads_bytes, 0); /* a frozen proposal gets no gradient block */
    ck_assert_uint_eq(cs.calls, calls_s);
    ck_assert_uint_eq(cb.calls, calls_b);
    klc_batch_destroy(b);
    klc_sampler_destroy(s);
    ck_assert_uint_eq(cs.live, 0);
    ck_assert_uint_eq(cb.live, 0);
    klc_model_destroy(m);
    ck_assert_uint_eq(cm.live, 0);
}
END_TEST

/* ---- The pieces: selection and one draw ------------------------------------------------------ */

static int ranks_before(klc_cand a, klc_cand b) {
    return a.key > b.key || (a.key == b.key && a.id < b.id);
}

static int cmp_rank(const void *x, const void *y) {
    const klc_cand *a = x, *b = y;
    return ranks_before(*a, *b) ? -1 : ranks_before(*b, *a) ? 1 : 0;
}

START_TEST(selection_matches_sorting) {
    enum { N = 257 };
    klc_cand c[N], sorted[N];
    klc_rng r;
    klc_rng_init(&r, 8, KLC_STREAM_USER);
    for (int trial = 0; trial < 200; trial++) {
        const int n = 1 + trial % N;
        for (int i = 0; i < n; i++) {
            /* Few distinct keys, so ties are everywhere; sometimes sorted input. */
            float key = (float)(int)(klc_rng_uniform(&r, trial, i) * (1 + trial % 7));
            if (trial % 5 == 0) key = (float)i;
            c[i] = (klc_cand){key, (i * 37 + trial) % n};
        }
        memcpy(sorted, c, sizeof(klc_cand) * n);
        qsort(sorted, n, sizeof(klc_cand), cmp_rank);
        const int k = 1 + (int)(klc_rng_uniform(&r, trial, 1000) * n);
        klc_cand work[N];
        memcpy(work, c, sizeof(klc_cand) * n);
        klc_select_top_count(work, n, k);
        qsort(work, k, sizeof(klc_cand), cmp_rank);
        ck_assert_int_eq(memcmp(work, sorted, sizeof(klc_cand) * k), 0);
        /* Mass: the smallest prefix of the sorted order reaching the target. */
        double total = 0;
        for (int i = 0; i < n; i++) total += c[i].key;
        const double target = total * klc_rng_uniform(&r, trial, 1001) + 1e-9;
        int want = n;
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += sorted[i].key;
            if (cum >= target) {
                want = i + 1;
                break;
            }
        }
        memcpy(work, c, sizeof(klc_cand) * n);
        const int got = klc_select_top_mass(work, n, target);
        ck_assert_int_eq(got, want);
        qsort(work, got, sizeof(klc_cand), cmp_rank);
        ck_assert_int_eq(memcmp(work, sorted, sizeof(klc_cand) * got), 0);
    }
}
END_TEST

START_TEST(draw_handles_extreme_logits) {
    klc_cand cands[6];
    float work[16];
    ck_assert_uint_le(klc_draw_work_floats(6), 16);
    klc_draw_params p = {6, 1.0f, 0, 1.0};
    int32_t tok;
    double lp;
    for (int mode = 0; mode < 3; mode++) {
        p.top_k = mode == 1 ? 3 : 0;
        p.top_p = mode == 2 ? 0.5 : 1.0;
        for (int k = 0; k < 50; k++) {
            float y[6] = {-INFINITY, 3.0f, -INFINITY, 3.0f, -1e30f, -INFINITY};
            const double u = k / 50.0 + 0.001;
            ck_assert_int_eq(klc_draw(&p, y, cands, work, u, &tok, &lp), KLC_OK);
            ck_assert_msg(tok == 1 || tok == 3, "mode %d chose %d", mode, tok);
            ck_assert(isfinite(lp));
            ck_assert(fabs(lp - (mode == 2 ? 0.0 : log(0.5))) < 1e-7);
        }
        /* Huge finite logits: the maximum is subtracted before exp. */
        float big[6] = {1e30f, 0, -1e30f, 1e30f - 1e24f, 5, 6};
        ck_assert_int_eq(klc_draw(&p, big, cands, work, 0.999999, &tok, &lp), KLC_OK);
        ck_assert_int_eq(tok, 0);
        ck_assert(lp == 0.0);
        float nan_row[6] = {0, 1, NAN, 2, 3, 4};
        ck_assert_int_eq(klc_draw(&p, nan_row, cands, work, 0.5, &tok, &lp), KLC_ERR_NUMERIC);
        float all_inf[6] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
        ck_assert_int_eq(klc_draw(&p, all_inf, cands, work, 0.5, &tok, &lp), KLC_ERR_NUMERIC);
        float pos_inf[6] = {0, INFINITY, 0, 0, 0, 0};
        ck_assert_int_eq(klc_draw(&p, pos_inf, cands, work, 0.5, &tok, &lp), KLC_ERR_NUMERIC);
    }
    /* u just below 1 still lands on a token with positive probability. */
    p.top_k = 0;
    p.top_p = 1.0;
    float y[6] = {0, 0, 0, 0, 0, -INFINITY};
    ck_assert_int_eq(klc_draw(&p, y, cands, work, 1.0 - 0x1.0p-53, &tok, &lp), KLC_OK);
    ck_assert_int_eq(tok, 4);
}
END_TEST

/* On a vocabulary large enough for the prefilters to narrow (flat, moderate, peaked and
 * tied logits), every draw agrees with a reference that sorts the whole vocabulary: the
 * token is in the reference's kept set with the reference's log-probability, and a grid
 * of uniforms reaches every kept token of non-negligible probability. */
typedef struct ranked {
    double y;
    int32_t id;
} ranked;

static int cmp_ranked(const void *x, const void *y) {
    const ranked *a = x, *b = y;
    if (a->y != b->y) return a->y > b->y ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

START_TEST(draw_matches_a_sorting_reference) {
    enum { V = 4099, GRID = 4000 };
    float *z = malloc(sizeof(float) * V), *y = malloc(sizeof(float) * V);
    float *work = malloc(sizeof(float) * klc_draw_work_floats(V));
    klc_cand *cands = malloc(sizeof(klc_cand) * V);
    ranked *r = malloc(sizeof(ranked) * V);
    double *q = malloc(sizeof(double) * V);
    char *hit = malloc(V);
    const double sds[5] = {0.001, 1.0, 3.0, 8.0, -2.0}; /* -2: logits on a grid of 0.5, ties */
    const struct {
        int32_t k;
        double p;
    } cfg[7] = {{1, 1.0}, {50, 1.0}, {3000, 1.0}, {0, 0.3}, {0, 0.9}, {0, 0.999}, {200, 0.8}};
    klc_rng rng;
    klc_rng_init(&rng, 4, KLC_STREAM_USER);
    int checked = 0;
    for (int d = 0; d < 5; d++) {
        for (int i = 0; i < V; i++) {
            const double g = klc_rng_normal(&rng, (uint64_t)d, (uint64_t)i);
            z[i] = sds[d] > 0 ? (float)(sds[d] * g) : (float)(0.5 * floor(2.0 * g));
        }
        for (int c = 0; c < 7; c++) {
            /* The reference: sort, truncate, renormalise, in double. */
            double mx = -INFINITY;
            for (int i = 0; i < V; i++) mx = z[i] > mx ? z[i] : mx;
            for (int i = 0; i < V; i++) r[i] = (ranked){z[i], i};
            qsort(r, V, sizeof(ranked), cmp_ranked);
            int keep = cfg[c].k > 0 ? cfg[c].k : V;
            double total = 0;
            for (int i = 0; i < keep; i++) total += exp(r[i].y - mx);
            int well_posed = 1; /* top-k ties are split by id in both: exact */
            if (cfg[c].p < 1.0) {
                double cum = 0;
                int n = 0;
                while (n < keep) {
                    cum += exp(r[n].y - mx) / total;
                    n++;
                    if (fabs(cum - cfg[c].p) < 1e-6) well_posed = 0;
                    if (cum >= cfg[c].p) break;
                }
                keep = n;
                total = 0;
                for (int i = 0; i < keep; i++) total += exp(r[i].y - mx);
            }
            if (!well_posed) continue;
            for (int i = 0; i < V; i++) q[i] = 0;
            for (int i = 0; i < keep; i++) q[r[i].id] = exp(r[i].y - mx) / total;
            memset(hit, 0, V);
            const klc_draw_params p = {V, 1.0f, cfg[c].k, cfg[c].p};
            for (int g = 0; g < GRID; g++) {
                memcpy(y, z, sizeof(float) * V);
                int32_t tok;
                double lp;
                ck_assert_int_eq(klc_draw(&p, y, cands, work, (g + 0.5) / GRID, &tok, &lp), KLC_OK);
                ck_assert_msg(q[tok] > 0, "logits %d, config %d: token %d is outside the kept set",
                              d, c, tok);
                ck_assert_msg(fabs(lp - log(q[tok])) < 1e-5,
                              "logits %d, config %d: token %d log q %.8f, reference %.8f", d, c,
                              tok, lp, log(q[tok]));
                hit[tok] = 1;
            }
            for (int i = 0; i < V; i++)
                ck_assert_msg(hit[i] || q[i] < 2.0 / GRID,
                              "logits %d, config %d: token %d (q %.2e) never drawn", d, c, i, q[i]);
            checked++;
        }
    }
    ck_assert_int_ge(checked, 30);
    free(z);
    free(y);
    free(work);
    free(cands);
    free(r);
    free(q);
    free(hit);
}
END_TEST

int main(void) {
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("sampler");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, batch_fill_views_and_errors);
    tcase_add_test(tc, full_support_logq_matches_score);
    tcase_add_test(tc, frequencies_match_enumeration);
    tcase_add_test(tc, chi_square_detects_a_wrong_distribution);
    tcase_add_test(tc, eos_and_truncation);
    tcase_add_test(tc, grouping_does_not_change_the_sequences);
    tcase_add_test(tc, contexts_and_prompts);
    tcase_add_test(tc, bad_arguments_leave_the_sampler_usable);
    tcase_add_test(tc, sampling_allocates_nothing);
    tcase_add_test(tc, selection_matches_sorting);
    tcase_add_test(tc, draw_handles_extreme_logits);
    tcase_add_test(tc, draw_matches_a_sorting_reference);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
