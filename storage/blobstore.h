/*
 * blobstore: content-addressed blob files on local disk.
 *
 * The narrow interface the handlers use for bytes (open, write, remove);
 * metadata lives in meta. A blob file is written once, made durable
 * (fsync, rename into place, directory fsync) and never modified in place,
 * so concurrent readers never see partial content. struct blobstore owns
 * its root path and the cached state of its uploads (upload.h);
 * blobstore_release() frees both. All functions are
 * thread-safe once blobstore_init() returned.
 */
#ifndef BERTH_BLOBSTORE_H
#define BERTH_BLOBSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "digest.h"

struct upload_cache;
struct blobstore {
	char *root;
	struct upload_cache *uploads;
};

/* Creates the directory layout under root when missing. Returns 0 or E_IO. */
int blobstore_init(struct blobstore *bs, const char *root);
void blobstore_release(struct blobstore *bs);

/* Opens d for reading; the caller owns *fd. E_BLOB_UNKNOWN when missing. */
int blobstore_open(const struct blobstore *bs, const struct digest *d, int *fd, int64_t *size);
/* 0 when the file for d exists, else E_BLOB_UNKNOWN. */
int blobstore_stat(const struct blobstore *bs, const struct digest *d, int64_t *size);
/*
 * Durably stores len bytes whose digest the caller computed as d
 * (temporary file, fsync, rename, directory fsync). Idempotent: an existing
 * file is kept. Returns 0, E_NO_SPACE or E_IO.
 */
int blobstore_write(const struct blobstore *bs, const struct digest *d, const void *data, size_t len);
/* Removes the file of d (missing is not an error). Returns 0 or E_IO. */
int blobstore_remove(const struct blobstore *bs, const struct digest *d);
/*
 * Creates a new, empty temporary file for blob content being written
 * (uploads/tmp-<random>, mode 0640): appends its path to path and stores a
 * descriptor open for writing in *fd (the caller closes it). The caller
 * either hands the finished, fsync'd file to blobstore_adopt() or unlinks
 * it. Returns 0, E_NO_SPACE or E_IO.
 */
int blobstore_tmp_create(const struct blobstore *bs, struct buf *path, int *fd);
/*
 * Moves a finished, fsync'd file at tmp_path into place as d, or removes it
 * when d already exists; then fsyncs the directory. Returns 0 or E_IO.
 * E_IO may come after the move (the directory fsync failed): tmp_path is
 * gone then and the file is d's blob, whose entry may not be durable.
 */
int blobstore_adopt(const struct blobstore *bs, const char *tmp_path, const struct digest *d);

/* Maps an errno value to E_NO_SPACE or E_IO. */
int blobstore_errno(int e);

#endif
