/*
 * Unit tests for storage/meta_migrate: every table of a SQLite database
 * copied into another open at the same time (tm: SQLite, or PostgreSQL in
 * the pg suite), with repository ids renumbered and history, token and
 * event ids kept; a second copy finding everything the same; a tag the
 * destination moved is a conflict, moved back with replace; after
 * meta_mig_finish() new rows get ids past the copied ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "digest.h"
#include "err.h"
#include "manifest.h"
#include "meta.h"
#include "t.h"
#include "t_meta.h"

static char mt_manifest[] = MT_OCI_MANIFEST;

static struct digest dg(const char *seed)
{
	struct digest d;
	digest_of(DIGEST_SHA256, seed, strlen(seed), &d);
	return d;
}

/* Manifest seed (a config and a layer of its own) in repo, tagged tag, by alice. */
static void put(struct meta *m, const char *repo, const char *seed, const char *tag)
{
	char cs[64], body[80];
	snprintf(cs, sizeof(cs), "%s-config", seed);
	struct digest cfg = dg(cs), layer = dg(seed);
	struct manifest_ref refs[2] = {
		{ .kind = REF_CONFIG, .digest = cfg, .size = 10 },
		{ .kind = REF_LAYER, .digest = layer, .size = 20 },
	};
	struct manifest_info mi = { .media_type = mt_manifest, .refs = refs, .nrefs = 2 };
	struct meta_actor actor = { .name = "alice", .how = "push", .client = "10.0.0.1" };
	int n = snprintf(body, sizeof(body), "{\"manifest\":\"%s\"}", seed);
	struct digest d;
	digest_of(DIGEST_SHA256, body, (size_t)n, &d);
	CHECK_EQ_INT(meta_blob_link(m, repo, &cfg, 10), 0);
	CHECK_EQ_INT(meta_blob_link(m, repo, &layer, 20), 0);
	CHECK_EQ_INT(meta_manifest_put_content(m, repo, &d, n, body, &mi, tag, &actor, NULL), 0);
}

struct copy {
	struct meta *to;
	enum meta_mig_table t;
	int replace;
	int counts[META_MIG_REPLACED + 1];
};

static int copy_row(void *ctx, const struct meta_mig_row *r)
{
	struct copy *c = ctx;
	struct meta_mig_row mine;
	unsigned char out = 0xff;
	meta_mig_row_copy(&mine, r);
	int rc = meta_mig_import(c->to, c->t, &mine, 1, c->replace, &out);
	meta_mig_row_release(&mine);
	if (!rc && out <= META_MIG_REPLACED)
		c->counts[out]++;
	return rc;
}

/* Copies every table of from into to, one row per transaction; counts[] per outcome over all tables. */
static void copy_all(struct meta *from, struct meta *to, int replace, int counts[META_MIG_REPLACED + 1])
{
	struct copy c = { .to = to, .replace = replace };
	for (int t = 0; t < META_MIG_TABLES; t++) {
		c.t = (enum meta_mig_table)t;
		CHECK_EQ_INT(meta_mig_export(from, c.t, copy_row, &c), 0);
	}
	CHECK_EQ_INT(meta_mig_finish(to), 0);
	memcpy(counts, c.counts, sizeof(c.counts));
}

struct checked {
	struct meta *to;
	enum meta_mig_table t;
	int same, other;
};

static int check_row(void *ctx, const struct meta_mig_row *r)
{
	struct checked *k = ctx;
	int state;
	int rc = meta_mig_check(k->to, k->t, r, &state);
	if (state == META_MIG_SAME)
		k->same++;
	else
		k->other++;
	return rc;
}

/* Every row of from is in to, the same. */
static void all_there(struct meta *from, struct meta *to)
{
	for (int t = 0; t < META_MIG_TABLES; t++) {
		struct checked k = { to, (enum meta_mig_table)t, 0, 0 };
		int64_t nf = -1, nt = -1;
		CHECK_EQ_INT(meta_mig_export(from, k.t, check_row, &k), 0);
		CHECK_EQ_INT(meta_mig_count(from, k.t, &nf), 0);
		CHECK_EQ_INT(meta_mig_count(to, k.t, &nt), 0);
		CHECK_EQ_INT(k.other, 0);
		CHECK_EQ_INT(k.same, (int)nf);
		CHECK(nt >= nf);
	}
}

static int first_event(void *ctx, const struct meta_tag_event *ev)
{
	*(struct meta_tag_event *)ctx = *ev;
	((struct meta_tag_event *)ctx)->old_digest = NULL; /* not kept past the call */
	((struct meta_tag_event *)ctx)->new_digest = NULL;
	((struct meta_tag_event *)ctx)->actor = NULL;
	((struct meta_tag_event *)ctx)->how = NULL;
	((struct meta_tag_event *)ctx)->client = NULL;
	return 1;
}

int main(void)
{
	struct buf dir = BUF_INIT, src = BUF_INIT, dst = BUF_INIT;
	struct meta *from = NULL;
	int counts[META_MIG_REPLACED + 1];
	unsigned char hash[32];
	int64_t pat_id = 0;
	t_meta_engine_or_skip();
	if (t_scratch(&dir, "meta-migrate"))
		return 1;
	buf_addf(&src, "%s/single.db", dir.buf);
	buf_addf(&dst, "%s/cluster.db", dir.buf);
	CHECK_EQ_INT(meta_open(src.buf, &from), 0);
	CHECK_EQ_INT(t_meta_open(dst.buf), 0);

	/* the destination already has a repository of its own: ids differ from the source's */
	put(tm, "zz/first", "theirs", "t");
	put(from, "app/one", "one-a", "v1");
	put(from, "app/one", "one-b", "v1");
	put(from, "app/two", "two-a", "stable");
	memset(hash, 7, sizeof(hash));
	CHECK_EQ_INT(meta_pat_create(from, "alice", "ci", "", 0, hash, &pat_id), 0);
	CHECK_EQ_INT(meta_audit_add(from, "alice", "token_create", NULL, "{\"name\":\"ci\"}", "10.0.0.1"), 0);

	struct meta_tag_event before, after;
	CHECK_EQ_INT(meta_tag_history(from, "app/one", "v1", first_event, &before), 1);
	/* the destination's own history row took id 1: the source's ids collide with it */
	copy_all(from, tm, 0, counts);
	CHECK(counts[META_MIG_CONFLICT] >= 1);

	/* a fresh destination: everything added, then the same again */
	t_meta_close();
	buf_addf(&dst, ".2");
	CHECK_EQ_INT(t_meta_open(dst.buf), 0);
	copy_all(from, tm, 0, counts);
	CHECK_EQ_INT(counts[META_MIG_CONFLICT], 0);
	CHECK(counts[META_MIG_ADDED] > 10);
	CHECK_EQ_INT(counts[META_MIG_SAME], 0);
	all_there(from, tm);
	copy_all(from, tm, 0, counts);
	CHECK_EQ_INT(counts[META_MIG_ADDED], 0);
	CHECK(counts[META_MIG_SAME] > 10);

	/* ids and times kept */
	CHECK_EQ_INT(meta_tag_history(tm, "app/one", "v1", first_event, &after), 1);
	CHECK_EQ_INT(after.id, before.id);
	CHECK_EQ_INT(after.time_ms, before.time_ms);
	CHECK_EQ_INT(meta_pat_check(tm, pat_id, meta_now_ms()), 0);

	/* new rows continue past the copied ids */
	put(tm, "app/one", "one-c", "v1");
	CHECK_EQ_INT(meta_tag_history(tm, "app/one", "v1", first_event, &after), 1);
	CHECK(after.id > before.id);

	/* the tag moved in the destination: a conflict, moved back with replace */
	copy_all(from, tm, 0, counts);
	CHECK_EQ_INT(counts[META_MIG_CONFLICT], 1);
	copy_all(from, tm, 1, counts);
	CHECK_EQ_INT(counts[META_MIG_CONFLICT], 0);
	CHECK_EQ_INT(counts[META_MIG_REPLACED], 1);
	all_there(from, tm);

	meta_close(from);
	t_meta_close();
	CHECK_EQ_INT(t_rmtree(dir.buf), 0);
	buf_release(&dir);
	buf_release(&src);
	buf_release(&dst);
	return t_done();
}
