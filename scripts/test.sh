#!/usr/bin/env bash
# The second command: builds convfuse and runs the whole test suite (what CI runs: .ci/run),
# in four stages, each in its own build directory:
#   unit      every backend it can find (CUDA compiles where nvcc is; its tests skip without
#             a GPU and say so), the Criterion suites under ctest            -> build-test
#   sanitize  the same suites built with ASan + UBSan (CONVFUSE_SANITIZE=ON) on the CPU and
#             OpenCL (PoCL) backends; CUDA off (nvcc objects are not instrumented) -> build-asan
#   valgrind  memcheck of the convfuse CLI's `check` on small workloads, cpu and opencl
#             (scripts/valgrind.sh; uses the unit stage's build)
#   fuzz      fuzz/fuzz_plan, libFuzzer + ASan + UBSan, FUZZ_SECONDS (60) from fuzz/corpus
#             (scripts/fuzz.sh)                                              -> build-fuzz
# STAGES picks and orders them (default "unit sanitize valgrind fuzz"): STAGES=unit is the
# quick run. In CI (CI=true) the OpenCL tests must find a device (PoCL) instead of skipping.
# Every stage runs even if an earlier one failed; the exit status is non-zero if any failed.
# BUILD_DIR / CMAKE_ARGS / CTEST_ARGS apply to the unit stage, ASAN_BUILD_DIR /
# ASAN_CMAKE_ARGS to the sanitize stage.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
stages=${STAGES:-unit sanitize valgrind fuzz}
build=${BUILD_DIR:-build-test}
asan_build=${ASAN_BUILD_DIR:-build-asan}
jobs=$(nproc)

# Configures, builds and runs ctest in $1 with the cmake arguments that follow.
ctest_stage() {
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null || return 1
  cmake --build "$dir" -j"$jobs" >"$dir/build.log" 2>&1 || { tail -40 "$dir/build.log"; return 1; }
  local rc=0
  # shellcheck disable=SC2086
  ctest --test-dir "$dir" --output-on-failure -j"${CTEST_JOBS:-2}" ${CTEST_ARGS:-} || rc=$?
  # Each suite's Criterion summary and the bad-input matrix count (ctest keeps the output).
  awk '/^[0-9]+\/[0-9]+ Testing: / { name = $3 }
       /Synthesis:|bad-input matrix:/ { printf "%-19s %s\n", name, $0 }' \
    "$dir/Testing/Temporary/LastTest.log" 2>/dev/null
  return $rc
}

stage_unit() {
  # shellcheck disable=SC2086
  ctest_stage "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-}
}
stage_sanitize() {
  # shellcheck disable=SC2086
  ctest_stage "$asan_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVFUSE_SANITIZE=ON \
    -DCONVFUSE_CUDA=OFF -DCONVFUSE_TOOL=OFF ${ASAN_CMAKE_ARGS:-}
}
stage_valgrind() {
  if [ ! -x "$build/bench/convfuse" ]; then # the unit stage builds it; without it, build it
    # shellcheck disable=SC2086
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-} >/dev/null &&
      cmake --build "$build" -j"$jobs" --target convfuse_tool >/dev/null || return 1
  fi
  scripts/valgrind.sh "$build/bench/convfuse"
}
stage_fuzz() { scripts/fuzz.sh; }

status=0
summary=()
for st in $stages; do
  if ! declare -F "stage_$st" >/dev/null; then
    echo "test.sh: unknown stage '$st' (stages: unit sanitize valgrind fuzz)" >&2
    status=2
    continue
  fi
  echo "==== stage $st ===="
  t0=$SECONDS
  "stage_$st"
  rc=$?
  [ $rc -ne 0 ] && status=1
  summary+=("$(printf '%-9s %-4s %4d s' "$st" "$([ $rc -eq 0 ] && echo PASS || echo FAIL)" $((SECONDS - t0)))")
done
echo "==== summary ===="
printf '%s\n' "${summary[@]}"
exit $status
