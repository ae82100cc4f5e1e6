/* Division by a divisor fixed at plan time, as a multiply-high, an add and a shift.
 *
 * The kernels split flat tile and row indices into coordinates once per tile; a runtime
 * integer division compiles to ~20 instructions on NVIDIA GPUs, this to three. The host
 * makes the constants (cf_fastdiv_make), the kernels apply them (q = (umulhi(n, mul) + n)
 * >> shift, in 32-bit unsigned arithmetic). Exact for every 0 <= n < 2^31 and 1 <= d < 2^31:
 * with 2^(shift-1) < d <= 2^shift and mul = floor(2^32 (2^shift - d) / d) + 1, the sum
 * n + umulhi(n, mul) stays below 2^32 because mul < 2^32. Plain C: included by host code
 * and, through kernels_cuda/launch.h, by the .cu kernels. */
#ifndef CF_COMMON_FASTDIV_H
#define CF_COMMON_FASTDIV_H

#include <stdint.h>

typedef struct cf_fastdiv {
  int32_t d;      /* the divisor, >= 1 */
  uint32_t mul;   /* floor(2^32 * (2^shift - d) / d) + 1 */
  uint32_t shift; /* ceil(log2(d)) */
} cf_fastdiv;

/* The constants for divisor d (1 <= d < 2^31; the caller checks). */
static inline cf_fastdiv cf_fastdiv_make(int32_t d) {
  cf_fastdiv f;
  uint32_t shift = 0;
  while (((uint64_t)1 << shift) < (uint64_t)d)
    ++shift;
  f.d = d;
  f.shift = shift;
  f.mul = (uint32_t)((((uint64_t)1 << 32) * (((uint64_t)1 << shift) - (uint64_t)d)) /
                         (uint64_t)d + 1);
  return f;
}

/* n / f.d for 0 <= n < 2^31, computed as the kernels do (the host-side twin for tests). */
static inline int32_t cf_fastdiv_apply(int32_t n, cf_fastdiv f) {
  const uint32_t hi = (uint32_t)(((uint64_t)(uint32_t)n * f.mul) >> 32);
  return (int32_t)((hi + (uint32_t)n) >> f.shift);
}

#endif
