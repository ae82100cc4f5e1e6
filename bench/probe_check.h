// For the standalone bench probes (store_probe.cu, wgmma_probe.cu, wide_probe.cu,
// split_probe.cu): CHECK(call), a failed CUDA runtime call prints where and why and ends the
// probe; probe_time, the device-event timing every probe's numbers come from.
#ifndef CF_BENCH_PROBE_CHECK_H
#define CF_BENCH_PROBE_CHECK_H

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cuda_runtime.h>

#define CHECK(x)                                                                                 \
  do {                                                                                           \
    cudaError_t e_ = (x);                                                                        \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));  \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

// launch() run `warmups` times, then `runs` times each between two device events on the default
// stream: the median, fastest and slowest of those runs (ms).
struct ProbeTimes {
  double median, min, max;
};
template <class F>
ProbeTimes probe_time(F launch, int warmups, int runs) {
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  for (int i = 0; i < warmups; ++i)
    launch();
  CHECK(cudaGetLastError());
  std::vector<float> ms;
  for (int i = 0; i < runs; ++i) {
    CHECK(cudaEventRecord(e0));
    launch();
    CHECK(cudaEventRecord(e1));
    CHECK(cudaEventSynchronize(e1));
    float t = 0.0f;
    CHECK(cudaEventElapsedTime(&t, e0, e1));
    ms.push_back(t);
  }
  CHECK(cudaGetLastError());
  CHECK(cudaEventDestroy(e0));
  CHECK(cudaEventDestroy(e1));
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front(), ms.back()};
}

#endif
