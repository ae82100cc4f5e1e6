// wgmma throughput probe (sm_90a): how close to the TF32 tensor peak can warpgroup MMA run in
// the shapes a fused conv kernel could use, with nothing else to do? Each block (one per SM:
// the shared memory asks for it) keeps B for 8 k-steps resident and its warpgroups issue
// m64nNk8 TF32 wgmmas in batches of BATCH k-steps (B4 or B2: with their A fragments reloaded
// by shared loads, batches of 4 make ptxas serialize the wgmmas, and 4 x 128-register warpgroups
// at N = 128 hold no more), two register sets alternating, wait_group 1 between batches (the
// fused kernels' k-loop without the patch, the chain or the stores).
// Variants: N = 64 / 128 / 256; A from registers (RS; optionally reloaded from shared memory
// before every batch, 4 conflict-free 4-byte loads per k-step as the fused kernels gather
// them) or from shared memory by descriptor (SS); 4 or 2 warpgroups per block.
//   nvcc -O3 -gencode=arch=compute_90a,code=sm_90a -std=c++17 -I. -o wgmma_probe bench/wgmma_probe.cu
// Prints one line per variant: median ms of 10 runs (device events, after 2 warm-ups) and the
// TF32 TFLOP/s reached (the H200's dense peak is ~495).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cuda_runtime.h>

#include "bench/probe_check.h"

#include "bench/wgmma_shapes.cuh"
#include "kernels_cuda/tma.cuh"
#include "kernels_cuda/wgmma.cuh"

namespace {

constexpr int KSTEPS = 8; // resident k-steps of B (and of each warpgroup's A, SS)

template <int N, bool SS>
__device__ __forceinline__ void mma(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t da,
                                    uint64_t db) {
  if constexpr (N == 64) {
    if constexpr (SS) wg_ss64(d, da, db); else wg_rs64(d, a, db);
  } else if constexpr (N == 128) {
    if constexpr (SS) wg_ss128(d, da, db); else wg_rs128(d, a, db);
  } else {
    if constexpr (SS) wg_ss256(d, da, db); else wg_rs256(d, a, db);
  }
}

// Shared memory: B (KSTEPS x 8 K x N floats), then per warpgroup its A (KSTEPS x 8 K x 64 rows;
// SS reads it by descriptor, RS+LDS gathers its fragments from it).
template <int N>
__host__ __device__ constexpr size_t smem_bytes(int wgs) {
  return (size_t)KSTEPS * 8 * N * 4 + (size_t)wgs * KSTEPS * 8 * 64 * 4 + 1024;
}

template <int N, bool SS, bool LDS, int WGS, int BATCH>
__global__ void __launch_bounds__(128 * WGS, 1) probe(float *sink, int iters) {
  extern __shared__ __align__(1024) float smem[];
  const int tid = threadIdx.x, wg = tid / 128, lane = tid & 31, warp_in_wg = (tid / 32) & 3;
  const uint32_t b_base = smem_addr(smem);
  const uint32_t a_base = b_base + KSTEPS * 8 * N * 4 + wg * KSTEPS * 8 * 64 * 4;
  for (int i = tid; i < (int)(smem_bytes<N>(WGS) - 1024) / 4; i += blockDim.x)
    smem[i] = (float)((i * 7) % 13) * 0.01f;
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  float d[N / 2];
#pragma unroll
  for (int i = 0; i < N / 2; ++i)
    d[i] = 0.0f;
  uint32_t a0[BATCH][4], a1[BATCH][4];
#pragma unroll
  for (int j = 0; j < BATCH; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      a0[j][e] = a1[j][e] = __float_as_uint(0.01f * (float)(lane + e + j));
  // this lane's fragment loads: 128 consecutive bytes per warp and load, 4 loads per k-step
  // (ordinary loads: the waits' memory clobbers keep them in the loop)
  const float *a_lane = smem + (a_base - b_base) / 4 + warp_in_wg * 512 + lane;
  auto batch = [&](uint32_t (&a)[BATCH][4], int kb) {
    if constexpr (LDS) {
#pragma unroll
      for (int j = 0; j < BATCH; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          a[j][e] = __float_as_uint(a_lane[((kb + j) * 4 + e) % 16 * 32]);
    }
    wg_fence();
#pragma unroll
    for (int j = 0; j < BATCH; ++j) {
      const int k = kb + j;
      mma<N, SS>(d, a[j], wg_desc(a_base + k * 64 * 32, 64 * 16, 128),
                 wg_desc(b_base + k * N * 32, N * 16, 128));
    }
    wg_commit();
  };
  for (int it = 0; it < iters; ++it) {
    wg_wait<1>();
    batch(a0, 0);
    wg_wait<1>();
    batch(a1, BATCH);
  }
  wg_wait<0>();
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < N / 2; ++i)
    s += d[i];
  if (s == 12345.0f) // practically never: keeps the accumulators live
    sink[blockIdx.x] = s;
}

template <int N, bool SS, bool LDS, int WGS, int BATCH = 4>
void run(const char *name, int sms, float *sink) {
  auto k = probe<N, SS, LDS, WGS, BATCH>;
  const size_t smem = smem_bytes<N>(WGS);
  CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  const int iters = 2000;
  const double med = probe_time([&] { k<<<sms, 128 * WGS, smem>>>(sink, iters); }, 2, 10).median;
  const double flop = 2.0 * sms * WGS * (double)iters * 2 * BATCH * 64.0 * N * 8;
  std::printf("%-28s %8.3f ms %7.1f TFLOP/s\n", name, med, flop / (med * 1e-3) / 1e12);
}

} // namespace

int main() {
  int dev = 0, sms = 0;
  CHECK(cudaGetDevice(&dev));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  float *sink;
  CHECK(cudaMalloc(&sink, sms * sizeof(float)));
  std::printf("wgmma probe: %d SMs, one block per SM, TF32 m64nNk8\n", sms);
  run<64, false, false, 4>("n64  RS        4 WG  B4", sms, sink);
  run<64, false, false, 4, 2>("n64  RS        4 WG  B2", sms, sink);
  run<64, false, true, 4, 2>("n64  RS + LDS  4 WG  B2", sms, sink);
  run<64, true, false, 4>("n64  SS        4 WG  B4", sms, sink);
  run<64, false, true, 2, 2>("n64  RS + LDS  2 WG  B2", sms, sink);
  run<128, false, false, 4, 2>("n128 RS        4 WG  B2", sms, sink);
  run<128, false, true, 4, 2>("n128 RS + LDS  4 WG  B2", sms, sink);
  run<128, true, false, 4>("n128 SS        4 WG  B4", sms, sink);
  run<256, false, true, 2, 2>("n256 RS + LDS  2 WG  B2", sms, sink);
  run<256, true, false, 2>("n256 SS        2 WG  B4", sms, sink);
  CHECK(cudaFree(sink));
  return 0;
}
