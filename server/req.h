/*
 * req: one HTTP request as the handlers see it, and the response they build.
 *
 * The HTTP glue (http.c) creates a struct req when a request arrives, fills
 * the method, raw path, parsed query and client address, and frees it in
 * its completion callback, after the response is sent; everything hanging
 * off it (strings, buffers, handler state via on_cleanup) lives exactly
 * that long. Handlers never see libmicrohttpd: they read headers with
 * req_header() and describe the response with the resp_* functions; the
 * glue turns that into the wire response. A req is used by one thread at
 * a time.
 */
#ifndef BERTH_REQ_H
#define BERTH_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"
#include "httpparse.h"
#include "names.h"

#define REQUEST_ID_LEN 16

enum http_method { M_GET, M_HEAD, M_PUT, M_POST, M_PATCH, M_DELETE, M_OTHER };

enum body_mode {
	BODY_NONE = 0, /* no body expected: any body is discarded */
	BODY_BUFFER,   /* collected into req->body up to req->body_limit */
	BODY_STREAM,   /* handed to req->on_body as it arrives */
};

struct resp_header {
	char *name;
	char *value;
};

struct route;
struct registry;
struct ident;
struct snapshot;
struct policy;
struct config;
struct workq;

struct req {
	/* filled by the glue */
	void *conn;
	enum http_method method;
	const char *method_str;
	char *path;          /* raw path, never percent-decoded */
	struct query query;  /* decoded query parameters */
	char client[64];     /* client address, text */
	uint64_t start_ns;
	char request_id[REQUEST_ID_LEN + 1]; /* also sent as X-Request-Id */
	int64_t content_length; /* -1 when absent (chunked) */
	uint64_t bytes_in;

	struct registry *reg;
	/* The settings and policy in force when the request arrived: a reload
	 * never changes them under a running request. */
	struct snapshot *snap;
	const struct config *cfg;
	const struct policy *policy;
	struct ident *ident; /* who is calling; set by the authentication step */

	/* filled by the router */
	const struct route *route;
	char *name;  /* repository name, validated */
	char *ref;   /* last path segment (reference, digest or upload id), validated */
	struct reference reference; /* parsed ref for manifest, blob and referrers routes */

	/* body handling, chosen by the handler's begin step */
	enum body_mode body_mode;
	size_t body_limit;
	struct buf body;
	int (*on_body)(struct req *r, const char *data, size_t len);
	void (*on_cleanup)(struct req *r);
	void *hstate;

	/*
	 * Slow work (password hashing) runs on the login pool, off the HTTP
	 * threads: a step sets async_work (run there) and async_then (run back
	 * on an HTTP thread, with the same contract as a route's begin step).
	 */
	void (*async_work)(struct req *r);
	int (*async_then)(struct req *r);
	struct workq *async_q;           /* pool for async_work; NULL = the login pool */
	int (*io_step)(struct req *r);   /* the handler step the I/O pool runs */
	int async_rc;                    /* its result */

	/* outcome */
	int err;                /* 0 or the E_* that decides the reply */
	struct buf err_detail;
	int status;
	struct resp_header *headers;
	size_t nheaders;
	struct buf out;         /* in-memory body */
	int out_fd;             /* or a file body: fd (owned), offset, length */
	uint64_t out_off, out_len;
	struct store_reader *out_reader; /* or a remote body streaming from the store (owned), out_len bytes */
	int responded;          /* response handed to the glue */
	uint64_t bytes_out;
};

/* Value of a request header (case-insensitive), or NULL. Valid for the request's life. */
const char *req_header(struct req *r, const char *name);
/* First value of a query parameter, or NULL. */
const char *req_arg(struct req *r, const char *key);
/* Records the error that decides the reply and returns it (for `return req_fail(...)`). */
int req_fail(struct req *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void resp_header(struct req *r, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sets the status with an empty body. */
void resp_status(struct req *r, int status);
/* Sets status and the in-memory body from r->out with the given Content-Type. */
void resp_body(struct req *r, int status, const char *content_type);
/* Sets status and a file body; fd is owned by the request from now on. */
void resp_fd(struct req *r, int status, int fd, uint64_t off, uint64_t len);
/* Sets status and a body of len bytes streamed from rd (store_reader_stream() called; owned from now on). */
void resp_reader(struct req *r, int status, struct store_reader *rd, uint64_t len);

void req_init(struct req *r);
void req_release(struct req *r);

#endif
