#include "shape.h"

#include <string.h>

#include "cf_constants.h"
#include "error.h"

/* a * b into *out unless it overflows int64 (both operands are >= 0). */
static int mul_ok(int64_t a, int64_t b, int64_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}

static cf_status check_extent(const char *fn, const char *name, int64_t v, int64_t min) {
  if (v < min)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: %s must be >= %lld (got %lld)", fn, name,
                    (long long)min, (long long)v);
  if (v > CFK_MAX_EXTENT)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: %s must be <= %lld (got %lld)", fn, name,
                    (long long)CFK_MAX_EXTENT, (long long)v);
  return CF_OK;
}

/* Product of four extents, checked against overflow and the per-tensor element limit. */
static cf_status count4(const char *fn, const char *tensor, int64_t a, int64_t b, int64_t c,
                        int64_t d, int64_t *out) {
  int64_t ab, abc, abcd;
  if (!mul_ok(a, b, &ab) || !mul_ok(ab, c, &abc) || !mul_ok(abc, d, &abcd) ||
      abcd > (int64_t)CFK_MAX_ELEMENTS_PER_TENSOR)
    return cf_error(CF_ERR_INVALID_ARGUMENT,
                    "%s: %s has too many elements (%lld x %lld x %lld x %lld overflows the "
                    "limit of %lld)",
                    fn, tensor, (long long)a, (long long)b, (long long)c, (long long)d,
                    (long long)CFK_MAX_ELEMENTS_PER_TENSOR);
  *out = abcd;
  return CF_OK;
}

/* One spatial dimension: output extent of PyTorch's formula, or an error. */
static cf_status output_extent(const char *fn, char axis, int64_t in, int64_t kernel,
                               int64_t stride, int64_t pad, int64_t dil, int64_t *out) {
  /* All operands are <= MAX_EXTENT (< 2^31), so these int64 sums and products cannot overflow. */
  int64_t padded = in + 2 * pad;
  int64_t span = dil * (kernel - 1) + 1;
  if (span > padded)
    return cf_error(CF_ERR_INVALID_ARGUMENT,
                    "%s: kernel_%c spans %lld (kernel %lld, dilation %lld) but the padded input "
                    "is only %lld (size %lld + 2 * pad %lld)",
                    fn, axis, (long long)span, (long long)kernel, (long long)dil,
                    (long long)padded, (long long)in, (long long)pad);
  *out = (padded - span) / stride + 1;
  return CF_OK;
}

cf_status cf_shape_resolve(const char *fn, const cf_conv2d_desc *d, cf_conv_shape *sh) {
  if (!d)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: desc is NULL", fn);
  memset(sh, 0, sizeof *sh);
  sh->stride_h = d->stride_h == 0 ? 1 : d->stride_h;
  sh->stride_w = d->stride_w == 0 ? 1 : d->stride_w;
  sh->dil_h = d->dilation_h == 0 ? 1 : d->dilation_h;
  sh->dil_w = d->dilation_w == 0 ? 1 : d->dilation_w;
  CF_CHECK(check_extent(fn, "batch", d->batch, 1));
  CF_CHECK(check_extent(fn, "in_channels", d->in_channels, 1));
  CF_CHECK(check_extent(fn, "height", d->height, 1));
  CF_CHECK(check_extent(fn, "width", d->width, 1));
  CF_CHECK(check_extent(fn, "out_channels", d->out_channels, 1));
  CF_CHECK(check_extent(fn, "kernel_h", d->kernel_h, 1));
  CF_CHECK(check_extent(fn, "kernel_w", d->kernel_w, 1));
  CF_CHECK(check_extent(fn, "stride_h", sh->stride_h, 1));
  CF_CHECK(check_extent(fn, "stride_w", sh->stride_w, 1));
  CF_CHECK(check_extent(fn, "pad_h", d->pad_h, 0));
  CF_CHECK(check_extent(fn, "pad_w", d->pad_w, 0));
  CF_CHECK(check_extent(fn, "dilation_h", sh->dil_h, 1));
  CF_CHECK(check_extent(fn, "dilation_w", sh->dil_w, 1));
  if (d->has_bias != 0 && d->has_bias != 1)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: has_bias must be 0 or 1 (got %d)", fn,
                    d->has_bias);
  sh->n = d->batch;
  sh->c = d->in_channels;
  sh->h = d->height;
  sh->w = d->width;
  sh->k = d->out_channels;
  sh->r = d->kernel_h;
  sh->s = d->kernel_w;
  sh->pad_h = d->pad_h;
  sh->pad_w = d->pad_w;
  sh->has_bias = d->has_bias;
  CF_CHECK(output_extent(fn, 'h', sh->h, sh->r, sh->stride_h, sh->pad_h, sh->dil_h, &sh->p));
  CF_CHECK(output_extent(fn, 'w', sh->w, sh->s, sh->stride_w, sh->pad_w, sh->dil_w, &sh->q));
  CF_CHECK(check_extent(fn, "output height", sh->p, 1));
  CF_CHECK(check_extent(fn, "output width", sh->q, 1));
  CF_CHECK(count4(fn, "input", sh->n, sh->c, sh->h, sh->w, &sh->input_elems));
  CF_CHECK(count4(fn, "weight", sh->k, sh->c, sh->r, sh->s, &sh->weight_elems));
  CF_CHECK(count4(fn, "output", sh->n, sh->k, sh->p, sh->q, &sh->output_elems));
  CF_CHECK(count4(fn, "GEMM M (batch x out_h x out_w)", sh->n, sh->p, sh->q, 1, &sh->gemm_m));
  CF_CHECK(count4(fn, "GEMM K (in_channels x kernel_h x kernel_w)", sh->c, sh->r, sh->s, 1,
                  &sh->gemm_k));
  sh->gemm_n = sh->k;
  sh->bias_elems = sh->has_bias ? sh->k : 0;
  return CF_OK;
}

double cf_shape_macs(const cf_conv_shape *sh) {
  return (double)sh->gemm_m * (double)sh->gemm_n * (double)sh->gemm_k;
}

cf_status cf_conv2d_output_dims(const cf_conv2d_desc *d, int64_t *out_h, int64_t *out_w) {
  static const char fn[] = "cf_conv2d_output_dims";
  cf_conv_shape sh;
  if (!out_h || !out_w)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !out_h ? "out_h" : "out_w");
  CF_CHECK(cf_shape_resolve(fn, d, &sh));
  *out_h = sh.p;
  *out_w = sh.q;
  return CF_OK;
}
