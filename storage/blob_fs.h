/*
 * blob_fs: the local-directory blob backend of the store (store_backend.h):
 * finished blobs as files under blobs/ (blobstore.h) and uploads as files
 * under uploads/ with their running hashes cached in the instance
 * (upload.h). Its uploads keep no state outside their files, so the state
 * it hands the store is always empty.
 *
 * blob_fs_open() makes an instance owning its blobstore (and so its upload
 * cache); the backend's close op frees it. Thread-safe as the table says.
 */
#ifndef BERTH_BLOB_FS_H
#define BERTH_BLOB_FS_H

#include "blobstore.h"
#include "store_backend.h"

/* Creates the layout under root when missing. Returns 0 and *out, or E_IO / E_NO_SPACE (logged). */
int blob_fs_open(const char *root, struct blob_backend **out);
/* The blobstore of be when it is a blob_fs backend, else NULL. */
const struct blobstore *blob_fs_blobstore(const struct blob_backend *be);

#endif
