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
};

/* The bytes of a klc_trainer_options of a given version (options.c). */
size_t tr_options_size(uint32_t version);

/* Reads phi's length, the reward column and whether there are pointwise terms from the
 * target (create.c). */
int tr_read_target(klc_trainer *t);

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
