#include "planner.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cf_constants.h"
#include "error.h"
#include "mma_layout.h"

const char *cf_kernel_variant_name(cf_kernel_variant v) {
  switch (v) {
  case CF_KERNEL_REFERENCE: return "reference";
  case CF_KERNEL_FFMA_TILED: return "ffma_tiled";
  case CF_KERNEL_MMA_TF32: return "mma_tf32";
  case CF_KERNEL_MMA_3XTF32: return "mma_3xtf32";
  case CF_KERNEL_COUNT: break;
  }
  return "?";
}

const cf_ffma_tile cf_ffma_menu[CFK_FFMA_TILE_COUNT] = {
    {CFK_FFMA_T0_BM, CFK_FFMA_T0_BN, CFK_FFMA_T0_BK, CFK_FFMA_T0_TM, CFK_FFMA_T0_TN},
    {CFK_FFMA_T1_BM, CFK_FFMA_T1_BN, CFK_FFMA_T1_BK, CFK_FFMA_T1_TM, CFK_FFMA_T1_TN},
    {CFK_FFMA_T2_BM, CFK_FFMA_T2_BN, CFK_FFMA_T2_BK, CFK_FFMA_T2_TM, CFK_FFMA_T2_TN},
};

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static size_t ffma_shared_bytes(const cf_ffma_tile *t) {
  /* two stages of an A slice (bk x bm) and a B slice (bk x (bn + 4), rows padded) */
  return 2 * (size_t)(t->bm + t->bn + 4) * (size_t)t->bk * sizeof(float);
}

static int ffma_threads(const cf_ffma_tile *t) { return (t->bm / t->tm) * (t->bn / t->tn); }

static int ffma_fits(const cf_ffma_tile *t, const cf_device_caps *caps) {
  return ffma_threads(t) <= caps->max_threads_per_block &&
         ffma_shared_bytes(t) <= caps->shared_mem_per_block;
}

/* Columns of a block tile that do useful work, as a fraction: small out_channels waste a
 * wide tile. */
static double n_efficiency(int64_t gemm_n, int bn) {
  return (double)gemm_n / (double)(ceil_div(gemm_n, bn) * bn);
}

static cf_status plan_ffma(const cf_conv_shape *sh, const cf_device_caps *caps,
                           cf_tile_plan *plan) {
  /* Preference: the largest tile whose N-width wastes little and that still gives every
   * compute unit at least two blocks; else the best-fitting one that fits the device. */
  int best = -1;
  double best_score = -1.0;
  char rejected[96] = "";
  size_t rej_used = 0;
  /* A forced entry (CONVFUSE_TILE) applies only where this menu has it. */
  int forced = caps->force_tile > 0 && caps->force_tile <= CFK_FFMA_TILE_COUNT;
  for (int i = 0; i < CFK_FFMA_TILE_COUNT; ++i) {
    const cf_ffma_tile *t = &cf_ffma_menu[i];
    if (forced && i != caps->force_tile - 1)
      continue;
    if (!ffma_fits(t, caps)) {
      if (rej_used < sizeof rejected)
        rej_used += (size_t)snprintf(rejected + rej_used, sizeof rejected - rej_used,
                                     " T%d:too-big", i);
      continue;
    }
    int64_t blocks = ceil_div(sh->gemm_m, t->bm) * ceil_div(sh->gemm_n, t->bn);
    double fill = (double)blocks / (2.0 * (caps->compute_units > 0 ? caps->compute_units : 1));
    if (fill > 1.0)
      fill = 1.0;
    /* work per block (reuse) matters once the device is full */
    double reuse = (double)(t->bm * t->bn) / (double)(t->bm + t->bn) / 43.0;
    double score = n_efficiency(sh->gemm_n, t->bn) * fill * (0.5 + 0.5 * reuse);
    if (score > best_score + 1e-9) {
      best_score = score;
      best = i;
    }
  }
  if (best < 0)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "planner: no FFMA tile fits the device (max %d threads, %zu bytes of shared "
                    "memory per block)",
                    caps->max_threads_per_block, caps->shared_mem_per_block);
  const cf_ffma_tile *t = &cf_ffma_menu[best];
  plan->variant = CF_KERNEL_FFMA_TILED;
  plan->menu_index = best;
  plan->block_m = t->bm;
  plan->block_n = t->bn;
  plan->block_k = t->bk;
  plan->thread_m = t->tm;
  plan->thread_n = t->tn;
  plan->threads = ffma_threads(t);
  plan->stages = 2;
  plan->grid_m = ceil_div(sh->gemm_m, t->bm);
  plan->grid_n = ceil_div(sh->gemm_n, t->bn);
  plan->shared_bytes = ffma_shared_bytes(t);
  plan->math_effective = CF_MATH_FP32;
  snprintf(plan->why, sizeof plan->why,
           "FFMA T%d: %lld blocks for %d CUs, %.0f%% of N-columns used%s%s", best,
           (long long)(plan->grid_m * plan->grid_n), caps->compute_units,
           100.0 * n_efficiency(sh->gemm_n, t->bn), rej_used ? "; rejected" : "", rejected);
  return CF_OK;
}

const cf_mma_tile cf_mma_menu[CFK_MMA_TILE_COUNT] = {
    {CFK_MMA_T0_BM, CFK_MMA_T0_BN, CFK_MMA_T0_WM, CFK_MMA_T0_WN, 0, 0},
    {CFK_MMA_T1_BM, CFK_MMA_T1_BN, CFK_MMA_T1_WM, CFK_MMA_T1_WN, 0, 0},
    {CFK_MMA_T2_BM, CFK_MMA_T2_BN, CFK_MMA_T2_WM, CFK_MMA_T2_WN, 0, 0},
    {CFK_MMA_T3_BM, CFK_MMA_T3_BN, CFK_MMA_T3_WM, CFK_MMA_T3_WN, 0, 0},
};

const cf_mma_tile cf_wg_menu[CFK_WG_TILE_COUNT] = {
    {CFK_WG_T0_BM, CFK_WG_T0_BN, 16, CFK_WG_T0_BN, 0, 0},
    {CFK_WG_T1_BM, CFK_WG_T1_BN, 16, CFK_WG_T1_BN, 1, 0},
    {CFK_WG_T2_BM, CFK_WG_T2_BN, 16, CFK_WG_T2_BN, 1, 1},
};

/* wgmma against mma.sync on the same row tile: one instruction per 64 x 64 x 8 instead of
 * eight per warp's 32 x 32 x 8, and no B fragment loads at all. */
#define MMA_WGMMA_FACTOR 2.0

/* Below this fraction of useful tile area (row tiles over Q, channel tiles over K), the
 * tensor-core kernel wastes more than FFMA would lose: plan FFMA instead. */
#define MMA_MIN_UTILISATION 0.4

/* Direct 4-byte fragment stores write the output at a third of the speed of a staged tile's
 * whole-sector 16-byte stores (store probe, bench/NOTES.md v8): unstaged layouts score less. */
#define MMA_UNSTAGED_FACTOR 0.8

/* Input channels per K chunk: about CFK_MMA_CHUNK_K values of (c, r, s), at least one. */
static int64_t mma_chunk_channels(const cf_conv_shape *sh) {
  int64_t rs = sh->r * sh->s;
  int64_t cc = CFK_MMA_CHUNK_K / rs;
  if (cc < 1)
    cc = 1;
  return cc < sh->c ? cc : sh->c;
}

/* Stage buffers of a TMA layout L: with several K chunks per tile as many as fit, up to
 * CFK_MMA_MAX_STAGES: one thread issues a stage as a few bulk copies, so a deeper ring costs only
 * shared memory and hides more of the copies' latency (mish-mish tf32 on the H200: 3.67 -> 3.37-
 * 3.48 ms with 3 stages). With one chunk per tile a stage is a whole tile ahead already, and 4
 * stages measured ~1% slower than 2 (sub-sub-mish, both maths): 2 there. CONVFUSE_STAGES caps
 * it instead, for A/B runs. bench/NOTES.md, v17. */
static int max_stages(const cf_mma_layout *L, const cf_device_caps *caps) {
  if (caps->force_stages >= 2)
    return caps->force_stages;
  return L->n_chunks > 1 ? CFK_MMA_MAX_STAGES : 2;
}

/* Layout L (resident weights, patch by cp.async) with the patch by TMA instead, in the most
 * stages that fit; .bytes over the limit when none does. */
static cf_mma_layout tma_layout_fitting(cf_mma_layout L, const cf_mma_tile *t,
                                        const cf_conv_shape *sh, int64_t cc,
                                        const cf_device_caps *caps, int64_t tma_seg) {
  cf_mma_layout T = L;
  for (int n = max_stages(&L, caps); n >= 2; --n) {
    T = cf_layout_with_tma(L, t->bm, cc, sh->r, sh->s, sh->stride_w, sh->dil_w, tma_seg, n);
    if (T.bytes <= (int64_t)caps->shared_mem_per_block_max)
      return T;
  }
  return T;
}

/* The first layout of tile t that fits the device, in order of preference: weights resident
 * and output staged, weights resident, output staged, neither. The output is staged only
 * where the backend supports it and K is one chunk: there the store stream is the time; with
 * several chunks the staging rows cost occupancy that the mma needs (mish-mish tf32 on the
 * H200: T1 staged, one block per SM, 10.05 ms vs T0 from registers 6.52 ms, NOTES v8).
 * With resident weights the patch goes by TMA where tma_seg > 0 (its segments take a little
 * more room than one cp.async patch). Returns the last one tried when none fits. */
static cf_mma_layout mma_layout_fitting(const cf_mma_tile *t, const cf_conv_shape *sh,
                                        int64_t cc, const cf_device_caps *caps,
                                        int64_t tma_seg) {
  static const int resident[4] = {1, 1, 0, 0}, staged[4] = {1, 0, 1, 0};
  const int may_stage = caps->mma_staged_output && cc >= sh->c;
  cf_mma_layout L = {0};
  for (int i = 0; i < 4; ++i) {
    if (staged[i] && !may_stage)
      continue;
    L = cf_mma_layout_make(t->bm, t->bn, sh->c, cc, sh->r, sh->s, sh->stride_w, sh->dil_w,
                           resident[i], staged[i]);
    if (resident[i] && tma_seg > 0) {
      cf_mma_layout T = tma_layout_fitting(L, t, sh, cc, caps, tma_seg);
      if (T.bytes <= (int64_t)caps->shared_mem_per_block_max)
        return T;
    }
    if (L.bytes <= (int64_t)caps->shared_mem_per_block_max)
      return L;
    /* unpadded weights only where the padded ones do not fit: on tiles that fit either way
     * the swizzle measured 1-2% slower (OpenCL, H200, T1; bench/NOTES.md v47) */
    if (!resident[i] && caps->mma_weight_swizzle && cf_mma_layout_can_swizzle_weights(&L)) {
      L = cf_mma_layout_swizzle_weights(L, t->bn);
      if (L.bytes <= (int64_t)caps->shared_mem_per_block_max)
        return L;
    }
  }
  return L;
}

/* Pixels per TMA patch segment for tile t, or 0 where the patch goes by cp.async: the backend
 * has TMA, and the input is a tensor TMA can address with one box per segment (rows 16-byte
 * multiples, kernel rows adjacent, unit column stride: the instantiated kernels) within its
 * limits (extents <= 2^32, strides < 2^40 bytes, at most 256 kernel rows in a box; a chunk's
 * channels are fewer than MMA_CHUNK_K). The TMA kernels exist for the wgmma tile and mma.sync's
 * T0 (the tile the multi-chunk workloads run on when wgmma cannot). */
static int64_t tma_segment(const cf_mma_tile *t, const cf_conv_shape *sh,
                           const cf_device_caps *caps) {
  if (!caps->has_tma || sh->stride_w != 1 || sh->dil_h != 1 || sh->w % 4 != 0 ||
      sh->r > 256 || sh->n > ((int64_t)1 << 32) ||
      sh->c * sh->h * sh->w * 4 >= ((int64_t)1 << 40))
    return 0;
  return cf_tma_seg_pixels(t->bm, sh->s, sh->stride_w, sh->dil_w);
}

/* Flat tiles (cf_flat_layout_make) for wgmma tile t: where the backend has them, K is one chunk
 * of every channel, and both tensors are ones TMA can address with the boxes the kernel uses:
 * the input as (w, h, c, n) with a box of whole rows (w a multiple of 4 up to 256, no column
 * padding, unit column stride, at most 256 channels and box rows), the output as (p*q, k, n)
 * (p*q a multiple of 4); extents and strides within TMA's limits. */
static int flat_eligible(const cf_mma_tile *t, const cf_conv_shape *sh, int64_t cc,
                         const cf_device_caps *caps) {
  const int64_t big = (int64_t)1 << 40;
  const int64_t pq = sh->p * sh->q;
  return caps->flat_tiles && caps->has_tma && caps->mma_staged_output && cc >= sh->c &&
         sh->stride_w == 1 && sh->pad_w == 0 && sh->w % 4 == 0 && sh->w <= 256 && sh->c <= 256 &&
         pq % 4 == 0 && pq <= INT32_MAX / 2 && sh->n <= INT32_MAX &&
         cf_flat_in_rows(t->bm, sh->q, sh->r, sh->stride_h, sh->dil_h) <= 256 &&
         sh->c * sh->h * sh->w * 4 < big && sh->k * pq * 4 < big &&
         sh->n * ((pq + t->bm - 1) / t->bm) <= INT32_MAX;
}

/* The flat-tile layout that fits, in order of preference: two patch stages (the warpgroups
 * drift up to a stage apart, one's epilogue overlapping another's tensor-core work), then two
 * staging buffers (a tile's TMA stores drain while the next one computes); .bytes over the
 * limit when none does. */
static cf_mma_layout flat_layout_fitting(const cf_mma_tile *t, const cf_conv_shape *sh,
                                         int split, int f16, const cf_device_caps *caps) {
  static const int64_t out_buffers[4] = {2, 1, 2, 1}, stages[4] = {2, 2, 1, 1};
  cf_mma_layout L = {0};
  for (int i = 0; i < 4; ++i) {
    L = cf_flat_layout_make(t->bm, t->bn, sh->c, sh->r, sh->s, sh->w, sh->q, sh->stride_h,
                            sh->dil_h, split, f16, stages[i], out_buffers[i]);
    if (L.bytes <= (int64_t)caps->shared_mem_per_block_max)
      return L;
  }
  return L;
}

/* A streamed wgmma tile's layout (cf_wg_stream_layout_make) in as many stages as fit: only for
 * the tile's own math (256 x 128's 64 accumulators leave no room for 3xTF32's chunk
 * accumulator: 3xTF32 streams 256 x 64), the patch by TMA and several K chunks (with one chunk
 * per tile the resident tiles have nothing to stream past). .bytes over the limit when it does
 * not apply or nothing fits. */
static cf_mma_layout wg_stream_layout_fitting(const cf_mma_tile *t, const cf_conv_shape *sh,
                                              int64_t cc, int split, int f16,
                                              const cf_device_caps *caps) {
  cf_mma_layout L = {0};
  L.bytes = INT64_MAX;
  const int64_t seg = tma_segment(t, sh, caps);
  if (split != t->split || seg == 0 || (sh->c + cc - 1) / cc < 2)
    return L;
  L = cf_wg_stream_layout_make(t->bm, t->bn, sh->c, cc, sh->r, sh->s, sh->dil_w, split, f16, seg,
                               2);
  for (int n = max_stages(&L, caps); n >= 2; --n) {
    L = cf_wg_stream_layout_make(t->bm, t->bn, sh->c, cc, sh->r, sh->s, sh->dil_w, split, f16,
                                 seg, n);
    if (L.bytes <= (int64_t)caps->shared_mem_per_block_max)
      return L;
  }
  return L;
}

/* The streamed tile's layout on fp16 where the caps allow it for this math (wg_f16: 1 one
 * product, 2 pairs too) and the TF32 / 3xTF32 rerun behind its range guard fits too (the
 * plan's rerun_stages, rerun_shared_bytes); else on TF32 / 3xTF32. */
static cf_mma_layout wg_stream_layout_chosen(const cf_mma_tile *t, const cf_conv_shape *sh,
                                             int64_t cc, int split, const cf_device_caps *caps) {
  const int64_t limit = (int64_t)caps->shared_mem_per_block_max;
  const cf_mma_layout plain = wg_stream_layout_fitting(t, sh, cc, split, 0, caps);
  if (caps->wg_f16 < (split ? 2 : 1) || plain.bytes > limit)
    return plain;
  const cf_mma_layout L = wg_stream_layout_fitting(t, sh, cc, split, 1, caps);
  return L.bytes <= limit ? L : plain;
}

/* The wgmma kernels' layout for tile t: flat tiles where they can be (bench/NOTES.md, v19);
 * else row tiles with the weights always resident, the output staged where the backend can and
 * it fits (with any number of K chunks: wgmma leaves the registers and occupancy that staging
 * costs the mma.sync kernel), the patch by TMA where it can be (its segments take a little more
 * room than one cp.async patch). .bytes over the limit: nothing fits. */
static cf_mma_layout wg_layout_fitting(const cf_mma_tile *t, const cf_conv_shape *sh, int64_t cc,
                                       int split, const cf_device_caps *caps) {
  if (t->streamed)
    return wg_stream_layout_chosen(t, sh, cc, split, caps);
  cf_mma_layout L = {0};
  if (flat_eligible(t, sh, cc, caps)) {
    L = flat_layout_fitting(t, sh, split, 0, caps);
    /* 3xTF32 as fp16 pairs where the caps allow them (the 3xTF32 layout, the rerun behind
     * the range guard, fits): sub-sub-mish's weights take 20 KB of shared memory against 36,
     * so that two staging buffers fit beside two patch stages as for TF32, and its k-loop is
     * 15 fp16 wgmmas against 27 TF32 ones (bench/NOTES.md v55) */
    if (split && caps->wg_f16 >= 2 && L.bytes <= (int64_t)caps->shared_mem_per_block_max) {
      const cf_mma_layout P = flat_layout_fitting(t, sh, split, 1, caps);
      if (P.bytes <= (int64_t)caps->shared_mem_per_block_max)
        L = P;
    }
    if (L.bytes <= (int64_t)caps->shared_mem_per_block_max)
      return L;
  }
  const int64_t seg = tma_segment(t, sh, caps);
  for (int staged = caps->mma_staged_output ? 1 : 0; staged >= 0; --staged) {
    L = cf_wg_layout_make(t->bm, t->bn, sh->c, cc, sh->r, sh->s, sh->stride_w, sh->dil_w, split,
                          staged, 0, 2);
    if (seg > 0) {
      cf_mma_layout T = tma_layout_fitting(L, t, sh, cc, caps, seg);
      if (T.bytes <= (int64_t)caps->shared_mem_per_block_max)
        return T;
    }
    if (L.bytes <= (int64_t)caps->shared_mem_per_block_max)
      return L;
  }
  return L;
}

/* Tall warps (caps mma_tall_warps: 2*WM x WN, half the warps, each A fragment load feeding
 * twice the mma work) for one TF32 product with streamed weights on an mma.sync tile whose
 * BM allows them. The work-group is then half the menu entry's width: the limits apply to that. */
static int mma_tall(const cf_mma_tile *t, int wg, cf_kernel_variant variant,
                    const cf_mma_layout *L, const cf_device_caps *caps) {
  return caps->mma_tall_warps && !wg && variant == CF_KERNEL_MMA_TF32 && !L->resident &&
         t->bm % (2 * t->wm) == 0;
}

/* WG entry 1's one fp16 product as the row-channel tile (mma_layout.h) where the backend has
 * it (caps row_channel_stages) and the shape is its kind: unit strides and dilations, 3 kernel
 * columns, input width and left padding multiples of 4 (its 16-byte patch copies), its tile
 * indices and one image's offsets far below 2^31. Its weights resident (CF_ROWCH_TEAMS teams
 * per block; kernels at 2..4 stages) where the caps ask and shared memory holds them, else
 * streamed. Measured on an H100, mish-mish tf32: 2.75 ms on entry 1's tile, 2.61-2.67 on this
 * one streamed, 2.18-2.23 resident (bench/NOTES.md v77, v79, v83). */
static void plan_row_channels(const cf_conv_shape *sh, const cf_device_caps *caps,
                              cf_tile_plan *plan) {
  const int64_t stages = caps->row_channel_stages;
  const int64_t limit = (int64_t)caps->shared_mem_per_block_max;
  if (stages < 2 || stages > 5 || !plan->wgmma || plan->menu_index != 1 || !plan->f16 ||
      plan->variant != CF_KERNEL_MMA_TF32 || sh->stride_h != 1 || sh->stride_w != 1 ||
      sh->dil_h != 1 || sh->dil_w != 1 || sh->s != CF_ROWCH_S || sh->w % 4 != 0 ||
      sh->pad_w % 4 != 0 || sh->c * sh->h * sh->w > INT32_MAX || sh->c * sh->r > INT32_MAX / 2)
    return;
  const int64_t m_tiles = sh->n * sh->p * ceil_div(sh->q, CF_ROWCH_BM);
  const int64_t n_chunks = ceil_div(sh->c * sh->r, CF_ROWCH_CHUNK);
  const int resident = caps->row_channel_resident && stages <= 4 &&
                       CF_ROWCH_THREADS * CF_ROWCH_TEAMS <= caps->max_threads_per_block &&
                       cf_rowch_shared_bytes(stages, 1, n_chunks) <= limit;
  const int64_t bytes = cf_rowch_shared_bytes(stages, resident, n_chunks);
  if (m_tiles > INT32_MAX / 2 || bytes > limit)
    return;
  plan->row_channels = 1 + resident;
  plan->row_channel_stages = (int)stages;
  plan->row_channel_threads = CF_ROWCH_THREADS * (resident ? CF_ROWCH_TEAMS : 1);
  plan->row_channel_tiles = m_tiles;
  plan->row_channel_shared_bytes = (size_t)bytes;
  snprintf(plan->why, sizeof plan->why,
           "tensor cores (wgmma, one fp16 product): WG1's job on the row-channel tile (%dx%d "
           "per %d threads, %d per block, weights %s), %lld tiles, K in chunks of %d (channel, "
           "kernel row) pairs, %d stages, patch by cp.async; TF32 rerun on WG1",
           CF_ROWCH_BM, CF_ROWCH_BN, CF_ROWCH_THREADS, resident ? CF_ROWCH_TEAMS : 1,
           resident ? "resident" : "streamed", (long long)(m_tiles * plan->grid_n),
           CF_ROWCH_CHUNK, (int)stages);
}

/* Plans the row-tile tensor-core kernel; CF_ERR_UNSUPPORTED (no message kept) when no tile
 * is worth it, with the reason in `why` for the FFMA plan to quote. */
static cf_status plan_mma(const cf_conv_shape *sh, const cf_device_caps *caps,
                          cf_kernel_variant variant, cf_tile_plan *plan, char *why,
                          size_t why_len) {
  int best = -1;
  double best_score = -1.0, best_util = 0.0;
  const int64_t cc0 = mma_chunk_channels(sh);
  int64_t best_cc = cc0;
  cf_mma_layout best_layout = {0};
  snprintf(why, why_len, "no tensor-core tile fits the device");
  /* The layout arithmetic is int64 but not unbounded: keep absurd shapes on FFMA. */
  if (sh->gemm_k > (1 << 20) || sh->stride_w > 4096 || sh->dil_w * sh->s > 65536) {
    snprintf(why, why_len, "shape outside the tensor-core kernel's index ranges");
    return CF_ERR_UNSUPPORTED;
  }
  /* Candidates: the mma.sync menu, then (sm_90a) the wgmma menu; CONVFUSE_TILE numbers them
   * in that order. */
  const int n_mma = CFK_MMA_TILE_COUNT, n_wg = caps->has_wgmma ? CFK_WG_TILE_COUNT : 0;
  const int split = variant == CF_KERNEL_MMA_3XTF32;
  int forced = caps->force_tile > 0 && caps->force_tile <= n_mma + n_wg;
  int best_wg = 0, best_warp_m = 0;
  for (int i = 0; i < n_mma + n_wg; ++i) {
    const int wg = i >= n_mma;
    const cf_mma_tile *t = wg ? &cf_wg_menu[i - n_mma] : &cf_mma_menu[i];
    if (forced && i != caps->force_tile - 1)
      continue;
    /* Weights resident in shared memory when they fit, else streamed per K chunk; the output
     * staged in shared memory where the backend can and it fits beside them; where nothing
     * fits (OpenCL's 48 KB per work-group), chunks of half as many channels, down to one.
     * Where the device has room (CUDA), every tile keeps the default chunk. */
    int64_t cc = cc0;
    const int64_t mma_tma_seg = !wg && i == 0 ? tma_segment(t, sh, caps) : 0;
    cf_mma_layout L = wg ? wg_layout_fitting(t, sh, cc, split, caps)
                         : mma_layout_fitting(t, sh, cc, caps, mma_tma_seg);
    while (!wg && L.bytes > (int64_t)caps->shared_mem_per_block_max && cc > 1) {
      cc = (cc + 1) / 2;
      L = mma_layout_fitting(t, sh, cc, caps, mma_tma_seg);
    }
    const int flat = L.flat_rows > 0;
    const int warp_m = mma_tall(t, wg, variant, &L, caps) ? 2 * t->wm : t->wm;
    const int threads = 32 * (t->bm / warp_m) * (t->bn / t->wn);
    int64_t q_tiles = ceil_div(sh->q, t->bm);
    /* row tiles, or flat tiles of whole planes: <= n*p*q, fits int64 */
    int64_t m_tiles = flat ? sh->n * ceil_div(sh->p * sh->q, t->bm) : sh->n * sh->p * q_tiles;
    int64_t grid_n = ceil_div(sh->k, t->bn);
    /* the backend's limits on work-group width (OpenCL: measured, see its caps); the
     * split-resident one is a measured preference, not a limit, so a forced tile passes it */
    const int split_resident_cap =
        split && L.resident && !forced ? caps->mma_split_resident_max_threads : 0;
    const int max_threads = split_resident_cap > 0 ? split_resident_cap : caps->mma_max_threads;
    if (threads > caps->max_threads_per_block || (max_threads > 0 && threads > max_threads) ||
        L.bytes > (int64_t)caps->shared_mem_per_block_max || grid_n > 65535 ||
        m_tiles > INT32_MAX)
      continue;
    double util = (flat ? (double)(sh->p * sh->q) / (double)(ceil_div(sh->p * sh->q, t->bm) *
                                                              t->bm)
                        : (double)sh->q / (double)(q_tiles * t->bm)) *
                  n_efficiency(sh->k, t->bn);
    int64_t blocks = m_tiles * grid_n;
    double fill = (double)blocks / (4.0 * (caps->compute_units > 0 ? caps->compute_units : 1));
    if (fill > 1.0)
      fill = 1.0;
    /* Bigger tiles reuse more; resident weights save the weight stream. A single K chunk
     * stored from registers favoured two 256-thread blocks per SM over one 512-thread block
     * (sub-sub-mish, H200: 2.77 vs 2.98 ms, NOTES v3); with the output staged the bigger
     * tile wins (1.49 vs 1.57 ms tf32, 2.33 vs 2.40 fp32, NOTES v8). */
    double reuse = (double)(t->bm * t->bn) / (double)(t->bm + t->bn) / 64.0;
    if (L.n_chunks == 1 && threads > 256 && L.out_floats == 0)
      reuse *= 0.8;
    /* K padded to a multiple of 8 is tensor work wasted (smaller chunks pad more). Streamed
     * weights cost the cp.async kernels a copy per warp per chunk; the streamed wgmma tile's
     * ride in one bulk copy on the patch's barrier (mish-mish tf32, H200: 256 x 128 streamed
     * 2.6 ms vs 256 x 64 resident 3.4, bench/NOTES.md v25). */
    const double weight_factor = L.resident || (wg && t->streamed) ? 1.0 : 0.7;
    /* fp16 products run at twice TF32's rate: their K padded to 16 costs half */
    double score = util * fill * reuse * weight_factor *
                   (L.out_floats > 0 ? 1.0 : MMA_UNSTAGED_FACTOR) * (double)L.kc / (double)L.kcp *
                   (L.f16 ? 2.0 : 1.0) * (wg ? MMA_WGMMA_FACTOR : 1.0);
    if (score > best_score + 1e-9) {
      best_score = score;
      best = wg ? i - n_mma : i;
      best_wg = wg;
      best_util = util;
      best_layout = L;
      best_cc = cc;
      best_warp_m = warp_m;
    }
  }
  if (best < 0) {
    if (forced) /* say so: the forced entry, not the device, is what rules the tiles out */
      snprintf(why, why_len, "the forced tile (CONVFUSE_TILE=%d, %s%d) does not apply to this "
               "shape or device", caps->force_tile, caps->force_tile > n_mma ? "WG" : "T",
               caps->force_tile > n_mma ? caps->force_tile - 1 - n_mma : caps->force_tile - 1);
    return CF_ERR_UNSUPPORTED;
  }
  if (best_util < MMA_MIN_UTILISATION && !forced) {
    snprintf(why, why_len, "tensor-core row tiles would use only %.0f%% of their area",
             100.0 * best_util);
    return CF_ERR_UNSUPPORTED;
  }
  const cf_mma_tile *t = best_wg ? &cf_wg_menu[best] : &cf_mma_menu[best];
  plan->variant = variant;
  plan->menu_index = best;
  plan->wgmma = best_wg;
  plan->block_m = t->bm;
  plan->block_n = t->bn;
  plan->block_k = (int)best_layout.kcp;
  plan->warp_m = best_warp_m;
  plan->warp_n = t->wn;
  plan->chunk_channels = (int)best_cc;
  plan->threads = 32 * (t->bm / plan->warp_m) * (t->bn / t->wn);
  plan->stages = (int)best_layout.n_stages;
  plan->flat_tiles = best_layout.flat_rows > 0;
  /* row or flat tiles; blocks persist */
  plan->grid_m = plan->flat_tiles ? sh->n * ceil_div(sh->p * sh->q, t->bm)
                                  : sh->n * sh->p * ceil_div(sh->q, t->bm);
  plan->grid_n = ceil_div(sh->k, t->bn);
  plan->shared_bytes = (size_t)best_layout.bytes;
  plan->weights_resident = best_layout.resident;
  plan->weights_swizzled = best_layout.w_swizzled;
  plan->output_staged = best_layout.out_floats > 0;
  plan->output_buffers = (int)best_layout.out_buffers;
  plan->patch_tma_segment = (int)(best_layout.tma_segments > 0 ? best_layout.seg_pixels : 0);
  plan->f16 = best_layout.f16;
  plan->rerun_stages = 0;
  plan->rerun_shared_bytes = 0;
  plan->rerun_output_buffers = 0;
  if (plan->f16) { /* the rerun behind the range guard (wg_layout_fitting: it fits) */
    const cf_mma_layout R =
        plan->flat_tiles
            ? flat_layout_fitting(t, sh, variant == CF_KERNEL_MMA_3XTF32, 0, caps)
            : wg_stream_layout_fitting(t, sh, best_cc, variant == CF_KERNEL_MMA_3XTF32, 0, caps);
    plan->rerun_stages = (int)R.n_stages;
    plan->rerun_shared_bytes = (size_t)R.bytes;
    plan->rerun_output_buffers = (int)R.out_buffers;
  }
  plan->math_effective = variant == CF_KERNEL_MMA_TF32 ? CF_MATH_TF32 : CF_MATH_FP32;
  snprintf(plan->why, sizeof plan->why,
           "tensor cores (%s, %s): %s%d%s tiles use %.0f%% of their area, %lld tiles for %d "
           "CUs, K in chunks of %lld channels, weights %s, output %s, patch by %s",
           best_wg ? "wgmma" : "mma.sync",
           variant == CF_KERNEL_MMA_TF32 ? (plan->f16 ? "one fp16 product" : "one TF32 product")
           : plan->f16                   ? "fp16 pairs"
                                         : "3xTF32 split, fp32-accurate",
           best_wg ? "WG" : "T", best, plan->flat_tiles ? " flat" : " row", 100.0 * best_util,
           (long long)(plan->grid_m * plan->grid_n), caps->compute_units, (long long)best_cc,
           best_layout.resident ? "resident in shared memory"
           : best_wg            ? "streamed per chunk by bulk copy"
           : best_layout.w_swizzled ? "streamed per chunk, unpadded"
                                    : "streamed per chunk",
           plan->flat_tiles ? "staged and stored by TMA"
           : best_layout.out_floats > 0 ? "staged in shared memory"
                                        : "stored from registers",
           best_layout.tma_segments > 0 ? "TMA" : "cp.async");
  plan_row_channels(sh, caps, plan);
  return CF_OK;
}

cf_status cf_plan_tiles(const cf_conv_shape *shape, const cf_epilogue *epi, cf_math math,
                        const cf_device_caps *caps, cf_tile_plan *plan) {
  (void)epi; /* every variant runs every chain; kept for chain-dependent choices */
  memset(plan, 0, sizeof *plan);
  plan->menu_index = -1;
  if (math != CF_MATH_FP32 && math != CF_MATH_TF32)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "planner: unknown math mode %d", (int)math);
  cf_kernel_variant mma = math == CF_MATH_TF32 ? CF_KERNEL_MMA_TF32 : CF_KERNEL_MMA_3XTF32;
  char mma_why[96] = "";
  if (!(caps->kernel_variants & (1u << mma)) || !caps->has_tf32_mma) {
    if (caps->tensor_core_note[0]) /* the backend's own reason (e.g. its probe's outcome) */
      snprintf(mma_why, sizeof mma_why, "%.*s", (int)sizeof caps->tensor_core_note,
               caps->tensor_core_note);
    else if (!(caps->kernel_variants & (1u << mma)))
      snprintf(mma_why, sizeof mma_why, "backend has no %s kernel",
               cf_kernel_variant_name(mma));
    else
      snprintf(mma_why, sizeof mma_why, "device has no TF32 tensor cores");
  }
  if (!mma_why[0] && plan_mma(shape, caps, mma, plan, mma_why, sizeof mma_why) == CF_OK) {
    /* Three products per k-step on small work-groups (a backend that caps the tensor-core
     * work-group for want of register control) with weights re-streamed every chunk lose to
     * FFMA: H200, NVIDIA OpenCL, mish-mish fp32 28.1 ms vs 25.0 (bench/RESULTS.md). With the
     * registers capped (three groups per SM) they win: 20.9 vs 25.0 (bench/NOTES.md v39). */
    int ffma_wins = mma == CF_KERNEL_MMA_3XTF32 && !plan->weights_resident &&
                    caps->mma_max_threads > 0 && !caps->mma_registers_capped &&
                    (caps->kernel_variants & (1u << CF_KERNEL_FFMA_TILED));
    if (!ffma_wins)
      return CF_OK;
    snprintf(mma_why, sizeof mma_why,
             "3xTF32 with streamed weights in %d-thread groups is slower than FFMA",
             plan->threads);
    memset(plan, 0, sizeof *plan);
    plan->menu_index = -1;
  }
  if (caps->kernel_variants & (1u << CF_KERNEL_FFMA_TILED)) {
    CF_CHECK(plan_ffma(shape, caps, plan));
    size_t used = strlen(plan->why);
    snprintf(plan->why + used, sizeof plan->why - used, "; not %s: %s%s",
             cf_kernel_variant_name(mma), mma_why,
             math == CF_MATH_TF32 ? "; tf32 requested, runs fp32" : "");
    return CF_OK;
  }
  if (caps->kernel_variants & (1u << CF_KERNEL_REFERENCE)) {
    plan->variant = CF_KERNEL_REFERENCE;
    plan->threads = 1;
    plan->grid_m = 1;
    plan->grid_n = 1;
    plan->math_effective = CF_MATH_FP32;
    snprintf(plan->why, sizeof plan->why, "CPU backend: the double-precision reference loops%s",
             math == CF_MATH_TF32 ? "; tf32 requested: runs fp32" : "");
    return CF_OK;
  }
  return cf_error(CF_ERR_INTERNAL, "planner: backend reports no kernel variants");
}

cf_mma_layout cf_plan_mma_layout(const cf_conv_shape *sh, const cf_tile_plan *t) {
  const int64_t seg = t->patch_tma_segment;
  if (t->flat_tiles)
    return cf_flat_layout_make(t->block_m, t->block_n, sh->c, sh->r, sh->s, sh->w, sh->q,
                               sh->stride_h, sh->dil_h, t->variant == CF_KERNEL_MMA_3XTF32,
                               t->f16, t->stages, t->output_buffers);
  if (t->wgmma && !t->weights_resident)
    return cf_wg_stream_layout_make(t->block_m, t->block_n, sh->c, t->chunk_channels, sh->r,
                                    sh->s, sh->dil_w, t->variant == CF_KERNEL_MMA_3XTF32,
                                    t->f16, seg, t->stages);
  if (t->wgmma)
    return cf_wg_layout_make(t->block_m, t->block_n, sh->c, t->chunk_channels, sh->r, sh->s,
                             sh->stride_w, sh->dil_w, t->variant == CF_KERNEL_MMA_3XTF32,
                             t->output_staged, seg, t->stages);
  cf_mma_layout L = cf_mma_layout_make(t->block_m, t->block_n, sh->c, t->chunk_channels, sh->r,
                                       sh->s, sh->stride_w, sh->dil_w, t->weights_resident,
                                       t->output_staged);
  if (t->weights_swizzled && seg == 0 && cf_mma_layout_can_swizzle_weights(&L))
    L = cf_mma_layout_swizzle_weights(L, t->block_n);
  return seg > 0 ? cf_layout_with_tma(L, t->block_m, t->chunk_channels, sh->r, sh->s,
                                      sh->stride_w, sh->dil_w, seg, t->stages)
                 : L;
}
