/* upstream: the client handle, names, errors, and the one-request HTTP engine on common/httpc. */
#include "upstream_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "err.h"
#include "xalloc.h"

#define BLOB_MAX_DEFAULT (64LL << 30)

static char *dup_opt(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

/* The host of an http(s) URL, without port, into out (len bytes); "" when none. */
static void url_host(const char *url, char *out, size_t len)
{
	const char *p = strstr(url, "://");
	size_t n;
	p = p ? p + 3 : url;
	n = *p == '[' ? strcspn(p, "]") + 1 : strcspn(p, ":/");
	snprintf(out, len, "%.*s", (int)n, p);
}

static void limits_fill(struct upstream_limits *l, const struct upstream_limits *in)
{
	if (in)
		*l = *in;
	else
		memset(l, 0, sizeof(*l));
	if (l->connect_ms <= 0)
		l->connect_ms = 3000;
	if (l->request_ms <= 0)
		l->request_ms = 30000;
	if (l->stall_s <= 0)
		l->stall_s = 30;
	if (!l->manifest_max)
		l->manifest_max = CONFIG_MANIFEST_MAX;
	if (l->blob_max <= 0)
		l->blob_max = BLOB_MAX_DEFAULT;
	if (l->max_attempts <= 0)
		l->max_attempts = 3;
	if (l->retry_budget_ms <= 0)
		l->retry_budget_ms = 5000;
	if (!l->token_margin_s)
		l->token_margin_s = 30;
	if (!l->token_cache_max)
		l->token_cache_max = 256;
}

int upstream_open(const struct config_upstream *cfg, const struct upstream_limits *lim, struct upstream **out)
{
	char host[256];
	struct upstream *u;
	*out = NULL;
	if (!cfg->name || !cfg->url || !cfg->prefix || (strncmp(cfg->url, "https://", 8) && strncmp(cfg->url, "http://", 7)))
		return E_CONFIG;
	httpc_global_init();
	u = xcalloc(1, sizeof(*u));
	u->name = xstrdup(cfg->name);
	u->url = xstrdup(cfg->url);
	u->prefix = xstrdup(cfg->prefix);
	u->ca_file = dup_opt(cfg->ca_file);
	u->username = dup_opt(cfg->username);
	u->password = dup_opt(cfg->password.value);
	u->static_token = dup_opt(cfg->token.value);
	u->is_default = cfg->is_default;
	u->https = !strncmp(cfg->url, "https://", 8);
	url_host(cfg->url, host, sizeof(host));
	u->docker_hub = !strcmp(host, "registry-1.docker.io") || !strcmp(host, "index.docker.io") ||
			!strcmp(host, "docker.io");
	limits_fill(&u->lim, lim);
	u->backoff = (struct httpc_backoff){ .base_ms = 100, .max_ms = 1000, .budget_ms = u->lim.retry_budget_ms };
	pthread_mutex_init(&u->lock, NULL);
	httpc_pool_init(&u->pool);
	*out = u;
	return 0;
}

static void wipe_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void upstream_free(struct upstream *u)
{
	if (!u)
		return;
	httpc_pool_release(&u->pool);
	for (size_t i = 0; i < u->ntokens; i++) {
		free(u->tokens[i].scope);
		wipe_free(u->tokens[i].token);
	}
	free(u->tokens);
	pthread_mutex_destroy(&u->lock);
	wipe_free(u->password);
	wipe_free(u->static_token);
	free(u->name);
	free(u->url);
	free(u->prefix);
	free(u->ca_file);
	free(u->username);
	free(u->realm);
	free(u->service);
	free(u);
}

const char *upstream_name(const struct upstream *u)
{
	return u->name;
}

const char *upstream_url(const struct upstream *u)
{
	return u->url;
}

void upstream_stats(struct upstream *u, struct upstream_stats *out)
{
	pthread_mutex_lock(&u->lock);
	*out = u->stats;
	pthread_mutex_unlock(&u->lock);
}

int upstream_remote_name(const struct upstream *u, const char *name, struct buf *remote)
{
	size_t plen = strlen(u->prefix);
	const char *rest;
	if (!strncmp(name, u->prefix, plen))
		rest = name + plen;
	else if (u->is_default)
		rest = name;
	else
		return E_NAME_UNKNOWN;
	if (!*rest)
		return E_NAME_UNKNOWN;
	/* docker's normalisation: "alpine" on Docker Hub is "library/alpine" */
	if (u->docker_hub && !strchr(rest, '/'))
		buf_adds(remote, "library/");
	buf_adds(remote, rest);
	return 0;
}

/* ---- errors ---- */

const char *upstream_fail_name(enum upstream_fail kind)
{
	static const char *names[] = {
		[UPSTREAM_OK] = "ok", [UPSTREAM_DOWN] = "down", [UPSTREAM_TIMEOUT] = "timeout",
		[UPSTREAM_RATE_LIMITED] = "rate limited", [UPSTREAM_DENIED] = "denied",
		[UPSTREAM_NOT_FOUND] = "not found", [UPSTREAM_SERVER] = "server error",
		[UPSTREAM_BAD_ANSWER] = "bad answer", [UPSTREAM_STOPPED] = "stopped",
	};
	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

/* Keeps printable ASCII only: messages come from the network and go into logs. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s >= 0x7f)
			*s = '?';
}

int up_fail(struct upstream_error *e, enum upstream_fail kind, int code, const char *fmt, ...)
{
	va_list ap;
	if (!e)
		return code;
	e->kind = kind;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	sanitize(e->message);
	return code;
}

void upstream_error_describe(const struct upstream *u, const struct upstream_error *e, struct buf *out)
{
	buf_addf(out, "upstream \"%s\" (%s) ", u->name, u->url);
	if (e->status) {
		buf_addf(out, "answered %d", e->status);
		if (e->code[0])
			buf_addf(out, " %s", e->code);
		if (e->message[0])
			buf_addf(out, ": %s", e->message);
		if (e->retry_after_s)
			buf_addf(out, " (retry after %us)", e->retry_after_s);
		return;
	}
	buf_addf(out, "%s%s%s", e->kind == UPSTREAM_DOWN ? "is down" : upstream_fail_name(e->kind),
		 e->message[0] ? ": " : "", e->message);
}

/* The first {"errors": [{"code", "message"}]} entry of an error body. */
static void parse_error_body(const struct buf *body, struct upstream_error *e)
{
	json_error_t jerr;
	json_t *root = json_loadb(body->buf, body->len, 0, &jerr), *first;
	const char *code, *message;
	if (!root)
		return;
	first = json_array_get(json_object_get(root, "errors"), 0);
	code = json_string_value(json_object_get(first, "code"));
	message = json_string_value(json_object_get(first, "message"));
	if (code)
		snprintf(e->code, sizeof(e->code), "%s", code);
	if (message)
		snprintf(e->message, sizeof(e->message), "%s", message);
	sanitize(e->code);
	sanitize(e->message);
	json_decref(root);
}

int up_status_error(const struct up_resp *resp, int notfound, struct upstream_error *e)
{
	struct upstream_error tmp;
	enum upstream_fail kind;
	int code;
	if (!e)
		e = &tmp;
	memset(e, 0, sizeof(*e));
	e->status = (int)resp->status;
	e->retry_after_s = resp->retry_after_s;
	parse_error_body(&resp->body, e);
	if (resp->status == 404) {
		kind = UPSTREAM_NOT_FOUND;
		code = notfound;
	} else if (resp->status == 401 || resp->status == 403) {
		kind = UPSTREAM_DENIED;
		code = E_DENIED;
	} else if (resp->status == 429) {
		kind = UPSTREAM_RATE_LIMITED;
		code = E_TOOMANYREQUESTS;
	} else if (resp->status >= 500 && resp->status <= 599) {
		kind = UPSTREAM_SERVER;
		code = E_STORE_UNAVAILABLE;
	} else {
		kind = UPSTREAM_BAD_ANSWER;
		code = E_STORE;
		if (!e->message[0])
			snprintf(e->message, sizeof(e->message), "unexpected status");
	}
	e->kind = kind;
	return code;
}

/* ---- the HTTP engine ---- */

void up_resp_init(struct up_resp *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 0);
	r->content_length = r->range_start = r->range_total = -1;
}

void up_resp_release(struct up_resp *r)
{
	buf_release(&r->body);
}

/* One transfer's state, shared with curl's callbacks. */
struct xfer {
	const struct up_req *req;
	struct up_resp *resp;
	int64_t skip;    /* bytes of a 200 to drop: the server ignored our Range */
	int sink_failed, too_big;
};

/* A number of a header value, as in "bytes 5-9/10"; -1 when malformed or past INT64_MAX. */
static int64_t parse_i64(const char *s)
{
	uint64_t v;
	return httpc_parse_u64(s, "/-", &v) || v > INT64_MAX ? -1 : (int64_t)v;
}

/* A value too long to be any we use is left empty. */
static void copy_value(char *dst, size_t len, const char *v)
{
	httpc_value_copy(dst, len, v, strlen(v));
}

static void header_value(struct up_resp *r, const char *name, const char *v)
{
	if (!strcasecmp(name, "docker-content-digest")) {
		copy_value(r->digest, sizeof(r->digest), v);
	} else if (!strcasecmp(name, "content-type")) {
		copy_value(r->content_type, sizeof(r->content_type), v);
		r->content_type[strcspn(r->content_type, "; \t")] = '\0';
	} else if (!strcasecmp(name, "content-length")) {
		r->content_length = parse_i64(v);
	} else if (!strcasecmp(name, "content-range")) {
		/* "bytes START-END/TOTAL" */
		const char *slash = strchr(v, '/');
		if (!strncasecmp(v, "bytes ", 6))
			r->range_start = parse_i64(v + 6);
		r->range_total = slash ? parse_i64(slash + 1) : -1;
	} else if (!strcasecmp(name, "www-authenticate")) {
		if (!r->www_auth[0]) /* the first challenge is the one answered */
			copy_value(r->www_auth, sizeof(r->www_auth), v);
	} else if (!strcasecmp(name, "retry-after")) {
		int64_t s = parse_i64(v);
		/* an HTTP date is not worth the parse: a rate-limited mirror serves its cache either way */
		r->retry_after_s = s < 0 ? 0 : s > 86400 ? 86400 : (unsigned)s;
	}
}

static size_t header_line(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	struct up_resp *r = x->resp;
	struct httpc_header h;
	size_t n = size * nmemb;
	char line[UP_WWW_AUTH_MAX + 64];
	if (httpc_header_parse(data, n, line, sizeof(line), &h))
		return n;
	if (h.status >= 0) {
		/* a new response (a redirect's target, say): forget the last one's headers */
		struct buf keep = r->body;
		int64_t delivered = r->delivered;
		memset(r, 0, sizeof(*r));
		r->body = keep;
		r->delivered = delivered;
		r->content_length = r->range_start = r->range_total = -1;
		r->status = h.status;
		return n;
	}
	header_value(r, h.name, h.value);
	return n;
}

/* A 2xx of a ranged request must start where we asked, or be a whole 200 whose head is skipped. */
static int range_ok(struct xfer *x)
{
	const struct up_req *q = x->req;
	struct up_resp *r = x->resp;
	if (q->range_from <= 0)
		return 1;
	if (r->status == 200) {
		x->skip = q->range_from;
		return 1;
	}
	return r->status == 206 && r->range_start == q->range_from;
}

static size_t write_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	struct up_resp *r = x->resp;
	size_t n = size * nmemb, skip;
	int ok = r->status >= 200 && r->status < 300;
	if (ok && x->req->sink) {
		if (!r->delivered && !x->skip && !range_ok(x)) {
			x->too_big = 2;
			return 0;
		}
		skip = x->skip < (int64_t)n ? (size_t)x->skip : n;
		x->skip -= (int64_t)skip;
		if (n - skip > (uint64_t)(x->req->sink_max - r->delivered)) {
			x->too_big = 1;
			return 0;
		}
		if (n > skip && x->req->sink(x->req->sink_ctx, data + skip, n - skip)) {
			x->sink_failed = 1;
			return 0;
		}
		r->delivered += (int64_t)(n - skip);
		return n;
	}
	/* an error's message is a courtesy: past its bound the rest is dropped */
	if (httpc_body_add(&r->body, data, n, ok ? x->req->body_max : UP_ERROR_BODY_MAX) && ok) {
		x->too_big = 1;
		return 0;
	}
	return n;
}

static void setup(struct upstream *u, CURL *c, const struct up_req *r, struct xfer *x, struct curl_slist *list)
{
	httpc_setup(c, &(struct httpc_opts){
		.url = r->url,
		.headers = list,
		.ca_file = u->ca_file,
		.connect_ms = u->lim.connect_ms,
		.request_ms = u->lim.request_ms,
		.stall_s = u->lim.stall_s,
		.flow = r->sink ? HTTPC_DOWNLOAD : HTTPC_WHOLE,
		.on_header = header_line,
		.on_body = write_body,
		.ud = x,
	});
	/* a redirect may go to a CDN; never from https down to http */
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, u->https ? "https" : "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "berth-mirror");
	if (r->basic && u->username) {
		/* curl sends these to the first host only, never to a redirect's */
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, u->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD, u->password ? u->password : "");
	}
	if (!strcmp(r->method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
}

static int transport_error(CURLcode cc, struct upstream_error *e)
{
	enum upstream_fail kind = cc == CURLE_OPERATION_TIMEDOUT ? UPSTREAM_TIMEOUT : UPSTREAM_DOWN;
	if (cc == CURLE_TOO_MANY_REDIRECTS || cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_WEIRD_SERVER_REPLY)
		return up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "%s", curl_easy_strerror(cc));
	return up_fail(e, kind, E_STORE_UNAVAILABLE, "%s", curl_easy_strerror(cc));
}

int up_http(struct upstream *u, const struct up_req *r, struct up_resp *resp, struct upstream_error *e)
{
	struct xfer x = { .req = r, .resp = resp };
	struct curl_slist *list = NULL;
	char range[64];
	CURLcode cc;
	CURL *c;
	int rc = 0;
	buf_reset(&resp->body);
	resp->status = 0;
	resp->delivered = 0;
	resp->broken = 0;
	if (r->accept)
		list = httpc_header_add(list, "Accept", r->accept);
	if (r->bearer) {
		struct buf v = BUF_INIT;
		buf_addf(&v, "Bearer %s", r->bearer);
		list = httpc_header_add(list, "Authorization", v.buf);
		explicit_bzero(v.buf, v.len);
		buf_release(&v);
	}
	if (r->range_from > 0) {
		snprintf(range, sizeof(range), "bytes=%lld-", (long long)r->range_from);
		list = httpc_header_add(list, "Range", range);
	}
	c = httpc_pool_borrow(&u->pool);
	setup(u, c, r, &x, list);
	pthread_mutex_lock(&u->lock);
	if (r->token_realm)
		u->stats.token_requests++;
	else
		u->stats.requests++;
	pthread_mutex_unlock(&u->lock);
	cc = curl_easy_perform(c);
	if (x.sink_failed)
		rc = up_fail(e, UPSTREAM_STOPPED, E_IO, "the receiver stopped the transfer");
	else if (x.too_big == 2)
		rc = up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "the answer does not start at the offset asked for");
	else if (x.too_big)
		rc = up_fail(e, UPSTREAM_BAD_ANSWER, E_STORE, "the answer is larger than allowed");
	else if (cc != CURLE_OK)
		rc = transport_error(cc, e);
	else
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	resp->broken = httpc_broke(cc);
	if (rc && e)
		e->status = 0;
	httpc_headers_free(list);
	httpc_pool_give_back(&u->pool, c);
	return rc;
}
