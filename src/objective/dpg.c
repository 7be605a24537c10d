/* Distribution matching by importance sampling: DPG/GDC, w = P/(Z_hat q), and GDC++, which
 * subtracts pi/q, a term of zero expectation (E_q[(pi/q) grad log pi] = sum_x grad pi = 0)
 * that removes most of the variance where P/q is small or 0. */
#include "objective.h"

#include <math.h>

static int dpg_weights(void *self, const klc_step_view *v, double *w) {
    (void)self;
    for (int32_t i = 0; i < v->n_seq; i++)
        w[i] = exp(v->logP[i] - v->logq[i] - klc_view_log_z(v, i)); /* exp(-inf) = 0 */
    return KLC_OK;
}

static int gdcpp_weights(void *self, const klc_step_view *v, double *w) {
    for (int32_t i = 0; i < v->n_seq; i++)
        w[i] = exp(v->logP[i] - v->logq[i] - klc_view_log_z(v, i)) - exp(v->logpi[i] - v->logq[i]);
    (void)self;
    return KLC_OK;
}

void klc_dpg_ops(const klc_objective_options *o, klc_objective_ops *ops) {
    const uint32_t needs = KLC_NEED_TARGET | KLC_NEED_PROPOSAL_LOGP | KLC_NEED_FULL_SUPPORT;
    if (o->kind == KLC_OBJECTIVE_DPG)
        *ops = (klc_objective_ops){.name = "dpg", .needs = needs, .weights = dpg_weights};
    else
        *ops = (klc_objective_ops){
            .name = "gdcpp", .needs = needs | KLC_NEED_POLICY_LOGP, .weights = gdcpp_weights};
}
