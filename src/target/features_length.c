/* The length feature: generated tokens per sequence. */
#include "target/feature.h"

typedef struct length_feature {
    klc_alloc_ctx ac;
} length_feature;

static int length_score(void *self, const klc_seq_batch *seqs, double *out) {
    (void)self;
    for (int32_t i = 0; i < seqs->n; i++) out[i] = (double)seqs->lengths[i];
    return KLC_OK;
}

static void length_release(void *self) {
    length_feature *lf = self;
    klc_alloc_ctx ac = lf->ac;
    klc_free(&ac, lf, sizeof *lf);
}

int klc_feature_length(const klc_feature_options *opts, klc_feature **out) {
    KLC_CHECK_ARG(out != NULL);
    *out = NULL;
    klc_feature_options o;
    KLC_TRY(klc_feature_opts_resolve(opts, &o));
    klc_alloc_ctx ac;
    klc_alloc_ctx_init(&ac, o.allocator);
    length_feature *lf = klc_alloc_zeroed(&ac, sizeof *lf);
    if (!lf) return KLC_ERR_OUT_OF_MEMORY;
    lf->ac = ac;
    return klc_feature_wrap_builtin(&lf->ac, o.name ? o.name : "length", 1, length_score,
                                    length_release, lf, out);
}
