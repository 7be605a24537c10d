/* Dropout masks drawn from the counter-based generator, so that a mask depends only on
 * (seed, step, sample, site, position), never on batching or thread scheduling, and the
 * backward pass regenerates it instead of storing it. */
#ifndef KLC_MODEL_DROPOUT_H
#define KLC_MODEL_DROPOUT_H

#include <stdint.h>

#include "klc.h"

/* Sites: each dropout location of the model has its own counter range. */
static inline uint64_t klc_dropout_site_embd(void) {
    return 1;
}
static inline uint64_t klc_dropout_site_attn(int layer) {
    return 2 + 3 * (uint64_t)layer;
}
static inline uint64_t klc_dropout_site_resid_attn(int layer) {
    return 3 + 3 * (uint64_t)layer;
}
static inline uint64_t klc_dropout_site_resid_mlp(int layer) {
    return 4 + 3 * (uint64_t)layer;
}

/* mask[i] = keep ? 1/(1-p) : 0 for elements first..first+n-1 of (sample, site). */
void klc_dropout_mask(float *mask, int64_t n, float p, const klc_rng *rng, uint64_t sample,
                      uint64_t site, uint64_t first);

#endif
