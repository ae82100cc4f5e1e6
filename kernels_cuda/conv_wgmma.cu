// The row-tile kernel of conv_rowtile.cuh and the flat-tile kernel of conv_flat.cuh on
// warpgroup MMA, for the WG tile menu's entry 0, and the streamed kernel of conv_stream.cuh for
// entry 1, and the row-channel tiles of conv_rowch.cuh (entry 1 on one fp16 product where the
// shape suits them). Built for compute_90a alone (CMakeLists.txt): on any other
// device these kernels have no image, which cfk_conv_wgmma_available reports, and the planner
// never picks them there.
#include "kernels_cuda/conv_flat.cuh"
#include "kernels_cuda/conv_rowtile.cuh"
#include "kernels_cuda/conv_rowch.cuh"
#include "kernels_cuda/conv_stream.cuh"

namespace {

static_assert(CFK_WG_TILE_COUNT == 3 && CFK_WG_T1_BM == StreamTile::BM &&
                  CFK_WG_T1_BN == StreamTile::BN && CFK_WG_T2_BM == StreamSplitTile::BM &&
                  CFK_WG_T2_BN == StreamSplitTile::BN,
              "instantiate every WG tile menu entry below");
template <bool SPLIT, bool STAGED, bool TMA = false>
using WgT0 = MmaTile<CFK_WG_T0_BM, CFK_WG_T0_BN, 16, CFK_WG_T0_BN, SPLIT, STAGED, true, TMA>;
// Flat tiles with 3xTF32's accuracy on fp16 pairs (conv_flat.cuh), in lock-step as TF32's
// (drifting warpgroups as 3xTF32's measured 25% slower, bench/NOTES.md v55).
struct FlatPairsTile : WgT0<true, true, true> {
  static constexpr bool F16 = true, LOCKSTEP = true;
};

// The TMA patch kernels exist for the unit column stride only (the planner's rule).
template <bool SPLIT, bool STAGED>
const void *wg_kernel_of(int menu_index, int chain, int unit_stride, int tma) {
  if (menu_index != 0)
    return nullptr;
  if (tma)
    return unit_stride ? rowtile_kernel_of<WgT0<SPLIT, STAGED, true>, 1>(chain) : nullptr;
  return rowtile_kernel_of<WgT0<SPLIT, STAGED>>(chain, unit_stride);
}

// The streamed tile a kernel id names (entry 1 with one TF32 product, entry 2 with 3xTF32; on
// fp16 with id->f16: one fp16 product, fp16 pairs): its channel tile, the bytes per weight
// value its stages carry (TF32 4, 3xTF32 8, fp16 2, fp16 pairs 4) and whether fp16 (then the
// channels' scales follow the blocks); bn 0 for any other id.
struct StreamEntry {
  int bn, value_bytes, f16;
};
StreamEntry stream_entry_of(const cfk_mma_kernel_id *id) {
  if (id == nullptr || !id->wgmma)
    return {0, 0, 0};
  if (id->menu_index == 1 && !id->split)
    return id->f16 ? StreamEntry{StreamF16Tile::BN, 2, 1} : StreamEntry{StreamTile::BN, 4, 0};
  if (id->menu_index == 2 && id->split)
    return id->f16 ? StreamEntry{StreamPairsTile::BN, 4, 1}
                   : StreamEntry{StreamSplitTile::BN, 8, 0};
  return {0, 0, 0};
}

} // namespace

extern "C" const void *cfk_wgmma_kernel(const cfk_mma_kernel_id *id) {
  if (id == nullptr || !id->wgmma)
    return nullptr;
  const int m = id->menu_index, c = id->chain, u = id->unit_stride, t = id->tma;
  if (id->rowch) // entry 1 on one fp16 product, unit stride, its own patch copies
    return m != 1 || id->split || !id->f16 || !u || t || id->staged || id->flat
               ? nullptr
               : rowch_kernel_of(c, id->rowch, id->rowch_resident != 0);
  if (m == 1 || m == 2) { // streamed: each entry its math; by TMA, unit column stride, stored
                          // from registers
    const StreamEntry se = stream_entry_of(id);
    if (se.bn == 0 || !t || !u || id->staged || id->flat)
      return nullptr;
    if (m == 1)
      return se.f16 ? stream_kernel_of<StreamF16Tile>(c) : stream_kernel_of<StreamTile>(c);
    return se.f16 ? stream_kernel_of<StreamPairsTile>(c) : stream_kernel_of<StreamSplitTile>(c);
  }
  if (id->flat) // flat tiles: staged, by TMA, unit column stride (the planner's rules); fp16
                // pairs for 3xTF32 only
    return m != 0 || !id->staged || !t || !u || (id->f16 && !id->split) ? nullptr
           : id->split && id->f16 ? flat_kernel_of<FlatPairsTile>(c)
           : id->split            ? flat_kernel_of<WgT0<true, true, true>>(c)
                                  : flat_kernel_of<WgT0<false, true, true>>(c);
  if (id->split)
    return id->staged ? wg_kernel_of<true, true>(m, c, u, t)
                      : wg_kernel_of<true, false>(m, c, u, t);
  return id->staged ? wg_kernel_of<false, true>(m, c, u, t)
                    : wg_kernel_of<false, false>(m, c, u, t);
}

extern "C" int cfk_wgmma_threads(const cfk_mma_kernel_id *id) {
  if (id == nullptr)
    return 0;
  if (id->rowch)
    return RowChTile::THREADS * (id->rowch_resident ? RowChTile::TEAMS : 1);
  const int menu_index = id->menu_index;
  return menu_index == 0   ? WgT0<false, false>::THREADS
         : menu_index == 1 ? StreamTile::THREADS
         : menu_index == 2 ? StreamSplitTile::THREADS
                           : 0;
}

extern "C" int64_t cfk_rowch_smem_bytes(int n_stages, int resident, int n_chunks) {
  if (rowch_kernel_of(CFK_EPI_NONE, n_stages, resident != 0) == nullptr) // no such stage count
    return 0;
  return resident ? (n_chunks > 0 ? rowch_resident_smem_bytes(n_stages, n_chunks) : 0)
                  : rowch_smem_bytes(n_stages);
}

extern "C" cudaError_t cfk_conv_wgmma_available(void) {
  cudaFuncAttributes attr;
  const cfk_mma_kernel_id id = {0, 0, CFK_EPI_NONE, 1, 0, 1, 0, 0, 0, 0, 0};
  return cudaFuncGetAttributes(&attr, cfk_wgmma_kernel(&id));
}

// The row-channel tile's weights: grid_n x n_chunks blocks of B_BYTES, then grid_n x BN scales.
static int64_t rowch_weight_floats(const cfk_mma_params *params) {
  return params->grid_n * (params->n_chunks * (RowChTile::B_BYTES / 4) + RowChTile::BN);
}

static cudaError_t rowch_weights(const cfk_mma_params *params, const float *weight, float *laid,
                                 cudaStream_t stream) {
  constexpr int BN = RowChTile::BN;
  const int64_t count = params->grid_n * params->n_chunks * BN * 16 * RowChTile::S; // values
  const int threads = 256;
  const int64_t blocks = (count + threads - 1) / threads;
  const unsigned grid = (unsigned)(blocks < 65535 ? blocks : 65535);
  float *scales = laid + params->grid_n * params->n_chunks * (RowChTile::B_BYTES / 4);
  const int channels = (int)params->grid_n * BN;
  (void)cudaGetLastError(); // report these launches' failures, not an earlier one
  stream_weight_scales_kernel<<<(channels + 7) / 8, 256, 0, stream>>>(
      weight, scales, params->g.k, params->crs, channels);
  rowch_weights_kernel<<<grid, threads, 0, stream>>>(weight, reinterpret_cast<__half *>(laid),
                                                     scales, params->g.k, params->g.c,
                                                     params->g.r, params->n_chunks, count);
  return cudaGetLastError();
}

extern "C" int64_t cfk_wg_stream_weight_floats(const cfk_mma_kernel_id *id,
                                               const cfk_mma_params *params) {
  if (params == nullptr)
    return 0;
  if (id != nullptr && id->rowch)
    return rowch_weight_floats(params);
  const StreamEntry sw = stream_entry_of(id);
  // fp16: the channels' scales after the weights
  return params->grid_n *
         (params->n_chunks * sw.bn * params->kcp * sw.value_bytes / 4 + (sw.f16 ? sw.bn : 0));
}

extern "C" cudaError_t cfk_wg_stream_weights(const cfk_mma_kernel_id *id,
                                             const cfk_mma_params *params, const float *weight,
                                             float *laid, cudaStream_t stream) {
  // the row-channel tile's own layout, never entry 1's (its buffer is sized for its own)
  if (id != nullptr && id->rowch)
    return params == nullptr || weight == nullptr || laid == nullptr || params->grid_n <= 0 ||
                   params->g.s != RowChTile::S
               ? cudaErrorInvalidValue
               : rowch_weights(params, weight, laid, stream);
  const StreamEntry sw = stream_entry_of(id);
  if (params == nullptr || weight == nullptr || laid == nullptr || params->grid_n <= 0 ||
      sw.bn == 0)
    return cudaErrorInvalidValue;
  const int64_t count = params->grid_n * params->n_chunks * sw.bn * params->kcp; // values
  const int threads = 256;
  const int64_t blocks = (count + threads - 1) / threads;
  const unsigned grid = (unsigned)(blocks < 65535 ? blocks : 65535);
  (void)cudaGetLastError(); // report this launch's failure, not an earlier one
  float *scales = laid + count * sw.value_bytes / 4; // fp16: after every block's weights
  if (sw.f16) {
    const int channels = (int)params->grid_n * sw.bn;
    stream_weight_scales_kernel<<<(channels + 7) / 8, 256, 0, stream>>>(
        weight, scales, params->g.k, params->crs, channels);
  }
  const int k = params->g.k, crs = params->crs, kc = params->kc, kcp = params->kcp,
            nc = params->n_chunks;
  // the fp16 kernels set the guard; a TF32 / 3xTF32 rerun behind it lays its weights only
  // once it is set
  const uint32_t *rerun_guard = sw.f16 ? nullptr : params->range_guard;
  if (id->menu_index == 1 && sw.f16)
    stream_weights_kernel<StreamF16Tile::BN, false, true>
        <<<grid, threads, 0, stream>>>(weight, laid, k, crs, kc, kcp, nc, count, scales, nullptr);
  else if (id->menu_index == 1)
    stream_weights_kernel<StreamTile::BN, false><<<grid, threads, 0, stream>>>(
        weight, laid, k, crs, kc, kcp, nc, count, nullptr, rerun_guard);
  else if (sw.f16)
    stream_weights_kernel<StreamPairsTile::BN, true, true>
        <<<grid, threads, 0, stream>>>(weight, laid, k, crs, kc, kcp, nc, count, scales, nullptr);
  else
    stream_weights_kernel<StreamSplitTile::BN, true><<<grid, threads, 0, stream>>>(
        weight, laid, k, crs, kc, kcp, nc, count, nullptr, rerun_guard);
  return cudaGetLastError();
}
