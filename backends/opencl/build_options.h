/* The build options of convfuse's OpenCL programs: every layout constant and switch a kernel
 * is specialised on, as -D defines. Device-free, so that a test can compile the tensor-core
 * kernel exactly as the OpenCL backend would ask NVIDIA's OpenCL to (tests/
 * test_cl_mma_kernel.c), on a machine without the GPU. The string is also the key of the
 * program cache. */
#ifndef CF_OPENCL_BUILD_OPTIONS_H
#define CF_OPENCL_BUILD_OPTIONS_H

#include <stddef.h>

#include "env.h"
#include "epilogue.h"
#include "planner.h"
#include "shape.h"

/* Appends " -D<name>=<value>" (no leading space on an empty buffer) to buf at *used; 0 if it
 * did not fit. */
int cf_cl_opt_append(char *buf, size_t len, size_t *used, const char *name, int value);

/* The defines every kernel is specialised on: bias present, then the chain (one per op). */
int cf_cl_opt_append_epilogue(char *buf, size_t len, size_t *used, int has_bias,
                              const cf_epilogue *epi);

/* Whose measurements a device's switch defaults follow (bench/NOTES.md v63). They were tuned
 * on an H200 (HBM3e, 141 GB); on an H100 (HBM3, 80 GB) two programs measured faster the other
 * way, with the same driver and so the same machine code: sub-sub-mish tf32 with 64-bit
 * offsets (1.35 -> 1.21 ms), fp32 with the k-loop rolled and ldmatrix (2.3 -> 2.0). */
typedef enum cf_cl_tuning { CF_CL_TUNED_H200 = 0, CF_CL_TUNED_H100 } cf_cl_tuning;

/* OpenCL reports no memory bandwidth: NVIDIA devices with at most this much global memory (the
 * H100's 80 GB and its 94 / 96 GB HBM3 relatives) take the H100's defaults, every other device
 * the H200's. */
#define CF_CL_H100_TUNING_MAX_MEMORY (100ull << 30)
cf_cl_tuning cf_cl_tuning_of(int is_nvidia, unsigned long long global_mem_bytes);

/* Whether a program takes the H100's defaults: only those with resident weights measured
 * differently there (bench/NOTES.md v63). One predicate for the switches, the register cap and
 * the plan's detail, so that the three cannot disagree. */
int cf_cl_h100_defaults_apply(cf_cl_tuning tuning, int resident);

/* The local memory NVIDIA's OpenCL gives a work-group (bench/cl_local_probe.c: no more
 * launches), which the tensor-core programs are planned for (emulated elsewhere as there): a
 * third stage (switch stages3) is taken only where it still fits. */
#define CF_CL_MMA_LOCAL_BYTES (48 * 1024)

/* The tensor-core program's switches (common/env.h's cf_cl_switch_names) for plan t of shape
 * sh: the defaults measured on the device class `tuning`, then each value in forced (may be
 * NULL) that the program can take. Returns the switches forced to a value the program cannot
 * take (bit i: switch i), which keep their defaults. wgmma says whether the shape and plan
 * take the wgmma program (on by default for streamed weights); whether the device can run it
 * is the backend's to add. */
unsigned cf_cl_mma_switches(const cf_conv_shape *sh, const cf_tile_plan *t, cf_cl_tuning tuning,
                            const cf_cl_switches *forced, int sw[CF_CL_SWITCHES]);

/* The tensor-core program's options (kernels_cl/conv2d_mma.cl) for plan t of shape sh, which
 * the caller has checked against the MMA menu (tile, warp tile, threads): the inline-assembly
 * keyword asm_kw, the layout (common/mma_layout.h), the switches sw (cf_cl_mma_switches), the
 * register cap max_registers (not read by the source: it tells capped builds apart in the
 * cache), then the epilogue. 0 if they do not fit in len bytes. */
int cf_cl_mma_options(const cf_conv_shape *sh, const cf_tile_plan *t, const cf_epilogue *epi,
                      const char *asm_kw, int max_registers, const int sw[CF_CL_SWITCHES],
                      char *buf, size_t len);

/* The wgmma program (kernels_cl/conv2d_wgmma.cl) for shape sh: fp16 pairs for 3xTF32 plans
 * (pairs), else one fp16 product. Filled by cf_cl_wgmma_geometry_of. */
typedef struct cf_cl_wgmma_geometry {
  int pairs;          /* hi / lo pairs (FP32 accuracy) or one product */
  int bn;             /* output channels per tile: 128, or 64 for pairs and K <= 64 */
  int pitch;          /* the patch rows' pitch in floats */
  int chunk_bytes;    /* one chunk's laid-out weights: 16 row channels (input channel,
                         kernel row) x S */
  int stage_bytes;    /* a stage: the chunk's weights and its 16 patch rows */
  int resident;       /* every chunk's weights in local memory beside two stages of patch
                         rows, the groups persistent (where that fits CF_CL_MMA_LOCAL_BYTES) */
  int n_chunks;       /* ceil(C R / 16) */
  int q_tiles;        /* 128-pixel tiles per output row */
  int k_tiles;        /* channel tiles */
  int pair_stores;    /* Q even: 8-byte pixel-pair stores */
  int aligned_stores; /* the output in sector-aligned runs instead: 0 from
                         cf_cl_wgmma_geometry_of, set by the plan (on unless the switch
                         aligned_stores=0 is forced) */
  long long groups;   /* tiles x channel tiles, N x P x q_tiles x k_tiles: the work-groups
                         of 256 where not resident */
  long long laid_bytes; /* the laid-out weights: k_tiles x n_chunks chunks */
} cf_cl_wgmma_geometry;

/* Whether the wgmma program takes shape sh (1, g filled) or not (0): stride 1 and no
 * dilation; W and pad_w multiples of 4 (the patch's 16-byte copies); two stages within
 * CF_CL_MMA_LOCAL_BYTES; the launch's group count and the kernel's int offsets in range. */
int cf_cl_wgmma_geometry_of(const cf_conv_shape *sh, int pairs, cf_cl_wgmma_geometry *g);

/* The wgmma program's options (the key of its cache entry): asm_kw, the geometry, the shape
 * but for the batch (compile-time: as arguments they cost the k-loop registers, v69), the
 * register cap (max_registers: tells capped builds apart), then the epilogue. 0 if they do not
 * fit in len bytes. */
int cf_cl_wgmma_options(const cf_conv_shape *sh, const cf_cl_wgmma_geometry *g,
                        const cf_epilogue *epi, const char *asm_kw, int max_registers,
                        char *buf, size_t len);

/* Makes buf (options of a TF32 / 3xTF32 program, cf_cl_mma_options) the fp16 plan's rerun's:
 * appends CFM_RERUN (conv2d_mma.cl: return at once unless the range guard is set). 0 if it
 * does not fit in len bytes. */
int cf_cl_mma_options_as_rerun(char *buf, size_t len);

#endif
