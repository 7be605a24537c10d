/* The Philox4x32-10 block function and key derivation behind klc_rng. */
#ifndef KLC_CORE_RNG_H
#define KLC_CORE_RNG_H

#include <stdint.h>

#include "klc.h"

/* One Philox4x32-10 block: out = philox(counter, key). */
void klc_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/* The 64-bit Philox key of a generator: a hash of (seed, stream, step). */
uint64_t klc_rng_key(const klc_rng *rng);

/* A uniform float in [0, 1) from one 32-bit word (24 random bits). */
static inline float klc_word_to_unit_float(uint32_t w) {
    return (float)(w >> 8) * 0x1.0p-24f;
}

#endif
