/* Fused convolution on Hopper's warpgroup MMA (wgmma) from OpenCL C: the OpenCL backend's
 * program for streamed-weight problems on sm_90 (bench/NOTES.md v69, prototype
 * bench/cl_wgmma_mm.cl), fp16 products only (one for CF_MATH_TF32, hi / lo pairs for
 * CF_MATH_FP32), each with a range guard whose rerun is the mma.sync program (conv2d_mma.cl).
 *
 * Compiled only with -DCF_WGMMA_KERNEL (with CF_MMA_KERNEL, for the epilogue's SFU mish). NVIDIA's
 * OpenCL compiler targets plain sm_90, where ptxas refuses wgmma, so every wgmma-family
 * instruction below is a PTX comment behind the marker "// CFWG "; the host deletes the markers
 * and rebuilds the program's PTX for sm_90a (backends/opencl/ptx_patch.c, cf_ptx_for_sm90a).
 * The layout kernel alone (CFW_LAYOUT_ONLY) has no inline PTX and runs anywhere (the tests run
 * it on PoCL).
 *
 * A work-group is two warpgroups (256 work-items) and owns (a tile at a time, with CFW_RESIDENT)
 * 128 consecutive pixels of one output row (q0 = 128 i) times CFW_BN output channels (channel
 * tile nt): warpgroup wg the pixels 64 wg .. 64 wg + 63 as one m64nBNk16 product per k-step, A
 * (the patch) from registers, B (the chunk's weights) from local memory by descriptor. Stride 1,
 * no dilation (the host's checks).
 * K runs over "row channels" v = r C + c (input channel c at kernel row r: one patch row each)
 * in chunks of 16, ordered (s, v): k-step s is kernel column s, so A[m][v] = patch[v][m + s],
 * and with CFW_PITCH == 4 (mod 32) a lane's loads (v = 2t, 2t + 1, 2t + 8, 2t + 9; m = g) hit
 * 32 distinct banks. Where C is a multiple of 16 a chunk is 16 channels of one kernel row; a
 * smaller C packs several kernel rows into a chunk (sub-sub-mish's 8 channels x 3 rows: two
 * chunks, not three half-empty ones). Row channels past C R are zeros in both (zero-filled
 * copies, zero weights); channels past K are zero weights, never stored.
 * Weights arrive laid out per call by cf_wgmma_lay_out_weights in wgmma's K-major core
 * matrices, one linear block per (channel tile, chunk), so a stage's weights are one run of
 * 16-byte copies; the patch rows come by 16-byte cp.async, zero-filled outside the image
 * (needs W and pad_w multiples of 4). Two stages: at chunk j each work-item waits for its own
 * copies of j and for its warpgroup's wgmmas of j - 1, one barrier, the copies of j + 1 go into
 * j - 1's stage, then j's fragments and wgmmas, which run under the next chunk's wait (the
 * pairs split each fragment into fp16 words as they load it; a split of the stage's patch in
 * place, once, cost a barrier a chunk and measured no faster: bench/NOTES.md v100, v101).
 * Numbers (as conv2d_mma.cl's fp16 programs): weights scaled per channel into [2^14, 2^15), pairs'
 * input by 2^6, each pairs chunk summed in a fresh accumulator; where a sum is not finite it
 * sets range_guard, after which the host's rerun recomputes the launch on TF32 / 3xTF32; the
 * sums are unscaled per channel and biased in one fma.
 *
 * Build options:
 *   -DCFW_PAIRS=0/1     one fp16 product / hi x hi + hi x lo + lo x hi
 *   -DCFW_BN=128/64     output channels per tile (128: one product; 64: pairs, whose hi and
 *                       lo weights would not fit two stages at 128)
 *   -DCFW_S             the kernel's width (k-steps per chunk)
 *   -DCFW_PITCH         patch row pitch in floats (>= 128 + S - 1 rounded up to 4, == 4 mod 32)
 *   -DCFW_RESIDENT=0/1  every chunk's weights in local memory, copied once per group, the
 *                       groups persistent (group gid on channel tile gid % k_tiles, its row
 *                       tiles from that channel tile's counter, range_guard[1 + nt]) and a
 *                       tile's first patch copied under the tile before's last chunk and
 *                       epilogue; else one tile per group, each chunk's weights streamed into
 *                       its stage with its patch
 *   -DCFW_PAIR_STORES=0/1  pixel-pair 8-byte stores (Q even) or one float per store
 *   -DCFW_ALIGNED_STORES=0/1  instead, each warp's 16 pixels of a channel in runs aligned to
 *                       32-byte sectors (three stores, the outer two partial)
 *   -DCFW_C, CFW_H, CFW_W, CFW_K, CFW_P, CFW_Q, CFW_R, CFW_PAD_H, CFW_PAD_W  the shape (not the
 *                       batch): as run-time arguments they cost the k-loop the registers that
 *                       kept its wgmmas apart (ptxas then serialized them), so a program is
 *                       built per shape (bench/NOTES.md v69)
 *   -DCFW_EMULATE=0/1   no PTX: the copies, wgmma and the lane exchange in OpenCL C, for
 *                       checking the program's results on any device (PoCL in the tests)
 *   -DCF_ASM, -DCF_HAS_BIAS, -DCF_EPI_N, -DCF_EPI_OP<i> as for conv2d_mma.cl */
#ifdef CF_WGMMA_KERNEL

#ifndef CFW_PAIRS
#error "CFW_PAIRS missing"
#endif
#ifndef CFW_BN
#error "CFW_BN missing"
#endif
#ifndef CFW_S
#error "CFW_S missing"
#endif
#if CFW_BN != 128 && CFW_BN != 64
#error "CFW_BN is 128 or 64"
#endif
#if CFW_PAIRS && CFW_BN != 64
#error "pairs run 64-channel tiles"
#endif

#define CFW_THREADS 256
#define CFW_BM 128              /* pixels per tile */
#define CFW_CH 16               /* row channels (v = r C + c) per chunk */
#define CFW_KSTEP_BYTES (2 * CFW_BN * 16) /* 16 fp16 K values: two core matrices of K */
#define CFW_HI_BYTES (CFW_S * CFW_KSTEP_BYTES)
#define CFW_B_BYTES (CFW_HI_BYTES * (CFW_PAIRS ? 2 : 1)) /* a chunk's weights */
#define CFW_A_SHIFT (CFW_PAIRS ? 6 : 0) /* the input's scale, 2^CFW_A_SHIFT */
#define CFW_LAYOUT_THREADS 64

/* Where weight value k (= s 16 + c) of chunk row n (0..BN-1) sits in a chunk's block, in
 * fp16 units: wgmma's K-major core matrices of 8 rows x 8 values, BN * 16 bytes apart in K and
 * 128 bytes apart in N. */
static inline int cfw_b_half(int n, int k) {
  return (k / 8) * (CFW_BN * 8) + (n / 8) * 64 + (n % 8) * 8 + k % 8;
}

/* The weights of one output channel per work-group, every call (the weights may change):
 * scaled by the channel's power of two 2^e (cf_f16_scale.h), as fp16 (pairs: hi, then lo in the
 * chunk's second half), and unscale[channel] = 2^-(e + A_SHIFT). The buffer's rows for
 * channels past K stay as the host zeroed them. It also clears the range guard (the queue is
 * in order: the wgmma kernel after it starts with the guard clear). */
__kernel __attribute__((reqd_work_group_size(CFW_LAYOUT_THREADS, 1, 1))) void
cf_wgmma_lay_out_weights(__global const float *restrict weight, __global half *restrict laid,
                         __global float *restrict unscale, const int C, const int R,
                         const int n_chunks, __global uint *restrict range_guard) {
  __local uint top[CFW_LAYOUT_THREADS];
  const int tid = (int)get_local_id(0), ko = (int)get_group_id(0);
  const int crs = C * R * CFW_S;
  __global const float *w = weight + (long)ko * crs;
  const int e = cf_f16_weight_exponent(w, crs, top, tid, CFW_LAYOUT_THREADS);
  const float scale = as_float((uint)(e + 127) << 23);
  const int nt = ko / CFW_BN, n = ko % CFW_BN, per_chunk = CFW_S * CFW_CH;
  for (int i = tid; i < n_chunks * per_chunk; i += CFW_LAYOUT_THREADS) {
    const int j = i / per_chunk, k = i - j * per_chunk;
    const int s = k / CFW_CH, v = j * CFW_CH + k % CFW_CH, r = v / C, ci = v - r * C;
    const float x = r < R ? w[(ci * R + r) * CFW_S + s] * scale : 0.0f;
    const long at = ((long)nt * n_chunks + j) * (CFW_B_BYTES / 2) + cfw_b_half(n, k);
    vstore_half_rte(x, (size_t)at, laid);
#if CFW_PAIRS
    vstore_half_rte(x - vload_half((size_t)at, laid), (size_t)(at + CFW_HI_BYTES / 2), laid);
#endif
  }
  if (tid == 0)
    unscale[ko] = as_float((uint)(127 - e - CFW_A_SHIFT) << 23);
  if (get_group_id(0) == 0 && tid == 0) /* the fp16 kernel queued after this one starts clear */
    *range_guard = 0u;
#if defined(CFW_RESIDENT) && CFW_RESIDENT
  if (n == 0 && tid == 0) /* and with its tile counters at 0 */
    range_guard[1 + nt] = 0u;
#endif
}

#ifndef CFW_LAYOUT_ONLY
#ifndef CFW_PITCH
#error "CFW_PITCH missing"
#endif
#ifndef CFW_PAIR_STORES
#error "CFW_PAIR_STORES missing"
#endif
#ifndef CFW_ALIGNED_STORES
#error "CFW_ALIGNED_STORES missing"
#endif
#ifndef CFW_RESIDENT
#error "CFW_RESIDENT missing"
#endif
#if !defined(CFW_C) || !defined(CFW_H) || !defined(CFW_W) || !defined(CFW_K) || !defined(CFW_P) || \
    !defined(CFW_Q) || !defined(CFW_R) || !defined(CFW_PAD_H) || !defined(CFW_PAD_W)
#error "the shape's defines are missing"
#endif
#if CFW_PITCH % 32 != 4 || CFW_PITCH < CFW_BM + CFW_S - 1
#error "CFW_PITCH must hold 128 + S - 1 floats and be 4 mod 32"
#endif
#ifndef CF_ASM
#define CF_ASM asm
#endif
#ifndef CF_HAS_BIAS
#define CF_HAS_BIAS 0
#endif

#define CFW_PATCH_VECS ((CFW_BM + CFW_S - 1 + 3) / 4) /* 16-byte copies per patch row */
#define CFW_PATCH_BYTES (CFW_CH * CFW_PITCH * 4) /* a stage's 16 patch rows */
#define CFW_STAGE_BYTES (CFW_B_BYTES + CFW_PATCH_BYTES)
#define CFW_N_CHUNKS ((CFW_C * CFW_R + CFW_CH - 1) / CFW_CH) /* chunks of 16 row channels */
#define CFW_A_SCALE ((float)(1 << CFW_A_SHIFT))
#if CFW_RESIDENT
/* every chunk's weights, copied once per group, then the two stages' patches */
#define CFW_SMEM_BYTES (CFW_N_CHUNKS * CFW_B_BYTES + 2 * CFW_PATCH_BYTES)
#define CFW_WEIGHTS_AT(st, j) ((j) * CFW_B_BYTES) /* byte offsets in the group's smem */
#define CFW_PATCH_AT(st) (CFW_N_CHUNKS * CFW_B_BYTES + (st) * CFW_PATCH_BYTES)
#else
/* two stages, each a chunk's weights and its patch */
#define CFW_SMEM_BYTES (2 * CFW_STAGE_BYTES)
#define CFW_WEIGHTS_AT(st, j) ((st) * CFW_STAGE_BYTES)
#define CFW_PATCH_AT(st) ((st) * CFW_STAGE_BYTES + CFW_B_BYTES)
#endif
#define CFW_NACC (CFW_BN / 2) /* accumulators per work-item */
#define CFWG "// CFWG "

#ifndef CFW_EMULATE
#define CFW_EMULATE 0
#endif

#if !CFW_EMULATE
static inline void cfw_cp16_cg(__local float *dst, __global const float *src) {
  CF_ASM volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"((uint)(size_t)dst), "l"(src)
                  : "memory");
}
/* `bytes` (16 or 0) of src, the rest zero-filled; through L1 (neighbouring tiles share rows) */
static inline void cfw_cp16_ca(__local float *dst, __global const float *src, int bytes) {
  CF_ASM volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;" ::"r"((uint)(size_t)dst),
                  "l"(src), "r"(bytes)
                  : "memory");
}

/* (lo, hi) rounded to fp16, lo in the lower half (the lower K index) */
static inline uint cfw_f16x2(float lo, float hi) {
  uint d;
  CF_ASM("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
  return d;
}
/* x0, x1 as fp16 pairs: hi = f16(x), lo = f16(x - hi) */
static inline void cfw_f16x2_split(float x0, float x1, uint *hi, uint *lo) {
  CF_ASM("{ .reg .b16 h0, h1; .reg .f32 f0, f1;\n\t"
         "cvt.rn.f16.f32 h0, %2;\n\tcvt.rn.f16.f32 h1, %3;\n\tmov.b32 %0, {h0, h1};\n\t"
         "cvt.f32.f16 f0, h0;\n\tcvt.f32.f16 f1, h1;\n\tsub.f32 f0, %2, f0;\n\t"
         "sub.f32 f1, %3, f1;\n\tcvt.rn.f16x2.f32 %1, f1, f0;\n\t}"
         : "=r"(*hi), "=r"(*lo)
         : "f"(x0), "f"(x1));
}
static inline float cfw_shfl_xor4(float x) {
  uint r;
  CF_ASM volatile("shfl.sync.bfly.b32 %0, %1, 4, 31, -1;" : "=r"(r) : "r"(as_uint(x)));
  return as_float(r);
}
#define CFW_SHFL_XOR4(x) cfw_shfl_xor4(x)
#define CFW_CP_COMMIT() CF_ASM volatile("cp.async.commit_group;" ::: "memory")
#define CFW_CP_WAIT_ALL() CF_ASM volatile("cp.async.wait_group 0;" ::: "memory")
#define CFW_PROXY_FENCE() CF_ASM volatile("fence.proxy.async.shared::cta;" ::: "memory")
#define CFW_WG_FENCE(d) CF_ASM volatile(CFWG "wgmma.fence.sync.aligned;" : CFW_ACC(d)::"memory")
#define CFW_WG_COMMIT() CF_ASM volatile(CFWG "wgmma.commit_group.sync.aligned;" ::: "memory")
#define CFW_WG_WAIT(d) CF_ASM volatile(CFWG "wgmma.wait_group.sync.aligned 0;" : CFW_ACC(d)::"memory")
#else
/* Emulated (CFW_EMULATE, any OpenCL device: PoCL in the tests), as conv2d_mma.cl's CFM_EMULATE:
 * the copies done on the spot (a cp.async may land any time before its wait: now is one such
 * time), fp16 by vstore_half_rte, the lane exchange and the wgmma product through local
 * scratch (emulated_mma below). Copies of 16 bytes need 16-byte aligned sources, as the real
 * ones do. */
static inline void cfw_cp16_cg(__local float *dst, __global const float *src) {
  vstore4(vload4(0, src), 0, dst);
}
static inline void cfw_cp16_ca(__local float *dst, __global const float *src, int bytes) {
  vstore4(bytes ? vload4(0, src) : (float4)(0.0f), 0, dst);
}
static inline uint cfw_f16x2(float lo, float hi) {
  ushort h[2];
  vstore_half_rte(lo, 0, (__private half *)h);
  vstore_half_rte(hi, 1, (__private half *)h);
  return (uint)h[0] | (uint)h[1] << 16;
}
static inline void cfw_f16x2_split(float x0, float x1, uint *hi, uint *lo) {
  ushort h[2];
  vstore_half_rte(x0, 0, (__private half *)h);
  vstore_half_rte(x1, 1, (__private half *)h);
  *hi = (uint)h[0] | (uint)h[1] << 16;
  *lo = cfw_f16x2(x0 - vload_half(0, (__private half *)h), x1 - vload_half(1, (__private half *)h));
}
static inline float cfw_shfl_xor4_emulated(float x, __local uint *scratch, int tid) {
  barrier(CLK_LOCAL_MEM_FENCE);
  scratch[tid] = as_uint(x);
  barrier(CLK_LOCAL_MEM_FENCE);
  return as_float(scratch[tid ^ 4]);
}
/* fp16 value k % 2 of a register of two */
static inline float cfw_half_of(uint word, int k) {
  ushort h = (ushort)(k % 2 ? word >> 16 : word & 0xffffu);
  return vload_half(0, (__private half *)&h);
}
#define CFW_SHFL_XOR4(x) cfw_shfl_xor4_emulated(x, cfw_scratch, tid)
#define CFW_CP_COMMIT() (void)0
#define CFW_CP_WAIT_ALL() (void)0
#define CFW_PROXY_FENCE() (void)0
#define CFW_WG_FENCE(d) (void)0
#define CFW_WG_COMMIT() (void)0
#define CFW_WG_WAIT(d) (void)0
#endif

#define CFW_ACC32(d)                                                                              \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),            \
      "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),    \
      "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]),               \
      "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]),               \
      "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#if CFW_BN == 128
#define CFW_ACC(d)                                                                                \
  CFW_ACC32(d), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]),    \
      "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]),               \
      "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),               \
      "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),               \
      "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]),               \
      "+f"(d[62]), "+f"(d[63])
#define CFW_MMA_TEXT                                                                              \
  "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "    \
  "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "    \
  "%27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, "   \
  "%45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, "   \
  "%63}, {%64, %65, %66, %67}, %68, p, 1, 1, 0;"
#define CFW_FLAG "%69"
#else
#define CFW_ACC(d) CFW_ACC32(d)
#define CFW_MMA_TEXT                                                                              \
  "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, " \
  "%10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, "   \
  "%28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 0;"
#define CFW_FLAG "%37"
#endif

/* K-major, no swizzle: core matrices BN * 16 bytes apart in K, 128 bytes apart in N */
static inline ulong cfw_desc(uint addr) {
  return (ulong)((addr >> 4) & 0x3FFFu) | ((ulong)((CFW_BN * 16) >> 4) << 16) |
         ((ulong)(128u >> 4) << 32);
}

/* d (64 x BN per warpgroup; per work-item the m16n8 accumulator layout of its warp's 16 rows,
 * [4 jb + e]) = A x B + (accumulate ? d : 0); a: the mma.sync m16n8k16 A fragment; B at byte
 * b_off of the group's local memory (smem), in cfw_b_half's layout. */
#if !CFW_EMULATE
#define CFW_MMA(d, a, b_off, accumulate)                                                          \
  CF_ASM volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " CFW_FLAG ", 0;\n" CFWG CFW_MMA_TEXT       \
                  "\n}\n"                                                                         \
                  : CFW_ACC(d)                                                                    \
                  : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]),                                   \
                    "l"(cfw_desc(smem_addr + (b_off))), "r"(accumulate))
#else
/* Accumulator i (the m16n8 layout's [4 jb + e]) of this work-item's product, from the
 * warpgroup's A fragments, which CFW_MMA has put in scratch (4 words per work-item): its 16
 * products summed in K order (products of fp16 values are exact). Built unoptimized (the
 * backend's EMULATED_OPT): PoCL 3.1's optimizer computed these sums as zero once a k-step had
 * two products (bench/NOTES.md v70). */
static float cfw_emulated_sum(int i, __local const float *smem, uint b_off,
                              __local const uint *scratch, int tid) {
  __local const half *b = (__local const half *)((__local const uchar *)smem + b_off);
  const int lane = tid & 31, g = lane >> 2, t = lane & 3, warp0 = tid - lane;
  const int jb = i / 4, e = i % 4;
  const int row = g + (e >= 2 ? 8 : 0), col = 8 * jb + 2 * t + (e & 1);
  float sum = 0.0f;
  for (int k = 0; k < 16; ++k) {
    /* A[row][k]: lane (row % 8, (k % 8) / 2), register (row >= 8) + 2 (k >= 8) */
    const uint word = scratch[4 * (warp0 + (row % 8) * 4 + (k % 8) / 2) + (row >= 8 ? 1 : 0) +
                              (k >= 8 ? 2 : 0)];
    sum += cfw_half_of(word, k) * vload_half((size_t)cfw_b_half(col, k), b);
  }
  return sum;
}
#define CFW_MMA(d, a, b_off, accumulate)                                                          \
  do {                                                                                            \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                 \
    for (int e_ = 0; e_ < 4; ++e_)                                                                \
      cfw_scratch[4 * tid + e_] = (a)[e_];                                                        \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                 \
    for (int i_ = 0; i_ < CFW_NACC; ++i_)                                                         \
      (d)[i_] = ((accumulate) ? (d)[i_] : 0.0f) +                                                 \
                cfw_emulated_sum(i_, smem, (b_off), cfw_scratch, tid);                            \
  } while (0)
#endif

#if CFW_ALIGNED_STORES
/* One channel's 16 pixels of a warp from row (its first pixel), v0 at row[g] and v1 at
 * row[8 + g], in three stores each of one 32-byte sector's pixels (u: the pixels before row's
 * first sector boundary), as conv2d_mma.cl's cfm_store_aligned: in store k lane g writes pixel
 * 8k + g if g < u, else 8k + g - 8 (the block before's value); only pixels below q_left, only
 * for a channel inside K (ch_ok). Not shared with cfm_store_aligned: its array form, called
 * here with a two-value array, left that array on the stack (clang + ptxas for sm_90a: 8 bytes,
 * +64 instructions and 32-64 local stores per build), where these scalars cost nothing. */
static inline void cfw_store_aligned(float v0, float v1, __global float *row, int ch_ok,
                                     int q_left, int g) {
  const int u = (int)((0u - ((uint)(size_t)row >> 2)) & 7u);
  const int late = g >= u;
  __global float *lane_row = row + (g - 8 * late);
  const int lim = ch_ok ? q_left - g + 8 * late : 0;
  if (!late && 0 < lim)
    lane_row[0] = v0;
  if (8 < lim)
    lane_row[8] = late ? v0 : v1;
  if (late && 16 < lim)
    lane_row[16] = v1;
}
#endif

/* `bytes` of laid-out weights from wsrc to dst by 16-byte copies (the caller commits). */
static inline void cfw_copy_weights(__local float *dst, __global const float *wsrc, int bytes,
                                    int tid) {
  for (int v = tid; v < bytes / 16; v += CFW_THREADS)
    cfw_cp16_cg(dst + 4 * v, wsrc + 4 * v);
}

/* Chunk j's 16 patch rows (row channel v = 16 j + i: input channel v % C, input row p + v / C -
 * pad_h) of CFW_PATCH_VECS * 4 columns from q0 - pad_w (the caller commits). Each work-item keeps
 * to one row, so the row's channel, input row and bounds are worked out once, not per copy (the
 * copy loop by flat index spent ~35 instructions a copy on them: bench/NOTES.md v100). */
#if CFW_THREADS != 16 * CFW_CH
#error "the patch copy takes 16 work-items per patch row"
#endif
static inline void cfw_copy_patch(__local float *patch, __global const float *input, int j,
                                  int n, int p, int q0, int C, int H, int W, int R, int pad_h,
                                  int pad_w, int tid) {
  const int row = tid >> 4, v = j * CFW_CH + row, r = v / C, c = v - r * C, ih = p + r - pad_h;
  const int iw0 = q0 - pad_w, row_in = r < R && ih >= 0 && ih < H;
  __global const float *src = input + (row_in ? (((long)n * C + c) * H + ih) * W + iw0 : 0);
  __local float *dst = patch + row * CFW_PITCH;
#pragma unroll
  for (int k = 0; k < (CFW_PATCH_VECS + 15) / 16; ++k) {
    const int x = (tid & 15) + 16 * k, iw = iw0 + 4 * x;
    const int bytes = row_in && iw >= 0 && iw < W ? 16 : 0;
    if (16 * (k + 1) <= CFW_PATCH_VECS || x < CFW_PATCH_VECS)
      cfw_cp16_ca(dst + 4 * x, bytes ? src + 4 * x : input, bytes);
  }
}

/* Chunk j's copies into stage st (one commit group): with streamed weights the chunk's weights,
 * one linear block, then its patch rows; with resident weights the patch rows alone. */
static inline void cfw_copy_chunk(__local float *smem, int st, __global const float *wtile,
                                  __global const float *input, int j, int n, int p, int q0,
                                  int C, int H, int W, int R, int pad_h, int pad_w, int tid) {
#if !CFW_RESIDENT
  cfw_copy_weights(smem + CFW_WEIGHTS_AT(st, j) / 4, wtile + (long)j * (CFW_B_BYTES / 4),
                   CFW_B_BYTES, tid);
#else
  (void)wtile;
#endif
  cfw_copy_patch(smem + CFW_PATCH_AT(st) / 4, input, j, n, p, q0, C, H, W, R, pad_h, pad_w, tid);
  CFW_CP_COMMIT();
}

/* Row tile -> image *n, output row *p, first output column *q0 (P and the tile count per row
 * are compile-time constants: no run-time division). */
static inline void cfw_tile_coords(int tile, int *n, int *p, int *q0) {
  const int q_tiles = (CFW_Q + CFW_BM - 1) / CFW_BM, pq_tiles = CFW_P * q_tiles;
  *n = tile / pq_tiles;
  const int rem = tile - *n * pq_tiles;
  *p = rem / q_tiles;
  *q0 = (rem - *p * q_tiles) * CFW_BM;
}

/* One chunk's A fragments (k-step s: rows m0 + s and m0 + 8 + s of the patch, row channels 2t,
 * 2t + 1, 2t + 8, 2t + 9) and wgmmas, committed as one group. */
#if CFW_PAIRS
#define CFW_SUMS part
#else
#define CFW_SUMS acc
#endif

__kernel __attribute__((reqd_work_group_size(CFW_THREADS, 1, 1))) void
cf_conv2d_wgmma(__global const float *restrict input, __global const float *restrict weight,
                __global const float *restrict bias, __global float *restrict output,
                const float bias_shift,
                const float epi_v0, const float epi_v1, const float epi_v2, const float epi_v3,
                const float epi_v4, const float epi_v5, const float epi_v6, const float epi_v7,
                __global const float *restrict unscale, __global uint *restrict range_guard,
                const int batch) {
  __local float smem[CFW_SMEM_BYTES / 4] __attribute__((aligned(128)));
  const int C = CFW_C, H = CFW_H, W = CFW_W, K = CFW_K, P = CFW_P, Q = CFW_Q, R = CFW_R;
  const int pad_h = CFW_PAD_H, pad_w = CFW_PAD_W;
  const int n_chunks = CFW_N_CHUNKS;
  const int k_tiles = (K + CFW_BN - 1) / CFW_BN;
  const int tid = (int)get_local_id(0), wg = tid >> 7, lane = tid & 31;
  const int g = lane >> 2, t = lane & 3, m0 = wg * 64 + ((tid >> 5) & 3) * 16 + g;
  const int gid = (int)get_group_id(0), nt = gid % k_tiles;
#if CFW_EMULATE
  __local uint cfw_scratch[4 * CFW_THREADS]; /* the emulation's lane exchange */
#else
  const uint smem_addr = (uint)(size_t)smem;
#endif
  __global const float *wtile = weight + (long)nt * n_chunks * (CFW_B_BYTES / 4);

  float acc[CFW_NACC];
#if CFW_PAIRS
  float part[CFW_NACC]; /* the chunk's sum: the wgmmas' accumulator */
#endif

#if CFW_RESIDENT
  /* Persistent, the weights of channel tile nt copied once, its row tiles handed out in order
   * by a counter (range_guard[1 + nt], cleared by the layout kernel), so that the groups at work
   * hold neighbouring tiles however they drift (fixed strides, gid + i groups, ran up to 55%
   * slower: bench/NOTES.md v99). Work-item 0 asks for the next tile in a tile's first chunk
   * and publishes it at its last chunk's barrier, in tile_slot[parity] (two: a slot is written
   * again only after every work-item has passed the barrier after reading it), where the next
   * tile's first patch goes under the last chunk and the epilogue. */
  __local int tile_slot[2];
  volatile __global uint *const tile_counter = (volatile __global uint *)range_guard + 1 + nt;
  const int n_tiles = batch * P * ((Q + CFW_BM - 1) / CFW_BM);
  if (tid == 0)
    tile_slot[0] = (int)atomic_inc(tile_counter);
  barrier(CLK_LOCAL_MEM_FENCE);
  int tile = tile_slot[0], next_tile = 0, asked = 0, parity = 1;
  int n_next = 0, p_next = 0, q0_next = 0; /* next_tile's coordinates, for its first copy */
  if (tile >= n_tiles)
    return;
  cfw_copy_weights(smem, wtile, CFW_N_CHUNKS * CFW_B_BYTES, tid);
#else
  const int tile = gid / k_tiles; /* one tile per group */
  (void)batch;
#endif
  int n, p, q0;
  cfw_tile_coords(tile, &n, &p, &q0);
  int st = 0; /* the stage of the chunk computed next */
  cfw_copy_chunk(smem, 0, wtile, input, 0, n, p, q0, C, H, W, R, pad_h, pad_w, tid);
#if CFW_RESIDENT
  for (;;) {
#endif
#pragma unroll
  for (int i = 0; i < CFW_NACC; ++i) { /* the tile's sums */
    acc[i] = 0.0f;
#if CFW_PAIRS
    part[i] = 0.0f;
#endif
  }
  for (int j = 0; j < n_chunks; ++j, st ^= 1) {
    CFW_CP_WAIT_ALL();
    CFW_WG_WAIT(CFW_SUMS);
#if CFW_PAIRS
#pragma unroll
    for (int i = 0; i < CFW_NACC; ++i)
      acc[i] += part[i];
#endif
    CFW_PROXY_FENCE();
#if CFW_RESIDENT
    if (tid == 0) {
      if (j == 0)
        asked = (int)atomic_inc(tile_counter);
      if (j == n_chunks - 1)
        tile_slot[parity] = asked;
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
    if (j + 1 < n_chunks)
      cfw_copy_chunk(smem, st ^ 1, wtile, input, j + 1, n, p, q0, C, H, W, R, pad_h, pad_w, tid);
#if CFW_RESIDENT
    else {
      next_tile = tile_slot[parity];
      if (next_tile < n_tiles) {
        cfw_tile_coords(next_tile, &n_next, &p_next, &q0_next);
        cfw_copy_chunk(smem, st ^ 1, wtile, input, 0, n_next, p_next, q0_next, C, H, W, R,
                       pad_h, pad_w, tid);
      }
    }
#endif
    __local float *patch = smem + CFW_PATCH_AT(st) / 4;
    const uint b_off = (uint)CFW_WEIGHTS_AT(st, j);
    uint a[CFW_S][4];
#if CFW_PAIRS
    uint a_lo[CFW_S][4];
#endif
#pragma unroll
    for (int s = 0; s < CFW_S; ++s) {
      __local const float *r0 = patch + m0 + s, *r1 = r0 + 8;
      const float x[8] = {r0[(2 * t) * CFW_PITCH],     r0[(2 * t + 1) * CFW_PITCH],
                          r1[(2 * t) * CFW_PITCH],     r1[(2 * t + 1) * CFW_PITCH],
                          r0[(2 * t + 8) * CFW_PITCH], r0[(2 * t + 9) * CFW_PITCH],
                          r1[(2 * t + 8) * CFW_PITCH], r1[(2 * t + 9) * CFW_PITCH]};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
#if CFW_PAIRS
        cfw_f16x2_split(CFW_A_SCALE * x[2 * e], CFW_A_SCALE * x[2 * e + 1], &a[s][e],
                        &a_lo[s][e]);
#else
        a[s][e] = cfw_f16x2(x[2 * e], x[2 * e + 1]);
#endif
      }
    }
    CFW_WG_FENCE(CFW_SUMS);
#pragma unroll
    for (int s = 0; s < CFW_S; ++s) {
      const uint hi = b_off + (uint)(CFW_KSTEP_BYTES * s);
#if CFW_PAIRS /* the small products first, the chunk's first into a fresh sum */
      const uint lo = b_off + (uint)(CFW_HI_BYTES + CFW_KSTEP_BYTES * s);
      CFW_MMA(part, a[s], lo, s > 0);
      CFW_MMA(part, a_lo[s], hi, 1);
      CFW_MMA(part, a[s], hi, 1);
#else
      CFW_MMA(acc, a[s], hi, 1);
#endif
    }
    CFW_WG_COMMIT();
  }
  CFW_WG_WAIT(CFW_SUMS);

  /* The sums back from the weights' and the input's scales, the bias, the guard, the chain. */
  const int ch0 = nt * CFW_BN + 2 * t; /* this lane's channels ch0 + 8 jb and ch0 + 8 jb + 1 */
  int finite = 1;
#pragma unroll
  for (int jb = 0; jb < CFW_BN / 8; ++jb) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int ch = ch0 + 8 * jb + h, in = ch < K;
      const float u = in ? unscale[ch] : 0.0f;
      float b = bias_shift;
#if CF_HAS_BIAS
      b += in ? bias[ch] : 0.0f;
#else
      (void)bias;
#endif
#pragma unroll
      for (int row = 0; row < 2; ++row) {
        const int i = 4 * jb + 2 * row + h;
#if CFW_PAIRS
        const float sum = acc[i] + part[i];
#else
        const float sum = acc[i];
#endif
        /* the guard on the sum: u is a power of two, so sum * u overflows only where fp32 would */
        finite &= isfinite(sum) != 0;
        float x = fma(sum, u, b);
        CF_EPI_APPLY(x);
        acc[i] = x;
      }
    }
  }
  if (!finite)
    *range_guard = 1u;

#if CFW_ALIGNED_STORES
  /* The warp's 16 pixels (rows m0 - g .. + 15) of each channel as sector-aligned runs */
  const int q_warp = q0 + m0 - g;
  __global float *o = output + ((long)(n * K + ch0) * P + p) * Q + q_warp;
#pragma unroll
  for (int jb = 0; jb < CFW_BN / 8; ++jb, o += (long)8 * P * Q) {
#pragma unroll
    for (int h = 0; h < 2; ++h)
      cfw_store_aligned(acc[4 * jb + h], acc[4 * jb + 2 + h], o + (long)h * P * Q,
                        ch0 + 8 * jb + h < K, Q - q_warp, g);
  }
#elif CFW_PAIR_STORES
  /* Lanes g and g ^ 1 trade one value per row so that each stores a pixel pair of one channel:
   * the even lane channel ch at pixels (m, m + 1), the odd one ch + 1 at (m - 1, m). Q and q0
   * even: every pair is 8-byte aligned and inside the row whole or not at all. */
  const int odd = g & 1, q = q0 + m0 - odd;
  __global float *o = output + ((long)(n * K + ch0 + odd) * P + p) * Q + q;
#pragma unroll
  for (int jb = 0; jb < CFW_BN / 8; ++jb, o += (long)8 * P * Q) {
    const float x0 = acc[4 * jb], x1 = acc[4 * jb + 1], x2 = acc[4 * jb + 2], x3 = acc[4 * jb + 3];
    const float r0 = CFW_SHFL_XOR4(odd ? x0 : x1), r1 = CFW_SHFL_XOR4(odd ? x2 : x3);
    if (ch0 + 8 * jb + odd < K) {
      if (q < Q)
        *(__global float2 *)o = odd ? (float2)(r0, x1) : (float2)(x0, r0);
      if (q + 8 < Q)
        *(__global float2 *)(o + 8) = odd ? (float2)(r1, x3) : (float2)(x2, r1);
    }
  }
#else
  const int q = q0 + m0;
  __global float *o = output + ((long)(n * K + ch0) * P + p) * Q + q;
#pragma unroll
  for (int jb = 0; jb < CFW_BN / 8; ++jb, o += (long)8 * P * Q) {
#pragma unroll
    for (int h = 0; h < 2; ++h)
      if (ch0 + 8 * jb + h < K) {
        if (q < Q)
          o[(long)h * P * Q] = acc[4 * jb + h];
        if (q + 8 < Q)
          o[(long)h * P * Q + 8] = acc[4 * jb + 2 + h];
      }
  }
#endif
#if CFW_RESIDENT
  tile = next_tile;
  parity ^= 1;
  if (tile >= n_tiles)
    break;
  n = n_next;
  p = p_next;
  q0 = q0_next;
  } /* for (;;): the group's next tile */
#endif
}
#endif /* !CFW_LAYOUT_ONLY */

#endif /* CF_WGMMA_KERNEL */
