/* A training batch and the arrays derived from it, laid out once per trainer. */
#include "sampler/batch.h"
#include "trainer.h"

#include <string.h>

/* The most bytes any token decodes to, so that a text buffer can never be too small. */
static size_t longest_token(const klc_tokenizer *tok) {
    size_t longest = 1;
    int32_t v = klc_tokenizer_vocab_size(tok);
    for (int32_t id = 0; id < v; id++) {
        const char *bytes;
        size_t len = 0;
        if (klc_tokenizer_token_bytes(tok, id, &bytes, &len) == KLC_OK && len > longest)
            longest = len;
    }
    return longest;
}

static size_t aux_bytes(const tr_batch *tb) {
    const size_t c = (size_t)tb->capacity;
    return c * (sizeof(int32_t) * (2 + (size_t)tb->max_len) + tb->text_cap + sizeof(char *) +
                sizeof(size_t) + 1 + 3 * sizeof(double));
}

int tr_batch_create(klc_trainer *t, tr_batch *tb, int32_t capacity) {
    memset(tb, 0, sizeof *tb);
    tb->capacity = capacity;
    tb->max_len = t->max_len;
    tb->text_cap = t->tok ? (size_t)(t->max_len - 1) * longest_token(t->tok) : 0;
    KLC_TRY(klc_batch_create(capacity, t->max_len, t->phi_dim, t->o.allocator, &tb->b));
    char *p = klc_alloc_zeroed(&t->alloc, aux_bytes(tb));
    if (!p) return KLC_ERR_OUT_OF_MEMORY;
    const size_t c = (size_t)capacity;
    /* Doubles and pointers first, so that every array is aligned. */
    tb->reward = (double *)p;
    tb->weights = tb->reward + c;
    tb->scratch = tb->weights + c;
    tb->texts = (const char **)(tb->scratch + c);
    tb->text_lengths = (size_t *)(tb->texts + c);
    tb->gen_lengths = (int32_t *)(tb->text_lengths + c);
    tb->ctx_assign = tb->gen_lengths + c;
    tb->gen_ids = tb->ctx_assign + c;
    tb->b_ind = (unsigned char *)(tb->gen_ids + c * (size_t)t->max_len);
    tb->text_buf = (char *)(tb->b_ind + c);
    tb->bytes = aux_bytes(tb) + tb->b->bytes + sizeof *tb->b;
    return KLC_OK;
}

void tr_batch_destroy(klc_trainer *t, tr_batch *tb) {
    if (!tb->b) return;
    klc_free(&t->alloc, tb->reward, aux_bytes(tb));
    klc_batch_destroy(tb->b);
    memset(tb, 0, sizeof *tb);
}

int tr_score(klc_model *model, const klc_seqs *seqs, const klc_forward_options *fo) {
    for (int32_t first = 0; first < seqs->n_seq; first += TR_SCORE_ROWS) {
        const int32_t n = seqs->n_seq - first < TR_SCORE_ROWS ? seqs->n_seq - first : TR_SCORE_ROWS;
        const size_t at = (size_t)first * (size_t)seqs->max_len;
        klc_seqs piece = *seqs;
        piece.n_seq = n;
        piece.tokens = seqs->tokens + at;
        piece.lengths = seqs->lengths + first;
        if (seqs->score_from) piece.score_from = seqs->score_from + first;
        if (seqs->sample_ids) piece.sample_ids = seqs->sample_ids + first;
        klc_forward_options o = *fo;
        if (fo->seq_logprobs) o.seq_logprobs = fo->seq_logprobs + first;
        if (fo->token_logprobs) o.token_logprobs = fo->token_logprobs + at;
        KLC_TRY(klc_model_score(model, &piece, &o));
    }
    return KLC_OK;
}
