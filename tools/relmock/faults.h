/*
 * faults - relmock's fault injection, shared by every endpoint.
 *
 * Owns the fault spec language (`status=503;retry_after=2`,
 * `latency_ms=200`, `reset`, `stall`, `drip_ms=50`, `drop_after=100`,
 * `none`), the per-endpoint fault counters, and (faults.c) the
 * delivery of every answer: a handler says what a healthy upstream would
 * answer, the call's fault decides how it leaves.
 *
 * Must never apply a fault to the control API (struct mock_endpoint
 * faultable = 0), nor hold a connection's request pointer across loop
 * iterations.
 */
#ifndef RG_RELMOCK_FAULTS_H
#define RG_RELMOCK_FAULTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define MOCK_FAULT_SPEC_MAX 256

/* The kinds of fault, each counted per endpoint when applied: name, doc. */
#define MOCK_FAULT_KINDS(X)                                                   \
	X(status, "answer with status=N (402, 429, 5xx ...) instead")         \
	X(latency, "delay the answer by latency_ms=N")                        \
	X(reset, "reset the connection instead of answering")                 \
	X(stall, "never answer; wait until the client leaves")                \
	X(drip, "send the body drip_bytes at a time every drip_ms")           \
	X(drop, "reset the connection after drop_after=N body bytes")

struct mock_fault {
	int set;             /* a spec was given ("none" too) */
	int status;          /* 0: keep the endpoint's */
	int retry_after;     /* seconds; -1: no Retry-After */
	unsigned latency_ms; /* 0: none */
	int reset;           /* close with RST, no answer */
	int stall;           /* no answer at all */
	unsigned drip_ms;    /* 0: no drip */
	unsigned drip_bytes; /* per drip [4] */
	long drop_after;     /* body bytes before a reset; -1: none */
};

struct mock_fault_stats {
	uint64_t requests; /* requests that reached the endpoint */
	uint64_t faulted;  /* answers shaped by at least one fault */
#define MOCK_FAULT_STAT(name, doc) uint64_t name;
	MOCK_FAULT_KINDS(MOCK_FAULT_STAT)
#undef MOCK_FAULT_STAT
};

/* mock_fault_clear - no fault. */
void mock_fault_clear(struct mock_fault *f);
/* mock_fault_active - 1 if f changes the answer in any way. */
int mock_fault_active(const struct mock_fault *f);
/*
 * mock_fault_parse - parse spec (items separated by ';' or ','; keys
 * status, retry_after, latency_ms, drip_ms, drip_bytes, drop_after; flags
 * reset, stall, none) into f.  0, or -1 with a message in err.  An empty
 * spec is "no fault given" (f->set = 0).
 */
int mock_fault_parse(
    const char *spec, struct mock_fault *f, char *err, size_t errlen);
/* mock_fault_format - the canonical spec of f ("" for none). */
void mock_fault_format(const struct mock_fault *f, char *buf, size_t len);
/* mock_fault_count - count f as applied once. */
void mock_fault_count(struct mock_fault_stats *st, const struct mock_fault *f);
/* mock_fault_stats_json - the counters as a JSON object. */
json_t *mock_fault_stats_json(const struct mock_fault_stats *st);

#endif
