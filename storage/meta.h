/*
 * meta: all metadata in SQLite (WAL): repositories, per-repository blob
 * links, manifests and what they reference, tags, tag history, uploads.
 * This is the only module that contains SQL.
 *
 * Thread model: meta_open() once at start-up; after that every thread gets
 * its own connection, opened lazily on first use and kept for the thread's
 * life (no global lock on the read path); it is closed when the thread
 * exits. meta_close() closes every connection still open and must run
 * after all other threads stopped. Before meta_open() and after
 * meta_close(), queries and updates return E_INTERNAL.
 * Writers use BEGIN IMMEDIATE with a busy timeout; E_BUSY means the
 * database stayed locked too long.
 *
 * Strings passed in are borrowed for the call. Structs filled by meta_*
 * own their strings until the matching *_release(). Strings handed to
 * callbacks are valid only during the callback. A callback returning
 * non-zero stops the iteration, and that value is returned. A callback may
 * call meta_* read functions, but no function that writes.
 *
 * Every function returns 0 or a negative E_* code; E_IO covers SQLite
 * errors (logged), E_NO_SPACE a full disk.
 */
#ifndef BERTH_META_H
#define BERTH_META_H

#include <stdint.h>

#include "buf.h"
#include "digest.h"
#include "manifest.h"
#include "names.h"

/* Opens (creating if needed) the database file and runs migrations. */
int meta_open(const char *path);
void meta_close(void);
/* Current schema version (after meta_open). */
int meta_schema_version(void);

/* Who moved a tag, and how; every field may be NULL. */
struct meta_actor {
	const char *name;   /* user or token name; NULL for anonymous */
	const char *how;    /* "push", "retag", "rollback", "delete" */
	const char *client; /* client address */
};

/* ---- blobs ---- */
/* 0 when d is linked to repo (size in *size, may be NULL), else E_BLOB_UNKNOWN. */
int meta_blob_linked(const char *repo, const struct digest *d, int64_t *size);
/* 0 when d is known in any repository, else E_BLOB_UNKNOWN. */
int meta_blob_known(const struct digest *d, int64_t *size);
/* Records the blob and links it to repo (creating the repository); idempotent. */
int meta_blob_link(const char *repo, const struct digest *d, int64_t size);
/* Removes the link; E_BLOB_UNKNOWN when there was none. */
int meta_blob_unlink(const char *repo, const struct digest *d);
typedef int (*meta_str_cb)(void *ctx, const char *s);
/* Calls cb for each repository that links d, in name order. */
int meta_blob_repos(const struct digest *d, meta_str_cb cb, void *ctx);

/* ---- uploads ---- */
/* E_EXISTS when id is already an upload. */
int meta_upload_create(const char *id, const char *repo);
/* E_BLOB_UPLOAD_UNKNOWN when id is not an upload of repo. */
int meta_upload_check(const char *id, const char *repo);
int meta_upload_delete(const char *id);
/* One transaction: link the finished blob to repo and forget the upload. */
int meta_upload_commit(const char *id, const char *repo, const struct digest *d, int64_t size);

/* ---- manifests ---- */
struct meta_manifest {
	struct digest digest;
	int64_t size;
	char *media_type;
	char *artifact_type; /* may be NULL */
	char *annotations;   /* JSON object text, may be NULL */
};
void meta_manifest_release(struct meta_manifest *m);

/*
 * One transaction: checks that every non-external config/layer of mi is a
 * blob linked to repo and every child is a manifest of repo (else
 * E_MANIFEST_BLOB_UNKNOWN, naming the digest in detail when not NULL);
 * records the manifest (digest, size, mi's media and artifact type,
 * annotations, subject) and its references, links its bytes as a blob of
 * repo; when tag is not NULL points the tag at it and, if the tag moved,
 * appends a tag history row (old digest or NULL, new digest, time, actor).
 */
int meta_manifest_put(const char *repo, const struct digest *d, int64_t size,
		      const struct manifest_info *mi, const char *tag,
		      const struct meta_actor *actor, struct buf *detail);
/* Resolves a tag or digest in repo; E_MANIFEST_UNKNOWN when absent (*out then empty). */
int meta_manifest_get(const char *repo, const struct reference *ref, struct meta_manifest *out);
/*
 * Removes manifest d from repo together with every tag pointing at it
 * (each recorded in tag history with how="delete"); E_MANIFEST_UNKNOWN.
 */
int meta_manifest_delete(const char *repo, const struct digest *d, const struct meta_actor *actor);
/* Removes only the tag (history row how="delete"); E_MANIFEST_UNKNOWN when absent. */
int meta_tag_delete(const char *repo, const char *tag, const struct meta_actor *actor);

/* ---- listings ---- */
/*
 * Tags of repo in lexical (byte) order strictly after last (NULL = from the
 * start), at most n (n < 0: all). *more is set when further tags exist.
 * E_NAME_UNKNOWN when the repository does not exist.
 */
int meta_tags_list(const char *repo, const char *last, long n, meta_str_cb cb, void *ctx, int *more);
/*
 * Repository names in lexical order after last; filter (may be NULL)
 * returns non-zero to include a name; at most n included names are passed
 * to cb. *more is set when further included names exist.
 */
int meta_catalog(const char *last, long n, meta_str_cb filter, void *fctx,
		 meta_str_cb cb, void *ctx, int *more);
/* 0 when repo exists (has any blob, manifest or tag), else E_NAME_UNKNOWN. */
int meta_repo_exists(const char *repo);

typedef int (*meta_manifest_cb)(void *ctx, const struct meta_manifest *m);
/* Manifests of repo whose subject is d, filtered by artifact type when not NULL, in digest order. */
int meta_referrers(const char *repo, const struct digest *d, const char *artifact_type,
		   meta_manifest_cb cb, void *ctx);

/* ---- tag history ---- */
struct meta_tag_event {
	int64_t id;
	int64_t time_ms;
	const char *old_digest; /* NULL when the tag was created */
	const char *new_digest; /* NULL when the tag was deleted */
	const char *actor;
	const char *how;
	const char *client;
};
typedef int (*meta_event_cb)(void *ctx, const struct meta_tag_event *ev);
/* History of repo:tag, newest first. */
int meta_tag_history(const char *repo, const char *tag, meta_event_cb cb, void *ctx);

#endif
