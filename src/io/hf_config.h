/* config.json of a Hugging Face GPT-2 model. */
#ifndef KLC_IO_HF_CONFIG_H
#define KLC_IO_HF_CONFIG_H

#include "core/internal.h"

/* Config files above this size are refused (real ones are about 1 KB). */
#define KLC_HF_CONFIG_MAX_BYTES ((size_t)16 << 20)

/* Reads a GPT-2 config.json into *out (a fully initialised options struct; allocator
 * NULL, init_seed 0). Required keys: n_layer, n_head, n_embd, vocab_size and n_positions
 * (or the older n_ctx). Optional keys take Hugging Face's defaults. KLC_ERR_IO if the file
 * cannot be read, KLC_ERR_FORMAT for malformed JSON, missing keys, wrong types and values
 * out of range, KLC_ERR_UNSUPPORTED for valid GPT-2 variants klc does not implement
 * (another activation, untied head, inner width other than 4 n_embd, attention scaling
 * variants, cross-attention, other model types). Messages start with the path and name
 * the key. */
int klc_hf_config_read(const char *path, const klc_alloc_ctx *alloc, klc_model_options *out);

/* Formats a config.json that transformers' GPT2LMHeadModel.from_pretrained accepts, into
 * buf (cap bytes); *len receives the length without the terminating NUL. */
int klc_hf_config_format(const klc_model_options *o, char *buf, size_t cap, size_t *len);

#endif
