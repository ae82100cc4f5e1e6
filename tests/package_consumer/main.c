/* Uses the installed convfuse: a CPU context, a small fused conv, one value checked by hand. */
#include <convfuse/convfuse.h>
#include <math.h>
#include <stdio.h>

int main(void) {
  /* 1x1x3x3 input 1..9, one 3x3 kernel of ones, bias 0.5, then SUB 0.5 and RELU:
   * the single output is 1+2+...+9 = 45. */
  const cf_conv2d_desc d = {1, 1, 3, 3, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1};
  const cf_op ops[2] = {{CF_OP_SUB, 0.5f}, {CF_OP_RELU, 0.0f}};
  float in[9], w[9], b = 0.5f, out = NAN;
  for (int i = 0; i < 9; ++i) {
    in[i] = (float)(i + 1);
    w[i] = 1.0f;
  }
  cf_context *ctx = NULL;
  cf_buffer *bi = NULL, *bw = NULL, *bb = NULL, *bo = NULL;
  cf_plan *plan = NULL;
  cf_status s = cf_context_create(CF_BACKEND_CPU, &ctx);
  if (s == CF_OK) s = cf_buffer_create(ctx, sizeof in, &bi);
  if (s == CF_OK) s = cf_buffer_create(ctx, sizeof w, &bw);
  if (s == CF_OK) s = cf_buffer_create(ctx, sizeof b, &bb);
  if (s == CF_OK) s = cf_buffer_create(ctx, sizeof out, &bo);
  if (s == CF_OK) s = cf_buffer_write(bi, 0, in, sizeof in);
  if (s == CF_OK) s = cf_buffer_write(bw, 0, w, sizeof w);
  if (s == CF_OK) s = cf_buffer_write(bb, 0, &b, sizeof b);
  if (s == CF_OK) s = cf_plan_create(ctx, &d, ops, 2, CF_MATH_FP32, &plan);
  if (s == CF_OK) s = cf_plan_execute(plan, bi, bw, bb, bo);
  if (s == CF_OK) s = cf_buffer_read(bo, 0, &out, sizeof out);
  if (s != CF_OK) {
    fprintf(stderr, "consumer: %s: %s\n", cf_status_string(s), cf_last_error());
    return 1;
  }
  cf_plan_destroy(plan);
  cf_buffer_destroy(bi);
  cf_buffer_destroy(bw);
  cf_buffer_destroy(bb);
  cf_buffer_destroy(bo);
  cf_context_destroy(ctx);
  if (!(fabsf(out - 45.0f) <= 1e-4f)) {
    fprintf(stderr, "consumer: got %g, want 45\n", (double)out);
    return 1;
  }
  printf("OK (convfuse %d.%d.%d, output %g)\n", CONVFUSE_VERSION_MAJOR, CONVFUSE_VERSION_MINOR,
         CONVFUSE_VERSION_PATCH, (double)out);
  return 0;
}
