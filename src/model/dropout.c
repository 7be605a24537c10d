#include "dropout.h"
#include "core/rng.h"

void klc_dropout_mask(float *mask, int64_t n, float p, const klc_rng *rng, uint64_t sample,
                      uint64_t site, uint64_t first) {
    const uint64_t k = klc_rng_key(rng);
    const uint32_t key[2] = {(uint32_t)k, (uint32_t)(k >> 32)};
    const float scale = 1.0f / (1.0f - p);
    /* Element e of a site uses word e%4 of block (site << 40 | e/4): sites never overlap
     * as long as a site has fewer than 2^42 elements. */
    int64_t i = 0;
    while (i < n) {
        uint64_t e = first + (uint64_t)i;
        uint64_t block = (site << 40) | (e >> 2);
        uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)sample,
                           (uint32_t)(sample >> 32)};
        uint32_t w[4];
        klc_philox4x32_10(ctr, key, w);
        for (unsigned j = (unsigned)(e & 3); j < 4 && i < n; j++, i++)
            mask[i] = klc_word_to_unit_float(w[j]) >= p ? scale : 0.0f;
    }
}
