// The tensor-core side of fp16 pairs (bench/NOTES.md v49, v51): how much faster is WG2's k-loop
// (mish-mish fp32, issue 3) with fp16 pairs on wgmma m64n64k16 than with its 3xTF32 on
// m64n64k8, and one fp16 product on m64n128k16 than WG1's TF32 on m64n128k8? Each block (one
// per SM, 4 warpgroups as WG1 and WG2 run) keeps B resident (two planes: TF32 big / small or
// fp16 hi / lo, 8 k-steps each) and each warp gathers its A fragments from shared memory before
// every batch (4 conflict-free 4-byte loads per 8 K values, as the fused kernels do), splits
// them in registers (3xTF32: split_tf32; pairs: split_f16, two K values per register), and
// issues the batch's wgmmas; batches alternate two register sets, wait_group 1 between (the
// fused kernels' chunk loop without the patch fetch, the chain or the stores).
// A batch is 16 K values in every variant: two TF32 k-steps or one fp16 k-step (3xTF32 and
// pairs: three wgmmas per k-step), so rows compare at equal work. The fp16 rows take the lane's
// K values t, t + 4, 8 + t, 12 + t of two TF32 fragments as its fp16 slots 2t, 2t + 1, 2t + 8,
// 2t + 9 (any K order that A and B share gives the same sums: the OpenCL kernel's f16 switch
// does this, and a fused WG2 would lay B out to match).
//   nvcc -O3 -gencode=arch=compute_90a,code=sm_90a -std=c++17 -I. -Ibuild/generated \
//     -o split_probe bench/split_probe.cu
// Prints one line per variant: median ms of 10 runs (device events, after 2 warm-ups) and the
// useful TFLOP/s (2 per multiply-add of the GEMM, whatever the split costs; the H200's dense
// TF32 peak is ~495, fp16's ~990).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>
#include <cuda_runtime.h>

#include "bench/probe_check.h"

#include "bench/wgmma_shapes.cuh"
#include "kernels_cuda/conv_rowtile.cuh"
#include "kernels_cuda/tma.cuh"
#include "kernels_cuda/wgmma.cuh"

namespace {

constexpr int WGS = 4;          // warpgroups per block
constexpr int KSTEPS = 8;       // resident k-steps of B per plane
constexpr int STEP_BYTES = 32;  // bytes per B row and k-step: 8 TF32 or 16 fp16 values
constexpr int A_FLOATS = 512;   // per warp: 16 rows of 128 bytes, the fragments' source

enum Kind { TF32 = 0, SPLIT_TF32 = 1, F16 = 2, PAIRS_F16 = 3 };

template <int N>
__host__ __device__ constexpr size_t smem_bytes() {
  return (size_t)2 * KSTEPS * N * STEP_BYTES + (size_t)WGS * 4 * A_FLOATS * 4 + 1024;
}

template <int N, bool F16_>
__device__ __forceinline__ void mma(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t db) {
  if constexpr (N == 64) {
    if constexpr (F16_) wg_rs64_f16(d, a, db); else wg_rs64(d, a, db);
  } else {
    if constexpr (F16_) wg_rs128_f16(d, a, db); else wg_rs128(d, a, db);
  }
}

// One batch (16 K values) into d: loads, splits, fence, wgmmas, commit. hi / lo: A's operands
// (lo only for the splits); the B planes' descriptors at k-step 0 are d_hi and d_lo.
template <int N, Kind KIND>
__device__ __forceinline__ void batch(float (&d)[N / 2], uint32_t (&hi)[2][4],
                                      uint32_t (&lo)[2][4], const float *a_lane, int kb,
                                      uint64_t d_hi, uint64_t d_lo) {
  constexpr bool F16_ = KIND == F16 || KIND == PAIRS_F16;
  constexpr bool SPLIT = KIND == SPLIT_TF32 || KIND == PAIRS_F16;
  constexpr uint64_t DESC_PER_STEP = N * STEP_BYTES / 16;
  float raw[2][4]; // two TF32 fragments: (g, t), (g + 8, t), (g, t + 4), (g + 8, t + 4)
#pragma unroll
  for (int j = 0; j < 2; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      raw[j][e] = a_lane[((kb + j) * 4 + e) % 16 * 32];
  if constexpr (F16_) {
#pragma unroll
    for (int j = 0; j < 2; ++j) { // fp16 registers 2j (row g) and 2j + 1 (row g + 8)
      split_f16(raw[j][0], raw[j][2], hi[0][2 * j], lo[0][2 * j]);
      split_f16(raw[j][1], raw[j][3], hi[0][2 * j + 1], lo[0][2 * j + 1]);
    }
  } else {
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if constexpr (SPLIT)
          split_tf32(raw[j][e], hi[j][e], lo[j][e]);
        else
          hi[j][e] = __float_as_uint(raw[j][e]);
      }
  }
  wg_fence();
  constexpr int STEPS = F16_ ? 1 : 2;
#pragma unroll
  for (int j = 0; j < STEPS; ++j) {
    const uint64_t off = (uint64_t)((kb / 2 * STEPS + j) % KSTEPS) * DESC_PER_STEP;
    if constexpr (SPLIT) {
      mma<N, F16_>(d, lo[j], d_hi + off);
      mma<N, F16_>(d, hi[j], d_lo + off);
    }
    mma<N, F16_>(d, hi[j], d_hi + off);
  }
  wg_commit();
}

template <int N, Kind KIND>
__global__ void __launch_bounds__(128 * WGS, 1) probe(float *sink, int iters) {
  extern __shared__ __align__(1024) float split_smem[];
  float *smem = split_smem;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid / 32;
  const uint32_t b_base = smem_addr(smem);
  for (int i = tid; i < (int)(smem_bytes<N>() - 1024) / 4; i += blockDim.x)
    smem[i] = (float)((i * 7) % 13) * 0.01f + 0.001f; // fp16 / TF32 normal values either way
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  const uint64_t d_hi = wg_desc(b_base, N * 16, 128);
  const uint64_t d_lo = wg_desc(b_base + KSTEPS * N * STEP_BYTES, N * 16, 128);
  const float *a_lane = smem + 2 * KSTEPS * N * STEP_BYTES / 4 + warp * A_FLOATS + lane;
  float d[N / 2];
#pragma unroll
  for (int i = 0; i < N / 2; ++i)
    d[i] = 0.0f;
  uint32_t hi0[2][4], lo0[2][4], hi1[2][4], lo1[2][4];
  for (int it = 0; it < iters; ++it) {
    wg_wait<1>();
    batch<N, KIND>(d, hi0, lo0, a_lane, 4 * (it % 4), d_hi, d_lo);
    wg_wait<1>();
    batch<N, KIND>(d, hi1, lo1, a_lane, 4 * (it % 4) + 2, d_hi, d_lo);
  }
  wg_wait<0>();
#pragma unroll
  for (int i = 0; i < N / 2; ++i) // the sum below may not be hoisted above the wait
    asm volatile("" : "+f"(d[i])::"memory");
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < N / 2; ++i)
    s += d[i];
  if (s == 12345.0f) // practically never: keeps the accumulators live
    sink[blockIdx.x] = s;
}

template <int N, Kind KIND>
void run(const char *name, int sms, float *sink) {
  auto k = probe<N, KIND>;
  const size_t smem = smem_bytes<N>();
  CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  const int iters = 2000;
  const double med = probe_time([&] { k<<<sms, 128 * WGS, smem>>>(sink, iters); }, 2, 10).median;
  const double flop = 2.0 * sms * WGS * (double)iters * 2 * 64.0 * N * 16; // 2 batches of 16 K
  std::printf("%-34s %8.3f ms %7.1f useful TFLOP/s\n", name, med, flop / (med * 1e-3) / 1e12);
}

} // namespace

int main() {
  int dev = 0, sms = 0;
  CHECK(cudaGetDevice(&dev));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  float *sink;
  CHECK(cudaMalloc(&sink, sms * sizeof(float)));
  std::printf("split probe: %d SMs, one block of %d warpgroups per SM, A gathered and split in "
              "registers per batch of 16 K\n",
              sms, WGS);
  run<64, SPLIT_TF32>("n64  3xTF32 (WG2 today)    m64n64k8", sms, sink);
  run<64, PAIRS_F16>("n64  fp16 pairs             m64n64k16", sms, sink);
  run<64, TF32>("n64  one TF32 product       m64n64k8", sms, sink);
  run<64, F16>("n64  one fp16 product       m64n64k16", sms, sink);
  run<128, TF32>("n128 one TF32 product (WG1) m64n128k8", sms, sink);
  run<128, F16>("n128 one fp16 product       m64n128k16", sms, sink);
  run<128, PAIRS_F16>("n128 fp16 pairs             m64n128k16", sms, sink);
  CHECK(cudaFree(sink));
  return 0;
}
