/* test_program_cache: the OpenCL backend's on-disk program cache (backends/opencl/
 * program_cache.{h,c}).
 *   - a cold plan writes exactly one file per program, in a 0700 directory, and none twice;
 *   - a new context loads it: proven with the cache's own counters (cf_pcache_get_stats), not
 *     by timing, and its results are bit-identical to the source-built program's;
 *   - a truncated file, flipped bytes in the binary, random bytes under the right name, a valid
 *     file of another key, and a binary the driver refuses: still the right results, and the
 *     file is replaced by one the next context loads; a file others may write, or of another
 *     user, is not loaded;
 *   - CONVFUSE_CACHE=0 reads and writes nothing; a directory that cannot be written (chmod
 *     0500; a path through a regular file) costs nothing but the store; concurrent stores
 *     leave one whole file; the $HOME/.cache fallback; CONVFUSE_VERBOSE=1 says what happened.
 * Every test points XDG_CACHE_HOME at its own new mkdtemp directory. Criterion runs each test
 * in its own process, so the counters and the environment start afresh.
 *
 * PoCL keeps a kernel cache of its own, under the same XDG_CACHE_HOME/HOME: each test pins it
 * (POCL_CACHE_DIR) to where PoCL would have put it before the test moved those variables, so
 * that PoCL does not recompile from nothing in every test (seconds each on a 2-core CI
 * machine). It cannot fake a hit: hits are counted by convfuse. The bit-identity test turns
 * PoCL's cache off, so that the program really comes from convfuse's file. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convfuse/convfuse.h"
#include "test_util.h"

#ifndef CONVFUSE_TEST_HAVE_OPENCL

Test(program_cache, opencl_not_compiled_in) {
  cr_skip_test("the OpenCL backend (and its program cache) is not compiled in");
}

#else
#include "program_cache.h"

/* ---- scratch directories ---- */

static char scratch[512];   /* this test's own directory */
static char xdg[600];       /* XDG_CACHE_HOME: scratch/xdg */
static char cache_dir[700]; /* where the files must go: xdg/convfuse */

static void remove_tree(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0)
    return;
  if (S_ISDIR(sb.st_mode)) {
    chmod(path, 0700); /* the unwritable-directory test leaves one at 0500 */
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char child[1024];
      snprintf(child, sizeof child, "%s/%s", path, e->d_name);
      remove_tree(child);
    }
    if (d)
      closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

/* PoCL's kernel cache stays where PoCL puts it by default (see the top of the file). */
static void pin_pocl_cache(void) {
  if (getenv("POCL_CACHE_DIR"))
    return;
  const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  char dir[1024];
  if (x && *x)
    snprintf(dir, sizeof dir, "%s/pocl/kcache", x);
  else if (home && *home)
    snprintf(dir, sizeof dir, "%s/.cache/pocl/kcache", home);
  else
    snprintf(dir, sizeof dir, "/tmp/pocl/kcache");
  setenv("POCL_CACHE_DIR", dir, 1);
}

static void setup(void) {
  pin_pocl_cache();
  unsetenv("CONVFUSE_CACHE");
  unsetenv("CONVFUSE_VERBOSE");
  const char *tmp = getenv("TMPDIR");
  snprintf(scratch, sizeof scratch, "%s/cf_pcache_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  cr_assert(mkdtemp(scratch) != NULL, "mkdtemp(%s) failed", scratch);
  snprintf(xdg, sizeof xdg, "%s/xdg", scratch);
  snprintf(cache_dir, sizeof cache_dir, "%s/convfuse", xdg);
  setenv("XDG_CACHE_HOME", xdg, 1);
}

static void teardown(void) {
  if (scratch[0])
    remove_tree(scratch);
  scratch[0] = '\0';
}

TestSuite(program_cache, .init = setup, .fini = teardown);

/* Criterion runs no .fini after cr_skip_test: a test that skips removes its directory first. */
static void require_opencl(void) {
  if (!cf_backend_available(CF_BACKEND_OPENCL))
    teardown();
  tu_skip_unless_available(CF_BACKEND_OPENCL);
}

/* ---- what is in the cache directory ---- */

typedef struct listing {
  int n; /* entries other than . and ..; -1 if the directory does not exist */
  char names[16][256];
} listing;

static listing list_dir(const char *dir) {
  listing l;
  memset(&l, 0, sizeof l);
  DIR *d = opendir(dir);
  if (!d) {
    l.n = -1;
    return l;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (l.n < 16)
      snprintf(l.names[l.n], sizeof l.names[0], "%s", e->d_name);
    l.n++;
  }
  closedir(d);
  return l;
}

/* 16 lower-case hex digits and the suffix: the only names a store leaves behind. */
static int is_cache_name(const char *name) {
  if (strlen(name) != 16 + strlen(CF_PCACHE_SUFFIX) || strcmp(name + 16, CF_PCACHE_SUFFIX))
    return 0;
  for (int i = 0; i < 16; ++i)
    if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
      return 0;
  return 1;
}

/* Asserts that dir holds exactly n cache files (no temporary ones) and returns the listing. */
static listing expect_files(const char *dir, int n) {
  listing l = list_dir(dir);
  cr_assert(l.n == n, "%s holds %d entries, want %d cache files", dir, l.n, n);
  for (int i = 0; i < l.n && i < 16; ++i)
    cr_assert(is_cache_name(l.names[i]), "%s/%s is not a cache file name (a temporary file "
              "left behind?)", dir, l.names[i]);
  return l;
}

typedef struct blob {
  unsigned char *data;
  size_t size;
} blob;

static blob read_file(const char *path) {
  blob b = {NULL, 0};
  FILE *f = fopen(path, "rb");
  cr_assert(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  b.size = (size_t)n;
  b.data = malloc(b.size ? b.size : 1);
  cr_assert(b.data && fread(b.data, 1, b.size, f) == b.size, "cannot read %s", path);
  fclose(f);
  return b;
}

static void write_file(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  cr_assert(f != NULL, "cannot write %s", path);
  cr_assert(fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write %s", path);
}

/* The one cache file of dir (asserting there is exactly one) into path. */
static void only_file(const char *dir, char *path, size_t len) {
  listing l = expect_files(dir, 1);
  int n = snprintf(path, len, "%s/%s", dir, l.names[0]);
  cr_assert(n > 0 && (size_t)n < len, "path too long: %s/%s", dir, l.names[0]);
}

static uint64_t le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static size_t binary_offset(const blob *b) {
  cr_assert(b->size > CF_PCACHE_HEADER_BYTES, "cache file too short");
  uint32_t key_len = (uint32_t)(b->data[12] | b->data[13] << 8 | b->data[14] << 16 |
                                (uint32_t)b->data[15] << 24);
  cr_assert(CF_PCACHE_HEADER_BYTES + key_len < b->size, "cache file key too long");
  return CF_PCACHE_HEADER_BYTES + key_len;
}

/* ---- problems ---- */

static const cf_conv2d_desc small = {.batch = 1, .in_channels = 3, .height = 9, .width = 8,
                                     .out_channels = 5, .kernel_h = 3, .kernel_w = 3,
                                     .pad_h = 1, .pad_w = 1, .has_bias = 1};
/* two chains, two programs (the chain is compiled in) */
static const cf_op chain_a[2] = {{CF_OP_SUB, 0.5f}, {CF_OP_MISH, 0.0f}};
static const cf_op chain_b[1] = {{CF_OP_RELU, 0.0f}};

static cf_pcache_stats stats(void) {
  cf_pcache_stats s;
  cf_pcache_get_stats(&s);
  return s;
}

/* Runs pb on ctx and checks it against the reference (random inputs, never zeros). */
static void run_checked(cf_context *ctx, tu_problem *pb) {
  const char *where = "";
  cf_status s = tu_run_on_context(ctx, pb, &where);
  cr_assert(s == CF_OK, "%s: %s: %s %s", where, cf_status_string(s), cf_last_error(),
            pb->guard_msg);
  tu_check res;
  tu_check_output(pb, &res);
  cr_assert(res.ok, "%s", res.summary);
}

/* pb on a new OpenCL context (the backend's state starts afresh, as in a new process). */
static void run_new_context(tu_problem *pb) {
  require_opencl();
  cf_context *ctx = tu_open_or_skip(CF_BACKEND_OPENCL);
  run_checked(ctx, pb);
  cf_context_destroy(ctx);
}

static void problem(tu_problem *pb, const cf_op *ops, int n_ops) {
  tu_problem_init(pb, &small, ops, n_ops, CF_MATH_FP32, TU_DIST_RAND, 0xcac4e);
}

static float *copy_output(const tu_problem *pb) {
  float *c = malloc(pb->n_out * sizeof(float));
  cr_assert(c != NULL);
  memcpy(c, pb->output, pb->n_out * sizeof(float));
  return c;
}

/* ---- a cold plan, then a warm one ---- */

Test(program_cache, cold_plan_writes_one_file_per_program) {
  tu_problem a, b;
  problem(&a, chain_a, 2);
  problem(&b, chain_b, 1);
  require_opencl();
  cf_context *ctx = tu_open_or_skip(CF_BACKEND_OPENCL);
  cr_assert(list_dir(cache_dir).n == -1, "the cache directory exists before any plan");

  run_checked(ctx, &a);
  cf_pcache_stats s = stats();
  cr_expect(s.misses == 1 && s.stores == 1 && s.hits == 0 && s.store_failures == 0,
            "first plan: %llu misses, %llu stores, %llu hits, %llu failed stores; want 1, 1, "
            "0, 0", (unsigned long long)s.misses, (unsigned long long)s.stores,
            (unsigned long long)s.hits, (unsigned long long)s.store_failures);
  char path[1024];
  only_file(cache_dir, path, sizeof path);
  struct stat sb;
  cr_assert(stat(cache_dir, &sb) == 0);
  cr_expect((sb.st_mode & 0777) == 0700, "%s has mode %o, want 0700", cache_dir,
            (unsigned)(sb.st_mode & 0777));
  blob f = read_file(path);
  cr_expect(f.size > CF_PCACHE_HEADER_BYTES && memcmp(f.data, CF_PCACHE_MAGIC, 8) == 0,
            "%s does not start with the magic", path);
  free(f.data);

  /* the same program again in this context: the context's own cache, no disk access */
  run_checked(ctx, &a);
  s = stats();
  cr_expect(s.misses == 1 && s.stores == 1 && s.hits == 0,
            "a second plan of the same program touched the disk cache (%llu misses, %llu "
            "stores, %llu hits)", (unsigned long long)s.misses, (unsigned long long)s.stores,
            (unsigned long long)s.hits);
  expect_files(cache_dir, 1);

  /* another chain is another program: a second file */
  run_checked(ctx, &b);
  s = stats();
  cr_expect(s.misses == 2 && s.stores == 2, "second program: %llu misses, %llu stores",
            (unsigned long long)s.misses, (unsigned long long)s.stores);
  expect_files(cache_dir, 2);
  cf_context_destroy(ctx);
  tu_problem_free(&a);
  tu_problem_free(&b);
}

Test(program_cache, new_context_loads_the_file_and_computes_bit_identical_results) {
  /* PoCL's own cache off: the second context's program comes from convfuse's file alone */
  setenv("POCL_KERNEL_CACHE", "0", 1);
  tu_problem pb;
  problem(&pb, chain_a, 2);
  run_new_context(&pb);
  float *built = copy_output(&pb);
  cf_pcache_stats s = stats();
  cr_assert(s.stores == 1 && s.hits == 0, "cold: %llu stores, %llu hits",
            (unsigned long long)s.stores, (unsigned long long)s.hits);

  tu_problem_refill(&pb, 0xcac4e); /* the same data, output poisoned again */
  run_new_context(&pb);
  s = stats();
  cr_expect(s.hits == 1, "the second context did not load the file (%llu hits, %llu misses, "
            "%llu rejected)", (unsigned long long)s.hits, (unsigned long long)s.misses,
            (unsigned long long)s.rejected);
  cr_expect(s.stores == 1 && s.rejected == 0, "warm: %llu stores, %llu rejected; want 1, 0",
            (unsigned long long)s.stores, (unsigned long long)s.rejected);
  size_t first_diff = pb.n_out;
  for (size_t i = 0; i < pb.n_out && first_diff == pb.n_out; ++i)
    if (memcmp(&built[i], &pb.output[i], sizeof(float)) != 0)
      first_diff = i;
  cr_expect(first_diff == pb.n_out, "loaded program's output differs at %zu: %a vs %a (source "
            "build)", first_diff, (double)pb.output[first_diff % pb.n_out],
            (double)built[first_diff % pb.n_out]);
  expect_files(cache_dir, 1);
  free(built);
  tu_problem_free(&pb);
}

/* ---- corrupt and foreign files ---- */

typedef void (*corrupt_fn)(const char *path);

static void truncate_half(const char *path) {
  blob b = read_file(path);
  write_file(path, b.data, b.size / 2);
  free(b.data);
}

static void flip_binary_bytes(const char *path) {
  blob b = read_file(path);
  size_t off = binary_offset(&b), n = b.size - off;
  size_t at[4] = {off, off + n / 3, off + n / 2, b.size - 1};
  for (int i = 0; i < 4; ++i)
    b.data[at[i]] ^= 0x5a;
  write_file(path, b.data, b.size);
  free(b.data);
}

static void random_bytes(const char *path) {
  blob b = read_file(path);
  tu_rng rng;
  tu_rng_seed(&rng, 0xbad);
  for (size_t i = 0; i < b.size; ++i)
    b.data[i] = (unsigned char)tu_rng_next(&rng);
  write_file(path, b.data, b.size);
  free(b.data);
}

/* A well-formed file (magic, format, the right key, a matching checksum) whose binary is
 * random bytes: only the driver can refuse it. */
static void forge_binary(const char *path) {
  blob b = read_file(path);
  size_t off = binary_offset(&b);
  tu_rng rng;
  tu_rng_seed(&rng, 0xf0e);
  for (size_t i = off; i < b.size; ++i)
    b.data[i] = (unsigned char)tu_rng_next(&rng);
  uint64_t sum = cf_pcache_hash(b.data + off, b.size - off);
  for (int i = 0; i < 8; ++i)
    b.data[24 + i] = (unsigned char)(sum >> (8 * i));
  cr_assert(le64(b.data + 24) == sum);
  write_file(path, b.data, b.size);
  free(b.data);
}

/* Runs chain_a cold (its file written), lets corrupt() damage the file, and checks that the
 * next context still computes exactly the same results, replaces the file, and that the
 * context after it loads the replacement. rejected: whether the file passes convfuse's checks
 * and only the driver can refuse it. */
static void corrupt_and_recover(corrupt_fn corrupt, int rejected) {
  tu_problem pb;
  problem(&pb, chain_a, 2);
  run_new_context(&pb);
  float *good = copy_output(&pb);
  char path[1024];
  only_file(cache_dir, path, sizeof path);

  corrupt(path);
  blob bad = read_file(path);
  cf_pcache_stats s0 = stats();
  tu_problem_refill(&pb, 0xcac4e);
  run_new_context(&pb);
  cf_pcache_stats s1 = stats();
  cr_expect(memcmp(good, pb.output, pb.n_out * sizeof(float)) == 0,
            "results after a damaged cache file differ from the source build's");
  if (rejected)
    cr_expect(s1.hits - s0.hits == 1 && s1.rejected - s0.rejected == 1,
              "a forged binary: %llu hits, %llu rejected; want 1 and 1 (the driver refuses "
              "it)", (unsigned long long)(s1.hits - s0.hits),
              (unsigned long long)(s1.rejected - s0.rejected));
  else
    cr_expect(s1.hits == s0.hits && s1.misses - s0.misses == 1,
              "a damaged file: %llu hits, %llu misses; want 0 and 1",
              (unsigned long long)(s1.hits - s0.hits),
              (unsigned long long)(s1.misses - s0.misses));
  cr_expect(s1.stores - s0.stores == 1, "the damaged file was not replaced (%llu stores)",
            (unsigned long long)(s1.stores - s0.stores));
  expect_files(cache_dir, 1);
  blob now = read_file(path);
  cr_expect(now.size != bad.size || memcmp(now.data, bad.data, now.size) != 0,
            "the damaged file is still there");
  free(now.data);
  free(bad.data);

  /* the replacement is good: the next context loads it and gets the same results */
  tu_problem_refill(&pb, 0xcac4e);
  run_new_context(&pb);
  cf_pcache_stats s2 = stats();
  cr_expect(s2.hits - s1.hits == 1 && s2.rejected == s1.rejected && s2.stores == s1.stores,
            "the replacement was not loaded (%llu hits, %llu rejected, %llu stores)",
            (unsigned long long)(s2.hits - s1.hits),
            (unsigned long long)(s2.rejected - s1.rejected),
            (unsigned long long)(s2.stores - s1.stores));
  cr_expect(memcmp(good, pb.output, pb.n_out * sizeof(float)) == 0,
            "results from the replacement differ from the source build's");
  free(good);
  tu_problem_free(&pb);
}

Test(program_cache, truncated_file_is_rebuilt_and_replaced) {
  corrupt_and_recover(truncate_half, 0);
}

Test(program_cache, flipped_binary_bytes_are_rebuilt_and_replaced) {
  corrupt_and_recover(flip_binary_bytes, 0);
}

Test(program_cache, random_bytes_under_the_right_name_are_rebuilt_and_replaced) {
  corrupt_and_recover(random_bytes, 0);
}

Test(program_cache, binary_the_driver_refuses_is_rebuilt_and_replaced) {
  corrupt_and_recover(forge_binary, 1);
}

/* A well-formed file of another program (another key) under this program's name: a hash
 * collision or a file from elsewhere must be a miss, never the wrong program. */
static char other_file[1024];
static void put_other_file(const char *path) {
  blob b = read_file(other_file);
  write_file(path, b.data, b.size);
  free(b.data);
}

Test(program_cache, file_of_another_key_is_a_miss_and_replaced) {
  /* chain_b's file first, in a directory of its own; then chain_a's test */
  char dir_b[700];
  snprintf(dir_b, sizeof dir_b, "%s/other", scratch);
  setenv("XDG_CACHE_HOME", dir_b, 1);
  tu_problem b;
  problem(&b, chain_b, 1);
  run_new_context(&b);
  tu_problem_free(&b);
  char cache_b[800];
  snprintf(cache_b, sizeof cache_b, "%s/convfuse", dir_b);
  only_file(cache_b, other_file, sizeof other_file);
  setenv("XDG_CACHE_HOME", xdg, 1);
  corrupt_and_recover(put_other_file, 0);
}

/* A binary is code the driver runs: a file another user could have written is not loaded. */
Test(program_cache, file_others_may_write_or_of_another_user_is_not_loaded) {
  tu_problem pb;
  problem(&pb, chain_a, 2);
  run_new_context(&pb);
  float *good = copy_output(&pb);
  char path[1024];
  only_file(cache_dir, path, sizeof path);
  for (int kind = 0; kind < 2; ++kind) {
    if (kind == 0) {
      cr_assert(chmod(path, 0622) == 0, "chmod %s", path); /* group and others may write */
    } else if (geteuid() == 0) {
      cr_assert(chown(path, 65534, 65534) == 0, "chown %s", path); /* another user's file */
    } else {
      cr_log_info("not root: cannot give a file to another user; the owner check is untested");
      break;
    }
    cf_pcache_stats s0 = stats();
    tu_problem_refill(&pb, 0xcac4e);
    run_new_context(&pb);
    cf_pcache_stats s1 = stats();
    const char *what = kind == 0 ? "a file others may write" : "another user's file";
    cr_expect(s1.hits == s0.hits && s1.misses - s0.misses == 1 && s1.stores - s0.stores == 1,
              "%s: %llu hits, %llu misses, %llu stores; want 0, 1, 1", what,
              (unsigned long long)(s1.hits - s0.hits),
              (unsigned long long)(s1.misses - s0.misses),
              (unsigned long long)(s1.stores - s0.stores));
    cr_expect(memcmp(good, pb.output, pb.n_out * sizeof(float)) == 0, "%s: results differ",
              what);
    struct stat sb;
    cr_assert(stat(path, &sb) == 0);
    cr_expect(sb.st_uid == geteuid() && (sb.st_mode & 0777) == 0600,
              "%s: the replacement has owner %lu and mode %o, want %lu and 0600", what,
              (unsigned long)sb.st_uid, (unsigned)(sb.st_mode & 0777),
              (unsigned long)geteuid());
  }
  /* the replacement loads */
  cf_pcache_stats s0 = stats();
  tu_problem_refill(&pb, 0xcac4e);
  run_new_context(&pb);
  cr_expect(stats().hits == s0.hits + 1, "the replacement was not loaded");
  free(good);
  tu_problem_free(&pb);
}

/* ---- CONVFUSE_CACHE=0 ---- */

Test(program_cache, cache_off_reads_and_writes_nothing) {
  tu_problem pb;
  problem(&pb, chain_a, 2);
  setenv("CONVFUSE_CACHE", "0", 1);
  run_new_context(&pb);
  cf_pcache_stats s = stats();
  cr_expect(s.hits + s.misses + s.stores + s.store_failures == 0,
            "CONVFUSE_CACHE=0 used the cache: %llu hits, %llu misses, %llu stores, %llu failed",
            (unsigned long long)s.hits, (unsigned long long)s.misses,
            (unsigned long long)s.stores, (unsigned long long)s.store_failures);
  cr_expect(list_dir(xdg).n == -1, "CONVFUSE_CACHE=0 created %s", xdg);

  /* a file there is not read either: random bytes stay untouched and nothing is counted */
  unsetenv("CONVFUSE_CACHE");
  run_new_context(&pb);
  char path[1024];
  only_file(cache_dir, path, sizeof path);
  random_bytes(path);
  blob before = read_file(path);
  s = stats();
  setenv("CONVFUSE_CACHE", "0", 1);
  tu_problem_refill(&pb, 0xcac4e);
  run_new_context(&pb);
  cf_pcache_stats t = stats();
  cr_expect(t.hits == s.hits && t.misses == s.misses && t.stores == s.stores,
            "CONVFUSE_CACHE=0 read or wrote the cache");
  blob after = read_file(path);
  cr_expect(after.size == before.size && memcmp(after.data, before.data, after.size) == 0,
            "CONVFUSE_CACHE=0 rewrote %s", path);
  free(before.data);
  free(after.data);
  tu_problem_free(&pb);
}

/* ---- directories that cannot be written ---- */

Test(program_cache, unwritable_directory_still_plans) {
  if (geteuid() == 0) {
    teardown();
    cr_skip_test("running as root, which ignores directory permissions (a chmod 0500 "
                 "directory stays writable); "
                 "path_through_a_file_still_plans covers a failed store as root");
  }
  cr_assert(mkdir(xdg, 0700) == 0 && mkdir(cache_dir, 0700) == 0);
  cr_assert(chmod(cache_dir, 0500) == 0);
  tu_problem pb;
  problem(&pb, chain_a, 2);
  run_new_context(&pb);
  cf_pcache_stats s = stats();
  cr_expect(s.store_failures == 1 && s.stores == 0, "read-only directory: %llu stores, %llu "
            "failed stores; want 0 and 1", (unsigned long long)s.stores,
            (unsigned long long)s.store_failures);
  cr_expect(list_dir(cache_dir).n == 0, "something was written into the read-only directory");
  tu_problem_free(&pb);
}

Test(program_cache, path_through_a_file_still_plans) {
  /* XDG_CACHE_HOME is a regular file: nothing can be created below it (ENOTDIR), as root too */
  char blocker[700];
  snprintf(blocker, sizeof blocker, "%s/a-file", scratch);
  write_file(blocker, "x", 1);
  setenv("XDG_CACHE_HOME", blocker, 1);
  tu_problem pb;
  problem(&pb, chain_a, 2);
  run_new_context(&pb);
  cf_pcache_stats s = stats();
  cr_expect(s.misses == 1 && s.store_failures == 1 && s.stores == 0,
            "blocked path: %llu misses, %llu stores, %llu failed stores; want 1, 0, 1",
            (unsigned long long)s.misses, (unsigned long long)s.stores,
            (unsigned long long)s.store_failures);
  tu_problem_free(&pb);
}

/* ---- concurrent stores ---- */

typedef struct worker_arg {
  tu_problem pb;
  cf_status status;
  char where[64], msg[256];
} worker_arg;

static void *worker(void *p) {
  worker_arg *w = (worker_arg *)p;
  cf_context *ctx = NULL;
  const char *where = "cf_context_create";
  w->status = cf_context_create(CF_BACKEND_OPENCL, &ctx);
  if (w->status == CF_OK)
    w->status = tu_run_on_context(ctx, &w->pb, &where);
  snprintf(w->where, sizeof w->where, "%s", where);
  snprintf(w->msg, sizeof w->msg, "%s", cf_last_error());
  cf_context_destroy(ctx);
  return NULL;
}

Test(program_cache, concurrent_stores_leave_one_whole_file) {
  require_opencl();
  enum { T = 4 };
  worker_arg args[T];
  pthread_t th[T];
  for (int i = 0; i < T; ++i) {
    problem(&args[i].pb, chain_a, 2);
    cr_assert(pthread_create(&th[i], NULL, worker, &args[i]) == 0);
  }
  for (int i = 0; i < T; ++i)
    pthread_join(th[i], NULL);
  for (int i = 0; i < T; ++i) {
    cr_expect(args[i].status == CF_OK, "thread %d: %s: %s", i, args[i].where, args[i].msg);
    tu_check res;
    tu_check_output(&args[i].pb, &res);
    cr_expect(res.ok, "thread %d: %s", i, res.summary);
    tu_problem_free(&args[i].pb);
  }
  cf_pcache_stats s = stats();
  cr_expect(s.stores >= 1 && s.store_failures == 0 && s.hits + s.misses == T,
            "%llu stores, %llu failed, %llu hits + %llu misses (want >= 1, 0, %d lookups)",
            (unsigned long long)s.stores, (unsigned long long)s.store_failures,
            (unsigned long long)s.hits, (unsigned long long)s.misses, T);
  expect_files(cache_dir, 1);
  /* and it is whole: the next context loads it */
  tu_problem pb;
  problem(&pb, chain_a, 2);
  run_new_context(&pb);
  cr_expect(stats().hits == s.hits + 1, "the file the threads left is not loadable");
  tu_problem_free(&pb);
}

/* ---- where the cache lives ---- */

Test(program_cache, home_cache_when_xdg_cache_home_is_unset_or_relative) {
  char home[700], home_cache[800];
  snprintf(home, sizeof home, "%s/home", scratch);
  snprintf(home_cache, sizeof home_cache, "%s/.cache/convfuse", home);
  cr_assert(mkdir(home, 0700) == 0);
  setenv("HOME", home, 1);
  unsetenv("XDG_CACHE_HOME");
  tu_problem a, b;
  problem(&a, chain_a, 2);
  run_new_context(&a);
  expect_files(home_cache, 1);
  /* a relative XDG_CACHE_HOME is ignored (the XDG spec): $HOME/.cache again */
  setenv("XDG_CACHE_HOME", "relative/cache", 1);
  problem(&b, chain_b, 1);
  run_new_context(&b);
  expect_files(home_cache, 2);
  cr_expect(access("relative", F_OK) != 0, "a relative XDG_CACHE_HOME was used");
  cr_expect(list_dir(xdg).n == -1, "%s was used although XDG_CACHE_HOME was unset", xdg);
  tu_problem_free(&a);
  tu_problem_free(&b);
}

/* ---- CONVFUSE_VERBOSE=1 ---- */

static char captured[16384];

/* Runs pb on a new context with stderr captured into `captured`. */
static void run_captured(tu_problem *pb) {
  fflush(stderr);
  FILE *tmp = tmpfile();
  cr_assert(tmp != NULL);
  int saved = dup(2);
  cr_assert(saved >= 0 && dup2(fileno(tmp), 2) >= 0);
  run_new_context(pb);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(tmp);
  size_t n = fread(captured, 1, sizeof captured - 1, tmp);
  captured[n] = '\0';
  fclose(tmp);
}

Test(program_cache, verbose_says_miss_store_hit_and_off) {
  require_opencl();
  setenv("CONVFUSE_VERBOSE", "1", 1);
  tu_problem pb;
  problem(&pb, chain_a, 2);
  run_captured(&pb);
  cr_expect(strstr(captured, "program cache: miss ") && strstr(captured, "no file"),
            "cold: no miss line: \"%s\"", captured);
  cr_expect(strstr(captured, "program cache: stored ") && strstr(captured, cache_dir),
            "cold: no store line naming %s: \"%s\"", cache_dir, captured);
  tu_problem_refill(&pb, 0xcac4e);
  run_captured(&pb);
  cr_expect(strstr(captured, "program cache: hit ") != NULL, "warm: no hit line: \"%s\"",
            captured);
  setenv("CONVFUSE_CACHE", "0", 1);
  tu_problem_refill(&pb, 0xcac4e);
  run_captured(&pb);
  cr_expect(strstr(captured, "program cache: off (CONVFUSE_CACHE=0)") != NULL,
            "CONVFUSE_CACHE=0: no line saying the cache is off: \"%s\"", captured);
  tu_problem_free(&pb);
}

/* ---- the file layer alone (no device) ---- */

static cf_pcache *open_fake(const char *driver) {
  const cf_pcache_device dev = {"Fake Platform", "OpenCL 3.0 fake", "Fake Device", "Fake Vendor",
                                "OpenCL 3.0", driver};
  cf_pcache *c = cf_pcache_open(&dev, "0123abcd", 0);
  cr_assert(c != NULL, "cf_pcache_open returned NULL with XDG_CACHE_HOME=%s", xdg);
  return c;
}

Test(program_cache, store_and_load_round_trip_without_a_device) {
  cf_pcache *c = open_fake("1.0");
  unsigned char bin[3000];
  for (size_t i = 0; i < sizeof bin; ++i)
    bin[i] = (unsigned char)(i * 7 + 3);
  unsigned char *got = NULL;
  size_t n = 0;
  cr_expect(!cf_pcache_load(c, "-DX=1", &got, &n) && !got, "a hit in an empty cache");
  cf_pcache_store(c, "-DX=1", bin, sizeof bin);
  cr_assert(cf_pcache_load(c, "-DX=1", &got, &n), "no hit after a store");
  cr_expect(n == sizeof bin && memcmp(got, bin, n) == 0, "the loaded binary differs");
  free(got);
  /* other options, another driver version: other keys, misses */
  cr_expect(!cf_pcache_load(c, "-DX=2", &got, &n), "other options hit");
  cf_pcache *d = open_fake("1.1");
  cr_expect(!cf_pcache_load(d, "-DX=1", &got, &n), "another driver version hit");
  char pc[1024], pd[1024];
  cr_assert(cf_pcache_path(c, "-DX=1", pc, sizeof pc) && cf_pcache_path(d, "-DX=1", pd, sizeof pd));
  cr_expect(strcmp(pc, pd) != 0, "two keys, one file name: %s", pc);
  cr_expect(strncmp(pc, cache_dir, strlen(cache_dir)) == 0, "%s is not under %s", pc, cache_dir);
  /* the other driver's file under this driver's name: the key inside tells them apart */
  cf_pcache_store(d, "-DX=1", bin, 100);
  blob other = read_file(pd);
  write_file(pc, other.data, other.size);
  free(other.data);
  cr_expect(!cf_pcache_load(c, "-DX=1", &got, &n), "a file of another key hit");
  cf_pcache_stats s = stats();
  cr_expect(s.stores == 2 && s.hits == 1 && s.misses == 4, "%llu stores, %llu hits, %llu "
            "misses; want 2, 1, 4", (unsigned long long)s.stores, (unsigned long long)s.hits,
            (unsigned long long)s.misses);
  cf_pcache_close(c);
  cf_pcache_close(d);
  cr_expect(cf_pcache_load(NULL, "-DX=1", &got, &n) == 0 && got == NULL, "NULL cache hit");
  cf_pcache_store(NULL, "-DX=1", bin, 10); /* off: nothing, no crash */
}

Test(program_cache, open_is_off_without_a_usable_directory) {
  unsetenv("XDG_CACHE_HOME");
  unsetenv("HOME");
  const cf_pcache_device dev = {"p", "v", "d", "vendor", "dv", "drv"};
  cr_expect(cf_pcache_open(&dev, "00", 0) == NULL, "a cache without XDG_CACHE_HOME and HOME");
  setenv("HOME", "relative-home", 1);
  cr_expect(cf_pcache_open(&dev, "00", 0) == NULL, "a cache under a relative HOME");
  setenv("XDG_CACHE_HOME", xdg, 1);
  setenv("CONVFUSE_CACHE", "0", 1);
  cr_expect(cf_pcache_open(&dev, "00", 0) == NULL, "a cache with CONVFUSE_CACHE=0");
}

/* ---- ptx_patch.h: the register cap written into NVIDIA's PTX (pure text; no device) ---- */
#include "ptx_patch.h"

static const char two_entries[] =
    "//\n.version 9.0\n.target sm_90, texmode_independent\n"
    ".entry first(\n\t.param .u64 .ptr .global .align 4 first_param_0\n)\n"
    ".reqntid 128, 1, 1\n{\n\tret;\n}\n"
    "\t// .globl\tsecond\n.entry second(\n)\n{\n\t{ ret; }\n}\n";

Test(ptx_patch, caps_every_entry_before_its_body) {
  size_t len = 0;
  char *out = cf_ptx_with_max_registers(two_entries, sizeof two_entries - 1, 128, &len);
  cr_assert(out != NULL);
  cr_expect(len == strlen(out) && len == sizeof two_entries - 1 + 2 * strlen(".maxnreg 128\n"));
  cr_expect(strstr(out, ".reqntid 128, 1, 1\n.maxnreg 128\n{\n\tret;") != NULL, "%s", out);
  cr_expect(strstr(out, ".entry second(\n)\n.maxnreg 128\n{\n\t{ ret; }") != NULL, "%s", out);
  /* only the inserted lines differ */
  cr_expect(strncmp(out, two_entries, (size_t)(strstr(two_entries, "{") - two_entries)) == 0);
  free(out);
}

Test(ptx_patch, refuses_what_it_cannot_cap) {
  size_t len = 7;
  /* no entry; a cap already there; caps outside 1..255; an entry without a body */
  cr_expect(cf_ptx_with_max_registers(".version 9.0\n", 13, 128, &len) == NULL);
  size_t n = 0;
  char *capped = cf_ptx_with_max_registers(two_entries, sizeof two_entries - 1, 64, &n);
  cr_assert(capped != NULL);
  cr_expect(cf_ptx_with_max_registers(capped, n, 128, &len) == NULL);
  free(capped);
  cr_expect(cf_ptx_with_max_registers(two_entries, sizeof two_entries - 1, 0, &len) == NULL);
  cr_expect(cf_ptx_with_max_registers(two_entries, sizeof two_entries - 1, 256, &len) == NULL);
  cr_expect(cf_ptx_with_max_registers(".entry f(\n)", 11, 128, &len) == NULL);
  cr_expect(cf_ptx_with_max_registers(NULL, 0, 128, &len) == NULL);
  cr_expect(len == 7, "a refusal wrote the length");
}

/* ---- ptx_patch.h: the wgmma program's PTX made sm_90a (kernels_cl/conv2d_wgmma.cl) ---- */
static const char marked[] =
    "//\n.version 9.0\n.target sm_90, texmode_independent\n.address_size 64\n"
    ".entry k(\n)\n{\n\t// CFWG wgmma.fence.sync.aligned;\n"
    "\t{\n.reg .pred p;\nsetp.ne.b32 p, %r1, 0;\n// CFWG wgmma.mma_async.sync.aligned."
    "m64n64k16.f32.f16.f16 {%f1}, {%r2}, %rd1, p, 1, 1, 0;\n}\n"
    "\t// a comment of the compiler's own\n\tret;\n}\n";

Test(ptx_patch, sm90a_turns_the_markers_into_instructions) {
  size_t len = 0;
  char *out = cf_ptx_for_sm90a(marked, sizeof marked - 1, &len);
  cr_assert(out != NULL);
  cr_expect(len == strlen(out) && len == sizeof marked - 1 - 2 * strlen(CF_PTX_WGMMA_MARKER) + 1);
  cr_expect(strstr(out, "\n.target sm_90a, texmode_independent\n") != NULL, "%s", out);
  cr_expect(strstr(out, "{\n\twgmma.fence.sync.aligned;\n") != NULL, "%s", out);
  cr_expect(strstr(out, "\nwgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%f1}") != NULL,
            "%s", out);
  cr_expect(strstr(out, "CFWG") == NULL && strstr(out, "// a comment of the compiler's own"),
            "%s", out);
  free(out);
}

Test(ptx_patch, sm90a_refuses_other_targets_and_unmarked_ptx) {
  size_t len = 7;
  /* no marker: nothing to rebuild (a program built without them would compute garbage) */
  cr_expect(cf_ptx_for_sm90a(two_entries, sizeof two_entries - 1, &len) == NULL);
  /* targets that are not exactly sm_90 */
  static const char *const others[] = {".target sm_90a\n// CFWG x\n", ".target sm_80\n// CFWG x\n",
                                       ".target sm_900\n// CFWG x\n", "// CFWG x\n"};
  for (size_t i = 0; i < sizeof others / sizeof others[0]; ++i)
    cr_expect(cf_ptx_for_sm90a(others[i], strlen(others[i]), &len) == NULL, "%s", others[i]);
  cr_expect(cf_ptx_for_sm90a(NULL, 0, &len) == NULL);
  cr_expect(len == 7, "a refusal wrote the length");
  /* a target line at the very end, no newline */
  const char tail[] = "// CFWG y\n.target sm_90";
  char *out = cf_ptx_for_sm90a(tail, sizeof tail - 1, &len);
  cr_assert(out != NULL);
  cr_expect(strcmp(out, "y\n.target sm_90a") == 0 && len == strlen(out), "%s", out);
  free(out);
}

Test(ptx_patch, reads_only_len_bytes) {
  /* the driver's binary need not end in a NUL: the text past len is not PTX */
  char buf[sizeof two_entries + 16];
  memcpy(buf, two_entries, sizeof two_entries - 1);
  memcpy(buf + sizeof two_entries - 1, ".entry junk(\n)\n{", 16);
  size_t len = 0;
  char *out = cf_ptx_with_max_registers(buf, sizeof two_entries - 1, 100, &len);
  cr_assert(out != NULL);
  cr_expect(strstr(out, "junk") == NULL && len == strlen(out));
  free(out);
}

#endif /* CONVFUSE_TEST_HAVE_OPENCL */
