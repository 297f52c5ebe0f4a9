/*
 * clientip - which address a request is charged to (rate-limit buckets,
 * logs): the TCP peer, unless the peer is a trusted proxy; only then the
 * first address of cf-connecting-ip, x-forwarded-for, x-real-ip, in that
 * order.  Forwarding headers from any other peer are ignored: believing
 * them would let a client choose its own rate-limit bucket.
 *
 * Owns the trusted-proxy matcher (a fixed array, no allocation, safe to
 * copy).  Knows nothing about HTTP: headers come through a lookup
 * callback.  Pure functions, no I/O, no globals.
 */
#ifndef RG_GATE_CLIENTIP_H
#define RG_GATE_CLIENTIP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CLIENTIP_MAX_CIDRS 128
/* CLIENTIP_BUFSZ - room for any address clientip writes (INET6_ADDRSTRLEN) */
#define CLIENTIP_BUFSZ 46

/* one network: IPv4 as family AF_INET with addr[0..4); IPv4-mapped IPv6
 * networks (::ffff:a.b.c.d/96+n) are stored as IPv4 /n */
struct cidr {
	uint8_t family;
	uint8_t bits;
	uint8_t addr[16]; /* host bits cleared */
};

struct cidr_set {
	size_t n;
	struct cidr v[CLIENTIP_MAX_CIDRS];
};

/* where clientip_pick found the address */
enum clientip_source {
	CLIENTIP_PEER,    /* the TCP peer */
	CLIENTIP_CF,      /* cf-connecting-ip */
	CLIENTIP_XFF,     /* x-forwarded-for */
	CLIENTIP_XRI,     /* x-real-ip */
	CLIENTIP_UNKNOWN, /* peer is not IPv4/IPv6: out is "unknown" */
};

/* header lookup: value of header name (lowercase; the callee matches it
 * case-insensitively) and its length, or NULL when absent.  A header sent
 * several times may be given as its first instance. */
struct clientip_hdrs {
	const char *(*get)(void *ctx, const char *name, size_t *len);
	void *ctx;
};

/* clientip_set_init - empty set (trusts nobody). */
void clientip_set_init(struct cidr_set *set);

/* clientip_set_add - add "addr/prefix" (IPv4 /0..32, IPv6 /0..128; the
 * prefix is required; host bits are ignored).  0, or -1 with a one-line
 * reason naming the value in err (errlen bytes) and the set unchanged. */
int clientip_set_add(
    struct cidr_set *set, const char *cidr, char *err, size_t errlen);

/* clientip_set_contains - 1 if sa (AF_INET or AF_INET6; an IPv4-mapped
 * IPv6 address counts as IPv4) is in the set, else 0. */
int clientip_set_contains(
    const struct cidr_set *set, const struct sockaddr *sa);

/* clientip_parse_addr - the first element of a forwarding header value
 * v[0..len): text up to the first ',', trimmed of blanks, optionally in
 * [brackets], that parses as IPv4 or IPv6 (no port, no zone).  Writes the
 * normalised form (inet_ntop; IPv4-mapped IPv6 as IPv4) to out, which has
 * outlen >= CLIENTIP_BUFSZ bytes.  0, or -1 if malformed. */
int clientip_parse_addr(const char *v, size_t len, char *out, size_t outlen);

/* clientip_pick - the client address of a request from peer (see the
 * module comment), normalised, into out (outlen >= CLIENTIP_BUFSZ).  A
 * header that is present but malformed is skipped; with no usable header
 * the peer itself is the answer.  hdrs may be NULL. */
enum clientip_source clientip_pick(const struct cidr_set *trusted,
    const struct sockaddr *peer, const struct clientip_hdrs *hdrs, char *out,
    size_t outlen);

#endif
