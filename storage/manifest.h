/*
 * manifest: validation of pushed manifests and extraction of what they
 * reference (config, layers, child manifests, subject).
 *
 * Knows the OCI image manifest and index, Docker schema 2 manifest and
 * manifest list, and OCI artifacts. Refuses Docker schema 1. Reads a
 * caller-owned byte buffer; fills a struct manifest_info that owns its
 * strings and array until manifest_info_release(). Thread-safe (no globals).
 */
#ifndef BERTH_MANIFEST_H
#define BERTH_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "digest.h"

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define MT_OCI_EMPTY "application/vnd.oci.empty.v1+json"

/* Upper bound on descriptors in one manifest; more is MANIFEST_INVALID. */
#define MANIFEST_MAX_REFS 10000

enum ref_kind { REF_CONFIG = 0, REF_LAYER = 1, REF_CHILD = 2, REF_SUBJECT = 3 };

struct manifest_ref {
	enum ref_kind kind;
	struct digest digest;
	int64_t size;
	/* Non-zero when the blob need not exist here (foreign/non-distributable layers with urls). */
	int external;
};

struct manifest_info {
	char *media_type;    /* never NULL after success */
	char *artifact_type; /* artifactType, else config.mediaType for image manifests; may be NULL */
	int is_index;        /* index or manifest list */
	int has_subject;
	struct digest subject;
	char *annotations;   /* compact JSON object text, or NULL when absent */
	struct manifest_ref *refs;
	size_t nrefs;
};

/*
 * Validates body (len bytes) pushed with the given Content-Type header
 * (may be NULL). On success fills *out and returns 0. On failure returns
 * E_MANIFEST_INVALID, E_SCHEMA1 or E_MEDIATYPE_MISMATCH and, when detail is
 * not NULL, appends a short lowercase explanation to it; *out is then left
 * released (safe to release again).
 */
int manifest_parse(const char *body, size_t len, const char *content_type,
		   struct manifest_info *out, struct buf *detail);
void manifest_info_release(struct manifest_info *mi);
/* Non-zero for the four manifest media types berth stores. */
int manifest_media_type_known(const char *mt);

#endif
