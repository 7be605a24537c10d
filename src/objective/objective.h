/* Internals shared by the objective files: the handle, view checking, the built-ins'
 * common state and their constructors. */
#ifndef KLC_OBJECTIVE_OBJECTIVE_H
#define KLC_OBJECTIVE_OBJECTIVE_H

#include "core/internal.h"

enum { KLC_OBJECTIVE_NAME_MAX = 64 };

struct klc_objective {
    klc_alloc_ctx alloc;
    klc_objective_ops ops; /* name points into `name` below */
    char name[KLC_OBJECTIVE_NAME_MAX];
    void *self;
    /* A built-in's kind (KLC_OBJECTIVE_*), 0 for a user's objective: built-ins return klc
     * statuses with their own messages, which pass through instead of becoming
     * KLC_ERR_CALLBACK. */
    int32_t builtin_kind;
    /* Work buffers reused across steps, grown at a call's start when a batch is larger than
     * any before (so steady-state steps allocate nothing): [0] coefficients and sample
     * ids of klc_objective_accumulate, [1] the weights of sequence-level objectives. */
    void *scratch[2];
    size_t scratch_bytes[2];
};

/* Scratch buffer `slot` of at least `bytes` bytes (contents undefined), or NULL with
 * KLC_ERR_OUT_OF_MEMORY set; a failed growth keeps the old buffer. */
void *klc_objective_scratch(klc_objective *obj, int slot, size_t bytes);

/* Checks `in` against the objective's needs and writes the view its callbacks see to
 * `out`: the current version, and on-policy steps' logpi (and logpi_tok) taken from logq
 * when absent. need_lengths asks for lengths and score_from to be checked as well. `fn`
 * names the public entry point in messages. */
int klc_view_prepare(const klc_objective *obj, const klc_step_view *in, int need_lengths,
                     const char *fn, klc_step_view *out);

/* The log Z estimate sequence i is normalised by (per context when the view has them). */
double klc_view_log_z(const klc_step_view *v, int32_t i);

/* The number of prompt tokens of sequence i (1 when the view has no score_from). */
static inline int32_t klc_view_from(const klc_step_view *v, int32_t i) {
    return v->score_from ? v->score_from[i] : 1;
}

/* The coefficients of L for a prepared view: on, sm [n_seq*max_len] receive m_i times the
 * objective's per-sequence coefficients (mass NULL: 1/N), zero where the model reads
 * nothing. w_out [n_seq] (may be NULL) receives the sequence weights, NaN for token-level
 * objectives. Fails without side effects on the objective's state. */
int klc_objective_coeffs(klc_objective *obj, const klc_step_view *v, const double *mass, float *on,
                         float *sm, double *w_out, const char *fn);

/* Converts a callback's non-zero return into the status the caller sees. */
int klc_objective_callback_status(const klc_objective *obj, int rc, const char *callback);

/* --- Built-ins ------------------------------------------------------------------------ */

/* A baseline that never sees the sample it is applied to. Values are grouped in slots (one
 * for sequence-level objectives, one per generated position for per-token ones); the
 * moving average pools the last `window` batches slot by slot. */
typedef struct klc_baseline {
    int32_t kind; /* KLC_BASELINE_NONE, _MOVING_AVERAGE or _LEAVE_ONE_OUT */
    int32_t window;
    int32_t n_slots;   /* slots allocated per batch */
    int32_t n_batches; /* batches held, <= window */
    int32_t next;      /* ring position of the next batch */
    double *sum;       /* [window * n_slots] */
    double *count;     /* [window * n_slots] */
} klc_baseline;

void klc_baseline_init(klc_baseline *b, int32_t kind, int32_t window);
void klc_baseline_free(klc_baseline *b, const klc_alloc_ctx *alloc);
/* The moving average of a slot over the batches held (0 when none has a value). */
double klc_baseline_mean(const klc_baseline *b, int32_t slot);
/* Records one batch as per-slot sums and counts [n_slots] (a no-op unless the kind is
 * the moving average). Grows the slots when needed; on failure nothing changes. */
int klc_baseline_push(klc_baseline *b, const klc_alloc_ctx *alloc, int32_t n_slots,
                      const double *slot_sum, const double *slot_count);

typedef struct klc_ppo klc_ppo; /* ppo.h */

/* The state every built-in shares. */
typedef struct klc_builtin {
    klc_alloc_ctx alloc;
    klc_objective_options o; /* validated; baseline resolved; allocator NULL */
    double beta;             /* KL-control's current beta */
    klc_baseline base;
    double *scratch; /* [scratch_len] per-call work space */
    size_t scratch_len;
    klc_ppo *ppo; /* PPO's value head and work buffers; NULL for the others */
} klc_builtin;

/* Work space of at least n doubles, kept between calls. */
double *klc_builtin_scratch(klc_builtin *s, size_t n);

/* The state hooks every built-in shares (builtin_state.c): beta and the baseline's ring,
 * in the blob layout of docs/checkpoints.md. */
int klc_builtin_save_state(void *self, void *buf, size_t capacity, size_t *needed);
int klc_builtin_load_state(void *self, const void *buf, size_t size);

/* Each family's ops; `self` is a klc_builtin. */
void klc_reinforce_ops(const klc_objective_options *o, klc_objective_ops *ops);
void klc_kl_control_ops(const klc_objective_options *o, klc_objective_ops *ops);
void klc_kl_token_ops(const klc_objective_options *o, klc_objective_ops *ops);
void klc_dpg_ops(const klc_objective_options *o, klc_objective_ops *ops);
void klc_fdpg_ops(const klc_objective_options *o, klc_objective_ops *ops);
void klc_mle_ops(const klc_objective_options *o, klc_objective_ops *ops);
void klc_ppo_ops(const klc_objective_options *o, klc_objective_ops *ops);

/* KL-control's per-token reward at generated position t of sequence i (t = lengths[i]-2
 * is the last): -beta (log pi_t - log a_t), plus r(x) on the last. */
static inline double klc_kl_token_reward(const klc_step_view *v, double beta, int32_t i,
                                         int32_t t) {
    const size_t k = (size_t)i * (size_t)v->max_len + (size_t)t;
    const double d = (double)v->logpi_tok[k] - (double)v->loga_tok[k];
    return -beta * d + (t == v->lengths[i] - 2 ? v->reward[i] : 0.0);
}

/* Ziegler's adaptive beta after a step of n sequences whose mean KL(pi||a) was kl, and
 * the step's metrics "kl" and "beta" (the value the step used). */
int klc_kl_adapt(klc_builtin *s, double kl, int32_t n, klc_metrics *m);

/* Leave-one-out means: out[i] = (sum_j v_j - v_i) / (n - 1) (0 when n = 1). */
void klc_leave_one_out(int32_t n, const double *v, double *out);

/* log(1 + exp(x)) without overflow. */
double klc_softplus(double x);
/* log(exp(a) + exp(b)), -inf when both are. */
double klc_logaddexp(double a, double b);

#endif
