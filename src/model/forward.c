/* GPT-2's forward and backward passes over a batch, and the public calls around them.
 * Sequences are packed (no padding rows are computed); every buffer comes from the
 * workspace planned before the loops start. */
#include "attention.h"
#include "decode.h"
#include "keep.h"
#include "dropout.h"
#include "kernels.h"
#include "lm_head.h"
#include "matmul.h"
#include "workspace.h"

#include <math.h>
#include <omp.h>
#include <string.h>

int klc_forward_options_init(klc_forward_options *o, uint32_t version) {
    if (!o) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_forward_options_init: NULL options");
    if (version == 0 || version > KLC_FORWARD_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_forward_options_init: unknown version %u (this library knows 1..%d)",
                        version, KLC_FORWARD_OPTIONS_VERSION);
    memset(o, 0, sizeof *o);
    o->version = version;
    klc_rng_init(&o->dropout, 0, KLC_STREAM_DROPOUT);
    return KLC_OK;
}

/* Validates a batch; the message names the sequence and position at fault. */
static int check_seqs(const klc_model *m, const klc_seqs *s) {
    if (!s) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "sequences are NULL");
    if (s->n_seq < 1)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "n_seq = %d must be >= 1", s->n_seq);
    if (s->max_len < 1 || s->max_len > m->cfg.n_ctx)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "max_len = %d must be in [1, n_ctx = %d]",
                        s->max_len, m->cfg.n_ctx);
    if (!s->tokens || !s->lengths)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "sequences need tokens and lengths");
    for (int32_t b = 0; b < s->n_seq; b++) {
        int32_t len = s->lengths[b];
        if (len < 1 || len > s->max_len)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "sequence %d: length %d must be in [1, max_len = %d]", b, len,
                            s->max_len);
        if (s->score_from && (s->score_from[b] < 1 || s->score_from[b] > len))
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "sequence %d: score_from %d must be in [1, length = %d]", b,
                            s->score_from[b], len);
        const int32_t *tok = s->tokens + (int64_t)b * s->max_len;
        for (int32_t t = 0; t < len; t++)
            if (tok[t] < 0 || tok[t] >= m->cfg.vocab_size)
                return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                                "sequence %d, position %d: token id %d is outside the "
                                "vocabulary [0, %d)",
                                b, t, tok[t], m->cfg.vocab_size);
    }
    return KLC_OK;
}

/* The positions of a sequence that go through the model. The last position predicts
 * nothing, so when nothing else is read from it (its hidden state, or the keys and values
 * a prefill keeps) it is left out: 1/length of the work. */
static int32_t rows_of(int32_t len, int trim_last) {
    return trim_last && len > 1 ? len - 1 : len;
}

static klc_ws_shape shape_of(const klc_model *m, const klc_seqs *s, int training, int trim_last) {
    klc_ws_shape sh = {0, 0, s->n_seq, 0, omp_get_max_threads(), training};
    for (int32_t b = 0; b < s->n_seq; b++) {
        int64_t len = rows_of(s->lengths[b], trim_last);
        sh.rows += len;
        sh.att += (int64_t)m->cfg.n_head * len * len;
        if (len > sh.tmax) sh.tmax = (int32_t)len;
    }
    return sh;
}

/* Fills the packing tables of the workspace from the batch: a->len[b] positions of
 * sequence b go through the model. */
static void pack(klc_activations *a, const klc_seqs *s, int H, int trim_last) {
    int64_t row = 0, att = 0;
    for (int32_t b = 0; b < s->n_seq; b++) {
        const int32_t len = s->lengths[b], rows = rows_of(len, trim_last);
        a->row_off[b] = row;
        a->att_off[b] = att;
        a->len[b] = rows;
        a->sample[b] = s->sample_ids ? s->sample_ids[b] : b;
        const int32_t *tok = s->tokens + (int64_t)b * s->max_len;
        for (int32_t t = 0; t < rows; t++) {
            a->row_target[row + t] = t + 1 < len ? tok[t + 1] : -1;
            a->row_index[row + t] = (int64_t)b * s->max_len + t;
        }
        row += rows;
        att += (int64_t)H * rows * rows;
    }
}

static klc_packing packing_of(const klc_activations *a, int32_t n_seq) {
    klc_packing pk = {n_seq, a->row_off, a->len, a->att_off, a->sample};
    return pk;
}

typedef struct run_dropout {
    int on;
    const klc_rng *rng;
    float embd, attn, resid;
} run_dropout;

/* mask[R,C] for one site: each sequence's rows use element t*C + c of the site. */
static void residual_mask(float *mask, const klc_activations *a, int32_t n_seq, int C, float p,
                          const klc_rng *rng, uint64_t site) {
    const int64_t R = a->row_off[n_seq - 1] + a->len[n_seq - 1];
#pragma omp parallel for schedule(dynamic, 1) if (R * C > KLC_PAR_MIN_WORK / 8)
    for (int32_t b = 0; b < n_seq; b++)
        klc_dropout_mask(mask + a->row_off[b] * C, (int64_t)a->len[b] * C, p, rng,
                         (uint64_t)a->sample[b], site, 0);
}

/* x[R,C] = wte[token] + wpe[position], with embedding dropout if asked. */
static void embed_forward(klc_model *m, klc_activations *a, const klc_seqs *s,
                          const run_dropout *d) {
    const int C = m->cfg.n_embd;
    const int64_t R = a->row_off[s->n_seq - 1] + a->len[s->n_seq - 1];
#pragma omp parallel for schedule(static) if (R * C > KLC_PAR_MIN_WORK)
    for (int32_t b = 0; b < s->n_seq; b++) {
        const int32_t *tok = s->tokens + (int64_t)b * s->max_len;
        for (int32_t t = 0; t < a->len[b]; t++) {
            float *x = a->encoded + (a->row_off[b] + t) * C;
            const float *te = m->p.wte + (int64_t)tok[t] * C, *pe = m->p.wpe + (int64_t)t * C;
            for (int i = 0; i < C; i++) x[i] = te[i] + pe[i];
        }
    }
    if (d->on && d->embd > 0.0f) {
        residual_mask(a->mask, a, s->n_seq, C, d->embd, d->rng, klc_dropout_site_embd());
        klc_mul_inplace(a->encoded, a->mask, R * C);
    }
}

/* One transformer block. Training: L is layer l's own kept activations and x its input;
 * output in L->res3. Inference: L is shared, x is the residual stream, updated in place. */
static void block_forward(klc_model *m, int l, klc_activations *a, klc_layer_acts *L, float *x,
                          int64_t R, int32_t n_seq, const run_dropout *d, int training) {
    const int C = m->cfg.n_embd, H = m->cfg.n_head;
    const klc_layer_tensors *w = &m->p.h[l];
    const float eps = m->cfg.layer_norm_eps;
    klc_packing pk = packing_of(a, n_seq);
    klc_attn_dropout ad = {d->on ? d->attn : 0.0f, d->rng, klc_dropout_site_attn(l), m->cfg.n_ctx};

    klc_layernorm_forward(L->ln1, L->ln1_mean, L->ln1_rstd, x, w->ln_1_w, w->ln_1_b, R, C, eps);
    klc_matmul_forward(L->qkv, L->ln1, w->c_attn_w, w->c_attn_b, R, C, 3 * C);
    klc_attention_forward(L->atty, training ? L->att : NULL, L->qkv, &pk, C, H, &ad,
                          a->attn_scratch, a->attn_scratch_per_thread);
    /* res2 = x + dropout(atty W + b) */
    klc_matmul_forward(L->res2, L->atty, w->attn_c_proj_w, w->attn_c_proj_b, R, C, C);
    if (d->on && d->resid > 0.0f) {
        residual_mask(a->mask, a, n_seq, C, d->resid, d->rng, klc_dropout_site_resid_attn(l));
        klc_mul_inplace(L->res2, a->mask, R * C);
    }
    float *mid = training ? L->res2 : x;
    klc_add_inplace(mid, training ? x : L->res2, R * C);

    klc_layernorm_forward(L->ln2, L->ln2_mean, L->ln2_rstd, mid, w->ln_2_w, w->ln_2_b, R, C, eps);
    klc_matmul_forward(L->fch, L->ln2, w->c_fc_w, w->c_fc_b, R, C, 4 * C);
    /* In inference the two buffers are one, unless a training workspace is being reused. */
    if (L->fch_gelu != L->fch)
        klc_gelu_forward(L->fch_gelu, L->fch, R * 4 * C);
    else
        klc_gelu_forward_inplace(L->fch, R * 4 * C);
    /* res3 = mid + dropout(gelu W + b) */
    klc_matmul_forward(L->res3, L->fch_gelu, w->mlp_c_proj_w, w->mlp_c_proj_b, R, 4 * C, C);
    if (d->on && d->resid > 0.0f) {
        residual_mask(a->mask, a, n_seq, C, d->resid, d->rng, klc_dropout_site_resid_mlp(l));
        klc_mul_inplace(L->res3, a->mask, R * C);
    }
    if (training)
        klc_add_inplace(L->res3, mid, R * C);
    else
        klc_add_inplace(x, L->res3, R * C);
    if (m->prefill_cache) klc_kv_cache_store_prompts(m->prefill_cache, l, L->qkv, a, n_seq);
}

/* Writes the requested outputs of a forward in the caller's padded layout. */
static void write_outputs(const klc_model *m, const klc_activations *a, const klc_seqs *s,
                          const klc_forward_options *o) {
    if (!o) return;
    const int C = m->cfg.n_embd;
    if (o->token_logprobs)
        memset(o->token_logprobs, 0, sizeof(float) * (size_t)s->n_seq * (size_t)s->max_len);
    for (int32_t b = 0; b < s->n_seq; b++) {
        const int64_t r0 = a->row_off[b];
        const int32_t len = s->lengths[b]; /* the predictions: positions 0..len-2 */
        const int32_t from = s->score_from ? s->score_from[b] : 1;
        double sum = 0.0;
        for (int32_t t = 0; t + 1 < len; t++) {
            float lp = a->token_lp[r0 + t];
            if (o->token_logprobs) o->token_logprobs[(int64_t)b * s->max_len + t] = lp;
            if (t + 1 >= from) sum += lp;
        }
        if (o->seq_logprobs) o->seq_logprobs[b] = sum;
        if (o->hidden)
            memcpy(o->hidden + (int64_t)b * s->max_len * C, a->lnf + r0 * C,
                   sizeof(float) * (size_t)a->len[b] * C);
    }
}

/* The forward pass: embeddings, blocks, final LayerNorm, then the LM head in `mode`. */
int klc_model_run_forward(klc_model *m, const klc_seqs *s, const klc_forward_options *o,
                          int training, klc_lm_mode mode, const float *on, const float *sm) {
    KLC_TRY(check_seqs(m, s));
    if (o && (o->version == 0 || o->version > KLC_FORWARD_OPTIONS_VERSION))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "forward options version %u unknown; fill them with "
                        "klc_forward_options_init",
                        o->version);
    /* The two-phase training forward keeps the last position: klc_model_backward may bring
     * a gradient on its hidden state. */
    const int trim_last =
        !(o && o->hidden) && ((mode == KLC_LM_LOGPROBS && !training) || mode == KLC_LM_FUSED_GRAD);
    /* On-policy, decoding may have kept this batch's activations: then only the LM head
     * and the backward remain. Any other forward overwrites them. */
    int reuse = mode == KLC_LM_FUSED_GRAD && trim_last &&
                !(o && (o->flags & KLC_FORWARD_DROPOUT)) && klc_keep_matches(m, s);
    if (!reuse) klc_keep_drop(m);
    klc_ws_shape need = shape_of(m, s, training, trim_last);
    KLC_TRY(klc_workspace_ensure(m, &need));
    reuse = reuse && m->kept.state == KLC_KEPT_READY; /* not if the workspace had to grow */
    /* Only the modes that form a gradient need the gradient block; prefill (KLC_LM_NONE) on
     * a frozen model must not allocate one. */
    const int grad_mode = mode == KLC_LM_FUSED_GRAD || mode == KLC_LM_RECOMPUTE_GRAD;
    if (grad_mode && !klc_model_grads(m, NULL)) return KLC_ERR_OUT_OF_MEMORY;
    klc_activations *a = m->ws.acts;
    pack(a, s, m->cfg.n_head, trim_last);
    run_dropout d = {0, NULL, 0, 0, 0};
    if (o && (o->flags & KLC_FORWARD_DROPOUT)) {
        d.on = 1;
        d.rng = &o->dropout;
        d.embd = m->cfg.embd_pdrop;
        d.attn = m->cfg.attn_pdrop;
        d.resid = m->cfg.resid_pdrop;
        m->fwd_dropout = o->dropout;
    }
    const int64_t R = need.rows;
    if (!reuse) {
        embed_forward(m, a, s, &d);
        float *x = a->encoded;
        for (int l = 0; l < m->cfg.n_layer; l++) {
            klc_layer_acts *L = training ? &a->layers[l] : &a->layers[0];
            block_forward(m, l, a, L, x, R, s->n_seq, &d, training);
            if (training) x = L->res3;
        }
        klc_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, x, m->p.ln_f_w, m->p.ln_f_b, R,
                              m->cfg.n_embd, m->cfg.layer_norm_eps);
    } else {
        m->kept.reuses++;
        klc_keep_drop(m); /* used once: the backward below is this batch's */
    }
    klc_lm_head(m, a, R, mode, on, sm, training ? a->dres : NULL);
    write_outputs(m, a, s, o);
    m->fwd_valid = training;
    m->fwd_n_seq = s->n_seq;
    m->fwd_max_len = s->max_len;
    m->fwd_flags = d.on ? KLC_FORWARD_DROPOUT : 0;
    return KLC_OK;
}

/* Backward through ln_f, the blocks and the embeddings, from a->dres holding the gradient
 * with respect to the final LayerNorm's output. */
static void run_backward(klc_model *m, const klc_seqs *s, const float *d_hidden) {
    klc_activations *a = m->ws.acts;
    const int C = m->cfg.n_embd, H = m->cfg.n_head;
    const int64_t R = a->row_off[s->n_seq - 1] + a->len[s->n_seq - 1];
    const int nl = m->cfg.n_layer;
    const int dropping = (m->fwd_flags & KLC_FORWARD_DROPOUT) != 0;
    const float p_attn = dropping ? m->cfg.attn_pdrop : 0.0f;
    const float p_resid = dropping ? m->cfg.resid_pdrop : 0.0f;
    const float p_embd = dropping ? m->cfg.embd_pdrop : 0.0f;
    klc_packing pk = packing_of(a, s->n_seq);

    /* dlnf (in dres) += d_hidden; then through ln_f into dtmp2 -> dres. */
    float *dlnf = a->dres;
    if (d_hidden) {
        for (int32_t b = 0; b < s->n_seq; b++)
            klc_add_inplace(dlnf + a->row_off[b] * C, d_hidden + (int64_t)b * s->max_len * C,
                            (int64_t)a->len[b] * C);
    }
    const float *x_last = a->layers[nl - 1].res3;
    memcpy(a->dtmp2, dlnf, sizeof(float) * (size_t)(R * C));
    memset(a->dres, 0, sizeof(float) * (size_t)(R * C));
    klc_layernorm_backward(a->dres, m->g.ln_f_w, m->g.ln_f_b, a->dtmp2, x_last, m->p.ln_f_w,
                           a->lnf_mean, a->lnf_rstd, R, C, a->ln_scratch);

    for (int l = nl - 1; l >= 0; l--) {
        klc_layer_acts *L = &a->layers[l];
        const klc_layer_tensors *w = &m->p.h[l];
        klc_layer_tensors *g = &m->g.h[l];
        const float *x_in = l == 0 ? a->encoded : a->layers[l - 1].res3;
        klc_attn_dropout ad = {p_attn, &m->fwd_dropout, klc_dropout_site_attn(l), m->cfg.n_ctx};

        /* MLP: res3 = res2 + dropout(c_proj(gelu(c_fc(ln_2(res2))))) */
        const float *dout = a->dres;
        if (p_resid > 0.0f) {
            residual_mask(a->mask, a, s->n_seq, C, p_resid, &m->fwd_dropout,
                          klc_dropout_site_resid_mlp(l));
            memcpy(a->dtmp2, a->dres, sizeof(float) * (size_t)(R * C));
            klc_mul_inplace(a->dtmp2, a->mask, R * C);
            dout = a->dtmp2;
        }
        klc_matmul_backward(a->dfch, 0, g->mlp_c_proj_w, g->mlp_c_proj_b, dout, L->fch_gelu,
                            w->mlp_c_proj_w, R, 4 * C, C);
        klc_gelu_backward(a->dfch, L->fch, R * 4 * C);
        klc_matmul_backward(a->dtmp, 0, g->c_fc_w, g->c_fc_b, a->dfch, L->ln2, w->c_fc_w, R, C,
                            4 * C);
        klc_layernorm_backward(a->dres, g->ln_2_w, g->ln_2_b, a->dtmp, L->res2, w->ln_2_w,
                               L->ln2_mean, L->ln2_rstd, R, C, a->ln_scratch);

        /* Attention: res2 = x + dropout(c_proj(attention(c_attn(ln_1(x))))) */
        dout = a->dres;
        if (p_resid > 0.0f) {
            residual_mask(a->mask, a, s->n_seq, C, p_resid, &m->fwd_dropout,
                          klc_dropout_site_resid_attn(l));
            memcpy(a->dtmp2, a->dres, sizeof(float) * (size_t)(R * C));
            klc_mul_inplace(a->dtmp2, a->mask, R * C);
            dout = a->dtmp2;
        }
        klc_matmul_backward(a->dtmp, 0, g->attn_c_proj_w, g->attn_c_proj_b, dout, L->atty,
                            w->attn_c_proj_w, R, C, C);
        klc_attention_backward(a->dqkv, a->dtmp, L->att, L->qkv, &pk, C, H, &ad, a->attn_scratch,
                               a->attn_scratch_per_thread);
        klc_matmul_backward(a->dtmp, 0, g->c_attn_w, g->c_attn_b, a->dqkv, L->ln1, w->c_attn_w, R,
                            C, 3 * C);
        klc_layernorm_backward(a->dres, g->ln_1_w, g->ln_1_b, a->dtmp, x_in, w->ln_1_w, L->ln1_mean,
                               L->ln1_rstd, R, C, a->ln_scratch);
    }

    /* Embeddings: rows scatter into wte (by token) and wpe (by position). */
    if (p_embd > 0.0f) {
        residual_mask(a->mask, a, s->n_seq, C, p_embd, &m->fwd_dropout, klc_dropout_site_embd());
        klc_mul_inplace(a->dres, a->mask, R * C);
    }
    /* Serial over rows (tokens repeat, so rows may hit the same wte row); C-wide adds. */
    for (int32_t b = 0; b < s->n_seq; b++) {
        const int32_t *tok = s->tokens + (int64_t)b * s->max_len;
        for (int32_t t = 0; t < a->len[b]; t++) {
            const float *dx = a->dres + (a->row_off[b] + t) * C;
            float *dte = m->g.wte + (int64_t)tok[t] * C, *dpe = m->g.wpe + (int64_t)t * C;
#pragma omp simd
            for (int i = 0; i < C; i++) {
                dte[i] += dx[i];
                dpe[i] += dx[i];
            }
        }
    }
}

int klc_model_score(klc_model *m, const klc_seqs *s, const klc_forward_options *o) {
    if (!m) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_score: NULL model");
    m->fwd_valid = 0;
    return klc_model_run_forward(m, s, o, 0, KLC_LM_LOGPROBS, NULL, NULL);
}

int klc_model_forward(klc_model *m, const klc_seqs *s, const klc_forward_options *o) {
    if (!m) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_forward: NULL model");
    m->fwd_valid = 0;
    return klc_model_run_forward(m, s, o, 1, KLC_LM_LOGPROBS, NULL, NULL);
}

int klc_model_backward(klc_model *m, const klc_seqs *s, const float *on, const float *sm,
                       const float *d_hidden) {
    if (!m) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_backward: NULL model");
    if (!m->fwd_valid)
        return klc_fail(KLC_ERR_STATE,
                        "klc_model_backward: no training forward to go back through (call "
                        "klc_model_forward on the same batch first)");
    if (!s || s->n_seq != m->fwd_n_seq || s->max_len != m->fwd_max_len)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_model_backward: the batch is not the one of the last forward");
    klc_activations *a = m->ws.acts;
    for (int32_t b = 0; b < s->n_seq; b++)
        if (s->lengths[b] != a->len[b])
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_model_backward: sequence %d has length %d, the forward had %d", b,
                            s->lengths[b], a->len[b]);
    if (!klc_model_grads(m, NULL)) return KLC_ERR_OUT_OF_MEMORY;
    const int64_t R = a->row_off[s->n_seq - 1] + a->len[s->n_seq - 1];
    klc_lm_head(m, a, R, KLC_LM_RECOMPUTE_GRAD, on, sm, a->dres);
    run_backward(m, s, d_hidden);
    m->fwd_valid = 0;
    return KLC_OK;
}

int klc_model_forward_backward(klc_model *m, const klc_seqs *s, const klc_forward_options *o,
                               const float *on, const float *sm) {
    if (!m) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_forward_backward: NULL model");
    m->fwd_valid = 0;
    KLC_TRY(klc_model_run_forward(m, s, o, 1, KLC_LM_FUSED_GRAD, on, sm));
    run_backward(m, s, NULL);
    m->fwd_valid = 0;
    return KLC_OK;
}

int klc_model_reserve(klc_model *m, int32_t n_seq, int32_t max_len, int training) {
    if (!m) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_reserve: NULL model");
    if (n_seq < 1 || max_len < 1 || max_len > m->cfg.n_ctx)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_model_reserve: n_seq = %d and max_len = %d must be >= 1, max_len "
                        "<= n_ctx = %d",
                        n_seq, max_len, m->cfg.n_ctx);
    klc_ws_shape sh = {(int64_t)n_seq * max_len,
                       (int64_t)n_seq * m->cfg.n_head * max_len * max_len,
                       n_seq,
                       max_len,
                       omp_get_max_threads(),
                       training != 0};
    KLC_TRY(klc_workspace_ensure(m, &sh));
    if (training && !klc_model_grads(m, NULL)) return KLC_ERR_OUT_OF_MEMORY;
    return KLC_OK;
}

int klc_model_memory(const klc_model *m, klc_memory_info *out) {
    if (!m || !out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_memory: NULL argument");
    memset(out, 0, sizeof *out);
    out->version = KLC_MEMORY_INFO_VERSION;
    out->params_bytes = m->n_params * sizeof(float);
    out->grads_bytes = m->grads ? m->n_params * sizeof(float) : 0;
    out->activations_bytes = m->ws.activation_bytes;
    out->scratch_bytes = m->ws.scratch_bytes;
    out->total_bytes =
        out->params_bytes + out->grads_bytes + out->activations_bytes + out->scratch_bytes;
    return KLC_OK;
}

int klc_model_memory_estimate(const klc_model *m, int32_t n_seq, int32_t max_len, int training,
                              klc_memory_info *out) {
    if (!m || !out)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_memory_estimate: NULL argument");
    if (n_seq < 1 || max_len < 1 || max_len > m->cfg.n_ctx)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_model_memory_estimate: bad batch shape");
    klc_ws_shape sh = {(int64_t)n_seq * max_len,
                       (int64_t)n_seq * m->cfg.n_head * max_len * max_len,
                       n_seq,
                       max_len,
                       omp_get_max_threads(),
                       training != 0};
    memset(out, 0, sizeof *out);
    out->version = KLC_MEMORY_INFO_VERSION;
    out->params_bytes = m->n_params * sizeof(float);
    out->grads_bytes = training ? m->n_params * sizeof(float) : 0;
    klc_workspace_bytes(&m->cfg, &sh, &out->activations_bytes, &out->scratch_bytes);
    out->total_bytes =
        out->params_bytes + out->grads_bytes + out->activations_bytes + out->scratch_bytes;
    return KLC_OK;
}
