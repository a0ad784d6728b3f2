/*
 * store_maint: the store's maintenance verbs, public beside store.h:
 * garbage collection (gc.c), the integrity check (fsck.c), moving
 * images in and out as files (imgimport.c, imgexport.c), and copying a
 * whole store into another (store_migrate.c). What each does is
 * described in gc.h, fsck.h, imgimport.h and imgexport.h; here are only
 * the entry points and their options and reports.
 *
 * Each runs on the calling thread with a store that outlives the call.
 * Reports and results own their strings and arrays until their release
 * function; strings handed to callbacks are valid only during the call.
 */
#ifndef BERTH_STORE_MAINT_H
#define BERTH_STORE_MAINT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "digest.h"
#include "names.h"

struct store;
struct store_actor;

/* ---- garbage collection (gc.h) ---- */

enum gc_item_kind {
	GC_ITEM_MANIFEST, /* repo, digest, size of the manifest */
	GC_ITEM_LINK,     /* repo, digest (the blob stays while another repository links it) */
	GC_ITEM_BLOB,     /* digest, bytes freed on disk */
	GC_ITEM_UPLOAD,   /* upload id or leftover file name in uploads/, bytes */
};

struct gc_item {
	enum gc_item_kind kind;
	const char *repo; /* NULL for blobs and uploads */
	const char *name;
	int64_t size;
};

struct gc_opts {
	int64_t history_s;    /* tag history window */
	int64_t untagged_s;   /* untagged manifests younger than this stay */
	int64_t grace_s;      /* links and files younger than this stay */
	int64_t upload_ttl_s; /* uploads idle this long go */
	int64_t settle_ms;    /* see GC_SETTLE_MS_MAX; gc_opts_init() sets min(grace, max) */
	int dry_run;          /* report what would go, change nothing */
	/* Told about each item deleted (or, dry, that would be); may be NULL. */
	void (*on_item)(void *ctx, const struct gc_item *it);
	void *ctx;
	/* Set (by another thread) to stop early: what was done stays done. May be NULL. */
	const atomic_int *cancel;
};

struct gc_report {
	int dry_run, cancelled;
	int busy;               /* another collection runs (this data directory, or the cluster): nothing was done */
	int64_t repos;          /* repositories looked at */
	int64_t repos_emptied;  /* left with nothing: gone from the catalog */
	int64_t manifests;
	int64_t links;
	int64_t blobs;          /* blob files (and their records) deleted */
	int64_t bytes;          /* bytes of those files */
	int64_t uploads;        /* stale uploads and leftover upload files purged */
	int64_t upload_bytes;
	int64_t restored;       /* files moved back because they were linked again meanwhile */
	int64_t duration_ms;
};

/* Fills o from the configured windows (seconds); dry run off, no callback. */
void gc_opts_init(struct gc_opts *o, int64_t history_s, int64_t untagged_s, int64_t grace_s, int64_t upload_ttl_s);

/*
 * One collection over the store. Returns 0 (also when cancelled: see
 * out->cancelled), E_BUSY with out->busy set when another collection runs
 * (E_BUSY without it: the database stayed locked), or the first error
 * (what was done until then stays done and is in *out).
 */
int store_gc(struct store *st, const struct gc_opts *o, struct gc_report *out);

/* One line (no newline): "gc: 3 manifests, 7 blobs (1.2 MiB) freed, ...". */
void gc_report_text(const struct gc_report *r, struct buf *out);
/* A JSON object with every count (bytes_freed among them). */
void gc_report_json(const struct gc_report *r, struct buf *out);
/* "1.2 MiB", "512 B": sizes for people. */
void gc_human_size(int64_t bytes, struct buf *out);

/* ---- integrity check (fsck.h) ---- */

struct fsck_problem {
	const char *kind;   /* "database", "corrupt", "missing", "size", "orphan", "stray", "manifest",
			       "reference", "upload" */
	const char *repo;   /* NULL when not about one repository */
	const char *name;   /* digest, file (relative to blobs/ or uploads/) or upload id; may be NULL */
	const char *detail; /* one lowercase sentence */
	int note;           /* informational only (fresh or housekeeping): does not fail the check */
	int repaired;       /* removed by --repair */
};

struct fsck_opts {
	int repair;
	int verify;           /* an object store: read and re-hash every blob (a local directory always does) */
	int64_t grace_s;      /* orphans younger than this are notes, and never removed */
	int64_t upload_ttl_s; /* uploads idle this long are stale */
	void (*on_problem)(void *ctx, const struct fsck_problem *p); /* may be NULL */
	void *ctx;
};

struct fsck_report {
	int64_t files, bytes;  /* blob files hashed */
	int64_t contents, content_bytes; /* blob contents held in the database (manifests) hashed */
	int64_t blobs, manifests, references, uploads; /* records checked */
	int64_t problems;      /* found, notes not counted */
	int64_t repaired;      /* of those, removed by --repair */
	int64_t notes;
	int64_t purged_uploads;
};

/*
 * Checks (and with o->repair, repairs) the store. Returns 0 when the check
 * ran (problems are in *out), or E_IO / a metadata error when it could
 * not; E_BUSY when repair was asked while a garbage collection runs.
 */
int store_fsck(struct store *st, const struct fsck_opts *o, struct fsck_report *out);

/* ---- image import (imgimport.h) ---- */

struct imgimport_opts {
	const char *repo;  /* validated repository name */
	const char *tag;   /* validated tag */
	const char *ref;   /* which image of a multi-image input (ref name or RepoTag); may be NULL */
	size_t manifest_max;
	const struct store_actor *actor; /* recorded in tag history; may carry the immutable-tag guard */
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
int store_import(struct store *st, const char *path, const struct imgimport_opts *o,
	      struct imgimport_result *res, struct buf *detail);
void imgimport_result_release(struct imgimport_result *res);

/* ---- image export (imgexport.h) ---- */

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
int store_export(struct store *st, const char *repo, const struct reference *ref, int fd,
	      struct imgexport_result *res, struct buf *detail);
void imgexport_result_release(struct imgexport_result *res);

/* ---- copying a store into another (store_migrate.c, berth migrate) ---- */

#define STORE_MIG_TABLES 10

struct store_mig_opts {
	int replace; /* tags the destination points elsewhere are moved to the source's digest */
	int verify;  /* at the end, every blob copied is read back from the destination and re-hashed */
	/* Told of each conflict (refusing the copy) and each problem the verification finds; may be NULL. */
	void (*on_problem)(void *ctx, const char *table, const char *what);
	/* Told after each batch of rows of a table; may be NULL. */
	void (*on_progress)(void *ctx, const char *table, int64_t rows);
	void *ctx;
};

struct store_mig_table {
	const char *name;
	int64_t source, dest; /* rows at the end */
	int64_t added, same, replaced, conflicts;
};

struct store_mig_report {
	struct store_mig_table t[STORE_MIG_TABLES]; /* in the order copied */
	int64_t blobs_copied, bytes_copied;
	int64_t blobs_present; /* bytes already in the destination (an earlier run's), not copied again */
	int64_t conflicts;     /* found before copying: nothing was copied */
	int64_t problems;      /* found by the verification */
};

/*
 * Copies every repository, blob (bytes into to's backend), link,
 * manifest, reference, tag, tag history entry, personal access token and
 * audit event of from into to, keeping times and the ids of history,
 * tokens and events; upload sessions are not copied. Nothing in from
 * changes, and from must not change meanwhile (its daemon stopped).
 * Idempotent: what to already has, the same, is left as it is (a blob in
 * to's backend under its digest is not copied again), so a run that was
 * interrupted is finished by running it again. Before writing anything,
 * every row is looked up in to: a tag pointing elsewhere (unless
 * o->replace), a history entry, token or event id used by something else,
 * or a blob of another size is a conflict, and the copy is refused
 * (E_EXISTS, r->conflicts). At the end every row of from is looked up in
 * to again and every blob's size in to's backend checked (o->verify:
 * its bytes re-hashed): 0 with r->problems 0 when all is there.
 */
int store_migrate(struct store *from, struct store *to, const struct store_mig_opts *o, struct store_mig_report *r);

#endif
