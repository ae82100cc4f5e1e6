#!/usr/bin/env bash
# Valgrind memcheck of the convfuse CLI's `check` on small custom workloads: no leaks (of
# convfuse's memory: tests/valgrind.supp lists, with reasons, what PoCL keeps until exit) and
# no invalid access, on the CPU backend and on OpenCL (PoCL) when it has a device.
#   scripts/valgrind.sh [path/to/convfuse]      (default: build-test/bench/convfuse)
# CI=true: OpenCL must be usable (as in the test suites). Exit status non-zero on any error.
set -uo pipefail
cd "$(dirname "$0")/.."
tool=${1:-${BUILD_DIR:-build-test}/bench/convfuse}
if [ ! -x "$tool" ]; then
  echo "valgrind.sh: no convfuse tool at $tool (build it first: scripts/test.sh builds it)" >&2
  exit 1
fi
if ! command -v valgrind >/dev/null; then
  echo "valgrind.sh: valgrind is not installed (scripts/install_deps.sh installs it)" >&2
  exit 1
fi
ci=$(echo "${CI:-}" | tr '[:upper:]' '[:lower:]')
# Leak kinds that count as errors: definite, indirect and possible (still-reachable memory of
# the OpenCL runtime's caches is not a leak). --num-callers: deep enough for the PoCL
# suppressions to see their anchor frame (libpocl): clang's code generation inside PoCL
# recurses past 50 frames (a CI run on a cold cache reported LLVM metadata uniqued by
# clang::CodeGen with no libpocl frame left in the 50 kept, so no suppression matched).
vg=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
    --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible
    --num-callers=200 --suppressions=tests/valgrind.supp)
status=0
run() { # name, then the check arguments
  local name=$1; shift
  local log="${VALGRIND_LOG_DIR:-$(dirname "$tool")}/valgrind-$name.log"
  local t0=$SECONDS
  "${vg[@]}" --log-file="$log" "$tool" check "$@" >"$log.out" 2>&1
  local rc=$?
  local errs leaks
  errs=$(grep -h "ERROR SUMMARY" "$log" | tail -1 | sed 's/^==[0-9]*== //')
  leaks=$(grep -hE "definitely lost|indirectly lost|possibly lost|All heap blocks were freed" "$log" |
          sed 's/^==[0-9]*== *//' | tr -s ' ' | paste -sd ';' -)
  if [ $rc -eq 0 ]; then
    echo "valgrind: $name: PASS ($((SECONDS - t0)) s) $errs | ${leaks:-no leak summary}"
  else
    status=1
    echo "valgrind: $name: FAIL (exit $rc, $((SECONDS - t0)) s) $errs | $leaks; log: $log"
    tail -20 "$log.out"
    grep -A30 -E "Invalid|uninitialised|Conditional jump|lost in loss record" "$log" | head -80
  fi
}

small=(--workload custom --shape 2,3,12,11,5,3,3,1,1,1 --ops sub:0.5,sub:0.2,mish)
strided=(--workload custom --shape 1,4,13,9,6,3,2,2,1,2 --ops mul:1.5,tanh --no-bias)
run cpu --backend cpu "${small[@]}" --math all --dist all
run cpu-strided-nobias --backend cpu "${strided[@]}" --math fp32 --dist all
# OpenCL: a native run with the same kernel options first. PoCL compiles the kernel into its
# disk cache there, so the run under memcheck does not spend minutes in PoCL's LLVM compiler
# (and the native run says whether OpenCL works at all).
if "$tool" check --backend opencl "${small[@]}" --math fp32 --dist rand >/dev/null 2>&1; then
  run opencl --backend opencl "${small[@]}" --math fp32 --dist rand
elif "$tool" info 2>/dev/null | grep -qE '^opencl +available'; then
  echo "valgrind: opencl: FAIL: the native check run failed:"
  "$tool" check --backend opencl "${small[@]}" --math fp32 --dist rand 2>&1 | tail -5
  status=1
elif [ "$ci" = true ]; then
  echo "valgrind: opencl: FAIL: no usable OpenCL device, and CI=true requires one"
  "$tool" info 2>&1 | grep -i '^opencl'
  status=1
else
  echo "valgrind: opencl: SKIP: no usable OpenCL device"
fi
exit $status
