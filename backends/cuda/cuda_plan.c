/* The CUDA backend's plans: checking the planner's tile plan against the compiled kernel
 * instantiations, packing the kernel arguments once, and launching (plain and timed). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cf_constants.h"
#include "cuda_internal.h"
#include "env.h"
#include "kernels_cuda/launch.h"
#include "mma_layout.h"
#include "planner.h"

_Static_assert(CFK_FFMA_TILE_COUNT == 3,
               "the FFMA tile menu changed: update the instantiations in "
               "kernels_cuda/conv_ffma.cu");
_Static_assert(CFK_MAX_OPS == CF_MAX_OPS, "cfk_epilogue_ops holds CF_MAX_OPS ops");

typedef struct cuda_plan {
  cf_plan_spec spec;
  int menu_index;
  int chain; /* cfk_epi_chain */
  int threads;
  int mma;   /* 0: FFMA kernel; 1: tensor-core kernel */
  cfk_mma_kernel_id mma_id; /* tensor cores: which kernel */
  cfk_conv_params params;
  cfk_mma_params mma_params;
  cfk_epilogue_ops ops;
  cfk_tensor_map_encoder encoder; /* TMA kernel (mma_id.tma): the context's encoder */
  float *laid_weights; /* streamed wgmma tile: the weights in its order, rewritten per launch */
  /* fp16 products (mma_id.f16): the range guard, a device word cleared before each launch and
   * set by the kernel where a sum is not finite, and the TF32 / 3xTF32 plan of the same tile
   * launched after it, which computes (and lays out its weights) only once the guard is set */
  uint32_t *range_guard;
  struct cuda_plan *rerun;
} cuda_plan;

static int64_t ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The extents every kernel reads; the callers have checked that each fits int32. */
static cfk_geometry geometry_of(const cf_conv_shape *sh) {
  cfk_geometry g = {(int32_t)sh->c,        (int32_t)sh->h,        (int32_t)sh->w,
                    (int32_t)sh->k,        (int32_t)sh->r,        (int32_t)sh->s,
                    (int32_t)sh->p,        (int32_t)sh->q,        (int32_t)sh->stride_h,
                    (int32_t)sh->stride_w, (int32_t)sh->pad_h,    (int32_t)sh->pad_w,
                    (int32_t)sh->dil_h,    (int32_t)sh->dil_w};
  return g;
}

/* The compile-time chain the kernel is specialised on, or the generic one. */
static int classify_chain(const cf_epilogue *e) {
  if (e->n_ops == 0)
    return CFK_EPI_NONE;
  if (e->n_ops == 1 && e->ops[0].kind == CF_OP_MISH)
    return CFK_EPI_MISH;
  if (e->n_ops == 2 && e->ops[0].kind == CF_OP_MISH && e->ops[1].kind == CF_OP_MISH)
    return CFK_EPI_MISH_MISH;
  if (e->n_ops == 1 && e->ops[0].kind == CF_OP_RELU)
    return CFK_EPI_RELU;
  return CFK_EPI_GENERIC;
}

/* v <= limit, else CF_ERR_UNSUPPORTED naming the quantity: the kernel forms it in int32. */
static cf_status fits_int32(const char *what, int64_t v, int64_t limit) {
  if (v < 0 || v > limit)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "cuda: %s is %lld; the FFMA kernel indexes it in int32 (limit %lld)", what,
                    (long long)v, (long long)limit);
  return CF_OK;
}

static cf_status check_tiles(const cf_plan_spec *spec, const cf_ffma_tile **entry) {
  const cf_tile_plan *t = &spec->tiles;
  if (t->variant != CF_KERNEL_FFMA_TILED)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "cuda: no kernel for variant '%s' (this backend implements ffma_tiled)",
                    cf_kernel_variant_name(t->variant));
  if (t->menu_index < 0 || t->menu_index >= CFK_FFMA_TILE_COUNT)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "cuda: FFMA tile menu index %d has no kernel (valid 0..%d)", t->menu_index,
                    CFK_FFMA_TILE_COUNT - 1);
  const cf_ffma_tile *m = &cf_ffma_menu[t->menu_index];
  const int threads = (m->bm / m->tm) * (m->bn / m->tn);
  if (t->block_m != m->bm || t->block_n != m->bn || t->block_k != m->bk ||
      t->thread_m != m->tm || t->thread_n != m->tn || t->threads != threads)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "cuda: tile plan %dx%dx%d thread %dx%d (%d threads) has no kernel: FFMA "
                    "menu entry T%d is %dx%dx%d thread %dx%d (%d threads)",
                    t->block_m, t->block_n, t->block_k, t->thread_m, t->thread_n, t->threads,
                    t->menu_index, m->bm, m->bn, m->bk, m->tm, m->tn, threads);
  const cf_conv_shape *sh = &spec->shape;
  const int64_t gm = ceil_div64(sh->gemm_m, m->bm), gn = ceil_div64(sh->gemm_n, m->bn);
  if (t->grid_m != gm || t->grid_n != gn)
    return cf_error(CF_ERR_INTERNAL,
                    "cuda: tile plan grid %lldx%lld does not cover GEMM M=%lld x N=%lld with "
                    "%dx%d tiles (expected %lldx%lld)",
                    (long long)t->grid_m, (long long)t->grid_n, (long long)sh->gemm_m,
                    (long long)sh->gemm_n, m->bm, m->bn, (long long)gm, (long long)gn);
  *entry = m;
  return CF_OK;
}

/* Every value the kernel holds in int32, with the headroom its index arithmetic needs. */
static cf_status check_int32_ranges(const cf_conv_shape *sh, const cf_ffma_tile *m) {
  const int64_t lim = INT32_MAX;
  CF_CHECK(fits_int32("in_channels", sh->c, lim));
  CF_CHECK(fits_int32("height", sh->h, lim));
  CF_CHECK(fits_int32("width", sh->w, lim));
  CF_CHECK(fits_int32("kernel_h", sh->r, lim));
  CF_CHECK(fits_int32("kernel_w", sh->s, lim));
  CF_CHECK(fits_int32("out_h", sh->p, lim));
  CF_CHECK(fits_int32("out_w", sh->q, lim));
  CF_CHECK(fits_int32("stride_h", sh->stride_h, lim));
  CF_CHECK(fits_int32("stride_w", sh->stride_w, lim));
  CF_CHECK(fits_int32("dilation_h", sh->dil_h, lim));
  CF_CHECK(fits_int32("dilation_w", sh->dil_w, lim));
  /* input rows/columns in padded coordinates: tap positions lie in [-pad, size + pad) */
  CF_CHECK(fits_int32("height + 2 * pad_h", sh->h + 2 * sh->pad_h, lim));
  CF_CHECK(fits_int32("width + 2 * pad_w", sh->w + 2 * sh->pad_w, lim));
  /* channel and K indices run up to one tile (two K slices) past their extent */
  CF_CHECK(fits_int32("out_channels + block_n", sh->k + m->bn, lim));
  CF_CHECK(fits_int32("in_channels * kernel_h * kernel_w + 2 * block_k",
                      sh->gemm_k + 2 * (int64_t)m->bk, lim));
  return CF_OK;
}

/* Checks the planner's MMA plan against the compiled menu and fills the kernel parameters. */
static cf_status mma_params_fill(const cf_plan_spec *spec, cfk_mma_params *k) {
  const cf_tile_plan *t = &spec->tiles;
  const cf_conv_shape *sh = &spec->shape;
  const int menu_size = t->wgmma ? CFK_WG_TILE_COUNT : CFK_MMA_TILE_COUNT;
  const char *menu_name = t->wgmma ? "WG" : "T";
  if (t->menu_index < 0 || t->menu_index >= menu_size)
    return cf_error(CF_ERR_INTERNAL, "cuda: %s tile menu index %d has no kernel (valid 0..%d)",
                    t->wgmma ? "wgmma" : "MMA", t->menu_index, menu_size - 1);
  const cf_mma_tile *m = t->wgmma ? &cf_wg_menu[t->menu_index] : &cf_mma_menu[t->menu_index];
  const int bm = m->bm, bn = m->bn;
  if (t->block_m != bm || t->block_n != bn || t->warp_m != m->wm || t->warp_n != m->wn ||
      t->chunk_channels < 1 || t->chunk_channels > sh->c ||
      t->weights_swizzled || /* the OpenCL kernel's layout; the CUDA kernels pad instead */
      (t->wgmma && !t->weights_resident != !!m->streamed) ||
      (m->streamed &&
       (t->variant != (m->split ? CF_KERNEL_MMA_3XTF32 : CF_KERNEL_MMA_TF32) ||
        t->patch_tma_segment <= 0)))
    return cf_error(CF_ERR_INTERNAL, "cuda: MMA tile plan %dx%d (warp %dx%d, %d channels per "
                    "chunk, %s) does not match menu entry %s%d",
                    t->block_m, t->block_n, t->warp_m, t->warp_n, t->chunk_channels,
                    cf_kernel_variant_name(t->variant), menu_name, t->menu_index);
  const cf_mma_layout L = cf_plan_mma_layout(sh, t); /* block_m/n checked against the menu */
  const int64_t q_tiles = ceil_div64(sh->q, bm);
  const int64_t plane_tiles = ceil_div64(sh->p * sh->q, bm);
  const int64_t m_tiles = t->flat_tiles ? sh->n * plane_tiles : sh->n * sh->p * q_tiles;
  if (L.bytes != (int64_t)t->shared_bytes || t->grid_m != m_tiles ||
      t->grid_n != ceil_div64(sh->k, bn) || t->grid_n > 65535)
    return cf_error(CF_ERR_INTERNAL, "cuda: MMA plan grid %lldx%lld / %zu bytes disagree with "
                    "the layout (%lld bytes)",
                    (long long)t->grid_m, (long long)t->grid_n, t->shared_bytes,
                    (long long)L.bytes);
  /* the kernel's ring: any depth with TMA (mbarriers; flat tiles one or two), exactly two with
   * cp.async */
  if (L.n_stages < (t->flat_tiles ? 1 : 2) || L.n_stages > CFK_MMA_MAX_STAGES ||
      (L.tma_segments == 0 && L.n_stages != 2))
    return cf_error(CF_ERR_INTERNAL, "cuda: %lld pipeline stages planned for a kernel that loads "
                    "its patch by %s", (long long)L.n_stages, L.tma_segments ? "TMA" : "cp.async");
  /* the layout fits shared memory (<= 227 KiB), so all of it fits int32 */
  k->chw = sh->c * sh->h * sh->w;
  k->pq = sh->p * sh->q;
  k->m_tiles = t->grid_m;
  k->grid_m = t->grid_m; /* until the occupancy is known: see mma_plan_compile */
  k->grid_n = t->grid_n;
  k->g = geometry_of(sh);
  k->crs = (int32_t)sh->gemm_k;
  k->cc = t->chunk_channels;
  k->n_chunks = (int32_t)L.n_chunks;
  k->q_tiles = (int32_t)q_tiles;
  k->div_q_tiles = cf_fastdiv_make(k->q_tiles);
  k->div_p = cf_fastdiv_make(k->g.p);
  k->div_r = cf_fastdiv_make(k->g.r);
  k->resident = L.resident;
  k->hw = sh->h * sh->w;
  k->rows_aligned = sh->w % 4 == 0;
  k->weight_floats = (int32_t)L.weight_floats;
  k->patch_width = (int32_t)L.patch_width;
  k->patch_pitch = (int32_t)L.patch_pitch;
  k->zero_base = (int32_t)L.zero_base;
  k->patch_floats = (int32_t)L.patch_floats;
  k->kc = (int32_t)L.kc;
  k->kcp = (int32_t)L.kcp;
  k->w_pitch = (int32_t)L.w_pitch;
  k->stage_floats = (int32_t)L.stage_floats;
  k->out_floats = (int32_t)L.out_floats;
  k->kpq = sh->k * k->pq;
  k->smem_bytes = (int32_t)L.bytes;
  k->shift = spec->epilogue.bias_shift;
  k->seg_pixels = (int32_t)L.seg_pixels;
  k->seg_floats = (int32_t)L.seg_floats;
  k->tma_bytes = (int32_t)(L.tma_segments * L.zero_base * 4); /* the boxes, zeros excluded */
  /* the box starts on a 16-byte boundary: q0 and the segment starts are multiples of 64 */
  k->tma_lead = L.tma_segments > 0 ? (int32_t)((4 - sh->pad_w % 4) % 4) : 0;
  k->n_stages = (int32_t)L.n_stages;
  k->batch = sh->n;
  k->flat_rows = (int32_t)L.flat_rows;
  k->out_buffers = (int32_t)L.out_buffers;
  k->plane_tiles = (int32_t)(t->flat_tiles ? plane_tiles : 0);
  k->div_plane_tiles = cf_fastdiv_make(t->flat_tiles ? k->plane_tiles : 1);
  k->div_q = cf_fastdiv_make(k->g.q);
  /* entry 1 on fp16 only: on TF32 the pairs measured +1.2% (bench/NOTES.md v56) */
  k->store_pairs =
      m->streamed && t->f16 && t->variant != CF_KERNEL_MMA_3XTF32 && cf_env_store_pairs();
  /* entry 1 (one product): H100 mish-mish tf32 2.90 -> 2.74 ms; entry 2 (pairs) measured
   * 5.04 -> 5.29 with them (its spills grow), so it keeps its 4-byte stores (bench/NOTES.md
   * v72; the OpenCL wgmma program gained 17% by the same, v71) */
  k->store_aligned = m->streamed && t->variant != CF_KERNEL_MMA_3XTF32 && cf_env_store_aligned();
  return CF_OK;
}

/* The row-channel tile the planner chose (tiles row_channel_*; common/planner.c) in place of
 * entry 1's parameters (mma_params_fill's): its chunks, tiles, stages and shared memory, which
 * must be its kernel's; its stores are always the sector-aligned runs. */
static cf_status rowch_params_fill(const cf_conv_shape *sh, const cf_tile_plan *t,
                                   const cfk_mma_kernel_id *id, cfk_mma_params *k) {
  k->n_chunks = (int32_t)ceil_div64(sh->c * sh->r, CF_ROWCH_CHUNK);
  const int64_t bytes = cfk_rowch_smem_bytes(id->rowch, id->rowch_resident, k->n_chunks);
  if (bytes <= 0 || bytes != (int64_t)t->row_channel_shared_bytes ||
      cfk_wgmma_threads(id) != t->row_channel_threads ||
      t->row_channel_tiles != sh->n * sh->p * ceil_div64(sh->q, CF_ROWCH_BM))
    return cf_error(CF_ERR_INTERNAL, "cuda: row-channel plan (%d stages, %s weights, %zu "
                    "bytes, %d threads, %lld tiles) has no such kernel (%lld bytes, %d threads)",
                    t->row_channel_stages, id->rowch_resident ? "resident" : "streamed",
                    t->row_channel_shared_bytes, t->row_channel_threads,
                    (long long)t->row_channel_tiles, (long long)bytes, cfk_wgmma_threads(id));
  k->div_c = cf_fastdiv_make(k->g.c);
  k->q_tiles = (int32_t)ceil_div64(sh->q, CF_ROWCH_BM);
  k->div_q_tiles = cf_fastdiv_make(k->q_tiles);
  k->m_tiles = t->row_channel_tiles;
  k->grid_m = k->m_tiles; /* until the occupancy is known */
  k->n_stages = id->rowch;
  k->smem_bytes = (int32_t)bytes;
  k->store_pairs = 0;
  k->store_aligned = 1;
  return CF_OK;
}

static void ops_fill(const cf_epilogue *epi, cfk_epilogue_ops *ops) {
  ops->n_ops = epi->n_ops;
  for (int i = 0; i < epi->n_ops; ++i) {
    ops->kind[i] = (int32_t)epi->ops[i].kind;
    ops->value[i] = epi->ops[i].value;
  }
}

/* Persistent grid: as many blocks as fit on the device at once, spread over the channel
 * tiles, never more than there are row tiles. */
static cf_status mma_persistent_grid(const cf_cuda_state *st, cuda_plan *p) {
  int per_sm = 0, sms = 0;
  cudaError_t e = cfk_conv_mma_occupancy(&p->mma_id, p->mma_params.smem_bytes, &per_sm);
  if (e == cudaSuccess)
    e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, st->device);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e, "sizing the tensor-core kernel's grid");
  if (per_sm < 1)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "cuda: the tensor-core kernel %s%d (%d bytes of shared memory) cannot be "
                    "resident on this device",
                    p->mma_id.wgmma ? "WG" : "T", p->menu_index, p->mma_params.smem_bytes);
  int64_t x = (int64_t)per_sm * sms / p->mma_params.grid_n;
  /* the row-channel tile's resident-weight blocks: each team its own tiles */
  const int64_t tiles_per_block = p->mma_id.rowch_resident ? CF_ROWCH_TEAMS : 1;
  const int64_t blocks_max = ceil_div64(p->mma_params.m_tiles, tiles_per_block);
  if (x < 1)
    x = 1;
  if (x > blocks_max)
    x = blocks_max;
  if (x > INT32_MAX)
    x = INT32_MAX;
  p->mma_params.grid_m = x;
  return CF_OK;
}

static cf_status mma_plan_compile(const cf_cuda_state *st, const cf_plan_spec *spec,
                                  void **compiled);

/* An fp16 plan's guard word and its TF32 / 3xTF32 rerun: the same tile and chunks in the
 * layout the planner sized for it (rerun_stages, rerun_shared_bytes, flat tiles'
 * rerun_output_buffers). */
static cf_status range_guard_make(const cf_cuda_state *st, const cf_plan_spec *spec,
                                  cuda_plan *p) {
  cf_plan_spec rerun = *spec;
  rerun.tiles.f16 = 0;
  rerun.tiles.row_channels = 0; /* entry 1's own tile */
  rerun.tiles.stages = spec->tiles.rerun_stages;
  rerun.tiles.shared_bytes = spec->tiles.rerun_shared_bytes;
  rerun.tiles.output_buffers = spec->tiles.rerun_output_buffers; /* 0 but for flat tiles */
  rerun.tiles.rerun_stages = 0;
  rerun.tiles.rerun_shared_bytes = 0;
  rerun.tiles.rerun_output_buffers = 0;
  rerun.tiles.block_k = (int)cf_plan_mma_layout(&spec->shape, &rerun.tiles).kcp;
  void *compiled = NULL;
  CF_CHECK(mma_plan_compile(st, &rerun, &compiled));
  p->rerun = compiled;
  cudaError_t e = cudaMalloc((void **)&p->range_guard, sizeof *p->range_guard);
  if (e != cudaSuccess) {
    p->range_guard = NULL;
    return cf_cuda_fail(e == cudaErrorMemoryAllocation ? CF_ERR_OUT_OF_MEMORY : CF_ERR_DEVICE, e,
                        "allocating the fp16 kernel's range guard");
  }
  p->mma_params.range_guard = p->range_guard;
  p->rerun->mma_params.range_guard = p->range_guard;
  return CF_OK;
}

static cf_status mma_plan_compile(const cf_cuda_state *st, const cf_plan_spec *spec,
                                  void **compiled) {
  const cf_conv_shape *sh = &spec->shape;
  /* the same int32 headroom as the FFMA kernel: padded extents and channel indices */
  CF_CHECK(fits_int32("height + 2 * pad_h", sh->h + 2 * sh->pad_h, INT32_MAX));
  CF_CHECK(fits_int32("width + 2 * pad_w", sh->w + 2 * sh->pad_w, INT32_MAX));
  CF_CHECK(fits_int32("in_channels * kernel_h * kernel_w + chunk", sh->gemm_k + 1024,
                      INT32_MAX));
  CF_CHECK(fits_int32("out_channels + block_n", sh->k + 128, INT32_MAX));
  cuda_plan *p = calloc(1, sizeof *p);
  if (!p)
    return cf_error(CF_ERR_OUT_OF_MEMORY, "cuda: cannot allocate a plan (%zu bytes)",
                    sizeof *p);
  p->spec = *spec;
  p->mma = 1;
  p->menu_index = spec->tiles.menu_index;
  p->chain = classify_chain(&spec->epilogue);
  p->threads = spec->tiles.threads;
  p->mma_id.menu_index = p->menu_index;
  p->mma_id.split = spec->tiles.variant == CF_KERNEL_MMA_3XTF32;
  p->mma_id.chain = p->chain;
  p->mma_id.unit_stride = sh->stride_w == 1;
  p->mma_id.staged = spec->tiles.output_staged;
  p->mma_id.wgmma = spec->tiles.wgmma;
  p->mma_id.tma = spec->tiles.patch_tma_segment > 0;
  p->mma_id.flat = spec->tiles.flat_tiles;
  p->mma_id.f16 = spec->tiles.f16;
  p->encoder = st->encoder;
  cf_status s = mma_params_fill(spec, &p->mma_params);
  if (s == CF_OK && spec->tiles.row_channels) {
    p->mma_id.rowch = spec->tiles.row_channel_stages;
    p->mma_id.rowch_resident = spec->tiles.row_channels == 2;
    p->mma_id.tma = 0; /* its own patch copies */
    s = rowch_params_fill(sh, &spec->tiles, &p->mma_id, &p->mma_params);
    p->threads = cfk_wgmma_threads(&p->mma_id);
  }
  /* (the drifting 3xTF32 flat tile keeps its boxes whatever the flag says) */
  p->mma_params.row_stores =
      p->mma_id.flat && (!p->mma_id.split || p->mma_id.f16) && st->row_stores;
  /* flat tiles: the wgmma tile, staged, by TMA, unit column stride, whole planes of 4k pixels */
  if (s == CF_OK && p->mma_id.flat &&
      (!p->mma_id.wgmma || !p->mma_id.tma || !p->mma_id.staged || !p->mma_id.unit_stride ||
       sh->pad_w != 0 || (sh->p * sh->q) % 4 != 0))
    s = cf_error(CF_ERR_INTERNAL, "cuda: flat tiles planned for %s%d (%s, %s, stride_w %lld, "
                 "pad_w %lld, %lld pixels per plane): no such kernel",
                 p->mma_id.wgmma ? "WG" : "T", p->menu_index,
                 p->mma_id.tma ? "TMA" : "cp.async", p->mma_id.staged ? "staged" : "not staged",
                 (long long)sh->stride_w, (long long)sh->pad_w, (long long)(sh->p * sh->q));
  /* TMA kernels: the wgmma tiles and mma.sync T0, resident weights (but for the streamed
   * wgmma tile), unit column stride */
  const int streamed = p->mma_id.wgmma && p->menu_index >= 0 &&
                       p->menu_index < CFK_WG_TILE_COUNT && cf_wg_menu[p->menu_index].streamed;
  if (s == CF_OK && p->mma_id.tma &&
      (!(p->mma_id.wgmma || p->menu_index == 0) || !p->mma_id.unit_stride ||
       !(spec->tiles.weights_resident || streamed) || !st->encoder))
    s = cf_error(CF_ERR_INTERNAL, "cuda: TMA patch planned for %s%d (stride_w %lld, weights "
                 "%s)%s: no such kernel",
                 p->mma_id.wgmma ? "WG" : "T", p->menu_index, (long long)sh->stride_w,
                 spec->tiles.weights_resident ? "resident" : "streamed",
                 st->encoder ? "" : " without an encoder");
  int regs = 0;
  size_t local = 0;
  cudaError_t e = cudaSuccess;
  if (s == CF_OK) {
    e = cfk_conv_mma_prepare(&p->mma_id, &regs, &local);
    if (e != cudaSuccess)
      s = cf_cuda_fail(CF_ERR_DEVICE, e, "preparing the tensor-core kernel %s%d",
                       p->mma_id.wgmma ? "WG" : "T", p->menu_index);
  }
  if (s == CF_OK)
    s = mma_persistent_grid(st, p);
  if (s == CF_OK && streamed) {
    const size_t bytes =
        (size_t)cfk_wg_stream_weight_floats(&p->mma_id, &p->mma_params) * sizeof(float);
    e = cudaMalloc((void **)&p->laid_weights, bytes);
    if (e != cudaSuccess) {
      p->laid_weights = NULL;
      s = cf_cuda_fail(e == cudaErrorMemoryAllocation ? CF_ERR_OUT_OF_MEMORY : CF_ERR_DEVICE, e,
                       "allocating the streamed tile's weight copy (%zu bytes)", bytes);
    }
  }
  if (s != CF_OK) {
    free(p);
    return s;
  }
  ops_fill(&spec->epilogue, &p->ops);
  if (p->mma_id.f16) {
    s = range_guard_make(st, spec, p);
    if (s != CF_OK) {
      cf_cuda_plan_release((void *)st, p);
      return s;
    }
  }
  *compiled = p;
  return CF_OK;
}

cf_status cf_cuda_plan_compile(void *state, const cf_plan_spec *spec, void **compiled) {
  if (!spec || !compiled)
    return cf_error(CF_ERR_INTERNAL, "cuda: plan_compile called with a NULL %s",
                    !spec ? "spec" : "compiled");
  CF_CHECK(cf_epilogue_check_folded("cuda", &spec->epilogue));
  if (spec->tiles.variant == CF_KERNEL_MMA_TF32 || spec->tiles.variant == CF_KERNEL_MMA_3XTF32) {
    CF_CHECK(cf_cuda_set_device(state));
    return mma_plan_compile(state, spec, compiled);
  }
  const cf_ffma_tile *m = NULL;
  CF_CHECK(check_tiles(spec, &m));
  const cf_conv_shape *sh = &spec->shape;
  CF_CHECK(check_int32_ranges(sh, m));
  const cf_epilogue *epi = &spec->epilogue;
  int64_t tiles_total = 0;
  if (__builtin_mul_overflow(spec->tiles.grid_m, spec->tiles.grid_n, &tiles_total))
    return cf_error(CF_ERR_UNSUPPORTED, "cuda: %lld x %lld tiles overflow int64",
                    (long long)spec->tiles.grid_m, (long long)spec->tiles.grid_n);

  cuda_plan *p = calloc(1, sizeof *p);
  if (!p)
    return cf_error(CF_ERR_OUT_OF_MEMORY, "cuda: cannot allocate a plan (%zu bytes)",
                    sizeof *p);
  p->spec = *spec;
  p->menu_index = spec->tiles.menu_index;
  p->chain = classify_chain(epi);
  p->threads = spec->tiles.threads;

  cfk_conv_params *k = &p->params;
  k->gemm_m = sh->gemm_m;
  k->pq = sh->p * sh->q;          /* <= output_elems: no overflow */
  k->hw = sh->h * sh->w;          /* <= input_elems */
  k->chw = sh->c * k->hw;         /* <= input_elems */
  k->kpq = sh->k * k->pq;         /* <= output_elems */
  k->tiles_m = spec->tiles.grid_m;
  k->tiles_total = tiles_total;
  k->tiles_n = (int32_t)spec->tiles.grid_n; /* <= out_channels */
  k->g = geometry_of(sh);
  k->rs = (int32_t)(sh->r * sh->s); /* <= gemm_k */
  k->crs = (int32_t)sh->gemm_k;
  k->shift = epi->bias_shift;

  ops_fill(epi, &p->ops);
  *compiled = p;
  return CF_OK;
}

void cf_cuda_plan_release(void *state, void *compiled) {
  cuda_plan *p = compiled;
  if (!p)
    return;
  if (p->rerun)
    cf_cuda_plan_release(state, p->rerun);
  /* launches captured their arguments by value: on the device only the streamed tile's
   * weight copy and the range guard (a release has no way to report a failure: cudaFree's is
   * dropped) */
  if (p->laid_weights || p->range_guard) {
    (void)cf_cuda_set_device(state);
    (void)cudaFree(p->laid_weights);
    (void)cudaFree(p->range_guard);
  }
  free(compiled);
}

/* A tensor-core launch's parameters: the plan's, with the TMA kernel's tensor maps over this
 * input (and, flat tiles, this output). Worked out before any timing event is recorded. */
static cf_status mma_launch_params(const cuda_plan *p, const void *input, void *output,
                                   cfk_mma_params *prm) {
  *prm = p->mma_params;
  if (!p->mma_id.tma)
    return CF_OK;
  /* cf_buffers are cudaMalloc'd (256-byte aligned): TMA's 16-byte rule always holds */
  if (((uintptr_t)input & 15) != 0 || ((uintptr_t)output & 15) != 0)
    return cf_error(CF_ERR_INTERNAL, "cuda: input %p or output %p is not 16-byte aligned", input,
                    output);
  if (p->mma_id.flat) {
    cudaError_t e = cfk_flat_maps_encode(p->encoder, prm, p->spec.tiles.block_n,
                                         (const float *)input, (float *)output);
    if (e != cudaSuccess)
      return cf_cuda_fail(CF_ERR_INTERNAL, e,
                          "encoding the flat tiles' tensor maps (input %lldx%dx%dx%d, box "
                          "%dx%dx%d; output %lldx%dx%lld, box 32x%d)",
                          (long long)prm->batch, prm->g.c, prm->g.h, prm->g.w, prm->patch_pitch,
                          prm->flat_rows, prm->g.c, (long long)prm->batch, prm->g.k,
                          (long long)prm->pq, p->spec.tiles.block_n);
    return CF_OK;
  }
  cudaError_t e = cfk_patch_map_encode(p->encoder, prm, (const float *)input);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_INTERNAL, e,
                        "encoding the input's tensor map (%lldx%dx%dx%d, box %dx%dx%d)",
                        (long long)prm->batch, prm->g.c, prm->g.h, prm->g.w, prm->patch_pitch,
                        prm->g.r, prm->cc);
  return CF_OK;
}

static cf_status launch(cf_cuda_state *st, const cuda_plan *p, const cfk_mma_params *prm,
                        const void *input, const void *weight, const void *bias, void *output);

/* An fp16 plan: the guard cleared, the fp16 kernel, then its rerun (which returns at once
 * unless the guard was set). The rerun's tensor map is encoded here, while the fp16 kernel
 * runs. */
static cf_status launch_guarded(cf_cuda_state *st, const cuda_plan *p, const cfk_mma_params *prm,
                                const void *input, const void *weight, const void *bias,
                                void *output) {
  cudaError_t e = cudaMemsetAsync(p->range_guard, 0, sizeof *p->range_guard, st->stream);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e, "clearing the fp16 kernel's range guard");
  CF_CHECK(launch(st, p, prm, input, weight, bias, output));
  cfk_mma_params rerun_prm;
  CF_CHECK(mma_launch_params(p->rerun, input, output, &rerun_prm));
  return launch(st, p->rerun, &rerun_prm, input, weight, bias, output);
}

/* Queues the kernel (prm: a tensor-core plan's launch parameters); the caller has set the
 * device. */
static cf_status launch(cf_cuda_state *st, const cuda_plan *p, const cfk_mma_params *prm,
                        const void *input, const void *weight, const void *bias, void *output) {
  if ((bias != NULL) != (p->spec.shape.has_bias != 0))
    return cf_error(CF_ERR_INTERNAL, "cuda: launch with bias %s but the plan has_bias = %d",
                    bias ? "given" : "NULL", p->spec.shape.has_bias);
  /* cudaMalloc'd buffers are 256-byte aligned; the staged kernels' 16-byte stores rely on it */
  if (p->mma && p->mma_id.staged && ((uintptr_t)output & 15) != 0)
    return cf_error(CF_ERR_INTERNAL, "cuda: output %p is not 16-byte aligned", output);
  if (p->mma) {
    if (p->laid_weights) { /* the streamed tile reads its own copy, laid out on the stream */
      cudaError_t e = cfk_wg_stream_weights(&p->mma_id, prm, (const float *)weight,
                                            p->laid_weights, st->stream);
      if (e != cudaSuccess)
        return cf_cuda_fail(CF_ERR_DEVICE, e, "laying out the weights for the streamed tile");
      weight = p->laid_weights;
    }
    cudaError_t e = cfk_conv_mma_launch(&p->mma_id, prm, &p->ops, (const float *)input,
                                        (const float *)weight, (const float *)bias,
                                        (float *)output, st->stream);
    if (e != cudaSuccess)
      return cf_cuda_fail(CF_ERR_DEVICE, e,
                          "launching conv_%s%s %s%d%s epilogue [%s] (%lldx%lld blocks of %d "
                          "threads, %d bytes of shared memory, patch by %s)",
                          p->mma_id.wgmma ? "wgmma" : "mma", p->mma_id.split ? "_3xtf32" : "_tf32",
                          p->mma_id.wgmma ? "WG" : "T", p->menu_index,
                          p->mma_id.flat ? " flat" : "",
                          cfk_epi_chain_name(p->chain), (long long)prm->grid_m,
                          (long long)prm->grid_n, p->threads, prm->smem_bytes,
                          p->mma_id.tma ? "TMA" : "cp.async");
    return CF_OK;
  }
  cudaError_t e =
      cfk_conv_ffma_launch(p->menu_index, p->chain, &p->params, &p->ops, (const float *)input,
                           (const float *)weight, (const float *)bias, (float *)output,
                           st->stream);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e,
                        "launching conv_ffma T%d epilogue [%s] (%lld tiles of %d threads)",
                        p->menu_index, cfk_epi_chain_name(p->chain),
                        (long long)p->params.tiles_total, p->threads);
  return CF_OK;
}

/* The plan's kernels: one, or an fp16 kernel with its range guard. */
static cf_status launch_plan(cf_cuda_state *st, const cuda_plan *p, const cfk_mma_params *prm,
                             const void *input, const void *weight, const void *bias,
                             void *output) {
  return p->range_guard ? launch_guarded(st, p, prm, input, weight, bias, output)
                        : launch(st, p, prm, input, weight, bias, output);
}

cf_status cf_cuda_plan_launch(void *state, void *compiled, const void *input,
                              const void *weight, const void *bias, void *output) {
  cf_cuda_state *st = state;
  CF_CHECK(cf_cuda_set_device(st));
  cfk_mma_params prm;
  CF_CHECK(mma_launch_params(compiled, input, output, &prm));
  return launch_plan(st, compiled, &prm, input, weight, bias, output);
}

cf_status cf_cuda_plan_launch_timed(void *state, void *compiled, const void *input,
                                    const void *weight, const void *bias, void *output,
                                    double *device_ms) {
  cf_cuda_state *st = state;
  CF_CHECK(cf_cuda_set_device(st));
  cfk_mma_params prm;
  CF_CHECK(mma_launch_params(compiled, input, output, &prm));
  cudaError_t e = cudaEventRecord(st->ev_start, st->stream);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e, "cudaEventRecord (start)");
  CF_CHECK(launch_plan(st, compiled, &prm, input, weight, bias, output));
  e = cudaEventRecord(st->ev_stop, st->stream);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e, "cudaEventRecord (stop)");
  e = cudaEventSynchronize(st->ev_stop);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e, "cudaEventSynchronize after the timed launch");
  float ms = 0.0f;
  e = cudaEventElapsedTime(&ms, st->ev_start, st->ev_stop);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e, "cudaEventElapsedTime");
  *device_ms = (double)ms;
  return CF_OK;
}

/* The fp16 plans' range guard (the planner's description names the fp16 products) and the
 * store path of the flat tiles (rows) or of the streamed ones (sector-aligned runs). */
const char *cf_cuda_plan_detail(const void *compiled) {
  const cuda_plan *p = compiled;
  if (p->mma && p->mma_id.rowch) /* its own kernel (its shape: the planner's description) */
    return p->mma_id.rowch_resident
               ? "cuda: WG1's job runs on the row-channel tile with resident weights; range "
                 "guard with a TF32 rerun; output in sector-aligned runs"
               : "cuda: WG1's job runs on the row-channel tile with streamed weights; range "
                 "guard with a TF32 rerun; output in sector-aligned runs";
  static const char *const detail[3][3] = {
      /* no guard, TF32 rerun, 3xTF32 rerun; by output: as the planner says, rows, aligned */
      {NULL, "cuda: range guard with a TF32 rerun",
       "cuda: range guard with a 3xTF32 rerun (pairs' inputs x 2^6)"},
      {"cuda: output by 1 KB channel rows",
       "cuda: range guard with a TF32 rerun; output by 1 KB channel rows",
       "cuda: range guard with a 3xTF32 rerun (pairs' inputs x 2^6); output by 1 KB channel "
       "rows"},
      {"cuda: output in sector-aligned runs",
       "cuda: range guard with a TF32 rerun; output in sector-aligned runs",
       "cuda: range guard with a 3xTF32 rerun (pairs' inputs x 2^6); output in sector-aligned "
       "runs"}};
  const int out = !p->mma                      ? 0
                  : p->mma_params.row_stores    ? 1
                  : p->mma_params.store_aligned ? 2
                                                : 0;
  const int guard = !p->range_guard ? 0 : p->spec.tiles.variant == CF_KERNEL_MMA_3XTF32 ? 2 : 1;
  return detail[out][guard];
}
