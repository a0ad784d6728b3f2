/* meta_migrate: every table's rows out of one database and into another, for berth migrate. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "meta_internal.h"
#include "xalloc.h"

/* Statement slots per table: export, insert, key, same, replace, count. */
#define MIG_SLOTS 6
_Static_assert(MS_MIG + MIG_SLOTS * META_MIG_TABLES + 3 <= MS_MIG_LAST + 1, "slots for every statement");
#define SLOT(t, k) ((enum meta_stmt_id)(MS_MIG + (t) * MIG_SLOTS + (k)))

/* The repository id of the name bound as ?1 (or ?2 for tag history). */
#define REPO1 "(SELECT id FROM repos WHERE name = ?1)"
#define REPO2 "(SELECT id FROM repos WHERE name = ?2)"

/*
 * One table: its columns' kinds (i integer, t text, b bytes), the
 * statements, and which row columns each statement's ?1, ?2 ... take (the
 * insert takes the first n_ins). key finds a row with the same key, same
 * the same row (what matters of it: a tag's digest, an id's owner);
 * replace (tags only) moves a tag.
 */
struct mig_table {
	const char *name, *kinds;
	struct meta_query exp, ins, key, same, replace, count;
	int n_ins;
	signed char key_cols[5], same_cols[5], replace_cols[5];
};

#define Q(t, k, text) { .id = SLOT(t, k), .sql = text }
#define END -1

static const struct mig_table tables[META_MIG_TABLES] = {
	[META_MIG_REPOS] = {
		"repositories", "ti",
		Q(0, 0, "SELECT name, created_ms FROM repos ORDER BY id"),
		Q(0, 1, "INSERT INTO repos(name, created_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING"),
		Q(0, 2, "SELECT count(*) FROM repos WHERE name = ?1"),
		Q(0, 3, "SELECT count(*) FROM repos WHERE name = ?1"),
		{ 0 }, Q(0, 5, "SELECT count(*) FROM repos"),
		2, { 0, END }, { 0, END }, { END },
	},
	[META_MIG_BLOBS] = {
		"blobs", "tiiti",
		Q(1, 0, "SELECT digest, size, created_ms, location, "
			"EXISTS (SELECT 1 FROM blob_content c WHERE c.digest = b.digest) FROM blobs b ORDER BY digest"),
		Q(1, 1, "INSERT INTO blobs(digest, size, created_ms, location) VALUES (?1, ?2, ?3, ?4) "
			"ON CONFLICT DO NOTHING"),
		Q(1, 2, "SELECT count(*) FROM blobs WHERE digest = ?1"),
		Q(1, 3, "SELECT count(*) FROM blobs WHERE digest = ?1 AND size = ?2"),
		{ 0 }, Q(1, 5, "SELECT count(*) FROM blobs"),
		4, { 0, END }, { 0, 1, END }, { END },
	},
	[META_MIG_CONTENT] = {
		"manifest contents", "tb",
		Q(2, 0, "SELECT digest, content FROM blob_content ORDER BY digest"),
		Q(2, 1, "INSERT INTO blob_content(digest, content) VALUES (?1, ?2) ON CONFLICT DO NOTHING"),
		Q(2, 2, "SELECT count(*) FROM blob_content WHERE digest = ?1"),
		Q(2, 3, "SELECT count(*) FROM blob_content WHERE digest = ?1"),
		{ 0 }, Q(2, 5, "SELECT count(*) FROM blob_content"),
		2, { 0, END }, { 0, END }, { END },
	},
	[META_MIG_LINKS] = {
		"blob links", "tti",
		Q(3, 0, "SELECT r.name, l.digest, l.linked_ms FROM blob_links l JOIN repos r ON r.id = l.repo_id "
			"ORDER BY r.name, l.digest"),
		Q(3, 1, "INSERT INTO blob_links(repo_id, digest, linked_ms) VALUES (" REPO1 ", ?2, ?3) "
			"ON CONFLICT DO NOTHING"),
		Q(3, 2, "SELECT count(*) FROM blob_links WHERE repo_id = " REPO1 " AND digest = ?2"),
		Q(3, 3, "SELECT count(*) FROM blob_links WHERE repo_id = " REPO1 " AND digest = ?2"),
		{ 0 }, Q(3, 5, "SELECT count(*) FROM blob_links"),
		3, { 0, 1, END }, { 0, 1, END }, { END },
	},
	[META_MIG_MANIFESTS] = {
		"manifests", "ttitttti",
		Q(4, 0, "SELECT r.name, m.digest, m.size, m.media_type, m.artifact_type, m.subject, m.annotations, "
			"m.created_ms FROM manifests m JOIN repos r ON r.id = m.repo_id ORDER BY r.name, m.digest"),
		Q(4, 1, "INSERT INTO manifests(repo_id, digest, size, media_type, artifact_type, subject, annotations, "
			"created_ms) VALUES (" REPO1 ", ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING"),
		Q(4, 2, "SELECT count(*) FROM manifests WHERE repo_id = " REPO1 " AND digest = ?2"),
		Q(4, 3, "SELECT count(*) FROM manifests WHERE repo_id = " REPO1 " AND digest = ?2"),
		{ 0 }, Q(4, 5, "SELECT count(*) FROM manifests"),
		8, { 0, 1, END }, { 0, 1, END }, { END },
	},
	[META_MIG_REFS] = {
		"manifest references", "ttit",
		Q(5, 0, "SELECT r.name, f.manifest, f.kind, f.digest FROM manifest_refs f JOIN repos r ON r.id = f.repo_id "
			"ORDER BY r.name, f.manifest, f.kind, f.digest"),
		Q(5, 1, "INSERT INTO manifest_refs(repo_id, manifest, kind, digest) VALUES (" REPO1 ", ?2, ?3, ?4) "
			"ON CONFLICT DO NOTHING"),
		Q(5, 2, "SELECT count(*) FROM manifest_refs WHERE repo_id = " REPO1
			" AND manifest = ?2 AND kind = ?3 AND digest = ?4"),
		Q(5, 3, "SELECT count(*) FROM manifest_refs WHERE repo_id = " REPO1
			" AND manifest = ?2 AND kind = ?3 AND digest = ?4"),
		{ 0 }, Q(5, 5, "SELECT count(*) FROM manifest_refs"),
		4, { 0, 1, 2, 3, END }, { 0, 1, 2, 3, END }, { END },
	},
	[META_MIG_TAGS] = {
		"tags", "ttti",
		Q(6, 0, "SELECT r.name, t.name, t.digest, t.updated_ms FROM tags t JOIN repos r ON r.id = t.repo_id "
			"ORDER BY r.name, t.name"),
		Q(6, 1, "INSERT INTO tags(repo_id, name, digest, updated_ms) VALUES (" REPO1 ", ?2, ?3, ?4) "
			"ON CONFLICT DO NOTHING"),
		Q(6, 2, "SELECT count(*) FROM tags WHERE repo_id = " REPO1 " AND name = ?2"),
		Q(6, 3, "SELECT count(*) FROM tags WHERE repo_id = " REPO1 " AND name = ?2 AND digest = ?3"),
		Q(6, 4, "UPDATE tags SET digest = ?3, updated_ms = ?4 WHERE repo_id = " REPO1 " AND name = ?2"),
		Q(6, 5, "SELECT count(*) FROM tags"),
		4, { 0, 1, END }, { 0, 1, 2, END }, { 0, 1, 2, 3, END },
	},
	[META_MIG_HISTORY] = {
		"tag history", "ittttittt",
		Q(7, 0, "SELECT h.id, r.name, h.tag, h.old_digest, h.new_digest, h.time_ms, h.actor, h.how, h.client "
			"FROM tag_history h JOIN repos r ON r.id = h.repo_id ORDER BY h.id"),
		Q(7, 1, "INSERT INTO tag_history(id, repo_id, tag, old_digest, new_digest, time_ms, actor, how, client) "
			"VALUES (?1, " REPO2 ", ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING"),
		Q(7, 2, "SELECT count(*) FROM tag_history WHERE id = ?1"),
		Q(7, 3, "SELECT count(*) FROM tag_history WHERE id = ?1 AND repo_id = " REPO2
			" AND tag = ?3 AND time_ms = ?4"),
		{ 0 }, Q(7, 5, "SELECT count(*) FROM tag_history"),
		9, { 0, END }, { 0, 1, 2, 5, END }, { END },
	},
	[META_MIG_PATS] = {
		"personal access tokens", "ittbtiiii",
		Q(8, 0, "SELECT id, owner, name, secret_hash, scopes, created_ms, expires_ms, last_used_ms, revoked_ms "
			"FROM pats ORDER BY id"),
		Q(8, 1, "INSERT INTO pats(id, owner, name, secret_hash, scopes, created_ms, expires_ms, last_used_ms, "
			"revoked_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING"),
		Q(8, 2, "SELECT count(*) FROM pats WHERE id = ?1"),
		Q(8, 3, "SELECT count(*) FROM pats WHERE id = ?1 AND secret_hash = ?2"),
		{ 0 }, Q(8, 5, "SELECT count(*) FROM pats"),
		9, { 0, END }, { 0, 3, END }, { END },
	},
	[META_MIG_AUDIT] = {
		"audit events", "iittttt",
		Q(9, 0, "SELECT id, time_ms, actor, action, repo, detail, client FROM audit_events ORDER BY id"),
		Q(9, 1, "INSERT INTO audit_events(id, time_ms, actor, action, repo, detail, client) "
			"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING"),
		Q(9, 2, "SELECT count(*) FROM audit_events WHERE id = ?1"),
		Q(9, 3, "SELECT count(*) FROM audit_events WHERE id = ?1 AND time_ms = ?2 AND action = ?3"),
		{ 0 }, Q(9, 5, "SELECT count(*) FROM audit_events"),
		7, { 0, END }, { 0, 1, 3, END }, { END },
	},
};

/*
 * Rows inserted with their ids leave PostgreSQL's identity sequences
 * behind: the next row would take an id already used. SQLite's
 * AUTOINCREMENT follows explicit ids by itself, so there the statement
 * does nothing.
 */
#define SEQ(k, table)                                                                                      \
	{ .id = (enum meta_stmt_id)(MS_MIG + MIG_SLOTS * META_MIG_TABLES + (k)), .sql = "SELECT 0",        \
	  .pg = "SELECT setval(pg_get_serial_sequence('" table "', 'id'), max(id)) FROM " table }
static const struct meta_query q_seqs[] = { SEQ(0, "tag_history"), SEQ(1, "pats"), SEQ(2, "audit_events") };

const char *meta_mig_table_name(enum meta_mig_table t)
{
	return tables[t].name;
}

/* ---- rows ---- */

struct export {
	const struct mig_table *t;
	int (*cb)(void *ctx, const struct meta_mig_row *r);
	void *ctx;
};

static int export_row(struct db_stmt *s, void *arg)
{
	const struct export *x = arg;
	struct meta_mig_row r;
	memset(&r, 0, sizeof(r));
	for (int i = 0; x->t->kinds[i]; i++) {
		struct meta_mig_val *v = &r.v[i];
		if ((v->null = db_col_is_null(s, i)))
			continue;
		if (x->t->kinds[i] == 'i') {
			v->i = db_col_int64(s, i);
		} else if (x->t->kinds[i] == 't') {
			v->p = db_col_text(s, i);
			v->len = strlen(v->p);
		} else {
			v->p = db_col_blob(s, i, &v->len);
		}
	}
	return x->cb(x->ctx, &r);
}

int meta_mig_export(struct meta *m, enum meta_mig_table t, int (*cb)(void *ctx, const struct meta_mig_row *r),
		    void *ctx)
{
	struct export x = { &tables[t], cb, ctx };
	return meta_each(m, &tables[t].exp, NULL, NULL, export_row, &x);
}

void meta_mig_row_copy(struct meta_mig_row *dst, const struct meta_mig_row *src)
{
	size_t total = 0;
	*dst = *src;
	for (int i = 0; i < META_MIG_COLS; i++)
		if (src->v[i].p)
			total += src->v[i].len + 1;
	unsigned char *p = dst->owned = total ? xmalloc(total) : NULL;
	for (int i = 0; i < META_MIG_COLS; i++) {
		if (!src->v[i].p)
			continue;
		memcpy(p, src->v[i].p, src->v[i].len);
		p[src->v[i].len] = '\0';
		dst->v[i].p = p;
		p += src->v[i].len + 1;
	}
}

void meta_mig_row_release(struct meta_mig_row *r)
{
	free(r->owned);
	memset(r, 0, sizeof(*r));
}

/* Binds the row columns cols (ended by END) as ?1, ?2 ... */
static void bind_cols(struct db_stmt *s, const struct mig_table *t, const struct meta_mig_row *r,
		      const signed char *cols)
{
	for (int i = 0; cols[i] != END; i++) {
		const struct meta_mig_val *v = &r->v[cols[i]];
		if (v->null)
			db_bind_null(s, i + 1);
		else if (t->kinds[cols[i]] == 'i')
			db_bind_int64(s, i + 1, v->i);
		else if (t->kinds[cols[i]] == 't')
			db_bind_text(s, i + 1, v->p);
		else
			db_bind_blob(s, i + 1, v->p, v->len);
	}
}

/* Runs q with r's cols bound on c: *n its first column (a count), or the rows it changed (n_changed). */
static int run_on(struct meta_conn *c, const struct mig_table *t, const struct meta_query *q,
		  const struct meta_mig_row *r, const signed char *cols, int64_t *n, int64_t *n_changed)
{
	struct db_stmt *s;
	int rc = meta_stmt(c, q, &s);
	if (rc)
		return rc;
	bind_cols(s, t, r, cols);
	rc = meta_step(c, s);
	if (rc == 1) {
		if (n)
			*n = db_col_int64(s, 0);
		rc = meta_exec(c, s);
	}
	if (!rc && n_changed)
		*n_changed = db_changes(c->db);
	meta_stmt_done(c, q, s);
	return rc;
}

/* What row r is in c's database (with replace: a tag pointing elsewhere is moved). */
static int row_state(struct meta_conn *c, const struct mig_table *t, const struct meta_mig_row *r, int replace,
		     int *state)
{
	int64_t n = 0;
	int rc = run_on(c, t, &t->key, r, t->key_cols, &n, NULL);
	if (rc || !n) {
		*state = META_MIG_ABSENT;
		return rc;
	}
	if ((rc = run_on(c, t, &t->same, r, t->same_cols, &n, NULL)))
		return rc;
	*state = n ? META_MIG_SAME : META_MIG_CONFLICT;
	if (*state == META_MIG_CONFLICT && replace && t->replace.sql) {
		rc = run_on(c, t, &t->replace, r, t->replace_cols, NULL, NULL);
		*state = META_MIG_REPLACED;
	}
	return rc;
}

struct import {
	const struct mig_table *t;
	const struct meta_mig_row *rows;
	size_t n;
	int replace;
	unsigned char *out;
};

static int import_tx(struct meta_conn *c, void *arg)
{
	const struct import *x = arg;
	signed char ins_cols[META_MIG_COLS + 1];
	int rc = 0;
	for (int i = 0; i < x->t->n_ins; i++)
		ins_cols[i] = (signed char)i;
	ins_cols[x->t->n_ins] = END;
	for (size_t i = 0; i < x->n && !rc; i++) {
		int64_t changed = 0;
		int state;
		if ((rc = run_on(c, x->t, &x->t->ins, &x->rows[i], ins_cols, NULL, &changed)))
			break;
		if (changed) {
			x->out[i] = META_MIG_ADDED;
			continue;
		}
		/* nothing inserted: there, or another unique key (a token's hash or name) taken */
		rc = row_state(c, x->t, &x->rows[i], x->replace, &state);
		x->out[i] = (unsigned char)(state == META_MIG_ABSENT ? META_MIG_CONFLICT : state);
	}
	return rc;
}

int meta_mig_import(struct meta *m, enum meta_mig_table t, const struct meta_mig_row *rows, size_t n, int replace,
		    unsigned char *out)
{
	struct import x = { &tables[t], rows, n, replace, out };
	return n ? meta_tx_run(m, import_tx, &x) : 0;
}

int meta_mig_check(struct meta *m, enum meta_mig_table t, const struct meta_mig_row *r, int *state)
{
	struct meta_conn *c;
	int rc = meta_conn_get(m, &c);
	*state = META_MIG_ABSENT;
	return rc ? rc : row_state(c, &tables[t], r, 0, state);
}

int meta_mig_count(struct meta *m, enum meta_mig_table t, int64_t *n)
{
	*n = 0;
	int rc = meta_each(m, &tables[t].count, NULL, NULL, meta_first_int64, n);
	return rc < 0 ? rc : 0;
}

int meta_mig_finish(struct meta *m)
{
	for (size_t i = 0; i < sizeof(q_seqs) / sizeof(q_seqs[0]); i++) {
		int rc = meta_each(m, &q_seqs[i], NULL, NULL, meta_first_int64, NULL);
		if (rc < 0)
			return rc;
	}
	return 0;
}
