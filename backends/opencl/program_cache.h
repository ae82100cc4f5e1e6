/* The OpenCL backend's on-disk program cache: built program binaries (CL_PROGRAM_BINARIES)
 * kept between processes, so that a new context loads a program instead of compiling it.
 *
 * Where: $XDG_CACHE_HOME/convfuse when XDG_CACHE_HOME is an absolute path, else
 * $HOME/.cache/convfuse (directories created with mode 0700 on the first store). Off when
 * CONVFUSE_CACHE=0 (nothing is read or written) or when neither variable gives a usable path.
 *
 * Key: a text naming everything the binary depends on — the format version, the platform's
 * name and version, the device's name, vendor and version, the driver version, the SHA-256 of
 * the embedded program source and the full build options string. One file per key, named by
 * a 64-bit hash of the key; the file holds the full key too, so a hash collision or a file
 * of another device is a miss, never a wrong program.
 *
 * File (integers little-endian):
 *   0  8 bytes  CF_PCACHE_MAGIC
 *   8  u32      CF_PCACHE_FORMAT
 *  12  u32      key length
 *  16  u64      binary length
 *  24  u64      cf_pcache_hash of the binary
 *  32           the key, then the binary; nothing after it
 * Anything else — a short or long file, another magic or format, another key, a checksum
 * that does not match, a file of another user or one others may write (a binary is code the
 * driver runs) — is a miss: the caller builds from source and stores, which replaces the
 * file. Stores write a temporary file in the same directory and rename() it into place,
 * so a reader (another thread or process) sees the old file or the new one, never half.
 *
 * Nothing here returns an error to the caller: the cache can only make plan creation faster.
 * With CONVFUSE_VERBOSE=1 every hit, miss, rejection, store and failed store prints one line
 * to stderr with the file and the reason.
 *
 * The statistics are process-wide and internal (not part of the public API): the tests prove a
 * hit with them rather than by timing, and `convfuse plantime` prints them. */
#ifndef CF_OPENCL_PROGRAM_CACHE_H
#define CF_OPENCL_PROGRAM_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define CF_PCACHE_MAGIC "CFCLPROG"
#define CF_PCACHE_FORMAT 1u
#define CF_PCACHE_HEADER_BYTES 32u
#define CF_PCACHE_SUFFIX ".clbin"

/* What identifies a device and its driver, as OpenCL reports it. */
typedef struct cf_pcache_device {
  const char *platform_name, *platform_version;
  const char *device_name, *device_vendor, *device_version, *driver_version;
} cf_pcache_device;

/* One context's view of the cache. */
typedef struct cf_pcache cf_pcache;

/* The cache for programs of `dev` built from the source whose SHA-256 (hex) is source_sha256;
 * NULL when the cache is off (CONVFUSE_CACHE=0, no usable directory, no host memory), which
 * every function below accepts. Reads the environment; touches no file. */
cf_pcache *cf_pcache_open(const cf_pcache_device *dev, const char *source_sha256, int verbose);
void cf_pcache_close(cf_pcache *c);

/* The binary stored for `options`: 1 with *binary (malloc'd, the caller frees it) and *size on
 * a hit; 0 on a miss. */
int cf_pcache_load(cf_pcache *c, const char *options, unsigned char **binary, size_t *size);

/* The driver refused a binary that cf_pcache_load returned (why: the call and its error). */
void cf_pcache_rejected(cf_pcache *c, const char *options, const char *why);

/* Stores the binary built for `options`, replacing any file of that key. */
void cf_pcache_store(cf_pcache *c, const char *options, const unsigned char *binary,
                     size_t size);

/* A store that could not start: the driver gave no binary (why: the call and its error). */
void cf_pcache_store_failed(cf_pcache *c, const char *options, const char *why);

/* The file that holds (or would hold) the binary of `options`, into buf; 0 if it does not fit
 * or c is NULL. */
int cf_pcache_path(const cf_pcache *c, const char *options, char *buf, size_t len);

/* FNV-1a, 64 bits: the file name (of the key) and the checksum (of the binary). */
uint64_t cf_pcache_hash(const void *data, size_t len);

/* Process-wide counts since the process started. */
typedef struct cf_pcache_stats {
  uint64_t hits;           /* a file with the right key and checksum was loaded */
  uint64_t misses;         /* no file, or a file that failed a check (corrupt or foreign) */
  uint64_t rejected;       /* a loaded binary the driver refused (cf_pcache_rejected) */
  uint64_t stores;         /* files written */
  uint64_t store_failures; /* stores that wrote nothing (no directory, read-only, disk full) */
} cf_pcache_stats;

void cf_pcache_get_stats(cf_pcache_stats *out);

#endif
