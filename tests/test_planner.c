/* test_planner: the tiling planner (common/planner.h) on fixture device caps, and the
 * epilogue chain helpers (common/epilogue.h): folding, description, and the float formulas the
 * kernels implement against the double semantics. Pure host code: no device needed. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cf_constants.h"
#include "convfuse/convfuse.h"
#include "epilogue.h"
#include "fastdiv.h"
#include "internal_api.h"
#include "mma_layout.h"
#include "planner.h"
#include "shape.h"

/* ---- fixture devices ---- */

#define KB ((size_t)1024)
#define FFMA (1u << CF_KERNEL_FFMA_TILED)

static cf_device_caps caps_h200(void) {
  cf_device_caps c = {.kind = CF_DEVICE_GPU, .compute_units = 132,
                      .shared_mem_per_block = 48 * KB, .shared_mem_per_block_max = 227 * KB,
                      .max_threads_per_block = 1024, .simd_width = 32, .arch = 90,
                      .has_tf32_mma = 1, .has_wgmma = 1, .has_tma = 1, .mma_staged_output = 1,
                      .l2_bytes = 60u * 1024 * 1024,
                      .global_mem_bytes = 141ull * 1000 * 1000 * 1000,
                      .max_alloc_bytes = 141ull * 1000 * 1000 * 1000, .kernel_variants = FFMA};
  return c;
}

static cf_device_caps caps_pocl2(void) {
  cf_device_caps c = {.kind = CF_DEVICE_CPU, .compute_units = 2,
                      .shared_mem_per_block = 64 * KB, .shared_mem_per_block_max = 64 * KB,
                      .max_threads_per_block = 4096, .simd_width = 1, .arch = 0,
                      .l2_bytes = 0, .global_mem_bytes = 8ull << 30,
                      .max_alloc_bytes = 2ull << 30, .kernel_variants = FFMA};
  return c;
}

static cf_device_caps caps_small_gpu(void) {
  cf_device_caps c = {.kind = CF_DEVICE_GPU, .compute_units = 8,
                      .shared_mem_per_block = 48 * KB, .shared_mem_per_block_max = 48 * KB,
                      .max_threads_per_block = 1024, .simd_width = 32, .arch = 61,
                      .l2_bytes = 1u << 20, .global_mem_bytes = 4ull << 30,
                      .max_alloc_bytes = 1ull << 30, .kernel_variants = FFMA};
  return c;
}

static cf_device_caps caps_tiny(void) {
  cf_device_caps c = {.kind = CF_DEVICE_OTHER, .compute_units = 1,
                      .shared_mem_per_block = 16 * KB, .shared_mem_per_block_max = 16 * KB,
                      .max_threads_per_block = 128, .simd_width = 8, .arch = 0,
                      .global_mem_bytes = 256u << 20, .max_alloc_bytes = 64u << 20,
                      .kernel_variants = FFMA};
  return c;
}

static cf_device_caps caps_cpu_backend(void) {
  cf_device_caps c = {.kind = CF_DEVICE_CPU, .compute_units = 2, .max_threads_per_block = 1,
                      .simd_width = 1, .global_mem_bytes = UINT64_MAX,
                      .max_alloc_bytes = UINT64_MAX,
                      .kernel_variants = 1u << CF_KERNEL_REFERENCE};
  return c;
}

typedef struct named_caps {
  const char *name;
  cf_device_caps caps;
} named_caps;

/* Every GPU kernel variant the tree defines (tensor-core ones included where they exist). */
#define ALL_GPU_VARIANTS (((1u << CF_KERNEL_COUNT) - 1u) & ~(1u << CF_KERNEL_REFERENCE))

/* An H200 through NVIDIA's OpenCL: tensor cores (the probe passed) but 48 KB of local memory
 * per work-group and no opt-in; tensor-core work-groups of at most 256 work-items, 128 for
 * 3xTF32 with resident weights (what the OpenCL backend reports there with its register cap;
 * 128 without it). */
static cf_device_caps caps_h200_opencl(void) {
  cf_device_caps c = caps_h200();
  c.shared_mem_per_block_max = 48 * KB;
  c.mma_max_threads = 256;
  c.mma_split_resident_max_threads = 128;
  c.has_wgmma = 0;
  c.has_tma = 0;
  c.mma_staged_output = 0; /* kernels_cl/conv2d_mma.cl stores from registers */
  c.mma_registers_capped = 1; /* rebuilt from its PTX with .maxnreg (the probe proved it) */
  c.mma_tall_warps = 1;       /* 64 x 32 warps for one TF32 product, weights streamed */
  c.mma_weight_swizzle = 1;   /* streamed weights unpadded where padded ones do not fit */
  c.kernel_variants = ALL_GPU_VARIANTS;
  return c;
}

/* The H200 offering every GPU kernel variant (the planner's whole menu). */
static cf_device_caps caps_h200_all(void) {
  cf_device_caps c = caps_h200();
  c.kernel_variants = ALL_GPU_VARIANTS;
  return c;
}

/* The H200 with flat tiles (the CUDA backend's default there: CONVFUSE_FLAT unset). */
static cf_device_caps caps_h200_flat(void) {
  cf_device_caps c = caps_h200_all();
  c.flat_tiles = 1;
  return c;
}

static void all_devices(named_caps out[9]) {
  out[0] = (named_caps){"H200", caps_h200()};
  out[1] = (named_caps){"PoCL 2 cores", caps_pocl2()};
  out[2] = (named_caps){"small GPU (8 SMs)", caps_small_gpu()};
  out[3] = (named_caps){"tiny (128 threads, 16 KB)", caps_tiny()};
  out[4] = (named_caps){"CPU backend", caps_cpu_backend()};
  out[5] = (named_caps){"H200, every GPU variant", caps_h200_all()};
  out[6] = (named_caps){"small GPU, every GPU variant, no TF32", caps_small_gpu()};
  out[6].caps.kernel_variants = ALL_GPU_VARIANTS;
  out[7] = (named_caps){"H200 via NVIDIA OpenCL (48 KB, tensor cores)", caps_h200_opencl()};
  out[8] = (named_caps){"H200, every GPU variant, flat tiles", caps_h200_flat()};
}
#define N_DEVICES 9

/* ---- shapes ---- */

typedef struct named_shape {
  const char *name;
  cf_conv2d_desc d;
  cf_op ops[3];
  int n_ops;
} named_shape;

static const named_shape shapes[] = {
    {"sub-sub-mish 128x8x256x256 -> 64",
     {128, 8, 256, 256, 64, 3, 3, 1, 1, 0, 0, 1, 1, 1},
     {{CF_OP_SUB, 0.5f}, {CF_OP_SUB, 0.2f}, {CF_OP_MISH, 0}},
     3},
    {"mish-mish 64x64x256x256 -> 128",
     {64, 64, 256, 256, 128, 3, 3, 1, 1, 0, 0, 1, 1, 1},
     {{CF_OP_MISH, 0}, {CF_OP_MISH, 0}},
     2},
    {"odd 1x3x13x17 -> 70", {1, 3, 13, 17, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1}, {{0, 0}}, 0},
    {"K3 1x3x13x17", {1, 3, 13, 17, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1}, {{CF_OP_RELU, 0}}, 1},
    {"K1 one channel", {1, 1, 13, 17, 1, 3, 3, 1, 1, 0, 0, 1, 1, 0}, {{0, 0}}, 0},
    {"1x1 everything", {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1}, {{0, 0}}, 0},
    {"batch 3 K33 stride 2 dil 2", {3, 2, 31, 29, 33, 3, 3, 2, 2, 1, 1, 2, 2, 1}, {{0, 0}}, 0},
    {"K1000 wide", {2, 16, 20, 20, 1000, 1, 1, 1, 1, 0, 0, 1, 1, 1}, {{0, 0}}, 0},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static void resolve(const named_shape *ns, cf_conv_shape *sh, cf_epilogue *epi) {
  cf_status s = cf_shape_resolve("test", &ns->d, sh);
  cr_assert(s == CF_OK, "%s: %s", ns->name, cf_last_error());
  cf_epilogue_fold(ns->ops, ns->n_ops, epi);
}

/* Plans (shape, math) on caps; the test stops with the planner's message if it fails. */
static void plan_ok(const cf_conv_shape *sh, const cf_epilogue *epi, cf_math math,
                    const cf_device_caps *caps, cf_tile_plan *t) {
  cr_assert(cf_plan_tiles(sh, epi, math, caps, t) == CF_OK, "%s", cf_last_error());
}

static const struct {
  int bm, bn, bk, tm, tn;
} menu[CFK_FFMA_TILE_COUNT] = {
    {CFK_FFMA_T0_BM, CFK_FFMA_T0_BN, CFK_FFMA_T0_BK, CFK_FFMA_T0_TM, CFK_FFMA_T0_TN},
    {CFK_FFMA_T1_BM, CFK_FFMA_T1_BN, CFK_FFMA_T1_BK, CFK_FFMA_T1_TM, CFK_FFMA_T1_TN},
    {CFK_FFMA_T2_BM, CFK_FFMA_T2_BN, CFK_FFMA_T2_BK, CFK_FFMA_T2_TM, CFK_FFMA_T2_TN},
};

/* The invariants every plan must satisfy on every device. Generic ones hold for every kernel
 * variant; the FFMA tile menu and (when the tree has it) the tensor-core menu add their own. */
static void check_invariants(const char *dev, const char *shape, const cf_device_caps *caps,
                             const cf_conv_shape *sh, cf_math math, const cf_tile_plan *t) {
  const char *m = math == CF_MATH_TF32 ? "tf32" : "fp32";
  cr_expect(t->why[0] != '\0', "[%s | %s | %s] empty why", dev, shape, m);
  cr_expect(memchr(t->why, '\0', sizeof t->why) != NULL, "[%s | %s] why not terminated", dev,
            shape);
  cr_expect((int)t->variant >= 0 && t->variant < CF_KERNEL_COUNT &&
                (caps->kernel_variants & (1u << t->variant)),
            "[%s | %s | %s] variant %d not offered by the device (mask 0x%x)", dev, shape, m,
            (int)t->variant, caps->kernel_variants);
  cr_expect(t->threads >= 1 && t->threads <= caps->max_threads_per_block,
            "[%s | %s | %s] threads %d, device max %d", dev, shape, m, t->threads,
            caps->max_threads_per_block);
  cr_expect(t->shared_bytes <= caps->shared_mem_per_block_max,
            "[%s | %s | %s] shared %zu B > device max %zu B", dev, shape, m, t->shared_bytes,
            caps->shared_mem_per_block_max);
  cr_expect(t->math_effective == CF_MATH_FP32 || t->math_effective == CF_MATH_TF32,
            "[%s | %s | %s] math_effective %d", dev, shape, m, (int)t->math_effective);
  /* precision is never lowered behind the caller's back */
  if (math == CF_MATH_FP32)
    cr_expect(t->math_effective == CF_MATH_FP32, "[%s | %s] fp32 requested, plan computes tf32",
              dev, shape);
  if (t->math_effective == CF_MATH_TF32)
    cr_expect(caps->has_tf32_mma, "[%s | %s] tf32 plan on a device without TF32 MMA", dev, shape);
  if (t->variant == CF_KERNEL_REFERENCE) {
    cr_expect(t->threads == 1 && t->grid_m >= 1 && t->grid_n >= 1,
              "[%s | %s] reference plan: threads %d grid %lldx%lld", dev, shape, t->threads,
              (long long)t->grid_m, (long long)t->grid_n);
    return;
  }
  /* every GPU variant: a menu entry, positive tiles, a grid that covers the GEMM */
  cr_expect(t->menu_index >= 0, "[%s | %s | %s] menu_index %d", dev, shape, m, t->menu_index);
  cr_expect(t->block_m > 0 && t->block_n > 0 && t->block_k > 0,
            "[%s | %s | %s] non-positive block tile %dx%dx%d", dev, shape, m, t->block_m,
            t->block_n, t->block_k);
  cr_expect(t->stages >= 1, "[%s | %s | %s] stages %d", dev, shape, m, t->stages);
  if (t->block_m <= 0 || t->block_n <= 0)
    return;
  cr_expect(t->grid_m * t->block_m >= sh->gemm_m,
            "[%s | %s | %s] grid_m %lld x block_m %d does not cover gemm_m %lld", dev, shape, m,
            (long long)t->grid_m, t->block_m, (long long)sh->gemm_m);
  cr_expect(t->grid_n * t->block_n >= sh->gemm_n && (t->grid_n - 1) * t->block_n < sh->gemm_n,
            "[%s | %s | %s] grid_n %lld x block_n %d vs gemm_n %lld", dev, shape, m,
            (long long)t->grid_n, t->block_n, (long long)sh->gemm_n);

  if (t->variant == CF_KERNEL_FFMA_TILED) {
    cr_expect(t->menu_index < CFK_FFMA_TILE_COUNT, "[%s | %s | %s] FFMA menu_index %d not in 0..%d",
              dev, shape, m, t->menu_index, CFK_FFMA_TILE_COUNT - 1);
    if (t->menu_index >= 0 && t->menu_index < CFK_FFMA_TILE_COUNT) {
      int i = t->menu_index;
      cr_expect(t->block_m == menu[i].bm && t->block_n == menu[i].bn &&
                    t->block_k == menu[i].bk && t->thread_m == menu[i].tm &&
                    t->thread_n == menu[i].tn,
                "[%s | %s | %s] tile %dx%dx%d/%dx%d is not FFMA menu entry %d", dev, shape, m,
                t->block_m, t->block_n, t->block_k, t->thread_m, t->thread_n, i);
    }
    cr_expect(t->thread_m > 0 && t->thread_n > 0, "[%s | %s | %s] micro-tile %dx%d", dev, shape,
              m, t->thread_m, t->thread_n);
    if (t->thread_m > 0 && t->thread_n > 0) {
      cr_expect(t->block_m % t->thread_m == 0 && t->block_n % t->thread_n == 0,
                "[%s | %s | %s] micro-tile %dx%d does not divide block %dx%d", dev, shape, m,
                t->thread_m, t->thread_n, t->block_m, t->block_n);
      cr_expect(t->threads == (t->block_m / t->thread_m) * (t->block_n / t->thread_n),
                "[%s | %s | %s] threads %d != (%d/%d)*(%d/%d)", dev, shape, m, t->threads,
                t->block_m, t->thread_m, t->block_n, t->thread_n);
    }
    cr_expect(t->shared_bytes <= caps->shared_mem_per_block,
              "[%s | %s | %s] FFMA shared %zu B > the default per-block limit %zu B", dev, shape,
              m, t->shared_bytes, caps->shared_mem_per_block);
    /* FFMA tiles M flat: no empty block row */
    cr_expect((t->grid_m - 1) * t->block_m < sh->gemm_m,
              "[%s | %s | %s] grid_m %lld x block_m %d: a whole block row past gemm_m %lld", dev,
              shape, m, (long long)t->grid_m, t->block_m, (long long)sh->gemm_m);
    cr_expect(t->math_effective == CF_MATH_FP32, "[%s | %s | %s] FFMA computes tf32?", dev, shape,
              m);
    return;
  }
#ifdef CFK_MMA_TILE_COUNT
  /* the tensor-core row-tile kernel (present in trees whose constants.def has its menu) */
  if (t->variant == CF_KERNEL_MMA_TF32 || t->variant == CF_KERNEL_MMA_3XTF32) {
    static const struct {
      int bm, bn, wm, wn;
    } mma[CFK_MMA_TILE_COUNT] = {
        {CFK_MMA_T0_BM, CFK_MMA_T0_BN, CFK_MMA_T0_WM, CFK_MMA_T0_WN},
        {CFK_MMA_T1_BM, CFK_MMA_T1_BN, CFK_MMA_T1_WM, CFK_MMA_T1_WN},
        {CFK_MMA_T2_BM, CFK_MMA_T2_BN, CFK_MMA_T2_WM, CFK_MMA_T2_WN},
        {CFK_MMA_T3_BM, CFK_MMA_T3_BN, CFK_MMA_T3_WM, CFK_MMA_T3_WN},
    };
    _Static_assert(CFK_MMA_TILE_COUNT == 4, "update the MMA menu copy in test_planner.c");
    cr_expect(caps->has_tf32_mma, "[%s | %s | %s] tensor-core plan without TF32 MMA", dev, shape,
              m);
    const int streamed = t->wgmma && t->menu_index >= 0 && t->menu_index < CFK_WG_TILE_COUNT &&
                         cf_wg_menu[t->menu_index].streamed;
    if (t->wgmma) { /* the wgmma menu: sm_90a devices only; weights resident, or streamed by
                       the streamed entries (each its one math, patch by TMA, several K
                       chunks) */
      cr_expect(caps->has_wgmma && t->weights_resident == !streamed,
                "[%s | %s | %s] wgmma plan: device has_wgmma %d, weights resident %d on entry %d",
                dev, shape, m, caps->has_wgmma, t->weights_resident, t->menu_index);
      if (streamed)
        cr_expect(t->variant == (cf_wg_menu[t->menu_index].split ? CF_KERNEL_MMA_3XTF32
                                                                   : CF_KERNEL_MMA_TF32) &&
                      t->patch_tma_segment > 0 &&
                      t->chunk_channels < sh->c && !t->output_staged && !t->flat_tiles &&
                      sh->stride_w == 1,
                  "[%s | %s | %s] streamed wgmma plan: %s, TMA segment %d, chunk %d of %lld "
                  "channels, staged %d, flat %d, stride_w %lld",
                  dev, shape, m, cf_kernel_variant_name(t->variant), t->patch_tma_segment,
                  t->chunk_channels, (long long)sh->c, t->output_staged, t->flat_tiles,
                  (long long)sh->stride_w);
      cr_expect(t->menu_index < CFK_WG_TILE_COUNT, "[%s | %s | %s] WG menu_index %d", dev, shape,
                m, t->menu_index);
      if (t->menu_index >= 0 && t->menu_index < CFK_WG_TILE_COUNT) {
        const cf_mma_tile *w = &cf_wg_menu[t->menu_index];
        cr_expect(t->block_m == w->bm && t->block_n == w->bn && t->warp_m == 16 &&
                      t->warp_n == w->bn,
                  "[%s | %s | %s] tile %dx%d warps %dx%d (%s) is not WG menu entry %d", dev,
                  shape, m, t->block_m, t->block_n, t->warp_m, t->warp_n,
                  cf_kernel_variant_name(t->variant), t->menu_index);
      }
    } else {
      cr_expect(t->menu_index < CFK_MMA_TILE_COUNT, "[%s | %s | %s] MMA menu_index %d", dev,
                shape, m, t->menu_index);
    }
    if (!t->wgmma && t->menu_index >= 0 && t->menu_index < CFK_MMA_TILE_COUNT) {
      int i = t->menu_index;
      /* the menu's warps, or their tall form where the device asks for it (one TF32
       * product, weights streamed) */
      const int tall = caps->mma_tall_warps && t->variant == CF_KERNEL_MMA_TF32 &&
                       !t->weights_resident && t->warp_m == 2 * mma[i].wm;
      cr_expect(t->block_m == mma[i].bm && t->block_n == mma[i].bn &&
                    t->warp_m == (tall ? 2 : 1) * mma[i].wm && t->warp_n == mma[i].wn &&
                    t->block_m % t->warp_m == 0,
                "[%s | %s | %s] tile %dx%d warps %dx%d is not MMA menu entry %d (tall warps "
                "allowed: %d)", dev, shape, m, t->block_m, t->block_n, t->warp_m, t->warp_n, i,
                caps->mma_tall_warps);
    }
    const cf_mma_layout L = cf_plan_mma_layout(sh, t);
    cr_expect(L.bytes == (int64_t)t->shared_bytes, "[%s | %s | %s] layout %lld bytes, plan %zu",
              dev, shape, m, (long long)L.bytes, t->shared_bytes);
    /* unpadded (swizzled) streamed weights only where the device asks for them, on the
     * mma.sync kernel, and only where the padded layout would not fit */
    if (t->weights_swizzled) {
      cf_tile_plan padded = *t;
      padded.weights_swizzled = 0;
      cr_expect(caps->mma_weight_swizzle && !t->wgmma && !t->weights_resident &&
                    L.w_swizzled && L.w_pitch == L.kcp && L.kcp % 16 == 8 &&
                    cf_plan_mma_layout(sh, &padded).bytes >
                        (int64_t)caps->shared_mem_per_block_max,
                "[%s | %s | %s] weights swizzled (device asks %d, wgmma %d, resident %d, pitch "
                "%lld, K chunk %lld) where the padded layout fits",
                dev, shape, m, caps->mma_weight_swizzle, t->wgmma, t->weights_resident,
                (long long)L.w_pitch, (long long)L.kcp);
    }
    /* flat tiles only where the device has them, on the wgmma tile, for shapes both tensor maps
     * can address (one K chunk, whole input rows of <= 256 floats, planes of 4k pixels) */
    if (t->flat_tiles)
      cr_expect(caps->flat_tiles && caps->has_tma && t->wgmma && t->output_staged &&
                    t->patch_tma_segment == t->block_m && t->chunk_channels == sh->c &&
                    sh->stride_w == 1 && sh->pad_w == 0 && sh->w % 4 == 0 && sh->w <= 256 &&
                    (sh->p * sh->q) % 4 == 0 && L.flat_rows >= sh->r && L.flat_rows <= 256 &&
                    L.patch_pitch == sh->w && t->output_buffers == L.out_buffers &&
                    t->output_buffers >= 1 && t->output_buffers <= 2 &&
                    t->grid_m == sh->n * ((sh->p * sh->q + t->block_m - 1) / t->block_m),
                "[%s | %s | %s] flat tiles on flat_tiles %d, has_tma %d, wgmma %d, staged %d, "
                "chunk %d of %lld channels, stride_w %lld, pad_w %lld, width %lld, %lld pixels "
                "per plane, %lld box rows, grid_m %lld",
                dev, shape, m, caps->flat_tiles, caps->has_tma, t->wgmma, t->output_staged,
                t->chunk_channels, (long long)sh->c, (long long)sh->stride_w,
                (long long)sh->pad_w, (long long)sh->w, (long long)(sh->p * sh->q),
                (long long)L.flat_rows, (long long)t->grid_m);
    /* TMA only where the device has it, on the kernels that exist (the wgmma tile, T0; weights
     * resident), and where the shape allows one box per segment */
    else if (t->patch_tma_segment > 0)
      cr_expect(caps->has_tma && (t->wgmma || t->menu_index == 0) &&
                    (t->weights_resident || streamed) &&
                    sh->stride_w == 1 && sh->dil_h == 1 && sh->w % 4 == 0 &&
                    t->patch_tma_segment == cf_tma_seg_pixels(t->block_m, sh->s, 1, sh->dil_w) &&
                    L.patch_pitch <= 256,
                "[%s | %s | %s] TMA patch (segments of %d pixels) on has_tma %d, %s%d, stride_w "
                "%lld, dilation_h %lld, width %lld, box row %lld",
                dev, shape, m, t->patch_tma_segment, caps->has_tma, t->wgmma ? "WG" : "T",
                t->menu_index, (long long)sh->stride_w, (long long)sh->dil_h, (long long)sh->w,
                (long long)L.patch_pitch);
    if (t->warp_m > 0 && t->warp_n > 0)
      cr_expect(t->threads == 32 * (t->block_m / t->warp_m) * (t->block_n / t->warp_n),
                "[%s | %s | %s] threads %d != 32*(%d/%d)*(%d/%d)", dev, shape, m, t->threads,
                t->block_m, t->warp_m, t->block_n, t->warp_n);
    cr_expect(caps->mma_max_threads == 0 || t->threads <= caps->mma_max_threads,
              "[%s | %s | %s] %d threads > the device's tensor-core limit %d", dev, shape, m,
              t->threads, caps->mma_max_threads);
    if (t->variant == CF_KERNEL_MMA_3XTF32 && t->weights_resident && !t->wgmma)
      cr_expect(caps->mma_split_resident_max_threads == 0 ||
                    t->threads <= caps->mma_split_resident_max_threads,
                "[%s | %s | %s] 3xTF32 with resident weights on %d threads > the device's "
                "limit %d for it", dev, shape, m, t->threads,
                caps->mma_split_resident_max_threads);
    cr_expect(t->chunk_channels >= 1 && t->chunk_channels <= sh->c,
              "[%s | %s | %s] chunk_channels %d (in_channels %lld)", dev, shape, m,
              t->chunk_channels, (long long)sh->c);
    cr_expect((t->variant == CF_KERNEL_MMA_TF32) == (t->math_effective == CF_MATH_TF32),
              "[%s | %s | %s] variant %s computes %s", dev, shape, m,
              cf_kernel_variant_name(t->variant),
              t->math_effective == CF_MATH_TF32 ? "tf32" : "fp32");
    return;
  }
#endif
  cr_expect(0, "[%s | %s | %s] variant %d (%s): the test knows no invariants for it", dev, shape,
            m, (int)t->variant, cf_kernel_variant_name(t->variant));
}

Test(planner, invariants_on_every_fixture_device_and_shape) {
  named_caps devs[N_DEVICES];
  all_devices(devs);
  const cf_math maths[2] = {CF_MATH_FP32, CF_MATH_TF32};
  int plans = 0, per_variant[CF_KERNEL_COUNT] = {0};
  for (int d = 0; d < N_DEVICES; ++d)
    for (int i = 0; i < N_SHAPES; ++i)
      for (int m = 0; m < 2; ++m) {
        cf_conv_shape sh;
        cf_epilogue epi;
        resolve(&shapes[i], &sh, &epi);
        cf_device_caps before = devs[d].caps;
        cf_tile_plan t;
        memset(&t, 0x5a, sizeof t);
        cf_status s = cf_plan_tiles(&sh, &epi, maths[m], &devs[d].caps, &t);
        cr_expect(s == CF_OK, "[%s | %s] cf_plan_tiles: %s: %s", devs[d].name, shapes[i].name,
                  cf_status_string(s), cf_last_error());
        cr_expect(memcmp(&before, &devs[d].caps, sizeof before) == 0,
                  "[%s] cf_plan_tiles modified the caps", devs[d].name);
        if (s == CF_OK) {
          check_invariants(devs[d].name, shapes[i].name, &devs[d].caps, &sh, maths[m], &t);
          if ((int)t.variant >= 0 && t.variant < CF_KERNEL_COUNT)
            per_variant[t.variant]++;
        }
        /* a pure function: the same inputs give the same plan */
        cf_tile_plan t2;
        memset(&t2, 0x33, sizeof t2);
        cf_plan_tiles(&sh, &epi, maths[m], &devs[d].caps, &t2);
        cr_expect(t.variant == t2.variant && t.menu_index == t2.menu_index &&
                      t.threads == t2.threads && t.grid_m == t2.grid_m && t.grid_n == t2.grid_n &&
                      t.shared_bytes == t2.shared_bytes && strcmp(t.why, t2.why) == 0,
                  "[%s | %s] two calls gave different plans", devs[d].name, shapes[i].name);
        plans++;
      }
  cr_log_info("%d plans checked", plans);
  for (int v = 0; v < CF_KERNEL_COUNT; ++v)
    cr_log_info("  %d plans use kernel %s", per_variant[v],
                cf_kernel_variant_name((cf_kernel_variant)v));
}

/* NVIDIA's OpenCL gives a work-group 48 KB of local memory: the product workloads plan the
 * tensor-core kernel there (a tile whose layout fits, <= 128 threads). Without a register cap
 * (the probe could not prove the rebuild from PTX), 3xTF32 with streamed weights (mish-mish
 * fp32) measured slower than FFMA on the H200 (28.1 vs 25.0 ms) and goes to FFMA saying so;
 * with it, it won (20.9 vs 25.0; 15.4 with every fetch by cp.async) and stays on tensor
 * cores. */
Test(planner, opencl_48kb_tensor_cores_plan_mma_for_both_workloads) {
  const cf_math maths[2] = {CF_MATH_FP32, CF_MATH_TF32};
  for (int capped = 0; capped < 2; ++capped) {
    cf_device_caps caps = caps_h200_opencl();
    caps.mma_registers_capped = capped;
    if (!capped) { /* as the backend reports it without the cap */
      caps.mma_max_threads = 128;
      caps.mma_tall_warps = 0;
    }
    for (int i = 0; i < 2; ++i)
      for (int m = 0; m < 2; ++m) {
        cf_conv_shape sh;
        cf_epilogue epi;
        resolve(&shapes[i], &sh, &epi);
        cf_tile_plan t;
        plan_ok(&sh, &epi, maths[m], &caps, &t);
        const char *mname = maths[m] == CF_MATH_TF32 ? "tf32" : "fp32";
        cf_kernel_variant want =
            maths[m] == CF_MATH_TF32 ? CF_KERNEL_MMA_TF32 : CF_KERNEL_MMA_3XTF32;
        const int to_ffma = !capped && i == 1 && maths[m] == CF_MATH_FP32; /* mish-mish */
        if (to_ffma)
          cr_expect(t.variant == CF_KERNEL_FFMA_TILED && strstr(t.why, "slower than FFMA"),
                    "[%s | %s | uncapped] want FFMA for 3xTF32 with streamed weights: %s",
                    shapes[i].name, mname, t.why);
        else {
          /* capped: 256-wide groups (T1) win there except for 3xTF32 with resident weights
           * (sub-sub-mish fp32), which keeps 128, and one TF32 product with streamed weights
           * (mish-mish tf32), which runs T0 on eight 64 x 32 warps with its weights unpadded
           * (swizzled): the padded ones do not fit 48 KB beside T0's patch at 4-channel
           * chunks (bench/NOTES.md v45, v46, v47) */
          const int tall = capped && maths[m] == CF_MATH_TF32 && !t.weights_resident;
          const int want_threads =
              !capped || (maths[m] == CF_MATH_FP32 && t.weights_resident) ? 128 : 256;
          const int want_bm = !capped ? 64 : tall ? 256 : want_threads == 256 ? 128 : 64;
          cr_expect(t.variant == want && t.shared_bytes <= 48 * KB && t.threads == want_threads &&
                        t.warp_m == (tall ? 64 : 32) && t.block_m == want_bm &&
                        t.weights_swizzled == tall && (!tall || t.chunk_channels == 4),
                    "[%s | %s | capped %d] %s with %zu B of local memory, %d threads, tile "
                    "%dx%d, warp %dx%d, weights swizzled %d, %d channels per chunk (want %s "
                    "in <= 48 KB, %d threads, BM %d, warp %dx32, swizzled %d): %s",
                    shapes[i].name, mname, capped, cf_kernel_variant_name(t.variant),
                    t.shared_bytes, t.threads, t.block_m, t.block_n, t.warp_m, t.warp_n,
                    t.weights_swizzled, t.chunk_channels, cf_kernel_variant_name(want),
                    want_threads, want_bm, tall ? 64 : 32, tall, t.why);
        }
        if (t.variant != CF_KERNEL_FFMA_TILED) /* the plan names how the patch arrives */
          cr_expect(strstr(t.why, "patch by cp.async") != NULL, "[%s | %s] resident %d: %s",
                    shapes[i].name, mname, t.weights_resident, t.why);
        cr_log_info("[%s | %s | capped %d] %zu B: %s", shapes[i].name, mname, capped,
                    t.shared_bytes, t.why);
      }
  }
}

/* Staged output (whole-sector stores) where the backend supports it, K is one chunk and it
 * fits: on the H200 (mma.sync kernels) sub-sub-mish stages, mish-mish (8 chunks) does not;
 * the layout's bytes count the staging rows (>= BM + 8 floats per channel, 16-byte rows);
 * OpenCL never stages. */
Test(planner, staged_output_where_supported_and_it_fits) {
  const cf_math maths[2] = {CF_MATH_FP32, CF_MATH_TF32};
  for (int i = 0; i < 2; ++i)
    for (int m = 0; m < 2; ++m) {
      cf_conv_shape sh;
      cf_epilogue epi;
      resolve(&shapes[i], &sh, &epi);
      cf_device_caps caps = caps_h200_all();
      caps.has_wgmma = 0;
      cf_tile_plan t;
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      const int want = i == 0; /* sub-sub-mish: C = 8, one chunk */
      cr_expect(t.variant != CF_KERNEL_FFMA_TILED && t.output_staged == want &&
                    (strstr(t.why, "output staged") != NULL) == want,
                "[%s] H200 plan staged %d, want %d: %s", shapes[i].name, t.output_staged, want,
                t.why);
      const cf_mma_layout L = cf_plan_mma_layout(&sh, &t);
      cr_expect(L.bytes == (int64_t)t.shared_bytes &&
                    (!want || (L.out_pitch >= t.block_m + 8 && L.out_pitch % 16 == 4)) &&
                    L.out_floats == t.block_n * L.out_pitch,
                "[%s] staged layout: %lld bytes (plan %zu), pitch %lld", shapes[i].name,
                (long long)L.bytes, t.shared_bytes, (long long)L.out_pitch);
      caps = caps_h200_opencl();
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      cr_expect(!t.output_staged, "[%s] OpenCL plan staged: %s", shapes[i].name, t.why);
    }
  /* the staging is dropped before the resident weights when both do not fit */
  const cf_mma_tile *t0 = &cf_mma_menu[0];
  cf_mma_layout both = cf_mma_layout_make(t0->bm, t0->bn, 64, 8, 3, 3, 1, 1, 1, 1);
  cf_mma_layout res = cf_mma_layout_make(t0->bm, t0->bn, 64, 8, 3, 3, 1, 1, 1, 0);
  cr_expect(both.bytes == res.bytes + both.out_floats * 4 && res.out_floats == 0 &&
                res.out_pitch == 0);
}

/* Staged weight rows (common/mma_layout.h): the shortest pitch >= the row that keeps a B
 * fragment load conflict-free (lane (g, t) reads row g, column t: 32 distinct banks), for every
 * row length; mish-mish's OpenCL chunk row of 40 takes 44 (the earlier == 4 mod 32 rule: 68),
 * and T2's mish-mish layout then fits 48 KB with 4-channel chunks, as planned on OpenCL. */
Test(planner, weight_rows_pitch_is_short_and_conflict_free) {
  for (int64_t n = 1; n <= 600; ++n) {
    const int64_t p = cf_mma_weight_pitch(n);
    cr_assert(p >= n && p < n + 8 && p % 8 == 4, "row %lld: pitch %lld", (long long)n,
              (long long)p);
    unsigned banks = 0;
    for (int g = 0; g < 8; ++g)
      for (int t = 0; t < 4; ++t)
        banks |= 1u << ((g * p + t) % 32);
    cr_assert(banks == 0xffffffffu, "row %lld: pitch %lld leaves banks %08x unused",
              (long long)n, (long long)p, ~banks);
  }
  cr_expect(cf_mma_weight_pitch(40) == 44);
  const cf_mma_tile *t2 = &cf_mma_menu[2];
  const cf_mma_layout L = cf_mma_layout_make(t2->bm, t2->bn, 64, 4, 3, 3, 1, 1, 0, 0);
  cr_expect(L.w_pitch == 44 && L.bytes <= (int64_t)(48 * KB),
            "T2, 4-channel chunks: pitch %lld, %lld B", (long long)L.w_pitch,
            (long long)L.bytes);
}

/* A backend's reason for having no tensor cores is quoted in the FFMA plan's reasoning. */
Test(planner, tensor_core_note_is_quoted) {
  cf_device_caps caps = caps_h200_opencl();
  caps.has_tf32_mma = 0;
  caps.kernel_variants = FFMA;
  snprintf(caps.tensor_core_note, sizeof caps.tensor_core_note, "probe said no (test)");
  cf_conv_shape sh;
  cf_epilogue epi;
  resolve(&shapes[0], &sh, &epi);
  cf_tile_plan t;
  plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
  cr_expect(t.variant == CF_KERNEL_FFMA_TILED && strstr(t.why, "probe said no (test)") != NULL &&
                strstr(t.why, "tf32 requested, runs fp32") != NULL,
            "why: \"%s\"", t.why);
}

/* mma_split_resident_max_threads is a measured preference: the planner keeps 3xTF32 with
 * resident weights within it, and a forced tile (CONVFUSE_TILE, for tuning) passes it. */
Test(planner, forced_tile_passes_the_split_resident_width_preference) {
  cf_device_caps caps = caps_h200_opencl();
  cf_conv_shape sh;
  cf_epilogue epi;
  resolve(&shapes[0], &sh, &epi);
  cf_tile_plan t;
  plan_ok(&sh, &epi, CF_MATH_FP32, &caps, &t);
  cr_expect(t.variant == CF_KERNEL_MMA_3XTF32 && t.weights_resident &&
                t.threads <= caps.mma_split_resident_max_threads,
            "planned: %s T%d, %d threads, resident %d", cf_kernel_variant_name(t.variant),
            t.menu_index, t.threads, t.weights_resident);
  caps.force_tile = 2; /* T1: 256 work-items */
  plan_ok(&sh, &epi, CF_MATH_FP32, &caps, &t);
  cr_expect(t.variant == CF_KERNEL_MMA_3XTF32 && t.weights_resident && t.menu_index == 1 &&
                t.threads == 256,
            "forced T1: %s T%d, %d threads, resident %d", cf_kernel_variant_name(t.variant),
            t.menu_index, t.threads, t.weights_resident);
}

Test(planner, workloads_fill_big_gpus) {
  /* both workloads have millions of output pixels: every SM gets at least two blocks */
  named_caps devs[3] = {{"H200", caps_h200()}, {"small GPU", caps_small_gpu()},
                        {"PoCL", caps_pocl2()}};
  for (int d = 0; d < 3; ++d)
    for (int i = 0; i < 2; ++i) {
      cf_conv_shape sh;
      cf_epilogue epi;
      resolve(&shapes[i], &sh, &epi);
      cf_tile_plan t;
      cr_assert(cf_plan_tiles(&sh, &epi, CF_MATH_FP32, &devs[d].caps, &t) == CF_OK, "%s",
                cf_last_error());
      cr_expect(t.grid_m * t.grid_n >= 2 * devs[d].caps.compute_units,
                "[%s | %s] %lld blocks for %d compute units", devs[d].name, shapes[i].name,
                (long long)(t.grid_m * t.grid_n), devs[d].caps.compute_units);
      /* 64 and 128 output channels: a tile that wastes N-columns is a bad choice */
      cr_expect(sh.gemm_n % t.block_n == 0, "[%s | %s] block_n %d wastes columns of N = %lld",
                devs[d].name, shapes[i].name, t.block_n, (long long)sh.gemm_n);
    }
}

Test(planner, few_out_channels_pick_a_narrow_tile) {
  named_caps devs[4] = {{"H200", caps_h200()}, {"PoCL", caps_pocl2()},
                        {"small GPU", caps_small_gpu()}, {"tiny", caps_tiny()}};
  const cf_conv2d_desc k3[] = {
      {1, 3, 13, 17, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1},
      {128, 8, 256, 256, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1}, /* big M, still K = 3 */
      {1, 1, 13, 17, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1},
  };
  for (int d = 0; d < 4; ++d)
    for (size_t i = 0; i < sizeof k3 / sizeof k3[0]; ++i) {
      cf_conv_shape sh;
      cr_assert(cf_shape_resolve("test", &k3[i], &sh) == CF_OK);
      cf_epilogue epi;
      cf_epilogue_fold(NULL, 0, &epi);
      cf_tile_plan t;
      cr_assert(cf_plan_tiles(&sh, &epi, CF_MATH_FP32, &devs[d].caps, &t) == CF_OK, "%s",
                cf_last_error());
      cr_expect(t.block_n <= 16, "[%s] K=%lld out channels: block_n %d (want <= 16): %s",
                devs[d].name, (long long)sh.k, t.block_n, t.why);
    }
}

Test(planner, device_too_small_is_unsupported) {
  cf_conv_shape sh;
  cf_epilogue epi;
  resolve(&shapes[0], &sh, &epi);
  cf_device_caps few_threads = caps_tiny();
  few_threads.max_threads_per_block = 64; /* every menu tile needs >= 128 */
  cf_device_caps little_smem = caps_tiny();
  little_smem.shared_mem_per_block = little_smem.shared_mem_per_block_max = 1024;
  cf_device_caps *bad[2] = {&few_threads, &little_smem};
  const char *names[2] = {"64 threads", "1 KB shared"};
  for (int i = 0; i < 2; ++i) {
    cf_tile_plan t;
    cf_status s = cf_plan_tiles(&sh, &epi, CF_MATH_FP32, bad[i], &t);
    cr_expect(s == CF_ERR_UNSUPPORTED, "[%s] status %s, want CF_ERR_UNSUPPORTED", names[i],
              cf_status_string(s));
    const char *msg = cf_last_error();
    cr_expect(strlen(msg) > 20, "[%s] message too short: \"%s\"", names[i], msg);
    cr_expect(i == 0 ? strstr(msg, "64") != NULL : strstr(msg, "1024") != NULL,
              "[%s] message does not quote the device's limit: \"%s\"", names[i], msg);
  }
  /* a backend offering no variant at all */
  cf_device_caps none = caps_h200();
  none.kernel_variants = 0;
  cf_tile_plan t;
  cf_status s = cf_plan_tiles(&sh, &epi, CF_MATH_FP32, &none, &t);
  cr_expect(s != CF_OK, "no kernel variants: planner returned CF_OK");
  cr_expect(cf_last_error()[0] != '\0');
}

Test(planner, unknown_math_is_an_error) {
  cf_conv_shape sh;
  cf_epilogue epi;
  resolve(&shapes[2], &sh, &epi);
  cf_device_caps caps = caps_h200();
  const int bad[3] = {2, -1, 1000};
  for (int i = 0; i < 3; ++i) {
    cf_tile_plan t;
    cf_status s = cf_plan_tiles(&sh, &epi, (cf_math)bad[i], &caps, &t);
    cr_expect(s == CF_ERR_INVALID_ARGUMENT, "math %d: %s", bad[i], cf_status_string(s));
    char num[16];
    snprintf(num, sizeof num, "%d", bad[i]);
    cr_expect(strstr(cf_last_error(), num) != NULL, "math %d: message \"%s\"", bad[i],
              cf_last_error());
  }
}

/* The caps real contexts report, and the plans built on them, satisfy the same invariants. */
Test(planner, live_backends_caps_and_plans) {
  const cf_backend bs[3] = {CF_BACKEND_CPU, CF_BACKEND_OPENCL, CF_BACKEND_CUDA};
  for (int b = 0; b < 3; ++b) {
    if (!cf_backend_available(bs[b]))
      continue;
    cf_context *ctx = NULL;
    cr_assert(cf_context_create(bs[b], &ctx) == CF_OK, "%s", cf_last_error());
    const cf_device_caps *caps = cf_context_caps(ctx);
    const char *bn = cf_backend_name(bs[b]);
    cr_assert(caps != NULL);
    cr_expect(caps->compute_units >= 1 && caps->max_threads_per_block >= 1 &&
                  caps->simd_width >= 1 && caps->kernel_variants != 0 &&
                  caps->shared_mem_per_block_max >= caps->shared_mem_per_block &&
                  caps->global_mem_bytes > 0 && caps->max_alloc_bytes > 0,
              "[%s] implausible caps: cu %d threads %d simd %d variants 0x%x smem %zu/%zu", bn,
              caps->compute_units, caps->max_threads_per_block, caps->simd_width,
              caps->kernel_variants, caps->shared_mem_per_block, caps->shared_mem_per_block_max);
    if (caps->kernel_variants & FFMA)
      cr_expect(caps->shared_mem_per_block > 0, "[%s] FFMA offered with 0 bytes of local memory",
                bn);
    /* Tensor cores: both MMA variants with has_tf32_mma and no note, or neither (OpenCL:
     * with the reason the probe or the environment gave). */
    const unsigned mma_bits = (1u << CF_KERNEL_MMA_TF32) | (1u << CF_KERNEL_MMA_3XTF32);
    if (bs[b] != CF_BACKEND_CPU)
      cr_expect(caps->has_tf32_mma ? (caps->kernel_variants & mma_bits) == mma_bits &&
                                         caps->tensor_core_note[0] == '\0'
                                   : bs[b] == CF_BACKEND_CUDA ||
                                         ((caps->kernel_variants & mma_bits) == 0 &&
                                          caps->tensor_core_note[0] != '\0'),
                "[%s] tensor cores: has_tf32_mma %d, variants 0x%x, note \"%s\"", bn,
                caps->has_tf32_mma, caps->kernel_variants, caps->tensor_core_note);
    const named_shape *ns = &shapes[2];
    cf_plan *plan = NULL;
    cf_status s = cf_plan_create(ctx, &ns->d, ns->ops, ns->n_ops, CF_MATH_FP32, &plan);
    cr_expect(s == CF_OK, "[%s] plan: %s", bn, cf_last_error());
    if (s == CF_OK) {
      cf_conv_shape sh;
      cf_epilogue epi;
      resolve(ns, &sh, &epi);
      const cf_tile_plan *t = cf_plan_tiles_of(plan);
      cr_assert(t != NULL);
      check_invariants(bn, ns->name, caps, &sh, CF_MATH_FP32, t);
      const char *desc = cf_plan_describe(plan);
      cr_expect(strstr(desc, cf_kernel_variant_name(t->variant)) != NULL,
                "[%s] describe \"%s\" lacks the kernel name", bn, desc);
      cr_expect(strlen(desc) > 20, "[%s] describe \"%s\" too short", bn, desc);
      cf_plan_destroy(plan);
    }
    cf_context_destroy(ctx);
  }
}

/* ---- epilogue folding ---- */

static void expect_fold(const char *what, const cf_op *ops, int n, float shift,
                        const cf_op *rest, int n_rest) {
  cf_epilogue e;
  memset(&e, 0x77, sizeof e);
  cf_epilogue_fold(ops, n, &e);
  cr_expect(e.bias_shift == shift, "%s: shift %.9g, want %.9g", what, (double)e.bias_shift,
            (double)shift);
  cr_expect(e.n_ops == n_rest, "%s: %d ops left, want %d", what, e.n_ops, n_rest);
  for (int i = 0; i < n_rest && i < e.n_ops; ++i)
    cr_expect(e.ops[i].kind == rest[i].kind && e.ops[i].value == rest[i].value,
              "%s: op %d is %s(%g), want %s(%g)", what, i, cf_op_name(e.ops[i].kind),
              (double)e.ops[i].value, cf_op_name(rest[i].kind), (double)rest[i].value);
}

Test(epilogue, fold_sub_sub_mish) {
  const cf_op ops[3] = {{CF_OP_SUB, 0.5f}, {CF_OP_SUB, 0.2f}, {CF_OP_MISH, 0}};
  const cf_op rest[1] = {{CF_OP_MISH, 0}};
  /* summed in double, rounded once: -(0.5 + (double)0.2f) rounds to -0.7f */
  expect_fold("sub 0.5, sub 0.2, mish", ops, 3, -0.7f, rest, 1);
  cf_epilogue e;
  cf_epilogue_fold(ops, 3, &e);
  char buf[160];
  cf_epilogue_describe(&e, buf, sizeof buf);
  cr_expect(strstr(buf, "-0.7") != NULL && strstr(buf, "mish") != NULL,
            "describe: \"%s\", want shift=-0.7 and mish", buf);
}

Test(epilogue, huge_values_are_not_folded) {
  /* x + 1e20 - 1e20 is 0 in fp32 (and in the double reference), not x: keep them in order */
  const cf_op ops[3] = {{CF_OP_SUB, 0.5f}, {CF_OP_ADD, 1e20f}, {CF_OP_SUB, 1e20f}};
  cf_epilogue e;
  cf_epilogue_fold(ops, 3, &e);
  cr_expect(e.bias_shift == -0.5f, "shift %g, expected only the small SUB folded",
            (double)e.bias_shift);
  cr_expect(e.n_ops == 2 && e.ops[0].kind == CF_OP_ADD && e.ops[1].kind == CF_OP_SUB,
            "the huge ADD/SUB stay in the chain (%d ops left)", e.n_ops);
  const cf_op big[2] = {{CF_OP_ADD, 3e38f}, {CF_OP_ADD, 3e38f}};
  cf_epilogue_fold(big, 2, &e);
  cr_expect(e.n_ops == 2 && e.bias_shift == 0.0f, "a shift that would overflow is not folded");
}

Test(epilogue, add_after_mish_is_not_folded) {
  const cf_op ops[2] = {{CF_OP_MISH, 0}, {CF_OP_ADD, 1.0f}};
  expect_fold("mish, add 1", ops, 2, 0.0f, ops, 2);
  const cf_op ops2[4] = {{CF_OP_ADD, 0.25f}, {CF_OP_MISH, 0}, {CF_OP_SUB, 1.0f}, {CF_OP_ADD, 2.0f}};
  expect_fold("add 0.25, mish, sub 1, add 2", ops2, 4, 0.25f, ops2 + 1, 3);
  /* a MUL stops the folding too: (x + 0.1) * 2 != x * 2 + 0.1 */
  const cf_op ops3[3] = {{CF_OP_ADD, 0.1f}, {CF_OP_MUL, 2.0f}, {CF_OP_RELU, 0}};
  expect_fold("add 0.1, mul 2, relu", ops3, 3, 0.1f, ops3 + 1, 2);
  const cf_op ops4[3] = {{CF_OP_MUL, 2.0f}, {CF_OP_ADD, 0.1f}, {CF_OP_RELU, 0}};
  expect_fold("mul 2, add 0.1, relu", ops4, 3, 0.0f, ops4, 3);
}

Test(epilogue, empty_chain) {
  expect_fold("empty", NULL, 0, 0.0f, NULL, 0);
  cf_epilogue e;
  cf_epilogue_fold(NULL, 0, &e);
  char buf[32];
  cf_epilogue_describe(&e, buf, sizeof buf);
  cr_expect_str_eq(buf, "none");
}

Test(epilogue, all_add_chain) {
  const cf_op ops[3] = {{CF_OP_ADD, 1.0f}, {CF_OP_ADD, 2.0f}, {CF_OP_SUB, 0.5f}};
  expect_fold("add 1, add 2, sub 0.5", ops, 3, 2.5f, NULL, 0);
  cf_op eight[CF_MAX_OPS];
  for (int i = 0; i < CF_MAX_OPS; ++i)
    eight[i] = (cf_op){i % 2 ? CF_OP_SUB : CF_OP_ADD, (float)(i + 1)};
  /* 1 - 2 + 3 - 4 + 5 - 6 + 7 - 8 = -4 */
  expect_fold("8 alternating add/sub", eight, CF_MAX_OPS, -4.0f, NULL, 0);
  /* summed in double, rounded once: 2^24 + 1 + 1 = 16777218 (a float-by-float sum gives
   * 16777216) */
  const cf_op big[3] = {{CF_OP_ADD, 16777216.0f}, {CF_OP_ADD, 1.0f}, {CF_OP_ADD, 1.0f}};
  expect_fold("2^24 + 1 + 1", big, 3, 16777218.0f, NULL, 0);
  /* shifts that cancel leave no shift */
  const cf_op cancel[3] = {{CF_OP_ADD, 0.3f}, {CF_OP_SUB, 0.3f}, {CF_OP_TANH, 0}};
  expect_fold("add 0.3, sub 0.3, tanh", cancel, 3, 0.0f, cancel + 2, 1);
}

Test(epilogue, op_names) {
  const char *want[8] = {"add", "sub", "mul", "relu", "tanh", "sigmoid", "softplus", "mish"};
  for (int k = 0; k < 8; ++k)
    cr_expect_str_eq(cf_op_name((cf_op_kind)k), want[k]);
  cr_expect_str_eq(cf_op_name((cf_op_kind)8), "?");
  cr_expect_str_eq(cf_op_name((cf_op_kind)-1), "?");
}

/* The float formulas (what the CPU, CUDA and OpenCL kernels compute) against the double
 * semantics, point by point, including the mish split and cut-offs and the softplus threshold. */
Test(epilogue, float_formulas_match_double_semantics) {
  float xs[2400];
  int n = 0;
  for (int i = -1200; i <= 1200 && n < 2300; i += 1)
    xs[n++] = (float)i * 0.1f + 0.0137f;
  const float special[] = {0.0f,   -0.0f,  -0.6f, nextafterf(-0.6f, 0), nextafterf(-0.6f, -1),
                           20.0f,  nextafterf(20.0f, 0), nextafterf(20.0f, 100), -100.0f,
                           -99.5f, -100.5f, 1e-20f, -1e-20f, 88.0f, -88.0f, 1e30f, -1e30f};
  for (size_t i = 0; i < sizeof special / sizeof special[0]; ++i)
    xs[n++] = special[i];
  int bad = 0;
  for (int k = CF_OP_ADD; k <= CF_OP_MISH; ++k) {
    cf_op op = {(cf_op_kind)k, 0.75f};
    for (int i = 0; i < n; ++i) {
      double ref = cf_op_apply_f64(&op, (double)xs[i]);
      float got = cf_op_apply_f32(&op, xs[i]);
      double tol = 1e-6 * fabs(ref) + 1e-7;
      int ok = isfinite(ref) ? isfinite(got) && fabs((double)got - ref) <= tol
                             : (isnan(ref) ? isnan(got) : got == ref);
      if (!ok && bad++ < 10)
        cr_expect(0, "%s(%.9g): float %.9g, double %.17g", cf_op_name(op.kind), (double)xs[i],
                  (double)got, ref);
    }
    /* non-finite inputs */
    const float nf[3] = {INFINITY, -INFINITY, NAN};
    for (int i = 0; i < 3; ++i) {
      double ref = cf_op_apply_f64(&op, (double)nf[i]);
      float got = cf_op_apply_f32(&op, nf[i]);
      int ok = isnan(ref) ? isnan(got) : (double)got == ref;
      cr_expect(ok, "%s(%g): float %g, double %g", cf_op_name(op.kind), (double)nf[i],
                (double)got, ref);
    }
  }
  cr_expect(bad == 0, "%d float/double mismatches", bad);
}

/* The kernels split tile and row indices with cf_fastdiv (common/fastdiv.h): exact for every
 * 0 <= n < 2^31 and divisor 1 <= d < 2^31. Every small divisor, powers of two and their
 * neighbours, and a spread of large ones, each against n near 0, near multiples of d and
 * near 2^31. */
static void expect_fastdiv_exact(int32_t d) {
  const cf_fastdiv f = cf_fastdiv_make(d);
  const int64_t top = INT32_MAX;
  const int64_t ns[] = {0, 1, (int64_t)d - 1, d, (int64_t)d + 1, 2 * (int64_t)d - 1, 2 * (int64_t)d,
                        (top / d) * d - 1, (top / d) * d, top - 1, top, 12345678, 1 << 30};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; ++i) {
    const int64_t n = ns[i];
    if (n < 0 || n > top)
      continue;
    const int32_t got = cf_fastdiv_apply((int32_t)n, f);
    const long long want = n / d, num = n;
    cr_assert(got == (int32_t)want, "cf_fastdiv: %lld / %d gave %d (want %lld; mul %u shift %u)",
              num, d, got, want, f.mul, f.shift);
  }
}

Test(planner, fastdiv_is_exact) {
  for (int32_t d = 1; d <= 4096; ++d)
    expect_fastdiv_exact(d);
  for (int k = 1; k < 31; ++k)
    for (int o = -1; o <= 1; ++o)
      expect_fastdiv_exact((int32_t)((1LL << k) + o));
  expect_fastdiv_exact(INT32_MAX);
  uint32_t x = 2463534242u; /* xorshift32: a fixed spread of large divisors */
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    expect_fastdiv_exact((int32_t)(x % (uint32_t)INT32_MAX) + 1);
  }
}

/* wgmma (sm_90a, CUDA) where the device has it and the layout fits: on the H200 both
 * workloads' TF32 plans and sub-sub-mish's 3xTF32 plan run on the wgmma tile; mish-mish's
 * 3xTF32 needs the weights twice (big and small halves, 295 KB) and stays on mma.sync.
 * Without has_wgmma (another GPU, OpenCL) never; CONVFUSE_TILE numbers the wgmma entries
 * after the mma.sync ones. */
Test(planner, wgmma_where_the_device_has_it_and_it_fits) {
  const cf_math maths[2] = {CF_MATH_FP32, CF_MATH_TF32};
  for (int i = 0; i < 2; ++i)
    for (int m = 0; m < 2; ++m) {
      cf_conv_shape sh;
      cf_epilogue epi;
      resolve(&shapes[i], &sh, &epi);
      cf_device_caps caps = caps_h200_all();
      cf_tile_plan t;
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      cr_expect(t.wgmma && strstr(t.why, "wgmma") != NULL, "[%s | %s] wgmma %d: %s",
                shapes[i].name, m ? "tf32" : "fp32", t.wgmma, t.why);
      /* mish-mish (several K chunks) streams its weights: TF32 on the 256 x 128 entry, 3xTF32
       * on 256 x 64; sub-sub-mish keeps them resident on 256 x 64 */
      const int want_streamed = i == 1;
      const int want_entry = !want_streamed ? 0 : maths[m] == CF_MATH_TF32 ? 1 : 2;
      if (t.wgmma)
        cr_expect(t.menu_index == want_entry && t.weights_resident == !want_streamed &&
                      t.output_staged == (i == 0),
                  "[%s] wgmma plan: entry %d, resident %d, staged %d: %s", shapes[i].name,
                  t.menu_index, t.weights_resident, t.output_staged, t.why);
      caps.has_wgmma = 0;
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      cr_expect(!t.wgmma, "[%s] wgmma plan without has_wgmma: %s", shapes[i].name, t.why);
      caps = caps_h200_opencl();
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      cr_expect(!t.wgmma, "[%s] OpenCL wgmma plan: %s", shapes[i].name, t.why);
    }
  cf_conv_shape sh;
  cf_epilogue epi;
  resolve(&shapes[0], &sh, &epi);
  cf_device_caps caps = caps_h200_all();
  cf_tile_plan t;
  caps.force_tile = 1;
  plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
  cr_expect(!t.wgmma && t.menu_index == 0, "CONVFUSE_TILE=1: wgmma %d entry %d", t.wgmma,
            t.menu_index);
  caps.force_tile = CFK_MMA_TILE_COUNT + 1;
  plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
  cr_expect(t.wgmma && t.menu_index == 0, "CONVFUSE_TILE=%d: wgmma %d entry %d",
            CFK_MMA_TILE_COUNT + 1, t.wgmma, t.menu_index);
  resolve(&shapes[1], &sh, &epi); /* the streamed entry needs several K chunks */
  caps.force_tile = CFK_MMA_TILE_COUNT + 2;
  plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
  cr_expect(t.wgmma && t.menu_index == 1 && !t.weights_resident,
            "CONVFUSE_TILE=%d: wgmma %d entry %d resident %d", CFK_MMA_TILE_COUNT + 2, t.wgmma,
            t.menu_index, t.weights_resident);
}

/* fp16 products (caps wg_f16: 1 one product for tf32; 2, CUDA's default, pairs for fp32 too)
 * change only the streamed tiles: mish-mish tf32 on WG1 with one fp16 product per K value, fp32
 * (wg_f16 2) on WG2 with fp16 pairs, both with K padded to 16 (72 -> 80) and each stage's
 * weights in fp16 (128 x 80 halves, 64 x 80 x 2: less than TF32's 128 x 72 floats and 3xTF32's
 * 2 x 64 x 72), the plan saying so, and its TF32 / 3xTF32 rerun (the range guard's) sized to
 * fit; sub-sub-mish (resident weights) is planned as without them. */
Test(planner, fp16_only_on_the_streamed_tiles) {
  cf_device_caps caps = caps_h200_all(), f16 = caps_h200_all();
  caps.wg_f16 = 0;
  for (int run = 0; run < 8; ++run) {
    const int level = 1 + run / 4, i = run / 2 % 2, m = run % 2;
    f16.wg_f16 = level;
    const cf_math math = m ? CF_MATH_TF32 : CF_MATH_FP32;
    const char *mname = m ? "tf32" : "fp32";
    cf_conv_shape sh;
    cf_epilogue epi;
    resolve(&shapes[i], &sh, &epi);
    cf_tile_plan base, t;
    plan_ok(&sh, &epi, math, &caps, &base);
    plan_ok(&sh, &epi, math, &f16, &t);
    const int want = i == 1 && (m || level == 2);
    const char *says = m ? "one fp16 product" : "fp16 pairs";
    cr_expect(t.f16 == want && (strstr(t.why, says) != NULL) == want,
              "[%s | %s] fp16 %d, want %d: %s", shapes[i].name, mname, t.f16, want, t.why);
    if (!want) {
      cr_expect(t.wgmma == base.wgmma && t.menu_index == base.menu_index &&
                    t.block_k == base.block_k && t.shared_bytes == base.shared_bytes,
                "[%s | %s] fp16 changed a plan it does not apply to: %s / %s", shapes[i].name,
                mname, base.why, t.why);
      continue;
    }
    const cf_mma_layout L = cf_plan_mma_layout(&sh, &t);
    const int64_t weights = m ? 128 * 80 / 2 : 64 * 80, tf32_weights = m ? 128 * 72 : 2 * 64 * 72;
    cr_expect(t.wgmma && t.menu_index == (m ? 1 : 2) && L.f16 && L.kc == 72 &&
                  L.kcp == 80 && t.block_k == 80 &&
                  L.stage_floats >= L.patch_floats + weights &&
                  L.stage_floats < L.patch_floats + tf32_weights &&
                  L.bytes == (int64_t)t.shared_bytes &&
                  L.bytes <= (int64_t)f16.shared_mem_per_block_max && t.stages >= 2,
              "mish-mish %s on fp16: WG%d, kc %lld, kcp %lld, %d stages of %lld floats (patch "
              "%lld): %s",
              mname, t.menu_index, (long long)L.kc, (long long)L.kcp, t.stages,
              (long long)L.stage_floats, (long long)L.patch_floats, t.why);
    cf_tile_plan rerun = t;
    rerun.f16 = 0;
    rerun.stages = t.rerun_stages;
    const cf_mma_layout R = cf_plan_mma_layout(&sh, &rerun);
    cr_expect(t.rerun_stages >= 2 && !R.f16 && R.kcp == 72 &&
                  R.bytes == (int64_t)t.rerun_shared_bytes &&
                  R.bytes <= (int64_t)f16.shared_mem_per_block_max,
              "mish-mish %s: the rerun's %d stages take %lld bytes, planned %zu", mname,
              t.rerun_stages, (long long)R.bytes, t.rerun_shared_bytes);
  }
}

/* The row-channel tile (caps row_channel_stages / row_channel_resident; planner.c
 * plan_row_channels): WG1's one fp16 product on mish-mish tf32 runs on it, its weights resident
 * (12 chunks of 12 KB beside two teams' 3 stages of 8.4 KB: 199,168 bytes, 512 threads) where
 * the caps ask, else streamed (3 stages of 20.3 KB: 63,232 bytes, 256 threads), 64 x 254 x 2
 * tiles of 128 pixels; entry 1's own fields stay (its TF32 rerun's). Streamed at 5 stages (no
 * resident kernel) and where 300 row channels do not fit resident; never without the caps, for
 * fp32 (pairs on WG2), or on shapes not its kind (5 kernel columns; left padding 1). */
Test(planner, row_channel_tile_where_the_caps_and_the_shape_allow) {
  cf_device_caps caps = caps_h200_all();
  caps.wg_f16 = 2;
  cf_conv_shape sh;
  cf_epilogue epi;
  resolve(&shapes[1], &sh, &epi);
  cf_tile_plan base, t;
  plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &base);
  cr_assert(base.wgmma && base.menu_index == 1 && base.f16 && !base.row_channels,
            "mish-mish tf32 without the caps: WG%d f16 %d row channels %d: %s", base.menu_index,
            base.f16, base.row_channels, base.why);
  for (int resident = 0; resident <= 1; ++resident) {
    caps.row_channel_stages = 3;
    caps.row_channel_resident = resident;
    plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
    const size_t bytes = resident ? 12 * 12288 + 2 * 3 * 8448 + 1024 : 3 * (12288 + 8448) + 1024;
    cr_expect(t.row_channels == 1 + resident && t.row_channel_stages == 3 &&
                  t.row_channel_threads == (resident ? 512 : 256) &&
                  t.row_channel_tiles == 64 * 254 * 2 && t.row_channel_shared_bytes == bytes &&
                  strstr(t.why, "row-channel tile") != NULL &&
                  (strstr(t.why, "weights resident") != NULL) == resident,
              "mish-mish tf32, resident %d: row channels %d, %d stages, %d threads, %lld tiles, "
              "%zu bytes (want %zu): %s",
              resident, t.row_channels, t.row_channel_stages, t.row_channel_threads,
              (long long)t.row_channel_tiles, t.row_channel_shared_bytes, bytes, t.why);
    cr_expect(t.block_m == base.block_m && t.threads == base.threads &&
                  t.stages == base.stages && t.shared_bytes == base.shared_bytes &&
                  t.grid_m == base.grid_m && t.rerun_stages == base.rerun_stages &&
                  t.rerun_shared_bytes == base.rerun_shared_bytes,
              "entry 1's fields (the rerun's) changed: %s", t.why);
  }
  caps.row_channel_stages = 5;
  plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
  cr_expect(t.row_channels == 1 && t.row_channel_shared_bytes == 5 * (12288 + 8448) + 1024,
            "5 stages: row channels %d, %zu bytes", t.row_channels, t.row_channel_shared_bytes);
  caps.row_channel_stages = 3;
  plan_ok(&sh, &epi, CF_MATH_FP32, &caps, &t);
  cr_expect(!t.row_channels, "mish-mish fp32 on the row-channel tile: %s", t.why);
  static const struct {
    const char *name;
    cf_conv2d_desc d;
    int want;
  } cases[] = {
      {"300 row channels", {8, 100, 32, 256, 128, 3, 3, 1, 1, 0, 0, 1, 1, 1}, 1},
      {"5 kernel columns", {8, 64, 32, 256, 128, 5, 5, 1, 1, 0, 0, 1, 1, 1}, 0},
      {"left padding 1", {8, 64, 32, 256, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    cr_assert(cf_shape_resolve("test", &cases[i].d, &sh) == CF_OK, "%s", cf_last_error());
    plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
    cr_expect(t.row_channels == cases[i].want && t.wgmma && t.menu_index == 1 && t.f16,
              "%s: row channels %d (want %d), WG%d, f16 %d: %s", cases[i].name, t.row_channels,
              cases[i].want, t.menu_index, t.f16, t.why);
  }
  caps.row_channel_stages = 0;
  resolve(&shapes[1], &sh, &epi);
  plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
  cr_expect(!t.row_channels, "row_channel_stages 0: %s", t.why);
}

/* The streamed wgmma entries (weights in one bulk copy per chunk beside the patch) only where
 * their kernels exist and pay: the patch by TMA, several K chunks, each entry its own math.
 * mish-mish tf32 (64 channels = 8 chunks of 72) takes 256 x 128 (entry 1), mish-mish fp32
 * 256 x 64 with both 3xTF32 weight halves per stage (entry 2); a one-chunk shape
 * (sub-sub-mish), a device without TMA or a column stride never do. Their layouts hold no
 * resident weights: per stage one patch and one chunk of 128 x 72 (or 2 x 64 x 72) weights, as
 * many stages as fit. */
Test(planner, streamed_wgmma_tile_where_it_applies) {
  cf_conv_shape sh;
  cf_epilogue epi;
  resolve(&shapes[1], &sh, &epi);
  cf_device_caps caps = caps_h200_all();
  cf_tile_plan t;
  plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
  cr_assert(t.wgmma && t.menu_index == 1, "mish-mish tf32: wgmma %d entry %d: %s", t.wgmma,
            t.menu_index, t.why);
  cr_expect(t.block_m == 256 && t.block_n == 128 && t.threads == 512 && t.chunk_channels == 8 &&
                t.stages >= 2 && strstr(t.why, "streamed per chunk by bulk copy") != NULL,
            "mish-mish tf32 streamed plan %dx%d, %d threads, chunk %d, %d stages: %s", t.block_m,
            t.block_n, t.threads, t.chunk_channels, t.stages, t.why);
  const cf_mma_layout L = cf_plan_mma_layout(&sh, &t);
  cr_expect(!L.resident && L.n_chunks == 8 && L.bytes == (int64_t)t.shared_bytes &&
                L.bytes <= (int64_t)caps.shared_mem_per_block_max &&
                L.weight_floats == 0 && L.n_stages == t.stages &&
                L.stage_floats >= L.patch_floats + (int64_t)t.block_n * 72,
            "streamed layout: resident %d, %lld chunks, %lld bytes, %lld weight floats, %lld "
            "stages of %lld floats",
            L.resident, (long long)L.n_chunks, (long long)L.bytes, (long long)L.weight_floats,
            (long long)L.n_stages, (long long)L.stage_floats);
  /* fewer stages when the device has less room, none when not even two fit */
  caps.shared_mem_per_block_max = (size_t)L.bytes - 1;
  plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
  cr_expect(!t.wgmma || t.menu_index != 1 || t.stages < L.n_stages,
            "less shared memory, same %d stages on the streamed tile", t.stages);
  caps = caps_h200_all();
  plan_ok(&sh, &epi, CF_MATH_FP32, &caps, &t);
  cr_assert(t.wgmma && t.menu_index == 2 && t.variant == CF_KERNEL_MMA_3XTF32,
            "mish-mish fp32: wgmma %d entry %d: %s", t.wgmma, t.menu_index, t.why);
  const cf_mma_layout S = cf_plan_mma_layout(&sh, &t);
  cr_expect(t.block_m == 256 && t.block_n == 64 && t.threads == 512 && !S.resident &&
                S.n_chunks == 8 && S.bytes == (int64_t)t.shared_bytes &&
                S.n_stages == t.stages && t.stages >= 2 &&
                S.stage_floats >= S.patch_floats + 2 * 64 * 72,
            "mish-mish fp32 streamed plan %dx%d, %d threads, %d stages of %lld floats: %s",
            t.block_m, t.block_n, t.threads, t.stages, (long long)S.stage_floats, t.why);
  caps.force_tile = CFK_MMA_TILE_COUNT + 3; /* the 3xTF32 entry has no TF32 kernel */
  cf_tile_plan other;
  cr_expect(cf_plan_tiles(&sh, &epi, CF_MATH_TF32, &caps, &other) != CF_OK ||
                !(other.wgmma && other.menu_index == 2),
            "CONVFUSE_TILE=%d for tf32: %s", CFK_MMA_TILE_COUNT + 3, other.why);
  caps.force_tile = CFK_MMA_TILE_COUNT + 2; /* nor the TF32 entry a 3xTF32 one */
  cr_expect(cf_plan_tiles(&sh, &epi, CF_MATH_FP32, &caps, &other) != CF_OK ||
                !(other.wgmma && other.menu_index == 1),
            "CONVFUSE_TILE=%d for fp32: %s", CFK_MMA_TILE_COUNT + 2, other.why);
  caps = caps_h200_all();
  caps.has_tma = 0;
  plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
  cr_expect(!(t.wgmma && t.menu_index == 1), "streamed tile without TMA: %s", t.why);
  plan_ok(&sh, &epi, CF_MATH_FP32, &caps, &t);
  cr_expect(!(t.wgmma && t.menu_index == 2), "streamed 3xTF32 tile without TMA: %s", t.why);
  caps = caps_h200_all();
  named_shape ns = shapes[1];
  ns.d.stride_w = 2;
  resolve(&ns, &sh, &epi);
  plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
  cr_expect(!(t.wgmma && t.menu_index == 1), "streamed tile at stride_w 2: %s", t.why);
  resolve(&shapes[0], &sh, &epi); /* 8 channels: one chunk */
  plan_ok(&sh, &epi, CF_MATH_TF32, &caps, &t);
  cr_expect(!(t.wgmma && t.menu_index == 1), "sub-sub-mish (one chunk) streamed: %s", t.why);
  caps.force_tile = CFK_MMA_TILE_COUNT + 2; /* forced where it cannot run: nothing else */
  cf_tile_plan forced;
  const cf_status st = cf_plan_tiles(&sh, &epi, CF_MATH_TF32, &caps, &forced);
  cr_expect(st != CF_OK || !(forced.wgmma && forced.menu_index == 1),
            "CONVFUSE_TILE=%d on a one-chunk shape: status %d, wgmma %d entry %d",
            CFK_MMA_TILE_COUNT + 2, st, forced.wgmma, forced.menu_index);
  /* the plan falls back (FFMA), and its reasoning names the forced entry, not the device */
  cr_expect(st != CF_OK || strstr(forced.why, "forced tile (CONVFUSE_TILE=") != NULL,
            "fallback from a forced tile that does not apply: %s", forced.why);
}

/* The wgmma plans and mma.sync T0 plans load their patch by TMA where the device has it and
 * the input allows one box per segment: both workloads (w = 256) in segments of 128 pixels, box
 * rows of 140 floats (130 columns + up to 3 of lead, rounded to 16 bytes and to == 12 (mod
 * 32)), each segment 128-byte aligned (with its own zero run where K is padded). Not with
 * has_tma off, a width that is not a multiple of 4 floats, a column stride (no instantiation) or
 * a kernel-row dilation (rows not adjacent). */
Test(planner, tma_patch_where_the_device_and_shape_allow) {
  const cf_math maths[2] = {CF_MATH_FP32, CF_MATH_TF32};
  for (int i = 0; i < 2; ++i)
    for (int m = 0; m < 2; ++m) {
      cf_conv_shape sh;
      cf_epilogue epi;
      resolve(&shapes[i], &sh, &epi);
      cf_device_caps caps = caps_h200_all();
      cf_tile_plan t;
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      /* mish-mish runs on the streamed wgmma entries (its weights do not fit resident) */
      cr_expect(t.patch_tma_segment == 128 && strstr(t.why, "patch by TMA") != NULL &&
                    (t.wgmma || t.menu_index == 0) && t.weights_resident == !(i == 1),
                "[%s | %s] segment %d: %s", shapes[i].name, m ? "tf32" : "fp32",
                t.patch_tma_segment, t.why);
      const cf_mma_layout L = cf_plan_mma_layout(&sh, &t);
      cr_expect(L.bytes == (int64_t)t.shared_bytes, "[%s] TMA layout %lld bytes, plan %zu",
                shapes[i].name, (long long)L.bytes, t.shared_bytes);
      /* both workloads' chunks are 72 K values, no padding: no zero run */
      cr_expect(L.tma_segments == 2 && L.patch_pitch == 140 && L.seg_floats % 32 == 0 &&
                    L.weight_floats % 32 == 0 && L.kc == L.kcp &&
                    L.zero_base <= L.seg_floats && L.patch_floats == 2 * L.seg_floats,
                "[%s] TMA layout: %lld segments, pitch %lld, seg_floats %lld, zero_base %lld",
                shapes[i].name, (long long)L.tma_segments, (long long)L.patch_pitch,
                (long long)L.seg_floats, (long long)L.zero_base);
      caps.has_tma = 0;
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      cr_expect(t.patch_tma_segment == 0 && strstr(t.why, "patch by cp.async"),
                "[%s] has_tma 0: %s", shapes[i].name, t.why);
      caps = caps_h200_all();
      for (int v = 0; v < 3; ++v) {
        named_shape ns = shapes[i];
        const char *what = v == 0 ? "width 254" : v == 1 ? "dilation_h 2" : "stride_w 2";
        if (v == 0)
          ns.d.width = 254; /* rows not 16-byte multiples */
        else if (v == 1)
          ns.d.dilation_h = 2;
        else
          ns.d.stride_w = 2;
        cf_conv_shape odd;
        cf_epilogue odd_epi;
        resolve(&ns, &odd, &odd_epi);
        plan_ok(&odd, &odd_epi, maths[m], &caps, &t);
        cr_expect(t.patch_tma_segment == 0, "[%s] %s: segment %d: %s", shapes[i].name, what,
                  t.patch_tma_segment, t.why);
      }
    }
  /* the segment rule itself: 128 where its box row fits 256 floats, else 64, else none */
  cr_expect(cf_tma_seg_pixels(256, 3, 1, 1) == 128 && cf_tma_seg_pixels(64, 3, 1, 1) == 64 &&
                cf_tma_seg_pixels(256, 3, 2, 1) == 64 && cf_tma_seg_pixels(256, 3, 4, 1) == 0 &&
                cf_tma_pitch(130) == 140 && cf_tma_pitch(66) == 76 && cf_tma_pitch(16) == 16,
            "segment rule: %lld %lld %lld %lld, pitch %lld %lld %lld",
            (long long)cf_tma_seg_pixels(256, 3, 1, 1), (long long)cf_tma_seg_pixels(64, 3, 1, 1),
            (long long)cf_tma_seg_pixels(256, 3, 2, 1), (long long)cf_tma_seg_pixels(256, 3, 4, 1),
            (long long)cf_tma_pitch(130), (long long)cf_tma_pitch(66), (long long)cf_tma_pitch(16));
}

/* The TMA kernels run as many pipeline stages as fit (CFK_MMA_MAX_STAGES at most) where a tile
 * takes several K chunks, two with one chunk per tile (a stage is a whole tile ahead there) and
 * on the cp.async kernels: on the H200 mish-mish gets 3 (64 KB stages of patch and weights on
 * the streamed wgmma entries, both maths), sub-sub-mish 2; CONVFUSE_STAGES caps the number (and
 * lifts the one-chunk rule, for A/B runs); with a padded K the zero runs come back and are
 * counted. */
Test(planner, tma_stages_as_many_as_fit) {
  const cf_math maths[2] = {CF_MATH_FP32, CF_MATH_TF32};
  const int want[2] = {2, 3}; /* sub-sub-mish, mish-mish */
  for (int i = 0; i < 2; ++i)
    for (int m = 0; m < 2; ++m) {
      cf_conv_shape sh;
      cf_epilogue epi;
      resolve(&shapes[i], &sh, &epi);
      cf_device_caps caps = caps_h200_all();
      cf_tile_plan t;
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      const cf_mma_layout L = cf_plan_mma_layout(&sh, &t);
      cr_expect(t.stages == want[i] && L.n_stages == t.stages &&
                    L.bytes <= (int64_t)caps.shared_mem_per_block_max &&
                    L.bytes == (int64_t)t.shared_bytes,
                "[%s | %s] %d stages (want %d), layout %lld bytes for %zu max",
                shapes[i].name, m ? "tf32" : "fp32", t.stages, want[i], (long long)L.bytes,
                caps.shared_mem_per_block_max);
      caps.force_stages = 2;
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      cr_expect(t.stages == 2 && t.patch_tma_segment > 0, "[%s] CONVFUSE_STAGES=2: %d stages",
                shapes[i].name, t.stages);
      caps.force_stages = 4; /* sub-sub-mish's 18 KB of weights leave room for 4, mish-mish 3 */
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      cr_expect(t.stages == 4 - i, "[%s] CONVFUSE_STAGES=4: %d stages", shapes[i].name,
                t.stages);
      caps = caps_h200_all();
      caps.has_tma = 0;
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      cr_expect(t.stages == 2 && cf_plan_mma_layout(&sh, &t).n_stages == 2,
                "[%s] cp.async: %d stages", shapes[i].name, t.stages);
    }
  /* C = 5 at 3x3: 45 K values padded to 48, so every segment keeps its zero run */
  const cf_mma_layout P = cf_layout_with_tma(cf_mma_layout_make(256, 64, 5, 5, 3, 3, 1, 1, 1, 0),
                                             256, 5, 3, 3, 1, 1, 128, 3);
  cr_expect(P.kc < P.kcp && P.zero_base + 131 <= P.seg_floats && P.n_stages == 3 &&
                P.bytes == (P.weight_floats + 3 * P.stage_floats + P.kcp) * 4 + 48,
            "padded K: zero_base %lld, seg_floats %lld, %lld bytes", (long long)P.zero_base,
            (long long)P.seg_floats, (long long)P.bytes);
}

/* Flat tiles (kernels_cuda/conv_flat.cuh) where the backend has them and the shape allows: on
 * the H200 sub-sub-mish runs them in both maths (one K chunk; 254 x 254 pixels per plane, a
 * multiple of 4): 253 tiles of 256 pixels per plane, boxes of 4 input rows of 256 floats (a
 * tile spans 2 output rows at q = 254), two patch stages, and two staging buffers beside TF32's
 * weights but one beside 3xTF32's split ones (two beside fp16 pairs' where the caps allow
 * them). mish-mish (8 K chunks) stays on row tiles. Not
 * with the backend's flat tiles off (CONVFUSE_FLAT=0), column padding, a width that is not a
 * multiple of 4, a column stride, or planes of p*q not a multiple of 4. */
Test(planner, flat_tiles_where_the_backend_and_shape_allow) {
  const cf_math maths[2] = {CF_MATH_FP32, CF_MATH_TF32};
  for (int i = 0; i < 2; ++i)
    for (int m = 0; m < 2; ++m) {
      cf_conv_shape sh;
      cf_epilogue epi;
      resolve(&shapes[i], &sh, &epi);
      cf_device_caps caps = caps_h200_flat();
      cf_tile_plan t;
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      if (i == 1) {
        cr_expect(!t.flat_tiles && strstr(t.why, "flat") == NULL, "[%s | %s] flat: %s",
                  shapes[i].name, m ? "tf32" : "fp32", t.why);
        continue;
      }
      const cf_mma_layout L = cf_plan_mma_layout(&sh, &t);
      cr_expect(t.flat_tiles && t.wgmma && strstr(t.why, "WG0 flat tiles") != NULL &&
                    strstr(t.why, "stored by TMA") != NULL && t.grid_m == 128 * 253 &&
                    t.output_buffers == (m ? 2 : 1) && t.stages == 2 && L.flat_rows == 4 &&
                    L.patch_pitch == 256 && L.stage_floats == 8 * 4 * 256 &&
                    L.out_pitch == 260 && L.out_floats == t.output_buffers * 64 * 260 &&
                    L.bytes == (int64_t)t.shared_bytes &&
                    L.bytes <= (int64_t)caps.shared_mem_per_block_max,
                "[sub-sub-mish | %s] flat %d, grid_m %lld, %d staging buffers, %d stages, %lld "
                "box rows, %lld bytes: %s",
                m ? "tf32" : "fp32", t.flat_tiles, (long long)t.grid_m, t.output_buffers,
                t.stages, (long long)L.flat_rows, (long long)L.bytes, t.why);
      /* fp16 pairs (caps wg_f16 2) for fp32 only: K 72 -> 80, 64 x 80 x 2 halves of weights
       * and the channels' scales, room for two staging buffers; the 3xTF32 rerun in the
       * layout above */
      caps.wg_f16 = 2;
      cf_tile_plan p16;
      plan_ok(&sh, &epi, maths[m], &caps, &p16);
      const cf_mma_layout P = cf_plan_mma_layout(&sh, &p16);
      if (m) {
        cr_expect(!p16.f16 && p16.shared_bytes == t.shared_bytes,
                  "[sub-sub-mish | tf32] fp16 pairs on flat tiles: %s", p16.why);
      } else {
        cf_tile_plan rerun = p16;
        rerun.f16 = 0;
        rerun.stages = p16.rerun_stages;
        rerun.output_buffers = p16.rerun_output_buffers;
        const cf_mma_layout R = cf_plan_mma_layout(&sh, &rerun);
        cr_expect(p16.f16 && p16.flat_tiles && strstr(p16.why, "fp16 pairs") != NULL &&
                      p16.output_buffers == 2 && p16.stages == 2 && P.f16 && P.kcp == 80 &&
                      p16.block_k == 80 && P.weight_floats == 64 * 80 + 2 * 64 &&
                      P.bytes == (int64_t)p16.shared_bytes &&
                      P.bytes <= (int64_t)caps.shared_mem_per_block_max &&
                      p16.rerun_output_buffers == t.output_buffers &&
                      p16.rerun_stages == t.stages && !R.f16 && R.kcp == 72 &&
                      R.bytes == (int64_t)p16.rerun_shared_bytes &&
                      R.bytes == (int64_t)t.shared_bytes,
                  "[sub-sub-mish | fp32] fp16 pairs on flat tiles: %d staging buffers, %d "
                  "stages, kcp %lld, %lld bytes; rerun %d buffers, %d stages, %zu bytes: %s",
                  p16.output_buffers, p16.stages, (long long)P.kcp, (long long)P.bytes,
                  p16.rerun_output_buffers, p16.rerun_stages, p16.rerun_shared_bytes, p16.why);
      }
      caps.wg_f16 = 0;
      caps.flat_tiles = 0;
      plan_ok(&sh, &epi, maths[m], &caps, &t);
      cr_expect(!t.flat_tiles && t.wgmma && t.patch_tma_segment == 128,
                "[sub-sub-mish] flat tiles off: %s", t.why);
      caps = caps_h200_flat();
      for (int v = 0; v < 4; ++v) {
        named_shape ns = shapes[i];
        const char *what = v == 0   ? "pad_w 1"
                           : v == 1 ? "width 254"
                           : v == 2 ? "stride_w 2"
                                    : "255 x 254 pixels";
        if (v == 0)
          ns.d.pad_w = 1;
        else if (v == 1)
          ns.d.width = 254;
        else if (v == 2)
          ns.d.stride_w = 2;
        else
          ns.d.height = 257;
        cf_conv_shape odd;
        cf_epilogue odd_epi;
        resolve(&ns, &odd, &odd_epi);
        plan_ok(&odd, &odd_epi, maths[m], &caps, &t);
        cr_expect(!t.flat_tiles, "[sub-sub-mish] %s: flat tiles: %s", what, t.why);
      }
    }
  /* rows a 256-pixel tile spans: its first column is a multiple of gcd(256, q) */
  cr_expect(cf_flat_out_rows(256, 254) == 2 && cf_flat_out_rows(256, 256) == 1 &&
                cf_flat_out_rows(256, 128) == 2 && cf_flat_out_rows(256, 18) == 16 &&
                cf_flat_out_rows(256, 1) == 256 && cf_flat_in_rows(256, 254, 3, 1, 1) == 4 &&
                cf_flat_in_rows(256, 254, 3, 2, 2) == 7,
            "flat rows: %lld %lld %lld %lld %lld, input rows %lld %lld",
            (long long)cf_flat_out_rows(256, 254), (long long)cf_flat_out_rows(256, 256),
            (long long)cf_flat_out_rows(256, 128), (long long)cf_flat_out_rows(256, 18),
            (long long)cf_flat_out_rows(256, 1), (long long)cf_flat_in_rows(256, 254, 3, 1, 1),
            (long long)cf_flat_in_rows(256, 254, 3, 2, 2));
}

/* The staged weight rows' bank promise (common/mma_layout.h), checked the way the OpenCL
 * kernel reads them: an ldmatrix 8 x 4 matrix is eight rows' 16-byte pieces at one K offset
 * (a multiple of 4), and its eight pieces must fall in eight distinct groups of 4 banks; the
 * scalar B loads read row g, column t + kb (g < 8, t < 4), 32 distinct banks. Padded rows
 * (cf_mma_weight_pitch) satisfy both; unpadded rows (pitch kcp == 8 mod 16) satisfy the
 * ldmatrix one through the kernel's swizzle, CFM_W_COL: in rows with bit 2 set, K offset k is
 * stored at k ^ 4. */
static int ldmatrix_conflict_free(int64_t pitch, int64_t kcp, int swizzled) {
  for (int64_t row0 = 0; row0 < 64; row0 += 8)
    for (int64_t k = 0; k < kcp; k += 4) {
      unsigned seen = 0;
      for (int64_t r = row0; r < row0 + 8; ++r) {
        const int64_t col = swizzled ? k ^ (((r >> 2) & 1) << 2) : k;
        seen |= 1u << (((r * pitch + col) / 4) % 8);
      }
      if (seen != 0xffu)
        return 0;
    }
  return 1;
}

static int scalar_loads_conflict_free(int64_t pitch, int64_t kcp) {
  for (int64_t kb = 0; kb < kcp; kb += 4) {
    uint64_t seen = 0;
    for (int64_t g = 0; g < 8; ++g)
      for (int64_t t = 0; t < 4; ++t)
        seen |= 1ull << ((g * pitch + kb + t) % 32);
    if (seen != 0xffffffffull)
      return 0;
  }
  return 1;
}

Test(planner, staged_weight_rows_are_bank_conflict_free) {
  for (int64_t kcp = 8; kcp <= 8 * 72; kcp += 8) {
    const int64_t padded = cf_mma_weight_pitch(kcp);
    cr_expect(padded >= kcp && padded % 4 == 0 && ldmatrix_conflict_free(padded, kcp, 0) &&
                  scalar_loads_conflict_free(padded, kcp),
              "K chunk %lld: padded pitch %lld is not conflict-free", (long long)kcp,
              (long long)padded);
    cf_mma_layout L = cf_mma_layout_make(128, 64, 64, 1, 1, kcp, 1, 1, 0, 0);
    cr_assert(L.kcp == kcp, "layout K chunk %lld for %lld", (long long)L.kcp, (long long)kcp);
    if (!cf_mma_layout_can_swizzle_weights(&L))
      continue;
    const cf_mma_layout S = cf_mma_layout_swizzle_weights(L, 64);
    cr_expect(S.w_swizzled && S.w_pitch == kcp && ldmatrix_conflict_free(S.w_pitch, kcp, 1) &&
                  !ldmatrix_conflict_free(S.w_pitch, kcp, 0) &&
                  S.bytes == L.bytes - 4 * S.n_stages * 64 * (L.w_pitch - kcp) &&
                  S.stage_floats == L.stage_floats - 64 * (L.w_pitch - kcp),
              "K chunk %lld: swizzled pitch %lld, %lld bytes (padded %lld)", (long long)kcp,
              (long long)S.w_pitch, (long long)S.bytes, (long long)L.bytes);
  }
}
