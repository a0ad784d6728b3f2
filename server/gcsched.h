/*
 * gcsched: garbage collection as the daemon runs it: one background thread
 * per process that runs store_gc() every "gc.schedule" (re-read from the
 * current settings at each wake, so a reload takes effect; 0 means never),
 * logs the summary and records the run in the audit log. Plus what the
 * `berth gc` command shares with it: options from the settings and the
 * audit record.
 *
 * The thread is started by registry_open() and stopped (a running
 * collection is told to stop between batches, and waited for) by
 * registry_close() or registry_release(), before the database closes. A
 * command-line process calls gcsched_inhibit() first and never gets one.
 * The registry passed to gcsched_start() must outlive gcsched_stop().
 * All functions are thread-safe.
 */
#ifndef BERTH_GCSCHED_H
#define BERTH_GCSCHED_H

#include "config.h"
#include "handlers.h"
#include "store.h"

/* From now on gcsched_start() starts nothing (command-line processes). */
void gcsched_inhibit(void);
/* Starts the schedule thread for reg (once; later calls do nothing). Returns 0 or E_INTERNAL. */
int gcsched_start(struct registry *reg);
/* Stops and joins the thread, if any; safe to call again. */
void gcsched_stop(void);

/* gc options from the settings (dry run off, no callback). */
void gcsched_opts(const struct config *c, struct gc_opts *o);
/* Records a finished collection in st's audit log (dry runs are not recorded: they change nothing). */
void gcsched_record(struct store *st, const struct gc_report *r, int from_cli);

#endif
