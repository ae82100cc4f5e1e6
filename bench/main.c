/* convfuse: the command-line tool. Argument parsing and dispatch to info / check / bench /
 * plantime. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"
#include "util.h"
#include "workloads.h"

static const char usage_text[] =
    "usage: convfuse <command> [options]\n"
    "\n"
    "commands:\n"
    "  info    version, compiled-in backends, each backend's device and capabilities,\n"
    "          and the backend CF_BACKEND_AUTO picks\n"
    "  check   run workloads on backends and compare every run with the double-precision\n"
    "          reference (exit 1 on any failure, with a one-line repro for each)\n"
    "  bench   time the fused kernel of workloads on one backend\n"
    "  plantime  time a new context and its first plan with the OpenCL program cache cold,\n"
    "          warm and off\n"
    "  help    this text (also -h, --help)\n"
    "\n"
    "check options:\n"
    "  --workload W   sub-sub-mish | mish-mish | custom | all            (default all)\n"
    "  --backend B    cpu | cuda | opencl | auto | all                   (default all:\n"
    "                 every usable backend; a CPU device (the cpu backend, PoCL) only for\n"
    "                 problems of <= 2e9 MACs unless named)\n"
    "  --math M       fp32 | tf32 | all                                  (default all)\n"
    "  --dist D       rand | x3 | small | neg | huge | all               (default all)\n"
    "                 input U[0,1) like torch.rand, times 3, times 0.01, negated\n"
    "  --batch N      replace the workload's batch size\n"
    "  --seed S       random seed, 0..2^64-1                             (default 1)\n"
    "  Outputs of <= 200000 elements are compared whole; larger ones on 100000 stratified\n"
    "  random elements, border rows/columns of 5 planes and the last 65536 elements, and\n"
    "  scanned whole for NaN/inf and zeros. Limits (DESIGN.md): fp32 |out-ref| <= 1e-4 +\n"
    "  1e-4|ref| and rel L2 <= 1e-5; tf32 1e-2 + 1e-2|ref| and rel L2 <= 2e-3.\n"
    "\n"
    "bench options:\n"
    "  --backend B    cpu | cuda | opencl | auto                         (default auto)\n"
    "  --workload W   sub-sub-mish | mish-mish | custom | all            (default all)\n"
    "  --math M       fp32 | tf32 | all                                  (default fp32)\n"
    "  --batch N      replace the workload's batch size\n"
    "  --iters N      timed runs, 1..1000000                             (default 30)\n"
    "  --warmup N     untimed runs before them, 0..1000000               (default 3)\n"
    "  --seed S       random seed                                        (default 1)\n"
    "  --dist D       rand | x3 | small | neg | huge: the inputs, as for check (default\n"
    "                 rand); huge trips the fp16 plans' range guard: their rerun is timed\n"
    "  --csv FILE     append one row per result (a header first if the file is new)\n"
    "  --each-run     also print every timed run's time, in launch order\n"
    "  Times each run with device events (cf_plan_execute_timed), then spot-checks 256 output\n"
    "  elements against the reference: a wrong result exits 1 and writes no CSV row.\n"
    "\n"
    "plantime options:\n"
    "  --backend B    cpu | cuda | opencl | auto                         (default auto)\n"
    "  --workload W   sub-sub-mish | mish-mish | custom | all            (default all)\n"
    "  --math M       fp32 | tf32 | all                                  (default fp32)\n"
    "  --batch N      replace the workload's batch size\n"
    "  --iters N      runs of each mode, 1..100                          (default 3)\n"
    "  --first-run    also time the plan's first execute + synchronize (buffers made and\n"
    "                 filled untimed; some drivers finish compiling at the first launch)\n"
    "  --seed S       random seed of the --first-run inputs              (default 1)\n"
    "  Wall clock (CLOCK_MONOTONIC) of cf_context_create + cf_plan_create in a new context:\n"
    "  cold (XDG_CACHE_HOME set to a new empty directory under $TMPDIR or /tmp: compiled and\n"
    "  stored), warm (a new context on that directory: loaded), off (CONVFUSE_CACHE=0). The\n"
    "  drivers' own caches make every run warm: for a fair cold run set CUDA_CACHE_DISABLE=1\n"
    "  (NVIDIA) or POCL_KERNEL_CACHE=0 (PoCL).\n"
    "\n"
    "custom workload (--workload custom, check, bench and plantime):\n"
    "  --shape N,C,H,W,K,R,S[,stride[,pad[,dilation]]]   input NxCxHxW, K filters RxS\n"
    "  --ops LIST     epilogue, comma-separated: add:V sub:V mul:V relu tanh sigmoid\n"
    "                 softplus mish, or none                             (default none)\n"
    "  --no-bias      convolution without bias\n"
    "\n"
    "workloads (DESIGN.md):\n"
    "  sub-sub-mish   128x8x256x256, conv 8->64 3x3 + bias, x-0.5, x-0.2, mish\n"
    "  mish-mish      64x64x256x256, conv 64->128 3x3 + bias, mish, mish\n"
    "\n"
    "environment: CONVFUSE_BACKEND (what auto picks), CONVFUSE_OPENCL_DEVICE (OpenCL device\n"
    "by name substring), CONVFUSE_VERBOSE=1 (backend, device, plans and program-cache hits and\n"
    "misses on stderr), CONVFUSE_CACHE=0 (no on-disk OpenCL program cache)\n"
    "exit status: 0 success, 1 failure (a check failed or the library reported an error),\n"
    "2 bad usage\n";

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "convfuse: ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n\n%s", usage_text);
  return TL_EXIT_USAGE;
}

const char *tl_math_name(cf_math m) { return m == CF_MATH_TF32 ? "tf32" : "fp32"; }

enum { CMD_INFO = 1, CMD_CHECK = 2, CMD_BENCH = 4, CMD_PLANTIME = 8 };
#define CMD_TIMING (CMD_BENCH | CMD_PLANTIME)

typedef struct flag_def {
  const char *name;
  int takes_value;
  int commands; /* CMD_* mask */
} flag_def;

static const flag_def flags[] = {
    {"--workload", 1, CMD_CHECK | CMD_TIMING}, {"--batch", 1, CMD_CHECK | CMD_TIMING},
    {"--math", 1, CMD_CHECK | CMD_TIMING},     {"--backend", 1, CMD_CHECK | CMD_TIMING},
    {"--seed", 1, CMD_CHECK | CMD_TIMING},     {"--dist", 1, CMD_CHECK | CMD_BENCH},
    {"--iters", 1, CMD_TIMING},                {"--warmup", 1, CMD_BENCH},
    {"--csv", 1, CMD_BENCH},                   {"--shape", 1, CMD_CHECK | CMD_TIMING},
    {"--ops", 1, CMD_CHECK | CMD_TIMING},      {"--no-bias", 0, CMD_CHECK | CMD_TIMING},
    {"--first-run", 0, CMD_PLANTIME},          {"--each-run", 0, CMD_BENCH},
};
enum { N_FLAGS = sizeof flags / sizeof flags[0] };

static int flag_index(const char *name, size_t len) {
  for (int i = 0; i < N_FLAGS; ++i)
    if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
      return i;
  return -1;
}

/* The raw strings of the flags given (NULL where absent); "--no-bias" reads as "1". */
typedef struct raw_args {
  const char *v[N_FLAGS];
} raw_args;

static const char *raw(const raw_args *r, const char *name) {
  return r->v[flag_index(name, strlen(name))];
}

static int parse_backend(const char *s, cf_backend *b) {
  static const cf_backend all[] = {CF_BACKEND_AUTO, CF_BACKEND_CPU, CF_BACKEND_CUDA,
                                   CF_BACKEND_OPENCL};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
    if (strcmp(s, cf_backend_name(all[i])) == 0) {
      *b = all[i];
      return 0;
    }
  return -1;
}

/* Turns the raw strings into options; TL_EXIT_OK or TL_EXIT_USAGE (message printed). */
static int build_opts(int cmd, const raw_args *r, tl_opts *o) {
  memset(o, 0, sizeof *o);
  const char *s;

  /* --batch first: the workloads take it */
  if ((s = raw(r, "--batch")) && tl_parse_i64(s, 1, INT32_MAX, &o->batch) != 0)
    return usage_error("--batch: '%s' is not an integer in 1..2147483647", s);

  const char *wl = raw(r, "--workload");
  if (!wl)
    wl = "all";
  int custom = strcmp(wl, "custom") == 0;
  if (!custom && (raw(r, "--shape") || raw(r, "--ops") || raw(r, "--no-bias")))
    return usage_error("--shape, --ops and --no-bias need --workload custom");
  if (strcmp(wl, "all") == 0) {
    for (int i = 0; i < TL_BUILTIN_WORKLOADS; ++i)
      tl_workload_builtin(i, &o->workloads[o->n_workloads++]);
  } else if (custom) {
    tl_workload *w = &o->workloads[o->n_workloads++];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "custom");
    w->custom = 1;
    if (!(s = raw(r, "--shape")))
      return usage_error("--workload custom needs --shape N,C,H,W,K,R,S[,stride,pad,dilation]");
    if (tl_parse_shape(s, &w->desc) != 0)
      return usage_error("--shape: '%s' is not N,C,H,W,K,R,S[,stride[,pad[,dilation]]] with "
                         "positive integers (pad >= 0)",
                         s);
    if (raw(r, "--no-bias"))
      w->desc.has_bias = 0;
    if ((s = raw(r, "--ops")) && tl_parse_ops(s, w->ops, &w->n_ops) != 0)
      return usage_error("--ops: '%s' is not a valid op list", s);
  } else {
    int i = tl_workload_lookup(wl);
    if (i < 0)
      return usage_error("--workload: unknown workload '%s' (valid: sub-sub-mish, mish-mish, "
                         "custom, all)",
                         wl);
    tl_workload_builtin(i, &o->workloads[o->n_workloads++]);
  }
  if (o->batch > 0)
    for (int i = 0; i < o->n_workloads; ++i)
      o->workloads[i].desc.batch = o->batch;
  if (custom) {
    int64_t p, q;
    if (cf_conv2d_output_dims(&o->workloads[0].desc, &p, &q) != CF_OK)
      return usage_error("--shape: %s", cf_last_error());
  }

  const char *be = raw(r, "--backend");
  o->backend_explicit = be && strcmp(be, "all") != 0;
  if (!be)
    be = cmd == CMD_CHECK ? "all" : "auto";
  if (strcmp(be, "all") == 0) {
    if (cmd != CMD_CHECK)
      return usage_error("--backend: %s times one backend (cpu, cuda, opencl or auto), not "
                         "'%s'",
                         cmd == CMD_BENCH ? "bench" : "plantime", be);
    o->backends[o->n_backends++] = CF_BACKEND_CPU;
    o->backends[o->n_backends++] = CF_BACKEND_CUDA;
    o->backends[o->n_backends++] = CF_BACKEND_OPENCL;
  } else if (parse_backend(be, &o->backends[0]) == 0) {
    o->n_backends = 1;
  } else {
    return usage_error("--backend: unknown backend '%s' (valid: cpu, cuda, opencl, auto%s)", be,
                       cmd == CMD_CHECK ? ", all" : "");
  }

  const char *m = raw(r, "--math");
  if (!m)
    m = cmd == CMD_CHECK ? "all" : "fp32";
  if (strcmp(m, "fp32") == 0 || strcmp(m, "all") == 0)
    o->maths[o->n_maths++] = CF_MATH_FP32;
  if (strcmp(m, "tf32") == 0 || strcmp(m, "all") == 0)
    o->maths[o->n_maths++] = CF_MATH_TF32;
  if (o->n_maths == 0)
    return usage_error("--math: unknown math mode '%s' (valid: fp32, tf32, all)", m);

  const char *d = raw(r, "--dist");
  if (cmd != CMD_CHECK && d && strcmp(d, "all") == 0)
    return usage_error("--dist: bench times one distribution (rand, x3, small, neg or huge), "
                       "not 'all'");
  if (cmd != CMD_CHECK && !d)
    d = "rand";
  if (!d || strcmp(d, "all") == 0) {
    for (int i = 0; i < TL_DIST_COUNT; ++i)
      o->dists[o->n_dists++] = (tl_dist)i;
  } else {
    int i = tl_dist_lookup(d);
    if (i < 0)
      return usage_error("--dist: unknown distribution '%s' (valid: rand, x3, small, neg, "
                         "huge, all)",
                         d);
    o->dists[o->n_dists++] = (tl_dist)i;
  }

  o->seed = 1;
  if ((s = raw(r, "--seed")) && tl_parse_u64(s, &o->seed) != 0)
    return usage_error("--seed: '%s' is not an integer in 0..18446744073709551615", s);
  int64_t v;
  /* bench: timed kernel runs; plantime: runs of each cache mode (each may compile: seconds) */
  const int64_t max_iters = cmd == CMD_PLANTIME ? 100 : 1000000;
  o->iters = cmd == CMD_PLANTIME ? 3 : 30;
  if ((s = raw(r, "--iters"))) {
    if (tl_parse_i64(s, 1, max_iters, &v) != 0)
      return usage_error("--iters: '%s' is not an integer in 1..%lld", s, (long long)max_iters);
    o->iters = (int)v;
  }
  o->warmup = 3;
  if ((s = raw(r, "--warmup"))) {
    if (tl_parse_i64(s, 0, 1000000, &v) != 0)
      return usage_error("--warmup: '%s' is not an integer in 0..1000000", s);
    o->warmup = (int)v;
  }
  o->first_run = raw(r, "--first-run") != NULL;
  o->each_run = raw(r, "--each-run") != NULL;
  if ((s = raw(r, "--csv"))) {
    if (!*s)
      return usage_error("--csv: the file name is empty");
    o->csv = s;
  }
  return TL_EXIT_OK;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage_error("no command given");
  const char *cmd_name = argv[1];
  if (strcmp(cmd_name, "help") == 0 || strcmp(cmd_name, "--help") == 0 ||
      strcmp(cmd_name, "-h") == 0) {
    if (argc > 2)
      return usage_error("%s takes no arguments (got '%s')", cmd_name, argv[2]);
    fputs(usage_text, stdout);
    return TL_EXIT_OK;
  }
  int cmd = strcmp(cmd_name, "info") == 0       ? CMD_INFO
            : strcmp(cmd_name, "check") == 0    ? CMD_CHECK
            : strcmp(cmd_name, "bench") == 0    ? CMD_BENCH
            : strcmp(cmd_name, "plantime") == 0 ? CMD_PLANTIME
                                                : 0;
  if (!cmd)
    return usage_error("unknown command '%s' (valid: info, check, bench, plantime, help)",
                       cmd_name);

  raw_args r;
  memset(&r, 0, sizeof r);
  for (int i = 2; i < argc; ++i) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage_text, stdout);
      return TL_EXIT_OK;
    }
    const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    int f = flag_index(a, len);
    if (f < 0)
      return usage_error("%s: unknown option '%s'", cmd_name, a);
    if (!(flags[f].commands & cmd))
      return usage_error("%s: option '%s' does not apply to this command", cmd_name,
                         flags[f].name);
    if (!flags[f].takes_value) {
      if (eq)
        return usage_error("%s takes no value (got '%s')", flags[f].name, a);
      r.v[f] = "1";
    } else if (eq) {
      r.v[f] = eq + 1;
    } else {
      if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
        return usage_error("%s needs a value", flags[f].name);
      r.v[f] = argv[++i];
    }
  }

  tl_opts o;
  int rc = build_opts(cmd, &r, &o);
  if (rc != TL_EXIT_OK)
    return rc;
  switch (cmd) {
  case CMD_INFO: return tl_cmd_info(&o);
  case CMD_CHECK: return tl_cmd_check(&o);
  case CMD_PLANTIME: return tl_cmd_plantime(&o);
  default: return tl_cmd_bench(&o);
  }
}
