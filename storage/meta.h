/*
 * meta: all metadata in SQLite (WAL): repositories, per-repository blob
 * links, manifests and what they reference, tags, tag history, uploads,
 * personal access tokens and the audit log. This is the only module that
 * contains SQL.
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

/* ---- upload housekeeping ---- */
/* Marks upload id as active now; E_BLOB_UPLOAD_UNKNOWN when it is not an upload. */
int meta_upload_touch(const char *id);
/*
 * Ids of uploads not created or touched since older_than_ms (updated
 * strictly before it), least recently active first. The callback must not
 * write: collect the ids, then meta_upload_delete() each.
 */
int meta_uploads_stale(int64_t older_than_ms, meta_str_cb cb, void *ctx);

/* ---- personal access tokens ---- */
/*
 * A PAT is stored by the SHA-256 of its secret, never the secret itself.
 * Times are milliseconds since the epoch. A token is active while it is
 * neither revoked nor expired; it is expired at now when expires_ms is not
 * 0 and now >= expires_ms. An expired token keeps its name until revoked.
 */
struct meta_pat {
	int64_t id;
	char *owner;
	char *name;
	char *scopes; /* space-separated, as given; "" = all of the owner's rights */
	int64_t created_ms;
	int64_t expires_ms;   /* 0 = never */
	int64_t last_used_ms; /* 0 = never */
	int64_t revoked_ms;   /* 0 = not revoked */
};
/* Frees the strings of a struct filled by meta_pat_lookup(); safe on an emptied one. */
void meta_pat_release(struct meta_pat *p);

/*
 * Records a token of owner called name (both non-empty), scopes NULL or
 * "" for all rights, expires_ms 0 for never; its id goes to *id (may be
 * NULL). E_EXISTS when owner already has an unrevoked (active or expired)
 * token called name, or hash is already some token's.
 */
int meta_pat_create(const char *owner, const char *name, const char *scopes, int64_t expires_ms,
		    const unsigned char hash[32], int64_t *id);
/*
 * Finds the token whose secret hashes to hash and fills *out (release it).
 * E_UNAUTHORIZED when there is none or it is revoked or expired at now_ms;
 * *out is then empty.
 */
int meta_pat_lookup(const unsigned char hash[32], int64_t now_ms, struct meta_pat *out);
/*
 * 0 while token id is active at now_ms, else E_UNAUTHORIZED (also when
 * there is no such token). One primary-key read, no transaction: cheap
 * enough for every request made with a token issued from a PAT.
 */
int meta_pat_check(int64_t id, int64_t now_ms);
/*
 * The scopes of token id into *scopes (caller frees; "" = all of the
 * owner's rights) while it is active now, else E_UNAUTHORIZED and NULL.
 */
int meta_pat_get_scopes(int64_t id, char **scopes);
/*
 * Records use of token id at now_ms (last_used_ms never moves backwards);
 * E_UNAUTHORIZED when there is no such token. A write: callers rate-limit
 * it (at most once a minute per token).
 */
int meta_pat_touch(int64_t id, int64_t now_ms);
/* p and its strings are valid only during the callback; never release it. */
typedef int (*meta_pat_cb)(void *ctx, const struct meta_pat *p);
/*
 * Tokens of owner (NULL = everyone's), newest first; expired ones always,
 * revoked ones only when all != 0.
 */
int meta_pat_list(const char *owner, int all, meta_pat_cb cb, void *ctx);
/*
 * Revokes owner's unrevoked (active or expired) token name at now_ms
 * (> 0); the name is free again afterwards. E_NAME_UNKNOWN when there is
 * no such token.
 */
int meta_pat_revoke(const char *owner, const char *name, int64_t now_ms);

/* ---- audit log ---- */
/*
 * One event; the strings are valid only during the callback. actor, repo,
 * detail and client may be NULL. detail is JSON object text.
 */
struct meta_audit {
	int64_t id; /* increasing, never reused */
	int64_t time_ms;
	const char *actor, *action, *repo, *detail, *client;
};
/*
 * Appends an event stamped with the current time. action ("push",
 * "delete", "tag", "rollback", "login", "login_failed", "token_create",
 * "token_revoke", "gc", ...) must be non-empty; every other argument may
 * be NULL (actor NULL for anonymous). detail_json, when not NULL, must be
 * a JSON object: anything else is a caller bug, refused with E_INTERNAL.
 */
int meta_audit_add(const char *actor, const char *action, const char *repo, const char *detail_json,
		   const char *client);
typedef int (*meta_audit_cb)(void *ctx, const struct meta_audit *ev);
/*
 * Events at or after since_ms, only repo's when repo is not NULL, oldest
 * first (by time, then id), at most limit (limit < 0: all).
 */
int meta_audit_list(int64_t since_ms, const char *repo, long limit, meta_audit_cb cb, void *ctx);

#endif
