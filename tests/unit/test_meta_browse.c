/*
 * Unit tests for the web interface's listings (storage/meta_browse.c, through
 * store_browse.h): repositories and tags in every order (name, last push,
 * size; both directions) walked in keyset pages of 1, 2, 3 and 50 rows
 * across ties, name filters (case, LIKE wildcards taken literally), a
 * caller's filter, sizes counting each blob once (an index with two images
 * sharing a layer), pushers, and the tags at a digest. Expected orders are
 * computed here from the data (sort value, then the names' bytes), so the
 * same checks hold on SQLite and on PostgreSQL (tests/engines/run-pg-tests),
 * where the database is made with an ICU en-US default collation when the
 * server has one: listings must still come out in byte order.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "digest.h"
#include "err.h"
#include "store.h"
#include "store_browse.h"
#include "t.h"
#include "t_meta.h"

#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_LAYER "application/vnd.oci.image.layer.v1.tar"

static struct store *st;
static struct buf db_target; /* what raw statements open: the SQLite file or the PostgreSQL URL */

/* ------------------------------------------------------------------ content */

/* Stores size bytes of c as a blob of repo (a one-shot upload); its digest into d. */
static void blob(const char *repo, char c, size_t size, struct digest *d)
{
	char *data = malloc(size);
	struct store_upload *u;
	memset(data, c, size);
	digest_of(DIGEST_SHA256, data, size, d);
	CHECK_EQ_INT(store_upload_oneshot(st, repo, &u, NULL), 0);
	CHECK_EQ_INT(store_upload_write(u, data, size), 0);
	CHECK_EQ_INT(store_upload_flush(u), 0);
	CHECK_EQ_INT(store_upload_finish(u, d), 0);
	store_upload_release(u, 0);
	free(data);
}

static void add_desc(struct buf *m, const char *mt, const struct digest *d, int64_t size)
{
	char ds[DIGEST_STR_MAX];
	buf_addf(m, "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld}", mt, digest_str(d, ds), (long long)size);
}

/*
 * Pushes an image manifest of repo over config c and layers l[0..n) (their
 * sizes in cs, ls), tagged tag when not NULL, by actor (NULL: anonymous).
 * Its digest into d; returns its length.
 */
static int64_t image(const char *repo, const struct digest *c, int64_t cs, const struct digest *l, const int64_t *ls,
		     int n, const char *tag, const char *actor, struct digest *d)
{
	struct buf m = BUF_INIT;
	struct store_put_result res;
	struct store_actor a = { .name = actor, .how = "push" };
	buf_addf(&m, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":", OCI_MANIFEST);
	add_desc(&m, OCI_CONFIG, c, cs);
	buf_adds(&m, ",\"layers\":[");
	for (int i = 0; i < n; i++) {
		buf_adds(&m, i ? "," : "");
		add_desc(&m, OCI_LAYER, &l[i], ls[i]);
	}
	buf_adds(&m, "]}");
	CHECK_EQ_INT(store_manifest_put(st, repo, DIGEST_SHA256, NULL, m.buf, m.len, OCI_MANIFEST, tag,
					actor ? &a : NULL, &res, NULL), 0);
	*d = res.digest;
	store_put_result_release(&res);
	int64_t len = (int64_t)m.len;
	buf_release(&m);
	return len;
}

/* Points tag of repo at manifest d (pushing its bytes again is a tag move). */
static void tag_again(const char *repo, const char *tag, const struct buf *body, const char *actor)
{
	struct store_put_result res;
	struct store_actor a = { .name = actor, .how = "push" };
	CHECK_EQ_INT(store_manifest_put(st, repo, DIGEST_SHA256, NULL, body->buf, body->len, NULL, tag,
					actor ? &a : NULL, &res, NULL), 0);
	store_put_result_release(&res);
}

/* The bytes of manifest d of repo into out. */
static void manifest_bytes(const char *repo, const struct digest *d, struct buf *out)
{
	struct reference ref = { .is_digest = 1, .digest = *d };
	struct store_manifest m;
	struct store_reader rd;
	char tmp[4096];
	size_t n = 0;
	CHECK_EQ_INT(store_manifest_get(st, repo, &ref, &m, &rd, NULL), 0);
	CHECK_EQ_INT(store_reader_read(&rd, 0, tmp, sizeof(tmp), &n), 0);
	buf_add(out, tmp, n);
	store_reader_release(&rd);
	store_manifest_release(&m);
}

/* Runs text on a connection of its own to the store's database. */
static void sql(const char *text)
{
	struct db *db = NULL;
	int rc = db_open(t_meta_pg() ? DB_PG : DB_SQLITE, db_target.buf, 0, &db);
	if (!rc)
		rc = db_exec(db, text, "test statement");
	db_close(db);
	CHECK_EQ_INT(rc, 0);
}

/* Sets when repo's tag last moved, and when every manifest of repo was pushed. */
static void set_times(const char *repo, const char *tag, int64_t tag_ms, int64_t manifests_ms)
{
	char q[512];
	if (tag) {
		snprintf(q, sizeof(q), "UPDATE tags SET updated_ms = %lld WHERE name = '%s'"
			 " AND repo_id = (SELECT id FROM repos WHERE name = '%s')", (long long)tag_ms, tag, repo);
		sql(q);
	}
	if (manifests_ms >= 0) {
		snprintf(q, sizeof(q), "UPDATE manifests SET created_ms = %lld"
			 " WHERE repo_id = (SELECT id FROM repos WHERE name = '%s')", (long long)manifests_ms, repo);
		sql(q);
	}
}

/* ------------------------------------------------------------------ what is expected */

struct row {
	const char *name;
	int64_t pushed, size, tags;
	const char *digest_of; /* tags: which manifest ("m1", "m2", "x") */
	const char *pusher;
};

static int sort_by, sort_desc;

static int64_t key_of(const struct row *r)
{
	return sort_by == STORE_SORT_PUSHED ? r->pushed : sort_by == STORE_SORT_SIZE ? r->size : 0;
}

static int by_key(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int64_t kx = key_of(x), ky = key_of(y);
	int c = kx < ky ? -1 : kx > ky ? 1 : strcmp(x->name, y->name);
	return sort_desc ? -c : c;
}

/* "name;name;..." of rows (n of them) holding contains (lowercased when fold), in the order asked. */
static void expected(const struct row *rows, size_t n, int sort, int desc, const char *contains, int fold,
		     const char *drop, struct buf *out)
{
	struct row *v = malloc(n * sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char low[128];
		size_t j = 0;
		for (; rows[i].name[j] && j + 1 < sizeof(low); j++)
			low[j] = fold && rows[i].name[j] >= 'A' && rows[i].name[j] <= 'Z' ? rows[i].name[j] + 32
											: rows[i].name[j];
		low[j] = 0;
		if ((contains && !strstr(low, contains)) || (drop && !strcmp(rows[i].name, drop)))
			continue;
		v[k++] = rows[i];
	}
	sort_by = sort;
	sort_desc = desc;
	qsort(v, k, sizeof(*v), by_key);
	buf_reset(out);
	for (size_t i = 0; i < k; i++)
		buf_addf(out, "%s;", v[i].name);
	free(v);
}

/* ------------------------------------------------------------------ walking pages */

struct walk {
	struct buf names;    /* "name;" per row, every page */
	struct buf last;     /* the page's last row */
	int64_t last_value;
	int sort;
	long rows;           /* of this page */
	const struct row *want; /* when not NULL: every row's values are checked against these */
	size_t nwant;
};

static const struct row *find(const struct walk *w, const char *name)
{
	for (size_t i = 0; i < w->nwant; i++)
		if (!strcmp(w->want[i].name, name))
			return &w->want[i];
	return NULL;
}

static void took(struct walk *w, const char *name, int64_t pushed, int64_t size)
{
	buf_addf(&w->names, "%s;", name);
	buf_reset(&w->last);
	buf_adds(&w->last, name);
	w->last_value = w->sort == STORE_SORT_PUSHED ? pushed : w->sort == STORE_SORT_SIZE ? size : 0;
	w->rows++;
}

static int on_repo(void *ctx, const struct store_repo_summary *r)
{
	struct walk *w = ctx;
	const struct row *x = find(w, r->name);
	CHECK(x != NULL);
	if (x) {
		CHECK_EQ_INT(r->pushed_ms, x->pushed);
		CHECK_EQ_INT(r->size, x->size);
		CHECK_EQ_INT(r->tags, x->tags);
	}
	took(w, r->name, r->pushed_ms, r->size);
	return 0;
}

static const char *digest_names[3];
static char digest_strs[3][DIGEST_STR_MAX];

static int on_tag(void *ctx, const struct store_tag_summary *t)
{
	struct walk *w = ctx;
	const struct row *x = find(w, t->name);
	CHECK(x != NULL);
	if (x) {
		CHECK_EQ_INT(t->pushed_ms, x->pushed);
		CHECK_EQ_INT(t->size, x->size);
		for (int i = 0; i < 3; i++)
			if (!strcmp(x->digest_of, digest_names[i]))
				CHECK_STR(t->digest, digest_strs[i]);
		CHECK_STR(t->media_type, !strcmp(x->digest_of, "x") ? OCI_INDEX : OCI_MANIFEST);
		if (x->pusher)
			CHECK_STR(t->pusher, x->pusher);
		else
			CHECK(t->pusher == NULL);
	}
	took(w, t->name, t->pushed_ms, t->size);
	return 0;
}

/* Repositories not called drop (may be NULL), for the caller's filter. */
static int not_dropped(void *ctx, const char *name)
{
	return !ctx || strcmp(ctx, name) != 0;
}

/*
 * Every page of n rows, each continuing after the previous one's last row,
 * of the repositories (repo NULL) or of repo's tags; the names of all of
 * them into w->names. Each page but the last must be full and say more.
 */
static void walk_all(struct walk *w, const char *repo, int sort, int desc, long n, const char *contains,
		     const char *drop)
{
	int more = 1, pages = 0;
	buf_reset(&w->names);
	buf_reset(&w->last);
	w->sort = sort;
	while (more && pages++ < 100) {
		struct store_browse_page pg = { .sort = sort, .desc = desc, .n = n, .contains = contains,
						.after_name = w->last.len ? w->last.buf : NULL,
						.after_value = w->last_value };
		char *after = w->last.len ? strdup(w->last.buf) : NULL;
		pg.after_name = after;
		w->rows = 0;
		more = 0;
		int rc = repo ? store_browse_tags(st, repo, &pg, on_tag, w, &more)
			      : store_browse_repos(st, &pg, drop ? not_dropped : NULL, (void *)drop, on_repo, w, &more);
		CHECK_EQ_INT(rc, 0);
		if (more)
			CHECK_EQ_INT(w->rows, n);
		free(after);
		if (rc)
			break;
	}
}

static void check_orders(const char *what, const char *repo, const struct row *rows, size_t nrows,
			 const char *contains, const char *drop)
{
	static const long sizes[] = { 1, 2, 3, 50 };
	struct walk w = { BUF_INIT, BUF_INIT, 0, 0, 0, rows, nrows };
	struct buf want = BUF_INIT;
	for (int sort = STORE_SORT_NAME; sort <= STORE_SORT_SIZE; sort++)
		for (int desc = 0; desc < 2; desc++) {
			expected(rows, nrows, sort, desc, contains, repo != NULL, drop, &want);
			for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
				walk_all(&w, repo, sort, desc, sizes[i], contains, drop);
				if (strcmp(w.names.buf, want.buf)) {
					CHECK_STR(w.names.buf, want.buf);
					fprintf(stderr, "  %s: sort %d desc %d pages of %ld, contains \"%s\"\n", what, sort,
						desc, sizes[i], contains ? contains : "");
				}
			}
		}
	buf_release(&want);
	buf_release(&w.names);
	buf_release(&w.last);
}

/* ------------------------------------------------------------------ the data and the tests */

/*
 * app/ab: images m1 and m2 (config and own layer of equal sizes, a shared
 * layer) and an index x over both; seven tags whose names sort differently
 * in byte order and in a natural-language collation.
 */
static const int64_t CFG = 100, OWN = 1000, SHARED = 5000;
static int64_t m1_len, m2_len, x_len;

static void fill_app_ab(void)
{
	struct digest c1, c2, l1, l2, sh, m1, m2, x;
	struct buf body1 = BUF_INIT, body2 = BUF_INIT, xb = BUF_INIT;
	const char *repo = "app/ab";
	blob(repo, 'c', CFG, &c1);
	blob(repo, 'C', CFG, &c2);
	blob(repo, 'l', OWN, &l1);
	blob(repo, 'L', OWN, &l2);
	blob(repo, 's', SHARED, &sh);
	struct digest la[2] = { l1, sh }, lb[2] = { sh, l2 };
	int64_t ls[2] = { OWN, SHARED }, lsb[2] = { SHARED, OWN };
	m1_len = image(repo, &c1, CFG, la, ls, 2, "Z", NULL, &m1);
	m2_len = image(repo, &c2, CFG, lb, lsb, 2, "V2", "bob", &m2);
	manifest_bytes(repo, &m1, &body1);
	manifest_bytes(repo, &m2, &body2);
	tag_again(repo, "v1", &body1, "alice");
	tag_again(repo, "v1-rc", &body1, "alice");
	tag_again(repo, "v1_0", &body1, "alice");
	tag_again(repo, "v1.0", &body2, "carol");
	buf_addf(&xb, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[", OCI_INDEX);
	add_desc(&xb, OCI_MANIFEST, &m1, m1_len);
	buf_addch(&xb, ',');
	add_desc(&xb, OCI_MANIFEST, &m2, m2_len);
	buf_adds(&xb, "]}");
	tag_again(repo, "latest", &xb, "alice");
	x_len = (int64_t)xb.len;
	digest_of(DIGEST_SHA256, xb.buf, xb.len, &x);
	digest_names[0] = "m1";
	digest_names[1] = "m2";
	digest_names[2] = "x";
	digest_str(&m1, digest_strs[0]);
	digest_str(&m2, digest_strs[1]);
	digest_str(&x, digest_strs[2]);
	set_times(repo, NULL, 0, 1000);
	set_times(repo, "Z", 2000, -1);
	set_times(repo, "v1", 2000, -1);
	set_times(repo, "v1-rc", 2000, -1);
	set_times(repo, "v1.0", 3000, -1);
	set_times(repo, "V2", 4000, -1);
	set_times(repo, "latest", 5000, -1);
	set_times(repo, "v1_0", 5000, -1);
	buf_release(&body1);
	buf_release(&body2);
	buf_release(&xb);
}

/* A repository of one image (config CFG, one layer OWN bytes of c) tagged "t" at tag_ms. */
static void fill_small(const char *repo, char c, int64_t tag_ms)
{
	struct digest cfg, layer, m;
	int64_t ls = OWN;
	blob(repo, (char)(c + 1), CFG, &cfg);
	blob(repo, c, OWN, &layer);
	image(repo, &cfg, CFG, &layer, &ls, 1, "t", "dave", &m);
	set_times(repo, "t", tag_ms, 1000);
}

static void test_repositories(void)
{
	int64_t image_size, ab_size;
	fill_app_ab();
	fill_small("app/a-c", 'a', 5000);
	fill_small("app/a.d", 'b', 5000);
	fill_small("zz_top", 'd', 3000);
	{
		/* blob links only: listed, empty */
		struct digest d;
		blob("app/a/b", 'e', 10, &d);
		/* content gone: the repository row stays, the listing leaves it out */
		blob("app/gone", 'f', 10, &d);
		CHECK_EQ_INT(store_blob_unlink(st, "app/gone", &d), 0);
	}
	/* m1 and m2 have the same length (same shape, digests of one length) */
	CHECK_EQ_INT(m1_len, m2_len);
	ab_size = m1_len + m2_len + x_len + 2 * CFG + 2 * OWN + SHARED;
	/* a small image: its manifest, config and layer */
	struct reference ref = { 0 };
	struct store_manifest sm;
	struct store_reader rd;
	memcpy(ref.tag, "t", 2);
	CHECK_EQ_INT(store_manifest_get(st, "app/a-c", &ref, &sm, &rd, NULL), 0);
	image_size = sm.size + CFG + OWN;
	store_reader_release(&rd);
	store_manifest_release(&sm);

	const struct row repos[] = {
		{ "app/ab", 5000, ab_size, 7, NULL, NULL },
		{ "app/a-c", 5000, image_size, 1, NULL, NULL },
		{ "app/a.d", 5000, image_size, 1, NULL, NULL },
		{ "app/a/b", 0, 0, 0, NULL, NULL },
		{ "zz_top", 3000, image_size, 1, NULL, NULL },
	};
	size_t n = sizeof(repos) / sizeof(repos[0]);
	check_orders("repositories", NULL, repos, n, NULL, NULL);
	check_orders("repositories containing \"a.\"", NULL, repos, n, "a.", NULL);
	/* LIKE's wildcards are literal: "_" is only zz_top's, "%" nobody's */
	check_orders("repositories containing \"_\"", NULL, repos, n, "_", NULL);
	check_orders("repositories containing \"%\"", NULL, repos, n, "%", NULL);
	check_orders("repositories without app/a.d", NULL, repos, n, NULL, "app/a.d");
	check_orders("repositories with app/ but app/a.d", NULL, repos, n, "app/", "app/a.d");
}

static void test_tags(void)
{
	int64_t img = m1_len + CFG + OWN + SHARED;
	int64_t idx = x_len + m1_len + m2_len + 2 * CFG + 2 * OWN + SHARED;
	const struct row tags[] = {
		{ "Z", 2000, img, 0, "m1", NULL },
		{ "V2", 4000, img, 0, "m2", "bob" },
		{ "latest", 5000, idx, 0, "x", "alice" },
		{ "v1", 2000, img, 0, "m1", "alice" },
		{ "v1-rc", 2000, img, 0, "m1", "alice" },
		{ "v1.0", 3000, img, 0, "m2", "carol" },
		{ "v1_0", 5000, img, 0, "m1", "alice" },
	};
	size_t n = sizeof(tags) / sizeof(tags[0]);
	check_orders("tags", "app/ab", tags, n, NULL, NULL);
	/* tag filters ignore ASCII case */
	check_orders("tags containing \"V1\"", "app/ab", tags, n, "v1", NULL);
	check_orders("tags containing \"1_\"", "app/ab", tags, n, "1_", NULL);
	check_orders("tags containing \"%\"", "app/ab", tags, n, "%", NULL);
	struct store_browse_page pg = { .n = 10, .contains = "V1" };
	struct walk w = { BUF_INIT, BUF_INIT, 0, 0, 0, tags, n };
	int more = 1;
	CHECK_EQ_INT(store_browse_tags(st, "app/ab", &pg, on_tag, &w, &more), 0);
	CHECK_STR(w.names.buf, "v1;v1-rc;v1.0;v1_0;");
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(store_browse_tags(st, "app/none", &pg, on_tag, &w, &more), E_NAME_UNKNOWN);
	/* an existing repository with no tag: an empty page, no error */
	buf_reset(&w.names);
	CHECK_EQ_INT(store_browse_tags(st, "app/a/b", &pg, on_tag, &w, &more), 0);
	CHECK_EQ_INT(w.names.len, 0);
	buf_release(&w.names);
	buf_release(&w.last);
}

static int add_name(void *ctx, const char *s)
{
	buf_addf(ctx, "%s;", s);
	return 0;
}

static void test_tags_at(void)
{
	struct buf got = BUF_INIT;
	int more = 0;
	CHECK_EQ_INT(store_browse_tags_at(st, "app/ab", digest_strs[0], 2, add_name, &got, &more), 0);
	CHECK_STR(got.buf, "Z;v1;");
	CHECK_EQ_INT(more, 1);
	buf_reset(&got);
	CHECK_EQ_INT(store_browse_tags_at(st, "app/ab", digest_strs[0], 4, add_name, &got, &more), 0);
	CHECK_STR(got.buf, "Z;v1;v1-rc;v1_0;");
	CHECK_EQ_INT(more, 0);
	buf_reset(&got);
	CHECK_EQ_INT(store_browse_tags_at(st, "app/ab", digest_strs[1], 10, add_name, &got, &more), 0);
	CHECK_STR(got.buf, "V2;v1.0;");
	buf_reset(&got);
	CHECK_EQ_INT(store_browse_tags_at(st, "app/a-c", digest_strs[1], 10, add_name, &got, &more), 0);
	CHECK_EQ_INT(got.len, 0);
	CHECK_EQ_INT(more, 0);
	buf_release(&got);
}

/*
 * On PostgreSQL: a database of its own whose default collation is ICU's
 * en-US when the server has it (where "V2" sorts after "latest" and
 * punctuation is nearly ignored), so byte order must come from the
 * schema's COLLATE "C". Its URL into out; without ICU a plain database
 * (the test still runs there).
 */
static void pg_database(struct buf *out)
{
	const char *name = "bt_browse_icu";
	char q[256];
	snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS %s", name);
	t_pg_admin(q);
	snprintf(q, sizeof(q), "CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu"
		 " ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'", name);
	if (t_pg_admin(q)) {
		printf("note: no ICU collation on this server; a plain database instead\n");
		snprintf(q, sizeof(q), "CREATE DATABASE %s", name);
		CHECK_EQ_INT(t_pg_admin(q), 0);
	}
	t_pg_conninfo(out, t_pg_url(), name);
}

int main(void)
{
	struct buf base = BUF_INIT, root = BUF_INIT;
	t_meta_engine_or_skip();
	if (t_scratch(&base, "meta-browse"))
		return 1;
	buf_addf(&root, "%s/data", base.buf);
	buf_init(&db_target, 0);
	struct store_config sc = { .root = root.buf };
	if (t_meta_pg()) {
		pg_database(&db_target);
		sc.db_url = db_target.buf;
	} else {
		store_local_path(root.buf, STORE_PATH_DB, &db_target);
	}
	CHECK_EQ_INT(store_open_config(&sc, &st), 0);
	if (st) {
		test_repositories();
		test_tags();
		test_tags_at();
	}
	store_close(st);
	t_rmtree(base.buf);
	buf_release(&db_target);
	buf_release(&root);
	buf_release(&base);
	return t_done();
}
