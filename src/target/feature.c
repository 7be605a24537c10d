/* klc_feature: a copied ops struct around a caller's state, and the scoring gate that
 * checks batches going in and values coming out. */
#include "target/feature.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

int klc_feature_options_init(klc_feature_options *o, uint32_t version) {
    if (!o) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_feature_options_init: NULL options");
    if (version == 0 || version > KLC_FEATURE_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_feature_options_init: unknown options version %u (this library "
                        "knows 1..%d)",
                        version, KLC_FEATURE_OPTIONS_VERSION);
    memset(o, 0, sizeof *o);
    o->version = version;
    o->aggregate = KLC_AGGREGATE_SUM;
    o->default_value = 1.0;
    return KLC_OK;
}

int klc_feature_opts_resolve(const klc_feature_options *opts, klc_feature_options *out) {
    klc_feature_options_init(out, KLC_FEATURE_OPTIONS_VERSION);
    if (!opts) return KLC_OK;
    if (opts->version == 0 || opts->version > KLC_FEATURE_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "feature options version %u is not one this library knows (1..%d); "
                        "fill the struct with klc_feature_options_init",
                        opts->version, KLC_FEATURE_OPTIONS_VERSION);
    *out = *opts;
    if (out->flags & ~(uint32_t)KLC_FEATURE_CASELESS)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "feature option flags = 0x%x has unknown bits",
                        out->flags);
    if (out->aggregate != KLC_AGGREGATE_SUM && out->aggregate != KLC_AGGREGATE_MEAN &&
        out->aggregate != KLC_AGGREGATE_COUNT)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "feature option aggregate = %d is not KLC_AGGREGATE_SUM (0), _MEAN (1) "
                        "or _COUNT (2)",
                        out->aggregate);
    if (!isfinite(out->default_value))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "feature option default_value = %g must be finite", out->default_value);
    if (out->name && !out->name[0])
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "feature option name is empty");
    return KLC_OK;
}

static int feature_alloc(const klc_alloc_ctx *ac, const char *name, int32_t dim,
                         klc_feature **out) {
    klc_feature *f = klc_alloc_zeroed(ac, sizeof *f);
    if (!f) return KLC_ERR_OUT_OF_MEMORY;
    f->ac = *ac;
    f->name = klc_strdup(ac, name);
    if (!f->name) {
        klc_free(ac, f, sizeof *f);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    f->dim = dim;
    *out = f;
    return KLC_OK;
}

int klc_feature_create(const klc_feature_ops *ops, void *self, const klc_feature_options *opts,
                       klc_feature **out) {
    KLC_CHECK_ARG(out != NULL);
    *out = NULL;
    KLC_CHECK_ARG(ops != NULL);
    if (ops->version == 0 || ops->version > KLC_FEATURE_OPS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "feature ops version %u is not one this library knows (1..%d)",
                        ops->version, KLC_FEATURE_OPS_VERSION);
    klc_feature_options o;
    KLC_TRY(klc_feature_opts_resolve(opts, &o));
    const char *name = o.name ? o.name : ops->name;
    if (!name || !name[0])
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "feature ops: name is NULL or empty");
    if (ops->dim < 1)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "feature '%s': dim = %d must be >= 1", name,
                        ops->dim);
    if (!ops->score_batch)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "feature '%s': score_batch is NULL", name);
    klc_alloc_ctx ac;
    klc_alloc_ctx_init(&ac, o.allocator);
    klc_feature *f;
    KLC_TRY(feature_alloc(&ac, name, ops->dim, &f));
    f->self = self;
    f->score_batch = ops->score_batch;
    f->release = ops->release;
    *out = f;
    return KLC_OK;
}

int klc_feature_wrap_builtin(const klc_alloc_ctx *ac, const char *name, int32_t dim,
                             klc_score_fn score, klc_release_fn release, void *self,
                             klc_feature **out) {
    klc_feature *f;
    int st = feature_alloc(ac, name, dim, &f);
    if (st) {
        release(self);
        return st;
    }
    f->self = self;
    f->score_batch = score;
    f->release = release;
    f->builtin = true;
    *out = f;
    return KLC_OK;
}

void klc_feature_destroy(klc_feature *f) {
    if (!f) return;
    if (f->release) f->release(f->self);
    klc_alloc_ctx ac = f->ac;
    klc_free_str(&ac, f->name);
    klc_free(&ac, f, sizeof *f);
}

const char *klc_feature_name(const klc_feature *f) {
    return f ? f->name : NULL;
}

int32_t klc_feature_dim(const klc_feature *f) {
    return f ? f->dim : -1;
}

int klc_seq_batch_check(const klc_seq_batch *s) {
    if (!s) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "the sequence batch is NULL");
    if (s->struct_size < sizeof(klc_seq_batch))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_seq_batch.struct_size = %u is smaller than this library's first "
                        "version of the struct (%zu bytes); set it to sizeof(klc_seq_batch)",
                        s->struct_size, sizeof(klc_seq_batch));
    if (s->n < 0 || s->stride < 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_seq_batch: n = %d and stride = %d must be >= 0", s->n, s->stride);
    if (s->n == 0) return KLC_OK;
    if (!s->lengths) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_seq_batch: lengths is NULL");
    for (int32_t i = 0; i < s->n; i++) {
        if (s->lengths[i] < 0 || s->lengths[i] > s->stride)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_seq_batch: lengths[%d] = %d is not in 0..stride (%d)", i,
                            s->lengths[i], s->stride);
        if (s->lengths[i] > 0 && !s->ids)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_seq_batch: ids is NULL but lengths[%d] = %d", i, s->lengths[i]);
    }
    if (s->texts) {
        if (!s->text_lengths)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_seq_batch: texts is set but text_lengths is NULL");
        for (int32_t i = 0; i < s->n; i++)
            if (!s->texts[i] && s->text_lengths[i] != 0)
                return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                                "klc_seq_batch: texts[%d] is NULL but text_lengths[%d] = %zu", i, i,
                                s->text_lengths[i]);
    }
    return KLC_OK;
}

int klc_seq_batch_need_texts(const klc_seq_batch *s) {
    if (s->n > 0 && !s->texts)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "reads decoded texts, but the batch has none (texts is NULL: score "
                        "with a tokenizer)");
    return KLC_OK;
}

int klc_feature_score(klc_feature *f, const klc_seq_batch *seqs, double *out) {
    KLC_CHECK_ARG(f != NULL);
    KLC_TRY(klc_seq_batch_check(seqs));
    if (seqs->n == 0) return KLC_OK;
    KLC_CHECK_ARG(out != NULL);
    int rc = f->score_batch(f->self, seqs, out);
    if (rc != 0) {
        if (f->builtin) return klc_fail_context(rc, "feature '%s': ", f->name);
        return klc_fail(KLC_ERR_CALLBACK, "feature '%s': score_batch returned %d", f->name, rc);
    }
    size_t total = (size_t)seqs->n * (size_t)f->dim;
    for (size_t k = 0; k < total; k++)
        if (!isfinite(out[k]))
            return klc_fail(KLC_ERR_NUMERIC,
                            "feature '%s' gave %g for sequence %zu, dimension %zu (feature "
                            "values must be finite)",
                            f->name, out[k], k / (size_t)f->dim, k % (size_t)f->dim);
    return KLC_OK;
}
