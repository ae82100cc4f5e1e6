#!/usr/bin/env bash
# bench/NOTES.md v91's G alone against main (fortieth session's call measured it only on top of
# X + Z with channel_pairs=1, v92). Before the call, here: `bash bench/pack_gpu_bins.sh` (main's
# binaries -> build/gpu_carry/bins.tar.xz); G's CLI: `git apply bench/patches/opencl_input_guard.diff
# && cmake --build build --target convfuse_tool && mkdir -p scratch/bin && xz -9 -T2 -c
# build/bench/convfuse > scratch/bin/convfuse_G.xz`, then `git apply -R` the diff and rebuild.
# The call: carry [".devdeps", "build/gpu_carry", "scratch"], `bash
# bench/patches/opencl_input_guard_call.sh` (~1.5 min on an H100). G may land where sub-sub-mish
# fp32 (its program: the mma.sync pairs) is not slower in two of three rounds, nor mish-mish fp32
# with wgmma=0 (the streamed pairs, also split), and every check passes.
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
B=build-gpu; mkdir -p $B && tar -C $B -xJf build/gpu_carry/bins.tar.xz || exit 1
cp $B/bench/convfuse /tmp/convfuse_main
xz -dc scratch/bin/convfuse_G.xz > /tmp/convfuse_G && chmod +x /tmp/convfuse_G || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
t=$(date +%s)
one() { # round workload:math variant switches
  local f=$OUT/g-$1-${2%:*}-${2#*:}-$3.log
  CONVFUSE_OPENCL_SWITCHES=$4 timeout 60 /tmp/convfuse_$3 bench --backend opencl \
    --workload ${2%:*} --math ${2#*:} --iters 60 > $f 2>&1
  echo "r$1 $2 $3 ${4:--} $(grep -m1 median $f | cut -c1-90)"
}
for r in 1 2 3; do
  order="main G"; [ $r = 2 ] && order="G main"
  for v in $order; do one $r sub-sub-mish:fp32 $v ""; done
  for v in $order; do one $r mish-mish:fp32 $v wgmma=0; done
done
chk() { # variant switches args...
  local v=$1 sw=$2; shift 2
  CONVFUSE_OPENCL_SWITCHES=$sw timeout 90 /tmp/convfuse_$v check --backend opencl "$@" > $OUT/c.log 2>&1
  echo "check $v $sw $* rc=$? $(grep -c PASS $OUT/c.log) PASS $(grep -c FAIL $OUT/c.log) FAIL"
  grep -m3 FAIL $OUT/c.log
}
for sh in 2,8,6,132,64,3,3,1,0,1 1,8,9,37,64,3,3,1,0,1 2,64,5,40,128,3,3,1,0,1 3,8,33,260,72,3,3,1,0,1; do
  chk G wgmma=0 --workload custom --shape $sh --ops mish,relu --math fp32 --dist all
done
chk G "" --workload sub-sub-mish --math fp32 --dist huge
chk G "" --workload sub-sub-mish --math all
echo "total $(( $(date +%s) - t )) s"
