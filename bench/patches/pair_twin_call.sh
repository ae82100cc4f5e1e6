#!/usr/bin/env bash
# One GPU call for the forty-sixth session's two patches (bench/patches/README.md): issue 4's
# rows on main's binaries, then PR2 (mish_pair_rcp.diff) and TB (cuda_flat_twin.diff), each
# checked and timed against main's CLI. Needs build/gpu_carry/bins.tar.xz (main's, by
# bench/pack_gpu_bins.sh) and scratch/bin/convfuse_{PR2,TB}.xz; a missing variant is skipped
# with a note. Rows are interleaved, the order reversed every other round (NOTES v80).
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
source .devdeps/activate.sh
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u +%H:%M
OUT=$OUT/g timeout 170 bash bench/gpu_session.sh unpack issue4 2>&1 | grep -E "issue4-r|issue4-mm|unpack"
M=build-gpu/bench/convfuse
variant() { # name -> /tmp/convfuse_<name>, or a note and status 1
  [ -f scratch/bin/convfuse_$1.xz ] || { echo "== $1: scratch/bin/convfuse_$1.xz missing, skipped"; return 1; }
  xz -dc scratch/bin/convfuse_$1.xz > /tmp/convfuse_$1 && chmod +x /tmp/convfuse_$1
}
median() { timeout 40 "$@" --iters 50 2>&1 | grep -m1 median | cut -c1-60; }
counts() { echo "rc=$1 $(grep -c PASS $2) PASS $(grep -c FAIL $2) FAIL"; grep -m3 -E "FAIL|rror" $2; }

if variant PR2; then
  echo "== PR2 A/B"
  for r in 1 2; do
    order="main PR2"; [ $r = 2 ] && order="PR2 main"
    for row in cuda:sub-sub-mish:tf32 cuda:sub-sub-mish:fp32 cuda:mish-mish:tf32 \
               opencl:sub-sub-mish:fp32 opencl:sub-sub-mish:tf32 opencl:mish-mish:tf32; do
      IFS=: read -r be w m <<< "$row"
      for v in $order; do
        c=$M; [ $v = PR2 ] && c=/tmp/convfuse_PR2
        echo "r$r $be $w $m $v $(median $c bench --backend $be --workload $w --math $m)"
      done
    done
  done
  echo "== PR2 checks"
  for be in cuda opencl; do
    for args in "--workload sub-sub-mish --math all --dist all" \
                "--workload custom --shape 3,5,13,17,7,3,3,2,1,1 --ops mish,mish --math all --dist all" \
                "--workload custom --shape 2,8,10,36,70,3,3,1,0,1 --ops sub:0.5,mish,mish --math all --dist all"; do
      timeout 80 /tmp/convfuse_PR2 check --backend $be $args > /tmp/pc.log 2>&1
      echo "PR2 $be $args $(counts $? /tmp/pc.log)"
    done
  done
fi

if variant TB; then
  echo "== TB checks (CONVFUSE_TILE=8: WG3 flat twin)"
  for sh in 20,8,64,64,64,3,3,1,0,1 12,3,64,64,40,3,3,1,0,1 9,2,66,66,64,5,5,1,0,1 \
            3,8,24,24,64,3,3,1,0,1 2,8,10,36,70,3,3,1,0,1 1,8,6,256,64,3,3,1,0,1; do
    for rs in 0 1; do
      CONVFUSE_TILE=8 CONVFUSE_ROW_STORES=$rs timeout 60 /tmp/convfuse_TB check --backend cuda \
        --workload custom --shape $sh --ops mish,relu --math all --dist rand > /tmp/tc.log 2>&1
      echo "TB $sh rows=$rs $(counts $? /tmp/tc.log | head -1) $(grep -m1 -oE 'WG[0-9] flat[a-z ]*' /tmp/tc.log)"
    done
  done
  CONVFUSE_TILE=8 timeout 100 /tmp/convfuse_TB check --backend cuda --workload sub-sub-mish \
    --math all --dist all > /tmp/tf.log 2>&1
  echo "TB full $(counts $? /tmp/tf.log)"
  echo "== TB A/B"
  for r in 1 2 3; do
    order="main TB"; [ $((r % 2)) = 0 ] && order="TB main"
    for m in tf32 fp32; do for v in $order; do
      if [ $v = TB ]; then c="env CONVFUSE_TILE=8 /tmp/convfuse_TB"; else c=$M; fi
      echo "r$r sub-sub-mish $m $v $(median $c bench --backend cuda --workload sub-sub-mish --math $m)"
    done; done
  done
fi
date -u +%H:%M
