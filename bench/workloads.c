#include "workloads.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "epilogue.h"
#include "util.h"

void tl_workload_builtin(int i, tl_workload *out) {
  memset(out, 0, sizeof *out);
  if (i == 0) {
    /* Conv2d(8, 64, 3) on 128x8x256x256, then x - 0.5, x - 0.2, mish */
    snprintf(out->name, sizeof out->name, "sub-sub-mish");
    out->desc = (cf_conv2d_desc){.batch = 128, .in_channels = 8, .height = 256, .width = 256,
                                 .out_channels = 64, .kernel_h = 3, .kernel_w = 3,
                                 .stride_h = 1, .stride_w = 1, .has_bias = 1};
    out->ops[0] = (cf_op){CF_OP_SUB, 0.5f};
    out->ops[1] = (cf_op){CF_OP_SUB, 0.2f};
    out->ops[2] = (cf_op){CF_OP_MISH, 0.0f};
    out->n_ops = 3;
  } else {
    /* Conv2d(64, 128, 3) on 64x64x256x256, then mish, mish */
    snprintf(out->name, sizeof out->name, "mish-mish");
    out->desc = (cf_conv2d_desc){.batch = 64, .in_channels = 64, .height = 256, .width = 256,
                                 .out_channels = 128, .kernel_h = 3, .kernel_w = 3,
                                 .stride_h = 1, .stride_w = 1, .has_bias = 1};
    out->ops[0] = (cf_op){CF_OP_MISH, 0.0f};
    out->ops[1] = (cf_op){CF_OP_MISH, 0.0f};
    out->n_ops = 2;
  }
}

int tl_workload_lookup(const char *name) {
  for (int i = 0; i < TL_BUILTIN_WORKLOADS; ++i) {
    tl_workload w;
    tl_workload_builtin(i, &w);
    if (strcmp(name, w.name) == 0)
      return i;
  }
  return -1;
}

/* Splits s at commas into at most max fields (copied into store). Returns the count or -1. */
static int split_commas(const char *s, char store[][64], int max) {
  int n = 0;
  const char *p = s;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (n >= max || len == 0 || len >= 64)
      return -1;
    memcpy(store[n], p, len);
    store[n][len] = '\0';
    ++n;
    if (!comma)
      return n;
    p = comma + 1;
  }
}

int tl_parse_shape(const char *s, cf_conv2d_desc *d) {
  char f[10][64];
  int n = split_commas(s, f, 10);
  if (n < 7)
    return -1;
  int64_t v[10];
  for (int i = 0; i < n; ++i) {
    int64_t lo = i == 8 ? 0 : 1; /* pad may be 0 */
    if (tl_parse_i64(f[i], lo, INT32_MAX, &v[i]) != 0)
      return -1;
  }
  memset(d, 0, sizeof *d);
  d->batch = v[0];
  d->in_channels = v[1];
  d->height = v[2];
  d->width = v[3];
  d->out_channels = v[4];
  d->kernel_h = v[5];
  d->kernel_w = v[6];
  d->stride_h = d->stride_w = n > 7 ? v[7] : 1;
  d->pad_h = d->pad_w = n > 8 ? v[8] : 0;
  d->dilation_h = d->dilation_w = n > 9 ? v[9] : 1;
  d->has_bias = 1;
  return 0;
}

static int op_takes_value(cf_op_kind k) {
  return k == CF_OP_ADD || k == CF_OP_SUB || k == CF_OP_MUL;
}

int tl_parse_ops(const char *s, cf_op *ops, int *n_ops) {
  if (strcmp(s, "none") == 0) {
    *n_ops = 0;
    return 0;
  }
  char f[CF_MAX_OPS + 1][64];
  int n = split_commas(s, f, CF_MAX_OPS + 1);
  if (n < 0 || n > CF_MAX_OPS) {
    fprintf(stderr, "convfuse: --ops '%s': expected 1..%d comma-separated ops (or none)\n", s,
            CF_MAX_OPS);
    return -1;
  }
  for (int i = 0; i < n; ++i) {
    char *colon = strchr(f[i], ':');
    if (colon)
      *colon = '\0';
    int kind = -1;
    for (int k = CF_OP_ADD; k <= CF_OP_MISH; ++k)
      if (strcmp(f[i], cf_op_name((cf_op_kind)k)) == 0)
        kind = k;
    if (kind < 0) {
      fprintf(stderr,
              "convfuse: --ops: unknown op '%s' (valid: add:V sub:V mul:V relu tanh sigmoid "
              "softplus mish)\n",
              f[i]);
      return -1;
    }
    ops[i].kind = (cf_op_kind)kind;
    ops[i].value = 0.0f;
    if (op_takes_value(ops[i].kind) != (colon != NULL)) {
      if (colon)
        fprintf(stderr, "convfuse: --ops: %s takes no value (got %s:%s)\n", f[i], f[i],
                colon + 1);
      else
        fprintf(stderr, "convfuse: --ops: %s needs a value (%s:V)\n", f[i], f[i]);
      return -1;
    }
    if (colon && tl_parse_float(colon + 1, &ops[i].value) != 0) {
      fprintf(stderr, "convfuse: --ops: %s value '%s' is not a finite number\n", f[i],
              colon + 1);
      return -1;
    }
  }
  *n_ops = n;
  return 0;
}

void tl_ops_describe(const cf_op *ops, int n_ops, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  if (n_ops == 0)
    snprintf(buf, len, "none");
  for (int i = 0; i < n_ops && used < len; ++i) {
    int w = op_takes_value(ops[i].kind)
                ? snprintf(buf + used, len - used, "%s%s %g", i ? ", " : "",
                           cf_op_name(ops[i].kind), (double)ops[i].value)
                : snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                           cf_op_name(ops[i].kind));
    if (w < 0)
      break;
    used += (size_t)w;
  }
}

void tl_workload_describe(const tl_workload *w, char *buf, size_t len) {
  const cf_conv2d_desc *d = &w->desc;
  char chain[256];
  tl_ops_describe(w->ops, w->n_ops, chain, sizeof chain);
  int64_t p = 0, q = 0;
  char outdims[96] = "?";
  if (cf_conv2d_output_dims(d, &p, &q) == CF_OK)
    snprintf(outdims, sizeof outdims, "%lldx%lldx%lldx%lld", (long long)d->batch,
             (long long)d->out_channels, (long long)p, (long long)q);
  snprintf(buf, len,
           "input %lldx%lldx%lldx%lld, conv %lld->%lld %lldx%lld stride %lld pad %lld dilation "
           "%lld %s, ops [%s] -> output %s",
           (long long)d->batch, (long long)d->in_channels, (long long)d->height,
           (long long)d->width, (long long)d->in_channels, (long long)d->out_channels,
           (long long)d->kernel_h, (long long)d->kernel_w,
           (long long)(d->stride_h ? d->stride_h : 1), (long long)d->pad_h,
           (long long)(d->dilation_h ? d->dilation_h : 1), d->has_bias ? "with bias" : "no bias",
           chain, outdims);
}

void tl_workload_flags(const tl_workload *w, char *buf, size_t len) {
  const cf_conv2d_desc *d = &w->desc;
  if (!w->custom) {
    snprintf(buf, len, "--workload %s --batch %lld", w->name, (long long)d->batch);
    return;
  }
  char ops[CF_MAX_OPS * 24 + 8] = "none";
  size_t used = 0;
  for (int i = 0; i < w->n_ops; ++i) {
    int n = op_takes_value(w->ops[i].kind)
                ? snprintf(ops + used, sizeof ops - used, "%s%s:%.9g", i ? "," : "",
                           cf_op_name(w->ops[i].kind), (double)w->ops[i].value)
                : snprintf(ops + used, sizeof ops - used, "%s%s", i ? "," : "",
                           cf_op_name(w->ops[i].kind));
    if (n < 0 || (size_t)n >= sizeof ops - used)
      break;
    used += (size_t)n;
  }
  snprintf(buf, len,
           "--workload custom --shape %lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld "
           "--ops %s%s --batch %lld",
           (long long)d->batch, (long long)d->in_channels, (long long)d->height,
           (long long)d->width, (long long)d->out_channels, (long long)d->kernel_h,
           (long long)d->kernel_w, (long long)(d->stride_h ? d->stride_h : 1),
           (long long)d->pad_h, (long long)(d->dilation_h ? d->dilation_h : 1), ops,
           d->has_bias ? "" : " --no-bias", (long long)d->batch);
}

static const char *const dist_names[TL_DIST_COUNT] = {"rand", "x3", "small", "neg", "huge"};

const char *tl_dist_name(tl_dist d) {
  return (unsigned)d < TL_DIST_COUNT ? dist_names[d] : "?";
}

int tl_dist_lookup(const char *name) {
  for (int i = 0; i < TL_DIST_COUNT; ++i)
    if (strcmp(name, dist_names[i]) == 0)
      return i;
  return -1;
}

/* ---- PRNG ---- */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void tl_rng_seed(tl_rng *r, uint64_t seed) { r->state = seed; }

uint64_t tl_rng_next(tl_rng *r) {
  r->state += 0x9e3779b97f4a7c15ULL;
  return mix64(r->state);
}

uint64_t tl_rng_below(tl_rng *r, uint64_t n) {
  /* modulo bias is below n / 2^64: irrelevant for sampling */
  return tl_rng_next(r) % n;
}

uint64_t tl_stream_key(uint64_t seed, int stream, int dist) {
  return mix64(mix64(seed ^ 0x5851f42d4c957f2dULL) + (uint64_t)stream * 0x9e3779b97f4a7c15ULL +
               (uint64_t)dist * 0xd1b54a32d192ed03ULL);
}

/* Element i of stream key as U[0,1) with 24 random bits (every value exactly a float). */
static inline float uniform01(uint64_t key, uint64_t i) {
  return (float)(mix64(key + i * 0x9e3779b97f4a7c15ULL) >> 40) * 0x1.0p-24f;
}

typedef struct fill_job {
  float *x;
  size_t n;
  uint64_t key;
  float scale, offset; /* x = offset + scale * u */
} fill_job;

static void fill_part(void *ctx, int tid, int nthreads) {
  const fill_job *j = ctx;
  int64_t b, e;
  tl_split((int64_t)j->n, tid, nthreads, &b, &e);
  for (int64_t i = b; i < e; ++i)
    j->x[i] = j->offset + j->scale * uniform01(j->key, (uint64_t)i);
}

static void fill(float *x, size_t n, uint64_t key, float scale, float offset) {
  fill_job j = {x, n, key, scale, offset};
  tl_parallel(n < (1u << 20) ? 1 : tl_threads(), fill_part, &j);
}

static const float dist_scale[TL_DIST_COUNT] = {1.0f, 3.0f, 0.01f, -1.0f, 1e5f};

void tl_fill_input(float *x, size_t n, tl_dist d, uint64_t key) {
  fill(x, n, key, dist_scale[d], 0.0f);
}

double tl_dist_magnitude(tl_dist d) {
  return d == TL_DIST_HUGE ? (double)dist_scale[d] : 1.0;
}

void tl_fill_symmetric(float *x, size_t n, float bound, uint64_t key) {
  fill(x, n, key, 2.0f * bound, -bound);
}

void tl_fill_problem(const tl_workload *w, tl_dist d, uint64_t seed, float *input,
                     size_t input_elems, float *weight, size_t weight_elems, float *bias,
                     size_t bias_elems) {
  const cf_conv2d_desc *desc = &w->desc;
  double fan_in = (double)desc->in_channels * (double)desc->kernel_h * (double)desc->kernel_w;
  float bound = (float)(1.0 / sqrt(fan_in));
  tl_fill_input(input, input_elems, d, tl_stream_key(seed, TL_STREAM_INPUT, (int)d));
  tl_fill_symmetric(weight, weight_elems, bound, tl_stream_key(seed, TL_STREAM_WEIGHT, (int)d));
  if (bias)
    tl_fill_symmetric(bias, bias_elems, bound, tl_stream_key(seed, TL_STREAM_BIAS, (int)d));
}
