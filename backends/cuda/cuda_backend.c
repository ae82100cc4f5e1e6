/* The CUDA backend: device selection, context (stream + events), buffers, synchronisation,
 * and the cf_backend_iface table. Plans live in cuda_plan.c, kernels in kernels_cuda/. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cuda_internal.h"
#include "env.h"
#include "kernels_cuda/launch.h"
#include "planner.h"

/* ---- errors ---- */

cf_status cf_cuda_fail(cf_status status, cudaError_t err, const char *what_fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, what_fmt);
  vsnprintf(what, sizeof what, what_fmt, ap);
  va_end(ap);
  /* A non-sticky error stays as the runtime's "last error" and would be reported again by a
   * later launch check: clear it (sticky errors cannot be cleared and keep failing calls). */
  (void)cudaGetLastError();
  return cf_error(status, "cuda: %s failed: %s: %s", what, cudaGetErrorName(err),
                  cudaGetErrorString(err));
}

cf_status cf_cuda_set_device(const cf_cuda_state *st) {
  cudaError_t e = cudaSetDevice(st->device);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e, "cudaSetDevice(%d)", st->device);
  return CF_OK;
}

/* ---- device selection ---- */

/* CONVFUSE_CUDA_DEVICE: unset or empty -> 0; else a decimal index (digits only, no sign or
 * spaces, <= INT_MAX); anything else -> CF_ERR_INVALID_ARGUMENT naming the variable. */
static cf_status device_from_env(int *dev) {
  const char *v = getenv("CONVFUSE_CUDA_DEVICE");
  *dev = 0;
  if (!v || !*v)
    return CF_OK;
  long long x = 0;
  for (const char *c = v; *c; ++c) {
    if (*c < '0' || *c > '9')
      return cf_error(CF_ERR_INVALID_ARGUMENT,
                      "cuda: CONVFUSE_CUDA_DEVICE='%.64s' is not a device index (expected a "
                      "decimal integer >= 0, e.g. CONVFUSE_CUDA_DEVICE=0)",
                      v);
    x = x * 10 + (*c - '0');
    if (x > INT_MAX) /* checked every digit: x never overflows */
      return cf_error(CF_ERR_INVALID_ARGUMENT,
                      "cuda: CONVFUSE_CUDA_DEVICE='%.64s' is not a device index (too large)", v);
  }
  *dev = (int)x;
  return CF_OK;
}

/* The device this process should use: CONVFUSE_CUDA_DEVICE (or 0), checked to exist and to
 * be able to run the kernels (sm_80 and newer). Creates no context. */
static cf_status find_device(int *dev_out) {
  int dev = 0;
  CF_CHECK(device_from_env(&dev));
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return cf_error(CF_ERR_BACKEND_UNAVAILABLE, "cuda: no usable CUDA device (%s: %s)",
                    cudaGetErrorName(e), cudaGetErrorString(e));
  }
  if (count <= 0)
    return cf_error(CF_ERR_BACKEND_UNAVAILABLE,
                    "cuda: no usable CUDA device (cudaGetDeviceCount found none)");
  if (dev >= count)
    return cf_error(CF_ERR_INVALID_ARGUMENT,
                    "cuda: CONVFUSE_CUDA_DEVICE=%d but this machine has %d CUDA device%s "
                    "(valid: 0..%d)",
                    dev, count, count == 1 ? "" : "s", count - 1);
  int major = 0, minor = 0;
  e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  if (e == cudaSuccess)
    e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_BACKEND_UNAVAILABLE, e,
                        "cudaDeviceGetAttribute(compute capability, device %d)", dev);
  if (major < 8)
    return cf_error(CF_ERR_BACKEND_UNAVAILABLE,
                    "cuda: device %d has compute capability %d.%d; convfuse's CUDA kernels "
                    "need 8.0 (Ampere) or newer",
                    dev, major, minor);
  *dev_out = dev;
  return CF_OK;
}

static cf_status cuda_probe(void) {
  int dev;
  return find_device(&dev);
}

/* ---- context ---- */

static void release_state(cf_cuda_state *st) {
  /* Best effort: nothing here can be reported (destroy returns void). */
  (void)cudaSetDevice(st->device);
  if (st->stream)
    (void)cudaStreamSynchronize(st->stream);
  if (st->ev_start)
    (void)cudaEventDestroy(st->ev_start);
  if (st->ev_stop)
    (void)cudaEventDestroy(st->ev_stop);
  if (st->stream)
    (void)cudaStreamDestroy(st->stream);
  (void)cudaGetLastError();
  free(st);
}

/* Peak DRAM bytes per second from the memory clock (kHz, double data rate) and bus width
 * (bits); 0 where the driver does not say. */
static double dram_bandwidth(int dev) {
  int khz = 0, bits = 0;
  if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0.0;
  }
  return 2.0 * khz * 1e3 * bits / 8.0;
}

int cf_cuda_row_stores_choose(int env, double dram_bytes_per_s) {
  if (env >= 0)
    return env;
  return dram_bytes_per_s > 0.0 && dram_bytes_per_s < 4e12;
}

static cf_status cuda_init(void **state, cf_device_caps *caps, char *name, size_t name_len) {
  int dev = 0;
  CF_CHECK(find_device(&dev));
  cf_cuda_state *st = calloc(1, sizeof *st);
  if (!st)
    return cf_error(CF_ERR_OUT_OF_MEMORY, "cuda: cannot allocate the context state (%zu bytes)",
                    sizeof *st);
  st->device = dev;

  cf_status s = CF_OK;
  struct cudaDeviceProp prop;
  memset(&prop, 0, sizeof prop);
  cudaError_t e = cudaSetDevice(dev); /* also creates the device's primary context */
  if (e != cudaSuccess) {
    s = cf_cuda_fail(CF_ERR_BACKEND_UNAVAILABLE, e, "cudaSetDevice(%d)", dev);
    goto fail;
  }
  e = cudaGetDeviceProperties(&prop, dev);
  if (e != cudaSuccess) {
    s = cf_cuda_fail(CF_ERR_BACKEND_UNAVAILABLE, e, "cudaGetDeviceProperties(%d)", dev);
    goto fail;
  }
  /* The build holds sm_80 / sm_90 machine code and compute_90 PTX: make sure the driver can
   * load a kernel for this device now rather than failing at the first launch. */
  e = cfk_conv_ffma_check(0, CFK_EPI_NONE, NULL, NULL);
  if (e != cudaSuccess) {
    s = cf_cuda_fail(CF_ERR_BACKEND_UNAVAILABLE, e,
                     "loading the convfuse kernels on device %d (%s, compute capability %d.%d)",
                     dev, prop.name, prop.major, prop.minor);
    goto fail;
  }
  e = cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    st->stream = NULL;
    s = cf_cuda_fail(CF_ERR_BACKEND_UNAVAILABLE, e, "cudaStreamCreateWithFlags on device %d",
                     dev);
    goto fail;
  }
  e = cudaEventCreate(&st->ev_start);
  if (e != cudaSuccess) {
    st->ev_start = NULL;
    s = cf_cuda_fail(CF_ERR_BACKEND_UNAVAILABLE, e, "cudaEventCreate on device %d", dev);
    goto fail;
  }
  e = cudaEventCreate(&st->ev_stop);
  if (e != cudaSuccess) {
    st->ev_stop = NULL;
    s = cf_cuda_fail(CF_ERR_BACKEND_UNAVAILABLE, e, "cudaEventCreate on device %d", dev);
    goto fail;
  }

  memset(caps, 0, sizeof *caps);
  caps->kind = CF_DEVICE_GPU;
  caps->compute_units = prop.multiProcessorCount;
  caps->shared_mem_per_block = prop.sharedMemPerBlock;
  caps->shared_mem_per_block_max = prop.sharedMemPerBlockOptin;
  caps->max_threads_per_block = prop.maxThreadsPerBlock;
  caps->simd_width = prop.warpSize;
  caps->arch = prop.major * 10 + prop.minor;
  caps->has_tf32_mma = prop.major >= 8;
  /* wgmma needs the sm_90a image (kernels_cuda/conv_wgmma.cu): ask whether it loads here
   * rather than trusting the compute capability; a miss is no error (mma.sync runs instead). */
  caps->has_wgmma = caps->arch == 90 && cfk_conv_wgmma_available() == cudaSuccess;
  (void)cudaGetLastError();
  /* The TMA patch (sm_90+) needs the driver's tensor-map encoder; without it (or with
   * CONVFUSE_TMA=0) the kernels load the patch by cp.async. */
  if (caps->arch >= 90 && cf_env_tma() && cfk_tensor_map_encoder_get(&st->encoder) == cudaSuccess)
    caps->has_tma = 1;
  (void)cudaGetLastError();
  caps->mma_staged_output = 1; /* kernels_cuda/conv_mma.cu stages when the planner says so */
  /* Flat tiles store their output by TMA from the wgmma kernel (kernels_cuda/conv_flat.cuh) */
  caps->flat_tiles = caps->has_wgmma && caps->has_tma && cf_env_flat();
  /* fp16 on the streamed tiles (common/device_caps.h): one product for TF32 and pairs for
   * FP32 unless CONVFUSE_F16=0 (pairs measured -17% on mish-mish fp32: bench/NOTES.md v54),
   * pairs on the flat tiles too (sub-sub-mish fp32 -16%, H100: v55) */
  const int f16 = cf_env_f16();
  caps->wg_f16 = !(caps->has_wgmma && caps->has_tma) || f16 == 0 ? 0 : 2;
  /* WG entry 1's one fp16 product as the row-channel tile (kernels_cuda/conv_rowch.cuh):
   * 2.75 -> 2.61-2.67 ms on an H100's mish-mish tf32 (bench/NOTES.md v77, v79) */
  const int row_channels = cf_env_row_channels(), resident = cf_env_row_channels_resident();
  caps->row_channel_stages = caps->wg_f16 == 0 || row_channels == 0 ? 0
                             : row_channels < 0 || row_channels == 1
                                 ? CF_CUDA_ROW_CHANNEL_STAGES
                                 : row_channels;
  caps->row_channel_resident = resident < 0 ? CF_CUDA_ROW_CHANNEL_RESIDENT : resident;
  caps->l2_bytes = prop.l2CacheSize > 0 ? (size_t)prop.l2CacheSize : 0;
  st->row_stores = cf_cuda_row_stores_choose(cf_env_row_stores(), dram_bandwidth(dev));
  caps->global_mem_bytes = (uint64_t)prop.totalGlobalMem;
  caps->max_alloc_bytes = (uint64_t)prop.totalGlobalMem;
  if (name && name_len > 0)
    snprintf(name, name_len, "%s", prop.name);
  *state = st;
  return CF_OK;

fail:
  release_state(st);
  return s;
}

static void cuda_destroy(void *state) {
  if (state)
    release_state(state);
}

static cf_status cuda_synchronize(void *state) {
  cf_cuda_state *st = state;
  CF_CHECK(cf_cuda_set_device(st));
  cudaError_t e = cudaStreamSynchronize(st->stream);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e, "cudaStreamSynchronize");
  return CF_OK;
}

/* ---- buffers ---- */

static cf_status cuda_buffer_alloc(void *state, size_t bytes, void **mem) {
  cf_cuda_state *st = state;
  CF_CHECK(cf_cuda_set_device(st));
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    (void)cudaGetLastError(); /* cudaErrorMemoryAllocation is not sticky: clear it */
    size_t free_b = 0, total_b = 0;
    char room[96] = "";
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
      snprintf(room, sizeof room, " (device %d has %zu of %zu bytes free)", st->device, free_b,
               total_b);
    (void)cudaGetLastError();
    return cf_error(e == cudaErrorMemoryAllocation ? CF_ERR_OUT_OF_MEMORY : CF_ERR_DEVICE,
                    "cuda: cudaMalloc of %zu bytes failed: %s: %s%s", bytes, cudaGetErrorName(e),
                    cudaGetErrorString(e), room);
  }
  *mem = p;
  return CF_OK;
}

static void cuda_buffer_free(void *state, void *mem) {
  cf_cuda_state *st = state;
  if (!mem)
    return;
  /* Queued work may still use mem: wait for it (cudaFree would too, device-wide). */
  if (cudaSetDevice(st->device) == cudaSuccess)
    (void)cudaStreamSynchronize(st->stream);
  (void)cudaFree(mem);
  (void)cudaGetLastError();
}

static cf_status cuda_buffer_write(void *state, void *mem, size_t offset, const void *src,
                                   size_t bytes) {
  cf_cuda_state *st = state;
  CF_CHECK(cf_cuda_set_device(st));
  cudaError_t e = cudaMemcpyAsync((char *)mem + offset, src, bytes, cudaMemcpyHostToDevice,
                                  st->stream);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e,
                        "cudaMemcpyAsync of %zu bytes host to device (at offset %zu)", bytes,
                        offset);
  /* src may be reused on return: wait for the copy (and so for earlier work too). */
  e = cudaStreamSynchronize(st->stream);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e, "cudaStreamSynchronize after writing %zu bytes",
                        bytes);
  return CF_OK;
}

static cf_status cuda_buffer_read(void *state, void *mem, size_t offset, void *dst,
                                  size_t bytes) {
  cf_cuda_state *st = state;
  CF_CHECK(cf_cuda_set_device(st));
  /* On the context's stream: ordered after every queued launch. */
  cudaError_t e = cudaMemcpyAsync(dst, (const char *)mem + offset, bytes,
                                  cudaMemcpyDeviceToHost, st->stream);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e,
                        "cudaMemcpyAsync of %zu bytes device to host (at offset %zu)", bytes,
                        offset);
  e = cudaStreamSynchronize(st->stream);
  if (e != cudaSuccess)
    return cf_cuda_fail(CF_ERR_DEVICE, e, "cudaStreamSynchronize after reading %zu bytes",
                        bytes);
  return CF_OK;
}

/* ---- the interface ---- */

static const cf_backend_iface cuda_iface = {
    .kind = CF_BACKEND_CUDA,
    .kernel_variants = (1u << CF_KERNEL_FFMA_TILED) | (1u << CF_KERNEL_MMA_TF32) |
                       (1u << CF_KERNEL_MMA_3XTF32),
    .probe = cuda_probe,
    .init = cuda_init,
    .destroy = cuda_destroy,
    .buffer_alloc = cuda_buffer_alloc,
    .buffer_free = cuda_buffer_free,
    .buffer_write = cuda_buffer_write,
    .buffer_read = cuda_buffer_read,
    .plan_compile = cf_cuda_plan_compile,
    .plan_release = cf_cuda_plan_release,
    .plan_launch = cf_cuda_plan_launch,
    .synchronize = cuda_synchronize,
    .plan_launch_timed = cf_cuda_plan_launch_timed,
    .plan_detail = cf_cuda_plan_detail,
};

const cf_backend_iface *cf_backend_cuda(void) { return &cuda_iface; }
