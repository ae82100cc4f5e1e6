// The tensor maps of the TMA kernels (host code): the NCHW input as a 4-D tensor, one box per
// patch segment (see cfk_mma_params and common/mma_layout.h), and for flat tiles also the output
// as a (p*q, k, n) tensor that their TMA stores write.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include "kernels_cuda/launch.h"

static_assert(sizeof(cfk_tensor_map) == sizeof(CUtensorMap) &&
                  alignof(cfk_tensor_map) == alignof(CUtensorMap),
              "cfk_tensor_map must be a CUtensorMap");

extern "C" cudaError_t cfk_tensor_map_encoder_get(cfk_tensor_map_encoder *encoder) {
  if (encoder == nullptr)
    return cudaErrorInvalidValue;
  *encoder = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  void *fn = nullptr;
  const cudaError_t e =
      cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault,
                                       &found);
  if (e != cudaSuccess)
    return e;
  if (found != cudaDriverEntryPointSuccess || fn == nullptr)
    return cudaErrorSymbolNotFound;
  *encoder = fn;
  return cudaSuccess;
}

extern "C" cudaError_t cfk_patch_map_encode(cfk_tensor_map_encoder encoder,
                                            cfk_mma_params *params, const float *input) {
  if (encoder == nullptr || params == nullptr || input == nullptr)
    return cudaErrorInvalidValue;
  const cfk_geometry &g = params->g;
  const cuuint64_t dims[4] = {(cuuint64_t)g.w, (cuuint64_t)g.h, (cuuint64_t)g.c,
                              (cuuint64_t)params->batch};
  const cuuint64_t strides[3] = {(cuuint64_t)g.w * 4, (cuuint64_t)params->hw * 4,
                                 (cuuint64_t)params->chw * 4}; // bytes, dims 1..3
  const cuuint32_t box[4] = {(cuuint32_t)params->patch_pitch, (cuuint32_t)g.r,
                             (cuuint32_t)params->cc, 1};
  const cuuint32_t unit[4] = {1, 1, 1, 1};
  auto encode = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(encoder);
  const CUresult r = encode(reinterpret_cast<CUtensorMap *>(&params->patch_map),
                            CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, const_cast<float *>(input), dims,
                            strides, box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE,
                            CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

extern "C" cudaError_t cfk_flat_maps_encode(cfk_tensor_map_encoder encoder, cfk_mma_params *params,
                                            int bn, const float *input, float *output) {
  if (encoder == nullptr || params == nullptr || input == nullptr || output == nullptr ||
      params->flat_rows < 1 || bn < 1 || params->pq % 4 != 0)
    return cudaErrorInvalidValue;
  const cfk_geometry &g = params->g;
  auto encode = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(encoder);
  const cuuint64_t in_dims[4] = {(cuuint64_t)g.w, (cuuint64_t)g.h, (cuuint64_t)g.c,
                                 (cuuint64_t)params->batch};
  const cuuint64_t in_strides[3] = {(cuuint64_t)g.w * 4, (cuuint64_t)params->hw * 4,
                                    (cuuint64_t)params->chw * 4};
  const cuuint32_t in_box[4] = {(cuuint32_t)params->patch_pitch, (cuuint32_t)params->flat_rows,
                                (cuuint32_t)g.c, 1};
  const cuuint32_t unit[4] = {1, 1, 1, 1};
  CUresult r = encode(reinterpret_cast<CUtensorMap *>(&params->patch_map),
                      CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, const_cast<float *>(input), in_dims,
                      in_strides, in_box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE,
                      CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    return cudaErrorInvalidValue;
  // 32 pixels (128 bytes) per box row: the 128-byte swizzle's span, which makes the kernel's
  // fragment stores into the staging buffer conflict-free.
  const cuuint64_t out_dims[3] = {(cuuint64_t)params->pq, (cuuint64_t)g.k,
                                  (cuuint64_t)params->batch};
  const cuuint64_t out_strides[2] = {(cuuint64_t)params->pq * 4, (cuuint64_t)params->kpq * 4};
  const cuuint32_t out_box[3] = {32, (cuuint32_t)bn, 1};
  r = encode(reinterpret_cast<CUtensorMap *>(&params->out_map), CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 3,
             output, out_dims, out_strides, out_box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE,
             CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_NONE,
             CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}
