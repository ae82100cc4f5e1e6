/* Shared helpers of the convfuse Criterion suites: a seeded PRNG, the input distributions of
 * DESIGN.md, NaN poisoning, backend availability policy, and the accuracy check against the
 * double-precision reference (cf_reference_point) with a one-line repro for every failure. */
#ifndef CF_TEST_UTIL_H
#define CF_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "convfuse/convfuse.h"

/* ---- PRNG: splitmix64, seeded per case so that a repro line reproduces the data ---- */
typedef struct tu_rng {
  uint64_t state;
} tu_rng;

void tu_rng_seed(tu_rng *rng, uint64_t seed);
uint64_t tu_rng_next(tu_rng *rng);
/* Uniform in [0, 1) with 24 random bits (every value exactly representable in float). */
float tu_rng_uniform(tu_rng *rng);

/* ---- DESIGN.md input distributions (torch.rand-like and its variants) ---- */
typedef enum tu_dist {
  TU_DIST_RAND = 0, /* U[0,1) */
  TU_DIST_X3,       /* 3 * U[0,1) */
  TU_DIST_X001,     /* 0.01 * U[0,1) */
  TU_DIST_NEG,      /* -U[0,1) */
  TU_DIST_COUNT
} tu_dist;

const char *tu_dist_name(tu_dist d);
void tu_fill_input(float *x, size_t n, tu_dist dist, tu_rng *rng);
/* PyTorch's default init for weight and bias: U(-b, b) with b = 1/sqrt(fan_in). */
void tu_fill_param(float *x, size_t n, int64_t fan_in, tu_rng *rng);
/* Quiet NaN everywhere, so an element a kernel forgets to write fails the check. */
void tu_poison(float *x, size_t n);

/* ---- a complete test problem on the host ---- */
typedef struct tu_problem {
  cf_conv2d_desc desc;
  cf_op ops[CF_MAX_OPS];
  int n_ops;
  cf_math math;
  tu_dist dist;
  uint64_t seed;
  int64_t out_h, out_w;
  size_t n_in, n_w, n_b, n_out; /* element counts (n_b = 0 without bias) */
  float *input, *weight, *bias; /* bias NULL without bias */
  float *output;                /* host copy of the backend's output */
  char guard_msg[160];          /* set by tu_run_on_context when the guard band changed */
} tu_problem;

/* Allocates and fills a problem (fresh random data from seed). Fails the test on error. */
void tu_problem_init(tu_problem *pb, const cf_conv2d_desc *desc, const cf_op *ops, int n_ops,
                     cf_math math, tu_dist dist, uint64_t seed);
void tu_problem_free(tu_problem *pb);
/* Refills input (and weight/bias) from a new seed. */
void tu_problem_refill(tu_problem *pb, uint64_t seed);

/* "N2xC3x13x17 K70 R3xS3 st1x1 pad1x1 dil1x1 bias1" */
void tu_describe_desc(const cf_conv2d_desc *d, char *buf, size_t len);
/* "sub(0.5),mish" or "none" */
void tu_describe_ops(const cf_op *ops, int n_ops, char *buf, size_t len);
const char *tu_math_name(cf_math m);

/* ---- accuracy check ---- */
typedef struct tu_check {
  int ok;
  int64_t n_bad;          /* elements outside the per-element tolerance (or wrong NaN/inf) */
  int64_t n_nan_bad;      /* of those: NaN/inf where the reference is finite */
  int64_t first_bad;      /* flat index of the first bad element, -1 if none */
  double first_got, first_ref;
  double max_abs_err;
  double rel_l2;          /* ||out - ref|| / ||ref|| over finite reference elements */
  int rel_l2_bad;
  int degenerate;         /* > 90% of the reference outputs are exactly zero */
  double zero_fraction;
  char summary[512];      /* one line: what failed and where */
} tu_check;

/* Tolerances of DESIGN.md's accuracy contract. */
void tu_tolerance(cf_math math, double *atol, double *rtol, double *rel_l2_max);

/* Compares pb->output with the double reference, element by element (cf_reference_point).
 * Also fails when the reference itself is degenerate (the case would prove nothing). */
void tu_check_output(const tu_problem *pb, tu_check *res);

/* "REPRO backend=opencl shape=... ops=... math=fp32 dist=x3 seed=0x..." */
void tu_repro_line(const char *backend, const tu_problem *pb, char *buf, size_t len);

/* Runs pb on ctx end to end: buffers, plan, NaN-poisoned output with a guard band after it,
 * execute, read back, into pb->output. Returns CF_OK or the failing status (message in
 * cf_last_error, and *where says which call failed). A changed guard band returns
 * CF_ERR_INTERNAL with pb->guard_msg set. */
cf_status tu_run_on_context(cf_context *ctx, tu_problem *pb, const char **where);

/* ---- backend policy ---- */
/* 1 if OpenCL must be present: CI=true (any case) or CONVFUSE_REQUIRE_OPENCL=1. */
int tu_require_opencl(void);

/* Returns if backend b is usable; otherwise skips the current test saying why, or fails it
 * when OpenCL is compiled in, has no device, and tu_require_opencl() says it must. */
void tu_skip_unless_available(cf_backend b);

/* tu_skip_unless_available, then a context on b (the test fails if creation fails or the
 * context runs another backend). */
cf_context *tu_open_or_skip(cf_backend b);

/* ---- case sampling ---- */
/* The stride at which a long table of cases runs: 1 (every case) unless CF_TEST_CASE_STRIDE
 * asks for every k-th from the first (1 <= k <= 16; anything else fails the test). The sanitize
 * stage samples test_cl_mma_emulated so: PoCL's emulated kernels are not instrumented, so there
 * the suite only walks the host paths each kind of case takes; the unit stage runs every
 * case. A stride above 1 is logged once per call site's test. */
int tu_case_stride(void);

#endif
