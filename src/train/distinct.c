/* Distinct-n: per text, distinct word n-grams over word n-grams, averaged over the texts
 * that have at least n words. Words are runs of bytes other than ASCII white space;
 * n-grams are compared by 64-bit hashes (a collision among a text's few hundred n-grams
 * is vanishingly unlikely and would only lower the count by one). */
#include "trainer.h"

#include <stdlib.h>

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

uint64_t tr_ngram_hash(const uint64_t *w, size_t n) {
    uint64_t h = n;
    for (size_t j = 0; j < n; j++) h = mix(h, w[j]);
    return h;
}

size_t tr_words(const char *s, size_t len, uint64_t *w) {
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && is_space(s[i])) i++;
        if (i == len) break;
        uint64_t h = 1469598103934665603ull;
        while (i < len && !is_space(s[i])) h = (h ^ (unsigned char)s[i++]) * 1099511628211ull;
        w[n++] = h;
    }
    return n;
}

void tr_distinct(klc_trainer *t, const tr_batch *tb, int32_t n_texts, double out[3]) {
    double sum[3] = {0, 0, 0};
    int32_t count[3] = {0, 0, 0};
    for (int32_t i = 0; i < n_texts; i++) {
        /* A text of L bytes has at most (L+1)/2 words, so words and n-grams fit together
         * in the L+1 hashes reserved. */
        uint64_t *w = t->hashes;
        size_t nw = tr_words(tb->texts[i], tb->text_lengths[i], w);
        uint64_t *g = w + nw;
        for (size_t n = 1; n <= 3; n++) {
            if (nw < n) break;
            size_t ng = nw - n + 1;
            for (size_t k = 0; k < ng; k++) g[k] = tr_ngram_hash(w + k, n);
            qsort(g, ng, sizeof *g, cmp_u64);
            size_t distinct = 1;
            for (size_t k = 1; k < ng; k++) distinct += g[k] != g[k - 1];
            sum[n - 1] += (double)distinct / (double)ng;
            count[n - 1]++;
        }
    }
    for (int k = 0; k < 3; k++) out[k] = count[k] ? sum[k] / count[k] : 0;
}
