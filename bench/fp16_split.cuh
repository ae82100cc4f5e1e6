// x as an fp16 pair hi + lo for the bench probes (fp16_pair_probe.cu, split_probe.cu): hi =
// fp16(x) rounded to nearest even, lo = fp16(x - hi) (the residual is exact in fp32), two K
// values to a register, the lower K in the low half (the mma fragments' order). fp16 carries
// TF32's 11 significant bits, so wherever hi and lo stay normal this is 3xTF32's split with
// round-to-nearest (bench/NOTES.md v49).
#ifndef CF_BENCH_FP16_SPLIT_CUH
#define CF_BENCH_FP16_SPLIT_CUH

#include <cstdint>
#include <cuda_fp16.h>

namespace {

__device__ __forceinline__ void split_f16(float x0, float x1, uint32_t &hi, uint32_t &lo) {
  const __half2 h = __floats2half2_rn(x0, x1);
  const float2 hf = __half22float2(h);
  const __half2 l = __floats2half2_rn(x0 - hf.x, x1 - hf.y);
  hi = *reinterpret_cast<const uint32_t *>(&h);
  lo = *reinterpret_cast<const uint32_t *>(&l);
}

} // namespace

#endif
