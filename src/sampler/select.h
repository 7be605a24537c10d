/* Partial selection for top-k and top-p: the candidates ranked first under the order
 * "larger key first, then smaller token id", found in expected linear time without sorting
 * the vocabulary. */
#ifndef KLC_SAMPLER_SELECT_H
#define KLC_SAMPLER_SELECT_H

#include <stdint.h>

typedef struct klc_cand {
    float key; /* a logit or an unnormalised probability */
    int32_t id;
} klc_cand;

/* Reorders c[0..n) so that c[0..k) are the k first-ranked candidates (in no particular
 * order). 1 <= k <= n. */
void klc_select_top_count(klc_cand *c, int32_t n, int32_t k);

/* Keys are non-negative masses. Reorders c[0..n) and returns r, the smallest count whose
 * first-ranked candidates c[0..r) carry mass >= target; n if even all of them fall short
 * (rounding). */
int32_t klc_select_top_mass(klc_cand *c, int32_t n, double target);

#endif
