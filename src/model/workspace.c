/* One allocation per workspace, carved into the buffers of klc_activations. */
#include "workspace.h"

#include <omp.h>
#include <string.h>

/* Logit chunks of about this many bytes: large enough that the LM head's products run
 * near peak and dwte is swept few times, small enough to stay modest next to the model. */
#define KLC_LOGITS_CHUNK_BYTES (64u << 20)

typedef struct carver {
    char *base;  /* NULL while only measuring */
    size_t used; /* bytes */
} carver;

static void *carve(carver *c, size_t bytes) {
    void *p = c->base ? c->base + c->used : NULL;
    c->used += (bytes + 63) / 64 * 64;
    return p;
}
#define CARVE_F(c, n) ((float *)carve((c), sizeof(float) * (size_t)(n)))

static int64_t logits_rows_for(const klc_model_options *cfg, int64_t rows) {
    int64_t r = (int64_t)(KLC_LOGITS_CHUNK_BYTES / (sizeof(float) * (size_t)cfg->vocab_size));
    if (r < 32) r = 32;
    return r < rows ? r : rows;
}

/* Lays out the buffers (or measures them when c->base is NULL). Kept activations first,
 * so that the split into "activations" and "scratch" is one boundary. */
static void lay_out(const klc_model_options *cfg, const klc_ws_shape *s, klc_activations *a,
                    carver *c, size_t *activation_bytes) {
    const int64_t R = s->rows, C = cfg->n_embd;
    const int nl = s->training ? cfg->n_layer : 1;
    for (int l = 0; l < nl; l++) {
        klc_layer_acts scratch_views, *L = a->layers ? &a->layers[l] : &scratch_views;
        L->ln1 = CARVE_F(c, R * C);
        L->ln1_mean = CARVE_F(c, R);
        L->ln1_rstd = CARVE_F(c, R);
        L->qkv = CARVE_F(c, R * 3 * C);
        L->att = s->training ? CARVE_F(c, s->att) : NULL;
        L->atty = CARVE_F(c, R * C);
        L->res2 = CARVE_F(c, R * C);
        L->ln2 = CARVE_F(c, R * C);
        L->ln2_mean = CARVE_F(c, R);
        L->ln2_rstd = CARVE_F(c, R);
        L->fch = CARVE_F(c, R * 4 * C);
        L->fch_gelu = s->training ? CARVE_F(c, R * 4 * C) : L->fch;
        L->res3 = s->training ? CARVE_F(c, R * C) : L->res2;
    }
    a->encoded = CARVE_F(c, R * C);
    a->lnf = CARVE_F(c, R * C);
    a->lnf_mean = CARVE_F(c, R);
    a->lnf_rstd = CARVE_F(c, R);
    a->lse = CARVE_F(c, R);
    a->token_lp = CARVE_F(c, R);
    *activation_bytes = c->used;
    a->logits_rows = logits_rows_for(cfg, R);
    a->logits = CARVE_F(c, a->logits_rows * cfg->vocab_size);
    a->attn_scratch_per_thread = 3 * (int64_t)s->tmax * s->tmax;
    a->attn_scratch = CARVE_F(c, a->attn_scratch_per_thread * s->threads);
    a->ln_scratch = CARVE_F(c, 2 * C * s->threads);
    a->mask = CARVE_F(c, R * C); /* dropout multipliers; Monte-Carlo dropout scores too */
    a->dres = s->training ? CARVE_F(c, R * C) : NULL;
    a->dtmp = s->training ? CARVE_F(c, R * C) : NULL;
    a->dtmp2 = s->training ? CARVE_F(c, R * C) : NULL;
    a->dqkv = s->training ? CARVE_F(c, R * 3 * C) : NULL;
    a->dfch = s->training ? CARVE_F(c, R * 4 * C) : NULL;
    a->row_off = carve(c, sizeof(int64_t) * (size_t)s->n_seq);
    a->att_off = carve(c, sizeof(int64_t) * (size_t)s->n_seq);
    a->sample = carve(c, sizeof(int64_t) * (size_t)s->n_seq);
    a->len = carve(c, sizeof(int32_t) * (size_t)s->n_seq);
    a->row_target = carve(c, sizeof(int32_t) * (size_t)R);
    a->row_index = carve(c, sizeof(int64_t) * (size_t)R);
    a->kept_tokens = s->training ? carve(c, sizeof(int32_t) * (size_t)s->n_seq * s->tmax) : NULL;
    a->kept_len = s->training ? carve(c, sizeof(int32_t) * (size_t)s->n_seq) : NULL;
}

void klc_workspace_bytes(const klc_model_options *cfg, const klc_ws_shape *s, size_t *activations,
                         size_t *scratch) {
    klc_activations a;
    memset(&a, 0, sizeof a); /* layers == NULL: lay_out only measures */
    carver c = {NULL, 0};
    size_t act = 0;
    lay_out(cfg, s, &a, &c, &act);
    if (activations) *activations = s->training ? act : 0;
    if (scratch) *scratch = c.used - (s->training ? act : 0);
}

void klc_workspace_free(klc_model *m) {
    klc_workspace *w = &m->ws;
    if (w->acts) {
        int nl = w->acts->cap.training ? m->cfg.n_layer : 1;
        klc_free(&m->alloc, w->acts->layers, sizeof(klc_layer_acts) * (size_t)nl);
        klc_free(&m->alloc, w->acts, sizeof *w->acts);
    }
    klc_free(&m->alloc, w->block, w->bytes);
    memset(w, 0, sizeof *w);
}

static int64_t max64(int64_t a, int64_t b) {
    return a > b ? a : b;
}

int klc_workspace_ensure(klc_model *m, const klc_ws_shape *need) {
    klc_workspace *w = &m->ws;
    klc_ws_shape want = *need;
    if (want.threads < 1) want.threads = 1;
    if (w->acts) {
        const klc_ws_shape *have = &w->acts->cap;
        if (have->rows >= want.rows && have->n_seq >= want.n_seq && have->tmax >= want.tmax &&
            have->threads >= want.threads &&
            (!want.training || (have->training && have->att >= want.att)))
            return KLC_OK;
        /* Grow to cover both the old and the new shape, so alternating calls settle. */
        want.rows = max64(want.rows, have->rows);
        want.n_seq = (int32_t)max64(want.n_seq, have->n_seq);
        want.tmax = (int32_t)max64(want.tmax, have->tmax);
        want.threads = (int32_t)max64(want.threads, have->threads);
        want.training = want.training || have->training;
        want.att = max64(want.att, have->att);
    }
    const int nl = want.training ? m->cfg.n_layer : 1;
    klc_activations *a = klc_alloc_zeroed(&m->alloc, sizeof *a);
    if (!a) return KLC_ERR_OUT_OF_MEMORY;
    a->layers = klc_alloc_zeroed(&m->alloc, sizeof(klc_layer_acts) * (size_t)nl);
    if (!a->layers) {
        klc_free(&m->alloc, a, sizeof *a);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    carver measure = {NULL, 0};
    size_t act_bytes = 0;
    lay_out(&m->cfg, &want, a, &measure, &act_bytes);
    char *block = klc_alloc(&m->alloc, measure.used);
    if (!block) {
        int s = klc_fail(KLC_ERR_OUT_OF_MEMORY,
                         "cannot allocate %.1f MiB of work buffers for %lld tokens (%s)",
                         (double)measure.used / (1 << 20), (long long)want.rows,
                         want.training ? "training" : "inference");
        klc_free(&m->alloc, a->layers, sizeof(klc_layer_acts) * (size_t)nl);
        klc_free(&m->alloc, a, sizeof *a);
        return s;
    }
    carver c = {block, 0};
    lay_out(&m->cfg, &want, a, &c, &act_bytes);
    a->cap = want;
    /* The old buffers go only once the new ones exist: a failure above changed nothing. */
    klc_workspace_free(m);
    m->kept.state = KLC_KEPT_NONE;
    w->acts = a;
    w->block = (float *)block;
    w->bytes = measure.used;
    w->activation_bytes = want.training ? act_bytes : 0;
    w->scratch_bytes = measure.used - w->activation_bytes;
    m->fwd_valid = 0;
    return KLC_OK;
}
