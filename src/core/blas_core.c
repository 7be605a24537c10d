/* Which OpenBLAS kernels run, and which would be better on this CPU. */
#include "blas_core.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *openblas_get_corename(void);

const char *klc_blas_core(void) {
    return openblas_get_corename();
}

const char *klc_blas_suggested_core(void) {
    const char *core = openblas_get_corename();
    int fallback = core && (strcmp(core, "Prescott") == 0 || strcmp(core, "Core2") == 0 ||
                            strcmp(core, "Nehalem") == 0 || strcmp(core, "generic") == 0);
    if (!fallback) return NULL;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}

void klc_blas_select_core_or_reexec(char **argv) {
    if (getenv("OPENBLAS_CORETYPE") || getenv("KLC_NO_REEXEC")) return;
    const char *want = klc_blas_suggested_core();
    if (!want) return;
    /* Tells the restarted program (klc --version reports it) what happened. */
    setenv("KLC_BLAS_FALLBACK_WAS", openblas_get_corename(), 1);
    setenv("OPENBLAS_CORETYPE", want, 1);
    execv("/proc/self/exe", argv);
    /* Re-execution failed: carry on with the slow kernels, correct all the same. */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("KLC_BLAS_FALLBACK_WAS");
}
