/* Probe (not part of the library): how much local memory does NVIDIA's OpenCL give one
 * work-group? CL_DEVICE_LOCAL_MEM_SIZE says 48 KB on an H200 whose multiprocessors have 227 KB
 * per block under CUDA (there beyond 48 KB only after cudaFuncSetAttribute). The OpenCL tensor-
 * core kernel is sized to the 48 KB (bench/NOTES.md, v36), so this asks, per size, whether a
 * dynamic __local argument of that size launches and works:
 *   - clSetKernelArg(k, 1, bytes, NULL) and clEnqueueNDRangeKernel's return codes;
 *   - a checksum: every work-item fills its share of the buffer, a barrier, then reads back
 *     words written by other work-items (at a stride through the whole buffer), so a launch
 *     that silently got less memory shows wrong sums.
 * Sizes from 32 KB to 256 KB; also two groups per multiprocessor at 100 KB. Outcome (H200,
 * driver 580.159.04): 48 KB and more fail to launch (CL_OUT_OF_RESOURCES), 32 KB runs.
 *   cc -O2 -std=c11 -o cl_local_probe bench/cl_local_probe.c -lOpenCL && ./cl_local_probe */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char kernel_source[] =
    "__kernel void probe_local(__global uint *sums, __local uint *buf, uint words) {\n"
    "  const uint t = (uint)get_local_id(0), nt = (uint)get_local_size(0);\n"
    "  const uint grp = (uint)get_group_id(0);\n"
    "  for (uint i = t; i < words; i += nt)\n"
    "    buf[i] = i * 2654435761u + grp;\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  uint s = 0;\n"
    "  for (uint i = t; i < words; i += nt)\n"
    "    s += buf[(i * 7919u + 13u) % words] ^ (i & 255u);\n"
    "  sums[grp * nt + t] = s;\n"
    "}\n";

enum { THREADS = 256 };

static uint32_t expected_sum(uint32_t words, uint32_t grp, uint32_t t) {
  uint32_t s = 0;
  for (uint32_t i = t; i < words; i += THREADS) {
    const uint32_t j = (uint32_t)(((uint64_t)i * 7919u + 13u) % words);
    s += (j * 2654435761u + grp) ^ (i & 255u);
  }
  return s;
}

static void print_log(cl_program prog, cl_device_id dev) {
  size_t n = 0;
  if (clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) != CL_SUCCESS || n < 2)
    return;
  char *log = malloc(n + 1);
  if (log && clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS) {
    log[n] = '\0';
    printf("build log:\n%.1200s\n", log);
  }
  free(log);
}

/* One launch of `groups` work-groups with `bytes` of local memory each; prints what happened. */
static void try_size(cl_context ctx, cl_command_queue q, cl_kernel k, size_t bytes, size_t groups) {
  const uint32_t words = (uint32_t)(bytes / 4);
  const size_t n = groups * THREADS;
  cl_int err;
  uint32_t *got = malloc(n * sizeof *got);
  cl_mem sums = clCreateBuffer(ctx, CL_MEM_READ_WRITE, n * sizeof *got, NULL, &err);
  if (!got || err != CL_SUCCESS) {
    printf("%7zu B x %4zu groups: buffer failed (%d)\n", bytes, groups, (int)err);
    free(got);
    return;
  }
  memset(got, 0xAB, n * sizeof *got);
  cl_int e_fill = clEnqueueWriteBuffer(q, sums, CL_TRUE, 0, n * sizeof *got, got, 0, NULL, NULL);
  cl_int e_a0 = clSetKernelArg(k, 0, sizeof sums, &sums);
  cl_int e_a1 = clSetKernelArg(k, 1, bytes, NULL);
  cl_int e_a2 = clSetKernelArg(k, 2, sizeof words, &words);
  size_t global = n, local = THREADS;
  cl_int e_run = clEnqueueNDRangeKernel(q, k, 1, NULL, &global, &local, 0, NULL, NULL);
  cl_int e_fin = clFinish(q);
  cl_int e_read = clEnqueueReadBuffer(q, sums, CL_TRUE, 0, n * sizeof *got, got, 0, NULL, NULL);
  size_t wrong = 0;
  if (e_run == CL_SUCCESS && e_read == CL_SUCCESS)
    for (size_t i = 0; i < n; ++i)
      wrong += got[i] != expected_sum(words, (uint32_t)(i / THREADS), (uint32_t)(i % THREADS));
  printf("%7zu B x %4zu groups: fill %d arg %d/%d/%d enqueue %d finish %d read %d -> %s (%zu of "
         "%zu sums wrong)\n",
         bytes, groups, (int)e_fill, (int)e_a0, (int)e_a1, (int)e_a2, (int)e_run, (int)e_fin,
         (int)e_read, e_run == CL_SUCCESS && e_read == CL_SUCCESS && !wrong ? "OK" : "NOT OK",
         wrong, n);
  clReleaseMemObject(sums);
  free(got);
}

int main(void) {
  cl_platform_id plats[8];
  cl_uint np = 0;
  if (clGetPlatformIDs(8, plats, &np) != CL_SUCCESS || np == 0) {
    printf("no OpenCL platform\n");
    return 1;
  }
  for (cl_uint p = 0; p < np; ++p) {
    char name[256] = "";
    clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof name, name, NULL);
    cl_device_id dev;
    if (!strstr(name, "NVIDIA") ||
        clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_GPU, 1, &dev, NULL) != CL_SUCCESS)
      continue;
    cl_ulong local_mem = 0;
    cl_uint cus = 0;
    clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local_mem, &local_mem, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL);
    printf("platform %s: CL_DEVICE_LOCAL_MEM_SIZE %llu, %u compute units\n", name,
           (unsigned long long)local_mem, cus);
    cl_int err;
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &err);
    const char *src = kernel_source;
    size_t len = sizeof kernel_source - 1;
    cl_program prog = clCreateProgramWithSource(ctx, 1, &src, &len, &err);
    err = clBuildProgram(prog, 1, &dev, "", NULL, NULL);
    if (err != CL_SUCCESS) {
      printf("build failed %d\n", (int)err);
      print_log(prog, dev);
      return 1;
    }
    cl_kernel k = clCreateKernel(prog, "probe_local", &err);
    const size_t kib[] = {32, 48, 49, 64, 96, 100, 128, 160, 200, 227, 228, 256};
    for (size_t i = 0; i < sizeof kib / sizeof kib[0]; ++i)
      try_size(ctx, q, k, kib[i] * 1024, cus);
    try_size(ctx, q, k, 100 * 1024, 2 * (size_t)cus);
    try_size(ctx, q, k, 48 * 1024, 4 * (size_t)cus);
    clReleaseKernel(k);
    clReleaseProgram(prog);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    return 0;
  }
  printf("no NVIDIA GPU platform\n");
  return 1;
}
