/*
 * s3_internal: the request engine shared by s3.c (handle, pool, signing,
 * retries) and s3_ops.c (the verbs). Not for other modules.
 *
 * A struct s3_req describes one logical call; s3_request() runs it with
 * retries and fills a struct s3_resp, which the caller releases with
 * s3_resp_release(). Everything the request points to stays the caller's.
 */
#ifndef BERTH_S3_INTERNAL_H
#define BERTH_S3_INTERNAL_H

#include <stdint.h>

#include "buf.h"
#include "s3.h"
#include "s3_sign.h"

/* Largest response body kept in memory (listings of 1000 long keys fit). */
#define S3_MAX_XML_BODY (8u * 1024 * 1024)

struct s3_req {
	const char *method;
	const char *key;              /* relative to the configured prefix; NULL: the bucket */
	const struct s3_kv *query;
	size_t nquery;
	/* the body: memory (body, body_len), or fd >= 0 (pread), or none */
	const char *body;
	size_t body_len;
	int fd;
	uint64_t fd_off;
	uint64_t fd_len;
	const char *payload_hash;     /* NULL: S3_EMPTY_SHA256 when no body */
	/* GET only: object data goes to sink, starting at range_first for range_len bytes */
	s3_write_fn sink;
	void *sink_ctx;               /* also on_head's */
	s3_head_fn on_head;           /* NULL: not told */
	uint64_t range_first;
	uint64_t range_len;           /* UINT64_MAX: to the end */
	int ranged;                   /* send a Range header */
	int head;                     /* HEAD: no response body */
};

struct s3_resp {
	long status;
	struct buf body;              /* non-2xx bodies, and 2xx bodies without a sink */
	char etag[S3_ETAG_MAX];
	uint64_t total_size;          /* Content-Range's total, else Content-Length */
	int has_size;
};

/*
 * Runs req against s until a final answer: returns 0 with resp filled for a
 * 2xx, or the error code the status and S3 code map to (s3_last_error()
 * filled). resp must be released either way.
 */
int s3_request(struct s3 *s, const struct s3_req *req, struct s3_resp *resp);
void s3_resp_release(struct s3_resp *resp);

/* The request's path (unencoded): "/bucket/<prefix><key>" or "/<prefix><key>". */
void s3_path(struct s3 *s, struct buf *out, const char *key);
/* The calling thread's last error, for the verbs to add what they found in a 2xx body. */
struct s3_last_error *s3_error_slot(void);
/* The configured key prefix ("" when none). */
const char *s3_prefix(const struct s3 *s);
/* Signs a presigned GET for key (see s3_presign_get). */
int s3_presign(struct s3 *s, const char *key, unsigned expires, struct buf *url);

#endif
