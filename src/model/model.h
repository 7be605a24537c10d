/* The model's internal layout: parameters as views into one block, the work buffers. */
#ifndef KLC_MODEL_MODEL_H
#define KLC_MODEL_MODEL_H

#include "core/internal.h"

/* Views of one block (parameters or gradients). Conv1D weights are [in, out] as Hugging
 * Face stores them; every product goes through CBLAS with that layout. */
typedef struct klc_layer_tensors {
    float *ln_1_w, *ln_1_b;               /* [C], [C] */
    float *c_attn_w, *c_attn_b;           /* [C, 3C], [3C] */
    float *attn_c_proj_w, *attn_c_proj_b; /* [C, C], [C] */
    float *ln_2_w, *ln_2_b;               /* [C], [C] */
    float *c_fc_w, *c_fc_b;               /* [C, 4C], [4C] */
    float *mlp_c_proj_w, *mlp_c_proj_b;   /* [4C, C], [C] */
} klc_layer_tensors;

typedef struct klc_model_tensors {
    float *wte;           /* [V, C], also the LM head */
    float *wpe;           /* [n_ctx, C] */
    klc_layer_tensors *h; /* [n_layer] */
    float *ln_f_w, *ln_f_b;
} klc_model_tensors;

/* Work buffers, planned from (n_seq, max_len, training) and grown only at call starts. */
typedef struct klc_workspace {
    float *block; /* one allocation; the capacity is acts->cap */
    size_t bytes;
    size_t activation_bytes, scratch_bytes;
    struct klc_activations *acts; /* views into block (model_forward.c) */
} klc_workspace;

/* Activations that decoding kept for the next fused forward/backward on the same batch
 * (KLC_SAMPLE_KEEP_ACTIVATIONS, keep.h). */
typedef enum { KLC_KEPT_NONE, KLC_KEPT_FILLING, KLC_KEPT_READY } klc_kept_state;
typedef struct klc_kept {
    klc_kept_state state;
    int32_t n_seq, stride; /* while filling: position t of sequence i is row i*stride + t */
    uint64_t params_hash;  /* of the parameters the activations were computed with */
    int64_t reuses;        /* forward/backward calls that used kept activations */
} klc_kept;

struct klc_model {
    klc_alloc_ctx alloc;
    klc_model_options cfg; /* allocator field is NULL */
    int32_t n_tensors;
    klc_tensor_info *tensors; /* names point into name_storage */
    char *name_storage;
    size_t name_storage_bytes;
    float *params;
    float *grads; /* NULL until first needed */
    size_t n_params;
    klc_model_tensors p, g;
    klc_workspace ws;
    /* The batch the kept activations belong to (for backward's checks). */
    int32_t fwd_n_seq, fwd_max_len;
    int fwd_valid;
    uint32_t fwd_flags;
    klc_rng fwd_dropout;
    /* Set during klc_model_prefill: the inference forward stores keys and values here. */
    klc_kv_cache *prefill_cache;
    klc_kept kept;
};

/* Validates a configuration; the message names the offending field. */
int klc_model_check_options(const klc_model_options *o);
/* A model with the given configuration and all parameters zero (for loaders). */
int klc_model_new_zeroed(const klc_model_options *o, const klc_allocator *allocator,
                         klc_model **out);
/* The number of tensors of a configuration and each one's name and shape, in block order:
 * wte, wpe, then per layer ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj
 * (weight then bias), then ln_f. */
int32_t klc_model_count_tensors(const klc_model_options *o);

#endif
