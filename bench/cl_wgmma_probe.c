/* Probe (not part of the library): can an OpenCL program on NVIDIA's driver run wgmma?
 * wgmma exists only for sm_90a, and NVIDIA's OpenCL compiler emits PTX for the plain target.
 * Three routes are tried on one warpgroup's m64n8k8 TF32 product (A from registers, B from
 * local memory through a descriptor), each checked bit-exactly against the host:
 *   source    clBuildProgram with the wgmma inline PTX, no options
 *   nv-arch   the same with "-cl-nv-arch sm_90a" (an undocumented NVIDIA option)
 *   ptx-patch build with the wgmma lines as PTX comments, read the program's PTX back, turn
 *             the comments into instructions and the target into sm_90a, and load the result
 *             with clCreateProgramWithBinary (NVIDIA's program binaries are PTX text)
 * It also checks that a __local pointer cast to an integer is a shared-window address (what
 * a wgmma descriptor needs).
 *   cc -O2 -std=c11 -o cl_wgmma_probe bench/cl_wgmma_probe.c -lOpenCL && ./cl_wgmma_probe */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char kernel_source[] =
    "#ifdef CFW_MARKERS\n"
    "#define CFW_FENCE \"// CFW_FENCE\\n\"\n"
    "#define CFW_COMMIT \"// CFW_COMMIT\\n\"\n"
    "#define CFW_WAIT \"// CFW_WAIT\\n\"\n"
    "#define CFW_MMA \"// CFW_MMA \"\n"
    "#else\n"
    "#define CFW_FENCE \"wgmma.fence.sync.aligned;\\n\"\n"
    "#define CFW_COMMIT \"wgmma.commit_group.sync.aligned;\\n\"\n"
    "#define CFW_WAIT \"wgmma.wait_group.sync.aligned 0;\\n\"\n"
    "#define CFW_MMA \"wgmma.mma_async.sync.aligned.m64n8k8.f32.tf32.tf32 \"\n"
    "#endif\n"
    "__kernel __attribute__((reqd_work_group_size(128, 1, 1))) void\n"
    "probe_wgmma(__global const float *a, __global const float *b, __global float *d) {\n"
    "  __local float bs[64] __attribute__((aligned(128)));\n"
    "  const int t = (int)get_local_id(0), w = t >> 5, g = (t & 31) >> 2, c = t & 3;\n"
    "  if (t < 64) {\n"
    "    const int n = t >> 3, k = t & 7;\n"
    "    bs[(k >> 2) * 32 + n * 4 + (k & 3)] = b[k * 8 + n];\n"
    "  }\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  const uint addr = (uint)(size_t)bs;\n"
    "  float seen;\n"
    "  asm volatile(\"ld.shared.f32 %0, [%1];\" : \"=f\"(seen) : \"r\"(addr + 4u * (uint)(t & 63)));\n"
    "  d[512 + t] = (seen == bs[t & 63]) ? 1.0f : 0.0f;\n"
    "  asm volatile(\"fence.proxy.async.shared::cta;\" ::: \"memory\");\n"
    "  const int r0 = 16 * w + g, r1 = r0 + 8;\n"
    "  const uint a0 = as_uint(a[r0 * 8 + c]), a1 = as_uint(a[r1 * 8 + c]);\n"
    "  const uint a2 = as_uint(a[r0 * 8 + c + 4]), a3 = as_uint(a[r1 * 8 + c + 4]);\n"
    "  const ulong desc = (ulong)((addr >> 4) & 0x3FFFu) | ((ulong)(128u >> 4) << 16) |\n"
    "                     ((ulong)(256u >> 4) << 32);\n"
    "  float d0 = 1.0f, d1 = 1.0f, d2 = 1.0f, d3 = 1.0f;\n"
    "  asm volatile(CFW_FENCE ::: \"memory\");\n"
    "  asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %9, 0;\\n\" CFW_MMA\n"
    "               \"{%0, %1, %2, %3}, {%4, %5, %6, %7}, %8, p, 1, 1;\\n}\\n\"\n"
    "               : \"+f\"(d0), \"+f\"(d1), \"+f\"(d2), \"+f\"(d3)\n"
    "               : \"r\"(a0), \"r\"(a1), \"r\"(a2), \"r\"(a3), \"l\"(desc), \"r\"(1));\n"
    "  asm volatile(CFW_COMMIT ::: \"memory\");\n"
    "  asm volatile(CFW_WAIT ::: \"memory\");\n"
    "  d[r0 * 8 + 2 * c] = d0;\n"
    "  d[r0 * 8 + 2 * c + 1] = d1;\n"
    "  d[r1 * 8 + 2 * c] = d2;\n"
    "  d[r1 * 8 + 2 * c + 1] = d3;\n"
    "}\n";

enum { A_FLOATS = 64 * 8, B_FLOATS = 8 * 8, D_FLOATS = 512 + 128 };

#define CL_OK(call, what)                                                                          \
  do {                                                                                             \
    cl_int e_ = (call);                                                                            \
    if (e_ != CL_SUCCESS) {                                                                        \
      printf("  %s failed: %d\n", what, (int)e_);                                                 \
      goto out;                                                                                    \
    }                                                                                              \
  } while (0)

static void print_log(cl_program prog, cl_device_id dev) {
  size_t n = 0;
  if (clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) != CL_SUCCESS || n < 2)
    return;
  char *log = malloc(n + 1);
  if (!log)
    return;
  if (clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS) {
    log[n] = '\0';
    printf("  build log (first 1200 chars):\n%.1200s\n", log);
  }
  free(log);
}

/* Exact products: A and B hold small multiples of 1/2, every sum exact in fp32; D starts at 1. */
static void make_data(float *a, float *b, float *want) {
  for (int i = 0; i < 64; ++i)
    for (int k = 0; k < 8; ++k)
      a[i * 8 + k] = (float)((i * 3 + k * 5) % 9 - 4) + 0.5f * (float)((i + k) % 2);
  for (int k = 0; k < 8; ++k)
    for (int n = 0; n < 8; ++n)
      b[k * 8 + n] = (float)((k * 7 + n * 3) % 11 - 5) + 0.5f * (float)((k * n) % 2);
  for (int i = 0; i < 64; ++i)
    for (int n = 0; n < 8; ++n) {
      double acc = 1.0;
      for (int k = 0; k < 8; ++k)
        acc += (double)a[i * 8 + k] * (double)b[k * 8 + n];
      want[i * 8 + n] = (float)acc;
    }
}

static void run_and_check(cl_context ctx, cl_command_queue q, cl_program prog) {
  float a[A_FLOATS], b[B_FLOATS], want[512], got[D_FLOATS];
  cl_kernel k = NULL;
  cl_mem ma = NULL, mb = NULL, md = NULL;
  cl_int err;
  make_data(a, b, want);
  for (int i = 0; i < D_FLOATS; ++i)
    got[i] = -12345.0f;
  k = clCreateKernel(prog, "probe_wgmma", &err);
  CL_OK(err, "clCreateKernel");
  ma = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof a, a, &err);
  CL_OK(err, "clCreateBuffer a");
  mb = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof b, b, &err);
  CL_OK(err, "clCreateBuffer b");
  md = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof got, got, &err);
  CL_OK(err, "clCreateBuffer d");
  CL_OK(clSetKernelArg(k, 0, sizeof ma, &ma), "clSetKernelArg");
  CL_OK(clSetKernelArg(k, 1, sizeof mb, &mb), "clSetKernelArg");
  CL_OK(clSetKernelArg(k, 2, sizeof md, &md), "clSetKernelArg");
  size_t global = 128, local = 128;
  CL_OK(clEnqueueNDRangeKernel(q, k, 1, NULL, &global, &local, 0, NULL, NULL), "clEnqueueNDRange");
  CL_OK(clEnqueueReadBuffer(q, md, CL_TRUE, 0, sizeof got, got, 0, NULL, NULL), "clEnqueueRead");
  int addr_ok = 0, wrong = 0, first = -1;
  for (int i = 0; i < 128; ++i)
    addr_ok += got[512 + i] == 1.0f;
  for (int i = 0; i < 512; ++i)
    if (memcmp(&got[i], &want[i], 4) != 0 && wrong++ == 0)
      first = i;
  printf("  ran: shared-window address check %d/128, wgmma result %s", addr_ok,
         wrong ? "WRONG" : "exact (512/512)");
  if (wrong)
    printf(" (%d wrong, first [%d] %g want %g)", wrong, first, (double)got[first],
           (double)want[first]);
  printf("\n");
out:
  if (md)
    clReleaseMemObject(md);
  if (mb)
    clReleaseMemObject(mb);
  if (ma)
    clReleaseMemObject(ma);
  if (k)
    clReleaseKernel(k);
}

static cl_program build_source(cl_context ctx, cl_device_id dev, const char *options) {
  const char *src = kernel_source;
  size_t len = sizeof kernel_source - 1;
  cl_int err;
  cl_program prog = clCreateProgramWithSource(ctx, 1, &src, &len, &err);
  if (err != CL_SUCCESS)
    return NULL;
  err = clBuildProgram(prog, 1, &dev, options, NULL, NULL);
  printf("  clBuildProgram(\"%s\") = %d\n", options, (int)err);
  if (err != CL_SUCCESS) {
    print_log(prog, dev);
    clReleaseProgram(prog);
    return NULL;
  }
  return prog;
}

/* Replaces every occurrence of from by to in text (a fresh string). */
static char *replace_all(const char *text, const char *from, const char *to) {
  size_t n = 0, lf = strlen(from), lt = strlen(to);
  for (const char *p = strstr(text, from); p; p = strstr(p + lf, from))
    ++n;
  char *out = malloc(strlen(text) + n * (lt > lf ? lt - lf : 0) + 1);
  if (!out)
    return NULL;
  char *o = out;
  for (const char *p = text;;) {
    const char *hit = strstr(p, from);
    if (!hit) {
      strcpy(o, p);
      break;
    }
    memcpy(o, p, (size_t)(hit - p));
    o += hit - p;
    memcpy(o, to, lt);
    o += lt;
    p = hit + lf;
  }
  return out;
}

static void print_header_lines(const char *ptx) {
  int n_lines = 0;
  for (const char *p = ptx; *p;) {
    const char *e = strchr(p, '\n');
    const size_t n = e ? (size_t)(e - p) : strlen(p);
    char line[200];
    snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line - 1 ? n : sizeof line - 1), p);
    const int wanted = !strncmp(line, ".version", 8) || !strncmp(line, ".target", 7) ||
                       strstr(line, "CFW_") || strstr(line, "wgmma.");
    if (wanted && n_lines++ < 12)
      printf("    | %s\n", line);
    if (!e)
      break;
    p = e + 1;
  }
}

static void route_ptx_patch(cl_context ctx, cl_device_id dev, cl_command_queue q) {
  cl_program prog = build_source(ctx, dev, "-DCFW_MARKERS");
  cl_program patched = NULL;
  char *ptx = NULL, *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL, *s5 = NULL;
  if (!prog)
    return;
  size_t size = 0;
  cl_int err;
  CL_OK(clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL),
        "CL_PROGRAM_BINARY_SIZES");
  ptx = calloc(size + 1, 1);
  if (!ptx)
    goto out;
  CL_OK(clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof ptx, &ptx, NULL), "CL_PROGRAM_BINARIES");
  printf("  program binary: %zu bytes; its PTX header and marker lines:\n", size);
  print_header_lines(ptx);
  s1 = replace_all(ptx, "// CFW_FENCE", "wgmma.fence.sync.aligned;");
  s2 = s1 ? replace_all(s1, "// CFW_COMMIT", "wgmma.commit_group.sync.aligned;") : NULL;
  s3 = s2 ? replace_all(s2, "// CFW_WAIT", "wgmma.wait_group.sync.aligned 0;") : NULL;
  s4 = s3 ? replace_all(s3, "// CFW_MMA ", "wgmma.mma_async.sync.aligned.m64n8k8.f32.tf32.tf32 ")
          : NULL;
  s5 = s4 ? replace_all(s4, ".target sm_90,", ".target sm_90a,") : NULL;
  if (!s5)
    goto out;
  printf("  patched PTX:\n");
  print_header_lines(s5);
  const size_t len = strlen(s5) + 1;
  const unsigned char *bin = (const unsigned char *)s5;
  cl_int status = CL_SUCCESS;
  patched = clCreateProgramWithBinary(ctx, 1, &dev, &len, &bin, &status, &err);
  printf("  clCreateProgramWithBinary = %d (binary status %d)\n", (int)err, (int)status);
  if (err != CL_SUCCESS) {
    patched = NULL;
    goto out;
  }
  err = clBuildProgram(patched, 1, &dev, "", NULL, NULL);
  printf("  clBuildProgram(binary) = %d\n", (int)err);
  if (err != CL_SUCCESS) {
    print_log(patched, dev);
    goto out;
  }
  run_and_check(ctx, q, patched);
out:
  free(s5);
  free(s4);
  free(s3);
  free(s2);
  free(s1);
  free(ptx);
  if (patched)
    clReleaseProgram(patched);
  clReleaseProgram(prog);
}

int main(void) {
  cl_platform_id plats[8];
  cl_uint np = 0;
  if (clGetPlatformIDs(8, plats, &np) != CL_SUCCESS || np == 0) {
    printf("cl_wgmma_probe: no OpenCL platform\n");
    return 1;
  }
  for (cl_uint p = 0; p < np; ++p) {
    char name[256] = "", dname[256] = "", dver[256] = "";
    clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof name, name, NULL);
    cl_device_id dev;
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_GPU, 1, &dev, NULL) != CL_SUCCESS)
      continue;
    clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof dname, dname, NULL);
    clGetDeviceInfo(dev, CL_DRIVER_VERSION, sizeof dver, dver, NULL);
    printf("platform %s, device %s, driver %s\n", name, dname, dver);
    cl_int err;
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    if (err != CL_SUCCESS)
      continue;
    cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &err);
    if (err == CL_SUCCESS) {
      static const char *const options[2] = {"", "-cl-nv-arch sm_90a"};
      for (int i = 0; i < 2; ++i) {
        printf("route %s:\n", i ? "nv-arch" : "source");
        cl_program prog = build_source(ctx, dev, options[i]);
        if (prog) {
          run_and_check(ctx, q, prog);
          clReleaseProgram(prog);
        }
      }
      printf("route ptx-patch:\n");
      route_ptx_patch(ctx, dev, q);
      clReleaseCommandQueue(q);
    }
    clReleaseContext(ctx);
  }
  return 0;
}
