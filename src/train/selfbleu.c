/* Self-BLEU-n (n = 3, 4, 5; Zhu et al., Texygen): every text in turn is the hypothesis
 * and all the other texts are its references; the score is the mean over the texts of
 * smoothed sentence BLEU on word n-grams (words as for Distinct-n). Each text's BLEU-N is
 * exactly NLTK's sentence_bleu with uniform weights 1/N over the orders 1..N and
 * SmoothingFunction().method1 (Texygen's setting):
 *   p_k  = sum_g min(c_i(g), max_{j != i} c_j(g)) / max(1, #k-grams of i), where a zero
 *          numerator becomes 0.1 (method1's epsilon) over the same denominator;
 *   BP   = 1 when the hypothesis has more words c than the closest reference length r
 *          (the nearest, the shorter on ties), else exp(1 - r/c);
 *   BLEU = BP exp((1/N) sum_k log p_k), and 0 when no word of i occurs in any other text
 *          (NLTK's early return, which also covers empty texts).
 *
 * Cost: one pass builds, per text, the (n-gram, count) pairs of every order up to 5
 * (sorting each text's hashes), and a global open-addressing table keeps per n-gram the
 * two largest counts over the texts and the text holding the largest, so that the
 * leave-one-out reference count max_{j != i} c_j(g) is O(1): the second largest when i
 * holds the largest, the largest otherwise (ties make them equal). The closest reference
 * length is a linear scan per text, O(n^2) in the number of texts only (500 at most). */
#include "diversity.h"

#include <math.h>
#include <stdlib.h>

enum { MAX_ORDER = 5 };

typedef struct gram {
    uint64_t hash;
    int32_t count, order;
} gram;

typedef struct slot {
    uint64_t hash; /* 0: empty */
    int32_t max1, owner, max2;
} slot;

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static slot *find(slot *table, size_t mask, uint64_t h) {
    size_t k = (size_t)(h ^ (h >> 29)) & mask;
    while (table[k].hash != 0 && table[k].hash != h) k = (k + 1) & mask;
    return &table[k];
}

/* The (n-gram, count) pairs of every order of one text's words w [nw] into out; tmp
 * [nw] is scratch. Returns the pairs written. */
static size_t text_grams(const uint64_t *w, size_t nw, uint64_t *tmp, gram *out) {
    size_t n_out = 0;
    for (size_t k = 1; k <= MAX_ORDER && k <= nw; k++) {
        const size_t ng = nw - k + 1;
        for (size_t s = 0; s < ng; s++) {
            uint64_t h = tr_ngram_hash(w + s, k);
            tmp[s] = h ? h : 1; /* 0 marks an empty slot */
        }
        qsort(tmp, ng, sizeof *tmp, cmp_u64);
        for (size_t s = 0; s < ng;) {
            size_t e = s + 1;
            while (e < ng && tmp[e] == tmp[s]) e++;
            out[n_out++] = (gram){tmp[s], (int32_t)(e - s), (int32_t)k};
            s = e;
        }
    }
    return n_out;
}

/* BLEU-1..5 inputs of one hypothesis: clipped matches and n-gram counts per order. */
static void bleu_scores(const double num[MAX_ORDER + 1], size_t nw, size_t ref_len,
                        double *out /* [3]: BLEU-3, 4, 5 */) {
    if (num[1] == 0) {
        out[0] = out[1] = out[2] = 0;
        return;
    }
    const double c = (double)nw, r = (double)ref_len;
    const double log_bp = c > r ? 0 : 1 - r / c;
    double sum_log = 0;
    for (int k = 1; k <= MAX_ORDER; k++) {
        const double den = nw >= (size_t)k ? (double)(nw - k + 1) : 1;
        sum_log += log((num[k] > 0 ? num[k] : 0.1) / den);
        if (k >= 3) out[k - 3] = exp(log_bp + sum_log / k);
    }
}

/* The nearest other text's word count to text i's (the smaller on ties). */
static size_t closest_length(const size_t *nw, int32_t n, int32_t i) {
    size_t best = 0, best_d = (size_t)-1;
    for (int32_t j = 0; j < n; j++) {
        if (j == i) continue;
        size_t d = nw[j] > nw[i] ? nw[j] - nw[i] : nw[i] - nw[j];
        if (d < best_d || (d == best_d && nw[j] < best)) best = nw[j], best_d = d;
    }
    return best;
}

int tr_self_bleu(const klc_alloc_ctx *alloc, int32_t n, const char *const *texts,
                 const size_t *lengths, double out[3]) {
    out[0] = out[1] = out[2] = NAN;
    if (n < 2) return KLC_OK;
    /* Words: a text of L bytes has at most (L+1)/2. */
    size_t max_words = 0, word_cap = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t w = (lengths[i] + 1) / 2;
        word_cap += w;
        if (w > max_words) max_words = w;
    }
    const size_t gram_cap = MAX_ORDER * word_cap;
    size_t table_cap = 16;
    while (table_cap < 2 * gram_cap) table_cap *= 2;
    const size_t bytes = (word_cap + max_words) * sizeof(uint64_t) + gram_cap * sizeof(gram) +
                         table_cap * sizeof(slot) + 2 * (size_t)n * sizeof(size_t);
    char *mem = klc_alloc_zeroed(alloc, bytes);
    if (!mem) return KLC_ERR_OUT_OF_MEMORY;
    slot *table = (slot *)mem;                        /* [table_cap] */
    gram *grams = (gram *)(table + table_cap);        /* [gram_cap] */
    uint64_t *words = (uint64_t *)(grams + gram_cap); /* [word_cap] */
    uint64_t *tmp = words + word_cap;                 /* [max_words] */
    size_t *nw = (size_t *)(tmp + max_words);         /* [n] words per text */
    size_t *first = nw + n;                           /* [n] first gram per text */
    size_t n_grams = 0, w_off = 0;
    for (int32_t i = 0; i < n; i++) {
        nw[i] = tr_words(texts[i], lengths[i], words + w_off);
        first[i] = n_grams;
        n_grams += text_grams(words + w_off, nw[i], tmp, grams + n_grams);
        w_off += nw[i];
    }
    /* Per n-gram: the largest count, its text, and the largest among the other texts. */
    int32_t text = 0;
    for (size_t g = 0; g < n_grams; g++) {
        while (text + 1 < n && first[text + 1] <= g) text++;
        slot *s = find(table, table_cap - 1, grams[g].hash);
        const int32_t c = grams[g].count;
        if (s->hash == 0) {
            *s = (slot){grams[g].hash, c, text, 0};
        } else if (c > s->max1) {
            s->max2 = s->max1;
            s->max1 = c;
            s->owner = text;
        } else if (c > s->max2) {
            s->max2 = c;
        }
    }
    double sum[3] = {0, 0, 0};
    for (int32_t i = 0; i < n; i++) {
        double num[MAX_ORDER + 1] = {0};
        const size_t end = i + 1 < n ? first[i + 1] : n_grams;
        for (size_t g = first[i]; g < end; g++) {
            const slot *s = find(table, table_cap - 1, grams[g].hash);
            const int32_t ref = s->owner == i ? s->max2 : s->max1;
            num[grams[g].order] += grams[g].count < ref ? grams[g].count : ref;
        }
        double b[3];
        bleu_scores(num, nw[i], closest_length(nw, n, i), b);
        for (int k = 0; k < 3; k++) sum[k] += b[k];
    }
    for (int k = 0; k < 3; k++) out[k] = sum[k] / n;
    klc_free(alloc, mem, bytes);
    return KLC_OK;
}
