/*
 * s3_sign: AWS Signature Version 4 for S3 requests, in the Authorization
 * header or in a presigned URL's query.
 *
 * Pure functions over a described request: nothing is sent, nothing kept.
 * Every string a function produces is appended to a caller-owned struct buf;
 * the request description is only read (its pointers must stay valid for
 * the call). Thread-safe. The secret key is used only to derive the signing
 * key and never appears in any output.
 *
 * Encoding follows S3's rules, not the generic SigV4 ones: the path is
 * encoded once, segment by segment ('/' kept); query names and values are
 * encoded with '/' escaped and sorted by encoded name, then value. Callers
 * give paths and query parameters unencoded and build the URL they send
 * with s3_uri_encode(), so the bytes sent are the bytes signed.
 */
#ifndef BERTH_S3_SIGN_H
#define BERTH_S3_SIGN_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

/* The payload hash of a request whose body is not hashed (presigned URLs, streams of unknown hash). */
#define S3_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* SHA-256 of the empty string: the payload hash of GET, HEAD and DELETE. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* "20130524T000000Z" + NUL */
#define S3_AMZ_DATE_LEN 17

struct s3_kv {
	const char *name;
	const char *value; /* "" for a query flag such as "uploads" */
};

struct s3_sign_req {
	const char *method;       /* "GET", "PUT", ... */
	const char *host;         /* the Host header: "bucket.s3.lan" or "127.0.0.1:9000" */
	const char *path;         /* unencoded, starts with '/': "/bucket/dir/key" */
	const struct s3_kv *query; /* unencoded; any order */
	size_t nquery;
	/* Headers signed besides host, x-amz-content-sha256 and x-amz-date
	 * (which are always signed and must not be listed): any case, any order. */
	const struct s3_kv *headers;
	size_t nheaders;
	const char *payload_hash; /* lowercase hex SHA-256, or S3_UNSIGNED_PAYLOAD */
	time_t when;              /* the request's time (UTC seconds) */
	const char *region;       /* "us-east-1" */
	const char *access_key;
	const char *secret_key;
};

/*
 * Appends s (len bytes) to out URI-encoded: A-Z a-z 0-9 - . _ ~ kept, and
 * '/' kept when keep_slash; every other byte as %XX (uppercase hex).
 */
void s3_uri_encode(struct buf *out, const char *s, size_t len, int keep_slash);

/* Writes the request's time as "YYYYMMDDTHHMMSSZ" into out (S3_AMZ_DATE_LEN bytes). */
void s3_amz_date(time_t when, char out[S3_AMZ_DATE_LEN]);

/* Appends the canonical query string of req's parameters (sorted, encoded). */
void s3_sign_canonical_query(struct buf *out, const struct s3_kv *query, size_t nquery);

/* Appends the canonical request (for tests and for logs on a signature mismatch). */
void s3_sign_canonical_request(struct buf *out, const struct s3_sign_req *req);

/* Appends the string to sign. */
void s3_sign_string_to_sign(struct buf *out, const struct s3_sign_req *req);

/*
 * Appends the value of the Authorization header
 * ("AWS4-HMAC-SHA256 Credential=.../aws4_request,SignedHeaders=...,Signature=<hex>").
 * The request must carry x-amz-date (s3_amz_date of req->when) and
 * x-amz-content-sha256 (req->payload_hash) headers with those exact values.
 */
void s3_sign_authorization(struct buf *out, const struct s3_sign_req *req);

/*
 * Appends a presigned URL "<scheme>://<host><encoded path>?<query>" valid for
 * expires seconds from req->when (1 to 604800): req's own query parameters
 * plus X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders (host
 * and req's headers) and -Signature. req->payload_hash is ignored (presigned
 * URLs sign UNSIGNED-PAYLOAD). Returns 0, or -1 when expires is out of range.
 */
int s3_sign_presign(struct buf *out, const struct s3_sign_req *req, const char *scheme,
		    unsigned expires);

#endif
