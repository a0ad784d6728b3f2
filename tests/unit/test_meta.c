/*
 * Unit tests for storage/meta: opening and migrations, blobs, uploads and
 * finding stale ones, manifests, tags and their history, listings,
 * referrers, locking and concurrent use from several threads. Runs in a fresh scratch directory
 * that is removed at the end, on SQLite or, with BERTH_PG_URL, on fresh
 * PostgreSQL databases (t_meta.h). A few white-box checks read the
 * database directly to see what the API cannot show.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "digest.h"
#include "err.h"
#include "manifest.h"
#include "meta.h"
#include "names.h"
#include "t.h"
#include "t_meta.h"

static char mt_manifest[] = MT_OCI_MANIFEST;
static char mt_index[] = MT_OCI_INDEX;
static char at_image[] = "application/vnd.oci.image.config.v1+json";
static char at_sig[] = "application/vnd.example.signature";
static char at_sbom[] = "application/spdx+json";
static char annot[] = "{\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\"}";

/* The schema version this berth migrates to. */
#define SCHEMA_LATEST 4

static struct buf dbpath = BUF_INIT;

static struct digest dg(const char *seed)
{
	struct digest d;
	digest_of(DIGEST_SHA256, seed, strlen(seed), &d);
	return d;
}

static struct manifest_ref ref(enum ref_kind kind, struct digest d, int external)
{
	struct manifest_ref r = { .kind = kind, .digest = d, .size = 1, .external = external };
	return r;
}

static void mi_set(struct manifest_info *mi, char *mt, char *at, struct manifest_ref *refs, size_t n)
{
	memset(mi, 0, sizeof(*mi));
	mi->media_type = mt;
	mi->artifact_type = at;
	mi->refs = refs;
	mi->nrefs = n;
}

/* "old", "new" or a digest, shortened to its first 8 hex digits; "-" for NULL. */
static void add_short(struct buf *b, const char *digest)
{
	const char *colon = digest ? strchr(digest, ':') : NULL;
	if (colon)
		buf_add(b, colon + 1, 8);
	else
		buf_adds(b, "-");
}

static const char *short_of(const struct digest *d, char *out)
{
	char s[DIGEST_STR_MAX];
	struct buf b = BUF_INIT;
	add_short(&b, digest_str(d, s));
	memcpy(out, b.buf, b.len + 1);
	buf_release(&b);
	return out;
}

static int collect(void *ctx, const char *s)
{
	struct buf *b = ctx;
	if (b->len)
		buf_addch(b, ' ');
	buf_adds(b, s);
	return 0;
}

static int count_cb(void *ctx, const char *s)
{
	(void)s;
	(*(long *)ctx)++;
	return 0;
}

static int stop_cb(void *ctx, const char *s)
{
	(void)s;
	(*(long *)ctx)++;
	return 7;
}

/* Catalog filter: everything except names containing "hidden". */
static int not_hidden(void *ctx, const char *s)
{
	(void)ctx;
	return strstr(s, "hidden") == NULL;
}

struct hist {
	struct buf text; /* one "old>new how actor client" line per event */
	int64_t last_id, min_time, max_time;
	int ordered;
};

static int hist_cb(void *ctx, const struct meta_tag_event *ev)
{
	struct hist *h = ctx;
	if (h->last_id && ev->id >= h->last_id)
		h->ordered = 0;
	h->last_id = ev->id;
	if (!h->min_time || ev->time_ms < h->min_time)
		h->min_time = ev->time_ms;
	if (ev->time_ms > h->max_time)
		h->max_time = ev->time_ms;
	add_short(&h->text, ev->old_digest);
	buf_addch(&h->text, '>');
	add_short(&h->text, ev->new_digest);
	buf_addf(&h->text, " %s %s %s\n", ev->how ? ev->how : "-", ev->actor ? ev->actor : "-",
		 ev->client ? ev->client : "-");
	return 0;
}

static void hist_get(const char *repo, const char *tag, struct hist *h, int *rc)
{
	memset(h, 0, sizeof(*h));
	buf_init(&h->text, 0);
	h->ordered = 1;
	*rc = meta_tag_history(tm, repo, tag, hist_cb, h);
}

static int ref_cb(void *ctx, const struct meta_manifest *m)
{
	struct buf *b = ctx;
	char s[DIGEST_STR_MAX];
	if (b->len)
		buf_addch(b, ' ');
	add_short(b, digest_str(&m->digest, s));
	buf_addf(b, ":%s:%lld", m->artifact_type ? m->artifact_type : "-", (long long)m->size);
	return 0;
}

static int ref_stop_cb(void *ctx, const struct meta_manifest *m)
{
	(void)m;
	(*(long *)ctx)++;
	return 3;
}

static int get_ref(const char *repo, const char *tag_or_digest, struct meta_manifest *m)
{
	struct reference r;
	int rc = reference_parse(tag_or_digest, strlen(tag_or_digest), &r);
	if (rc)
		return rc;
	return meta_manifest_get(tm, repo, &r, m);
}

/* Digest a tag points at in *out; returns meta_manifest_get's code. */
static int tag_target(const char *repo, const char *tag, struct digest *out)
{
	struct meta_manifest m;
	int rc = get_ref(repo, tag, &m);
	if (!rc)
		*out = m.digest;
	meta_manifest_release(&m);
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define raw_int t_raw_int
#define raw_exec t_raw_exec

/* ---- open / close ---- */

static void test_not_open(void)
{
	struct digest d = dg("x");
	CHECK_EQ_INT(meta_schema_version(tm), 0);
	CHECK_EQ_INT(meta_blob_known(tm, &d, NULL), E_INTERNAL);
	CHECK_EQ_INT(meta_repo_exists(tm, "a"), E_INTERNAL);
}

static void test_open(void)
{
	CHECK_EQ_INT(t_meta_open(dbpath.buf), 0);
	CHECK_EQ_INT(meta_schema_version(tm), SCHEMA_LATEST);
	/* the harness's slip (opening tm twice) is refused without harm */
	CHECK_EQ_INT(t_meta_open(dbpath.buf), E_INTERNAL);
	CHECK_EQ_INT(meta_schema_version(tm), SCHEMA_LATEST);
	CHECK_EQ_INT(meta_repo_exists(tm, "nothing"), E_NAME_UNKNOWN);
}

/* ---- blobs ---- */

static void test_blobs(void)
{
	struct digest d1 = dg("blob-1"), d2 = dg("blob-2");
	int64_t size = -1;
	struct buf b = BUF_INIT;
	long calls = 0;

	CHECK_EQ_INT(meta_blob_linked(tm, "lib/alpine", &d1, &size), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(meta_blob_known(tm, &d1, &size), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(meta_blob_link(tm, "lib/alpine", &d1, 10), 0);
	CHECK_EQ_INT(meta_blob_linked(tm, "lib/alpine", &d1, &size), 0);
	CHECK_EQ_INT(size, 10);
	CHECK_EQ_INT(meta_blob_linked(tm, "lib/alpine", &d1, NULL), 0);
	CHECK_EQ_INT(meta_blob_linked(tm, "lib/alpine", &d2, NULL), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(meta_blob_linked(tm, "lib/alpine2", &d1, NULL), E_BLOB_UNKNOWN);
	size = -1;
	CHECK_EQ_INT(meta_blob_known(tm, &d1, &size), 0);
	CHECK_EQ_INT(size, 10);
	CHECK_EQ_INT(meta_blob_known(tm, &d1, NULL), 0);
	/* idempotent */
	CHECK_EQ_INT(meta_blob_link(tm, "lib/alpine", &d1, 10), 0);
	CHECK_EQ_INT(meta_repo_exists(tm, "lib/alpine"), 0);
	CHECK_EQ_INT(meta_repo_exists(tm, "lib"), E_NAME_UNKNOWN);

	CHECK_EQ_INT(meta_blob_link(tm, "zz/other", &d1, 10), 0);
	CHECK_EQ_INT(meta_blob_link(tm, "aa/other", &d1, 10), 0);
	CHECK_EQ_INT(meta_blob_repos(tm, &d1, collect, &b), 0);
	CHECK_STR(b.buf, "aa/other lib/alpine zz/other");
	CHECK_EQ_INT(meta_blob_repos(tm, &d1, stop_cb, &calls), 7);
	CHECK_EQ_INT(calls, 1);
	buf_reset(&b);
	CHECK_EQ_INT(meta_blob_repos(tm, &d2, collect, &b), 0);
	CHECK_STR(b.buf, "");

	CHECK_EQ_INT(meta_blob_unlink(tm, "zz/other", &d1), 0);
	CHECK_EQ_INT(meta_blob_unlink(tm, "zz/other", &d1), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(meta_blob_unlink(tm, "no/such", &d1), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(meta_blob_linked(tm, "zz/other", &d1, NULL), E_BLOB_UNKNOWN);
	/* its only link gone, the repository no longer exists */
	CHECK_EQ_INT(meta_repo_exists(tm, "zz/other"), E_NAME_UNKNOWN);
	CHECK_EQ_INT(meta_blob_unlink(tm, "aa/other", &d1), 0);
	CHECK_EQ_INT(meta_blob_unlink(tm, "lib/alpine", &d1), 0);
	/* linked nowhere: unknown, even though GC has not removed the record yet */
	CHECK_EQ_INT(meta_blob_known(tm, &d1, NULL), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(meta_blob_link(tm, "lib/alpine", &d1, 10), 0);
	CHECK_EQ_INT(meta_blob_known(tm, &d1, NULL), 0);

	/* sha512 digests are stored and found like any other */
	struct digest d512;
	digest_of(DIGEST_SHA512, "big", 3, &d512);
	CHECK_EQ_INT(meta_blob_link(tm, "lib/alpine", &d512, 3), 0);
	CHECK_EQ_INT(meta_blob_linked(tm, "lib/alpine", &d512, &size), 0);
	CHECK_EQ_INT(size, 3);
	buf_release(&b);
}

/* ---- uploads ---- */

static void test_uploads(void)
{
	const char *id1 = "0123456789abcdef0123456789abcdef";
	const char *id2 = "fedcba9876543210fedcba9876543210";
	struct digest d = dg("uploaded");
	int64_t size = 0;

	CHECK_EQ_INT(meta_upload_check(tm, id1, "up/x"), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(meta_upload_create(tm, id1, "up/x"), 0);
	CHECK_EQ_INT(meta_upload_create(tm, id1, "up/x"), E_EXISTS);
	CHECK_EQ_INT(meta_upload_check(tm, id1, "up/x"), 0);
	CHECK_EQ_INT(meta_upload_check(tm, id1, "up/y"), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(meta_upload_check(tm, id2, "up/x"), E_BLOB_UPLOAD_UNKNOWN);
	/* an upload alone does not make a repository visible */
	CHECK_EQ_INT(meta_repo_exists(tm, "up/x"), E_NAME_UNKNOWN);

	/* the wrong repository changes nothing */
	CHECK_EQ_INT(meta_upload_commit(tm, id1, "up/y", &d, 5), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(meta_blob_linked(tm, "up/y", &d, NULL), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(meta_upload_check(tm, id1, "up/x"), 0);

	CHECK_EQ_INT(meta_upload_commit(tm, id1, "up/x", &d, 5), 0);
	CHECK_EQ_INT(meta_blob_linked(tm, "up/x", &d, &size), 0);
	CHECK_EQ_INT(size, 5);
	CHECK_EQ_INT(meta_upload_check(tm, id1, "up/x"), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(meta_upload_commit(tm, id1, "up/x", &d, 5), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(meta_repo_exists(tm, "up/x"), 0);

	CHECK_EQ_INT(meta_upload_create(tm, id2, "up/x"), 0);
	CHECK_EQ_INT(meta_upload_delete(tm, id2), 0);
	CHECK_EQ_INT(meta_upload_delete(tm, id2), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(meta_upload_check(tm, id2, "up/x"), E_BLOB_UPLOAD_UNKNOWN);
}

static void test_uploads_stale(void)
{
	static const char *const ids[] = {
		"00000000000000000000000000000001",
		"00000000000000000000000000000002",
		"00000000000000000000000000000003",
	};
	struct buf b = BUF_INIT, sql = BUF_INIT;
	long calls = 0;

	CHECK_EQ_INT(meta_upload_touch(tm, ids[0]), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(meta_uploads_stale(tm, now_ms() + 1000, collect, &b), 0);
	CHECK_STR(b.buf, "");
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(meta_upload_create(tm, ids[i], "up/stale"), 0);
	/* fresh uploads are stale only for a cut-off in the future */
	CHECK_EQ_INT(meta_uploads_stale(tm, now_ms() - 60000, collect, &b), 0);
	CHECK_STR(b.buf, "");
	CHECK_EQ_INT(meta_uploads_stale(tm, now_ms() + 1000, collect, &b), 0);
	CHECK_STR(b.buf, "00000000000000000000000000000001 00000000000000000000000000000002"
			 " 00000000000000000000000000000003");
	/* age them by hand: the third oldest, then the first, then the second */
	static const int updated[] = { 2000, 3000, 1000 };
	for (int i = 0; i < 3; i++) {
		buf_reset(&sql);
		buf_addf(&sql, "UPDATE uploads SET updated_ms = %d WHERE id = '%s'", updated[i], ids[i]);
		CHECK_EQ_INT(raw_exec(dbpath.buf, sql.buf), 0);
	}
	buf_reset(&b);
	CHECK_EQ_INT(meta_uploads_stale(tm, 2001, collect, &b), 0);
	CHECK_STR(b.buf, "00000000000000000000000000000003 00000000000000000000000000000001");
	/* strictly before the cut-off */
	buf_reset(&b);
	CHECK_EQ_INT(meta_uploads_stale(tm, 2000, collect, &b), 0);
	CHECK_STR(b.buf, "00000000000000000000000000000003");
	buf_reset(&b);
	CHECK_EQ_INT(meta_uploads_stale(tm, 1000, collect, &b), 0);
	CHECK_STR(b.buf, "");
	CHECK_EQ_INT(meta_uploads_stale(tm, INT64_MAX, stop_cb, &calls), 7);
	CHECK_EQ_INT(calls, 1);

	/* a touched upload is no longer stale */
	int64_t before = now_ms();
	CHECK_EQ_INT(meta_upload_touch(tm, ids[2]), 0);
	CHECK(raw_int(dbpath.buf, "SELECT updated_ms FROM uploads WHERE id = '00000000000000000000000000000003'") >=
	      before);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT created_ms > 3000 FROM uploads"
					 " WHERE id = '00000000000000000000000000000003'"), 1);
	buf_reset(&b);
	CHECK_EQ_INT(meta_uploads_stale(tm, before, collect, &b), 0);
	CHECK_STR(b.buf, "00000000000000000000000000000001 00000000000000000000000000000002");

	/* purge them the way a sweeper would: collect, then delete */
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(meta_upload_delete(tm, ids[i]), 0);
	CHECK_EQ_INT(meta_upload_touch(tm, ids[0]), E_BLOB_UPLOAD_UNKNOWN);
	buf_reset(&b);
	CHECK_EQ_INT(meta_uploads_stale(tm, INT64_MAX, collect, &b), 0);
	CHECK_STR(b.buf, "");
	buf_release(&sql);
	buf_release(&b);
}

/* ---- manifests, tags, history ---- */

static void test_manifests(void)
{
	struct digest cfg = dg("config"), l1 = dg("layer-1"), l2 = dg("layer-2"), ext = dg("foreign");
	struct digest m1 = dg("manifest-1"), m2 = dg("manifest-2"), m3 = dg("manifest-3");
	struct digest idx = dg("index"), missing = dg("missing"), got;
	struct manifest_ref refs[4];
	struct manifest_info mi;
	struct meta_manifest m;
	struct buf detail = BUF_INIT;
	struct hist h;
	char s[DIGEST_STR_MAX], a[16], b[16], want[512];
	int rc;
	struct meta_actor alice = { .name = "alice", .how = "push", .client = "192.0.2.1" };
	struct meta_actor bob = { .name = "bob", .how = "retag", .client = "192.0.2.2" };
	int64_t before = now_ms();

	refs[0] = ref(REF_CONFIG, cfg, 0);
	refs[1] = ref(REF_LAYER, l1, 0);
	refs[2] = ref(REF_LAYER, ext, 1);
	mi_set(&mi, mt_manifest, at_image, refs, 3);
	mi.annotations = annot;

	/* nothing linked yet: refused, the first missing digest named, nothing created */
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m1, 100, &mi, "v1", &alice, &detail), E_MANIFEST_BLOB_UNKNOWN);
	snprintf(want, sizeof(want), "blob unknown: %s", digest_str(&cfg, s));
	CHECK_STR(detail.buf, want);
	CHECK_EQ_INT(meta_repo_exists(tm, "app"), E_NAME_UNKNOWN);
	CHECK_EQ_INT(meta_blob_link(tm, "app", &cfg, 7), 0);
	buf_reset(&detail);
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m1, 100, &mi, "v1", &alice, &detail), E_MANIFEST_BLOB_UNKNOWN);
	snprintf(want, sizeof(want), "blob unknown: %s", digest_str(&l1, s));
	CHECK_STR(detail.buf, want);
	/* linked to another repository does not count; NULL detail is fine */
	CHECK_EQ_INT(meta_blob_link(tm, "elsewhere", &l1, 11), 0);
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m1, 100, &mi, "v1", &alice, NULL), E_MANIFEST_BLOB_UNKNOWN);
	hist_get("app", "v1", &h, &rc);
	CHECK_EQ_INT(rc, 0);
	CHECK_STR(h.text.buf, "");

	/* the external layer never needs to exist */
	CHECK_EQ_INT(meta_blob_link(tm, "app", &l1, 11), 0);
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m1, 100, &mi, "v1", &alice, NULL), 0);
	CHECK_EQ_INT(get_ref("app", "v1", &m), 0);
	CHECK(digest_eq(&m.digest, &m1));
	CHECK_EQ_INT(m.size, 100);
	CHECK_STR(m.media_type, MT_OCI_MANIFEST);
	CHECK_STR(m.artifact_type, at_image);
	CHECK_STR(m.annotations, annot);
	meta_manifest_release(&m);
	meta_manifest_release(&m);
	CHECK_EQ_INT(get_ref("app", digest_str(&m1, s), &m), 0);
	CHECK(digest_eq(&m.digest, &m1));
	CHECK_STR(m.media_type, MT_OCI_MANIFEST);
	meta_manifest_release(&m);
	/* the manifest's own bytes are a blob of the repository */
	int64_t size = 0;
	CHECK_EQ_INT(meta_blob_linked(tm, "app", &m1, &size), 0);
	CHECK_EQ_INT(size, 100);

	/* absent: unknown tag, digest, repository */
	CHECK_EQ_INT(get_ref("app", "nope", &m), E_MANIFEST_UNKNOWN);
	CHECK(m.media_type == NULL);
	CHECK_EQ_INT(get_ref("app", digest_str(&missing, s), &m), E_MANIFEST_UNKNOWN);
	CHECK_EQ_INT(get_ref("no/repo", "v1", &m), E_MANIFEST_UNKNOWN);
	CHECK_EQ_INT(get_ref("elsewhere", digest_str(&m1, s), &m), E_MANIFEST_UNKNOWN);

	/* re-push of the same digest to the same tag: idempotent, no history row */
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m1, 100, &mi, "v1", &alice, NULL), 0);
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m1, 100, &mi, NULL, &alice, NULL), 0);
	hist_get("app", "v1", &h, &rc);
	CHECK_EQ_INT(rc, 0);
	snprintf(want, sizeof(want), "->%s push alice 192.0.2.1\n", short_of(&m1, a));
	CHECK_STR(h.text.buf, want);
	buf_release(&h.text);

	/* a second manifest moves v1; a NULL actor is allowed */
	refs[1] = ref(REF_LAYER, l2, 0);
	CHECK_EQ_INT(meta_blob_link(tm, "app", &l2, 12), 0);
	mi.annotations = NULL;
	mi.artifact_type = NULL;
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m2, 200, &mi, "v1", &bob, NULL), 0);
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m2, 200, &mi, "latest", NULL, NULL), 0);
	CHECK_EQ_INT(get_ref("app", "v1", &m), 0);
	CHECK(digest_eq(&m.digest, &m2));
	CHECK(m.artifact_type == NULL);
	CHECK(m.annotations == NULL);
	meta_manifest_release(&m);
	hist_get("app", "v1", &h, &rc);
	snprintf(want, sizeof(want), "%s>%s retag bob 192.0.2.2\n->%s push alice 192.0.2.1\n",
		 short_of(&m1, a), short_of(&m2, b), short_of(&m1, a));
	CHECK_STR(h.text.buf, want);
	CHECK(h.ordered);
	CHECK(h.min_time >= before && h.max_time <= now_ms());
	buf_release(&h.text);
	hist_get("app", "latest", &h, &rc);
	snprintf(want, sizeof(want), "->%s - - -\n", short_of(&m2, a));
	CHECK_STR(h.text.buf, want);
	buf_release(&h.text);
	/* moving back (a rollback) is recorded like any move */
	struct meta_actor op = { .name = "root", .how = "rollback", .client = NULL };
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m1, 100, &mi, "v1", &op, NULL), 0);
	CHECK_EQ_INT(tag_target("app", "v1", &got), 0);
	CHECK(digest_eq(&got, &m1));
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m2, 200, &mi, "v1", &op, NULL), 0);
	hist_get("app", "v1", &h, &rc);
	CHECK(h.ordered);
	snprintf(want, sizeof(want), "%s>%s rollback root -\n%s>%s rollback root -\n",
		 short_of(&m1, a), short_of(&m2, b), short_of(&m2, b), short_of(&m1, a));
	CHECK(!strncmp(h.text.buf, want, strlen(want)));
	buf_release(&h.text);
	hist_get("app", "never", &h, &rc);
	CHECK_EQ_INT(rc, 0);
	CHECK_STR(h.text.buf, "");
	hist_get("no/repo", "v1", &h, &rc);
	CHECK_EQ_INT(rc, 0);
	CHECK_STR(h.text.buf, "");

	/* index: children must be manifests of this repository */
	struct manifest_ref kids[3] = { ref(REF_CHILD, m1, 0), ref(REF_CHILD, missing, 0), ref(REF_CHILD, m2, 0) };
	struct manifest_info ii;
	mi_set(&ii, mt_index, NULL, kids, 3);
	buf_reset(&detail);
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &idx, 300, &ii, "multi", &alice, &detail), E_MANIFEST_BLOB_UNKNOWN);
	snprintf(want, sizeof(want), "manifest unknown: %s", digest_str(&missing, s));
	CHECK_STR(detail.buf, want);
	/* a blob with a child's digest is not a manifest */
	CHECK_EQ_INT(meta_blob_link(tm, "app", &missing, 1), 0);
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &idx, 300, &ii, "multi", &alice, NULL), E_MANIFEST_BLOB_UNKNOWN);
	kids[1] = kids[2];
	ii.nrefs = 2;
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &idx, 300, &ii, "multi", &alice, NULL), 0);
	CHECK_EQ_INT(get_ref("app", "multi", &m), 0);
	CHECK_STR(m.media_type, MT_OCI_INDEX);
	meta_manifest_release(&m);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM manifest_refs WHERE kind = 2"), 2);

	/* delete m1: its tags go (history rows how=delete), v1 on m2 stays */
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m1, 100, &mi, "old", &alice, NULL), 0);
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m1, 100, &mi, "keep", &alice, NULL), 0);
	snprintf(want, sizeof(want), "SELECT count(*) FROM manifest_refs WHERE manifest = '%s'", digest_str(&m1, s));
	CHECK_EQ_INT(raw_int(dbpath.buf, want), 3);
	struct meta_actor del = { .name = "carol", .how = "ignored", .client = "198.51.100.7" };
	CHECK_EQ_INT(meta_manifest_delete(tm, "app", &m1, &del), 0);
	CHECK_EQ_INT(raw_int(dbpath.buf, want), 0);
	CHECK_EQ_INT(get_ref("app", digest_str(&m1, s), &m), E_MANIFEST_UNKNOWN);
	CHECK_EQ_INT(get_ref("app", "old", &m), E_MANIFEST_UNKNOWN);
	CHECK_EQ_INT(get_ref("app", "keep", &m), E_MANIFEST_UNKNOWN);
	CHECK_EQ_INT(tag_target("app", "v1", &got), 0);
	CHECK(digest_eq(&got, &m2));
	CHECK_EQ_INT(meta_blob_linked(tm, "app", &m1, NULL), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(meta_blob_linked(tm, "app", &l1, NULL), 0);
	hist_get("app", "old", &h, &rc);
	/* m1 was already in the repository: tagging it was a retag, not a push */
	snprintf(want, sizeof(want), "%s>- delete carol 198.51.100.7\n->%s retag alice 192.0.2.1\n",
		 short_of(&m1, a), short_of(&m1, b));
	CHECK_STR(h.text.buf, want);
	buf_release(&h.text);
	hist_get("app", "keep", &h, &rc);
	CHECK(!strncmp(h.text.buf, want, 9) && strstr(h.text.buf, " delete carol "));
	buf_release(&h.text);
	CHECK_EQ_INT(meta_manifest_delete(tm, "app", &m1, &del), E_MANIFEST_UNKNOWN);
	CHECK_EQ_INT(meta_manifest_delete(tm, "no/repo", &m1, &del), E_MANIFEST_UNKNOWN);
	/* deleted manifests can be pushed again */
	CHECK_EQ_INT(meta_manifest_put(tm, "app", &m1, 100, &mi, NULL, NULL, NULL), 0);
	CHECK_EQ_INT(meta_manifest_delete(tm, "app", &m1, NULL), 0);

	/* tag delete removes only the tag */
	CHECK_EQ_INT(meta_tag_delete(tm, "app", "v1", &del), 0);
	CHECK_EQ_INT(get_ref("app", "v1", &m), E_MANIFEST_UNKNOWN);
	CHECK_EQ_INT(get_ref("app", digest_str(&m2, s), &m), 0);
	meta_manifest_release(&m);
	CHECK_EQ_INT(tag_target("app", "latest", &got), 0);
	CHECK_EQ_INT(meta_tag_delete(tm, "app", "v1", &del), E_MANIFEST_UNKNOWN);
	CHECK_EQ_INT(meta_tag_delete(tm, "no/repo", "v1", &del), E_MANIFEST_UNKNOWN);
	hist_get("app", "v1", &h, &rc);
	snprintf(want, sizeof(want), "%s>- delete carol 198.51.100.7\n", short_of(&m2, a));
	CHECK(!strncmp(h.text.buf, want, strlen(want)));
	buf_release(&h.text);

	/* a repository emptied of blobs, manifests and tags disappears */
	struct manifest_info plain;
	mi_set(&plain, mt_manifest, NULL, NULL, 0);
	CHECK_EQ_INT(meta_manifest_put(tm, "gone/soon", &m3, 50, &plain, "t", &alice, NULL), 0);
	CHECK_EQ_INT(meta_repo_exists(tm, "gone/soon"), 0);
	CHECK_EQ_INT(meta_manifest_delete(tm, "gone/soon", &m3, &alice), 0);
	CHECK_EQ_INT(meta_repo_exists(tm, "gone/soon"), E_NAME_UNKNOWN);
	long n = 0;
	CHECK_EQ_INT(meta_tags_list(tm, "gone/soon", NULL, -1, count_cb, &n, NULL), E_NAME_UNKNOWN);
	/* its history survives */
	hist_get("gone/soon", "t", &h, &rc);
	CHECK(strstr(h.text.buf, " delete alice ") != NULL);
	buf_release(&h.text);

	CHECK_EQ_INT(raw_int(dbpath.buf, T_SQL_FK_ROWS), 0);
	buf_release(&detail);
}

/* ---- referrers ---- */

static void test_referrers(void)
{
	struct digest subj = dg("subject"), absent = dg("absent-subject");
	struct digest sig = dg("sig"), sbom = dg("sbom"), sig2 = dg("sig-2"), orphan = dg("orphan");
	struct manifest_info mi;
	struct buf b = BUF_INIT, want = BUF_INIT;
	char x[16];
	long calls = 0;

	mi_set(&mi, mt_manifest, NULL, NULL, 0);
	CHECK_EQ_INT(meta_manifest_put(tm, "refs", &subj, 10, &mi, "v1", NULL, NULL), 0);
	mi.has_subject = 1;
	mi.subject = subj;
	mi.artifact_type = at_sig;
	CHECK_EQ_INT(meta_manifest_put(tm, "refs", &sig, 11, &mi, NULL, NULL, NULL), 0);
	CHECK_EQ_INT(meta_manifest_put(tm, "refs", &sig2, 13, &mi, NULL, NULL, NULL), 0);
	mi.artifact_type = at_sbom;
	CHECK_EQ_INT(meta_manifest_put(tm, "refs", &sbom, 12, &mi, NULL, NULL, NULL), 0);
	/* the subject need not exist (referrers may be pushed first) */
	mi.subject = absent;
	CHECK_EQ_INT(meta_manifest_put(tm, "refs", &orphan, 14, &mi, NULL, NULL, NULL), 0);

	/* digest order, whatever the push order */
	struct expect {
		struct digest *d;
		const char *at;
		int size;
	} all[] = { { &sig, at_sig, 11 }, { &sbom, at_sbom, 12 }, { &sig2, at_sig, 13 } };
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (strcmp(all[j].d->hex, all[i].d->hex) < 0) {
				struct expect t = all[i];
				all[i] = all[j];
				all[j] = t;
			}
	for (int i = 0; i < 3; i++)
		buf_addf(&want, "%s%s:%s:%d", i ? " " : "", short_of(all[i].d, x), all[i].at, all[i].size);
	CHECK_EQ_INT(meta_referrers(tm, "refs", &subj, NULL, ref_cb, &b), 0);
	CHECK_STR(b.buf, want.buf);

	buf_reset(&b);
	buf_reset(&want);
	for (int i = 0; i < 3; i++)
		if (all[i].at == at_sig)
			buf_addf(&want, "%s%s:%s:%d", want.len ? " " : "", short_of(all[i].d, x), at_sig, all[i].size);
	CHECK_EQ_INT(meta_referrers(tm, "refs", &subj, at_sig, ref_cb, &b), 0);
	CHECK_STR(b.buf, want.buf);

	buf_reset(&b);
	buf_reset(&want);
	buf_addf(&want, "%s:%s:12", short_of(&sbom, x), at_sbom);
	CHECK_EQ_INT(meta_referrers(tm, "refs", &subj, at_sbom, ref_cb, &b), 0);
	CHECK_STR(b.buf, want.buf);

	buf_reset(&b);
	CHECK_EQ_INT(meta_referrers(tm, "refs", &subj, "application/none", ref_cb, &b), 0);
	CHECK_STR(b.buf, "");
	CHECK_EQ_INT(meta_referrers(tm, "no/repo", &subj, NULL, ref_cb, &b), 0);
	CHECK_STR(b.buf, "");
	CHECK_EQ_INT(meta_referrers(tm, "refs", &sig, NULL, ref_cb, &b), 0);
	CHECK_STR(b.buf, "");
	/* filtered by repository too */
	CHECK_EQ_INT(meta_referrers(tm, "app", &subj, NULL, ref_cb, &b), 0);
	CHECK_STR(b.buf, "");

	buf_reset(&want);
	buf_addf(&want, "%s:%s:14", short_of(&orphan, x), at_sbom);
	CHECK_EQ_INT(meta_referrers(tm, "refs", &absent, NULL, ref_cb, &b), 0);
	CHECK_STR(b.buf, want.buf);

	CHECK_EQ_INT(meta_referrers(tm, "refs", &subj, NULL, ref_stop_cb, &calls), 3);
	CHECK_EQ_INT(calls, 1);

	/* the subject is recorded as a reference too (for GC) */
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM manifest_refs WHERE kind = 3"), 4);
	/* deleting a referrer removes it from the list */
	CHECK_EQ_INT(meta_manifest_delete(tm, "refs", &sbom, NULL), 0);
	buf_reset(&b);
	CHECK_EQ_INT(meta_referrers(tm, "refs", &subj, at_sbom, ref_cb, &b), 0);
	CHECK_STR(b.buf, "");
	buf_release(&b);
	buf_release(&want);
}

/* ---- listings ---- */

static void test_tags_list(void)
{
	/* byte order: digits < upper case < '_' < lower case */
	static const char *const tags[] = { "b", "a1", "_x", "Z", "a", "1.0", "B" };
	const char *sorted = "1.0 B Z _x a a1 b";
	struct digest m = dg("paged");
	struct manifest_info mi;
	struct buf b = BUF_INIT;
	int more = -1;
	long calls = 0;

	mi_set(&mi, mt_manifest, NULL, NULL, 0);
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		CHECK_EQ_INT(meta_manifest_put(tm, "pg", &m, 10, &mi, tags[i], NULL, NULL), 0);

	CHECK_EQ_INT(meta_tags_list(tm, "pg", NULL, -1, collect, &b, &more), 0);
	CHECK_STR(b.buf, sorted);
	CHECK_EQ_INT(more, 0);
	buf_reset(&b);
	CHECK_EQ_INT(meta_tags_list(tm, "pg", NULL, 7, collect, &b, &more), 0);
	CHECK_STR(b.buf, sorted);
	CHECK_EQ_INT(more, 0);
	buf_reset(&b);
	CHECK_EQ_INT(meta_tags_list(tm, "pg", NULL, 100, collect, &b, &more), 0);
	CHECK_STR(b.buf, sorted);
	CHECK_EQ_INT(more, 0);
	buf_reset(&b);
	CHECK_EQ_INT(meta_tags_list(tm, "pg", NULL, 6, collect, &b, &more), 0);
	CHECK_STR(b.buf, "1.0 B Z _x a a1");
	CHECK_EQ_INT(more, 1);

	/* n = 0: nothing, but says whether there is anything */
	buf_reset(&b);
	CHECK_EQ_INT(meta_tags_list(tm, "pg", NULL, 0, collect, &b, &more), 0);
	CHECK_STR(b.buf, "");
	CHECK_EQ_INT(more, 1);
	CHECK_EQ_INT(meta_tags_list(tm, "pg", "b", 0, collect, &b, &more), 0);
	CHECK_EQ_INT(more, 0);

	/* pages of 2 */
	buf_reset(&b);
	CHECK_EQ_INT(meta_tags_list(tm, "pg", NULL, 2, collect, &b, &more), 0);
	CHECK_STR(b.buf, "1.0 B");
	CHECK_EQ_INT(more, 1);
	buf_reset(&b);
	CHECK_EQ_INT(meta_tags_list(tm, "pg", "B", 2, collect, &b, &more), 0);
	CHECK_STR(b.buf, "Z _x");
	CHECK_EQ_INT(more, 1);
	buf_reset(&b);
	CHECK_EQ_INT(meta_tags_list(tm, "pg", "_x", 2, collect, &b, &more), 0);
	CHECK_STR(b.buf, "a a1");
	CHECK_EQ_INT(more, 1);
	buf_reset(&b);
	CHECK_EQ_INT(meta_tags_list(tm, "pg", "a1", 2, collect, &b, &more), 0);
	CHECK_STR(b.buf, "b");
	CHECK_EQ_INT(more, 0);

	/* last need not be a tag; past the end is an empty page of an existing repository */
	buf_reset(&b);
	CHECK_EQ_INT(meta_tags_list(tm, "pg", "Y", 2, collect, &b, &more), 0);
	CHECK_STR(b.buf, "Z _x");
	buf_reset(&b);
	CHECK_EQ_INT(meta_tags_list(tm, "pg", "zzz", 2, collect, &b, &more), 0);
	CHECK_STR(b.buf, "");
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(meta_tags_list(tm, "pg", "zzz", -1, collect, &b, NULL), 0);
	CHECK_STR(b.buf, "");

	/* unknown repository; known one without tags */
	CHECK_EQ_INT(meta_tags_list(tm, "no/repo", NULL, -1, collect, &b, &more), E_NAME_UNKNOWN);
	CHECK_EQ_INT(meta_tags_list(tm, "lib/alpine", NULL, -1, collect, &b, &more), 0);
	CHECK_STR(b.buf, "");
	CHECK_EQ_INT(more, 0);

	CHECK_EQ_INT(meta_tags_list(tm, "pg", NULL, -1, stop_cb, &calls, &more), 7);
	CHECK_EQ_INT(calls, 1);
	buf_release(&b);
}

/* A tags-list callback that lists another repository: the same statement re-entered. */
struct nested {
	struct buf outer;
	long inner_total;
	int inner_rc;
};

static int nested_cb(void *ctx, const char *s)
{
	struct nested *n = ctx;
	collect(&n->outer, s);
	long cnt = 0;
	int rc = meta_tags_list(tm, "pg", NULL, -1, count_cb, &cnt, NULL);
	if (rc)
		n->inner_rc = rc;
	n->inner_total += cnt;
	if (meta_repo_exists(tm, "pg"))
		n->inner_rc = -100;
	return 0;
}

static void test_reentrant(void)
{
	struct nested n = { BUF_INIT, 0, 0 };
	int more = 0;
	CHECK_EQ_INT(meta_tags_list(tm, "pg", NULL, 3, nested_cb, &n, &more), 0);
	CHECK_STR(n.outer.buf, "1.0 B Z");
	CHECK_EQ_INT(n.inner_total, 21);
	CHECK_EQ_INT(n.inner_rc, 0);
	CHECK_EQ_INT(more, 1);
	buf_release(&n.outer);
}

static void test_catalog(void)
{
	struct digest d = dg("catalog-blob");
	struct buf b = BUF_INIT;
	int more = -1;
	long calls = 0;

	CHECK_EQ_INT(meta_blob_link(tm, "hidden/one", &d, 1), 0);
	CHECK_EQ_INT(meta_blob_link(tm, "hidden/two", &d, 1), 0);
	CHECK_EQ_INT(meta_blob_link(tm, "zz/hidden", &d, 1), 0);
	CHECK_EQ_INT(meta_catalog(tm, NULL, -1, NULL, NULL, collect, &b, &more), 0);
	CHECK_STR(b.buf, "app elsewhere hidden/one hidden/two lib/alpine pg refs up/x zz/hidden");
	CHECK_EQ_INT(more, 0);

	buf_reset(&b);
	CHECK_EQ_INT(meta_catalog(tm, NULL, -1, not_hidden, NULL, collect, &b, &more), 0);
	CHECK_STR(b.buf, "app elsewhere lib/alpine pg refs up/x");
	CHECK_EQ_INT(more, 0);

	/* excluded names do not count towards n */
	buf_reset(&b);
	CHECK_EQ_INT(meta_catalog(tm, NULL, 3, not_hidden, NULL, collect, &b, &more), 0);
	CHECK_STR(b.buf, "app elsewhere lib/alpine");
	CHECK_EQ_INT(more, 1);
	buf_reset(&b);
	CHECK_EQ_INT(meta_catalog(tm, "lib/alpine", 3, not_hidden, NULL, collect, &b, &more), 0);
	CHECK_STR(b.buf, "pg refs up/x");
	CHECK_EQ_INT(more, 0);
	buf_reset(&b);
	CHECK_EQ_INT(meta_catalog(tm, "elsewhere", 1, not_hidden, NULL, collect, &b, &more), 0);
	CHECK_STR(b.buf, "lib/alpine");
	CHECK_EQ_INT(more, 1);
	/* only an excluded name follows: more counts included names only */
	buf_reset(&b);
	CHECK_EQ_INT(meta_catalog(tm, "refs", 1, not_hidden, NULL, collect, &b, &more), 0);
	CHECK_STR(b.buf, "up/x");
	CHECK_EQ_INT(more, 0);
	buf_reset(&b);
	CHECK_EQ_INT(meta_catalog(tm, "refs", 1, NULL, NULL, collect, &b, &more), 0);
	CHECK_STR(b.buf, "up/x");
	CHECK_EQ_INT(more, 1);

	buf_reset(&b);
	CHECK_EQ_INT(meta_catalog(tm, NULL, 2, NULL, NULL, collect, &b, &more), 0);
	CHECK_STR(b.buf, "app elsewhere");
	CHECK_EQ_INT(more, 1);
	buf_reset(&b);
	CHECK_EQ_INT(meta_catalog(tm, "elsewhere", 2, NULL, NULL, collect, &b, &more), 0);
	CHECK_STR(b.buf, "hidden/one hidden/two");
	CHECK_EQ_INT(more, 1);

	buf_reset(&b);
	CHECK_EQ_INT(meta_catalog(tm, NULL, 0, NULL, NULL, collect, &b, &more), 0);
	CHECK_STR(b.buf, "");
	CHECK_EQ_INT(more, 1);
	CHECK_EQ_INT(meta_catalog(tm, "zz/hidden", 0, NULL, NULL, collect, &b, &more), 0);
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(meta_catalog(tm, "zzz", 5, NULL, NULL, collect, &b, &more), 0);
	CHECK_STR(b.buf, "");
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(meta_catalog(tm, NULL, 0, not_hidden, NULL, collect, &b, NULL), 0);

	CHECK_EQ_INT(meta_catalog(tm, NULL, -1, NULL, NULL, stop_cb, &calls, &more), 7);
	CHECK_EQ_INT(calls, 1);

	/* emptied repositories leave the catalog */
	CHECK_EQ_INT(meta_blob_unlink(tm, "hidden/two", &d), 0);
	buf_reset(&b);
	CHECK_EQ_INT(meta_catalog(tm, "hidden", 2, NULL, NULL, collect, &b, &more), 0);
	CHECK_STR(b.buf, "hidden/one lib/alpine");
	buf_release(&b);
}

/* ---- the queries of garbage collection, fsck and statistics (the same on both engines) ---- */

struct gcq {
	const char *repo;
	int64_t repo_id;
	int manifests, roots, refs, links, lines;
	char unlinked[DIGEST_STR_MAX];
	int seen_unlinked, fsck_linked;
};

static int gcq_repo(void *ctx, int64_t id, const char *name)
{
	struct gcq *q = ctx;
	if (!strcmp(name, q->repo))
		q->repo_id = id;
	return 0;
}

static int gcq_manifest(void *ctx, const struct meta_gc_manifest *m)
{
	struct gcq *q = ctx;
	q->manifests++;
	q->roots += m->root;
	return 0;
}

static int gcq_ref(void *ctx, const char *manifest, int kind, const char *digest)
{
	struct gcq *q = ctx;
	q->refs += manifest && digest && kind == REF_LAYER;
	return 0;
}

static int gcq_link(void *ctx, const char *digest, int64_t size, int64_t linked_ms)
{
	struct gcq *q = ctx;
	q->links += digest && size > 0 && linked_ms > 0;
	return 0;
}

static int gcq_blob(void *ctx, const char *digest, int64_t size)
{
	struct gcq *q = ctx;
	q->seen_unlinked += !strcmp(digest, q->unlinked) && size == 100;
	return 0;
}

static int gcq_fsck_manifest(void *ctx, const char *repo, const char *digest, const char *media_type, int linked)
{
	struct gcq *q = ctx;
	(void)digest;
	if (!strcmp(repo, q->repo) && !strcmp(media_type, MT_OCI_MANIFEST))
		q->fsck_linked += linked;
	return 0;
}

static int gcq_line(void *ctx, const char *line)
{
	struct gcq *q = ctx;
	fprintf(stderr, "fsck: %s\n", line);
	q->lines++;
	return 0;
}

static void test_gc_queries(void)
{
	struct digest layer = dg("gcq-layer"), m1 = dg("gcq-m1"), m2 = dg("gcq-m2");
	struct manifest_ref r = ref(REF_LAYER, layer, 0);
	struct manifest_info mi;
	struct gcq q = { .repo = "gcq/app" };
	struct meta_stats st0, st1;
	char s1[DIGEST_STR_MAX], s2[DIGEST_STR_MAX], sl[DIGEST_STR_MAX];
	int64_t far = now_ms() + 1000000000LL;
	struct meta_gc_cutoffs cut = { .history_ms = far, .young_ms = far, .grace_ms = far };
	mi_set(&mi, mt_manifest, NULL, &r, 1);
	CHECK_EQ_INT(meta_blob_link(tm, "gcq/app", &layer, 7), 0);
	CHECK_EQ_INT(meta_manifest_put(tm, "gcq/app", &m1, 100, &mi, "t1", NULL, NULL), 0);
	CHECK_EQ_INT(meta_manifest_put(tm, "gcq/app", &m2, 100, &mi, NULL, NULL, NULL), 0);
	CHECK_EQ_INT(meta_gc_repos(tm, gcq_repo, &q), 0);
	CHECK(q.repo_id > 0);

	/* marking: the tagged manifest is the only root once nothing counts as young */
	CHECK_EQ_INT(meta_gc_manifests(tm, q.repo_id, &cut, gcq_manifest, &q), 0);
	CHECK_EQ_INT(q.manifests, 2);
	CHECK_EQ_INT(q.roots, 1);
	struct meta_gc_cutoffs young = { .history_ms = far, .young_ms = 0, .grace_ms = far };
	q.manifests = q.roots = 0;
	CHECK_EQ_INT(meta_gc_manifests(tm, q.repo_id, &young, gcq_manifest, &q), 0);
	CHECK_EQ_INT(q.roots, 2);
	CHECK_EQ_INT(meta_gc_refs(tm, q.repo_id, gcq_ref, &q), 0);
	CHECK_EQ_INT(q.refs, 2);
	CHECK_EQ_INT(meta_gc_links(tm, q.repo_id, gcq_link, &q), 0);
	CHECK_EQ_INT(q.links, 3); /* the layer and both manifests' bytes */

	/* sweeping re-checks: m2 goes with its bytes' link, m1 (tagged) and the layer (used) stay */
	const char *dm[] = { digest_str(&m2, s2), digest_str(&m1, s1) };
	unsigned char done[2] = { 9, 9 };
	CHECK_EQ_INT(meta_gc_manifests_delete(tm, q.repo_id, dm, 2, &cut, done), 0);
	CHECK_EQ_INT(done[0], META_GC_DONE_MANIFEST | META_GC_DONE_LINK);
	CHECK_EQ_INT(done[1], 0);
	const char *dl[] = { digest_str(&layer, sl) };
	CHECK_EQ_INT(meta_gc_links_delete(tm, q.repo_id, dl, 1, far, done), 0);
	CHECK_EQ_INT(done[0], 0);
	snprintf(q.unlinked, sizeof(q.unlinked), "%s", s2);
	CHECK_EQ_INT(meta_gc_unlinked_blobs(tm, gcq_blob, &q), 0);
	CHECK_EQ_INT(q.seen_unlinked, 1);
	int row = 0;
	int64_t links = -1;
	CHECK_EQ_INT(meta_gc_blob_state(tm, s2, &row, &links), 0);
	CHECK_EQ_INT(row, 1);
	CHECK_EQ_INT(links, 0);
	CHECK_EQ_INT(meta_gc_blobs_delete(tm, dm, 1, done), 0);
	CHECK_EQ_INT(done[0], 1);
	CHECK_EQ_INT(meta_gc_blob_state(tm, s2, &row, NULL), 0);
	CHECK_EQ_INT(row, 0);

	/* fsck's views and the statistics */
	CHECK_EQ_INT(meta_fsck_manifests(tm, gcq_fsck_manifest, &q), 0);
	CHECK_EQ_INT(q.fsck_linked, 1);
	CHECK_EQ_INT(meta_fsck_database(tm, gcq_line, &q), 0);
	CHECK_EQ_INT(q.lines, 0);
	CHECK_EQ_INT(meta_stats(tm, &st0), 0);
	CHECK(st0.blobs > 0 && st0.blob_bytes > 0 && st0.manifests > 0 && st0.tags > 0);
	CHECK_EQ_INT(meta_audit_add(tm, NULL, "gc", NULL, "{\"bytes_freed\":123}", NULL), 0);
	CHECK_EQ_INT(meta_stats(tm, &st1), 0);
	CHECK_EQ_INT(st1.gc_runs - st0.gc_runs, 1);
	CHECK_EQ_INT(st1.gc_bytes_freed - st0.gc_bytes_freed, 123);
}

/* ---- locking ---- */

static void test_busy(void)
{
	struct digest d = dg("busy");
	struct db *db = t_raw_open(dbpath.buf);
	CHECK(db != NULL);
	if (!db)
		return;
	/* SQLite: the write lock; PostgreSQL: the version row every write transaction takes first */
	CHECK_EQ_INT(db_exec(db, t_sql("BEGIN IMMEDIATE", "BEGIN; UPDATE berth_version SET n = n + 1"), "lock"), 0);
	/* readers are not blocked by a writer (WAL; MVCC) */
	CHECK_EQ_INT(meta_repo_exists(tm, "pg"), 0);
	int64_t t0 = now_ms();
	CHECK_EQ_INT(meta_blob_link(tm, "busy", &d, 1), E_BUSY);
	CHECK(now_ms() - t0 >= 4000);
	CHECK_EQ_INT(db_exec(db, "ROLLBACK", "unlock"), 0);
	db_close(db);
	CHECK_EQ_INT(meta_repo_exists(tm, "busy"), E_NAME_UNKNOWN);
	CHECK_EQ_INT(meta_blob_link(tm, "busy", &d, 1), 0);
	CHECK_EQ_INT(meta_blob_unlink(tm, "busy", &d), 0);
}

/* ---- threads ---- */

#define N_WRITERS 4
#define N_READERS 4
#define ROUNDS 30

struct worker {
	int idx;
	int errors;
	long seen;
};

static void *writer(void *arg)
{
	struct worker *w = arg;
	char repo[32], seed[64], tag[16];
	struct meta_actor actor = { .name = "ci", .how = "push", .client = "203.0.113.9" };
	snprintf(repo, sizeof(repo), "conc/w%d", w->idx);
	for (int i = 0; i < ROUNDS; i++) {
		snprintf(seed, sizeof(seed), "layer-%d-%d", w->idx, i);
		struct digest l = dg(seed);
		snprintf(seed, sizeof(seed), "manifest-%d-%d", w->idx, i);
		struct digest m = dg(seed);
		struct manifest_ref r = ref(REF_LAYER, l, 0);
		struct manifest_info mi;
		mi_set(&mi, mt_manifest, NULL, &r, 1);
		snprintf(tag, sizeof(tag), "t%d", i);
		if (meta_blob_link(tm, repo, &l, 100 + i))
			w->errors++;
		if (meta_manifest_put(tm, repo, &m, 500, &mi, tag, &actor, NULL))
			w->errors++;
		if (meta_manifest_put(tm, repo, &m, 500, &mi, "latest", &actor, NULL))
			w->errors++;
	}
	return NULL;
}

static void *reader(void *arg)
{
	struct worker *w = arg;
	char repo[32];
	struct digest d;
	for (int i = 0; i < ROUNDS * 3; i++) {
		long n = 0;
		int more = 0;
		snprintf(repo, sizeof(repo), "conc/w%d", (i + w->idx) % N_WRITERS);
		int rc = meta_tags_list(tm, repo, NULL, -1, count_cb, &n, &more);
		if (rc && rc != E_NAME_UNKNOWN)
			w->errors++;
		w->seen += n;
		if (meta_catalog(tm, NULL, -1, NULL, NULL, count_cb, &n, &more))
			w->errors++;
		rc = tag_target(repo, "latest", &d);
		if (rc && rc != E_MANIFEST_UNKNOWN)
			w->errors++;
		if (!rc && meta_blob_linked(tm, repo, &d, NULL))
			w->errors++;
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[N_WRITERS + N_READERS];
	struct worker w[N_WRITERS + N_READERS];
	memset(w, 0, sizeof(w));
	for (int i = 0; i < N_WRITERS + N_READERS; i++) {
		w[i].idx = i;
		CHECK_EQ_INT(pthread_create(&th[i], NULL, i < N_WRITERS ? writer : reader, &w[i]), 0);
	}
	for (int i = 0; i < N_WRITERS + N_READERS; i++) {
		CHECK_EQ_INT(pthread_join(th[i], NULL), 0);
		CHECK_EQ_INT(w[i].errors, 0);
	}
	for (int i = 0; i < N_WRITERS; i++) {
		char repo[32];
		long n = 0;
		int more = 0, rc;
		struct hist h;
		snprintf(repo, sizeof(repo), "conc/w%d", i);
		CHECK_EQ_INT(meta_tags_list(tm, repo, NULL, -1, count_cb, &n, &more), 0);
		CHECK_EQ_INT(n, ROUNDS + 1);
		hist_get(repo, "latest", &h, &rc);
		CHECK_EQ_INT(rc, 0);
		CHECK(h.ordered);
		long lines = 0;
		for (const char *p = h.text.buf; *p; p++)
			lines += *p == '\n';
		CHECK_EQ_INT(lines, ROUNDS);
		buf_release(&h.text);
	}
}

static void *after_close(void *arg)
{
	*(int *)arg = meta_repo_exists(tm, "pg");
	return NULL;
}

/* ---- two databases open at once ---- */

struct two {
	struct meta *a, *b;
	int rounds, errors;
};

/* Writes to and reads from both, alternating: each thread gets a connection to each. */
static void *two_worker(void *arg)
{
	struct two *t = arg;
	for (int i = 0; i < t->rounds; i++) {
		char name[32];
		snprintf(name, sizeof(name), "w%d", i);
		struct digest d = dg(name);
		if (meta_blob_link(t->a, "in-a", &d, 1) || meta_blob_link(t->b, "in-b", &d, 2))
			t->errors++;
		int64_t size = 0;
		if (meta_blob_linked(t->a, "in-a", &d, &size) || size != 1)
			t->errors++;
		if (meta_blob_linked(t->b, "in-b", &d, &size) || size != 2)
			t->errors++;
		if (meta_blob_linked(t->a, "in-b", &d, NULL) != E_BLOB_UNKNOWN)
			t->errors++;
	}
	return NULL;
}

/*
 * tm (SQLite, or PostgreSQL in the pg suite) and a second SQLite file open
 * together: writes land in their own database, threads using both get two
 * connections and close them when they exit; closing one leaves the other
 * working on every thread, and a database opened after it is not
 * mistaken for the closed one.
 */
static void test_two_metas(const char *dir)
{
	struct buf p = BUF_INIT;
	struct meta *other = NULL, *third = NULL;
	struct digest d = dg("two");
	buf_addf(&p, "%s/other.db", dir);
	CHECK_EQ_INT(meta_open(p.buf, &other), 0);
	CHECK(other && other != tm);
	CHECK_EQ_INT(meta_blob_link(other, "only-other", &d, 5), 0);
	CHECK_EQ_INT(meta_repo_exists(other, "only-other"), 0);
	CHECK_EQ_INT(meta_repo_exists(tm, "only-other"), E_NAME_UNKNOWN);

	struct two t = { tm, other, 20, 0 };
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(pthread_create(&th[i], NULL, two_worker, &t), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(pthread_join(th[i], NULL), 0);
	CHECK_EQ_INT(t.errors, 0);
	CHECK_EQ_INT(meta_repo_exists(other, "in-b"), 0);
	CHECK_EQ_INT(meta_repo_exists(tm, "in-b"), E_NAME_UNKNOWN);
	CHECK_EQ_INT(meta_repo_exists(tm, "in-a"), 0);

	/* the same SQLite file twice: two metas on one database see each other's commits */
	CHECK_EQ_INT(meta_open(p.buf, &third), 0);
	CHECK_EQ_INT(meta_repo_exists(third, "only-other"), 0);
	struct digest e = dg("third");
	CHECK_EQ_INT(meta_blob_link(third, "from-third", &e, 3), 0);
	CHECK_EQ_INT(meta_repo_exists(other, "from-third"), 0);
	meta_close(third);

	/* a thread still holding a connection to a closed meta moves on to a new one */
	meta_close(other);
	CHECK_EQ_INT(meta_open(p.buf, &other), 0);
	CHECK_EQ_INT(meta_repo_exists(other, "from-third"), 0);
	CHECK_EQ_INT(meta_repo_exists(tm, "from-third"), E_NAME_UNKNOWN);
	meta_close(other);
	CHECK_EQ_INT(meta_repo_exists(tm, "in-a"), 0);
	buf_release(&p);
}

/* ---- reopening, refusing foreign files ---- */

static void test_reopen(void)
{
	struct digest got;
	pthread_t th;
	int rc = 0;
	t_meta_close();
	CHECK_EQ_INT(meta_repo_exists(tm, "pg"), E_INTERNAL);
	CHECK_EQ_INT(pthread_create(&th, NULL, after_close, &rc), 0);
	CHECK_EQ_INT(pthread_join(th, NULL), 0);
	CHECK_EQ_INT(rc, E_INTERNAL);
	t_meta_close(); /* harmless twice */

	CHECK_EQ_INT(t_meta_open(dbpath.buf), 0);
	CHECK_EQ_INT(meta_schema_version(tm), SCHEMA_LATEST);
	CHECK_EQ_INT(tag_target("pg", "a1", &got), 0);
	struct digest paged = dg("paged");
	CHECK(digest_eq(&got, &paged));
	CHECK_EQ_INT(meta_repo_exists(tm, "refs"), 0);
	struct hist h;
	hist_get("app", "v1", &h, &rc);
	CHECK(strstr(h.text.buf, " delete carol ") != NULL);
	buf_release(&h.text);
	CHECK_EQ_INT(raw_int(dbpath.buf, T_SQL_VERSION), SCHEMA_LATEST);
	CHECK_EQ_INT(raw_int(dbpath.buf, T_SQL_INTEGRITY), 1);
	if (t_meta_pg())
		return;
	CHECK_EQ_INT(raw_int(dbpath.buf, "PRAGMA application_id"), 0x62727468);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

/* PostgreSQL: a newer schema is refused; a server not there is told apart. */
static void test_foreign_pg(const char *dir)
{
	struct buf p = BUF_INIT;
	buf_addf(&p, "%s/newer.db", dir);
	CHECK_EQ_INT(t_meta_open(p.buf), 0);
	t_meta_close();
	CHECK_EQ_INT(raw_exec(p.buf, "UPDATE berth_schema SET version = 99"), 0);
	CHECK_EQ_INT(t_meta_open(p.buf), E_IO);
	CHECK_EQ_INT(meta_schema_version(tm), 0);

	/* nothing listens there: unavailable, not an I/O error, and quickly */
	int64_t t0 = now_ms();
	CHECK_EQ_INT(meta_open_url("postgresql://berth@127.0.0.1:1/berth?connect_timeout=3", &tm), E_STORE_UNAVAILABLE);
	CHECK(now_ms() - t0 < 4000);
	CHECK_EQ_INT(meta_schema_version(tm), 0);

	CHECK_EQ_INT(t_meta_open(dbpath.buf), 0);
	CHECK_EQ_INT(meta_repo_exists(tm, "pg"), 0);
	buf_release(&p);
}

static void test_foreign(const char *dir)
{
	struct buf p = BUF_INIT;
	t_meta_close();

	buf_addf(&p, "%s/foreign.db", dir);
	CHECK_EQ_INT(raw_exec(p.buf, "CREATE TABLE t(x INTEGER)"), 0);
	CHECK_EQ_INT(t_meta_open(p.buf), E_IO);
	CHECK_EQ_INT(meta_repo_exists(tm, "pg"), E_INTERNAL);
	/* refused without being changed */
	CHECK_EQ_INT(raw_int(p.buf, t_sql("SELECT journal_mode = 'delete' FROM pragma_journal_mode",
					  "SELECT count(*) = 1 FROM pg_tables WHERE schemaname = current_schema()")), 1);
	if (t_meta_pg()) {
		buf_release(&p);
		test_foreign_pg(dir);
		return;
	}

	buf_reset(&p);
	buf_addf(&p, "%s/newer.db", dir);
	CHECK_EQ_INT(raw_exec(p.buf, "PRAGMA application_id = 1651668072; PRAGMA user_version = 99;"
				     "CREATE TABLE future(x)"), 0);
	CHECK_EQ_INT(meta_open(p.buf, &tm), E_IO);

	buf_reset(&p);
	buf_addf(&p, "%s/garbage.db", dir);
	FILE *f = fopen(p.buf, "w");
	CHECK(f != NULL);
	if (f) {
		for (int i = 0; i < 200; i++)
			fputs("this is not a database file. ", f);
		fclose(f);
	}
	CHECK_EQ_INT(meta_open(p.buf, &tm), E_IO);

	buf_reset(&p);
	buf_addf(&p, "%s/no/such/dir/berth.db", dir);
	CHECK_EQ_INT(meta_open(p.buf, &tm), E_IO);
	CHECK_EQ_INT(meta_schema_version(tm), 0);

	/* still usable on the real file afterwards */
	CHECK_EQ_INT(t_meta_open(dbpath.buf), 0);
	CHECK_EQ_INT(meta_repo_exists(tm, "pg"), 0);
	buf_release(&p);
}

int main(void)
{
	struct buf dir = BUF_INIT;
	t_meta_engine_or_skip();
	if (t_scratch(&dir, "meta"))
		return 1;
	buf_addf(&dbpath, "%s/berth.db", dir.buf);

	test_not_open();
	test_open();
	test_blobs();
	test_uploads();
	test_uploads_stale();
	test_manifests();
	test_referrers();
	test_tags_list();
	test_reentrant();
	test_catalog();
	test_gc_queries();
	test_busy();
	test_threads();
	test_two_metas(dir.buf);
	test_reopen();
	test_foreign(dir.buf);
	t_meta_close();

	CHECK_EQ_INT(t_rmtree(dir.buf), 0);
	buf_release(&dir);
	buf_release(&dbpath);
	return t_done();
}
