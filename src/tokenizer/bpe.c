/* BPE over one piece, exactly as GPT-2's reference encoder does it: repeatedly take the
 * adjacent pair with the lowest merge rank and merge every occurrence of it in one left-
 * to-right pass without overlap. A min-heap of (rank, position) makes a piece of n bytes
 * cost O(n log n) rather than the reference's O(n^2), which matters for long runs of
 * letters or spaces. All occurrences of one rank are taken off the heap before any new
 * pair is pushed, so that a new pair with a lower rank (possible in a hand-made merges
 * file) waits for the next round, as in the reference. */
#include "tokenizer/tokenizer.h"

static int scratch_reserve(klc_tokenizer *t, size_t n) {
    klc_bpe_scratch *b = &t->bpe;
    if (n <= b->cap) return KLC_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < n) cap *= 2;
    klc_bpe_scratch nb = {0};
    nb.cap = cap;
    nb.id = klc_alloc(&t->ac, cap * sizeof(int32_t));
    nb.next = klc_alloc(&t->ac, cap * sizeof(int32_t));
    nb.prev = klc_alloc(&t->ac, cap * sizeof(int32_t));
    nb.heap = klc_alloc(&t->ac, 3 * cap * sizeof(uint64_t));
    nb.round = klc_alloc(&t->ac, 3 * cap * sizeof(uint64_t));
    klc_bpe_scratch *victim = (nb.id && nb.next && nb.prev && nb.heap && nb.round) ? b : &nb;
    klc_free(&t->ac, victim->id, victim->cap * sizeof(int32_t));
    klc_free(&t->ac, victim->next, victim->cap * sizeof(int32_t));
    klc_free(&t->ac, victim->prev, victim->cap * sizeof(int32_t));
    klc_free(&t->ac, victim->heap, 3 * victim->cap * sizeof(uint64_t));
    klc_free(&t->ac, victim->round, 3 * victim->cap * sizeof(uint64_t));
    if (victim == &nb) return KLC_ERR_OUT_OF_MEMORY;
    *b = nb;
    return KLC_OK;
}

static void heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (last <= h[c]) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

/* Pushes the pair starting at node i if it has a merge. Entries are rank << 32 | i, so
 * the heap yields the lowest rank first and, within a rank, the leftmost pair. */
static void push_pair(const klc_tokenizer *t, klc_bpe_scratch *b, size_t *hn, int32_t i) {
    if (i < 0 || b->next[i] < 0) return;
    const uint64_t *r = klc_u64map_find(&t->pair_rank, klc_pair_key(b->id[i], b->id[b->next[i]]));
    if (r) heap_push(b->heap, hn, (*r << 32) | (uint32_t)i);
}

int klc_bpe_piece(klc_tokenizer *t, const uint8_t *piece, size_t n, int32_t *out, size_t *n_out) {
    if (n == 1) {
        out[0] = t->byte_token[piece[0]];
        *n_out = 1;
        return KLC_OK;
    }
    if (n > INT32_MAX) return klc_fail(KLC_ERR_UNSUPPORTED, "a piece of %zu bytes is too long", n);
    KLC_TRY(scratch_reserve(t, n));
    klc_bpe_scratch *b = &t->bpe;
    for (size_t i = 0; i < n; i++) {
        b->id[i] = t->byte_token[piece[i]];
        b->prev[i] = (int32_t)i - 1;
        b->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(t, b, &hn, (int32_t)i);
    while (hn > 0) {
        uint64_t rank = b->heap[0] >> 32;
        size_t rn = 0;
        while (hn > 0 && (b->heap[0] >> 32) == rank) b->round[rn++] = heap_pop(b->heap, &hn);
        const klc_tok_merge *m = &t->merges[rank];
        size_t merged = 0;
        for (size_t k = 0; k < rn; k++) {
            int32_t i = (int32_t)(uint32_t)b->round[k];
            int32_t j = b->next[i];
            /* Stale entries: the node was consumed by an overlapping occurrence to its
             * left, or changed by an earlier merge. */
            if (b->id[i] != m->left || j < 0 || b->id[j] != m->right) continue;
            b->id[i] = m->result;
            b->id[j] = -1;
            b->next[i] = b->next[j];
            if (b->next[j] >= 0) b->prev[b->next[j]] = i;
            b->round[merged++] = (uint64_t)i;
        }
        for (size_t k = 0; k < merged; k++) {
            int32_t i = (int32_t)b->round[k];
            push_pair(t, b, &hn, b->prev[i]);
            push_pair(t, b, &hn, i);
        }
    }
    size_t o = 0;
    for (int32_t i = 0; i >= 0; i = b->next[i]) out[o++] = b->id[i];
    *n_out = o;
    return KLC_OK;
}
