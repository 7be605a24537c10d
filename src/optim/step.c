/* One update: the gradient norm over fixed chunks, the clipping factor, the per-step
 * constants, then the element-wise update chunk by chunk across threads. */
#include "optim.h"
#include "model/kernels.h"

#include <math.h>

static int check_report(const klc_optimizer_report *r) {
    if (r && (r->version == 0 || r->version > KLC_OPTIMIZER_REPORT_VERSION))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_optimizer_step: report version %u is not one this library knows "
                        "(1..%d); set it to KLC_OPTIMIZER_REPORT_VERSION",
                        r->version, KLC_OPTIMIZER_REPORT_VERSION);
    return KLC_OK;
}

static int overlaps(const float *a, const float *b, size_t n) {
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b, bytes = n * sizeof(float);
    return x < y + bytes && y < x + bytes;
}

/* Only on the failure path: the first element that made the norm non-finite. */
static int fail_nonfinite(const float *g, size_t n, double sumsq) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(g[i]))
            return klc_fail(KLC_ERR_NUMERIC,
                            "klc_optimizer_step: grads[%zu] = %g is not finite; nothing was "
                            "updated",
                            i, (double)g[i]);
    return klc_fail(KLC_ERR_NUMERIC,
                    "klc_optimizer_step: the gradient's sum of squares is %g; nothing was updated",
                    sumsq);
}

static void chunk_range(const klc_optimizer *opt, int64_t k, size_t *start, size_t *len) {
    *start = (size_t)k * KLC_OPTIM_CHUNK;
    size_t left = opt->n - *start;
    *len = left < KLC_OPTIM_CHUNK ? left : KLC_OPTIM_CHUNK;
}

static void set_coefs(const klc_optimizer *opt, double lr, float clip_value, float clip_scale,
                      klc_update_coefs *c) {
    const klc_optimizer_options *o = &opt->opts;
    c->clip_value = clip_value;
    c->clip_scale = clip_scale;
    c->l2 = o->kind == KLC_OPTIMIZER_ADAMW ? 0.0f : (float)o->weight_decay;
    c->decay = o->kind == KLC_OPTIMIZER_ADAMW ? (float)(1.0 - lr * o->weight_decay) : 1.0f;
    /* PyTorch computes these in double (Python floats) with t the 1-based step. */
    const double t = (double)(opt->step + 1);
    c->beta1 = (float)o->beta1;
    c->one_minus_beta1 = (float)(1.0 - o->beta1);
    c->beta2 = (float)o->beta2;
    c->one_minus_beta2 = (float)(1.0 - o->beta2);
    c->step_size = (float)(lr / (1.0 - pow(o->beta1, t)));
    c->bias2_sqrt = (float)sqrt(1.0 - pow(o->beta2, t));
    c->eps = (float)o->eps;
    c->lr = (float)lr;
    c->momentum = (float)o->momentum;
    c->one_minus_dampening = (float)(1.0 - o->dampening);
    c->first = opt->step == 0;
    c->nesterov = o->nesterov;
}

int klc_optimizer_step(klc_optimizer *opt, float *params, const float *grads, size_t n,
                       klc_optimizer_report *report) {
    if (!opt || !params || !grads)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_optimizer_step: NULL argument");
    if (n != opt->n)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_optimizer_step: n = %zu, but the optimizer was created for %zu "
                        "parameters",
                        n, opt->n);
    if (overlaps(params, grads, n))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_optimizer_step: the parameter and gradient blocks overlap");
    KLC_TRY(check_report(report));
    if (opt->step == INT64_MAX)
        return klc_fail(KLC_ERR_STATE, "klc_optimizer_step: the step counter is exhausted");
    const klc_optimizer_options *o = &opt->opts;
    const int64_t nc = (int64_t)opt->n_chunks;
    const float clip_value = o->clip_value > 0.0 ? (float)o->clip_value : INFINITY;
    double *part = opt->partials;

#pragma omp parallel for schedule(static) if (n > KLC_PAR_MIN_WORK)
    for (int64_t k = 0; k < nc; k++) {
        size_t s, len;
        chunk_range(opt, k, &s, &len);
        klc_optim_sumsq(grads + s, len, clip_value, &part[2 * k], &part[2 * k + 1]);
    }
    double raw = 0.0, clipped = 0.0;
    for (int64_t k = 0; k < nc; k++) raw += part[2 * k], clipped += part[2 * k + 1];
    if (!isfinite(raw)) return fail_nonfinite(grads, n, raw);

    double coef = 1.0;
    if (o->clip_norm > 0.0) {
        /* clip_grad_norm_: max_norm / (total_norm + 1e-6), clamped to at most 1. */
        coef = o->clip_norm / (sqrt(clipped) + 1e-6);
        if (coef > 1.0) coef = 1.0;
    }
    const float clip_scale = (float)coef;
    const double lr = klc_optimizer_schedule_lr(o, opt->step);
    klc_update_coefs c;
    set_coefs(opt, lr, clip_value, clip_scale, &c);

    float *m = opt->m, *v = opt->v;
    const int adam = o->kind != KLC_OPTIMIZER_SGD;
#pragma omp parallel for schedule(static) if (n > KLC_PAR_MIN_WORK)
    for (int64_t k = 0; k < nc; k++) {
        size_t s, len;
        chunk_range(opt, k, &s, &len);
        if (adam)
            klc_optim_adam_chunk(params + s, m + s, v + s, grads + s, len, &c);
        else
            klc_optim_sgd_chunk(params + s, m ? m + s : NULL, grads + s, len, &c);
    }
    opt->step++;

    if (report) {
        report->step = opt->step;
        report->lr = lr;
        report->grad_norm = sqrt(raw);
        report->clip_coef = clip_scale;
    }
    return KLC_OK;
}

int klc_optimizer_step_model(klc_optimizer *opt, klc_model *model, klc_optimizer_report *report) {
    if (!opt || !model)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_optimizer_step_model: NULL argument");
    size_t np = 0, ng = 0;
    float *params = klc_model_params(model, &np);
    const float *grads = klc_model_grads(model, &ng);
    if (!grads) return KLC_ERR_OUT_OF_MEMORY;
    if (np != opt->n)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_optimizer_step_model: the model has %zu parameters, but the "
                        "optimizer was created for %zu",
                        np, opt->n);
    return klc_optimizer_step(opt, params, grads, np, report);
}
