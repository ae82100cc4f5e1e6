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

/* clang -> PTX -> ptxas of ts with options; 0 on success, the output's tail in log. */
static int compile(const temp_source *ts, const char *options, char *log, size_t log_len) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "clang -x cl -cl-std=CL1.2 -target nvptx64-nvidia-nvcl -O2 -S -w -o %s %s %s "
           "-Xclang -target-feature -Xclang +ptx70 -Xclang -target-cpu -Xclang sm_80 2>&1 && "
           "%s -arch=sm_90 -o /dev/null %s 2>&1",
           ts->ptx, ts->path, options, CF_PTXAS, ts->ptx);
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

/* The kernel's source as the OpenCL backend's program has it, after the prelude. */
static void write_kernel_source(temp_source *ts) {
  FILE *out = temp_source_open(ts);
  cr_assert(out != NULL, "mkstemp");
  fputs(prelude, out);
  cr_assert(append_file(out, CF_GEN_DIR_STR "/cf_constants.h") &&
                append_file(out, CF_SOURCE_DIR "/kernels_cl/cf_epilogue.h") &&
                append_file(out, CF_SOURCE_DIR "/kernels_cl/conv2d_mma.cl"),
            "cannot read the kernel sources under %s", CF_SOURCE_DIR);
  fclose(out);
}

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
   * a third stage */
  const char *want[] = {"-DCFM_WM=64",         "-DCFM_WN=16",         "-DCFM_LDSM=1",
                        "-DCFM_ONE_CHUNK=1",   "-DCFM_K_UNROLLED=0",  "-DCFM_P16=0",
                        "-DCFM_P16=1",         "-DCFM_W16=0 ",        "-DCFM_W16=1",
                        "-DCFM_W_SWIZZLE=1",   "-DCFM_ALIGNED_STORES=1", "-DCFM_OFF32=0",
                        "-DCFM_OFF32=1",       "-DCFM_F16=1",         "-DCFM_RERUN=1",
                        "-DCFM_UNSCALE_REGS=0", "-DCFM_UNSCALE_REGS=1", "-DCFM_PATCH_SPLIT=0",
                        "-DCFM_PATCH_SPLIT=1",   "-DCFM_STAGES=3"};
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
  /* every one but patch_split (fp16 pairs only: this is one product) and stages3 (T1's two
   * stages and weights take 47 of the 48 KB) */
  const unsigned kept = 1u << CF_CL_SWITCH_PATCH_SPLIT | 1u << CF_CL_SWITCH_STAGES3;
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &flipped, sw) == kept,
            "sub-sub-mish tf32 refused a switch, or took patch_split or a third stage");
  for (int i = 0; i < CF_CL_SWITCHES; ++i)
    cr_expect(sw[i] == (kept >> i & 1u ? def[i] : !def[i]), "sub-sub-mish: %s is %d",
              cf_cl_switch_names[i], sw[i]);
  h200_plan(0, CF_MATH_FP32, 0, &sh, &t); /* the same in fp32: pairs, unless f16=0 */
  expect_only_with_f16(&sh, &t, CF_CL_SWITCH_PATCH_SPLIT);
  const cf_cl_switches third = one_forced(CF_CL_SWITCH_STAGES3, 1); /* T2: 35 KB, 43 with it */
  cr_expect(cf_cl_mma_switches(&sh, &t, CF_CL_TUNED_H200, &third, sw) == 0 &&
                sw[CF_CL_SWITCH_STAGES3] == 1,
            "sub-sub-mish fp32 refused a third stage");

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
