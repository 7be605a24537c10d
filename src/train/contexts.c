/* Contexts (prompts) of a conditional target: the trainer's copy of the prompts, how
 * sequences are assigned to them, and the per-context averages of the metrics
 * (ALGORITHMS.md section 2: P(x|c), Z_c and weights per context, KL averaged over
 * contexts). */
#include "sampler/batch.h"
#include "trainer.h"

#include <math.h>
#include <string.h>

enum { MAX_CONTEXTS = 65536 };

static int bad_context(int32_t c, const char *why, int32_t value, int32_t limit) {
    return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                    "klc_trainer_create: option contexts: context %d: %s (%d; limit %d)", c, why,
                    value, limit);
}

static int check_contexts(const klc_seqs *c, int32_t vocab, int32_t max_len) {
    if (c->n_seq < 1 || c->n_seq > MAX_CONTEXTS || !c->tokens || !c->lengths || c->max_len < 1)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_trainer_create: option contexts needs n_seq in [1, %d] (got %d), "
                        "tokens, lengths and max_len >= 1",
                        MAX_CONTEXTS, c->n_seq);
    for (int32_t k = 0; k < c->n_seq; k++) {
        const int32_t len = c->lengths[k];
        if (len < 1 || len > c->max_len)
            return bad_context(k, "length outside [1, the contexts' max_len]", len, c->max_len);
        if (len > max_len - 1)
            return bad_context(k, "length leaves no room for a generated token within max_len", len,
                               max_len - 1);
        for (int32_t j = 0; j < len; j++) {
            const int32_t tok = c->tokens[(size_t)k * c->max_len + j];
            if (tok < 0 || tok >= vocab)
                return bad_context(k, "token outside the vocabulary", tok, vocab - 1);
        }
    }
    return KLC_OK;
}

int32_t tr_longest_prompt(const klc_trainer *t) {
    int32_t longest = 1;
    for (int32_t k = 0; k < t->contexts.n_seq; k++)
        if (t->contexts.lengths[k] > longest) longest = t->contexts.lengths[k];
    return longest;
}

int tr_contexts_create(klc_trainer *t, int32_t vocab, int32_t grouped) {
    const klc_seqs *c = t->o.contexts;
    memset(&t->contexts, 0, sizeof t->contexts);
    t->n_contexts = 1;
    int32_t longest = 0;
    if (c) {
        KLC_TRY(check_contexts(c, vocab, t->max_len));
        /* The extra Z samples go round-robin: fewer than the contexts would leave some
         * without an estimate for good. */
        if (t->o.z_samples > 0 && t->o.z_samples < c->n_seq)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_trainer_create: option z_samples = %d must be 0 or at least the "
                            "%d contexts",
                            t->o.z_samples, c->n_seq);
        t->n_contexts = c->n_seq;
        for (int32_t k = 0; k < c->n_seq; k++)
            if (c->lengths[k] > longest) longest = c->lengths[k];
    }
    const size_t n = (size_t)t->n_contexts, g = (size_t)grouped;
    /* Doubles first, so that every array is aligned. */
    t->ctx_bytes = 3 * g * sizeof(double) + g * sizeof(int32_t) + (n + 1) * sizeof(int32_t) +
                   (c ? n * (size_t)longest * sizeof(int32_t) + n * sizeof(int32_t) : 0);
    char *p = klc_alloc_zeroed(&t->alloc, t->ctx_bytes);
    if (!p) return KLC_ERR_OUT_OF_MEMORY;
    t->ctx_block = p;
    t->grouped = grouped;
    t->ctx_gather = (double *)p;
    t->ctx_order = (int32_t *)(t->ctx_gather + 3 * g);
    t->ctx_start = t->ctx_order + g;
    if (c) {
        int32_t *tokens = t->ctx_start + n + 1, *lengths = tokens + n * (size_t)longest;
        for (size_t k = 0; k < n; k++) {
            lengths[k] = c->lengths[k];
            memcpy(tokens + k * (size_t)longest, c->tokens + k * (size_t)c->max_len,
                   sizeof(int32_t) * (size_t)c->lengths[k]);
        }
        t->contexts.n_seq = t->n_contexts;
        t->contexts.max_len = longest;
        t->contexts.tokens = tokens;
        t->contexts.lengths = lengths;
    }
    return KLC_OK;
}

void tr_contexts_destroy(klc_trainer *t) {
    klc_free(&t->alloc, t->ctx_block, t->ctx_bytes);
    t->ctx_block = NULL;
}

void tr_draw_contexts(const klc_trainer *t, int32_t *ids, int32_t n, uint64_t step, int64_t first) {
    klc_rng rng;
    klc_rng_init(&rng, t->o.seed, KLC_STREAM_DATA);
    rng.step = step;
    for (int32_t i = 0; i < n; i++) {
        const int32_t c =
            (int32_t)(klc_rng_uniform(&rng, (uint64_t)(first + i), 0) * t->n_contexts);
        ids[i] = c < t->n_contexts ? c : t->n_contexts - 1;
    }
}

/* A counting sort: ctx_order lists the sequences of context 0, then of context 1, ... */
void tr_group(klc_trainer *t, const klc_batch *b) {
    const int32_t n = b->n_seq, nc = t->n_contexts;
    int32_t *start = t->ctx_start;
    memset(start, 0, sizeof(int32_t) * (size_t)(nc + 1));
    for (int32_t i = 0; i < n; i++) start[b->context_ids[i] + 1]++;
    for (int32_t c = 0; c < nc; c++) start[c + 1] += start[c];
    for (int32_t i = 0; i < n; i++) {
        /* start[c] walks through context c's run and ends at the next one's start ... */
        t->ctx_order[start[b->context_ids[i]]++] = i;
    }
    /* ... so shifting right by one restores the runs' beginnings. */
    memmove(start + 1, start, sizeof(int32_t) * (size_t)nc);
    start[0] = 0;
}

double tr_context_mean(const klc_trainer *t, const double *v, size_t stride) {
    double total = 0;
    int32_t present = 0;
    for (int32_t c = 0; c < t->n_contexts; c++) {
        const int32_t from = t->ctx_start[c], to = t->ctx_start[c + 1];
        if (from == to) continue;
        double s = 0;
        for (int32_t k = from; k < to; k++) s += v[(size_t)t->ctx_order[k] * stride];
        total += s / (to - from);
        present++;
    }
    return present ? total / present : NAN;
}

/* Copies context c's logP, logq and (when given) logm into the gather arrays. */
static int32_t gather(klc_trainer *t, const klc_batch *b, const double *logm, int32_t c) {
    const int32_t from = t->ctx_start[c], n = t->ctx_start[c + 1] - from;
    double *gP = t->ctx_gather, *gq = gP + t->grouped, *gm = gq + t->grouped;
    for (int32_t k = 0; k < n; k++) {
        const int32_t i = t->ctx_order[from + k];
        gP[k] = b->logP[i];
        gq[k] = b->logq[i];
        if (logm) gm[k] = logm[i];
    }
    return n;
}

int tr_context_estimate(klc_trainer *t, const klc_batch *b, const double *logm, tr_estimator f,
                        double *out) {
    double total = 0;
    int32_t present = 0;
    *out = NAN;
    for (int32_t c = 0; c < t->n_contexts; c++) {
        const int32_t n = gather(t, b, logm, c);
        if (n == 0) continue;
        const double log_z = klc_z_estimate_log_z(t->z, c);
        if (!isfinite(log_z)) return KLC_OK;
        double v;
        KLC_TRY(f(n, t->ctx_gather, t->ctx_gather + t->grouped, t->ctx_gather + 2 * t->grouped,
                  log_z, &v));
        total += v;
        present++;
    }
    if (present) *out = total / present;
    return KLC_OK;
}

int tr_context_ess(klc_trainer *t, const klc_batch *b, double *ess, double *max_share) {
    double sum_ess = 0, sum_share = 0;
    int32_t present = 0;
    for (int32_t c = 0; c < t->n_contexts; c++) {
        const int32_t n = gather(t, b, NULL, c);
        if (n == 0) continue;
        double e, s;
        KLC_TRY(klc_estimate_ess(n, t->ctx_gather, t->ctx_gather + t->grouped, &e, &s));
        sum_ess += e;
        sum_share += s;
        present++;
    }
    *ess = sum_ess;
    *max_share = present ? sum_share / present : NAN;
    return KLC_OK;
}
