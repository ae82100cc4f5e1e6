/* test_reference: the double-precision reference (cf_reference_conv2d, cf_reference_point) and
 * the scalar op semantics against values computed by hand. Every other suite trusts the
 * reference, so this one trusts nothing but arithmetic done on paper. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convfuse/convfuse.h"
#include "internal_api.h"
#include "test_util.h"

/* out <- reference(desc, ops) with the given host arrays; fails the test on an error. */
static void run_ref(const cf_conv2d_desc *d, const cf_op *ops, int n_ops, const float *in,
                    const float *w, const float *b, float *out, size_t n_out) {
  tu_poison(out, n_out);
  cf_status s = cf_reference_conv2d(d, ops, n_ops, in, w, b, out);
  cr_assert(s == CF_OK, "cf_reference_conv2d failed: %s: %s", cf_status_string(s),
            cf_last_error());
}

/* float equality within one ulp of the double value (the reference rounds once on store) */
static int close_f(float got, double want) {
  if (isnan(want))
    return isnan(got);
  if (isinf(want))
    return got == want;
  double tol = fabs(want) * 0x1p-23 + 1e-37;
  return fabs((double)got - want) <= tol;
}

/* x[h][w] = h * W + w, channel c adds 100 * c: every value distinct and exact in float. */
static void fill_ramp(float *x, int64_t c, int64_t h, int64_t w) {
  for (int64_t ci = 0; ci < c; ++ci)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j)
        x[(ci * h + i) * w + j] = (float)(100 * ci + i * w + j);
}

Test(reference, identity_1x1_reproduces_input) {
  cf_conv2d_desc d = {.batch = 2, .in_channels = 1, .height = 4, .width = 5, .out_channels = 1,
                      .kernel_h = 1, .kernel_w = 1};
  float in[40], w[1] = {1.0f}, out[40];
  tu_rng rng;
  tu_rng_seed(&rng, 1);
  tu_fill_input(in, 40, TU_DIST_X3, &rng);
  run_ref(&d, NULL, 0, in, w, NULL, out, 40);
  for (int i = 0; i < 40; ++i)
    cr_expect(out[i] == in[i], "identity: out[%d] = %.9g, want input %.9g", i, (double)out[i],
              (double)in[i]);
}

Test(reference, identity_matrix_1x1_over_channels) {
  /* 3 channels, weight = identity matrix: channel k of the output is channel k of the input */
  cf_conv2d_desc d = {.batch = 1, .in_channels = 3, .height = 2, .width = 3, .out_channels = 3,
                      .kernel_h = 1, .kernel_w = 1};
  float in[18], w[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, out[18];
  fill_ramp(in, 3, 2, 3);
  run_ref(&d, NULL, 0, in, w, NULL, out, 18);
  for (int i = 0; i < 18; ++i)
    cr_expect(out[i] == in[i], "out[%d] = %g, want %g", i, (double)out[i], (double)in[i]);
}

Test(reference, ones_3x3_sums_neighbourhood) {
  /* x[h][w] = 5h + w on 4x5, 3x3 ones, no padding: 2x3 output, out = 9 * centre value */
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 4, .width = 5, .out_channels = 1,
                      .kernel_h = 3, .kernel_w = 3};
  float in[20], w[9], out[6];
  fill_ramp(in, 1, 4, 5);
  for (int i = 0; i < 9; ++i)
    w[i] = 1.0f;
  int64_t oh, ow;
  cr_assert(cf_conv2d_output_dims(&d, &oh, &ow) == CF_OK);
  cr_assert(oh == 2 && ow == 3, "output dims %lldx%lld, want 2x3", (long long)oh, (long long)ow);
  run_ref(&d, NULL, 0, in, w, NULL, out, 6);
  /* by hand: (0+1+2)+(5+6+7)+(10+11+12) = 54; (7+8+9)+(12+13+14)+(17+18+19) = 117 */
  cr_expect(out[0] == 54.0f, "out[0][0] = %g, want 54", (double)out[0]);
  cr_expect(out[5] == 117.0f, "out[1][2] = %g, want 117", (double)out[5]);
  const float want[6] = {54, 63, 72, 99, 108, 117};
  for (int i = 0; i < 6; ++i)
    cr_expect(out[i] == want[i], "out[%d] = %g, want %g", i, (double)out[i], (double)want[i]);
}

Test(reference, two_channels_sum_into_one_output) {
  /* 2 input channels (ramp and ramp + 100), 1x1 weights 2 and -1: out = 2x - (x + 100) = x - 100 */
  cf_conv2d_desc d = {.batch = 1, .in_channels = 2, .height = 2, .width = 2, .out_channels = 1,
                      .kernel_h = 1, .kernel_w = 1};
  float in[8], w[2] = {2.0f, -1.0f}, out[4];
  fill_ramp(in, 2, 2, 2);
  run_ref(&d, NULL, 0, in, w, NULL, out, 4);
  for (int i = 0; i < 4; ++i)
    cr_expect(out[i] == (float)(i - 100), "out[%d] = %g, want %d", i, (double)out[i], i - 100);
}

Test(reference, zero_padding_borders) {
  /* 3x3 of ones, 3x3 ones kernel, pad 1: corners see 4 inputs, edges 6, the centre 9 */
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 3, .width = 3, .out_channels = 1,
                      .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1};
  float in[9], w[9], out[9];
  for (int i = 0; i < 9; ++i)
    in[i] = w[i] = 1.0f;
  run_ref(&d, NULL, 0, in, w, NULL, out, 9);
  const float want[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
  for (int i = 0; i < 9; ++i)
    cr_expect(out[i] == want[i], "pad 1: out[%d][%d] = %g, want %g", i / 3, i % 3,
              (double)out[i], (double)want[i]);
}

Test(reference, pad_2_corner_sees_one_tap) {
  /* 2x2 ramp input, 3x3 kernel with distinct taps 1..9 (w[r][s] = 3r + s + 1), pad 2:
   * output 4x4; out[0][0] only overlaps input (0,0) at tap (2,2) = 9: 9 * x[0][0] = 0;
   * out[0][1] overlaps x[0][0] at tap (2,1) = 8 and x[0][1] (=1) at tap (2,2) = 9: 9. */
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 2, .width = 2, .out_channels = 1,
                      .kernel_h = 3, .kernel_w = 3, .pad_h = 2, .pad_w = 2};
  float in[4] = {1, 2, 3, 4}, w[9], out[16];
  for (int i = 0; i < 9; ++i)
    w[i] = (float)(i + 1);
  run_ref(&d, NULL, 0, in, w, NULL, out, 16);
  /* out[p][q] = sum over (r,s) w[r][s] * x[p-2+r][q-2+s] */
  cr_expect(out[0] == 9.0f * 1, "out[0][0] = %g, want 9 (tap 9 x x00=1)", (double)out[0]);
  cr_expect(out[1] == 8.0f * 1 + 9.0f * 2, "out[0][1] = %g, want 26", (double)out[1]);
  cr_expect(out[3] == 7.0f * 2, "out[0][3] = %g, want 14 (tap 7 x x01=2)", (double)out[3]);
  cr_expect(out[12] == 3.0f * 3, "out[3][0] = %g, want 9 (tap 3 x x10=3)", (double)out[12]);
  cr_expect(out[15] == 1.0f * 4, "out[3][3] = %g, want 4 (tap 1 x x11=4)", (double)out[15]);
  /* centre-ish: out[1][1] sees all four inputs at taps (1,1)=5,(1,2)=6,(2,1)=8,(2,2)=9 */
  cr_expect(out[5] == 5.0f * 1 + 6.0f * 2 + 8.0f * 3 + 9.0f * 4, "out[1][1] = %g, want 77",
            (double)out[5]);
}

Test(reference, stride_2_picks_every_other_pixel) {
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 5, .width = 5, .out_channels = 1,
                      .kernel_h = 1, .kernel_w = 1, .stride_h = 2, .stride_w = 2};
  float in[25], w[1] = {1.0f}, out[9];
  fill_ramp(in, 1, 5, 5);
  int64_t oh, ow;
  cr_assert(cf_conv2d_output_dims(&d, &oh, &ow) == CF_OK);
  cr_assert(oh == 3 && ow == 3, "dims %lldx%lld, want 3x3", (long long)oh, (long long)ow);
  run_ref(&d, NULL, 0, in, w, NULL, out, 9);
  for (int p = 0; p < 3; ++p)
    for (int q = 0; q < 3; ++q)
      cr_expect(out[p * 3 + q] == (float)(10 * p + 2 * q), "stride 2: out[%d][%d] = %g, want %d",
                p, q, (double)out[p * 3 + q], 10 * p + 2 * q);
}

Test(reference, stride_asymmetric_3x3) {
  /* 7x6 ramp, 3x3 ones, stride (2,3): out dims (3, 2); out[p][q] = 9 * x[2p+1][3q+1] */
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 7, .width = 6, .out_channels = 1,
                      .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 3};
  float in[42], w[9], out[6];
  fill_ramp(in, 1, 7, 6);
  for (int i = 0; i < 9; ++i)
    w[i] = 1.0f;
  int64_t oh, ow;
  cr_assert(cf_conv2d_output_dims(&d, &oh, &ow) == CF_OK);
  cr_assert(oh == 3 && ow == 2, "dims %lldx%lld, want 3x2", (long long)oh, (long long)ow);
  run_ref(&d, NULL, 0, in, w, NULL, out, 6);
  for (int p = 0; p < 3; ++p)
    for (int q = 0; q < 2; ++q) {
      float want = 9.0f * (float)((2 * p + 1) * 6 + 3 * q + 1);
      cr_expect(out[p * 2 + q] == want, "out[%d][%d] = %g, want %g", p, q,
                (double)out[p * 2 + q], (double)want);
    }
}

Test(reference, dilation_2_picks_spread_taps) {
  /* 5x5 ramp, 2x2 kernel [[1,10],[100,1000]], dilation 2: out[p][q] = x[p][q] + 10 x[p][q+2]
   * + 100 x[p+2][q] + 1000 x[p+2][q+2]; output 3x3 */
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 5, .width = 5, .out_channels = 1,
                      .kernel_h = 2, .kernel_w = 2, .dilation_h = 2, .dilation_w = 2};
  float in[25], w[4] = {1, 10, 100, 1000}, out[9];
  fill_ramp(in, 1, 5, 5);
  int64_t oh, ow;
  cr_assert(cf_conv2d_output_dims(&d, &oh, &ow) == CF_OK);
  cr_assert(oh == 3 && ow == 3, "dims %lldx%lld, want 3x3", (long long)oh, (long long)ow);
  run_ref(&d, NULL, 0, in, w, NULL, out, 9);
  cr_expect(out[0] == 13020.0f, "out[0][0] = %g, want 0 + 20 + 1000 + 12000 = 13020",
            (double)out[0]);
  cr_expect(out[8] == 26352.0f, "out[2][2] = %g, want 12 + 140 + 2200 + 24000 = 26352",
            (double)out[8]);
  cr_expect(out[1] == 14131.0f, "out[0][1] = %g, want 1 + 30 + 1100 + 13000 = 14131",
            (double)out[1]);
}

Test(reference, stride_2_dilation_2_pad_1) {
  /* 6x6 ramp, 3x3 kernel with one nonzero tap at (r,s) = (1,2) (weight 1), stride 2,
   * dilation 2, pad 1: out[p][q] = x[2p - 1 + 2][2q - 1 + 4] = x[2p+1][2q+3] (0 outside).
   * Dims: padded 8, span 5: (8-5)/2+1 = 2. */
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 6, .width = 6, .out_channels = 1,
                      .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1,
                      .pad_w = 1, .dilation_h = 2, .dilation_w = 2};
  float in[36], w[9] = {0, 0, 0, 0, 0, 1, 0, 0, 0}, out[4];
  fill_ramp(in, 1, 6, 6);
  int64_t oh, ow;
  cr_assert(cf_conv2d_output_dims(&d, &oh, &ow) == CF_OK);
  cr_assert(oh == 2 && ow == 2, "dims %lldx%lld, want 2x2", (long long)oh, (long long)ow);
  run_ref(&d, NULL, 0, in, w, NULL, out, 4);
  cr_expect(out[0] == 9.0f, "out[0][0] = %g, want x[1][3] = 9", (double)out[0]);
  cr_expect(out[1] == 11.0f, "out[0][1] = %g, want x[1][5] = 11", (double)out[1]);
  cr_expect(out[2] == 21.0f, "out[1][0] = %g, want x[3][3] = 21", (double)out[2]);
  cr_expect(out[3] == 23.0f, "out[1][1] = %g, want x[3][5] = 23", (double)out[3]);
}

Test(reference, rectangular_3x1_kernel) {
  /* 4x3 ramp, kernel 3x1 with taps (1, 2, 3): out[p][q] = x[p][q] + 2x[p+1][q] + 3x[p+2][q] */
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 4, .width = 3, .out_channels = 1,
                      .kernel_h = 3, .kernel_w = 1};
  float in[12], w[3] = {1, 2, 3}, out[6];
  fill_ramp(in, 1, 4, 3);
  run_ref(&d, NULL, 0, in, w, NULL, out, 6);
  for (int p = 0; p < 2; ++p)
    for (int q = 0; q < 3; ++q) {
      float want = (float)((3 * p + q) + 2 * (3 * (p + 1) + q) + 3 * (3 * (p + 2) + q));
      cr_expect(out[p * 3 + q] == want, "out[%d][%d] = %g, want %g", p, q,
                (double)out[p * 3 + q], (double)want);
    }
}

Test(reference, bias_added_per_output_channel_and_batch_layout) {
  /* batch 2, 1 channel 2x2, 2 output channels with 1x1 weights (1, -2) and bias (10, 0.5):
   * output [n][k] planes in NCHW order */
  cf_conv2d_desc d = {.batch = 2, .in_channels = 1, .height = 2, .width = 2, .out_channels = 2,
                      .kernel_h = 1, .kernel_w = 1, .has_bias = 1};
  float in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, w[2] = {1, -2}, b[2] = {10, 0.5f}, out[16];
  run_ref(&d, NULL, 0, in, w, b, out, 16);
  for (int n = 0; n < 2; ++n)
    for (int k = 0; k < 2; ++k)
      for (int i = 0; i < 4; ++i) {
        float x = in[n * 4 + i];
        float want = w[k] * x + b[k];
        float got = out[(n * 2 + k) * 4 + i];
        cr_expect(got == want, "out[n%d][k%d][%d] = %g, want %g", n, k, i, (double)got,
                  (double)want);
      }
  /* and without bias the same weights give no offset */
  d.has_bias = 0;
  run_ref(&d, NULL, 0, in, w, NULL, out, 16);
  cr_expect(out[0] == 1.0f && out[4] == -2.0f, "no bias: out = %g, %g, want 1, -2",
            (double)out[0], (double)out[4]);
}

/* ---- the pointwise ops ---- */

/* op(x) through the public reference: a 1x1 identity conv on a 1x1 input holding x. */
static float ref_op_f(cf_op op, float x) {
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 1, .width = 1, .out_channels = 1,
                      .kernel_h = 1, .kernel_w = 1};
  float w = 1.0f, out = 0.0f;
  run_ref(&d, &op, 1, &x, &w, NULL, &out, 1);
  return out;
}

/* op(x) in double through cf_reference_point (before rounding to float). */
static double ref_op_d(cf_op op, float x) {
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 1, .width = 1, .out_channels = 1,
                      .kernel_h = 1, .kernel_w = 1};
  cf_conv_shape sh;
  cr_assert(cf_shape_resolve("test", &d, &sh) == CF_OK);
  float w = 1.0f;
  return cf_reference_point(&sh, &op, 1, &x, &w, NULL, 0, 0, 0, 0);
}

static const char *kind_name(cf_op_kind k) {
  static const char *const n[] = {"add", "sub", "mul", "relu", "tanh", "sigmoid", "softplus",
                                  "mish"};
  return (unsigned)k < 8 ? n[k] : "?";
}

static void expect_op(cf_op_kind kind, float value, float x, double want) {
  cf_op op = {kind, value};
  double d = ref_op_d(op, x);
  float f = ref_op_f(op, x);
  int ok_d = isnan(want) ? isnan(d) : isinf(want) ? d == want : fabs(d - want) <= 1e-15 + 1e-14 * fabs(want);
  cr_expect(ok_d, "%s(%.9g) [value %g] = %.17g in double, want %.17g", kind_name(kind),
            (double)x, (double)value, d, want);
  cr_expect(close_f(f, want), "%s(%.9g) [value %g] = %.9g as float, want %.9g", kind_name(kind),
            (double)x, (double)value, (double)f, want);
}

Test(reference, known_op_values) {
  expect_op(CF_OP_MISH, 0.0f, 0.0f, 0.0);
  expect_op(CF_OP_MISH, 0.0f, 1.0f, 0.8650983882673103);
  /* -tanh(log(1 + 1/e)) = -0.303401461374108918074... (30-digit arithmetic) */
  expect_op(CF_OP_MISH, 0.0f, -1.0f, -0.30340146137410892);
  expect_op(CF_OP_SOFTPLUS, 0.0f, 0.0f, log(2.0));
  expect_op(CF_OP_SOFTPLUS, 0.0f, 30.0f, 30.0);
  expect_op(CF_OP_SOFTPLUS, 0.0f, 1.0f, 1.3132616875182228);
  expect_op(CF_OP_SIGMOID, 0.0f, 0.0f, 0.5);
  expect_op(CF_OP_SIGMOID, 0.0f, 2.0f, 0.8807970779778823);
  expect_op(CF_OP_TANH, 0.0f, 0.0f, 0.0);
  expect_op(CF_OP_TANH, 0.0f, 0.5f, 0.46211715726000974);
  expect_op(CF_OP_RELU, 0.0f, -2.5f, 0.0);
  expect_op(CF_OP_RELU, 0.0f, 2.5f, 2.5);
  expect_op(CF_OP_ADD, 0.25f, 1.0f, 1.25);
  expect_op(CF_OP_SUB, 0.25f, 1.0f, 0.75);
  expect_op(CF_OP_MUL, -3.0f, 1.5f, -4.5);
}

Test(reference, non_finite_op_values) {
  expect_op(CF_OP_RELU, 0.0f, NAN, NAN);
  expect_op(CF_OP_MISH, 0.0f, INFINITY, INFINITY);
  expect_op(CF_OP_SOFTPLUS, 0.0f, INFINITY, INFINITY);
  expect_op(CF_OP_SOFTPLUS, 0.0f, -INFINITY, 0.0);
  expect_op(CF_OP_SIGMOID, 0.0f, INFINITY, 1.0);
  expect_op(CF_OP_SIGMOID, 0.0f, -INFINITY, 0.0);
  expect_op(CF_OP_TANH, 0.0f, INFINITY, 1.0);
  expect_op(CF_OP_TANH, 0.0f, -INFINITY, -1.0);
  expect_op(CF_OP_RELU, 0.0f, INFINITY, INFINITY);
  expect_op(CF_OP_RELU, 0.0f, -INFINITY, 0.0);
  /* mish(-inf) is 0 or -0 (DESIGN.md): check it is a zero, either sign */
  cf_op mish = {CF_OP_MISH, 0.0f};
  double d = ref_op_d(mish, -INFINITY);
  float f = ref_op_f(mish, -INFINITY);
  cr_expect(d == 0.0, "mish(-inf) = %g in double, want 0 or -0", d);
  cr_expect(f == 0.0f, "mish(-inf) = %g as float, want 0 or -0", (double)f);
}

Test(reference, nan_propagates_through_every_op) {
  for (int k = CF_OP_ADD; k <= CF_OP_MISH; ++k) {
    cf_op op = {(cf_op_kind)k, 0.5f};
    double d = ref_op_d(op, NAN);
    float f = ref_op_f(op, NAN);
    cr_expect(isnan(d), "%s(NaN) = %g in double, want NaN", kind_name((cf_op_kind)k), d);
    cr_expect(isnan(f), "%s(NaN) = %g as float, want NaN", kind_name((cf_op_kind)k), (double)f);
  }
}

Test(reference, mish_matches_its_definition_over_a_range) {
  /* mish(x) = x * tanh(log1p(exp(x))) evaluated here independently, -30..30 */
  cf_op mish = {CF_OP_MISH, 0.0f};
  for (int i = -300; i <= 300; i += 7) {
    float x = (float)i / 10.0f;
    double want = (double)x * tanh(log1p(exp((double)x)));
    double d = ref_op_d(mish, x);
    cr_expect(fabs(d - want) <= 1e-14 * fabs(want) + 1e-300, "mish(%g) = %.17g, want %.17g",
              (double)x, d, want);
  }
}

Test(reference, op_order_matters) {
  /* x = 3: ADD 1 then MUL 2 = 8; MUL 2 then ADD 1 = 7 */
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 1, .width = 1, .out_channels = 1,
                      .kernel_h = 1, .kernel_w = 1};
  float x = 3.0f, w = 1.0f, out;
  cf_op add_mul[2] = {{CF_OP_ADD, 1.0f}, {CF_OP_MUL, 2.0f}};
  cf_op mul_add[2] = {{CF_OP_MUL, 2.0f}, {CF_OP_ADD, 1.0f}};
  run_ref(&d, add_mul, 2, &x, &w, NULL, &out, 1);
  cr_expect(out == 8.0f, "add(1),mul(2) on 3 = %g, want 8", (double)out);
  run_ref(&d, mul_add, 2, &x, &w, NULL, &out, 1);
  cr_expect(out == 7.0f, "mul(2),add(1) on 3 = %g, want 7", (double)out);
  /* relu before vs after a negating MUL */
  cf_op relu_neg[2] = {{CF_OP_RELU, 0.0f}, {CF_OP_MUL, -1.0f}};
  cf_op neg_relu[2] = {{CF_OP_MUL, -1.0f}, {CF_OP_RELU, 0.0f}};
  run_ref(&d, relu_neg, 2, &x, &w, NULL, &out, 1);
  cr_expect(out == -3.0f, "relu,mul(-1) on 3 = %g, want -3", (double)out);
  run_ref(&d, neg_relu, 2, &x, &w, NULL, &out, 1);
  cr_expect(out == 0.0f, "mul(-1),relu on 3 = %g, want 0", (double)out);
}

Test(reference, chain_applies_after_bias) {
  /* conv = 2 * 1.5 = 3, bias 0.5 -> 3.5; sub 0.5 -> 3; sub 0.2 -> 2.8; mish(2.8) */
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 1, .width = 1, .out_channels = 1,
                      .kernel_h = 1, .kernel_w = 1, .has_bias = 1};
  float x = 1.5f, w = 2.0f, b = 0.5f, out;
  cf_op ops[3] = {{CF_OP_SUB, 0.5f}, {CF_OP_SUB, 0.2f}, {CF_OP_MISH, 0}};
  run_ref(&d, ops, 3, &x, &w, &b, &out, 1);
  double v = 3.5 - 0.5 - (double)0.2f;
  double want = v * tanh(log1p(exp(v)));
  cr_expect(close_f(out, want), "sub-sub-mish: got %.9g, want %.9g", (double)out, want);
}

Test(reference, full_8_op_chain) {
  cf_conv2d_desc d = {.batch = 1, .in_channels = 1, .height = 1, .width = 1, .out_channels = 1,
                      .kernel_h = 1, .kernel_w = 1};
  cf_op ops[8] = {{CF_OP_ADD, 0.25f}, {CF_OP_MUL, 1.5f},  {CF_OP_TANH, 0},
                  {CF_OP_SUB, 0.125f}, {CF_OP_SOFTPLUS, 0}, {CF_OP_SIGMOID, 0},
                  {CF_OP_RELU, 0},    {CF_OP_MISH, 0}};
  float w = 1.0f;
  for (int i = -4; i <= 4; ++i) {
    float x = (float)i * 0.75f, out;
    run_ref(&d, ops, 8, &x, &w, NULL, &out, 1);
    double v = ((double)x + 0.25) * 1.5;
    v = tanh(v) - 0.125;
    v = log1p(exp(v));
    v = 1.0 / (1.0 + exp(-v));
    v = v < 0 ? 0 : v;
    v = v * tanh(log1p(exp(v)));
    cr_expect(close_f(out, v), "8-op chain on %g: got %.9g, want %.9g", (double)x, (double)out,
              v);
  }
}

Test(reference, threaded_run_matches_point_reference) {
  /* Large enough (>= 4e6 MACs) that cf_reference_conv2d splits over threads; every element
   * must equal cf_reference_point rounded to float (same accumulation order in double). */
  cf_conv2d_desc d = {.batch = 2, .in_channels = 16, .height = 34, .width = 33,
                      .out_channels = 40, .kernel_h = 3, .kernel_w = 3, .pad_h = 1,
                      .stride_w = 2, .has_bias = 1};
  cf_op ops[2] = {{CF_OP_SUB, 0.5f}, {CF_OP_MISH, 0}};
  tu_problem pb;
  tu_problem_init(&pb, &d, ops, 2, CF_MATH_FP32, TU_DIST_RAND, 0xabcdef);
  run_ref(&d, ops, 2, pb.input, pb.weight, pb.bias, pb.output, pb.n_out);
  cf_conv_shape sh;
  cr_assert(cf_shape_resolve("test", &d, &sh) == CF_OK);
  int64_t idx = 0, bad = 0;
  for (int64_t n = 0; n < sh.n; ++n)
    for (int64_t k = 0; k < sh.k; ++k)
      for (int64_t p = 0; p < sh.p; ++p)
        for (int64_t q = 0; q < sh.q; ++q, ++idx) {
          double ref = cf_reference_point(&sh, ops, 2, pb.input, pb.weight, pb.bias, n, k, p, q);
          if (!close_f(pb.output[idx], ref) && bad++ < 5)
            cr_expect(0, "[n%lld k%lld p%lld q%lld]: conv2d %.9g, point %.17g", (long long)n,
                      (long long)k, (long long)p, (long long)q, (double)pb.output[idx], ref);
        }
  cr_expect(bad == 0, "%lld of %lld elements differ", (long long)bad, (long long)idx);
  tu_problem_free(&pb);
}

Test(reference, output_dims_follow_pytorch) {
  struct {
    cf_conv2d_desc d;
    int64_t oh, ow;
  } cases[] = {
      /* the two workloads: 256 -> 254 */
      {{128, 8, 256, 256, 64, 3, 3, 1, 1, 0, 0, 1, 1, 1}, 254, 254},
      /* floor((13 + 2*1 - 3) / 2) + 1 = 7; floor((17 + 2 - 3) / 2) + 1 = 9 */
      {{1, 1, 13, 17, 1, 3, 3, 2, 2, 1, 1, 1, 1, 0}, 7, 9},
      /* dilation 2, 5x5: span 9; 13 + 4 - 9 + 1 = 9, 17 + 4 - 9 + 1 = 13 */
      {{1, 1, 13, 17, 1, 5, 5, 1, 1, 2, 2, 2, 2, 0}, 9, 13},
      /* stride 0 and dilation 0 mean 1 */
      {{1, 1, 5, 6, 1, 3, 1, 0, 0, 0, 0, 0, 0, 0}, 3, 6},
      /* kernel exactly as large as the padded input: 1x1 output */
      {{1, 1, 3, 3, 1, 5, 5, 1, 1, 1, 1, 1, 1, 0}, 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    int64_t oh = -1, ow = -1;
    cf_status s = cf_conv2d_output_dims(&cases[i].d, &oh, &ow);
    cr_expect(s == CF_OK && oh == cases[i].oh && ow == cases[i].ow,
              "case %zu: status %s, dims %lldx%lld, want %lldx%lld (%s)", i,
              cf_status_string(s), (long long)oh, (long long)ow, (long long)cases[i].oh,
              (long long)cases[i].ow, cf_last_error());
  }
}
