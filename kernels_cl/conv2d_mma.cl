/* convfuse OpenCL: fused conv2d (NCHW fp32) + bias + epilogue on NVIDIA tensor cores, through
 * inline PTX: mma.sync m16n8k8 TF32, either one product (CF_MATH_TF32) or the 3xTF32 split
 * (CF_MATH_FP32: a = big + small with big = a rounded to nearest TF32, keep big*big +
 * big*small + small*big; each K chunk accumulates in fresh registers and is added to the
 * running sum with a rounded fp32 add, as in kernels_cuda/conv_mma.cu, whose algorithm this
 * is).
 *
 * Compiled only with -DCF_MMA_KERNEL, which the host passes only on a device whose inline-PTX
 * probe passed (backends/opencl/opencl.c): other compilers (PoCL) never see the PTX.
 *
 * Tiling ("row tiles"): a tile is CFM_BM consecutive output pixels of one output row (image n,
 * row p, columns q0 .. q0+BM) times CFM_BN output channels, computed by warps of CFM_WM x
 * CFM_WN. Work-groups are persistent: group (x, y) owns channel tile y and walks the row tiles
 * x, x + get_num_groups(0), ... The GEMM K dimension (c, r, s) is walked in chunks of CFM_CC
 * input channels; per (tile, chunk) a stage in local memory holds the raw input patch the row
 * tile reads (CC channels x R rows x patch_width columns, zero outside the image and past C)
 * and, unless the group's weights are resident for its whole life, the chunk's weights. A
 * ring of CFM_STAGES stages filled by cp.async: the fetch runs CFM_STAGES - 1 stages ahead of
 * the mma work, one barrier per stage. A fragments are
 * gathered straight from the patch: element (m, k) of the chunk is patch[koff[k] + m *
 * stride_w].
 * Epilogue: bias + folded shift (one TF32 product: the accumulators start there) and the chain
 * (cf_epilogue.h) on the accumulators in registers, then stores straight into NCHW: each warp
 * store writes 8 consecutive pixels of 4 channels (with -DCFM_ALIGNED_STORES, runs aligned to
 * 32-byte sectors: cfm_store_aligned).
 *
 * NDRange: 2-D, local (CFM_THREADS, 1); the lane is get_local_id(0) % 32 and the warp
 * get_local_id(0) / 32 (NVIDIA forms warps from consecutive local ids of dimension 0).
 *
 * Build options (the host computes the layout with common/mma_layout.h's cf_mma_layout_make;
 * each has a fallback below for a 3x3, stride 1 convolution with CC = 8; the sizes being
 * compile-time, the loaders' divisions are by constants and their loops unroll):
 *   -DCFM_BM -DCFM_BN -DCFM_WM -DCFM_WN     tile and warp tile (the MMA menu, constants.def)
 *   -DCFM_SPLIT=0/1                         3xTF32
 *   -DCFM_CC -DCFM_KC -DCFM_KCP             channels per chunk, K values per chunk (CC*R*S),
 *                                           padded to 8
 *   -DCFM_R -DCFM_S -DCFM_SW -DCFM_DW       kernel size, stride_w and dilation_w
 *   -DCFM_PW                                patch width: (BM-1)*SW + (S-1)*DW + 1
 *   -DCFM_PATCH_PITCH -DCFM_ZERO_BASE -DCFM_PATCH_FLOATS   the patch layout
 *   -DCFM_RESIDENT -DCFM_W_PITCH -DCFM_WEIGHT_FLOATS -DCFM_STAGE_FLOATS   the weights
 *   -DCFM_STAGES                            stages in the ring (2..4)
 *   -DCFM_W16=0/1                           streamed weights by 16-byte copies (rows and chunk
 *                                           starts 16-byte aligned: C*R*S and KC multiples of 4)
 *   -DCFM_P16=0/1                           the patch by 16-byte copies (W and pad_w multiples
 *                                           of 4: every patch row starts 16-byte aligned)
 *   -DCFM_LDSM=0/1                          B fragments by ldmatrix (see cfm_load_b_ldsm)
 *   -DCFM_W_SWIZZLE=0/1                     streamed weights at pitch KCP, swizzled (see
 *                                           CFM_W_COL; needs ldmatrix)
 *   -DCFM_ONE_CHUNK=0/1                     K is one chunk (n_chunks_arg is then 1)
 *   -DCFM_ALIGNED_STORES=0/1                the output in sector-aligned runs (cfm_store_aligned)
 *   -DCFM_K_UNROLLED=0/1                    the k-loop over a chunk unrolled whole (else by 2
 *                                           for TF32, not at all for 3xTF32)
 *   -DCFM_F16=0/1                           the products on fp16 tensor cores (see "fp16
 *                                           tensor cores" below): weight is then the
 *                                           per-channel scaled copy cf_f16_scale_weights
 *                                           writes, unscale its 2^-e, and range_guard the
 *                                           word the kernel sets if any sum is not finite
 *   -DCFM_PATCH_SPLIT=0/1                   fp16 pairs only: each stage's patch split once, in
 *                                           place, by the work-items that copied it (see
 *                                           cfm_split_patch), not per use in the k-loop
 *   -DCFM_CHANNEL_PAIRS=0/1                 split patch only: the split pairs channels, not K
 *                                           values of one channel (see "channel pairs")
 *   -DCFM_INPUT_EVICT_LAST=0/1              the patch's 16-byte copies (CFM_P16) with an L2
 *                                           evict-last hint (see cfm_cp_async16_ca)
 *   -DCFM_UNSCALE_REGS=0/1                  fp16 only: unscale's factors held in registers from
 *                                           the set-up on (else read per sum, cached)
 *   -DCFM_RERUN=0/1                         the fp16 plan's TF32 / 3xTF32 rerun (CFM_F16=0):
 *                                           returns at once unless range_guard is set
 *   -DCFM_OFF32=0/1                         one image's input and output, their channels
 *                                           rounded up to whole chunks and channel tiles,
 *                                           below 2^31 elements: offsets within an image are
 *                                           int (cfm_off), one 32-bit multiply each
 *   -DCF_HAS_BIAS -DCF_EPI_N -DCF_EPI_OP<i> as for conv2d_ffma.cl
 *   -DCF_ASM                                the inline-assembly keyword the probe used
 *   -DCFM_EMULATE=0/1                       no inline PTX: mma.sync, ldmatrix and cp.async
 *                                           done in OpenCL C with the same results, so that
 *                                           any OpenCL device (PoCL in CI) runs this kernel's
 *                                           indexing, layout and ring; slow, for checks only
 * Extents, coordinates and counters are int (host-checked); an image's first element is a long
 * offset, offsets within it are cfm_off.
 * The last two arguments serve the fp16 build's range guard: unscale (fp16 only) and
 * range_guard (fp16 and its rerun, CFM_RERUN); every other build ignores both, at compile
 * time: a run-time NULL test cost plain mish-mish tf32 2.6% (bench/NOTES.md v54).
 * Not compiled in the wgmma program (-DCF_WGMMA_KERNEL: conv2d_wgmma.cl's kernels only). */
#if defined(CF_MMA_KERNEL) && !defined(CF_WGMMA_KERNEL)

#ifndef CFM_BM
#define CFM_BM CFK_MMA_T2_BM
#endif
#ifndef CFM_BN
#define CFM_BN CFK_MMA_T2_BN
#endif
#ifndef CFM_WM
#define CFM_WM CFK_MMA_T2_WM
#endif
#ifndef CFM_WN
#define CFM_WN CFK_MMA_T2_WN
#endif
#ifndef CFM_SPLIT
#define CFM_SPLIT 1
#endif
#ifndef CF_HAS_BIAS
#define CF_HAS_BIAS 0
#endif
/* Layout fallbacks: cf_mma_layout_make for R = S = 3, stride 1, dilation 1, CC = 8,
 * weights streamed. */
#define CFM_PITCH_(n, residue) ((n) + (((residue) - (n) % 32) + 32) % 32)
#ifndef CFM_R
#define CFM_R 3
#endif
#ifndef CFM_S
#define CFM_S 3
#endif
#ifndef CFM_SW
#define CFM_SW 1
#endif
#ifndef CFM_DW
#define CFM_DW 1
#endif
#ifndef CFM_PW
#define CFM_PW ((CFM_BM - 1) * CFM_SW + (CFM_S - 1) * CFM_DW + 1)
#endif
#ifndef CFM_CC
#define CFM_CC 8
#endif
#ifndef CFM_KC
#define CFM_KC (CFM_CC * CFM_R * CFM_S)
#endif
#ifndef CFM_KCP
#define CFM_KCP ((CFM_KC + 7) / 8 * 8)
#endif
#ifndef CFM_PATCH_PITCH
#define CFM_PATCH_PITCH CFM_PITCH_(CFM_PW, 16)
#endif
#ifndef CFM_ZERO_BASE
#define CFM_ZERO_BASE (CFM_CC * CFM_R * CFM_PATCH_PITCH)
#endif
#ifndef CFM_PATCH_FLOATS
#define CFM_PATCH_FLOATS ((CFM_ZERO_BASE + (CFM_BM - 1) * CFM_SW + 1 + 3) / 4 * 4)
#endif
#ifndef CFM_RESIDENT
#define CFM_RESIDENT 0
#endif
#ifndef CFM_W_PITCH
#define CFM_W_PITCH (CFM_KCP + (12 - CFM_KCP % 8) % 8) /* cf_mma_weight_pitch */
#endif
#ifndef CFM_WEIGHT_FLOATS
#define CFM_WEIGHT_FLOATS 0
#endif
#ifndef CFM_STAGE_FLOATS
#define CFM_STAGE_FLOATS (CFM_PATCH_FLOATS + CFM_BN * CFM_W_PITCH)
#endif

#if CFM_BM % CFM_WM != 0 || CFM_BN % CFM_WN != 0 || CFM_WM % 16 != 0 || CFM_WN % 8 != 0
#error "warp tiling: WM | BM, WN | BN, 16 | WM, 8 | WN"
#endif
#if CFM_KC != CFM_CC * CFM_R * CFM_S || CFM_PW > CFM_PATCH_PITCH
#error "inconsistent layout: KC = CC*R*S and PW <= PATCH_PITCH"
#endif
#if CFM_KCP % 8 != 0 || CFM_KCP < CFM_KC
#error "CFM_KCP must be CFM_KC padded to a multiple of 8"
#endif
#ifndef CFM_W_SWIZZLE
#define CFM_W_SWIZZLE 0
#endif
/* Streamed weights unpadded (W_PITCH == KCP == 8 mod 16: rows 8 floats apart mod 32, so rows g
 * and g + 4 of an ldmatrix matrix would share banks): in rows with bit 2 set the two 16-byte
 * halves of each 32-byte pair of K values trade places. Column of K value k in row nl: */
#define CFM_W_COL(nl, k) (CFM_W_SWIZZLE ? (k) ^ ((((nl) >> 2) & 1) << 2) : (k))
#if CFM_W_SWIZZLE && (CFM_RESIDENT || CFM_W_PITCH != CFM_KCP || CFM_KCP % 16 != 8)
#error "CFM_W_SWIZZLE: streamed weights at W_PITCH == KCP == 8 (mod 16)"
#endif
#if CFM_RESIDENT && CFM_WEIGHT_FLOATS < CFM_BN * CFM_W_PITCH
#error "resident weights need CFM_WEIGHT_FLOATS >= CFM_BN * CFM_W_PITCH"
#endif

#define CFM_WARPS_M (CFM_BM / CFM_WM)
#define CFM_WARPS (CFM_WARPS_M * (CFM_BN / CFM_WN))
#define CFM_THREADS (32 * CFM_WARPS)
#define CFM_MI (CFM_WM / 16) /* mma tiles per warp along M */
#define CFM_NI (CFM_WN / 8)  /* and along N */
#ifndef CFM_STAGES
#define CFM_STAGES 2
#endif
#ifndef CFM_W16
#define CFM_W16 0
#endif
#ifndef CFM_P16
#define CFM_P16 0
#endif
#ifndef CFM_K_UNROLLED
#define CFM_K_UNROLLED 0
#endif
/* A chunk whose K values end 1..4 past a multiple of 8 (mish-mish's 36 of 40) computes its last
 * k-step as an m16n8k4, not as an m16n8k8 of which half multiplies the zero padding; only in a
 * k-loop unrolled whole, where the step is known at compile time. */
#define CFM_K4_TAIL (CFM_K_UNROLLED && CFM_KC % 8 != 0 && CFM_KC % 8 <= 4)
#define CFM_TAIL_STEP(kb) (CFM_K4_TAIL && (kb) == CFM_KCP - 8)
#ifndef CFM_ONE_CHUNK
#define CFM_ONE_CHUNK 0
#endif
#ifndef CFM_ALIGNED_STORES
#define CFM_ALIGNED_STORES 0
#endif
#ifndef CFM_EMULATE
#define CFM_EMULATE 0
#endif
#ifndef CFM_OFF32
#define CFM_OFF32 0
#endif
/* An offset within one image: 64-bit arithmetic costs each patch copy's source and each output
 * channel's row a handful of instructions per tile (bench/NOTES.md v48) */
#if CFM_OFF32
typedef int cfm_off;
#else
typedef long cfm_off;
#endif
#define CFM_PV ((CFM_PW + 3) / 4) /* 16-byte copies per patch row (CFM_P16) */
#if CFM_P16 && (CFM_PATCH_PITCH % 4 != 0 || 4 * CFM_PV > CFM_PATCH_PITCH)
#error "CFM_P16 needs a patch pitch of whole 16-byte copies"
#endif
#if CFM_STAGES < 2 || CFM_STAGES > 4
#error "CFM_STAGES: 2..4"
#endif
#if CFM_W16 && (CFM_KC % 4 != 0 || CFM_W_PITCH % 4 != 0 || CFM_PATCH_FLOATS % 4 != 0)
#error "CFM_W16 needs KC, W_PITCH and PATCH_FLOATS multiples of 4"
#endif
#define CFM_SMEM_FLOATS (CFM_WEIGHT_FLOATS + CFM_STAGES * CFM_STAGE_FLOATS)

/* The inline-assembly keyword: the host passes the spelling its probe built with
 * (-DCF_ASM=asm or -DCF_ASM=__asm__). */
#ifndef CF_ASM
#define CF_ASM asm
#endif

/* The tensor cores read the top 19 bits of each 32-bit operand: a float is a valid
 * (truncated) TF32 operand as it is. For 3xTF32, big is x rounded to nearest TF32, ties away
 * from zero (unbiased) and small = x - big (exact in fp32). The rounding is cvt.rna.tf32.f32's
 * done on the bits (half a TF32 ulp added to the magnitude, the 13 bits below TF32 cleared):
 * ptxas wraps cvt.rna in an Inf/NaN test and select that cost 2 of its 4 instructions (the
 * CUDA kernels' split_tf32, bench/NOTES.md v31). Inf stays Inf; a NaN may not stay one, but
 * small = x - big is then NaN, so a NaN input still gives a NaN output. */
static inline uint cfm_tf32_rna(float x) { return (as_uint(x) + 0x1000u) & 0xffffe000u; }

#if !CFM_EMULATE
/* d (4 floats, an lvalue array) += A x B with fp32 sums, one mma.sync of shape (e.g. "m16n8k8")
 * on operands of type (e.g. "tf32"): four A and two B registers, or two A and one B. */
#define CFM_MMA_A4(shape, type, d, a0, a1, a2, a3, b0, b1)                                       \
  CF_ASM volatile("mma.sync.aligned." shape ".row.col.f32." type "." type ".f32 "               \
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"                            \
               : "+f"((d)[0]), "+f"((d)[1]), "+f"((d)[2]), "+f"((d)[3])                           \
               : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1))
#define CFM_MMA_A2(shape, type, d, a0, a1, b0)                                                   \
  CF_ASM volatile("mma.sync.aligned." shape ".row.col.f32." type "." type ".f32 "               \
               "{%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"                                     \
               : "+f"((d)[0]), "+f"((d)[1]), "+f"((d)[2]), "+f"((d)[3])                           \
               : "r"(a0), "r"(a1), "r"(b0))
/* d += A (a0..a3) x B (b0, b1): one m16n8k8 TF32 mma. */
#define CFM_MMA(d, a0, a1, a2, a3, b0, b1) CFM_MMA_A4("m16n8k8", "tf32", d, a0, a1, a2, a3, b0, b1)
/* d += A (a0, a1) x B (b0): one m16n8k4 TF32 mma, for a chunk's last 4 K values. Fragments
 * (PTX ISA, m16n8k4 .tf32): a0 (g, t), a1 (g + 8, t), b0 (t, g); D as m16n8k8's. */
#define CFM_MMA4(d, a0, a1, b0) CFM_MMA_A2("m16n8k4", "tf32", d, a0, a1, b0)
#else
/* The warp's fragments meet in local memory (`emu`: 6 words per work-item; the kernel calls
 * every mma in uniform control flow, so work-group barriers can stand in for the warp's
 * lock-step). Fragment layout (PTX ISA, m16n8k8 .tf32), lane = 4g + t: A (row, k) a0 (g, t),
 * a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4); B (k, n) b0 (t, g), b1 (t + 4, g); D (row,
 * n) d0 (g, 2t), d1 (g, 2t + 1), d2 (g + 8, 2t), d3 (g + 8, 2t + 1). The operands are read as
 * TF32 (their top 19 bits), as the tensor cores do; the sums in fp32 in k order. */
#define CFM_MMA(d, a0, a1, a2, a3, b0, b1)                                                        \
  cfm_mma_emulated(d, a0, a1, a2, a3, b0, b1, 0, cfm_emu)
/* m16n8k4: m16n8k8 with K values 4..7 zero */
#define CFM_MMA4(d, a0, a1, b0) cfm_mma_emulated(d, a0, a1, 0u, 0u, b0, 0u, 0, cfm_emu)
/* fp16 (CFM_F16) by OpenCL C's own conversions (core since 1.0 through half pointers, no
 * cl_khr_fp16): vstore_half_rte rounds to nearest even as cvt.rn does, inf past 65504 as it
 * does. */
static inline uint cfm_f16_bits(float x) {
  ushort h;
  vstore_half_rte(x, 0, (__private half *)&h);
  return h;
}
static inline float cfm_f16_value(uint bits) {
  const ushort h = (ushort)bits;
  return vload_half(0, (__private const half *)&h);
}
/* Operand k of a fragment word w as the tensor cores read it: TF32 (the top 19 bits) or, f16,
 * the fp16 value in half k % 2 (two per register, the lower K in the lower half). */
static inline float cfm_emu_operand(uint w, int k, int f16) {
  return f16 ? cfm_f16_value((w >> (16 * (k & 1))) & 0xffffu) : as_float(w & 0xffffe000u);
}
/* m16n8k8 .tf32 or, f16, m16n8k16 .f16 (PTX ISA: A a0 (g, 2t..2t+1), a1 (g + 8, 2t..), a2 (g,
 * 2t+8..), a3 (g + 8, 2t+8..); B b0 (2t..2t+1, g), b1 (2t+8.., g)): register kw of lane (g,
 * kq) holds K values kq (TF32: kq + 4 kw) or 2 kq, 2 kq + 1 (+ 8 kw). Products exact in fp32
 * for fp16, sums in fp32 in k order. */
static inline void cfm_mma_emulated(float d[4], uint a0, uint a1, uint a2, uint a3, uint b0,
                                    uint b1, int f16, __local uint *emu) {
  const int tid = (int)get_local_id(0), lane = tid % 32;
  __local uint *warp = emu + 6 * (tid - lane);
  __local uint *mine = warp + 6 * lane;
  mine[0] = a0;
  mine[1] = a1;
  mine[2] = a2;
  mine[3] = a3;
  mine[4] = b0;
  mine[5] = b1;
  barrier(CLK_LOCAL_MEM_FENCE);
  const int g = lane >> 2, t = lane & 3;
  for (int i = 0; i < 4; ++i) {
    const int row = g + 8 * (i >> 1), n = 2 * t + (i & 1);
    float sum = d[i];
    for (int k = 0; k < (f16 ? 16 : 8); ++k) {
      const int kq = f16 ? (k % 8) / 2 : k % 4, kw = f16 ? k / 8 : k / 4;
      const uint a = warp[6 * (4 * (row % 8) + kq) + row / 8 + 2 * kw];
      const uint b = warp[6 * (4 * n + kq) + 4 + kw];
      sum = fma(cfm_emu_operand(a, k, f16), cfm_emu_operand(b, k, f16), sum);
    }
    d[i] = sum;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
}
#endif

/* fp16 tensor cores (-DCFM_F16): mma.sync m16n8k16 f16 with fp32 sums, twice the K per
 * instruction of m16n8k8 TF32 at the same issue cost. fp16 carries TF32's 11 significant bits
 * (rounded to nearest here, where TF32 operands are truncated), so one product is TF32's
 * accuracy and hi + lo pairs (three products) are 3xTF32's, wherever the values stay inside
 * fp16's range: |x| up to 65504 (past it inf), below 2^-14 with fewer bits (bench/NOTES.md v49,
 * v53, bench/fp16_pair_accuracy.py). So, as the CUDA kernels do: each output channel's weights
 * come scaled by the power of two that brings their largest |w| into [2^14, 2^15)
 * (cf_f16_scale_weights, per call), pairs take the input times a fixed 2^CFM_A_SHIFT (lo stays
 * a normal fp16 number for |x| >= 2^-9, where unscaled it would need 2^-3: tensors of small
 * inputs kept fp32's relative L2), and the sums, unscaled per channel before the epilogue, set
 * range_guard where one is not finite (an input past 65504 * 2^-CFM_A_SHIFT, or inf / NaN):
 * the host then lets the TF32 / 3xTF32 rerun recompute the launch. The host builds this only
 * when CONVFUSE_OPENCL_SWITCHES forces f16=1 (not measured on a GPU since the guard).
 * Fragments (PTX ISA, m16n8k16 .f16), lane = 4g + t, two fp16 per register, the lower K in the
 * lower half: A a0 (g, 2t..2t+1), a1 (g + 8, 2t..), a2 (g, 2t+8..), a3 (g + 8, 2t+8..); B b0
 * (2t..2t+1, g), b1 (2t+8.., g); D as m16n8k8's. m16n8k8 .f16 is a0, a1 and b0 alone. */
#if !CFM_EMULATE
#define CFM_MMA16(d, a0, a1, a2, a3, b0, b1)                                                      \
  CFM_MMA_A4("m16n8k16", "f16", d, a0, a1, a2, a3, b0, b1)
#define CFM_MMA8H(d, a0, a1, b0) CFM_MMA_A2("m16n8k8", "f16", d, a0, a1, b0)
/* (x0, x1) rounded to fp16, x0 in the lower half */
static inline uint cfm_f16x2(float x0, float x1) {
  uint d;
  CF_ASM("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(x1), "f"(x0));
  return d;
}
/* hi = cfm_f16x2(x0, x1), lo = the same of the residuals (exact in fp32) */
static inline void cfm_f16x2_split(float x0, float x1, uint *hi, uint *lo) {
  uint h, l;
  CF_ASM("{ .reg .b16 h0, h1; .reg .f32 f0, f1;\n\t"
         "cvt.rn.f16x2.f32 %0, %3, %2;\n\t"
         "mov.b32 {h0, h1}, %0;\n\t"
         "cvt.f32.f16 f0, h0;\n\t"
         "cvt.f32.f16 f1, h1;\n\t"
         "sub.f32 f0, %2, f0;\n\t"
         "sub.f32 f1, %3, f1;\n\t"
         "cvt.rn.f16x2.f32 %1, f1, f0; }"
         : "=&r"(h), "=r"(l)
         : "f"(x0), "f"(x1));
  *hi = h;
  *lo = l;
}
#else /* the same through OpenCL C's conversions, and the emulated mma on fp16 operands */
static inline uint cfm_f16x2(float x0, float x1) {
  return cfm_f16_bits(x0) | cfm_f16_bits(x1) << 16;
}
static inline void cfm_f16x2_split(float x0, float x1, uint *hi, uint *lo) {
  *hi = cfm_f16x2(x0, x1);
  *lo = cfm_f16x2(x0 - cfm_f16_value(*hi), x1 - cfm_f16_value(*hi >> 16));
}
#define CFM_MMA16(d, a0, a1, a2, a3, b0, b1)                                                      \
  cfm_mma_emulated(d, a0, a1, a2, a3, b0, b1, 1, cfm_emu)
#define CFM_MMA8H(d, a0, a1, b0) cfm_mma_emulated(d, a0, a1, 0u, 0u, b0, 0u, 1, cfm_emu)
#endif
#ifndef CFM_F16
#define CFM_F16 0
#endif
#ifndef CFM_RERUN
#define CFM_RERUN 0
#endif
#ifndef CFM_UNSCALE_REGS
#define CFM_UNSCALE_REGS 0
#endif
#ifndef CFM_PATCH_SPLIT
#define CFM_PATCH_SPLIT 0
#endif
#if CFM_PATCH_SPLIT && !(CFM_F16 && CFM_SPLIT)
#error "CFM_PATCH_SPLIT is for fp16 pairs (CFM_F16=1, CFM_SPLIT=1)"
#endif
#ifndef CFM_INPUT_EVICT_LAST
#define CFM_INPUT_EVICT_LAST 0
#endif
#ifndef CFM_CHANNEL_PAIRS
#define CFM_CHANNEL_PAIRS 0
#endif
#if CFM_CHANNEL_PAIRS && !(CFM_PATCH_SPLIT && CFM_P16 && CFM_CC % 2 == 0 && CFM_KC == CFM_KCP)
#error "CFM_CHANNEL_PAIRS needs the split patch, 16-byte copies, even CC and KC a multiple of 8"
#endif
#if CFM_RERUN && CFM_F16
#error "CFM_RERUN is the TF32 / 3xTF32 rerun of an fp16 plan: build it with CFM_F16=0"
#endif
/* pairs' fixed input scale, 2^6: inputs past 1023.98 trip the guard (raw pixels up to 255
 * don't), inputs below 2^-9 keep an absolute 2^-31 (bench/NOTES.md v53) */
#if CFM_F16 && CFM_SPLIT
#define CFM_A_SHIFT 6
#else
#define CFM_A_SHIFT 0
#endif
#define CFM_A_SCALE ((float)(1 << CFM_A_SHIFT))
/* The K values an fp16 slot pair holds (two slots 2i, 2i + 1 of one fragment register, in one
 * word): slot pair P of a chunk holds K values CFM_PAIR_K0(P) (lower half) and that plus
 * CFM_PAIR_DK; the weights are packed (cf_f16_scale_weights) and the patch read in this order
 * (the mma sums over K: any order that A and B share is right). By default pair P of block
 * P / 8 holds values t and t + 4 of its TF32 step (P % 4 = t): what the TF32 fragment loads
 * give. With channel pairs (below), the same (r, s) of the chunk's channels 2c and 2c + 1. */
#if CFM_CHANNEL_PAIRS
#define CFM_PAIR_DK (CFM_R * CFM_S)
#define CFM_PAIR_K0(P) ((P) / CFM_PAIR_DK * 2 * CFM_PAIR_DK + (P) % CFM_PAIR_DK)
#else
#define CFM_PAIR_DK 4
#define CFM_PAIR_K0(P) (2 * (P) - (P) % 4)
#endif
#if CFM_PATCH_SPLIT
/* Pairs on a split patch: each input x became one word, fp16 hi of x * 2^CFM_A_SHIFT in the
 * lower half and its lo in the upper, once per stage (cfm_split_patch) instead of once per
 * use (R*S uses per chunk: the split is ~8 instructions per two values, bench/NOTES.md v64).
 * Two words (K values t and t + 4 of one row) give the hi and lo fragment registers:
 * (a's lower half, b's lower half) and (a's upper half, b's upper half), one prmt each
 * (clang's NVPTX code of the shift-and-mask form took two or three instructions). */
#if !CFM_EMULATE
static inline uint cfm_lower_halves(uint a, uint b) {
  uint d;
  CF_ASM("prmt.b32 %0, %1, %2, 0x5410;" : "=r"(d) : "r"(a), "r"(b));
  return d;
}
static inline uint cfm_upper_halves(uint a, uint b) {
  uint d;
  CF_ASM("prmt.b32 %0, %1, %2, 0x7632;" : "=r"(d) : "r"(a), "r"(b));
  return d;
}
#else
static inline uint cfm_lower_halves(uint a, uint b) { return (a & 0xffffu) | (b << 16); }
static inline uint cfm_upper_halves(uint a, uint b) { return (a >> 16) | (b & 0xffff0000u); }
#endif
static inline void cfm_split_words(__local float *p, int n) {
  for (int i = 0; i < n; i += 2) {
    uint hi, lo;
    cfm_f16x2_split(p[i] * CFM_A_SCALE, i + 1 < n ? p[i + 1] * CFM_A_SCALE : 0.0f, &hi, &lo);
    p[i] = as_float(cfm_lower_halves(hi, lo));
    if (i + 1 < n)
      p[i + 1] = as_float(cfm_upper_halves(hi, lo));
  }
}
static inline void cfm_pair_words(float p0, float p1, uint *hi, uint *lo) {
  *hi = cfm_lower_halves(as_uint(p0), as_uint(p1));
  *lo = cfm_upper_halves(as_uint(p0), as_uint(p1));
}
/* Channel pairs (CFM_CHANNEL_PAIRS): the split pairs a chunk's input channels 2c and 2c + 1
 * instead. Channel 2c's row for kernel row r lands in patch row cR + r and channel 2c + 1's in
 * row (c + CC/2) R + r (CFM_P16_COPY); at each position the first takes the word (hi of 2c, hi
 * of 2c + 1) and the second the word (lo of 2c, lo of 2c + 1): each is an A fragment register
 * as it stands (slot pair CFM_PAIR_K0's order), so the k-loop loads hi and lo without a prmt
 * (16 of its 79 instructions per pass, bench/NOTES.md v87) and the split needs none either.
 * The hi rows come first, one pair after the other R rows apart as the channels were (R pitch
 * = 16 mod 32 floats: a warp's loads across two pairs fall in distinct banks; pairs 2R rows
 * apart would put them 0 mod 32). Both rows' values must be this work-item's copies: they come
 * in pairs (CFM_P16_COPY). */
#define CFM_LO_ROWS (CFM_CC / 2 * CFM_R)                  /* the lo rows from the hi rows */
#define CFM_LO_OFFSET (CFM_LO_ROWS * CFM_PATCH_PITCH) /* a pair's lo words from its hi words */
static inline void cfm_split_channel_pair(__local float *even, __local float *odd) {
  /* both rows read whole, then each written by one 16-byte store, as the plain split's: value
   * by value the compiler issued eight 4-byte stores per pair (it kept each store in order with
   * the other row's reads: the rows may alias, for all it knows). The time did not move with
   * them (bench/NOTES.md v93: the pairs' extra time is the wait for the next stage's copies) */
  const float4 e = *(__local const float4 *)even * CFM_A_SCALE;
  const float4 o = *(__local const float4 *)odd * CFM_A_SCALE;
  uint h0, h1, h2, h3, l0, l1, l2, l3;
  cfm_f16x2_split(e.x, o.x, &h0, &l0);
  cfm_f16x2_split(e.y, o.y, &h1, &l1);
  cfm_f16x2_split(e.z, o.z, &h2, &l2);
  cfm_f16x2_split(e.w, o.w, &h3, &l3);
  *(__local float4 *)even = as_float4((uint4)(h0, h1, h2, h3));
  *(__local float4 *)odd = as_float4((uint4)(l0, l1, l2, l3));
}
#endif
/* fp16 weights, packed per chunk row by cf_f16_scale_weights so that the TF32 fragment loads
 * (words kb + t and kb + t + 4 of channel g's row, CFM_LOAD_B) give the m16n8k16 B fragments:
 * per block of 16 K values (the last may hold 8), word 4h + t of a fragment set holds K values
 * (8h + t, 8h + t + 4) of the block, the lower one in the lower half. One product: block j's
 * set at word 8j (a tail block's h = 1 words past the row: never read). Pairs: block j's hi
 * set at word 16j and its lo set at 16j + 8; a tail block's hi words at 16j + t, its lo words
 * at 16j + 4 + t (one load gives both: the row has KCP words). Offsets stay multiples of 8,
 * so the streamed weights' swizzle (CFM_W_COL) trades the same halves as in TF32. */
#if CFM_SPLIT
#define CFM_B16_HI(kb) (kb)
#define CFM_B16_LO(kb) ((kb) + 8)
#else
#define CFM_B16_HI(kb) ((kb) / 2)
#endif
/* channel ch's 2^-e (2^-(e + CFM_A_SHIFT)); 1 past K, whose sums are zeros */
static inline float cfm_unscale_of(__global const float *unscale, int ch, int K) {
  return ch < K ? unscale[ch] : 1.0f;
}
/* x is neither inf nor NaN (on the bits: no built-in needed) */
#define CFM_FINITE(x) ((as_uint(x) & 0x7f800000u) != 0x7f800000u)

/* B fragments, b[ni][0..1] for every n-tile at K offset kb, either by scalar local loads
 * (lane (g, t) reads channel g, k t and t + 4) or, with -DCFM_LDSM=1, by ldmatrix: one
 * instruction reads four 8 x 4-float matrices (each row 16 bytes of one output channel's
 * weights); lanes 8j .. 8j+7 give the row addresses of matrix j and lane l receives word l % 4
 * of row l / 4 of each, which is exactly the B fragment of two n-tiles (the .b16 element size
 * does not matter: each lane gets whole 32-bit words). Rows need 16-byte alignment: W_PITCH,
 * KCP and the weights' base are multiples of 4 floats; the pitch (== 4 mod 8) keeps the eight
 * rows of a matrix in distinct banks. ldmatrix paid where the weights are streamed (mish-mish
 * tf32 6.57 -> 6.30 ms on T1) and cost 1-4% where they are resident (bench/NOTES.md v45): the
 * host chooses. */
#ifndef CFM_LDSM
#define CFM_LDSM 0
#endif
static inline void cfm_load_b_scalar(uint b[CFM_NI][2], __local const float *w_lane, int kb) {
#pragma unroll
  for (int ni = 0; ni < CFM_NI; ++ni) {
    b[ni][0] = as_uint(w_lane[ni * 8 * CFM_W_PITCH + kb]);
    b[ni][1] = as_uint(w_lane[ni * 8 * CFM_W_PITCH + kb + 4]);
  }
}
#define CFM_LDSM_X4(r0, r1, r2, r3, addr)                                                       \
  CF_ASM volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"                \
                  : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)                                        \
                  : "r"(addr))
#define CFM_LDSM_X2(r0, r1, addr)                                                               \
  CF_ASM volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];"                      \
                  : "=r"(r0), "=r"(r1)                                                            \
                  : "r"(addr))
#if CFM_W_SWIZZLE && !CFM_LDSM
#error "CFM_W_SWIZZLE: the scalar B loads do not read swizzled rows"
#endif
#if CFM_LDSM && (CFM_W_PITCH % 4 != 0 || CFM_KCP % 4 != 0 || CFM_PATCH_FLOATS % 4 != 0 ||       \
                 CFM_WEIGHT_FLOATS % 4 != 0)
#error "ldmatrix B fragments need 16-byte aligned weight rows"
#endif
/* The row of the chunk's weights wsm whose address lane `lane` of a warp at channel n_warp
 * gives ldmatrix (at k 0): matrix lane / 8 is (n-tile pair member (lane / 16) % 2, k half
 * (lane / 8) % 2), row lane % 8; kb being a multiple of 8, the swizzle (if any) only trades the
 * k half, the same for every kb. */
static inline __local const float *cfm_ldsm_row(__local const float *wsm, int lane, int n_warp) {
  const int b_row = n_warp + ((lane >> 4) & 1) * 8 + (lane & 7);
  return wsm + b_row * CFM_W_PITCH + CFM_W_COL(b_row, ((lane >> 3) & 1) * 4);
}
#if !CFM_EMULATE
static inline void cfm_load_b_ldsm(uint b[CFM_NI][2], uint b_addr, int kb) {
#pragma unroll
  for (int np = 0; np < CFM_NI / 2; ++np)
    CFM_LDSM_X4(b[2 * np][0], b[2 * np][1], b[2 * np + 1][0], b[2 * np + 1][1],
                b_addr + 4u * (uint)(np * 16 * CFM_W_PITCH + kb));
#if CFM_NI % 2
  CFM_LDSM_X2(b[CFM_NI - 1][0], b[CFM_NI - 1][1],
              b_addr + 4u * (uint)((CFM_NI / 2) * 16 * CFM_W_PITCH + kb));
#endif
}
#else
/* ldmatrix without the instruction: register j of lane l is word l % 4 of the row whose
 * address lane 8j + l / 4 gives (cfm_ldsm_row), read straight from the weights. */
static inline void cfm_load_b_ldsm_emulated(uint b[CFM_NI][2], __local const float *wsm,
                                            int n_warp, int lane, int kb) {
  uint r[4];
  for (int np = 0; np < (CFM_NI + 1) / 2; ++np) {
    for (int j = 0; j < 4; ++j)
      r[j] = as_uint(cfm_ldsm_row(wsm, 8 * j + lane / 4, n_warp)[np * 16 * CFM_W_PITCH + kb +
                                                                 lane % 4]);
    b[2 * np][0] = r[0];
    b[2 * np][1] = r[1];
    if (2 * np + 1 < CFM_NI) { /* an odd last n-tile: ldmatrix .x2, matrices 0 and 1 only */
      b[2 * np + 1][0] = r[2];
      b[2 * np + 1][1] = r[3];
    }
  }
}
#endif

/* Global -> local memory, by cp.async only (inline PTX, sm_80+; the probe runs it): no
 * register holds the data on the way (OpenCL C has no asynchronous copy of its own), and the
 * ring lets the fetch run ahead. The patch goes 16 bytes per copy where its rows start 16-byte
 * aligned (CFM_P16), else one 4-byte copy per element: warp w fetches patch rows w, w + WARPS,
 * ... (CFM_PRJ of them) and lane l columns l, l + 32, ... (CFM_PCU of them), consecutive
 * addresses per warp instruction. Streamed weights (rows are output channels, columns the
 * chunk's K values) go 16 bytes per copy where CFM_W16. Source bytes short of a copy's size
 * are filled with zeros. Loads into registers, stored after the mma work, were the fetch
 * before: 9-29% slower (bench/NOTES.md v41). */
#if !CFM_EMULATE
static inline void cfm_cp_async4(__local float *dst, __global const float *src, int ok) {
  CF_ASM volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"((uint)(size_t)dst),
                  "l"(src), "r"(ok ? 4 : 0)
                  : "memory");
}
/* 16-byte copies of `bytes` (0..16) source bytes, the rest zero-filled: through L2 only for
 * the weights (every group reads them), through L1 too for the patch (neighbouring row tiles
 * share input rows). */
static inline void cfm_cp_async16_cg(__local float *dst, __global const float *src, int bytes) {
  CF_ASM volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"((uint)(size_t)dst),
                  "l"(src), "r"(bytes)
                  : "memory");
}
/* With CFM_INPUT_EVICT_LAST the patch's copies are kept in L2 ahead of the output's lines: an
 * input row serves the tiles of R output rows, fetched by groups that may run apart; where they
 * do, the row is read from DRAM again (sub-sub-mish on an H100: 277 MB of reads per launch, up
 * to 350 in the slow launches; with the hint 276-323, bench/NOTES.md v96). PTX ISA 7.4. */
#if CFM_INPUT_EVICT_LAST
#define CFM_PATCH_COPY_PTX                                                                        \
  "{ .reg .b64 pol;\n\t"                                                                          \
  "createpolicy.fractional.L2::evict_last.b64 pol, 1.0;\n\t"                                      \
  "cp.async.ca.shared.global.L2::cache_hint [%0], [%1], 16, %2, pol; }"
#else
#define CFM_PATCH_COPY_PTX "cp.async.ca.shared.global [%0], [%1], 16, %2;"
#endif
static inline void cfm_cp_async16_ca(__local float *dst, __global const float *src, int bytes) {
  CF_ASM volatile(CFM_PATCH_COPY_PTX ::"r"((uint)(size_t)dst), "l"(src), "r"(bytes) : "memory");
}
#define CFM_COMMIT() CF_ASM volatile("cp.async.commit_group;" ::: "memory")
#define CFM_WAIT_NEXT() CF_ASM volatile(CFM_WAIT_NEXT_STAGE ::: "memory")
#else
/* The copies done on the spot (a cp.async may land any time before its wait: now is one such
 * time); the waits then have nothing to wait for, the barriers still order the work-items. */
static inline void cfm_cp_async4(__local float *dst, __global const float *src, int ok) {
  *dst = ok ? *src : 0.0f;
}
static inline void cfm_cp_async16(__local float *dst, __global const float *src, int bytes) {
  for (int i = 0; i < 4; ++i)
    dst[i] = 4 * i < bytes ? src[i] : 0.0f;
}
#define cfm_cp_async16_cg cfm_cp_async16
#define cfm_cp_async16_ca cfm_cp_async16
#define CFM_COMMIT() ((void)0)
#define CFM_WAIT_NEXT() ((void)0)
#endif
/* Waits for this work-item's copies of the stage computed next: all but the STAGES - 2 most
 * recent groups (one group per loop iteration). */
#if CFM_STAGES == 2
#define CFM_WAIT_NEXT_STAGE "cp.async.wait_group 0;"
#elif CFM_STAGES == 3
#define CFM_WAIT_NEXT_STAGE "cp.async.wait_group 1;"
#else
#define CFM_WAIT_NEXT_STAGE "cp.async.wait_group 2;"
#endif
#define CFM_ROWS (CFM_CC * CFM_R)                          /* patch rows: (channel, kernel row) */
#define CFM_PRJ ((CFM_ROWS + CFM_WARPS - 1) / CFM_WARPS)   /* patch rows per warp */
#define CFM_PCU ((CFM_PW + 31) / 32)                       /* patch columns per lane */
#define CFM_WVEC (CFM_W16 ? 4 : 1) /* floats per streamed weight copy */
/* Where value (or, fp16, word) k of chunk `chunk` of output channel ng comes from (the
 * kernel's weight, K, crs and n_chunks), and whether it is there (else it is zero): the
 * caller's [K][C*R*S] weights, or for fp16 the packed copy cf_f16_scale_weights wrote, chunk
 * rows of KCP words (every word there, zeros included) */
#if CFM_F16
#define CFM_W_SRC_OK(ng, chunk, k) ((ng) < K)
#define CFM_W_SRC(ng, chunk, k) (weight + ((long)(ng) * n_chunks + (chunk)) * CFM_KCP + (k))
#else
#define CFM_W_SRC_OK(ng, chunk, k) ((ng) < K && (k) < CFM_KC && (chunk) * CFM_KC + (k) < crs)
#define CFM_W_SRC(ng, chunk, k) (weight + (long)(ng) * crs + (chunk) * CFM_KC + (k))
#endif
#define CFM_PCOPIES (CFM_ROWS * CFM_PV)                              /* 16-byte patch copies */
#if CFM_CHANNEL_PAIRS
#define CFM_PAIR_COPIES (CFM_PCOPIES / 2) /* copies of even channels' rows, each with its odd */
#define CFM_PAIR_SLOTS ((CFM_PAIR_COPIES + CFM_THREADS - 1) / CFM_THREADS)
#define CFM_PSLOTS (2 * CFM_PAIR_SLOTS) /* per work-item */
#else
#define CFM_PSLOTS ((CFM_PCOPIES + CFM_THREADS - 1) / CFM_THREADS) /* per work-item */
#endif
/* Where a work-item's patch copies go, the same for every stage (the fetch's and, with
 * CFM_PATCH_SPLIT, the split's): 16-byte copy j of work-item tid is copy e of the stage, to
 * patch row `row` from column `x`, where CFM_P16_COPY_EXISTS (CFM_P16_DEST; declarations, not a
 * function: this form keeps the fetch's code as it was measured); the fetch also needs the
 * copy's source row src_row of the chunk ((channel, kernel row): CFM_P16_COPY). 4-byte copies
 * go to row warp + j * WARPS and column lane + 32u of a warp, where both are in. */
#if CFM_CHANNEL_PAIRS
/* with channel pairs, copy j < PAIR_SLOTS is pair copy e's even channel (pair pr / R, kernel
 * row pr % R: patch row pr) and copy j + PAIR_SLOTS the same columns of the odd channel (patch
 * row pr + LO_ROWS, source row R further) */
#define CFM_P16_DEST(j)                                                                           \
  const int e = ((j) % CFM_PAIR_SLOTS) * CFM_THREADS + tid, pr = e / CFM_PV,                      \
            odd = (j) >= CFM_PAIR_SLOTS, row = pr + odd * CFM_LO_ROWS, x = (e - pr * CFM_PV) * 4
#define CFM_P16_COPY(j)                                                                           \
  CFM_P16_DEST(j);                                                                                \
  const int src_row = pr / CFM_R * 2 * CFM_R + pr % CFM_R + odd * CFM_R
#define CFM_P16_COPY_EXISTS (CFM_PAIR_COPIES % CFM_THREADS == 0 || e < CFM_PAIR_COPIES)
#else
#define CFM_P16_DEST(j)                                                                           \
  const int e = (j) * CFM_THREADS + tid, row = e / CFM_PV, x = (e - row * CFM_PV) * 4
#define CFM_P16_COPY(j)                                                                           \
  CFM_P16_DEST(j);                                                                                \
  const int src_row = row
#define CFM_P16_COPY_EXISTS (CFM_PCOPIES % CFM_THREADS == 0 || e < CFM_PCOPIES)
#endif
#define CFM_ROW_IN(row) (CFM_ROWS % CFM_WARPS == 0 || (row) < CFM_ROWS)
#define CFM_COLUMN_IN(x) (CFM_PW % 32 == 0 || (x) < CFM_PW)

/* Stores one channel's 2 * MI blocks of 8 pixels (v[b]: this lane's pixel 8b + g of the warp's
 * WM, starting at `row`) in runs that start on 32-byte sector boundaries: run k takes, in each
 * lane, block k - 1 where the lane's pixel falls after the boundary and block k before it, so
 * every store instruction of the 4 channels a warp writes at once fills whole sectors except
 * the first and the last runs. A row of the NCHW output rarely starts on a sector (Q * 4 bytes
 * per row), and the plain fragment stores (block b by one instruction) then wrote every 8-pixel
 * run as two partial sectors: L2 saw ~1.8 sector writes per sector of output and ran at 75% of
 * its peak on sub-sub-mish tf32 (63% with these; H200, bench/NOTES.md v47). The price is 2 * MI
 * + 1 stores per channel instead of 2 * MI, a select per store and live values: the host asks
 * for it where it measured faster. u is the first boundary's pixel. Each lane's address and
 * row limit are worked out once per channel, so a store is one compare against a constant and
 * an immediate offset (per store, sub-sub-mish tf32 ran 9% slower: 1.32 vs 1.21 ms). */
static inline void cfm_store_aligned(const float v[2 * CFM_MI], __global float *row, int ch_ok,
                                     int q_left, int g) {
  const int u = (int)((0u - ((uint)(size_t)row >> 2)) & 7u);
  const int late = g >= u; /* this lane's pixel in run k is in block k - 1: 8k + g - 8 */
  /* run k's element: lane_row[8k], in the row iff 8k < lim (lim 0: channel past K) */
  __global float *lane_row = row + (g - 8 * late);
  const int lim = ch_ok ? q_left - g + 8 * late : 0;
#pragma unroll
  for (int k = 0; k <= 2 * CFM_MI; ++k) {
    const float x = late ? v[k > 0 ? k - 1 : 0] : v[k < 2 * CFM_MI ? k : 2 * CFM_MI - 1];
    const int has_block = k == 0 ? !late : k == 2 * CFM_MI ? late : 1;
    if (has_block && 8 * k < lim)
      lane_row[8 * k] = x;
  }
}

/* n / d for 0 <= n < 2^31 with the host's constants for d (common/fastdiv.h). */
static inline int cfm_fastdiv(int n, uint mul, uint shift) {
  return (int)((mul_hi((uint)n, mul) + (uint)n) >> shift);
}

/* Row tile -> image *n, output row *p and first output column *q0: two fastdivs (by q_tiles,
 * then by P) instead of two run-time divisions of ~20 instructions each. */
static inline void cfm_tile_coords(int tile, int q_tiles, uint q_tiles_mul, uint q_tiles_shift,
                                   int P, uint p_mul, uint p_shift, int *n, int *p, int *q0) {
  const int np = cfm_fastdiv(tile, q_tiles_mul, q_tiles_shift);
  *q0 = (tile - np * q_tiles) * CFM_BM;
  *n = cfm_fastdiv(np, p_mul, p_shift);
  *p = np - *n * P;
}

#if CFM_PATCH_SPLIT
/* Splits the patch values this work-item copied into `stage` (the fetch's own positions, the
 * same for every stage), once its copies have landed: before the barrier that publishes the
 * stage, so the k-loop reads split words only. The zero run past the patch rows stays 0, which
 * is a split 0. */
static inline void cfm_split_patch(__local float *stage, int tid, int warp, int lane) {
#if CFM_CHANNEL_PAIRS
#pragma unroll
  for (int j = 0; j < CFM_PAIR_SLOTS; ++j) {
    CFM_P16_DEST(j);
    if (CFM_P16_COPY_EXISTS)
      cfm_split_channel_pair(stage + row * CFM_PATCH_PITCH + x,
                             stage + (row + CFM_LO_ROWS) * CFM_PATCH_PITCH + x);
  }
  (void)warp;
  (void)lane;
#elif CFM_P16
#pragma unroll
  for (int j = 0; j < CFM_PSLOTS; ++j) {
    CFM_P16_DEST(j);
    if (CFM_P16_COPY_EXISTS)
      cfm_split_words(stage + row * CFM_PATCH_PITCH + x, 4);
  }
  (void)warp;
  (void)lane;
#else
#pragma unroll
  for (int j = 0; j < CFM_PRJ; ++j) {
    const int row = warp + j * CFM_WARPS;
#pragma unroll
    for (int u = 0; u < CFM_PCU; ++u) {
      const int x = lane + 32 * u;
      if (CFM_ROW_IN(row) && CFM_COLUMN_IN(x))
        cfm_split_words(stage + row * CFM_PATCH_PITCH + x, 1);
    }
  }
  (void)tid;
#endif
}
#endif

__kernel __attribute__((reqd_work_group_size(CFM_THREADS, 1, 1))) void
cf_conv2d_mma(__global const float *restrict input, __global const float *restrict weight,
              __global const float *restrict bias, __global float *restrict output,
              const int C, const int H, const int W, const int K, const int P, const int Q,
              const int stride_h, const int pad_h, const int pad_w, const int dil_h,
              const int n_chunks_arg, const int q_tiles, const int m_tiles, const uint q_tiles_mul,
              const uint q_tiles_shift, const uint p_mul, const uint p_shift,
              const float bias_shift,
              const float epi_v0, const float epi_v1, const float epi_v2, const float epi_v3,
              const float epi_v4, const float epi_v5, const float epi_v6,
              const float epi_v7, __global const float *restrict unscale,
              __global uint *restrict range_guard) {
#if CFM_RERUN
  /* the fp16 plan's rerun: nothing to do unless its guard tripped */
  if (*range_guard == 0u)
    return;
#elif !CFM_F16
  (void)range_guard;
#endif
  __local float smem[CFM_SMEM_FLOATS] __attribute__((aligned(16)));
  __local int koff[CFM_KCP];
#if CFM_EMULATE
  __local uint cfm_emu[6 * CFM_THREADS]; /* the mma fragments' meeting place */
#endif
#if !CFM_F16
  (void)unscale;
#endif
  __local float *wres = smem;                        /* resident weights (if any) */
  __local float *stages = smem + CFM_WEIGHT_FLOATS;  /* CFM_STAGES stages */

  /* one K chunk known at compile time: the chunk counters fold away, and nothing the fetch
   * works out per tile stays live from one stage to the next */
  const int n_chunks = CFM_ONE_CHUNK ? 1 : n_chunks_arg;
  const int tid = (int)get_local_id(0);
  const int lane = tid % 32, warp = tid / 32;
  const int g = lane >> 2, t = lane & 3;
  const int m_warp = (warp % CFM_WARPS_M) * CFM_WM, n_warp = (warp / CFM_WARPS_M) * CFM_WN;
  const int n0 = (int)get_group_id(1) * CFM_BN;
  const int crs = C * (CFM_R * CFM_S);
  const cfm_off HW = (cfm_off)H * W;
  const cfm_off PQ = (cfm_off)P * Q;

  /* ---- per-group set-up: K offsets into the patch, the zero runs, resident weights ---- */
  for (int i = tid; i < CFM_KCP; i += CFM_THREADS) {
    /* channel pairs: entry i is slot pair i's, read at its first K value (KCP / 2 in use) */
    const int k = CFM_CHANNEL_PAIRS ? CFM_PAIR_K0(i) : i;
    int off = CFM_ZERO_BASE;
    if (k < CFM_KC) {
      const int cl = k / (CFM_R * CFM_S), rem = k % (CFM_R * CFM_S);
      /* channel pairs: pair cl / 2's hi row for kernel row rem / S (cl is even) */
      const int first_row = CFM_CHANNEL_PAIRS ? cl / 2 * CFM_R : cl * CFM_R;
      off = (first_row + rem / CFM_S) * CFM_PATCH_PITCH + (rem % CFM_S) * CFM_DW;
    }
    koff[i] = off;
  }
  for (int i = CFM_ZERO_BASE + tid; i < CFM_PATCH_FLOATS; i += CFM_THREADS)
#pragma unroll
    for (int b = 0; b < CFM_STAGES; ++b)
      stages[b * CFM_STAGE_FLOATS + i] = 0.0f;
#if CFM_RESIDENT
  /* once per group, every chunk: element (nl, chunk, k) at nl * W_PITCH + chunk * KCP + k, by
   * cp.async (zero past K, past C*R*S and in each chunk's padding), landing with the first
   * stage's copies: loads and stores, each waiting for its load, made the set-up of a group
   * a few thousand cycles of L2 latency (bench/NOTES.md v43) */
  for (int nl = warp; nl < CFM_BN; nl += CFM_WARPS) {
    const int ng = n0 + nl;
    for (int j = lane; j < n_chunks * CFM_KCP; j += 32) {
      const int chunk = j / CFM_KCP, k = j - chunk * CFM_KCP;
      const int ok = CFM_W_SRC_OK(ng, chunk, k);
      cfm_cp_async4(wres + nl * CFM_W_PITCH + j, ok ? CFM_W_SRC(ng, chunk, k) : weight, ok);
    }
  }
#endif

  /* The group's channel tile never changes: its bias (+ folded shift) is loaded once. */
  float bias_lane[CFM_NI][2];
#if CFM_F16 && CFM_UNSCALE_REGS
  float unscale_lane[CFM_NI][2];
#endif
#pragma unroll
  for (int ni = 0; ni < CFM_NI; ++ni)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int ch = n0 + n_warp + ni * 8 + 2 * t + j;
#if CF_HAS_BIAS
      bias_lane[ni][j] = bias_shift + (ch < K ? bias[ch] : 0.0f);
#else
      bias_lane[ni][j] = bias_shift;
#endif
#if CFM_F16 && CFM_UNSCALE_REGS
      unscale_lane[ni][j] = cfm_unscale_of(unscale, ch, K);
#endif
#if CFM_F16 && !CFM_SPLIT
      /* one fp16 product starts at the bias in the products' scaled units (a power of two) */
      bias_lane[ni][j] /= cfm_unscale_of(unscale, ch, K);
#endif
      (void)ch;
    }

  /* One TF32 product: each row tile's sums start at its channels' bias (+ shift), as the CUDA
   * kernels' do, one add per output fewer in the epilogue (element j of an mma tile is channel
   * 2t + j % 2; H200: sub-sub-mish tf32 1.20 -> 1.12 ms). 3xTF32 adds the bias in the epilogue:
   * started at the bias, sub-sub-mish fp32 went 1.59 -> 1.72 (bench/NOTES.md v52). */
/* fp16: the sums come in each channel's scaled units; back to fp32's once per tile, before
 * the bias (pairs) and the guard's test. The factors are read where used (cached loads, once
 * per tile; a local copy would take local memory the planner's layout does not count), or
 * with unscale_regs held in registers from the set-up on. */
#if CFM_F16
#if CFM_UNSCALE_REGS
#define CFM_UNSCALED(x, ni, j) ((x) * unscale_lane[ni][j])
#else
#define CFM_UNSCALED(x, ni, j)                                                                  \
  ((x) * cfm_unscale_of(unscale, n0 + n_warp + (ni) * 8 + 2 * t + (j), K))
#endif
#define CFM_GUARD(x) (finite = finite && CFM_FINITE(x))
#else
#define CFM_UNSCALED(x, ni, j) (x)
#define CFM_GUARD(x) ((void)0)
#endif
#if CFM_SPLIT
#define CFM_ACC_START(ni, j) 0.0f
#define CFM_BIASED(x, ni, j) (CFM_UNSCALED(x, ni, j) + bias_lane[ni][j])
#else
#define CFM_ACC_START(ni, j) bias_lane[ni][j]
#define CFM_BIASED(x, ni, j) CFM_UNSCALED(x, ni, j)
#endif
  float acc[CFM_MI * CFM_NI][4];
#pragma unroll
  for (int i = 0; i < CFM_MI * CFM_NI; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
      acc[i][j] = CFM_ACC_START(i % CFM_NI, j & 1);

  /* ---- the stage sequence: (my row tiles) x (chunks). Iteration j fetches stage j into
   * buffer j % STAGES (whose previous stage was computed in iteration j - 1 and closed by its
   * barrier), computes stage j - (STAGES - 1), waits for the copies of the stage computed
   * next, and ends with one barrier. ---- */
  const int tile_step = (int)get_num_groups(0);
  int ltile = (int)get_group_id(0), lchunk = 0, lbuf = 0; /* the next stage to fetch */
  int ctile = ltile, cchunk = 0, cbuf = 0;                /* the next stage to compute */
  int lag = CFM_STAGES - 1; /* iterations before the first compute */
#if CFM_PATCH_SPLIT
  /* the stage whose copies the wait at the end of an iteration completes: iteration i's is
   * stage i - (STAGES - 2), the next one computed */
  int split_lag = CFM_STAGES - 2, split_buf = 0;
#endif
#if CFM_P16
  /* this work-item's patch copies for the fetched tile: each one's chunk-0 source and byte
   * count, worked out once per tile; a chunk then only offsets the source by its channels
   * (the address arithmetic was about half of mish-mish's fetch instructions). With CFM_OFF32
   * a copy is one word across the k-loop, not three: its offset from the tile's first input
   * element (a multiple of 4 floats: W and the copies' columns are) times 2, or its bytes / 4
   * (0..4) */
  __global const float *tile_in = input; /* the fetched tile's first input element */
#if CFM_OFF32
  uint pslot[CFM_PSLOTS];
#else
  __global const float *psrc[CFM_PSLOTS];
  int pbytes[CFM_PSLOTS];
#endif
#else
  /* the fetched tile's first input row and column and its chunk 0 offset: decoded once per
   * tile, not once per chunk */
  int ih0 = 0, iw0 = 0;
  long tile_base = 0;
#endif
  while (ctile < m_tiles) {
    const int more = ltile < m_tiles;
    __local float *stage = stages + lbuf * CFM_STAGE_FLOATS; /* the one being filled */
    if (more) {
      /* stage (ltile, lchunk) into buffer `lbuf`: zero outside the image, past C, past K */
      const int c0 = lchunk * CFM_CC;
#if CFM_P16
      /* 16-byte copies, ceil(PW / 4) per patch row: the row's columns start 16-byte aligned,
       * a copy across the image's right edge takes the columns inside, and one left of it
       * (pad_w a multiple of 4) none. Columns PW.. of the last copy land in the row's pitch. */
      if (lchunk == 0) {
        int n, p, q0;
        cfm_tile_coords(ltile, q_tiles, q_tiles_mul, q_tiles_shift, P, p_mul, p_shift, &n, &p,
                        &q0);
        const int ih0 = p * stride_h - pad_h, iw0 = q0 * CFM_SW - pad_w;
        tile_in = input + ((long)n * C * HW + (long)ih0 * W + iw0);
#pragma unroll
        for (int j = 0; j < CFM_PSLOTS; ++j) {
          CFM_P16_COPY(j);
          const int cl = src_row / CFM_R, rd = (src_row - cl * CFM_R) * dil_h;
          const int in = CFM_P16_COPY_EXISTS && ih0 + rd >= 0 && ih0 + rd < H && iw0 + x >= 0;
          const int quads = clamp(W - (iw0 + x), 0, 4); /* image columns from x on */
          const cfm_off off = cl * HW + (cfm_off)rd * W + x;
#if CFM_OFF32
          pslot[j] = in ? (uint)off << 1 | (uint)quads : 0u;
#else
          pbytes[j] = in ? 4 * quads : 0;
          psrc[j] = in ? tile_in + off : input;
#endif
        }
      }
      const cfm_off chunk_off = (cfm_off)c0 * HW;
#pragma unroll
      for (int j = 0; j < CFM_PSLOTS; ++j) {
        CFM_P16_COPY(j);
        if (CFM_P16_COPY_EXISTS) {
#if CFM_OFF32
          const int bytes = c0 + src_row / CFM_R < C ? (int)(pslot[j] & 7u) * 4 : 0;
          __global const float *src = tile_in + ((int)(pslot[j] >> 3) * 4 + chunk_off);
#else
          const int bytes = c0 + src_row / CFM_R < C ? pbytes[j] : 0;
          __global const float *src = psrc[j] + chunk_off;
#endif
          cfm_cp_async16_ca(stage + row * CFM_PATCH_PITCH + x, bytes ? src : input, bytes);
        }
      }
#else
      if (lchunk == 0) {
        int n, p, q0;
        cfm_tile_coords(ltile, q_tiles, q_tiles_mul, q_tiles_shift, P, p_mul, p_shift, &n, &p,
                        &q0);
        ih0 = p * stride_h - pad_h;
        iw0 = q0 * CFM_SW - pad_w;
        tile_base = (long)n * C * HW + (long)ih0 * W + iw0;
      }
      const long base = tile_base + (long)c0 * HW;
#pragma unroll
      for (int j = 0; j < CFM_PRJ; ++j) {
        const int row = warp + j * CFM_WARPS;
        const int cl = row / CFM_R, rd = (row - cl * CFM_R) * dil_h;
        const int row_in = CFM_ROW_IN(row);
        const int row_ok = row_in && c0 + cl < C && ih0 + rd >= 0 && ih0 + rd < H;
        __global const float *src = input + base + cl * HW + (long)rd * W;
#pragma unroll
        for (int u = 0; u < CFM_PCU; ++u) {
          const int x = lane + 32 * u;
          const int ok = row_ok && CFM_COLUMN_IN(x) && iw0 + x >= 0 && iw0 + x < W;
          if (row_in && CFM_COLUMN_IN(x)) /* a 0-byte copy fills zeros */
            cfm_cp_async4(stage + row * CFM_PATCH_PITCH + x, ok ? src + x : input, ok);
        }
      }
#endif
#if !CFM_RESIDENT
      {
#pragma unroll
        for (int e0 = 0; e0 < CFM_BN * CFM_KCP / CFM_WVEC; e0 += CFM_THREADS) {
          const int e = e0 + tid, nl = e / (CFM_KCP / CFM_WVEC);
          const int k = (e - nl * (CFM_KCP / CFM_WVEC)) * CFM_WVEC;
          const int ok = CFM_W_SRC_OK(n0 + nl, lchunk, k);
          __global const float *src = ok ? CFM_W_SRC(n0 + nl, lchunk, k) : weight;
          __local float *dst = stage + CFM_PATCH_FLOATS + nl * CFM_W_PITCH + CFM_W_COL(nl, k);
          if ((CFM_BN * CFM_KCP / CFM_WVEC) % CFM_THREADS == 0 ||
              e < CFM_BN * CFM_KCP / CFM_WVEC) {
#if CFM_W16
            cfm_cp_async16_cg(dst, src, ok ? 16 : 0);
#else
            cfm_cp_async4(dst, src, ok);
#endif
          }
        }
      }
#endif
    }

    CFM_COMMIT(); /* one group per iteration */

    if (lag == 0) {
      __local const float *patch = stages + cbuf * CFM_STAGE_FLOATS;
#if CFM_RESIDENT
      __local const float *wsm = wres + cchunk * CFM_KCP;
#else
      __local const float *wsm = patch + CFM_PATCH_FLOATS;
#endif
#if CFM_LDSM && !CFM_EMULATE
      const uint b_addr = (uint)(size_t)cfm_ldsm_row(wsm, lane, n_warp);
#define CFM_LOAD_B(b, kb) cfm_load_b_ldsm(b, b_addr, kb)
#elif CFM_LDSM
#define CFM_LOAD_B(b, kb) cfm_load_b_ldsm_emulated(b, wsm, n_warp, lane, kb)
#else
      __local const float *w_lane = wsm + (n_warp + g) * CFM_W_PITCH + t;
#define CFM_LOAD_B(b, kb) cfm_load_b_scalar(b, w_lane, kb)
#endif
      __local const int *koff_lane = koff + t;
      const int m_lane = m_warp + g;

#if CFM_SPLIT
      /* 3xTF32 (and fp16 pairs): the chunk accumulates in fresh registers (the tensor cores'
       * fp32 accumulation truncates; over deep K that bias broke the fp32 contract), then one
       * rounded add into acc. */
      float part[CFM_MI * CFM_NI][4];
#pragma unroll
      for (int i = 0; i < CFM_MI * CFM_NI; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          part[i][j] = 0.0f;
#endif
#if CFM_F16
      /* fp16 products: one m16n8k16 per two TF32 k-steps (kb, kb + 8), A from those steps'
       * fragment loads: lane (g, t)'s fp16 K slots 2t, 2t + 1, 2t + 8, 2t + 9 take the K values
       * t, t + 4, 8 + t, 12 + t that its TF32 fragments hold (the mma sums over K, so any
       * order that A and B share is right). B comes packed in that order by
       * cf_f16_scale_weights and arrives by the TF32 fragment loads at the word offsets
       * CFM_B16_HI / CFM_B16_LO: no conversion in the k-loop. KCP % 16 == 8 leaves one m16n8k8
       * .f16 at the end. For 3xTF32's accuracy, pairs (hi, lo) and three products into part,
       * as the TF32 split does. */
#if CFM_SPLIT
#define CFM_F16_SUM part
#define CFM_F16_PACK(hi, lo, x0, x1) cfm_f16x2_split(x0, x1, &(hi), &(lo))
#else
#define CFM_F16_SUM acc
#define CFM_F16_PACK(hi, lo, x0, x1) ((hi) = cfm_f16x2(x0, x1))
#endif
/* A (the input) times pairs' fixed 2^CFM_A_SHIFT; B (the weights) came scaled */
#if CFM_CHANNEL_PAIRS
#define CFM_F16_PACK_A(hi, lo, x0, x1) ((hi) = as_uint(x0), (lo) = as_uint(x1))
#elif CFM_PATCH_SPLIT
#define CFM_F16_PACK_A(hi, lo, x0, x1) cfm_pair_words(x0, x1, &(hi), &(lo))
#else
#define CFM_F16_PACK_A(hi, lo, x0, x1) CFM_F16_PACK(hi, lo, (x0) * CFM_A_SCALE, (x1) * CFM_A_SCALE)
#endif
#if CFM_K_UNROLLED
#pragma unroll
#else
#pragma unroll 1
#endif
      for (int kb = 0; kb < CFM_KCP / 16 * 16; kb += 16) {
        uint ahi[CFM_MI][4], bhi[CFM_NI][2];
#if CFM_SPLIT
        uint alo[CFM_MI][4], blo[CFM_NI][2];
#endif
#pragma unroll
        for (int h = 0; h < 2; ++h) { /* TF32 step kb + 8h: A words 2h (row g), 2h + 1 (g + 8) */
#if CFM_CHANNEL_PAIRS /* slot pair (kb + 8h) / 2 + t: its hi words, and its lo words */
          const int ko0 = koff_lane[kb / 2 + 4 * h], ko1 = ko0 + CFM_LO_OFFSET;
#else
          const int ko0 = koff_lane[kb + 8 * h], ko1 = koff_lane[kb + 8 * h + 4];
#endif
#pragma unroll
          for (int mi = 0; mi < CFM_MI; ++mi) {
            const int m = m_lane + mi * 16;
            CFM_F16_PACK_A(ahi[mi][2 * h], alo[mi][2 * h], patch[ko0 + m * CFM_SW],
                           patch[ko1 + m * CFM_SW]);
            CFM_F16_PACK_A(ahi[mi][2 * h + 1], alo[mi][2 * h + 1],
                           patch[ko0 + (m + 8) * CFM_SW], patch[ko1 + (m + 8) * CFM_SW]);
          }
        }
        CFM_LOAD_B(bhi, CFM_B16_HI(kb));
#if CFM_SPLIT
        CFM_LOAD_B(blo, CFM_B16_LO(kb));
#endif
#pragma unroll
        for (int mi = 0; mi < CFM_MI; ++mi)
#pragma unroll
          for (int ni = 0; ni < CFM_NI; ++ni) {
#if CFM_SPLIT
            CFM_MMA16(part[mi * CFM_NI + ni], alo[mi][0], alo[mi][1], alo[mi][2], alo[mi][3],
                      bhi[ni][0], bhi[ni][1]);
            CFM_MMA16(part[mi * CFM_NI + ni], ahi[mi][0], ahi[mi][1], ahi[mi][2], ahi[mi][3],
                      blo[ni][0], blo[ni][1]);
#endif
            CFM_MMA16(CFM_F16_SUM[mi * CFM_NI + ni], ahi[mi][0], ahi[mi][1], ahi[mi][2],
                      ahi[mi][3], bhi[ni][0], bhi[ni][1]);
          }
      }
#if CFM_KCP % 16
      {
        /* the last 8 K values (the chunk's end within them: 1..4 past KCP - 8 leaves the lane's
         * second K value, t + 4, zero) */
#if CFM_KC % 8 != 0 && CFM_KC % 8 <= 4
        const int four = 1;
#else
        const int four = 0;
#endif
        const int kb = CFM_KCP - 8;
#if CFM_CHANNEL_PAIRS
        const int ko0 = koff_lane[kb / 2], ko1 = ko0 + CFM_LO_OFFSET;
#else
        const int ko0 = koff_lane[kb], ko1 = four ? 0 : koff_lane[kb + 4];
#endif
        uint ahi[CFM_MI][2];
#if CFM_SPLIT
        uint alo[CFM_MI][2];
#endif
#pragma unroll
        for (int mi = 0; mi < CFM_MI; ++mi) {
          const int m = m_lane + mi * 16;
          CFM_F16_PACK_A(ahi[mi][0], alo[mi][0], patch[ko0 + m * CFM_SW],
                         four ? 0.0f : patch[ko1 + m * CFM_SW]);
          CFM_F16_PACK_A(ahi[mi][1], alo[mi][1], patch[ko0 + (m + 8) * CFM_SW],
                         four ? 0.0f : patch[ko1 + (m + 8) * CFM_SW]);
        }
        /* the packed tail: b[ni][0] word t (hi) and, pairs, b[ni][1] word 4 + t (lo) */
        uint b[CFM_NI][2];
        CFM_LOAD_B(b, CFM_B16_HI(kb));
#pragma unroll
        for (int mi = 0; mi < CFM_MI; ++mi)
#pragma unroll
          for (int ni = 0; ni < CFM_NI; ++ni) {
#if CFM_SPLIT
            CFM_MMA8H(part[mi * CFM_NI + ni], alo[mi][0], alo[mi][1], b[ni][0]);
            CFM_MMA8H(part[mi * CFM_NI + ni], ahi[mi][0], ahi[mi][1], b[ni][1]);
#endif
            CFM_MMA8H(CFM_F16_SUM[mi * CFM_NI + ni], ahi[mi][0], ahi[mi][1], b[ni][0]);
          }
      }
#endif
#undef CFM_F16_SUM
#undef CFM_F16_PACK
#undef CFM_F16_PACK_A
#elif CFM_SPLIT
      /* 3xTF32: big x small, small x big, big x big into part */
#if CFM_K_UNROLLED
#pragma unroll
#else
#pragma unroll 1
#endif
      for (int kb = 0; kb < CFM_KCP; kb += 8) {
        const int tail = CFM_TAIL_STEP(kb); /* K values kb .. kb + 3 only */
        const int ko0 = koff_lane[kb], ko1 = tail ? 0 : koff_lane[kb + 4];
        uint abig[CFM_MI][4], asml[CFM_MI][4], bbig[CFM_NI][2], bsml[CFM_NI][2];
#pragma unroll
        for (int mi = 0; mi < CFM_MI; ++mi) {
          const int m = m_lane + mi * 16;
          float a[4];
          a[0] = patch[ko0 + m * CFM_SW];
          a[1] = patch[ko0 + (m + 8) * CFM_SW];
          a[2] = tail ? 0.0f : patch[ko1 + m * CFM_SW];
          a[3] = tail ? 0.0f : patch[ko1 + (m + 8) * CFM_SW];
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            abig[mi][j] = cfm_tf32_rna(a[j]);
            asml[mi][j] = as_uint(a[j] - as_float(abig[mi][j]));
          }
        }
        CFM_LOAD_B(bsml, kb); /* the raw bits, split in place below */
#pragma unroll
        for (int ni = 0; ni < CFM_NI; ++ni)
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const float b = as_float(bsml[ni][j]);
            bbig[ni][j] = cfm_tf32_rna(b);
            bsml[ni][j] = as_uint(b - as_float(bbig[ni][j]));
          }
#pragma unroll
        for (int mi = 0; mi < CFM_MI; ++mi)
#pragma unroll
          for (int ni = 0; ni < CFM_NI; ++ni) {
            if (tail) {
              CFM_MMA4(part[mi * CFM_NI + ni], asml[mi][0], asml[mi][1], bbig[ni][0]);
              CFM_MMA4(part[mi * CFM_NI + ni], abig[mi][0], abig[mi][1], bsml[ni][0]);
              CFM_MMA4(part[mi * CFM_NI + ni], abig[mi][0], abig[mi][1], bbig[ni][0]);
            } else {
              CFM_MMA(part[mi * CFM_NI + ni], asml[mi][0], asml[mi][1], asml[mi][2],
                      asml[mi][3], bbig[ni][0], bbig[ni][1]);
              CFM_MMA(part[mi * CFM_NI + ni], abig[mi][0], abig[mi][1], abig[mi][2],
                      abig[mi][3], bsml[ni][0], bsml[ni][1]);
              CFM_MMA(part[mi * CFM_NI + ni], abig[mi][0], abig[mi][1], abig[mi][2],
                      abig[mi][3], bbig[ni][0], bbig[ni][1]);
            }
          }
      }
#else
      /* TF32: the raw fp32 bits are the operands; unrolled (by two at least) so that the next
       * k-step's local loads are in flight while this one's mma.syncs issue. */
#if CFM_K_UNROLLED
#pragma unroll
#else
#pragma unroll 2
#endif
      for (int kb = 0; kb < CFM_KCP; kb += 8) {
        const int tail = CFM_TAIL_STEP(kb); /* K values kb .. kb + 3 only */
        const int ko0 = koff_lane[kb], ko1 = tail ? 0 : koff_lane[kb + 4];
        uint a[CFM_MI][4], b[CFM_NI][2];
#pragma unroll
        for (int mi = 0; mi < CFM_MI; ++mi) {
          const int m = m_lane + mi * 16;
          a[mi][0] = as_uint(patch[ko0 + m * CFM_SW]);
          a[mi][1] = as_uint(patch[ko0 + (m + 8) * CFM_SW]);
          a[mi][2] = tail ? 0u : as_uint(patch[ko1 + m * CFM_SW]);
          a[mi][3] = tail ? 0u : as_uint(patch[ko1 + (m + 8) * CFM_SW]);
        }
        CFM_LOAD_B(b, kb);
#pragma unroll
        for (int mi = 0; mi < CFM_MI; ++mi)
#pragma unroll
          for (int ni = 0; ni < CFM_NI; ++ni) {
            if (tail)
              CFM_MMA4(acc[mi * CFM_NI + ni], a[mi][0], a[mi][1], b[ni][0]);
            else
              CFM_MMA(acc[mi * CFM_NI + ni], a[mi][0], a[mi][1], a[mi][2], a[mi][3], b[ni][0],
                      b[ni][1]);
          }
      }
#endif
#if CFM_SPLIT
#pragma unroll
      for (int i = 0; i < CFM_MI * CFM_NI; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          acc[i][j] += part[i][j];
#endif

      if (cchunk == n_chunks - 1) {
        /* ---- row tile done: bias + shift, the chain, stores; then a fresh accumulator ---- */
        int n, p, q0;
        cfm_tile_coords(ctile, q_tiles, q_tiles_mul, q_tiles_shift, P, p_mul, p_shift, &n, &p,
                        &q0);
#if CFM_F16
        int finite = 1; /* every sum of this work-item's part of the tile */
#endif
#if CFM_ALIGNED_STORES
        /* the warp's first pixel of channel 0; pixel m_warp + x is in iff x < q_left */
        __global float *out_warp = output + ((long)n * K * P + p) * Q + q0 + m_warp;
        const int q_left = Q - q0 - m_warp;
#pragma unroll
        for (int ni = 0; ni < CFM_NI; ++ni)
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const int ch = n0 + n_warp + ni * 8 + 2 * t + j;
            /* this channel's 2 * MI blocks of 8 pixels: block b is pixels 8b .. 8b + 7 of the
             * warp's WM, this lane's pixel 8b + g */
            float v[2 * CFM_MI];
#pragma unroll
            for (int mi = 0; mi < CFM_MI; ++mi) {
              v[2 * mi] = CFM_BIASED(acc[mi * CFM_NI + ni][j], ni, j);
              v[2 * mi + 1] = CFM_BIASED(acc[mi * CFM_NI + ni][2 + j], ni, j);
              CFM_GUARD(v[2 * mi]);
              CFM_GUARD(v[2 * mi + 1]);
              acc[mi * CFM_NI + ni][j] = CFM_ACC_START(ni, j);
              acc[mi * CFM_NI + ni][2 + j] = CFM_ACC_START(ni, j);
            }
#pragma unroll
            for (int b = 0; b < 2 * CFM_MI; ++b)
              CF_EPI_APPLY(v[b]);
            cfm_store_aligned(v, out_warp + (cfm_off)ch * PQ, ch < K, q_left, g);
          }
#else
        __global float *out_tile = output + ((long)n * K * P + p) * Q + q0 + m_warp + g;
        const int q_left = Q - q0 - m_warp - g; /* pixel m_warp + g + j is in iff j < q_left */
#pragma unroll
        for (int ni = 0; ni < CFM_NI; ++ni) {
          const int ch = n0 + n_warp + ni * 8 + 2 * t;
          __global float *o0 = out_tile + (cfm_off)ch * PQ;
          __global float *o1 = o0 + PQ;
          const int ok0 = ch < K, ok1 = ch + 1 < K;
#pragma unroll
          for (int mi = 0; mi < CFM_MI; ++mi) {
            float x0 = CFM_BIASED(acc[mi * CFM_NI + ni][0], ni, 0);
            float x1 = CFM_BIASED(acc[mi * CFM_NI + ni][1], ni, 1);
            float x2 = CFM_BIASED(acc[mi * CFM_NI + ni][2], ni, 0);
            float x3 = CFM_BIASED(acc[mi * CFM_NI + ni][3], ni, 1);
            CFM_GUARD(x0);
            CFM_GUARD(x1);
            CFM_GUARD(x2);
            CFM_GUARD(x3);
            CF_EPI_APPLY(x0);
            CF_EPI_APPLY(x1);
            CF_EPI_APPLY(x2);
            CF_EPI_APPLY(x3);
            const int in0 = mi * 16 < q_left, in1 = mi * 16 + 8 < q_left;
            if (ok0 && in0)
              o0[mi * 16] = x0;
            if (ok1 && in0)
              o1[mi * 16] = x1;
            if (ok0 && in1)
              o0[mi * 16 + 8] = x2;
            if (ok1 && in1)
              o1[mi * 16 + 8] = x3;
            acc[mi * CFM_NI + ni][0] = CFM_ACC_START(ni, 0);
            acc[mi * CFM_NI + ni][1] = CFM_ACC_START(ni, 1);
            acc[mi * CFM_NI + ni][2] = CFM_ACC_START(ni, 0);
            acc[mi * CFM_NI + ni][3] = CFM_ACC_START(ni, 1);
          }
        }
#endif
#if CFM_F16
        if (!finite) /* the host's rerun recomputes the launch on TF32 / 3xTF32 */
          *range_guard = 1u;
#endif
      }
    }

    /* Publishes the stage computed next (its copies waited for first; the first time also
     * the set-up above); closes the reads of the stage just computed before its buffer is
     * filled again. */
    CFM_WAIT_NEXT();
#if CFM_PATCH_SPLIT
    if (split_lag > 0) {
      --split_lag;
    } else { /* past the last fetch this splits a stage already computed: never read again */
      cfm_split_patch(stages + split_buf * CFM_STAGE_FLOATS, tid, warp, lane);
      split_buf = split_buf + 1 == CFM_STAGES ? 0 : split_buf + 1;
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);

    if (more) {
      if (++lchunk == n_chunks) {
        lchunk = 0;
        ltile += tile_step;
      }
      lbuf = lbuf + 1 == CFM_STAGES ? 0 : lbuf + 1;
    }
    if (lag > 0) {
      --lag;
    } else {
      if (++cchunk == n_chunks) {
        cchunk = 0;
        ctile += tile_step;
      }
      cbuf = cbuf + 1 == CFM_STAGES ? 0 : cbuf + 1;
    }
  }
}

#if CFM_F16
/* fp16 products: each output channel's weights (weight [K][crs]) times its power of two 2^e
 * (cf_f16_scale.h), rounded to fp16 (pairs: hi and lo) and packed as the k-loop reads them
 * (CFM_B16_HI), into packed: per channel n_chunks rows of KCP words, zero past the chunk's K
 * values and past C*R*S; the channel's 2^-(e + CFM_A_SHIFT) into unscale. One work-group of
 * CFM_SCALE_THREADS per channel, every call: the weights may change. It also clears the
 * range guard, one command fewer per call than a fill (the queue is in order). */
#define CFM_SCALE_THREADS 64
/* value k of chunk `chunk` of row w (zero past the chunk and past C*R*S), times scale */
static inline float cfm_scaled_weight(__global const float *w, int chunk, int k, int crs,
                                      float scale) {
  const int kg = chunk * CFM_KC + k;
  return k < CFM_KC && kg < crs ? w[kg] * scale : 0.0f;
}
__kernel __attribute__((reqd_work_group_size(CFM_SCALE_THREADS, 1, 1))) void
cf_f16_scale_weights(__global const float *restrict weight, __global uint *restrict packed,
                     __global float *restrict unscale, const int crs, const int n_chunks,
                     __global uint *restrict range_guard) {
  __local uint top[CFM_SCALE_THREADS];
  const int tid = (int)get_local_id(0);
  __global const float *w = weight + (long)get_group_id(0) * crs;
  __global uint *row = packed + (long)get_group_id(0) * n_chunks * CFM_KCP;
  const int e = cf_f16_weight_exponent(w, crs, top, tid, CFM_SCALE_THREADS);
  const float scale = as_float((uint)(e + 127) << 23);
  for (int i = tid; i < n_chunks * CFM_KCP; i += CFM_SCALE_THREADS) {
    const int chunk = i / CFM_KCP, p = i - chunk * CFM_KCP;
#if CFM_SPLIT
    /* a block's hi set, then its lo set; a tail block's (8 K values) hi and lo words */
    const int block = p / 16, r = p % 16, full = 16 * block + 16 <= CFM_KCP;
    const int lo = full ? r / 8 : r / 4, h = full ? (r / 4) % 2 : 0;
#else
    const int block = p / 8, r = p % 8, h = r / 4;
    const int past = p >= CFM_KCP / 2; /* past the one product's words: zero */
#endif
    const int k = CFM_PAIR_K0(8 * block + 4 * h + r % 4);
    const float x0 = cfm_scaled_weight(w, chunk, k, crs, scale);
    const float x1 = cfm_scaled_weight(w, chunk, k + CFM_PAIR_DK, crs, scale);
#if CFM_SPLIT
    uint whi, wlo;
    cfm_f16x2_split(x0, x1, &whi, &wlo);
    row[i] = lo ? wlo : whi;
#else
    row[i] = past ? 0u : cfm_f16x2(x0, x1);
#endif
  }
  if (tid == 0)
    unscale[get_group_id(0)] = as_float((uint)(127 - e - CFM_A_SHIFT) << 23);
  if (get_group_id(0) == 0 && tid == 0) /* the fp16 kernel queued after this one starts clear */
    *range_guard = 0u;
}
#endif

#endif /* CF_MMA_KERNEL && !CF_WGMMA_KERNEL */
