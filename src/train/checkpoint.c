/* Writing checkpoints: the state gathered in memory first (so that an objective whose
 * state cannot be saved fails before any file exists), written into a temporary sibling
 * directory, synced, then renamed into place; finding the latest; pruning old ones. */
#include "checkpoint.h"
#include "io/atomic_file.h"
#include "io/state_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int klc_ckpt_parse_name(const char *name, int64_t *step) {
    const size_t plen = sizeof KLC_CKPT_PREFIX - 1;
    if (strncmp(name, KLC_CKPT_PREFIX, plen) != 0) return 0;
    int64_t v = 0;
    for (int i = 0; i < KLC_CKPT_STEP_DIGITS; i++) {
        const char c = name[plen + (size_t)i];
        if (c < '0' || c > '9') return 0;
        v = v * 10 + (c - '0');
    }
    if (name[plen + KLC_CKPT_STEP_DIGITS] != '\0') return 0;
    *step = v;
    return 1;
}

int klc_ckpt_z_alloc(klc_ckpt_z *z, const klc_alloc_ctx *alloc, int32_t n) {
    z->log_sum = klc_alloc(alloc, (size_t)n * sizeof(double));
    z->checks = klc_alloc(alloc, (size_t)n * sizeof(int64_t));
    z->n = n;
    if (z->log_sum && z->checks) return KLC_OK;
    klc_ckpt_z_free(z, alloc);
    return KLC_ERR_OUT_OF_MEMORY;
}

void klc_ckpt_z_free(klc_ckpt_z *z, const klc_alloc_ctx *alloc) {
    klc_free(alloc, z->log_sum, (size_t)z->n * sizeof(double));
    klc_free(alloc, z->checks, (size_t)z->n * sizeof(int64_t));
    z->log_sum = NULL;
    z->checks = NULL;
    z->n = 0;
}

static int path_join(char *buf, size_t cap, const char *a, const char *b) {
    int n = snprintf(buf, cap, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= cap)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s/%s: path too long", a, b);
    return KLC_OK;
}

int klc_ckpt_dir(const char *run_dir, char *buf, size_t cap) {
    return path_join(buf, cap, run_dir, KLC_CKPT_DIR);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The step directories under dir holding the file `marker`, sorted by step (ascending);
 * *out is malloc'd (NULL when there are none). */
static int list_steps(const char *dir, const char *marker, int64_t **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR) return KLC_OK;
        return klc_fail(KLC_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    }
    int64_t *steps = NULL;
    size_t n = 0, cap = 0;
    int status = KLC_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t step;
        if (!klc_ckpt_parse_name(e->d_name, &step)) continue;
        char path[KLC_CKPT_PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s/%s", dir, e->d_name, marker) >= (int)sizeof path ||
            !is_file(path))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *p = realloc(steps, cap * sizeof *p);
            if (!p) {
                status = klc_fail(KLC_ERR_OUT_OF_MEMORY, "%s: out of memory listing", dir);
                break;
            }
            steps = p;
        }
        steps[n++] = step;
    }
    closedir(d);
    if (status != KLC_OK) {
        free(steps);
        return status;
    }
    /* Insertion sort: a run keeps a handful of checkpoints. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && steps[j - 1] > steps[j]; j--) {
            int64_t t = steps[j];
            steps[j] = steps[j - 1];
            steps[j - 1] = t;
        }
    *out = steps;
    *n_out = n;
    return KLC_OK;
}

static int step_path(char *buf, size_t cap, const char *ckdir, int64_t step) {
    int n = snprintf(buf, cap, "%s/%s%0*lld", ckdir, KLC_CKPT_PREFIX, KLC_CKPT_STEP_DIGITS,
                     (long long)step);
    if (n < 0 || (size_t)n >= cap)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: checkpoint path too long", ckdir);
    return KLC_OK;
}

static int copy_out(char *out, size_t cap, const char *path, const char *fn) {
    const size_t len = strlen(path);
    if (!out || cap <= len)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: path_cap = %zu, the path needs %zu bytes",
                        fn, out ? cap : 0, len + 1);
    memcpy(out, path, len + 1);
    return KLC_OK;
}

int klc_checkpoint_latest(const char *run_dir, char *path_out, size_t path_cap) {
    static const char fn[] = "klc_checkpoint_latest";
    if (!run_dir || !path_out) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: NULL argument", fn);
    char ckdir[KLC_CKPT_PATH_MAX], path[KLC_CKPT_PATH_MAX];
    KLC_TRY(klc_ckpt_dir(run_dir, ckdir, sizeof ckdir));
    int64_t *steps;
    size_t n;
    KLC_TRY(list_steps(ckdir, KLC_CKPT_STATE_FILE, &steps, &n));
    if (n == 0) return klc_fail(KLC_ERR_NOT_FOUND, "%s: no checkpoint under %s", fn, ckdir);
    const int64_t last = steps[n - 1];
    free(steps);
    KLC_TRY(step_path(path, sizeof path, ckdir, last));
    return copy_out(path_out, path_cap, path, fn);
}

/* Removes a directory tree (checkpoints hold plain files, but a user may have added a
 * sub-directory). */
static int remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) return unlink(path) == 0 || errno == ENOENT ? KLC_OK : -1;
    struct dirent *e;
    int rc = KLC_OK;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char child[KLC_CKPT_PATH_MAX];
        if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) >= (int)sizeof child) {
            rc = -1;
            continue;
        }
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (remove_tree(child) != KLC_OK) rc = -1;
        } else if (unlink(child) != 0) {
            rc = -1;
        }
    }
    closedir(d);
    if (rmdir(path) != 0) rc = -1;
    return rc;
}

/* Removes the oldest checkpoints beyond keep_last, each renamed away from its final name
 * first so that a crash mid-removal never leaves a partial checkpoint that looks complete. */
static int prune(const char *ckdir, const char *marker, int32_t keep_last) {
    if (keep_last <= 0) return KLC_OK;
    int64_t *steps;
    size_t n;
    KLC_TRY(list_steps(ckdir, marker, &steps, &n));
    int status = KLC_OK;
    for (size_t i = 0; i + (size_t)keep_last < n && status == KLC_OK; i++) {
        char from[KLC_CKPT_PATH_MAX], to[KLC_CKPT_PATH_MAX];
        status = step_path(from, sizeof from, ckdir, steps[i]);
        if (status != KLC_OK) break;
        int k = snprintf(to, sizeof to, "%s/.removing-%s%0*lld-%ld", ckdir, KLC_CKPT_PREFIX,
                         KLC_CKPT_STEP_DIGITS, (long long)steps[i], (long)getpid());
        if (k < 0 || (size_t)k >= sizeof to)
            status = klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: path too long", ckdir);
        else if (rename(from, to) != 0)
            status = klc_fail(KLC_ERR_IO, "%s: cannot rename it away to remove it: %s", from,
                              strerror(errno));
        else if (remove_tree(to) != KLC_OK)
            status =
                klc_fail(KLC_ERR_IO, "%s: cannot remove it completely: %s", to, strerror(errno));
    }
    free(steps);
    if (status == KLC_OK) status = klc_fsync_dir(ckdir);
    return status;
}

/* --- Gathering the state ------------------------------------------------------------ */

/* Everything trainer_state.bin holds, in memory. */
typedef struct ckpt_state {
    klc_alloc_ctx *alloc;
    char *meta; /* JSON text (malloc'd by jansson) */
    void *opt_blob, *obj_blob;
    size_t opt_bytes, obj_bytes;
    klc_ckpt_z z;
    double *lambda;
    int32_t n_lambda;
    double target_beta;
    int has_target_beta;
    uint64_t policy_sum;
} ckpt_state;

static void state_free(ckpt_state *s) {
    free(s->meta);
    klc_free(s->alloc, s->opt_blob, s->opt_bytes);
    klc_free(s->alloc, s->obj_blob, s->obj_bytes);
    klc_free(s->alloc, s->lambda, (size_t)s->n_lambda * sizeof(double));
    klc_ckpt_z_free(&s->z, s->alloc);
}

static json_t *model_json(const klc_model *m) {
    klc_model_options mo;
    size_t np = 0;
    if (klc_model_get_options(m, &mo) != KLC_OK) return NULL;
    klc_model_params((klc_model *)m, &np);
    return json_pack("{s:i,s:i,s:i,s:i,s:i,s:I}", "n_layer", mo.n_layer, "n_head", mo.n_head,
                     "n_embd", mo.n_embd, "n_ctx", mo.n_ctx, "vocab_size", mo.vocab_size,
                     "n_params", (json_int_t)np);
}

static int build_meta(klc_trainer *t, ckpt_state *s, int z_current) {
    const klc_trainer_options *o = &t->o;
    klc_optimizer_options po;
    KLC_TRY(klc_optimizer_get_options(t->opt, &po));
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    json_t *target = json_null(), *z = json_null();
    if (t->target) {
        target = json_pack("{s:i,s:i,s:i,s:b}", "terms", klc_target_num_terms(t->target), "phi_dim",
                           klc_target_phi_dim(t->target), "num_lambda", s->n_lambda, "has_beta",
                           s->has_target_beta);
        z = json_pack("{s:i,s:b}", "contexts", klc_z_estimate_num_contexts(t->z), "current",
                      z_current);
    }
    json_t *root = json_pack(
        "{s:s,s:s,s:I,s:I,s:o,s:{s:s,s:I},s:{s:i,s:I,s:I},s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,"
        "s:s,s:i,s:i},s:o,s:o}",
        "format", KLC_CKPT_FORMAT, "library", klc_version_string(), "step", (json_int_t)t->step,
        "proposal_updates", (json_int_t)t->proposal_updates, "policy", model_json(t->policy),
        "objective", "name", klc_objective_name(t->obj), "state_bytes", (json_int_t)s->obj_bytes,
        "optimizer", "kind", po.kind, "n_params", (json_int_t)t->n_params, "steps",
        (json_int_t)klc_optimizer_steps(t->opt), "trainer", "batch_size", o->batch_size,
        "micro_batch", o->micro_batch, "max_len", t->max_len, "max_new_tokens", o->max_new_tokens,
        "proposal", o->proposal, "proposal_period", o->proposal_period, "z_period", o->z_period,
        "z_samples", o->z_samples, "seed", seed, "eval_period", o->eval_period, "eval_samples",
        o->eval_samples, "target", target, "z", z);
    if (!root) return klc_fail(KLC_ERR_OUT_OF_MEMORY, "klc_trainer_save_checkpoint: building meta");
    s->meta = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!s->meta) return klc_fail(KLC_ERR_OUT_OF_MEMORY, "klc_trainer_save_checkpoint: meta");
    return KLC_OK;
}

static int gather(klc_trainer *t, ckpt_state *s) {
    size_t np = 0;
    const float *params = klc_model_params(t->policy, &np);
    s->policy_sum = klc_sf_checksum(params, np * sizeof(float));
    KLC_TRY(klc_objective_save_state(t->obj, NULL, 0, &s->obj_bytes));
    if (s->obj_bytes) {
        s->obj_blob = klc_alloc(s->alloc, s->obj_bytes);
        if (!s->obj_blob) return KLC_ERR_OUT_OF_MEMORY;
        KLC_TRY(klc_objective_save_state(t->obj, s->obj_blob, s->obj_bytes, NULL));
    }
    s->opt_bytes = klc_optimizer_state_size(t->opt);
    s->opt_blob = klc_alloc(s->alloc, s->opt_bytes);
    if (!s->opt_blob) return KLC_ERR_OUT_OF_MEMORY;
    KLC_TRY(klc_optimizer_save_state(t->opt, s->opt_blob, s->opt_bytes, NULL));
    int z_current = 0;
    if (t->target) {
        KLC_TRY(klc_ckpt_z_alloc(&s->z, s->alloc, klc_z_estimate_num_contexts(t->z)));
        KLC_TRY(klc_z_estimate_get_state(t->z, s->z.n, s->z.log_sum, s->z.checks));
        z_current = klc_z_estimate_target_version(t->z) == klc_target_version(t->target);
        const int32_t nl = klc_target_num_lambda(t->target);
        if (nl > 0) {
            s->lambda = klc_alloc(s->alloc, (size_t)nl * sizeof(double));
            if (!s->lambda) return KLC_ERR_OUT_OF_MEMORY;
            s->n_lambda = nl;
            KLC_TRY(klc_target_get_lambda(t->target, s->lambda, (size_t)nl));
        }
        s->has_target_beta = klc_target_get_beta(t->target, &s->target_beta) == KLC_OK;
        klc_clear_error();
    }
    return build_meta(t, s, z_current);
}

static int write_state(klc_trainer *t, const ckpt_state *s, const char *path) {
    klc_sf_section sec[8];
    int32_t n = 0;
    sec[n++] = (klc_sf_section){KLC_SEC_META, s->meta, strlen(s->meta)};
    sec[n++] = (klc_sf_section){KLC_SEC_OPTIMIZER, s->opt_blob, s->opt_bytes};
    sec[n++] = (klc_sf_section){KLC_SEC_OBJECTIVE, s->obj_blob, s->obj_bytes};
    sec[n++] = (klc_sf_section){KLC_SEC_POLICY_SUM, &s->policy_sum, sizeof s->policy_sum};
    if (t->target) {
        const size_t nc = (size_t)s->z.n;
        sec[n++] = (klc_sf_section){KLC_SEC_Z_LOG_SUM, s->z.log_sum, nc * sizeof(double)};
        sec[n++] = (klc_sf_section){KLC_SEC_Z_CHECKS, s->z.checks, nc * sizeof(int64_t)};
        sec[n++] =
            (klc_sf_section){KLC_SEC_LAMBDA, s->lambda, (size_t)s->n_lambda * sizeof(double)};
        if (s->has_target_beta)
            sec[n++] = (klc_sf_section){KLC_SEC_TARGET_BETA, &s->target_beta, sizeof(double)};
    }
    if (t->q) {
        size_t np = 0;
        const float *q = klc_model_params(t->q, &np);
        sec[n++] = (klc_sf_section){KLC_SEC_PROPOSAL, q, np * sizeof(float)};
    }
    return klc_sf_write(path, sec, n, &t->alloc);
}

/* Moves the finished temporary directory to its final name: a plain rename, or an atomic
 * exchange with a checkpoint of the same step (then removed). */
static int publish(const char *tmp, const char *final) {
    if (rename(tmp, final) == 0) return KLC_OK;
    if (errno != EEXIST && errno != ENOTEMPTY)
        return klc_fail(KLC_ERR_IO, "%s: cannot rename '%s' into place: %s", final, tmp,
                        strerror(errno));
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) != 0)
        return klc_fail(KLC_ERR_IO, "%s: exists and cannot be replaced atomically: %s", final,
                        strerror(errno));
    remove_tree(tmp); /* now the old checkpoint */
    return KLC_OK;
}

int klc_ckpt_write(const char *run_dir, int64_t step, const char *marker, int32_t keep_last,
                   klc_ckpt_fill fill, void *ctx, char *final, size_t final_cap) {
    char ckdir[KLC_CKPT_PATH_MAX], tmp[KLC_CKPT_PATH_MAX];
    KLC_TRY(klc_ckpt_dir(run_dir, ckdir, sizeof ckdir));
    KLC_TRY(step_path(final, final_cap, ckdir, step));
    int status = klc_mkdir_p(ckdir);
    int made_tmp = 0;
    if (status == KLC_OK) {
        int k = snprintf(tmp, sizeof tmp, "%s/.tmp-%s%0*lld-XXXXXX", ckdir, KLC_CKPT_PREFIX,
                         KLC_CKPT_STEP_DIGITS, (long long)step);
        if (k < 0 || (size_t)k + 64 >= sizeof tmp || !mkdtemp(tmp))
            status = klc_fail(KLC_ERR_IO, "cannot create a temporary directory in %s: %s", ckdir,
                              strerror(errno));
        else
            made_tmp = 1;
    }
    if (status == KLC_OK && chmod(tmp, 0755) != 0)
        status = klc_fail(KLC_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (status == KLC_OK) status = fill(ctx, tmp);
    if (status == KLC_OK) status = klc_fsync_dir(tmp);
    if (status == KLC_OK) status = publish(tmp, final);
    if (status == KLC_OK) {
        made_tmp = 0;
        status = klc_fsync_dir(ckdir);
    }
    /* checkpoints/ itself may be new. */
    if (status == KLC_OK) status = klc_fsync_dir(run_dir);
    if (made_tmp) remove_tree(tmp);
    if (status != KLC_OK) return klc_fail_context(status, "step %lld: ", (long long)step);
    status = prune(ckdir, marker, keep_last);
    if (status != KLC_OK)
        return klc_fail_context(status, "%s was written, but pruning failed: ", final);
    return KLC_OK;
}

/* Fills a checkpoint directory: the policy's Hugging Face files, then the state file, whose
 * presence marks the checkpoint complete. */
typedef struct trainer_fill {
    klc_trainer *t;
    const ckpt_state *s;
} trainer_fill;

static int fill_trainer(void *ctx, const char *dir) {
    const trainer_fill *f = ctx;
    char file[KLC_CKPT_PATH_MAX];
    KLC_TRY(klc_model_save(f->t->policy, dir));
    KLC_TRY(path_join(file, sizeof file, dir, KLC_CKPT_STATE_FILE));
    return write_state(f->t, f->s, file);
}

int klc_trainer_save_checkpoint(klc_trainer *t, const char *run_dir, int32_t keep_last,
                                char *path_out, size_t path_cap) {
    static const char fn[] = "klc_trainer_save_checkpoint";
    if (!t || !run_dir || !*run_dir)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: NULL trainer or empty run_dir", fn);
    if (keep_last < 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: keep_last = %d must be >= 0", fn, keep_last);
    char ckdir[KLC_CKPT_PATH_MAX], final[KLC_CKPT_PATH_MAX];
    KLC_TRY(klc_ckpt_dir(run_dir, ckdir, sizeof ckdir));
    KLC_TRY(step_path(final, sizeof final, ckdir, t->step));
    if (path_out || path_cap) KLC_TRY(copy_out(path_out, path_cap, final, fn));

    klc_alloc_ctx alloc = t->alloc;
    ckpt_state s;
    memset(&s, 0, sizeof s);
    s.alloc = &alloc;
    int status = gather(t, &s);
    trainer_fill f = {t, &s};
    if (status == KLC_OK)
        status = klc_ckpt_write(run_dir, t->step, KLC_CKPT_STATE_FILE, keep_last, fill_trainer, &f,
                                final, sizeof final);
    state_free(&s);
    if (status != KLC_OK) return klc_fail_context(status, "%s: ", fn);
    return KLC_OK;
}
