/* Activations kept by decoding (KLC_SAMPLE_KEEP_ACTIVATIONS). On-policy, the policy's
 * decoding computes, position by position, exactly the activations the training forward
 * would compute on the sampled batch. Decoding writes them into the training workspace at
 * row i*stride + t (position t of sequence i; stride = the sampling call's max_len - 1,
 * since the last position of a sequence is never fed back and the fused forward/backward
 * leaves it out); once sampling ends they are compacted into the packed layout of the
 * forward, and the next klc_model_forward_backward on that batch goes straight to the
 * LM head and the backward. */
#ifndef KLC_MODEL_KEEP_H
#define KLC_MODEL_KEEP_H

#include "workspace.h"

/* Starts keeping for n_seq sequences of up to max_len tokens. Returns 1 when the training
 * workspace can hold them (the model then is in KLC_KEPT_FILLING), 0 when not (nothing is
 * kept). */
int klc_keep_begin(klc_model *m, int32_t n_seq, int32_t max_len);

/* Writes rows of an [n, width] decoding buffer to the workspace buffer dst [rows, width]
 * at rows dest[0..n-1]. */
void klc_keep_rows(float *dst, int64_t width, const float *src, const int64_t *dest, int32_t n);

/* The attention probabilities of the query at position t of sequence i, head h: where
 * decoding writes its t+1 probabilities and then zeros up to the stride. */
float *klc_keep_att_row(const klc_model *m, int layer, int32_t i, int h, int32_t t);

/* Ends keeping: compacts the rows of the n_seq sequences (tokens [n_seq, max_len], lengths
 * >= 2 each) into the packed layout and records the batch and the parameters' hash. */
void klc_keep_finish(klc_model *m, const int32_t *tokens, const int32_t *lengths, int32_t n_seq,
                     int32_t max_len);

/* Abandons whatever was being kept. */
void klc_keep_drop(klc_model *m);

/* Whether the kept activations are those of this batch (rows trimmed of the last position)
 * under the current parameters. */
int klc_keep_matches(const klc_model *m, const klc_seqs *s);

#endif
