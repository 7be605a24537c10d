/* An objective's state for checkpoints: through its hooks, or nothing for an objective
 * that cannot have any; an objective that may keep state without hooks is refused. */
#include "objective.h"

/* Whether an objective without hooks may still keep state: only after_step is meant to
 * change it (the coefficient callbacks see the same step twice under micro-batching). */
static int may_keep_state(const klc_objective *obj) {
    return obj->ops.after_step != NULL && !(obj->ops.flags & KLC_OBJECTIVE_STATELESS);
}

int klc_objective_save_state(klc_objective *obj, void *buf, size_t capacity, size_t *needed) {
    static const char fn[] = "klc_objective_save_state";
    if (needed) *needed = 0;
    if (!obj) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: NULL objective", fn);
    if (!obj->ops.save_state) {
        if (may_keep_state(obj))
            return klc_fail(KLC_ERR_UNSUPPORTED,
                            "%s: objective '%s' has an after_step callback, so it may keep state "
                            "between steps, but no save_state/load_state hooks: its state "
                            "cannot be saved (give it the hooks of klc_objective_ops version 2, "
                            "or flag it KLC_OBJECTIVE_STATELESS)",
                            fn, obj->name);
        return KLC_OK;
    }
    size_t size = 0;
    int rc = obj->ops.save_state(obj->self, NULL, 0, &size);
    if (rc != 0) return klc_objective_callback_status(obj, rc, "save_state");
    if (needed) *needed = size;
    if (!buf && capacity == 0) return KLC_OK;
    if (!buf || capacity < size)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "%s: objective '%s': the state takes %zu bytes, the buffer has %zu", fn,
                        obj->name, size, buf ? capacity : 0);
    size_t written = 0;
    rc = obj->ops.save_state(obj->self, buf, capacity, &written);
    if (rc != 0) return klc_objective_callback_status(obj, rc, "save_state");
    if (written != size)
        return klc_fail(KLC_ERR_CALLBACK,
                        "%s: objective '%s': save_state announced %zu bytes and wrote %zu", fn,
                        obj->name, size, written);
    return KLC_OK;
}

int klc_objective_load_state(klc_objective *obj, const void *buf, size_t size) {
    static const char fn[] = "klc_objective_load_state";
    if (!obj || (!buf && size > 0))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: NULL argument", fn);
    if (!obj->ops.load_state) {
        if (size > 0)
            return klc_fail(KLC_ERR_FORMAT,
                            "%s: objective '%s' has no state hooks, but the state given has %zu "
                            "bytes (saved by another objective?)",
                            fn, obj->name, size);
        if (may_keep_state(obj))
            return klc_fail(KLC_ERR_UNSUPPORTED,
                            "%s: objective '%s' may keep state but has no load_state hook", fn,
                            obj->name);
        return KLC_OK;
    }
    int rc = obj->ops.load_state(obj->self, buf, size);
    return rc != 0 ? klc_objective_callback_status(obj, rc, "load_state") : KLC_OK;
}
