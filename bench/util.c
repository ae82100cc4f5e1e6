#include "util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* strtoll/strtod skip leading white space and take a '+': a strict parse does not. */
static int starts_like_number(const char *s) {
  return s && ((*s >= '0' && *s <= '9') || *s == '-' || *s == '.');
}

int tl_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
  if (!starts_like_number(s))
    return -1;
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0')
    return -1;
  if ((int64_t)v < lo || (int64_t)v > hi)
    return -1;
  *out = (int64_t)v;
  return 0;
}

int tl_parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s)
    return -1;
  /* strtoull accepts "-1" and wraps it; refuse any sign or leading space. */
  if (*s < '0' || *s > '9')
    return -1;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0')
    return -1;
  *out = (uint64_t)v;
  return 0;
}

int tl_parse_float(const char *s, float *out) {
  if (!starts_like_number(s))
    return -1;
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
    return -1;
  float f = (float)v;
  if (!isfinite(f))
    return -1;
  *out = f;
  return 0;
}

void tl_report(const char *what, cf_status s) {
  fprintf(stderr, "convfuse: %s: %s: %s\n", what, cf_status_string(s), cf_last_error());
}

void *tl_alloc(size_t bytes, const char *what) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    char b[32];
    fprintf(stderr, "convfuse: cannot allocate %zu bytes (%s) of host memory for %s\n", bytes,
            tl_fmt_bytes((double)bytes, b, sizeof b), what);
  }
  return p;
}

enum { TL_MAX_THREADS = 64 };

int tl_threads(void) {
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  if (online < 1)
    return 1;
  return online > TL_MAX_THREADS ? TL_MAX_THREADS : (int)online;
}

typedef struct tl_job {
  void (*fn)(void *ctx, int tid, int nthreads);
  void *ctx;
  int tid, nthreads;
} tl_job;

static void *tl_job_main(void *arg) {
  tl_job *j = arg;
  j->fn(j->ctx, j->tid, j->nthreads);
  return NULL;
}

void tl_parallel(int nthreads, void (*fn)(void *ctx, int tid, int nthreads), void *ctx) {
  if (nthreads < 1)
    nthreads = 1;
  if (nthreads > TL_MAX_THREADS)
    nthreads = TL_MAX_THREADS;
  tl_job jobs[TL_MAX_THREADS];
  pthread_t tids[TL_MAX_THREADS];
  int started[TL_MAX_THREADS] = {0};
  for (int t = 0; t < nthreads; ++t)
    jobs[t] = (tl_job){fn, ctx, t, nthreads};
  for (int t = 1; t < nthreads; ++t)
    started[t] = pthread_create(&tids[t], NULL, tl_job_main, &jobs[t]) == 0;
  fn(ctx, 0, nthreads);
  for (int t = 1; t < nthreads; ++t)
    if (!started[t])
      fn(ctx, t, nthreads);
  for (int t = 1; t < nthreads; ++t)
    if (started[t])
      pthread_join(tids[t], NULL);
}

void tl_split(int64_t n, int tid, int nthreads, int64_t *begin, int64_t *end) {
  /* n <= 2^60 and nthreads <= 64: the products fit int64 */
  *begin = n / nthreads * tid + (tid < n % nthreads ? tid : n % nthreads);
  *end = *begin + n / nthreads + (tid < n % nthreads ? 1 : 0);
}

const char *tl_fmt_bytes(double bytes, char *buf, size_t len) {
  static const char *const units[] = {"B", "KB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (bytes >= 1000.0 && u < 5) {
    bytes /= 1000.0;
    ++u;
  }
  if (u == 0)
    snprintf(buf, len, "%.0f B", bytes);
  else
    snprintf(buf, len, "%.3g %s", bytes, units[u]);
  return buf;
}

const char *tl_fmt_bytes_bin(double bytes, char *buf, size_t len) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 5) {
    bytes /= 1024.0;
    ++u;
  }
  if (u == 0)
    snprintf(buf, len, "%.0f B", bytes);
  else
    snprintf(buf, len, "%.4g %s", bytes, units[u]);
  return buf;
}

uint64_t tl_host_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0)
    return 0;
  return (uint64_t)pages * (uint64_t)page;
}
