#ifndef CF_KERNELS_CUDA_CONV_ROWCH_CUH
#define CF_KERNELS_CUDA_CONV_ROWCH_CUH
// The row-channel tiles: WG entry 1's job on one fp16 product (sm_90a) in the OpenCL wgmma
// program's plan (kernels_cl/conv2d_wgmma.cl, bench/NOTES.md v69-v74), which ran mish-mish tf32
// faster than entry 1's 256 x 128 lock-step tile on the H100 (v72). A block is two warpgroups
// (256 threads, two blocks per SM, each at its own pace) and owns 128 consecutive pixels of one
// output row times the 128 channels of its channel tile; warpgroup wg the pixels 64 wg .. + 63
// as one m64n128k16 per k-step, A (the patch) from registers, B (the chunk's weights) from
// shared memory by descriptor. K runs over "row channels" v = r C + c (input channel c at
// kernel row r: one patch row each) in chunks of 16, ordered (s, v): k-step s is kernel column
// s, so A[m][v] = patch[v][m + s] and no K value is padding where C R is a multiple of 16 (entry
// 1 pads each 8-channel chunk's 72 K values to 80). Stride 1, no dilation, S == 3; the patch
// rows come by 16-byte cp.async (zero-filled outside the image: W and pad_w multiples of 4), the
// chunk's weights, laid out per call by rowch_weights_kernel, as one run of 16-byte copies.
// A ring of NST stages over the block's (tile, chunk) sequence, tiles blockIdx.x + i gridDim.x,
// one barrier per chunk: at chunk L each thread waits for its warpgroup's wgmmas of L - 1 and
// its own copies of L, the barrier makes both block-wide, L's fragments and wgmmas are issued,
// and L + NST - 1's copies go into L - 1's stage while they run; a tile's epilogue runs under
// the next tile's first copies (and the other block's k-loop). Numbers as entry 1 on fp16:
// weights scaled per channel into [2^14, 2^15) (stream_weight_scales_kernel), sums unscaled per
// tile; a sum that is not finite sets the range guard, behind which the host's TF32 rerun
// (entry 1) recomputes the launch. H100 mish-mish tf32: 2.75 -> 2.61 ms at 3 stages (4: 2.79,
// 5: 2.94; bench/NOTES.md v77). With resident weights (RES: two such teams per block share the
// channel tile's weights, copied in once) 2.59-2.60 at 4 stages against 2.61-2.66 streamed in
// the same calls (v79); 2.56-2.58 without a per-chunk proxy fence (v81); 2.18-2.23 with no
// spills in the k-loop and the output runs' geometry per channel parity (v83).
#include "kernels_cuda/conv_stream.cuh"

namespace {

// The planner's constants (common/mma_layout.h, CF_ROWCH_*), which size it too.
struct RowChTile {
  static constexpr int BM = CF_ROWCH_BM, BN = CF_ROWCH_BN, THREADS = CF_ROWCH_THREADS, MI = 1;
  static constexpr int NI = BN / 8;
  static constexpr int CH = CF_ROWCH_CHUNK; // row channels per chunk
  static constexpr int S = CF_ROWCH_S;      // the kernel's width: k-steps per chunk
  // patch row pitch in floats: holds BM + S - 1 columns, == 4 (mod 32), so that a lane's
  // fragment loads (rows 2t, 2t + 1, 2t + 8, 2t + 9, column g) hit 32 distinct banks
  static constexpr int PITCH = CF_ROWCH_PITCH;
  static constexpr int PATCH_VECS = (BM + S - 1 + 3) / 4; // 16-byte copies per patch row
  static constexpr int KSTEP_BYTES = 2 * BN * 16;          // 16 fp16 K values x BN channels
  static constexpr int B_BYTES = S * KSTEP_BYTES;          // a chunk's weights
  static constexpr int PATCH_BYTES = CH * PITCH * 4;       // a chunk's patch rows
  static constexpr int STAGE_BYTES = B_BYTES + PATCH_BYTES; // streamed: weights, then patch
  static constexpr int TEAMS = CF_ROWCH_TEAMS; // resident weights: teams of THREADS per block
  static_assert(PITCH % 32 == 4 && PITCH >= BM + S - 1 && PATCH_VECS * 4 <= PITCH, "pitch");
  static_assert(B_BYTES % 128 == 0 && PATCH_BYTES % 128 == 0, "stages 128-byte aligned");
};

// Shared memory of a row-channel kernel with n_stages stages. Streamed: the stages (weights and
// patch), then the bias and the channels' 2^-e (BN floats each). Resident: the channel tile's
// n_chunks chunks of weights, each team's patch-only stages, then the same.
constexpr int rowch_smem_bytes(int n_stages) {
  return n_stages * RowChTile::STAGE_BYTES + 2 * RowChTile::BN * 4;
}
constexpr int64_t rowch_resident_smem_bytes(int n_stages, int n_chunks) {
  return (int64_t)n_chunks * RowChTile::B_BYTES +
         RowChTile::TEAMS * n_stages * RowChTile::PATCH_BYTES + 2 * RowChTile::BN * 4;
}

// Where weight value k (= 16 s + v) of channel nl of a chunk sits in its block, in halves:
// wgmma's K-major core matrices of 8 channels x 8 values, BN * 16 bytes apart in K, 128 apart
// in N (the descriptor's lbo and sbo), K in the fragments' natural order.
__device__ __forceinline__ int rowch_weight_slot(int nl, int k) {
  return (k / 8) * (RowChTile::BN * 8) + (nl / 8) * 64 + (nl % 8) * 8 + k % 8;
}

// Weights [K][C][R][S] -> per (channel tile, chunk) one block of S x 16 x BN fp16 values
// (B_BYTES), each weight times its channel's 2^e (scales: stream_weight_scales_kernel); row
// channels past C R and channels past K are zeros. count = grid_n x n_chunks x BN x 16 S.
__global__ void rowch_weights_kernel(const float *__restrict__ weight, __half *__restrict__ laid,
                                     const float *__restrict__ scales, int k_total, int c, int r,
                                     int n_chunks, int64_t count) {
  constexpr int BN = RowChTile::BN, S = RowChTile::S, PER_CHUNK = 16 * S;
  const int crs = c * r * S;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t block = i / (BN * PER_CHUNK); // (channel tile, chunk)
    const int rest = (int)(i - block * BN * PER_CHUNK);
    const int chunk = (int)(block % n_chunks), tile_n = (int)(block / n_chunks);
    const int nl = rest / PER_CHUNK, k = rest - nl * PER_CHUNK;
    const int s = k / 16, v = chunk * 16 + k % 16, kr = v / c, ci = v - kr * c;
    const int n = tile_n * BN + nl;
    const bool ok = n < k_total && kr < r;
    const float w = ok ? weight[(int64_t)n * crs + (ci * r + kr) * S + s] * scales[n] : 0.0f;
    laid[block * (RowChTile::B_BYTES / 2) + rowch_weight_slot(nl, k)] = __float2half_rn(w);
  }
}

// Where a thread's patch copies go and come from: its slots tid, tid + 256, ... of a chunk's
// 16 rows x PATCH_VECS copies (each slot's row and column are the same in every chunk); per
// tile, the image and each slot's first input column. Offsets in int32 within one image (the
// host checks C H W < 2^31): the copies' 64-bit address arithmetic was half of the kernel's
// instructions (bench/NOTES.md v77).
struct RowChCopies {
  static constexpr int SLOTS = (RowChTile::CH * RowChTile::PATCH_VECS + RowChTile::THREADS - 1) /
                               RowChTile::THREADS;
  const float *image; // channel 0, row 0 of the tile's image
  int p0;             // the tile's first input row (p - pad_h)
  int iw[SLOTS];      // each slot's first input column (-1: outside the image, or no slot)
};

// RES: a tile past m_tiles is a resident team's dummy tile (every copy zero-fills, from input
// itself); the streamed kernels ask only for real tiles.
template <bool RES>
__device__ __forceinline__ void rowch_copies_for_tile(RowChCopies &cp, const cfk_mma_params &prm,
                                                      const float *input, int tile, int tid) {
  const bool real = !RES || tile < prm.m_tiles;
  const RowTile rt = row_tile(prm, real ? tile : 0, RowChTile::BM);
  cp.image = input + (int64_t)rt.n * prm.chw;
  cp.p0 = rt.p - prm.g.pad_h;
  const int iw0 = rt.q0 - prm.g.pad_w;
#pragma unroll
  for (int u = 0; u < RowChCopies::SLOTS; ++u) {
    const int i = tid + u * RowChTile::THREADS, row = i / RowChTile::PATCH_VECS;
    const int iw = iw0 + 4 * (i - row * RowChTile::PATCH_VECS);
    cp.iw[u] = real && row < RowChTile::CH && iw >= 0 && iw < prm.g.w ? iw : -1;
  }
}

// 16 bytes of src, or zeros (bytes 0), into shared memory. VIA_L1: through L1 (neighbouring
// tiles and the block's next row share input rows); else L2 only, where shared memory leaves
// L1 too little (resident weights: ~28 KB; there .ca measured 3.18 ms on mish-mish tf32, .cg
// 2.59-2.62: bench/NOTES.md v79).
template <bool VIA_L1>
__device__ __forceinline__ void cp_async16_zfill(uint32_t dst, const float *src, int bytes) {
  if (VIA_L1)
    asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(bytes)
                 : "memory");
  else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void cp_async16_at(uint32_t dst, const float *src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}

// A chunk's weights (one linear block of B_BYTES) from src into the stage at shared dst.
__device__ __forceinline__ void rowch_copy_chunk_weights(uint32_t dst, const float *src, int tid) {
  constexpr int W_VECS = RowChTile::B_BYTES / 16, T = RowChTile::THREADS;
  static_assert(W_VECS % T == 0, "every thread copies the same number of weight vectors");
#pragma unroll
  for (int u = 0; u < W_VECS / T; ++u)
    cp_async16_at(dst + 16 * (tid + T * u), src + 4 * (tid + T * u));
}

// The thread's index in its team, read afresh at each use (asm volatile: never hoisted), so
// that the copies' per-slot rows and columns are recomputed per chunk: hoisted out of the
// k-loop, ptxas kept them across it and spilled them (bench/NOTES.md v83).
__device__ __forceinline__ int rowch_team_tid() {
  uint32_t t;
  asm volatile("mov.u32 %0, %%tid.x;" : "=r"(t));
  return (int)(t % RowChTile::THREADS);
}

// Chunk j's 16 patch rows (row channel v = 16 j + row: channel v % C, input row p0 + v / C)
// into the patch at shared address patch, thread rowch_team_tid() of its team (VIA_L1:
// cp_async16_zfill's).
template <bool VIA_L1>
__device__ __forceinline__ void rowch_copy_patch(uint32_t patch, const RowChCopies &cp,
                                                 const cfk_mma_params &prm, int j) {
  constexpr int T = RowChTile::THREADS;
  const int tid = rowch_team_tid();
#pragma unroll
  for (int u = 0; u < RowChCopies::SLOTS; ++u) {
    const int i = tid + u * T, row = i / RowChTile::PATCH_VECS;
    if ((u + 1) * T <= RowChTile::CH * RowChTile::PATCH_VECS || row < RowChTile::CH) {
      const int x = i - row * RowChTile::PATCH_VECS;
      const int v = j * RowChTile::CH + row, kr = fast_div(v, prm.div_c), c = v - kr * prm.g.c;
      const int ih = cp.p0 + kr;
      const bool in = cp.iw[u] >= 0 && kr < prm.g.r && (unsigned)ih < (unsigned)prm.g.h;
      const int off = (c * prm.g.h + ih) * prm.g.w + cp.iw[u];
      cp_async16_zfill<VIA_L1>(patch + (row * RowChTile::PITCH + 4 * x) * 4,
                               cp.image + (in ? off : 0), in ? 16 : 0);
    }
  }
}

// One chunk: the A fragments of its S k-steps from its patch (rows m + s and m + 8 + s, row
// channels 2t, 2t + 1, 2t + 8, 2t + 9) into a, then their wgmmas on its weights (shared address
// w), committed as one group. a must not be touched until that group has completed. accumulate
// 0: the tile's first chunk starts the sums.
__device__ __forceinline__ void rowch_chunk(float (&acc)[16][4], uint32_t (&a)[RowChTile::S][4],
                                            const float *patch, uint32_t w, int m_lane, int t,
                                            int accumulate) {
  constexpr int P = RowChTile::PITCH;
#pragma unroll
  for (int s = 0; s < RowChTile::S; ++s) {
    const float *r0 = patch + m_lane + s, *r1 = r0 + 8;
    a[s][0] = pack_f16(r0[(2 * t) * P], r0[(2 * t + 1) * P]);
    a[s][1] = pack_f16(r1[(2 * t) * P], r1[(2 * t + 1) * P]);
    a[s][2] = pack_f16(r0[(2 * t + 8) * P], r0[(2 * t + 9) * P]);
    a[s][3] = pack_f16(r1[(2 * t + 8) * P], r1[(2 * t + 9) * P]);
  }
  const uint64_t desc = wg_desc(w, RowChTile::BN * 16, 128);
  constexpr uint64_t DESC_PER_KSTEP = RowChTile::KSTEP_BYTES / 16;
  wg_fence();
#pragma unroll
  for (int s = 0; s < RowChTile::S; ++s)
    wg_mma_m64n128k16_f16(acc, a[s], desc + s * DESC_PER_KSTEP, accumulate | s);
  wg_commit();
}

// A team's barrier: the whole block when streamed; named barrier 1 + team over its THREADS
// when the weights are resident (the teams run at their own pace, as two streamed blocks do).
template <bool RES>
__device__ __forceinline__ void rowch_team_sync(int team) {
  if (RES)
    asm volatile("bar.sync %0, %1;\n" ::"r"(1 + team), "n"(RowChTile::THREADS) : "memory");
  else
    __syncthreads();
}

// weight: rowch_weights_kernel's blocks (grid_n x n_chunks of B_BYTES), then every channel's 2^e
// (grid_n x BN floats). prm: n_chunks = ceil(C R / 16), div_c, m_tiles, q_tiles (BM 128), the
// geometry, pq, chw, range_guard, shift. RES (resident weights): a block is TEAMS teams of
// THREADS, each the streamed kernel's block on its own tiles and patch-only stages, reading the
// channel tile's weights that the block copies in once (bench/NOTES.md v78).
template <class Epi, int NST, bool RES>
__global__ void __launch_bounds__(RowChTile::THREADS *(RES ? RowChTile::TEAMS : 1), RES ? 1 : 2)
    conv_rowch_kernel(const __grid_constant__ cfk_mma_params prm, const __grid_constant__ Epi epi,
                      const float *__restrict__ input, const float *__restrict__ weight,
                      const float *__restrict__ bias, float *__restrict__ output) {
  using T = RowChTile;
  constexpr int TEAMS = RES ? T::TEAMS : 1;
  constexpr int STAGE = RES ? T::PATCH_BYTES : T::STAGE_BYTES; // bytes of one stage
  constexpr int PATCH_AT = RES ? 0 : T::B_BYTES;               // its patch within it
  static_assert(NST >= 2, "a stage is refilled while the next is read");
  static_assert(RES || rowch_smem_bytes(NST) <= 227 * 1024, "one block's shared memory");
  extern __shared__ __align__(128) float smem[];
  const int tid = (int)threadIdx.x, team = RES ? tid / T::THREADS : 0;
  const int ttid = tid - team * T::THREADS, lane = tid & 31, warp = ttid >> 5;
  const int resident_bytes = RES ? prm.n_chunks * T::B_BYTES : 0;
  char *stages = reinterpret_cast<char *>(smem) + resident_bytes + team * NST * STAGE;
  float *bias_sm =
      reinterpret_cast<float *>(reinterpret_cast<char *>(smem) + resident_bytes +
                                TEAMS * NST * STAGE);
  float *unscale_sm = bias_sm + T::BN;
  const uint32_t stages_sm = smem_addr(stages), resident_sm = smem_addr(smem);

  const int g = lane >> 2, t = lane & 3, m_warp = warp * 16;
  const int n0 = (int)blockIdx.y * T::BN;
  const float *w_tile = weight + (int64_t)blockIdx.y * prm.n_chunks * (T::B_BYTES / 4);
  const float *scales = weight + (int64_t)gridDim.y * prm.n_chunks * (T::B_BYTES / 4);
  for (int i = tid; i < T::BN; i += T::THREADS * TEAMS) {
    bias_sm[i] = prm.shift + (bias != nullptr && n0 + i < prm.g.k ? bias[n0 + i] : 0.0f);
    unscale_sm[i] = 1.0f / scales[n0 + i];
  }
  if (RES) { // the channel tile's weights, once (the first group)
    const int w_vecs = prm.n_chunks * (T::B_BYTES / 16);
#pragma unroll 1
    for (int i = tid; i < w_vecs; i += T::THREADS * TEAMS)
      cp_async16_at(resident_sm + 16 * i, w_tile + 4 * i);
    cp_async_commit();
  }

  // tiles TEAMS blockIdx.x + team, + TEAMS gridDim.x, ...: the blocks resident at any time work
  // on neighbouring tiles, which share their input rows in L2 (contiguous runs per block, as
  // entry 1's, spread two blocks per SM over ~50 MB of rows at once on mish-mish: 3.4 ms against
  // 2.7). The trip count is the block's first team's: a later team may end on a dummy tile (zero
  // copies, no stores), since a team-dependent count made ptxas serialize the wgmmas (C7518).
  const int first_tile = (int)blockIdx.x * TEAMS + team, tile_step = (int)gridDim.x * TEAMS;
  const int end_tile = (int)prm.m_tiles, block_first = (int)blockIdx.x * TEAMS;
  const int total = (end_tile - block_first + tile_step - 1) / tile_step * prm.n_chunks;

  // the load cursor: every thread issues its own copies of stage ld (chunk ld_chunk of ld_tile)
  int ld = 0, ld_chunk = 0, ld_tile = first_tile;
  RowChCopies cp;
  if (RES || first_tile < end_tile)
    rowch_copies_for_tile<RES>(cp, prm, input, first_tile, ttid);
  auto issue = [&]() {
    if (ld < total) {
      const uint32_t stage = stages_sm + (uint32_t)((ld % NST) * STAGE);
      if (!RES)
        rowch_copy_chunk_weights(stage, w_tile + ld_chunk * (T::B_BYTES / 4), ttid);
      rowch_copy_patch<!RES>(stage + PATCH_AT, cp, prm, ld_chunk);
      if (++ld_chunk == prm.n_chunks) {
        ld_chunk = 0;
        if ((ld_tile += tile_step) < end_tile || RES)
          rowch_copies_for_tile<RES>(cp, prm, input, ld_tile, ttid);
      }
    }
    ++ld;
    cp_async_commit(); // empty past the end: every step waits on the same group count
  };
  for (int i = 0; i < NST - 1; ++i)
    issue();
  if (RES) { // the weights (each writer's, for wgmma's proxy) and the bias block-wide
    cp_async_wait<NST - 1>();
    wg_fence_shared();
    __syncthreads();
  }

  float acc[T::NI][4];
  uint32_t a[T::S][4];
  const int m_lane = m_warp + g;
  int chunk = 0, tile = first_tile;
#pragma unroll 1
  for (int L = 0; L < total; ++L) {
    // chunk L - 1's wgmmas done (this warpgroup), L's copies landed (this thread); the barrier
    // makes both team-wide, and L - 1's stage takes L + NST - 1 while L's wgmmas run
    wg_wait<0>();
    cp_async_wait<NST - 2>();
    if (!RES) // streamed: the chunk's weights, cp.async's writes, are read by wgmma (the async
      wg_fence_shared(); // proxy); resident: the patch is only read by LDS (v81: -1.3%)
    rowch_team_sync<RES>(team);
    const char *stage = stages + (L % NST) * STAGE;
    rowch_chunk(acc, a, reinterpret_cast<const float *>(stage + PATCH_AT),
                RES ? resident_sm + (uint32_t)(chunk * T::B_BYTES) : smem_addr(stage), m_lane, t,
                chunk > 0);
    issue();
    if (++chunk < prm.n_chunks)
      continue;
    chunk = 0;
    wg_wait<0>();
    if (!RES || tile < end_tile) {
      unscale_sums_guarded(acc, unscale_sm + 2 * t, prm.range_guard);
#pragma unroll
      for (int ni = 0; ni < T::NI; ++ni) {
        const float2 b = *reinterpret_cast<const float2 *>(bias_sm + ni * 8 + 2 * t);
        acc[ni][0] += b.x;
        acc[ni][1] += b.y;
        acc[ni][2] += b.x;
        acc[ni][3] += b.y;
      }
      const RowTile rt = row_tile(prm, tile, T::BM);
      float *out_warp =
          output + ((int64_t)rt.n * prm.g.k * prm.g.p + rt.p) * prm.g.q + rt.q0 + m_warp;
      store_tile_aligned<T>(epi, acc, out_warp, prm.pq, n0 + 2 * t, prm.g.k,
                            prm.g.q - rt.q0 - m_warp, g);
    }
    tile += tile_step;
  }
  cp_async_wait<0>(); // the empty groups past the end
}

template <class Epi>
const void *rowch_kernel_of_stages(int n_stages, bool resident) {
  if (resident)
    switch (n_stages) {
    case 2: return (const void *)conv_rowch_kernel<Epi, 2, true>;
    case 3: return (const void *)conv_rowch_kernel<Epi, 3, true>;
    case 4: return (const void *)conv_rowch_kernel<Epi, 4, true>;
    default: return nullptr;
    }
  switch (n_stages) {
  case 2: return (const void *)conv_rowch_kernel<Epi, 2, false>;
  case 3: return (const void *)conv_rowch_kernel<Epi, 3, false>;
  case 4: return (const void *)conv_rowch_kernel<Epi, 4, false>;
  case 5: return (const void *)conv_rowch_kernel<Epi, 5, false>;
  default: return nullptr;
  }
}

// A row-channel kernel of a chain (RELU runs the generic epilogue, as in the row tiles).
const void *rowch_kernel_of(int chain, int n_stages, bool resident) {
  switch (chain) {
  case CFK_EPI_NONE: return rowch_kernel_of_stages<CfkEpiFixed<>>(n_stages, resident);
  case CFK_EPI_MISH: return rowch_kernel_of_stages<CfkEpiFixed<CFK_OP_MISH>>(n_stages, resident);
  case CFK_EPI_MISH_MISH:
    return rowch_kernel_of_stages<CfkEpiFixed<CFK_OP_MISH, CFK_OP_MISH>>(n_stages, resident);
  case CFK_EPI_RELU:
  case CFK_EPI_GENERIC: return rowch_kernel_of_stages<CfkEpiGeneric>(n_stages, resident);
  default: return nullptr;
  }
}

} // namespace

#endif
