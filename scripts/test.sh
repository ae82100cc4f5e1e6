#!/usr/bin/env bash
# The second command: builds convfuse with every backend it can find and runs the whole test
# suite (Criterion suites under ctest). In CI (CI=true) the OpenCL suite must find a device
# (PoCL) instead of skipping; CUDA tests skip where no GPU exists, and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
build=${BUILD_DIR:-build-test}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
status=0
ctest --test-dir "$build" --output-on-failure -j"${CTEST_JOBS:-2}" ${CTEST_ARGS:-} || status=$?
# Each suite's Criterion summary (ctest keeps the suites' output in its log).
grep -h "Synthesis:" "$build/Testing/Temporary/LastTest.log" 2>/dev/null || true
exit $status
