/*
 * blob_s3_backend: the store's blob backend (store_backend.h) on an S3
 * object store, adapting storage/blob_s3.h to the table: blobs at the key
 * blob_s3 chose (recorded by the store as the blob's location, empty when
 * it is the digest's own key), uploads as blob_s3's opaque states (the
 * store persists them with the upload's row and leases the upload to one
 * request at a time), presigned URLs, a probe, and reads that stream
 * (blob_s3_backend_read.c).
 *
 * blob_s3_backend_open() copies the config (through blob_s3_open()) and
 * the instance owns its client; the close op frees it. Thread-safe as the
 * table says.
 */
#ifndef BERTH_BLOB_S3_BACKEND_H
#define BERTH_BLOB_S3_BACKEND_H

#include "blob_s3.h"
#include "store_backend.h"

/* E_CONFIG (logged) when the settings are unusable. Makes no request. */
int blob_s3_backend_open(const struct blob_s3_config *cfg, struct blob_backend **out);

/* ---- shared by the backend's files ---- */

struct blob_s3_backend;
/* The blob_s3 handle of be. */
struct blob_s3 *blob_s3_backend_client(struct blob_backend *be);
/* Notes the outcome of a call to the store (for down_since): returns rc. */
int blob_s3_backend_note(struct blob_backend *be, int rc);
/* The key of d at loc (loc NULL or "": the digest's key), appended to key. */
void blob_s3_backend_key(const struct digest *d, const char *loc, struct buf *key);

/* Reads (blob_s3_backend_read.c): the table's open, read, stream, pull and reader_release. */
int blob_s3_backend_rd_open(struct blob_backend *be, const struct digest *d, const char *loc, struct store_reader *rd);
int blob_s3_backend_rd_read(struct blob_backend *be, struct store_reader *rd, int64_t off, void *buf, size_t len,
			    size_t *n);
int blob_s3_backend_rd_stream(struct blob_backend *be, struct store_reader *rd, int64_t first, int64_t len);
int blob_s3_backend_rd_pull(struct blob_backend *be, struct store_reader *rd, void *buf, size_t max, size_t *n,
			    const struct store_waiter *w);
void blob_s3_backend_rd_release(struct blob_backend *be, struct store_reader *rd);

/* Maintenance (blob_s3_backend_list.c): the table's list, drop and up_name. */
int blob_s3_backend_list(struct blob_backend *be, int (*cb)(void *ctx, const struct blob_entry *e), void *ctx);
int blob_s3_backend_drop(struct blob_backend *be, const char *label);
int blob_s3_backend_up_name(struct blob_backend *be, const void *state, size_t state_len, struct buf *name);

#endif
