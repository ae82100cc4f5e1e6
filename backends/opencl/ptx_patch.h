/* Edits of the PTX text NVIDIA's OpenCL gives as a program's binary, for rebuilding the
 * program from it (clCreateProgramWithBinary): the route to what OpenCL C cannot say. */
#ifndef CF_OPENCL_PTX_PATCH_H
#define CF_OPENCL_PTX_PATCH_H

#include <stddef.h>

/* A copy of ptx (len bytes, not necessarily NUL-terminated) with `.maxnreg max_registers`
 * before the body of every `.entry`: ptxas's register cap, which NVIDIA's OpenCL compiler
 * does not take as an option (-cl-nv-maxrregcount is accepted and ignored). NUL-terminated,
 * its length in *out_len; free() it. NULL when ptx has no entry, an entry already carries a
 * .maxnreg, max_registers is outside 1..255, or memory runs out. */
char *cf_ptx_with_max_registers(const char *ptx, size_t len, int max_registers,
                                size_t *out_len);

#endif
