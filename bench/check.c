/* convfuse check: every selected (workload, backend, math, distribution) against the
 * double-precision reference, on all output elements of small problems and on a large
 * stratified random sample plus whole border rows/columns and the last output plane of big
 * ones. Outputs are poisoned with NaN before each run and followed by a guard band that must
 * come back untouched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal_api.h"
#include "tool.h"
#include "util.h"
#include "workloads.h"

#define CPU_DEFAULT_MAX_MACS 2e9 /* --backend all: larger problems skip the CPU backend */
#define FULL_CHECK_MAX_ELEMS 200000
#define RANDOM_SAMPLES 100000
#define LINE_CAP 65536      /* border rows/columns: at most this many elements each */
#define TAIL_ELEMS 65536    /* the last output elements (the whole last plane at 254x254) */
#define GUARD_FLOATS 1024   /* guard band after the output, must come back unchanged */
#define GUARD_WORD 0x7fc0beefu
#define DEGENERATE_ZERO_FRACTION 0.9

typedef struct tolerance {
  const char *name;
  double atol, rtol, rel_l2;
} tolerance;

/* DESIGN.md's accuracy contract */
static const tolerance tol_fp32 = {"fp32", 1e-4, 1e-4, 1e-5};
static const tolerance tol_tf32 = {"tf32", 1e-2, 1e-2, 2e-3};

/* ---- the sample of output elements and their reference values ---- */

typedef struct sample {
  int64_t *idx; /* sorted, unique flat output indices */
  double *ref;
  int64_t n;
} sample;

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int64_t flat(const cf_conv_shape *sh, int64_t n, int64_t k, int64_t p, int64_t q) {
  return ((n * sh->k + k) * sh->p + p) * sh->q + q;
}

/* Fills s->idx; a description of what it holds goes to desc. 0, or -1 on allocation failure. */
static int build_sample(const cf_conv_shape *sh, uint64_t seed, sample *s, char *desc,
                        size_t len) {
  int64_t total = sh->output_elems;
  memset(s, 0, sizeof *s);
  if (total <= FULL_CHECK_MAX_ELEMS) {
    s->idx = tl_alloc((size_t)total * sizeof *s->idx, "the sample indices");
    s->ref = tl_alloc((size_t)total * sizeof *s->ref, "the reference sample");
    if (!s->idx || !s->ref)
      return -1;
    for (int64_t i = 0; i < total; ++i)
      s->idx[i] = i;
    s->n = total;
    snprintf(desc, len, "all %lld output elements", (long long)total);
    return 0;
  }
  enum { N_PLANES = 5 };
  int64_t row = sh->q < LINE_CAP ? sh->q : LINE_CAP;
  int64_t col = sh->p < LINE_CAP ? sh->p : LINE_CAP;
  int64_t tail = total < TAIL_ELEMS ? total : TAIL_ELEMS;
  int64_t cap = RANDOM_SAMPLES + N_PLANES * 2 * (row + col) + tail;
  s->idx = tl_alloc((size_t)cap * sizeof *s->idx, "the sample indices");
  s->ref = tl_alloc((size_t)cap * sizeof *s->ref, "the reference sample");
  if (!s->idx || !s->ref)
    return -1;
  tl_rng rng;
  tl_rng_seed(&rng, tl_stream_key(seed, TL_STREAM_SAMPLE, 0));
  int64_t m = 0;
  /* one random element in each of RANDOM_SAMPLES equal strata: covers the whole output */
  for (int i = 0; i < RANDOM_SAMPLES; ++i) {
    int64_t b, e;
    tl_split(total, i, RANDOM_SAMPLES, &b, &e);
    s->idx[m++] = b + (int64_t)tl_rng_below(&rng, (uint64_t)(e - b));
  }
  /* first and last rows and columns of the corner planes and of one random plane */
  int64_t planes[N_PLANES][2] = {{0, 0},
                                 {sh->n - 1, sh->k - 1},
                                 {0, sh->k - 1},
                                 {sh->n - 1, 0},
                                 {(int64_t)tl_rng_below(&rng, (uint64_t)sh->n),
                                  (int64_t)tl_rng_below(&rng, (uint64_t)sh->k)}};
  for (int pl = 0; pl < N_PLANES; ++pl) {
    int64_t n = planes[pl][0], k = planes[pl][1];
    for (int64_t q = 0; q < row; ++q) {
      s->idx[m++] = flat(sh, n, k, 0, q);
      s->idx[m++] = flat(sh, n, k, sh->p - 1, q);
    }
    for (int64_t p = 0; p < col; ++p) {
      s->idx[m++] = flat(sh, n, k, p, 0);
      s->idx[m++] = flat(sh, n, k, p, sh->q - 1);
    }
  }
  for (int64_t i = total - tail; i < total; ++i)
    s->idx[m++] = i;
  qsort(s->idx, (size_t)m, sizeof *s->idx, cmp_i64);
  int64_t u = 0;
  for (int64_t i = 0; i < m; ++i)
    if (u == 0 || s->idx[i] != s->idx[u - 1])
      s->idx[u++] = s->idx[i];
  s->n = u;
  snprintf(desc, len,
           "%lld of %lld output elements (%d stratified random, first/last rows and columns of "
           "%d planes, the last %lld elements)",
           (long long)u, (long long)total, RANDOM_SAMPLES, N_PLANES, (long long)tail);
  return 0;
}

static void sample_free(sample *s) {
  free(s->idx);
  free(s->ref);
  memset(s, 0, sizeof *s);
}

typedef struct ref_job {
  const cf_conv_shape *sh;
  const tl_workload *w;
  const float *input, *weight, *bias;
  sample *s;
} ref_job;

static void ref_part(void *ctx, int tid, int nthreads) {
  const ref_job *j = ctx;
  const cf_conv_shape *sh = j->sh;
  int64_t b, e;
  tl_split(j->s->n, tid, nthreads, &b, &e);
  for (int64_t i = b; i < e; ++i) {
    int64_t x = j->s->idx[i];
    int64_t q = x % sh->q;
    x /= sh->q;
    int64_t p = x % sh->p;
    x /= sh->p;
    int64_t k = x % sh->k;
    int64_t n = x / sh->k;
    j->s->ref[i] = cf_reference_point(sh, j->w->ops, j->w->n_ops, j->input, j->weight, j->bias,
                                      n, k, p, q);
  }
}

/* ---- whole-output scans ---- */

enum { MAX_PARTS = 64 };

typedef struct scan_job {
  float *out;
  int64_t n;
  float fill; /* poison: the value written */
  int64_t nonfinite[MAX_PARTS], zeros[MAX_PARTS];
} scan_job;

static void poison_part(void *ctx, int tid, int nthreads) {
  scan_job *j = ctx;
  int64_t b, e;
  tl_split(j->n, tid, nthreads, &b, &e);
  for (int64_t i = b; i < e; ++i)
    j->out[i] = j->fill;
}

static void count_part(void *ctx, int tid, int nthreads) {
  scan_job *j = ctx;
  int64_t b, e, bad = 0, zero = 0;
  tl_split(j->n, tid, nthreads, &b, &e);
  for (int64_t i = b; i < e; ++i) {
    float v = j->out[i];
    bad += !isfinite(v);
    zero += v == 0.0f;
  }
  j->nonfinite[tid] = bad;
  j->zeros[tid] = zero;
}

static int scan_threads(int64_t n) { return n < (1 << 20) ? 1 : tl_threads(); }

/* ---- one checked run ---- */

typedef struct metrics {
  double max_abs, max_ratio, rel_l2, zero_frac, ms;
  int64_t worst;           /* sample position of max_ratio; -1 if none */
  int64_t nonfinite;       /* in the whole output */
  int guard_ok;
} metrics;

static void compute_metrics(const cf_conv_shape *sh, const sample *s, const float *out,
                            const tolerance *tol, metrics *m) {
  double d2 = 0.0, r2 = 0.0;
  int sampled_nonfinite = 0;
  m->max_abs = 0.0;
  m->max_ratio = 0.0;
  m->worst = -1;
  for (int64_t i = 0; i < s->n; ++i) {
    double o = (double)out[s->idx[i]], r = s->ref[i];
    double diff, ratio;
    if (isfinite(o) && isfinite(r)) {
      diff = fabs(o - r);
      ratio = diff / (tol->atol + tol->rtol * fabs(r));
      d2 += diff * diff;
      r2 += r * r;
    } else if ((isnan(o) && isnan(r)) || o == r) { /* same NaN / same infinity */
      diff = 0.0;
      ratio = 0.0;
    } else {
      diff = INFINITY;
      ratio = INFINITY;
      sampled_nonfinite = 1;
    }
    if (diff > m->max_abs)
      m->max_abs = diff;
    if (ratio > m->max_ratio || m->worst < 0) {
      m->max_ratio = ratio;
      m->worst = i;
    }
  }
  m->rel_l2 = sampled_nonfinite ? INFINITY : r2 > 0.0 ? sqrt(d2 / r2) : sqrt(d2);

  scan_job sj;
  memset(&sj, 0, sizeof sj);
  sj.out = (float *)out;
  sj.n = sh->output_elems;
  int nt = scan_threads(sj.n);
  tl_parallel(nt, count_part, &sj);
  int64_t zeros = 0;
  m->nonfinite = 0;
  for (int t = 0; t < nt; ++t) {
    m->nonfinite += sj.nonfinite[t];
    zeros += sj.zeros[t];
  }
  m->zero_frac = (double)zeros / (double)sh->output_elems;
}

/* ---- per-backend state of one workload ---- */

typedef struct backend_run {
  cf_backend b;
  cf_context *ctx;
  cf_buffer *in, *w, *bias, *out;
  cf_plan *plans[2]; /* per o->maths entry; NULL if plan creation failed */
} backend_run;

typedef struct counters {
  int rows, passed, failed, skipped_backends;
} counters;

static void print_header(void) {
  printf("  %-12s %-7s %-4s %-5s %10s %10s %10s %9s %7s %9s  %s\n", "workload", "backend", "math",
         "dist", "max_abs", "tol-ratio", "rel_l2", "nonfinite", "zeros", "dev_ms", "result");
}

static void print_repro(const tl_opts *o, const tl_workload *w, const char *backend,
                        const char *math, const char *dist) {
  char flags[768];
  tl_workload_flags(w, flags, sizeof flags);
  printf("    repro: convfuse check %s --backend %s --math %s --dist %s --seed %llu\n", flags,
         backend, math, dist, (unsigned long long)o->seed);
}

/* A row with no numbers (the run could not happen), counted as a failure. */
static void fail_row(const tl_opts *o, const tl_workload *w, const char *backend, cf_math m,
                     tl_dist d, const char *why, counters *c) {
  printf("  %-12s %-7s %-4s %-5s %10s %10s %10s %9s %7s %9s  FAIL (%s)\n", w->name, backend,
         tl_math_name(m), tl_dist_name(d), "-", "-", "-", "-", "-", "-", why);
  print_repro(o, w, backend, tl_math_name(m), tl_dist_name(d));
  c->rows++;
  c->failed++;
}

static void fmt_num(double v, const char *fmt, char *buf, size_t len) {
  if (isinf(v))
    snprintf(buf, len, "inf");
  else if (isnan(v))
    snprintf(buf, len, "nan");
  else
    snprintf(buf, len, fmt, v);
}

typedef struct host_data {
  float *input, *weight, *bias, *out; /* out has GUARD_FLOATS more */
  size_t input_elems, weight_elems, bias_elems, out_elems;
} host_data;

/* Poisons the device output, runs, reads back, compares; prints the row. */
static void checked_run(const tl_opts *o, const tl_workload *w, const cf_conv_shape *sh,
                        const sample *s, host_data *h, backend_run *r, int mi, tl_dist d,
                        counters *c) {
  cf_math math = o->maths[mi];
  const char *bname = cf_backend_name(cf_context_backend(r->ctx));
  const cf_tile_plan *tiles = cf_plan_tiles_of(r->plans[mi]);
  cf_math eff = tiles ? tiles->math_effective : math;
  const int fp32_tol = !(math == CF_MATH_TF32 && eff == CF_MATH_TF32);
  /* The huge inputs' sums and their rounding errors are 1e5 times the others': per element the
   * contract's atol scales with them (near-zero outputs of cancelling sums fail otherwise, on
   * every backend); its relative L2 bound does not. */
  tolerance scaled = fp32_tol ? tol_fp32 : tol_tf32;
  scaled.atol *= tl_dist_magnitude(d);
  const tolerance *tol = &scaled;

  /* poison: NaN everywhere, then the guard words */
  float nan_f = NAN;
  uint32_t gw = GUARD_WORD;
  scan_job pj;
  memset(&pj, 0, sizeof pj);
  pj.out = h->out;
  pj.n = (int64_t)h->out_elems;
  pj.fill = nan_f;
  tl_parallel(scan_threads(pj.n), poison_part, &pj);
  for (size_t i = 0; i < GUARD_FLOATS; ++i) /* bytes, not float moves: keep the payload */
    memcpy(&h->out[h->out_elems + i], &gw, sizeof gw);
  size_t out_bytes = (h->out_elems + GUARD_FLOATS) * sizeof(float);

  char what[160];
  metrics m;
  memset(&m, 0, sizeof m);
  cf_status st = cf_buffer_write(r->out, 0, h->out, out_bytes);
  snprintf(what, sizeof what, "poison");
  if (st == CF_OK) {
    st = cf_plan_execute_timed(r->plans[mi], r->in, r->w, r->bias, r->out, &m.ms);
    snprintf(what, sizeof what, "execute");
  }
  if (st == CF_OK) {
    st = cf_buffer_read(r->out, 0, h->out, out_bytes);
    snprintf(what, sizeof what, "read back");
  }
  if (st != CF_OK) {
    char why[900];
    snprintf(why, sizeof why, "%s failed: %s: %.700s", what, cf_status_string(st),
             cf_last_error());
    fail_row(o, w, bname, math, d, why, c);
    return;
  }
  m.guard_ok = 1;
  for (size_t i = 0; i < GUARD_FLOATS; ++i)
    if (memcmp(&h->out[h->out_elems + i], &gw, sizeof gw) != 0)
      m.guard_ok = 0;
  compute_metrics(sh, s, h->out, tol, &m);

  char reasons[160] = "";
  if (m.max_ratio > 1.0)
    strcat(reasons, " tol-ratio>1");
  if (!(m.rel_l2 <= tol->rel_l2))
    strcat(reasons, " rel_l2");
  if (m.nonfinite > 0)
    strcat(reasons, " nonfinite");
  if (m.zero_frac > DEGENERATE_ZERO_FRACTION)
    strcat(reasons, " degenerate");
  if (!m.guard_ok)
    strcat(reasons, " guard-overwritten");
  int pass = reasons[0] == '\0';

  char a[32], b[32], l[32];
  fmt_num(m.max_abs, "%.3e", a, sizeof a);
  fmt_num(m.max_ratio, "%.4f", b, sizeof b);
  fmt_num(m.rel_l2, "%.3e", l, sizeof l);
  printf("  %-12s %-7s %-4s %-5s %10s %10s %10s %9lld %6.2f%% %9.3f  %s%s%s%s\n", w->name, bname,
         tl_math_name(math), tl_dist_name(d), a, b, l, (long long)m.nonfinite,
         100.0 * m.zero_frac, m.ms, pass ? "PASS" : "FAIL (", pass ? "" : reasons + 1,
         pass ? "" : ")", fp32_tol && math == CF_MATH_TF32 ? " [fp32 tolerance]" : "");
  c->rows++;
  if (pass) {
    c->passed++;
  } else {
    c->failed++;
    if (m.worst >= 0) {
      int64_t x = s->idx[m.worst];
      int64_t q = x % sh->q, p = x / sh->q % sh->p, k = x / (sh->q * sh->p) % sh->k,
              n = x / (sh->q * sh->p * sh->k);
      printf("    worst element (n,k,p,q)=(%lld,%lld,%lld,%lld): out %.9g, reference %.9g "
             "(tolerance %s: atol %g, rtol %g, rel_l2 <= %g)\n",
             (long long)n, (long long)k, (long long)p, (long long)q, (double)h->out[x],
             s->ref[m.worst], tol->name, tol->atol, tol->rtol, tol->rel_l2);
    }
    print_repro(o, w, bname, tl_math_name(math), tl_dist_name(d));
  }
}

static void backend_run_free(backend_run *r) {
  for (int i = 0; i < 2; ++i)
    cf_plan_destroy(r->plans[i]);
  cf_buffer_destroy(r->in);
  cf_buffer_destroy(r->w);
  cf_buffer_destroy(r->bias);
  cf_buffer_destroy(r->out);
  cf_context_destroy(r->ctx);
  memset(r, 0, sizeof *r);
}

/* Opens backend b for workload w: context, buffers, one plan per math mode. Returns 0 if the
 * backend takes part (plans may still have failed: their rows fail), -1 if it is skipped (a
 * CPU device and a big problem, unless named) or failed as a whole (already counted). */
static int open_backend(const tl_opts *o, const tl_workload *w, const cf_conv_shape *sh,
                        cf_backend b, backend_run *r, counters *c) {
  memset(r, 0, sizeof *r);
  r->b = b;
  cf_status s = cf_context_create(b, &r->ctx);
  if (s != CF_OK) {
    printf("  backend %s: FAILED to open: %s: %s\n", cf_backend_name(b), cf_status_string(s),
           cf_last_error());
    for (int mi = 0; mi < o->n_maths; ++mi)
      for (int di = 0; di < o->n_dists; ++di)
        fail_row(o, w, cf_backend_name(b), o->maths[mi], o->dists[di], "no context", c);
    return -1;
  }
  const char *bname = cf_backend_name(cf_context_backend(r->ctx));
  const cf_device_caps *caps = cf_context_caps(r->ctx);
  if (!o->backend_explicit && caps && caps->kind == CF_DEVICE_CPU &&
      cf_shape_macs(sh) > CPU_DEFAULT_MAX_MACS) {
    printf("  skip %s: its device is a CPU (%s) and %.3g MACs is too slow there (> %.0e; name "
           "it with --backend %s, or use a smaller --batch)\n",
           bname, cf_context_device(r->ctx), cf_shape_macs(sh), CPU_DEFAULT_MAX_MACS, bname);
    c->skipped_backends++;
    cf_context_destroy(r->ctx);
    r->ctx = NULL;
    return -1;
  }
  printf("  backend %s: %s\n", bname, cf_context_device(r->ctx));
  size_t out_bytes = ((size_t)sh->output_elems + GUARD_FLOATS) * sizeof(float);
  const char *what = "input";
  s = cf_buffer_create(r->ctx, (size_t)sh->input_elems * sizeof(float), &r->in);
  if (s == CF_OK) {
    what = "weight";
    s = cf_buffer_create(r->ctx, (size_t)sh->weight_elems * sizeof(float), &r->w);
  }
  if (s == CF_OK && sh->has_bias) {
    what = "bias";
    s = cf_buffer_create(r->ctx, (size_t)sh->bias_elems * sizeof(float), &r->bias);
  }
  if (s == CF_OK) {
    what = "output";
    s = cf_buffer_create(r->ctx, out_bytes, &r->out);
  }
  if (s != CF_OK) {
    printf("  backend %s: FAILED to allocate the %s buffer: %s: %s\n", bname, what,
           cf_status_string(s), cf_last_error());
    for (int mi = 0; mi < o->n_maths; ++mi)
      for (int di = 0; di < o->n_dists; ++di)
        fail_row(o, w, bname, o->maths[mi], o->dists[di], "no device buffers", c);
    backend_run_free(r);
    return -1;
  }
  for (int mi = 0; mi < o->n_maths; ++mi) {
    cf_math m = o->maths[mi];
    s = cf_plan_create(r->ctx, &w->desc, w->ops, w->n_ops, m, &r->plans[mi]);
    if (s != CF_OK) {
      r->plans[mi] = NULL;
      printf("  plan %s/%s: FAILED: %s: %s\n", bname, tl_math_name(m), cf_status_string(s),
             cf_last_error());
      continue;
    }
    const cf_tile_plan *t = cf_plan_tiles_of(r->plans[mi]);
    printf("  plan %s/%s: %s\n", bname, tl_math_name(m), cf_plan_describe(r->plans[mi]));
    if (m == CF_MATH_TF32 && t && t->math_effective != CF_MATH_TF32)
      printf("    (tf32 requested, the plan computes fp32: checked against the fp32 "
             "tolerance)\n");
  }
  return 0;
}

static void host_free(host_data *h) {
  free(h->input);
  free(h->weight);
  free(h->bias);
  free(h->out);
  memset(h, 0, sizeof *h);
}

static int host_alloc(const cf_conv_shape *sh, host_data *h) {
  memset(h, 0, sizeof *h);
  h->input_elems = (size_t)sh->input_elems;
  h->weight_elems = (size_t)sh->weight_elems;
  h->bias_elems = sh->has_bias ? (size_t)sh->bias_elems : 0;
  h->out_elems = (size_t)sh->output_elems;
  h->input = tl_alloc(h->input_elems * sizeof(float), "the input");
  h->weight = tl_alloc(h->weight_elems * sizeof(float), "the weight");
  if (sh->has_bias)
    h->bias = tl_alloc(h->bias_elems * sizeof(float), "the bias");
  h->out = tl_alloc((h->out_elems + GUARD_FLOATS) * sizeof(float), "the output");
  if (!h->input || !h->weight || (sh->has_bias && !h->bias) || !h->out) {
    host_free(h);
    return -1;
  }
  return 0;
}

static cf_status upload(backend_run *r, const host_data *h, const char **what) {
  cf_status s;
  *what = "input";
  if ((s = cf_buffer_write(r->in, 0, h->input, h->input_elems * sizeof(float))) != CF_OK)
    return s;
  *what = "weight";
  if ((s = cf_buffer_write(r->w, 0, h->weight, h->weight_elems * sizeof(float))) != CF_OK)
    return s;
  *what = "bias";
  if (r->bias && (s = cf_buffer_write(r->bias, 0, h->bias, h->bias_elems * sizeof(float))) != CF_OK)
    return s;
  return CF_OK;
}

/* One workload on every selected backend. Returns -1 on a host failure (already reported). */
static int check_workload(const tl_opts *o, const tl_workload *w, counters *c) {
  char text[768];
  tl_workload_describe(w, text, sizeof text);
  printf("== %s: %s\n", w->name, text);
  cf_conv_shape sh;
  cf_status s = cf_shape_resolve("convfuse check", &w->desc, &sh);
  if (s != CF_OK) {
    tl_report("invalid workload", s);
    c->rows++;
    c->failed++;
    return 0;
  }
  double macs = cf_shape_macs(&sh);
  printf("  %.3g MACs (%.3g GFLOP)\n", macs, 2.0 * macs / 1e9);

  backend_run runs[4];
  int n_runs = 0;
  for (int bi = 0; bi < o->n_backends; ++bi) {
    cf_backend b = o->backends[bi];
    if (!o->backend_explicit) {
      if (!cf_backend_available(b)) {
        printf("  skip %s: %s\n", cf_backend_name(b), cf_last_error());
        c->skipped_backends++;
        continue;
      }
      if (b == CF_BACKEND_CPU && macs > CPU_DEFAULT_MAX_MACS) {
        printf("  skip cpu: %.3g MACs is too slow for the double-precision CPU backend "
               "(> %.0e; name it with --backend cpu, or use a smaller --batch)\n",
               macs, CPU_DEFAULT_MAX_MACS);
        c->skipped_backends++;
        continue;
      }
      /* other backends on a CPU device (PoCL) are skipped alike once opened */
    }
    if (open_backend(o, w, &sh, b, &runs[n_runs], c) == 0)
      n_runs++;
  }
  if (n_runs == 0)
    return 0;

  int rc = 0;
  host_data h;
  sample smp;
  memset(&smp, 0, sizeof smp);
  if (host_alloc(&sh, &h) != 0) {
    rc = -1;
    goto done;
  }
  char desc[256];
  if (build_sample(&sh, o->seed, &smp, desc, sizeof desc) != 0) {
    rc = -1;
    goto done;
  }
  printf("  compared: %s; the whole output is scanned for NaN/inf and zeros\n", desc);
  print_header();
  for (int di = 0; di < o->n_dists; ++di) {
    tl_dist d = o->dists[di];
    tl_fill_problem(w, d, o->seed, h.input, h.input_elems, h.weight, h.weight_elems, h.bias,
                    h.bias_elems);
    ref_job rj = {&sh, w, h.input, h.weight, h.bias, &smp};
    tl_parallel(smp.n < 4096 ? 1 : tl_threads(), ref_part, &rj);
    for (int ri = 0; ri < n_runs; ++ri) {
      backend_run *r = &runs[ri];
      const char *bname = cf_backend_name(cf_context_backend(r->ctx));
      const char *what = "";
      s = upload(r, &h, &what);
      for (int mi = 0; mi < o->n_maths; ++mi) {
        if (s != CF_OK) {
          char why[900];
          snprintf(why, sizeof why, "upload %s: %s: %.700s", what, cf_status_string(s),
                   cf_last_error());
          fail_row(o, w, bname, o->maths[mi], d, why, c);
        } else if (!r->plans[mi]) {
          fail_row(o, w, bname, o->maths[mi], d, "no plan", c);
        } else {
          checked_run(o, w, &sh, &smp, &h, r, mi, d, c);
        }
      }
    }
  }

done:
  sample_free(&smp);
  host_free(&h);
  for (int ri = 0; ri < n_runs; ++ri)
    backend_run_free(&runs[ri]);
  return rc;
}

int tl_cmd_check(const tl_opts *o) {
  counters c;
  memset(&c, 0, sizeof c);
  printf("convfuse check: seed %llu, %d host threads for the reference\n",
         (unsigned long long)o->seed, tl_threads());
  for (int wi = 0; wi < o->n_workloads; ++wi) {
    if (check_workload(o, &o->workloads[wi], &c) != 0) {
      printf("check aborted: out of host memory\n");
      return TL_EXIT_FAIL;
    }
  }
  if (c.rows == 0) {
    printf("FAIL: nothing was checked (every backend was skipped; name one with --backend, "
           "e.g. --backend cpu --batch 1)\n");
    return TL_EXIT_FAIL;
  }
  printf("%d checked, %d passed, %d failed\n", c.rows, c.passed, c.failed);
  return c.failed ? TL_EXIT_FAIL : TL_EXIT_OK;
}
