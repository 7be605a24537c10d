/* klc's binary state file: named sections of bytes, each with a checksum, behind a header
 * with a magic, a format version, the file size and a checksum of the header and the
 * section table (layout in docs/checkpoints.md). The reader validates the header and
 * the table when it opens a file and each section's checksum when it reads it, so a
 * truncated or corrupt file is a KLC_ERR_FORMAT with a message, never a crash. */
#ifndef KLC_IO_STATE_FILE_H
#define KLC_IO_STATE_FILE_H

#include "core/internal.h"

enum {
    KLC_SF_HEADER_BYTES = 32,
    KLC_SF_ENTRY_BYTES = 64,
    KLC_SF_NAME_MAX = 40, /* bytes of a name field, the NUL included */
    KLC_SF_MAX_SECTIONS = 256
};

/* One section to write. */
typedef struct klc_sf_section {
    const char *name; /* 1..KLC_SF_NAME_MAX-1 bytes, unique */
    const void *data; /* may be NULL when size is 0 */
    size_t size;
} klc_sf_section;

/* Writes the sections, in order, as `path` through an atomic file (temporary file, fsync,
 * rename, directory fsync). */
int klc_sf_write(const char *path, const klc_sf_section *sections, int32_t n,
                 const klc_alloc_ctx *alloc);

typedef struct klc_sf_file klc_sf_file;

/* Opens and validates a state file: KLC_ERR_IO when it cannot be read, KLC_ERR_FORMAT
 * when the magic, version, size, table or table checksum is wrong. Messages start with
 * the path. */
int klc_sf_open(const char *path, const klc_alloc_ctx *alloc, klc_sf_file **out);
void klc_sf_close(klc_sf_file *f);

/* The index of a section by name, or -1; *size (may be NULL) receives its size. */
int32_t klc_sf_find(const klc_sf_file *f, const char *name, size_t *size);
/* Reads section `index` whole into dst (its size) and verifies its checksum. */
int klc_sf_read(const klc_sf_file *f, int32_t index, void *dst);

/* The checksum sections and the table carry: 64-bit FNV-1a over little-endian 64-bit
 * words, then over the remaining bytes, then over the length (docs/checkpoints.md). */
uint64_t klc_sf_checksum(const void *data, size_t n);

#endif
