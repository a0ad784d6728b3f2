/* meta_lists: read-only listings: tags, catalog, repository existence, referrers, tag history. */
#include <stdint.h>

#include "err.h"
#include "log.h"
#include "meta.h"
#include "meta_internal.h"

/* A repository exists while anything but an upload or its history refers to it. */
#define REPO_LIVE                                                           \
	" (EXISTS (SELECT 1 FROM blob_links l WHERE l.repo_id = r.id)"      \
	" OR EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id)"     \
	" OR EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = r.id))"

/* Names are compared with BINARY collation: byte order, as the distribution spec asks. */
static const struct meta_query q_tags_list = { MS_TAGS_LIST,
	"SELECT name FROM tags"
	" WHERE repo_id = (SELECT id FROM repos WHERE name = ?1) AND name > ?2"
	" ORDER BY name LIMIT ?3" };
static const struct meta_query q_repo_exists = { MS_REPO_EXISTS,
	"SELECT 1 FROM repos r WHERE r.name = ?1 AND" REPO_LIVE };
static const struct meta_query q_catalog = { MS_CATALOG,
	"SELECT r.name FROM repos r WHERE r.name > ?1 AND" REPO_LIVE " ORDER BY r.name" };
/*
 * Without statistics the planner prefers walking the whole repository in
 * primary-key (digest) order over the subject index; the index already
 * yields digest order and touches only the referrers.
 */
static const struct meta_query q_referrers = { MS_REFERRERS,
	"SELECT m.digest, m.size, m.media_type, m.artifact_type, m.annotations"
	" FROM manifests m INDEXED BY manifests_by_subject"
	" WHERE m.repo_id = (SELECT id FROM repos WHERE name = ?1) AND m.subject = ?2"
	" AND (?3 IS NULL OR m.artifact_type = ?3) ORDER BY m.digest" };
static const struct meta_query q_history = { MS_HISTORY,
	"SELECT id, time_ms, old_digest, new_digest, actor, how, client FROM tag_history"
	" WHERE repo_id = (SELECT id FROM repos WHERE name = ?1) AND tag = ?2"
	" ORDER BY id DESC" };

int meta_repo_exists(const char *repo)
{
	struct meta_conn *c;
	sqlite3_stmt *s;
	int rc = meta_conn_get(&c);
	if (!rc)
		rc = meta_stmt(c, &q_repo_exists, &s);
	if (rc)
		return rc;
	meta_bind_text(s, 1, repo);
	rc = meta_step(c, s);
	meta_stmt_done(c, &q_repo_exists, s);
	return rc == 1 ? 0 : rc == 0 ? E_NAME_UNKNOWN : rc;
}

/* SQLite LIMIT for a page of n (n < 0: all) plus the one row telling whether more exist. */
static int64_t page_limit(long n)
{
	return n < 0 || (int64_t)n >= INT64_MAX - 1 ? -1 : (int64_t)n + 1;
}

int meta_tags_list(const char *repo, const char *last, long n, meta_str_cb cb, void *ctx, int *more)
{
	struct meta_conn *c;
	sqlite3_stmt *s;
	long count = 0;
	int more_rows = 0;
	int rc = meta_conn_get(&c);
	if (!rc)
		rc = meta_stmt(c, &q_tags_list, &s);
	if (rc)
		return rc;
	meta_bind_text(s, 1, repo);
	meta_bind_text(s, 2, last ? last : "");
	meta_bind_int64(s, 3, page_limit(n));
	while ((rc = meta_step(c, s)) == 1) {
		if (n >= 0 && count == n) {
			more_rows = 1;
			rc = 0;
			break;
		}
		int r = cb(ctx, meta_col_text(s, 0));
		if (r) {
			rc = r;
			break;
		}
		count++;
	}
	meta_stmt_done(c, &q_tags_list, s);
	if (more)
		*more = more_rows;
	/* a tag proves the repository exists; only an empty page needs asking */
	if (!rc && !count && !more_rows)
		rc = meta_repo_exists(repo);
	return rc;
}

int meta_catalog(const char *last, long n, meta_str_cb filter, void *fctx,
		 meta_str_cb cb, void *ctx, int *more)
{
	struct meta_conn *c;
	sqlite3_stmt *s;
	long count = 0;
	int more_rows = 0;
	int rc = meta_conn_get(&c);
	if (!rc)
		rc = meta_stmt(c, &q_catalog, &s);
	if (rc)
		return rc;
	/* no LIMIT: names the filter excludes do not count towards n */
	meta_bind_text(s, 1, last ? last : "");
	while ((rc = meta_step(c, s)) == 1) {
		const char *name = meta_col_text(s, 0);
		if (filter && !filter(fctx, name))
			continue;
		if (n >= 0 && count == n) {
			more_rows = 1;
			rc = 0;
			break;
		}
		int r = cb(ctx, name);
		if (r) {
			rc = r;
			break;
		}
		count++;
	}
	meta_stmt_done(c, &q_catalog, s);
	if (more)
		*more = more_rows;
	return rc;
}

int meta_referrers(const char *repo, const struct digest *d, const char *artifact_type,
		   meta_manifest_cb cb, void *ctx)
{
	struct meta_conn *c;
	sqlite3_stmt *s;
	char ds[DIGEST_STR_MAX];
	int rc = meta_conn_get(&c);
	if (!rc)
		rc = meta_stmt(c, &q_referrers, &s);
	if (rc)
		return rc;
	meta_bind_text(s, 1, repo);
	meta_bind_text(s, 2, digest_str(d, ds));
	meta_bind_text(s, 3, artifact_type);
	while ((rc = meta_step(c, s)) == 1) {
		/* the callback sees the row's own text: no copies, valid for the call only */
		struct meta_manifest m = {
			.size = sqlite3_column_int64(s, 1),
			.media_type = (char *)meta_col_text(s, 2),
			.artifact_type = (char *)meta_col_text(s, 3),
			.annotations = (char *)meta_col_text(s, 4),
		};
		const char *mds = meta_col_text(s, 0);
		if (!mds || !m.media_type || digest_parse(mds, &m.digest)) {
			log_error("meta: malformed manifest row");
			rc = E_IO;
			break;
		}
		int r = cb(ctx, &m);
		if (r) {
			rc = r;
			break;
		}
	}
	meta_stmt_done(c, &q_referrers, s);
	return rc;
}

int meta_tag_history(const char *repo, const char *tag, meta_event_cb cb, void *ctx)
{
	struct meta_conn *c;
	sqlite3_stmt *s;
	int rc = meta_conn_get(&c);
	if (!rc)
		rc = meta_stmt(c, &q_history, &s);
	if (rc)
		return rc;
	meta_bind_text(s, 1, repo);
	meta_bind_text(s, 2, tag);
	while ((rc = meta_step(c, s)) == 1) {
		struct meta_tag_event ev = {
			.id = sqlite3_column_int64(s, 0),
			.time_ms = sqlite3_column_int64(s, 1),
			.old_digest = meta_col_text(s, 2),
			.new_digest = meta_col_text(s, 3),
			.actor = meta_col_text(s, 4),
			.how = meta_col_text(s, 5),
			.client = meta_col_text(s, 6),
		};
		int r = cb(ctx, &ev);
		if (r) {
			rc = r;
			break;
		}
	}
	meta_stmt_done(c, &q_history, s);
	return rc;
}
