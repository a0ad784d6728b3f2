/*
 * store_backend: what a blob backend implements for the store (store.h),
 * and the store's own insides that storage/ modules (gc, fsck, import,
 * export) reach. Nothing outside storage/ includes this header.
 *
 * A blob backend holds bytes only: finished blobs by digest, and uploads
 * in progress. Metadata (which repository links what, upload sessions,
 * manifests) stays in meta. Backends: the local directory (blob_fs.c) and
 * an S3 object store (blob_s3_backend*.c). An object store's finished blobs may
 * live at a location it chooses (returned by write and up_finish, recorded
 * by the store in metadata and handed back to stat/open/remove/presign;
 * NULL or "" means "derived from the digest"), and its uploads may be
 * stateless between requests: everything it needs to continue one
 * (multipart id, part tags, the serialised running hash) is an opaque
 * byte string the backend returns from up_create and up_flush and the
 * store persists with the upload's metadata row, passing it back to
 * up_acquire, up_size and up_remove.
 *
 * Contracts shared by every operation: 0 or a negative E_* code;
 * E_BLOB_UNKNOWN for a blob the backend does not hold,
 * E_BLOB_UPLOAD_UNKNOWN for an upload it does not hold; E_NO_SPACE,
 * E_IO, E_STORE_UNAVAILABLE, E_STORE for failures. Operations on the
 * backend are thread-safe; a struct blob_upload is used by one thread
 * between up_acquire and up_release.
 */
#ifndef BERTH_STORE_BACKEND_H
#define BERTH_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "digest.h"
#include "store.h"

struct blob_backend;
/* One upload in exclusive use by one request. */
struct blob_upload;

/*
 * An object as a listing shows it (for garbage collection and fsck): a
 * blob under its digest's own key (digest set), a blob at a location of
 * the backend's choosing (location: what the store records for it), or an
 * object of an upload in progress (upload: the name up_name() gives that
 * upload's state; a blob completed in place has both). None of the three:
 * a stray object in the backend's space.
 */
struct blob_entry {
	const struct digest *digest;
	const char *label;           /* the backend's name for it: for messages, and drop() */
	int64_t size, mtime_ms;      /* mtime_ms 0: the listing does not tell */
	const char *location;
	const char *upload;
};

struct blob_backend_ops {
	const char *name; /* "fs", "s3" */
	/*
	 * Blobs may live at locations the store records (looked up before
	 * stat/open/presign), and uploads keep a state (persisted by the store,
	 * with a lease per request since any node may serve the next one).
	 * Both 0 for a local directory: no extra read or write per request.
	 */
	int locates, keeps_state;
	void (*close)(struct blob_backend *be);
	/* A small write and removal: can the backend store anything now? detail says why not. */
	int (*probe)(struct blob_backend *be, struct buf *detail);

	/* ---- finished blobs ---- */
	int (*stat)(struct blob_backend *be, const struct digest *d, const char *loc, int64_t *size);
	/*
	 * Opens d for reading into rd (size, and fd when the bytes are a local
	 * file; else rd->be_state for read). reader_release frees be_state.
	 */
	int (*open)(struct blob_backend *be, const struct digest *d, const char *loc, struct store_reader *rd);
	int (*read)(struct blob_backend *be, struct store_reader *rd, int64_t off, void *buf, size_t len, size_t *n);
	/* For remote readers (NULL otherwise): store_reader_stream() and store_reader_pull(). */
	int (*stream)(struct blob_backend *be, struct store_reader *rd, int64_t first, int64_t len);
	int (*pull)(struct blob_backend *be, struct store_reader *rd, void *buf, size_t max, size_t *n,
		    const struct store_waiter *w);
	/* When the backend last found its store unreachable (ms since the epoch), 0 once it answered again; may be NULL. */
	int64_t (*down_since)(struct blob_backend *be);
	void (*reader_release)(struct blob_backend *be, struct store_reader *rd);
	/* Stores len bytes the caller hashed as d, durably; an existing blob is kept. *loc (may be NULL): where. */
	int (*write)(struct blob_backend *be, const struct digest *d, const void *data, size_t len, struct buf *loc);
	/* Missing is not an error. */
	int (*remove)(struct blob_backend *be, const struct digest *d, const char *loc);
	/* A URL to fetch d for ttl_s seconds; NULL when the backend has none (E_UNSUPPORTED). */
	int (*presign)(struct blob_backend *be, const struct digest *d, const char *loc, int ttl_s, struct buf *url);
	/* Every object of the backend's space, in no particular order; NULL when the backend cannot list. */
	int (*list)(struct blob_backend *be, int (*cb)(void *ctx, const struct blob_entry *e), void *ctx);
	/* Deletes an object a listing showed, by its label; missing is not an error. With list. */
	int (*drop)(struct blob_backend *be, const char *label);

	/* ---- uploads (id: STORE_UPLOAD_ID_LEN hex, made by the store) ---- */
	/* A new, empty upload; *state: what to persist with it (may stay empty). */
	int (*up_create)(struct blob_backend *be, const char *id, struct buf *state);
	/* Exclusive use of id (E_UPLOAD_BUSY when another request of this process holds it). */
	int (*up_acquire)(struct blob_backend *be, const char *id, const void *state, size_t state_len,
			  struct blob_upload **out);
	int64_t (*up_offset)(const struct blob_upload *u);
	void (*up_expect)(struct blob_upload *u, int64_t len);
	int (*up_write)(struct blob_upload *u, const void *data, size_t len);
	/*
	 * Stores the buffered bytes. When the state to persist changed, it is
	 * set in *state (left empty otherwise); the store saves it before it
	 * acknowledges the bytes.
	 */
	int (*up_flush)(struct blob_upload *u, struct buf *state);
	/* Checks the content against want and makes it blob want; *size its size, *loc (may be NULL) where. */
	int (*up_finish)(struct blob_upload *u, const struct digest *want, int64_t *size, struct buf *loc);
	/* Gives up what this request wrote (see store_upload_release()). */
	int (*up_rewind)(struct blob_upload *u);
	void (*up_release)(struct blob_upload *u);
	/* Whether the session's activity is due to be recorded (NULL: after every request). */
	int (*up_touch_due)(struct blob_upload *u, int64_t every_ms);
	int (*up_size)(struct blob_backend *be, const char *id, const void *state, size_t state_len, int64_t *size);
	int (*up_remove)(struct blob_backend *be, const char *id, const void *state, size_t state_len);
	/* The name listings give the objects of the upload with this state (blob_entry.upload); with list. */
	int (*up_name)(struct blob_backend *be, const void *state, size_t state_len, struct buf *name);
};

struct blob_backend {
	const struct blob_backend_ops *ops;
};

/* The store's insides (store.c). */
struct blobstore;
struct store {
	char *root;
	struct blob_backend *blobs;
	struct meta *meta; /* the metadata database, opened and closed with the store */
	int pg; /* metadata on PostgreSQL */
	struct reserve *reserve; /* store_reserve()'s, or NULL */
};

/*
 * The local blob directory when the store's blob backend is one (garbage
 * collection's and fsck's file steps, import's streaming into temporary
 * files use it directly); NULL otherwise.
 */
const struct blobstore *store_blobstore(const struct store *st);

/*
 * Links blob d (size bytes, which the backend holds) to repo; the import
 * links the blobs it streamed in this way.
 */
int store_blob_link(struct store *st, const char *repo, const struct digest *d, int64_t size);
/* Whether the backend holds d (0, E_BLOB_UNKNOWN). */
int store_blob_held(struct store *st, const struct digest *d, int64_t *size);
/*
 * Reads the bytes of stored blob d into out (reset first), wherever they
 * live (the database for manifests, the backend otherwise), checking its
 * digest again: E_MANIFEST_TOO_BIG beyond max bytes, E_BLOB_UNKNOWN,
 * E_DIGEST_INVALID (corrupt in storage), E_IO.
 */
int store_blob_read_all(struct store *st, const struct digest *d, size_t max, struct buf *out);
/* Opens stored blob d wherever its bytes live, without a repository check. */
int store_blob_open_any(struct store *st, const struct digest *d, struct store_reader *rd);
/* Reads stored blob d wherever its bytes live and hashes them (with d's algorithm) into *got. */
int store_blob_rehash(struct store *st, const struct digest *d, struct digest *got);

#endif
