/* A convolution descriptor validated and resolved into concrete extents. */
#ifndef CF_COMMON_SHAPE_H
#define CF_COMMON_SHAPE_H

#include <stdint.h>
#include "convfuse/convfuse.h"

/* All fields are positive (pads >= 0) and every product below fits in int64; each extent and
 * each tensor's element count is checked against the generated limits, so kernels may index
 * a tensor with int64 and any single extent with int32. */
typedef struct cf_conv_shape {
  int64_t n, c, h, w;        /* input */
  int64_t k, r, s;           /* weight [k][c][r][s] */
  int64_t p, q;              /* output height, width */
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int has_bias;
  int64_t input_elems, weight_elems, bias_elems, output_elems;
  int64_t gemm_m;            /* n * p * q */
  int64_t gemm_n;            /* k */
  int64_t gemm_k;            /* c * r * s */
} cf_conv_shape;

/* Validates d and fills shape. `fn` names the public function for the message. */
cf_status cf_shape_resolve(const char *fn, const cf_conv2d_desc *d, cf_conv_shape *shape);

/* Multiply-adds of the convolution (gemm_m * gemm_n * gemm_k), as a double. */
double cf_shape_macs(const cf_conv_shape *shape);

#endif
