#include "reference.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "epilogue.h"
#include "error.h"
#include "internal_api.h"

static double apply_chain(const cf_op *ops, int n_ops, double x) {
  for (int i = 0; i < n_ops; ++i)
    x = cf_op_apply_f64(&ops[i], x);
  return x;
}

double cf_reference_point(const cf_conv_shape *sh, const cf_op *ops, int n_ops,
                          const float *input, const float *weight, const float *bias,
                          int64_t n, int64_t k, int64_t p, int64_t q) {
  double acc = sh->has_bias ? (double)bias[k] : 0.0;
  for (int64_t c = 0; c < sh->c; ++c) {
    const float *in_c = input + (n * sh->c + c) * sh->h * sh->w;
    const float *w_c = weight + (k * sh->c + c) * sh->r * sh->s;
    for (int64_t r = 0; r < sh->r; ++r) {
      int64_t ih = p * sh->stride_h - sh->pad_h + r * sh->dil_h;
      if (ih < 0 || ih >= sh->h)
        continue;
      for (int64_t s = 0; s < sh->s; ++s) {
        int64_t iw = q * sh->stride_w - sh->pad_w + s * sh->dil_w;
        if (iw < 0 || iw >= sh->w)
          continue;
        acc += (double)w_c[r * sh->s + s] * (double)in_c[ih * sh->w + iw];
      }
    }
  }
  return apply_chain(ops, n_ops, acc);
}

typedef struct plane_job {
  const cf_conv_shape *sh;
  const cf_op *ops;
  int n_ops;
  const float *input, *weight, *bias;
  float *output;
  int64_t first_plane, end_plane; /* planes are (n, k) pairs */
  double *acc;                    /* p*q doubles, owned by the job */
} plane_job;

/* Accumulates one (n, k) output plane in double, tap by tap, then applies the chain. */
static void run_plane(const plane_job *job, int64_t n, int64_t k) {
  const cf_conv_shape *sh = job->sh;
  int64_t pq = sh->p * sh->q;
  double init = sh->has_bias ? (double)job->bias[k] : 0.0;
  for (int64_t i = 0; i < pq; ++i)
    job->acc[i] = init;
  for (int64_t c = 0; c < sh->c; ++c) {
    const float *in_c = job->input + (n * sh->c + c) * sh->h * sh->w;
    const float *w_c = job->weight + (k * sh->c + c) * sh->r * sh->s;
    for (int64_t r = 0; r < sh->r; ++r)
      for (int64_t s = 0; s < sh->s; ++s) {
        double wv = (double)w_c[r * sh->s + s];
        for (int64_t p = 0; p < sh->p; ++p) {
          int64_t ih = p * sh->stride_h - sh->pad_h + r * sh->dil_h;
          if (ih < 0 || ih >= sh->h)
            continue;
          const float *in_row = in_c + ih * sh->w;
          double *acc_row = job->acc + p * sh->q;
          int64_t iw = -sh->pad_w + s * sh->dil_w;
          for (int64_t q = 0; q < sh->q; ++q, iw += sh->stride_w)
            if (iw >= 0 && iw < sh->w)
              acc_row[q] += wv * (double)in_row[iw];
        }
      }
  }
  float *out = job->output + (n * sh->k + k) * pq;
  for (int64_t i = 0; i < pq; ++i)
    out[i] = (float)apply_chain(job->ops, job->n_ops, job->acc[i]);
}

static void *run_planes(void *arg) {
  const plane_job *job = arg;
  for (int64_t pl = job->first_plane; pl < job->end_plane; ++pl)
    run_plane(job, pl / job->sh->k, pl % job->sh->k);
  return NULL;
}

enum { CF_REFERENCE_MAX_THREADS = 64 };

cf_status cf_reference_run(const cf_conv_shape *sh, const cf_op *ops, int n_ops,
                           const float *input, const float *weight, const float *bias,
                           float *output, int threads) {
  int64_t planes = sh->n * sh->k;
  if (threads <= 0) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    threads = online > 0 ? (int)online : 1;
  }
  if (threads > CF_REFERENCE_MAX_THREADS)
    threads = CF_REFERENCE_MAX_THREADS;
  if ((int64_t)threads > planes)
    threads = (int)planes;
  /* Small problems: threads cost more than they save. */
  if (cf_shape_macs(sh) < 4e6)
    threads = 1;

  plane_job jobs[CF_REFERENCE_MAX_THREADS];
  pthread_t tids[CF_REFERENCE_MAX_THREADS];
  size_t acc_bytes = (size_t)(sh->p * sh->q) * sizeof(double);
  cf_status status = CF_OK;
  int made = 0;
  for (; made < threads; ++made) {
    plane_job *j = &jobs[made];
    *j = (plane_job){sh, ops, n_ops, input, weight, bias, output,
                     planes * made / threads, planes * (made + 1) / threads, NULL};
    j->acc = malloc(acc_bytes);
    if (!j->acc) {
      status = cf_error(CF_ERR_OUT_OF_MEMORY,
                        "reference: cannot allocate %zu bytes of host scratch", acc_bytes);
      break;
    }
  }
  if (status == CF_OK) {
    int started = 0;
    for (; started < threads - 1; ++started)
      if (pthread_create(&tids[started], NULL, run_planes, &jobs[started + 1]) != 0)
        break;
    /* Whatever did not get a thread runs here; the output is complete either way. */
    run_planes(&jobs[0]);
    for (int t = started + 1; t < threads; ++t)
      run_planes(&jobs[t]);
    for (int t = 0; t < started; ++t)
      pthread_join(tids[t], NULL);
  }
  for (int t = 0; t < made; ++t)
    free(jobs[t].acc);
  return status;
}

cf_status cf_reference_conv2d(const cf_conv2d_desc *desc, const cf_op *ops, int n_ops,
                              const float *input, const float *weight, const float *bias,
                              float *output) {
  static const char fn[] = "cf_reference_conv2d";
  cf_conv_shape sh;
  CF_CHECK(cf_shape_resolve(fn, desc, &sh));
  CF_CHECK(cf_epilogue_validate(fn, ops, n_ops));
  if (!input || !weight || !output)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                    !input ? "input" : !weight ? "weight" : "output");
  if (sh.has_bias && !bias)
    return cf_error(CF_ERR_INVALID_ARGUMENT, "%s: desc->has_bias is 1 but bias is NULL", fn);
  if (!sh.has_bias && bias)
    return cf_error(CF_ERR_INVALID_ARGUMENT,
                    "%s: bias is given but desc->has_bias is 0 (pass NULL or set has_bias)", fn);
  return cf_reference_run(&sh, ops, n_ops, input, weight, bias, output, 0);
}
