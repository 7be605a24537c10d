/* Causal multi-head self-attention over packed sequences, forward and backward. */
#ifndef KLC_MODEL_ATTENTION_H
#define KLC_MODEL_ATTENTION_H

#include <stdint.h>

#include "klc.h"

/* Where each sequence's rows start in the packed layout and how long it is. */
typedef struct klc_packing {
    int32_t n_seq;
    const int64_t *row_off; /* [n_seq]: first packed row of sequence b */
    const int32_t *len;     /* [n_seq] */
    const int64_t *att_off; /* [n_seq]: offset of sequence b's [H,T,T] probabilities */
    const int64_t *sample;  /* [n_seq]: global sample index (dropout keys) */
} klc_packing;

/* Dropout on the attention probabilities, or p = 0 for none. site identifies the layer. */
typedef struct klc_attn_dropout {
    float p;
    const klc_rng *rng;
    uint64_t site;
    int32_t n_ctx;
} klc_attn_dropout;

/* out[R,C] = softmax(Q K^T / sqrt(hs), causal) V per sequence and head, from
 * qkv[R,3C] (Q | K | V, head h at columns h*hs). att receives the probabilities
 * ([H,T,T] per sequence at att_off; NULL: use the per-thread scratch, nothing kept).
 * scratch: per thread at least 2*Tmax*Tmax floats. */
void klc_attention_forward(float *out, float *att, const float *qkv, const klc_packing *pk, int C,
                           int H, const klc_attn_dropout *drop, float *scratch,
                           int64_t scratch_per_thread);

/* dqkv[R,3C] = gradient of the attention given dout[R,C], the kept probabilities and
 * qkv. dqkv is overwritten. */
void klc_attention_backward(float *dqkv, const float *dout, const float *att, const float *qkv,
                            const klc_packing *pk, int C, int H, const klc_attn_dropout *drop,
                            float *scratch, int64_t scratch_per_thread);

/* Fills buf[T*T] (row s < t only, causal) with the dropout multipliers of (sequence, head). */
void klc_attention_dropout_mask(float *buf, int T, const klc_attn_dropout *drop, uint64_t sample,
                                int head);

#endif
