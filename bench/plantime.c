/* convfuse plantime: the wall-clock time of cf_context_create + cf_plan_create in a new
 * context, three ways:
 *   cold  the OpenCL program cache pointed at an empty directory (XDG_CACHE_HOME set here, in
 *         the process): the program is compiled from source and its binary stored;
 *   warm  a new context on the directory the cold run filled: the binary is loaded;
 *   off   CONVFUSE_CACHE=0: compiled from source, nothing read or written (the time without
 *         the cache).
 * Drivers keep caches of their own, which make every run after the first one warm whatever
 * convfuse does: NVIDIA's (~/.nv/ComputeCache; CUDA_CACHE_DISABLE=1 turns it off) and PoCL's
 * (POCL_KERNEL_CACHE=0). A fair cold measurement turns them off; the tool prints their
 * settings with the figures.
 * --first-run also times the plan's first execution (+ synchronize; buffers made and filled
 * untimed): a driver may finish compiling at the first launch (PoCL generates the work-group
 * code for the launch's size there), which plan creation alone does not show. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shape.h"
#include "tool.h"
#include "util.h"
#include "workloads.h"

#if CF_TOOL_HAVE_OPENCL
#include "program_cache.h"
#endif

enum { MODE_COLD, MODE_WARM, MODE_OFF, N_MODES };
static const char *const mode_names[N_MODES] = {"cold", "warm", "off"};

enum { MAX_RUNS = 100 };

typedef struct mode_times {
  double context_ms[MAX_RUNS], plan_ms[MAX_RUNS], run_ms[MAX_RUNS], total_ms[MAX_RUNS];
  uint64_t hits, misses, stores; /* program-cache counts over the runs */
} mode_times;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* --first-run: the workload's random inputs (never zeros), made once, uploaded per context. */
typedef struct host_data {
  float *input, *weight, *bias;
  size_t in_b, w_b, b_b, out_b;
} host_data;

static void host_data_free(host_data *h) {
  free(h->input);
  free(h->weight);
  free(h->bias);
  memset(h, 0, sizeof *h);
}

static int host_data_make(const tl_workload *w, uint64_t seed, host_data *h) {
  memset(h, 0, sizeof *h);
  cf_conv_shape sh;
  cf_status s = cf_shape_resolve("convfuse plantime", &w->desc, &sh);
  if (s != CF_OK) {
    tl_report("invalid workload", s);
    return -1;
  }
  h->in_b = (size_t)sh.input_elems * sizeof(float);
  h->w_b = (size_t)sh.weight_elems * sizeof(float);
  h->b_b = sh.has_bias ? (size_t)sh.bias_elems * sizeof(float) : 0;
  h->out_b = (size_t)sh.output_elems * sizeof(float);
  h->input = tl_alloc(h->in_b, "the input");
  h->weight = tl_alloc(h->w_b, "the weight");
  h->bias = sh.has_bias ? tl_alloc(h->b_b, "the bias") : NULL;
  if (!h->input || !h->weight || (sh.has_bias && !h->bias)) {
    host_data_free(h);
    return -1;
  }
  tl_fill_problem(w, TL_DIST_RAND, seed, h->input, (size_t)sh.input_elems, h->weight,
                  (size_t)sh.weight_elems, h->bias, (size_t)sh.bias_elems);
  return 0;
}

/* The first execution of plan on ctx: buffers made and filled untimed, then execute +
 * synchronize timed. */
static cf_status time_first_run(cf_context *ctx, cf_plan *plan, const host_data *h,
                                double *ms) {
  cf_buffer *in = NULL, *wt = NULL, *bias = NULL, *out = NULL;
  cf_status s = cf_buffer_create(ctx, h->in_b, &in);
  if (s == CF_OK)
    s = cf_buffer_create(ctx, h->w_b, &wt);
  if (s == CF_OK && h->bias)
    s = cf_buffer_create(ctx, h->b_b, &bias);
  if (s == CF_OK)
    s = cf_buffer_create(ctx, h->out_b, &out);
  if (s == CF_OK)
    s = cf_buffer_write(in, 0, h->input, h->in_b);
  if (s == CF_OK)
    s = cf_buffer_write(wt, 0, h->weight, h->w_b);
  if (s == CF_OK && bias)
    s = cf_buffer_write(bias, 0, h->bias, h->b_b);
  if (s == CF_OK)
    s = cf_context_synchronize(ctx);
  double t0 = now_ms();
  if (s == CF_OK)
    s = cf_plan_execute(plan, in, wt, bias, out);
  if (s == CF_OK)
    s = cf_context_synchronize(ctx);
  *ms = now_ms() - t0;
  cf_buffer_destroy(in);
  cf_buffer_destroy(wt);
  cf_buffer_destroy(bias);
  cf_buffer_destroy(out);
  return s;
}

static void cache_counts(uint64_t *hits, uint64_t *misses, uint64_t *stores) {
#if CF_TOOL_HAVE_OPENCL
  cf_pcache_stats st;
  cf_pcache_get_stats(&st);
  *hits = st.hits;
  *misses = st.misses;
  *stores = st.stores;
#else
  *hits = *misses = *stores = 0;
#endif
}

/* Times a new context and its plan of (w, math) (and with h, the plan's first run) into slot
 * `run` of t, then destroys both (untimed). */
static cf_status time_once(cf_backend b, const tl_workload *w, cf_math math,
                           const host_data *h, int run, mode_times *t) {
  cf_context *ctx = NULL;
  cf_plan *plan = NULL;
  double t0 = now_ms();
  cf_status s = cf_context_create(b, &ctx);
  double t1 = now_ms();
  if (s == CF_OK)
    s = cf_plan_create(ctx, &w->desc, w->ops, w->n_ops, math, &plan);
  double t2 = now_ms();
  t->context_ms[run] = t1 - t0;
  t->plan_ms[run] = t2 - t1;
  t->run_ms[run] = 0.0;
  if (s == CF_OK && h)
    s = time_first_run(ctx, plan, h, &t->run_ms[run]);
  t->total_ms[run] = t->context_ms[run] + t->plan_ms[run] + t->run_ms[run];
  cf_plan_destroy(plan);
  cf_context_destroy(ctx);
  return s;
}

/* One run of `mode` into slot `run` of t (and the cache counts it caused). */
static cf_status time_mode(cf_backend b, const tl_workload *w, cf_math math,
                           const host_data *h, int run, mode_times *t) {
  uint64_t h0, m0, s0, h1, m1, s1;
  cache_counts(&h0, &m0, &s0);
  cf_status s = time_once(b, w, math, h, run, t);
  cache_counts(&h1, &m1, &s1);
  t->hits += h1 - h0;
  t->misses += m1 - m0;
  t->stores += s1 - s0;
  return s;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(const double *v, int n) {
  double s[MAX_RUNS];
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static double minimum(const double *v, int n) {
  double m = v[0];
  for (int i = 1; i < n; ++i)
    m = v[i] < m ? v[i] : m;
  return m;
}

/* rm -r of the scratch directories this command made (cache files, and whatever a driver put
 * beside them). */
static void remove_tree(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0)
    return;
  if (S_ISDIR(sb.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      size_t n = strlen(path) + strlen(e->d_name) + 2;
      char *child = tl_alloc(n, "a path");
      if (!child)
        break;
      snprintf(child, n, "%s/%s", path, e->d_name);
      remove_tree(child);
      free(child);
    }
    if (d)
      closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

/* setenv, or unsetenv for NULL. */
static void set_or_unset(const char *name, const char *value) {
  if (value)
    setenv(name, value, 1);
  else
    unsetenv(name);
}

/* A copy of an environment variable (NULL if unset), to restore it afterwards. */
static char *env_copy(const char *name) {
  const char *v = getenv(name);
  if (!v)
    return NULL;
  char *c = tl_alloc(strlen(v) + 1, "an environment value");
  if (c)
    memcpy(c, v, strlen(v) + 1);
  return c;
}

static void print_row(const tl_workload *w, cf_math math, int mode, const mode_times *t,
                      int runs, int first_run) {
  char counts[64] = "-", run_ms[32] = "-";
#if CF_TOOL_HAVE_OPENCL
  snprintf(counts, sizeof counts, "%llu/%llu/%llu", (unsigned long long)t->hits,
           (unsigned long long)t->misses, (unsigned long long)t->stores);
#endif
  if (first_run)
    snprintf(run_ms, sizeof run_ms, "%.1f", median(t->run_ms, runs));
  printf("%-13s %-4s  %-4s  %9.1f  %9.1f  %9s  %9.1f  %9.1f   %s\n", w->name,
         tl_math_name(math), mode_names[mode], median(t->context_ms, runs),
         median(t->plan_ms, runs), run_ms, median(t->total_ms, runs),
         minimum(t->total_ms, runs), counts);
}

/* All runs of one (workload, math): each run gets a fresh empty cache directory under root. */
static int plantime_one(const tl_opts *o, const tl_workload *w, cf_math math, const char *root) {
  const cf_backend b = o->backends[0];
  const int runs = o->iters;
  host_data h;
  if (o->first_run && host_data_make(w, o->seed, &h) != 0)
    return TL_EXIT_FAIL;
  mode_times *t = tl_alloc(N_MODES * sizeof *t, "the timings");
  if (!t) {
    if (o->first_run)
      host_data_free(&h);
    return TL_EXIT_FAIL;
  }
  memset(t, 0, N_MODES * sizeof *t);
  int rc = TL_EXIT_OK;
  for (int run = 0; run < runs && rc == TL_EXIT_OK; ++run) {
    char dir[4096];
    int n = snprintf(dir, sizeof dir, "%s/%s-%s-%d", root, w->name, tl_math_name(math), run);
    if (n < 0 || (size_t)n >= sizeof dir) {
      fprintf(stderr, "convfuse: plantime: the scratch path under %s is too long\n", root);
      rc = TL_EXIT_FAIL;
      break;
    }
    if (mkdir(dir, 0700) != 0) {
      perror(dir);
      rc = TL_EXIT_FAIL;
      break;
    }
    setenv("XDG_CACHE_HOME", dir, 1);
    for (int mode = 0; mode < N_MODES && rc == TL_EXIT_OK; ++mode) {
      setenv("CONVFUSE_CACHE", mode == MODE_OFF ? "0" : "1", 1);
      cf_status s = time_mode(b, w, math, o->first_run ? &h : NULL, run, &t[mode]);
      if (s != CF_OK) {
        char what[96];
        snprintf(what, sizeof what, "%s %s, %s cache", w->name, tl_math_name(math),
                 mode_names[mode]);
        tl_report(what, s);
        rc = TL_EXIT_FAIL;
      }
    }
  }
  if (rc == TL_EXIT_OK)
    for (int mode = 0; mode < N_MODES; ++mode)
      print_row(w, math, mode, &t[mode], runs, o->first_run);
  free(t);
  if (o->first_run)
    host_data_free(&h);
  return rc;
}

int tl_cmd_plantime(const tl_opts *o) {
  const cf_backend b = o->backends[0];
  const int runs = o->iters;
  /* Opening a context first (untimed, cache off) pays the process's one-time driver start-up
   * outside the figures, names the device, and lets the driver settle where its own cache
   * lives (PoCL reads XDG_CACHE_HOME once) before XDG_CACHE_HOME points at the scratch
   * directories. */
  char *saved_xdg = env_copy("XDG_CACHE_HOME"), *saved_cache = env_copy("CONVFUSE_CACHE");
  setenv("CONVFUSE_CACHE", "0", 1);
  cf_context *ctx = NULL;
  cf_status s = cf_context_create(b, &ctx);
  set_or_unset("CONVFUSE_CACHE", saved_cache);
  if (s != CF_OK) {
    tl_report("opening the backend", s);
    free(saved_xdg);
    free(saved_cache);
    return TL_EXIT_FAIL;
  }
  const cf_backend used = cf_context_backend(ctx);
  printf("convfuse plantime: %s on %s; %d run%s of each, times in ms (wall clock)\n",
         cf_backend_name(used), cf_context_device(ctx), runs, runs == 1 ? "" : "s");
  cf_context_destroy(ctx);
  const char *nv = getenv("CUDA_CACHE_DISABLE"), *pocl = getenv("POCL_KERNEL_CACHE");
  printf("driver caches: CUDA_CACHE_DISABLE=%s POCL_KERNEL_CACHE=%s (a fair cold run needs "
         "them off: CUDA_CACHE_DISABLE=1, POCL_KERNEL_CACHE=0)\n",
         nv ? nv : "(unset)", pocl ? pocl : "(unset)");
  if (used != CF_BACKEND_OPENCL)
    printf("note: the program cache is the OpenCL backend's; %s compiles nothing at plan "
           "time, so the three modes time the same work\n",
           cf_backend_name(used));

  const char *tmp = getenv("TMPDIR");
  char root[4096];
  snprintf(root, sizeof root, "%s/convfuse-plantime.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(root)) {
    perror(root);
    free(saved_xdg);
    free(saved_cache);
    return TL_EXIT_FAIL;
  }
  printf("%-13s %-4s  %-4s  %9s  %9s  %9s  %9s  %9s   %s\n", "workload", "math", "cache",
         "context", "plan", "first run", "total", "total min", "cache hit/miss/store");
  int rc = TL_EXIT_OK;
  for (int wi = 0; wi < o->n_workloads; ++wi)
    for (int mi = 0; mi < o->n_maths; ++mi)
      if (plantime_one(o, &o->workloads[wi], o->maths[mi], root) != TL_EXIT_OK)
        rc = TL_EXIT_FAIL;
  printf("(medians but 'total min'; first run with --first-run; cache counts summed over the "
         "runs; cold and warm share a new directory per run, off reads and writes none)\n");
  set_or_unset("XDG_CACHE_HOME", saved_xdg);
  set_or_unset("CONVFUSE_CACHE", saved_cache);
  free(saved_xdg);
  free(saved_cache);
  remove_tree(root);
  return rc;
}
