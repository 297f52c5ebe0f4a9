/*
 * metrics - the whole segment in the Prometheus text format (0.0.4), as
 * the monitor serves it on GET /metrics (SPEC section 8).
 *
 * Every family comes from a table declared once: the process table and
 * its counters from the descriptor table (shm/layout.def, with the
 * counters of proto/link.h, http/server.h and store/store.h), answers per
 * route from the requests area, and the rate-limit, circuit, bulkhead
 * and admission areas from their own tables.  Names follow Prometheus's
 * rules: snake_case, relgate_ prefix, _total on counters, seconds for
 * every time (a field in ms is divided by 1000; a time of day becomes
 * _timestamp_seconds).  Every family has HELP and TYPE.
 *
 * Labels: role and instance on per-process families; route, class and
 * code on answers; bucket and outcome on rate limits; provider on
 * circuits and bulkheads; dimension on admission.
 */
#ifndef RG_METRICS_H
#define RG_METRICS_H

#include <stddef.h>

#include "shm/shm.h"

/* metrics_render - the text of every family; *len its length.  The
 * caller frees it. */
char *metrics_render(const struct shm_seg *seg, size_t *len);

/* metrics_name - Prometheus's name for a public field name:
 * "ingress.chatStreams" -> "ingress_chat_streams" (no prefix, no suffix;
 * a trailing "Ms", "At" or "Milli" is left for the caller).  Returns
 * the length written (always < len). */
size_t metrics_name(char *buf, size_t len, const char *pub);

#endif
