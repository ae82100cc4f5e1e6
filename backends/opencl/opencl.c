/* convfuse OpenCL backend (OpenCL 1.2 host API).
 *
 * Device selection: CONVFUSE_OPENCL_DEVICE (case-insensitive substring of the platform or
 * device name) if set, else the first GPU of any platform, else the first device. One context
 * and one in-order, profiling-enabled command queue per cf_context.
 *
 * Kernels: the program text (generated constants + kernels_cl/, embedded at build time) is
 * built once per distinct option string and cached in the backend state; the options carry
 * the tile sizes and the epilogue chain (-D defines), while scalars that vary (op values,
 * bias_shift) and the shape stay kernel arguments. Each plan owns its own cl_kernel, with the
 * scalar arguments set once at compile time and the buffers at each launch.
 *
 * Between processes, built programs persist in the on-disk cache of program_cache.c (keyed by
 * device, driver, source hash and options; CONVFUSE_CACHE=0 turns it off): a context's first
 * use of an option string loads the binary from there when it can, and otherwise builds from
 * source and stores the binary. A compile costs seconds (PoCL's LLVM; NVIDIA's compiler with
 * its own cache off), a load a fraction of that.
 *
 * Tensor cores (NVIDIA only): at context creation a probe builds a one-warp kernel with one
 * inline-PTX mma.sync m16n8k8 TF32 and one cvt.rna.tf32.f32 on known inputs, runs it and
 * compares the results exactly. Only if that passes (and CONVFUSE_OPENCL_TENSOR_CORES is not
 * 0) does the context report has_tf32_mma and the mma_tf32 / mma_3xtf32 variants; otherwise
 * the reason goes to caps->tensor_core_note and the plans say it. The MMA kernel is
 * kernels_cl/conv2d_mma.cl, built with -DCF_MMA_KERNEL and the layout of common/mma_layout.h
 * as -D options; without -DCF_MMA_KERNEL (every FFMA build, PoCL) its PTX is not compiled.
 *
 * Every OpenCL return code is checked; failures become a cf_status and a cf_error message that
 * names the function and the error code by name and number. */
#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl.h>
#include <CL/cl_ext.h>

#include "backend.h"
#include "build_options.h"
#include "cf_constants.h"
#include "env.h"
#include "error.h"
#include "fastdiv.h"
#include "mma_layout.h"
#include "program_cache.h"
#include "ptx_patch.h"

/* The embedded program text and its SHA-256 (cmake/EmbedFiles.cmake). */
extern const char cf_cl_program_source[];
extern const size_t cf_cl_program_source_len;
extern const char cf_cl_program_source_sha256[];

#ifndef CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV
#define CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV 0x4000
#endif
#ifndef CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV
#define CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV 0x4001
#endif
#ifndef CL_DEVICE_WARP_SIZE_NV
#define CL_DEVICE_WARP_SIZE_NV 0x4003
#endif
#define CF_CL_PLATFORM_NOT_FOUND_KHR (-1001)

enum {
  CF_CL_MAX_PLATFORMS = 16,
  CF_CL_MAX_DEVICES = 64,
  CF_CL_NAME_LEN = 256,
  CF_CL_LOG_KEEP = 2500, /* build-log characters kept in an error message */
};

/* ------------------------------------------------------------------------------------------ */
/* Error names                                                                                 */

static const char *cl_error_name(cl_int err) {
  switch (err) {
#define CF_CL_ERR(e) \
  case e: return #e;
    CF_CL_ERR(CL_SUCCESS)
    CF_CL_ERR(CL_DEVICE_NOT_FOUND)
    CF_CL_ERR(CL_DEVICE_NOT_AVAILABLE)
    CF_CL_ERR(CL_COMPILER_NOT_AVAILABLE)
    CF_CL_ERR(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    CF_CL_ERR(CL_OUT_OF_RESOURCES)
    CF_CL_ERR(CL_OUT_OF_HOST_MEMORY)
    CF_CL_ERR(CL_PROFILING_INFO_NOT_AVAILABLE)
    CF_CL_ERR(CL_MEM_COPY_OVERLAP)
    CF_CL_ERR(CL_IMAGE_FORMAT_MISMATCH)
    CF_CL_ERR(CL_IMAGE_FORMAT_NOT_SUPPORTED)
    CF_CL_ERR(CL_BUILD_PROGRAM_FAILURE)
    CF_CL_ERR(CL_MAP_FAILURE)
    CF_CL_ERR(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    CF_CL_ERR(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    CF_CL_ERR(CL_COMPILE_PROGRAM_FAILURE)
    CF_CL_ERR(CL_LINKER_NOT_AVAILABLE)
    CF_CL_ERR(CL_LINK_PROGRAM_FAILURE)
    CF_CL_ERR(CL_DEVICE_PARTITION_FAILED)
    CF_CL_ERR(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    CF_CL_ERR(CL_INVALID_VALUE)
    CF_CL_ERR(CL_INVALID_DEVICE_TYPE)
    CF_CL_ERR(CL_INVALID_PLATFORM)
    CF_CL_ERR(CL_INVALID_DEVICE)
    CF_CL_ERR(CL_INVALID_CONTEXT)
    CF_CL_ERR(CL_INVALID_QUEUE_PROPERTIES)
    CF_CL_ERR(CL_INVALID_COMMAND_QUEUE)
    CF_CL_ERR(CL_INVALID_HOST_PTR)
    CF_CL_ERR(CL_INVALID_MEM_OBJECT)
    CF_CL_ERR(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    CF_CL_ERR(CL_INVALID_IMAGE_SIZE)
    CF_CL_ERR(CL_INVALID_SAMPLER)
    CF_CL_ERR(CL_INVALID_BINARY)
    CF_CL_ERR(CL_INVALID_BUILD_OPTIONS)
    CF_CL_ERR(CL_INVALID_PROGRAM)
    CF_CL_ERR(CL_INVALID_PROGRAM_EXECUTABLE)
    CF_CL_ERR(CL_INVALID_KERNEL_NAME)
    CF_CL_ERR(CL_INVALID_KERNEL_DEFINITION)
    CF_CL_ERR(CL_INVALID_KERNEL)
    CF_CL_ERR(CL_INVALID_ARG_INDEX)
    CF_CL_ERR(CL_INVALID_ARG_VALUE)
    CF_CL_ERR(CL_INVALID_ARG_SIZE)
    CF_CL_ERR(CL_INVALID_KERNEL_ARGS)
    CF_CL_ERR(CL_INVALID_WORK_DIMENSION)
    CF_CL_ERR(CL_INVALID_WORK_GROUP_SIZE)
    CF_CL_ERR(CL_INVALID_WORK_ITEM_SIZE)
    CF_CL_ERR(CL_INVALID_GLOBAL_OFFSET)
    CF_CL_ERR(CL_INVALID_EVENT_WAIT_LIST)
    CF_CL_ERR(CL_INVALID_EVENT)
    CF_CL_ERR(CL_INVALID_OPERATION)
    CF_CL_ERR(CL_INVALID_GL_OBJECT)
    CF_CL_ERR(CL_INVALID_BUFFER_SIZE)
    CF_CL_ERR(CL_INVALID_MIP_LEVEL)
    CF_CL_ERR(CL_INVALID_GLOBAL_WORK_SIZE)
    CF_CL_ERR(CL_INVALID_PROPERTY)
    CF_CL_ERR(CL_INVALID_IMAGE_DESCRIPTOR)
    CF_CL_ERR(CL_INVALID_COMPILER_OPTIONS)
    CF_CL_ERR(CL_INVALID_LINKER_OPTIONS)
    CF_CL_ERR(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef CF_CL_ERR
  case CF_CL_PLATFORM_NOT_FOUND_KHR: return "CL_PLATFORM_NOT_FOUND_KHR";
  case -9999: return "NVIDIA_ILLEGAL_MEMORY_ACCESS"; /* NVIDIA: a kernel faulted */
  default: return "unknown OpenCL error";
  }
}

/* Records "opencl: <fn>: <NAME> (<code>)<ctx>" and returns status. */
static cf_status cl_fail(cf_status status, const char *fn, cl_int err, const char *ctx) {
  return cf_error(status, "opencl: %s failed: %s (%d)%s%s", fn, cl_error_name(err), (int)err,
                  ctx && *ctx ? "; " : "", ctx ? ctx : "");
}

static int cl_is_oom(cl_int err) {
  return err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
         err == CL_OUT_OF_HOST_MEMORY;
}

/* A failure of a queue operation: out-of-memory codes map to CF_ERR_OUT_OF_MEMORY. */
static cf_status cl_fail_op(const char *fn, cl_int err, const char *ctx) {
  return cl_fail(cl_is_oom(err) ? CF_ERR_OUT_OF_MEMORY : CF_ERR_DEVICE, fn, err, ctx);
}

/* ------------------------------------------------------------------------------------------ */
/* Device discovery and selection                                                              */

typedef struct cl_dev_entry {
  cl_platform_id platform;
  cl_device_id device;
  cl_device_type type;
  int usable; /* available and has a compiler */
  char platform_name[CF_CL_NAME_LEN];
  char device_name[CF_CL_NAME_LEN];
} cl_dev_entry;

static void trim_copy(char *dst, size_t len, const char *src) {
  while (*src && isspace((unsigned char)*src))
    ++src;
  snprintf(dst, len, "%s", src);
  size_t n = strlen(dst);
  while (n > 0 && isspace((unsigned char)dst[n - 1]))
    dst[--n] = '\0';
}

static void platform_string(cl_platform_id p, cl_platform_info what, char *out, size_t len) {
  char buf[CF_CL_NAME_LEN];
  buf[0] = '\0';
  if (clGetPlatformInfo(p, what, sizeof buf, buf, NULL) != CL_SUCCESS)
    snprintf(buf, sizeof buf, "?");
  buf[sizeof buf - 1] = '\0';
  trim_copy(out, len, buf);
}

static void device_string(cl_device_id d, cl_device_info what, char *out, size_t len) {
  char buf[CF_CL_NAME_LEN];
  buf[0] = '\0';
  if (clGetDeviceInfo(d, what, sizeof buf, buf, NULL) != CL_SUCCESS)
    snprintf(buf, sizeof buf, "?");
  buf[sizeof buf - 1] = '\0';
  trim_copy(out, len, buf);
}

/* Case-insensitive substring search. */
static int contains_ci(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; ++hay) {
    size_t i = 0;
    while (i < n && hay[i] &&
           tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      ++i;
    if (i == n)
      return 1;
  }
  return n == 0;
}

/* Lists every device of every platform into list (up to cap). CF_ERR_BACKEND_UNAVAILABLE
 * with a reason when there is no platform or no device at all. */
static cf_status enumerate_devices(cl_dev_entry *list, int cap, int *count) {
  cl_platform_id plats[CF_CL_MAX_PLATFORMS];
  cl_uint n_plats = 0;
  *count = 0;
  cl_int err = clGetPlatformIDs(CF_CL_MAX_PLATFORMS, plats, &n_plats);
  if (err != CL_SUCCESS)
    return cf_error(CF_ERR_BACKEND_UNAVAILABLE,
                    "opencl: no OpenCL platform found (clGetPlatformIDs: %s %d)",
                    cl_error_name(err), (int)err);
  if (n_plats == 0)
    return cf_error(CF_ERR_BACKEND_UNAVAILABLE,
                    "opencl: no OpenCL platform found (clGetPlatformIDs returned 0 platforms)");
  if (n_plats > CF_CL_MAX_PLATFORMS)
    n_plats = CF_CL_MAX_PLATFORMS;

  char why[1024];
  size_t used = 0;
  why[0] = '\0';
  for (cl_uint pi = 0; pi < n_plats; ++pi) {
    char pname[CF_CL_NAME_LEN];
    platform_string(plats[pi], CL_PLATFORM_NAME, pname, sizeof pname);
    cl_device_id devs[CF_CL_MAX_DEVICES];
    cl_uint n_devs = 0;
    err = clGetDeviceIDs(plats[pi], CL_DEVICE_TYPE_ALL, CF_CL_MAX_DEVICES, devs, &n_devs);
    if (err != CL_SUCCESS || n_devs == 0) {
      if (used < sizeof why)
        used += (size_t)snprintf(why + used, sizeof why - used, "%s'%s': %s %d",
                                 used ? ", " : "", pname, cl_error_name(err), (int)err);
      continue;
    }
    if (n_devs > CF_CL_MAX_DEVICES)
      n_devs = CF_CL_MAX_DEVICES;
    for (cl_uint di = 0; di < n_devs && *count < cap; ++di) {
      cl_dev_entry *e = &list[(*count)++];
      memset(e, 0, sizeof *e);
      e->platform = plats[pi];
      e->device = devs[di];
      snprintf(e->platform_name, sizeof e->platform_name, "%s", pname);
      device_string(devs[di], CL_DEVICE_NAME, e->device_name, sizeof e->device_name);
      cl_device_type type = 0;
      cl_bool avail = CL_FALSE, compiler = CL_FALSE;
      if (clGetDeviceInfo(devs[di], CL_DEVICE_TYPE, sizeof type, &type, NULL) != CL_SUCCESS)
        type = 0;
      if (clGetDeviceInfo(devs[di], CL_DEVICE_AVAILABLE, sizeof avail, &avail, NULL) !=
          CL_SUCCESS)
        avail = CL_FALSE;
      if (clGetDeviceInfo(devs[di], CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler,
                          NULL) != CL_SUCCESS)
        compiler = CL_FALSE;
      e->type = type;
      e->usable = avail == CL_TRUE && compiler == CL_TRUE;
    }
  }
  if (*count == 0)
    return cf_error(CF_ERR_BACKEND_UNAVAILABLE,
                    "opencl: no OpenCL device found on %u platform(s) (clGetDeviceIDs: %s)",
                    (unsigned)n_plats, why);
  return CF_OK;
}

/* Writes "'dev (plat)', ..." for an error message. */
static void describe_devices(const cl_dev_entry *list, int count, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < count && used < len; ++i)
    used += (size_t)snprintf(buf + used, len - used, "%s'%s (%s)'%s", i ? ", " : "",
                             list[i].device_name, list[i].platform_name,
                             list[i].usable ? "" : " [unavailable or no compiler]");
}

static cf_status select_device(cl_dev_entry *out) {
  cl_dev_entry list[CF_CL_MAX_DEVICES];
  int count = 0;
  CF_CHECK(enumerate_devices(list, CF_CL_MAX_DEVICES, &count));
  char names[1536];

  const char *want = getenv("CONVFUSE_OPENCL_DEVICE");
  if (want && *want) {
    int unusable = -1;
    for (int i = 0; i < count; ++i) {
      if (contains_ci(list[i].platform_name, want) || contains_ci(list[i].device_name, want)) {
        if (list[i].usable) {
          *out = list[i];
          return CF_OK;
        }
        if (unusable < 0)
          unusable = i;
      }
    }
    if (unusable >= 0)
      return cf_error(CF_ERR_BACKEND_UNAVAILABLE,
                      "opencl: CONVFUSE_OPENCL_DEVICE='%s' selects '%s (%s)', which is not "
                      "available or has no OpenCL C compiler",
                      want, list[unusable].device_name, list[unusable].platform_name);
    describe_devices(list, count, names, sizeof names);
    return cf_error(CF_ERR_BACKEND_UNAVAILABLE,
                    "opencl: CONVFUSE_OPENCL_DEVICE='%s' matches no OpenCL platform or device "
                    "name (devices: %s)",
                    want, names);
  }
  for (int i = 0; i < count; ++i) {
    if (list[i].usable && (list[i].type & CL_DEVICE_TYPE_GPU)) {
      *out = list[i];
      return CF_OK;
    }
  }
  for (int i = 0; i < count; ++i) {
    if (list[i].usable) {
      *out = list[i];
      return CF_OK;
    }
  }
  describe_devices(list, count, names, sizeof names);
  return cf_error(CF_ERR_BACKEND_UNAVAILABLE,
                  "opencl: no usable OpenCL device (devices: %s)", names);
}

/* ------------------------------------------------------------------------------------------ */
/* Backend state                                                                               */

typedef struct cl_program_entry {
  char *options;
  cl_program program;
} cl_program_entry;

typedef struct cl_state {
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  cl_ulong max_alloc;
  cl_ulong global_mem;
  cl_ulong local_mem;
  size_t max_wg;        /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
  size_t max_item[2];   /* CL_DEVICE_MAX_WORK_ITEM_SIZES[0..1] */
  cl_uint address_bits;
  int is_nvidia;
  int compute_units;
  int nv_cc;            /* NVIDIA compute capability major*10+minor; 0 if unknown */
  int nv_options;       /* cl_nv_compiler_options: -cl-nv-verbose is accepted */
  int tensor_cores;     /* the inline-PTX mma.sync probe passed (cached per context), or
                           CONVFUSE_OPENCL_TENSOR_CORES=emulate */
  int emulate_mma;      /* the tensor-core kernel built with -DCFM_EMULATE=1 (no PTX) */
  int mma_max_registers; /* CONVFUSE_OPENCL_MAX_REGISTERS: -1 unset (mma_register_cap's
                            defaults), 0 no cap, else the cap */
  int register_cap_ok;   /* the probe, rebuilt from its PTX with a register cap, passed */
  int wgmma_ok;          /* sm_90 with the PTX rebuild working: the wgmma program may run
                            (kernels_cl/conv2d_wgmma.cl) once its probe passes */
  int wgmma_probed;      /* the wgmma probe: 0 not run yet, 1 passed, -1 failed */
  cf_cl_switches forced_switches; /* CONVFUSE_OPENCL_SWITCHES (-1: the measured default) */
  const char *asm_kw;   /* the inline-assembly keyword the probe built with */
  int verbose;          /* CONVFUSE_VERBOSE=1: build logs of successful builds to stderr */
  cl_program_entry *programs; /* the program cache, keyed by the full options string */
  int n_programs, cap_programs;
  cf_pcache *disk_cache;      /* the on-disk program cache; NULL when off */
} cl_state;

/* An fp16 tensor-core plan's companions (kernels_cl/conv2d_mma.cl, CFM_F16): every call
 * scales the weights per channel and packs them as fp16 words into `scaled` (2^-e into
 * `unscale`), clears the guard word,
 * runs the fp16 kernel on the scaled copy and then `rerun`, the same tile's TF32 / 3xTF32
 * program on the caller's weights, which returns at once unless the fp16 kernel set the word
 * (a sum past fp16's range, or inf / NaN). */
typedef struct cl_f16_guard {
  cl_kernel scale; /* cf_f16_scale_weights, or the wgmma plan's cf_wgmma_lay_out_weights */
  cl_kernel rerun;
  cl_mem scaled, unscale, guard;
  size_t scale_global, scale_local;
  size_t rerun_global[2], rerun_local[2]; /* the rerun's own geometry (rerun_geometry) */
} cl_f16_guard;

typedef struct cl_compiled {
  cl_kernel kernel;
  const char *name; /* the kernel function, for messages */
  size_t global[2], local[2];
  int has_bias;
  cl_f16_guard *f16; /* NULL but for an fp16 plan */
  const char *detail; /* cf_plan_describe's addition (cl_plan_detail), or NULL */
  char detail_text[512]; /* where detail is composed (forced-only switches appended) */
} cl_compiled;

/* The plan's compiled state: takes kernel (the caller releases it on failure). */
static cf_status compiled_make(cl_kernel kernel, const char *name, const size_t local[2],
                               const size_t global[2], int has_bias, void **compiled) {
  cl_compiled *c = (cl_compiled *)calloc(1, sizeof *c);
  if (!c)
    return cf_error(CF_ERR_OUT_OF_MEMORY, "opencl: out of host memory (%zu bytes)", sizeof *c);
  c->kernel = kernel;
  c->name = name;
  for (int i = 0; i < 2; ++i) {
    c->local[i] = local[i];
    c->global[i] = global[i];
  }
  c->has_bias = has_bias ? 1 : 0;
  *compiled = c;
  return CF_OK;
}

/* clFinish, reporting asynchronous failures of earlier work. */
static cf_status cl_finish_checked(cl_state *st) {
  cl_int err = clFinish(st->queue);
  if (err != CL_SUCCESS)
    return cl_fail_op("clFinish", err, "an earlier queued command failed");
  return CF_OK;
}

static cf_status device_info(cl_device_id d, cl_device_info what, size_t size, void *out,
                             const char *what_name) {
  cl_int err = clGetDeviceInfo(d, what, size, out, NULL);
  if (err != CL_SUCCESS)
    return cl_fail(CF_ERR_BACKEND_UNAVAILABLE, "clGetDeviceInfo", err, what_name);
  return CF_OK;
}

static cf_status cl_probe(void) {
  cl_dev_entry e;
  return select_device(&e);
}

static void cl_destroy(void *state_) {
  cl_state *st = (cl_state *)state_;
  if (!st)
    return;
  if (st->queue)
    clFinish(st->queue);
  for (int i = 0; i < st->n_programs; ++i) {
    clReleaseProgram(st->programs[i].program);
    free(st->programs[i].options);
  }
  free(st->programs);
  cf_pcache_close(st->disk_cache);
  if (st->queue)
    clReleaseCommandQueue(st->queue);
  if (st->context)
    clReleaseContext(st->context);
  free(st);
}


/* ptxas's register cap for the tensor-core kernel (rebuilt from its PTX with .maxnreg where
 * the probe proved that route; CONVFUSE_OPENCL_MAX_REGISTERS overrides, 0 = none): 128 lets
 * four 128-work-item groups share an SM (65536 registers) or two of 256, 96 five of 128 (and
 * still two of 256: 96 applies to 128-wide groups only; T1, sub-sub-mish tf32: 1.73 ms at 96,
 * 1.52 at 128, v45). H200, T2, same call, every
 * fetch by cp.async and mish on the SFU (bench/NOTES.md v41, v43): sub-sub-mish fp32 1.82 ms
 * at 128 (112: 1.95), mish-mish tf32 7.83 (112: 8.39, none: 7.97), fp32 14.27 (112: 14.97,
 * none: 25.0). TF32 with resident weights (sub-sub-mish tf32) takes 94 registers uncapped, yet
 * its program rebuilt at 96 ran 1.85 ms against 2.16 as built (128: 1.93; 88: 1.99). ptxas
 * fills what a cap allows, so a cap is an occupancy choice, and these are measured, not
 * derived: re-measure them when the kernel changes (v41 had other winners). */
#define MMA_MAX_REGISTERS 128
#define MMA_MAX_REGISTERS_TF32_RESIDENT 96
/* Tall warps (64 x 32: 64 accumulators per work-item) in 128-wide groups (T1) at 128 registers
 * spill: 6.45-6.51 ms on mish-mish tf32 against 5.56 at 168 (three groups per SM; NOTES v46).
 * 256-wide groups (T0) keep 128, two groups per SM: 5.06 ms against 6.42 at 168 (one; v47). */
#define MMA_MAX_REGISTERS_TALL 168
/* 3xTF32 with resident weights on the H100's defaults (the k-loop rolled, ldmatrix:
 * cf_cl_mma_switches): sub-sub-mish fp32 2.04-2.05 ms at 128 (or uncapped), 1.75-1.76 at 144,
 * 1.77-1.79 at 152-200, 2.44 at 96 (an H100, bench/NOTES.md v63). */
#define MMA_MAX_REGISTERS_H100_SPLIT_RESIDENT 144
/* Its fp16 pairs (the same loop, sector-aligned stores): sub-sub-mish fp32 with 64-bit offsets
 * 1.393-1.405 ms at 144, 1.373-1.383 at 152 (five rounds), 1.40-1.43 at 136 / 160 / 168, 1.90
 * at 128; with 32-bit offsets (their default since) 1.35-1.37 at 152 (five rounds), alike at
 * 160-192, 1.60 at 144, 1.85 at 128 (an H100, bench/NOTES.md v68). 152 leaves three 128-wide
 * groups per SM, as 144 does. */
#define MMA_MAX_REGISTERS_H100_PAIRS_RESIDENT 152
/* The plan detail's opening where a program runs on the H100's defaults */
#define H100_DETAIL "opencl: the H100's defaults (an NVIDIA device of <= 100 GiB): "

/* ------------------------------------------------------------------------------------------ */
/* Tensor-core probe (NVIDIA)                                                                  */

/* One warp: D (16x8) = A (16x8, row-major) x B (8x8, B[k][n]) with one mma.sync m16n8k8 TF32
 * in the fragment layout conv2d_mma.cl relies on, cvt.rna.tf32.f32 of 32 values, and 4-byte
 * cp.async copies into local memory (odd lanes copy, even lanes zero-fill), read back by other
 * work-items after wait_group and a barrier, as the kernel loads its stages. CF_ASM is
 * the inline-assembly keyword: NVIDIA's compiler has taken `asm`; `__asm__` is the fallback
 * spelling, and the one that built is passed on to the kernel's builds. */
static const char probe_source[] =
    "__kernel __attribute__((reqd_work_group_size(32, 1, 1))) void\n"
    "cf_probe_mma(__global const float *a, __global const float *b, __global float *d) {\n"
    "  const int lane = (int)get_local_id(0), g = lane >> 2, t = lane & 3;\n"
    "  const uint a0 = as_uint(a[g * 8 + t]), a1 = as_uint(a[(g + 8) * 8 + t]);\n"
    "  const uint a2 = as_uint(a[g * 8 + t + 4]), a3 = as_uint(a[(g + 8) * 8 + t + 4]);\n"
    "  const uint b0 = as_uint(b[t * 8 + g]), b1 = as_uint(b[(t + 4) * 8 + g]);\n"
    "  float d0 = 1.0f, d1 = 1.0f, d2 = 1.0f, d3 = 1.0f;\n"
    "  CF_ASM volatile(\"mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 \"\n"
    "               \"{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\"\n"
    "               : \"+f\"(d0), \"+f\"(d1), \"+f\"(d2), \"+f\"(d3)\n"
    "               : \"r\"(a0), \"r\"(a1), \"r\"(a2), \"r\"(a3), \"r\"(b0), \"r\"(b1));\n"
    "  d[g * 8 + 2 * t] = d0;\n"
    "  d[g * 8 + 2 * t + 1] = d1;\n"
    "  d[(g + 8) * 8 + 2 * t] = d2;\n"
    "  d[(g + 8) * 8 + 2 * t + 1] = d3;\n"
    "  uint r;\n"
    "  CF_ASM(\"cvt.rna.tf32.f32 %0, %1;\" : \"=r\"(r) : \"f\"(a[128 + lane]));\n"
    "  d[128 + lane] = as_float(r);\n"
    "  __local float cs[32];\n"
    "  CF_ASM volatile(\"cp.async.ca.shared.global [%0], [%1], 4, %2;\" ::\n"
    "                  \"r\"((uint)(size_t)(cs + lane)), \"l\"(a + 128 + lane), \"r\"(lane & 1 ? 4 : 0)\n"
    "                  : \"memory\");\n"
    "  CF_ASM volatile(\"cp.async.commit_group;\" ::: \"memory\");\n"
    "  CF_ASM volatile(\"cp.async.wait_group 0;\" ::: \"memory\");\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  d[160 + lane] = cs[31 - lane];\n"
    "}\n";

enum { PROBE_A = 128 + 32, PROBE_B = 64, PROBE_D = 128 + 64 };

static uint32_t f32_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

/* Fills the probe's inputs and the exact expected outputs. A and B hold small multiples of
 * 1/2 (exact in TF32; every product and partial sum exact in fp32); C starts at 1. The cvt
 * inputs sit on and around TF32 rounding boundaries, ties included (rna: away from zero). */
static void probe_data(float *a, float *b, float *want) {
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 8; ++k)
      a[i * 8 + k] = (float)((i * 3 + k * 5) % 9 - 4) + 0.5f * (float)((i + k) % 2);
  for (int k = 0; k < 8; ++k)
    for (int n = 0; n < 8; ++n)
      b[k * 8 + n] = (float)((k * 7 + n * 3) % 11 - 5) + 0.5f * (float)((k * n) % 2);
  for (int i = 0; i < 16; ++i)
    for (int n = 0; n < 8; ++n) {
      double acc = 1.0;
      for (int k = 0; k < 8; ++k)
        acc += (double)a[i * 8 + k] * (double)b[k * 8 + n];
      want[i * 8 + n] = (float)acc;
    }
  for (int j = 0; j < 32; ++j) {
    /* 1 + j * 2^-13 (j = 4: exactly half a TF32 ulp above 1), alternating signs, scaled */
    float x = (1.0f + (float)j * 0x1p-13f) * (j % 2 ? -3.0f : 0.75f);
    a[128 + j] = x;
    uint32_t u = (f32_bits(x) + 0x1000u) & 0xffffe000u; /* round half away, 10 bits kept */
    memcpy(&want[128 + j], &u, sizeof u);
  }
  for (int j = 0; j < 32; ++j) /* cs[31 - j]: copied from a[128 + 31 - j] by odd lanes */
    want[160 + j] = (31 - j) % 2 ? a[128 + 31 - j] : 0.0f;
}

static cl_program rebuild_with_max_registers(cl_state *st, cl_context ctx, cl_program prog,
                                             const char *options, int max_registers);

/* Runs the probe kernel of prog (32 work-items) on inputs ma, mb into md and compares every
 * output bit for bit with want; 1 if all match. Otherwise 0 and why says what failed. */
static int probe_run(cl_command_queue pq, cl_program prog, cl_mem ma, cl_mem mb, cl_mem md,
                     const float *want, const char *what, char *why, size_t why_len) {
  float got[PROBE_D];
  cl_int err = CL_SUCCESS;
  const char *step = "clCreateKernel";
  cl_kernel kernel = clCreateKernel(prog, "cf_probe_mma", &err);
  int ok = 0;
  if (err == CL_SUCCESS) {
    step = "clSetKernelArg";
    err = clSetKernelArg(kernel, 0, sizeof(cl_mem), &ma);
    if (err == CL_SUCCESS)
      err = clSetKernelArg(kernel, 1, sizeof(cl_mem), &mb);
    if (err == CL_SUCCESS)
      err = clSetKernelArg(kernel, 2, sizeof(cl_mem), &md);
  }
  if (err == CL_SUCCESS) {
    step = "clEnqueueNDRangeKernel";
    size_t global = 32, local = 32;
    err = clEnqueueNDRangeKernel(pq, kernel, 1, NULL, &global, &local, 0, NULL, NULL);
  }
  if (err == CL_SUCCESS) {
    step = "clEnqueueReadBuffer";
    err = clEnqueueReadBuffer(pq, md, CL_TRUE, 0, sizeof got, got, 0, NULL, NULL);
  }
  if (err != CL_SUCCESS)
    snprintf(why, why_len, "%s failed: %s: %s (%d)", what, step, cl_error_name(err), (int)err);
  else {
    ok = 1;
    for (int i = 0; i < PROBE_D && ok; ++i)
      if (f32_bits(got[i]) != f32_bits(want[i])) {
        snprintf(why, why_len, "%s: wrong %s result [%d] %g (want %g)", what,
                 i < 128 ? "mma.sync" : i < 160 ? "cvt.rna" : "cp.async", i, (double)got[i],
                 (double)want[i]);
        ok = 0;
      }
  }
  if (kernel)
    clReleaseKernel(kernel);
  return ok;
}

/* The tensor-core plan menu of a context whose kernel builds: `capped` where the register cap
 * of the rebuild from PTX applies. NVIDIA's OpenCL compiler takes no register cap of its own
 * (-cl-nv-maxrregcount is ignored): left alone these kernels take 124-201 registers per
 * work-item, so 512 work-items cannot launch and 256 fit one group per SM; 128-wide groups (T2,
 * T3) ran best there (H200: sub-sub-mish fp32 3.39 ms on T2 vs 4.68 on T1). With the cap of the
 * rebuild from PTX (128 registers: two 256-wide groups per SM) T1 wins since every fetch is by
 * cp.async (H200, same calls, bench/NOTES.md v45: sub-sub-mish tf32 1.91 -> 1.43 ms, mish-mish
 * tf32 7.51 -> 6.30, fp32 13.21 -> 13.10), except 3xTF32 with resident weights (sub-sub-mish
 * fp32 1.81 on T2, 1.97 on T1). */
static void set_tensor_core_caps(cf_device_caps *caps, int capped) {
  caps->has_tf32_mma = 1;
  caps->mma_registers_capped = capped;
  caps->mma_max_threads = capped ? 256 : 128;
  caps->mma_split_resident_max_threads = 128;
  /* With the cap, one TF32 product with streamed weights on warps of 64 x 32 (T1: four per
   * group, three groups per SM at MMA_MAX_REGISTERS_TALL): mish-mish tf32 6.18 -> 5.56 ms;
   * with resident weights slower (sub-sub-mish tf32 1.435 -> 1.50; H200, NOTES v46). */
  caps->mma_tall_warps = capped;
  /* Streamed weights unpadded (swizzled) where padded ones do not fit: T0 (256 x 64) then
   * fits 48 KB at 4-channel chunks and, on tall warps (256 work-items, two groups per SM at
   * 128 registers), halves the weight traffic per output: mish-mish tf32 5.29 -> 5.06 ms
   * (H200, NOTES v47). */
  caps->mma_weight_swizzle = 1;
  caps->kernel_variants |= (1u << CF_KERNEL_MMA_TF32) | (1u << CF_KERNEL_MMA_3XTF32);
}

/* CONVFUSE_OPENCL_TENSOR_CORES=emulate: the tensor-core kernel without its inline PTX
 * (-DCFM_EMULATE=1), on any device, planned as on an H200 (48 KB of local memory, 132 compute
 * units to fill, the register-capped menu) so that the programs NVIDIA's OpenCL runs there run
 * here too, to check their indexing, layouts and stage ring (PoCL in CI). Slow: each mma meets
 * its warp's fragments in local memory between two work-group barriers. */
static void enable_emulated_tensor_cores(cl_state *st, cf_device_caps *caps) {
  /* the kernel's emulation scratch: 6 words per work-item, groups of up to 256 */
  enum { H200_SMS = 132, EMULATION_BYTES = 6 * 4 * 256 };
  st->tensor_cores = 1;
  st->emulate_mma = 1;
  st->asm_kw = "asm"; /* not read: no inline assembly is built */
  st->register_cap_ok = 0;
  st->mma_max_registers = 0;
  size_t local = caps->shared_mem_per_block;
  local = local > EMULATION_BYTES ? local - EMULATION_BYTES : 0;
  caps->shared_mem_per_block = caps->shared_mem_per_block_max =
      local < CF_CL_MMA_LOCAL_BYTES ? local : CF_CL_MMA_LOCAL_BYTES;
  caps->compute_units = H200_SMS;
  caps->tensor_core_note[0] = '\0';
  set_tensor_core_caps(caps, 1);
  st->wgmma_ok = 1; /* its program emulated too (conv2d_wgmma.cl's CFW_EMULATE) */
}

/* Runs the probe on st's device, in a context and queue of its own (a fault there cannot
 * poison the context the plans use); 1 if every result matched. Otherwise 0 with the reason in
 * why. Sets st->asm_kw, and st->register_cap_ok where the probe rebuilt from its own PTX with a
 * register cap (rebuild_with_max_registers) computes the same. Sets no cf_error: a failed probe
 * is not an error, the FFMA kernel serves. */
static int probe_tensor_cores(cl_state *st, char *why, size_t why_len, int verbose) {
  float a[PROBE_A], b[PROBE_B], want[PROBE_D];
  probe_data(a, b, want);
  cl_int err = CL_SUCCESS;
  cl_context pctx = NULL;
  cl_command_queue pq = NULL;
  const char *src = probe_source;
  size_t src_len = sizeof probe_source - 1;
  cl_program prog = NULL, capped = NULL;
  cl_mem ma = NULL, mb = NULL, md = NULL;
  int ok = 0;
  static const char *const keywords[2] = {"asm", "__asm__"};
  char options[32] = "";
  const char *step = "clCreateContext";
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)st->platform, 0};
  pctx = clCreateContext(props, 1, &st->device, NULL, NULL, &err);
  if (err != CL_SUCCESS || !pctx) {
    pctx = NULL;
    goto done;
  }
  step = "clCreateCommandQueue";
  pq = clCreateCommandQueue(pctx, st->device, 0, &err);
  if (err != CL_SUCCESS || !pq) {
    pq = NULL;
    goto done;
  }
  step = "clCreateProgramWithSource";
  for (int kw = 0; kw < 2; ++kw) {
    if (prog)
      clReleaseProgram(prog);
    prog = clCreateProgramWithSource(pctx, 1, &src, &src_len, &err);
    if (err != CL_SUCCESS) {
      prog = NULL;
      goto done;
    }
    snprintf(options, sizeof options, "-DCF_ASM=%s", keywords[kw]);
    st->asm_kw = keywords[kw];
    err = clBuildProgram(prog, 1, &st->device, options, NULL, NULL);
    if (err == CL_SUCCESS)
      break;
  }
  step = "clBuildProgram";
  if (err != CL_SUCCESS) {
    if (verbose) {
      char log[2048];
      log[0] = '\0';
      if (clGetProgramBuildInfo(prog, st->device, CL_PROGRAM_BUILD_LOG, sizeof log, log, NULL) !=
          CL_SUCCESS)
        log[0] = '\0';
      log[sizeof log - 1] = '\0';
      fprintf(stderr, "convfuse: opencl tensor-core probe build log:\n%s\n", log);
    }
    goto done;
  }
  step = "clCreateBuffer";
  ma = clCreateBuffer(pctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof a, a, &err);
  if (err == CL_SUCCESS)
    mb = clCreateBuffer(pctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof b, b, &err);
  if (err == CL_SUCCESS)
    md = clCreateBuffer(pctx, CL_MEM_WRITE_ONLY, PROBE_D * sizeof(float), NULL, &err);
  if (err != CL_SUCCESS)
    goto done;
  step = NULL;
  ok = probe_run(pq, prog, ma, mb, md, want, "inline-PTX tensor-core probe", why, why_len);
  if (ok) { /* the register cap's route: the same probe from its own edited PTX */
    char cap_why[96] = "the driver refused the rebuild from PTX";
    capped = rebuild_with_max_registers(st, pctx, prog, options, 64);
    st->register_cap_ok = capped && probe_run(pq, capped, ma, mb, md, want,
                                              "register-capped probe", cap_why, sizeof cap_why);
    if (verbose)
      fprintf(stderr, "convfuse: opencl register cap through PTX: %s\n",
              st->register_cap_ok ? "works" : cap_why);
  }
done:
  if (!ok && step)
    snprintf(why, why_len, "inline-PTX tensor-core probe failed: %s: %s (%d)", step,
             cl_error_name(err), (int)err);
  if (md)
    clReleaseMemObject(md);
  if (mb)
    clReleaseMemObject(mb);
  if (ma)
    clReleaseMemObject(ma);
  if (capped)
    clReleaseProgram(capped);
  if (prog)
    clReleaseProgram(prog);
  if (pq) {
    clFinish(pq);
    clReleaseCommandQueue(pq);
  }
  if (pctx)
    clReleaseContext(pctx);
  if (verbose)
    fprintf(stderr, "convfuse: opencl tensor-core probe: %s\n", ok ? "passed" : why);
  return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* On-disk program cache                                                                       */

enum { CF_CL_KEY_LEN = 1024 };

/* A device or platform string for the cache key; 0 if the query failed. */
static int key_string(cl_platform_id p, cl_device_id d, cl_uint what, char *out) {
  cl_int err = d ? clGetDeviceInfo(d, (cl_device_info)what, CF_CL_KEY_LEN, out, NULL)
                 : clGetPlatformInfo(p, (cl_platform_info)what, CF_CL_KEY_LEN, out, NULL);
  out[CF_CL_KEY_LEN - 1] = '\0';
  return err == CL_SUCCESS;
}

/* The on-disk cache for this device's programs (NULL when off). Its key names the platform,
 * the device and the driver version, so that a driver update or another device never loads a
 * binary built for something else; a string the driver does not give turns the cache off
 * rather than weakening the key. */
static cf_pcache *open_disk_cache(const cl_state *st) {
  static const struct {
    int device;
    cl_uint what;
  } fields[6] = {{0, CL_PLATFORM_NAME}, {0, CL_PLATFORM_VERSION}, {1, CL_DEVICE_NAME},
                 {1, CL_DEVICE_VENDOR}, {1, CL_DEVICE_VERSION},  {1, CL_DRIVER_VERSION}};
  char s[6][CF_CL_KEY_LEN];
  int ok = 1;
  for (int i = 0; ok && i < 6; ++i)
    ok = key_string(st->platform, fields[i].device ? st->device : NULL, fields[i].what, s[i]);
  cf_pcache *c = NULL;
  if (ok) {
    const cf_pcache_device dev = {s[0], s[1], s[2], s[3], s[4], s[5]};
    c = cf_pcache_open(&dev, cf_cl_program_source_sha256, st->verbose);
  } else if (st->verbose) {
    fprintf(stderr, "convfuse: program cache: off (the driver did not name the device)\n");
  }
  return c;
}

static cf_status cl_init(void **state_out, cf_device_caps *caps, char *name, size_t name_len) {
  *state_out = NULL;
  cl_dev_entry sel;
  CF_CHECK(select_device(&sel));

  cl_state *st = (cl_state *)calloc(1, sizeof *st);
  if (!st)
    return cf_error(CF_ERR_OUT_OF_MEMORY, "opencl: out of host memory (%zu bytes)",
                    sizeof *st);
  st->platform = sel.platform;
  st->device = sel.device;
  cf_status s = CF_OK;

  /* Capabilities. */
  cl_ulong local_mem = 0, global_mem = 0, max_alloc = 0, cache = 0;
  cl_uint cus = 0, addr_bits = 0, dims = 0;
  size_t max_wg = 0;
  size_t item_sizes[8] = {0};
  char vendor[CF_CL_NAME_LEN], exts[8192];
  if ((s = device_info(st->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local_mem, &local_mem,
                       "CL_DEVICE_LOCAL_MEM_SIZE")) != CF_OK ||
      (s = device_info(st->device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof global_mem, &global_mem,
                       "CL_DEVICE_GLOBAL_MEM_SIZE")) != CF_OK ||
      (s = device_info(st->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc,
                       "CL_DEVICE_MAX_MEM_ALLOC_SIZE")) != CF_OK ||
      (s = device_info(st->device, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE, sizeof cache, &cache,
                       "CL_DEVICE_GLOBAL_MEM_CACHE_SIZE")) != CF_OK ||
      (s = device_info(st->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus,
                       "CL_DEVICE_MAX_COMPUTE_UNITS")) != CF_OK ||
      (s = device_info(st->device, CL_DEVICE_ADDRESS_BITS, sizeof addr_bits, &addr_bits,
                       "CL_DEVICE_ADDRESS_BITS")) != CF_OK ||
      (s = device_info(st->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg,
                       "CL_DEVICE_MAX_WORK_GROUP_SIZE")) != CF_OK ||
      (s = device_info(st->device, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, sizeof dims, &dims,
                       "CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS")) != CF_OK)
    goto fail;
  if (dims > 8)
    dims = 8;
  if (dims < 2) {
    s = cf_error(CF_ERR_BACKEND_UNAVAILABLE,
                 "opencl: device '%s' supports %u work-item dimensions; convfuse needs 2",
                 sel.device_name, (unsigned)dims);
    goto fail;
  }
  if ((s = device_info(st->device, CL_DEVICE_MAX_WORK_ITEM_SIZES, dims * sizeof(size_t),
                       item_sizes, "CL_DEVICE_MAX_WORK_ITEM_SIZES")) != CF_OK)
    goto fail;
  device_string(st->device, CL_DEVICE_VENDOR, vendor, sizeof vendor);
  exts[0] = '\0';
  if (clGetDeviceInfo(st->device, CL_DEVICE_EXTENSIONS, sizeof exts, exts, NULL) != CL_SUCCESS)
    exts[0] = '\0';
  exts[sizeof exts - 1] = '\0';

  st->local_mem = local_mem;
  st->global_mem = global_mem;
  st->max_alloc = max_alloc;
  st->address_bits = addr_bits;
  st->max_wg = max_wg;
  st->max_item[0] = item_sizes[0];
  st->max_item[1] = item_sizes[1];
  st->is_nvidia = contains_ci(vendor, "nvidia") || contains_ci(sel.platform_name, "nvidia");

  st->compute_units = cus > INT_MAX ? INT_MAX : (int)cus;
  st->verbose = cf_env_verbose();
  int simd = 1;
  if (st->is_nvidia) {
    simd = 32;
    cl_uint major = 0, minor = 0;
    if (strstr(exts, "cl_nv_device_attribute_query") &&
        clGetDeviceInfo(st->device, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, sizeof major, &major,
                        NULL) == CL_SUCCESS &&
        clGetDeviceInfo(st->device, CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV, sizeof minor, &minor,
                        NULL) == CL_SUCCESS &&
        major < 100 && minor < 10)
      st->nv_cc = (int)(major * 10 + minor);
    st->nv_options = strstr(exts, "cl_nv_compiler_options") != NULL;
    cl_uint warp = 0;
    if (strstr(exts, "cl_nv_device_attribute_query") &&
        clGetDeviceInfo(st->device, CL_DEVICE_WARP_SIZE_NV, sizeof warp, &warp, NULL) ==
            CL_SUCCESS &&
        warp > 0)
      simd = (int)warp;
  }

  memset(caps, 0, sizeof *caps);
  caps->kind = (sel.type & CL_DEVICE_TYPE_GPU)   ? CF_DEVICE_GPU
               : (sel.type & CL_DEVICE_TYPE_CPU) ? CF_DEVICE_CPU
                                                 : CF_DEVICE_OTHER;
  caps->compute_units = cus > INT_MAX ? INT_MAX : (int)cus;
  caps->shared_mem_per_block = local_mem > SIZE_MAX ? SIZE_MAX : (size_t)local_mem;
  caps->shared_mem_per_block_max = caps->shared_mem_per_block;
  caps->max_threads_per_block = st->max_wg > INT_MAX ? INT_MAX : (int)st->max_wg;
  caps->simd_width = simd;
  caps->arch = st->nv_cc; /* 0 off NVIDIA */
  caps->has_tf32_mma = 0; /* set below, after the probe */
  caps->has_wgmma = 0;
  caps->l2_bytes = cache > SIZE_MAX ? SIZE_MAX : (size_t)cache;
  caps->global_mem_bytes = global_mem;
  caps->max_alloc_bytes = max_alloc;

  if (name && name_len > 0)
    snprintf(name, name_len, "%s (%s)", sel.device_name, sel.platform_name);

  /* Context and queue. */
  cl_int err = CL_SUCCESS;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)st->platform, 0};
  st->context = clCreateContext(props, 1, &st->device, NULL, NULL, &err);
  if (err != CL_SUCCESS || !st->context) {
    st->context = NULL;
    s = cl_fail(CF_ERR_BACKEND_UNAVAILABLE, "clCreateContext", err, sel.device_name);
    goto fail;
  }
  st->queue = clCreateCommandQueue(st->context, st->device, CL_QUEUE_PROFILING_ENABLE, &err);
  if (err != CL_SUCCESS || !st->queue) {
    st->queue = NULL;
    s = cl_fail(CF_ERR_BACKEND_UNAVAILABLE, "clCreateCommandQueue", err, sel.device_name);
    goto fail;
  }

  /* Tensor cores: decided by the probe, once per context; the vendor check only spares other
   * devices a program that cannot build there. */
  caps->kernel_variants = 1u << CF_KERNEL_FFMA_TILED;
  const int tensor_cores = cf_env_opencl_tensor_cores();
  if (tensor_cores == CF_ENV_TENSOR_CORES_OFF)
    snprintf(caps->tensor_core_note, sizeof caps->tensor_core_note,
             "tensor cores disabled by CONVFUSE_OPENCL_TENSOR_CORES=0");
  else if (tensor_cores == CF_ENV_TENSOR_CORES_EMULATE)
    enable_emulated_tensor_cores(st, caps);
  else if (!st->is_nvidia)
    snprintf(caps->tensor_core_note, sizeof caps->tensor_core_note,
             "not an NVIDIA device (OpenCL reaches tensor cores through NVIDIA's inline PTX)");
  else if (probe_tensor_cores(st, caps->tensor_core_note, sizeof caps->tensor_core_note,
                              st->verbose)) {
    st->tensor_cores = 1;
    caps->tensor_core_note[0] = '\0';
    st->mma_max_registers = cf_env_opencl_max_registers(-1);
    set_tensor_core_caps(caps, st->register_cap_ok && st->mma_max_registers != 0);
    /* sm_90a code runs on compute capability 9.0 alone */
    st->wgmma_ok = st->nv_cc == 90 && st->register_cap_ok;
  }
  cf_env_opencl_switches(&st->forced_switches);
  st->disk_cache = open_disk_cache(st);
  *state_out = st;
  return CF_OK;

fail:
  cl_destroy(st);
  return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Buffers                                                                                     */

static cf_status cl_buffer_alloc(void *state_, size_t bytes, void **mem) {
  cl_state *st = (cl_state *)state_;
  *mem = NULL;
  if (bytes == 0)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "opencl: buffer size must be > 0");
  if ((cl_ulong)bytes > st->max_alloc)
    return cf_error(CF_ERR_OUT_OF_MEMORY,
                    "opencl: cannot allocate %zu bytes: above the device's largest single "
                    "buffer (CL_DEVICE_MAX_MEM_ALLOC_SIZE = %llu bytes)",
                    bytes, (unsigned long long)st->max_alloc);
  cl_int err = CL_SUCCESS;
  cl_mem buf = clCreateBuffer(st->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
  char ctx[128];
  snprintf(ctx, sizeof ctx, "allocating %zu bytes", bytes);
  if (err != CL_SUCCESS || !buf)
    return cl_fail(cl_is_oom(err) ? CF_ERR_OUT_OF_MEMORY : CF_ERR_DEVICE, "clCreateBuffer", err,
                   ctx);
  /* OpenCL allocates lazily: touch the buffer now so that an allocation that cannot be
   * satisfied fails here rather than at first use. */
  const unsigned char zero = 0;
  err = clEnqueueWriteBuffer(st->queue, buf, CL_TRUE, 0, 1, &zero, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    clReleaseMemObject(buf);
    return cl_fail(cl_is_oom(err) ? CF_ERR_OUT_OF_MEMORY : CF_ERR_DEVICE,
                   "clEnqueueWriteBuffer", err, ctx);
  }
  *mem = buf;
  return CF_OK;
}

static void cl_buffer_free(void *state_, void *mem) {
  (void)state_;
  if (mem)
    clReleaseMemObject((cl_mem)mem);
}

static cf_status cl_buffer_write(void *state_, void *mem, size_t offset, const void *src,
                                 size_t bytes) {
  cl_state *st = (cl_state *)state_;
  if (bytes == 0)
    return CF_OK;
  cl_int err =
      clEnqueueWriteBuffer(st->queue, (cl_mem)mem, CL_TRUE, offset, bytes, src, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    char ctx[128];
    snprintf(ctx, sizeof ctx, "writing %zu bytes at offset %zu", bytes, offset);
    return cl_fail_op("clEnqueueWriteBuffer", err, ctx);
  }
  return CF_OK;
}

static cf_status cl_buffer_read(void *state_, void *mem, size_t offset, void *dst,
                                size_t bytes) {
  cl_state *st = (cl_state *)state_;
  if (bytes == 0)
    return cl_finish_checked(st);
  cl_int err =
      clEnqueueReadBuffer(st->queue, (cl_mem)mem, CL_TRUE, offset, bytes, dst, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    char ctx[128];
    snprintf(ctx, sizeof ctx, "reading %zu bytes at offset %zu", bytes, offset);
    return cl_fail_op("clEnqueueReadBuffer", err, ctx);
  }
  return CF_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Programs and kernels                                                                        */


/* CONVFUSE_VERBOSE=1: the log of a successful build too (warnings; on NVIDIA, with
 * -cl-nv-verbose, ptxas's register and spill counts, unless the driver's cache served it). */
static void print_build_log(cl_state *st, cl_program prog, const char *options) {
  size_t log_size = 0;
  if (clGetProgramBuildInfo(prog, st->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size) !=
          CL_SUCCESS ||
      log_size <= 1)
    return;
  char *log = (char *)malloc(log_size + 1);
  if (log && clGetProgramBuildInfo(prog, st->device, CL_PROGRAM_BUILD_LOG, log_size, log,
                                   NULL) == CL_SUCCESS) {
    log[log_size] = '\0';
    size_t n = strlen(log);
    while (n > 0 && isspace((unsigned char)log[n - 1]))
      log[--n] = '\0';
    if (n > 0)
      fprintf(stderr, "convfuse: opencl build log (options '%s'):\n%s\n", options, log);
  }
  free(log);
}

/* The error of a failed clBuildProgram, with (the start of) the build log: what a person
 * needs to see why the kernel did not compile. */
static cf_status build_failure(cl_state *st, cl_program prog, const char *options, cl_int err) {
  size_t log_size = 0;
  char *log = NULL;
  if (clGetProgramBuildInfo(prog, st->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size) ==
          CL_SUCCESS &&
      log_size > 0) {
    log = (char *)malloc(log_size + 1);
    if (log) {
      if (clGetProgramBuildInfo(prog, st->device, CL_PROGRAM_BUILD_LOG, log_size, log, NULL) !=
          CL_SUCCESS)
        log_size = 0;
      log[log_size] = '\0';
    }
  }
  const char *shown = log && *log ? log : "(empty)";
  int shown_len = (int)strlen(shown);
  int keep = shown_len > CF_CL_LOG_KEEP ? CF_CL_LOG_KEEP : shown_len;
  cf_status s = cf_error(cl_is_oom(err) ? CF_ERR_OUT_OF_MEMORY : CF_ERR_DEVICE,
                         "opencl: clBuildProgram failed: %s (%d); options '%s'; build log "
                         "(%d of %d characters):\n%.*s",
                         cl_error_name(err), (int)err, options, keep, shown_len, keep, shown);
  free(log);
  return s;
}

/* prog rebuilt from its own PTX (NVIDIA's program binaries are PTX text), edited: for sm_90a
 * (sm90a: the wgmma markers deleted, cf_ptx_for_sm90a) and / or with a register cap
 * (max_registers > 0, cf_ptx_with_max_registers). NULL where the driver gives no PTX or
 * refuses the edited text; `why` (may be NULL) then says what failed. */
static cl_program rebuild_from_ptx(cl_state *st, cl_context ctx, cl_program prog,
                                   const char *options, int max_registers, int sm90a,
                                   char *why, size_t why_len) {
  size_t size = 0;
  unsigned char *bin = NULL;
  char *ptx = NULL, *capped = NULL;
  cl_program out = NULL;
  const char *failed = NULL;
  cl_int err = CL_SUCCESS, bin_status = CL_SUCCESS;
  if ((err = clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL)) !=
          CL_SUCCESS ||
      size == 0)
    failed = "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)";
  else if (!(bin = (unsigned char *)malloc(size)))
    failed = "malloc";
  else {
    unsigned char *bins[1] = {bin};
    if ((err = clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL)) !=
        CL_SUCCESS)
      failed = "clGetProgramInfo(CL_PROGRAM_BINARIES)";
  }
  size_t len = size;
  const char *text = (const char *)bin;
  if (!failed && sm90a) {
    if (!(ptx = cf_ptx_for_sm90a(text, len, &len)))
      failed = "the binary is not PTX for sm_90 with wgmma markers";
    text = ptx;
  }
  if (!failed && max_registers > 0) {
    if (!(capped = cf_ptx_with_max_registers(text, len, max_registers, &len)))
      failed = "the binary is not PTX with entries to cap";
    text = capped;
  }
  if (!failed) {
    const unsigned char *ptxs[1] = {(const unsigned char *)text};
    out = clCreateProgramWithBinary(ctx, 1, &st->device, &len, ptxs, &bin_status, &err);
    if (err != CL_SUCCESS || !out || bin_status != CL_SUCCESS)
      failed = "clCreateProgramWithBinary";
    else if ((err = clBuildProgram(out, 1, &st->device, options, NULL, NULL)) != CL_SUCCESS)
      failed = "clBuildProgram";
  }
  if (failed && out) {
    clReleaseProgram(out);
    out = NULL;
  }
  if (failed && why)
    snprintf(why, why_len, "%s: %s (%d)", failed, cl_error_name(err), (int)err);
  if (st->verbose) {
    if (failed)
      fprintf(stderr, "convfuse: opencl: no rebuild from PTX (%sregister cap %d): %s: %s (%d)\n",
              sm90a ? "sm_90a, " : "", max_registers, failed, cl_error_name(err), (int)err);
    else
      print_build_log(st, out, options);
  }
  free(capped);
  free(ptx);
  free(bin);
  return out;
}

/* prog rebuilt from its own PTX with ptxas's register cap max_registers, or NULL where the
 * driver gives no binary or refuses the edited one: the caller keeps prog, uncapped, and
 * CONVFUSE_VERBOSE=1 says why. */
static cl_program rebuild_with_max_registers(cl_state *st, cl_context ctx, cl_program prog,
                                             const char *options, int max_registers) {
  return rebuild_from_ptx(st, ctx, prog, options, max_registers, 0, NULL, 0);
}

/* The wgmma program (its options say so) holds its wgmma instructions as PTX comments until
 * rebuilt for sm_90a: built as it is, it would compute garbage. */
static int options_need_sm90a(const char *options) {
  return strstr(options, "-DCF_WGMMA_KERNEL=1") != NULL &&
         strstr(options, "-DCFW_EMULATE=1") == NULL;
}

/* Builds the program of `options` from the embedded source; max_registers > 0: then rebuilds
 * it with that register cap where the driver takes it (rebuild_with_max_registers). The wgmma
 * program is rebuilt for sm_90a (and capped) or not at all: an error. */
static cf_status program_from_source(cl_state *st, const char *options, int max_registers,
                                     cl_program *out) {
  cl_int err = CL_SUCCESS;
  const char *src = cf_cl_program_source;
  size_t src_len = cf_cl_program_source_len;
  cl_program prog = clCreateProgramWithSource(st->context, 1, &src, &src_len, &err);
  if (err != CL_SUCCESS || !prog)
    return cl_fail_op("clCreateProgramWithSource", err, NULL);
  err = clBuildProgram(prog, 1, &st->device, options, NULL, NULL);
  if (err != CL_SUCCESS) {
    cf_status s = build_failure(st, prog, options, err);
    clReleaseProgram(prog);
    return s;
  }
  if (st->verbose)
    print_build_log(st, prog, options);
  if (options_need_sm90a(options)) {
    char why[160] = "";
    cl_program patched = rebuild_from_ptx(st, st->context, prog, options, max_registers, 1, why,
                                          sizeof why);
    clReleaseProgram(prog);
    if (!patched)
      return cf_error(CF_ERR_UNSUPPORTED,
                      "opencl: the wgmma program could not be rebuilt for sm_90a: %s", why);
    *out = patched;
    return CF_OK;
  }
  cl_program capped = max_registers > 0
                          ? rebuild_with_max_registers(st, st->context, prog, options,
                                                       max_registers)
                          : NULL;
  if (capped) {
    clReleaseProgram(prog);
    prog = capped;
  }
  *out = prog;
  return CF_OK;
}

/* "call: NAME (code)", the reason a cache line gives. */
static void cl_why(char *why, size_t len, const char *call, cl_int err) {
  snprintf(why, len, "%s: %s (%d)", call, cl_error_name(err), (int)err);
}

/* The program of `options` from the on-disk cache, built for this device; NULL on a miss.
 * A binary the driver refuses (one from a driver that reports the same version, a corrupt
 * file whose checksum still matches) is a miss too: the caller builds from source, and the
 * store after that build replaces the file. */
static cl_program program_from_disk(cl_state *st, const char *options) {
  unsigned char *bin = NULL;
  size_t size = 0;
  if (!cf_pcache_load(st->disk_cache, options, &bin, &size))
    return NULL;
  const unsigned char *bins[1] = {bin};
  cl_int bin_status = CL_INVALID_BINARY, err = CL_SUCCESS;
  char why[160] = "";
  cl_program prog =
      clCreateProgramWithBinary(st->context, 1, &st->device, &size, bins, &bin_status, &err);
  if (err != CL_SUCCESS || !prog)
    cl_why(why, sizeof why, "clCreateProgramWithBinary", err);
  else if (bin_status != CL_SUCCESS)
    cl_why(why, sizeof why, "clCreateProgramWithBinary (binary status)", bin_status);
  /* the same options as a source build: the build of a binary links and finalises it */
  else if ((err = clBuildProgram(prog, 1, &st->device, options, NULL, NULL)) != CL_SUCCESS)
    cl_why(why, sizeof why, "clBuildProgram", err);
  free(bin);
  if (why[0]) {
    cf_pcache_rejected(st->disk_cache, options, why);
    if (prog)
      clReleaseProgram(prog);
    return NULL;
  }
  if (st->verbose)
    print_build_log(st, prog, options);
  return prog;
}

/* Stores a freshly built program's binary (one device) for the next process. Nothing here
 * fails the plan: a binary the driver cannot give is a miss next time (CONVFUSE_VERBOSE=1
 * says why). */
static void store_program_binary(cl_state *st, const char *options, cl_program prog) {
  if (!st->disk_cache)
    return;
  cl_uint n_devices = 0;
  size_t size = 0;
  unsigned char *bin = NULL;
  char why[160] = "";
  cl_int err =
      clGetProgramInfo(prog, CL_PROGRAM_NUM_DEVICES, sizeof n_devices, &n_devices, NULL);
  if (err != CL_SUCCESS)
    cl_why(why, sizeof why, "clGetProgramInfo(CL_PROGRAM_NUM_DEVICES)", err);
  else if (n_devices != 1)
    snprintf(why, sizeof why, "a program of %u devices (the cache holds one)",
             (unsigned)n_devices);
  else if ((err = clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size,
                                   NULL)) != CL_SUCCESS)
    cl_why(why, sizeof why, "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)", err);
  else if (size == 0)
    snprintf(why, sizeof why, "the driver gives no binary (0 bytes)");
  else if (!(bin = (unsigned char *)malloc(size)))
    snprintf(why, sizeof why, "out of host memory for a binary of %zu bytes", size);
  else {
    unsigned char *bins[1] = {bin};
    err = clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL);
    if (err != CL_SUCCESS)
      cl_why(why, sizeof why, "clGetProgramInfo(CL_PROGRAM_BINARIES)", err);
  }
  if (why[0])
    cf_pcache_store_failed(st->disk_cache, options, why);
  else
    cf_pcache_store(st->disk_cache, options, bin, size);
  free(bin);
}

/* The program of this option string (which must name max_registers: it is the key): from the
 * context's own cache, else from the on-disk cache, else built from source (and then stored on
 * disk for the next process). */
static cf_status get_program(cl_state *st, const char *options, int max_registers,
                             cl_program *out) {
  for (int i = 0; i < st->n_programs; ++i) {
    if (strcmp(st->programs[i].options, options) == 0) {
      *out = st->programs[i].program;
      return CF_OK;
    }
  }
  if (st->n_programs == st->cap_programs) {
    int cap = st->cap_programs ? st->cap_programs * 2 : 8;
    cl_program_entry *grown =
        (cl_program_entry *)realloc(st->programs, (size_t)cap * sizeof *grown);
    if (!grown)
      return cf_error(CF_ERR_OUT_OF_MEMORY, "opencl: out of host memory for the program cache");
    st->programs = grown;
    st->cap_programs = cap;
  }
  size_t opt_len = strlen(options);
  char *key = (char *)malloc(opt_len + 1);
  if (!key)
    return cf_error(CF_ERR_OUT_OF_MEMORY, "opencl: out of host memory for the program cache");
  memcpy(key, options, opt_len + 1);

  cl_program prog = program_from_disk(st, options);
  if (!prog) {
    cf_status s = program_from_source(st, options, max_registers, &prog);
    if (s != CF_OK) {
      free(key);
      return s;
    }
    store_program_binary(st, options, prog);
  }
  st->programs[st->n_programs].options = key;
  st->programs[st->n_programs].program = prog;
  st->n_programs++;
  *out = prog;
  return CF_OK;
}

static int fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* The scalar epilogue arguments every kernel takes from index `first` on: the folded shift,
 * then CF_MAX_OPS op values (unused ones 0). */
static cl_int set_epilogue_args(cl_kernel kernel, cl_uint first, const cf_epilogue *epi) {
  cl_float shift = epi->bias_shift;
  cl_int err = clSetKernelArg(kernel, first, sizeof(cl_float), &shift);
  for (cl_uint i = 0; err == CL_SUCCESS && i < CF_MAX_OPS; ++i) {
    cl_float v = (int)i < epi->n_ops ? epi->ops[i].value : 0.0f;
    err = clSetKernelArg(kernel, first + 1 + i, sizeof(cl_float), &v);
  }
  return err;
}

/* Builds (or fetches from the cache) the program of `options`, creates kernel `name`, and
 * checks that the compiled kernel takes work-groups of `threads` and fits local memory. */
static cf_status create_fitting_kernel(cl_state *st, const char *options, int max_registers,
                                       const char *name, int threads, cl_kernel *out) {
  cl_program prog = NULL;
  CF_CHECK(get_program(st, options, max_registers, &prog));
  cl_int err = CL_SUCCESS;
  cl_kernel kernel = clCreateKernel(prog, name, &err);
  if (err != CL_SUCCESS || !kernel)
    return cl_fail_op("clCreateKernel", err, name);
  size_t kernel_wg = 0;
  cl_ulong kernel_local = 0;
  err = clGetKernelWorkGroupInfo(kernel, st->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kernel_wg,
                                 &kernel_wg, NULL);
  if (err == CL_SUCCESS)
    err = clGetKernelWorkGroupInfo(kernel, st->device, CL_KERNEL_LOCAL_MEM_SIZE,
                                   sizeof kernel_local, &kernel_local, NULL);
  cf_status s = CF_OK;
  if (err != CL_SUCCESS)
    s = cl_fail(CF_ERR_DEVICE, "clGetKernelWorkGroupInfo", err, name);
  else if ((size_t)threads > kernel_wg || kernel_local > st->local_mem)
    s = cf_error(CF_ERR_UNSUPPORTED,
                 "opencl: the compiled kernel %s allows work-groups of at most %zu work-items "
                 "(registers) and uses %llu bytes of local memory; the tile needs %d "
                 "work-items and the device has %llu bytes (options '%s')",
                 name, kernel_wg, (unsigned long long)kernel_local, threads,
                 (unsigned long long)st->local_mem, options);
  if (s != CF_OK) {
    clReleaseKernel(kernel);
    return s;
  }
  *out = kernel;
  return CF_OK;
}


/* The kernel's int arithmetic: extents, the coordinates it forms, the counters it advances. */
static cf_status check_int_ranges(const cf_conv_shape *sh, const cf_tile_plan *t) {
  const int64_t ext[] = {sh->n, sh->c, sh->h, sh->w, sh->k, sh->r, sh->s, sh->p, sh->q,
                         sh->stride_h, sh->stride_w, sh->pad_h, sh->pad_w, sh->dil_h, sh->dil_w};
  for (size_t i = 0; i < sizeof ext / sizeof ext[0]; ++i)
    if (!fits_int(ext[i]))
      return cf_error(CF_ERR_UNSUPPORTED,
                      "opencl: an extent of the convolution exceeds the kernel's int range "
                      "(%lld > %d)",
                      (long long)ext[i], INT_MAX);
  /* h = p*stride - pad + r*dil lies in [-pad, (P-1)*stride + (R-1)*dil - pad]. */
  int64_t hmax = (sh->p - 1) * sh->stride_h + (sh->r - 1) * sh->dil_h;
  int64_t wmax = (sh->q - 1) * sh->stride_w + (sh->s - 1) * sh->dil_w;
  if (!fits_int(hmax) || !fits_int(wmax))
    return cf_error(CF_ERR_UNSUPPORTED,
                    "opencl: input coordinates of this convolution exceed the kernel's int "
                    "range (rows up to %lld, columns up to %lld; limit %d)",
                    (long long)hmax, (long long)wmax, INT_MAX);
  if (!fits_int(sh->c + t->block_k + 1) || !fits_int(sh->k + t->block_n))
    return cf_error(CF_ERR_UNSUPPORTED,
                    "opencl: channel counts too large for the kernel's int counters "
                    "(in %lld, out %lld)",
                    (long long)sh->c, (long long)sh->k);
  return CF_OK;
}


/* ------------------------------------------------------------------------------------------ */
/* Tensor-core plans (kernels_cl/conv2d_mma.cl)                                                */

/* A switch forced by CONVFUSE_OPENCL_SWITCHES that plan t's program cannot take keeps its
 * default; whoever set it for an A/B run is told, or the run compares a program with itself. */
static void warn_refused_switches(unsigned refused, const cf_tile_plan *t) {
  for (int i = 0; i < CF_CL_SWITCHES; ++i)
    if (refused >> i & 1u)
      fprintf(stderr,
              "convfuse: CONVFUSE_OPENCL_SWITCHES: %s cannot be forced for tensor-core tile T%d "
              "of this problem; it keeps its default\n",
              cf_cl_switch_names[i], t->menu_index);
}

/* The register cap of a tensor-core program: none where the probe did not prove the route or
 * CONVFUSE_OPENCL_MAX_REGISTERS=0, its value where set, else the measured defaults. */
static int mma_register_cap(const cl_state *st, cf_cl_tuning tuning, int split, int f16,
                            int resident, int threads, int tall) {
  if (!st->register_cap_ok || st->mma_max_registers == 0)
    return 0;
  if (st->mma_max_registers > 0)
    return st->mma_max_registers;
  if (split && cf_cl_h100_defaults_apply(tuning, resident))
    return f16 ? MMA_MAX_REGISTERS_H100_PAIRS_RESIDENT : MMA_MAX_REGISTERS_H100_SPLIT_RESIDENT;
  if (tall)
    return threads <= 128 ? MMA_MAX_REGISTERS_TALL : MMA_MAX_REGISTERS;
  return !split && resident && threads <= 128 ? MMA_MAX_REGISTERS_TF32_RESIDENT
                                              : MMA_MAX_REGISTERS;
}

/* The emulated programs (CONVFUSE_OPENCL_TENSOR_CORES=emulate: PoCL in the tests) are built
 * unoptimized. They check the kernels' source, not their speed, and PoCL's optimizer took
 * ~40-60 s per program and computed the wgmma program's emulated sums as zero once a k-step had
 * two products (bench/NOTES.md v70); unoptimized they are right and build in ~1 s. */
#define EMULATED_OPT "-cl-opt-disable"

/* Appends this context's own options to a tensor-core program's (the key of the program
 * cache): where the tensor cores are emulated, emulate_defines (the program's no-PTX switches)
 * and EMULATED_OPT; on NVIDIA with CONVFUSE_VERBOSE, -cl-nv-verbose (ptxas's counts in the
 * build log; no register cap here: NVIDIA's OpenCL accepted -cl-nv-maxrregcount=128 and still
 * used up to 201 registers, measured on an H200). 0 if they do not fit in len bytes. */
static int append_context_options(const cl_state *st, const char *emulate_defines, char *options,
                                  size_t len) {
  const size_t used = strlen(options);
  const int n = snprintf(options + used, len - used, "%s%s%s%s",
                         st->emulate_mma ? emulate_defines : "",
                         st->emulate_mma ? " " EMULATED_OPT : "",
                         st->nv_options && st->verbose ? " " : "",
                         st->nv_options && st->verbose ? "-cl-nv-verbose" : "");
  return n >= 0 && (size_t)n < len - used;
}

/* The tensor-core program's build options: the layout and the switches (build_options.c), then
 * this context's own. */
static cf_status mma_options(const cl_state *st, const cf_plan_spec *spec, int max_registers,
                             const int switches[CF_CL_SWITCHES], char *options, size_t len) {
  if (!cf_cl_mma_options(&spec->shape, &spec->tiles, &spec->epilogue, st->asm_kw, max_registers,
                         switches, options, len) ||
      !append_context_options(st, " -DCFM_EMULATE=1", options, len))
    return cf_error(CF_ERR_INTERNAL, "opencl: build options do not fit in %zu bytes", len);
  return CF_OK;
}

/* cf_conv2d_mma's arguments from 4 on, set once: 4..16 ints, 17..20 the row-tile splitter's
 * divisors (common/fastdiv.h: by q_tiles, then by P), 21 bias_shift, 22..29 op values, 30
 * unscale and 31 range_guard (NULL where the plan has no fp16 range guard). */
static cl_int mma_set_scalar_args(cl_kernel kernel, const cf_conv_shape *sh,
                                  const cf_tile_plan *t, const cf_epilogue *epi,
                                  cl_mem unscale, cl_mem guard) {
  enum { N_INTS = 13, N_DIVS = 4, FIRST_EPI = 4 + N_INTS + N_DIVS,
         UNSCALE = FIRST_EPI + 1 + CF_MAX_OPS };
  const cf_mma_layout L = cf_plan_mma_layout(sh, t);
  const int64_t q_tiles = (sh->q + t->block_m - 1) / t->block_m;
  const cl_int ints[N_INTS] = {(cl_int)sh->c,      (cl_int)sh->h,        (cl_int)sh->w,
                               (cl_int)sh->k,      (cl_int)sh->p,        (cl_int)sh->q,
                               (cl_int)sh->stride_h, (cl_int)sh->pad_h,  (cl_int)sh->pad_w,
                               (cl_int)sh->dil_h,  (cl_int)L.n_chunks,   (cl_int)q_tiles,
                               (cl_int)t->grid_m};
  const cf_fastdiv by_q_tiles = cf_fastdiv_make((int32_t)q_tiles);
  const cf_fastdiv by_p = cf_fastdiv_make((int32_t)sh->p);
  const cl_uint divs[N_DIVS] = {by_q_tiles.mul, by_q_tiles.shift, by_p.mul, by_p.shift};
  cl_int err = CL_SUCCESS;
  for (cl_uint i = 0; err == CL_SUCCESS && i < N_INTS; ++i)
    err = clSetKernelArg(kernel, 4 + i, sizeof(cl_int), &ints[i]);
  for (cl_uint i = 0; err == CL_SUCCESS && i < N_DIVS; ++i)
    err = clSetKernelArg(kernel, 4 + N_INTS + i, sizeof(cl_uint), &divs[i]);
  if (err == CL_SUCCESS)
    err = set_epilogue_args(kernel, FIRST_EPI, epi);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(kernel, UNSCALE, sizeof(cl_mem), &unscale);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(kernel, UNSCALE + 1, sizeof(cl_mem), &guard);
  return err;
}

static void f16_guard_free(cl_f16_guard *g) {
  if (!g)
    return;
  if (g->scale)
    clReleaseKernel(g->scale);
  if (g->rerun)
    clReleaseKernel(g->rerun);
  cl_mem bufs[3] = {g->scaled, g->unscale, g->guard};
  for (int i = 0; i < 3; ++i)
    if (bufs[i])
      clReleaseMemObject(bufs[i]);
  free(g);
}

static cf_status f16_buffer(cl_state *st, size_t bytes, const char *what, cl_mem *out) {
  if ((cl_ulong)bytes > st->max_alloc)
    return cf_error(CF_ERR_OUT_OF_MEMORY,
                    "opencl: the fp16 plan's %s (%zu bytes) is above the device's largest "
                    "buffer (%llu bytes)",
                    what, bytes, (unsigned long long)st->max_alloc);
  cl_int err = CL_SUCCESS;
  *out = clCreateBuffer(st->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
  if (err != CL_SUCCESS || !*out) {
    *out = NULL;
    char ctx[96];
    snprintf(ctx, sizeof ctx, "the fp16 plan's %s, %zu bytes", what, bytes);
    return cl_fail(cl_is_oom(err) ? CF_ERR_OUT_OF_MEMORY : CF_ERR_DEVICE, "clCreateBuffer",
                   err, ctx);
  }
  return CF_OK;
}

/* work-items of cf_f16_scale_weights (conv2d_mma.cl's CFM_SCALE_THREADS): one group per
 * output channel */
#define F16_SCALE_THREADS 64

/* The rerun of a plan guarded by fp16's range (an fp16 or a wgmma plan): the plan's own TF32 /
 * 3xTF32 program built with rerun_switches (fp16 off) and CFM_RERUN, which returns at once
 * unless the guard is set. */
static cf_status rerun_kernel_make(cl_state *st, const cf_plan_spec *spec, int max_registers,
                                   const int rerun_switches[CF_CL_SWITCHES], int threads,
                                   cl_kernel *out) {
  char options[1024];
  CF_CHECK(mma_options(st, spec, max_registers, rerun_switches, options, sizeof options));
  if (!cf_cl_mma_options_as_rerun(options, sizeof options))
    return cf_error(CF_ERR_INTERNAL, "opencl: the rerun's build options exceed %zu bytes",
                    sizeof options);
  return create_fitting_kernel(st, options, max_registers, "cf_conv2d_mma", threads, out);
}

/* Persistent work-groups launched per compute unit. OpenCL has no occupancy query, and the
 * registers NVIDIA's compiler gives a kernel (124-201 for these, measured) are not reliably
 * known here (the build log that reports them is empty when the driver's cache serves the
 * build): so the grid over-subscribes by a count that 1..6 groups per SM divide evenly, and
 * the hardware runs it in whole waves. (Sizing it from an assumed 128 registers cost 25%:
 * mish-mish tf32 19.9 vs 15.6 ms on T2, H200.) 60 is also near the best count measured for
 * the fp32 pairs, the program with three groups per SM: sub-sub-mish fp32 on an H100 2.00 ms
 * at 3 groups per CU (persistent), 1.86 at 12, 1.69 at 30, 1.62 at 42, 1.36-1.39 at 60 and 84,
 * 1.41 at 120, 1.55 at 240, 2.52 at one tile per group; sub-sub-mish tf32 on the mma.sync
 * program alike (bench/NOTES.md v94). A build may set it (-DMMA_GROUPS_PER_CU=) to re-measure. */
#ifndef MMA_GROUPS_PER_CU
#define MMA_GROUPS_PER_CU 60
#endif

/* An fp16 plan's rerun returns at once unless the guard tripped, but each of its groups is
 * still launched, one wave of resident groups after another: at MMA_GROUPS_PER_CU that is ~20
 * waves of empty groups on every call, RERUN_GROUPS_PER_CU a few. H100, with the guard cleared
 * by the scaling kernel (bench/NOTES.md v98): sub-sub-mish fp32 1.37-1.39 -> 1.34-1.35 ms, tf32
 * 1.11-1.13 -> 1.105-1.11, mish-mish unchanged, 3 and 12 alike; a rerun that does run (inputs
 * past fp16's range) costs sub-sub-mish fp32 3.46 ms at 60, 3.45-3.48 at 12, 3.50-3.52 at 3. */
#ifndef RERUN_GROUPS_PER_CU
#define RERUN_GROUPS_PER_CU 12
#endif

/* A tensor-core program's launch: groups_per_cu persistent groups per compute unit, spread
 * over the channel tiles, never more than there are row tiles. */
static void persistent_geometry(const cl_state *st, const cf_tile_plan *t, int threads,
                                int groups_per_cu, size_t global[2], size_t local[2]) {
  int64_t groups_m = (int64_t)st->compute_units * groups_per_cu / t->grid_n;
  if (groups_m < 1)
    groups_m = 1;
  if (groups_m > t->grid_m)
    groups_m = t->grid_m;
  local[0] = (size_t)threads;
  local[1] = 1;
  global[0] = (size_t)groups_m * (size_t)threads;
  global[1] = (size_t)t->grid_n;
}

/* The mma.sync plan's own launch */
static void mma_geometry(const cl_state *st, const cf_tile_plan *t, int threads,
                         size_t global[2], size_t local[2]) {
  persistent_geometry(st, t, threads, MMA_GROUPS_PER_CU, global, local);
}

/* An fp16 plan's rerun (see RERUN_GROUPS_PER_CU) */
static void rerun_geometry(const cl_state *st, const cf_tile_plan *t, int threads,
                           size_t global[2], size_t local[2]) {
  persistent_geometry(st, t, threads, RERUN_GROUPS_PER_CU, global, local);
}

/* An fp16 plan's companions (cl_f16_guard): fp16_kernel's program also holds the weight
 * scaling kernel; rerun_switches are the plan's without fp16, built with CFM_RERUN (a program
 * of its own: plain plans leave the guard's test out). */
static cf_status f16_guard_make(cl_state *st, const cf_plan_spec *spec, cl_kernel fp16_kernel,
                                int max_registers, const int rerun_switches[CF_CL_SWITCHES],
                                int threads, cl_f16_guard **out) {
  const cf_conv_shape *sh = &spec->shape;
  *out = NULL;
  cl_f16_guard *g = (cl_f16_guard *)calloc(1, sizeof *g);
  if (!g)
    return cf_error(CF_ERR_OUT_OF_MEMORY, "opencl: out of host memory (%zu bytes)", sizeof *g);
  cf_status s = CF_OK;
  cl_program prog = NULL;
  cl_int err = clGetKernelInfo(fp16_kernel, CL_KERNEL_PROGRAM, sizeof prog, &prog, NULL);
  if (err == CL_SUCCESS)
    g->scale = clCreateKernel(prog, "cf_f16_scale_weights", &err);
  if (err != CL_SUCCESS || !g->scale) {
    g->scale = NULL;
    s = cl_fail_op("clCreateKernel", err, "cf_f16_scale_weights");
    goto fail;
  }
  s = rerun_kernel_make(st, spec, max_registers, rerun_switches, threads, &g->rerun);
  if (s != CF_OK)
    goto fail;
  rerun_geometry(st, &spec->tiles, threads, g->rerun_global, g->rerun_local);
  /* the weights packed as fp16 words, per channel n_chunks rows of KCP (conv2d_mma.cl) */
  const cf_mma_layout L = cf_plan_mma_layout(sh, &spec->tiles);
  const size_t words = (size_t)sh->k * (size_t)L.n_chunks * (size_t)L.kcp;
  s = f16_buffer(st, words * sizeof(cl_uint), "packed weights", &g->scaled);
  if (s == CF_OK)
    s = f16_buffer(st, (size_t)sh->k * sizeof(float), "channel scales", &g->unscale);
  if (s == CF_OK)
    s = f16_buffer(st, sizeof(cl_uint), "range guard", &g->guard);
  if (s != CF_OK)
    goto fail;
  const cl_int crs = (cl_int)sh->gemm_k, n_chunks = (cl_int)L.n_chunks;
  err = clSetKernelArg(g->scale, 1, sizeof(cl_mem), &g->scaled);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(g->scale, 2, sizeof(cl_mem), &g->unscale);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(g->scale, 3, sizeof(cl_int), &crs);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(g->scale, 4, sizeof(cl_int), &n_chunks);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(g->scale, 5, sizeof(cl_mem), &g->guard);
  if (err != CL_SUCCESS) {
    s = cl_fail(CF_ERR_INTERNAL, "clSetKernelArg", err, "cf_f16_scale_weights");
    goto fail;
  }
  g->scale_local = F16_SCALE_THREADS;
  g->scale_global = (size_t)sh->k * F16_SCALE_THREADS;
  *out = g;
  return CF_OK;
fail:
  f16_guard_free(g);
  return s;
}

#define PAIRS_DETAIL "fp16 pairs (switch f16: weights scaled and packed per call, inputs x 2^6)"
#define ALIGNED_PAIRS_DETAIL PAIRS_DETAIL " with sector-aligned stores"
#define ROLLED_LDSM_DETAIL "the k-loop rolled, B by ldmatrix"
#define GUARD_3XTF32_DETAIL "range guard with a 3xTF32 rerun"
/* a register cap's macro as a detail's text */
#define CF_CL_STR_(x) #x
#define CF_CL_STR(x) CF_CL_STR_(x)

/* What cf_plan_describe adds for a tensor-core program (NULL: nothing): fp16 and its range
 * guard, the sector-aligned stores of resident pairs, the H100's defaults where they were not
 * forced otherwise (sw as built, f16 cleared for the rerun). */
static const char *mma_plan_detail(int split, int resident, int f16, cf_cl_tuning tuning,
                                   const int sw[CF_CL_SWITCHES], int max_registers) {
  const int h100 = cf_cl_h100_defaults_apply(tuning, resident) &&
                   (split ? !sw[CF_CL_SWITCH_K_UNROLLED] : !sw[CF_CL_SWITCH_OFF32]);
  const int h100_cap = max_registers == MMA_MAX_REGISTERS_H100_SPLIT_RESIDENT;
  if (f16 && split && resident && sw[CF_CL_SWITCH_ALIGNED_STORES]) {
    const int rolled_ldsm = !sw[CF_CL_SWITCH_K_UNROLLED] && sw[CF_CL_SWITCH_LDSM];
    if (h100 && rolled_ldsm && sw[CF_CL_SWITCH_OFF32] &&
        max_registers == MMA_MAX_REGISTERS_H100_PAIRS_RESIDENT)
      return H100_DETAIL ALIGNED_PAIRS_DETAIL ", " ROLLED_LDSM_DETAIL ", 32-bit offsets, "
          CF_CL_STR(MMA_MAX_REGISTERS_H100_PAIRS_RESIDENT) " registers; " GUARD_3XTF32_DETAIL;
    if (rolled_ldsm && sw[CF_CL_SWITCH_OFF32])
      return "opencl: " ALIGNED_PAIRS_DETAIL ", " ROLLED_LDSM_DETAIL
             ", 32-bit offsets; " GUARD_3XTF32_DETAIL;
    return "opencl: " ALIGNED_PAIRS_DETAIL ", " GUARD_3XTF32_DETAIL;
  }
  if (f16)
    return split ? "opencl: " PAIRS_DETAIL ", " GUARD_3XTF32_DETAIL
                 : "opencl: one fp16 product (switch f16: weights scaled and packed per call), "
                   "range guard with a TF32 rerun";
  if (!h100)
    return NULL;
  if (!split)
    return H100_DETAIL "64-bit offsets";
  return h100_cap ? H100_DETAIL ROLLED_LDSM_DETAIL
                        ", " CF_CL_STR(MMA_MAX_REGISTERS_H100_SPLIT_RESIDENT) " registers"
                  : H100_DETAIL ROLLED_LDSM_DETAIL;
}

/* The wgmma program (kernels_cl/conv2d_wgmma.cl): 256 work-items, two groups per SM at 128
 * registers (NVIDIA's compiler gave its prototype 128 uncapped, bench/NOTES.md v69); the layout
 * kernel's work-group (conv2d_wgmma.cl's CFW_LAYOUT_THREADS). */
#define WGMMA_THREADS 256
#define WGMMA_MAX_REGISTERS 128
#define WGMMA_LAYOUT_THREADS 64

/* Persistent groups per compute unit of the wgmma program with resident weights (two are
 * resident per SM at 128 registers; their tiles come from a counter, so a group launched
 * beyond those takes what is left when it starts: 2, 4 and 8 measured alike, bench/NOTES.md
 * v99). A build may set it (-DWGMMA_GROUPS_PER_CU=) to re-measure. */
#ifndef WGMMA_GROUPS_PER_CU
#define WGMMA_GROUPS_PER_CU 2
#endif

/* The wgmma program's launch: a group per tile and channel tile, or with resident weights a
 * multiple of k_tiles persistent groups, no more than the tiles. The emulation runs two per
 * channel tile on any device, so that the tests' small shapes take the loop over tiles. */
static long long wgmma_launch_groups(const cl_state *st, const cf_cl_wgmma_geometry *g) {
  if (!g->resident)
    return g->groups;
  const long long tiles = g->groups / g->k_tiles;
  long long per_channel_tile =
      st->emulate_mma ? 2 : (long long)st->compute_units * WGMMA_GROUPS_PER_CU / g->k_tiles;
  if (per_channel_tile < 1)
    per_channel_tile = 1;
  if (per_channel_tile > tiles)
    per_channel_tile = tiles;
  return per_channel_tile * g->k_tiles;
}

/* cf_wgmma_lay_out_weights' arguments but the weights (0): where it writes them, the channels'
 * unscale factors, C, R, the chunk count and the range guard it clears (with its tile counters,
 * where the weights are resident). */
static cl_int set_layout_args(cl_kernel layout, cl_mem laid, cl_mem unscale, cl_int c, cl_int r,
                              cl_int n_chunks, cl_mem guard) {
  cl_int err = clSetKernelArg(layout, 1, sizeof(cl_mem), &laid);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(layout, 2, sizeof(cl_mem), &unscale);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(layout, 3, sizeof(cl_int), &c);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(layout, 4, sizeof(cl_int), &r);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(layout, 5, sizeof(cl_int), &n_chunks);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(layout, 6, sizeof(cl_mem), &guard);
  return err;
}

/* cf_conv2d_wgmma's arguments from 4 on, set once: bias_shift and the op values, then unscale,
 * range_guard and the batch. */
static cl_int wgmma_set_scalar_args(cl_kernel kernel, const cf_epilogue *epi, cl_mem unscale,
                                    cl_mem guard, cl_int batch) {
  cl_int err = set_epilogue_args(kernel, 4, epi);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(kernel, 5 + CF_MAX_OPS, sizeof(cl_mem), &unscale);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(kernel, 6 + CF_MAX_OPS, sizeof(cl_mem), &guard);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(kernel, 7 + CF_MAX_OPS, sizeof(cl_int), &batch);
  return err;
}

/* The wgmma program's build options (build_options.c), then this context's own (its emulation
 * also emulates the SFU mish it shares with conv2d_mma.cl). 0 if they do not fit. */
static int wgmma_options(const cl_state *st, const cf_conv_shape *sh,
                         const cf_cl_wgmma_geometry *g, const cf_epilogue *epi,
                         int max_registers, char *options, size_t len) {
  return cf_cl_wgmma_options(sh, g, epi, st->asm_kw, max_registers, options, len) &&
         append_context_options(st, " -DCFW_EMULATE=1 -DCFM_EMULATE=1", options, len);
}

/* A wgmma plan: the wgmma kernel on weights laid out per call (cf_wgmma_lay_out_weights), its
 * range guard, and the plan's own mma.sync program (rerun_kernel_make with rerun_switches) as
 * the rerun, on its own geometry. The cl_f16_guard carries the three as for an fp16 plan. */
static cf_status wgmma_plan_compile(cl_state *st, const cf_plan_spec *spec,
                                    const cf_cl_wgmma_geometry *g,
                                    const int rerun_switches[CF_CL_SWITCHES],
                                    int rerun_max_registers, int rerun_threads,
                                    void **compiled) {
  const cf_conv_shape *sh = &spec->shape;
  const cf_tile_plan *t = &spec->tiles;
  const cf_epilogue *epi = &spec->epilogue;
  const uint64_t size_limit = st->address_bits == 32 ? UINT32_MAX : (uint64_t)SIZE_MAX;
  if ((uint64_t)g->groups > size_limit / WGMMA_THREADS || (size_t)WGMMA_THREADS > st->max_wg)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "opencl: the wgmma program's launch (%lld groups of %d) is beyond the "
                    "device's limits",
                    g->groups, WGMMA_THREADS);
  /* CONVFUSE_OPENCL_MAX_REGISTERS applies here too (0: none) */
  const int max_registers = st->mma_max_registers >= 0 ? st->mma_max_registers : WGMMA_MAX_REGISTERS;
  char options[1024];
  if (!wgmma_options(st, sh, g, epi, max_registers, options, sizeof options))
    return cf_error(CF_ERR_INTERNAL, "opencl: build options do not fit in %zu bytes",
                    sizeof options);
  cl_kernel kernel = NULL;
  CF_CHECK(create_fitting_kernel(st, options, max_registers, "cf_conv2d_wgmma", WGMMA_THREADS,
                                 &kernel));
  cf_status s = CF_OK;
  cl_int err = CL_SUCCESS;
  cl_f16_guard *guard = (cl_f16_guard *)calloc(1, sizeof *guard);
  if (!guard) {
    s = cf_error(CF_ERR_OUT_OF_MEMORY, "opencl: out of host memory (%zu bytes)", sizeof *guard);
    goto fail;
  }
  cl_program prog = NULL;
  err = clGetKernelInfo(kernel, CL_KERNEL_PROGRAM, sizeof prog, &prog, NULL);
  if (err == CL_SUCCESS)
    guard->scale = clCreateKernel(prog, "cf_wgmma_lay_out_weights", &err);
  if (err != CL_SUCCESS || !guard->scale) {
    guard->scale = NULL;
    s = cl_fail_op("clCreateKernel", err, "cf_wgmma_lay_out_weights");
    goto fail;
  }
  s = rerun_kernel_make(st, spec, rerun_max_registers, rerun_switches, rerun_threads,
                        &guard->rerun);
  if (s == CF_OK)
    s = f16_buffer(st, (size_t)g->laid_bytes, "laid-out weights", &guard->scaled);
  if (s == CF_OK)
    s = f16_buffer(st, (size_t)sh->k * sizeof(float), "channel scales", &guard->unscale);
  /* the guard word, then with resident weights a tile counter per channel tile */
  if (s == CF_OK)
    s = f16_buffer(st, (size_t)(1 + (g->resident ? g->k_tiles : 0)) * sizeof(cl_uint),
                   "range guard", &guard->guard);
  if (s != CF_OK)
    goto fail;
  /* the channels past K in the last channel tile stay zero (the layout kernel writes K rows) */
  const cl_uint zero = 0;
  err = clEnqueueFillBuffer(st->queue, guard->scaled, &zero, sizeof zero, 0,
                            (size_t)g->laid_bytes, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    s = cl_fail_op("clEnqueueFillBuffer", err, "zeroing the wgmma plan's laid-out weights");
    goto fail;
  }
  err = set_layout_args(guard->scale, guard->scaled, guard->unscale, (cl_int)sh->c,
                        (cl_int)sh->r, (cl_int)g->n_chunks, guard->guard);
  if (err == CL_SUCCESS)
    err = wgmma_set_scalar_args(kernel, epi, guard->unscale, guard->guard, (cl_int)sh->n);
  if (err == CL_SUCCESS)
    err = mma_set_scalar_args(guard->rerun, sh, t, epi, NULL, guard->guard);
  if (err != CL_SUCCESS) {
    s = cl_fail(CF_ERR_INTERNAL, "clSetKernelArg", err, "the wgmma plan's arguments");
    goto fail;
  }
  guard->scale_local = WGMMA_LAYOUT_THREADS;
  guard->scale_global = (size_t)sh->k * WGMMA_LAYOUT_THREADS;
  rerun_geometry(st, t, rerun_threads, guard->rerun_global, guard->rerun_local);

  const size_t local[2] = {WGMMA_THREADS, 1};
  const size_t global[2] = {(size_t)wgmma_launch_groups(st, g) * WGMMA_THREADS, 1};
  s = compiled_make(kernel, g->pairs ? "cf_conv2d_wgmma (fp16 pairs)" : "cf_conv2d_wgmma (fp16)",
                    local, global, sh->has_bias, compiled);
  if (s != CF_OK)
    goto fail;
  cl_compiled *c = (cl_compiled *)*compiled;
  c->f16 = guard;
  snprintf(c->detail_text, sizeof c->detail_text,
           "opencl: wgmma program (sm_90a through its PTX, switch wgmma): 128 pixels x %d "
           "channels per group of %d, %s (weights laid out per call%s, %s), output %s; range "
           "guard with a %s rerun on tile T%d",
           g->bn, WGMMA_THREADS, g->pairs ? "fp16 pairs" : "one fp16 product",
           g->pairs ? ", inputs x 2^6" : "",
           g->resident ? "resident in persistent groups" : "streamed per chunk",
           g->aligned_stores ? "in sector-aligned runs"
           : g->pair_stores  ? "by pixel pairs"
                             : "by single pixels",
           g->pairs ? "3xTF32" : "TF32", t->menu_index);
  c->detail = c->detail_text;
  return CF_OK;

fail:
  f16_guard_free(guard);
  clReleaseKernel(kernel);
  return s;
}

/* The wgmma route proven once per context, at its first plan (as the mma.sync route is by its
 * probe at context creation): the wgmma program built for a small shape (1 x 16 x 3 x 132 ->
 * 128 channels, 3 x 3: two 128-pixel tiles, the second short), run with its layout kernel on
 * small integers with no bias and no chain, where every fp16 product, the weights' power-of-two
 * scale and every fp32 sum are exact, must give the exact sums. 1 if it does; else 0 and `why`. */
static int wgmma_probe_run(cl_state *st, char *why, size_t why_len) {
  const cf_conv2d_desc d = {1, 16, 3, 132, 128, 3, 3, 1, 1, 0, 0, 1, 1, 0};
  cf_conv_shape sh;
  cf_cl_wgmma_geometry g;
  cf_epilogue epi;
  cf_epilogue_fold(NULL, 0, &epi);
  if (cf_shape_resolve("opencl wgmma probe", &d, &sh) != CF_OK || !cf_cl_wgmma_geometry_of(&sh, 0, &g)) {
    snprintf(why, why_len, "the probe's shape is not the wgmma program's (convfuse's bug)");
    return 0;
  }
  const int max_registers = st->mma_max_registers >= 0 ? st->mma_max_registers : WGMMA_MAX_REGISTERS;
  char options[1024];
  if (!wgmma_options(st, &sh, &g, &epi, max_registers, options, sizeof options)) {
    snprintf(why, why_len, "build options too long");
    return 0;
  }
  enum { IN = 16 * 3 * 132, W = 128 * 16 * 9, OUT = 128 * 130 };
  float *host = (float *)malloc((IN + W + OUT) * sizeof(float));
  cl_kernel conv = NULL, layout = NULL;
  cl_mem bufs[6] = {NULL, NULL, NULL, NULL, NULL, NULL}; /* in, w, laid, unscale, guard, out */
  int ok = 0;
  cl_int err = CL_SUCCESS;
  if (!host) {
    snprintf(why, why_len, "out of host memory");
    return 0;
  }
  float *in = host, *w = host + IN, *out = host + IN + W;
  for (int i = 0; i < IN; ++i) /* small integers: exact in fp16, their sums exact in fp32 */
    in[i] = (float)((i * 7 + 3) % 5 - 2);
  for (int i = 0; i < W; ++i)
    w[i] = (float)((i * 11 + 5) % 5 - 2);
  if (create_fitting_kernel(st, options, max_registers, "cf_conv2d_wgmma", WGMMA_THREADS, &conv) !=
      CF_OK) {
    snprintf(why, why_len, "%s", cf_last_error());
    goto done;
  }
  cl_program prog = NULL;
  err = clGetKernelInfo(conv, CL_KERNEL_PROGRAM, sizeof prog, &prog, NULL);
  if (err == CL_SUCCESS)
    layout = clCreateKernel(prog, "cf_wgmma_lay_out_weights", &err);
  const size_t sizes[6] = {IN * sizeof(float), W * sizeof(float), (size_t)g.laid_bytes,
                           128 * sizeof(float), sizeof(cl_uint), OUT * sizeof(float)};
  for (int i = 0; i < 6 && err == CL_SUCCESS; ++i)
    bufs[i] = clCreateBuffer(st->context, CL_MEM_READ_WRITE, sizes[i], NULL, &err);
  const cl_uint zero = 0;
  if (err == CL_SUCCESS)
    err = clEnqueueWriteBuffer(st->queue, bufs[0], CL_FALSE, 0, sizes[0], in, 0, NULL, NULL);
  if (err == CL_SUCCESS)
    err = clEnqueueWriteBuffer(st->queue, bufs[1], CL_FALSE, 0, sizes[1], w, 0, NULL, NULL);
  for (int i = 2; i < 6 && err == CL_SUCCESS; i += i == 2 ? 2 : 1) /* laid, guard, out */
    err = clEnqueueFillBuffer(st->queue, bufs[i], &zero, sizeof zero, 0, sizes[i], 0, NULL, NULL);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(layout, 0, sizeof(cl_mem), &bufs[1]);
  if (err == CL_SUCCESS)
    err = set_layout_args(layout, bufs[2], bufs[3], 16, 3, g.n_chunks, bufs[4]);
  const cl_mem conv_bufs[4] = {bufs[0], bufs[2], bufs[0], bufs[5]}; /* no bias: any buffer */
  for (cl_uint i = 0; i < 4 && err == CL_SUCCESS; ++i)
    err = clSetKernelArg(conv, i, sizeof(cl_mem), &conv_bufs[i]);
  if (err == CL_SUCCESS)
    err = wgmma_set_scalar_args(conv, &epi, bufs[3], bufs[4], (cl_int)sh.n);
  const size_t layout_local = WGMMA_LAYOUT_THREADS, layout_global = 128 * WGMMA_LAYOUT_THREADS;
  const size_t conv_local = WGMMA_THREADS,
               conv_global = (size_t)wgmma_launch_groups(st, &g) * WGMMA_THREADS;
  if (err == CL_SUCCESS)
    err = clEnqueueNDRangeKernel(st->queue, layout, 1, NULL, &layout_global, &layout_local, 0,
                                 NULL, NULL);
  if (err == CL_SUCCESS)
    err = clEnqueueNDRangeKernel(st->queue, conv, 1, NULL, &conv_global, &conv_local, 0, NULL,
                                 NULL);
  if (err == CL_SUCCESS)
    err = clEnqueueReadBuffer(st->queue, bufs[5], CL_TRUE, 0, sizes[5], out, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    snprintf(why, why_len, "the probe's run failed: %s (%d)", cl_error_name(err), (int)err);
    goto done;
  }
  int wrong = 0, first = -1;
  for (int k = 0; k < 128; ++k)
    for (int q = 0; q < 130; ++q) {
      float want = 0.0f; /* exact: at most 144 products of magnitude <= 4 */
      for (int c = 0; c < 16; ++c)
        for (int rr = 0; rr < 3; ++rr)
          for (int s2 = 0; s2 < 3; ++s2)
            want += w[((k * 16 + c) * 3 + rr) * 3 + s2] * in[(c * 3 + rr) * 132 + q + s2];
      if (out[k * 130 + q] != want && wrong++ == 0)
        first = k * 130 + q;
    }
  if (wrong)
    snprintf(why, why_len, "the probe computed %d of %d sums wrong (first: channel %d pixel %d)",
             wrong, OUT, first / 130, first % 130);
  ok = wrong == 0;
done:
  for (int i = 0; i < 6; ++i)
    if (bufs[i])
      clReleaseMemObject(bufs[i]);
  if (layout)
    clReleaseKernel(layout);
  if (conv)
    clReleaseKernel(conv);
  free(host);
  return ok;
}

/* Whether the wgmma program may run in this context: the device can (wgmma_ok) and its probe
 * passed (run at the first plan that wants it; a failure says why once, with
 * CONVFUSE_VERBOSE=1 or where wgmma=1 was forced). */
static int wgmma_route_proven(cl_state *st) {
  if (!st->wgmma_ok)
    return 0;
  if (st->wgmma_probed == 0) {
    char why[256] = "";
    st->wgmma_probed = wgmma_probe_run(st, why, sizeof why) ? 1 : -1;
    if (st->wgmma_probed < 0 &&
        (st->verbose || st->forced_switches.forced[CF_CL_SWITCH_WGMMA] == 1))
      fprintf(stderr, "convfuse: opencl: the wgmma probe failed (%s): the mma.sync program runs "
                      "instead\n", why);
  }
  return st->wgmma_probed > 0;
}

static cf_status mma_plan_compile(cl_state *st, const cf_plan_spec *spec, void **compiled) {
  const cf_tile_plan *t = &spec->tiles;
  const cf_conv_shape *sh = &spec->shape;
  const cf_epilogue *epi = &spec->epilogue;
  const int split = t->variant == CF_KERNEL_MMA_3XTF32;
  if (!st->tensor_cores)
    return cf_error(CF_ERR_INTERNAL,
                    "opencl: a tensor-core plan (%s) on a context whose tensor-core probe did "
                    "not pass",
                    cf_kernel_variant_name(t->variant));
  if (t->menu_index < 0 || t->menu_index >= CFK_MMA_TILE_COUNT)
    return cf_error(CF_ERR_INTERNAL, "opencl: MMA tile menu index %d has no kernel (valid 0..%d)",
                    t->menu_index, CFK_MMA_TILE_COUNT - 1);
  const cf_mma_tile *entry = &cf_mma_menu[t->menu_index];
  const int bm = entry->bm, bn = entry->bn;
  /* the menu's warp tile, or its tall form (caps mma_tall_warps: 2 * WM, one TF32 product) */
  const int tall = !split && t->warp_m == 2 * entry->wm && bm % t->warp_m == 0;
  const int wm = tall ? 2 * entry->wm : entry->wm, wn = entry->wn;
  const int threads = 32 * (bm / wm) * (bn / wn);
  if (t->block_m != bm || t->block_n != bn || t->warp_m != wm || t->warp_n != wn ||
      t->threads != threads || t->chunk_channels < 1 || t->chunk_channels > sh->c)
    return cf_error(CF_ERR_INTERNAL,
                    "opencl: MMA tile plan %dx%d (warp %dx%d, %d threads, %d channels per "
                    "chunk) does not match menu entry T%d",
                    t->block_m, t->block_n, t->warp_m, t->warp_n, t->threads,
                    t->chunk_channels, t->menu_index);
  const cf_mma_layout L = cf_plan_mma_layout(sh, t); /* block_m/n checked against the menu */
  const int64_t q_tiles = (sh->q + bm - 1) / bm;
  if (L.bytes != (int64_t)t->shared_bytes || t->block_k != L.kcp ||
      t->grid_m != sh->n * sh->p * q_tiles || t->grid_n != (sh->k + bn - 1) / bn)
    return cf_error(CF_ERR_INTERNAL,
                    "opencl: MMA plan grid %lldx%lld / %zu bytes / K chunk %d disagree with "
                    "the layout (%lld bytes, K chunk %lld)",
                    (long long)t->grid_m, (long long)t->grid_n, t->shared_bytes, t->block_k,
                    (long long)L.bytes, (long long)L.kcp);
  if ((cl_ulong)L.bytes > st->local_mem)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "opencl: tensor-core tile T%d needs %lld bytes of local memory; the device "
                    "has %llu",
                    t->menu_index, (long long)L.bytes, (unsigned long long)st->local_mem);
  if ((size_t)threads > st->max_wg || (size_t)threads > st->max_item[0])
    return cf_error(CF_ERR_UNSUPPORTED,
                    "opencl: tensor-core tile T%d needs work-groups of %d work-items; the "
                    "device allows %zu",
                    t->menu_index, threads, st->max_wg);
  CF_CHECK(check_int_ranges(sh, t));
  /* chunk K offsets run to crs + one chunk; the row-tile counter to m_tiles + groups */
  if (!fits_int(sh->gemm_k + L.kcp) || t->grid_m > INT_MAX / 2 || t->grid_n > 65535)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "opencl: the tensor-core kernel's int counters cannot hold this problem "
                    "(K = %lld, %lld row tiles x %lld channel tiles)",
                    (long long)sh->gemm_k, (long long)t->grid_m, (long long)t->grid_n);
  CF_CHECK(cf_epilogue_check_folded("opencl", epi));

  const cf_cl_tuning tuning = cf_cl_tuning_of(st->is_nvidia, st->global_mem);
  int switches[CF_CL_SWITCHES];
  warn_refused_switches(cf_cl_mma_switches(sh, t, tuning, &st->forced_switches, switches), t);
  const int max_registers = mma_register_cap(st, tuning, split, switches[CF_CL_SWITCH_F16],
                                             L.resident, threads, tall);
  char options[1024];
  CF_CHECK(mma_options(st, spec, max_registers, switches, options, sizeof options));
  cf_cl_wgmma_geometry wg;
  if (switches[CF_CL_SWITCH_WGMMA] && cf_cl_wgmma_geometry_of(sh, split, &wg) &&
      wgmma_route_proven(st)) {
    /* the rerun: this plan's TF32 / 3xTF32 program, as an fp16 plan's */
    int rerun_switches[CF_CL_SWITCHES];
    memcpy(rerun_switches, switches, sizeof rerun_switches);
    rerun_switches[CF_CL_SWITCH_F16] = 0;
    /* its output in sector-aligned runs unless aligned_stores=0 is forced (H100, bench/NOTES.md
     * v71, against pixel pairs: mish-mish tf32 3.07 -> 2.53 ms, fp32 5.48 -> 5.12-5.32); the
     * mma.sync program's own default (and its rerun's) stays as measured for it */
    wg.aligned_stores = st->forced_switches.forced[CF_CL_SWITCH_ALIGNED_STORES] != 0;
    const cf_status s =
        wgmma_plan_compile(st, spec, &wg, rerun_switches, max_registers, threads, compiled);
    if (s == CF_OK)
      return CF_OK;
    /* the mma.sync program below computes the same, slower */
    if (st->verbose || st->forced_switches.forced[CF_CL_SWITCH_WGMMA] == 1)
      fprintf(stderr, "convfuse: opencl: the wgmma program is not used: %s\n",
              cf_last_error());
  } else if (st->forced_switches.forced[CF_CL_SWITCH_WGMMA] == 1 && switches[CF_CL_SWITCH_WGMMA]) {
    fprintf(stderr, "convfuse: CONVFUSE_OPENCL_SWITCHES: wgmma=1, but this device cannot run the "
                    "wgmma program (it needs compute capability 9.0 and NVIDIA's PTX rebuild)\n");
  }
  cl_kernel kernel = NULL;
  CF_CHECK(create_fitting_kernel(st, options, max_registers, "cf_conv2d_mma", threads,
                                 &kernel));
  cl_f16_guard *f16 = NULL;
  cf_status s = CF_OK;
  if (switches[CF_CL_SWITCH_F16]) {
    /* the rerun: the same program without fp16 (whose own switches its options then omit) */
    switches[CF_CL_SWITCH_F16] = 0;
    s = f16_guard_make(st, spec, kernel, max_registers, switches, threads, &f16);
    if (s != CF_OK)
      goto fail;
  }

  cl_int err = mma_set_scalar_args(kernel, sh, t, epi, f16 ? f16->unscale : NULL,
                                   f16 ? f16->guard : NULL);
  if (err == CL_SUCCESS && f16)
    err = mma_set_scalar_args(f16->rerun, sh, t, epi, NULL, f16->guard);
  if (err != CL_SUCCESS) {
    s = cl_fail(CF_ERR_INTERNAL, "clSetKernelArg", err, "cf_conv2d_mma scalar argument");
    goto fail;
  }

  size_t local[2], global[2];
  mma_geometry(st, t, threads, global, local);
  const char *name = f16 ? (split ? "cf_conv2d_mma (fp16 pairs)" : "cf_conv2d_mma (fp16)")
                         : (split ? "cf_conv2d_mma (3xTF32)" : "cf_conv2d_mma (TF32)");
  s = compiled_make(kernel, name, local, global, sh->has_bias, compiled);
  if (s == CF_OK) {
    cl_compiled *c = (cl_compiled *)*compiled;
    c->f16 = f16;
    c->detail = mma_plan_detail(split, L.resident, f16 != NULL, tuning, switches, max_registers);
    /* forced-only switches, named where on (the plan's stages= is the planner's 2) */
    const int pairs_of_channels = c->f16 && switches[CF_CL_SWITCH_CHANNEL_PAIRS];
    if (switches[CF_CL_SWITCH_STAGES3] || pairs_of_channels || switches[CF_CL_SWITCH_EVICT_LAST]) {
      snprintf(c->detail_text, sizeof c->detail_text, "%s%s%s%s",
               c->detail ? c->detail : "opencl",
               switches[CF_CL_SWITCH_STAGES3] ? "; three patch stages (switch stages3)" : "",
               pairs_of_channels ? "; split patch words across channel pairs (switch "
                                   "channel_pairs)"
                                 : "",
               switches[CF_CL_SWITCH_EVICT_LAST] ? "; patch copies kept in L2 (switch evict_last)"
                                                 : "");
      c->detail = c->detail_text;
    }
    return CF_OK;
  }

fail:
  f16_guard_free(f16);
  clReleaseKernel(kernel);
  return s;
}

static cf_status cl_plan_compile(void *state_, const cf_plan_spec *spec, void **compiled) {
  cl_state *st = (cl_state *)state_;
  const cf_tile_plan *t = &spec->tiles;
  const cf_conv_shape *sh = &spec->shape;
  const cf_epilogue *epi = &spec->epilogue;
  *compiled = NULL;
  if (t->variant == CF_KERNEL_MMA_TF32 || t->variant == CF_KERNEL_MMA_3XTF32)
    return mma_plan_compile(st, spec, compiled);

  if (t->variant != CF_KERNEL_FFMA_TILED)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "opencl: kernel variant '%s' is not implemented by the OpenCL backend "
                    "(it has '%s', '%s' and '%s')",
                    cf_kernel_variant_name(t->variant),
                    cf_kernel_variant_name(CF_KERNEL_FFMA_TILED),
                    cf_kernel_variant_name(CF_KERNEL_MMA_TF32),
                    cf_kernel_variant_name(CF_KERNEL_MMA_3XTF32));
  if (t->block_m <= 0 || t->block_n <= 0 || t->block_k <= 0 || t->thread_m <= 0 ||
      t->thread_n <= 0 || t->block_m > 4096 || t->block_n > 4096 || t->block_k > 256 ||
      t->block_m % t->thread_m != 0 || t->block_n % t->thread_n != 0 ||
      t->threads != (t->block_m / t->thread_m) * (t->block_n / t->thread_n))
    return cf_error(CF_ERR_INTERNAL,
                    "opencl: inconsistent tile plan (block %dx%dx%d, thread %dx%d, %d threads; "
                    "need threads = (BM/TM)*(BN/TN))",
                    t->block_m, t->block_n, t->block_k, t->thread_m, t->thread_n, t->threads);
  CF_CHECK(cf_epilogue_check_folded("opencl", epi));

  /* Launch geometry: dimension 0 over M blocks, dimension 1 over N blocks. */
  int64_t want_gm = (sh->gemm_m + t->block_m - 1) / t->block_m;
  int64_t want_gn = (sh->gemm_n + t->block_n - 1) / t->block_n;
  if (t->grid_m != want_gm || t->grid_n != want_gn)
    return cf_error(CF_ERR_INTERNAL,
                    "opencl: tile plan grid %lldx%lld does not cover the %lldx%lld GEMM with "
                    "%dx%d blocks",
                    (long long)t->grid_m, (long long)t->grid_n, (long long)sh->gemm_m,
                    (long long)sh->gemm_n, t->block_m, t->block_n);
  size_t wm = (size_t)(t->block_m / t->thread_m), wn = (size_t)(t->block_n / t->thread_n);
  if ((size_t)t->threads > st->max_wg || wm > st->max_item[0] || wn > st->max_item[1])
    return cf_error(CF_ERR_UNSUPPORTED,
                    "opencl: tile %dx%d needs work-groups of %zu x %zu = %d work-items; the "
                    "device allows %zu (at most %zu x %zu)",
                    t->block_m, t->block_n, wm, wn, t->threads, st->max_wg, st->max_item[0],
                    st->max_item[1]);
  /* Two buffers of A (BK x BM) and B (BK x (BN + 4)): see kernels_cl/conv2d_ffma.cl. */
  size_t local_bytes =
      sizeof(float) * 2u * (size_t)t->block_k * ((size_t)t->block_m + (size_t)t->block_n + 4);
  if ((cl_ulong)local_bytes > st->local_mem)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "opencl: tile %dx%dx%d needs %zu bytes of local memory; the device has "
                    "%llu",
                    t->block_m, t->block_n, t->block_k, local_bytes,
                    (unsigned long long)st->local_mem);
  /* Portable launch limits: NVIDIA maps dimension 0 to a grid x of at most 2^31-1 blocks and
   * dimension 1 to a grid y of at most 65535; the global size must fit the device's size_t. */
  uint64_t size_limit = st->address_bits == 32 ? UINT32_MAX : (uint64_t)SIZE_MAX;
  if (t->grid_m < 1 || t->grid_n < 1 || t->grid_m > INT32_MAX || t->grid_n > 65535 ||
      (uint64_t)t->grid_m > size_limit / (uint64_t)t->threads)
    return cf_error(CF_ERR_UNSUPPORTED,
                    "opencl: launch grid %lld x %lld work-groups of %d is beyond the OpenCL "
                    "launch limits (at most %d x 65535 groups, global size within %llu)",
                    (long long)t->grid_m, (long long)t->grid_n, t->threads, INT32_MAX,
                    (unsigned long long)size_limit);
  CF_CHECK(check_int_ranges(sh, t));

  /* Build options: the key of the program cache. */
  char options[512];
  size_t used = 0;
  int ok = cf_cl_opt_append(options, sizeof options, &used, "CF_BM", t->block_m) &&
           cf_cl_opt_append(options, sizeof options, &used, "CF_BN", t->block_n) &&
           cf_cl_opt_append(options, sizeof options, &used, "CF_BK", t->block_k) &&
           cf_cl_opt_append(options, sizeof options, &used, "CF_TM", t->thread_m) &&
           cf_cl_opt_append(options, sizeof options, &used, "CF_TN", t->thread_n) &&
           cf_cl_opt_append(options, sizeof options, &used, "CF_IMG32",
                      sh->c * sh->h * sh->w <= INT_MAX ? 1 : 0) &&
           cf_cl_opt_append_epilogue(options, sizeof options, &used, sh->has_bias, epi);
  if (!ok)
    return cf_error(CF_ERR_INTERNAL, "opencl: build options do not fit in %zu bytes",
                    sizeof options);

  cl_kernel kernel = NULL;
  CF_CHECK(create_fitting_kernel(st, options, 0, "cf_conv2d_ffma", t->threads, &kernel));
  cf_status s = CF_OK;
  cl_int err = CL_SUCCESS;

  /* Scalar arguments, set once: 4..18 the shape, 19 bias_shift, 20..27 op values. */
  const cl_int ints[15] = {(cl_int)sh->n,        (cl_int)sh->c,        (cl_int)sh->h,
                           (cl_int)sh->w,        (cl_int)sh->k,        (cl_int)sh->r,
                           (cl_int)sh->s,        (cl_int)sh->p,        (cl_int)sh->q,
                           (cl_int)sh->stride_h, (cl_int)sh->stride_w, (cl_int)sh->pad_h,
                           (cl_int)sh->pad_w,    (cl_int)sh->dil_h,    (cl_int)sh->dil_w};
  for (cl_uint i = 0; i < 15; ++i) {
    err = clSetKernelArg(kernel, 4 + i, sizeof(cl_int), &ints[i]);
    if (err != CL_SUCCESS) {
      s = cl_fail(CF_ERR_INTERNAL, "clSetKernelArg", err, "shape argument");
      goto fail;
    }
  }
  err = set_epilogue_args(kernel, 19, epi);
  if (err != CL_SUCCESS) {
    s = cl_fail(CF_ERR_INTERNAL, "clSetKernelArg", err, "epilogue argument");
    goto fail;
  }

  const size_t local[2] = {wm, wn};
  const size_t global[2] = {(size_t)t->grid_m * local[0], (size_t)t->grid_n * local[1]};
  s = compiled_make(kernel, "cf_conv2d_ffma", local, global, sh->has_bias, compiled);
  if (s == CF_OK)
    return CF_OK;

fail:
  clReleaseKernel(kernel);
  return s;
}

static void cl_plan_release(void *state_, void *compiled) {
  (void)state_;
  cl_compiled *c = (cl_compiled *)compiled;
  if (!c)
    return;
  f16_guard_free(c->f16);
  clReleaseKernel(c->kernel);
  free(c);
}

/* Sets kernel's buffer arguments and enqueues it on c's geometry (event optional). */
static cf_status enqueue_kernel(cl_state *st, const cl_compiled *c, cl_kernel kernel,
                                const char *name, cl_mem in, cl_mem wt, cl_mem b, cl_mem out,
                                cl_event *event) {
  cl_int err = clSetKernelArg(kernel, 0, sizeof(cl_mem), &in);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(kernel, 1, sizeof(cl_mem), &wt);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(kernel, 2, sizeof(cl_mem), &b);
  if (err == CL_SUCCESS)
    err = clSetKernelArg(kernel, 3, sizeof(cl_mem), &out);
  if (err != CL_SUCCESS)
    return cl_fail(CF_ERR_DEVICE, "clSetKernelArg", err, "buffer argument");
  err = clEnqueueNDRangeKernel(st->queue, kernel, 2, NULL, c->global, c->local, 0, NULL, event);
  if (err != CL_SUCCESS) {
    char ctx[160];
    snprintf(ctx, sizeof ctx, "%s, global %zu x %zu, local %zu x %zu", name, c->global[0],
             c->global[1], c->local[0], c->local[1]);
    return cl_fail(err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY
                       ? CF_ERR_OUT_OF_MEMORY
                       : CF_ERR_DEVICE,
                   "clEnqueueNDRangeKernel", err, ctx);
  }
  return CF_OK;
}

/* An fp16 plan's launch (cl_f16_guard): the weights scaled and the guard cleared by one
 * kernel, the fp16 kernel, the rerun. first / last (optional): the first and the last command's events. */
static cf_status enqueue_guarded(cl_state *st, const cl_compiled *c, cl_mem in, cl_mem wt,
                                 cl_mem b, cl_mem out, cl_event *first, cl_event *last) {
  const cl_f16_guard *g = c->f16;
  cl_int err = clSetKernelArg(g->scale, 0, sizeof(cl_mem), &wt);
  if (err != CL_SUCCESS)
    return cl_fail(CF_ERR_DEVICE, "clSetKernelArg", err, "cf_f16_scale_weights' weights");
  /* it clears the guard too: one command fewer than a fill */
  err = clEnqueueNDRangeKernel(st->queue, g->scale, 1, NULL, &g->scale_global, &g->scale_local,
                               0, NULL, first);
  if (err != CL_SUCCESS)
    return cl_fail_op("clEnqueueNDRangeKernel", err, "cf_f16_scale_weights");
  CF_CHECK(enqueue_kernel(st, c, c->kernel, c->name, in, g->scaled, b, out, NULL));
  cl_compiled rerun_launch = *c; /* the plan's, on the rerun's own geometry */
  memcpy(rerun_launch.global, g->rerun_global, sizeof g->rerun_global);
  memcpy(rerun_launch.local, g->rerun_local, sizeof g->rerun_local);
  return enqueue_kernel(st, &rerun_launch, g->rerun, "cf_conv2d_mma (the fp16 plan's rerun)",
                        in, wt, b, out, last);
}

/* Enqueues the plan's commands: one kernel, or an fp16 plan's three. first / last (optional,
 * together): events of the first and the last command (the same event for one kernel, then
 * retained twice). */
static cf_status enqueue(cl_state *st, cl_compiled *c, const void *input, const void *weight,
                         const void *bias, void *output, cl_event *first, cl_event *last) {
  cl_mem in = (cl_mem)input, wt = (cl_mem)weight, out = (cl_mem)output;
  /* Without bias the kernel never reads argument 2; pass a valid buffer anyway. */
  cl_mem b = c->has_bias ? (cl_mem)bias : in;
  if (c->has_bias && !b)
    return cf_error(CF_ERR_INTERNAL, "opencl: the plan has a bias but no bias buffer was given");
  if (c->f16)
    return enqueue_guarded(st, c, in, wt, b, out, first, last);
  CF_CHECK(enqueue_kernel(st, c, c->kernel, c->name, in, wt, b, out, last));
  if (first) {
    *first = *last;
    clRetainEvent(*first);
  }
  return CF_OK;
}

static cf_status cl_plan_launch(void *state_, void *compiled, const void *input,
                                const void *weight, const void *bias, void *output) {
  cl_state *st = (cl_state *)state_;
  CF_CHECK(enqueue(st, (cl_compiled *)compiled, input, weight, bias, output, NULL, NULL));
  cl_int err = clFlush(st->queue);
  if (err != CL_SUCCESS)
    return cl_fail_op("clFlush", err, NULL);
  return CF_OK;
}

/* A finished command's status and its profiling time stamp `which`. */
static cf_status event_time(cl_event ev, cl_profiling_info which, const char *name,
                            cl_ulong *stamp) {
  cl_int status = CL_COMPLETE;
  cl_int err =
      clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL);
  if (err != CL_SUCCESS)
    return cl_fail(CF_ERR_DEVICE, "clGetEventInfo", err, "CL_EVENT_COMMAND_EXECUTION_STATUS");
  if (status < 0)
    return cl_fail_op("kernel execution", status, name);
  err = clGetEventProfilingInfo(ev, which, sizeof *stamp, stamp, NULL);
  if (err != CL_SUCCESS)
    return cl_fail(CF_ERR_DEVICE, "clGetEventProfilingInfo", err, NULL);
  return CF_OK;
}

/* The plan's commands timed from the first one's start to the last one's end. */
static cf_status cl_plan_launch_timed(void *state_, void *compiled, const void *input,
                                      const void *weight, const void *bias, void *output,
                                      double *device_ms) {
  cl_state *st = (cl_state *)state_;
  const char *name = ((cl_compiled *)compiled)->name;
  cl_event first = NULL, last = NULL;
  cl_ulong t0 = 0, t1 = 0;
  cf_status s = enqueue(st, (cl_compiled *)compiled, input, weight, bias, output, &first, &last);
  if (s == CF_OK) {
    cl_int err = clWaitForEvents(1, &last);
    s = err == CL_SUCCESS ? CF_OK : cl_fail_op("clWaitForEvents", err, name);
  }
  if (s == CF_OK)
    s = event_time(first, CL_PROFILING_COMMAND_START, name, &t0);
  if (s == CF_OK)
    s = event_time(last, CL_PROFILING_COMMAND_END, name, &t1);
  if (s == CF_OK)
    *device_ms = t1 > t0 ? (double)(t1 - t0) * 1e-6 : 0.0;
  if (first)
    clReleaseEvent(first);
  if (last)
    clReleaseEvent(last);
  return s;
}

static cf_status cl_synchronize(void *state_) { return cl_finish_checked((cl_state *)state_); }

static const char *cl_plan_detail(const void *compiled) {
  return ((const cl_compiled *)compiled)->detail;
}

static const cf_backend_iface cl_iface = {
    .kind = CF_BACKEND_OPENCL,
    /* what the backend implements; each context narrows it (cl_init: the tensor-core
     * variants only where the probe passed) */
    .kernel_variants = (1u << CF_KERNEL_FFMA_TILED) | (1u << CF_KERNEL_MMA_TF32) |
                       (1u << CF_KERNEL_MMA_3XTF32),
    .probe = cl_probe,
    .init = cl_init,
    .destroy = cl_destroy,
    .buffer_alloc = cl_buffer_alloc,
    .buffer_free = cl_buffer_free,
    .buffer_write = cl_buffer_write,
    .buffer_read = cl_buffer_read,
    .plan_compile = cl_plan_compile,
    .plan_release = cl_plan_release,
    .plan_launch = cl_plan_launch,
    .synchronize = cl_synchronize,
    .plan_launch_timed = cl_plan_launch_timed,
    .plan_detail = cl_plan_detail,
};

const cf_backend_iface *cf_backend_opencl(void) { return &cl_iface; }
