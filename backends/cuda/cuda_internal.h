/* Shared between the CUDA backend's host files (cuda_backend.c: device, buffers, the iface;
 * cuda_plan.c: plan compile and launch). Not part of common/. */
#ifndef CF_BACKENDS_CUDA_INTERNAL_H
#define CF_BACKENDS_CUDA_INTERNAL_H

#include <cuda_runtime_api.h>

#include "backend.h"
#include "error.h"
#include "kernels_cuda/launch.h"

/* One context: a device and a non-blocking stream (plus two timing events) owned by it, and
 * the driver's tensor-map encoder when the TMA kernels may run (caps has_tma), else NULL. */
typedef struct cf_cuda_state {
  int device;
  cudaStream_t stream;
  cudaEvent_t ev_start, ev_stop;
  cfk_tensor_map_encoder encoder;
} cf_cuda_state;

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
