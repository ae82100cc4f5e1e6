// Tensor-core row-tile kernels on mma.sync (sm_80 and later): the kernel body is in
// conv_rowtile.cuh; this file instantiates it for the MMA tile menu and holds the launchers
// (which also reach the sm_90a wgmma kernels of conv_wgmma.cu through cfk_wgmma_kernel).
#include "kernels_cuda/conv_rowtile.cuh"

namespace {

static_assert(CFK_MMA_TILE_COUNT == 4, "instantiate every MMA tile menu entry below");
template <bool SPLIT, bool STAGED, bool TMA = false>
using MmaT0 = MmaTile<CFK_MMA_T0_BM, CFK_MMA_T0_BN, CFK_MMA_T0_WM, CFK_MMA_T0_WN, SPLIT, STAGED,
                      false, TMA>;
template <bool SPLIT, bool STAGED>
using MmaT1 = MmaTile<CFK_MMA_T1_BM, CFK_MMA_T1_BN, CFK_MMA_T1_WM, CFK_MMA_T1_WN, SPLIT, STAGED>;
template <bool SPLIT, bool STAGED>
using MmaT2 = MmaTile<CFK_MMA_T2_BM, CFK_MMA_T2_BN, CFK_MMA_T2_WM, CFK_MMA_T2_WN, SPLIT, STAGED>;
template <bool SPLIT, bool STAGED>
using MmaT3 = MmaTile<CFK_MMA_T3_BM, CFK_MMA_T3_BN, CFK_MMA_T3_WM, CFK_MMA_T3_WN, SPLIT, STAGED>;


template <bool SPLIT, bool STAGED>
const void *mma_kernel_of(int menu_index, int chain, int unit_stride) {
  switch (menu_index) {
  case 0: return rowtile_kernel_of<MmaT0<SPLIT, STAGED>>(chain, unit_stride);
  case 1: return rowtile_kernel_of<MmaT1<SPLIT, STAGED>>(chain, unit_stride);
  case 2: return rowtile_kernel_of<MmaT2<SPLIT, STAGED>>(chain, unit_stride);
  case 3: return rowtile_kernel_of<MmaT3<SPLIT, STAGED>>(chain, unit_stride);
  default: return nullptr;
  }
}

// The TMA patch kernels: T0 only (the tile the multi-chunk workloads run on when wgmma cannot
// take them), unit column stride (the planner's rules); they trap below sm_90.
template <bool SPLIT>
const void *mma_tma_kernel_of(int menu_index, int chain, int unit_stride, int staged) {
  if (menu_index != 0 || !unit_stride)
    return nullptr;
  return staged ? rowtile_kernel_of<MmaT0<SPLIT, true, true>, 1>(chain)
                : rowtile_kernel_of<MmaT0<SPLIT, false, true>, 1>(chain);
}

template <bool SPLIT>
const void *mma_kernel_of(int menu_index, int chain, int unit_stride, int staged, int tma) {
  if (tma)
    return mma_tma_kernel_of<SPLIT>(menu_index, chain, unit_stride, staged);
  return staged ? mma_kernel_of<SPLIT, true>(menu_index, chain, unit_stride)
                : mma_kernel_of<SPLIT, false>(menu_index, chain, unit_stride);
}

const void *mma_kernel(const cfk_mma_kernel_id &id) {
  if (id.wgmma)
    return cfk_wgmma_kernel(&id);
  return id.split
             ? mma_kernel_of<true>(id.menu_index, id.chain, id.unit_stride, id.staged, id.tma)
             : mma_kernel_of<false>(id.menu_index, id.chain, id.unit_stride, id.staged, id.tma);
}

int mma_threads(const cfk_mma_kernel_id &id) {
  if (id.wgmma)
    return cfk_wgmma_threads(&id);
  switch (id.menu_index) {
  case 0: return MmaT0<false, false>::THREADS;
  case 1: return MmaT1<false, false>::THREADS;
  case 2: return MmaT2<false, false>::THREADS;
  case 3: return MmaT3<false, false>::THREADS;
  default: return 0;
  }
}

} // namespace

extern "C" cudaError_t cfk_conv_mma_prepare(const cfk_mma_kernel_id *id, int *num_regs,
                                            size_t *local_bytes) {
  const void *fn = id != nullptr ? mma_kernel(*id) : nullptr;
  if (fn == nullptr)
    return cudaErrorInvalidValue;
  int dev = 0, optin = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess)
    e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  // The device's whole opt-in limit: idempotent, so plans of other sizes never race.
  if (e == cudaSuccess)
    e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, optin);
  cudaFuncAttributes attr;
  if (e == cudaSuccess)
    e = cudaFuncGetAttributes(&attr, fn);
  if (e != cudaSuccess)
    return e;
  if (num_regs)
    *num_regs = attr.numRegs;
  if (local_bytes)
    *local_bytes = attr.localSizeBytes;
  return cudaSuccess;
}

extern "C" cudaError_t cfk_conv_mma_occupancy(const cfk_mma_kernel_id *id, int smem_bytes,
                                              int *blocks_per_sm) {
  const void *fn = id != nullptr ? mma_kernel(*id) : nullptr;
  if (fn == nullptr || blocks_per_sm == nullptr)
    return cudaErrorInvalidValue;
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks_per_sm, fn,
                                                       mma_threads(*id),
                                                       (size_t)smem_bytes);
}

extern "C" cudaError_t cfk_conv_mma_launch(const cfk_mma_kernel_id *id,
                                           const cfk_mma_params *params,
                                           const cfk_epilogue_ops *ops, const float *input,
                                           const float *weight, const float *bias,
                                           float *output, cudaStream_t stream) {
  const void *fn = id != nullptr ? mma_kernel(*id) : nullptr;
  if (fn == nullptr || params == nullptr || params->grid_m <= 0 || params->grid_n <= 0 ||
      (id->unit_stride && params->g.stride_w != 1))
    return cudaErrorInvalidValue;
  const bool generic = id->chain == CFK_EPI_RELU || id->chain == CFK_EPI_GENERIC;
  if (generic && ops == nullptr)
    return cudaErrorInvalidValue;
  CfkEpiGeneric g;
  if (generic)
    g.ops = *ops;
  const void *epi = generic ? (const void *)&g : (const void *)&g.ops; // fixed: empty struct
  void *args[] = {(void *)params, (void *)epi, (void *)&input, (void *)&weight,
                  (void *)&bias,  (void *)&output};
  const dim3 grid((unsigned)params->grid_m, (unsigned)params->grid_n);
  (void)cudaGetLastError(); // report this launch's failure, not an earlier one
  cudaError_t e = cudaLaunchKernel(fn, grid, dim3((unsigned)mma_threads(*id)), args,
                                   (size_t)params->smem_bytes, stream);
  return e != cudaSuccess ? e : cudaGetLastError();
}
