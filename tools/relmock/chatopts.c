/*
 * chatopts - see chatopts.h.
 */
#include "tools/relmock/chatopts.h"

#include <stdio.h>
#include <string.h>

#include "util/util.h"

#define DEFAULT_TOKENS 8u
#define ITEM_MAX       64 /* one "key=value" item */

struct field {
	const char *name;
	size_t off;
	unsigned max;
};

static const struct field fields[] = {
#define CHATOPT_DESC(name, max, doc)                                          \
	{ #name, offsetof(struct chat_opts, name), max },
	CHATOPT_FIELDS(CHATOPT_DESC)
#undef CHATOPT_DESC
};

static const struct field *
field_find(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < RG_NELEM(fields); i++)
		if (strlen(fields[i].name) == n &&
		    memcmp(fields[i].name, name, n) == 0)
			return &fields[i];
	return NULL;
}

static unsigned *
field_at(struct chat_opts *o, const struct field *f)
{
	return (unsigned *)(void *)((char *)o + f->off);
}

void
chatopt_defaults(struct chat_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->tokens = DEFAULT_TOKENS;
}

static int
is_sep(char c)
{
	return c == ' ' || c == '\t' || c == ';' || c == ',' || c == '\r';
}

/* item - apply one "key=value" (s[0..n)) onto o; -1 with err */
static int
item(const char *s, size_t n, struct chat_opts *o, char *err, size_t errlen)
{
	const char *eq = memchr(s, '=', n);
	const struct field *f;
	unsigned long v = 0;
	size_t i, klen;

	if (eq == NULL) {
		snprintf(err, errlen, "'%.*s': want key=value", (int)n, s);
		return -1;
	}
	klen = (size_t)(eq - s);
	if ((f = field_find(s, klen)) == NULL) {
		snprintf(err, errlen,
		    "unknown option '%.*s' (tokens, token_ms, first_ms, "
		    "role_chunk, tool_text, end_ms)",
		    (int)klen, s);
		return -1;
	}
	if (eq + 1 == s + n)
		goto bad;
	for (i = klen + 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			goto bad;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > f->max)
			goto bad;
	}
	*field_at(o, f) = (unsigned)v;
	return 0;
bad:
	snprintf(err, errlen, "%s: want an integer from 0 to %u, not '%.*s'",
	    f->name, f->max, (int)(n - klen - 1), eq + 1);
	return -1;
}

int
chatopt_parse(const char *spec, size_t len, struct chat_opts *o, char *err,
    size_t errlen)
{
	struct chat_opts t = *o;
	size_t i = 0, j;

	while (i < len) {
		if (is_sep(spec[i])) {
			i++;
			continue;
		}
		for (j = i; j < len && !is_sep(spec[j]); j++)
			;
		if (j - i > ITEM_MAX) {
			snprintf(err, errlen, "option '%.20s...' too long",
			    spec + i);
			return -1;
		}
		if (item(spec + i, j - i, &t, err, errlen) < 0)
			return -1;
		i = j;
	}
	*o = t;
	return 0;
}

const char *
chatopt_find(const char *text, size_t len, size_t *speclen)
{
	static const char d[] = CHATOPT_DIRECTIVE;
	const char *p, *nl;

	p = memmem(text, len, d, sizeof(d) - 1);
	if (p == NULL)
		return NULL;
	p += sizeof(d) - 1;
	nl = memchr(p, '\n', len - (size_t)(p - text));
	*speclen = nl != NULL ? (size_t)(nl - p) : len - (size_t)(p - text);
	return p;
}

int
chatopt_json(json_t *j, struct chat_opts *o, char *err, size_t errlen)
{
	struct chat_opts t = *o;
	const struct field *f;
	const char *key;
	json_int_t v;
	json_t *val;

	if (!json_is_object(j)) {
		snprintf(err, errlen, "chat options must be a JSON object");
		return -1;
	}
	json_object_foreach(j, key, val)
	{
		if ((f = field_find(key, strlen(key))) == NULL) {
			snprintf(err, errlen, "unknown chat option '%s'", key);
			return -1;
		}
		if (json_is_boolean(val) && f->max == 1) {
			v = json_is_true(val);
		} else if (json_is_integer(val)) {
			v = json_integer_value(val);
		} else {
			v = -1;
		}
		if (v < 0 || v > (json_int_t)f->max) {
			snprintf(err, errlen,
			    "chat option %s: want an integer from 0 to %u",
			    key, f->max);
			return -1;
		}
		*field_at(&t, f) = (unsigned)v;
	}
	*o = t;
	return 0;
}

json_t *
chatopt_to_json(const struct chat_opts *o)
{
	json_t *j = json_object();

#define CHATOPT_JSON(name, max, doc)                                          \
	json_object_set_new(j, #name, json_integer(o->name));
	CHATOPT_FIELDS(CHATOPT_JSON)
#undef CHATOPT_JSON
	return j;
}

size_t
chatopt_token(unsigned i, char *buf, size_t len)
{
	int n = snprintf(buf, len, "w%u ", i);

	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

char *
chatopt_text(unsigned n, size_t *len)
{
	char *s = xmalloc((size_t)n * 8 + 1);
	size_t pos = 0;
	unsigned i;

	s[0] = '\0';
	for (i = 0; i < n; i++)
		pos += chatopt_token(i, s + pos, 9);
	*len = pos;
	return s;
}
