/* The binary state file (see state_file.h and docs/checkpoints.md):
 *   header, 32 bytes:
 *     0  magic "KLCSTATE"
 *     8  format version, uint32 (1)
 *     12 number of sections, uint32
 *     16 file size in bytes, uint64
 *     24 checksum of bytes 0..23 followed by the section table, uint64
 *   section table, 64 bytes per section:
 *     0  name, NUL-terminated and NUL-padded, 40 bytes
 *     40 offset of the section from the file's start, uint64
 *     48 size in bytes, uint64
 *     56 checksum of the section's bytes, uint64
 *   the sections, in table order, back to back: the first right after the table, the
 *   last ending at the end of the file. Every byte of the file is covered by a checksum
 *   (the header's own checksum field by the comparison), so any changed byte is found. */
#include "core/le_bytes.h"
#include "io/state_file.h"
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char MAGIC[8] = {'K', 'L', 'C', 'S', 'T', 'A', 'T', 'E'};
enum { FORMAT_VERSION = 1 };

static const uint64_t FNV_OFFSET = 0xcbf29ce484222325ull, FNV_PRIME = 0x100000001b3ull;

/* The running state of the checksum, so that it can go over several pieces. Every step
 * is a bijection of the state, so any single changed word changes the result. */
typedef struct sum_state {
    uint64_t h, length;
} sum_state;

static void sum_update(sum_state *s, const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = s->h;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) h = (h ^ klc_get_u64(p + i)) * FNV_PRIME;
    for (; i < n; i++) h = (h ^ p[i]) * FNV_PRIME;
    s->h = h;
    s->length += n;
}

static uint64_t sum_final(const sum_state *s) {
    return (s->h ^ s->length) * FNV_PRIME;
}

uint64_t klc_sf_checksum(const void *data, size_t n) {
    sum_state s = {FNV_OFFSET, 0};
    sum_update(&s, data, n);
    return sum_final(&s);
}

int klc_sf_write(const char *path, const klc_sf_section *sec, int32_t n,
                 const klc_alloc_ctx *alloc) {
    if (n < 0 || n > KLC_SF_MAX_SECTIONS || (n > 0 && !sec))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: bad section list", path);
    const size_t table_bytes = (size_t)n * KLC_SF_ENTRY_BYTES;
    unsigned char *head = klc_alloc_zeroed(alloc, KLC_SF_HEADER_BYTES + table_bytes);
    if (!head) return KLC_ERR_OUT_OF_MEMORY;
    uint64_t offset = KLC_SF_HEADER_BYTES + table_bytes;
    for (int32_t i = 0; i < n; i++) {
        size_t len = sec[i].name ? strlen(sec[i].name) : 0;
        int dup = 0;
        for (int32_t j = 0; j < i && !dup; j++) dup = strcmp(sec[i].name, sec[j].name) == 0;
        if (len == 0 || len >= KLC_SF_NAME_MAX || dup || (!sec[i].data && sec[i].size)) {
            klc_free(alloc, head, KLC_SF_HEADER_BYTES + table_bytes);
            return klc_fail(KLC_ERR_INVALID_ARGUMENT, "%s: section %d: bad or repeated name", path,
                            i);
        }
        unsigned char *e = head + KLC_SF_HEADER_BYTES + (size_t)i * KLC_SF_ENTRY_BYTES;
        memcpy(e, sec[i].name, len);
        klc_put_u64(e + 40, offset);
        klc_put_u64(e + 48, sec[i].size);
        klc_put_u64(e + 56, klc_sf_checksum(sec[i].data, sec[i].size));
        offset += sec[i].size;
    }
    memcpy(head, MAGIC, sizeof MAGIC);
    klc_put_u32(head + 8, FORMAT_VERSION);
    klc_put_u32(head + 12, (uint32_t)n);
    klc_put_u64(head + 16, offset);
    sum_state s = {FNV_OFFSET, 0};
    sum_update(&s, head, 24);
    sum_update(&s, head + KLC_SF_HEADER_BYTES, table_bytes);
    klc_put_u64(head + 24, sum_final(&s));

    klc_atomic_file af;
    int status = klc_atomic_open(&af, path, alloc);
    if (status == KLC_OK) status = klc_atomic_write(&af, head, KLC_SF_HEADER_BYTES + table_bytes);
    for (int32_t i = 0; i < n && status == KLC_OK; i++)
        if (sec[i].size) status = klc_atomic_write(&af, sec[i].data, sec[i].size);
    if (status == KLC_OK) status = klc_atomic_commit(&af);
    klc_atomic_abort(&af);
    klc_free(alloc, head, KLC_SF_HEADER_BYTES + table_bytes);
    return status;
}

/* --- Reading ------------------------------------------------------------------------- */

typedef struct sf_entry {
    char name[KLC_SF_NAME_MAX];
    uint64_t offset, size, checksum;
} sf_entry;

struct klc_sf_file {
    klc_alloc_ctx alloc;
    int fd;
    char *path;
    int32_t n;
    sf_entry *entries; /* [n] */
};

static int pread_all(const klc_sf_file *f, void *dst, uint64_t n, uint64_t offset,
                     const char *what) {
    unsigned char *p = dst;
    while (n > 0) {
        size_t chunk = n > ((uint64_t)1 << 30) ? ((size_t)1 << 30) : (size_t)n;
        ssize_t r = pread(f->fd, p, chunk, (off_t)offset);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return klc_fail(KLC_ERR_IO, "%s: cannot read %s: %s", f->path, what, strerror(errno));
        if (r == 0)
            return klc_fail(KLC_ERR_FORMAT, "%s: %s: the file ends early (truncated?)", f->path,
                            what);
        p += r;
        n -= (uint64_t)r;
        offset += (uint64_t)r;
    }
    return KLC_OK;
}

void klc_sf_close(klc_sf_file *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    klc_free(&f->alloc, f->entries, (size_t)f->n * sizeof *f->entries);
    klc_free_str(&f->alloc, f->path);
    klc_free(&f->alloc, f, sizeof *f);
}

/* The header and the table, checked field by field; file_size is the file's real size. */
static int parse(klc_sf_file *f, const unsigned char *head, uint64_t file_size) {
    const char *p = f->path;
    if (memcmp(head, MAGIC, sizeof MAGIC) != 0)
        return klc_fail(KLC_ERR_FORMAT, "%s: not a klc state file (wrong magic)", p);
    const uint32_t version = klc_get_u32(head + 8), n = klc_get_u32(head + 12);
    if (version != FORMAT_VERSION)
        return klc_fail(KLC_ERR_FORMAT, "%s: format version %u (this library reads %d)", p, version,
                        FORMAT_VERSION);
    if (n > KLC_SF_MAX_SECTIONS)
        return klc_fail(KLC_ERR_FORMAT, "%s: %u sections (at most %d)", p, n, KLC_SF_MAX_SECTIONS);
    const uint64_t size = klc_get_u64(head + 16);
    if (size != file_size)
        return klc_fail(KLC_ERR_FORMAT, "%s: the file has %llu bytes, its header says %llu (%s)", p,
                        (unsigned long long)file_size, (unsigned long long)size,
                        file_size < size ? "truncated" : "trailing bytes");
    const uint64_t table_end = KLC_SF_HEADER_BYTES + (uint64_t)n * KLC_SF_ENTRY_BYTES;
    if (table_end > file_size)
        return klc_fail(KLC_ERR_FORMAT, "%s: the section table runs past the end", p);
    sum_state s = {FNV_OFFSET, 0};
    sum_update(&s, head, 24);
    sum_update(&s, head + KLC_SF_HEADER_BYTES, (size_t)n * KLC_SF_ENTRY_BYTES);
    if (sum_final(&s) != klc_get_u64(head + 24))
        return klc_fail(KLC_ERR_FORMAT, "%s: the header or section table is corrupt (checksum)", p);
    f->entries = klc_alloc_zeroed(&f->alloc, (size_t)(n ? n : 1) * sizeof *f->entries);
    if (!f->entries) return KLC_ERR_OUT_OF_MEMORY;
    f->n = (int32_t)n;
    uint64_t end = table_end;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *e = head + KLC_SF_HEADER_BYTES + (size_t)i * KLC_SF_ENTRY_BYTES;
        sf_entry *d = &f->entries[i];
        memcpy(d->name, e, KLC_SF_NAME_MAX);
        d->offset = klc_get_u64(e + 40);
        d->size = klc_get_u64(e + 48);
        d->checksum = klc_get_u64(e + 56);
        const size_t len = strnlen(d->name, KLC_SF_NAME_MAX);
        if (len == 0 || len == KLC_SF_NAME_MAX)
            return klc_fail(KLC_ERR_FORMAT, "%s: section %u has no valid name", p, i);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(f->entries[j].name, d->name) == 0)
                return klc_fail(KLC_ERR_FORMAT, "%s: section '%s' appears twice", p, d->name);
        if (d->offset != end || d->size > file_size - d->offset)
            return klc_fail(KLC_ERR_FORMAT,
                            "%s: section '%s': bytes [%llu, +%llu) are misplaced or out of the "
                            "file",
                            p, d->name, (unsigned long long)d->offset, (unsigned long long)d->size);
        end = d->offset + d->size;
    }
    if (end != file_size)
        return klc_fail(KLC_ERR_FORMAT, "%s: %llu bytes after the last section", p,
                        (unsigned long long)(file_size - end));
    return KLC_OK;
}

int klc_sf_open(const char *path, const klc_alloc_ctx *alloc, klc_sf_file **out) {
    *out = NULL;
    klc_sf_file *f = klc_alloc_zeroed(alloc, sizeof *f);
    if (!f) return KLC_ERR_OUT_OF_MEMORY;
    f->alloc = *alloc;
    f->fd = -1;
    f->path = klc_strdup(alloc, path);
    if (!f->path) {
        klc_sf_close(f);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (f->fd < 0 || fstat(f->fd, &st) != 0) {
        int s = klc_fail(KLC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        klc_sf_close(f);
        return s;
    }
    const uint64_t file_size = (uint64_t)st.st_size;
    unsigned char fixed[KLC_SF_HEADER_BYTES];
    int s = file_size < KLC_SF_HEADER_BYTES
                ? klc_fail(KLC_ERR_FORMAT, "%s: %llu bytes, shorter than the header (truncated?)",
                           path, (unsigned long long)file_size)
                : pread_all(f, fixed, KLC_SF_HEADER_BYTES, 0, "the header");
    /* The table is at most KLC_SF_MAX_SECTIONS entries (a hostile count must not make us
     * allocate); what the file lacks stays zero, and parse reports the truncation. */
    unsigned char *head = NULL;
    size_t head_bytes = 0;
    if (s == KLC_OK) {
        const uint32_t n = klc_get_u32(fixed + 12);
        head_bytes =
            KLC_SF_HEADER_BYTES + (size_t)(n <= KLC_SF_MAX_SECTIONS ? n : 0) * KLC_SF_ENTRY_BYTES;
        head = klc_alloc_zeroed(alloc, head_bytes);
        if (!head) s = KLC_ERR_OUT_OF_MEMORY;
    }
    if (s == KLC_OK) {
        memcpy(head, fixed, KLC_SF_HEADER_BYTES);
        uint64_t avail = file_size < head_bytes ? file_size : head_bytes;
        if (avail > KLC_SF_HEADER_BYTES)
            s = pread_all(f, head + KLC_SF_HEADER_BYTES, avail - KLC_SF_HEADER_BYTES,
                          KLC_SF_HEADER_BYTES, "the section table");
    }
    if (s == KLC_OK) s = parse(f, head, file_size);
    klc_free(alloc, head, head_bytes);
    if (s != KLC_OK) {
        klc_sf_close(f);
        return s;
    }
    *out = f;
    return KLC_OK;
}

int32_t klc_sf_find(const klc_sf_file *f, const char *name, size_t *size) {
    for (int32_t i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0) {
            if (size) *size = (size_t)f->entries[i].size;
            return i;
        }
    return -1;
}

int klc_sf_read(const klc_sf_file *f, int32_t index, void *dst) {
    const sf_entry *e = &f->entries[index];
    char what[64];
    snprintf(what, sizeof what, "section '%s'", e->name);
    KLC_TRY(pread_all(f, dst, e->size, e->offset, what));
    if (klc_sf_checksum(dst, (size_t)e->size) != e->checksum)
        return klc_fail(KLC_ERR_FORMAT, "%s: section '%s' is corrupt (checksum mismatch)", f->path,
                        e->name);
    return KLC_OK;
}
