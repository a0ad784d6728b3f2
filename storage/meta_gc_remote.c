/*
 * meta_gc_remote: what garbage collection and fsck read and write when
 * blobs live in an object store (recorded locations, upload states), and
 * the one-collection-at-a-time lock of a cluster.
 */
#include <string.h>

#include "err.h"
#include "meta.h"
#include "meta_internal.h"

static const struct meta_query q_unlinked = { .id = MS_GR_UNLINKED, .sql =
	"SELECT b.digest, b.size, b.created_ms, b.location,"
	" EXISTS (SELECT 1 FROM blob_content c WHERE c.digest = b.digest)"
	" FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM blob_links l WHERE l.digest = b.digest)" };
static const struct meta_query q_blob_refs = { .id = MS_GR_BLOB_REFS, .sql =
	"SELECT b.digest, b.location FROM blobs b"
	" WHERE NOT EXISTS (SELECT 1 FROM blob_content c WHERE c.digest = b.digest)" };
static const struct meta_query q_upload_states = { .id = MS_GR_UPLOAD_STATES, .sql =
	"SELECT id, state, updated_ms FROM uploads ORDER BY id" };
/* never an upload a request holds now: its node is writing parts of it */
static const struct meta_query q_upload_expire = { .id = MS_GR_UPLOAD_EXPIRE, .sql =
	"DELETE FROM uploads WHERE id = ?1 AND updated_ms < ?2 AND lease_ms <= ?3 RETURNING state" };
static const struct meta_query q_fsck_blobs = { .id = MS_GR_FSCK_BLOBS, .sql =
	"SELECT b.digest, b.size, (SELECT count(*) FROM blob_links l WHERE l.digest = b.digest), b.location,"
	" EXISTS (SELECT 1 FROM blob_content c WHERE c.digest = b.digest)"
	" FROM blobs b ORDER BY b.digest" };
/*
 * A session-level advisory lock of the calling thread's connection: held
 * until released or until the connection ends (a process that dies lets it
 * go). The key is BERTH_APP_ID + 1 (the migrations lock BERTH_APP_ID).
 * SQLite has no such lock: never run there (the caller locks a file).
 */
static const struct meta_query q_lock = { .id = MS_GR_LOCK, .sql = "SELECT 0",
	.pg = "SELECT pg_try_advisory_lock(1651668073)::int" };
static const struct meta_query q_unlock = { .id = MS_GR_UNLOCK, .sql = "SELECT 0",
	.pg = "SELECT pg_advisory_unlock(1651668073)::int" };

struct sink {
	union {
		meta_gc_unlinked_cb unlinked;
		meta_gc_ref_row_cb ref;
		meta_gc_state_cb state;
		meta_fsck_blob_at_cb fsck;
	} cb;
	void *ctx;
};

static const char *loc_of(struct db_stmt *s, int col)
{
	const char *t = db_col_text(s, col);
	return t && *t ? t : NULL;
}

static int unlinked_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	const char *d = db_col_text(s, 0);
	struct meta_gc_unlinked u = { d, db_col_int64(s, 1), db_col_int64(s, 2), loc_of(s, 3),
				      (int)db_col_int64(s, 4) };
	return d ? k->cb.unlinked(k->ctx, &u) : 0;
}

int meta_gc_unlinked_at(struct meta *m, meta_gc_unlinked_cb cb, void *ctx)
{
	struct sink k = { .cb.unlinked = cb, .ctx = ctx };
	return meta_each(m, &q_unlinked, NULL, NULL, unlinked_row, &k);
}

static int ref_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	const char *d = db_col_text(s, 0);
	return d ? k->cb.ref(k->ctx, d, loc_of(s, 1)) : 0;
}

int meta_gc_blob_refs(struct meta *m, meta_gc_ref_row_cb cb, void *ctx)
{
	struct sink k = { .cb.ref = cb, .ctx = ctx };
	return meta_each(m, &q_blob_refs, NULL, NULL, ref_row, &k);
}

static int state_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	const char *id = db_col_text(s, 0);
	size_t len = 0;
	const void *state = db_col_blob(s, 1, &len);
	return id ? k->cb.state(k->ctx, id, state, state ? len : 0, db_col_int64(s, 2)) : 0;
}

int meta_gc_upload_states(struct meta *m, meta_gc_state_cb cb, void *ctx)
{
	struct sink k = { .cb.state = cb, .ctx = ctx };
	return meta_each(m, &q_upload_states, NULL, NULL, state_row, &k);
}

struct expire {
	const char *id;
	int64_t older_than_ms, now_ms;
	struct buf *state;
	int deleted;
};

static int expire_tx(struct meta_conn *c, void *arg)
{
	struct expire *x = arg;
	struct db_stmt *s;
	int rc = meta_stmt(c, &q_upload_expire, &s);
	if (rc)
		return rc;
	db_bind_text(s, 1, x->id);
	db_bind_int64(s, 2, x->older_than_ms);
	db_bind_int64(s, 3, x->now_ms);
	rc = meta_step(c, s);
	x->deleted = rc == 1;
	if (rc == 1) {
		size_t len = 0;
		const void *p = db_col_blob(s, 0, &len);
		buf_reset(x->state);
		if (p && len)
			buf_add(x->state, p, len);
		rc = meta_exec(c, s);
	}
	meta_stmt_done(c, &q_upload_expire, s);
	return rc;
}

int meta_gc_upload_expire_state(struct meta *m, const char *id, int64_t older_than_ms, int64_t now_ms, struct buf *state,
				int *deleted)
{
	struct expire x = { id, older_than_ms, now_ms, state, 0 };
	int rc = meta_tx_run(m, expire_tx, &x);
	*deleted = !rc && x.deleted;
	return rc;
}

static int fsck_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	const char *d = db_col_text(s, 0);
	struct meta_fsck_blob_at b = { d, db_col_int64(s, 1), db_col_int64(s, 2), loc_of(s, 3),
				       (int)db_col_int64(s, 4) };
	return d ? k->cb.fsck(k->ctx, &b) : 0;
}

int meta_fsck_blobs_at(struct meta *m, meta_fsck_blob_at_cb cb, void *ctx)
{
	struct sink k = { .cb.fsck = cb, .ctx = ctx };
	return meta_each(m, &q_fsck_blobs, NULL, NULL, fsck_row, &k);
}

/* Runs the lock statement q on the calling thread's connection; *got its answer. */
static int lock_call(struct meta *m, const struct meta_query *q, int *got)
{
	struct meta_conn *c;
	int64_t v = 0;
	int rc = meta_conn_get(m, &c);
	*got = 0;
	if (rc)
		return rc;
	if (c->engine != DB_PG)
		return E_UNSUPPORTED;
	rc = meta_each(m, q, NULL, NULL, meta_first_int64, &v);
	if (rc < 0)
		return rc;
	*got = rc == 1 && v == 1;
	return 0;
}

int meta_gc_lock(struct meta *m)
{
	int got;
	int rc = lock_call(m, &q_lock, &got);
	return rc ? rc : got ? 0 : E_BUSY;
}

void meta_gc_unlock(struct meta *m)
{
	int released;
	(void)lock_call(m, &q_unlock, &released);
}
