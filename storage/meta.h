/*
 * meta: all metadata, in SQLite (WAL; the embedded default) or PostgreSQL
 * (several nodes sharing one database): repositories, per-repository blob
 * links, manifests and what they reference, tags, tag history, uploads,
 * personal access tokens and the audit log. This is the only module that
 * contains SQL: one set of statements for both engines, the differences
 * named in meta_schema.c and meta_schema_pg.c, the engines behind
 * storage/db.h.
 *
 * Thread model: meta_open() at start-up gives a struct meta (the store owns
 * it); after that every thread gets its own connection to it, opened
 * lazily on first use and kept for the thread's life (no global lock on
 * the read path); it is closed when the thread exits. A thread using two
 * metas has a connection to each. meta_close() closes every connection
 * still open and must run after all other threads stopped using it.
 * Every write runs on one writer thread with its own connection: callers
 * queue their transaction and wait; queued transactions run in batches
 * (one BEGIN IMMEDIATE ... COMMIT and one WAL fsync, a savepoint each, so
 * each caller gets its own result) and a write returns only once its
 * commit is durable. A write waits for the ones queued before it, never
 * in SQLite's busy handler; the busy timeout only applies against other
 * processes (the CLI): E_BUSY means the database stayed locked too long.
 * On PostgreSQL the write transactions of all nodes run one at a time (a
 * row lock taken first, meta_schema_pg.c), a commit is durable when it
 * returns, and a transaction that loses a deadlock is run again.
 *
 * Strings passed in are borrowed for the call. Structs filled by meta_*
 * own their strings until the matching *_release(). Strings handed to
 * callbacks are valid only during the callback. A callback returning
 * non-zero stops the iteration, and that value is returned. A callback may
 * call meta_* read functions, but no function that writes.
 *
 * Every function returns 0 or a negative E_* code; E_IO covers database
 * errors (logged), E_NO_SPACE a full disk, E_STORE_UNAVAILABLE a
 * PostgreSQL server that cannot be reached (the next call reconnects).
 */
#ifndef BERTH_META_H
#define BERTH_META_H

#include <stdint.h>

#include "buf.h"
#include "digest.h"
#include "manifest.h"
#include "names.h"

/*
 * An open database (struct meta, meta_internal.h): every function below
 * takes one first. Several may be open at once in one process, each with
 * its own connections and writer thread.
 */
struct meta;

/* Opens (creating if needed) the SQLite database file and runs migrations; *out is NULL on failure. */
int meta_open(const char *path, struct meta **out);
/*
 * Opens the PostgreSQL database conninfo names (a libpq connection string
 * or URL; the password comes from PGPASSWORD or the passfile, and conninfo
 * is never logged) and runs migrations, creating the schema in an empty
 * database. Refused (E_IO, logged) when the database holds tables that are
 * not berth's or a schema newer than this berth knows; E_STORE_UNAVAILABLE
 * when the server cannot be reached.
 */
int meta_open_url(const char *conninfo, struct meta **out);
/* meta_open_url() with a password given apart (NULL: libpq's own sources), as from a password file. */
int meta_open_pg(const char *conninfo, const char *password, struct meta **out);
/*
 * Stops m's writer, closes every connection of every thread to it and
 * frees it (NULL is fine). No other thread may be using m any more.
 */
void meta_close(struct meta *m);
/* m's schema version (0 for NULL). */
int meta_schema_version(struct meta *m);

struct meta_tag_change;

/*
 * Who moves tags, and how, for the writes that move or remove them; every
 * field may be NULL (so may the whole struct: anonymous, unguarded).
 */
struct meta_audit;
struct meta_actor {
	const char *name;   /* user or token name; NULL for anonymous */
	/*
	 * "push", "retag", "rollback", "delete". A manifest put with "push"
	 * whose manifest was already in the repository is recorded as "retag":
	 * the tag was re-pointed at existing content, not given new content.
	 */
	const char *how;
	const char *client; /* client address */
	/*
	 * Immutable-tag guard. Asked inside the write's transaction about every
	 * existing tag the write would move to another digest or remove (never
	 * about a tag being created): a result >= 0 (the index of the rule that
	 * makes the tag immutable) refuses the whole write with E_TAG_IMMUTABLE
	 * and nothing changes. It must not call meta_*; guard_ctx is its own
	 * (where it may note which rule refused, for the error detail).
	 */
	int (*guard)(void *guard_ctx, const char *tag);
	void *guard_ctx;
	/* When not NULL, told what the write did to tags (zeroed first). */
	struct meta_tag_change *change;
	/*
	 * When not NULL, asked once inside the write's transaction after
	 * everything else succeeded (change already filled) to describe the
	 * audit event of the write in *ev (its strings stay audit_ctx's and
	 * must live until the call returns); the event is inserted in the
	 * same transaction, so the write and its audit row become durable
	 * together, with one commit. Returning non-zero records no event
	 * (the write goes on). It must not call meta_*.
	 */
	int (*audit)(void *audit_ctx, struct meta_audit *ev);
	void *audit_ctx;
};

/* What a write did to tags. */
struct meta_tag_change {
	int count;                        /* tags moved or removed (history rows written) */
	char how[16];                     /* as recorded in history */
	char old_digest[DIGEST_STR_MAX];  /* of the last tag changed; "" when created */
	char new_digest[DIGEST_STR_MAX];  /* "" when removed */
};

/* ---- blobs ---- */
/* 0 when d is linked to repo (size in *size, may be NULL), else E_BLOB_UNKNOWN. */
int meta_blob_linked(struct meta *m, const char *repo, const struct digest *d, int64_t *size);
/* 0 when d is known in any repository, else E_BLOB_UNKNOWN. */
int meta_blob_known(struct meta *m, const struct digest *d, int64_t *size);
/* Records the blob and links it to repo (creating the repository); idempotent. */
int meta_blob_link(struct meta *m, const char *repo, const struct digest *d, int64_t size);
/* Removes the link; E_BLOB_UNKNOWN when there was none. */
int meta_blob_unlink(struct meta *m, const char *repo, const struct digest *d);
typedef int (*meta_str_cb)(void *ctx, const char *s);
/* Calls cb for each repository that links d, in name order. */
int meta_blob_repos(struct meta *m, const struct digest *d, meta_str_cb cb, void *ctx);

/* ---- uploads ---- */
/* E_EXISTS when id is already an upload. */
int meta_upload_create(struct meta *m, const char *id, const char *repo);
/* E_BLOB_UPLOAD_UNKNOWN when id is not an upload of repo. */
int meta_upload_check(struct meta *m, const char *id, const char *repo);
int meta_upload_delete(struct meta *m, const char *id);
/* One transaction: link the finished blob to repo and forget the upload. */
int meta_upload_commit(struct meta *m, const char *id, const char *repo, const struct digest *d, int64_t size);

/* ---- manifests ---- */
struct meta_manifest {
	struct digest digest;
	int64_t size;
	char *media_type;
	char *artifact_type; /* may be NULL */
	char *annotations;   /* JSON object text, may be NULL */
	/*
	 * The manifest's bytes when the database holds them (every manifest
	 * pushed since schema 3), else NULL: they are then in the blob store.
	 */
	unsigned char *content;
	size_t content_len;
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
int meta_manifest_put(struct meta *m, const char *repo, const struct digest *d, int64_t size,
		      const struct manifest_info *mi, const char *tag,
		      const struct meta_actor *actor, struct buf *detail);
/*
 * The same, also storing the manifest's size bytes of content in the
 * database, in the same transaction: the write is durable once the commit
 * is, with no file, no fsync of its own and no rename (content NULL: the
 * caller has put the bytes in the blob store first).
 */
int meta_manifest_put_content(struct meta *m, const char *repo, const struct digest *d, int64_t size, const void *content,
			      const struct manifest_info *mi, const char *tag,
			      const struct meta_actor *actor, struct buf *detail);
/*
 * The bytes of blob d when the database holds them (a manifest's, stored
 * by meta_manifest_put_content): appended to out with *found = 1; *found =
 * 0 when they are in the blob store or d is unknown. Whether d is linked
 * to a repository is the caller's check.
 */
int meta_blob_content(struct meta *m, const struct digest *d, struct buf *out, int *found);
/* Every blob content the database holds, in digest order (for fsck); a non-zero cb result stops and is returned. */
int meta_content_list(struct meta *m, int (*cb)(void *ctx, const char *digest, const void *bytes, size_t len), void *ctx);
/* Resolves a tag or digest in repo; E_MANIFEST_UNKNOWN when absent (*out then empty). */
int meta_manifest_get(struct meta *m, const char *repo, const struct reference *ref, struct meta_manifest *out);
/*
 * Removes manifest d from repo together with every tag pointing at it
 * (each recorded in tag history with how="delete"); E_MANIFEST_UNKNOWN.
 */
int meta_manifest_delete(struct meta *m, const char *repo, const struct digest *d, const struct meta_actor *actor);
/* Removes only the tag (history row how="delete"); E_MANIFEST_UNKNOWN when absent. */
int meta_tag_delete(struct meta *m, const char *repo, const char *tag, const struct meta_actor *actor);

/* ---- listings ---- */
/*
 * Tags of repo in lexical (byte) order strictly after last (NULL = from the
 * start), at most n (n < 0: all). *more is set when further tags exist.
 * E_NAME_UNKNOWN when the repository does not exist.
 */
int meta_tags_list(struct meta *m, const char *repo, const char *last, long n, meta_str_cb cb, void *ctx, int *more);
/*
 * A version of what the calling thread's connection can read: v[0] changes
 * when any other connection (of this or another process, on PostgreSQL of
 * any node) commits, v[1] when this connection changes anything. Equal versions mean nothing
 * changed in between (and different ones that something may have), so a
 * thread may keep an answer it built from reads for as long as the version
 * stays the same.
 */
int meta_read_version(struct meta *m, uint64_t v[2]);
/*
 * Repository names in lexical order after last; filter (may be NULL)
 * returns non-zero to include a name; at most n included names are passed
 * to cb. *more is set when further included names exist.
 */
int meta_catalog(struct meta *m, const char *last, long n, meta_str_cb filter, void *fctx,
		 meta_str_cb cb, void *ctx, int *more);
/* 0 when repo exists (has any blob, manifest or tag), else E_NAME_UNKNOWN. */
int meta_repo_exists(struct meta *m, const char *repo);

typedef int (*meta_manifest_cb)(void *ctx, const struct meta_manifest *m);
/* Manifests of repo whose subject is d, filtered by artifact type when not NULL, in digest order. */
int meta_referrers(struct meta *m, const char *repo, const struct digest *d, const char *artifact_type,
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
int meta_tag_history(struct meta *m, const char *repo, const char *tag, meta_event_cb cb, void *ctx);

/* One tag of a repository; the strings are valid only during the callback. */
struct meta_tag_info {
	const char *name;
	const char *digest;
	int64_t size;       /* of the manifest */
	int64_t updated_ms; /* last move */
};
typedef int (*meta_tag_info_cb)(void *ctx, const struct meta_tag_info *t);
/* Tags of repo in lexical order with what they point at; E_NAME_UNKNOWN when repo does not exist. */
int meta_tags_info(struct meta *m, const char *repo, meta_tag_info_cb cb, void *ctx);

/* One reference of a manifest; digest is valid only during the callback. */
struct meta_ref_info {
	enum ref_kind kind;
	const char *digest;
	int64_t size; /* of the blob or child manifest; -1 when not stored (external layers) */
};
typedef int (*meta_ref_cb)(void *ctx, const struct meta_ref_info *ri);
/*
 * What manifest d of repo references (config, layers, children, subject),
 * ordered by kind, then digest (not by position in the manifest).
 * E_MANIFEST_UNKNOWN when d is not a manifest of repo.
 */
int meta_manifest_refs(struct meta *m, const char *repo, const struct digest *d, meta_ref_cb cb, void *ctx);

/* Outcome of a rollback. */
struct meta_rollback {
	char from[DIGEST_STR_MAX]; /* where the tag pointed; "" when it does not exist now */
	char to[DIGEST_STR_MAX];   /* where it points (or would) afterwards */
	int64_t from_size;         /* manifest sizes; 0 for "" */
	int64_t to_size;
	int moved;                 /* 0 when the tag already pointed at to: nothing written */
};
/*
 * Moves repo:tag back, in one transaction. The target is to (a digest
 * string) when not NULL: any manifest of repo. Otherwise it is the digest
 * the tag pointed at before its steps-th most recent move (steps >= 1),
 * counting only moves away from an existing digest, so moves after a
 * delete still lead back past it. The move is recorded in tag history with
 * actor (how "rollback" when actor->how is NULL) like any other, so a
 * rollback can itself be rolled back, and put to actor->guard first.
 * With dry_run, *out tells what would happen and nothing is written.
 * Errors: E_NAME_UNKNOWN (no such repository), E_MANIFEST_UNKNOWN (no
 * move that far back, or the target is no longer a manifest of repo),
 * E_DIGEST_INVALID (to is not a digest), E_TAG_IMMUTABLE; detail (may be
 * NULL) gets a short explanation of the first three.
 */
int meta_tag_rollback(struct meta *m, const char *repo, const char *tag, long steps, const char *to, int dry_run,
		      const struct meta_actor *actor, struct meta_rollback *out, struct buf *detail);

/* ---- upload housekeeping ---- */
/* Marks upload id as active now; E_BLOB_UPLOAD_UNKNOWN when it is not an upload. */
int meta_upload_touch(struct meta *m, const char *id);
/*
 * Ids of uploads not created or touched since older_than_ms (updated
 * strictly before it), least recently active first. The callback must not
 * write: collect the ids, then meta_upload_delete() each.
 */
int meta_uploads_stale(struct meta *m, int64_t older_than_ms, meta_str_cb cb, void *ctx);

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
int meta_pat_create(struct meta *m, const char *owner, const char *name, const char *scopes, int64_t expires_ms,
		    const unsigned char hash[32], int64_t *id);
/*
 * Finds the token whose secret hashes to hash and fills *out (release it).
 * E_UNAUTHORIZED when there is none or it is revoked or expired at now_ms;
 * *out is then empty.
 */
int meta_pat_lookup(struct meta *m, const unsigned char hash[32], int64_t now_ms, struct meta_pat *out);
/*
 * 0 while token id is active at now_ms, else E_UNAUTHORIZED (also when
 * there is no such token). One primary-key read, no transaction: cheap
 * enough for every request made with a token issued from a PAT.
 */
int meta_pat_check(struct meta *m, int64_t id, int64_t now_ms);
/*
 * The scopes of token id into *scopes (caller frees; "" = all of the
 * owner's rights) while it is active now, else E_UNAUTHORIZED and NULL.
 */
int meta_pat_get_scopes(struct meta *m, int64_t id, char **scopes);
/*
 * Records use of token id at now_ms (last_used_ms never moves backwards);
 * E_UNAUTHORIZED when there is no such token. A write: callers rate-limit
 * it (at most once a minute per token).
 */
int meta_pat_touch(struct meta *m, int64_t id, int64_t now_ms);
/* p and its strings are valid only during the callback; never release it. */
typedef int (*meta_pat_cb)(void *ctx, const struct meta_pat *p);
/*
 * Tokens of owner (NULL = everyone's), newest first; expired ones always,
 * revoked ones only when all != 0.
 */
int meta_pat_list(struct meta *m, const char *owner, int all, meta_pat_cb cb, void *ctx);
/*
 * Revokes owner's unrevoked (active or expired) token name at now_ms
 * (> 0); the name is free again afterwards. E_NAME_UNKNOWN when there is
 * no such token.
 */
int meta_pat_revoke(struct meta *m, const char *owner, const char *name, int64_t now_ms);
/*
 * The name of token id, revoked or not, into *name (caller frees);
 * E_NAME_UNKNOWN and NULL when there is no such token. For naming who
 * acted in tag history and the audit log.
 */
int meta_pat_name(struct meta *m, int64_t id, char **name);

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
int meta_audit_add(struct meta *m, const char *actor, const char *action, const char *repo, const char *detail_json,
		   const char *client);
typedef int (*meta_audit_cb)(void *ctx, const struct meta_audit *ev);
/*
 * Events at or after since_ms, only repo's when repo is not NULL, oldest
 * first (by time, then id), at most limit (limit < 0: all).
 */
int meta_audit_list(struct meta *m, int64_t since_ms, const char *repo, long limit, meta_audit_cb cb, void *ctx);

/* ---- statistics (for /metrics) ---- */
struct meta_stats {
	int64_t blobs;       /* distinct blobs known */
	int64_t blob_bytes;  /* their total size */
	int64_t repos;       /* repositories with content */
	int64_t manifests;
	int64_t tags;
	int64_t uploads;     /* upload sessions open */
	int64_t gc_runs;     /* garbage collections recorded in the audit log */
	int64_t gc_bytes_freed;
};
int meta_stats(struct meta *m, struct meta_stats *out);

/* ---- the cluster shape: blob locations, upload state (meta_cluster.c) ---- */
/*
 * A blob's location is where its backend keeps it when that is not
 * derived from its digest (an object store's key); recorded with the blob
 * when it is first known and kept after: a later upload of the same
 * content leaves it as it is (the caller removes its own copy). On a
 * local directory it is always empty.
 */
/* meta_blob_linked() that also puts the recorded location in loc (reset; empty: derived). */
int meta_blob_linked_at(struct meta *m, const char *repo, const struct digest *d, int64_t *size, struct buf *loc);
/* The recorded location of blob d, linked or not; *found 0 when there is no blob record. */
int meta_blob_location(struct meta *m, const struct digest *d, struct buf *loc, int *found);
/*
 * meta_blob_link() recording loc (NULL or "": derived) when d is new;
 * kept (reset) gets the location recorded, which is an earlier one when d
 * was known.
 */
int meta_blob_link_at(struct meta *m, const char *repo, const struct digest *d, int64_t size, const char *loc, struct buf *kept);
/*
 * Upload sessions whose blob backend keeps a state (an opaque byte string
 * persisted with the session). Every change of state or lease bumps the
 * session's version; a write conditional on a version that changed fails
 * with E_UPLOAD_BUSY (another request, maybe of another node, has the
 * upload), on a session that is gone with E_BLOB_UPLOAD_UNKNOWN.
 */
/* meta_upload_create() with the backend's first state (len 0: none, exactly meta_upload_create()). */
int meta_upload_create_state(struct meta *m, const char *id, const char *repo, const void *state, size_t len);
/* Reads upload id of repo: state (reset), version, lease end (may be NULL). E_BLOB_UPLOAD_UNKNOWN. */
int meta_upload_get(struct meta *m, const char *id, const char *repo, struct buf *state, int64_t *version, int64_t *lease_ms);
/*
 * Takes upload id of repo for one request until until_ms, when no other
 * request holds it at now_ms: its state (reset) and the version the
 * request's conditional writes name. E_UPLOAD_BUSY, E_BLOB_UPLOAD_UNKNOWN.
 */
int meta_upload_lease(struct meta *m, const char *id, const char *repo, int64_t now_ms, int64_t until_ms, struct buf *state,
		      int64_t *version);
/* Replaces the state when the version is still *version (then the new one), marking the session active. */
int meta_upload_state_put(struct meta *m, const char *id, int64_t *version, const void *state, size_t len);
/* Moves the lease's end to until_ms when the version is still *version (then the new one). */
int meta_upload_lease_renew(struct meta *m, const char *id, int64_t *version, int64_t until_ms);
/* Gives the lease back when the version is still version (else E_UPLOAD_BUSY: nothing to give back). */
int meta_upload_lease_end(struct meta *m, const char *id, int64_t version);
/*
 * meta_upload_commit() when the version is still version, recording the
 * blob at loc as meta_blob_link_at() does (kept: what is recorded).
 */
int meta_upload_commit_at(struct meta *m, const char *id, const char *repo, const struct digest *d, int64_t size, int64_t version,
			  const char *loc, struct buf *kept);
/* 0 when the database answers a read now; else its E_* (E_STORE_UNAVAILABLE: the server is down). */
int meta_ping(struct meta *m);

/* ---- garbage collection (meta_gc.c) ---- */
/*
 * What garbage collection keeps, as moments in milliseconds since the
 * epoch: every digest a tag pointed at (tag history: old or new digest) at
 * or after history_ms; every untagged manifest pushed (created, or its
 * bytes linked again) at or after young_ms; every blob link made or
 * refreshed at or after grace_ms.
 */
struct meta_gc_cutoffs {
	int64_t history_ms, young_ms, grace_ms;
};
/* Every repository, empty ones too, by id. */
typedef int (*meta_gc_repo_cb)(void *ctx, int64_t repo_id, const char *name);
int meta_gc_repos(struct meta *m, meta_gc_repo_cb cb, void *ctx);
struct meta_gc_manifest {
	const char *digest;
	const char *subject; /* NULL when none */
	int64_t size;
	int root;            /* tagged, pointed at within the history window, or young */
};
typedef int (*meta_gc_manifest_cb)(void *ctx, const struct meta_gc_manifest *m);
/* The manifests of repo_id, each with its root flag by cut. */
int meta_gc_manifests(struct meta *m, int64_t repo_id, const struct meta_gc_cutoffs *cut, meta_gc_manifest_cb cb, void *ctx);
/* The config, layer and child references (enum ref_kind) of repo_id's manifests. */
typedef int (*meta_gc_ref_cb)(void *ctx, const char *manifest, int kind, const char *digest);
int meta_gc_refs(struct meta *m, int64_t repo_id, meta_gc_ref_cb cb, void *ctx);
/* The blob links of repo_id: digest, blob size, time of the link. */
typedef int (*meta_gc_link_cb)(void *ctx, const char *digest, int64_t size, int64_t linked_ms);
int meta_gc_links(struct meta *m, int64_t repo_id, meta_gc_link_cb cb, void *ctx);
/*
 * One transaction: deletes those of the n manifests of repo_id that are
 * dead now, in the order given (keepers before what they keep). Each is
 * re-checked first: it stays when it is a root by cut, when an existing
 * manifest of the repository lists it as a child, or when its subject is
 * an existing manifest of the repository. A deleted manifest loses its
 * references and, unless a remaining manifest uses its digest as a config
 * or layer, the link of its own bytes. done[i] gets META_GC_DONE_MANIFEST and
 * META_GC_DONE_LINK bits (0: left alone).
 */
#define META_GC_DONE_MANIFEST 1
#define META_GC_DONE_LINK 2
int meta_gc_manifests_delete(struct meta *m, int64_t repo_id, const char *const *digests, size_t n,
			     const struct meta_gc_cutoffs *cut, unsigned char *done);
/*
 * One transaction: deletes those of the n links of repo_id still dead
 * now: made before grace_ms, not a manifest of the repository, not a
 * config or layer of one. done[i] is 1 when deleted.
 */
int meta_gc_links_delete(struct meta *m, int64_t repo_id, const char *const *digests, size_t n, int64_t grace_ms,
			 unsigned char *done);
/* Blob records that no repository links. */
typedef int (*meta_gc_blob_cb)(void *ctx, const char *digest, int64_t size);
int meta_gc_unlinked_blobs(struct meta *m, meta_gc_blob_cb cb, void *ctx);
/* One transaction: deletes those of the n blob records that still have no link; done[i] is 1 when deleted. */
int meta_gc_blobs_delete(struct meta *m, const char *const *digests, size_t n, unsigned char *done);
/* *row: whether digest has a blob record; *links: how many repositories link it (may be NULL). */
int meta_gc_blob_state(struct meta *m, const char *digest, int *row, int64_t *links);
/* *known: whether id is an upload session (of any repository). */
int meta_gc_upload_known(struct meta *m, const char *id, int *known);
/* Forgets upload id when it was last active before older_than_ms; *deleted says whether it did. */
int meta_gc_upload_expire(struct meta *m, const char *id, int64_t older_than_ms, int *deleted);

/* ---- integrity checks (meta_gc.c) ---- */
/* Every blob record: digest, recorded size, number of links. */
typedef int (*meta_fsck_blob_cb)(void *ctx, const char *digest, int64_t size, int64_t links);
int meta_fsck_blobs(struct meta *m, meta_fsck_blob_cb cb, void *ctx);
/* Every manifest: repository, digest, media type, whether its own bytes are linked. */
typedef int (*meta_fsck_manifest_cb)(void *ctx, const char *repo, const char *digest, const char *media_type,
				     int linked);
int meta_fsck_manifests(struct meta *m, meta_fsck_manifest_cb cb, void *ctx);
/*
 * References whose target is missing: a config or layer not linked to the
 * repository (external layers look like that too: the caller decides), or
 * a child that is not a manifest of the repository. Subjects may point at
 * nothing and are not listed.
 */
typedef int (*meta_fsck_ref_cb)(void *ctx, const char *repo, const char *manifest, int kind, const char *digest);
int meta_fsck_dangling_refs(struct meta *m, meta_fsck_ref_cb cb, void *ctx);
/* Every upload session: id, last activity. */
typedef int (*meta_fsck_upload_cb)(void *ctx, const char *id, int64_t updated_ms);
int meta_fsck_uploads(struct meta *m, meta_fsck_upload_cb cb, void *ctx);
/*
 * SQLite's integrity_check and foreign_key_check: cb gets one line per
 * problem found (nothing when the database is sound). PostgreSQL checks
 * its constraints on every write: nothing to report there.
 */
int meta_fsck_database(struct meta *m, meta_str_cb cb, void *ctx);

/* ---- garbage collection and fsck on an object store (meta_gc_remote.c) ---- */
/* A blob record no repository links: location NULL for the digest's own key; in_db: its bytes are in the database. */
struct meta_gc_unlinked {
	const char *digest;
	int64_t size, created_ms;
	const char *location;
	int in_db;
};
typedef int (*meta_gc_unlinked_cb)(void *ctx, const struct meta_gc_unlinked *u);
int meta_gc_unlinked_at(struct meta *m, meta_gc_unlinked_cb cb, void *ctx);
/* Every blob record whose bytes are in the blob store: digest and location (NULL: the digest's own key). */
typedef int (*meta_gc_ref_row_cb)(void *ctx, const char *digest, const char *location);
int meta_gc_blob_refs(struct meta *m, meta_gc_ref_row_cb cb, void *ctx);
/* Every upload session with its backend state (len 0: none) and last activity. */
typedef int (*meta_gc_state_cb)(void *ctx, const char *id, const void *state, size_t len, int64_t updated_ms);
int meta_gc_upload_states(struct meta *m, meta_gc_state_cb cb, void *ctx);
/*
 * Forgets upload id when it was last active before older_than_ms and no
 * request holds its lease at now_ms; *deleted says whether it did, and
 * state (reset) gets the state it had, for the backend to cancel.
 */
int meta_gc_upload_expire_state(struct meta *m, const char *id, int64_t older_than_ms, int64_t now_ms, struct buf *state,
				int *deleted);
/* meta_fsck_blobs() with each record's location and whether its bytes are in the database. */
struct meta_fsck_blob_at {
	const char *digest;
	int64_t size, links;
	const char *location;
	int in_db;
};
typedef int (*meta_fsck_blob_at_cb)(void *ctx, const struct meta_fsck_blob_at *b);
int meta_fsck_blobs_at(struct meta *m, meta_fsck_blob_at_cb cb, void *ctx);
/*
 * One garbage collection at a time across every node and command line
 * sharing a PostgreSQL database: a session lock of the calling thread's
 * connection (held until meta_gc_unlock() or until the connection ends,
 * with the process, or with a connection the server dropped). E_BUSY
 * when another session holds it; E_UNSUPPORTED on SQLite (one machine:
 * the caller locks the data directory instead).
 */
int meta_gc_lock(struct meta *m);
void meta_gc_unlock(struct meta *m);

/* ---- copying one database into another (meta_migrate.c, for berth migrate) ---- */
/*
 * Each table's rows travel as a generic row of column values, repository
 * ids replaced by names (the destination has its own), every other id
 * kept (tag history, tokens and audit events are named by id). Upload
 * sessions are not copied. Tables in the order they are copied (each
 * refers only to earlier ones).
 */
enum meta_mig_table {
	META_MIG_REPOS,     /* name, created_ms */
	META_MIG_BLOBS,     /* digest, size, created_ms, location, in_db (bytes in blob_content; not inserted) */
	META_MIG_CONTENT,   /* digest, content */
	META_MIG_LINKS,     /* repo, digest, linked_ms */
	META_MIG_MANIFESTS, /* repo, digest, size, media_type, artifact_type, subject, annotations, created_ms */
	META_MIG_REFS,      /* repo, manifest, kind, digest */
	META_MIG_TAGS,      /* repo, name, digest, updated_ms */
	META_MIG_HISTORY,   /* id, repo, tag, old_digest, new_digest, time_ms, actor, how, client */
	META_MIG_PATS,      /* id, owner, name, secret_hash, scopes, created_ms, expires_ms, last_used_ms, revoked_ms */
	META_MIG_AUDIT,     /* id, time_ms, actor, action, repo, detail, client */
	META_MIG_TABLES
};
#define META_MIG_BLOB_DIGEST 0
#define META_MIG_BLOB_SIZE 1
#define META_MIG_BLOB_LOCATION 3
#define META_MIG_BLOB_IN_DB 4
#define META_MIG_COLS 9
/* A column value: null, else i (integers) or p/len (text, NUL-terminated, or bytes). */
struct meta_mig_val {
	int null;
	int64_t i;
	const void *p;
	size_t len;
};
struct meta_mig_row {
	struct meta_mig_val v[META_MIG_COLS];
	void *owned; /* meta_mig_row_copy()'s bytes */
};
/* The table's name, for messages. */
const char *meta_mig_table_name(enum meta_mig_table t);
/* Calls cb for every row of t in key order; the row is valid during the call. */
int meta_mig_export(struct meta *m, enum meta_mig_table t, int (*cb)(void *ctx, const struct meta_mig_row *r),
		    void *ctx);
/* A copy of src whose values live until meta_mig_row_release(dst). */
void meta_mig_row_copy(struct meta_mig_row *dst, const struct meta_mig_row *src);
void meta_mig_row_release(struct meta_mig_row *r);
/* What became of a row given to meta_mig_import(), or what meta_mig_check() found. */
enum meta_mig_state {
	META_MIG_ABSENT,   /* check: not in the database */
	META_MIG_ADDED,    /* import: inserted */
	META_MIG_SAME,     /* already there, the same */
	META_MIG_CONFLICT, /* its key is taken by something else (a tag pointing elsewhere, an id used) */
	META_MIG_REPLACED, /* import with replace: a tag moved to the row's digest */
};
/*
 * One transaction: inserts the n rows of t, each unless already there;
 * out[i] gets its enum meta_mig_state. replace: tags pointing elsewhere
 * are moved (with no history row: the copied history tells).
 */
int meta_mig_import(struct meta *m, enum meta_mig_table t, const struct meta_mig_row *rows, size_t n, int replace,
		    unsigned char *out);
/* Whether row r of t is in the database: *state META_MIG_ABSENT, _SAME or _CONFLICT. */
int meta_mig_check(struct meta *m, enum meta_mig_table t, const struct meta_mig_row *r, int *state);
/* Rows of t. */
int meta_mig_count(struct meta *m, enum meta_mig_table t, int64_t *n);
/* After rows were imported with their ids: new ids continue past them (PostgreSQL's identity sequences). */
int meta_mig_finish(struct meta *m);

/* ---- browsing (meta_browse.c): the web interface's listings, see store_browse.h ---- */
/* A keyset page: order (0 name, 1 last push, 2 size), direction, the previous page's last row, a name filter. */
struct meta_browse_page {
	int sort, desc;
	const char *after_name; /* NULL: the first page */
	int64_t after_value;
	const char *contains;
	long n;
};
struct meta_repo_summary {
	const char *name;
	int64_t pushed_ms, tags, size;
};
struct meta_tag_summary {
	const char *name, *digest, *media_type, *pusher;
	int64_t pushed_ms, size;
};
int meta_browse_repos(struct meta *m, const struct meta_browse_page *pg, meta_str_cb filter, void *fctx,
		      int (*cb)(void *ctx, const struct meta_repo_summary *r), void *ctx, int *more);
int meta_browse_tags(struct meta *m, const char *repo, const struct meta_browse_page *pg,
		     int (*cb)(void *ctx, const struct meta_tag_summary *t), void *ctx, int *more);
/* Tags of repo pointing at digest, by name, at most n; *more when further ones exist. */
int meta_browse_tags_at(struct meta *m, const char *repo, const char *digest, long n, meta_str_cb cb, void *ctx, int *more);

#endif
