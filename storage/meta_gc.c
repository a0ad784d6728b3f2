/* meta_gc: the queries of garbage collection and of the integrity check, and their re-checking deletes. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "meta.h"
#include "meta_internal.h"
#include "xalloc.h"

static const struct meta_query q_gc_repos = { .id = MS_GC_REPOS, .sql = "SELECT id, name FROM repos ORDER BY id" };
/* Pushed = created, or the manifest's bytes linked again by a later push of the same manifest. */
static const struct meta_query q_gc_manifests = { .id = MS_GC_MANIFESTS, .sql =
	"SELECT m.digest, m.subject, m.size,"
	" CASE WHEN m.created_ms > coalesce(l.linked_ms, 0) THEN m.created_ms ELSE coalesce(l.linked_ms, 0) END,"
	" EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest)"
	" FROM manifests m LEFT JOIN blob_links l ON l.repo_id = m.repo_id AND l.digest = m.digest"
	" WHERE m.repo_id = ?1" };
static const struct meta_query q_gc_history = { .id = MS_GC_HISTORY, .sql =
	"SELECT old_digest, new_digest FROM tag_history WHERE repo_id = ?1 AND time_ms >= ?2" };
static const struct meta_query q_gc_refs = { .id = MS_GC_REFS, .sql =
	"SELECT manifest, kind, digest FROM manifest_refs WHERE repo_id = ?1 AND kind IN (0, 1, 2)" };
static const struct meta_query q_gc_links = { .id = MS_GC_LINKS, .sql =
	"SELECT l.digest, b.size, l.linked_ms FROM blob_links l JOIN blobs b ON b.digest = l.digest"
	" WHERE l.repo_id = ?1" };
/* Everything that keeps one manifest, read inside the deleting transaction. */
static const struct meta_query q_gc_manifest_check = { .id = MS_GC_MANIFEST_CHECK, .sql =
	"SELECT m.subject IS NOT NULL AND EXISTS (SELECT 1 FROM manifests s"
	"   WHERE s.repo_id = m.repo_id AND s.digest = m.subject),"
	" EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest),"
	" EXISTS (SELECT 1 FROM manifest_refs r WHERE r.digest = m.digest AND r.repo_id = m.repo_id AND r.kind = 2),"
	" (SELECT CASE WHEN m.created_ms > coalesce(max(l.linked_ms), 0) THEN m.created_ms"
	"   ELSE coalesce(max(l.linked_ms), 0) END FROM blob_links l"
	"   WHERE l.repo_id = m.repo_id AND l.digest = m.digest)"
	" FROM manifests m WHERE m.repo_id = ?1 AND m.digest = ?2" };
static const struct meta_query q_gc_refs_delete = { .id = MS_GC_REFS_DELETE, .sql =
	"DELETE FROM manifest_refs WHERE repo_id = ?1 AND manifest = ?2" };
static const struct meta_query q_gc_manifest_delete = { .id = MS_GC_MANIFEST_DELETE, .sql =
	"DELETE FROM manifests WHERE repo_id = ?1 AND digest = ?2" };
/* Everything that keeps one link; no row when there is no link. */
static const struct meta_query q_gc_link_check = { .id = MS_GC_LINK_CHECK, .sql =
	"SELECT l.linked_ms,"
	" EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = l.repo_id AND m.digest = l.digest),"
	" EXISTS (SELECT 1 FROM manifest_refs r WHERE r.digest = l.digest AND r.repo_id = l.repo_id"
	"   AND r.kind IN (0, 1))"
	" FROM blob_links l WHERE l.repo_id = ?1 AND l.digest = ?2" };
static const struct meta_query q_gc_link_delete = { .id = MS_GC_LINK_DELETE, .sql =
	"DELETE FROM blob_links WHERE repo_id = ?1 AND digest = ?2" };
static const struct meta_query q_gc_unlinked = { .id = MS_GC_UNLINKED, .sql =
	"SELECT b.digest, b.size FROM blobs b"
	" WHERE NOT EXISTS (SELECT 1 FROM blob_links l WHERE l.digest = b.digest)" };
static const struct meta_query q_gc_blob_delete = { .id = MS_GC_BLOB_DELETE, .sql =
	"DELETE FROM blobs WHERE digest = ?1"
	" AND NOT EXISTS (SELECT 1 FROM blob_links l WHERE l.digest = ?1)" };
static const struct meta_query q_gc_blob_state = { .id = MS_GC_BLOB_STATE, .sql =
	"SELECT (SELECT count(*) FROM blob_links l WHERE l.digest = b.digest) FROM blobs b WHERE b.digest = ?1" };
static const struct meta_query q_gc_upload_known = { .id = MS_GC_UPLOAD_KNOWN, .sql =
	"SELECT 1 FROM uploads WHERE id = ?1" };
static const struct meta_query q_gc_upload_expire = { .id = MS_GC_UPLOAD_EXPIRE, .sql =
	"DELETE FROM uploads WHERE id = ?1 AND updated_ms < ?2" };
static const struct meta_query q_fsck_blobs = { .id = MS_FSCK_BLOBS, .sql =
	"SELECT b.digest, b.size, (SELECT count(*) FROM blob_links l WHERE l.digest = b.digest)"
	" FROM blobs b ORDER BY b.digest" };
static const struct meta_query q_fsck_manifests = { .id = MS_FSCK_MANIFESTS, .sql =
	"SELECT r.name, m.digest, m.media_type,"
	" EXISTS (SELECT 1 FROM blob_links l WHERE l.repo_id = m.repo_id AND l.digest = m.digest)"
	" FROM manifests m JOIN repos r ON r.id = m.repo_id ORDER BY r.name, m.digest" };
static const struct meta_query q_fsck_dangling = { .id = MS_FSCK_DANGLING, .sql =
	"SELECT p.name, r.manifest, r.kind, r.digest FROM manifest_refs r JOIN repos p ON p.id = r.repo_id"
	" WHERE (r.kind IN (0, 1) AND NOT EXISTS (SELECT 1 FROM blob_links l"
	"   WHERE l.repo_id = r.repo_id AND l.digest = r.digest))"
	" OR (r.kind = 2 AND NOT EXISTS (SELECT 1 FROM manifests m"
	"   WHERE m.repo_id = r.repo_id AND m.digest = r.digest))"
	" ORDER BY p.name, r.manifest, r.digest" };
static const struct meta_query q_fsck_uploads = { .id = MS_FSCK_UPLOADS, .sql =
	"SELECT id, updated_ms FROM uploads ORDER BY id" };
/*
 * SQLite's own checks of its file. On PostgreSQL checking pages needs the
 * amcheck extension, a superuser's tool, so that check passes; its
 * constraints hold on every statement unless a session disabled triggers
 * (session_replication_role, a restore with --disable-triggers), so the
 * foreign keys are asked as queries, one per relation, in the shape of
 * SQLite's foreign_key_check (table, row, parent).
 */
static const struct meta_query q_fsck_integrity = { .id = MS_FSCK_INTEGRITY, .sql = "PRAGMA integrity_check",
	.pg = "SELECT 'ok'" };
static const struct meta_query q_fsck_foreign_keys = { .id = MS_FSCK_FOREIGN_KEYS, .sql = "PRAGMA foreign_key_check",
	.pg = "SELECT 'blob_links', NULL::bigint, 'blobs' FROM blob_links l"
	" WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = l.digest)"
	" UNION ALL SELECT 'blob_links', NULL, 'repos' FROM blob_links l"
	" WHERE NOT EXISTS (SELECT 1 FROM repos r WHERE r.id = l.repo_id)"
	" UNION ALL SELECT 'manifests', NULL, 'repos' FROM manifests m"
	" WHERE NOT EXISTS (SELECT 1 FROM repos r WHERE r.id = m.repo_id)"
	" UNION ALL SELECT 'manifest_refs', NULL, 'manifests' FROM manifest_refs f"
	" WHERE NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = f.repo_id AND m.digest = f.manifest)"
	" UNION ALL SELECT 'tags', NULL, 'manifests' FROM tags t"
	" WHERE NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = t.repo_id AND m.digest = t.digest)"
	" UNION ALL SELECT 'tag_history', h.id, 'repos' FROM tag_history h"
	" WHERE NOT EXISTS (SELECT 1 FROM repos r WHERE r.id = h.repo_id)"
	" UNION ALL SELECT 'uploads', NULL, 'repos' FROM uploads u"
	" WHERE NOT EXISTS (SELECT 1 FROM repos r WHERE r.id = u.repo_id)"
	" UNION ALL SELECT 'blob_content', NULL, 'blobs' FROM blob_content c"
	" WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = c.digest)" };

/* ---- helpers ---- */

/* The digests a tag pointed at within the history window, sorted for bsearch. */
struct digest_set {
	char **v;
	size_t n, alloc;
};

static void dset_add(struct digest_set *s, const char *d)
{
	if (!d)
		return;
	s->v = xgrow(s->v, &s->alloc, s->n, sizeof(*s->v));
	s->v[s->n++] = xstrdup(d);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dset_has(const struct digest_set *s, const char *d)
{
	return s->n && bsearch(&d, s->v, s->n, sizeof(*s->v), cmp_str) != NULL;
}

static void dset_release(struct digest_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int history_row(struct db_stmt *s, void *arg)
{
	dset_add(arg, db_col_text(s, 0));
	dset_add(arg, db_col_text(s, 1));
	return 0;
}

static int history_load(struct meta *m, int64_t repo_id, int64_t since_ms, struct digest_set *out)
{
	struct meta_ints p = { 2, { repo_id, since_ms } };
	int rc = meta_each(m, &q_gc_history, meta_bind_ints, &p, history_row, out);
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_str);
	return rc;
}

/* The one rule for roots, shared by the mark (meta_gc_manifests) and the re-check before deleting. */
static int is_root(int tagged, int in_history, int64_t pushed_ms, const struct meta_gc_cutoffs *cut)
{
	return tagged || in_history || pushed_ms >= cut->young_ms;
}

/* Runs a write q(repo_id, text). */
static int exec_id(struct meta_conn *c, const struct meta_query *q, int64_t repo_id, const char *text)
{
	struct db_stmt *s;
	int rc = meta_stmt(c, q, &s);
	if (rc)
		return rc;
	db_bind_int64(s, 1, repo_id);
	db_bind_text(s, 2, text);
	rc = meta_exec(c, s);
	meta_stmt_done(c, q, s);
	return rc;
}

/* Reads one row of q(text) into the int64 columns out[0..n-1]; *found says whether there was one. */
static int row_text(struct meta_conn *c, const struct meta_query *q, int64_t repo_id, int with_repo,
		    const char *text, int64_t *out, int n, int *found)
{
	struct db_stmt *s;
	int rc = meta_stmt(c, q, &s);
	if (rc)
		return rc;
	if (with_repo) {
		db_bind_int64(s, 1, repo_id);
		db_bind_text(s, 2, text);
	} else {
		db_bind_text(s, 1, text);
	}
	rc = meta_step(c, s);
	for (int i = 0; rc == 1 && i < n; i++)
		out[i] = db_col_int64(s, i);
	meta_stmt_done(c, q, s);
	if (rc < 0)
		return rc;
	*found = rc;
	return 0;
}

/* ---- marking ---- */

/* The caller's callback, for the row functions below. */
struct sink {
	union {
		meta_gc_repo_cb repo;
		meta_gc_manifest_cb manifest;
		meta_gc_ref_cb ref;
		meta_gc_link_cb link;
		meta_gc_blob_cb blob;
		meta_fsck_blob_cb fsck_blob;
		meta_fsck_manifest_cb fsck_manifest;
		meta_fsck_ref_cb fsck_ref;
		meta_fsck_upload_cb fsck_upload;
	} cb;
	void *ctx;
	/* meta_gc_manifests(): what makes a manifest a root */
	const struct meta_gc_cutoffs *cut;
	const struct digest_set *hist;
};

static int repo_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	return k->cb.repo(k->ctx, db_col_int64(s, 0), db_col_text(s, 1));
}

int meta_gc_repos(struct meta *m, meta_gc_repo_cb cb, void *ctx)
{
	struct sink k = { .cb.repo = cb, .ctx = ctx };
	return meta_each(m, &q_gc_repos, NULL, NULL, repo_row, &k);
}

static int manifest_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	struct meta_gc_manifest m = {
		.digest = db_col_text(s, 0),
		.subject = db_col_text(s, 1),
		.size = db_col_int64(s, 2),
	};
	if (!m.digest)
		return E_IO;
	m.root = is_root((int)db_col_int64(s, 4), dset_has(k->hist, m.digest), db_col_int64(s, 3), k->cut);
	return k->cb.manifest(k->ctx, &m);
}

int meta_gc_manifests(struct meta *m, int64_t repo_id, const struct meta_gc_cutoffs *cut, meta_gc_manifest_cb cb, void *ctx)
{
	struct digest_set hist = { 0 };
	struct sink k = { .cb.manifest = cb, .ctx = ctx, .cut = cut, .hist = &hist };
	int rc = history_load(m, repo_id, cut->history_ms, &hist);
	if (!rc)
		rc = meta_each(m, &q_gc_manifests, meta_bind_int64_1, &repo_id, manifest_row, &k);
	dset_release(&hist);
	return rc;
}

static int ref_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	const char *m = db_col_text(s, 0), *d = db_col_text(s, 2);
	return m && d ? k->cb.ref(k->ctx, m, (int)db_col_int64(s, 1), d) : 0;
}

int meta_gc_refs(struct meta *m, int64_t repo_id, meta_gc_ref_cb cb, void *ctx)
{
	struct sink k = { .cb.ref = cb, .ctx = ctx };
	return meta_each(m, &q_gc_refs, meta_bind_int64_1, &repo_id, ref_row, &k);
}

static int link_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	const char *d = db_col_text(s, 0);
	return d ? k->cb.link(k->ctx, d, db_col_int64(s, 1), db_col_int64(s, 2)) : 0;
}

int meta_gc_links(struct meta *m, int64_t repo_id, meta_gc_link_cb cb, void *ctx)
{
	struct sink k = { .cb.link = cb, .ctx = ctx };
	return meta_each(m, &q_gc_links, meta_bind_int64_1, &repo_id, link_row, &k);
}

/* ---- sweeping: every delete re-checks, inside its transaction, that nothing keeps the row now ---- */

/* Whether manifest d of repo_id is dead now; *dead is 0 also when it is gone already. */
static int manifest_dead(struct meta_conn *c, int64_t repo_id, const char *d, const struct meta_gc_cutoffs *cut,
			 const struct digest_set *hist, int *dead)
{
	int64_t v[4];
	int found = 0;
	int rc = row_text(c, &q_gc_manifest_check, repo_id, 1, d, v, 4, &found);
	*dead = 0;
	if (rc || !found)
		return rc;
	if (v[0] || v[2]) /* kept by its subject or by an index listing it */
		return 0;
	*dead = !is_root((int)v[1], dset_has(hist, d), v[3], cut);
	return 0;
}

/* Deletes the link of d to repo_id unless a manifest of the repository still needs it (or, with grace, it is fresh). */
static int link_sweep(struct meta_conn *c, int64_t repo_id, const char *d, const int64_t *grace_ms, int *deleted)
{
	int64_t v[3];
	int found = 0;
	int rc = row_text(c, &q_gc_link_check, repo_id, 1, d, v, 3, &found);
	*deleted = 0;
	if (rc || !found || v[1] || v[2] || (grace_ms && v[0] >= *grace_ms))
		return rc;
	rc = exec_id(c, &q_gc_link_delete, repo_id, d);
	*deleted = !rc;
	return rc;
}

/* The arguments of the GC's deleting transactions. */
struct gc_write {
	int64_t repo_id;
	const char *const *digests;
	size_t n;
	const struct meta_gc_cutoffs *cut;
	int64_t grace_ms;
	unsigned char *done;
};

static int gc_manifests_tx(struct meta_conn *c, void *arg)
{
	const struct gc_write *w = arg;
	struct digest_set hist = { 0 };
	memset(w->done, 0, w->n);
	int rc = history_load(c->m, w->repo_id, w->cut->history_ms, &hist);
	for (size_t i = 0; i < w->n && !rc; i++) {
		const char *d = w->digests[i];
		int dead = 0, unlinked = 0;
		rc = manifest_dead(c, w->repo_id, d, w->cut, &hist, &dead);
		if (rc || !dead)
			continue;
		/* references before the manifest: the foreign key is checked on every statement */
		rc = exec_id(c, &q_gc_refs_delete, w->repo_id, d);
		if (!rc)
			rc = exec_id(c, &q_gc_manifest_delete, w->repo_id, d);
		/* the manifest's own bytes go with it, whatever their age, unless used as a blob */
		if (!rc)
			rc = link_sweep(c, w->repo_id, d, NULL, &unlinked);
		if (!rc)
			w->done[i] = (unsigned char)(META_GC_DONE_MANIFEST | (unlinked ? META_GC_DONE_LINK : 0));
	}
	dset_release(&hist);
	return rc;
}

int meta_gc_manifests_delete(struct meta *m, int64_t repo_id, const char *const *digests, size_t n,
			     const struct meta_gc_cutoffs *cut, unsigned char *done)
{
	struct gc_write w = { .repo_id = repo_id, .digests = digests, .n = n, .cut = cut, .done = done };
	memset(done, 0, n);
	int rc = meta_tx_run(m, gc_manifests_tx, &w);
	if (rc)
		memset(done, 0, n);
	return rc;
}

static int gc_links_tx(struct meta_conn *c, void *arg)
{
	const struct gc_write *w = arg;
	int64_t grace_ms = w->grace_ms;
	int rc = 0;
	memset(w->done, 0, w->n);
	for (size_t i = 0; i < w->n && !rc; i++) {
		int deleted = 0;
		rc = link_sweep(c, w->repo_id, w->digests[i], &grace_ms, &deleted);
		w->done[i] = (unsigned char)deleted;
	}
	return rc;
}

int meta_gc_links_delete(struct meta *m, int64_t repo_id, const char *const *digests, size_t n, int64_t grace_ms,
			 unsigned char *done)
{
	struct gc_write w = { .repo_id = repo_id, .digests = digests, .n = n, .grace_ms = grace_ms, .done = done };
	memset(done, 0, n);
	int rc = meta_tx_run(m, gc_links_tx, &w);
	if (rc)
		memset(done, 0, n);
	return rc;
}

static int blob_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	const char *d = db_col_text(s, 0);
	return d ? k->cb.blob(k->ctx, d, db_col_int64(s, 1)) : 0;
}

int meta_gc_unlinked_blobs(struct meta *m, meta_gc_blob_cb cb, void *ctx)
{
	struct sink k = { .cb.blob = cb, .ctx = ctx };
	return meta_each(m, &q_gc_unlinked, NULL, NULL, blob_row, &k);
}

static int gc_blobs_tx(struct meta_conn *c, void *arg)
{
	const struct gc_write *w = arg;
	struct db_stmt *s;
	int rc = 0;
	memset(w->done, 0, w->n);
	for (size_t i = 0; i < w->n && !rc; i++) {
		rc = meta_stmt(c, &q_gc_blob_delete, &s);
		if (rc)
			break;
		db_bind_text(s, 1, w->digests[i]);
		rc = meta_exec(c, s);
		w->done[i] = !rc && (int)db_changes(c->db) > 0;
		meta_stmt_done(c, &q_gc_blob_delete, s);
	}
	return rc;
}

int meta_gc_blobs_delete(struct meta *m, const char *const *digests, size_t n, unsigned char *done)
{
	struct gc_write w = { .digests = digests, .n = n, .done = done };
	memset(done, 0, n);
	int rc = meta_tx_run(m, gc_blobs_tx, &w);
	if (rc)
		memset(done, 0, n);
	return rc;
}

int meta_gc_blob_state(struct meta *m, const char *digest, int *row, int64_t *links)
{
	struct meta_conn *c;
	int64_t v[1] = { 0 };
	int rc = meta_conn_get(m, &c);
	if (!rc)
		rc = row_text(c, &q_gc_blob_state, 0, 0, digest, v, 1, row);
	if (!rc && links)
		*links = *row ? v[0] : 0;
	return rc;
}

int meta_gc_upload_known(struct meta *m, const char *id, int *known)
{
	struct meta_conn *c;
	int rc = meta_conn_get(m, &c);
	if (!rc)
		rc = row_text(c, &q_gc_upload_known, 0, 0, id, NULL, 0, known);
	return rc;
}

int meta_gc_upload_expire(struct meta *m, const char *id, int64_t older_than_ms, int *deleted)
{
	struct meta_text_int a = { id, older_than_ms };
	int changes = 0;
	int rc = meta_write(m, &q_gc_upload_expire, meta_bind_text_int, &a, &changes, NULL);
	*deleted = !rc && changes > 0;
	return rc;
}

/* ---- integrity checks ---- */

static int fsck_blob_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	const char *d = db_col_text(s, 0);
	return d ? k->cb.fsck_blob(k->ctx, d, db_col_int64(s, 1), db_col_int64(s, 2)) : 0;
}

int meta_fsck_blobs(struct meta *m, meta_fsck_blob_cb cb, void *ctx)
{
	struct sink k = { .cb.fsck_blob = cb, .ctx = ctx };
	return meta_each(m, &q_fsck_blobs, NULL, NULL, fsck_blob_row, &k);
}

static int fsck_manifest_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	const char *repo = db_col_text(s, 0), *d = db_col_text(s, 1), *mt = db_col_text(s, 2);
	return repo && d ? k->cb.fsck_manifest(k->ctx, repo, d, mt ? mt : "", (int)db_col_int64(s, 3)) : 0;
}

int meta_fsck_manifests(struct meta *m, meta_fsck_manifest_cb cb, void *ctx)
{
	struct sink k = { .cb.fsck_manifest = cb, .ctx = ctx };
	return meta_each(m, &q_fsck_manifests, NULL, NULL, fsck_manifest_row, &k);
}

static int fsck_ref_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	const char *repo = db_col_text(s, 0), *m = db_col_text(s, 1), *d = db_col_text(s, 3);
	return repo && m && d ? k->cb.fsck_ref(k->ctx, repo, m, (int)db_col_int64(s, 2), d) : 0;
}

int meta_fsck_dangling_refs(struct meta *m, meta_fsck_ref_cb cb, void *ctx)
{
	struct sink k = { .cb.fsck_ref = cb, .ctx = ctx };
	return meta_each(m, &q_fsck_dangling, NULL, NULL, fsck_ref_row, &k);
}

static int fsck_upload_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	const char *id = db_col_text(s, 0);
	return id ? k->cb.fsck_upload(k->ctx, id, db_col_int64(s, 1)) : 0;
}

int meta_fsck_uploads(struct meta *m, meta_fsck_upload_cb cb, void *ctx)
{
	struct sink k = { .cb.fsck_upload = cb, .ctx = ctx };
	return meta_each(m, &q_fsck_uploads, NULL, NULL, fsck_upload_row, &k);
}

/* meta_fsck_database()'s caller and the problem line being passed on. */
struct line_sink {
	meta_str_cb cb;
	void *ctx;
	struct buf line;
};

static int integrity_row(struct db_stmt *s, void *arg)
{
	struct line_sink *k = arg;
	const char *t = db_col_text(s, 0);
	if (t && !strcmp(t, "ok"))
		return 0;
	buf_reset(&k->line);
	buf_addf(&k->line, "integrity_check: %s", t ? t : "(null)");
	return k->cb(k->ctx, k->line.buf);
}

static int foreign_key_row(struct db_stmt *s, void *arg)
{
	struct line_sink *k = arg;
	const char *table = db_col_text(s, 0), *parent = db_col_text(s, 2);
	buf_reset(&k->line);
	buf_addf(&k->line, "foreign_key_check: a row of %s refers to a missing row of %s",
		 table ? table : "?", parent ? parent : "?");
	if (!db_col_is_null(s, 1))
		buf_addf(&k->line, " (rowid %lld)", (long long)db_col_int64(s, 1));
	return k->cb(k->ctx, k->line.buf);
}

int meta_fsck_database(struct meta *m, meta_str_cb cb, void *ctx)
{
	struct line_sink k = { cb, ctx, BUF_INIT };
	int rc = meta_each(m, &q_fsck_integrity, NULL, NULL, integrity_row, &k);
	if (!rc)
		rc = meta_each(m, &q_fsck_foreign_keys, NULL, NULL, foreign_key_row, &k);
	buf_release(&k.line);
	return rc;
}
