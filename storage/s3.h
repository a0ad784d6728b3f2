/*
 * s3: a client for S3-compatible object stores (libcurl, SigV4 from
 * s3_sign), with the verbs the blob store needs: PUT (from memory or a file
 * descriptor, with its SHA-256 as the signed payload hash), GET with a Range
 * streamed into a callback, HEAD, DELETE, multipart uploads, ListObjectsV2
 * and presigned GET URLs.
 *
 * Ownership: s3_open() copies the config (strings included); the handle
 * owns a pool of curl easy handles, which keep their connections open for
 * reuse, and s3_free() closes them. Results that allocate (upload ids,
 * listings) are owned by the caller, who frees them as each function says.
 *
 * Thread-safety: one handle may be shared by any number of threads; each
 * call borrows an easy handle from the pool (a mutex guards only the pool)
 * and returns it when done. s3_last_error() is per thread.
 *
 * Failure: every call is bounded. A connection gets connect_timeout_ms, a
 * request without a body to stream gets request_timeout_ms, and a transfer
 * of data is aborted when it moves under 1 KiB/s for stall_timeout_s.
 * Connection errors, timeouts, 5xx, 429 and S3's SlowDown/InternalError
 * are retried max_attempts times with exponential backoff and full jitter,
 * within retry_budget_ms; a GET that failed midway resumes where it stopped
 * (If-Match on the ETag it started with). When attempts or budget run out
 * the call returns E_STORE_UNAVAILABLE, as it does at once for a missing
 * bucket (NoSuchBucket). Other errors: E_BLOB_UNKNOWN (NoSuchKey, 404),
 * E_BLOB_UPLOAD_UNKNOWN (NoSuchUpload), E_RANGE_INVALID (416), E_IO (a
 * callback or the local file failed), E_STORE (anything else the store
 * refused: credentials, a malformed answer). s3_last_error() then holds the store's status, code and message
 * for the log. Secrets never appear in it nor in any log line.
 */
#ifndef BERTH_S3_H
#define BERTH_S3_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "s3_xml.h"

#define S3_ETAG_MAX 128
/* The smallest part S3 accepts in a multipart upload, except the last. */
#define S3_MIN_PART_SIZE (5u * 1024 * 1024)

struct s3_config {
	const char *endpoint;   /* "http://127.0.0.1:8080", "https://s3.lan:9000": scheme, host, port */
	const char *region;     /* "us-east-1" */
	const char *bucket;
	const char *prefix;     /* prepended to every key ("registry/"); NULL or "" for none */
	int path_style;         /* 1: <endpoint>/<bucket>/<key>; 0: <bucket>.<host>/<key> */
	const char *ca_file;    /* PEM bundle for https; NULL: the system's */
	const char *access_key;
	const char *secret_key;
	/* 0 selects the default given after each */
	long connect_timeout_ms; /* 3000 */
	long request_timeout_ms; /* 30000: a whole request that streams no object data */
	long stall_timeout_s;    /* 30: a data transfer under 1 KiB/s for this long fails */
	int max_attempts;        /* 5: tries of one call, first included */
	long retry_budget_ms;    /* 20000: no retry starts after this much time in one call */
	long retry_base_ms;      /* 100: the first backoff's ceiling, doubled per retry up to 2 s */
};

struct s3;

struct s3_object_info {
	uint64_t size;          /* the whole object's size, even for a Range GET */
	char etag[S3_ETAG_MAX]; /* without quotes */
};

/* What the store said about the calling thread's last failed call. */
struct s3_last_error {
	int http_status;   /* 0 when no answer came */
	int curl_code;     /* CURLcode of the last attempt, 0 when a response came */
	int attempts;
	char code[64];     /* S3 error code: "NoSuchKey", "SlowDown", ... or "" */
	char message[256]; /* S3's message, or curl's description of a transport error */
	char request_id[64];
};

/*
 * Opens a client for cfg (copied). Returns 0, or E_CONFIG when a required
 * field is missing or the endpoint is not "http[s]://host[:port]".
 */
int s3_open(const struct s3_config *cfg, struct s3 **out);
/* Closes pooled connections and frees s (NULL allowed); no call may be running. */
void s3_free(struct s3 *s);
const struct s3_last_error *s3_last_error(void);

/*
 * Stores len bytes of data as key. sha256_hex: the data's SHA-256 in
 * lowercase hex, signed as the payload hash (the store then rejects a
 * body that does not match it); NULL to have it computed here.
 */
int s3_put(struct s3 *s, const char *key, const void *data, size_t len, const char *sha256_hex);
/*
 * Same, reading len bytes of fd from offset with pread() (fd's position is
 * not used; a retry reads them again). sha256_hex NULL sends the body
 * unsigned (UNSIGNED-PAYLOAD).
 */
int s3_put_fd(struct s3 *s, const char *key, int fd, uint64_t offset, uint64_t len,
	      const char *sha256_hex);

/* Receives object data in order; a non-zero return stops the GET (E_IO). */
typedef int (*s3_write_fn)(void *ctx, const void *data, size_t len);

/*
 * Streams len bytes of key from offset first to write (len UINT64_MAX: to
 * the end). Nothing proportional to the object is held in memory. info (may
 * be NULL) gets the object's total size and ETag. A range that starts at or
 * past the end is E_RANGE_INVALID, except first == 0 on an empty object.
 */
int s3_get(struct s3 *s, const char *key, uint64_t first, uint64_t len, s3_write_fn write,
	   void *ctx, struct s3_object_info *info);
/*
 * What a GET's answer said before its data: called once, when the headers
 * of the first 2xx answer are in (before any data reaches write; retries
 * after it are not told again). sized 0: the answer gave no size.
 */
typedef void (*s3_head_fn)(void *ctx, const struct s3_object_info *info, int sized);
/* s3_get() telling on_head (may be NULL) with ctx, so that a caller learns the size without a HEAD. */
int s3_get_told(struct s3 *s, const char *key, uint64_t first, uint64_t len, s3_head_fn on_head,
		s3_write_fn write, void *ctx, struct s3_object_info *info);
int s3_head(struct s3 *s, const char *key, struct s3_object_info *info);
/* Deletes key; deleting a missing key succeeds (S3 semantics). */
int s3_delete(struct s3 *s, const char *key);

struct s3_part {
	int number; /* 1..10000 */
	char etag[S3_ETAG_MAX];
};

/* Starts a multipart upload of key; *upload_id is the caller's to free(). */
int s3_mpu_create(struct s3 *s, const char *key, char **upload_id);
/* Uploads part number (1..10000) from memory; part->etag filled on success. */
int s3_mpu_put_part(struct s3 *s, const char *key, const char *upload_id, int number,
		    const void *data, size_t len, const char *sha256_hex, struct s3_part *part);
/* Same from fd (pread at offset); sha256_hex NULL sends it unsigned. */
int s3_mpu_put_part_fd(struct s3 *s, const char *key, const char *upload_id, int number, int fd,
		       uint64_t offset, uint64_t len, const char *sha256_hex, struct s3_part *part);
/* Completes with the parts in ascending order; info (may be NULL) gets the new ETag. */
int s3_mpu_complete(struct s3 *s, const char *key, const char *upload_id,
		    const struct s3_part *parts, size_t nparts, struct s3_object_info *info);
/* Aborts; aborting an unknown upload is E_BLOB_UPLOAD_UNKNOWN. */
int s3_mpu_abort(struct s3 *s, const char *key, const char *upload_id);

/*
 * One page of ListObjectsV2 under prefix (relative to the configured one;
 * NULL or "" for all), continuing from token (NULL for the first page),
 * at most max_keys (1..1000; 0 means 1000). Keys in out are relative to the
 * configured prefix; out->next_token is set while more remain. out is
 * released with s3xml_list_release().
 */
int s3_list(struct s3 *s, const char *prefix, const char *token, unsigned max_keys,
	    struct s3xml_list *out);

/* Appends a presigned GET URL for key, valid for expires seconds (1..604800); 0 or E_CONFIG. */
int s3_presign_get(struct s3 *s, const char *key, unsigned expires, struct buf *url);

#endif
