/* Diversity of sampled texts (ALGORITHMS.md section 3): Self-BLEU here, Distinct-n in
 * trainer.h, and the trainer's periodic report of both. */
#ifndef KLC_TRAIN_DIVERSITY_H
#define KLC_TRAIN_DIVERSITY_H

#include "trainer.h"

/* Most texts Self-BLEU takes (the papers' 500); more are ignored. */
#define TR_SELF_BLEU_MAX_TEXTS 500

/* Self-BLEU-3, 4 and 5 (out[0..2]) of n texts (see selfbleu.c for the exact definition);
 * NaN for n < 2. The tables are allocated and freed per call with alloc. */
int tr_self_bleu(const klc_alloc_ctx *alloc, int32_t n, const char *const *texts,
                 const size_t *lengths, double out[3]);

/* Samples diversity_samples texts of pi (nucleus diversity_top_p) and sets the
 * "diversity." metrics (diversity.c). */
int tr_diversity(klc_trainer *t);

#endif
