#ifndef CF_KERNELS_CUDA_CONV_STREAM_CUH
#define CF_KERNELS_CUDA_CONV_STREAM_CUH
// The streamed wgmma row tiles (WG menu entries 1 and 2, sm_90a). Entry 1 (one TF32 product):
// a tile is 256 consecutive output pixels of one output row times all 128 channels of the
// block's channel tile, on four warpgroups of m64n128k8 (each warp 16 pixels x 128 channels,
// 64 accumulators per thread). Against the resident 256 x 64 tile it halves the patch traffic
// through L2 (each input row is read by half as many blocks) and the A fragment loads per MAC;
// the weights, 128 channels x C*R*S, no longer fit in shared memory beside the pipeline, so
// they stream with the patch: cfk_wg_stream_weights lays them out once per call in the order
// the stages need (channel tile, K chunk, wgmma's canonical K-major core matrices), so that
// each stage's weights are one contiguous block, loaded by one bulk copy that counts its bytes
// in on the same mbarrier as the patch's TMA boxes. A stage can only be refilled once the
// wgmmas that read its weights have completed: each warp counts itself out of a stage after
// the first batch of the next chunk (wait_group 1 then guarantees the previous chunk
// complete), and the last warp out refills it. bench/NOTES.md, v25 (prototype:
// bench/wide_probe.cu).
// Entry 2 (3xTF32) is the same pipeline on 256 pixels x 64 channels (m64n64k8): each stage
// carries both halves of the chunk's weights (split once per call by the layout kernel), and
// the k-loop is the resident wgmma tile's k-step (wg_split_step: A split in registers), with
// each two chunks summed in a fresh accumulator (at 256 x 128 that would take 128
// accumulators, the whole register cap): stream_split_chunk. bench/NOTES.md v29-v32.
#include <cstdint>
#include <cuda_runtime.h>

#include "kernels_cuda/conv_rowtile.cuh"

namespace {

// Entry 1's constants, in the shape store_tile expects (one 16-pixel mma row per warp).
struct StreamTile {
  static constexpr int BM = 256, BN = 128, WARPS = 16, THREADS = 32 * WARPS;
  static constexpr int MI = 1, NI = BN / 8;
  static constexpr int KS = 2; // k-steps per wgmma batch (two register sets of KS x 4)
  static constexpr bool SPLIT = false;
};

// Entry 2: the resident wgmma tile's shape and 3xTF32 k-step (wg_split_step), TMA patch.
using StreamSplitTile = MmaTile<256, 64, 16, 64, true, false, true, true>;

// Entries 1 and 2 on fp16 tensor cores (the default; CONVFUSE_F16; bench/NOTES.md v51, v54): the
// same tiles and pipeline, each k-step 16 K values (m64n128k16 for one product, m64n64k16 pairs
// for 3xTF32's accuracy: wg_pair_step), half the tensor work of TF32's two k-steps; the weights
// scaled per channel and laid out as fp16 (hi / lo planes for the pairs: stream_weights_kernel).
struct StreamF16Tile : StreamTile {
  static constexpr bool F16 = true;
};
struct StreamPairsTile : StreamSplitTile {
  static constexpr bool F16 = true;
};

// One batch: the A fragments of k-steps kb0 / 8 and the next (if below kcp), then their
// wgmmas, committed as one group. a must not be touched until that group has completed. (The
// guards make ptxas fence the accumulators around these wgmmas (C7519), but every branch-free
// form of this batch tried, a batch of 1 or 2 k-steps chosen per batch, or batches of one,
// or a zero A for the missing step, makes it serialize the wgmmas instead (C7511-C7513): v30.)
__device__ __forceinline__ void stream_batch(float (&acc)[16][4], uint32_t (&a)[2][4], int kb0,
                                             int kcp, const int *koff_lane, const char *patch,
                                             int a_lane, uint64_t desc) {
  constexpr uint64_t DESC_PER_KSTEP = StreamTile::BN * 8 * 4 / 16;
#pragma unroll
  for (int j = 0; j < StreamTile::KS; ++j)
    if (kb0 + 8 * j < kcp) {
      float raw[4];
      load_a16<1>(raw, koff_lane, kb0 + 8 * j, patch, a_lane, 4);
#pragma unroll
      for (int e = 0; e < 4; ++e)
        a[j][e] = __float_as_uint(raw[e]);
    }
  wg_fence();
#pragma unroll
  for (int j = 0; j < StreamTile::KS; ++j)
    if (kb0 + 8 * j < kcp)
      wg_mma_m64n128k8(acc, a[j], desc + (uint64_t)(kb0 / 8 + j) * DESC_PER_KSTEP);
  wg_commit();
}

// store_tile's job for one 16-pixel mma row per warp (T::MI == 1) in 8-byte stores: lanes g
// and g ^ 1 (lane ^ 4) trade one value per fragment row, so that the even lane holds channel
// ch_lane at pixels (g, g + 1) and the odd one channel ch_lane + 1 at (g - 1, g). Needs an
// even output width and an 8-byte-aligned output (then every pair starts 8-byte aligned: q0,
// the warp's first pixel and g - 1 or g are even, and so is every row's start); a pair is then
// inside or outside the row whole, so the 4-byte path's bounds hold (bench/NOTES.md v55).
template <class T, class Epi>
__device__ __forceinline__ void store_tile_pairs(const Epi &epi, float (&acc)[T::NI][4],
                                                 float *out_lane, int64_t pq, int ch_lane, int k,
                                                 int q_left, int lane) {
  static_assert(T::MI == 1, "one 16-pixel row per warp");
  const bool odd = (lane >> 2) & 1;
  // the even lane writes (ch, g), the odd one (ch + 1, g - 1): both start a pixel pair
  float *o = out_lane + (int64_t)(ch_lane + odd) * pq - odd;
  const bool in0 = 0 < q_left, in1 = 8 < q_left;
#pragma unroll
  for (int ni = 0; ni < T::NI; ++ni, o += 8 * pq) {
    float(&a)[1][4] = reinterpret_cast<float(&)[1][4]>(acc[ni]);
    epi.apply(a);
    const float r0 = __shfl_xor_sync(0xffffffffu, odd ? a[0][0] : a[0][1], 4);
    const float r1 = __shfl_xor_sync(0xffffffffu, odd ? a[0][2] : a[0][3], 4);
    const bool ok = ch_lane + ni * 8 + odd < k;
    const float2 v0 = odd ? make_float2(r0, a[0][1]) : make_float2(a[0][0], r0);
    const float2 v1 = odd ? make_float2(r1, a[0][3]) : make_float2(a[0][2], r1);
    if (ok && in0)
      __stcs(reinterpret_cast<float2 *>(o), v0);
    if (ok && in1)
      __stcs(reinterpret_cast<float2 *>(o + 8), v1);
  }
}

// A warp's 16 pixels of one channel (row: its first; q_left: the row's pixels from there) as
// runs aligned to 32-byte sectors (bench/NOTES.md v71, v72): the lane holds pixels g (v0) and
// 8 + g (v1); in store j it writes pixel 8j + g if g < u (u: the pixels before the row's first
// sector boundary), else 8j + g - 8 (the block before's value), so that each store fills one
// sector and only the outer two are shared with the neighbouring warps. SectorRuns is where a
// lane's stores go and how many pixels they may write; channels 8 apart are 8 pq floats apart,
// a whole number of sectors, so one SectorRuns serves every eighth channel.
struct SectorRuns {
  float *lane_row; // pixel g, or g - 8 where late
  int lim;         // the row's pixels from lane_row
  bool late;       // g >= u
};
__device__ __forceinline__ SectorRuns sector_runs(float *row, int q_left, int g) {
  const int u = (int)((0u - (uint32_t)(reinterpret_cast<uintptr_t>(row) >> 2)) & 7u);
  const bool late = g >= u;
  return {row + (g - 8 * late), q_left - g + 8 * late, late};
}
__device__ __forceinline__ void store_sector_runs(float v0, float v1, float *lane_row, int lim,
                                                  bool late) {
  if (!late && 0 < lim)
    __stcs(lane_row, v0);
  if (8 < lim)
    __stcs(lane_row + 8, late ? v0 : v1);
  if (late && 16 < lim)
    __stcs(lane_row + 16, v1);
}

// store_tile's job for one 16-pixel mma row per warp (T::MI == 1) by store_sector_runs: out_warp
// is the warp's first pixel of channel 0's plane, q_left the row's pixels from there. The runs'
// geometry is the lane's two channels' (ch_lane, ch_lane + 1), worked out once instead of per
// channel (~30 instructions of 64-bit address and alignment arithmetic per two values): with
// the row-channel k-loop's spills gone, mish-mish tf32 -15% (bench/NOTES.md v83).
template <class T, class Epi>
__device__ __forceinline__ void store_tile_aligned(const Epi &epi, float (&acc)[T::NI][4],
                                                   float *out_warp, int64_t pq, int ch_lane,
                                                   int k, int q_left, int g) {
  static_assert(T::MI == 1, "one 16-pixel row per warp");
  SectorRuns runs[2];
#pragma unroll
  for (int h = 0; h < 2; ++h)
    runs[h] = sector_runs(out_warp + (int64_t)(ch_lane + h) * pq, q_left, g);
#pragma unroll
  for (int ni = 0; ni < T::NI; ++ni) {
    float(&a)[1][4] = reinterpret_cast<float(&)[1][4]>(acc[ni]);
    epi.apply(a);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int lim = ch_lane + 8 * ni + h < k ? runs[h].lim : 0;
      store_sector_runs(a[0][h], a[0][2 + h], runs[h].lane_row + 8 * ni * pq, lim, runs[h].late);
    }
  }
}

// The same batch (16 K values) as one fp16 k-step (StreamF16Tile; kcp a multiple of 16): the
// TF32 fragments of kb0 and kb0 + 8, lane (g, t)'s K values t, t + 4, 8 + t, 12 + t put in its
// fp16 slots 2t, 2t + 1, 2t + 8, 2t + 9 (as wg_pair_step does; stream_weights_kernel lays B out
// to match), one m64n128k16 (a k-step of B is TF32's bytes: the same descriptor steps). The
// guard is always true (kb0 < kcp), but without it ptxas serialized these wgmmas (C7513: it
// gave both register sets the same registers); with it, it fences them as it does
// stream_batch's (C7519) and keeps the two sets apart, as v30 found for TF32.
__device__ __forceinline__ void stream_batch_f16(float (&acc)[16][4], uint32_t (&a)[4], int kb0,
                                                 int kcp, const int *koff_lane, const char *patch,
                                                 int a_lane, uint64_t desc) {
  constexpr uint64_t DESC_PER_KSTEP = StreamTile::BN * 16 * 2 / 16;
  if (kb0 < kcp) {
    float raw[2][4];
    load_a16<1>(raw[0], koff_lane, kb0, patch, a_lane, 4);
    load_a16<1>(raw[1], koff_lane, kb0 + 8, patch, a_lane, 4);
#pragma unroll
    for (int j = 0; j < 2; ++j) { // registers 2j (row g) and 2j + 1 (row g + 8)
      a[2 * j] = pack_f16(raw[j][0], raw[j][2]);
      a[2 * j + 1] = pack_f16(raw[j][1], raw[j][3]);
    }
  }
  wg_fence();
  if (kb0 < kcp)
    wg_mma_m64n128k16_f16(acc, a, desc + (uint64_t)(kb0 / 16) * DESC_PER_KSTEP);
  wg_commit();
}

// One K chunk: batches alternate between the register sets first and second (the caller
// alternates which goes first from chunk to chunk when a chunk has an odd number of batches,
// so that a set is never reloaded while the batch before last may still read it). After the
// first batch, wait_group 1 leaves only that batch in flight: the previous chunk's wgmmas are
// complete, and on_prev_done releases its stage.
template <class OnPrevDone>
__device__ __forceinline__ void stream_chunk(float (&acc)[16][4], uint32_t (&first)[2][4],
                                             uint32_t (&second)[2][4], int kcp,
                                             const int *koff_lane, const char *patch, int a_lane,
                                             uint64_t desc, OnPrevDone on_prev_done) {
  constexpr int BATCH_K = 8 * StreamTile::KS;
  wg_wait<1>();
  stream_batch(acc, first, 0, kcp, koff_lane, patch, a_lane, desc);
  wg_wait<1>();
  on_prev_done();
#pragma unroll 1
  for (int kb = BATCH_K; kb < kcp; kb += 2 * BATCH_K) {
    stream_batch(acc, second, kb, kcp, koff_lane, patch, a_lane, desc);
    if (kb + BATCH_K >= kcp)
      break;
    wg_wait<1>();
    stream_batch(acc, first, kb + BATCH_K, kcp, koff_lane, patch, a_lane, desc);
    if (kb + 2 * BATCH_K < kcp)
      wg_wait<1>();
  }
}

// The same chunk on fp16 (stream_batch_f16; one register set of 4 per batch), each batch after
// its own wait_group 1 as in stream_split_chunk.
template <class OnPrevDone>
__device__ __forceinline__ void stream_chunk_f16(float (&acc)[16][4], uint32_t (&first)[2][4],
                                                 uint32_t (&second)[2][4], int kcp,
                                                 const int *koff_lane, const char *patch,
                                                 int a_lane, uint64_t desc,
                                                 OnPrevDone on_prev_done) {
  wg_wait<1>();
  stream_batch_f16(acc, first[0], 0, kcp, koff_lane, patch, a_lane, desc);
  wg_wait<1>();
  on_prev_done();
#pragma unroll 1
  for (int kb = 16; kb < kcp; kb += 32) {
    wg_wait<1>();
    stream_batch_f16(acc, second[0], kb, kcp, koff_lane, patch, a_lane, desc);
    if (kb + 16 >= kcp)
      break;
    wg_wait<1>();
    stream_batch_f16(acc, first[0], kb + 16, kcp, koff_lane, patch, a_lane, desc);
  }
}

template <bool F16, class OnPrevDone>
__device__ __forceinline__ void stream_chunk_of(float (&acc)[16][4], uint32_t (&first)[2][4],
                                                uint32_t (&second)[2][4], int kcp,
                                                const int *koff_lane, const char *patch,
                                                int a_lane, uint64_t desc,
                                                OnPrevDone on_prev_done) {
  if constexpr (F16)
    stream_chunk_f16(acc, first, second, kcp, koff_lane, patch, a_lane, desc, on_prev_done);
  else
    stream_chunk(acc, first, second, kcp, koff_lane, patch, a_lane, desc, on_prev_done);
}

// A split k-step of entry 2: 3xTF32 (8 K values) or fp16 pairs (16).
template <bool PAIRS>
__device__ __forceinline__ void stream_split_step(float (&part)[8][4], uint32_t (&big)[4],
                                                  uint32_t (&small)[4], int kb0,
                                                  const int *koff_lane, const char *patch,
                                                  int a_lane, uint64_t desc_big,
                                                  uint64_t desc_small, int accumulate) {
  if constexpr (PAIRS)
    wg_pair_step<StreamPairsTile, false>(part, big, small, kb0, koff_lane, patch, a_lane,
                                         desc_big, desc_small, 0, accumulate);
  else
    wg_split_step<StreamSplitTile, 1, false>(part, big, small, kb0, koff_lane, patch, a_lane, 4,
                                             desc_big, desc_small, 0, accumulate);
}

// Entry 2's K chunk (3xTF32, one k-step per batch; PAIRS: fp16 pairs, 16 K values per k-step):
// the batches alternate between the A register sets first and second across chunks (the caller
// passes first = the set the previous chunk did not end on), so that a set is reloaded only
// once the batch two back is done (wait_group 1). part sums two chunks (54 accumulations at 72
// K per chunk, v32; v5's limit for the tensor cores' truncating adds came at 1728) before it is
// added to acc with a rounded FADD: a fresh chunk drains the warpgroup (wait_group 0), adds
// part and starts it again; the other waits only for the batch before last, and once its first
// batch is in flight for the previous chunk's last. Either way on_prev_done then releases that
// chunk's stage. add: whether part holds a sum to add (not at a tile's first chunk).
template <bool PAIRS, class OnPrevDone>
__device__ __forceinline__ void stream_split_chunk(float (&acc)[8][4], float (&part)[8][4],
                                                   uint32_t (&first)[2][4],
                                                   uint32_t (&second)[2][4], bool fresh,
                                                   bool add, int kcp, const int *koff_lane,
                                                   const char *patch, int a_lane,
                                                   uint64_t desc_big, uint64_t desc_small,
                                                   OnPrevDone on_prev_done) {
  constexpr int KSTEP = PAIRS ? 16 : 8;
  if (fresh) {
    wg_wait<0>();
    on_prev_done();
    if (add)
      wg_add_part(acc, part);
  } else {
    wg_wait<1>();
  }
  stream_split_step<PAIRS>(part, first[0], first[1], 0, koff_lane, patch, a_lane, desc_big,
                           desc_small, !fresh);
  if (!fresh) {
    wg_wait<1>();
    on_prev_done();
  }
#pragma unroll 1
  for (int kb = KSTEP; kb < kcp; kb += 2 * KSTEP) {
    wg_wait<1>();
    stream_split_step<PAIRS>(part, second[0], second[1], kb, koff_lane, patch, a_lane, desc_big,
                             desc_small, 1);
    if (kb + KSTEP >= kcp)
      break;
    wg_wait<1>();
    stream_split_step<PAIRS>(part, first[0], first[1], kb + KSTEP, koff_lane, patch, a_lane,
                             desc_big, desc_small, 1);
  }
}

// Shared memory (cf_wg_stream_layout_make): n_stages stages of [patch segments | the chunk's
// weights (BN x kcp, canonical order; T::SPLIT: big halves, then small)], the K-offset table,
// the bias (BN floats), for fp16 pairs the channels' 2^-e (BN floats), an mbarrier and a
// counter per stage. weight: the laid-out weights (cfk_wg_stream_weights), not [K][C][R][S];
// fp16 pairs: then every channel's 2^e (stream_weight_scales_kernel).
template <class T, class Epi>
__global__ void __launch_bounds__(T::THREADS, 1)
    conv_stream_kernel(const __grid_constant__ cfk_mma_params prm, const __grid_constant__ Epi epi,
                       const float *__restrict__ input, const float *__restrict__ weight,
                       const float *__restrict__ bias, float *__restrict__ output) {
  constexpr int BM = T::BM, BN = T::BN, WARPS = T::WARPS, NI = T::NI;
  static_assert(T::MI == 1 && T::THREADS == 512 && BN == 8 * NI, "one 16-pixel row per warp");
  constexpr bool F16 = IsF16<T>::value;
  // a rerun behind the fp16 kernel's range guard: nothing to do unless the guard tripped
  if (!F16 && prm.range_guard != nullptr && *prm.range_guard == 0)
    return;
  extern __shared__ __align__(128) float smem[];
  float *stages = smem;
  int *koff = reinterpret_cast<int *>(stages + prm.n_stages * prm.stage_floats);
  float *bias_sm = reinterpret_cast<float *>(koff + prm.kcp);
  uint64_t *stage_full = reinterpret_cast<uint64_t *>(bias_sm + (F16 ? 2 : 1) * BN);
  uint32_t *stage_done = reinterpret_cast<uint32_t *>(stage_full + prm.n_stages);
  (void)input; // the patch arrives through prm.patch_map

  const int tid = (int)threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int m_warp = warp * 16;
  const int n0 = (int)blockIdx.y * BN;

  // one stage's weights: a float per value (TF32), two (3xTF32's big and small), half of one
  // (fp16), or two planes of halves (fp16 pairs)
  const int w_floats =
      T::SPLIT ? (F16 ? 1 : 2) * BN * prm.kcp : (F16 ? BN * prm.kcp / 2 : BN * prm.kcp);
  const float *w_block = weight + (int64_t)blockIdx.y * prm.n_chunks * w_floats;

  // ---- per-block set-up: K offsets, each segment's run of zeros, bias (and the channels'
  // 2^-e), mbarriers ----
  fill_row_k_offsets(koff, prm, tid, T::THREADS);
  zero_patch_runs(stages, prm, tid, T::THREADS);
  for (int i = tid; i < BN; i += T::THREADS)
    bias_sm[i] = prm.shift + (bias != nullptr && n0 + i < prm.g.k ? bias[n0 + i] : 0.0f);
  if constexpr (F16) {
    // The products come in the weights' scaled units (each channel's 2^e, stored after every
    // block's weights): the sums start at the bias in those units too and are scaled back once
    // per tile, before the epilogue. Powers of two: the same roundings as unscaled sums.
    // Pairs: the input's fixed 2^6 (kPairsInputScale) too.
    const float *scales = weight + (int64_t)gridDim.y * prm.n_chunks * w_floats;
    for (int i = tid; i < BN; i += T::THREADS) {
      const float units = scales[n0 + i] * (T::SPLIT ? kPairsInputScale : 1.0f);
      bias_sm[i] *= units;
      bias_sm[BN + i] = 1.0f / units; // the 2^-e after the bias
    }
  }
  if (tid == 0)
    stage_ring_init(stage_full, stage_done, prm.n_stages);
  __syncthreads();

  const bool pairs = !T::SPLIT && F16 && prm.store_pairs && prm.g.q % 2 == 0 &&
                     (reinterpret_cast<uintptr_t>(output) & 7) == 0;
  const int *koff_lane = koff + t;
  const int a_seg = m_warp / prm.seg_pixels;
  const int a_lane =
      (a_seg * prm.seg_floats + prm.tma_lead) * 4 + (m_warp - a_seg * prm.seg_pixels + g) * 4;
  const uint32_t patch_bytes = (uint32_t)prm.tma_bytes;

  // ---- the stage sequence (my tiles x chunks) on a ring of n_stages buffers; every thread
  // keeps the load cursor, the thread with issuer set issues ----
  const int first_tile = (int)(prm.m_tiles * blockIdx.x / gridDim.x);
  const int end_tile = (int)(prm.m_tiles * (blockIdx.x + 1) / gridDim.x);
  int load_tile = first_tile, load_chunk = 0, load_buf = 0;
  auto issue_stage = [&](bool issuer) {
    if (issuer) {
      float *stage = stages + load_buf * prm.stage_floats;
      const RowTile rt = row_tile(prm, load_tile, BM);
      const int x0 = rt.q0 - prm.g.pad_w - prm.tma_lead; // unit column stride
      const int y0 = rt.p * prm.g.stride_h - prm.g.pad_h;
      uint64_t *bar = stage_full + load_buf;
      mbar_expect_bytes(bar, patch_bytes + (uint32_t)w_floats * 4);
      for (int seg = 0; seg * prm.seg_pixels < BM; ++seg)
        tma_load_4d(stage + seg * prm.seg_floats, &prm.patch_map, x0 + seg * prm.seg_pixels, y0,
                    load_chunk * prm.cc, rt.n, bar);
      bulk_load(stage + prm.patch_floats, w_block + (int64_t)load_chunk * w_floats,
                (uint32_t)w_floats * 4, bar);
    }
    load_buf = load_buf + 1 == prm.n_stages ? 0 : load_buf + 1;
    if (++load_chunk == prm.n_chunks) {
      load_chunk = 0;
      ++load_tile;
    }
  };
  // A warp done with buffer b counts itself out; the last of the block's warps refills it.
  auto release_stage = [&](int b) {
    const bool last = stage_count_out(stage_done, b, WARPS, lane);
    if (load_tile < end_tile)
      issue_stage(last);
  };
  for (int b = 0; b < prm.n_stages && load_tile < end_tile; ++b)
    issue_stage(tid == 0);

  // Chunks of an odd number of batches (TF32: two k-steps each, 3xTF32: one) end on the A
  // register set they began with, so the next one begins on the other (every tile ends
  // drained, so each begins on set0). The sets hold TF32's two k-steps of A, or 3xTF32's big
  // and small halves of one.
  const int batches = F16        ? prm.kcp / 16
                      : T::SPLIT ? prm.kcp / 8
                                 : (prm.kcp + 8 * StreamTile::KS - 1) / (8 * StreamTile::KS);
  const bool alternate = batches % 2 == 1;
  float acc[NI][4];
  float part[T::SPLIT ? NI : 1][4]; // 3xTF32: the running two-chunk sum (stream_split_chunk)
  uint32_t set0[2][4], set1[2][4];
  uint32_t full_parity = 0;
  int buf = 0, prev_buf = 0;
  for (int tile = first_tile; tile < end_tile; ++tile) {
#pragma unroll
    for (int ni = 0; ni < NI; ++ni) {
      const float2 bv = *reinterpret_cast<const float2 *>(bias_sm + ni * 8 + 2 * t);
      acc[ni][0] = acc[ni][2] = bv.x;
      acc[ni][1] = acc[ni][3] = bv.y;
    }
#pragma unroll 1
    for (int chunk = 0; chunk < prm.n_chunks; ++chunk) {
      mbar_wait(stage_full + buf, (full_parity >> buf) & 1);
      full_parity ^= 1u << buf;
      const float *stage = stages + buf * prm.stage_floats;
      const char *patch = reinterpret_cast<const char *>(stage);
      const uint64_t desc = wg_desc(smem_addr(stage + prm.patch_floats), BN * 16, 128);
      const int release_buf = prev_buf;
      auto on_prev_done = [&]() {
        if (chunk > 0)
          release_stage(release_buf);
      };
      if constexpr (T::SPLIT) {
        const uint64_t desc_small = desc + (uint64_t)(BN * prm.kcp * (F16 ? 2 : 4) / 16);
        const bool fresh = (chunk & 1) == 0;
        if (alternate && (chunk & 1))
          stream_split_chunk<F16>(acc, part, set1, set0, fresh, chunk > 0, prm.kcp, koff_lane,
                                    patch, a_lane, desc, desc_small, on_prev_done);
        else
          stream_split_chunk<F16>(acc, part, set0, set1, fresh, chunk > 0, prm.kcp, koff_lane,
                                    patch, a_lane, desc, desc_small, on_prev_done);
      } else {
        if (alternate && (chunk & 1))
          stream_chunk_of<F16>(acc, set1, set0, prm.kcp, koff_lane, patch, a_lane, desc,
                               on_prev_done);
        else
          stream_chunk_of<F16>(acc, set0, set1, prm.kcp, koff_lane, patch, a_lane, desc,
                               on_prev_done);
      }
      prev_buf = buf;
      buf = buf + 1 == prm.n_stages ? 0 : buf + 1;
    }
    wg_wait<0>();
    if constexpr (T::SPLIT)
      wg_add_part(acc, part);
    release_stage(prev_buf);
    wg_pin(acc);
    if constexpr (F16) // back from the sums' units; the range guard
      unscale_sums_guarded(acc, bias_sm + BN + 2 * t, prm.range_guard);

    const RowTile rt = row_tile(prm, tile, BM);
    float *out_lane =
        output + ((int64_t)rt.n * prm.g.k * prm.g.p + rt.p) * prm.g.q + rt.q0 + m_warp + g;
    const int q_left = prm.g.q - rt.q0 - m_warp - g;
    // entry 2 spills ~50-100 bytes for both paths at its 128 cap; entry 1 on TF32 measured
    // +1.2% with the pairs (bench/NOTES.md v56)
    if (prm.store_aligned)
      store_tile_aligned<T>(epi, acc, out_lane - g, prm.pq, n0 + 2 * t, prm.g.k, q_left + g, g);
    else if (!T::SPLIT && F16 && pairs)
      store_tile_pairs<T>(epi, acc, out_lane, prm.pq, n0 + 2 * t, prm.g.k, q_left, lane);
    else
      store_tile<T>(epi, acc, out_lane, prm.pq, n0 + 2 * t, prm.g.k, q_left);
  }
}

template <class T, class Epi>
const void *stream_kernel_of_epi() {
  return (const void *)conv_stream_kernel<T, Epi>;
}

// A streamed kernel of a chain (RELU runs the generic epilogue, as in the row tiles).
template <class T>
const void *stream_kernel_of(int chain) {
  switch (chain) {
  case CFK_EPI_NONE: return stream_kernel_of_epi<T, CfkEpiFixed<>>();
  case CFK_EPI_MISH: return stream_kernel_of_epi<T, CfkEpiFixed<CFK_OP_MISH>>();
  case CFK_EPI_MISH_MISH: return stream_kernel_of_epi<T, CfkEpiFixed<CFK_OP_MISH, CFK_OP_MISH>>();
  case CFK_EPI_RELU:
  case CFK_EPI_GENERIC: return stream_kernel_of_epi<T, CfkEpiGeneric>();
  default: return nullptr;
  }
}

// Weights [K][C][R][S] -> per (channel tile y, chunk): BN x kcp values in the canonical
// K-major order (value k of channel nl at (k / 4) * BN * 4 + (nl / 8) * 32 + (nl % 8) * 4 +
// k % 4), zero past K, past the chunk's kc values and past C*R*S; SPLIT: that block of big
// halves (rounded to TF32), then the block of small ones (split_tf32), for each chunk.
// F16 (kcp a multiple of 16): each weight times its channel's 2^e (scales, from
// stream_weight_scales_kernel), as an fp16 plane of BN x kcp values (SPLIT: a hi, then a lo
// plane; a block of BN x kcp / 2 floats, or BN x kcp) in pair_weight_slot's order.
template <int BN, bool SPLIT, bool F16 = false>
__global__ void stream_weights_kernel(const float *__restrict__ weight, float *__restrict__ laid,
                                      int k_total, int crs, int kc, int kcp, int n_chunks,
                                      int64_t count, const float *__restrict__ scales,
                                      const uint32_t *__restrict__ range_guard) {
  if (range_guard != nullptr && *range_guard == 0) // a rerun's weights, not needed this time
    return;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t block = i / (BN * kcp); // (channel tile, chunk)
    const int rest = (int)(i - block * BN * kcp);
    const int chunk = (int)(block % n_chunks), tile_n = (int)(block / n_chunks);
    const int nl = rest / kcp, k = rest - nl * kcp;
    const int n = tile_n * BN + nl, kg = chunk * kc + k;
    const bool ok = n < k_total && k < kc && kg < crs;
    const float w = ok ? weight[(int64_t)n * crs + kg] : 0.0f;
    if constexpr (F16) {
      __half *plane = reinterpret_cast<__half *>(laid + block * BN * kcp / (SPLIT ? 1 : 2));
      __half *dst = plane + pair_weight_slot(nl, k, BN);
      const float ws = w * scales[tile_n * BN + nl];
      const __half hi = __float2half_rn(ws);
      dst[0] = hi;
      if constexpr (SPLIT)
        dst[BN * kcp] = __float2half_rn(ws - __half2float(hi));
      continue;
    }
    float *dst = laid + block * (SPLIT ? 2 : 1) * BN * kcp + (k / 4) * BN * 4 + (nl / 8) * 32 +
                 (nl % 8) * 4 + k % 4;
    if constexpr (SPLIT) {
      uint32_t big, small;
      split_tf32(w, big, small);
      dst[0] = __uint_as_float(big);
      dst[BN * kcp] = __uint_as_float(small);
    } else {
      dst[0] = w;
    }
  }
}

// fp16 weights: each of the n_total channels' (grid_n x BN; one warp each) pair_weight_scale
// (1 for a channel past K).
__global__ void stream_weight_scales_kernel(const float *__restrict__ weight,
                                            float *__restrict__ scales, int k_total, int crs,
                                            int n_total) {
  const int n = (int)((blockIdx.x * blockDim.x + threadIdx.x) / 32), lane = threadIdx.x % 32;
  if (n >= n_total)
    return;
  const bool live = n < k_total;
  const float scale =
      warp_pair_weight_scale(weight + (int64_t)(live ? n : 0) * crs, crs, live, lane);
  if (lane == 0)
    scales[n] = scale;
}

} // namespace

#endif
