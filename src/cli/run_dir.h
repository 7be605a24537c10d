/* A run's output directory and the checkpoints `klc pretrain` keeps in it:
 * DIR/checkpoints/step-NNNNNNNNNNNN/ with the model (config.json + model.safetensors) and
 * the optimizer's state (optimizer.state, klc_optimizer_save_state's blob), written and
 * pruned like the trainer's checkpoints (klc_ckpt_write): under a temporary name, then
 * renamed into place, so a crash never leaves a partial checkpoint under a final name. */
#ifndef KLC_CLI_RUN_DIR_H
#define KLC_CLI_RUN_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "klc.h"

/* Writes checkpoint `step` of the model and optimizer, then removes the oldest beyond
 * keep_last (0: keep all). path_out receives the checkpoint's directory. */
int run_dir_save_checkpoint(const char *dir, int64_t step, const klc_model *m,
                            const klc_optimizer *opt, int32_t keep_last, char *path_out,
                            size_t path_cap);

/* Restores the optimizer from a checkpoint directory's optimizer.state. */
int run_dir_load_optimizer(const char *checkpoint, klc_optimizer *opt);

#endif
