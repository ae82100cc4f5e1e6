#ifndef CF_KERNELS_CUDA_CONV_ROWTILE_CUH
#define CF_KERNELS_CUDA_CONV_ROWTILE_CUH
// Fused conv2d (NCHW fp32) + bias + epilogue on tensor cores, either one TF32 product
// (CF_MATH_TF32) or the 3xTF32 split (CF_MATH_FP32: a = big + small, keep big*big +
// big*small + small*big, accumulate in fp32). The k-loop runs on mma.sync m16n8k8 (sm_80+,
// instantiated by conv_mma.cu) or, for T::WG tiles, on wgmma m64n64k8 (sm_90a, instantiated
// by conv_wgmma.cu alone); everything else is shared.
//
// Tiling ("row tiles"): a tile is BM consecutive output pixels of one output row (image n,
// row p, columns q0 .. q0+BM) times BN output channels. Blocks are persistent: block
// (x, y) owns channel tile y and the x-th of gridDim.x contiguous runs of row tiles. The GEMM K
// dimension (c, r, s) is walked in chunks of CC input channels; per (tile, chunk) a pipeline
// stage holds the raw input patch the row tile reads (CC channels x R rows x patch_width
// columns, zero-filled outside the image and past C), fetched with cp.async (16 bytes where
// the row is aligned) or, in the TMA kernels (T::TMA), as one bulk tensor copy per patch
// segment issued by one thread, while the previous stage is multiplied. The block's weights
// stay in shared memory for its whole life when they fit ("resident"); otherwise each stage
// also carries the chunk's weights. A fragments are gathered straight from the patch (im2col
// happens in the index: element (m, k) is patch[koff[k] + m*stride_w]).
// Epilogue: the accumulators start at bias + folded shift; the op chain runs on them in
// registers. Staged (T::STAGED, when the planner found room): the tile goes through shared
// memory and leaves as 16-byte stores of whole 32-byte sectors (StagedPart below). Otherwise
// each warp store writes 8 consecutive pixels of 4 channels straight into NCHW.
#include <cstdint>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cf_constants.h"
#include "common/mma_layout.h"
#include "kernels_cuda/epilogue.cuh"
#include "kernels_cuda/launch.h"
#include "kernels_cuda/tma.cuh"
#include "kernels_cuda/wgmma.cuh"

namespace {

// 4-byte async copy global -> shared; valid == false writes a zero (padding, out of range).
__device__ __forceinline__ void cp_async4(float *dst, const float *src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(dst)),
               "l"(src), "r"(valid ? 4 : 0));
}
// 16-byte async copy; both addresses 16-byte aligned.
__device__ __forceinline__ void cp_async16(float *dst, const float *src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// TF32 operands. The tensor cores read the top 19 bits of each 32-bit register, so a float
// is a valid (truncated) TF32 operand as it is. For 3xTF32, big is x rounded to nearest TF32,
// ties away from zero (unbiased: truncation biased deep sums) and small = x - big (exact in
// fp32) the rest. The rounding is cvt.rna.tf32.f32's without its Inf/NaN test (ptxas emits
// FSETP + SEL around the same add and mask: 2 of the 3xTF32 k-step's ~47 instructions per
// element, v31): half a TF32 ulp added to the magnitude bits, the 13 below TF32 cleared. Inf
// stays Inf; a NaN may become a zero or an Inf, but then small = x - big is NaN, so a NaN
// input still gives a NaN output, as with cvt.
__device__ __forceinline__ void split_tf32(float x, uint32_t &big, uint32_t &small) {
  big = (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
  small = __float_as_uint(x - __uint_as_float(big));
}

// x0, x1 as fp16 pairs hi + lo for the fp16-pair products (conv_stream.cuh, conv_flat.cuh;
// bench/NOTES.md v49, v51, v54): hi = fp16(x) rounded to nearest even, lo = fp16(x - hi) (the
// residual is exact in fp32), x0 in each register's low half (the lower K of an mma
// fragment). fp16 carries TF32's 11 significant bits: wherever hi and lo stay normal this is
// 3xTF32's split with round-to-nearest; past 65504, hi is inf.
__device__ __forceinline__ uint32_t pack_f16(float x0, float x1) { // hi alone
  const __half2 h = __floats2half2_rn(x0, x1);
  return *reinterpret_cast<const uint32_t *>(&h);
}
// Pairs take the input times this fixed power of two before the split: lo stays a normal fp16
// number for |x| >= 2^-9 (unscaled: 2^-3), so tensors of small inputs keep fp32's relative L2;
// inputs past 65504 / 64 = 1023.98 then trip the range guard, which reruns them on 3xTF32
// (bench/NOTES.md v53, bench/fp16_pair_accuracy.py's fp16x2-A2^6). The products come back in
// 2^(e + 6) units, undone with the weights' 2^-e once per tile.
constexpr float kPairsInputScale = 64.0f;
__device__ __forceinline__ void split_f16(float x0, float x1, uint32_t &hi, uint32_t &lo) {
  const __half2 h = __floats2half2_rn(x0, x1);
  const float2 hf = __half22float2(h);
  const __half2 l = __floats2half2_rn(x0 - hf.x, x1 - hf.y);
  hi = *reinterpret_cast<const uint32_t *>(&h);
  lo = *reinterpret_cast<const uint32_t *>(&l);
}

__device__ __forceinline__ void mma_tf32(float (&d)[4], const uint32_t (&a)[4],
                                         const uint32_t (&b)[2]) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// STAGED_: the output tile leaves through shared memory (see StagedPart). A compile-time
// choice: both store paths in one kernel cost the 3xTF32 kernels ~100 bytes of spills at the
// 128-register cap.
// WG_: the k-loop runs on warpgroup MMA (sm_90a, conv_wgmma.cu only): each warpgroup of 4
// warps owns 64 pixels x all BN = 64 channels (warp tile 16 x 64, the same accumulator
// layout as mma.sync's), A comes from registers as for mma.sync, B straight from the
// resident weights in shared memory (no B fragment loads at all).
// TMA_ (sm_90, resident weights): one thread loads each stage's patch as bulk tensor copies
// (params patch_map, one box per segment of seg_pixels pixels) that count their bytes in on
// the stage's mbarrier, instead of every warp issuing cp.asyncs row by row.
template <int BM_, int BN_, int WM_, int WN_, bool SPLIT_, bool STAGED_, bool WG_ = false,
          bool TMA_ = false>
struct MmaTile {
  static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_;
  static constexpr bool SPLIT = SPLIT_, STAGED = STAGED_, WG = WG_, TMA = TMA_;
  static constexpr int WARPS_M = BM / WM, WARPS_N = BN / WN;
  static constexpr int WARPS = WARPS_M * WARPS_N;
  static constexpr int THREADS = 32 * WARPS;
  static constexpr int MI = WM / 16, NI = WN / 8; // mma tiles per warp
  // Register cap of 128 per thread: 16 warps per SM whatever the block size. (A 64x32 warp
  // tile with 8 warps and 235+ registers measured no faster: bench/NOTES.md, v4.) The wgmma
  // kernels run one block per SM (the resident weights fill shared memory).
  static constexpr int MIN_BLOCKS = WG || THREADS >= 512 ? 1 : 512 / THREADS;
  // wgmma: k-steps per batch (their A fragments are loaded, then the batch's wgmmas issued;
  // two register sets alternate, see wg_chunk). 3xTF32 holds big and small halves and a chunk
  // accumulator: one k-step per batch within 128 registers.
  static constexpr int WG_KSTEPS = SPLIT ? 1 : 5;
  static_assert(BM % WM == 0 && BN % WN == 0 && WM % 16 == 0 && WN % 8 == 0, "warp tiling");
  static_assert(!WG || (WM == 16 && WN == 64 && BN == 64 && BM % 64 == 0),
                "wgmma tiles: warpgroups of 64 pixels x 64 channels");
  static_assert(!TMA || BM % 64 == 0, "TMA patch segments are 64 or 128 pixels");
};

// Where a row tile lies: image n, output row p, first column q0. Row tiles are numbered
// in int32 (the planner keeps m_tiles < 2^31), so this costs 32-bit divisions only.
struct RowTile {
  int n, p, q0;
};

// n / f.d for 0 <= n < 2^31 (common/fastdiv.h): three instructions instead of ~20.
__device__ __forceinline__ int fast_div(int n, const cf_fastdiv &f) {
  return (int)((__umulhi((unsigned)n, f.mul) + (unsigned)n) >> f.shift);
}

// The K-offset table of the row-tile patch layouts: for each K index of a chunk (channel,
// kernel row, kernel column) its byte offset in a stage's patch; padded K indices point at the
// zero run. Filled by the block's threads together (the caller synchronises).
__device__ __forceinline__ void fill_row_k_offsets(int *koff, const cfk_mma_params &prm, int tid,
                                                   int threads) {
  const int RS = prm.g.r * prm.g.s;
  for (int k = tid; k < prm.kcp; k += threads) {
    int off = prm.zero_base;
    if (k < prm.kc) {
      const int cl = k / RS, rem = k - cl * RS, r = rem / prm.g.s, s = rem - r * prm.g.s;
      off = (cl * prm.g.r + r) * prm.patch_pitch + s * prm.g.dil_w;
    }
    koff[k] = off * 4;
  }
}

// Each patch segment's run of zeros (padded K indices read it), in every stage: the patch
// itself is written by every stage's loads, the runs never. Block-wide, as above.
__device__ __forceinline__ void zero_patch_runs(float *stages, const cfk_mma_params &prm, int tid,
                                                int threads) {
  for (int b = 0; b < prm.n_stages; ++b)
    for (int seg0 = 0; seg0 < prm.patch_floats; seg0 += prm.seg_floats)
      for (int i = seg0 + prm.zero_base + tid; i < seg0 + prm.seg_floats; i += threads)
        stages[b * prm.stage_floats + i] = 0.0f;
}

__device__ __forceinline__ RowTile row_tile(const cfk_mma_params &prm, int tile, int bm) {
  RowTile t;
  const int np = fast_div(tile, prm.div_q_tiles);
  t.q0 = (tile - np * prm.q_tiles) * bm;
  t.n = fast_div(np, prm.div_p);
  t.p = np - t.n * prm.g.p;
  return t;
}

// What the patch loads of one row tile need, whatever the chunk: worked out once per tile
// (a tile spans n_chunks stages; per chunk this was ~64 instructions per warp, a quarter of the
// patch loads' cost on mish-mish: bench/NOTES.md, v13).
struct PatchPlan {
  const float *src0; // row 0 of channel 0 of the patch, column 0 (may lie outside the image
                     // when there is padding; only in-image addresses are ever read)
  int ih0;           // input row of patch row 0 (kernel row 0)
  int x_lo, x_hi;    // the in-image columns of the patch: [x_lo, x_hi)
  int v_lo, v_hi;    // the whole 16-byte groups inside them (v_lo == width: none)
  int s_end;         // the scalar head (left padding, ragged start) runs to here
};

__device__ __forceinline__ PatchPlan patch_plan(const cfk_mma_params &prm, const float *input,
                                                const RowTile &rt) {
  PatchPlan pp;
  const int width = prm.patch_width;
  const int iw0 = rt.q0 * prm.g.stride_w - prm.g.pad_w;
  pp.ih0 = rt.p * prm.g.stride_h - prm.g.pad_h;
  pp.src0 = input + (int64_t)rt.n * prm.chw + (int64_t)pp.ih0 * prm.g.w + iw0;
  pp.x_lo = iw0 < 0 ? -iw0 : 0;
  pp.x_hi = min(width, prm.g.w - iw0);
  // Interior 16-byte groups when every row start shares src0's alignment (w % 4 == 0).
  const bool aligned = prm.rows_aligned && ((reinterpret_cast<uintptr_t>(pp.src0)) & 15) == 0;
  pp.v_lo = aligned ? min((pp.x_lo + 3) & ~3, width) : width;
  pp.v_hi = aligned ? max(pp.x_hi & ~3, pp.v_lo) : width;
  pp.s_end = aligned ? pp.v_lo : width;
  return pp;
}

// Issues the cp.asyncs of the input patch of (tile, chunk): one warp per patch row. A row
// costs its (channel, kernel row) and one pointer offset; the rest is the tile's PatchPlan.
template <class T>
__device__ __forceinline__ void load_patch(const cfk_mma_params &prm, const float *input,
                                           float *patch, const PatchPlan &pp, int chunk,
                                           int warp, int lane) {
  const int c0 = chunk * prm.cc;
  const int rows = prm.cc * prm.g.r, width = prm.patch_width;
  const float *src_c0 = pp.src0 + (int64_t)c0 * prm.hw;
  for (int row = warp; row < rows; row += T::WARPS) {
    const int cl = fast_div(row, prm.div_r), r = row - cl * prm.g.r;
    const int ih = pp.ih0 + r * prm.g.dil_h;
    float *dst = patch + row * prm.patch_pitch;
    if (c0 + cl >= prm.g.c || (unsigned)ih >= (unsigned)prm.g.h) {
      for (int x = lane; x < width; x += 32)
        dst[x] = 0.0f; // ordinary store: visible after the stage's barrier
      continue;
    }
    const float *src = src_c0 + (int64_t)cl * prm.hw + (int64_t)(r * prm.g.dil_h) * prm.g.w;
#pragma unroll 1
    for (int x = pp.v_lo + 4 * lane; x < pp.v_hi; x += 128)
      cp_async16(dst + x, src + x);
#pragma unroll 1
    for (int x = lane; x < pp.s_end; x += 32) // left padding and ragged start (or every column)
      cp_async4(dst + x, x >= pp.x_lo && x < pp.x_hi ? src + x : input,
                x >= pp.x_lo && x < pp.x_hi);
#pragma unroll 1
    for (int x = max(pp.v_hi, pp.s_end) + lane; x < width; x += 32) // ragged end, right padding
      cp_async4(dst + x, x < pp.x_hi ? src + x : input, x < pp.x_hi);
  }
}

// Issues the cp.asyncs of BN weight rows of one K chunk into dst (pitch w_pitch): the
// chunk's K values are contiguous in each [K][C][R][S] row.
template <class T>
__device__ __forceinline__ void load_weights(const cfk_mma_params &prm, const float *weight,
                                             float *dst, int n0, int chunk, int warp,
                                             int lane) {
  const int64_t k0 = (int64_t)chunk * prm.cc * prm.g.r * prm.g.s;
  for (int nl = warp; nl < T::BN; nl += T::WARPS) {
    const int ng = n0 + nl;
    const float *src = weight + (int64_t)ng * prm.crs + k0;
    for (int k = lane; k < prm.kcp; k += 32) {
      const bool ok = ng < prm.g.k && k < prm.kc && k0 + k < prm.crs;
      cp_async4(dst + nl * prm.w_pitch + k, ok ? src + k : weight, ok);
    }
  }
}

// The wgmma kernels' resident weights: all chunks at once, in the canonical K-major
// no-swizzle layout that wgmma reads B from (wgmma.cuh): K value k of channel nl lands at
// (k / 4) * BN * 4 + (nl / 8) * 32 + (nl % 8) * 4 + k % 4 floats, i.e. 128-byte core matrices
// of 8 channels x 4 K values, BN * 16 bytes between K groups (chunk c's k-th value is block K
// index c * kcp + k; padding is zero).
template <class T>
__device__ __forceinline__ void load_weights_wg(const cfk_mma_params &prm, const float *weight,
                                                float *dst, int n0, int warp, int lane) {
  const int k_total = prm.n_chunks * prm.kcp;
  for (int nl = warp; nl < T::BN; nl += T::WARPS) {
    const int ng = n0 + nl;
    const float *src = weight + (int64_t)ng * prm.crs;
    float *row = dst + (nl / 8) * 32 + (nl % 8) * 4;
    for (int kk = lane; kk < k_total; kk += 32) {
      const int chunk = kk / prm.kcp, k = kk - chunk * prm.kcp;
      const int kg = chunk * prm.kc + k; // index into the [C][R][S] row
      const bool ok = ng < prm.g.k && k < prm.kc && kg < prm.crs;
      cp_async4(row + (kk / 4) * (T::BN * 4) + (kk % 4), ok ? src + kg : weight, ok);
    }
  }
}

// 3xTF32 on wgmma: B's halves are split once per block (B operands come from shared memory,
// never through registers): big = round-to-nearest TF32 in place, small = the rest at
// small_dst (same layout). The caller fences and synchronises after.
__device__ __forceinline__ void split_weights_wg(float *w, float *small_dst, int n, int tid,
                                                 int threads) {
  for (int i = tid; i < n; i += threads) {
    uint32_t big, small;
    split_tf32(w[i], big, small);
    w[i] = __uint_as_float(big);
    small_dst[i] = __uint_as_float(small);
  }
}

// A and B fragments of one k-step (8 K values) of a warp's WM x WN tile.
template <class T>
struct Frags {
  float a[T::MI][4];
  float b[T::NI][2];
};

__device__ __forceinline__ float lds_at(const char *base, int byte_offset) {
  return *reinterpret_cast<const float *>(base + byte_offset);
}

// Everything in bytes so that each shared load is one register plus immediates:
// koff_lane = the lane's K-offset table (koff + lane % 4, byte offsets into the patch);
// patch = the stage's patch; a_lane = the lane's first pixel (warp's first + lane / 4) times
// stride_w, in bytes; wsm = the chunk's weights; w_lane[ni] = the byte offset of the lane's
// weight row (warp's first channel + ni * 8 + lane / 4) at column lane % 4. SW > 0 is the
// column stride known at compile time (the A offsets become immediates); SW == 0 reads
// sw_bytes (= stride_w * 4) at run time.
template <class T, int SW>
__device__ __forceinline__ void load_frags(Frags<T> &f, const int *koff_lane, int kb,
                                           const char *patch, int a_lane, int sw_bytes,
                                           const char *wsm, const int (&w_lane)[T::NI]) {
  const char *a0 = patch + koff_lane[kb] + a_lane, *a1 = patch + koff_lane[kb + 4] + a_lane;
  const int step = SW > 0 ? SW * 4 : sw_bytes; // bytes between consecutive pixels
#pragma unroll
  for (int mi = 0; mi < T::MI; ++mi) {
    const int m = mi * 16 * step;
    f.a[mi][0] = lds_at(a0, m);
    f.a[mi][1] = lds_at(a0, m + 8 * step);
    f.a[mi][2] = lds_at(a1, m);
    f.a[mi][3] = lds_at(a1, m + 8 * step);
  }
  const char *w = wsm + kb * 4;
#pragma unroll
  for (int ni = 0; ni < T::NI; ++ni) {
    f.b[ni][0] = lds_at(w, w_lane[ni]);
    f.b[ni][1] = lds_at(w, w_lane[ni] + 16);
  }
}

template <class T>
__device__ __forceinline__ void mma_frags(float (&acc)[T::MI * T::NI][4], const Frags<T> &f) {
  if constexpr (T::SPLIT) {
    uint32_t ab[T::MI][4], as[T::MI][4], bb[T::NI][2], bs[T::NI][2];
#pragma unroll
    for (int mi = 0; mi < T::MI; ++mi)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        split_tf32(f.a[mi][j], ab[mi][j], as[mi][j]);
#pragma unroll
    for (int ni = 0; ni < T::NI; ++ni)
#pragma unroll
      for (int j = 0; j < 2; ++j)
        split_tf32(f.b[ni][j], bb[ni][j], bs[ni][j]);
#pragma unroll
    for (int mi = 0; mi < T::MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < T::NI; ++ni) {
        mma_tf32(acc[mi * T::NI + ni], as[mi], bb[ni]);
        mma_tf32(acc[mi * T::NI + ni], ab[mi], bs[ni]);
        mma_tf32(acc[mi * T::NI + ni], ab[mi], bb[ni]);
      }
  } else {
    uint32_t ab[T::MI][4], bb[T::NI][2];
#pragma unroll
    for (int mi = 0; mi < T::MI; ++mi)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        ab[mi][j] = __float_as_uint(f.a[mi][j]);
#pragma unroll
    for (int ni = 0; ni < T::NI; ++ni)
#pragma unroll
      for (int j = 0; j < 2; ++j)
        bb[ni][j] = __float_as_uint(f.b[ni][j]);
#pragma unroll
    for (int mi = 0; mi < T::MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < T::NI; ++ni)
        mma_tf32(acc[mi * T::NI + ni], ab[mi], bb[ni]);
  }
}

// One k-step's A fragment of a warp's 16 pixels (the m16n8k8 layout; see load_frags).
template <int SW>
__device__ __forceinline__ void load_a16(float (&a)[4], const int *koff_lane, int kb,
                                         const char *patch, int a_lane, int sw_bytes) {
  const char *a0 = patch + koff_lane[kb] + a_lane, *a1 = patch + koff_lane[kb + 4] + a_lane;
  const int step = SW > 0 ? SW * 4 : sw_bytes;
  a[0] = lds_at(a0, 0);
  a[1] = lds_at(a0, 8 * step);
  a[2] = lds_at(a1, 0);
  a[3] = lds_at(a1, 8 * step);
}

// The same for flat tiles (conv_flat.cuh), whose lane's two pixels (g and g + 8) may lie in
// different output rows: a_lo and a_hi are their byte offsets into the patch.
__device__ __forceinline__ void load_a16_flat(float (&a)[4], const int *koff_lane, int kb,
                                              const char *patch, int a_lo, int a_hi) {
  const char *k0 = patch + koff_lane[kb], *k1 = patch + koff_lane[kb + 4];
  a[0] = lds_at(k0, a_lo);
  a[1] = lds_at(k0, a_hi);
  a[2] = lds_at(k1, a_lo);
  a[3] = lds_at(k1, a_hi);
}

// 3xTF32 on wgmma: adds a completed chunk accumulator to acc (after the wait that completed
// it; the pin keeps the compiler from reading part any earlier).
__device__ __forceinline__ void wg_add_part(float (&acc)[8][4], float (&part)[8][4]) {
  wg_pin(part);
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
      acc[i][j] += part[i][j];
}

// One 3xTF32 k-step of wgmma at kb0 (below kcp): its A fragment is loaded and split into ab
// and as, its three wgmmas issued (accumulate 0: the first restarts part) and committed as one
// group. a must not be touched again until that group has completed. FLAT: the fragment comes
// from load_a16_flat (a_lane, a_hi), else load_a16 (a_lane, sw_bytes). Branch-free: ptxas
// fences the accumulators around a wgmma that is guarded or chosen by a branch (C7519), which
// cost the 3xTF32 kernels 3-5% (v30).
template <class T, int SW, bool FLAT>
__device__ __forceinline__ void wg_split_step(float (&part)[8][4], uint32_t (&ab)[4],
                                              uint32_t (&as)[4], int kb0, const int *koff_lane,
                                              const char *patch, int a_lane, int sw_bytes,
                                              uint64_t desc_big, uint64_t desc_small, int a_hi,
                                              int accumulate) {
  constexpr uint64_t DESC_PER_KSTEP = T::BN * 8 * 4 / 16; // 8 K values of BN rows, 16 B units
  float raw[4];
  if constexpr (FLAT)
    load_a16_flat(raw, koff_lane, kb0, patch, a_lane, a_hi);
  else
    load_a16<SW>(raw, koff_lane, kb0, patch, a_lane, sw_bytes);
#pragma unroll
  for (int e = 0; e < 4; ++e)
    split_tf32(raw[e], ab[e], as[e]);
  wg_fence();
  const uint64_t off = (uint64_t)(kb0 / 8) * DESC_PER_KSTEP;
  wg_mma_m64n64k8(part, as, desc_big + off, accumulate); // 0: a fresh sum starts here
  wg_mma_m64n64k8(part, ab, desc_small + off);
  wg_mma_m64n64k8(part, ab, desc_big + off);
  wg_commit();
}

// One fp16-pair k-step of wgmma at kb0 (16 K values, below kcp): the TF32 fragments of kb0 and
// kb0 + 8 loaded as wg_split_step loads one, lane (g, t)'s K values t, t + 4, 8 + t, 12 + t put
// in its fp16 slots 2t, 2t + 1, 2t + 8, 2t + 9 (the sums run over K, so any order A and B share
// is right: pair_weight_slot lays B out in the same order), taken times kPairsInputScale and
// split into hi / lo (split_f16), three m64n64k16 issued (accumulate 0: the first restarts
// part) and committed as one group. hi / lo must not be touched again until that group has
// completed. FLAT: the fragments come from load_a16_flat (a_lane, a_hi), else load_a16 (unit
// column stride).
template <class T, bool FLAT>
__device__ __forceinline__ void wg_pair_step(float (&part)[8][4], uint32_t (&hi)[4],
                                             uint32_t (&lo)[4], int kb0, const int *koff_lane,
                                             const char *patch, int a_lane, uint64_t desc_hi,
                                             uint64_t desc_lo, int a_hi, int accumulate) {
  static_assert(T::BN == 64, "m64n64k16");
  constexpr uint64_t DESC_PER_KSTEP = T::BN * 16 * 2 / 16; // 16 B units
  float raw[2][4];
  if constexpr (FLAT) {
    load_a16_flat(raw[0], koff_lane, kb0, patch, a_lane, a_hi);
    load_a16_flat(raw[1], koff_lane, kb0 + 8, patch, a_lane, a_hi);
  } else {
    load_a16<1>(raw[0], koff_lane, kb0, patch, a_lane, 4);
    load_a16<1>(raw[1], koff_lane, kb0 + 8, patch, a_lane, 4);
    (void)a_hi;
  }
#pragma unroll
  for (int j = 0; j < 2; ++j) { // registers 2j (row g) and 2j + 1 (row g + 8)
    split_f16(raw[j][0] * kPairsInputScale, raw[j][2] * kPairsInputScale, hi[2 * j],
              lo[2 * j]);
    split_f16(raw[j][1] * kPairsInputScale, raw[j][3] * kPairsInputScale, hi[2 * j + 1],
              lo[2 * j + 1]);
  }
  wg_fence();
  const uint64_t off = (uint64_t)(kb0 / 16) * DESC_PER_KSTEP;
  wg_mma_m64n64k16_f16(part, lo, desc_hi + off, accumulate);
  wg_mma_m64n64k16_f16(part, hi, desc_lo + off);
  wg_mma_m64n64k16_f16(part, hi, desc_hi + off);
  wg_commit();
}

// fp16 products or not (only the fp16 tiles declare F16).
template <class T, class = void>
struct IsF16 {
  static constexpr bool value = false;
};
template <class T>
struct IsF16<T, decltype((void)T::F16)> {
  static constexpr bool value = T::F16;
};

// fp16 weights: the power of two 2^e that brings a channel's largest |weight| m into
// [2^14, 2^15), so that hi and lo stay normal fp16 numbers down to 2^-24 of it (an unscaled
// weight of ~0.04 has its lo below 2^-14, where fp16 keeps fewer bits: bench/NOTES.md v51); 1
// for a channel of zeros, with an inf, or whose e would leave [-100, 60] (2^-e stays a normal
// float, and the bias, which the sums start from in these units, overflows only past 2^68).
// NaN weights are skipped by fmaxf and still give NaN sums.
__device__ __forceinline__ float pair_weight_scale(float m) {
  int e = 0;
  frexpf(m, &e);
  const int sh = 15 - e;
  return m > 0.0f && isfinite(m) && sh >= -100 && sh <= 60 ? ldexpf(1.0f, sh) : 1.0f;
}

// pair_weight_scale of one channel's crs weights at src, computed by the 32 lanes of a warp
// (each lane gets it); 1 for a channel that is not live (past K).
__device__ __forceinline__ float warp_pair_weight_scale(const float *__restrict__ src, int crs,
                                                        bool live, int lane) {
  float m = 0.0f;
  for (int k = lane; live && k < crs; k += 32)
    m = fmaxf(m, fabsf(__ldg(src + k)));
#pragma unroll
  for (int o = 16; o > 0; o /= 2)
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  return pair_weight_scale(m); // 1 for m == 0
}

// Where value k (< kcp, a multiple of 16) of channel nl (< bn) goes in an fp16 plane of bn x
// kcp values (in halves from the plane's start): wgmma's K-major core matrices of 8 channels x
// 8 fp16 values (16-byte rows), k-step k / 16's slot j holding its K value t + 4 (j % 2) +
// 8 (j / 8) (t = (j % 8) / 2), as wg_pair_step and stream_batch_f16 pair A.
__device__ __forceinline__ int pair_weight_slot(int nl, int k, int bn) {
  const int kk = k % 16, slot = (kk / 8) * 8 + 2 * (kk % 4) + (kk % 8) / 4;
  return (k / 16 * 2 + slot / 8) * bn * 8 + (nl / 8) * 64 + (nl % 8) * 8 + slot % 8;
}

// fp16 products: the sums back from their channels' units (unscale_lane: the lane's first
// channel's 2^-e, then its second's; channel + 8 ni at + 8 ni), and the range guard: an input
// past fp16's 65504 became inf (pairs: inf - inf), and every sum that reads it inf or NaN; so
// does an inf or NaN in the input or the weights, which the TF32 / 3xTF32 rerun then
// propagates. Only the sums before the epilogue say so (mish maps -inf to 0): any that is not
// finite sets *range_guard (if any).
template <int NI>
__device__ __forceinline__ void unscale_sums_guarded(float (&acc)[NI][4],
                                                     const float *unscale_lane,
                                                     uint32_t *range_guard) {
  // x * 0 is 0 for finite x and NaN for inf or NaN: one FMA per sum and no branches, where a
  // chain of isfinite tests took ~4 instructions per sum and a branch per four (bench/NOTES.md
  // v81, v84: on the H200 sub-sub-mish fp32 -3.4%, mish-mish tf32 -2.2%)
  float probe[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int ni = 0; ni < NI; ++ni) {
    const float2 u = *reinterpret_cast<const float2 *>(unscale_lane + ni * 8);
    acc[ni][0] *= u.x;
    acc[ni][1] *= u.y;
    acc[ni][2] *= u.x;
    acc[ni][3] *= u.y;
#pragma unroll
    for (int e = 0; e < 4; ++e)
      probe[e] = __fmaf_rn(acc[ni][e], 0.0f, probe[e]);
  }
  if (!((probe[0] + probe[1]) + (probe[2] + probe[3]) == 0.0f) && range_guard != nullptr)
    *range_guard = 1u;
}

// One batch of wgmma: the A fragments of k-steps kb0, kb0 + 8, ... (T::WG_KSTEPS of them, as
// far as kcp reaches) are loaded into a (split for 3xTF32) and their wgmmas issued and
// committed as one group. a must not be touched again until that group has completed.
// FLAT: the fragments come from load_a16_flat (a_lane, a_hi), else load_a16 (a_lane, sw_bytes).
// (One TF32 product keeps the guards, and ptxas's fences with them: branch-free batches, with a
// shorter tail batch chosen per batch, spilled at 5 k-steps and computed wrong results at 3 on
// the H200, cause not found: v30.)
template <class T, int SW, bool FLAT = false>
__device__ __forceinline__ void wg_batch(float (&acc)[8][4], float (&part)[8][4],
                                         uint32_t (&ab)[T::WG_KSTEPS][4],
                                         uint32_t (&as)[T::WG_KSTEPS][4], int kb0, int kcp,
                                         const int *koff_lane, const char *patch, int a_lane,
                                         int sw_bytes, uint64_t desc_big, uint64_t desc_small,
                                         int a_hi = 0) {
  constexpr int KS = T::WG_KSTEPS;
  if constexpr (T::SPLIT) {
    static_assert(KS == 1, "3xTF32 batches are one k-step");
    wg_split_step<T, SW, FLAT>(part, ab[0], as[0], kb0, koff_lane, patch, a_lane, sw_bytes,
                               desc_big, desc_small, a_hi, kb0 > 0); // a chunk starts at 0
    (void)acc;
    (void)kcp;
  } else {
    constexpr uint64_t DESC_PER_KSTEP = T::BN * 8 * 4 / 16;
#pragma unroll
    for (int j = 0; j < KS; ++j)
      if (kb0 + 8 * j < kcp) {
        float raw[4];
        if constexpr (FLAT)
          load_a16_flat(raw, koff_lane, kb0 + 8 * j, patch, a_lane, a_hi);
        else
          load_a16<SW>(raw, koff_lane, kb0 + 8 * j, patch, a_lane, sw_bytes);
#pragma unroll
        for (int e = 0; e < 4; ++e)
          ab[j][e] = __float_as_uint(raw[e]);
      }
    wg_fence();
#pragma unroll
    for (int j = 0; j < KS; ++j) {
      if (kb0 + 8 * j >= kcp)
        break;
      wg_mma_m64n64k8(acc, ab[j], desc_big + (uint64_t)(kb0 / 8 + j) * DESC_PER_KSTEP);
    }
    wg_commit();
    (void)part;
    (void)as;
    (void)desc_small;
  }
}

// One K chunk on wgmma: batches alternate between two register sets, so that loading one
// batch's A fragments overlaps the tensor cores' work on the previous batch (wait_group 1:
// only the batch two back, the last user of the set about to be loaded, must be done).
// desc_big / desc_small address the chunk's first k-step of B. TF32 accumulates into acc;
// 3xTF32 into part, which holds one chunk (fresh registers per chunk, added to acc with a
// rounded FADD: see the mma.sync k-loop) and is added at the next chunk's start
// (first_chunk: nothing to add) or by the caller at the end of the tile.
template <class T, int SW, bool FLAT = false>
__device__ __forceinline__ void wg_chunk(float (&acc)[8][4], float (&part)[8][4],
                                         const int *koff_lane, int kcp, const char *patch,
                                         int a_lane, int sw_bytes, uint64_t desc_big,
                                         uint64_t desc_small, bool first_chunk, int a_hi = 0) {
  constexpr int KS = T::WG_KSTEPS;
  const int batches = (kcp + 8 * KS - 1) / (8 * KS); // the same for every chunk
  uint32_t ab0[KS][4], as0[KS][4], ab1[KS][4], as1[KS][4];
  // The previous chunk's last batch used set (batches - 1) % 2; set 0 is loaded first. 3xTF32
  // also needs all of the previous chunk in part before adding it.
  if (T::SPLIT || (batches - 1) % 2 == 0)
    wg_wait<0>();
  else
    wg_wait<1>();
  if constexpr (T::SPLIT) {
    if (!first_chunk)
      wg_add_part(acc, part);
  }
  for (int b = 0; b < batches; b += 2) {
    if (b > 0)
      wg_wait<1>();
    wg_batch<T, SW, FLAT>(acc, part, ab0, as0, b * 8 * KS, kcp, koff_lane, patch, a_lane,
                          sw_bytes, desc_big, desc_small, a_hi);
    if (b + 1 >= batches)
      break;
    wg_wait<1>();
    wg_batch<T, SW, FLAT>(acc, part, ab1, as1, (b + 1) * 8 * KS, kcp, koff_lane, patch, a_lane,
                          sw_bytes, desc_big, desc_small, a_hi);
  }
}

// Applies the chain to the warp's accumulators and streams them to NCHW, one mma tile at a
// time so that the chain's arithmetic and the stores interleave (each store instruction: 8
// consecutive pixels of 4 channels: whole 32-byte sectors only where the row's pixels start on
// one, which with q * 4-byte rows is rare: two partial sectors per run otherwise; aligning the
// runs paid on OpenCL's kernel, bench/NOTES.md v47, not here: v48). out_lane = the lane's
// first pixel of channel 0; ch_lane = the lane's first channel; each element is predicated on
// the pixel (j < q_left) and channel (< k) bounds. Measured on the H200 (bench/NOTES.md, v7):
// an unpredicated variant for interior warps was slower on sub-sub-mish (stores bunched up),
// and the chain over the whole tile before the stores slower on mish-mish fp32.
template <class T, class Epi>
__device__ __forceinline__ void store_tile(const Epi &epi, float (&acc)[T::MI * T::NI][4],
                                           float *out_lane, int64_t pq, int ch_lane, int k,
                                           int q_left) {
  float *o0 = out_lane + (int64_t)ch_lane * pq; // channel ch_lane + ni * 8, stepped below
#pragma unroll
  for (int ni = 0; ni < T::NI; ++ni, o0 += 8 * pq) {
    const int ch = ch_lane + ni * 8;
    float *o1 = o0 + pq;
    const bool ok0 = ch < k, ok1 = ch + 1 < k;
#pragma unroll
    for (int mi = 0; mi < T::MI; ++mi) {
      float(&a)[1][4] = reinterpret_cast<float(&)[1][4]>(acc[mi * T::NI + ni]);
      epi.apply(a);
      const bool in0 = mi * 16 < q_left, in1 = mi * 16 + 8 < q_left;
      if (ok0 && in0)
        __stcs(o0 + mi * 16, a[0][0]);
      if (ok1 && in0)
        __stcs(o1 + mi * 16, a[0][1]);
      if (ok0 && in1)
        __stcs(o0 + mi * 16 + 8, a[0][2]);
      if (ok1 && in1)
        __stcs(o1 + mi * 16 + 8, a[0][3]);
    }
  }
}

// The staged output (T::STAGED): where each (tile, channel) part goes. Each channel's output
// of one image is one stream of floats (rows follow rows), and a block walks a contiguous run
// of row tiles, so consecutive tiles continue each channel's stream. A part starting at
// global index g0 is staged at row[lead + j], lead = g0 % 8 (its place in a 32-byte sector);
// row[0 .. lead) holds the previous tile's unwritten tail ("carry"). Only whole sectors go
// out, as 16-byte stores, except where the stream breaks (a run's first or last tile, or an
// image boundary): there the part's edge is written element by element. Partial sectors cost
// ~50% of the store stream's speed on the H200 (bench/NOTES.md, v8).
struct StagedPart {
  int64_t tile_base; // global index of (n, channel 0, p, q0)
  int len;           // pixels in the tile: min(BM, q - q0)
  bool joined;       // the previous tile (this block's) ends where this one starts
  bool last;         // the stream breaks after this tile: flush the tail
};

// Applies the chain to the warp's accumulators and stores them into the staging rows, one mma
// tile at a time. Pixel m of channel cl (block-local) goes to stage[cl * pitch + lead + m],
// lead = (tile_base + channel * pq) % 8: the lane's channels ch_lane + ni * 8 + j share the
// lead of ch_lane + j (8 * pq is 0 mod 8), so two pointers and immediates address them all
// (fewer registers: the 3xTF32 kernels sit at the 128 cap).
template <class T, class Epi>
__device__ __forceinline__ void stage_tile(const Epi &epi, float (&acc)[T::MI * T::NI][4],
                                           float *stage_lane, int lead_base, int ch_lane,
                                           int pq8) {
  constexpr int pitch = CF_MMA_OUT_PITCH(T::BM); // the layout's out_pitch
  float *r0 = stage_lane + ((lead_base + ch_lane * pq8) & 7);
  float *r1 = stage_lane + pitch + ((lead_base + (ch_lane + 1) * pq8) & 7);
#pragma unroll
  for (int ni = 0; ni < T::NI; ++ni, r0 += 8 * pitch, r1 += 8 * pitch) {
#pragma unroll
    for (int mi = 0; mi < T::MI; ++mi) {
      float(&a)[1][4] = reinterpret_cast<float(&)[1][4]>(acc[mi * T::NI + ni]);
      epi.apply(a);
      r0[mi * 16] = a[0][0];
      r1[mi * 16] = a[0][1];
      r0[mi * 16 + 8] = a[0][2];
      r1[mi * 16 + 8] = a[0][3];
    }
  }
}

// Writes the staged tile: warp w takes channels w, w + WARPS, ... Whole 16-byte vectors from
// the sector-aligned start; the carry moves the tail (< 8 floats) to the row's front.
template <class T>
__device__ __forceinline__ void write_staged(float *stage, const StagedPart &part,
                                             float *output, int64_t pq, int n0, int k,
                                             int warp, int lane) {
  for (int cl = warp; cl < T::BN && n0 + cl < k; cl += T::WARPS) {
    float *row = stage + cl * CF_MMA_OUT_PITCH(T::BM);
    const int64_t g0 = part.tile_base + (int64_t)(n0 + cl) * pq;
    const int lead = (int)(g0 & 7);
    const int avail = lead + part.len;                // staged floats from g0 - lead
    const int whole = part.last ? avail : avail & ~7; // what goes out now
    const int first = part.joined ? 0 : lead;         // no carry: start at g0 itself
    float *dst = output + (g0 - lead);                // 32-byte aligned
    for (int i = 4 * lane; i < whole; i += 128) {
      if (i >= first && i + 4 <= whole) {
        __stcs(reinterpret_cast<float4 *>(dst + i), *reinterpret_cast<const float4 *>(row + i));
      } else {
        for (int j = max(i, first); j < min(i + 4, whole); ++j)
          __stcs(dst + j, row[j]);
      }
    }
    const int tail = avail - whole;
    const float carry = lane < tail ? row[whole + lane] : 0.0f;
    __syncwarp();
    if (lane < tail)
      row[lane] = carry;
  }
}

template <class T, class Epi, int SW>
__global__ void __launch_bounds__(T::THREADS, T::MIN_BLOCKS)
    conv_mma_kernel(const __grid_constant__ cfk_mma_params prm, const __grid_constant__ Epi epi,
                    const float *__restrict__ input, const float *__restrict__ weight,
                    const float *__restrict__ bias, float *__restrict__ output) {
  constexpr int BM = T::BM, BN = T::BN, WM = T::WM, WN = T::WN, MI = T::MI, NI = T::NI;
  extern __shared__ __align__(128) float smem[]; // TMA: segments start 128-byte aligned
  float *wres = smem;                                  // resident weights (if any)
  float *stages = smem + prm.weight_floats;            // the ring of n_stages pipeline stages
  float *staged = stages + prm.n_stages * prm.stage_floats; // the output tile (if staged)
  int *koff = reinterpret_cast<int *>(staged + prm.out_floats);
  // TMA: per stage buffer, an mbarrier its bytes land on and a count of the warps done with it
  uint64_t *stage_full = reinterpret_cast<uint64_t *>(koff + prm.kcp);
  uint32_t *stage_done = reinterpret_cast<uint32_t *>(stage_full + prm.n_stages);

  const int tid = (int)threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int m_warp = (warp % T::WARPS_M) * WM, n_warp = (warp / T::WARPS_M) * WN;
  const int n0 = (int)blockIdx.y * BN;

  // ---- per-block set-up: K offsets into the patch, the zero runs, resident weights ----
  fill_row_k_offsets(koff, prm, tid, T::THREADS);
  zero_patch_runs(stages, prm, tid, T::THREADS);
  if constexpr (T::TMA) {
    if (tid == 0) // used only after the block barrier below
      stage_ring_init(stage_full, stage_done, prm.n_stages);
  }
  if constexpr (T::WG) {
    // wgmma reads B from shared memory through the async proxy: the weights must have landed
    // (and, for 3xTF32, been split) and been fenced before the first wgmma.
    load_weights_wg<T>(prm, weight, wres, n0, warp, lane);
    cp_async_commit();
    cp_async_wait<0>();
    if constexpr (T::SPLIT) {
      __syncthreads();
      split_weights_wg(wres, wres + T::BN * prm.w_pitch, T::BN * prm.w_pitch, tid, T::THREADS);
    }
    wg_fence_shared();
    __syncthreads();
  } else if (prm.resident) {
    for (int chunk = 0; chunk < prm.n_chunks; ++chunk)
      load_weights<T>(prm, weight, wres + chunk * prm.kcp, n0, chunk, warp, lane);
    if constexpr (T::TMA) { // no cp.async group of the stages to ride in; the mbarriers'
      cp_async_commit();     // initialisation must be seen before anyone waits on them
      cp_async_wait<0>();
      __syncthreads();
    }
  }

  // The block's channel tile never changes: its bias (+ folded shift) is loaded once.
  float bias_lane[NI][2];
#pragma unroll
  for (int ni = 0; ni < NI; ++ni)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int ch = n0 + n_warp + ni * 8 + 2 * t + j;
      bias_lane[ni][j] = prm.shift + (bias != nullptr && ch < prm.g.k ? __ldg(bias + ch) : 0.0f);
    }

  // Per-lane shared-memory byte offsets of the fragments (see load_frags).
  const int *koff_lane = koff + t;
  const int sw_bytes = 4 * (SW > 0 ? SW : prm.g.stride_w);
  // The warp's pixels lie in one patch segment (wgmma: a segment is 64 or 128 pixels).
  const int a_seg = m_warp / prm.seg_pixels;
  const int a_lane = (a_seg * prm.seg_floats + prm.tma_lead) * 4 +
                     (m_warp - a_seg * prm.seg_pixels + g) * sw_bytes;
  int w_lane[NI];
#pragma unroll
  for (int ni = 0; ni < NI; ++ni)
    w_lane[ni] = ((n_warp + ni * 8 + g) * prm.w_pitch + t) * 4;
  // wgmma: B descriptors of block K index 0 (core matrices of 8 channels 128 bytes apart,
  // K groups BN * 16 bytes apart; 3xTF32's small halves after the big ones).
  uint64_t desc_big = 0, desc_small = 0;
  float wg_part[8][4]; // 3xTF32 on wgmma: the running chunk (see wg_chunk)
  if constexpr (T::WG) {
    desc_big = wg_desc(smem_addr(wres), T::BN * 16, 128);
    desc_small = wg_desc(smem_addr(wres + T::BN * prm.w_pitch), T::BN * 16, 128);
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        wg_part[i][j] = 0.0f;
  }

  // ---- the stage sequence: (my tiles) x (chunks), a ring of n_stages buffers ----
  // cp.async: two buffers, one stage in flight ahead. TMA: n_stages - 1 stages ahead (all
  // n_stages where the warps count themselves out, below).
  // Block x owns the contiguous run [first_tile, end_tile) of row tiles: consecutive tiles
  // continue each output channel's stream (the staged stores rely on it) and reuse the
  // previous tile's input rows from L2.
  const int first_tile = (int)(prm.m_tiles * blockIdx.x / gridDim.x);
  const int end_tile = (int)(prm.m_tiles * (blockIdx.x + 1) / gridDim.x);
  int load_tile = first_tile, load_chunk = 0, load_buf = 0; // the next stage to issue
  PatchPlan load_pp;
  if constexpr (!T::TMA)
    load_pp = patch_plan(prm, input, row_tile(prm, load_tile, BM));

  auto next_buf = [&](int b) { return b + 1 == prm.n_stages ? 0 : b + 1; };
  // Issues the next stage (TMA: by the thread with issuer set) and moves on to the one after.
  auto issue_stage = [&](bool issuer) {
    float *stage = stages + load_buf * prm.stage_floats;
    if constexpr (T::TMA) {
      if (issuer) {
        const RowTile rt = row_tile(prm, load_tile, BM);
        const int x0 = rt.q0 * prm.g.stride_w - prm.g.pad_w - prm.tma_lead;
        const int y0 = rt.p * prm.g.stride_h - prm.g.pad_h;
        uint64_t *bar = stage_full + load_buf;
        mbar_expect_bytes(bar, (uint32_t)prm.tma_bytes);
        for (int seg = 0; seg * prm.seg_pixels < BM; ++seg)
          tma_load_4d(stage + seg * prm.seg_floats, &prm.patch_map,
                      x0 + seg * prm.seg_pixels * prm.g.stride_w, y0, load_chunk * prm.cc, rt.n,
                      bar);
      }
    } else {
      load_patch<T>(prm, input, stage, load_pp, load_chunk, warp, lane);
      if (!prm.resident)
        load_weights<T>(prm, weight, stage + prm.patch_floats, n0, load_chunk, warp, lane);
      cp_async_commit();
    }
    load_buf = next_buf(load_buf);
    if (++load_chunk == prm.n_chunks) {
      load_chunk = 0;
      ++load_tile;
      if constexpr (!T::TMA)
        if (load_tile < end_tile)
          load_pp = patch_plan(prm, input, row_tile(prm, load_tile, BM));
    }
  };
  uint32_t full_parity = 0; // TMA: bit b = the parity of stage b's next phase

  // TMA without staged output: a warp done with a stage buffer counts itself out; the last of
  // the block's warps to do so refills it (n_stages in flight, no block barrier between
  // chunks). The fences order the warps' shared loads of the buffer before the refill's writes.
  // The staged kernels keep the barrier per chunk (it also guards their staging rows): counting
  // on top of a barrier there measured 3% slower on sub-sub-mish fp32 (bench/NOTES.md, v16).
  constexpr bool COUNTED = T::TMA && !T::STAGED;
  auto release_stage = [&](int b) {
    const bool last = stage_count_out(stage_done, b, T::WARPS, lane);
    if (load_tile < end_tile)
      issue_stage(last);
  };

  float acc[MI * NI][4];

  // (issuer matters to TMA alone: with cp.async every thread issues its share). The barrier
  // scheme refills the buffer the previous chunk read right after each chunk's barrier, so it
  // starts one stage short of the ring; counted refills start with all of it.
  // cp.async: the resident weights ride in the first stage's group.
  for (int b = 0; b < prm.n_stages - (COUNTED ? 0 : 1) && load_tile < end_tile; ++b)
    issue_stage(tid == 0);
  int buf = 0;
  for (int tile = first_tile; tile < end_tile; ++tile) {
    // Accumulators start at the bias (+ folded shift), so the epilogue adds nothing.
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < NI; ++ni) {
        acc[mi * NI + ni][0] = acc[mi * NI + ni][2] = bias_lane[ni][0];
        acc[mi * NI + ni][1] = acc[mi * NI + ni][3] = bias_lane[ni][1];
      }
    for (int chunk = 0; chunk < prm.n_chunks; ++chunk, buf = next_buf(buf)) {
      if constexpr (T::TMA) {
        mbar_wait(stage_full + buf, (full_parity >> buf) & 1);
        full_parity ^= 1u << buf;
      } else {
        cp_async_wait<0>();
      }
      if constexpr (!COUNTED) {
        // This chunk's stage has landed. Past the barrier nobody reads the previous chunk's
        // buffer any more: refill it now, while this chunk computes. One barrier per chunk
        // (the refill used to wait for a second one).
        __syncthreads();
        if (load_tile < end_tile)
          issue_stage(tid == 0);
      }
      const float *patch = stages + buf * prm.stage_floats;
      const float *wsm = prm.resident ? wres + chunk * prm.kcp : patch + prm.patch_floats;
      const char *patch_b = reinterpret_cast<const char *>(patch);
      const char *wsm_b = reinterpret_cast<const char *>(wsm);

      if constexpr (T::WG) {
        const uint64_t k0 = (uint64_t)chunk * prm.kcp * (T::BN / 4); // 16-byte units
        wg_chunk<T, SW>(acc, wg_part, koff_lane, prm.kcp, patch_b, a_lane, sw_bytes,
                        desc_big + k0, desc_small + k0, chunk == 0);
      } else {
        // TF32: two fragment sets, so the next k-step's shared-memory loads are in flight while
        // this k-step's mma.syncs issue (compile-time set indices keep them in registers).
        // 3xTF32 accumulates each chunk in a fresh register tile and adds it to acc with a
        // rounded FADD: the tensor cores' own fp32 accumulation truncates, and over deep K
        // (C = 512, 3x3: 1728 accumulations) that bias alone broke the 1e-5 relative-L2 contract.
        float part[MI * NI][4];
        float(&sum)[MI * NI][4] = T::SPLIT ? part : acc;
        if constexpr (T::SPLIT) {
#pragma unroll
          for (int i = 0; i < MI * NI; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j)
              part[i][j] = 0.0f;
        }
        if constexpr (T::SPLIT) {
          // One fragment set: the chunk accumulator takes the registers of the second.
          Frags<T> f;
#pragma unroll 1
          for (int kb = 0; kb < prm.kcp; kb += 8) {
            load_frags<T, SW>(f, koff_lane, kb, patch_b, a_lane, sw_bytes, wsm_b, w_lane);
            mma_frags<T>(sum, f);
          }
        } else {
          Frags<T> f0, f1;
          load_frags<T, SW>(f0, koff_lane, 0, patch_b, a_lane, sw_bytes, wsm_b, w_lane);
#pragma unroll 1
          for (int kb = 0; kb < prm.kcp; kb += 16) {
            const bool odd = kb + 8 < prm.kcp;
            if (odd)
              load_frags<T, SW>(f1, koff_lane, kb + 8, patch_b, a_lane, sw_bytes, wsm_b, w_lane);
            mma_frags<T>(sum, f0);
            if (!odd)
              break;
            if (kb + 16 < prm.kcp)
              load_frags<T, SW>(f0, koff_lane, kb + 16, patch_b, a_lane, sw_bytes, wsm_b, w_lane);
            mma_frags<T>(sum, f1);
          }
        }
        if constexpr (T::SPLIT) {
#pragma unroll
          for (int i = 0; i < MI * NI; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j)
              acc[i][j] += part[i][j];
        }
      }
      if constexpr (COUNTED)
        release_stage(buf); // its A fragments are in registers (wgmma: issued from them)
    }

    if constexpr (T::WG) { // the accumulators are the tensor cores' until the last batch is done
      wg_wait<0>();
      wg_pin(acc);
      if constexpr (T::SPLIT)
        wg_add_part(acc, wg_part);
    }

    // ---- tile done: the chain, then the stores ----
    // (Worked out here, not before the K loop: three registers fewer across it, which the
    // 3xTF32 kernels need at the 128-register cap.)
    const RowTile rt = row_tile(prm, tile, BM);
    if constexpr (T::STAGED) {
      StagedPart part;
      part.tile_base = (int64_t)rt.n * prm.kpq + (int64_t)rt.p * prm.g.q + rt.q0;
      part.len = min(BM, prm.g.q - rt.q0);
      const bool image_start = rt.p == 0 && rt.q0 == 0;
      const bool image_end = rt.p == prm.g.p - 1 && rt.q0 + BM >= prm.g.q;
      part.joined = tile > first_tile && !image_start;
      part.last = tile + 1 == end_tile || image_end;
      stage_tile<T>(epi, acc, staged + (n_warp + 2 * t) * CF_MMA_OUT_PITCH(BM) + m_warp + g,
                    (int)(part.tile_base & 7), n0 + n_warp + 2 * t, (int)(prm.pq & 7));
      __syncthreads();
      // The next reads or writes of the staging rows come after the next tile's first
      // barrier: no second barrier here.
      write_staged<T>(staged, part, output, prm.pq, n0, prm.g.k, warp, lane);
    } else {
      float *out_lane =
          output + ((int64_t)rt.n * prm.g.k * prm.g.p + rt.p) * prm.g.q + rt.q0 + m_warp + g;
      const int q_left = prm.g.q - rt.q0 - m_warp - g; // pixel m_warp + g + j is in iff j < q_left
      store_tile<T>(epi, acc, out_lane, prm.pq, n0 + n_warp + 2 * t, prm.g.k, q_left);
    }
  }
}

// The kernel of (tile, chain, column stride); RELU chains run the generic epilogue here
// (fewer instantiations: the tensor-core kernels are the large ones). SW = 1 is the unit
// column stride with compile-time fragment offsets, SW = 0 any stride.
template <class T, int SW>
const void *rowtile_kernel_of(int chain) {
  switch (chain) {
  case CFK_EPI_NONE: return (const void *)conv_mma_kernel<T, CfkEpiFixed<>, SW>;
  case CFK_EPI_MISH: return (const void *)conv_mma_kernel<T, CfkEpiFixed<CFK_OP_MISH>, SW>;
  case CFK_EPI_MISH_MISH:
    return (const void *)conv_mma_kernel<T, CfkEpiFixed<CFK_OP_MISH, CFK_OP_MISH>, SW>;
  case CFK_EPI_RELU:
  case CFK_EPI_GENERIC: return (const void *)conv_mma_kernel<T, CfkEpiGeneric, SW>;
  default: return nullptr;
  }
}

template <class T>
const void *rowtile_kernel_of(int chain, int unit_stride) {
  return unit_stride ? rowtile_kernel_of<T, 1>(chain) : rowtile_kernel_of<T, 0>(chain);
}

} // namespace

#endif
