// Store-pattern probe: how fast can a kernel write sub-sub-mish's output (128 x 64 x 254 x 254
// fp32, NCHW, 2.1 GB) in the patterns the fused kernels could use? Each variant writes the
// whole tensor with no arithmetic to speak of, so its time is the store stream's own floor.
//   nvcc -O3 -arch=sm_90 -I. -o store_probe bench/store_probe.cu && ./store_probe
// Prints one line per variant: median ms of 20 runs (device events, after 3 warm-ups), GB/s.
#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <vector>
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include "bench/probe_check.h"
#include "kernels_cuda/tma.cuh"   // bulk_store and its bulk groups, as the flat kernel uses them
#include "kernels_cuda/wgmma.cuh" // wg_fence_shared

constexpr int N = 128, K = 64, P = 254, Q = 254, BM = 128;
constexpr int Q_TILES = (Q + BM - 1) / BM;
constexpr int64_t PQ = (int64_t)P * Q;
constexpr int ROW_TILES = N * P * Q_TILES;

__device__ __forceinline__ float value(int a, int b) { return (float)(a ^ b) * 1e-3f; }

// The fused kernel's pattern: row tile (n, p, q0) x 64 channels, 8 warps of 32 x 32, each lane
// storing its mma accumulators as 4-byte stores (8 consecutive pixels x 4 channels per warp
// store). STREAM: st.global.cs (as the kernel does) or plain st.
template <bool STREAM>
__global__ void __launch_bounds__(256) frag32(float *out) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int m_warp = (warp % 4) * 32, n_warp = (warp / 4) * 32;
  for (int tile = blockIdx.x; tile < ROW_TILES; tile += gridDim.x) {
    const int np = tile / Q_TILES, q0 = (tile - np * Q_TILES) * BM, n = np / P, p = np - n * P;
    float *o = out + ((int64_t)n * K * P + p) * Q + q0 + m_warp + g;
    const int q_left = Q - q0 - m_warp - g;
#pragma unroll
    for (int ni = 0; ni < 4; ++ni) {
      const int ch = n_warp + ni * 8 + 2 * t;
      float *o0 = o + (int64_t)ch * PQ, *o1 = o0 + PQ;
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        const float v = value(tile, ch + mi);
        if (mi * 16 < q_left) {
          if (STREAM) { __stcs(o0 + mi * 16, v); __stcs(o1 + mi * 16, v); }
          else { o0[mi * 16] = v; o1[mi * 16] = v; }
        }
        if (mi * 16 + 8 < q_left) {
          if (STREAM) { __stcs(o0 + mi * 16 + 8, v); __stcs(o1 + mi * 16 + 8, v); }
          else { o0[mi * 16 + 8] = v; o1[mi * 16 + 8] = v; }
        }
      }
    }
  }
}

// Same row tiles, but each warp instruction writes one channel's 128-pixel row segment
// (512 contiguous bytes) as 16-byte stores into a padded layout (Q' = 256, rows 16-byte
// aligned): the ideal a shared-memory-staged epilogue could reach on aligned rows.
__global__ void __launch_bounds__(256) row_v4_padded(float *out) {
  constexpr int QP = 256;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int tile = blockIdx.x; tile < ROW_TILES; tile += gridDim.x) {
    const int np = tile / Q_TILES, q0 = (tile - np * Q_TILES) * BM, n = np / P, p = np - n * P;
    float *o = out + ((int64_t)n * K * P + p) * QP + q0 + 4 * lane;
#pragma unroll 4
    for (int ch = warp; ch < K; ch += 8) {
      const float v = value(tile, ch);
      __stcs(reinterpret_cast<float4 *>(o + (int64_t)ch * P * QP), make_float4(v, v, v, v));
    }
  }
}

// Row tiles into the real layout with 8-byte stores (Q even: every row start is 8-byte
// aligned): one warp instruction = one channel's 64 pixels; two per channel per tile.
__global__ void __launch_bounds__(256) row_v2(float *out) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int tile = blockIdx.x; tile < ROW_TILES; tile += gridDim.x) {
    const int np = tile / Q_TILES, q0 = (tile - np * Q_TILES) * BM, n = np / P, p = np - n * P;
    float *o = out + ((int64_t)n * K * P + p) * Q + q0;
#pragma unroll 4
    for (int i = warp; i < 2 * K; i += 8) {
      const int ch = i >> 1, q = (i & 1) * 64 + 2 * lane;
      if (q0 + q < Q) {
        const float v = value(tile, ch);
        __stcs(reinterpret_cast<float2 *>(o + (int64_t)ch * PQ + q), make_float2(v, v));
      }
    }
  }
}

// Flattened tiles: BM consecutive pixels of one image (any rows) x 64 channels. Each
// channel's part is 512 contiguous bytes, 16-byte aligned (PQ % 4 == 0): 16-byte stores.
// PLANE = PQ is the real layout (planes 16-byte aligned); PLANE = PQ_PAD pads each plane to
// a multiple of 32 floats so that every part starts on a 128-byte line: the difference is
// the cost of partial 32-byte sectors at the parts' edges.
constexpr int FLAT_TILES = N * (int)((PQ + BM - 1) / BM);
constexpr int64_t PQ_PAD = (PQ + 31) / 32 * 32;
template <int64_t PLANE, bool STREAM>
__device__ __forceinline__ void flat_tile(float *out, int tile, int warp, int lane) {
  constexpr int per_image = (int)((PQ + BM - 1) / BM);
  const int n = tile / per_image, m = (tile - n * per_image) * BM + 4 * lane;
  if (m >= PQ)
    return; // PQ % 4 == 0: a vector is all in or all out
  float *o = out + (int64_t)n * K * PLANE + m;
#pragma unroll 4
  for (int ch = warp; ch < K; ch += 8) {
    const float v = value(tile, ch);
    float4 *d = reinterpret_cast<float4 *>(o + (int64_t)ch * PLANE);
    if (STREAM) __stcs(d, make_float4(v, v, v, v));
    else *d = make_float4(v, v, v, v);
  }
}

// Block x takes tiles x, x + gridDim.x, ...
template <int64_t PLANE, bool STREAM>
__global__ void __launch_bounds__(256) flat_v4(float *out) {
  for (int tile = blockIdx.x; tile < FLAT_TILES; tile += gridDim.x)
    flat_tile<PLANE, STREAM>(out, tile, threadIdx.x >> 5, threadIdx.x & 31);
}

// Block x owns one contiguous run of tiles: do many far-apart write streams cost DRAM
// efficiency?
__global__ void __launch_bounds__(256) flat_v4_runs(float *out) {
  const int begin = (int)((int64_t)FLAT_TILES * blockIdx.x / gridDim.x);
  const int end = (int)((int64_t)FLAT_TILES * (blockIdx.x + 1) / gridDim.x);
  for (int tile = begin; tile < end; ++tile)
    flat_tile<PQ_PAD, true>(out, tile, threadIdx.x >> 5, threadIdx.x & 31);
}

// Row tiles of BM_ pixels into the real layout (rows only 8-byte aligned) as a staged
// epilogue would write them: per channel, the part [base, base + len) is covered by the
// 16-byte vectors of the global address space; whole vectors are one st.v4, the two edge
// vectors element by element.
template <int BM_, bool STREAM>
__global__ void __launch_bounds__(256) row_v4_real(float *out) {
  constexpr int QT = (Q + BM_ - 1) / BM_;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int tile = blockIdx.x; tile < N * P * QT; tile += gridDim.x) {
    const int np = tile / QT, q0 = (tile - np * QT) * BM_, n = np / P, p = np - n * P;
    const int len = min(BM_, Q - q0);
    for (int ch = warp; ch < K; ch += 8) {
      const int64_t base = ((int64_t)(n * K + ch) * P + p) * Q + q0;
      const int64_t a4 = base & ~(int64_t)3;
      const float v = value(tile, ch);
      for (int64_t i = a4 + 4 * lane; i < base + len; i += 128) {
        if (i >= base && i + 4 <= base + len) {
          float4 *d = reinterpret_cast<float4 *>(out + i);
          if (STREAM) __stcs(d, make_float4(v, v, v, v));
          else *d = make_float4(v, v, v, v);
        } else {
          for (int j = 0; j < 4; ++j)
            if (i + j >= base && i + j < base + len)
              out[i + j] = v;
        }
      }
    }
  }
}

// The staged epilogue with a carry, in the real layout: a block owns a contiguous run of row
// tiles, so each channel's output is one contiguous stream per image. A tile's values go to
// shared memory at [lead + j] (lead = the global index's offset within its 32-byte sector),
// whole 32-byte sectors are written as 16-byte stores, and the ragged tail (< 8 floats)
// moves to the front of the channel's staging row to lead the next tile: no partial
// sector is ever written except where the stream breaks (image change, end of run).
template <int BM_>
__global__ void __launch_bounds__(256) row_carry(float *out) {
  constexpr int QT = (Q + BM_ - 1) / BM_;
  constexpr int PITCH = (BM_ + 8 + 15) / 16 * 16 + 4; // >= BM + 8, == 4 (mod 16)
  extern __shared__ __align__(16) float stage[];     // K x PITCH
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int tiles = N * P * QT;
  const int begin = (int)((int64_t)tiles * blockIdx.x / gridDim.x);
  const int end = (int)((int64_t)tiles * (blockIdx.x + 1) / gridDim.x);
  int prev_n = -1;
  for (int tile = begin; tile < end; ++tile) {
    const int np = tile / QT, q0 = (tile - np * QT) * BM_, n = np / P, p = np - n * P;
    const int len = min(BM_, Q - q0);
    const bool joined = n == prev_n; // the previous tile ended right where this one starts
    const bool last = tile + 1 == end || (tile + 1) / QT / P != n;
    prev_n = n;
    // Stand-in for the fragment stores: every thread writes some of the tile's values.
    for (int i = threadIdx.x; i < K * BM_; i += 256) {
      const int ch = i / BM_, j = i - ch * BM_;
      const int64_t g = ((int64_t)(n * K + ch) * P + p) * Q + q0;
      stage[ch * PITCH + (int)(g & 7) + j] = value(tile, ch);
    }
    __syncthreads();
    for (int ch = warp; ch < K; ch += 8) {
      float *row = stage + ch * PITCH;
      const int64_t g0 = ((int64_t)(n * K + ch) * P + p) * Q + q0;
      const int lead = (int)(g0 & 7);
      const int avail = lead + len;              // staged floats, from global g0 - lead
      const int whole = last ? avail : avail & ~7; // a run's last tile flushes its tail
      const int first = joined ? 0 : lead;       // no carry: start at g0 itself
      float *dst = out + (g0 - lead);
      for (int i = 4 * lane; i < whole; i += 128) {
        if (i >= first && i + 4 <= whole)
          __stcs(reinterpret_cast<float4 *>(dst + i), *reinterpret_cast<const float4 *>(row + i));
        else
          for (int j = max(i, first); j < min(i + 4, whole); ++j)
            dst[j] = row[j];
      }
      const int tail = avail - whole;
      float carry = lane < tail ? row[whole + lane] : 0.0f;
      __syncwarp();
      if (lane < tail)
        row[lane] = carry;
    }
    __syncthreads();
  }
}

// The flat kernel's row stores (kernels_cuda/conv_flat.cuh, bench/NOTES.md v57-v61) with no
// arithmetic: flat tiles of 256 pixels, one 512-thread block per SM owning a contiguous run of
// them, each tile's 64 channel rows written by the threads into one of two staging buffers
// (rows of 260 floats after a 256-float lead), then each row stored by one plain bulk copy
// (cp.async.bulk) from thread `row` (ONE: thread 0 issues all 64); a buffer is written again
// once its copies of two tiles back have been read out. PLANE: PQ (real planes, every other
// one starting 16 bytes into a 32-byte sector) or PQ_PAD (planes on 128-byte lines). ALIGN:
// odd rows leave their last 4 pixels to the block's next tile, which stores them in front of
// its own (from the previous row's spare columns), so that every copy covers whole sectors.
constexpr int FLAT256_PER_IMAGE = (int)((PQ + 255) / 256), FLAT256_TILES = N * FLAT256_PER_IMAGE;
// Block x's contiguous run [begin, end) of `tiles` (each block owns one, as the flat kernel's).
struct TileRun {
  int begin, end;
};
__device__ __forceinline__ TileRun block_run(int64_t tiles) {
  return {(int)(tiles * blockIdx.x / gridDim.x), (int)(tiles * (blockIdx.x + 1) / gridDim.x)};
}
// Flat tile of 256 -> image n, first plane pixel l0.
__device__ __forceinline__ void flat256_tile(int tile, int &n, int &l0) {
  n = tile / FLAT256_PER_IMAGE;
  l0 = (tile - n * FLAT256_PER_IMAGE) * 256;
}
constexpr int ROW_PITCH = 260, ROW_LEAD = 256, ROW_BUFFER = K * ROW_PITCH;
constexpr int BULK_ROWS_SMEM = (ROW_LEAD + 2 * ROW_BUFFER) * 4;

template <int64_t PLANE, bool ALIGN, bool ONE>
__global__ void __launch_bounds__(512, 1) bulk_rows(float *out) {
  extern __shared__ __align__(1024) float smem[];
  float *staged = smem + ROW_LEAD;
  const int tid = threadIdx.x;
  const TileRun run = block_run(FLAT256_TILES);
  const int begin = run.begin, end = run.end;
  const bool issuer = ONE ? tid == 0 : tid < K;
  int buf = 0;
  for (int tile = begin; tile < end; ++tile) {
    int n, l0;
    flat256_tile(tile, n, l0);
    const int n_px = (int)min((int64_t)256, PQ - l0);
    float *buffer = staged + buf * ROW_BUFFER;
    if (issuer) // this buffer's copies of two tiles back have read it
      bulk_wait_read<1>();
    __syncthreads();
    for (int i = tid; i < K * 256; i += 512) // stand-in for the epilogue's fragment stores
      buffer[(i >> 8) * ROW_PITCH + (i & 255)] = value(tile, i >> 8);
    // row r's span [c0, c1) of columns relative to its pixel 0 (c0 = -4: the carried pixels)
    auto span = [&](int r, int &c0, int &c1) {
      const int64_t at = (int64_t)(n * K + r) * PLANE + l0;
      const bool odd = ALIGN && (at & 7) != 0;
      c0 = odd && tile > begin && l0 > 0 ? -4 : 0;
      c1 = n_px - (odd && tile + 1 < end && l0 + 256 < PQ ? 4 : 0);
    };
    if (ALIGN && tid < K) {
      int c0, c1;
      span(tid, c0, c1);
      if (c0 < 0) // the previous tile's last 4 pixels, from the other buffer
        *reinterpret_cast<float4 *>(buffer + tid * ROW_PITCH - 4) =
            *reinterpret_cast<const float4 *>(staged + (buf ^ 1) * ROW_BUFFER + tid * ROW_PITCH +
                                              252);
    }
    wg_fence_shared();
    __syncthreads();
    if (issuer) {
      for (int r = ONE ? 0 : tid; r < (ONE ? K : tid + 1); ++r) {
        int c0, c1;
        span(r, c0, c1);
        bulk_store(out + (int64_t)(n * K + r) * PLANE + l0 + c0, buffer + r * ROW_PITCH + c0,
                   (uint32_t)(c1 - c0) * 4);
      }
      bulk_commit();
    }
    buf ^= 1;
  }
  if (issuer)
    bulk_wait<0>();
}

// bulk_rows with every channel row's copy starting on a 128-byte line, not just a 32-byte sector
// (real planes start 16 c bytes into a line): row r is staged `lead` = (its pixel l0's address
// mod 128) / 4 columns on (0, 4, ..., 28), led by the previous tile's last `lead` pixels, and
// leaves its own last `lead` to the next tile; where a run begins or ends mid-plane the copy
// starts at pixel l0 / takes the tile's whole row instead. Rows of 288 floats (== 0 mod 32): a
// fragment store's lanes (pixel g, channel 2t + j) then fall in banks (4 c + g) % 32, distinct.
constexpr int LINE_PITCH = 288, LINE_BUFFER = K * LINE_PITCH;
constexpr int LINE_ROWS_SMEM = 2 * LINE_BUFFER * 4;

__global__ void __launch_bounds__(512, 1) bulk_rows_lines(float *out) {
  extern __shared__ __align__(128) float line_smem[];
  const int tid = threadIdx.x;
  const TileRun run = block_run(FLAT256_TILES);
  const int begin = run.begin, end = run.end;
  int buf = 0;
  for (int tile = begin; tile < end; ++tile) {
    int n, l0;
    flat256_tile(tile, n, l0);
    const int n_px = (int)min((int64_t)256, PQ - l0);
    float *buffer = line_smem + buf * LINE_BUFFER;
    auto lead_of = [&](int r) {
      return (int)((reinterpret_cast<uintptr_t>(out + (int64_t)(n * K + r) * PQ + l0) & 127) >> 2);
    };
    if (tid < K) // this buffer's copies of two tiles back have read it
      bulk_wait_read<1>();
    __syncthreads();
    for (int i = tid; i < K * 256; i += 512) { // stand-in for the epilogue's fragment stores
      const int r = i >> 8;
      buffer[r * LINE_PITCH + lead_of(r) + (i & 255)] = value(tile, r);
    }
    const bool joined = tile > begin && l0 > 0;
    const bool leaves = tile + 1 < end && l0 + 256 < PQ;
    if (tid < K && joined) { // the previous tile's last `lead` pixels lead this one
      const int lead = lead_of(tid);
      const float *prev = line_smem + (buf ^ 1) * LINE_BUFFER + tid * LINE_PITCH + 256;
      for (int j = 0; j < lead; j += 4)
        *reinterpret_cast<float4 *>(buffer + tid * LINE_PITCH + j) =
            *reinterpret_cast<const float4 *>(prev + j);
    }
    wg_fence_shared();
    __syncthreads();
    if (tid < K) {
      const int lead = lead_of(tid);
      const int c0 = joined ? 0 : lead, c1 = leaves ? 256 : lead + n_px;
      bulk_store(out + (int64_t)(n * K + tid) * PQ + l0 - lead + c0,
                 buffer + tid * LINE_PITCH + c0, (uint32_t)(c1 - c0) * 4);
      bulk_commit();
    }
    buf ^= 1;
  }
  if (tid < K)
    bulk_wait<0>();
}

// The flat kernel's box stores (conv_flat.cuh's TMA path, the H200's: bench/NOTES.md v60) with
// no arithmetic: the same 256-pixel flat tiles and contiguous runs as bulk_rows, each tile staged
// in TMA's 128-byte swizzle as boxes of 32 pixels x ROWS channels and stored by thread 0.
// PARITY: the even and the odd channels through two maps of their own (channel stride two
// planes), boxes of 32 x 32. (Those odd boxes started 4 pixels early, on a sector, with a carry
// as bulk_rows' ALIGN, died of an illegal instruction on an H100: bench/NOTES.md v101.)
constexpr int BOX_EVEN_FLOATS = 8 * 32 * 32, BOX_ODD_FLOATS = 8 * 32 * 32;
constexpr int BOX_BUFFER = BOX_EVEN_FLOATS + BOX_ODD_FLOATS; // >= 8 boxes of 32 x 64
constexpr int BULK_BOXES_SMEM = 2 * BOX_BUFFER * 4 + 1024;   // + the 1024-byte alignment slack

// Float offset of (row r, column c) in boxes of `rows` rows x 32 floats, 128-byte swizzle.
__device__ __forceinline__ int box_offset(int r, int c, int rows) {
  return (c >> 5) * rows * 32 + r * 32 + ((((c & 31) >> 2) ^ (r & 7)) << 2) + (c & 3);
}

template <int64_t PLANE, bool PARITY>
__global__ void __launch_bounds__(512, 1)
    bulk_boxes(const __grid_constant__ CUtensorMap map_all, const __grid_constant__ CUtensorMap map_even,
               const __grid_constant__ CUtensorMap map_odd, float *out) {
  extern __shared__ float boxes_smem_raw[];
  float *staged = reinterpret_cast<float *>((reinterpret_cast<uintptr_t>(boxes_smem_raw) + 1023) &
                                            ~(uintptr_t)1023);
  const int tid = threadIdx.x;
  const TileRun run = block_run(FLAT256_TILES);
  const int begin = run.begin, end = run.end;
  int buf = 0;
  for (int tile = begin; tile < end; ++tile) {
    int n, l0;
    flat256_tile(tile, n, l0);
    float *buffer = staged + buf * BOX_BUFFER;
    float *odd_boxes = buffer + BOX_EVEN_FLOATS;
    if (tid == 0) // this buffer's stores of two tiles back have read it
      bulk_wait_read<1>();
    __syncthreads();
    for (int i = tid; i < K * 256; i += 512) { // stand-in for the epilogue's fragment stores
      const int ch = i >> 8, m = i & 255;
      const float v = value(tile, ch);
      if (!PARITY)
        buffer[box_offset(ch, m, K)] = v;
      else if (ch & 1)
        odd_boxes[box_offset(ch >> 1, m, K / 2)] = v;
      else
        buffer[box_offset(ch >> 1, m, K / 2)] = v;
    }
    wg_fence_shared();
    __syncthreads();
    if (tid == 0) {
      for (int b = 0; b < 8; ++b) {
        if (!PARITY) {
          tma_store_3d(&map_all, buffer + b * K * 32, l0 + 32 * b, 0, n);
        } else {
          tma_store_3d(&map_even, buffer + b * 32 * 32, l0 + 32 * b, 0, n);
          tma_store_3d(&map_odd, odd_boxes + b * 32 * 32, l0 + 32 * b, 0, n);
        }
      }
      bulk_commit();
    }
    buf ^= 1;
  }
  if (tid == 0)
    bulk_wait<0>();
}

// The output as a 3-D tensor (plane pixels, channels `count` apart from `first`, images) with
// boxes of 32 pixels x box_rows channels, 128-byte swizzle: conv_flat's out_map, or one parity.
static CUtensorMap output_map(float *out, int64_t plane, int first, int step, int box_rows) {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void *fn = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                           cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || fn == nullptr) {
      std::fprintf(stderr, "cuTensorMapEncodeTiled not found\n");
      std::exit(1);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  CUtensorMap map;
  const cuuint64_t dims[3] = {(cuuint64_t)PQ, (cuuint64_t)(K / step), (cuuint64_t)N};
  const cuuint64_t strides[2] = {(cuuint64_t)(plane * step * 4), (cuuint64_t)(plane * K * 4)};
  const cuuint32_t box[3] = {32, (cuuint32_t)box_rows, 1}, unit[3] = {1, 1, 1};
  if (encode(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 3, out + first * plane, dims, strides, box,
             unit, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
             CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS) {
    std::fprintf(stderr, "cuTensorMapEncodeTiled failed\n");
    std::exit(1);
  }
  return map;
}

// bulk_rows<PLANE, ...> must write every pixel of every plane as its tile's value.
template <int64_t PLANE>
static void verify_flat256(const float *out, const char *name) {
  std::vector<float> h((size_t)N * K * PLANE);
  CHECK(cudaMemcpy(h.data(), out, h.size() * 4, cudaMemcpyDeviceToHost));
  int64_t bad = 0;
  for (int n = 0; n < N; ++n)
    for (int ch = 0; ch < K; ++ch)
      for (int64_t l = 0; l < PQ; ++l) {
        const int tile = n * FLAT256_PER_IMAGE + (int)(l / 256);
        if (h[((int64_t)n * K + ch) * PLANE + l] != (float)(tile ^ ch) * 1e-3f && bad++ < 3)
          std::printf("%s wrong at n %d ch %d pixel %lld\n", name, n, ch, (long long)l);
      }
  std::printf("%s: %lld wrong of %lld\n", name, (long long)bad, (long long)N * K * PQ);
}

// The floor: the tensor written front to back, 16 bytes per lane.
__global__ void __launch_bounds__(256) linear_v4(float4 *out, int64_t n4) {
  for (int64_t i = blockIdx.x * 256LL + threadIdx.x; i < n4; i += (int64_t)gridDim.x * 256) {
    const float v = (float)(i & 1023);
    __stcs(out + i, make_float4(v, v, v, v));
  }
}

// row_carry must write every element exactly as the tile's value: check one full pass.
static void verify(float *out) {
  const int64_t elems = (int64_t)N * K * PQ;
  int dev = 0, sms = 0;
  CHECK(cudaGetDevice(&dev));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  for (int bm : {128, 256}) {
    CHECK(cudaMemset(out, 0xff, elems * 4)); // NaN
    const int sm = K * ((bm + 8 + 15) / 16 * 16 + 4) * 4;
    if (bm == 128) row_carry<128><<<2 * sms, 256, sm>>>(out);
    else row_carry<256><<<2 * sms, 256, sm>>>(out);
    CHECK(cudaDeviceSynchronize());
    std::vector<float> h(elems);
    CHECK(cudaMemcpy(h.data(), out, elems * 4, cudaMemcpyDeviceToHost));
    const int qt = (Q + bm - 1) / bm;
    int64_t bad = 0;
    for (int64_t i = 0; i < elems; ++i) {
      const int64_t q = i % Q, p = i / Q % P, ch = i / PQ % K, n = i / PQ / K;
      const int tile = (int)((n * P + p) * qt + q / bm);
      if (h[i] != (float)(tile ^ (int)ch) * 1e-3f && bad++ < 5)
        std::printf("row_carry<%d> wrong at %lld\n", bm, (long long)i);
    }
    std::printf("row_carry<%d>: %lld wrong of %lld\n", bm, (long long)bad, (long long)elems);
  }
}

template <class F>
static void time_it(const char *name, int64_t bytes, F launch) {
  const double med = probe_time(launch, 3, 20).median;
  std::printf("%-22s %8.3f ms  %7.0f GB/s\n", name, med, bytes / (med * 1e6));
}

int main() {
  int dev = 0, sms = 0;
  CHECK(cudaGetDevice(&dev));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, dev));
  const int64_t elems = (int64_t)N * K * PQ, padded = (int64_t)N * K * P * 256;
  float *out = nullptr;
  CHECK(cudaMalloc(&out, std::max(padded, (int64_t)N * K * PQ_PAD) * sizeof(float)));
  std::printf("%s, %d SMs; output %lld floats (%.2f GB)\n", prop.name, sms, (long long)elems,
              elems * 4e-9);
  for (int per_sm : {2, 4}) {
    const int grid = per_sm * sms;
    std::printf("-- persistent grid %d (%d blocks/SM)\n", grid, per_sm);
    time_it("frag32 st.cs", elems * 4, [&] { frag32<true><<<grid, 256>>>(out); });
    time_it("frag32 st", elems * 4, [&] { frag32<false><<<grid, 256>>>(out); });
    time_it("row v2", elems * 4, [&] { row_v2<<<grid, 256>>>(out); });
    time_it("row v4 (Q'=256)", padded * 4, [&] { row_v4_padded<<<grid, 256>>>(out); });
    time_it("flat v4", elems * 4, [&] { flat_v4<PQ, true><<<grid, 256>>>(out); });
    time_it("flat v4 st", elems * 4, [&] { flat_v4<PQ, false><<<grid, 256>>>(out); });
    time_it("flat v4 128B-aligned cs", elems * 4, [&] { flat_v4<PQ_PAD, true><<<grid, 256>>>(out); });
    time_it("flat v4 128B-aligned", elems * 4, [&] { flat_v4<PQ_PAD, false><<<grid, 256>>>(out); });
    time_it("flat v4 aligned runs", elems * 4, [&] { flat_v4_runs<<<grid, 256>>>(out); });
    {
      const int sm128 = K * ((128 + 8 + 15) / 16 * 16 + 4) * 4, sm256 = K * ((256 + 8 + 15) / 16 * 16 + 4) * 4;
      CHECK(cudaFuncSetAttribute(row_carry<128>, cudaFuncAttributeMaxDynamicSharedMemorySize, sm128));
      CHECK(cudaFuncSetAttribute(row_carry<256>, cudaFuncAttributeMaxDynamicSharedMemorySize, sm256));
      time_it("row128 carry", elems * 4, [&] { row_carry<128><<<grid, 256, sm128>>>(out); });
      time_it("row256 carry", elems * 4, [&] { row_carry<256><<<grid, 256, sm256>>>(out); });
    }
    time_it("row128 v4 real cs", elems * 4, [&] { row_v4_real<128, true><<<grid, 256>>>(out); });
    time_it("row128 v4 real", elems * 4, [&] { row_v4_real<128, false><<<grid, 256>>>(out); });
    time_it("row256 v4 real cs", elems * 4, [&] { row_v4_real<256, true><<<grid, 256>>>(out); });
    time_it("row256 v4 real", elems * 4, [&] { row_v4_real<256, false><<<grid, 256>>>(out); });
  }
  // A flat-256 variant: timed, then run once more over NaN and checked element by element.
  auto time_flat256 = [&](const void *kernel, int smem, const char *name, bool padded_planes,
                          auto launch) {
    CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    time_it(name, elems * 4, launch);
    CHECK(cudaMemset(out, 0xff, (int64_t)N * K * PQ_PAD * 4)); // NaN
    launch();
    CHECK(cudaDeviceSynchronize());
    if (padded_planes)
      verify_flat256<PQ_PAD>(out, name);
    else
      verify_flat256<PQ>(out, name);
  };
  {
    std::printf("-- flat tiles of 256 by bulk row copies (1 block of 512 threads per SM)\n");
    auto run = [&](auto kernel, const char *name, bool padded_planes, int smem = BULK_ROWS_SMEM) {
      time_flat256((const void *)kernel, smem, name, padded_planes,
                   [&] { kernel<<<sms, 512, smem>>>(out); });
    };
    run(bulk_rows<PQ, false, false>, "rows 64 issuers", false);
    run(bulk_rows<PQ, false, true>, "rows 1 issuer", false);
    run(bulk_rows<PQ, true, false>, "rows sector-aligned", false);
    run(bulk_rows<PQ, true, true>, "rows aligned 1 issuer", false);
    run(bulk_rows<PQ_PAD, false, false>, "rows padded planes", true);
    run(bulk_rows_lines, "rows line-aligned", false, LINE_ROWS_SMEM);
  }
  {
    std::printf("-- flat tiles of 256 by TMA boxes (1 block of 512 threads per SM)\n");
    auto run = [&](auto kernel, const char *name, bool padded_planes) {
      const int64_t plane = padded_planes ? PQ_PAD : PQ;
      const CUtensorMap all = output_map(out, plane, 0, 1, K), even = output_map(out, plane, 0, 2, K / 2),
                        odd = output_map(out, plane, 1, 2, K / 2);
      time_flat256((const void *)kernel, BULK_BOXES_SMEM, name, padded_planes,
                   [&] { kernel<<<sms, 512, BULK_BOXES_SMEM>>>(all, even, odd, out); });
    };
    run(bulk_boxes<PQ, false>, "boxes 32x64", false);
    run(bulk_boxes<PQ, true>, "boxes parity 32x32", false);
    run(bulk_boxes<PQ_PAD, false>, "boxes padded planes", true);
  }
  verify(out);
  time_it("linear v4", elems * 4,
          [&] { linear_v4<<<sms * 8, 256>>>(reinterpret_cast<float4 *>(out), elems / 4); });
  CHECK(cudaFree(out));
  return 0;
}
