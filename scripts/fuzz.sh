#!/usr/bin/env bash
# Builds fuzz/fuzz_plan (libFuzzer + ASan + UBSan, clang; CMake option CONVFUSE_FUZZ) and runs
# it for FUZZ_SECONDS (default 60) from the committed seed corpus fuzz/corpus. New inputs go to
# a scratch corpus in the build directory (the committed one is only read); a crash, leak or
# failed check leaves its input in $build/artifacts/ and a non-zero exit status.
#   FUZZ_SECONDS=600 scripts/fuzz.sh          # a longer run
#   build-fuzz/fuzz/fuzz_plan build-fuzz/artifacts/crash-...   # replay one input
set -uo pipefail
cd "$(dirname "$0")/.."
build=${FUZZ_BUILD_DIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-60}
cc=${FUZZ_CC:-clang}
ci=$(echo "${CI:-}" | tr '[:upper:]' '[:lower:]')

# libFuzzer needs clang and its runtime (Debian: clang + libclang-rt-<version>-dev).
probe=$(mktemp -d)
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$probe/p.c"
if ! command -v "$cc" >/dev/null || ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
  echo "fuzz.sh: '$cc -fsanitize=fuzzer' does not work here (install clang and the libclang-rt-*-dev"
  echo "         package of its version):"
  cat "$probe/err" 2>/dev/null | tail -3
  rm -rf "$probe"
  [ "$ci" = true ] && exit 1
  echo "fuzz.sh: SKIP"
  exit 0
fi
rm -rf "$probe"

cmake -S . -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCONVFUSE_FUZZ=ON -DCONVFUSE_CUDA=OFF -DCONVFUSE_OPENCL=OFF -DCONVFUSE_TESTS=OFF \
  -DCONVFUSE_TOOL=OFF >/dev/null || exit 1
cmake --build "$build" -j"$(nproc)" --target fuzz_plan >/dev/null || {
  cmake --build "$build" --target fuzz_plan; exit 1; }

mkdir -p "$build/corpus" "$build/artifacts"
log="$build/fuzz_plan.log"
# -timeout: one input may take at most 10 s (they take microseconds); -rss_limit_mb: the
# largest inputs allocate a few MiB; leaks are checked per input (LeakSanitizer).
"$build/fuzz/fuzz_plan" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$build/artifacts/" \
  "$build/corpus" fuzz/corpus >"$log" 2>&1
rc=$?
execs=$(grep -h "stat::number_of_executed_units" "$log" | awk '{print $2}')
rate=$(grep -h "stat::average_exec_per_sec" "$log" | awk '{print $2}')
grep -h "^fuzz_plan: [0-9]* inputs" "$log" | tail -1
if [ $rc -eq 0 ]; then
  echo "fuzz: PASS: ${execs:-?} executions in ${seconds} s (${rate:-?}/s), corpus $(ls "$build/corpus" | wc -l) inputs + $(ls fuzz/corpus | wc -l) seeds"
else
  echo "fuzz: FAIL (exit $rc) after ${execs:-?} executions; input(s): $(ls "$build/artifacts" | tr '\n' ' ')"
  grep -B2 -A30 -E "CHECK FAILED|ERROR: (Address|Leak)Sanitizer|runtime error|deadly signal|timeout" "$log" | head -80
fi
exit $rc
