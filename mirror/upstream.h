/*
 * upstream: the client side of the registry protocol for one configured
 * upstream registry (config's struct config_upstream): mapping a local
 * repository name to the upstream's, authentication (the Docker token
 * flow, anonymous or with Basic credentials, tokens cached per scope until
 * shortly before they expire; Basic auth; a fixed bearer token), manifest
 * HEAD and GET with every manifest and index media type accepted and the
 * digest verified, referrers (the API or the tag schema), and blob GET
 * streamed to a callback with the digest verified at the end (Range for
 * resuming).
 *
 * Ownership: upstream_open() copies what it needs from the config (the
 * config may be released afterwards); upstream_free() frees it, after every
 * other thread stopped using it. Structs filled by upstream_* own their
 * memory until their *_release(). Strings passed in are borrowed for the
 * call.
 *
 * Thread-safety: every function may be called from any thread on a shared
 * struct upstream (a pool of libcurl handles and the token cache are
 * guarded inside). Two threads missing the same token may both fetch one.
 *
 * Errors: functions return 0 or an E_* code (common/err.h) and fill a
 * struct upstream_error (when not NULL) with what the mirror's policy needs
 * (the kind, the upstream's status, Retry-After, its error code and
 * message). The E_* codes: E_MANIFEST_UNKNOWN / E_BLOB_UNKNOWN (404),
 * E_DENIED (401 after authenticating, 403, a refused token request),
 * E_TOOMANYREQUESTS (429), E_STORE_UNAVAILABLE (down, timeout, 5xx),
 * E_STORE (an answer that breaks the protocol: wrong digest, too large,
 * malformed), E_IO (the caller's sink stopped the transfer), E_NAME_UNKNOWN
 * (a name this upstream does not serve).
 *
 * Secrets (passwords, tokens) are never logged, never put in an error
 * message and never sent to another host than the upstream and its token
 * realm; credentials are not sent over plain HTTP unless the upstream URL
 * itself is http://.
 */
#ifndef BERTH_UPSTREAM_H
#define BERTH_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "digest.h"

struct upstream;

/* Bounds of the client; 0 in any field takes the default in brackets. */
struct upstream_limits {
	long connect_ms;          /* TCP and TLS connect [3000] */
	long request_ms;          /* whole request: manifests, HEAD, tokens [30000] */
	long stall_s;             /* blob GET: under 1 KiB/s for this long ends it [30] */
	size_t manifest_max;      /* largest manifest accepted [CONFIG_MANIFEST_MAX] */
	int64_t blob_max;         /* largest blob accepted [64 GiB] */
	int max_attempts;         /* tries of an idempotent request on a transport error or 502/503/504 [3] */
	long retry_budget_ms;     /* no retry starts after this long [5000] */
	unsigned token_margin_s;  /* a token is renewed this long before it expires [30] */
	size_t token_cache_max;   /* scopes whose tokens are kept [256] */
};

enum upstream_fail {
	UPSTREAM_OK = 0,
	UPSTREAM_DOWN,         /* no connection: refused, no route, DNS, TLS handshake or verification */
	UPSTREAM_TIMEOUT,      /* connected but too slow */
	UPSTREAM_RATE_LIMITED, /* 429 */
	UPSTREAM_DENIED,       /* 401 despite authenticating, 403, or the token request refused */
	UPSTREAM_NOT_FOUND,    /* 404 */
	UPSTREAM_SERVER,       /* 5xx */
	UPSTREAM_BAD_ANSWER,   /* the answer breaks the protocol (digest, size, shape, status) */
	UPSTREAM_STOPPED,      /* the caller's sink returned non-zero */
};

struct upstream_error {
	enum upstream_fail kind;
	int status;             /* the upstream's HTTP status; 0 when there was no answer */
	unsigned retry_after_s; /* Retry-After of a 429 or 503, in seconds; 0 when absent */
	char code[64];          /* the first OCI error code of the answer, else "" */
	char message[256];      /* the answer's message, curl's, or ours; printable ASCII */
};

/* A short name for kind: "down", "timeout", "rate limited", ... */
const char *upstream_fail_name(enum upstream_fail kind);
/*
 * Appends one line for logs and client errors, e.g. `upstream "hub"
 * (https://registry-1.docker.io) answered 404 MANIFEST_UNKNOWN: manifest
 * unknown` or `upstream "hub" (...) is down: Couldn't connect to server`.
 */
void upstream_error_describe(const struct upstream *u, const struct upstream_error *e, struct buf *out);

/*
 * Makes a client for cfg (name, url, credentials, ca_file). lim may be
 * NULL (defaults). Returns 0 and *out, or E_CONFIG (*out NULL) for a
 * config that config_load() would not have let through.
 */
int upstream_open(const struct config_upstream *cfg, const struct upstream_limits *lim, struct upstream **out);
void upstream_free(struct upstream *u);
const char *upstream_name(const struct upstream *u);
const char *upstream_url(const struct upstream *u);

/*
 * The upstream's name for local repository name: the prefix removed (the
 * default upstream takes unprefixed names as they are), and "library/"
 * put before a single-component name when the upstream is Docker Hub
 * (registry-1.docker.io, index.docker.io, docker.io), as docker does.
 * Appends it to remote and returns 0, or E_NAME_UNKNOWN when name is not
 * this upstream's (or nothing follows the prefix).
 */
int upstream_remote_name(const struct upstream *u, const char *name, struct buf *remote);

/* The Accept header value of manifest requests: every OCI and Docker manifest and index type. */
extern const char upstream_manifest_accept[];

/* A manifest as the upstream gave it. */
struct upstream_manifest {
	struct digest digest;  /* verified against body on GET; from Docker-Content-Digest on HEAD */
	int has_digest;        /* HEAD: 0 when the upstream sent no Docker-Content-Digest */
	char media_type[128];  /* Content-Type, parameters dropped; "" when absent */
	int64_t size;          /* the body's length (HEAD: Content-Length, -1 when absent) */
	struct buf body;       /* GET only: the bytes, exactly as served */
};
void upstream_manifest_init(struct upstream_manifest *m);
void upstream_manifest_release(struct upstream_manifest *m);

/*
 * HEAD or GET /v2/<remote>/manifests/<ref> (ref: a tag or "alg:hex"),
 * authenticating as needed. GET checks the body against the digest asked
 * for (a digest ref) and against Docker-Content-Digest (when sent): any
 * mismatch is E_STORE with kind UPSTREAM_BAD_ANSWER; the digest of the
 * body (sha256 unless the header or the ref names another algorithm) is
 * m->digest. A body over limits.manifest_max is refused the same way
 * without being read whole. m must be initialised; on failure it holds
 * nothing useful.
 */
int upstream_manifest_head(struct upstream *u, const char *remote, const char *ref, struct upstream_manifest *m,
			   struct upstream_error *e);
int upstream_manifest_get(struct upstream *u, const char *remote, const char *ref, struct upstream_manifest *m,
			  struct upstream_error *e);

/* Receives blob bytes in order; a non-zero return stops the transfer (E_IO, UPSTREAM_STOPPED). */
typedef int (*upstream_sink_fn)(void *ctx, const void *data, size_t len);

struct upstream_blob_req {
	const char *remote;           /* the upstream's repository name */
	struct digest digest;         /* the blob asked for; the bytes are checked against it */
	int64_t size;                 /* expected total size, -1 when unknown; more is refused */
	int64_t offset;               /* resume: bytes [0, offset) are already held by the caller */
	const struct hasher *held;    /* with offset > 0: the digest state over those bytes (copied) */
};

/*
 * GET /v2/<remote>/blobs/<digest>, from req->offset (Range) when non-zero,
 * following redirects (to a CDN or object store; credentials are not sent
 * to another host). Every byte from the offset on goes to sink, in order,
 * and is hashed; the transfer is retried from where it stopped on a
 * transport error (within limits.max_attempts). Returns 0 only when the
 * whole blob arrived and its digest matched: until then the bytes the sink
 * got are unverified, and on any error the caller must discard them (or
 * resume from what it holds). *total gets the blob's size (may be NULL).
 */
int upstream_blob_get(struct upstream *u, const struct upstream_blob_req *req, upstream_sink_fn sink, void *ctx,
		      int64_t *total, struct upstream_error *e);

/* The referrers of a manifest as the upstream lists them. */
struct upstream_referrers {
	struct buf manifests; /* the descriptors: compact JSON objects separated by commas; "" when none */
	size_t count;
	int from_tag;         /* the upstream has no referrers API: read from the referrers tag schema */
};
void upstream_referrers_init(struct upstream_referrers *r);
void upstream_referrers_release(struct upstream_referrers *r);

/*
 * GET /v2/<remote>/referrers/<subject>?artifactType=<artifact_type> (NULL
 * or "": no filter). An upstream answering 404 has no referrers API: the
 * index tagged upstream_referrers_tag(subject) is read instead (the OCI
 * spec's fallback), no such tag meaning no referrers. Each descriptor keeps
 * only mediaType, digest, size, artifactType and annotations; one that is
 * malformed is left out, and so is one of another artifact type (the
 * filter is applied here too: the tag schema never applies it, an upstream
 * may not). out must be initialised; on failure it holds nothing. An
 * answer that is no index is E_STORE (UPSTREAM_BAD_ANSWER).
 */
int upstream_referrers_get(struct upstream *u, const char *remote, const struct digest *subject,
			   const char *artifact_type, struct upstream_referrers *out, struct upstream_error *e);
/* The tag of the referrers tag schema for d: "<alg>-<hex>", cut to 128 characters. */
#define UPSTREAM_REFERRERS_TAG_MAX 128
void upstream_referrers_tag(const struct digest *d, char out[UPSTREAM_REFERRERS_TAG_MAX + 1]);

/* A parsed WWW-Authenticate challenge (the first one of the header). */
struct upstream_challenge {
	char scheme[16];   /* "Bearer", "Basic", ...: as sent */
	char realm[1024];  /* "" when absent */
	char service[256];
	char scope[512];
};
/*
 * Parses header (the value of WWW-Authenticate): a scheme, then
 * auth-params (token or quoted-string values, backslash escapes, commas
 * inside quotes, unknown params skipped). Returns 0, or -1 when the header
 * is malformed or a known value does not fit its field.
 */
int upstream_challenge_parse(const char *header, struct upstream_challenge *out);

/* Counters since upstream_open(), for tests and metrics. */
struct upstream_stats {
	uint64_t requests;        /* HTTP requests sent to the registry (retries and 401s included) */
	uint64_t token_requests;  /* requests sent to the token realm */
	uint64_t token_reuses;    /* requests that used a cached token */
};
void upstream_stats(struct upstream *u, struct upstream_stats *out);

#endif
