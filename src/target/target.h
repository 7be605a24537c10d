/* The target handle: terms over borrowed features, lambda, beta and the version. */
#ifndef KLC_TARGET_TARGET_H
#define KLC_TARGET_TARGET_H

#include "target/feature.h"

typedef struct klc_term {
    int32_t kind; /* KLC_TERM_* */
    klc_feature *feature;
    int32_t dim, phi_offset, lambda_offset;
} klc_term;

struct klc_target {
    klc_alloc_ctx ac;
    klc_model *base;
    uint64_t version;
    klc_term *terms;
    int32_t n_terms, cap_terms;
    int32_t phi_dim, n_lambda;
    double *lambda, *mu_bar; /* [n_lambda] */
    double *coef;            /* [phi_dim]: lambda on moment dims, 1/beta on the reward's */
    double beta;
    bool has_reward;
};

/* Recomputes coef from lambda and beta. */
void klc_target_refresh_coef(klc_target *t);

#endif
