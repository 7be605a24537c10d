/* The built-ins' state blob: KL-control's current beta and the moving-average baseline's
 * ring, exactly as held, so that a restored objective computes the same bits.
 *
 * Layout, little-endian (docs/checkpoints.md):
 *   0  magic "KLCOBJST"     8 bytes
 *   8  format version       uint32 (1)
 *   12 kind                 int32 (KLC_OBJECTIVE_*)
 *   16 baseline kind        int32 (KLC_BASELINE_*, resolved)
 *   20 window               int32
 *   24 n_slots              int32 (slots per batch row; 0 before the first push)
 *   28 n_batches            int32 (rows held, <= window)
 *   32 next                 int32 (ring position of the next row)
 *   36 reserved, zero       4 bytes
 *   40 beta                 float64
 *   48 family bytes         uint64 (a kind's own state beyond the above: PPO's value head,
 *                           ppo_state.c; 0 for the other kinds)
 *   56 sum   [window * n_slots] float64
 *      count [window * n_slots] float64
 *      family state         [family bytes]
 * A kind whose state this file does not know how to save is refused, never skipped. */
#include "objective.h"
#include "ppo.h"

#include <math.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "klc's objective state format assumes a little-endian host"
#endif

enum { HEADER_BYTES = 56, FORMAT_VERSION = 1 };
static const char MAGIC[8] = {'K', 'L', 'C', 'O', 'B', 'J', 'S', 'T'};

typedef struct header {
    char magic[8];
    uint32_t version;
    int32_t kind, baseline, window, n_slots, n_batches, next;
    uint32_t reserved;
    double beta;
    uint64_t family_bytes;
} header;
_Static_assert(sizeof(header) == HEADER_BYTES, "the header is packed as documented");

static size_t ring_values(int32_t window, int32_t n_slots) {
    return (size_t)window * (size_t)n_slots;
}

/* The kinds this blob covers: beta and the baseline, plus PPO's family state. A new kind
 * with state of its own must be added here and to the family functions below, or saving
 * refuses it. */
static int known_kind(int32_t kind) {
    return kind >= KLC_OBJECTIVE_REINFORCE && kind <= KLC_OBJECTIVE_PPO;
}

static size_t family_bytes(const klc_builtin *s) {
    return s->ppo ? klc_ppo_state_bytes(s->ppo) : 0;
}

int klc_builtin_save_state(void *self, void *buf, size_t capacity, size_t *needed) {
    const klc_builtin *s = self;
    if (!known_kind(s->o.kind))
        return klc_fail(KLC_ERR_UNSUPPORTED,
                        "objective state: built-in objective kind %d has state this library "
                        "cannot save yet",
                        s->o.kind);
    const klc_baseline *b = &s->base;
    const size_t values = ring_values(b->window, b->n_slots);
    const size_t family = family_bytes(s);
    const size_t size = HEADER_BYTES + 2 * values * sizeof(double) + family;
    *needed = size;
    if (!buf) return KLC_OK;
    if (capacity < size) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "objective state: short buffer");
    header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, sizeof MAGIC);
    h.version = FORMAT_VERSION;
    h.kind = s->o.kind;
    h.baseline = b->kind;
    h.window = b->window;
    h.n_slots = b->n_slots;
    h.n_batches = b->n_batches;
    h.next = b->next;
    h.beta = s->beta;
    h.family_bytes = family;
    unsigned char *p = buf;
    memcpy(p, &h, sizeof h);
    if (values) {
        memcpy(p + HEADER_BYTES, b->sum, values * sizeof(double));
        memcpy(p + HEADER_BYTES + values * sizeof(double), b->count, values * sizeof(double));
    }
    if (s->ppo) klc_ppo_state_write(s->ppo, p + HEADER_BYTES + 2 * values * sizeof(double));
    return KLC_OK;
}

static int bad(const char *fmt, long long got, long long want) {
    return klc_fail(KLC_ERR_FORMAT, fmt, got, want);
}

/* Every field of the header against the objective it is loaded into. */
static int check_header(const klc_builtin *s, const header *h, size_t size) {
    if (size < HEADER_BYTES)
        return bad("objective state: %lld bytes, the header alone has %lld", (long long)size,
                   HEADER_BYTES);
    if (memcmp(h->magic, MAGIC, sizeof MAGIC) != 0)
        return klc_fail(KLC_ERR_FORMAT, "objective state: wrong magic (not a built-in's state)");
    if (h->version != FORMAT_VERSION)
        return bad("objective state: format version %lld (this library reads %lld)", h->version,
                   FORMAT_VERSION);
    if (h->kind != s->o.kind)
        return bad("objective state: saved by objective kind %lld, this one is kind %lld", h->kind,
                   s->o.kind);
    if (h->baseline != s->base.kind)
        return bad("objective state: baseline kind %lld, this objective has %lld", h->baseline,
                   s->base.kind);
    if (h->window != s->base.window)
        return bad("objective state: baseline_window %lld, this objective has %lld", h->window,
                   s->base.window);
    if (h->n_slots < 0 || h->n_slots > (1 << 24))
        return bad("objective state: n_slots = %lld is out of range [0, %lld]", h->n_slots,
                   1 << 24);
    if (h->n_batches < 0 || h->n_batches > h->window || h->next < 0 || h->next >= h->window ||
        (h->n_slots == 0 && (h->n_batches != 0 || h->next != 0)))
        return bad("objective state: ring position %lld / %lld batches is inconsistent", h->next,
                   h->n_batches);
    if (!s->ppo && h->family_bytes != 0)
        return bad("objective state: %lld bytes of family state, this kind has %lld",
                   (long long)h->family_bytes, 0);
    if (h->family_bytes > size)
        return bad("objective state: %lld bytes of family state in a blob of %lld",
                   (long long)h->family_bytes, (long long)size);
    if (h->reserved != 0)
        return bad("objective state: reserved field %lld is not %lld", h->reserved, 0);
    if (!(h->beta > 0) || !isfinite(h->beta))
        return klc_fail(KLC_ERR_FORMAT, "objective state: beta = %g must be finite and > 0",
                        h->beta);
    const size_t want = HEADER_BYTES + 2 * ring_values(h->window, h->n_slots) * sizeof(double) +
                        (size_t)h->family_bytes;
    if (size != want)
        return bad("objective state: %lld bytes where the header announces %lld", (long long)size,
                   (long long)want);
    return KLC_OK;
}

int klc_builtin_load_state(void *self, const void *buf, size_t size) {
    klc_builtin *s = self;
    header h;
    memset(&h, 0, sizeof h);
    if (size >= HEADER_BYTES) memcpy(&h, buf, sizeof h);
    KLC_TRY(check_header(s, &h, size));
    const size_t values = ring_values(h.window, h.n_slots);
    const unsigned char *p = (const unsigned char *)buf + HEADER_BYTES;
    for (size_t i = 0; i < 2 * values; i++) {
        double x;
        memcpy(&x, p + i * sizeof x, sizeof x);
        if (!isfinite(x) || (i >= values && x < 0))
            return klc_fail(KLC_ERR_FORMAT,
                            "objective state: baseline value %zu is %g (not finite, or a "
                            "negative count)",
                            i, x);
    }
    /* Allocations last, each undone if a later one fails. */
    double *sum = NULL, *count = NULL;
    if (values) {
        sum = klc_alloc(&s->alloc, values * sizeof(double));
        count = klc_alloc(&s->alloc, values * sizeof(double));
    }
    float *head_block = NULL;
    int status = values && (!sum || !count) ? KLC_ERR_OUT_OF_MEMORY : KLC_OK;
    const unsigned char *family = p + 2 * values * sizeof(double);
    if (status == KLC_OK && s->ppo)
        status =
            klc_ppo_state_check(s->ppo, &s->alloc, family, (size_t)h.family_bytes, &head_block);
    if (status != KLC_OK) {
        klc_free(&s->alloc, sum, values * sizeof(double));
        klc_free(&s->alloc, count, values * sizeof(double));
        return status;
    }
    /* Everything checked: replace the state. */
    if (values) {
        memcpy(sum, p, values * sizeof(double));
        memcpy(count, p + values * sizeof(double), values * sizeof(double));
    }
    klc_baseline_free(&s->base, &s->alloc);
    s->base.sum = sum;
    s->base.count = count;
    s->base.n_slots = h.n_slots;
    s->base.n_batches = h.n_batches;
    s->base.next = h.next;
    s->beta = h.beta;
    if (s->ppo) klc_ppo_state_commit(s->ppo, &s->alloc, family, head_block);
    return KLC_OK;
}
