#!/usr/bin/env bash
# Where a kernel's time goes: scratch copies of the tree, each with parts of the wgmma kernels
# cut out by a perl substitution, built beside the main tree and timed in one run (on the GPU
# machine, from the project root, after `source .devdeps/activate.sh`):
#   OUT=$OUT bash bench/variants.sh flat   # sub-sub-mish's flat tiles
#   OUT=$OUT bash bench/variants.sh rows   # mish-mish's row tiles
# Cuts (bench/NOTES.md, v24): nomma = no k-loop (accumulators = bias; stages, chain, stores
# kept); nostore = no output stores (flat: no TMA box or row stores; rows: stores gated behind a test the
# compiler cannot fold, so the chain still runs); nopatch = each block's patch loaded for its
# first stages only (later stages arrive with 0 bytes). Timings only: the cut variants compute
# garbage. Prints one line per (round, variant, math, chain): the median ms of the bench.
# Build here, time there (the GPU machine's build time is device time): `bash bench/variants.sh
# flat build` builds the variants' CLIs under /tmp/variant_*/b and packs them into
# build/gpu_carry/variants.tar.xz; on the GPU machine `VARIANTS_PREBUILT=1 bash
# bench/variants.sh flat` unpacks that and times them against MAIN_BIN (default
# build-gpu/bench/convfuse, the unpack stage's) without building anything.
set -u
set=${1:-flat}
mode=${2:-run}
OUT=${OUT:-out}; mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
# (the fp16 pairs' sums cut to zero, so that the range guard sees finite sums and its 3xTF32
# rerun stays idle)
FLAT_NOMMA='s/wg_chunk<T, 1, true>\(acc, part, koff_lane, prm.kcp, patch, a_lo, 4, desc_big, desc_small,\s*true, a_hi\);/{ (void)a_lo; (void)a_hi; (void)patch; }/; s/flat_pairs_chunk<T>\(part, koff_lane, prm.kcp, patch, a_lo, a_hi, desc_big, desc_small\);/{ for (int i_ = 0; i_ < 8; ++i_) for (int j_ = 0; j_ < 4; ++j_) part[i_][j_] = 0.0f; (void)a_lo; (void)a_hi; (void)patch; }/;'
FLAT_NOSTORE='s/tma_store_3d\(&prm.out_map, buffer \+ b \* BN \* 32, f.l0 \+ 32 \* b, n0, f.n\);/;/; s/bulk_store\(output[^;]*;/;/;'
FLAT_NOPATCH='s/mbar_expect_bytes\(bar, \(uint32_t\)prm.tma_bytes\);\s*tma_load_4d/const bool real_ = tile < first_tile + prm.n_stages; mbar_expect_bytes(bar, real_ ? (uint32_t)prm.tma_bytes : 0u); if (real_) tma_load_4d/;'
ROWS_NOMMA='s/wg_chunk<T, SW>\(acc, wg_part, koff_lane, prm.kcp, patch_b, a_lane, sw_bytes,\s*desc_big \+ k0, desc_small \+ k0, chunk == 0\);/(void)k0;/;'
ROWS_NOSTORE='s/__stcs\((o[01] \+ mi \* 16(?: \+ 8)?), (a\[0\]\[\d\])\);/if ($2 == 1.2345e-30f) __stcs($1, $2);/g;'
case $set in
  flat) names=${VARIANTS:-nomma nostore skel nopatch bare}
        expr_of() { case $1 in nomma) echo "$FLAT_NOMMA" ;; nostore) echo "$FLAT_NOSTORE" ;;
          skel) echo "$FLAT_NOMMA $FLAT_NOSTORE" ;; nopatch) echo "$FLAT_NOPATCH" ;;
          bare) echo "$FLAT_NOMMA $FLAT_NOSTORE $FLAT_NOPATCH" ;; esac; } ;;
  rows) names=${VARIANTS:-nomma nostore skel}
        expr_of() { case $1 in nomma) echo "$ROWS_NOMMA" ;; nostore) echo "$ROWS_NOSTORE" ;;
          skel) echo "$ROWS_NOMMA $ROWS_NOSTORE" ;; esac; } ;;
  *) echo "usage: bench/variants.sh flat|rows" >&2; exit 2 ;;
esac
build() { # source dir, build dir, log
  { cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
      -DCONVFUSE_TESTS=OFF -DCONVFUSE_OPENCL=OFF && cmake --build "$2"; echo "rc=$?"; } > "$3" 2>&1
}
if [ "${VARIANTS_PREBUILT:-0}" = 1 ]; then
  tar -C /tmp -xJf build/gpu_carry/variants.tar.xz || exit 1
  mkdir -p build-variants-main/bench && cp "${MAIN_BIN:-build-gpu/bench/convfuse}" build-variants-main/bench/convfuse
else
for v in $names; do
  d=/tmp/variant_$v
  rm -rf $d && mkdir -p $d && cp -r CMakeLists.txt cmake common include backends kernels_cuda kernels_cl bench tests $d/
  perl -0pi -e "$(expr_of $v)" $d/kernels_cuda/conv_rowtile.cuh $d/kernels_cuda/conv_flat.cuh
  echo "$v: $(diff -r kernels_cuda $d/kernels_cuda | grep -c '^>') lines changed"
  if [ "$mode" = build ]; then # one at a time: a 2-core machine
    build $d $d/b "$OUT/variant-build-$v.log"
  else
    build $d $d/b "$OUT/variant-build-$v.log" &
  fi
done
if [ "$mode" = build ]; then
  for v in $names; do echo "build $v: $(tail -1 "$OUT/variant-build-$v.log")"; done
  mkdir -p build/gpu_carry
  tar -C /tmp -cf - $(for v in $names; do echo variant_$v/b/bench/convfuse; done) |
    xz -T1 -9 > build/gpu_carry/variants.tar.xz
  ls -l build/gpu_carry/variants.tar.xz
  exit 0
fi
build . build-variants-main "$OUT/variant-build-main.log"
wait
for v in main $names; do echo "build $v: $(tail -1 "$OUT/variant-build-$v.log")"; done
fi
bin() { [ $1 = main ] && echo build-variants-main/bench/convfuse || echo /tmp/variant_$1/b/bench/convfuse; }
# flat: the sub-sub-mish shape as a custom problem, so that --ops none runs the same kernel
for round in 1 2; do for v in main $names; do for m in tf32 fp32; do
  if [ $set = flat ]; then
    for ops in mish none; do
      r=$(timeout 60 $(bin $v) bench --backend cuda --workload custom --shape 128,8,256,256,64,3,3 \
        --ops $ops --math $m --iters 30 2>&1 | grep -m1 median | awk '{print $2, $3}')
      echo "r$round $v $m ops=$ops: $r"
    done
  else
    r=$(timeout 60 $(bin $v) bench --backend cuda --workload mish-mish --math $m --iters 20 2>&1 \
      | grep -m1 median | awk '{print $2, $3}')
    echo "r$round $v $m: $r"
  fi
done; done; done
