/* One draw from the sampling distribution built from one row of logits: temperature,
 * top-k, top-p, renormalisation, and the inverse of the cumulative distribution. */
#ifndef KLC_SAMPLER_DRAW_H
#define KLC_SAMPLER_DRAW_H

#include "select.h"

#include <stddef.h>
#include <stdint.h>

typedef struct klc_draw_params {
    int32_t vocab;
    float inv_temperature; /* 1 / temperature */
    int32_t top_k;         /* 0 or >= vocab: off */
    double top_p;          /* 1: off */
} klc_draw_params;

/* Floats of work space one draw needs for a vocabulary of V. */
size_t klc_draw_work_floats(int32_t V);

/* Samples a token from logits[vocab] with the uniform u in [0, 1) and writes it with its
 * log-probability under the distribution sampled from. The logits are scaled by
 * 1/temperature in place; cands (vocab elements) and work (klc_draw_work_floats) are
 * scratch. Returns KLC_OK, or KLC_ERR_NUMERIC (without a message: the caller knows the
 * sequence and position) when the logits hold NaN or +inf, or are all -inf. */
int klc_draw(const klc_draw_params *p, float *logits, klc_cand *cands, float *work, double u,
             int32_t *token, double *logprob);

#endif
