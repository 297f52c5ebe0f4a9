/*
 * control - relmock's control API under /_relmock/: health, reset of
 * everything, per-endpoint counters, default faults at run time, and the
 * hand-off of /_relmock/<endpoint>/<rest> to that endpoint's control hook.
 *
 * Owns nothing but the routing of those paths.  Faults never apply here
 * (faultable = 0): a test must always be able to look and to reset.
 */
#include <string.h>

#include "tools/relmock/relmock.h"

static void
stats(struct mock_call *call)
{
	char spec[MOCK_FAULT_SPEC_MAX];
	struct mock_epstate *es;
	json_t *o = json_object(), *e;
	size_t i;

	for (i = 0; i < mock_endpoint_count(); i++) {
		es = mock_endpoint_at(i);
		e = mock_fault_stats_json(&es->stats);
		mock_fault_format(&es->fault, spec, sizeof(spec));
		json_object_set_new(e, "defaultFault", json_string(spec));
		json_object_set_new(o, es->ep->name, e);
	}
	mock_reply_json(call, 200, json_pack("{s:o}", "endpoints", o));
}

static void
faults_list(struct mock_call *call)
{
	char spec[MOCK_FAULT_SPEC_MAX];
	struct mock_epstate *es;
	json_t *o = json_object();
	size_t i;

	for (i = 0; i < mock_endpoint_count(); i++) {
		es = mock_endpoint_at(i);
		if (!es->ep->faultable)
			continue;
		mock_fault_format(&es->fault, spec, sizeof(spec));
		json_object_set_new(o, es->ep->name, json_string(spec));
	}
	mock_reply_json(call, 200, o);
}

/* fault_set - POST /_relmock/faults/<name>, body = spec; an empty body
 * restores the config file's default */
static void
fault_set(struct mock_call *call, const char *name)
{
	struct mock_epstate *es = mock_endpoint_find(name);
	char spec[MOCK_FAULT_SPEC_MAX], err[160];
	struct mock_fault f;
	const char *body;
	size_t len;

	if (es == NULL || !es->ep->faultable) {
		mock_reply_error(call, 404, "not_found", "no such endpoint");
		return;
	}
	body = mock_call_body(call, &len);
	while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r'))
		len--;
	if (len >= sizeof(spec)) {
		mock_reply_error(call, 400, "bad_fault_spec", "too long");
		return;
	}
	memcpy(spec, body, len);
	spec[len] = '\0';
	if (mock_fault_parse(spec, &f, err, sizeof(err)) < 0) {
		mock_reply_error(call, 400, "bad_fault_spec", err);
		return;
	}
	es->fault = f.set ? f : es->conf_fault;
	mock_fault_format(&es->fault, spec, sizeof(spec));
	mock_reply_json(call, 200,
	    json_pack(
	        "{s:b,s:s,s:s}", "ok", 1, "endpoint", name, "fault", spec));
}

static void
control_handle(struct mock_call *call)
{
	const char *rest = mock_call_path_rest(call);
	const char *slash = strchr(rest, '/');
	struct mock_epstate *es;
	char name[64];
	size_t n;

	if (strcmp(rest, "health") == 0) {
		if (mock_require_method(call, "GET"))
			mock_reply_json(
			    call, 200, json_pack("{s:b}", "ok", 1));
		return;
	}
	if (strcmp(rest, "reset") == 0) {
		if (mock_require_method(call, "POST")) {
			mock_reset_all();
			mock_reply_json(
			    call, 200, json_pack("{s:b}", "ok", 1));
		}
		return;
	}
	if (strcmp(rest, "stats") == 0) {
		if (mock_require_method(call, "GET"))
			stats(call);
		return;
	}
	if (strcmp(rest, "faults") == 0) {
		if (mock_require_method(call, "GET"))
			faults_list(call);
		return;
	}
	if (strncmp(rest, "faults/", 7) == 0) {
		if (mock_require_method(call, "POST"))
			fault_set(call, rest + 7);
		return;
	}
	n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	if (slash != NULL && n < sizeof(name)) {
		memcpy(name, rest, n);
		name[n] = '\0';
		es = mock_endpoint_find(name);
		if (es != NULL && es->ep->control != NULL &&
		    es->ep->control(call, slash + 1) == 0)
			return;
	}
	mock_reply_error(call, 404, "not_found", "no such control");
}

const struct mock_endpoint mock_control_ep = {
	.name = "control",
	.prefix = "/_relmock/",
	.faultable = 0,
	.handle = control_handle,
};
