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
#include "store.h"
#include "store_maint.h"

/* The check itself is store_fsck() (store_maint.h). */

#endif
