/* The double-precision reference convolution (also the CPU backend's kernel). */
#ifndef CF_COMMON_REFERENCE_H
#define CF_COMMON_REFERENCE_H

#include "convfuse/convfuse.h"
#include "shape.h"

/* Full output, split over `threads` host threads (<= 0: one per online CPU). Inputs are
 * trusted to match shape. Only fails on host allocation/thread failure, before writing. */
cf_status cf_reference_run(const cf_conv_shape *shape, const cf_op *ops, int n_ops,
                           const float *input, const float *weight, const float *bias,
                           float *output, int threads);

#endif
