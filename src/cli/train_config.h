/* The settings of `klc train`, `klc eval` and `klc fit-target`, read from a configuration
 * (docs/configuration.md lists every key), and the engine built from them: models,
 * tokenizer, features, target, objective, optimizer and trainer. */
#ifndef KLC_CLI_TRAIN_CONFIG_H
#define KLC_CLI_TRAIN_CONFIG_H

#include <stdint.h>

#include "cli/config.h"
#include "klc.h"

enum {
    FEATURE_WORD,
    FEATURE_WORD_LIST,
    FEATURE_LEXICON,
    FEATURE_NAME_LIST,
    FEATURE_LENGTH,
    FEATURE_REGEX,
    N_FEATURE_KINDS
};

/* One built-in feature, as the configuration describes it. */
typedef struct feature_spec {
    int kind;         /* FEATURE_* */
    const char *name; /* NULL: the library's default name */
    const char *word, *pattern, *file;
    const char **words; /* word_list / name_list given inline */
    int n_words;
    int caseless;
    int aggregate;
    double default_value;
    double mean;   /* moment constraints: the wanted mean */
    double lambda; /* and the coefficient to start from (kept as is without a fit) */
} feature_spec;

#define MAX_TERMS 16

/* Objective kinds of the configuration, in its order (names in OBJECTIVE_NAMES). */
enum {
    OBJ_REINFORCE,
    OBJ_KL_CONTROL,
    OBJ_KL_CONTROL_TOKEN,
    OBJ_DPG,
    OBJ_GDC,
    OBJ_GDCPP,
    OBJ_FDPG,
    OBJ_MLE,
    OBJ_PPO,
    N_OBJECTIVES
};
extern const char *const OBJECTIVE_NAMES[N_OBJECTIVES];

typedef struct train_settings {
    const char *model_dir, *tokenizer_dir;
    /* target */
    feature_spec constraints[MAX_TERMS];
    int n_constraints;
    feature_spec moments[MAX_TERMS];
    int n_moments;
    int has_reward;
    feature_spec reward;
    double reward_beta;  /* > 0: the target includes exp(r / reward_beta) */
    int32_t fit_samples; /* 0: no fit, lambda as configured */
    klc_fit_options fit;
    /* objective */
    int objective; /* OBJ_* */
    klc_objective_options obj;
    /* sampling, proposal, Z, evaluation */
    klc_trainer_options tr;
    double sample_temperature, sample_top_p;
    int32_t sample_top_k;
    /* optimizer */
    klc_optimizer_options opt;
    int64_t steps;
    /* output */
    const char *out_dir;
    int32_t log_period, n_samples, show_samples, checkpoint_period, keep_last;
    int32_t threads;
    uint64_t seed;
} train_settings;

/* Reads every key of a train configuration into s. Returns 0, or -1 with cfg_error(c). */
int train_settings_read(cfg *c, train_settings *s);

/* The objects built from the settings. */
typedef struct engine {
    klc_model *policy, *base;
    klc_tokenizer *tok;
    klc_feature *features[2 * MAX_TERMS + 1];
    int n_features;
    klc_feature *reward; /* borrowed from features[] */
    klc_target *target;  /* NULL when the configuration has no target terms */
    klc_objective *objective;
    klc_optimizer *optimizer;
    klc_trainer *trainer;
} engine;

/* Loads the models (policy_dir NULL: the configuration's model) and the tokenizer, and
 * builds the features and the target. Sets the trainer options' end-of-text ids from the
 * tokenizer and max_len from the model when 0. Prints the error and returns -1 on
 * failure. */
int engine_load(engine *e, train_settings *s, const char *policy_dir);
/* Fits lambda of the target's moment constraints on fit_samples samples of the base model.
 * report may be NULL; residual (num_lambda) may be NULL. Returns the klc status. */
int engine_fit(engine *e, const train_settings *s, klc_fit_report *report);
/* The objective, optimizer and trainer (the reward feature goes into the trainer
 * options). Returns 0 or -1 (error printed). */
int engine_trainer(engine *e, train_settings *s);
void engine_free(engine *e);

/* Samples n texts from model (temperature, top-k, top-p of the settings), keyed by seed;
 * texts[i] are malloc'd NUL-terminated strings. Returns the klc status. */
int engine_sample_texts(klc_model *model, klc_tokenizer *tok, int32_t n, int32_t max_len,
                        double temperature, int32_t top_k, double top_p, uint64_t seed,
                        const char *prompt, char ***texts);
void engine_free_texts(char **texts, int32_t n);

/* Prints "klc <cmd>: <what>: <status>: <message>" and returns 1. */
int engine_report_error(const char *cmd, const char *what, int status);

#endif
