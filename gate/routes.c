/*
 * routes - see routes.h.
 */
#include "gate/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/ratelimit.h"
#include "util/util.h"

static const char *
str_member(const json_t *o, const char *name)
{
	const json_t *v = json_object_get(o, name);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int
path_ok(const char *p)
{
	size_t n = p != NULL ? strlen(p) : 0;

	if (n < 1 || n >= ROUTE_PATH_MAX || p[0] != '/')
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || p[i] == '?' || p[i] == '#' ||
		    (unsigned char)p[i] >= 0x7f)
			return 0;
	return 1;
}

int
routes_parse(const json_t *routes, struct proxy_route **out, size_t *n,
    char *err, size_t errlen)
{
	static const char *const methods[] = { "GET", "POST", "PUT", "PATCH",
		"DELETE", NULL };
	static const char *const known[] = { "method", "path", "backend_path",
		"auth", "bucket", "key", NULL };
	struct proxy_route *r;
	size_t i;
	json_t *o;

	*out = NULL;
	*n = 0;
	if (routes == NULL || json_is_null(routes))
		return 0;
	if (!json_is_array(routes)) {
		snprintf(err, errlen, "routes: must be an array");
		return -1;
	}
	r = xcalloc(json_array_size(routes) + 1, sizeof(*r));
	json_array_foreach(routes, i, o) {
		struct proxy_route *p = &r[i];
		const char *m, *path, *bpath, *auth, *bucket, *key, *k;
		const json_t *v;
		int ok = 0;

		if (!json_is_object(o)) {
			snprintf(err, errlen, "routes[%zu]: must be an object",
			    i);
			goto bad;
		}
		json_object_foreach((json_t *)(uintptr_t)o, k, v) {
			int found = 0;

			(void)v;
			for (size_t j = 0; known[j] != NULL; j++)
				found |= strcmp(known[j], k) == 0;
			if (!found) {
				snprintf(err, errlen,
				    "routes[%zu]: unknown member \"%.40s\"", i,
				    k);
				goto bad;
			}
		}
		m = str_member(o, "method");
		for (size_t j = 0; m != NULL && methods[j] != NULL; j++)
			ok |= strcmp(methods[j], m) == 0;
		if (!ok) {
			snprintf(err, errlen,
			    "routes[%zu].method: must be GET, POST, PUT, PATCH "
			    "or DELETE",
			    i);
			goto bad;
		}
		path = str_member(o, "path");
		bpath = str_member(o, "backend_path");
		if (!path_ok(path) || !path_ok(bpath)) {
			snprintf(err, errlen,
			    "routes[%zu].%s: must be an absolute path without "
			    "query, under %d bytes",
			    i, path_ok(path) ? "backend_path" : "path",
			    ROUTE_PATH_MAX);
			goto bad;
		}
		auth = str_member(o, "auth");
		if (auth == NULL ||
		    (strcmp(auth, "jwt") != 0 && strcmp(auth, "none") != 0)) {
			snprintf(err, errlen,
			    "routes[%zu].auth: must be \"jwt\" or \"none\"", i);
			goto bad;
		}
		bucket = str_member(o, "bucket");
		p->bucket = -1;
		if (json_object_get(o, "bucket") != NULL &&
		    (bucket == NULL ||
			(p->bucket = rl_bucket_by_name(bucket)) < 0)) {
			snprintf(err, errlen,
			    "routes[%zu].bucket: not a rate-limit bucket", i);
			goto bad;
		}
		key = str_member(o, "key");
		if (key == NULL) {
			key = "ip";
		} else if (strcmp(key, "user") != 0 && strcmp(key, "ip") != 0) {
			snprintf(err, errlen,
			    "routes[%zu].key: must be \"user\" or \"ip\"", i);
			goto bad;
		}
		if (strcmp(key, "user") == 0 && strcmp(auth, "jwt") != 0) {
			snprintf(err, errlen,
			    "routes[%zu].key: \"user\" needs \"auth\": \"jwt\"",
			    i);
			goto bad;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(r[j].path, path) == 0 &&
			    strcmp(r[j].method, m) == 0) {
				snprintf(err, errlen,
				    "routes[%zu]: %s %s is defined twice", i, m,
				    path);
				goto bad;
			}
		strlcpy_rg(p->method, m, sizeof(p->method));
		strlcpy_rg(p->path, path, sizeof(p->path));
		strlcpy_rg(p->backend_path, bpath, sizeof(p->backend_path));
		p->auth_jwt = strcmp(auth, "jwt") == 0;
		p->key_user = strcmp(key, "user") == 0;
	}
	*out = r;
	*n = json_array_size(routes);
	return 0;
bad:
	free(r);
	return -1;
}
