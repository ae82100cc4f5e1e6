/* What a backend tells the planner about its device. Every backend fills all fields. */
#ifndef CF_COMMON_DEVICE_CAPS_H
#define CF_COMMON_DEVICE_CAPS_H

#include <stddef.h>
#include <stdint.h>

typedef enum cf_device_kind { CF_DEVICE_CPU = 0, CF_DEVICE_GPU, CF_DEVICE_OTHER } cf_device_kind;

typedef struct cf_device_caps {
  cf_device_kind kind;
  int compute_units;               /* SMs / compute units / cores */
  size_t shared_mem_per_block;     /* default local/shared memory a work-group may use */
  size_t shared_mem_per_block_max; /* with opt-in (CUDA); == shared_mem_per_block elsewhere */
  int max_threads_per_block;
  int simd_width;                  /* warp / sub-group width; 1 if unknown */
  int arch;                        /* CUDA: major*10+minor (90 = Hopper); 0 otherwise */
  int has_tf32_mma;                /* tensor cores usable for TF32 (mma.sync m16n8k8) */
  int mma_max_threads;             /* largest work-group for the tensor-core kernels when the
                                      backend knows it to be below max_threads_per_block
                                      (OpenCL on NVIDIA: no register cap there); 0: none */
  int mma_split_resident_max_threads; /* below mma_max_threads for the 3xTF32 kernel with
                                      resident weights, where wider groups measured slower
                                      (OpenCL on NVIDIA: 128); 0: none. A preference,
                                      not a limit: CONVFUSE_TILE passes it */
  int mma_tall_warps;              /* one TF32 product with streamed weights on mma.sync row
                                      tiles runs warps of 2*WM x WN (half the warps, twice
                                      the accumulators each) where the tile allows (OpenCL
                                      on NVIDIA with its register cap: measured faster) */
  int mma_weight_swizzle;          /* the mma.sync kernel takes streamed weights unpadded and
                                      swizzled (cf_mma_layout_swizzle_weights) where K per
                                      chunk allows: OpenCL, whose 48 KB the padding crowds */
  int mma_registers_capped;        /* with mma_max_threads: the backend caps the tensor-core
                                      kernel's registers after all (OpenCL on NVIDIA: rebuilt
                                      from its PTX, the route its probe proved), so the
                                      register-hungry 3xTF32 kernel keeps its occupancy */
  int has_wgmma;                   /* sm_90a warpgroup MMA usable */
  int has_tma;                     /* the tensor-core kernels may load their patch by TMA
                                      (bulk tensor copies: CUDA on sm_90+, the driver's
                                      tensor-map encoder found; CONVFUSE_TMA=0 turns it off) */
  int flat_tiles;                  /* the wgmma kernels may run flat tiles (TMA stores of the
                                      output; CUDA sm_90a with TMA; CONVFUSE_FLAT=0 turns it
                                      off) */
  int mma_staged_output;           /* the backend's tensor-core kernel can stage its output
                                      tile in shared memory (whole-sector stores) */
  int wg_f16;                      /* the streamed wgmma tiles may run their products on
                                      fp16 tensor cores (CUDA sm_90a, behind a range guard):
                                      0 never (CONVFUSE_F16=0), 1 one product for
                                      CF_MATH_TF32 only, 2 also hi / lo pairs for
                                      CF_MATH_FP32, on flat tiles too (CUDA's default) */
  int row_channel_stages;          /* WG entry 1's one fp16 product may run as the row-channel
                                      tile (mma_layout.h cf_rowch_shared_bytes; CUDA sm_90a,
                                      kernels_cuda/conv_rowch.cuh) at this many stages (2..5,
                                      CONVFUSE_ROW_CHANNELS); 0 never */
  int row_channel_resident;        /* ... with its channel tile's weights resident in shared
                                      memory (CF_ROWCH_TEAMS teams per block, 2..4
                                      stages) where they fit
                                      (CONVFUSE_ROW_CHANNELS_RESIDENT); 0 streamed */
  size_t l2_bytes;                 /* 0 if unknown */
  uint64_t global_mem_bytes;
  uint64_t max_alloc_bytes;        /* largest single buffer */
  int force_tile;                  /* 0: the planner chooses; i + 1: use entry i of the chosen
                                      variant's tile menu (CONVFUSE_TILE, for tuning) */
  int force_stages;                /* 0: the planner chooses; n >= 2: the TMA kernels run at
                                      most n pipeline stages, however many K chunks a tile
                                      takes (CONVFUSE_STAGES, for tuning) */
  unsigned kernel_variants;        /* bitmask of 1u << cf_kernel_variant usable on this
                                      context. The backend's init may set the subset of its
                                      iface's kernel_variants this device runs (OpenCL: the
                                      tensor-core kernels only after its probe); left 0, it
                                      means all of them. common/ then stores
                                      iface->kernel_variants & that mask here. */
  char tensor_core_note[96];       /* why the tensor-core kernels are off on this context, in
                                      words, when the backend knows ("" otherwise); the
                                      planner quotes it in the plan's reasoning */
} cf_device_caps;

#endif
