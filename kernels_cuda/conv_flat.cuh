#ifndef CF_KERNELS_CUDA_CONV_FLAT_CUH
#define CF_KERNELS_CUDA_CONV_FLAT_CUH
// Fused conv2d + bias + epilogue on wgmma with flat tiles (sm_90a; instantiated by
// conv_wgmma.cu for the WG tile, one K chunk of all channels, unit column stride, no column
// padding: the planner's rules). A flat tile is BM consecutive pixels of one output plane
// (crossing row ends) times BN channels. Why: a row tile's output rows are q floats, rarely a
// multiple of 16 bytes, so only element-wise or carried stores can write them; a flat tile of a
// plane whose p*q is a multiple of 4 is a box of the output seen as a (p*q, k, n) tensor, and
// leaves by TMA stores that one thread issues while the block goes on (bench/NOTES.md, v19).
//
// Per tile: one TMA box of flat_rows whole input rows (all channels) from the row of the tile's
// first pixel lands on the stage's mbarrier; each lane gathers its two pixels' A fragments
// (g and g + 8, maybe in different output rows: two offsets) and the warpgroups run the k-loop
// of the row-tile kernel (wg_chunk); each warp counts itself out of the stage, and the last of
// the block's warps refills it; the chain in registers; fragment stores into the warpgroup's part
// of a staging buffer laid out as TMA's 128-byte swizzle (boxes of 32 pixels x BN channels;
// conflict-free); fence to the async proxy; one thread per warpgroup stores its boxes (clipped to
// the plane and to K). In lock-step (below) the staging buffer is instead BN plain rows of 260
// floats (conflict-free too) and BN threads store one channel row each: a 1 KB run of the output
// plane by one plain bulk copy (where the backend chooses it: sub-sub-mish tf32 -8% on the
// H100 against the boxes, +11% on the H200; bench/NOTES.md v57, v60). 3xTF32 has no block barrier after the set-up: a warpgroup waits only for
// its stage's bytes and (a warpgroup barrier) its own staging boxes, so the four drift apart and
// one's epilogue overlaps another's tensor-core work (36% of its time on sub-sub-mish). TF32
// (tensor cores 17% busy) measured 26% slower that way than in lock-step, where a block barrier
// after the k-loop frees the stage and one after the staging stores lets thread 0 store the
// whole tile (bench/NOTES.md, v20). 3xTF32's accuracy can also come from fp16 pairs (T::F16:
// wg_pair_step, 5 k-steps of 16 at K 72 -> 80, weights scaled per channel and split once per
// block, a range guard with a 3xTF32 rerun as on the streamed tile): 20 KB of weights instead
// of 36 leave room for two staging buffers, and with them the block runs in lock-step as TF32
// does (T::LOCKSTEP; H100, sub-sub-mish: 1.09 ms, drifting 1.36, 3xTF32 1.29; NOTES v55).
#include "kernels_cuda/conv_rowtile.cuh"

namespace {

// Byte offset of (channel ch, tile pixel m) in a staging buffer: box m / 32 of bn rows x 32
// floats, where TMA's 128-byte swizzle puts the 16-byte group j of row ch at group j ^ (ch % 8).
__device__ __forceinline__ int flat_stage_offset(int ch, int m, int bn) {
  return ((m >> 5) * bn * 32 + ch * 32 + ((((m & 31) >> 2) ^ (ch & 7)) << 2) + (m & 3)) * 4;
}

// The same for row stores: row ch of PITCH floats, pixel m at column m. A fragment store's
// lanes (pixel g, channel 2t + j) then fall in banks (2 PITCH t + g + c) % 32: with PITCH % 16 ==
// 4, 8t + g + c, all 32 distinct.
template <int PITCH>
__device__ __forceinline__ int flat_row_stage_offset(int ch, int m) {
  static_assert(PITCH % 16 == 4, "conflict-free fragment stores");
  return (ch * PITCH + m) * 4;
}

// Where flat tile `tile` lies: image n, first pixel l0 of the plane, output row p0 of l0.
struct FlatTile {
  int n, l0, p0;
};

__device__ __forceinline__ FlatTile flat_tile(const cfk_mma_params &prm, int tile, int bm) {
  FlatTile f;
  f.n = fast_div(tile, prm.div_plane_tiles);
  f.l0 = (tile - f.n * prm.plane_tiles) * bm;
  f.p0 = fast_div(f.l0, prm.div_q);
  return f;
}

// Byte offset into the patch of pixel l of the plane (clamped into it: pixels past the plane's
// end are computed from its last one and never stored) for kernel tap (0, 0).
__device__ __forceinline__ int flat_pixel_offset(const cfk_mma_params &prm, const FlatTile &f,
                                                 int l) {
  l = min(l, (int)prm.pq - 1);
  const int p = fast_div(l, prm.div_q);
  return ((p - f.p0) * prm.g.stride_h * prm.patch_pitch + l - p * prm.g.q) * 4;
}

// Synchronises the 128 threads of warpgroup wg (named barrier 1 + wg; 0 is __syncthreads).
__device__ __forceinline__ void wg_bar_sync(int wg) {
  asm volatile("bar.sync %0, 128;\n" ::"r"(1 + wg) : "memory");
}

// fp16 pairs (3xTF32's accuracy on fp16 tensor cores, bench/NOTES.md v55): the block's weights,
// one K chunk, as hi / lo planes of BN x kcp fp16 values (pair_weight_slot; zero past K and kc),
// each channel times its pair_weight_scale, then BN floats of each channel's 1 / (2^e *
// kPairsInputScale) and BN of their inverses (the sums' units: the bias goes in, the sums come
// out through them). One warp per channel.
template <class T>
__device__ __forceinline__ void flat_pair_weights(const cfk_mma_params &prm, const float *weight,
                                                  float *wres, int n0, int warp, int lane) {
  __half *hi = reinterpret_cast<__half *>(wres);
  __half *lo = hi + T::BN * prm.kcp;
  float *unscale = wres + T::BN * prm.kcp, *units = unscale + T::BN;
  for (int nl = warp; nl < T::BN; nl += T::WARPS) {
    const int ng = n0 + nl;
    const bool live = ng < prm.g.k;
    const float *src = weight + (int64_t)(live ? ng : 0) * prm.crs;
    const float scale = warp_pair_weight_scale(src, prm.crs, live, lane);
    for (int k = lane; k < prm.kcp; k += 32) {
      const float w = live && k < prm.crs ? __ldg(src + k) * scale : 0.0f; // one chunk
      const __half h = __float2half_rn(w);
      const int at = pair_weight_slot(nl, k, T::BN);
      hi[at] = h;
      lo[at] = __float2half_rn(w - __half2float(h));
    }
    if (lane == 0) {
      units[nl] = scale * kPairsInputScale;
      unscale[nl] = 1.0f / units[nl]; // powers of two: exact
    }
  }
}

// fp16 pairs over a flat tile's K chunk into part (its first k-step restarts it), the register
// sets alternating as in wg_chunk (wait_group 1: only the step two back, the last reader of the
// set about to be reloaded, must be done).
template <class T>
__device__ __forceinline__ void flat_pairs_chunk(float (&part)[8][4], const int *koff_lane,
                                                 int kcp, const char *patch, int a_lo, int a_hi,
                                                 uint64_t desc_hi, uint64_t desc_lo) {
  uint32_t hi0[4], lo0[4], hi1[4], lo1[4];
  wg_wait<0>();
#pragma unroll 1
  for (int kb = 0; kb < kcp; kb += 32) {
    if (kb > 0)
      wg_wait<1>();
    wg_pair_step<T, true>(part, hi0, lo0, kb, koff_lane, patch, a_lo, desc_hi, desc_lo, a_hi,
                          kb > 0);
    if (kb + 16 >= kcp)
      break;
    wg_wait<1>();
    wg_pair_step<T, true>(part, hi1, lo1, kb + 16, koff_lane, patch, a_lo, desc_hi, desc_lo,
                          a_hi, 1);
  }
}

// Lock-step (TF32, and tiles that declare LOCKSTEP) or drifting warpgroups (3xTF32).
template <class T, class = void>
struct FlatLockstep {
  static constexpr bool value = !T::SPLIT;
};
template <class T>
struct FlatLockstep<T, decltype((void)T::LOCKSTEP)> {
  static constexpr bool value = T::LOCKSTEP;
};

template <class T, class Epi>
__global__ void __launch_bounds__(T::THREADS, 1)
    conv_flat_kernel(const __grid_constant__ cfk_mma_params prm, const __grid_constant__ Epi epi,
                     const float *__restrict__ input, const float *__restrict__ weight,
                     const float *__restrict__ bias, float *__restrict__ output) {
  static_assert(T::WG && T::TMA && T::STAGED && T::BM % 64 == 0, "flat tiles: the WG tile");
  constexpr int BM = T::BM, BN = T::BN;
  constexpr int PITCH = CF_FLAT_STAGE_PITCH(BM), BUFFER = BN * PITCH; // staging: floats
  static_assert(BUFFER * 4 % 1024 == 0, "each staging buffer 1024-byte aligned (the swizzle)");
  constexpr bool F16 = IsF16<T>::value; // fp16 pairs
  static_assert(!F16 || T::SPLIT, "fp16 pairs stand in for 3xTF32 only");
  // a rerun behind the fp16 kernel's range guard: nothing to do unless the guard tripped
  if (!F16 && prm.range_guard != nullptr && *prm.range_guard == 0)
    return;
  (void)input; // read through patch_map
  // (named apart from conv_rowtile.cuh's, which is aligned to 128)
  extern __shared__ __align__(1024) float flat_smem[];
  float *smem = flat_smem;
  float *staged = smem; // out_buffers staging buffers of BN rows of PITCH floats
  float *wres = staged + prm.out_floats;
  float *stages = wres + prm.weight_floats;
  int *koff = reinterpret_cast<int *>(stages + prm.n_stages * prm.stage_floats);
  // per stage buffer: an mbarrier its bytes land on and a count of the warps done with it
  uint64_t *stage_full = reinterpret_cast<uint64_t *>(koff + prm.kcp);
  uint32_t *stage_done = reinterpret_cast<uint32_t *>(stage_full + prm.n_stages);

  const int tid = (int)threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int m_lane = warp * 16 + g; // the lane's first pixel in the tile (the second: + 8)
  const int wg = warp / 4;           // warpgroup: pixels [64 wg, 64 wg + 64) of each tile
  // Drifting warpgroups (3xTF32) or the whole block in lock-step (TF32): who syncs on the
  // staging buffer and stores which boxes.
  constexpr bool DRIFT = !FlatLockstep<T>::value;
  // Lock-step tiles may store each channel row as one bulk copy (its thread tid = the row)
  // instead of swizzled boxes: one 1 KB run per channel (bench/NOTES.md v57).
  const bool rows = !DRIFT && prm.row_stores;
  const bool store_issuer = rows ? tid < BN : DRIFT ? (tid & 127) == 0 : tid == 0;
  const int box0 = DRIFT ? 2 * wg : 0, boxes = DRIFT ? 2 : BM / 32;
  auto staging_sync = [&]() {
    if constexpr (DRIFT)
      wg_bar_sync(wg);
    else
      __syncthreads();
  };
  const int n0 = (int)blockIdx.y * BN;
  if (tid == 0 && (smem_addr(smem) & 1023) != 0)
    __trap(); // the swizzled boxes need it; the layout puts them at the start

  // ---- per-block set-up: K offsets, barriers, resident weights (split for 3xTF32) ----
  const int RS = prm.g.r * prm.g.s;
  for (int k = tid; k < prm.kcp; k += T::THREADS) {
    int off = 0; // padded K: any patch element will do, its weights are zero
    if (k < prm.kc) {
      const int c = k / RS, rem = k - c * RS, r = rem / prm.g.s, s = rem - r * prm.g.s;
      off = (c * prm.flat_rows + r * prm.g.dil_h) * prm.patch_pitch + s * prm.g.dil_w;
    }
    koff[k] = off * 4;
  }
  if (tid == 0)
    stage_ring_init(stage_full, stage_done, prm.n_stages);
  if constexpr (F16) {
    flat_pair_weights<T>(prm, weight, wres, n0, warp, lane);
  } else {
    load_weights_wg<T>(prm, weight, wres, n0, warp, lane);
    cp_async_commit();
    cp_async_wait<0>();
    if constexpr (T::SPLIT) {
      __syncthreads();
      split_weights_wg(wres, wres + BN * prm.w_pitch, BN * prm.w_pitch, tid, T::THREADS);
    }
  }
  wg_fence_shared();
  __syncthreads();
  // fp16 pairs: each channel's 2^-e (and its 2^e, which the bias takes) after the planes
  const float *unscale = wres + BN * prm.kcp, *units = unscale + BN;
  (void)unscale;
  (void)units;

  float bias_lane[8][2];
#pragma unroll
  for (int ni = 0; ni < 8; ++ni)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int ch = n0 + ni * 8 + 2 * t + j;
      bias_lane[ni][j] = prm.shift + (bias != nullptr && ch < prm.g.k ? __ldg(bias + ch) : 0.0f);
      if constexpr (F16) // the sums start at the bias in their units (powers of two: exact)
        bias_lane[ni][j] *= units[ni * 8 + 2 * t + j];
    }
  // B's big / small halves (3xTF32), or the hi / lo planes (fp16 pairs: BN x kcp halves each)
  const uint64_t desc_big = wg_desc(smem_addr(wres), BN * 16, 128);
  const uint64_t desc_small =
      F16 ? desc_big + (uint64_t)(BN * prm.kcp * 2 / 16)
          : wg_desc(smem_addr(wres + BN * prm.w_pitch), BN * 16, 128);
  // The lane's staging offsets: channel 2t + j, pixel m_lane + 8h; channel + 8 ni: + ni st_ch8
  const int st00 = rows ? flat_row_stage_offset<PITCH>(2 * t, m_lane)
                        : flat_stage_offset(2 * t, m_lane, BN);
  const int st10 = rows ? flat_row_stage_offset<PITCH>(2 * t + 1, m_lane)
                        : flat_stage_offset(2 * t + 1, m_lane, BN);
  const int st01 = rows ? flat_row_stage_offset<PITCH>(2 * t, m_lane + 8)
                        : flat_stage_offset(2 * t, m_lane + 8, BN);
  const int st11 = rows ? flat_row_stage_offset<PITCH>(2 * t + 1, m_lane + 8)
                        : flat_stage_offset(2 * t + 1, m_lane + 8, BN);
  const int st_ch8 = rows ? 8 * PITCH * 4 : 8 * 32 * 4;
  // A row store's channel (thread tid's), its place in the output planes and whether it is one
  const bool row_live = rows && tid < BN && n0 + tid < prm.g.k;
  const int64_t row_plane = (int64_t)(n0 + (row_live ? tid : 0)) * prm.pq;
  const int *koff_lane = koff + t;

  // ---- the tiles: block x owns a contiguous run of them ----
  const int first_tile = (int)(prm.m_tiles * blockIdx.x / gridDim.x);
  const int end_tile = (int)(prm.m_tiles * (blockIdx.x + 1) / gridDim.x);
  auto next_stage = [&](int b) { return b + 1 == prm.n_stages ? 0 : b + 1; };
  auto issue_load = [&](int tile, int b) {
    const FlatTile f = flat_tile(prm, tile, BM);
    uint64_t *bar = stage_full + b;
    mbar_expect_bytes(bar, (uint32_t)prm.tma_bytes);
    tma_load_4d(stages + b * prm.stage_floats, &prm.patch_map, 0,
                f.p0 * prm.g.stride_h - prm.g.pad_h, 0, f.n, bar);
  };
  // Drifting: a warp done with stage buffer b (its A fragments are in registers) counts itself
  // out; the last of the block's warps refills it with the patch of tile `next`. The fences
  // order the warps' shared loads of the buffer before the refill's writes.
  auto release_stage = [&](int b, int next) {
    const bool last = stage_count_out(stage_done, b, T::WARPS, lane);
    if (last && next < end_tile)
      issue_load(next, b);
  };
  if (tid == 0)
    for (int b = 0; b < prm.n_stages && first_tile + b < end_tile; ++b)
      issue_load(first_tile + b, b);

  uint32_t full_parity = 0;
  int buf = 0, out_buf = 0;
  float acc[8][4], part[8][4];
  for (int tile = first_tile; tile < end_tile; ++tile) {
    const FlatTile f = flat_tile(prm, tile, BM);
    const int a_lo = flat_pixel_offset(prm, f, f.l0 + m_lane);
    const int a_hi = flat_pixel_offset(prm, f, f.l0 + m_lane + 8);
#pragma unroll
    for (int ni = 0; ni < 8; ++ni) {
      acc[ni][0] = acc[ni][2] = bias_lane[ni][0];
      acc[ni][1] = acc[ni][3] = bias_lane[ni][1];
    }
    mbar_wait(stage_full + buf, (full_parity >> buf) & 1);
    full_parity ^= 1u << buf;
    const char *patch = reinterpret_cast<const char *>(stages + buf * prm.stage_floats);
    if constexpr (F16)
      flat_pairs_chunk<T>(part, koff_lane, prm.kcp, patch, a_lo, a_hi, desc_big, desc_small);
    else
      wg_chunk<T, 1, true>(acc, part, koff_lane, prm.kcp, patch, a_lo, 4, desc_big, desc_small,
                           true, a_hi);
    if constexpr (DRIFT)
      release_stage(buf, tile + prm.n_stages);
    // The staging boxes must have been read out by their last store (out_buffers tiles back):
    // their issuer tracks its bulk groups, the barrier tells the others.
    if (store_issuer) {
      if (prm.out_buffers > 1)
        bulk_wait_read<1>();
      else
        bulk_wait_read<0>();
    }
    staging_sync();
    if constexpr (!DRIFT) // lock-step: past the block barrier nobody reads the stage any more
      if (tid == 0 && tile + prm.n_stages < end_tile)
        issue_load(tile + prm.n_stages, buf);
    buf = next_stage(buf);
    wg_wait<0>();
    wg_pin(acc);
    if constexpr (T::SPLIT)
      wg_add_part(acc, part);
    if constexpr (F16) // back from the sums' units; the range guard
      unscale_sums_guarded(acc, unscale + 2 * t, prm.range_guard);

    float *buffer = staged + out_buf * BUFFER;
    char *sb = reinterpret_cast<char *>(buffer);
#pragma unroll
    for (int ni = 0; ni < 8; ++ni) {
      float(&a)[1][4] = reinterpret_cast<float(&)[1][4]>(acc[ni]);
      epi.apply(a);
      *reinterpret_cast<float *>(sb + st00 + ni * st_ch8) = a[0][0];
      *reinterpret_cast<float *>(sb + st10 + ni * st_ch8) = a[0][1];
      *reinterpret_cast<float *>(sb + st01 + ni * st_ch8) = a[0][2];
      *reinterpret_cast<float *>(sb + st11 + ni * st_ch8) = a[0][3];
    }
    wg_fence_shared(); // the stores above, visible to the TMA unit's reads
    staging_sync();
    if (rows) { // the tile's pixels of channel tid: a multiple of 4, 16-byte aligned (p q % 4)
      if (row_live)
        bulk_store(output + (f.n * prm.kpq + row_plane + f.l0), buffer + tid * PITCH,
                   (uint32_t)min(BM, (int)prm.pq - f.l0) * 4);
      if (store_issuer)
        bulk_commit();
    } else if (store_issuer) { // boxes of 32 pixels from box0 (the warpgroup's two, or all)
      for (int b = box0; b < box0 + boxes && f.l0 + 32 * b < prm.pq; ++b)
        tma_store_3d(&prm.out_map, buffer + b * BN * 32, f.l0 + 32 * b, n0, f.n);
      bulk_commit();
    }
    out_buf = out_buf + 1 == prm.out_buffers ? 0 : out_buf + 1;
  }
  if (store_issuer)
    bulk_wait<0>(); // the shared memory the stores read lives until they are done
}

// The flat kernel of a chain (as rowtile_kernel_of: RELU runs the generic epilogue).
template <class T>
const void *flat_kernel_of(int chain) {
  switch (chain) {
  case CFK_EPI_NONE: return (const void *)conv_flat_kernel<T, CfkEpiFixed<>>;
  case CFK_EPI_MISH: return (const void *)conv_flat_kernel<T, CfkEpiFixed<CFK_OP_MISH>>;
  case CFK_EPI_MISH_MISH:
    return (const void *)conv_flat_kernel<T, CfkEpiFixed<CFK_OP_MISH, CFK_OP_MISH>>;
  case CFK_EPI_RELU:
  case CFK_EPI_GENERIC: return (const void *)conv_flat_kernel<T, CfkEpiGeneric>;
  default: return nullptr;
  }
}

} // namespace

#endif
