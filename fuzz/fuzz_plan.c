/* fuzz_plan: a libFuzzer target for convfuse's public API on the CPU backend.
 *
 * Each input is turned into: a convolution descriptor (tiny extents most of the time, so an
 * execution takes microseconds; now and then a huge, negative or overflowing value), an op
 * chain (kinds and values sometimes invalid, n_ops sometimes out of range, ops sometimes
 * NULL), a math mode (sometimes unknown), buffer sizes for execute (sometimes too small,
 * missing, from another context, or aliased), input data (sometimes with NaN/inf/huge values)
 * and a buffer read/write range (sometimes past the end or overflowing). Then it drives
 * cf_plan_create + cf_plan_execute (and cf_buffer_write/read, cf_context_create) and checks:
 *
 *   - validity has an independent oracle here (the documented limits, computed in 128-bit
 *     arithmetic): every call must succeed exactly when its arguments are valid;
 *   - every failure returns a status with a non-empty cf_last_error() that starts with the
 *     function's name, and changes no output (the output buffer is read back);
 *   - every success of execute gives exactly (value for value, NaN for NaN) what
 *     cf_reference_conv2d gives for the chain the CPU backend runs (the leading ADD/SUBs folded
 *     into one ADD, as common/epilogue.c does for every backend); and, against the unfolded
 *     chain, exactly the same values when at most one ADD/SUB leads, else the DESIGN.md fp32
 *     tolerance widened by the fold's own rounding carried through the chain.
 * A violated check aborts with a one-line description; AddressSanitizer and UBSan catch the
 * rest (out-of-bounds reads of the ops array or of host buffers, overflow, leaks).
 *
 * Input layout (bytes past the end read as 0, which picks the first tiny value):
 *   8 data seed | 13 descriptor fields, each a selector byte (< 240 tiny, < 252 one of a table
 *   of edge values (+1 byte), else raw int64 (+8)) | has_bias | n_ops | ops NULL | per op:
 *   kind, value | math | 4 buffer modes | bias extra | alias | foreign | specials | range test
 *   | context create.
 * Build: cmake -DCONVFUSE_FUZZ=ON with clang (fuzz/CMakeLists.txt); run: scripts/fuzz.sh. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convfuse/convfuse.h"
#include "epilogue.h"

/* ---- input reader ---- */

typedef struct reader {
  const uint8_t *p;
  size_t n;
} reader;

static uint8_t u8(reader *r) {
  if (!r->n)
    return 0;
  r->n--;
  return *r->p++;
}
static uint32_t u32(reader *r) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = v << 8 | u8(r);
  return v;
}
static uint64_t u64(reader *r) { return (uint64_t)u32(r) << 32 | u32(r); }

/* ---- failure ---- */

static char repro[1024];

#define FUZZ_CHECK(cond, ...)                                                   \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "fuzz_plan: CHECK FAILED (%s) at %s:%d\n  ", #cond,       \
              __FILE__, __LINE__);                                              \
      fprintf(stderr, __VA_ARGS__);                                             \
      fprintf(stderr, "\n  case: %s\n  cf_last_error: \"%s\"\n", repro,         \
              cf_last_error());                                                 \
      abort();                                                                  \
    }                                                                           \
  } while (0)

/* A failing call: status as expected, a message that starts with the function's name. */
static void expect_failure(const char *fn, cf_status got, cf_status want) {
  const char *msg = cf_last_error();
  FUZZ_CHECK(got == want, "%s returned %s, want %s", fn, cf_status_string(got),
             cf_status_string(want));
  size_t n = strlen(fn);
  FUZZ_CHECK(msg && strncmp(msg, fn, n) == 0 && msg[n] == ':' && strlen(msg) > n + 4,
             "%s failed with a message that does not start with its name or says nothing",
             fn);
}

/* ---- the descriptor ---- */

static const int64_t edge_values[] = {0,
                                      -1,
                                      1,
                                      2,
                                      -2,
                                      3,
                                      7,
                                      64,
                                      65535,
                                      65536,
                                      INT32_MAX,
                                      (int64_t)INT32_MAX + 1,
                                      (int64_t)INT32_MAX * 2,
                                      INT32_MIN,
                                      (int64_t)1 << 20,
                                      (int64_t)1 << 30,
                                      (int64_t)1 << 40,
                                      (int64_t)1 << 62,
                                      INT64_MAX,
                                      INT64_MIN,
                                      INT64_MIN + 1,
                                      -((int64_t)1 << 31)};
#define N_EDGE ((int)(sizeof edge_values / sizeof edge_values[0]))

static int64_t field(reader *r, int64_t lo, int64_t hi) {
  uint8_t sel = u8(r);
  if (sel < 240)
    return lo + (int64_t)(sel % (uint8_t)(hi - lo + 1));
  if (sel < 252)
    return edge_values[u8(r) % N_EDGE];
  return (int64_t)u64(r);
}

/* The documented limits (convfuse.h, constants.def): each extent in [1, 2^31-1] (pads
 * [0, 2^31-1]; stride and dilation 0 mean 1), the dilated kernel fits the padded input, output
 * extents <= 2^31-1, every tensor <= 2^60 elements. Computed in 128-bit: no overflow here. */
#define MAX_EXTENT INT32_MAX
#define MAX_ELEMS ((__int128)1 << 60)

typedef struct oracle_shape {
  int valid;
  int64_t p, q;
  __int128 in, w, out, macs;
} oracle_shape;

static int in_range(int64_t v, int64_t lo) { return v >= lo && v <= MAX_EXTENT; }

static oracle_shape oracle(const cf_conv2d_desc *d) {
  oracle_shape o = {0};
  int64_t sh = d->stride_h ? d->stride_h : 1, sw = d->stride_w ? d->stride_w : 1;
  int64_t dh = d->dilation_h ? d->dilation_h : 1, dw = d->dilation_w ? d->dilation_w : 1;
  if (!in_range(d->batch, 1) || !in_range(d->in_channels, 1) || !in_range(d->height, 1) ||
      !in_range(d->width, 1) || !in_range(d->out_channels, 1) || !in_range(d->kernel_h, 1) ||
      !in_range(d->kernel_w, 1) || !in_range(sh, 1) || !in_range(sw, 1) ||
      !in_range(d->pad_h, 0) || !in_range(d->pad_w, 0) || !in_range(dh, 1) ||
      !in_range(dw, 1) || (d->has_bias != 0 && d->has_bias != 1))
    return o;
  __int128 ph = (__int128)d->height + 2 * (__int128)d->pad_h;
  __int128 pw = (__int128)d->width + 2 * (__int128)d->pad_w;
  __int128 spanh = (__int128)dh * (d->kernel_h - 1) + 1;
  __int128 spanw = (__int128)dw * (d->kernel_w - 1) + 1;
  if (spanh > ph || spanw > pw)
    return o;
  __int128 p = (ph - spanh) / sh + 1, q = (pw - spanw) / sw + 1;
  if (p > MAX_EXTENT || q > MAX_EXTENT)
    return o;
  o.p = (int64_t)p;
  o.q = (int64_t)q;
  o.in = (__int128)d->batch * d->in_channels * d->height * d->width;
  o.w = (__int128)d->out_channels * d->in_channels * d->kernel_h * d->kernel_w;
  o.out = (__int128)d->batch * d->out_channels * p * q;
  /* each factor < 2^31: products of four fit in 124 bits */
  if (o.in > MAX_ELEMS || o.w > MAX_ELEMS || o.out > MAX_ELEMS)
    return o;
  o.macs = o.out * d->in_channels * d->kernel_h * d->kernel_w;
  o.valid = 1;
  return o;
}

/* ---- the op chain ---- */

static const float op_values[] = {0.5f,  0.2f, -0.7f, 1.5f,  -3.0f,  0.0f,  1e-3f,
                                  10.0f, 100.f, -0.25f, 2.0f, -1.0f, 0.1f, 42.0f};
#define N_OP_VALUES ((int)(sizeof op_values / sizeof op_values[0]))

static float op_value(reader *r) {
  uint8_t sel = u8(r);
  if (sel < 200)
    return op_values[sel % N_OP_VALUES];
  if (sel < 250)
    return (float)(int16_t)(u8(r) << 8 | u8(r)) / 64.0f; /* within +-512 */
  uint32_t bits = u32(r);
  float f;
  memcpy(&f, &bits, sizeof f);
  return f; /* anything, NaN and inf included */
}

static int has_value(int kind) { return kind == CF_OP_ADD || kind == CF_OP_SUB || kind == CF_OP_MUL; }

/* Lipschitz constant of an op (bounds how far apart two inputs can be after it). */
static double op_gain(const cf_op *op) {
  switch (op->kind) {
  case CF_OP_MUL: return fabs((double)op->value);
  case CF_OP_SIGMOID: return 0.25;
  case CF_OP_MISH: return 1.1;
  default: return 1.0;
  }
}

/* ---- the fuzzer's state: contexts live across inputs (and must keep working) ---- */

static cf_context *ctx, *ctx2;
static unsigned long long stat_runs, stat_plans, stat_execs, stat_exact, stat_tolerance,
    stat_fold_beyond_design;

static void print_stats(void) {
  fprintf(stderr,
          "fuzz_plan: %llu inputs, %llu valid plans, %llu executions compared with the "
          "reference (%llu exact against the unfolded chain, %llu within tolerance; %llu "
          "where folding leading ADD/SUBs moved a value beyond the DESIGN.md tolerance)\n",
          stat_runs, stat_plans, stat_execs, stat_exact, stat_tolerance, stat_fold_beyond_design);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (cf_context_create(CF_BACKEND_CPU, &ctx) != CF_OK ||
      cf_context_create(CF_BACKEND_CPU, &ctx2) != CF_OK) {
    fprintf(stderr, "fuzz_plan: no CPU context: %s\n", cf_last_error());
    abort();
  }
  atexit(print_stats);
  return 0;
}

/* ---- data ---- */

static uint64_t rng_state;
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static float rng_float(float lo, float hi) {
  return lo + (hi - lo) * (float)(rng_next() >> 40) * (1.0f / 16777216.0f);
}

static const float specials[] = {NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 3e38f, -0.0f, 1e-40f,
                                 -1e-45f, 100.0f};

/* Two float arrays are equal value for value, NaN for NaN (and -0 == +0). */
static int64_t first_difference(const float *a, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!(a[i] == b[i] || (isnan(a[i]) && isnan(b[i]))))
      return i;
  return -1;
}

/* ---- one input ---- */

typedef struct operand {
  const char *name;
  size_t need;
  cf_buffer *buf;
  int bad; /* the call must fail because of this operand */
} operand;

static void range_test(reader *r) {
  /* cf_buffer_write/read with fuzzed ranges: OK exactly when [offset, offset+bytes) fits */
  size_t size = 1 + u8(r);
  uint8_t so = u8(r), sb = u8(r);
  size_t offset = so < 200 ? so % (size + 4) : (size_t)edge_values[so % N_EDGE];
  size_t bytes = sb < 200 ? sb % (size + 4) : (size_t)edge_values[sb % N_EDGE];
  cf_buffer *buf = NULL;
  FUZZ_CHECK(cf_buffer_create(ctx, size, &buf) == CF_OK, "cf_buffer_create(%zu)", size);
  unsigned char host[260], back[260];
  memset(host, 0x3C, sizeof host);
  FUZZ_CHECK(cf_buffer_write(buf, 0, host, size) == CF_OK, "filling a %zu-byte buffer", size);
  int ok = offset <= size && bytes <= size - offset;
  unsigned char src[260];
  for (size_t i = 0; i < sizeof src; ++i)
    src[i] = (unsigned char)(i + 1);
  snprintf(repro, sizeof repro, "range test: buffer %zu bytes, offset %zu, bytes %zu", size,
           offset, bytes);
  cf_status s = cf_buffer_write(buf, offset, bytes ? src : NULL, bytes);
  if (ok) {
    FUZZ_CHECK(s == CF_OK, "cf_buffer_write of a valid range: %s", cf_status_string(s));
  } else {
    expect_failure("cf_buffer_write", s, CF_ERR_INVALID_ARGUMENT);
    FUZZ_CHECK(cf_buffer_read(buf, 0, back, size) == CF_OK, "read back");
    FUZZ_CHECK(memcmp(back, host, size) == 0, "a failed cf_buffer_write changed the buffer");
  }
  memset(back, 0x77, sizeof back);
  s = cf_buffer_read(buf, offset, bytes ? back : NULL, bytes);
  if (ok) {
    FUZZ_CHECK(s == CF_OK, "cf_buffer_read of a valid range: %s", cf_status_string(s));
    for (size_t i = 0; i < bytes; ++i)
      FUZZ_CHECK(back[i] == src[i], "read back byte %zu of a written range", i);
  } else {
    expect_failure("cf_buffer_read", s, CF_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < sizeof back; ++i)
      FUZZ_CHECK(back[i] == 0x77, "a failed cf_buffer_read wrote the destination");
  }
  cf_buffer_destroy(buf);
}

static void context_test(reader *r) {
  uint8_t sel = u8(r);
  int b = sel < 128 ? sel % 6 : (int)u32(r);
  if (b == CF_BACKEND_CUDA || b == CF_BACKEND_OPENCL || b == CF_BACKEND_AUTO)
    return; /* depends on the build and the environment; the CPU is what is fuzzed */
  cf_context *c = NULL;
  snprintf(repro, sizeof repro, "cf_context_create(%d)", b);
  cf_status s = cf_context_create((cf_backend)b, &c);
  if (b == CF_BACKEND_CPU) {
    FUZZ_CHECK(s == CF_OK && c, "cf_context_create(CPU)");
    cf_context_destroy(c);
  } else {
    expect_failure("cf_context_create", s, CF_ERR_INVALID_ARGUMENT);
    FUZZ_CHECK(c == NULL, "a failed cf_context_create wrote *out");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader rd = {data, size}, *r = &rd;
  stat_runs++;
  rng_state = u64(r);

  cf_conv2d_desc d;
  d.batch = field(r, 1, 2);
  d.in_channels = field(r, 1, 4);
  d.height = field(r, 1, 12);
  d.width = field(r, 1, 12);
  d.out_channels = field(r, 1, 4);
  d.kernel_h = field(r, 1, 5);
  d.kernel_w = field(r, 1, 5);
  d.stride_h = field(r, 0, 3);
  d.stride_w = field(r, 0, 3);
  d.pad_h = field(r, 0, 3);
  d.pad_w = field(r, 0, 3);
  d.dilation_h = field(r, 0, 3);
  d.dilation_w = field(r, 0, 3);
  uint8_t sb = u8(r);
  d.has_bias = sb < 250 ? sb & 1 : (int)u32(r);

  uint8_t sn = u8(r);
  int n_ops;
  switch (sn) {
  case 245: n_ops = -1; break;
  case 246: n_ops = CF_MAX_OPS + 1; break;
  case 247: n_ops = INT32_MIN; break;
  case 248: n_ops = INT32_MAX; break;
  case 249: n_ops = CF_MAX_OPS + 2; break;
  default: {
    uint32_t raw = sn < 245 ? (uint32_t)(sn % (CF_MAX_OPS + 1)) : u32(r);
    memcpy(&n_ops, &raw, sizeof n_ops);
  }
  }
  int ops_null = u8(r) == 255;
  /* exactly as many ops as the caller "has": reading past them is an ASan error */
  int have = n_ops < 0 ? 0 : n_ops > CF_MAX_OPS + 1 ? CF_MAX_OPS + 1 : n_ops;
  cf_op *ops = ops_null ? NULL : malloc((size_t)(have ? have : 1) * sizeof *ops);
  FUZZ_CHECK(ops_null || ops, "out of memory");
  int ops_valid = n_ops >= 0 && n_ops <= CF_MAX_OPS && (n_ops == 0 || !ops_null);
  for (int i = 0; i < have; ++i) {
    uint8_t sk = u8(r);
    int kind = sk < 245 ? sk % 8 : (int)u32(r);
    float value = op_value(r);
    if (ops) {
      ops[i].kind = (cf_op_kind)kind;
      ops[i].value = value;
    }
    if (i < n_ops && n_ops <= CF_MAX_OPS &&
        (kind < 0 || kind > CF_OP_MISH || (has_value(kind) && !isfinite(value))))
      ops_valid = 0;
  }
  uint8_t sm = u8(r);
  int math = sm < 250 ? sm & 1 : (int)u32(r);
  int math_valid = math == CF_MATH_FP32 || math == CF_MATH_TF32;

  oracle_shape o = oracle(&d);
  char chain[400] = "";
  for (int i = 0, used = 0; ops && i < have && used < (int)sizeof chain - 40; ++i)
    used += snprintf(chain + used, sizeof chain - (size_t)used, "%s%d:%.9g", i ? "," : "",
                     (int)ops[i].kind, (double)ops[i].value);
  snprintf(repro, sizeof repro,
           "N%lld C%lld H%lld W%lld K%lld R%lld S%lld stride %lld,%lld pad %lld,%lld dil "
           "%lld,%lld bias %d, n_ops %d%s [kind:value %s], math %d",
           (long long)d.batch, (long long)d.in_channels, (long long)d.height, (long long)d.width,
           (long long)d.out_channels, (long long)d.kernel_h, (long long)d.kernel_w,
           (long long)d.stride_h, (long long)d.stride_w, (long long)d.pad_h, (long long)d.pad_w,
           (long long)d.dilation_h, (long long)d.dilation_w, d.has_bias, n_ops,
           ops_null ? " (ops NULL)" : "", chain, math);

  /* output dims: the descriptor alone */
  int64_t oh = -7, ow = -7;
  cf_status s = cf_conv2d_output_dims(&d, &oh, &ow);
  if (o.valid) {
    FUZZ_CHECK(s == CF_OK && oh == o.p && ow == o.q, "cf_conv2d_output_dims: %s %lldx%lld, "
               "want %lldx%lld", cf_status_string(s), (long long)oh, (long long)ow,
               (long long)o.p, (long long)o.q);
  } else {
    expect_failure("cf_conv2d_output_dims", s, CF_ERR_INVALID_ARGUMENT);
    FUZZ_CHECK(oh == -7 && ow == -7, "a failed cf_conv2d_output_dims wrote the dims");
  }

  /* the plan */
  cf_plan *plan = NULL;
  s = cf_plan_create(ctx, &d, ops, n_ops, (cf_math)math, &plan);
  if (!(o.valid && ops_valid && math_valid)) {
    expect_failure("cf_plan_create", s, CF_ERR_INVALID_ARGUMENT);
    FUZZ_CHECK(plan == NULL, "a failed cf_plan_create wrote *out");
    /* the reference validates the same way (only call it when it cannot run: a valid shape
     * with the right arrays is the execute path below) */
    if (!o.valid || !ops_valid) {
      float dummy = 0.0f;
      s = cf_reference_conv2d(&d, ops, n_ops, &dummy, &dummy, d.has_bias ? &dummy : NULL,
                              &dummy);
      expect_failure("cf_reference_conv2d", s, CF_ERR_INVALID_ARGUMENT);
    }
    range_test(r);
    context_test(r);
    free(ops);
    return 0;
  }
  FUZZ_CHECK(s == CF_OK && plan, "cf_plan_create of a valid problem: %s",
             cf_status_string(s));
  stat_plans++;

  /* execute: sizes of the operands, sometimes wrong */
  /* (element counts are <= 2^60: the byte counts fit size_t) */
  int small = o.in <= (1 << 15) && o.out <= (1 << 15) && o.w <= (1 << 15) && o.macs <= 300000;
  size_t need[4] = {(size_t)o.in * 4, (size_t)o.w * 4, (size_t)d.out_channels * 4,
                    (size_t)o.out * 4};
  operand op[4] = {{"input", need[0], NULL, 0},
                   {"weight", need[1], NULL, 0},
                   {"bias", need[2], NULL, 0},
                   {"output", need[3], NULL, 0}};
  int expect_ok = 1;
  for (int i = 0; i < 4; ++i) {
    uint8_t mode = u8(r);
    size_t bytes = need[i];
    if (!small) { /* a big valid plan: small buffers, and the output always too small */
      bytes = 1 + (size_t)(mode % 64) * 4;
      if (i == 3 && bytes >= need[3])
        bytes = need[3] - 1;
    }
    else if (mode >= 200 && mode < 220 && bytes > 1)
      bytes -= 1 + (size_t)(u8(r) % (bytes - 1 < 8 ? bytes - 1 : 8));
    else if (mode >= 220 && mode < 240)
      bytes += u8(r) % 16;
    else if (mode >= 240 && mode < 250)
      bytes = 1;
    int absent = mode >= 250 || (i == 2 && !d.has_bias);
    if (i == 2 && !d.has_bias && u8(r) >= 240)
      absent = 0, bytes = 4 + bytes; /* a bias the descriptor does not have */
    if (!absent) {
      s = cf_buffer_create(ctx, bytes ? bytes : 1, &op[i].buf);
      FUZZ_CHECK(s == CF_OK, "cf_buffer_create(%zu)", bytes);
    }
    if (i == 2 && !d.has_bias)
      op[i].bad = !absent;
    else
      op[i].bad = absent || cf_buffer_size(op[i].buf) < need[i];
    if (op[i].bad)
      expect_ok = 0;
  }
  /* sometimes an operand from the other context, or the output aliasing an input */
  uint8_t sf = u8(r), sa = u8(r);
  cf_buffer *foreign = NULL;
  if (sf >= 245 && op[sf % 4].buf) {
    int i = sf % 4;
    FUZZ_CHECK(cf_buffer_create(ctx2, cf_buffer_size(op[i].buf), &foreign) == CF_OK, "ctx2");
    cf_buffer_destroy(op[i].buf);
    op[i].buf = foreign;
    foreign = NULL;
    expect_ok = 0;
  }
  cf_buffer *out_buf = op[3].buf;
  int aliased = -1;
  if (sa >= 245 && out_buf && op[sa % 3].buf) {
    aliased = sa % 3;
    out_buf = op[aliased].buf;
    expect_ok = 0;
  }

  /* data: random, with a few special values */
  float *hin = NULL, *hw = NULL, *hb = NULL, *hout = NULL, *ref = NULL;
  if (small && expect_ok) {
    hin = malloc(need[0] ? need[0] : 4);
    hw = malloc(need[1] ? need[1] : 4);
    hb = malloc(need[2] ? need[2] : 4);
    hout = malloc(need[3] ? need[3] : 4);
    ref = malloc(need[3] ? need[3] : 4);
    FUZZ_CHECK(hin && hw && hb && hout && ref, "out of memory");
    for (size_t i = 0; i < need[0] / 4; ++i)
      hin[i] = rng_float(0.0f, 1.0f);
    for (size_t i = 0; i < need[1] / 4; ++i)
      hw[i] = rng_float(-0.5f, 0.5f);
    for (size_t i = 0; i < need[2] / 4; ++i)
      hb[i] = rng_float(-0.5f, 0.5f);
    int n_special = u8(r) % 4;
    for (int k = 0; k < n_special; ++k) {
      uint8_t where = u8(r), what = u8(r);
      float v = specials[what % (sizeof specials / sizeof specials[0])];
      if (where % 3 == 0)
        hin[(size_t)where % (need[0] / 4)] = v;
      else if (where % 3 == 1)
        hw[(size_t)where % (need[1] / 4)] = v;
      else
        hb[(size_t)where % (need[2] / 4)] = v;
    }
    for (int i = 0; i < 3; ++i)
      if (op[i].buf && op[i].buf != out_buf) {
        const float *src = i == 0 ? hin : i == 1 ? hw : hb;
        size_t n = cf_buffer_size(op[i].buf) < need[i] ? cf_buffer_size(op[i].buf) : need[i];
        FUZZ_CHECK(cf_buffer_write(op[i].buf, 0, src, n) == CF_OK, "writing %s", op[i].name);
      }
  }
  /* the output (or what stands in for it) is filled with a pattern: a failed execute must
   * leave it, a successful one must overwrite every element */
  size_t out_bytes = out_buf ? cf_buffer_size(out_buf) : 0;
  unsigned char *pattern = malloc(out_bytes ? out_bytes : 1), *back = malloc(out_bytes ? out_bytes : 1);
  FUZZ_CHECK(pattern && back, "out of memory");
  memset(pattern, 0xA5, out_bytes);
  if (out_buf)
    FUZZ_CHECK(cf_buffer_write(out_buf, 0, pattern, out_bytes) == CF_OK, "poisoning output");

  s = cf_plan_execute(plan, op[0].buf, op[1].buf, op[2].buf, out_buf);
  if (!expect_ok) {
    expect_failure("cf_plan_execute", s, CF_ERR_INVALID_ARGUMENT);
    if (out_buf) {
      FUZZ_CHECK(cf_buffer_read(out_buf, 0, back, out_bytes) == CF_OK, "reading back");
      FUZZ_CHECK(memcmp(back, pattern, out_bytes) == 0,
                 "a failed cf_plan_execute changed the output (aliased %d)", aliased);
    }
  } else {
    FUZZ_CHECK(s == CF_OK, "cf_plan_execute of a valid problem: %s", cf_status_string(s));
    FUZZ_CHECK(cf_buffer_read(out_buf, 0, hout, need[3]) == CF_OK, "reading the output");
    int64_t n_out = (int64_t)(need[3] / 4);
    stat_execs++;
    /* 1. the chain the backend runs: the library's own fold (common/epilogue.c) */
    cf_epilogue epi;
    cf_epilogue_fold(ops, n_ops, &epi);
    const int lead = n_ops - epi.n_ops; /* leading ADD/SUBs folded */
    double shift = 0.0;
    for (int i = 0; i < lead; ++i)
      shift += ops[i].kind == CF_OP_ADD ? (double)ops[i].value : -(double)ops[i].value;
    cf_op folded[CF_MAX_OPS + 1];
    int n_folded = 0;
    const float fshift = epi.bias_shift;
    if (fshift != 0.0f)
      folded[n_folded++] = (cf_op){CF_OP_ADD, fshift};
    for (int i = 0; i < epi.n_ops; ++i)
      folded[n_folded++] = epi.ops[i];
    const float *bias_arg = d.has_bias ? hb : NULL;
    if (isfinite(fshift) && n_folded <= CF_MAX_OPS) {
      s = cf_reference_conv2d(&d, folded, n_folded, hin, hw, bias_arg, ref);
      FUZZ_CHECK(s == CF_OK, "cf_reference_conv2d (folded chain): %s", cf_status_string(s));
      int64_t at = first_difference(hout, ref, n_out);
      FUZZ_CHECK(at < 0, "CPU backend output [%lld] = %.9g, reference (same folded chain) %.9g",
                 (long long)at, at < 0 ? 0.0 : (double)hout[at], at < 0 ? 0.0 : (double)ref[at]);
    }
    /* 2. the chain as the caller wrote it */
    s = cf_reference_conv2d(&d, ops, n_ops, hin, hw, bias_arg, ref);
    FUZZ_CHECK(s == CF_OK, "cf_reference_conv2d: %s", cf_status_string(s));
    if (lead <= 1) {
      int64_t at = first_difference(hout, ref, n_out);
      FUZZ_CHECK(at < 0, "CPU backend output [%lld] = %.9g, cf_reference_conv2d %.9g",
                 (long long)at, at < 0 ? 0.0 : (double)hout[at], at < 0 ? 0.0 : (double)ref[at]);
      stat_exact++;
    } else {
      /* the fold rounds the sum once to float: that difference, carried through the ops
       * after it, on top of the DESIGN.md fp32 tolerance */
      double gain = 1.0, mag = 0.0;
      for (int i = 0; i < lead; ++i)
        mag += fabs((double)ops[i].value);
      for (int i = lead; i < n_ops; ++i)
        gain *= op_gain(&ops[i]);
      double fold_err = fabs((double)fshift - shift) + 8 * 0x1p-52 * mag;
      int beyond = 0;
      for (int64_t i = 0; i < n_out; ++i) {
        double got = hout[i], want = ref[i];
        if (isnan(got) && isnan(want))
          continue;
        double diff = fabs(got - want), tol = 1e-4 + 1e-4 * fabs(want);
        if (got == want || diff <= tol)
          continue;
        if (!beyond && !stat_fold_beyond_design)
          fprintf(stderr,
                  "fuzz_plan: note (by design, DESIGN.md \"Epilogue folding\"): folding the "
                  "leading ADD/SUBs moved output [%lld] to %.9g where the sequential double "
                  "reference has %.9g; case: %s\n",
                  (long long)i, got, want, repro);
        beyond = 1;
        if (!isfinite(fold_err * gain))
          continue; /* the fold's error is unbounded here (huge values, huge gain) */
        if ((isinf(got) || isinf(want)) && (fabs(got) > 1e37 || fabs(want) > 1e37))
          continue; /* at the edge of the float range: one side rounded to inf */
        double allowed = tol + (fold_err + 0x1p-52 * fabs(want)) * gain + 0x1p-23 * fabs(want);
        FUZZ_CHECK(diff <= allowed,
                   "output [%lld] = %.9g, cf_reference_conv2d %.9g: |diff| %.3g beyond the "
                   "fold's rounding (%.3g x gain %.3g)",
                   (long long)i, got, want, diff, fold_err, gain);
      }
      stat_tolerance++;
      stat_fold_beyond_design += beyond;
    }
  }

  for (int i = 0; i < 4; ++i)
    cf_buffer_destroy(op[i].buf);
  cf_plan_destroy(plan);
  free(pattern);
  free(back);
  free(hin);
  free(hw);
  free(hb);
  free(hout);
  free(ref);
  free(ops);
  range_test(r);
  context_test(r);
  return 0;
}
