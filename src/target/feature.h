/* The feature handle and what the built-in features share. */
#ifndef KLC_TARGET_FEATURE_H
#define KLC_TARGET_FEATURE_H

#include "core/internal.h"

typedef int (*klc_score_fn)(void *self, const klc_seq_batch *seqs, double *out);
typedef void (*klc_release_fn)(void *self);

struct klc_feature {
    klc_alloc_ctx ac;
    char *name;
    int32_t dim;
    void *self;
    klc_score_fn score_batch;
    klc_release_fn release;
    /* Built-ins return a klc status with the message already set, which must reach the
     * caller as it is rather than as KLC_ERR_CALLBACK. */
    bool builtin;
};

/* Wraps a built-in's state in a handle. self is released (through release) if this
 * fails, so that a constructor never has to clean up twice. */
int klc_feature_wrap_builtin(const klc_alloc_ctx *ac, const char *name, int32_t dim,
                             klc_score_fn score, klc_release_fn release, void *self,
                             klc_feature **out);

/* Options with defaults filled in and every field checked; opts may be NULL. */
int klc_feature_opts_resolve(const klc_feature_options *opts, klc_feature_options *out);

/* The batch's layout is sound: struct_size, n, stride, lengths (and texts if present). */
int klc_seq_batch_check(const klc_seq_batch *seqs);
/* Fails when a checked batch has no texts (the caller prefixes the feature's name). */
int klc_seq_batch_need_texts(const klc_seq_batch *seqs);

#endif
