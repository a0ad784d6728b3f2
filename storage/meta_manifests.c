/*
 * meta_manifests: storing, resolving and deleting manifests, and moving tags
 * with their history (guarded by the caller's immutable-tag rules).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "meta.h"
#include "meta_internal.h"
#include "xalloc.h"

static const struct meta_query q_has_blob = { .id = MS_HAS_BLOB, .sql =
	"SELECT 1 FROM blob_links WHERE repo_id = ?1 AND digest = ?2" };
static const struct meta_query q_has_manifest = { .id = MS_HAS_MANIFEST, .sql =
	"SELECT 1 FROM manifests WHERE repo_id = ?1 AND digest = ?2" };
static const struct meta_query q_manifest_insert = { .id = MS_MANIFEST_INSERT, .sql =
	"INSERT INTO manifests(repo_id, digest, size, media_type, artifact_type, subject,"
	" annotations, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
	" ON CONFLICT(repo_id, digest) DO NOTHING" };
static const struct meta_query q_ref_insert = { .id = MS_REF_INSERT, .sql =
	"INSERT INTO manifest_refs(repo_id, manifest, kind, digest) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT DO NOTHING" };
static const struct meta_query q_tag_get = { .id = MS_TAG_GET, .sql =
	"SELECT digest FROM tags WHERE repo_id = ?1 AND name = ?2" };
static const struct meta_query q_tag_upsert = { .id = MS_TAG_UPSERT, .sql =
	"INSERT INTO tags(repo_id, name, digest, updated_ms) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT(repo_id, name) DO UPDATE SET digest = excluded.digest,"
	" updated_ms = excluded.updated_ms" };
static const struct meta_query q_history_insert = { .id = MS_HISTORY_INSERT, .sql =
	"INSERT INTO tag_history(repo_id, tag, old_digest, new_digest, time_ms, actor, how, client)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)" };
static const struct meta_query q_manifest_by_digest = { .id = MS_MANIFEST_BY_DIGEST, .sql =
	"SELECT m.digest, m.size, m.media_type, m.artifact_type, m.annotations, bc.content"
	" FROM repos r JOIN manifests m ON m.repo_id = r.id AND m.digest = ?2"
	" LEFT JOIN blob_content bc ON bc.digest = m.digest"
	" WHERE r.name = ?1" };
static const struct meta_query q_manifest_by_tag = { .id = MS_MANIFEST_BY_TAG, .sql =
	"SELECT m.digest, m.size, m.media_type, m.artifact_type, m.annotations, bc.content"
	" FROM repos r JOIN tags t ON t.repo_id = r.id AND t.name = ?2"
	" JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest"
	" LEFT JOIN blob_content bc ON bc.digest = m.digest"
	" WHERE r.name = ?1" };
static const struct meta_query q_tags_of_manifest = { .id = MS_TAGS_OF_MANIFEST, .sql =
	"SELECT name FROM tags WHERE repo_id = ?1 AND digest = ?2 ORDER BY name" };
static const struct meta_query q_tags_delete_for = { .id = MS_TAGS_DELETE_FOR, .sql =
	"DELETE FROM tags WHERE repo_id = ?1 AND digest = ?2" };
static const struct meta_query q_refs_delete = { .id = MS_REFS_DELETE, .sql =
	"DELETE FROM manifest_refs WHERE repo_id = ?1 AND manifest = ?2" };
static const struct meta_query q_manifest_delete = { .id = MS_MANIFEST_DELETE, .sql =
	"DELETE FROM manifests WHERE repo_id = ?1 AND digest = ?2" };
static const struct meta_query q_link_delete_id = { .id = MS_LINK_DELETE_ID, .sql =
	"DELETE FROM blob_links WHERE repo_id = ?1 AND digest = ?2" };
static const struct meta_query q_tag_delete = { .id = MS_TAG_DELETE, .sql =
	"DELETE FROM tags WHERE repo_id = ?1 AND name = ?2" };
static const struct meta_query q_content_insert = { .id = MS_CONTENT_INSERT, .sql =
	"INSERT INTO blob_content(digest, content) VALUES (?1, ?2) ON CONFLICT(digest) DO NOTHING" };
static const struct meta_query q_content_get = { .id = MS_CONTENT_GET, .sql =
	"SELECT content FROM blob_content WHERE digest = ?1" };
static const struct meta_query q_content_list = { .id = MS_CONTENT_LIST, .sql =
	"SELECT digest, content FROM blob_content ORDER BY digest" };

void meta_manifest_release(struct meta_manifest *m)
{
	free(m->media_type);
	free(m->artifact_type);
	free(m->annotations);
	free(m->content);
	m->media_type = m->artifact_type = m->annotations = NULL;
	m->content = NULL;
	m->content_len = 0;
}

/* Runs q(repo_id, text) and reports whether it returned a row. */
static int exists_id(struct meta_conn *c, const struct meta_query *q, int64_t repo_id,
		     const char *text, int *found)
{
	struct db_stmt *s;
	int rc = meta_stmt(c, q, &s);
	if (rc)
		return rc;
	db_bind_int64(s, 1, repo_id);
	db_bind_text(s, 2, text);
	rc = meta_step(c, s);
	meta_stmt_done(c, q, s);
	if (rc < 0)
		return rc;
	*found = rc;
	return 0;
}

/* Runs a write q(repo_id, text) to completion. */
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

static void change_reset(const struct meta_actor *actor)
{
	if (actor && actor->change)
		memset(actor->change, 0, sizeof(*actor->change));
}

/* Notes a history row just written in actor->change (old or new NULL for none). */
static void change_note(const struct meta_actor *actor, const char *how, const char *old_digest,
			const char *new_digest)
{
	struct meta_tag_change *ch = actor ? actor->change : NULL;
	if (!ch)
		return;
	ch->count++;
	snprintf(ch->how, sizeof(ch->how), "%s", how ? how : "");
	snprintf(ch->old_digest, sizeof(ch->old_digest), "%s", old_digest ? old_digest : "");
	snprintf(ch->new_digest, sizeof(ch->new_digest), "%s", new_digest ? new_digest : "");
}

/* E_TAG_IMMUTABLE when actor's guard refuses to let tag move or go. */
static int guard_check(const struct meta_actor *actor, const char *tag)
{
	if (actor && actor->guard && actor->guard(actor->guard_ctx, tag) >= 0)
		return E_TAG_IMMUTABLE;
	return 0;
}

/* Appends one tag history row; how overrides actor->how when not NULL. */
static int history_add(struct meta_conn *c, int64_t repo_id, const char *tag, const char *old_digest,
		       const char *new_digest, int64_t now, const struct meta_actor *actor, const char *how)
{
	struct db_stmt *s;
	int rc = meta_stmt(c, &q_history_insert, &s);
	if (rc)
		return rc;
	db_bind_int64(s, 1, repo_id);
	db_bind_text(s, 2, tag);
	db_bind_text(s, 3, old_digest);
	db_bind_text(s, 4, new_digest);
	db_bind_int64(s, 5, now);
	db_bind_text(s, 6, actor ? actor->name : NULL);
	if (!how && actor)
		how = actor->how;
	db_bind_text(s, 7, how);
	db_bind_text(s, 8, actor ? actor->client : NULL);
	rc = meta_exec(c, s);
	meta_stmt_done(c, &q_history_insert, s);
	if (!rc)
		change_note(actor, how, old_digest, new_digest);
	return rc;
}

int meta_tag_current(struct meta_conn *c, int64_t repo_id, const char *tag, char *out, int *found)
{
	struct db_stmt *s;
	int rc = meta_stmt(c, &q_tag_get, &s);
	if (rc)
		return rc;
	db_bind_int64(s, 1, repo_id);
	db_bind_text(s, 2, tag);
	rc = meta_step(c, s);
	if (rc == 1) {
		const char *t = db_col_text(s, 0);
		size_t n = t ? strlen(t) : 0;
		if (n >= DIGEST_STR_MAX) {
			log_error("meta: tag row holds an over-long digest");
			rc = E_IO;
		} else {
			memcpy(out, t ? t : "", n + 1);
		}
	}
	meta_stmt_done(c, &q_tag_get, s);
	if (rc < 0)
		return rc;
	*found = rc;
	return 0;
}

/*
 * Every non-external config/layer must be linked to the repository and every
 * child must be one of its manifests; the first one missing is named in
 * detail. Subjects may point at anything (referrers can arrive first). A
 * pull-through cache's write (how "mirror") may store an index before its
 * children: clients fetch only the platforms they run, and a child missing
 * is what fsck already calls a note (as for one a client deleted).
 */
static int check_refs(struct meta_conn *c, int64_t repo_id, const struct manifest_info *mi,
		      const struct meta_actor *actor, struct buf *detail)
{
	char ds[DIGEST_STR_MAX];
	int lazy_children = actor && actor->how && !strcmp(actor->how, "mirror");
	for (size_t i = 0; i < mi->nrefs; i++) {
		const struct manifest_ref *r = &mi->refs[i];
		int child = r->kind == REF_CHILD, found = 0;
		if (r->kind == REF_SUBJECT || (!child && r->external) || (child && lazy_children))
			continue;
		int rc = exists_id(c, child ? &q_has_manifest : &q_has_blob, repo_id,
				   digest_str(&r->digest, ds), &found);
		if (rc)
			return rc;
		if (!found) {
			if (detail)
				buf_addf(detail, "%s unknown: %s", child ? "manifest" : "blob", ds);
			return E_MANIFEST_BLOB_UNKNOWN;
		}
	}
	return 0;
}

static int ref_add(struct meta_conn *c, int64_t repo_id, const char *manifest, enum ref_kind kind,
		   const struct digest *d)
{
	struct db_stmt *s;
	char ds[DIGEST_STR_MAX];
	int rc = meta_stmt(c, &q_ref_insert, &s);
	if (rc)
		return rc;
	db_bind_int64(s, 1, repo_id);
	db_bind_text(s, 2, manifest);
	db_bind_int64(s, 3, (int64_t)kind);
	db_bind_text(s, 4, digest_str(d, ds));
	rc = meta_exec(c, s);
	meta_stmt_done(c, &q_ref_insert, s);
	return rc;
}

/*
 * Inserts the manifest row and, when it is new (*is_new), its references
 * (same digest, same bytes, same references).
 */
static int manifest_insert(struct meta_conn *c, int64_t repo_id, const char *ds, int64_t size,
			   const struct manifest_info *mi, int64_t now, int *is_new)
{
	struct db_stmt *s;
	char subject[DIGEST_STR_MAX];
	int rc = meta_stmt(c, &q_manifest_insert, &s);
	if (rc)
		return rc;
	db_bind_int64(s, 1, repo_id);
	db_bind_text(s, 2, ds);
	db_bind_int64(s, 3, size);
	db_bind_text(s, 4, mi->media_type);
	db_bind_text(s, 5, mi->artifact_type);
	db_bind_text(s, 6, mi->has_subject ? digest_str(&mi->subject, subject) : NULL);
	db_bind_text(s, 7, mi->annotations);
	db_bind_int64(s, 8, now);
	rc = meta_exec(c, s);
	*is_new = (int)db_changes(c->db) > 0;
	meta_stmt_done(c, &q_manifest_insert, s);
	if (rc || !*is_new)
		return rc;
	for (size_t i = 0; i < mi->nrefs && !rc; i++)
		rc = ref_add(c, repo_id, ds, mi->refs[i].kind, &mi->refs[i].digest);
	if (!rc && mi->has_subject)
		rc = ref_add(c, repo_id, ds, REF_SUBJECT, &mi->subject);
	return rc;
}

int meta_tag_set(struct meta_conn *c, int64_t repo_id, const char *tag, const char *ds, int64_t now,
		 const struct meta_actor *actor, const char *how)
{
	char old[DIGEST_STR_MAX];
	int found = 0;
	struct db_stmt *s;
	int rc = meta_tag_current(c, repo_id, tag, old, &found);
	if (rc || (found && !strcmp(old, ds)))
		return rc;
	if (found && (rc = guard_check(actor, tag)))
		return rc;
	rc = meta_stmt(c, &q_tag_upsert, &s);
	if (rc)
		return rc;
	db_bind_int64(s, 1, repo_id);
	db_bind_text(s, 2, tag);
	db_bind_text(s, 3, ds);
	db_bind_int64(s, 4, now);
	rc = meta_exec(c, s);
	meta_stmt_done(c, &q_tag_upsert, s);
	if (!rc)
		rc = history_add(c, repo_id, tag, found ? old : NULL, ds, now, actor, how);
	return rc;
}

/* Stores the bytes of blob ds (already in blobs) in the database. */
static int content_insert(struct meta_conn *c, const char *ds, const void *content, int64_t size)
{
	struct db_stmt *s;
	int rc = meta_stmt(c, &q_content_insert, &s);
	if (rc)
		return rc;
	db_bind_text(s, 1, ds);
	db_bind_blob(s, 2, content, (size_t)size);
	rc = meta_exec(c, s);
	meta_stmt_done(c, &q_content_insert, s);
	return rc;
}

/* Writes actor's audit event, if it has one, in c's transaction; a refused event is only logged. */
static int audit_in_tx(struct meta_conn *c, const struct meta_actor *actor)
{
	struct meta_audit ev = { 0 };
	if (!actor || !actor->audit || actor->audit(actor->audit_ctx, &ev))
		return 0;
	int rc = meta_audit_insert(c, &ev);
	return rc == E_INTERNAL ? 0 : rc;
}

/* The arguments of the manifest and tag writes. */
struct manifest_write {
	const char *repo;
	const char *ds;   /* digest string */
	int64_t size;
	const void *content;
	const struct manifest_info *mi;
	const char *tag;
	const struct meta_actor *actor;
	struct buf *detail;
	size_t detail_len; /* detail's length before the write: a re-run starts from it */
};

static int manifest_put_tx(struct meta_conn *c, void *arg)
{
	const struct manifest_write *w = arg;
	int64_t repo_id, now = meta_now_ms();
	int is_new = 0;
	change_reset(w->actor);
	if (w->detail)
		buf_setlen(w->detail, w->detail_len);
	int rc = meta_repo_id(c, w->repo, 1, &repo_id);
	if (!rc)
		rc = check_refs(c, repo_id, w->mi, w->actor, w->detail);
	if (!rc)
		rc = manifest_insert(c, repo_id, w->ds, w->size, w->mi, now, &is_new);
	if (!rc)
		rc = meta_link_blob(c, repo_id, w->ds, w->size, now);
	if (!rc && w->content)
		rc = content_insert(c, w->ds, w->content, w->size);
	if (!rc && w->tag) {
		const struct meta_actor *actor = w->actor;
		int retag = !is_new && actor && actor->how && !strcmp(actor->how, "push");
		rc = meta_tag_set(c, repo_id, w->tag, w->ds, now, actor, retag ? "retag" : NULL);
	}
	if (!rc)
		rc = audit_in_tx(c, w->actor);
	return rc;
}

int meta_manifest_put_content(struct meta *m, const char *repo, const struct digest *d, int64_t size, const void *content,
			      const struct manifest_info *mi, const char *tag,
			      const struct meta_actor *actor, struct buf *detail)
{
	char ds[DIGEST_STR_MAX];
	struct manifest_write w = { .repo = repo, .ds = digest_str(d, ds), .size = size, .content = content,
				    .mi = mi, .tag = tag, .actor = actor, .detail = detail,
				    .detail_len = detail ? detail->len : 0 };
	int rc = meta_tx_run(m, manifest_put_tx, &w);
	if (rc)
		change_reset(actor);
	return rc;
}

int meta_manifest_put(struct meta *m, const char *repo, const struct digest *d, int64_t size,
		      const struct manifest_info *mi, const char *tag,
		      const struct meta_actor *actor, struct buf *detail)
{
	return meta_manifest_put_content(m, repo, d, size, NULL, mi, tag, actor, detail);
}

int meta_blob_content(struct meta *m, const struct digest *d, struct buf *out, int *found)
{
	struct meta_conn *c;
	struct db_stmt *s;
	char ds[DIGEST_STR_MAX];
	*found = 0;
	int rc = meta_conn_get(m, &c);
	if (!rc)
		rc = meta_stmt(c, &q_content_get, &s);
	if (rc)
		return rc;
	db_bind_text(s, 1, digest_str(d, ds));
	rc = meta_step(c, s);
	if (rc == 1) {
		size_t len;
		const void *bytes = db_col_blob(s, 0, &len);
		buf_add(out, bytes ? bytes : "", len);
		*found = 1;
		rc = 0;
	}
	meta_stmt_done(c, &q_content_get, s);
	return rc < 0 ? rc : 0;
}

int meta_content_list(struct meta *m, int (*cb)(void *ctx, const char *digest, const void *bytes, size_t len), void *ctx)
{
	struct meta_conn *c;
	struct db_stmt *s;
	int rc = meta_conn_get(m, &c);
	if (!rc)
		rc = meta_stmt(c, &q_content_list, &s);
	if (rc)
		return rc;
	while ((rc = meta_step(c, s)) == 1) {
		const char *ds = db_col_text(s, 0);
		size_t len;
		const void *bytes = db_col_blob(s, 1, &len);
		if (!ds) {
			log_error("meta: malformed blob content row");
			rc = E_IO;
			break;
		}
		if ((rc = cb(ctx, ds, bytes ? bytes : "", len)))
			break;
	}
	meta_stmt_done(c, &q_content_list, s);
	return rc < 0 || rc > 1 ? rc : 0;
}

/* Fills out from a row of q_manifest_by_*; the strings are copied. */
static int manifest_from_row(struct db_stmt *s, struct meta_manifest *out)
{
	const char *ds = db_col_text(s, 0);
	const char *mt = db_col_text(s, 2);
	const char *at = db_col_text(s, 3);
	const char *an = db_col_text(s, 4);
	if (!ds || !mt || digest_parse(ds, &out->digest)) {
		log_error("meta: malformed manifest row");
		return E_IO;
	}
	out->size = db_col_int64(s, 1);
	out->media_type = xstrdup(mt);
	out->artifact_type = at ? xstrdup(at) : NULL;
	out->annotations = an ? xstrdup(an) : NULL;
	if (!db_col_is_null(s, 5)) {
		size_t n;
		const void *bytes = db_col_blob(s, 5, &n);
		out->content = xmalloc(n ? n : 1);
		if (n)
			memcpy(out->content, bytes, n);
		out->content_len = n;
	}
	return 0;
}

int meta_manifest_get(struct meta *m, const char *repo, const struct reference *ref, struct meta_manifest *out)
{
	struct meta_conn *c;
	struct db_stmt *s;
	char ds[DIGEST_STR_MAX];
	const struct meta_query *q = ref->is_digest ? &q_manifest_by_digest : &q_manifest_by_tag;
	memset(out, 0, sizeof(*out));
	int rc = meta_conn_get(m, &c);
	if (!rc)
		rc = meta_stmt(c, q, &s);
	if (rc)
		return rc;
	db_bind_text(s, 1, repo);
	db_bind_text(s, 2, ref->is_digest ? digest_str(&ref->digest, ds) : ref->tag);
	rc = meta_step(c, s);
	if (rc == 1)
		rc = manifest_from_row(s, out);
	else if (rc == 0)
		rc = E_MANIFEST_UNKNOWN;
	meta_stmt_done(c, q, s);
	return rc;
}

/* Records a how="delete" history row for every tag of repo_id pointing at ds. */
static int history_tags_deleted(struct meta_conn *c, int64_t repo_id, const char *ds, int64_t now,
				const struct meta_actor *actor)
{
	struct db_stmt *s;
	int rc = meta_stmt(c, &q_tags_of_manifest, &s);
	if (rc)
		return rc;
	db_bind_int64(s, 1, repo_id);
	db_bind_text(s, 2, ds);
	while ((rc = meta_step(c, s)) == 1) {
		const char *tag = db_col_text(s, 0);
		rc = guard_check(actor, tag);
		if (!rc)
			rc = history_add(c, repo_id, tag, ds, NULL, now, actor, "delete");
		if (rc)
			break;
	}
	meta_stmt_done(c, &q_tags_of_manifest, s);
	return rc;
}

static int manifest_delete_tx(struct meta_conn *c, void *arg)
{
	const struct manifest_write *w = arg;
	int64_t repo_id;
	int found = 0;
	change_reset(w->actor);
	int rc = meta_repo_id(c, w->repo, 0, &repo_id);
	if (!rc)
		rc = exists_id(c, &q_has_manifest, repo_id, w->ds, &found);
	if (rc == E_NAME_UNKNOWN || (!rc && !found))
		rc = E_MANIFEST_UNKNOWN;
	if (!rc)
		rc = history_tags_deleted(c, repo_id, w->ds, meta_now_ms(), w->actor);
	/* children before parents: the foreign keys are checked on every statement */
	if (!rc)
		rc = exec_id(c, &q_tags_delete_for, repo_id, w->ds);
	if (!rc)
		rc = exec_id(c, &q_refs_delete, repo_id, w->ds);
	if (!rc)
		rc = exec_id(c, &q_manifest_delete, repo_id, w->ds);
	if (!rc)
		rc = exec_id(c, &q_link_delete_id, repo_id, w->ds);
	if (!rc)
		rc = audit_in_tx(c, w->actor);
	return rc;
}

int meta_manifest_delete(struct meta *m, const char *repo, const struct digest *d, const struct meta_actor *actor)
{
	char ds[DIGEST_STR_MAX];
	struct manifest_write w = { .repo = repo, .ds = digest_str(d, ds), .actor = actor };
	int rc = meta_tx_run(m, manifest_delete_tx, &w);
	if (rc)
		change_reset(actor);
	return rc;
}

static int tag_delete_tx(struct meta_conn *c, void *arg)
{
	const struct manifest_write *w = arg;
	char old[DIGEST_STR_MAX];
	int64_t repo_id;
	int found = 0;
	change_reset(w->actor);
	int rc = meta_repo_id(c, w->repo, 0, &repo_id);
	if (!rc)
		rc = meta_tag_current(c, repo_id, w->tag, old, &found);
	if (rc == E_NAME_UNKNOWN || (!rc && !found))
		rc = E_MANIFEST_UNKNOWN;
	if (!rc)
		rc = guard_check(w->actor, w->tag);
	if (!rc)
		rc = exec_id(c, &q_tag_delete, repo_id, w->tag);
	if (!rc)
		rc = history_add(c, repo_id, w->tag, old, NULL, meta_now_ms(), w->actor, "delete");
	if (!rc)
		rc = audit_in_tx(c, w->actor);
	return rc;
}

int meta_tag_delete(struct meta *m, const char *repo, const char *tag, const struct meta_actor *actor)
{
	struct manifest_write w = { .repo = repo, .tag = tag, .actor = actor };
	int rc = meta_tx_run(m, tag_delete_tx, &w);
	if (rc)
		change_reset(actor);
	return rc;
}
