/* Probe kernel (not the library; bench/cl_wgmma_mm_probe.c builds and runs it): mish-mish's
 * convolution (64 x 64 x 256 x 256 input, 128 channels of 3 x 3, no padding) plus bias, mish,
 * mish, on wgmma from OpenCL C, in NVIDIA OpenCL's 48 KB of local memory. The question it
 * answers (bench/NOTES.md v69): how close can an OpenCL program come to the CUDA backend's
 * streamed wgmma tile on this workload (issue 4 asks for 1.25x), before any of it goes into
 * kernels_cl/.
 * A work-group is two warpgroups (256 work-items) and owns 128 consecutive pixels of one output
 * row (q0 = 0 or 128) times all 128 output channels: warpgroup wg the pixels 64 wg .. 64 wg + 63
 * as one m64n128 product, A (the im2col'd patch) from registers, B (the chunk's weights) from
 * local memory by descriptor. K runs in chunks of CH input channels and one kernel row r, with K
 * ordered (s, c): k-step s of a chunk is kernel column s, so A[m][c] = patch[c][m + s] and the
 * lanes' loads fall in distinct banks (PITCH). Each chunk's weights are laid out by the host in
 * wgmma's K-major core matrices and copied as one linear block.
 *   MODE=0: one TF32 product, m64n128k8, CH 8 (K 24: three k-steps, no padding)
 *   MODE=1: one fp16 product, m64n128k16, CH 16 (K 48), A converted to fp16 in registers
 *   MODE=2: fp16 pairs (fp32 accuracy: hi x hi + hi x lo + lo x hi), 128 pixels x 64 channels
 *           (the hi and lo weights of 128 channels would not fit two stages), m64n64k16, each
 *           chunk summed in a fresh accumulator and added to the tile's sum once complete; the
 *           weights scaled per channel by a power of two (lo stays a normal fp16 number), the
 *           input by 2^6, both undone in the epilogue.
 * Every wgmma-family instruction is written as a PTX comment behind "// CFWG " (NVIDIA's OpenCL
 * compiler targets plain sm_90, where ptxas refuses wgmma); the host deletes the markers and
 * rebuilds the PTX for sm_90a (bench/NOTES.md v25). Pipeline: two stages; at chunk j every
 * work-item waits for its own copies of j and its warpgroup's wgmmas of j - 1, one barrier, then
 * the copies of j + 1 go out (into j - 1's stage) before j's fragments and wgmmas. */
#ifndef MODE
#define MODE 0
#endif
#define F16 (MODE > 0)
#define PAIRS (MODE == 2)
#define BN (PAIRS ? 64 : 128)  /* output channels per tile */
#define NACC (BN / 2)          /* accumulators per work-item */
#define CH (F16 ? 16 : 8)
#define PITCH (F16 ? 132 : 136) /* floats; == 4 (fp16: lanes read c = 2t, 2t + 1) or 8 (TF32: c = t, t + 4) mod 32 */
#define NCHUNK (3 * 64 / CH)
#define B_BYTES 12288          /* 128 x 24 TF32, 128 x 48 fp16, or 64 x 48 fp16 hi then lo */
#define LBO (BN * 16)          /* bytes between core matrices adjacent in K */
#define KSTEP_BYTES (2 * LBO)  /* a k-step is two core matrices of K */
#define LO_BYTES 6144          /* pairs: the lo plane's offset */
#define IN_SCALE 64.0f         /* pairs: the input's scale */
#define STAGE_BYTES (B_BYTES + CH * PITCH * 4)
#define STAGES 2
#define C_IN 64
#define K_OUT 128
#define H 256
#define W 256
#define P 254
#define Q 254
#define PATCH_VECS 33 /* 16-byte copies per patch row: 130 columns needed */

#define CFWG "// CFWG "
#ifndef ASM /* NVIDIA's OpenCL C takes asm; clang's OpenCL mode (an offline look) __asm__ */
#define ASM asm
#endif

static inline void cp16_cg(__local float *dst, __global const float *src) {
  ASM volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"((uint)(size_t)dst), "l"(src)
               : "memory");
}
static inline void cp16_ca(__local float *dst, __global const float *src, int bytes) {
  ASM volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;" ::"r"((uint)(size_t)dst),
               "l"(src), "r"(bytes)
               : "memory");
}

static inline float ex2_approx(float x) {
  float y;
  ASM("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
static inline float rcp_approx(float x) {
  float y;
  ASM("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
/* The library's mish on the tensor-core path (kernels_cl/cf_epilogue.h cf_op_7). */
static inline float mish(float x) {
  const float e = ex2_approx(fmin(x, 20.0f) * 1.4426950408889634f);
  const float n = e * (e + 2.0f);
  const float y = x * (n * rcp_approx(n + 2.0f));
  return x < -100.0f ? -0.0f : y;
}

static inline float shfl_xor4(float x) {
  uint r;
  ASM volatile("shfl.sync.bfly.b32 %0, %1, 4, 31, -1;" : "=r"(r) : "r"(as_uint(x)));
  return as_float(r);
}

#if F16
static inline uint pack_f16(float lo, float hi) {
  uint d;
  ASM("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
  return d;
}
/* x0, x1 (K order) as fp16 pairs: hi = f16(x), lo = f16(x - hi), each register two K values */
static inline void split_f16(float x0, float x1, uint *hi, uint *lo) {
  ASM("{ .reg .b16 h0, h1; .reg .f32 f0, f1;\n\t"
      "cvt.rn.f16.f32 h0, %2;\n\tcvt.rn.f16.f32 h1, %3;\n\tmov.b32 %0, {h0, h1};\n\t"
      "cvt.f32.f16 f0, h0;\n\tcvt.f32.f16 f1, h1;\n\tsub.f32 f0, %2, f0;\n\tsub.f32 f1, %3, f1;\n\t"
      "cvt.rn.f16x2.f32 %1, f1, f0;\n\t}"
      : "=r"(*hi), "=r"(*lo)
      : "f"(x0), "f"(x1));
}
#define WG_TYPES ".f32.f16.f16"
#define WG_TRANS ", 0"
#else
#define WG_TYPES ".f32.tf32.tf32"
#define WG_TRANS ""
#endif

#define ACC_OPS32(d) \
      "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), \
      "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), \
      "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), \
      "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), \
      "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#if BN == 128
#define ACC_OPS(d) ACC_OPS32(d), \
      "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), \
      "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), \
      "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), \
      "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
      "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), \
      "+f"(d[62]), "+f"(d[63])
#else
#define ACC_OPS(d) ACC_OPS32(d)
#endif

/* d (64 x BN per warpgroup, the m16n8 accumulator layout per warp, [4 jb + e]) = A x B + (acc ?
 * d : 0). The operand list is d's NACC registers, then A's four, the descriptor and the flag. */
#define WG_D_LIST_32 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, " \
  "%17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, "   \
  "%35}, %36, p, 1, 1" WG_TRANS ";"
#define WG_D_LIST_64 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, " \
  "%17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, "    \
  "%35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, "     \
  "%53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1"     \
  WG_TRANS ";"
#if F16
#define WG_K "16"
#else
#define WG_K "8"
#endif
#if BN == 128
#define WG_FLAG "%69"
#define WG_TEXT "wgmma.mma_async.sync.aligned.m64n128k" WG_K WG_TYPES " " WG_D_LIST_64
#else
#define WG_FLAG "%37"
#define WG_TEXT "wgmma.mma_async.sync.aligned.m64n64k" WG_K WG_TYPES " " WG_D_LIST_32
#endif
#define WGMMA(d, a, desc, acc)                                                                     \
  ASM volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " WG_FLAG ", 0;\n" CFWG WG_TEXT "\n}\n"      \
               : ACC_OPS(d)                                                                       \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc))

/* wgmma's K-major no-swizzle descriptor: core matrices of 8 channels x 16 bytes, LBO bytes
 * apart in K (BN channels x 16 bytes), 128 bytes apart in N. */
static inline ulong b_desc(uint addr) {
  return (ulong)((addr >> 4) & 0x3FFFu) | ((ulong)(LBO >> 4) << 16) | ((ulong)(128u >> 4) << 32);
}

/* Chunk j's copies into stage `st`: its weights (one linear block: channel tile nt's) and CH
 * input rows of 132 columns from q0 (those past the row's end zero-filled). One commit group. */
static inline void copy_chunk(__local float *smem, int st, int j, __global const float *in,
                              __global const float *wl, int nt, int n, int p, int q0, int tid) {
  __local float *stage = smem + st * (STAGE_BYTES / 4);
  __global const float *wsrc = wl + ((size_t)nt * NCHUNK + j) * (B_BYTES / 4);
  for (int v = tid; v < B_BYTES / 16; v += 256)
    cp16_cg(stage + 4 * v, wsrc + 4 * v);
  const int cg = j / 3, r = j - 3 * cg;
  __global const float *base = in + ((size_t)(n * C_IN + cg * CH) * H + (p + r)) * W + q0;
  __local float *patch = stage + B_BYTES / 4;
  for (int i = tid; i < CH * PATCH_VECS; i += 256) {
    const int c = i / PATCH_VECS, v = i - c * PATCH_VECS;
    const int bytes = q0 + 4 * v < W ? 16 : 0;
    cp16_ca(patch + c * PITCH + 4 * v, bytes ? base + (size_t)c * H * W + 4 * v : in, bytes);
  }
  ASM volatile("cp.async.commit_group;" ::: "memory");
}

/* unscale: pairs only, per output channel 2^-(its weight scale's exponent + 6). */
__kernel __attribute__((reqd_work_group_size(256, 1, 1))) void
mm_wgmma(__global const float *restrict in, __global const float *restrict wl,
         __global const float *restrict bias, __global const float *restrict unscale,
         __global float *restrict out) {
  __local float smem[STAGES * STAGE_BYTES / 4] __attribute__((aligned(128)));
  const int tid = (int)get_local_id(0), wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  const int g = lane >> 2, t = lane & 3;
  const int tile = (int)get_group_id(0) >> (PAIRS ? 1 : 0), nt = PAIRS ? get_group_id(0) & 1 : 0;
  const int n = tile / (2 * P), rem = tile - n * 2 * P, p = rem >> 1, q0 = (rem & 1) * 128;
  const uint smem_addr = (uint)(size_t)smem;
  const int m0 = wg * 64 + warp * 16 + g; /* this lane's pixel rows m0 and m0 + 8 */
  const int ch0 = nt * BN + 2 * t;        /* this lane's first channel */

  float acc[NACC];
#if PAIRS
  float part[NACC]; /* the chunk's sum, the wgmmas' accumulator */
#pragma unroll
  for (int i = 0; i < NACC; ++i)
    acc[i] = part[i] = 0.0f;
#define WG_D part
#else
#pragma unroll
  for (int jb = 0; jb < BN / 8; ++jb) {
    const float b0 = bias[ch0 + 8 * jb], b1 = bias[ch0 + 8 * jb + 1];
    acc[4 * jb + 0] = b0;
    acc[4 * jb + 1] = b1;
    acc[4 * jb + 2] = b0;
    acc[4 * jb + 3] = b1;
  }
#define WG_D acc
#endif

  copy_chunk(smem, 0, 0, in, wl, nt, n, p, q0, tid);
  for (int j = 0; j < NCHUNK; ++j) {
    ASM volatile("cp.async.wait_group 0;" ::: "memory");
    ASM volatile(CFWG "wgmma.wait_group.sync.aligned 0;" : ACC_OPS(WG_D)::"memory");
#if PAIRS
#pragma unroll
    for (int i = 0; i < NACC; ++i)
      acc[i] += part[i];
#endif
    ASM volatile("fence.proxy.async.shared::cta;" ::: "memory");
    barrier(CLK_LOCAL_MEM_FENCE);
    if (j + 1 < NCHUNK)
      copy_chunk(smem, (j + 1) & 1, j + 1, in, wl, nt, n, p, q0, tid);
    const int st = j & 1;
    __local const float *patch = smem + st * (STAGE_BYTES / 4) + B_BYTES / 4;
    const uint b_addr = smem_addr + (uint)(st * STAGE_BYTES);
    uint a[3][4];
#if PAIRS
    uint a_lo[3][4];
#endif
#pragma unroll
    for (int s = 0; s < 3; ++s) {
      __local const float *row0 = patch + m0 + s, *row1 = row0 + 8;
#if PAIRS
      split_f16(IN_SCALE * row0[(2 * t) * PITCH], IN_SCALE * row0[(2 * t + 1) * PITCH], &a[s][0],
                &a_lo[s][0]);
      split_f16(IN_SCALE * row1[(2 * t) * PITCH], IN_SCALE * row1[(2 * t + 1) * PITCH], &a[s][1],
                &a_lo[s][1]);
      split_f16(IN_SCALE * row0[(2 * t + 8) * PITCH], IN_SCALE * row0[(2 * t + 9) * PITCH],
                &a[s][2], &a_lo[s][2]);
      split_f16(IN_SCALE * row1[(2 * t + 8) * PITCH], IN_SCALE * row1[(2 * t + 9) * PITCH],
                &a[s][3], &a_lo[s][3]);
#elif F16
      a[s][0] = pack_f16(row0[(2 * t) * PITCH], row0[(2 * t + 1) * PITCH]);
      a[s][1] = pack_f16(row1[(2 * t) * PITCH], row1[(2 * t + 1) * PITCH]);
      a[s][2] = pack_f16(row0[(2 * t + 8) * PITCH], row0[(2 * t + 9) * PITCH]);
      a[s][3] = pack_f16(row1[(2 * t + 8) * PITCH], row1[(2 * t + 9) * PITCH]);
#else
      a[s][0] = as_uint(row0[t * PITCH]);
      a[s][1] = as_uint(row1[t * PITCH]);
      a[s][2] = as_uint(row0[(t + 4) * PITCH]);
      a[s][3] = as_uint(row1[(t + 4) * PITCH]);
#endif
    }
    ASM volatile(CFWG "wgmma.fence.sync.aligned;" : ACC_OPS(WG_D)::"memory");
#pragma unroll
    for (int s = 0; s < 3; ++s) {
      const ulong hi = b_desc(b_addr + (uint)(KSTEP_BYTES * s));
#if PAIRS /* the small products first, the chunk's first into a fresh sum */
      const ulong lo = b_desc(b_addr + (uint)(LO_BYTES + KSTEP_BYTES * s));
      WGMMA(part, a[s], lo, s > 0);
      WGMMA(part, a_lo[s], hi, 1);
      WGMMA(part, a[s], hi, 1);
#else
      WGMMA(acc, a[s], hi, 1);
#endif
    }
    ASM volatile(CFWG "wgmma.commit_group.sync.aligned;" ::: "memory");
  }
  ASM volatile(CFWG "wgmma.wait_group.sync.aligned 0;" : ACC_OPS(WG_D)::"memory");
#if PAIRS
#pragma unroll
  for (int jb = 0; jb < BN / 8; ++jb) {
    const float u0 = unscale[ch0 + 8 * jb], u1 = unscale[ch0 + 8 * jb + 1];
    const float b0 = bias[ch0 + 8 * jb], b1 = bias[ch0 + 8 * jb + 1];
    acc[4 * jb + 0] = (acc[4 * jb + 0] + part[4 * jb + 0]) * u0 + b0;
    acc[4 * jb + 1] = (acc[4 * jb + 1] + part[4 * jb + 1]) * u1 + b1;
    acc[4 * jb + 2] = (acc[4 * jb + 2] + part[4 * jb + 2]) * u0 + b0;
    acc[4 * jb + 3] = (acc[4 * jb + 3] + part[4 * jb + 3]) * u1 + b1;
  }
#else
  (void)unscale;
#endif

  /* Lanes g and g ^ 1 trade one value per row so that each stores a pixel pair of one channel:
   * the even lane channel ch at pixels (m, m + 1), the odd one ch + 1 at (m - 1, m). Q and q0
   * are even, so every pair is 8-byte aligned and inside the row whole or not at all. */
  const int odd = g & 1, q = q0 + m0 - odd;
  __global float *o = out + ((size_t)(n * K_OUT + ch0 + odd) * P + p) * Q + q;
#pragma unroll
  for (int jb = 0; jb < BN / 8; ++jb, o += (size_t)8 * P * Q) {
    const float x0 = mish(mish(acc[4 * jb + 0])), x1 = mish(mish(acc[4 * jb + 1]));
    const float x2 = mish(mish(acc[4 * jb + 2])), x3 = mish(mish(acc[4 * jb + 3]));
    const float r0 = shfl_xor4(odd ? x0 : x1), r1 = shfl_xor4(odd ? x2 : x3);
    if (q < Q)
      *(__global float2 *)o = odd ? (float2)(r0, x1) : (float2)(x0, r0);
    if (q + 8 < Q)
      *(__global float2 *)(o + 8) = odd ? (float2)(r1, x3) : (float2)(x2, r1);
  }
}
