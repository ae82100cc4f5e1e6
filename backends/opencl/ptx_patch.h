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

/* The marker that kernels_cl/conv2d_wgmma.cl writes before each wgmma-family instruction,
 * turning it into a PTX comment that NVIDIA's OpenCL compiler (targeting plain sm_90, where
 * ptxas refuses wgmma) passes through with its operands filled in. */
#define CF_PTX_WGMMA_MARKER "// CFWG "

/* A copy of ptx (len bytes, not necessarily NUL-terminated) for sm_90a: every
 * CF_PTX_WGMMA_MARKER deleted (the comment becomes the instruction) and the `.target sm_90`
 * directive made `.target sm_90a` (wgmma's architecture-specific target). NUL-terminated, its
 * length in *out_len; free() it. NULL when ptx holds no marker, its target is not exactly
 * sm_90, or memory runs out. */
char *cf_ptx_for_sm90a(const char *ptx, size_t len, size_t *out_len);

#endif
