/* Creation, destruction and inspection of klc_optimizer. */
#include "optim.h"

#include <string.h>

static void free_buffers(klc_optimizer *opt) {
    klc_free(&opt->alloc, opt->m, opt->m ? opt->n * sizeof(float) : 0);
    klc_free(&opt->alloc, opt->v, opt->v ? opt->n * sizeof(float) : 0);
    klc_free(&opt->alloc, opt->partials, 2 * opt->n_chunks * sizeof(double));
}

int klc_optimizer_create(const klc_optimizer_options *o, size_t n_params, klc_optimizer **out) {
    if (!out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_optimizer_create: NULL out");
    *out = NULL;
    KLC_TRY(klc_optimizer_check_options(o));
    size_t bytes;
    if (n_params == 0 || klc_mul_overflows(n_params, 2 * sizeof(float), &bytes))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_optimizer_create: n_params = %zu must be between 1 and %zu", n_params,
                        SIZE_MAX / (2 * sizeof(float)));
    klc_alloc_ctx ctx;
    klc_alloc_ctx_init(&ctx, o->allocator);
    klc_optimizer *opt = klc_alloc_zeroed(&ctx, sizeof *opt);
    if (!opt) return KLC_ERR_OUT_OF_MEMORY;
    opt->alloc = ctx;
    opt->opts = *o;
    opt->opts.allocator = NULL;
    opt->n = n_params;
    opt->n_chunks = (n_params + KLC_OPTIM_CHUNK - 1) / KLC_OPTIM_CHUNK;
    opt->n_moments = o->kind != KLC_OPTIMIZER_SGD ? 2 : o->momentum > 0.0 ? 1 : 0;
    const size_t moment_bytes = n_params * sizeof(float);
    opt->partials = klc_alloc_zeroed(&ctx, 2 * opt->n_chunks * sizeof(double));
    int ok = opt->partials != NULL;
    if (ok && opt->n_moments >= 1) ok = (opt->m = klc_alloc_zeroed(&ctx, moment_bytes)) != NULL;
    if (ok && opt->n_moments >= 2) ok = (opt->v = klc_alloc_zeroed(&ctx, moment_bytes)) != NULL;
    if (!ok) {
        free_buffers(opt);
        klc_free(&ctx, opt, sizeof *opt);
        return klc_fail(KLC_ERR_OUT_OF_MEMORY,
                        "klc_optimizer_create: out of memory for the state of %zu parameters",
                        n_params);
    }
    *out = opt;
    return KLC_OK;
}

void klc_optimizer_destroy(klc_optimizer *opt) {
    if (!opt) return;
    klc_alloc_ctx ctx = opt->alloc;
    free_buffers(opt);
    klc_free(&ctx, opt, sizeof *opt);
}

int klc_optimizer_get_options(const klc_optimizer *opt, klc_optimizer_options *out) {
    if (!opt || !out)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_optimizer_get_options: NULL argument");
    *out = opt->opts;
    return KLC_OK;
}

int64_t klc_optimizer_steps(const klc_optimizer *opt) {
    return opt ? opt->step : -1;
}

int32_t klc_optimizer_num_tensors(const klc_optimizer *opt) {
    return opt ? opt->n_moments : 0;
}

int klc_optimizer_tensor(const klc_optimizer *opt, int32_t index, const char **name,
                         const float **data, size_t *count) {
    if (!opt) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_optimizer_tensor: NULL optimizer");
    if (index < 0 || index >= opt->n_moments)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_optimizer_tensor: index %d is out of range (the optimizer has %d "
                        "tensors)",
                        index, opt->n_moments);
    static const char *const adam_names[2] = {"exp_avg", "exp_avg_sq"};
    const int sgd = opt->opts.kind == KLC_OPTIMIZER_SGD;
    if (name) *name = sgd ? "momentum_buffer" : adam_names[index];
    if (data) *data = index == 0 ? opt->m : opt->v;
    if (count) *count = opt->n;
    return KLC_OK;
}
