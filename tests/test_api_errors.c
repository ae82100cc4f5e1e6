/* test_api_errors: every error path of the public API. Each bad call must return the exact
 * cf_status and leave a cf_last_error() message that names the argument and shows the bad
 * value; a failed execute must change no output byte; the context must keep working.
 * Runs on the CPU backend (all checks live in common/, before any backend is reached). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convfuse/convfuse.h"
#include "test_util.h"

/* Number of distinct bad calls checked by the test that ran (reported in the log). */
static int bad_calls;

/* Checks status and that cf_last_error() contains every non-NULL needle. */
static void expect_err_at(const char *file, int line, const char *what, cf_status got,
                          cf_status want, const char *n1, const char *n2, const char *n3) {
  const char *msg = cf_last_error();
  bad_calls++;
  cr_expect(got == want, "%s:%d: %s: status %s, want %s (message: \"%s\")", file, line, what,
            cf_status_string(got), cf_status_string(want), msg);
  const char *needles[3] = {n1, n2, n3};
  for (int i = 0; i < 3; ++i)
    if (needles[i])
      cr_expect(strstr(msg, needles[i]) != NULL,
                "%s:%d: %s: cf_last_error() = \"%s\" does not mention \"%s\"", file, line, what,
                msg, needles[i]);
}
#define EXPECT_ERR(what, call, want, n1, n2, n3) \
  expect_err_at(__FILE__, __LINE__, what, (call), want, n1, n2, n3)

static cf_context *cpu_ctx(void) {
  cf_context *ctx = NULL;
  cf_status s = cf_context_create(CF_BACKEND_CPU, &ctx);
  cr_assert(s == CF_OK, "cpu context: %s", cf_last_error());
  return ctx;
}

static void report(const char *group) { cr_log_info("%s: %d bad calls checked", group, bad_calls); }

/* ---- strings and names ---- */

Test(api_errors, status_strings) {
  const struct {
    cf_status s;
    const char *name;
  } all[] = {{CF_OK, "CF_OK"},
             {CF_ERR_INVALID_ARGUMENT, "CF_ERR_INVALID_ARGUMENT"},
             {CF_ERR_UNSUPPORTED, "CF_ERR_UNSUPPORTED"},
             {CF_ERR_BACKEND_UNAVAILABLE, "CF_ERR_BACKEND_UNAVAILABLE"},
             {CF_ERR_OUT_OF_MEMORY, "CF_ERR_OUT_OF_MEMORY"},
             {CF_ERR_DEVICE, "CF_ERR_DEVICE"},
             {CF_ERR_INTERNAL, "CF_ERR_INTERNAL"}};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) {
    const char *got = cf_status_string(all[i].s);
    cr_expect(got && strcmp(got, all[i].name) == 0, "cf_status_string(%d) = \"%s\", want \"%s\"",
              (int)all[i].s, got ? got : "(null)", all[i].name);
  }
  const int invalid[] = {-1, 7, 99, 1 << 30};
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; ++i) {
    const char *got = cf_status_string((cf_status)invalid[i]);
    cr_expect(got != NULL && got[0] != '\0', "cf_status_string(%d) is NULL or empty", invalid[i]);
    for (size_t j = 0; got && j < sizeof all / sizeof all[0]; ++j)
      cr_expect(strcmp(got, all[j].name) != 0, "cf_status_string(%d) = \"%s\" (a valid name)",
                invalid[i], got);
  }
}

Test(api_errors, backend_names) {
  cr_expect_str_eq(cf_backend_name(CF_BACKEND_AUTO), "auto");
  cr_expect_str_eq(cf_backend_name(CF_BACKEND_CPU), "cpu");
  cr_expect_str_eq(cf_backend_name(CF_BACKEND_CUDA), "cuda");
  cr_expect_str_eq(cf_backend_name(CF_BACKEND_OPENCL), "opencl");
  cr_expect_str_eq(cf_backend_name((cf_backend)42), "unknown");
  cr_expect_str_eq(cf_backend_name((cf_backend)-1), "unknown");
}

/* ---- contexts ---- */

Test(api_errors, context_errors) {
  cf_context *ctx = NULL;
  EXPECT_ERR("context_create out NULL", cf_context_create(CF_BACKEND_CPU, NULL),
             CF_ERR_INVALID_ARGUMENT, "out", "NULL", NULL);
  EXPECT_ERR("context_create backend 99", cf_context_create((cf_backend)99, &ctx),
             CF_ERR_INVALID_ARGUMENT, "backend", "99", NULL);
  cr_expect(ctx == NULL, "a failed cf_context_create wrote *out");
  EXPECT_ERR("context_create backend -1", cf_context_create((cf_backend)-1, &ctx),
             CF_ERR_INVALID_ARGUMENT, "backend", "-1", NULL);
  cr_expect(cf_backend_available((cf_backend)77) == 0, "cf_backend_available(77) != 0");
  bad_calls++;
  cr_expect(strstr(cf_last_error(), "77") != NULL, "cf_backend_available(77): message \"%s\"",
            cf_last_error());
  EXPECT_ERR("synchronize NULL", cf_context_synchronize(NULL), CF_ERR_INVALID_ARGUMENT, "ctx",
             NULL, NULL);
  report("context");
}

Test(api_errors, null_tolerant_functions) {
  cf_context_destroy(NULL);
  cf_buffer_destroy(NULL);
  cf_plan_destroy(NULL);
  cr_expect(cf_buffer_size(NULL) == 0);
  cr_expect_str_eq(cf_plan_describe(NULL), "");
  cr_expect_str_eq(cf_context_device(NULL), "");
  cr_expect(cf_context_backend(NULL) == CF_BACKEND_AUTO);
}

/* ---- buffers ---- */

Test(api_errors, buffer_errors) {
  cf_context *ctx = cpu_ctx();
  cf_buffer *buf = NULL, *nb = NULL;
  EXPECT_ERR("buffer_create ctx NULL", cf_buffer_create(NULL, 16, &nb), CF_ERR_INVALID_ARGUMENT,
             "ctx", NULL, NULL);
  EXPECT_ERR("buffer_create out NULL", cf_buffer_create(ctx, 16, NULL), CF_ERR_INVALID_ARGUMENT,
             "out", NULL, NULL);
  EXPECT_ERR("buffer_create 0 bytes", cf_buffer_create(ctx, 0, &nb), CF_ERR_INVALID_ARGUMENT,
             "bytes", "0", NULL);
  cr_expect(nb == NULL, "a failed cf_buffer_create wrote *out");
#if !defined(__SANITIZE_ADDRESS__)
  /* SIZE_MAX bytes cannot be allocated: out of memory, not a crash (ASan would abort here) */
  EXPECT_ERR("buffer_create SIZE_MAX", cf_buffer_create(ctx, SIZE_MAX, &nb), CF_ERR_OUT_OF_MEMORY,
             "18446744073709551615", NULL, NULL);
  cr_expect(nb == NULL);
#endif

  cr_assert(cf_buffer_create(ctx, 64, &buf) == CF_OK, "%s", cf_last_error());
  cr_expect(cf_buffer_size(buf) == 64);
  unsigned char host[128] = {0};
  EXPECT_ERR("write buf NULL", cf_buffer_write(NULL, 0, host, 4), CF_ERR_INVALID_ARGUMENT, "buf",
             NULL, NULL);
  EXPECT_ERR("write src NULL", cf_buffer_write(buf, 0, NULL, 4), CF_ERR_INVALID_ARGUMENT, "NULL",
             NULL, NULL);
  EXPECT_ERR("write past the end", cf_buffer_write(buf, 0, host, 65), CF_ERR_INVALID_ARGUMENT,
             "65", "64", NULL);
  EXPECT_ERR("write offset at the end", cf_buffer_write(buf, 64, host, 1),
             CF_ERR_INVALID_ARGUMENT, "offset 64", "64", NULL);
  EXPECT_ERR("write offset past the end", cf_buffer_write(buf, 65, host, 0),
             CF_ERR_INVALID_ARGUMENT, "offset 65", NULL, NULL);
  EXPECT_ERR("write offset SIZE_MAX", cf_buffer_write(buf, SIZE_MAX, host, 1),
             CF_ERR_INVALID_ARGUMENT, "18446744073709551615", NULL, NULL);
  EXPECT_ERR("write offset+bytes overflow", cf_buffer_write(buf, 8, host, SIZE_MAX - 3),
             CF_ERR_INVALID_ARGUMENT, "18446744073709551612", NULL, NULL);
  EXPECT_ERR("read buf NULL", cf_buffer_read(NULL, 0, host, 4), CF_ERR_INVALID_ARGUMENT, "buf",
             NULL, NULL);
  EXPECT_ERR("read dst NULL", cf_buffer_read(buf, 0, NULL, 4), CF_ERR_INVALID_ARGUMENT, "NULL",
             NULL, NULL);
  EXPECT_ERR("read past the end", cf_buffer_read(buf, 60, host, 8), CF_ERR_INVALID_ARGUMENT,
             "offset 60", "8", NULL);
  EXPECT_ERR("read offset SIZE_MAX", cf_buffer_read(buf, SIZE_MAX, host, 1),
             CF_ERR_INVALID_ARGUMENT, "18446744073709551615", NULL, NULL);
  EXPECT_ERR("read offset+bytes overflow", cf_buffer_read(buf, SIZE_MAX - 1, host, 2),
             CF_ERR_INVALID_ARGUMENT, "18446744073709551614", NULL, NULL);

  /* edges that are fine: exactly to the end, zero bytes at the end, NULL host with 0 bytes */
  for (int i = 0; i < 64; ++i)
    host[i] = (unsigned char)i;
  cr_expect(cf_buffer_write(buf, 0, host, 64) == CF_OK, "%s", cf_last_error());
  cr_expect(cf_buffer_write(buf, 64, host, 0) == CF_OK, "%s", cf_last_error());
  cr_expect(cf_buffer_write(buf, 64, NULL, 0) == CF_OK, "%s", cf_last_error());
  unsigned char back[64];
  cr_expect(cf_buffer_read(buf, 60, back, 4) == CF_OK, "%s", cf_last_error());
  cr_expect(back[0] == 60 && back[3] == 63, "read at offset 60 got %d..%d", back[0], back[3]);
  /* a failed read leaves the host destination alone */
  unsigned char dst[16];
  memset(dst, 0x5A, sizeof dst);
  cf_buffer_read(buf, 56, dst, 16);
  size_t touched = 0;
  for (size_t i = 0; i < sizeof dst; ++i)
    touched += dst[i] != 0x5A;
  cr_expect(touched == 0, "a failed cf_buffer_read wrote %zu bytes of dst", touched);
  /* the failed writes above changed nothing: write host again with a bad range, compare */
  unsigned char junk[128];
  memset(junk, 0xEE, sizeof junk);
  cf_buffer_write(buf, 32, junk, 33);
  cr_expect(cf_buffer_read(buf, 0, back, 64) == CF_OK);
  cr_expect(memcmp(back, host, 64) == 0, "a failed cf_buffer_write changed the buffer");
  cf_buffer_destroy(buf);
  cf_context_destroy(ctx);
  report("buffers");
}

/* ---- descriptors ---- */

static cf_conv2d_desc good_desc(void) {
  cf_conv2d_desc d = {.batch = 2, .in_channels = 3, .height = 9, .width = 8, .out_channels = 5,
                      .kernel_h = 3, .kernel_w = 3, .has_bias = 1};
  return d;
}

/* Each bad descriptor is checked by cf_plan_create, cf_conv2d_output_dims and
 * cf_reference_conv2d (one descriptor validator, three entry points). */
static void expect_bad_desc(const char *what, const cf_conv2d_desc *d, const char *n1,
                            const char *n2, cf_context *ctx) {
  cf_plan *plan = NULL;
  EXPECT_ERR(what, cf_plan_create(ctx, d, NULL, 0, CF_MATH_FP32, &plan), CF_ERR_INVALID_ARGUMENT,
             n1, n2, "cf_plan_create");
  cr_expect(plan == NULL, "%s: a failed cf_plan_create wrote *out", what);
  int64_t oh = -7, ow = -7;
  EXPECT_ERR(what, cf_conv2d_output_dims(d, &oh, &ow), CF_ERR_INVALID_ARGUMENT, n1, n2,
             "cf_conv2d_output_dims");
  cr_expect(oh == -7 && ow == -7, "%s: failed cf_conv2d_output_dims wrote the dims", what);
  float x = 1.0f, out = 3.0f;
  EXPECT_ERR(what, cf_reference_conv2d(d, NULL, 0, &x, &x, &x, &out), CF_ERR_INVALID_ARGUMENT, n1,
             n2, "cf_reference_conv2d");
  cr_expect(out == 3.0f, "%s: failed cf_reference_conv2d wrote output", what);
}

Test(api_errors, descriptor_errors) {
  cf_context *ctx = cpu_ctx();
  cf_plan *plan = NULL;
  cf_conv2d_desc d;
  EXPECT_ERR("plan_create ctx NULL", cf_plan_create(NULL, &(cf_conv2d_desc){0}, NULL, 0, 0, &plan),
             CF_ERR_INVALID_ARGUMENT, "ctx", NULL, NULL);
  d = good_desc();
  EXPECT_ERR("plan_create out NULL", cf_plan_create(ctx, &d, NULL, 0, CF_MATH_FP32, NULL),
             CF_ERR_INVALID_ARGUMENT, "out", NULL, NULL);
  EXPECT_ERR("plan_create desc NULL", cf_plan_create(ctx, NULL, NULL, 0, CF_MATH_FP32, &plan),
             CF_ERR_INVALID_ARGUMENT, "desc", NULL, NULL);
  int64_t oh, ow;
  EXPECT_ERR("output_dims desc NULL", cf_conv2d_output_dims(NULL, &oh, &ow),
             CF_ERR_INVALID_ARGUMENT, "desc", NULL, NULL);
  EXPECT_ERR("output_dims out_h NULL", cf_conv2d_output_dims(&d, NULL, &ow),
             CF_ERR_INVALID_ARGUMENT, "out_h", NULL, NULL);
  EXPECT_ERR("output_dims out_w NULL", cf_conv2d_output_dims(&d, &oh, NULL),
             CF_ERR_INVALID_ARGUMENT, "out_w", NULL, NULL);

#define BAD_FIELD(field, value, n2)                                                 \
  do {                                                                              \
    d = good_desc();                                                                \
    d.field = value;                                                                \
    expect_bad_desc(#field " = " #value, &d, #field, n2, ctx);                      \
  } while (0)
  BAD_FIELD(batch, 0, "got 0");
  BAD_FIELD(batch, -3, "-3");
  BAD_FIELD(in_channels, 0, "got 0");
  BAD_FIELD(height, -1, "-1");
  BAD_FIELD(width, 0, "got 0");
  BAD_FIELD(out_channels, -5, "-5");
  BAD_FIELD(kernel_h, 0, "got 0");
  BAD_FIELD(kernel_w, -2, "-2");
  BAD_FIELD(stride_h, -1, "-1");
  BAD_FIELD(stride_w, -2, "-2");
  BAD_FIELD(pad_h, -1, "-1");
  BAD_FIELD(pad_w, -2, "-2");
  BAD_FIELD(dilation_h, -1, "-1");
  BAD_FIELD(dilation_w, -4, "-4");
  BAD_FIELD(has_bias, 2, "2");
  BAD_FIELD(has_bias, -1, "-1");
  /* extents above the int32 limit */
  BAD_FIELD(batch, (int64_t)1 << 40, "1099511627776");
  BAD_FIELD(in_channels, (int64_t)1 << 40, "1099511627776");
  BAD_FIELD(width, INT64_MAX, "9223372036854775807");
  BAD_FIELD(pad_h, (int64_t)1 << 31, "2147483648");
  BAD_FIELD(stride_w, INT64_MIN, "-9223372036854775808");

  /* kernel larger than the padded input */
  d = good_desc();
  d.kernel_h = 12; /* height 9 */
  expect_bad_desc("kernel_h 12 > height 9", &d, "kernel_h", "9", ctx);
  d = good_desc();
  d.kernel_w = 3;
  d.dilation_w = 4; /* spans 9 > width 8 */
  expect_bad_desc("kernel_w 3 dilated 4 spans 9 > 8", &d, "kernel_w", "9", ctx);
  d = good_desc();
  d.kernel_h = 12;
  d.pad_h = 1; /* padded 11 < 12 */
  expect_bad_desc("kernel_h 12 > padded 11", &d, "kernel_h", "11", ctx);

  /* products that overflow int64 or exceed the per-tensor limit, every extent in range */
  d = good_desc();
  d.batch = d.in_channels = d.height = d.width = INT32_MAX;
  d.kernel_h = d.kernel_w = 1;
  expect_bad_desc("input N*C*H*W overflows int64", &d, "input", "2147483647", ctx);
  d = good_desc();
  d.batch = (int64_t)1 << 20;
  d.in_channels = (int64_t)1 << 20;
  d.height = (int64_t)1 << 20;
  d.width = 2;
  d.kernel_h = d.kernel_w = 1;
  expect_bad_desc("input 2^61 elements (> 2^60)", &d, "input", "too many", ctx);
  d = good_desc();
  d.batch = 1;
  d.in_channels = 1;
  d.height = d.width = d.kernel_h = d.kernel_w = (int64_t)1 << 20;
  d.out_channels = (int64_t)1 << 21; /* weight = 2^21 * 2^40 */
  expect_bad_desc("weight 2^61 elements", &d, "weight", "too many", ctx);
  d = good_desc();
  d.batch = 1;
  d.in_channels = 1;
  d.height = d.width = (int64_t)1 << 20;
  d.kernel_h = d.kernel_w = 1;
  d.out_channels = (int64_t)1 << 21; /* output = 2^21 * 2^40 */
  expect_bad_desc("output 2^61 elements", &d, "output", "too many", ctx);
  cf_context_destroy(ctx);
  report("descriptors");
}

/* ---- epilogue and math ---- */

Test(api_errors, op_and_math_errors) {
  cf_context *ctx = cpu_ctx();
  cf_conv2d_desc d = good_desc();
  cf_plan *plan = NULL;
  cf_op ops[CF_MAX_OPS + 1];
  for (int i = 0; i <= CF_MAX_OPS; ++i)
    ops[i] = (cf_op){CF_OP_RELU, 0};
  EXPECT_ERR("n_ops -1", cf_plan_create(ctx, &d, ops, -1, CF_MATH_FP32, &plan),
             CF_ERR_INVALID_ARGUMENT, "n_ops", "-1", NULL);
  EXPECT_ERR("n_ops 9", cf_plan_create(ctx, &d, ops, CF_MAX_OPS + 1, CF_MATH_FP32, &plan),
             CF_ERR_INVALID_ARGUMENT, "n_ops", "9", NULL);
  EXPECT_ERR("n_ops INT32_MIN", cf_plan_create(ctx, &d, ops, INT32_MIN, CF_MATH_FP32, &plan),
             CF_ERR_INVALID_ARGUMENT, "n_ops", "-2147483648", NULL);
  EXPECT_ERR("ops NULL with n_ops 2", cf_plan_create(ctx, &d, NULL, 2, CF_MATH_FP32, &plan),
             CF_ERR_INVALID_ARGUMENT, "ops", "NULL", "2");
  cf_op bad_kind[2] = {{CF_OP_MISH, 0}, {(cf_op_kind)8, 0}};
  EXPECT_ERR("op kind 8", cf_plan_create(ctx, &d, bad_kind, 2, CF_MATH_FP32, &plan),
             CF_ERR_INVALID_ARGUMENT, "ops[1].kind", "8", NULL);
  bad_kind[0].kind = (cf_op_kind)-1;
  EXPECT_ERR("op kind -1", cf_plan_create(ctx, &d, bad_kind, 2, CF_MATH_FP32, &plan),
             CF_ERR_INVALID_ARGUMENT, "ops[0].kind", "-1", NULL);
  cf_op nonfinite[3] = {{CF_OP_SUB, 0.5f}, {CF_OP_ADD, NAN}, {CF_OP_MISH, 0}};
  EXPECT_ERR("ADD NaN", cf_plan_create(ctx, &d, nonfinite, 3, CF_MATH_FP32, &plan),
             CF_ERR_INVALID_ARGUMENT, "ops[1]", "nan", NULL);
  nonfinite[1] = (cf_op){CF_OP_SUB, INFINITY};
  EXPECT_ERR("SUB +inf", cf_plan_create(ctx, &d, nonfinite, 3, CF_MATH_FP32, &plan),
             CF_ERR_INVALID_ARGUMENT, "ops[1]", "inf", NULL);
  nonfinite[1] = (cf_op){CF_OP_MUL, -INFINITY};
  EXPECT_ERR("MUL -inf", cf_plan_create(ctx, &d, nonfinite, 3, CF_MATH_FP32, &plan),
             CF_ERR_INVALID_ARGUMENT, "ops[1]", "-inf", NULL);
  EXPECT_ERR("math 2", cf_plan_create(ctx, &d, NULL, 0, (cf_math)2, &plan),
             CF_ERR_INVALID_ARGUMENT, "math", "2", NULL);
  EXPECT_ERR("math -1", cf_plan_create(ctx, &d, NULL, 0, (cf_math)-1, &plan),
             CF_ERR_INVALID_ARGUMENT, "math", "-1", NULL);
  /* the same chain checks in the reference entry point */
  float x[2 * 3 * 9 * 8] = {0}, w[5 * 3 * 9] = {0}, b[5] = {0}, out[2 * 5 * 7 * 6];
  EXPECT_ERR("reference n_ops 9", cf_reference_conv2d(&d, ops, 9, x, w, b, out),
             CF_ERR_INVALID_ARGUMENT, "n_ops", "9", NULL);
  EXPECT_ERR("reference ADD NaN", cf_reference_conv2d(&d, (cf_op[]){{CF_OP_ADD, NAN}}, 1, x, w, b, out),
             CF_ERR_INVALID_ARGUMENT, "ops[0]", "nan", NULL);
  cr_expect(plan == NULL, "a failed cf_plan_create wrote *out");

  /* values of non-value ops are ignored, even when not finite; ops may be NULL with n_ops 0 */
  cf_op ignored[2] = {{CF_OP_RELU, NAN}, {CF_OP_MISH, INFINITY}};
  cf_status s = cf_plan_create(ctx, &d, ignored, 2, CF_MATH_FP32, &plan);
  cr_expect(s == CF_OK, "RELU/MISH with a NaN/inf value (ignored): %s: %s", cf_status_string(s),
            cf_last_error());
  cf_plan_destroy(plan);
  plan = NULL;
  s = cf_plan_create(ctx, &d, ops, 0, CF_MATH_TF32, &plan);
  cr_expect(s == CF_OK, "n_ops 0 with non-NULL ops, tf32: %s", cf_last_error());
  cf_plan_destroy(plan);
  cf_context_destroy(ctx);
  report("ops/math");
}

/* ---- execute ---- */

#define PATTERN 0xA5

static void fill_pattern(cf_buffer *buf) {
  size_t n = cf_buffer_size(buf);
  unsigned char *h = malloc(n);
  cr_assert(h);
  memset(h, PATTERN, n);
  cr_assert(cf_buffer_write(buf, 0, h, n) == CF_OK, "%s", cf_last_error());
  free(h);
}

static void expect_pattern(const char *what, const cf_buffer *buf) {
  size_t n = cf_buffer_size(buf);
  unsigned char *h = malloc(n);
  cr_assert(h);
  cr_assert(cf_buffer_read(buf, 0, h, n) == CF_OK, "%s", cf_last_error());
  size_t changed = 0;
  for (size_t i = 0; i < n; ++i)
    changed += h[i] != PATTERN;
  cr_expect(changed == 0, "%s: the failed execute changed %zu of %zu output bytes", what, changed,
            n);
  free(h);
}

/* A failing execute: exact status, message, and the output byte-for-byte unchanged. */
#define EXPECT_EXEC_ERR(what, outbuf, call, n1, n2)                            \
  do {                                                                         \
    fill_pattern(outbuf);                                                      \
    EXPECT_ERR(what, call, CF_ERR_INVALID_ARGUMENT, n1, n2, "cf_plan_execute"); \
    cr_assert(cf_context_synchronize(cf_ctx_of_test) == CF_OK);                \
    expect_pattern(what, outbuf);                                              \
  } while (0)

Test(api_errors, execute_errors) {
  cf_context *cf_ctx_of_test = cpu_ctx();
  cf_context *other = cpu_ctx();
  cf_context *ctx = cf_ctx_of_test;
  cf_conv2d_desc d = good_desc(); /* 2x3x9x8 -> 2x5x7x6, bias */
  cf_conv2d_desc dnb = d;
  dnb.has_bias = 0;
  const cf_op ops[2] = {{CF_OP_SUB, 0.5f}, {CF_OP_MISH, 0}};
  tu_problem pb;
  tu_problem_init(&pb, &d, ops, 2, CF_MATH_FP32, TU_DIST_RAND, 77);
  size_t in_b = pb.n_in * 4, w_b = pb.n_w * 4, b_b = pb.n_b * 4, out_b = pb.n_out * 4;
  cf_plan *plan = NULL, *plan_nb = NULL;
  cr_assert(cf_plan_create(ctx, &d, ops, 2, CF_MATH_FP32, &plan) == CF_OK, "%s", cf_last_error());
  cr_assert(cf_plan_create(ctx, &dnb, ops, 2, CF_MATH_FP32, &plan_nb) == CF_OK, "%s",
            cf_last_error());
  cf_buffer *in, *w, *b, *out, *small_in, *small_w, *small_b, *small_out, *o_in, *o_w, *o_b,
      *o_out, *big;
  cr_assert(cf_buffer_create(ctx, in_b, &in) == CF_OK);
  cr_assert(cf_buffer_create(ctx, w_b, &w) == CF_OK);
  cr_assert(cf_buffer_create(ctx, b_b, &b) == CF_OK);
  cr_assert(cf_buffer_create(ctx, out_b, &out) == CF_OK);
  cr_assert(cf_buffer_create(ctx, in_b - 4, &small_in) == CF_OK);
  cr_assert(cf_buffer_create(ctx, w_b - 1, &small_w) == CF_OK);
  cr_assert(cf_buffer_create(ctx, b_b - 4, &small_b) == CF_OK);
  cr_assert(cf_buffer_create(ctx, out_b - 4, &small_out) == CF_OK);
  cr_assert(cf_buffer_create(other, in_b, &o_in) == CF_OK);
  cr_assert(cf_buffer_create(other, w_b, &o_w) == CF_OK);
  cr_assert(cf_buffer_create(other, b_b, &o_b) == CF_OK);
  cr_assert(cf_buffer_create(other, out_b, &o_out) == CF_OK);
  size_t big_b = in_b > out_b ? in_b : out_b;
  big_b = big_b > w_b ? big_b : w_b;
  cr_assert(cf_buffer_create(ctx, big_b, &big) == CF_OK);
  cr_assert(cf_buffer_write(in, 0, pb.input, in_b) == CF_OK);
  cr_assert(cf_buffer_write(w, 0, pb.weight, w_b) == CF_OK);
  cr_assert(cf_buffer_write(b, 0, pb.bias, b_b) == CF_OK);
  char num[32];

  EXPECT_EXEC_ERR("plan NULL", out, cf_plan_execute(NULL, in, w, b, out), "plan", NULL);
  EXPECT_EXEC_ERR("input NULL", out, cf_plan_execute(plan, NULL, w, b, out), "input", "NULL");
  EXPECT_EXEC_ERR("weight NULL", out, cf_plan_execute(plan, in, NULL, b, out), "weight", "NULL");
  EXPECT_ERR("output NULL", cf_plan_execute(plan, in, w, b, NULL), CF_ERR_INVALID_ARGUMENT,
             "output", "NULL", NULL);
  EXPECT_EXEC_ERR("bias missing with has_bias", out, cf_plan_execute(plan, in, w, NULL, out),
                  "bias", "NULL");
  EXPECT_EXEC_ERR("bias given without has_bias", out, cf_plan_execute(plan_nb, in, w, b, out),
                  "bias", "has_bias");
  snprintf(num, sizeof num, "%zu", in_b - 4);
  EXPECT_EXEC_ERR("input too small", out, cf_plan_execute(plan, small_in, w, b, out), "input",
                  num);
  snprintf(num, sizeof num, "%zu", w_b - 1);
  EXPECT_EXEC_ERR("weight too small", out, cf_plan_execute(plan, in, small_w, b, out), "weight",
                  num);
  snprintf(num, sizeof num, "%zu", b_b - 4);
  EXPECT_EXEC_ERR("bias too small", out, cf_plan_execute(plan, in, w, small_b, out), "bias", num);
  snprintf(num, sizeof num, "%zu", out_b);
  EXPECT_EXEC_ERR("output too small", small_out, cf_plan_execute(plan, in, w, b, small_out),
                  "output", num);
  EXPECT_EXEC_ERR("input from another context", out, cf_plan_execute(plan, o_in, w, b, out),
                  "input", "another context");
  EXPECT_EXEC_ERR("weight from another context", out, cf_plan_execute(plan, in, o_w, b, out),
                  "weight", "another context");
  EXPECT_EXEC_ERR("bias from another context", out, cf_plan_execute(plan, in, w, o_b, out),
                  "bias", "another context");
  EXPECT_EXEC_ERR("output from another context", o_out, cf_plan_execute(plan, in, w, b, o_out),
                  "output", "another context");
  EXPECT_EXEC_ERR("output aliases input", big, cf_plan_execute(plan, big, w, b, big), "alias",
                  "input");
  EXPECT_EXEC_ERR("output aliases weight", big, cf_plan_execute(plan, in, big, b, big), "alias",
                  "weight");
  /* bias as output: needs a bias-sized... the output must be big enough, so alias a big
   * buffer used as both bias and output */
  EXPECT_EXEC_ERR("output aliases bias", big, cf_plan_execute(plan, in, w, big, big), "alias",
                  "bias");

  /* the context still works: a correct execute after all those failures */
  tu_poison(pb.output, pb.n_out);
  cr_assert(cf_buffer_write(out, 0, pb.output, out_b) == CF_OK);
  cf_status s = cf_plan_execute(plan, in, w, b, out);
  cr_assert(s == CF_OK, "valid execute after errors: %s", cf_last_error());
  cr_assert(cf_buffer_read(out, 0, pb.output, out_b) == CF_OK);
  tu_check res;
  tu_check_output(&pb, &res);
  cr_expect(res.ok, "valid execute after errors: %s", res.summary);

  cf_buffer *all[] = {in, w, b, out, small_in, small_w, small_b, small_out, o_in, o_w, o_b, o_out,
                      big};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
    cf_buffer_destroy(all[i]);
  cf_plan_destroy(plan);
  cf_plan_destroy(plan_nb);
  cf_context_destroy(other);
  cf_context_destroy(ctx);
  tu_problem_free(&pb);
  report("execute");
}

Test(api_errors, reference_errors) {
  cf_conv2d_desc d = good_desc();
  float x[2 * 3 * 9 * 8] = {0}, w[5 * 3 * 9] = {0}, b[5] = {0}, out[2 * 5 * 7 * 6];
  for (size_t i = 0; i < sizeof out / sizeof out[0]; ++i)
    out[i] = 42.0f;
  EXPECT_ERR("reference desc NULL", cf_reference_conv2d(NULL, NULL, 0, x, w, b, out),
             CF_ERR_INVALID_ARGUMENT, "desc", NULL, NULL);
  EXPECT_ERR("reference input NULL", cf_reference_conv2d(&d, NULL, 0, NULL, w, b, out),
             CF_ERR_INVALID_ARGUMENT, "input", "NULL", NULL);
  EXPECT_ERR("reference weight NULL", cf_reference_conv2d(&d, NULL, 0, x, NULL, b, out),
             CF_ERR_INVALID_ARGUMENT, "weight", "NULL", NULL);
  EXPECT_ERR("reference output NULL", cf_reference_conv2d(&d, NULL, 0, x, w, b, NULL),
             CF_ERR_INVALID_ARGUMENT, "output", "NULL", NULL);
  EXPECT_ERR("reference bias missing", cf_reference_conv2d(&d, NULL, 0, x, w, NULL, out),
             CF_ERR_INVALID_ARGUMENT, "bias", "has_bias", NULL);
  d.has_bias = 0;
  EXPECT_ERR("reference bias given", cf_reference_conv2d(&d, NULL, 0, x, w, b, out),
             CF_ERR_INVALID_ARGUMENT, "bias", "has_bias", NULL);
  EXPECT_ERR("reference ops NULL", cf_reference_conv2d(&d, NULL, 3, x, w, NULL, out),
             CF_ERR_INVALID_ARGUMENT, "ops", "NULL", NULL);
  for (size_t i = 0; i < sizeof out / sizeof out[0]; ++i)
    cr_expect(out[i] == 42.0f, "a failed cf_reference_conv2d wrote out[%zu]", i);
  report("reference");
}

/* ---- lifetime: the deferred destroy in common/api.c ---- */

Test(api_errors, context_destroyed_before_children) {
  cf_context *ctx = cpu_ctx();
  cf_conv2d_desc d = good_desc();
  cf_plan *plan = NULL;
  cf_buffer *buf = NULL, *buf2 = NULL;
  cr_assert(cf_buffer_create(ctx, 256, &buf) == CF_OK);
  cr_assert(cf_buffer_create(ctx, 256, &buf2) == CF_OK);
  cr_assert(cf_plan_create(ctx, &d, NULL, 0, CF_MATH_FP32, &plan) == CF_OK);
  cf_context_destroy(ctx); /* children alive: the context must stay until the last one goes */
  /* creating on a destroyed-but-pending context is refused, not a crash */
  cf_buffer *nb = NULL;
  EXPECT_ERR("buffer_create on a destroyed context", cf_buffer_create(ctx, 16, &nb),
             CF_ERR_INVALID_ARGUMENT, "destroyed", NULL, NULL);
  cf_plan *np = NULL;
  EXPECT_ERR("plan_create on a destroyed context", cf_plan_create(ctx, &d, NULL, 0, 0, &np),
             CF_ERR_INVALID_ARGUMENT, "destroyed", NULL, NULL);
  /* children still usable and destroyable in any order */
  unsigned char h[16] = {1, 2, 3};
  cr_expect(cf_buffer_write(buf, 0, h, 16) == CF_OK, "%s", cf_last_error());
  cf_buffer_destroy(buf);
  cf_plan_destroy(plan);
  cf_buffer_destroy(buf2); /* the last child frees the context */

  /* plan last this time */
  ctx = cpu_ctx();
  cr_assert(cf_buffer_create(ctx, 16, &buf) == CF_OK);
  cr_assert(cf_plan_create(ctx, &d, NULL, 0, CF_MATH_FP32, &plan) == CF_OK);
  cf_context_destroy(ctx);
  cf_buffer_destroy(buf);
  cf_plan_destroy(plan);
  /* and a normal context still works afterwards */
  ctx = cpu_ctx();
  cr_assert(cf_buffer_create(ctx, 16, &buf) == CF_OK);
  cf_buffer_destroy(buf);
  cf_context_destroy(ctx);
}

/* Contexts of other backends, when present: destroyed before their children too. */
Test(api_errors, context_destroyed_before_children_gpu_backends) {
  const cf_backend bs[2] = {CF_BACKEND_OPENCL, CF_BACKEND_CUDA};
  int ran = 0;
  for (int i = 0; i < 2; ++i) {
    if (!cf_backend_available(bs[i]))
      continue;
    cf_context *ctx = NULL;
    cr_assert(cf_context_create(bs[i], &ctx) == CF_OK, "%s", cf_last_error());
    cf_buffer *buf = NULL;
    cr_assert(cf_buffer_create(ctx, 4096, &buf) == CF_OK, "%s", cf_last_error());
    cf_context_destroy(ctx);
    cf_buffer_destroy(buf);
    ran++;
  }
  if (!ran)
    cr_skip_test("no OpenCL or CUDA device");
}
