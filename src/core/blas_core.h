/* Restarting a program with better OpenBLAS kernels (see klc_blas_suggested_core). */
#ifndef KLC_CORE_BLAS_CORE_H
#define KLC_CORE_BLAS_CORE_H

/* If OPENBLAS_CORETYPE is unset and klc_blas_suggested_core() names a kernel set, sets
 * OPENBLAS_CORETYPE and re-executes the program with argv; returns only when nothing
 * needed doing or the re-execution failed. KLC_NO_REEXEC=1 in the environment turns this
 * off. For programs (the klc command, benchmarks), never called by the library. */
void klc_blas_select_core_or_reexec(char **argv);

#endif
