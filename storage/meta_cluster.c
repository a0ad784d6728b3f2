/*
 * meta_cluster: what the cluster shape adds to blobs and uploads: a blob's
 * recorded location (an object store's key when it is not derived from the
 * digest), the blob backend's upload state with a version for
 * compare-and-set, the lease that gives one request of one node exclusive
 * use of an upload, and a cheap liveness query.
 */
#include <string.h>

#include "err.h"
#include "meta.h"
#include "meta_internal.h"

static const struct meta_query q_linked_at = { .id = MS_CL_LINKED_AT, .sql =
	"SELECT b.size, b.location FROM repos r"
	" JOIN blob_links l ON l.repo_id = r.id AND l.digest = ?2"
	" JOIN blobs b ON b.digest = l.digest"
	" WHERE r.name = ?1" };
static const struct meta_query q_location = { .id = MS_CL_LOCATION, .sql =
	"SELECT location FROM blobs WHERE digest = ?1" };
static const struct meta_query q_blob_insert = { .id = MS_CL_BLOB_INSERT, .sql =
	"INSERT INTO blobs(digest, size, created_ms, location) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT(digest) DO NOTHING" };
static const struct meta_query q_upload_insert = { .id = MS_CL_UPLOAD_INSERT, .sql =
	"INSERT INTO uploads(id, repo_id, created_ms, updated_ms, state) VALUES (?1, ?2, ?3, ?3, ?4)"
	" ON CONFLICT(id) DO NOTHING" };
static const struct meta_query q_upload_get = { .id = MS_CL_UPLOAD_GET, .sql =
	"SELECT u.state, u.state_version, u.lease_ms FROM uploads u JOIN repos r ON r.id = u.repo_id"
	" WHERE u.id = ?1 AND r.name = ?2" };
/* taken only when free (or its holder's lease ran out): one request of the cluster at a time */
static const struct meta_query q_lease = { .id = MS_CL_LEASE, .sql =
	"UPDATE uploads SET lease_ms = ?3, state_version = state_version + 1"
	" WHERE id = ?1 AND repo_id = (SELECT id FROM repos WHERE name = ?2) AND lease_ms <= ?4"
	" RETURNING state, state_version" };
static const struct meta_query q_state_put = { .id = MS_CL_STATE_PUT, .sql =
	"UPDATE uploads SET state = ?3, state_version = state_version + 1, updated_ms = ?4"
	" WHERE id = ?1 AND state_version = ?2 RETURNING state_version" };
static const struct meta_query q_lease_set = { .id = MS_CL_LEASE_END, .sql =
	"UPDATE uploads SET lease_ms = ?3, state_version = state_version + 1"
	" WHERE id = ?1 AND state_version = ?2 RETURNING state_version" };
static const struct meta_query q_upload_forget = { .id = MS_CL_UPLOAD_DELETE, .sql =
	"DELETE FROM uploads WHERE id = ?1" };
static const struct meta_query q_upload_exists = { .id = MS_CL_UPLOAD_EXISTS, .sql =
	"SELECT 1 FROM uploads WHERE id = ?1" };
/* reads a page of a real table: the database file (or server) answers, not only the connection */
static const struct meta_query q_ping = { .id = MS_CL_PING, .sql = "SELECT count(*) FROM (SELECT 1 FROM repos LIMIT 1) x" };

/* Runs a cached statement whose parameters bind sets, putting its first row through row; 1 for a row, 0 for none. */
static int one_row(struct meta_conn *c, const struct meta_query *q, void (*bind)(struct db_stmt *s, const void *a),
		   const void *barg, void (*row)(struct db_stmt *s, void *a), void *rarg)
{
	struct db_stmt *s;
	int rc = meta_stmt(c, q, &s);
	if (rc)
		return rc;
	bind(s, barg);
	rc = meta_step(c, s);
	if (rc == 1) {
		if (row)
			row(s, rarg);
		int end = meta_exec(c, s);
		if (end)
			rc = end;
	}
	meta_stmt_done(c, q, s);
	return rc;
}

/* A location column into a buffer (left empty for NULL). */
static void take_loc(struct db_stmt *s, int col, struct buf *loc)
{
	const char *t = db_col_text(s, col);
	if (loc) {
		buf_reset(loc);
		if (t)
			buf_adds(loc, t);
	}
}

struct linked_row {
	int64_t *size;
	struct buf *loc;
};

static int linked_row(struct db_stmt *s, void *arg)
{
	struct linked_row *lr = arg;
	if (lr->size)
		*lr->size = db_col_int64(s, 0);
	take_loc(s, 1, lr->loc);
	return 1;
}

int meta_blob_linked_at(struct meta *m, const char *repo, const struct digest *d, int64_t *size, struct buf *loc)
{
	char ds[DIGEST_STR_MAX];
	struct meta_texts t = { 2, { repo, digest_str(d, ds) } };
	struct linked_row lr = { size, loc };
	int rc = meta_each(m, &q_linked_at, meta_bind_texts, &t, linked_row, &lr);
	return rc < 0 ? rc : rc ? 0 : E_BLOB_UNKNOWN;
}

static int location_row(struct db_stmt *s, void *arg)
{
	take_loc(s, 0, arg);
	return 1;
}

int meta_blob_location(struct meta *m, const struct digest *d, struct buf *loc, int *found)
{
	char ds[DIGEST_STR_MAX];
	int rc = meta_each(m, &q_location, meta_bind_text1, digest_str(d, ds), location_row, loc);
	if (rc < 0)
		return rc;
	*found = rc;
	return 0;
}

/* ---- blobs recorded with a location ---- */

struct link_at {
	const char *repo, *id, *ds, *loc;
	int64_t size, version;
	struct buf *kept;
};

static void bind_blob_insert(struct db_stmt *s, const void *arg)
{
	const struct link_at *w = arg;
	db_bind_text(s, 1, w->ds);
	db_bind_int64(s, 2, w->size);
	db_bind_int64(s, 3, meta_now_ms());
	db_bind_text(s, 4, w->loc && *w->loc ? w->loc : NULL);
}

static void kept_row(struct db_stmt *s, void *arg)
{
	take_loc(s, 0, arg);
}

/* Records the blob at w->loc unless known (then its location stays), links it, and reports what is recorded. */
static int link_at(struct meta_conn *c, const struct link_at *w)
{
	int64_t repo_id;
	int rc = meta_repo_id(c, w->repo, 1, &repo_id);
	if (!rc)
		rc = one_row(c, &q_blob_insert, bind_blob_insert, w, NULL, NULL);
	if (!rc)
		rc = meta_link_blob(c, repo_id, w->ds, w->size, meta_now_ms());
	if (!rc)
		rc = one_row(c, &q_location, meta_bind_text1, w->ds, kept_row, w->kept);
	return rc == 1 ? 0 : rc ? rc : E_INTERNAL;
}

static int link_at_tx(struct meta_conn *c, void *arg)
{
	return link_at(c, arg);
}

int meta_blob_link_at(struct meta *m, const char *repo, const struct digest *d, int64_t size, const char *loc, struct buf *kept)
{
	char ds[DIGEST_STR_MAX];
	struct link_at w = { .repo = repo, .ds = digest_str(d, ds), .loc = loc, .size = size, .kept = kept };
	return meta_tx_run(m, link_at_tx, &w);
}

/* ---- upload state ---- */

struct up_create {
	const char *id, *repo;
	const void *state;
	size_t len;
	int64_t repo_id;
};

static void bind_up_insert(struct db_stmt *s, const void *arg)
{
	const struct up_create *u = arg;
	db_bind_text(s, 1, u->id);
	db_bind_int64(s, 2, u->repo_id);
	db_bind_int64(s, 3, meta_now_ms());
	db_bind_blob(s, 4, u->state, u->len);
}

static int up_create_tx(struct meta_conn *c, void *arg)
{
	struct up_create *u = arg;
	int rc = meta_repo_id(c, u->repo, 1, &u->repo_id);
	if (!rc)
		rc = one_row(c, &q_upload_insert, bind_up_insert, u, NULL, NULL);
	/* ids are random: a clash is a caller bug or a replay */
	if (!rc && !db_changes(c->db))
		rc = E_EXISTS;
	return rc;
}

int meta_upload_create_state(struct meta *m, const char *id, const char *repo, const void *state, size_t len)
{
	struct up_create u = { id, repo, state, len, 0 };
	if (!len)
		return meta_upload_create(m, id, repo);
	return meta_tx_run(m, up_create_tx, &u);
}

struct up_row {
	struct buf *state;
	int64_t *version, *lease_ms;
};

static void take_state(struct db_stmt *s, int col, struct buf *state)
{
	size_t len = 0;
	const void *p = db_col_blob(s, col, &len);
	buf_reset(state);
	if (p && len)
		buf_add(state, p, len);
}

static int up_row(struct db_stmt *s, void *arg)
{
	struct up_row *r = arg;
	take_state(s, 0, r->state);
	*r->version = db_col_int64(s, 1);
	if (r->lease_ms)
		*r->lease_ms = db_col_int64(s, 2);
	return 1;
}

int meta_upload_get(struct meta *m, const char *id, const char *repo, struct buf *state, int64_t *version, int64_t *lease_ms)
{
	struct meta_texts t = { 2, { id, repo } };
	struct up_row r = { state, version, lease_ms };
	int rc = meta_each(m, &q_upload_get, meta_bind_texts, &t, up_row, &r);
	return rc < 0 ? rc : rc ? 0 : E_BLOB_UPLOAD_UNKNOWN;
}

/* Why a conditional update of upload id changed nothing: another request has it, or it is gone. */
static int lost_why(struct meta_conn *c, const char *id)
{
	int rc = one_row(c, &q_upload_exists, meta_bind_text1, id, NULL, NULL);
	return rc < 0 ? rc : rc ? E_UPLOAD_BUSY : E_BLOB_UPLOAD_UNKNOWN;
}

struct lease {
	const char *id, *repo;
	int64_t now_ms, until_ms;
	struct buf *state;
	int64_t version;
};

static void bind_lease(struct db_stmt *s, const void *arg)
{
	const struct lease *l = arg;
	db_bind_text(s, 1, l->id);
	db_bind_text(s, 2, l->repo);
	db_bind_int64(s, 3, l->until_ms);
	db_bind_int64(s, 4, l->now_ms);
}

static void lease_row(struct db_stmt *s, void *arg)
{
	struct lease *l = arg;
	take_state(s, 0, l->state);
	l->version = db_col_int64(s, 1);
}

static int lease_tx(struct meta_conn *c, void *arg)
{
	struct lease *l = arg;
	buf_reset(l->state);
	int rc = one_row(c, &q_lease, bind_lease, l, lease_row, l);
	if (rc == 0) {
		/* a lease of another request: busy; else the upload is not repo's or gone */
		rc = lost_why(c, l->id);
		if (rc == E_UPLOAD_BUSY && meta_upload_get(c->m, l->id, l->repo, l->state, &l->version, NULL))
			rc = E_BLOB_UPLOAD_UNKNOWN;
	}
	return rc == 1 ? 0 : rc;
}

int meta_upload_lease(struct meta *m, const char *id, const char *repo, int64_t now_ms, int64_t until_ms, struct buf *state,
		      int64_t *version)
{
	struct lease l = { id, repo, now_ms, until_ms, state, 0 };
	int rc = meta_tx_run(m, lease_tx, &l);
	*version = rc ? 0 : l.version;
	return rc;
}

struct state_put {
	const char *id;
	int64_t version;
	const void *state;
	size_t len;
	int64_t out;
};

static void bind_state_put(struct db_stmt *s, const void *arg)
{
	const struct state_put *p = arg;
	db_bind_text(s, 1, p->id);
	db_bind_int64(s, 2, p->version);
	db_bind_blob(s, 3, p->state, p->len);
	db_bind_int64(s, 4, meta_now_ms());
}

static void version_row(struct db_stmt *s, void *arg)
{
	*(int64_t *)arg = db_col_int64(s, 0);
}

static int state_put_tx(struct meta_conn *c, void *arg)
{
	struct state_put *p = arg;
	int rc = one_row(c, &q_state_put, bind_state_put, p, version_row, &p->out);
	if (rc == 0)
		rc = lost_why(c, p->id);
	return rc == 1 ? 0 : rc;
}

int meta_upload_state_put(struct meta *m, const char *id, int64_t *version, const void *state, size_t len)
{
	struct state_put p = { id, *version, state, len, 0 };
	int rc = meta_tx_run(m, state_put_tx, &p);
	if (!rc)
		*version = p.out;
	return rc;
}

struct lease_set {
	const char *id;
	int64_t version, until_ms, out;
};

static void bind_lease_set(struct db_stmt *s, const void *arg)
{
	const struct lease_set *l = arg;
	db_bind_text(s, 1, l->id);
	db_bind_int64(s, 2, l->version);
	db_bind_int64(s, 3, l->until_ms);
}

static int lease_set_tx(struct meta_conn *c, void *arg)
{
	struct lease_set *l = arg;
	int rc = one_row(c, &q_lease_set, bind_lease_set, l, version_row, &l->out);
	if (rc == 0)
		rc = lost_why(c, l->id);
	return rc == 1 ? 0 : rc;
}

int meta_upload_lease_renew(struct meta *m, const char *id, int64_t *version, int64_t until_ms)
{
	struct lease_set l = { id, *version, until_ms, 0 };
	int rc = meta_tx_run(m, lease_set_tx, &l);
	if (!rc)
		*version = l.out;
	return rc;
}

int meta_upload_lease_end(struct meta *m, const char *id, int64_t version)
{
	return meta_upload_lease_renew(m, id, &version, 0);
}

static void version_of(struct db_stmt *s, void *arg)
{
	*(int64_t *)arg = db_col_int64(s, 1);
}

static int commit_at_tx(struct meta_conn *c, void *arg)
{
	const struct link_at *w = arg;
	struct meta_texts t = { 2, { w->id, w->repo } };
	int64_t version = -1;
	int rc = one_row(c, &q_upload_get, meta_bind_texts, &t, version_of, &version);
	if (rc == 0)
		return E_BLOB_UPLOAD_UNKNOWN;
	if (rc < 0)
		return rc;
	/* another request took the upload since ours did: it decides now */
	if (version != w->version)
		return E_UPLOAD_BUSY;
	if ((rc = link_at(c, w)))
		return rc;
	rc = one_row(c, &q_upload_forget, meta_bind_text1, w->id, NULL, NULL);
	return rc == 1 ? 0 : rc;
}

int meta_upload_commit_at(struct meta *m, const char *id, const char *repo, const struct digest *d, int64_t size, int64_t version,
			  const char *loc, struct buf *kept)
{
	char ds[DIGEST_STR_MAX];
	struct link_at w = { .repo = repo, .id = id, .ds = digest_str(d, ds), .loc = loc, .size = size,
			     .version = version, .kept = kept };
	return meta_tx_run(m, commit_at_tx, &w);
}

int meta_ping(struct meta *m)
{
	int rc = meta_each(m, &q_ping, NULL, NULL, meta_first_int64, NULL);
	return rc < 0 ? rc : 0;
}
