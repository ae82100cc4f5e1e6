/* test_device_faults: what the device can refuse, and what convfuse makes of it.
 *   - asking for more memory than the device has: CF_ERR_OUT_OF_MEMORY with the size in the
 *     message, *out untouched, and the context keeps working (CPU, OpenCL, CUDA);
 *   - an OpenCL program that fails to build: CF_ERR_DEVICE with the build log in the message,
 *     and the next plan of the same context builds and runs. The failure is injected by this
 *     test alone: it defines clCreateProgramWithSource itself, which the static library's
 *     call binds to at link time (the executable's definition comes first), and forwards to
 *     the OpenCL loader's (dlsym RTLD_NEXT) with one broken kernel appended while armed. The
 *     library is not changed for the test; its on-disk program cache is turned off
 *     (CONVFUSE_CACHE=0), since a binary stored by an earlier run would skip the source build;
 *   - a CUDA kernel that faults: CF_ERR_DEVICE with the runtime's words (needs a GPU; skips
 *     without one). A trap instruction, loaded from PTX by this test, leaves the device
 *     context in a sticky error, which the plan's next launch (or the synchronize after it)
 *     must report.
 * Each test runs in its own process (Criterion), so a poisoned CUDA context stays there. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convfuse/convfuse.h"
#include "test_util.h"

#ifdef CONVFUSE_TEST_HAVE_OPENCL
#include <CL/cl.h>
#endif
#ifdef CONVFUSE_TEST_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif


static const cf_conv2d_desc small_desc = {.batch = 2, .in_channels = 3, .height = 11,
                                          .width = 10, .out_channels = 6, .kernel_h = 3,
                                          .kernel_w = 3, .pad_h = 1, .pad_w = 1, .has_bias = 1};
static const cf_op small_ops[3] = {{CF_OP_SUB, 0.5f}, {CF_OP_SUB, 0.2f}, {CF_OP_MISH, 0.0f}};

/* A complete, checked run on ctx: the context works. */
static void expect_context_works(cf_context *ctx, const char *after) {
  tu_problem pb;
  tu_problem_init(&pb, &small_desc, small_ops, 3, CF_MATH_FP32, TU_DIST_RAND, 0xfa17);
  const char *where = "";
  cf_status s = tu_run_on_context(ctx, &pb, &where);
  cr_assert(s == CF_OK, "%s: the context no longer works: %s: %s: %s %s", after, where,
            cf_status_string(s), cf_last_error(), pb.guard_msg);
  tu_check res;
  tu_check_output(&pb, &res);
  cr_expect(res.ok, "%s: the next run is wrong: %s", after, res.summary);
  tu_problem_free(&pb);
}

/* cf_buffer_create(ctx, bytes) must fail with CF_ERR_OUT_OF_MEMORY naming the size. */
static void expect_oom(cf_context *ctx, size_t bytes) {
  char want[32];
  snprintf(want, sizeof want, "%zu", bytes);
  cf_buffer *buf = (cf_buffer *)(void *)&want; /* any value a failed call must not touch */
  cf_buffer *const untouched = buf;
  cf_status s = cf_buffer_create(ctx, bytes, &buf);
  const char *msg = cf_last_error();
  cr_expect(s == CF_ERR_OUT_OF_MEMORY, "[%s] cf_buffer_create(%zu): %s, want CF_ERR_OUT_OF_MEMORY"
            " (message \"%s\")", cf_backend_name(cf_context_backend(ctx)), bytes,
            cf_status_string(s), msg);
  cr_expect(strstr(msg, want) != NULL, "[%s] out-of-memory message \"%s\" does not give the size"
            " %s", cf_backend_name(cf_context_backend(ctx)), msg, want);
  cr_expect(strstr(msg, "cf_buffer_create") != NULL, "message \"%s\" does not name the function",
            msg);
  cr_expect(buf == untouched, "a failed cf_buffer_create wrote *out");
  if (s == CF_OK && buf != untouched)
    cf_buffer_destroy(buf);
  cr_log_info("[%s] %zu bytes: %s", cf_backend_name(cf_context_backend(ctx)), bytes, msg);
}

#define TIB ((size_t)1 << 40)

Test(faults, cpu_out_of_memory) {
  cf_context *ctx = tu_open_or_skip(CF_BACKEND_CPU);
  expect_context_works(ctx, "before");
  /* Sizes no allocator can satisfy: above PTRDIFF_MAX, or the whole address space. (A size
   * like 1 TiB might succeed under Linux overcommit; these cannot.) */
  expect_oom(ctx, SIZE_MAX - 4096);
  expect_oom(ctx, SIZE_MAX / 2);
  expect_oom(ctx, SIZE_MAX);
  expect_context_works(ctx, "after the CPU out-of-memory errors");
  cf_context_destroy(ctx);
}

Test(faults, opencl_out_of_memory) {
  cf_context *ctx = tu_open_or_skip(CF_BACKEND_OPENCL);
  expect_oom(ctx, TIB);
  expect_oom(ctx, 64 * TIB);
  expect_oom(ctx, SIZE_MAX - 4096);
  expect_context_works(ctx, "after the OpenCL out-of-memory errors");
  cf_context_destroy(ctx);
}

Test(faults, cuda_out_of_memory) {
  cf_context *ctx = tu_open_or_skip(CF_BACKEND_CUDA);
  expect_oom(ctx, TIB);
  expect_oom(ctx, 64 * TIB);
  expect_oom(ctx, SIZE_MAX - 4096);
  expect_context_works(ctx, "after the CUDA out-of-memory errors");
  cf_context_destroy(ctx);
}

/* ---- OpenCL: a program that does not build ---- */

#ifdef CONVFUSE_TEST_HAVE_OPENCL
/* While armed, every program convfuse creates gets this kernel appended: it cannot build. */
#define CF_TEST_BROKEN_IDENT "cf_test_injected_undeclared_identifier"
static const char broken_kernel[] =
    "\n__kernel void cf_test_injected_failure(__global float *p) {\n"
    "  p[0] = " CF_TEST_BROKEN_IDENT ";\n"
    "}\n";
static int inject_build_failure;
static int injected_programs;

typedef cl_program(CL_API_CALL *create_program_fn)(cl_context, cl_uint, const char **,
                                                   const size_t *, cl_int *);

CL_API_ENTRY cl_program CL_API_CALL clCreateProgramWithSource(cl_context context, cl_uint count,
                                                              const char **strings,
                                                              const size_t *lengths,
                                                              cl_int *errcode_ret) {
  static create_program_fn real;
  if (!real) {
    void *sym = dlsym(RTLD_NEXT, "clCreateProgramWithSource");
    memcpy(&real, &sym, sizeof real);
  }
  if (!real) {
    if (errcode_ret)
      *errcode_ret = CL_INVALID_OPERATION;
    return NULL;
  }
  if (!inject_build_failure || count == 0 || count > 64)
    return real(context, count, strings, lengths, errcode_ret);
  const char *s2[65];
  size_t l2[65];
  for (cl_uint i = 0; i < count; ++i) {
    s2[i] = strings[i];
    l2[i] = lengths && lengths[i] ? lengths[i] : strlen(strings[i]);
  }
  s2[count] = broken_kernel;
  l2[count] = strlen(broken_kernel);
  injected_programs++;
  return real(context, count + 1, s2, l2, errcode_ret);
}
#endif

Test(faults, opencl_build_failure_reports_the_build_log) {
#ifndef CONVFUSE_TEST_HAVE_OPENCL
  cr_skip_test("the OpenCL backend is not compiled in");
#else
  setenv("CONVFUSE_CACHE", "0", 1); /* build from source: no binary from an earlier run */
  cf_context *ctx = tu_open_or_skip(CF_BACKEND_OPENCL);
  cf_plan *plan = (cf_plan *)(void *)&inject_build_failure;
  cf_plan *const untouched = plan;
  inject_build_failure = 1;
  cf_status s = cf_plan_create(ctx, &small_desc, small_ops, 3, CF_MATH_FP32, &plan);
  inject_build_failure = 0;
  char msg[4096];
  snprintf(msg, sizeof msg, "%s", cf_last_error());
  cr_assert(injected_programs > 0, "the test's clCreateProgramWithSource was not called: the "
            "library did not bind to it (status %s, message \"%s\")", cf_status_string(s), msg);
  cr_expect(s == CF_ERR_DEVICE, "a program that does not build: %s, want CF_ERR_DEVICE (\"%s\")",
            cf_status_string(s), msg);
  cr_expect(plan == untouched, "a failed cf_plan_create wrote *out");
  const char *needles[] = {"cf_plan_create", "clBuildProgram", "CL_BUILD_PROGRAM_FAILURE",
                           "build log", CF_TEST_BROKEN_IDENT};
  for (size_t i = 0; i < sizeof needles / sizeof needles[0]; ++i)
    cr_expect(strstr(msg, needles[i]) != NULL, "build failure message does not mention \"%s\": "
              "\"%s\"", needles[i], msg);
  cr_log_info("build failure: %.600s", msg);
  /* not cached: the same plan builds once the source is good again, and runs */
  expect_context_works(ctx, "after an OpenCL build failure");
  cf_context_destroy(ctx);
#endif
}

/* ---- CUDA: a kernel that faults ---- */

#ifdef CONVFUSE_TEST_HAVE_CUDA
/* One thread that executes `trap`: the context gets a sticky launch failure. */
static const char trap_ptx[] = ".version 7.0\n"
                               ".target sm_80\n"
                               ".address_size 64\n"
                               ".visible .entry cf_test_trap()\n"
                               "{\n"
                               "  trap;\n"
                               "  ret;\n"
                               "}\n";

/* Faults the current device's context; returns the error name the runtime reported. */
static const char *fault_the_device(void) {
  cudaLibrary_t lib = NULL;
  cudaKernel_t kernel = NULL;
  cudaError_t e = cudaLibraryLoadData(&lib, trap_ptx, NULL, NULL, 0, NULL, NULL, 0);
  cr_assert(e == cudaSuccess, "cudaLibraryLoadData(trap PTX): %s", cudaGetErrorString(e));
  e = cudaLibraryGetKernel(&kernel, lib, "cf_test_trap");
  cr_assert(e == cudaSuccess, "cudaLibraryGetKernel: %s", cudaGetErrorString(e));
  dim3 one = {1, 1, 1};
  e = cudaLaunchKernel((const void *)kernel, one, one, NULL, 0, NULL);
  cr_assert(e == cudaSuccess, "launching the trap kernel: %s", cudaGetErrorString(e));
  e = cudaDeviceSynchronize();
  cr_assert(e != cudaSuccess, "the trap kernel did not fault");
  return cudaGetErrorName(e);
}
#endif

Test(faults, cuda_kernel_fault_is_a_device_error_with_the_runtime_words) {
#ifndef CONVFUSE_TEST_HAVE_CUDA
  cr_skip_test("the CUDA backend is not compiled in");
#else
  cf_context *ctx = tu_open_or_skip(CF_BACKEND_CUDA);
  tu_problem pb;
  tu_problem_init(&pb, &small_desc, small_ops, 3, CF_MATH_FP32, TU_DIST_RAND, 0xdead);
  cf_plan *plan = NULL;
  cf_buffer *bi = NULL, *bw = NULL, *bb = NULL, *bo = NULL;
  cr_assert(cf_plan_create(ctx, &pb.desc, pb.ops, pb.n_ops, pb.math, &plan) == CF_OK, "%s",
            cf_last_error());
  cr_assert(cf_buffer_create(ctx, pb.n_in * 4, &bi) == CF_OK);
  cr_assert(cf_buffer_create(ctx, pb.n_w * 4, &bw) == CF_OK);
  cr_assert(cf_buffer_create(ctx, pb.n_b * 4, &bb) == CF_OK);
  cr_assert(cf_buffer_create(ctx, pb.n_out * 4, &bo) == CF_OK);
  cr_assert(cf_buffer_write(bi, 0, pb.input, pb.n_in * 4) == CF_OK);
  cr_assert(cf_buffer_write(bw, 0, pb.weight, pb.n_w * 4) == CF_OK);
  cr_assert(cf_buffer_write(bb, 0, pb.bias, pb.n_b * 4) == CF_OK);
  cr_assert(cf_plan_execute(plan, bi, bw, bb, bo) == CF_OK, "%s", cf_last_error());
  cr_assert(cf_context_synchronize(ctx) == CF_OK, "%s", cf_last_error());

  const char *fault = fault_the_device();
  cr_log_info("the trap kernel left the context with %s", fault);

  /* The next launch, or the synchronize after it, reports the fault in the runtime's words. */
  cf_status s = cf_plan_execute(plan, bi, bw, bb, bo);
  char msg[4096];
  snprintf(msg, sizeof msg, "%s", cf_last_error());
  const char *where = "cf_plan_execute";
  if (s == CF_OK) {
    s = cf_context_synchronize(ctx);
    snprintf(msg, sizeof msg, "%s", cf_last_error());
    where = "cf_context_synchronize";
  }
  cr_expect(s == CF_ERR_DEVICE, "after a kernel fault, %s: %s, want CF_ERR_DEVICE (\"%s\")", where,
            cf_status_string(s), msg);
  cr_expect(strstr(msg, where) != NULL && strstr(msg, "cuda") != NULL &&
                strstr(msg, fault) != NULL,
            "%s's message \"%s\" does not name itself, cuda and the runtime's %s", where, msg,
            fault);
  cr_log_info("%s after the fault: %s", where, msg);

  /* A read now fails too, and leaves the destination alone. */
  unsigned char dst[64];
  memset(dst, 0x5A, sizeof dst);
  s = cf_buffer_read(bo, 0, dst, sizeof dst);
  cr_expect(s == CF_ERR_DEVICE, "cf_buffer_read after a fault: %s (\"%s\")", cf_status_string(s),
            cf_last_error());
  size_t touched = 0;
  for (size_t i = 0; i < sizeof dst; ++i)
    touched += dst[i] != 0x5A;
  cr_expect(touched == 0, "a failed cf_buffer_read wrote %zu bytes", touched);
  /* a read of zero bytes still waits for the queued work, so it reports the fault too */
  s = cf_buffer_read(bo, 0, NULL, 0);
  cr_expect(s == CF_ERR_DEVICE, "a zero-byte cf_buffer_read after a fault: %s (\"%s\")",
            cf_status_string(s), cf_last_error());
  /* and tearing down a faulted context does not crash */
  cf_buffer_destroy(bi);
  cf_buffer_destroy(bw);
  cf_buffer_destroy(bb);
  cf_buffer_destroy(bo);
  cf_plan_destroy(plan);
  cf_context_destroy(ctx);
  tu_problem_free(&pb);
#endif
}
