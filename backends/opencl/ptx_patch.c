#include "ptx_patch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ptx's len bytes as a NUL-terminated string (a program binary need not end in one); NULL
 * when ptx is NULL or memory runs out. free() it. */
static char *text_copy(const char *ptx, size_t len) {
  char *text = ptx ? (char *)malloc(len + 1) : NULL;
  if (text) {
    memcpy(text, ptx, len);
    text[len] = '\0';
  }
  return text;
}

/* PTX's performance directives (.maxnreg, .maxntid, .reqntid, ...) sit between an entry's
 * parameter list and the `{` that opens its body, which starts a line. */
char *cf_ptx_with_max_registers(const char *ptx, size_t len, int max_registers,
                                size_t *out_len) {
  char *text = max_registers >= 1 && max_registers <= 255 ? text_copy(ptx, len) : NULL;
  if (!text)
    return NULL;
  size_t entries = 0;
  for (const char *e = text; (e = strstr(e, ".entry ")) != NULL; ++e)
    entries++;
  char directive[32];
  const int dlen = snprintf(directive, sizeof directive, ".maxnreg %d\n", max_registers);
  char *out = NULL;
  if (entries > 0 && !strstr(text, ".maxnreg") &&
      (out = (char *)malloc(strlen(text) + entries * (size_t)dlen + 1)) != NULL) {
    size_t o = 0;
    const char *from = text;
    for (const char *e; (e = strstr(from, ".entry ")) != NULL;) {
      const char *body = strstr(e, "\n{");
      if (!body) { /* an entry without a body: not PTX this function understands */
        free(out);
        out = NULL;
        break;
      }
      const size_t head = (size_t)(body + 1 - from);
      memcpy(out + o, from, head);
      o += head;
      memcpy(out + o, directive, (size_t)dlen);
      o += (size_t)dlen;
      from = body + 1;
    }
    if (out) {
      const size_t rest = strlen(from);
      memcpy(out + o, from, rest + 1);
      *out_len = o + rest;
    }
  }
  free(text);
  return out;
}

/* The `.target sm_90` directive's architecture ends at a comma, a space or the line's end:
 * sm_90a, sm_900 and the like are other targets, left alone (NULL). */
static const char *sm90_target(const char *text) {
  for (const char *t = strstr(text, ".target sm_90"); t; t = strstr(t + 1, ".target sm_90")) {
    const char after = t[strlen(".target sm_90")];
    if ((t == text || t[-1] == '\n') && (after == ',' || after == ' ' || after == '\n' ||
                                         after == '\r' || after == '\0'))
      return t;
  }
  return NULL;
}

char *cf_ptx_for_sm90a(const char *ptx, size_t len, size_t *out_len) {
  char *text = text_copy(ptx, len);
  if (!text)
    return NULL;
  const size_t marker = strlen(CF_PTX_WGMMA_MARKER);
  const char *target = sm90_target(text);
  char *out = NULL;
  if (target && strstr(text, CF_PTX_WGMMA_MARKER) && (out = (char *)malloc(len + 2)) != NULL) {
    size_t o = 0;
    for (const char *from = text;;) {
      const char *hit = strstr(from, CF_PTX_WGMMA_MARKER);
      const char *next = hit && (!target || hit < target) ? hit : target ? target : NULL;
      if (!next) {
        const size_t rest = strlen(from);
        memcpy(out + o, from, rest + 1);
        o += rest;
        break;
      }
      memcpy(out + o, from, (size_t)(next - from));
      o += (size_t)(next - from);
      if (next == target) { /* ".target sm_90" then an 'a' */
        const size_t dlen = strlen(".target sm_90");
        memcpy(out + o, target, dlen);
        o += dlen;
        out[o++] = 'a';
        from = target + dlen;
        target = NULL;
      } else {
        from = hit + marker;
      }
    }
    *out_len = o;
  }
  free(text);
  return out;
}
