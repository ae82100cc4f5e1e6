/* The convfuse tool's parsed command line and its subcommands. */
#ifndef CF_TOOL_TOOL_H
#define CF_TOOL_TOOL_H

#include <stdint.h>

#include "convfuse/convfuse.h"
#include "workloads.h"

/* Exit statuses. */
enum { TL_EXIT_OK = 0, TL_EXIT_FAIL = 1, TL_EXIT_USAGE = 2 };

typedef struct tl_opts {
  /* workloads: the selected ones, with --batch applied */
  tl_workload workloads[TL_BUILTIN_WORKLOADS + 1];
  int n_workloads;
  int64_t batch;         /* 0: each workload's own */
  /* backends: check takes several; bench one */
  cf_backend backends[4];
  int n_backends;
  int backend_explicit;  /* named on the command line (else "all": skip unusable ones) */
  cf_math maths[2];
  int n_maths;
  tl_dist dists[TL_DIST_COUNT];
  int n_dists;
  uint64_t seed;
  int iters, warmup;     /* plantime: iters = runs of each cache mode */
  const char *csv;
  int first_run;         /* plantime --first-run */
  int each_run;          /* bench --each-run: every timed run's time, in launch order */
} tl_opts;

int tl_cmd_info(const tl_opts *o);
int tl_cmd_check(const tl_opts *o);
int tl_cmd_bench(const tl_opts *o);
int tl_cmd_plantime(const tl_opts *o);

/* "fp32" / "tf32" */
const char *tl_math_name(cf_math m);

#endif
