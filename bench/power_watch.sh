#!/usr/bin/env bash
# Whether a row runs at the GPU's power cap: nvidia-smi samples power, SM clock and the clock
# event reasons every 50 ms while `convfuse bench` runs the row (--iters 400: long enough for
# the cap to act, which short runs' medians hide: bench/NOTES.md v28, v105). Reason 0x4 is the
# software power cap. On the GPU machine, after `bash bench/gpu_session.sh unpack` (or build):
#   bash bench/power_watch.sh [backend:workload:math ...]
cd "$(dirname "$0")/.." || exit 1
source .devdeps/activate.sh 2>/dev/null
cli=${CONVFUSE_CLI:-build-gpu/bench/convfuse}
[ -x "$cli" ] || { echo "power_watch: $cli missing (CONVFUSE_CLI names another)" >&2; exit 1; }
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(cuda:mish-mish:tf32 cuda:mish-mish:fp32 opencl:mish-mish:tf32
                               cuda:sub-sub-mish:tf32 cuda:sub-sub-mish:fp32 opencl:sub-sub-mish:fp32)
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm --format=csv,noheader
samples=$(mktemp)
for row in "${rows[@]}"; do
  IFS=: read -r be w m <<< "$row"
  nvidia-smi --query-gpu=power.draw,clocks.sm,clocks_event_reasons.active \
    --format=csv,noheader,nounits -lms 50 > "$samples" &
  watcher=$!
  timing=$(timeout 60 "$cli" bench --backend "$be" --workload "$w" --math "$m" --iters 400 2>&1 |
           grep -m1 median | cut -c1-70)
  kill $watcher; wait $watcher 2>/dev/null
  # only samples drawing over 300 W: the kernels running, not set-up or the reference
  awk -F', ' -v row="$row" '$1 > 300 { n++; p += $1; c += $2; if ($3 ~ /[4-7C-Fc-f]$/) capped++
      if ($1 > pmax) pmax = $1; if (cmin == "" || $2 < cmin) cmin = $2 }
    END { if (!n) { print row ": no sample over 300 W"; exit }
          printf "%s: %d samples, %.0f W mean (max %.0f), SM %.0f MHz mean (min %s), power-capped in %d\n",
                 row, n, p / n, pmax, c / n, cmin, capped + 0 }' "$samples"
  echo "   $timing"
done
rm -f "$samples"
