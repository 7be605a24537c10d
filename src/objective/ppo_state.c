/* PPO's part of the built-in state blob (builtin_state.c): the value head and its Adam
 * state, everything PPO keeps between steps (its gradient is zeroed before every update).
 *
 * Layout, little-endian:
 *   0  n_embd           int32 (0: no value head yet)
 *   4  reserved, zero   4 bytes
 *   8  Adam steps       int64
 *   16 head   [n_embd + 1] float32 (weight, then bias), absent when n_embd is 0
 *      adam_m [n_embd + 1] float32
 *      adam_v [n_embd + 1] float32 */
#include "ppo.h"

#include <math.h>
#include <string.h>

enum { FIXED_BYTES = 16 };

static size_t head_floats(int32_t n_embd) {
    return n_embd > 0 ? (size_t)n_embd + 1 : 0;
}

size_t klc_ppo_state_bytes(const klc_ppo *p) {
    return FIXED_BYTES + 3 * head_floats(p->n_embd) * sizeof(float);
}

void klc_ppo_state_write(const klc_ppo *p, unsigned char *dst) {
    const size_t n = head_floats(p->n_embd);
    const uint32_t reserved = 0;
    memcpy(dst, &p->n_embd, 4);
    memcpy(dst + 4, &reserved, 4);
    memcpy(dst + 8, &p->adam_steps, 8);
    if (!n) return;
    memcpy(dst + FIXED_BYTES, p->head, n * sizeof(float));
    memcpy(dst + FIXED_BYTES + n * sizeof(float), p->adam_m, n * sizeof(float));
    memcpy(dst + FIXED_BYTES + 2 * n * sizeof(float), p->adam_v, n * sizeof(float));
}

int klc_ppo_state_check(const klc_ppo *p, const klc_alloc_ctx *alloc, const unsigned char *src,
                        size_t bytes, float **block) {
    *block = NULL;
    int32_t n_embd;
    uint32_t reserved;
    int64_t steps;
    if (bytes < FIXED_BYTES)
        return klc_fail(KLC_ERR_FORMAT, "objective state: PPO's part has %zu bytes", bytes);
    memcpy(&n_embd, src, 4);
    memcpy(&reserved, src + 4, 4);
    memcpy(&steps, src + 8, 8);
    if (n_embd < 0 || n_embd > (1 << 20) || reserved != 0 || steps < 0)
        return klc_fail(KLC_ERR_FORMAT,
                        "objective state: PPO's value head n_embd %d / %lld updates is invalid",
                        n_embd, (long long)steps);
    const size_t n = head_floats(n_embd);
    if (bytes != FIXED_BYTES + 3 * n * sizeof(float))
        return klc_fail(KLC_ERR_FORMAT,
                        "objective state: PPO's part has %zu bytes, its value head needs %zu",
                        bytes, FIXED_BYTES + 3 * n * sizeof(float));
    if (n_embd > 0 && p->n_embd > 0 && p->n_embd != n_embd)
        return klc_fail(KLC_ERR_FORMAT,
                        "objective state: PPO's value head has n_embd %d, this objective's %d",
                        n_embd, p->n_embd);
    for (size_t i = 0; i < 3 * n; i++) {
        float x;
        memcpy(&x, src + FIXED_BYTES + i * sizeof(float), sizeof x);
        if (!isfinite(x) || (i >= 2 * n && x < 0))
            return klc_fail(KLC_ERR_FORMAT,
                            "objective state: PPO's value head value %zu is %g (not finite, or a "
                            "negative second moment)",
                            i, (double)x);
    }
    /* A head to create: allocated now, so that the commit cannot fail. */
    if (n_embd > 0 && p->n_embd == 0) {
        *block = klc_alloc_zeroed(alloc, 4 * n * sizeof(float));
        if (!*block) return KLC_ERR_OUT_OF_MEMORY;
    }
    return KLC_OK;
}

void klc_ppo_state_commit(klc_ppo *p, const klc_alloc_ctx *alloc, const unsigned char *src,
                          float *block) {
    int32_t n_embd;
    memcpy(&n_embd, src, 4);
    memcpy(&p->adam_steps, src + 8, 8);
    if (n_embd == 0 && p->n_embd > 0) { /* saved before the head existed */
        klc_free(alloc, p->head, 4 * head_floats(p->n_embd) * sizeof(float));
        p->head = p->head_grad = p->adam_m = p->adam_v = NULL;
        p->n_embd = 0;
    }
    if (block) { /* the layout of klc_ppo_ensure_head */
        const size_t n = head_floats(n_embd);
        p->head = block;
        p->head_grad = block + n;
        p->adam_m = block + 2 * n;
        p->adam_v = block + 3 * n;
        p->n_embd = n_embd;
    }
    const size_t n = head_floats(p->n_embd);
    if (!n) return;
    memcpy(p->head, src + FIXED_BYTES, n * sizeof(float));
    memcpy(p->adam_m, src + FIXED_BYTES + n * sizeof(float), n * sizeof(float));
    memcpy(p->adam_v, src + FIXED_BYTES + 2 * n * sizeof(float), n * sizeof(float));
    memset(p->head_grad, 0, n * sizeof(float));
}
