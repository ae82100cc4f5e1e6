#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal_api.h"
#include "shape.h"

/* ---- PRNG ---- */

void tu_rng_seed(tu_rng *rng, uint64_t seed) { rng->state = seed ^ 0x9e3779b97f4a7c15ull; }

uint64_t tu_rng_next(tu_rng *rng) {
  uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

float tu_rng_uniform(tu_rng *rng) {
  return (float)(tu_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

/* ---- distributions ---- */

const char *tu_dist_name(tu_dist d) {
  switch (d) {
  case TU_DIST_RAND: return "rand";
  case TU_DIST_X3: return "x3";
  case TU_DIST_X001: return "x0.01";
  case TU_DIST_NEG: return "neg";
  case TU_DIST_COUNT: break;
  }
  return "?";
}

void tu_fill_input(float *x, size_t n, tu_dist dist, tu_rng *rng) {
  for (size_t i = 0; i < n; ++i) {
    float u = tu_rng_uniform(rng);
    switch (dist) {
    case TU_DIST_X3: u *= 3.0f; break;
    case TU_DIST_X001: u *= 0.01f; break;
    case TU_DIST_NEG: u = -u; break;
    default: break;
    }
    x[i] = u;
  }
}

void tu_fill_param(float *x, size_t n, int64_t fan_in, tu_rng *rng) {
  double b = 1.0 / sqrt((double)fan_in);
  for (size_t i = 0; i < n; ++i)
    x[i] = (float)((2.0 * (double)tu_rng_uniform(rng) - 1.0) * b);
}

void tu_poison(float *x, size_t n) {
  for (size_t i = 0; i < n; ++i)
    x[i] = NAN;
}

/* ---- problems ---- */

const char *tu_math_name(cf_math m) {
  return m == CF_MATH_FP32 ? "fp32" : m == CF_MATH_TF32 ? "tf32" : "?";
}

void tu_describe_desc(const cf_conv2d_desc *d, char *buf, size_t len) {
  snprintf(buf, len,
           "N%lldxC%lldx%lldx%lld K%lld R%lldxS%lld st%lldx%lld pad%lldx%lld dil%lldx%lld bias%d",
           (long long)d->batch, (long long)d->in_channels, (long long)d->height,
           (long long)d->width, (long long)d->out_channels, (long long)d->kernel_h,
           (long long)d->kernel_w, (long long)(d->stride_h ? d->stride_h : 1),
           (long long)(d->stride_w ? d->stride_w : 1), (long long)d->pad_h, (long long)d->pad_w,
           (long long)(d->dilation_h ? d->dilation_h : 1),
           (long long)(d->dilation_w ? d->dilation_w : 1), d->has_bias);
}

static const char *op_name(cf_op_kind k) {
  static const char *const names[] = {"add",  "sub",     "mul",      "relu",
                                      "tanh", "sigmoid", "softplus", "mish"};
  unsigned u = (unsigned)k;
  return u < sizeof names / sizeof names[0] ? names[u] : "?";
}

void tu_describe_ops(const cf_op *ops, int n_ops, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < n_ops && used < len; ++i) {
    const char *sep = i ? "," : "";
    if (ops[i].kind == CF_OP_ADD || ops[i].kind == CF_OP_SUB || ops[i].kind == CF_OP_MUL)
      used += (size_t)snprintf(buf + used, len - used, "%s%s(%g)", sep, op_name(ops[i].kind),
                               (double)ops[i].value);
    else
      used += (size_t)snprintf(buf + used, len - used, "%s%s", sep, op_name(ops[i].kind));
  }
  if (n_ops == 0)
    snprintf(buf, len, "none");
}

void tu_problem_refill(tu_problem *pb, uint64_t seed) {
  tu_rng rng;
  pb->seed = seed;
  tu_rng_seed(&rng, seed);
  int64_t fan_in = pb->desc.in_channels * pb->desc.kernel_h * pb->desc.kernel_w;
  tu_fill_input(pb->input, pb->n_in, pb->dist, &rng);
  tu_fill_param(pb->weight, pb->n_w, fan_in, &rng);
  if (pb->bias)
    tu_fill_param(pb->bias, pb->n_b, fan_in, &rng);
  tu_poison(pb->output, pb->n_out);
}

void tu_problem_init(tu_problem *pb, const cf_conv2d_desc *desc, const cf_op *ops, int n_ops,
                     cf_math math, tu_dist dist, uint64_t seed) {
  memset(pb, 0, sizeof *pb);
  pb->desc = *desc;
  cr_assert(n_ops >= 0 && n_ops <= CF_MAX_OPS, "test bug: n_ops %d", n_ops);
  if (n_ops)
    memcpy(pb->ops, ops, (size_t)n_ops * sizeof *ops);
  pb->n_ops = n_ops;
  pb->math = math;
  pb->dist = dist;
  cf_status s = cf_conv2d_output_dims(desc, &pb->out_h, &pb->out_w);
  cr_assert(s == CF_OK, "test bug: invalid descriptor: %s", cf_last_error());
  pb->n_in = (size_t)(desc->batch * desc->in_channels * desc->height * desc->width);
  pb->n_w = (size_t)(desc->out_channels * desc->in_channels * desc->kernel_h * desc->kernel_w);
  pb->n_b = desc->has_bias ? (size_t)desc->out_channels : 0;
  pb->n_out = (size_t)(desc->batch * desc->out_channels * pb->out_h * pb->out_w);
  pb->input = malloc(pb->n_in * sizeof(float));
  pb->weight = malloc(pb->n_w * sizeof(float));
  pb->bias = pb->n_b ? malloc(pb->n_b * sizeof(float)) : NULL;
  pb->output = malloc(pb->n_out * sizeof(float));
  cr_assert(pb->input && pb->weight && pb->output && (pb->bias || !pb->n_b), "out of memory");
  tu_problem_refill(pb, seed);
}

void tu_problem_free(tu_problem *pb) {
  free(pb->input);
  free(pb->weight);
  free(pb->bias);
  free(pb->output);
  memset(pb, 0, sizeof *pb);
}

/* ---- checking ---- */

void tu_tolerance(cf_math math, double *atol, double *rtol, double *rel_l2_max) {
  if (math == CF_MATH_TF32) {
    *atol = 1e-2;
    *rtol = 1e-2;
    *rel_l2_max = 2e-3;
  } else {
    *atol = 1e-4;
    *rtol = 1e-4;
    *rel_l2_max = 1e-5;
  }
}

void tu_check_output(const tu_problem *pb, tu_check *res) {
  memset(res, 0, sizeof *res);
  res->first_bad = -1;
  cf_conv_shape sh;
  cf_status s = cf_shape_resolve("tu_check_output", &pb->desc, &sh);
  cr_assert(s == CF_OK, "test bug: %s", cf_last_error());
  double atol, rtol, l2max;
  tu_tolerance(pb->math, &atol, &rtol, &l2max);
  double err2 = 0.0, ref2 = 0.0;
  int64_t zeros = 0, idx = 0;
  for (int64_t n = 0; n < sh.n; ++n)
    for (int64_t k = 0; k < sh.k; ++k)
      for (int64_t p = 0; p < sh.p; ++p)
        for (int64_t q = 0; q < sh.q; ++q, ++idx) {
          double ref = cf_reference_point(&sh, pb->ops, pb->n_ops, pb->input, pb->weight,
                                          pb->bias, n, k, p, q);
          double got = (double)pb->output[idx];
          int bad;
          if (isnan(ref)) {
            bad = !isnan(got);
          } else if (isinf(ref)) {
            bad = got != ref;
          } else if (!isfinite(got)) {
            bad = 1;
            res->n_nan_bad++;
          } else {
            double e = fabs(got - ref);
            if (e > res->max_abs_err)
              res->max_abs_err = e;
            bad = e > atol + rtol * fabs(ref);
            err2 += e * e;
            ref2 += ref * ref;
          }
          if (ref == 0.0)
            zeros++;
          if (bad) {
            if (res->first_bad < 0) {
              res->first_bad = idx;
              res->first_got = got;
              res->first_ref = ref;
            }
            res->n_bad++;
          }
        }
  res->rel_l2 = ref2 > 0.0 ? sqrt(err2 / ref2) : sqrt(err2);
  res->rel_l2_bad = !(res->rel_l2 <= l2max);
  res->zero_fraction = idx ? (double)zeros / (double)idx : 1.0;
  res->degenerate = res->zero_fraction > 0.9;
  res->ok = res->n_bad == 0 && !res->rel_l2_bad && !res->degenerate;
  if (res->ok) {
    snprintf(res->summary, sizeof res->summary, "ok (max abs err %.3g, rel-L2 %.3g)",
             res->max_abs_err, res->rel_l2);
    return;
  }
  int used = 0;
  if (res->n_bad) {
    int64_t f = res->first_bad, q = f % sh.q, p = (f / sh.q) % sh.p, k = (f / (sh.p * sh.q)) % sh.k,
            n = f / (sh.k * sh.p * sh.q);
    used = snprintf(res->summary, sizeof res->summary,
                    "%lld of %lld elements out of tolerance (%lld non-finite where the reference "
                    "is finite); first at [n%lld k%lld p%lld q%lld]: got %.9g, ref %.9g; ",
                    (long long)res->n_bad, (long long)idx, (long long)res->n_nan_bad,
                    (long long)n, (long long)k, (long long)p, (long long)q, res->first_got,
                    res->first_ref);
  }
  if (used >= 0 && (size_t)used < sizeof res->summary)
    used += snprintf(res->summary + used, sizeof res->summary - (size_t)used,
                     "max abs err %.3g (tol %.0e + %.0e|ref|), rel-L2 %.3g (max %.0e)%s",
                     res->max_abs_err, atol, rtol, res->rel_l2, l2max,
                     res->rel_l2_bad ? " EXCEEDED" : "");
  if (res->degenerate && used >= 0 && (size_t)used < sizeof res->summary)
    snprintf(res->summary + used, sizeof res->summary - (size_t)used,
             "; DEGENERATE case: %.0f%% of the reference outputs are zero", 100.0 * res->zero_fraction);
}

void tu_repro_line(const char *backend, const tu_problem *pb, char *buf, size_t len) {
  char shape[160], ops[200];
  tu_describe_desc(&pb->desc, shape, sizeof shape);
  tu_describe_ops(pb->ops, pb->n_ops, ops, sizeof ops);
  snprintf(buf, len, "REPRO backend=%s shape=[%s] ops=%s math=%s dist=%s seed=0x%llx", backend,
           shape, ops, tu_math_name(pb->math), tu_dist_name(pb->dist),
           (unsigned long long)pb->seed);
}

/* Guard band after the output: an out-of-bounds write past the end changes it. */
#define TU_GUARD_FLOATS 64
#define TU_GUARD_VALUE 12345.6789f

cf_status tu_run_on_context(cf_context *ctx, tu_problem *pb, const char **where) {
  cf_buffer *bi = NULL, *bw = NULL, *bb = NULL, *bo = NULL;
  cf_plan *plan = NULL;
  cf_status s;
  float guard[TU_GUARD_FLOATS];
  for (int i = 0; i < TU_GUARD_FLOATS; ++i)
    guard[i] = TU_GUARD_VALUE;
  size_t out_bytes = pb->n_out * sizeof(float);
  *where = "cf_buffer_create";
  s = cf_buffer_create(ctx, pb->n_in * sizeof(float), &bi);
  if (s == CF_OK)
    s = cf_buffer_create(ctx, pb->n_w * sizeof(float), &bw);
  if (s == CF_OK && pb->n_b)
    s = cf_buffer_create(ctx, pb->n_b * sizeof(float), &bb);
  if (s == CF_OK)
    s = cf_buffer_create(ctx, out_bytes + sizeof guard, &bo);
  if (s == CF_OK) {
    *where = "cf_buffer_write";
    tu_poison(pb->output, pb->n_out);
    s = cf_buffer_write(bi, 0, pb->input, pb->n_in * sizeof(float));
    if (s == CF_OK)
      s = cf_buffer_write(bw, 0, pb->weight, pb->n_w * sizeof(float));
    if (s == CF_OK && bb)
      s = cf_buffer_write(bb, 0, pb->bias, pb->n_b * sizeof(float));
    if (s == CF_OK)
      s = cf_buffer_write(bo, 0, pb->output, out_bytes);
    if (s == CF_OK)
      s = cf_buffer_write(bo, out_bytes, guard, sizeof guard);
  }
  if (s == CF_OK) {
    *where = "cf_plan_create";
    s = cf_plan_create(ctx, &pb->desc, pb->ops, pb->n_ops, pb->math, &plan);
  }
  if (s == CF_OK) {
    *where = "cf_plan_execute";
    s = cf_plan_execute(plan, bi, bw, bb, bo);
  }
  if (s == CF_OK) {
    *where = "cf_buffer_read";
    s = cf_buffer_read(bo, 0, pb->output, out_bytes);
  }
  if (s == CF_OK) {
    s = cf_buffer_read(bo, out_bytes, guard, sizeof guard);
    for (int i = 0; s == CF_OK && i < TU_GUARD_FLOATS; ++i)
      if (!(guard[i] == TU_GUARD_VALUE)) {
        *where = "guard band after the output (out-of-bounds write)";
        s = CF_ERR_INTERNAL;
        snprintf(pb->guard_msg, sizeof pb->guard_msg,
                 "guard float %d after the %zu-element output was overwritten: %.9g", i,
                 pb->n_out, (double)guard[i]);
      }
  }
  cf_plan_destroy(plan);
  cf_buffer_destroy(bo);
  cf_buffer_destroy(bb);
  cf_buffer_destroy(bw);
  cf_buffer_destroy(bi);
  return s;
}

int tu_case_stride(void) {
  const char *v = getenv("CF_TEST_CASE_STRIDE");
  if (v == NULL || *v == '\0')
    return 1;
  char *end = NULL;
  const long k = strtol(v, &end, 10);
  cr_assert(*end == '\0' && k >= 1 && k <= 16,
            "CF_TEST_CASE_STRIDE=%s: expected a whole number from 1 to 16", v);
  if (k > 1) /* (info, not warn: Criterion 2.4 exits 1 once a warning is logged) */
    cr_log_info("CF_TEST_CASE_STRIDE=%ld: one case in %ld of this test runs, from the first",
                k, k);
  return (int)k;
}

int tu_require_opencl(void) {
  const char *ci = getenv("CI");
  const char *req = getenv("CONVFUSE_REQUIRE_OPENCL");
  return (ci && strcasecmp(ci, "true") == 0) || (req && strcmp(req, "1") == 0);
}

void tu_skip_unless_available(cf_backend b) {
  if (cf_backend_available(b))
    return;
  char why[1024];
  snprintf(why, sizeof why, "%s", cf_last_error());
  if (b == CF_BACKEND_OPENCL && tu_require_opencl() && !strstr(why, "not compiled in"))
    cr_assert_fail("OpenCL is compiled in but has no usable device, and CI=true / "
                   "CONVFUSE_REQUIRE_OPENCL=1 requires one (PoCL installed and registered?): %s",
                   why);
  cr_skip_test("%s backend not usable here: %s", cf_backend_name(b), why);
}

cf_context *tu_open_or_skip(cf_backend b) {
  tu_skip_unless_available(b);
  cf_context *ctx = NULL;
  cf_status s = cf_context_create(b, &ctx);
  cr_assert(s == CF_OK, "cf_context_create(%s) failed although available: %s: %s",
            cf_backend_name(b), cf_status_string(s), cf_last_error());
  cr_assert(cf_context_backend(ctx) == b, "context backend %s, asked for %s",
            cf_backend_name(cf_context_backend(ctx)), cf_backend_name(b));
  return ctx;
}

/* ---- LeakSanitizer and Criterion's runner ---- */
#if defined(__SANITIZE_ADDRESS__)
#define TU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_ASAN 1
#endif
#endif
#ifdef TU_ASAN
#include <criterion/hooks.h>
#include <sanitizer/lsan_interface.h>
/* Criterion's runner process keeps bookkeeping it never frees, and the worker processes it
 * forks inherit that heap: LeakSanitizer would report it at their exit, with no convfuse
 * frame in the stack. Allocations the runner makes from here on are marked "ignored"; a test
 * body still runs with leak checking on (Criterion starts each test afresh), so every leak of
 * a test or of convfuse is still reported (and fails ctest: tests/CMakeLists.txt). */
ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  (void)set;
  __lsan_disable();
}
#endif
