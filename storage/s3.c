/* s3: the client handle, its pool of curl handles, and the signed request engine with retries. */
#include "s3.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "digest.h"
#include "err.h"
#include "rand.h"
#include "s3_internal.h"
#include "xalloc.h"

struct s3 {
	char *scheme; /* "http" or "https" */
	char *host;   /* the Host header and URL authority: "127.0.0.1:8080", "bucket.s3.lan" */
	char *region, *bucket, *prefix, *ca_file, *access_key, *secret_key;
	int path_style;
	long connect_ms, request_ms, stall_s, budget_ms, base_ms;
	int max_attempts;
	pthread_mutex_t lock; /* guards idle/nidle/alloc */
	CURL **idle;
	size_t nidle, alloc;
};

static _Thread_local struct s3_last_error last_error;

const struct s3_last_error *s3_last_error(void)
{
	return &last_error;
}

struct s3_last_error *s3_error_slot(void)
{
	return &last_error;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_start(void)
{
	/* curl_global_init is not thread-safe: once per process, never undone */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		die("curl_global_init failed");
}

static char *dup_or_empty(const char *s)
{
	return xstrdup(s ? s : "");
}

int s3_open(const struct s3_config *cfg, struct s3 **out)
{
	const char *ep = cfg->endpoint, *auth;
	size_t alen;
	*out = NULL;
	if (!ep || !cfg->region || !*cfg->region || !cfg->bucket || !*cfg->bucket ||
	    !cfg->access_key || !*cfg->access_key || !cfg->secret_key || !*cfg->secret_key)
		return E_CONFIG;
	if (!strncmp(ep, "http://", 7))
		auth = ep + 7;
	else if (!strncmp(ep, "https://", 8))
		auth = ep + 8;
	else
		return E_CONFIG;
	alen = strcspn(auth, "/?#@ ");
	/* the endpoint names a server, nothing more: a path would change what is signed */
	if (!alen || (auth[alen] && strcmp(auth + alen, "/")))
		return E_CONFIG;
	pthread_once(&curl_once, curl_start);
	struct s3 *s = xcalloc(1, sizeof(*s));
	s->scheme = xstrndup(ep, (size_t)(auth - ep) - 3);
	if (cfg->path_style) {
		s->host = xstrndup(auth, alen);
	} else {
		struct buf h = BUF_INIT;
		buf_addf(&h, "%s.%.*s", cfg->bucket, (int)alen, auth);
		s->host = buf_detach(&h, NULL);
	}
	s->region = xstrdup(cfg->region);
	s->bucket = xstrdup(cfg->bucket);
	s->prefix = dup_or_empty(cfg->prefix);
	s->ca_file = cfg->ca_file && *cfg->ca_file ? xstrdup(cfg->ca_file) : NULL;
	s->access_key = xstrdup(cfg->access_key);
	s->secret_key = xstrdup(cfg->secret_key);
	s->path_style = cfg->path_style;
	s->connect_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 3000;
	s->request_ms = cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 30000;
	s->stall_s = cfg->stall_timeout_s > 0 ? cfg->stall_timeout_s : 30;
	s->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 5;
	s->budget_ms = cfg->retry_budget_ms > 0 ? cfg->retry_budget_ms : 20000;
	s->base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 100;
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

void s3_free(struct s3 *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nidle; i++)
		curl_easy_cleanup(s->idle[i]);
	free(s->idle);
	pthread_mutex_destroy(&s->lock);
	if (s->secret_key)
		memset(s->secret_key, 0, strlen(s->secret_key));
	free(s->scheme);
	free(s->host);
	free(s->region);
	free(s->bucket);
	free(s->prefix);
	free(s->ca_file);
	free(s->access_key);
	free(s->secret_key);
	free(s);
}

/* A pooled easy handle (its open connection reused), or a new one. */
static CURL *borrow(struct s3 *s)
{
	CURL *c = NULL;
	pthread_mutex_lock(&s->lock);
	if (s->nidle)
		c = s->idle[--s->nidle];
	pthread_mutex_unlock(&s->lock);
	if (!c && !(c = curl_easy_init()))
		die("curl_easy_init failed");
	return c;
}

static void give_back(struct s3 *s, CURL *c)
{
	/* options go, the connection cache stays */
	curl_easy_reset(c);
	pthread_mutex_lock(&s->lock);
	s->idle = xgrow(s->idle, &s->alloc, s->nidle, sizeof(*s->idle));
	s->idle[s->nidle++] = c;
	pthread_mutex_unlock(&s->lock);
}

const char *s3_prefix(const struct s3 *s)
{
	return s->prefix;
}

void s3_path(struct s3 *s, struct buf *out, const char *key)
{
	if (s->path_style)
		buf_addf(out, "/%s", s->bucket);
	buf_addch(out, '/');
	if (key)
		buf_addf(out, "%s%s", s->prefix, key);
}

int s3_presign(struct s3 *s, const char *key, unsigned expires, struct buf *url)
{
	struct buf path = BUF_INIT;
	struct s3_sign_req r = {
		.method = "GET",
		.host = s->host,
		.when = time(NULL),
		.region = s->region,
		.access_key = s->access_key,
		.secret_key = s->secret_key,
	};
	s3_path(s, &path, key);
	r.path = path.buf;
	int rc = s3_sign_presign(url, &r, s->scheme, expires) ? E_CONFIG : 0;
	buf_release(&path);
	return rc;
}

void s3_resp_release(struct s3_resp *resp)
{
	buf_release(&resp->body);
}

/* One attempt's transfer state, shared with curl's callbacks. */
struct xfer {
	const struct s3_req *req;
	struct s3_resp *resp;
	uint64_t body_pos;  /* request body bytes sent in this attempt */
	uint64_t delivered; /* GET: object bytes handed to the sink, over all attempts */
	long status;        /* from the last status line seen */
	int sink_failed, io_failed, too_big;
};

static size_t read_body(char *dst, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	const struct s3_req *r = x->req;
	uint64_t total = r->fd >= 0 ? r->fd_len : r->body_len;
	size_t n = size * nmemb;
	if (n > total - x->body_pos)
		n = (size_t)(total - x->body_pos);
	if (!n)
		return 0;
	if (r->fd < 0) {
		memcpy(dst, r->body + x->body_pos, n);
	} else {
		ssize_t got = pread(r->fd, dst, n, (off_t)(r->fd_off + x->body_pos));
		if (got <= 0) {
			/* a file shorter than promised must not become a short object */
			x->io_failed = 1;
			return CURL_READFUNC_ABORT;
		}
		n = (size_t)got;
	}
	x->body_pos += n;
	return n;
}

static int seek_body(void *ud, curl_off_t offset, int origin)
{
	struct xfer *x = ud;
	if (origin != SEEK_SET || offset < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	x->body_pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static size_t write_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	if (x->req->sink && x->status >= 200 && x->status < 300) {
		if (x->req->sink(x->req->sink_ctx, data, n)) {
			x->sink_failed = 1;
			return 0;
		}
		x->delivered += n;
		return n;
	}
	if (n > S3_MAX_XML_BODY - x->resp->body.len) {
		x->too_big = 1;
		return 0;
	}
	buf_add(&x->resp->body, data, n);
	return n;
}

/* Parses a decimal number at s; 0 or -1. */
static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || (*end && *end != '\r' && *end != '\n' && *end != ' '))
		return -1;
	*out = v;
	return 0;
}

static size_t header_line(char *line, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	char tmp[512];
	if (n >= sizeof(tmp))
		return n; /* no header we read is this long */
	memcpy(tmp, line, n);
	tmp[n] = '\0';
	tmp[strcspn(tmp, "\r\n")] = '\0';
	if (!strncmp(tmp, "HTTP/", 5)) {
		/* a new response (after a 100 Continue, say): forget the last one's headers */
		const char *sp = strchr(tmp, ' ');
		x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		x->resp->etag[0] = '\0';
		x->resp->has_size = 0;
	} else if (!strncasecmp(tmp, "etag:", 5)) {
		const char *v = tmp + 5;
		size_t len;
		v += strspn(v, " \t\"");
		len = strcspn(v, "\"");
		if (len < S3_ETAG_MAX) {
			memcpy(x->resp->etag, v, len);
			x->resp->etag[len] = '\0';
		}
	} else if (!strncasecmp(tmp, "content-range:", 14)) {
		const char *slash = strrchr(tmp, '/');
		if (slash && !parse_u64(slash + 1, &x->resp->total_size))
			x->resp->has_size = 2; /* the total beats Content-Length */
	} else if (!strncasecmp(tmp, "content-length:", 15) && x->resp->has_size != 2) {
		if (!parse_u64(tmp + 15 + strspn(tmp + 15, " "), &x->resp->total_size))
			x->resp->has_size = 1;
	}
	return n;
}

static struct curl_slist *add_header(struct curl_slist *l, const char *name, const char *value)
{
	struct buf h = BUF_INIT;
	struct curl_slist *n;
	buf_addf(&h, "%s: %s", name, value);
	n = curl_slist_append(l, h.buf);
	buf_release(&h);
	if (!n)
		die("out of memory");
	return n;
}

/* Sets up and runs one attempt; returns curl's code, x->status holds the status. */
static CURLcode attempt(struct s3 *s, CURL *c, struct xfer *x, const char *if_match)
{
	const struct s3_req *r = x->req;
	struct buf path = BUF_INIT, url = BUF_INIT, query = BUF_INIT, auth = BUF_INIT;
	char date[S3_AMZ_DATE_LEN], range[64];
	struct s3_kv hdrs[2];
	size_t nh = 0;
	int has_body = r->body || r->fd >= 0;
	uint64_t body_len = r->fd >= 0 ? r->fd_len : r->body_len;
	struct curl_slist *list = NULL;
	CURLcode rc;

	x->body_pos = 0;
	x->status = 0;
	if (r->ranged || x->delivered) {
		uint64_t first = r->range_first + x->delivered;
		if (r->range_len == UINT64_MAX)
			snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)first);
		else
			snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)first,
				 (unsigned long long)(r->range_first + r->range_len - 1));
		hdrs[nh++] = (struct s3_kv){ "range", range };
	}
	if (if_match && *if_match)
		hdrs[nh++] = (struct s3_kv){ "if-match", if_match };

	/* the wall clock, never the test-shiftable one: the store checks the skew */
	time_t now = time(NULL);
	struct s3_sign_req sr = {
		.method = r->method,
		.host = s->host,
		.query = r->query,
		.nquery = r->nquery,
		.headers = hdrs,
		.nheaders = nh,
		.payload_hash = r->payload_hash ? r->payload_hash : S3_EMPTY_SHA256,
		.when = now,
		.region = s->region,
		.access_key = s->access_key,
		.secret_key = s->secret_key,
	};
	s3_path(s, &path, r->key);
	sr.path = path.buf;
	s3_amz_date(now, date);
	s3_sign_authorization(&auth, &sr);
	s3_sign_canonical_query(&query, r->query, r->nquery);
	buf_addf(&url, "%s://%s", s->scheme, s->host);
	s3_uri_encode(&url, path.buf, path.len, 1);
	if (query.len)
		buf_addf(&url, "?%s", query.buf);

	list = add_header(list, "Host", s->host);
	list = add_header(list, "x-amz-date", date);
	list = add_header(list, "x-amz-content-sha256", sr.payload_hash);
	list = add_header(list, "Authorization", auth.buf);
	for (size_t i = 0; i < nh; i++)
		list = add_header(list, hdrs[i].name, hdrs[i].value);
	/* no 100-continue round trip; no content type a form POST would add */
	list = curl_slist_append(list, "Expect:");
	list = curl_slist_append(list, "Content-Type:");

	curl_easy_setopt(c, CURLOPT_URL, url.buf);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->connect_ms);
	if (s->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
	if (has_body || r->sink) {
		/* data moves: bounded by progress, not by a total that a large object would exceed */
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s->stall_s);
		/* larger chunks than curl's 16 KiB: fewer callbacks and syscalls per MiB */
		if (r->sink)
			curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);
		else
			curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
	} else {
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->request_ms);
	}
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_line);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	if (r->head) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (has_body || !strcmp(r->method, "PUT") || !strcmp(r->method, "POST")) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(has_body ? body_len : 0));
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_body);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_body);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
		if (strcmp(r->method, "PUT"))
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	} else if (strcmp(r->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		long status = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		x->status = status;
	}
	curl_slist_free_all(list);
	buf_release(&path);
	buf_release(&url);
	buf_release(&query);
	/* the signature is useless once the minute has passed, but still not kept */
	memset(auth.buf, 0, auth.len);
	buf_release(&auth);
	return rc;
}

static int retriable_code(const char *code)
{
	return !strcmp(code, "SlowDown") || !strcmp(code, "InternalError") ||
	       !strcmp(code, "ServiceUnavailable") || !strcmp(code, "RequestTimeout");
}

/* The final error for a non-2xx answer that is not retried. */
static int map_status(long status, const char *code)
{
	if (status == 404 && !strcmp(code, "NoSuchUpload"))
		return E_BLOB_UPLOAD_UNKNOWN;
	if (status == 404 && strcmp(code, "NoSuchBucket"))
		return E_BLOB_UNKNOWN;
	if (status == 416)
		return E_RANGE_INVALID;
	return E_STORE;
}

static int transport_retriable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return 1;
	default:
		return 0;
	}
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Full jitter: uniform in [0, min(2 s, base * 2^retry)]. */
static long backoff_ms(const struct s3 *s, int retry)
{
	long cap = s->base_ms;
	uint32_t r;
	for (int i = 0; i < retry && cap < 2000; i++)
		cap *= 2;
	if (cap > 2000)
		cap = 2000;
	rand_bytes(&r, sizeof(r));
	return (long)(r % (uint32_t)(cap + 1));
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Whether a GET's sink already has every byte asked for. */
static int get_complete(const struct s3_req *req, const struct s3_resp *resp, uint64_t delivered)
{
	if (req->range_len != UINT64_MAX)
		return delivered == req->range_len;
	if (resp->has_size == 2)
		return req->range_first + delivered == resp->total_size;
	return resp->has_size == 1 && !req->ranged && !req->range_first && delivered == resp->total_size;
}

int s3_request(struct s3 *s, const struct s3_req *req, struct s3_resp *resp)
{
	struct xfer x = { .req = req, .resp = resp };
	char etag0[S3_ETAG_MAX] = "";
	long start = now_ms();
	int rc = E_STORE_UNAVAILABLE;
	CURL *c = borrow(s);
	memset(resp, 0, sizeof(*resp));
	buf_init(&resp->body, 0);
	memset(&last_error, 0, sizeof(last_error));
	for (int n = 1;; n++) {
		uint64_t before = x.delivered;
		buf_reset(&resp->body);
		x.sink_failed = x.io_failed = x.too_big = 0;
		CURLcode cc = attempt(s, c, &x, x.delivered ? etag0 : NULL);
		int retry = 0;
		last_error.attempts = n;
		last_error.curl_code = cc;
		last_error.http_status = cc == CURLE_OK ? (int)x.status : 0;
		last_error.code[0] = last_error.message[0] = last_error.request_id[0] = '\0';
		if (!etag0[0] && x.delivered && resp->etag[0])
			memcpy(etag0, resp->etag, sizeof(etag0));
		if (cc == CURLE_OK && x.status >= 200 && x.status < 300) {
			rc = 0;
			break;
		}
		if (x.sink_failed || x.io_failed) {
			snprintf(last_error.message, sizeof(last_error.message), "%s",
				 x.sink_failed ? "the receiver stopped the transfer" : "reading the local file failed");
			rc = E_IO;
			break;
		}
		if (x.too_big) {
			snprintf(last_error.message, sizeof(last_error.message), "answer larger than %u bytes",
				 S3_MAX_XML_BODY);
			rc = E_STORE;
			break;
		}
		if (cc != CURLE_OK) {
			snprintf(last_error.message, sizeof(last_error.message), "%s", curl_easy_strerror(cc));
			retry = transport_retriable(cc);
			rc = retry ? E_STORE_UNAVAILABLE : E_STORE;
			/* a GET that delivered its last byte before the error is complete */
			if (x.delivered > before && get_complete(req, resp, x.delivered)) {
				rc = 0;
				break;
			}
		} else {
			struct s3xml_error e;
			if (!s3xml_error(resp->body.buf, resp->body.len, &e)) {
				memcpy(last_error.code, e.code, sizeof(e.code));
				memcpy(last_error.message, e.message, sizeof(e.message));
				memcpy(last_error.request_id, e.request_id, sizeof(e.request_id));
			}
			retry = x.status >= 500 || x.status == 429 || retriable_code(last_error.code);
			rc = retry ? E_STORE_UNAVAILABLE : map_status(x.status, last_error.code);
		}
		if (!retry || n >= s->max_attempts)
			break;
		long wait = backoff_ms(s, n - 1);
		if (now_ms() - start + wait > s->budget_ms)
			break;
		sleep_ms(wait);
	}
	give_back(s, c);
	return rc;
}
