/*
 * Unit tests for tag moves in storage/meta: "retag" versus "push", what a
 * write reports about the tags it changed, the immutable-tag guard on put,
 * tag delete and manifest delete (refused atomically: nothing changes),
 * rollback (by steps, to a digest, dry run, rollback of a rollback, across
 * a delete, and every refusal), tag overviews, manifest references and
 * token names. Runs in a fresh scratch directory removed at the end.
 */
#include <ftw.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static struct digest dg(const char *seed)
{
	struct digest d;
	digest_of(DIGEST_SHA256, seed, strlen(seed), &d);
	return d;
}

static const char *ds_of(const char *seed, char *out)
{
	struct digest d = dg(seed);
	return digest_str(&d, out);
}

/* Pushes manifest `seed` (one config, one layer of its own, plus `shared`) of size bytes. */
static int put(const char *repo, const char *seed, int64_t size, const char *tag, const struct meta_actor *actor)
{
	char cs[64], ls[64];
	snprintf(cs, sizeof(cs), "%s-config", seed);
	snprintf(ls, sizeof(ls), "%s-layer", seed);
	struct digest cfg = dg(cs), layer = dg(ls), shared = dg("shared-layer"), m = dg(seed);
	struct manifest_ref refs[3] = {
		{ .kind = REF_CONFIG, .digest = cfg, .size = 10 },
		{ .kind = REF_LAYER, .digest = shared, .size = 1000 },
		{ .kind = REF_LAYER, .digest = layer, .size = 20 },
	};
	struct manifest_info mi = { .media_type = mt_manifest, .refs = refs, .nrefs = 3 };
	int rc = meta_blob_link(tm, repo, &cfg, 10);
	if (!rc)
		rc = meta_blob_link(tm, repo, &shared, 1000);
	if (!rc)
		rc = meta_blob_link(tm, repo, &layer, 20);
	if (!rc)
		rc = meta_manifest_put(tm, repo, &m, size, &mi, tag, actor, NULL);
	return rc;
}

/* The guard of the tests: tags starting with "v" are immutable (rule 3); counts its calls. */
struct guard_ctx {
	int calls;
	char last[TAG_MAX_LEN + 1];
};

static int guard_v(void *ctx, const char *tag)
{
	struct guard_ctx *g = ctx;
	g->calls++;
	snprintf(g->last, sizeof(g->last), "%s", tag);
	return tag[0] == 'v' ? 3 : -1;
}

/* History of repo:tag as "how actor old>new;" with digests shortened to their seed's first hex. */
static int hist_cb(void *ctx, const struct meta_tag_event *ev)
{
	struct buf *b = ctx;
	const char *o = ev->old_digest ? strchr(ev->old_digest, ':') : NULL;
	const char *n = ev->new_digest ? strchr(ev->new_digest, ':') : NULL;
	buf_addf(b, "%s %s %.6s>%.6s;", ev->how ? ev->how : "-", ev->actor ? ev->actor : "-", o ? o + 1 : "-",
		 n ? n + 1 : "-");
	return 0;
}

static void history(const char *repo, const char *tag, struct buf *b)
{
	buf_reset(b);
	CHECK_EQ_INT(meta_tag_history(tm, repo, tag, hist_cb, b), 0);
}

/* "how actor old>new;" for one event, as hist_cb writes it. */
static void ev(struct buf *b, const char *how, const char *actor, const char *old_seed, const char *new_seed)
{
	char o[DIGEST_STR_MAX], n[DIGEST_STR_MAX];
	buf_addf(b, "%s %s %.6s>%.6s;", how, actor, old_seed ? ds_of(old_seed, o) + 7 : "-",
		 new_seed ? ds_of(new_seed, n) + 7 : "-");
}

static int points_at(const char *repo, const char *tag, const char *seed)
{
	struct reference ref;
	struct meta_manifest m;
	struct digest want = dg(seed);
	reference_parse(tag, strlen(tag), &ref);
	int rc = meta_manifest_get(tm, repo, &ref, &m);
	int same = !rc && digest_eq(&m.digest, &want);
	meta_manifest_release(&m);
	return same;
}

static void test_retag_and_change(void)
{
	struct meta_tag_change ch;
	struct meta_actor alice = { .name = "alice", .how = "push", .client = "192.0.2.1", .change = &ch };
	struct buf h = BUF_INIT, want = BUF_INIT;
	char s[DIGEST_STR_MAX];

	CHECK_EQ_INT(put("r", "a", 100, "t", &alice), 0);
	CHECK_EQ_INT(ch.count, 1);
	CHECK_STR(ch.how, "push");
	CHECK_STR(ch.old_digest, "");
	CHECK_STR(ch.new_digest, ds_of("a", s));
	CHECK_EQ_INT(put("r", "b", 200, "t", &alice), 0);
	CHECK_STR(ch.how, "push");
	CHECK_STR(ch.old_digest, ds_of("a", s));
	/* same digest again: no move, nothing reported */
	CHECK_EQ_INT(put("r", "b", 200, "t", &alice), 0);
	CHECK_EQ_INT(ch.count, 0);
	/* a digest the repository already had: a retag */
	CHECK_EQ_INT(put("r", "a", 100, "t", &alice), 0);
	CHECK_EQ_INT(ch.count, 1);
	CHECK_STR(ch.how, "retag");
	/* pushed by digest first, then tagged: also a retag */
	CHECK_EQ_INT(put("r", "c", 300, NULL, &alice), 0);
	CHECK_EQ_INT(ch.count, 0);
	CHECK_EQ_INT(put("r", "c", 300, "other", &alice), 0);
	CHECK_STR(ch.how, "retag");
	/* any other how is recorded as given */
	struct meta_actor op = { .name = "op", .how = "rollback", .change = &ch };
	CHECK_EQ_INT(put("r", "b", 200, "t", &op), 0);
	CHECK_STR(ch.how, "rollback");
	history("r", "t", &h);
	ev(&want, "rollback", "op", "a", "b");
	ev(&want, "retag", "alice", "b", "a");
	ev(&want, "push", "alice", "a", "b");
	ev(&want, "push", "alice", NULL, "a");
	CHECK_STR(h.buf, want.buf);
	/* a failed write reports nothing */
	struct digest gone = dg("never-linked");
	struct manifest_ref bad = { .kind = REF_LAYER, .digest = gone, .size = 1 };
	struct manifest_info mi = { .media_type = mt_manifest, .refs = &bad, .nrefs = 1 };
	struct digest m = dg("x");
	ch.count = 9;
	CHECK_EQ_INT(meta_manifest_put(tm, "r", &m, 5, &mi, "t", &alice, NULL), E_MANIFEST_BLOB_UNKNOWN);
	CHECK_EQ_INT(ch.count, 0);
	buf_release(&h);
	buf_release(&want);
}

static void test_guard(void)
{
	struct guard_ctx g = { 0 };
	struct meta_tag_change ch;
	struct meta_actor ci = { .name = "ci", .how = "push", .guard = guard_v, .guard_ctx = &g, .change = &ch };
	struct buf h = BUF_INIT, before = BUF_INIT;
	struct reference ref;
	struct meta_manifest m;
	char s[DIGEST_STR_MAX];

	/* setting an immutable tag the first time is allowed, and not even asked */
	CHECK_EQ_INT(put("g", "g1", 10, "v1", &ci), 0);
	CHECK_EQ_INT(g.calls, 0);
	/* the same digest again: a no-op, allowed */
	CHECK_EQ_INT(put("g", "g1", 10, "v1", &ci), 0);
	CHECK_EQ_INT(g.calls, 0);
	/* moving it: refused, nothing changes (not even the new manifest) */
	history("g", "v1", &before);
	CHECK_EQ_INT(put("g", "g2", 20, "v1", &ci), E_TAG_IMMUTABLE);
	CHECK_EQ_INT(g.calls, 1);
	CHECK_STR(g.last, "v1");
	CHECK_EQ_INT(ch.count, 0);
	CHECK(points_at("g", "v1", "g1"));
	history("g", "v1", &h);
	CHECK_STR(h.buf, before.buf);
	/* two statements: the order in which arguments are evaluated is unspecified */
	ds_of("g2", s);
	CHECK_EQ_INT(reference_parse(s, strlen(s), &ref), 0);
	CHECK_EQ_INT(meta_manifest_get(tm, "g", &ref, &m), E_MANIFEST_UNKNOWN);
	/* mutable tags move freely; the guard is asked */
	CHECK_EQ_INT(put("g", "g1", 10, "latest", &ci), 0);
	CHECK_EQ_INT(put("g", "g2", 20, "latest", &ci), 0);
	CHECK_EQ_INT(g.calls, 2);
	/* without a guard everything moves */
	struct meta_actor free_ = { .name = "admin", .how = "push" };
	CHECK_EQ_INT(put("g", "g2", 20, "v2", &free_), 0);

	/* tag delete of an immutable tag: refused; of a mutable one: allowed */
	struct meta_actor del = { .name = "ci", .how = "delete", .guard = guard_v, .guard_ctx = &g, .change = &ch };
	CHECK_EQ_INT(meta_tag_delete(tm, "g", "v1", &del), E_TAG_IMMUTABLE);
	CHECK(points_at("g", "v1", "g1"));
	history("g", "v1", &h);
	CHECK_STR(h.buf, before.buf);
	CHECK_EQ_INT(meta_tag_delete(tm, "g", "latest", &del), 0);
	CHECK_EQ_INT(ch.count, 1);
	CHECK_STR(ch.how, "delete");
	CHECK_STR(ch.old_digest, ds_of("g2", s));
	CHECK_STR(ch.new_digest, "");

	/* manifest delete: refused while an immutable tag points at it, whatever else does */
	CHECK_EQ_INT(put("g", "g1", 10, "stable", &ci), 0);
	struct digest g1 = dg("g1"), g2 = dg("g2");
	CHECK_EQ_INT(meta_manifest_delete(tm, "g", &g1, &del), E_TAG_IMMUTABLE);
	CHECK(points_at("g", "stable", "g1"));
	CHECK(points_at("g", "v1", "g1"));
	history("g", "stable", &h);
	CHECK(strstr(h.buf, "delete") == NULL);
	CHECK_EQ_INT(meta_manifest_delete(tm, "g", &g2, &del), E_TAG_IMMUTABLE); /* v2 */
	CHECK_EQ_INT(meta_tag_delete(tm, "g", "v2", &free_), 0);
	CHECK_EQ_INT(meta_manifest_delete(tm, "g", &g2, &del), 0);
	CHECK_EQ_INT(ch.count, 0);
	buf_release(&h);
	buf_release(&before);
}

static void test_rollback(void)
{
	struct meta_tag_change ch;
	struct meta_actor dev = { .name = "dev", .how = "push" };
	struct meta_actor cli = { .name = "cli", .client = NULL, .change = &ch }; /* how NULL: "rollback" */
	struct meta_rollback rb;
	struct buf detail = BUF_INIT, h = BUF_INIT, want = BUF_INIT, before = BUF_INIT;
	char s[DIGEST_STR_MAX];

	CHECK_EQ_INT(put("app", "r1", 101, "prod", &dev), 0);
	CHECK_EQ_INT(put("app", "r2", 102, "prod", &dev), 0);
	CHECK_EQ_INT(put("app", "r3", 103, "prod", &dev), 0);

	/* dry run: tells, changes nothing */
	history("app", "prod", &before);
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "prod", 1, NULL, 1, &cli, &rb, &detail), 0);
	CHECK_STR(rb.from, ds_of("r3", s));
	CHECK_STR(rb.to, ds_of("r2", s));
	CHECK_EQ_INT(rb.from_size, 103);
	CHECK_EQ_INT(rb.to_size, 102);
	CHECK_EQ_INT(rb.moved, 1);
	CHECK_EQ_INT(ch.count, 0);
	CHECK(points_at("app", "prod", "r3"));
	history("app", "prod", &h);
	CHECK_STR(h.buf, before.buf);

	/* one step back, then the rollback rolled back */
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "prod", 1, NULL, 0, &cli, &rb, &detail), 0);
	CHECK(points_at("app", "prod", "r2"));
	CHECK_EQ_INT(ch.count, 1);
	CHECK_STR(ch.how, "rollback");
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "prod", 1, NULL, 0, &cli, &rb, &detail), 0);
	CHECK(points_at("app", "prod", "r3"));
	/* the earlier digests, newest first, are now r2, r3, r2, r1: four steps back is r1 */
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "prod", 4, NULL, 0, &cli, &rb, &detail), 0);
	CHECK(points_at("app", "prod", "r1"));
	history("app", "prod", &h);
	buf_reset(&want);
	ev(&want, "rollback", "cli", "r3", "r1");
	ev(&want, "rollback", "cli", "r2", "r3");
	ev(&want, "rollback", "cli", "r3", "r2");
	ev(&want, "push", "dev", "r2", "r3");
	ev(&want, "push", "dev", "r1", "r2");
	ev(&want, "push", "dev", NULL, "r1");
	CHECK_STR(h.buf, want.buf);

	/* to a digest; already there: nothing written */
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "prod", 1, ds_of("r3", s), 0, &cli, &rb, &detail), 0);
	CHECK(points_at("app", "prod", "r3"));
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "prod", 1, ds_of("r3", s), 0, &cli, &rb, &detail), 0);
	CHECK_EQ_INT(rb.moved, 0);
	CHECK_EQ_INT(ch.count, 0);

	/* refusals, each with a detail and no change */
	history("app", "prod", &before);
	buf_reset(&detail);
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "prod", 99, NULL, 0, &cli, &rb, &detail), E_MANIFEST_UNKNOWN);
	CHECK(strstr(detail.buf, "fewer than 99") != NULL);
	buf_reset(&detail);
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "prod", 0, NULL, 0, &cli, &rb, &detail), E_BAD_REQUEST);
	buf_reset(&detail);
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "prod", 1, "sha256:zz", 0, &cli, &rb, &detail), E_DIGEST_INVALID);
	buf_reset(&detail);
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "prod", 1, ds_of("nowhere", s), 0, &cli, &rb, &detail),
		     E_MANIFEST_UNKNOWN);
	CHECK(strstr(detail.buf, "not a manifest of repository app") != NULL);
	buf_reset(&detail);
	CHECK_EQ_INT(meta_tag_rollback(tm, "no/such", "prod", 1, NULL, 0, &cli, &rb, &detail), E_NAME_UNKNOWN);
	CHECK(strstr(detail.buf, "no/such") != NULL);
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "never", 1, NULL, 0, &cli, &rb, NULL), E_MANIFEST_UNKNOWN);
	/* the target manifest was deleted since */
	struct digest r1 = dg("r1");
	CHECK_EQ_INT(meta_manifest_delete(tm, "app", &r1, &dev), 0);
	buf_reset(&detail);
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "prod", 1, NULL, 0, &cli, &rb, &detail), E_MANIFEST_UNKNOWN);
	CHECK(strstr(detail.buf, "deleted") != NULL);
	history("app", "prod", &h);
	CHECK_STR(h.buf, before.buf);
	CHECK(points_at("app", "prod", "r3"));

	/* immutable: refused, in a dry run too */
	struct guard_ctx g = { 0 };
	CHECK_EQ_INT(put("app", "r2", 102, "v9", &dev), 0);
	CHECK_EQ_INT(put("app", "r3", 103, "v9", &dev), 0);
	struct meta_actor guarded = { .name = "cli", .guard = guard_v, .guard_ctx = &g };
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "v9", 1, NULL, 1, &guarded, &rb, NULL), E_TAG_IMMUTABLE);
	CHECK_EQ_INT(rb.moved, 0);
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "v9", 1, NULL, 0, &guarded, &rb, NULL), E_TAG_IMMUTABLE);
	CHECK(points_at("app", "v9", "r3"));
	CHECK_EQ_INT(g.calls, 2);

	/* a deleted tag comes back: the delete's old digest is the latest earlier one */
	CHECK_EQ_INT(meta_tag_delete(tm, "app", "prod", &dev), 0);
	CHECK_EQ_INT(meta_tag_rollback(tm, "app", "prod", 1, NULL, 0, &cli, &rb, &detail), 0);
	CHECK_STR(rb.from, "");
	CHECK_EQ_INT(rb.from_size, 0);
	CHECK(points_at("app", "prod", "r3"));
	buf_release(&detail);
	buf_release(&h);
	buf_release(&want);
	buf_release(&before);
}


static int tag_row(void *ctx, const struct meta_tag_info *t)
{
	struct buf *b = ctx;
	buf_addf(b, "%s=%.13s/%lld;", t->name, t->digest, (long long)t->size);
	return t->updated_ms > 0 ? 0 : -100;
}

static int ref_row(void *ctx, const struct meta_ref_info *ri)
{
	struct buf *b = ctx;
	buf_addf(b, "%d:%.13s/%lld;", (int)ri->kind, ri->digest, (long long)ri->size);
	return 0;
}

static void test_listings(void)
{
	struct buf b = BUF_INIT, want = BUF_INIT;
	char s[DIGEST_STR_MAX];
	CHECK_EQ_INT(put("ls", "l1", 11, "b", NULL), 0);
	CHECK_EQ_INT(put("ls", "l2", 22, "a", NULL), 0);
	CHECK_EQ_INT(meta_tags_info(tm, "ls", tag_row, &b), 0);
	buf_addf(&want, "a=%.13s/22;", ds_of("l2", s));
	buf_addf(&want, "b=%.13s/11;", ds_of("l1", s));
	CHECK_STR(b.buf, want.buf);
	CHECK_EQ_INT(meta_tags_info(tm, "no/such", tag_row, &b), E_NAME_UNKNOWN);

	/* references, by kind then digest; sizes from blobs; the subject-less manifest has 3 */
	struct digest l1 = dg("l1"), none = dg("none");
	buf_reset(&b);
	CHECK_EQ_INT(meta_manifest_refs(tm, "ls", &l1, ref_row, &b), 0);
	CHECK(!strncmp(b.buf, "0:", 2));
	CHECK(strstr(b.buf, "/10;") && strstr(b.buf, "/20;") && strstr(b.buf, "/1000;"));
	CHECK_EQ_INT(meta_manifest_refs(tm, "ls", &none, ref_row, &b), E_MANIFEST_UNKNOWN);
	CHECK_EQ_INT(meta_manifest_refs(tm, "no/such", &l1, ref_row, &b), E_MANIFEST_UNKNOWN);
	buf_release(&b);
	buf_release(&want);
}

static void test_pat_name(void)
{
	unsigned char hash[32];
	int64_t id = 0;
	char *name = (char *)"stale";
	SHA256((const unsigned char *)"secret-1", 8, hash);
	CHECK_EQ_INT(meta_pat_create(tm, "alice", "ci-push", "", 0, hash, &id), 0);
	CHECK_EQ_INT(meta_pat_name(tm, id, &name), 0);
	CHECK_STR(name, "ci-push");
	free(name);
	CHECK_EQ_INT(meta_pat_revoke(tm, "alice", "ci-push", 1), 0);
	CHECK_EQ_INT(meta_pat_name(tm, id, &name), 0);
	CHECK_STR(name, "ci-push");
	free(name);
	CHECK_EQ_INT(meta_pat_name(tm, id + 100, &name), E_NAME_UNKNOWN);
	CHECK(name == NULL);
}

int main(void)
{
	struct buf dir = BUF_INIT, db = BUF_INIT;
	t_meta_engine_or_skip();
	if (t_scratch(&dir, "meta-tags"))
		return 1;
	buf_addf(&db, "%s/berth.db", dir.buf);
	CHECK_EQ_INT(t_meta_open(db.buf), 0);
	test_retag_and_change();
	test_guard();
	test_rollback();
	test_listings();
	test_pat_name();
	t_meta_close();
	CHECK_EQ_INT(t_rmtree(dir.buf), 0);
	buf_release(&dir);
	buf_release(&db);
	return t_done();
}
