/* The fp16 programs' per-channel weight scale, shared by conv2d_mma.cl's cf_f16_scale_weights
 * and conv2d_wgmma.cl's cf_wgmma_lay_out_weights (the CUDA kernels' rule): each output
 * channel's weights times the power of two 2^e that brings its largest |w| into [2^14, 2^15),
 * so that hi and lo of fp16 pairs stay normal fp16 numbers down to 2^-24 of it (an unscaled
 * weight of ~0.04 has its lo below 2^-14). e = 0 for a channel of zeros, with an inf, or
 * whose e would leave [-100, 60] (so 2^-e and the bias in scaled units stay normal floats); NaN
 * weights are skipped by the maximum and still give NaN sums (the range guard then reruns). */
#ifndef CF_CL_F16_SCALE_H
#define CF_CL_F16_SCALE_H

/* e for the n weights at w, found by the `threads` work-items of a group together (tid: this
 * one; top: `threads` words of local scratch); every work-item gets it. */
static inline int cf_f16_weight_exponent(__global const float *w, int n, __local uint *top,
                                         int tid, int threads) {
  /* |w| on the bits: non-negative floats order as their bit patterns; NaN left out */
  uint m = 0u;
  for (int k = tid; k < n; k += threads) {
    const uint a = as_uint(w[k]) & 0x7fffffffu;
    m = a <= 0x7f800000u && a > m ? a : m;
  }
  top[tid] = m;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int span = threads / 2; span > 0; span /= 2) {
    if (tid < span && top[tid + span] > top[tid])
      top[tid] = top[tid + span];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  m = top[0];
  /* m in [2^b, 2^(b+1)) with b its unbiased exponent: 2^(14 - b) */
  const int e = 14 - ((int)(m >> 23) - 127);
  const int ok = m != 0u && m < 0x7f800000u && m >= 0x00800000u && e >= -100 && e <= 60;
  return ok ? e : 0;
}

#endif /* CF_CL_F16_SCALE_H */
