/* TEMPORARY: placeholders while the forward/backward land; removed before any release. */
#include "workspace.h"

#define NOT_YET return klc_fail(KLC_ERR_UNSUPPORTED, "%s: not implemented yet", __func__)

int klc_workspace_ensure(klc_model *m, int32_t n_seq, int32_t max_len, int training) { NOT_YET; }
void klc_workspace_free(klc_model *m) {}
int klc_model_reserve(klc_model *model, int32_t n_seq, int32_t max_len, int training) { NOT_YET; }
int klc_model_memory(const klc_model *model, klc_memory_info *out) { NOT_YET; }
int klc_model_memory_estimate(const klc_model *model, int32_t n_seq, int32_t max_len,
                              int training, klc_memory_info *out) { NOT_YET; }
int klc_forward_options_init(klc_forward_options *opts, uint32_t version) { NOT_YET; }
int klc_model_score(klc_model *model, const klc_seqs *seqs, const klc_forward_options *opts) { NOT_YET; }
int klc_model_forward(klc_model *model, const klc_seqs *seqs, const klc_forward_options *opts) { NOT_YET; }
int klc_model_backward(klc_model *model, const klc_seqs *seqs, const float *onehot_coef,
                       const float *softmax_coef, const float *d_hidden) { NOT_YET; }
int klc_model_forward_backward(klc_model *model, const klc_seqs *seqs,
                               const klc_forward_options *opts, const float *onehot_coef,
                               const float *softmax_coef) { NOT_YET; }
int klc_kv_cache_create(const klc_model *model, int32_t max_rows, int32_t max_len,
                        const klc_allocator *allocator, klc_kv_cache **out) { NOT_YET; }
void klc_kv_cache_destroy(klc_kv_cache *cache) {}
int klc_kv_cache_reset(klc_kv_cache *cache) { NOT_YET; }
int32_t klc_kv_cache_length(const klc_kv_cache *cache, int32_t row) { NOT_YET; }
size_t klc_kv_cache_bytes(const klc_kv_cache *cache) { return 0; }
int klc_model_decode(klc_model *model, klc_kv_cache *cache, int32_t n, const int32_t *rows,
                     const int32_t *tokens, float *logits) { NOT_YET; }
int klc_model_prefill(klc_model *model, klc_kv_cache *cache, const klc_seqs *seqs, float *logits) { NOT_YET; }
