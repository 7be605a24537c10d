/* The KV cache's internals, shared by decoding and by the prefill hook of the forward. */
#ifndef KLC_MODEL_DECODE_H
#define KLC_MODEL_DECODE_H

#include "lm_head.h"
#include "workspace.h"

struct klc_kv_cache {
    klc_alloc_ctx alloc;
    int32_t n_layer, n_head, head_dim, n_embd, vocab_size, max_rows, max_len;
    float *k, *v; /* [n_layer][max_rows][n_head][max_len][head_dim] each */
    int32_t *len; /* [max_rows] */
    float *block; /* k, v and the decode buffers below, one allocation */
    size_t bytes;
    /* Decode buffers for up to max_rows rows. */
    float *x, *ln, *qkv, *atty, *tmp, *fch; /* [rows,C] x4, [rows,3C], [rows,4C] */
    float *scores;                          /* [threads, max_len] */
    float *head_scratch;                    /* klc_decode_lm_head's */
    float *mean, *rstd;                     /* [rows] LayerNorm statistics, when keeping */
    int32_t threads;
};

/* Copies layer l's keys and values of the packed prompts (qkv[R,3C]) into rows 0..n_seq-1. */
void klc_kv_cache_store_prompts(klc_kv_cache *c, int l, const float *qkv, const klc_activations *a,
                                int32_t n_seq);

/* klc_model_decode after its checks. keep (may be NULL): for each row j, the row of the
 * model's training workspace (keep.h) that receives its activations. */
int klc_decode_run(klc_model *m, klc_kv_cache *c, int32_t n, const int32_t *rows,
                   const int32_t *tokens, float *logits, const int64_t *keep);

/* The forward over a batch (forward.c), shared with prefill. */
int klc_model_run_forward(klc_model *m, const klc_seqs *s, const klc_forward_options *o,
                          int training, klc_lm_mode mode, const float *on, const float *sm);

#endif
