/*
 * upstream_internal: private to mirror/: the struct behind struct upstream,
 * the one-request HTTP engine (upstream.c) and the authenticated call with
 * retries (upstream_auth.c) that the manifest and blob verbs
 * (upstream_fetch.c) are built on. Not for use outside mirror/.
 */
#ifndef BERTH_UPSTREAM_INTERNAL_H
#define BERTH_UPSTREAM_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "httpc.h"
#include "upstream.h"

#define UP_WWW_AUTH_MAX 2048
#define UP_ERROR_BODY_MAX (64 * 1024)

struct up_token {
	char *scope;
	char *token;
	long expires_ms; /* monotonic; renewed before this */
};

struct upstream {
	char *name, *url, *prefix, *ca_file, *username, *password, *static_token;
	int is_default, docker_hub, https;
	struct upstream_limits lim;
	struct httpc_backoff backoff; /* 100 ms doubling to 1 s, within lim.retry_budget_ms */
	struct httpc_pool pool;
	pthread_mutex_t lock; /* guards everything below */
	int basic_mode;       /* the upstream asked for Basic: sent up front from then on */
	char *realm, *service; /* from the last Bearer challenge */
	struct up_token *tokens;
	size_t ntokens;
	struct upstream_stats stats;
};

/* One HTTP request. */
struct up_req {
	const char *method;      /* "GET" or "HEAD" */
	const char *url;         /* absolute */
	const char *accept;      /* NULL: none */
	const char *bearer;      /* NULL: no bearer token */
	int basic;               /* send the upstream's username and password */
	int token_realm;         /* a token request (counted apart; 401 is an answer, not a challenge) */
	int64_t range_from;      /* > 0: Range: bytes=N- */
	upstream_sink_fn sink;   /* 2xx bodies go here; NULL: into resp->body up to body_max */
	void *sink_ctx;
	size_t body_max;
	int64_t sink_max;        /* more bytes to the sink than this: UPSTREAM_BAD_ANSWER */
};

struct up_resp {
	long status;
	struct buf body;           /* buffered body (a 2xx without sink, or an error's, bounded) */
	char digest[DIGEST_STR_MAX + 1]; /* Docker-Content-Digest, "" when absent or malformed */
	char content_type[128];
	int64_t content_length;    /* -1 when absent */
	int64_t range_start, range_total; /* Content-Range, -1 when absent ("*" total too) */
	char www_auth[UP_WWW_AUTH_MAX];
	unsigned retry_after_s;
	int64_t delivered;         /* bytes handed to the sink */
	int broken;                /* the connection broke mid-request: worth another try */
};

void up_resp_init(struct up_resp *r);
void up_resp_release(struct up_resp *r);

/*
 * Sends r once (redirects followed). Returns 0 with any status in resp,
 * or an E_* code with e filled: E_STORE_UNAVAILABLE (no connection,
 * timeout), E_IO (the sink stopped), E_STORE (a body over its bound).
 */
int up_http(struct upstream *u, const struct up_req *r, struct up_resp *resp, struct upstream_error *e);

/*
 * The authenticated call: sends r for repository remote (NULL: the base
 * /v2/ endpoint) with the credentials the upstream wants, answering one
 * 401 challenge (token flow or Basic), retrying transport errors and
 * 502/503/504 with backoff (a sink request resumes where it stopped).
 * Returns 0 with a 2xx answer in resp; else the E_* code of the failure
 * with e filled (notfound: the code for a 404).
 */
int up_call(struct upstream *u, const char *remote, const struct up_req *r, struct up_resp *resp, int notfound,
	    struct upstream_error *e);

/* Fills e from a non-2xx answer and returns its E_* code (notfound for a 404). */
int up_status_error(const struct up_resp *resp, int notfound, struct upstream_error *e);
/* Sets e to kind with a formatted message; returns code. */
int up_fail(struct upstream_error *e, enum upstream_fail kind, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
