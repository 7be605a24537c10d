/* The sampler's internals: the memory planned at creation for one sampling call. */
#ifndef KLC_SAMPLER_SAMPLER_H
#define KLC_SAMPLER_SAMPLER_H

#include "batch.h"
#include "select.h"

struct klc_sampler {
    klc_alloc_ctx alloc;
    klc_model *model; /* borrowed */
    klc_kv_cache *cache;
    int32_t vocab, n_ctx;
    int32_t max_rows, max_len, max_prompt_len;
    int32_t threads;         /* scratch sets planned; calls with more threads set are refused */
    float *logits;           /* [max_rows * vocab], reused by every step */
    klc_cand *cands;         /* [threads * vocab] */
    float *work;             /* [threads * work_stride] */
    size_t work_stride;      /* klc_draw_work_floats(vocab), rounded to 64 bytes */
    int32_t *prompt_tokens;  /* [max_rows * max_prompt_len], the round's prompts */
    int32_t *prompt_lengths; /* [max_rows] */
    /* Per row of the current round. */
    int32_t *row_seq;   /* the batch row it fills */
    int32_t *row_limit; /* its length limit */
    int32_t *active;    /* rows still running, in decode order */
    int32_t *feed;      /* the token each active row feeds to the next decode */
    int32_t *drawn;     /* the token drawn for each active row */
    double *drawn_lp;   /* and its log-probability */
    int64_t *keep_dest; /* per active row: its workspace row, when keeping activations */
    int *status;        /* per active row: KLC_OK or KLC_ERR_NUMERIC */
    void *block;
    size_t bytes;
};

#endif
