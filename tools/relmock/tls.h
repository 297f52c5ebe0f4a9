/*
 * tls - relmock's HTTPS front: a test CA made at start, and a TLS
 * terminator (mbedTLS, server side) that pumps each connection's bytes to
 * and from relmock's own plain HTTP listener.
 *
 * Owns the process's CTR_DRBG, the test CA and server certificate (the
 * keys never leave memory; only DIR/ca.pem is written), the TLS listener
 * and its connections.  Knows nothing of HTTP: every request, fault and
 * record is the plain listener's, so they apply over HTTPS unchanged.
 *
 * Must never listen on anything but a loopback address, nor buffer more
 * than MOCK_TLS_BUFSZ bytes per direction per connection.
 */
#ifndef RG_RELMOCK_TLS_H
#define RG_RELMOCK_TLS_H

struct event_base;
struct mock_tls;

/* bytes buffered per direction per connection (backpressure above) */
#define MOCK_TLS_BUFSZ 16384

/*
 * mock_tls_start - seed the DRBG, make a test CA and a certificate for
 * "localhost" (CN and DNS subjectAltName) signed by it, write the CA
 * certificate to dir/ca.pem (mode 0644; dir is created), listen on
 * hostport (loopback only; port 0 picks one) and serve TLS 1.2+ there on
 * base, forwarding every connection to the listener plain_fd is bound to.
 * Exits (fatal/fatalx) on any failure.  verbose: log failed handshakes.
 */
struct mock_tls *mock_tls_start(struct event_base *base, const char *hostport,
    const char *dir, int plain_fd, int verbose);
/* mock_tls_port - the TLS listening port, host byte order. */
unsigned mock_tls_port(const struct mock_tls *t);
/* mock_tls_free - close the listener and every connection, free every
 * mbedTLS context.  Not from inside one of t's callbacks. */
void mock_tls_free(struct mock_tls *t);

#endif
