/* The workloads the tool runs (DESIGN.md's two, plus a custom one from the command line), the
 * input distributions, PyTorch-like initialisation and a fast seeded counter-based PRNG. */
#ifndef CF_TOOL_WORKLOADS_H
#define CF_TOOL_WORKLOADS_H

#include <stddef.h>
#include <stdint.h>

#include "convfuse/convfuse.h"

typedef struct tl_workload {
  char name[32];
  cf_conv2d_desc desc;
  cf_op ops[CF_MAX_OPS];
  int n_ops;
  int custom; /* from --shape/--ops: repro lines must carry those flags */
} tl_workload;

enum { TL_BUILTIN_WORKLOADS = 2 };

/* Built-in workload i (0 <= i < TL_BUILTIN_WORKLOADS), as DESIGN.md defines it. */
void tl_workload_builtin(int i, tl_workload *out);
/* Index of a built-in workload by name, or -1. */
int tl_workload_lookup(const char *name);

/* "N,C,H,W,K,R,S[,stride[,pad[,dilation]]]" into a descriptor with bias: 0 or -1. */
int tl_parse_shape(const char *s, cf_conv2d_desc *d);
/* "sub:0.5,sub:0.2,mish" or "none": 0 or -1 (and a message to stderr saying what is wrong). */
int tl_parse_ops(const char *s, cf_op *ops, int *n_ops);

/* "sub 0.5, sub 0.2, mish" ("none" for an empty chain). */
void tl_ops_describe(const cf_op *ops, int n_ops, char *buf, size_t len);
/* One line: input dims, conv, chain. */
void tl_workload_describe(const tl_workload *w, char *buf, size_t len);
/* The flags that select w again: "--workload mish-mish --batch 2" or, for a custom one,
 * "--workload custom --shape ... --ops ... [--no-bias] --batch N". */
void tl_workload_flags(const tl_workload *w, char *buf, size_t len);

/* Input distributions (DESIGN.md's accuracy contract). */
/* Input distributions: DESIGN.md's four (U[0,1), times 3, times 0.01, negated), then times
 * 1e5, past fp16's 65504 (the fp16 kernels' range guard reruns them on TF32 / 3xTF32). */
typedef enum tl_dist {
  TL_DIST_RAND = 0,
  TL_DIST_X3,
  TL_DIST_SMALL,
  TL_DIST_NEG,
  TL_DIST_HUGE,
  TL_DIST_COUNT
} tl_dist;
/* The factor by which the check's per-element atol scales for d: 1e5 for TL_DIST_HUGE, 1 for
 * DESIGN.md's four, whose contract it is. */
double tl_dist_magnitude(tl_dist d);
const char *tl_dist_name(tl_dist d);
int tl_dist_lookup(const char *name); /* -1 if unknown */

/* A fast seeded PRNG: splitmix64. */
typedef struct tl_rng {
  uint64_t state;
} tl_rng;
void tl_rng_seed(tl_rng *r, uint64_t seed);
uint64_t tl_rng_next(tl_rng *r);
/* Uniform in [0, n), n >= 1. */
uint64_t tl_rng_below(tl_rng *r, uint64_t n);

/* Stream keys: each tensor of each distribution has its own stream for a seed, so the data
 * does not depend on which backends, math modes or workloads run (repro lines stay exact). */
enum { TL_STREAM_INPUT = 1, TL_STREAM_WEIGHT = 2, TL_STREAM_BIAS = 3, TL_STREAM_SAMPLE = 4 };
uint64_t tl_stream_key(uint64_t seed, int stream, int dist);

/* x[i] = distribution d applied to U[0,1) element i of stream `key` (torch.rand-like), on
 * host threads; the values depend only on (key, i). */
void tl_fill_input(float *x, size_t n, tl_dist d, uint64_t key);
/* x[i] uniform in [-bound, +bound) (PyTorch's default conv init has bound 1/sqrt(C*R*S)). */
void tl_fill_symmetric(float *x, size_t n, float bound, uint64_t key);

/* Random inputs, weights and bias of one workload for one distribution. bias may be NULL
 * iff !desc.has_bias. */
void tl_fill_problem(const tl_workload *w, tl_dist d, uint64_t seed, float *input,
                     size_t input_elems, float *weight, size_t weight_elems, float *bias,
                     size_t bias_elems);

#endif
