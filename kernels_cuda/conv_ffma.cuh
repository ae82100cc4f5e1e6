// The kernel template (conv_ffma.cu instantiates and launches it).
//
// Fused conv2d (NCHW fp32) + bias + epilogue as an implicit GEMM on FFMA (fp32 CUDA cores).
//
// GEMM view: M = N*P*Q output pixels (q fastest), N = K output channels, K = C*R*S.
// A block owns a BM x BN output tile; K is walked in BK slices staged through shared memory
// (double buffered: the next slice is fetched into registers while the current one is
// multiplied, one __syncthreads per slice). Thread (tx, ty) computes pixels
// m0 + tx + i*MT (i < TM) times channels n0 + ty*TN + j (j < TN): consecutive threads own
// consecutive pixels, so both the im2col loads and the NCHW stores are coalesced, and the
// shared-memory reads of A are conflict-free; the TN channels are read as one vector.
// The epilogue (bias + folded shift, then the op chain) runs on the accumulators in
// registers and each output element is written once.
//
// The grid is 1-D over tiles with the N tile fastest, so the blocks that read the same input
// pixels run together and share them through L2; each block loops over tiles when there are
// more than 2^31-1.
#ifndef CF_KERNELS_CUDA_CONV_FFMA_CUH
#define CF_KERNELS_CUDA_CONV_FFMA_CUH

#include <cstdint>

#include "cf_constants.h"
#include "kernels_cuda/epilogue.cuh"
#include "kernels_cuda/launch.h"

namespace cfk {

template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct FfmaTile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int MT = BM / TM;          // threads along M
  static constexpr int NT = BN / TN;          // threads along N
  static constexpr int THREADS = MT * NT;
  static constexpr int A_KSTEP = THREADS / BM;  // A staging: rows between a thread's elements
  static constexpr int A_PER_THREAD = BK / A_KSTEP;
  static constexpr int B_NSTEP = THREADS / BK;  // B staging: columns between a thread's elements
  static constexpr int B_PER_THREAD = BN / B_NSTEP;
  static constexpr int BS_LD = BN + 4;        // padded: conflict-free stores, 16-byte rows
  // Blocks per SM the register allocation must allow (__launch_bounds__): about 16 resident
  // warps for the 8x4 micro-tile (<= 128 registers), 24 for the smaller ones (<= 80).
  static constexpr int RESIDENT_THREADS = TM * TN >= 32 ? 512 : 768;
  static constexpr int MIN_BLOCKS =
      RESIDENT_THREADS / THREADS > 0 ? RESIDENT_THREADS / THREADS : 1;

  static_assert(BM % TM == 0 && BN % TN == 0, "tile must divide into micro-tiles");
  static_assert(THREADS <= 1024 && THREADS % 32 == 0, "threads per block");
  static_assert(THREADS % BM == 0 && BK % A_KSTEP == 0,
                "A staging: each thread stages one fixed pixel column of the BK x BM tile");
  static_assert(THREADS % BK == 0 && BN % B_NSTEP == 0,
                "B staging: each thread stages one fixed K row of the BK x BN tile");
  static_assert(BS_LD % 4 == 0, "B rows must stay 16-byte aligned");
};

// TN consecutive floats from shared memory, as wide as alignment allows.
template <int TN>
__device__ __forceinline__ void load_frag(float (&b)[TN], const float *src) {
  if constexpr (TN % 4 == 0) {
#pragma unroll
    for (int v = 0; v < TN / 4; ++v) {
      const float4 t = reinterpret_cast<const float4 *>(src)[v];
      b[4 * v + 0] = t.x;
      b[4 * v + 1] = t.y;
      b[4 * v + 2] = t.z;
      b[4 * v + 3] = t.w;
    }
  } else if constexpr (TN % 2 == 0) {
#pragma unroll
    for (int v = 0; v < TN / 2; ++v) {
      const float2 t = reinterpret_cast<const float2 *>(src)[v];
      b[2 * v + 0] = t.x;
      b[2 * v + 1] = t.y;
    }
  } else {
#pragma unroll
    for (int v = 0; v < TN; ++v)
      b[v] = src[v];
  }
}

template <class T, class Epi>
__global__ void __launch_bounds__(T::THREADS, T::MIN_BLOCKS)
    conv_ffma_kernel(const __grid_constant__ cfk_conv_params prm,
                     const __grid_constant__ Epi epi, const float *__restrict__ input,
                     const float *__restrict__ weight, const float *__restrict__ bias,
                     float *__restrict__ output) {
  constexpr int BM = T::BM, BN = T::BN, BK = T::BK, TM = T::TM, TN = T::TN, MT = T::MT;
  constexpr int AP = T::A_PER_THREAD, BP = T::B_PER_THREAD;

  __shared__ __align__(16) float As[2][BK][BM];       // im2col slice, pixels contiguous
  __shared__ __align__(16) float Bs[2][BK][T::BS_LD]; // weight slice, channels contiguous

  const int tid = (int)threadIdx.x;
  const int tx = tid % MT; // pixel lane
  const int ty = tid / MT; // channel lane
  const int a_m = tid % BM;  // the pixel column this thread stages
  const int a_k0 = tid / BM; // its first K row; the others follow every A_KSTEP
  const int b_k = tid % BK;  // the K row this thread stages of the weight slice
  const int b_n0 = tid / BK; // its first channel; the others follow every B_NSTEP

  const int S = prm.g.s, R = prm.g.r, RS = prm.rs;
  // BK as a mixed-radix step (dc, dr, ds) over (c, r, s): advancing a K index by one slice
  // costs two compares, no division.
  const int bk_dc = BK / RS;
  const int bk_dr = (BK - bk_dc * RS) / S;
  const int bk_ds = BK - bk_dc * RS - bk_dr * S;
  const int n_slices = (prm.crs + BK - 1) / BK;

  for (int64_t tile = blockIdx.x; tile < prm.tiles_total; tile += gridDim.x) {
    const int64_t tile_m = tile / prm.tiles_n;
    const int tile_n = (int)(tile - tile_m * prm.tiles_n);
    const int64_t m0 = tile_m * BM;
    const int n0 = tile_n * BN;

    // ---- the pixel this thread stages: its image and top-left input tap ----
    const int64_t am = m0 + a_m;
    const bool a_valid = am < prm.gemm_m;
    int64_t a_base = 0;
    int a_h0 = 0, a_w0 = 0;
    if (a_valid) {
      const int64_t img = am / prm.pq;
      const int64_t pq = am - img * prm.pq;
      const int p = (int)(pq / prm.g.q);
      const int q = (int)(pq - (int64_t)p * prm.g.q);
      a_base = img * prm.chw;
      a_h0 = p * prm.g.stride_h - prm.g.pad_h;
      a_w0 = q * prm.g.stride_w - prm.g.pad_w;
    }
    // (c, r, s) of this thread's staged K rows in the current slice (first: k0 = 0).
    int a_c[AP], a_r[AP], a_s[AP];
#pragma unroll
    for (int l = 0; l < AP; ++l) {
      const int kk = a_k0 + l * T::A_KSTEP;
      a_c[l] = kk / RS;
      const int rem = kk - a_c[l] * RS;
      a_r[l] = rem / S;
      a_s[l] = rem - a_r[l] * S;
    }

    // ---- the weight rows this thread stages ----
    int64_t b_row[BP];
    bool b_nvalid[BP];
#pragma unroll
    for (int l = 0; l < BP; ++l) {
      const int n = n0 + b_n0 + l * T::B_NSTEP;
      b_nvalid[l] = n < prm.g.k;
      b_row[l] = (int64_t)n * prm.crs;
    }
    int b_kidx = b_k;

    float a_reg[AP], b_reg[BP];
    auto load_a = [&]() {
#pragma unroll
      for (int l = 0; l < AP; ++l) {
        const int h = a_h0 + a_r[l] * prm.g.dil_h;
        const int w = a_w0 + a_s[l] * prm.g.dil_w;
        float v = 0.0f; // padding and out-of-range K / M read as zero
        if (a_valid && a_c[l] < prm.g.c && (unsigned)h < (unsigned)prm.g.h &&
            (unsigned)w < (unsigned)prm.g.w)
          v = __ldg(input + a_base + (int64_t)a_c[l] * prm.hw + (int64_t)h * prm.g.w + w);
        a_reg[l] = v;
      }
    };
    auto advance_a = [&]() {
#pragma unroll
      for (int l = 0; l < AP; ++l) {
        a_s[l] += bk_ds;
        if (a_s[l] >= S) {
          a_s[l] -= S;
          ++a_r[l];
        }
        a_r[l] += bk_dr;
        if (a_r[l] >= R) {
          a_r[l] -= R;
          ++a_c[l];
        }
        a_c[l] += bk_dc;
      }
    };
    auto load_b = [&]() {
      const bool k_ok = b_kidx < prm.crs;
#pragma unroll
      for (int l = 0; l < BP; ++l) {
        float v = 0.0f;
        if (k_ok && b_nvalid[l])
          v = __ldg(weight + b_row[l] + b_kidx);
        b_reg[l] = v;
      }
    };
    auto stage = [&](int buf) {
#pragma unroll
      for (int l = 0; l < AP; ++l)
        As[buf][a_k0 + l * T::A_KSTEP][a_m] = a_reg[l];
#pragma unroll
      for (int l = 0; l < BP; ++l)
        Bs[buf][b_k][b_n0 + l * T::B_NSTEP] = b_reg[l];
    };

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j)
        acc[i][j] = 0.0f;

    load_a();
    load_b();
    stage(0);
    __syncthreads();

    for (int sl = 0; sl < n_slices; ++sl) {
      const int cur = sl & 1;
      const bool more = sl + 1 < n_slices;
      if (more) { // fetch the next slice while this one is multiplied
        advance_a();
        b_kidx += BK;
        load_a();
        load_b();
      }
#pragma unroll
      for (int kk = 0; kk < BK; ++kk) {
        float a[TM], b[TN];
#pragma unroll
        for (int i = 0; i < TM; ++i)
          a[i] = As[cur][kk][tx + i * MT];
        load_frag<TN>(b, &Bs[cur][kk][ty * TN]);
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j)
            acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
      if (more)
        stage(cur ^ 1);
      __syncthreads();
    }

    // ---- epilogue: + (bias + shift), the op chain, one store per element ----
    float add[TN];
    int64_t k_off[TN];
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int k = n0 + ty * TN + j;
      add[j] = prm.shift;
      if (bias != nullptr && k < prm.g.k)
        add[j] = __ldg(bias + k) + prm.shift;
      k_off[j] = (int64_t)k * prm.pq;
    }
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j)
        acc[i][j] = acc[i][j] + add[j];

    epi.apply(acc);

    // Pixel m = img*PQ + pq lives at img*K*PQ + k*PQ + pq; walk the thread's pixels (MT
    // apart) carrying pq into img instead of dividing per pixel.
    int64_t m = m0 + tx;
    int64_t img = m / prm.pq;
    int64_t pq = m - img * prm.pq;
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      if (i > 0) {
        m += MT;
        pq += MT;
        while (pq >= prm.pq) {
          pq -= prm.pq;
          ++img;
        }
      }
      if (m < prm.gemm_m) {
        float *dst = output + img * prm.kpq + pq;
#pragma unroll
        for (int j = 0; j < TN; ++j)
          if (n0 + ty * TN + j < prm.g.k)
            __stcs(dst + k_off[j], acc[i][j]); // written once, never re-read here
      }
    }
  }
}

} // namespace cfk

#endif
