#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { CF_ERROR_LEN = 4096 };

/* The one piece of mutable global state: each thread's last message (DESIGN.md). */
static _Thread_local char tls_message[CF_ERROR_LEN];

cf_status cf_error(cf_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tls_message, sizeof tls_message, fmt, ap);
  va_end(ap);
  return status;
}

void cf_error_prefix(const char *prefix) {
  size_t plen = strlen(prefix) + 2; /* "prefix: " */
  size_t mlen = strlen(tls_message);
  if (plen >= CF_ERROR_LEN)
    return;
  if (mlen > CF_ERROR_LEN - 1 - plen)
    mlen = CF_ERROR_LEN - 1 - plen; /* keep the start of the message */
  memmove(tls_message + plen, tls_message, mlen);
  tls_message[plen + mlen] = '\0';
  memcpy(tls_message, prefix, plen - 2);
  tls_message[plen - 2] = ':';
  tls_message[plen - 1] = ' ';
}

const char *cf_last_error(void) { return tls_message; }

const char *cf_status_string(cf_status s) {
  switch (s) {
  case CF_OK: return "CF_OK";
  case CF_ERR_INVALID_ARGUMENT: return "CF_ERR_INVALID_ARGUMENT";
  case CF_ERR_UNSUPPORTED: return "CF_ERR_UNSUPPORTED";
  case CF_ERR_BACKEND_UNAVAILABLE: return "CF_ERR_BACKEND_UNAVAILABLE";
  case CF_ERR_OUT_OF_MEMORY: return "CF_ERR_OUT_OF_MEMORY";
  case CF_ERR_DEVICE: return "CF_ERR_DEVICE";
  case CF_ERR_INTERNAL: return "CF_ERR_INTERNAL";
  }
  return "CF_ERR_UNKNOWN_STATUS";
}
