/*
 * config - load, validate and render relgate's configuration.
 *
 * Everything is driven by the knob table (conf/knobs.def): defaults are
 * parsed as text through the same validators as environment values, the
 * JSON file is walked member by member against the table, and the
 * environment is applied last.  An invalid value stops the load with one
 * line naming the key, the value and what is allowed; nothing ever falls
 * back to its default.
 *
 * Owns: struct config and everything it points to.  Never prints a secret
 * (KF_SECRET) value: error messages and redacted renderings say "***".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/config.h"
#include "util/util.h"

const struct knob config_knobs[KNOB_COUNT] = {
#define KNOB_DESC(id_, key_, type_, def_, min_, max_, allowed_, envdef_,     \
    flags_, doc_)                                                         \
	[KNOB_##id_] = {                                                  \
		.key = key_,                                              \
		.type = type_,                                            \
		.def = def_,                                              \
		.min = min_,                                              \
		.max = max_,                                              \
		.allowed = allowed_,                                      \
		.envdef = envdef_,                                        \
		.flags = flags_,                                          \
		.doc = doc_,                                              \
		.offset = offsetof(struct config, id_),                   \
	},
	CONFIG_KNOBS(KNOB_DESC)
#undef KNOB_DESC
};

#define SHOW_MAX 72     /* bytes of a value shown in an error */
#define KEY_MAX 256     /* longest dotted key accepted in a file */

/* A parsed value on its way into struct config. */
struct kval {
	int set;
	int64_t i;
	char *s;
	struct config_strlist l;
	json_t *j;
};

/* Where errors go and what they say the value came from. */
struct ectx {
	char *err;
	size_t len;
	const char *src;
};

static const char *
type_name(enum knob_type t)
{
	switch (t) {
	case KT_INT:
		return "int";
	case KT_BOOL:
		return "bool";
	case KT_STR:
		return "string";
	case KT_ENUM:
		return "enum";
	case KT_ADDR:
		return "addr";
	case KT_URL:
		return "url";
	case KT_STRLIST:
		return "strlist";
	case KT_CIDRLIST:
		return "cidrlist";
	case KT_JSON:
		return "json";
	}
	return "?";
}

static int
is_stringish(enum knob_type t)
{
	return t == KT_STR || t == KT_ENUM || t == KT_ADDR || t == KT_URL;
}

static int
is_list(enum knob_type t)
{
	return t == KT_STRLIST || t == KT_CIDRLIST;
}

/* errf - one "config: ..." line into e->err, always NUL-terminated. */
static void __attribute__((format(printf, 2, 3)))
errf(struct ectx *e, const char *fmt, ...)
{
	va_list ap;
	char *p;

	if (e->err == NULL || e->len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(e->err, e->len, fmt, ap);
	va_end(ap);
	for (p = e->err; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* kerr - "config: KEY: MSG [from SRC]". */
static void __attribute__((format(printf, 3, 4)))
kerr(struct ectx *e, const struct knob *k, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errf(e, "config: %s: %s [from %s]", k->key, msg, e->src);
}

/* sanitize - printable, bounded copy of s for an error line. */
static void
sanitize(char *dst, size_t len, const char *s)
{
	size_t i, n = 0;

	for (i = 0; s[i] != '\0' && n + 4 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		dst[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
		if (n >= SHOW_MAX) {
			i++;
			break;
		}
	}
	if (s[i] != '\0') {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
}

/* show - a text value as it appears in an error: quoted, or "***". */
static const char *
show(const struct knob *k, const char *s, char *buf, size_t len)
{
	char tmp[SHOW_MAX + 8];

	if (k->flags & KF_SECRET) {
		snprintf(buf, len, "***");
		return buf;
	}
	sanitize(tmp, sizeof(tmp), s);
	snprintf(buf, len, "\"%s\"", tmp);
	return buf;
}

static const char *
json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "real";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

/* show_json - "integer 8080", "string \"x\"", "null"; secrets as ***. */
static const char *
show_json(const struct knob *k, const json_t *v, char *buf, size_t len)
{
	char tmp[SHOW_MAX + 8];
	char *d;

	if (json_is_null(v)) {
		snprintf(buf, len, "null");
		return buf;
	}
	if (k != NULL && (k->flags & KF_SECRET)) {
		snprintf(buf, len, "%s ***", json_type_name(v));
		return buf;
	}
	d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	sanitize(tmp, sizeof(tmp), d != NULL ? d : "?");
	free(d);
	snprintf(buf, len, "%s %s", json_type_name(v), tmp);
	return buf;
}

/* expect_desc - what a knob's value must look like, for type errors. */
static const char *
expect_desc(const struct knob *k, int text, char *buf, size_t len)
{
	const char *d;

	switch (k->type) {
	case KT_INT:
		d = "integer";
		break;
	case KT_BOOL:
		d = text ? "true|false|1|0" : "boolean";
		break;
	case KT_STR:
		d = "string";
		break;
	case KT_ENUM:
		snprintf(buf, len, "string (one of %s)", k->allowed);
		d = buf;
		break;
	case KT_ADDR:
		d = "string \"host:port\"";
		break;
	case KT_URL:
		d = "string URL";
		break;
	case KT_STRLIST:
		d = "array of strings";
		break;
	case KT_CIDRLIST:
		d = "array of CIDR strings";
		break;
	case KT_JSON:
		snprintf(buf, len, "JSON %s",
		    k->allowed ? k->allowed : "value");
		d = buf;
		break;
	default:
		d = "?";
	}
	if (!text && (k->flags & KF_OPTIONAL) && d != buf) {
		snprintf(buf, len, "%s or null", d);
		d = buf;
	}
	return d;
}

/* in_alternatives - is s (length n) one of "a|b|c"? */
static int
in_alternatives(const char *alts, const char *s, size_t n, int icase)
{
	const char *p = alts, *bar;
	size_t m;

	for (;;) {
		bar = strchr(p, '|');
		m = bar ? (size_t)(bar - p) : strlen(p);
		if (m == n && (icase ? strncasecmp(p, s, n) == 0
				     : strncmp(p, s, n) == 0))
			return 1;
		if (bar == NULL)
			return 0;
		p = bar + 1;
	}
}

/* parse_port - strict decimal 1..65535 filling all of s. */
static int
parse_port(const char *s)
{
	long v = 0;
	size_t i;

	if (s[0] == '\0' || strlen(s) > 5)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

/* valid_hostname - DNS name or dotted IPv4 (which must parse). */
static int
valid_hostname(const char *h, size_t n)
{
	char buf[256];
	struct in_addr a4;
	size_t i;
	int alpha = 0;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		char c = h[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '-' || c == '_')
			alpha = 1;
		else if (!(c >= '0' && c <= '9') && c != '.')
			return 0;
	}
	if (alpha)
		return h[0] != '-' && h[0] != '.';
	memcpy(buf, h, n);
	buf[n] = '\0';
	return inet_pton(AF_INET, buf, &a4) == 1;
}

/* valid_v6 - h (length n, without brackets) is an IPv6 address. */
static int
valid_v6(const char *h, size_t n)
{
	char buf[64];
	struct in6_addr a6;

	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, h, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, &a6) == 1;
}

/* valid_hostport - "host:port" / "[v6]:port"; port optional if !need. */
static int
valid_hostport(const char *s, size_t n, int need_port)
{
	char port[8];
	const char *colon, *end = s + n;
	size_t hl;

	if (n > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', n);

		if (rb == NULL || !valid_v6(s + 1, (size_t)(rb - s - 1)))
			return 0;
		colon = rb + 1;
		if (colon == end)
			return !need_port;
		if (*colon != ':')
			return 0;
	} else {
		colon = memchr(s, ':', n);
		if (colon == NULL) {
			if (need_port)
				return 0;
			colon = end;
		}
		if (!valid_hostname(s, (size_t)(colon - s)))
			return 0;
		if (colon == end)
			return 1;
	}
	hl = (size_t)(end - colon - 1);
	if (hl == 0 || hl >= sizeof(port))
		return 0;
	memcpy(port, colon + 1, hl);
	port[hl] = '\0';
	return parse_port(port);
}

static int
valid_addr(const char *s)
{
	return valid_hostport(s, strlen(s), 1);
}

/* valid_url - scheme://[userinfo@]host[:port][/path][?q][#f]. */
static int
valid_url(const char *s, const char *schemes)
{
	const char *p = strstr(s, "://"), *auth, *aend, *at;
	size_t i;

	if (p == NULL || p == s || strlen(s) > 2048)
		return 0;
	if (!in_alternatives(schemes ? schemes : "http|https", s,
		(size_t)(p - s), 1))
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] == ' ' || s[i] == '\\')
			return 0;
	auth = p + 3;
	aend = auth + strcspn(auth, "/?#");
	at = NULL;
	for (p = auth; p < aend; p++)
		if (*p == '@')
			at = p;
	if (at != NULL)
		auth = at + 1;
	return valid_hostport(auth, (size_t)(aend - auth), 0);
}

/* valid_cidr - "addr/prefix", IPv4 /0..32 or IPv6 /0..128. */
static int
valid_cidr(const char *s)
{
	const char *slash = strchr(s, '/');
	char addr[64];
	struct in_addr a4;
	struct in6_addr a6;
	size_t n, i;
	int bits = 0, maxbits;

	if (slash == NULL || (n = (size_t)(slash - s)) == 0 ||
	    n >= sizeof(addr))
		return 0;
	memcpy(addr, s, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, &a4) == 1)
		maxbits = 32;
	else if (inet_pton(AF_INET6, addr, &a6) == 1)
		maxbits = 128;
	else
		return 0;
	if (slash[1] == '\0' || strlen(slash + 1) > 3)
		return 0;
	for (i = 1; slash[i] != '\0'; i++) {
		if (slash[i] < '0' || slash[i] > '9')
			return 0;
		bits = bits * 10 + (slash[i] - '0');
	}
	return bits <= maxbits;
}

/* check_int - range check of an integer value. */
static int
check_int(struct ectx *e, const struct knob *k, int64_t v)
{
	if (v < k->min || v > k->max) {
		kerr(e, k, "value %lld out of range (allowed %lld..%lld)",
		    (long long)v, (long long)k->min, (long long)k->max);
		return -1;
	}
	return 0;
}

static int
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* check_string - validate a value of a string-like knob. */
static int
check_string(struct ectx *e, const struct knob *k, const char *s)
{
	char v[SHOW_MAX + 16];
	size_t n = strlen(s);

	show(k, s, v, sizeof(v));
	if (has_ctl(s)) {
		kerr(e, k, "value %s contains control characters", v);
		return -1;
	}
	switch (k->type) {
	case KT_STR:
		if ((int64_t)n < k->min || (int64_t)n > k->max) {
			kerr(e, k,
			    "value %s length %zu out of range "
			    "(allowed %lld..%lld)",
			    v, n, (long long)k->min, (long long)k->max);
			return -1;
		}
		break;
	case KT_ENUM:
		if (!in_alternatives(k->allowed, s, n, 0)) {
			kerr(e, k, "value %s not allowed (allowed %s)", v,
			    k->allowed);
			return -1;
		}
		break;
	case KT_ADDR:
		if (!valid_addr(s)) {
			kerr(e, k,
			    "value %s is not a valid address (expected "
			    "\"host:port\" or \"[v6]:port\", port 1..65535)",
			    v);
			return -1;
		}
		break;
	case KT_URL:
		if (!valid_url(s, k->allowed)) {
			kerr(e, k,
			    "value %s is not a valid URL (expected "
			    "scheme://host[:port][/path], scheme %s)",
			    v, k->allowed ? k->allowed : "http|https");
			return -1;
		}
		break;
	default:
		break;
	}
	return 0;
}

static void
strlist_free(struct config_strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void
strlist_add(struct config_strlist *l, const char *s, size_t n)
{
	char *c = xmalloc(n + 1);

	memcpy(c, s, n);
	c[n] = '\0';
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = c;
}

/* check_list - item count and every item of a list knob. */
static int
check_list(struct ectx *e, const struct knob *k,
    const struct config_strlist *l)
{
	char v[SHOW_MAX + 16];
	size_t i;

	if (k->max > 0 && (int64_t)l->n > k->max) {
		kerr(e, k,
		    "value has %zu items, too many (allowed %lld..%lld)", l->n,
		    (long long)k->min, (long long)k->max);
		return -1;
	}
	if ((int64_t)l->n < k->min) {
		kerr(e, k, "value has %zu items, too few (allowed %lld..%lld)",
		    l->n, (long long)k->min, (long long)k->max);
		return -1;
	}
	for (i = 0; i < l->n; i++) {
		show(k, l->v[i], v, sizeof(v));
		if (l->v[i][0] == '\0') {
			kerr(e, k, "value has an empty item (item %zu)", i);
			return -1;
		}
		if (has_ctl(l->v[i])) {
			kerr(e, k, "value %s contains control characters", v);
			return -1;
		}
		if (k->type == KT_CIDRLIST && !valid_cidr(l->v[i])) {
			kerr(e, k,
			    "value %s is not a valid CIDR (expected "
			    "address/prefix, e.g. \"10.0.0.0/8\")",
			    v);
			return -1;
		}
	}
	return 0;
}

/* json_type_ok - does v have the JSON type named by allowed? */
static int
json_type_ok(const struct knob *k, const json_t *v)
{
	const char *a = k->allowed;

	if (a == NULL || strcmp(a, "any") == 0)
		return 1;
	if (strcmp(a, "number") == 0)
		return json_is_number(v);
	return strcmp(a, json_type_name(v)) == 0;
}

/* list_from_json - an array of strings into a list (checked after). */
static int
list_from_json(struct ectx *e, const struct knob *k, const json_t *arr,
    struct kval *out, int text)
{
	char v[SHOW_MAX + 32], d[64];
	const json_t *it;
	size_t i;

	if (!json_is_array(arr)) {
		kerr(e, k, "expected %s, got %s",
		    expect_desc(k, text, d, sizeof(d)),
		    show_json(k, arr, v, sizeof(v)));
		return -1;
	}
	json_array_foreach(arr, i, it) {
		if (!json_is_string(it)) {
			kerr(e, k, "item %zu: expected string, got %s", i,
			    show_json(k, it, v, sizeof(v)));
			strlist_free(&out->l);
			return -1;
		}
		strlist_add(&out->l, json_string_value(it),
		    strlen(json_string_value(it)));
	}
	return 0;
}

static void
kval_free(struct kval *kv)
{
	free(kv->s);
	strlist_free(&kv->l);
	json_decref(kv->j);
	memset(kv, 0, sizeof(*kv));
}

/* parse_json - a value of the JSON file for knob k. */
static int
parse_json(struct ectx *e, const struct knob *k, const json_t *v,
    struct kval *out)
{
	char d[64], shown[SHOW_MAX + 32];
	const char *s;

	memset(out, 0, sizeof(*out));
	if (json_is_null(v) && (k->flags & KF_OPTIONAL))
		return 0;
	out->set = 1;
	switch (k->type) {
	case KT_INT:
		if (!json_is_integer(v))
			goto type;
		out->i = json_integer_value(v);
		return check_int(e, k, out->i);
	case KT_BOOL:
		if (!json_is_boolean(v))
			goto type;
		out->i = json_is_true(v);
		return 0;
	case KT_STR:
	case KT_ENUM:
	case KT_ADDR:
	case KT_URL:
		if (!json_is_string(v))
			goto type;
		s = json_string_value(v);
		if (check_string(e, k, s) == -1)
			return -1;
		out->s = xstrdup(s);
		return 0;
	case KT_STRLIST:
	case KT_CIDRLIST:
		if (list_from_json(e, k, v, out, 0) == -1)
			return -1;
		if (check_list(e, k, &out->l) == -1) {
			kval_free(out);
			return -1;
		}
		return 0;
	case KT_JSON:
		if (!json_type_ok(k, v))
			goto type;
		out->j = json_deep_copy(v);
		return 0;
	}
type:
	kerr(e, k, "expected %s, got %s", expect_desc(k, 0, d, sizeof(d)),
	    show_json(k, v, shown, sizeof(shown)));
	return -1;
}

/* parse_int_text - strict decimal int64: 0 ok, -1 junk, -2 overflow. */
static int
parse_int_text(const char *s, int64_t *v)
{
	const char *p = s;
	char *end;
	long long r;

	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	r = strtoll(s, &end, 10);
	if (*end != '\0')
		return -1;
	if (errno == ERANGE)
		return -2;
	*v = r;
	return 0;
}

/* list_from_text - JSON array text or a comma-separated list. */
static int
list_from_text(struct ectx *e, const struct knob *k, const char *s,
    struct kval *out)
{
	char v[SHOW_MAX + 16];
	const char *p = s, *c, *a, *b;
	json_error_t jerr;
	json_t *arr;
	int rc;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '[') {
		arr = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
		if (arr == NULL) {
			kerr(e, k, "expected JSON array of strings, got %s",
			    show(k, s, v, sizeof(v)));
			return -1;
		}
		rc = list_from_json(e, k, arr, out, 1);
		json_decref(arr);
		return rc;
	}
	if (*p == '\0')
		return 0;
	for (;;) {
		c = strchr(p, ',');
		if (c == NULL)
			c = p + strlen(p);
		a = p;
		b = c;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		strlist_add(&out->l, a, (size_t)(b - a));
		if (*c == '\0')
			break;
		p = c + 1;
	}
	return 0;
}

/* parse_text - a default, environment or envdef value for knob k. */
static int
parse_text(struct ectx *e, const struct knob *k, const char *s,
    struct kval *out)
{
	char d[64], v[SHOW_MAX + 16];
	json_error_t jerr;
	int rc;

	memset(out, 0, sizeof(*out));
	if (s[0] == '\0' && (k->flags & KF_OPTIONAL))
		return 0;
	out->set = 1;
	switch (k->type) {
	case KT_INT:
		rc = parse_int_text(s, &out->i);
		if (rc == -2) {
			kerr(e, k,
			    "value %s out of range (allowed %lld..%lld)",
			    show(k, s, v, sizeof(v)), (long long)k->min,
			    (long long)k->max);
			return -1;
		}
		if (rc == -1)
			goto type;
		return check_int(e, k, out->i);
	case KT_BOOL:
		if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
			out->i = 1;
		else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
			out->i = 0;
		else
			goto type;
		return 0;
	case KT_STR:
	case KT_ENUM:
	case KT_ADDR:
	case KT_URL:
		if (check_string(e, k, s) == -1)
			return -1;
		out->s = xstrdup(s);
		return 0;
	case KT_STRLIST:
	case KT_CIDRLIST:
		if (list_from_text(e, k, s, out) == -1 ||
		    check_list(e, k, &out->l) == -1) {
			kval_free(out);
			return -1;
		}
		return 0;
	case KT_JSON:
		out->j = json_loads(s,
		    JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
		if (out->j == NULL)
			goto type;
		if (!json_type_ok(k, out->j)) {
			json_decref(out->j);
			out->j = NULL;
			goto type;
		}
		return 0;
	}
type:
	kerr(e, k, "expected %s, got %s", expect_desc(k, 1, d, sizeof(d)),
	    show(k, s, v, sizeof(v)));
	return -1;
}

static void *
field(struct config *cfg, const struct knob *k)
{
	return (char *)cfg + k->offset;
}

static const void *
cfield(const struct config *cfg, const struct knob *k)
{
	return (const char *)cfg + k->offset;
}

static void
field_free(struct config *cfg, const struct knob *k)
{
	void *f = field(cfg, k);

	if (is_stringish(k->type)) {
		free(*(char **)f);
		*(char **)f = NULL;
	} else if (is_list(k->type)) {
		strlist_free(f);
	} else if (k->type == KT_JSON) {
		json_decref(*(json_t **)f);
		*(json_t **)f = NULL;
	}
}

/* store - move a parsed value into cfg, replacing the old one. */
static void
store(struct config *cfg, const struct knob *k, struct kval *kv,
    enum config_source src)
{
	void *f = field(cfg, k);

	field_free(cfg, k);
	if (k->type == KT_INT || k->type == KT_BOOL)
		*(int64_t *)f = kv->i;
	else if (is_stringish(k->type))
		*(char **)f = kv->s;
	else if (is_list(k->type))
		*(struct config_strlist *)f = kv->l;
	else
		*(json_t **)f = kv->j;
	memset(kv, 0, sizeof(*kv));
	cfg->source[k - config_knobs] = (unsigned char)src;
}

static int
apply_text(struct config *cfg, const struct knob *k, const char *s,
    struct ectx *e, enum config_source src)
{
	struct kval kv;

	if (parse_text(e, k, s, &kv) == -1)
		return -1;
	store(cfg, k, &kv, src);
	return 0;
}

static const struct knob *
find_knob(const char *key)
{
	size_t i;

	for (i = 0; i < KNOB_COUNT; i++)
		if (strcmp(config_knobs[i].key, key) == 0)
			return &config_knobs[i];
	return NULL;
}

/* is_prefix - some core key lies below the object "prefix". */
static int
is_prefix(const char *prefix)
{
	size_t i, n = strlen(prefix);

	for (i = 0; i < KNOB_COUNT; i++)
		if (!(config_knobs[i].flags & KF_SEED) &&
		    strncmp(config_knobs[i].key, prefix, n) == 0 &&
		    config_knobs[i].key[n] == '.')
			return 1;
	return 0;
}

static void
unknown_key(struct ectx *e, const char *key, const char *name)
{
	char k[KEY_MAX + 8];

	sanitize(k, sizeof(k), key);
	if (strchr(name, '.') != NULL && find_knob(key) != NULL)
		errf(e,
		    "config: unknown key \"%s\" (a dotted key is written as "
		    "nested objects) [from %s]",
		    k, e->src);
	else
		errf(e, "config: unknown key \"%s\" [from %s]", k, e->src);
}

/* walk_object - apply the members of a file object below prefix. */
static int
walk_object(struct config *cfg, const json_t *obj, const char *prefix,
    struct ectx *e)
{
	char key[KEY_MAX + 2], v[SHOW_MAX + 32];
	const struct knob *k;
	const char *name;
	struct kval kv;
	json_t *val;
	int n;

	json_object_foreach((json_t *)(uintptr_t)obj, name, val) {
		if (prefix[0] == '\0')
			n = snprintf(key, sizeof(key), "%s", name);
		else
			n = snprintf(key, sizeof(key), "%s.%s", prefix, name);
		if (n < 0 || (size_t)n >= sizeof(key)) {
			unknown_key(e, key, name);
			return -1;
		}
		k = NULL;
		if (name[0] != '\0' && strchr(name, '.') == NULL)
			k = find_knob(key);
		if (k != NULL) {
			if (parse_json(e, k, val, &kv) == -1)
				return -1;
			store(cfg, k, &kv, CONFIG_SRC_FILE);
			continue;
		}
		if (name[0] == '\0' || strchr(name, '.') != NULL ||
		    !is_prefix(key)) {
			unknown_key(e, key, name);
			return -1;
		}
		if (!json_is_object(val)) {
			errf(e, "config: %s: expected object, got %s "
				"[from %s]",
			    key, show_json(NULL, val, v, sizeof(v)), e->src);
			return -1;
		}
		if (walk_object(cfg, val, key, e) == -1)
			return -1;
	}
	return 0;
}

/* load_file - parse path and apply it; 1 = missing and optional. */
static int
load_file(struct config *cfg, const char *path, unsigned flags,
    struct ectx *e)
{
	json_error_t jerr;
	struct stat st;
	json_t *root;
	char *near;
	FILE *fp;
	int rc;

	fp = fopen(path, "r");
	if (fp == NULL) {
		if (errno == ENOENT && (flags & CONFIG_FILE_OPTIONAL))
			return 1;
		errf(e, "config: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(fp), &st) == 0 && !S_ISREG(st.st_mode)) {
		errf(e, "config: cannot read %s: not a regular file", path);
		fclose(fp);
		return -1;
	}
	root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
	fclose(fp);
	if (root == NULL) {
		/* jansson quotes the token near an error: maybe a secret;
		 * a duplicate's token is a key, which is safe to show */
		near = strstr(jerr.text, " near '");
		if (near != NULL &&
		    strncmp(jerr.text, "duplicate object key", 20) != 0)
			*near = '\0';
		errf(e, "config: cannot parse %s: line %d column %d: %s", path,
		    jerr.line, jerr.column, jerr.text);
		return -1;
	}
	if (!json_is_object(root)) {
		errf(e, "config: %s: top level must be an object, got %s",
		    path, json_type_name(root));
		json_decref(root);
		return -1;
	}
	e->src = path;
	rc = walk_object(cfg, root, "", e);
	json_decref(root);
	return rc;
}

const char *
config_env_name(const struct knob *k, char *buf, size_t len)
{
	size_t i, n;
	char c;

	if (k->flags & KF_SEED) {
		strlcpy_rg(buf, k->key, len);
		return buf;
	}
	n = strlcpy_rg(buf, "RELGATE_", len);
	for (i = 0; k->key[i] != '\0' && n + 1 < len; i++) {
		c = k->key[i];
		if (c == '.')
			c = '_';
		else if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		buf[n++] = c;
	}
	if (len > 0)
		buf[n < len ? n : len - 1] = '\0';
	return buf;
}

struct config *
config_load(const char *path, unsigned flags, char *err, size_t errlen)
{
	char name[128], src[160], scratch[8];
	struct ectx e = { err, errlen, "built-in default" };
	const struct knob *k;
	struct config *cfg;
	const char *v;
	size_t i;
	int rc;

	if (err == NULL || errlen == 0) {
		e.err = scratch;
		e.len = sizeof(scratch);
	}
	e.err[0] = '\0';
	cfg = xcalloc(1, sizeof(*cfg));
	for (i = 0; i < KNOB_COUNT; i++) {
		k = &config_knobs[i];
		if (k->def == NULL) {
			if (!(k->flags & KF_OPTIONAL)) {
				kerr(&e, k, "no default and not optional");
				goto fail;
			}
			continue;
		}
		if (apply_text(cfg, k, k->def, &e, CONFIG_SRC_DEFAULT) == -1)
			goto fail;
	}
	if (!(flags & CONFIG_NO_ENV)) {
		for (i = 0; i < KNOB_COUNT; i++) {
			k = &config_knobs[i];
			if (k->envdef == NULL ||
			    (v = getenv(k->envdef)) == NULL || v[0] == '\0')
				continue;
			snprintf(src, sizeof(src), "environment %s",
			    k->envdef);
			e.src = src;
			if (apply_text(cfg, k, v, &e, CONFIG_SRC_ENV) == -1)
				goto fail;
		}
	}
	if (path != NULL) {
		rc = load_file(cfg, path, flags, &e);
		if (rc == -1)
			goto fail;
		if (rc == 0)
			cfg->path = xstrdup(path);
	}
	if (!(flags & CONFIG_NO_ENV)) {
		e.src = "environment";
		for (i = 0; i < KNOB_COUNT; i++) {
			k = &config_knobs[i];
			v = getenv(config_env_name(k, name, sizeof(name)));
			if (v == NULL)
				continue;
			if (apply_text(cfg, k, v, &e, CONFIG_SRC_ENV) == -1)
				goto fail;
		}
	}
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < KNOB_COUNT; i++)
		field_free(cfg, &config_knobs[i]);
	free(cfg->path);
	free(cfg);
}

/* knob_json - one knob's value in file form. */
static json_t *
knob_json(const struct config *cfg, const struct knob *k, int redact)
{
	const void *f = cfield(cfg, k);
	const struct config_strlist *l;
	json_t *a;
	size_t i;

	switch (k->type) {
	case KT_INT:
		return json_integer(*(const int64_t *)f);
	case KT_BOOL:
		return json_boolean(*(const int64_t *)f != 0);
	case KT_STR:
	case KT_ENUM:
	case KT_ADDR:
	case KT_URL:
		if (*(char *const *)f == NULL)
			return json_null();
		if (redact && (k->flags & KF_SECRET))
			return json_string("***");
		return json_string(*(char *const *)f);
	case KT_STRLIST:
	case KT_CIDRLIST:
		l = f;
		a = json_array();
		for (i = 0; i < l->n; i++)
			json_array_append_new(a, json_string(l->v[i]));
		return a;
	case KT_JSON:
		if (*(json_t *const *)f == NULL)
			return json_null();
		return json_deep_copy(*(json_t *const *)f);
	}
	return json_null();
}

/* set_path - root["a"]["b"] = v for key "a.b", creating objects. */
static void
set_path(json_t *root, const char *key, json_t *v)
{
	char buf[KEY_MAX], *p, *dot;
	json_t *o = root, *child;

	strlcpy_rg(buf, key, sizeof(buf));
	p = buf;
	while ((dot = strchr(p, '.')) != NULL) {
		*dot = '\0';
		child = json_object_get(o, p);
		if (child == NULL) {
			child = json_object();
			json_object_set_new(o, p, child);
		}
		o = child;
		p = dot + 1;
	}
	json_object_set_new(o, p, v);
}

json_t *
config_to_json(const struct config *cfg, int redact)
{
	json_t *root = json_object();
	size_t i;

	for (i = 0; i < KNOB_COUNT; i++)
		set_path(root, config_knobs[i].key,
		    knob_json(cfg, &config_knobs[i], redact));
	return root;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fsync_dir - make a rename in path's directory durable. */
static int
fsync_dir(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int fd, rc = 0;

	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd == -1)
		return -1;
	if (fsync(fd) == -1 && errno != EINVAL)
		rc = -1;
	close(fd);
	return rc;
}

int
config_write_effective(const struct config *cfg, const char *path)
{
	char *text, *tmp;
	json_t *j;
	int fd, saved;

	j = config_to_json(cfg, 0);
	text = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	if (text == NULL) {
		errno = ENOMEM;
		return -1;
	}
	tmp = xasprintf("%s.tmpXXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd == -1)
		goto fail_nofile;
	if (fchmod(fd, 0600) == -1 || write_all(fd, text, strlen(text)) ||
	    write_all(fd, "\n", 1) || fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	free(tmp);
	free(text);
	return fsync_dir(path);
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	errno = saved;
fail_nofile:
	saved = errno;
	free(tmp);
	free(text);
	errno = saved;
	return -1;
}

static int
list_equal(const struct config_strlist *a, const struct config_strlist *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return 0;
	return 1;
}

static int
field_equal(const struct config *a, const struct config *b,
    const struct knob *k)
{
	const void *fa = cfield(a, k), *fb = cfield(b, k);
	const char *sa, *sb;

	if (k->type == KT_INT || k->type == KT_BOOL)
		return *(const int64_t *)fa == *(const int64_t *)fb;
	if (is_stringish(k->type)) {
		sa = *(char *const *)fa;
		sb = *(char *const *)fb;
		if (sa == NULL || sb == NULL)
			return sa == sb;
		return strcmp(sa, sb) == 0;
	}
	if (is_list(k->type))
		return list_equal(fa, fb);
	if (*(json_t *const *)fa == NULL || *(json_t *const *)fb == NULL)
		return *(json_t *const *)fa == *(json_t *const *)fb;
	return json_equal(*(json_t *const *)fa, *(json_t *const *)fb);
}

/* field_copy - deep copy of one knob's value from src into dst. */
static void
field_copy(struct config *dst, const struct config *src,
    const struct knob *k)
{
	const void *fs = cfield(src, k);
	void *fd = field(dst, k);
	const struct config_strlist *l;
	struct config_strlist *d;
	size_t i;

	field_free(dst, k);
	if (k->type == KT_INT || k->type == KT_BOOL) {
		*(int64_t *)fd = *(const int64_t *)fs;
	} else if (is_stringish(k->type)) {
		if (*(char *const *)fs != NULL)
			*(char **)fd = xstrdup(*(char *const *)fs);
	} else if (is_list(k->type)) {
		l = fs;
		d = fd;
		for (i = 0; i < l->n; i++)
			strlist_add(d, l->v[i], strlen(l->v[i]));
	} else if (*(json_t *const *)fs != NULL) {
		*(json_t **)fd = json_deep_copy(*(json_t *const *)fs);
	}
}

void
config_keep_restart_knobs(struct config *next, const struct config *cur,
    void (*warn)(const char *key))
{
	const struct knob *k;
	size_t i;

	for (i = 0; i < KNOB_COUNT; i++) {
		k = &config_knobs[i];
		if (!(k->flags & KF_RESTART) || field_equal(next, cur, k))
			continue;
		field_copy(next, cur, k);
		next->source[i] = cur->source[i];
		if (warn != NULL)
			warn(k->key);
	}
}

int
config_resolve_paths(struct config *cfg, const char *dir, char *err,
    size_t errlen)
{
	struct ectx e = { err, errlen, NULL };
	size_t i;

	for (i = 0; i < KNOB_COUNT; i++) {
		const struct knob *k = &config_knobs[i];
		char **f = field(cfg, k), *abs;

		if (!(k->flags & KF_PATH) || *f == NULL || (*f)[0] == '\0' ||
		    (*f)[0] == '/')
			continue;
		abs = path_absolute(dir, *f);
		if ((int64_t)strlen(abs) > k->max) {
			errf(&e, "config: %s: \"%s\" is %s, %zu bytes; at "
				 "most %lld",
			    k->key, *f, abs, strlen(abs), (long long)k->max);
			free(abs);
			return -1;
		}
		free(*f);
		*f = abs;
	}
	return 0;
}

static const char *
flags_text(unsigned f, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s", (f & KF_SECRET) ? "secret," : "",
	    (f & KF_RESTART) ? "restart," : "",
	    (f & KF_OPTIONAL) ? "optional," : "",
	    (f & KF_PATH) ? "path," : "",
	    (f & KF_SEED) ? "top-level," : "");
	if (buf[0] == '\0')
		snprintf(buf, len, "-");
	else
		buf[strlen(buf) - 1] = '\0';
	return buf;
}

static const char *
allowed_text(const struct knob *k, char *buf, size_t len)
{
	switch (k->type) {
	case KT_INT:
		snprintf(buf, len, "%lld..%lld", (long long)k->min,
		    (long long)k->max);
		break;
	case KT_BOOL:
		snprintf(buf, len, "true|false");
		break;
	case KT_STR:
		snprintf(buf, len, "length %lld..%lld", (long long)k->min,
		    (long long)k->max);
		break;
	case KT_ENUM:
		snprintf(buf, len, "%s", k->allowed);
		break;
	case KT_ADDR:
		snprintf(buf, len, "host:port, [v6]:port");
		break;
	case KT_URL:
		snprintf(buf, len, "%s URL",
		    k->allowed ? k->allowed : "http|https");
		break;
	case KT_STRLIST:
	case KT_CIDRLIST:
		if (k->max > 0)
			snprintf(buf, len, "%s, %lld..%lld items",
			    k->type == KT_CIDRLIST ? "CIDRs" : "strings",
			    (long long)k->min, (long long)k->max);
		else
			snprintf(buf, len, "%s",
			    k->type == KT_CIDRLIST ? "CIDRs" : "strings");
		break;
	case KT_JSON:
		snprintf(buf, len, "JSON %s",
		    k->allowed ? k->allowed : "value");
		break;
	}
	return buf;
}

/* md_cell - text for a Markdown table cell ('|' escaped). */
static void
md_cell(FILE *out, const char *s, int code)
{
	if (code)
		fputc('`', out);
	for (; *s != '\0'; s++) {
		if (*s == '|')
			fputc('\\', out);
		fputc(*s, out);
	}
	if (code)
		fputc('`', out);
}

void
config_help(FILE *out, int markdown)
{
	char env[128], fl[64], al[96], def[160];
	const struct knob *k;
	size_t i;

	if (markdown) {
		fputs("# relgate configuration reference\n\n"
		      "Generated by `relgated --help-config=markdown` from "
		      "`conf/knobs.def`; do not edit by hand.\n"
		      "How the file, the environment and precedence work: "
		      "[configuration.md](configuration.md).\n\n"
		      "| key | environment | type | default | allowed | "
		      "flags | description |\n"
		      "|---|---|---|---|---|---|---|\n",
		    out);
	}
	for (i = 0; i < KNOB_COUNT; i++) {
		k = &config_knobs[i];
		config_env_name(k, env, sizeof(env));
		flags_text(k->flags, fl, sizeof(fl));
		allowed_text(k, al, sizeof(al));
		if (!markdown) {
			if (k->def == NULL)
				snprintf(def, sizeof(def), "unset");
			else
				snprintf(def, sizeof(def), "%s", k->def);
			fprintf(out, "%s env=%s type=%s default=%s%s%s "
				     "allowed=%s flags=%s -- %s\n",
			    k->key, env, type_name(k->type), def,
			    k->envdef ? " envdefault=" : "",
			    k->envdef ? k->envdef : "", al, fl, k->doc);
			continue;
		}
		fputs("| ", out);
		md_cell(out, k->key, 1);
		fputs(" | ", out);
		md_cell(out, env, 1);
		fprintf(out, " | %s | ", type_name(k->type));
		if (k->envdef != NULL) {
			snprintf(def, sizeof(def), "$%s", k->envdef);
			md_cell(out, def, 1);
			fputs(" if set, else ", out);
		}
		if (k->def == NULL)
			fputs("unset", out);
		else if (k->def[0] == '\0')
			fputs("`\"\"`", out);
		else
			md_cell(out, k->def, 1);
		fputs(" | ", out);
		md_cell(out, al, 0);
		fprintf(out, " | %s | ", fl);
		md_cell(out, k->doc, 0);
		fputs(" |\n", out);
	}
}
