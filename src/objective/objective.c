/* klc_objective: the handle around a strategy struct, and the public entry points that
 * check a step view before any callback sees it. */
#include "objective.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

int klc_objective_create(const klc_objective_ops *ops, void *self, const klc_allocator *allocator,
                         klc_objective **out) {
    if (!out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_objective_create: NULL out");
    *out = NULL;
    if (!ops) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_objective_create: NULL ops");
    if (ops->version < 1 || ops->version > KLC_OBJECTIVE_OPS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_objective_create: ops version %u is not supported (this library "
                        "knows versions 1..%d)",
                        ops->version, KLC_OBJECTIVE_OPS_VERSION);
    size_t len = ops->name ? strnlen(ops->name, KLC_OBJECTIVE_NAME_MAX) : 0;
    if (len == 0 || len >= KLC_OBJECTIVE_NAME_MAX)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_objective_create: the name must have 1 to %d bytes",
                        KLC_OBJECTIVE_NAME_MAX - 1);
    if ((ops->weights == NULL) == (ops->token_coeffs == NULL))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_objective_create: objective '%s' must set exactly one of weights "
                        "and token_coeffs",
                        ops->name);
    /* A version-1 struct ends before the state hooks: copy only what the caller has. */
    klc_objective_ops ops_copy;
    memset(&ops_copy, 0, sizeof ops_copy);
    memcpy(&ops_copy, ops,
           ops->version >= 2 ? sizeof ops_copy : offsetof(klc_objective_ops, flags));
    ops = &ops_copy;
    if ((ops->save_state == NULL) != (ops->load_state == NULL))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_objective_create: objective '%s' must set both or neither of "
                        "save_state and load_state",
                        ops->name);
    if (ops->flags & ~KLC_OBJECTIVE_STATELESS)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_objective_create: objective '%s' has unknown flags 0x%x", ops->name,
                        ops->flags & ~KLC_OBJECTIVE_STATELESS);
    const uint32_t known = (KLC_NEED_FEATURES << 1) - 1;
    if (ops->needs & ~known)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_objective_create: objective '%s' has unknown needs 0x%x", ops->name,
                        ops->needs & ~known);
    klc_alloc_ctx ctx;
    klc_alloc_ctx_init(&ctx, allocator);
    klc_objective *obj = klc_alloc_zeroed(&ctx, sizeof *obj);
    if (!obj) return KLC_ERR_OUT_OF_MEMORY;
    obj->alloc = ctx;
    obj->ops = *ops;
    memcpy(obj->name, ops->name, len + 1);
    obj->ops.name = obj->name;
    obj->self = self;
    *out = obj;
    return KLC_OK;
}

void *klc_objective_scratch(klc_objective *obj, int slot, size_t bytes) {
    if (obj->scratch_bytes[slot] >= bytes && obj->scratch[slot]) return obj->scratch[slot];
    void *p = klc_alloc(&obj->alloc, bytes);
    if (!p) return NULL;
    klc_free(&obj->alloc, obj->scratch[slot], obj->scratch_bytes[slot]);
    obj->scratch[slot] = p;
    obj->scratch_bytes[slot] = bytes;
    return p;
}

void klc_objective_destroy(klc_objective *obj) {
    if (!obj) return;
    if (obj->ops.release) obj->ops.release(obj->self);
    klc_alloc_ctx ctx = obj->alloc;
    for (int i = 0; i < 2; i++) klc_free(&ctx, obj->scratch[i], obj->scratch_bytes[i]);
    klc_free(&ctx, obj, sizeof *obj);
}

const char *klc_objective_name(const klc_objective *obj) {
    return obj ? obj->name : "";
}

uint32_t klc_objective_needs(const klc_objective *obj) {
    return obj ? obj->ops.needs : 0;
}

int klc_objective_callback_status(const klc_objective *obj, int rc, const char *callback) {
    if (obj->builtin_kind && rc < 0) return rc;
    return klc_fail(KLC_ERR_CALLBACK, "objective '%s': the %s callback returned %d", obj->name,
                    callback, rc);
}

int klc_objective_weights(klc_objective *obj, const klc_step_view *step, double *w) {
    if (!obj || !w)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_objective_weights: NULL argument");
    if (!obj->ops.weights)
        return klc_fail(KLC_ERR_UNSUPPORTED,
                        "klc_objective_weights: objective '%s' is token-level and has no "
                        "sequence weights; use klc_objective_token_coeffs",
                        obj->name);
    klc_step_view v;
    KLC_TRY(klc_view_prepare(obj, step, 0, "klc_objective_weights", &v));
    int rc = obj->ops.weights(obj->self, &v, w);
    if (rc != 0) return klc_objective_callback_status(obj, rc, "weights");
    for (int32_t i = 0; i < v.n_seq; i++)
        if (!isfinite(w[i]))
            return klc_fail(KLC_ERR_NUMERIC, "objective '%s': the weight of sequence %d is %g",
                            obj->name, i, w[i]);
    return KLC_OK;
}

int klc_objective_token_coeffs(klc_objective *obj, const klc_step_view *step, float *on,
                               float *sm) {
    if (!obj || !on || !sm)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_objective_token_coeffs: NULL argument");
    klc_step_view v;
    KLC_TRY(klc_view_prepare(obj, step, 1, "klc_objective_token_coeffs", &v));
    return klc_objective_coeffs(obj, &v, NULL, on, sm, NULL, "klc_objective_token_coeffs");
}

int klc_objective_after_step(klc_objective *obj, const klc_step_view *step, klc_metrics *metrics) {
    if (!obj) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_objective_after_step: NULL objective");
    klc_step_view v;
    KLC_TRY(
        klc_view_prepare(obj, step, obj->ops.token_coeffs != NULL, "klc_objective_after_step", &v));
    if (!obj->ops.after_step) return KLC_OK;
    int rc = obj->ops.after_step(obj->self, &v, metrics);
    return rc != 0 ? klc_objective_callback_status(obj, rc, "after_step") : KLC_OK;
}
