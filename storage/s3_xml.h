/*
 * s3_xml: a small strict reader for the few XML documents S3 answers with
 * (Error, InitiateMultipartUploadResult, CompleteMultipartUploadResult,
 * ListBucketResult), and nothing else.
 *
 * Strict and bounded: one root element, properly nested and closed tags,
 * at most S3XML_MAX_DEPTH levels, names of at most S3XML_MAX_NAME bytes,
 * text of at most S3XML_MAX_TEXT bytes per element, the five predefined
 * entities and numeric character references (no NUL); no DTD, no CDATA,
 * no processing instruction other than a leading XML declaration. Comments
 * are skipped. Namespaces are ignored (prefixes kept as written), attributes
 * are skipped. Anything else is malformed: E_STORE.
 *
 * The results own their memory: s3xml_*_release() frees it. Thread-safe
 * (no shared state).
 */
#ifndef BERTH_S3_XML_H
#define BERTH_S3_XML_H

#include <stddef.h>
#include <stdint.h>

#define S3XML_MAX_DEPTH 8
#define S3XML_MAX_NAME 64
#define S3XML_MAX_TEXT 4096

/*
 * Called for each element, with its path from the root ("A/B/C") and,
 * at its end, its text (decoded, NUL-terminated; "" for an element with
 * children). open may be NULL. A non-zero return stops the parse and is
 * returned by s3xml_parse().
 */
struct s3xml_cb {
	int (*open)(void *ctx, const char *path);
	int (*close)(void *ctx, const char *path, const char *text, size_t len);
};

/* Parses len bytes of data; returns 0, a callback's non-zero value, or E_STORE. */
int s3xml_parse(const char *data, size_t len, const struct s3xml_cb *cb, void *ctx);

/* An S3 <Error>: code and message ("" when absent). */
struct s3xml_error {
	char code[64];
	char message[256];
	char request_id[64];
};
/* Fills e from an <Error> document; returns 0, or E_STORE when data is not one. */
int s3xml_error(const char *data, size_t len, struct s3xml_error *e);

/* <InitiateMultipartUploadResult><UploadId>: *upload_id (caller frees); 0 or E_STORE. */
int s3xml_upload_id(const char *data, size_t len, char **upload_id);

/*
 * A CompleteMultipartUpload answer, which S3 may send as 200 with an <Error>
 * body: returns 0 with the ETag (caller frees) for a result, 1 with *e
 * filled for an error, E_STORE for anything else.
 */
int s3xml_complete(const char *data, size_t len, char **etag, struct s3xml_error *e);

struct s3xml_object {
	char *key;
	uint64_t size;
	char *etag; /* as sent, quotes removed */
};

struct s3xml_list {
	struct s3xml_object *objects;
	size_t count;
	size_t alloc;
	int truncated;
	char *next_token; /* NULL when not truncated */
};

/*
 * Reads a ListObjectsV2 <ListBucketResult> into out (zeroed by the caller or
 * released before); 0 or E_STORE (also when an object lacks a key or size,
 * or when truncated without a continuation token).
 */
int s3xml_list(const char *data, size_t len, struct s3xml_list *out);
void s3xml_list_release(struct s3xml_list *l);

#endif
