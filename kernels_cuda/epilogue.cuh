// Device-side epilogue ops and the epilogue functors every CUDA kernel is specialised on.
//
// The scalar formulas are those of cf_op_apply_f32 (common/epilogue.c): accurate expf / tanhf /
// log1pf (never build with --use_fast_math), relu that propagates NaN; mish with one exp and
// one division and the CFK_MISH_* cut-offs, through the fast intrinsics (see cfk_mish).
//
// A functor has `template <int TM, int TN> __device__ void apply(float (&v)[TM][TN]) const`
// which transforms a thread's whole register micro-tile in place:
//   - CfkEpiFixed<op, op, ...>: a compile-time chain of ops without a value (relu, tanh,
//     sigmoid, softplus, mish), fully inlined; CfkEpiFixed<> is the empty chain.
//   - CfkEpiGeneric: any chain, from a small struct passed as a kernel argument; per op one
//     warp-uniform switch, and inside each case an unrolled loop over the micro-tile.
#ifndef CF_KERNELS_CUDA_EPILOGUE_CUH
#define CF_KERNELS_CUDA_EPILOGUE_CUH

#include "cf_constants.h"
#include "kernels_cuda/launch.h"

__device__ __forceinline__ float cfk_relu(float x) { return x < 0.0f ? 0.0f : x; }

__device__ __forceinline__ float cfk_tanh(float x) { return tanhf(x); }

__device__ __forceinline__ float cfk_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float cfk_softplus(float x) {
  return x > CFK_SOFTPLUS_THRESHOLD ? x : log1pf(expf(x));
}

// mish is the hot op of both workloads: exp and division through the SFU approximations
// (__expf: 2 ulp + |x|*2^-24; __fdividef: 2 ulp for denominators below 2^126, and n + 2 stays
// below e^40 here), about 1e-6 relative in all: far inside the 1e-4 contract, and
// measured: the accurate expf and IEEE division cost 0.95 ms per mish on sub-sub-mish (H200).
// The same function and cut-offs as cf_op_apply_f32, written as one form (see below).
// The SFU approximations without the denormal fix-ups that __expf / __fdividef wrap them in
// (measured: those fix-ups were a third of the epilogue's instructions). Flushing is safe
// here: exp's tiny results only ever scale x toward 0, and the reciprocal's argument is >= 2.
__device__ __forceinline__ float cfk_exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float cfk_rcp_ftz(float x) {
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Branch-free: x * n/(n+2) has no cancellation anywhere, so one form serves all x once
// exp's argument is clamped (n/(n+2) -> 1 exactly in fp32 above the clamp, and +inf * that
// ratio stays +inf). NaN: fminf(NaN, c) = c, but the product still carries x. x = -inf (and
// any x whose true mish underflows) selects -0 at the low cut-off. ex2 and rcp are within
// 2 ulp: about 1e-6 relative in all, far inside the 1e-4 contract.
__device__ __forceinline__ float cfk_mish(float x) {
  const float e = cfk_exp2_ftz(fminf(x, CFK_MISH_HIGH_CUTOFF) * 1.4426950408889634f);
  const float n = e * (e + 2.0f);                 // tanh(softplus(x)) = n / (n + 2)
  const float y = x * (n * cfk_rcp_ftz(n + 2.0f));
  return x < CFK_MISH_LOW_CUTOFF ? -0.0f : y;
}

// Valueless op by compile-time code.
template <int OP>
__device__ __forceinline__ float cfk_op_const(float x) {
  static_assert(OP == CFK_OP_RELU || OP == CFK_OP_TANH || OP == CFK_OP_SIGMOID ||
                    OP == CFK_OP_SOFTPLUS || OP == CFK_OP_MISH,
                "fixed epilogue chains hold only ops without a value");
  if (OP == CFK_OP_RELU)
    return cfk_relu(x);
  if (OP == CFK_OP_TANH)
    return cfk_tanh(x);
  if (OP == CFK_OP_SIGMOID)
    return cfk_sigmoid(x);
  if (OP == CFK_OP_SOFTPLUS)
    return cfk_softplus(x);
  return cfk_mish(x);
}

// Any op by run-time code (for callers holding one value at a time; the generic functor
// below switches once per micro-tile instead).
__device__ __forceinline__ float cfk_op_apply(int kind, float value, float x) {
  switch (kind) {
  case CFK_OP_ADD: return x + value;
  case CFK_OP_SUB: return x - value;
  case CFK_OP_MUL: return x * value;
  case CFK_OP_RELU: return cfk_relu(x);
  case CFK_OP_TANH: return cfk_tanh(x);
  case CFK_OP_SIGMOID: return cfk_sigmoid(x);
  case CFK_OP_SOFTPLUS: return cfk_softplus(x);
  case CFK_OP_MISH: return cfk_mish(x);
  default: return x;
  }
}

template <int... OPS>
struct CfkEpiFixed;

template <>
struct CfkEpiFixed<> {
  __device__ __forceinline__ static float scalar(float x) { return x; }
  template <int TM, int TN>
  __device__ __forceinline__ void apply(float (&)[TM][TN]) const {}
};

template <int OP, int... REST>
struct CfkEpiFixed<OP, REST...> {
  __device__ __forceinline__ static float scalar(float x) {
    return CfkEpiFixed<REST...>::scalar(cfk_op_const<OP>(x));
  }
  template <int TM, int TN>
  __device__ __forceinline__ void apply(float (&v)[TM][TN]) const {
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j)
        v[i][j] = scalar(v[i][j]);
  }
};

// Applies op to every element of the micro-tile; OP is a compile-time case of the switch.
template <int OP, int TM, int TN>
__device__ __forceinline__ void cfk_tile_apply_const(float (&v)[TM][TN]) {
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j)
      v[i][j] = cfk_op_const<OP>(v[i][j]);
}

struct CfkEpiGeneric {
  cfk_epilogue_ops ops;

  template <int TM, int TN>
  __device__ __forceinline__ void apply(float (&v)[TM][TN]) const {
    const int n_ops = ops.n_ops;
#pragma unroll 1
    for (int op = 0; op < n_ops; ++op) {
      const float c = ops.value[op];
      switch (ops.kind[op]) { // kernel argument: uniform across the grid
      case CFK_OP_ADD:
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j)
            v[i][j] = v[i][j] + c;
        break;
      case CFK_OP_SUB:
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j)
            v[i][j] = v[i][j] - c;
        break;
      case CFK_OP_MUL:
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j)
            v[i][j] = v[i][j] * c;
        break;
      case CFK_OP_RELU: cfk_tile_apply_const<CFK_OP_RELU>(v); break;
      case CFK_OP_TANH: cfk_tile_apply_const<CFK_OP_TANH>(v); break;
      case CFK_OP_SIGMOID: cfk_tile_apply_const<CFK_OP_SIGMOID>(v); break;
      case CFK_OP_SOFTPLUS: cfk_tile_apply_const<CFK_OP_SOFTPLUS>(v); break;
      case CFK_OP_MISH: cfk_tile_apply_const<CFK_OP_MISH>(v); break;
      default: break; // validated on the host: cannot happen
      }
    }
  }
};

#endif
