/*
 * blob_s3: blobs and blob uploads in an S3-compatible object store, with no
 * state on the node, so that any node of a cluster serves any request of an
 * upload (docs/cluster.md).
 *
 * Keys, under the client's configured prefix:
 *
 *   <prefix>
 *   ├── blobs/
 *   │   ├── sha256/ab/ab12...ef     a blob stored under its digest: blob_s3_put(),
 *   │   │                           and uploads that ended without a multipart upload
 *   │   └── uploaded/<id>           a blob completed in place from upload <id>'s
 *   │                               multipart upload (its digest known only to metadata)
 *   └── uploads/<id>/tail.0, tail.1 the bytes of upload <id> not yet in a part
 *
 * Where a finished upload lives: a multipart upload is completed in place
 * at blobs/uploaded/<id> and blob_s3_upload_finish() returns that key; the
 * caller records it in metadata beside the digest. It is not copied to its
 * digest's key: a copy writes every byte a second time (the store reads and
 * rewrites the object; above 5 GiB it takes one UploadPartCopy per 5 GiB),
 * and the client's final PUT would wait for it, about 6 s per GiB at the
 * test engine's write speed, long enough for clients and proxies to time
 * out on large layers. Completing takes one request whatever the size. The
 * price: a blob's key is not derived from its digest alone, so every blob
 * verb below takes the key the metadata recorded (blob_s3_digest_key() for
 * blobs put whole), and two uploads of the same content leave two objects:
 * the caller keeps the first location and deletes the second (or cancels
 * an upload whose digest it already has before finishing it). A blob whose
 * bytes all arrive before the upload needs a part (under part_size, the
 * usual config and small layer) is one PUT straight to its digest key.
 *
 * Uploads are stateless here: everything a later request needs, on any
 * node, is an opaque text state (offset, multipart upload id, the parts'
 * ETags, the tail's length, slot and SHA-256, the running SHA-256) that
 * the caller persists in the metadata store after each request that
 * succeeded. A request writes parts of part_size bytes as its body
 * arrives and keeps at most one part in memory; what is left at its end
 * (under S3_MIN_PART_SIZE) goes to a tail object that the next request
 * reads back first. The multipart upload is created with the first part,
 * so a small blob costs no multipart requests at all.
 *
 * Failure: a request that fails midway (store down, client gone, node
 * killed mid-PATCH) leaves the last persisted state the truth: the caller
 * persists a new state only after blob_s3_upload_commit() returned it.
 * What the failed request wrote is not referenced by that state and is
 * overwritten by the retry: parts take the numbers after the persisted
 * ones, and a new tail goes to the slot the persisted state does not use,
 * so a client that retries from the offset it was last told succeeds. A
 * node killed after creating the multipart upload but before the state
 * naming it was persisted leaves that multipart upload unreferenced: the
 * store's AbortIncompleteMultipartUpload lifecycle rule reclaims it.
 * Requests of one upload must not run concurrently (the caller serialises
 * them, e.g. with a conditional update of the state it read).
 *
 * Errors: E_STORE_UNAVAILABLE when the store cannot be reached (after the
 * client's retries), E_DIGEST_INVALID when the content does not match the
 * digest at finish, E_BLOB_UPLOAD_UNKNOWN when the store no longer has the
 * upload (aborted multipart upload, missing tail), E_BLOB_UPLOAD_INVALID
 * for a state this module did not write (corrupt, truncated, foreign, or
 * out of step with the store) and for an upload past 10000 parts,
 * E_BLOB_UNKNOWN for a missing blob, E_RANGE_INVALID for a range past a
 * blob's end, E_STORE for other refusals (s3.h). s3_last_error() holds the
 * store's answer for the log.
 *
 * Ownership: blob_s3_open() copies its config and owns the S3 client;
 * blob_s3_free() releases it. An upload handle (one request) owns its
 * decoded state and buffer until blob_s3_upload_free(). Output buffers are
 * the caller's. Thread-safety: a struct blob_s3 is shared by all threads;
 * an upload handle is used by one thread.
 */
#ifndef BERTH_BLOB_S3_H
#define BERTH_BLOB_S3_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "digest.h"
#include "s3.h"

/* Hex characters of an upload's id in its keys. */
#define BLOB_S3_ID_LEN 32
/* The largest state text (10000 parts with the longest ETags); larger is refused. */
#define BLOB_S3_STATE_MAX (2u * 1024 * 1024)
/* The default part size, and the default lifetime of a presigned URL. */
#define BLOB_S3_PART_SIZE (8u * 1024 * 1024)
#define BLOB_S3_PRESIGN_EXPIRY 300

struct blob_s3_config {
	struct s3_config s3;
	/*
	 * Bytes per part (0: BLOB_S3_PART_SIZE; at least S3_MIN_PART_SIZE, at
	 * most 512 MiB): the memory one upload request holds, and with 10000
	 * parts the largest blob (78 GiB at 8 MiB). Nodes may differ.
	 */
	size_t part_size;
};

struct blob_s3;

/* Opens the client (s3_open()); 0 or E_CONFIG. */
int blob_s3_open(const struct blob_s3_config *cfg, struct blob_s3 **out);
/* Frees b and its client (NULL allowed); no call may be running. */
void blob_s3_free(struct blob_s3 *b);

/* Appends the key of a blob stored under its digest: "blobs/sha256/ab/ab12...". */
void blob_s3_digest_key(const struct digest *d, struct buf *key);

/*
 * The blob verbs take a key as blob_s3_digest_key() or an upload's finish
 * gave it; any other key is E_BLOB_UNKNOWN (so a corrupt location cannot
 * reach other objects of the bucket).
 */
/* *size: the blob's size. */
int blob_s3_stat(struct blob_s3 *b, const char *key, uint64_t *size);
/*
 * Streams len bytes from first to write (len UINT64_MAX: to the end);
 * nothing proportional to the blob is held. *size (may be NULL) gets the
 * blob's total size. A range starting at or past the end is
 * E_RANGE_INVALID (except 0 on an empty blob); a non-zero return of write
 * stops it with E_IO.
 */
int blob_s3_read(struct blob_s3 *b, const char *key, uint64_t first, uint64_t len,
		 s3_write_fn write, void *ctx, uint64_t *size);
/* The same, telling on_head (with ctx) what the answer's headers said before any data (s3_get_told()). */
int blob_s3_read_told(struct blob_s3 *b, const char *key, uint64_t first, uint64_t len, s3_head_fn on_head,
		      s3_write_fn write, void *ctx, uint64_t *size);
/* Deletes the blob; a missing one is not an error. */
int blob_s3_delete(struct blob_s3 *b, const char *key);
/*
 * Appends a presigned GET URL of the blob valid for expires seconds (0:
 * BLOB_S3_PRESIGN_EXPIRY; the config's storage.s3.redirect_expiry; at most
 * S3's 7 days, else E_CONFIG). The URL is a bearer credential for the
 * blob: keep the expiry short. Makes no request: it does not check that
 * the blob exists.
 */
int blob_s3_presign(struct blob_s3 *b, const char *key, unsigned expires, struct buf *url);
/*
 * Stores len bytes whose digest the caller computed as d under d's key
 * (appended to key). A SHA-256 digest is the signed payload hash, so the
 * store refuses bytes that do not match it (E_STORE).
 */
int blob_s3_put(struct blob_s3 *b, const struct digest *d, const void *data, size_t len,
		struct buf *key);

/* Upload states: text the caller stores as is (at most BLOB_S3_STATE_MAX bytes). */

/* Appends the state of a new, empty upload to state. Makes no request. */
void blob_s3_upload_begin(struct buf *state);
/* The offset (bytes stored) of a state; 0 or E_BLOB_UPLOAD_INVALID. Makes no request. */
int blob_s3_upload_offset(const char *state, size_t len, uint64_t *offset);

/* One request's use of an upload. */
struct blob_s3_upload;

/*
 * Decodes and validates the state the caller persisted; makes no request.
 * Returns 0 or E_BLOB_UPLOAD_INVALID.
 */
int blob_s3_upload_open(struct blob_s3 *b, const char *state, size_t len,
			struct blob_s3_upload **out);
/* Bytes stored plus bytes written through this handle. */
uint64_t blob_s3_upload_size(const struct blob_s3_upload *u);
/*
 * Appends the next len bytes of the body as they arrive (any piece size).
 * Reads the tail back on first use; sends a part each time part_size bytes
 * are buffered. After an error every later call of the handle fails with
 * it: the caller answers the request with it and frees the handle. An
 * upload the store no longer has is reported by commit or finish instead
 * (E_BLOB_UPLOAD_UNKNOWN), the body being hashed meanwhile: a finish may
 * still find the blob an earlier finish stored.
 */
int blob_s3_upload_write(struct blob_s3_upload *u, const void *data, size_t len);
/*
 * Makes what was written durable (the end of a PATCH): sends what is
 * buffered as a part when it is at least S3_MIN_PART_SIZE, else as the
 * new tail; then replaces *state with the new state, which the caller
 * persists before acknowledging the bytes. Nothing written since the last
 * commit: the state unchanged, no request to the store. The handle goes
 * on from the new state (more writes, commits, a finish), provided each
 * state was persisted before the next commit: a commit writes its tail to
 * the slot the state before the last one used.
 */
int blob_s3_upload_commit(struct blob_s3_upload *u, struct buf *state);
/*
 * Ends the upload (the final PUT, after its body went through write):
 * compares the running SHA-256 with want before anything becomes visible
 * (E_DIGEST_INVALID on a mismatch, E_UNSUPPORTED for another algorithm:
 * nothing is written, the persisted state stays valid), then stores the
 * blob: one PUT to the digest's key when no part was sent, else the rest
 * as the last part (it may be small) and the multipart upload completed.
 * The blob's key is appended to key and its size put in *size; the
 * upload's tails are then deleted (a failure there only leaves garbage,
 * logged). A finish retried after one that completed but whose answer was
 * lost finds the blob and succeeds.
 */
int blob_s3_upload_finish(struct blob_s3_upload *u, const struct digest *want, struct buf *key,
			  uint64_t *size);
/*
 * Frees the handle (NULL allowed); nothing is sent. Giving up a refused
 * request is just this: what it wrote since the last commit is not in any
 * persisted state. After finish only this is allowed.
 */
void blob_s3_upload_free(struct blob_s3_upload *u);

/*
 * Cancels the upload of a persisted state: aborts its multipart upload
 * and deletes its tails. Idempotent: an upload the store no longer has is
 * cancelled already. Returns 0, E_BLOB_UPLOAD_INVALID for a bad state, or
 * the store's error (the caller keeps the state and retries later).
 */
int blob_s3_upload_cancel(struct blob_s3 *b, const char *state, size_t len);

#endif
