/* Atomic file replacement: write a temporary file beside the target, fsync it, rename it
 * over the target, fsync the directory. Readers see either the old file or the new one,
 * never a torn mixture, even across a crash. */
#ifndef KLC_IO_ATOMIC_FILE_H
#define KLC_IO_ATOMIC_FILE_H

#include "core/internal.h"

typedef struct klc_atomic_file {
    int fd;       /* -1 when closed */
    int failed;   /* a write failed; only abort remains */
    int finished; /* flushed and closed, ready to rename */
    char *target; /* final path */
    char *tmp;    /* temporary path in the same directory; NULL once renamed */
    size_t tmp_cap;
    uint64_t written;
    klc_alloc_ctx alloc; /* for the two paths */
} klc_atomic_file;

/* Creates the temporary file for `path` (whose directory must exist). On failure nothing
 * is left behind and *af is safe to pass to klc_atomic_abort. */
int klc_atomic_open(klc_atomic_file *af, const char *path, const klc_alloc_ctx *alloc);
/* Appends bytes; on failure the file is marked failed and only abort remains. */
int klc_atomic_write(klc_atomic_file *af, const void *data, size_t n);
/* Flushes and closes the temporary file without renaming it: the step that can fail for
 * lack of space, done for every file of a set before any of them is renamed. */
int klc_atomic_finish(klc_atomic_file *af);
/* Renames the finished temporary file over the target and fsyncs the directory. */
int klc_atomic_rename(klc_atomic_file *af);
/* finish + rename. On failure the temporary file is removed and the target untouched. */
int klc_atomic_commit(klc_atomic_file *af);
/* Closes and removes the temporary file if any; frees the paths. Safe to call twice and
 * after a successful commit (then it only frees). */
void klc_atomic_abort(klc_atomic_file *af);

/* Writes a whole buffer to `path` atomically. */
int klc_atomic_write_file(const char *path, const void *data, size_t n, const klc_alloc_ctx *alloc);

/* Syncs a directory, so that the entries created or renamed in it are durable (file
 * systems that cannot sync directories are accepted as they are). */
int klc_fsync_dir(const char *dir);

/* Creates a directory and its missing parents (like mkdir -p). */
int klc_mkdir_p(const char *path);

#endif
