/* Encoding the pretraining corpus and drawing windows from it. */
#include "cli/pretrain_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "tokenizer/tokenizer.h"

/* In place: drops carriage returns and turns a single newline between two non-empty lines
 * into a space. Returns the new length. */
static size_t unwrap_lines(char *s, size_t n) {
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        char c = s[r];
        if (c == '\r') continue;
        if (c == '\n') {
            int prev_text = w > 0 && s[w - 1] != '\n';
            size_t next = r + 1;
            while (next < n && s[next] == '\r') next++;
            int next_text = next < n && s[next] != '\n';
            if (prev_text && next_text) c = ' ';
        }
        s[w++] = c;
    }
    return w;
}

static int is_upper_or_quote(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || c == '"' || c == '\'';
}

/* Per token id: does it end a sentence or a line, and can it begin one (an optional space
 * then a capital letter or an opening quote)? */
static int token_classes(klc_tokenizer *tok, unsigned char *ends, unsigned char *begins) {
    int32_t v = klc_tokenizer_vocab_size(tok);
    for (int32_t id = 0; id < v; id++) {
        const char *b;
        size_t len;
        ends[id] = begins[id] = 0;
        if (klc_tokenizer_token_bytes(tok, id, &b, &len) != KLC_OK || len == 0) continue;
        size_t e = len;
        while (e > 0 && (b[e - 1] == '"' || b[e - 1] == '\'' || b[e - 1] == ')')) e--;
        ends[id] = (e > 0 && (b[e - 1] == '.' || b[e - 1] == '!' || b[e - 1] == '?')) ||
                   b[len - 1] == '\n';
        size_t s = (b[0] == ' ') ? 1 : 0;
        begins[id] = s < len && is_upper_or_quote((unsigned char)b[s]);
    }
    return KLC_OK;
}

int pt_corpus_load(klc_tokenizer *tok, const char *const *files, int32_t n_files, int unwrap,
                   pt_corpus *out) {
    memset(out, 0, sizeof *out);
    const int32_t eot = klc_tokenizer_eot_id(tok);
    if (eot < 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "the tokenizer has no end-of-text token");
    size_t cap = 0;
    int status = KLC_OK;
    klc_alloc_ctx ac;
    klc_alloc_ctx_init(&ac, NULL);
    for (int32_t f = 0; f < n_files && status == KLC_OK; f++) {
        char *text = NULL;
        size_t size = 0;
        if ((status = klc_tok_read_file(&ac, files[f], &text, &size)) != KLC_OK) break;
        size_t len = unwrap ? unwrap_lines(text, size) : size;
        if (out->n + len + 2 > cap) {
            size_t want = (out->n + len + 2) * 2;
            int32_t *grown = realloc(out->ids, want * sizeof *grown);
            if (!grown) {
                klc_free(&ac, text, size + 1);
                status = klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory encoding %s", files[f]);
                break;
            }
            out->ids = grown, cap = want;
        }
        size_t got;
        status = klc_tokenizer_encode(tok, text, len, KLC_TOKENIZE_EOT_AFTER, out->ids + out->n,
                                      cap - out->n, &got);
        klc_free(&ac, text, size + 1);
        if (status != KLC_OK) break;
        out->n += got;
        out->bytes += len;
    }
    if (status == KLC_OK && out->n < 2)
        status = klc_fail(KLC_ERR_INVALID_ARGUMENT, "the pretraining files hold no text");
    if (status != KLC_OK) {
        pt_corpus_free(out);
        return status;
    }

    int32_t v = klc_tokenizer_vocab_size(tok);
    unsigned char *ends = malloc((size_t)v), *begins = malloc((size_t)v);
    out->starts = malloc(out->n * sizeof *out->starts);
    if (!ends || !begins || !out->starts) {
        free(ends), free(begins);
        pt_corpus_free(out);
        return klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory indexing the corpus");
    }
    token_classes(tok, ends, begins);
    /* A window may start at the beginning of a file or right after a sentence or line
     * ends, where the next token opens a sentence. */
    out->starts[out->n_starts++] = 0;
    for (size_t i = 1; i < out->n; i++) {
        int32_t prev = out->ids[i - 1], cur = out->ids[i];
        if (cur == eot) continue;
        if (prev == eot || (ends[prev] && begins[cur])) out->starts[out->n_starts++] = i;
    }
    free(ends), free(begins);
    return KLC_OK;
}

void pt_corpus_free(pt_corpus *c) {
    free(c->ids);
    free(c->starts);
    memset(c, 0, sizeof *c);
}

void pt_corpus_windows(const pt_corpus *c, const klc_rng *rng, int32_t n_seq, int32_t len,
                       int32_t eot, int32_t *tokens) {
    for (int32_t i = 0; i < n_seq; i++) {
        int32_t *w = tokens + (size_t)i * (size_t)len;
        size_t pick = (size_t)(klc_rng_uniform(rng, (uint64_t)i, 0) * (double)c->n_starts);
        size_t start = c->starts[pick < c->n_starts ? pick : c->n_starts - 1];
        /* Near the end, slide back so that the window stays inside the corpus. */
        if (start + (size_t)(len - 1) > c->n) start = c->n - (size_t)(len - 1);
        w[0] = eot;
        memcpy(w + 1, c->ids + start, (size_t)(len - 1) * sizeof *w);
    }
}
