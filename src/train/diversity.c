/* The trainer's diversity report: Distinct-n and Self-BLEU-n on texts sampled from the
 * policy with the papers' evaluation sampler (nucleus top-p, 0.9 by default), keyed by the
 * step and global indices after the training, Z-check and evaluation samples. */
#include "diversity.h"

int tr_diversity(klc_trainer *t) {
    tr_batch *d = &t->div;
    const int32_t n = t->o.diversity_samples;
    const int64_t first = (int64_t)t->o.batch_size + t->o.z_samples + t->o.eval_samples;
    KLC_TRY(
        tr_sample_texts(t, d, t->pi_sampler, n, (uint64_t)t->step, first, t->o.diversity_top_p));
    double distinct[3], bleu[3];
    tr_distinct(t, d, n, distinct);
    const int32_t n_bleu = n < TR_SELF_BLEU_MAX_TEXTS ? n : TR_SELF_BLEU_MAX_TEXTS;
    KLC_TRY(tr_self_bleu(&t->alloc, n_bleu, d->texts, d->text_lengths, bleu));
    static const char *const names[6] = {"diversity.distinct_1",  "diversity.distinct_2",
                                         "diversity.distinct_3",  "diversity.self_bleu_3",
                                         "diversity.self_bleu_4", "diversity.self_bleu_5"};
    for (int k = 0; k < 3; k++) {
        KLC_TRY(klc_metrics_set(t->m, names[k], distinct[k]));
        KLC_TRY(klc_metrics_set(t->m, names[3 + k], bleu[k]));
    }
    return KLC_OK;
}
