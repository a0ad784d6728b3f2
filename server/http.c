/* http: libmicrohttpd daemon, request lifecycle and response writing. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "http_guard.h"
#include "log.h"
#include "authn.h"
#include "metrics.h"
#include "rand.h"
#include "registry.h"
#include "router.h"
#include "workq.h"
#include "xalloc.h"

/* Bodies up to this size are read and dropped before an early reply, so
 * the connection stays usable and the client sees the reply instead of a
 * reset. Large enough for a manifest a little over its limit (4 MiB by
 * default): refused with the rest of its body unread, the close reached a
 * proxy in front (haproxy) as a reset before the 413, and the client got
 * no answer. A larger body is refused at once and the connection closed. */
#define DRAIN_MAX (8 * 1024 * 1024)

/*
 * Request head limits, answered with the OCI error JSON (414, 431).
 * libmicrohttpd keeps a request's head in the connection's memory pool and
 * answers a head that does not fit there with its own HTML page, before
 * berth sees the request: CONN_POOL is four times HEAD_MAX so that only a head
 * of more than about CONN_POOL bytes reaches that page. Not more: between
 * two requests of a kept-alive connection libmicrohttpd 0.9.75 zeroes the
 * whole pool, so every connection that served a request holds CONN_POOL
 * bytes resident and each request pays for the memset (measured with
 * 512 KiB: 200 kept-alive connections took 110 MiB, and the memset was
 * 6.5% of the server's time under manifest pushes).
 */
#define URI_MAX (8 * 1024)
#define HEAD_MAX (32 * 1024)
#define CONN_POOL (128 * 1024)

struct http_server {
	struct MHD_Daemon *d;
	struct registry *reg;
	struct buf tls_cert, tls_key; /* PEM, kept for the daemon's life */
	struct http_guard guard;
};

/* Per-request glue state around the router's struct req. */
struct conn_state {
	struct req r;
	int started;
	int draining;  /* response decided; discard the rest of the body */
	int decided;   /* router said the reply is ready before the body */
	int suspended; /* waiting for a job on a pool */
	atomic_int resumed; /* the job finished and asked MHD to resume */
	int body_done; /* the whole request was read */
};

const char *req_header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static enum http_method method_of(const char *m)
{
	static const struct {
		const char *s;
		enum http_method m;
	} tab[] = {
		{ "GET", M_GET }, { "HEAD", M_HEAD }, { "PUT", M_PUT },
		{ "POST", M_POST }, { "PATCH", M_PATCH }, { "DELETE", M_DELETE },
	};
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strcmp(m, tab[i].s))
			return tab[i].m;
	return M_OTHER;
}

/*
 * A request id: a random per-process prefix and a counter, so ids are
 * unique without a syscall per request.
 */
static unsigned char id_prefix[4]; /* set by http_start() before any request */
static atomic_uint_fast64_t id_counter;

static void new_request_id(char out[REQUEST_ID_LEN + 1])
{
	const unsigned char *prefix = id_prefix;
	uint64_t n = atomic_fetch_add(&id_counter, 1);
	snprintf(out, REQUEST_ID_LEN + 1, "%02x%02x%02x%02x%08llx", prefix[0], prefix[1], prefix[2], prefix[3],
		 (unsigned long long)(n & 0xffffffffu));
}

/* Called by MHD with the raw request target, before any unescaping: the
 * router must see "%2F" as written, so the path is taken from here. */
static void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *con)
{
	struct conn_state *cs = xcalloc(1, sizeof(*cs));
	const char *q = strchr(uri, '?');
	(void)con;
	req_init(&cs->r);
	cs->r.reg = cls;
	cs->r.snap = registry_snapshot_get(cs->r.reg);
	cs->r.cfg = &cs->r.snap->cfg;
	cs->r.policy = cs->r.snap->policy;
	cs->r.start_ns = http_now_ns();
	new_request_id(cs->r.request_id);
	if (strlen(uri) > URI_MAX) {
		/* Only a prefix is kept: it is for the access log, never routed. */
		cs->r.path = xstrndup(uri, 256);
		req_fail(&cs->r, E_URI_TOO_LONG, "the request target exceeds %u bytes", URI_MAX);
		return cs;
	}
	cs->r.path = q ? xstrndup(uri, (size_t)(q - uri)) : xstrdup(uri);
	if (query_parse(q ? q + 1 : NULL, &cs->r.query))
		req_fail(&cs->r, E_BAD_REQUEST, "malformed query string");
	return cs;
}

static void fill_client(struct req *r, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, r->client, sizeof(r->client));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, r->client, sizeof(r->client));
	else
		strcpy(r->client, "-");
}

/*
 * File bodies over TLS. libmicrohttpd cannot use sendfile on a TLS
 * connection, and its file responses read 4 KiB at a time: every 4 KiB of a
 * blob became its own pread, TLS record and sendmsg (2 s of CPU per GB).
 * Over TLS a file body is read TLS_FILE_BLOCK bytes at a time instead, and
 * GnuTLS sends each block as full 16 KiB records (the protocol's largest).
 * Memory: one block per file body being sent, freed with the response.
 */
#define TLS_FILE_BLOCK (64 * 1024)

struct tls_file {
	int fd;
	uint64_t off;
};

static ssize_t tls_file_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	const struct tls_file *f = cls;
	ssize_t n = pread(f->fd, buf, max, (off_t)(f->off + pos));
	/* The length was announced: a file that ends early is an error, the connection is closed. */
	return n > 0 ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void tls_file_free(void *cls)
{
	struct tls_file *f = cls;
	close(f->fd);
	free(f);
}

/* A response of len bytes of fd from off: sendfile on plain HTTP, block
 * reads over TLS. Takes fd when it returns a response; NULL leaves it. */
static struct MHD_Response *file_response(struct MHD_Connection *conn, int fd, uint64_t off, uint64_t len)
{
	struct MHD_Response *resp;
	struct tls_file *f;
	if (!MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION))
		return MHD_create_response_from_fd_at_offset64(len, fd, off);
	f = xmalloc(sizeof(*f));
	f->fd = fd;
	f->off = off;
	resp = MHD_create_response_from_callback(len, len < TLS_FILE_BLOCK ? (size_t)len : TLS_FILE_BLOCK,
						 tls_file_read, f, tls_file_free);
	if (!resp)
		free(f);
	return resp;
}

/*
 * Bodies streaming from the object store (store_reader_pull()). The HTTP
 * threads serve many connections each and must not block: when no bytes
 * have arrived yet the connection is suspended (MHD's pattern for "no
 * data yet": suspend, return 0) and the store's reader thread resumes it
 * when some did. Blocks of REMOTE_BLOCK bytes (the store's reader wakes us
 * for about as many): fewer calls, sends and suspend/resume cycles per
 * MiB than 64 KiB ones. Memory: one block per body being sent.
 */
#define REMOTE_BLOCK (256 * 1024)

struct remote_body {
	struct store_reader *rd;
	struct MHD_Connection *conn;
};

static void remote_park(void *ctx)
{
	MHD_suspend_connection(((struct remote_body *)ctx)->conn);
}

static void remote_wake(void *ctx)
{
	MHD_resume_connection(((struct remote_body *)ctx)->conn);
}

static ssize_t remote_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct remote_body *b = cls;
	const struct store_waiter w = { remote_park, remote_wake, b };
	size_t n = 0;
	(void)pos; /* the store streams in order, which is how MHD asks */
	int rc = store_reader_pull(b->rd, buf, max, &n, &w);
	if (rc == STORE_PULL_WAIT)
		return 0;
	/* the length was announced: a store that fails or ends early closes the connection */
	return !rc && n ? (ssize_t)n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void remote_free(void *cls)
{
	struct remote_body *b = cls;
	store_reader_free(b->rd);
	free(b);
}

static struct MHD_Response *remote_response(struct MHD_Connection *conn, struct store_reader *rd, uint64_t len)
{
	struct remote_body *b = xmalloc(sizeof(*b));
	b->rd = rd;
	b->conn = conn;
	struct MHD_Response *resp = MHD_create_response_from_callback(len, len < REMOTE_BLOCK ? (size_t)len : REMOTE_BLOCK,
								      remote_read, b, remote_free);
	if (!resp)
		free(b);
	return resp;
}

static enum MHD_Result send_reply(struct conn_state *cs)
{
	struct req *r = &cs->r;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	if (r->err)
		router_error_reply(r);
	/* Handler state (such as exclusive use of an upload) ends before the
	 * reply leaves: a client may send its next request the moment it
	 * reads this one, on another connection. */
	if (r->on_cleanup) {
		r->on_cleanup(r);
		r->on_cleanup = NULL;
	}
	if (r->out_fd >= 0 && r->out_len > 0) {
		resp = file_response(r->conn, r->out_fd, r->out_off, r->out_len);
		if (resp)
			r->out_fd = -1; /* MHD closes it */
		r->bytes_out = r->out_len;
	} else if (r->out_reader && r->out_len > 0) {
		resp = remote_response(r->conn, r->out_reader, r->out_len);
		if (resp)
			r->out_reader = NULL; /* the response frees it */
		r->bytes_out = r->out_len;
	} else {
		size_t len;
		char *body = buf_detach(&r->out, &len);
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			free(body);
		r->bytes_out = len;
	}
	if (!resp)
		return MHD_NO;
	/* The client's next head would not be read either: end the connection. */
	if (r->err == E_URI_TOO_LONG || r->err == E_HEAD_TOO_BIG)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	for (size_t i = 0; i < r->nheaders; i++)
		MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
	MHD_add_response_header(resp, "Docker-Distribution-API-Version", "registry/2.0");
	MHD_add_response_header(resp, "X-Request-Id", r->request_id);
	if (!r->status)
		r->status = 500;
	r->responded = 1;
	ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* The client sends its body only after a 100 Continue: a refusal needs no draining. */
static int awaits_continue(const struct req *r)
{
	const char *e = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
	return e && !strcasecmp(e, "100-continue");
}

static int body_pending(const struct req *r)
{
	const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	return r->content_length > 0 || (te && strcasecmp(te, "identity"));
}

static void consume(struct conn_state *cs, const char *data, size_t len)
{
	struct req *r = &cs->r;
	r->bytes_in += len;
	if (cs->draining || r->err)
		return;
	switch (r->body_mode) {
	case BODY_BUFFER:
		if (r->body.len + len > r->body_limit) {
			req_fail(r, r->route && r->route->kind == ROUTE_MANIFEST ? E_MANIFEST_TOO_BIG : E_BODY_TOO_BIG,
				 "body exceeds %zu bytes", r->body_limit);
			buf_release(&r->body);
			return;
		}
		buf_add(&r->body, data, len);
		break;
	case BODY_STREAM:
		if (r->on_body) {
			int rc = r->on_body(r, data, len);
			if (rc < 0)
				req_fail(r, rc, NULL);
		}
		break;
	case BODY_NONE:
		break;
	}
}

/* Runs on a login pool thread: the slow step, then hands the request back. */
static void async_job(void *arg)
{
	struct req *r = arg;
	struct conn_state *cs = (struct conn_state *)(void *)r; /* r is cs's first member */
	r->async_work(r);
	atomic_store(&cs->resumed, 1);
	/* Last touch of r on this thread: once resumed, a worker thread may
	 * finish and free the request at once. */
	MHD_resume_connection(r->conn);
}

/*
 * Acts on a router decision taken before the body. Returns 1 when the reply
 * must be sent now, 0 to go on reading the request.
 */
static int decide(struct conn_state *cs, int rc)
{
	struct req *r = &cs->r;
	if (rc == ROUTER_ASYNC) {
		cs->suspended = 1;
		MHD_suspend_connection(r->conn);
		struct workq *q = r->async_q ? r->async_q : r->reg->loginq;
		if (workq_submit(q, async_job, r)) {
			r->async_work = NULL;
			r->async_then = NULL;
			r->async_q = NULL;
			req_fail(r, E_TOOMANYREQUESTS, q == r->reg->loginq ? "too many logins in progress, retry later"
									    : "too many writes in progress, retry later");
			atomic_store(&cs->resumed, 1);
			MHD_resume_connection(r->conn);
		}
		return 0;
	}
	if (rc == ROUTER_REPLY) {
		cs->decided = 1;
		cs->draining = 1;
		/* Replying before the request is fully read makes MHD close
		 * the connection: only worth it to refuse a large body, or
		 * one the client holds back until told to continue. */
		if (body_pending(r) && (r->content_length < 0 || r->content_length > DRAIN_MAX ||
					awaits_continue(r)))
			return 1;
	}
	return 0;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct conn_state *cs = *con_cls;
	struct req *r;
	(void)cls;
	(void)url;
	(void)version;
	if (!cs)
		return MHD_NO;
	r = &cs->r;
	if (!cs->started) {
		const char *cl;
		cs->started = 1;
		http_guard_watch_head(conn, 0);
		r->conn = conn;
		r->method = method_of(method);
		r->method_str = method;
		fill_client(r, conn);
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			long long v = strtoll(cl, &end, 10);
			r->content_length = (*end || v < 0) ? -1 : v;
		}
		if (!r->err) {
			const union MHD_ConnectionInfo *hi =
				MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
			if (hi && hi->header_size > HEAD_MAX)
				req_fail(r, E_HEAD_TOO_BIG, "the request head exceeds %u bytes", HEAD_MAX);
		}
		if (decide(cs, r->err ? ROUTER_REPLY : router_begin(r)))
			return send_reply(cs);
		return MHD_YES;
	}
	if (cs->suspended) {
		if (!atomic_load(&cs->resumed)) {
			/* Called again before the job finished (data already buffered
			 * when we suspended): touch nothing, MHD calls back after the
			 * resume. */
			log_debug("http: request %s called while suspended", r->request_id);
			return MHD_YES;
		}
		atomic_store(&cs->resumed, 0);
		cs->suspended = 0;
		int rc = r->err ? ROUTER_REPLY : router_resume(r);
		if (cs->body_done) {
			if (rc == ROUTER_ASYNC) {
				decide(cs, rc);
				return MHD_YES;
			}
			return send_reply(cs);
		}
		if (decide(cs, rc))
			return send_reply(cs);
		/* This call only continues the header stage: it says nothing about
		 * the body, which arrives in the calls that follow. */
		if (!cs->suspended && *upload_data_size) {
			consume(cs, upload_data, *upload_data_size);
			*upload_data_size = 0;
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		consume(cs, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->responded)
		return MHD_YES;
	cs->body_done = 1;
	if (!cs->decided && router_finish(r) == ROUTER_ASYNC) {
		decide(cs, ROUTER_ASYNC);
		return MHD_YES;
	}
	return send_reply(cs);
}

/* One line per request: JSON for log collectors, or text for a terminal. No secrets: no query, no headers. */
static void access_log(struct req *r, int status, double secs, int aborted)
{
	struct buf b = BUF_INIT;
	const char *user = r->ident && r->ident->user ? r->ident->user : NULL;
	if (log_get_level() < LOG_INFO)
		return;
	if (log_get_format() == LOG_FMT_JSON) {
		buf_adds(&b, "{\"time\":\"");
		log_timestamp(&b);
		buf_addf(&b, "\",\"level\":\"info\",\"msg\":\"request\",\"request_id\":\"%s\",\"client\":", r->request_id);
		buf_add_json_str(&b, r->client);
		buf_adds(&b, ",\"user\":");
		if (user)
			buf_add_json_str(&b, user);
		else
			buf_adds(&b, "null");
		buf_adds(&b, ",\"method\":");
		buf_add_json_str(&b, r->method_str);
		buf_addf(&b, ",\"route\":\"%s\",\"path\":", router_label(r));
		buf_add_json_str(&b, r->path);
		buf_adds(&b, ",\"repository\":");
		if (r->name && r->route)
			buf_add_json_str(&b, r->name);
		else
			buf_adds(&b, "null");
		buf_addf(&b, ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%.3f%s}\n", status,
			 (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out, secs * 1e3,
			 aborted ? ",\"aborted\":true" : "");
	} else {
		log_timestamp(&b);
		buf_addf(&b, " info: %s %s %s %s %d %llu %.3fms %s%s\n", r->client, user ? user : "-", r->method_str,
			 r->path, status, (unsigned long long)r->bytes_out, secs * 1e3, r->request_id,
			 aborted ? " (aborted)" : "");
	}
	log_raw(b.buf, b.len);
	buf_release(&b);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn_state *cs = *con_cls;
	(void)cls;
	/* A kept-alive connection now waits for its next request head. */
	http_guard_watch_head(conn, 1);
	if (!cs)
		return;
	struct req *r = &cs->r;
	if (cs->started) {
		double secs = (double)(http_now_ns() - r->start_ns) / 1e9;
		int status = r->responded ? r->status : 0;
		metrics_request(r->route ? (int)r->route->kind : ROUTE_NONE, status, secs, r->bytes_in, r->bytes_out);
		access_log(r, status, secs, toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
	}
	req_release(r);
	registry_snapshot_put(r->reg, r->snap);
	free(cs);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;
	(void)cls;
	buf_vaddf(&b, fmt, ap);
	while (b.len && b.buf[b.len - 1] == '\n')
		buf_setlen(&b, b.len - 1);
	/* Clients probing for TLS on a plain-HTTP port (skopeo, docker, podman
	 * all do before falling back) look like malformed requests: routine. */
	if (strstr(b.buf, "Request malformed") || strstr(b.buf, "syntactically incorrect")) {
		log_debug("http: %s", b.buf);
	} else if (strstr(b.buf, "handshake message out of context")) {
		/* MHD's words for every failed TLS handshake; the close that
		 * follows on this thread logs it with the client's address. */
		http_guard_tls_failure();
		log_debug("http: %s", b.buf);
	}
	else
		log_warn("http: %s", b.buf);
	buf_release(&b);
}

/* Reads a PEM file (certificate chain or key) into out; 0 or -1 (logged). */
static int read_pem(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	char tmp[4096];
	size_t n;
	if (!f) {
		log_error("tls: cannot read \"%s\": %s", path, strerror(errno));
		return -1;
	}
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0 && out->len < (1 << 20))
		buf_add(out, tmp, n);
	fclose(f);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	if (!out->len) {
		log_error("tls: \"%s\" is empty", path);
		return -1;
	}
	return 0;
}

/* After MHD failed to listen: whether ss is taken by another socket (MHD keeps no errno). */
static int address_in_use(const struct sockaddr_storage *ss)
{
	socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, in_use;
	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	in_use = bind(fd, (const struct sockaddr *)ss, len) && errno == EADDRINUSE;
	close(fd);
	return in_use;
}

/*
 * GnuTLS's NORMAL set of protocols and cipher suites, with AES-128-GCM
 * first and the server's order deciding (clients such as Python's and
 * OpenSSL's defaults list AES-256-GCM first): AES-128-GCM is what Go's
 * crypto/tls, and so distribution, picks on machines with AES instructions;
 * it is the cheapest suite there. tls.priorities replaces it.
 */
#define TLS_PRIORITIES "NORMAL:%SERVER_PRECEDENCE:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:" \
	"+AES-128-CCM:+AES-256-CCM:+AES-256-CBC:+AES-128-CBC"

int http_start(struct registry *reg, const struct config *cfg, struct http_server **out)
{
	char host[256];
	unsigned port;
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
			 MHD_ALLOW_SUSPEND_RESUME;
	unsigned threads = cfg->threads;
	/* Without the option MHD sets only SO_REUSEADDR (restarts need it). */
	struct MHD_OptionItem reuse[] = {
		{ cfg->reuse_port ? MHD_OPTION_LISTENING_ADDRESS_REUSE : MHD_OPTION_END, 1, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	memset(&ss, 0, sizeof(ss));
	if (config_listen_split(cfg->listen, host, &port)) {
		log_error("listen: bad address \"%s\" (want host:port)", cfg->listen);
		return E_CONFIG;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		flags |= MHD_USE_IPv6;
	} else {
		log_error("listen: \"%s\" is not a numeric IPv4 or IPv6 address", host);
		return E_CONFIG;
	}
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 1;
	}
	rand_bytes(id_prefix, sizeof(id_prefix));
	struct http_server *s = xcalloc(1, sizeof(*s));
	s->reg = reg;
	http_guard_init(&s->guard, reg, (uint64_t)cfg->idle_timeout_s * HEAD_TIMEOUTS * 1000000000u,
			cfg->max_connections, cfg->tls_cert != NULL);
	buf_init(&s->tls_cert, 0);
	buf_init(&s->tls_key, 0);
	if (cfg->tls_cert) {
		if (read_pem(cfg->tls_cert, &s->tls_cert) || read_pem(cfg->tls_key, &s->tls_key)) {
			http_stop(s);
			return E_CONFIG;
		}
		flags |= MHD_USE_TLS;
	}
	/* MHD's own limit has room beyond ours (at least one slot per thread,
	 * MHD splits it among them, and the evictions not reaped yet) so
	 * accept_cb gets to decide about the surplus. SO_REUSEPORT only when
	 * asked: with it a second daemon on the same address would start and
	 * silently take half the connections. */
	s->d = MHD_start_daemon(flags, (uint16_t)port, http_guard_accept_cb, &s->guard, access_cb, reg,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, reg,
		MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL,
		MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_NOTIFY_CONNECTION, http_guard_notify_cb, &s->guard,
		MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections + threads + EVICT_PENDING_MAX,
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_POOL,
		MHD_OPTION_ARRAY, reuse,
		/* Last, so that without TLS the first END closes the list. */
		cfg->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->tls_cert.buf,
		MHD_OPTION_HTTPS_MEM_KEY, s->tls_key.buf,
		MHD_OPTION_HTTPS_PRIORITIES, cfg->tls_priorities ? cfg->tls_priorities : TLS_PRIORITIES,
		MHD_OPTION_END);
	if (!s->d) {
		if (address_in_use(&ss))
			log_error("cannot listen on %s: address in use (another berth, or another server, listens there)",
				  cfg->listen);
		else
			log_error("cannot listen on %s", cfg->listen);
		http_stop(s);
		return E_IO;
	}
	http_guard_start(&s->guard);
	*out = s;
	return 0;
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	if (s->d)
		MHD_stop_daemon(s->d);
	http_guard_release(&s->guard);
	OPENSSL_cleanse(s->tls_key.buf, s->tls_key.len);
	buf_release(&s->tls_key);
	buf_release(&s->tls_cert);
	free(s);
}
