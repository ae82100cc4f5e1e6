/* The tiling planner: a pure function from (shape, epilogue, math, device caps) to a tile
 * plan. No backend code, no device calls: unit-tested on fixture caps. */
#ifndef CF_COMMON_PLANNER_H
#define CF_COMMON_PLANNER_H

#include <stdint.h>
#include "convfuse/convfuse.h"
#include "device_caps.h"
#include "epilogue.h"
#include "mma_layout.h"
#include "shape.h"

typedef enum cf_kernel_variant {
  CF_KERNEL_REFERENCE = 0, /* CPU backend: direct loops */
  CF_KERNEL_FFMA_TILED,    /* implicit GEMM in shared/local memory, fp32 FFMA */
  CF_KERNEL_MMA_TF32,      /* tensor-core row tiles, one TF32 product (CF_MATH_TF32) */
  CF_KERNEL_MMA_3XTF32,    /* tensor-core row tiles, 3xTF32 split: fp32-accurate */
  CF_KERNEL_COUNT
} cf_kernel_variant;

typedef struct cf_tile_plan {
  cf_kernel_variant variant;
  int menu_index;        /* index into the variant's tile menu in constants.def; -1 if none */
  int block_m, block_n, block_k; /* block tile (GEMM M x N) and K slice */
  int thread_m, thread_n;        /* FFMA: per-thread register micro-tile */
  int warp_m, warp_n;            /* MMA: per-warp tile */
  int chunk_channels;            /* MMA: input channels per K chunk */
  int weights_resident;          /* MMA: the block's weights stay in shared memory */
  int weights_swizzled;          /* MMA: streamed weights unpadded, swizzled (mma_layout.h) */
  int output_staged;             /* MMA: the output tile goes out through shared memory */
  int wgmma;                     /* MMA: the k-loop runs on wgmma; menu_index is into
                                    cf_wg_menu (else cf_mma_menu) */
  int patch_tma_segment;         /* MMA: > 0: the patch arrives by TMA in segments of this
                                    many pixels (cf_layout_with_tma); 0: by cp.async */
  int flat_tiles;                /* MMA (wgmma, TMA): tiles are block_m consecutive pixels of
                                    an output plane, crossing row ends; the patch is whole
                                    input rows, the output leaves by TMA stores from
                                    output_buffers staging buffers (cf_flat_layout_make) */
  int output_buffers;            /* flat tiles: staging buffers (1 or 2); 0 otherwise */
  int f16;                       /* MMA (streamed wgmma; flat tiles for 3xTF32): the
                                    products on fp16 tensor cores, hi / lo pairs for 3xTF32
                                    (caps wg_f16; mma_layout.h), behind a range guard: where a
                                    sum is not finite the whole convolution is rerun on TF32 /
                                    3xTF32 */
  int rerun_stages;              /* f16: that rerun's pipeline depth and shared memory (its
                                    layout with f16 0, and with output_buffers' fitting
                                    choice for flat tiles); else 0 */
  size_t rerun_shared_bytes;
  int rerun_output_buffers;      /* f16 on flat tiles: that rerun's staging buffers; else 0 */
  int row_channels;              /* MMA (WG entry 1, one fp16 product; caps
                                    row_channel_stages): the job runs as the row-channel tile,
                                    1 with streamed weights, 2 with them resident (two teams
                                    per block); the fields around keep describing entry 1 (its
                                    TF32 rerun's tile), row_channel_* the tile itself: */
  int row_channel_stages, row_channel_threads;
  int64_t row_channel_tiles;     /* its CF_ROWCH_BM-pixel row tiles (grid along M; blocks
                                    persist) */
  size_t row_channel_shared_bytes;
  int threads;                   /* threads (work-items) per block (work-group) */
  int stages;                    /* shared-memory pipeline depth */
  int64_t grid_m, grid_n;        /* tiles along M and N (persistent kernels launch fewer
                                    blocks, each walking several tiles) */
  size_t shared_bytes;           /* shared/local memory per block */
  cf_math math_effective;        /* the precision the kernel actually computes in */
  char why[256];                 /* the planner's reasoning, one line */
} cf_tile_plan;

/* The FFMA tile menu of constants.def (CFK_FFMA_TILE_COUNT entries): block tile bm x bn,
 * K slice bk, per-thread micro-tile tm x tn. */
typedef struct cf_ffma_tile {
  int bm, bn, bk, tm, tn;
} cf_ffma_tile;
extern const cf_ffma_tile cf_ffma_menu[];

/* The tensor-core tile menu of constants.def (CFK_MMA_TILE_COUNT entries): block tile
 * bm x bn, warp tile wm x wn. The planner chooses among them; the backends' kernels are
 * instantiated (CUDA) or built (OpenCL) for them. */
typedef struct cf_mma_tile {
  int bm, bn, wm, wn;
  int streamed; /* wgmma: the weights stream with the patch (conv_stream.cuh): patch by TMA,
                   several K chunks, nothing resident */
  int split;    /* a streamed entry runs one math: 1 = 3xTF32 (both weight halves in each
                   stage), 0 = one TF32 product */
} cf_mma_tile;
extern const cf_mma_tile cf_mma_menu[];

/* The wgmma tile menu of constants.def (CFK_WG_TILE_COUNT entries, CUDA on sm_90a): the same
 * row tiles with warps of 16 pixels x bn channels, one warpgroup per 64 pixels; entries 1
 * (TF32) and 2 (3xTF32) are the streamed tiles. */
extern const cf_mma_tile cf_wg_menu[];

/* Fills plan. CF_ERR_UNSUPPORTED (with a message) if no variant fits the device. */
cf_status cf_plan_tiles(const cf_conv_shape *shape, const cf_epilogue *epi, cf_math math,
                        const cf_device_caps *caps, cf_tile_plan *plan);

const char *cf_kernel_variant_name(cf_kernel_variant v);

/* The shared-memory layout tensor-core plan t describes for shape sh (what the planner sized;
 * the backends build their kernel arguments from it): wgmma or mma.sync, flat or row tiles,
 * weights resident or streamed, output staged or not, patch by TMA or cp.async. */
cf_mma_layout cf_plan_mma_layout(const cf_conv_shape *sh, const cf_tile_plan *t);

#endif
