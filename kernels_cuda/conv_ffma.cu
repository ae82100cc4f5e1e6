// Instantiates the FFMA conv kernel (conv_ffma.cuh) for every tile-menu entry of
// constants.def and every specialised epilogue chain, behind the extern "C" launchers of
// launch.h.
#include <cstdint>
#include <cuda_runtime.h>

#include "cf_constants.h"
#include "kernels_cuda/conv_ffma.cuh"
#include "kernels_cuda/epilogue.cuh"
#include "kernels_cuda/launch.h"

namespace {

using cfk::FfmaTile;
using cfk::conv_ffma_kernel;

// The tile menu of constants.def (FFMA_T<i>_*).
static_assert(CFK_FFMA_TILE_COUNT == 3, "instantiate every FFMA tile menu entry below");
using Tile0 = FfmaTile<CFK_FFMA_T0_BM, CFK_FFMA_T0_BN, CFK_FFMA_T0_BK, CFK_FFMA_T0_TM,
                       CFK_FFMA_T0_TN>;
using Tile1 = FfmaTile<CFK_FFMA_T1_BM, CFK_FFMA_T1_BN, CFK_FFMA_T1_BK, CFK_FFMA_T1_TM,
                       CFK_FFMA_T1_TN>;
using Tile2 = FfmaTile<CFK_FFMA_T2_BM, CFK_FFMA_T2_BN, CFK_FFMA_T2_BK, CFK_FFMA_T2_TM,
                       CFK_FFMA_T2_TN>;

template <class T, class Epi>
cudaError_t launch_one(const cfk_conv_params &prm, const Epi &epi, const float *input,
                       const float *weight, const float *bias, float *output,
                       cudaStream_t stream) {
  if (prm.tiles_total <= 0)
    return cudaErrorInvalidValue;
  const int64_t max_blocks = 2147483647; // gridDim.x limit
  const unsigned blocks =
      (unsigned)(prm.tiles_total < max_blocks ? prm.tiles_total : max_blocks);
  (void)cudaGetLastError(); // report this launch's failure, not an earlier one
  conv_ffma_kernel<T, Epi><<<blocks, T::THREADS, 0, stream>>>(prm, epi, input, weight, bias,
                                                                output);
  return cudaGetLastError();
}

template <class T>
cudaError_t launch_tile(int chain, const cfk_conv_params &prm, const cfk_epilogue_ops *ops,
                        const float *input, const float *weight, const float *bias,
                        float *output, cudaStream_t stream) {
  switch (chain) {
  case CFK_EPI_NONE:
    return launch_one<T>(prm, CfkEpiFixed<>{}, input, weight, bias, output, stream);
  case CFK_EPI_MISH:
    return launch_one<T>(prm, CfkEpiFixed<CFK_OP_MISH>{}, input, weight, bias, output, stream);
  case CFK_EPI_MISH_MISH:
    return launch_one<T>(prm, CfkEpiFixed<CFK_OP_MISH, CFK_OP_MISH>{}, input, weight, bias,
                         output, stream);
  case CFK_EPI_RELU:
    return launch_one<T>(prm, CfkEpiFixed<CFK_OP_RELU>{}, input, weight, bias, output, stream);
  case CFK_EPI_GENERIC: {
    if (ops == nullptr)
      return cudaErrorInvalidValue;
    CfkEpiGeneric g;
    g.ops = *ops;
    return launch_one<T>(prm, g, input, weight, bias, output, stream);
  }
  default: return cudaErrorInvalidValue;
  }
}

template <class T>
const void *kernel_of(int chain) {
  switch (chain) {
  case CFK_EPI_NONE: return (const void *)conv_ffma_kernel<T, CfkEpiFixed<>>;
  case CFK_EPI_MISH: return (const void *)conv_ffma_kernel<T, CfkEpiFixed<CFK_OP_MISH>>;
  case CFK_EPI_MISH_MISH:
    return (const void *)conv_ffma_kernel<T, CfkEpiFixed<CFK_OP_MISH, CFK_OP_MISH>>;
  case CFK_EPI_RELU: return (const void *)conv_ffma_kernel<T, CfkEpiFixed<CFK_OP_RELU>>;
  case CFK_EPI_GENERIC: return (const void *)conv_ffma_kernel<T, CfkEpiGeneric>;
  default: return nullptr;
  }
}

} // namespace

extern "C" const char *cfk_epi_chain_name(int chain) {
  switch (chain) {
  case CFK_EPI_NONE: return "none";
  case CFK_EPI_MISH: return "mish";
  case CFK_EPI_MISH_MISH: return "mish,mish";
  case CFK_EPI_RELU: return "relu";
  case CFK_EPI_GENERIC: return "generic";
  default: return "?";
  }
}

extern "C" cudaError_t cfk_conv_ffma_launch(int menu_index, int chain,
                                            const cfk_conv_params *params,
                                            const cfk_epilogue_ops *ops, const float *input,
                                            const float *weight, const float *bias,
                                            float *output, cudaStream_t stream) {
  if (params == nullptr)
    return cudaErrorInvalidValue;
  switch (menu_index) {
  case 0:
    return launch_tile<Tile0>(chain, *params, ops, input, weight, bias, output, stream);
  case 1:
    return launch_tile<Tile1>(chain, *params, ops, input, weight, bias, output, stream);
  case 2:
    return launch_tile<Tile2>(chain, *params, ops, input, weight, bias, output, stream);
  default: return cudaErrorInvalidValue;
  }
}

extern "C" cudaError_t cfk_conv_ffma_check(int menu_index, int chain, int *num_regs,
                                           size_t *local_bytes) {
  const void *fn = nullptr;
  switch (menu_index) {
  case 0: fn = kernel_of<Tile0>(chain); break;
  case 1: fn = kernel_of<Tile1>(chain); break;
  case 2: fn = kernel_of<Tile2>(chain); break;
  default: break;
  }
  if (fn == nullptr)
    return cudaErrorInvalidValue;
  cudaFuncAttributes attr;
  const cudaError_t err = cudaFuncGetAttributes(&attr, fn);
  if (err != cudaSuccess)
    return err;
  if (num_regs)
    *num_regs = attr.numRegs;
  if (local_bytes)
    *local_bytes = attr.localSizeBytes;
  return cudaSuccess;
}
