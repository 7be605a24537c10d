#include "blas_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *openblas_get_corename(void);

const char *klc_blas_core_name(void) { return openblas_get_corename(); }

static const char *better_core(void) {
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
    const char *core = openblas_get_corename();
    int fallback = core && (strcmp(core, "Prescott") == 0 || strcmp(core, "Core2") == 0 ||
                            strcmp(core, "Nehalem") == 0 || strcmp(core, "generic") == 0);
    const char *want = better_core();
    if (!fallback || !want) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    fprintf(stderr,
            "klc: OpenBLAS did not recognise this CPU and chose its %s kernels; restarting "
            "with OPENBLAS_CORETYPE=%s (set OPENBLAS_CORETYPE to choose yourself)\n",
            core, want);
    execv("/proc/self/exe", argv);
    /* Re-execution failed: carry on with the slow kernels, correct all the same. */
    unsetenv("OPENBLAS_CORETYPE");
}
