#!/usr/bin/env bash
# bench/NOTES.md v85's GPU call (written in the thirty-seventh session, not run: no machine
# started). V = main + opencl_guard.diff (the range guard as one FMA per sum), W = V +
# opencl_lane_late.diff (the aligned stores' late test once per channel parity), each against
# main's own binaries: OpenCL both workloads both maths, two rounds (the order reversed in the
# second), CUDA sub-sub-mish beside for issue 4's ratio, the wgmma program forced on
# sub-sub-mish fp32 (its pairs, unmeasured on the H200); then W's checks (odd shapes through both
# programs' fp16 paths in every distribution, full size with huge inputs for the guard's rerun,
# full size both maths). W's checks cover V's guard (the same code).
# Before the call, here: main's binaries packed (bash bench/pack_gpu_bins.sh ->
# build/gpu_carry/bins.tar.xz); then each variant's CLI from a copy of the tree, e.g. for W
#   mkdir /tmp/treeW; git ls-files | tar -cf - -T - | tar -C /tmp/treeW -xf -; cd /tmp/treeW
#   patch -p1 < bench/patches/opencl_guard.diff; patch -p1 < bench/patches/opencl_lane_late.diff
#   cmake -S . -B /tmp/bW -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
#     -DCONVFUSE_TESTS=OFF -DCONVFUSE_OPENCL=ON && cmake --build /tmp/bW -j2 --target convfuse_tool
#   cd -; mkdir -p scratch/bin; xz -9 -T2 -c /tmp/bW/bench/convfuse > scratch/bin/convfuse_W.xz
# (V: the first patch only, scratch/bin/convfuse_V.xz; either may be left out.) The call: carry
# [".devdeps", "build/gpu_carry", "scratch"], command `bash bench/patches/opencl_guard_call.sh`
# (~8 min of wall time with both variants). GUARD_CALL_SHORT=1 for a call with little device
# time left (~5 min): the second round times only the sub-sub-mish rows, and the checks take
# the first two odd shapes and the huge inputs on sub-sub-mish fp32 and mish-mish tf32 alone.
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
source .devdeps/activate.sh; export PATH=/usr/local/cuda/bin:$PATH
B=build-gpu
mkdir -p $B && tar -C $B -xJf build/gpu_carry/bins.tar.xz || exit 1
variants=
for v in V W; do
  [ -f scratch/bin/convfuse_$v.xz ] || continue
  xz -dc scratch/bin/convfuse_$v.xz > /tmp/convfuse_$v && chmod +x /tmp/convfuse_$v && variants+=" $v"
done
last=${variants##* }
[ -n "$last" ] || { echo "no variant CLI under scratch/bin"; exit 1; }
cp $B/bench/convfuse /tmp/convfuse_main
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
t=$(date +%s)
one() { # round backend workload:math variant [switches]
  local f=$OUT/v-$1-$2-${3%:*}-${3#*:}-$4${5:+-${5//[=,]/_}}.log
  CONVFUSE_OPENCL_SWITCHES=$5 timeout 90 /tmp/convfuse_$4 bench --backend $2 \
    --workload ${3%:*} --math ${3#*:} --iters 30 > $f 2>&1
  echo "r$1 $2 $3 $4 $5 $(grep -m1 median $f | cut -c1-150)"
}
timing_round() {
  local order="main$variants" v; [ $1 = 2 ] && order="$(echo $variants | tr ' ' '\n' | tac | tr '\n' ' ')main"
  local rows="sub-sub-mish:fp32 sub-sub-mish:tf32 mish-mish:tf32 mish-mish:fp32"
  [ $1 = 2 ] && [ "$short" = 1 ] && rows="sub-sub-mish:fp32 sub-sub-mish:tf32"
  for wm in $rows; do
    for v in $order; do one $1 opencl $wm $v; done
    case $wm in sub-sub-mish:*) one $1 cuda $wm main;; esac
  done
  one $1 opencl sub-sub-mish:fp32 $last wgmma=1
  echo "round $1 at $(( $(date +%s) - t )) s"
}
short=${GUARD_CALL_SHORT:-0}
shapes="2,20,9,68,130,3,3,1,1,1 3,17,7,36,33,5,5,1,2,1"
huge="sub-sub-mish:fp32 mish-mish:tf32"
[ "$short" = 1 ] ||
  { shapes+=" 2,8,6,132,64,3,3,1,0,1 1,5,7,40,56,3,3,1,4,1"; huge+=" mish-mish:fp32 sub-sub-mish:tf32"; }
timing_round 1
for sh in $shapes; do
  for sw in wgmma=0,f16=1 wgmma=1; do
    CONVFUSE_OPENCL_SWITCHES=$sw timeout 120 /tmp/convfuse_$last check --backend opencl --workload custom \
      --shape $sh --ops mish,relu --math all --dist all > $OUT/gc.log 2>&1
    echo "$last $sw $sh rc=$? $(grep -c PASS $OUT/gc.log) PASS $(grep -c FAIL $OUT/gc.log) FAIL"
  done
done
for wm in $huge; do
  timeout 200 /tmp/convfuse_$last check --backend opencl --workload ${wm%:*} --math ${wm#*:} \
    --dist huge > $OUT/gf.log 2>&1
  echo "$last huge full $wm rc=$? $(grep -c PASS $OUT/gf.log) PASS $(grep -c FAIL $OUT/gf.log) FAIL"
done
timeout 200 /tmp/convfuse_$last check --backend opencl --math all > $OUT/full.log 2>&1
echo "$last full both workloads rc=$? $(grep -c PASS $OUT/full.log) PASS $(grep -c FAIL $OUT/full.log) FAIL"
timing_round 2
echo "total $(( $(date +%s) - t )) s"
(cd $OUT && tar czf logs-guard-stores.tgz *.log && rm -f *.log)
