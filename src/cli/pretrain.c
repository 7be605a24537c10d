/* `klc pretrain`: maximum likelihood of a GPT-2 on text files, with held-out perplexity,
 * checkpoints and exact resume. Every random choice is keyed by (seed, step), so the run
 * is a pure function of its settings (and of the thread count, which orders the float
 * sums of the matrix products). */
#include "cli/pretrain.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/pretrain_data.h"
#include "cli/run_dir.h"
#include "cli/run_output.h"
#include "io/atomic_file.h"
#include "klc.h"

void pretrain_settings_init(pretrain_settings *s) {
    memset(s, 0, sizeof *s);
    s->n_layer = 4, s->n_embd = 256, s->n_head = 4, s->n_ctx = 128;
    s->dropout = 0.0, s->init_std = 0.02;
    s->unwrap_lines = 1;
    s->seq_len = 128, s->batch_size = 16, s->steps = 2500;
    s->lr = 1e-3, s->min_lr = 1e-4, s->weight_decay = 0.1;
    s->beta1 = 0.9, s->beta2 = 0.99, s->clip_norm = 1.0;
    s->warmup_steps = 100;
    s->seed = 1;
    s->log_period = 50, s->eval_period = 250, s->eval_tokens = 16384;
    s->checkpoint_period = 250, s->keep_last = 2;
    s->progress = 1;
}

static int fail(const char *what, int status) {
    fprintf(stderr, "klc pretrain: %s: %s: %s\n", what, klc_status_str(status), klc_last_error());
    return 1;
}

/* Held-out loss: consecutive windows (end-of-text token, then len - 1 tokens) over the
 * whole held-out stream, or its first max_tokens predictions. */
typedef struct heldout_result {
    double nats_per_token, perplexity, bits_per_byte;
    int64_t tokens;
} heldout_result;

static int score_heldout(klc_model *m, klc_tokenizer *tok, const pt_corpus *c, int32_t n_seq,
                         int32_t len, int64_t max_tokens, int32_t *tokens, heldout_result *out) {
    const int32_t eot = klc_tokenizer_eot_id(tok), per = len - 1;
    int64_t windows = (int64_t)(c->n / (size_t)per);
    if (max_tokens > 0 && windows > (max_tokens + per - 1) / per)
        windows = (max_tokens + per - 1) / per;
    int32_t lengths[n_seq];
    double lp[n_seq];
    double nats = 0, bytes = 0;
    for (int64_t w0 = 0; w0 < windows; w0 += n_seq) {
        int32_t k = (int32_t)(windows - w0 < n_seq ? windows - w0 : n_seq);
        for (int32_t i = 0; i < k; i++) {
            const int32_t *src = c->ids + (size_t)(w0 + i) * (size_t)per;
            tokens[(size_t)i * (size_t)len] = eot;
            memcpy(tokens + (size_t)i * (size_t)len + 1, src, (size_t)per * sizeof *tokens);
            lengths[i] = len;
            for (int32_t t = 0; t < per; t++) {
                const char *b;
                size_t nb = 0;
                if (src[t] != eot && klc_tokenizer_token_bytes(tok, src[t], &b, &nb) == KLC_OK)
                    bytes += (double)nb;
            }
        }
        klc_seqs s = {k, len, tokens, lengths, NULL, NULL};
        klc_forward_options fo;
        klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
        fo.seq_logprobs = lp;
        int status = klc_model_score(m, &s, &fo);
        if (status != KLC_OK) return status;
        for (int32_t i = 0; i < k; i++) nats -= lp[i];
    }
    out->tokens = windows * per;
    out->nats_per_token = out->tokens ? nats / (double)out->tokens : NAN;
    out->perplexity = exp(out->nats_per_token);
    out->bits_per_byte = bytes > 0 ? nats / bytes / log(2.0) : NAN;
    return KLC_OK;
}

static int validate(const pretrain_settings *s) {
    const char *bad = NULL;
    if (!s->tokenizer_dir)
        bad = "a tokenizer directory is required";
    else if (s->n_train_files < 1)
        bad = "at least one training file is required";
    else if (!s->out_dir)
        bad = "an output directory is required";
    else if (s->seq_len < 2 || s->seq_len > s->n_ctx)
        bad = "seq_len must be in 2..n_ctx";
    else if (s->batch_size < 1)
        bad = "batch_size must be >= 1";
    else if (s->steps < 1)
        bad = "steps must be >= 1";
    else if (s->log_period < 1)
        bad = "log_period must be >= 1";
    if (bad) fprintf(stderr, "klc pretrain: %s\n", bad);
    return bad ? 1 : 0;
}

int pretrain_run(const pretrain_settings *s) {
    if (validate(s)) return 1;
    int rc = 1, status;
    klc_tokenizer *tok = NULL;
    klc_model *m = NULL;
    klc_optimizer *opt = NULL;
    pt_corpus train = {0}, held = {0};
    int32_t *tokens = NULL;
    float *on = NULL, *sm = NULL;
    int32_t *lengths = NULL;
    double *lp = NULL;
    FILE *metrics = NULL;
    klc_metrics *mt = NULL;

    if ((status = klc_tokenizer_load(s->tokenizer_dir, NULL, &tok)) != KLC_OK)
        return fail("loading the tokenizer", status);
    const int32_t eot = klc_tokenizer_eot_id(tok);
    double t_load = now_seconds();
    if ((status = pt_corpus_load(tok, s->train_files, s->n_train_files, s->unwrap_lines, &train)) !=
        KLC_OK) {
        rc = fail("reading the training files", status);
        goto done;
    }
    if (s->n_heldout_files > 0 &&
        (status = pt_corpus_load(tok, s->heldout_files, s->n_heldout_files, s->unwrap_lines,
                                 &held)) != KLC_OK) {
        rc = fail("reading the held-out files", status);
        goto done;
    }
    if (train.n < (size_t)s->seq_len) {
        fprintf(stderr, "klc pretrain: the training files hold %zu tokens, fewer than seq_len %d\n",
                train.n, s->seq_len);
        goto done;
    }
    fprintf(stderr,
            "klc pretrain: %zu training tokens (%zu bytes, %zu window starts), %zu held-out "
            "tokens, encoded in %.1f s\n",
            train.n, train.bytes, train.n_starts, held.n, now_seconds() - t_load);

    const char *resume = s->resume_dir;
    int64_t step = 0;
    if (resume) {
        status = klc_model_load(resume, NULL, &m);
    } else if (s->init_dir) {
        status = klc_model_load(s->init_dir, NULL, &m);
    } else {
        klc_model_options mo;
        klc_model_options_init(&mo, KLC_MODEL_OPTIONS_VERSION);
        mo.n_layer = s->n_layer, mo.n_embd = s->n_embd, mo.n_head = s->n_head, mo.n_ctx = s->n_ctx;
        mo.vocab_size = klc_tokenizer_vocab_size(tok);
        mo.embd_pdrop = mo.attn_pdrop = mo.resid_pdrop = (float)s->dropout;
        mo.init_std = (float)s->init_std;
        mo.init_seed = s->seed;
        status = klc_model_create(&mo, &m);
    }
    if (status != KLC_OK) {
        rc = fail("making the model", status);
        goto done;
    }
    size_t n_params;
    klc_model_params(m, &n_params);
    klc_optimizer_options oo;
    klc_optimizer_options_init(&oo, KLC_OPTIMIZER_OPTIONS_VERSION);
    oo.kind = KLC_OPTIMIZER_ADAMW;
    oo.lr = s->lr, oo.min_lr = s->min_lr, oo.weight_decay = s->weight_decay;
    oo.beta1 = s->beta1, oo.beta2 = s->beta2, oo.clip_norm = s->clip_norm;
    oo.schedule = KLC_LR_COSINE, oo.warmup_steps = s->warmup_steps, oo.total_steps = s->steps;
    if ((status = klc_optimizer_create(&oo, n_params, &opt)) != KLC_OK) {
        rc = fail("making the optimizer", status);
        goto done;
    }
    if (resume) {
        if ((status = run_dir_load_optimizer(resume, opt)) != KLC_OK) {
            rc = fail("restoring the optimizer", status);
            goto done;
        }
        step = klc_optimizer_steps(opt);
        fprintf(stderr, "klc pretrain: resuming %s at step %lld\n", resume, (long long)step);
    }

    const int32_t B = s->batch_size, L = s->seq_len;
    tokens = malloc((size_t)B * (size_t)L * sizeof *tokens);
    on = malloc((size_t)B * (size_t)L * sizeof *on);
    sm = malloc((size_t)B * (size_t)L * sizeof *sm);
    lengths = malloc((size_t)B * sizeof *lengths);
    lp = malloc((size_t)B * sizeof *lp);
    if (!tokens || !on || !sm || !lengths || !lp) {
        fprintf(stderr, "klc pretrain: out of memory\n");
        goto done;
    }
    if ((status = klc_model_reserve(m, B, L, 1)) != KLC_OK) {
        rc = fail("reserving the model's buffers", status);
        goto done;
    }
    klc_model_options shape;
    klc_model_get_options(m, &shape);
    klc_memory_info mem;
    mem.version = KLC_MEMORY_INFO_VERSION;
    klc_model_memory(m, &mem);
    fprintf(stderr,
            "klc pretrain: GPT-2 %d layers x %d wide, vocabulary %d, %zu parameters; %.1f MiB "
            "for the model, %.1f MiB for AdamW; %d x %d tokens per step, %lld steps\n",
            shape.n_layer, shape.n_embd, shape.vocab_size, n_params,
            (double)mem.total_bytes / 1048576.0, (double)klc_optimizer_state_size(opt) / 1048576.0,
            B, L, (long long)s->steps);

    if ((status = klc_mkdir_p(s->out_dir)) != KLC_OK) {
        rc = fail("creating the output directory", status);
        goto done;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", s->out_dir);
    /* A resumed run replaces whatever the log holds after its checkpoint. */
    if (resume && metrics_truncate_after(path, step) != 0) {
        fprintf(stderr, "klc pretrain: cannot rewrite %s: %s\n", path, strerror(errno));
        goto done;
    }
    if ((status = klc_metrics_create(NULL, &mt)) != KLC_OK) {
        rc = fail("metrics", status);
        goto done;
    }
    if (!(metrics = fopen(path, resume ? "a" : "w"))) {
        fprintf(stderr, "klc pretrain: cannot write %s: %s\n", path, strerror(errno));
        goto done;
    }

    /* Mean loss per predicted token: every window predicts L - 1 tokens. */
    const float coef = 1.0f / (float)((size_t)B * (size_t)(L - 1));
    for (size_t i = 0; i < (size_t)B * (size_t)L; i++) on[i] = -coef, sm[i] = coef;
    for (int32_t i = 0; i < B; i++) lengths[i] = L;
    klc_seqs seqs = {B, L, tokens, lengths, NULL, NULL};
    klc_forward_options fo;
    klc_forward_options_init(&fo, KLC_FORWARD_OPTIONS_VERSION);
    fo.seq_logprobs = lp;
    if (s->dropout > 0) fo.flags = KLC_FORWARD_DROPOUT;
    klc_rng data;
    klc_rng_init(&data, s->seed, KLC_STREAM_DATA);
    klc_rng_init(&fo.dropout, s->seed, KLC_STREAM_DROPOUT);

    const double t0 = now_seconds();
    const int64_t first = step;
    progress bar;
    progress_start(&bar, first, s->steps, s->log_period);
    bar.tty = bar.tty && s->progress;
    while (step < s->steps) {
        const double t_step = now_seconds();
        data.step = fo.dropout.step = (uint64_t)step;
        pt_corpus_windows(&train, &data, B, L, eot, tokens);
        if ((status = klc_model_zero_grads(m)) != KLC_OK ||
            (status = klc_model_forward_backward(m, &seqs, &fo, on, sm)) != KLC_OK) {
            rc = fail("forward/backward", status);
            goto done;
        }
        klc_optimizer_report rep;
        rep.version = KLC_OPTIMIZER_REPORT_VERSION;
        if ((status = klc_optimizer_step_model(opt, m, &rep)) != KLC_OK) {
            rc = fail("the optimizer's update", status);
            goto done;
        }
        step++;
        double loss = 0;
        for (int32_t i = 0; i < B; i++) loss -= lp[i];
        loss /= (double)B * (double)(L - 1);
        const double dt = now_seconds() - t_step;
        klc_metrics_clear(mt);
        klc_metrics_set(mt, "step", (double)step);
        klc_metrics_set(mt, "loss", loss);
        klc_metrics_set(mt, "lr", rep.lr);
        klc_metrics_set(mt, "grad_norm", rep.grad_norm);
        klc_metrics_set(mt, "samples_per_s", B / dt);
        klc_metrics_set(mt, "tokens_per_s", (double)B * L / dt);
        klc_metrics_set(mt, "elapsed_s", now_seconds() - t0);
        if (held.n >= (size_t)L &&
            ((s->eval_period > 0 && step % s->eval_period == 0) || step == s->steps)) {
            heldout_result h;
            int64_t max_tokens = step == s->steps ? 0 : s->eval_tokens;
            if ((status = score_heldout(m, tok, &held, B, L, max_tokens, tokens, &h)) != KLC_OK) {
                rc = fail("scoring the held-out text", status);
                goto done;
            }
            klc_metrics_set(mt, "heldout.loss", h.nats_per_token);
            klc_metrics_set(mt, "heldout.perplexity", h.perplexity);
            klc_metrics_set(mt, "heldout.bits_per_byte", h.bits_per_byte);
            klc_metrics_set(mt, "heldout.tokens", (double)h.tokens);
            progress_break(&bar);
            fprintf(stderr,
                    "step %lld: held-out %.4f nats/token, perplexity %.2f, %.4f bits/byte "
                    "(%lld tokens)\n",
                    (long long)step, h.nats_per_token, h.perplexity, h.bits_per_byte,
                    (long long)h.tokens);
        }
        if (metrics_write_jsonl(metrics, mt) != 0) {
            fprintf(stderr, "klc pretrain: cannot write %s/metrics.jsonl\n", s->out_dir);
            goto done;
        }
        progress_update(&bar, step, mt);
        if (s->checkpoint_period > 0 && step % s->checkpoint_period == 0 && step < s->steps) {
            if ((status = run_dir_save_checkpoint(s->out_dir, step, m, opt, s->keep_last, path,
                                                  sizeof path)) != KLC_OK) {
                rc = fail("writing a checkpoint", status);
                goto done;
            }
            progress_break(&bar);
            fprintf(stderr, "checkpoint: %s\n", path);
        }
    }
    progress_break(&bar);
    snprintf(path, sizeof path, "%s/model", s->out_dir);
    if ((status = klc_model_save(m, path)) != KLC_OK ||
        (status = klc_tokenizer_save(tok, path)) != KLC_OK) {
        rc = fail("saving the model", status);
        goto done;
    }
    fprintf(stderr, "klc pretrain: %lld steps in %.0f s; model and tokenizer in %s\n",
            (long long)(step - first), now_seconds() - t0, path);
    rc = 0;
done:
    if (metrics) fclose(metrics);
    klc_metrics_destroy(mt);
    free(tokens), free(on), free(sm), free(lengths), free(lp);
    pt_corpus_free(&train), pt_corpus_free(&held);
    klc_optimizer_destroy(opt);
    klc_model_destroy(m);
    klc_tokenizer_destroy(tok);
    return rc;
}
