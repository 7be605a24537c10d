/* PPO's per-token arithmetic: generalised advantage estimation and whitening over the
 * generated positions of right-padded sequences. */
#include "ppo.h"

#include <math.h>

void klc_ppo_gae(int32_t n_seq, int32_t max_len, const int32_t *lengths, const int32_t *score_from,
                 const double *rewards, const double *values, double gamma, double lambda,
                 double *adv, double *ret) {
    for (int32_t i = 0; i < n_seq; i++) {
        const size_t row = (size_t)i * (size_t)max_len;
        const int32_t first = klc_ppo_first(score_from, i), last = lengths[i] - 2;
        double next_value = 0, next_adv = 0;
        for (int32_t t = last; t >= first; t--) {
            const double delta = rewards[row + t] + gamma * next_value - values[row + t];
            next_adv = delta + gamma * lambda * next_adv;
            next_value = values[row + t];
            adv[row + t] = next_adv;
            ret[row + t] = next_adv + values[row + t];
        }
    }
}

void klc_ppo_moments(int32_t n_seq, int32_t max_len, const int32_t *lengths,
                     const int32_t *score_from, const double *x, double *mean, double *var) {
    double n = 0, sum = 0, sq = 0;
    for (int32_t i = 0; i < n_seq; i++)
        for (int32_t t = klc_ppo_first(score_from, i); t < lengths[i] - 1; t++) {
            sum += x[(size_t)i * (size_t)max_len + t];
            n += 1;
        }
    *mean = n > 0 ? sum / n : 0.0;
    for (int32_t i = 0; i < n_seq; i++)
        for (int32_t t = klc_ppo_first(score_from, i); t < lengths[i] - 1; t++) {
            const double d = x[(size_t)i * (size_t)max_len + t] - *mean;
            sq += d * d;
        }
    *var = n > 0 ? sq / n : 0.0;
}

void klc_ppo_whiten(int32_t n_seq, int32_t max_len, const int32_t *lengths,
                    const int32_t *score_from, double *x, int shift_mean) {
    double mean, var;
    klc_ppo_moments(n_seq, max_len, lengths, score_from, x, &mean, &var);
    const double scale = 1.0 / sqrt(var + 1e-8);
    for (int32_t i = 0; i < n_seq; i++)
        for (int32_t t = klc_ppo_first(score_from, i); t < lengths[i] - 1; t++) {
            double *v = x + (size_t)i * (size_t)max_len + t;
            *v = (*v - mean) * scale + (shift_mean ? 0.0 : mean);
        }
}
