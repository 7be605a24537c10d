/* Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel
 * random numbers: as easy as 1, 2, 3", SC 2011), keyed by a hash of (seed, stream, step). */
#include "rng.h"

#include <math.h>

static inline void mulhilo32(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void klc_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo32(0xD2511F53u, c0, &hi0, &lo0);
        mulhilo32(0xCD9E8D57u, c2, &hi1, &lo1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* SplitMix64's finaliser (Steele, Lea, Flood 2014): a bijective 64-bit mix. */
static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t klc_rng_key(const klc_rng *rng) {
    uint64_t h = splitmix64(rng->seed);
    h = splitmix64(h ^ rng->stream);
    return splitmix64(h ^ rng->step);
}

void klc_rng_init(klc_rng *rng, uint64_t seed, uint64_t stream) {
    if (!rng) return;
    rng->seed = seed;
    rng->stream = stream;
    rng->step = 0;
}

void klc_rng_words(const klc_rng *rng, uint64_t sample, uint64_t counter, uint32_t out[4]) {
    uint64_t k = klc_rng_key(rng);
    uint32_t key[2] = {(uint32_t)k, (uint32_t)(k >> 32)};
    uint32_t ctr[4] = {(uint32_t)counter, (uint32_t)(counter >> 32), (uint32_t)sample,
                       (uint32_t)(sample >> 32)};
    klc_philox4x32_10(ctr, key, out);
}

double klc_rng_uniform(const klc_rng *rng, uint64_t sample, uint64_t counter) {
    uint32_t w[4];
    klc_rng_words(rng, sample, counter, w);
    uint64_t bits = ((uint64_t)w[0] << 21) ^ (uint64_t)w[1]; /* 53 bits */
    bits &= (1ull << 53) - 1;
    return (double)bits * 0x1.0p-53;
}

double klc_rng_normal(const klc_rng *rng, uint64_t sample, uint64_t counter) {
    uint32_t w[4];
    klc_rng_words(rng, sample, counter, w);
    uint64_t b1 = (((uint64_t)w[0] << 21) ^ w[1]) & ((1ull << 53) - 1);
    uint64_t b2 = (((uint64_t)w[2] << 21) ^ w[3]) & ((1ull << 53) - 1);
    double u1 = ((double)b1 + 1.0) * 0x1.0p-53; /* (0, 1]: log never sees 0 */
    double u2 = (double)b2 * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
