/*
 * clientip - see clientip.h.
 */
#include "gate/clientip.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0xff, 0xff };

void
clientip_set_init(struct cidr_set *set)
{
	memset(set, 0, sizeof(*set));
}

/* is_v4mapped - 1 if the 16 bytes are ::ffff:a.b.c.d. */
static int
is_v4mapped(const uint8_t *a)
{
	return memcmp(a, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0;
}

/* mask_host - clear every bit after the first bits of addr (len bytes). */
static void
mask_host(uint8_t *addr, size_t len, unsigned bits)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		addr[i] &= (uint8_t)(0xff << (8 - bits));
		bits = 0;
	}
}

int
clientip_set_add(
    struct cidr_set *set, const char *cidr, char *err, size_t errlen)
{
	const char *slash = strchr(cidr, '/');
	struct cidr c;
	char addr[64];
	unsigned bits = 0, maxbits;
	size_t n, i;

	memset(&c, 0, sizeof(c));
	if (set->n >= CLIENTIP_MAX_CIDRS) {
		snprintf(err, errlen, "too many trusted proxy CIDRs (max %d)",
		    CLIENTIP_MAX_CIDRS);
		return -1;
	}
	if (slash == NULL) {
		snprintf(err, errlen,
		    "\"%.64s\" is not a CIDR: missing "
		    "/prefix (e.g. 10.0.0.0/8, ::1/128)",
		    cidr);
		return -1;
	}
	n = (size_t)(slash - cidr);
	if (n == 0 || n >= sizeof(addr)) {
		snprintf(
		    err, errlen, "\"%.64s\" is not a CIDR: bad address", cidr);
		return -1;
	}
	memcpy(addr, cidr, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, c.addr) == 1) {
		c.family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
		c.family = AF_INET6;
		maxbits = 128;
	} else {
		snprintf(err, errlen,
		    "\"%.64s\" is not a CIDR: \"%.64s\" is "
		    "not an IPv4 or IPv6 address",
		    cidr, addr);
		return -1;
	}
	for (i = 1; slash[i] != '\0'; i++) {
		if (slash[i] < '0' || slash[i] > '9' || i > 3)
			break;
		bits = bits * 10 + (unsigned)(slash[i] - '0');
	}
	if (i == 1 || slash[i] != '\0' || bits > maxbits) {
		snprintf(err, errlen,
		    "\"%.64s\" is not a CIDR: prefix must "
		    "be 0..%u",
		    cidr, maxbits);
		return -1;
	}
	if (c.family == AF_INET6 && bits >= 96 && is_v4mapped(c.addr)) {
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.family = AF_INET;
		bits -= 96;
	}
	c.bits = (uint8_t)bits;
	mask_host(c.addr, sizeof(c.addr), bits);
	set->v[set->n++] = c;
	return 0;
}

/* sa_addr - family and address bytes of sa, IPv4-mapped IPv6 as IPv4;
 * 0 or -1 if sa is neither IPv4 nor IPv6. */
static int
sa_addr(const struct sockaddr *sa, int *family, uint8_t addr[16])
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (sa == NULL)
		return -1;
	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		memcpy(addr, &sin->sin_addr, 4);
		*family = AF_INET;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(addr, &sin6->sin6_addr, 16);
		*family = AF_INET6;
		if (is_v4mapped(addr)) {
			memmove(addr, addr + 12, 4);
			memset(addr + 4, 0, 12);
			*family = AF_INET;
		}
		return 0;
	}
	return -1;
}

/* cidr_match - 1 if addr of family is inside c. */
static int
cidr_match(const struct cidr *c, int family, const uint8_t *addr)
{
	unsigned full = c->bits / 8, rest = c->bits % 8;
	uint8_t mask;

	if (c->family != family)
		return 0;
	if (memcmp(c->addr, addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (addr[full] & mask) == c->addr[full];
}

int
clientip_set_contains(const struct cidr_set *set, const struct sockaddr *sa)
{
	uint8_t addr[16];
	int family;
	size_t i;

	if (set == NULL || sa_addr(sa, &family, addr) < 0)
		return 0;
	for (i = 0; i < set->n; i++)
		if (cidr_match(&set->v[i], family, addr))
			return 1;
	return 0;
}

/* format - normalised text of an address into out. */
static void
format(int family, const uint8_t *addr, char *out, size_t outlen)
{
	const char *p;

	assert(outlen >= CLIENTIP_BUFSZ);
	p = inet_ntop(family, addr, out, (socklen_t)outlen);
	assert(p != NULL);
	(void)p;
}

int
clientip_parse_addr(const char *v, size_t len, char *out, size_t outlen)
{
	char buf[64];
	uint8_t addr[16];
	const char *end;
	size_t n;
	int family;

	if (v == NULL)
		return -1;
	end = memchr(v, ',', len);
	if (end != NULL)
		len = (size_t)(end - v);
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return -1;
	if (v[0] == '[') {
		if (len < 3 || v[len - 1] != ']')
			return -1;
		n = len - 2;
		memcpy(buf, v + 1, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET6, buf, addr) != 1)
			return -1;
		family = AF_INET6;
	} else {
		memcpy(buf, v, len);
		buf[len] = '\0';
		memset(addr, 0, sizeof(addr));
		if (inet_pton(AF_INET, buf, addr) == 1)
			family = AF_INET;
		else if (inet_pton(AF_INET6, buf, addr) == 1)
			family = AF_INET6;
		else
			return -1;
	}
	if (family == AF_INET6 && is_v4mapped(addr)) {
		memmove(addr, addr + 12, 4);
		family = AF_INET;
	}
	format(family, addr, out, outlen);
	return 0;
}

enum clientip_source
clientip_pick(const struct cidr_set *trusted, const struct sockaddr *peer,
    const struct clientip_hdrs *hdrs, char *out, size_t outlen)
{
	static const struct {
		const char *name;
		enum clientip_source src;
	} order[] = {
		{ "cf-connecting-ip", CLIENTIP_CF },
		{ "x-forwarded-for", CLIENTIP_XFF },
		{ "x-real-ip", CLIENTIP_XRI },
	};
	uint8_t addr[16];
	const char *v;
	size_t i, len;
	int family;

	assert(outlen >= CLIENTIP_BUFSZ);
	if (sa_addr(peer, &family, addr) < 0) {
		snprintf(out, outlen, "unknown");
		return CLIENTIP_UNKNOWN;
	}
	if (hdrs != NULL && hdrs->get != NULL &&
	    clientip_set_contains(trusted, peer)) {
		for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
			len = 0;
			v = hdrs->get(hdrs->ctx, order[i].name, &len);
			if (v != NULL &&
			    clientip_parse_addr(v, len, out, outlen) == 0)
				return order[i].src;
		}
	}
	format(family, addr, out, outlen);
	return CLIENTIP_PEER;
}
