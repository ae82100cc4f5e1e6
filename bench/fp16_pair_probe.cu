// fp16 pairs on the tensor cores: are they as accurate as 3xTF32 for CF_MATH_FP32 (issue 3's
// lead for mish-mish fp32; bench/NOTES.md v49)? bench/fp16_pair_accuracy.py says yes in a numpy
// model of the sums; this runs the same GEMM on the GPU, where the tensor core's own adds
// inside an mma (not modelled there) decide. out[m][n] = bias[n] + sum_k A[m][k] B[k][n], with
// mish-mish's depth (K = 576 = 64 channels x 3 x 3), weights and bias uniform in +-1/sqrt(K),
// A from the library's input distributions and a few wide-range stress ones.
//   fp16 pairs: B per column and A per row and K chunk (or per 16-row block and chunk, or not
//   at all) scaled by powers of two into [2^14, 2^15); x = hi + lo, hi = fp16(x), lo = fp16(x -
//   hi); hi*lo + lo*hi + hi*hi on mma.sync m16n8k16 (f16 in, f32 sums) into a fresh sum per
//   chunk, added into the output scaled back (exact: powers of two).
//   3xTF32: the library's split (kernels_cuda/conv_rowtile.cuh) on m16n8k8, the same chunks.
// Each against the double-precision reference with DESIGN.md's fp32 contract (per element
// |err| <= 1e-4 + 1e-4 |ref|, rel-L2 <= 1e-5); also how many outputs the two schemes round
// differently. Not a speed probe (one warp per 16 x 8 tile, operands from global memory).
// Build (from the source tree, after a cmake build that generated cf_constants.h):
//   nvcc -O3 -arch=sm_90 -std=c++17 -I. -Ibuild/generated -o probe bench/fp16_pair_probe.cu
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "bench/probe_check.h"
#include "kernels_cuda/conv_rowtile.cuh"

namespace {

constexpr int M = 4096, N = 128, K = 576;
constexpr int KC = 144; // K values per chunk (a fresh sum each): 16 input channels x 3 x 3

enum Scale { ROW = 0, BLOCK16 = 1, NONE = 2 }; // the A scale's granularity (per chunk)

__device__ __forceinline__ void mma_f16(float (&d)[4], const uint32_t (&a)[4],
                                        const uint32_t (&b)[2]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// The shift that brings a max magnitude of 2^(e-1) .. 2^e into [2^14, 2^15): 15 - e (0 for 0).
__device__ __forceinline__ int scale_shift(float maxabs) {
  int e = 0;
  frexpf(maxabs, &e);
  return maxabs > 0.0f ? 15 - e : 0;
}

// One warp per 16 x 8 output tile (block (x, y): rows 16x.., columns 8y..). Lane (g, t) holds
// the accumulators of rows g and g + 8, columns 2t and 2t + 1 (both mma shapes' D layout).
struct WarpTile {
  int g, t, m0, n0;
  const float *ar0, *ar1; // the lane's two rows of A
  // the sums start at the bias
  __device__ void start(float (&acc)[4], const float *bias) const {
    for (int j = 0; j < 4; ++j)
      acc[j] = bias[n0 + 2 * t + (j & 1)];
  }
  __device__ void store(const float (&acc)[4], float *out) const {
    for (int j = 0; j < 4; ++j)
      out[(size_t)(m0 + g + (j < 2 ? 0 : 8)) * N + n0 + 2 * t + (j & 1)] = acc[j];
  }
};

__device__ WarpTile warp_tile(const float *a) {
  WarpTile w;
  w.g = threadIdx.x >> 2;
  w.t = threadIdx.x & 3;
  w.m0 = blockIdx.x * 16;
  w.n0 = blockIdx.y * 8;
  w.ar0 = a + (size_t)(w.m0 + w.g) * K;
  w.ar1 = a + (size_t)(w.m0 + w.g + 8) * K;
  return w;
}

// fp16 pairs. Lane (g, t): rows g and g + 8, k 2t, 2t+1, 2t+8, 2t+9 of
// every k16 step (A); columns g (B) and 2t, 2t+1 (C). B arrives split and scaled (bhi/blo: the
// f16 bits as float, [k][n]; bshift[n]).
__global__ void gemm_f16_pairs(const float *a, const float *bhi, const float *blo,
                               const int *bshift, const float *bias, float *out, int scale) {
  const WarpTile w = warp_tile(a);
  const int g = w.g, t = w.t, n0 = w.n0;
  const float *ar0 = w.ar0, *ar1 = w.ar1;
  float acc[4];
  w.start(acc, bias);
  for (int c0 = 0; c0 < K; c0 += KC) {
    // this chunk's A scale: the max over each row (the 4 lanes of a g share a row) or over
    // the 16 rows (all 32 lanes)
    float mx0 = 0.0f, mx1 = 0.0f;
    for (int k = c0 + t; k < c0 + KC; k += 4) {
      mx0 = fmaxf(mx0, fabsf(ar0[k]));
      mx1 = fmaxf(mx1, fabsf(ar1[k]));
    }
    for (int o = 1; o < 4; o <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, o));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, o));
    }
    if (scale == BLOCK16) {
      mx0 = fmaxf(mx0, mx1);
      for (int o = 4; o < 32; o <<= 1)
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, o));
      mx1 = mx0;
    }
    const int s0 = scale == NONE ? 0 : scale_shift(mx0), s1 = scale == NONE ? 0 : scale_shift(mx1);
    float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int k0 = c0; k0 < c0 + KC; k0 += 16) {
      uint32_t ahi[4], alo[4], bh[2], bl[2];
      const int ka = k0 + 2 * t, kb = k0 + 2 * t + 8;
      split_f16(ldexpf(ar0[ka], s0), ldexpf(ar0[ka + 1], s0), ahi[0], alo[0]);
      split_f16(ldexpf(ar1[ka], s1), ldexpf(ar1[ka + 1], s1), ahi[1], alo[1]);
      split_f16(ldexpf(ar0[kb], s0), ldexpf(ar0[kb + 1], s0), ahi[2], alo[2]);
      split_f16(ldexpf(ar1[kb], s1), ldexpf(ar1[kb + 1], s1), ahi[3], alo[3]);
      const int n = n0 + g;
      const int kk[2] = {ka, kb};
      for (int j = 0; j < 2; ++j) {
        const size_t i0 = (size_t)kk[j] * N + n, i1 = i0 + N; /* k and k + 1 */
        const __half2 h = __floats2half2_rn(bhi[i0], bhi[i1]);
        const __half2 l = __floats2half2_rn(blo[i0], blo[i1]);
        bh[j] = *reinterpret_cast<const uint32_t *>(&h);
        bl[j] = *reinterpret_cast<const uint32_t *>(&l);
      }
      mma_f16(part, alo, bh);
      mma_f16(part, ahi, bl);
      mma_f16(part, ahi, bh);
    }
    for (int j = 0; j < 4; ++j)
      acc[j] += ldexpf(part[j], -((j < 2 ? s0 : s1) + bshift[n0 + 2 * t + (j & 1)]));
  }
  w.store(acc, out);
}

// The library's 3xTF32 (split_tf32, small*big + big*small + big*big) on m16n8k8, same chunks.
__global__ void gemm_3xtf32(const float *a, const float *b, const float *bias, float *out) {
  const WarpTile w = warp_tile(a);
  const int g = w.g, t = w.t, n0 = w.n0;
  const float *ar0 = w.ar0, *ar1 = w.ar1;
  float acc[4];
  w.start(acc, bias);
  for (int c0 = 0; c0 < K; c0 += KC) {
    float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int k0 = c0; k0 < c0 + KC; k0 += 8) {
      const float av[4] = {ar0[k0 + t], ar1[k0 + t], ar0[k0 + t + 4], ar1[k0 + t + 4]};
      const float bv[2] = {b[(size_t)(k0 + t) * N + n0 + g], b[(size_t)(k0 + t + 4) * N + n0 + g]};
      uint32_t ab[4], as[4], bb[2], bs[2];
      for (int j = 0; j < 4; ++j)
        split_tf32(av[j], ab[j], as[j]);
      for (int j = 0; j < 2; ++j)
        split_tf32(bv[j], bb[j], bs[j]);
      mma_tf32(part, as, bb);
      mma_tf32(part, ab, bs);
      mma_tf32(part, ab, bb);
    }
    for (int j = 0; j < 4; ++j)
      acc[j] += part[j];
  }
  w.store(acc, out);
}

// A's distributions: the library's four (tl_fill_input), then wide-range stress cases.
const char *const kDists[] = {"rand", "rand3", "rand001", "neg", "u6e4", "mixed", "spike1e4",
                              "spike1e8"};

void fill_a(int d, std::mt19937_64 &rng, std::vector<float> &a) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = u(rng);
    switch (d) {
    case 0: a[i] = (float)x; break;
    case 1: a[i] = (float)(3.0 * x); break;
    case 2: a[i] = (float)(0.01 * x); break;
    case 3: a[i] = (float)-x; break;
    case 4: a[i] = (float)(6e4 * x); break;
    case 5: /* random sign, magnitudes over 12 decades */
      a[i] = (float)((u(rng) < 0.5 ? -1.0 : 1.0) * x * std::pow(10.0, -8.0 + 12.0 * u(rng)));
      break;
    default: /* small values, one in 10^4 a spike */
      a[i] = u(rng) < 1e-4 ? (d == 6 ? 1e4f : 1e8f) : (float)(2e-3 * x);
      break;
    }
  }
}

// Host split of B per column: the shift into [2^14, 2^15), then hi and lo as fp16 values.
void split_b(const std::vector<float> &b, std::vector<float> &hi, std::vector<float> &lo,
             std::vector<int> &shift) {
  for (int n = 0; n < N; ++n) {
    float mx = 0.0f;
    for (int k = 0; k < K; ++k)
      mx = std::fmax(mx, std::fabs(b[(size_t)k * N + n]));
    int e = 0;
    std::frexp(mx, &e);
    shift[n] = mx > 0.0f ? 15 - e : 0;
    for (int k = 0; k < K; ++k) {
      const float x = std::ldexp(b[(size_t)k * N + n], shift[n]);
      const float h = __half2float(__float2half_rn(x));
      hi[(size_t)k * N + n] = h;
      lo[(size_t)k * N + n] = __half2float(__float2half_rn(x - h));
    }
  }
}

struct Errors {
  double worst_ratio, rel_l2;
};

Errors compare(const std::vector<float> &out, const std::vector<double> &ref) {
  double num = 0.0, den = 0.0, worst = 0.0;
  for (size_t i = 0; i < out.size(); ++i) {
    const double e = std::fabs((double)out[i] - ref[i]);
    const double tol = 1e-4 + 1e-4 * std::fabs(ref[i]);
    worst = std::fmax(worst, std::isfinite(e) ? e / tol : INFINITY);
    num += e * e;
    den += ref[i] * ref[i];
  }
  return {worst, std::sqrt(num / den)};
}

} // namespace

int main() {
  std::mt19937_64 rng(0x5eedf16);
  std::vector<float> a((size_t)M * K), b((size_t)K * N), bias(N);
  std::uniform_real_distribution<double> w(-1.0 / 24.0, 1.0 / 24.0); // 1/sqrt(576)
  for (float &x : b) x = (float)w(rng);
  for (float &x : bias) x = (float)w(rng);
  std::vector<float> bhi(b.size()), blo(b.size());
  std::vector<int> bshift(N);
  split_b(b, bhi, blo, bshift);

  float *da, *db, *dbhi, *dblo, *dbias, *dout;
  int *dshift;
  CHECK(cudaMalloc(&da, a.size() * 4));
  CHECK(cudaMalloc(&db, b.size() * 4));
  CHECK(cudaMalloc(&dbhi, b.size() * 4));
  CHECK(cudaMalloc(&dblo, b.size() * 4));
  CHECK(cudaMalloc(&dbias, N * 4));
  CHECK(cudaMalloc(&dshift, N * 4));
  CHECK(cudaMalloc(&dout, (size_t)M * N * 4));
  CHECK(cudaMemcpy(db, b.data(), b.size() * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(dbhi, bhi.data(), b.size() * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(dblo, blo.data(), b.size() * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(dbias, bias.data(), N * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(dshift, bshift.data(), N * 4, cudaMemcpyHostToDevice));

  std::printf("fp16 pairs vs 3xTF32 on the tensor cores: GEMM %d x %d x %d, chunks of %d, "
              "fp32 contract (ratio <= 1, rel-L2 <= 1e-5)\n", M, N, K, KC);
  std::printf("%-9s %-14s %12s %10s %9s %s\n", "dist", "scheme", "max err/tol", "rel-L2",
              "!=3xTF32", "verdict");
  const dim3 grid(M / 16, N / 8);
  const char *const scheme[] = {"f16x2-row", "f16x2-block16", "f16x2-noscale", "3xtf32-lib"};
  std::vector<float> out((size_t)M * N), out3((size_t)M * N);
  std::vector<double> ref((size_t)M * N);
  int fails = 0;
  for (int d = 0; d < (int)(sizeof kDists / sizeof kDists[0]); ++d) {
    fill_a(d, rng, a);
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double s = bias[n];
        for (int k = 0; k < K; ++k)
          s += (double)a[(size_t)m * K + k] * (double)b[(size_t)k * N + n];
        ref[(size_t)m * N + n] = s;
      }
    CHECK(cudaMemcpy(da, a.data(), a.size() * 4, cudaMemcpyHostToDevice));
    gemm_3xtf32<<<grid, 32>>>(da, db, dbias, dout);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(out3.data(), dout, out3.size() * 4, cudaMemcpyDeviceToHost));
    for (int s = 0; s < 4; ++s) {
      if (s < 3) {
        CHECK(cudaMemset(dout, 0xff, out.size() * 4)); // NaN: an unwritten output fails
        gemm_f16_pairs<<<grid, 32>>>(da, dbhi, dblo, dshift, dbias, dout, s);
        CHECK(cudaGetLastError());
        CHECK(cudaMemcpy(out.data(), dout, out.size() * 4, cudaMemcpyDeviceToHost));
      } else {
        out = out3;
      }
      const Errors e = compare(out, ref);
      size_t differ = 0;
      for (size_t i = 0; i < out.size(); ++i)
        differ += std::memcmp(&out[i], &out3[i], 4) != 0;
      const bool pass = e.worst_ratio <= 1.0 && e.rel_l2 <= 1e-5;
      fails += d < 4 && !pass; // the contract's own distributions must pass
      std::printf("%-9s %-14s %12.3e %10.2e %9zu %s\n", kDists[d], scheme[s], e.worst_ratio,
                  e.rel_l2, differ, pass ? "PASS" : "FAIL");
    }
  }
  std::printf("%s: %d failures on the contract's four distributions\n",
              fails ? "FAIL" : "PASS", fails);
  return fails ? 1 : 0;
}
