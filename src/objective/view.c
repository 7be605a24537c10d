/* The step view: initialisation, and the checks that stand between a caller's view and an
 * objective's callbacks, so that no objective (built-in or user's) has to repeat them. */
#include "objective.h"

#include <math.h>
#include <string.h>

int klc_step_view_init(klc_step_view *view, uint32_t version) {
    if (!view) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_step_view_init: NULL view");
    if (version < 1 || version > KLC_STEP_VIEW_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_step_view_init: version %u is not supported (this library knows "
                        "versions 1..%d)",
                        version, KLC_STEP_VIEW_VERSION);
    memset(view, 0, sizeof *view);
    view->version = version;
    view->log_z = NAN;
    return KLC_OK;
}

double klc_view_log_z(const klc_step_view *v, int32_t i) {
    if (v->log_z_ctx) return v->log_z_ctx[v->context_ids[i]];
    return v->log_z;
}

/* The first index whose value is not finite (or, with allow_neg_inf, is NaN or +inf), or
 * -1. */
static int32_t first_bad(const double *x, int32_t n, int allow_neg_inf) {
    for (int32_t i = 0; i < n; i++) {
        if (isfinite(x[i])) continue;
        if (allow_neg_inf && x[i] == -INFINITY) continue;
        return i;
    }
    return -1;
}

typedef struct check_ctx {
    const char *fn, *name;
} check_ctx;

static int missing(const check_ctx *c, const char *field, const char *why) {
    return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: objective '%s' needs the step view's %s%s",
                    c->fn, c->name, field, why);
}

static int check_seq_array(const check_ctx *c, const double *x, int32_t n, const char *field,
                           int allow_neg_inf) {
    if (!x) return missing(c, field, " (it is NULL)");
    int32_t bad = first_bad(x, n, allow_neg_inf);
    if (bad >= 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: objective '%s': step view %s[%d] = %g %s",
                        c->fn, c->name, field, bad, x[bad],
                        allow_neg_inf ? "must be finite or -inf" : "must be finite");
    return KLC_OK;
}

static int check_shape(const check_ctx *c, const klc_step_view *v, int need_lengths) {
    if (v->n_seq < 1 || v->max_len < 1)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "%s: objective '%s': the step view has n_seq = %d and max_len = %d (each "
                        "must be >= 1)",
                        c->fn, c->name, v->n_seq, v->max_len);
    if (need_lengths) {
        if (!v->lengths) return missing(c, "lengths", " (it is NULL)");
        for (int32_t i = 0; i < v->n_seq; i++) {
            int32_t len = v->lengths[i], from = klc_view_from(v, i);
            if (len < 1 || len > v->max_len)
                return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                                "%s: step view lengths[%d] = %d must be in [1, max_len = %d]",
                                c->fn, i, len, v->max_len);
            if (from < 1 || from > len)
                return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                                "%s: step view score_from[%d] = %d must be in [1, length = %d]",
                                c->fn, i, from, len);
        }
    }
    if (v->context_ids) {
        if (v->n_contexts < 1)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "%s: the step view has context_ids but n_contexts = %d", c->fn,
                            v->n_contexts);
        for (int32_t i = 0; i < v->n_seq; i++)
            if (v->context_ids[i] < 0 || v->context_ids[i] >= v->n_contexts)
                return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                                "%s: step view context_ids[%d] = %d must be in [0, n_contexts = "
                                "%d)",
                                c->fn, i, v->context_ids[i], v->n_contexts);
    }
    if (v->log_z_ctx && !v->context_ids)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "%s: the step view has log_z_ctx but no context_ids", c->fn);
    return KLC_OK;
}

static int check_target(const check_ctx *c, const klc_step_view *v) {
    KLC_TRY(check_seq_array(c, v->logP, v->n_seq, "logP", 1));
    for (int32_t i = 0; i < v->n_seq; i++) {
        double lz = klc_view_log_z(v, i);
        if (isfinite(lz)) continue;
        if (v->log_z_ctx)
            return klc_fail(KLC_ERR_STATE,
                            "%s: objective '%s' needs a Z estimate, but log_z_ctx[%d] (context of "
                            "sequence %d) is %g: add a check to its klc_z_estimate first",
                            c->fn, c->name, v->context_ids[i], i, lz);
        return klc_fail(KLC_ERR_STATE,
                        "%s: objective '%s' needs a Z estimate, but the step view's log_z is %g: "
                        "estimate it first (klc_z_estimate_add_batch on q-samples)",
                        c->fn, c->name, lz);
    }
    return KLC_OK;
}

static int check_tok(const check_ctx *c, const float *x, const char *field) {
    return x ? KLC_OK : missing(c, field, " (it is NULL)");
}

int klc_view_prepare(const klc_objective *obj, const klc_step_view *in, int need_lengths,
                     const char *fn, klc_step_view *out) {
    const check_ctx c = {fn, obj->name};
    if (!in) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: NULL step view", fn);
    if (in->version < 1 || in->version > KLC_STEP_VIEW_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "%s: step view version %u is not supported (fill it with "
                        "klc_step_view_init)",
                        fn, in->version);
    /* Version 1 is the whole struct; later versions will copy their prefix and default
     * the rest here. */
    *out = *in;
    out->version = KLC_STEP_VIEW_VERSION;
    const uint32_t needs = obj->ops.needs;
    const int tok = (needs & KLC_NEED_TOKEN_LOGP) != 0;
    KLC_TRY(check_shape(&c, out, need_lengths || tok));

    if ((needs & KLC_NEED_ON_POLICY) && !out->on_policy)
        return klc_fail(KLC_ERR_STATE,
                        "%s: objective '%s' is on-policy, but the step is not (on_policy = 0): "
                        "its sequences must be drawn from the current policy",
                        fn, obj->name);
    if ((needs & KLC_NEED_FULL_SUPPORT) && !out->full_support && !out->on_policy)
        return klc_fail(KLC_ERR_STATE,
                        "%s: objective '%s' needs a proposal with full support, but the step's "
                        "samples do not have it (full_support = 0: top-k, top-p or a low "
                        "temperature leave sequences out, and importance weights would be "
                        "biased); sample by pure ancestral sampling",
                        fn, obj->name);
    if (out->on_policy) {
        if (!out->logpi) out->logpi = out->logq;
        if (!out->logpi_tok) out->logpi_tok = out->logq_tok;
    }
    if (needs & KLC_NEED_PROPOSAL_LOGP) {
        if (tok)
            KLC_TRY(check_tok(&c, out->logq_tok, "logq_tok"));
        else
            KLC_TRY(check_seq_array(&c, out->logq, out->n_seq, "logq", 0));
    }
    if (needs & KLC_NEED_POLICY_LOGP) {
        const char *why = out->on_policy ? " (on-policy: logq, used in its place, is NULL too)"
                                         : " (off-policy: score the batch with the current "
                                           "policy, klc_model_score, first)";
        if (tok) {
            if (!out->logpi_tok) return missing(&c, "logpi_tok", why);
        } else {
            if (!out->logpi) return missing(&c, "logpi", why);
            KLC_TRY(check_seq_array(&c, out->logpi, out->n_seq, "logpi", 0));
        }
    }
    if (needs & KLC_NEED_BASE_LOGP) {
        if (tok)
            KLC_TRY(check_tok(&c, out->loga_tok, "loga_tok"));
        else
            KLC_TRY(check_seq_array(&c, out->loga, out->n_seq, "loga", 0));
    }
    if (needs & KLC_NEED_TARGET) KLC_TRY(check_target(&c, out));
    if (needs & KLC_NEED_REWARD) KLC_TRY(check_seq_array(&c, out->reward, out->n_seq, "reward", 0));
    if ((needs & KLC_NEED_FEATURES) && (!out->phi || out->n_features < 1))
        return missing(&c, "phi", " with n_features >= 1");
    return KLC_OK;
}
