/* The optimizer's internal state and the pieces its files share. */
#ifndef KLC_OPTIM_OPTIM_H
#define KLC_OPTIM_OPTIM_H

#include "core/internal.h"

/* The gradient norm is summed per chunk of this many elements and the chunks' sums are
 * added in index order, so the norm (and so every clipped update) has the same bits for
 * any thread count. Chunks are also the unit of parallel work in the update. */
#define KLC_OPTIM_CHUNK 16384

struct klc_optimizer {
    klc_alloc_ctx alloc;
    klc_optimizer_options opts; /* allocator field is NULL */
    size_t n;
    int64_t step; /* updates taken */
    /* Moments, n floats each: Adam kinds exp_avg and exp_avg_sq, SGD with momentum
     * momentum_buffer (in m), otherwise none. */
    float *m, *v;
    int32_t n_moments;
    /* Per-chunk partial sums of squares for the norm: [n_chunks][2] (raw gradient,
     * value-clipped gradient). */
    double *partials;
    size_t n_chunks;
};

/* Validates options; the message names the offending field. */
int klc_optimizer_check_options(const klc_optimizer_options *o);
/* The schedule's learning rate at update t, for validated options. */
double klc_optimizer_schedule_lr(const klc_optimizer_options *o, int64_t t);

/* The per-step constants of one update, rounded to float once, as PyTorch passes Python
 * scalars to float tensor operations. */
typedef struct klc_update_coefs {
    float clip_value; /* +inf when off */
    float clip_scale; /* 1 when not clipped by norm */
    float l2;         /* weight_decay added to the gradient (Adam, SGD); 0: skipped */
    /* Adam kinds */
    float decay; /* AdamW's 1 - lr * weight_decay; 1 for Adam */
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float step_size;  /* lr / (1 - beta1^t) */
    float bias2_sqrt; /* sqrt(1 - beta2^t) */
    float eps;
    /* SGD */
    float lr, momentum, one_minus_dampening;
    int first; /* the momentum buffer starts as this step's gradient */
    int nesterov;
} klc_update_coefs;

/* Sums of squares of g[0..n) as given (*raw) and clamped to [-clip, clip] (*clipped), in
 * double. clip may be +inf. */
void klc_optim_sumsq(const float *g, size_t n, float clip, double *raw, double *clipped);
/* One chunk of an Adam/AdamW update. */
void klc_optim_adam_chunk(float *p, float *m, float *v, const float *g, size_t n,
                          const klc_update_coefs *c);
/* One chunk of an SGD update; m is NULL without momentum. */
void klc_optim_sgd_chunk(float *p, float *m, const float *g, size_t n, const klc_update_coefs *c);

#endif
