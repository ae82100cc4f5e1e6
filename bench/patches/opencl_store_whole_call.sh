#!/usr/bin/env bash
# bench/NOTES.md v88's GPU call (thirty-ninth session; written, not run: the device budget was
# spent). X = main + opencl_store_whole.diff (conv2d_mma.cl's aligned stores without the row test
# per store where the warp's whole run is in the row), against main's own binaries: OpenCL
# sub-sub-mish fp32 (the pairs, issue 4's failing row) and two more users of the mma.sync
# program's aligned stores (sub-sub-mish tf32 and mish-mish fp32 with wgmma=0), three rounds, the
# order reversed in the second; then X's checks (four odd shapes through the fp16 and TF32 paths
# every math and distribution, huge inputs at full size, both workloads at full size with wgmma=0).
# Before the call, here: main's binaries packed (bash bench/pack_gpu_bins.sh ->
# build/gpu_carry/bins.tar.xz) and X's CLI: with the patch applied to the Release build's tree,
# `cmake --build build --target convfuse_tool` (seconds: only the embedded OpenCL source changes)
# and `mkdir -p scratch/bin; xz -9 -T2 -c build/bench/convfuse > scratch/bin/convfuse_X.xz`;
# then revert the patch and rebuild. The call: carry [".devdeps", "build/gpu_carry", "scratch"],
# command `bash bench/patches/opencl_store_whole_call.sh` (~1 min on an H100).
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
B=build-gpu; mkdir -p $B && tar -C $B -xJf build/gpu_carry/bins.tar.xz || exit 1
cp $B/bench/convfuse /tmp/convfuse_main
xz -dc scratch/bin/convfuse_X.xz > /tmp/convfuse_X && chmod +x /tmp/convfuse_X || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
t=$(date +%s)
one() { # round workload:math variant switches
  local f=$OUT/x-$1-${2%:*}-${2#*:}-$3-${4//[=,]/_}.log
  CONVFUSE_OPENCL_SWITCHES=$4 timeout 60 /tmp/convfuse_$3 bench --backend opencl \
    --workload ${2%:*} --math ${2#*:} --iters 30 > $f 2>&1
  echo "r$1 $2 $3 $4 $(grep -m1 median $f | cut -c1-100)"
}
for r in 1 2 3; do
  order="main X"; [ $r = 2 ] && order="X main"
  for wm in sub-sub-mish:fp32 sub-sub-mish:tf32 mish-mish:fp32; do
    sw=; [ $wm != sub-sub-mish:fp32 ] && sw=wgmma=0
    for v in $order; do one $r $wm $v $sw; done
  done
done
echo "timing at $(( $(date +%s) - t )) s"
for sh in 2,20,9,68,130,3,3,1,1,1 3,17,7,36,33,5,5,1,2,1 2,8,6,132,64,3,3,1,0,1 1,5,7,40,56,3,3,1,4,1; do
  for sw in wgmma=0,f16=1 wgmma=0; do
    CONVFUSE_OPENCL_SWITCHES=$sw timeout 60 /tmp/convfuse_X check --backend opencl --workload custom \
      --shape $sh --ops mish,relu --math all --dist all > $OUT/gc.log 2>&1
    echo "X $sw $sh rc=$? $(grep -c PASS $OUT/gc.log) PASS $(grep -c FAIL $OUT/gc.log) FAIL"
  done
done
timeout 60 /tmp/convfuse_X check --backend opencl --workload sub-sub-mish --math fp32 --dist huge > $OUT/gf.log 2>&1
echo "X huge sub-sub-mish fp32 rc=$? $(grep -c PASS $OUT/gf.log) PASS $(grep -c FAIL $OUT/gf.log) FAIL"
CONVFUSE_OPENCL_SWITCHES=wgmma=0 timeout 60 /tmp/convfuse_X check --backend opencl --math all > $OUT/gf.log 2>&1
echo "X full wgmma=0 rc=$? $(grep -c PASS $OUT/gf.log) PASS $(grep -c FAIL $OUT/gf.log) FAIL"
echo "total $(( $(date +%s) - t )) s"
(cd $OUT && tar czf logs-store-whole.tgz *.log && rm -f *.log)
