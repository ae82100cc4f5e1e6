#!/usr/bin/env bash
# One call on the lent GPU machine: build, test, check and time, logs under $OUT.
#   bench/gpu_session.sh [build] [test] [check] [bench] [torch] [sanitize] [ncu]
# Each stage's full output goes to $OUT/<stage>.log; a short summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}; mkdir -p "$OUT"
stages=${*:-build test check bench torch}
[ -f .devdeps/activate.sh ] && source .devdeps/activate.sh
export PATH=/usr/local/cuda/bin:$PATH
B=build-gpu
summary=()
run() { # name, timeout, command...
  local name=$1 t=$2; shift 2
  local t0=$(date +%s)
  timeout "$t" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  summary+=("$(printf '%-10s rc=%-3s %4ss' "$name" "$rc" "$(( $(date +%s) - t0 ))")")
  return $rc
}
for s in $stages; do
  case $s in
    build) run build 400 bash -c "cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release \
             -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build $B" || { tail -40 "$OUT/build.log"; break; } ;;
    test) CI=true run test 400 ctest --test-dir $B --output-on-failure -j4 --timeout 300 ;;
    check) run check 400 $B/bench/convfuse check ;;
    bench) for w in sub-sub-mish mish-mish; do for m in fp32 tf32; do for be in cuda opencl; do
             run "bench-$w-$m-$be" 120 $B/bench/convfuse bench --backend $be --workload $w \
               --math $m --iters 30 --csv "$OUT/bench.csv"; done; done; done ;;
    torch) run torch 400 python3 bench/torch_anchors.py --tool $B/bench/convfuse \
             --backends cuda,opencl --csv "$OUT/anchors.csv" ;;
    sanitize) run memcheck 300 compute-sanitizer --tool memcheck --error-exitcode 9 \
                $B/tests/test_backends --filter='*cuda*' ;
              run racecheck 300 compute-sanitizer --tool racecheck --error-exitcode 9 \
                $B/tests/test_backends --filter='*cuda*' ;;
    *) echo "unknown stage $s" ;;
  esac
done
# Compact digest (full logs under $OUT)
[ -f "$OUT/test.log" ] && grep -hE "Synthesis|tests passed|Failed|\*\*\*" "$OUT/test.log"
[ -f "$OUT/check.log" ] && grep -hE "PASS|FAIL" "$OUT/check.log"
for f in "$OUT"/bench-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f")"; done
[ -f "$OUT/torch.log" ] && sed -n '/^NVIDIA\|^workload/,$p' "$OUT/torch.log"
for f in "$OUT"/memcheck.log "$OUT"/racecheck.log; do [ -f "$f" ] && tail -3 "$f"; done
printf '%s\n' "${summary[@]}"
