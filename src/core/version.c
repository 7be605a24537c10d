/* Run-time version and the process-wide thread setting. */
#include "internal.h"

#include <cblas.h>
#include <omp.h>

uint32_t klc_version(void) {
    return KLC_VERSION;
}

const char *klc_version_string(void) {
    return KLC_VERSION_STRING;
}

int klc_set_num_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return KLC_OK;
}

int klc_get_num_threads(void) {
    return omp_get_max_threads();
}
