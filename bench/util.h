/* Small helpers of the convfuse tool: strict number parsing, host threads, error reports,
 * host allocation, formatting. */
#ifndef CF_TOOL_UTIL_H
#define CF_TOOL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "convfuse/convfuse.h"

/* Whole-string strict parses: 0 on success, -1 on anything else (empty, trailing characters,
 * out of [lo, hi], overflow, a sign for the unsigned one, a non-finite double). */
int tl_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
int tl_parse_u64(const char *s, uint64_t *out);
int tl_parse_float(const char *s, float *out);

/* Prints "convfuse: <what>: <status name>: <cf_last_error()>" to stderr. */
void tl_report(const char *what, cf_status s);

/* malloc that says what failed on stderr; NULL if it did (bytes == 0 asks for 1 byte). */
void *tl_alloc(size_t bytes, const char *what);

/* Host threads the tool uses for its own work (online CPUs, 1..64). */
int tl_threads(void);

/* Runs fn(ctx, tid, nthreads) for tid in [0, nthreads) on host threads and waits for all of
 * them. If a thread cannot be started, its share runs on the calling thread. */
void tl_parallel(int nthreads, void (*fn)(void *ctx, int tid, int nthreads), void *ctx);

/* [begin, end) of part `tid` of n items split into nthreads near-equal parts. */
void tl_split(int64_t n, int tid, int nthreads, int64_t *begin, int64_t *end);

/* "1.07 GB", "295 KB", "512 B" (decimal units). Returns buf. */
const char *tl_fmt_bytes(double bytes, char *buf, size_t len);

/* "512 KiB", "139 GiB" (binary units, for memory sizes). Returns buf. */
const char *tl_fmt_bytes_bin(double bytes, char *buf, size_t len);

/* Physical host memory in bytes (0 if unknown). */
uint64_t tl_host_memory(void);

#endif
