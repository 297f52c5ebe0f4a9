/*
 * relstat_run - for unit tests: run the built relstat on a segment and
 * read its JSON (Check assertions inside: a failure fails the test).
 */
#ifndef RG_RELSTAT_RUN_H
#define RG_RELSTAT_RUN_H

#include <stddef.h>

#include <jansson.h>

/*
 * relstat_run - `relstat -n segname flags` from $top_builddir (or .);
 * its output into text[len].  Flags starting with -j: the parsed JSON
 * (the caller decrefs it), else NULL.  Asserts it exits 0.
 */
json_t *relstat_run(const char *segname, const char *flags, char *text,
    size_t len);

/* relstat_int - integer member k of o; asserts it is one. */
json_int_t relstat_int(json_t *o, const char *k);

#endif
