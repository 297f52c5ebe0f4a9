/*
 * metrics - the segment as Prometheus text (see metrics.h).
 */
#include "shm/metrics.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "proto/roles.h"
#include "shm/admission.h"
#include "shm/bulkhead.h"
#include "shm/circuit.h"
#include "shm/ratelimit.h"
#include "shm/requests.h"
#include "util/util.h"

struct mb {
	char *p;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3)))
put(struct mb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (n > 0 ? (size_t)n : 0);
		b->p = xrealloc(b->p, b->cap);
	}
	b->len += (size_t)n;
}

/* put_escaped - s with \, " (when quoted) and newlines escaped. */
static void
put_escaped(struct mb *b, const char *s, int quoted)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			put(b, "\\\\");
		else if (*s == '\n')
			put(b, "\\n");
		else if (*s == '"' && quoted)
			put(b, "\\\"");
		else
			put(b, "%c", *s);
	}
}

size_t
metrics_name(char *buf, size_t len, const char *pub)
{
	size_t n = 0;

	for (; *pub != '\0' && n + 2 < len; pub++) {
		unsigned char ch = (unsigned char)*pub;

		if (isupper(ch)) {
			if (n > 0 && buf[n - 1] != '_')
				buf[n++] = '_';
			buf[n++] = (char)tolower(ch);
		} else if (isalnum(ch)) {
			buf[n++] = (char)ch;
		} else if (n > 0 && buf[n - 1] != '_') {
			buf[n++] = '_';
		}
	}
	buf[n] = '\0';
	return n;
}

static int
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && strcmp(s + n - t, tail) == 0;
}

/*
 * A family: its full name, type and how its raw value is shown.  From a
 * public name: "...Ms" is a duration (seconds), "...At" a time of day
 * (timestamp seconds), "...Milli" a fixed-point level; all divided by
 * 1000.
 */
struct fam {
	char name[128];
	const char *type;
	unsigned div;
};

static void
fam_make(struct fam *f, const char *prefix, const char *pub, int counter,
    int time)
{
	char snake[96], base[96];
	const char *suffix = "";

	f->div = 1;
	strlcpy_rg(base, pub, sizeof(base));
	if (time) {
		suffix = "_timestamp_seconds";
		f->div = 1000;
	} else if (ends_with(base, "Ms")) {
		base[strlen(base) - 2] = '\0';
		suffix = "_seconds";
		f->div = 1000;
	} else if (ends_with(base, "At")) {
		suffix = "_timestamp_seconds";
		f->div = 1000;
	} else if (ends_with(base, "Milli")) {
		base[strlen(base) - 5] = '\0';
		f->div = 1000;
	}
	metrics_name(snake, sizeof(snake), base);
	snprintf(f->name, sizeof(f->name), "relgate_%s%s%s%s", prefix, snake,
	    suffix, counter ? "_total" : "");
	f->type = counter ? "counter" : "gauge";
}

static void
fam_head(struct mb *b, const struct fam *f, const char *help)
{
	put(b, "# HELP %s ", f->name);
	put_escaped(b, help, 0);
	put(b, "\n# TYPE %s %s\n", f->name, f->type);
}

/* fam_value - " value\n" in the family's unit. */
static void
fam_value(struct mb *b, const struct fam *f, uint64_t v)
{
	if (f->div == 1)
		put(b, " %llu\n", (unsigned long long)v);
	else
		put(b, " %.3f\n", (double)v / f->div);
}

/* --- the process table -----------------------------------------------------*/

struct procs {
	const struct shm_seg *seg;
	const char *slot[SHM_MAX_PROCS];
	unsigned role[SHM_MAX_PROCS], instance[SHM_MAX_PROCS];
	unsigned n;
};

static void
procs_collect(const struct shm_seg *seg, struct procs *ps)
{
	const struct shm_area *pa = shm_area(seg, SHM_AREA_PROC);

	ps->seg = seg;
	ps->n = 0;
	for (unsigned s = 0; pa != NULL && s < shm_proc_count(seg); s++) {
		const struct shm_proc *p = shm_proc(seg, s);

		if (s > 0 && SHM_LOAD(&p->state) == SHM_STATE_UNUSED)
			continue;
		ps->slot[ps->n] = (const char *)p;
		ps->role[ps->n] = SHM_LOAD(&p->role);
		ps->instance[ps->n] = SHM_LOAD(&p->instance);
		ps->n++;
	}
}

static void
proc_labels(struct mb *b, const struct procs *ps, unsigned i)
{
	put(b, "{role=\"%s\",instance=\"%u\"", role_name(ps->role[i]),
	    ps->instance[i]);
}

static uint64_t
desc_value(const struct shm_desc *d, const char *slot)
{
	uint64_t u64 = 0;
	uint32_t u32;
	int32_t i32;

	switch (d->type) {
	case SHM_T_U32:
		memcpy(&u32, slot + d->offset, 4);
		return u32;
	case SHM_T_I32:
		memcpy(&i32, slot + d->offset, 4);
		return i32 < 0 ? 0 : (uint64_t)i32;
	default:
		memcpy(&u64, slot + d->offset, 8);
		return u64;
	}
}

static void
render_procs(struct mb *b, const struct shm_seg *seg)
{
	struct procs ps;
	const struct shm_desc *d;
	size_t nd;
	struct fam f;

	procs_collect(seg, &ps);
	d = shm_descs(seg, &nd);
	strlcpy_rg(f.name, "relgate_process_state", sizeof(f.name));
	f.type = "gauge";
	f.div = 1;
	fam_head(b, &f,
	    "1 for the lifecycle state the process is in, else 0");
	for (unsigned i = 0; i < ps.n; i++) {
		uint32_t st = SHM_LOAD(
		    &((const struct shm_proc *)(const void *)ps.slot[i])->state);

		for (unsigned s = SHM_STATE_STARTING; s < SHM_NSTATES; s++) {
			put(b, "%s", f.name);
			proc_labels(b, &ps, i);
			put(b, ",state=\"%s\"} %d\n", shm_state_name(s),
			    st == s);
		}
	}
	for (size_t k = 0; d != NULL && k < nd; k++) {
		char name[sizeof(d[k].name) + 1], doc[sizeof(d[k].doc) + 1];
		int dotted, any = 0;

		if (strncmp(d[k].area, "proc", sizeof(d[k].area)) != 0)
			continue;
		if (d[k].type == SHM_T_ROLE || d[k].type == SHM_T_STATE ||
		    d[k].type == SHM_T_EXIT)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)sizeof(d[k].name),
		    d[k].name);
		snprintf(doc, sizeof(doc), "%.*s", (int)sizeof(d[k].doc),
		    d[k].doc);
		if (strcmp(name, "instance") == 0)
			continue; /* a label */
		dotted = strchr(name, '.') != NULL;
		fam_make(&f, dotted ? "" : "process_", name,
		    d[k].type == SHM_T_COUNTER, d[k].type == SHM_T_TIME_MS);
		for (unsigned i = 0; i < ps.n; i++) {
			if (!shm_counter_applies(name,
				role_name(ps.role[i])))
				continue;
			if (!any++)
				fam_head(b, &f, doc);
			put(b, "%s", f.name);
			proc_labels(b, &ps, i);
			put(b, "}");
			fam_value(b, &f, desc_value(&d[k], ps.slot[i]));
		}
	}
}

/* --- answers per route ------------------------------------------------------*/

static void
route_labels(struct mb *b, unsigned inst, const struct rq_row *r)
{
	put(b, "{role=\"ingress\",instance=\"%u\",route=\"", inst);
	put_escaped(b, r->name, 1);
	put(b, "\"");
}

/* rows - call fn for every named row of every block that was written */
#define FOR_ROWS(seg, inst, blk, r)                                       \
	for (unsigned inst = 0; inst < RQ_MAX_INSTANCES; inst++)          \
		for (const struct rq_block *blk = rq_block(seg, inst);    \
		     blk != NULL && SHM_LOAD(&blk->pid) != 0; blk = NULL) \
			for (const struct rq_row *r = blk->row;           \
			     r < blk->row + RQ_MAX_ROUTES; r++)            \
				if (r->name[0] != '\0')

static void
render_requests(struct mb *b, const struct shm_seg *seg)
{
	struct fam f = { "relgate_route_requests_total", "counter", 1 };
	int any;

	fam_head(b, &f,
	    "requests over, by route and status class (none: no answer)");
	FOR_ROWS(seg, inst, blk, r)
	{
		for (unsigned c = 0; c < RQ_NCLASSES; c++) {
			put(b, "%s", f.name);
			route_labels(b, inst, r);
			put(b, ",class=\"%s\"} %llu\n", rq_class_name(c),
			    (unsigned long long)SHM_LOAD(&r->classes[c]));
		}
	}
	f = (struct fam){ "relgate_route_errors_total", "counter", 1 };
	any = 0;
	FOR_ROWS(seg, inst, blk, r)
	{
		for (unsigned e = 0; e < RG_E_COUNT; e++) {
			uint64_t v = SHM_LOAD(&r->codes[e]);

			if (v == 0)
				continue;
			if (!any++)
				fam_head(b, &f,
				    "classified error answers, by route and "
				    "error code (an error event of a stream "
				    "that began 200 included)");
			put(b, "%s", f.name);
			route_labels(b, inst, r);
			put(b, ",code=\"%s\"} %llu\n",
			    rq_code_name(e),
			    (unsigned long long)v);
		}
	}
	f = (struct fam){ "relgate_route_response_bytes_total", "counter", 1 };
	fam_head(b, &f, "bytes of the answers (head and body), by route");
	FOR_ROWS(seg, inst, blk, r)
	{
		put(b, "%s", f.name);
		route_labels(b, inst, r);
		put(b, "} %llu\n", (unsigned long long)SHM_LOAD(&r->bytes));
	}
	f = (struct fam){ "relgate_route_response_seconds", "histogram", 1 };
	fam_head(b, &f,
	    "time from the request head to the answer's head, by route");
	FOR_ROWS(seg, inst, blk, r)
	{
		uint64_t cum = 0;

		for (unsigned i = 0; i <= RQ_NBUCKETS; i++) {
			cum += SHM_LOAD(&r->buckets[i]);
			put(b, "%s_bucket", f.name);
			route_labels(b, inst, r);
			put(b, ",le=\"%s\"} %llu\n", rq_bucket_le(i),
			    (unsigned long long)cum);
		}
		put(b, "%s_sum", f.name);
		route_labels(b, inst, r);
		put(b, "} %.6f\n", (double)SHM_LOAD(&r->sum_us) / 1e6);
		put(b, "%s_count", f.name);
		route_labels(b, inst, r);
		put(b, "} %llu\n", (unsigned long long)cum);
	}
}

/* --- outbound calls -----------------------------------------------------------*/

/* oc_used - a row that counted anything */
static int
oc_used(const struct oc_row *r)
{
	for (unsigned v = 0; v < OC_NVERDICTS; v++)
		if (SHM_LOAD(&r->verdicts[v]) != 0)
			return 1;
	for (unsigned o = 0; o < OC_NOUTCOMES; o++)
		if (SHM_LOAD(&r->outcomes[o]) != 0)
			return 1;
	return 0;
}

#define FOR_OC_ROWS(seg, slot, blk, p, r)                                 \
	for (unsigned slot = 0; slot < SHM_MAX_PROCS; slot++)             \
		for (const struct oc_block *blk = oc_block(seg, slot);    \
		     blk != NULL && SHM_LOAD(&blk->pid) != 0; blk = NULL) \
			for (unsigned p = 0; p < CB_NPROVIDERS; p++)      \
				for (const struct oc_row *r = &blk->row[p]; \
				     r != NULL && oc_used(r); r = NULL)

static void
oc_labels(struct mb *b, const struct shm_seg *seg, unsigned slot,
    unsigned provider)
{
	const struct shm_proc *p = shm_proc(seg, slot);

	/* a slot no process uses now: its counts stay, whose they were
	 * is not known */
	if (p != NULL && SHM_LOAD(&p->state) == SHM_STATE_UNUSED && slot > 0)
		p = NULL;
	put(b, "{role=\"%s\",instance=\"%u\",provider=\"%s\"",
	    role_name(p != NULL ? SHM_LOAD(&p->role) : ROLE_COUNT),
	    p != NULL ? SHM_LOAD(&p->instance) : 0, cb_provider_name(provider));
}

/* oc_counters - a counter family of the rows: verdicts (1) or
 * outcomes (0), labelled by their names */
static void
oc_counters(struct mb *b, const struct shm_seg *seg, int verdicts,
    const char *name, const char *help)
{
	struct fam f = { "", "counter", 1 };
	unsigned n = verdicts ? OC_NVERDICTS : OC_NOUTCOMES;

	strlcpy_rg(f.name, name, sizeof(f.name));
	fam_head(b, &f, help);
	FOR_OC_ROWS(seg, slot, blk, p, r)
	{
		for (unsigned k = 0; k < n; k++) {
			put(b, "%s", f.name);
			oc_labels(b, seg, slot, p);
			put(b, ",%s=\"%s\"} %llu\n",
			    verdicts ? "verdict" : "outcome",
			    verdicts ? oc_verdict_name(k) : oc_outcome_name(k),
			    (unsigned long long)SHM_LOAD(verdicts ?
				    &r->verdicts[k] :
				    &r->outcomes[k]));
		}
	}
}

static void
render_outcalls(struct mb *b, const struct shm_seg *seg)
{
	struct fam f;

	oc_counters(b, seg, 0, "relgate_outcall_attempts_total",
	    "attempts of outbound calls, by provider and outcome (the "
	    "answer's status class, or why there was none)");
	oc_counters(b, seg, 1, "relgate_outcall_calls_total",
	    "outbound calls, by provider and verdict (retries included in "
	    "one call)");
	f = (struct fam){ "relgate_outcall_response_seconds", "histogram", 1 };
	fam_head(b, &f, "time from an attempt's start to its answer's head, "
			"by provider");
	FOR_OC_ROWS(seg, slot, blk, p, r)
	{
		uint64_t cum = 0;

		for (unsigned i = 0; i <= RQ_NBUCKETS; i++) {
			cum += SHM_LOAD(&r->buckets[i]);
			put(b, "%s_bucket", f.name);
			oc_labels(b, seg, slot, p);
			put(b, ",le=\"%s\"} %llu\n", rq_bucket_le(i),
			    (unsigned long long)cum);
		}
		put(b, "%s_sum", f.name);
		oc_labels(b, seg, slot, p);
		put(b, "} %.6f\n", (double)SHM_LOAD(&r->sum_us) / 1e6);
		put(b, "%s_count", f.name);
		oc_labels(b, seg, slot, p);
		put(b, "} %llu\n", (unsigned long long)cum);
	}
}

/* --- rate limits, circuits, bulkheads ----------------------------------------*/

static const char *const rl_tstat_docs[] = {
#define RL_TSTAT_DOC(id, name, doc) doc,
	RL_TSTATS(RL_TSTAT_DOC)
#undef RL_TSTAT_DOC
};
static const char *const rl_tstat_names[] = {
#define RL_TSTAT_NAME(id, name, doc) name,
	RL_TSTATS(RL_TSTAT_NAME)
#undef RL_TSTAT_NAME
};

static void
render_ratelimit(struct mb *b, const struct shm_seg *seg)
{
	struct fam f = { "relgate_ratelimit_decisions_total", "counter", 1 };

	if (rl_area_of(seg) == NULL)
		return;
	fam_head(b, &f, "rate-limit decisions, by bucket and outcome");
	for (unsigned k = 0; k < RL_NBUCKETS; k++)
		for (unsigned o = 0; o < RL_NOUTCOMES; o++)
			put(b, "%s{bucket=\"%s\",outcome=\"%s\"} %llu\n",
			    f.name, rl_bucket_name(k), rl_outcome_name(o),
			    (unsigned long long)rl_count(seg, k, o));
	for (unsigned t = 0; t < RL_NTSTATS; t++) {
		fam_make(&f, "ratelimit_table_", rl_tstat_names[t],
		    t != RL_TS_SLOTS, 0);
		fam_head(b, &f, rl_tstat_docs[t]);
		put(b, "%s", f.name);
		fam_value(b, &f, rl_tstat(seg, t));
	}
}

static const char *const cb_counter_names[] = {
#define CB_C_NAME(id, name, doc) name,
	CB_COUNTERS(CB_C_NAME)
#undef CB_C_NAME
};
static const char *const cb_counter_docs[] = {
#define CB_C_DOC(id, name, doc) doc,
	CB_COUNTERS(CB_C_DOC)
#undef CB_C_DOC
};

static void
render_circuits(struct mb *b, const struct shm_seg *seg)
{
	struct cb_status st[CB_NPROVIDERS];
	int ok[CB_NPROVIDERS], any = 0;
	struct fam f = { "relgate_circuit_state", "gauge", 1 };
	static const struct {
		const char *pub, *doc;
	} gauges[] = {
		{ "consecutiveFailures", "failures in a row (closed)" },
		{ "probesInFlight", "probe requests out (half_open)" },
		{ "threshold", "failures in a row that open it" },
		{ "cooldownMs", "how long it stays open" },
		{ "openedAt", "when it last opened (0: never)" },
	};

	for (unsigned p = 0; p < CB_NPROVIDERS; p++)
		any |= ok[p] = cb_status(seg, p, &st[p]) == 0;
	if (!any)
		return;
	fam_head(b, &f, "1 for the state the circuit is in, else 0");
	for (unsigned p = 0; p < CB_NPROVIDERS; p++)
		for (unsigned s = 0; ok[p] && s < CB_NSTATES; s++)
			put(b, "%s{provider=\"%s\",state=\"%s\"} %d\n", f.name,
			    cb_provider_name(p), cb_state_name(s),
			    st[p].state == s);
	for (unsigned g = 0; g < RG_NELEM(gauges); g++) {
		fam_make(&f, "circuit_", gauges[g].pub, 0, 0);
		fam_head(b, &f, gauges[g].doc);
		for (unsigned p = 0; p < CB_NPROVIDERS; p++) {
			uint64_t v[] = { st[p].consecutive_failures,
				st[p].probes_in_flight, st[p].threshold,
				st[p].cooldown_ms, st[p].opened_at };

			if (!ok[p])
				continue;
			put(b, "%s{provider=\"%s\"}", f.name,
			    cb_provider_name(p));
			fam_value(b, &f, v[g]);
		}
	}
	for (unsigned c = 0; c < CB_NCOUNTERS; c++) {
		fam_make(&f, "circuit_", cb_counter_names[c], 1, 0);
		fam_head(b, &f, cb_counter_docs[c]);
		for (unsigned p = 0; p < CB_NPROVIDERS; p++) {
			if (!ok[p])
				continue;
			put(b, "%s{provider=\"%s\"}", f.name,
			    cb_provider_name(p));
			fam_value(b, &f, st[p].counters[c]);
		}
	}
}

static const char *const bh_counter_names[] = {
#define BH_C_NAME(id, name, doc) name,
	BH_COUNTERS(BH_C_NAME)
#undef BH_C_NAME
};
static const char *const bh_counter_docs[] = {
#define BH_C_DOC(id, name, doc) doc,
	BH_COUNTERS(BH_C_DOC)
#undef BH_C_DOC
};

static void
render_bulkheads(struct mb *b, const struct shm_seg *seg)
{
	const struct bh_area *a = bh_area_of(seg);
	uint64_t now = now_ms();
	struct fam f;

	if (a == NULL)
		return;
	f = (struct fam){ "relgate_bulkhead_inflight", "gauge", 1 };
	fam_head(b, &f, "live leases (held and not expired)");
	for (unsigned p = 0; p < BH_NPROVIDERS; p++)
		put(b, "%s{provider=\"%s\"} %u\n", f.name, bh_provider_name(p),
		    bh_inflight(seg, p, now));
	f = (struct fam){ "relgate_bulkhead_max_concurrent", "gauge", 1 };
	fam_head(b, &f, "places of the bulkhead (as last used)");
	for (unsigned p = 0; p < BH_NPROVIDERS; p++)
		put(b, "%s{provider=\"%s\"} %u\n", f.name, bh_provider_name(p),
		    SHM_LOAD(&a->prov[p].max_concurrent));
	for (unsigned c = 0; c < BH_NCOUNTERS; c++) {
		fam_make(&f, "bulkhead_", bh_counter_names[c], 1, 0);
		fam_head(b, &f, bh_counter_docs[c]);
		for (unsigned p = 0; p < BH_NPROVIDERS; p++) {
			put(b, "%s{provider=\"%s\"}", f.name,
			    bh_provider_name(p));
			fam_value(b, &f, bh_count(seg, p, c));
		}
	}
}

/* --- admission ---------------------------------------------------------------*/

#define ADM_TABLE(T)                                                      \
	static const struct {                                             \
		const char *name, *doc;                                   \
	} T

static void
render_admission(struct mb *b, const struct shm_seg *seg)
{
	const struct adm_area *a = adm_area_of(seg);
	ADM_TABLE(dims[]) = {
#define ADM_DIM_ROW(id, name, enforce, limit) { name, "" },
		ADM_DIMS(ADM_DIM_ROW)
#undef ADM_DIM_ROW
	};
	ADM_TABLE(fields[]) = {
#define ADM_ROW(id, name, doc) { name, doc },
		ADM_DIM_FIELDS(ADM_ROW)
	};
	ADM_TABLE(counters[]) = { ADM_COUNTERS(ADM_ROW) };
	ADM_TABLE(settings[]) = { ADM_SETTINGS(ADM_ROW) };
	ADM_TABLE(gauges[]) = { ADM_GAUGES(ADM_ROW) };
#undef ADM_ROW
	static const char *const modes[] = {
#define ADM_MODE_ROW(id, name) name,
		ADM_MODES(ADM_MODE_ROW)
#undef ADM_MODE_ROW
	};
	struct fam f;

	if (a == NULL || !shm_described(&a->head.described))
		return;
	for (unsigned k = 0; k < ADM_NDIMFIELDS; k++) {
		/* enforce and limit are settings; the others only grow */
		fam_make(&f, "admission_dimension_", fields[k].name,
		    k != ADM_F_ENFORCE && k != ADM_F_LIMIT, 0);
		fam_head(b, &f, fields[k].doc);
		for (unsigned d = 0; d < ADM_NDIMS; d++) {
			put(b, "%s{dimension=\"%s\"}", f.name, dims[d].name);
			fam_value(b, &f, SHM_LOAD(&a->dims[d][k]));
		}
	}
	for (unsigned k = 0; k < ADM_NCOUNTERS; k++) {
		fam_make(&f, "admission_", counters[k].name, 1, 0);
		fam_head(b, &f, counters[k].doc);
		put(b, "%s", f.name);
		fam_value(b, &f, SHM_LOAD(&a->counters[k]));
	}
	f = (struct fam){ "relgate_admission_gateway_mode", "gauge", 1 };
	fam_head(b, &f, "1 for the gateway mode of POST /api/chat, else 0");
	for (unsigned m = 0; m < ADM_NMODES; m++)
		put(b, "%s{mode=\"%s\"} %d\n", f.name, modes[m],
		    SHM_LOAD(&a->settings[ADM_S_GATEWAY_MODE]) == m);
	for (unsigned k = 0; k < ADM_NSETTINGS; k++) {
		if (k == ADM_S_GATEWAY_MODE)
			continue;
		fam_make(&f, "admission_", settings[k].name, 0, 0);
		fam_head(b, &f, settings[k].doc);
		put(b, "%s", f.name);
		fam_value(b, &f, SHM_LOAD(&a->settings[k]));
	}
	for (unsigned k = 0; k < ADM_NGAUGES; k++) {
		fam_make(&f, "admission_", gauges[k].name, 0, 0);
		fam_head(b, &f, gauges[k].doc);
		put(b, "%s", f.name);
		fam_value(b, &f, SHM_LOAD(&a->gauges[k]));
	}
}

char *
metrics_render(const struct shm_seg *seg, size_t *len)
{
	struct mb b = { xmalloc(65536), 0, 65536 };

	put(&b, "# HELP relgate_build_info the relgate version running\n"
		"# TYPE relgate_build_info gauge\n"
		"relgate_build_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);
	put(&b, "# HELP relgate_start_time_seconds when the supervisor "
		"started\n# TYPE relgate_start_time_seconds gauge\n"
		"relgate_start_time_seconds %.3f\n",
	    (double)SHM_LOAD(&seg->hdr->started_at) / 1000);
	put(&b, "# HELP relgate_config_generation configuration generation "
		"in force (1 at start, +1 per applied reload)\n"
		"# TYPE relgate_config_generation gauge\n"
		"relgate_config_generation %llu\n",
	    (unsigned long long)SHM_LOAD(&seg->hdr->config_gen));
	render_procs(&b, seg);
	render_requests(&b, seg);
	render_outcalls(&b, seg);
	render_ratelimit(&b, seg);
	render_circuits(&b, seg);
	render_bulkheads(&b, seg);
	render_admission(&b, seg);
	*len = b.len;
	return b.p;
}
