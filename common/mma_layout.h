/* Shared-memory layout of the tensor-core "row tile" kernel, computed in one place for the
 * planner (does it fit?) and the CUDA / OpenCL launchers (which pass it to the kernel).
 * Header-only, plain C: included by host C code and by CUDA host code. */
#ifndef CF_COMMON_MMA_LAYOUT_H
#define CF_COMMON_MMA_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct cf_mma_layout {
  int64_t patch_width;  /* input columns one row tile reads: (BM-1)*stride + (S-1)*dil + 1 */
  int64_t patch_pitch;  /* floats per patch row, >= width, == 16 (mod 32): fewer conflicts */
  int64_t zero_base;    /* start of a run of zeros that padded K indices point to */
  int64_t patch_floats; /* CC*R*pitch + the zero run, rounded to 4 */
  int64_t kc, kcp;      /* K values per chunk (CC*R*S), padded to a multiple of 8 */
  int64_t n_chunks;     /* ceil(C / CC) */
  int resident;         /* 1: all of the block's weights stay in shared memory */
  int64_t w_pitch;      /* floats per staged weight row, == 4 (mod 8): conflict-free;
                           resident: n_chunks * kcp values, else kcp (or exactly kcp when
                           w_swizzled) */
  int w_swizzled;       /* streamed weights at pitch kcp (== 8 mod 16), conflict-free by a
                           swizzle instead of padding (cf_mma_layout_swizzle_weights) */
  int64_t weight_floats; /* resident weights (BN * w_pitch), or 0 */
  int64_t stage_floats; /* one pipeline stage: the patch, plus a chunk of weights if not
                           resident */
  int64_t out_pitch;    /* staged output: floats per channel row, >= BM + 8 (the carried
                           tail of the previous tile leads), == 4 (mod 16): 16-byte rows,
                           conflict-free fragment stores; 0 when not staged */
  int64_t out_floats;   /* staged output tile (BN * out_pitch), or 0 */
  int64_t n_stages;     /* pipeline stages (patch buffers): 2, more only with TMA */
  int64_t bytes;        /* dynamic shared memory: weights + n_stages stages + staged output +
                           K-offset table (+ an mbarrier and a counter per stage with TMA) */
  /* The patch by TMA (CUDA sm_90; cf_layout_with_tma): each
   * stage holds tma_segments column segments of the patch, one TMA box each (a box row is at
   * most 256 floats), seg_floats apart; each segment is the patch of seg_pixels output pixels
   * (patch_width columns at patch_pitch), then its own run of zeros at zero_base (relative to
   * the segment; the lanes' pixel offsets include the box's lead of up to 3 columns, so the run
   * is 3 longer). 0 / BM / patch_floats without TMA: one segment, loaded by cp.async. */
  int64_t tma_segments;
  int64_t seg_pixels;
  int64_t seg_floats;
  /* Flat tiles (cf_flat_layout_make; 0 otherwise): a tile is BM consecutive pixels of one
   * output plane, crossing row ends. Each stage holds one TMA box of flat_rows whole input rows
   * (patch_pitch = the width) of all C channels; the output leaves through out_buffers
   * swizzled staging buffers by TMA stores. */
  int64_t flat_rows;
  int64_t out_buffers;
  /* Streamed wgmma tiles (cf_wg_stream_layout_make) and flat tiles (3xTF32's only): the
   * products on fp16 tensor cores, one or (3xTF32's accuracy) hi / lo pairs (bench/NOTES.md
   * v51, v55); kcp is then a multiple of 16 and the weights fp16 values. 0 otherwise. */
  int f16;
} cf_mma_layout;

/* Staged output: floats per channel row of a BM-pixel tile (see out_pitch). A macro: the
 * CUDA kernel needs it as a compile-time constant (immediate shared-memory offsets). */
#define CF_MMA_OUT_PITCH(bm) (((bm) + 8 + 15) / 16 * 16 + 4)

static inline int64_t cf_mma_pitch(int64_t n, int64_t residue) {
  return n + ((residue - n % 32) + 32) % 32;
}

/* Floats per staged weight row of n values: the least >= n that is == 4 (mod 8). A B fragment
 * load reads row g, column t (g < 8, t < 4): g * pitch + t then falls in 32 distinct banks
 * (4 * odd * g covers the multiples of 4 mod 32 once), as == 4 (mod 32) did with up to 28
 * floats more per row (a 40-value chunk row: 44 instead of 68; bench/NOTES.md v41). */
static inline int64_t cf_mma_weight_pitch(int64_t n) { return n + (12 - n % 8) % 8; }

/* All arithmetic in int64: callers compare .bytes with the device limit before using any
 * field as an int. Arguments must be >= 1. resident: keep all weights in shared memory;
 * staged: the output tile goes through shared memory on its way out (whole 16-byte vectors
 * and 32-byte sectors: bench/NOTES.md, v8). */
static inline cf_mma_layout cf_mma_layout_make(int64_t bm, int64_t bn, int64_t c, int64_t cc,
                                               int64_t r, int64_t s, int64_t stride_w,
                                               int64_t dil_w, int resident, int staged) {
  cf_mma_layout L;
  L.patch_width = (bm - 1) * stride_w + (s - 1) * dil_w + 1;
  L.patch_pitch = cf_mma_pitch(L.patch_width, 16);
  L.zero_base = cc * r * L.patch_pitch;
  L.patch_floats = (L.zero_base + (bm - 1) * stride_w + 1 + 3) / 4 * 4;
  L.kc = cc * r * s;
  L.kcp = (L.kc + 7) / 8 * 8;
  L.n_chunks = (c + cc - 1) / cc;
  L.resident = resident;
  L.w_pitch = cf_mma_weight_pitch(resident ? L.n_chunks * L.kcp : L.kcp);
  L.weight_floats = resident ? bn * L.w_pitch : 0;
  L.stage_floats = L.patch_floats + (resident ? 0 : bn * L.w_pitch);
  L.out_pitch = staged ? CF_MMA_OUT_PITCH(bm) : 0;
  L.out_floats = bn * L.out_pitch;
  L.n_stages = 2;
  L.bytes = (L.weight_floats + L.n_stages * L.stage_floats + L.out_floats + L.kcp) * 4;
  L.tma_segments = 0;
  L.seg_pixels = bm;
  L.seg_floats = L.patch_floats;
  L.flat_rows = 0;
  L.out_buffers = 0;
  L.w_swizzled = 0;
  L.f16 = 0;
  return L;
}

/* Can L's streamed weights go unpadded (pitch kcp, == 8 mod 16) with the OpenCL kernel's
 * swizzle: in rows with bit 2 of the row set, the two 16-byte halves of every 32-byte pair
 * trade places, which puts the eight rows of an ldmatrix matrix in distinct banks as the
 * padded pitch did (rows 8 * g floats apart, g and g + 4 otherwise in the same banks). It saves
 * 4 floats per weight row of each stage: what lets 256-pixel tiles' two stages fit 48 KB. */
static inline int cf_mma_layout_can_swizzle_weights(const cf_mma_layout *L) {
  return !L->resident && L->tma_segments == 0 && L->kcp % 16 == 8;
}

static inline cf_mma_layout cf_mma_layout_swizzle_weights(cf_mma_layout L, int64_t bn) {
  L.bytes -= L.n_stages * bn * (L.w_pitch - L.kcp) * 4;
  L.stage_floats -= bn * (L.w_pitch - L.kcp);
  L.w_pitch = L.kcp;
  L.w_swizzled = 1;
  return L;
}

/* A TMA box row's floats: the segment's width rounded up to 16 bytes and then on to == 12..20
 * (mod 32), so that a fragment load's two patch rows (offsets differing by about a pitch) fall
 * in disjoint banks. */
static inline int64_t cf_tma_pitch(int64_t width) {
  int64_t p = (width + 3) / 4 * 4;
  while (p % 32 < 12 || p % 32 > 20)
    p += 4;
  return p;
}

/* Columns a TMA patch segment of seg output pixels spans: the pixels' input columns, plus up to
 * 3 in front, since each box starts on a 16-byte boundary (the column the segment's first pixel
 * reads, rounded down to a multiple of 4). */
static inline int64_t cf_tma_seg_width(int64_t seg, int64_t s, int64_t stride_w, int64_t dil_w) {
  return 3 + (seg - 1) * stride_w + (s - 1) * dil_w + 1;
}

/* Output pixels per TMA patch segment for a bm-pixel row tile: the largest of 128 and 64 that
 * divides bm and whose box row (cf_tma_pitch of its width) is at most 256 floats (the TMA box
 * limit); 0 when neither does. */
static inline int64_t cf_tma_seg_pixels(int64_t bm, int64_t s, int64_t stride_w, int64_t dil_w) {
  for (int64_t seg = 128; seg >= 64; seg /= 2)
    if (bm % seg == 0 && cf_tma_pitch(cf_tma_seg_width(seg, s, stride_w, dil_w)) <= 256)
      return seg;
  return 0;
}

/* Layout L (resident weights) with the patch by TMA in segments of tma_seg pixels (from
 * cf_tma_seg_pixels) and n_stages (>= 2) stage buffers: every segment starts 128-byte aligned
 * (so do the weights' end and each stage), and an mbarrier and a counter per stage (16 bytes)
 * follow the K-offset table. A segment's run of zeros exists only where K is padded (kc < kcp):
 * mish-mish's third stage fits beside its resident weights only without it. */
static inline cf_mma_layout cf_layout_with_tma(cf_mma_layout L, int64_t bm, int64_t cc,
                                               int64_t r, int64_t s, int64_t stride_w,
                                               int64_t dil_w, int64_t tma_seg, int64_t n_stages) {
  L.weight_floats = (L.weight_floats + 31) / 32 * 32;
  L.tma_segments = bm / tma_seg;
  L.seg_pixels = tma_seg;
  L.patch_width = cf_tma_seg_width(tma_seg, s, stride_w, dil_w);
  L.patch_pitch = cf_tma_pitch(L.patch_width);
  L.zero_base = cc * r * L.patch_pitch;
  L.seg_floats = (L.zero_base + (L.kc < L.kcp ? 3 + (tma_seg - 1) * stride_w + 1 : 0) + 31) /
                 32 * 32;
  L.patch_floats = L.tma_segments * L.seg_floats;
  L.stage_floats = L.patch_floats;
  L.n_stages = n_stages;
  L.bytes = (L.weight_floats + n_stages * L.stage_floats + L.out_floats + L.kcp) * 4 +
            16 * n_stages;
  return L;
}

/* The wgmma kernels' layout (kernels_cuda/conv_wgmma.cu): weights always resident, in
 * wgmma's core-matrix order with no row padding (w_pitch = the block's whole K), twice over
 * for 3xTF32 (split: the big halves, then the small ones, split once per block).
 * tma_seg > 0: the patch by TMA (cf_layout_with_tma) in n_stages stages. */
static inline cf_mma_layout cf_wg_layout_make(int64_t bm, int64_t bn, int64_t c, int64_t cc,
                                              int64_t r, int64_t s, int64_t stride_w,
                                              int64_t dil_w, int split, int staged,
                                              int64_t tma_seg, int64_t n_stages) {
  cf_mma_layout L = cf_mma_layout_make(bm, bn, c, cc, r, s, stride_w, dil_w, 1, staged);
  L.w_pitch = L.n_chunks * L.kcp;
  L.weight_floats = (split ? 2 : 1) * bn * L.w_pitch;
  L.bytes = (L.weight_floats + L.n_stages * L.stage_floats + L.out_floats + L.kcp) * 4;
  return tma_seg > 0 ? cf_layout_with_tma(L, bm, cc, r, s, stride_w, dil_w, tma_seg, n_stages)
                     : L;
}

/* The streamed wgmma tiles' layout (kernels_cuda/conv_stream.cuh; TMA patch segments of tma_seg
 * pixels, as cf_layout_with_tma): n_stages stages, each the patch's segments and then the
 * chunk's weights (bn x kcp values in wgmma's canonical order, one bulk copy: a float each, two
 * for split (its big halves, then its small ones); f16 (an experiment): K padded to 16 and an
 * fp16 value each, two planes of them for split (hi, lo)), a stage rounded to 128 bytes; then
 * the K-offset table, the bias (bn floats; for f16 also the channels' 2^-e), an mbarrier and a
 * counter per stage. Nothing is resident: weight_floats 0, w_pitch kcp. */
static inline cf_mma_layout cf_wg_stream_layout_make(int64_t bm, int64_t bn, int64_t c,
                                                     int64_t cc, int64_t r, int64_t s,
                                                     int64_t dil_w, int split, int f16,
                                                     int64_t tma_seg, int64_t n_stages) {
  cf_mma_layout L = cf_mma_layout_make(bm, bn, c, cc, r, s, 1, dil_w, 0, 0);
  L.f16 = f16 != 0;
  if (L.f16) /* before the segments: their zero runs exist only where kc < kcp */
    L.kcp = (L.kc + 15) / 16 * 16;
  L = cf_layout_with_tma(L, bm, cc, r, s, 1, dil_w, tma_seg, n_stages);
  L.w_pitch = L.kcp;
  L.weight_floats = 0;
  const int64_t value_bytes = (split ? 2 : 1) * (L.f16 ? 2 : 4);
  L.stage_floats = (L.patch_floats + bn * L.kcp * value_bytes / 4 + 31) / 32 * 32;
  L.bytes = (n_stages * L.stage_floats + L.kcp + (L.f16 ? 2 : 1) * bn) * 4 + 16 * n_stages;
  return L;
}

/* The row-channel tile (kernels_cuda/conv_rowch.cuh; bench/NOTES.md v77, v79): WG entry 1's
 * one fp16 product on CF_ROWCH_BM pixels of an output row x CF_ROWCH_BN channels per team of
 * CF_ROWCH_THREADS threads, K in chunks of CF_ROWCH_CHUNK (channel, kernel row) pairs of
 * CF_ROWCH_S kernel columns. A stage is the chunk's 16 patch rows of 132 floats and, with its
 * weights streamed, the chunk's 3 x 16 x 128 fp16 weights; with them resident, the block (two
 * teams, each its own stages) holds the channel tile's n_chunks chunks of weights once. Then
 * the bias and the channels' 2^-e (BN floats each). The kernel's RowChTile takes these
 * constants; the CUDA backend checks its kernel's own size (cfk_rowch_smem_bytes) against
 * this one. */
enum {
  CF_ROWCH_BM = 128,
  CF_ROWCH_BN = 128,
  CF_ROWCH_CHUNK = 16,
  CF_ROWCH_S = 3,
  CF_ROWCH_PITCH = 132, /* floats per patch row: BM + S - 1 columns, == 4 (mod 32) */
  CF_ROWCH_THREADS = 256,
  CF_ROWCH_TEAMS = 2
};
static inline int64_t cf_rowch_shared_bytes(int64_t n_stages, int resident, int64_t n_chunks) {
  const int64_t weights = (int64_t)CF_ROWCH_S * 16 * CF_ROWCH_BN * 2; /* fp16, per chunk */
  const int64_t patch = (int64_t)CF_ROWCH_CHUNK * CF_ROWCH_PITCH * 4;
  const int64_t tail = 2 * CF_ROWCH_BN * 4;
  return resident ? n_chunks * weights + CF_ROWCH_TEAMS * n_stages * patch + tail
                  : n_stages * (weights + patch) + tail;
}

/* Flat tiles: the most output rows a tile of bm consecutive pixels of a q-wide plane spans.
 * Tiles start at multiples of bm, so a tile's first column is a multiple of gcd(bm, q) below
 * q: at most q - gcd(bm, q). */
static inline int64_t cf_flat_out_rows(int64_t bm, int64_t q) {
  int64_t a = bm, b = q;
  while (b != 0) {
    const int64_t t = a % b;
    a = b;
    b = t;
  }
  return (q - a + bm - 1) / q + 1;
}

/* Input rows one flat tile reads: its output rows' taps. */
static inline int64_t cf_flat_in_rows(int64_t bm, int64_t q, int64_t r, int64_t stride_h,
                                      int64_t dil_h) {
  return (cf_flat_out_rows(bm, q) - 1) * stride_h + (r - 1) * dil_h + 1;
}

/* Floats per channel row of a flat tile's staging buffer: bm pixels and 4 more, so that the
 * epilogue's writes (lanes: 8 pixels x 4 channel pairs) fall in 32 distinct banks and each row
 * can leave as one plain bulk copy (kernels_cuda/conv_flat.cuh; bench/NOTES.md v57). A macro:
 * the kernel needs it at compile time. */
#define CF_FLAT_STAGE_PITCH(bm) ((bm) + 4)

/* The flat-tile wgmma kernel's layout (kernels_cuda/conv_flat.cuh; one K chunk of all c
 * channels, width w a multiple of 4, no column padding): out_buffers staging buffers of bn rows
 * of CF_FLAT_STAGE_PITCH(bm) floats first (TMA's 128-byte swizzle wants 1024-byte alignment;
 * bn * (bm + 4) * 4 keeps each buffer's start on it for bn 64 and bm 256), the resident weights as in
 * cf_wg_layout_make (twice for split; f16, fp16 pairs for split only: hi and lo planes of
 * bn x kcp fp16 values, kcp a multiple of 16, then bn floats of each channel's 2^-e and bn of
 * its 2^e: conv_flat.cuh), n_stages patches of c x flat_rows x w floats (each a
 * 128-byte multiple), the K-offset table, an mbarrier and a counter per stage (16 bytes). K
 * indices past C*R*S read
 * the patch's first element (their weights are zero). */
static inline cf_mma_layout cf_flat_layout_make(int64_t bm, int64_t bn, int64_t c, int64_t r,
                                                int64_t s, int64_t w, int64_t q,
                                                int64_t stride_h, int64_t dil_h, int split,
                                                int f16, int64_t n_stages, int64_t out_buffers) {
  cf_mma_layout L = cf_mma_layout_make(bm, bn, c, c, r, s, 1, 1, 1, 0);
  L.f16 = split && f16;
  if (L.f16)
    L.kcp = (L.kc + 15) / 16 * 16;
  L.flat_rows = cf_flat_in_rows(bm, q, r, stride_h, dil_h);
  L.patch_width = w;
  L.patch_pitch = w;
  L.zero_base = c * L.flat_rows * w;
  L.patch_floats = (L.zero_base + 31) / 32 * 32;
  L.stage_floats = L.patch_floats;
  L.w_pitch = L.kcp;
  L.weight_floats = L.f16 ? (bn * L.kcp + 2 * bn + 31) / 32 * 32
                          : ((split ? 2 : 1) * bn * L.w_pitch + 31) / 32 * 32;
  L.out_pitch = CF_FLAT_STAGE_PITCH(bm);
  L.out_buffers = out_buffers;
  L.out_floats = out_buffers * bn * L.out_pitch;
  L.n_stages = n_stages;
  L.tma_segments = 1;
  L.seg_pixels = bm;
  L.seg_floats = L.patch_floats;
  L.bytes = (L.out_floats + L.weight_floats + n_stages * L.stage_floats + L.kcp) * 4 +
            16 * n_stages;
  return L;
}

#endif
