/* Open-addressing hash maps with linear probing, grown at 50% load. */
#include "tokenizer/hash.h"

#include <stdlib.h>

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

static int u64map_alloc(klc_u64map *m, size_t cap) {
    size_t bytes;
    if (klc_mul_overflows(cap, sizeof(klc_u64map_slot), &bytes))
        return klc_fail(KLC_ERR_OUT_OF_MEMORY, "hash map too large");
    klc_u64map_slot *s = klc_alloc(&m->ac, bytes);
    if (!s) return KLC_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < cap; i++) s[i].key = KLC_U64MAP_EMPTY;
    m->slots = s;
    m->cap = cap;
    return KLC_OK;
}

int klc_u64map_init(klc_u64map *m, const klc_alloc_ctx *ac, size_t expected) {
    memset(m, 0, sizeof *m);
    m->ac = *ac;
    return u64map_alloc(m, pow2_at_least(expected * 2));
}

void klc_u64map_free(klc_u64map *m) {
    klc_free(&m->ac, m->slots, m->cap * sizeof(klc_u64map_slot));
    m->slots = NULL;
    m->cap = m->count = 0;
}

static void u64map_place(klc_u64map *m, uint64_t key, uint64_t val) {
    size_t mask = m->cap - 1, i = (size_t)klc_hash_u64(key) & mask;
    while (m->slots[i].key != KLC_U64MAP_EMPTY && m->slots[i].key != key) i = (i + 1) & mask;
    if (m->slots[i].key == KLC_U64MAP_EMPTY) m->count++;
    m->slots[i].key = key;
    m->slots[i].val = val;
}

int klc_u64map_put(klc_u64map *m, uint64_t key, uint64_t val) {
    if ((m->count + 1) * 2 > m->cap) {
        klc_u64map old = *m;
        KLC_TRY(u64map_alloc(m, old.cap ? old.cap * 2 : 16));
        m->count = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.slots[i].key != KLC_U64MAP_EMPTY)
                u64map_place(m, old.slots[i].key, old.slots[i].val);
        klc_u64map_free(&old);
    }
    u64map_place(m, key, val);
    return KLC_OK;
}

static int bytesmap_alloc_slots(klc_bytesmap *m, size_t cap) {
    size_t bytes;
    if (klc_mul_overflows(cap, sizeof(klc_bytesmap_slot), &bytes))
        return klc_fail(KLC_ERR_OUT_OF_MEMORY, "hash map too large");
    klc_bytesmap_slot *s = klc_alloc(&m->ac, bytes);
    if (!s) return KLC_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < cap; i++) s[i].len = UINT32_MAX;
    m->slots = s;
    m->cap = cap;
    return KLC_OK;
}

int klc_bytesmap_init(klc_bytesmap *m, const klc_alloc_ctx *ac, size_t expected) {
    memset(m, 0, sizeof *m);
    m->ac = *ac;
    return bytesmap_alloc_slots(m, pow2_at_least(expected * 2));
}

void klc_bytesmap_free(klc_bytesmap *m) {
    klc_free(&m->ac, m->slots, m->cap * sizeof(klc_bytesmap_slot));
    klc_free(&m->ac, m->arena, m->arena_cap);
    memset(m, 0, sizeof *m);
}

void klc_bytesmap_clear(klc_bytesmap *m) {
    for (size_t i = 0; i < m->cap; i++) m->slots[i].len = UINT32_MAX;
    m->count = 0;
    m->arena_len = 0;
}

static klc_bytesmap_slot *bytesmap_empty_slot(klc_bytesmap *m, uint64_t hash) {
    size_t mask = m->cap - 1, i = (size_t)hash & mask;
    while (m->slots[i].len != UINT32_MAX) i = (i + 1) & mask;
    return &m->slots[i];
}

int klc_bytesmap_insert(klc_bytesmap *m, const void *key, size_t len, uint64_t hash, uint64_t val,
                        klc_bytesmap_slot **slot_out) {
    if (len >= UINT32_MAX || m->arena_len + len > UINT32_MAX)
        return klc_fail(KLC_ERR_OUT_OF_MEMORY, "hash map keys exceed 4 GiB");
    if (m->arena_len + len > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : 4096;
        while (cap < m->arena_len + len) cap *= 2;
        char *a = klc_alloc(&m->ac, cap);
        if (!a) return KLC_ERR_OUT_OF_MEMORY;
        if (m->arena_len) memcpy(a, m->arena, m->arena_len);
        klc_free(&m->ac, m->arena, m->arena_cap);
        m->arena = a;
        m->arena_cap = cap;
    }
    if ((m->count + 1) * 2 > m->cap) {
        klc_bytesmap_slot *old = m->slots;
        size_t old_cap = m->cap;
        KLC_TRY(bytesmap_alloc_slots(m, old_cap * 2));
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].len != UINT32_MAX) *bytesmap_empty_slot(m, old[i].hash) = old[i];
        klc_free(&m->ac, old, old_cap * sizeof(klc_bytesmap_slot));
    }
    klc_bytesmap_slot *s = bytesmap_empty_slot(m, hash);
    if (len) memcpy(m->arena + m->arena_len, key, len);
    s->hash = hash;
    s->off = (uint32_t)m->arena_len;
    s->len = (uint32_t)len;
    s->val = val;
    m->arena_len += len;
    m->count++;
    if (slot_out) *slot_out = s;
    return KLC_OK;
}
