/* Strict parsing of convfuse's environment variables. */
#ifndef CF_COMMON_ENV_H
#define CF_COMMON_ENV_H

#include "convfuse/convfuse.h"

/* CONVFUSE_BACKEND: unset or empty -> CF_BACKEND_AUTO; cpu/cuda/opencl/auto, any case;
 * anything else -> CF_ERR_INVALID_ARGUMENT naming the valid values. */
cf_status cf_env_backend(const char *fn, cf_backend *out);

/* CONVFUSE_VERBOSE: unset, "" or "0" -> 0; "1" -> 1; anything else -> 0 (and a warning line on
 * stderr, once per call that reads it, so a typo is visible). */
int cf_env_verbose(void);

/* CONVFUSE_TILE: unset or "" -> 0 (the planner chooses); "1".."16" -> that value (menu entry
 * value - 1, for tuning); anything else -> 0 with a warning line on stderr. */
int cf_env_tile(void);

/* CONVFUSE_STAGES: unset or "" -> 0 (the planner chooses); "2".."CFK_MMA_MAX_STAGES" -> at
 * most that many pipeline stages in the TMA tensor-core kernels, also with one K chunk per tile
 * (for tuning; the cp.async kernels always run 2);
 * anything else -> 0 with a warning line on stderr. */
int cf_env_stages(void);

/* CONVFUSE_OPENCL_TENSOR_CORES: unset, "" or "1" -> CF_ENV_TENSOR_CORES_ON (the OpenCL backend
 * probes for tensor cores and uses them where the probe passes); "0" -> CF_ENV_TENSOR_CORES_OFF
 * (never: the portable FFMA kernel); "emulate" (any case) -> CF_ENV_TENSOR_CORES_EMULATE (on
 * any OpenCL device, the tensor-core kernel with its inline PTX done in OpenCL C, planned as on
 * an H200: for checking that kernel without the GPU, slowly); anything else -> ON with a
 * warning line on stderr. */
enum { CF_ENV_TENSOR_CORES_OFF = 0, CF_ENV_TENSOR_CORES_ON = 1, CF_ENV_TENSOR_CORES_EMULATE = 2 };
int cf_env_opencl_tensor_cores(void);

/* CONVFUSE_OPENCL_MAX_REGISTERS: unset or "" -> fallback (the backend's default register cap
 * for its tensor-core kernel on NVIDIA); "0" -> 0 (no cap); "32".."255" -> that cap; anything
 * else -> fallback with a warning line on stderr. */
int cf_env_opencl_max_registers(int fallback);

/* CONVFUSE_OPENCL_SWITCHES (tuning only): the OpenCL tensor-core program's compile-time
 * switches forced for A/B runs, as comma-separated name=0 or name=1 entries; the names are
 * cf_cl_switch_names (ldsm, one_chunk, k_unrolled, aligned_stores, off32, f16, unscale_regs,
 * patch_split, stages3, wgmma, channel_pairs, evict_last). Unset or ""
 * -> every entry of out->forced -1 (the measured defaults); an entry that is not a name=0/1
 * pair -> a warning line on stderr, that entry ignored. Whether a forced value can apply to a program
 * is the backend's call (backends/opencl/build_options.h). */
enum {
  CF_CL_SWITCH_LDSM,
  CF_CL_SWITCH_ONE_CHUNK,
  CF_CL_SWITCH_K_UNROLLED,
  CF_CL_SWITCH_ALIGNED_STORES,
  CF_CL_SWITCH_OFF32,
  CF_CL_SWITCH_F16,
  CF_CL_SWITCH_UNSCALE_REGS,
  CF_CL_SWITCH_PATCH_SPLIT,
  CF_CL_SWITCH_STAGES3,
  CF_CL_SWITCH_WGMMA,
  CF_CL_SWITCH_CHANNEL_PAIRS,
  CF_CL_SWITCH_EVICT_LAST,
  CF_CL_SWITCHES
};
extern const char *const cf_cl_switch_names[CF_CL_SWITCHES];
typedef struct cf_cl_switches {
  int forced[CF_CL_SWITCHES]; /* -1: the default; 0 or 1: forced */
} cf_cl_switches;
void cf_env_opencl_switches(cf_cl_switches *out);

/* CONVFUSE_CACHE: unset, "" or "1" -> 1 (the OpenCL backend keeps built programs in its
 * on-disk cache); "0" -> 0 (the cache is neither read nor written); anything else -> 1 with a
 * warning line on stderr. */
int cf_env_cache(void);

/* CONVFUSE_TMA: unset, "" or "1" -> 1 (the CUDA backend's wgmma kernels load their input patch
 * by TMA where the shape allows); "0" -> 0 (by cp.async, as on other GPUs); anything else -> 1
 * with a warning line on stderr. */
int cf_env_tma(void);

/* CONVFUSE_FLAT: unset, "" or "1" -> 1 (the CUDA backend's wgmma kernels run flat tiles, with
 * the output stored by TMA, where the shape allows); "0" -> 0 (row tiles); anything else -> 1
 * with a warning line on stderr. */
int cf_env_flat(void);

/* CONVFUSE_F16 (CUDA sm_90a: the streamed wgmma tiles' products on fp16 tensor cores, twice
 * TF32's rate, the weights scaled per channel): unset or "" -> -1 (the default: one fp16
 * product on m64n128k16 for CF_MATH_TF32, hi / lo pairs on m64n64k16 for CF_MATH_FP32 on the
 * streamed and the flat tiles, the input times 2^6 before its split); "0" -> 0 (never); "1"
 * -> 1 (the same as the default, which it was not before bench/NOTES.md v54); anything else
 * -> -1 with a warning line on stderr.
 * Either way a range guard reruns the convolution on TF32 / 3xTF32 where a sum is not finite
 * (an input past fp16's 65504, pairs' past 1023.98). */
int cf_env_f16(void);

/* CONVFUSE_STORE_PAIRS (CUDA, WG entry 1 on one fp16 product: 8-byte stores of pixel pairs
 * where the output width is even; bench/NOTES.md v56): as CONVFUSE_TMA (unset, "" or "1" ->
 * 1, "0" -> 0, anything else -> 1 with a warning line on stderr). */
int cf_env_store_pairs(void);

/* CONVFUSE_STORE_ALIGNED (CUDA, WG entry 1 on one product: each warp's 16 pixels of a channel
 * stored in runs aligned to 32-byte sectors, in place of the pixel pairs; bench/NOTES.md v72):
 * as CONVFUSE_TMA (unset, "" or "1" -> 1, "0" -> 0, anything else -> 1 with a warning
 * line on stderr). */
int cf_env_store_aligned(void);

/* CONVFUSE_ROW_STORES (CUDA flat tiles in lock-step: each output channel row of a tile leaves
 * as one plain bulk copy instead of swizzled TMA boxes; bench/NOTES.md v57, v60): unset or ""
 * -> -1 (by the device: cf_cuda_row_stores_choose); "0" -> 0 (boxes); "1" -> 1 (rows);
 * anything else -> -1 with a warning line on stderr. */
int cf_env_row_stores(void);

/* CONVFUSE_ROW_CHANNELS (CUDA, WG entry 1 on one fp16 product as the row-channel tile of
 * kernels_cuda/conv_rowch.cuh where the shape suits it; bench/NOTES.md v77): unset or "" -> -1
 * (the backend's default), "0" -> 0 (entry 1's own kernel), "1" -> 1 (the row-channel tile at
 * its default stage count, 4), "2" .. "5" -> that many stages (resident weights: 2 .. 4, else
 * streamed); anything else -> -1 with a warning line on stderr. The CUDA backend passes it to
 * the planner as caps row_channel_stages. */
int cf_env_row_channels(void);

/* CONVFUSE_ROW_CHANNELS_RESIDENT (the row-channel tile with its channel tile's weights resident
 * in shared memory, blocks of two teams, where the device's shared memory holds them;
 * bench/NOTES.md v79): unset or "" -> -1 (the backend's default: resident), "0" -> 0 (streamed
 * weights), "1" -> 1; anything else -> -1 with a warning line on stderr. (caps
 * row_channel_resident) */
int cf_env_row_channels_resident(void);

#endif
