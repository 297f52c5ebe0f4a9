/*
 * relmock - a local upstream for relgate's tests, demos and drills.
 *
 * One process on loopback serving, through relgate's own HTTP server
 * (http/server.h), the endpoint modules of the table below: the
 * application backend, an OAuth token endpoint, a Sentry envelope
 * receiver, and the /_relmock control API.  Owns the options, the config
 * file, the listener, routing by path prefix, the bounded record lists
 * and a clean exit on SIGTERM/SIGINT.  Fault injection is faults.c;
 * the HTTPS front (--tls-listen), a TLS terminator that forwards to the
 * plain listener, is tls.c.
 *
 * Must never listen on anything but a loopback address, nor keep records
 * past the configured bounds.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "tools/relmock/relmock.h"
#include "tools/relmock/tls.h"
#include "tools/relmock/workers.h"
#include "util/log.h"
#include "util/util.h"

#define DEFAULT_LISTEN           "127.0.0.1:8089"
#define DEFAULT_MAX_RECORDS      100000
#define DEFAULT_MAX_RECORD_BYTES (256u << 20)
#define DEFAULT_MAX_BODY         (8u << 20)
#define MAX_WORKERS              64

/*
 * The endpoint modules.  Adding an upstream = one file defining a
 * struct mock_endpoint + one line here (+ its extern in relmock.h and the
 * file in Makefile.am).  The longest matching prefix wins (among
 * endpoints whose suffix, if any, ends the path).
 */
static const struct mock_endpoint *const endpoints[] = {
	&mock_control_ep,
	&mock_backend_ep,
	&mock_oauth_ep,
	&mock_sentry_ep,
	&mock_chat_ep,
	&mock_serper_ep,
	&mock_ebay_ep,
};

#define NEP RG_NELEM(endpoints)

static struct mock_epstate epstates[NEP];
static struct mock_conf conf;
static struct event_base *base;
static in_port_t listen_port;

const struct mock_conf *
mock_conf(void)
{
	return &conf;
}

struct event_base *
mock_base(void)
{
	return base;
}

in_port_t
mock_listen_port(void)
{
	return listen_port;
}

size_t
mock_endpoint_count(void)
{
	return NEP;
}

struct mock_epstate *
mock_endpoint_at(size_t i)
{
	return i < NEP ? &epstates[i] : NULL;
}

struct mock_epstate *
mock_endpoint_find(const char *name)
{
	size_t i;

	for (i = 0; i < NEP; i++)
		if (strcmp(epstates[i].ep->name, name) == 0)
			return &epstates[i];
	return NULL;
}

void
mock_reset_all(void)
{
	size_t i;

	for (i = 0; i < NEP; i++) {
		if (epstates[i].ep->reset != NULL)
			epstates[i].ep->reset();
		memset(&epstates[i].stats, 0, sizeof(epstates[i].stats));
		epstates[i].fault = epstates[i].conf_fault;
	}
}

/* --- records --------------------------------------------------------- */

uint64_t
mock_log_add(struct mock_log *log, json_t *rec)
{
	size_t sz;

	if (log->items == NULL)
		log->items = json_array();
	log->seq++;
	json_object_set_new(rec, "seq", json_integer((json_int_t)log->seq));
	sz = json_dumpb(rec, NULL, 0, JSON_COMPACT);
	if (json_array_size(log->items) >= conf.max_records ||
	    log->bytes + sz > conf.max_record_bytes) {
		log->dropped++;
		json_decref(rec);
		return log->seq;
	}
	log->bytes += sz;
	json_array_append_new(log->items, rec);
	return log->seq;
}

void
mock_log_clear(struct mock_log *log)
{
	json_decref(log->items);
	memset(log, 0, sizeof(*log));
}

json_t *
mock_log_items(const struct mock_log *log)
{
	return log->items != NULL ? json_incref(log->items) : json_array();
}

json_t *
mock_json_body(const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, JSON_DECODE_ANY, NULL);

	if (j == NULL)
		j = json_stringn(body, len);
	return j != NULL ? j : json_null();
}

/* --- HTTP ------------------------------------------------------------ */

/* suffix_ok - 1 if the endpoint has no suffix or path ends with it */
static int
suffix_ok(const struct mock_endpoint *ep, const char *path)
{
	size_t n = ep->suffix != NULL ? strlen(ep->suffix) : 0;
	size_t len = strlen(path);

	return n == 0 || (len >= n && strcmp(path + len - n, ep->suffix) == 0);
}

/* route - the endpoint with the longest prefix of path */
static struct mock_epstate *
route(const char *path)
{
	struct mock_epstate *best = NULL;
	size_t i, n, bestn = 0;

	for (i = 0; i < NEP; i++) {
		n = strlen(epstates[i].ep->prefix);
		if (n > bestn &&
		    strncmp(path, epstates[i].ep->prefix, n) == 0 &&
		    suffix_ok(epstates[i].ep, path)) {
			best = &epstates[i];
			bestn = n;
		}
	}
	return best;
}

static int64_t
on_head(void *arg, struct httpd_req *req)
{
	static const char nf[] = "{\"error\":{\"code\":\"not_found\","
	                         "\"message\":\"no relmock endpoint here\"}}";
	struct httpd_header h = { "Content-Type", "application/json" };
	struct mock_epstate *es = route(httpd_req_path(req));

	(void)arg;
	if (es == NULL) {
		if (conf.verbose)
			log_info("%s %s -> 404 no endpoint",
			    httpd_req_method(req), httpd_req_path(req));
		httpd_respond(req, 404, &h, 1, nf, sizeof(nf) - 1);
		return -1;
	}
	(void)mock_call_new(req, es);
	return (int64_t)conf.max_body;
}

static void
on_request(void *arg, struct httpd_req *req)
{
	struct mock_call *call = httpd_req_data(req);

	(void)arg;
	if (call != NULL)
		mock_call_start(call, req);
}

/* errors get the server's fallback JSON; the call ends by its close cb */
static const struct httpd_ops mock_http = {
	.on_head = on_head,
	.on_request = on_request,
};

/* --- config ---------------------------------------------------------- */

static size_t
conf_size(json_t *j, const char *key, size_t def, size_t lo)
{
	json_t *v = json_object_get(j, key);

	if (v == NULL)
		return def;
	if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo)
		fatalx("config: %s must be an integer >= %zu", key, lo);
	return (size_t)json_integer_value(v);
}

static const char *
conf_str(json_t *j, const char *key, const char *def)
{
	json_t *v = json_object_get(j, key);

	if (v == NULL)
		return def;
	if (!json_is_string(v))
		fatalx("config: %s must be a string", key);
	return json_string_value(v);
}

/* load_config - read path (NULL: none) into conf; strict: an unknown key
 * is an error, not ignored */
static void
load_config(const char *path)
{
	static const char *const known[] = { "listen", "backend_secret",
		"sentry_key", "max_records", "max_record_bytes",
		"max_body_bytes", "faults" };
	json_error_t jerr;
	json_t *faults, *v;
	const char *key;
	char err[160];
	size_t i;
	int ok;

	if (path == NULL) {
		conf.json = json_object();
	} else if ((conf.json = json_load_file(path, 0, &jerr)) == NULL) {
		fatalx("config %s:%d: %s", path, jerr.line, jerr.text);
	} else if (!json_is_object(conf.json)) {
		fatalx("config %s: not a JSON object", path);
	}
	json_object_foreach(conf.json, key, v)
	{
		ok = mock_endpoint_find(key) != NULL; /* endpoint sections */
		for (i = 0; i < RG_NELEM(known); i++)
			ok |= strcmp(key, known[i]) == 0;
		if (!ok)
			fatalx("config: unknown key '%s'", key);
	}
	conf.listen = conf_str(conf.json, "listen", DEFAULT_LISTEN);
	conf.backend_secret = conf_str(conf.json, "backend_secret", NULL);
	conf.sentry_key = conf_str(conf.json, "sentry_key", NULL);
	conf.max_records =
	    conf_size(conf.json, "max_records", DEFAULT_MAX_RECORDS, 1);
	conf.max_record_bytes = conf_size(
	    conf.json, "max_record_bytes", DEFAULT_MAX_RECORD_BYTES, 1024);
	conf.max_body =
	    conf_size(conf.json, "max_body_bytes", DEFAULT_MAX_BODY, 1024);
	faults = json_object_get(conf.json, "faults");
	if (faults != NULL && !json_is_object(faults))
		fatalx("config: faults must be an object");
	json_object_foreach(faults, key, v)
	{
		struct mock_epstate *es = mock_endpoint_find(key);

		if (es == NULL || !es->ep->faultable)
			fatalx(
			    "config: faults: no faultable endpoint '%s'", key);
		if (!json_is_string(v) ||
		    mock_fault_parse(json_string_value(v), &es->conf_fault,
		        err, sizeof(err)) < 0)
			fatalx("config: faults.%s: %s", key,
			    json_is_string(v) ? err : "must be a string");
		es->fault = es->conf_fault;
	}
}

/* loopback - 1 if the bound address of fd is a loopback one */
static int
loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const struct sockaddr_in *s4 = (const void *)&ss;
	const struct sockaddr_in6 *s6 = (const void *)&ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		fatal("getsockname");
	if (ss.ss_family == AF_INET) {
		listen_port = s4->sin_port;
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss.ss_family == AF_INET6) {
		listen_port = s6->sin6_port;
		return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
	}
	return 0;
}

/* --- main ------------------------------------------------------------ */

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_info("signal %d: exiting", (int)sig);
	event_base_loopbreak(base);
}

static void
usage(int code)
{
	fprintf(code == 0 ? stdout : stderr,
	    "usage: relmock [-l HOST:PORT] [-c CONFIG.json] "
	    "[--backend-secret S]\n"
	    "               [--tls-listen HOST:PORT --tls-dir DIR] "
	    "[--workers N] [-v]\n"
	    "  -l, --listen HOST:PORT  loopback address [%s]; port 0 "
	    "picks one\n"
	    "  -c, --config FILE       JSON config (docs/relmock.md)\n"
	    "  --backend-secret S      HMAC key of X-Relgate-Signature\n"
	    "  --tls-listen HOST:PORT  also serve HTTPS there (loopback)\n"
	    "  --tls-dir DIR           where the test CA goes (DIR/ca.pem)\n"
	    "  --workers N             N processes on the port, each with "
	    "its own records [1]\n"
	    "  -v, --verbose           one log line per request\n"
	    "  --help, --version\n",
	    DEFAULT_LISTEN);
	exit(code);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, 'c' },
		{ "backend-secret", required_argument, NULL, 'S' },
		{ "tls-listen", required_argument, NULL, 'T' },
		{ "tls-dir", required_argument, NULL, 'D' },
		{ "workers", required_argument, NULL, 'W' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_opt = NULL, *config = NULL, *secret = NULL;
	const char *tls_listen = NULL, *tls_dir = NULL;
	struct mock_tls *tls = NULL;
	struct httpd_limits lim = { 0 };
	struct event *sigterm, *sigint;
	struct httpd *h;
	char err[256], *end;
	size_t i;
	int opt, fd, verbose = 0;
	long workers = 1;

	log_init("relmock", 0);
	while (
	    (opt = getopt_long(argc, argv, "l:c:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen_opt = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'S':
			secret = optarg;
			break;
		case 'T':
			tls_listen = optarg;
			break;
		case 'D':
			tls_dir = optarg;
			break;
		case 'W':
			workers = strtol(optarg, &end, 10);
			if (*end != '\0' || workers < 1 ||
			    workers > MAX_WORKERS)
				fatalx("--workers: want 1 to %d", MAX_WORKERS);
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(0);
			break;
		case 'V':
			printf("relmock %s\n", RG_VERSION);
			return 0;
		default:
			usage(2);
		}
	}
	if (optind != argc || (tls_listen == NULL) != (tls_dir == NULL))
		usage(2);
	if (workers > 1 && tls_listen != NULL)
		fatalx("--tls-listen needs one process (no --workers)");
	for (i = 0; i < NEP; i++) {
		epstates[i].ep = endpoints[i];
		mock_fault_clear(&epstates[i].conf_fault);
		mock_fault_clear(&epstates[i].fault);
	}
	load_config(config);
	if (listen_opt != NULL)
		conf.listen = listen_opt;
	if (secret != NULL)
		conf.backend_secret = secret;
	conf.verbose = verbose;
	log_set_level(verbose ? LOG_LVL_INFO : LOG_LVL_WARN);
	signal(SIGPIPE, SIG_IGN);

	lim.max_connections = mock_nofile_conns();
	if ((fd = httpd_listen(conf.listen, workers > 1, err, sizeof(err))) <
	    0)
		fatalx("listen %s: %s", conf.listen, err);
	if (!loopback(fd))
		fatalx("listen %s: relmock serves loopback addresses only",
		    conf.listen);
	for (i = 0; i < NEP; i++) /* before the workers: one error, once */
		if (endpoints[i]->init != NULL)
			endpoints[i]->init(&conf);
	fd = mock_workers_start((unsigned)workers, fd);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	h = httpd_new(base, fd, &mock_http, NULL, &lim);
	sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(base, SIGINT, on_signal, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	if (tls_listen != NULL)
		tls = mock_tls_start(base, tls_listen, tls_dir, fd, verbose);
	if (mock_worker_index() == 0)
		printf("relmock listening on %s (port %u)\n", conf.listen,
		    (unsigned)ntohs(listen_port));
	if (tls != NULL)
		printf("relmock tls listening on %s (port %u), CA %s/ca.pem\n",
		    tls_listen, mock_tls_port(tls), tls_dir);
	fflush(stdout);

	if (event_base_dispatch(base) < 0)
		fatalx("event loop failed");

	mock_tls_free(tls);
	httpd_free(h); /* ends stalled calls */
	close(fd);
	for (i = 0; i < NEP; i++)
		if (endpoints[i]->fini != NULL)
			endpoints[i]->fini();
	event_free(sigterm);
	event_free(sigint);
	event_base_free(base);
	json_decref(conf.json);
	return 0;
}
