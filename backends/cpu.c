/* The CPU backend: host memory and the double-precision reference kernel. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "error.h"
#include "reference.h"

typedef struct cpu_plan {
  cf_plan_spec spec;
  cf_op ops[CF_MAX_OPS + 1]; /* the chain unfolded: shift as one ADD, then the ops */
  int n_ops;
} cpu_plan;

static cf_status cpu_probe(void) { return CF_OK; }

static cf_status cpu_init(void **state, cf_device_caps *caps, char *name, size_t name_len) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  memset(caps, 0, sizeof *caps);
  caps->kind = CF_DEVICE_CPU;
  caps->compute_units = cores > 0 ? (int)cores : 1;
  caps->max_threads_per_block = 1;
  caps->simd_width = 1;
  caps->global_mem_bytes = UINT64_MAX;
  caps->max_alloc_bytes = UINT64_MAX;
  strncpy(name, "host CPU (double-precision reference)", name_len - 1);
  name[name_len - 1] = '\0';
  *state = NULL;
  return CF_OK;
}

static void cpu_destroy(void *state) { (void)state; }

static cf_status cpu_buffer_alloc(void *state, size_t bytes, void **mem) {
  (void)state;
  *mem = malloc(bytes);
  if (!*mem)
    return cf_error(CF_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes of host memory",
                    bytes);
  return CF_OK;
}

static void cpu_buffer_free(void *state, void *mem) {
  (void)state;
  free(mem);
}

static cf_status cpu_buffer_write(void *state, void *mem, size_t offset, const void *src,
                                  size_t bytes) {
  (void)state;
  memmove((char *)mem + offset, src, bytes);
  return CF_OK;
}

static cf_status cpu_buffer_read(void *state, void *mem, size_t offset, void *dst,
                                 size_t bytes) {
  (void)state;
  memmove(dst, (const char *)mem + offset, bytes);
  return CF_OK;
}

static cf_status cpu_plan_compile(void *state, const cf_plan_spec *spec, void **compiled) {
  (void)state;
  cpu_plan *p = calloc(1, sizeof *p);
  if (!p)
    return cf_error(CF_ERR_OUT_OF_MEMORY, "cpu: cannot allocate a plan");
  p->spec = *spec;
  /* The folded shift is exact in double; the reference then adds it in double. */
  if (spec->epilogue.bias_shift != 0.0f)
    p->ops[p->n_ops++] = (cf_op){CF_OP_ADD, spec->epilogue.bias_shift};
  for (int i = 0; i < spec->epilogue.n_ops; ++i)
    p->ops[p->n_ops++] = spec->epilogue.ops[i];
  *compiled = p;
  return CF_OK;
}

static void cpu_plan_release(void *state, void *compiled) {
  (void)state;
  free(compiled);
}

static cf_status cpu_plan_launch(void *state, void *compiled, const void *input,
                                 const void *weight, const void *bias, void *output) {
  (void)state;
  const cpu_plan *p = compiled;
  return cf_reference_run(&p->spec.shape, p->ops, p->n_ops, input, weight, bias, output, 0);
}

static cf_status cpu_synchronize(void *state) {
  (void)state;
  return CF_OK;
}

static const cf_backend_iface cpu_iface = {
    .kind = CF_BACKEND_CPU,
    .kernel_variants = 1u << CF_KERNEL_REFERENCE,
    .probe = cpu_probe,
    .init = cpu_init,
    .destroy = cpu_destroy,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .buffer_write = cpu_buffer_write,
    .buffer_read = cpu_buffer_read,
    .plan_compile = cpu_plan_compile,
    .plan_release = cpu_plan_release,
    .plan_launch = cpu_plan_launch,
    .synchronize = cpu_synchronize,
    .plan_launch_timed = NULL,
};

const cf_backend_iface *cf_backend_cpu(void) { return &cpu_iface; }
