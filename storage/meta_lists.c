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
static const struct meta_query q_tags_list = { .id = MS_TAGS_LIST, .sql =
	"SELECT name FROM tags"
	" WHERE repo_id = (SELECT id FROM repos WHERE name = ?1) AND name > ?2"
	" ORDER BY name LIMIT ?3" };
/*
 * SQLite counts other connections' commits itself; on PostgreSQL every
 * write transaction bumps the version row (meta_schema_pg.c), so a node
 * sees the other nodes' writes too.
 */
static const struct meta_query q_data_version = { .id = MS_DATA_VERSION, .sql = "PRAGMA data_version",
	.pg = "SELECT n FROM berth_version" };
static const struct meta_query q_repo_exists = { .id = MS_REPO_EXISTS, .sql =
	"SELECT 1 FROM repos r WHERE r.name = ?1 AND" REPO_LIVE };
static const struct meta_query q_catalog = { .id = MS_CATALOG, .sql =
	"SELECT r.name FROM repos r WHERE r.name > ?1 AND" REPO_LIVE " ORDER BY r.name" };
/*
 * Without statistics the planner prefers walking the whole repository in
 * primary-key (digest) order over the subject index; the index already
 * yields digest order and touches only the referrers.
 */
#define REFERRERS_WHERE                                                             \
	" WHERE m.repo_id = (SELECT id FROM repos WHERE name = ?1) AND m.subject = ?2" \
	" AND (CAST(?3 AS TEXT) IS NULL OR m.artifact_type = ?3) ORDER BY m.digest"
/* INDEXED BY is SQLite's; PostgreSQL's planner keeps statistics (autovacuum). */
static const struct meta_query q_referrers = { .id = MS_REFERRERS, .sql =
	"SELECT m.digest, m.size, m.media_type, m.artifact_type, m.annotations"
	" FROM manifests m INDEXED BY manifests_by_subject" REFERRERS_WHERE,
	.pg = "SELECT m.digest, m.size, m.media_type, m.artifact_type, m.annotations"
	" FROM manifests m" REFERRERS_WHERE };
static const struct meta_query q_history = { .id = MS_HISTORY, .sql =
	"SELECT id, time_ms, old_digest, new_digest, actor, how, client FROM tag_history"
	" WHERE repo_id = (SELECT id FROM repos WHERE name = ?1) AND tag = ?2"
	" ORDER BY id DESC" };

int meta_repo_exists(struct meta *m, const char *repo)
{
	int rc = meta_each(m, &q_repo_exists, meta_bind_text1, repo, meta_first_int64, NULL);
	return rc == 1 ? 0 : rc == 0 ? E_NAME_UNKNOWN : rc;
}

/*
 * LIMIT for a page of n (n < 0: all) plus the one row telling whether more
 * exist. "All" is the largest limit: SQLite reads -1 as none, PostgreSQL
 * refuses a negative one.
 */
static int64_t page_limit(long n)
{
	return n < 0 || (int64_t)n >= INT64_MAX - 1 ? INT64_MAX : (int64_t)n + 1;
}

/* A page of names being passed to the caller: at most n (n < 0: all) that filter (may be NULL) lets through. */
struct page {
	meta_str_cb filter, cb;
	void *fctx, *ctx;
	long n, count;
	int more; /* a further name exists; the walk stopped there */
};

static int page_row(struct db_stmt *s, void *arg)
{
	struct page *p = arg;
	const char *name = db_col_text(s, 0);
	if (p->filter && !p->filter(p->fctx, name))
		return 0;
	if (p->n >= 0 && p->count == p->n) {
		p->more = 1;
		return 1;
	}
	int r = p->cb(p->ctx, name);
	if (!r)
		p->count++;
	return r;
}

/* Walks q into p; *more (may be NULL) tells whether names were left over. */
static int page_walk(struct meta *m, const struct meta_query *q, meta_bind_fn bind, const void *barg, struct page *p, int *more)
{
	int rc = meta_each(m, q, bind, barg, page_row, p);
	if (p->more)
		rc = 0;
	if (more)
		*more = p->more;
	return rc;
}

struct tags_args {
	const char *repo, *last;
	int64_t limit;
};

static void tags_bind(struct db_stmt *s, const void *arg)
{
	const struct tags_args *a = arg;
	db_bind_text(s, 1, a->repo);
	db_bind_text(s, 2, a->last);
	db_bind_int64(s, 3, a->limit);
}

int meta_tags_list(struct meta *m, const char *repo, const char *last, long n, meta_str_cb cb, void *ctx, int *more)
{
	struct tags_args a = { repo, last ? last : "", page_limit(n) };
	struct page p = { .cb = cb, .ctx = ctx, .n = n };
	int rc = page_walk(m, &q_tags_list, tags_bind, &a, &p, more);
	/* a tag proves the repository exists; only an empty page needs asking */
	if (!rc && !p.count && !p.more)
		rc = meta_repo_exists(m, repo);
	return rc;
}

int meta_catalog(struct meta *m, const char *last, long n, meta_str_cb filter, void *fctx,
		 meta_str_cb cb, void *ctx, int *more)
{
	struct page p = { .filter = filter, .cb = cb, .fctx = fctx, .ctx = ctx, .n = n };
	/* no LIMIT: names the filter excludes do not count towards n */
	return page_walk(m, &q_catalog, meta_bind_text1, last ? last : "", &p, more);
}

/* The caller's callback, for the row functions below. */
struct sink {
	union {
		meta_manifest_cb manifest;
		meta_event_cb event;
	} cb;
	void *ctx;
};

static int referrers_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	/* the callback sees the row's own text: no copies, valid for the call only */
	struct meta_manifest m = {
		.size = db_col_int64(s, 1),
		.media_type = (char *)db_col_text(s, 2),
		.artifact_type = (char *)db_col_text(s, 3),
		.annotations = (char *)db_col_text(s, 4),
	};
	const char *mds = db_col_text(s, 0);
	if (!mds || !m.media_type || digest_parse(mds, &m.digest)) {
		log_error("meta: malformed manifest row");
		return E_IO;
	}
	return k->cb.manifest(k->ctx, &m);
}

int meta_referrers(struct meta *m, const char *repo, const struct digest *d, const char *artifact_type,
		   meta_manifest_cb cb, void *ctx)
{
	char ds[DIGEST_STR_MAX];
	struct meta_texts t = { 3, { repo, digest_str(d, ds), artifact_type } };
	struct sink k = { .cb.manifest = cb, .ctx = ctx };
	return meta_each(m, &q_referrers, meta_bind_texts, &t, referrers_row, &k);
}

static int history_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	struct meta_tag_event ev = {
		.id = db_col_int64(s, 0),
		.time_ms = db_col_int64(s, 1),
		.old_digest = db_col_text(s, 2),
		.new_digest = db_col_text(s, 3),
		.actor = db_col_text(s, 4),
		.how = db_col_text(s, 5),
		.client = db_col_text(s, 6),
	};
	return k->cb.event(k->ctx, &ev);
}

int meta_tag_history(struct meta *m, const char *repo, const char *tag, meta_event_cb cb, void *ctx)
{
	struct meta_texts t = { 2, { repo, tag } };
	struct sink k = { .cb.event = cb, .ctx = ctx };
	return meta_each(m, &q_history, meta_bind_texts, &t, history_row, &k);
}

int meta_read_version(struct meta *m, uint64_t v[2])
{
	struct meta_conn *c;
	struct db_stmt *s;
	int rc = meta_conn_get(m, &c);
	if (!rc)
		rc = meta_stmt(c, &q_data_version, &s);
	if (rc)
		return rc;
	rc = meta_step(c, s);
	if (rc == 1) {
		v[0] = (uint64_t)db_col_int64(s, 0);
		v[1] = db_total_changes(c->db);
		rc = 0;
	} else if (rc == 0) {
		rc = E_IO;
	}
	meta_stmt_done(c, &q_data_version, s);
	return rc;
}
