/*
 * gc_internal: what gc*.c and fsck.c share and nothing else includes: a
 * string map, walks over the blob and upload directories, the one-run-at-
 * a-time lock, the per-repository mark, and the trash (blob files moved
 * aside until the metadata is asked one last time).
 *
 * Everything here is used by one thread at a time (the one running a
 * collection or a check); the structs own their strings and arrays until
 * their *_release().
 */
#ifndef BERTH_GC_INTERNAL_H
#define BERTH_GC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "blobstore.h"
#include "digest.h"
#include "gc.h"
#include "meta.h"
#include "store_backend.h"

/* Milliseconds since the epoch, the clock meta stamps rows with. */
int64_t gc_now_ms(void);
/* Whether o->cancel was set. */
int gc_cancelled(const struct gc_opts *o);
/* Tells o->on_item, when set, about one item. */
void gc_tell(const struct gc_opts *o, enum gc_item_kind kind, const char *repo, const char *name, int64_t size);

/* ---- string map: key -> int64, keys owned (open addressing) ---- */
struct strmap {
	char **keys;
	int64_t *vals;
	size_t cap, n;
};
/* The value of key; with add, a missing key is added with value 0; else NULL when missing. */
int64_t *strmap_get(struct strmap *m, const char *key, int add);
void strmap_release(struct strmap *m);

/* ---- directory walks ---- */
struct gc_file {
	int dirfd;                   /* directory holding the entry: for fstatat, unlinkat */
	const char *name;            /* entry name */
	const char *label;           /* for messages: "sha256/ab/<name>" under blobs/, the name under uploads/ */
	const struct digest *digest; /* blobs/: the digest the name stands for; NULL when it is no blob name */
	int64_t size, mtime_ms;
};
typedef int (*gc_file_cb)(void *ctx, const struct gc_file *f);
/* Every regular file under blobs/<alg>/<2 hex>/; a non-zero callback result stops and is returned. */
int gc_walk_blobs(const char *root, gc_file_cb cb, void *ctx);
/* Every regular file in uploads/. */
int gc_walk_uploads(const char *root, gc_file_cb cb, void *ctx);

/* ---- one collection (or repair) at a time per data directory ---- */
/* Takes the lock into *fd; E_BUSY when another process or thread holds it, E_IO. */
int gc_lock(const char *root, int *fd);
void gc_unlock(int fd);
/*
 * One collection at a time per store: with the metadata in PostgreSQL
 * across every node and command line sharing it (meta_gc_lock()), else
 * per data directory (gc_lock()). E_BUSY when another run holds it.
 */
struct gc_runlock {
	int fd;
	int pg;
	struct meta *meta; /* whose lock, on PostgreSQL */
};
int gc_runlock_take(struct store *st, struct gc_runlock *l);
void gc_runlock_drop(struct gc_runlock *l);
/* The moments a run compares with (meta.h), from o's windows and the clock. */
void gc_cutoffs(const struct gc_opts *o, struct meta_gc_cutoffs *cut);
/* The repository phase of gc_run(): mark and sweep (dry: tell, and count links that would go in dead_links). */
int gc_repos(struct meta *m, const struct gc_opts *o, const struct meta_gc_cutoffs *cut, struct gc_report *r, struct strmap *dead_links);

/* ---- the mark of one repository ---- */
struct gc_node {
	char *digest;
	char *subject;        /* NULL when none */
	int64_t size;
	unsigned char root;   /* tagged, in the history window, or young */
	unsigned char live;   /* reached from a root */
	unsigned char gone;   /* to be deleted (dead, and not held by a cycle of dead manifests) */
	size_t indeg;
};
struct gc_ref {
	long from; /* node index; -1: a manifest that appeared after the manifests were read */
	int kind;  /* enum ref_kind: config, layer or child */
	char *digest;
};
struct gc_link {
	char *digest;
	int64_t size, linked_ms;
	unsigned char own_gone; /* the bytes of a manifest to be deleted: go with it */
	unsigned char dead;     /* to be deleted on its own */
};
struct gc_repo {
	int64_t id;
	struct gc_node *nodes;
	size_t n, nodes_alloc;
	struct strmap index; /* digest -> node index */
	struct gc_ref *refs;
	size_t nrefs, refs_alloc;
	struct gc_link *links;
	size_t nlinks, links_alloc;
	size_t *order;       /* nodes to delete, keepers before what they keep */
	size_t norder;
	int empties;         /* everything in it goes */
};
/* Reads repository id's manifests, references and links (g is filled from zero). */
int gc_repo_load(struct meta *m, struct gc_repo *g, int64_t id, const struct meta_gc_cutoffs *cut);
/* Marks and decides: order, and the links to delete (those before grace_ms only). */
void gc_repo_mark(struct gc_repo *g, int64_t grace_ms);
void gc_repo_release(struct gc_repo *g);

/* ---- the trash: blob files moved into uploads/ as tmp-gc-<alg>-<hex> ---- */
struct gc_trash_ent {
	struct digest d;
	int64_t size;
};
struct gc_trash {
	struct meta *m; /* whose records decide */
	int upfd;         /* uploads/ */
	int64_t last_ms;  /* when the last file was moved aside */
	struct gc_trash_ent *v;
	size_t n, alloc;
};
int gc_trash_open(struct gc_trash *t, struct meta *m, const char *root);
/*
 * Moves the blob file of d aside (after its record was deleted, or when it
 * has none). *size gets its size; E_BLOB_UNKNOWN when there is no file.
 */
int gc_trash_add(struct gc_trash *t, const struct blobstore *bs, const struct digest *d, int64_t *size);
/*
 * Waits until o->settle_ms passed since the last move, then for each file:
 * deleted when meta still has no record of it, moved back when it has
 * (counted in r->restored). When cancelled, every file is moved back (an
 * orphan for the next run). Closes the trash.
 */
void gc_trash_empty(struct gc_trash *t, const struct blobstore *bs, const struct gc_opts *o, struct gc_report *r);
/* Files left aside by a run that crashed: moved back when meta knows them, else deleted. */
int gc_trash_recover(struct gc_trash *t, const struct blobstore *bs, const struct gc_opts *o, struct gc_report *r);

/* ---- the steps gc_run() and gc_purge_orphans() share (gc_files.c) ---- */
/* Blob files without any record, older than grace_ms: into the trash (dry: only told). */
int gc_orphan_files(const struct blobstore *bs, const struct gc_opts *o, int64_t grace_ms, struct gc_trash *t,
		    struct gc_report *r);
/* Stale upload sessions and leftover files in uploads/. */
int gc_uploads_purge(struct meta *m, const struct blobstore *bs, const struct gc_opts *o, struct gc_report *r);

/* ---- an object store's blobs (gc_remote.c): the backend lists them ---- */
/*
 * What keeps an object of the backend: blob records (at their digest's own
 * key, or at a recorded location) and upload sessions (the objects of the
 * upload their state names). Loaded uploads first, then blobs: an upload
 * completing meanwhile moves from the first to the second in one
 * transaction, so each of its objects is seen kept by one of the two.
 */
struct gc_refs {
	struct strmap plain;   /* digests recorded at their own key */
	struct strmap located; /* recorded locations */
	struct strmap uploads; /* names of uploads in progress */
};
int gc_refs_load(struct store *st, struct gc_refs *r);
/* Whether a listed object is kept; strays (neither a blob nor an upload's) are always kept. */
int gc_refs_keep(const struct gc_refs *r, const struct blob_entry *e);
void gc_refs_release(struct gc_refs *r);
/* The empty blob at its own key: what readiness probes write again and again, never garbage. */
int gc_probe_object(const struct blob_entry *e);
/*
 * gc_run() for a store whose blobs are in an object store (full), or only
 * its orphans and stale uploads (gc_purge_orphans(), for fsck --repair).
 * Takes the run lock itself. Same returns as gc_run().
 */
int gc_remote_run(struct store *st, const struct gc_opts *o, struct gc_report *out, int full);

#endif
