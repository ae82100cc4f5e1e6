/* Entry points for the in-tree tool and tests that are not part of the public contract. */
#ifndef CF_COMMON_INTERNAL_API_H
#define CF_COMMON_INTERNAL_API_H

#include "convfuse/convfuse.h"
#include "device_caps.h"
#include "planner.h"
#include "shape.h"

/* Like cf_plan_execute, but waits for completion and returns the device time of the launch in
 * milliseconds (device events where the backend has them, else the host clock). */
cf_status cf_plan_execute_timed(cf_plan *plan, const cf_buffer *input, const cf_buffer *weight,
                                const cf_buffer *bias, cf_buffer *output, double *ms);

/* The device capabilities the context's backend reported. */
const cf_device_caps *cf_context_caps(const cf_context *ctx);

/* The tile plan a plan was built with. */
const cf_tile_plan *cf_plan_tiles_of(const cf_plan *plan);

/* The reference value of one output element (n, k, p, q), in double, before rounding to
 * float. Inputs as for cf_reference_conv2d; the shape must come from cf_shape_resolve. */
double cf_reference_point(const cf_conv_shape *shape, const cf_op *ops, int n_ops,
                          const float *input, const float *weight, const float *bias,
                          int64_t n, int64_t k, int64_t p, int64_t q);

#endif
