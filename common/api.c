/* The public API: contexts, buffers and plans, with every argument checked before a backend
 * is called. Backends are reached only through their cf_backend_iface. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "env.h"
#include "error.h"
#include "internal_api.h"
#include "planner.h"

struct cf_context {
  const cf_backend_iface *iface;
  void *state;
  cf_device_caps caps;
  char device[256];
  int verbose;
  /* Buffers and plans still alive. cf_context_destroy with live children only marks the
   * context, and the last child to go frees it: no dangling pointer, no leak. */
  int64_t live_children;
  int destroy_pending;
};

struct cf_buffer {
  cf_context *ctx;
  void *mem;
  size_t bytes;
};

struct cf_plan {
  cf_context *ctx;
  cf_plan_spec spec;
  void *compiled;
  size_t input_bytes, weight_bytes, bias_bytes, output_bytes;
  /* one line: the header (~200 chars), the planner's why (< 256) and the backend's detail
   * (< 300) fit whole */
  char description[1024];
};

/* ---- backends ---- */

const char *cf_backend_name(cf_backend b) {
  switch (b) {
  case CF_BACKEND_AUTO: return "auto";
  case CF_BACKEND_CPU: return "cpu";
  case CF_BACKEND_CUDA: return "cuda";
  case CF_BACKEND_OPENCL: return "opencl";
  }
  return "unknown";
}

static int backend_is_valid(cf_backend b) {
  return b == CF_BACKEND_AUTO || b == CF_BACKEND_CPU || b == CF_BACKEND_CUDA ||
         b == CF_BACKEND_OPENCL;
}

static const cf_backend_iface *backend_iface(cf_backend b) {
  switch (b) {
  case CF_BACKEND_CPU: return cf_backend_cpu();
  case CF_BACKEND_CUDA: return cf_backend_cuda();
  case CF_BACKEND_OPENCL: return cf_backend_opencl();
  case CF_BACKEND_AUTO: break;
  }
  return NULL;
}

/* CF_OK if b is compiled in and its probe finds a device; else why, as a message. */
static cf_status probe_backend(cf_backend b) {
  const cf_backend_iface *iface = backend_iface(b);
  if (!iface)
    return cf_error(CF_ERR_BACKEND_UNAVAILABLE,
                    "%s: not compiled in (rebuild with -DCONVFUSE_%s=ON)", cf_backend_name(b),
                    b == CF_BACKEND_CUDA ? "CUDA" : "OPENCL");
  return iface->probe();
}

/* Order AUTO tries; CPU last always works. */
static const cf_backend auto_order[] = {CF_BACKEND_CUDA, CF_BACKEND_OPENCL, CF_BACKEND_CPU};

int cf_backend_available(cf_backend b) {
  static const char fn[] = "cf_backend_available";
  if (!backend_is_valid(b)) {
    cf_error(CF_ERR_INVALID_ARGUMENT, "%s: %d is not a cf_backend", fn, (int)b);
    return 0;
  }
  if (b == CF_BACKEND_AUTO) {
    if (cf_env_backend(fn, &b) != CF_OK)
      return 0;
    if (b == CF_BACKEND_AUTO)
      return 1; /* AUTO always ends at the CPU backend */
  }
  cf_status s = probe_backend(b);
  if (s != CF_OK)
    cf_error_prefix(fn);
  return s == CF_OK;
}

/* ---- contexts ---- */

static cf_status open_backend(cf_backend b, int verbose, cf_context **out) {
  const cf_backend_iface *iface = backend_iface(b);
  cf_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx)
    return cf_error(CF_ERR_OUT_OF_MEMORY, "cannot allocate a context");
  ctx->iface = iface;
  ctx->verbose = verbose;
  cf_status s = iface->init(&ctx->state, &ctx->caps, ctx->device, sizeof ctx->device);
  if (s != CF_OK) {
    free(ctx);
    return s;
  }
  ctx->device[sizeof ctx->device - 1] = '\0';
  /* Per-context variants: what the backend implements, narrowed to what init found usable
   * on this device (0: no narrowing). */
  unsigned usable = ctx->caps.kernel_variants ? ctx->caps.kernel_variants : ~0u;
  ctx->caps.kernel_variants = iface->kernel_variants & usable;
  ctx->caps.tensor_core_note[sizeof ctx->caps.tensor_core_note - 1] = '\0';
  ctx->caps.force_tile = cf_env_tile();
  ctx->caps.force_stages = cf_env_stages();
  *out = ctx;
  return CF_OK;
}

cf_status cf_context_create(cf_backend b, cf_context **out) {
  static const char fn[] = "cf_context_create";
  if (!out)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
  if (!backend_is_valid(b))
    return cf_error(CF_ERR_INVALID_ARGUMENT,
                    "%s: backend %d is not a cf_backend (valid: CF_BACKEND_AUTO, _CPU, _CUDA, "
                    "_OPENCL)",
                    fn, (int)b);
  int verbose = cf_env_verbose();
  if (b == CF_BACKEND_AUTO)
    CF_CHECK(cf_env_backend(fn, &b));

  cf_status s;
  if (b != CF_BACKEND_AUTO) {
    s = probe_backend(b);
    if (s == CF_OK)
      s = open_backend(b, verbose, out);
    if (s != CF_OK) {
      cf_error_prefix(fn);
      return s == CF_ERR_INVALID_ARGUMENT || s == CF_ERR_OUT_OF_MEMORY
                 ? s
                 : CF_ERR_BACKEND_UNAVAILABLE;
    }
  } else {
    s = CF_ERR_INTERNAL;
    for (size_t i = 0; i < sizeof auto_order / sizeof auto_order[0] && s != CF_OK; ++i) {
      s = probe_backend(auto_order[i]);
      if (s == CF_OK)
        s = open_backend(auto_order[i], verbose, out);
      if (s != CF_OK && verbose)
        fprintf(stderr, "convfuse: auto: skipping %s: %s\n", cf_backend_name(auto_order[i]),
                cf_last_error());
    }
    if (s != CF_OK) {
      cf_error_prefix(fn);
      return s;
    }
  }
  if (verbose)
    fprintf(stderr, "convfuse: context on backend %s, device %s (%d compute units)\n",
            cf_backend_name((*out)->iface->kind), (*out)->device, (*out)->caps.compute_units);
  return CF_OK;
}

static void context_free(cf_context *ctx) {
  ctx->iface->destroy(ctx->state);
  free(ctx);
}

void cf_context_destroy(cf_context *ctx) {
  if (!ctx)
    return;
  if (ctx->live_children > 0) {
    ctx->destroy_pending = 1;
    return;
  }
  context_free(ctx);
}

static void context_release_child(cf_context *ctx) {
  if (--ctx->live_children == 0 && ctx->destroy_pending)
    context_free(ctx);
}

cf_backend cf_context_backend(const cf_context *ctx) {
  return ctx ? ctx->iface->kind : CF_BACKEND_AUTO;
}

const char *cf_context_device(const cf_context *ctx) { return ctx ? ctx->device : ""; }

const cf_device_caps *cf_context_caps(const cf_context *ctx) { return ctx ? &ctx->caps : NULL; }

cf_status cf_context_synchronize(cf_context *ctx) {
  if (!ctx)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "cf_context_synchronize: ctx is NULL");
  cf_status s = ctx->iface->synchronize(ctx->state);
  if (s != CF_OK)
    cf_error_prefix("cf_context_synchronize");
  return s;
}

/* ---- buffers ---- */

cf_status cf_buffer_create(cf_context *ctx, size_t bytes, cf_buffer **out) {
  static const char fn[] = "cf_buffer_create";
  if (!ctx || !out)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !ctx ? "ctx" : "out");
  if (bytes == 0)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: bytes must be > 0 (got 0)", fn);
  if (ctx->destroy_pending)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: ctx has been destroyed", fn);
  cf_buffer *buf = calloc(1, sizeof *buf);
  if (!buf)
    return cf_error(CF_ERR_OUT_OF_MEMORY, "%s: cannot allocate a buffer handle", fn);
  cf_status s = ctx->iface->buffer_alloc(ctx->state, bytes, &buf->mem);
  if (s != CF_OK) {
    free(buf);
    cf_error_prefix(fn);
    return s;
  }
  buf->ctx = ctx;
  buf->bytes = bytes;
  ctx->live_children++;
  *out = buf;
  return CF_OK;
}

void cf_buffer_destroy(cf_buffer *buf) {
  if (!buf)
    return;
  cf_context *ctx = buf->ctx;
  ctx->iface->buffer_free(ctx->state, buf->mem);
  free(buf);
  context_release_child(ctx);
}

size_t cf_buffer_size(const cf_buffer *buf) { return buf ? buf->bytes : 0; }

/* offset + bytes within the buffer, without overflow. */
static cf_status check_range(const char *fn, const cf_buffer *buf, size_t offset, size_t bytes,
                             const void *host) {
  if (!buf)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: buf is NULL", fn);
  if (!host && bytes > 0)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: host pointer is NULL (bytes %zu)", fn, bytes);
  if (offset > buf->bytes || bytes > buf->bytes - offset)
    return cf_error(CF_ERR_INVALID_ARGUMENT,
                    "%s: range [offset %zu, + %zu bytes) exceeds the buffer's %zu bytes", fn,
                    offset, bytes, buf->bytes);
  return CF_OK;
}

cf_status cf_buffer_write(cf_buffer *buf, size_t offset, const void *src, size_t bytes) {
  static const char fn[] = "cf_buffer_write";
  CF_CHECK(check_range(fn, buf, offset, bytes, src));
  if (bytes == 0)
    return CF_OK;
  cf_status s = buf->ctx->iface->buffer_write(buf->ctx->state, buf->mem, offset, src, bytes);
  if (s != CF_OK)
    cf_error_prefix(fn);
  return s;
}

cf_status cf_buffer_read(const cf_buffer *buf, size_t offset, void *dst, size_t bytes) {
  static const char fn[] = "cf_buffer_read";
  CF_CHECK(check_range(fn, buf, offset, bytes, dst));
  /* Nothing to copy, but a read still waits for the queued work and reports its failure. */
  cf_status s = bytes == 0 ? buf->ctx->iface->synchronize(buf->ctx->state)
                           : buf->ctx->iface->buffer_read(buf->ctx->state, buf->mem, offset,
                                                          dst, bytes);
  if (s != CF_OK)
    cf_error_prefix(fn);
  return s;
}

/* ---- plans ---- */

static void describe_plan(cf_plan *plan) {
  const cf_tile_plan *t = &plan->spec.tiles;
  char chain[160];
  cf_epilogue_describe(&plan->spec.epilogue, chain, sizeof chain);
  const char *math = t->math_effective == CF_MATH_TF32 ? "tf32" : "fp32";
  if (t->variant == CF_KERNEL_REFERENCE)
    snprintf(plan->description, sizeof plan->description,
             "kernel=%s math=%s epilogue=[%s] | %s", cf_kernel_variant_name(t->variant), math,
             chain, t->why);
  else if (t->variant == CF_KERNEL_FFMA_TILED)
    snprintf(plan->description, sizeof plan->description,
             "kernel=%s tile=%dx%dx%d thread=%dx%d threads=%d stages=%d grid=%lldx%lld "
             "smem=%zuB math=%s epilogue=[%s] | %s",
             cf_kernel_variant_name(t->variant), t->block_m, t->block_n, t->block_k,
             t->thread_m, t->thread_n, t->threads, t->stages, (long long)t->grid_m,
             (long long)t->grid_n, t->shared_bytes, math, chain, t->why);
  else if (t->row_channels) /* the tile that runs; entry 1's fields are its rerun's */
    snprintf(plan->description, sizeof plan->description,
             "kernel=wg%s tile=%dx%dx%d warp=16x%d threads=%d stages=%d grid=%lldx%lld "
             "smem=%zuB math=%s epilogue=[%s] | %s",
             cf_kernel_variant_name(t->variant), CF_ROWCH_BM, CF_ROWCH_BN, CF_ROWCH_CHUNK,
             CF_ROWCH_BN, t->row_channel_threads, t->row_channel_stages,
             (long long)t->row_channel_tiles, (long long)t->grid_n, t->row_channel_shared_bytes,
             math, chain, t->why);
  else
    snprintf(plan->description, sizeof plan->description,
             "kernel=%s%s tile=%dx%dx%d warp=%dx%d threads=%d stages=%d grid=%lldx%lld "
             "smem=%zuB math=%s epilogue=[%s] | %s",
             t->wgmma ? "wg" : "", cf_kernel_variant_name(t->variant), t->block_m, t->block_n,
             t->block_k,
             t->warp_m, t->warp_n, t->threads, t->stages, (long long)t->grid_m,
             (long long)t->grid_n, t->shared_bytes, math, chain, t->why);
  const cf_backend_iface *iface = plan->ctx->iface;
  const char *detail = iface->plan_detail ? iface->plan_detail(plan->compiled) : NULL;
  const size_t used = strlen(plan->description);
  if (detail && *detail && used < sizeof plan->description)
    snprintf(plan->description + used, sizeof plan->description - used, " | %s", detail);
}

cf_status cf_plan_create(cf_context *ctx, const cf_conv2d_desc *desc, const cf_op *ops,
                         int n_ops, cf_math math, cf_plan **out) {
  static const char fn[] = "cf_plan_create";
  if (!ctx || !out)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !ctx ? "ctx" : "out");
  if (ctx->destroy_pending)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: ctx has been destroyed", fn);
  if (math != CF_MATH_FP32 && math != CF_MATH_TF32)
    return cf_error(CF_ERR_INVALID_ARGUMENT,
                    "%s: math must be CF_MATH_FP32 (0) or CF_MATH_TF32 (1) (got %d)", fn,
                    (int)math);
  cf_plan_spec spec;
  memset(&spec, 0, sizeof spec);
  CF_CHECK(cf_shape_resolve(fn, desc, &spec.shape));
  CF_CHECK(cf_epilogue_validate(fn, ops, n_ops));
  cf_epilogue_fold(ops, n_ops, &spec.epilogue);
  spec.math = math;
  cf_status s = cf_plan_tiles(&spec.shape, &spec.epilogue, math, &ctx->caps, &spec.tiles);
  if (s != CF_OK) {
    cf_error_prefix(fn);
    return s;
  }
  cf_plan *plan = calloc(1, sizeof *plan);
  if (!plan)
    return cf_error(CF_ERR_OUT_OF_MEMORY, "%s: cannot allocate a plan", fn);
  plan->ctx = ctx;
  plan->spec = spec;
  /* Element counts are <= 2^60 (shape.c), so these byte sizes cannot overflow. */
  plan->input_bytes = (size_t)spec.shape.input_elems * sizeof(float);
  plan->weight_bytes = (size_t)spec.shape.weight_elems * sizeof(float);
  plan->bias_bytes = (size_t)spec.shape.bias_elems * sizeof(float);
  plan->output_bytes = (size_t)spec.shape.output_elems * sizeof(float);
  s = ctx->iface->plan_compile(ctx->state, &plan->spec, &plan->compiled);
  if (s != CF_OK) {
    free(plan);
    cf_error_prefix(fn);
    return s;
  }
  describe_plan(plan);
  ctx->live_children++;
  if (ctx->verbose)
    fprintf(stderr, "convfuse: plan on %s: %s\n", cf_backend_name(ctx->iface->kind),
            plan->description);
  *out = plan;
  return CF_OK;
}

void cf_plan_destroy(cf_plan *plan) {
  if (!plan)
    return;
  cf_context *ctx = plan->ctx;
  ctx->iface->plan_release(ctx->state, plan->compiled);
  free(plan);
  context_release_child(ctx);
}

const char *cf_plan_describe(const cf_plan *plan) { return plan ? plan->description : ""; }

const cf_tile_plan *cf_plan_tiles_of(const cf_plan *plan) {
  return plan ? &plan->spec.tiles : NULL;
}

static cf_status check_operand(const char *fn, const cf_plan *plan, const char *name,
                               const cf_buffer *buf, size_t need) {
  if (!buf)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, name);
  if (buf->ctx != plan->ctx)
    return cf_error(CF_ERR_INVALID_ARGUMENT,
                    "%s: %s belongs to another context (buffers must come from the plan's)", fn,
                    name);
  if (buf->bytes < need)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: %s buffer has %zu bytes, needs %zu", fn, name,
                    buf->bytes, need);
  return CF_OK;
}

static cf_status check_execute(const char *fn, const cf_plan *plan, const cf_buffer *input,
                               const cf_buffer *weight, const cf_buffer *bias,
                               const cf_buffer *output) {
  if (!plan)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: plan is NULL", fn);
  CF_CHECK(check_operand(fn, plan, "input", input, plan->input_bytes));
  CF_CHECK(check_operand(fn, plan, "weight", weight, plan->weight_bytes));
  CF_CHECK(check_operand(fn, plan, "output", output, plan->output_bytes));
  if (plan->spec.shape.has_bias)
    CF_CHECK(check_operand(fn, plan, "bias", bias, plan->bias_bytes));
  else if (bias)
    return cf_error(CF_ERR_INVALID_ARGUMENT,
                    "%s: bias given but the plan's descriptor has has_bias = 0", fn);
  if (output == input || output == weight || (bias && output == bias))
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: output aliases the %s buffer", fn,
                    output == input ? "input" : output == weight ? "weight" : "bias");
  return CF_OK;
}

cf_status cf_plan_execute(cf_plan *plan, const cf_buffer *input, const cf_buffer *weight,
                          const cf_buffer *bias, cf_buffer *output) {
  static const char fn[] = "cf_plan_execute";
  CF_CHECK(check_execute(fn, plan, input, weight, bias, output));
  cf_context *ctx = plan->ctx;
  cf_status s = ctx->iface->plan_launch(ctx->state, plan->compiled, input->mem, weight->mem,
                                        bias ? bias->mem : NULL, output->mem);
  if (s != CF_OK)
    cf_error_prefix(fn);
  return s;
}

cf_status cf_plan_execute_timed(cf_plan *plan, const cf_buffer *input, const cf_buffer *weight,
                                const cf_buffer *bias, cf_buffer *output, double *ms) {
  static const char fn[] = "cf_plan_execute_timed";
  if (!ms)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: ms is NULL", fn);
  CF_CHECK(check_execute(fn, plan, input, weight, bias, output));
  cf_context *ctx = plan->ctx;
  const void *b = bias ? bias->mem : NULL;
  cf_status s;
  if (ctx->iface->plan_launch_timed) {
    s = ctx->iface->plan_launch_timed(ctx->state, plan->compiled, input->mem, weight->mem, b,
                                      output->mem, ms);
  } else {
    /* No device clock: time launch + wait on the host's monotonic clock. */
    s = ctx->iface->synchronize(ctx->state);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (s == CF_OK)
      s = ctx->iface->plan_launch(ctx->state, plan->compiled, input->mem, weight->mem, b,
                                  output->mem);
    if (s == CF_OK)
      s = ctx->iface->synchronize(ctx->state);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;
  }
  if (s != CF_OK)
    cf_error_prefix(fn);
  return s;
}
