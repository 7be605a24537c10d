/* OpenBLAS picks its kernels once, when it loads, from the CPU model; a CPU newer than the
 * OpenBLAS release (Debian 12 ships 0.3.21) falls back to its slowest x86-64 kernels
 * ("Prescott"), about six times slower here. Programs (not the library, which never
 * changes process-wide state on its own) can detect that and restart themselves with
 * OPENBLAS_CORETYPE naming the newest kernel set the CPU supports. */
#ifndef KLC_CORE_BLAS_CORE_H
#define KLC_CORE_BLAS_CORE_H

/* The kernel set OpenBLAS is using, e.g. "SkylakeX". */
const char *klc_blas_core_name(void);

/* If OPENBLAS_CORETYPE is unset and OpenBLAS chose a fallback core although the CPU has
 * AVX-512 or AVX2, sets OPENBLAS_CORETYPE and re-executes the program (argv as given);
 * returns only when nothing needed doing or the re-execution failed. KLC_NO_REEXEC=1
 * in the environment turns this off. */
void klc_blas_select_core_or_reexec(char **argv);

#endif
