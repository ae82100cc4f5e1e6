/* The C face of the CUDA kernels: plain C (included by the backend's C files in
 * backends/cuda), implemented by extern "C" launchers in the kernels_cuda .cu files. The
 * host code validates everything (tile plan, int32 ranges, pointers) before calling a
 * launcher; launchers only launch. */
#ifndef CF_KERNELS_CUDA_LAUNCH_H
#define CF_KERNELS_CUDA_LAUNCH_H

#include <stdint.h>
#include <cuda_runtime_api.h>

#include "cf_constants.h"
#include "common/fastdiv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The convolution's extents as every kernel reads them (all int32: the host checks). */
typedef struct cfk_geometry {
  int32_t c, h, w;      /* input channels, height, width */
  int32_t k, r, s;      /* output channels, kernel height, width */
  int32_t p, q;         /* output height, width */
  int32_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
} cfk_geometry;

/* Convolution geometry as the FFMA implicit-GEMM kernel reads it. Per-extent values are
 * int32 (the host checks that every intermediate the kernel forms in int32 fits: extents,
 * H + 2*pad_h, W + 2*pad_w, C*R*S plus a tile, K plus a tile); products that can exceed
 * int32 are precomputed in int64. GEMM view: M = n*p*q pixels (q fastest), N = k, K = crs. */
typedef struct cfk_conv_params {
  int64_t gemm_m;       /* n * p * q */
  int64_t pq;           /* p * q */
  int64_t hw;           /* h * w */
  int64_t chw;          /* c * h * w: one input image */
  int64_t kpq;          /* k * p * q: one output image */
  int64_t tiles_m;      /* ceil(gemm_m / block_m) (== tile plan grid_m) */
  int64_t tiles_total;  /* tiles_m * tiles_n */
  int32_t tiles_n;      /* ceil(k / block_n) (== tile plan grid_n) */
  cfk_geometry g;
  int32_t rs;           /* r * s */
  int32_t crs;          /* c * r * s (GEMM K) */
  float shift;          /* folded leading ADD/SUBs: out = acc + (bias[k] + shift) */
} cfk_conv_params;

/* The op chain for the generic epilogue (op codes are CFK_OP_*); the fixed chains ignore it. */
typedef struct cfk_epilogue_ops {
  int32_t n_ops;
  int32_t kind[CFK_MAX_OPS];
  float value[CFK_MAX_OPS];
} cfk_epilogue_ops;

/* Epilogue chains the kernels are specialised on (after folding the leading ADD/SUBs). */
typedef enum cfk_epi_chain {
  CFK_EPI_NONE = 0,   /* no ops */
  CFK_EPI_MISH,       /* mish */
  CFK_EPI_MISH_MISH,  /* mish, mish */
  CFK_EPI_RELU,       /* relu */
  CFK_EPI_GENERIC,    /* anything else: ops applied from cfk_epilogue_ops */
  CFK_EPI_COUNT
} cfk_epi_chain;

/* A CUtensorMap (cuda.h) as the kernels take it: 128 opaque bytes, 128-byte aligned. Plain C
 * here, so that the backend's C files need not include the driver API. */
#ifdef __cplusplus
#define CFK_ALIGN128 alignas(128)
#else
#define CFK_ALIGN128 _Alignas(128)
#endif
typedef struct cfk_tensor_map {
  CFK_ALIGN128 uint64_t opaque[16];
} cfk_tensor_map;

/* Parameters of the tensor-core row-tile kernel (kernels_cuda/conv_mma.cu): the geometry
 * plus the shared-memory layout from common/mma_layout.h (host-checked to fit int32). */
typedef struct cfk_mma_params {
  int64_t chw;          /* c * h * w: one input image */
  int64_t pq;           /* p * q: one output plane */
  int64_t m_tiles;      /* n * p * q_tiles row tiles */
  int64_t grid_m;       /* persistent blocks along x (<= m_tiles, <= 2^31 - 1) */
  int64_t grid_n;       /* ceil(k / BN) blocks along y (<= 65535) */
  cfk_geometry g;
  int32_t crs;          /* c * r * s */
  int32_t cc;           /* input channels per K chunk */
  int32_t n_chunks;     /* ceil(c / cc) */
  int32_t q_tiles;      /* ceil(q / BM) */
  cf_fastdiv div_q_tiles, div_p, div_r; /* row tile -> (n, p, q0); patch row -> (c, r) */
  int32_t resident;     /* weights stay in shared memory */
  int64_t hw;           /* h * w: one input channel */
  int32_t rows_aligned; /* w % 4 == 0: every input row starts 16-byte aligned relative to row 0 */
  int32_t patch_width, patch_pitch, zero_base, patch_floats;
  int32_t kc, kcp, w_pitch, weight_floats, stage_floats;
  int32_t out_floats;   /* staged output (layout out_floats; the kernel id says staged): rows
                           of CF_MMA_OUT_PITCH(BM) floats; 0: stored from registers */
  int64_t kpq;          /* k * p * q: one output image */
  int32_t smem_bytes;   /* dynamic shared memory per block */
  float shift;          /* folded leading ADD/SUBs */
  /* The patch by TMA (kernel id tma; layout tma_segments > 0): per stage, BM / seg_pixels
   * boxes of patch_map, seg_floats apart, tma_bytes in all. Without TMA seg_pixels = BM and
   * seg_floats = patch_floats (one segment). A box starts tma_lead (0..3) columns before the
   * column its first pixel reads, on a 16-byte boundary (TMA: pixel columns and box starts
   * are multiples of 4 but for the left padding); 0 without TMA. patch_map is filled per
   * launch (the input's address is in it): cfk_patch_map_encode. */
  int32_t seg_pixels, seg_floats, tma_bytes, tma_lead;
  int32_t n_stages;     /* stage buffers in the ring (2 without TMA; flat tiles 1 or 2) */
  int64_t batch;
  /* Flat tiles (kernel id flat): tile t is pixels [(t % plane_tiles) * BM, + BM) of output
   * plane t / plane_tiles; its patch is flat_rows whole input rows (patch_pitch == w) of all
   * channels from the row of its first pixel; the output leaves through out_buffers staging
   * buffers by TMA stores through out_map (cfk_flat_maps_encode). */
  int32_t flat_rows, out_buffers, plane_tiles;
  cf_fastdiv div_plane_tiles, div_q;
  /* The streamed wgmma tiles' range guard (cuda_plan.c): a device word the fp16 kernels set to 1
   * where a tile's sums are not all finite (an input past fp16's range, or an inf or NaN),
   * and on which their TF32 / 3xTF32 reruns (and those reruns' weight layouts) return at once
   * while it is 0. NULL: no guard. */
  uint32_t *range_guard;
  /* WG entry 1 on one fp16 product stores pixel pairs (8-byte stores; lanes g and g ^ 1 trade
   * one value per fragment row) where the output width is even and the output 8-byte aligned
   * (CONVFUSE_STORE_PAIRS=0 turns it off; bench/NOTES.md v56); 0: 4-byte fragment stores. */
  int32_t store_pairs;
  /* WG entry 1 (one product, fp16 or TF32) stores each warp's 16 pixels of a channel as runs
   * aligned to 32-byte sectors (three 4-byte stores per lane, the outer two partial), in place
   * of store_pairs (CONVFUSE_STORE_ALIGNED=0 turns it off; entry 2 measured slower with them:
   * bench/NOTES.md v72). The kernel takes them for any streamed tile where set. */
  int32_t store_aligned;
  /* Flat tiles in lock-step: each of a tile's channel rows leaves as one plain bulk copy from
   * the staging buffer's rows; 0: the swizzled boxes by TMA stores through out_map. The backend
   * sets it by the device's DRAM bandwidth and CONVFUSE_ROW_STORES (cuda_internal.h:
   * cf_cuda_row_stores_choose; bench/NOTES.md v57, v60). */
  int32_t row_stores;
  /* The row-channel tiles (kernel id rowch): row channel v (= r c + channel) -> kernel row */
  cf_fastdiv div_c;
  cfk_tensor_map patch_map;
  cfk_tensor_map out_map;
} cfk_mma_params;

/* Name of a chain ("none", "mish", "mish,mish", "relu", "generic"); "?" if out of range. */
const char *cfk_epi_chain_name(int chain);

/* Queues the fused FFMA convolution kernel of tile-menu entry menu_index (0 ..
 * CFK_FFMA_TILE_COUNT-1, the FFMA_T<i>_* constants) specialised on chain, on stream.
 * bias is NULL iff there is no bias. Launches min(tiles_total, 2^31-1) blocks of
 * (BM/TM)*(BN/TN) threads; each block loops over tiles. Returns the launch status
 * (cudaGetLastError after the launch); cudaErrorInvalidValue for a bad menu_index/chain. */
cudaError_t cfk_conv_ffma_launch(int menu_index, int chain, const cfk_conv_params *params,
                                 const cfk_epilogue_ops *ops, const float *input,
                                 const float *weight, const float *bias, float *output,
                                 cudaStream_t stream);

/* Checks that the kernel for (menu_index, chain) has an image loadable on the current
 * device (cudaFuncGetAttributes); fills its register count and local (spill) bytes if the
 * pointers are not NULL. */
cudaError_t cfk_conv_ffma_check(int menu_index, int chain, int *num_regs, size_t *local_bytes);

/* The driver's cuTensorMapEncodeTiled, looked up through the runtime (no -lcuda); NULL with
 * the lookup's error when the driver has none. */
typedef void *cfk_tensor_map_encoder;
cudaError_t cfk_tensor_map_encoder_get(cfk_tensor_map_encoder *encoder);

/* Fills params->patch_map for input (16-byte aligned): the NCHW input as a 4-D tensor
 * (w, h, c, n innermost first) whose box is one patch segment (patch_pitch columns x r rows x
 * cc channels x 1 image); out-of-range elements read as zero (the padding). */
cudaError_t cfk_patch_map_encode(cfk_tensor_map_encoder encoder, cfk_mma_params *params,
                                 const float *input);

/* Flat tiles: fills params->patch_map (box: patch_pitch columns x flat_rows rows x all c
 * channels x 1 image) and params->out_map (the output as a (p*q, k, n) tensor, p*q % 4 == 0;
 * box: 32 pixels x BN channels x 1 image, 128-byte swizzle) for input and output (both 16-byte
 * aligned). */
cudaError_t cfk_flat_maps_encode(cfk_tensor_map_encoder encoder, cfk_mma_params *params,
                                 int bn, const float *input, float *output);

/* Which tensor-core kernel: tile-menu entry (0..CFK_MMA_TILE_COUNT-1, or of the WG menu
 * when wgmma != 0), 3xTF32 (split != 0) or one TF32 product, the epilogue chain, whether it
 * is the unit-column-stride specialisation (only for stride_w == 1; the general one takes
 * any stride), whether it stages its output tile in shared memory (the plan's
 * output_staged), and whether its k-loop runs on wgmma (sm_90a, kernels_cuda/conv_wgmma.cu). */
typedef struct cfk_mma_kernel_id {
  int32_t menu_index, split, chain, unit_stride, staged, wgmma;
  int32_t tma; /* the patch arrives by TMA (params patch_map): the wgmma tile and mma.sync
                  T0, unit stride only */
  int32_t flat; /* flat tiles (wgmma, tma, staged, unit stride; params out_map) */
  int32_t f16; /* the streamed tiles (WG entries 1, 2) on fp16: one product, or pairs for
                  3xTF32 (params kcp a multiple of 16, the weights laid out as fp16 planes,
                  scaled per channel; params range_guard: see cfk_mma_params); flat tiles:
                  pairs for 3xTF32 (the kernel lays its weights out itself) */
  int32_t rowch; /* WG entry 1 on one fp16 product as the row-channel tile
                    (kernels_cuda/conv_rowch.cuh) with this many stages (2..5); 0: not. Its
                    params: n_chunks of 16 row channels, div_c, q_tiles and m_tiles of 128
                    pixels, smem_bytes cfk_rowch_smem_bytes(rowch, rowch_resident, n_chunks);
                    no TMA */
  int32_t rowch_resident; /* the row-channel tile with the channel tile's weights resident in
                             shared memory: blocks of CF_ROWCH_TEAMS teams (2..4 stages) */
} cfk_mma_kernel_id;

/* The wgmma kernel *id (id->wgmma != 0), or NULL; its threads per block (0: no such entry).
 * Used by the launchers below, which take both kinds of id. */
const void *cfk_wgmma_kernel(const cfk_mma_kernel_id *id);
int cfk_wgmma_threads(const cfk_mma_kernel_id *id);

/* The row-channel tile (id rowch; its tile constants: common/mma_layout.h CF_ROWCH_*): its
 * dynamic shared memory with n_stages stages, resident or not, over n_chunks chunks (0 for a
 * stage count it has no kernel for). */
int64_t cfk_rowch_smem_bytes(int n_stages, int resident, int n_chunks);

/* The streamed wgmma tiles (WG menu entries 1 and 2) read their weights laid out per (channel
 * tile, K chunk) in wgmma's order (the row-channel tile: its own chunks, 3 x 16 x 128 fp16 values
 * each, then the channels' scales): cfk_wg_stream_weight_floats floats (grid_n * n_chunks * BN *
 * kcp, twice that for entry 2's 3xTF32 halves, not for its fp16 pairs' two planes of fp16
 * values, half of it for one fp16 product; fp16: then grid_n * BN channel scales; 0 for an id
 * that is not a streamed kernel), written from the [K][C][R][S] weights by
 * cfk_wg_stream_weights on stream before each launch (cudaErrorInvalidValue for such an id;
 * a TF32 / 3xTF32 id with params range_guard writes nothing while the guard is 0); the launch
 * takes the laid-out copy as its weight. */
int64_t cfk_wg_stream_weight_floats(const cfk_mma_kernel_id *id, const cfk_mma_params *params);
cudaError_t cfk_wg_stream_weights(const cfk_mma_kernel_id *id, const cfk_mma_params *params,
                                  const float *weight, float *laid, cudaStream_t stream);

/* cudaSuccess when the wgmma kernels have an image that loads on the current device (they are
 * built for sm_90a alone); the error otherwise (cudaErrorNoKernelImageForDevice, ...). */
cudaError_t cfk_conv_wgmma_available(void);

/* Allows kernel *id the device's opt-in shared memory and checks that it loads; fills its
 * register count and local (spill) bytes if the pointers are not NULL. Call once per plan. */
cudaError_t cfk_conv_mma_prepare(const cfk_mma_kernel_id *id, int *num_regs,
                                 size_t *local_bytes);

/* Persistent blocks per SM for kernel *id with smem_bytes of dynamic shared memory
 * (cudaOccupancyMaxActiveBlocksPerMultiprocessor). */
cudaError_t cfk_conv_mma_occupancy(const cfk_mma_kernel_id *id, int smem_bytes,
                                   int *blocks_per_sm);

/* Queues tensor-core kernel *id: grid (grid_m, grid_n) persistent blocks, each walking one
 * contiguous run of row tiles, smem_bytes of dynamic shared memory. bias is NULL iff there is no
 * bias. */
cudaError_t cfk_conv_mma_launch(const cfk_mma_kernel_id *id, const cfk_mma_params *params,
                                const cfk_epilogue_ops *ops, const float *input,
                                const float *weight, const float *bias, float *output,
                                cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
