/* Learning a byte-level BPE from text files.
 *
 * The text is reduced to its distinct pieces (pre-tokenization, as in encoding) with
 * their counts; each piece becomes a word, a sequence of token ids. Every adjacent pair
 * of ids has a count (summed over words, weighted by word counts) and the list of words
 * where it occurs. A merge rewrites only the words on its pair's list and adjusts the
 * counts of the pairs around each occurrence, so a merge costs what it changes, not a
 * rescan of the text. The best pair comes from a max-heap with lazy deletion: counts
 * that fall leave stale entries, which are refreshed when they surface; counts that
 * rise are pushed anew at the end of each merge. */
#include "tokenizer/tokenizer.h"

#include "tokenizer/bytes.h"

#include <string.h>

typedef struct tr_pair {
    int64_t count;
    int32_t left, right;
    int32_t *words; /* word indices, may hold stale ones; a word never twice in a row */
    uint32_t n_words, cap_words;
    int32_t last_word;
    uint32_t stamp; /* the merge step that last raised the count */
    int merged;     /* once merged, never chosen again (the list of merges has no repeats) */
} tr_pair;

typedef struct tr_word {
    int64_t count;
    uint32_t off, len; /* symbols sym[off .. off+len); len shrinks as merges apply */
} tr_word;

typedef struct tr_entry {
    int64_t count;
    int32_t pair;
} tr_entry;

typedef struct trainer {
    klc_alloc_ctx ac;
    int64_t min_frequency;
    /* tokens */
    char *tok_bytes;
    size_t tb_len, tb_cap;
    uint32_t *tok_off; /* [n_tok + 1] */
    size_t n_tok, tok_cap;
    klc_bytesmap tok_ids;
    klc_tok_merge *merges;
    size_t n_merges, merges_cap;
    /* words */
    klc_bytesmap word_ids;
    tr_word *words;
    size_t n_words, words_cap;
    int32_t *sym;
    size_t sym_len, sym_cap;
    /* pairs */
    klc_u64map pair_index;
    tr_pair *pairs;
    size_t n_pairs, pairs_cap;
    tr_entry *heap;
    size_t heap_n, heap_cap;
    int32_t *touched;
    size_t n_touched, touched_cap;
    uint32_t step;
} trainer;

/* Grows *p (elements of `elem` bytes, capacity *cap) to hold at least `need`. */
static int grow(const klc_alloc_ctx *ac, void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return KLC_OK;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    size_t bytes;
    if (klc_mul_overflows(c, elem, &bytes))
        return klc_fail(KLC_ERR_OUT_OF_MEMORY, "training data too large");
    void *q = klc_alloc(ac, bytes);
    if (!q) return KLC_ERR_OUT_OF_MEMORY;
    if (*cap) memcpy(q, *p, *cap * elem);
    klc_free(ac, *p, *cap * elem);
    *p = q;
    *cap = c;
    return KLC_OK;
}
#define GROW(tr, arr, cap, need) grow(&(tr)->ac, (void **)&(arr), &(cap), (need), sizeof *(arr))

static int add_token(trainer *tr, const char *b, size_t n, uint64_t h) {
    if (tr->tb_len + n > UINT32_MAX) return klc_fail(KLC_ERR_UNSUPPORTED, "tokens too long");
    KLC_TRY(GROW(tr, tr->tok_bytes, tr->tb_cap, tr->tb_len + n));
    KLC_TRY(GROW(tr, tr->tok_off, tr->tok_cap, tr->n_tok + 2));
    if (tr->n_tok == 0) tr->tok_off[0] = 0;
    /* b may already sit where it goes (do_merge builds it there). */
    memmove(tr->tok_bytes + tr->tb_len, b, n);
    tr->tb_len += n;
    tr->tok_off[tr->n_tok + 1] = (uint32_t)tr->tb_len;
    KLC_TRY(klc_bytesmap_insert(&tr->tok_ids, b, n, h, tr->n_tok, NULL));
    tr->n_tok++;
    return KLC_OK;
}

/* Pair order for the heap: higher count first; ties by the left token's bytes, then the
 * right's (memcmp order, a proper prefix first), so the result never depends on hashing. */
static int cmp_bytes(const trainer *tr, int32_t a, int32_t b) {
    size_t an = tr->tok_off[a + 1] - tr->tok_off[a], bn = tr->tok_off[b + 1] - tr->tok_off[b];
    int c =
        memcmp(tr->tok_bytes + tr->tok_off[a], tr->tok_bytes + tr->tok_off[b], an < bn ? an : bn);
    if (c) return c;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

static int better(const trainer *tr, const tr_entry *x, const tr_entry *y) {
    if (x->count != y->count) return x->count > y->count;
    const tr_pair *p = &tr->pairs[x->pair], *q = &tr->pairs[y->pair];
    int c = cmp_bytes(tr, p->left, q->left);
    if (c) return c < 0;
    return cmp_bytes(tr, p->right, q->right) < 0;
}

static int heap_push(trainer *tr, int64_t count, int32_t pair) {
    KLC_TRY(GROW(tr, tr->heap, tr->heap_cap, tr->heap_n + 1));
    tr_entry e = {count, pair};
    size_t i = tr->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!better(tr, &e, &tr->heap[p])) break;
        tr->heap[i] = tr->heap[p];
        i = p;
    }
    tr->heap[i] = e;
    return KLC_OK;
}

static tr_entry heap_pop(trainer *tr) {
    tr_entry top = tr->heap[0], last = tr->heap[--tr->heap_n];
    size_t i = 0, n = tr->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && better(tr, &tr->heap[c + 1], &tr->heap[c])) c++;
        if (!better(tr, &tr->heap[c], &last)) break;
        tr->heap[i] = tr->heap[c];
        i = c;
    }
    if (n) tr->heap[i] = last;
    return top;
}

/* The index of pair (l, r), created with count 0 if new. */
static int pair_get(trainer *tr, int32_t l, int32_t r, int32_t *idx) {
    uint64_t key = klc_pair_key(l, r);
    uint64_t *v = klc_u64map_find(&tr->pair_index, key);
    if (v) {
        *idx = (int32_t)*v;
        return KLC_OK;
    }
    if (tr->n_pairs >= INT32_MAX) return klc_fail(KLC_ERR_UNSUPPORTED, "too many pairs");
    KLC_TRY(GROW(tr, tr->pairs, tr->pairs_cap, tr->n_pairs + 1));
    KLC_TRY(klc_u64map_put(&tr->pair_index, key, tr->n_pairs));
    tr_pair *p = &tr->pairs[tr->n_pairs];
    memset(p, 0, sizeof *p);
    p->left = l;
    p->right = r;
    p->last_word = -1;
    *idx = (int32_t)tr->n_pairs++;
    return KLC_OK;
}

static int pair_add(trainer *tr, int32_t l, int32_t r, int64_t delta, int32_t word) {
    int32_t idx = -1;
    KLC_TRY(pair_get(tr, l, r, &idx));
    tr_pair *p = &tr->pairs[idx];
    p->count += delta;
    if (delta > 0) {
        if (p->last_word != word) {
            size_t cap = p->cap_words;
            KLC_TRY(
                grow(&tr->ac, (void **)&p->words, &cap, (size_t)p->n_words + 1, sizeof(int32_t)));
            p->cap_words = (uint32_t)cap;
            p->words[p->n_words++] = word;
            p->last_word = word;
        }
        if (p->stamp != tr->step) {
            p->stamp = tr->step;
            KLC_TRY(GROW(tr, tr->touched, tr->touched_cap, tr->n_touched + 1));
            tr->touched[tr->n_touched++] = idx;
        }
    }
    return KLC_OK;
}

/* Counts the pieces of one file's contents. */
static int count_pieces(trainer *tr, klc_pretok *pre, const char *text, size_t len,
                        const int32_t *byte_id) {
    klc_pretok_iter it;
    klc_pretok_begin(&it, text, len);
    size_t start, n;
    int st;
    while ((st = klc_pretok_next(pre, &it, &start, &n)) > 0) {
        const char *p = text + start;
        uint64_t h = klc_hash_bytes(p, n);
        klc_bytesmap_slot *s = klc_bytesmap_find(&tr->word_ids, p, n, h);
        if (s) {
            tr->words[s->val].count++;
            continue;
        }
        if (tr->n_words >= INT32_MAX || tr->sym_len + n > UINT32_MAX)
            return klc_fail(KLC_ERR_UNSUPPORTED, "too many distinct pieces to train on");
        KLC_TRY(GROW(tr, tr->words, tr->words_cap, tr->n_words + 1));
        KLC_TRY(GROW(tr, tr->sym, tr->sym_cap, tr->sym_len + n));
        KLC_TRY(klc_bytesmap_insert(&tr->word_ids, p, n, h, tr->n_words, NULL));
        tr->words[tr->n_words++] = (tr_word){1, (uint32_t)tr->sym_len, (uint32_t)n};
        for (size_t i = 0; i < n; i++) tr->sym[tr->sym_len++] = byte_id[(uint8_t)p[i]];
    }
    return st;
}

/* Applies merge (l, r) -> m to word w, left to right without overlap, and moves the
 * counts of the pairs around each occurrence: (x, l) becomes (x, m) and (r, y) becomes
 * (m, y), where x is the symbol already written (possibly an m made just before, which
 * is how "l r l r" ends with one (m, m) and no (m, l)). */
static int merge_word(trainer *tr, int32_t w, int32_t l, int32_t r, int32_t m, int32_t pidx) {
    tr_word *wd = &tr->words[w];
    int32_t *s = tr->sym + wd->off;
    int64_t c = wd->count;
    size_t n = wd->len, i = 0, o = 0;
    while (i < n) {
        if (i + 1 < n && s[i] == l && s[i + 1] == r) {
            if (o > 0) {
                KLC_TRY(pair_add(tr, s[o - 1], l, -c, w));
                KLC_TRY(pair_add(tr, s[o - 1], m, c, w));
            }
            tr->pairs[pidx].count -= c;
            if (i + 2 < n) {
                KLC_TRY(pair_add(tr, r, s[i + 2], -c, w));
                KLC_TRY(pair_add(tr, m, s[i + 2], c, w));
            }
            s[o++] = m;
            i += 2;
        } else {
            s[o++] = s[i++];
        }
    }
    wd->len = (uint32_t)o;
    return KLC_OK;
}

static void trainer_free(trainer *tr) {
    const klc_alloc_ctx *ac = &tr->ac;
    klc_free(ac, tr->tok_bytes, tr->tb_cap);
    klc_free(ac, tr->tok_off, tr->tok_cap * sizeof(uint32_t));
    klc_bytesmap_free(&tr->tok_ids);
    klc_free(ac, tr->merges, tr->merges_cap * sizeof(klc_tok_merge));
    klc_bytesmap_free(&tr->word_ids);
    klc_free(ac, tr->words, tr->words_cap * sizeof(tr_word));
    klc_free(ac, tr->sym, tr->sym_cap * sizeof(int32_t));
    klc_u64map_free(&tr->pair_index);
    for (size_t i = 0; i < tr->n_pairs; i++)
        klc_free(ac, tr->pairs[i].words, tr->pairs[i].cap_words * sizeof(int32_t));
    klc_free(ac, tr->pairs, tr->pairs_cap * sizeof(tr_pair));
    klc_free(ac, tr->heap, tr->heap_cap * sizeof(tr_entry));
    klc_free(ac, tr->touched, tr->touched_cap * sizeof(int32_t));
}

/* One merge: the best pair becomes a token (or reuses the token with its bytes). */
static int do_merge(trainer *tr, int32_t pidx) {
    tr_pair *p = &tr->pairs[pidx];
    int32_t l = p->left, r = p->right;
    size_t ln = tr->tok_off[l + 1] - tr->tok_off[l], rn = tr->tok_off[r + 1] - tr->tok_off[r];
    KLC_TRY(GROW(tr, tr->tok_bytes, tr->tb_cap, tr->tb_len + ln + rn));
    /* Build the concatenation past the end of the byte store, where add_token puts it. */
    char *cat = tr->tok_bytes + tr->tb_len;
    memmove(cat, tr->tok_bytes + tr->tok_off[l], ln);
    memmove(cat + ln, tr->tok_bytes + tr->tok_off[r], rn);
    uint64_t h = klc_hash_bytes(cat, ln + rn);
    klc_bytesmap_slot *s = klc_bytesmap_find(&tr->tok_ids, cat, ln + rn, h);
    int32_t m;
    if (s) {
        m = (int32_t)s->val;
    } else {
        m = (int32_t)tr->n_tok;
        KLC_TRY(add_token(tr, cat, ln + rn, h));
    }
    KLC_TRY(GROW(tr, tr->merges, tr->merges_cap, tr->n_merges + 1));
    tr->merges[tr->n_merges++] = (klc_tok_merge){l, r, m};
    tr->pairs[pidx].merged = 1;
    tr->step++;
    tr->n_touched = 0;
    /* pair_add may move the pairs array, so the list is read through the index. */
    int32_t *words = tr->pairs[pidx].words;
    uint32_t nw = tr->pairs[pidx].n_words;
    for (uint32_t k = 0; k < nw; k++) KLC_TRY(merge_word(tr, words[k], l, r, m, pidx));
    klc_free(&tr->ac, words, tr->pairs[pidx].cap_words * sizeof(int32_t));
    tr->pairs[pidx].words = NULL;
    tr->pairs[pidx].n_words = tr->pairs[pidx].cap_words = 0;
    for (size_t k = 0; k < tr->n_touched; k++) {
        const tr_pair *q = &tr->pairs[tr->touched[k]];
        if (!q->merged && q->count >= tr->min_frequency)
            KLC_TRY(heap_push(tr, q->count, tr->touched[k]));
    }
    return KLC_OK;
}

static int train(trainer *tr, const char *const *files, size_t n_files, int32_t vocab_size) {
    static const char eot[] = "<|endoftext|>";
    int32_t byte_id[256];
    for (int i = 0; i < 256; i++) {
        char b = (char)klc_gpt2_byte_order(i);
        byte_id[(uint8_t)b] = i;
        KLC_TRY(add_token(tr, &b, 1, klc_hash_bytes(&b, 1)));
    }
    klc_pretok pre;
    KLC_TRY(klc_pretok_init(&pre));
    int st = KLC_OK;
    for (size_t f = 0; f < n_files && !st; f++) {
        char *buf;
        size_t len;
        if ((st = klc_tok_read_file(&tr->ac, files[f], &buf, &len))) break;
        st = count_pieces(tr, &pre, buf, len, byte_id);
        if (st) klc_fail_context(st, "%s: ", files[f]);
        klc_free(&tr->ac, buf, len + 1);
    }
    klc_pretok_free(&pre);
    KLC_TRY(st);
    klc_bytesmap_free(&tr->word_ids); /* the words' bytes are no longer needed */
    for (size_t w = 0; w < tr->n_words; w++) {
        const tr_word *wd = &tr->words[w];
        for (uint32_t i = 0; i + 1 < wd->len; i++)
            KLC_TRY(pair_add(tr, tr->sym[wd->off + i], tr->sym[wd->off + i + 1], wd->count,
                             (int32_t)w));
    }
    for (size_t i = 0; i < tr->n_pairs; i++)
        if (tr->pairs[i].count >= tr->min_frequency)
            KLC_TRY(heap_push(tr, tr->pairs[i].count, (int32_t)i));
    while (tr->n_tok + 1 < (size_t)vocab_size && tr->heap_n > 0) {
        tr_entry e = heap_pop(tr);
        const tr_pair *p = &tr->pairs[e.pair];
        if (p->merged) continue;
        if (e.count != p->count) {
            /* Stale. A lower current count gets a fresh entry; a higher one already has
             * one, pushed when it rose. */
            if (e.count > p->count && p->count >= tr->min_frequency)
                KLC_TRY(heap_push(tr, p->count, e.pair));
            continue;
        }
        KLC_TRY(do_merge(tr, e.pair));
    }
    uint64_t h = klc_hash_bytes(eot, sizeof eot - 1);
    if (klc_bytesmap_find(&tr->tok_ids, eot, sizeof eot - 1, h))
        return klc_fail(KLC_ERR_INTERNAL, "a learned token spells '<|endoftext|>'");
    return add_token(tr, eot, sizeof eot - 1, h);
}

int klc_tokenizer_train_options_init(klc_tokenizer_train_options *o, uint32_t version) {
    KLC_CHECK_ARG(o);
    if (version != KLC_TOKENIZER_TRAIN_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_UNSUPPORTED,
                        "klc_tokenizer_train_options version %u (this "
                        "library knows %d)",
                        (unsigned)version, KLC_TOKENIZER_TRAIN_OPTIONS_VERSION);
    memset(o, 0, sizeof *o);
    o->version = version;
    o->vocab_size = 8192;
    o->min_frequency = 2;
    return KLC_OK;
}

int klc_tokenizer_train(const char *const *files, size_t n_files,
                        const klc_tokenizer_train_options *opts, klc_tokenizer **out) {
    KLC_CHECK_ARG(out);
    *out = NULL;
    KLC_CHECK_ARG(files || n_files == 0);
    klc_tokenizer_train_options o;
    klc_tokenizer_train_options_init(&o, KLC_TOKENIZER_TRAIN_OPTIONS_VERSION);
    if (opts) {
        if (opts->version != KLC_TOKENIZER_TRAIN_OPTIONS_VERSION)
            return klc_fail(KLC_ERR_UNSUPPORTED, "klc_tokenizer_train_options version %u",
                            (unsigned)opts->version);
        o = *opts;
    }
    if (o.vocab_size < 257 || o.vocab_size > (1 << 24))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_tokenizer_train: vocab_size %d is outside 257..%d", o.vocab_size,
                        1 << 24);
    if (o.min_frequency < 1)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_tokenizer_train: min_frequency %lld is below 1",
                        (long long)o.min_frequency);
    for (size_t i = 0; i < n_files; i++) KLC_CHECK_ARG(files[i]);
    trainer tr;
    memset(&tr, 0, sizeof tr);
    klc_alloc_ctx_init(&tr.ac, o.allocator);
    tr.min_frequency = o.min_frequency;
    int st;
    if ((st = klc_bytesmap_init(&tr.tok_ids, &tr.ac, (size_t)o.vocab_size)) ||
        (st = klc_bytesmap_init(&tr.word_ids, &tr.ac, 1 << 16)) ||
        (st = klc_u64map_init(&tr.pair_index, &tr.ac, 1 << 16)))
        goto done;
    if ((st = train(&tr, files, n_files, o.vocab_size))) goto done;
    klc_tokenizer *t;
    if ((st = klc_tok_create(&tr.ac, (int32_t)tr.n_tok, tr.tok_off, tr.tok_bytes, &t))) goto done;
    for (size_t k = 0; k < tr.n_merges; k++) {
        int32_t other;
        st = klc_tok_add_merge(t, tr.merges[k].left, tr.merges[k].right, &other);
        if (st != KLC_OK) {
            klc_tokenizer_destroy(t);
            st = st > 0 ? klc_fail(KLC_ERR_INTERNAL,
                                   "trainer produced an inconsistent merge "
                                   "%zu",
                                   k)
                        : st;
            goto done;
        }
    }
    *out = t;
done:
    trainer_free(&tr);
    return st;
}
