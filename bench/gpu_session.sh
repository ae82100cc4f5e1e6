#!/usr/bin/env bash
# One call on the lent GPU machine: build, test, check and time, logs under $OUT.
#   bench/gpu_session.sh [build] [test] [check] [bench] [torch] [sanitize] [ncu] [plantime]
#   [storeprobe] [quickcheck] [tiles] ... (the case list below has them all)
# Each stage's full output goes to $OUT/<stage>.log; a short summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}; mkdir -p "$OUT"
stages=${*:-build test check bench torch}
[ -f .devdeps/activate.sh ] && source .devdeps/activate.sh
export PATH=/usr/local/cuda/bin:$PATH
B=build-gpu
summary=()
run() { # name, timeout, command...
  local name=$1 t=$2; shift 2
  local t0=$(date +%s)
  timeout "$t" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  summary+=("$(printf '%-10s rc=%-3s %4ss' "$name" "$rc" "$(( $(date +%s) - t0 ))")")
  return $rc
}
ab_rounds() { # base CLI: it and this build's, interleaved twice so clock drift hits both alike;
              # AB_BACKEND (cuda), AB_WORKLOADS (both) and AB_MATHS (tf32 fp32) narrow it
  local be=${AB_BACKEND:-cuda}
  for round in 1 2; do for w in ${AB_WORKLOADS:-sub-sub-mish mish-mish}; do for m in ${AB_MATHS:-tf32 fp32}; do
    run "ab$round-base-$be-$w-$m" 90 "$1" bench --backend $be --workload $w --math $m --iters 30
    run "ab$round-new-$be-$w-$m" 90 $B/bench/convfuse bench --backend $be --workload $w --math $m --iters 30
  done; done; done
}
sanitize_shapes() { # tag, CONVFUSE_TILE, math, shapes...: memcheck and racecheck of each shape
                    # (ops mish, dist rand) through that tile
  local tag=$1 tile=$2 math=$3 sh tool; shift 3
  for sh in "$@"; do for tool in memcheck racecheck; do
    CONVFUSE_TILE=$tile run "$tool-$tag-$sh" 200 compute-sanitizer --tool $tool \
      --error-exitcode 9 $B/bench/convfuse check --backend cuda --workload custom \
      --shape $sh --ops mish --math $math --dist rand
  done; done
}
stall_metrics() { # ncu's stall reasons per issued instruction, comma-terminated (prof, clprof)
  local x
  for x in barrier long_scoreboard short_scoreboard mio_throttle lg_throttle math_pipe_throttle \
           wait not_selected selected dispatch_stall drain membar branch_resolving no_instruction \
           tex_throttle imc_miss sleeping misc; do
    printf 'smsp__average_warps_issue_stalled_%s_per_issue_active.ratio,' $x
  done
}
cl_ptx_program() { # stage, workload:math[:switches]: builds /tmp/cl_ptx_run and fills
                   # a fresh program cache with that OpenCL program; sets w, tag, key (the
                   # cache file's build-option text: the fp16 program where f16=1) and d (the cache)
  local sw
  run "$1-build" 60 cc -O2 -std=c11 -I. -I/usr/local/cuda/include \
    -o /tmp/cl_ptx_run bench/cl_ptx_run.c -L/usr/local/cuda/lib64/stubs -lcuda -lm
  IFS=: read -r w m sw <<< "$2"; tag=$w-$m${sw:+-${sw//[=,]/_}}
  key=; [[ ",$sw," == *",f16=1,"* ]] && key="-DCFM_F16=1"
  d=/tmp/$1-$tag; rm -rf $d; mkdir -p $d
  XDG_CACHE_HOME=$d CONVFUSE_OPENCL_SWITCHES=$sw run "$1-cl-$tag" 120 \
    $B/bench/convfuse bench --backend opencl --workload $w --math $m --iters 3
}
for s in $stages; do
  case $s in
    build) run build 400 bash -c "cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release \
             -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build $B" || { tail -40 "$OUT/build.log"; break; } ;;
    unpack) # binaries built here instead (cmake -DCMAKE_CUDA_ARCHITECTURES=90 Release, packed
            # by bench/pack_gpu_bins.sh): no build on the device; the test stage runs them as is
            mkdir -p $B && run unpack 60 tar -C $B -xJf ${PREBUILT:-build/gpu_carry/bins.tar.xz} ;;
    test) if [ -f $B/CTestTestfile.cmake ]; then
            CI=true run test 400 ctest --test-dir $B --output-on-failure -j4 --timeout 300
          else # unpacked binaries: the suites one after another, Criterion's summary each
            CI=true CONVFUSE_VERBOSE=0 run test 400 bash -c "for t in $B/tests/test_*; do
              echo \"== \$t\"; \$t --verbose=0 2>&1 | tail -3; done"
          fi ;;
    check) run check 400 $B/bench/convfuse check ;;
    bench) for w in sub-sub-mish mish-mish; do for m in fp32 tf32; do for be in cuda opencl; do
             run "bench-$w-$m-$be" 120 $B/bench/convfuse bench --backend $be --workload $w \
               --math $m --iters 30 --csv "$OUT/bench.csv"; done; done; done ;;
    torch) run torch-ssm 500 python3 bench/torch_anchors.py --tool $B/bench/convfuse \
             --workloads sub-sub-mish --batches ${SWEEP:-1,8,32,128} --backends cuda,opencl \
             --csv "$OUT/anchors.csv"
           run torch-mm 400 python3 bench/torch_anchors.py --tool $B/bench/convfuse \
             --workloads mish-mish --backends cuda,opencl --csv "$OUT/anchors.csv" ;;
    sanitize) # The CLI is one process (Criterion forks per test): every MMA tile forced in
              # turn (5, 6, 7: the wgmma menu's) over odd shapes (N,C,H,W,K,R,S,stride,pad,dilation), both math modes.
              shapes="2,5,9,300,64,3,3,1,1,1 1,20,7,250,70,3,3,2,1,1 2,3,12,200,33,5,5,1,2,2 1,512,4,140,64,3,3,1,1,1 1,1,5,130,7,1,1,1,0,1"
              for t in ${SAN_TILES:-1 2 3 4 5 6 7}; do for sh in $shapes; do
                CONVFUSE_TILE=$t run "memcheck-T$t-$sh" 120 compute-sanitizer --tool memcheck \
                  --error-exitcode 9 $B/bench/convfuse check --backend cuda --workload custom \
                  --shape $sh --ops mish,relu --math all --dist rand
              done; done
              # racecheck: one multi-chunk shape (stored from registers), one single-chunk
              # shape (output staged in shared memory, with the carry between tiles)
              for t in ${SAN_TILES:-1 2 3 4 5 6 7}; do for sh in 1,20,7,250,70,3,3,2,1,1 2,5,9,300,64,3,3,1,1,1; do
                CONVFUSE_TILE=$t run "racecheck-T$t-$sh" 200 compute-sanitizer --tool racecheck \
                  --error-exitcode 9 $B/bench/convfuse check --backend cuda --workload custom \
                  --shape $sh --ops mish --math all --dist rand
              done; done ;;
    wgcheck) # the wgmma tile (CONVFUSE_TILE 5) checked without a sanitizer: odd shapes in
             # both maths, then full size (mish-mish fp32: its split weights do not fit resident,
             # the plan falls back).
             # Widths that are multiples of 4 with stride_w 1 and dilation_h 1 load the patch
             # by TMA (the last four shapes: a partial channel chunk, 5x5 with padding over two
             # row tiles, a 1x1 kernel with a 72-channel chunk, a width below one segment).
             # CHECK_TILES="1 5" also checks mma.sync T0 (its TMA kernels) on the same shapes.
             # The TMA kernels run as many stages as fit; CONVFUSE_STAGES=2 checks the 2-deep ring.
             for t in ${CHECK_TILES:-5}; do
               for sh in 2,5,9,300,64,3,3,1,1,1 1,20,7,250,70,3,3,2,1,1 2,3,12,200,33,5,5,1,2,2 1,512,4,140,64,3,3,1,1,1 1,1,5,130,7,1,1,1,0,1 3,64,6,254,128,3,3,1,0,1 \
                         3,11,9,36,33,3,3,1,1,1 2,4,7,260,20,5,5,1,2,1 1,80,5,8,64,1,1,1,0,1 2,8,6,12,64,3,3,1,1,1; do
                 CONVFUSE_TILE=$t run "wgcheck-T$t-$sh" 120 $B/bench/convfuse check --backend cuda \
                   --workload custom --shape $sh --ops mish,relu --math all --dist rand
               done
               CONVFUSE_TILE=$t run "wgcheck-T$t-full" 300 $B/bench/convfuse check --backend cuda
             done ;;
    streamcheck) # the streamed wgmma tiles (CONVFUSE_TILE 6: one TF32 product, 7: 3xTF32, in
                 # its math; each of STREAM_TILES, default both; patch by TMA, >= 2 K chunks): a
                 # partial last chunk with two channel tiles and left padding, a row over two
                 # tiles, 5x5 (padded K: the zero runs) with a partial channel tile, 2x2 with an
                 # odd output width (35) and a last chunk of 2 channels, a last chunk of one
                 # channel, 4x4 (64 K per chunk: an even number of k-steps, so the A register
                 # sets do not alternate between chunks) over 3 and over 4 chunks; then one chunk
                 # (the forced tile does not apply: the plan falls back, checked all the same).
                 # 1x1 with >= 2 chunks of 72 channels does not fit (117 KB per stage). Then
                 # memcheck and racecheck on four, then full size.
                 sshapes="2,20,9,68,130,3,3,1,1,1 1,64,6,300,128,3,3,1,0,1 3,17,7,36,33,5,5,1,2,1 2,20,6,36,40,2,2,1,0,1 1,9,4,12,16,3,3,1,1,1 2,12,9,40,70,4,4,1,1,1 1,16,6,44,64,4,4,1,0,1 2,8,6,12,64,3,3,1,1,1"
                 for st in ${STREAM_TILES:-6 7}; do
                   sm=$([ "$st" = 7 ] && echo fp32 || echo tf32)
                   for sh in $sshapes; do
                     CONVFUSE_TILE=$st run "streamcheck-T$st-$sh" 120 $B/bench/convfuse check --backend cuda \
                       --workload custom --shape $sh --ops mish,relu --math $sm --dist rand
                   done
                   for sh in 2,20,9,68,130,3,3,1,1,1 3,17,7,36,33,5,5,1,2,1 2,20,6,36,40,2,2,1,0,1 2,12,9,40,70,4,4,1,1,1; do
                     for tool in memcheck racecheck; do
                       CONVFUSE_TILE=$st run "$tool-stream-T$st-$sh" 200 compute-sanitizer --tool $tool \
                         --error-exitcode 9 $B/bench/convfuse check --backend cuda --workload custom \
                         --shape $sh --ops mish --math $sm --dist rand
                     done
                   done
                   CONVFUSE_TILE=$st run "streamcheck-T$st-full" 300 $B/bench/convfuse check --backend cuda \
                     --workload mish-mish --math $sm
                 done ;;
    rowcheck) # the row-channel tile (kernels_cuda/conv_rowch.cuh, bench/NOTES.md v77, v78)
              # through WG entry 1 forced (CONVFUSE_TILE 6, tf32), streamed and with resident
              # weights, at the default stage count (4) and at ROWCH_STAGES (default 2): K past C R
              # (4 chunks, the last 12 of 16 row channels) with two channel tiles, three 128-pixel
              # tiles per row, 27 row channels with 4 columns of padding and 13 tiles (a resident
              # team on dummy tiles only), a last tile of 2 pixels, 200 channels, a 10-pixel row
              # (entry 1 needs two of its 8-channel chunks: C > 8), 300 row channels (too many
              # to keep resident: streamed whatever the switch); each must say "row-channel" in
              # its plan (grep the logs); then memcheck and racecheck on two each way, then
              # mish-mish full size every distribution
              for sh in 2,20,9,68,130,3,3,1,0,1 1,64,6,300,128,3,3,1,0,1 1,9,7,36,33,3,3,1,4,1 \
                        2,12,6,132,64,3,3,1,0,1 3,16,5,128,200,3,3,1,0,1 1,17,4,12,16,3,3,1,0,1 \
                        1,100,4,16,24,3,3,1,0,1; do
                for res in 0 1; do for ns in 1 ${ROWCH_STAGES:-2}; do
                  CONVFUSE_ROW_CHANNELS_RESIDENT=$res CONVFUSE_ROW_CHANNELS=$ns CONVFUSE_TILE=6 \
                    run "rowcheck-r$res-$ns-$sh" 120 \
                    $B/bench/convfuse check --backend cuda --workload custom --shape $sh \
                    --ops mish,relu --math tf32 --dist all
                done; done
              done
              for res in 0 1; do
                CONVFUSE_ROW_CHANNELS_RESIDENT=$res sanitize_shapes rowch-r$res 6 tf32 \
                  2,20,9,68,130,3,3,1,0,1 1,9,7,36,33,3,3,1,4,1
                CONVFUSE_ROW_CHANNELS_RESIDENT=$res run rowcheck-r$res-full 300 $B/bench/convfuse \
                  check --backend cuda --workload mish-mish --math tf32
              done ;;
    guardcheck) # the fp16 kernels' range guard (bench/NOTES.md v52): inputs past fp16's 65504
                # (--dist huge) on the streamed tiles forced, one fp16 product (T6, tf32, the
                # default) and pairs (T7, fp32, CONVFUSE_F16=1), on odd shapes, full size and
                # under memcheck; the rerun must give the TF32 / 3xTF32 answer
                for sh in 2,20,9,68,130,3,3,1,1,1 3,17,7,36,33,5,5,1,2,1 2,12,9,40,70,4,4,1,1,1; do
                  for tm in 6:tf32 7:fp32; do
                    CONVFUSE_F16=1 CONVFUSE_TILE=${tm%:*} run "guardcheck-T${tm%:*}-$sh" 120 \
                      $B/bench/convfuse check --backend cuda --workload custom --shape $sh \
                      --ops mish,relu --math ${tm#*:} --dist all
                  done
                done
                for tm in 6:tf32 7:fp32; do
                  CONVFUSE_F16=1 CONVFUSE_TILE=${tm%:*} run "memcheck-guard-T${tm%:*}" 200 \
                    compute-sanitizer --tool memcheck --error-exitcode 9 $B/bench/convfuse check \
                    --backend cuda --workload custom --shape 2,20,9,68,130,3,3,1,1,1 --ops mish \
                    --math ${tm#*:} --dist huge
                  CONVFUSE_F16=1 run "guardcheck-full-${tm#*:}" 300 $B/bench/convfuse check \
                    --backend cuda --workload mish-mish --math ${tm#*:} --dist huge
                done
                # OpenCL's f16 switch (NOTES v53: weight scales, pairs' input 2^6, guard and
                # rerun), odd shapes of clcheck and both workloads full size, every dist
                for sh in 1,8,9,37,64,3,3,1,0,1 2,64,5,40,128,3,3,1,0,1 1,5,13,41,33,5,5,2,2,1 2,20,6,68,40,3,3,1,4,1; do
                  CONVFUSE_OPENCL_SWITCHES=f16=1 run "clguard-$sh" 120 $B/bench/convfuse check \
                    --backend opencl --workload custom --shape $sh --ops mish,relu --math all \
                    --dist all
                done
                CONVFUSE_OPENCL_SWITCHES=f16=1 run "clguard-full" 400 $B/bench/convfuse check \
                  --backend opencl --math all --dist all ;;
    streamab) # mish-mish in SAB_MATH (tf32): the planner's choice (0), then each of SAB_TILES
              # forced, two rounds
              for round in 1 2; do for st in 0 ${SAB_TILES:-5 6}; do
                CONVFUSE_TILE=$st run "sab$round-T$st-${SAB_MATH:-tf32}" 60 $B/bench/convfuse bench \
                  --backend cuda --workload mish-mish --math ${SAB_MATH:-tf32} --iters 30
              done; done ;;
    f16ab) # mish-mish on the streamed tiles, then on fp16 (CONVFUSE_F16=1, NOTES v51: one
           # fp16 product for tf32 on WG1, pairs for fp32 on WG2), both maths, two rounds; the
           # fp16 kernels' checks are streamcheck with CONVFUSE_F16=1 (in an OUT of its own)
           for round in 1 2; do for m in tf32 fp32; do for v in 0 1; do
             CONVFUSE_F16=$v run "f16ab$round-$m-$v" 60 $B/bench/convfuse bench \
               --backend cuda --workload mish-mish --math $m --iters 30
           done; done; done ;;
    pairsab) # WG1's 8-byte pixel-pair stores (CONVFUSE_STORE_PAIRS, NOTES v56; fp16 only):
             # mish-mish tf32 (WG1 on one fp16 product), off and on, three rounds
             for round in 1 2 3; do for v in 0 1; do
               CONVFUSE_STORE_PAIRS=$v run "pairsab$round-$v" 60 \
                 $B/bench/convfuse bench --backend cuda --workload mish-mish --math tf32 --iters 30
             done; done ;;
    rowsab) # the flat tiles' per-channel-row bulk stores (CONVFUSE_ROW_STORES, NOTES v57):
            # sub-sub-mish both maths, off and on, three rounds
            for round in 1 2 3; do for m in fp32 tf32; do for v in 0 1; do
              CONVFUSE_ROW_STORES=$v run "rowsab$round-$m-$v" 60 \
                $B/bench/convfuse bench --backend cuda --workload sub-sub-mish --math $m --iters 30
            done; done; done ;;
    pairscheck) # the pixel-pair stores checked: WG1 forced (T6) on even output widths (68, 36,
                # 12, 298) and an odd one (39: the 4-byte fallback), fp16 (the pairs) and TF32
                # (4-byte stores whatever the switch), every dist; racecheck and memcheck of one
                # shape; full size
                for f in 1 0; do
                  for sh in 2,20,9,68,130,3,3,1,1,1 3,17,7,36,33,5,5,1,2,1 1,9,4,12,16,3,3,1,1,1 1,64,6,300,128,3,3,1,0,1 2,12,9,40,70,4,4,1,1,1; do
                    CONVFUSE_F16=$f CONVFUSE_STORE_PAIRS=1 CONVFUSE_TILE=6 run "pairscheck-f$f-$sh" 120 \
                      $B/bench/convfuse check --backend cuda --workload custom --shape $sh \
                      --ops mish,relu --math tf32 --dist all
                  done
                done
                for tool in memcheck racecheck; do
                  CONVFUSE_STORE_PAIRS=1 CONVFUSE_TILE=6 run "$tool-pairs" 200 compute-sanitizer \
                    --tool $tool --error-exitcode 9 $B/bench/convfuse check --backend cuda \
                    --workload custom --shape 2,20,9,68,130,3,3,1,1,1 --ops mish --math tf32 --dist rand
                done
                CONVFUSE_STORE_PAIRS=1 run "pairscheck-full" 300 $B/bench/convfuse check \
                  --backend cuda --workload mish-mish --math tf32 --dist all ;;
    flatcheck) # flat tiles (wgmma; CONVFUSE_TILE 5): odd shapes they take (one K chunk, no
               # padding, unit stride, p*q % 4 == 0): padded K with a partial plane tile, two
               # channel tiles, 5x5, 1x1, dilation 2, a 254-wide plane, 6-wide rows (44 output
               # rows per tile); check, then memcheck and racecheck on three of them
               fshapes="1,3,20,20,40,3,3,1,0,1 2,8,10,36,70,3,3,1,0,1 3,2,17,36,64,5,5,1,0,1 1,8,7,12,64,1,1,1,0,1 2,4,13,24,33,3,3,1,0,2 1,8,6,256,64,3,3,1,0,1 2,1,40,8,16,3,3,1,0,1"
               for sh in $fshapes; do
                 CONVFUSE_TILE=5 run "flatcheck-$sh" 120 $B/bench/convfuse check --backend cuda \
                   --workload custom --shape $sh --ops mish,relu --math all --dist rand
               done
               for sh in 1,3,20,20,40,3,3,1,0,1 2,8,10,36,70,3,3,1,0,1 2,1,40,8,16,3,3,1,0,1; do
                 for tool in memcheck racecheck; do
                   CONVFUSE_TILE=5 run "$tool-flat-$sh" 200 compute-sanitizer --tool $tool \
                     --error-exitcode 9 $B/bench/convfuse check --backend cuda --workload custom \
                     --shape $sh --ops mish --math all --dist rand
                 done
               done ;;
    flatpairs) # fp16 pairs on the flat tiles (bench/NOTES.md v55; CUDA's fp32 default with
               # CONVFUSE_F16 unset): flatcheck's odd shapes in fp32 on WG0 flat (T5), every dist
               # (huge: the range guard and its 3xTF32 rerun), sub-sub-mish full size every
               # dist; the sanitizers in stage flatpairsan
               for sh in 1,3,20,20,40,3,3,1,0,1 2,8,10,36,70,3,3,1,0,1 3,2,17,36,64,5,5,1,0,1 1,8,7,12,64,1,1,1,0,1 2,4,13,24,33,3,3,1,0,2 1,8,6,256,64,3,3,1,0,1 2,1,40,8,16,3,3,1,0,1; do
                 CONVFUSE_TILE=5 run "flatpairs-$sh" 120 $B/bench/convfuse check --backend cuda \
                   --workload custom --shape $sh --ops mish,relu --math fp32 --dist all
               done
               run "flatpairs-full" 300 $B/bench/convfuse check --backend cuda \
                 --workload sub-sub-mish --math fp32 --dist all ;;
    flatpairsan) # flatpairs' sanitizers: memcheck and racecheck of two odd shapes, memcheck of
                 # the guard's rerun
               sanitize_shapes flatpairs 5 fp32 2,8,10,36,70,3,3,1,0,1 2,1,40,8,16,3,3,1,0,1
               CONVFUSE_TILE=5 run "memcheck-flatpairs-huge" 200 compute-sanitizer --tool memcheck \
                 --error-exitcode 9 $B/bench/convfuse check --backend cuda --workload custom \
                 --shape 2,8,10,36,70,3,3,1,0,1 --ops mish --math fp32 --dist huge ;;
    flatpairsab) # sub-sub-mish fp32 on fp16 pairs (default) against 3xTF32 (CONVFUSE_F16=0),
                 # interleaved three times
                 for round in 1 2 3; do for v in 1 0; do
                   CONVFUSE_F16=$v run "flatpairsab$round-$v" 60 $B/bench/convfuse bench \
                     --backend cuda --workload sub-sub-mish --math fp32 --iters 30
                 done; done ;;
    flat-ab) # flat tiles (default) against row tiles (CONVFUSE_FLAT=0) in one run, interleaved
             # FLAT_ROUNDS times, on sub-sub-mish (mish-mish is not eligible)
             for round in $(seq ${FLAT_ROUNDS:-2}); do for m in tf32 fp32; do for v in 1 0; do
               CONVFUSE_FLAT=$v run "flat$v-r$round-sub-sub-mish-$m" 60 $B/bench/convfuse bench \
                 --backend cuda --workload sub-sub-mish --math $m --iters 30
             done; done; done ;;
    ncu) for m in tf32 fp32; do
           run "ncu-ssm-$m" 200 ncu --clock-control none -k regex:'conv_(mma|flat|stream|rowch)' -c 1 \
             --section SpeedOfLight --section Occupancy --section WarpStateStats \
             --section SchedulerStats --section MemoryWorkloadAnalysis --section LaunchStats \
             $B/bench/convfuse bench --backend cuda --workload sub-sub-mish --batch 16 \
             --math $m --iters 1 --warmup 0
           run "ncu-mm-$m" 200 ncu --clock-control none -k regex:'conv_(mma|flat|stream|rowch)' -c 1 \
             --section SpeedOfLight --section Occupancy --section WarpStateStats \
             --section SchedulerStats --section MemoryWorkloadAnalysis --section LaunchStats \
             $B/bench/convfuse bench --backend cuda --workload mish-mish --batch 8 \
             --math $m --iters 1 --warmup 0; done ;;
    epi) for ops in none relu mish mish,mish; do
           run "epi-$ops" 100 $B/bench/convfuse bench --backend cuda --workload custom \
             --shape 128,8,256,256,64,3,3 --ops $ops --math tf32 --iters 20; done ;;
    tiles) for w in sub-sub-mish mish-mish; do for m in tf32 fp32; do for t in ${TILES:-1 2 3 4 5}; do
             CONVFUSE_TILE=$t run "tile-$w-$m-T$((t-1))" 60 $B/bench/convfuse bench \
               --backend cuda --workload $w --math $m --iters 20; done; done; done ;;
    prof) mets=$(stall_metrics)
          mets+="sm__inst_executed.sum,sm__cycles_elapsed.avg,smsp__issue_active.avg.pct_of_peak_sustained_active,"
          mets+="l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum,"
          mets+="l1tex__data_pipe_lsu_wavefronts_mem_shared_op_st.sum,smsp__inst_executed_op_shared_ld.sum,"
          mets+="smsp__inst_executed_op_global_st.sum,l1tex__t_requests_pipe_lsu_mem_global_op_st.sum,"
          mets+="lts__t_sectors_op_write.sum,dram__bytes_write.sum,dram__bytes_read.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,gpu__time_duration.sum"
          for wm in ${PROF_RUNS:-sub-sub-mish:tf32 mish-mish:tf32}; do
            run "prof-${wm%:*}-${wm#*:}" 300 ncu --clock-control none -k regex:'conv_(mma|flat|stream|rowch)' \
              -c 1 --metrics "$mets" $B/bench/convfuse bench --backend cuda --workload ${wm%:*} \
              --batch 8 --math ${wm#*:} --iters 1 --warmup 0
          done
          for o in conv_mma conv_wgmma; do cuobjdump -sass $B/CMakeFiles/convfuse.dir/kernels_cuda/$o.cu.o > "$OUT/sass-$o.log" 2>&1; done ;;
    chunk144) # the same tree with MMA_CHUNK_K = 144 (two 8-channel chunks per stage at 3x3)
              rm -rf /tmp/v144 && mkdir -p /tmp/v144 && cp -r CMakeLists.txt cmake common include backends kernels_cuda kernels_cl bench tests /tmp/v144/
              sed -i 's/^MMA_CHUNK_K .*/MMA_CHUNK_K       144/' /tmp/v144/common/constants.def
              run build144 400 bash -c "cmake -S /tmp/v144 -B /tmp/v144/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DCONVFUSE_TESTS=OFF -DCONVFUSE_OPENCL=OFF && cmake --build /tmp/v144/b"
              for w in sub-sub-mish mish-mish; do for m in tf32 fp32; do for t in 1 2; do
                CONVFUSE_TILE=$t run "c144-$w-$m-T$((t-1))" 60 /tmp/v144/b/bench/convfuse bench --backend cuda \
                  --workload $w --math $m --iters 20; done; done; done ;;
    portable) # issue 4: the OpenCL portable (FFMA) path on the same GPU, tensor cores off
           for w in sub-sub-mish mish-mish; do for m in fp32 tf32; do
             CONVFUSE_OPENCL_TENSOR_CORES=0 run "bench-$w-$m-opencl_portable" 120 $B/bench/convfuse \
               bench --backend opencl --workload $w --math $m --iters 30 --csv "$OUT/portable.csv"
           done; done ;;
    sass) # executed instructions and stall samples per SASS line of one tensor-core kernel:
          # SASS_WORKLOAD (default sub-sub-mish) in SASS_MATH (default tf32), batch SASS_BATCH
          # (default 8)
          run sass-collect 300 ncu --clock-control none -k regex:'conv_(mma|flat|stream|rowch)' -c 1 \
            --section SourceCounters --section WarpStateStats --section SchedulerStats \
            --section SpeedOfLight -o "$OUT/sass" -f $B/bench/convfuse bench --backend cuda \
            --workload ${SASS_WORKLOAD:-sub-sub-mish} --batch ${SASS_BATCH:-8} \
            --math ${SASS_MATH:-tf32} \
            --iters 1 --warmup 0
          run sass-details 120 ncu -i "$OUT/sass.ncu-rep" --page details
          run sass-source 120 ncu -i "$OUT/sass.ncu-rep" --page source --csv --print-source sass ;;
    tma-ab) # the patch by TMA (default) and by cp.async (CONVFUSE_TMA=0) in one run,
            # interleaved twice
            for round in 1 2; do for wm in sub-sub-mish:tf32 sub-sub-mish:fp32 mish-mish:tf32 mish-mish:fp32; do
              for v in 1 0; do
                CONVFUSE_TMA=$v run "tma$v-r$round-${wm%:*}-${wm#*:}" 60 $B/bench/convfuse bench \
                  --backend cuda --workload ${wm%:*} --math ${wm#*:} --iters 30
              done; done; done ;;
    stages-ab) # the TMA kernels' ring at 2 stages (CONVFUSE_STAGES=2) and at the planner's
               # depth (as many as fit, up to MMA_MAX_STAGES) in one run, interleaved
               # STAGES_ROUNDS times
               for round in $(seq ${STAGES_ROUNDS:-2}); do
                 for wm in sub-sub-mish:tf32 sub-sub-mish:fp32 mish-mish:tf32 mish-mish:fp32; do
                   for v in 2 ${STAGES_MAX:-4}; do
                     CONVFUSE_STAGES=$v run "stages$v-r$round-${wm%:*}-${wm#*:}" 60 \
                       $B/bench/convfuse bench --backend cuda --workload ${wm%:*} \
                       --math ${wm#*:} --iters 30
                   done; done; done ;;
    ab) # A/B in one run: the tree in ./ab_base (e.g. `git archive <ref>` of the baseline,
        # untracked) against this one, interleaved twice so clock drift hits both alike.
        # AB_WORKLOADS narrows it (default: both workloads).
        run build-base 400 bash -c "cmake -S ab_base -B /tmp/abb -G Ninja -DCMAKE_BUILD_TYPE=Release \
          -DCMAKE_CUDA_ARCHITECTURES=90 -DCONVFUSE_TESTS=OFF -DCONVFUSE_OPENCL=OFF && cmake --build /tmp/abb"
        ab_rounds /tmp/abb/bench/convfuse ;;
    abbin) # A/B in one run against a prebuilt baseline CLI (BASE_BIN, default the carried
           # build/gpu_carry/convfuse_base.xz, e.g. the previous commit's build/bench/convfuse),
           # interleaved twice; AB_WORKLOADS narrows it (default: both workloads)
           base=/tmp/convfuse_base
           xz -dc ${BASE_BIN:-build/gpu_carry/convfuse_base.xz} > $base && chmod +x $base &&
             ab_rounds $base ;;
    clswitch) # the OpenCL tensor-core program's switches A/B in one run (one binary): the
              # defaults, then each CONVFUSE_OPENCL_SWITCHES value in CLSWITCHES (space-separated,
              # e.g. "aligned_stores=0 one_chunk=1,k_unrolled=1"), interleaved twice; AB_WORKLOADS and
              # AB_MATHS narrow it. A switch a program cannot take is named in its log.
              for round in 1 2; do for w in ${AB_WORKLOADS:-sub-sub-mish mish-mish}; do
                for m in ${AB_MATHS:-tf32 fp32}; do for v in default ${CLSWITCHES:-}; do
                  sw=$v; [ $v = default ] && sw=
                  CONVFUSE_OPENCL_SWITCHES=$sw run "clsw$round-${v//[=,]/_}-$w-$m" 120 \
                    $B/bench/convfuse bench --backend opencl --workload $w --math $m --iters 30
                done; done; done; done ;;
    ab-prof) # ncu of the ab_base build (built by the ab stage) and this one: sub-sub-mish tf32, batch 8
        mets="gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sectors_op_read.sum,lts__t_sectors_op_write.sum,sm__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,l1tex__t_requests_pipe_lsu_mem_global_op_st.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_ldgsts.sum,smsp__warps_issue_stalled_lg_throttle.avg,smsp__warps_issue_stalled_long_scoreboard.avg,sm__warps_active.avg.pct_of_peak_sustained_active,launch__grid_size,launch__registers_per_thread"
        for v in base new; do bin=$B/bench/convfuse; [ $v = base ] && bin=/tmp/abb/bench/convfuse
          run "abprof-$v" 200 ncu --clock-control none -k regex:'conv_(mma|flat|stream|rowch)' -c 1 --metrics "$mets" $bin bench \
            --backend cuda --workload sub-sub-mish --batch 8 --math tf32 --iters 1 --warmup 0; done ;;
    cltuning) # OpenCL sub-sub-mish, the device's defaults against the other class's values
              # forced (bench/NOTES.md v63, v67, v68: the H100's are off32=0, one_chunk=0,
              # k_unrolled=0 for one TF32 product and 152 registers for the fp32 pairs; the
              # H200's the opposite and 128), two rounds; the plan line says which
              # defaults the device took
              h100=0 # which class the device is in: its plan line says so (one short run)
              $B/bench/convfuse bench --backend opencl --workload sub-sub-mish --math tf32 \
                --iters 1 2>&1 | grep -q "the H100's defaults" && h100=1
              for round in 1 2; do for m in tf32 fp32; do for v in default other; do
                sw=; cap=
                if [ $v = other ] && [ $h100 = 1 ]; then
                  sw=$([ $m = tf32 ] && echo off32=1,one_chunk=1,k_unrolled=1)
                  cap=$([ $m = fp32 ] && echo 128)
                elif [ $v = other ]; then
                  sw=$([ $m = tf32 ] && echo off32=0,one_chunk=0,k_unrolled=0)
                  cap=$([ $m = fp32 ] && echo 152)
                fi
                CONVFUSE_OPENCL_SWITCHES=$sw CONVFUSE_OPENCL_MAX_REGISTERS=$cap \
                  run "cltuning$round-$m-$v" 120 $B/bench/convfuse bench --backend opencl \
                  --workload sub-sub-mish --math $m --iters 30
              done; done; done ;;
    plantime) # OpenCL context + plan creation with convfuse's program cache cold, warm and off
              # (convfuse plantime). NVIDIA's own compute cache (~/.nv/ComputeCache) is off, so
              # that cold and off really compile; PoCL's too, for a PoCL device.
              for w in sub-sub-mish mish-mish; do for m in fp32 tf32; do
                CUDA_CACHE_DISABLE=1 POCL_KERNEL_CACHE=0 run "plantime-$w-$m" 300 \
                  $B/bench/convfuse plantime --backend opencl --workload $w --math $m --iters 3
              done; done ;;
    clcheck) # the OpenCL tensor-core kernel on odd shapes, both maths: an odd output width (the
             # per-warp staging's 16-byte alignment then differs by channel), channels not a
             # multiple of 8 or of the tile, stride 2 with 5x5 and padding, 1x1, one input
             # channel with dilation 2, several K chunks (weights streamed), batch 1; then widths
             # and pads that are multiples of 4 (the patch by 16-byte copies): stride 2 with 5x5,
             # a width below one tile (copies across the right edge), pad 4, dilation 2; all on
             # the mma.sync program (wgmma=0: clwgcheck checks the wgmma program)
             clshapes="1,8,9,37,64,3,3,1,0,1 2,3,11,70,20,3,3,1,1,1 1,5,13,41,33,5,5,2,2,1 3,16,6,50,72,1,1,1,0,1 1,1,7,131,9,3,3,1,1,2 2,64,5,40,128,3,3,1,0,1 1,24,8,66,100,3,3,1,1,1
                       1,5,13,44,33,5,5,2,0,1 2,6,7,36,20,3,3,1,0,1 1,3,9,40,16,3,3,1,4,1 1,1,7,132,9,3,3,1,0,2 2,20,6,68,40,3,3,1,4,1"
             for sh in $clshapes; do
               CONVFUSE_OPENCL_SWITCHES=wgmma=0 run "clcheck-$sh" 120 $B/bench/convfuse check \
                 --backend opencl --workload custom \
                 --shape $sh --ops mish,relu --math all --dist rand
             done ;;
    issue4) # issue 4's figures (OpenCL within 1.25x of CUDA, on the H200): both backends, both
            # workloads and maths, two rounds interleaved, CUDA first in the first and OpenCL
            # first in the second (sustained load slows whichever runs later by 3-6%: bench/
            # NOTES.md v80), the GPU's clocks after each run in issue4-clocks.log; then
            # sub-sub-mish on the mma.sync program (wgmma=0), its default until v74, and its fp32
            # pairs at the H100's register cap 152 (v68 (g))
            for round in 1 2; do for w in sub-sub-mish mish-mish; do for m in tf32 fp32; do
              order="cuda opencl"; [ $round = 2 ] && order="opencl cuda"
              for be in $order; do
                run "issue4-r$round-$w-$m-$be" 90 $B/bench/convfuse bench --backend $be \
                  --workload $w --math $m --iters 30 --csv "$OUT/issue4.csv"
                echo "r$round $w $m $be: $(nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv,noheader 2>&1)" >> "$OUT/issue4-clocks.log"
              done; done; done; done
            for m in tf32 fp32; do
              CONVFUSE_OPENCL_SWITCHES=wgmma=0 run "issue4-mmasync-$m" 90 $B/bench/convfuse bench \
                --backend opencl --workload sub-sub-mish --math $m --iters 30
            done
            CONVFUSE_OPENCL_SWITCHES=wgmma=0 CONVFUSE_OPENCL_MAX_REGISTERS=152 run \
              "issue4-mmasync-cap152" 90 $B/bench/convfuse bench --backend opencl \
              --workload sub-sub-mish --math fp32 --iters 30 ;;
    clwgcheck) # the OpenCL wgmma program (kernels_cl/conv2d_wgmma.cl) forced on shapes it takes:
               # streamed and resident weights, channels not a multiple of 16 or of the tile with
               # padding, an odd output width (one float per store), 1x1 with three channel
               # tiles, an output row over three 128-pixel tiles, 5x5 on one product's 64-channel
               # tile (fp32's pairs refuse it: mma.sync), 8 and 5 channels (several kernel rows
               # per chunk of 16 row channels, v74); then mish-mish and sub-sub-mish at full
               # size in every distribution (huge: the range guard's rerun)
               for sh in 2,64,5,40,128,3,3,1,0,1 2,20,6,68,40,3,3,1,4,1 2,16,10,44,64,2,2,1,0,1 \
                         3,32,6,52,136,1,1,1,0,1 1,16,4,260,64,3,3,1,0,1 1,16,9,40,64,5,5,1,0,1 \
                         2,8,6,132,64,3,3,1,0,1 1,5,7,40,56,3,3,1,4,1; do
                 CONVFUSE_OPENCL_SWITCHES=wgmma=1 run "clwgcheck-$sh" 120 $B/bench/convfuse check \
                   --backend opencl --workload custom --shape $sh --ops mish,relu --math all --dist rand
               done
               run clwgcheck-mm 300 $B/bench/convfuse check --backend opencl --workload mish-mish
               run clwgcheck-ssm 300 $B/bench/convfuse check --backend opencl --workload sub-sub-mish ;;
    quickcheck) run quickcheck 300 $B/bench/convfuse check --backend cuda --dist rand
                for t in 1 2 3 4 7; do
                  CONVFUSE_TILE=$t run "deep-T$t" 120 $B/bench/convfuse check --backend cuda \
                    --workload custom --shape 1,512,4,140,64,3,3,1,1,1 --ops mish,relu --math all
                done ;;
    fp16probe) # fp16 pairs vs 3xTF32 on the tensor cores (accuracy, not speed; NOTES v49)
               run fp16probe-build 200 nvcc -O3 -arch=sm_90 -std=c++17 -I. -I$B/generated \
                 -o /tmp/fp16_pair_probe bench/fp16_pair_probe.cu &&
                 run fp16probe 300 /tmp/fp16_pair_probe ;;
    splitprobe) # WG2's k-loop alone: 3xTF32 against fp16 pairs on wgmma (and one product of
                # each), A gathered and split in registers (bench/split_probe.cu; NOTES v51)
                run splitprobe-build 200 nvcc -O3 -gencode=arch=compute_90a,code=sm_90a -std=c++17 \
                  -I. -I$B/generated -o /tmp/split_probe bench/split_probe.cu &&
                  run splitprobe 200 /tmp/split_probe ;;
    wgmmaprobe) # the tensor cores alone: TF32 wgmma throughput by N, A source and warpgroups
                run wgmmaprobe-build 200 nvcc -O3 -gencode=arch=compute_90a,code=sm_90a -std=c++17 \
                  -I. -o /tmp/wgmma_probe bench/wgmma_probe.cu && run wgmmaprobe 200 /tmp/wgmma_probe ;;
    wideprobe) # the 256 x 128 streamed-weights prototype (needs the build stage's generated header)
               run wideprobe-build 200 nvcc -O3 -gencode=arch=compute_90a,code=sm_90a -std=c++17 \
                 -I. -I$B/generated -o /tmp/wide_probe bench/wide_probe.cu &&
                 run wideprobe 120 /tmp/wide_probe ${WIDE_BATCH:-64} ;;
    clwgmma) # can OpenCL on NVIDIA's driver run wgmma (three routes, bench/cl_wgmma_probe.c)
             run clwgmma-build 60 cc -O2 -std=c11 -o /tmp/cl_wgmma_probe bench/cl_wgmma_probe.c -lOpenCL &&
               run clwgmma 60 /tmp/cl_wgmma_probe ;;
    clwgmmamm) # mish-mish on wgmma from OpenCL C (bench/cl_wgmma_mm.cl): TF32, fp16, fp16 pairs,
               # each checked on sampled outputs and timed (bench/NOTES.md v69)
               run clwgmmamm-build 60 cc -O2 -std=c11 -I. -o /tmp/cl_wgmma_mm_probe \
                 bench/cl_wgmma_mm_probe.c backends/opencl/ptx_patch.c -lOpenCL -lm &&
                 run clwgmmamm 400 bash -c 'for m in 0 1 2; do /tmp/cl_wgmma_mm_probe $m 128 30; done' ;;
    clprof) # the OpenCL tensor-core kernel under Nsight Compute: its program (PTX) from a fresh
            # program cache, run by the CUDA driver API (bench/cl_ptx_run.c); timing, spot-check,
            # then the prof stage's metrics. CLPROF_RUNS narrows it (workload:math ..., or
            # workload:math:switches for a CONVFUSE_OPENCL_SWITCHES value; with f16=1 the fp16
            # program is the one run, not its rerun's)
            mets=$(stall_metrics)
            mets+="sm__inst_executed.sum,sm__cycles_elapsed.avg,smsp__issue_active.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active,"
            mets+="l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum,smsp__inst_executed_op_shared_ld.sum,"
            mets+="smsp__inst_executed_op_global_st.sum,l1tex__t_requests_pipe_lsu_mem_global_op_st.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum,"
            mets+="lts__t_sectors_op_write.sum,lts__t_sectors_op_read.sum,dram__bytes_write.sum,dram__bytes_read.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,gpu__time_duration.sum,launch__registers_per_thread,launch__occupancy_limit_registers,launch__occupancy_limit_shared_mem,"
            mets+="lts__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__throughput.avg.pct_of_peak_sustained_active,"
            mets+="l1tex__t_bytes_pipe_lsu_mem_local_op_ld.sum,l1tex__t_bytes_pipe_lsu_mem_local_op_st.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,sm__pipe_shared_cycles_active.avg.pct_of_peak_sustained_active"
            for wm in ${CLPROF_RUNS:-sub-sub-mish:tf32 mish-mish:tf32 sub-sub-mish:fp32 mish-mish:fp32}; do
              cl_ptx_program clprof "$wm"
              CL_PTX_KEY=$key CL_PTX_DUMP=$OUT/clprof-$tag.ptx run "clprof-cu-$tag" 120 \
                /tmp/cl_ptx_run $d/convfuse $w 20
              CL_PTX_KEY=$key run "clprof-ncu-$tag" 300 ncu --clock-control none -k cf_conv2d_mma \
                -c 1 --metrics "$mets" /tmp/cl_ptx_run $d/convfuse $w 0
            done ;;
    clmodes) # the OpenCL program's fast and slow launches (bench/NOTES.md v80, v93, v95): per
             # launch, 30 in a row under ncu without cache flushes, its time beside the metrics
             # that could tell the two modes apart (DRAM and L2 traffic and hit rates, warps
             # active, the SMs' busiest and idlest cycles, stalls); CLPROF_RUNS as for clprof
             mets="gpu__time_duration.sum,sm__inst_executed.sum,dram__bytes_read.sum,dram__bytes_write.sum,"
             mets+="lts__t_sector_hit_rate.pct,lts__t_sectors_op_read.sum,lts__t_sectors_op_write.sum,"
             mets+="l1tex__t_sector_hit_rate.pct,sm__warps_active.avg.pct_of_peak_sustained_active,"
             mets+="sm__cycles_active.max,sm__cycles_active.min,sm__cycles_active.avg,"
             mets+="smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio,"
             mets+="smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio"
             for wm in ${CLPROF_RUNS:-sub-sub-mish:fp32 sub-sub-mish:fp32:channel_pairs=1}; do
               cl_ptx_program clmodes "$wm"
               CL_PTX_KEY=$key run "clmodes-ncu-$tag" 300 ncu --clock-control none --cache-control none \
                 -k cf_conv2d_mma -c 32 --csv --metrics "$mets" /tmp/cl_ptx_run $d/convfuse $w 30
             done ;;
    clsource) # where the OpenCL tensor-core program's warps stall, per SASS instruction: ncu's
              # source page (stall samples, executed instructions) of the program clprof runs,
              # as CSV under $OUT for bench/sass_hotspots.py; CLPROF_RUNS as for clprof
              for wm in ${CLPROF_RUNS:-mish-mish:fp32}; do
                cl_ptx_program clsource "$wm"
                CL_PTX_KEY=$key run "clsource-ncu-$tag" 300 ncu --clock-control none -k cf_conv2d_mma \
                  -c 1 --section SourceCounters --section WarpStateStats --page source --csv \
                  --print-source sass /tmp/cl_ptx_run $d/convfuse $w 0
                cp "$OUT/clsource-ncu-$tag.log" "$OUT/clsource-$tag.csv"
              done ;;
    cllocal) # how much local memory one OpenCL work-group really gets (bench/cl_local_probe.c)
             run cllocal-build 60 cc -O2 -std=c11 -o /tmp/cl_local_probe bench/cl_local_probe.c -lOpenCL &&
               run cllocal 60 /tmp/cl_local_probe ;;
    storeprobe) # the store stream alone: sub-sub-mish's output written in candidate patterns
                run storeprobe-build 200 nvcc -O3 -arch=sm_90 -std=c++17 -I. -o /tmp/store_probe bench/store_probe.cu &&
                  run storeprobe 200 /tmp/store_probe ;;
    *) echo "unknown stage $s" ;;
  esac
done
# Compact digest (full logs under $OUT)
[ -f "$OUT/test.log" ] && grep -hE "Synthesis|tests passed|Failed|\*\*\*" "$OUT/test.log"
[ -f "$OUT/check.log" ] && grep -hE "PASS|FAIL" "$OUT/check.log"
for f in "$OUT"/bench-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f")"; done
for f in "$OUT"/torch-*.log; do [ -f "$f" ] && sed -n '/^NVIDIA/,$p' "$f"; done
for f in "$OUT"/streamcheck-*.log "$OUT"/*-stream-*.log; do [ -f "$f" ] && echo "$(basename $f .log): rc $(grep -cE " PASS" "$f") PASS $(grep -cE " FAIL" "$f") FAIL $(grep -m1 -oE "kernel=[a-z_0-9]+ tile=[0-9x]+|ERROR SUMMARY: [0-9]+|RACECHECK SUMMARY: [0-9]+ hazards?" "$f" | head -1)"; done
for f in "$OUT"/flatcheck-*.log; do [ -f "$f" ] && echo "$(basename $f .log): $(grep -cE " PASS" "$f") PASS $(grep -cE " FAIL" "$f") FAIL $(grep -m1 -oE "kernel=[a-z_0-9]+ tile=[0-9x]+" "$f") $(grep -m1 -oE "WG0 flat" "$f")"; done
for f in "$OUT"/flat[01]-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f" | awk '{print $2, $3}') $(grep -m1 -oE "stages=[0-9]+ grid=[0-9x]+ smem=[0-9]+B" "$f")"; done
for f in "$OUT"/rowcheck-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -c PASS "$f") PASS $(grep -c FAIL "$f") FAIL, $(grep -q 'resident weights' "$f" && echo resident || { grep -q row-channel "$f" && echo streamed || echo NOT-row-channel; })"; done
for f in "$OUT"/issue4-[rm]*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f" | awk '{print $2, $3}')"; done
[ -f "$OUT/issue4-clocks.log" ] && cat "$OUT/issue4-clocks.log"
for f in "$OUT"/clwgcheck-*.log; do [ -f "$f" ] && echo "$(basename $f .log): $(grep -cE " PASS" "$f") PASS $(grep -cE " FAIL" "$f") FAIL $(grep -m1 -oE "wgmma program" "$f")"; done
for f in "$OUT"/wgcheck-*.log; do [ -f "$f" ] && echo "$(basename $f .log): $(grep -cE " PASS" "$f") PASS $(grep -cE " FAIL" "$f") FAIL $(grep -m1 -oE "kernel=[a-z_0-9]+ tile=[0-9x]+" "$f")"; done
for f in "$OUT"/memcheck-*.log "$OUT"/racecheck-*.log; do [ -f "$f" ] && echo "$(basename $f .log): $(grep -hE "ERROR SUMMARY|RACECHECK SUMMARY" "$f" | tr -s ' ') | $(grep -cE " PASS" "$f") PASS $(grep -cE " FAIL" "$f") FAIL | $(grep -m1 -oE "kernel=[a-z_0-9]+ tile=[0-9x]+" "$f") $(grep -m1 -oE "weights (resident|streamed)" "$f")"; done
for f in "$OUT"/c144-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f" | awk '{print $2, $3}') $(grep -m1 -oE "smem=[0-9]+B" "$f")"; done
for f in "$OUT"/stages[0-9]-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f" | awk '{print $2, $3}') $(grep -m1 -oE "stages=[0-9]+ grid=[0-9x]+ smem=[0-9]+B" "$f")"; done
for f in "$OUT"/f16ab[12]-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f" | awk '{print $2, $3}') $(grep -m1 -oE "stages=[0-9]+ grid=[0-9x]+ smem=[0-9]+B" "$f")"; done
for f in "$OUT"/flatpairsab[123]-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f" | awk '{print $2, $3}')"; done
for f in "$OUT"/flatpairs-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -cE " PASS" "$f") PASS $(grep -cE " FAIL" "$f") FAIL"; done
for f in "$OUT"/pairsab[123]-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f" | awk '{print $2, $3}')"; done
for f in "$OUT"/pairscheck-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -cE " PASS" "$f") PASS $(grep -cE " FAIL" "$f") FAIL"; done
for f in "$OUT"/sab[12]-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f" | awk '{print $2, $3}') $(grep -m1 -oE "tile=[0-9x]+ warp=[0-9x]+ threads=[0-9]+ stages=[0-9]+ grid=[0-9x]+ smem=[0-9]+B" "$f")"; done
for f in "$OUT"/ab[12]-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f" | awk '{print $2, $3}')"; done
for f in "$OUT"/cltuning[12]-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f" | awk '{print $2, $3}') $(grep -m1 -o "the H100's defaults[^|]*" "$f")"; done
for f in "$OUT"/clsw[12]-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f" | awk '{print $2, $3}') $(grep -m1 -o "cannot be forced" "$f")"; done
for f in "$OUT"/abprof-*.log; do [ -f "$f" ] && { echo "== $f"; grep -E "^ +[a-z_]+__" "$f" | sed 's/  */ /g'; }; done
for f in "$OUT"/tile-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f" | awk '{print $2, $3}')"; done
[ -f "$OUT/sass-details.log" ] && grep -E "Duration|Issue Slots Busy|Issued Warp|No Eligible|Executed Ipc|Memory Throughput|DRAM Throughput|Compute \(SM\)|Warp Cycles Per Issued|SM Frequency" "$OUT/sass-details.log" | sed 's/  */ /g'
hdr=1; for f in "$OUT"/plantime-*.log; do [ -f "$f" ] || continue
  [ $hdr = 1 ] && grep -hE "^(convfuse plantime:|driver caches:|workload )" "$f"; hdr=0
  grep -hE "^(sub-sub-mish|mish-mish) |rror" "$f"; done
[ -f "$OUT/storeprobe.log" ] && cat "$OUT/storeprobe.log"
[ -f "$OUT/fp16probe.log" ] && cat "$OUT/fp16probe.log"
[ -f "$OUT/wgmmaprobe.log" ] && cat "$OUT/wgmmaprobe.log"
[ -f "$OUT/splitprobe.log" ] && cat "$OUT/splitprobe.log"
[ -f "$OUT/wideprobe.log" ] && cat "$OUT/wideprobe.log"
[ -f "$OUT/clwgmma.log" ] && cat "$OUT/clwgmma.log"
[ -f "$OUT/clwgmmamm.log" ] && grep -E "median|wrong" "$OUT/clwgmmamm.log"
[ -f "$OUT/cllocal.log" ] && cat "$OUT/cllocal.log"
for f in "$OUT"/clprof-cl-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f")"; done
for f in "$OUT"/clprof-cu-*.log; do [ -f "$f" ] && { echo "== $f"; grep -E "registers|median|spot-check" "$f"; }; done
for f in "$OUT"/clprof-ncu-*.log; do [ -f "$f" ] && { echo "== $f"; grep -E "^ +[a-z_]+__" "$f" | awk '$NF+0 > 0.05 || $0 ~ /sum|avg|launch/' | sed 's/  */ /g'; }; done
[ -f "$OUT/quickcheck.log" ] && grep -hE "PASS|FAIL" "$OUT/quickcheck.log" "$OUT"/deep-*.log
for f in "$OUT"/epi-*.log; do [ -f "$f" ] && echo "$(basename "$f" .log): $(grep -m1 -E "median" "$f")"; done
for f in "$OUT"/prof-*.log; do [ -f "$f" ] && { echo "== $f"; grep -E "^ +[a-z_]+__" "$f" | awk '$NF+0 > 0.05 || $0 ~ /sum|avg/' | sed 's/  */ /g'; }; done
for f in "$OUT"/ncu-*.log; do [ -f "$f" ] && { echo "== $f"; grep -E "Duration|Throughput|Registers Per|Achieved Occupancy|Theoretical Occupancy|Block Limit|Issued Ipc|No Eligible|Stall|Warp Cycles Per Issued|L1/TEX Hit|L2 Hit|Mem Busy|Max Bandwidth|Shared Memory Configuration Size|Dynamic Shared" "$f" | sed 's/  */ /g' | head -40; }; done
printf '%s\n' "${summary[@]}"
# everything else comes back as one archive (the tool returns at most 8 files), named per
# invocation so that a second run of this script in the same device call cannot overwrite the
# first one's logs (it did: bench/NOTES.md v48)
(cd "$OUT" && tar czf "logs-$(date +%H%M%S)-$$.tgz" *.log && rm -f *.log)
