#!/usr/bin/env bash
# OpenCL A/B on the lent GPU: CLIs of main and of candidate builds, rows interleaved, the order
# reversed every other round (sustained load slows whichever runs later by 3-6%, NOTES v80).
#   ROWS="workload:math:variant:switches[:register cap] ..." [ROUNDS=3] [ITERS=60]
#   [CHECKS="variant:switches ..."] bash bench/ab_opencl.sh
# Variant main is build/gpu_carry/bins.tar.xz's CLI (bench/pack_gpu_bins.sh); any other, v, is
# scratch/bin/convfuse_v.xz (here: build with the candidate, `xz -6 -c build/bench/convfuse >
# scratch/bin/convfuse_v.xz`). Carry [".devdeps", "build/gpu_carry", "scratch"]. Each CHECKS
# entry runs convfuse check on odd shapes (every input distribution), huge inputs at full size
# and both maths at full size, on the switches given.
cd "$(dirname "$0")/.."
OUT=${OUT:-out}; mkdir -p "$OUT"
B=build-gpu; mkdir -p $B && tar -C $B -xJf build/gpu_carry/bins.tar.xz || exit 1
cp $B/bench/convfuse /tmp/convfuse_main
cli() { # variant -> its CLI's path, unpacked once
  [ -x /tmp/convfuse_$1 ] || { xz -dc scratch/bin/convfuse_$1.xz > /tmp/convfuse_$1 &&
    chmod +x /tmp/convfuse_$1; } || return 1
  echo /tmp/convfuse_$1
}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
t=$(date +%s)
for r in $(seq 1 "${ROUNDS:-3}"); do
  rows=$ROWS; [ $((r % 2)) = 0 ] && rows=$(tr ' ' '\n' <<< "$ROWS" | tac | tr '\n' ' ')
  for row in $rows; do
    IFS=: read -r w m v sw regs <<< "$row"
    f=$OUT/ab-$r-$w-$m-$v-${sw//[=,]/_}${regs:+-r$regs}.log
    env CONVFUSE_OPENCL_SWITCHES="$sw" ${regs:+CONVFUSE_OPENCL_MAX_REGISTERS=$regs} timeout 60 \
      "$(cli "$v")" bench --backend opencl --workload "$w" --math "$m" --iters "${ITERS:-60}" \
      > "$f" 2>&1
    echo "r$r $w $m $v ${sw:--} ${regs:+regs $regs }$(grep -m1 median "$f" | cut -c1-90)"
  done
done
for c in $CHECKS; do
  IFS=: read -r v sw <<< "$c"
  for args in "--workload custom --shape 2,8,6,132,64,3,3,1,0,1 --ops mish,relu --math fp32 --dist all" \
              "--workload custom --shape 1,8,9,37,64,3,3,1,0,1 --ops mish,relu --math fp32 --dist all" \
              "--workload custom --shape 3,8,33,260,72,3,3,1,0,1 --ops mish,relu --math fp32 --dist all" \
              "--workload sub-sub-mish --math fp32 --dist huge" "--workload sub-sub-mish --math all"; do
    CONVFUSE_OPENCL_SWITCHES=$sw timeout 90 "$(cli "$v")" check --backend opencl $args > $OUT/c.log 2>&1
    echo "check $v ${sw:--} $args rc=$? $(grep -c PASS $OUT/c.log) PASS $(grep -c FAIL $OUT/c.log) FAIL"
    grep -m3 FAIL $OUT/c.log
  done
done
echo "total $(( $(date +%s) - t )) s"
