// Warpgroup MMA (sm_90a): wgmma.mma_async m64n64k8 and m64n128k8 TF32 with A from registers
// and B from shared memory, and the fences and waits around it. Only conv_wgmma.cu (built for
// compute_90a alone) instantiates code that reaches these; elsewhere they trap, so that a
// wrong dispatch fails loudly instead of computing garbage.
#ifndef CF_KERNELS_CUDA_WGMMA_CUH
#define CF_KERNELS_CUDA_WGMMA_CUH

#include <cstdint>

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define CFK_HAVE_WGMMA 1
#else
#define CFK_HAVE_WGMMA 0
#endif

namespace {

// Shared-memory matrix descriptor of B for the canonical K-major layout without swizzle:
// 8 x 16-byte "core matrices" (8 rows of N, 4 TF32 values of K each, 128 contiguous bytes).
// lbo = bytes between core matrices adjacent in K, sbo = bytes between core matrices
// adjacent in N. Fields are 16-byte units: start (bits 0-13), lbo (16-29), sbo (32-45);
// swizzle mode (bits 62-63) 0 = none.
__device__ __forceinline__ uint64_t wg_desc(uint32_t smem_byte_addr, uint32_t lbo, uint32_t sbo) {
  return (uint64_t)((smem_byte_addr >> 4) & 0x3FFF) | ((uint64_t)((lbo >> 4) & 0x3FFF) << 16) |
         ((uint64_t)((sbo >> 4) & 0x3FFF) << 32);
}

__device__ __forceinline__ void wg_fence() {
#if CFK_HAVE_WGMMA
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

__device__ __forceinline__ void wg_commit() {
#if CFK_HAVE_WGMMA
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

template <int N>
__device__ __forceinline__ void wg_wait() {
#if CFK_HAVE_WGMMA
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#else
  __trap();
#endif
}

// Keeps the compiler from moving accumulator reads or writes across the asynchronous
// window (the registers belong to the tensor cores between issue and wait).
template <int G>
__device__ __forceinline__ void wg_pin(float (&d)[G][4]) {
#pragma unroll
  for (int i = 0; i < G; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
      asm volatile("" : "+f"(d[i][j])::"memory");
}

// Makes this thread's ordinary shared-memory writes (and completed cp.async copies) visible
// to the tensor cores' asynchronous reads; a block barrier must follow.
__device__ __forceinline__ void wg_fence_shared() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

#define CFK_WG_D32(d)                                                                          \
  "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),   \
      "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), \
      "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), \
      "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), \
      "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), \
      "+f"(d[7][2]), "+f"(d[7][3])

// The upper 32 accumulators of an m64n128 tile ([8..15][4]).
#define CFK_WG_D64(d)                                                                          \
  CFK_WG_D32(d),                                                                               \
      "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), \
      "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), \
      "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]), \
      "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), \
      "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]), "+f"(d[14][0]), "+f"(d[14][1]), \
      "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), \
      "+f"(d[15][3])

// One wgmma of 64 x 64 per warpgroup, A from registers, B by descriptor, accumulate as a
// run-time flag (see below); types: the instruction's shape and types, trans_b: ", 0" where the
// types take the transpose operand (fp16: B K-major, not transposed), else "".
#define CFK_WG_MMA64(name, types, trans_b)                                                      \
  __device__ __forceinline__ void name(float (&d)[8][4], const uint32_t (&a)[4],               \
                                       uint64_t desc_b, int accumulate = 1) {                  \
    CFK_WG_MMA64_BODY(types, trans_b)                                                          \
  }
#if CFK_HAVE_WGMMA
#define CFK_WG_MMA64_BODY(types, trans_b)                                                      \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                    \
               "wgmma.mma_async.sync.aligned." types " "                                        \
               "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "        \
               "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, " \
               "{%32, %33, %34, %35}, %36, p, 1, 1" trans_b ";\n}\n"                             \
               : CFK_WG_D32(d)                                                                  \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));
#else
#define CFK_WG_MMA64_BODY(types, trans_b)                                                      \
  (void)d;                                                                                     \
  (void)a;                                                                                     \
  (void)desc_b;                                                                                \
  (void)accumulate;                                                                            \
  __trap();
#endif

// d (64 x 64 per warpgroup; per thread the mma.sync m16n8 accumulator layout of its warp's 16
// rows, one [4] per 8 columns) (+)= A (64 x 8, registers: each warp the m16n8k8 A fragment of
// its 16 rows) x B (8 x 64 from the descriptor). accumulate 0: d = A x B. A run-time flag, not
// a branch between two wgmmas: ptxas fences the accumulators around a wgmma under a branch
// (warning C7519), and so around every wgmma of a k-loop that has one.
CFK_WG_MMA64(wg_mma_m64n64k8, "m64n64k8.f32.tf32.tf32", "")

// The same with B 8 x 128 (m64n128k8: 16 accumulator groups per thread), for the streamed
// tile whose warpgroups own all 128 channels of the block; and with B 16 x 128 of fp16 values
// (m64n128k16: conv_stream.cuh's fp16 tiles).
#define CFK_WG_MMA128(name, types, trans_b)                                                     \
  __device__ __forceinline__ void name(float (&d)[16][4], const uint32_t (&a)[4],              \
                                       uint64_t desc_b, int accumulate = 1) {                  \
    CFK_WG_MMA128_BODY(types, trans_b)                                                         \
  }
#if CFK_HAVE_WGMMA
#define CFK_WG_MMA128_BODY(types, trans_b)                                                     \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                    \
               "wgmma.mma_async.sync.aligned." types " {"                                       \
               "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "         \
               "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, "    \
               "%31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, "    \
               "%46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, "    \
               "%61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1" trans_b ";\n}\n"             \
               : CFK_WG_D64(d)                                                                  \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));
#else
#define CFK_WG_MMA128_BODY(types, trans_b) CFK_WG_MMA64_BODY(types, trans_b)
#endif
CFK_WG_MMA128(wg_mma_m64n128k8, "m64n128k8.f32.tf32.tf32", "")
CFK_WG_MMA128(wg_mma_m64n128k16_f16, "m64n128k16.f32.f16.f16", ", 0")

// d (+)= A (64 x 16 fp16, registers: each warp the mma.sync m16n8k16 A fragment of its 16
// rows, two fp16 values per register) x B (16 x 64 fp16 from the descriptor, K-major core
// matrices of 8 rows x 8 values, laid out as the TF32 ones are: same byte offsets per k-step).
// For the fp16 pairs of the streamed and the flat tiles (conv_stream.cuh, conv_flat.cuh).
CFK_WG_MMA64(wg_mma_m64n64k16_f16, "m64n64k16.f32.f16.f16", ", 0")

#undef CFK_WG_MMA128
#undef CFK_WG_MMA128_BODY
#undef CFK_WG_MMA64
#undef CFK_WG_MMA64_BODY
#undef CFK_WG_D64
#undef CFK_WG_D32

} // namespace

#endif
