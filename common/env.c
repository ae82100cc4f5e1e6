#include "env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cf_constants.h"
#include "error.h"

cf_status cf_env_backend(const char *fn, cf_backend *out) {
  const char *v = getenv("CONVFUSE_BACKEND");
  static const struct {
    const char *name;
    cf_backend b;
  } names[] = {{"auto", CF_BACKEND_AUTO},
               {"cpu", CF_BACKEND_CPU},
               {"cuda", CF_BACKEND_CUDA},
               {"opencl", CF_BACKEND_OPENCL}};
  *out = CF_BACKEND_AUTO;
  if (!v || !*v)
    return CF_OK;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
    if (strcasecmp(v, names[i].name) == 0) {
      *out = names[i].b;
      return CF_OK;
    }
  return cf_error(CF_ERR_INVALID_ARGUMENT,
                  "%s: CONVFUSE_BACKEND='%.64s' is not a backend (valid: auto, cpu, cuda, "
                  "opencl; case-insensitive)",
                  fn, v);
}

int cf_env_verbose(void) {
  const char *v = getenv("CONVFUSE_VERBOSE");
  if (!v || !*v || (v[0] == '0' && !v[1]))
    return 0;
  if (v[0] == '1' && !v[1])
    return 1;
  fprintf(stderr, "convfuse: ignoring CONVFUSE_VERBOSE='%.32s' (use 0 or 1)\n", v);
  return 0;
}

/* A small integer in [lo, hi]: unset or "" -> 0; out of range or not a number -> 0 with a
 * warning line on stderr. */
static int env_int(const char *name, int lo, int hi) {
  const char *v = getenv(name);
  if (!v || !*v)
    return 0;
  char *end = NULL;
  long t = strtol(v, &end, 10);
  if (*end || t < lo || t > hi) {
    fprintf(stderr, "convfuse: ignoring %s='%.32s' (use %d..%d)\n", name, v, lo, hi);
    return 0;
  }
  return (int)t;
}

int cf_env_tile(void) { return env_int("CONVFUSE_TILE", 1, 16); }

int cf_env_stages(void) { return env_int("CONVFUSE_STAGES", 2, CFK_MMA_MAX_STAGES); }

/* An on/off switch that defaults to on: unset, "" or "1" -> 1; "0" -> 0; anything else -> 1
 * with a warning line on stderr naming the values it takes (`valid`). */
static int env_switch_of(const char *name, const char *valid) {
  const char *v = getenv(name);
  if (!v || !*v || (v[0] == '1' && !v[1]))
    return 1;
  if (v[0] == '0' && !v[1])
    return 0;
  fprintf(stderr, "convfuse: ignoring %s='%.32s' (use %s)\n", name, v, valid);
  return 1;
}

static int env_switch(const char *name) { return env_switch_of(name, "0 or 1"); }

int cf_env_opencl_tensor_cores(void) {
  const char *v = getenv("CONVFUSE_OPENCL_TENSOR_CORES");
  if (v && strcasecmp(v, "emulate") == 0)
    return CF_ENV_TENSOR_CORES_EMULATE;
  return env_switch_of("CONVFUSE_OPENCL_TENSOR_CORES", "0, 1 or emulate")
             ? CF_ENV_TENSOR_CORES_ON
             : CF_ENV_TENSOR_CORES_OFF;
}

int cf_env_cache(void) { return env_switch("CONVFUSE_CACHE"); }

int cf_env_opencl_max_registers(int fallback) {
  const char *v = getenv("CONVFUSE_OPENCL_MAX_REGISTERS");
  if (!v || !*v)
    return fallback;
  if (v[0] == '0' && !v[1])
    return 0;
  const int r = env_int("CONVFUSE_OPENCL_MAX_REGISTERS", 32, 255);
  return r ? r : fallback;
}

const char *const cf_cl_switch_names[CF_CL_SWITCHES] = {
    "ldsm", "one_chunk", "k_unrolled", "aligned_stores", "off32", "f16", "unscale_regs",
    "patch_split", "stages3", "wgmma", "channel_pairs", "evict_last"};

/* One "name=0" or "name=1" entry of length len: the switch's index and value, or -1. */
static int parse_switch(const char *entry, size_t len, int *value) {
  for (int i = 0; i < CF_CL_SWITCHES; ++i) {
    const size_t n = strlen(cf_cl_switch_names[i]);
    if (len == n + 2 && strncmp(entry, cf_cl_switch_names[i], n) == 0 && entry[n] == '=' &&
        (entry[n + 1] == '0' || entry[n + 1] == '1')) {
      *value = entry[n + 1] - '0';
      return i;
    }
  }
  return -1;
}

void cf_env_opencl_switches(cf_cl_switches *out) {
  for (int i = 0; i < CF_CL_SWITCHES; ++i)
    out->forced[i] = -1;
  const char *v = getenv("CONVFUSE_OPENCL_SWITCHES");
  for (const char *entry = v; entry && *entry;) {
    const char *comma = strchr(entry, ',');
    const size_t len = comma ? (size_t)(comma - entry) : strlen(entry);
    int value = 0;
    const int i = parse_switch(entry, len, &value);
    if (i >= 0) {
      out->forced[i] = value;
    } else {
      fprintf(stderr,
              "convfuse: ignoring '%.*s' in CONVFUSE_OPENCL_SWITCHES (use name=0 or name=1, "
              "names:",
              (int)(len < 32 ? len : 32), entry);
      for (int k = 0; k < CF_CL_SWITCHES; ++k)
        fprintf(stderr, "%s %s", k ? "," : "", cf_cl_switch_names[k]);
      fprintf(stderr, ")\n");
    }
    entry = comma ? comma + 1 : NULL;
  }
}

int cf_env_tma(void) { return env_switch("CONVFUSE_TMA"); }

int cf_env_flat(void) { return env_switch("CONVFUSE_FLAT"); }

int cf_env_store_pairs(void) { return env_switch("CONVFUSE_STORE_PAIRS"); }

int cf_env_store_aligned(void) { return env_switch("CONVFUSE_STORE_ALIGNED"); }

/* name unset or "" -> -1 (the caller's default), "0" / "1" -> 0 / 1, anything else -> -1 with
 * a warning line on stderr. */
static int env_tristate(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v)
    return -1;
  if ((v[0] == '0' || v[0] == '1') && !v[1])
    return v[0] - '0';
  fprintf(stderr, "convfuse: ignoring %s='%.32s' (use 0 or 1)\n", name, v);
  return -1;
}

int cf_env_row_stores(void) { return env_tristate("CONVFUSE_ROW_STORES"); }

int cf_env_f16(void) { return env_tristate("CONVFUSE_F16"); }

int cf_env_row_channels(void) {
  const char *v = getenv("CONVFUSE_ROW_CHANNELS");
  if (!v || !*v)
    return -1;
  if (v[0] >= '0' && v[0] <= '5' && !v[1])
    return v[0] - '0';
  fprintf(stderr, "convfuse: ignoring CONVFUSE_ROW_CHANNELS='%.32s' (use 0 to 5)\n", v);
  return -1;
}

int cf_env_row_channels_resident(void) { return env_tristate("CONVFUSE_ROW_CHANNELS_RESIDENT"); }
