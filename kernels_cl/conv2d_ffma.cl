/* convfuse OpenCL: fused conv2d + bias + epilogue, implicit GEMM with fp32 FMA (portable path).
 *
 * GEMM view: M = N*P*Q output pixels (q fastest), N = K output channels, K = C*R*S.
 *   A[m][crs] = input[n][c][p*sh - ph + r*dh][q*sw - pw + s*dw] (0 in the padding)
 *   B[crs][k] = weight[k][c][r][s]
 * A work-group computes a BM x BN block of the output, staging A and B through local memory in
 * BK-deep slices: two local buffers, the global loads of slice t+1 held in registers while
 * slice t is multiplied, one barrier per slice. Each work-item owns a TM x TN register
 * micro-tile made of VM-row x VN-column groups (VM, VN = 4, 2 or 1): group g of its rows is
 * rows g*WM*VM + tm*VM + [0, VM) of the block (likewise for columns), so that
 *  - each k step reads its A and B values from local memory as float4/float2 vectors, with the
 *    work-items of a warp on consecutive addresses (no bank conflicts, B reads broadcast);
 *  - in the epilogue a work-item stores VM consecutive pixels of one channel as one vector
 *    when P*Q is a multiple of VM (16-byte stores, consecutive work-items on consecutive
 *    addresses), else element by element.
 * The epilogue (bias + bias_shift, then the chain) runs on the registers; each output element
 * is written exactly once.
 *
 * NDRange: 2-D; local size (WM, WN) = (BM/TM, BN/TN); work-group (i, j) computes M block i and
 * N block j. Build options (every one has a fallback below):
 *   -DCF_BM -DCF_BN -DCF_BK -DCF_TM -DCF_TN   tiles (the FFMA menu in constants.def)
 *   -DCF_HAS_BIAS=0/1                         read bias[k]
 *   -DCF_IMG32=0/1                            C*H*W < 2^31: 32-bit offsets inside an image
 *   -DCF_EPI_N -DCF_EPI_OP<i>                 epilogue chain (cf_epilogue.h)
 * Flat tensor offsets are 64-bit (long); single extents and in-plane coordinates are int (the
 * host checks they fit).
 *
 * Not compiled in a tensor-core program (-DCF_MMA_KERNEL: conv2d_mma.cl's kernel only) nor in
 * the wgmma program or its layout kernel (-DCF_WGMMA_KERNEL). */
#if !defined(CF_MMA_KERNEL) && !defined(CF_WGMMA_KERNEL)

#ifndef CF_BM
#define CF_BM CFK_FFMA_T1_BM
#endif
#ifndef CF_BN
#define CF_BN CFK_FFMA_T1_BN
#endif
#ifndef CF_BK
#define CF_BK CFK_FFMA_T1_BK
#endif
#ifndef CF_TM
#define CF_TM CFK_FFMA_T1_TM
#endif
#ifndef CF_TN
#define CF_TN CFK_FFMA_T1_TN
#endif
#ifndef CF_HAS_BIAS
#define CF_HAS_BIAS 0
#endif

#if CF_BM <= 0 || CF_BN <= 0 || CF_BK <= 0 || CF_TM <= 0 || CF_TN <= 0
#error "tile sizes must be positive"
#endif
#if CF_BM % CF_TM != 0 || CF_BN % CF_TN != 0
#error "CF_TM must divide CF_BM and CF_TN must divide CF_BN"
#endif

#define CF_WM (CF_BM / CF_TM)      /* work-items along M */
#define CF_WN (CF_BN / CF_TN)      /* work-items along N */
#define CF_THREADS (CF_WM * CF_WN) /* work-group size */
#define CF_A_ELEMS (CF_BM * CF_BK)
#define CF_B_ELEMS (CF_BK * CF_BN)
#define CF_A_LOADS ((CF_A_ELEMS + CF_THREADS - 1) / CF_THREADS)
#define CF_B_LOADS ((CF_B_ELEMS + CF_THREADS - 1) / CF_THREADS)

/* Vector widths of the micro-tile groups. */
#if CF_TM % 4 == 0
#define CF_VM 4
#elif CF_TM % 2 == 0
#define CF_VM 2
#else
#define CF_VM 1
#endif
#if CF_TN % 4 == 0
#define CF_VN 4
#elif CF_TN % 2 == 0
#define CF_VN 2
#else
#define CF_VN 1
#endif
/* Block row / column of micro-tile element i / j of work-item (tm, tn). */
#define CF_ROW(i) (((i) / CF_VM) * (CF_WM * CF_VM) + tm * CF_VM + (i) % CF_VM)
#define CF_COL(j) (((j) / CF_VN) * (CF_WN * CF_VN) + tn * CF_VN + (j) % CF_VN)

/* Pixels decoded per work-item for the A loads. */
#if CF_THREADS % CF_BM == 0
#define CF_A_PIX 1
#else
#define CF_A_PIX CF_A_LOADS
#endif

/* Offset of (c, h, w) inside one input image: 32-bit when the host says C*H*W fits
 * (-DCF_IMG32=1), else 64-bit. */
#ifndef CF_IMG32
#define CF_IMG32 0
#endif
#if CF_IMG32
#define CF_IMG_OFFSET(c, h, w) ((c) * HW32 + (h) * W + (w))
#else
#define CF_IMG_OFFSET(c, h, w) ((long)(c) * HW + (long)(h) * W + (w))
#endif

/* Row length of the B tile: its stores go down columns (kk fastest across work-items); +4
 * spreads them over the banks and keeps rows 16-byte aligned for the vector reads. */
#define CF_BN_LD (CF_BN + 4)

/* Vector load of VM (VN) floats from local memory into a[i0..] (b[j0..]). */
#if CF_VM == 4
#define CF_LDA(dst, i0, p)                                  \
  do {                                                      \
    const float4 v_ = *(__local const float4 *)(p);         \
    dst[(i0)] = v_.s0;                                      \
    dst[(i0) + 1] = v_.s1;                                  \
    dst[(i0) + 2] = v_.s2;                                  \
    dst[(i0) + 3] = v_.s3;                                  \
  } while (0)
#elif CF_VM == 2
#define CF_LDA(dst, i0, p)                                  \
  do {                                                      \
    const float2 v_ = *(__local const float2 *)(p);         \
    dst[(i0)] = v_.s0;                                      \
    dst[(i0) + 1] = v_.s1;                                  \
  } while (0)
#else
#define CF_LDA(dst, i0, p) dst[(i0)] = *(p)
#endif
#if CF_VN == 4
#define CF_LDB(dst, j0, p)                                  \
  do {                                                      \
    const float4 v_ = *(__local const float4 *)(p);         \
    dst[(j0)] = v_.s0;                                      \
    dst[(j0) + 1] = v_.s1;                                  \
    dst[(j0) + 2] = v_.s2;                                  \
    dst[(j0) + 3] = v_.s3;                                  \
  } while (0)
#elif CF_VN == 2
#define CF_LDB(dst, j0, p)                                  \
  do {                                                      \
    const float2 v_ = *(__local const float2 *)(p);         \
    dst[(j0)] = v_.s0;                                      \
    dst[(j0) + 1] = v_.s1;                                  \
  } while (0)
#else
#define CF_LDB(dst, j0, p) dst[(j0)] = *(p)
#endif

__kernel __attribute__((reqd_work_group_size(CF_WM, CF_WN, 1))) void
cf_conv2d_ffma(__global const float *restrict input, __global const float *restrict weight,
               __global const float *restrict bias, __global float *restrict output,
               const int N, const int C, const int H, const int W, const int K, const int R,
               const int S, const int P, const int Q, const int stride_h, const int stride_w,
               const int pad_h, const int pad_w, const int dil_h, const int dil_w,
               const float bias_shift, const float epi_v0, const float epi_v1,
               const float epi_v2, const float epi_v3, const float epi_v4, const float epi_v5,
               const float epi_v6, const float epi_v7) {
  __local float As[2][CF_BK][CF_BM] __attribute__((aligned(16)));
  __local float Bs[2][CF_BK][CF_BN_LD] __attribute__((aligned(16)));

  const int tm = (int)get_local_id(0);
  const int tn = (int)get_local_id(1);
  const int tid = tm + tn * CF_WM;
  const long m0 = (long)get_group_id(0) * CF_BM;
  const int n0 = (int)get_group_id(1) * CF_BN;

  const long PQ = (long)P * Q;
  const long M = (long)N * PQ;
  const long HW = (long)H * W;
  const int HW32 = (int)HW; /* used only when CF_IMG32 */
  const long RS = (long)R * S;
  const long CRS = (long)C * RS;
  const long CHW = (long)C * HW;

  /* Advancing the reduction index by CF_BK moves (c, r, s) by this much (with carries). */
  const int c_step = (int)(CF_BK / RS);
  const int r_step = (int)((CF_BK % RS) / S);
  const int s_step = (int)((CF_BK % RS) % S);

  /* Per A-load slot: the element of the A tile this work-item loads is fixed across slices
   * (only the reduction index advances), so its pixel is decoded once. Consecutive work-items
   * load consecutive pixels (coalesced for stride 1). When the work-group size is a multiple
   * of BM, all slots of a work-item share one pixel (CF_A_PIX == 1). */
  __global const float *a_img[CF_A_PIX]; /* the pixel's image, or NULL when out of range */
  int a_h0[CF_A_PIX], a_w0[CF_A_PIX];
#pragma unroll
  for (int i = 0; i < CF_A_PIX; ++i) {
    const int e = tid + i * CF_THREADS;
    const long m = m0 + e % CF_BM;
    a_img[i] = 0;
    a_h0[i] = 0;
    a_w0[i] = 0;
    if (e < CF_A_ELEMS && m < M) {
      const long img = m / PQ;
      const long pq = m - img * PQ;
      const int p = (int)(pq / Q);
      const int q = (int)(pq - (long)p * Q);
      a_img[i] = input + img * CHW;
      a_h0[i] = p * stride_h - pad_h;
      a_w0[i] = q * stride_w - pad_w;
    }
  }
  int a_c[CF_A_LOADS], a_r[CF_A_LOADS], a_s[CF_A_LOADS];
#pragma unroll
  for (int i = 0; i < CF_A_LOADS; ++i) {
    const int kk = (tid + i * CF_THREADS) / CF_BM; /* >= CF_BK only in an idle tail slot */
    const long rem = (long)kk % RS;
    a_c[i] = (int)(kk / RS);
    a_r[i] = (int)(rem / S);
    a_s[i] = (int)(rem % S);
  }

  /* Per B-load slot: output channel and reduction offset within the slice (consecutive
   * work-items read consecutive weights of one channel). */
  long b_base[CF_B_LOADS]; /* k * CRS, or -1 when the channel is out of range */
  int b_kk[CF_B_LOADS], b_nn[CF_B_LOADS];
#pragma unroll
  for (int i = 0; i < CF_B_LOADS; ++i) {
    const int e = tid + i * CF_THREADS;
    b_kk[i] = e % CF_BK;
    b_nn[i] = e / CF_BK;
    const int k = n0 + b_nn[i];
    b_base[i] = (e < CF_B_ELEMS && k < K) ? (long)k * CRS : -1;
  }

  float a_reg[CF_A_LOADS], b_reg[CF_B_LOADS];
  float acc[CF_TM][CF_TN];
#pragma unroll
  for (int i = 0; i < CF_TM; ++i)
#pragma unroll
    for (int j = 0; j < CF_TN; ++j)
      acc[i][j] = 0.0f;

  const long n_slices = (CRS + CF_BK - 1) / CF_BK;

/* Global -> registers for the slice starting at reduction index k0, then advance (c, r, s). */
#define CF_LOAD_GLOBAL(k0)                                                                          \
  do {                                                                                              \
    for (int i = 0; i < CF_A_LOADS; ++i) {                                                          \
      const int pi = CF_A_PIX == 1 ? 0 : i;                                                         \
      float v = 0.0f;                                                                               \
      if (a_img[pi] && a_c[i] < C) {                                                                \
        const int h = a_h0[pi] + a_r[i] * dil_h;                                                    \
        const int w = a_w0[pi] + a_s[i] * dil_w;                                                    \
        if (h >= 0 && h < H && w >= 0 && w < W)                                                     \
          v = a_img[pi][CF_IMG_OFFSET(a_c[i], h, w)];                                               \
      }                                                                                             \
      a_reg[i] = v;                                                                                 \
      a_s[i] += s_step;                                                                             \
      if (a_s[i] >= S) {                                                                            \
        a_s[i] -= S;                                                                                \
        a_r[i] += 1;                                                                                \
      }                                                                                             \
      a_r[i] += r_step;                                                                             \
      if (a_r[i] >= R) {                                                                            \
        a_r[i] -= R;                                                                                \
        a_c[i] += 1;                                                                                \
      }                                                                                             \
      a_c[i] += c_step;                                                                             \
    }                                                                                               \
    for (int i = 0; i < CF_B_LOADS; ++i) {                                                          \
      const long crs = (k0) + b_kk[i];                                                              \
      b_reg[i] = (b_base[i] >= 0 && crs < CRS) ? weight[b_base[i] + crs] : 0.0f;                    \
    }                                                                                               \
  } while (0)

/* Registers -> local buffer `buf`. */
#define CF_STORE_LOCAL(buf)                                                                         \
  do {                                                                                              \
    for (int i = 0; i < CF_A_LOADS; ++i) {                                                          \
      const int e = tid + i * CF_THREADS;                                                           \
      if (CF_A_ELEMS % CF_THREADS == 0 || e < CF_A_ELEMS)                                           \
        As[buf][e / CF_BM][e % CF_BM] = a_reg[i];                                                   \
    }                                                                                               \
    for (int i = 0; i < CF_B_LOADS; ++i) {                                                          \
      const int e = tid + i * CF_THREADS;                                                           \
      if (CF_B_ELEMS % CF_THREADS == 0 || e < CF_B_ELEMS)                                           \
        Bs[buf][b_kk[i]][b_nn[i]] = b_reg[i];                                                       \
    }                                                                                               \
  } while (0)

  CF_LOAD_GLOBAL(0L);
  CF_STORE_LOCAL(0);
  barrier(CLK_LOCAL_MEM_FENCE);

  for (long t = 0; t < n_slices; ++t) {
    const int cur = (int)(t & 1);
    const int more = t + 1 < n_slices;
    if (more)
      CF_LOAD_GLOBAL((t + 1) * CF_BK);

#pragma unroll
    for (int kk = 0; kk < CF_BK; ++kk) {
      float a[CF_TM], b[CF_TN];
#pragma unroll
      for (int i = 0; i < CF_TM; i += CF_VM)
        CF_LDA(a, i, &As[cur][kk][CF_ROW(i)]);
#pragma unroll
      for (int j = 0; j < CF_TN; j += CF_VN)
        CF_LDB(b, j, &Bs[cur][kk][CF_COL(j)]);
#pragma unroll
      for (int i = 0; i < CF_TM; ++i)
#pragma unroll
        for (int j = 0; j < CF_TN; ++j)
          acc[i][j] += a[i] * b[j];
    }

    /* The other buffer was last read in iteration t-1, which the previous barrier closed. */
    if (more)
      CF_STORE_LOCAL(cur ^ 1);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#undef CF_LOAD_GLOBAL
#undef CF_STORE_LOCAL

  /* Epilogue on the registers: + (bias[k] + bias_shift), then the chain; one store each. */
  float shift[CF_TN];
#pragma unroll
  for (int j = 0; j < CF_TN; ++j) {
    const int k = n0 + CF_COL(j);
#if CF_HAS_BIAS
    shift[j] = (k < K ? bias[k] : 0.0f) + bias_shift;
#else
    (void)k;
    shift[j] = bias_shift;
#endif
  }
  const long KPQ = (long)K * PQ;
  /* With P*Q a multiple of VM, a group's VM pixels lie in one image, contiguous and
   * VM*4-byte aligned (cl_mem bases are aligned far beyond that): one vector store. The chain
   * is expanded once per element; only the store differs between the two paths. */
  const int vec_ok = CF_VM > 1 && PQ % CF_VM == 0;
#pragma unroll
  for (int g = 0; g < CF_TM; g += CF_VM) {
    const long mg = m0 + CF_ROW(g);
    long ob[CF_VM]; /* output offset of pixel mg + u at channel 0 (unused past M) */
    long img = mg / PQ, pq = mg - img * PQ;
#pragma unroll
    for (int u = 0; u < CF_VM; ++u) {
      if (u > 0 && ++pq == PQ) {
        pq = 0;
        ++img;
      }
      ob[u] = img * KPQ + pq;
    }
#pragma unroll
    for (int j = 0; j < CF_TN; ++j) {
      const int k = n0 + CF_COL(j);
      float x[CF_VM];
#pragma unroll
      for (int u = 0; u < CF_VM; ++u) {
        x[u] = acc[g + u][j] + shift[j];
        CF_EPI_APPLY(x[u]);
      }
      if (k >= K)
        continue;
      __global float *dst = output + (long)k * PQ;
#if CF_VM > 1
      if (vec_ok) {
        if (mg < M) {
#if CF_VM == 4
          *(__global float4 *)(dst + ob[0]) = (float4)(x[0], x[1], x[2], x[3]);
#else
          *(__global float2 *)(dst + ob[0]) = (float2)(x[0], x[1]);
#endif
        }
        continue;
      }
#endif
#pragma unroll
      for (int u = 0; u < CF_VM; ++u)
        if (mg + u < M)
          dst[ob[u]] = x[u];
    }
  }
}

#endif /* !CF_MMA_KERNEL && !CF_WGMMA_KERNEL */
