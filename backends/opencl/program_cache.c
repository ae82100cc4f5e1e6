/* The OpenCL backend's on-disk program cache (program_cache.h says what and why). Plain
 * POSIX file I/O; no OpenCL here: opencl.c asks the driver for binaries and hands them over. */
#include "program_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env.h"

/* No driver's binary for these programs comes near this; a larger length in a file header is
 * corruption, and a larger store is refused rather than written. */
#define CF_PCACHE_MAX_BINARY ((uint64_t)1 << 30)

struct cf_pcache {
  char *dir;      /* .../convfuse, without a trailing slash */
  char *key_head; /* the key up to (not including) its options line */
  int verbose;
};

static _Atomic uint64_t stat_hits, stat_misses, stat_rejected, stat_stores, stat_store_failures;

void cf_pcache_get_stats(cf_pcache_stats *out) {
  out->hits = atomic_load(&stat_hits);
  out->misses = atomic_load(&stat_misses);
  out->rejected = atomic_load(&stat_rejected);
  out->stores = atomic_load(&stat_stores);
  out->store_failures = atomic_load(&stat_store_failures);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void say(int verbose, const char *fmt, ...) {
  if (!verbose)
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  /* one fprintf per line: lines of concurrent contexts do not interleave mid-line */
  fprintf(stderr, "convfuse: program cache: %s\n", line);
}

uint64_t cf_pcache_hash(const void *data, size_t len) {
  const unsigned char *p = (const unsigned char *)data;
  uint64_t h = 0xcbf29ce484222325u; /* FNV-1a 64 offset basis and prime */
  for (size_t i = 0; i < len; ++i) {
    h ^= p[i];
    h *= 0x100000001b3u;
  }
  return h;
}

/* ---- little-endian integers of the file header ---- */

static void put_le(unsigned char *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* ---- strings ---- */

/* printf into a new malloc'd string; NULL without memory. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static char *str_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  char *s = (char *)malloc((size_t)n + 1);
  if (!s)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* $XDG_CACHE_HOME/convfuse when XDG_CACHE_HOME is absolute (the XDG base directory spec says
 * to ignore a relative value), else $HOME/.cache/convfuse. NULL with the reason when neither
 * gives an absolute path (or without memory). */
static char *resolve_dir(char *why, size_t why_len) {
  const char *base = getenv("XDG_CACHE_HOME");
  const char *sub = "convfuse";
  if (!base || base[0] != '/') {
    base = getenv("HOME");
    sub = ".cache/convfuse";
  }
  if (!base || base[0] != '/') {
    snprintf(why, why_len, "neither XDG_CACHE_HOME nor HOME is an absolute path");
    return NULL;
  }
  size_t n = strlen(base);
  while (n > 1 && base[n - 1] == '/')
    --n;
  char *dir = str_printf("%.*s%s%s", (int)n, base, n > 1 ? "/" : "", sub);
  if (!dir)
    snprintf(why, why_len, "out of host memory");
  return dir;
}

/* The full key of `options` and the path of its file, both malloc'd; 0 without memory. */
static int key_and_path(const cf_pcache *c, const char *options, char **key, char **path) {
  *key = str_printf("%soptions: %s\n", c->key_head, options);
  *path = *key ? str_printf("%s/%016llx%s", c->dir,
                            (unsigned long long)cf_pcache_hash(*key, strlen(*key)),
                            CF_PCACHE_SUFFIX)
               : NULL;
  if (*path)
    return 1;
  free(*key);
  *key = NULL;
  return 0;
}

/* ---- open / close ---- */

cf_pcache *cf_pcache_open(const cf_pcache_device *dev, const char *source_sha256, int verbose) {
  if (!cf_env_cache()) {
    say(verbose, "off (CONVFUSE_CACHE=0)");
    return NULL;
  }
  char why[128];
  char *dir = resolve_dir(why, sizeof why);
  if (!dir) {
    say(verbose, "off (%s)", why);
    return NULL;
  }
  cf_pcache *c = (cf_pcache *)calloc(1, sizeof *c);
  char *head = str_printf("convfuse OpenCL program cache, format %u\n"
                          "platform: %s\nplatform version: %s\n"
                          "device: %s\nvendor: %s\ndevice version: %s\ndriver version: %s\n"
                          "source sha256: %s\n",
                          CF_PCACHE_FORMAT, dev->platform_name, dev->platform_version,
                          dev->device_name, dev->device_vendor, dev->device_version,
                          dev->driver_version, source_sha256);
  if (!c || !head) {
    say(verbose, "off (out of host memory)");
    free(c);
    free(head);
    free(dir);
    return NULL;
  }
  c->dir = dir;
  c->key_head = head;
  c->verbose = verbose;
  return c;
}

void cf_pcache_close(cf_pcache *c) {
  if (!c)
    return;
  free(c->dir);
  free(c->key_head);
  free(c);
}

int cf_pcache_path(const cf_pcache *c, const char *options, char *buf, size_t len) {
  char *key, *path;
  if (!c || !key_and_path(c, options, &key, &path))
    return 0;
  int fits = strlen(path) < len;
  if (fits)
    memcpy(buf, path, strlen(path) + 1);
  free(key);
  free(path);
  return fits;
}

/* ---- load ---- */

/* read() of exactly n bytes; 0 on an error or an early end of file. */
static int read_all(int fd, void *buf, size_t n) {
  unsigned char *p = (unsigned char *)buf;
  while (n > 0) {
    ssize_t got = read(fd, p, n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return 0;
    p += got;
    n -= (size_t)got;
  }
  return 1;
}

/* Checks the header against the key and the file's size; on success *bin_len and *sum. */
static int check_header(int fd, off_t file_size, size_t key_len, uint64_t *bin_len,
                        uint64_t *sum, char *why, size_t why_len) {
  unsigned char h[CF_PCACHE_HEADER_BYTES];
  if ((uint64_t)file_size < CF_PCACHE_HEADER_BYTES || !read_all(fd, h, sizeof h)) {
    snprintf(why, why_len, "shorter than the header (%lld bytes)", (long long)file_size);
    return 0;
  }
  if (memcmp(h, CF_PCACHE_MAGIC, 8) != 0) {
    snprintf(why, why_len, "not a convfuse program cache file (magic)");
    return 0;
  }
  uint64_t format = get_le(h + 8, 4), stored_key_len = get_le(h + 12, 4);
  *bin_len = get_le(h + 16, 8);
  *sum = get_le(h + 24, 8);
  if (format != CF_PCACHE_FORMAT) {
    snprintf(why, why_len, "format %llu (this library reads %u)", (unsigned long long)format,
             CF_PCACHE_FORMAT);
    return 0;
  }
  if (stored_key_len != key_len) {
    snprintf(why, why_len, "another key (%llu bytes, want %zu): a foreign file or a hash "
             "collision", (unsigned long long)stored_key_len, key_len);
    return 0;
  }
  uint64_t body = (uint64_t)file_size - CF_PCACHE_HEADER_BYTES;
  if (body < key_len || body - key_len != *bin_len) {
    snprintf(why, why_len, "%lld bytes, the header says %llu: truncated or appended to",
             (long long)file_size,
             (unsigned long long)(CF_PCACHE_HEADER_BYTES + key_len + *bin_len));
    return 0;
  }
  if (*bin_len == 0 || *bin_len > CF_PCACHE_MAX_BINARY) {
    snprintf(why, why_len, "binary of %llu bytes", (unsigned long long)*bin_len);
    return 0;
  }
  return 1;
}

/* Reads the key and the binary that follow a good header and checks them. */
static int read_body(int fd, const char *key, size_t key_len, uint64_t bin_len, uint64_t sum,
                     unsigned char **binary, char *why, size_t why_len) {
  char *stored_key = (char *)malloc(key_len ? key_len : 1);
  unsigned char *bin = (unsigned char *)malloc((size_t)bin_len);
  int ok = 0;
  if (!stored_key || !bin)
    snprintf(why, why_len, "out of host memory for %llu bytes", (unsigned long long)bin_len);
  else if (!read_all(fd, stored_key, key_len) || !read_all(fd, bin, (size_t)bin_len))
    snprintf(why, why_len, "short read: %s", errno ? strerror(errno) : "end of file");
  else if (memcmp(stored_key, key, key_len) != 0)
    snprintf(why, why_len, "another key (another device, driver, source or build options): a "
             "foreign file or a hash collision");
  else if (cf_pcache_hash(bin, (size_t)bin_len) != sum)
    snprintf(why, why_len, "checksum mismatch: the binary is corrupt");
  else
    ok = 1;
  free(stored_key);
  if (ok)
    *binary = bin;
  else
    free(bin);
  return ok;
}

/* Reads and checks the file at path; 1 with the binary, else 0 with the reason. */
static int read_entry(const char *path, const char *key, unsigned char **binary, size_t *size,
                      char *why, size_t why_len) {
  /* O_NONBLOCK: a FIFO put in the file's place must not hang plan creation */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    snprintf(why, why_len, "%s", errno == ENOENT ? "no file" : strerror(errno));
    return 0;
  }
  size_t key_len = strlen(key);
  uint64_t bin_len = 0, sum = 0;
  struct stat sb;
  int ok = 0;
  errno = 0;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
    snprintf(why, why_len, "not a regular file");
  /* A binary is code the driver runs (native code on a CPU device): only a file that this
   * user wrote and no one else can change is loaded. */
  else if (sb.st_uid != geteuid() || (sb.st_mode & (S_IWGRP | S_IWOTH)))
    snprintf(why, why_len, "not trusted: owned by uid %lu (this process runs as %lu) or "
             "writable by others", (unsigned long)sb.st_uid, (unsigned long)geteuid());
  else if (check_header(fd, sb.st_size, key_len, &bin_len, &sum, why, why_len) &&
           read_body(fd, key, key_len, bin_len, sum, binary, why, why_len)) {
    *size = (size_t)bin_len;
    ok = 1;
  }
  close(fd);
  return ok;
}

int cf_pcache_load(cf_pcache *c, const char *options, unsigned char **binary, size_t *size) {
  *binary = NULL;
  *size = 0;
  if (!c)
    return 0;
  char *key, *path;
  if (!key_and_path(c, options, &key, &path)) {
    atomic_fetch_add(&stat_misses, 1);
    say(c->verbose, "miss: out of host memory");
    return 0;
  }
  char why[256];
  int hit = read_entry(path, key, binary, size, why, sizeof why);
  if (hit) {
    atomic_fetch_add(&stat_hits, 1);
    say(c->verbose, "hit %s (%zu bytes)", path, *size);
  } else {
    atomic_fetch_add(&stat_misses, 1);
    say(c->verbose, "miss %s: %s", path, why);
  }
  free(key);
  free(path);
  return hit;
}

void cf_pcache_rejected(cf_pcache *c, const char *options, const char *why) {
  if (!c)
    return;
  atomic_fetch_add(&stat_rejected, 1);
  char path[4096];
  if (!cf_pcache_path(c, options, path, sizeof path))
    snprintf(path, sizeof path, "(path too long)");
  say(c->verbose, "rejected %s: %s; building from source", path, why);
}

/* ---- store ---- */

/* write() of all n bytes; 0 on an error (errno says which). */
static int write_all(int fd, const void *buf, size_t n) {
  const unsigned char *p = (const unsigned char *)buf;
  while (n > 0) {
    ssize_t put = write(fd, p, n);
    if (put < 0 && errno == EINTR)
      continue;
    if (put <= 0) {
      if (put == 0)
        errno = EIO;
      return 0;
    }
    p += put;
    n -= (size_t)put;
  }
  return 1;
}

/* mkdir -p, each new directory with mode 0700 (the cache is its user's alone: XDG); 1 when
 * path is a directory afterwards. */
static int make_dirs(const char *path, char *why, size_t why_len) {
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    return 1;
  char *p = str_printf("%s", path);
  if (!p) {
    snprintf(why, why_len, "out of host memory");
    return 0;
  }
  int ok = 1;
  for (char *s = p + 1; ok; ++s) {
    if (*s != '/' && *s != '\0')
      continue;
    char at = *s;
    *s = '\0';
    if (mkdir(p, 0700) != 0 && errno != EEXIST) {
      snprintf(why, why_len, "mkdir %s: %s", p, strerror(errno));
      ok = 0;
    }
    *s = at;
    if (!at)
      break;
  }
  free(p);
  if (ok && (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
    snprintf(why, why_len, "%s is not a directory", path);
    ok = 0;
  }
  return ok;
}

/* Writes the file under a unique temporary name in dir, then renames it to path: rename()
 * within one directory is atomic, so concurrent readers and writers (threads or processes
 * storing the same key) see one whole file or another, never a mix. No fsync: a file cut
 * short by a crash fails the size or checksum check and is rebuilt. */
static int write_entry(const char *dir, const char *path, const char *key,
                       const unsigned char *binary, size_t size, char *why, size_t why_len) {
  char *tmp = str_printf("%s/.tmp-XXXXXX", dir);
  if (!tmp) {
    snprintf(why, why_len, "out of host memory");
    return 0;
  }
  int fd = mkstemp(tmp); /* mode 0600, a name no other writer has */
  if (fd < 0) {
    snprintf(why, why_len, "cannot create a file in %s: %s", dir, strerror(errno));
    free(tmp);
    return 0;
  }
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC); /* best effort: a child process need not inherit it */
  size_t key_len = strlen(key);
  unsigned char h[CF_PCACHE_HEADER_BYTES];
  memcpy(h, CF_PCACHE_MAGIC, 8);
  put_le(h + 8, CF_PCACHE_FORMAT, 4);
  put_le(h + 12, key_len, 4);
  put_le(h + 16, size, 8);
  put_le(h + 24, cf_pcache_hash(binary, size), 8);
  int ok = write_all(fd, h, sizeof h) && write_all(fd, key, key_len) &&
           write_all(fd, binary, size);
  if (!ok)
    snprintf(why, why_len, "writing %s: %s", tmp, strerror(errno));
  if (close(fd) != 0 && ok) { /* a full disk can surface only here (NFS, quotas) */
    snprintf(why, why_len, "closing %s: %s", tmp, strerror(errno));
    ok = 0;
  }
  if (ok && rename(tmp, path) != 0) {
    snprintf(why, why_len, "rename to %s: %s", path, strerror(errno));
    ok = 0;
  }
  if (!ok)
    unlink(tmp);
  free(tmp);
  return ok;
}

static void store_failed(const cf_pcache *c, const char *path, const char *why) {
  atomic_fetch_add(&stat_store_failures, 1);
  say(c->verbose, "not stored %s: %s", path, why);
}

void cf_pcache_store(cf_pcache *c, const char *options, const unsigned char *binary,
                     size_t size) {
  if (!c)
    return;
  char *key, *path;
  if (!key_and_path(c, options, &key, &path)) {
    store_failed(c, "", "out of host memory");
    return;
  }
  char why[512];
  if (size == 0 || (uint64_t)size > CF_PCACHE_MAX_BINARY || strlen(key) > UINT32_MAX) {
    snprintf(why, sizeof why, "a binary of %zu bytes", size);
    store_failed(c, path, why);
  } else if (!make_dirs(c->dir, why, sizeof why) ||
             !write_entry(c->dir, path, key, binary, size, why, sizeof why)) {
    store_failed(c, path, why);
  } else {
    atomic_fetch_add(&stat_stores, 1);
    say(c->verbose, "stored %s (%zu bytes)", path, size);
  }
  free(key);
  free(path);
}

void cf_pcache_store_failed(cf_pcache *c, const char *options, const char *why) {
  if (!c)
    return;
  char path[4096];
  if (!cf_pcache_path(c, options, path, sizeof path))
    snprintf(path, sizeof path, "(path too long)");
  store_failed(c, path, why);
}
