/* safetensors reader and writer (see safetensors.h). */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tensor data is little-endian in the format and copied into floats without swapping. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "klc's safetensors reader assumes a little-endian host"
#endif

static const struct {
    const char *name;
    size_t size;
} dtype_table[KLC_ST_N_DTYPES] = {
    [KLC_ST_BOOL] = {"BOOL", 1},       [KLC_ST_U8] = {"U8", 1},
    [KLC_ST_I8] = {"I8", 1},           [KLC_ST_F8_E5M2] = {"F8_E5M2", 1},
    [KLC_ST_F8_E4M3] = {"F8_E4M3", 1}, [KLC_ST_I16] = {"I16", 2},
    [KLC_ST_U16] = {"U16", 2},         [KLC_ST_F16] = {"F16", 2},
    [KLC_ST_BF16] = {"BF16", 2},       [KLC_ST_I32] = {"I32", 4},
    [KLC_ST_U32] = {"U32", 4},         [KLC_ST_F32] = {"F32", 4},
    [KLC_ST_F64] = {"F64", 8},         [KLC_ST_I64] = {"I64", 8},
    [KLC_ST_U64] = {"U64", 8},
};

const char *klc_st_dtype_name(klc_st_dtype d) {
    return (unsigned)d < KLC_ST_N_DTYPES ? dtype_table[d].name : "?";
}

size_t klc_st_dtype_size(klc_st_dtype d) {
    return (unsigned)d < KLC_ST_N_DTYPES ? dtype_table[d].size : 0;
}

float klc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
    } else {
        /* Zero or subnormal: mant * 2^-24 is exact in float (a normal number there). */
        float v = (float)mant * 0x1p-24f;
        memcpy(&bits, &v, sizeof bits);
        bits |= sign;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float klc_bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ------------------------------------------------------------------------------------ */
/* Reader                                                                               */
/* ------------------------------------------------------------------------------------ */

struct klc_st_file {
    klc_alloc_ctx alloc;
    char *path;
    int fd;
    uint64_t file_size, data_start, data_size;
    int32_t n_tensors;
    klc_st_tensor *tensors; /* sorted by name */
    int32_t n_meta;
    const char **meta; /* [2*n_meta]: key, value pairs, into strings */
    char *strings;     /* names and metadata, NUL-separated */
    size_t tensors_bytes, meta_bytes, strings_bytes; /* as allocated */
};

void klc_st_close(klc_st_file *f) {
    if (!f) return;
    klc_alloc_ctx a = f->alloc;
    if (f->fd >= 0) close(f->fd);
    klc_free_str(&a, f->path);
    klc_free(&a, f->tensors, f->tensors_bytes);
    klc_free(&a, (void *)f->meta, f->meta_bytes);
    klc_free(&a, f->strings, f->strings_bytes);
    klc_free(&a, f, sizeof *f);
}

const char *klc_st_path(const klc_st_file *f) {
    return f->path;
}
int32_t klc_st_count(const klc_st_file *f) {
    return f->n_tensors;
}

const klc_st_tensor *klc_st_tensor_at(const klc_st_file *f, int32_t index) {
    return index >= 0 && index < f->n_tensors ? &f->tensors[index] : NULL;
}

int32_t klc_st_find(const klc_st_file *f, const char *name) {
    int32_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->tensors[mid].name, name);
        if (c == 0) return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

const char *klc_st_metadata(const klc_st_file *f, const char *key) {
    for (int32_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

/* Reads exactly n bytes at offset; a short file is a format error (it was validated
 * against its size, so it shrank), a failing read an I/O error. */
static int pread_all(const klc_st_file *f, void *dst, size_t n, uint64_t offset, const char *what) {
    char *p = dst;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t r = pread(f->fd, p, chunk, (off_t)offset);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return klc_fail(KLC_ERR_IO, "%s: cannot read %s: %s", f->path, what, strerror(errno));
        if (r == 0)
            return klc_fail(KLC_ERR_FORMAT, "%s: file ended while reading %s (truncated?)", f->path,
                            what);
        p += r;
        n -= (size_t)r;
        offset += (uint64_t)r;
    }
    return KLC_OK;
}

static int parse_dtype(const char *s, klc_st_dtype *out) {
    for (int d = 0; d < KLC_ST_N_DTYPES; d++)
        if (strcmp(s, dtype_table[d].name) == 0) {
            *out = (klc_st_dtype)d;
            return 1;
        }
    return 0;
}

/* Validates one header entry into t (name excluded). */
static int parse_entry(const klc_st_file *f, const char *name, json_t *v, uint64_t data_size,
                       klc_st_tensor *t) {
#define BAD(...) klc_fail(KLC_ERR_FORMAT, __VA_ARGS__)
    const char *p = f->path;
    if (!json_is_object(v)) return BAD("%s: tensor '%s': entry is not a JSON object", p, name);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return BAD("%s: tensor '%s': unexpected key '%s' (allowed: dtype, shape, "
                       "data_offsets)",
                       p, name, key);
    }
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!jd) return BAD("%s: tensor '%s': missing 'dtype'", p, name);
    if (!js) return BAD("%s: tensor '%s': missing 'shape'", p, name);
    if (!jo) return BAD("%s: tensor '%s': missing 'data_offsets'", p, name);
    if (!json_is_string(jd)) return BAD("%s: tensor '%s': 'dtype' is not a string", p, name);
    if (!parse_dtype(json_string_value(jd), &t->dtype))
        return BAD("%s: tensor '%s': unknown dtype '%s'", p, name, json_string_value(jd));
    if (!json_is_array(js)) return BAD("%s: tensor '%s': 'shape' is not an array", p, name);
    size_t nd = json_array_size(js);
    if (nd > KLC_ST_MAX_DIMS)
        return klc_fail(KLC_ERR_UNSUPPORTED,
                        "%s: tensor '%s': %zu dimensions (klc reads at most %d)", p, name, nd,
                        KLC_ST_MAX_DIMS);
    t->ndim = (int32_t)nd;
    uint64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d))
            return BAD("%s: tensor '%s': shape[%zu] is not an integer", p, name, i);
        json_int_t x = json_integer_value(d);
        if (x < 0)
            return BAD("%s: tensor '%s': shape[%zu] = %lld is negative", p, name, i, (long long)x);
        t->shape[i] = (int64_t)x;
        if (__builtin_mul_overflow(numel, (uint64_t)x, &numel))
            return BAD("%s: tensor '%s': the shape's element count overflows", p, name);
    }
    for (size_t i = nd; i < KLC_ST_MAX_DIMS; i++) t->shape[i] = 0;
    t->numel = numel;
    uint64_t bytes;
    if (__builtin_mul_overflow(numel, (uint64_t)klc_st_dtype_size(t->dtype), &bytes))
        return BAD("%s: tensor '%s': the shape's byte count overflows", p, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return BAD("%s: tensor '%s': 'data_offsets' is not an array of two integers", p, name);
    json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
    if (!json_is_integer(jb) || !json_is_integer(je))
        return BAD("%s: tensor '%s': 'data_offsets' is not an array of two integers", p, name);
    json_int_t b = json_integer_value(jb), e = json_integer_value(je);
    if (b < 0 || e < 0)
        return BAD("%s: tensor '%s': data_offsets [%lld, %lld] are negative", p, name, (long long)b,
                   (long long)e);
    if (b > e)
        return BAD("%s: tensor '%s': data_offsets [%lld, %lld] begin after they end", p, name,
                   (long long)b, (long long)e);
    if ((uint64_t)e > data_size)
        return BAD("%s: tensor '%s': data_offsets [%lld, %lld] out of bounds (data section is "
                   "%llu bytes)",
                   p, name, (long long)b, (long long)e, (unsigned long long)data_size);
    t->begin = (uint64_t)b;
    t->end = (uint64_t)e;
    if (t->end - t->begin != bytes)
        return BAD("%s: tensor '%s': data_offsets [%lld, %lld] hold %llu bytes but shape and "
                   "dtype %s need %llu",
                   p, name, (long long)b, (long long)e, (unsigned long long)(t->end - t->begin),
                   klc_st_dtype_name(t->dtype), (unsigned long long)bytes);
    return KLC_OK;
#undef BAD
}

static int cmp_by_offsets(const void *a, const void *b) {
    const klc_st_tensor *x = *(const klc_st_tensor *const *)a,
                        *y = *(const klc_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(((const klc_st_tensor *)a)->name, ((const klc_st_tensor *)b)->name);
}

/* The byte ranges must tile [0, data_size): no overlap, no hole, nothing after. */
static int check_tiling(klc_st_file *f) {
    int32_t n = f->n_tensors;
    const klc_st_tensor **order = klc_alloc(&f->alloc, (size_t)(n ? n : 1) * sizeof *order);
    if (!order) return KLC_ERR_OUT_OF_MEMORY;
    for (int32_t i = 0; i < n; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)n, sizeof *order, cmp_by_offsets);
    int status = KLC_OK;
    uint64_t pos = 0;
    const klc_st_tensor *prev = NULL;
    for (int32_t i = 0; i < n && status == KLC_OK; i++) {
        const klc_st_tensor *t = order[i];
        if (t->begin < pos)
            status = klc_fail(KLC_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' "
                              "[%llu, %llu]",
                              f->path, t->name, (unsigned long long)t->begin,
                              (unsigned long long)t->end, prev->name,
                              (unsigned long long)prev->begin, (unsigned long long)prev->end);
        else if (t->begin > pos)
            status =
                klc_fail(KLC_ERR_FORMAT,
                         "%s: tensor '%s': data_offsets [%llu, %llu] leave a hole: bytes "
                         "[%llu, %llu) of the data section belong to no tensor",
                         f->path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                         (unsigned long long)pos, (unsigned long long)t->begin);
        pos = t->end;
        prev = t;
    }
    if (status == KLC_OK && pos != f->data_size)
        status = klc_fail(KLC_ERR_FORMAT,
                          "%s: the tensors cover %llu bytes but the data section is %llu bytes "
                          "(a hole or trailing bytes at the end)",
                          f->path, (unsigned long long)pos, (unsigned long long)f->data_size);
    klc_free(&f->alloc, order, (size_t)(n ? n : 1) * sizeof *order);
    return status;
}

static int parse_header(klc_st_file *f, const char *text, size_t len) {
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return klc_fail(KLC_ERR_FORMAT,
                        "%s: header is not valid JSON: %s (at byte %d of the header)", f->path,
                        err.text, err.position);
    int status = KLC_OK;
    const char *key;
    json_t *val;
    size_t names_bytes = 0;
    int32_t n = 0, n_meta = 0;
    if (!json_is_object(root)) {
        status = klc_fail(KLC_ERR_FORMAT, "%s: header is not a JSON object", f->path);
        goto done;
    }
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                status = klc_fail(KLC_ERR_FORMAT, "%s: __metadata__ is not a JSON object", f->path);
                goto done;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    status =
                        klc_fail(KLC_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string",
                                 f->path, mk);
                    goto done;
                }
                names_bytes += strlen(mk) + 1 + json_string_length(mv) + 1;
                n_meta++;
            }
        } else {
            names_bytes += strlen(key) + 1;
            n++;
        }
    }
    if (n > INT32_MAX / 2) {
        status = klc_fail(KLC_ERR_FORMAT, "%s: too many tensors", f->path);
        goto done;
    }
    f->tensors_bytes = (size_t)(n ? n : 1) * sizeof *f->tensors;
    f->meta_bytes = (size_t)(n_meta ? n_meta : 1) * 2 * sizeof *f->meta;
    f->strings_bytes = names_bytes ? names_bytes : 1;
    f->tensors = klc_alloc_zeroed(&f->alloc, f->tensors_bytes);
    f->meta = klc_alloc(&f->alloc, f->meta_bytes);
    f->strings = klc_alloc(&f->alloc, f->strings_bytes);
    if (!f->tensors || !f->meta || !f->strings) {
        status = KLC_ERR_OUT_OF_MEMORY;
        goto done;
    }
    f->n_tensors = n;
    f->n_meta = n_meta;
    char *s = f->strings;
    int32_t i = 0, m = 0;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                size_t kl = strlen(mk) + 1, vl = json_string_length(mv);
                memcpy(s, mk, kl);
                f->meta[2 * m] = s;
                s += kl;
                /* Values with embedded NULs are cut there; jansson already refuses them. */
                memcpy(s, json_string_value(mv), vl);
                s[vl] = '\0';
                f->meta[2 * m + 1] = s;
                s += vl + 1;
                m++;
            }
            continue;
        }
        klc_st_tensor *t = &f->tensors[i++];
        size_t kl = strlen(key) + 1;
        memcpy(s, key, kl);
        t->name = s;
        s += kl;
        status = parse_entry(f, t->name, val, f->data_size, t);
        if (status != KLC_OK) goto done;
    }
    status = check_tiling(f);
    if (status == KLC_OK) qsort(f->tensors, (size_t)n, sizeof *f->tensors, cmp_by_name);
done:
    json_decref(root);
    return status;
}

int klc_st_open(const char *path, const klc_alloc_ctx *alloc, klc_st_file **out) {
    *out = NULL;
    klc_alloc_ctx a;
    if (alloc)
        a = *alloc;
    else
        klc_alloc_ctx_init(&a, NULL);
    klc_st_file *f = klc_alloc_zeroed(&a, sizeof *f);
    if (!f) return KLC_ERR_OUT_OF_MEMORY;
    f->alloc = a;
    f->fd = -1;
    f->path = klc_strdup(&a, path);
    if (!f->path) {
        klc_st_close(f);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    int status = KLC_OK;
    char *header = NULL;
    uint64_t n = 0;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (f->fd < 0) {
        status = klc_fail(KLC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        status = klc_fail(KLC_ERR_IO, "%s: not a readable regular file", path);
        goto done;
    }
    f->file_size = (uint64_t)st.st_size;
    if (f->file_size < 8) {
        status = klc_fail(KLC_ERR_FORMAT,
                          "%s: file is %llu bytes, too short for the 8-byte header length", path,
                          (unsigned long long)f->file_size);
        goto done;
    }
    unsigned char len_bytes[8];
    status = pread_all(f, len_bytes, 8, 0, "the header length");
    if (status != KLC_OK) goto done;
    for (int i = 7; i >= 0; i--) n = (n << 8) | len_bytes[i];
    if (n > KLC_ST_MAX_HEADER) {
        status = klc_fail(KLC_ERR_FORMAT, "%s: header length %llu exceeds the limit of %llu bytes",
                          path, (unsigned long long)n, (unsigned long long)KLC_ST_MAX_HEADER);
        goto done;
    }
    if (n > f->file_size - 8) {
        status = klc_fail(KLC_ERR_FORMAT,
                          "%s: header length %llu is larger than the %llu bytes that follow it",
                          path, (unsigned long long)n, (unsigned long long)(f->file_size - 8));
        goto done;
    }
    f->data_start = 8 + n;
    f->data_size = f->file_size - f->data_start;
    header = klc_alloc(&a, (size_t)n + 1);
    if (!header) {
        status = KLC_ERR_OUT_OF_MEMORY;
        goto done;
    }
    status = pread_all(f, header, (size_t)n, 8, "the header");
    if (status == KLC_OK) status = parse_header(f, header, (size_t)n);
done:
    klc_free(&a, header, (size_t)n + 1);
    if (status != KLC_OK) {
        klc_st_close(f);
        return status;
    }
    *out = f;
    return KLC_OK;
}

int klc_st_read_f32(const klc_st_file *f, int32_t index, uint64_t first, uint64_t count,
                    float *dst) {
    const klc_st_tensor *t = klc_st_tensor_at(f, index);
    if (!t) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: no tensor %d", f->path, index);
    if (first > t->numel || count > t->numel - first)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "%s: tensor '%s': elements [%llu, +%llu) out of range", f->path, t->name,
                        (unsigned long long)first, (unsigned long long)count);
    char what[256];
    snprintf(what, sizeof what, "tensor '%s'", t->name);
    uint64_t offset = f->data_start + t->begin;
    switch (t->dtype) {
    case KLC_ST_F32:
        return pread_all(f, dst, (size_t)count * 4, offset + first * 4, what);
    case KLC_ST_F16:
    case KLC_ST_BF16: {
        uint16_t buf[4096];
        float (*conv)(uint16_t) = t->dtype == KLC_ST_F16 ? klc_f16_to_f32 : klc_bf16_to_f32;
        uint64_t done = 0;
        while (done < count) {
            size_t k = count - done > 4096 ? 4096 : (size_t)(count - done);
            KLC_TRY(pread_all(f, buf, k * 2, offset + (first + done) * 2, what));
            for (size_t i = 0; i < k; i++) dst[done + i] = conv(buf[i]);
            done += k;
        }
        return KLC_OK;
    }
    default:
        return klc_fail(KLC_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s cannot be read as float",
                        f->path, t->name, klc_st_dtype_name(t->dtype));
    }
}

/* ------------------------------------------------------------------------------------ */
/* Writer                                                                               */
/* ------------------------------------------------------------------------------------ */

typedef struct strbuf {
    const klc_alloc_ctx *alloc;
    char *p;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_reserve(strbuf *b, size_t extra) {
    if (b->oom || b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = klc_alloc(b->alloc, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    if (b->p) memcpy(p, b->p, b->len + 1);
    klc_free(b->alloc, b->p, b->cap);
    b->p = p;
    b->cap = cap;
}

static void sb_printf(strbuf *b, const char *fmt, ...) KLC_PRINTF(2, 3);
static void sb_printf(strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    sb_reserve(b, (size_t)n);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void sb_json_string(strbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            sb_printf(b, "\\%c", *c);
        else if (*c < 0x20)
            sb_printf(b, "\\u%04x", *c);
        else
            sb_printf(b, "%c", *c);
    }
    sb_printf(b, "\"");
}

typedef struct sort_item {
    const klc_st_entry *e;
} sort_item;

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const sort_item *)a)->e->name, ((const sort_item *)b)->e->name);
}

int klc_st_write(klc_atomic_file *af, const klc_st_entry *entries, int32_t n,
                 const char *const *metadata, const klc_alloc_ctx *alloc) {
    if (n < 0 || (n > 0 && !entries))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_st_write: bad tensor list");
    sort_item *order = klc_alloc(alloc, (size_t)(n ? n : 1) * sizeof *order);
    if (!order) return KLC_ERR_OUT_OF_MEMORY;
    for (int32_t i = 0; i < n; i++) order[i].e = &entries[i];
    qsort(order, (size_t)n, sizeof *order, cmp_entry_name);
    strbuf b = {alloc, NULL, 0, 0, 0};
    int status = KLC_OK;
    sb_printf(&b, "{");
    int first = 1;
    if (metadata && metadata[0]) {
        sb_printf(&b, "\"__metadata__\":{");
        for (int k = 0; metadata[k] && metadata[k + 1]; k += 2) {
            if (k) sb_printf(&b, ",");
            sb_json_string(&b, metadata[k]);
            sb_printf(&b, ":");
            sb_json_string(&b, metadata[k + 1]);
        }
        sb_printf(&b, "}");
        first = 0;
    }
    uint64_t offset = 0;
    for (int32_t i = 0; i < n; i++) {
        const klc_st_entry *e = order[i].e;
        if (!e->name || strcmp(e->name, "__metadata__") == 0 ||
            (i > 0 && strcmp(order[i - 1].e->name, e->name) == 0)) {
            status =
                klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: tensor name '%s' is invalid or repeated",
                         af->target, e->name ? e->name : "(null)");
            goto done;
        }
        if (e->ndim < 0 || e->ndim > KLC_ST_MAX_DIMS) {
            status = klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: tensor '%s': %d dimensions",
                              af->target, e->name, e->ndim);
            goto done;
        }
        uint64_t numel = 1;
        for (int32_t d = 0; d < e->ndim; d++)
            if (e->shape[d] < 0 || __builtin_mul_overflow(numel, (uint64_t)e->shape[d], &numel)) {
                status = klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: tensor '%s': invalid shape",
                                  af->target, e->name);
                goto done;
            }
        if (!first) sb_printf(&b, ",");
        first = 0;
        sb_json_string(&b, e->name);
        sb_printf(&b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int32_t d = 0; d < e->ndim; d++)
            sb_printf(&b, "%s%lld", d ? "," : "", (long long)e->shape[d]);
        sb_printf(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                  (unsigned long long)(offset + numel * 4));
        offset += numel * 4;
    }
    sb_printf(&b, "}");
    /* The reference writer pads with spaces so that the data section starts 8-aligned. */
    while (!b.oom && b.len % 8 != 0) sb_printf(&b, " ");
    if (b.oom) {
        status = KLC_ERR_OUT_OF_MEMORY;
        goto done;
    }
    unsigned char len_bytes[8];
    for (int k = 0; k < 8; k++) len_bytes[k] = (unsigned char)((uint64_t)b.len >> (8 * k));
    status = klc_atomic_write(af, len_bytes, 8);
    if (status == KLC_OK) status = klc_atomic_write(af, b.p, b.len);
    for (int32_t i = 0; i < n && status == KLC_OK; i++) {
        const klc_st_entry *e = order[i].e;
        uint64_t numel = 1;
        for (int32_t d = 0; d < e->ndim; d++) numel *= (uint64_t)e->shape[d];
        if (numel) status = klc_atomic_write(af, e->data, (size_t)numel * 4);
    }
done:
    klc_free(alloc, b.p, b.cap);
    klc_free(alloc, order, (size_t)(n ? n : 1) * sizeof *order);
    return status;
}
