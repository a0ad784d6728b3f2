/* meta_blobs: blob records, per-repository blob links and upload sessions. */

#include "err.h"
#include "meta.h"
#include "meta_internal.h"

static const struct meta_query q_blob_linked = { .id = MS_BLOB_LINKED, .sql =
	"SELECT b.size FROM repos r"
	" JOIN blob_links l ON l.repo_id = r.id AND l.digest = ?2"
	" JOIN blobs b ON b.digest = l.digest"
	" WHERE r.name = ?1" };
/* Known means linked somewhere: an unlinked row may be swept by GC at any moment. */
static const struct meta_query q_blob_known = { .id = MS_BLOB_KNOWN, .sql =
	"SELECT b.size FROM blobs b WHERE b.digest = ?1"
	" AND EXISTS (SELECT 1 FROM blob_links l WHERE l.digest = ?1)" };
static const struct meta_query q_blob_insert = { .id = MS_BLOB_INSERT, .sql =
	"INSERT INTO blobs(digest, size, created_ms) VALUES (?1, ?2, ?3)"
	" ON CONFLICT(digest) DO NOTHING" };
static const struct meta_query q_link_upsert = { .id = MS_LINK_UPSERT, .sql =
	"INSERT INTO blob_links(repo_id, digest, linked_ms) VALUES (?1, ?2, ?3)"
	" ON CONFLICT(repo_id, digest) DO UPDATE SET linked_ms = excluded.linked_ms" };
static const struct meta_query q_link_delete = { .id = MS_LINK_DELETE, .sql =
	"DELETE FROM blob_links"
	" WHERE repo_id = (SELECT id FROM repos WHERE name = ?1) AND digest = ?2" };
static const struct meta_query q_blob_repos = { .id = MS_BLOB_REPOS, .sql =
	"SELECT r.name FROM blob_links l JOIN repos r ON r.id = l.repo_id"
	" WHERE l.digest = ?1 ORDER BY r.name" };
static const struct meta_query q_upload_insert = { .id = MS_UPLOAD_INSERT, .sql =
	"INSERT INTO uploads(id, repo_id, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3)"
	" ON CONFLICT(id) DO NOTHING" };
static const struct meta_query q_upload_check = { .id = MS_UPLOAD_CHECK, .sql =
	"SELECT 1 FROM uploads u JOIN repos r ON r.id = u.repo_id"
	" WHERE u.id = ?1 AND r.name = ?2" };
static const struct meta_query q_upload_delete = { .id = MS_UPLOAD_DELETE, .sql =
	"DELETE FROM uploads WHERE id = ?1" };
static const struct meta_query q_upload_touch = { .id = MS_UPLOAD_TOUCH, .sql =
	"UPDATE uploads SET updated_ms = ?2 WHERE id = ?1" };
static const struct meta_query q_uploads_stale = { .id = MS_UPLOADS_STALE, .sql =
	"SELECT id FROM uploads WHERE updated_ms < ?1 ORDER BY updated_ms, id" };

int meta_link_blob(struct meta_conn *c, int64_t repo_id, const char *digest, int64_t size, int64_t now)
{
	struct db_stmt *s;
	int rc = meta_stmt(c, &q_blob_insert, &s);
	if (rc)
		return rc;
	db_bind_text(s, 1, digest);
	db_bind_int64(s, 2, size);
	db_bind_int64(s, 3, now);
	rc = meta_exec(c, s);
	meta_stmt_done(c, &q_blob_insert, s);
	if (rc)
		return rc;
	rc = meta_stmt(c, &q_link_upsert, &s);
	if (rc)
		return rc;
	db_bind_int64(s, 1, repo_id);
	db_bind_text(s, 2, digest);
	db_bind_int64(s, 3, now);
	rc = meta_exec(c, s);
	meta_stmt_done(c, &q_link_upsert, s);
	return rc;
}

/* Runs q with text parameters p1 and p2 (p2 may be NULL when q has one); *found tells whether a row came back. */
static int lookup(struct meta *m, const struct meta_query *q, const char *p1, const char *p2, int *found, int64_t *col0)
{
	struct meta_texts t = { p2 ? 2 : 1, { p1, p2 } };
	int rc = meta_each(m, q, meta_bind_texts, &t, meta_first_int64, col0);
	if (rc < 0)
		return rc;
	*found = rc;
	return 0;
}

int meta_blob_linked(struct meta *m, const char *repo, const struct digest *d, int64_t *size)
{
	char ds[DIGEST_STR_MAX];
	int found;
	int rc = lookup(m, &q_blob_linked, repo, digest_str(d, ds), &found, size);
	return rc ? rc : found ? 0 : E_BLOB_UNKNOWN;
}

int meta_blob_known(struct meta *m, const struct digest *d, int64_t *size)
{
	char ds[DIGEST_STR_MAX];
	int found;
	int rc = lookup(m, &q_blob_known, digest_str(d, ds), NULL, &found, size);
	return rc ? rc : found ? 0 : E_BLOB_UNKNOWN;
}

/* The arguments of the blob and upload writes. */
struct blob_write {
	const char *repo;
	const char *id; /* upload id */
	const char *ds; /* digest string */
	int64_t size;
};

static int blob_link_tx(struct meta_conn *c, void *arg)
{
	const struct blob_write *w = arg;
	int64_t repo_id;
	int rc = meta_repo_id(c, w->repo, 1, &repo_id);
	if (!rc)
		rc = meta_link_blob(c, repo_id, w->ds, w->size, meta_now_ms());
	return rc;
}

int meta_blob_link(struct meta *m, const char *repo, const struct digest *d, int64_t size)
{
	char ds[DIGEST_STR_MAX];
	struct blob_write w = { .repo = repo, .ds = digest_str(d, ds), .size = size };
	return meta_tx_run(m, blob_link_tx, &w);
}

int meta_blob_unlink(struct meta *m, const char *repo, const struct digest *d)
{
	char ds[DIGEST_STR_MAX];
	struct meta_texts t = { 2, { repo, digest_str(d, ds) } };
	int changes = 0;
	int rc = meta_write(m, &q_link_delete, meta_bind_texts, &t, &changes, NULL);
	return rc ? rc : changes ? 0 : E_BLOB_UNKNOWN;
}

/* A caller's string callback, for str_row(). */
struct str_sink {
	meta_str_cb cb;
	void *ctx;
};

/* Passes the row's first column to the caller's callback. */
static int str_row(struct db_stmt *s, void *arg)
{
	const struct str_sink *k = arg;
	return k->cb(k->ctx, db_col_text(s, 0));
}

int meta_blob_repos(struct meta *m, const struct digest *d, meta_str_cb cb, void *ctx)
{
	char ds[DIGEST_STR_MAX];
	struct str_sink k = { cb, ctx };
	return meta_each(m, &q_blob_repos, meta_bind_text1, digest_str(d, ds), str_row, &k);
}

/* ---- uploads ---- */

static int upload_create_tx(struct meta_conn *c, void *arg)
{
	const struct blob_write *w = arg;
	struct db_stmt *s;
	int64_t repo_id;
	int changes = 0;
	int rc = meta_repo_id(c, w->repo, 1, &repo_id);
	if (!rc)
		rc = meta_stmt(c, &q_upload_insert, &s);
	if (!rc) {
		db_bind_text(s, 1, w->id);
		db_bind_int64(s, 2, repo_id);
		db_bind_int64(s, 3, meta_now_ms());
		rc = meta_exec(c, s);
		changes = (int)db_changes(c->db);
		meta_stmt_done(c, &q_upload_insert, s);
	}
	/* ids are random, so a clash means a caller bug or a replay: refuse it */
	if (!rc && !changes)
		rc = E_EXISTS;
	return rc;
}

int meta_upload_create(struct meta *m, const char *id, const char *repo)
{
	struct blob_write w = { .repo = repo, .id = id };
	return meta_tx_run(m, upload_create_tx, &w);
}

int meta_upload_check(struct meta *m, const char *id, const char *repo)
{
	int found;
	int rc = lookup(m, &q_upload_check, id, repo, &found, NULL);
	return rc ? rc : found ? 0 : E_BLOB_UPLOAD_UNKNOWN;
}

int meta_upload_delete(struct meta *m, const char *id)
{
	int changes = 0;
	int rc = meta_write(m, &q_upload_delete, meta_bind_text1, id, &changes, NULL);
	return rc ? rc : changes ? 0 : E_BLOB_UPLOAD_UNKNOWN;
}

static int upload_commit_tx(struct meta_conn *c, void *arg)
{
	const struct blob_write *w = arg;
	struct db_stmt *s;
	int64_t repo_id;
	int rc = meta_stmt(c, &q_upload_check, &s);
	if (!rc) {
		db_bind_text(s, 1, w->id);
		db_bind_text(s, 2, w->repo);
		rc = meta_step(c, s);
		meta_stmt_done(c, &q_upload_check, s);
		rc = rc == 1 ? 0 : rc == 0 ? E_BLOB_UPLOAD_UNKNOWN : rc;
	}
	if (!rc)
		rc = meta_repo_id(c, w->repo, 0, &repo_id);
	if (!rc)
		rc = meta_link_blob(c, repo_id, w->ds, w->size, meta_now_ms());
	if (!rc)
		rc = meta_stmt(c, &q_upload_delete, &s);
	if (!rc) {
		db_bind_text(s, 1, w->id);
		rc = meta_exec(c, s);
		meta_stmt_done(c, &q_upload_delete, s);
	}
	return rc;
}

int meta_upload_commit(struct meta *m, const char *id, const char *repo, const struct digest *d, int64_t size)
{
	char ds[DIGEST_STR_MAX];
	struct blob_write w = { .repo = repo, .id = id, .ds = digest_str(d, ds), .size = size };
	return meta_tx_run(m, upload_commit_tx, &w);
}

int meta_upload_touch(struct meta *m, const char *id)
{
	struct meta_text_int a = { id, meta_now_ms() };
	int changes = 0;
	int rc = meta_write(m, &q_upload_touch, meta_bind_text_int, &a, &changes, NULL);
	return rc ? rc : changes ? 0 : E_BLOB_UPLOAD_UNKNOWN;
}

int meta_uploads_stale(struct meta *m, int64_t older_than_ms, meta_str_cb cb, void *ctx)
{
	struct str_sink k = { cb, ctx };
	return meta_each(m, &q_uploads_stale, meta_bind_int64_1, &older_than_ms, str_row, &k);
}
