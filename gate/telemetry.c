/*
 * telemetry - coalescing of rate-limit and admission events (see
 * telemetry.h).
 */
#include <string.h>

#include "util/util.h"

#include "gate/telemetry.h"

/* fnv_str - FNV-1a of s continued from h, then a separator byte (0xff,
 * never in text), so "ab"+"c" and "a"+"bc" differ. */
static uint64_t
fnv_str(uint64_t h, const char *s)
{
	static const unsigned char sep = 0xff;

	if (s != NULL)
		h = fnv1a(h, s, strlen(s));
	return fnv1a(h, &sep, 1);
}

/* ev_hash - FNV-1a of (bucket, key, outcome, reason); never 0. */
static uint64_t
ev_hash(const struct tel_occurrence *oc)
{
	uint64_t h = 1469598103934665603ull ^ oc->outcome;

	h = fnv_str(fnv_str(fnv_str(h, oc->bucket), oc->key), oc->reason);
	return h ? h : 1;
}

int
tel_note(struct tel_table *t, const struct tel_occurrence *oc,
    uint64_t now_ms, tel_send_fn send, void *arg)
{
	uint64_t h = ev_hash(oc);
	struct tel_slot *s = &t->slot[h % TEL_SLOTS];

	if (s->hash == h && s->window_start != 0 &&
	    now_ms - s->window_start < TEL_WINDOW_MS) {
		s->pending++;
		s->ev.retry_after_ms = oc->retry_after_ms;
		return 1;
	}
	if (s->window_start != 0 && s->pending > 0)
		send(arg, &s->ev, s->pending); /* evicted: flush what it held */
	s->hash = h;
	s->window_start = now_ms ? now_ms : 1;
	s->pending = 0;
	s->ev.outcome = oc->outcome;
	s->ev.retry_after_ms = oc->retry_after_ms;
	strlcpy_rg(s->ev.bucket, oc->bucket, sizeof(s->ev.bucket));
	strlcpy_rg(s->ev.key, oc->key, sizeof(s->ev.key));
	strlcpy_rg(s->ev.path, oc->path, sizeof(s->ev.path));
	strlcpy_rg(s->ev.method, oc->method, sizeof(s->ev.method));
	strlcpy_rg(s->ev.reason, oc->reason != NULL ? oc->reason : "",
	    sizeof(s->ev.reason));
	send(arg, &s->ev, 1);
	return 0;
}

void
tel_flush(struct tel_table *t, uint64_t now_ms, tel_send_fn send, void *arg)
{
	for (unsigned i = 0; i < TEL_SLOTS; i++) {
		struct tel_slot *s = &t->slot[i];

		if (s->pending == 0 || now_ms - s->window_start < TEL_WINDOW_MS)
			continue;
		send(arg, &s->ev, s->pending);
		s->pending = 0;
		s->window_start = now_ms ? now_ms : 1;
	}
}

void
tel_message(const struct tel_event *ev, uint32_t count, const char *source,
    uint64_t now_ms, struct proto_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = PROTO_T_RL_EVENT;
	m->u.rl_event.created_at = now_ms;
	m->u.rl_event.retry_after_ms = ev->retry_after_ms;
	m->u.rl_event.outcome = ev->outcome;
	m->u.rl_event.count = count;
	m->u.rl_event.source = proto_str_from(source);
	m->u.rl_event.bucket = proto_str_from(ev->bucket);
	m->u.rl_event.key = proto_str_from(ev->key);
	m->u.rl_event.reason = proto_str_from(ev->reason);
	m->u.rl_event.path = proto_str_from(ev->path);
	m->u.rl_event.method = proto_str_from(ev->method);
}
