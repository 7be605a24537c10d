/* Checkpoints: a run of 2N steps against N steps, a checkpoint, every handle destroyed and
 * made again from scratch, the checkpoint loaded and N more steps, which must give the
 * same bits; pruning; refusals of corrupt, truncated and mismatched checkpoints that
 * leave the trainer as it was; a failed write that leaves the previous checkpoint. */
#include "testutil.h"

#include "io/state_file.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* A vocabulary of 4 (token 3 is end-of-text) and at most 3 generated tokens. */
enum { V = 4, EOT = 3, GEN = 3, T = 1 + GEN, N_HALF = 7 };

/* "contains token 0" (0/1) or, with self set, "how many 0s". */
static int score_zeros(void *self, const klc_seq_batch *s, double *out) {
    for (int i = 0; i < s->n; i++) {
        int c = 0;
        for (int t = 0; t < s->lengths[i]; t++) c += s->ids[(size_t)i * s->stride + t] == 0;
        out[i] = self ? c : c > 0;
    }
    return 0;
}

/* RUN_MOMENT: GDC++ on-policy toward a moment target whose lambda changes at step
 * LAMBDA_STEP (as a refit would), so that a resume must restore lambda and carry the Z
 * estimate over to the target's new version. */
typedef enum { RUN_GDCPP, RUN_KL_CONTROL, RUN_KL_TOKEN, RUN_MOMENT, RUN_PPO } run_kind;
enum { LAMBDA_STEP = 3 };

/* Every handle of one run, made from scratch by run_make. */
typedef struct run {
    run_kind kind;
    klc_model *a, *pi;
    klc_feature *f;
    klc_target *target;
    klc_objective *obj;
    klc_optimizer *opt;
    klc_trainer *tr;
    klc_metrics *m;
} run;

static void run_make(run *r, run_kind kind, int n_embd) {
    static int count_tag;
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->a = tu_model(1, n_embd, 2, V, T, 0.2f, 2, NULL);
    r->pi = tu_model(1, n_embd, 2, V, T, 0.2f, 2, NULL);
    klc_objective_options oo;
    klc_objective_options_init(&oo, KLC_OBJECTIVE_OPTIONS_VERSION);
    klc_trainer_options to;
    klc_trainer_options_init(&to, KLC_TRAINER_OPTIONS_VERSION);
    to.batch_size = 16;
    to.max_len = T;
    to.max_new_tokens = GEN;
    to.eos_id = EOT;
    to.bos_id = EOT;
    to.seed = 11;
    to.eval_period = 4;
    to.eval_samples = 8;
    klc_optimizer_options po;
    klc_optimizer_options_init(&po, KLC_OPTIMIZER_OPTIONS_VERSION);
    if (kind == RUN_GDCPP) {
        klc_feature_ops ops = {KLC_FEATURE_OPS_VERSION, "has0", 1, score_zeros, NULL};
        ck_klc(klc_feature_create(&ops, NULL, NULL, &r->f));
        ck_klc(klc_target_create(r->a, NULL, &r->target));
        ck_klc(klc_target_add_pointwise(r->target, r->f));
        oo.kind = KLC_OBJECTIVE_GDCPP;
        to.proposal = KLC_PROPOSAL_KL_CHECK;
        to.proposal_period = 2;
        to.z_period = 3;
        po.kind = KLC_OPTIMIZER_ADAMW;
        po.lr = 0.05;
        po.weight_decay = 0.01;
        po.schedule = KLC_LR_COSINE;
        po.warmup_steps = 3;
        po.total_steps = 2 * N_HALF;
        po.min_lr = 0.005;
        po.clip_norm = 0.5;
    } else if (kind == RUN_MOMENT) {
        klc_feature_ops ops = {KLC_FEATURE_OPS_VERSION, "zeros", 1, score_zeros, NULL};
        ck_klc(klc_feature_create(&ops, &count_tag, NULL, &r->f));
        ck_klc(klc_target_create(r->a, NULL, &r->target));
        const double mu = 0.8;
        ck_klc(klc_target_add_moment(r->target, r->f, &mu));
        oo.kind = KLC_OBJECTIVE_GDCPP;
        to.z_period = 4;
        po.kind = KLC_OPTIMIZER_ADAM;
        po.lr = 0.05;
    } else {
        klc_feature_ops ops = {KLC_FEATURE_OPS_VERSION, "zeros", 1, score_zeros, NULL};
        ck_klc(klc_feature_create(&ops, &count_tag, NULL, &r->f));
        ck_klc(klc_target_from_reward(r->a, r->f, 1.0, NULL, &r->target));
        oo.kind = kind == RUN_KL_TOKEN ? KLC_OBJECTIVE_KL_CONTROL_TOKEN
                  : kind == RUN_PPO    ? KLC_OBJECTIVE_PPO
                                       : KLC_OBJECTIVE_KL_CONTROL;
        oo.baseline = kind == RUN_PPO ? KLC_BASELINE_NONE : KLC_BASELINE_MOVING_AVERAGE;
        oo.ppo_epochs = 2;
        oo.ppo_minibatches = 2;
        oo.baseline_window = 3;
        oo.beta = 0.5;
        oo.adaptive_beta = 1;
        oo.kl_target = 0.05;
        oo.kl_horizon = 100;
        po.kind = KLC_OPTIMIZER_ADAM;
        po.lr = 0.05;
    }
    ck_klc(klc_objective_builtin(&oo, &r->obj));
    size_t n = 0;
    klc_model_params(r->pi, &n);
    ck_klc(klc_optimizer_create(&po, n, &r->opt));
    ck_klc(klc_trainer_create(r->pi, r->a, r->target, r->obj, r->opt, NULL, &to, &r->tr));
    ck_klc(klc_metrics_create(NULL, &r->m));
}

static void run_free(run *r) {
    klc_trainer_destroy(r->tr);
    klc_metrics_destroy(r->m);
    klc_optimizer_destroy(r->opt);
    klc_objective_destroy(r->obj);
    klc_target_destroy(r->target);
    klc_feature_destroy(r->f);
    klc_model_destroy(r->pi);
    klc_model_destroy(r->a);
}

static void run_steps(run *r, int n) {
    for (int i = 0; i < n; i++) {
        if (r->kind == RUN_MOMENT && klc_trainer_steps(r->tr) == LAMBDA_STEP) {
            const double lambda = 0.7;
            ck_klc(klc_target_set_lambda(r->target, &lambda, 1));
        }
        ck_klc(klc_trainer_step(r->tr, r->m));
    }
}

/* Timings are the only metrics that may differ between two runs. */
static int is_timing(const char *name) {
    return strcmp(name, "step_time_s") == 0 || strcmp(name, "samples_per_s") == 0;
}

static void same_metrics(const klc_metrics *a, const klc_metrics *b) {
    ck_assert_int_eq(klc_metrics_count(a), klc_metrics_count(b));
    for (int32_t i = 0; i < klc_metrics_count(a); i++) {
        const char *na, *nb;
        double va, vb;
        ck_klc(klc_metrics_entry(a, i, &na, &va));
        ck_klc(klc_metrics_entry(b, i, &nb, &vb));
        ck_assert_str_eq(na, nb);
        if (is_timing(na)) continue;
        ck_assert_msg(memcmp(&va, &vb, sizeof va) == 0, "metric %s: %.17g vs %.17g", na, va, vb);
    }
}

static float *copy_params(klc_model *m, size_t *n) {
    const float *p = klc_model_params(m, n);
    float *c = malloc(*n * sizeof *c);
    memcpy(c, p, *n * sizeof *c);
    return c;
}

/* 2N steps straight against N, checkpoint, everything destroyed and made again, load, N. */
static void resume_is_exact(run_kind kind) {
    char *dir = tu_make_temp_dir("ckpt-exact");
    run r;
    run_make(&r, kind, 16);
    size_t n = 0;
    float *init = copy_params(r.pi, &n);
    run_steps(&r, 2 * N_HALF);
    size_t n2;
    float *straight = copy_params(r.pi, &n2);
    float *straight_q = copy_params(klc_trainer_proposal(r.tr), &n2);
    klc_metrics *last;
    ck_klc(klc_metrics_create(NULL, &last));
    for (int32_t i = 0; i < klc_metrics_count(r.m); i++) {
        const char *name;
        double v;
        ck_klc(klc_metrics_entry(r.m, i, &name, &v));
        ck_klc(klc_metrics_set(last, name, v));
    }
    const double beta_straight = klc_objective_beta(r.obj);
    run_free(&r);

    run_make(&r, kind, 16);
    run_steps(&r, N_HALF);
    /* The state this test relies on exists by now. */
    if (kind == RUN_GDCPP) {
        ck_assert_double_gt(klc_metrics_get(r.m, "proposal_updates"), 0);
        ck_assert_double_gt(klc_metrics_get(r.m, "z_checks"), 1);
    } else if (kind == RUN_MOMENT) {
        ck_assert_double_gt(klc_metrics_get(r.m, "z_checks"), 1); /* since the new lambda */
    } else {
        ck_assert_double_ne(klc_objective_beta(r.obj), 0.5);
        if (kind != RUN_PPO) ck_assert(isfinite(klc_metrics_get(r.m, "baseline")));
    }
    const double log_z_half = klc_trainer_log_z(r.tr);
    char path[4200];
    ck_klc(klc_trainer_save_checkpoint(r.tr, dir, 0, path, sizeof path));
    char want[4200];
    snprintf(want, sizeof want, "%s/checkpoints/step-%012d", dir, N_HALF);
    ck_assert_str_eq(path, want);
    run_free(&r);

    run_make(&r, kind, 16);
    ck_assert_int_eq(klc_trainer_steps(r.tr), 0);
    ck_klc(klc_trainer_load_checkpoint(r.tr, dir)); /* the run directory: its latest */
    ck_assert_int_eq(klc_trainer_steps(r.tr), N_HALF);
    /* PPO updates the policy epochs x minibatches times per step. */
    ck_assert_int_eq(klc_optimizer_steps(r.opt), N_HALF * (kind == RUN_PPO ? 4 : 1));
    const double log_z_loaded = klc_trainer_log_z(r.tr);
    ck_assert(memcmp(&log_z_half, &log_z_loaded, sizeof log_z_half) == 0);
    run_steps(&r, N_HALF);
    const float *resumed = klc_model_params(r.pi, &n2);
    ck_assert(memcmp(straight, resumed, n * sizeof(float)) == 0);
    ck_assert(memcmp(straight_q, klc_model_params(klc_trainer_proposal(r.tr), &n2),
                     n * sizeof(float)) == 0);
    ck_assert(memcmp(init, resumed, n * sizeof(float)) != 0); /* it did train */
    same_metrics(last, r.m);
    if (kind == RUN_KL_CONTROL || kind == RUN_KL_TOKEN || kind == RUN_PPO)
        ck_assert_double_eq(klc_objective_beta(r.obj), beta_straight);
    if (kind == RUN_MOMENT) {
        double lambda;
        ck_klc(klc_target_get_lambda(r.target, &lambda, 1));
        ck_assert_double_eq(lambda, 0.7);
    }
    printf("%s: %d + %d steps resumed bit for bit (%zu parameters, %d metrics; %s %.6g)\n",
           kind == RUN_GDCPP      ? "GDC++ off-policy"
           : kind == RUN_KL_TOKEN ? "KL-control per token"
           : kind == RUN_MOMENT   ? "GDC++ moment target, lambda changed at step 3"
           : kind == RUN_PPO      ? "PPO (value head, 2 epochs x 2 minibatches)"
                                  : "KL-control",
           N_HALF, N_HALF, n, klc_metrics_count(r.m),
           kind == RUN_GDCPP ? "proposal updates" : "beta",
           kind == RUN_GDCPP ? klc_metrics_get(r.m, "proposal_updates") : beta_straight);
    run_free(&r);
    klc_metrics_destroy(last);
    free(init);
    free(straight);
    free(straight_q);
    tu_remove_tree(dir);
    free(dir);
}

START_TEST(test_resume_gdcpp_off_policy) {
    resume_is_exact(RUN_GDCPP);
}
END_TEST

/* PPO's value head and its Adam state go through the objective's blob. */
START_TEST(test_resume_ppo) {
    resume_is_exact(RUN_PPO);
}
END_TEST

START_TEST(test_resume_moment_target) {
    resume_is_exact(RUN_MOMENT);
}
END_TEST

START_TEST(test_resume_kl_control) {
    resume_is_exact(RUN_KL_CONTROL);
}
END_TEST

/* Per-token baselines: one ring slot per generated position. */
START_TEST(test_resume_kl_control_token) {
    resume_is_exact(RUN_KL_TOKEN);
}
END_TEST

/* The names in dir, sorted, joined by spaces. */
static void list_dir(const char *dir, char *out, size_t cap) {
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.' || strlen(names[i]->d_name) > 2) {
            if (out[0]) strncat(out, " ", cap - strlen(out) - 1);
            strncat(out, names[i]->d_name, cap - strlen(out) - 1);
        }
        free(names[i]);
    }
    if (n >= 0) free(names);
}

START_TEST(test_keep_last_and_latest) {
    char *dir = tu_make_temp_dir("ckpt-prune");
    char path[4300], ckdir[4000], names[4096];
    ck_status(klc_checkpoint_latest(dir, path, sizeof path), KLC_ERR_NOT_FOUND, "no checkpoint");
    run r;
    run_make(&r, RUN_KL_CONTROL, 16);
    ck_status(klc_trainer_load_checkpoint(r.tr, dir), KLC_ERR_NOT_FOUND, "neither a checkpoint");
    for (int s = 1; s <= 4; s++) {
        run_steps(&r, 1);
        ck_klc(klc_trainer_save_checkpoint(r.tr, dir, 2, NULL, 0));
    }
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", dir);
    list_dir(ckdir, names, sizeof names);
    ck_assert_str_eq(names, "step-000000000003 step-000000000004");
    ck_klc(klc_checkpoint_latest(dir, path, sizeof path));
    ck_assert(strstr(path, "/checkpoints/step-000000000004") != NULL);
    ck_status(klc_checkpoint_latest(dir, path, 10), KLC_ERR_INVALID_ARGUMENT, "path_cap");
    /* Saving the same step again replaces it; keep_last 0 keeps everything. */
    ck_klc(klc_trainer_save_checkpoint(r.tr, dir, 0, NULL, 0));
    run_steps(&r, 1);
    ck_klc(klc_trainer_save_checkpoint(r.tr, dir, 0, NULL, 0));
    list_dir(ckdir, names, sizeof names);
    ck_assert_str_eq(names, "step-000000000003 step-000000000004 step-000000000005");
    /* Neither directories without a state file nor odd names are checkpoints. */
    snprintf(path, sizeof path, "%s/step-000000000009", ckdir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/step-0000000000010", ckdir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    ck_klc(klc_checkpoint_latest(dir, path, sizeof path));
    ck_assert(strstr(path, "step-000000000005") != NULL);
    run_free(&r);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

/* What a refused load must leave alone. */
typedef struct snapshot {
    float *params, *q;
    size_t n;
    unsigned char *opt, *obj;
    size_t opt_n, obj_n;
    int64_t step;
    double log_z;
} snapshot;

static void snap(run *r, snapshot *s) {
    s->params = copy_params(r->pi, &s->n);
    s->q = copy_params(klc_trainer_proposal(r->tr), &s->n);
    s->opt_n = klc_optimizer_state_size(r->opt);
    s->opt = malloc(s->opt_n);
    ck_klc(klc_optimizer_save_state(r->opt, s->opt, s->opt_n, NULL));
    ck_klc(klc_objective_save_state(r->obj, NULL, 0, &s->obj_n));
    s->obj = malloc(s->obj_n + 1);
    ck_klc(klc_objective_save_state(r->obj, s->obj, s->obj_n, NULL));
    s->step = klc_trainer_steps(r->tr);
    s->log_z = klc_trainer_log_z(r->tr);
}

static void unchanged(run *r, const snapshot *s) {
    snapshot now;
    snap(r, &now);
    ck_assert(memcmp(s->params, now.params, s->n * sizeof(float)) == 0);
    ck_assert(memcmp(s->q, now.q, s->n * sizeof(float)) == 0);
    ck_assert(s->opt_n == now.opt_n && memcmp(s->opt, now.opt, s->opt_n) == 0);
    ck_assert(s->obj_n == now.obj_n && memcmp(s->obj, now.obj, s->obj_n) == 0);
    ck_assert_int_eq(s->step, now.step);
    ck_assert(memcmp(&s->log_z, &now.log_z, sizeof s->log_z) == 0);
    free(now.params), free(now.q), free(now.opt), free(now.obj);
}

static void snap_free(snapshot *s) {
    free(s->params), free(s->q), free(s->opt), free(s->obj);
}

START_TEST(test_corrupt_and_mismatched_refused) {
    char *dir = tu_make_temp_dir("ckpt-bad");
    char ck[4200], file[4300];
    run r;
    run_make(&r, RUN_GDCPP, 16);
    run_steps(&r, 3);
    ck_klc(klc_trainer_save_checkpoint(r.tr, dir, 0, ck, sizeof ck));
    snprintf(file, sizeof file, "%s/trainer_state.bin", ck);
    size_t size;
    char *good = tu_read_file(file, &size);
    ck_assert_ptr_nonnull(good);
    run_steps(&r, 2); /* the trainer has moved on from the checkpoint */
    snapshot s;
    snap(&r, &s);

    /* A flipped byte in each region: header, section table, meta, the last section. */
    const size_t meta_at = 32 + 64 * (size_t)(unsigned char)good[12];
    const size_t where[4] = {2, 40, meta_at + 20, size - 5};
    const char *why[4] = {"wrong magic", "checksum", "checksum", "checksum"};
    for (int k = 0; k < 4; k++) {
        char *bad = malloc(size);
        memcpy(bad, good, size);
        bad[where[k]] ^= 0x10;
        ck_assert_int_eq(tu_write_file(file, bad, size), 0);
        ck_status(klc_trainer_load_checkpoint(r.tr, ck), KLC_ERR_FORMAT, why[k]);
        unchanged(&r, &s);
        free(bad);
    }
    /* Every byte of the header, the table and the meta, and a sample of the rest: any
     * changed byte is found. */
    int tried = 0;
    for (size_t at = 0; at < size; at += at < meta_at + 600 ? 1 : 61) {
        char *bad = malloc(size);
        memcpy(bad, good, size);
        bad[at] ^= (char)(1 << (at % 8));
        ck_assert_int_eq(tu_write_file(file, bad, size), 0);
        int st = klc_trainer_load_checkpoint(r.tr, ck);
        ck_assert_msg(st == KLC_ERR_FORMAT, "byte %zu flipped: %s: %s", at, klc_status_str(st),
                      klc_last_error());
        if (at % 64 == 0) unchanged(&r, &s);
        free(bad);
        tried++;
    }
    /* Truncated, at several places. */
    const size_t cut[3] = {10, 100, size / 2};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(tu_write_file(file, good, cut[k]), 0);
        ck_status(klc_trainer_load_checkpoint(r.tr, ck), KLC_ERR_FORMAT, "truncated");
        unchanged(&r, &s);
    }
    for (size_t len = 0; len < size; len += len < 700 ? 7 : 113) {
        ck_assert_int_eq(tu_write_file(file, good, len), 0);
        ck_assert_int_eq(klc_trainer_load_checkpoint(r.tr, ck), KLC_ERR_FORMAT);
        tried++;
    }
    unchanged(&r, &s);
    printf("corrupt state files: %d variants of %zu bytes refused\n", tried, size);
    /* A changed weight in model.safetensors. */
    ck_assert_int_eq(tu_write_file(file, good, size), 0);
    {
        char model_file[4300];
        snprintf(model_file, sizeof model_file, "%s/model.safetensors", ck);
        size_t msize;
        char *model = tu_read_file(model_file, &msize);
        model[msize - 7] ^= 0x01;
        ck_assert_int_eq(tu_write_file(model_file, model, msize), 0);
        ck_status(klc_trainer_load_checkpoint(r.tr, ck), KLC_ERR_FORMAT, "model.safetensors");
        unchanged(&r, &s);
        free(model);
    }
    /* A policy file of another shape under a valid state file. */
    ck_assert_int_eq(tu_write_file(file, good, size), 0);
    {
        klc_model *other = tu_model(1, 8, 2, V, T, 0.2f, 2, NULL);
        char model_dir[4300];
        snprintf(model_dir, sizeof model_dir, "%s", ck);
        ck_klc(klc_model_save(other, model_dir));
        ck_status(klc_trainer_load_checkpoint(r.tr, ck), KLC_ERR_STATE, "parameter count");
        unchanged(&r, &s);
        klc_model_destroy(other);
    }
    /* The trainer is still usable. */
    run_steps(&r, 1);
    ck_assert_int_eq(klc_trainer_steps(r.tr), 6);

    /* A checkpoint of another shape and one of another objective. */
    run o;
    run_make(&o, RUN_GDCPP, 8);
    run_steps(&o, 1);
    char *dir2 = tu_make_temp_dir("ckpt-other");
    ck_klc(klc_trainer_save_checkpoint(o.tr, dir2, 0, NULL, 0));
    snap_free(&s);
    snap(&r, &s);
    ck_status(klc_trainer_load_checkpoint(r.tr, dir2), KLC_ERR_STATE, "n_embd is 8");
    unchanged(&r, &s);
    run_free(&o);
    run_make(&o, RUN_KL_CONTROL, 16);
    run_steps(&o, 1);
    ck_klc(klc_trainer_save_checkpoint(o.tr, dir2, 0, NULL, 0));
    ck_status(klc_trainer_load_checkpoint(r.tr, dir2), KLC_ERR_STATE, "objective 'kl_control'");
    unchanged(&r, &s);
    run_free(&o);
    run_steps(&r, 1);

    snap_free(&s);
    run_free(&r);
    free(good);
    tu_remove_tree(dir);
    tu_remove_tree(dir2);
    free(dir);
    free(dir2);
}
END_TEST

/* A state file whose checksums hold but whose optimizer blob the optimizer refuses: the
 * objective, loaded first, is put back as it was. */
START_TEST(test_refused_optimizer_rolls_back_objective) {
    char *dir = tu_make_temp_dir("ckpt-rollback");
    char ck[4200], file[4300];
    run r;
    run_make(&r, RUN_KL_CONTROL, 16);
    run_steps(&r, 2);
    ck_klc(klc_trainer_save_checkpoint(r.tr, dir, 0, ck, sizeof ck));
    run_steps(&r, 3); /* the objective's state now differs from the checkpoint's */
    snprintf(file, sizeof file, "%s/trainer_state.bin", ck);

    /* Rewrite the file with a negative exp_avg_sq[0] and fresh checksums. */
    klc_alloc_ctx alloc;
    klc_alloc_ctx_init(&alloc, NULL);
    klc_sf_file *f;
    ck_klc(klc_sf_open(file, &alloc, &f));
    const char *names[9] = {"meta",      "optimizer", "objective",     "policy.checksum",
                            "z.log_sum", "z.checks",  "target.lambda", "target.beta",
                            NULL};
    klc_sf_section sec[8];
    void *bufs[8];
    int32_t n = 0;
    for (; names[n]; n++) {
        size_t size = 0;
        int32_t i = klc_sf_find(f, names[n], &size);
        ck_assert_int_ge(i, 0);
        bufs[n] = malloc(size ? size : 1);
        ck_klc(klc_sf_read(f, i, bufs[n]));
        sec[n] = (klc_sf_section){names[n], bufs[n], size};
    }
    klc_sf_close(f);
    size_t n_params = 0;
    klc_model_params(r.pi, &n_params);
    float bad = -1.0f;
    memcpy((char *)bufs[1] + 64 + n_params * sizeof(float), &bad, sizeof bad);
    ck_klc(klc_sf_write(file, sec, n, &alloc));
    for (int32_t k = 0; k < n; k++) free(bufs[k]);

    snapshot s;
    snap(&r, &s);
    ck_status(klc_trainer_load_checkpoint(r.tr, ck), KLC_ERR_FORMAT, "exp_avg_sq");
    unchanged(&r, &s);
    snap_free(&s);
    run_steps(&r, 1);
    run_free(&r);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

/* Writes fail once a file exceeds the size limit (the signal it raises is ignored). */
START_TEST(test_failed_write_keeps_previous) {
    char *dir = tu_make_temp_dir("ckpt-fail");
    char ck[4200], file[4300], names[4096], ckdir[4200];
    run r;
    run_make(&r, RUN_GDCPP, 16);
    run_steps(&r, 2);
    ck_klc(klc_trainer_save_checkpoint(r.tr, dir, 1, ck, sizeof ck));
    snprintf(file, sizeof file, "%s/trainer_state.bin", ck);
    size_t size;
    char *before = tu_read_file(file, &size);
    run_steps(&r, 1);

    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, small;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 4096;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    ck_status(klc_trainer_save_checkpoint(r.tr, dir, 1, NULL, 0), KLC_ERR_IO, "step 3");
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);

    /* The previous checkpoint is the latest and whole; nothing else is left behind. */
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", dir);
    list_dir(ckdir, names, sizeof names);
    ck_assert_str_eq(names, "step-000000000002");
    size_t size2;
    char *after = tu_read_file(file, &size2);
    ck_assert(size == size2 && memcmp(before, after, size) == 0);
    run o;
    run_make(&o, RUN_GDCPP, 16);
    ck_klc(klc_trainer_load_checkpoint(o.tr, dir));
    ck_assert_int_eq(klc_trainer_steps(o.tr), 2);
    run_free(&o);
    /* A run directory that cannot be created fails the same way. */
    snprintf(file, sizeof file, "%s/plain-file", dir);
    ck_assert_int_eq(tu_write_file(file, "x", 1), 0);
    ck_status(klc_trainer_save_checkpoint(r.tr, file, 1, NULL, 0), KLC_ERR_IO, "plain-file");
    run_free(&r);
    free(before);
    free(after);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

/* User objectives: hooks round-trip their state; state without hooks is refused. */
typedef struct counter {
    int64_t seen;
} counter;

static int ctr_weights(void *self, const klc_step_view *v, double *w) {
    (void)self;
    for (int32_t i = 0; i < v->n_seq; i++) w[i] = v->reward[i];
    return 0;
}

static int ctr_after(void *self, const klc_step_view *v, klc_metrics *m) {
    ((counter *)self)->seen += v->n_seq;
    return m ? klc_metrics_set(m, "seen", (double)((counter *)self)->seen) : 0;
}

static int ctr_save(void *self, void *buf, size_t cap, size_t *needed) {
    *needed = sizeof(int64_t);
    if (buf && cap >= sizeof(int64_t)) memcpy(buf, &((counter *)self)->seen, sizeof(int64_t));
    return 0;
}

static int ctr_load(void *self, const void *buf, size_t size) {
    if (size != sizeof(int64_t)) return 1;
    memcpy(&((counter *)self)->seen, buf, sizeof(int64_t));
    return 0;
}

START_TEST(test_user_objective_state) {
    counter c = {5}, d = {0};
    klc_objective_ops ops = {.version = KLC_OBJECTIVE_OPS_VERSION,
                             .name = "counter",
                             .needs = KLC_NEED_REWARD | KLC_NEED_ON_POLICY,
                             .weights = ctr_weights,
                             .after_step = ctr_after};
    klc_objective *obj;
    ck_klc(klc_objective_create(&ops, &c, NULL, &obj));
    size_t need = 99;
    ck_status(klc_objective_save_state(obj, NULL, 0, &need), KLC_ERR_UNSUPPORTED,
              "no save_state/load_state hooks");
    klc_objective_destroy(obj);
    ops.flags = KLC_OBJECTIVE_STATELESS;
    ck_klc(klc_objective_create(&ops, &c, NULL, &obj));
    ck_klc(klc_objective_save_state(obj, NULL, 0, &need));
    ck_assert_uint_eq(need, 0);
    klc_objective_destroy(obj);
    ops.flags = 0;
    ops.save_state = ctr_save;
    ck_status(klc_objective_create(&ops, &c, NULL, &obj), KLC_ERR_INVALID_ARGUMENT,
              "both or neither");
    ops.load_state = ctr_load;
    ck_klc(klc_objective_create(&ops, &c, NULL, &obj));
    klc_objective *obj2;
    ck_klc(klc_objective_create(&ops, &d, NULL, &obj2));
    unsigned char buf[8];
    ck_klc(klc_objective_save_state(obj, NULL, 0, &need));
    ck_assert_uint_eq(need, 8);
    ck_status(klc_objective_save_state(obj, buf, 4, NULL), KLC_ERR_INVALID_ARGUMENT, "8 bytes");
    ck_klc(klc_objective_save_state(obj, buf, sizeof buf, NULL));
    ck_klc(klc_objective_load_state(obj2, buf, sizeof buf));
    ck_assert_int_eq(d.seen, 5);
    ck_status(klc_objective_load_state(obj2, buf, 3), KLC_ERR_CALLBACK, "load_state");
    ck_assert_int_eq(d.seen, 5);
    klc_objective_destroy(obj);
    klc_objective_destroy(obj2);

    /* A trainer over an objective whose state cannot be saved writes nothing. */
    ops.save_state = NULL;
    ops.load_state = NULL;
    ck_klc(klc_objective_create(&ops, &c, NULL, &obj));
    klc_model *a = tu_model(1, 8, 2, V, T, 0.2f, 2, NULL),
              *pi = tu_model(1, 8, 2, V, T, 0.2f, 2, NULL);
    klc_feature *f;
    klc_feature_ops fops = {KLC_FEATURE_OPS_VERSION, "zeros", 1, score_zeros, NULL};
    ck_klc(klc_feature_create(&fops, &c, NULL, &f));
    klc_optimizer *opt;
    size_t n;
    klc_model_params(pi, &n);
    klc_optimizer_options po;
    klc_optimizer_options_init(&po, KLC_OPTIMIZER_OPTIONS_VERSION);
    ck_klc(klc_optimizer_create(&po, n, &opt));
    klc_trainer_options to;
    klc_trainer_options_init(&to, KLC_TRAINER_OPTIONS_VERSION);
    to.batch_size = 4;
    to.max_len = T;
    to.eos_id = EOT;
    to.bos_id = EOT;
    to.reward = f;
    klc_trainer *tr;
    ck_klc(klc_trainer_create(pi, a, NULL, obj, opt, NULL, &to, &tr));
    ck_klc(klc_trainer_step(tr, NULL));
    char *dir = tu_make_temp_dir("ckpt-user");
    ck_status(klc_trainer_save_checkpoint(tr, dir, 0, NULL, 0), KLC_ERR_UNSUPPORTED, "'counter'");
    char path[4200];
    ck_status(klc_checkpoint_latest(dir, path, sizeof path), KLC_ERR_NOT_FOUND, "no checkpoint");
    klc_trainer_destroy(tr);
    klc_optimizer_destroy(opt);
    klc_objective_destroy(obj);
    klc_feature_destroy(f);
    klc_model_destroy(a);
    klc_model_destroy(pi);
    tu_remove_tree(dir);
    free(dir);
}
END_TEST

/* Every built-in's blob round-trips to the same bytes; blobs that do not fit are refused
 * and leave the objective as it was. */
START_TEST(test_builtin_state_blobs) {
    for (int32_t kind = KLC_OBJECTIVE_REINFORCE; kind <= KLC_OBJECTIVE_PPO; kind++) {
        klc_objective_options oo;
        klc_objective_options_init(&oo, KLC_OBJECTIVE_OPTIONS_VERSION);
        oo.kind = kind;
        oo.baseline_window = 3;
        oo.beta = 0.25;
        klc_objective *a, *b;
        ck_klc(klc_objective_builtin(&oo, &a));
        ck_klc(klc_objective_builtin(&oo, &b));
        size_t na, nb;
        ck_klc(klc_objective_save_state(a, NULL, 0, &na));
        /* The header alone before any step (and PPO's part without a value head). */
        ck_assert_uint_eq(na, kind == KLC_OBJECTIVE_PPO ? 72 : 56);
        unsigned char *ba = malloc(na), *bb = malloc(na);
        ck_klc(klc_objective_save_state(a, ba, na, NULL));
        ck_klc(klc_objective_load_state(b, ba, na));
        ck_klc(klc_objective_save_state(b, bb, na, &nb));
        ck_assert(nb == na && memcmp(ba, bb, na) == 0);
        /* A wrong magic, a truncated blob, another window, another kind. */
        ba[0] ^= 1;
        ck_status(klc_objective_load_state(b, ba, na), KLC_ERR_FORMAT, "magic");
        ba[0] ^= 1;
        ck_status(klc_objective_load_state(b, ba, na - 1), KLC_ERR_FORMAT, "header");
        klc_objective *c;
        oo.baseline_window = 4;
        ck_klc(klc_objective_builtin(&oo, &c));
        ck_status(klc_objective_load_state(c, ba, na), KLC_ERR_FORMAT, "baseline_window 3");
        klc_objective_destroy(c);
        oo.baseline_window = 3;
        oo.kind = kind == KLC_OBJECTIVE_MLE ? KLC_OBJECTIVE_DPG : KLC_OBJECTIVE_MLE;
        ck_klc(klc_objective_builtin(&oo, &c));
        ck_status(klc_objective_load_state(c, ba, na), KLC_ERR_FORMAT, "kind");
        klc_objective_destroy(c);
        free(ba), free(bb);
        klc_objective_destroy(a);
        klc_objective_destroy(b);
    }
    /* The Z estimate refuses an impossible state and keeps its own. */
    klc_z_estimate *z;
    ck_klc(klc_z_estimate_create(2, NULL, &z));
    ck_klc(klc_z_estimate_add(z, 3, 1, -0.5));
    double ls[2] = {0.1, -INFINITY};
    int64_t ch[2] = {0, 0};
    ck_status(klc_z_estimate_set_state(z, 3, 2, ls, ch), KLC_ERR_INVALID_ARGUMENT, "context 0");
    ck_status(klc_z_estimate_set_state(z, 3, 1, ls, ch), KLC_ERR_INVALID_ARGUMENT, "2 contexts");
    ck_assert_double_eq(klc_z_estimate_log_z(z, 1), -0.5);
    ch[0] = 4;
    ck_klc(klc_z_estimate_set_state(z, 9, 2, ls, ch));
    ck_assert_double_eq(klc_z_estimate_log_z(z, 0), 0.1 - log(4.0));
    ck_assert(isnan(klc_z_estimate_log_z(z, 1)));
    ck_assert_uint_eq(klc_z_estimate_target_version(z), 9);
    klc_z_estimate_destroy(z);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("resume");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_resume_gdcpp_off_policy);
    tcase_add_test(tc, test_resume_kl_control);
    tcase_add_test(tc, test_resume_moment_target);
    tcase_add_test(tc, test_resume_ppo);
    tcase_add_test(tc, test_resume_kl_control_token);
    tcase_add_test(tc, test_keep_last_and_latest);
    tcase_add_test(tc, test_corrupt_and_mismatched_refused);
    tcase_add_test(tc, test_refused_optimizer_rolls_back_objective);
    tcase_add_test(tc, test_failed_write_keeps_previous);
    tcase_add_test(tc, test_user_objective_state);
    tcase_add_test(tc, test_builtin_state_blobs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return tu_run_suite(suite());
}
