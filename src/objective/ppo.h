/* PPO for KL-control (klc.h, "PPO"): the objective's state, the per-token arithmetic
 * (rewards, GAE, whitening) and one minibatch's loss and gradient, shared by its files
 * and reachable by the tests. */
#ifndef KLC_OBJECTIVE_PPO_H
#define KLC_OBJECTIVE_PPO_H

#include "objective.h"

/* Everything PPO keeps between steps is in plain arrays (checkpoints save them through
 * klc_objective_ppo_state); the work buffers are reused and carry nothing across steps. */
struct klc_ppo {
    int32_t n_embd;     /* 0 until the value head exists */
    float *head;        /* [n_embd + 1] value head: weight, then bias */
    float *head_grad;   /* [n_embd + 1] */
    float *adam_m;      /* [n_embd + 1] */
    float *adam_v;      /* [n_embd + 1] */
    int64_t adam_steps; /* value-head updates taken */
    /* Work buffers, grown at a step's start. */
    void *work;
    size_t work_bytes;
};

void klc_ppo_free(klc_ppo *p, const klc_alloc_ctx *alloc);
/* Creates the zero value head for n_embd, or checks that the existing one has it. */
int klc_ppo_ensure_head(klc_ppo *p, const klc_alloc_ctx *alloc, int32_t n_embd);

/* PPO's part of the built-in state blob (ppo_state.c): its size, writing it, checking a
 * saved one against p (allocating in *block the head to adopt when p has none yet), and
 * adopting a checked one, which cannot fail. */
size_t klc_ppo_state_bytes(const klc_ppo *p);
void klc_ppo_state_write(const klc_ppo *p, unsigned char *dst);
int klc_ppo_state_check(const klc_ppo *p, const klc_alloc_ctx *alloc, const unsigned char *src,
                        size_t bytes, float **block);
void klc_ppo_state_commit(klc_ppo *p, const klc_alloc_ctx *alloc, const unsigned char *src,
                          float *block);

/* The generated positions of sequence i in the padded layout: t = first .. last, where
 * position t predicts token t+1. */
static inline int32_t klc_ppo_first(const int32_t *score_from, int32_t i) {
    return score_from ? score_from[i] - 1 : 0;
}

/* GAE over right-padded sequences [n_seq*max_len]: at the generated positions of each
 * sequence, delta_t = r_t + gamma V_(t+1) - V_t (V after the last position is 0) and
 * A_t = delta_t + gamma lambda A_(t+1); ret = A + V. Other positions are left as they
 * are. */
void klc_ppo_gae(int32_t n_seq, int32_t max_len, const int32_t *lengths, const int32_t *score_from,
                 const double *rewards, const double *values, double gamma, double lambda,
                 double *adv, double *ret);

/* Mean and population variance of x over the generated positions. */
void klc_ppo_moments(int32_t n_seq, int32_t max_len, const int32_t *lengths,
                     const int32_t *score_from, const double *x, double *mean, double *var);

/* Ziegler's whiten at the generated positions: (x - mean) / sqrt(var + 1e-8), plus the mean
 * again when shift_mean is 0. */
void klc_ppo_whiten(int32_t n_seq, int32_t max_len, const int32_t *lengths,
                    const int32_t *score_from, double *x, int shift_mean);

/* The step's data a minibatch reads, in the step's padded layout [n_seq*max_len]. */
typedef struct klc_ppo_batch {
    int32_t n_seq, max_len;
    const int32_t *tokens, *lengths, *score_from; /* score_from may be NULL */
    const int64_t *sample_ids;                    /* may be NULL: 0, 1, ... */
    const float *old_logp;                        /* log pi_old per token */
    const double *old_values, *adv, *ret;
} klc_ppo_batch;

/* Sums over a minibatch's tokens (divide by n_tok for the means). */
typedef struct klc_ppo_sums {
    double n_tok, pg_loss, vf_loss, clipped, approx_kl;
} klc_ppo_sums;

/* Work space of klc_ppo_minibatch for micro-batches of up to `rows` sequences, in bytes. */
size_t klc_ppo_minibatch_bytes(int32_t rows, int32_t max_len, int32_t n_embd);

/* One minibatch, rows[0..m) of the batch: the loss L = (1/n_tok) sum_t (pg_t + vf_coef
 * vf_t) over its generated tokens, with the policy's current parameters and the value
 * head. With `backward`, training forwards and backwards (micro_batch sequences at a
 * time) add dL/dtheta to the model's gradient block and dL/d(head) to p->head_grad;
 * without, inference forwards only (the loss alone). `work` holds
 * klc_ppo_minibatch_bytes(micro_batch or m, ...) bytes. *sums receives the sums. */
int klc_ppo_minibatch(klc_ppo *p, const klc_objective_options *o, klc_model *model,
                      const klc_ppo_batch *b, const int32_t *rows, int32_t m, int32_t micro_batch,
                      int backward, void *work, klc_ppo_sums *sums);

/* V_old: the value head on the policy's hidden states at every generated position of the
 * batch, by inference forwards of up to `rows` sequences (slices of the batch); `work`
 * holds klc_ppo_minibatch_bytes(rows, ...) bytes. values [n_seq*max_len]. */
int klc_ppo_values(klc_ppo *p, klc_model *model, const klc_ppo_batch *b, int32_t rows, void *work,
                   double *values);

/* The update loop of klc_objective_update for a PPO objective (ppo.c). */
int klc_ppo_update(klc_objective *obj, klc_model *model, klc_optimizer *opt,
                   const klc_step_view *step, const klc_seqs *seqs, const klc_update_options *uo,
                   klc_metrics *metrics);

#endif
