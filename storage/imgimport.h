/*
 * imgimport: loads an image from an air-gapped transfer (a `docker save`
 * tarball, an OCI image layout directory, or an OCI layout packed in a
 * tar) straight into the store, whatever its blob backend (a local
 * directory or an object store), and tags it.
 *
 * Every blob is hashed while it streams into the store (a one-shot upload
 * through the store's upload verbs, see imgsource.h) and checked against
 * the digest that names it; manifests are validated like pushed ones.
 * OCI content keeps its exact bytes (and so its digests), image indexes
 * with all their platform manifests. An archive holding both forms (docker
 * save from Docker 25 on) is read as an OCI layout, or through its
 * manifest.json when its index names platforms it does not hold. A docker
 * save image becomes a Docker
 * schema 2 manifest over the archive's own config and layers, stored as
 * they are (docker save layers are uncompressed tars, which schema 2
 * allows). All or nothing: the tag moves only after every blob is verified
 * and linked and every manifest committed (through the store's one write
 * path for manifests); what a failed import stored is referenced by no
 * manifest and left to garbage collection.
 *
 * struct imgimport_result owns its strings and array until
 * imgimport_result_release(). Uses a store that outlives the call. One
 * thread per call.
 */
#ifndef BERTH_IMGIMPORT_H
#define BERTH_IMGIMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "digest.h"
#include "store.h"
#include "store_maint.h"

/* Index nesting followed at most (index of indexes ...). */
#define IMGIMPORT_MAX_DEPTH 4
/* Largest image config read from a docker save archive. */
#define IMGIMPORT_CONFIG_MAX (16 << 20)

#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER_TAR "application/vnd.docker.image.rootfs.diff.tar"
#define MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define OCI_REF_NAME "org.opencontainers.image.ref.name"

/* The entry point, store_import(), and its options and result are in store_maint.h. */

#endif
