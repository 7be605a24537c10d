/* The gradient-estimator core: coefficients once for the whole batch, then the model's
 * fused forward-backward micro-batch by micro-batch over slices of the batch, so that the
 * sum of the micro-batches' gradients is the gradient of the whole batch's loss. */
#include "objective.h"

#include <string.h>

int klc_accumulate_options_init(klc_accumulate_options *opts, uint32_t version) {
    if (!opts) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_accumulate_options_init: NULL");
    if (version < 1 || version > KLC_ACCUMULATE_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_accumulate_options_init: version %u is not supported (this library "
                        "knows versions 1..%d)",
                        version, KLC_ACCUMULATE_OPTIONS_VERSION);
    memset(opts, 0, sizeof *opts);
    opts->version = version;
    return KLC_OK;
}

static const char *const FN = "klc_objective_accumulate";

static int check_args(const klc_objective *obj, const klc_model *model, const klc_step_view *step,
                      const klc_seqs *seqs, const klc_accumulate_options *o) {
    if (!obj || !model || !step || !seqs)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: NULL objective, model, step or seqs", FN);
    if (o && (o->version < 1 || o->version > KLC_ACCUMULATE_OPTIONS_VERSION))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "%s: options version %u is not supported (fill them with "
                        "klc_accumulate_options_init)",
                        FN, o->version);
    if (o && o->micro_batch < 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: micro_batch = %d must be >= 0", FN,
                        o->micro_batch);
    if (!seqs->tokens || !seqs->lengths)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: seqs has NULL tokens or lengths", FN);
    if (step->n_seq != seqs->n_seq || step->max_len != seqs->max_len)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "%s: the step view has %d sequences of max_len %d but seqs has %d of %d",
                        FN, step->n_seq, step->max_len, seqs->n_seq, seqs->max_len);
    return KLC_OK;
}

int klc_objective_accumulate(klc_objective *obj, klc_model *model, const klc_step_view *step,
                             const klc_seqs *seqs, const klc_accumulate_options *opts) {
    KLC_TRY(check_args(obj, model, step, seqs, opts));
    klc_accumulate_options o;
    if (opts)
        o = *opts;
    else
        klc_accumulate_options_init(&o, KLC_ACCUMULATE_OPTIONS_VERSION);

    klc_step_view in = *step;
    in.tokens = seqs->tokens;
    in.lengths = seqs->lengths;
    in.score_from = seqs->score_from;
    klc_step_view v;
    KLC_TRY(klc_view_prepare(obj, &in, 1, FN, &v));

    const int32_t n = seqs->n_seq, T = seqs->max_len;
    const size_t n_coef = (size_t)n * (size_t)T;
    size_t coef_bytes;
    if (klc_mul_overflows(n_coef, 2 * sizeof(float), &coef_bytes))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: batch too large", FN);
    /* Coefficients, then the sample ids, in the handle's reused scratch. */
    const size_t ids_at = (coef_bytes + 63) / 64 * 64;
    char *scratch = klc_objective_scratch(obj, 0, ids_at + (size_t)n * sizeof(int64_t));
    if (!scratch) return KLC_ERR_OUT_OF_MEMORY;
    float *on = (float *)scratch;
    int64_t *ids = seqs->sample_ids ? NULL : (int64_t *)(scratch + ids_at);
    float *sm = on + n_coef;
    int status = klc_objective_coeffs(obj, &v, o.mass, on, sm, o.weights_out, FN);

    /* Dropout masks are keyed by global sample ids; a micro-batch must carry its
     * sequences' own, not 0..m-1 again. */
    if (ids)
        for (int32_t i = 0; i < n; i++) ids[i] = i;
    const int64_t *sample_ids = seqs->sample_ids ? seqs->sample_ids : ids;
    const int32_t mb = o.micro_batch > 0 && o.micro_batch < n ? o.micro_batch : n;
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.flags = o.forward_flags;
    fo.dropout = o.dropout;
    for (int32_t start = 0; status == KLC_OK && start < n; start += mb) {
        const int32_t m = n - start < mb ? n - start : mb;
        const size_t off = (size_t)start * (size_t)T;
        klc_seqs slice = {m,
                          T,
                          seqs->tokens + off,
                          seqs->lengths + start,
                          seqs->score_from ? seqs->score_from + start : NULL,
                          sample_ids + start};
        fo.seq_logprobs = o.logpi_out ? o.logpi_out + start : NULL;
        status = klc_model_forward_backward(model, &slice, &fo, on + off, sm + off);
        if (status != KLC_OK)
            klc_fail_context(status,
                             "%s: micro-batch of sequences %d..%d (gradients of sequences "
                             "0..%d are accumulated): ",
                             FN, start, start + m - 1, start - 1);
    }
    return status;
}
