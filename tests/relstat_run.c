/*
 * relstat_run - see relstat_run.h.
 */
#include "tests/relstat_run.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *
relstat_run(const char *segname, const char *flags, char *text, size_t len)
{
	const char *top = getenv("top_builddir");
	char cmd[512];
	json_error_t jerr;
	json_t *j = NULL;
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "%s/tools/relstat -n %s %s",
	    top ? top : ".", segname, flags);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(text, 1, len - 1, p);
	text[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	if (strncmp(flags, "-j", 2) == 0) {
		j = json_loads(text, 0, &jerr);
		ck_assert_msg(j != NULL, "relstat %s: %s", flags, jerr.text);
	}
	return j;
}

json_int_t
relstat_int(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	ck_assert_msg(json_is_integer(v), "no %s", k);
	return json_integer_value(v);
}
