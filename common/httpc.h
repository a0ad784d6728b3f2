/*
 * httpc: the base both outgoing HTTP clients stand on (storage/s3 toward
 * an object store, mirror/upstream toward upstream registries), on
 * libcurl: process-wide curl setup, a pool of easy handles that keeps
 * connections alive between requests, the options every request gets
 * (protocols, timeouts, CA bundle, callbacks), response-header lines cut
 * into a bounded buffer, bounded body capture, and the retry timing (a
 * monotonic clock, exponential backoff with full jitter inside a budget).
 * What a request means (signing, auth, which statuses retry) stays with
 * each client.
 *
 * Ownership: a struct httpc_pool is embedded in its owner, set up with
 * httpc_pool_init() and torn down with httpc_pool_release(), which closes
 * every idle handle (and its connections); no handle may be borrowed then.
 * A borrowed handle is the borrower's until httpc_pool_give_back(), which
 * resets its options (credentials, headers, callbacks) but keeps its
 * connection cache. httpc_header_add() lists are the caller's, freed with
 * httpc_headers_free(). Everything else owns nothing.
 *
 * Thread-safety: a pool may be shared by any number of threads (a mutex
 * guards only the idle list); a borrowed handle is used by one thread at a
 * time. The other functions keep no state and are thread-safe.
 *
 * Failure: out of memory and a libcurl that cannot start abort with a
 * message; the parsers return -1 or 0 as each says.
 */
#ifndef BERTH_HTTPC_H
#define BERTH_HTTPC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "buf.h"

/* curl_global_init() once per process (it is not thread-safe); call before any handle is made. */
void httpc_global_init(void);

struct httpc_pool {
	pthread_mutex_t lock; /* guards idle, nidle, alloc */
	CURL **idle;
	size_t nidle, alloc;
};

void httpc_pool_init(struct httpc_pool *p);
/* Closes the idle handles; p may be initialised again afterwards. */
void httpc_pool_release(struct httpc_pool *p);
/* An idle handle (its open connection reused), else a new one. */
CURL *httpc_pool_borrow(struct httpc_pool *p);
/* Resets c's options and keeps it, with its connections, for the next borrower. */
void httpc_pool_give_back(struct httpc_pool *p, CURL *c);

/* How a request moves data, which decides what bounds it. */
enum httpc_flow {
	HTTPC_WHOLE,    /* small answers: the whole request bounded by request_ms */
	HTTPC_DOWNLOAD, /* streams a body in: bounded by progress (stall_s), large receive buffer */
	HTTPC_UPLOAD,   /* streams a body out: bounded by progress (stall_s), large send buffer */
};

/* The options every request of both clients sets; all borrowed for the call. */
struct httpc_opts {
	const char *url;
	struct curl_slist *headers;
	const char *ca_file;   /* PEM bundle; NULL: the system's */
	long connect_ms;
	long request_ms;       /* HTTPC_WHOLE only */
	long stall_s;          /* streams: under 1 KiB/s for this long ends the transfer */
	enum httpc_flow flow;
	curl_write_callback on_header; /* gets each header line, status lines included */
	curl_write_callback on_body;
	void *ud;              /* for both callbacks */
};

/* Sets o on c (http and https only, no signals, TCP keepalive). */
void httpc_setup(CURL *c, const struct httpc_opts *o);
/* Whether cc says an open connection broke mid-request (sent or received part): worth another try. */
int httpc_broke(CURLcode cc);

/*
 * Appends "name: value" to l. The line built on the way is wiped (values
 * may be credentials); the list is the caller's (httpc_headers_free).
 */
struct curl_slist *httpc_header_add(struct curl_slist *l, const char *name, const char *value);
/* Wipes every entry (one may hold a token or a signature), then frees l (NULL allowed). */
void httpc_headers_free(struct curl_slist *l);

/* One response-header line as a header callback gets it, cut apart. */
struct httpc_header {
	long status;       /* a status line ("HTTP/1.1 200 OK"): its code, else -1 */
	const char *name;  /* a field: its name and value (leading blanks and the CRLF dropped) */
	const char *value;
};
/*
 * Copies the n bytes of data (not NUL-terminated) into line (cap bytes) and
 * cuts them into h, which points into line. Returns 0, or -1 for a line to
 * pass over: cap bytes or longer (no header the clients read is), or a
 * field without a colon. A status line starts a new response (after a
 * redirect or a 100 Continue): what the last one's headers said is stale.
 */
int httpc_header_parse(const char *data, size_t n, char *line, size_t cap, struct httpc_header *h);
/* Copies v's n bytes and a NUL into dst (cap bytes) and returns 0; -1 (dst untouched) when they do not fit. */
int httpc_value_copy(char *dst, size_t cap, const char *v, size_t n);
/*
 * The decimal number that s starts with (a digit, no sign), ended by the
 * string's end, white space or one of stops ("" for none). 0, or -1 when
 * malformed or over UINT64_MAX.
 */
int httpc_parse_u64(const char *s, const char *stops, uint64_t *out);

/* Appends n bytes to body unless it would grow past max bytes: 0, or -1 (body untouched). */
int httpc_body_add(struct buf *body, const char *data, size_t n, size_t max);

/*
 * Milliseconds of CLOCK_MONOTONIC. Never shifted by test builds' clock
 * (common/clock.h): a retry budget and a transfer's timing follow real time.
 */
long httpc_now_ms(void);
void httpc_sleep_ms(long ms);

/* Retry timing: full jitter over a ceiling that doubles per retry. */
struct httpc_backoff {
	long base_ms;   /* the first retry's ceiling */
	long max_ms;    /* no ceiling above this */
	long budget_ms; /* no retry starts past this much time since the call began */
};
/* Uniform in [0, min(max_ms, base_ms * 2^retry)] (retry 0: the first retry). */
long httpc_backoff_ms(const struct httpc_backoff *b, int retry);
/*
 * Waits before retry number retry (0 first) of a call that began at
 * start_ms (httpc_now_ms()): returns 0 after sleeping, or -1 without
 * sleeping when the wait would end past the budget.
 */
int httpc_backoff_wait(const struct httpc_backoff *b, long start_ms, int retry);

#endif
