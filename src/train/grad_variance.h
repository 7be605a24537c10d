/* The trace of the per-sample gradient covariance of the objective's estimator
 * (ALGORITHMS.md section 3), without keeping one gradient per sample. */
#ifndef KLC_TRAIN_GRAD_VARIANCE_H
#define KLC_TRAIN_GRAD_VARIANCE_H

#include "trainer.h"

typedef struct tr_grad_var {
    size_t n_params;
    int32_t n_seq, max_len;
    float *sum;             /* [n_params] sum of the per-sample gradients */
    float *on, *sm;         /* [n_seq*max_len] the whole batch's logit coefficients (1/N) */
    float *on_row, *sm_row; /* [max_len] one sequence's, times N */
    size_t bytes;
} tr_grad_var;

/* Buffers for batches of up to n_seq sequences of max_len tokens and a model of n_params
 * parameters. */
int tr_grad_var_create(const klc_alloc_ctx *alloc, size_t n_params, int32_t n_seq, int32_t max_len,
                       tr_grad_var **out);
void tr_grad_var_destroy(const klc_alloc_ctx *alloc, tr_grad_var *g);

/* The per-sample gradient g_i of sequence i is the gradient of the estimator with the
 * objective's coefficients for the whole batch (its baselines and normalisations see all
 * N sequences) and mass 1 on sequence i alone, so that the batch gradient is
 * (1/N) sum_i g_i. Over the first n (2 <= n <= N) sequences:
 *   trace      = (sum_i ||g_i||^2 - ||sum_i g_i||^2 / n) / (n - 1),
 * the unbiased (n/(n-1)-corrected) trace of their covariance, and
 *   mean_sq    = ||(1/n) sum_i g_i||^2.
 * One forward-backward per sequence; the model's gradient block is overwritten (it ends
 * holding g_n). */
int tr_grad_variance(tr_grad_var *g, klc_objective *obj, klc_model *model,
                     const klc_step_view *view, const klc_seqs *seqs, int32_t n, double *trace,
                     double *mean_sq);

/* The trainer's report on its training batch before the update: sets "grad_variance"
 * and "grad_mean_sq_norm" (grad_variance.c). */
int tr_grad_variance_step(klc_trainer *t, const klc_step_view *view);

#endif
