// Bulk tensor copies (TMA, sm_90): loads, the shared-memory barriers that count their bytes in,
// and stores with the bulk groups that track them.
// The planner picks the kernels that reach these on sm_90 and later only; compiled for an
// older target they trap, as wgmma.cuh's do, so that a wrong dispatch fails loudly.
#ifndef CF_KERNELS_CUDA_TMA_CUH
#define CF_KERNELS_CUDA_TMA_CUH

#include <cstdint>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define CFK_HAVE_TMA 1
#else
#define CFK_HAVE_TMA 0
#endif

namespace {

// The shared-memory address of p, as the async copies, barriers and wgmma descriptors take it.
__device__ __forceinline__ uint32_t smem_addr(const void *p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// One arrival (the thread that posts the expected bytes) completes each phase.
__device__ __forceinline__ void mbar_init(uint64_t *bar) {
#if CFK_HAVE_TMA
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(smem_addr(bar)) : "memory");
#else
  (void)bar;
  __trap();
#endif
}

// Makes the initialised barriers visible to the async proxy (the TMA unit); a block barrier
// must follow before any thread waits on them.
__device__ __forceinline__ void mbar_init_fence() {
#if CFK_HAVE_TMA
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#else
  __trap();
#endif
}

// The ring of n_stages TMA stage buffers: each stage's "full" mbarrier and its count of warps
// done with it. One thread initialises them, before a block barrier.
__device__ __forceinline__ void stage_ring_init(uint64_t *stage_full, uint32_t *stage_done,
                                                int n_stages) {
  for (int b = 0; b < n_stages; ++b) {
    mbar_init(stage_full + b);
    stage_done[b] = 0;
  }
  mbar_init_fence();
}

// A warp done with stage buffer b counts itself out (the whole warp calls it); true in lane 0
// of the last of the block's warps to do so, which refills the buffer. The fences order the
// warps' shared loads of the buffer before the refill's writes. The count runs on over the
// ring's laps: every multiple of warps is a refill.
__device__ __forceinline__ bool stage_count_out(uint32_t *stage_done, int b, int warps,
                                                int lane) {
  __syncwarp();
  bool last = false;
  if (lane == 0) {
    __threadfence_block();
    last = (atomicAdd(stage_done + b, 1u) + 1) % (uint32_t)warps == 0;
    __threadfence_block();
  }
  return last;
}

// The arrival of this phase, expecting bytes more to land before it completes.
__device__ __forceinline__ void mbar_expect_bytes(uint64_t *bar, uint32_t bytes) {
#if CFK_HAVE_TMA
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(
                   smem_addr(bar)),
               "r"(bytes)
               : "memory");
#else
  (void)bar;
  (void)bytes;
  __trap();
#endif
}

// Waits until the phase with this parity has completed (its bytes are visible to the caller).
__device__ __forceinline__ void mbar_wait(uint64_t *bar, uint32_t parity) {
#if CFK_HAVE_TMA
  asm volatile("{\n"
               ".reg .pred done;\n"
               "WAIT:\n"
               "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
               "@!done bra WAIT;\n"
               "}\n" ::"r"(smem_addr(bar)),
               "r"(parity)
               : "memory");
#else
  (void)bar;
  (void)parity;
  __trap();
#endif
}

// Copies the box at (x, y, z, w) (innermost first; out-of-range elements read as zero) of the
// 4-D tensor map to dst (128-byte aligned), counting its bytes in on bar. map: the address of
// a CUtensorMap in kernel parameter (__grid_constant__), constant or global memory.
__device__ __forceinline__ void tma_load_4d(float *dst, const void *map, int x, int y, int z,
                                            int w, uint64_t *bar) {
#if CFK_HAVE_TMA
  asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
               " [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(smem_addr(dst)),
               "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(z), "r"(w),
               "r"(smem_addr(bar))
               : "memory");
#else
  (void)dst;
  (void)map;
  (void)x;
  (void)y;
  (void)z;
  (void)w;
  (void)bar;
  __trap();
#endif
}

// Copies bytes (a multiple of 16) from src to dst (both 16-byte aligned) as one bulk
// asynchronous copy, counting them in on bar.
__device__ __forceinline__ void bulk_load(float *dst, const float *src, uint32_t bytes,
                                          uint64_t *bar) {
#if CFK_HAVE_TMA
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, "
               "[%3];\n" ::"r"(smem_addr(dst)),
               "l"(src), "r"(bytes), "r"(smem_addr(bar))
               : "memory");
#else
  (void)dst;
  (void)src;
  (void)bytes;
  (void)bar;
  __trap();
#endif
}

// Writes the box at (x, y, z) of the 3-D tensor map from src (laid out as the map's swizzle
// says; 1024-byte aligned for the 128-byte swizzle), clipped to the tensor: an asynchronous
// bulk store of this thread's current bulk group. The writer must have fenced its shared
// stores to the async proxy (fence.proxy.async) and synchronised with this thread.
__device__ __forceinline__ void tma_store_3d(const void *map, const float *src, int x, int y,
                                             int z) {
#if CFK_HAVE_TMA
  asm volatile("cp.async.bulk.tensor.3d.global.shared::cta.bulk_group [%0, {%2, %3, %4}], [%1];\n"
               ::"l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(src)), "r"(x), "r"(y),
               "r"(z)
               : "memory");
#else
  (void)map;
  (void)src;
  (void)x;
  (void)y;
  (void)z;
  __trap();
#endif
}

// Copies bytes (a multiple of 16) from src in shared memory to dst in global memory (both
// 16-byte aligned) as one bulk asynchronous copy of this thread's current bulk group. The
// writers of src must have fenced their shared stores to the async proxy and synchronised
// with this thread.
__device__ __forceinline__ void bulk_store(float *dst, const float *src, uint32_t bytes) {
#if CFK_HAVE_TMA
  asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(dst),
               "r"(smem_addr(src)), "r"(bytes)
               : "memory");
#else
  (void)dst;
  (void)src;
  (void)bytes;
  __trap();
#endif
}

// Closes this thread's current bulk group (the stores issued since the last commit).
__device__ __forceinline__ void bulk_commit() {
#if CFK_HAVE_TMA
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#else
  __trap();
#endif
}

// Waits until at most N of this thread's bulk groups are still reading their shared memory
// (the buffers of the others may be written again).
template <int N>
__device__ __forceinline__ void bulk_wait_read() {
#if CFK_HAVE_TMA
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
#else
  __trap();
#endif
}

// Waits until at most N of this thread's bulk groups are incomplete (their writes done).
template <int N>
__device__ __forceinline__ void bulk_wait() {
#if CFK_HAVE_TMA
  asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(N) : "memory");
#else
  __trap();
#endif
}

} // namespace

#endif
