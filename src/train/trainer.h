/* The trainer's internal state, shared by its source files. */
#ifndef KLC_TRAIN_TRAINER_H
#define KLC_TRAIN_TRAINER_H

#include "core/internal.h"

/* A klc_batch with everything a step derives from it, sized at creation so that a step
 * allocates nothing: generated-token lengths and decoded texts for the features, the
 * pointwise indicators, the rewards and the weights. */
typedef struct tr_batch {
    klc_batch *b;
    int32_t capacity, max_len;
    int32_t *gen_lengths; /* [capacity] tokens after the prompt */
    int32_t *gen_ids;     /* [capacity * max_len] those tokens, at offset 0 of each row */
    int32_t *ctx_assign;  /* [capacity] contexts drawn for KLC_CONTEXTS_RANDOM */
    char *text_buf;       /* [capacity * text_cap] */
    size_t text_cap;      /* bytes per sequence */
    const char **texts;   /* [capacity] into text_buf */
    size_t *text_lengths; /* [capacity] */
    unsigned char *b_ind; /* [capacity] 1 when every pointwise constraint holds */
    double *reward;       /* [capacity] */
    double *weights;      /* [capacity] */
    double *scratch;      /* [capacity] */
    size_t bytes;         /* what the auxiliary arrays take, the klc_batch included */
} tr_batch;

struct klc_trainer {
    klc_alloc_ctx alloc;
    klc_trainer_options o;
    klc_model *policy, *base, *q; /* q: the off-policy copy, NULL on-policy */
    klc_target *target;
    klc_objective *obj;
    klc_optimizer *opt;
    klc_tokenizer *tok;
    klc_sampler *pi_sampler, *q_sampler; /* q_sampler NULL on-policy */
    klc_z_estimate *z;
    klc_metrics *m;
    tr_batch train, zb, eval;             /* zb and eval only when their sample counts are > 0 */
    int32_t max_len, phi_dim, reward_col; /* reward_col: the reward's index in phi, or -1 */
    int has_pointwise;
    uint64_t target_version; /* when the terms above were read */
    uint32_t needs;
    int64_t step, proposal_updates;
    int64_t n_params;
    uint64_t *hashes; /* [hash_cap] Distinct-n scratch: one hash per word n-gram */
    size_t hash_cap;
    tr_batch div;             /* diversity samples, when diversity_period > 0 */
    struct tr_grad_var *gvar; /* gradient-variance buffers, when grad_variance_period > 0 */
    /* Contexts (contexts.c): n_contexts is 1 without prompts (contexts.n_seq is then 0). */
    int32_t n_contexts;
    klc_seqs contexts;  /* over ctx_block: tokens [n_contexts * longest], lengths */
    int32_t *ctx_order; /* [grouped] sequence indices of a batch grouped by context */
    int32_t *ctx_start; /* [n_contexts + 1] where each context's run starts in ctx_order */
    double *ctx_gather; /* [3 * grouped] one context's logP, logq and log m side by side */
    int32_t grouped;    /* the largest batch the arrays above can group */
    void *ctx_block;    /* every context array, one allocation of ctx_bytes */
    size_t ctx_bytes;
};

/* The byte size of klc_trainer_options as a caller of that version compiled it
 * (options.c). */
size_t tr_options_size(uint32_t version);

/* Copies the prompts of t->o.contexts (checked against the vocabulary and max_len) and lays
 * out the arrays that group batches of up to `grouped` sequences by context; without
 * contexts, one context and the grouping arrays only. */
int tr_contexts_create(klc_trainer *t, int32_t vocab, int32_t grouped);
void tr_contexts_destroy(klc_trainer *t);
/* The longest prompt (1 without contexts). */
int32_t tr_longest_prompt(const klc_trainer *t);
/* Draws the contexts of n sequences with global indices first.. for KLC_CONTEXTS_RANDOM. */
void tr_draw_contexts(const klc_trainer *t, int32_t *ids, int32_t n, uint64_t step, int64_t first);
/* Groups a batch's sequences by context into ctx_order and ctx_start. */
void tr_group(klc_trainer *t, const klc_batch *b);
/* The mean over the contexts present in the grouped batch of each context's mean of
 * v[i * stride] (a plain mean with one context). */
double tr_context_mean(const klc_trainer *t, const double *v, size_t stride);
/* An importance-sampled estimate f(n, logP, logq, logm, log_z) made per context of the
 * grouped batch with that context's running Z and averaged over the contexts present;
 * NaN when a context present has no finite Z estimate. */
typedef int (*tr_estimator)(int32_t n, const double *logP, const double *logq, const double *logm,
                            double log_z, double *out);
int tr_context_estimate(klc_trainer *t, const klc_batch *b, const double *logm, tr_estimator f,
                        double *out);
/* The effective sample size of P/q summed over the contexts, and their largest weight's
 * share averaged over them. */
int tr_context_ess(klc_trainer *t, const klc_batch *b, double *ess, double *max_share);

/* Reads phi's length, the reward column and whether there are pointwise terms from the
 * target (create.c). */
int tr_read_target(klc_trainer *t);

/* Sequences per inference forward when the trainer scores a batch: batches of evaluation
 * samples may be much larger than a training batch, and an inference forward's buffers grow
 * with its rows. */
enum { TR_SCORE_ROWS = 64 };

/* klc_model_score over seqs in pieces of at most TR_SCORE_ROWS sequences, writing fo's
 * per-sequence and per-token outputs at each piece's place; fo->hidden must be NULL
 * (tr_batch.c). */
int tr_score(klc_model *model, const klc_seqs *seqs, const klc_forward_options *fo);

/* Lays out and frees a batch (tr_batch.c). */
int tr_batch_create(klc_trainer *t, tr_batch *tb, int32_t capacity);
void tr_batch_destroy(klc_trainer *t, tr_batch *tb);

/* Fills tb with n samples of model (through sampler) keyed (seed, step) from global index
 * first, pure ancestral unless `training` asks for the training sampler's settings; then
 * texts, log a, log P, phi, b and the reward, as far as the trainer has them (fill.c). */
int tr_fill(klc_trainer *t, tr_batch *tb, klc_sampler *sampler, int32_t n, uint64_t step,
            int64_t first, int training);

/* Samples n sequences into tb (pure ancestral but for the nucleus top_p, 1: off) keyed
 * as tr_fill, and decodes them; nothing is scored (fill.c). */
int tr_sample_texts(klc_trainer *t, tr_batch *tb, klc_sampler *sampler, int32_t n, uint64_t step,
                    int64_t first, double top_p);

/* Writes the batch's metrics under a prefix ("train." or "eval."); logpi NULL means the
 * samples come from pi itself (stats.c). */
int tr_batch_metrics(klc_trainer *t, tr_batch *tb, const double *logpi, const char *prefix);

/* Mean over texts of distinct word n-grams / word n-grams, n = 1..3 (distinct.c). */
void tr_distinct(klc_trainer *t, const tr_batch *tb, int32_t n, double out[3]);

/* Hashes of the words (runs of bytes other than ASCII white space) of a text into w, at
 * most (len+1)/2 of them; returns their count. The hash of the n words at w, the order n
 * included so that n-grams of different orders differ (distinct.c). */
size_t tr_words(const char *s, size_t len, uint64_t *w);
uint64_t tr_ngram_hash(const uint64_t *w, size_t n);

/* Sets prefix+name, the name cut to fit KLC_METRICS_NAME_MAX. */
int tr_metric(klc_metrics *m, const char *prefix, const char *name, double value);

#endif
