/*
 * fsck_internal: what the integrity check's files share: the check's
 * state, problem reports, and the object store's side (fsck_remote.c),
 * which replaces the walk of a local directory when the store's blobs
 * are in an object store. Used by one thread, the one running the check.
 */
#ifndef BERTH_FSCK_INTERNAL_H
#define BERTH_FSCK_INTERNAL_H

#include <stdint.h>

#include "blobstore.h"
#include "buf.h"
#include "gc_internal.h"
#include "manifest.h"
#include "store.h"

struct orphan {
	struct digest d;
	char *label;
	int64_t size;
};

struct fsck {
	struct store *st;
	const struct blobstore *bs; /* NULL: the blobs are in an object store */
	const struct fsck_opts *o;
	struct fsck_report *r;
	int64_t grace_ms;
	struct strmap files; /* digest -> size of every blob file found (or content in the database) */
	struct orphan *orphans; /* old enough for repair: reported once repair had its go */
	size_t norphans, orphans_alloc;
	struct buf detail;
	/* the manifest last parsed for reference checks */
	char *parsed_repo, *parsed_digest;
	struct manifest_info mi;
	int parsed_ok;
	/* an object store: what the listing showed */
	struct strmap located;   /* location -> size */
	struct blob_entry *listed; /* copies (strings owned) of blobs and uploads' objects */
	size_t nlisted, listed_alloc;
};

/* Reports one problem (a note when note is set) to the caller and counts it. */
void fsck_problem(struct fsck *f, const char *kind, const char *repo, const char *name, int note, int repaired,
		  const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* The object store's listing: sizes into f->files and f->located, strays reported, the rest kept for orphans. */
int fsck_remote_list(struct fsck *f);
/* Every blob record against the listing (and, with o->verify, its bytes re-hashed). */
int fsck_remote_blobs(struct fsck *f);
/* Every upload session: its state must be one the backend reads. */
int fsck_remote_uploads(struct fsck *f);
/* Listed objects nothing keeps, told after repair had its go. */
int fsck_remote_orphans(struct fsck *f);
void fsck_remote_release(struct fsck *f);

#endif
