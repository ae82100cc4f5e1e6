/* Probe (not part of the library): mish-mish on wgmma from OpenCL C (bench/cl_wgmma_mm.cl),
 * checked against a double-precision reference on sampled outputs and timed by OpenCL events.
 * bench/NOTES.md v69 says why and what it measured.
 *   cc -O2 -std=c11 -I. -o cl_wgmma_mm_probe bench/cl_wgmma_mm_probe.c \
 *      backends/opencl/ptx_patch.c -lOpenCL -lm
 *   ./cl_wgmma_mm_probe [mode 0|1|2] [register cap, 0: none] [iterations]
 * mode (the kernel's MODE): 0 one TF32 product, 1 one fp16 product (both checked to the TF32
 * tolerance), 2 fp16 pairs (checked to the FP32 tolerance).
 * Run from the project root (it reads bench/cl_wgmma_mm.cl). Prints the build (registers as
 * the driver reports them), the check (worst |err| / tolerance, relative L2, unwritten outputs)
 * and the median time of the runs after three warm-ups. */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/ptx_patch.h"

enum { BATCH = 64, C_IN = 64, H = 256, W = 256, K_OUT = 128, P = 254, Q = 254, B_BYTES = 12288 };
#define IN_FLOATS ((size_t)BATCH * C_IN * H * W)
#define OUT_FLOATS ((size_t)BATCH * K_OUT * P * Q)

#define CL_TRY(call, what)                                                                         \
  do {                                                                                             \
    cl_int e_ = (call);                                                                            \
    if (e_ != CL_SUCCESS) {                                                                        \
      fprintf(stderr, "%s failed: %d\n", what, (int)e_);                                          \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float uniform01(void) { /* xorshift64*, 24 bits */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (float)((rng_state * 0x2545F4914F6CDD1Dull) >> 40) * (1.0f / 16777216.0f);
}

static char *read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s (run from the project root)\n", path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  const long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (!s || fread(s, 1, (size_t)n, f) != (size_t)n)
    exit(1);
  s[n] = '\0';
  fclose(f);
  *len = (size_t)n;
  return s;
}

/* Every occurrence of from replaced by to (a fresh string). */
static char *replace_all(const char *text, const char *from, const char *to) {
  size_t n = 0;
  const size_t lf = strlen(from), lt = strlen(to);
  for (const char *p = strstr(text, from); p; p = strstr(p + lf, from))
    ++n;
  char *out = malloc(strlen(text) + n * (lt > lf ? lt - lf : 0) + 1), *o = out;
  if (!out)
    exit(1);
  for (const char *p = text;;) {
    const char *hit = strstr(p, from);
    if (!hit) {
      strcpy(o, p);
      return out;
    }
    memcpy(o, p, (size_t)(hit - p));
    o += hit - p;
    memcpy(o, to, lt);
    o += lt;
    p = hit + lf;
  }
}

static void print_log(cl_program prog, cl_device_id dev) {
  size_t n = 0;
  clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
  char *log = calloc(n + 1, 1);
  if (log && clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS)
    fprintf(stderr, "build log:\n%.3000s\n", log);
  free(log);
}

/* The kernel built with its wgmma markers, its PTX patched (markers deleted, sm_90a, the
 * register cap) and rebuilt from that. */
static cl_program build(cl_context ctx, cl_device_id dev, int mode, int max_regs) {
  size_t len;
  char *src = read_text("bench/cl_wgmma_mm.cl", &len);
  cl_int err;
  const char *srcs[1] = {src};
  cl_program prog = clCreateProgramWithSource(ctx, 1, srcs, &len, &err);
  CL_TRY(err, "clCreateProgramWithSource");
  char options[64];
  snprintf(options, sizeof options, "-DMODE=%d", mode);
  if (clBuildProgram(prog, 1, &dev, options, NULL, NULL) != CL_SUCCESS) {
    print_log(prog, dev);
    exit(1);
  }
  size_t size = 0;
  CL_TRY(clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL), "sizes");
  char *ptx = calloc(size + 1, 1);
  CL_TRY(clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof ptx, &ptx, NULL), "binaries");
  char *s1 = replace_all(ptx, "// CFWG ", "");
  char *s2 = replace_all(s1, ".target sm_90,", ".target sm_90a,");
  if (strstr(s2, "CFWG") || !strstr(s2, "sm_90a")) {
    fprintf(stderr, "the PTX patch missed (markers left or no sm_90 target)\n");
    exit(1);
  }
  char *patched = s2;
  size_t plen = strlen(s2);
  if (max_regs > 0) {
    patched = cf_ptx_with_max_registers(s2, plen, max_regs, &plen);
    if (!patched) {
      fprintf(stderr, "no register cap could be set\n");
      exit(1);
    }
  }
  char dump_name[64];
  snprintf(dump_name, sizeof dump_name, "/tmp/cl_wgmma_mm_mode%d.ptx", mode);
  FILE *dump = fopen(dump_name, "w");
  if (dump) {
    fputs(patched, dump);
    fclose(dump);
  }
  const size_t blen = plen + 1;
  const unsigned char *bin = (const unsigned char *)patched;
  cl_int status;
  cl_program out = clCreateProgramWithBinary(ctx, 1, &dev, &blen, &bin, &status, &err);
  CL_TRY(err, "clCreateProgramWithBinary");
  if (clBuildProgram(out, 1, &dev, "-cl-nv-verbose", NULL, NULL) != CL_SUCCESS) {
    print_log(out, dev);
    exit(1);
  }
  print_log(out, dev); /* ptxas's warnings, if any */
  if (patched != s2)
    free(patched);
  free(s2);
  free(s1);
  free(ptx);
  free(src);
  clReleaseProgram(prog);
  return out;
}

static uint16_t to_half(float x) { /* round to nearest even; finite values in range only */
  uint32_t u;
  memcpy(&u, &x, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const int e = (int)((u >> 23) & 0xFF) - 127 + 15;
  uint32_t m = u & 0x7FFFFFu;
  if (e <= 0) { /* subnormal half */
    if (e < -10)
      return (uint16_t)sign;
    m |= 0x800000u;
    const int shift = 14 - e;
    uint32_t h = m >> shift;
    const uint32_t rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1)))
      ++h;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)e << 10) | (m >> 13);
  const uint32_t rest = m & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1)))
    ++h;
  return (uint16_t)(sign | h);
}

static float half_to_float(uint16_t h) {
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  const float v = e ? ldexpf((float)(m | 0x400), e - 25) : ldexpf((float)m, -24);
  return (h & 0x8000) ? -v : v;
}

/* Chunk j = (channel group cg, kernel row r) of CH channels, for channel tile nt of BN: B(n, k =
 * s CH + c) = w[nt BN + n][cg CH + c][r][s] at byte (k / KV) 16 BN + (n / 8) 128 + (n % 8) 16 +
 * (k % KV) esize (wgmma's K-major core matrices); pairs: hi, then lo 6144 bytes on, of the
 * weights scaled per channel by 2^scale_exp[channel]. */
static void lay_out_weights(const float *w, const int *scale_exp, unsigned char *wl, int mode) {
  const int ch = mode ? 16 : 8, kv = mode ? 8 : 4, es = mode ? 2 : 4, nchunk = 3 * C_IN / ch;
  const int bn = mode == 2 ? 64 : 128;
  for (int nt = 0; nt < K_OUT / bn; ++nt)
    for (int j = 0; j < nchunk; ++j) {
      const int cg = j / 3, r = j % 3;
      unsigned char *blk = wl + ((size_t)nt * nchunk + j) * B_BYTES;
      for (int n = 0; n < bn; ++n)
        for (int k = 0; k < 3 * ch; ++k) {
          const int s = k / ch, c = k % ch, ko = nt * bn + n;
          const float v = w[((ko * C_IN + cg * ch + c) * 3 + r) * 3 + s];
          unsigned char *at =
              blk + (k / kv) * 16 * bn + (n / 8) * 128 + (n % 8) * 16 + (k % kv) * es;
          if (mode == 2) {
            const float scaled = ldexpf(v, scale_exp[ko]);
            const uint16_t hi = to_half(scaled);
            const uint16_t lo = to_half(scaled - half_to_float(hi));
            memcpy(at, &hi, 2);
            memcpy(at + 6144, &lo, 2);
          } else if (mode == 1) {
            const uint16_t h = to_half(v);
            memcpy(at, &h, 2);
          } else {
            memcpy(at, &v, 4);
          }
        }
    }
}

static double mish_ref(double x) { return x * tanh(log1p(exp(x))); }

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  const int mode = argc > 1 ? atoi(argv[1]) : 0, max_regs = argc > 2 ? atoi(argv[2]) : 128;
  if (mode < 0 || mode > 2) {
    fprintf(stderr, "mode is 0 (TF32), 1 (fp16) or 2 (fp16 pairs)\n");
    return 1;
  }
  const int iters = argc > 3 ? atoi(argv[3]) : 30;
  cl_platform_id plats[8];
  cl_uint n_plats = 0;
  cl_device_id dev = NULL;
  CL_TRY(clGetPlatformIDs(8, plats, &n_plats), "clGetPlatformIDs");
  for (cl_uint i = 0; i < n_plats && !dev; ++i) /* the first platform with a GPU (not PoCL) */
    if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_GPU, 1, &dev, NULL) != CL_SUCCESS)
      dev = NULL;
  if (!dev) {
    fprintf(stderr, "no OpenCL GPU\n");
    return 1;
  }
  char name[256] = "";
  clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL);
  cl_int err;
  cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  CL_TRY(err, "clCreateContext");
  cl_command_queue q = clCreateCommandQueue(ctx, dev, CL_QUEUE_PROFILING_ENABLE, &err);
  CL_TRY(err, "clCreateCommandQueue");
  cl_program prog = build(ctx, dev, mode, max_regs);
  cl_kernel k = clCreateKernel(prog, "mm_wgmma", &err);
  CL_TRY(err, "clCreateKernel");
  size_t local_bytes = 0;
  clGetKernelWorkGroupInfo(k, dev, CL_KERNEL_LOCAL_MEM_SIZE, sizeof local_bytes, &local_bytes, NULL);

  float *in = malloc(IN_FLOATS * 4), *w = malloc((size_t)K_OUT * C_IN * 9 * 4);
  float *bias = malloc(K_OUT * 4), *out = malloc(OUT_FLOATS * 4);
  const size_t wl_bytes = (size_t)3 * C_IN / (mode ? 16 : 8) * B_BYTES * (mode == 2 ? 2 : 1);
  unsigned char *wl = calloc(wl_bytes, 1);
  float unscale[K_OUT];
  int scale_exp[K_OUT];
  if (!in || !w || !bias || !out || !wl)
    return 1;
  const float bound = 1.0f / sqrtf((float)(C_IN * 9)); /* PyTorch's default conv init range */
  for (size_t i = 0; i < IN_FLOATS; ++i)
    in[i] = uniform01();
  for (int i = 0; i < K_OUT * C_IN * 9; ++i)
    w[i] = (2.0f * uniform01() - 1.0f) * bound;
  for (int i = 0; i < K_OUT; ++i)
    bias[i] = (2.0f * uniform01() - 1.0f) * bound;
  for (int ko = 0; ko < K_OUT; ++ko) { /* the channel's largest weight into [2^14, 2^15) */
    float big = 0;
    for (int i = 0; i < C_IN * 9; ++i)
      big = fmaxf(big, fabsf(w[ko * C_IN * 9 + i]));
    int e;
    frexpf(big, &e); /* big = f 2^e, f in [0.5, 1) */
    scale_exp[ko] = 15 - e;
    unscale[ko] = ldexpf(1.0f, -(scale_exp[ko] + 6)); /* and the input's 2^6 */
  }
  lay_out_weights(w, scale_exp, wl, mode);

  cl_mem d_in = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, IN_FLOATS * 4, in, &err);
  CL_TRY(err, "buffer in");
  cl_mem d_wl = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, wl_bytes, wl, &err);
  CL_TRY(err, "buffer weights");
  cl_mem d_bias = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, K_OUT * 4, bias, &err);
  CL_TRY(err, "buffer bias");
  cl_mem d_unscale =
      clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, K_OUT * 4, unscale, &err);
  CL_TRY(err, "buffer unscale");
  cl_mem d_out = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, OUT_FLOATS * 4, NULL, &err);
  CL_TRY(err, "buffer out");
  const cl_uint nan_bits = 0x7FC00000u;
  CL_TRY(clEnqueueFillBuffer(q, d_out, &nan_bits, 4, 0, OUT_FLOATS * 4, 0, NULL, NULL), "poison");
  CL_TRY(clSetKernelArg(k, 0, sizeof d_in, &d_in), "arg");
  CL_TRY(clSetKernelArg(k, 1, sizeof d_wl, &d_wl), "arg");
  CL_TRY(clSetKernelArg(k, 2, sizeof d_bias, &d_bias), "arg");
  CL_TRY(clSetKernelArg(k, 3, sizeof d_unscale, &d_unscale), "arg");
  CL_TRY(clSetKernelArg(k, 4, sizeof d_out, &d_out), "arg");
  const size_t local = 256, global = (size_t)BATCH * P * 2 * 256 * (mode == 2 ? 2 : 1);
  CL_TRY(clEnqueueNDRangeKernel(q, k, 1, NULL, &global, &local, 0, NULL, NULL), "launch");
  CL_TRY(clEnqueueReadBuffer(q, d_out, CL_TRUE, 0, OUT_FLOATS * 4, out, 0, NULL, NULL), "read");

  size_t unwritten = 0;
  for (size_t i = 0; i < OUT_FLOATS; ++i)
    unwritten += isnan(out[i]) != 0;
  /* sampled outputs (every image edge among them) against a double reference */
  double worst = 0, err2 = 0, ref2 = 0;
  int bad = 0;
  const int samples = 20000;
  for (int i = 0; i < samples; ++i) {
    int n = (int)(uniform01() * BATCH), ko = (int)(uniform01() * K_OUT);
    int p = (int)(uniform01() * P), qq = (int)(uniform01() * Q);
    if (i % 10 == 0)
      qq = (int[]){0, 1, 126, 127, 128, 129, 252, 253}[i / 10 % 8];
    double acc = bias[ko];
    for (int c = 0; c < C_IN; ++c)
      for (int r = 0; r < 3; ++r)
        for (int s = 0; s < 3; ++s)
          acc += (double)w[((ko * C_IN + c) * 3 + r) * 3 + s] *
                 in[(((size_t)n * C_IN + c) * H + p + r) * W + qq + s];
    const double ref = mish_ref(mish_ref(acc));
    const double got = out[(((size_t)n * K_OUT + ko) * P + p) * Q + qq];
    const double e = fabs(got - ref), tol = mode == 2 ? 1e-4 + 1e-4 * fabs(ref) : 1e-2 + 1e-2 * fabs(ref);
    if (!(e <= tol) && bad++ < 5)
      printf("  wrong at n %d k %d p %d q %d: %.6g, want %.6g\n", n, ko, p, qq, got, ref);
    if (e / tol > worst || isnan(e))
      worst = isnan(e) ? INFINITY : e / tol;
    err2 += e * e;
    ref2 += ref * ref;
  }
  const double rel_l2 = sqrt(err2 / ref2);
  const int pass = bad == 0 && unwritten == 0 && rel_l2 <= (mode == 2 ? 1e-5 : 2e-3);

  double ms[256];
  const int n_runs = iters < 256 ? iters : 256;
  for (int i = 0; i < 3 + n_runs; ++i) {
    cl_event ev;
    CL_TRY(clEnqueueNDRangeKernel(q, k, 1, NULL, &global, &local, 0, NULL, &ev), "launch");
    CL_TRY(clWaitForEvents(1, &ev), "wait");
    cl_ulong t0, t1;
    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
    if (i >= 3)
      ms[i - 3] = (double)(t1 - t0) * 1e-6;
    clReleaseEvent(ev);
  }
  qsort(ms, (size_t)n_runs, sizeof ms[0], cmp_double);
  printf("%s %s cap %d: local %zu B; check %s (sampled %d, worst err/tol %.3f, rel-L2 %.2e, "
         "unwritten %zu); median %.3f ms (min %.3f, max %.3f, %d runs)\n",
         name, (const char *[]){"tf32", "fp16", "fp16 pairs"}[mode], max_regs, local_bytes, pass ? "PASS" : "FAIL", samples, worst,
         rel_l2, unwritten, ms[n_runs / 2], ms[0], ms[n_runs - 1], n_runs);
  clReleaseMemObject(d_out);
  clReleaseMemObject(d_unscale);
  clReleaseMemObject(d_bias);
  clReleaseMemObject(d_wl);
  clReleaseMemObject(d_in);
  clReleaseKernel(k);
  clReleaseProgram(prog);
  clReleaseCommandQueue(q);
  clReleaseContext(ctx);
  free(wl);
  free(out);
  free(bias);
  free(w);
  free(in);
  return pass ? 0 : 2;
}
