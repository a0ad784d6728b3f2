/*
 * store: the one interface between the registry and its storage. Handlers,
 * the command line, garbage collection, fsck and image import/export reach
 * blobs, uploads, manifests, tags, tokens and the audit log only through a
 * struct store, opened from the config and passed down explicitly (the
 * registry context holds it); none of them knows where bytes live.
 *
 * Inside, a store pairs a blob backend (a small table of operations, see
 * store_backend.h: the local directory of storage/blob_fs.c or the object
 * store of storage/blob_s3_backend.c) with the metadata module (meta.h:
 * SQLite under the data directory or PostgreSQL). Which ones is the
 * store's choice from the config: callers never see the difference.
 *
 * Enforced by the build: server/ (handlers, CLI, main) is compiled with an
 * include path holding common/, config/, auth/, server/ and copies of this
 * header and its companion store_maint.h (GC, fsck, import and export)
 * only (server/meson.build), so any other storage header fails to compile
 * there. Everything a caller needs is declared in these two.
 *
 * Ownership: struct store is made by store_open() and freed by
 * store_close(), after every other thread stopped using it. Structs filled
 * by store_* own their strings until the matching *_release(); structs and
 * strings handed to callbacks are valid only during the callback, and a
 * non-zero callback result stops the iteration and is returned. Strings
 * passed in are borrowed for the call. Every verb is thread-safe unless
 * noted (a struct store_upload is used by one thread at a time).
 *
 * Every function returns 0 or a negative E_* code (common/err.h); where a
 * verb takes a detail buffer (may be NULL), a short lowercase explanation
 * of a refusal is appended to it.
 */
#ifndef BERTH_STORE_H
#define BERTH_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "digest.h"
#include "names.h"

struct store;

/* ---- opening ---- */

/*
 * Where storage lives, as the config says (server/ fills it from struct
 * config: storage/ does not see that header). Strings are borrowed for
 * store_open_config() only.
 */
struct store_s3_config {
	const char *endpoint, *region, *bucket, *prefix;
	int path_style;
	const char *ca_file;
	const char *access_key, *secret_key;
};
struct store_config {
	const char *root;        /* the data directory: blobs and SQLite unless the two below say otherwise */
	const char *db_url;      /* NULL: SQLite under root; else a PostgreSQL connection string or URL */
	const char *db_password; /* may be NULL: libpq's own sources */
	int s3;                  /* blobs in the object store of s3cfg, not under root */
	struct store_s3_config s3cfg;
};
/*
 * Opens the storage sc names: the blob backend (creating a local layout
 * when missing) and the metadata (creating and migrating the database).
 * Returns 0 and *out, or an E_* code (logged; *out NULL).
 */
int store_open_config(const struct store_config *sc, struct store **out);
/* store_open_config() of the single-node shape: everything under root. */
int store_open(const char *root, struct store **out);
/* Closes everything store_open() opened; NULL is fine. */
void store_close(struct store *st);
/*
 * Keeps disk space aside so that deletes still work on a full disk (for
 * `berth serve`; until store_close()). Deletes made through the store
 * retry once with that room; pushes are refused with E_NO_SPACE (detail
 * STORE_FULL_DETAIL) while it cannot be taken back. Failures are logged;
 * the store works without it.
 */
void store_reserve(struct store *st);
#define STORE_FULL_DETAIL "disk full: the space kept for deletes is in use; delete content and run berth gc"
/* 0 when content may be added now, else E_NO_SPACE (see store_reserve()). */
int store_push_allowed(struct store *st);
/*
 * Readiness: 0 when the blob backend takes a write and the metadata
 * answers; else E_IO or E_STORE_UNAVAILABLE with why in detail.
 */
int store_ready(struct store *st, struct buf *detail);
/* Readiness part by part: each named ("sqlite", "postgresql"; "filesystem", "s3") with why when down. */
struct store_health {
	const char *db_name, *blobs_name;
	int db_ok, blobs_ok;
	struct buf db_why, blobs_why;
};
/* Fills h (release it); 0 when both parts are ready, else the first failure's E_*. */
int store_health(struct store *st, struct store_health *h);
void store_health_release(struct store_health *h);
/*
 * For an answer to E_STORE_UNAVAILABLE: appends which part cannot be
 * reached, the object store when it failed lately, else the database.
 */
void store_unavailable_detail(struct store *st, struct buf *detail);

/* Files of a local data directory that are not storage (the daemon's lock, the signing keys), by name. */
enum store_local_path { STORE_PATH_DB, STORE_PATH_LOCK, STORE_PATH_KEYS };
void store_local_path(const char *root, enum store_local_path which, struct buf *out);

/* ---- reading bytes ---- */

struct store_source;
/*
 * An open blob (or manifest) body: size, and where the bytes are. Exactly
 * one of fd >= 0 (a local file: send it with sendfile, or take it over with
 * store_reader_take_fd()) and mem != NULL (bytes in memory, e.g. a
 * manifest the database holds) is set by the local backend; a remote
 * backend sets neither and serves store_reader_read(). Release it always.
 */
struct store_reader {
	int64_t size;
	int fd;
	const unsigned char *mem;
	/* private */
	struct buf held;  /* bytes read from the database */
	void *owned;      /* or bytes handed over by it */
	struct store *st;
	void *be_state;   /* the backend's, for remote reads */
	const struct store_source *src; /* or bytes a caller produces (store_reader_source()) */
	void *src_ctx;
};
/* Reads up to len bytes at off into buf; *n is 0 at the end. Blocks while a remote store sends. */
int store_reader_read(struct store_reader *rd, int64_t off, void *buf, size_t len, size_t *n);
/*
 * Remote bytes for an event loop that must not block (the HTTP server):
 * store_reader_stream() starts sending [first, first + len) from the store
 * into a bounded buffer; store_reader_pull() then takes what arrived.
 * When nothing has yet, it calls w->park(w->ctx) and returns
 * STORE_PULL_WAIT; w->wake(w->ctx) is called once (from another thread)
 * when more arrived or the stream ended. Both are called with the
 * stream's lock held: they must not call the reader. *n 0 and 0 returned:
 * the end. Only for a reader with neither fd nor mem.
 */
struct store_waiter {
	void (*park)(void *ctx);
	void (*wake)(void *ctx);
	void *ctx;
};
#define STORE_PULL_WAIT 1
int store_reader_stream(struct store_reader *rd, int64_t first, int64_t len);
int store_reader_pull(struct store_reader *rd, void *buf, size_t max, size_t *n, const struct store_waiter *w);
/*
 * A reader whose bytes come from the caller instead of the store: the
 * pull-through cache streams a blob to its client while the blob is still
 * arriving from the upstream. store_reader_stream() accepts it (the source
 * starts where it was made to), store_reader_pull() calls src->pull with
 * the same contract as above, store_reader_read() is E_UNSUPPORTED, and
 * releasing the reader calls src->release(ctx) once. rd need not be
 * initialised; src is borrowed for the reader's life, ctx owned by it.
 */
struct store_source {
	int (*pull)(void *ctx, void *buf, size_t max, size_t *n, const struct store_waiter *w);
	void (*release)(void *ctx);
};
void store_reader_source(struct store_reader *rd, int64_t size, const struct store_source *src, void *ctx);
/* Moves rd to the heap (rd left empty), for a body that outlives the handler; free with store_reader_free(). */
struct store_reader *store_reader_move(struct store_reader *rd);
void store_reader_free(struct store_reader *rd);
/* Hands the file descriptor over to the caller (-1 when there is none). */
int store_reader_take_fd(struct store_reader *rd);
void store_reader_release(struct store_reader *rd);

/* ---- blobs ---- */

/* 0 when d is linked to repo (*size its size, may be NULL), else E_BLOB_UNKNOWN. */
int store_blob_stat(struct store *st, const char *repo, const struct digest *d, int64_t *size);
/*
 * Opens blob d of repo for reading (release rd in every case). E_BLOB_UNKNOWN
 * when it is not linked to repo, or linked but its bytes are gone (detail
 * then says so).
 */
int store_blob_open(struct store *st, const char *repo, const struct digest *d, struct store_reader *rd,
		    struct buf *detail);
/*
 * A URL a client may fetch blob d of repo from directly for ttl_s seconds,
 * when the backend can give one (an object store); E_UNSUPPORTED otherwise
 * (serve it through store_blob_open()). E_BLOB_UNKNOWN when d is not
 * linked to repo; makes no request to the store.
 */
int store_blob_url(struct store *st, const char *repo, const struct digest *d, int ttl_s, struct buf *url);
/* Removes the link of d to repo; E_BLOB_UNKNOWN when there was none. */
int store_blob_unlink(struct store *st, const char *repo, const struct digest *d);
/*
 * Links d to repo from another repository: from when not NULL (a validated
 * name), else the first repository linking d that filter (may be NULL)
 * accepts. Returns 0 when linked, STORE_MOUNT_FALLBACK when there is
 * nothing to mount (unknown, not accepted, or its bytes are gone: the
 * client uploads instead), or an E_* code.
 */
#define STORE_MOUNT_FALLBACK 1
int store_blob_mount(struct store *st, const char *repo, const struct digest *d, const char *from,
		     int (*filter)(void *ctx, const char *repo), void *ctx);

/* ---- uploads ---- */

#define STORE_UPLOAD_ID_LEN 32
/* 0 when id has the form of an upload id, else E_BLOB_UPLOAD_UNKNOWN. */
int store_upload_id_check(const char *id);

/* An upload in exclusive use by one request (one thread). */
struct store_upload;
/* Starts a resumable upload session in repo; its id goes to id. */
int store_upload_create(struct store *st, const char *repo, char id[STORE_UPLOAD_ID_LEN + 1]);
/*
 * Takes exclusive use of upload id of repo for one request: E_BLOB_UPLOAD_UNKNOWN,
 * E_NO_SPACE (pushes refused, detail STORE_FULL_DETAIL), E_UPLOAD_BUSY
 * (another request holds it), E_IO.
 */
int store_upload_acquire(struct store *st, const char *repo, const char *id, struct store_upload **out,
			 struct buf *detail);
/*
 * A one-request upload (a monolithic POST): created and taken at once, and
 * gone when released unless finished. E_NO_SPACE, E_IO.
 */
int store_upload_oneshot(struct store *st, const char *repo, struct store_upload **out, struct buf *detail);
const char *store_upload_id(const struct store_upload *u);
/* Bytes received so far, including those not flushed yet. */
int64_t store_upload_offset(const struct store_upload *u);
/* This request brings len more bytes (<= 0: unknown); lets the backend reserve room. */
void store_upload_expect(struct store_upload *u, int64_t len);
/* Appends data (may be buffered). 0, E_NO_SPACE, E_IO. */
int store_upload_write(struct store_upload *u, const void *data, size_t len);
/*
 * Stores every buffered byte (call before acknowledging them; on failure
 * they are dropped and the offset goes back).
 */
int store_upload_flush(struct store_upload *u);
/* Records the session's activity now and then (after an acknowledged PATCH): keeps it from the stale-upload purge. */
void store_upload_touch(struct store_upload *u);
/*
 * Completes the upload: its content must have digest want (E_DIGEST_INVALID,
 * the upload left as it was); the blob is stored and linked to the
 * upload's repository, and the session is forgotten.
 */
int store_upload_finish(struct store_upload *u, const struct digest *want);
/*
 * Ends exclusive use. With refused set, every byte written since acquire is
 * given up first (the client was told the request failed, and the offset
 * it reads next is where it started). A one-shot upload not finished is
 * removed.
 */
void store_upload_release(struct store_upload *u, int refused);
/* Bytes stored in upload id of repo without taking it; E_UPLOAD_BUSY while a request holds it. */
int store_upload_status(struct store *st, const char *repo, const char *id, int64_t *size);
/* Abandons upload id of repo (its bytes and its session). */
int store_upload_cancel(struct store *st, const char *repo, const char *id);

/* ---- who changes tags ---- */

/* What a write did to tags. */
struct store_tag_change {
	int count;                        /* tags moved or removed (history rows written) */
	char how[16];                     /* as recorded in history */
	char old_digest[DIGEST_STR_MAX];  /* of the last tag changed; "" when created */
	char new_digest[DIGEST_STR_MAX];  /* "" when removed */
};

/* One audit event; strings valid only during the call that hands it over. */
struct store_audit {
	int64_t id; /* increasing, never reused */
	int64_t time_ms;
	const char *actor, *action, *repo, *detail, *client;
};

/*
 * Who moves tags, and how; every field may be NULL (so may the whole
 * struct: anonymous, unguarded). As meta.h's struct meta_actor:
 * how is "push", "retag", "rollback", "delete", "import"; guard is asked
 * inside the write's transaction about every existing tag the write would
 * move or remove (>= 0 refuses with E_TAG_IMMUTABLE, nothing changes) and
 * must not call the store; change (zeroed first) is told what the write
 * did; audit is asked once inside the transaction to describe the write's
 * audit event in *ev (non-zero: no event), which then commits with it.
 */
struct store_actor {
	const char *name;
	const char *how;
	const char *client;
	int (*guard)(void *guard_ctx, const char *tag);
	void *guard_ctx;
	struct store_tag_change *change;
	int (*audit)(void *audit_ctx, struct store_audit *ev);
	void *audit_ctx;
};

/* ---- manifests ---- */

/* What a manifest reference points at (the order of meta.h and manifest.h). */
enum store_ref_kind { STORE_REF_CONFIG = 0, STORE_REF_LAYER = 1, STORE_REF_CHILD = 2, STORE_REF_SUBJECT = 3 };

struct store_manifest {
	struct digest digest;
	int64_t size;
	char *media_type;
	char *artifact_type; /* may be NULL */
	char *annotations;   /* JSON object text, may be NULL */
};
void store_manifest_release(struct store_manifest *m);

/* What a manifest put stored. */
struct store_put_result {
	struct digest digest;  /* of the bytes */
	int has_subject;
	struct digest subject;
	char *media_type;      /* as parsed; release with store_put_result_release() */
};
void store_put_result_release(struct store_put_result *res);

/*
 * The one write path for manifests (HTTP push and image import): hashes
 * the len bytes of body (with alg), checks them against want when not NULL
 * (E_DIGEST_INVALID), validates them as a manifest pushed with
 * content_type (may be NULL: E_MANIFEST_INVALID, E_SCHEMA1,
 * E_MEDIATYPE_MISMATCH), and in one durable transaction stores the bytes,
 * records the manifest and what it references (every non-external blob
 * must be linked to repo and every child a manifest of repo, else
 * E_MANIFEST_BLOB_UNKNOWN), and when tag is not NULL points it there
 * (E_TAG_IMMUTABLE through actor's guard). body is not copied.
 * res->digest is filled before the write, so actor's audit hook may read
 * it; release res in every case.
 */
int store_manifest_put(struct store *st, const char *repo, enum digest_alg alg, const struct digest *want,
		       const void *body, size_t len, const char *content_type, const char *tag,
		       const struct store_actor *actor, struct store_put_result *res, struct buf *detail);
/*
 * Resolves ref (tag or digest) in repo into *m and opens its bytes in *rd
 * wherever they live. E_MANIFEST_UNKNOWN (also when its bytes are gone:
 * detail says so). Release both in every case.
 */
int store_manifest_get(struct store *st, const char *repo, const struct reference *ref,
		       struct store_manifest *m, struct store_reader *rd, struct buf *detail);
/*
 * Removes what ref names: a manifest with every tag pointing at it, or
 * only a tag (each recorded in tag history with how "delete").
 * E_MANIFEST_UNKNOWN. On a full disk retried once with the reserve's room.
 */
int store_manifest_delete(struct store *st, const char *repo, const struct reference *ref,
			  const struct store_actor *actor);

/* One reference of a manifest (digest valid only during the callback). */
struct store_ref_info {
	enum store_ref_kind kind;
	const char *digest;
	int64_t size; /* -1 when not stored (external layers) */
};
/* What manifest d of repo references, by kind then digest; E_MANIFEST_UNKNOWN. */
int store_manifest_refs(struct store *st, const char *repo, const struct digest *d,
			int (*cb)(void *ctx, const struct store_ref_info *ri), void *ctx);
/* Manifests of repo whose subject is d (artifact_type filters when not NULL), in digest order. */
int store_referrers(struct store *st, const char *repo, const struct digest *d, const char *artifact_type,
		    int (*cb)(void *ctx, const struct store_manifest *m), void *ctx);

/* ---- repositories and tags ---- */

typedef int (*store_str_cb)(void *ctx, const char *s);
/* 0 when repo exists, else E_NAME_UNKNOWN. */
int store_repo_exists(struct store *st, const char *repo);
/*
 * Repository names in lexical order after last (NULL: from the start);
 * filter (may be NULL) returns non-zero to include one; at most n (< 0:
 * all) included names go to cb; *more is set when further ones exist.
 */
int store_repo_list(struct store *st, const char *last, long n, store_str_cb filter, void *fctx, store_str_cb cb,
		    void *ctx, int *more);
/* Tags of repo in byte order after last, at most n (< 0: all); E_NAME_UNKNOWN. */
int store_tag_list(struct store *st, const char *repo, const char *last, long n, store_str_cb cb, void *ctx,
		   int *more);
/*
 * A version of what the calling thread reads: equal versions mean nothing
 * changed in between (a thread may keep an answer it built for as long).
 */
int store_read_version(struct store *st, uint64_t v[2]);

struct store_tag_info {
	const char *name;
	const char *digest;
	int64_t size;       /* of the manifest */
	int64_t updated_ms; /* last move */
};
/* Tags of repo in lexical order with what they point at; E_NAME_UNKNOWN. */
int store_tag_info(struct store *st, const char *repo, int (*cb)(void *ctx, const struct store_tag_info *t),
		   void *ctx);

struct store_tag_event {
	int64_t id;
	int64_t time_ms;
	const char *old_digest; /* NULL when the tag was created */
	const char *new_digest; /* NULL when the tag was deleted */
	const char *actor;
	const char *how;
	const char *client;
};
/* History of repo:tag, newest first. */
int store_tag_history(struct store *st, const char *repo, const char *tag,
		      int (*cb)(void *ctx, const struct store_tag_event *ev), void *ctx);

/* Outcome of a rollback. */
struct store_rollback {
	char from[DIGEST_STR_MAX]; /* where the tag pointed; "" when it does not exist now */
	char to[DIGEST_STR_MAX];   /* where it points (or would) afterwards */
	int64_t from_size;
	int64_t to_size;
	int moved;                 /* 0 when the tag already pointed at to */
};
/*
 * Moves repo:tag back to to (a digest string) or, when to is NULL, to
 * where it pointed before its steps-th most recent move; recorded in tag
 * history like any move (how "rollback" unless actor says otherwise) and
 * guarded. dry_run only fills *out. E_NAME_UNKNOWN, E_MANIFEST_UNKNOWN,
 * E_DIGEST_INVALID, E_TAG_IMMUTABLE.
 */
int store_tag_rollback(struct store *st, const char *repo, const char *tag, long steps, const char *to,
		       int dry_run, const struct store_actor *actor, struct store_rollback *out, struct buf *detail);

/* ---- personal access tokens (stored by the SHA-256 of their secret) ---- */

struct store_pat {
	int64_t id;
	char *owner;
	char *name;
	char *scopes; /* space-separated; "" = all of the owner's rights */
	int64_t created_ms;
	int64_t expires_ms;   /* 0 = never */
	int64_t last_used_ms; /* 0 = never */
	int64_t revoked_ms;   /* 0 = not revoked */
};
void store_pat_release(struct store_pat *p);
/* E_EXISTS when owner has an unrevoked token called name, or hash is taken. */
int store_pat_create(struct store *st, const char *owner, const char *name, const char *scopes, int64_t expires_ms,
		     const unsigned char hash[32], int64_t *id);
/* The active token whose secret hashes to hash; E_UNAUTHORIZED. */
int store_pat_lookup(struct store *st, const unsigned char hash[32], int64_t now_ms, struct store_pat *out);
/* 0 while token id is active at now_ms, else E_UNAUTHORIZED; cheap. */
int store_pat_check(struct store *st, int64_t id, int64_t now_ms);
/* Scopes of active token id (caller frees), else E_UNAUTHORIZED. */
int store_pat_scopes(struct store *st, int64_t id, char **scopes);
/* Records use at now_ms (a write: callers rate-limit it). */
int store_pat_touch(struct store *st, int64_t id, int64_t now_ms);
/* Tokens of owner (NULL: everyone's), newest first; revoked ones only with all. */
int store_pat_list(struct store *st, const char *owner, int all, int (*cb)(void *ctx, const struct store_pat *p),
		   void *ctx);
/* E_NAME_UNKNOWN when owner has no unrevoked token name. */
int store_pat_revoke(struct store *st, const char *owner, const char *name, int64_t now_ms);
/* The name of token id, revoked or not (caller frees); E_NAME_UNKNOWN. */
int store_pat_name(struct store *st, int64_t id, char **name);

/* ---- audit log ---- */

/* Appends an event now; detail_json, when not NULL, must be a JSON object (else E_INTERNAL). */
int store_audit_add(struct store *st, const char *actor, const char *action, const char *repo,
		    const char *detail_json, const char *client);
/* Events at or after since_ms (only repo's when not NULL), oldest first, at most limit (< 0: all). */
int store_audit_list(struct store *st, int64_t since_ms, const char *repo, long limit,
		     int (*cb)(void *ctx, const struct store_audit *ev), void *ctx);

/* ---- statistics ---- */

struct store_stats {
	int64_t blobs, blob_bytes, repos, manifests, tags, uploads, gc_runs, gc_bytes_freed;
};
int store_stats(struct store *st, struct store_stats *out);

#include "store_maint.h"

#endif
