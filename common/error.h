/* Thread-local error messages behind every cf_status. */
#ifndef CF_COMMON_ERROR_H
#define CF_COMMON_ERROR_H

#include "convfuse/convfuse.h"

#if defined(__GNUC__)
#define CF_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define CF_PRINTF(fmt_idx, arg_idx)
#endif

/* Records a message for cf_last_error on this thread and returns status, so that callers
 * can write `return cf_error(CF_ERR_..., "fn: what (got %d)", x);`. */
cf_status cf_error(cf_status status, const char *fmt, ...) CF_PRINTF(2, 3);

/* Prefixes the current message with "prefix: " (used to add context to a backend error). */
void cf_error_prefix(const char *prefix);

#define CF_CHECK(expr)                 \
  do {                                 \
    cf_status cf_check_s_ = (expr);    \
    if (cf_check_s_ != CF_OK)          \
      return cf_check_s_;              \
  } while (0)

#endif
