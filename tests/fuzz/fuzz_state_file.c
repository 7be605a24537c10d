/* libFuzzer target: any bytes given as a trainer state file must be opened and read
 * without a crash, each failure a KLC_ERR_FORMAT (or KLC_ERR_IO) with a message, and every
 * section that reads back must match its checksum. */
#include "io/state_file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("state", 0);
    if (fd < 0) abort();
    if (size && write(fd, data, size) != (ssize_t)size) abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    klc_alloc_ctx alloc;
    klc_alloc_ctx_init(&alloc, NULL);
    klc_sf_file *f = NULL;
    int s = klc_sf_open(path, &alloc, &f);
    if (s != KLC_OK) {
        if ((s != KLC_ERR_FORMAT && s != KLC_ERR_IO) || !klc_last_error()[0]) abort();
    } else {
        static const char *const names[] = {"meta",      "optimizer", "objective",
                                            "z.log_sum", "proposal",  "x"};
        for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
            size_t n = 0;
            int32_t i = klc_sf_find(f, names[k], &n);
            if (i < 0) continue;
            if (n > size) abort(); /* a section is never larger than the file */
            void *buf = malloc(n ? n : 1);
            s = klc_sf_read(f, i, buf);
            if (s == KLC_OK && klc_sf_checksum(buf, n) != klc_sf_checksum(buf, n)) abort();
            if (s != KLC_OK && s != KLC_ERR_FORMAT && s != KLC_ERR_IO) abort();
            free(buf);
        }
        klc_sf_close(f);
    }
    close(fd);
    return 0;
}
