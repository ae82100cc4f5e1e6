/* convfuse OpenCL: the pointwise epilogue ops, specialised at build time.
 *
 * The chain is chosen by build options (oneDNN style, one define per op):
 *   -DCF_EPI_N=<n>            number of ops after folding (0..CFK_MAX_OPS)
 *   -DCF_EPI_OP<i>=<code>     op code of step i (CFK_OP_* from constants.def)
 * The scalar of each ADD/SUB/MUL step is a kernel argument (v0..v7), so the program cache does
 * not grow per value. CF_EPI_APPLY(x) expands to straight-line code: no run-time switch.
 *
 * Formulas are exactly those of cf_op_apply_f32 in common/epilogue.c. Accurate built-ins only
 * (exp, tanh, log1p): never native_* and never -cl-fast-relaxed-math; the one exception is mish
 * in the NVIDIA tensor-core program (CF_MMA_KERNEL), which is the CUDA kernels' form.
 *
 * Note: this file is concatenated after cf_constants.h and before the kernels (sorted by name),
 * so it must not #include anything. */
#ifndef CF_CL_EPILOGUE_H
#define CF_CL_EPILOGUE_H

#ifndef CF_EPI_N
#define CF_EPI_N 0
#endif
#if CF_EPI_N < 0 || CF_EPI_N > CFK_MAX_OPS
#error "CF_EPI_N out of range"
#endif

#define CF_CAT_(a, b) a##b
#define CF_CAT(a, b) CF_CAT_(a, b)

/* One function per op code: cf_op_<code>(x, value). The codes are checked against
 * constants.def so that a renumbering there cannot silently swap ops. */
#if CFK_OP_ADD != 0 || CFK_OP_SUB != 1 || CFK_OP_MUL != 2 || CFK_OP_RELU != 3 || \
    CFK_OP_TANH != 4 || CFK_OP_SIGMOID != 5 || CFK_OP_SOFTPLUS != 6 || CFK_OP_MISH != 7
#error "constants.def op codes changed: update kernels_cl/cf_epilogue.h"
#endif

static inline float cf_op_0(float x, float v) { return x + v; } /* add */
static inline float cf_op_1(float x, float v) { return x - v; } /* sub */
static inline float cf_op_2(float x, float v) { return x * v; } /* mul */
static inline float cf_op_3(float x, float v) {                 /* relu: NaN propagates */
  (void)v;
  return x < 0.0f ? 0.0f : x;
}
static inline float cf_op_4(float x, float v) { /* tanh */
  (void)v;
  return tanh(x);
}
static inline float cf_op_5(float x, float v) { /* sigmoid */
  (void)v;
  return 1.0f / (1.0f + exp(-x));
}
static inline float cf_op_6(float x, float v) { /* softplus (PyTorch threshold) */
  (void)v;
  return x > CFK_SOFTPLUS_THRESHOLD ? x : log1p(exp(x));
}
#ifdef CF_MMA_KERNEL
/* The tensor-core program exists only where its probe proved NVIDIA's inline PTX (the -DCF_ASM
 * keyword comes with it): there mish is the CUDA kernels' (kernels_cuda/epilogue.cuh,
 * cfk_mish), branch-free on the SFU's ex2 and rcp approximations (2 ulp each, ~1e-6 relative
 * in all against a 1e-4 contract), so that both backends compute the same values. The
 * accurate form below cost the OpenCL kernel a third of its instructions (NOTES v43). */
#if defined(CFM_EMULATE) && CFM_EMULATE /* no PTX (conv2d_mma.cl): the exact functions */
static inline float cf_ex2_ftz(float x) { return exp2(x); }
static inline float cf_rcp_ftz(float x) { return 1.0f / x; }
#else
static inline float cf_ex2_ftz(float x) {
  float y;
  CF_ASM("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
static inline float cf_rcp_ftz(float x) {
  float y;
  CF_ASM("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
#endif
static inline float cf_op_7(float x, float v) { /* mish: one exp, one reciprocal */
  (void)v;
  const float e = cf_ex2_ftz(fmin(x, CFK_MISH_HIGH_CUTOFF) * 1.4426950408889634f);
  const float n = e * (e + 2.0f); /* tanh(softplus(x)) = n / (n + 2) */
  const float y = x * (n * cf_rcp_ftz(n + 2.0f));
  return x < CFK_MISH_LOW_CUTOFF ? -0.0f : y; /* -inf and underflowing values: -0 */
}
#else
static inline float cf_op_7(float x, float v) { /* mish: one exp, one division */
  (void)v;
  if (x < CFK_MISH_LOW_CUTOFF)
    return -0.0f; /* the true value underflows fp32; also mish(-inf) */
  if (x > CFK_MISH_HIGH_CUTOFF)
    return x; /* mish(x) == x in fp32; also mish(+inf) */
  float e = exp(x);
  float n = e * (e + 2.0f); /* tanh(softplus(x)) = n / (n + 2) */
  if (x <= CFK_MISH_SPLIT)
    return x * n / (n + 2.0f);
  return x - 2.0f * x / (n + 2.0f);
}
#endif

/* Step i of the chain, present only when i < CF_EPI_N. The op define must be a plain integer
 * (or a macro expanding to one) so that it pastes into cf_op_<code>. */
#define CF_EPI_STEP(i, x) x = CF_CAT(cf_op_, CF_CAT(CF_EPI_OP, i))(x, CF_CAT(epi_v, i))

#if CF_EPI_N > 0 && !defined(CF_EPI_OP0)
#error "CF_EPI_OP0 missing"
#endif
#if CF_EPI_N > 1 && !defined(CF_EPI_OP1)
#error "CF_EPI_OP1 missing"
#endif
#if CF_EPI_N > 2 && !defined(CF_EPI_OP2)
#error "CF_EPI_OP2 missing"
#endif
#if CF_EPI_N > 3 && !defined(CF_EPI_OP3)
#error "CF_EPI_OP3 missing"
#endif
#if CF_EPI_N > 4 && !defined(CF_EPI_OP4)
#error "CF_EPI_OP4 missing"
#endif
#if CF_EPI_N > 5 && !defined(CF_EPI_OP5)
#error "CF_EPI_OP5 missing"
#endif
#if CF_EPI_N > 6 && !defined(CF_EPI_OP6)
#error "CF_EPI_OP6 missing"
#endif
#if CF_EPI_N > 7 && !defined(CF_EPI_OP7)
#error "CF_EPI_OP7 missing"
#endif

#if CF_EPI_N > 0
#define CF_EPI_S0(x) CF_EPI_STEP(0, x)
#else
#define CF_EPI_S0(x) (void)0
#endif
#if CF_EPI_N > 1
#define CF_EPI_S1(x) CF_EPI_STEP(1, x)
#else
#define CF_EPI_S1(x) (void)0
#endif
#if CF_EPI_N > 2
#define CF_EPI_S2(x) CF_EPI_STEP(2, x)
#else
#define CF_EPI_S2(x) (void)0
#endif
#if CF_EPI_N > 3
#define CF_EPI_S3(x) CF_EPI_STEP(3, x)
#else
#define CF_EPI_S3(x) (void)0
#endif
#if CF_EPI_N > 4
#define CF_EPI_S4(x) CF_EPI_STEP(4, x)
#else
#define CF_EPI_S4(x) (void)0
#endif
#if CF_EPI_N > 5
#define CF_EPI_S5(x) CF_EPI_STEP(5, x)
#else
#define CF_EPI_S5(x) (void)0
#endif
#if CF_EPI_N > 6
#define CF_EPI_S6(x) CF_EPI_STEP(6, x)
#else
#define CF_EPI_S6(x) (void)0
#endif
#if CF_EPI_N > 7
#define CF_EPI_S7(x) CF_EPI_STEP(7, x)
#else
#define CF_EPI_S7(x) (void)0
#endif

/* Applies the whole chain to the float lvalue x; needs float epi_v0..epi_v7 in scope. */
#define CF_EPI_APPLY(x) \
  do {                  \
    CF_EPI_S0(x);       \
    CF_EPI_S1(x);       \
    CF_EPI_S2(x);       \
    CF_EPI_S3(x);       \
    CF_EPI_S4(x);       \
    CF_EPI_S5(x);       \
    CF_EPI_S6(x);       \
    CF_EPI_S7(x);       \
  } while (0)

#endif /* CF_CL_EPILOGUE_H */
