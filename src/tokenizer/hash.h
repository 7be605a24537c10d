/* Open-addressing hash maps for the tokenizer: pair of ids -> value, bytes -> value. */
#ifndef KLC_TOKENIZER_HASH_H
#define KLC_TOKENIZER_HASH_H

#include "core/internal.h"

#include <string.h>

/* Keys are hashed once by the caller so that a lookup followed by an insert of the same
 * key does not hash twice. */
static inline uint64_t klc_hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static inline uint64_t klc_hash_bytes(const void *data, size_t n) {
    const unsigned char *s = data;
    uint64_t h = 0x243f6a8885a308d3ull ^ ((uint64_t)n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}

/* uint64 -> uint64. The key UINT64_MAX is reserved (it marks empty slots); the
 * tokenizer's keys are (left id << 32 | right id) with ids < 2^31, which never reach it. */
typedef struct klc_u64map_slot {
    uint64_t key, val; /* together, so that a lookup touches one cache line */
} klc_u64map_slot;

typedef struct klc_u64map {
    klc_u64map_slot *slots;
    size_t cap, count; /* cap is a power of two, or 0 */
    klc_alloc_ctx ac;
} klc_u64map;

#define KLC_U64MAP_EMPTY UINT64_MAX

int klc_u64map_init(klc_u64map *m, const klc_alloc_ctx *ac, size_t expected);
void klc_u64map_free(klc_u64map *m);
/* The value slot of key, or NULL. */
static inline uint64_t *klc_u64map_find(const klc_u64map *m, uint64_t key) {
    if (m->cap == 0) return NULL;
    size_t mask = m->cap - 1, i = (size_t)klc_hash_u64(key) & mask;
    for (;;) {
        uint64_t k = m->slots[i].key;
        if (k == key) return &m->slots[i].val;
        if (k == KLC_U64MAP_EMPTY) return NULL;
        i = (i + 1) & mask;
    }
}
/* Inserts or overwrites. */
int klc_u64map_put(klc_u64map *m, uint64_t key, uint64_t val);

/* bytes -> uint64. Keys are copied into the map's own arena (at most 4 GiB). */
typedef struct klc_bytesmap_slot {
    uint64_t hash;
    uint32_t off, len; /* len == UINT32_MAX: empty */
    uint64_t val;
} klc_bytesmap_slot;

typedef struct klc_bytesmap {
    klc_bytesmap_slot *slots;
    size_t cap, count;
    char *arena;
    size_t arena_len, arena_cap;
    klc_alloc_ctx ac;
} klc_bytesmap;

int klc_bytesmap_init(klc_bytesmap *m, const klc_alloc_ctx *ac, size_t expected);
void klc_bytesmap_free(klc_bytesmap *m);
/* Empties the map, keeping its memory. */
void klc_bytesmap_clear(klc_bytesmap *m);
static inline klc_bytesmap_slot *klc_bytesmap_find(const klc_bytesmap *m, const void *key,
                                                   size_t len, uint64_t hash) {
    size_t mask = m->cap - 1, i = (size_t)hash & mask;
    for (;;) {
        klc_bytesmap_slot *s = &m->slots[i];
        if (s->len == UINT32_MAX) return NULL;
        if (s->hash == hash && s->len == len && memcmp(m->arena + s->off, key, len) == 0) return s;
        i = (i + 1) & mask;
    }
}
/* Inserts a key that is not in the map; *slot_out (may be NULL) receives its slot, valid
 * until the next insert. */
int klc_bytesmap_insert(klc_bytesmap *m, const void *key, size_t len, uint64_t hash, uint64_t val,
                        klc_bytesmap_slot **slot_out);

#endif
