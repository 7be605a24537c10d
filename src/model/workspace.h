/* Planning and allocation of a model's work buffers: every buffer a call needs is sized
 * from (sequences, tokens, longest sequence, training) before the call's loops start. */
#ifndef KLC_MODEL_WORKSPACE_H
#define KLC_MODEL_WORKSPACE_H

#include "model.h"

/* What one layer keeps for backward, over R packed rows. In inference only layers[0]
 * exists and is reused by every layer (att is then NULL). */
typedef struct klc_layer_acts {
    float *ln1, *ln1_mean, *ln1_rstd; /* [R,C], [R], [R] */
    float *qkv;                       /* [R,3C] */
    float *att;                       /* [sum_b H T_b^2] softmax probabilities */
    float *atty;                      /* [R,C] attention output before c_proj */
    float *res2;                      /* [R,C] residual after attention */
    float *ln2, *ln2_mean, *ln2_rstd; /* [R,C], [R], [R] */
    float *fch;                       /* [R,4C] before GELU */
    float *fch_gelu;                  /* [R,4C] */
    float *res3;                      /* [R,C] block output */
} klc_layer_acts;

/* The capacity a workspace is planned for. */
typedef struct klc_ws_shape {
    int64_t rows;    /* packed tokens */
    int64_t att;     /* attention probabilities kept (training) */
    int32_t n_seq;   /* sequences */
    int32_t tmax;    /* longest sequence */
    int32_t threads; /* per-thread scratch copies */
    int training;
} klc_ws_shape;

typedef struct klc_activations {
    klc_ws_shape cap;
    klc_layer_acts *layers;           /* n_layer when training, else 1 */
    float *encoded;                   /* [R,C] embeddings (block 0 input) */
    float *lnf, *lnf_mean, *lnf_rstd; /* [R,C], [R], [R] */
    float *lse;                       /* [R] logsumexp of each row's logits */
    float *token_lp;                  /* [R] log-probability of each row's target */
    float *logits;                    /* [logits_rows, V] one chunk */
    int64_t logits_rows;
    float *attn_scratch; /* [threads, 3 tmax^2] */
    int64_t attn_scratch_per_thread;
    float *ln_scratch; /* [threads, 2C] */
    float *mask;       /* [R,C] dropout multipliers (training) */
    /* Backward buffers (training). */
    float *dres, *dtmp, *dtmp2; /* [R,C] each */
    float *dqkv;                /* [R,3C] */
    float *dfch;                /* [R,4C] */
    /* Packing of the current batch. */
    int64_t *row_off, *att_off, *sample; /* [n_seq] */
    int32_t *len;                        /* [n_seq] */
    int32_t *row_target;                 /* [R] next token, or -1 */
    int64_t *row_index;                  /* [R] index into the padded [n_seq*max_len] layout */
    /* The batch kept activations belong to (training): tokens [n_seq, tmax], lengths. */
    int32_t *kept_tokens, *kept_len;
} klc_activations;

/* Ensures capacity for `need` (grows once, at the call's start). */
int klc_workspace_ensure(klc_model *m, const klc_ws_shape *need);
void klc_workspace_free(klc_model *m);
/* Bytes a workspace of that shape takes: kept activations and scratch. */
void klc_workspace_bytes(const klc_model_options *cfg, const klc_ws_shape *s, size_t *activations,
                         size_t *scratch);

#endif
