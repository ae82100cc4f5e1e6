/* Tool (not part of the library): runs the OpenCL tensor-core kernel's program, as NVIDIA's
 * OpenCL built it, under the CUDA driver API, so that Nsight Compute (which does not profile
 * OpenCL) can. NVIDIA's OpenCL program binaries are PTX text; convfuse's program cache keeps
 * them (backends/opencl/program_cache.h: a 32-byte header, the key, then the binary), the
 * register cap's .maxnreg included. The kernel (kernels_cl/conv2d_mma.cl) reads only local and
 * group ids and group counts; with the environment registers NVIDIA's OpenCL adds to those
 * rewritten (replace_envregs), the same launch geometry and arguments as the OpenCL
 * backend's reproduce its work.
 *
 *   cl_ptx_run <cache dir> sub-sub-mish|mish-mish [iterations]
 * picks the cache file whose PTX has the entry cf_conv2d_mma, not an fp16 plan's rerun (which
 * does nothing without its range guard set), and with CL_PTX_KEY set whose key holds that
 * text (e.g. "-DCFM_F16=1"), runs the workload at full size
 * with random inputs and prints the median time and a spot-check of 64 outputs against a
 * double-precision reference (so a profile is known to be of a kernel doing the real work).
 * The tile, warp tile and channels per chunk are read from the build options in the cache
 * file's key (-DCFM_BM= ...); the grid is the OpenCL backend's (MMA_GROUPS_PER_CU = 60 groups
 * per SM, spread over the channel tiles). An fp16 program (-DCFM_F16=1) gets its weights from
 * its own cf_f16_scale_weights, run once before the timed launches, as the backend's plan does
 * per call (not timed here); its range guard is read back and printed.
 *   cc -O2 -std=c11 -I. -I/usr/local/cuda/include -o cl_ptx_run bench/cl_ptx_run.c \
 *      -L/usr/local/cuda/lib64/stubs -lcuda -lm */
#define _POSIX_C_SOURCE 200809L
#include <cuda.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fastdiv.h"

#define CU_OK(call)                                                                                \
  do {                                                                                             \
    CUresult r_ = (call);                                                                          \
    if (r_ != CUDA_SUCCESS) {                                                                      \
      const char *n_ = NULL;                                                                       \
      cuGetErrorName(r_, &n_);                                                                     \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, n_ ? n_ : "?");      \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

/* The PTX of the first cache file in dir that holds the entry cf_conv2d_mma (malloc'd), and in
 * *key (malloc'd) the file's key, which holds the program's build options. */
static char *load_kernel_ptx(const char *dir, const char *want, char **key) {
  DIR *d = opendir(dir);
  if (!d) {
    perror(dir);
    return NULL;
  }
  char *found = NULL;
  for (struct dirent *e; !found && (e = readdir(d));) {
    if (!strstr(e->d_name, ".clbin"))
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f)
      continue;
    unsigned char hdr[32];
    if (fread(hdr, 1, 32, f) == 32 && memcmp(hdr, "CFCLPROG", 8) == 0) {
      uint32_t key_len = 0;
      uint64_t bin_len = 0;
      for (int i = 0; i < 4; ++i)
        key_len |= (uint32_t)hdr[12 + i] << (8 * i);
      for (int i = 0; i < 8; ++i)
        bin_len |= (uint64_t)hdr[16 + i] << (8 * i);
      char *ptx = bin_len < (1u << 26) ? malloc(bin_len + 1) : NULL;
      char *k = key_len < (1u << 16) ? malloc(key_len + 1) : NULL;
      if (ptx && k && fread(k, 1, key_len, f) == key_len && fread(ptx, 1, bin_len, f) == bin_len) {
        ptx[bin_len] = '\0';
        k[key_len] = '\0';
        if (strstr(ptx, ".entry cf_conv2d_mma") && !strstr(k, "-DCFM_RERUN=1") &&
            (!want || strstr(k, want))) {
          found = ptx;
          *key = k;
          printf("kernel PTX from %s (%llu bytes)\n", path, (unsigned long long)bin_len);
        }
      }
      if (!found) {
        free(ptx);
        free(k);
      }
    }
    fclose(f);
  }
  closedir(d);
  return found;
}

/* The value of build option -D<name>=<int> in key; -1 where it is missing. */
static int option_int(const char *key, const char *name) {
  char pat[64];
  snprintf(pat, sizeof pat, "-D%s=", name);
  const char *p = strstr(key, pat);
  return p ? atoi(p + strlen(pat)) : -1;
}

/* NVIDIA's OpenCL reads some work-item functions from environment registers the CUDA driver
 * does not set: get_group_id(d) = %envreg<d> (an offset for NDRanges split into several
 * launches) + %ctaid, get_global_offset(d) = %envreg<3 + d>, get_num_groups(d) =
 * %envreg<6 + d>. Returns a copy of ptx (malloc'd) where each `mov.b32 %rN, %envregK;` moves
 * the value a single launch has instead: 0 for the offsets, %nctaid for the group counts;
 * NULL if the PTX reads an environment register in any other way. */
static char *replace_envregs(const char *ptx) {
  static const char *value[9] = {"0", "0", "0", "0", "0", "0", "%nctaid.x", "%nctaid.y",
                                 "%nctaid.z"};
  char *out = malloc(2 * strlen(ptx) + 1); /* each rewrite is at most a few bytes longer */
  if (!out)
    return NULL;
  size_t o = 0;
  for (const char *line = ptx; *line;) {
    const char *end = strchr(line, '\n');
    const size_t len = end ? (size_t)(end - line + 1) : strlen(line);
    const char *reg = memchr(line, '%', len) ? strstr(line, "%envreg") : NULL;
    if (reg && reg < line + len) {
      char dst[64];
      const int k = atoi(reg + 7);
      if (k < 0 || k > 8 || sscanf(line, " mov.b32 %63[^,], %%envreg", dst) != 1) {
        fprintf(stderr, "unexpected environment register use: %.*s", (int)len, line);
        free(out);
        return NULL;
      }
      o += (size_t)sprintf(out + o, "\tmov.u32 %s, %s;\n", dst, value[k]);
    } else {
      memcpy(out + o, line, len);
      o += len;
    }
    line += len;
  }
  out[o] = '\0';
  return out;
}

typedef struct workload {
  const char *name;
  int n, c, h, w, k;
  float shift; /* folded into the bias: sub-sub-mish's x - 0.5 - 0.2 */
  int mish_count;
} workload;

static const workload workloads[] = {{"sub-sub-mish", 128, 8, 256, 256, 64, -0.7f, 1},
                                     {"mish-mish", 64, 64, 256, 256, 128, 0.0f, 2}};

static double mish(double x) { return x * tanh(log1p(exp(x))); }

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float uniform(void) { /* [-1, 1) */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int cmp_float(const void *a, const void *b) {
  const float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <cache dir> sub-sub-mish|mish-mish [iterations]\n", argv[0]);
    return 2;
  }
  const workload *wl = NULL;
  for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; ++i)
    if (strcmp(argv[2], workloads[i].name) == 0)
      wl = &workloads[i];
  if (!wl) {
    fprintf(stderr, "unknown workload %s\n", argv[2]);
    return 2;
  }
  const int iters = argc > 3 ? atoi(argv[3]) : 20;
  char *key = NULL;
  char *ptx = load_kernel_ptx(argv[1], getenv("CL_PTX_KEY"), &key);
  if (!ptx) {
    fprintf(stderr, "no cache file with cf_conv2d_mma in %s\n", argv[1]);
    return 1;
  }
  char *raw = ptx;
  if (!(ptx = replace_envregs(raw)))
    return 1;
  free(raw);
  const char *dump = getenv("CL_PTX_DUMP"); /* a path: the PTX is written there too */
  if (dump) {
    FILE *f = fopen(dump, "w");
    if (f) {
      fputs(ptx, f);
      fclose(f);
    }
  }
  const int BM = option_int(key, "CFM_BM"), BN = option_int(key, "CFM_BN");
  const int WM = option_int(key, "CFM_WM"), WN = option_int(key, "CFM_WN");
  const int cc = option_int(key, "CFM_CC"), kcp = option_int(key, "CFM_KCP");
  const int f16 = option_int(key, "CFM_F16") == 1;
  if (BM <= 0 || BN <= 0 || WM <= 0 || WN <= 0 || cc <= 0 || (f16 && kcp <= 0)) {
    fprintf(stderr, "the cache key lacks the tile options (-DCFM_BM/BN/WM/WN/CC, and KCP for "
                    "fp16): %s\n", key);
    return 1;
  }
  const int threads = 32 * (BM / WM) * (BN / WN);
  const int R = 3, S = 3, P = wl->h - R + 1, Q = wl->w - S + 1;
  const int q_tiles = (Q + BM - 1) / BM, grid_n = (wl->k + BN - 1) / BN;
  const int m_tiles = wl->n * P * q_tiles, n_chunks = (wl->c + cc - 1) / cc;

  CU_OK(cuInit(0));
  CUdevice dev;
  CUcontext ctx;
  CU_OK(cuDeviceGet(&dev, 0));
  CU_OK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CU_OK(cuCtxSetCurrent(ctx));
  int sms = 0;
  CU_OK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
  int groups_m = sms * 60 / grid_n;
  if (groups_m > m_tiles)
    groups_m = m_tiles;

  CUmodule mod;
  char log[8192] = "";
  CUjit_option opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *vals[2] = {log, (void *)(uintptr_t)sizeof log};
  if (cuModuleLoadDataEx(&mod, ptx, 2, opts, vals) != CUDA_SUCCESS) {
    fprintf(stderr, "cuModuleLoadDataEx failed:\n%s\n", log);
    return 1;
  }
  CUfunction fn;
  CU_OK(cuModuleGetFunction(&fn, mod, "cf_conv2d_mma"));
  int regs = 0, smem = 0;
  CU_OK(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, fn));
  CU_OK(cuFuncGetAttribute(&smem, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, fn));
  int per_sm = 0;
  CU_OK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, threads, 0));
  printf("%s: %d registers, %d B shared, %d groups per SM; grid %d x %d of %d, %d chunks\n",
         wl->name, regs, smem, per_sm, groups_m, grid_n, threads, n_chunks);

  const size_t in_n = (size_t)wl->n * wl->c * wl->h * wl->w;
  const size_t w_n = (size_t)wl->k * wl->c * R * S, out_n = (size_t)wl->n * wl->k * P * Q;
  float *h_in = malloc(in_n * 4), *h_w = malloc(w_n * 4), *h_b = malloc((size_t)wl->k * 4);
  float *h_out = malloc(out_n * 4);
  if (!h_in || !h_w || !h_b || !h_out)
    return 1;
  for (size_t i = 0; i < in_n; ++i)
    h_in[i] = uniform();
  const float ws = 1.0f / sqrtf((float)(wl->c * R * S));
  for (size_t i = 0; i < w_n; ++i)
    h_w[i] = uniform() * ws;
  for (int i = 0; i < wl->k; ++i)
    h_b[i] = uniform() * 0.1f;
  CUdeviceptr d_in, d_w, d_b, d_out;
  CU_OK(cuMemAlloc(&d_in, in_n * 4));
  CU_OK(cuMemAlloc(&d_w, w_n * 4));
  CU_OK(cuMemAlloc(&d_b, (size_t)wl->k * 4));
  CU_OK(cuMemAlloc(&d_out, out_n * 4));
  CU_OK(cuMemcpyHtoD(d_in, h_in, in_n * 4));
  CU_OK(cuMemcpyHtoD(d_w, h_w, w_n * 4));
  CU_OK(cuMemcpyHtoD(d_b, h_b, (size_t)wl->k * 4));
  CU_OK(cuMemsetD32(d_out, 0x7fc00000u, out_n)); /* NaN: a missed output fails the check */

  int ints[13] = {wl->c, wl->h, wl->w, wl->k, P, Q, 1, 0, 0, 1, n_chunks, q_tiles, m_tiles};
  const cf_fastdiv by_q_tiles = cf_fastdiv_make(q_tiles), by_p = cf_fastdiv_make(P);
  unsigned divs[4] = {by_q_tiles.mul, by_q_tiles.shift, by_p.mul, by_p.shift};
  /* fp16: the weights scaled and packed by the program's own kernel, its unscale factors and
   * range guard as the two trailing arguments (NULL for the others) */
  CUdeviceptr d_packed = 0, d_unscale = 0, d_guard = 0;
  if (f16) {
    CUfunction scale;
    CU_OK(cuModuleGetFunction(&scale, mod, "cf_f16_scale_weights"));
    CU_OK(cuMemAlloc(&d_packed, (size_t)wl->k * n_chunks * kcp * 4));
    CU_OK(cuMemAlloc(&d_unscale, (size_t)wl->k * 4));
    CU_OK(cuMemAlloc(&d_guard, 4));
    CU_OK(cuMemsetD32(d_guard, 0, 1));
    int crs = wl->c * R * S, chunks = n_chunks;
    void *sargs[5] = {&d_w, &d_packed, &d_unscale, &crs, &chunks};
    CU_OK(cuLaunchKernel(scale, (unsigned)wl->k, 1, 1, 64, 1, 1, 0, 0, sargs, NULL));
    CU_OK(cuCtxSynchronize());
  }
  float shift = wl->shift, epi[8] = {0};
  void *args[4 + 13 + 4 + 1 + 8 + 2];
  args[0] = &d_in;
  args[1] = f16 ? &d_packed : &d_w;
  args[2] = &d_b;
  args[3] = &d_out;
  for (int i = 0; i < 13; ++i)
    args[4 + i] = &ints[i];
  for (int i = 0; i < 4; ++i)
    args[17 + i] = &divs[i];
  args[21] = &shift;
  for (int i = 0; i < 8; ++i)
    args[22 + i] = &epi[i];
  args[30] = &d_unscale;
  args[31] = &d_guard;

  CUevent e0, e1;
  CU_OK(cuEventCreate(&e0, 0));
  CU_OK(cuEventCreate(&e1, 0));
  float *ms = malloc(sizeof(float) * (size_t)(iters > 0 ? iters : 1));
  for (int it = -2; it < iters; ++it) {
    CU_OK(cuEventRecord(e0, 0));
    CU_OK(cuLaunchKernel(fn, (unsigned)groups_m, (unsigned)grid_n, 1, (unsigned)threads, 1, 1, 0, 0, args,
                         NULL));
    CU_OK(cuEventRecord(e1, 0));
    CU_OK(cuEventSynchronize(e1));
    if (it >= 0)
      CU_OK(cuEventElapsedTime(&ms[it], e0, e1));
  }
  if (iters > 0) {
    qsort(ms, (size_t)iters, sizeof *ms, cmp_float);
    printf("%s: median %.3f ms over %d launches (min %.3f)\n", wl->name, ms[iters / 2], iters,
           ms[0]);
  }
  CU_OK(cuMemcpyDtoH(h_out, d_out, out_n * 4));
  int bad = 0;
  double worst = 0.0;
  for (int s = 0; s < 64; ++s) {
    const size_t o = (size_t)(((uint64_t)s * 2654435761u * 7919u) % out_n);
    const int q = (int)(o % Q), p = (int)(o / Q % P), k = (int)(o / ((size_t)Q * P) % wl->k);
    const int n = (int)(o / ((size_t)Q * P * wl->k));
    double acc = h_b[k] + wl->shift;
    for (int c = 0; c < wl->c; ++c)
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < S; ++t)
          acc += (double)h_w[((size_t)k * wl->c + c) * R * S + r * S + t] *
                 h_in[(((size_t)n * wl->c + c) * wl->h + p + r) * wl->w + q + t];
    for (int m = 0; m < wl->mish_count; ++m)
      acc = mish(acc);
    const double err = fabs(h_out[o] - acc) / (fabs(acc) + 1e-3); /* NaN if the output is */
    if (!(err <= worst))
      worst = isnan(err) ? INFINITY : err;
    bad += !(err < 2e-2); /* TF32 and 3xTF32 both well inside this */
  }
  printf("%s: spot-check of 64 outputs: %s (worst relative error %.2e)\n", wl->name,
         bad ? "FAIL" : "PASS", worst);
  if (f16) {
    unsigned guard = 0;
    CU_OK(cuMemcpyDtoH(&guard, d_guard, 4));
    printf("%s: fp16 range guard %s\n", wl->name,
           guard ? "SET (the outputs are not valid)" : "clear");
    bad += guard != 0;
  }
  free(ms);
  free(h_in);
  free(h_w);
  free(h_b);
  free(h_out);
  free(ptx);
  free(key);
  return bad ? 1 : 0;
}
