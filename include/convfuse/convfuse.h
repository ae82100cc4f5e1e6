/* convfuse: fused 2-D convolution + pointwise epilogue kernels behind one C interface.
 *
 * Backends: CUDA, OpenCL and a CPU reference, chosen at run time (CF_BACKEND_AUTO reads the
 * environment variable CONVFUSE_BACKEND). Tensors are NCHW fp32 with PyTorch's semantics:
 * input [N][C][H][W], weight [K][C][R][S], bias [K], output [N][K][P][Q].
 *
 * Errors: every function that can fail returns a cf_status; on failure a message for
 * cf_last_error() is set for the calling thread. No function aborts on user input, and a
 * failed call changes no output buffer.
 *
 * Threads: a cf_context and everything created from it (buffers, plans) must be used by one
 * thread at a time; different contexts may be used from different threads concurrently.
 * cf_last_error() is per thread. The functions that take no context are thread-safe.
 */
#ifndef CONVFUSE_CONVFUSE_H
#define CONVFUSE_CONVFUSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONVFUSE_VERSION_MAJOR 0
#define CONVFUSE_VERSION_MINOR 1
#define CONVFUSE_VERSION_PATCH 0

typedef enum cf_status {
  CF_OK = 0,
  CF_ERR_INVALID_ARGUMENT,   /* a bad pointer, shape, size or value from the caller */
  CF_ERR_UNSUPPORTED,        /* valid, but this backend/device cannot do it */
  CF_ERR_BACKEND_UNAVAILABLE,/* backend not compiled in, no device, or driver failure at init */
  CF_ERR_OUT_OF_MEMORY,      /* host or device allocation failed */
  CF_ERR_DEVICE,             /* a driver/runtime call failed (message carries its words) */
  CF_ERR_INTERNAL            /* a convfuse bug: please report the message */
} cf_status;

/* Short fixed name of a status ("CF_OK", "CF_ERR_INVALID_ARGUMENT", ...). Never NULL. */
const char *cf_status_string(cf_status s);
/* This thread's last failure, in words; "" if this thread has had none. Library-owned:
 * valid until this thread's next convfuse call; do not free. */
const char *cf_last_error(void);

typedef enum cf_backend {
  CF_BACKEND_AUTO = 0,
  CF_BACKEND_CPU,
  CF_BACKEND_CUDA,
  CF_BACKEND_OPENCL
} cf_backend;

/* "auto" "cpu" "cuda" "opencl"; "unknown" for any other value. */
const char *cf_backend_name(cf_backend b);
/* 1 if backend b is compiled in and has a usable device, else 0 (the reason goes to
 * cf_last_error). CF_BACKEND_AUTO: 1 if the backend AUTO would pick is usable. */
int cf_backend_available(cf_backend b);

typedef struct cf_context cf_context;

/* Opens a backend on its device. CF_BACKEND_AUTO reads CONVFUSE_BACKEND (cpu, cuda, opencl,
 * auto; case-insensitive); unset or auto picks CUDA, else an OpenCL GPU, else any OpenCL
 * device, else the CPU. CONVFUSE_OPENCL_DEVICE selects an OpenCL platform/device by name
 * substring. CONVFUSE_VERBOSE=1 prints backend, device and plans to stderr. */
cf_status cf_context_create(cf_backend b, cf_context **out);
/* Waits for outstanding work and frees the context. The caller must destroy the context's
 * plans and buffers first; NULL is ignored. */
void cf_context_destroy(cf_context *ctx);
/* The backend actually in use (never CF_BACKEND_AUTO); CF_BACKEND_AUTO for a NULL ctx. */
cf_backend cf_context_backend(const cf_context *ctx);
/* Human-readable device name, e.g. "NVIDIA H200"; "" for a NULL ctx. */
const char *cf_context_device(const cf_context *ctx);
/* Blocks until all work queued on ctx has finished; reports asynchronous device failures. */
cf_status cf_context_synchronize(cf_context *ctx);

typedef struct cf_buffer cf_buffer;

/* Allocates bytes (> 0) of device memory owned by ctx. Contents are undefined. */
cf_status cf_buffer_create(cf_context *ctx, size_t bytes, cf_buffer **out);
/* Waits for work that may use buf, then frees it; NULL is ignored. */
void cf_buffer_destroy(cf_buffer *buf);
/* Size in bytes given at creation; 0 for NULL. */
size_t cf_buffer_size(const cf_buffer *buf);
/* Copies bytes from host src into buf at offset; offset + bytes must fit in the buffer.
 * Ordered after earlier work on the context; returns when src may be reused. */
cf_status cf_buffer_write(cf_buffer *buf, size_t offset, const void *src, size_t bytes);
/* Waits for queued work, then copies bytes at offset of buf to host dst. */
cf_status cf_buffer_read(const cf_buffer *buf, size_t offset, void *dst, size_t bytes);

typedef struct cf_conv2d_desc {
  int64_t batch, in_channels, height, width;
  int64_t out_channels, kernel_h, kernel_w;
  int64_t stride_h, stride_w;     /* 0 means 1 */
  int64_t pad_h, pad_w;           /* zero padding on each side, >= 0 */
  int64_t dilation_h, dilation_w; /* 0 means 1 */
  int has_bias;                   /* 0 or 1 */
} cf_conv2d_desc;

/* Output height and width (PyTorch's formula); CF_ERR_INVALID_ARGUMENT if the descriptor is
 * invalid or the (dilated) kernel does not fit in the padded input. */
cf_status cf_conv2d_output_dims(const cf_conv2d_desc *d, int64_t *out_h, int64_t *out_w);

typedef enum cf_op_kind {
  CF_OP_ADD,      /* x + value */
  CF_OP_SUB,      /* x - value */
  CF_OP_MUL,      /* x * value */
  CF_OP_RELU,     /* max(x, 0), NaN propagates */
  CF_OP_TANH,
  CF_OP_SIGMOID,  /* 1 / (1 + exp(-x)) */
  CF_OP_SOFTPLUS, /* log1p(exp(x)) (PyTorch: x itself above 20) */
  CF_OP_MISH      /* x * tanh(softplus(x)) */
} cf_op_kind;

typedef struct cf_op {
  cf_op_kind kind;
  float value; /* used by ADD, SUB, MUL; ignored otherwise */
} cf_op;

#define CF_MAX_OPS 8

typedef enum cf_math {
  CF_MATH_FP32 = 0, /* fp32-accurate (default) */
  CF_MATH_TF32      /* tensor-core TF32, like PyTorch's conv default */
} cf_math;

typedef struct cf_plan cf_plan;

/* Validates the convolution and its epilogue (ops[0..n_ops), applied in order to the conv
 * output including bias), chooses and builds a kernel for ctx's device. ops may be NULL iff
 * n_ops == 0. The plan copies what it needs from desc and ops. */
cf_status cf_plan_create(cf_context *ctx, const cf_conv2d_desc *desc, const cf_op *ops,
                         int n_ops, cf_math math, cf_plan **out);
/* Frees the plan (waits for its queued launches); NULL is ignored. */
void cf_plan_destroy(cf_plan *plan);
/* One line: kernel, tiles and why the planner chose them. "" for NULL. */
const char *cf_plan_describe(const cf_plan *plan);
/* Queues the fused convolution on the plan's context. All buffers must belong to that
 * context and be large enough; output must not overlap any input. bias is NULL iff the
 * descriptor has no bias. Checks everything before launching; asynchronous. */
cf_status cf_plan_execute(cf_plan *plan, const cf_buffer *input, const cf_buffer *weight,
                          const cf_buffer *bias, cf_buffer *output);

/* CPU reference in double precision (converted to float on store), for cross-checking any
 * backend: same semantics as a plan. bias is NULL iff !desc->has_bias. */
cf_status cf_reference_conv2d(const cf_conv2d_desc *desc, const cf_op *ops, int n_ops,
                              const float *input, const float *weight, const float *bias,
                              float *output);

#ifdef __cplusplus
}
#endif

#endif /* CONVFUSE_CONVFUSE_H */
