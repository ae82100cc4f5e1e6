#include "epilogue.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cf_constants.h"
#include "error.h"

_Static_assert(CFK_OP_ADD == CF_OP_ADD && CFK_OP_SUB == CF_OP_SUB && CFK_OP_MUL == CF_OP_MUL &&
                   CFK_OP_RELU == CF_OP_RELU && CFK_OP_TANH == CF_OP_TANH &&
                   CFK_OP_SIGMOID == CF_OP_SIGMOID && CFK_OP_SOFTPLUS == CF_OP_SOFTPLUS &&
                   CFK_OP_MISH == CF_OP_MISH,
               "constants.def op codes must match cf_op_kind");
_Static_assert(CFK_MAX_OPS == CF_MAX_OPS, "constants.def MAX_OPS must match CF_MAX_OPS");

static int op_has_value(cf_op_kind k) {
  return k == CF_OP_ADD || k == CF_OP_SUB || k == CF_OP_MUL;
}

const char *cf_op_name(cf_op_kind kind) {
  static const char *const names[CFK_OP_COUNT] = {"add",     "sub",     "mul",      "relu",
                                                  "tanh",    "sigmoid", "softplus", "mish"};
  unsigned k = (unsigned)kind;
  return k < CFK_OP_COUNT ? names[k] : "?";
}

cf_status cf_epilogue_validate(const char *fn, const cf_op *ops, int n_ops) {
  if (n_ops < 0 || n_ops > CF_MAX_OPS)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: n_ops must be in 0..%d (got %d)", fn,
                    CF_MAX_OPS, n_ops);
  if (n_ops > 0 && !ops)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: ops is NULL but n_ops is %d", fn, n_ops);
  for (int i = 0; i < n_ops; ++i) {
    unsigned k = (unsigned)ops[i].kind;
    if (k >= CFK_OP_COUNT)
      return cf_error(CF_ERR_INVALID_ARGUMENT,
                      "%s: ops[%d].kind is not a cf_op_kind (got %d; valid 0..%d)", fn, i,
                      (int)ops[i].kind, CFK_OP_COUNT - 1);
    if (op_has_value(ops[i].kind) && !isfinite(ops[i].value))
      return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: ops[%d] (%s) value must be finite (got %g)",
                      fn, i, cf_op_name(ops[i].kind), (double)ops[i].value);
  }
  return CF_OK;
}

cf_status cf_epilogue_check_folded(const char *who, const cf_epilogue *epi) {
  if (cf_epilogue_validate(who, epi->ops, epi->n_ops) == CF_OK)
    return CF_OK;
  char why[256]; /* cf_last_error's buffer is rewritten by cf_error below */
  snprintf(why, sizeof why, "%s", cf_last_error());
  return cf_error(CF_ERR_INTERNAL, "%s (in a folded chain)", why);
}

void cf_epilogue_fold(const cf_op *ops, int n_ops, cf_epilogue *out) {
  double shift = 0.0;
  int i = 0;
  for (; i < n_ops && (ops[i].kind == CF_OP_ADD || ops[i].kind == CF_OP_SUB); ++i) {
    /* Huge values (x + 1e20 - 1e20) must round as the unfolded chain does: stop folding. */
    double v = ops[i].kind == CF_OP_ADD ? (double)ops[i].value : -(double)ops[i].value;
    if (fabs(v) > CFK_FOLD_MAX_MAGNITUDE || fabs(shift + v) > CFK_FOLD_MAX_MAGNITUDE)
      break;
    shift += v;
  }
  memset(out, 0, sizeof *out);
  out->bias_shift = (float)shift;
  out->n_ops = n_ops - i;
  for (int j = 0; i < n_ops; ++i, ++j)
    out->ops[j] = ops[i];
}

void cf_epilogue_describe(const cf_epilogue *epi, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  if (epi->bias_shift != 0.0f)
    used += (size_t)snprintf(buf, len, "shift=%g", (double)epi->bias_shift);
  for (int i = 0; i < epi->n_ops && used < len; ++i) {
    const cf_op *op = &epi->ops[i];
    const char *sep = used ? " " : "";
    if (op_has_value(op->kind))
      used += (size_t)snprintf(buf + used, len - used, "%s%s(%g)", sep, cf_op_name(op->kind),
                               (double)op->value);
    else
      used += (size_t)snprintf(buf + used, len - used, "%s%s", sep, cf_op_name(op->kind));
  }
  if (used == 0)
    snprintf(buf, len, "none");
}

/* ---- double precision: the reference semantics ---- */

static double softplus_f64(double x) {
  if (x > (double)CFK_SOFTPLUS_THRESHOLD)
    return x;
  return log1p(exp(x));
}

static double mish_f64(double x) {
  if (isinf(x))
    return x > 0 ? x : -0.0;
  return x * tanh(log1p(exp(x)));
}

double cf_op_apply_f64(const cf_op *op, double x) {
  switch (op->kind) {
  case CF_OP_ADD: return x + (double)op->value;
  case CF_OP_SUB: return x - (double)op->value;
  case CF_OP_MUL: return x * (double)op->value;
  case CF_OP_RELU: return x < 0.0 ? 0.0 : x; /* NaN < 0 is false: NaN propagates */
  case CF_OP_TANH: return tanh(x);
  case CF_OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case CF_OP_SOFTPLUS: return softplus_f64(x);
  case CF_OP_MISH: return mish_f64(x);
  }
  return x;
}

/* ---- float: the kernels' formulas (the GPU kernels implement exactly these) ---- */

static float mish_f32(float x) {
  if (x < CFK_MISH_LOW_CUTOFF)
    return -0.0f; /* the true value underflows fp32; also mish(-inf) */
  if (x > CFK_MISH_HIGH_CUTOFF)
    return x; /* 2x/(n+2) < x * 1e-17: mish(x) == x in fp32; also mish(+inf) */
  float e = expf(x);
  float n = e * (e + 2.0f); /* tanh(softplus(x)) = n / (n + 2) */
  /* Below the split x - 2x/(n+2) would cancel; above it x*n/(n+2) rounds one more time. */
  if (x <= CFK_MISH_SPLIT)
    return x * n / (n + 2.0f);
  return x - 2.0f * x / (n + 2.0f);
}

float cf_op_apply_f32(const cf_op *op, float x) {
  switch (op->kind) {
  case CF_OP_ADD: return x + op->value;
  case CF_OP_SUB: return x - op->value;
  case CF_OP_MUL: return x * op->value;
  case CF_OP_RELU: return x < 0.0f ? 0.0f : x;
  case CF_OP_TANH: return tanhf(x);
  case CF_OP_SIGMOID: return 1.0f / (1.0f + expf(-x));
  case CF_OP_SOFTPLUS: return x > CFK_SOFTPLUS_THRESHOLD ? x : log1pf(expf(x));
  case CF_OP_MISH: return mish_f32(x);
  }
  return x;
}
