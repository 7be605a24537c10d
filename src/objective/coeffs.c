/* From an objective's weights (or per-token coefficients) to the logit-gradient
 * coefficients of the whole loss L = -sum_i m_i w_i log pi(x_i), which is what the model's
 * backward takes. */
#include "objective.h"

#include <math.h>
#include <string.h>

static int numeric_error(const klc_objective *obj, const char *fn, int32_t i, int32_t t,
                         double value) {
    if (t < 0)
        return klc_fail(KLC_ERR_NUMERIC, "%s: objective '%s': the weight of sequence %d is %g", fn,
                        obj->name, i, value);
    return klc_fail(KLC_ERR_NUMERIC,
                    "%s: objective '%s': the coefficient of sequence %d at position %d is %g "
                    "(after its mass)",
                    fn, obj->name, i, t, value);
}

static int from_weights(klc_objective *obj, const klc_step_view *v, const double *mass, float *on,
                        float *sm, double *w_out, const char *fn) {
    const int32_t n = v->n_seq;
    double *w = w_out;
    if (!w) {
        w = klc_objective_scratch(obj, 1, (size_t)n * sizeof *w);
        if (!w) return KLC_ERR_OUT_OF_MEMORY;
    }
    int rc = obj->ops.weights(obj->self, v, w);
    int status = rc != 0 ? klc_objective_callback_status(obj, rc, "weights") : KLC_OK;
    for (int32_t i = 0; status == KLC_OK && i < n; i++) {
        if (!isfinite(w[i])) {
            status = numeric_error(obj, fn, i, -1, w[i]);
            break;
        }
        const double c = (mass ? mass[i] : 1.0 / n) * w[i];
        const float cf = (float)c;
        if (!isfinite(cf)) {
            status = numeric_error(obj, fn, i, 0, c);
            break;
        }
        float *o = on + (size_t)i * v->max_len, *s = sm + (size_t)i * v->max_len;
        for (int32_t t = klc_view_from(v, i) - 1; t < v->lengths[i] - 1; t++) {
            o[t] = -cf;
            s[t] = cf;
        }
    }
    return status;
}

static int from_token_coeffs(klc_objective *obj, const klc_step_view *v, const double *mass,
                             float *on, float *sm, double *w_out, const char *fn) {
    int rc = obj->ops.token_coeffs(obj->self, v, on, sm);
    if (rc != 0) return klc_objective_callback_status(obj, rc, "token_coeffs");
    for (int32_t i = 0; i < v->n_seq; i++) {
        const double m = mass ? mass[i] : 1.0 / v->n_seq;
        float *o = on + (size_t)i * v->max_len, *s = sm + (size_t)i * v->max_len;
        const int32_t last = v->lengths[i] - 1;
        for (int32_t t = 0; t < last; t++) {
            o[t] = (float)(m * o[t]);
            s[t] = (float)(m * s[t]);
            if (!isfinite(o[t])) return numeric_error(obj, fn, i, t, o[t]);
            if (!isfinite(s[t])) return numeric_error(obj, fn, i, t, s[t]);
        }
        /* The model ignores these positions; zeros keep the arrays clean for callers. */
        for (int32_t t = last; t < v->max_len; t++) o[t] = s[t] = 0.0f;
        if (w_out) w_out[i] = NAN;
    }
    return KLC_OK;
}

int klc_objective_coeffs(klc_objective *obj, const klc_step_view *v, const double *mass, float *on,
                         float *sm, double *w_out, const char *fn) {
    if (mass)
        for (int32_t i = 0; i < v->n_seq; i++)
            if (!isfinite(mass[i]) || mass[i] < 0)
                return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                                "%s: mass[%d] = %g must be finite and >= 0", fn, i, mass[i]);
    const size_t n = (size_t)v->n_seq * (size_t)v->max_len;
    memset(on, 0, n * sizeof *on);
    memset(sm, 0, n * sizeof *sm);
    if (obj->ops.weights) return from_weights(obj, v, mass, on, sm, w_out, fn);
    return from_token_coeffs(obj, v, mass, on, sm, w_out, fn);
}
