/* Checkpoint layout shared by writing (checkpoint.c) and reading (resume.c); the format
 * is documented in docs/checkpoints.md. */
#ifndef KLC_TRAIN_CHECKPOINT_H
#define KLC_TRAIN_CHECKPOINT_H

#include "trainer.h"

#define KLC_CKPT_DIR        "checkpoints"
#define KLC_CKPT_PREFIX     "step-"
#define KLC_CKPT_STATE_FILE "trainer_state.bin"
#define KLC_CKPT_FORMAT     "klc-trainer-state"
enum { KLC_CKPT_STEP_DIGITS = 12, KLC_CKPT_PATH_MAX = 4096 };

/* The sections of trainer_state.bin. */
#define KLC_SEC_META        "meta"          /* JSON: what the state belongs to */
#define KLC_SEC_OPTIMIZER   "optimizer"     /* klc_optimizer_save_state's blob */
#define KLC_SEC_OBJECTIVE   "objective"     /* klc_objective_save_state's blob */
#define KLC_SEC_Z_LOG_SUM   "z.log_sum"     /* float64 [contexts] */
#define KLC_SEC_Z_CHECKS    "z.checks"      /* int64 [contexts] */
#define KLC_SEC_LAMBDA      "target.lambda" /* float64 [num_lambda] */
#define KLC_SEC_TARGET_BETA "target.beta"   /* float64 [1], targets from a reward */
#define KLC_SEC_PROPOSAL    "proposal"      /* float32 [n_params], off-policy */
/* uint64: klc_sf_checksum of the policy's parameters, which model.safetensors holds. */
#define KLC_SEC_POLICY_SUM "policy.checksum"

/* The Z estimate's state as the state file holds it. */
typedef struct klc_ckpt_z {
    double *log_sum; /* [n] */
    int64_t *checks; /* [n] */
    int32_t n;
} klc_ckpt_z;

/* Arrays for n contexts (KLC_ERR_OUT_OF_MEMORY, nothing kept, on failure); free accepts a
 * zeroed struct. */
int klc_ckpt_z_alloc(klc_ckpt_z *z, const klc_alloc_ctx *alloc, int32_t n);
void klc_ckpt_z_free(klc_ckpt_z *z, const klc_alloc_ctx *alloc);

/* Whether name is "step-" followed by exactly 12 digits; *step receives the number. */
int klc_ckpt_parse_name(const char *name, int64_t *step);

/* Fills the directory `dir` with a checkpoint's files. */
typedef int (*klc_ckpt_fill)(void *ctx, const char *dir);

/* Writes checkpoint `step` as run_dir/checkpoints/step-NNNNNNNNNNNN/ (its path into final):
 * fill() writes the files into a temporary sibling directory, which is fsynced and renamed
 * into place (atomically replacing a checkpoint of the same step), so that a crash never
 * leaves a partial checkpoint under a final name; then the oldest checkpoints holding the
 * file `marker` beyond keep_last are removed (0: keep all). Shared by the trainer's
 * checkpoints (marker trainer_state.bin) and `klc pretrain`'s. */
int klc_ckpt_write(const char *run_dir, int64_t step, const char *marker, int32_t keep_last,
                   klc_ckpt_fill fill, void *ctx, char *final, size_t final_cap);

/* The run directory's checkpoints folder into buf. */
int klc_ckpt_dir(const char *run_dir, char *buf, size_t cap);

#endif
