/* The GPT-2 model: gradients against finite differences, KV-cache decoding and padding
 * against the full forward, cloning, dropout keys, memory planning, argument errors. */
#include "core/internal.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static klc_model *tiny_model(float std, uint64_t seed, int n_layer, int n_embd, int n_head, int V,
                             int n_ctx) {
    klc_model *m = tu_model(n_layer, n_embd, n_head, V, n_ctx, std, seed, NULL);
    /* Non-trivial LayerNorm gains and biases, so their gradients are exercised too. */
    klc_rng r;
    klc_rng_init(&r, seed + 99, KLC_STREAM_USER);
    for (int32_t i = 0; i < klc_model_num_tensors(m); i++) {
        klc_tensor_info t;
        klc_model_tensor_info(m, i, &t);
        float *w = klc_model_params(m, NULL) + t.offset;
        int is_ln = strstr(t.name, "ln_") != NULL, is_bias = strstr(t.name, ".bias") != NULL;
        if (!is_ln && !is_bias) continue;
        for (int64_t k = 0; k < t.numel; k++)
            w[k] += (float)(0.2 * klc_rng_normal(&r, (uint64_t)i, (uint64_t)k));
    }
    return m;
}

typedef struct batch {
    int32_t n_seq, max_len;
    int32_t *tokens, *lengths, *score_from;
    int64_t *sample_ids;
    klc_seqs s;
} batch;

static void batch_make(batch *b, int32_t n_seq, int32_t max_len, const int32_t *lengths, int V,
                       uint64_t seed) {
    b->n_seq = n_seq;
    b->max_len = max_len;
    b->tokens = malloc(sizeof(int32_t) * (size_t)(n_seq * max_len));
    b->lengths = malloc(sizeof(int32_t) * (size_t)n_seq);
    b->score_from = malloc(sizeof(int32_t) * (size_t)n_seq);
    b->sample_ids = malloc(sizeof(int64_t) * (size_t)n_seq);
    klc_rng r;
    klc_rng_init(&r, seed, KLC_STREAM_USER);
    for (int32_t i = 0; i < n_seq; i++) {
        b->lengths[i] = lengths[i];
        b->score_from[i] = 1 + i % 2 < lengths[i] ? 1 + i % 2 : lengths[i];
        b->sample_ids[i] = 100 + i;
        for (int32_t t = 0; t < max_len; t++) {
            int tok = (int)(klc_rng_uniform(&r, (uint64_t)i, (uint64_t)t) * V);
            /* Padding gets hostile values: it must never be read. */
            b->tokens[i * max_len + t] = t < lengths[i] ? tok : -12345;
        }
    }
    b->s = (klc_seqs){n_seq, max_len, b->tokens, b->lengths, b->score_from, b->sample_ids};
}

static void batch_free(batch *b) {
    free(b->tokens);
    free(b->lengths);
    free(b->score_from);
    free(b->sample_ids);
}

/* The test loss: L = -sum_k w_k log p_k + sum hidden . G, in double. */
typedef struct loss_spec {
    float *w; /* [n_seq*max_len] */
    float *G; /* [n_seq*max_len*C] or NULL */
    float *on, *sm;
    int dropout;
} loss_spec;

static double eval_loss(klc_model *m, const batch *b, const loss_spec *ls, int C) {
    size_t n = (size_t)(b->n_seq * b->max_len);
    float *lp = calloc(n, sizeof(float));
    float *hid = ls->G ? calloc(n * (size_t)C, sizeof(float)) : NULL;
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    o.token_logprobs = lp;
    o.hidden = hid;
    if (ls->dropout) {
        o.flags = KLC_FORWARD_DROPOUT;
        klc_rng_init(&o.dropout, 7, KLC_STREAM_DROPOUT);
        o.dropout.step = 3;
    }
    ck_klc(klc_model_score(m, &b->s, &o));
    double L = 0;
    for (int32_t i = 0; i < b->n_seq; i++)
        for (int32_t t = 0; t < b->lengths[i]; t++) {
            size_t k = (size_t)(i * b->max_len + t);
            if (t + 1 < b->lengths[i]) L -= (double)ls->w[k] * lp[k];
            if (hid)
                for (int c = 0; c < C; c++) L += (double)hid[k * C + c] * ls->G[k * C + c];
        }
    free(lp);
    free(hid);
    return L;
}

static void analytic_grads(klc_model *m, const batch *b, const loss_spec *ls, int fused) {
    ck_klc(klc_model_zero_grads(m));
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    if (ls->dropout) {
        o.flags = KLC_FORWARD_DROPOUT;
        klc_rng_init(&o.dropout, 7, KLC_STREAM_DROPOUT);
        o.dropout.step = 3;
    }
    if (fused) {
        ck_klc(klc_model_forward_backward(m, &b->s, &o, ls->on, ls->sm));
    } else {
        ck_klc(klc_model_forward(m, &b->s, &o));
        ck_klc(klc_model_backward(m, &b->s, ls->on, ls->sm, ls->G));
    }
}

static void make_loss(loss_spec *ls, const batch *b, int C, int with_hidden, int dropout) {
    size_t n = (size_t)(b->n_seq * b->max_len);
    ls->w = malloc(sizeof(float) * n);
    ls->on = malloc(sizeof(float) * n);
    ls->sm = malloc(sizeof(float) * n);
    ls->G = with_hidden ? malloc(sizeof(float) * n * (size_t)C) : NULL;
    ls->dropout = dropout;
    klc_rng r;
    klc_rng_init(&r, 5, KLC_STREAM_USER);
    for (size_t k = 0; k < n; k++) {
        ls->w[k] = (float)(klc_rng_uniform(&r, k, 0) * 2.0 - 0.5); /* mixed signs */
        ls->on[k] = -ls->w[k];
        ls->sm[k] = ls->w[k];
        if (ls->G)
            for (int c = 0; c < C; c++) ls->G[k * C + c] = (float)klc_rng_normal(&r, k, 1 + c);
    }
}

static void free_loss(loss_spec *ls) {
    free(ls->w);
    free(ls->on);
    free(ls->sm);
    free(ls->G);
}

/* Every parameter of every tensor against central differences of the double loss. */
static void check_all_gradients(int dropout, int with_hidden, int fused) {
    const int C = 8, V = 11;
    klc_model *m = tiny_model(0.3f, 11, 2, C, 2, V, 8);
    if (dropout) {
        /* The model's default dropout probabilities are non-zero, so the run below really
         * drops units (the masks are fixed by the key, so the loss stays differentiable). */
        klc_model_options o;
        klc_model_get_options(m, &o);
        ck_assert_float_eq_tol(o.attn_pdrop, 0.1f, 1e-7);
    }
    const int32_t lengths[3] = {6, 3, 8};
    batch b;
    batch_make(&b, 3, 8, lengths, V, 3);
    loss_spec ls;
    make_loss(&ls, &b, C, with_hidden, dropout);
    analytic_grads(m, &b, &ls, fused);
    size_t n_params;
    float *params = klc_model_params(m, &n_params);
    float *grads_ref = malloc(sizeof(float) * n_params);
    memcpy(grads_ref, klc_model_grads(m, NULL), sizeof(float) * n_params);
    const double h = 1e-2;
    for (int32_t i = 0; i < klc_model_num_tensors(m); i++) {
        klc_tensor_info t;
        klc_model_tensor_info(m, i, &t);
        double err2 = 0, ref2 = 0, worst = 0;
        int64_t worst_k = -1;
        for (int64_t k = 0; k < t.numel; k++) {
            float *p = params + t.offset + k;
            const float saved = *p;
            *p = (float)(saved + h);
            double up = eval_loss(m, &b, &ls, C);
            *p = (float)(saved - h);
            double down = eval_loss(m, &b, &ls, C);
            *p = saved;
            double fd = (up - down) / (2 * h), g = grads_ref[t.offset + k];
            err2 += (fd - g) * (fd - g);
            ref2 += fd * fd;
            double e = fabs(fd - g) / (1e-2 + fabs(fd));
            if (e > worst) worst = e, worst_k = k;
        }
        /* Float forward noise over a 2h step is ~1e-5; relative error below 1e-3 means the
         * analytic gradient is right (a wrong term gives errors of order 1). */
        double rel = sqrt(err2) / (sqrt(ref2) + 1e-12);
        ck_assert_msg(rel < 2e-3 && worst < 5e-2,
                      "%s (dropout %d, hidden %d, fused %d): relative error %.2e, worst element "
                      "%lld off by %.2e",
                      t.name, dropout, with_hidden, fused, rel, (long long)worst_k, worst);
    }
    free(grads_ref);
    free_loss(&ls);
    batch_free(&b);
    klc_model_destroy(m);
}

START_TEST(gradients_match_finite_differences) {
    check_all_gradients(0, 1, 0);
}
END_TEST

START_TEST(fused_gradients_match_finite_differences) {
    check_all_gradients(0, 0, 1);
}
END_TEST

START_TEST(dropout_gradients_match_finite_differences) {
    check_all_gradients(1, 0, 0);
}
END_TEST

START_TEST(fused_and_two_phase_backward_agree) {
    const int C = 32, V = 97;
    klc_model *m = tiny_model(0.1f, 4, 2, C, 4, V, 32);
    const int32_t lengths[4] = {32, 5, 17, 1};
    batch b;
    batch_make(&b, 4, 32, lengths, V, 9);
    loss_spec ls;
    make_loss(&ls, &b, C, 0, 0);
    /* Independent coefficients, not tied to one weight. */
    for (int k = 0; k < 4 * 32; k++) ls.sm[k] = 0.3f * ls.w[k] + 0.1f;
    size_t n;
    analytic_grads(m, &b, &ls, 1);
    klc_model_params(m, &n);
    float *g1 = malloc(sizeof(float) * n);
    memcpy(g1, klc_model_grads(m, NULL), sizeof(float) * n);
    analytic_grads(m, &b, &ls, 0);
    const float *g2 = klc_model_grads(m, NULL);
    double err = 0, ref = 0;
    for (size_t i = 0; i < n; i++) {
        err += (double)(g1[i] - g2[i]) * (g1[i] - g2[i]);
        ref += (double)g1[i] * g1[i];
    }
    ck_assert_msg(sqrt(err) <= 1e-5 * sqrt(ref), "fused vs two-phase: %.3e of %.3e", sqrt(err),
                  sqrt(ref));
    free(g1);
    free_loss(&ls);
    batch_free(&b);
    klc_model_destroy(m);
}
END_TEST

static double log_softmax_at(const float *logits, int V, int target) {
    double mx = -INFINITY, s = 0;
    for (int j = 0; j < V; j++) mx = logits[j] > mx ? logits[j] : mx;
    for (int j = 0; j < V; j++) s += exp(logits[j] - mx);
    return logits[target] - mx - log(s);
}

START_TEST(kv_cache_decoding_matches_full_forward) {
    const int C = 64, V = 301, T = 40;
    klc_model *m = tiny_model(0.08f, 21, 3, C, 4, V, 64);
    const int32_t lengths[5] = {40, 7, 23, 1, 31};
    batch b;
    batch_make(&b, 5, T, lengths, V, 17);
    float *lp = calloc(5 * T, sizeof(float));
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    o.token_logprobs = lp;
    ck_klc(klc_model_score(m, &b.s, &o));

    for (int mode = 0; mode < 2; mode++) {
        /* mode 0: every token through decode; mode 1: prefill the first 5 tokens. */
        klc_kv_cache *cache;
        ck_klc(klc_kv_cache_create(m, 5, T, NULL, &cache));
        float *logits = malloc(sizeof(float) * 5 * V);
        int32_t pos0 = 0;
        if (mode == 1) {
            int32_t plen[5];
            for (int i = 0; i < 5; i++) plen[i] = lengths[i] < 5 ? lengths[i] : 5;
            klc_seqs ps = {5, T, b.tokens, plen, NULL, NULL};
            ck_klc(klc_model_prefill(m, cache, &ps, logits));
            for (int i = 0; i < 5; i++) {
                ck_assert_int_eq(klc_kv_cache_length(cache, i), plen[i]);
                int t = plen[i] - 1;
                if (t + 1 < lengths[i]) {
                    double want = lp[i * T + t];
                    double got = log_softmax_at(logits + i * V, V, b.tokens[i * T + t + 1]);
                    ck_assert_msg(fabs(got - want) < 1e-5, "prefill seq %d: %.7f vs %.7f", i, got,
                                  want);
                }
            }
            pos0 = 5;
        }
        double worst = 0;
        for (int32_t t = pos0; t < T; t++) {
            int32_t rows[5], toks[5], n = 0;
            /* Finished sequences are left out; the order of rows is shuffled by t. */
            for (int k = 0; k < 5; k++) {
                int i = (k + t) % 5;
                if (t < lengths[i] && klc_kv_cache_length(cache, i) == t) {
                    rows[n] = i;
                    toks[n] = b.tokens[i * T + t];
                    n++;
                }
            }
            if (n == 0) continue;
            ck_klc(klc_model_decode(m, cache, n, rows, toks, logits));
            for (int j = 0; j < n; j++) {
                int i = rows[j];
                if (t + 1 >= lengths[i]) continue;
                double got = log_softmax_at(logits + (size_t)j * V, V, b.tokens[i * T + t + 1]);
                double d = fabs(got - lp[i * T + t]);
                if (d > worst) worst = d;
            }
        }
        ck_assert_msg(worst < 1e-5, "mode %d: decode vs forward differs by %.3e", mode, worst);
        free(logits);
        klc_kv_cache_destroy(cache);
    }
    free(lp);
    batch_free(&b);
    klc_model_destroy(m);
}
END_TEST

START_TEST(padded_batch_matches_each_sequence_alone) {
    const int C = 32, V = 53, T = 24;
    klc_model *m = tiny_model(0.1f, 8, 2, C, 2, V, 32);
    const int32_t lengths[4] = {24, 3, 11, 20};
    batch b;
    batch_make(&b, 4, T, lengths, V, 2);
    float *lp = calloc(4 * T, sizeof(float));
    double seq_lp[4];
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    o.token_logprobs = lp;
    o.seq_logprobs = seq_lp;
    ck_klc(klc_model_score(m, &b.s, &o));
    for (int i = 0; i < 4; i++) {
        float alone[24];
        double alone_seq;
        klc_seqs one = {1, lengths[i], b.tokens + i * T, &lengths[i], &b.score_from[i], NULL};
        o.token_logprobs = alone;
        o.seq_logprobs = &alone_seq;
        ck_klc(klc_model_score(m, &one, &o));
        double sum = 0;
        for (int t = 0; t < lengths[i]; t++) {
            ck_assert_msg(fabs(alone[t] - lp[i * T + t]) < 1e-5, "seq %d pos %d", i, t);
            if (t + 1 >= b.score_from[i] && t + 1 < lengths[i]) sum += lp[i * T + t];
        }
        for (int t = lengths[i] - 1; t < T; t++) ck_assert(lp[i * T + t] == 0.0f);
        ck_assert(fabs(alone_seq - seq_lp[i]) < 1e-5);
        ck_assert(fabs(sum - seq_lp[i]) < 1e-9);
    }
    /* Asking for the hidden states runs every position, the last one included (which
     * predicts nothing and is otherwise left out): the same log-probabilities. */
    float *lp_all = calloc(4 * T, sizeof(float)), *hidden = calloc(4 * T * C, sizeof(float));
    double seq_all[4];
    o.token_logprobs = lp_all;
    o.seq_logprobs = seq_all;
    o.hidden = hidden;
    ck_klc(klc_model_score(m, &b.s, &o));
    for (int i = 0; i < 4; i++) {
        for (int t = 0; t < T; t++)
            ck_assert_msg(fabs(lp_all[i * T + t] - lp[i * T + t]) < 1e-5, "seq %d pos %d", i, t);
        ck_assert(fabs(seq_all[i] - seq_lp[i]) < 1e-5);
        double norm = 0; /* the last position's hidden state was computed */
        for (int k = 0; k < C; k++) norm += fabs(hidden[((size_t)i * T + lengths[i] - 1) * C + k]);
        ck_assert(norm > 0.0);
    }
    free(lp_all);
    free(hidden);
    free(lp);
    batch_free(&b);
    klc_model_destroy(m);
}
END_TEST

START_TEST(log_probabilities_normalise) {
    /* With a vocabulary of 5 and length 3, summing p over all 25 continuations of a prefix
     * token gives 1: the model is a proper distribution. */
    klc_model *m = tiny_model(0.5f, 3, 1, 8, 2, 5, 4);
    int32_t toks[25 * 3], lens[25];
    for (int i = 0; i < 25; i++) {
        toks[i * 3] = 4;
        toks[i * 3 + 1] = i / 5;
        toks[i * 3 + 2] = i % 5;
        lens[i] = 3;
    }
    double lp[25];
    klc_seqs s = {25, 3, toks, lens, NULL, NULL};
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    o.seq_logprobs = lp;
    ck_klc(klc_model_score(m, &s, &o));
    double total = 0;
    for (int i = 0; i < 25; i++) total += exp(lp[i]);
    ck_assert_double_eq_tol(total, 1.0, 1e-5);
    klc_model_destroy(m);
}
END_TEST

START_TEST(clone_is_independent) {
    klc_model *m = tiny_model(0.1f, 1, 2, 16, 2, 20, 8);
    klc_model *c;
    ck_klc(klc_model_zero_grads(m));
    ck_klc(klc_model_clone(m, &c));
    size_t n;
    float *pm = klc_model_params(m, &n), *pc = klc_model_params(c, NULL);
    ck_assert_ptr_ne(pm, pc);
    ck_assert_int_eq(memcmp(pm, pc, n * sizeof(float)), 0);
    float before = pc[3];
    for (size_t i = 0; i < n; i++) pm[i] += 1.0f;
    ck_assert(pc[3] == before);
    klc_model_grads(m, NULL)[0] = 5.0f;
    ck_assert(klc_model_grads(c, NULL)[0] == 0.0f);
    klc_model_destroy(m);
    /* The clone works after its source is gone. */
    int32_t toks[4] = {1, 2, 3, 4}, len = 4;
    double lp;
    klc_seqs s = {1, 4, toks, &len, NULL, NULL};
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    o.seq_logprobs = &lp;
    ck_klc(klc_model_score(c, &s, &o));
    ck_assert(isfinite(lp) && lp < 0);
    klc_model_destroy(c);
}
END_TEST

START_TEST(dropout_depends_on_keys_not_on_batching) {
    klc_model *m = tiny_model(0.1f, 2, 2, 16, 2, 30, 16);
    const int32_t lengths[3] = {16, 9, 12};
    batch b;
    batch_make(&b, 3, 16, lengths, 30, 4);
    double all[3], again[3], other_step[3], none[3];
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    o.flags = KLC_FORWARD_DROPOUT;
    klc_rng_init(&o.dropout, 1, KLC_STREAM_DROPOUT);
    o.seq_logprobs = all;
    ck_klc(klc_model_score(m, &b.s, &o));
    o.seq_logprobs = again;
    ck_klc(klc_model_score(m, &b.s, &o));
    o.dropout.step = 1;
    o.seq_logprobs = other_step;
    ck_klc(klc_model_score(m, &b.s, &o));
    o.flags = 0;
    o.seq_logprobs = none;
    ck_klc(klc_model_score(m, &b.s, &o));
    for (int i = 0; i < 3; i++) {
        ck_assert(all[i] == again[i]);
        ck_assert(all[i] != other_step[i]);
        ck_assert(all[i] != none[i]);
    }
    /* Sequence 2 alone, with its global sample id, sees the same masks. */
    o.flags = KLC_FORWARD_DROPOUT;
    o.dropout.step = 0;
    double alone;
    o.seq_logprobs = &alone;
    klc_seqs one = {1,           lengths[2],       b.tokens + 2 * 16,
                    &lengths[2], &b.score_from[2], &b.sample_ids[2]};
    ck_klc(klc_model_score(m, &one, &o));
    ck_assert_msg(fabs(alone - all[2]) < 1e-5, "%.7f vs %.7f", alone, all[2]);
    batch_free(&b);
    klc_model_destroy(m);
}
END_TEST

typedef struct counting {
    size_t calls;
} counting;
static void *c_alloc(void *ud, size_t size, size_t al) {
    ((counting *)ud)->calls++;
    return aligned_alloc(al, (size + al - 1) / al * al);
}
static void c_free(void *ud, void *p, size_t size) {
    free(p);
}

START_TEST(memory_is_planned_up_front) {
    counting cnt = {0};
    klc_allocator a = {c_alloc, c_free, &cnt};
    klc_model_options o;
    klc_model_options_init(&o, KLC_MODEL_OPTIONS_VERSION);
    o.n_layer = 2;
    o.n_embd = 32;
    o.n_head = 4;
    o.vocab_size = 100;
    o.n_ctx = 32;
    o.allocator = &a;
    klc_model *m;
    ck_klc(klc_model_create(&o, &m));
    klc_memory_info est, got;
    ck_klc(klc_model_memory_estimate(m, 4, 32, 1, &est));
    ck_klc(klc_model_reserve(m, 4, 32, 1));
    ck_klc(klc_model_memory(m, &got));
    ck_assert_uint_eq(est.activations_bytes, got.activations_bytes);
    ck_assert_uint_eq(est.scratch_bytes, got.scratch_bytes);
    ck_assert_uint_eq(est.total_bytes, got.total_bytes);
    ck_assert_uint_gt(got.activations_bytes, 0);
    size_t calls = cnt.calls;
    const int32_t lengths[4] = {32, 30, 2, 17};
    batch b;
    batch_make(&b, 4, 32, lengths, 100, 1);
    loss_spec ls;
    make_loss(&ls, &b, 32, 0, 0);
    analytic_grads(m, &b, &ls, 0);
    analytic_grads(m, &b, &ls, 1);
    double lp[4];
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.seq_logprobs = lp;
    ck_klc(klc_model_score(m, &b.s, &fo));
    ck_assert_uint_eq(cnt.calls, calls); /* no allocation inside a reserved step */
    free_loss(&ls);
    batch_free(&b);
    klc_model_destroy(m);
}
END_TEST

START_TEST(bad_arguments_leave_the_model_usable) {
    klc_model *m = tiny_model(0.1f, 1, 1, 8, 2, 10, 8);
    int32_t toks[4] = {1, 2, 10, 3}, len = 4;
    klc_seqs s = {1, 4, toks, &len, NULL, NULL};
    klc_forward_options o;
    klc_forward_options_init(&o, KLC_FORWARD_OPTIONS_VERSION);
    double lp;
    o.seq_logprobs = &lp;
    ck_assert_int_eq(klc_model_score(m, &s, &o), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(klc_last_error(), "position 2: token id 10") != NULL, "%s",
                  klc_last_error());
    ck_assert_int_eq(klc_model_backward(m, &s, NULL, NULL, NULL), KLC_ERR_STATE);
    len = 9;
    ck_assert_int_eq(klc_model_score(m, &s, &o), KLC_ERR_INVALID_ARGUMENT);
    toks[2] = 5;
    len = 4;
    ck_klc(klc_model_score(m, &s, &o));
    ck_assert(isfinite(lp));
    klc_model_options bad;
    klc_model_options_init(&bad, KLC_MODEL_OPTIONS_VERSION);
    bad.n_head = 3;
    klc_model *x = (klc_model *)1;
    ck_assert_int_eq(klc_model_create(&bad, &x), KLC_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(x);
    ck_assert(strstr(klc_last_error(), "n_head") != NULL);
    klc_model_destroy(m);
}
END_TEST

/* End to end: Adam on the model's gradients learns a language where the next token is
 * determined by the previous two (cycles of 5 in either direction). The loss floor is the
 * direction's ambiguity at the second token, ln(2)/15 = 0.046 nats per token. */
START_TEST(training_learns_a_cyclic_language) {
    klc_model *m = tiny_model(0.02f, 1, 2, 32, 2, 7, 16);
    size_t n;
    float *w = klc_model_params(m, &n), *g = klc_model_grads(m, NULL);
    float *m1 = calloc(n, sizeof(float)), *m2 = calloc(n, sizeof(float));
    enum { S = 8, L = 16 };
    int32_t tok[S * L], len[S];
    float on[S * L], sm[S * L];
    double lp[S], loss = 0;
    for (int i = 0; i < S * L; i++) on[i] = -1.0f / (S * (L - 1)), sm[i] = 1.0f / (S * (L - 1));
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.seq_logprobs = lp;
    klc_rng r;
    klc_rng_init(&r, 3, KLC_STREAM_DATA);
    for (int step = 1; step <= 300; step++) {
        for (int i = 0; i < S; i++) {
            int phase = (int)(5 * klc_rng_uniform(&r, (uint64_t)(step * S + i), 0));
            int up = klc_rng_uniform(&r, (uint64_t)(step * S + i), 1) < 0.5;
            len[i] = L;
            for (int t = 0; t < L; t++)
                tok[i * L + t] = up ? (phase + t) % 5 : (phase + 100 - t) % 5;
        }
        klc_seqs s = {S, L, tok, len, NULL, NULL};
        ck_klc(klc_model_zero_grads(m));
        ck_klc(klc_model_forward_backward(m, &s, &fo, on, sm));
        for (size_t i = 0; i < n; i++) {
            m1[i] = 0.9f * m1[i] + 0.1f * g[i];
            m2[i] = 0.99f * m2[i] + 0.01f * g[i] * g[i];
            w[i] -= 3e-3f * (m1[i] / (1 - powf(0.9f, step))) /
                    (sqrtf(m2[i] / (1 - powf(0.99f, step))) + 1e-8f);
        }
        loss = 0;
        for (int i = 0; i < S; i++) loss -= lp[i] / (S * (L - 1));
        if (step == 1) ck_assert_msg(loss > 1.5, "initial loss %.3f should be near ln 7", loss);
    }
    ck_assert_msg(loss < 0.15, "loss after 300 steps: %.4f", loss);
    free(m1);
    free(m2);
    klc_model_destroy(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, gradients_match_finite_differences);
    tcase_add_test(tc, fused_gradients_match_finite_differences);
    tcase_add_test(tc, dropout_gradients_match_finite_differences);
    tcase_add_test(tc, fused_and_two_phase_backward_agree);
    tcase_add_test(tc, kv_cache_decoding_matches_full_forward);
    tcase_add_test(tc, padded_batch_matches_each_sequence_alone);
    tcase_add_test(tc, log_probabilities_normalise);
    tcase_add_test(tc, clone_is_independent);
    tcase_add_test(tc, dropout_depends_on_keys_not_on_batching);
    tcase_add_test(tc, memory_is_planned_up_front);
    tcase_add_test(tc, bad_arguments_leave_the_model_usable);
    tcase_add_test(tc, training_learns_a_cyclic_language);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
