/* Atomic replacement of files (see atomic_file.h). */
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fsync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0) n = 1; /* "/file" lives in "/" */
        if (n >= sizeof dir) return klc_fail(KLC_ERR_IO, "%s: path too long", path);
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    return klc_fsync_dir(dir);
}

int klc_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return klc_fail(KLC_ERR_IO, "%s: cannot open directory to sync it: %s", dir,
                        strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    /* Some file systems cannot sync directories at all; the rename is then as durable as
     * they make anything. */
    if (rc != 0 && err != EINVAL && err != EROFS)
        return klc_fail(KLC_ERR_IO, "%s: cannot sync directory: %s", dir, strerror(err));
    return KLC_OK;
}

int klc_atomic_open(klc_atomic_file *af, const char *path, const klc_alloc_ctx *alloc) {
    memset(af, 0, sizeof *af);
    af->fd = -1;
    if (alloc) af->alloc = *alloc;
    if (!path || !*path) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "empty file path");
    af->target = klc_strdup(&af->alloc, path);
    size_t cap = strlen(path) + 64;
    af->tmp = klc_alloc(&af->alloc, cap);
    af->tmp_cap = cap;
    if (!af->target || !af->tmp) {
        klc_atomic_abort(af);
        return KLC_ERR_OUT_OF_MEMORY;
    }
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    /* A hidden name in the same directory, so that rename never crosses file systems;
     * O_EXCL with a fresh suffix per attempt, because two writers may race. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t salt = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uintptr_t)af;
    int err = 0;
    for (int attempt = 0; attempt < 64; attempt++) {
        snprintf(af->tmp, cap, "%.*s.%s.tmp-%ld-%08llx", (int)dir_len, path, path + dir_len,
                 (long)getpid(), (unsigned long long)((salt + (uint64_t)attempt) & 0xffffffffu));
        af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (af->fd >= 0) return KLC_OK;
        err = errno;
        if (err != EEXIST) break;
    }
    int status = klc_fail(KLC_ERR_IO, "%s: cannot create temporary file '%s': %s", path, af->tmp,
                          strerror(err));
    klc_free(&af->alloc, af->tmp, af->tmp_cap);
    af->tmp = NULL;
    klc_atomic_abort(af);
    return status;
}

int klc_atomic_write(klc_atomic_file *af, const void *data, size_t n) {
    if (af->fd < 0 || af->failed)
        return klc_fail(KLC_ERR_STATE, "%s: write to a file that is closed or failed",
                        af->target ? af->target : "(null)");
    const char *p = data;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(af->fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            af->failed = 1;
            return klc_fail(KLC_ERR_IO, "%s: cannot write (after %llu bytes): %s", af->target,
                            (unsigned long long)af->written,
                            w < 0 ? strerror(errno) : "no progress");
        }
        p += w;
        n -= (size_t)w;
        af->written += (uint64_t)w;
    }
    return KLC_OK;
}

int klc_atomic_finish(klc_atomic_file *af) {
    if (af->finished) return KLC_OK;
    if (af->fd < 0 || af->failed)
        return klc_fail(KLC_ERR_STATE, "%s: finishing a file that is closed or failed",
                        af->target ? af->target : "(null)");
    if (fsync(af->fd) != 0) {
        af->failed = 1;
        return klc_fail(KLC_ERR_IO, "%s: cannot sync '%s': %s", af->target, af->tmp,
                        strerror(errno));
    }
    int rc = close(af->fd);
    af->fd = -1;
    if (rc != 0) {
        af->failed = 1;
        return klc_fail(KLC_ERR_IO, "%s: cannot close '%s': %s", af->target, af->tmp,
                        strerror(errno));
    }
    af->finished = 1;
    return KLC_OK;
}

int klc_atomic_rename(klc_atomic_file *af) {
    if (!af->finished || af->failed || !af->tmp)
        return klc_fail(KLC_ERR_STATE, "%s: rename of an unfinished file",
                        af->target ? af->target : "(null)");
    if (rename(af->tmp, af->target) != 0) {
        af->failed = 1;
        return klc_fail(KLC_ERR_IO, "%s: cannot rename '%s' over it: %s", af->target, af->tmp,
                        strerror(errno));
    }
    klc_free(&af->alloc, af->tmp, af->tmp_cap);
    af->tmp = NULL;
    return fsync_parent_dir(af->target);
}

int klc_atomic_commit(klc_atomic_file *af) {
    int status = klc_atomic_finish(af);
    if (status == KLC_OK) status = klc_atomic_rename(af);
    if (status != KLC_OK) klc_atomic_abort(af);
    return status;
}

void klc_atomic_abort(klc_atomic_file *af) {
    if (af->fd >= 0) close(af->fd);
    af->fd = -1;
    if (af->tmp) {
        unlink(af->tmp);
        klc_free(&af->alloc, af->tmp, af->tmp_cap);
        af->tmp = NULL;
    }
    klc_free_str(&af->alloc, af->target);
    af->target = NULL;
}

int klc_atomic_write_file(const char *path, const void *data, size_t n,
                          const klc_alloc_ctx *alloc) {
    klc_atomic_file af;
    int status = klc_atomic_open(&af, path, alloc);
    if (status == KLC_OK) status = klc_atomic_write(&af, data, n);
    if (status == KLC_OK) status = klc_atomic_commit(&af);
    klc_atomic_abort(&af);
    return status;
}

int klc_mkdir_p(const char *path) {
    if (!path || !*path) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "empty directory path");
    char buf[4096];
    size_t len = strlen(path);
    if (len >= sizeof buf) return klc_fail(KLC_ERR_IO, "%s: path too long", path);
    memcpy(buf, path, len + 1);
    /* Each prefix ending before a '/', then the whole path. */
    for (size_t i = 1; i <= len; i++) {
        if (i < len && buf[i] != '/') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            int err = errno;
            return klc_fail(KLC_ERR_IO, "%s: cannot create directory '%s': %s", path, buf,
                            strerror(err));
        }
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return klc_fail(KLC_ERR_IO, "%s: exists and is not a directory", path);
    return KLC_OK;
}
