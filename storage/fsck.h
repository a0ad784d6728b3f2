/*
 * fsck: the integrity check of a data directory: SQLite's own checks,
 * every blob file re-hashed and compared with its name, every blob record,
 * manifest and reference cross-checked with the files, every file under
 * blobs/ matched with a record, every upload session with its file.
 *
 * Repair removes only what is provably orphaned: blob files no metadata
 * knows and stray files under blobs/, both only when older than the grace
 * period, and stale uploads (the same steps as garbage collection, under
 * its lock). Referenced data is never deleted: a corrupt or missing blob
 * that metadata refers to is reported, not touched.
 *
 * Runs beside a serving registry; what changes during the check may show
 * up as a note (a fresh file without a record yet) but is re-checked before
 * it is reported as a problem. Uses the calling thread's meta connection.
 * Strings handed to on_problem are valid only during the call.
 */
#ifndef BERTH_FSCK_H
#define BERTH_FSCK_H

#include <stdint.h>

#include "blobstore.h"

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
 * Checks (and with o->repair, repairs) the data directory of bs; meta must
 * be open on it. Returns 0 when the check ran (problems are in *out), or
 * E_IO / a meta error when it could not; E_BUSY when repair was asked while
 * a garbage collection runs.
 */
int fsck_run(const struct blobstore *bs, const struct fsck_opts *o, struct fsck_report *out);

#endif
