#!/usr/bin/env bash
# The first command: sets up a fresh Debian machine, builds convfuse (Release), and runs both
# workloads on the default backend (CONVFUSE_BACKEND, else auto) with a correctness check
# against the double-precision reference, then a timing.
# On a machine without a GPU the default backend is the CPU (PoCL or the reference), where
# the full workloads would take hours: there the batch shrinks to 1 unless BATCH is set.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)"
tool="$build/bench/convfuse"
"$tool" info
backend=${CONVFUSE_BACKEND:-auto}
if [ -z "${BATCH:-}" ]; then
  # Full size when the backend in use is a GPU ("auto (...): <backend> on <device>", then that
  # backend's "kind" line); batch 1 on a CPU device.
  info=$("$tool" info 2>/dev/null || true)
  used=$backend
  [ "$used" = auto ] && used=$(echo "$info" | sed -n 's/^auto ([^)]*): \([a-z]*\) on .*/\1/p')
  kind=$(echo "$info" | awk -v b="$used" '$1 == b {f = 1; next} f && /kind/ {print $2; exit}')
  if [ "$used" = cuda ] || [ "$kind" = gpu ]; then BATCH=0; else BATCH=1; fi
  echo "run.sh: backend $used (${kind:-?} device): $([ "$BATCH" = 0 ] && echo full size || echo batch $BATCH)"
fi
batch_arg=(); [ "$BATCH" != 0 ] && batch_arg=(--batch "$BATCH")
status=0
for w in sub-sub-mish mish-mish; do
  "$tool" check --workload "$w" --backend "$backend" --math fp32 --dist rand "${batch_arg[@]}" || status=1
  "$tool" bench --workload "$w" --backend "$backend" --math fp32 --iters "${ITERS:-30}" "${batch_arg[@]}" || status=1
done
exit $status
