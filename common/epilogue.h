/* The pointwise chain after the convolution: validation, folding, and scalar evaluation
 * (double precision for the reference, float for the CPU backend). */
#ifndef CF_COMMON_EPILOGUE_H
#define CF_COMMON_EPILOGUE_H

#include "convfuse/convfuse.h"

/* A chain as kernels run it: leading ADD/SUBs are folded into bias_shift (added to the conv
 * output together with the bias), the rest are applied in order. */
typedef struct cf_epilogue {
  float bias_shift;
  int n_ops;
  cf_op ops[CF_MAX_OPS];
} cf_epilogue;

/* Checks n_ops, ops and each op's kind and value (finite for ADD/SUB/MUL). */
cf_status cf_epilogue_validate(const char *fn, const cf_op *ops, int n_ops);

/* The same checks on a folded chain handed to a backend: a bad one there is convfuse's own
 * bug, so the failure is CF_ERR_INTERNAL (with validate's message, prefixed by who). */
cf_status cf_epilogue_check_folded(const char *who, const cf_epilogue *epi);

/* Folds a validated chain: leading ADD/SUBs whose values (and running sum) stay within
 * CFK_FOLD_MAX_MAGNITUDE become bias_shift, summed in double and rounded once. */
void cf_epilogue_fold(const cf_op *ops, int n_ops, cf_epilogue *out);

/* Writes a compact chain description like "shift=-0.7 mish mish" into buf. */
void cf_epilogue_describe(const cf_epilogue *epi, char *buf, size_t len);

/* Short lowercase name of an op kind ("add", "mish", ...); "?" if unknown. */
const char *cf_op_name(cf_op_kind kind);

/* Exact ops in double (the reference semantics). */
double cf_op_apply_f64(const cf_op *op, double x);
/* The same ops in float, with the kernels' formulas (CPU backend). */
float cf_op_apply_f32(const cf_op *op, float x);

#endif
