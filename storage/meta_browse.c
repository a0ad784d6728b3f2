/*
 * meta_browse: the web interface's listings (store_browse.h): repositories
 * with last push, tag count and size, tags with push time, pusher and image
 * size, in keyset pages. One SQL text per listing for both engines; the
 * order is spliced in from fixed fragments (never from input), so these
 * run as one-off statements rather than from the connection's cache.
 */
#include <ctype.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "meta.h"
#include "meta_internal.h"

/* Rows fetched per statement when a filter may drop many of them. */
#define FILTERED_BATCH 256

/*
 * Every repository with content, its aggregates as columns. A repository
 * row outlives its content (rows are never deleted); one without blob
 * links or manifests is not listed. Size: each blob and manifest the
 * repository's manifests reference (not their subjects), once, plus the
 * manifests themselves. ?1 is the LIKE pattern of the name filter.
 */
#define REPOS_INNER                                                                                         \
	"SELECT name, CASE WHEN tp > mp THEN tp ELSE mp END AS pushed, ntags, size FROM ("                    \
	" SELECT r.name AS name,"                                                                               \
	"  (SELECT coalesce(max(t.updated_ms), 0) FROM tags t WHERE t.repo_id = r.id) AS tp,"                   \
	"  (SELECT coalesce(max(m.created_ms), 0) FROM manifests m WHERE m.repo_id = r.id) AS mp,"              \
	"  (SELECT count(*) FROM tags t WHERE t.repo_id = r.id) AS ntags,"                                      \
	"  (SELECT CAST(coalesce(sum(b.size), 0) AS BIGINT) FROM blobs b WHERE b.digest IN ("                   \
	"    SELECT x.digest FROM manifest_refs x WHERE x.repo_id = r.id AND x.kind <> 3"                         \
	"    UNION SELECT m.digest FROM manifests m WHERE m.repo_id = r.id)) AS size"                             \
	" FROM repos r WHERE r.name LIKE ?1 ESCAPE '\\'"                                                          \
	"  AND (EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id)"                                      \
	"   OR EXISTS (SELECT 1 FROM blob_links l WHERE l.repo_id = r.id))) a"

/*
 * The tags of repository ?1 whose lowercased name matches the LIKE
 * pattern ?2. Size: the tag's manifest, what it references (not its
 * subject) and, for an index, what its child manifests reference, each
 * blob once. The children's references are asked for by (repository,
 * manifest IN children), the primary key's prefix: written as a join of
 * manifest_refs with itself, SQLite drove it from every reference of the
 * repository, once per tag (30 s for a page of 10,000 tags). Pusher: the
 * actor of the tag's last move (the history index carries the id, so this
 * reads one entry).
 */
#define TAGS_INNER                                                                                           \
	"SELECT t.name AS name, t.digest AS digest, m.media_type AS media_type, t.updated_ms AS pushed,"        \
	"  m.size + (SELECT CAST(coalesce(sum(b.size), 0) AS BIGINT) FROM blobs b WHERE b.digest IN ("          \
	"    SELECT x.digest FROM manifest_refs x"                                                               \
	"     WHERE x.repo_id = t.repo_id AND x.manifest = t.digest AND x.kind <> 3"                             \
	"    UNION SELECT y.digest FROM manifest_refs y"                                                         \
	"     WHERE y.repo_id = t.repo_id AND y.kind <> 3 AND y.manifest IN (SELECT x.digest FROM manifest_refs x" \
	"      WHERE x.repo_id = t.repo_id AND x.manifest = t.digest AND x.kind = 2))) AS size,"                 \
	"  (SELECT h.actor FROM tag_history h WHERE h.repo_id = t.repo_id AND h.tag = t.name"                    \
	"    ORDER BY h.id DESC LIMIT 1) AS pusher"                                                              \
	" FROM tags t JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest"                        \
	" WHERE t.repo_id = (SELECT id FROM repos WHERE name = ?1) AND lower(t.name) LIKE ?2 ESCAPE '\\'"

/* A walk through keyset pages of one listing, batch after batch. */
struct walk {
	struct meta *m;
	const struct meta_browse_page *pg;
	const char *inner;          /* the listing's SELECT */
	const char *texts[2];       /* its text parameters ?1.. */
	int ntexts;
	int pushed_col, size_col;   /* columns of the sort values */
	int key_col;                /* the one sorted by; -1 in name order */
	meta_str_cb filter;         /* may be NULL */
	void *fctx;
	int (*emit)(struct walk *w, struct db_stmt *s);
	union {
		int (*repo)(void *ctx, const struct meta_repo_summary *r);
		int (*tag)(void *ctx, const struct meta_tag_summary *t);
	} cb;                       /* the caller's, called by emit */
	void *ctx;
	long count;
	int more;
	struct buf last;            /* name of the last row read */
	int64_t last_value;
	int have_last;
};

/* The sort column of the outer query, by enum store_browse_sort; 0 keeps every row equal (name order). */
static const char *sort_key(int sort)
{
	return sort == 1 ? "pushed" : sort == 2 ? "size" : "0";
}

/*
 * The statement of one batch: the listing wrapped in the keyset condition.
 * After the listing's ntexts parameters: a flag (0: from the start), the
 * previous row's sort value and name, the batch size.
 */
static void batch_sql(const struct walk *w, struct buf *sql)
{
	const char *k = sort_key(w->pg->sort), *cmp = w->pg->desc ? "<" : ">", *dir = w->pg->desc ? " DESC" : "";
	int p = w->ntexts;
	buf_addf(sql, "SELECT * FROM (%s) s WHERE (?%d = 0 OR %s %s ?%d OR (%s = ?%d AND name %s ?%d))", w->inner,
		 p + 1, k, cmp, p + 2, k, p + 2, cmp, p + 3);
	/* a constant is no ORDER BY term (a column number, or refused by PostgreSQL): name order sorts by name alone */
	if (w->pg->sort == 1 || w->pg->sort == 2)
		buf_addf(sql, " ORDER BY %s%s,", k, dir);
	else
		buf_adds(sql, " ORDER BY");
	buf_addf(sql, " name%s LIMIT ?%d", dir, p + 4);
}

/* Runs one batch of at most limit rows; *rows counts those read, *done says the walk is over. */
static int batch(struct walk *w, int64_t limit, int64_t *rows, int *done)
{
	struct meta_conn *c;
	struct db_stmt *s = NULL;
	struct buf sql = BUF_INIT;
	int rc = meta_conn_get(w->m, &c);
	*rows = 0;
	if (rc)
		goto out;
	batch_sql(w, &sql);
	if ((rc = db_prepare(c->db, sql.buf, 0, &s)))
		goto out;
	for (int i = 0; i < w->ntexts; i++)
		db_bind_text(s, i + 1, w->texts[i]);
	db_bind_int64(s, w->ntexts + 1, w->have_last);
	db_bind_int64(s, w->ntexts + 2, w->last_value);
	db_bind_text(s, w->ntexts + 3, w->have_last ? w->last.buf : "");
	db_bind_int64(s, w->ntexts + 4, limit);
	while ((rc = meta_step(c, s)) == 1) {
		const char *name = db_col_text(s, 0);
		(*rows)++;
		if (!name) {
			log_error("meta: malformed browse row");
			rc = E_IO;
			break;
		}
		buf_reset(&w->last);
		buf_adds(&w->last, name);
		w->last_value = w->key_col < 0 ? 0 : db_col_int64(s, w->key_col);
		w->have_last = 1;
		if (w->filter && !w->filter(w->fctx, name))
			continue;
		if (w->count == w->pg->n) {
			w->more = 1;
			*done = 1;
			rc = 0;
			break;
		}
		if ((rc = w->emit(w, s))) {
			*done = 1;
			break;
		}
		w->count++;
	}
out:
	db_finalize(s);
	buf_release(&sql);
	return rc;
}

static int walk_run(struct walk *w, int *more)
{
	const struct meta_browse_page *pg = w->pg;
	int64_t limit = (int64_t)pg->n + 1, rows;
	int done = 0, rc = 0;
	if (w->filter && limit < FILTERED_BATCH)
		limit = FILTERED_BATCH;
	buf_init(&w->last, 0);
	if (pg->after_name) {
		buf_adds(&w->last, pg->after_name);
		w->last_value = pg->after_value;
		w->have_last = 1;
	}
	w->key_col = pg->sort == 1 ? w->pushed_col : pg->sort == 2 ? w->size_col : -1;
	while (!done && !rc) {
		rc = batch(w, limit, &rows, &done);
		if (rows < limit)
			done = 1;
	}
	buf_release(&w->last);
	if (more)
		*more = w->more;
	return rc;
}

/* "%text%" as a LIKE pattern (ASCII lowercased, wildcards escaped) into out. */
static void like_pattern(const char *text, struct buf *out)
{
	buf_addch(out, '%');
	for (const char *p = text ? text : ""; *p; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			buf_addch(out, '\\');
		buf_addch(out, (char)tolower((unsigned char)*p));
	}
	buf_addch(out, '%');
}

static int repo_emit(struct walk *w, struct db_stmt *s)
{
	struct meta_repo_summary r = {
		.name = db_col_text(s, 0),
		.pushed_ms = db_col_int64(s, 1),
		.tags = db_col_int64(s, 2),
		.size = db_col_int64(s, 3),
	};
	return w->cb.repo(w->ctx, &r);
}

int meta_browse_repos(struct meta *m, const struct meta_browse_page *pg, meta_str_cb filter, void *fctx,
		      int (*cb)(void *ctx, const struct meta_repo_summary *r), void *ctx, int *more)
{
	struct buf pat = BUF_INIT;
	struct walk w = { .m = m, .pg = pg, .inner = REPOS_INNER, .ntexts = 1, .filter = filter, .fctx = fctx,
			  .pushed_col = 1, .size_col = 3, .emit = repo_emit, .cb.repo = cb, .ctx = ctx };
	like_pattern(pg->contains, &pat);
	w.texts[0] = pat.buf;
	int rc = walk_run(&w, more);
	buf_release(&pat);
	return rc;
}

static int tag_emit(struct walk *w, struct db_stmt *s)
{
	struct meta_tag_summary t = {
		.name = db_col_text(s, 0),
		.digest = db_col_text(s, 1),
		.media_type = db_col_text(s, 2),
		.pushed_ms = db_col_int64(s, 3),
		.size = db_col_int64(s, 4),
		.pusher = db_col_text(s, 5),
	};
	if (!t.digest || !t.media_type) {
		log_error("meta: malformed tag row");
		return E_IO;
	}
	return w->cb.tag(w->ctx, &t);
}

int meta_browse_tags(struct meta *m, const char *repo, const struct meta_browse_page *pg,
		     int (*cb)(void *ctx, const struct meta_tag_summary *t), void *ctx, int *more)
{
	struct buf pat = BUF_INIT;
	struct walk w = { .m = m, .pg = pg, .inner = TAGS_INNER, .ntexts = 2, .pushed_col = 3, .size_col = 4,
			  .emit = tag_emit, .cb.tag = cb, .ctx = ctx };
	like_pattern(pg->contains, &pat);
	w.texts[0] = repo;
	w.texts[1] = pat.buf;
	int rc = walk_run(&w, more);
	buf_release(&pat);
	/* a tag proves the repository exists; only an empty first page needs asking */
	if (!rc && !w.count && !w.more && !pg->after_name)
		rc = meta_repo_exists(m, repo);
	return rc;
}

int meta_browse_tags_at(struct meta *m, const char *repo, const char *digest, long n, meta_str_cb cb, void *ctx, int *more)
{
	struct meta_conn *c;
	struct db_stmt *s = NULL;
	long count = 0;
	int rc = meta_conn_get(m, &c);
	*more = 0;
	if (rc)
		return rc;
	/* tags_by_digest holds (repo_id, digest): this reads only the tags wanted */
	rc = db_prepare(c->db,
			"SELECT t.name FROM tags t WHERE t.repo_id = (SELECT id FROM repos WHERE name = ?1)"
			" AND t.digest = ?2 ORDER BY t.name LIMIT ?3",
			0, &s);
	if (rc)
		goto out;
	db_bind_text(s, 1, repo);
	db_bind_text(s, 2, digest);
	db_bind_int64(s, 3, (int64_t)n + 1);
	while ((rc = meta_step(c, s)) == 1) {
		const char *name = db_col_text(s, 0);
		if (!name) {
			rc = E_IO;
			break;
		}
		if (count == n) {
			*more = 1;
			rc = 0;
			break;
		}
		count++;
		if ((rc = cb(ctx, name)))
			break;
	}
out:
	db_finalize(s);
	return rc;
}
