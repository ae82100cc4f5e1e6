#!/usr/bin/env bash
# bench/NOTES.md v89 / v90's GPU call (fortieth session): main's binaries (with the
# channel_pairs switch, v89), v88's X and Y, v90's Z (one chunk's sums without the add) and XZ =
# X + Z, and XZG = X + Z + G (v91, the range guard on the split inputs), run with channel_pairs=1. Before the call, here: `bash bench/pack_gpu_bins.sh`
# (main's binaries -> build/gpu_carry/bins.tar.xz); each variant's CLI from the Release build's
# tree with its patch(es) applied (`cmake --build build --target convfuse_tool`: seconds, only the
# embedded OpenCL source changes), `xz -9 -T2 -c build/bench/convfuse > scratch/bin/convfuse_<V>.xz`
# for V in X (opencl_store_whole.diff), Y (X + opencl_store_whole_wgmma.diff), Z
# (opencl_one_chunk_sum.diff), XZ (X's and Z's), XZG (and opencl_input_guard.diff); revert, rebuild. The call: carry
# [".devdeps", "build/gpu_carry", "scratch"], `bash bench/patches/opencl_pairs_call.sh`
# (~3-4 min on an H100).
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
B=build-gpu; mkdir -p $B && tar -C $B -xJf build/gpu_carry/bins.tar.xz || exit 1
cp $B/bench/convfuse /tmp/convfuse_main
for v in X Y Z XZ XZG; do xz -dc scratch/bin/convfuse_$v.xz > /tmp/convfuse_$v && chmod +x /tmp/convfuse_$v; done
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
t=$(date +%s)
one() { # round workload:math variant switches
  local f=$OUT/x-$1-${2%:*}-${2#*:}-$3-${4//[=,]/_}.log
  CONVFUSE_OPENCL_SWITCHES=$4 timeout 60 /tmp/convfuse_$3 bench --backend opencl \
    --workload ${2%:*} --math ${2#*:} --iters 30 > $f 2>&1
  echo "r$1 $2 $3 ${4:--} $(grep -m1 median $f | cut -c1-90)"
}
# sub-sub-mish fp32 (the pairs): main, main+channel_pairs, X, Z, XZ and XZG with channel_pairs; three rounds
for r in 1 2 3; do
  set -- "main:" "main:channel_pairs=1" "X:" "Z:" "XZ:channel_pairs=1" "XZG:channel_pairs=1"
  [ $r = 2 ] && set -- "XZG:channel_pairs=1" "XZ:channel_pairs=1" "Z:" "X:" "main:channel_pairs=1" "main:"
  for vs in "$@"; do one $r sub-sub-mish:fp32 ${vs%%:*} "${vs#*:}"; done
done
echo "ssm fp32 rounds at $(( $(date +%s) - t )) s"
# X's other mma.sync rows and Y's wgmma rows, two rounds
for r in 1 2; do
  for row in sub-sub-mish:tf32:wgmma=0 mish-mish:fp32:wgmma=0; do
    sw=${row##*:}; wm=${row%:*}; for v in main X; do one $r $wm $v $sw; done; done
  for wm in sub-sub-mish:tf32 mish-mish:tf32 mish-mish:fp32; do
    for v in main Y; do one $r $wm $v ""; done; done
done
echo "other rows at $(( $(date +%s) - t )) s"
chk() { # variant switches shape-or-workload args...
  local v=$1 sw=$2; shift 2
  CONVFUSE_OPENCL_SWITCHES=$sw timeout 90 /tmp/convfuse_$v check --backend opencl "$@" > $OUT/c.log 2>&1
  echo "check $v $sw $* rc=$? $(grep -c PASS $OUT/c.log) PASS $(grep -c FAIL $OUT/c.log) FAIL"
  grep -m3 FAIL $OUT/c.log
}
for v in main XZG; do
  for sh in 2,8,6,132,64,3,3,1,0,1 1,8,9,40,56,3,3,1,4,1 2,48,5,40,64,1,1,1,0,1 2,16,9,40,64,1,3,1,0,1 3,8,33,260,72,3,3,1,0,1; do
    chk $v channel_pairs=1,wgmma=0 --workload custom --shape $sh --ops mish,relu --math fp32 --dist all
  done
  chk $v channel_pairs=1 --workload sub-sub-mish --math fp32 --dist huge
  chk $v channel_pairs=1 --workload sub-sub-mish --math all
done
chk XZG f16=0 --workload sub-sub-mish --math fp32
chk XZG f16=0,wgmma=0 --workload custom --shape 2,8,6,132,64,3,3,1,0,1 --ops mish,relu --math fp32 --dist all
for sh in 2,20,9,68,130,3,3,1,1,1 1,5,7,40,56,3,3,1,4,1; do
  for sw in wgmma=0,f16=1 wgmma=1; do chk Y $sw --workload custom --shape $sh --ops mish,relu --math all --dist all; done
done
chk Y "" --workload mish-mish --math all
echo "checks at $(( $(date +%s) - t )) s"
OUT=$OUT timeout 100 bash bench/gpu_session.sh unpack issue4 2>&1 | grep "issue4-r.*ms$"
echo "total $(( $(date +%s) - t )) s"
(cd $OUT && tar czf logs-cp.tgz *.log 2>/dev/null && rm -f *.log)
