/*
 * gc: garbage collection of manifests, blob links, blobs and stale uploads,
 * safe while the registry serves traffic.
 *
 * Mark, per repository: the roots are every tagged manifest, every digest a
 * tag pointed at within the history window (tag history, old and new
 * digests), and every untagged manifest pushed within the untagged age (and
 * never less than the grace period). From the roots liveness spreads to the
 * children of an index and to the referrers of a live manifest (signatures,
 * attestations: manifests whose subject it is). A blob link is live when a
 * live manifest of that repository is that blob or uses it as config or
 * layer, or when it was made within the grace period.
 *
 * Sweep, in short write transactions of GC_BATCH rows: dead manifests (each
 * before what it kept, each re-checked inside the transaction), dead links
 * (re-checked), then blob records no repository links any more and blob
 * files no metadata knows, both only when the file is older than the grace
 * period. Files are deleted only after the metadata transaction committed,
 * and only after they were moved aside, GC_SETTLE_MS_MAX had passed and the
 * metadata was asked again: a blob re-linked meanwhile (an upload or a
 * manifest of the same content finishing) is moved back. A crash at any
 * point leaves at worst an orphan file, which the next run or `berth fsck
 * --repair` removes. Uploads idle for the upload TTL are purged with their
 * files, and so are files in uploads/ that no upload owns.
 *
 * One run at a time per data directory (an advisory lock on it; a second
 * run gets E_BUSY). Thread-safe otherwise: it only uses meta (the calling
 * thread's connection) and the file system. Strings handed to on_item are
 * valid only during the call.
 */
#ifndef BERTH_GC_H
#define BERTH_GC_H

#include <stdatomic.h>
#include <stdint.h>

#include "blobstore.h"
#include "buf.h"

/* Rows deleted per write transaction: short enough that requests never wait long. */
#define GC_BATCH 256
/* How long files moved aside wait before the last look at the metadata (at most the grace period). */
#define GC_SETTLE_MS_MAX 10000

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
	int busy;               /* another collection holds the data directory: nothing was done */
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
 * One collection over the data directory of bs (meta must be open on the
 * same one). Returns 0 (also when cancelled: see out->cancelled), E_BUSY
 * with out->busy set when another collection runs (E_BUSY without it: the
 * database stayed locked), or the first meta/E_IO error (what was done
 * until then stays done and is in *out).
 */
int gc_run(const struct blobstore *bs, const struct gc_opts *o, struct gc_report *out);

/*
 * Only what is provably orphaned: blob files no metadata knows (older than
 * the grace period) and stale uploads, as gc_run() does them. For `berth
 * fsck --repair`. Same returns as gc_run().
 */
int gc_purge_orphans(const struct blobstore *bs, const struct gc_opts *o, struct gc_report *out);

/* One line (no newline): "gc: 3 manifests, 7 blobs (1.2 MiB) freed, ...". */
void gc_report_text(const struct gc_report *r, struct buf *out);
/* A JSON object with every count (bytes_freed among them). */
void gc_report_json(const struct gc_report *r, struct buf *out);
/* "1.2 MiB", "512 B": sizes for people. */
void gc_human_size(int64_t bytes, struct buf *out);

#endif
