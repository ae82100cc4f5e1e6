/* test_env: backend selection through the environment (CONVFUSE_BACKEND,
 * CONVFUSE_OPENCL_DEVICE, CONVFUSE_VERBOSE, CONVFUSE_TILE, CONVFUSE_STAGES,
 * CONVFUSE_OPENCL_TENSOR_CORES, CONVFUSE_CACHE, CONVFUSE_OPENCL_MAX_REGISTERS, CONVFUSE_TMA,
 * CONVFUSE_FLAT, CONVFUSE_OPENCL_SWITCHES, CONVFUSE_F16) and the
 * per-thread cf_last_error.
 * Criterion runs every test in its own process, so setenv here cannot leak between tests. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_constants.h"
#include "convfuse/convfuse.h"
#include "env.h"
#include "test_util.h"

static void clear_env(void) {
  unsetenv("CONVFUSE_BACKEND");
  unsetenv("CONVFUSE_OPENCL_DEVICE");
  unsetenv("CONVFUSE_VERBOSE");
  unsetenv("CONVFUSE_TILE");
  unsetenv("CONVFUSE_STAGES");
  unsetenv("CONVFUSE_OPENCL_TENSOR_CORES");
  unsetenv("CONVFUSE_CACHE");
  unsetenv("CONVFUSE_OPENCL_MAX_REGISTERS");
  unsetenv("CONVFUSE_TMA");
  unsetenv("CONVFUSE_FLAT");
  unsetenv("CONVFUSE_OPENCL_SWITCHES");
  unsetenv("CONVFUSE_F16");
  unsetenv("CONVFUSE_STORE_PAIRS");
  unsetenv("CONVFUSE_ROW_STORES");
}

/* Creates a context with CF_BACKEND_AUTO under CONVFUSE_BACKEND=value. */
static cf_status create_with_env(const char *value, cf_context **ctx) {
  if (value)
    setenv("CONVFUSE_BACKEND", value, 1);
  else
    unsetenv("CONVFUSE_BACKEND");
  *ctx = NULL;
  return cf_context_create(CF_BACKEND_AUTO, ctx);
}

TestSuite(env, .init = clear_env);

Test(env, cpu_any_case_selects_cpu) {
  const char *values[] = {"cpu", "CPU", "Cpu", "cPU"};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; ++i) {
    cf_context *ctx;
    cf_status s = create_with_env(values[i], &ctx);
    cr_expect(s == CF_OK, "CONVFUSE_BACKEND=%s: %s: %s", values[i], cf_status_string(s),
              cf_last_error());
    cr_expect(cf_context_backend(ctx) == CF_BACKEND_CPU, "CONVFUSE_BACKEND=%s gave %s", values[i],
              cf_backend_name(cf_context_backend(ctx)));
    cf_context_destroy(ctx);
  }
}

/* With the environment cleared: which backend AUTO must pick (DESIGN.md order). */
static cf_backend expected_auto(void) {
  if (cf_backend_available(CF_BACKEND_CUDA))
    return CF_BACKEND_CUDA;
  if (cf_backend_available(CF_BACKEND_OPENCL))
    return CF_BACKEND_OPENCL;
  return CF_BACKEND_CPU;
}

Test(env, auto_unset_and_empty_pick_an_available_backend) {
  cf_backend want = expected_auto();
  const char *values[] = {NULL, "", "auto", "AUTO", "Auto"};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; ++i) {
    cf_context *ctx;
    cf_status s = create_with_env(values[i], &ctx);
    const char *shown = values[i] ? values[i] : "(unset)";
    cr_expect(s == CF_OK, "CONVFUSE_BACKEND=%s: %s: %s", shown, cf_status_string(s),
              cf_last_error());
    if (s != CF_OK)
      continue;
    cf_backend got = cf_context_backend(ctx);
    cr_expect(got != CF_BACKEND_AUTO, "context reports backend auto");
    cr_expect(got == want, "CONVFUSE_BACKEND=%s picked %s, want %s (CUDA, then OpenCL, then CPU)",
              shown, cf_backend_name(got), cf_backend_name(want));
    cr_expect(cf_context_device(ctx)[0] != '\0', "empty device name");
    cf_context_destroy(ctx);
  }
  cr_expect(cf_backend_available(CF_BACKEND_AUTO) == 1, "cf_backend_available(AUTO) = 0: %s",
            cf_last_error());
  cr_expect(cf_backend_available(CF_BACKEND_CPU) == 1, "CPU unavailable: %s", cf_last_error());
}

Test(env, unknown_values_are_invalid_and_name_the_valid_ones) {
  const char *values[] = {"gpu", "cuda ", " cpu", "opencl2", "cpu,cuda", "none"};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; ++i) {
    cf_context *ctx;
    cf_status s = create_with_env(values[i], &ctx);
    const char *msg = cf_last_error();
    cr_expect(s == CF_ERR_INVALID_ARGUMENT, "CONVFUSE_BACKEND='%s': %s, want invalid argument",
              values[i], cf_status_string(s));
    cr_expect(strstr(msg, "CONVFUSE_BACKEND") != NULL, "message \"%s\" does not name the variable",
              msg);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "'%s'", values[i]);
    cr_expect(strstr(msg, quoted) != NULL, "message \"%s\" does not show the value %s", msg,
              quoted);
    const char *valid[] = {"auto", "cpu", "cuda", "opencl"};
    for (int v = 0; v < 4; ++v)
      cr_expect(strstr(msg, valid[v]) != NULL, "message \"%s\" does not name the valid value %s",
                msg, valid[v]);
    if (s == CF_OK)
      cf_context_destroy(ctx);
    cr_expect(cf_backend_available(CF_BACKEND_AUTO) == 0,
              "cf_backend_available(AUTO) with CONVFUSE_BACKEND='%s' = 1", values[i]);
  }
}

static void expect_unavailable_named(cf_backend b, const char *env_value) {
  unsetenv("CONVFUSE_BACKEND");
  if (cf_backend_available(b)) {
    cr_log_info("%s is available here; the unavailable path is not testable", cf_backend_name(b));
    return;
  }
  char why[512];
  snprintf(why, sizeof why, "%s", cf_last_error());
  cf_context *ctx;
  cf_status s = create_with_env(env_value, &ctx);
  cr_expect(s == CF_ERR_BACKEND_UNAVAILABLE, "CONVFUSE_BACKEND=%s without a device: %s (%s)",
            env_value, cf_status_string(s), cf_last_error());
  const char *msg = cf_last_error();
  cr_expect(strlen(msg) > strlen(cf_backend_name(b)) + 10, "no reason given: \"%s\"", msg);
  cr_expect(strstr(msg, cf_backend_name(b)) != NULL, "message \"%s\" does not name %s", msg,
            cf_backend_name(b));
  /* the explicit enum gives the same answer */
  s = cf_context_create(b, &ctx);
  cr_expect(s == CF_ERR_BACKEND_UNAVAILABLE, "cf_context_create(%s): %s", cf_backend_name(b),
            cf_status_string(s));
  cr_log_info("%s unavailable: %s", cf_backend_name(b), why);
}

Test(env, named_backend_without_device_is_unavailable) {
  expect_unavailable_named(CF_BACKEND_CUDA, "cuda");
  expect_unavailable_named(CF_BACKEND_CUDA, "CUDA");
  expect_unavailable_named(CF_BACKEND_OPENCL, "opencl");
}

Test(env, explicit_backend_ignores_the_variable) {
  const char *values[] = {"opencl", "cuda", "gpu", "auto"};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; ++i) {
    setenv("CONVFUSE_BACKEND", values[i], 1);
    cf_context *ctx = NULL;
    cf_status s = cf_context_create(CF_BACKEND_CPU, &ctx);
    cr_expect(s == CF_OK, "CF_BACKEND_CPU with CONVFUSE_BACKEND=%s: %s: %s", values[i],
              cf_status_string(s), cf_last_error());
    cr_expect(cf_context_backend(ctx) == CF_BACKEND_CPU, "CF_BACKEND_CPU with CONVFUSE_BACKEND=%s "
              "gave %s", values[i], cf_backend_name(cf_context_backend(ctx)));
    cf_context_destroy(ctx);
  }
}

static void require_opencl_compiled_in(void) {
  unsetenv("CONVFUSE_OPENCL_DEVICE");
  if (!cf_backend_available(CF_BACKEND_OPENCL) && strstr(cf_last_error(), "not compiled in"))
    cr_skip_test("OpenCL backend not compiled in: %s", cf_last_error());
}

Test(env, opencl_device_nonsense_substring_is_unavailable) {
  require_opencl_compiled_in();
  const char *nonsense = "no-such-device-xyzzy-42";
  setenv("CONVFUSE_OPENCL_DEVICE", nonsense, 1);
  cf_context *ctx = NULL;
  cf_status s = cf_context_create(CF_BACKEND_OPENCL, &ctx);
  const char *msg = cf_last_error();
  cr_expect(s == CF_ERR_BACKEND_UNAVAILABLE, "CONVFUSE_OPENCL_DEVICE=%s: %s (%s)", nonsense,
            cf_status_string(s), msg);
  cr_expect(strstr(msg, nonsense) != NULL, "message \"%s\" does not show the substring", msg);
  if (s == CF_OK)
    cf_context_destroy(ctx);
  cr_expect(cf_backend_available(CF_BACKEND_OPENCL) == 0,
            "cf_backend_available(OPENCL) = 1 with a nonsense CONVFUSE_OPENCL_DEVICE");
  /* through the environment too */
  s = create_with_env("opencl", &ctx);
  cr_expect(s == CF_ERR_BACKEND_UNAVAILABLE, "CONVFUSE_BACKEND=opencl + nonsense device: %s",
            cf_status_string(s));
  if (s == CF_OK)
    cf_context_destroy(ctx);
}

Test(env, opencl_device_matching_substring_selects_it) {
  require_opencl_compiled_in();
  if (!cf_backend_available(CF_BACKEND_OPENCL))
    cr_skip_test("no OpenCL device: %s", cf_last_error());
  cf_context *ctx = NULL;
  cr_assert(cf_context_create(CF_BACKEND_OPENCL, &ctx) == CF_OK, "%s", cf_last_error());
  char name[256];
  snprintf(name, sizeof name, "%s", cf_context_device(ctx));
  cf_context_destroy(ctx);
  cr_assert(strlen(name) >= 3, "OpenCL device name \"%s\" too short to take a substring of", name);
  /* the first characters of the device's own name must select it (the context's name may be
   * "device (platform)"; the backend matches either name by substring) */
  char sub[8];
  size_t take = strlen(name) >= 5 ? 5 : strlen(name);
  memcpy(sub, name, take);
  sub[take] = '\0';
  setenv("CONVFUSE_OPENCL_DEVICE", sub, 1);
  cf_status s = cf_context_create(CF_BACKEND_OPENCL, &ctx);
  cr_expect(s == CF_OK, "CONVFUSE_OPENCL_DEVICE='%s' (from \"%s\"): %s: %s", sub, name,
            cf_status_string(s), cf_last_error());
  if (s == CF_OK)
    cf_context_destroy(ctx);
}

/* ---- per-thread cf_last_error ---- */

typedef struct thread_result {
  char initial[256];
  char after[256];
  cf_status status;
} thread_result;

static void *other_thread(void *arg) {
  thread_result *r = arg;
  snprintf(r->initial, sizeof r->initial, "%s", cf_last_error());
  cf_buffer *b = NULL;
  r->status = cf_buffer_create(NULL, 8, &b); /* an error of this thread's own */
  snprintf(r->after, sizeof r->after, "%s", cf_last_error());
  return NULL;
}

Test(env, last_error_is_per_thread) {
  cf_plan *plan = NULL;
  cf_conv2d_desc d = {.batch = 0};
  cf_context *ctx = NULL;
  cr_assert(cf_context_create(CF_BACKEND_CPU, &ctx) == CF_OK);
  cf_status s = cf_plan_create(ctx, &d, NULL, 0, CF_MATH_FP32, &plan);
  cr_assert(s == CF_ERR_INVALID_ARGUMENT);
  char mine[256];
  snprintf(mine, sizeof mine, "%s", cf_last_error());
  cr_assert(strstr(mine, "batch") != NULL, "main thread message: %s", mine);

  thread_result r;
  memset(&r, 0, sizeof r);
  pthread_t t;
  cr_assert(pthread_create(&t, NULL, other_thread, &r) == 0);
  pthread_join(t, NULL);
  cr_expect_str_eq(r.initial, "", "a new thread's cf_last_error() is \"%s\", want \"\"", r.initial);
  cr_expect(r.status == CF_ERR_INVALID_ARGUMENT);
  cr_expect(strstr(r.after, "ctx") != NULL, "other thread's own message: \"%s\"", r.after);
  cr_expect_str_eq(cf_last_error(), mine,
                   "the main thread's message changed after another thread's error: \"%s\"",
                   cf_last_error());
  cf_context_destroy(ctx);
}

/* Concurrent contexts on different threads, each with its own errors (header: different
 * contexts may be used from different threads concurrently). */
static void *worker(void *arg) {
  int *ok = arg;
  cf_context *ctx = NULL;
  *ok = 0;
  if (cf_context_create(CF_BACKEND_CPU, &ctx) != CF_OK)
    return NULL;
  const cf_conv2d_desc d = {1, 2, 6, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 0};
  float in[72], w[54], out[108];
  for (int i = 0; i < 72; ++i)
    in[i] = (float)i / 72.0f;
  for (int i = 0; i < 54; ++i)
    w[i] = (float)(i % 7) / 10.0f - 0.3f;
  cf_buffer *bi, *bw, *bo;
  cf_plan *plan;
  int good = cf_buffer_create(ctx, sizeof in, &bi) == CF_OK &&
             cf_buffer_create(ctx, sizeof w, &bw) == CF_OK &&
             cf_buffer_create(ctx, sizeof out, &bo) == CF_OK &&
             cf_plan_create(ctx, &d, NULL, 0, CF_MATH_FP32, &plan) == CF_OK;
  for (int it = 0; good && it < 50; ++it) {
    good = cf_buffer_write(bi, 0, in, sizeof in) == CF_OK &&
           cf_buffer_write(bw, 0, w, sizeof w) == CF_OK &&
           cf_plan_execute(plan, bi, bw, NULL, bo) == CF_OK &&
           cf_buffer_read(bo, 0, out, sizeof out) == CF_OK;
    /* an error in between: must not disturb the other threads */
    good = good && cf_buffer_write(bi, 1u << 20, in, 4) == CF_ERR_INVALID_ARGUMENT &&
           strstr(cf_last_error(), "cf_buffer_write") != NULL;
  }
  if (good) {
    cf_buffer_destroy(bi);
    cf_buffer_destroy(bw);
    cf_buffer_destroy(bo);
    cf_plan_destroy(plan);
  }
  cf_context_destroy(ctx);
  *ok = good;
  return NULL;
}

Test(env, contexts_on_several_threads) {
  enum { T = 4 };
  pthread_t t[T];
  int ok[T];
  for (int i = 0; i < T; ++i)
    cr_assert(pthread_create(&t[i], NULL, worker, &ok[i]) == 0);
  for (int i = 0; i < T; ++i) {
    pthread_join(t[i], NULL);
    cr_expect(ok[i], "thread %d failed", i);
  }
}

/* ---- CONVFUSE_VERBOSE ---- */

/* Runs fn with stderr (fd 2) captured into buf. */
static void capture_stderr(void (*fn)(void), char *buf, size_t len) {
  fflush(stderr);
  FILE *tmp = tmpfile();
  cr_assert(tmp != NULL);
  int saved = dup(2);
  cr_assert(saved >= 0 && dup2(fileno(tmp), 2) >= 0);
  fn();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(tmp);
  size_t n = fread(buf, 1, len - 1, tmp);
  buf[n] = '\0';
  fclose(tmp);
}

/* Sets the variable name to value (NULL: unsets it) and runs read with stderr captured. */
static void read_env_as(const char *name, const char *value, void (*read)(void), char *buf,
                        size_t len) {
  if (value)
    setenv(name, value, 1);
  else
    unsetenv(name);
  capture_stderr(read, buf, len);
}

static void make_context_and_plan(void) {
  cf_context *ctx = NULL;
  cr_assert(cf_context_create(CF_BACKEND_CPU, &ctx) == CF_OK);
  cf_conv2d_desc d = {1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1};
  cf_op ops[2] = {{CF_OP_SUB, 0.5f}, {CF_OP_MISH, 0}};
  cf_plan *plan = NULL;
  cr_assert(cf_plan_create(ctx, &d, ops, 2, CF_MATH_FP32, &plan) == CF_OK);
  cf_plan_destroy(plan);
  cf_context_destroy(ctx);
}

Test(env, verbose_prints_backend_and_plan) {
  setenv("CONVFUSE_VERBOSE", "1", 1);
  char buf[4096];
  capture_stderr(make_context_and_plan, buf, sizeof buf);
  cr_expect(strstr(buf, "cpu") != NULL, "CONVFUSE_VERBOSE=1 did not print the backend: \"%s\"",
            buf);
  cr_expect(strstr(buf, "mish") != NULL, "CONVFUSE_VERBOSE=1 did not print the plan: \"%s\"", buf);
}

Test(env, verbose_off_prints_nothing) {
  char buf[4096];
  setenv("CONVFUSE_VERBOSE", "0", 1);
  capture_stderr(make_context_and_plan, buf, sizeof buf);
  cr_expect_str_eq(buf, "", "CONVFUSE_VERBOSE=0 printed: \"%s\"", buf);
  unsetenv("CONVFUSE_VERBOSE");
  capture_stderr(make_context_and_plan, buf, sizeof buf);
  cr_expect_str_eq(buf, "", "CONVFUSE_VERBOSE unset printed: \"%s\"", buf);
}

Test(env, verbose_typo_warns_and_stays_quiet) {
  char buf[4096];
  setenv("CONVFUSE_VERBOSE", "yes", 1);
  capture_stderr(make_context_and_plan, buf, sizeof buf);
  cr_expect(strstr(buf, "CONVFUSE_VERBOSE") != NULL && strstr(buf, "yes") != NULL,
            "CONVFUSE_VERBOSE=yes: no warning naming the value: \"%s\"", buf);
  cr_expect(strstr(buf, "plan") == NULL, "CONVFUSE_VERBOSE=yes printed the plan: \"%s\"", buf);
}

/* CONVFUSE_TILE is a tuning knob: a bad value is ignored with a warning naming it, and the
 * planner chooses as if it were unset (never an error, never a crash). */
static void make_plan_and_run(void) {
  cf_context *ctx = NULL;
  cr_assert(cf_context_create(CF_BACKEND_CPU, &ctx) == CF_OK, "%s", cf_last_error());
  tu_problem pb;
  const cf_conv2d_desc d = {1, 2, 7, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  const cf_op ops[1] = {{CF_OP_MISH, 0}};
  tu_problem_init(&pb, &d, ops, 1, CF_MATH_FP32, TU_DIST_RAND, 3);
  const char *where = "";
  cf_status s = tu_run_on_context(ctx, &pb, &where);
  cr_expect(s == CF_OK, "%s: %s", where, cf_last_error());
  tu_check res;
  tu_check_output(&pb, &res);
  cr_expect(res.ok, "%s", res.summary);
  tu_problem_free(&pb);
  cf_context_destroy(ctx);
}

Test(env, tile_bad_values_warn_and_are_ignored) {
  const char *values[] = {"99", "0", "-1", "abc", "3x", "17"};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; ++i) {
    char buf[4096];
    setenv("CONVFUSE_TILE", values[i], 1);
    capture_stderr(make_plan_and_run, buf, sizeof buf);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "'%s'", values[i]);
    cr_expect(strstr(buf, "CONVFUSE_TILE") != NULL && strstr(buf, quoted) != NULL,
              "CONVFUSE_TILE=%s: no warning naming the value: \"%s\"", values[i], buf);
  }
  unsetenv("CONVFUSE_TILE");
}

/* ---- CONVFUSE_OPENCL_TENSOR_CORES ---- */

/* A wide-row problem (the MMA kernels' shape) planned on an OpenCL context; its description
 * in desc (empty when OpenCL is unavailable). */
static char tc_desc[1024];
static void plan_wide_on_opencl(void) {
  tc_desc[0] = '\0';
  if (!cf_backend_available(CF_BACKEND_OPENCL))
    return;
  cf_context *ctx = NULL;
  cr_assert(cf_context_create(CF_BACKEND_OPENCL, &ctx) == CF_OK, "%s", cf_last_error());
  const cf_conv2d_desc d = {2, 5, 9, 300, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  const cf_op ops[1] = {{CF_OP_MISH, 0}};
  cf_plan *plan = NULL;
  cr_assert(cf_plan_create(ctx, &d, ops, 1, CF_MATH_TF32, &plan) == CF_OK, "%s",
            cf_last_error());
  snprintf(tc_desc, sizeof tc_desc, "%s", cf_plan_describe(plan));
  cf_plan_destroy(plan);
  cf_context_destroy(ctx);
}

Test(env, opencl_tensor_cores_0_plans_ffma_and_says_why) {
  setenv("CONVFUSE_OPENCL_TENSOR_CORES", "0", 1);
  char buf[4096];
  capture_stderr(plan_wide_on_opencl, buf, sizeof buf);
  if (!tc_desc[0])
    cr_skip_test("no OpenCL device");
  cr_expect(strstr(tc_desc, "kernel=ffma_tiled") != NULL,
            "CONVFUSE_OPENCL_TENSOR_CORES=0 still planned: \"%s\"", tc_desc);
  cr_expect(strstr(tc_desc, "CONVFUSE_OPENCL_TENSOR_CORES=0") != NULL,
            "the plan does not say the variable turned tensor cores off: \"%s\"", tc_desc);
  cr_expect_str_eq(buf, "", "CONVFUSE_OPENCL_TENSOR_CORES=0 printed: \"%s\"", buf);
}

Test(env, opencl_tensor_cores_bad_values_warn_and_are_ignored) {
  const char *values[] = {"yes", "2", "00", " 1", "on"};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; ++i) {
    char buf[4096];
    setenv("CONVFUSE_OPENCL_TENSOR_CORES", values[i], 1);
    capture_stderr(plan_wide_on_opencl, buf, sizeof buf);
    if (!tc_desc[0])
      cr_skip_test("no OpenCL device");
    char quoted[64];
    snprintf(quoted, sizeof quoted, "'%s'", values[i]);
    cr_expect(strstr(buf, "CONVFUSE_OPENCL_TENSOR_CORES") != NULL && strstr(buf, quoted) != NULL,
              "CONVFUSE_OPENCL_TENSOR_CORES=%s: no warning naming the value: \"%s\"", values[i],
              buf);
    cr_expect(strstr(tc_desc, "CONVFUSE_OPENCL_TENSOR_CORES=0") == NULL,
              "CONVFUSE_OPENCL_TENSOR_CORES=%s acted as 0: \"%s\"", values[i], tc_desc);
  }
}

/* Unset (or 1): tensor cores where the probe passes (an NVIDIA GPU), else the FFMA kernel
 * with the reason in the plan. */
Test(env, opencl_tensor_cores_default_says_which_path) {
  const char *values[] = {NULL, "1"};
  for (size_t i = 0; i < 2; ++i) {
    if (values[i])
      setenv("CONVFUSE_OPENCL_TENSOR_CORES", values[i], 1);
    plan_wide_on_opencl();
    if (!tc_desc[0])
      cr_skip_test("no OpenCL device");
    int mma = strstr(tc_desc, "kernel=mma_tf32") != NULL;
    cr_expect(mma || (strstr(tc_desc, "kernel=ffma_tiled") != NULL &&
                      strstr(tc_desc, "not mma_tf32: ") != NULL),
              "neither a tensor-core plan nor an FFMA plan saying why not: \"%s\"", tc_desc);
    cr_log_info("CONVFUSE_OPENCL_TENSOR_CORES=%s: %s", values[i] ? values[i] : "(unset)",
                tc_desc);
  }
}

/* "emulate" in any case: the tensor-core kernel without its PTX (what it computes:
 * test_cl_mma_emulated); "0" and "1" as ever, nothing printed for any of them. */
static int tensor_cores_value;
static void read_tensor_cores_env(void) { tensor_cores_value = cf_env_opencl_tensor_cores(); }

Test(env, opencl_tensor_cores_emulate_0_and_1_parse_quietly) {
  const struct {
    const char *value;
    int want;
  } cases[] = {{"emulate", CF_ENV_TENSOR_CORES_EMULATE}, {"EMULATE", CF_ENV_TENSOR_CORES_EMULATE},
               {"Emulate", CF_ENV_TENSOR_CORES_EMULATE}, {"0", CF_ENV_TENSOR_CORES_OFF},
               {"1", CF_ENV_TENSOR_CORES_ON},            {"", CF_ENV_TENSOR_CORES_ON}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    setenv("CONVFUSE_OPENCL_TENSOR_CORES", cases[i].value, 1);
    char buf[512];
    capture_stderr(read_tensor_cores_env, buf, sizeof buf);
    cr_expect_eq(tensor_cores_value, cases[i].want,
                 "CONVFUSE_OPENCL_TENSOR_CORES='%s': %d, want %d", cases[i].value,
                 tensor_cores_value, cases[i].want);
    cr_expect_str_eq(buf, "", "CONVFUSE_OPENCL_TENSOR_CORES='%s' printed: \"%s\"", cases[i].value,
                     buf);
  }
  setenv("CONVFUSE_OPENCL_TENSOR_CORES", "emulated", 1); /* close is not good enough */
  char buf[512];
  capture_stderr(read_tensor_cores_env, buf, sizeof buf);
  cr_expect(tensor_cores_value == CF_ENV_TENSOR_CORES_ON && strstr(buf, "'emulated'") != NULL &&
                strstr(buf, "emulate)") != NULL,
            "'emulated': %d, warning \"%s\"", tensor_cores_value, buf);
}

/* ---- CONVFUSE_CACHE (what it does to the cache: test_program_cache) ---- */

static int cache_value;
static void read_cache_env(void) { cache_value = cf_env_cache(); }

Test(env, cache_unset_empty_and_1_are_on_0_is_off) {
  const char *values[] = {NULL, "", "1", "0"};
  const int want[] = {1, 1, 1, 0};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; ++i) {
    char buf[1024];
    read_env_as("CONVFUSE_CACHE", values[i], read_cache_env, buf, sizeof buf);
    cr_expect(cache_value == want[i], "CONVFUSE_CACHE=%s: %d, want %d",
              values[i] ? values[i] : "(unset)", cache_value, want[i]);
    cr_expect_str_eq(buf, "", "CONVFUSE_CACHE=%s printed: \"%s\"",
                     values[i] ? values[i] : "(unset)", buf);
  }
}

Test(env, cache_bad_values_warn_and_leave_it_on) {
  const char *values[] = {"yes", "2", "00", " 0", "off", "false"};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; ++i) {
    char buf[1024];
    read_env_as("CONVFUSE_CACHE", values[i], read_cache_env, buf, sizeof buf);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "'%s'", values[i]);
    cr_expect(cache_value == 1, "CONVFUSE_CACHE=%s turned the cache off", values[i]);
    cr_expect(strstr(buf, "CONVFUSE_CACHE") != NULL && strstr(buf, quoted) != NULL,
              "CONVFUSE_CACHE=%s: no warning naming the value: \"%s\"", values[i], buf);
  }
}

/* ---- CONVFUSE_OPENCL_MAX_REGISTERS (the OpenCL tensor-core kernel's register cap) ---- */

static int maxreg_value;
static void read_maxreg_env(void) { maxreg_value = cf_env_opencl_max_registers(128); }

/* unset -> the backend's default (here 128); 0 -> no cap; 32..255 -> that; the rest warn,
 * naming the value, and keep the default */
Test(env, opencl_max_registers_reads_0_and_32_to_255_and_warns_on_the_rest) {
  const char *values[] = {NULL, "", "0", "32", "96", "255", "31", "256", "-1", "12x", "6 4"};
  const int want[] = {128, 128, 0, 32, 96, 255, 128, 128, 128, 128, 128};
  const size_t first_bad = 6;
  for (size_t i = 0; i < sizeof values / sizeof values[0]; ++i) {
    char buf[1024], quoted[64];
    read_env_as("CONVFUSE_OPENCL_MAX_REGISTERS", values[i], read_maxreg_env, buf, sizeof buf);
    cr_expect(maxreg_value == want[i], "CONVFUSE_OPENCL_MAX_REGISTERS=%s: %d, want %d",
              values[i] ? values[i] : "(unset)", maxreg_value, want[i]);
    snprintf(quoted, sizeof quoted, "CONVFUSE_OPENCL_MAX_REGISTERS='%s'",
             values[i] ? values[i] : "");
    cr_expect((strstr(buf, quoted) != NULL) == (i >= first_bad),
              "CONVFUSE_OPENCL_MAX_REGISTERS=%s printed: \"%s\"",
              values[i] ? values[i] : "(unset)", buf);
  }
}

/* ---- CONVFUSE_TMA, CONVFUSE_FLAT and CONVFUSE_STORE_PAIRS (the same switch; what they
 * change is the CUDA plan's patch loads, tiles and stores) ---- */

static int switch_value;

/* A switch's name and the function that reads it into switch_value. */
typedef struct {
  const char *name;
  void (*read)(void);
} switch_reader;

/* Each switch read under each of values[5] gives want[i]; only values[4] ("yes") warns. */
static void expect_switch_reads(const switch_reader *switches, size_t n,
                                const char *const values[5], const int want[5]) {
  for (size_t k = 0; k < n; ++k)
    for (size_t i = 0; i < 5; ++i) {
      char buf[1024], warning[64];
      read_env_as(switches[k].name, values[i], switches[k].read, buf, sizeof buf);
      cr_expect(switch_value == want[i], "%s=%s: %d, want %d", switches[k].name,
                values[i] ? values[i] : "(unset)", switch_value, want[i]);
      snprintf(warning, sizeof warning, "%s='yes'", switches[k].name);
      const int warned = strstr(buf, warning) != NULL;
      cr_expect(warned == (i == 4), "%s=%s printed: \"%s\"", switches[k].name,
                values[i] ? values[i] : "(unset)", buf);
    }
}

static void read_tma_env(void) { switch_value = cf_env_tma(); }
static void read_flat_env(void) { switch_value = cf_env_flat(); }
static void read_store_pairs_env(void) { switch_value = cf_env_store_pairs(); }
static void read_store_aligned_env(void) { switch_value = cf_env_store_aligned(); }

Test(env, tma_flat_and_store_switches_read_like_the_others) {
  const switch_reader switches[] = {{"CONVFUSE_TMA", read_tma_env},
                                    {"CONVFUSE_FLAT", read_flat_env},
                                    {"CONVFUSE_STORE_PAIRS", read_store_pairs_env},
                                    {"CONVFUSE_STORE_ALIGNED", read_store_aligned_env}};
  const char *const values[5] = {NULL, "", "1", "0", "yes"};
  const int want[5] = {1, 1, 1, 0, 1};
  expect_switch_reads(switches, sizeof switches / sizeof switches[0], values, want);
}

/* ---- CONVFUSE_F16 (-1: the default, fp16 for both maths; 0: never; 1: the default too) and
 * CONVFUSE_ROW_STORES (-1: by the device; 0: boxes; 1: rows) ---- */

static void read_f16_env(void) { switch_value = cf_env_f16(); }
static void read_row_stores_env(void) { switch_value = cf_env_row_stores(); }

Test(env, f16_and_row_stores_by_default_unless_0_or_1) {
  const switch_reader switches[] = {{"CONVFUSE_F16", read_f16_env},
                                    {"CONVFUSE_ROW_STORES", read_row_stores_env}};
  const char *const values[5] = {NULL, "", "0", "1", "yes"};
  const int want[5] = {-1, -1, 0, 1, -1};
  expect_switch_reads(switches, sizeof switches / sizeof switches[0], values, want);
}

/* ---- CONVFUSE_ROW_CHANNELS (-1: the backend's default; 0: off; 1: on at the default stage
 * count; 2..5: that many stages, the kernels there are) and CONVFUSE_ROW_CHANNELS_RESIDENT
 * (-1: the backend's default; 0 / 1) ---- */

static void read_row_channels_env(void) { switch_value = cf_env_row_channels(); }

Test(env, row_channels_off_on_or_a_stage_count) {
  const char *const values[] = {NULL, "", "0", "1", "2", "3", "4", "5", "6", "yes", "44", "-1"};
  const int want[] = {-1, -1, 0, 1, 2, 3, 4, 5, -1, -1, -1, -1};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; ++i) {
    char buf[1024];
    read_env_as("CONVFUSE_ROW_CHANNELS", values[i], read_row_channels_env, buf, sizeof buf);
    cr_expect(switch_value == want[i], "CONVFUSE_ROW_CHANNELS=%s: %d, want %d",
              values[i] ? values[i] : "(unset)", switch_value, want[i]);
    const int warned = strstr(buf, "ignoring CONVFUSE_ROW_CHANNELS") != NULL;
    cr_expect(warned == (i >= 8), "CONVFUSE_ROW_CHANNELS=%s printed: \"%s\"",
              values[i] ? values[i] : "(unset)", buf);
  }
}

static void read_row_channels_resident_env(void) {
  switch_value = cf_env_row_channels_resident();
}

Test(env, row_channels_resident_is_a_tristate) {
  const char *const values[] = {NULL, "", "0", "1", "2", "on"};
  const int want[] = {-1, -1, 0, 1, -1, -1};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; ++i) {
    char buf[1024];
    read_env_as("CONVFUSE_ROW_CHANNELS_RESIDENT", values[i], read_row_channels_resident_env, buf,
                sizeof buf);
    cr_expect(switch_value == want[i], "CONVFUSE_ROW_CHANNELS_RESIDENT=%s: %d, want %d",
              values[i] ? values[i] : "(unset)", switch_value, want[i]);
    const int warned = strstr(buf, "ignoring CONVFUSE_ROW_CHANNELS_RESIDENT") != NULL;
    cr_expect(warned == (i >= 4), "CONVFUSE_ROW_CHANNELS_RESIDENT=%s printed: \"%s\"",
              values[i] ? values[i] : "(unset)", buf);
  }
}

#ifdef CONVFUSE_TEST_HAVE_CUDA
/* backends/cuda/cuda_internal.h (that header needs the CUDA runtime's) */
int cf_cuda_row_stores_choose(int env, double dram_bytes_per_s);

/* Rows below 4 TB/s of DRAM (H100 SXM: 3.35), boxes above (H200: 4.8) or where the driver
 * does not say; the switch overrides either way. */
Test(env, row_stores_by_the_dram_bandwidth_unless_forced) {
  const double h100 = 3.35e12, h200 = 4.8e12;
  cr_expect(cf_cuda_row_stores_choose(-1, h100) == 1);
  cr_expect(cf_cuda_row_stores_choose(-1, h200) == 0);
  cr_expect(cf_cuda_row_stores_choose(-1, 0.0) == 0);
  cr_expect(cf_cuda_row_stores_choose(0, h100) == 0);
  cr_expect(cf_cuda_row_stores_choose(1, h200) == 1);
}
#endif

/* ---- CONVFUSE_STAGES (a tuning cap on the TMA kernels' pipeline depth) ---- */

static int stages_value;
static void read_stages_env(void) { stages_value = cf_env_stages(); }

Test(env, stages_reads_2_to_the_maximum_and_warns_on_the_rest) {
  char max[8], over[8];
  snprintf(max, sizeof max, "%d", CFK_MMA_MAX_STAGES);
  snprintf(over, sizeof over, "%d", CFK_MMA_MAX_STAGES + 1);
  const char *values[] = {NULL, "", "2", max, "1", "0", over, "3x", "abc"};
  const int want[] = {0, 0, 2, CFK_MMA_MAX_STAGES, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; ++i) {
    char buf[1024];
    read_env_as("CONVFUSE_STAGES", values[i], read_stages_env, buf, sizeof buf);
    cr_expect(stages_value == want[i], "CONVFUSE_STAGES=%s: %d, want %d",
              values[i] ? values[i] : "(unset)", stages_value, want[i]);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "CONVFUSE_STAGES='%s'", values[i] ? values[i] : "");
    const int warned = strstr(buf, quoted) != NULL;
    cr_expect(warned == (i >= 4), "CONVFUSE_STAGES=%s printed: \"%s\"",
              values[i] ? values[i] : "(unset)", buf);
  }
  /* a bad value never breaks a plan */
  setenv("CONVFUSE_STAGES", "9", 1);
  make_plan_and_run();
}

/* ---- CONVFUSE_OPENCL_SWITCHES (the OpenCL tensor-core program's switches, forced for A/B
 * runs; whether a program can take one is the backend's call) ---- */

static cf_cl_switches switches_value;
static void read_switches_env(void) { cf_env_opencl_switches(&switches_value); }

Test(env, opencl_switches_read_name_value_pairs_and_warn_on_the_rest) {
  const struct {
    const char *value;
    int want[CF_CL_SWITCHES]; /* ldsm, one_chunk, k_unrolled, aligned_stores, off32, f16,
                                  unscale_regs, patch_split, stages3, wgmma,
                                  channel_pairs, evict_last */
    const char *warning;      /* NULL: none */
  } cases[] = {
      {NULL, {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}, NULL},
      {"", {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}, NULL},
      {"off32=0", {-1, -1, -1, -1, 0, -1, -1, -1, -1, -1, -1, -1}, NULL},
      {"ldsm=1,one_chunk=0,k_unrolled=1,aligned_stores=0,off32=1,f16=1,unscale_regs=1,"
       "patch_split=0,stages3=1,wgmma=0,channel_pairs=1,evict_last=1",
       {1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1},
       NULL},
      {"k_unrolled=0,k_unrolled=1", {-1, -1, 1, -1, -1, -1, -1, -1, -1, -1, -1, -1}, NULL},
      {"ldsm=2,off32=0", {-1, -1, -1, -1, 0, -1, -1, -1, -1, -1, -1, -1}, "'ldsm=2'"},
      {"unroll=1", {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}, "'unroll=1'"},
      {"off32=0,", {-1, -1, -1, -1, 0, -1, -1, -1, -1, -1, -1, -1}, NULL},
      {"aligned_stores", {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}, "'aligned_stores'"},
      {"off32=00", {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}, "'off32=00'"},
      {",ldsm=0", {0, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}, "''"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    char buf[1024];
    read_env_as("CONVFUSE_OPENCL_SWITCHES", cases[i].value, read_switches_env, buf, sizeof buf);
    const char *shown = cases[i].value ? cases[i].value : "(unset)";
    for (int k = 0; k < CF_CL_SWITCHES; ++k)
      cr_expect(switches_value.forced[k] == cases[i].want[k],
                "CONVFUSE_OPENCL_SWITCHES=%s: %s %d, want %d", shown, cf_cl_switch_names[k],
                switches_value.forced[k], cases[i].want[k]);
    if (cases[i].warning)
      cr_expect(strstr(buf, cases[i].warning) && strstr(buf, "CONVFUSE_OPENCL_SWITCHES"),
                "CONVFUSE_OPENCL_SWITCHES=%s printed: \"%s\", want a warning naming %s", shown,
                buf, cases[i].warning);
    else
      cr_expect(buf[0] == '\0', "CONVFUSE_OPENCL_SWITCHES=%s printed: \"%s\"", shown, buf);
  }
  /* forced switches never break a plan: those that cannot apply keep their defaults */
  setenv("CONVFUSE_OPENCL_SWITCHES", "one_chunk=1,ldsm=0,off32=1,k_unrolled=0", 1);
  make_plan_and_run();
}
