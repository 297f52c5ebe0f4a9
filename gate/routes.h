/*
 * routes - the proxied routes of the config (routes[], SPEC §3): a public
 * path forwarded to the application backend, with auth and a limiter.
 *   {"method":"POST","path":"/api/whatsapp/link-code",
 *    "backend_path":"/whatsapp/link-code","auth":"jwt"|"none",
 *    "bucket":"wa_link_code","key":"user"|"ip"}
 * Parsed once, checked by relgated at start, -t and reload (one line per
 * error, naming routes[i].member), and used by the ingress.
 */
#ifndef RG_ROUTES_H
#define RG_ROUTES_H

#include <stddef.h>

#include <jansson.h>

#define ROUTE_PATH_MAX 256

struct proxy_route {
	char method[8];
	char path[ROUTE_PATH_MAX];
	char backend_path[ROUTE_PATH_MAX];
	int auth_jwt;  /* 1: Authorization: Bearer <JWT> required */
	int bucket;    /* rate-limit bucket (shm/ratelimit), -1: none */
	int key_user;  /* limiter key: 1 the token's sub, 0 the client IP */
};

/*
 * routes_parse - routes (a JSON array) into *out (free()) / *n.  0, or -1
 * with one line in err ("routes[0].auth: must be \"jwt\" or \"none\"").
 */
int routes_parse(const json_t *routes, struct proxy_route **out, size_t *n,
    char *err, size_t errlen);

#endif
