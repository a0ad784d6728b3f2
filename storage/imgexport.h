/*
 * imgexport: writes an image of a repository as an OCI image layout packed
 * in a tar archive (oci-layout, index.json, blobs/<alg>/<hex>), the form
 * `skopeo copy oci-archive:FILE ...` reads, for moving images to air-gapped
 * sites.
 *
 * An index is written with every platform manifest it lists (and indexes
 * below it), each with its config and layers; manifests keep their exact
 * bytes and media types (Docker schema 2 ones included), so every digest
 * survives the trip. index.json names the image with the
 * org.opencontainers.image.ref.name annotation (the tag) when it was
 * chosen by tag. Blobs are streamed from the blob store and hashed on the
 * way: a blob that no longer matches its digest fails the export. The
 * archive's bytes depend only on the image (fixed times and owners, blobs
 * in digest order).
 *
 * struct imgexport_result owns its array until imgexport_result_release().
 * Uses the meta module (which must be open). One thread per call.
 */
#ifndef BERTH_IMGEXPORT_H
#define BERTH_IMGEXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "blobstore.h"
#include "buf.h"
#include "digest.h"
#include "names.h"

/* Index nesting followed at most. */
#define IMGEXPORT_MAX_DEPTH 4

struct imgexport_blob {
	struct digest digest;
	int64_t size;
	const char *role; /* "index", "manifest", "config", "layer" (static strings) */
};

struct imgexport_result {
	struct digest top;
	int64_t top_size;
	char *top_media_type;
	struct imgexport_blob *blobs; /* in the order written (digest order) */
	size_t nblobs, alloc;
	int64_t archive_bytes;
};

/*
 * Writes repo:ref (a tag or a digest) to fd as an OCI layout tar. Returns 0
 * and fills *res, or: E_NAME_UNKNOWN / E_MANIFEST_UNKNOWN (no such
 * repository or reference), E_BLOB_UNKNOWN / E_DIGEST_INVALID (content
 * missing or corrupt in storage), E_IO or E_NO_SPACE (reading storage or
 * writing fd), E_MANIFEST_INVALID (indexes nested too deep), with a
 * one-line explanation appended to detail. After a failure what was
 * written to fd is not a valid archive. Release res in every case.
 */
int imgexport(const struct blobstore *bs, const char *repo, const struct reference *ref, int fd,
	      struct imgexport_result *res, struct buf *detail);
void imgexport_result_release(struct imgexport_result *res);

#endif
