/* Reading a train configuration: every key, its default and its range. docs/configuration.md
 * documents the same keys; tests/test_cli_configs.c checks that none is missing there. */
#include "cli/train_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const OBJECTIVE_NAMES[N_OBJECTIVES] = {
    "reinforce", "kl_control", "kl_control_token", "dpg", "gdc", "gdcpp", "fdpg", "mle", "ppo"};

static const char *const FEATURE_KINDS[N_FEATURE_KINDS] = {"word",      "word_list", "lexicon",
                                                           "name_list", "length",    "regex"};
static const char *const AGGREGATES[] = {"sum", "mean", "count"};
static const char *const BASELINES[] = {"default", "none", "moving_average", "leave_one_out"};
static const char *const DIVERGENCES[] = {"forward_kl", "reverse_kl", "js", "tv", "chi2"};
static const char *const PROPOSALS[] = {"on_policy", "kl_check", "every_k", "never"};
static const char *const OPTIMIZERS[] = {"adam", "adamw", "sgd"};
static const char *const SCHEDULES[] = {"constant", "cosine", "linear"};
static const char *const FIT_METHODS[] = {"newton", "gradient"};
#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

/* One feature: `kind` and the keys of that kind. with_mean: a moment constraint. */
static void read_feature(cfg_map *m, feature_spec *f, int with_mean) {
    memset(f, 0, sizeof *f);
    f->kind = cfg_enum(m, "kind", FEATURE_KINDS, N_FEATURE_KINDS, FEATURE_WORD);
    if (!cfg_has(m, "kind") && !cfg_error(m->c))
        cfg_fail(m, NULL, "missing key '%s.kind'", m->path);
    snprintf(m->note, sizeof m->note, "for kind '%s'", FEATURE_KINDS[f->kind]);
    f->name = cfg_string(m, "name", NULL, 0);
    klc_feature_options fo;
    klc_feature_options_init(&fo, KLC_FEATURE_OPTIONS_VERSION);
    f->aggregate = fo.aggregate;
    f->default_value = fo.default_value;
    switch (f->kind) {
    case FEATURE_WORD:
        f->word = cfg_string(m, "word", NULL, 1);
        f->caseless = cfg_bool(m, "caseless", 0);
        break;
    case FEATURE_WORD_LIST:
    case FEATURE_NAME_LIST: {
        const char *list_key = f->kind == FEATURE_WORD_LIST ? "words" : "names";
        int inline_list = cfg_has(m, list_key), from_file = cfg_has(m, "file");
        if (inline_list == from_file && !cfg_error(m->c))
            cfg_fail(m, inline_list ? "file" : NULL, "'%s' needs exactly one of '%s' and 'file'",
                     m->path, list_key);
        f->words = cfg_strings(m, list_key, -1, 0, &f->n_words);
        f->file = cfg_path(m, "file", NULL, CFG_PATH_FILE, 0);
        if (f->kind == FEATURE_WORD_LIST) f->caseless = cfg_bool(m, "caseless", 0);
        break;
    }
    case FEATURE_LEXICON:
        f->file = cfg_path(m, "file", NULL, CFG_PATH_FILE, 1);
        f->aggregate = cfg_enum(m, "aggregate", AGGREGATES, COUNT(AGGREGATES), fo.aggregate);
        f->default_value = cfg_double(m, "default_value", fo.default_value, -INFINITY, INFINITY, 0);
        f->caseless = cfg_bool(m, "caseless", 0);
        break;
    case FEATURE_REGEX:
        f->pattern = cfg_string(m, "pattern", NULL, 1);
        f->caseless = cfg_bool(m, "caseless", 0);
        break;
    default: /* length has no keys of its own */
        break;
    }
    if (with_mean) {
        if (!cfg_has(m, "mean") && !cfg_error(m->c))
            cfg_fail(m, NULL, "missing key '%s.mean' (the wanted mean of the feature)", m->path);
        f->mean = cfg_double(m, "mean", 0, -INFINITY, INFINITY, 0);
        f->lambda = cfg_double(m, "lambda", 0, -INFINITY, INFINITY, 0);
    }
    cfg_end(m);
}

static void read_target(cfg_map *root, train_settings *s) {
    cfg_map t, item;
    cfg_section(root, "target", &t);
    int n = cfg_list(&t, "constraints");
    if (n > MAX_TERMS) cfg_fail(&t, "constraints", "at most %d constraints", MAX_TERMS);
    for (int i = 0; i < n && i < MAX_TERMS; i++) {
        cfg_list_item(&t, "constraints", i, &item);
        read_feature(&item, &s->constraints[i], 0);
        int k = s->constraints[i].kind;
        if ((k == FEATURE_LEXICON || k == FEATURE_LENGTH) && !cfg_error(root->c))
            cfg_fail(&item, "kind",
                     "a pointwise constraint must be 0 or 1 on every text: kind '%s' is not "
                     "(use it under 'moments')",
                     FEATURE_KINDS[k]);
    }
    s->n_constraints = n < MAX_TERMS ? n : MAX_TERMS;
    n = cfg_list(&t, "moments");
    if (n > MAX_TERMS) cfg_fail(&t, "moments", "at most %d moment constraints", MAX_TERMS);
    for (int i = 0; i < n && i < MAX_TERMS; i++) {
        cfg_list_item(&t, "moments", i, &item);
        read_feature(&item, &s->moments[i], 1);
    }
    s->n_moments = n < MAX_TERMS ? n : MAX_TERMS;
    s->reward_beta = cfg_double(&t, "reward_beta", 0, 0, INFINITY, 0);
    cfg_map fit;
    cfg_section(&t, "fit", &fit);
    klc_fit_options_init(&s->fit, KLC_FIT_OPTIONS_VERSION);
    s->fit_samples = (int32_t)cfg_int(&fit, "samples", 1024, 0, INT32_MAX);
    s->fit.method = cfg_enum(&fit, "method", FIT_METHODS, COUNT(FIT_METHODS), s->fit.method);
    s->fit.tol = cfg_double(&fit, "tol", s->fit.tol, 0, INFINITY, CFG_LO_OPEN);
    s->fit.max_iter = (int32_t)cfg_int(&fit, "max_iter", s->fit.max_iter, 0, INT32_MAX);
    s->fit.ridge = cfg_double(&fit, "ridge", s->fit.ridge, 0, INFINITY, 0);
    s->fit.step = cfg_double(&fit, "step", s->fit.step, 0, INFINITY, CFG_LO_OPEN);
    s->fit.max_spread = cfg_double(&fit, "max_spread", s->fit.max_spread, 0, INFINITY, CFG_LO_OPEN);
    cfg_end(&fit);
    cfg_end(&t);
}

static void read_objective(cfg_map *root, train_settings *s) {
    cfg_map o;
    cfg_section(root, "objective", &o);
    klc_objective_options_init(&s->obj, KLC_OBJECTIVE_OPTIONS_VERSION);
    s->objective = cfg_enum(&o, "kind", OBJECTIVE_NAMES, N_OBJECTIVES, OBJ_GDCPP);
    snprintf(o.note, sizeof o.note, "for kind '%s'", OBJECTIVE_NAMES[s->objective]);
    static const int32_t KINDS[N_OBJECTIVES] = {
        KLC_OBJECTIVE_REINFORCE, KLC_OBJECTIVE_KL_CONTROL, KLC_OBJECTIVE_KL_CONTROL_TOKEN,
        KLC_OBJECTIVE_DPG,       KLC_OBJECTIVE_DPG,        KLC_OBJECTIVE_GDCPP,
        KLC_OBJECTIVE_FDPG,      KLC_OBJECTIVE_MLE,        KLC_OBJECTIVE_PPO};
    s->obj.kind = KINDS[s->objective];
    int ppo = s->objective == OBJ_PPO;
    int kl = s->objective == OBJ_KL_CONTROL || s->objective == OBJ_KL_CONTROL_TOKEN || ppo;
    if ((kl && !ppo) || s->objective == OBJ_REINFORCE || s->objective == OBJ_FDPG) {
        s->obj.baseline = cfg_enum(&o, "baseline", BASELINES, COUNT(BASELINES), s->obj.baseline);
        s->obj.baseline_window =
            (int32_t)cfg_int(&o, "baseline_window", s->obj.baseline_window, 1, INT32_MAX);
    }
    if (kl) {
        s->obj.beta = cfg_double(&o, "beta", s->obj.beta, 0, INFINITY, CFG_LO_OPEN);
        s->obj.adaptive_beta = cfg_bool(&o, "adaptive_beta", s->obj.adaptive_beta);
        s->obj.kl_target = cfg_double(&o, "kl_target", s->obj.kl_target, 0, INFINITY, CFG_LO_OPEN);
        s->obj.kl_horizon =
            cfg_double(&o, "kl_horizon", s->obj.kl_horizon, 0, INFINITY, CFG_LO_OPEN);
    }
    if (s->objective == OBJ_KL_CONTROL_TOKEN || ppo)
        s->obj.gamma = cfg_double(&o, "gamma", s->obj.gamma, 0, 1, CFG_LO_OPEN);
    if (ppo) {
        s->obj.ppo_epochs = (int32_t)cfg_int(&o, "epochs", s->obj.ppo_epochs, 1, 1 << 20);
        s->obj.ppo_minibatches =
            (int32_t)cfg_int(&o, "minibatches", s->obj.ppo_minibatches, 1, 1 << 20);
        s->obj.ppo_clip = cfg_double(&o, "clip", s->obj.ppo_clip, 0, INFINITY, CFG_LO_OPEN);
        s->obj.ppo_value_clip = cfg_double(&o, "value_clip", s->obj.ppo_value_clip, 0, INFINITY, 0);
        s->obj.ppo_vf_coef = cfg_double(&o, "vf_coef", s->obj.ppo_vf_coef, 0, INFINITY, 0);
        s->obj.ppo_lambda = cfg_double(&o, "gae_lambda", s->obj.ppo_lambda, 0, 1, 0);
        s->obj.ppo_whiten_advantages =
            cfg_bool(&o, "whiten_advantages", s->obj.ppo_whiten_advantages);
        s->obj.ppo_whiten_rewards = cfg_bool(&o, "whiten_rewards", s->obj.ppo_whiten_rewards);
        s->obj.ppo_value_lr = cfg_double(&o, "value_lr", s->obj.ppo_value_lr, 0, INFINITY, 0);
    }
    if (s->objective == OBJ_FDPG)
        s->obj.divergence =
            1 + cfg_enum(&o, "divergence", DIVERGENCES, COUNT(DIVERGENCES), s->obj.divergence - 1);
    if (s->objective == OBJ_MLE) s->obj.token_mean = cfg_bool(&o, "token_mean", s->obj.token_mean);
    cfg_end(&o);

    /* What each kind needs from the rest of the configuration. */
    if (cfg_error(root->c)) return;
    int terms = s->n_constraints + s->n_moments + (s->has_reward && s->reward_beta > 0);
    if ((kl || s->objective == OBJ_REINFORCE) && !s->has_reward)
        cfg_fail(&o, "kind", "objective '%s' maximises a reward: add a 'reward' section",
                 OBJECTIVE_NAMES[s->objective]);
    else if (s->objective >= OBJ_DPG && s->objective <= OBJ_FDPG && terms == 0)
        cfg_fail(&o, "kind",
                 "objective '%s' matches a target: add 'target.constraints', 'target.moments' "
                 "or 'target.reward_beta' with a 'reward'",
                 OBJECTIVE_NAMES[s->objective]);
}

static void read_sampler(cfg_map *root, train_settings *s) {
    cfg_map m;
    cfg_section(root, "sampler", &m);
    klc_trainer_options *t = &s->tr;
    t->batch_size = (int32_t)cfg_int(&m, "batch_size", t->batch_size, 1, 1 << 20);
    t->micro_batch = (int32_t)cfg_int(&m, "micro_batch", t->micro_batch, 0, 1 << 20);
    t->max_len = (int32_t)cfg_int(&m, "max_len", t->max_len, 0, 1 << 20);
    t->max_new_tokens = (int32_t)cfg_int(&m, "max_new_tokens", t->max_new_tokens, 0, 1 << 20);
    s->sample_temperature = cfg_double(&m, "temperature", 1, 0, INFINITY, CFG_LO_OPEN);
    s->sample_top_k = (int32_t)cfg_int(&m, "top_k", 0, 0, INT32_MAX);
    s->sample_top_p = cfg_double(&m, "top_p", 1, 0, 1, CFG_LO_OPEN);
    cfg_end(&m);

    cfg_section(root, "proposal", &m);
    t->proposal = cfg_enum(&m, "kind", PROPOSALS, COUNT(PROPOSALS), t->proposal);
    t->proposal_period = (int32_t)cfg_int(&m, "period", t->proposal_period, 0, INT32_MAX);
    cfg_end(&m);

    cfg_section(root, "z", &m);
    t->z_period = (int32_t)cfg_int(&m, "period", t->z_period, 1, INT32_MAX);
    t->z_samples = (int32_t)cfg_int(&m, "samples", t->z_samples, 0, 1 << 20);
    cfg_end(&m);

    cfg_section(root, "eval", &m);
    t->eval_period = (int32_t)cfg_int(&m, "period", 10, 0, INT32_MAX);
    t->eval_samples = (int32_t)cfg_int(&m, "samples", t->eval_samples, 0, 1 << 20);
    t->diversity_period =
        (int32_t)cfg_int(&m, "diversity_period", t->diversity_period, 0, INT32_MAX);
    t->diversity_samples =
        (int32_t)cfg_int(&m, "diversity_samples", t->diversity_samples, 2, 1 << 20);
    t->diversity_top_p = cfg_double(&m, "diversity_top_p", t->diversity_top_p, 0, 1, CFG_LO_OPEN);
    t->grad_variance_period =
        (int32_t)cfg_int(&m, "grad_variance_period", t->grad_variance_period, 0, INT32_MAX);
    t->grad_variance_samples =
        (int32_t)cfg_int(&m, "grad_variance_samples", t->grad_variance_samples, 2, 1 << 20);
    cfg_end(&m);
}

static void read_optimizer(cfg_map *root, train_settings *s) {
    cfg_map m;
    cfg_section(root, "optimizer", &m);
    klc_optimizer_options *o = &s->opt;
    klc_optimizer_options_init(o, KLC_OPTIMIZER_OPTIONS_VERSION);
    o->kind = 1 + cfg_enum(&m, "kind", OPTIMIZERS, COUNT(OPTIMIZERS), o->kind - 1);
    o->lr = cfg_double(&m, "lr", 1e-4, 0, INFINITY, 0);
    if (o->kind != KLC_OPTIMIZER_SGD) {
        o->beta1 = cfg_double(&m, "beta1", o->beta1, 0, 1, CFG_HI_OPEN);
        o->beta2 = cfg_double(&m, "beta2", o->beta2, 0, 1, CFG_HI_OPEN);
        o->eps = cfg_double(&m, "eps", o->eps, 0, INFINITY, 0);
    }
    o->weight_decay = cfg_double(&m, "weight_decay", o->weight_decay, 0, INFINITY, 0);
    if (o->kind == KLC_OPTIMIZER_SGD) {
        o->momentum = cfg_double(&m, "momentum", o->momentum, 0, INFINITY, 0);
        o->dampening = cfg_double(&m, "dampening", o->dampening, 0, 1, 0);
        o->nesterov = cfg_bool(&m, "nesterov", o->nesterov);
    }
    o->clip_norm = cfg_double(&m, "clip_norm", 1.0, 0, INFINITY, 0);
    o->clip_value = cfg_double(&m, "clip_value", o->clip_value, 0, INFINITY, 0);
    o->schedule = cfg_enum(&m, "schedule", SCHEDULES, COUNT(SCHEDULES), o->schedule);
    o->warmup_steps = cfg_int(&m, "warmup_steps", o->warmup_steps, 0, INT64_MAX);
    o->total_steps = cfg_int(&m, "total_steps", 0, 0, INT64_MAX);
    o->min_lr = cfg_double(&m, "min_lr", o->min_lr, 0, INFINITY, 0);
    snprintf(m.note, sizeof m.note, "for kind '%s'", OPTIMIZERS[o->kind - 1]);
    cfg_end(&m);
}

/* "runs/<the config file's name without .yaml>" */
static const char *default_out_dir(char *buf, size_t cap, const char *config_label) {
    const char *base = strrchr(config_label, '/');
    base = base ? base + 1 : config_label;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".yaml"))
        len -= 5;
    else if (len > 4 && !strcmp(base + len - 4, ".yml"))
        len -= 4;
    snprintf(buf, cap, "runs/%.*s", (int)len, base);
    return buf;
}

int train_settings_read(cfg *c, train_settings *s) {
    memset(s, 0, sizeof *s);
    klc_trainer_options_init(&s->tr, KLC_TRAINER_OPTIONS_VERSION);
    cfg_map root, m;
    cfg_root(c, &root);
    s->model_dir = cfg_path(&root, "model", NULL, CFG_PATH_DIR, 1);
    s->tokenizer_dir = cfg_path(&root, "tokenizer", s->model_dir, CFG_PATH_DIR, 0);
    s->seed = (uint64_t)cfg_int(&root, "seed", 0, 0, INT64_MAX);
    s->tr.seed = s->seed;
    s->threads = (int32_t)cfg_int(&root, "threads", 0, 0, 1024);
    s->steps = cfg_int(&root, "steps", 100, 0, INT64_MAX);
    /* An absent reward is not recorded (an empty one would read back as present). */
    if (cfg_has(&root, "reward")) {
        cfg_section(&root, "reward", &m);
        s->has_reward = 1;
        read_feature(&m, &s->reward, 0);
    } else {
        cfg_allow(&root, "reward");
    }
    read_target(&root, s);
    read_objective(&root, s);
    read_sampler(&root, s);
    read_optimizer(&root, s);
    char dflt[512];
    cfg_section(&root, "output", &m);
    s->out_dir = cfg_string(&m, "dir", default_out_dir(dflt, sizeof dflt, cfg_label(c)), 0);
    s->log_period = (int32_t)cfg_int(&m, "log_period", 10, 1, INT32_MAX);
    s->n_samples = (int32_t)cfg_int(&m, "samples", 16, 0, 1 << 20);
    s->show_samples = (int32_t)cfg_int(&m, "show", 3, 0, 1 << 20);
    s->checkpoint_period = (int32_t)cfg_int(&m, "checkpoint_period", 0, 0, INT32_MAX);
    s->keep_last = (int32_t)cfg_int(&m, "keep_last", 3, 1, INT32_MAX);
    cfg_end(&m);
    cfg_end(&root);
    if (!cfg_error(c) && s->tr.proposal == KLC_PROPOSAL_KL_CHECK &&
        s->n_constraints + s->n_moments == 0 && s->reward_beta == 0) {
        cfg_section(&root, "proposal", &m);
        cfg_fail(&m, "kind",
                 "proposal 'kl_check' compares distances to a target: the "
                 "configuration has none");
    }
    if (!cfg_error(c) && s->tr.proposal != KLC_PROPOSAL_ON_POLICY &&
        (s->objective <= OBJ_KL_CONTROL_TOKEN || s->objective == OBJ_PPO)) {
        cfg_section(&root, "proposal", &m);
        cfg_fail(&m, "kind",
                 "objective '%s' learns from the policy's own samples: proposal "
                 "must be 'on_policy'",
                 OBJECTIVE_NAMES[s->objective]);
    }
    /* The steps of the schedule default to the run's. */
    if (s->opt.schedule != KLC_LR_CONSTANT && s->opt.total_steps == 0)
        s->opt.total_steps = s->steps;
    if (!cfg_error(c) && s->opt.schedule != KLC_LR_CONSTANT &&
        s->opt.total_steps <= s->opt.warmup_steps) {
        cfg_section(&root, "optimizer", &m);
        cfg_fail(&m, "warmup_steps",
                 "a decaying schedule needs more steps (%lld: optimizer.total_steps, or steps) "
                 "than optimizer.warmup_steps = %lld",
                 (long long)s->opt.total_steps, (long long)s->opt.warmup_steps);
    }
    return cfg_error(c) ? -1 : 0;
}
