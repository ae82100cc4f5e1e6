#!/usr/bin/env bash
# bench/NOTES.md v88's GPU call (thirty-ninth session; written, not run: the device budget was
# spent). X = main + opencl_store_whole.diff (conv2d_mma.cl's aligned stores without the row test
# per store where the warp's whole run is in the row); Y = X + opencl_store_whole_wgmma.diff (the
# same in conv2d_wgmma.cl's stores). Against main's own binaries, three rounds, the order
# reversed in the second: the mma.sync program's rows (sub-sub-mish fp32 by default, sub-sub-mish
# tf32 and mish-mish fp32 with wgmma=0: X's change) and the wgmma program's (sub-sub-mish tf32,
# mish-mish tf32 and fp32 by default: Y's change alone, X's code does not run there); then the
# last variant's checks (four odd shapes through the mma.sync fp16 and TF32 paths and the wgmma
# program, every math and distribution; huge inputs at full size; both workloads at full size
# with each program).
# Before the call, here: main's binaries packed (bash bench/pack_gpu_bins.sh ->
# build/gpu_carry/bins.tar.xz); then each CLI from the Release build's tree with the patches
# applied (`cmake --build build --target convfuse_tool`: seconds, only the embedded OpenCL source
# changes): X with the first, `mkdir -p scratch/bin; xz -9 -T2 -c build/bench/convfuse >
# scratch/bin/convfuse_X.xz`; Y with both, the same to convfuse_Y.xz; revert and rebuild. Either
# may be left out. The call: carry [".devdeps", "build/gpu_carry", "scratch"], command
# `bash bench/patches/opencl_store_whole_call.sh` (~2-3 min on an H100).
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
B=build-gpu; mkdir -p $B && tar -C $B -xJf build/gpu_carry/bins.tar.xz || exit 1
cp $B/bench/convfuse /tmp/convfuse_main
variants=
for v in X Y; do
  [ -f scratch/bin/convfuse_$v.xz ] || continue
  xz -dc scratch/bin/convfuse_$v.xz > /tmp/convfuse_$v && chmod +x /tmp/convfuse_$v && variants+=" $v"
done
last=${variants##* }
[ -n "$last" ] || { echo "no variant CLI under scratch/bin"; exit 1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
t=$(date +%s)
one() { # round workload:math variant switches
  local f=$OUT/x-$1-${2%:*}-${2#*:}-$3-${4//[=,]/_}.log
  CONVFUSE_OPENCL_SWITCHES=$4 timeout 60 /tmp/convfuse_$3 bench --backend opencl \
    --workload ${2%:*} --math ${2#*:} --iters 30 > $f 2>&1
  echo "r$1 $2 $3 $4 $(grep -m1 median $f | cut -c1-100)"
}
rows="sub-sub-mish:fp32: sub-sub-mish:tf32:wgmma=0 mish-mish:fp32:wgmma=0 sub-sub-mish:tf32:
mish-mish:tf32: mish-mish:fp32:"
for r in 1 2 3; do
  order="main$variants"; [ $r = 2 ] && order="$(echo $variants | tr ' ' '\n' | tac | tr '\n' ' ')main"
  for row in $rows; do
    sw=${row##*:}; wm=${row%:*}
    for v in $order; do one $r $wm $v $sw; done
  done
  echo "round $r at $(( $(date +%s) - t )) s"
done
for sh in 2,20,9,68,130,3,3,1,1,1 3,17,7,36,33,5,5,1,2,1 2,8,6,132,64,3,3,1,0,1 1,5,7,40,56,3,3,1,4,1; do
  for sw in wgmma=0,f16=1 wgmma=0 wgmma=1; do
    CONVFUSE_OPENCL_SWITCHES=$sw timeout 60 /tmp/convfuse_$last check --backend opencl --workload custom \
      --shape $sh --ops mish,relu --math all --dist all > $OUT/gc.log 2>&1
    echo "$last $sw $sh rc=$? $(grep -c PASS $OUT/gc.log) PASS $(grep -c FAIL $OUT/gc.log) FAIL"
  done
done
for wm in sub-sub-mish:fp32 mish-mish:tf32; do
  timeout 90 /tmp/convfuse_$last check --backend opencl --workload ${wm%:*} --math ${wm#*:} \
    --dist huge > $OUT/gf.log 2>&1
  echo "$last huge $wm rc=$? $(grep -c PASS $OUT/gf.log) PASS $(grep -c FAIL $OUT/gf.log) FAIL"
done
for sw in wgmma=0 wgmma=1; do
  CONVFUSE_OPENCL_SWITCHES=$sw timeout 90 /tmp/convfuse_$last check --backend opencl --math all > $OUT/gf.log 2>&1
  echo "$last full $sw rc=$? $(grep -c PASS $OUT/gf.log) PASS $(grep -c FAIL $OUT/gf.log) FAIL"
done
echo "total $(( $(date +%s) - t )) s"
(cd $OUT && tar czf logs-store-whole.tgz *.log && rm -f *.log)
