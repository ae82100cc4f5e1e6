// CHECK(call) for the standalone bench probes (store_probe.cu, wgmma_probe.cu, wide_probe.cu):
// a failed CUDA runtime call prints where and why, and ends the probe.
#ifndef CF_BENCH_PROBE_CHECK_H
#define CF_BENCH_PROBE_CHECK_H

#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#define CHECK(x)                                                                                 \
  do {                                                                                           \
    cudaError_t e_ = (x);                                                                        \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));  \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

#endif
