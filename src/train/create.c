/* Creating a trainer: the checks that tie the handles together, then every buffer a step
 * will touch, so that the memory report is exact before the first step. */
#include "grad_variance.h"
#include "trainer.h"

#include <math.h>
#include <string.h>

static int32_t min32(int32_t a, int32_t b) {
    return a < b ? a : b;
}

static int32_t max32(int32_t a, int32_t b) {
    return a > b ? a : b;
}

static int bad(const char *what) {
    return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_trainer_create: %s", what);
}

/* Option values that need no handle. */
static int check_options(const klc_trainer_options *o, const klc_model_options *mo) {
    if (o->batch_size < 1) return bad("option batch_size must be >= 1");
    if (o->micro_batch < 0) return bad("option micro_batch must be >= 0");
    if (o->max_len < 0 || o->max_len == 1 || o->max_len > mo->n_ctx)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_trainer_create: option max_len = %d must be 0 or in [2, n_ctx = %d]",
                        o->max_len, mo->n_ctx);
    if (o->max_new_tokens < 0) return bad("option max_new_tokens must be >= 0");
    if (o->eos_id < -1 || o->eos_id >= mo->vocab_size)
        return bad("option eos_id must be -1 or a token of the policy's vocabulary");
    if (o->bos_id < 0 || o->bos_id >= mo->vocab_size)
        return bad("option bos_id must be a token of the policy's vocabulary");
    if (!(o->temperature > 0) || !isfinite(o->temperature))
        return bad("option temperature must be > 0 and finite");
    if (o->top_k < 0) return bad("option top_k must be >= 0");
    if (!(o->top_p > 0 && o->top_p <= 1)) return bad("option top_p must be in (0, 1]");
    if (o->proposal < KLC_PROPOSAL_ON_POLICY || o->proposal > KLC_PROPOSAL_NEVER)
        return bad("option proposal must be one of KLC_PROPOSAL_*");
    if (o->proposal_period < 0) return bad("option proposal_period must be >= 0");
    if (o->z_period < 1) return bad("option z_period must be >= 1");
    if (o->z_samples < 0) return bad("option z_samples must be >= 0");
    if (o->eval_period < 0) return bad("option eval_period must be >= 0");
    if (o->eval_samples < 0) return bad("option eval_samples must be >= 0");
    if (o->eval_period > 0 && o->eval_samples < 1)
        return bad("option eval_period > 0 needs eval_samples >= 1");
    if (o->diversity_period < 0) return bad("option diversity_period must be >= 0");
    if (o->diversity_samples < 2) return bad("option diversity_samples must be >= 2");
    if (!(o->diversity_top_p > 0 && o->diversity_top_p <= 1))
        return bad("option diversity_top_p must be in (0, 1]");
    if (o->grad_variance_period < 0) return bad("option grad_variance_period must be >= 0");
    if (o->grad_variance_samples < 2) return bad("option grad_variance_samples must be >= 2");
    if (o->grad_variance_period > 0 && o->batch_size < 2)
        return bad("option grad_variance_period > 0 needs batch_size >= 2");
    if (o->context_order != KLC_CONTEXTS_ROUND_ROBIN && o->context_order != KLC_CONTEXTS_RANDOM)
        return bad("option context_order must be one of KLC_CONTEXTS_*");
    return KLC_OK;
}

static int pure_sampling(const klc_trainer_options *o, int32_t vocab) {
    return o->temperature == 1 && (o->top_k == 0 || o->top_k >= vocab) && o->top_p == 1;
}

/* The handles agree with each other and with the objective's needs. */
static int check_handles(klc_trainer *t, const klc_model_options *mo, const klc_model_options *ao) {
    const klc_trainer_options *o = &t->o;
    if (ao->vocab_size != mo->vocab_size)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_trainer_create: base vocabulary %d differs from the policy's %d",
                        ao->vocab_size, mo->vocab_size);
    if (o->max_len > ao->n_ctx)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_trainer_create: max_len = %d exceeds the base's n_ctx = %d",
                        o->max_len, ao->n_ctx);
    if (klc_optimizer_num_tensors(t->opt) > 0) {
        size_t count = 0;
        KLC_TRY(klc_optimizer_tensor(t->opt, 0, NULL, NULL, &count));
        if ((int64_t)count != t->n_params)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_trainer_create: the optimizer is for %zu parameters, the "
                            "policy has %lld",
                            count, (long long)t->n_params);
    }
    if (o->reward && klc_feature_dim(o->reward) != 1)
        return bad("option reward must be a feature of dim 1");
    const char *name = klc_objective_name(t->obj);
    const int pure = pure_sampling(o, mo->vocab_size);
    if ((t->needs & KLC_NEED_TARGET) && !t->target)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_trainer_create: objective '%s' needs a target", name);
    if ((t->needs & KLC_NEED_REWARD) && !o->reward && t->reward_col < 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_trainer_create: objective '%s' needs a reward: set option reward "
                        "or give a target made by klc_target_from_reward",
                        name);
    if ((t->needs & KLC_NEED_ON_POLICY) && o->proposal != KLC_PROPOSAL_ON_POLICY)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_trainer_create: objective '%s' is on-policy; option proposal must "
                        "be KLC_PROPOSAL_ON_POLICY",
                        name);
    if ((t->needs & (KLC_NEED_FULL_SUPPORT | KLC_NEED_ON_POLICY)) && !pure)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_trainer_create: objective '%s' needs pure ancestral samples "
                        "(temperature 1, top_k 0, top_p 1)",
                        name);
    if ((t->needs & KLC_NEED_OWN_UPDATES) && o->grad_variance_period > 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_trainer_create: objective '%s' runs its own updates and has no "
                        "per-sample gradient: option grad_variance_period must be 0",
                        name);
    if (o->diversity_period > 0 && !t->tok)
        return bad("option diversity_period > 0 needs a tokenizer");
    if (o->proposal == KLC_PROPOSAL_KL_CHECK && !t->target)
        return bad("option proposal KLC_PROPOSAL_KL_CHECK needs a target");
    if (t->target && o->z_samples == 0 && !pure)
        return bad("a Z check on the training batch needs pure ancestral samples: set "
                   "z_samples or sample with temperature 1, top_k 0, top_p 1");
    return KLC_OK;
}

/* What the target offers: phi's length, a reward column, pointwise terms. */
int tr_read_target(klc_trainer *t) {
    t->reward_col = -1;
    t->has_pointwise = 0;
    if (!t->target) return KLC_OK;
    t->target_version = klc_target_version(t->target);
    t->phi_dim = klc_target_phi_dim(t->target);
    int32_t nt = klc_target_num_terms(t->target);
    for (int32_t i = 0; i < nt; i++) {
        klc_term_info ti;
        ti.version = KLC_TERM_INFO_VERSION;
        KLC_TRY(klc_target_term_info(t->target, i, &ti));
        if (ti.kind == KLC_TERM_POINTWISE) t->has_pointwise = 1;
        if (ti.kind == KLC_TERM_REWARD && t->reward_col < 0) t->reward_col = ti.phi_offset;
    }
    return KLC_OK;
}

static int make_sampler(klc_trainer *t, klc_model *model, int32_t rows, klc_sampler **out) {
    klc_sampler_options so;
    klc_sampler_options_init(&so, KLC_SAMPLER_OPTIONS_VERSION);
    so.max_rows = rows < 64 ? rows : 64;
    so.max_len = t->max_len;
    so.max_prompt_len = tr_longest_prompt(t);
    so.allocator = t->o.allocator;
    return klc_sampler_create(model, &so, out);
}

static int allocate(klc_trainer *t, int32_t vocab) {
    const klc_trainer_options *o = &t->o;
    KLC_TRY(klc_metrics_create(o->allocator, &t->m));
    KLC_TRY(
        tr_contexts_create(t, vocab, max32(o->batch_size, max32(o->z_samples, o->eval_samples))));
    if (t->target) KLC_TRY(klc_z_estimate_create(t->n_contexts, o->allocator, &t->z));
    if (o->proposal != KLC_PROPOSAL_ON_POLICY) KLC_TRY(klc_model_clone(t->policy, &t->q));
    KLC_TRY(tr_batch_create(t, &t->train, o->batch_size));
    if (o->z_samples > 0) KLC_TRY(tr_batch_create(t, &t->zb, o->z_samples));
    if (o->eval_samples > 0) KLC_TRY(tr_batch_create(t, &t->eval, o->eval_samples));
    if (t->tok && o->diversity_period > 0)
        KLC_TRY(tr_batch_create(t, &t->div, o->diversity_samples));
    if (o->grad_variance_period > 0)
        KLC_TRY(tr_grad_var_create(&t->alloc, (size_t)t->n_params, o->batch_size, t->max_len,
                                   &t->gvar));
    if (t->tok && (o->eval_samples > 0 || t->div.b)) {
        /* Every batch of a trainer has the same text capacity. */
        t->hash_cap = (t->div.b ? t->div.text_cap : t->eval.text_cap) + 1;
        t->hashes = klc_alloc(&t->alloc, t->hash_cap * sizeof(uint64_t));
        if (!t->hashes) return KLC_ERR_OUT_OF_MEMORY;
    }
    /* The samplers' prefills reserve inference buffers; the training forward and the
     * scores of whole batches are reserved here, so that no step grows a buffer. */
    const int32_t q_rows = max32(o->batch_size, o->z_samples);
    const int32_t pi_own = max32(o->eval_samples, t->div.b ? o->diversity_samples : 0);
    const int32_t pi_rows = max32(t->q ? pi_own : max32(q_rows, pi_own), 1);
    KLC_TRY(make_sampler(t, t->policy, pi_rows, &t->pi_sampler));
    if (t->q) KLC_TRY(make_sampler(t, t->q, q_rows, &t->q_sampler));
    const int32_t micro =
        o->micro_batch > 0 && o->micro_batch < o->batch_size ? o->micro_batch : o->batch_size;
    KLC_TRY(klc_model_reserve(t->policy, micro, t->max_len, 1));
    /* Scores run TR_SCORE_ROWS sequences at a time (tr_score). */
    const int32_t rows = TR_SCORE_ROWS;
    KLC_TRY(klc_model_reserve(t->policy, min32(max32(o->batch_size, o->eval_samples), rows),
                              t->max_len, 0));
    KLC_TRY(klc_model_reserve(t->base, min32(max32(q_rows, o->eval_samples), rows), t->max_len, 0));
    if (t->q) KLC_TRY(klc_model_reserve(t->q, min32(q_rows, rows), t->max_len, 0));
    size_t n;
    if (!klc_model_grads(t->policy, &n)) return KLC_ERR_OUT_OF_MEMORY;
    return KLC_OK;
}

int klc_trainer_create(klc_model *policy, klc_model *base, klc_target *target,
                       klc_objective *objective, klc_optimizer *optimizer, klc_tokenizer *tokenizer,
                       const klc_trainer_options *opts, klc_trainer **out) {
    if (!out) return bad("NULL out");
    *out = NULL;
    if (!policy || !base || !objective || !optimizer)
        return bad("policy, base, objective and optimizer must not be NULL");
    if (policy == base)
        return bad("base must be a separate handle from policy (clone the policy: the base "
                   "stays frozen while the policy trains)");
    klc_trainer_options o;
    klc_trainer_options_init(&o, KLC_TRAINER_OPTIONS_VERSION);
    if (opts) {
        if (opts->version < 1 || opts->version > KLC_TRAINER_OPTIONS_VERSION)
            return klc_fail(KLC_ERR_UNSUPPORTED,
                            "klc_trainer_create: options version %u (this library knows 1..%d)",
                            opts->version, KLC_TRAINER_OPTIONS_VERSION);
        memcpy(&o, opts, tr_options_size(opts->version));
        o.version = KLC_TRAINER_OPTIONS_VERSION;
    }
    klc_model_options mo, ao;
    KLC_TRY(klc_model_get_options(policy, &mo));
    KLC_TRY(klc_model_get_options(base, &ao));
    KLC_TRY(check_options(&o, &mo));
    if (o.proposal_period == 0) o.proposal_period = o.z_period;
    if (o.max_len == 0) o.max_len = mo.n_ctx < 64 ? mo.n_ctx : 64;

    klc_alloc_ctx ctx;
    klc_alloc_ctx_init(&ctx, o.allocator);
    klc_trainer *t = klc_alloc_zeroed(&ctx, sizeof *t);
    if (!t) return KLC_ERR_OUT_OF_MEMORY;
    t->alloc = ctx;
    t->o = o;
    t->policy = policy;
    t->base = base;
    t->target = target;
    t->obj = objective;
    t->opt = optimizer;
    t->tok = tokenizer;
    t->max_len = o.max_len;
    t->needs = klc_objective_needs(objective);
    size_t np = 0;
    klc_model_params(policy, &np);
    t->n_params = (int64_t)np;
    int s = tr_read_target(t);
    if (s == KLC_OK) s = check_handles(t, &mo, &ao);
    if (s == KLC_OK) s = allocate(t, mo.vocab_size);
    if (s != KLC_OK) {
        klc_trainer_destroy(t);
        return s;
    }
    *out = t;
    return KLC_OK;
}

void klc_trainer_destroy(klc_trainer *t) {
    if (!t) return;
    klc_alloc_ctx ctx = t->alloc;
    klc_sampler_destroy(t->pi_sampler);
    klc_sampler_destroy(t->q_sampler);
    klc_model_destroy(t->q);
    klc_z_estimate_destroy(t->z);
    klc_metrics_destroy(t->m);
    tr_batch_destroy(t, &t->train);
    tr_batch_destroy(t, &t->zb);
    tr_batch_destroy(t, &t->eval);
    tr_contexts_destroy(t);
    tr_batch_destroy(t, &t->div);
    tr_grad_var_destroy(&ctx, t->gvar);
    klc_free(&ctx, t->hashes, t->hash_cap * sizeof(uint64_t));
    klc_free(&ctx, t, sizeof *t);
}

static size_t model_bytes(const klc_model *m) {
    klc_memory_info mi;
    mi.version = KLC_MEMORY_INFO_VERSION;
    return m && klc_model_memory(m, &mi) == KLC_OK ? mi.total_bytes : 0;
}

int klc_trainer_memory(const klc_trainer *t, klc_trainer_memory_info *out) {
    if (!t || !out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_trainer_memory: NULL argument");
    if (out->version < 1 || out->version > KLC_TRAINER_MEMORY_VERSION)
        return klc_fail(KLC_ERR_UNSUPPORTED,
                        "klc_trainer_memory: version %u (this library knows 1..%d)", out->version,
                        KLC_TRAINER_MEMORY_VERSION);
    out->policy_bytes = model_bytes(t->policy);
    out->base_bytes = model_bytes(t->base);
    out->proposal_bytes = model_bytes(t->q);
    out->optimizer_bytes = klc_optimizer_state_size(t->opt);
    out->sampler_bytes = klc_sampler_bytes(t->pi_sampler) + klc_sampler_bytes(t->q_sampler);
    out->batch_bytes = t->train.bytes + t->zb.bytes + t->eval.bytes +
                       t->hash_cap * sizeof(uint64_t) + t->ctx_bytes + sizeof *t;
    out->batch_bytes += t->div.bytes + (t->gvar ? t->gvar->bytes : 0);
    out->total_bytes = out->policy_bytes + out->base_bytes + out->proposal_bytes +
                       out->optimizer_bytes + out->sampler_bytes + out->batch_bytes;
    return KLC_OK;
}

int64_t klc_trainer_steps(const klc_trainer *t) {
    return t ? t->step : -1;
}

double klc_trainer_log_z(const klc_trainer *t) {
    return klc_trainer_context_log_z(t, 0);
}

double klc_trainer_context_log_z(const klc_trainer *t, int32_t context) {
    return t && t->z ? klc_z_estimate_log_z(t->z, context) : NAN;
}

klc_model *klc_trainer_proposal(const klc_trainer *t) {
    return t ? (t->q ? t->q : t->policy) : NULL;
}

klc_batch *klc_trainer_batch(const klc_trainer *t) {
    return t ? t->train.b : NULL;
}
