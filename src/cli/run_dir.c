/* Checkpoints of `klc pretrain` (run_dir.h), written by the library's checkpoint directory
 * mechanism (src/train/checkpoint.h) with the optimizer's state as their marker file. */
#include "cli/run_dir.h"

#include <stdio.h>

#include "core/internal.h"
#include "io/atomic_file.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"

#define OPTIMIZER_FILE "optimizer.state"

typedef struct pretrain_fill {
    const klc_model *m;
    const klc_optimizer *opt;
} pretrain_fill;

/* The model's Hugging Face files, then the optimizer's blob, which marks the checkpoint
 * complete. */
static int fill(void *ctx, const char *dir) {
    const pretrain_fill *f = ctx;
    KLC_TRY(klc_model_save(f->m, dir));
    klc_alloc_ctx ac;
    klc_alloc_ctx_init(&ac, NULL);
    size_t size = klc_optimizer_state_size(f->opt);
    void *blob = klc_alloc(&ac, size);
    if (!blob) return klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory saving the optimizer");
    char file[4200];
    snprintf(file, sizeof file, "%s/" OPTIMIZER_FILE, dir);
    int status = klc_optimizer_save_state(f->opt, blob, size, NULL);
    if (status == KLC_OK) status = klc_atomic_write_file(file, blob, size, &ac);
    klc_free(&ac, blob, size);
    return status;
}

int run_dir_save_checkpoint(const char *dir, int64_t step, const klc_model *m,
                            const klc_optimizer *opt, int32_t keep_last, char *path_out,
                            size_t path_cap) {
    pretrain_fill f = {m, opt};
    return klc_ckpt_write(dir, step, OPTIMIZER_FILE, keep_last, fill, &f, path_out, path_cap);
}

int run_dir_load_optimizer(const char *checkpoint, klc_optimizer *opt) {
    char file[4200];
    snprintf(file, sizeof file, "%s/" OPTIMIZER_FILE, checkpoint);
    klc_alloc_ctx ac;
    klc_alloc_ctx_init(&ac, NULL);
    char *blob;
    size_t size;
    KLC_TRY(klc_tok_read_file(&ac, file, &blob, &size));
    int status = klc_optimizer_load_state(opt, blob, size);
    klc_free(&ac, blob, size + 1);
    return status;
}
