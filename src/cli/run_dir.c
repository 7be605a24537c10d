/* Checkpoints of `klc pretrain` (run_dir.h). */
#include "cli/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "io/atomic_file.h"

int run_dir_create(const char *dir) {
    return klc_mkdir_p(dir);
}

/* rm -r of a checkpoint directory: it holds files only. */
static void remove_checkpoint(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        char file[4096 + 512];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(file, sizeof file, "%s/%s", path, e->d_name);
                unlink(file);
            }
        closedir(d);
    }
    rmdir(path);
}

static int is_checkpoint_name(const char *name, long long *step) {
    char tail;
    return strncmp(name, "step-", 5) == 0 && strlen(name) == 17 &&
           sscanf(name + 5, "%lld%c", step, &tail) == 1;
}

static int by_value(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Removes every complete checkpoint but the newest keep_last, and any leftover temporary
 * directory of an interrupted write. */
static void prune(const char *root, int32_t keep_last) {
    DIR *d = opendir(root);
    if (!d) return;
    long long steps[1024];
    size_t n = 0;
    char path[4096 + 512];
    struct dirent *e;
    while ((e = readdir(d))) {
        long long step;
        if (is_checkpoint_name(e->d_name, &step) && n < 1024)
            steps[n++] = step;
        else if (strncmp(e->d_name, "tmp-step-", 9) == 0) {
            snprintf(path, sizeof path, "%s/%s", root, e->d_name);
            remove_checkpoint(path);
        }
    }
    closedir(d);
    if (keep_last <= 0 || n <= (size_t)keep_last) return;
    qsort(steps, n, sizeof *steps, by_value);
    for (size_t i = 0; i + (size_t)keep_last < n; i++) {
        snprintf(path, sizeof path, "%s/step-%012lld", root, steps[i]);
        remove_checkpoint(path);
    }
}

static int fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return klc_fail(KLC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? KLC_OK : klc_fail(KLC_ERR_IO, "cannot sync %s: %s", path, strerror(errno));
}

int run_dir_save_checkpoint(const char *dir, int64_t step, const klc_model *m,
                            const klc_optimizer *opt, int32_t keep_last, char *path_out,
                            size_t path_cap) {
    char root[4096], tmp[4200], final[4200], file[4300];
    snprintf(root, sizeof root, "%s/checkpoints", dir);
    KLC_TRY(klc_mkdir_p(root));
    snprintf(tmp, sizeof tmp, "%s/tmp-step-%012lld", root, (long long)step);
    snprintf(final, sizeof final, "%s/step-%012lld", root, (long long)step);
    remove_checkpoint(tmp);
    int status = klc_model_save(m, tmp);
    size_t size = klc_optimizer_state_size(opt);
    void *blob = status == KLC_OK ? malloc(size) : NULL;
    if (status == KLC_OK && !blob) status = klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory");
    if (status == KLC_OK) status = klc_optimizer_save_state(opt, blob, size, NULL);
    if (status == KLC_OK) {
        snprintf(file, sizeof file, "%s/optimizer.state", tmp);
        status = klc_atomic_write_file(file, blob, size, NULL);
    }
    free(blob);
    if (status == KLC_OK) status = fsync_dir(tmp);
    if (status == KLC_OK) {
        remove_checkpoint(final); /* a checkpoint of the same step from an earlier run */
        if (rename(tmp, final) != 0)
            status =
                klc_fail(KLC_ERR_IO, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
    }
    if (status == KLC_OK) status = fsync_dir(root);
    if (status != KLC_OK) {
        remove_checkpoint(tmp);
        return status;
    }
    prune(root, keep_last);
    if (path_out) snprintf(path_out, path_cap, "%s", final);
    return KLC_OK;
}

int run_dir_load_optimizer(const char *checkpoint, klc_optimizer *opt) {
    char file[4200];
    snprintf(file, sizeof file, "%s/optimizer.state", checkpoint);
    FILE *f = fopen(file, "rb");
    if (!f) return klc_fail(KLC_ERR_IO, "cannot open %s: %s", file, strerror(errno));
    size_t size = klc_optimizer_state_size(opt);
    void *blob = malloc(size + 1);
    size_t got = blob ? fread(blob, 1, size + 1, f) : 0;
    fclose(f);
    int status = !blob ? klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory")
                       : klc_optimizer_load_state(opt, blob, got);
    free(blob);
    return status;
}
