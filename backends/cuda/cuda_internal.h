/* Shared between the CUDA backend's host files (cuda_backend.c: device, buffers, the iface;
 * cuda_plan.c: plan compile and launch). Not part of common/. */
#ifndef CF_BACKENDS_CUDA_INTERNAL_H
#define CF_BACKENDS_CUDA_INTERNAL_H

#include <cuda_runtime_api.h>

#include "backend.h"
#include "error.h"
#include "kernels_cuda/launch.h"

/* One context: a device and a non-blocking stream (plus two timing events) owned by it, the
 * driver's tensor-map encoder when the TMA kernels may run (caps has_tma), else NULL, and
 * whether the flat tiles store their output as channel rows (cf_cuda_row_stores_choose). */
typedef struct cf_cuda_state {
  int device;
  cudaStream_t stream;
  cudaEvent_t ev_start, ev_stop;
  cfk_tensor_map_encoder encoder;
  int row_stores;
} cf_cuda_state;

/* The row-channel tile's defaults (caps row_channel_stages / row_channel_resident where
 * CONVFUSE_ROW_CHANNELS / CONVFUSE_ROW_CHANNELS_RESIDENT leave them to the backend;
 * bench/NOTES.md v77, v79). */
enum { CF_CUDA_ROW_CHANNEL_STAGES = 4, CF_CUDA_ROW_CHANNEL_RESIDENT = 1 };

/* The flat tiles' store path for a device of peak DRAM bandwidth dram_bytes_per_s (0:
 * unknown) and CONVFUSE_ROW_STORES (cf_env_row_stores: 1 on, 0 off, -1 by the device): channel
 * rows below 4 TB/s, TMA boxes above (bench/NOTES.md v60: sub-sub-mish tf32 on an H100, 3.35
 * TB/s, 1.07 -> 0.99 ms with rows; on an H200, 4.8 TB/s, 0.87 -> 0.97). */
int cf_cuda_row_stores_choose(int env, double dram_bytes_per_s);

/* Sets a message "cuda: <what> failed: <cudaGetErrorName>: <cudaGetErrorString>" (what is
 * printf-formatted), clears the runtime's non-sticky last error, and returns status. */
cf_status cf_cuda_fail(cf_status status, cudaError_t err, const char *what_fmt, ...)
    CF_PRINTF(3, 4);

/* cudaSetDevice(st->device): every entry point calls it first, since contexts may be used
 * from different threads. CF_ERR_DEVICE with the driver's words on failure. */
cf_status cf_cuda_set_device(const cf_cuda_state *st);

/* cuda_plan.c */
cf_status cf_cuda_plan_compile(void *state, const cf_plan_spec *spec, void **compiled);
void cf_cuda_plan_release(void *state, void *compiled);
cf_status cf_cuda_plan_launch(void *state, void *compiled, const void *input,
                              const void *weight, const void *bias, void *output);
cf_status cf_cuda_plan_launch_timed(void *state, void *compiled, const void *input,
                                    const void *weight, const void *bias, void *output,
                                    double *device_ms);
const char *cf_cuda_plan_detail(const void *compiled);

#endif
