/* convfuse bench: device time of the fused kernel, with its bandwidth, throughput and the
 * distance to the memory floor. Inputs are uploaded once; the runs rotate over several
 * input/output buffer sets when the problem is small enough for the L2 to hold it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal_api.h"
#include "tool.h"
#include "util.h"
#include "workloads.h"

#define FLOOR_BYTES_PER_S 3.8e12 /* the H200's measured copy bandwidth (DESIGN.md) */
#define MAX_SETS 64
#define SPOT_CHECKS 256

typedef struct bench_result {
  double median, min, p10, p90, gbps, tflops, floor_ms, pct_of_floor, inf_per_s;
} bench_result;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Linear interpolation between closest ranks of sorted v[0..n). */
static double percentile(const double *v, int n, double q) {
  double pos = q * (double)(n - 1);
  int lo = (int)floor(pos);
  int hi = lo + 1 < n ? lo + 1 : lo;
  return v[lo] + (v[hi] - v[lo]) * (pos - (double)lo);
}

/* Buffer sets to rotate over: enough that the sets together are > 4x the L2 (none needed
 * when one set is), limited by half the device memory. */
static int choose_sets(const cf_device_caps *caps, size_t per_set, size_t fixed, char *why,
                       size_t len) {
  uint64_t mem = caps ? caps->global_mem_bytes : 0;
  if (mem == 0 || mem == UINT64_MAX)
    mem = tl_host_memory();
  size_t l2 = caps ? caps->l2_bytes : 0;
  int want;
  if (l2 == 0) {
    want = 2;
  } else if (per_set >= 4 * l2) {
    snprintf(why, len, "1 buffer set: one set is %.1fx the L2", (double)per_set / (double)l2);
    return 1;
  } else {
    uint64_t w = (4 * (uint64_t)l2 + per_set - 1) / per_set;
    want = w > MAX_SETS ? MAX_SETS : (int)w;
    if (want < 2)
      want = 2;
  }
  uint64_t budget = mem / 2 > fixed ? mem / 2 - fixed : 0;
  uint64_t fit = per_set ? budget / per_set : 1;
  int sets = fit < (uint64_t)want ? (int)fit : want;
  if (sets < 1)
    sets = 1;
  if (l2 == 0)
    snprintf(why, len, "%d buffer sets rotated (L2 size unknown)%s", sets,
             sets < want ? ", limited by memory" : "");
  else
    snprintf(why, len, "%d buffer sets rotated (%.1fx the L2 together)%s", sets,
             (double)sets * (double)per_set / (double)l2, sets < want ? ", limited by memory" : "");
  return sets;
}

static void csv_field(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; ++s) {
    if (*s == '"')
      fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

/* Appends one row (and the header first if the file is new or empty). 0 or -1. */
static int csv_append(const char *path, const char *device, const char *backend,
                      const tl_workload *w, cf_math math, const bench_result *r,
                      const char *plan) {
  FILE *f = fopen(path, "a");
  if (!f) {
    perror(path);
    return -1;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && st.st_size == 0)
    fprintf(f, "date,device,backend,workload,batch,math,median_ms,min_ms,p10_ms,p90_ms,gbps,"
               "tflops,floor_ms,pct_of_floor,plan\n");
  char date[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
  fprintf(f, "%s,", date);
  csv_field(f, device);
  fprintf(f, ",%s,%s,%lld,%s,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,", backend, w->name,
          (long long)w->desc.batch, tl_math_name(math), r->median, r->min, r->p10, r->p90,
          r->gbps, r->tflops, r->floor_ms, r->pct_of_floor);
  csv_field(f, plan);
  fputc('\n', f);
  if (fclose(f) != 0) {
    perror(path);
    return -1;
  }
  return 0;
}

typedef struct bench_bufs {
  cf_buffer *in[MAX_SETS], *out[MAX_SETS];
  cf_buffer *w, *bias;
  int sets;
} bench_bufs;

static void bufs_free(bench_bufs *b) {
  for (int i = 0; i < b->sets; ++i) {
    cf_buffer_destroy(b->in[i]);
    cf_buffer_destroy(b->out[i]);
  }
  cf_buffer_destroy(b->w);
  cf_buffer_destroy(b->bias);
  memset(b, 0, sizeof *b);
}

/* Reads SPOT_CHECKS random output elements and compares them with the reference (the
 * tolerance of the plan's math). Returns the worst tol-ratio (inf for NaN). */
static double spot_check(const tl_workload *w, const cf_conv_shape *sh, const float *input,
                         const float *weight, const float *bias, const cf_buffer *out,
                         int tf32, tl_dist d, uint64_t seed, cf_status *st) {
  /* the absolute part scales with the inputs' magnitude, as check's does */
  double rtol = tf32 ? 1e-2 : 1e-4, atol = rtol * tl_dist_magnitude(d), worst = 0.0;
  tl_rng rng;
  tl_rng_seed(&rng, tl_stream_key(seed, TL_STREAM_SAMPLE, 1));
  *st = CF_OK;
  for (int i = 0; i < SPOT_CHECKS; ++i) {
    int64_t x = (int64_t)tl_rng_below(&rng, (uint64_t)sh->output_elems);
    if (i == 0)
      x = 0;
    if (i == 1)
      x = sh->output_elems - 1;
    float v;
    *st = cf_buffer_read(out, (size_t)x * sizeof(float), &v, sizeof v);
    if (*st != CF_OK)
      return INFINITY;
    int64_t q = x % sh->q, p = x / sh->q % sh->p, k = x / (sh->q * sh->p) % sh->k,
            n = x / (sh->q * sh->p * sh->k);
    double r = cf_reference_point(sh, w->ops, w->n_ops, input, weight, bias, n, k, p, q);
    double ratio = isfinite(v) ? fabs((double)v - r) / (atol + rtol * fabs(r)) : INFINITY;
    if (!(ratio <= worst))
      worst = ratio;
  }
  return worst;
}

/* Benchmarks one (workload, math) on ctx. TL_EXIT_OK / TL_EXIT_FAIL. */
static int bench_one(const tl_opts *o, cf_context *ctx, const tl_workload *w, cf_math math) {
  const char *bname = cf_backend_name(cf_context_backend(ctx));
  const char *device = cf_context_device(ctx);
  const int rand_inputs = o->dists[0] == TL_DIST_RAND; /* named only where not the default */
  printf("== %s, batch %lld, %s%s%s, on %s: %s\n", w->name, (long long)w->desc.batch,
         tl_math_name(math), rand_inputs ? "" : ", inputs ",
         rand_inputs ? "" : tl_dist_name(o->dists[0]), bname, device);
  cf_conv_shape sh;
  cf_status s = cf_shape_resolve("convfuse bench", &w->desc, &sh);
  if (s != CF_OK) {
    tl_report("invalid workload", s);
    return TL_EXIT_FAIL;
  }
  int rc = TL_EXIT_FAIL;
  cf_plan *plan = NULL;
  bench_bufs bb;
  memset(&bb, 0, sizeof bb);
  float *input = NULL, *weight = NULL, *bias = NULL;
  double *ms = NULL;
  const char *what = "creating the plan";
  s = cf_plan_create(ctx, &w->desc, w->ops, w->n_ops, math, &plan);
  if (s != CF_OK)
    goto fail;
  printf("   plan: %s\n", cf_plan_describe(plan));

  size_t in_b = (size_t)sh.input_elems * sizeof(float);
  size_t w_b = (size_t)sh.weight_elems * sizeof(float);
  size_t b_b = sh.has_bias ? (size_t)sh.bias_elems * sizeof(float) : 0;
  size_t out_b = (size_t)sh.output_elems * sizeof(float);
  double bytes = (double)in_b + (double)w_b + (double)b_b + (double)out_b;
  char why[160];
  int sets = choose_sets(cf_context_caps(ctx), in_b + out_b, w_b + b_b, why, sizeof why);

  input = tl_alloc(in_b, "the input");
  weight = tl_alloc(w_b, "the weight");
  if (sh.has_bias)
    bias = tl_alloc(b_b, "the bias");
  ms = tl_alloc((size_t)o->iters * sizeof *ms, "the timings");
  if (!input || !weight || (sh.has_bias && !bias) || !ms) {
    rc = TL_EXIT_FAIL;
    goto out;
  }
  tl_fill_problem(w, o->dists[0], o->seed, input, (size_t)sh.input_elems, weight,
                  (size_t)sh.weight_elems, bias, (size_t)sh.bias_elems);

  what = "allocating device buffers";
  if ((s = cf_buffer_create(ctx, w_b, &bb.w)) != CF_OK)
    goto fail;
  if (sh.has_bias && (s = cf_buffer_create(ctx, b_b, &bb.bias)) != CF_OK)
    goto fail;
  what = "uploading the inputs";
  if ((s = cf_buffer_write(bb.w, 0, weight, w_b)) != CF_OK)
    goto fail;
  if (bb.bias && (s = cf_buffer_write(bb.bias, 0, bias, b_b)) != CF_OK)
    goto fail;
  for (int i = 0; i < sets; ++i) {
    what = "allocating device buffers";
    s = cf_buffer_create(ctx, in_b, &bb.in[i]);
    if (s == CF_OK) {
      bb.sets = i + 1;
      s = cf_buffer_create(ctx, out_b, &bb.out[i]);
    }
    if (s == CF_OK) {
      what = "uploading the inputs";
      s = cf_buffer_write(bb.in[i], 0, input, in_b);
    }
    if (s != CF_OK) {
      if (i == 0 || s != CF_ERR_OUT_OF_MEMORY)
        goto fail;
      /* fewer sets than planned: keep what fits */
      cf_buffer_destroy(bb.in[i]);
      bb.in[i] = NULL;
      bb.sets = i;
      snprintf(why, sizeof why, "%d buffer sets rotated (device memory ran out)", i);
      break;
    }
  }
  sets = bb.sets;
  char b1[32], b2[32], b3[32], b4[32];
  printf("   bytes %s (input %s, output %s, weight+bias %s); %.4g GFLOP; %s\n",
         tl_fmt_bytes(bytes, b1, sizeof b1), tl_fmt_bytes((double)in_b, b2, sizeof b2),
         tl_fmt_bytes((double)out_b, b3, sizeof b3), tl_fmt_bytes((double)(w_b + b_b), b4, sizeof b4),
         2.0 * cf_shape_macs(&sh) / 1e9, why);

  what = "warm-up run";
  for (int i = 0; i < o->warmup; ++i) {
    double t;
    if ((s = cf_plan_execute_timed(plan, bb.in[i % sets], bb.w, bb.bias, bb.out[i % sets], &t)) !=
        CF_OK)
      goto fail;
  }
  what = "timed run";
  for (int i = 0; i < o->iters; ++i) {
    int k = (o->warmup + i) % sets;
    if ((s = cf_plan_execute_timed(plan, bb.in[k], bb.w, bb.bias, bb.out[k], &ms[i])) != CF_OK)
      goto fail;
  }
  if (o->each_run) /* before the sort: a spread's pattern over time (bench/NOTES.md v80) */
    for (int i = 0; i < o->iters; ++i)
      printf("%s%.4g%s", i % 10 == 0 ? "   each run (ms, launch order): " : " ", ms[i],
             i % 10 == 9 || i == o->iters - 1 ? "\n" : "");
  qsort(ms, (size_t)o->iters, sizeof *ms, cmp_double);
  bench_result r;
  r.median = percentile(ms, o->iters, 0.5);
  r.min = ms[0];
  r.p10 = percentile(ms, o->iters, 0.1);
  r.p90 = percentile(ms, o->iters, 0.9);
  double sec = r.median * 1e-3;
  r.gbps = bytes / sec / 1e9;
  r.tflops = 2.0 * cf_shape_macs(&sh) / sec / 1e12;
  r.inf_per_s = (double)w->desc.batch / sec;
  r.floor_ms = bytes / FLOOR_BYTES_PER_S * 1e3;
  r.pct_of_floor = 100.0 * r.floor_ms / r.median;
  printf("   median %.4g ms   min %.4g   p10 %.4g   p90 %.4g   (%d runs after %d warm-up)\n",
         r.median, r.min, r.p10, r.p90, o->iters, o->warmup);
  printf("   %.4g GB/s   %.4g TFLOP/s   %.4g inferences/s\n", r.gbps, r.tflops, r.inf_per_s);
  printf("   memory floor %.4g ms (%s at 3.8 TB/s): this run is at %.3g%% of the floor's speed\n",
         r.floor_ms, tl_fmt_bytes(bytes, b1, sizeof b1), r.pct_of_floor);

  /* the numbers mean nothing if the kernel is wrong: spot-check the last output written */
  const cf_tile_plan *t = cf_plan_tiles_of(plan);
  int tf32 = math == CF_MATH_TF32 && t && t->math_effective == CF_MATH_TF32;
  int last = (o->warmup + o->iters - 1) % sets;
  double worst =
      spot_check(w, &sh, input, weight, bias, bb.out[last], tf32, o->dists[0], o->seed, &s);
  what = "reading the output for the spot-check";
  if (s != CF_OK)
    goto fail;
  if (!(worst <= 1.0)) {
    printf("   spot-check: FAILED: %d output elements against the reference, worst tol-ratio "
           "%.3g (%s tolerance); these timings are of a wrong kernel (see convfuse check)\n",
           SPOT_CHECKS, worst, tf32 ? "tf32" : "fp32");
    rc = TL_EXIT_FAIL;
    goto out;
  }
  printf("   spot-check: %d output elements match the reference (worst tol-ratio %.3g, %s)\n",
         SPOT_CHECKS, worst, tf32 ? "tf32" : "fp32");
  if (o->csv && csv_append(o->csv, device, bname, w, math, &r, cf_plan_describe(plan)) != 0) {
    rc = TL_EXIT_FAIL;
    goto out;
  }
  rc = TL_EXIT_OK;
  goto out;

fail:
  tl_report(what, s);
  rc = TL_EXIT_FAIL;
out:
  bufs_free(&bb);
  cf_plan_destroy(plan);
  free(input);
  free(weight);
  free(bias);
  free(ms);
  return rc;
}

int tl_cmd_bench(const tl_opts *o) {
  cf_context *ctx = NULL;
  cf_status s = cf_context_create(o->backends[0], &ctx);
  if (s != CF_OK) {
    tl_report("opening the backend", s);
    return TL_EXIT_FAIL;
  }
  int rc = TL_EXIT_OK;
  for (int wi = 0; wi < o->n_workloads; ++wi)
    for (int mi = 0; mi < o->n_maths; ++mi)
      if (bench_one(o, ctx, &o->workloads[wi], o->maths[mi]) != TL_EXIT_OK)
        rc = TL_EXIT_FAIL;
  cf_context_destroy(ctx);
  return rc;
}
