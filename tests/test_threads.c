/* test_threads: the thread rule of the README and the header, on every available backend.
 *   "A context, and the buffers and plans made from it, are used by one thread at a time;
 *    separate contexts may run concurrently on separate threads. cf_last_error is per
 *    thread."
 * Four threads each open their own context of the backend (at the same time), run the same
 * problems in different orders, several rounds, and must get output bit-identical to a
 * single-threaded run (which is checked against the reference). Between rounds, behind
 * barriers, every thread makes a failure of its own with a value only it uses, waits until
 * all the others have failed too, and checks that its cf_last_error() is still exactly its
 * own message. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convfuse/convfuse.h"
#include "test_util.h"

enum { THREADS = 4, ROUNDS = 3, N_PROBLEMS = 3 };

typedef struct problem_def {
  cf_conv2d_desc desc;
  cf_op ops[3];
  int n_ops;
} problem_def;

static const problem_def defs[N_PROBLEMS] = {
    /* sub-sub-mish in small */
    {{1, 3, 13, 11, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1},
     {{CF_OP_SUB, 0.5f}, {CF_OP_SUB, 0.2f}, {CF_OP_MISH, 0}}, 3},
    /* mish-mish, large enough (5.3e6 MACs) that the CPU backend runs several threads itself */
    {{2, 8, 48, 48, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1}, {{CF_OP_MISH, 0}, {CF_OP_MISH, 0}}, 2},
    /* strides, pads, dilation, no bias */
    {{1, 4, 17, 19, 7, 5, 3, 2, 2, 2, 1, 1, 2, 0}, {{CF_OP_MUL, 1.5f}, {CF_OP_TANH, 0}}, 2},
};

typedef struct shared_state {
  cf_backend backend;
  tu_problem pb[N_PROBLEMS]; /* inputs: read-only while the threads run */
  float *expect[N_PROBLEMS]; /* the single-threaded outputs */
  pthread_barrier_t barrier;
} shared_state;

typedef struct worker {
  shared_state *sh;
  int tid;
  /* results, checked by the main thread (no Criterion assertion off the main thread) */
  int opened;
  char open_error[512];
  int runs, run_failures, mismatches;
  char first_failure[512];
  int message_checks, message_mismatches;
  char message_failure[1024];
} worker;

static void note(char *buf, size_t len, const char *fmt, const char *a, const char *b) {
  if (!buf[0])
    snprintf(buf, len, fmt, a, b);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  shared_state *sh = w->sh;
  cf_context *ctx = NULL;
  cf_status s = cf_context_create(sh->backend, &ctx);
  w->opened = s == CF_OK;
  if (!w->opened)
    snprintf(w->open_error, sizeof w->open_error, "%s: %s", cf_status_string(s),
             cf_last_error());
  /* this thread's copies of the problems: shared inputs, own output */
  tu_problem mine[N_PROBLEMS];
  for (int p = 0; p < N_PROBLEMS; ++p) {
    mine[p] = sh->pb[p];
    mine[p].output = malloc(sh->pb[p].n_out * sizeof(float));
  }
  for (int round = 0; round < ROUNDS; ++round) {
    /* 1. the problems, in an order of this thread's own */
    for (int j = 0; w->opened && j < N_PROBLEMS; ++j) {
      int p = (j + w->tid + round) % N_PROBLEMS;
      const char *where = "";
      w->runs++;
      if (!mine[p].output) {
        w->run_failures++;
        note(w->first_failure, sizeof w->first_failure, "%s%s", "out of host memory", "");
        continue;
      }
      s = tu_run_on_context(ctx, &mine[p], &where);
      if (s != CF_OK) {
        w->run_failures++;
        note(w->first_failure, sizeof w->first_failure, "%s: %s", where, cf_last_error());
      } else if (memcmp(mine[p].output, sh->expect[p], mine[p].n_out * sizeof(float)) != 0) {
        w->mismatches++;
        char what[64];
        snprintf(what, sizeof what, "problem %d round %d", p, round);
        note(w->first_failure, sizeof w->first_failure, "%s: %s", what,
             "output differs from the single-threaded run");
      }
    }
    /* 2. a failure of this thread's own, while the others make theirs */
    pthread_barrier_wait(&sh->barrier);
    int64_t bad = -(1000 + 100 * (int64_t)w->tid + round); /* only this thread uses it */
    cf_conv2d_desc d = defs[0].desc;
    d.batch = bad;
    cf_plan *plan = NULL;
    char own[512], want[32];
    snprintf(want, sizeof want, "(got %lld)", (long long)bad);
    if (ctx)
      s = cf_plan_create(ctx, &d, NULL, 0, CF_MATH_FP32, &plan);
    else
      s = cf_conv2d_output_dims(&d, &(int64_t){0}, &(int64_t){0});
    snprintf(own, sizeof own, "%s", cf_last_error());
    w->message_checks++;
    if (s != CF_ERR_INVALID_ARGUMENT || !strstr(own, want)) {
      w->message_mismatches++;
      note(w->message_failure, sizeof w->message_failure, "own failure gave \"%s\" (want %s)",
           own, want);
    }
    pthread_barrier_wait(&sh->barrier); /* every thread has failed now */
    w->message_checks++;
    if (strcmp(cf_last_error(), own) != 0) {
      w->message_mismatches++;
      note(w->message_failure, sizeof w->message_failure,
           "cf_last_error() changed to \"%s\" after other threads failed (was \"%s\")",
           cf_last_error(), own);
    }
    pthread_barrier_wait(&sh->barrier);
  }
  for (int p = 0; p < N_PROBLEMS; ++p)
    free(mine[p].output);
  cf_context_destroy(ctx);
  return NULL;
}

static void run_threads(cf_backend b) {
  tu_skip_unless_available(b);
  shared_state *sh = calloc(1, sizeof *sh);
  cr_assert(sh);
  sh->backend = b;

  /* single-threaded: the expected outputs, checked against the reference */
  cf_context *ctx = NULL;
  cr_assert(cf_context_create(b, &ctx) == CF_OK, "%s", cf_last_error());
  for (int p = 0; p < N_PROBLEMS; ++p) {
    tu_problem_init(&sh->pb[p], &defs[p].desc, defs[p].ops, defs[p].n_ops, CF_MATH_FP32,
                    TU_DIST_X3, 0x7417 + (uint64_t)p);
    const char *where = "";
    cf_status s = tu_run_on_context(ctx, &sh->pb[p], &where);
    cr_assert(s == CF_OK, "[%s] single-threaded problem %d: %s: %s %s", cf_backend_name(b), p,
              where, cf_last_error(), sh->pb[p].guard_msg);
    tu_check res;
    tu_check_output(&sh->pb[p], &res);
    cr_assert(res.ok, "[%s] single-threaded problem %d: %s", cf_backend_name(b), p,
              res.summary);
    sh->expect[p] = malloc(sh->pb[p].n_out * sizeof(float));
    cr_assert(sh->expect[p]);
    memcpy(sh->expect[p], sh->pb[p].output, sh->pb[p].n_out * sizeof(float));
  }
  cf_context_destroy(ctx);

  /* four threads, four contexts, at once */
  cr_assert(pthread_barrier_init(&sh->barrier, NULL, THREADS) == 0);
  worker ws[THREADS];
  pthread_t tids[THREADS];
  memset(ws, 0, sizeof ws);
  for (int t = 0; t < THREADS; ++t) {
    ws[t].sh = sh;
    ws[t].tid = t;
    cr_assert(pthread_create(&tids[t], NULL, worker_main, &ws[t]) == 0);
  }
  for (int t = 0; t < THREADS; ++t)
    pthread_join(tids[t], NULL);
  pthread_barrier_destroy(&sh->barrier);

  int runs = 0;
  for (int t = 0; t < THREADS; ++t) {
    const worker *w = &ws[t];
    cr_expect(w->opened, "[%s] thread %d could not open its context: %s", cf_backend_name(b), t,
              w->open_error);
    cr_expect(w->run_failures == 0 && w->mismatches == 0,
              "[%s] thread %d: %d of %d runs failed, %d differ from the single-threaded run; "
              "first: %s",
              cf_backend_name(b), t, w->run_failures, w->runs, w->mismatches, w->first_failure);
    cr_expect(w->message_mismatches == 0, "[%s] thread %d: cf_last_error is not per thread: %s",
              cf_backend_name(b), t, w->message_failure);
    runs += w->runs;
  }
  cr_expect(runs == THREADS * ROUNDS * N_PROBLEMS, "[%s] %d runs, want %d", cf_backend_name(b),
            runs, THREADS * ROUNDS * N_PROBLEMS);
  cr_log_info("[%s] %d threads x %d rounds x %d problems: %d concurrent runs bit-identical to "
              "the single-threaded run; %d per-thread message checks",
              cf_backend_name(b), THREADS, ROUNDS, N_PROBLEMS, runs,
              ws[0].message_checks * THREADS);
  for (int p = 0; p < N_PROBLEMS; ++p) {
    free(sh->expect[p]);
    tu_problem_free(&sh->pb[p]);
  }
  free(sh);
}

TestSuite(threads, .timeout = 300);
Test(threads, cpu) { run_threads(CF_BACKEND_CPU); }
Test(threads, opencl) { run_threads(CF_BACKEND_OPENCL); }
Test(threads, cuda) { run_threads(CF_BACKEND_CUDA); }
