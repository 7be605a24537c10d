/* Loading a checkpoint: everything is read, validated and staged first; the handles
 * change only once nothing can fail any more (the objective and the optimizer, which
 * validate their own blobs, go first, the objective rolled back if the optimizer refuses). */
#include "checkpoint.h"
#include "io/state_file.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What the checkpoint holds, staged in memory. */
typedef struct staged {
    const klc_alloc_ctx *alloc;
    const char *dir;
    klc_sf_file *f;
    json_t *meta;
    klc_model *policy; /* loaded from the checkpoint's Hugging Face files */
    void *opt_blob, *obj_blob, *obj_old;
    size_t opt_bytes, obj_bytes, obj_old_bytes;
    float *proposal;
    size_t proposal_count;
    klc_ckpt_z z;
    int z_current;
    double *lambda;
    size_t n_lambda;
    double target_beta;
    int has_target_beta;
    int64_t step, proposal_updates;
} staged;

static void staged_free(staged *s) {
    klc_sf_close(s->f);
    json_decref(s->meta);
    klc_model_destroy(s->policy);
    klc_free(s->alloc, s->opt_blob, s->opt_bytes);
    klc_free(s->alloc, s->obj_blob, s->obj_bytes);
    klc_free(s->alloc, s->obj_old, s->obj_old_bytes);
    klc_free(s->alloc, s->proposal, s->proposal_count * sizeof(float));
    klc_free(s->alloc, s->lambda, s->n_lambda * sizeof(double));
    klc_ckpt_z_free(&s->z, s->alloc);
}

static int mismatch(const staged *s, const char *what, long long saved, long long here) {
    return klc_fail(KLC_ERR_STATE,
                    "checkpoint %s does not fit this trainer: %s is %lld in the checkpoint, %lld "
                    "here",
                    s->dir, what, saved, here);
}

/* An integer of the meta JSON at group.key (group NULL: the top level). */
static int meta_int(const staged *s, const char *group, const char *key, long long *out) {
    json_t *g = group ? json_object_get(s->meta, group) : s->meta;
    json_t *v = json_is_object(g) ? json_object_get(g, key) : NULL;
    if (!json_is_integer(v))
        return klc_fail(KLC_ERR_FORMAT, "%s/%s: meta lacks the integer %s%s%s", s->dir,
                        KLC_CKPT_STATE_FILE, group ? group : "", group ? "." : "", key);
    *out = json_integer_value(v);
    return KLC_OK;
}

static int expect_int(const staged *s, const char *group, const char *key, long long here,
                      const char *what) {
    long long saved = 0;
    KLC_TRY(meta_int(s, group, key, &saved));
    return saved == here ? KLC_OK : mismatch(s, what, saved, here);
}

/* Reads a section of exactly `bytes` bytes (0 allowed) into dst, or fails naming it. */
static int read_exact(const staged *s, const char *name, void *dst, size_t bytes) {
    size_t size = 0;
    int32_t i = klc_sf_find(s->f, name, &size);
    if (i < 0)
        return klc_fail(KLC_ERR_FORMAT, "%s/%s: section '%s' is missing", s->dir,
                        KLC_CKPT_STATE_FILE, name);
    if (size != bytes)
        return klc_fail(KLC_ERR_FORMAT, "%s/%s: section '%s' has %zu bytes, %zu expected", s->dir,
                        KLC_CKPT_STATE_FILE, name, size, bytes);
    return bytes ? klc_sf_read(s->f, i, dst) : KLC_OK;
}

/* Reads a section of any size into a new buffer. */
static int read_blob(const staged *s, const char *name, void **out, size_t *bytes) {
    int32_t i = klc_sf_find(s->f, name, bytes);
    if (i < 0)
        return klc_fail(KLC_ERR_FORMAT, "%s/%s: section '%s' is missing", s->dir,
                        KLC_CKPT_STATE_FILE, name);
    if (*bytes == 0) return KLC_OK;
    *out = klc_alloc(s->alloc, *bytes);
    if (!*out) return KLC_ERR_OUT_OF_MEMORY;
    return klc_sf_read(s->f, i, *out);
}

static int read_meta(staged *s) {
    size_t bytes = 0;
    int32_t i = klc_sf_find(s->f, KLC_SEC_META, &bytes);
    if (i < 0 || bytes == 0 || bytes > (1u << 24))
        return klc_fail(KLC_ERR_FORMAT, "%s/%s: no valid meta section", s->dir,
                        KLC_CKPT_STATE_FILE);
    char *text = klc_alloc(s->alloc, bytes);
    if (!text) return KLC_ERR_OUT_OF_MEMORY;
    int status = klc_sf_read(s->f, i, text);
    if (status == KLC_OK) {
        json_error_t err;
        s->meta = json_loadb(text, bytes, 0, &err);
        if (!s->meta || !json_is_object(s->meta))
            status = klc_fail(KLC_ERR_FORMAT, "%s/%s: meta: %s", s->dir, KLC_CKPT_STATE_FILE,
                              s->meta ? "not an object" : err.text);
    }
    klc_free(s->alloc, text, bytes);
    if (status != KLC_OK) return status;
    json_t *format = json_object_get(s->meta, "format");
    if (!json_is_string(format) || strcmp(json_string_value(format), KLC_CKPT_FORMAT) != 0)
        return klc_fail(KLC_ERR_FORMAT, "%s/%s: meta.format is not '%s'", s->dir,
                        KLC_CKPT_STATE_FILE, KLC_CKPT_FORMAT);
    long long v = 0;
    KLC_TRY(meta_int(s, NULL, "step", &v));
    s->step = v;
    KLC_TRY(meta_int(s, NULL, "proposal_updates", &v));
    s->proposal_updates = v;
    if (s->step < 0 || s->proposal_updates < 0)
        return klc_fail(KLC_ERR_FORMAT, "%s/%s: negative step count", s->dir, KLC_CKPT_STATE_FILE);
    return KLC_OK;
}

/* The checkpoint's shapes and settings against the trainer's handles. */
static int check_fit(klc_trainer *t, staged *s) {
    klc_model_options mo;
    KLC_TRY(klc_model_get_options(t->policy, &mo));
    KLC_TRY(expect_int(s, "policy", "n_layer", mo.n_layer, "the policy's n_layer"));
    KLC_TRY(expect_int(s, "policy", "n_head", mo.n_head, "the policy's n_head"));
    KLC_TRY(expect_int(s, "policy", "n_embd", mo.n_embd, "the policy's n_embd"));
    KLC_TRY(expect_int(s, "policy", "n_ctx", mo.n_ctx, "the policy's n_ctx"));
    KLC_TRY(expect_int(s, "policy", "vocab_size", mo.vocab_size, "the policy's vocab_size"));
    KLC_TRY(expect_int(s, "policy", "n_params", t->n_params, "the policy's parameter count"));
    json_t *obj = json_object_get(s->meta, "objective");
    json_t *name = json_is_object(obj) ? json_object_get(obj, "name") : NULL;
    if (!json_is_string(name))
        return klc_fail(KLC_ERR_FORMAT, "%s/%s: meta lacks objective.name", s->dir,
                        KLC_CKPT_STATE_FILE);
    if (strcmp(json_string_value(name), klc_objective_name(t->obj)) != 0)
        return klc_fail(KLC_ERR_STATE,
                        "checkpoint %s does not fit this trainer: it was written with objective "
                        "'%s', this trainer has '%s'",
                        s->dir, json_string_value(name), klc_objective_name(t->obj));
    klc_optimizer_options po;
    KLC_TRY(klc_optimizer_get_options(t->opt, &po));
    KLC_TRY(expect_int(s, "optimizer", "kind", po.kind, "the optimizer kind (KLC_OPTIMIZER_*)"));
    KLC_TRY(expect_int(s, "trainer", "batch_size", t->o.batch_size, "batch_size"));
    KLC_TRY(expect_int(s, "trainer", "max_len", t->max_len, "max_len"));
    KLC_TRY(
        expect_int(s, "trainer", "proposal", t->o.proposal, "the proposal mode (KLC_PROPOSAL_*)"));
    KLC_TRY(expect_int(s, "trainer", "z_samples", t->o.z_samples, "z_samples"));
    json_t *target = json_object_get(s->meta, "target");
    if (json_is_null(target) != (t->target == NULL))
        return klc_fail(KLC_ERR_STATE,
                        "checkpoint %s does not fit this trainer: it was written %s a target, "
                        "this trainer has %s",
                        s->dir, t->target ? "without" : "with", t->target ? "one" : "none");
    if (t->target) {
        KLC_TRY(expect_int(s, "target", "num_lambda", klc_target_num_lambda(t->target),
                           "the target's number of lambda values"));
        KLC_TRY(expect_int(s, "target", "phi_dim", klc_target_phi_dim(t->target),
                           "the target's phi length"));
        KLC_TRY(expect_int(s, "z", "contexts", klc_z_estimate_num_contexts(t->z),
                           "the Z estimate's number of contexts"));
        double beta;
        const int here = klc_target_get_beta(t->target, &beta) == KLC_OK;
        klc_clear_error();
        json_t *hb = json_object_get(target, "has_beta");
        json_t *cur = json_object_get(json_object_get(s->meta, "z"), "current");
        if (!json_is_boolean(hb) || !json_is_boolean(cur))
            return klc_fail(KLC_ERR_FORMAT, "%s/%s: meta lacks target.has_beta or z.current",
                            s->dir, KLC_CKPT_STATE_FILE);
        if (json_is_true(hb) != here)
            return klc_fail(KLC_ERR_STATE,
                            "checkpoint %s does not fit this trainer: its target %s a reward "
                            "target (klc_target_from_reward), this one %s",
                            s->dir, here ? "is not" : "is", here ? "is" : "is not");
        s->has_target_beta = here;
        s->z_current = json_is_true(cur);
    }
    return KLC_OK;
}

/* The policy's files, which must hold the same shape. */
static int load_policy(klc_trainer *t, staged *s) {
    klc_model_options lo;
    KLC_TRY(klc_model_load(s->dir, t->o.allocator, &s->policy));
    KLC_TRY(klc_model_get_options(s->policy, &lo));
    size_t n = 0;
    klc_model_params(s->policy, &n);
    if ((int64_t)n != t->n_params)
        return mismatch(s, "the parameter count of model.safetensors", (long long)n,
                        (long long)t->n_params);
    /* model.safetensors has no checksum of its own: the state file holds one. */
    uint64_t want;
    KLC_TRY(read_exact(s, KLC_SEC_POLICY_SUM, &want, sizeof want));
    if (klc_sf_checksum(klc_model_params(s->policy, &n), n * sizeof(float)) != want)
        return klc_fail(KLC_ERR_FORMAT,
                        "%s/model.safetensors: the parameters differ from those the state was "
                        "saved with (corrupt, or replaced; checksum mismatch)",
                        s->dir);
    return KLC_OK;
}

static int read_sections(klc_trainer *t, staged *s) {
    KLC_TRY(read_blob(s, KLC_SEC_OPTIMIZER, &s->opt_blob, &s->opt_bytes));
    KLC_TRY(read_blob(s, KLC_SEC_OBJECTIVE, &s->obj_blob, &s->obj_bytes));
    if (t->target) {
        const int32_t nc = klc_z_estimate_num_contexts(t->z);
        KLC_TRY(klc_ckpt_z_alloc(&s->z, s->alloc, nc));
        KLC_TRY(read_exact(s, KLC_SEC_Z_LOG_SUM, s->z.log_sum, (size_t)nc * sizeof(double)));
        KLC_TRY(read_exact(s, KLC_SEC_Z_CHECKS, s->z.checks, (size_t)nc * sizeof(int64_t)));
        /* Validated by a scratch estimate, so that the real one cannot refuse later. */
        klc_z_estimate *scratch = NULL;
        KLC_TRY(klc_z_estimate_create(nc, t->o.allocator, &scratch));
        int st = klc_z_estimate_set_state(scratch, 1, nc, s->z.log_sum, s->z.checks);
        klc_z_estimate_destroy(scratch);
        if (st != KLC_OK)
            return klc_fail_context(KLC_ERR_FORMAT, "%s/%s: section z: ", s->dir,
                                    KLC_CKPT_STATE_FILE);
        s->n_lambda = (size_t)klc_target_num_lambda(t->target);
        if (s->n_lambda) {
            s->lambda = klc_alloc(s->alloc, s->n_lambda * sizeof(double));
            if (!s->lambda) return KLC_ERR_OUT_OF_MEMORY;
        }
        KLC_TRY(read_exact(s, KLC_SEC_LAMBDA, s->lambda, s->n_lambda * sizeof(double)));
        for (size_t i = 0; i < s->n_lambda; i++)
            if (!isfinite(s->lambda[i]))
                return klc_fail(KLC_ERR_FORMAT, "%s/%s: lambda[%zu] = %g is not finite", s->dir,
                                KLC_CKPT_STATE_FILE, i, s->lambda[i]);
        if (s->has_target_beta) {
            KLC_TRY(read_exact(s, KLC_SEC_TARGET_BETA, &s->target_beta, sizeof(double)));
            if (!(s->target_beta > 0) || !isfinite(s->target_beta))
                return klc_fail(KLC_ERR_FORMAT, "%s/%s: target beta = %g", s->dir,
                                KLC_CKPT_STATE_FILE, s->target_beta);
        }
    }
    if (t->q) {
        s->proposal_count = (size_t)t->n_params;
        s->proposal = klc_alloc(s->alloc, s->proposal_count * sizeof(float));
        if (!s->proposal) return KLC_ERR_OUT_OF_MEMORY;
        KLC_TRY(read_exact(s, KLC_SEC_PROPOSAL, s->proposal, s->proposal_count * sizeof(float)));
    }
    /* A snapshot of the objective's current state, to undo its load if the optimizer then
     * refuses its blob. */
    KLC_TRY(klc_objective_save_state(t->obj, NULL, 0, &s->obj_old_bytes));
    if (s->obj_old_bytes) {
        s->obj_old = klc_alloc(s->alloc, s->obj_old_bytes);
        if (!s->obj_old) return KLC_ERR_OUT_OF_MEMORY;
        KLC_TRY(klc_objective_save_state(t->obj, s->obj_old, s->obj_old_bytes, NULL));
    }
    return KLC_OK;
}

static int same_bits(const double *a, const double *b, size_t n) {
    return n == 0 || memcmp(a, b, n * sizeof *a) == 0;
}

/* Nothing below can fail but the two blob loads, which come first. */
static int commit(klc_trainer *t, staged *s) {
    KLC_TRY(klc_objective_load_state(t->obj, s->obj_blob, s->obj_bytes));
    int st = klc_optimizer_load_state(t->opt, s->opt_blob, s->opt_bytes);
    if (st != KLC_OK) {
        klc_objective_load_state(t->obj, s->obj_old, s->obj_old_bytes);
        return st;
    }
    size_t n = 0;
    memcpy(klc_model_params(t->policy, &n), klc_model_params(s->policy, &n),
           (size_t)t->n_params * sizeof(float));
    if (t->q) memcpy(klc_model_params(t->q, &n), s->proposal, s->proposal_count * sizeof(float));
    if (t->target) {
        /* Only a real change of P moves the target's version. */
        double now[64], *cur = s->n_lambda <= 64 ? now : NULL;
        int differs = 1;
        if (cur && klc_target_get_lambda(t->target, cur, s->n_lambda) == KLC_OK)
            differs = !same_bits(cur, s->lambda, s->n_lambda);
        if (s->n_lambda && differs) klc_target_set_lambda(t->target, s->lambda, s->n_lambda);
        double beta;
        if (s->has_target_beta && klc_target_get_beta(t->target, &beta) == KLC_OK &&
            !same_bits(&beta, &s->target_beta, 1))
            klc_target_set_beta(t->target, s->target_beta);
        /* Version 0 is never a target's: a Z estimate stale at the save stays stale. */
        const uint64_t v = s->z_current ? klc_target_version(t->target) : 0;
        klc_z_estimate_set_state(t->z, v, s->z.n, s->z.log_sum, s->z.checks);
    }
    t->step = s->step;
    t->proposal_updates = s->proposal_updates;
    klc_clear_error();
    return KLC_OK;
}

static int is_dir_with_state(const char *dir) {
    char p[KLC_CKPT_PATH_MAX];
    struct stat st;
    return snprintf(p, sizeof p, "%s/%s", dir, KLC_CKPT_STATE_FILE) < (int)sizeof p &&
           stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int klc_trainer_load_checkpoint(klc_trainer *t, const char *path) {
    static const char fn[] = "klc_trainer_load_checkpoint";
    if (!t || !path) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: NULL argument", fn);
    char dir[KLC_CKPT_PATH_MAX], file[KLC_CKPT_PATH_MAX];
    if (is_dir_with_state(path)) {
        if (strlen(path) >= sizeof dir)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: path too long", fn);
        strcpy(dir, path);
    } else {
        int st = klc_checkpoint_latest(path, dir, sizeof dir);
        if (st == KLC_ERR_NOT_FOUND)
            return klc_fail(KLC_ERR_NOT_FOUND,
                            "%s: %s is neither a checkpoint (no %s) nor a run directory with "
                            "checkpoints",
                            fn, path, KLC_CKPT_STATE_FILE);
        KLC_TRY(st);
    }
    int k = snprintf(file, sizeof file, "%s/%s", dir, KLC_CKPT_STATE_FILE);
    if (k < 0 || (size_t)k >= sizeof file)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: %s: path too long", fn, dir);
    klc_alloc_ctx alloc = t->alloc;
    staged s;
    memset(&s, 0, sizeof s);
    s.alloc = &alloc;
    s.dir = dir;
    int status = klc_sf_open(file, &alloc, &s.f);
    if (status == KLC_OK) status = read_meta(&s);
    if (status == KLC_OK) status = check_fit(t, &s);
    if (status == KLC_OK) status = load_policy(t, &s);
    if (status == KLC_OK) status = read_sections(t, &s);
    if (status == KLC_OK) status = commit(t, &s);
    staged_free(&s);
    return status == KLC_OK ? KLC_OK : klc_fail_context(status, "%s: ", fn);
}
