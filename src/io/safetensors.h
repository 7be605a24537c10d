/* The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
 * then the data section, which the tensors' byte ranges tile exactly.
 *
 * The reader validates the whole header before anything is trusted and reads tensor data
 * with pread into the caller's memory (no mmap: a file truncated under us gives an error,
 * not SIGBUS). The writer writes F32 tensors through an atomic file. */
#ifndef KLC_IO_SAFETENSORS_H
#define KLC_IO_SAFETENSORS_H

#include "core/internal.h"
#include "io/atomic_file.h"

/* Header sizes above this are refused as hostile (the reference implementation's limit). */
#define KLC_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
#define KLC_ST_MAX_DIMS   8

typedef enum klc_st_dtype {
    KLC_ST_BOOL,
    KLC_ST_U8,
    KLC_ST_I8,
    KLC_ST_F8_E5M2,
    KLC_ST_F8_E4M3,
    KLC_ST_I16,
    KLC_ST_U16,
    KLC_ST_F16,
    KLC_ST_BF16,
    KLC_ST_I32,
    KLC_ST_U32,
    KLC_ST_F32,
    KLC_ST_F64,
    KLC_ST_I64,
    KLC_ST_U64,
    KLC_ST_N_DTYPES
} klc_st_dtype;

const char *klc_st_dtype_name(klc_st_dtype d);
size_t klc_st_dtype_size(klc_st_dtype d);

typedef struct klc_st_tensor {
    const char *name; /* points into the file's name storage */
    klc_st_dtype dtype;
    int32_t ndim;
    int64_t shape[KLC_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end; /* byte range within the data section */
} klc_st_tensor;

typedef struct klc_st_file klc_st_file;

/* Opens and validates a safetensors file. KLC_ERR_IO if it cannot be read, KLC_ERR_FORMAT
 * for any malformed content, KLC_ERR_UNSUPPORTED for a valid file klc cannot represent
 * (more than KLC_ST_MAX_DIMS dimensions). Messages start with the path. */
int klc_st_open(const char *path, const klc_alloc_ctx *alloc, klc_st_file **out);
void klc_st_close(klc_st_file *f);

const char *klc_st_path(const klc_st_file *f);
int32_t klc_st_count(const klc_st_file *f);
/* Tensors sorted by name (the header's order carries no meaning). */
const klc_st_tensor *klc_st_tensor_at(const klc_st_file *f, int32_t index);
/* Index of a tensor by exact name, or -1. */
int32_t klc_st_find(const klc_st_file *f, const char *name);
/* A __metadata__ value, or NULL. */
const char *klc_st_metadata(const klc_st_file *f, const char *key);

/* Reads elements [first, first + count) of a F32, F16 or BF16 tensor as floats.
 * KLC_ERR_UNSUPPORTED for other dtypes; KLC_ERR_IO/FORMAT if the file cannot deliver the
 * bytes (it changed since it was opened). */
int klc_st_read_f32(const klc_st_file *f, int32_t index, uint64_t first, uint64_t count,
                    float *dst);

/* Exact conversions of IEEE half and bfloat16 bit patterns (every value of both is a
 * float, so there is no rounding): subnormals, signed zeros, infinities and NaNs (payload
 * kept, quiet bit included) map to their float equivalents. */
float klc_f16_to_f32(uint16_t h);
float klc_bf16_to_f32(uint16_t b);

/* One tensor to write: F32 data of `ndim` dims. */
typedef struct klc_st_entry {
    const char *name;
    int32_t ndim;
    int64_t shape[KLC_ST_MAX_DIMS];
    const float *data;
} klc_st_entry;

/* Writes entries as a safetensors file into af (which the caller commits or aborts):
 * F32, tensors sorted by name both in the header and in the data section, the header
 * padded with spaces to a multiple of 8 bytes. metadata is NULL or a NULL-terminated
 * list of key, value, key, value, ... strings, written as __metadata__. Duplicate names
 * are KLC_ERR_INVALID_ARGUMENT. */
int klc_st_write(klc_atomic_file *af, const klc_st_entry *entries, int32_t n,
                 const char *const *metadata, const klc_alloc_ctx *alloc);

#endif
