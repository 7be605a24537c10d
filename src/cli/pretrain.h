/* `klc pretrain`: maximum likelihood on text files, the loop behind the shipped base model.
 * The configuration layer fills pretrain_settings; pretrain_run does the rest. */
#ifndef KLC_CLI_PRETRAIN_H
#define KLC_CLI_PRETRAIN_H

#include <stdint.h>

typedef struct pretrain_settings {
    /* Model: init_dir (a Hugging Face GPT-2 directory to continue from) or, when NULL, a
     * new model of this shape with GPT-2's initialisation; the vocabulary is the
     * tokenizer's. */
    const char *init_dir;
    int32_t n_layer, n_embd, n_head, n_ctx;
    double dropout; /* embd, attn and resid dropout during pretraining */
    double init_std;
    /* Data: a byte-level BPE tokenizer directory (vocab.json + merges.txt) and UTF-8 text
     * files. Every file is encoded once and the files are joined with the end-of-text
     * token between them; training windows of seq_len + 1 tokens start at positions drawn
     * from klc_rng(seed, KLC_STREAM_DATA, step), so a run depends on nothing but the
     * settings and resumes exactly from its step. */
    const char *tokenizer_dir;
    int unwrap_lines; /* join hard-wrapped lines (pretrain_data.h) */
    const char *const *train_files;
    int32_t n_train_files;
    const char *const *heldout_files; /* held out: perplexity only */
    int32_t n_heldout_files;
    int32_t seq_len;    /* tokens per window (<= n_ctx) */
    int32_t batch_size; /* windows per step */
    int64_t steps;
    /* AdamW with linear warm-up then cosine decay to min_lr, clipping by global norm. */
    double lr, min_lr, weight_decay, beta1, beta2, clip_norm;
    int64_t warmup_steps;
    uint64_t seed;
    /* Output: out_dir/model (the final Hugging Face directory), out_dir/metrics.jsonl, and
     * checkpoints under out_dir/checkpoints every checkpoint_period steps (0: none), the
     * last keep_last kept. */
    const char *out_dir;
    int32_t log_period;        /* steps between metric lines */
    int32_t eval_period;       /* steps between held-out evaluations (0: end only) */
    int32_t eval_tokens;       /* held-out tokens scored per evaluation (0: all) */
    int32_t checkpoint_period; /* 0: final model only */
    int32_t keep_last;
    const char *resume_dir; /* a checkpoint to continue from, or NULL */
    int progress;           /* 1: a progress bar on a terminal; plain lines otherwise */
} pretrain_settings;

/* The defaults of the shipped model's recipe (data/models/README.md). */
void pretrain_settings_init(pretrain_settings *s);

/* Runs the whole pretraining; prints progress to stderr; returns the process exit
 * status (0 success, 1 failure with the error printed). */
int pretrain_run(const pretrain_settings *s);

#endif
