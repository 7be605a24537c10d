/* The built-in objectives' options, construction and shared state. Each family's formulas
 * live in their own file; here they become ordinary klc_objective instances. */
#include "objective.h"
#include "ppo.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* Version 1 of the options ended with the allocator. */
#define OPTIONS_V1_SIZE (offsetof(klc_objective_options, allocator) + sizeof(const klc_allocator *))

int klc_objective_options_init(klc_objective_options *o, uint32_t version) {
    if (!o) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_objective_options_init: NULL options");
    if (version < 1 || version > KLC_OBJECTIVE_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_objective_options_init: version %u is not supported (this library "
                        "knows versions 1..%d)",
                        version, KLC_OBJECTIVE_OPTIONS_VERSION);
    memset(o, 0, sizeof *o);
    o->version = version;
    o->kind = KLC_OBJECTIVE_GDCPP;
    o->baseline = KLC_BASELINE_DEFAULT;
    o->baseline_window = 10;
    o->beta = 0.15;
    o->kl_target = 6.0;
    o->kl_horizon = 10000.0;
    o->divergence = KLC_DIVERGENCE_FORWARD_KL;
    o->gamma = 1.0;
    if (version >= 2) {
        o->ppo_epochs = 4;
        o->ppo_minibatches = 1;
        o->ppo_clip = 0.2;
        o->ppo_value_clip = 0.2;
        o->ppo_vf_coef = 0.1;
        o->ppo_lambda = 0.95;
        o->ppo_whiten_advantages = 1;
    }
    return KLC_OK;
}

static int bad(const char *field, const char *why) {
    return klc_fail(KLC_ERR_INVALID_ARGUMENT, "objective option %s %s", field, why);
}

static int takes_baseline(int32_t kind) {
    return kind != KLC_OBJECTIVE_DPG && kind != KLC_OBJECTIVE_GDCPP && kind != KLC_OBJECTIVE_MLE &&
           kind != KLC_OBJECTIVE_PPO;
}

static int is_kl_control(int32_t kind) {
    return kind == KLC_OBJECTIVE_KL_CONTROL || kind == KLC_OBJECTIVE_KL_CONTROL_TOKEN ||
           kind == KLC_OBJECTIVE_PPO;
}

static int check_options(const klc_objective_options *o) {
    if (o->version < 1 || o->version > KLC_OBJECTIVE_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "objective options version %u is not supported (fill them with "
                        "klc_objective_options_init)",
                        o->version);
    if (o->kind < KLC_OBJECTIVE_REINFORCE || o->kind > KLC_OBJECTIVE_PPO)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "objective option kind = %d is unknown", o->kind);
    if (o->baseline < KLC_BASELINE_DEFAULT || o->baseline > KLC_BASELINE_LEAVE_ONE_OUT)
        return bad("baseline", "is unknown");
    if (!takes_baseline(o->kind) && o->baseline > KLC_BASELINE_NONE)
        return bad("baseline", "must be DEFAULT or NONE for DPG, GDCPP, MLE and PPO (GDCPP is "
                               "DPG with its own baseline, PPO has its value head)");
    if (o->baseline_window < 1 || o->baseline_window > 1000000)
        return bad("baseline_window", "must be in [1, 1000000]");
    if (!(o->beta > 0) || !isfinite(o->beta)) return bad("beta", "must be finite and > 0");
    if (o->adaptive_beta != 0 && o->adaptive_beta != 1)
        return bad("adaptive_beta", "must be 0 or 1");
    if (!(o->kl_target > 0) || !isfinite(o->kl_target))
        return bad("kl_target", "must be finite and > 0");
    if (!(o->kl_horizon > 0) || !isfinite(o->kl_horizon))
        return bad("kl_horizon", "must be finite and > 0");
    if (o->divergence < KLC_DIVERGENCE_FORWARD_KL || o->divergence > KLC_DIVERGENCE_CHI2)
        return bad("divergence", "is unknown");
    if (!(o->gamma > 0 && o->gamma <= 1)) return bad("gamma", "must be in (0, 1]");
    if (o->token_mean != 0 && o->token_mean != 1) return bad("token_mean", "must be 0 or 1");
    if (o->ppo_epochs < 1 || o->ppo_epochs > 1000) return bad("ppo_epochs", "must be in [1, 1000]");
    if (o->ppo_minibatches < 1) return bad("ppo_minibatches", "must be >= 1");
    if (!(o->ppo_clip > 0) || !isfinite(o->ppo_clip))
        return bad("ppo_clip", "must be finite and > 0");
    if (!(o->ppo_value_clip >= 0) || !isfinite(o->ppo_value_clip))
        return bad("ppo_value_clip", "must be finite and >= 0");
    if (!(o->ppo_vf_coef >= 0) || !isfinite(o->ppo_vf_coef))
        return bad("ppo_vf_coef", "must be finite and >= 0");
    if (!(o->ppo_lambda >= 0 && o->ppo_lambda <= 1)) return bad("ppo_lambda", "must be in [0, 1]");
    if (o->ppo_whiten_advantages != 0 && o->ppo_whiten_advantages != 1)
        return bad("ppo_whiten_advantages", "must be 0 or 1");
    if (o->ppo_whiten_rewards != 0 && o->ppo_whiten_rewards != 1)
        return bad("ppo_whiten_rewards", "must be 0 or 1");
    if (!(o->ppo_value_lr >= 0) || !isfinite(o->ppo_value_lr))
        return bad("ppo_value_lr", "must be finite and >= 0");
    return KLC_OK;
}

double *klc_builtin_scratch(klc_builtin *s, size_t n) {
    if (n <= s->scratch_len) return s->scratch;
    double *p = klc_alloc(&s->alloc, n * sizeof *p);
    if (!p) return NULL;
    klc_free(&s->alloc, s->scratch, s->scratch_len * sizeof *p);
    s->scratch = p;
    s->scratch_len = n;
    return p;
}

static void builtin_release(void *self) {
    klc_builtin *s = self;
    klc_alloc_ctx ctx = s->alloc;
    klc_baseline_free(&s->base, &ctx);
    klc_ppo_free(s->ppo, &ctx);
    klc_free(&ctx, s->scratch, s->scratch_len * sizeof(double));
    klc_free(&ctx, s, sizeof *s);
}

int klc_objective_builtin(const klc_objective_options *opts, klc_objective **out) {
    if (!out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_objective_builtin: NULL out");
    *out = NULL;
    if (!opts) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_objective_builtin: NULL options");
    if (opts->version < 1 || opts->version > KLC_OBJECTIVE_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "objective options version %u is not supported (fill them with "
                        "klc_objective_options_init)",
                        opts->version);
    /* An older caller's struct is shorter: read what it has, default the rest. */
    klc_objective_options full;
    klc_objective_options_init(&full, KLC_OBJECTIVE_OPTIONS_VERSION);
    memcpy(&full, opts, opts->version >= 2 ? sizeof full : OPTIONS_V1_SIZE);
    KLC_TRY(check_options(&full));
    klc_alloc_ctx ctx;
    klc_alloc_ctx_init(&ctx, opts->allocator);
    klc_builtin *s = klc_alloc_zeroed(&ctx, sizeof *s);
    if (!s) return KLC_ERR_OUT_OF_MEMORY;
    s->alloc = ctx;
    s->o = full;
    s->o.allocator = NULL;
    if (s->o.baseline == KLC_BASELINE_DEFAULT)
        s->o.baseline =
            takes_baseline(opts->kind) ? KLC_BASELINE_MOVING_AVERAGE : KLC_BASELINE_NONE;
    s->beta = opts->beta;
    if (opts->kind == KLC_OBJECTIVE_PPO && !(s->ppo = klc_alloc_zeroed(&ctx, sizeof *s->ppo))) {
        builtin_release(s);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    klc_baseline_init(&s->base, s->o.baseline, s->o.baseline_window);

    klc_objective_ops ops;
    switch (opts->kind) {
    case KLC_OBJECTIVE_REINFORCE:
        klc_reinforce_ops(&s->o, &ops);
        break;
    case KLC_OBJECTIVE_KL_CONTROL:
        klc_kl_control_ops(&s->o, &ops);
        break;
    case KLC_OBJECTIVE_KL_CONTROL_TOKEN:
        klc_kl_token_ops(&s->o, &ops);
        break;
    case KLC_OBJECTIVE_DPG:
    case KLC_OBJECTIVE_GDCPP:
        klc_dpg_ops(&s->o, &ops);
        break;
    case KLC_OBJECTIVE_FDPG:
        klc_fdpg_ops(&s->o, &ops);
        break;
    case KLC_OBJECTIVE_PPO:
        klc_ppo_ops(&s->o, &ops);
        break;
    default:
        klc_mle_ops(&s->o, &ops);
        break;
    }
    ops.version = KLC_OBJECTIVE_OPS_VERSION;
    ops.release = builtin_release;
    ops.flags = 0;
    ops.save_state = klc_builtin_save_state;
    ops.load_state = klc_builtin_load_state;
    int status = klc_objective_create(&ops, s, opts->allocator, out);
    if (status != KLC_OK) {
        builtin_release(s);
        return status;
    }
    (*out)->builtin_kind = opts->kind;
    /* A property klc_objective_create refuses from users' objectives. */
    if (opts->kind == KLC_OBJECTIVE_PPO) (*out)->ops.needs |= KLC_NEED_OWN_UPDATES;
    return KLC_OK;
}

double klc_objective_beta(const klc_objective *obj) {
    if (!obj || !is_kl_control(obj->builtin_kind)) return NAN;
    return ((const klc_builtin *)obj->self)->beta;
}

int klc_objective_set_beta(klc_objective *obj, double beta) {
    if (!obj) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_objective_set_beta: NULL objective");
    if (!is_kl_control(obj->builtin_kind))
        return klc_fail(KLC_ERR_UNSUPPORTED,
                        "klc_objective_set_beta: objective '%s' is not KL-control", obj->name);
    if (!(beta > 0) || !isfinite(beta))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_objective_set_beta: beta = %g must be finite and > 0", beta);
    ((klc_builtin *)obj->self)->beta = beta;
    return KLC_OK;
}
