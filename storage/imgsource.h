/*
 * imgsource: the input of an image import (a tar archive, streamed once, or
 * an OCI image layout directory) seen as a few small metadata files plus
 * blobs that are verified on their way into the blob store.
 *
 * A tar archive (a file, or standard input when the path is "-") is read
 * front to back exactly once, so it may come from a pipe: every regular
 * file is hashed while it streams into the store as a one-shot upload of
 * the import's repository (never held whole in memory, nor written to a
 * temporary file by the import), finished under the digest computed, and
 * remembered by name with that digest; a file under
 * blobs/<alg>/<hex> must hash to the digest its name says. Symbolic links
 * are never followed: one standing where a metadata file or a blob belongs
 * fails the import, any other is only remembered by name (docker-archive
 * writers link legacy <id>/layer.tar paths to the real files), so that a
 * reference to it can be refused with a clear message. The metadata
 * files (oci-layout, index.json, manifest.json) are kept in memory, up to
 * IMGSRC_META_MAX bytes each. Finishing an upload links its blob to the
 * repository; an import refused before it commits anything takes those
 * links back (imgsrc_unlink_fresh()), and the blobs, referenced by
 * nothing, are left to garbage collection. A directory is read on demand: a blob
 * is copied into the store the same way, and verified, when the import
 * asks for it, unless the store has it recorded already (an object
 * without a metadata record is never trusted); symbolic links are not
 * followed. Works on every blob backend (a local directory, an object
 * store).
 *
 * struct imgsrc owns its lists and buffers until imgsrc_release(); the
 * store and the repository name are borrowed. Used by one thread.
 */
#ifndef BERTH_IMGSOURCE_H
#define BERTH_IMGSOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "digest.h"
#include "store.h"

/* Largest metadata file accepted (oci-layout, index.json, manifest.json). */
#define IMGSRC_META_MAX (4 << 20)
/* Most entries read from one archive. */
#define IMGSRC_MAX_ENTRIES 100000

enum imgsrc_kind { IMGSRC_TAR = 0, IMGSRC_DIR = 1 };
enum imgsrc_meta { IMGSRC_OCI_LAYOUT = 0, IMGSRC_INDEX = 1, IMGSRC_MANIFEST = 2, IMGSRC_NMETA = 3 };

/* A regular file of a tar input, stored under its digest. */
struct imgsrc_file {
	char *name;
	struct digest digest;
	int64_t size;
	unsigned char magic[4]; /* its first bytes (fewer when it is shorter), to tell compressed data */
	size_t nmagic;
	int existed;            /* the store had it recorded already */
};

struct imgsrc {
	enum imgsrc_kind kind;
	struct store *st;
	const char *repo;            /* blobs are stored linked to it */
	int dirfd;                   /* IMGSRC_DIR: the layout directory */
	struct imgsrc_file *files;   /* IMGSRC_TAR: sorted by name */
	size_t nfiles, alloc;
	char **links;                /* IMGSRC_TAR: names of symbolic links, sorted */
	size_t nlinks, alloc_links;
	struct buf meta[IMGSRC_NMETA];
	int has_meta[IMGSRC_NMETA];
	int64_t bytes;               /* archive bytes read */
	char *nested;                /* a "<dir>/index.json" or "<dir>/manifest.json" seen, for a hint */
	struct digest *fresh;        /* blobs this input linked to repo that were not linked before */
	size_t nfresh, alloc_fresh;
};

/*
 * Opens path: a directory is an OCI layout, anything else (or "-") a tar
 * archive, which is read completely here, its files stored into st linked
 * to repo. Returns 0, or E_BAD_REQUEST (a
 * malformed or hostile archive, a compressed one), E_DIGEST_INVALID (a
 * blob whose content does not match its name), E_NAME_UNKNOWN (path does
 * not exist), E_IO or E_NO_SPACE, with an explanation appended to detail.
 * Release s in every case.
 */
int imgsrc_open(struct imgsrc *s, struct store *st, const char *repo, const char *path, struct buf *detail);
void imgsrc_release(struct imgsrc *s);
/* The file called name in a tar input, or NULL. */
const struct imgsrc_file *imgsrc_find(const struct imgsrc *s, const char *name);
/* Non-zero when name is a symbolic link in a tar input. */
int imgsrc_is_link(const struct imgsrc *s, const char *name);
/*
 * Makes sure blob d of size bytes (size < 0: any size) is in the store,
 * taken from the input and verified. *existed (may be NULL) tells
 * whether the store had it already. Errors, explained in detail:
 * E_BLOB_UNKNOWN when the input does not hold it, E_SIZE_INVALID when its
 * size differs, E_DIGEST_INVALID when its content does not hash to d,
 * E_IO, E_NO_SPACE, E_STORE_UNAVAILABLE, E_UNSUPPORTED (an object store
 * takes SHA-256 blobs only).
 */
int imgsrc_blob(struct imgsrc *s, const struct digest *d, int64_t size, int *existed, struct buf *detail);
/*
 * Removes the links to the repository that storing the input's blobs made
 * (for an import refused before anything was committed: no repository
 * appears). Failures are ignored: such a link goes with garbage collection.
 */
void imgsrc_unlink_fresh(struct imgsrc *s);
/* Appends s quoted, with bytes that are not printable ASCII shown as \xNN. */
void imgsrc_quote(struct buf *b, const char *s);

#endif
