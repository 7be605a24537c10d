/*
 * klc.h — the whole public API of klc, and its specification.
 *
 * klc fine-tunes autoregressive language models toward what their users want without
 * catastrophic forgetting: reward maximisation with a KL penalty to the original model
 * (KL-control) and distribution matching toward an explicit target distribution
 * (DPG, GDC, GDC++, f-DPG). This header is the only one a program includes.
 *
 * Conventions, which hold for every function below unless its comment says otherwise:
 *  - Functions return KLC_OK (0) or a negative klc_status. After a failure,
 *    klc_last_error() (thread-local) says what went wrong, where and why. A failed call
 *    leaves its handle usable and unchanged unless its comment says which state changed.
 *  - Constructors write the new handle to *out and return a status; on failure *out is
 *    set to NULL. Destroy functions accept NULL.
 *  - Options are structs whose first field is `version`; fill one with
 *    klc_<thing>_options_init(&o, KLC_<THING>_OPTIONS_VERSION), then change fields.
 *    Fields are only ever appended, so an older caller keeps working.
 *  - Pointers returned by a handle are borrowed and stay valid until the handle is
 *    destroyed or the comment says otherwise. Bulk data goes into caller buffers.
 *  - One thread per handle at a time; distinct handles are independent. klc keeps no
 *    global mutable state of its own. OpenBLAS's thread count is process-wide: klc sets
 *    it only through klc_set_num_threads().
 *  - No varargs and no structs passed by value, so that FFI callers can use everything.
 */
#ifndef KLC_H
#define KLC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KLC_BUILDING_LIBRARY) && defined(__GNUC__)
#define KLC_API __attribute__((visibility("default")))
#else
#define KLC_API
#endif

/* ------------------------------------------------------------------------------------ */
/* Versions                                                                             */
/* ------------------------------------------------------------------------------------ */

#define KLC_VERSION_MAJOR  0
#define KLC_VERSION_MINOR  1
#define KLC_VERSION_PATCH  0
#define KLC_VERSION_STRING "0.1.0"
/* (major << 16) | (minor << 8) | patch, comparable with integer operators. */
#define KLC_VERSION ((KLC_VERSION_MAJOR << 16) | (KLC_VERSION_MINOR << 8) | KLC_VERSION_PATCH)

/* The version of the library actually loaded, in the KLC_VERSION encoding. */
KLC_API uint32_t klc_version(void);
/* The same as a string, e.g. "0.1.0". Static storage. */
KLC_API const char *klc_version_string(void);

/* ------------------------------------------------------------------------------------ */
/* Status codes and errors                                                              */
/* ------------------------------------------------------------------------------------ */

typedef enum klc_status {
    KLC_OK = 0,
    KLC_ERR_INVALID_ARGUMENT = -1, /* a NULL, out-of-range or inconsistent argument */
    KLC_ERR_OUT_OF_MEMORY = -2,    /* the allocator returned NULL */
    KLC_ERR_IO = -3,               /* a file could not be opened, read, written or renamed */
    KLC_ERR_FORMAT = -4,           /* a file's content is malformed, corrupt or hostile */
    KLC_ERR_UNSUPPORTED = -5,      /* well-formed input that klc does not handle */
    KLC_ERR_STATE = -6,            /* the call is not valid in the handle's current state */
    KLC_ERR_CALLBACK = -7,         /* a user callback returned non-zero */
    KLC_ERR_NUMERIC = -8,          /* a computation produced NaN or diverged */
    KLC_ERR_CONFIG = -9,           /* a configuration is invalid (see klc_last_error) */
    KLC_ERR_NOT_FOUND = -10,       /* what was looked for does not exist (e.g. no checkpoint) */
    KLC_ERR_INTERNAL = -100        /* a bug in klc: please report it with the message */
} klc_status;

/* The name of a status, e.g. "KLC_ERR_FORMAT". Static storage; unknown codes give
 * "KLC_ERR_UNKNOWN". */
KLC_API const char *klc_status_str(int status);

/* The message of the last failed call on this thread: what, where and why, e.g.
 * "model.safetensors: tensor 'h.0.attn.c_attn.weight': data_offsets [0, 12] out of
 * bounds (data section is 8 bytes)". Empty when no call has failed on this thread.
 * Valid until the next klc call on this thread. */
KLC_API const char *klc_last_error(void);

/* Clears the thread's last error message. */
KLC_API void klc_clear_error(void);

/* ------------------------------------------------------------------------------------ */
/* Allocation                                                                           */
/* ------------------------------------------------------------------------------------ */

/* A caller-supplied allocator. Every handle created with one uses it for everything it
 * allocates. alloc must return memory aligned to at least `alignment` bytes (a power of
 * two, at most 4096) or NULL; free receives exactly what alloc returned with the size
 * that was asked for. The allocator struct is copied; userdata must outlive the handle. */
typedef struct klc_allocator {
    void *(*alloc)(void *userdata, size_t size, size_t alignment);
    void (*free)(void *userdata, void *ptr, size_t size);
    void *userdata;
} klc_allocator;

/* ------------------------------------------------------------------------------------ */
/* Threads                                                                              */
/* ------------------------------------------------------------------------------------ */

/* Sets the number of threads klc's OpenMP loops and OpenBLAS use, process-wide
 * (klc is built on OpenBLAS's OpenMP variant so that both share one thread pool).
 * n <= 0 restores the default (OMP_NUM_THREADS or the number of cores). This is the only
 * place where klc changes process-wide state. */
KLC_API int klc_set_num_threads(int n);
/* The number of threads the next parallel region will use. */
KLC_API int klc_get_num_threads(void);

/* The kernel set OpenBLAS chose when it loaded, e.g. "SkylakeX", "Haswell", "Prescott". */
KLC_API const char *klc_blas_core(void);
/* OpenBLAS picks kernels from the CPU model once, at load; on a CPU newer than the installed
 * OpenBLAS (Debian 12 ships 0.3.21) it falls back to its slowest x86-64 kernels, several
 * times slower. When that happened and the CPU supports better ones, this returns the value
 * to give the environment variable OPENBLAS_CORETYPE before OpenBLAS loads (a program can
 * set it and re-execute itself, as the klc program does); otherwise NULL. The library never
 * changes the environment itself. */
KLC_API const char *klc_blas_suggested_core(void);

/* ------------------------------------------------------------------------------------ */
/* Random numbers                                                                       */
/* ------------------------------------------------------------------------------------ */

/* klc's random numbers come from a counter-based generator (Philox4x32-10, Salmon et al.
 * 2011): every number is a pure function of (seed, stream, step, sample, counter), so a
 * value does not depend on how a batch is split into micro-batches, on the order in
 * which sequences are processed, or (later) on the number of processes. The struct is
 * the generator's whole state, and there is no hidden one: the trainer builds it from
 * its seed option and its step count whenever it draws, so a checkpoint that holds the
 * step (see "Checkpoints") restores every stream.
 *
 *   seed    the user's seed;
 *   stream  what the numbers are for (KLC_STREAM_*), so that purposes never share draws;
 *   step    the training step (or any outer counter the caller advances);
 *   sample  the global index of the sequence within the step (an argument below);
 *   counter the index of the number within that sequence (an argument below).
 *
 * The Philox key is a 64-bit hash of (seed, stream, step); the 128-bit Philox counter is
 * (counter, sample). */
typedef struct klc_rng {
    uint64_t seed;
    uint64_t stream;
    uint64_t step;
} klc_rng;

enum {
    KLC_STREAM_INIT = 1,    /* parameter initialisation */
    KLC_STREAM_DROPOUT = 2, /* dropout masks */
    KLC_STREAM_SAMPLE = 3,  /* ancestral sampling */
    KLC_STREAM_DATA = 4,    /* shuffling and data order */
    KLC_STREAM_USER = 1024  /* first stream number free for callers */
};

KLC_API void klc_rng_init(klc_rng *rng, uint64_t seed, uint64_t stream);
/* Four independent uniform 32-bit words for (sample, counter). */
KLC_API void klc_rng_words(const klc_rng *rng, uint64_t sample, uint64_t counter, uint32_t out[4]);
/* A uniform double in [0, 1) with 53 random bits, from the block (sample, counter). */
KLC_API double klc_rng_uniform(const klc_rng *rng, uint64_t sample, uint64_t counter);
/* A standard normal (Box-Muller on the block (sample, counter)). */
KLC_API double klc_rng_normal(const klc_rng *rng, uint64_t sample, uint64_t counter);

/* ------------------------------------------------------------------------------------ */
/* Sequences                                                                            */
/* ------------------------------------------------------------------------------------ */

/* A batch of token sequences, right-padded to max_len. Sequence i is
 * tokens[i*max_len .. i*max_len + lengths[i] - 1]; what follows is padding and is never
 * read as input (any value is allowed there). Positions count from each sequence's own
 * start, so a right-padded sequence gets the same log-probabilities as alone.
 *
 * A sequence's first score_from[i] tokens are context (a prompt, or the end-of-text token
 * GPT-2 uses as a beginning): the sequence log-probability sums the predictions of tokens
 * score_from[i] .. lengths[i]-1. score_from may be NULL (every sequence starts scoring at
 * token 1, since token 0 has no prediction); each value must be >= 1 and <= lengths[i].
 *
 * sample_ids (may be NULL: 0, 1, 2, ...) are the global indices of the sequences within
 * the step; dropout masks are keyed by them, so that micro-batching does not change them. */
typedef struct klc_seqs {
    int32_t n_seq;
    int32_t max_len;
    const int32_t *tokens;     /* [n_seq * max_len] */
    const int32_t *lengths;    /* [n_seq], each in 1..max_len */
    const int32_t *score_from; /* [n_seq] or NULL */
    const int64_t *sample_ids; /* [n_seq] or NULL */
} klc_seqs;

/* ------------------------------------------------------------------------------------ */
/* The model: GPT-2                                                                     */
/* ------------------------------------------------------------------------------------ */

/* klc_model is the GPT-2 architecture exactly as Hugging Face's GPT2LMHeadModel computes
 * it: token and learned position embeddings, pre-LayerNorm blocks, causal multi-head
 * self-attention with the fused c_attn projection, GELU with the tanh approximation, a 4x
 * MLP, a final LayerNorm and an LM head tied to the token embedding.
 *
 * Parameters live in one contiguous float block and gradients in another with the same
 * layout; tensors are views into them, named and shaped as Hugging Face names them
 * (without the "transformer." prefix), Conv1D weights in [in, out] order. */
typedef struct klc_model klc_model;

#define KLC_MODEL_OPTIONS_VERSION 1
typedef struct klc_model_options {
    uint32_t version;
    int32_t n_layer;      /* transformer blocks; default 4 */
    int32_t n_head;       /* attention heads, must divide n_embd; default 4 */
    int32_t n_embd;       /* width; default 256 */
    int32_t n_ctx;        /* positions (Hugging Face's n_positions); default 256 */
    int32_t vocab_size;   /* default 8192 */
    float layer_norm_eps; /* default 1e-5 */
    /* Dropout probabilities, used only by forwards that ask for dropout
     * (KLC_FORWARD_DROPOUT); Hugging Face's defaults are 0.1. */
    float embd_pdrop, attn_pdrop, resid_pdrop;
    /* Initialisation for klc_model_create: weights ~ N(0, init_std^2), the residual
     * projections (attn.c_proj, mlp.c_proj) scaled by 1/sqrt(2 n_layer) as GPT-2 does,
     * biases 0, LayerNorm gains 1. Drawn from klc_rng(init_seed, KLC_STREAM_INIT). */
    float init_std;                 /* default 0.02 */
    uint64_t init_seed;             /* default 0 */
    const klc_allocator *allocator; /* NULL: malloc/free */
} klc_model_options;

KLC_API int klc_model_options_init(klc_model_options *opts, uint32_t version);

/* A new model with freshly initialised parameters. */
KLC_API int klc_model_create(const klc_model_options *opts, klc_model **out);

/* Loads a Hugging Face GPT-2 directory: config.json and model.safetensors. Tensor names
 * with or without the "transformer." prefix; "lm_head.weight" may be absent or, if
 * present, must equal "wte.weight"; the attention-mask buffers older versions saved
 * ("attn.bias", "attn.masked_bias") are ignored. F32 is read as is, F16 and BF16 are
 * converted. Everything is validated before it is trusted; a truncated, corrupt,
 * mismatched or hostile file fails with KLC_ERR_FORMAT (or KLC_ERR_UNSUPPORTED for a valid
 * configuration klc does not implement) and a message naming the file, the tensor or key
 * and the reason. allocator may be NULL. */
KLC_API int klc_model_load(const char *dir, const klc_allocator *allocator, klc_model **out);

/* Writes config.json and model.safetensors (F32, names with the "transformer." prefix as
 * GPT2LMHeadModel writes them, lm_head omitted because it is tied) into dir, creating dir
 * if needed. Each file is written atomically: a temporary file in dir, fsync, rename, and
 * an fsync of dir; a crash leaves either the old file or the new one. */
KLC_API int klc_model_save(const klc_model *model, const char *dir);

/* A deep copy: parameters, configuration and (if allocated) gradients; nothing is shared,
 * so the copy and its source change independently. Activations are not copied. */
KLC_API int klc_model_clone(const klc_model *model, klc_model **out);

KLC_API void klc_model_destroy(klc_model *model);

/* The model's configuration (a fully filled options struct; allocator is NULL). */
KLC_API int klc_model_get_options(const klc_model *model, klc_model_options *out);

/* --- Parameters and gradients ------------------------------------------------------- */

typedef struct klc_tensor_info {
    const char *name; /* Hugging Face name without "transformer.", e.g. "h.0.ln_1.weight" */
    int32_t ndim;     /* 1 or 2 */
    int64_t shape[4];
    int64_t numel;
    int64_t offset; /* in floats, into the block of klc_model_params / klc_model_grads */
} klc_tensor_info;

KLC_API int32_t klc_model_num_tensors(const klc_model *model);
KLC_API int klc_model_tensor_info(const klc_model *model, int32_t index, klc_tensor_info *out);
/* The index of a tensor by name (with or without "transformer."), or -1. */
KLC_API int32_t klc_model_find_tensor(const klc_model *model, const char *name);
/* The contiguous parameter block; *count receives its length in floats. Writable. */
KLC_API float *klc_model_params(klc_model *model, size_t *count);
/* The gradient block, allocated at the first backward or by this call (zeroed).
 * NULL with KLC_ERR_OUT_OF_MEMORY in klc_last_error if it cannot be allocated. */
KLC_API float *klc_model_grads(klc_model *model, size_t *count);
/* Sets every gradient to zero (allocating the block if needed). */
KLC_API int klc_model_zero_grads(klc_model *model);

/* --- Memory --------------------------------------------------------------------------- */

typedef struct klc_memory_info {
    uint32_t version;
    size_t params_bytes;      /* parameter block */
    size_t grads_bytes;       /* gradient block (0 until allocated) */
    size_t activations_bytes; /* training activations kept between forward and backward */
    size_t scratch_bytes;     /* per-call work buffers, including one chunk of logits */
    size_t total_bytes;
} klc_memory_info;
#define KLC_MEMORY_INFO_VERSION 1

/* Plans and allocates the buffers for batches of up to n_seq sequences of up to max_len
 * tokens, for training (kept activations) when `training` is non-zero. Calls with larger
 * batches grow the buffers at their start (never inside their loops); reserving up front
 * makes the memory use known before the first step. */
KLC_API int klc_model_reserve(klc_model *model, int32_t n_seq, int32_t max_len, int training);
/* What the model holds now. */
KLC_API int klc_model_memory(const klc_model *model, klc_memory_info *out);
/* What klc_model_reserve(n_seq, max_len, training) would hold, without allocating. */
KLC_API int klc_model_memory_estimate(const klc_model *model, int32_t n_seq, int32_t max_len,
                                      int training, klc_memory_info *out);

/* --- Forward and backward --------------------------------------------------------------- */

#define KLC_FORWARD_OPTIONS_VERSION 1
enum {
    KLC_FORWARD_DROPOUT = 1 /* apply the model's dropout probabilities */
};
typedef struct klc_forward_options {
    uint32_t version;
    uint32_t flags;  /* KLC_FORWARD_* */
    klc_rng dropout; /* keys the dropout masks (with the sequences' sample_ids) */
    /* Optional outputs (NULL: not written). */
    float *token_logprobs; /* [n_seq*max_len]: [i*max_len+t] = log p(x[t+1] | x[0..t]) for
                              t < lengths[i]-1, and 0 elsewhere */
    double *seq_logprobs;  /* [n_seq]: sum of the scored predictions (see klc_seqs), in
                              double */
    float *hidden;         /* [n_seq*max_len*n_embd]: the final LayerNorm's output, for
                              heads; padding positions are unspecified */
} klc_forward_options;

KLC_API int klc_forward_options_init(klc_forward_options *opts, uint32_t version);

/* Inference forward: computes the requested outputs and keeps no activations (the path
 * for scoring with a frozen base model or a proposal). */
KLC_API int klc_model_score(klc_model *model, const klc_seqs *seqs,
                            const klc_forward_options *opts);

/* Training forward: the same outputs, keeping the activations that klc_model_backward
 * needs. The kept state belongs to this batch until the next training forward. */
KLC_API int klc_model_forward(klc_model *model, const klc_seqs *seqs,
                              const klc_forward_options *opts);

/* Backward from per-token coefficients on the logits, accumulating (+=) into the
 * gradient block. For the prediction of token t+1 of sequence i (index k = i*max_len+t,
 * t < lengths[i]-1), the gradient of the loss with respect to the logits is
 *     onehot_coef[k] * onehot(x[t+1]) + softmax_coef[k] * softmax(logits)
 * e.g. a sequence weight w over a batch of N gives onehot_coef = -w/N and
 * softmax_coef = +w/N on the scored positions (L = -(1/N) sum w log pi). Coefficients at
 * positions that are not predictions are ignored. Either array may be NULL (all zeros).
 * d_hidden [n_seq*max_len*n_embd] (may be NULL) adds a gradient on the final hidden
 * states, for heads. The logits are recomputed chunk by chunk; no [tokens x vocab] buffer
 * exists. Requires a klc_model_forward on the same seqs just before. */
KLC_API int klc_model_backward(klc_model *model, const klc_seqs *seqs, const float *onehot_coef,
                               const float *softmax_coef, const float *d_hidden);

/* Training forward and backward in one pass, for coefficients known before the forward
 * (maximum likelihood, on-policy objectives whose weights come from the sampler): the
 * logits are computed once, and their gradient formed in place. Same semantics as
 * klc_model_forward followed by klc_model_backward, without the recomputation. */
KLC_API int klc_model_forward_backward(klc_model *model, const klc_seqs *seqs,
                                       const klc_forward_options *opts, const float *onehot_coef,
                                       const float *softmax_coef);

/* --- Incremental decoding --------------------------------------------------------------- */

/* A KV cache for batched incremental decoding: rows 0..max_rows-1, each a sequence with
 * its own length (up to max_len <= n_ctx). Each (layer, row, head) owns one contiguous block
 * of keys and one of values, both [position][head_dim], so a decoding step reads exactly the
 * positions in use, in order. */
typedef struct klc_kv_cache klc_kv_cache;

KLC_API int klc_kv_cache_create(const klc_model *model, int32_t max_rows, int32_t max_len,
                                const klc_allocator *allocator, klc_kv_cache **out);
KLC_API void klc_kv_cache_destroy(klc_kv_cache *cache);
/* Empties every row. */
KLC_API int klc_kv_cache_reset(klc_kv_cache *cache);
/* The number of tokens row holds, or a negative status. */
KLC_API int32_t klc_kv_cache_length(const klc_kv_cache *cache, int32_t row);
KLC_API size_t klc_kv_cache_bytes(const klc_kv_cache *cache);

/* Feeds one token to each of n rows (rows[j], token tokens[j]; distinct rows, in any
 * order: finished sequences are simply left out) and writes the next-token logits
 * [n * vocab_size] to logits (may be NULL). Each row's position is its current length. */
KLC_API int klc_model_decode(klc_model *model, klc_kv_cache *cache, int32_t n, const int32_t *rows,
                             const int32_t *tokens, float *logits);

/* Fills rows 0..seqs->n_seq-1 of an empty cache with whole prompts in one batched
 * forward (faster than token by token) and writes the logits that follow each prompt's
 * last token [n_seq * vocab_size] (may be NULL). Rows must be empty. */
KLC_API int klc_model_prefill(klc_model *model, klc_kv_cache *cache, const klc_seqs *seqs,
                              float *logits);

/* ------------------------------------------------------------------------------------ */
/* The tokenizer                                                                        */
/* ------------------------------------------------------------------------------------ */

/* klc_tokenizer is GPT-2's byte-level BPE, giving exactly the ids of OpenAI's reference
 * encoder (and of Hugging Face's GPT2Tokenizer) on valid UTF-8 text:
 *
 *  1. Pre-tokenization splits the text with GPT-2's pattern
 *       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *     over Unicode character classes (PCRE2's tables: \p{L} letters, \p{N} numbers, \s
 *     Unicode white space). The contractions are case-sensitive, as in GPT-2.
 *  2. Each piece, as bytes, starts as one token per byte; then, repeatedly, the adjacent
 *     pair whose merge comes first in the merges file is found and every occurrence of
 *     it is merged, left to right and without overlap, until no adjacent pair has a merge.
 *
 * Tokens are byte strings. The files spell them with GPT-2's byte-to-character table
 * (printable Latin-1 bytes stand for themselves, the other 68 bytes are U+0100..U+0143,
 * so a space is written 'Ġ' and a newline 'Ċ'); klc_tokenizer_token_bytes() gives the
 * bytes themselves.
 *
 * Invalid UTF-8: byte-level BPE can represent any bytes, so klc encodes them rather
 * than failing. The text is split into maximal runs of well-formed UTF-8 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF) and maximal runs of bytes that
 * are not; each well-formed run is pre-tokenized on its own, as if it were a whole text,
 * and each ill-formed run is one piece for step 2. decode(encode(x)) == x therefore holds
 * for every byte string x, and text that is valid UTF-8 is never affected. Decoding
 * returns the tokens' bytes exactly (no replacement characters), so the output of an
 * arbitrary id sequence, or of a prefix of one, need not be valid UTF-8.
 *
 * The end-of-text token "<|endoftext|>" (id 50256 in GPT-2) is a special token: it is
 * produced only by the KLC_TOKENIZE_EOT_* flags of klc_tokenizer_encode, never from text
 * (the literal characters "<|endoftext|>" encode as ordinary tokens, as in GPT-2), and it
 * decodes to those 13 characters. A tokenizer whose vocabulary lacks it has no end-of-text
 * token (klc_tokenizer_eot_id() returns -1).
 *
 * Encoding keeps a cache of the BPE result of each piece in the handle (bounded; cleared
 * when full), so klc_tokenizer_encode changes the handle's internal state and the usual
 * rule holds: one thread per handle at a time. The cache never changes results. */
typedef struct klc_tokenizer klc_tokenizer;

/* Loads a tokenizer from dir, which holds either Hugging Face's pair (vocab.json and
 * merges.txt, tried first) or OpenAI's original pair (encoder.json and vocab.bpe): the
 * same two formats under two names. See klc_tokenizer_load_files for what is checked.
 * allocator may be NULL. */
KLC_API int klc_tokenizer_load(const char *dir, const klc_allocator *allocator,
                               klc_tokenizer **out);

/* Loads a tokenizer from a vocabulary file (a JSON object mapping token strings to ids)
 * and a merges file (an optional first line "#version: ...", then one merge per line: two
 * tokens separated by one space, earliest merge first; empty lines are ignored, a CR
 * before the LF is allowed). Checked, each failure naming the file and the line (and
 * column for JSON syntax) and returning KLC_ERR_FORMAT, or KLC_ERR_IO if a file cannot be
 * read:
 *  - vocabulary: valid JSON, an object, no duplicate keys, every id an integer, the ids
 *    exactly 0..n-1 each used once, every key made only of the 256 byte characters, and
 *    a token for every one of the 256 single bytes;
 *  - merges: two tokens per line, both in the vocabulary, their concatenation in the
 *    vocabulary, no merge listed twice, valid UTF-8.
 * The JSON parser (jansson) allocates its transient parse tree with malloc, not with
 * allocator; everything the tokenizer keeps uses allocator. */
KLC_API int klc_tokenizer_load_files(const char *vocab_path, const char *merges_path,
                                     const klc_allocator *allocator, klc_tokenizer **out);

/* Writes vocab.json and merges.txt (Hugging Face's names and formats, loadable by
 * GPT2Tokenizer) into dir, creating dir if needed. Each file is written atomically: a
 * temporary file in dir, fsync, rename. A tokenizer loaded from files and saved writes
 * the same tokens, ids and merges in the same order. */
KLC_API int klc_tokenizer_save(const klc_tokenizer *tok, const char *dir);

KLC_API void klc_tokenizer_destroy(klc_tokenizer *tok);

/* The number of tokens (ids are 0..vocab_size-1), 50257 for GPT-2; -1 if tok is NULL. */
KLC_API int32_t klc_tokenizer_vocab_size(const klc_tokenizer *tok);
/* The id of "<|endoftext|>", or -1 if the vocabulary has none. */
KLC_API int32_t klc_tokenizer_eot_id(const klc_tokenizer *tok);

/* The bytes of token id (borrowed from tok; not NUL-terminated) and their count. */
KLC_API int klc_tokenizer_token_bytes(const klc_tokenizer *tok, int32_t id, const char **bytes,
                                      size_t *len);
/* The id of the token whose bytes are exactly bytes[0..len), or -1 in *id if there is
 * none (still KLC_OK). */
KLC_API int klc_tokenizer_token_id(const klc_tokenizer *tok, const char *bytes, size_t len,
                                   int32_t *id);

/* Flags of klc_tokenizer_encode. The end-of-text token comes only from these. */
enum {
    KLC_TOKENIZE_EOT_BEFORE = 1, /* put the end-of-text token before the text's tokens */
    KLC_TOKENIZE_EOT_AFTER = 2   /* and/or after them (a document boundary) */
};

/* Encodes text[0..len) (any bytes; see above for invalid UTF-8; text may be NULL when
 * len is 0) into ids. *n_out receives the number of ids the whole text needs, which is
 * at most len plus one per EOT flag. If that exceeds capacity, the first `capacity` ids
 * are written and the call fails with KLC_ERR_INVALID_ARGUMENT, so a caller may ask for
 * the size with ids = NULL and capacity = 0, or allocate len + 2 up front. An EOT flag on
 * a tokenizer without an end-of-text token, or an unknown flag, is
 * KLC_ERR_INVALID_ARGUMENT. */
KLC_API int klc_tokenizer_encode(klc_tokenizer *tok, const char *text, size_t len, uint32_t flags,
                                 int32_t *ids, size_t capacity, size_t *n_out);

/* Decodes ids[0..n) into the concatenation of their bytes in buf (no NUL terminator is
 * written). *len_out receives the number of bytes needed; if it exceeds capacity, the
 * first `capacity` bytes are written and the call fails with KLC_ERR_INVALID_ARGUMENT
 * (buf = NULL with capacity = 0 asks for the size). An id outside 0..vocab_size-1 fails
 * with KLC_ERR_INVALID_ARGUMENT, naming the id and its index, and writes nothing. */
KLC_API int klc_tokenizer_decode(const klc_tokenizer *tok, const int32_t *ids, size_t n, char *buf,
                                 size_t capacity, size_t *len_out);

/* --- Training ------------------------------------------------------------------------- */

#define KLC_TOKENIZER_TRAIN_OPTIONS_VERSION 1
typedef struct klc_tokenizer_train_options {
    uint32_t version;
    /* The number of tokens wanted, counting the 256 byte tokens and "<|endoftext|>";
     * 257..16777216, default 8192. The result is smaller only if the text runs out of
     * pairs that occur at least min_frequency times. */
    int32_t vocab_size;
    /* A pair of tokens is merged only if it occurs at least this often; >= 1, default 2. */
    int64_t min_frequency;
    const klc_allocator *allocator; /* NULL: malloc/free */
} klc_tokenizer_train_options;

KLC_API int klc_tokenizer_train_options_init(klc_tokenizer_train_options *opts, uint32_t version);

/* Learns a byte-level BPE from the files (read as bytes; their contents are pre-tokenized
 * with the same pattern and invalid-UTF-8 rule as encoding, and pieces never span two
 * files). The result has ids 0..255 for the single bytes in GPT-2's order (so they have
 * GPT-2's ids), then one id per learned token in the order learned, then "<|endoftext|>"
 * as the last id, as GPT-2 has it.
 *
 * Each step merges the adjacent pair with the highest count over the whole text (pieces
 * weighted by how often they occur); ties go to the pair whose left token's bytes come
 * first in byte order (a proper prefix before its extensions), then the right token's.
 * Every occurrence of the pair is merged, left to right without overlap, as encoding
 * does. When a pair's concatenation is already a token (it was learned from a different
 * pair), the merge is recorded and the existing token reused. Training is deterministic:
 * the same files in the same order give the same files from klc_tokenizer_save. Pair
 * counts are updated incrementally, so the cost is about linear in the text plus the
 * work of the merges. */
KLC_API int klc_tokenizer_train(const char *const *files, size_t n_files,
                                const klc_tokenizer_train_options *opts, klc_tokenizer **out);

/* ------------------------------------------------------------------------------------ */
/* Optimizer                                                                            */
/* ------------------------------------------------------------------------------------ */

/* klc_optimizer updates a block of float parameters from a block of gradients of the same
 * length: Adam, AdamW or SGD with momentum, computing the formulas of PyTorch 1.13's
 * torch.optim.Adam, AdamW and SGD (single-tensor path) in the same order, with a
 * learning-rate schedule and gradient clipping as torch.nn.utils.clip_grad_norm_ /
 * clip_grad_value_ do. Results agree with PyTorch's to float rounding (a few ulp per
 * update: fused multiply-adds and the clipping factor's precision differ), not bit for bit.
 *
 * The optimizer works on a caller's (params, grads, n) arrays rather than on a model, so
 * that one type serves every block of parameters there is: a klc_model's contiguous
 * block (klc_model_params / klc_model_grads, or klc_optimizer_step_model), a head kept
 * by the caller, or tensors owned by an FFI caller. n is fixed at creation; the state
 * (moments, step count) belongs to that block, element by element.
 *
 * Numerics: Adam's moments (exp_avg, exp_avg_sq) and SGD's momentum buffer are floats,
 * like the parameters, as in PyTorch; the per-step scalars (bias corrections, step size,
 * the learning rate) are computed in double and rounded to float once per step; the
 * gradient norm is accumulated in double. Bias correction is PyTorch's: with t the
 * 1-based step, step_size = lr / (1 - beta1^t) and
 *   p -= step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)   (eps added after the sqrt).
 * Adam adds weight_decay * p to the gradient (L2); AdamW first multiplies p by
 * (1 - lr * weight_decay) (decoupled, Loshchilov & Hutter); SGD adds weight_decay * p to
 * the gradient, and its momentum buffer starts as the first (decayed) gradient, without
 * dampening, as PyTorch's does.
 *
 * Speed: a step allocates nothing and makes two vectorised passes over the block, the
 * gradient norm (which every step computes, for clipping, the report and the finiteness
 * check) and the update, each split across OpenMP threads for large blocks. Results do
 * not depend on the number of threads: the norm is summed over fixed chunks in a fixed
 * order, and everything else is element-wise. */
typedef struct klc_optimizer klc_optimizer;

enum {
    KLC_OPTIMIZER_ADAM = 1,  /* torch.optim.Adam (weight decay as L2 on the gradient) */
    KLC_OPTIMIZER_ADAMW = 2, /* torch.optim.AdamW (decoupled weight decay) */
    KLC_OPTIMIZER_SGD = 3    /* torch.optim.SGD (momentum, dampening, Nesterov) */
};

/* Learning-rate schedules. t counts the updates already taken (0 for the first update);
 * W = warmup_steps, T = total_steps, peak = lr. Every schedule starts with a linear
 * warm-up when W > 0: lr(t) = peak * (t + 1) / W for t < W, so the first update already
 * moves (Hugging Face's schedulers use t / W and waste the first step at lr 0). After it,
 * with p = (t - W) / (T - W) clamped to [0, 1]: */
enum {
    KLC_LR_CONSTANT = 0, /* peak (so W > 0 gives "linear warm-up, then constant") */
    KLC_LR_COSINE = 1,   /* min_lr + (peak - min_lr) * (1 + cos(pi * p)) / 2 */
    KLC_LR_LINEAR = 2    /* peak + (min_lr - peak) * p */
};

#define KLC_OPTIMIZER_OPTIONS_VERSION 1
typedef struct klc_optimizer_options {
    uint32_t version;
    int32_t kind;        /* KLC_OPTIMIZER_*; default KLC_OPTIMIZER_ADAMW */
    double lr;           /* peak learning rate, >= 0; default 1e-3 */
    double beta1, beta2; /* Adam kinds, each in [0, 1); default 0.9, 0.999 */
    double eps;          /* Adam kinds, >= 0; default 1e-8 */
    /* >= 0; default 0 for every kind (torch.optim.AdamW's default is 0.01: set it), so
     * that switching kind never silently changes the regularisation. */
    double weight_decay;
    double momentum;  /* SGD, >= 0; default 0 (no buffer) */
    double dampening; /* SGD, in [0, 1]; default 0 */
    int32_t nesterov; /* SGD, 0 or 1; needs momentum > 0 and dampening 0; default 0 */
    /* Clipping, applied to a copy of the gradient as it is read (the caller's gradient
     * block is never written). clip_value > 0 clamps each element to [-clip_value,
     * clip_value] first; clip_norm > 0 then scales the whole block by
     * min(1, clip_norm / (norm + 1e-6)), norm being the global L2 norm of the (value-
     * clipped) gradients, as clip_grad_norm_ does. 0 turns either off; default 0. */
    double clip_norm;
    double clip_value;
    int32_t schedule;               /* KLC_LR_*; default KLC_LR_CONSTANT */
    int64_t warmup_steps;           /* >= 0; default 0 */
    int64_t total_steps;            /* KLC_LR_COSINE and _LINEAR: > warmup_steps; default 0 */
    double min_lr;                  /* KLC_LR_COSINE and _LINEAR: in [0, lr]; default 0 */
    const klc_allocator *allocator; /* NULL: malloc/free */
} klc_optimizer_options;

KLC_API int klc_optimizer_options_init(klc_optimizer_options *opts, uint32_t version);

/* The learning rate of update t (t >= 0 updates already taken) under opts's schedule: a
 * pure function, the same value the optimizer uses and reports. Invalid options fail as
 * klc_optimizer_create would, naming the field. */
KLC_API int klc_optimizer_lr_at(const klc_optimizer_options *opts, int64_t t, double *lr);

/* A new optimizer for blocks of n_params floats (n_params >= 1), with zero moments and no
 * update taken. Invalid options fail with KLC_ERR_INVALID_ARGUMENT and a message naming
 * the field, e.g. "optimizer option beta2 = 1 must be in [0, 1)". The moments (2 floats
 * per parameter for Adam kinds, 1 for SGD with momentum, none otherwise) and a small
 * table for the norm are allocated here, through opts->allocator. */
KLC_API int klc_optimizer_create(const klc_optimizer_options *opts, size_t n_params,
                                 klc_optimizer **out);
KLC_API void klc_optimizer_destroy(klc_optimizer *opt);

/* The optimizer's options (allocator is NULL). */
KLC_API int klc_optimizer_get_options(const klc_optimizer *opt, klc_optimizer_options *out);
/* The number of updates taken (torch's state['step']), or -1 for NULL. */
KLC_API int64_t klc_optimizer_steps(const klc_optimizer *opt);

/* What one update did, for metrics. The caller sets version; klc fills the fields that
 * version has. */
#define KLC_OPTIMIZER_REPORT_VERSION 1
typedef struct klc_optimizer_report {
    uint32_t version;
    int64_t step;     /* updates taken including this one (1 after the first) */
    double lr;        /* the learning rate this update used */
    double grad_norm; /* global L2 norm of the gradients as given, before any clipping */
    double clip_coef; /* the factor clip_norm scaled the gradients by (1 when not clipped) */
} klc_optimizer_report;

/* One update of params[0..n) from grads[0..n): n must be the optimizer's n_params, and
 * the two blocks must not overlap. grads is only read. report may be NULL.
 * A gradient with a NaN or infinite element fails with KLC_ERR_NUMERIC before anything
 * is written: the parameters, moments and step count stay as they were, so the caller can
 * skip the batch (PyTorch would instead write NaN into the moments for good). */
KLC_API int klc_optimizer_step(klc_optimizer *opt, float *params, const float *grads, size_t n,
                               klc_optimizer_report *report);
/* The same on a model's parameter and gradient blocks (the gradient block is allocated,
 * zeroed, if the model has none yet). */
KLC_API int klc_optimizer_step_model(klc_optimizer *opt, klc_model *model,
                                     klc_optimizer_report *report);

/* --- State ------------------------------------------------------------------------------- */

/* The optimizer's whole state as one blob: the step count (which is also the schedule's
 * position) and every moment array, so that saving after update N, loading into a fresh
 * optimizer made with the same options and n_params, and continuing gives the same bits
 * as never stopping. Hyperparameters are not in the blob: they come from the options of
 * the optimizer it is loaded into, so a resumed run may change them.
 *
 * Layout, little-endian: a 64-byte header
 *   0  magic "KLCOPTIM"       8 bytes
 *   8  format version         uint32 (1)
 *   12 kind                   uint32 (KLC_OPTIMIZER_*)
 *   16 n_params               uint64
 *   24 step                   int64
 *   32 number of arrays       uint32 (as klc_optimizer_num_tensors)
 *   36 reserved, zero         28 bytes
 * followed by the arrays in klc_optimizer_tensor order, n_params floats each. */

/* The size of the blob in bytes (0 for NULL). */
KLC_API size_t klc_optimizer_state_size(const klc_optimizer *opt);
/* Writes the blob to buf. *needed (may be NULL) receives its size; if that exceeds
 * capacity, nothing is written and the call fails with KLC_ERR_INVALID_ARGUMENT (buf =
 * NULL with capacity = 0 asks for the size). */
KLC_API int klc_optimizer_save_state(const klc_optimizer *opt, void *buf, size_t capacity,
                                     size_t *needed);
/* Replaces the state with a blob from klc_optimizer_save_state. Everything is validated
 * before anything is written: a wrong magic, format version, kind, n_params, number of
 * arrays or size, a negative step, or a moment that is not finite (or a negative
 * exp_avg_sq) fails with KLC_ERR_FORMAT and a message saying which, and leaves the
 * optimizer unchanged. */
KLC_API int klc_optimizer_load_state(klc_optimizer *opt, const void *buf, size_t size);

/* The moment arrays as named float arrays, for checkpoints that store tensors by name:
 * Adam kinds have "exp_avg" and "exp_avg_sq", SGD with momentum "momentum_buffer" (the
 * names of torch's optimizer state), other SGD none. */
KLC_API int32_t klc_optimizer_num_tensors(const klc_optimizer *opt);
/* Tensor `index` (0 <= index < klc_optimizer_num_tensors): its name (static storage), its
 * data (borrowed for the optimizer's life; the values change with every step and load)
 * and its length (n_params). Any of the outputs may be NULL. */
KLC_API int klc_optimizer_tensor(const klc_optimizer *opt, int32_t index, const char **name,
                                 const float **data, size_t *count);

/* ------------------------------------------------------------------------------------ */
/* Batches and sampling                                                                 */
/* ------------------------------------------------------------------------------------ */

/* klc_batch holds up to `capacity` token sequences, right-padded to max_len (both fixed at
 * creation), and the per-sequence values that the steps of training fill in. Sequence i is
 * its prompt (context) tokens followed by its generated tokens:
 *
 *   tokens[i*max_len .. i*max_len + lengths[i] - 1]   the sequence; the rest is padding
 *   prompt_lengths[i]   how many leading tokens are context (>= 1: without a prompt, the
 *                       beginning-of-sequence token counts as the prompt); this is klc_seqs'
 *                       score_from, so log q, log a and log pi all sum the predictions of the
 *                       generated tokens prompt_lengths[i] .. lengths[i]-1 (end-of-text token
 *                       included, prompt excluded)
 *   context_ids[i]      which context the sequence continues (0 without contexts)
 *   sample_ids[i]       the sequence's global index within the step (keys random numbers)
 *   seq_flags[i]        KLC_SEQ_* bits
 *
 * Slots, per sequence in double (sums over the generated positions):
 *   logq   log q(x): the proposal, i.e. the distribution the sequence was sampled from
 *   loga   log a(x): the base model
 *   logpi  log pi(x): the policy
 *   logP   log P(x): the unnormalised target; may be -inf (P(x) = 0)
 *   phi    [n_seq * n_features] features, row-major
 * and per token in float, [i*max_len + t] = the log-probability of token t+1 given tokens
 * 0..t (the layout of klc_forward_options.token_logprobs, so a score can write into them
 * directly): logq_tok, loga_tok, logpi_tok. Positions that predict no generated token are 0.
 *
 * Every accessor returns a pointer borrowed from the batch, valid until the batch is
 * destroyed (the storage never moves); the arrays have `capacity` rows, of which the first
 * klc_batch_size() are in use. Slots a step has not filled hold NaN (per sequence) or 0 (per
 * token); the KLC_BATCH_HAS_* flags say which were filled. */
typedef struct klc_batch klc_batch;

enum {
    KLC_BATCH_FULL_SUPPORT = 1u << 0, /* logq describes a proposal that gives every sequence
                                         a positive probability (pure ancestral sampling):
                                         importance weights P/q are unbiased */
    KLC_BATCH_HAS_LOGQ = 1u << 1,
    KLC_BATCH_HAS_LOGA = 1u << 2,
    KLC_BATCH_HAS_LOGPI = 1u << 3,
    KLC_BATCH_HAS_LOGP = 1u << 4,
    KLC_BATCH_HAS_PHI = 1u << 5
};

enum {
    KLC_SEQ_TRUNCATED = 1u << 0 /* the sequence reached its length limit (maximum new tokens or
                                   max_len) without producing the end-of-text token */
};

/* A batch for up to capacity sequences of up to max_len tokens with n_features features
 * (>= 0). It starts empty (klc_batch_size() == 0). allocator may be NULL. */
KLC_API int klc_batch_create(int32_t capacity, int32_t max_len, int32_t n_features,
                             const klc_allocator *allocator, klc_batch **out);
KLC_API void klc_batch_destroy(klc_batch *batch);

/* Replaces the batch's contents with caller-provided sequences (offline data): tokens and
 * lengths are copied; seqs->score_from gives the prompt lengths (NULL: 1, the first token
 * alone is context); seqs->sample_ids the global indices (NULL: 0, 1, 2, ...); context_ids
 * [seqs->n_seq] may be NULL (all 0). Every slot is reset (NaN, or 0 per token) and the batch
 * flags and sequence flags cleared. Lengths must be in [1, max_len] of the batch, token ids
 * >= 0 (the vocabulary is checked by whatever model reads the batch), n_seq in
 * [0, capacity]. On failure the batch is unchanged. */
KLC_API int klc_batch_fill(klc_batch *batch, const klc_seqs *seqs, const int32_t *context_ids);
/* Empties the batch (size 0, flags cleared). */
KLC_API int klc_batch_clear(klc_batch *batch);

/* The batch as klc_seqs (score_from = prompt lengths, sample_ids = the global indices) for
 * klc_model_score, klc_model_forward and the others. The view borrows the batch's arrays. */
KLC_API int klc_batch_seqs(const klc_batch *batch, klc_seqs *out);

/* Sizes. Each returns a negative status for a NULL batch. */
KLC_API int32_t klc_batch_size(const klc_batch *batch); /* sequences in use */
KLC_API int32_t klc_batch_capacity(const klc_batch *batch);
KLC_API int32_t klc_batch_max_len(const klc_batch *batch);
KLC_API int32_t klc_batch_n_features(const klc_batch *batch);

/* KLC_BATCH_* bits. A step that fills a slot sets its HAS bit; the sampler sets
 * KLC_BATCH_HAS_LOGQ and, for pure ancestral sampling only, KLC_BATCH_FULL_SUPPORT. */
KLC_API uint32_t klc_batch_flags(const klc_batch *batch);
KLC_API int klc_batch_set_flags(klc_batch *batch, uint32_t flags);

/* Borrowed arrays (NULL for a NULL batch; phi is NULL when n_features is 0). Writable, so
 * that the steps of a custom loop can fill them. */
KLC_API int32_t *klc_batch_tokens(klc_batch *batch);         /* [capacity * max_len] */
KLC_API int32_t *klc_batch_lengths(klc_batch *batch);        /* [capacity] */
KLC_API int32_t *klc_batch_prompt_lengths(klc_batch *batch); /* [capacity] */
KLC_API int32_t *klc_batch_context_ids(klc_batch *batch);    /* [capacity] */
KLC_API int64_t *klc_batch_sample_ids(klc_batch *batch);     /* [capacity] */
KLC_API uint32_t *klc_batch_seq_flags(klc_batch *batch);     /* [capacity], KLC_SEQ_* */
KLC_API double *klc_batch_logq(klc_batch *batch);            /* [capacity] */
KLC_API double *klc_batch_loga(klc_batch *batch);            /* [capacity] */
KLC_API double *klc_batch_logpi(klc_batch *batch);           /* [capacity] */
KLC_API double *klc_batch_logP(klc_batch *batch);            /* [capacity] */
KLC_API double *klc_batch_phi(klc_batch *batch);             /* [capacity * n_features] */
KLC_API float *klc_batch_logq_tok(klc_batch *batch);         /* [capacity * max_len] */
KLC_API float *klc_batch_loga_tok(klc_batch *batch);         /* [capacity * max_len] */
KLC_API float *klc_batch_logpi_tok(klc_batch *batch);        /* [capacity * max_len] */

/* klc_sampler draws sequences from a model by ancestral sampling with its KV cache: the
 * prompts of up to max_rows sequences are prefilled in one batched forward, then every
 * step samples one token for each unfinished sequence and decodes only those (finished
 * sequences are dropped from the work). All memory (the KV cache, one logits buffer for
 * max_rows rows, selection scratch, and the model's work buffers for the prefill, through
 * klc_model_reserve) is planned at creation; a sampling call allocates nothing.
 *
 * The model is borrowed: it must outlive the sampler, and it must not be used by any other
 * call while klc_sampler_sample runs. Sampling runs the model's inference forward, so a
 * training forward's kept activations are gone afterwards (klc_model_backward then returns
 * KLC_ERR_STATE); sample before the training forward, or backward before sampling.
 *
 * Each sequence draws its token at position t from the uniform
 * klc_rng_uniform(rng, sample_id, t) (rng as given in the sampling options, normally keyed
 * (seed, KLC_STREAM_SAMPLE, step)), by inverting the cumulative distribution. Its random
 * numbers therefore depend only on its global index and positions, never on how sequences
 * are grouped: n sequences in one call, or in several calls with first_sample set to each
 * group's first global index, or with another max_rows, draw the same numbers and give the
 * same tokens. The model's products round differently for different numbers of rows
 * (OpenBLAS picks kernels by shape), so the log-probabilities recorded may differ in the
 * last float bits between groupings, and a token could in principle differ where a uniform
 * falls within that rounding of a boundary of the cumulative distribution; the same call
 * on the same machine and thread count repeats bit for bit. */
typedef struct klc_sampler klc_sampler;

#define KLC_SAMPLER_OPTIONS_VERSION 1
typedef struct klc_sampler_options {
    uint32_t version;
    int32_t max_rows;       /* sequences decoded together; default 32 */
    int32_t max_len;        /* longest sequence, prompt included, <= the model's n_ctx;
                               default 0: min(64, n_ctx) */
    int32_t max_prompt_len; /* longest prompt, < max_len; default 0: max_len / 2 (at least 1) */
    const klc_allocator *allocator; /* NULL: malloc/free */
} klc_sampler_options;

KLC_API int klc_sampler_options_init(klc_sampler_options *opts, uint32_t version);
/* A sampler for `model` (borrowed; see above). Fails with KLC_ERR_INVALID_ARGUMENT when
 * max_len exceeds the model's n_ctx or the sizes are inconsistent. Create it after
 * klc_set_num_threads: a sampling call fails with KLC_ERR_STATE if more threads are set
 * than it was planned for. */
KLC_API int klc_sampler_create(klc_model *model, const klc_sampler_options *opts,
                               klc_sampler **out);
KLC_API void klc_sampler_destroy(klc_sampler *sampler);
/* Bytes the sampler holds (not counting the model's own work buffers). */
KLC_API size_t klc_sampler_bytes(const klc_sampler *sampler);

#define KLC_SAMPLE_OPTIONS_VERSION 2
typedef struct klc_sample_options {
    uint32_t version;
    /* The generator; klc_sample_options_init sets (seed 0, KLC_STREAM_SAMPLE, step 0). */
    klc_rng rng;
    int64_t first_sample; /* global index of the call's first sequence; default 0 */
    /* The distribution sampled from at each position: the model's logits divided by
     * temperature, then restricted to the top_k most probable tokens, then to the smallest
     * set of most probable tokens whose probability reaches top_p, renormalised. Ties in
     * probability are broken by the smaller token id. Only temperature 1, top_k 0 (or
     * >= vocabulary) and top_p 1 sample from the model itself with full support
     * (KLC_BATCH_FULL_SUPPORT). */
    double temperature;     /* > 0; default 1 */
    int32_t top_k;          /* >= 0; 0: off (default) */
    double top_p;           /* in (0, 1]; default 1 (off) */
    int32_t max_new_tokens; /* >= 1, or 0 (default): until max_len */
    /* The end-of-text token: a sequence stops after producing it, and it is part of the
     * sequence. -1: none (every sequence runs to its length limit). Default 50256 (GPT-2). */
    int32_t eos_id;
    /* Prompts. contexts NULL: every sequence starts from bos_id (default 50256, GPT-2's
     * end-of-text token, which it uses as a beginning), a prompt of length 1, context id 0.
     * Otherwise contexts->n_seq contexts, context c being contexts->tokens[c*max_len ..]
     * of length contexts->lengths[c] (1 .. max_prompt_len; score_from and sample_ids are
     * ignored); one context is a fixed prefix. Sequence i continues context
     * context_ids[i] (an array [n_seq], each in [0, contexts->n_seq)) or, when context_ids
     * is NULL, (first_sample + i) mod contexts->n_seq. */
    int32_t bos_id;
    const klc_seqs *contexts;
    const int32_t *context_ids;
    /* Version 2. */
    uint32_t flags; /* KLC_SAMPLE_*; default 0 */
} klc_sample_options;

enum {
    /* Keep the model's activations of the sampled sequences for the next
     * klc_model_forward_backward of the same model on exactly this batch (on-policy
     * training: the policy samples, then learns from its samples), which then skips its
     * forward through the blocks and the embeddings (a fifth of that call's work). Decoding
     * writes them into the model's training workspace, so the model needs one
     * (klc_model_reserve with training) of at least n_seq sequences of the call's length
     * limit, and every prompt of the call must have the same length; otherwise nothing is
     * kept. The flag never changes what is sampled. The kept activations are used only
     * while they are provably those of the batch: same tokens and lengths, parameters
     * unchanged (checked by a hash), no other forward of the model in between, no dropout
     * asked for; the forward/backward computes them itself otherwise. */
    KLC_SAMPLE_KEEP_ACTIVATIONS = 1u << 0
};

KLC_API int klc_sample_options_init(klc_sample_options *opts, uint32_t version);

/* Replaces the contents of `out` with n_seq (1 .. capacity of out) sequences sampled from
 * the model, with global indices first_sample .. first_sample + n_seq - 1. It fills tokens,
 * lengths, prompt lengths, context ids, sample ids, sequence flags (KLC_SEQ_TRUNCATED), logq
 * and logq_tok (the log-probabilities under the distribution actually sampled from, after
 * temperature, top-k and top-p; sums in double), resets the other slots, and sets the batch
 * flags to KLC_BATCH_HAS_LOGQ, plus KLC_BATCH_FULL_SUPPORT for pure ancestral sampling.
 * A sequence's length limit is min(prompt + max_new_tokens, the sampler's max_len, the
 * batch's max_len).
 *
 * Arguments are checked before anything changes: a bad option, prompt token or context
 * id fails with KLC_ERR_INVALID_ARGUMENT and leaves the batch unchanged. A failure while
 * sampling (KLC_ERR_NUMERIC for logits that are NaN or infinite) leaves the batch empty.
 * The sampler stays usable either way. */
KLC_API int klc_sampler_sample(klc_sampler *sampler, const klc_sample_options *opts, int32_t n_seq,
                               klc_batch *out);

/* ------------------------------------------------------------------------------------ */
/* Features and targets                                                                 */
/* ------------------------------------------------------------------------------------ */

/* A feature phi(x) maps a generated sequence to dim real numbers; a target is the energy
 * based model P(x) = a(x) * prod_i b_i(x) * exp(sum_j lambda_j phi_j(x)) built from
 * features over a frozen base model a.
 *
 * What a feature sees of a batch: n generated sequences. Sequence i is
 * ids[i*stride .. i*stride + lengths[i] - 1]: the generated tokens only (the prompt is
 * excluded), the end-of-text token included when the sequence ended with one. texts[i]
 * is the decoding of those tokens without a final end-of-text token (so that text
 * features never see "<|endoftext|>"), text_lengths[i] bytes, UTF-8 that need not be
 * valid (a cut sequence may end inside a character) and need not be NUL-terminated;
 * texts[i] may be NULL only when text_lengths[i] is 0. texts is NULL when the caller has
 * no tokenizer: features that read text then fail with KLC_ERR_INVALID_ARGUMENT, naming
 * themselves. context_ids[i] (NULL: every sequence has context 0) identifies the prompt
 * sequence i continues, for conditional features phi(x, c).
 *
 * struct_size is sizeof(klc_seq_batch) as the caller compiled it: fields are only ever
 * appended, and a feature reads a field only if struct_size covers it. Set it to
 * sizeof(klc_seq_batch). */
typedef struct klc_seq_batch {
    uint32_t struct_size;
    int32_t n;                  /* sequences, >= 0 */
    int32_t stride;             /* >= every length, >= 0 */
    const int32_t *ids;         /* [n*stride]; may be NULL when every length is 0 */
    const int32_t *lengths;     /* [n], each in 0..stride */
    const char *const *texts;   /* [n] or NULL */
    const size_t *text_lengths; /* [n] when texts is not NULL */
    const int32_t *context_ids; /* [n] or NULL */
} klc_seq_batch;

typedef struct klc_feature klc_feature;

/* A feature written by the caller (in C or through FFI), and every built-in one too.
 * score_batch writes out[i*dim + k], the k-th value for sequence i, for the whole batch
 * in one call (a classifier batches its forward; an FFI callback pays one call per
 * batch), and returns 0, or non-zero to stop the operation with KLC_ERR_CALLBACK. Every
 * value written must be finite (KLC_ERR_NUMERIC otherwise, naming the feature, the
 * sequence and the dimension). The batch and its arrays are valid only during the call.
 * release (NULL: nothing to release) runs exactly once, when the feature is destroyed.
 * Callbacks run on the calling thread, never concurrently and never re-entrantly. */
#define KLC_FEATURE_OPS_VERSION 1
typedef struct klc_feature_ops {
    uint32_t version; /* KLC_FEATURE_OPS_VERSION */
    const char *name; /* copied; shown in every message about the feature */
    int32_t dim;      /* >= 1 */
    int (*score_batch)(void *self, const klc_seq_batch *seqs, double *out /* [n*dim] */);
    void (*release)(void *self); /* optional */
} klc_feature_ops;

/* How a lexicon feature turns the values of the entries found in a text into one number.
 * Each occurrence counts (a word found twice adds its value twice). */
enum {
    KLC_AGGREGATE_SUM = 0,  /* sum of the values found; 0 when none */
    KLC_AGGREGATE_MEAN = 1, /* their mean; 0 when none */
    KLC_AGGREGATE_COUNT = 2 /* the number of occurrences, whatever their values */
};

enum {
    /* Word, word list, lexicon and regex features: ignore case (see "Words" below). */
    KLC_FEATURE_CASELESS = 1
};

#define KLC_FEATURE_OPTIONS_VERSION 1
typedef struct klc_feature_options {
    uint32_t version;
    /* The feature's name (copied). NULL: the constructor's default, e.g. "word:sea",
     * "word_list:sport.txt" (a file's base name), "lexicon:afinn-111.tsv", "length",
     * "regex:<pattern>"; for klc_feature_create, the ops' name. */
    const char *name;
    uint32_t flags;    /* KLC_FEATURE_*; default 0 (case-sensitive) */
    int32_t aggregate; /* lexicons: KLC_AGGREGATE_*; default KLC_AGGREGATE_SUM */
    /* Lexicon files: the value of an entry on a line without a TAB, so that a plain word
     * list (e.g. a list of positive words) is a lexicon; default 1. Must be finite. */
    double default_value;
    const klc_allocator *allocator; /* NULL: malloc/free */
} klc_feature_options;

KLC_API int klc_feature_options_init(klc_feature_options *opts, uint32_t version);

/* A feature from a caller's ops and state. The ops struct and the name are copied. opts
 * may be NULL; only its name (overriding ops->name) and allocator are used. ops must
 * have version 1..KLC_FEATURE_OPS_VERSION, a non-empty name, dim >= 1 and a
 * score_batch. If this call fails, release is not called: self still belongs to the
 * caller. */
KLC_API int klc_feature_create(const klc_feature_ops *ops, void *self,
                               const klc_feature_options *opts, klc_feature **out);

/* Calls release (once) and frees the handle. NULL is allowed. */
KLC_API void klc_feature_destroy(klc_feature *feature);

/* The feature's name (borrowed) and dimension; NULL / -1 for a NULL feature. */
KLC_API const char *klc_feature_name(const klc_feature *feature);
KLC_API int32_t klc_feature_dim(const klc_feature *feature);

/* Scores a batch: out[i*dim + k] for i < seqs->n. Checks the batch (struct_size, n,
 * stride, lengths, texts), calls score_batch and checks that every value is finite. A
 * non-zero return from a caller's score_batch gives KLC_ERR_CALLBACK with a message
 * naming the feature and the value returned; the feature stays usable. out is written
 * only by score_batch (its content after a failure is unspecified). */
KLC_API int klc_feature_score(klc_feature *feature, const klc_seq_batch *seqs, double *out);

/* --- Built-in features -------------------------------------------------------------- */

/* Words. Text features read texts[i] only. A text is cut into pieces, each a maximal run
 * of one kind, using PCRE2's Unicode tables:
 *   - a word: a maximal run of letters, combining marks and numbers (\p{L}, \p{M}, \p{N}):
 *     "café", "naïve", "x2", "Łódź", "日本語" are single words, and so is "cafe" + U+0301;
 *   - white space: a maximal run of Unicode white space (\s with Unicode semantics, which
 *     includes the no-break space);
 *   - any other character (punctuation, symbols, emoji, "_"), one piece per character.
 *     The right single quotation mark U+2019 counts as the apostrophe ' (so "don’t" and
 *     "don't" are the same), in texts and in lists alike;
 *   - bytes that are not well-formed UTF-8 are pieces that never match anything.
 * A list entry (a word or a phrase) is cut the same way, after removing white space at
 * both ends; it occurs in a text where the text has the same sequence of pieces, a white
 * space piece matching any run of white space. So matches are whole words: "sea" occurs
 * in "the sea.", "Sea-sick" (with KLC_FEATURE_CASELESS) and "sea's", but not in
 * "seasick", "seas" or "sea2"; "a+" occurs in "an a+ grade"; "fed up" in "fed\n up".
 * There is no Unicode normalisation: precomposed "é" (U+00E9) and "e" + U+0301 differ.
 *
 * Case: by default words compare byte for byte. With KLC_FEATURE_CASELESS both sides are
 * lower-cased first, character by character, with PCRE2's Unicode case tables (simple
 * one-to-one mappings: "É" -> "é", "Σ" -> "σ" everywhere (final sigma "ς" stays "ς"),
 * "ẞ" -> "ß"; a character with no single lower-case form, such as "İ", stays as it is).
 *
 * Counting (lexicons): the text is scanned left to right; at each piece the longest entry
 * that starts there is taken and the scan resumes after it, otherwise the scan moves one
 * piece on. So "not good" counts the entry "not good" and not also "good" when both are
 * listed, and occurrences never overlap.
 *
 * Files are UTF-8 text, one entry per line: lines end with LF (a CR before it is
 * removed), white space at both ends of a line is removed, empty lines are skipped, and
 * there are no comments. A file that cannot be read gives KLC_ERR_IO naming it; a bad
 * line gives KLC_ERR_FORMAT with "file:line: why" (invalid UTF-8, a NUL byte, a TAB in a
 * word list, a value that is not a finite number, a name that is not capitalised, an
 * entry listed twice with different values); a file without entries is KLC_ERR_FORMAT.
 * Duplicate entries with equal values are merged. Every word feature has dim 1. */

/* 1 when the word (or phrase) occurs in the text, else 0. */
KLC_API int klc_feature_word(const char *word, const klc_feature_options *opts, klc_feature **out);
/* 1 when any of words[0..n) occurs in the text, else 0 (n >= 1). */
KLC_API int klc_feature_word_list(const char *const *words, size_t n,
                                  const klc_feature_options *opts, klc_feature **out);
/* The same with the words read from a file, one per line. */
KLC_API int klc_feature_word_list_file(const char *path, const klc_feature_options *opts,
                                       klc_feature **out);
/* A real-valued score: each entry of the lexicon that occurs in the text contributes its
 * value, aggregated by opts->aggregate. From arrays (values[k] belongs to words[k], all
 * finite; n >= 1) or from a file whose lines are "entry<TAB>value" (AFINN's format) or
 * "entry" alone (a plain list, e.g. Hu and Liu's positive or negative words: value
 * opts->default_value, so -1 gives a negative list); value is a decimal number as strtod
 * reads it in the C locale, finite, with nothing after it but white space. */
KLC_API int klc_feature_lexicon(const char *const *words, const double *values, size_t n,
                                const klc_feature_options *opts, klc_feature **out);
KLC_API int klc_feature_lexicon_file(const char *path, const klc_feature_options *opts,
                                     klc_feature **out);
/* 1 when any of the names occurs as written (always case-sensitive: KLC_FEATURE_CASELESS
 * is refused), else 0, e.g. a list of female first names: "Mary" matches "Mary" and
 * "Mary's" but not "mary" or "MARY". Every name must start with an upper-case or
 * title-case letter (\p{Lu}, \p{Lt}). Names that are also common words ("May", "Hope")
 * match wherever they are capitalised, including at the start of a sentence. */
KLC_API int klc_feature_name_list(const char *const *names, size_t n,
                                  const klc_feature_options *opts, klc_feature **out);
KLC_API int klc_feature_name_list_file(const char *path, const klc_feature_options *opts,
                                       klc_feature **out);
/* The number of generated tokens, lengths[i] (the end-of-text token included when
 * present), as a real number. Needs no text. */
KLC_API int klc_feature_length(const klc_feature_options *opts, klc_feature **out);
/* 1 when the PCRE2 regular expression matches somewhere in the text, else 0. The pattern
 * is compiled with Unicode semantics (PCRE2_UTF and PCRE2_UCP: \w, \d, \b and [[:alpha:]]
 * know non-ASCII letters) and PCRE2_MATCH_INVALID_UTF (ill-formed bytes in a text never
 * match and never fail), plus PCRE2_CASELESS with KLC_FEATURE_CASELESS. A pattern that
 * does not compile gives KLC_ERR_INVALID_ARGUMENT with PCRE2's message and the offset; a
 * match that exceeds PCRE2's limits gives KLC_ERR_UNSUPPORTED naming the sequence. */
KLC_API int klc_feature_regex(const char *pattern, const klc_feature_options *opts,
                              klc_feature **out);

/* --- Targets ---------------------------------------------------------------------------- */

/* A target is P(x) = a(x) * prod_i b_i(x) * exp(sum_j lambda_j phi_j(x)), kept in log
 * space: log P = log a + sum_i log b_i + lambda . phi, with log b_i in {0, -inf}.
 *  - pointwise terms b_i: features whose every value is 0 or 1 (x must satisfy b_i);
 *  - moment terms: features with a wanted mean mu_bar (E_p[phi] = mu_bar) and one
 *    coefficient lambda per dimension, 0 when added, set by klc_target_fit (or by hand);
 *  - a reward term (klc_target_from_reward): a feature r with coefficient 1/beta, the
 *    optimum of KL-control: log P = log a + r / beta.
 * phi is the concatenation of the moment and reward features' values, in the order
 * the terms were added; lambda covers the moment terms only, in the same order.
 *
 * Features are borrowed: each must outlive the target and must not be used from another
 * thread while the target scores. The base model is borrowed too; the target never runs
 * it (log a is the caller's input, so it can come from a cache or another process) and
 * only hands it back through klc_target_base.
 *
 * Conditional targets P(x | c) have the same form: the target itself knows nothing of
 * contexts except that its features see context_ids; log a must be log a(x | c), lambda
 * is shared by all contexts, and the normalisers Z_c are the caller's (the trainer's)
 * business. klc_target_fit pools the samples it is given into one distribution.
 *
 * Every change that may change P (adding a term, setting lambda, a successful fit,
 * setting beta) increments klc_target_version, so that a running estimate of Z can tell
 * that it must start again. */
typedef struct klc_target klc_target;

#define KLC_TARGET_OPTIONS_VERSION 1
typedef struct klc_target_options {
    uint32_t version;
    const klc_allocator *allocator; /* NULL: malloc/free */
} klc_target_options;

KLC_API int klc_target_options_init(klc_target_options *opts, uint32_t version);

/* An empty target P = a (no terms). base may be NULL for a caller that computes log a
 * itself and needs no model (klc_target_base then returns NULL). opts may be NULL. */
KLC_API int klc_target_create(klc_model *base, const klc_target_options *opts, klc_target **out);
/* KL-control's implicit target: log P = log a + r / beta, with reward a feature of dim 1
 * and beta > 0 finite. The result is an ordinary target: terms may be added to it. */
KLC_API int klc_target_from_reward(klc_model *base, klc_feature *reward, double beta,
                                   const klc_target_options *opts, klc_target **out);
KLC_API void klc_target_destroy(klc_target *target);

/* A pointwise constraint: each of the feature's dims must be 0 or 1 on every sequence
 * scored (anything else fails with KLC_ERR_INVALID_ARGUMENT naming the feature, the
 * sequence and the value), and b is their product. */
KLC_API int klc_target_add_pointwise(klc_target *target, klc_feature *feature);
/* A moment constraint E_p[phi] = mu_bar (mu_bar[dim], finite, copied); its lambda starts
 * at 0. */
KLC_API int klc_target_add_moment(klc_target *target, klc_feature *feature, const double *mu_bar);

/* The base model given at creation (borrowed; may be NULL). */
KLC_API klc_model *klc_target_base(const klc_target *target);
/* Incremented by every change of P; 0 for NULL, >= 1 otherwise. */
KLC_API uint64_t klc_target_version(const klc_target *target);

enum { KLC_TERM_POINTWISE = 1, KLC_TERM_MOMENT = 2, KLC_TERM_REWARD = 3 };

/* One term of the target, for callers that lay out phi or lambda. */
#define KLC_TERM_INFO_VERSION 1
typedef struct klc_term_info {
    uint32_t version;     /* set by the caller */
    int32_t kind;         /* KLC_TERM_* */
    const char *name;     /* the feature's name (borrowed) */
    klc_feature *feature; /* borrowed */
    int32_t dim;
    int32_t phi_offset;    /* first index of its values in phi, or -1 (pointwise) */
    int32_t lambda_offset; /* first index of its coefficients in lambda, or -1 */
} klc_term_info;

/* The number of terms (-1 for NULL) and term `index` in the order added. */
KLC_API int32_t klc_target_num_terms(const klc_target *target);
KLC_API int klc_target_term_info(const klc_target *target, int32_t index, klc_term_info *out);
/* The length of phi (moment and reward dims) and of lambda (moment dims); -1 for NULL. */
KLC_API int32_t klc_target_phi_dim(const klc_target *target);
KLC_API int32_t klc_target_num_lambda(const klc_target *target);

/* lambda and mu_bar as arrays of klc_target_num_lambda values; n must be that number. */
KLC_API int klc_target_get_lambda(const klc_target *target, double *lambda, size_t n);
/* Sets lambda (finite values) and increments the version. */
KLC_API int klc_target_set_lambda(klc_target *target, const double *lambda, size_t n);
KLC_API int klc_target_get_mu_bar(const klc_target *target, double *mu_bar, size_t n);

/* beta of a target made by klc_target_from_reward; KLC_ERR_STATE for other targets.
 * Setting it (> 0, finite) increments the version. */
KLC_API int klc_target_get_beta(const klc_target *target, double *beta);
KLC_API int klc_target_set_beta(klc_target *target, double beta);

/* Scores a batch with every feature of the target, then combines as klc_target_combine
 * does. log_a [n]: log a(x_i) (NULL: 0, so that log_P_out receives log P - log a);
 * outputs, each optional (NULL: not written): log_P_out [n], phi_out [n*phi_dim],
 * b_out [n] (1 when every pointwise constraint holds, else 0). A failing feature fails the
 * call (its status, with the feature named); outputs are then unspecified. */
KLC_API int klc_target_log_prob(klc_target *target, const klc_seq_batch *seqs, const double *log_a,
                                double *log_P_out, double *phi_out, unsigned char *b_out);

/* log P from values already computed (after a change of lambda or beta, without scoring
 * the features again): log_P_out[i] = log_a[i] + lambda . phi_i (reward dims weighted
 * by 1/beta), or -inf when b[i] is 0 or log_a[i] is -inf. log_a and b may be NULL (0 and
 * all 1). Never NaN: a NaN or +inf in log_a, a non-finite phi, or a sum that overflows to
 * +inf fails with KLC_ERR_NUMERIC naming the sequence. -inf is a valid log P. */
KLC_API int klc_target_combine(const klc_target *target, int32_t n, const double *log_a,
                               const double *phi, const unsigned char *b, double *log_P_out);

/* --- Fitting lambda ------------------------------------------------------------------- */

/* klc_target_fit chooses lambda so that the target meets its moments on a sample:
 * given n samples x_i with features phi_i (the layout of klc_target_log_prob's phi_out),
 * pointwise indicators b_i and log importance weights log_w_i = log a(x_i) - log q(x_i)
 * of the proposal q they were drawn from (NULL when they come from a itself), the
 * self-normalised weights are
 *     w_i(lambda) proportional to exp(log_w_i) * b_i * exp(lambda . phi_i + r_i / beta)
 * (the reward part only for targets that have one), mu_hat(lambda) = sum w_i phi_i, and
 * the fit maximises the concave dual
 *     L(lambda) = lambda . mu_bar - log sum_i exp(log_w_i) b_i exp(lambda . phi_i + ...)
 * whose gradient is mu_bar - mu_hat and whose Hessian is -Cov_w(phi), starting from the
 * current lambda (from 0 if that already spreads the log-weights over more than
 * max_spread), until ||mu_bar - mu_hat||_2 < tol. Sums are in double, log-sum-exp
 * with the largest term taken out.
 *
 * Feasibility. A solution exists only if mu_bar lies inside the convex hull of the phi_i
 * of the samples that count (b_i = 1, finite log_w_i). Before iterating, each dimension
 * is checked: mu_bar_j must lie strictly between the smallest and the largest value the
 * samples reach (a value on the edge needs lambda_j = -inf or +inf: use a pointwise
 * constraint instead), or equal both when the feature is constant on the samples (its
 * lambda_j is then left as it is). A target outside the hull that passes these checks
 * (e.g. four mutually exclusive topics at 30% each) makes the dual unbounded: lambda
 * runs off to infinity while the residual stalls; the fit detects it when lambda . phi
 * spreads over more than max_spread across the samples (a weight ratio of e^max_spread)
 * without the residual falling below tol. Both cases fail with KLC_ERR_NUMERIC, a
 * message naming the feature (and dimension) and what the samples reach, and
 * report->infeasible = 1. A target on the hull's boundary in several dimensions at once
 * (e.g. four exclusive topics at exactly 25% each while some samples have none) is
 * approached with growing lambda and reported converged once within tol: check ess and
 * max_weight_share.
 *
 * On success lambda is replaced and the version incremented. On any failure (invalid
 * input, infeasible, NaN, no convergence within max_iter) the target is unchanged;
 * report is filled as far as the fit got either way. */
enum {
    KLC_FIT_NEWTON = 0,  /* damped Newton: (Cov + ridge) step, backtracking line search */
    KLC_FIT_GRADIENT = 1 /* gradient ascent with backtracking line search */
};

#define KLC_FIT_OPTIONS_VERSION 1
typedef struct klc_fit_options {
    uint32_t version;
    int32_t method;   /* KLC_FIT_*; default KLC_FIT_NEWTON */
    double tol;       /* > 0; default 1e-4 (a Euclidean norm in the features' units) */
    int32_t max_iter; /* >= 1; default 0: 100 for Newton, 10000 for gradient steps */
    /* Newton: added to the covariance's diagonal, times its largest diagonal entry
     * (plus 1e-300), so that a flat direction cannot make the step infinite; >= 0,
     * default 1e-9. */
    double ridge;
    double step;       /* gradient steps: the first step size tried; > 0, default 1 */
    double max_spread; /* > 0; default 50 (see "Feasibility") */
} klc_fit_options;

KLC_API int klc_fit_options_init(klc_fit_options *opts, uint32_t version);

#define KLC_FIT_REPORT_VERSION 1
typedef struct klc_fit_report {
    uint32_t version;         /* set by the caller */
    int32_t converged;        /* 1 when ||residual|| < tol */
    int32_t iterations;       /* steps taken */
    int32_t infeasible;       /* 1 when the target is outside what the samples reach */
    int32_t infeasible_index; /* the lambda index found outside its range, or -1 */
    int64_t n_used;           /* samples with b_i = 1 and finite log_w_i */
    double residual_norm;     /* ||mu_bar - mu_hat||_2 at the last lambda */
    /* The caller's buffer of klc_target_num_lambda doubles (NULL: not written):
     * mu_bar - mu_hat at the last lambda. */
    double *residual;
    double ess;              /* (sum w)^2 / sum w^2 of the final weights */
    double max_weight_share; /* the largest w_i / sum w */
    double spread;           /* max - min of lambda . phi_i over the samples used */
} klc_fit_report;

/* Fits lambda (see above). phi [n*phi_dim] as klc_target_log_prob writes it; b [n] (NULL:
 * all 1); log_w [n] (NULL: all 0; -inf drops a sample; NaN and +inf are errors); opts and
 * report may be NULL. A target without moment terms is KLC_ERR_STATE. */
KLC_API int klc_target_fit(klc_target *target, int64_t n, const double *phi, const unsigned char *b,
                           const double *log_w, const klc_fit_options *opts,
                           klc_fit_report *report);

/* ------------------------------------------------------------------------------------ */
/* Objectives, the gradient-estimator core and estimation helpers                       */
/* ------------------------------------------------------------------------------------ */

/* Every objective of klc has one shape (ALGORITHMS.md section 1). For a batch of N
 * sequences x_i (sampled from a proposal q, or listed with masses m_i), the core
 * minimises
 *     L = -sum_i m_i w_i log pi(x_i),      m_i = 1/N unless the caller gives masses,
 * with the weights w_i held constant, so that the gradient of L with respect to the logits
 * at a generated token t of x_i is m_i w_i (softmax_t - onehot(x_i,t)). Sequence-level
 * objectives give one weight per sequence; token-level objectives give per-token
 * coefficients (on, sm) per sequence, the logit gradient being
 * m_i (on * onehot + sm * softmax), so that a weight w is on = -w, sm = +w on every
 * generated position. N is always the whole batch, never a micro-batch: the coefficients
 * are computed once per step, and accumulating micro-batches gives the gradient of one
 * big batch.
 *
 * Everything is in log space: sequence log-probabilities are doubles, a target's log P(x)
 * may be -inf (P(x) = 0, e.g. a pointwise constraint that x violates) and every built-in
 * formula gives a finite weight for it (0 where only P/q appears). Importance weights are
 * exp(log P - log q - log Z_hat), normalised by the Z estimate the step view carries
 * (held fixed between Z checks), never by a per-batch shift. */

/* --- Metrics ----------------------------------------------------------------------------- */

/* A small table of named scalars (e.g. "beta", "kl", "baseline") that objectives and the
 * trainer report for a step, kept in insertion order. Names are at most
 * KLC_METRICS_NAME_MAX - 1 bytes and are copied. */
typedef struct klc_metrics klc_metrics;
#define KLC_METRICS_NAME_MAX 64

/* allocator may be NULL (malloc/free). */
KLC_API int klc_metrics_create(const klc_allocator *allocator, klc_metrics **out);
KLC_API void klc_metrics_destroy(klc_metrics *m);
/* Sets a value; a name already present keeps its position and gets the new value. An
 * empty or too long name is KLC_ERR_INVALID_ARGUMENT. */
KLC_API int klc_metrics_set(klc_metrics *m, const char *name, double value);
/* The value of a name, or NaN when absent (or m or name is NULL). */
KLC_API double klc_metrics_get(const klc_metrics *m, const char *name);
/* The number of entries (0 for NULL). */
KLC_API int32_t klc_metrics_count(const klc_metrics *m);
/* Entry i (0 <= i < count) in insertion order; *name is borrowed until the entry is
 * removed by klc_metrics_clear or the table destroyed. Either output may be NULL. */
KLC_API int klc_metrics_entry(const klc_metrics *m, int32_t i, const char **name, double *value);
/* Removes every entry (the memory is kept for reuse). */
KLC_API int klc_metrics_clear(klc_metrics *m);

/* --- The step view ------------------------------------------------------------------------ */

/* What an objective sees of one step of N = n_seq sequences; read-only. Per-sequence
 * arrays have n_seq elements; per-token arrays use the padded layout [n_seq*max_len] of
 * klc_forward_options.token_logprobs: element i*max_len + t is the log-probability of
 * token t+1 of sequence i given tokens 0..t. Sequence i holds its prompt (score_from[i]
 * tokens) and then its generated tokens, the end-of-text token included when it ended on
 * one; sequence log-probabilities sum the generated positions only (as klc_model_score's
 * seq_logprobs do). An array an objective does not ask for (see KLC_NEED_*) may be NULL.
 *
 * On-policy steps: when on_policy is non-zero the sequences were drawn from the policy
 * itself, with its current parameters and by pure ancestral sampling, so pi = q; logpi
 * and logpi_tok may then be NULL and the library uses logq and logq_tok in their place
 * (no second forward). Otherwise (samples from another proposal, from an earlier policy,
 * or a second pass over a batch after an update) the caller must supply logpi (and
 * logpi_tok for token-level objectives) from a klc_model_score of the current policy
 * first, for every objective that asks for KLC_NEED_POLICY_LOGP: the coefficients of the
 * whole batch are needed before the first micro-batch's backward. */
#define KLC_STEP_VIEW_VERSION 1
typedef struct klc_step_view {
    uint32_t version; /* KLC_STEP_VIEW_VERSION of the caller */
    int32_t n_seq, max_len;
    const int32_t *tokens;      /* [n_seq*max_len] */
    const int32_t *lengths;     /* [n_seq], each in 1..max_len */
    const int32_t *score_from;  /* [n_seq] prompt lengths, each in 1..lengths[i]; NULL: 1 */
    const int32_t *context_ids; /* [n_seq] contexts in 0..n_contexts-1, or NULL */
    const double *logq;         /* proposal q, the distribution the sequences were drawn from */
    const double *loga;         /* the base model a */
    const double *logpi;        /* the policy pi being trained, with its current parameters */
    const double *logP;         /* the unnormalised target; -inf where P(x) = 0 */
    const double *reward;       /* the reward r(x) of reward-maximising objectives */
    const float *logq_tok, *loga_tok, *logpi_tok; /* per token */
    int32_t n_features;
    const double *phi; /* [n_seq*n_features] feature values, for objectives that want them */
    /* The current estimate of log Z (klc_z_estimate), or NaN when there is none. With
     * conditional targets, log_z_ctx [n_contexts] holds one per context instead and
     * sequence i uses log_z_ctx[context_ids[i]]. */
    double log_z;
    int32_t n_contexts;
    const double *log_z_ctx;
    int32_t on_policy;    /* non-zero: q is the current policy (see above) */
    int32_t full_support; /* non-zero: q gives every sequence a positive probability (pure
                             ancestral sampling, no top-k/top-p/temperature below 1) */
    int64_t step;         /* the training step, for objectives with schedules */
} klc_step_view;

/* Zeroes a view and sets its version, log_z = NaN and everything else NULL or 0. */
KLC_API int klc_step_view_init(klc_step_view *view, uint32_t version);

/* --- Objectives ----------------------------------------------------------------------------- */

/* What an objective needs from a step, so that the trainer computes nothing more. Every
 * entry point below checks the view against them and fails with KLC_ERR_INVALID_ARGUMENT
 * (a missing array, a value out of range) or KLC_ERR_STATE (a step the objective cannot
 * use: no Z estimate, a proposal without full support, an off-policy step for an
 * on-policy objective) before calling the objective, naming it, the field and the reason. */
enum {
    KLC_NEED_BASE_LOGP = 1u << 0,     /* loga (and loga_tok with KLC_NEED_TOKEN_LOGP) */
    KLC_NEED_TARGET = 1u << 1,        /* logP, and log_z (or log_z_ctx) finite */
    KLC_NEED_FULL_SUPPORT = 1u << 2,  /* full_support (or on_policy) non-zero */
    KLC_NEED_POLICY_LOGP = 1u << 3,   /* logpi (or on_policy): see the step view */
    KLC_NEED_REWARD = 1u << 4,        /* reward */
    KLC_NEED_ON_POLICY = 1u << 5,     /* on_policy non-zero */
    KLC_NEED_TOKEN_LOGP = 1u << 6,    /* the per-token arrays of the log-probabilities asked,
                                         in place of the per-sequence ones */
    KLC_NEED_PROPOSAL_LOGP = 1u << 7, /* logq */
    KLC_NEED_FEATURES = 1u << 8,      /* phi with n_features >= 1 */
    /* Not a need but a property: the objective runs its own forward/backward/update loop
     * over a batch (PPO), so callers use klc_objective_update, not
     * klc_objective_accumulate. Only built-ins have it; klc_objective_create refuses it. */
    KLC_NEED_OWN_UPDATES = 1u << 9
};

/* An objective as a strategy struct: a user's own objective (in C, or through FFI) is no
 * different from the built-in ones, which are instances of it. The struct is copied at
 * create time; the name is copied too. Exactly one of weights and token_coeffs is set.
 * Callbacks run on the calling thread, never concurrently nor re-entrantly, and return
 * 0 on success; anything else stops the call with KLC_ERR_CALLBACK, whose message names
 * the objective, the callback and the value returned. */
#define KLC_OBJECTIVE_OPS_VERSION 2 /* version 1 (no state hooks) is still accepted */
typedef struct klc_objective_ops {
    uint32_t version; /* KLC_OBJECTIVE_OPS_VERSION */
    const char *name; /* non-empty; at most 63 bytes */
    uint32_t needs;   /* KLC_NEED_* */
    /* Sequence-level family: w_out[i] = w_i, the weight of sequence i. Must be finite. */
    int (*weights)(void *self, const klc_step_view *step, double *w_out /* [n_seq] */);
    /* Token-level family: per-sequence coefficients in the padded layout [n_seq*max_len],
     * zeroed before the call: the logit gradient of sequence i's loss at the prediction
     * i*max_len+t is on * onehot + sm * softmax (not yet multiplied by the mass m_i, which
     * the library applies). Positions t >= lengths[i]-1 are ignored; prompt positions
     * (t < score_from[i]-1) are used if set, so an objective may train on prompts. */
    int (*token_coeffs)(void *self, const klc_step_view *step, float *on, float *sm);
    /* Once per step, after the update (klc_objective_after_step): state updates such as
     * moving-average baselines and an adaptive beta, and metrics (m may be NULL).
     * Optional. */
    int (*after_step)(void *self, const klc_step_view *step, klc_metrics *m);
    /* Frees self. Optional; runs exactly once, at klc_objective_destroy. */
    void (*release)(void *self);
    /* --- Version 2: state for checkpoints (klc_objective_save_state). --- */
    uint32_t flags; /* KLC_OBJECTIVE_STATELESS or 0 */
    /* Writes the objective's whole state (everything that influences later steps:
     * baselines, an adaptive coefficient, a value head's parameters and its optimizer's
     * moments...) as an opaque blob in a format of the objective's choosing. Called first
     * with buf NULL and capacity 0: set *needed to the blob's size and write nothing;
     * then with a buffer of at least that size: write the blob and set *needed to the
     * bytes written. The same state must give the same bytes. Optional (see below). */
    int (*save_state)(void *self, void *buf, size_t capacity, size_t *needed);
    /* Replaces the state with a blob save_state wrote (possibly by another process, with
     * an objective made from the same options). It must validate the whole blob first and
     * leave the state unchanged when it fails (return non-zero; a built-in returns
     * KLC_ERR_FORMAT with a message). Required when save_state is set. */
    int (*load_state)(void *self, const void *buf, size_t size);
} klc_objective_ops;

/* klc_objective_ops.flags: the objective keeps no state between steps, so it needs no
 * state hooks even though it has an after_step callback (e.g. one that only reports
 * metrics). */
#define KLC_OBJECTIVE_STATELESS 1u

typedef struct klc_objective klc_objective;

/* An objective from a strategy struct (copied) and its state `self` (owned by the
 * objective from now on: release(self) runs at destroy). When this call fails, release
 * is not called and self stays the caller's. allocator may be NULL. */
KLC_API int klc_objective_create(const klc_objective_ops *ops, void *self,
                                 const klc_allocator *allocator, klc_objective **out);
/* Calls release once, then frees the objective. NULL is allowed. */
KLC_API void klc_objective_destroy(klc_objective *obj);
/* The name (borrowed), or "" for NULL. */
KLC_API const char *klc_objective_name(const klc_objective *obj);
/* The KLC_NEED_* flags, or 0 for NULL. */
KLC_API uint32_t klc_objective_needs(const klc_objective *obj);

/* The built-in objectives (ALGORITHMS.md section 1). With b a baseline:
 *  REINFORCE            w = R(x) - b, R = reward, on-policy.
 *  KL_CONTROL           w = r(x) - beta (log pi(x) - log a(x)) - b, on-policy (Ziegler),
 *                       fixed beta or Ziegler's adaptive controller.
 *  KL_CONTROL_TOKEN     per token: reward -beta (log pi_t - log a_t) on every generated
 *                       token and r(x) added on the last; each token's coefficient is its
 *                       reward-to-go sum_{s>=t} gamma^(s-t) r_s minus a baseline for its
 *                       position (counted from the first generated token). With gamma = 1
 *                       its expectation is KL_CONTROL's gradient; gamma < 1 trades bias for
 *                       variance.
 *  DPG                  w = P(x) / (Z_hat q(x)) (DPG, and GDC when P has constraints):
 *                       the gradient of the cross-entropy -sum_x p(x) log pi(x), scaled by
 *                       Z / Z_hat. Full support needed.
 *  GDCPP                w = P(x) / (Z_hat q(x)) - pi(x) / q(x): DPG with its baseline, the
 *                       same expected gradient with less variance. Full support needed.
 *  FDPG                 w = (pi(x)/q(x)) (-f'(t) - b), log t = log pi - log P + log Z_hat:
 *                       the gradient of D_f(pi || p) = sum_x p f(pi/p) for the chosen
 *                       divergence. Where P(x) = 0, t = +inf and f'(+inf) is used (forward
 *                       KL 0, JS (1/2) log 2, TV 1/2, chi-square 1); reverse KL refuses such
 *                       steps (KLC_ERR_UNSUPPORTED: log p = -inf has no finite gradient).
 *                       Full support needed.
 *  MLE                  w = 1: L is the mean negative log-likelihood per sequence (nats per
 *                       sequence), the scale of the other objectives. With token_mean set
 *                       it is per token instead, L = -(1/T) sum of every generated token's
 *                       log-probability, T the batch's generated tokens (Hugging Face's
 *                       loss), as a token-level objective.
 *  PPO                  Ziegler's optimiser for KL_CONTROL_TOKEN's rewards: a value head, GAE
 *                       and several clipped updates per batch, through klc_objective_update
 *                       (see "PPO" at the end of this header).
 * Baselines never use the sample they are applied to (that would bias the gradient):
 * MOVING_AVERAGE is the mean of the values of the last baseline_window batches that
 * klc_objective_after_step saw (0 before the first), LEAVE_ONE_OUT the mean over the
 * other sequences of the batch (the same position, for KL_CONTROL_TOKEN). The value
 * averaged is the sequence's R (REINFORCE), r - beta (log pi - log a) (KL_CONTROL), the
 * reward-to-go (KL_CONTROL_TOKEN) or (pi/q)(-f'(t)), an estimate of E_pi[-f'] (FDPG; with
 * the forward KL and b = 1 it is GDCPP). */
enum {
    KLC_OBJECTIVE_REINFORCE = 1,
    KLC_OBJECTIVE_KL_CONTROL = 2,
    KLC_OBJECTIVE_KL_CONTROL_TOKEN = 3,
    KLC_OBJECTIVE_DPG = 4,
    KLC_OBJECTIVE_GDCPP = 5,
    KLC_OBJECTIVE_FDPG = 6,
    KLC_OBJECTIVE_MLE = 7,
    KLC_OBJECTIVE_PPO = 8 /* see "PPO" below */
};

enum {
    KLC_BASELINE_DEFAULT = 0, /* MOVING_AVERAGE where the objective takes one, else NONE */
    KLC_BASELINE_NONE = 1,
    KLC_BASELINE_MOVING_AVERAGE = 2,
    KLC_BASELINE_LEAVE_ONE_OUT = 3
};

/* f-divergences of FDPG, as D_f(pi || p) = E_p[f(pi/p)] with t = pi/p. */
enum {
    KLC_DIVERGENCE_FORWARD_KL = 1, /* KL(p||pi): f = -log t, -f'(t) = p/pi (DPG) */
    KLC_DIVERGENCE_REVERSE_KL = 2, /* KL(pi||p): f = t log t, -f' = log p - log pi - 1 */
    KLC_DIVERGENCE_JS = 3,         /* Jensen-Shannon: f'(t) = (1/2) log(2t/(1+t)) */
    KLC_DIVERGENCE_TV = 4,         /* total variation: f'(t) = sign(t-1)/2 */
    KLC_DIVERGENCE_CHI2 = 5        /* chi-square (p||pi): f'(t) = 1 - t^-2 */
};

#define KLC_OBJECTIVE_OPTIONS_VERSION 2
typedef struct klc_objective_options {
    uint32_t version;
    int32_t kind;            /* KLC_OBJECTIVE_*; default KLC_OBJECTIVE_GDCPP */
    int32_t baseline;        /* KLC_BASELINE_*; default KLC_BASELINE_DEFAULT. DPG, GDCPP
                                and MLE take none (DEFAULT or NONE only) */
    int32_t baseline_window; /* batches in the moving average, >= 1; default 10 */
    double beta;             /* KL-control's initial beta, > 0; default 0.15 (Ziegler) */
    int32_t adaptive_beta;   /* 0 or 1: Ziegler's controller (below); default 0 */
    double kl_target;        /* the controller's KL target, nats per sequence, > 0; default 6 */
    double kl_horizon;       /* the controller's horizon in samples, > 0; default 10000 */
    int32_t divergence;      /* FDPG: KLC_DIVERGENCE_*; default forward KL */
    double gamma;            /* KL_CONTROL_TOKEN's discount, in (0, 1]; default 1 */
    int32_t token_mean;      /* MLE: 0 or 1, per-token mean; default 0 */
    const klc_allocator *allocator; /* NULL: malloc/free */
    /* Version 2: PPO (KLC_OBJECTIVE_PPO; defaults are Ziegler et al.'s). gamma above is
     * GAE's discount (default 1); beta, adaptive_beta, kl_target and kl_horizon are
     * KL-control's as above. Version 1 callers get these defaults. */
    int32_t ppo_epochs;            /* passes over each batch, >= 1; default 4 */
    int32_t ppo_minibatches;       /* updates per pass, >= 1, at most the batch; default 1 */
    double ppo_clip;               /* ratio clip epsilon, > 0; default 0.2 */
    double ppo_value_clip;         /* value clip around the old values, >= 0 (0: off);
                                      default 0.2 */
    double ppo_vf_coef;            /* value loss coefficient, >= 0; default 0.1 */
    double ppo_lambda;             /* GAE lambda, in [0, 1]; default 0.95 */
    int32_t ppo_whiten_advantages; /* 0 or 1; default 1 */
    int32_t ppo_whiten_rewards;    /* 0 or 1: Ziegler's whiten_rewards (r - mean)/std + mean
                                      over the batch's tokens; default 0 (see docs) */
    double ppo_value_lr;           /* the value head's Adam learning rate, >= 0; 0 (default):
                                      the policy optimizer's rate of each update */
} klc_objective_options;

KLC_API int klc_objective_options_init(klc_objective_options *opts, uint32_t version);
/* A built-in objective. Invalid options fail with KLC_ERR_INVALID_ARGUMENT naming the
 * field. Needs: REINFORCE reward + on-policy; KL_CONTROL reward + base + policy +
 * on-policy (+ per token for KL_CONTROL_TOKEN); DPG target + proposal + full support;
 * GDCPP and FDPG the same + policy; MLE nothing; PPO as KL_CONTROL_TOKEN. */
KLC_API int klc_objective_builtin(const klc_objective_options *opts, klc_objective **out);

/* KL-control's current beta: with adaptive_beta, klc_objective_after_step moves it by
 * Ziegler's rule e = clip(KL/kl_target - 1, -0.2, 0.2), beta <- beta (1 + e n/kl_horizon),
 * KL the batch mean of log pi(x) - log a(x) in nats per sequence and n the step's
 * sequences (for PPO, of the per-token sums of log pi_old - log a). KL_CONTROL,
 * KL_CONTROL_TOKEN and PPO; NaN for other objectives. */
KLC_API double klc_objective_beta(const klc_objective *obj);
/* Sets KL-control's beta (> 0), e.g. when resuming; KLC_ERR_UNSUPPORTED for others. */
KLC_API int klc_objective_set_beta(klc_objective *obj, double beta);

/* The objective's weights for a step, after checking the view against its needs; w
 * [n_seq]. Token-level objectives fail with KLC_ERR_UNSUPPORTED (use
 * klc_objective_token_coeffs). */
KLC_API int klc_objective_weights(klc_objective *obj, const klc_step_view *step, double *w);
/* The logit-gradient coefficients of the whole loss L with masses 1/N, exactly what
 * klc_objective_accumulate gives the model: for sequence-level objectives on = -w/N and
 * sm = +w/N on the generated positions, 0 elsewhere; token-level ones their coefficients
 * divided by N. The view must have lengths. on and sm [n_seq*max_len]. */
KLC_API int klc_objective_token_coeffs(klc_objective *obj, const klc_step_view *step, float *on,
                                       float *sm);
/* Runs the objective's after_step once per step, after the update: moving-average
 * baselines take in this batch and an adaptive beta moves. metrics may be NULL. The view
 * is checked as for the weights. A failing callback leaves the objective usable. */
KLC_API int klc_objective_after_step(klc_objective *obj, const klc_step_view *step,
                                     klc_metrics *metrics);

/* --- Objective state ------------------------------------------------------------------- */

/* The objective's state as a blob, for checkpoints (klc_trainer_save_checkpoint calls
 * these). An objective with save_state/load_state hooks saves through them; every built-in
 * has them (blob layout in docs/checkpoints.md: the moving-average baseline's ring of the
 * last baseline_window batches, KL-control's current beta, PPO's value head and its Adam
 * state). An objective without hooks
 * has an empty state (0 bytes) when it has no after_step callback or declares
 * KLC_OBJECTIVE_STATELESS; otherwise it may keep state that cannot be saved, and saving
 * fails with KLC_ERR_UNSUPPORTED naming the objective rather than silently dropping it.
 * Two-phase like klc_optimizer_save_state: *needed (may be NULL) receives the blob's
 * size; buf NULL with capacity 0 asks for it; a capacity below it writes nothing and
 * fails with KLC_ERR_INVALID_ARGUMENT. */
KLC_API int klc_objective_save_state(klc_objective *obj, void *buf, size_t capacity,
                                     size_t *needed);
/* Replaces the state with a blob from klc_objective_save_state of an objective of the same
 * kind and options. A blob that does not fit (another objective, another baseline window,
 * a truncated or corrupt blob) fails (KLC_ERR_FORMAT for built-ins, KLC_ERR_CALLBACK for a
 * user's hook) and leaves the objective unchanged. size 0 is accepted by objectives
 * without state. */
KLC_API int klc_objective_load_state(klc_objective *obj, const void *buf, size_t size);

/* --- The gradient-estimator core -------------------------------------------------------- */

#define KLC_ACCUMULATE_OPTIONS_VERSION 1
typedef struct klc_accumulate_options {
    uint32_t version;
    /* Sequences per klc_model_forward_backward; 0 (default) or >= n_seq: one pass. Only
     * the memory changes: the result is the whole batch's gradient either way. */
    int32_t micro_batch;
    /* Masses m_i [n_seq] of the sequences in L, or NULL (default): 1/N each. A batch that
     * lists every sequence once with m_i = q(x_i) gives the exact expectation of the
     * estimator under q. Objectives compute their weights (and batch statistics such as
     * leave-one-out baselines) without seeing the masses. */
    const double *mass;
    uint32_t forward_flags; /* KLC_FORWARD_*, e.g. dropout; default 0 */
    klc_rng dropout;        /* keys the dropout masks, with seqs->sample_ids */
    /* Optional outputs (NULL: not written). */
    double *weights_out; /* [n_seq] the sequence weights; NaN for token-level objectives */
    double *logpi_out;   /* [n_seq] log pi(x_i) from the training forward (with dropout if
                            asked), a by-product for metrics */
} klc_accumulate_options;

KLC_API int klc_accumulate_options_init(klc_accumulate_options *opts, uint32_t version);

/* The estimator core: computes the objective's coefficients for the whole batch once,
 * multiplies them by the masses, then runs klc_model_forward_backward micro-batch by
 * micro-batch over slices of seqs and of the coefficients, adding (+=) the gradient of L
 * to the model's gradient block (zero it first for a fresh step). seqs is what the model
 * reads; the view's tokens, lengths and score_from are taken from seqs (the view's own are
 * ignored), and its n_seq and max_len must equal seqs's. opts may be NULL (defaults).
 * Missing arrays, invalid views and refused steps fail before the model is touched; a
 * non-finite coefficient fails with KLC_ERR_NUMERIC naming the sequence. A model error in
 * micro-batch k leaves the gradients of micro-batches 0..k-1 accumulated (the message
 * says which). Coefficient buffers are allocated per call with the objective's
 * allocator. */
KLC_API int klc_objective_accumulate(klc_objective *obj, klc_model *model,
                                     const klc_step_view *step, const klc_seqs *seqs,
                                     const klc_accumulate_options *opts);

/* --- Estimation helpers ------------------------------------------------------------------ */

/* Monte-Carlo estimates over n samples x_i ~ q given as arrays of sequence
 * log-probabilities (doubles; logP may hold -inf, the others must be finite). All sums are
 * in double, importance weights in log space. Each writes its result to *out and fails
 * with KLC_ERR_INVALID_ARGUMENT on n < 1, a NULL array or a value out of range (naming
 * the index). ALGORITHMS.md section 2. */

/* log Z_hat = logsumexp_i(logP_i - logq_i) - log n, an unbiased estimate of Z (in linear
 * space). -inf when every P is 0. */
KLC_API int klc_estimate_log_z(int32_t n, const double *logP, const double *logq, double *out);
/* The proposal-update criterion (1/n) sum_i (P_i/q_i)(log q_i - log pi_i) / Z, which
 * estimates KL(p||pi) - KL(p||q): when it is negative, pi is closer to p than q is, and q
 * should become a copy of pi. Its sign does not depend on log_z, which must be finite. */
KLC_API int klc_estimate_proposal_criterion(int32_t n, const double *logP, const double *logq,
                                            const double *logpi, double log_z, double *out);
/* KL(p||m) ~ -log Z + (1/Z) mean_i[(P_i/q_i)(log P_i - log m_i)], terms with P = 0
 * counting 0; m is any model scored on the samples (pi, or q itself). */
KLC_API int klc_estimate_kl_target(int32_t n, const double *logP, const double *logq,
                                   const double *logm, double log_z, double *out);
/* TV(p, m) ~ 0.5 mean_i |m_i/q_i - P_i/(Z q_i)|. */
KLC_API int klc_estimate_tv_target(int32_t n, const double *logP, const double *logq,
                                   const double *logm, double log_z, double *out);
/* KL(m||a) ~ mean_i(log m_i - log a_i) over samples x_i ~ m, e.g. KL(pi||a) (forgetting)
 * on samples of the policy. */
KLC_API int klc_estimate_kl_sampled(int32_t n, const double *logm, const double *loga, double *out);
/* The effective sample size of the importance weights P/q, (sum w)^2 / sum w^2 in 0..n
 * (0 when every P is 0), and the largest weight's share max w / sum w (0 when every P is
 * 0). Either output may be NULL. */
KLC_API int klc_estimate_ess(int32_t n, const double *logP, const double *logq, double *ess,
                             double *max_share);

/* --- The running Z estimate --------------------------------------------------------------- */

/* The running estimate of Z over the checks made since the target last changed: each
 * check k adds log Z_k (from klc_estimate_log_z, or a batch), and the estimate is their
 * mean in linear space, log Z_MA = logsumexp_k(log Z_k) - log k, unbiased whatever q each
 * check used (the mean of the log Z_k would be biased low). The target has a version
 * number the caller chooses: a check made under a different version than the one held
 * resets every context first (P changed: lambda refit, new beta). Conditional targets
 * keep one estimate per context 0..n_contexts-1. */
typedef struct klc_z_estimate klc_z_estimate;

/* n_contexts >= 1 (1 for unconditional targets); allocator may be NULL. */
KLC_API int klc_z_estimate_create(int32_t n_contexts, const klc_allocator *allocator,
                                  klc_z_estimate **out);
KLC_API void klc_z_estimate_destroy(klc_z_estimate *z);
/* Adds one check's log Z_k (finite or -inf) for a context, made under target_version. */
KLC_API int klc_z_estimate_add(klc_z_estimate *z, uint64_t target_version, int32_t context,
                               double log_z_k);
/* Adds one check per context present in a batch of q-samples: log Z_k of each context from
 * its own samples (context_ids [n] may be NULL: all context 0). */
KLC_API int klc_z_estimate_add_batch(klc_z_estimate *z, uint64_t target_version, int32_t n,
                                     const int32_t *context_ids, const double *logP,
                                     const double *logq);
/* Forgets every check and holds target_version from now on. */
KLC_API int klc_z_estimate_reset(klc_z_estimate *z, uint64_t target_version);
/* The estimate log Z_MA of a context, NaN before its first check. */
KLC_API double klc_z_estimate_log_z(const klc_z_estimate *z, int32_t context);
/* The estimates of every context [n_contexts] (NaN where none), borrowed until the next
 * change: what a step view's log_z_ctx wants. */
KLC_API const double *klc_z_estimate_table(const klc_z_estimate *z);
/* The checks a context's estimate averages (0 after a reset), or -1 on a bad argument. */
KLC_API int64_t klc_z_estimate_checks(const klc_z_estimate *z, int32_t context);
/* The target version held. */
KLC_API uint64_t klc_z_estimate_target_version(const klc_z_estimate *z);
/* The number of contexts (-1 for NULL). */
KLC_API int32_t klc_z_estimate_num_contexts(const klc_z_estimate *z);
/* The whole state, for checkpoints: per context, log_sum [n] the logsumexp of the checks'
 * log Z_k (-inf before any) and checks [n] their count; n must be the number of
 * contexts. The estimate is log_sum - log(checks), recomputed bit for bit on restore. */
KLC_API int klc_z_estimate_get_state(const klc_z_estimate *z, int32_t n, double *log_sum,
                                     int64_t *checks);
/* Restores a state from klc_z_estimate_get_state, held for target_version. Everything is
 * validated first (checks >= 0; log_sum finite or -inf, and -inf where checks is 0) and
 * fails with KLC_ERR_INVALID_ARGUMENT naming the context, changing nothing. */
KLC_API int klc_z_estimate_set_state(klc_z_estimate *z, uint64_t target_version, int32_t n,
                                     const double *log_sum, const int64_t *checks);

/* ------------------------------------------------------------------------------------ */
/* Trainer                                                                              */
/* ------------------------------------------------------------------------------------ */

/* klc_trainer runs the training loop of the common case (DESIGN.md, "One training step")
 * over borrowed handles; a custom loop calls the same handles directly. One step:
 *
 *   1. samples batch_size sequences from the proposal q by the training sampler, keyed
 *      klc_rng(seed, KLC_STREAM_SAMPLE, step) with global indices 0 .. batch_size-1;
 *   2. decodes their generated tokens into texts (with a tokenizer; features otherwise
 *      get no texts), the final end-of-text token excluded;
 *   3. scores log a with klc_model_score(base), then log P and phi with the target, and
 *      the reward (options.reward, else the target's reward term, if any);
 *   4. log pi: on-policy (q = pi) it is log q and no forward runs; off-policy it comes
 *      from klc_model_score(policy);
 *   5. with a target, a Z check before the first update, every z_period steps and
 *      whenever the target's version changed (klc_z_estimate: the mean of the checks in
 *      linear space, reset on a new version), on the training batch itself or on
 *      z_samples extra samples from q (global indices batch_size ..);
 *   6. off-policy, every proposal_period steps (not at step 0): the proposal update
 *      (see KLC_PROPOSAL_*), made before the policy moves, so that the copy is exactly
 *      the pi whose criterion was computed;
 *   7. the objective's coefficients and klc_objective_accumulate into zeroed gradients,
 *      micro_batch sequences per forward-backward (the update is the whole batch's);
 *   8. klc_optimizer_step_model, then klc_objective_after_step; objectives with
 *      KLC_NEED_OWN_UPDATES (PPO) replace 7 and the optimizer step by
 *      klc_objective_update (seed and micro_batch from the options; lr and grad_norm
 *      report its last update, and there is no "loss");
 *   9. metrics (below), evaluation every eval_period steps, and the callback.
 *
 * Contexts (prompts, options version 3). Without contexts every sequence starts from
 * bos_id and there is one Z. With options.contexts, sequence g of a step (its global index)
 * continues one of the n_contexts prompts, and the target is conditional, P(x | c)
 * (klc_target, "Conditional targets"): the sequence x excludes its prompt, so log a, log q,
 * log pi and log P sum the generated positions only, and features see the generated
 * tokens and their text only (context_ids tells them the prompt). The training batch's
 * sequences take their contexts by options.context_order (KLC_CONTEXTS_*); the extra Z
 * samples and the evaluation samples always go round-robin, g mod n_contexts. There is one
 * running Z estimate per context, and each sequence's weight uses its own context's Z_c.
 * A context's Z check is due, besides the usual times, at the first step whose training
 * batch holds a context that has none yet (a check adds to every context its sample
 * holds). Metrics are averaged over the contexts present in the batch, each context
 * weighing the same whatever its number of samples (ALGORITHMS.md section 2): a mean
 * such as train.b_mean is the mean over contexts of the context's mean, and KL(p||pi) the
 * mean over contexts of KL(p(.|c) || pi(.|c)), each estimated with its own Z_c; ess is the
 * sum of the contexts' effective sample sizes (so still in 0..n) and max_weight_share
 * the mean of their largest shares; proposal_criterion is the mean of the contexts'
 * criteria. log_z is then the mean of the contexts' log Z_c (over those that have one)
 * and z_checks the fewest checks any context has.
 *
 * Metrics of a step, in a klc_metrics table (names as listed; "<f>" is a feature's name,
 * with ".<k>" appended for dimension k of a feature of dim > 1). Names starting with
 * "train." are computed on the training batch, i.e. on samples of q before the update (on
 * samples of pi itself when on-policy); those starting with "eval." on eval_samples pure
 * ancestral samples of pi after the update (global indices batch_size + z_samples ..).
 * Importance-sampled quantities appear only when the samples have full support.
 *   step                 the steps completed, this one included
 *   lr, grad_norm        from the optimizer's report (norm before clipping)
 *   loss                 -(1/N) sum w_i log pi(x_i) (sequence-level objectives)
 *   log_z, z_checks      the running estimate and the checks it averages (with a target)
 *   z_check              1 when this step made a Z check, else 0
 *   update_skipped       1 when the step made no update because some context of the batch
 *                        had no sample with P > 0 in any Z check yet (its log Z is -inf and
 *                        the weights P/(Z q) are undefined): the step still counts, and
 *                        every step checks Z again until a sample meets the target; lr and
 *                        grad_norm are NaN then, and the optimizer's schedule does not move
 *   proposal_criterion   KLC_PROPOSAL_KL_CHECK steps that checked: estimate of
 *                        KL(p||pi) - KL(p||q); negative means q was replaced
 *   proposal_updates     times q was replaced by pi so far (off-policy)
 *   train.b_mean         fraction of samples meeting every pointwise constraint; on-policy
 *                        an estimate of E_pi[b], off-policy of E_q[b]
 *   train.phi.<f>        mean feature value of the moment and reward terms (same caveat)
 *   train.reward_mean    mean reward (when there is one)
 *   train.length_mean    mean generated tokens per sequence
 *   train.kl_p_pi        KL(p||pi), importance-sampled with the running Z
 *   train.kl_p_q         KL(p||q), off-policy only
 *   train.tv_p_pi        TV(p, pi)
 *   train.kl_pi_a        KL(pi||a): on-policy the sample mean of log pi - log a;
 *                        off-policy its importance-weighted estimate mean (pi/q)(log pi -
 *                        log a)
 *   train.ess, train.max_weight_share   of the importance weights P/q
 *   eval.b_mean, eval.phi.<f>, eval.reward_mean, eval.length_mean, eval.kl_pi_a,
 *   eval.kl_p_pi, eval.tv_p_pi, eval.distinct_1, eval.distinct_2, eval.distinct_3
 *                        the same on pi's samples; Distinct-n (with a tokenizer) is the
 *                        mean over texts of distinct word n-grams / word n-grams, words
 *                        being runs of non-white-space bytes
 *   diversity.distinct_1, diversity.distinct_2, diversity.distinct_3
 *   diversity.self_bleu_3, diversity.self_bleu_4, diversity.self_bleu_5
 *                        every diversity_period steps (with a tokenizer), on
 *                        diversity_samples texts of pi after the update sampled with
 *                        nucleus diversity_top_p (0.9 by default, the papers' setting;
 *                        eval.distinct_n use pure ancestral samples), global indices after
 *                        the eval samples. Distinct-n as above. Self-BLEU-n (n = 3, 4, 5):
 *                        the mean over the first 500 texts of each one's BLEU-n against all
 *                        the others as references, on word n-grams, exactly NLTK's
 *                        sentence_bleu with weights 1/n over orders 1..n and smoothing
 *                        method 1 (a zero match count becomes 0.1; Texygen's setting),
 *                        brevity penalty exp(1 - r/c) when the text's c words are not more
 *                        than the closest other text's r, and 0 for a text none of whose
 *                        words occurs elsewhere. High Self-BLEU means low diversity.
 *   grad_variance        every grad_variance_period steps: the trace of the covariance of
 *                        the per-sample gradient estimates g_i (g_i the objective's
 *                        gradient for sample i alone, with the coefficients of the whole
 *                        batch, so that the update is (1/N) sum g_i) over the first
 *                        n = min(grad_variance_samples, batch_size) training samples,
 *                        n/(n-1)-corrected: (sum ||g_i||^2 - ||sum g_i||^2 / n) / (n - 1);
 *                        computed before the update, one forward-backward per sample
 *   grad_mean_sq_norm    ||(1/n) sum g_i||^2 over the same samples, the scale to read
 *                        grad_variance / n against
 *   step_time_s, samples_per_s           wall time of the step, evaluation included
 * plus whatever the objective's after_step reports (e.g. "beta").
 *
 * Memory: every model buffer, sampler, batch and array a step uses is allocated by
 * klc_trainer_create (the model work buffers through klc_model_reserve), so
 * klc_trainer_memory is exact before the first step (batch_bytes includes the diversity
 * batch and the gradient-variance buffers: one float per parameter and the batch's logit
 * coefficients). Still allocated per step: the objective's coefficient buffers
 * (klc_objective_accumulate), PPO's value head and work arrays (at its first update, and
 * when a batch is larger than any before), Self-BLEU's n-gram tables on diversity steps
 * and metric names the first time they appear. */
typedef struct klc_trainer klc_trainer;

/* Where the training samples come from. */
enum {
    KLC_PROPOSAL_ON_POLICY = 0, /* q = pi: sample the policy itself (default) */
    KLC_PROPOSAL_KL_CHECK = 1,  /* q is a frozen copy of pi, replaced by pi every
                                   proposal_period steps when the estimate
                                   (1/n) sum (P/q)(log q - log pi)/Z of KL(p||pi) -
                                   KL(p||q) is negative (needs a target) */
    KLC_PROPOSAL_EVERY_K = 2,   /* a frozen copy replaced every proposal_period steps */
    KLC_PROPOSAL_NEVER = 3      /* a frozen copy of the initial policy, never replaced */
};

/* Called after every successful step with the steps completed and the step's metrics
 * (borrowed for the call). Non-zero stops: klc_trainer_step then returns
 * KLC_ERR_CALLBACK (the step itself is complete and counted). */
typedef int (*klc_trainer_callback)(void *userdata, int64_t step, const klc_metrics *metrics);

/* How the training batch's sequences are assigned to contexts. */
enum {
    KLC_CONTEXTS_ROUND_ROBIN = 0, /* sequence g continues context g mod n_contexts (default):
                                     every context gets its share of each batch */
    KLC_CONTEXTS_RANDOM = 1       /* each sequence draws its context uniformly, from
                                     klc_rng(seed, KLC_STREAM_DATA, step) at (g, 0) */
};

/* Version 2 appended the diversity and gradient-variance fields, version 3 the contexts;
 * an older struct (version 1: every field up to allocator; version 2: up to
 * grad_variance_samples) is still accepted, the appended fields taking their defaults. */
#define KLC_TRAINER_OPTIONS_VERSION 3
typedef struct klc_trainer_options {
    uint32_t version;
    int32_t batch_size;  /* sequences sampled and scored per step, >= 1; default 64 */
    int32_t micro_batch; /* sequences per forward-backward; 0 (default): batch_size */
    /* The training sampler (klc_sample_options' meanings). Defaults: pure ancestral
     * (temperature 1, top_k 0, top_p 1), which objectives needing full support require. */
    int32_t max_len;         /* sequence length, prompt included; 0: min(64, n_ctx) */
    int32_t max_new_tokens;  /* 0 (default): until max_len */
    int32_t eos_id;          /* default 50256; -1: none */
    int32_t bos_id;          /* default 50256 */
    double temperature;      /* default 1 */
    int32_t top_k;           /* default 0 */
    double top_p;            /* default 1 */
    int32_t proposal;        /* KLC_PROPOSAL_*; default KLC_PROPOSAL_ON_POLICY */
    int32_t proposal_period; /* >= 0; 0 (default): z_period */
    int32_t z_period;        /* steps between Z checks, >= 1; default 10 */
    int32_t z_samples;       /* 0 (default): check on the training batch; else extra samples */
    uint64_t seed;           /* default 0 */
    int32_t eval_period;     /* evaluate every eval_period steps; 0 (default): never */
    int32_t eval_samples;    /* samples of pi per evaluation, >= 0; default 64 */
    /* A reward feature of dim 1 (borrowed) for reward-maximising objectives; NULL
     * (default): the target's reward term, if it has one. */
    klc_feature *reward;
    klc_trainer_callback callback; /* NULL (default): none */
    void *callback_userdata;
    const klc_allocator *allocator; /* NULL: malloc/free */
    /* Version 2. Diversity ("diversity." metrics, needs a tokenizer) every
     * diversity_period steps, on diversity_samples texts of pi drawn with nucleus
     * diversity_top_p (Self-BLEU on the first 500 of them). */
    int32_t diversity_period;  /* 0 (default): never */
    int32_t diversity_samples; /* >= 2; default 500 */
    double diversity_top_p;    /* in (0, 1]; default 0.9 (the papers' evaluation setting) */
    /* The gradient variance ("grad_variance") every grad_variance_period steps, on the
     * first min(grad_variance_samples, batch_size) sequences of the training batch. */
    int32_t grad_variance_period;  /* 0 (default): never */
    int32_t grad_variance_samples; /* >= 2; default 32 */
    /* Version 3. Prompts for a conditional target (see "Contexts" above), copied at
     * creation: NULL (default) for none, else contexts->n_seq prompts (1 .. 65536), prompt
     * c being contexts->tokens[c*contexts->max_len ..] of length contexts->lengths[c], in
     * 1 .. max_len - 1 (score_from and sample_ids are ignored); bos_id is then unused.
     * z_samples, when not 0, must be at least n_seq. */
    const klc_seqs *contexts;
    int32_t context_order; /* KLC_CONTEXTS_*; default KLC_CONTEXTS_ROUND_ROBIN */
} klc_trainer_options;

KLC_API int klc_trainer_options_init(klc_trainer_options *opts, uint32_t version);

/* A trainer over borrowed handles, which must outlive it and must not be used elsewhere
 * while it steps: policy (trained in place), base (frozen; a separate handle from policy,
 * possibly with the same weights), target (NULL for objectives that need none: then
 * options.reward gives the reward), objective, optimizer (made for the policy's number of
 * parameters) and tokenizer (NULL: features get no texts). opts may be NULL (defaults).
 * Inconsistent choices fail with KLC_ERR_INVALID_ARGUMENT naming them: an objective that
 * needs a target, a reward or full support without one, an on-policy objective with an
 * off-policy proposal, KLC_PROPOSAL_KL_CHECK without a target, a Z check on a training
 * batch without full support, diversity_period without a tokenizer, grad_variance_period
 * with an objective that runs its own updates (PPO). Off-policy proposals are a clone of
 * the policy. Creating reserves the models' work buffers (see Memory above) and allocates
 * the gradient block. */
KLC_API int klc_trainer_create(klc_model *policy, klc_model *base, klc_target *target,
                               klc_objective *objective, klc_optimizer *optimizer,
                               klc_tokenizer *tokenizer, const klc_trainer_options *opts,
                               klc_trainer **out);
KLC_API void klc_trainer_destroy(klc_trainer *trainer);

/* One step (see above). out (may be NULL) receives the step's metrics, replacing its
 * contents. A failure before the optimizer's update leaves the policy's parameters and
 * the step count unchanged (the proposal may have been replaced and the Z estimate
 * updated; both stay valid); the trainer stays usable. */
KLC_API int klc_trainer_step(klc_trainer *trainer, klc_metrics *out);

/* Evaluates the current policy now on eval_samples samples (the "eval." metrics), keyed
 * by the current step count, into out (entries added or replaced). Needs eval_samples >=
 * 1. */
KLC_API int klc_trainer_evaluate(klc_trainer *trainer, klc_metrics *out);

/* What the trainer's step touches, in bytes. */
#define KLC_TRAINER_MEMORY_VERSION 1
typedef struct klc_trainer_memory_info {
    uint32_t version;       /* set by the caller */
    size_t policy_bytes;    /* the policy: parameters, gradients, training and inference
                               work buffers (klc_model_memory) */
    size_t base_bytes;      /* the base model: parameters and inference buffers */
    size_t proposal_bytes;  /* the off-policy proposal copy; 0 on-policy */
    size_t optimizer_bytes; /* the optimizer's state (klc_optimizer_state_size) */
    size_t sampler_bytes;   /* KV caches and sampling buffers */
    size_t batch_bytes;     /* batches, texts and per-step arrays */
    size_t total_bytes;
} klc_trainer_memory_info;

KLC_API int klc_trainer_memory(const klc_trainer *trainer, klc_trainer_memory_info *out);

/* Steps completed (-1 for NULL). */
KLC_API int64_t klc_trainer_steps(const klc_trainer *trainer);
/* The running estimate of log Z, NaN before the first check or without a target; with
 * contexts, context 0's (see klc_trainer_context_log_z). */
KLC_API double klc_trainer_log_z(const klc_trainer *trainer);
/* The running estimate of log Z_c for context c (0 without contexts), NaN before the
 * context's first check, without a target or for a context out of range. */
KLC_API double klc_trainer_context_log_z(const klc_trainer *trainer, int32_t context);
/* The proposal q (borrowed): the trainer's copy off-policy, the policy on-policy. */
KLC_API klc_model *klc_trainer_proposal(const klc_trainer *trainer);
/* The last training batch (borrowed; its slots as the step filled them). */
KLC_API klc_batch *klc_trainer_batch(const klc_trainer *trainer);

/* ------------------------------------------------------------------------------------ */
/* PPO: objectives that run their own updates                                           */
/* ------------------------------------------------------------------------------------ */

/* PPO for KL-control (Ziegler et al. 2019; ALGORITHMS.md section 1), KLC_OBJECTIVE_PPO.
 * Per-token rewards as KL_CONTROL_TOKEN's: r_t = -beta (log pi_old,t - log a_t) on every
 * generated token and r(x) added on the last (optionally whitened, ppo_whiten_rewards).
 * A value head V(s_t) = w . h_t + b on the final hidden state h_t of the position that
 * predicts token t+1 (Hugging Face value-head layout: weight [n_embd], bias [1]) gives,
 * with the values V_old of the policy that sampled, GAE advantages
 *     delta_t = r_t + gamma V_old(t+1) - V_old(t)   (V_old after the last token is 0)
 *     A_t = delta_t + gamma lambda A_(t+1),   returns R_t = A_t + V_old(t),
 * whitened over the batch's generated tokens (ppo_whiten_advantages). Then ppo_epochs
 * passes, each over a fresh random order of the sequences cut into ppo_minibatches
 * minibatches; each minibatch is one update of the policy (by the caller's optimizer) and
 * of the value head (by the objective's own Adam) on the loss, averaged over the
 * minibatch's generated tokens,
 *     pg_t = max(-A_t rho_t, -A_t clip(rho_t, 1 - clip, 1 + clip)),
 *            rho_t = exp(log pi_t - log pi_old,t)
 *     vf_t = 0.5 max((V_t - R_t)^2, (V_clip,t - R_t)^2),
 *            V_clip = V_old + clip(V - V_old, -value_clip, value_clip)
 *            (0.5 (V_t - R_t)^2 when value_clip is 0)
 *     L = mean_t (pg_t + vf_coef vf_t);
 * the value loss reaches the shared transformer through the hidden states. PPO is
 * on-policy (log pi_old is the step's log q) and needs base log-probabilities per token
 * and the reward; klc_objective_accumulate and klc_objective_token_coeffs refuse it.
 *
 * Metrics of klc_objective_update (means over the step's updates): "ppo.policy_loss",
 * "ppo.value_loss" (mean vf_t, before vf_coef), "ppo.clip_frac" (fraction of tokens whose
 * clipped term was the larger), "ppo.approx_kl" (0.5 mean (log pi - log pi_old)^2, as
 * Ziegler's code), "ppo.explained_variance" (1 - Var(R - V_old)/Var(R) over the batch's
 * tokens), "ppo.value_mean", "ppo.return_mean", "ppo.updates"; after_step adds "kl",
 * "beta" (the beta the step used; adaptive as for KL_CONTROL) and "reward". */

#define KLC_UPDATE_OPTIONS_VERSION 1
typedef struct klc_update_options {
    uint32_t version;
    int32_t micro_batch;          /* sequences per forward-backward; 0 (default): one pass per
                                     minibatch. Only the memory changes. */
    uint64_t seed;                /* PPO's minibatch order: klc_rng(seed, KLC_STREAM_DATA), sample
                                     step->step, counter epoch * n_seq + i; default 0 */
    klc_optimizer_report *report; /* the last update's report (NULL: not written); the
                                     caller sets its version */
} klc_update_options;

KLC_API int klc_update_options_init(klc_update_options *opts, uint32_t version);

/* All of one step's updates of model (and of the objective's own parameters) from one
 * batch: for an objective with KLC_NEED_OWN_UPDATES its loop (PPO: epochs x minibatches
 * forward/backward/optimizer steps); for any other one update: zeroed gradients,
 * klc_objective_accumulate, klc_optimizer_step_model. The view and seqs are as for
 * klc_objective_accumulate. metrics (may be NULL) receives the objective's update
 * metrics. A failure before the first update leaves model, optimizer and objective
 * unchanged; a later one leaves the updates made so far (the message says how many). */
KLC_API int klc_objective_update(klc_objective *obj, klc_model *model, klc_optimizer *opt,
                                 const klc_step_view *step, const klc_seqs *seqs,
                                 const klc_update_options *opts, klc_metrics *metrics);

/* PPO's state, as borrowed views into the objective (valid until it is destroyed): plain
 * arrays a checkpoint can save and restore. The value head is created, zero-initialised,
 * at the first klc_objective_update (sized by the model's n_embd) or by this call with
 * n_embd > 0; n_embd 0 only reports (n_embd 0 and NULL arrays before it exists). A
 * different n_embd than the existing head's fails with KLC_ERR_INVALID_ARGUMENT;
 * objectives other than PPO with KLC_ERR_UNSUPPORTED. */
#define KLC_PPO_STATE_VERSION 1
typedef struct klc_ppo_state {
    uint32_t version; /* set by the caller */
    int32_t n_embd;
    float *value_params; /* [n_embd + 1]: weight [n_embd], then bias */
    float *value_grads;  /* [n_embd + 1]: the last update's gradient */
    float *adam_m;       /* [n_embd + 1]: Adam's first moment */
    float *adam_v;       /* [n_embd + 1]: Adam's second moment */
    int64_t *adam_steps; /* the value head's updates so far (bias correction) */
    double *beta;        /* KL-control's current beta */
} klc_ppo_state;

KLC_API int klc_objective_ppo_state(klc_objective *obj, int32_t n_embd, klc_ppo_state *out);

/* ------------------------------------------------------------------------------------ */
/* Checkpoints                                                                          */
/* ------------------------------------------------------------------------------------ */

/* A checkpoint is a directory run_dir/checkpoints/step-NNNNNNNNNNNN (the steps completed,
 * 12 digits) holding the policy as a Hugging Face GPT-2 directory (config.json and
 * model.safetensors, as klc_model_save writes them, so transformers loads it) and
 * trainer_state.bin, the trainer's full state: everything that influences later steps.
 *   - the step count and the proposal updates made;
 *   - off-policy, the proposal q's parameters;
 *   - the optimizer's state (klc_optimizer_save_state: moments and update count, which
 *     is also the learning-rate schedule's position);
 *   - the Z estimate (every context's checks, klc_z_estimate_get_state) and whether it
 *     was current for the target;
 *   - the target's lambda (and beta for targets made by klc_target_from_reward);
 *   - the objective's state (klc_objective_save_state: moving-average baselines, the
 *     adaptive KL controller's beta, a user objective's own blob).
 * There is no random generator state to save: every random number klc draws is a pure
 * function of (seed, stream, step, sample, counter) (see "Random numbers"), and sampling,
 * Z checks and evaluation are keyed by the step count, which the checkpoint holds. So a
 * run that saves after step N, is destroyed, recreated from scratch with the same handles
 * and options and loads the checkpoint continues with the same bits as one never stopped
 * (on one machine with one thread count).
 *
 * trainer_state.bin is one little-endian binary file: a header with a magic, a format
 * version, the file size and a checksum, a table of named sections with their offsets,
 * sizes and checksums, then the sections; docs/checkpoints.md gives the layout. */

/* Writes a checkpoint of the trainer after its last completed step. Atomic: everything is
 * written into a temporary sibling directory (run_dir/checkpoints/.tmp-step-...), every
 * file and the directory fsynced, then renamed into place (replacing a checkpoint of the
 * same step, if any, by an atomic exchange), so a crash never leaves a partial checkpoint
 * under the final name and a failed write leaves earlier checkpoints as they were. Then
 * the oldest checkpoints beyond keep_last are removed (keep_last 0: keep all; a removed
 * checkpoint is renamed away before it is deleted). run_dir and run_dir/checkpoints are
 * created if needed. path_out (may be NULL, with path_cap 0) receives the checkpoint
 * directory; a path_cap too small for it is KLC_ERR_INVALID_ARGUMENT before anything is
 * written. A failure to prune is reported (KLC_ERR_IO, saying so) with the new checkpoint
 * already in place. An objective whose state cannot be saved fails with
 * KLC_ERR_UNSUPPORTED (see klc_objective_save_state) before anything is written. Saving
 * needs memory for a copy of the optimizer's and the objective's state; loading stages
 * the policy, the proposal and the optimizer's state before it commits them. */
KLC_API int klc_trainer_save_checkpoint(klc_trainer *trainer, const char *run_dir,
                                        int32_t keep_last, char *path_out, size_t path_cap);
/* Restores the policy's parameters and all trainer state from a checkpoint directory, or
 * from a run directory (its latest complete checkpoint, as klc_checkpoint_latest). The
 * trainer must have been created over handles made as for the run that wrote it. Checks
 * that the checkpoint fits before anything changes and fails with a message saying what
 * differs: KLC_ERR_STATE for another model shape or parameter count, objective, optimizer
 * kind, batch_size, max_len, proposal mode, Z sampling (z_samples), number of lambda
 * values or target kind; KLC_ERR_FORMAT for a truncated or corrupt file (wrong magic,
 * version, sizes or checksum); KLC_ERR_IO when a file cannot be read; KLC_ERR_NOT_FOUND
 * for a run directory without checkpoints. On failure the trainer, the policy and every
 * other handle are unchanged. Options that do not shape the state (seed, periods,
 * sampling settings, micro_batch, evaluation) are the new trainer's own: changing them
 * is allowed, and the continuation then differs from an uninterrupted run. The target's
 * version changes when lambda or beta is restored; the Z estimate is carried over to the
 * new version (when it was current at the save), so no extra Z check happens. */
KLC_API int klc_trainer_load_checkpoint(klc_trainer *trainer, const char *path);
/* The latest complete checkpoint under run_dir/checkpoints: the directory named
 * step-NNNNNNNNNNNN (exactly 12 digits) with the largest step that holds
 * trainer_state.bin, into path_out (path_cap bytes; too small is
 * KLC_ERR_INVALID_ARGUMENT). KLC_ERR_NOT_FOUND when there is none (or no such directory);
 * temporary and removed directories (names starting with '.') are never chosen. */
KLC_API int klc_checkpoint_latest(const char *run_dir, char *path_out, size_t path_cap);

#ifdef __cplusplus
}
#endif

#endif /* KLC_H */
