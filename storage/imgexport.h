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
#include "store.h"
#include "store_maint.h"

/* Index nesting followed at most. */
#define IMGEXPORT_MAX_DEPTH 4

/* The entry point, store_export(), and its result are in store_maint.h. */

#endif
