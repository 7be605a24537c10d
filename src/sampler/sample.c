/* klc_sampler_sample: rounds of up to max_rows sequences; each round runs its prompts
 * through the model (position by position through decoding when they all have one length,
 * in one batched prefill otherwise), then alternates a draw for every running row with one
 * decode of the rows still running. */
#include "draw.h"
#include "sampler.h"

#include "model/decode.h"
#include "model/keep.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <string.h>

/* Below this much work (rows x vocabulary) a step's draws run on one thread. */
#define DRAW_PAR_MIN_WORK 32768

int klc_sample_options_init(klc_sample_options *o, uint32_t version) {
    if (!o) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_sample_options_init: NULL options");
    if (version < 1 || version > KLC_SAMPLE_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_sample_options_init: unknown version %u (this library knows 1..%d)",
                        version, KLC_SAMPLE_OPTIONS_VERSION);
    /* A caller compiled against version 1 has a shorter struct: write only its fields. */
    memset(o, 0, version >= 2 ? sizeof *o : offsetof(klc_sample_options, flags));
    o->version = version;
    klc_rng_init(&o->rng, 0, KLC_STREAM_SAMPLE);
    o->temperature = 1.0;
    o->top_p = 1.0;
    o->eos_id = 50256;
    o->bos_id = 50256;
    return KLC_OK;
}

/* What a call resolved from its options, after every check passed. */
typedef struct plan {
    klc_draw_params draw;
    int full_support;
    int32_t n_seq, max_len; /* max_len: the tighter of the sampler's and the batch's */
    int32_t max_new;        /* 0: no limit but max_len */
    int32_t eos;
    /* Prompts all of one length go through decoding position by position (so that their
     * activations can be kept), others through one batched prefill. Which way does not
     * depend on keeping: the flag never changes what is sampled. */
    int same_prompt_len;
    int32_t prompt_len; /* when same_prompt_len */
    int keep;           /* KLC_SAMPLE_KEEP_ACTIVATIONS asked for (and, later, possible) */
} plan;

#define FAIL(...) klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_sampler_sample: " __VA_ARGS__)

/* The context sequence i of the call continues. */
static int32_t context_of(const klc_sample_options *o, int32_t i) {
    const klc_seqs *c = o->contexts;
    const int64_t sample = o->first_sample + i;
    return o->context_ids ? o->context_ids[i]
                          : (int32_t)(((sample % c->n_seq) + c->n_seq) % c->n_seq);
}

static int check_prompts(const klc_sampler *s, const klc_sample_options *o, int32_t n_seq,
                         int32_t max_len) {
    const int32_t V = s->vocab;
    if (!o->contexts) {
        if (o->bos_id < 0 || o->bos_id >= V)
            return FAIL("bos_id = %d is outside the vocabulary [0, %d); set bos_id, or give "
                        "contexts",
                        o->bos_id, V);
        if (o->context_ids) return FAIL("context_ids given without contexts");
        return KLC_OK;
    }
    const klc_seqs *c = o->contexts;
    if (c->n_seq < 1 || !c->tokens || !c->lengths || c->max_len < 1)
        return FAIL("contexts need n_seq >= 1 (got %d), tokens, lengths and max_len >= 1",
                    c->n_seq);
    const int32_t limit = s->max_prompt_len < max_len - 1 ? s->max_prompt_len : max_len - 1;
    for (int32_t k = 0; k < c->n_seq; k++) {
        const int32_t len = c->lengths[k];
        if (len < 1 || len > c->max_len || len > limit)
            return FAIL("context %d: length %d must be in [1, %d] (contexts' max_len %d, the "
                        "sampler's max_prompt_len %d, and room for a new token within max_len "
                        "%d)",
                        k, len, limit < c->max_len ? limit : c->max_len, c->max_len,
                        s->max_prompt_len, max_len);
        const int32_t *tok = c->tokens + (int64_t)k * c->max_len;
        for (int32_t t = 0; t < len; t++)
            if (tok[t] < 0 || tok[t] >= V)
                return FAIL("context %d, position %d: token id %d is outside the vocabulary "
                            "[0, %d)",
                            k, t, tok[t], V);
    }
    if (o->context_ids)
        for (int32_t i = 0; i < n_seq; i++)
            if (o->context_ids[i] < 0 || o->context_ids[i] >= c->n_seq)
                return FAIL("context_ids[%d] = %d must be in [0, %d)", i, o->context_ids[i],
                            c->n_seq);
    return KLC_OK;
}

static int make_plan(const klc_sampler *s, const klc_sample_options *o, int32_t n_seq,
                     const klc_batch *b, plan *p) {
    if (o->version < 1 || o->version > KLC_SAMPLE_OPTIONS_VERSION)
        return FAIL("options version %u unknown; fill them with klc_sample_options_init",
                    o->version);
    if (n_seq < 1 || n_seq > b->capacity)
        return FAIL("n_seq = %d must be in [1, the batch's capacity %d]", n_seq, b->capacity);
    const float inv_t = (float)(1.0 / o->temperature);
    if (!(o->temperature > 0.0) || !isfinite(o->temperature) || !isfinite(inv_t) || !(inv_t > 0.0f))
        return FAIL("temperature = %g must be > 0 (and its inverse a finite float)",
                    o->temperature);
    if (o->top_k < 0) return FAIL("top_k = %d must be >= 0 (0: off)", o->top_k);
    if (!(o->top_p > 0.0 && o->top_p <= 1.0))
        return FAIL("top_p = %g must be in (0, 1] (1: off)", o->top_p);
    if (o->max_new_tokens < 0)
        return FAIL("max_new_tokens = %d must be >= 1 (or 0: up to max_len)", o->max_new_tokens);
    if (o->eos_id < -1 || o->eos_id >= s->vocab)
        return FAIL("eos_id = %d must be in [0, %d) or -1 (no end-of-text token)", o->eos_id,
                    s->vocab);
    const int32_t max_len = s->max_len < b->max_len ? s->max_len : b->max_len;
    if (max_len < 2)
        return FAIL("the batch's max_len %d leaves no room for a new token", b->max_len);
    KLC_TRY(check_prompts(s, o, n_seq, max_len));
    if (omp_get_max_threads() > s->threads)
        return klc_fail(KLC_ERR_STATE,
                        "klc_sampler_sample: the sampler was made for %d threads and %d are now "
                        "set; create it after klc_set_num_threads",
                        s->threads, omp_get_max_threads());
    p->draw.vocab = s->vocab;
    p->draw.inv_temperature = inv_t;
    p->draw.top_k = o->top_k >= s->vocab ? 0 : o->top_k;
    p->draw.top_p = o->top_p;
    p->full_support = o->temperature == 1.0 && p->draw.top_k == 0 && o->top_p == 1.0;
    p->n_seq = n_seq;
    p->max_len = max_len;
    p->max_new = o->max_new_tokens;
    p->eos = o->eos_id;
    const uint32_t flags = o->version >= 2 ? o->flags : 0;
    if (flags & ~(uint32_t)KLC_SAMPLE_KEEP_ACTIVATIONS)
        return FAIL("flags = 0x%x has unknown bits", flags);
    p->same_prompt_len = 1;
    p->prompt_len = 1;
    if (o->contexts)
        for (int32_t i = 0; i < n_seq && p->same_prompt_len; i++) {
            const int32_t len = o->contexts->lengths[context_of(o, i)];
            if (i == 0) p->prompt_len = len;
            p->same_prompt_len = len == p->prompt_len;
        }
    p->keep = (flags & KLC_SAMPLE_KEEP_ACTIVATIONS) && p->same_prompt_len;
    return KLC_OK;
}

/* Starts sequence i of the batch in round row j: its prompt goes into the batch and into
 * the round's prompt buffer. */
static void start_sequence(klc_sampler *s, const klc_sample_options *o, const plan *p, klc_batch *b,
                           int32_t i, int32_t j) {
    const int64_t sample = o->first_sample + i;
    int32_t ctx = 0, len = 1;
    const int32_t *src = &o->bos_id;
    if (o->contexts) {
        const klc_seqs *c = o->contexts;
        ctx = context_of(o, i);
        len = c->lengths[ctx];
        src = c->tokens + (int64_t)ctx * c->max_len;
    }
    int32_t *row = b->tokens + (int64_t)i * b->max_len;
    memset(row, 0, sizeof(int32_t) * (size_t)b->max_len);
    memcpy(row, src, sizeof(int32_t) * (size_t)len);
    memcpy(s->prompt_tokens + (int64_t)j * s->max_prompt_len, src, sizeof(int32_t) * (size_t)len);
    s->prompt_lengths[j] = len;
    b->lengths[i] = len;
    b->prompt_lengths[i] = len;
    b->context_ids[i] = ctx;
    b->sample_ids[i] = sample;
    b->seq_flags[i] = 0;
    b->logq[i] = 0.0;
    int32_t limit = p->max_len;
    if (p->max_new > 0 && len + p->max_new < limit) limit = len + p->max_new;
    s->row_seq[j] = i;
    s->row_limit[j] = limit;
}

/* Draws one token for each of the n active rows from logits [n * vocab]. */
static void draw_rows(klc_sampler *s, const klc_sample_options *o, const plan *p,
                      const klc_batch *b, int32_t n) {
    const int64_t V = s->vocab;
#pragma omp parallel for schedule(static) num_threads(s->threads) if (n * V >= DRAW_PAR_MIN_WORK)
    for (int32_t j = 0; j < n; j++) {
        const int32_t i = s->row_seq[s->active[j]];
        const int tid = omp_get_thread_num();
        const double u =
            klc_rng_uniform(&o->rng, (uint64_t)b->sample_ids[i], (uint64_t)b->lengths[i]);
        s->status[j] =
            klc_draw(&p->draw, s->logits + j * V, s->cands + tid * V,
                     s->work + (size_t)tid * s->work_stride, u, &s->drawn[j], &s->drawn_lp[j]);
    }
}

/* Appends the drawn tokens; keeps the rows that go on in active/feed (compacted in order)
 * and returns how many. */
static int32_t apply_draws(klc_sampler *s, const plan *p, klc_batch *b, int32_t n) {
    int32_t kept = 0;
    for (int32_t j = 0; j < n; j++) {
        const int32_t row = s->active[j], i = s->row_seq[row], t = b->lengths[i];
        const int32_t tok = s->drawn[j];
        const int64_t at = (int64_t)i * b->max_len + t;
        b->tokens[at] = tok;
        b->logq_tok[at - 1] = (float)s->drawn_lp[j];
        b->logq[i] += s->drawn_lp[j];
        b->lengths[i] = t + 1;
        if (tok == p->eos) continue;
        if (t + 1 >= s->row_limit[row]) {
            b->seq_flags[i] |= KLC_SEQ_TRUNCATED;
            continue;
        }
        s->active[kept] = row;
        s->feed[kept] = tok;
        kept++;
    }
    return kept;
}

static int numeric_failure(const klc_sampler *s, const klc_batch *b, int32_t n) {
    for (int32_t j = 0; j < n; j++)
        if (s->status[j] != KLC_OK) {
            const int32_t i = s->row_seq[s->active[j]];
            return klc_fail(KLC_ERR_NUMERIC,
                            "klc_sampler_sample: sequence %d (sample %lld), position %d: the "
                            "model's logits are NaN or infinite",
                            i, (long long)b->sample_ids[i], b->lengths[i]);
        }
    return KLC_OK;
}

/* Where the active rows' activations go when keeping: position t of sequence i is
 * workspace row i*stride + t (keep.h); the token each row feeds sits at length - 1. */
static const int64_t *keep_dest(klc_sampler *s, const klc_batch *b, int32_t n, int32_t fed_at) {
    const int64_t S = s->model->kept.stride;
    for (int32_t j = 0; j < n; j++) {
        const int32_t i = s->row_seq[s->active[j]];
        s->keep_dest[j] = (int64_t)i * S + (fed_at >= 0 ? fed_at : b->lengths[i] - 1);
    }
    return s->keep_dest;
}

/* Prompts of one length through decoding, one position at a time for every row, so that
 * their activations can be kept too. */
static int feed_prompts(klc_sampler *s, const plan *p, const klc_batch *b, int32_t nr) {
    for (int32_t t = 0; t < p->prompt_len; t++) {
        for (int32_t j = 0; j < nr; j++) s->feed[j] = s->prompt_tokens[j * s->max_prompt_len + t];
        const int st = klc_decode_run(s->model, s->cache, nr, s->active, s->feed,
                                      t + 1 == p->prompt_len ? s->logits : NULL,
                                      p->keep ? keep_dest(s, b, nr, t) : NULL);
        if (st != KLC_OK) return klc_fail_context(st, "klc_sampler_sample: decode: ");
    }
    return KLC_OK;
}

static int run_round(klc_sampler *s, const klc_sample_options *o, const plan *p, klc_batch *b,
                     int32_t first, int32_t nr) {
    for (int32_t j = 0; j < nr; j++) start_sequence(s, o, p, b, first + j, j);
    KLC_TRY(klc_kv_cache_reset(s->cache));
    int32_t n = nr;
    for (int32_t j = 0; j < nr; j++) s->active[j] = j;
    int st;
    if (p->same_prompt_len) {
        KLC_TRY(feed_prompts(s, p, b, nr));
    } else {
        const klc_seqs prompts = {nr,  s->max_prompt_len, s->prompt_tokens, s->prompt_lengths, NULL,
                                  NULL};
        st = klc_model_prefill(s->model, s->cache, &prompts, s->logits);
        if (st != KLC_OK) return klc_fail_context(st, "klc_sampler_sample: prefill: ");
    }
    for (;;) {
        draw_rows(s, o, p, b, n);
        KLC_TRY(numeric_failure(s, b, n));
        n = apply_draws(s, p, b, n);
        if (n == 0) return KLC_OK;
        const int64_t *dest = p->keep ? keep_dest(s, b, n, -1) : NULL;
        st = klc_decode_run(s->model, s->cache, n, s->active, s->feed, s->logits, dest);
        if (st != KLC_OK) return klc_fail_context(st, "klc_sampler_sample: decode: ");
    }
}

int klc_sampler_sample(klc_sampler *s, const klc_sample_options *o, int32_t n_seq, klc_batch *b) {
    if (!s || !o || !b) return FAIL("NULL argument");
    plan p;
    KLC_TRY(make_plan(s, o, n_seq, b, &p));
    /* From here on the batch is being rewritten: a failure leaves it empty, never half
     * filled and looking valid. */
    b->n_seq = 0;
    b->flags = 0;
    klc_batch_reset_slots(b, n_seq);
    if (p.keep) p.keep = klc_keep_begin(s->model, n_seq, p.max_len);
    for (int32_t first = 0; first < n_seq; first += s->max_rows) {
        const int32_t nr = n_seq - first < s->max_rows ? n_seq - first : s->max_rows;
        const int st = run_round(s, o, &p, b, first, nr);
        if (st != KLC_OK) {
            klc_batch_reset_slots(b, n_seq);
            if (p.keep) klc_keep_drop(s->model);
            return st;
        }
    }
    if (p.keep) klc_keep_finish(s->model, b->tokens, b->lengths, n_seq, b->max_len);
    b->n_seq = n_seq;
    b->flags = KLC_BATCH_HAS_LOGQ | (p.full_support ? KLC_BATCH_FULL_SUPPORT : 0u);
    return KLC_OK;
}
