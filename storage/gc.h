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
 * run gets E_BUSY), and with the metadata in PostgreSQL one in the whole
 * cluster (store_gc() takes the database's lock, gc_util.c). Blobs in an
 * object store are collected by gc_remote.c instead of the file steps. Thread-safe otherwise: it only uses meta (the calling
 * thread's connection) and the file system. Strings handed to on_item are
 * valid only during the call.
 */
#ifndef BERTH_GC_H
#define BERTH_GC_H

#include <stdint.h>

#include "blobstore.h"
#include "buf.h"
#include "store.h"
#include "store_maint.h"

/* Rows deleted per write transaction: short enough that requests never wait long. */
#define GC_BATCH 256
/* How long files moved aside wait before the last look at the metadata (at most the grace period). */
#define GC_SETTLE_MS_MAX 10000

struct meta;

/* Options, reports and store_gc(), the entry point from outside storage/, are in store_maint.h. */

/*
 * One collection over the data directory of bs, whose metadata m holds. Returns 0 (also when cancelled: see out->cancelled), E_BUSY
 * with out->busy set when another collection runs (E_BUSY without it: the
 * database stayed locked), or the first meta/E_IO error (what was done
 * until then stays done and is in *out).
 */
int gc_run(struct meta *m, const struct blobstore *bs, const struct gc_opts *o, struct gc_report *out);

/*
 * Only what is provably orphaned: blob files no metadata knows (older than
 * the grace period) and stale uploads, as gc_run() does them. For `berth
 * fsck --repair`. Same returns as gc_run().
 */
int gc_purge_orphans(struct meta *m, const struct blobstore *bs, const struct gc_opts *o, struct gc_report *out);

#endif
