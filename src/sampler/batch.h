/* The batch's internals, shared with the sampler, which writes sequences in place. */
#ifndef KLC_SAMPLER_BATCH_H
#define KLC_SAMPLER_BATCH_H

#include "core/internal.h"

struct klc_batch {
    klc_alloc_ctx alloc;
    int32_t capacity, max_len, n_features;
    int32_t n_seq;
    uint32_t flags;                                  /* KLC_BATCH_* */
    int32_t *tokens;                                 /* [capacity * max_len] */
    int32_t *lengths, *prompt_lengths, *context_ids; /* [capacity] */
    int64_t *sample_ids;                             /* [capacity] */
    uint32_t *seq_flags;                             /* [capacity] */
    double *logq, *loga, *logpi, *logP;              /* [capacity] */
    double *phi;                            /* [capacity * n_features], NULL if n_features == 0 */
    float *logq_tok, *loga_tok, *logpi_tok; /* [capacity * max_len] */
    void *block;                            /* every array above, one allocation */
    size_t bytes;
};

/* Resets every slot of rows 0..n-1 (NaN per sequence, 0 per token) and the sequence flags. */
void klc_batch_reset_slots(klc_batch *b, int32_t n);

#endif
