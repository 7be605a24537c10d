/* Learning-rate schedules: a pure function of the options and the update index. */
#include "optim.h"

#include <math.h>

double klc_optimizer_schedule_lr(const klc_optimizer_options *o, int64_t t) {
    const double peak = o->lr;
    const int64_t W = o->warmup_steps;
    if (t < W) return peak * (double)(t + 1) / (double)W;
    if (o->schedule == KLC_LR_CONSTANT) return peak;
    const int64_t T = o->total_steps;
    /* Past the horizon the rate stays at min_lr (torch's CosineAnnealingLR would climb
     * again); returning it directly also avoids peak + (min_lr - peak) rounding. */
    if (t >= T) return o->min_lr;
    const double p = (double)(t - W) / (double)(T - W);
    if (o->schedule == KLC_LR_COSINE)
        return o->min_lr + (peak - o->min_lr) * 0.5 * (1.0 + cos(M_PI * p));
    return peak + (o->min_lr - peak) * p;
}

int klc_optimizer_lr_at(const klc_optimizer_options *o, int64_t t, double *lr) {
    if (!lr) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_optimizer_lr_at: NULL lr");
    KLC_TRY(klc_optimizer_check_options(o));
    if (t < 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_optimizer_lr_at: update index t = %lld must be >= 0", (long long)t);
    *lr = klc_optimizer_schedule_lr(o, t);
    return KLC_OK;
}
