/* convfuse OpenCL backend: build options (see build_options.h). */
#include "build_options.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

int cf_cl_opt_append(char *buf, size_t len, size_t *used, const char *name, int value) {
  int n = snprintf(buf + *used, len - *used, "%s-D%s=%d", *used ? " " : "", name, value);
  if (n < 0 || (size_t)n >= len - *used)
    return 0;
  *used += (size_t)n;
  return 1;
}

int cf_cl_opt_append_epilogue(char *buf, size_t len, size_t *used, int has_bias,
                              const cf_epilogue *epi) {
  int ok = cf_cl_opt_append(buf, len, used, "CF_HAS_BIAS", has_bias ? 1 : 0) &&
           cf_cl_opt_append(buf, len, used, "CF_EPI_N", epi->n_ops);
  for (int i = 0; ok && i < epi->n_ops; ++i) {
    char name[32];
    snprintf(name, sizeof name, "CF_EPI_OP%d", i);
    ok = cf_cl_opt_append(buf, len, used, name, (int)epi->ops[i].kind);
  }
  return ok;
}

/* 16-byte patch copies: every patch row starts 16-byte aligned (tiles start at multiples of
 * BM * stride_w columns) */
static int patch_copies_16(const cf_conv_shape *sh) { return sh->w % 4 == 0 && sh->pad_w % 4 == 0; }

/* Whether the program can be built with switch i at value v (the kernel's #errors, and the
 * 32-bit offsets' and the one-chunk build's preconditions), given whether it is fp16 (f16) as
 * decided so far: unscale_regs means something only in an fp16 program, patch_split only in
 * fp16 pairs. */
static int switch_applies(int i, int v, const cf_conv_shape *sh, const cf_tile_plan *t,
                          const cf_mma_layout *L, int f16) {
  switch (i) {
  case CF_CL_SWITCH_UNSCALE_REGS:
    return !v || f16;
  case CF_CL_SWITCH_PATCH_SPLIT:
    return !v || (f16 && t->variant == CF_KERNEL_MMA_3XTF32);
  case CF_CL_SWITCH_CHANNEL_PAIRS: /* and patch_split on: cf_cl_mma_switches checks that */
    return !v || (f16 && t->variant == CF_KERNEL_MMA_3XTF32 && patch_copies_16(sh) &&
                  t->chunk_channels % 2 == 0 && L->kc == L->kcp);
  case CF_CL_SWITCH_EVICT_LAST: /* a hint on the 16-byte patch copies only */
    return !v || patch_copies_16(sh);
  case CF_CL_SWITCH_LDSM: /* ldmatrix reads 16-byte rows; the scalar loads no swizzled ones */
    return v ? L->w_pitch % 4 == 0 && L->kcp % 4 == 0 && L->patch_floats % 4 == 0 &&
                   L->weight_floats % 4 == 0
             : !L->w_swizzled;
  case CF_CL_SWITCH_ONE_CHUNK:
    return !v || L->n_chunks == 1;
  case CF_CL_SWITCH_STAGES3: /* a third stage beside the plan's two, in the same local memory */
    return !v || (L->n_stages == 2 &&
                  L->bytes + L->stage_floats * 4 <= (int64_t)CF_CL_MMA_LOCAL_BYTES);
  case CF_CL_SWITCH_WGMMA: {
    cf_cl_wgmma_geometry g;
    return !v || cf_cl_wgmma_geometry_of(sh, t->variant == CF_KERNEL_MMA_3XTF32, &g);
  }
  case CF_CL_SWITCH_OFF32: /* the kernel also forms offsets of channels past C and K, up to
                              the last chunk's and the last channel tile's (never used) */
    return !v || (L->n_chunks * t->chunk_channels * sh->h * sh->w <= INT_MAX &&
                  t->grid_n * t->block_n * sh->p * sh->q <= INT_MAX);
  default:
    return 1;
  }
}

/* Where switch i is not forced, sets it to v. */
static void set_unforced(const cf_cl_switches *forced, int sw[CF_CL_SWITCHES], int i, int v) {
  if (!forced || forced->forced[i] < 0)
    sw[i] = v;
}

/* The switches that follow f16 as finally set (forced or not), where they are not forced
 * themselves: the fp16 program's own, on wherever the program can take them (H100, bench/NOTES.md
 * v65, two rounds: mish-mish fp32 (pairs) 8.52 -> 8.01 ms with both, unscale_regs alone 8.42,
 * patch_split alone 8.25; sub-sub-mish fp32 with f16 forced 2.64 -> 2.26); and, for 3xTF32 with
 * resident weights, the pairs program's own k-loop and stores. Sector-aligned stores: the pairs
 * gain by them (H100, v66: 2.24 -> 1.39 ms), the 3xTF32 program spills with them (H200, v47:
 * 1.59 -> 2.27). The k-loop rolled with B by ldmatrix and 32-bit offsets (H200, v67,
 * sub-sub-mish fp32 at 128 registers: 1.34-1.37 ms with the 3xTF32 program's unrolled loop and
 * scalar B, 1.265 with these; an H100, v68, at its 152: 1.37-1.39 with 64-bit offsets,
 * 1.35-1.37 with 32-bit ones). So f16=0 alone gives back 3xTF32 as it was on either device. */
static void switches_follow_f16(const cf_conv_shape *sh, const cf_tile_plan *t,
                                const cf_mma_layout *L, const cf_cl_switches *forced,
                                int sw[CF_CL_SWITCHES]) {
  const int f16 = sw[CF_CL_SWITCH_F16];
  static const int fp16_own[] = {CF_CL_SWITCH_UNSCALE_REGS, CF_CL_SWITCH_PATCH_SPLIT};
  for (size_t j = 0; j < sizeof fp16_own / sizeof fp16_own[0]; ++j)
    set_unforced(forced, sw, fp16_own[j], switch_applies(fp16_own[j], 1, sh, t, L, f16));
  if (t->variant != CF_KERNEL_MMA_3XTF32 || !L->resident)
    return;
  set_unforced(forced, sw, CF_CL_SWITCH_ALIGNED_STORES, f16);
  if (!f16)
    return;
  set_unforced(forced, sw, CF_CL_SWITCH_K_UNROLLED, 0);
  set_unforced(forced, sw, CF_CL_SWITCH_LDSM, switch_applies(CF_CL_SWITCH_LDSM, 1, sh, t, L, f16));
  set_unforced(forced, sw, CF_CL_SWITCH_OFF32,
               switch_applies(CF_CL_SWITCH_OFF32, 1, sh, t, L, f16));
}

cf_cl_tuning cf_cl_tuning_of(int is_nvidia, unsigned long long global_mem_bytes) {
  return is_nvidia && global_mem_bytes <= CF_CL_H100_TUNING_MAX_MEMORY ? CF_CL_TUNED_H100
                                                                      : CF_CL_TUNED_H200;
}

int cf_cl_h100_defaults_apply(cf_cl_tuning tuning, int resident) {
  return tuning == CF_CL_TUNED_H100 && resident;
}

unsigned cf_cl_mma_switches(const cf_conv_shape *sh, const cf_tile_plan *t, cf_cl_tuning tuning,
                            const cf_cl_switches *forced, int sw[CF_CL_SWITCHES]) {
  const int split = t->variant == CF_KERNEL_MMA_3XTF32;
  const cf_mma_layout L = cf_plan_mma_layout(sh, t);
  /* B fragments by ldmatrix where the weights are streamed (H200, T1/T2, bench/NOTES.md v45:
   * mish-mish tf32 6.38 -> 6.17 ms; it cost sub-sub-mish tf32 (resident) 3%). Where K is one
   * chunk the chunk loop is compiled out for 3xTF32 (v45: sub-sub-mish fp32 1.85 -> 1.71) and,
   * with its k-loop unrolled whole, for one TF32 product with resident weights (H200, v67:
   * sub-sub-mish tf32 1.118 -> 1.054 ms, one chunk alone 1.075; v45 and v46 had measured each
   * slower, before the sector-aligned stores and 32-bit offsets). Elsewhere the k-loop is
   * unrolled whole except for one TF32 product with resident weights (H200, v46: mish-mish
   * tf32 -3%, fp32 -5%, sub-sub-mish fp32 -7%). */
  const int one_chunk = L.n_chunks == 1 && (split || L.resident);
  sw[CF_CL_SWITCH_LDSM] = !L.resident;
  sw[CF_CL_SWITCH_ONE_CHUNK] = one_chunk;
  sw[CF_CL_SWITCH_K_UNROLLED] = split || !L.resident || one_chunk;
  /* the output in sector-aligned runs for one product with resident weights (H200, NOTES
   * v47): sub-sub-mish tf32 1.43 -> 1.32 ms (L2 at 75% of its peak before, mostly
   * partial-sector writes); 3xTF32 there 1.59 -> 2.27 and mish-mish tf32 5.05 -> 5.25 (spills
   * at their register caps). 3xTF32 with resident weights takes them as fp16 pairs, below. */
  sw[CF_CL_SWITCH_ALIGNED_STORES] = !split && L.resident;
  /* offsets within an image in 32 bits where an image's input and output both fit, but for
   * 3xTF32 with resident weights (H200, bench/NOTES.md v52: sub-sub-mish tf32 1.20 -> 1.12 ms
   * with it and the bias start; sub-sub-mish fp32 1.64 without it, 1.77 with it; its pairs
   * take them: switches_follow_f16) */
  sw[CF_CL_SWITCH_OFF32] =
      !(split && L.resident) && switch_applies(CF_CL_SWITCH_OFF32, 1, sh, t, &L, 0);
  /* products on fp16 tensor cores (conv2d_mma.cl's CFM_F16: weights scaled and packed per
   * call, a range guard with a TF32 / 3xTF32 rerun) as pairs for 3xTF32: with streamed weights
   * (H200, bench/NOTES.md v54: mish-mish fp32 11.3 -> 9.0 ms) and with resident weights, whose
   * pairs take their own k-loop and stores (switches_follow_f16): sub-sub-mish fp32 1.60 ->
   * 1.27 ms on the H200 (v67), 1.74 -> 1.36 on the H100 (v66, v68). One TF32 product stays on TF32
   * (v54: tf32 4.89 -> 4.99, tf32 resident 1.11 -> 1.36). */
  sw[CF_CL_SWITCH_F16] = split;
  /* unscale_regs and patch_split (and resident pairs' k-loop and stores) follow f16 as
   * finally set: switches_follow_f16, after the forced ones */
  sw[CF_CL_SWITCH_UNSCALE_REGS] = sw[CF_CL_SWITCH_PATCH_SPLIT] = 0;
  /* the split patch's words across channel pairs (conv2d_mma.cl's CFM_CHANNEL_PAIRS: no prmt
   * in the k-loop or the split): forced only, H100 sub-sub-mish fp32 1.35-1.38 -> 1.615 ms with
   * it (bench/NOTES.md v89, v92) */
  sw[CF_CL_SWITCH_CHANNEL_PAIRS] = 0;
  /* a third stage in the ring (the copies for the stage computed next then land one
   * iteration earlier): forced only; an H100 measured no change (sub-sub-mish fp32,
   * bench/NOTES.md v68 (a)), the H200 has not run it */
  sw[CF_CL_SWITCH_STAGES3] = 0;
  /* the patch's copies with an L2 evict-last hint (conv2d_mma.cl's CFM_INPUT_EVICT_LAST): it
   * takes away most of the slow launches of sub-sub-mish fp32 on an H100 (DRAM reads 277-350 ->
   * 276-323 MB, p90 1.52-1.57 -> 1.38-1.45 ms) but not its median: -1.2..-3.9% in one call,
   * +0.7..+2.9% in the next (bench/NOTES.md v96); forced only until an H200 measures it */
  sw[CF_CL_SWITCH_EVICT_LAST] = 0;
  /* the wgmma program (kernels_cl/conv2d_wgmma.cl) where it takes the shape and fills at
   * least 3/4 of its tile in both N (K of its 128 or 64 channels) and K (the C R row channels
   * of their whole 16-row chunks), but for the pairs (3xTF32's accuracy) where the mma.sync
   * program's weights are resident and its own are not. H100: mish-mish tf32 4.58-4.62 ->
   * 2.45-2.55 ms, fp32 7.99-8.01 -> 5.0-5.3 (bench/NOTES.md v69, v71); sub-sub-mish (8 x 3 row
   * channels in two chunks, 64 channels) tf32 1.20-1.22 -> 1.11 (v74), its pairs 1.36-1.53
   * (mma.sync, most launches 1.33-1.36, some 1.5-1.6) -> 1.34-1.35 with their weights resident
   * in persistent groups (v99; 1.46-1.48 streamed). Smaller problems and partly filled tiles
   * have not been measured. */
  cf_cl_wgmma_geometry wg;
  const int64_t row_channels = sh->c * sh->r, chunk_rows = (row_channels + 15) / 16 * 16;
  sw[CF_CL_SWITCH_WGMMA] = cf_cl_wgmma_geometry_of(sh, split, &wg) && 4 * sh->k >= 3 * wg.bn &&
                           4 * row_channels >= 3 * chunk_rows &&
                           !(split && L.resident && !wg.resident);
  /* the H100's resident-weight programs (bench/NOTES.md v63, two rounds in each of five calls):
   * sub-sub-mish tf32 1.35 -> 1.21 ms with 64-bit offsets, the chunk loop kept and the k-loop
   * by two (there one chunk compiled out measured 1.28, the whole unroll 1.52; the H200 runs
   * the other way on all three, v52, v67), fp32's 3xTF32 2.26-2.38 -> 1.96-2.06 with the
   * k-loop rolled and B by ldmatrix (the rolled loop cost the H200's 3xTF32 7%, v48);
   * mish-mish measured no change or worse either way */
  if (cf_cl_h100_defaults_apply(tuning, L.resident)) {
    if (split) {
      sw[CF_CL_SWITCH_K_UNROLLED] = 0;
      sw[CF_CL_SWITCH_LDSM] = switch_applies(CF_CL_SWITCH_LDSM, 1, sh, t, &L, 0);
    } else {
      sw[CF_CL_SWITCH_OFF32] = sw[CF_CL_SWITCH_ONE_CHUNK] = sw[CF_CL_SWITCH_K_UNROLLED] = 0;
    }
  }

  unsigned refused = 0;
  for (int i = 0; forced && i < CF_CL_SWITCHES; ++i) {
    if (forced->forced[i] < 0)
      continue;
    /* f16, forced or not, is settled before the switches that depend on it */
    if (switch_applies(i, forced->forced[i], sh, t, &L, sw[CF_CL_SWITCH_F16]))
      sw[i] = forced->forced[i];
    else
      refused |= 1u << i;
  }
  switches_follow_f16(sh, t, &L, forced, sw);
  /* channel pairs are a form of the split patch: without it (f16 or patch_split off) none */
  if (sw[CF_CL_SWITCH_CHANNEL_PAIRS] && !(sw[CF_CL_SWITCH_F16] && sw[CF_CL_SWITCH_PATCH_SPLIT])) {
    sw[CF_CL_SWITCH_CHANNEL_PAIRS] = 0;
    refused |= 1u << CF_CL_SWITCH_CHANNEL_PAIRS;
  }
  return refused;
}

int cf_cl_mma_options(const cf_conv_shape *sh, const cf_tile_plan *t, const cf_epilogue *epi,
                      const char *asm_kw, int max_registers, const int sw[CF_CL_SWITCHES],
                      char *buf, size_t len) {
  const int split = t->variant == CF_KERNEL_MMA_3XTF32;
  const cf_mma_layout L = cf_plan_mma_layout(sh, t);
  /* 16-byte weight copies: every chunk row starts 16-byte aligned in the (aligned) buffer */
  const int w16 = !L.resident && sh->gemm_k % 4 == 0 && L.kc % 4 == 0;
  const int p16 = patch_copies_16(sh);
  const int unscale_regs_meant =
      switch_applies(CF_CL_SWITCH_UNSCALE_REGS, 1, sh, t, &L, sw[CF_CL_SWITCH_F16]);
  const int patch_split_meant =
      switch_applies(CF_CL_SWITCH_PATCH_SPLIT, 1, sh, t, &L, sw[CF_CL_SWITCH_F16]);

  size_t used = 0;
  const int n = snprintf(buf, len, "-DCF_ASM=%s", asm_kw);
  if (n < 0 || (size_t)n >= len)
    return 0;
  used = (size_t)n;
  return cf_cl_opt_append(buf, len, &used, "CF_MMA_KERNEL", 1) &&
         cf_cl_opt_append(buf, len, &used, "CFM_BM", t->block_m) &&
         cf_cl_opt_append(buf, len, &used, "CFM_BN", t->block_n) &&
         cf_cl_opt_append(buf, len, &used, "CFM_WM", t->warp_m) &&
         cf_cl_opt_append(buf, len, &used, "CFM_WN", t->warp_n) &&
         cf_cl_opt_append(buf, len, &used, "CFM_SPLIT", split) &&
         cf_cl_opt_append(buf, len, &used, "CFM_R", (int)sh->r) &&
         cf_cl_opt_append(buf, len, &used, "CFM_S", (int)sh->s) &&
         cf_cl_opt_append(buf, len, &used, "CFM_SW", (int)sh->stride_w) &&
         cf_cl_opt_append(buf, len, &used, "CFM_DW", (int)sh->dil_w) &&
         cf_cl_opt_append(buf, len, &used, "CFM_PW", (int)L.patch_width) &&
         cf_cl_opt_append(buf, len, &used, "CFM_CC", t->chunk_channels) &&
         cf_cl_opt_append(buf, len, &used, "CFM_KC", (int)L.kc) &&
         cf_cl_opt_append(buf, len, &used, "CFM_KCP", (int)L.kcp) &&
         cf_cl_opt_append(buf, len, &used, "CFM_PATCH_PITCH", (int)L.patch_pitch) &&
         cf_cl_opt_append(buf, len, &used, "CFM_ZERO_BASE", (int)L.zero_base) &&
         cf_cl_opt_append(buf, len, &used, "CFM_PATCH_FLOATS", (int)L.patch_floats) &&
         cf_cl_opt_append(buf, len, &used, "CFM_RESIDENT", L.resident) &&
         cf_cl_opt_append(buf, len, &used, "CFM_W_PITCH", (int)L.w_pitch) &&
         cf_cl_opt_append(buf, len, &used, "CFM_W_SWIZZLE", L.w_swizzled) &&
         cf_cl_opt_append(buf, len, &used, "CFM_WEIGHT_FLOATS", (int)L.weight_floats) &&
         cf_cl_opt_append(buf, len, &used, "CFM_STAGE_FLOATS", (int)L.stage_floats) &&
         cf_cl_opt_append(buf, len, &used, "CFM_STAGES",
                          (int)L.n_stages + sw[CF_CL_SWITCH_STAGES3]) &&
         cf_cl_opt_append(buf, len, &used, "CFM_W16", w16) &&
         cf_cl_opt_append(buf, len, &used, "CFM_P16", p16) &&
         cf_cl_opt_append(buf, len, &used, "CFM_LDSM", sw[CF_CL_SWITCH_LDSM]) &&
         cf_cl_opt_append(buf, len, &used, "CFM_ONE_CHUNK", sw[CF_CL_SWITCH_ONE_CHUNK]) &&
         cf_cl_opt_append(buf, len, &used, "CFM_K_UNROLLED", sw[CF_CL_SWITCH_K_UNROLLED]) &&
         cf_cl_opt_append(buf, len, &used, "CFM_ALIGNED_STORES", sw[CF_CL_SWITCH_ALIGNED_STORES]) &&
         cf_cl_opt_append(buf, len, &used, "CFM_OFF32", sw[CF_CL_SWITCH_OFF32]) &&
         cf_cl_opt_append(buf, len, &used, "CFM_F16", sw[CF_CL_SWITCH_F16]) &&
         /* left out where the program cannot take them (switch_applies: fp16 only), so such
          * builds, an fp16 plan's rerun among them, share one cache key */
         (!unscale_regs_meant ||
          cf_cl_opt_append(buf, len, &used, "CFM_UNSCALE_REGS", sw[CF_CL_SWITCH_UNSCALE_REGS])) &&
         (!patch_split_meant ||
          cf_cl_opt_append(buf, len, &used, "CFM_PATCH_SPLIT", sw[CF_CL_SWITCH_PATCH_SPLIT])) &&
         /* only where on: the programs without it keep the options (and cache keys) they had */
         (!(sw[CF_CL_SWITCH_CHANNEL_PAIRS] && sw[CF_CL_SWITCH_F16]) ||
          cf_cl_opt_append(buf, len, &used, "CFM_CHANNEL_PAIRS", 1)) &&
         (!(sw[CF_CL_SWITCH_EVICT_LAST] && p16) ||
          cf_cl_opt_append(buf, len, &used, "CFM_INPUT_EVICT_LAST", 1)) &&
         cf_cl_opt_append(buf, len, &used, "CF_MAX_REGISTERS", max_registers) &&
         cf_cl_opt_append_epilogue(buf, len, &used, sh->has_bias, epi);
}

int cf_cl_mma_options_as_rerun(char *buf, size_t len) {
  size_t used = strlen(buf);
  return cf_cl_opt_append(buf, len, &used, "CFM_RERUN", 1);
}

/* The patch row pitch: 128 + S - 1 columns rounded up to whole 16-byte copies, then up to 4
 * mod 32 floats, where the A loads (channels 2t, 2t + 1, 2t + 8, 2t + 9 at pixel g) of a warp
 * fall in 32 distinct banks. */
static int wgmma_pitch(int s) {
  int pitch = (128 + s - 1 + 3) / 4 * 4;
  while (pitch % 32 != 4)
    pitch += 4;
  return pitch;
}

int cf_cl_wgmma_geometry_of(const cf_conv_shape *sh, int pairs, cf_cl_wgmma_geometry *g) {
  if (sh->stride_h != 1 || sh->stride_w != 1 || sh->dil_h != 1 || sh->dil_w != 1 ||
      sh->w % 4 != 0 || sh->pad_w % 4 != 0 || sh->p < 1 || sh->q < 1 || sh->s < 1 || sh->s > 16)
    return 0;
  cf_cl_wgmma_geometry x;
  x.pairs = pairs != 0;
  /* one product: 128 channels, or 64 where K is no more (half the tile would be zeros) */
  x.bn = x.pairs || sh->k <= 64 ? 64 : 128;
  x.pitch = wgmma_pitch((int)sh->s);
  x.chunk_bytes = (int)sh->s * 2 * x.bn * 16 * (x.pairs ? 2 : 1);
  const int patch_bytes = 16 * x.pitch * 4;
  x.stage_bytes = x.chunk_bytes + patch_bytes;
  const int64_t n_chunks = (sh->c * sh->r + 15) / 16; /* 16 row channels (c, r) each */
  const int64_t q_tiles = (sh->q + 127) / 128, k_tiles = (sh->k + x.bn - 1) / x.bn;
  const int64_t groups = sh->n * sh->p * q_tiles * k_tiles;
  /* the pairs' chunks all resident where they fit beside the two stages' patches (few row
   * channels: sub-sub-mish's 8 x 3 in two chunks), else each chunk's weights streamed with its
   * patch. H100, sub-sub-mish (bench/NOTES.md v99): pairs 1.47 -> 1.34-1.35 ms resident, one
   * product 1.11 -> 1.29-1.30, so that stays streamed. Resident groups count tiles up to the
   * tile count plus one per group, in int. */
  x.resident = x.pairs && n_chunks * x.chunk_bytes + 2 * patch_bytes <= CF_CL_MMA_LOCAL_BYTES &&
               groups <= INT_MAX / 2;
  if (!x.resident && 2 * (int64_t)x.stage_bytes > CF_CL_MMA_LOCAL_BYTES)
    return 0;
  /* int in the kernel: group ids, tile indices, channel indices across the batch (n C, n K
   * up to the last channel tile), the layout kernel's positions within a channel's chunks;
   * element offsets are 64-bit */
  if (groups > INT_MAX || sh->n * (sh->c + 16) > INT_MAX || sh->n * k_tiles * x.bn > INT_MAX ||
      n_chunks * 16 * sh->s > INT_MAX)
    return 0;
  x.n_chunks = (int)n_chunks;
  x.q_tiles = (int)q_tiles;
  x.k_tiles = (int)k_tiles;
  x.pair_stores = sh->q % 2 == 0;
  x.aligned_stores = 0;
  x.groups = groups;
  x.laid_bytes = (long long)k_tiles * n_chunks * x.chunk_bytes;
  *g = x;
  return 1;
}

int cf_cl_wgmma_options(const cf_conv_shape *sh, const cf_cl_wgmma_geometry *g,
                        const cf_epilogue *epi, const char *asm_kw, int max_registers,
                        char *buf, size_t len) {
  const int n = snprintf(buf, len, "-DCF_ASM=%s", asm_kw);
  if (n < 0 || (size_t)n >= len)
    return 0;
  size_t used = (size_t)n;
  return cf_cl_opt_append(buf, len, &used, "CF_MMA_KERNEL", 1) &&
         cf_cl_opt_append(buf, len, &used, "CF_WGMMA_KERNEL", 1) &&
         cf_cl_opt_append(buf, len, &used, "CFW_PAIRS", g->pairs) &&
         cf_cl_opt_append(buf, len, &used, "CFW_BN", g->bn) &&
         cf_cl_opt_append(buf, len, &used, "CFW_S", (int)sh->s) &&
         cf_cl_opt_append(buf, len, &used, "CFW_PITCH", g->pitch) &&
         cf_cl_opt_append(buf, len, &used, "CFW_RESIDENT", g->resident) &&
         cf_cl_opt_append(buf, len, &used, "CFW_PAIR_STORES", g->pair_stores) &&
         cf_cl_opt_append(buf, len, &used, "CFW_ALIGNED_STORES", g->aligned_stores) &&
         cf_cl_opt_append(buf, len, &used, "CFW_C", (int)sh->c) &&
         cf_cl_opt_append(buf, len, &used, "CFW_H", (int)sh->h) &&
         cf_cl_opt_append(buf, len, &used, "CFW_W", (int)sh->w) &&
         cf_cl_opt_append(buf, len, &used, "CFW_K", (int)sh->k) &&
         cf_cl_opt_append(buf, len, &used, "CFW_P", (int)sh->p) &&
         cf_cl_opt_append(buf, len, &used, "CFW_Q", (int)sh->q) &&
         cf_cl_opt_append(buf, len, &used, "CFW_R", (int)sh->r) &&
         cf_cl_opt_append(buf, len, &used, "CFW_PAD_H", (int)sh->pad_h) &&
         cf_cl_opt_append(buf, len, &used, "CFW_PAD_W", (int)sh->pad_w) &&
         cf_cl_opt_append(buf, len, &used, "CF_MAX_REGISTERS", max_registers) &&
         cf_cl_opt_append_epilogue(buf, len, &used, sh->has_bias, epi);
}
