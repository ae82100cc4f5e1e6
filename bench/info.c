/* convfuse info: version, compiled-in backends, devices, capabilities, AUTO's choice. */
#include <stdio.h>
#include <stdlib.h>

#include "internal_api.h"
#include "tool.h"
#include "util.h"

#ifndef CF_TOOL_HAVE_CUDA
#define CF_TOOL_HAVE_CUDA 0
#endif
#ifndef CF_TOOL_HAVE_OPENCL
#define CF_TOOL_HAVE_OPENCL 0
#endif

static const char *yes_no(int v) { return v ? "yes" : "no"; }

static const char *device_kind_name(cf_device_kind k) {
  switch (k) {
  case CF_DEVICE_CPU: return "cpu";
  case CF_DEVICE_GPU: return "gpu";
  case CF_DEVICE_OTHER: break;
  }
  return "other";
}

static const char *fmt_mem(uint64_t bytes, char *buf, size_t len) {
  if (bytes == 0)
    snprintf(buf, len, "unknown");
  else if (bytes == UINT64_MAX)
    snprintf(buf, len, "host memory");
  else
    tl_fmt_bytes_bin((double)bytes, buf, len);
  return buf;
}

static void print_caps(const cf_device_caps *c) {
  char b1[32], b2[32], b3[32], b4[32], b5[32];
  printf("    kind %s, compute units %d, max threads/block %d, simd width %d, arch %d\n",
         device_kind_name(c->kind), c->compute_units, c->max_threads_per_block, c->simd_width,
         c->arch);
  printf("    shared memory/block %s (opt-in max %s), L2 %s\n",
         tl_fmt_bytes_bin((double)c->shared_mem_per_block, b1, sizeof b1),
         tl_fmt_bytes_bin((double)c->shared_mem_per_block_max, b2, sizeof b2),
         c->l2_bytes ? tl_fmt_bytes_bin((double)c->l2_bytes, b3, sizeof b3) : "unknown");
  printf("    memory %s, largest buffer %s\n", fmt_mem(c->global_mem_bytes, b4, sizeof b4),
         fmt_mem(c->max_alloc_bytes, b5, sizeof b5));
  printf("    tf32 mma %s, wgmma %s, kernels:", yes_no(c->has_tf32_mma), yes_no(c->has_wgmma));
  for (int v = 0; v < CF_KERNEL_COUNT; ++v)
    if (c->kernel_variants & (1u << v))
      printf(" %s", cf_kernel_variant_name((cf_kernel_variant)v));
  printf("\n");
  if (c->tensor_core_note[0])
    printf("    tensor cores off: %.*s\n", (int)sizeof c->tensor_core_note, c->tensor_core_note);
}

int tl_cmd_info(const tl_opts *o) {
  (void)o;
  int rc = TL_EXIT_OK;
  printf("convfuse %d.%d.%d\n", CONVFUSE_VERSION_MAJOR, CONVFUSE_VERSION_MINOR,
         CONVFUSE_VERSION_PATCH);
  printf("compiled in: cpu%s%s\n", CF_TOOL_HAVE_CUDA ? " cuda" : "",
         CF_TOOL_HAVE_OPENCL ? " opencl" : "");
  printf("host: %d CPUs online\n\n", tl_threads());

  static const cf_backend order[] = {CF_BACKEND_CPU, CF_BACKEND_CUDA, CF_BACKEND_OPENCL};
  for (size_t i = 0; i < sizeof order / sizeof order[0]; ++i) {
    cf_backend b = order[i];
    if (!cf_backend_available(b)) {
      printf("%-7s unavailable: %s\n", cf_backend_name(b), cf_last_error());
      continue;
    }
    cf_context *ctx = NULL;
    cf_status s = cf_context_create(b, &ctx);
    if (s != CF_OK) {
      /* available but failed to open: a library or driver failure */
      printf("%-7s available, but the context failed: %s: %s\n", cf_backend_name(b),
             cf_status_string(s), cf_last_error());
      tl_report("opening the backend", s);
      rc = TL_EXIT_FAIL;
      continue;
    }
    printf("%-7s available: %s\n", cf_backend_name(b), cf_context_device(ctx));
    const cf_device_caps *caps = cf_context_caps(ctx);
    if (caps)
      print_caps(caps);
    cf_context_destroy(ctx);
  }

  const char *env = getenv("CONVFUSE_BACKEND");
  char envdesc[96];
  if (env)
    snprintf(envdesc, sizeof envdesc, "CONVFUSE_BACKEND=%.64s", env);
  else
    snprintf(envdesc, sizeof envdesc, "CONVFUSE_BACKEND unset");
  const char *odev = getenv("CONVFUSE_OPENCL_DEVICE");
  if (odev)
    printf("\nCONVFUSE_OPENCL_DEVICE=%s\n", odev);
  cf_context *ctx = NULL;
  cf_status s = cf_context_create(CF_BACKEND_AUTO, &ctx);
  if (s != CF_OK) {
    printf("\nauto (%s): fails: %s: %s\n", envdesc, cf_status_string(s), cf_last_error());
    tl_report("opening CF_BACKEND_AUTO", s);
    return TL_EXIT_FAIL;
  }
  printf("\nauto (%s): %s on %s\n", envdesc, cf_backend_name(cf_context_backend(ctx)),
         cf_context_device(ctx));
  cf_context_destroy(ctx);
  return rc;
}
