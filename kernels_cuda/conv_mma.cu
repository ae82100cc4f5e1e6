// Fused conv2d (NCHW fp32) + bias + epilogue on tensor cores: mma.sync m16n8k8 TF32, either
// one product (CF_MATH_TF32) or the 3xTF32 split (CF_MATH_FP32: a = big + small, keep
// big*big + big*small + small*big, accumulate in fp32).
//
// Tiling ("row tiles"): a tile is BM consecutive output pixels of one output row (image n,
// row p, columns q0 .. q0+BM) times BN output channels. Blocks are persistent: block
// (x, y) owns channel tile y and walks the row tiles x, x + gridDim.x, ... The GEMM K
// dimension (c, r, s) is walked in chunks of CC input channels; per (tile, chunk) a pipeline
// stage holds the raw input patch the row tile reads (CC channels x R rows x patch_width
// columns, zero-filled outside the image and past C), fetched with cp.async (16 bytes where
// the row is aligned) while the previous stage is multiplied. The block's weights stay in
// shared memory for its whole life when they fit ("resident"); otherwise each stage also
// carries the chunk's weights. A fragments are gathered straight from the patch (im2col
// happens in the index: element (m, k) is patch[koff[k] + m*stride_w]).
// Epilogue: bias + folded shift and the op chain on the accumulators in registers, then
// streaming stores: each warp store writes 8 consecutive pixels of 4 channels (full 32-byte
// sectors) straight into NCHW.
#include <cstdint>
#include <cuda_runtime.h>

#include "cf_constants.h"
#include "kernels_cuda/epilogue.cuh"
#include "kernels_cuda/launch.h"

namespace {

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

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
// is a valid (truncated) TF32 operand as it is. For 3xTF32, big is x rounded to nearest TF32
// (unbiased: truncation biased deep sums) and small = x - big (exact in fp32) the rest.
__device__ __forceinline__ void split_tf32(float x, uint32_t &big, uint32_t &small) {
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(big) : "f"(x));
  small = __float_as_uint(x - __uint_as_float(big));
}

__device__ __forceinline__ void mma_tf32(float (&d)[4], const uint32_t (&a)[4],
                                         const uint32_t (&b)[2]) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <int BM_, int BN_, int WM_, int WN_, bool SPLIT_>
struct MmaTile {
  static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_;
  static constexpr bool SPLIT = SPLIT_;
  static constexpr int WARPS_M = BM / WM, WARPS_N = BN / WN;
  static constexpr int WARPS = WARPS_M * WARPS_N;
  static constexpr int THREADS = 32 * WARPS;
  static constexpr int MI = WM / 16, NI = WN / 8; // mma tiles per warp
  // Register cap of 128 per thread: 16 warps per SM whatever the block size. (A 64x32 warp
  // tile with 8 warps and 235+ registers measured no faster: bench/NOTES.md, v4.)
  static constexpr int MIN_BLOCKS = THREADS >= 512 ? 1 : 512 / THREADS;
  static_assert(BM % WM == 0 && BN % WN == 0 && WM % 16 == 0 && WN % 8 == 0, "warp tiling");
};

// Where a row tile lies: image n, output row p, first column q0. Row tiles are numbered
// in int32 (the planner keeps m_tiles < 2^31), so this costs 32-bit divisions only.
struct RowTile {
  int n, p, q0;
};

__device__ __forceinline__ RowTile row_tile(const cfk_mma_params &prm, int tile, int bm) {
  RowTile t;
  const int np = tile / prm.q_tiles;
  t.q0 = (tile - np * prm.q_tiles) * bm;
  t.n = np / prm.g.p;
  t.p = np - t.n * prm.g.p;
  return t;
}

// Issues the cp.asyncs of the input patch of (tile, chunk): one warp per patch row.
template <class T>
__device__ __forceinline__ void load_patch(const cfk_mma_params &prm, const float *input,
                                           float *patch, const RowTile &rt, int chunk,
                                           int warp, int lane) {
  const int c0 = chunk * prm.cc;
  const int rows = prm.cc * prm.g.r, width = prm.patch_width;
  const int iw0 = rt.q0 * prm.g.stride_w - prm.g.pad_w;
  const int ih0 = rt.p * prm.g.stride_h - prm.g.pad_h;
  for (int row = warp; row < rows; row += T::WARPS) {
    const int cl = row / prm.g.r, r = row - cl * prm.g.r;
    const int c = c0 + cl, ih = ih0 + r * prm.g.dil_h;
    float *dst = patch + row * prm.patch_pitch;
    if (c >= prm.g.c || ih < 0 || ih >= prm.g.h) {
      for (int x = lane; x < width; x += 32)
        dst[x] = 0.0f; // ordinary store: visible after the stage's barrier
      continue;
    }
    const float *src = input + ((int64_t)rt.n * prm.g.c + c) * (int64_t)prm.g.h * prm.g.w +
                       (int64_t)ih * prm.g.w + iw0; // points at column 0 of the patch
    // Interior 16-byte groups need the source aligned; padding columns go one by one.
    const bool aligned = ((reinterpret_cast<uintptr_t>(src)) & 15) == 0;
    const int x_lo = iw0 < 0 ? -iw0 : 0;                 // first in-image column
    const int x_hi = min(width, prm.g.w - iw0);            // one past the last
    if (aligned) {
      const int v_lo = min((x_lo + 3) & ~3, width);        // whole groups inside the image
      const int v_hi = max(x_hi & ~3, v_lo);
      for (int x = v_lo + 4 * lane; x < v_hi; x += 128)
        cp_async16(dst + x, src + x);
      for (int x = lane; x < v_lo; x += 32) // left padding and ragged start
        cp_async4(dst + x, x >= x_lo ? src + x : input, x >= x_lo);
      for (int x = v_hi + lane; x < width; x += 32) // ragged end and right padding
        cp_async4(dst + x, x < x_hi ? src + x : input, x < x_hi);
    } else {
      for (int x = lane; x < width; x += 32)
        cp_async4(dst + x, x >= x_lo && x < x_hi ? src + x : input, x >= x_lo && x < x_hi);
    }
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

// A and B fragments of one k-step (8 K values) of a warp's WM x WN tile.
template <class T>
struct Frags {
  float a[T::MI][4];
  float b[T::NI][2];
};

// koff_lane = koff + (lane % 4); m_lane = the warp's first pixel + lane / 4; w_lane = the
// lane's first weight row (warp's first channel + lane / 4) at column lane % 4.
template <class T>
__device__ __forceinline__ void load_frags(Frags<T> &f, const float *patch, const int *koff_lane,
                                           int kb, int m_lane, int sw, const float *w_lane,
                                           int w_pitch) {
  const int ko0 = koff_lane[kb], ko1 = koff_lane[kb + 4];
#pragma unroll
  for (int mi = 0; mi < T::MI; ++mi) {
    const int m = m_lane + mi * 16;
    f.a[mi][0] = patch[ko0 + m * sw];
    f.a[mi][1] = patch[ko0 + (m + 8) * sw];
    f.a[mi][2] = patch[ko1 + m * sw];
    f.a[mi][3] = patch[ko1 + (m + 8) * sw];
  }
#pragma unroll
  for (int ni = 0; ni < T::NI; ++ni) {
    f.b[ni][0] = w_lane[ni * 8 * w_pitch + kb];
    f.b[ni][1] = w_lane[ni * 8 * w_pitch + kb + 4];
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

template <class T, class Epi>
__global__ void __launch_bounds__(T::THREADS, T::MIN_BLOCKS)
    conv_mma_kernel(const __grid_constant__ cfk_mma_params prm, const __grid_constant__ Epi epi,
                    const float *__restrict__ input, const float *__restrict__ weight,
                    const float *__restrict__ bias, float *__restrict__ output) {
  constexpr int BM = T::BM, BN = T::BN, WM = T::WM, WN = T::WN, MI = T::MI, NI = T::NI;
  extern __shared__ __align__(16) float smem[];
  float *wres = smem;                                  // resident weights (if any)
  float *stages = smem + prm.weight_floats;            // two pipeline stages
  int *koff = reinterpret_cast<int *>(stages + 2 * prm.stage_floats);

  const int tid = (int)threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int m_warp = (warp % T::WARPS_M) * WM, n_warp = (warp / T::WARPS_M) * WN;
  const int n0 = (int)blockIdx.y * BN;
  const int sw = prm.g.stride_w;

  // ---- per-block set-up: K offsets into the patch, the zero runs, resident weights ----
  const int RS = prm.g.r * prm.g.s;
  for (int k = tid; k < prm.kcp; k += T::THREADS) {
    int off = prm.zero_base;
    if (k < prm.kc) {
      const int cl = k / RS, rem = k - cl * RS, r = rem / prm.g.s, s = rem - r * prm.g.s;
      off = (cl * prm.g.r + r) * prm.patch_pitch + s * prm.g.dil_w;
    }
    koff[k] = off;
  }
  for (int i = prm.zero_base + tid; i < prm.patch_floats; i += T::THREADS) {
    stages[i] = 0.0f;
    stages[prm.stage_floats + i] = 0.0f;
  }
  if (prm.resident)
    for (int chunk = 0; chunk < prm.n_chunks; ++chunk)
      load_weights<T>(prm, weight, wres + chunk * prm.kcp, n0, chunk, warp, lane);

  // The block's channel tile never changes: its bias (+ folded shift) is loaded once.
  float bias_lane[NI][2];
#pragma unroll
  for (int ni = 0; ni < NI; ++ni)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int ch = n0 + n_warp + ni * 8 + 2 * t + j;
      bias_lane[ni][j] = prm.shift + (bias != nullptr && ch < prm.g.k ? __ldg(bias + ch) : 0.0f);
    }

  // ---- the stage sequence: (my tiles) x (chunks), one stage in flight ahead ----
  const int first_tile = (int)blockIdx.x, tile_step = (int)gridDim.x;
  const int m_tiles = (int)prm.m_tiles;
  int load_tile = first_tile, load_chunk = 0, load_buf = 0; // the next stage to issue
  RowTile load_rt = row_tile(prm, load_tile, BM);

  auto issue_stage = [&]() {
    float *stage = stages + load_buf * prm.stage_floats;
    load_patch<T>(prm, input, stage, load_rt, load_chunk, warp, lane);
    if (!prm.resident)
      load_weights<T>(prm, weight, stage + prm.patch_floats, n0, load_chunk, warp, lane);
    cp_async_commit();
    load_buf ^= 1;
    if (++load_chunk == prm.n_chunks) {
      load_chunk = 0;
      load_tile += tile_step;
      if (load_tile < m_tiles)
        load_rt = row_tile(prm, load_tile, BM);
    }
  };

  float acc[MI * NI][4];
#pragma unroll
  for (int i = 0; i < MI * NI; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
      acc[i][j] = 0.0f;

  if (first_tile < m_tiles)
    issue_stage(); // the resident weights ride in the same group
  int buf = 0;
  for (int tile = first_tile; tile < m_tiles; tile += tile_step) {
    const RowTile rt = row_tile(prm, tile, BM);
    for (int chunk = 0; chunk < prm.n_chunks; ++chunk, buf ^= 1) {
      if (load_tile < m_tiles) {
        issue_stage();
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
      const float *patch = stages + buf * prm.stage_floats;
      const float *wsm = prm.resident ? wres + chunk * prm.kcp : patch + prm.patch_floats;

      // TF32: two fragment sets, so the next k-step's shared-memory loads are in flight while
      // this k-step's mma.syncs issue (compile-time set indices keep them in registers).
      // 3xTF32 accumulates each chunk in a fresh register tile and adds it to acc with a
      // rounded FADD: the tensor cores' own fp32 accumulation truncates, and over deep K
      // (C = 512, 3x3: 1728 accumulations) that bias alone broke the 1e-5 relative-L2 contract.
      const float *w_lane = wsm + (n_warp + g) * prm.w_pitch + t;
      const int *koff_lane = koff + t;
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
          load_frags<T>(f, patch, koff_lane, kb, m_warp + g, sw, w_lane, prm.w_pitch);
          mma_frags<T>(sum, f);
        }
      } else {
        Frags<T> f0, f1;
        load_frags<T>(f0, patch, koff_lane, 0, m_warp + g, sw, w_lane, prm.w_pitch);
#pragma unroll 1
        for (int kb = 0; kb < prm.kcp; kb += 16) {
          const bool odd = kb + 8 < prm.kcp;
          if (odd)
            load_frags<T>(f1, patch, koff_lane, kb + 8, m_warp + g, sw, w_lane, prm.w_pitch);
          mma_frags<T>(sum, f0);
          if (!odd)
            break;
          if (kb + 16 < prm.kcp)
            load_frags<T>(f0, patch, koff_lane, kb + 16, m_warp + g, sw, w_lane, prm.w_pitch);
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
      __syncthreads(); // this stage's buffer is refilled by the next iteration's prefetch
    }

    // ---- tile done: bias + shift, the chain, streaming stores; then a fresh accumulator ----
#pragma unroll
    for (int ni = 0; ni < NI; ++ni)
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        acc[mi * NI + ni][0] += bias_lane[ni][0];
        acc[mi * NI + ni][1] += bias_lane[ni][1];
        acc[mi * NI + ni][2] += bias_lane[ni][0];
        acc[mi * NI + ni][3] += bias_lane[ni][1];
      }
    epi.apply(acc);
    // One pointer per channel pair; the four stores of each mma tile use immediate offsets.
    float *out_tile =
        output + ((int64_t)rt.n * prm.g.k * prm.g.p + rt.p) * prm.g.q + rt.q0 + m_warp + g;
    const int q_left = prm.g.q - rt.q0 - m_warp - g; // pixels m_warp + g + j are in iff j < q_left
#pragma unroll
    for (int ni = 0; ni < NI; ++ni) {
      const int ch = n0 + n_warp + ni * 8 + 2 * t;
      float *o0 = out_tile + (int64_t)ch * prm.pq;
      float *o1 = o0 + prm.pq;
      const bool ok0 = ch < prm.g.k, ok1 = ch + 1 < prm.g.k;
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        float(&a)[4] = acc[mi * NI + ni];
        const bool in0 = mi * 16 < q_left, in1 = mi * 16 + 8 < q_left;
        if (ok0 && in0)
          __stcs(o0 + mi * 16, a[0]);
        if (ok1 && in0)
          __stcs(o1 + mi * 16, a[1]);
        if (ok0 && in1)
          __stcs(o0 + mi * 16 + 8, a[2]);
        if (ok1 && in1)
          __stcs(o1 + mi * 16 + 8, a[3]);
        a[0] = a[1] = a[2] = a[3] = 0.0f;
      }
    }
  }
}

static_assert(CFK_MMA_TILE_COUNT == 4, "instantiate every MMA tile menu entry below");
template <bool SPLIT>
using MmaT0 = MmaTile<CFK_MMA_T0_BM, CFK_MMA_T0_BN, CFK_MMA_T0_WM, CFK_MMA_T0_WN, SPLIT>;
template <bool SPLIT>
using MmaT1 = MmaTile<CFK_MMA_T1_BM, CFK_MMA_T1_BN, CFK_MMA_T1_WM, CFK_MMA_T1_WN, SPLIT>;
template <bool SPLIT>
using MmaT2 = MmaTile<CFK_MMA_T2_BM, CFK_MMA_T2_BN, CFK_MMA_T2_WM, CFK_MMA_T2_WN, SPLIT>;
template <bool SPLIT>
using MmaT3 = MmaTile<CFK_MMA_T3_BM, CFK_MMA_T3_BN, CFK_MMA_T3_WM, CFK_MMA_T3_WN, SPLIT>;


// The kernel of (tile, chain); RELU chains run the generic epilogue here (fewer
// instantiations: the tensor-core kernels are the large ones).
template <class T>
const void *mma_kernel_of(int chain) {
  switch (chain) {
  case CFK_EPI_NONE: return (const void *)conv_mma_kernel<T, CfkEpiFixed<>>;
  case CFK_EPI_MISH: return (const void *)conv_mma_kernel<T, CfkEpiFixed<CFK_OP_MISH>>;
  case CFK_EPI_MISH_MISH:
    return (const void *)conv_mma_kernel<T, CfkEpiFixed<CFK_OP_MISH, CFK_OP_MISH>>;
  case CFK_EPI_RELU:
  case CFK_EPI_GENERIC: return (const void *)conv_mma_kernel<T, CfkEpiGeneric>;
  default: return nullptr;
  }
}

template <bool SPLIT>
const void *mma_kernel_of(int menu_index, int chain) {
  switch (menu_index) {
  case 0: return mma_kernel_of<MmaT0<SPLIT>>(chain);
  case 1: return mma_kernel_of<MmaT1<SPLIT>>(chain);
  case 2: return mma_kernel_of<MmaT2<SPLIT>>(chain);
  case 3: return mma_kernel_of<MmaT3<SPLIT>>(chain);
  default: return nullptr;
  }
}

const void *mma_kernel(int menu_index, int split, int chain) {
  return split ? mma_kernel_of<true>(menu_index, chain)
               : mma_kernel_of<false>(menu_index, chain);
}

int mma_threads(int menu_index) {
  switch (menu_index) {
  case 0: return MmaT0<false>::THREADS;
  case 1: return MmaT1<false>::THREADS;
  case 2: return MmaT2<false>::THREADS;
  case 3: return MmaT3<false>::THREADS;
  default: return 0;
  }
}

} // namespace

extern "C" cudaError_t cfk_conv_mma_prepare(int menu_index, int split, int chain,
                                            int *num_regs, size_t *local_bytes) {
  const void *fn = mma_kernel(menu_index, split, chain);
  if (fn == nullptr)
    return cudaErrorInvalidValue;
  int dev = 0, optin = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess)
    e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  // The device's whole opt-in limit: idempotent, so plans of other sizes never race.
  if (e == cudaSuccess)
    e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, optin);
  cudaFuncAttributes attr;
  if (e == cudaSuccess)
    e = cudaFuncGetAttributes(&attr, fn);
  if (e != cudaSuccess)
    return e;
  if (num_regs)
    *num_regs = attr.numRegs;
  if (local_bytes)
    *local_bytes = attr.localSizeBytes;
  return cudaSuccess;
}

extern "C" cudaError_t cfk_conv_mma_occupancy(int menu_index, int split, int chain,
                                              int smem_bytes, int *blocks_per_sm) {
  const void *fn = mma_kernel(menu_index, split, chain);
  if (fn == nullptr || blocks_per_sm == nullptr)
    return cudaErrorInvalidValue;
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks_per_sm, fn, mma_threads(menu_index),
                                                       (size_t)smem_bytes);
}

extern "C" cudaError_t cfk_conv_mma_launch(int menu_index, int split, int chain,
                                           const cfk_mma_params *params,
                                           const cfk_epilogue_ops *ops, const float *input,
                                           const float *weight, const float *bias,
                                           float *output, cudaStream_t stream) {
  const void *fn = mma_kernel(menu_index, split, chain);
  if (fn == nullptr || params == nullptr || params->grid_m <= 0 || params->grid_n <= 0)
    return cudaErrorInvalidValue;
  const bool generic = chain == CFK_EPI_RELU || chain == CFK_EPI_GENERIC;
  if (generic && ops == nullptr)
    return cudaErrorInvalidValue;
  CfkEpiGeneric g;
  if (generic)
    g.ops = *ops;
  const void *epi = generic ? (const void *)&g : (const void *)&g.ops; // fixed: empty struct
  void *args[] = {(void *)params, (void *)epi, (void *)&input, (void *)&weight,
                  (void *)&bias,  (void *)&output};
  const dim3 grid((unsigned)params->grid_m, (unsigned)params->grid_n);
  (void)cudaGetLastError(); // report this launch's failure, not an earlier one
  cudaError_t e = cudaLaunchKernel(fn, grid, dim3((unsigned)mma_threads(menu_index)), args,
                                   (size_t)params->smem_bytes, stream);
  return e != cudaSuccess ? e : cudaGetLastError();
}
