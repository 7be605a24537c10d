/* The LM head (logits = h wte^T), chunk by chunk over tokens: log-softmax, the target's
 * log-probability and, when asked, the logit gradient formed in place and multiplied back,
 * so that no [tokens x vocab] buffer ever exists. */
#ifndef KLC_MODEL_LM_HEAD_H
#define KLC_MODEL_LM_HEAD_H

#include "workspace.h"

typedef enum klc_lm_mode {
    KLC_LM_NONE,          /* skip the head (prefill computes its own last-row logits) */
    KLC_LM_LOGPROBS,      /* token_lp and lse only */
    KLC_LM_FUSED_GRAD,    /* logprobs, then the gradient from the same logits */
    KLC_LM_RECOMPUTE_GRAD /* gradient only, logits recomputed, lse from the forward */
} klc_lm_mode;

/* Over rows 0..R-1 of a->lnf. In the gradient modes dlnf[R,C] is overwritten and the
 * LM head's gradient added to dwte; coefficients are indexed by a->row_index. */
void klc_lm_head(klc_model *m, klc_activations *a, int64_t R, klc_lm_mode mode,
                 const float *onehot_coef, const float *softmax_coef, float *dlnf);

#endif
