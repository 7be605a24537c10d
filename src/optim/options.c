/* Optimizer options: defaults and validation, with messages that name the field. */
#include "optim.h"

#include <math.h>
#include <string.h>

int klc_optimizer_options_init(klc_optimizer_options *o, uint32_t version) {
    if (!o) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_optimizer_options_init: NULL options");
    if (version == 0 || version > KLC_OPTIMIZER_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_optimizer_options_init: unknown options version %u (this library "
                        "knows 1..%d)",
                        version, KLC_OPTIMIZER_OPTIONS_VERSION);
    memset(o, 0, sizeof *o);
    o->version = version;
    o->kind = KLC_OPTIMIZER_ADAMW;
    o->lr = 1e-3;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->schedule = KLC_LR_CONSTANT;
    return KLC_OK;
}

static int bad(const char *field, double v, const char *rule) {
    return klc_fail(KLC_ERR_INVALID_ARGUMENT, "optimizer option %s = %g must be %s", field, v,
                    rule);
}

static int check_nonneg(const char *field, double v) {
    if (!(v >= 0.0 && isfinite(v))) return bad(field, v, ">= 0 and finite");
    return KLC_OK;
}

static int check_beta(const char *field, double v) {
    if (!(v >= 0.0 && v < 1.0)) return bad(field, v, "in [0, 1)");
    return KLC_OK;
}

int klc_optimizer_check_options(const klc_optimizer_options *o) {
    if (!o) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "optimizer options are NULL");
    if (o->version == 0 || o->version > KLC_OPTIMIZER_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "optimizer options version %u is not one this library knows (1..%d); "
                        "fill the struct with klc_optimizer_options_init",
                        o->version, KLC_OPTIMIZER_OPTIONS_VERSION);
    if (o->kind != KLC_OPTIMIZER_ADAM && o->kind != KLC_OPTIMIZER_ADAMW &&
        o->kind != KLC_OPTIMIZER_SGD)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "optimizer option kind = %d is not KLC_OPTIMIZER_ADAM (1), _ADAMW (2) or "
                        "_SGD (3)",
                        o->kind);
    KLC_TRY(check_nonneg("lr", o->lr));
    KLC_TRY(check_beta("beta1", o->beta1));
    KLC_TRY(check_beta("beta2", o->beta2));
    KLC_TRY(check_nonneg("eps", o->eps));
    KLC_TRY(check_nonneg("weight_decay", o->weight_decay));
    KLC_TRY(check_nonneg("momentum", o->momentum));
    if (!(o->dampening >= 0.0 && o->dampening <= 1.0))
        return bad("dampening", o->dampening, "in [0, 1]");
    if (o->nesterov != 0 && o->nesterov != 1)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "optimizer option nesterov = %d must be 0 or 1",
                        o->nesterov);
    if (o->nesterov && o->kind == KLC_OPTIMIZER_SGD && !(o->momentum > 0.0 && o->dampening == 0.0))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "optimizer option nesterov = 1 needs momentum > 0 and dampening = 0 "
                        "(momentum = %g, dampening = %g)",
                        o->momentum, o->dampening);
    KLC_TRY(check_nonneg("clip_norm", o->clip_norm));
    KLC_TRY(check_nonneg("clip_value", o->clip_value));
    if (o->schedule != KLC_LR_CONSTANT && o->schedule != KLC_LR_COSINE &&
        o->schedule != KLC_LR_LINEAR)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "optimizer option schedule = %d is not KLC_LR_CONSTANT (0), _COSINE (1) "
                        "or _LINEAR (2)",
                        o->schedule);
    if (o->warmup_steps < 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "optimizer option warmup_steps = %lld must be >= 0",
                        (long long)o->warmup_steps);
    if (o->schedule != KLC_LR_CONSTANT) {
        if (o->total_steps <= o->warmup_steps)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "optimizer option total_steps = %lld must be > warmup_steps = %lld "
                            "for a decaying schedule",
                            (long long)o->total_steps, (long long)o->warmup_steps);
        if (!(o->min_lr >= 0.0 && o->min_lr <= o->lr))
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "optimizer option min_lr = %g must be in [0, lr = %g]", o->min_lr,
                            o->lr);
    } else if (o->total_steps < 0) {
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "optimizer option total_steps = %lld must be >= 0",
                        (long long)o->total_steps);
    }
    return KLC_OK;
}
