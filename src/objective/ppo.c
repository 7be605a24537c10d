/* PPO for KL-control (Ziegler et al. 2019): the objective's ops, its state and the update
 * loop of one step: rewards and old values, GAE, then epochs x minibatches of updates of
 * the policy (the caller's optimizer) and of the value head (its own Adam). */
#include "ppo.h"
#include "optim/optim.h"

#include <math.h>
#include <string.h>

static const char *const FN = "klc_objective_update";

void klc_ppo_free(klc_ppo *p, const klc_alloc_ctx *alloc) {
    if (!p) return;
    const size_t n = p->n_embd > 0 ? (size_t)p->n_embd + 1 : 0;
    klc_free(alloc, p->head, 4 * n * sizeof(float));
    klc_free(alloc, p->work, p->work_bytes);
    klc_free(alloc, p, sizeof *p);
}

int klc_ppo_ensure_head(klc_ppo *p, const klc_alloc_ctx *alloc, int32_t n_embd) {
    if (p->n_embd == n_embd) return KLC_OK;
    if (p->n_embd != 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "ppo: the value head has n_embd %d, the model %d (one objective per "
                        "policy)",
                        p->n_embd, n_embd);
    /* One zeroed block: parameters, gradients, Adam's two moments. A zero head predicts
     * 0 everywhere, as Ziegler's value head starts. */
    const size_t n = (size_t)n_embd + 1;
    float *block = klc_alloc_zeroed(alloc, 4 * n * sizeof(float));
    if (!block) return KLC_ERR_OUT_OF_MEMORY;
    p->head = block;
    p->head_grad = block + n;
    p->adam_m = block + 2 * n;
    p->adam_v = block + 3 * n;
    p->n_embd = n_embd;
    p->adam_steps = 0;
    return KLC_OK;
}

static int ppo_token_coeffs(void *self, const klc_step_view *v, float *on, float *sm) {
    (void)self, (void)v, (void)on, (void)sm;
    return klc_fail(KLC_ERR_UNSUPPORTED, "objective 'ppo' runs its own updates (several per "
                                         "batch, with a value head): use klc_objective_update");
}

/* Ziegler's adaptive beta, after the step: KL is the batch mean of the per-token sums of
 * log pi_old - log a, the policy that sampled. */
static int ppo_after_step(void *self, const klc_step_view *v, klc_metrics *m) {
    klc_builtin *s = self;
    double kl = 0, reward = 0;
    for (int32_t i = 0; i < v->n_seq; i++) {
        reward += v->reward[i];
        const size_t row = (size_t)i * (size_t)v->max_len;
        for (int32_t t = klc_view_from(v, i) - 1; t < v->lengths[i] - 1; t++)
            kl += (double)v->logpi_tok[row + t] - (double)v->loga_tok[row + t];
    }
    if (m) KLC_TRY(klc_metrics_set(m, "reward", reward / v->n_seq));
    return klc_kl_adapt(s, kl / v->n_seq, v->n_seq, m);
}

void klc_ppo_ops(const klc_objective_options *o, klc_objective_ops *ops) {
    (void)o;
    *ops = (klc_objective_ops){.name = "ppo",
                               .needs = KLC_NEED_REWARD | KLC_NEED_ON_POLICY | KLC_NEED_BASE_LOGP |
                                        KLC_NEED_POLICY_LOGP | KLC_NEED_TOKEN_LOGP,
                               .token_coeffs = ppo_token_coeffs,
                               .after_step = ppo_after_step};
}

/* --- The update loop ------------------------------------------------------------------- */

/* The step's work arrays, carved from the objective's reused block. */
typedef struct step_work {
    double *rewards, *values, *adv, *ret; /* [n*T] each */
    int32_t *perm;                        /* [n] */
    void *mb;                             /* klc_ppo_minibatch's work */
} step_work;

static int step_work_get(klc_builtin *s, int32_t n, int32_t T, int32_t rows, step_work *w) {
    klc_ppo *p = s->ppo;
    const size_t nt = (size_t)n * (size_t)T;
    const size_t doubles = (4 * nt * sizeof(double) + 63) / 64 * 64;
    const size_t perm = ((size_t)n * sizeof(int32_t) + 63) / 64 * 64;
    const size_t bytes = doubles + perm + klc_ppo_minibatch_bytes(rows, T, p->n_embd);
    if (bytes > p->work_bytes) {
        void *blk = klc_alloc(&s->alloc, bytes);
        if (!blk) return KLC_ERR_OUT_OF_MEMORY;
        klc_free(&s->alloc, p->work, p->work_bytes);
        p->work = blk;
        p->work_bytes = bytes;
    }
    char *base = p->work;
    w->rewards = (double *)base;
    w->values = w->rewards + nt;
    w->adv = w->values + nt;
    w->ret = w->adv + nt;
    w->perm = (int32_t *)(base + doubles);
    w->mb = base + doubles + perm;
    return KLC_OK;
}

/* Rewards, V_old, GAE and the batch statistics the metrics report. */
static int advantages(klc_builtin *s, klc_model *model, const klc_step_view *v,
                      const klc_ppo_batch *b, int32_t rows, step_work *w, klc_metrics *m) {
    const klc_objective_options *o = &s->o;
    const int32_t n = v->n_seq, T = v->max_len;
    for (int32_t i = 0; i < n; i++)
        for (int32_t t = klc_view_from(v, i) - 1; t < v->lengths[i] - 1; t++)
            w->rewards[(size_t)i * T + t] = klc_kl_token_reward(v, s->beta, i, t);
    if (o->ppo_whiten_rewards) klc_ppo_whiten(n, T, v->lengths, v->score_from, w->rewards, 0);
    KLC_TRY(klc_ppo_values(s->ppo, model, b, rows, w->mb, w->values));
    klc_ppo_gae(n, T, v->lengths, v->score_from, w->rewards, w->values, o->gamma, o->ppo_lambda,
                w->adv, w->ret);
    /* Explained variance 1 - Var(R - V)/Var(R); adv holds R - V before whitening. */
    double ret_mean, ret_var, res_mean, res_var, val_mean, val_var;
    klc_ppo_moments(n, T, v->lengths, v->score_from, w->ret, &ret_mean, &ret_var);
    klc_ppo_moments(n, T, v->lengths, v->score_from, w->adv, &res_mean, &res_var);
    klc_ppo_moments(n, T, v->lengths, v->score_from, w->values, &val_mean, &val_var);
    if (m) {
        KLC_TRY(klc_metrics_set(m, "ppo.explained_variance",
                                ret_var > 0 ? 1.0 - res_var / ret_var : NAN));
        KLC_TRY(klc_metrics_set(m, "ppo.value_mean", val_mean));
        KLC_TRY(klc_metrics_set(m, "ppo.return_mean", ret_mean));
    }
    if (o->ppo_whiten_advantages) klc_ppo_whiten(n, T, v->lengths, v->score_from, w->adv, 1);
    return KLC_OK;
}

/* A fresh order of the sequences for each epoch (Fisher-Yates). */
static void shuffle(const klc_update_options *uo, int64_t step, int32_t epoch, int32_t n,
                    int32_t *perm) {
    klc_rng rng;
    klc_rng_init(&rng, uo->seed, KLC_STREAM_DATA);
    for (int32_t i = 0; i < n; i++) perm[i] = i;
    for (int32_t i = n - 1; i > 0; i--) {
        const double u = klc_rng_uniform(&rng, (uint64_t)step, (uint64_t)epoch * n + i);
        int32_t j = (int32_t)(u * (i + 1));
        j = j > i ? i : j;
        const int32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

/* Adam on the value head, with the policy optimizer's betas and eps and learning rate lr
 * (torch.optim.Adam's arithmetic, through the optimizer's own kernel). */
static void value_head_step(klc_ppo *p, const klc_optimizer_options *oo, double lr) {
    const size_t n = (size_t)p->n_embd + 1;
    const double t = (double)(p->adam_steps + 1);
    klc_update_coefs c = {.clip_value = INFINITY,
                          .clip_scale = 1.0f,
                          .decay = 1.0f,
                          .beta1 = (float)oo->beta1,
                          .one_minus_beta1 = (float)(1.0 - oo->beta1),
                          .beta2 = (float)oo->beta2,
                          .one_minus_beta2 = (float)(1.0 - oo->beta2),
                          .step_size = (float)(lr / (1.0 - pow(oo->beta1, t))),
                          .bias2_sqrt = (float)sqrt(1.0 - pow(oo->beta2, t)),
                          .eps = (float)oo->eps};
    klc_optim_adam_chunk(p->head, p->adam_m, p->adam_v, p->head_grad, n, &c);
    p->adam_steps++;
}

/* Checked before the policy's update, so that a failed update changes nothing (the
 * optimizer checks the policy's gradient itself). */
static int check_head_grad(const klc_ppo *p) {
    for (int32_t i = 0; i <= p->n_embd; i++)
        if (!isfinite(p->head_grad[i]))
            return klc_fail(KLC_ERR_NUMERIC, "ppo: the value head's gradient %d is %g", i,
                            (double)p->head_grad[i]);
    return KLC_OK;
}

static int check_step(const klc_builtin *s, const klc_step_view *v) {
    if (s->o.ppo_minibatches > v->n_seq)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "%s: objective 'ppo': ppo_minibatches = %d exceeds the batch's %d "
                        "sequences",
                        FN, s->o.ppo_minibatches, v->n_seq);
    return KLC_OK;
}

int klc_ppo_update(klc_objective *obj, klc_model *model, klc_optimizer *opt,
                   const klc_step_view *step, const klc_seqs *seqs, const klc_update_options *uo,
                   klc_metrics *m) {
    klc_builtin *s = obj->self;
    klc_ppo *p = s->ppo;
    klc_step_view in = *step, v;
    in.tokens = seqs->tokens;
    in.lengths = seqs->lengths;
    in.score_from = seqs->score_from;
    KLC_TRY(klc_view_prepare(obj, &in, 1, FN, &v));
    KLC_TRY(check_step(s, &v));
    klc_model_options mo;
    klc_optimizer_options oo;
    KLC_TRY(klc_model_get_options(model, &mo));
    KLC_TRY(klc_optimizer_get_options(opt, &oo));
    KLC_TRY(klc_ppo_ensure_head(p, &s->alloc, mo.n_embd));

    const int32_t n = v.n_seq, T = v.max_len, M = s->o.ppo_minibatches;
    const int32_t largest = (n + M - 1) / M;
    const int32_t rows =
        uo->micro_batch > 0 && uo->micro_batch < largest ? uo->micro_batch : largest;
    step_work w;
    KLC_TRY(step_work_get(s, n, T, rows, &w));
    const klc_ppo_batch b = {
        n,           T,        seqs->tokens, seqs->lengths, seqs->score_from, seqs->sample_ids,
        v.logpi_tok, w.values, w.adv,        w.ret};
    KLC_TRY(advantages(s, model, &v, &b, rows, &w, m));

    klc_ppo_sums total = {0};
    int32_t updates = 0;
    klc_optimizer_report own = {.version = KLC_OPTIMIZER_REPORT_VERSION};
    klc_optimizer_report *rep = uo->report ? uo->report : &own; /* the last update's */
    int status = KLC_OK;
    for (int32_t e = 0; status == KLC_OK && e < s->o.ppo_epochs; e++) {
        shuffle(uo, v.step, e, n, w.perm);
        for (int32_t k = 0; status == KLC_OK && k < M; k++) {
            /* Minibatch k holds sequences [k n / M, (k+1) n / M) of the order. */
            const int32_t lo = (int32_t)((int64_t)k * n / M),
                          hi = (int32_t)((int64_t)(k + 1) * n / M);
            klc_ppo_sums mb;
            memset(p->head_grad, 0, ((size_t)p->n_embd + 1) * sizeof(float));
            status = klc_model_zero_grads(model);
            if (status == KLC_OK)
                status = klc_ppo_minibatch(p, &s->o, model, &b, w.perm + lo, hi - lo, rows, 1, w.mb,
                                           &mb);
            if (status == KLC_OK) status = check_head_grad(p);
            if (status == KLC_OK) status = klc_optimizer_step_model(opt, model, rep);
            if (status != KLC_OK) break;
            value_head_step(p, &oo, s->o.ppo_value_lr > 0 ? s->o.ppo_value_lr : rep->lr);
            updates++;
            if (mb.n_tok > 0) {
                total.pg_loss += mb.pg_loss / mb.n_tok;
                total.vf_loss += mb.vf_loss / mb.n_tok;
                total.clipped += mb.clipped / mb.n_tok;
                total.approx_kl += mb.approx_kl / mb.n_tok;
            }
        }
    }
    if (status != KLC_OK)
        return klc_fail_context(status, "%s: objective 'ppo' after %d updates: ", FN, updates);
    if (!m) return KLC_OK;
    KLC_TRY(klc_metrics_set(m, "ppo.policy_loss", total.pg_loss / updates));
    KLC_TRY(klc_metrics_set(m, "ppo.value_loss", total.vf_loss / updates));
    KLC_TRY(klc_metrics_set(m, "ppo.clip_frac", total.clipped / updates));
    KLC_TRY(klc_metrics_set(m, "ppo.approx_kl", total.approx_kl / updates));
    KLC_TRY(klc_metrics_set(m, "ppo.updates", updates));
    return KLC_OK;
}

int klc_objective_ppo_state(klc_objective *obj, int32_t n_embd, klc_ppo_state *out) {
    if (!obj || !out)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_objective_ppo_state: NULL argument");
    if (out->version < 1 || out->version > KLC_PPO_STATE_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_objective_ppo_state: version %u is not supported (set it to "
                        "KLC_PPO_STATE_VERSION)",
                        out->version);
    if (obj->builtin_kind != KLC_OBJECTIVE_PPO)
        return klc_fail(KLC_ERR_UNSUPPORTED, "klc_objective_ppo_state: objective '%s' is not PPO",
                        obj->name);
    if (n_embd < 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_objective_ppo_state: n_embd = %d < 0",
                        n_embd);
    klc_builtin *s = obj->self;
    klc_ppo *p = s->ppo;
    if (n_embd > 0) KLC_TRY(klc_ppo_ensure_head(p, &s->alloc, n_embd));
    const uint32_t version = out->version;
    *out = (klc_ppo_state){.version = version,
                           .n_embd = p->n_embd,
                           .value_params = p->head,
                           .value_grads = p->head_grad,
                           .adam_m = p->adam_m,
                           .adam_v = p->adam_v,
                           .adam_steps = &p->adam_steps,
                           .beta = &s->beta};
    return KLC_OK;
}
