/* The OpenCL tensor-core kernel (kernels_cl/conv2d_mma.cl) compiles for the plans the planner
 * makes on an H200 through NVIDIA's OpenCL, with exactly the build options the OpenCL backend
 * would pass there (backends/opencl/build_options.c). Only NVIDIA's OpenCL ever builds this
 * kernel (PoCL never sees -DCF_MMA_KERNEL), so without this suite CI would never compile it.
 * clang (OpenCL C 1.2 -> NVPTX, with a prelude mapping the few OpenCL built-ins the kernel
 * calls onto NVVM's) and then ptxas (sm_90) stand in for NVIDIA's compiler: they catch syntax
 * and type errors, bad inline PTX, the layout's #error checks and local memory over 48 KB; not
 * register counts (clang's code is not NVIDIA's) and nothing about results, which only the GPU
 * machine's checks (bench/gpu_session.sh clcheck, check --backend opencl) show. Skips, saying
 * why, where clang has no NVPTX target or ptxas is missing. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_options.h"
#include "cf_constants.h"
#include "convfuse/convfuse.h"
#include "epilogue.h"
#include "planner.h"
#include "shape.h"
#include "test_util.h"

#ifndef CF_SOURCE_DIR
#error "CF_SOURCE_DIR (the source tree) must be defined"
#endif
#ifndef CF_GEN_DIR_STR
#error "CF_GEN_DIR_STR (the generated headers) must be defined"
#endif
#ifndef CF_PTXAS
#define CF_PTXAS "ptxas"
#endif

#define KB 1024u

/* What the OpenCL backend reports for an H200 whose tensor-core probe and register-cap rebuild
 * passed (backends/opencl/opencl.c, cl_init). */
static cf_device_caps caps_h200_opencl(int force_tile) {
  cf_device_caps c = {.kind = CF_DEVICE_GPU, .compute_units = 132,
                      .shared_mem_per_block = 48 * KB, .shared_mem_per_block_max = 48 * KB,
                      .max_threads_per_block = 1024, .simd_width = 32, .has_tf32_mma = 1,
                      .mma_max_threads = 256, .mma_split_resident_max_threads = 128,
                      .mma_tall_warps = 1, .mma_weight_swizzle = 1, .mma_registers_capped = 1, .l2_bytes = 60u << 20,
                      .global_mem_bytes = 141ull << 30, .max_alloc_bytes = 35ull << 30,
                      .force_tile = force_tile,
                      .kernel_variants = (1u << CF_KERNEL_FFMA_TILED) |
                                         (1u << CF_KERNEL_MMA_TF32) |
                                         (1u << CF_KERNEL_MMA_3XTF32)};
  return c;
}

/* The kernel's source as the OpenCL backend's program has it (the generated constants, the
 * epilogue, the kernel; their #include lines dropped, as cmake/EmbedFiles.cmake concatenates
 * them), after a prelude for clang's NVPTX target, which has no OpenCL built-in library. */
static const char prelude[] =
    "#define get_local_id(d) ((size_t)__nvvm_read_ptx_sreg_tid_x())\n"
    "#define get_group_id(d) ((size_t)((d) == 0 ? __nvvm_read_ptx_sreg_ctaid_x()"
    " : __nvvm_read_ptx_sreg_ctaid_y()))\n"
    "#define get_num_groups(d) ((size_t)__nvvm_read_ptx_sreg_nctaid_x())\n"
    "#define barrier(f) __syncthreads()\n"
    "#define fmin(a, b) __builtin_fminf(a, b)\n"
    "#define fmax(a, b) __builtin_fmaxf(a, b)\n"
    "#define fma(a, b, c) __builtin_fmaf(a, b, c)\n"
    "#define clamp(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))\n"
    "#define mul_hi(a, b) ((uint)(((ulong)(a) * (ulong)(b)) >> 32))\n";

static int append_file(FILE *out, const char *path) {
  FILE *in = fopen(path, "r");
  if (!in)
    return 0;
  char line[1024];
  while (fgets(line, sizeof line, in))
    if (strncmp(line, "#include \"", 10) != 0)
      fputs(line, out);
  fclose(in);
  return 1;
}

/* A temporary OpenCL C file and the PTX file clang writes beside it. */
typedef struct temp_source {
  char path[32];
  char ptx[40];
} temp_source;

static FILE *temp_source_open(temp_source *ts) {
  strcpy(ts->path, "/tmp/cf_cl_mma_XXXXXX");
  const int fd = mkstemp(ts->path);
  if (fd < 0)
    return NULL;
  snprintf(ts->ptx, sizeof ts->ptx, "%s.ptx", ts->path);
  return fdopen(fd, "w");
}

static void temp_source_remove(const temp_source *ts) {
  unlink(ts->path);
  unlink(ts->ptx);
}

/* clang -> PTX -> ptxas of ts with options; 0 on success, the output's tail in log. PTX ISA
 * 7.0 (cp.async's), but 7.4 for the patch's L2 hint (createpolicy, .L2::cache_hint: NVIDIA's
 * OpenCL wrote 9.0 on driver 580) */
static int compile(const temp_source *ts, const char *options, char *log, size_t log_len) {
  char cmd[4096];
  const char *isa = strstr(options, "-DCFM_INPUT_EVICT_LAST=1") ? "+ptx74" : "+ptx70";
  snprintf(cmd, sizeof cmd,
           "clang -x cl -cl-std=CL1.2 -target nvptx64-nvidia-nvcl -O2 -S -w -o %s %s %s "
           "-Xclang -target-feature -Xclang %s -Xclang -target-cpu -Xclang sm_80 2>&1 && "
           "%s -arch=sm_90 -o /dev/null %s 2>&1",
           ts->ptx, ts->path, options, isa, CF_PTXAS, ts->ptx);
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  size_t used = 0;
  log[0] = '\0';
  char line[512];
  while (fgets(line, sizeof line, p)) {
    size_t n = strlen(line);
    if (used + n >= log_len) /* start over: the last lines say what failed */
      used = 0;
    memcpy(log + used, line, n + 1);
    used += n;
  }
  return pclose(p);
}

/* Whether clang can target NVPTX and ptxas runs: a trivial kernel through both. */
static int toolchain_ok(char *why, size_t len) {
  temp_source ts;
  FILE *f = temp_source_open(&ts);
  if (!f) {
    snprintf(why, len, "mkstemp failed");
    return 0;
  }
  fputs("__kernel void k(__global float *x) { x[0] = 1.0f; }\n", f);
  fclose(f);
  char log[2048];
  const int rc = compile(&ts, "", log, sizeof log);
  temp_source_remove(&ts);
  if (rc != 0)
    snprintf(why, len, "clang (OpenCL C -> NVPTX) or ptxas unavailable: %.300s", log);
  return rc == 0;
}

/* A program's source as the OpenCL backend has it (the constants, the shared headers, then
 * `kernel`, a file under kernels_cl/), after the prelude and `more` (more of it, or ""). */
static void write_program_source(temp_source *ts, const char *more, const char *kernel) {
  FILE *out = temp_source_open(ts);
  cr_assert(out != NULL, "mkstemp");
  fputs(prelude, out);
  fputs(more, out);
  char path[512];
  snprintf(path, sizeof path, "%s/kernels_cl/%s", CF_SOURCE_DIR, kernel);
  cr_assert(append_file(out, CF_GEN_DIR_STR "/cf_constants.h") &&
                append_file(out, CF_SOURCE_DIR "/kernels_cl/cf_epilogue.h") &&
                append_file(out, CF_SOURCE_DIR "/kernels_cl/cf_f16_scale.h") &&
                append_file(out, path),
            "cannot read the kernel sources under %s", CF_SOURCE_DIR);
  fclose(out);
}

/* The tensor-core kernel's program source. */
static void write_kernel_source(temp_source *ts) { write_program_source(ts, "", "conv2d_mma.cl"); }

typedef struct case_shape {
  const char *name;
  int64_t n, c, h, w, k, r, s, stride, pad, dil;
} case_shape;

/* The two workloads at small batch (the plans do not depend on it beyond the grid), the odd
 * shapes of the GPU machine's clcheck, and shapes with 16-byte patch copies. */
static const case_shape shapes[] = {
    {"sub-sub-mish", 2, 8, 256, 256, 64, 3, 3, 1, 0, 1},
    {"mish-mish", 1, 64, 256, 256, 128, 3, 3, 1, 0, 1},
    {"odd width", 1, 8, 9, 37, 64, 3, 3, 1, 0, 1},
    {"3 channels pad 1", 2, 3, 11, 70, 20, 3, 3, 1, 1, 1},
    {"5x5 stride 2 pad 2", 1, 5, 13, 41, 33, 5, 5, 2, 2, 1},
    {"1x1", 3, 16, 6, 50, 72, 1, 1, 1, 0, 1},
    {"1 channel dilation 2", 1, 1, 7, 131, 9, 3, 3, 1, 1, 2},
    {"several chunks", 2, 64, 5, 40, 128, 3, 3, 1, 0, 1},
    {"24 channels pad 1", 1, 24, 8, 66, 100, 3, 3, 1, 1, 1},
    {"5x5 stride 2 width 44", 1, 5, 13, 44, 33, 5, 5, 2, 0, 1},
    {"pad 4", 1, 3, 9, 40, 16, 3, 3, 1, 4, 1},
    {"20 channels pad 4", 2, 20, 6, 68, 40, 3, 3, 1, 4, 1},
    /* one image of 64 x 8192 x 4100 = 2^31 + 2M input elements: offsets in 64 bits */
    {"image past 2^31 elements", 1, 64, 8192, 4100, 8, 3, 3, 1, 0, 1},
};

/* Every switch at its default (-1), however many switches there are. */
static cf_cl_switches defaults_only(void) {
  cf_cl_switches s;
  for (int i = 0; i < CF_CL_SWITCHES; ++i)
    s.forced[i] = -1;
  return s;
}

/* The defaults with switch s forced to v. */
static cf_cl_switches one_forced(int s, int v) {
  cf_cl_switches f = defaults_only();
  f.forced[s] = v;
  return f;
}

/* Switch s (meaningful only in fp16 programs) forced on plan t of shape sh with f16=0 is
 * refused and keeps 0; forced with f16=1 it is taken. */
static void expect_only_with_f16(const cf_conv_shape *sh, const cf_tile_plan *t, int s) {
  int sw[CF_CL_SWITCHES];
  cf_cl_switches forced = one_forced(s, 1);
  forced.forced[CF_CL_SWITCH_F16] = 0;
  cr_expect(cf_cl_mma_switches(sh, t, CF_CL_TUNED_H200, &forced, sw) == 1u << s && sw[s] == 0,
            "%s=1 taken by a program without fp16", cf_cl_switch_names[s]);
  forced.forced[CF_CL_SWITCH_F16] = 1;
  cr_expect(cf_cl_mma_switches(sh, t, CF_CL_TUNED_H200, &forced, sw) == 0 && sw[s] == 1,
            "%s=1 refused with f16=1", cf_cl_switch_names[s]);
}

Test(cl_mma_kernel, compiles_for_every_plan_the_opencl_backend_makes_on_an_h200,
     .timeout = 600) {
  char why[512];
  if (!toolchain_ok(why, sizeof why))
    cr_skip("%s", why);
  temp_source ts;
  write_kernel_source(&ts);
  const cf_op ops[2] = {{CF_OP_MISH, 0.0f}, {CF_OP_RELU, 0.0f}};
  const cf_math maths[2] = {CF_MATH_FP32, CF_MATH_TF32};
  static char seen[256][1024]; /* ~70 distinct builds today */
  int n_seen = 0, n_built = 0;
  /* flip -1: the measured switches; flip i: switch i turned over where the program can take
   * it (CONVFUSE_OPENCL_SWITCHES' A/B builds), on the workloads' own plans */
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; ++i)
    for (int force = 0; force <= CFK_MMA_TILE_COUNT; ++force) /* the planner's pick, then each */
      for (int m = 0; m < 2; ++m)
        for (int flip = -1; flip < (i < 2 && force == 0 ? CF_CL_SWITCHES : 0); ++flip) {
          const case_shape *cs = &shapes[i];
          const cf_conv2d_desc d = {cs->n, cs->c, cs->h, cs->w, cs->k, cs->r, cs->s,
                                    cs->stride, cs->stride, cs->pad, cs->pad, cs->dil, cs->dil,
                                    1};
          cf_conv_shape sh;
          cr_assert(cf_shape_resolve("test", &d, &sh) == CF_OK, "%s: %s", cs->name,
                    cf_last_error());
          cf_epilogue epi;
          cf_epilogue_fold(ops, 2, &epi);
          const cf_device_caps caps = caps_h200_opencl(force);
          cf_tile_plan t;
          if (cf_plan_tiles(&sh, &epi, maths[m], &caps, &t) != CF_OK ||
              (t.variant != CF_KERNEL_MMA_TF32 && t.variant != CF_KERNEL_MMA_3XTF32))
            continue; /* FFMA, or a forced tile that does not apply */
          int sw[CF_CL_SWITCHES];
          cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, sw);
          if (flip >= 0) {
            const cf_cl_switches forced = one_forced(flip, !sw[flip]);
            if (cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &forced, sw) != 0)
              continue; /* this program cannot take it */
          }
          /* an fp16 program comes with its TF32 / 3xTF32 rerun (f16 off, CFM_RERUN) */
          const int with_rerun = sw[CF_CL_SWITCH_F16];
          for (int rerun = 0; rerun <= with_rerun; ++rerun) {
            if (rerun) /* as the backend makes it: fp16's own switches then left out */
              sw[CF_CL_SWITCH_F16] = 0;
            char options[1024];
            cr_assert(
                cf_cl_mma_options(&sh, &t, &epi, "__asm__", 128, sw, options, sizeof options),
                "%s: options do not fit", cs->name);
            if (rerun)
              cr_assert(cf_cl_mma_options_as_rerun(options, sizeof options));
            int dup = 0;
            for (int j = 0; j < n_seen && !dup; ++j)
              dup = strcmp(seen[j], options) == 0;
            if (dup)
              continue;
            if (n_seen < 256)
              strcpy(seen[n_seen++], options);
            char log[4096];
            const int rc = compile(&ts, options, log, sizeof log);
            cr_expect(rc == 0,
                      "[%s, %s, CONVFUSE_TILE=%d: tile %dx%d warp %dx%d] the tensor-core kernel "
                      "does not compile with\n  %s\n%s",
                      cs->name, maths[m] == CF_MATH_TF32 ? "tf32" : "fp32", force, t.block_m,
                      t.block_n, t.warp_m, t.warp_n, options, log);
            ++n_built;
          }
        }
  temp_source_remove(&ts);
  cr_log_info("%d distinct tensor-core builds compiled", n_built);
  /* the shapes reach every switch the host sets: tall warps, ldmatrix, one-chunk 3xTF32
   * builds, whole unrolls, 4-byte and 16-byte patch and weight copies, T3's 32 x 16 warps,
   * swizzled weights, sector-aligned stores, offsets in 64 and in 32 bits, fp16 and its rerun,
   * a third stage, channel pairs, the patch's evict-last hint */
  const char *want[] = {"-DCFM_WM=64",         "-DCFM_WN=16",         "-DCFM_LDSM=1",
                        "-DCFM_ONE_CHUNK=1",   "-DCFM_K_UNROLLED=0",  "-DCFM_P16=0",
                        "-DCFM_P16=1",         "-DCFM_W16=0 ",        "-DCFM_W16=1",
                        "-DCFM_W_SWIZZLE=1",   "-DCFM_ALIGNED_STORES=1", "-DCFM_OFF32=0",
                        "-DCFM_OFF32=1",       "-DCFM_F16=1",         "-DCFM_RERUN=1",
                        "-DCFM_UNSCALE_REGS=0", "-DCFM_UNSCALE_REGS=1", "-DCFM_PATCH_SPLIT=0",
                        "-DCFM_PATCH_SPLIT=1",   "-DCFM_STAGES=3",      "-DCFM_CHANNEL_PAIRS=1",
                        "-DCFM_INPUT_EVICT_LAST=1"};
  for (size_t w = 0; w < sizeof want / sizeof want[0]; ++w) {
    int found = 0;
    for (int j = 0; j < n_seen && !found; ++j)
      found = strstr(seen[j], want[w]) != NULL;
    cr_expect(found, "no build with %s among the %d: the shapes no longer cover it", want[w],
              n_seen);
  }
}

/* The planner's tensor-core plan for shapes[i] in math m on the H200 caps (tile force_tile - 1
 * if not 0). */
static void h200_plan(size_t i, cf_math m, int force_tile, cf_conv_shape *sh, cf_tile_plan *t) {
  const case_shape *cs = &shapes[i];
  const cf_conv2d_desc d = {cs->n,      cs->c,      cs->h,   cs->w,   cs->k,   cs->r,   cs->s,
                            cs->stride, cs->stride, cs->pad, cs->pad, cs->dil, cs->dil, 1};
  cr_assert(cf_shape_resolve("test", &d, sh) == CF_OK, "%s: %s", cs->name, cf_last_error());
  const cf_op ops[1] = {{CF_OP_MISH, 0.0f}};
  cf_epilogue epi;
  cf_epilogue_fold(ops, 1, &epi);
  const cf_device_caps caps = caps_h200_opencl(force_tile);
  cr_assert(cf_plan_tiles(sh, &epi, m, &caps, t) == CF_OK, "%s: %s", cs->name, cf_last_error());
  cr_assert(t->variant == CF_KERNEL_MMA_TF32 || t->variant == CF_KERNEL_MMA_3XTF32,
            "%s: not planned on tensor cores", cs->name);
}

/* CONVFUSE_OPENCL_SWITCHES' values reach the program where it can take them; where it cannot
 * (one chunk of many, the scalar B loads on swizzled weights, 32-bit offsets past 2^31) the
 * switch keeps its default and its bit comes back for the backend's warning. */
Test(cl_mma_kernel, forced_switches_apply_where_the_program_can_take_them) {
  cf_conv_shape sh;
  cf_tile_plan t;
  int def[CF_CL_SWITCHES], sw[CF_CL_SWITCHES];

  h200_plan(0, CF_MATH_TF32, 0, &sh, &t); /* sub-sub-mish: one chunk, resident weights */
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, def) == 0);
  cf_cl_switches flipped;
  for (int i = 0; i < CF_CL_SWITCHES; ++i)
    flipped.forced[i] = !def[i];
  /* every one but patch_split and channel_pairs (fp16 pairs only: this is one product) and
   * stages3 (T1's two stages and weights take 47 of the 48 KB) */
  const unsigned kept = 1u << CF_CL_SWITCH_PATCH_SPLIT | 1u << CF_CL_SWITCH_STAGES3 |
                        1u << CF_CL_SWITCH_CHANNEL_PAIRS;
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &flipped, sw) == kept,
            "sub-sub-mish tf32 refused a switch, or took patch_split or a third stage");
  for (int i = 0; i < CF_CL_SWITCHES; ++i)
    cr_expect(sw[i] == (kept >> i & 1u ? def[i] : !def[i]), "sub-sub-mish: %s is %d",
              cf_cl_switch_names[i], sw[i]);
  h200_plan(0, CF_MATH_FP32, 0, &sh, &t); /* the same in fp32: pairs, unless f16=0 */
  expect_only_with_f16(&sh, &t, CF_CL_SWITCH_PATCH_SPLIT);
  expect_only_with_f16(&sh, &t, CF_CL_SWITCH_CHANNEL_PAIRS);
  {
    /* channel pairs are a form of the split patch: refused where it is forced off */
    cf_cl_switches no_split = one_forced(CF_CL_SWITCH_CHANNEL_PAIRS, 1);
    no_split.forced[CF_CL_SWITCH_PATCH_SPLIT] = 0;
    cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &no_split, sw) ==
                      1u << CF_CL_SWITCH_CHANNEL_PAIRS &&
                  sw[CF_CL_SWITCH_CHANNEL_PAIRS] == 0 && sw[CF_CL_SWITCH_PATCH_SPLIT] == 0,
              "channel_pairs=1 taken with patch_split=0");
    cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, sw) == 0 &&
                  sw[CF_CL_SWITCH_CHANNEL_PAIRS] == 0,
              "channel_pairs on by default before it is measured");
  }
  const cf_cl_switches third = one_forced(CF_CL_SWITCH_STAGES3, 1); /* T2: 35 KB, 43 with it */
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &third, sw) == 0 &&
                sw[CF_CL_SWITCH_STAGES3] == 1,
            "sub-sub-mish fp32 refused a third stage");
  /* the patch's evict-last hint: forced only (on either device's defaults), and only where the
   * patch goes by 16-byte copies (an odd width's does not) */
  const cf_cl_switches keep_in_l2 = one_forced(CF_CL_SWITCH_EVICT_LAST, 1);
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H100, NULL, sw) == 0 &&
                sw[CF_CL_SWITCH_EVICT_LAST] == 0,
            "evict_last on by default before an H200 measures it");
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &keep_in_l2, sw) == 0 &&
                sw[CF_CL_SWITCH_EVICT_LAST] == 1,
            "sub-sub-mish fp32 refused evict_last");
  h200_plan(2, CF_MATH_FP32, 0, &sh, &t); /* odd width: 4-byte patch copies */
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &keep_in_l2, sw) ==
                    1u << CF_CL_SWITCH_EVICT_LAST &&
                sw[CF_CL_SWITCH_EVICT_LAST] == 0,
            "evict_last taken without 16-byte patch copies");

  h200_plan(1, CF_MATH_TF32, 0, &sh, &t); /* mish-mish: 16 chunks, swizzled streamed weights */
  cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, def);
  cr_assert(def[CF_CL_SWITCH_LDSM] == 1 && def[CF_CL_SWITCH_ONE_CHUNK] == 0,
            "mish-mish tf32 is no longer planned on T0's swizzled weights");
  cf_cl_switches refused_here = one_forced(CF_CL_SWITCH_LDSM, 0);
  refused_here.forced[CF_CL_SWITCH_ONE_CHUNK] = 1;
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &refused_here, sw) ==
                (1u << CF_CL_SWITCH_LDSM | 1u << CF_CL_SWITCH_ONE_CHUNK),
            "mish-mish took ldsm=0 or one_chunk=1");
  cr_expect(sw[CF_CL_SWITCH_LDSM] == 1 && sw[CF_CL_SWITCH_ONE_CHUNK] == 0,
            "refused switches changed");

  /* unscale_regs only where the program is fp16 (mish-mish tf32 is not, unless forced) */
  expect_only_with_f16(&sh, &t, CF_CL_SWITCH_UNSCALE_REGS);

  const size_t big = sizeof shapes / sizeof shapes[0] - 1; /* an image past 2^31 elements */
  h200_plan(big, CF_MATH_TF32, 2, &sh, &t); /* 8 channels: FFMA unless forced */
  const cf_cl_switches off32_on = one_forced(CF_CL_SWITCH_OFF32, 1);
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &off32_on, sw) ==
                    1u << CF_CL_SWITCH_OFF32 &&
                sw[CF_CL_SWITCH_OFF32] == 0,
            "32-bit offsets forced on an image past 2^31 elements");
}

/* The fp16 products (switch f16: scaled, packed weights and a range guard) are the default only
 * where they were measured faster (bench/NOTES.md v54, v66, v67): 3xTF32 as fp16 pairs, with
 * streamed weights (mish-mish fp32) and with resident ones (sub-sub-mish fp32, with their own
 * k-loop and sector-aligned stores), on either device's defaults; one TF32 product stays on
 * TF32. */
Test(cl_mma_kernel, fp16_by_default_only_for_3xtf32) {
  static const struct {
    size_t shape;
    cf_math math;
    int want_h200, want_h100;
  } cases[] = {{0, CF_MATH_FP32, 1, 1},
               {0, CF_MATH_TF32, 0, 0},
               {1, CF_MATH_FP32, 1, 1},
               {1, CF_MATH_TF32, 0, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
    for (int h100 = 0; h100 < 2; ++h100) {
      cf_conv_shape sh;
      cf_tile_plan t;
      int sw[CF_CL_SWITCHES];
      h200_plan(cases[i].shape, cases[i].math, 0, &sh, &t);
      const cf_mma_layout L = cf_plan_mma_layout(&sh, &t);
      const int want = h100 ? cases[i].want_h100 : cases[i].want_h200;
      cr_expect(cf_cl_mma_switches(&sh, &t, h100 ? CF_CL_TUNED_H100 : CF_CL_TUNED_H200, NULL,
                                   sw) == 0);
      cr_expect(sw[CF_CL_SWITCH_F16] == want,
                "%s %s (%s, weights %s, %s's defaults): f16 %d by default, want %d",
                shapes[cases[i].shape].name, cases[i].math == CF_MATH_FP32 ? "fp32" : "tf32",
                cf_kernel_variant_name(t.variant), L.resident ? "resident" : "streamed",
                h100 ? "H100" : "H200", sw[CF_CL_SWITCH_F16], want);
    }
}

/* unscale_regs and patch_split, where not forced, follow f16 as finally set (bench/NOTES.md
 * v65): on in mish-mish fp32's default pairs, off with f16 forced off, on with f16 forced on
 * (unscale_regs alone for one fp16 product), and a forced value wins. */
Test(cl_mma_kernel, fp16_switches_follow_f16) {
  cf_conv_shape sh;
  cf_tile_plan t;
  int sw[CF_CL_SWITCHES];
  h200_plan(1, CF_MATH_FP32, 0, &sh, &t); /* mish-mish fp32: pairs by default */
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, sw) == 0 &&
                sw[CF_CL_SWITCH_UNSCALE_REGS] == 1 && sw[CF_CL_SWITCH_PATCH_SPLIT] == 1,
            "mish-mish fp32's pairs without unscale_regs or patch_split by default");
  const cf_cl_switches f16_off = one_forced(CF_CL_SWITCH_F16, 0);
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &f16_off, sw) == 0 &&
                sw[CF_CL_SWITCH_UNSCALE_REGS] == 0 && sw[CF_CL_SWITCH_PATCH_SPLIT] == 0,
            "fp16's own switches left on in a 3xTF32 program");
  const cf_cl_switches split_off = one_forced(CF_CL_SWITCH_PATCH_SPLIT, 0);
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &split_off, sw) == 0 &&
                sw[CF_CL_SWITCH_UNSCALE_REGS] == 1 && sw[CF_CL_SWITCH_PATCH_SPLIT] == 0,
            "patch_split=0 not taken");

  const cf_cl_switches f16_on = one_forced(CF_CL_SWITCH_F16, 1);
  h200_plan(0, CF_MATH_FP32, 0, &sh, &t); /* sub-sub-mish fp32: resident pairs */
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &f16_on, sw) == 0 &&
                sw[CF_CL_SWITCH_UNSCALE_REGS] == 1 && sw[CF_CL_SWITCH_PATCH_SPLIT] == 1,
            "sub-sub-mish fp32 with f16=1: pairs without fp16's own switches");
  h200_plan(0, CF_MATH_TF32, 0, &sh, &t); /* one product: no pairs to split */
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &f16_on, sw) == 0 &&
                sw[CF_CL_SWITCH_UNSCALE_REGS] == 1 && sw[CF_CL_SWITCH_PATCH_SPLIT] == 0,
            "sub-sub-mish tf32 with f16=1: unscale_regs off or patch_split on");
}

/* 3xTF32 with resident weights runs as pairs by default on either device, with the pairs' own
 * k-loop and stores where those are not forced (bench/NOTES.md v66, v67): sector-aligned runs
 * (pairs 2.24 -> 1.39 ms with them on an H100; 3xTF32 spilled, v47), the k-loop rolled with B
 * by ldmatrix, and 32-bit offsets (v68: the H100 too); f16=0 gives 3xTF32 back as it was
 * on each device, a forced value wins, and streamed weights keep their plain stores. */
Test(cl_mma_kernel, resident_pairs_take_their_own_loop_and_stores) {
  cf_conv_shape sh;
  cf_tile_plan t;
  int sw[CF_CL_SWITCHES];
  h200_plan(0, CF_MATH_FP32, 0, &sh, &t); /* sub-sub-mish fp32: resident weights */
  for (int h100 = 0; h100 < 2; ++h100) {
    const cf_cl_tuning tuning = h100 ? CF_CL_TUNED_H100 : CF_CL_TUNED_H200;
    const char *dev = h100 ? "H100" : "H200";
    cr_expect(cf_cl_mma_switches(&sh, &t, tuning, NULL, sw) == 0 && sw[CF_CL_SWITCH_F16] == 1 &&
                  sw[CF_CL_SWITCH_ALIGNED_STORES] == 1 && sw[CF_CL_SWITCH_K_UNROLLED] == 0 &&
                  sw[CF_CL_SWITCH_LDSM] == 1 && sw[CF_CL_SWITCH_OFF32] == 1,
              "sub-sub-mish fp32 (%s): f16 %d, aligned_stores %d, k_unrolled %d, ldsm %d, off32 "
              "%d by default",
              dev, sw[CF_CL_SWITCH_F16], sw[CF_CL_SWITCH_ALIGNED_STORES],
              sw[CF_CL_SWITCH_K_UNROLLED], sw[CF_CL_SWITCH_LDSM], sw[CF_CL_SWITCH_OFF32]);
    /* 3xTF32 as it ran before the pairs: the H200's k-loop unrolled with scalar B loads, the
     * H100's rolled with ldmatrix; plain stores and 64-bit offsets on both */
    const cf_cl_switches f16_off = one_forced(CF_CL_SWITCH_F16, 0);
    cr_expect(cf_cl_mma_switches(&sh, &t, tuning, &f16_off, sw) == 0 &&
                  sw[CF_CL_SWITCH_ALIGNED_STORES] == 0 && sw[CF_CL_SWITCH_OFF32] == 0 &&
                  sw[CF_CL_SWITCH_K_UNROLLED] == !h100 && sw[CF_CL_SWITCH_LDSM] == h100,
              "3xTF32 (f16=0, %s) kept the pairs' loop or stores", dev);
    const cf_cl_switches plain = one_forced(CF_CL_SWITCH_ALIGNED_STORES, 0);
    cr_expect(cf_cl_mma_switches(&sh, &t, tuning, &plain, sw) == 0 && sw[CF_CL_SWITCH_F16] == 1 &&
                  sw[CF_CL_SWITCH_ALIGNED_STORES] == 0,
              "aligned_stores=0 not taken by the pairs (%s)", dev);
    const cf_cl_switches unrolled = one_forced(CF_CL_SWITCH_K_UNROLLED, 1);
    cr_expect(cf_cl_mma_switches(&sh, &t, tuning, &unrolled, sw) == 0 &&
                  sw[CF_CL_SWITCH_F16] == 1 && sw[CF_CL_SWITCH_K_UNROLLED] == 1 &&
                  sw[CF_CL_SWITCH_LDSM] == 1,
              "k_unrolled=1 not taken by the pairs, or it moved ldsm (%s)", dev);
  }
  h200_plan(1, CF_MATH_FP32, 0, &sh, &t); /* mish-mish fp32: streamed pairs */
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, sw) == 0 &&
                sw[CF_CL_SWITCH_F16] == 1 && sw[CF_CL_SWITCH_ALIGNED_STORES] == 0,
            "mish-mish fp32's streamed pairs store aligned runs by default");
}

/* One TF32 product with resident weights and one K chunk (sub-sub-mish tf32) compiles the chunk
 * loop out and unrolls its k-loop whole on the H200's defaults (bench/NOTES.md v67: 1.118 ->
 * 1.054 ms), not on the H100's (v63: both slower there). */
Test(cl_mma_kernel, one_chunk_tf32_resident_unrolls_on_the_h200) {
  cf_conv_shape sh;
  cf_tile_plan t;
  int sw[CF_CL_SWITCHES];
  h200_plan(0, CF_MATH_TF32, 0, &sh, &t);
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, sw) == 0 &&
                sw[CF_CL_SWITCH_ONE_CHUNK] == 1 && sw[CF_CL_SWITCH_K_UNROLLED] == 1,
            "sub-sub-mish tf32 (H200): one_chunk %d, k_unrolled %d", sw[CF_CL_SWITCH_ONE_CHUNK],
            sw[CF_CL_SWITCH_K_UNROLLED]);
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H100, NULL, sw) == 0 &&
                sw[CF_CL_SWITCH_ONE_CHUNK] == 0 && sw[CF_CL_SWITCH_K_UNROLLED] == 0,
            "sub-sub-mish tf32 (H100): one_chunk %d, k_unrolled %d", sw[CF_CL_SWITCH_ONE_CHUNK],
            sw[CF_CL_SWITCH_K_UNROLLED]);
}

/* The H100's defaults (bench/NOTES.md v63, v66, v67, v68): an NVIDIA device of at most 100 GiB
 * takes them, anything else the H200's; their switches differ only on one TF32 product with
 * resident weights (sub-sub-mish tf32: 64-bit offsets, the chunk loop and the k-loop by two;
 * fp32's pairs differ by their register cap alone), mish-mish's are the same, a forced switch
 * still wins, and the H100's programs compile. */
Test(cl_mma_kernel, h100_defaults_only_on_small_nvidia_devices_and_resident_weights) {
  cr_expect(cf_cl_tuning_of(1, 80ull << 30) == CF_CL_TUNED_H100 &&
                cf_cl_tuning_of(1, 100ull << 30) == CF_CL_TUNED_H100 &&
                cf_cl_tuning_of(1, 141ull << 30) == CF_CL_TUNED_H200 &&
                cf_cl_tuning_of(0, 16ull << 30) == CF_CL_TUNED_H200,
            "tuning by device");
  char why[512];
  const int toolchain = toolchain_ok(why, sizeof why);
  temp_source ts;
  if (toolchain)
    write_kernel_source(&ts);
  const cf_op ops[1] = {{CF_OP_MISH, 0.0f}};
  cf_epilogue epi;
  cf_epilogue_fold(ops, 1, &epi);
  for (size_t i = 0; i < 2; ++i)
    for (int m = 0; m < 2; ++m) {
      const cf_math math = m ? CF_MATH_TF32 : CF_MATH_FP32;
      cf_conv_shape sh;
      cf_tile_plan t;
      int h200[CF_CL_SWITCHES], h100[CF_CL_SWITCHES];
      h200_plan(i, math, 0, &sh, &t);
      cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, h200) == 0);
      cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H100, NULL, h100) == 0);
      int want[CF_CL_SWITCHES];
      memcpy(want, h200, sizeof want);
      if (i == 0 && m)
        want[CF_CL_SWITCH_OFF32] = want[CF_CL_SWITCH_ONE_CHUNK] = want[CF_CL_SWITCH_K_UNROLLED] = 0;
      for (int k = 0; k < CF_CL_SWITCHES; ++k)
        cr_expect(h100[k] == want[k], "[%s | %s] H100 %s = %d, want %d (H200 %d)",
                  shapes[i].name, m ? "tf32" : "fp32", cf_cl_switch_names[k], h100[k], want[k],
                  h200[k]);
      const cf_cl_switches forced = one_forced(CF_CL_SWITCH_OFF32, h200[CF_CL_SWITCH_OFF32]);
      cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H100, &forced, h100);
      cr_expect(h100[CF_CL_SWITCH_OFF32] == h200[CF_CL_SWITCH_OFF32], "forced off32 lost");
      if (!toolchain || i != 0)
        continue;
      cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H100, NULL, h100);
      char options[1024], log[4096];
      cr_assert(cf_cl_mma_options(&sh, &t, &epi, "__asm__", 128, h100, options, sizeof options));
      cr_expect(compile(&ts, options, log, sizeof log) == 0,
                "[sub-sub-mish | %s] the H100's program does not compile with\n  %s\n%s",
                m ? "tf32" : "fp32", options, log);
    }
  if (toolchain)
    temp_source_remove(&ts);
}

/* ---- the wgmma program (kernels_cl/conv2d_wgmma.cl, bench/NOTES.md v69) ---- */

/* Streamed weights take the wgmma program by default where it takes the shape (stride 1, no
 * dilation, W and pad_w multiples of 4, two stages in 48 KB) and fills its tile (C >= 16, K a
 * channel tile or more); resident ones too, but for pairs whose wgmma weights would be
 * streamed; shapes it cannot take refuse it. */
Test(cl_mma_kernel, wgmma_by_default_where_it_takes_the_shape_and_fills_its_tile) {
  for (int m = 0; m < 2; ++m) {
    const cf_math math = m ? CF_MATH_TF32 : CF_MATH_FP32;
    cf_conv_shape sh;
    cf_tile_plan t;
    int sw[CF_CL_SWITCHES];
    h200_plan(1, math, 0, &sh, &t); /* mish-mish: streamed */
    cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, sw);
    cr_expect(sw[CF_CL_SWITCH_WGMMA] == 1, "mish-mish %s: no wgmma", m ? "tf32" : "fp32");
    /* sub-sub-mish: resident, 24 row channels in two chunks; its pairs' wgmma weights
     * resident too */
    h200_plan(0, math, 0, &sh, &t);
    cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, sw);
    cr_expect(sw[CF_CL_SWITCH_WGMMA] == 1, "sub-sub-mish %s: no wgmma", m ? "tf32" : "fp32");
    const cf_cl_switches on = one_forced(CF_CL_SWITCH_WGMMA, 1);
    cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &on, sw) == 0 &&
              sw[CF_CL_SWITCH_WGMMA] == 1, "sub-sub-mish: wgmma=1 refused");
    h200_plan(7, math, 0, &sh, &t); /* several chunks: C 64, K 128, W 40 */
    cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, sw);
    cr_expect(sw[CF_CL_SWITCH_WGMMA] == 1, "several chunks %s: no wgmma", m ? "tf32" : "fp32");
    /* tiles the program would fill less than 3/4 of: 3 x 3 row channels of a 16-row chunk;
     * 40 channels of a 64-channel tile */
    {
      const cf_conv2d_desc d = {1, 3, 10, 40, 64, 3, 3, 1, 1, 0, 0, 1, 1, 1};
      cr_assert(cf_shape_resolve("test", &d, &sh) == CF_OK, "%s", cf_last_error());
      const cf_op ops[1] = {{CF_OP_MISH, 0.0f}};
      cf_epilogue epi;
      cf_epilogue_fold(ops, 1, &epi);
      const cf_device_caps caps = caps_h200_opencl(4); /* T3: the planner would pick FFMA */
      cr_assert(cf_plan_tiles(&sh, &epi, math, &caps, &t) == CF_OK, "%s", cf_last_error());
      cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, sw);
      cr_expect(sw[CF_CL_SWITCH_WGMMA] == 0, "3 channels %s: wgmma by default",
                m ? "tf32" : "fp32");
    }
    h200_plan(11, math, 0, &sh, &t);
    cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, sw);
    cr_expect(sw[CF_CL_SWITCH_WGMMA] == 0, "K 40 %s: wgmma by default", m ? "tf32" : "fp32");
    /* 16 x 3 row channels: the pairs' three chunks (36 KB) do not fit beside two patches, so
     * pairs on the mma.sync program's resident weights stay there */
    if (math == CF_MATH_FP32) {
      const cf_conv2d_desc d = {2, 16, 20, 40, 64, 3, 3, 1, 1, 0, 0, 1, 1, 1};
      cr_assert(cf_shape_resolve("test", &d, &sh) == CF_OK, "%s", cf_last_error());
      const cf_op ops[1] = {{CF_OP_MISH, 0.0f}};
      cf_epilogue epi;
      cf_epilogue_fold(ops, 1, &epi);
      const cf_device_caps caps = caps_h200_opencl(-1);
      cr_assert(cf_plan_tiles(&sh, &epi, math, &caps, &t) == CF_OK, "%s", cf_last_error());
      cf_cl_wgmma_geometry wg;
      cr_assert(cf_cl_wgmma_geometry_of(&sh, 1, &wg) && !wg.resident);
      cr_assert(cf_plan_mma_layout(&sh, &t).resident, "16 channels: mma.sync weights streamed");
      cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, NULL, sw);
      cr_expect(sw[CF_CL_SWITCH_WGMMA] == 0, "16 x 3 row channels, pairs: wgmma by default");
    }
    h200_plan(2, math, 0, &sh, &t); /* odd width 37: the patch's 16-byte copies cannot */
    cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &on, sw) == 1u << CF_CL_SWITCH_WGMMA &&
              sw[CF_CL_SWITCH_WGMMA] == 0, "odd width: wgmma=1 taken");
  }
}

static cf_conv_shape wgmma_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r,
                                 int64_t s, int64_t stride, int64_t pad, int64_t dil) {
  const cf_conv2d_desc d = {n, c, h, w, k, r, s, stride, stride, pad, pad, dil, dil, 1};
  cf_conv_shape sh;
  cr_assert(cf_shape_resolve("test", &d, &sh) == CF_OK, "%s", cf_last_error());
  return sh;
}

Test(cl_mma_kernel, wgmma_geometry) {
  cf_cl_wgmma_geometry g;
  const cf_conv_shape mm = wgmma_shape(64, 64, 256, 256, 128, 3, 3, 1, 0, 1);
  cr_assert(cf_cl_wgmma_geometry_of(&mm, 0, &g));
  /* one product: 128 channels, chunks of 16 channels x one kernel row = 3 k-steps of 16 */
  cr_expect(g.bn == 128 && g.pitch == 132 && g.chunk_bytes == 3 * 16 * 128 * 2 &&
            g.stage_bytes == g.chunk_bytes + 16 * 132 * 4 && g.n_chunks == 12 && g.q_tiles == 2 &&
            g.k_tiles == 1 && g.pair_stores && g.groups == 64LL * 254 * 2 &&
            g.laid_bytes == 12LL * g.chunk_bytes);
  cr_assert(cf_cl_wgmma_geometry_of(&mm, 1, &g));
  /* pairs: hi and lo of 64 channels in the same bytes, two channel tiles */
  cr_expect(g.pairs && g.bn == 64 && g.chunk_bytes == 3 * 16 * 64 * 2 * 2 && g.k_tiles == 2 &&
            g.groups == 64LL * 254 * 2 * 2 && g.laid_bytes == 2LL * 12 * g.chunk_bytes);
  cr_expect(2 * g.stage_bytes <= CF_CL_MMA_LOCAL_BYTES);
  /* odd output width: one float per store; 1x1: pitch 132 still (128 columns, == 4 mod 32) */
  const cf_conv_shape odd_q = wgmma_shape(2, 16, 10, 44, 64, 2, 2, 1, 0, 1);
  cr_expect(cf_cl_wgmma_geometry_of(&odd_q, 0, &g) && !g.pair_stores && g.q_tiles == 1);
  const cf_conv_shape one = wgmma_shape(3, 32, 6, 52, 136, 1, 1, 1, 0, 1);
  cr_expect(cf_cl_wgmma_geometry_of(&one, 1, &g) && g.pitch == 132 && g.k_tiles == 3 &&
            g.n_chunks == 2);
  /* chunks of 16 row channels (input channel, kernel row): sub-sub-mish's 8 x 3 in two */
  const cf_conv_shape ssm = wgmma_shape(128, 8, 256, 256, 64, 3, 3, 1, 0, 1);
  cr_expect(cf_cl_wgmma_geometry_of(&ssm, 0, &g) && g.n_chunks == 2 && g.bn == 64,
            "sub-sub-mish: %d chunks of 16 row channels, want 2", g.n_chunks);
  /* the pairs' weights resident (both chunks beside two patches: 41.5 KB), the one product's
   * streamed (measured faster), mish-mish's 12 chunks streamed */
  cr_expect(!g.resident, "sub-sub-mish's one product: weights resident");
  cr_expect(cf_cl_wgmma_geometry_of(&ssm, 1, &g) && g.resident &&
                2 * g.chunk_bytes + 2 * 16 * g.pitch * 4 <= CF_CL_MMA_LOCAL_BYTES,
            "sub-sub-mish's pairs: weights not resident");
  for (int pairs = 0; pairs < 2; ++pairs)
    cr_expect(cf_cl_wgmma_geometry_of(&mm, pairs, &g) && !g.resident,
              "mish-mish (pairs %d): weights resident", pairs);
  /* one product where K <= 64: 64 channels, and then 5x5's two stages fit (not the pairs') */
  const cf_conv_shape k64_5x5 = wgmma_shape(1, 16, 20, 40, 64, 5, 5, 1, 0, 1);
  cr_expect(cf_cl_wgmma_geometry_of(&k64_5x5, 0, &g) && g.bn == 64 && g.k_tiles == 1 &&
            2 * g.stage_bytes <= CF_CL_MMA_LOCAL_BYTES);
  cr_expect(!cf_cl_wgmma_geometry_of(&k64_5x5, 1, &g));
  /* what it refuses: stride 2, dilation 2, W or pad_w not multiples of 4, 5x5 on 128 channels
   * (two stages of 5 k-steps do not fit 48 KB) */
  const cf_conv_shape refused[] = {
      wgmma_shape(1, 16, 20, 40, 64, 3, 3, 2, 0, 1), wgmma_shape(1, 16, 20, 40, 64, 3, 3, 1, 0, 2),
      wgmma_shape(1, 16, 20, 42, 64, 3, 3, 1, 0, 1), wgmma_shape(1, 16, 20, 40, 64, 3, 3, 1, 2, 1),
      wgmma_shape(1, 16, 20, 40, 128, 5, 5, 1, 0, 1)};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; ++i)
    for (int pairs = 0; pairs < 2; ++pairs)
      cr_expect(!cf_cl_wgmma_geometry_of(&refused[i], pairs, &g), "shape %zu taken", i);
}

#include "ptx_patch.h"

/* clang's PTX as NVIDIA's OpenCL gives it for sm_90 (clang here targets sm_80 / PTX 7.0, where
 * it has no sm_90), then the backend's own edit for sm_90a, then ptxas for sm_90a: 0 on
 * success, what failed in log. */
static int compile_sm90a(const temp_source *ts, const char *options, char *log, size_t log_len) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "clang -x cl -cl-std=CL1.2 -target nvptx64-nvidia-nvcl -O2 -S -w -o %s %s %s "
           "-Xclang -target-feature -Xclang +ptx70 -Xclang -target-cpu -Xclang sm_80 2>&1 && "
           "sed -i -e 's/^\\.target sm_80/.target sm_90/' -e 's/^\\.version 7\\.0/.version 8.0/' %s",
           ts->ptx, ts->path, options, ts->ptx);
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  size_t n = fread(log, 1, log_len - 1, p);
  log[n] = '\0';
  if (pclose(p) != 0)
    return 1;
  FILE *f = fopen(ts->ptx, "rb");
  if (!f)
    return -1;
  static char ptx[1 << 21];
  const size_t len = fread(ptx, 1, sizeof ptx, f);
  fclose(f);
  size_t out_len = 0;
  char *patched = cf_ptx_for_sm90a(ptx, len, &out_len);
  if (!patched) {
    snprintf(log, log_len, "cf_ptx_for_sm90a refused clang's PTX (%zu bytes)", len);
    return 1;
  }
  f = fopen(ts->ptx, "wb");
  const int wrote = f && fwrite(patched, 1, out_len, f) == out_len;
  if (f)
    fclose(f);
  free(patched);
  if (!wrote)
    return -1;
  snprintf(cmd, sizeof cmd, "%s -arch=sm_90a -o /dev/null %s 2>&1", CF_PTXAS, ts->ptx);
  p = popen(cmd, "r");
  if (!p)
    return -1;
  n = fread(log, 1, log_len - 1, p);
  log[n] = '\0';
  return pclose(p);
}

/* The wgmma program compiles for sm_90a, through the backend's own PTX edit, for both maths on
 * every shape of the list it takes, with the backend's options. */
Test(cl_mma_kernel, wgmma_program_compiles_for_sm90a, .timeout = 600) {
  char why[512];
  if (!toolchain_ok(why, sizeof why))
    cr_skip("%s", why);
  temp_source ts;
  /* the layout kernel's half conversions and isfinite, which clang's NVPTX target lacks as
   * OpenCL built-ins (the layout kernel's results are checked on PoCL, below) */
  write_program_source(&ts,
                       "#define isfinite(x) __builtin_isfinite(x)\n"
                       "#define atomic_inc(p) __sync_fetch_and_add((p), 1u)\n"
                       "#define vstore_half_rte(x, i, p) (((__global ushort *)(p))[i] = "
                       "(ushort)(x))\n"
                       "#define vload_half(i, p) ((float)((__global const ushort *)(p))[i])\n",
                       "conv2d_wgmma.cl");
  const cf_op ops[2] = {{CF_OP_MISH, 0.0f}, {CF_OP_RELU, 0.0f}};
  cf_epilogue epi;
  cf_epilogue_fold(ops, 2, &epi);
  /* the workloads; channels not a multiple of 16 or of the tile with padding; several chunks;
   * an odd output width; 1x1 with three channel tiles of pairs: each with its output in
   * sector-aligned runs (the plans' default), the last three also by pixel pairs or, the odd
   * width, one float per store (aligned_stores=0) */
  static const case_shape wg_shapes[] = {
      {"sub-sub-mish", 2, 8, 256, 256, 64, 3, 3, 1, 0, 1},
      {"mish-mish", 1, 64, 256, 256, 128, 3, 3, 1, 0, 1},
      {"20 channels pad 4", 2, 20, 6, 68, 40, 3, 3, 1, 4, 1},
      {"several chunks", 2, 64, 5, 40, 128, 3, 3, 1, 0, 1},
      {"2x2, odd output width", 2, 16, 10, 44, 64, 2, 2, 1, 0, 1},
      {"1x1", 3, 32, 6, 52, 136, 1, 1, 1, 0, 1},
  };
  const size_t n_shapes = sizeof wg_shapes / sizeof wg_shapes[0];
  int n_built = 0, seen_odd_q = 0;
  for (size_t i = 0; i < n_shapes; ++i)
    for (int pairs = 0; pairs < 2; ++pairs)
      for (int aligned = i + 3 < n_shapes ? 1 : 0; aligned < 2; ++aligned) {
        const case_shape *cs = &wg_shapes[i];
        const cf_conv_shape sh = wgmma_shape(cs->n, cs->c, cs->h, cs->w, cs->k, cs->r, cs->s,
                                             cs->stride, cs->pad, cs->dil);
        cf_cl_wgmma_geometry g;
        cr_assert(cf_cl_wgmma_geometry_of(&sh, pairs, &g), "%s: not taken", cs->name);
        g.aligned_stores = aligned;
        char options[1024], log[8192];
        cr_assert(cf_cl_wgmma_options(&sh, &g, &epi, "__asm__", 128, options, sizeof options));
        cr_expect(compile_sm90a(&ts, options, log, sizeof log) == 0,
                  "[%s, %s, %s] the wgmma program does not compile for sm_90a with\n  %s\n%s",
                  cs->name, pairs ? "pairs" : "one product",
                  aligned ? "sector-aligned runs" : "pixel pairs or single pixels", options, log);
        ++n_built;
        seen_odd_q += !aligned && !g.pair_stores;
      }
  cr_expect(seen_odd_q > 0, "no build with one float per store");
  temp_source_remove(&ts);
  cr_log_info("%d wgmma builds compiled", n_built);
}

/* ---- the wgmma program's weight layout, run on PoCL (or any OpenCL device) ---- */
#include <CL/cl.h>
#include <math.h>
#include <stdint.h>

extern const char cf_cl_program_source[];
extern const size_t cf_cl_program_source_len;

/* x as IEEE half, rounded to nearest even (normal and subnormal; |x| < 65520) */
static uint16_t half_bits(float x) {
  const uint16_t sign = signbit(x) ? 0x8000u : 0u;
  const float a = fabsf(x);
  if (a < 0x1p-14f) /* subnormal: multiples of 2^-24 */
    return (uint16_t)(sign | (uint16_t)nearbyintf(a * 0x1p24f));
  int e;
  const float f = frexpf(a, &e); /* a = f 2^e, f in [0.5, 1) */
  const float m = nearbyintf(ldexpf(f, 11));  /* 11 significant bits, 1024..2048 */
  int exp = e - 1 + 15;
  uint32_t mant = (uint32_t)m;
  if (mant == 2048u) {
    mant = 1024u;
    ++exp;
  }
  return (uint16_t)(sign | (uint16_t)(exp << 10) | (uint16_t)(mant - 1024u));
}
static float half_float(uint16_t h) {
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  const float v = e ? ldexpf((float)(m | 0x400), e - 25) : ldexpf((float)m, -24);
  return (h & 0x8000u) ? -v : v;
}

/* cf_wgmma_lay_out_weights against the layout wgmma reads (K-major core matrices of 8 channels
 * x 8 fp16 values: (k / 8) BN 16 + (n / 8) 128 + (n % 8) 16 + (k % 8) 2 bytes into the block of
 * channel tile n / BN and chunk of 16 row channels v = r C + c), bit for bit: per-channel power
 * of two scales, hi and lo of the pairs, zeros past C and for the channels past K, and the
 * unscale factors. */
Test(cl_mma_kernel, wgmma_weight_layout_matches_the_host_on_an_opencl_device, .timeout = 300) {
  cl_platform_id plats[8];
  cl_uint n_plats = 0;
  cl_device_id dev = NULL;
  if (clGetPlatformIDs(8, plats, &n_plats) == CL_SUCCESS)
    for (cl_uint i = 0; i < n_plats && !dev; ++i)
      if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, 1, &dev, NULL) != CL_SUCCESS)
        dev = NULL;
  if (!dev) {
    if (tu_require_opencl())
      cr_assert_fail("no OpenCL device, and OpenCL is required here (CI: PoCL)");
    cr_skip("no OpenCL device");
  }
  cl_int err;
  cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  cr_assert(err == CL_SUCCESS);
  cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &err);
  cr_assert(err == CL_SUCCESS);
  /* C 20: chunks that straddle kernel rows, the last with 4 zero row channels; C 5 x R 2: one
   * chunk of 10 and 6 zeros; K 136: the last channel tile part empty; R x S 3 x 3 and 2 x 1 */
  const struct { int pairs, bn, c, k, r, s; } cases[] = {
      {0, 128, 20, 136, 3, 3}, {1, 64, 20, 136, 3, 3}, {1, 64, 5, 70, 2, 1}};
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ++ci) {
    const int pairs = cases[ci].pairs, bn = cases[ci].bn, C = cases[ci].c, K = cases[ci].k;
    const int R = cases[ci].r, S = cases[ci].s, crs = C * R * S;
    const int n_chunks = (C * R + 15) / 16, k_tiles = (K + bn - 1) / bn;
    const size_t chunk_bytes = (size_t)S * 2 * bn * 16 * (pairs ? 2 : 1);
    const size_t laid_bytes = (size_t)k_tiles * n_chunks * chunk_bytes;
    float *w = malloc((size_t)K * crs * sizeof *w), *unscale = malloc((size_t)K * sizeof *unscale);
    unsigned char *laid = calloc(laid_bytes, 1);
    cr_assert(w && unscale && laid);
    tu_rng rng;
    tu_rng_seed(&rng, 12345u + ci);
    for (int i = 0; i < K * crs; ++i) { /* channels of magnitudes 1e-3 .. 1e3, one all zero */
      const int ko = i / crs;
      w[i] = ko == 7 ? 0.0f : (tu_rng_uniform(&rng) - 0.5f) * powf(10.0f, (float)(ko % 7 - 3));
    }
    char options[256];
    snprintf(options, sizeof options,
             "-DCF_WGMMA_KERNEL=1 -DCFW_LAYOUT_ONLY=1 -DCFW_PAIRS=%d -DCFW_BN=%d -DCFW_S=%d",
             pairs, bn, S);
    const char *src = cf_cl_program_source;
    const size_t src_len = cf_cl_program_source_len;
    cl_program prog = clCreateProgramWithSource(ctx, 1, &src, &src_len, &err);
    cr_assert(err == CL_SUCCESS);
    err = clBuildProgram(prog, 1, &dev, options, NULL, NULL);
    if (err != CL_SUCCESS) {
      static char log[8192];
      clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, sizeof log, log, NULL);
      cr_assert_fail("the layout kernel does not build with %s:\n%.4000s", options, log);
    }
    cl_kernel kern = clCreateKernel(prog, "cf_wgmma_lay_out_weights", &err);
    cr_assert(err == CL_SUCCESS);
    cl_mem dw = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                               (size_t)K * crs * sizeof *w, w, &err);
    cl_mem dl = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, laid_bytes, laid,
                               &err);
    cl_mem du = clCreateBuffer(ctx, CL_MEM_READ_WRITE, (size_t)K * sizeof *unscale, NULL, &err);
    cr_assert(err == CL_SUCCESS);
    const cl_uint tripped = 1u; /* the guard the kernel must clear */
    cl_mem dg = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof tripped,
                               (void *)&tripped, &err);
    cr_assert(err == CL_SUCCESS);
    err = clSetKernelArg(kern, 0, sizeof dw, &dw);
    err |= clSetKernelArg(kern, 1, sizeof dl, &dl);
    err |= clSetKernelArg(kern, 2, sizeof du, &du);
    err |= clSetKernelArg(kern, 3, sizeof(cl_int), &C);
    err |= clSetKernelArg(kern, 4, sizeof(cl_int), &R);
    err |= clSetKernelArg(kern, 5, sizeof(cl_int), &n_chunks);
    err |= clSetKernelArg(kern, 6, sizeof dg, &dg);
    cr_assert(err == CL_SUCCESS);
    const size_t local = 64, global = (size_t)K * 64;
    cr_assert(clEnqueueNDRangeKernel(q, kern, 1, NULL, &global, &local, 0, NULL, NULL) ==
              CL_SUCCESS);
    cr_assert(clEnqueueReadBuffer(q, dl, CL_TRUE, 0, laid_bytes, laid, 0, NULL, NULL) ==
              CL_SUCCESS);
    cr_assert(clEnqueueReadBuffer(q, du, CL_TRUE, 0, (size_t)K * sizeof *unscale, unscale, 0,
                                  NULL, NULL) == CL_SUCCESS);
    cl_uint guard = 1u;
    cr_assert(clEnqueueReadBuffer(q, dg, CL_TRUE, 0, sizeof guard, &guard, 0, NULL, NULL) ==
              CL_SUCCESS);
    cr_expect(guard == 0u, "case %zu: the layout kernel left the range guard at %u", ci, guard);
    int wrong = 0;
    for (int ko = 0; ko < k_tiles * bn; ++ko) {
      float big = 0.0f;
      for (int i = 0; ko < K && i < crs; ++i)
        big = fmaxf(big, fabsf(w[(size_t)ko * crs + i]));
      int e2 = 0;
      frexpf(big, &e2); /* big in [2^(e2-1), 2^e2): scaled into [2^14, 2^15) */
      const int e = big > 0.0f ? 15 - e2 : 0;
      if (ko < K && unscale[ko] != ldexpf(1.0f, -e - (pairs ? 6 : 0)) && wrong++ < 5)
        cr_log_error("case %zu channel %d: unscale %g, want 2^%d", ci, ko, (double)unscale[ko],
                     -e - (pairs ? 6 : 0));
      const int nt = ko / bn, n = ko % bn;
      for (int j = 0; j < n_chunks; ++j)
        for (int k = 0; k < S * 16; ++k) {
          const int s = k / 16, v = j * 16 + k % 16, r = v / C, cin = v % C;
          const float x = ko < K && r < R
                              ? ldexpf(w[(size_t)ko * crs + ((size_t)cin * R + r) * S + s], e)
                              : 0.0f;
          const uint16_t hi = half_bits(x), lo = half_bits(x - half_float(hi));
          const size_t at = ((size_t)nt * n_chunks + j) * chunk_bytes + (size_t)(k / 8) * bn * 16 +
                            (size_t)(n / 8) * 128 + (size_t)(n % 8) * 16 + (size_t)(k % 8) * 2;
          uint16_t got_hi, got_lo = lo;
          memcpy(&got_hi, laid + at, 2);
          if (pairs)
            memcpy(&got_lo, laid + at + chunk_bytes / 2, 2);
          if ((got_hi != hi || got_lo != lo) && wrong++ < 5)
            cr_log_error("case %zu channel %d chunk %d k %d: hi %04x lo %04x, want %04x %04x", ci,
                         ko, j, k, got_hi, got_lo, hi, lo);
        }
    }
    cr_expect(wrong == 0, "case %zu (%s, BN %d, C %d, K %d, %dx%d): %d wrong", ci,
              pairs ? "pairs" : "one product", bn, C, K, R, S, wrong);
    clReleaseMemObject(dw);
    clReleaseMemObject(dl);
    clReleaseMemObject(du);
    clReleaseMemObject(dg);
    clReleaseKernel(kern);
    clReleaseProgram(prog);
    free(laid);
    free(unscale);
    free(w);
  }
  clReleaseCommandQueue(q);
  clReleaseContext(ctx);
}
