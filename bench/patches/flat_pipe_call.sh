#!/usr/bin/env bash
# One call on the GPU machine for bench/patches/cuda_flat_pipe.diff (bench/NOTES.md v106): PIPE's
# checks, then PIPE against main on CUDA sub-sub-mish tf32, whole and without output stores
# (nostore), through both store paths (rows, boxes). Made here first:
#   bash bench/pack_gpu_bins.sh                                  # main: build/gpu_carry/bins.tar.xz
#   VARIANTS=nostore bash bench/variants.sh flat build           # main's nostore CLI
#   git apply bench/patches/cuda_flat_pipe.diff                  # then PIPE and its nostore CLI:
#   cmake -S . -B /tmp/bpipe -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
#     -DCONVFUSE_TESTS=OFF -DCONVFUSE_OPENCL=OFF -DCMAKE_CUDA_FLAGS=-DCF_FLAT_PIPE
#   cmake --build /tmp/bpipe && mkdir -p scratch/bin && xz -6 -c /tmp/bpipe/bench/convfuse > scratch/bin/convfuse_PIPE.xz
#   (the same from a copy of the tree with variants.sh's FLAT_NOSTORE applied to
#   kernels_cuda/conv_flat_pipe.cuh -> scratch/bin/convfuse_PIPENS.xz), git apply -R
# On the device (carry .devdeps, build/gpu_carry, scratch): bash bench/patches/flat_pipe_call.sh
source .devdeps/activate.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u +%H:%M:%S
bash bench/gpu_session.sh unpack > /dev/null 2>&1
tar -C /tmp -xJf build/gpu_carry/variants.tar.xz
for v in PIPE PIPENS; do xz -dc scratch/bin/convfuse_$v.xz > /tmp/c_$v && chmod +x /tmp/c_$v; done
P=/tmp/c_PIPE
bin() { case $1 in main) echo build-gpu/bench/convfuse ;; PIPE) echo $P ;; PIPENS) echo /tmp/c_PIPENS ;;
  nostore) echo /tmp/variant_nostore/b/bench/convfuse ;; esac; }
for sh in 1,3,20,20,40,3,3,1,0,1 2,8,10,36,70,3,3,1,0,1 3,2,17,36,64,5,5,1,0,1 1,8,7,12,64,1,1,1,0,1 \
          2,4,13,24,33,3,3,1,0,2 1,8,6,256,64,3,3,1,0,1 2,1,40,8,16,3,3,1,0,1 1,1,12,16,8,9,9,1,0,1; do
  o=$(CONVFUSE_TILE=5 timeout 60 $P check --backend cuda --workload custom --shape $sh --ops mish,relu \
      --math tf32 --dist rand 2>&1)
  echo "check $sh: $(grep -c PASS <<< "$o") PASS, $(grep -c FAIL <<< "$o") FAIL"
done
timeout 120 $P check --backend cuda --workload sub-sub-mish --math tf32 --dist all 2>&1 | grep -E "PASS|FAIL"
for sh in 1,3,20,20,40,3,3,1,0,1 2,1,40,8,16,3,3,1,0,1; do for tool in memcheck racecheck; do
  echo "$tool $sh: $(CONVFUSE_TILE=5 timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 $P check \
    --backend cuda --workload custom --shape $sh --ops mish --math tf32 --dist rand 2>&1 |
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY" | head -1)"
done; done
for stores in 1 0; do for r in 1 2; do
  o="main PIPE nostore PIPENS"; [ $r = 2 ] && o="PIPENS nostore PIPE main"
  for v in $o; do for ops in mish none; do
    t=$(CONVFUSE_ROW_STORES=$stores timeout 40 $(bin $v) bench --backend cuda --workload custom \
        --shape 128,8,256,256,64,3,3 --ops $ops --math tf32 --iters 30 2>&1 | grep -m1 median | awk '{print $2, $3}')
    echo "row_stores=$stores r$r $v ops=$ops: $t"
  done; done
done; done
date -u +%H:%M:%S
