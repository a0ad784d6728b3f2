/* s3: the client handle and the signed request engine with retries, on common/httpc's pool. */
#include "s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "httpc.h"
#include "s3_internal.h"
#include "xalloc.h"

struct s3 {
	char *scheme; /* "http" or "https" */
	char *host;   /* the Host header and URL authority: "127.0.0.1:8080", "bucket.s3.lan" */
	char *region, *bucket, *prefix, *ca_file, *access_key, *secret_key;
	int path_style;
	long connect_ms, request_ms, stall_s;
	struct httpc_backoff backoff;
	int max_attempts;
	struct httpc_pool pool;
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
	httpc_global_init();
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
	s->backoff.budget_ms = cfg->retry_budget_ms > 0 ? cfg->retry_budget_ms : 20000;
	s->backoff.base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 100;
	s->backoff.max_ms = 2000;
	httpc_pool_init(&s->pool);
	*out = s;
	return 0;
}

void s3_free(struct s3 *s)
{
	if (!s)
		return;
	httpc_pool_release(&s->pool);
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
	int told;           /* GET: on_head was called */
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
	if (httpc_body_add(&x->resp->body, data, n, S3_MAX_XML_BODY)) {
		x->too_big = 1;
		return 0;
	}
	return n;
}

static size_t header_line(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	struct s3_resp *r = x->resp;
	struct httpc_header h;
	size_t n = size * nmemb;
	char line[512];
	if ((n == 2 && data[0] == '\r') || (n == 1 && data[0] == '\n')) {
		/* the end of an answer's headers: the size is known before the first byte of data */
		if (x->req->on_head && !x->told && x->status >= 200 && x->status < 300) {
			struct s3_object_info info = { .size = r->total_size };
			memcpy(info.etag, r->etag, sizeof(info.etag));
			x->told = 1;
			/* Content-Length is the object's size only for an answer to no Range */
			x->req->on_head(x->req->sink_ctx, &info, r->has_size == 2 || (r->has_size == 1 && !x->req->ranged));
		}
		return n;
	}
	if (httpc_header_parse(data, n, line, sizeof(line), &h))
		return n;
	if (h.status >= 0) {
		/* a new response (after a 100 Continue, say): forget the last one's headers */
		x->status = h.status;
		r->etag[0] = '\0';
		r->has_size = 0;
	} else if (!strcasecmp(h.name, "etag")) {
		const char *v = h.value + strspn(h.value, " \t\"");
		httpc_value_copy(r->etag, sizeof(r->etag), v, strcspn(v, "\""));
	} else if (!strcasecmp(h.name, "content-range")) {
		const char *slash = strrchr(h.value, '/');
		if (slash && !httpc_parse_u64(slash + 1, "", &r->total_size))
			r->has_size = 2; /* the total beats Content-Length */
	} else if (!strcasecmp(h.name, "content-length") && r->has_size != 2) {
		if (!httpc_parse_u64(h.value, "", &r->total_size))
			r->has_size = 1;
	}
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

	list = httpc_header_add(list, "Host", s->host);
	list = httpc_header_add(list, "x-amz-date", date);
	list = httpc_header_add(list, "x-amz-content-sha256", sr.payload_hash);
	list = httpc_header_add(list, "Authorization", auth.buf);
	for (size_t i = 0; i < nh; i++)
		list = httpc_header_add(list, hdrs[i].name, hdrs[i].value);
	/* no 100-continue round trip; no content type a form POST would add */
	list = curl_slist_append(list, "Expect:");
	list = curl_slist_append(list, "Content-Type:");

	httpc_setup(c, &(struct httpc_opts){
		.url = url.buf,
		.headers = list,
		.ca_file = s->ca_file,
		.connect_ms = s->connect_ms,
		.request_ms = s->request_ms,
		.stall_s = s->stall_s,
		.flow = r->sink ? HTTPC_DOWNLOAD : has_body ? HTTPC_UPLOAD : HTTPC_WHOLE,
		.on_header = header_line,
		.on_body = write_body,
		.ud = x,
	});
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
	httpc_headers_free(list);
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

/*
 * The final error for a non-2xx answer that is not retried. A missing
 * bucket means the store cannot hold anything now: a deployment without
 * its bucket, or a store going down (Swift answers an object request with
 * NoSuchBucket while its container servers stop before its proxy), so
 * clients are told to come back later, as for a store that is down.
 */
static int map_status(long status, const char *code)
{
	if (status == 404 && !strcmp(code, "NoSuchUpload"))
		return E_BLOB_UPLOAD_UNKNOWN;
	if (status == 404 && !strcmp(code, "NoSuchBucket"))
		return E_STORE_UNAVAILABLE;
	if (status == 404)
		return E_BLOB_UNKNOWN;
	if (status == 416)
		return E_RANGE_INVALID;
	return E_STORE;
}

/*
 * Besides a connection that broke, a store that is down, slow or restarting
 * is retried (unlike the mirror's upstreams): nothing else can serve its data.
 */
static int transport_retriable(CURLcode rc)
{
	return httpc_broke(rc) || rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	       rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SSL_CONNECT_ERROR;
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
	long start = httpc_now_ms();
	int rc = E_STORE_UNAVAILABLE;
	CURL *c = httpc_pool_borrow(&s->pool);
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
		if (httpc_backoff_wait(&s->backoff, start, n - 1))
			break;
	}
	httpc_pool_give_back(&s->pool, c);
	return rc;
}
