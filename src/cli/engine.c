/* The engine behind `klc train`, `klc eval` and `klc fit-target`: the library's objects
 * built from a train configuration, the fit of lambda on samples of the base model, and
 * sampling texts. */
#include "cli/train_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int engine_report_error(const char *cmd, const char *what, int status) {
    fprintf(stderr, "klc %s: %s: %s: %s\n", cmd, what, klc_status_str(status), klc_last_error());
    return 1;
}

#define TRY(what, expr)                                                                            \
    do {                                                                                           \
        int st_ = (expr);                                                                          \
        if (st_ != KLC_OK) {                                                                       \
            engine_report_error("engine", what, st_);                                              \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

static int build_feature(const feature_spec *f, klc_feature **out) {
    klc_feature_options fo;
    klc_feature_options_init(&fo, KLC_FEATURE_OPTIONS_VERSION);
    fo.name = f->name;
    fo.flags = f->caseless ? KLC_FEATURE_CASELESS : 0;
    fo.aggregate = f->aggregate;
    fo.default_value = f->default_value;
    switch (f->kind) {
    case FEATURE_WORD:
        return klc_feature_word(f->word, &fo, out);
    case FEATURE_WORD_LIST:
        return f->file ? klc_feature_word_list_file(f->file, &fo, out)
                       : klc_feature_word_list(f->words, (size_t)f->n_words, &fo, out);
    case FEATURE_LEXICON:
        return klc_feature_lexicon_file(f->file, &fo, out);
    case FEATURE_NAME_LIST:
        return f->file ? klc_feature_name_list_file(f->file, &fo, out)
                       : klc_feature_name_list(f->words, (size_t)f->n_words, &fo, out);
    case FEATURE_LENGTH:
        return klc_feature_length(&fo, out);
    default:
        return klc_feature_regex(f->pattern, &fo, out);
    }
}

static int add_feature(engine *e, const feature_spec *f, klc_feature **out) {
    TRY("feature", build_feature(f, out));
    e->features[e->n_features++] = *out;
    return 0;
}

int engine_load(engine *e, train_settings *s, const char *policy_dir) {
    memset(e, 0, sizeof *e);
    if (s->threads > 0) klc_set_num_threads(s->threads);
    TRY(s->model_dir, klc_model_load(s->model_dir, NULL, &e->base));
    TRY(policy_dir ? policy_dir : s->model_dir,
        klc_model_load(policy_dir ? policy_dir : s->model_dir, NULL, &e->policy));
    TRY(s->tokenizer_dir, klc_tokenizer_load(s->tokenizer_dir, NULL, &e->tok));
    klc_model_options mo, po;
    klc_model_get_options(e->base, &mo);
    klc_model_get_options(e->policy, &po);
    int32_t vocab = klc_tokenizer_vocab_size(e->tok), eot = klc_tokenizer_eot_id(e->tok);
    if (vocab > mo.vocab_size || po.vocab_size != mo.vocab_size) {
        fprintf(stderr,
                "klc: the tokenizer (%d tokens) and the models (%d and %d) do not fit together\n",
                vocab, mo.vocab_size, po.vocab_size);
        return -1;
    }
    if (eot < 0) {
        fprintf(stderr, "klc: the tokenizer in %s has no end-of-text token to start texts with\n",
                s->tokenizer_dir);
        return -1;
    }
    s->tr.eos_id = s->tr.bos_id = eot;
    if (s->tr.max_len == 0) s->tr.max_len = mo.n_ctx < 64 ? mo.n_ctx : 64;

    if (s->has_reward) {
        klc_feature *r;
        if (add_feature(e, &s->reward, &r)) return -1;
        e->reward = r;
    }
    int terms = s->n_constraints + s->n_moments + (s->has_reward && s->reward_beta > 0);
    if (terms == 0) return 0;
    if (s->has_reward && s->reward_beta > 0)
        TRY("target", klc_target_from_reward(e->base, e->reward, s->reward_beta, NULL, &e->target));
    else
        TRY("target", klc_target_create(e->base, NULL, &e->target));
    for (int i = 0; i < s->n_constraints; i++) {
        klc_feature *f;
        if (add_feature(e, &s->constraints[i], &f)) return -1;
        TRY(klc_feature_name(f), klc_target_add_pointwise(e->target, f));
    }
    for (int i = 0; i < s->n_moments; i++) {
        klc_feature *f;
        if (add_feature(e, &s->moments[i], &f)) return -1;
        TRY(klc_feature_name(f), klc_target_add_moment(e->target, f, &s->moments[i].mean));
    }
    if (s->n_moments > 0) {
        double lambda[MAX_TERMS];
        for (int i = 0; i < s->n_moments; i++) lambda[i] = s->moments[i].lambda;
        TRY("lambda", klc_target_set_lambda(e->target, lambda, (size_t)s->n_moments));
    }
    return 0;
}

/* Texts and generated ids of a sampled batch, in the layout features read. */
typedef struct batch_texts {
    int32_t n, stride;
    int32_t *ids, *lengths; /* [n*stride], [n] */
    char **texts;           /* [n] */
    size_t *text_lengths;   /* [n] */
} batch_texts;

static void batch_texts_free(batch_texts *b) {
    for (int32_t i = 0; b->texts && i < b->n; i++) free(b->texts[i]);
    free(b->texts);
    free(b->text_lengths);
    free(b->ids);
    free(b->lengths);
    memset(b, 0, sizeof *b);
}

/* The generated part of each sequence (prompt excluded), and its text without a final
 * end-of-text token. with_prompt: texts include the prompt after its first token. */
static int batch_texts_make(klc_batch *batch, klc_tokenizer *tok, int with_prompt,
                            batch_texts *out) {
    memset(out, 0, sizeof *out);
    int32_t n = klc_batch_size(batch), L = klc_batch_max_len(batch);
    const int32_t *tokens = klc_batch_tokens(batch), *lengths = klc_batch_lengths(batch);
    const int32_t *plen = klc_batch_prompt_lengths(batch);
    int32_t eot = klc_tokenizer_eot_id(tok);
    out->n = n;
    out->stride = L;
    out->ids = calloc((size_t)n * (size_t)L + 1, sizeof *out->ids);
    out->lengths = calloc((size_t)n + 1, sizeof *out->lengths);
    out->texts = calloc((size_t)n + 1, sizeof *out->texts);
    out->text_lengths = calloc((size_t)n + 1, sizeof *out->text_lengths);
    if (!out->ids || !out->lengths || !out->texts || !out->text_lengths) {
        batch_texts_free(out);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    for (int32_t i = 0; i < n; i++) {
        const int32_t *row = tokens + (size_t)i * L;
        int32_t g = lengths[i] - plen[i];
        memcpy(out->ids + (size_t)i * L, row + plen[i], sizeof(int32_t) * (size_t)g);
        out->lengths[i] = g;
        int32_t from = with_prompt ? 1 : plen[i], to = lengths[i];
        if (to > from && row[to - 1] == eot) to--;
        size_t need = 0;
        int st = klc_tokenizer_decode(tok, row + from, (size_t)(to - from), NULL, 0, &need);
        if (st != KLC_OK && st != KLC_ERR_INVALID_ARGUMENT) {
            batch_texts_free(out);
            return st;
        }
        out->texts[i] = malloc(need + 1);
        if (!out->texts[i]) {
            batch_texts_free(out);
            return KLC_ERR_OUT_OF_MEMORY;
        }
        st = klc_tokenizer_decode(tok, row + from, (size_t)(to - from), out->texts[i], need, &need);
        if (st != KLC_OK) {
            batch_texts_free(out);
            return st;
        }
        out->texts[i][need] = 0;
        out->text_lengths[i] = need;
    }
    return KLC_OK;
}

int engine_fit(engine *e, const train_settings *s, klc_fit_report *report) {
    int32_t nl = klc_target_num_lambda(e->target), pd = klc_target_phi_dim(e->target);
    if (!e->target || nl <= 0 || s->fit_samples == 0) return KLC_OK;
    int32_t rows = s->tr.batch_size < s->fit_samples ? s->tr.batch_size : s->fit_samples;
    klc_sampler_options so;
    klc_sampler_options_init(&so, KLC_SAMPLER_OPTIONS_VERSION);
    so.max_rows = rows;
    so.max_len = s->tr.max_len;
    klc_sampler *sampler = NULL;
    klc_batch *batch = NULL;
    double *phi = malloc(sizeof(double) * (size_t)s->fit_samples * (size_t)pd);
    unsigned char *b = malloc((size_t)s->fit_samples);
    int st = phi && b ? KLC_OK : KLC_ERR_OUT_OF_MEMORY;
    if (st == KLC_OK) st = klc_sampler_create(e->base, &so, &sampler);
    if (st == KLC_OK) st = klc_batch_create(rows, s->tr.max_len, 0, NULL, &batch);
    klc_sample_options sa;
    klc_sample_options_init(&sa, KLC_SAMPLE_OPTIONS_VERSION);
    klc_rng_init(&sa.rng, s->seed, KLC_STREAM_USER + 1); /* draws of its own */
    sa.eos_id = s->tr.eos_id;
    sa.bos_id = s->tr.bos_id;
    sa.max_new_tokens = s->tr.max_new_tokens;
    for (int32_t done = 0; st == KLC_OK && done < s->fit_samples;) {
        int32_t n = s->fit_samples - done < rows ? s->fit_samples - done : rows;
        sa.first_sample = done;
        st = klc_sampler_sample(sampler, &sa, n, batch);
        batch_texts bt;
        if (st == KLC_OK) st = batch_texts_make(batch, e->tok, 0, &bt);
        if (st != KLC_OK) break;
        klc_seq_batch sb = {sizeof sb,       n,          bt.stride,
                            bt.ids,          bt.lengths, (const char *const *)bt.texts,
                            bt.text_lengths, NULL};
        st = klc_target_log_prob(e->target, &sb, NULL, NULL, phi + (size_t)done * (size_t)pd,
                                 b + done);
        batch_texts_free(&bt);
        done += n;
    }
    if (st == KLC_OK) st = klc_target_fit(e->target, s->fit_samples, phi, b, NULL, &s->fit, report);
    klc_batch_destroy(batch);
    klc_sampler_destroy(sampler);
    free(phi);
    free(b);
    return st;
}

int engine_trainer(engine *e, train_settings *s) {
    TRY("objective", klc_objective_builtin(&s->obj, &e->objective));
    size_t n_params;
    klc_model_params(e->policy, &n_params);
    TRY("optimizer", klc_optimizer_create(&s->opt, n_params, &e->optimizer));
    s->tr.reward = e->reward;
    TRY("trainer", klc_trainer_create(e->policy, e->base, e->target, e->objective, e->optimizer,
                                      e->tok, &s->tr, &e->trainer));
    return 0;
}

void engine_free(engine *e) {
    klc_trainer_destroy(e->trainer);
    klc_optimizer_destroy(e->optimizer);
    klc_objective_destroy(e->objective);
    klc_target_destroy(e->target);
    for (int i = 0; i < e->n_features; i++) klc_feature_destroy(e->features[i]);
    klc_tokenizer_destroy(e->tok);
    klc_model_destroy(e->policy);
    klc_model_destroy(e->base);
    memset(e, 0, sizeof *e);
}

int engine_sample_texts(klc_model *model, klc_tokenizer *tok, int32_t n, int32_t max_len,
                        double temperature, int32_t top_k, double top_p, uint64_t seed,
                        const char *prompt, char ***texts) {
    *texts = NULL;
    if (n <= 0) return KLC_OK;
    int32_t eot = klc_tokenizer_eot_id(tok), rows = n < 32 ? n : 32;
    int32_t *ctx = NULL, ctx_len = 1;
    if (prompt) {
        size_t len = strlen(prompt), got = 0;
        ctx = malloc(sizeof(int32_t) * (len + 2));
        if (!ctx) return KLC_ERR_OUT_OF_MEMORY;
        int st =
            klc_tokenizer_encode(tok, prompt, len, KLC_TOKENIZE_EOT_BEFORE, ctx, len + 2, &got);
        if (st != KLC_OK) {
            free(ctx);
            return st;
        }
        ctx_len = (int32_t)got;
        if (ctx_len >= max_len) {
            free(ctx);
            return KLC_ERR_INVALID_ARGUMENT;
        }
    }
    klc_sampler_options so;
    klc_sampler_options_init(&so, KLC_SAMPLER_OPTIONS_VERSION);
    so.max_rows = rows;
    so.max_len = max_len;
    if (prompt) so.max_prompt_len = ctx_len;
    klc_sampler *sampler = NULL;
    klc_batch *batch = NULL;
    char **out = calloc((size_t)n, sizeof *out);
    int st = out ? klc_sampler_create(model, &so, &sampler) : KLC_ERR_OUT_OF_MEMORY;
    if (st == KLC_OK) st = klc_batch_create(rows, max_len, 0, NULL, &batch);
    klc_sample_options sa;
    klc_sample_options_init(&sa, KLC_SAMPLE_OPTIONS_VERSION);
    klc_rng_init(&sa.rng, seed, KLC_STREAM_USER + 2);
    sa.temperature = temperature;
    sa.top_k = top_k;
    sa.top_p = top_p;
    sa.eos_id = sa.bos_id = eot;
    klc_seqs contexts = {1, ctx_len, ctx, &ctx_len, NULL, NULL};
    if (prompt) sa.contexts = &contexts;
    for (int32_t done = 0; st == KLC_OK && done < n;) {
        int32_t k = n - done < rows ? n - done : rows;
        sa.first_sample = done;
        st = klc_sampler_sample(sampler, &sa, k, batch);
        batch_texts bt;
        if (st == KLC_OK) st = batch_texts_make(batch, tok, 1, &bt);
        if (st != KLC_OK) break;
        for (int32_t i = 0; i < k; i++) {
            out[done + i] = bt.texts[i];
            bt.texts[i] = NULL;
        }
        batch_texts_free(&bt);
        done += k;
    }
    klc_batch_destroy(batch);
    klc_sampler_destroy(sampler);
    free(ctx);
    if (st != KLC_OK) {
        engine_free_texts(out, n);
        return st;
    }
    *texts = out;
    return KLC_OK;
}

void engine_free_texts(char **texts, int32_t n) {
    for (int32_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
}
