/*
 * paths: the only place that builds file system paths, and only from
 * validated digests and upload ids.
 *
 *   <root>/
 *     berth.db                  SQLite metadata (WAL: berth.db-wal, -shm)
 *     berth.lock                held (flock) by the one `berth serve` using the directory
 *     blobs/<alg>/<2 hex>/<hex> content-addressed bytes, never modified in place
 *     uploads/<id>              in-progress uploads (32 lowercase hex)
 *     uploads/tmp-*             manifests and imported blobs being written (renamed into blobs/)
 *     uploads/.readyz-*         readiness probes, removed as soon as written
 *     keys/                     token signing keys
 *     reserve                   space kept for deletes on a full disk (storage/reserve.h)
 *
 * Each function appends to a caller-owned struct buf. Thread-safe.
 */
#ifndef BERTH_PATHS_H
#define BERTH_PATHS_H

#include "buf.h"
#include "digest.h"

#define UPLOAD_ID_LEN 32

void paths_db(struct buf *out, const char *root);
void paths_lock(struct buf *out, const char *root);
void paths_blobs_dir(struct buf *out, const char *root);
void paths_blob_alg_dir(struct buf *out, const char *root, enum digest_alg alg);
void paths_blob_dir(struct buf *out, const char *root, const struct digest *d);
void paths_blob(struct buf *out, const char *root, const struct digest *d);
void paths_uploads_dir(struct buf *out, const char *root);
/* id must have passed paths_upload_id_check(). */
void paths_upload(struct buf *out, const char *root, const char *id);
void paths_keys_dir(struct buf *out, const char *root);
void paths_reserve(struct buf *out, const char *root);
/* A mkstemp() template for a readiness probe file: the caller replaces the XXXXXX and removes the file. */
void paths_probe(struct buf *out, const char *root);
/* 0 when id is UPLOAD_ID_LEN lowercase hex digits, else E_BLOB_UPLOAD_UNKNOWN. */
int paths_upload_id_check(const char *id);

#endif
