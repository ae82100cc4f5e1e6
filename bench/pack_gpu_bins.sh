#!/usr/bin/env bash
# Packs the CLI and the test suites of a local Release build for the lent GPU machine (sm_90 +
# sm_90a kernels), so that a device call can skip its ~3-minute build: carry
# build/gpu_carry and run bench/gpu_session.sh unpack <stages>.
#   bench/pack_gpu_bins.sh [build dir, default build]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
grep -q '^CMAKE_BUILD_TYPE:STRING=Release' "$B/CMakeCache.txt" ||
  { echo "$B is not a Release build" >&2; exit 1; }
grep -qE '^CMAKE_CUDA_ARCHITECTURES:[A-Z]+=90$' "$B/CMakeCache.txt" ||
  { echo "$B is not built for CUDA architecture 90 (-DCMAKE_CUDA_ARCHITECTURES=90)" >&2; exit 1; }
# the OpenCL rows of a device run need it; CMake caches OFF when it was configured before
# scripts/install_deps.sh brought the OpenCL headers (twenty-fifth session)
grep -q '^CONVFUSE_OPENCL:BOOL=ON' "$B/CMakeCache.txt" ||
  { echo "$B has no OpenCL backend (reconfigure with -DCONVFUSE_OPENCL=ON)" >&2; exit 1; }
cmake --build "$B"
mkdir -p build/gpu_carry
# the CLI, the suites and the generated constants header (for the probes that include the
# kernels' headers: fp16probe)
# one thread and xz -9's 64 MiB window: the ~8.5 MB binaries are mostly the same library, so
# they pack to ~6.5 MB together (-T0 -6's 8 MiB window and blocks gave 52 MB, near the carry's 64 MiB)
tar -C "$B" -cf - bench/convfuse generated/cf_constants.h $(cd "$B" && ls tests/test_* | grep -v '\.') |
  xz -T1 -9 > build/gpu_carry/bins.tar.xz
ls -l build/gpu_carry/bins.tar.xz
