/* The interface every backend implements: one struct of function pointers plus an opaque
 * per-context state (the shape of ggml's backend interface). common/ reaches devices only
 * through this. Backends set a cf_error message on every failure they return. */
#ifndef CF_COMMON_BACKEND_H
#define CF_COMMON_BACKEND_H

#include <stddef.h>
#include "convfuse/convfuse.h"
#include "device_caps.h"
#include "epilogue.h"
#include "planner.h"
#include "shape.h"

/* Everything a backend needs to build one fused kernel. */
typedef struct cf_plan_spec {
  cf_conv_shape shape;
  cf_epilogue epilogue;
  cf_math math;
  cf_tile_plan tiles;
} cf_plan_spec;

typedef struct cf_backend_iface {
  cf_backend kind;
  unsigned kernel_variants; /* bitmask of 1u << cf_kernel_variant this backend implements */
  /* CF_OK if compiled in and a device is usable; else a status plus a message saying why.
   * Cheap: no context is kept. */
  cf_status (*probe)(void);
  /* Opens the device: fills caps and a device name (NUL-terminated, at most name_len). */
  cf_status (*init)(void **state, cf_device_caps *caps, char *name, size_t name_len);
  /* Waits for outstanding work and frees everything of the context. */
  void (*destroy)(void *state);

  cf_status (*buffer_alloc)(void *state, size_t bytes, void **mem);
  void (*buffer_free)(void *state, void *mem);
  cf_status (*buffer_write)(void *state, void *mem, size_t offset, const void *src, size_t bytes);
  cf_status (*buffer_read)(void *state, void *mem, size_t offset, void *dst, size_t bytes);

  /* Builds (or fetches from a cache) the kernel for spec. May refine spec->tiles' description
   * but not the sizes the planner chose. */
  cf_status (*plan_compile)(void *state, const cf_plan_spec *spec, void **compiled);
  void (*plan_release)(void *state, void *compiled);
  /* Queues one execution. bias is NULL iff !spec->shape.has_bias. Sizes are pre-checked. */
  cf_status (*plan_launch)(void *state, void *compiled, const void *input, const void *weight,
                           const void *bias, void *output);

  cf_status (*synchronize)(void *state);

  /* Optional (may be NULL): one launch, run to completion, and its device time in
   * milliseconds from device events / profiling (the benchmark's clock). */
  cf_status (*plan_launch_timed)(void *state, void *compiled, const void *input,
                                 const void *weight, const void *bias, void *output,
                                 double *device_ms);

  /* Optional (may be NULL): what the compiled plan runs beyond the planner's description (the
   * fp16 products' range guard and rerun, a backend's own switches), a short phrase that
   * cf_plan_describe appends; NULL or "" for nothing. */
  const char *(*plan_detail)(const void *compiled);
} cf_backend_iface;

/* The compiled-in backends. Each returns NULL when its backend is not compiled in. */
const cf_backend_iface *cf_backend_cpu(void);
const cf_backend_iface *cf_backend_cuda(void);
const cf_backend_iface *cf_backend_opencl(void);

#endif
