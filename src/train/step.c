/* One training step and the evaluation (see klc.h, "Trainer"). */
#include "diversity.h"
#include "grad_variance.h"
#include "sampler/batch.h"
#include "trainer.h"

#include <math.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Whether a report every `period` steps (0: never) falls on step count `step`. */
static int due(int64_t step, int32_t period) {
    return period > 0 && step % period == 0;
}

static klc_sampler *q_sampler(const klc_trainer *t) {
    return t->q ? t->q_sampler : t->pi_sampler;
}

/* Whether a context of the training batch has no usable Z estimate yet: no check, or only
 * checks in which no sample met the target (log Z = -inf). */
static int context_without_z(const klc_trainer *t) {
    const klc_batch *b = t->train.b;
    for (int32_t i = 0; i < b->n_seq; i++) {
        const int32_t c = b->context_ids[i];
        if (klc_z_estimate_checks(t->z, c) == 0 || klc_z_estimate_log_z(t->z, c) == -INFINITY)
            return 1;
    }
    return 0;
}

/* An objective that divides by Z cannot weight a batch while some of its contexts have
 * seen no sample with P > 0: the step then makes no update (see klc.h). */
static int must_skip_update(const klc_trainer *t) {
    return t->target && (t->needs & KLC_NEED_TARGET) && context_without_z(t);
}

/* A Z check is due before the first update (of each context), every z_period steps, and as
 * soon as the target changed (the running estimate would otherwise average two different
 * Z). */
static int z_check(klc_trainer *t, int *made) {
    *made = 0;
    if (!t->target) return KLC_OK;
    const uint64_t version = klc_target_version(t->target);
    const int stale = klc_z_estimate_target_version(t->z) != version || context_without_z(t);
    if (!stale && t->step % t->o.z_period != 0) return KLC_OK;
    tr_batch *src = &t->train;
    if (t->o.z_samples > 0) {
        src = &t->zb;
        KLC_TRY(
            tr_fill(t, src, q_sampler(t), t->o.z_samples, (uint64_t)t->step, t->o.batch_size, 0));
    }
    KLC_TRY(klc_z_estimate_add_batch(t->z, version, src->b->n_seq, src->b->context_ids,
                                     src->b->logP, src->b->logq));
    *made = 1;
    return KLC_OK;
}

static int copy_into_q(klc_trainer *t) {
    size_t n_pi = 0, n_q = 0;
    float *p = klc_model_params(t->policy, &n_pi);
    float *q = klc_model_params(t->q, &n_q);
    if (!p || !q || n_pi != n_q)
        return klc_fail(KLC_ERR_INTERNAL, "klc_trainer_step: proposal and policy differ in size");
    memcpy(q, p, n_pi * sizeof *p);
    t->proposal_updates++;
    return KLC_OK;
}

/* Off-policy: replace q by pi when due, before pi moves, so that the copy is the policy
 * the criterion was computed for. */
static int proposal_update(klc_trainer *t) {
    if (!t->q || t->o.proposal == KLC_PROPOSAL_NEVER) return KLC_OK;
    if (t->step == 0 || t->step % t->o.proposal_period != 0) return KLC_OK;
    if (t->o.proposal == KLC_PROPOSAL_EVERY_K) return copy_into_q(t);
    klc_batch *b = t->train.b;
    if (!(b->flags & KLC_BATCH_FULL_SUPPORT)) return KLC_OK;
    /* The mean over contexts of each one's KL(p||pi) - KL(p||q), with its own Z_c. */
    double crit;
    tr_group(t, b);
    KLC_TRY(tr_context_estimate(t, b, b->logpi, klc_estimate_proposal_criterion, &crit));
    if (isnan(crit)) return KLC_OK;
    KLC_TRY(klc_metrics_set(t->m, "proposal_criterion", crit));
    return crit < 0 ? copy_into_q(t) : KLC_OK;
}

static void make_view(const klc_trainer *t, klc_step_view *v) {
    klc_batch *b = t->train.b;
    klc_step_view_init(v, KLC_STEP_VIEW_VERSION);
    v->n_seq = b->n_seq;
    v->max_len = b->max_len;
    v->tokens = b->tokens;
    v->lengths = b->lengths;
    v->score_from = b->prompt_lengths;
    v->context_ids = b->context_ids;
    v->n_contexts = t->n_contexts;
    v->logq = b->logq;
    v->loga = b->loga;
    v->logq_tok = b->logq_tok;
    v->loga_tok = b->loga_tok;
    if (t->q) {
        v->logpi = b->logpi;
        v->logpi_tok = b->logpi_tok;
    }
    if (t->target) {
        v->logP = b->logP;
        v->n_features = t->phi_dim;
        v->phi = t->phi_dim > 0 ? b->phi : NULL;
        /* One Z per context; log_z too without contexts, for objectives that read it. */
        v->log_z_ctx = klc_z_estimate_table(t->z);
        if (t->n_contexts == 1) v->log_z = klc_z_estimate_log_z(t->z, 0);
    }
    if (t->o.reward || t->reward_col >= 0) v->reward = t->train.reward;
    v->on_policy = t->q == NULL;
    v->full_support = (b->flags & KLC_BATCH_FULL_SUPPORT) != 0;
    v->step = t->step;
}

static int score_policy(klc_trainer *t) {
    klc_batch *b = t->train.b;
    klc_seqs seqs;
    KLC_TRY(klc_batch_seqs(b, &seqs));
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.seq_logprobs = b->logpi;
    fo.token_logprobs = b->logpi_tok;
    KLC_TRY(tr_score(t->policy, &seqs, &fo));
    b->flags |= KLC_BATCH_HAS_LOGPI;
    return KLC_OK;
}

/* The gradient of the whole batch, accumulated micro-batch by micro-batch. */
static int gradient(klc_trainer *t, const klc_step_view *v, double *loss) {
    klc_batch *b = t->train.b;
    klc_seqs seqs;
    KLC_TRY(klc_batch_seqs(b, &seqs));
    KLC_TRY(klc_model_zero_grads(t->policy));
    klc_accumulate_options ao;
    klc_accumulate_options_init(&ao, KLC_ACCUMULATE_OPTIONS_VERSION);
    ao.micro_batch = t->o.micro_batch;
    ao.weights_out = t->train.weights;
    ao.logpi_out = t->train.scratch;
    KLC_TRY(klc_objective_accumulate(t->obj, t->policy, v, &seqs, &ao));
    double s = 0;
    for (int32_t i = 0; i < b->n_seq; i++) s -= t->train.weights[i] * t->train.scratch[i];
    *loss = s / b->n_seq;
    return KLC_OK;
}

/* Objectives that run their own loop (PPO): every update of the step, the last one
 * reported; there are no sequence weights. */
static int own_updates(klc_trainer *t, const klc_step_view *v, klc_optimizer_report *rep) {
    klc_seqs seqs;
    KLC_TRY(klc_batch_seqs(t->train.b, &seqs));
    klc_update_options uo;
    klc_update_options_init(&uo, KLC_UPDATE_OPTIONS_VERSION);
    uo.micro_batch = t->o.micro_batch;
    uo.seed = t->o.seed;
    uo.report = rep;
    t->train.weights[0] = NAN;
    return klc_objective_update(t->obj, t->policy, t->opt, v, &seqs, &uo, t->m);
}

static int evaluate(klc_trainer *t) {
    tr_batch *e = &t->eval;
    const int64_t first = (int64_t)t->o.batch_size + t->o.z_samples;
    KLC_TRY(tr_fill(t, e, t->pi_sampler, t->o.eval_samples, (uint64_t)t->step, first, 0));
    KLC_TRY(tr_batch_metrics(t, e, NULL, "eval."));
    if (t->tok) {
        double d[3];
        tr_distinct(t, e, e->b->n_seq, d);
        KLC_TRY(klc_metrics_set(t->m, "eval.distinct_1", d[0]));
        KLC_TRY(klc_metrics_set(t->m, "eval.distinct_2", d[1]));
        KLC_TRY(klc_metrics_set(t->m, "eval.distinct_3", d[2]));
    }
    return KLC_OK;
}

/* log_z: the mean of the contexts' log Z_c over those that have one (the estimate itself
 * with one context); z_checks: the fewest checks of any context. */
static int z_metrics(klc_trainer *t, int z_made) {
    double sum = 0;
    int32_t known = 0;
    int64_t fewest = INT64_MAX;
    for (int32_t c = 0; c < t->n_contexts; c++) {
        const double lz = klc_z_estimate_log_z(t->z, c);
        const int64_t k = klc_z_estimate_checks(t->z, c);
        if (!isnan(lz)) sum += lz, known++;
        if (k < fewest) fewest = k;
    }
    KLC_TRY(klc_metrics_set(t->m, "log_z", known ? sum / known : NAN));
    KLC_TRY(klc_metrics_set(t->m, "z_checks", (double)fewest));
    return klc_metrics_set(t->m, "z_check", z_made);
}

static int copy_metrics(const klc_metrics *from, klc_metrics *to) {
    int32_t n = klc_metrics_count(from);
    for (int32_t i = 0; i < n; i++) {
        const char *name;
        double v;
        KLC_TRY(klc_metrics_entry(from, i, &name, &v));
        KLC_TRY(klc_metrics_set(to, name, v));
    }
    return KLC_OK;
}

/* A target may change between steps (a lambda refit, a new term), but the batches were
 * laid out for its phi at creation. */
static int refresh_target(klc_trainer *t) {
    if (!t->target || klc_target_version(t->target) == t->target_version) return KLC_OK;
    const int32_t old_dim = t->phi_dim;
    KLC_TRY(tr_read_target(t));
    if (t->phi_dim != old_dim) {
        t->phi_dim = old_dim;
        t->target_version = 0; /* so that the next step checks again */
        return klc_fail(KLC_ERR_STATE,
                        "klc_trainer_step: the target's phi now has %d values, %d when the "
                        "trainer was created: add moment and reward terms before creating it",
                        klc_target_phi_dim(t->target), old_dim);
    }
    return KLC_OK;
}

/* Everything up to the update; nothing here changes the policy. */
static int prepare(klc_trainer *t, klc_step_view *v, int *z_made) {
    KLC_TRY(refresh_target(t));
    KLC_TRY(tr_fill(t, &t->train, q_sampler(t), t->o.batch_size, (uint64_t)t->step, 0, 1));
    if (t->q) KLC_TRY(score_policy(t));
    KLC_TRY(z_check(t, z_made));
    KLC_TRY(proposal_update(t));
    make_view(t, v);
    return KLC_OK;
}

int klc_trainer_step(klc_trainer *t, klc_metrics *out) {
    if (!t) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_trainer_step: NULL trainer");
    const double t0 = now();
    KLC_TRY(klc_metrics_clear(t->m));
    klc_step_view v;
    int z_made = 0;
    double loss = 0;
    int s = prepare(t, &v, &z_made);
    const int skip = s == KLC_OK && must_skip_update(t);
    /* Before the training gradient, whose block it uses as scratch. */
    if (s == KLC_OK && !skip && due(t->step + 1, t->o.grad_variance_period))
        s = tr_grad_variance_step(t, &v);
    klc_optimizer_report rep;
    rep.version = KLC_OPTIMIZER_REPORT_VERSION;
    if (skip) {
        memset(&rep, 0, sizeof rep);
        rep.lr = NAN, rep.grad_norm = NAN;
        t->train.weights[0] = NAN;
    } else if (t->needs & KLC_NEED_OWN_UPDATES) {
        if (s == KLC_OK) s = own_updates(t, &v, &rep);
    } else {
        if (s == KLC_OK) s = gradient(t, &v, &loss);
        if (s == KLC_OK) s = klc_optimizer_step_model(t->opt, t->policy, &rep);
    }
    if (s != KLC_OK) return klc_fail_context(s, "klc_trainer_step %lld: ", (long long)t->step);
    /* The update happened: from here on the step counts even if a report fails. */
    t->step++;
    s = skip ? klc_metrics_set(t->m, "update_skipped", 1)
             : klc_objective_after_step(t->obj, &v, t->m);
    const int is_seq = isfinite(t->train.weights[0]);
    if (s == KLC_OK) s = klc_metrics_set(t->m, "step", (double)t->step);
    if (s == KLC_OK) s = klc_metrics_set(t->m, "lr", rep.lr);
    if (s == KLC_OK) s = klc_metrics_set(t->m, "grad_norm", rep.grad_norm);
    if (s == KLC_OK && is_seq) s = klc_metrics_set(t->m, "loss", loss);
    if (s == KLC_OK && t->target) s = z_metrics(t, z_made);
    if (s == KLC_OK && t->q)
        s = klc_metrics_set(t->m, "proposal_updates", (double)t->proposal_updates);
    if (s == KLC_OK) s = tr_batch_metrics(t, &t->train, t->q ? t->train.b->logpi : NULL, "train.");
    if (s == KLC_OK && due(t->step, t->o.eval_period)) s = evaluate(t);
    if (s == KLC_OK && t->div.b && due(t->step, t->o.diversity_period)) s = tr_diversity(t);
    const double dt = now() - t0;
    if (s == KLC_OK) s = klc_metrics_set(t->m, "step_time_s", dt);
    if (s == KLC_OK) s = klc_metrics_set(t->m, "samples_per_s", t->o.batch_size / dt);
    if (s == KLC_OK && out) s = klc_metrics_clear(out);
    if (s == KLC_OK && out) s = copy_metrics(t->m, out);
    if (s != KLC_OK)
        return klc_fail_context(
            s, "klc_trainer_step %lld (after the update): ", (long long)t->step - 1);
    if (t->o.callback) {
        int r = t->o.callback(t->o.callback_userdata, t->step, t->m);
        if (r != 0)
            return klc_fail(KLC_ERR_CALLBACK,
                            "klc_trainer_step %lld: the callback returned %d (stop requested)",
                            (long long)t->step, r);
    }
    return KLC_OK;
}

int klc_trainer_evaluate(klc_trainer *t, klc_metrics *out) {
    if (!t || !out)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_trainer_evaluate: NULL argument");
    if (t->o.eval_samples < 1)
        return klc_fail(KLC_ERR_STATE, "klc_trainer_evaluate: option eval_samples is 0");
    KLC_TRY(klc_metrics_clear(t->m));
    KLC_TRY(evaluate(t));
    return copy_metrics(t->m, out);
}
