/* Filling a batch: sample, decode, and score with the base, the target and the reward. */
#include "sampler/batch.h"
#include "trainer.h"

#include <math.h>
#include <string.h>

static int decode(klc_trainer *t, tr_batch *tb, int32_t n) {
    klc_batch *b = tb->b;
    for (int32_t i = 0; i < n; i++) {
        const int32_t *gen = b->tokens + (size_t)i * b->max_len + b->prompt_lengths[i];
        size_t len = (size_t)tb->gen_lengths[i];
        /* Text features never see the end-of-text token (see klc_seq_batch). */
        if (len > 0 && t->o.eos_id >= 0 && gen[len - 1] == t->o.eos_id) len--;
        char *buf = tb->text_buf + (size_t)i * tb->text_cap;
        size_t got = 0;
        int s = klc_tokenizer_decode(t->tok, gen, len, buf, tb->text_cap, &got);
        if (s != KLC_OK) return klc_fail_context(s, "klc_trainer_step: decoding sequence %d: ", i);
        tb->texts[i] = buf;
        tb->text_lengths[i] = got;
    }
    return KLC_OK;
}

/* Pure ancestral sampling keyed (seed, step) from global index first. */
static void sample_options(const klc_trainer *t, uint64_t step, int64_t first,
                           klc_sample_options *so) {
    klc_sample_options_init(so, KLC_SAMPLE_OPTIONS_VERSION);
    klc_rng_init(&so->rng, t->o.seed, KLC_STREAM_SAMPLE);
    so->rng.step = step;
    so->first_sample = first;
    so->max_new_tokens = t->o.max_new_tokens;
    so->eos_id = t->o.eos_id;
    so->bos_id = t->o.bos_id;
    if (t->contexts.n_seq > 0) so->contexts = &t->contexts; /* round-robin unless told */
}

static int draw(klc_trainer *t, tr_batch *tb, klc_sampler *sampler, const klc_sample_options *so,
                int32_t n) {
    klc_batch *b = tb->b;
    KLC_TRY(klc_sampler_sample(sampler, so, n, b));
    /* Features see the generated tokens only: each row's start at offset 0, whatever the
     * length of its prompt. */
    for (int32_t i = 0; i < n; i++) {
        const size_t row = (size_t)i * b->max_len;
        tb->gen_lengths[i] = b->lengths[i] - b->prompt_lengths[i];
        memcpy(tb->gen_ids + row, b->tokens + row + b->prompt_lengths[i],
               sizeof(int32_t) * (size_t)tb->gen_lengths[i]);
    }
    return t->tok ? decode(t, tb, n) : KLC_OK;
}

int tr_sample_texts(klc_trainer *t, tr_batch *tb, klc_sampler *sampler, int32_t n, uint64_t step,
                    int64_t first, double top_p) {
    klc_sample_options so;
    sample_options(t, step, first, &so);
    so.top_p = top_p;
    return draw(t, tb, sampler, &so, n);
}

int tr_fill(klc_trainer *t, tr_batch *tb, klc_sampler *sampler, int32_t n, uint64_t step,
            int64_t first, int training) {
    klc_sample_options so;
    sample_options(t, step, first, &so);
    /* Only the training batch follows context_order; the Z and evaluation samples go
     * round-robin (the sampler's default), so that they cover every context. */
    if (training && so.contexts && t->o.context_order == KLC_CONTEXTS_RANDOM) {
        tr_draw_contexts(t, tb->ctx_assign, n, step, first);
        so.context_ids = tb->ctx_assign;
    }
    if (training) {
        so.temperature = t->o.temperature;
        so.top_k = t->o.top_k;
        so.top_p = t->o.top_p;
        /* On-policy with the whole batch in one forward/backward: the policy's decoding
         * keeps its activations for the gradient, which then skips its forward. */
        const int whole = t->o.micro_batch == 0 || t->o.micro_batch >= n;
        if (!t->q && whole && !(t->needs & KLC_NEED_OWN_UPDATES))
            so.flags |= KLC_SAMPLE_KEEP_ACTIVATIONS;
    }
    klc_batch *b = tb->b;
    KLC_TRY(draw(t, tb, sampler, &so, n));

    klc_seqs seqs;
    KLC_TRY(klc_batch_seqs(b, &seqs));
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.seq_logprobs = b->loga;
    fo.token_logprobs = b->loga_tok;
    KLC_TRY(tr_score(t->base, &seqs, &fo));
    b->flags |= KLC_BATCH_HAS_LOGA;

    klc_seq_batch sb;
    memset(&sb, 0, sizeof sb);
    sb.struct_size = sizeof sb;
    sb.n = n;
    sb.stride = b->max_len;
    sb.ids = tb->gen_ids;
    sb.lengths = tb->gen_lengths;
    sb.texts = t->tok ? tb->texts : NULL;
    sb.text_lengths = t->tok ? tb->text_lengths : NULL;
    sb.context_ids = b->context_ids;
    if (t->target) {
        KLC_TRY(klc_target_log_prob(t->target, &sb, b->loga, b->logP, b->phi, tb->b_ind));
        b->flags |= KLC_BATCH_HAS_LOGP | (t->phi_dim > 0 ? KLC_BATCH_HAS_PHI : 0);
    }
    if (t->o.reward) {
        KLC_TRY(klc_feature_score(t->o.reward, &sb, tb->reward));
    } else if (t->reward_col >= 0) {
        for (int32_t i = 0; i < n; i++)
            tb->reward[i] = b->phi[(size_t)i * t->phi_dim + t->reward_col];
    } else {
        for (int32_t i = 0; i < n; i++) tb->reward[i] = NAN;
    }
    return KLC_OK;
}
