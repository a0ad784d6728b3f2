/*
 * cli_health: `berth healthcheck`, a liveness probe for container engines
 * and service monitors that have no HTTP client of their own: one GET of
 * /healthz on the address the daemon listens on, exit status 0 when it
 * answers 200.
 *
 * The target comes from the same settings `berth serve` reads (config file
 * or $BERTH_CONFIG, then the environment, then --listen), so a container
 * configured with BERTH_* variables needs no extra arguments. A wildcard
 * listen address (0.0.0.0, ::) is probed on loopback. With TLS configured
 * the probe speaks TLS without verifying the certificate: it talks to its
 * own daemon, sends no credentials and reads nothing but a status code.
 */
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "buf.h"
#include "config.h"


static const char health_usage[] =
	"usage: berth healthcheck [-c FILE] [--listen HOST:PORT] [--url URL] [--timeout SECONDS]\n"
	"\n"
	"  GET /healthz from the local daemon; exit 0 when it answers 200, 1 otherwise.\n"
	"  -c FILE    config file (env BERTH_CONFIG), read for the listen address and TLS\n"
	"  --listen   address the daemon listens on (env BERTH_LISTEN); wildcards mean loopback\n"
	"  --url      probe this URL instead (http:// or https://HOST[:PORT]/PATH)\n"
	"  --timeout  seconds to wait for the whole exchange (default 5)\n";

struct target {
	char host[256];
	char port[8];
	char path[1024];
	int tls;
};

/* Splits http(s)://host[:port][/path] into t; returns 0 or -1. */
static int parse_url(const char *url, struct target *t)
{
	const char *p, *slash, *colon, *hend;
	size_t hlen;
	if (!strncmp(url, "http://", 7)) {
		p = url + 7;
		t->tls = 0;
	} else if (!strncmp(url, "https://", 8)) {
		p = url + 8;
		t->tls = 1;
	} else {
		return -1;
	}
	slash = strchr(p, '/');
	hend = slash ? slash : p + strlen(p);
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(hend - p));
		if (!close)
			return -1;
		colon = close[1] == ':' ? close + 1 : NULL;
		hlen = (size_t)(close - p - 1);
		p++;
	} else {
		colon = memchr(p, ':', (size_t)(hend - p));
		hlen = (size_t)((colon ? colon : hend) - p);
	}
	if (!hlen || hlen >= sizeof(t->host))
		return -1;
	memcpy(t->host, p, hlen);
	t->host[hlen] = '\0';
	if (colon) {
		size_t plen = (size_t)(hend - colon - 1);
		if (!plen || plen >= sizeof(t->port) || strspn(colon + 1, "0123456789") < plen)
			return -1;
		memcpy(t->port, colon + 1, plen);
		t->port[plen] = '\0';
	} else {
		snprintf(t->port, sizeof(t->port), "%s", t->tls ? "443" : "80");
	}
	if (snprintf(t->path, sizeof(t->path), "%s", slash ? slash : "/") >= (int)sizeof(t->path))
		return -1;
	if (strpbrk(t->path, " \r\n"))
		return -1;
	return 0;
}

/* The daemon's own address: listen, with a wildcard replaced by loopback. */
static int target_from_config(const struct config *c, struct target *t)
{
	unsigned port;
	if (config_listen_split(c->listen, t->host, &port))
		return -1;
	if (!strcmp(t->host, "0.0.0.0") || !*t->host)
		snprintf(t->host, sizeof(t->host), "127.0.0.1");
	else if (!strcmp(t->host, "::"))
		snprintf(t->host, sizeof(t->host), "::1");
	snprintf(t->port, sizeof(t->port), "%u", port);
	snprintf(t->path, sizeof(t->path), "/healthz");
	t->tls = c->tls_cert != NULL;
	return 0;
}

static int connect_to(const struct target *t, int timeout_s)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	struct timeval tv = { .tv_sec = timeout_s };
	int fd = -1, rc;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(t->host, t->port, &hints, &res))) {
		fprintf(stderr, "healthcheck: %s: %s\n", t->host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		/* SO_SNDTIMEO also bounds connect(2) on Linux. */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		rc = errno;
		close(fd);
		fd = -1;
		errno = rc;
	}
	if (fd < 0)
		fprintf(stderr, "healthcheck: cannot connect to %s port %s: %s\n", t->host, t->port, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

/* Sends the request and reads the status line; returns the HTTP status, or -1. */
static int exchange(int fd, SSL *ssl, const struct target *t)
{
	struct buf req = BUF_INIT;
	char resp[256];
	size_t got = 0, sent = 0;
	int status = -1;
	int v6 = strchr(t->host, ':') != NULL;
	buf_addf(&req, "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n", t->path, v6 ? "[" : "", t->host, v6 ? "]" : "",
		 t->port);
	buf_adds(&req, "User-Agent: berth-healthcheck\r\nConnection: close\r\n\r\n");
	while (sent < req.len) {
		int n = ssl ? SSL_write(ssl, req.buf + sent, (int)(req.len - sent))
			    : (int)write(fd, req.buf + sent, req.len - sent);
		if (n <= 0)
			goto out;
		sent += (size_t)n;
	}
	/* The status line is all that is needed. */
	while (got < sizeof(resp) - 1 && !memchr(resp, '\n', got)) {
		int n = ssl ? SSL_read(ssl, resp + got, (int)(sizeof(resp) - 1 - got))
			    : (int)read(fd, resp + got, sizeof(resp) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	resp[got] = '\0';
	if (got >= 12 && !strncmp(resp, "HTTP/1.", 7) && resp[8] == ' ')
		status = atoi(resp + 9);
out:
	buf_release(&req);
	return status;
}

/* The HTTP status of t, -1 when the answer is not HTTP, -2 when nothing listens. */
static int probe(const struct target *t, int timeout_s, int quiet)
{
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	int status = -1, fd = connect_to(t, timeout_s);
	if (fd < 0)
		return -2;
	if (t->tls) {
		ctx = SSL_CTX_new(TLS_client_method());
		if (!ctx || !(ssl = SSL_new(ctx))) {
			fprintf(stderr, "healthcheck: cannot set up TLS\n");
			goto out;
		}
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
		if (!strchr(t->host, ':') && strspn(t->host, "0123456789.") != strlen(t->host))
			SSL_set_tlsext_host_name(ssl, t->host);
		SSL_set_fd(ssl, fd);
		if (SSL_connect(ssl) != 1) {
			unsigned long e = ERR_get_error();
			fprintf(stderr, "healthcheck: TLS handshake with %s port %s failed: %s\n", t->host, t->port,
				e ? ERR_reason_error_string(e) : "connection closed");
			goto out;
		}
	}
	status = exchange(fd, ssl, t);
	if (status < 0 && !quiet)
		fprintf(stderr, "healthcheck: no HTTP answer from %s port %s\n", t->host, t->port);
out:
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	SSL_CTX_free(ctx);
	close(fd);
	return status;
}

int cli_health_main(int argc, char **argv)
{
	const char *config_path = NULL, *listen = NULL, *url = NULL, *timeout = NULL;
	struct target t;
	int timeout_s = 5, status;

	memset(&t, 0, sizeof(t));
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **slot = NULL;
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			fputs(health_usage, stdout);
			return 0;
		}
		if (!strcmp(o, "-c") || !strcmp(o, "--config"))
			slot = &config_path;
		else if (!strcmp(o, "--listen"))
			slot = &listen;
		else if (!strcmp(o, "--url"))
			slot = &url;
		else if (!strcmp(o, "--timeout"))
			slot = &timeout;
		if (!slot || !v)
			return cli_usage_error(health_usage, "unknown or incomplete option \"%s\"", o);
		*slot = v;
		i++;
	}
	if (timeout) {
		char *end;
		long n = strtol(timeout, &end, 10);
		if (*end || end == timeout || n < 1 || n > 3600) {
			fprintf(stderr, "error: --timeout wants a number of seconds from 1 to 3600, not \"%s\"\n",
				timeout);
			return 2;
		}
		timeout_s = (int)n;
	}
	if (url) {
		if (parse_url(url, &t)) {
			fprintf(stderr, "error: --url wants http(s)://HOST[:PORT][/PATH], not \"%s\"\n", url);
			return 2;
		}
	} else {
		struct config cfg;
		struct buf err = BUF_INIT;
		int rc = config_load(&cfg, config_path, &err);
		if (rc)
			fprintf(stderr, "error: %s\n", err.buf);
		else if (listen)
			config_set_str(&cfg.listen, listen);
		if (!rc && target_from_config(&cfg, &t)) {
			fprintf(stderr, "error: cannot tell the address to probe from listen \"%s\"\n", cfg.listen);
			rc = 1;
		}
		buf_release(&err);
		config_release(&cfg);
		if (rc)
			return 1;
	}
	/* A daemon given its TLS settings on the command line (-c FILE passed to
	 * `berth serve` only) answers plain HTTP with a failed handshake: try TLS. */
	status = probe(&t, timeout_s, !url && !t.tls);
	if (status == -1 && !url && !t.tls) {
		t.tls = 1;
		status = probe(&t, timeout_s, 0);
	}
	if (status == 200) {
		printf("ok\n");
		return 0;
	}
	if (status > 0)
		fprintf(stderr, "healthcheck: %s answered HTTP %d\n", t.path, status);
	return 1;
}
