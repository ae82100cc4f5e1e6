/* test_backends: every backend (CPU, OpenCL, CUDA) against the double-precision reference.
 *
 * Per backend: a shape matrix (odd sizes, batch 1 and 3, one channel, out_channels 1/3/70,
 * 1x1/3x3/5x5 and rectangular kernels, stride, padding, dilation, with and without bias),
 * every op kind singly, chains (sub-sub-mish, mish-mish, add-mul-relu, the full 8-op chain and
 * range-stressing ones), the two product workloads at tiny sizes, both math modes, the four
 * input distributions of DESIGN.md; outputs NaN-poisoned before execute with a guard band
 * after them; a one-line REPRO for every failing case. Also: a plan executed twice gives
 * identical bits, one plan serves two input sets, shapes past the kernels' 32-bit index ranges
 * are planned or refused cleanly (CF_ERR_UNSUPPORTED, never CF_ERR_INTERNAL), and a launch of
 * more than 65535 blocks along N is either refused or correct, and inputs past fp16's range
 * (CUDA's fp16 kernels' range guard) come out finite and within the relative L2 bound.
 *
 * Availability: CPU always runs. CUDA skips where no device exists ("no CUDA device: ...").
 * OpenCL skips likewise, except that with CI=true or CONVFUSE_REQUIRE_OPENCL=1 a compiled-in
 * OpenCL backend without a device FAILS (CI runs PoCL and must not skip silently).
 *
 * Cost: on PoCL each distinct (folded chain, tile, bias) compiles a program (~1 s), so the
 * chains below are few and shared between cases; shapes stay tiny. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convfuse/convfuse.h"
#include "test_util.h"

/* ---- backend availability ---- */


/* ---- one checked case ---- */

typedef struct run_stats {
  int cases, failed;
} run_stats;

static uint64_t case_seed(cf_backend b, int group, int idx, cf_math math) {
  return 0x5eed0000ull + (uint64_t)b * 1000003ull + (uint64_t)group * 10007ull +
         (uint64_t)idx * 17ull + (uint64_t)math;
}

/* Runs one case on ctx and checks it; reports a REPRO line on failure. Returns 1 if ok. */
static int check_case(cf_context *ctx, const char *label, const cf_conv2d_desc *d,
                      const cf_op *ops, int n_ops, cf_math math, tu_dist dist, uint64_t seed,
                      run_stats *st) {
  const char *bname = cf_backend_name(cf_context_backend(ctx));
  tu_problem pb;
  tu_problem_init(&pb, d, ops, n_ops, math, dist, seed);
  char repro[512];
  tu_repro_line(bname, &pb, repro, sizeof repro);
  const char *where = "";
  cf_status s = tu_run_on_context(ctx, &pb, &where);
  int ok = 1;
  st->cases++;
  if (s != CF_OK) {
    cr_expect(0, "[%s] %s failed: %s: %s\n  %s", label, where, cf_status_string(s),
              pb.guard_msg[0] ? pb.guard_msg : cf_last_error(), repro);
    ok = 0;
  } else {
    tu_check res;
    tu_check_output(&pb, &res);
    if (!res.ok) {
      cr_expect(0, "[%s] wrong output: %s\n  %s", label, res.summary, repro);
      ok = 0;
    }
  }
  if (!ok) {
    st->failed++;
    fprintf(stderr, "%s\n", repro);
  }
  tu_problem_free(&pb);
  return ok;
}

static void finish(const char *what, cf_backend b, const run_stats *st) {
  cr_expect(st->failed == 0, "%s on %s: %d of %d cases failed (REPRO lines above)", what,
            cf_backend_name(b), st->failed, st->cases);
  cr_log_info("%s on %s: %d cases, %d failed", what, cf_backend_name(b), st->cases, st->failed);
}

static const cf_math maths[2] = {CF_MATH_FP32, CF_MATH_TF32};

/* ---- shape matrix ---- */

typedef struct shape_case {
  const char *label;
  cf_conv2d_desc d;
} shape_case;

/* fields: batch, in_channels, height, width, out_channels, kernel_h, kernel_w, stride_h,
 * stride_w, pad_h, pad_w, dilation_h, dilation_w, has_bias */
static const shape_case shapes[] = {
    {"odd 13x17, K3", {1, 3, 13, 17, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1}},
    {"one channel, K1", {1, 1, 13, 17, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1}},
    {"K70 pad1", {1, 3, 13, 17, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1}},
    {"1x1 kernel, batch 2", {2, 5, 9, 11, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1}},
    {"5x5 pad2", {1, 2, 13, 17, 16, 5, 5, 1, 1, 2, 2, 1, 1, 1}},
    {"stride 2 pad1", {1, 3, 13, 17, 8, 3, 3, 2, 2, 1, 1, 1, 1, 0}},
    {"dilation 2", {1, 3, 13, 17, 5, 3, 3, 1, 1, 0, 0, 2, 2, 1}},
    {"no bias, K70", {1, 4, 11, 13, 70, 3, 3, 1, 1, 0, 0, 1, 1, 0}},
    {"rect 3x1 pad(1,0)", {1, 3, 13, 17, 6, 3, 1, 1, 1, 1, 0, 1, 1, 1}},
    {"rect 1x3 stride(1,2) dil(2,1)", {1, 2, 12, 15, 7, 1, 3, 1, 2, 0, 1, 2, 1, 1}},
    {"batch 3, K33 pad1", {3, 2, 7, 9, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1}},
    {"kernel = padded input (1x1 out)", {1, 2, 5, 5, 4, 5, 5, 1, 1, 0, 0, 1, 1, 1}},
    {"deep K (C20: 180 = 22.5 slices)", {1, 20, 9, 9, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1}},
    {"1x1 everything", {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1}},
    {"stride 3 dil 2 pad 2, K65", {2, 3, 16, 14, 65, 3, 3, 3, 3, 2, 2, 2, 2, 1}},
    /* Wide rows: on a GPU with tensor cores these plan the row-tile MMA kernel (partial row
     * tiles, partial channel tiles, partial and multiple K chunks, padded K). */
    {"wide 300 C5 K64 pad1 (MMA)", {2, 5, 9, 300, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1}},
    {"wide stride 2, C20 K70 (MMA, 3 chunks)", {1, 20, 7, 250, 70, 3, 3, 2, 2, 1, 1, 1, 1, 0}},
    {"wide 5x5 dil 2 pad 2, K33 (MMA)", {2, 3, 12, 200, 33, 5, 5, 1, 1, 2, 2, 2, 2, 1}},
    {"deep C512 (MMA, weights streamed)", {1, 512, 4, 140, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1}},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

/* The chains the shape matrix cycles through (few: each is a program on OpenCL). */
static const cf_op chain_ssm[3] = {{CF_OP_SUB, 0.5f}, {CF_OP_SUB, 0.2f}, {CF_OP_MISH, 0}};
static const cf_op chain_amr[3] = {{CF_OP_ADD, 0.1f}, {CF_OP_MUL, 2.0f}, {CF_OP_RELU, 0}};

static void run_shapes(cf_backend b) {
  cf_context *ctx = tu_open_or_skip(b);
  run_stats st = {0, 0};
  for (int i = 0; i < N_SHAPES; ++i) {
    const cf_op *ops = i % 3 == 0 ? chain_ssm : i % 3 == 1 ? NULL : chain_amr;
    int n_ops = i % 3 == 1 ? 0 : 3;
    for (int m = 0; m < 2; ++m) {
      char label[128];
      snprintf(label, sizeof label, "shape %d: %s", i, shapes[i].label);
      check_case(ctx, label, &shapes[i].d, ops, n_ops, maths[m], (tu_dist)((i + m) % TU_DIST_COUNT),
                 case_seed(b, 1, i, maths[m]), &st);
    }
  }
  finish("shape matrix", b, &st);
  cf_context_destroy(ctx);
}

/* ---- every op kind singly ---- */

static const cf_conv2d_desc op_shape = {2, 3, 9, 10, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1};

static void run_single_ops(cf_backend b) {
  cf_context *ctx = tu_open_or_skip(b);
  run_stats st = {0, 0};
  static const float values[8] = {0.3f, 0.7f, -1.7f, 0, 0, 0, 0, 0};
  static const char *names[8] = {"add", "sub", "mul", "relu", "tanh", "sigmoid", "softplus",
                                 "mish"};
  for (int k = CF_OP_ADD; k <= CF_OP_MISH; ++k) {
    cf_op op = {(cf_op_kind)k, values[k]};
    for (int m = 0; m < 2; ++m)
      for (int dist = 0; dist < TU_DIST_COUNT; ++dist) {
        char label[64];
        snprintf(label, sizeof label, "single op %s", names[k]);
        check_case(ctx, label, &op_shape, &op, 1, maths[m], (tu_dist)dist,
                   case_seed(b, 2, k * 8 + dist, maths[m]), &st);
      }
  }
  finish("single ops", b, &st);
  cf_context_destroy(ctx);
}

/* ---- chains ---- */

typedef struct chain_case {
  const char *label;
  int n_ops;
  cf_op ops[CF_MAX_OPS];
} chain_case;

static const chain_case chains[] = {
    {"sub,sub,mish", 3, {{CF_OP_SUB, 0.5f}, {CF_OP_SUB, 0.2f}, {CF_OP_MISH, 0}}},
    {"mish,mish", 2, {{CF_OP_MISH, 0}, {CF_OP_MISH, 0}}},
    {"add,mul,relu", 3, {{CF_OP_ADD, 0.1f}, {CF_OP_MUL, 2.0f}, {CF_OP_RELU, 0}}},
    {"full 8-op chain",
     8,
     {{CF_OP_ADD, 0.25f},
      {CF_OP_MUL, 1.5f},
      {CF_OP_TANH, 0},
      {CF_OP_SUB, 0.125f},
      {CF_OP_SOFTPLUS, 0},
      {CF_OP_SIGMOID, 0},
      {CF_OP_RELU, 0},
      {CF_OP_MISH, 0}}},
    /* range stress: large |x| reaches the softplus threshold and both mish cut-offs */
    {"mul(40),mish (mish above its high cut-off)", 2, {{CF_OP_MUL, 40.0f}, {CF_OP_MISH, 0}}},
    {"mul(-300),mish (mish below its low cut-off)", 2, {{CF_OP_MUL, -300.0f}, {CF_OP_MISH, 0}}},
    {"mul(30),softplus,tanh", 3, {{CF_OP_MUL, 30.0f}, {CF_OP_SOFTPLUS, 0}, {CF_OP_TANH, 0}}},
    {"mul(-30),sigmoid", 2, {{CF_OP_MUL, -30.0f}, {CF_OP_SIGMOID, 0}}},
    {"sub after mish (not folded)", 3, {{CF_OP_MISH, 0}, {CF_OP_SUB, 0.3f}, {CF_OP_TANH, 0}}},
};
#define N_CHAINS (int)(sizeof chains / sizeof chains[0])

static const cf_conv2d_desc chain_shape = {1, 4, 11, 9, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1};

static void run_chains(cf_backend b) {
  cf_context *ctx = tu_open_or_skip(b);
  run_stats st = {0, 0};
  for (int i = 0; i < N_CHAINS; ++i)
    for (int m = 0; m < 2; ++m)
      for (int dist = 0; dist < TU_DIST_COUNT; ++dist) {
        char label[96];
        snprintf(label, sizeof label, "chain %s", chains[i].label);
        check_case(ctx, label, &chain_shape, chains[i].ops, chains[i].n_ops, maths[m],
                   (tu_dist)dist, case_seed(b, 3, i * 8 + dist, maths[m]), &st);
      }
  finish("chains", b, &st);
  cf_context_destroy(ctx);
}

/* ---- the two product workloads at tiny sizes (batch 2, 16x16) ---- */

static void run_workloads(cf_backend b) {
  cf_context *ctx = tu_open_or_skip(b);
  run_stats st = {0, 0};
  const cf_conv2d_desc ssm = {2, 8, 16, 16, 64, 3, 3, 1, 1, 0, 0, 1, 1, 1};
  const cf_conv2d_desc mm = {2, 64, 16, 16, 128, 3, 3, 1, 1, 0, 0, 1, 1, 1};
  const cf_op mish2[2] = {{CF_OP_MISH, 0}, {CF_OP_MISH, 0}};
  for (int m = 0; m < 2; ++m)
    for (int dist = 0; dist < TU_DIST_COUNT; dist += 1) {
      check_case(ctx, "sub-sub-mish 2x8x16x16 -> 64", &ssm, chain_ssm, 3, maths[m],
                 (tu_dist)dist, case_seed(b, 4, dist, maths[m]), &st);
      if (dist % 2 == 0) /* mish-mish is 8x the work: two distributions suffice */
        check_case(ctx, "mish-mish 2x64x16x16 -> 128", &mm, mish2, 2, maths[m], (tu_dist)dist,
                   case_seed(b, 5, dist, maths[m]), &st);
    }
  finish("workloads", b, &st);
  cf_context_destroy(ctx);
}

/* ---- determinism and plan reuse ---- */

typedef struct dev_problem {
  cf_buffer *in, *w, *b, *out;
  cf_plan *plan;
} dev_problem;

static void dev_setup(cf_context *ctx, tu_problem *pb, dev_problem *dp) {
  memset(dp, 0, sizeof *dp);
  cf_status s = cf_buffer_create(ctx, pb->n_in * 4, &dp->in);
  if (s == CF_OK)
    s = cf_buffer_create(ctx, pb->n_w * 4, &dp->w);
  if (s == CF_OK && pb->n_b)
    s = cf_buffer_create(ctx, pb->n_b * 4, &dp->b);
  if (s == CF_OK)
    s = cf_buffer_create(ctx, pb->n_out * 4, &dp->out);
  if (s == CF_OK)
    s = cf_plan_create(ctx, &pb->desc, pb->ops, pb->n_ops, pb->math, &dp->plan);
  cr_assert(s == CF_OK, "setup failed: %s: %s", cf_status_string(s), cf_last_error());
}

static void dev_upload(tu_problem *pb, dev_problem *dp) {
  cf_status s = cf_buffer_write(dp->in, 0, pb->input, pb->n_in * 4);
  if (s == CF_OK)
    s = cf_buffer_write(dp->w, 0, pb->weight, pb->n_w * 4);
  if (s == CF_OK && dp->b)
    s = cf_buffer_write(dp->b, 0, pb->bias, pb->n_b * 4);
  tu_poison(pb->output, pb->n_out);
  if (s == CF_OK)
    s = cf_buffer_write(dp->out, 0, pb->output, pb->n_out * 4);
  cr_assert(s == CF_OK, "upload failed: %s: %s", cf_status_string(s), cf_last_error());
}

static void dev_execute(tu_problem *pb, dev_problem *dp) {
  cf_status s = cf_plan_execute(dp->plan, dp->in, dp->w, dp->b, dp->out);
  if (s == CF_OK)
    s = cf_buffer_read(dp->out, 0, pb->output, pb->n_out * 4);
  cr_assert(s == CF_OK, "execute failed: %s: %s", cf_status_string(s), cf_last_error());
}

static void dev_free(dev_problem *dp) {
  cf_plan_destroy(dp->plan);
  cf_buffer_destroy(dp->in);
  cf_buffer_destroy(dp->w);
  cf_buffer_destroy(dp->b);
  cf_buffer_destroy(dp->out);
}

static void expect_ok(const char *what, cf_backend b, const tu_problem *pb) {
  tu_check res;
  tu_check_output(pb, &res);
  char repro[512];
  tu_repro_line(cf_backend_name(b), pb, repro, sizeof repro);
  cr_expect(res.ok, "%s: %s\n  %s", what, res.summary, repro);
  if (!res.ok)
    fprintf(stderr, "%s\n", repro);
}

static void run_repeat(cf_backend b) {
  cf_context *ctx = tu_open_or_skip(b);
  const cf_conv2d_desc d = {2, 3, 13, 17, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  tu_problem pb;
  tu_problem_init(&pb, &d, chain_ssm, 3, CF_MATH_FP32, TU_DIST_X3, case_seed(b, 6, 0, 0));
  dev_problem dp;
  dev_setup(ctx, &pb, &dp);
  dev_upload(&pb, &dp);
  dev_execute(&pb, &dp);
  expect_ok("first execute", b, &pb);
  float *first = malloc(pb.n_out * 4);
  cr_assert(first);
  memcpy(first, pb.output, pb.n_out * 4);
  /* poison the device output again, run the same plan on the same inputs */
  dev_upload(&pb, &dp);
  dev_execute(&pb, &dp);
  size_t diff = 0;
  for (size_t i = 0; i < pb.n_out; ++i)
    diff += memcmp(&first[i], &pb.output[i], 4) != 0;
  cr_expect(diff == 0, "executing a plan twice on %s: %zu of %zu output elements differ bitwise",
            cf_backend_name(b), diff, pb.n_out);
  /* and twice in a row without a read in between (queued back to back) */
  cr_assert(cf_plan_execute(dp.plan, dp.in, dp.w, dp.b, dp.out) == CF_OK, "%s", cf_last_error());
  cr_assert(cf_plan_execute(dp.plan, dp.in, dp.w, dp.b, dp.out) == CF_OK, "%s", cf_last_error());
  cr_assert(cf_context_synchronize(ctx) == CF_OK, "%s", cf_last_error());
  cr_assert(cf_buffer_read(dp.out, 0, pb.output, pb.n_out * 4) == CF_OK, "%s", cf_last_error());
  diff = 0;
  for (size_t i = 0; i < pb.n_out; ++i)
    diff += memcmp(&first[i], &pb.output[i], 4) != 0;
  cr_expect(diff == 0, "back-to-back executes on %s: %zu of %zu elements differ", cf_backend_name(b),
            diff, pb.n_out);
  free(first);
  dev_free(&dp);
  tu_problem_free(&pb);
  cf_context_destroy(ctx);
}

static void run_two_inputs(cf_backend b) {
  cf_context *ctx = tu_open_or_skip(b);
  const cf_conv2d_desc d = {1, 5, 12, 10, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  const cf_op mish2[2] = {{CF_OP_MISH, 0}, {CF_OP_MISH, 0}};
  for (int m = 0; m < 2; ++m) {
    tu_problem pb;
    tu_problem_init(&pb, &d, mish2, 2, maths[m], TU_DIST_RAND, case_seed(b, 7, 0, maths[m]));
    dev_problem dp;
    dev_setup(ctx, &pb, &dp);
    dev_upload(&pb, &dp);
    dev_execute(&pb, &dp);
    expect_ok("input set A", b, &pb);
    float a0 = pb.output[0];
    /* new inputs, weights and bias through the same plan */
    pb.dist = TU_DIST_NEG;
    tu_problem_refill(&pb, case_seed(b, 7, 1, maths[m]));
    dev_upload(&pb, &dp);
    dev_execute(&pb, &dp);
    expect_ok("input set B (same plan)", b, &pb);
    cr_expect(pb.output[0] != a0, "input set B gave the same first output as set A (%g)",
              (double)a0);
    dev_free(&dp);
    tu_problem_free(&pb);
  }
  cf_context_destroy(ctx);
}

/* ---- shapes past the kernels' 32-bit index ranges: a plan, or a clean refusal ---- */

static void run_huge_plans(cf_backend b) {
  cf_context *ctx = tu_open_or_skip(b);
  /* valid descriptors (every tensor <= 2^60 elements) that no test could ever allocate: the
   * backend must either plan them or refuse with CF_ERR_UNSUPPORTED and a reason; never
   * CF_ERR_INTERNAL, never a crash. Only plans are created, nothing executes. */
  const struct {
    const char *label;
    cf_conv2d_desc d;
  } huge[] = {
      {"P*Q = 2.5e9 > 2^31 (50000x50000, 1x1)", {1, 1, 50000, 50000, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1}},
      {"in_channels 2^31-1 (GEMM K > 2^31)", {1, INT32_MAX, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1}},
      {"batch 2^30 (GEMM M = 2^31)", {1 << 30, 1, 1, 2, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1}},
      {"out_channels 2^24 (grid N > 65535)", {1, 1, 1, 1, 1 << 24, 1, 1, 1, 1, 0, 0, 1, 1, 1}},
      {"width 2^31-1", {1, 1, 1, INT32_MAX, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1}},
      {"C*H*W > 2^31 in one image", {1, 3, 30000, 30000, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1}},
      {"pad + dilation near INT32_MAX", {1, 1, 8, 8, 1, 2, 2, 1, 1, (1 << 30) - 8, 0, 1 << 30, 1, 0}},
  };
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; ++i) {
    cf_plan *plan = NULL;
    cf_status s = cf_plan_create(ctx, &huge[i].d, chain_ssm, 3, CF_MATH_FP32, &plan);
    char shape[160];
    tu_describe_desc(&huge[i].d, shape, sizeof shape);
    cr_expect(s == CF_OK || s == CF_ERR_UNSUPPORTED,
              "[%s] %s: cf_plan_create: %s: %s (want CF_OK or CF_ERR_UNSUPPORTED)\n  shape=[%s]",
              cf_backend_name(b), huge[i].label, cf_status_string(s), cf_last_error(), shape);
    if (s == CF_ERR_UNSUPPORTED)
      cr_expect(strlen(cf_last_error()) > 20, "[%s] %s: refusal without a reason: \"%s\"",
                cf_backend_name(b), huge[i].label, cf_last_error());
    cr_log_info("%s: %s -> %s%s%s", cf_backend_name(b), huge[i].label, cf_status_string(s),
                s == CF_OK ? "" : ": ", s == CF_OK ? "" : cf_last_error());
    cf_plan_destroy(plan);
  }
  cf_context_destroy(ctx);
}

/* ---- a launch grid past 65535 blocks along N (CUDA grid y / OpenCL dimension 1 limits) ---- */

static void run_wide_grid(cf_backend b) {
  cf_context *ctx = tu_open_or_skip(b);
  /* 2^22 + 3 output channels of a 1x1 conv on a 1x2 image: with 64-wide tiles that is 65537
   * blocks along N. 16 MB of weights, 32 MB of output: executable everywhere. A backend may
   * refuse it (CF_ERR_UNSUPPORTED with a reason); if it plans it, the result must be right. */
  const cf_conv2d_desc d = {1, 1, 1, 2, (1 << 22) + 3, 1, 1, 1, 1, 0, 0, 1, 1, 1};
  const cf_op ops[2] = {{CF_OP_SUB, 0.5f}, {CF_OP_MISH, 0}};
  tu_problem pb;
  tu_problem_init(&pb, &d, ops, 2, CF_MATH_FP32, TU_DIST_X3, case_seed(b, 8, 0, 0));
  const char *where = "";
  cf_status s = tu_run_on_context(ctx, &pb, &where);
  char repro[512];
  tu_repro_line(cf_backend_name(b), &pb, repro, sizeof repro);
  if (s == CF_ERR_UNSUPPORTED && strcmp(where, "cf_plan_create") == 0) {
    cr_log_info("%s refuses %s: %s", cf_backend_name(b), repro, cf_last_error());
  } else {
    cr_expect(s == CF_OK, "%s failed: %s: %s\n  %s", where, cf_status_string(s),
              pb.guard_msg[0] ? pb.guard_msg : cf_last_error(), repro);
    if (s == CF_OK)
      expect_ok("65537 blocks along N", b, &pb);
  }
  tu_problem_free(&pb);
  cf_context_destroy(ctx);
}

/* ---- inputs past fp16's 65504: where CUDA's streamed tile runs on fp16 (one product for
 * tf32, pairs for fp32, both by default and with CONVFUSE_F16=1; the tile forced here,
 * CONVFUSE_TILE 6 / 7) its range guard must rerun them on TF32 / 3xTF32. On every backend the
 * output is finite where the reference is and within the contract's relative L2 (per element,
 * sums of 576 terms of ~1e5 cancel below any fp32 atol: `convfuse check --dist huge` scales
 * it) ---- */

static void run_past_fp16_range(cf_backend b) {
  const cf_conv2d_desc d = {1, 64, 6, 300, 128, 3, 3, 1, 1, 0, 0, 1, 1, 1};
  const cf_op ops[2] = {{CF_OP_MISH, 0}, {CF_OP_MISH, 0}};
  for (int mi = 0; mi < 2; ++mi) {
    if (b == CF_BACKEND_CUDA) { /* read at context creation */
      setenv("CONVFUSE_TILE", maths[mi] == CF_MATH_TF32 ? "6" : "7", 1);
      setenv("CONVFUSE_F16", "1", 1);
    }
    cf_context *ctx = tu_open_or_skip(b);
    cf_plan *plan = NULL;
    cr_assert(cf_plan_create(ctx, &d, ops, 2, maths[mi], &plan) == CF_OK, "%s",
              cf_last_error());
    cr_log_info("%s %s: %s", cf_backend_name(b), tu_math_name(maths[mi]),
                cf_plan_describe(plan));
    cf_plan_destroy(plan);
    tu_problem pb;
    tu_problem_init(&pb, &d, ops, 2, maths[mi], TU_DIST_RAND, case_seed(b, 9, 0, maths[mi]));
    for (size_t i = 0; i < pb.n_in; ++i)
      pb.input[i] *= 1e5f;
    char repro[512];
    tu_repro_line(cf_backend_name(b), &pb, repro, sizeof repro);
    const char *where = "";
    const cf_status s = tu_run_on_context(ctx, &pb, &where);
    cr_expect(s == CF_OK, "%s failed: %s: %s\n  %s (inputs x 1e5)", where, cf_status_string(s),
              pb.guard_msg[0] ? pb.guard_msg : cf_last_error(), repro);
    if (s == CF_OK) {
      tu_check res;
      tu_check_output(&pb, &res);
      double atol, rtol, rel_l2_max;
      tu_tolerance(maths[mi], &atol, &rtol, &rel_l2_max);
      cr_expect(res.n_nan_bad == 0 && res.rel_l2 <= rel_l2_max,
                "%s %s, inputs x 1e5: %lld outputs NaN or inf where the reference is finite, "
                "relative L2 %.3g (contract %.0e)\n  %s", cf_backend_name(b),
                tu_math_name(maths[mi]), (long long)res.n_nan_bad, res.rel_l2, rel_l2_max,
                repro);
    }
    tu_problem_free(&pb);
    cf_context_destroy(ctx);
  }
}

/* ---- registration: the same tests for every backend ---- */

#define BACKEND_SUITE(suite, backend)                                               \
  Test(suite, shape_matrix, .timeout = 300) { run_shapes(backend); }                \
  Test(suite, single_ops, .timeout = 300) { run_single_ops(backend); }              \
  Test(suite, chains, .timeout = 300) { run_chains(backend); }                      \
  Test(suite, tiny_workloads, .timeout = 300) { run_workloads(backend); }           \
  Test(suite, execute_twice_identical, .timeout = 120) { run_repeat(backend); }     \
  Test(suite, one_plan_two_input_sets, .timeout = 120) { run_two_inputs(backend); } \
  Test(suite, huge_shapes_plan_or_refuse, .timeout = 120) { run_huge_plans(backend); } \
  Test(suite, grid_beyond_65535_blocks, .timeout = 120) { run_wide_grid(backend); } \
  Test(suite, inputs_past_fp16_range, .timeout = 120) { run_past_fp16_range(backend); }

BACKEND_SUITE(cpu, CF_BACKEND_CPU)
BACKEND_SUITE(opencl, CF_BACKEND_OPENCL)
BACKEND_SUITE(cuda, CF_BACKEND_CUDA)
