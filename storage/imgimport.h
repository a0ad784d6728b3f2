/*
 * imgimport: loads an image from an air-gapped transfer (a `docker save`
 * tarball, an OCI image layout directory, or an OCI layout packed in a
 * tar) straight into the blob store and metadata, and tags it.
 *
 * Every blob is hashed while it streams into the store and checked against
 * the digest that names it; manifests are validated like pushed ones.
 * OCI content keeps its exact bytes (and so its digests), image indexes
 * with all their platform manifests. An archive holding both forms (docker
 * save from Docker 25 on) is read as an OCI layout, or through its
 * manifest.json when its index names platforms it does not hold. A docker
 * save image becomes a Docker
 * schema 2 manifest over the archive's own config and layers, stored as
 * they are (docker save layers are uncompressed tars, which schema 2
 * allows). All or nothing: the tag moves only after every blob is verified
 * and linked and every manifest committed; what a failed import stored is
 * unreferenced and left to garbage collection.
 *
 * struct imgimport_result owns its strings and array until
 * imgimport_result_release(). Uses the meta module (which must be open) and
 * a blob store that outlives the call. One thread per call.
 */
#ifndef BERTH_IMGIMPORT_H
#define BERTH_IMGIMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "blobstore.h"
#include "buf.h"
#include "digest.h"
#include "meta.h"

/* Index nesting followed at most (index of indexes ...). */
#define IMGIMPORT_MAX_DEPTH 4
/* Largest image config read from a docker save archive. */
#define IMGIMPORT_CONFIG_MAX (16 << 20)

#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER_TAR "application/vnd.docker.image.rootfs.diff.tar"
#define MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define OCI_REF_NAME "org.opencontainers.image.ref.name"

struct imgimport_opts {
	const char *repo;  /* validated repository name */
	const char *tag;   /* validated tag */
	const char *ref;   /* which image of a multi-image input (ref name or RepoTag); may be NULL */
	size_t manifest_max;
	const struct meta_actor *actor; /* recorded in tag history; may carry the immutable-tag guard */
};

/* One object of the import, in the order it was verified. */
struct imgimport_item {
	const char *role;  /* "layer", "config", "manifest", "index" (static strings) */
	struct digest digest;
	int64_t size;
	char *media_type;  /* NULL for layers and configs of OCI input */
	int existed;       /* the store had the bytes already */
};

struct imgimport_result {
	const char *format;         /* "oci-layout", "oci-archive" or "docker-archive" */
	int64_t archive_bytes;      /* bytes read from a tar input */
	struct imgimport_item *items;
	size_t nitems, alloc;
	struct digest top;          /* the tagged manifest */
	int64_t top_size;
	char *top_media_type;
	char *selected;             /* the ref name or RepoTag chosen, NULL when there was one image */
	int layers_unchecked;       /* docker save: compressed layers whose diff_id could not be checked */
	int fallback;               /* index.json named content the archive lacks; manifest.json was used */
};

/*
 * Imports the image at path ("-": a tar on standard input) into o->repo
 * and points o->tag at it. Returns 0 and fills *res, or an E_* code with a
 * one-line explanation appended to detail: E_BAD_REQUEST (malformed or
 * hostile input, nothing to choose, ambiguous choice), E_DIGEST_INVALID,
 * E_SIZE_INVALID, E_BLOB_UNKNOWN (a referenced blob is not in the input),
 * E_MANIFEST_INVALID, E_SCHEMA1, E_MANIFEST_TOO_BIG, E_TAG_IMMUTABLE,
 * E_NAME_UNKNOWN (no such path), E_IO, E_NO_SPACE, E_BUSY.
 * Release res in every case.
 */
int imgimport(const struct blobstore *bs, const char *path, const struct imgimport_opts *o,
	      struct imgimport_result *res, struct buf *detail);
void imgimport_result_release(struct imgimport_result *res);

#endif
