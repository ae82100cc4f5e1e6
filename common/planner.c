#include "planner.h"

#include <stdio.h>
#include <string.h>

#include "cf_constants.h"
#include "error.h"

const char *cf_kernel_variant_name(cf_kernel_variant v) {
  switch (v) {
  case CF_KERNEL_REFERENCE: return "reference";
  case CF_KERNEL_FFMA_TILED: return "ffma_tiled";
  case CF_KERNEL_COUNT: break;
  }
  return "?";
}

typedef struct ffma_tile {
  int bm, bn, bk, tm, tn;
} ffma_tile;

/* The FFMA tile menu, straight from the generated constants. */
static const ffma_tile ffma_menu[CFK_FFMA_TILE_COUNT] = {
    {CFK_FFMA_T0_BM, CFK_FFMA_T0_BN, CFK_FFMA_T0_BK, CFK_FFMA_T0_TM, CFK_FFMA_T0_TN},
    {CFK_FFMA_T1_BM, CFK_FFMA_T1_BN, CFK_FFMA_T1_BK, CFK_FFMA_T1_TM, CFK_FFMA_T1_TN},
    {CFK_FFMA_T2_BM, CFK_FFMA_T2_BN, CFK_FFMA_T2_BK, CFK_FFMA_T2_TM, CFK_FFMA_T2_TN},
};

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static size_t ffma_shared_bytes(const ffma_tile *t) {
  /* one A slice (bk x bm) and one B slice (bk x bn) of floats */
  return (size_t)(t->bm + t->bn) * (size_t)t->bk * sizeof(float);
}

static int ffma_threads(const ffma_tile *t) { return (t->bm / t->tm) * (t->bn / t->tn); }

static int ffma_fits(const ffma_tile *t, const cf_device_caps *caps) {
  return ffma_threads(t) <= caps->max_threads_per_block &&
         ffma_shared_bytes(t) <= caps->shared_mem_per_block;
}

/* Columns of a block tile that do useful work, as a fraction: small out_channels waste a
 * wide tile. */
static double n_efficiency(int64_t gemm_n, int bn) {
  return (double)gemm_n / (double)(ceil_div(gemm_n, bn) * bn);
}

static cf_status plan_ffma(const cf_conv_shape *sh, const cf_device_caps *caps,
                           cf_tile_plan *plan) {
  /* Preference: the largest tile whose N-width wastes little and that still gives every
   * compute unit at least two blocks; else the best-fitting one that fits the device. */
  int best = -1;
  double best_score = -1.0;
  char rejected[96] = "";
  size_t rej_used = 0;
  for (int i = 0; i < CFK_FFMA_TILE_COUNT; ++i) {
    const ffma_tile *t = &ffma_menu[i];
    if (!ffma_fits(t, caps)) {
      if (rej_used < sizeof rejected)
        rej_used += (size_t)snprintf(rejected + rej_used, sizeof rejected - rej_used,
                                     " T%d:too-big", i);
      continue;
    }
    int64_t blocks = ceil_div(sh->gemm_m, t->bm) * ceil_div(sh->gemm_n, t->bn);
    double fill = (double)blocks / (2.0 * (caps->compute_units > 0 ? caps->compute_units : 1));
    if (fill > 1.0)
      fill = 1.0;
    /* work per block (reuse) matters once the device is full */
    double reuse = (double)(t->bm * t->bn) / (double)(t->bm + t->bn) / 43.0;
    double score = n_efficiency(sh->gemm_n, t->bn) * fill * (0.5 + 0.5 * reuse);
    if (score > best_score + 1e-9) {
      best_score = score;
      best = i;
    }
  }
  if (best < 0)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "planner: no FFMA tile fits the device (max %d threads, %zu bytes of shared "
                    "memory per block)",
                    caps->max_threads_per_block, caps->shared_mem_per_block);
  const ffma_tile *t = &ffma_menu[best];
  plan->variant = CF_KERNEL_FFMA_TILED;
  plan->menu_index = best;
  plan->block_m = t->bm;
  plan->block_n = t->bn;
  plan->block_k = t->bk;
  plan->thread_m = t->tm;
  plan->thread_n = t->tn;
  plan->threads = ffma_threads(t);
  plan->stages = 1;
  plan->grid_m = ceil_div(sh->gemm_m, t->bm);
  plan->grid_n = ceil_div(sh->gemm_n, t->bn);
  plan->shared_bytes = ffma_shared_bytes(t);
  plan->math_effective = CF_MATH_FP32;
  snprintf(plan->why, sizeof plan->why,
           "FFMA T%d: %lld blocks for %d CUs, %.0f%% of N-columns used%s%s", best,
           (long long)(plan->grid_m * plan->grid_n), caps->compute_units,
           100.0 * n_efficiency(sh->gemm_n, t->bn), rej_used ? "; rejected" : "", rejected);
  return CF_OK;
}

cf_status cf_plan_tiles(const cf_conv_shape *shape, const cf_epilogue *epi, cf_math math,
                        const cf_device_caps *caps, cf_tile_plan *plan) {
  (void)epi; /* every variant runs every chain; kept for chain-dependent choices */
  memset(plan, 0, sizeof *plan);
  plan->menu_index = -1;
  if (math != CF_MATH_FP32 && math != CF_MATH_TF32)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "planner: unknown math mode %d", (int)math);
  if (caps->kernel_variants & (1u << CF_KERNEL_FFMA_TILED)) {
    CF_CHECK(plan_ffma(shape, caps, plan));
    if (math == CF_MATH_TF32) {
      size_t used = strlen(plan->why);
      snprintf(plan->why + used, sizeof plan->why - used,
               "; tf32 requested, no tensor-core kernel yet: runs fp32");
    }
    return CF_OK;
  }
  if (caps->kernel_variants & (1u << CF_KERNEL_REFERENCE)) {
    plan->variant = CF_KERNEL_REFERENCE;
    plan->threads = 1;
    plan->grid_m = 1;
    plan->grid_n = 1;
    plan->math_effective = CF_MATH_FP32;
    snprintf(plan->why, sizeof plan->why, "CPU backend: the double-precision reference loops%s",
             math == CF_MATH_TF32 ? "; tf32 requested: runs fp32" : "");
    return CF_OK;
  }
  return cf_error(CF_ERR_INTERNAL, "planner: backend reports no kernel variants");
}
