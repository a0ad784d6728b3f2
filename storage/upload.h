/*
 * upload: in-progress blob uploads, hashed while they are received.
 *
 * The state of an upload lives in its file under uploads/ (the bytes
 * received so far) and its row in meta; this module keeps, per upload, a
 * cache of the running SHA-256 so appending never re-reads the data. After
 * a restart (or a cache eviction) the hash is rebuilt from the file on
 * first use, so a PATCH after a restart continues correctly.
 *
 * An upload is used by one request at a time: upload_acquire() grants
 * exclusive use until upload_release(). Writes are buffered and flushed in
 * large pieces; a failed flush truncates the file back to its last good
 * length and drops the cached hash, so file and hash never disagree.
 * The file's size is always the bytes stored: disk space reserved for
 * announced bytes lies past its end (and is given back at release), and
 * writeback started while the body arrives only spares the final fsync
 * work, it is not what makes the upload durable.
 * The cached states belong to the blob store's struct upload_cache
 * (blobstore_init() makes it, blobstore_release() frees it): no
 * process-wide state. struct upload is owned by that cache; the pointer is
 * valid between acquire and release. Thread-safe.
 */
#ifndef BERTH_UPLOAD_H
#define BERTH_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "blobstore.h"
#include "digest.h"
#include "paths.h"

struct upload;

/* A fresh random upload id (UPLOAD_ID_LEN hex + NUL). */
void upload_new_id(char id[UPLOAD_ID_LEN + 1]);
/* Creates an empty upload file for id; E_EXISTS when there is one. */
int upload_create_id(const struct blobstore *bs, const char *id);
/* Creates an empty upload file with a fresh random id. */
int upload_create(const struct blobstore *bs, char id[UPLOAD_ID_LEN + 1]);
/*
 * Takes exclusive use of upload id. Returns 0, E_BLOB_UPLOAD_UNKNOWN when
 * there is no such file, E_UPLOAD_BUSY when another request holds it, or
 * E_IO.
 */
int upload_acquire(const struct blobstore *bs, const char *id, struct upload **out);
/* Bytes received so far (including buffered ones). */
int64_t upload_offset(const struct upload *u);
/*
 * Announces that the current request brings len more bytes (len <= 0:
 * unknown). Disk space for a large body is then reserved ahead of the
 * writes where the file system can; when it does not fit, the write that
 * needs it fails with E_NO_SPACE, as a full disk would. Until
 * upload_release().
 */
void upload_expect(struct upload *u, int64_t len);
/* Appends data. Returns 0, E_NO_SPACE or E_IO. */
int upload_write(struct upload *u, const void *data, size_t len);
/*
 * Writes buffered bytes to the file, so that upload_offset() counts only
 * stored bytes: call before acknowledging them. On failure the buffered
 * bytes are dropped (the offset goes back to the last good length).
 * Returns 0, E_NO_SPACE or E_IO.
 */
int upload_flush(struct upload *u);
/*
 * Completes the upload: flush, fsync, compare the content's digest with
 * want (E_DIGEST_INVALID on mismatch, the upload left as it was) and move
 * the file into the blob store. On success the upload is gone and *size is
 * the blob's size; the caller still calls upload_release().
 */
int upload_finish(struct upload *u, const struct digest *want, int64_t *size);
/*
 * Gives up every byte written since upload_acquire(): buffered bytes are
 * dropped and the file is cut back to the length acquire found, with the
 * running hash as it was then, so a refused request leaves the upload as
 * it found it. Does nothing after a successful upload_finish(). Returns 0,
 * or E_IO when the file cannot be cut (then the next acquire reads the
 * file back, whatever its length).
 */
int upload_rewind(struct upload *u);
/* Ends exclusive use; flushes buffered bytes (errors are logged). */
void upload_release(struct upload *u);
/*
 * Whether the upload's activity time in meta is due for a refresh: 1 when
 * this process recorded none for it within every_ms (or none at all, as
 * after a restart), and then counts now as recorded; else 0.
 */
int upload_touch_due(struct upload *u, int64_t every_ms);
/* Size of an upload without taking it; E_UPLOAD_BUSY while a request holds it, E_BLOB_UPLOAD_UNKNOWN. */
int upload_size(const struct blobstore *bs, const char *id, int64_t *size);
/* Deletes an upload's file and cached state; E_UPLOAD_BUSY when in use. */
int upload_remove(const struct blobstore *bs, const char *id);
/* The cache of one blob store (blobstore.c); free it when no request runs any more. */
struct upload_cache *upload_cache_new(void);
void upload_cache_free(struct upload_cache *c);

#endif
