/* Reading a pretrain configuration into pretrain_settings; the defaults are the shipped
 * model's recipe (pretrain_settings_init). docs/configuration.md lists the keys. */
#include "cli/pretrain_config.h"

#include <math.h>

int pretrain_settings_read(cfg *c, pretrain_settings *s) {
    pretrain_settings_init(s);
    cfg_map root, m;
    cfg_root(c, &root);
    cfg_section(&root, "model", &m);
    s->init_dir = cfg_path(&m, "init", NULL, CFG_PATH_DIR, 0);
    s->n_layer = (int32_t)cfg_int(&m, "n_layer", s->n_layer, 1, 1024);
    s->n_embd = (int32_t)cfg_int(&m, "n_embd", s->n_embd, 1, 1 << 16);
    s->n_head = (int32_t)cfg_int(&m, "n_head", s->n_head, 1, 1024);
    s->n_ctx = (int32_t)cfg_int(&m, "n_ctx", s->n_ctx, 1, 1 << 16);
    s->dropout = cfg_double(&m, "dropout", s->dropout, 0, 1, CFG_HI_OPEN);
    s->init_std = cfg_double(&m, "init_std", s->init_std, 0, INFINITY, CFG_LO_OPEN);
    if (!cfg_error(c) && s->n_embd % s->n_head != 0)
        cfg_fail(&m, "n_head", "'model.n_head' = %d must divide 'model.n_embd' = %d", s->n_head,
                 s->n_embd);
    cfg_end(&m);
    s->tokenizer_dir = cfg_path(&root, "tokenizer", NULL, CFG_PATH_DIR, 1);
    cfg_section(&root, "data", &m);
    int n = 0;
    s->train_files = cfg_strings(&m, "train", CFG_PATH_FILE, 1, &n);
    s->n_train_files = n;
    s->heldout_files = cfg_strings(&m, "heldout", CFG_PATH_FILE, 0, &n);
    s->n_heldout_files = n;
    s->seq_len = (int32_t)cfg_int(&m, "seq_len", s->seq_len, 2, 1 << 16);
    s->unwrap_lines = cfg_bool(&m, "unwrap_lines", s->unwrap_lines);
    if (!cfg_error(c) && s->init_dir == NULL && s->seq_len > s->n_ctx)
        cfg_fail(&m, "seq_len", "'data.seq_len' = %d exceeds 'model.n_ctx' = %d", s->seq_len,
                 s->n_ctx);
    cfg_end(&m);
    s->batch_size = (int32_t)cfg_int(&root, "batch_size", s->batch_size, 1, 1 << 20);
    s->steps = cfg_int(&root, "steps", s->steps, 1, INT64_MAX);
    cfg_section(&root, "optimizer", &m);
    s->lr = cfg_double(&m, "lr", s->lr, 0, INFINITY, 0);
    s->min_lr = cfg_double(&m, "min_lr", s->min_lr, 0, INFINITY, 0);
    s->weight_decay = cfg_double(&m, "weight_decay", s->weight_decay, 0, INFINITY, 0);
    s->beta1 = cfg_double(&m, "beta1", s->beta1, 0, 1, CFG_HI_OPEN);
    s->beta2 = cfg_double(&m, "beta2", s->beta2, 0, 1, CFG_HI_OPEN);
    s->clip_norm = cfg_double(&m, "clip_norm", s->clip_norm, 0, INFINITY, 0);
    s->warmup_steps = cfg_int(&m, "warmup_steps", s->warmup_steps, 0, INT64_MAX);
    if (!cfg_error(c) && s->min_lr > s->lr)
        cfg_fail(&m, "min_lr", "'optimizer.min_lr' must not exceed 'optimizer.lr'");
    cfg_end(&m);
    s->seed = (uint64_t)cfg_int(&root, "seed", (int64_t)s->seed, 0, INT64_MAX);
    cfg_section(&root, "output", &m);
    s->out_dir = cfg_string(&m, "dir", NULL, 1);
    s->log_period = (int32_t)cfg_int(&m, "log_period", s->log_period, 1, INT32_MAX);
    s->eval_period = (int32_t)cfg_int(&m, "eval_period", s->eval_period, 0, INT32_MAX);
    s->eval_tokens = (int32_t)cfg_int(&m, "eval_tokens", s->eval_tokens, 0, INT32_MAX);
    s->checkpoint_period =
        (int32_t)cfg_int(&m, "checkpoint_period", s->checkpoint_period, 0, INT32_MAX);
    s->keep_last = (int32_t)cfg_int(&m, "keep_last", s->keep_last, 1, INT32_MAX);
    cfg_end(&m);
    cfg_end(&root);
    return cfg_error(c) ? -1 : 0;
}
