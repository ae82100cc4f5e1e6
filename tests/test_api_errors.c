/* test_api_errors: the bad-input matrix. Every bad call of the public API, run against a
 * context of every available backend (CPU, OpenCL, CUDA; a backend without a device skips
 * and says why; OpenCL must be present when CI=true). Each bad call must:
 *   - return the exact cf_status,
 *   - leave a cf_last_error() message that names the public function, the argument and the
 *     bad value,
 *   - change no output: no byte of any device buffer (read back after the call), no host
 *     destination, no *out handle or dimension,
 *   - leave the context working: a valid execute right after it gives bit-identical output
 *     to the one before the matrix started (which was checked against the reference).
 * The cases are one table (CASES below): the suite prints how many distinct bad calls it holds
 * and how many ran on each backend. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "convfuse/convfuse.h"
#include "test_util.h"

/* ------------------------------------------------------------------------------------------ */
/* The fixture: one context of the backend under test, plans and buffers to misuse            */

/* good_desc(): 2x3x9x8 input, 5 3x3 filters with bias -> 2x5x7x6 output. */
enum {
  IN_ELEMS = 2 * 3 * 9 * 8,  /* 432 */
  W_ELEMS = 5 * 3 * 3 * 3,   /* 135 */
  B_ELEMS = 5,
  OUT_ELEMS = 2 * 5 * 7 * 6, /* 420 */
  IN_BYTES = IN_ELEMS * 4,   /* 1728 */
  W_BYTES = W_ELEMS * 4,     /* 540 */
  B_BYTES = B_ELEMS * 4,     /* 20 */
  OUT_BYTES = OUT_ELEMS * 4, /* 1680 */
  SMALL64 = 64,
  HOST_BYTES = 4096,
};

static cf_conv2d_desc good_desc(void) {
  cf_conv2d_desc d = {.batch = 2, .in_channels = 3, .height = 9, .width = 8, .out_channels = 5,
                      .kernel_h = 3, .kernel_w = 3, .has_bias = 1};
  return d;
}

/* Buffers the bad calls get (all refilled with PATTERN before each case, all read back
 * after it). */
enum {
  B_IN, B_W, B_B, B_OUT,           /* exact sizes */
  B_SIN, B_SW, B_SB, B_SOUT,       /* a few bytes short */
  B_OIN, B_OW, B_OB, B_OOUT,       /* exact sizes, but from another context */
  B_BIG,                           /* big enough for any operand: aliasing */
  B_S64,                           /* 64 bytes: read/write ranges */
  NBUF
};
static const char *const buf_names[NBUF] = {"in",  "w",    "b",    "out",  "small_in",
                                            "small_w", "small_b", "small_out", "other_in",
                                            "other_w", "other_b", "other_out", "big", "b64"};
static const size_t buf_bytes[NBUF] = {IN_BYTES,     W_BYTES,     B_BYTES,     OUT_BYTES,
                                       IN_BYTES - 4, W_BYTES - 1, B_BYTES - 4, OUT_BYTES - 4,
                                       IN_BYTES,     W_BYTES,     B_BYTES,     OUT_BYTES,
                                       IN_BYTES,     SMALL64};
#define PATTERN 0xA5

typedef struct fixture {
  cf_backend backend;
  const char *bname;
  cf_context *ctx;   /* the context under test */
  cf_context *other; /* a second context of the same backend: foreign buffers */
  cf_context *dying; /* destroyed while a buffer of it is alive: refuses new children */
  cf_buffer *dying_child;
  cf_plan *plan, *plan_nb; /* good_desc() with and without bias, ops {sub 0.5, mish} */
  cf_buffer *buf[NBUF];
  /* The valid run that proves the context still works: its own buffers, real data. */
  cf_buffer *v_in, *v_w, *v_b, *v_out;
  tu_problem pb;
  float *expect; /* the valid run's output before any bad call */
  float *got;
  /* Host-side outputs of the bad calls: must stay as they are. */
  float ref_in[IN_ELEMS], ref_w[W_ELEMS], ref_b[B_ELEMS];
  float ref_out[OUT_ELEMS]; /* cf_reference_conv2d output: PATTERN bytes */
  unsigned char host_src[HOST_BYTES];
  unsigned char host_dst[HOST_BYTES]; /* cf_buffer_read destination: PATTERN bytes */
  int64_t oh, ow;
  cf_context *new_ctx;
  cf_buffer *new_buf;
  cf_plan *new_plan;
  unsigned char *scratch;
} fixture;

/* A handle value no call may write: *out of a failed create must stay this. */
static char sentinel_object;
#define SENTINEL ((void *)&sentinel_object)
#define OH_SENTINEL (-7)

static const cf_op chain2[2] = {{CF_OP_SUB, 0.5f}, {CF_OP_MISH, 0.0f}};

/* ------------------------------------------------------------------------------------------ */
/* Helpers the cases call                                                                       */

static cf_conv2d_desc dmod(size_t offset, int64_t v) {
  cf_conv2d_desc d = good_desc();
  memcpy((char *)&d + offset, &v, sizeof v);
  return d;
}
#define DSET(field, v) dmod(offsetof(cf_conv2d_desc, field), (int64_t)(v))
static cf_conv2d_desc dbias(int has_bias) {
  cf_conv2d_desc d = good_desc();
  d.has_bias = has_bias;
  return d;
}
static cf_conv2d_desc d_nobias(void) { return dbias(0); }
static cf_conv2d_desc d_kh12(void) { return DSET(kernel_h, 12); }
static cf_conv2d_desc d_kw3_dil4(void) { return DSET(dilation_w, 4); }
static cf_conv2d_desc d_kh12_pad1(void) {
  cf_conv2d_desc d = DSET(kernel_h, 12);
  d.pad_h = 1;
  return d;
}
static cf_conv2d_desc d_dil_huge(void) {
  cf_conv2d_desc d = DSET(kernel_h, 2);
  d.dilation_h = INT32_MAX; /* spans 2^31 > 9 */
  return d;
}
static cf_conv2d_desc d_out_h_huge(void) {
  cf_conv2d_desc d = good_desc();
  d.height = INT32_MAX;
  d.pad_h = INT32_MAX;
  d.kernel_h = 1; /* output height 3 * (2^31 - 1) = 6442450941 */
  return d;
}
static cf_conv2d_desc d_input_overflow(void) {
  cf_conv2d_desc d = good_desc();
  d.batch = d.in_channels = d.height = d.width = INT32_MAX;
  d.kernel_h = d.kernel_w = 1;
  return d;
}
static cf_conv2d_desc d_input_2p61(void) {
  cf_conv2d_desc d = good_desc();
  d.batch = d.in_channels = d.height = (int64_t)1 << 20;
  d.width = 2;
  d.kernel_h = d.kernel_w = 1;
  return d;
}
static cf_conv2d_desc d_weight_2p61(void) {
  cf_conv2d_desc d = good_desc();
  d.batch = d.in_channels = 1;
  d.height = d.width = d.kernel_h = d.kernel_w = (int64_t)1 << 20;
  d.out_channels = (int64_t)1 << 21;
  return d;
}
static cf_conv2d_desc d_output_2p61(void) {
  cf_conv2d_desc d = good_desc();
  d.batch = d.in_channels = 1;
  d.height = d.width = (int64_t)1 << 20;
  d.kernel_h = d.kernel_w = 1;
  d.out_channels = (int64_t)1 << 21;
  return d;
}

/* The three entry points that validate a descriptor. */
static cf_status desc_plan(fixture *fx, cf_conv2d_desc d) {
  return cf_plan_create(fx->ctx, &d, NULL, 0, CF_MATH_FP32, &fx->new_plan);
}
static cf_status desc_dims(fixture *fx, cf_conv2d_desc d) {
  return cf_conv2d_output_dims(&d, &fx->oh, &fx->ow);
}
static cf_status desc_ref(fixture *fx, cf_conv2d_desc d) {
  /* the host arrays are sized for good_desc(): the call must fail before touching them */
  return cf_reference_conv2d(&d, NULL, 0, fx->ref_in, fx->ref_w, d.has_bias ? fx->ref_b : NULL,
                             fx->ref_out);
}

static cf_status plan_ops(fixture *fx, const cf_op *ops, int n_ops, cf_math math) {
  cf_conv2d_desc d = good_desc();
  return cf_plan_create(fx->ctx, &d, ops, n_ops, math, &fx->new_plan);
}
static cf_status ref_ops(fixture *fx, const cf_op *ops, int n_ops) {
  cf_conv2d_desc d = good_desc();
  return cf_reference_conv2d(&d, ops, n_ops, fx->ref_in, fx->ref_w, fx->ref_b, fx->ref_out);
}
/* A chain of eight valid ops with one replaced. */
static const cf_op *chain8_with(int at, cf_op op) {
  static cf_op ops[CF_MAX_OPS + 1];
  for (int i = 0; i <= CF_MAX_OPS; ++i)
    ops[i] = (cf_op){i % 2 ? CF_OP_MISH : CF_OP_MUL, 0.5f};
  if (at >= 0)
    ops[at] = op;
  return ops;
}
#define OP(kind, value) ((cf_op){(cf_op_kind)(kind), (value)})

/* cf_backend_available returns 0/1; its reason goes to cf_last_error. */
static cf_status available_status(cf_backend b) {
  return cf_backend_available(b) ? CF_OK : CF_ERR_INVALID_ARGUMENT;
}

/* Runs one call with an environment variable set, then restores the variable. */
typedef enum { ENV_CREATE, ENV_AVAILABLE } env_call;
static cf_status with_env(fixture *fx, const char *name, const char *value, env_call call,
                          cf_backend b) {
  const char *old = getenv(name);
  char *saved = old ? strdup(old) : NULL;
  setenv(name, value, 1);
  cf_status s = call == ENV_CREATE ? cf_context_create(b, &fx->new_ctx) : available_status(b);
  if (saved) {
    setenv(name, saved, 1);
    free(saved);
  } else {
    unsetenv(name);
  }
  return s;
}

static cf_status exec(fixture *fx, cf_plan *plan, int in, int w, int b, int out) {
  return cf_plan_execute(plan, in < 0 ? NULL : fx->buf[in], w < 0 ? NULL : fx->buf[w],
                         b < 0 ? NULL : fx->buf[b], out < 0 ? NULL : fx->buf[out]);
}

/* ------------------------------------------------------------------------------------------ */
/* The cases                                                                                    */

/* Backends a case applies to. */
#define ON_CPU (1u << CF_BACKEND_CPU)
#define ON_CUDA (1u << CF_BACKEND_CUDA)
#define ON_OCL (1u << CF_BACKEND_OPENCL)
#define ON_ALL (ON_CPU | ON_CUDA | ON_OCL)

#define INV CF_ERR_INVALID_ARGUMENT
#define OOM CF_ERR_OUT_OF_MEMORY
#define UNAV CF_ERR_BACKEND_UNAVAILABLE

/* X(id, backends, status, function named, argument needle, value needle, call) */
#define CASES(X)                                                                              \
  /* contexts and backends */                                                                 \
  X(context_create_out_null, ON_ALL, INV, "cf_context_create", "out", "NULL",                 \
    cf_context_create(fx->backend, NULL))                                                     \
  X(context_create_backend_99, ON_ALL, INV, "cf_context_create", "backend", "99",             \
    cf_context_create((cf_backend)99, &fx->new_ctx))                                          \
  X(context_create_backend_neg1, ON_ALL, INV, "cf_context_create", "backend", "-1",           \
    cf_context_create((cf_backend)-1, &fx->new_ctx))                                          \
  X(context_create_backend_intmin, ON_ALL, INV, "cf_context_create", "backend", "-2147483648",\
    cf_context_create((cf_backend)INT_MIN, &fx->new_ctx))                                     \
  X(backend_available_77, ON_ALL, INV, "cf_backend_available", "cf_backend", "77",            \
    available_status((cf_backend)77))                                                         \
  X(backend_available_neg5, ON_ALL, INV, "cf_backend_available", "cf_backend", "-5",          \
    available_status((cf_backend)-5))                                                         \
  X(synchronize_null, ON_ALL, INV, "cf_context_synchronize", "ctx", "NULL",                   \
    cf_context_synchronize(NULL))                                                             \
  /* environment */                                                                           \
  X(env_backend_gpu, ON_ALL, INV, "cf_context_create", "CONVFUSE_BACKEND", "'gpu'",           \
    with_env(fx, "CONVFUSE_BACKEND", "gpu", ENV_CREATE, CF_BACKEND_AUTO))                     \
  X(env_backend_trailing_space, ON_ALL, INV, "cf_context_create", "CONVFUSE_BACKEND",         \
    "'cuda '", with_env(fx, "CONVFUSE_BACKEND", "cuda ", ENV_CREATE, CF_BACKEND_AUTO))        \
  X(env_backend_list, ON_ALL, INV, "cf_context_create", "CONVFUSE_BACKEND", "'cpu,opencl'",   \
    with_env(fx, "CONVFUSE_BACKEND", "cpu,opencl", ENV_CREATE, CF_BACKEND_AUTO))              \
  X(env_backend_available_none, ON_ALL, INV, "cf_backend_available", "CONVFUSE_BACKEND",      \
    "'none'", with_env(fx, "CONVFUSE_BACKEND", "none", ENV_AVAILABLE, CF_BACKEND_AUTO))       \
  X(env_opencl_device_nonsense, ON_OCL, UNAV, "cf_context_create", "CONVFUSE_OPENCL_DEVICE",  \
    "no-such-device-xyzzy",                                                                   \
    with_env(fx, "CONVFUSE_OPENCL_DEVICE", "no-such-device-xyzzy", ENV_CREATE,                \
             CF_BACKEND_OPENCL))                                                              \
  X(env_opencl_device_nonsense_auto, ON_OCL, UNAV, "cf_backend_available",                    \
    "CONVFUSE_OPENCL_DEVICE", "no-such-device-xyzzy",                                         \
    with_env(fx, "CONVFUSE_OPENCL_DEVICE", "no-such-device-xyzzy", ENV_AVAILABLE,             \
             CF_BACKEND_OPENCL) == CF_OK ? CF_OK : UNAV)                                      \
  X(env_cuda_device_letters, ON_CUDA, INV, "cf_context_create", "CONVFUSE_CUDA_DEVICE",       \
    "'abc'", with_env(fx, "CONVFUSE_CUDA_DEVICE", "abc", ENV_CREATE, CF_BACKEND_CUDA))        \
  X(env_cuda_device_negative, ON_CUDA, INV, "cf_context_create", "CONVFUSE_CUDA_DEVICE",      \
    "'-1'", with_env(fx, "CONVFUSE_CUDA_DEVICE", "-1", ENV_CREATE, CF_BACKEND_CUDA))          \
  X(env_cuda_device_999, ON_CUDA, INV, "cf_context_create", "CONVFUSE_CUDA_DEVICE", "999",    \
    with_env(fx, "CONVFUSE_CUDA_DEVICE", "999", ENV_CREATE, CF_BACKEND_CUDA))                 \
  X(env_cuda_device_overflow, ON_CUDA, INV, "cf_context_create", "CONVFUSE_CUDA_DEVICE",      \
    "'99999999999999999999'",                                                                 \
    with_env(fx, "CONVFUSE_CUDA_DEVICE", "99999999999999999999", ENV_CREATE, CF_BACKEND_CUDA))\
  /* buffers: create */                                                                       \
  X(buffer_create_ctx_null, ON_ALL, INV, "cf_buffer_create", "ctx", "NULL",                   \
    cf_buffer_create(NULL, 16, &fx->new_buf))                                                 \
  X(buffer_create_out_null, ON_ALL, INV, "cf_buffer_create", "out", "NULL",                   \
    cf_buffer_create(fx->ctx, 16, NULL))                                                      \
  X(buffer_create_zero_bytes, ON_ALL, INV, "cf_buffer_create", "bytes", "got 0",              \
    cf_buffer_create(fx->ctx, 0, &fx->new_buf))                                               \
  X(buffer_create_size_max, ON_ALL, OOM, "cf_buffer_create", "bytes",                         \
    "18446744073709551615", cf_buffer_create(fx->ctx, SIZE_MAX, &fx->new_buf))                \
  X(buffer_create_size_max_minus_4096, ON_ALL, OOM, "cf_buffer_create", "bytes",              \
    "18446744073709547519", cf_buffer_create(fx->ctx, SIZE_MAX - 4096, &fx->new_buf))         \
  X(buffer_create_half_address_space, ON_ALL, OOM, "cf_buffer_create", "bytes",               \
    "9223372036854775807", cf_buffer_create(fx->ctx, SIZE_MAX / 2, &fx->new_buf))             \
  X(buffer_create_destroyed_ctx, ON_ALL, INV, "cf_buffer_create", "ctx", "destroyed",         \
    cf_buffer_create(fx->dying, 16, &fx->new_buf))                                            \
  /* buffers: write */                                                                        \
  X(write_buf_null, ON_ALL, INV, "cf_buffer_write", "buf", "NULL",                            \
    cf_buffer_write(NULL, 0, fx->host_src, 4))                                                \
  X(write_src_null, ON_ALL, INV, "cf_buffer_write", "host pointer", "NULL",                   \
    cf_buffer_write(fx->buf[B_S64], 0, NULL, 4))                                              \
  X(write_past_end, ON_ALL, INV, "cf_buffer_write", "+ 65 bytes", "64 bytes",                 \
    cf_buffer_write(fx->buf[B_S64], 0, fx->host_src, 65))                                     \
  X(write_straddles_end, ON_ALL, INV, "cf_buffer_write", "offset 32", "+ 33 bytes",           \
    cf_buffer_write(fx->buf[B_S64], 32, fx->host_src, 33))                                    \
  X(write_offset_at_end, ON_ALL, INV, "cf_buffer_write", "offset 64", "+ 1 bytes",            \
    cf_buffer_write(fx->buf[B_S64], 64, fx->host_src, 1))                                     \
  X(write_offset_past_end_0_bytes, ON_ALL, INV, "cf_buffer_write", "offset 65", "64 bytes",   \
    cf_buffer_write(fx->buf[B_S64], 65, fx->host_src, 0))                                     \
  X(write_offset_size_max, ON_ALL, INV, "cf_buffer_write", "offset", "18446744073709551615",  \
    cf_buffer_write(fx->buf[B_S64], SIZE_MAX, fx->host_src, 1))                               \
  X(write_offset_plus_bytes_wraps, ON_ALL, INV, "cf_buffer_write", "offset 8",                \
    "18446744073709551612", cf_buffer_write(fx->buf[B_S64], 8, fx->host_src, SIZE_MAX - 3))   \
  X(write_bytes_size_max, ON_ALL, INV, "cf_buffer_write", "offset 0",                         \
    "18446744073709551615", cf_buffer_write(fx->buf[B_S64], 0, fx->host_src, SIZE_MAX))       \
  /* buffers: read */                                                                         \
  X(read_buf_null, ON_ALL, INV, "cf_buffer_read", "buf", "NULL",                              \
    cf_buffer_read(NULL, 0, fx->host_dst, 4))                                                 \
  X(read_dst_null, ON_ALL, INV, "cf_buffer_read", "host pointer", "NULL",                     \
    cf_buffer_read(fx->buf[B_S64], 0, NULL, 4))                                               \
  X(read_past_end, ON_ALL, INV, "cf_buffer_read", "offset 60", "+ 8 bytes",                   \
    cf_buffer_read(fx->buf[B_S64], 60, fx->host_dst, 8))                                      \
  X(read_whole_plus_one, ON_ALL, INV, "cf_buffer_read", "+ 65 bytes", "64 bytes",             \
    cf_buffer_read(fx->buf[B_S64], 0, fx->host_dst, 65))                                      \
  X(read_offset_size_max, ON_ALL, INV, "cf_buffer_read", "offset", "18446744073709551615",    \
    cf_buffer_read(fx->buf[B_S64], SIZE_MAX, fx->host_dst, 1))                                \
  X(read_offset_plus_bytes_wraps, ON_ALL, INV, "cf_buffer_read", "offset",                    \
    "18446744073709551614", cf_buffer_read(fx->buf[B_S64], SIZE_MAX - 1, fx->host_dst, 2))    \
  X(read_big_operand_past_end, ON_ALL, INV, "cf_buffer_read", "offset 1", "1728 bytes",       \
    cf_buffer_read(fx->buf[B_BIG], 1, fx->host_dst, IN_BYTES))                                \
  /* plans: handles */                                                                        \
  X(plan_create_ctx_null, ON_ALL, INV, "cf_plan_create", "ctx", "NULL",                       \
    cf_plan_create(NULL, &(cf_conv2d_desc){0}, NULL, 0, CF_MATH_FP32, &fx->new_plan))         \
  X(plan_create_out_null, ON_ALL, INV, "cf_plan_create", "out", "NULL",                       \
    cf_plan_create(fx->ctx, &(cf_conv2d_desc){0}, NULL, 0, CF_MATH_FP32, NULL))               \
  X(plan_create_desc_null, ON_ALL, INV, "cf_plan_create", "desc", "NULL",                     \
    cf_plan_create(fx->ctx, NULL, NULL, 0, CF_MATH_FP32, &fx->new_plan))                      \
  X(plan_create_destroyed_ctx, ON_ALL, INV, "cf_plan_create", "ctx", "destroyed",             \
    cf_plan_create(fx->dying, &(cf_conv2d_desc){0}, NULL, 0, CF_MATH_FP32, &fx->new_plan))    \
  X(output_dims_desc_null, ON_ALL, INV, "cf_conv2d_output_dims", "desc", "NULL",              \
    cf_conv2d_output_dims(NULL, &fx->oh, &fx->ow))                                            \
  X(output_dims_out_h_null, ON_ALL, INV, "cf_conv2d_output_dims", "out_h", "NULL",            \
    cf_conv2d_output_dims(&(cf_conv2d_desc){0}, NULL, &fx->ow))                               \
  X(output_dims_out_w_null, ON_ALL, INV, "cf_conv2d_output_dims", "out_w", "NULL",            \
    cf_conv2d_output_dims(&(cf_conv2d_desc){0}, &fx->oh, NULL))                               \
  /* plans: epilogue and math */                                                              \
  X(n_ops_neg1, ON_ALL, INV, "cf_plan_create", "n_ops", "got -1",                             \
    plan_ops(fx, chain8_with(-1, OP(0, 0)), -1, CF_MATH_FP32))                                \
  X(n_ops_9, ON_ALL, INV, "cf_plan_create", "n_ops", "got 9",                                 \
    plan_ops(fx, chain8_with(-1, OP(0, 0)), CF_MAX_OPS + 1, CF_MATH_FP32))                    \
  X(n_ops_intmin, ON_ALL, INV, "cf_plan_create", "n_ops", "-2147483648",                      \
    plan_ops(fx, chain8_with(-1, OP(0, 0)), INT_MIN, CF_MATH_FP32))                           \
  X(n_ops_intmax, ON_ALL, INV, "cf_plan_create", "n_ops", "2147483647",                       \
    plan_ops(fx, chain8_with(-1, OP(0, 0)), INT_MAX, CF_MATH_FP32))                           \
  X(ops_null_n_ops_2, ON_ALL, INV, "cf_plan_create", "ops is NULL", "n_ops is 2",             \
    plan_ops(fx, NULL, 2, CF_MATH_FP32))                                                      \
  X(op_kind_8, ON_ALL, INV, "cf_plan_create", "ops[1].kind", "got 8",                         \
    plan_ops(fx, chain8_with(1, OP(8, 0)), 2, CF_MATH_FP32))                                  \
  X(op_kind_neg1, ON_ALL, INV, "cf_plan_create", "ops[0].kind", "got -1",                     \
    plan_ops(fx, chain8_with(0, OP(-1, 0)), 2, CF_MATH_FP32))                                 \
  X(op_kind_intmax_last, ON_ALL, INV, "cf_plan_create", "ops[7].kind", "2147483647",          \
    plan_ops(fx, chain8_with(7, OP(INT_MAX, 0)), 8, CF_MATH_FP32))                            \
  X(op_add_nan, ON_ALL, INV, "cf_plan_create", "ops[1] (add)", "nan",                         \
    plan_ops(fx, chain8_with(1, OP(CF_OP_ADD, NAN)), 3, CF_MATH_FP32))                        \
  X(op_sub_inf, ON_ALL, INV, "cf_plan_create", "ops[0] (sub)", "inf",                         \
    plan_ops(fx, chain8_with(0, OP(CF_OP_SUB, INFINITY)), 3, CF_MATH_FP32))                   \
  X(op_mul_neg_inf_last, ON_ALL, INV, "cf_plan_create", "ops[7] (mul)", "-inf",               \
    plan_ops(fx, chain8_with(7, OP(CF_OP_MUL, -INFINITY)), 8, CF_MATH_FP32))                  \
  X(math_2, ON_ALL, INV, "cf_plan_create", "math", "got 2",                                   \
    plan_ops(fx, NULL, 0, (cf_math)2))                                                        \
  X(math_neg1, ON_ALL, INV, "cf_plan_create", "math", "got -1",                               \
    plan_ops(fx, NULL, 0, (cf_math)-1))                                                       \
  X(math_intmax_with_tf32_chain, ON_ALL, INV, "cf_plan_create", "math", "2147483647",         \
    plan_ops(fx, chain2, 2, (cf_math)INT_MAX))                                                \
  /* the reference entry point */                                                             \
  X(reference_desc_null, ON_ALL, INV, "cf_reference_conv2d", "desc", "NULL",                  \
    cf_reference_conv2d(NULL, NULL, 0, fx->ref_in, fx->ref_w, fx->ref_b, fx->ref_out))        \
  X(reference_input_null, ON_ALL, INV, "cf_reference_conv2d", "input", "NULL",                \
    cf_reference_conv2d(&(cf_conv2d_desc){2, 3, 9, 8, 5, 3, 3, 0, 0, 0, 0, 0, 0, 1}, NULL,    \
                        0, NULL, fx->ref_w, fx->ref_b, fx->ref_out))                          \
  X(reference_weight_null, ON_ALL, INV, "cf_reference_conv2d", "weight", "NULL",              \
    cf_reference_conv2d(&(cf_conv2d_desc){2, 3, 9, 8, 5, 3, 3, 0, 0, 0, 0, 0, 0, 1}, NULL,    \
                        0, fx->ref_in, NULL, fx->ref_b, fx->ref_out))                         \
  X(reference_output_null, ON_ALL, INV, "cf_reference_conv2d", "output", "NULL",              \
    cf_reference_conv2d(&(cf_conv2d_desc){2, 3, 9, 8, 5, 3, 3, 0, 0, 0, 0, 0, 0, 1}, NULL,    \
                        0, fx->ref_in, fx->ref_w, fx->ref_b, NULL))                           \
  X(reference_bias_missing, ON_ALL, INV, "cf_reference_conv2d", "has_bias is 1",              \
    "bias is NULL",                                                                           \
    cf_reference_conv2d(&(cf_conv2d_desc){2, 3, 9, 8, 5, 3, 3, 0, 0, 0, 0, 0, 0, 1}, NULL,    \
                        0, fx->ref_in, fx->ref_w, NULL, fx->ref_out))                         \
  X(reference_bias_given, ON_ALL, INV, "cf_reference_conv2d", "bias is given",                \
    "has_bias is 0",                                                                          \
    cf_reference_conv2d(&(cf_conv2d_desc){2, 3, 9, 8, 5, 3, 3, 0, 0, 0, 0, 0, 0, 0}, NULL,    \
                        0, fx->ref_in, fx->ref_w, fx->ref_b, fx->ref_out))                    \
  X(reference_ops_null_n_ops_3, ON_ALL, INV, "cf_reference_conv2d", "ops is NULL",            \
    "n_ops is 3", ref_ops(fx, NULL, 3))                                                       \
  X(reference_n_ops_9, ON_ALL, INV, "cf_reference_conv2d", "n_ops", "got 9",                  \
    ref_ops(fx, chain8_with(-1, OP(0, 0)), 9))                                                \
  X(reference_op_kind_9, ON_ALL, INV, "cf_reference_conv2d", "ops[2].kind", "got 9",          \
    ref_ops(fx, chain8_with(2, OP(9, 0)), 4))                                                 \
  X(reference_mul_nan, ON_ALL, INV, "cf_reference_conv2d", "ops[0] (mul)", "nan",             \
    ref_ops(fx, chain8_with(0, OP(CF_OP_MUL, NAN)), 1))                                       \
  /* execute */                                                                               \
  X(execute_plan_null, ON_ALL, INV, "cf_plan_execute", "plan", "NULL",                        \
    exec(fx, NULL, B_IN, B_W, B_B, B_OUT))                                                    \
  X(execute_input_null, ON_ALL, INV, "cf_plan_execute", "input", "NULL",                      \
    exec(fx, fx->plan, -1, B_W, B_B, B_OUT))                                                  \
  X(execute_weight_null, ON_ALL, INV, "cf_plan_execute", "weight", "NULL",                    \
    exec(fx, fx->plan, B_IN, -1, B_B, B_OUT))                                                 \
  X(execute_output_null, ON_ALL, INV, "cf_plan_execute", "output", "NULL",                    \
    exec(fx, fx->plan, B_IN, B_W, B_B, -1))                                                   \
  X(execute_bias_missing, ON_ALL, INV, "cf_plan_execute", "bias", "NULL",                     \
    exec(fx, fx->plan, B_IN, B_W, -1, B_OUT))                                                 \
  X(execute_bias_given_without_has_bias, ON_ALL, INV, "cf_plan_execute", "bias given",        \
    "has_bias = 0", exec(fx, fx->plan_nb, B_IN, B_W, B_B, B_OUT))                             \
  X(execute_input_too_small, ON_ALL, INV, "cf_plan_execute", "input", "1724 bytes",           \
    exec(fx, fx->plan, B_SIN, B_W, B_B, B_OUT))                                               \
  X(execute_weight_too_small, ON_ALL, INV, "cf_plan_execute", "weight", "539 bytes",          \
    exec(fx, fx->plan, B_IN, B_SW, B_B, B_OUT))                                               \
  X(execute_bias_too_small, ON_ALL, INV, "cf_plan_execute", "bias", "16 bytes",               \
    exec(fx, fx->plan, B_IN, B_W, B_SB, B_OUT))                                               \
  X(execute_output_too_small, ON_ALL, INV, "cf_plan_execute", "output", "1676 bytes",         \
    exec(fx, fx->plan, B_IN, B_W, B_B, B_SOUT))                                               \
  X(execute_output_too_small_no_bias, ON_ALL, INV, "cf_plan_execute", "output",               \
    "needs 1680", exec(fx, fx->plan_nb, B_IN, B_W, -1, B_SOUT))                               \
  X(execute_input_foreign, ON_ALL, INV, "cf_plan_execute", "input", "another context",        \
    exec(fx, fx->plan, B_OIN, B_W, B_B, B_OUT))                                               \
  X(execute_weight_foreign, ON_ALL, INV, "cf_plan_execute", "weight", "another context",      \
    exec(fx, fx->plan, B_IN, B_OW, B_B, B_OUT))                                               \
  X(execute_bias_foreign, ON_ALL, INV, "cf_plan_execute", "bias", "another context",          \
    exec(fx, fx->plan, B_IN, B_W, B_OB, B_OUT))                                               \
  X(execute_output_foreign, ON_ALL, INV, "cf_plan_execute", "output", "another context",      \
    exec(fx, fx->plan, B_IN, B_W, B_B, B_OOUT))                                               \
  X(execute_output_aliases_input, ON_ALL, INV, "cf_plan_execute", "aliases", "input",         \
    exec(fx, fx->plan, B_BIG, B_W, B_B, B_BIG))                                               \
  X(execute_output_aliases_weight, ON_ALL, INV, "cf_plan_execute", "aliases", "weight",       \
    exec(fx, fx->plan, B_IN, B_BIG, B_B, B_BIG))                                              \
  X(execute_output_aliases_bias, ON_ALL, INV, "cf_plan_execute", "aliases", "bias",           \
    exec(fx, fx->plan, B_IN, B_W, B_BIG, B_BIG))                                              \
  X(execute_all_operands_one_buffer, ON_ALL, INV, "cf_plan_execute", "aliases", "input",      \
    exec(fx, fx->plan, B_BIG, B_BIG, B_BIG, B_BIG))                                           \
  /* descriptors: each through cf_plan_create, cf_conv2d_output_dims, cf_reference_conv2d */  \
  DESC_CASES(X)

/* XD(id, descriptor expression, argument needle, value needle) */
#define DESC_LIST(XD)                                                                         \
  XD(batch_0, DSET(batch, 0), "batch", "got 0")                                              \
  XD(batch_neg3, DSET(batch, -3), "batch", "got -3")                                         \
  XD(in_channels_0, DSET(in_channels, 0), "in_channels", "got 0")                            \
  XD(height_neg1, DSET(height, -1), "height", "got -1")                                      \
  XD(width_0, DSET(width, 0), "width", "got 0")                                              \
  XD(out_channels_neg5, DSET(out_channels, -5), "out_channels", "got -5")                    \
  XD(kernel_h_0, DSET(kernel_h, 0), "kernel_h", "got 0")                                     \
  XD(kernel_w_neg2, DSET(kernel_w, -2), "kernel_w", "got -2")                                \
  XD(stride_h_neg1, DSET(stride_h, -1), "stride_h", "got -1")                                \
  XD(stride_w_neg2, DSET(stride_w, -2), "stride_w", "got -2")                                \
  XD(pad_h_neg1, DSET(pad_h, -1), "pad_h", "got -1")                                         \
  XD(pad_w_neg2, DSET(pad_w, -2), "pad_w", "got -2")                                         \
  XD(dilation_h_neg1, DSET(dilation_h, -1), "dilation_h", "got -1")                          \
  XD(dilation_w_neg4, DSET(dilation_w, -4), "dilation_w", "got -4")                          \
  XD(has_bias_2, dbias(2), "has_bias", "got 2")                                              \
  XD(has_bias_neg1, dbias(-1), "has_bias", "got -1")                                         \
  XD(batch_2p40, DSET(batch, (int64_t)1 << 40), "batch", "1099511627776")                    \
  XD(in_channels_2p40, DSET(in_channels, (int64_t)1 << 40), "in_channels", "1099511627776")  \
  XD(out_channels_2p31, DSET(out_channels, (int64_t)1 << 31), "out_channels", "2147483648")  \
  XD(width_int64_max, DSET(width, INT64_MAX), "width", "9223372036854775807")                \
  XD(height_int64_min, DSET(height, INT64_MIN), "height", "-9223372036854775808")            \
  XD(kernel_h_2p31, DSET(kernel_h, (int64_t)1 << 31), "kernel_h", "2147483648")              \
  XD(pad_h_2p31, DSET(pad_h, (int64_t)1 << 31), "pad_h", "2147483648")                       \
  XD(stride_w_int64_min, DSET(stride_w, INT64_MIN), "stride_w", "-9223372036854775808")      \
  XD(dilation_w_2p31, DSET(dilation_w, (int64_t)1 << 31), "dilation_w", "2147483648")        \
  XD(kernel_h_12_over_height_9, d_kh12(), "kernel_h", "only 9")                              \
  XD(kernel_w_dilated_spans_9_over_8, d_kw3_dil4(), "kernel_w spans 9", "only 8")            \
  XD(kernel_h_12_over_padded_11, d_kh12_pad1(), "kernel_h", "only 11")                       \
  XD(dilation_h_int32_max_spans_2p31, d_dil_huge(), "kernel_h spans 2147483648", "only 9")   \
  XD(output_height_over_int32, d_out_h_huge(), "output height", "6442450941")                \
  XD(input_elems_overflow_int64, d_input_overflow(), "input", "2147483647 x 2147483647")     \
  XD(input_elems_2p61, d_input_2p61(), "input", "too many")                                  \
  XD(weight_elems_2p61, d_weight_2p61(), "weight", "too many")                               \
  XD(output_elems_2p61, d_output_2p61(), "output", "too many")

#define DESC_AS_CASES(id, dexpr, n1, n2)                                                      \
  X_(plan_##id, ON_ALL, INV, "cf_plan_create", n1, n2, desc_plan(fx, dexpr))                  \
  X_(dims_##id, ON_ALL, INV, "cf_conv2d_output_dims", n1, n2, desc_dims(fx, dexpr))           \
  X_(reference_##id, ON_ALL, INV, "cf_reference_conv2d", n1, n2, desc_ref(fx, dexpr))
#define DESC_CASES(X) DESC_LIST(DESC_AS_CASES)

typedef struct bad_case {
  const char *id;
  unsigned backends;
  cf_status want;
  const char *fn;     /* the public function the message must name */
  const char *needle[2]; /* the argument, the bad value */
  cf_status (*call)(fixture *fx);
} bad_case;

/* One function per case... */
#define X_(id, backends, want, fn, n1, n2, expr) \
  static cf_status case_##id(fixture *fx) {      \
    (void)fx;                                    \
    return (expr);                               \
  }
CASES(X_)
#undef X_
/* ...and the table of them. */
#define X_(id, backends, want, fn, n1, n2, expr) {#id, backends, want, fn, {n1, n2}, case_##id},
static const bad_case cases[] = {CASES(X_)};
#undef X_
static const int n_cases = (int)(sizeof cases / sizeof cases[0]);

static int cases_on(cf_backend b) {
  int n = 0;
  for (int i = 0; i < n_cases; ++i)
    n += (cases[i].backends >> b) & 1u;
  return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Running the matrix                                                                           */

static void write_pattern(fixture *fx) {
  memset(fx->scratch, PATTERN, IN_BYTES);
  for (int i = 0; i < NBUF; ++i)
    cr_assert(cf_buffer_write(fx->buf[i], 0, fx->scratch, buf_bytes[i]) == CF_OK,
              "[%s] refilling buffer %s: %s", fx->bname, buf_names[i], cf_last_error());
  memset(fx->ref_out, PATTERN, sizeof fx->ref_out);
  memset(fx->host_dst, PATTERN, sizeof fx->host_dst);
  fx->oh = fx->ow = OH_SENTINEL;
  fx->new_ctx = SENTINEL;
  fx->new_buf = SENTINEL;
  fx->new_plan = SENTINEL;
}

static size_t count_changed(const unsigned char *p, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; ++i)
    c += p[i] != PATTERN;
  return c;
}

/* Everything a failed call could have written is as it was. */
static void expect_nothing_changed(fixture *fx, const bad_case *c) {
  cr_assert(cf_context_synchronize(fx->ctx) == CF_OK, "[%s] %s: synchronize: %s", fx->bname,
            c->id, cf_last_error());
  for (int i = 0; i < NBUF; ++i) {
    memset(fx->scratch, 0, IN_BYTES);
    cf_status s = cf_buffer_read(fx->buf[i], 0, fx->scratch, buf_bytes[i]);
    cr_assert(s == CF_OK, "[%s] %s: reading back buffer %s: %s", fx->bname, c->id, buf_names[i],
              cf_last_error());
    size_t changed = count_changed(fx->scratch, buf_bytes[i]);
    cr_expect(changed == 0, "[%s] %s: the failed call changed %zu of %zu bytes of buffer %s",
              fx->bname, c->id, changed, buf_bytes[i], buf_names[i]);
  }
  size_t changed = count_changed((const unsigned char *)fx->ref_out, sizeof fx->ref_out);
  cr_expect(changed == 0, "[%s] %s: the failed call wrote %zu bytes of the reference output",
            fx->bname, c->id, changed);
  changed = count_changed(fx->host_dst, sizeof fx->host_dst);
  cr_expect(changed == 0, "[%s] %s: the failed call wrote %zu bytes of the read destination",
            fx->bname, c->id, changed);
  cr_expect(fx->oh == OH_SENTINEL && fx->ow == OH_SENTINEL,
            "[%s] %s: the failed call wrote the output dims (%lld, %lld)", fx->bname, c->id,
            (long long)fx->oh, (long long)fx->ow);
  cr_expect(fx->new_ctx == SENTINEL, "[%s] %s: the failed call wrote *out (context)", fx->bname,
            c->id);
  cr_expect(fx->new_buf == SENTINEL, "[%s] %s: the failed call wrote *out (buffer)", fx->bname,
            c->id);
  cr_expect(fx->new_plan == SENTINEL, "[%s] %s: the failed call wrote *out (plan)", fx->bname,
            c->id);
  /* a handle a wrong success created: free it so the run stays leak-free */
  if (fx->new_ctx != SENTINEL)
    cf_context_destroy(fx->new_ctx);
  if (fx->new_buf != SENTINEL)
    cf_buffer_destroy(fx->new_buf);
  if (fx->new_plan != SENTINEL)
    cf_plan_destroy(fx->new_plan);
}

/* The valid run: execute, read back, compare bit for bit with the first run. */
static void valid_run(fixture *fx, float *dst) {
  tu_poison(dst, OUT_ELEMS);
  cr_assert(cf_buffer_write(fx->v_out, 0, dst, OUT_BYTES) == CF_OK, "[%s] %s", fx->bname,
            cf_last_error());
  cf_status s = cf_plan_execute(fx->plan, fx->v_in, fx->v_w, fx->v_b, fx->v_out);
  cr_assert(s == CF_OK, "[%s] valid execute: %s: %s", fx->bname, cf_status_string(s),
            cf_last_error());
  s = cf_buffer_read(fx->v_out, 0, dst, OUT_BYTES);
  cr_assert(s == CF_OK, "[%s] reading the valid output: %s", fx->bname, cf_last_error());
}

static void run_case(fixture *fx, const bad_case *c) {
  write_pattern(fx);
  cf_status got = c->call(fx);
  char msg[4096];
  snprintf(msg, sizeof msg, "%s", cf_last_error());
  cr_expect(got == c->want, "[%s] %s: status %s, want %s (message: \"%s\")", fx->bname, c->id,
            cf_status_string(got), cf_status_string(c->want), msg);
  cr_expect(msg[0] != '\0', "[%s] %s: empty cf_last_error()", fx->bname, c->id);
  cr_expect(strstr(msg, c->fn) != NULL, "[%s] %s: message \"%s\" does not name %s", fx->bname,
            c->id, msg, c->fn);
  for (int i = 0; i < 2; ++i)
    if (c->needle[i])
      cr_expect(strstr(msg, c->needle[i]) != NULL,
                "[%s] %s: message \"%s\" does not mention \"%s\"", fx->bname, c->id, msg,
                c->needle[i]);
  expect_nothing_changed(fx, c);
  valid_run(fx, fx->got);
  cr_expect(memcmp(fx->got, fx->expect, OUT_BYTES) == 0,
            "[%s] %s: the context's next valid execute differs from the one before the bad call",
            fx->bname, c->id);
}


static void fixture_open(fixture *fx, cf_backend b) {
  memset(fx, 0, sizeof *fx);
  fx->backend = b;
  fx->bname = cf_backend_name(b);
  fx->ctx = tu_open_or_skip(b);
  cr_assert(cf_context_create(b, &fx->other) == CF_OK, "second %s context: %s", fx->bname,
            cf_last_error());
  cr_assert(cf_context_create(b, &fx->dying) == CF_OK, "third %s context: %s", fx->bname,
            cf_last_error());
  cr_assert(cf_buffer_create(fx->dying, 16, &fx->dying_child) == CF_OK, "%s", cf_last_error());
  cf_context_destroy(fx->dying); /* pending until dying_child goes */

  cf_conv2d_desc d = good_desc(), dnb = d_nobias();
  cr_assert(cf_plan_create(fx->ctx, &d, chain2, 2, CF_MATH_FP32, &fx->plan) == CF_OK,
            "[%s] plan: %s", fx->bname, cf_last_error());
  cr_assert(cf_plan_create(fx->ctx, &dnb, chain2, 2, CF_MATH_FP32, &fx->plan_nb) == CF_OK,
            "[%s] plan without bias: %s", fx->bname, cf_last_error());
  for (int i = 0; i < NBUF; ++i) {
    cf_context *owner = i >= B_OIN && i <= B_OOUT ? fx->other : fx->ctx;
    cr_assert(cf_buffer_create(owner, buf_bytes[i], &fx->buf[i]) == CF_OK,
              "[%s] buffer %s: %s", fx->bname, buf_names[i], cf_last_error());
  }
  fx->scratch = malloc(IN_BYTES);
  fx->expect = malloc(OUT_BYTES);
  fx->got = malloc(OUT_BYTES);
  cr_assert(fx->scratch && fx->expect && fx->got);
  for (size_t i = 0; i < sizeof fx->host_src; ++i)
    fx->host_src[i] = (unsigned char)(i * 7 + 1);

  tu_problem_init(&fx->pb, &d, chain2, 2, CF_MATH_FP32, TU_DIST_RAND, 0x5eed);
  cr_assert(fx->pb.n_in == IN_ELEMS && fx->pb.n_w == W_ELEMS && fx->pb.n_b == B_ELEMS &&
                fx->pb.n_out == OUT_ELEMS,
            "test bug: good_desc() sizes changed");
  memcpy(fx->ref_in, fx->pb.input, sizeof fx->ref_in);
  memcpy(fx->ref_w, fx->pb.weight, sizeof fx->ref_w);
  memcpy(fx->ref_b, fx->pb.bias, sizeof fx->ref_b);
  cr_assert(cf_buffer_create(fx->ctx, IN_BYTES, &fx->v_in) == CF_OK);
  cr_assert(cf_buffer_create(fx->ctx, W_BYTES, &fx->v_w) == CF_OK);
  cr_assert(cf_buffer_create(fx->ctx, B_BYTES, &fx->v_b) == CF_OK);
  cr_assert(cf_buffer_create(fx->ctx, OUT_BYTES, &fx->v_out) == CF_OK);
  cr_assert(cf_buffer_write(fx->v_in, 0, fx->pb.input, IN_BYTES) == CF_OK);
  cr_assert(cf_buffer_write(fx->v_w, 0, fx->pb.weight, W_BYTES) == CF_OK);
  cr_assert(cf_buffer_write(fx->v_b, 0, fx->pb.bias, B_BYTES) == CF_OK);
  /* the first valid run is checked against the reference; later ones against it, bit for bit */
  valid_run(fx, fx->expect);
  memcpy(fx->pb.output, fx->expect, OUT_BYTES);
  tu_check res;
  tu_check_output(&fx->pb, &res);
  cr_assert(res.ok, "[%s] the valid run before the matrix: %s", fx->bname, res.summary);
}

static void fixture_close(fixture *fx) {
  for (int i = 0; i < NBUF; ++i)
    cf_buffer_destroy(fx->buf[i]);
  cf_buffer_destroy(fx->v_in);
  cf_buffer_destroy(fx->v_w);
  cf_buffer_destroy(fx->v_b);
  cf_buffer_destroy(fx->v_out);
  cf_plan_destroy(fx->plan);
  cf_plan_destroy(fx->plan_nb);
  cf_buffer_destroy(fx->dying_child); /* frees the dying context */
  cf_context_destroy(fx->other);
  cf_context_destroy(fx->ctx);
  tu_problem_free(&fx->pb);
  free(fx->scratch);
  free(fx->expect);
  free(fx->got);
}

static void run_matrix(cf_backend b) {
  fixture *fx = calloc(1, sizeof *fx);
  cr_assert(fx);
  fixture_open(fx, b);
  int ran = 0;
  for (int i = 0; i < n_cases; ++i) {
    if (!((cases[i].backends >> b) & 1u))
      continue;
    run_case(fx, &cases[i]);
    ran++;
  }
  cr_expect(ran == cases_on(b));
  cr_log_info("%s (%s): %d distinct bad calls checked", cf_backend_name(b),
              cf_context_device(fx->ctx), ran);
  fixture_close(fx);
  free(fx);
}

TestSuite(matrix, .timeout = 600);
Test(matrix, cpu) { run_matrix(CF_BACKEND_CPU); }
Test(matrix, opencl) { run_matrix(CF_BACKEND_OPENCL); }
Test(matrix, cuda) { run_matrix(CF_BACKEND_CUDA); }

/* The count, printed by the runner: how many distinct bad calls, and on which backends they
 * passed, failed or were skipped (with the reason). */
static char matrix_result[3][512];

ReportHook(POST_TEST)(struct criterion_test_stats *stats) {
  const struct criterion_test *t = stats->test;
  if (strcmp(t->category, "matrix") != 0)
    return;
  const cf_backend bs[3] = {CF_BACKEND_CPU, CF_BACKEND_OPENCL, CF_BACKEND_CUDA};
  for (int i = 0; i < 3; ++i) {
    if (strcmp(t->name, cf_backend_name(bs[i])) != 0)
      continue;
    if (stats->test_status == CR_STATUS_PASSED)
      snprintf(matrix_result[i], sizeof matrix_result[i], "%s: %d checked, all passed",
               t->name, cases_on(bs[i]));
    else if (stats->test_status == CR_STATUS_SKIPPED)
      snprintf(matrix_result[i], sizeof matrix_result[i], "%s: skipped (%.400s)", t->name,
               stats->message ? stats->message : "no reason given");
    else
      snprintf(matrix_result[i], sizeof matrix_result[i], "%s: %d cases, FAILED (%d failed "
               "assertions%s)", t->name, cases_on(bs[i]), stats->failed_asserts,
               stats->crashed ? ", crashed" : "");
  }
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  (void)stats;
  printf("[====] bad-input matrix: %d distinct bad calls in the table\n", n_cases);
  const cf_backend bs[3] = {CF_BACKEND_CPU, CF_BACKEND_OPENCL, CF_BACKEND_CUDA};
  for (int i = 0; i < 3; ++i) {
    if (matrix_result[i][0])
      printf("[====] bad-input matrix: %s\n", matrix_result[i]);
    else
      printf("[====] bad-input matrix: %s: %d cases, no result (crashed or filtered out)\n",
             cf_backend_name(bs[i]), cases_on(bs[i]));
  }
  fflush(stdout);
}

/* ------------------------------------------------------------------------------------------ */
/* Not bad calls, but the edges next to them, on every available backend                      */

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

Test(api_errors, null_tolerant_functions) {
  cf_context_destroy(NULL);
  cf_buffer_destroy(NULL);
  cf_plan_destroy(NULL);
  cr_expect(cf_buffer_size(NULL) == 0);
  cr_expect_str_eq(cf_plan_describe(NULL), "");
  cr_expect_str_eq(cf_context_device(NULL), "");
  cr_expect(cf_context_backend(NULL) == CF_BACKEND_AUTO);
}

/* The valid neighbours of the bad ranges, and the defaults (0 = 1) of stride and dilation. */
static void valid_edges(cf_backend b) {
  cf_context *ctx = tu_open_or_skip(b);
  cf_buffer *buf = NULL;
  cr_assert(cf_buffer_create(ctx, 64, &buf) == CF_OK, "%s", cf_last_error());
  cr_expect(cf_buffer_size(buf) == 64);
  unsigned char host[64], back[64];
  for (int i = 0; i < 64; ++i)
    host[i] = (unsigned char)i;
  cr_expect(cf_buffer_write(buf, 0, host, 64) == CF_OK, "%s", cf_last_error());
  cr_expect(cf_buffer_write(buf, 64, host, 0) == CF_OK, "%s", cf_last_error());
  cr_expect(cf_buffer_write(buf, 64, NULL, 0) == CF_OK, "%s", cf_last_error());
  cr_expect(cf_buffer_read(buf, 64, NULL, 0) == CF_OK, "%s", cf_last_error());
  cr_expect(cf_buffer_read(buf, 60, back, 4) == CF_OK, "%s", cf_last_error());
  cr_expect(back[0] == 60 && back[3] == 63, "read at offset 60 got %d..%d", back[0], back[3]);
  cr_expect(cf_buffer_write(buf, 63, host, 1) == CF_OK, "%s", cf_last_error());
  cr_expect(cf_buffer_read(buf, 0, back, 64) == CF_OK, "%s", cf_last_error());
  cr_expect(back[63] == 0 && back[62] == 62, "write of the last byte");
  cf_buffer_destroy(buf);

  /* stride 0 and dilation 0 mean 1; values of non-value ops are ignored, even non-finite;
   * ops may be NULL with n_ops 0, and non-NULL with n_ops 0 */
  cf_conv2d_desc d = good_desc();
  cf_conv2d_desc d1 = d;
  d1.stride_h = d1.stride_w = d1.dilation_h = d1.dilation_w = 1;
  int64_t oh0, ow0, oh1, ow1;
  cr_expect(cf_conv2d_output_dims(&d, &oh0, &ow0) == CF_OK);
  cr_expect(cf_conv2d_output_dims(&d1, &oh1, &ow1) == CF_OK);
  cr_expect(oh0 == oh1 && ow0 == ow1 && oh0 == 7 && ow0 == 6, "dims %lldx%lld / %lldx%lld",
            (long long)oh0, (long long)ow0, (long long)oh1, (long long)ow1);
  cf_plan *plan = NULL;
  cf_op ignored[2] = {{CF_OP_RELU, NAN}, {CF_OP_MISH, INFINITY}};
  cf_status s = cf_plan_create(ctx, &d, ignored, 2, CF_MATH_FP32, &plan);
  cr_expect(s == CF_OK, "RELU/MISH with a NaN/inf value (ignored): %s: %s", cf_status_string(s),
            cf_last_error());
  cf_plan_destroy(plan);
  plan = NULL;
  s = cf_plan_create(ctx, &d, ignored, 0, CF_MATH_TF32, &plan);
  cr_expect(s == CF_OK, "n_ops 0 with non-NULL ops, tf32: %s", cf_last_error());
  cf_plan_destroy(plan);
  plan = NULL;
  s = cf_plan_create(ctx, &d, chain8_with(-1, OP(0, 0)), CF_MAX_OPS, CF_MATH_FP32, &plan);
  cr_expect(s == CF_OK, "CF_MAX_OPS ops: %s", cf_last_error());
  cf_plan_destroy(plan);
  cf_context_destroy(ctx);
}

Test(api_errors, valid_edges_cpu) { valid_edges(CF_BACKEND_CPU); }
Test(api_errors, valid_edges_opencl) { valid_edges(CF_BACKEND_OPENCL); }
Test(api_errors, valid_edges_cuda) { valid_edges(CF_BACKEND_CUDA); }

/* ---- lifetime: the deferred destroy in common/api.c ---- */

static void destroyed_before_children(cf_backend b) {
  cf_context *ctx = tu_open_or_skip(b);
  cf_conv2d_desc d = good_desc();
  cf_plan *plan = NULL;
  cf_buffer *buf = NULL, *buf2 = NULL;
  cr_assert(cf_buffer_create(ctx, 256, &buf) == CF_OK, "%s", cf_last_error());
  cr_assert(cf_buffer_create(ctx, 256, &buf2) == CF_OK, "%s", cf_last_error());
  cr_assert(cf_plan_create(ctx, &d, NULL, 0, CF_MATH_FP32, &plan) == CF_OK, "%s",
            cf_last_error());
  cf_context_destroy(ctx); /* children alive: the context must stay until the last one goes */
  /* children still usable and destroyable in any order */
  unsigned char h[16] = {1, 2, 3};
  cr_expect(cf_buffer_write(buf, 0, h, 16) == CF_OK, "%s", cf_last_error());
  cf_buffer_destroy(buf);
  cf_plan_destroy(plan);
  cf_buffer_destroy(buf2); /* the last child frees the context */

  /* plan last this time */
  ctx = tu_open_or_skip(b);
  cr_assert(cf_buffer_create(ctx, 16, &buf) == CF_OK);
  cr_assert(cf_plan_create(ctx, &d, NULL, 0, CF_MATH_FP32, &plan) == CF_OK);
  cf_context_destroy(ctx);
  cf_buffer_destroy(buf);
  cf_plan_destroy(plan);
  /* and a normal context still works afterwards */
  ctx = tu_open_or_skip(b);
  cr_assert(cf_buffer_create(ctx, 16, &buf) == CF_OK);
  cf_buffer_destroy(buf);
  cf_context_destroy(ctx);
}

Test(api_errors, context_destroyed_before_children_cpu) {
  destroyed_before_children(CF_BACKEND_CPU);
}
Test(api_errors, context_destroyed_before_children_opencl) {
  destroyed_before_children(CF_BACKEND_OPENCL);
}
Test(api_errors, context_destroyed_before_children_cuda) {
  destroyed_before_children(CF_BACKEND_CUDA);
}
