/*
 * Unit tests for schema versions 2 and 3 of storage/meta: upgrading a
 * version-1 database in place, personal access tokens (creation, lookup by
 * secret hash, expiry, revocation, name reuse, listing), the audit log,
 * alone, from several threads and inside a manifest's transaction, and
 * manifest bytes kept in the database. Runs in a fresh scratch directory that is
 * removed at the end; a few white-box checks read the file with SQLite.
 */
#include <ftw.h>
#include <openssl/sha.h>
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
#include "meta_internal.h"
#include "t.h"
#include "t_meta.h"

#define HASH_LEN 32

static char mt_manifest[] = MT_OCI_MANIFEST;
/* Preset into out-parameters to see that a failing call clears them. */
static char stale[] = "stale";
static struct buf dbpath = BUF_INIT;

static void hash_of(const char *secret, unsigned char out[HASH_LEN])
{
	SHA256((const unsigned char *)secret, strlen(secret), out);
}

static struct digest dg(const char *seed)
{
	struct digest d;
	digest_of(DIGEST_SHA256, seed, strlen(seed), &d);
	return d;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* First column of the first row of sql on a separate connection; -2 when no row, -1 on error. */
#define raw_int t_raw_int
#define raw_exec t_raw_exec

static int collect(void *ctx, const char *s)
{
	struct buf *b = ctx;
	if (b->len)
		buf_addch(b, ' ');
	buf_adds(b, s);
	return 0;
}

/* ---- listing callbacks ---- */

struct pats_seen {
	struct buf text; /* "owner/name" per token, "!" appended when revoked, space-separated */
	int64_t last_id;
	int ordered;     /* ids strictly decreasing */
	long stop_after; /* > 0: return 5 from that call on */
	long calls;
	int nested_rc;   /* from meta_* calls made inside the callback */
};

static void seen_init(struct pats_seen *s)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->text, 0);
	s->ordered = 1;
}

static int pat_cb(void *ctx, const struct meta_pat *p)
{
	struct pats_seen *s = ctx;
	s->calls++;
	if (s->last_id && p->id >= s->last_id)
		s->ordered = 0;
	s->last_id = p->id;
	if (s->text.len)
		buf_addch(&s->text, ' ');
	buf_addf(&s->text, "%s/%s%s", p->owner, p->name, p->revoked_ms ? "!" : "");
	if (s->stop_after && s->calls >= s->stop_after)
		return 5;
	return 0;
}

static const char *list_pats(const char *owner, int all, struct pats_seen *s, int *rc)
{
	seen_init(s);
	*rc = meta_pat_list(tm, owner, all, pat_cb, s);
	return s->text.buf;
}

/* Re-enters meta while a listing is running: a read on the same statement and a check. */
static int nested_pat_cb(void *ctx, const struct meta_pat *p)
{
	struct pats_seen *s = ctx;
	struct pats_seen inner;
	int rc = 0;
	list_pats(p->owner, 1, &inner, &rc);
	if (rc || !inner.calls)
		s->nested_rc = rc ? rc : -100;
	buf_release(&inner.text);
	rc = meta_pat_check(tm, p->id, now_ms());
	if (rc && !p->revoked_ms && !p->expires_ms)
		s->nested_rc = rc;
	return pat_cb(ctx, p);
}

struct events {
	struct buf text; /* one "actor action repo detail client" line per event, "-" for NULL */
	int64_t last_id, min_time, max_time;
	int ordered;     /* (time, id) strictly increasing */
	int64_t last_time;
	long count;
};

static int audit_cb(void *ctx, const struct meta_audit *ev)
{
	struct events *e = ctx;
	if (e->count && (ev->time_ms < e->last_time || (ev->time_ms == e->last_time && ev->id <= e->last_id)))
		e->ordered = 0;
	e->last_id = ev->id;
	e->last_time = ev->time_ms;
	if (!e->count || ev->time_ms < e->min_time)
		e->min_time = ev->time_ms;
	if (ev->time_ms > e->max_time)
		e->max_time = ev->time_ms;
	e->count++;
	buf_addf(&e->text, "%s %s %s %s %s\n", ev->actor ? ev->actor : "-", ev->action,
		 ev->repo ? ev->repo : "-", ev->detail ? ev->detail : "-", ev->client ? ev->client : "-");
	return 0;
}

static int audit_stop_cb(void *ctx, const struct meta_audit *ev)
{
	(void)ev;
	(*(long *)ctx)++;
	return 9;
}

static const char *list_audit(int64_t since, const char *repo, long limit, struct events *e, int *rc)
{
	memset(e, 0, sizeof(*e));
	buf_init(&e->text, 0);
	e->ordered = 1;
	*rc = meta_audit_list(tm, since, repo, limit, audit_cb, e);
	return e->text.buf;
}

/* ---- not open ---- */

static int never_cb(void *ctx, const struct meta_pat *p)
{
	(void)p;
	(*(long *)ctx)++;
	return 0;
}

static void test_not_open(void)
{
	unsigned char h[HASH_LEN];
	struct meta_pat p;
	struct events e;
	long calls = 0;
	int rc;
	hash_of("x", h);
	CHECK_EQ_INT(meta_pat_create(tm, "alice", "ci", NULL, 0, h, NULL), E_INTERNAL);
	CHECK_EQ_INT(meta_pat_lookup(tm, h, now_ms(), &p), E_INTERNAL);
	CHECK(p.owner == NULL && p.id == 0);
	CHECK_EQ_INT(meta_pat_check(tm, 1, now_ms()), E_INTERNAL);
	char *sc = stale;
	CHECK_EQ_INT(meta_pat_get_scopes(tm, 1, &sc), E_INTERNAL);
	CHECK(sc == NULL);
	CHECK_EQ_INT(meta_pat_touch(tm, 1, now_ms()), E_INTERNAL);
	CHECK_EQ_INT(meta_pat_list(tm, NULL, 1, never_cb, &calls), E_INTERNAL);
	CHECK_EQ_INT(calls, 0);
	CHECK_EQ_INT(meta_pat_revoke(tm, "alice", "ci", now_ms()), E_INTERNAL);
	CHECK_EQ_INT(meta_audit_add(tm, "alice", "login", NULL, NULL, NULL), E_INTERNAL);
	list_audit(0, NULL, -1, &e, &rc);
	CHECK_EQ_INT(rc, E_INTERNAL);
	buf_release(&e.text);
	CHECK_EQ_INT(meta_upload_touch(tm, "0123456789abcdef0123456789abcdef"), E_INTERNAL);
	CHECK_EQ_INT(meta_uploads_stale(tm, 0, collect, NULL), E_INTERNAL);
}

/* ---- upgrading a version-1 database ---- */

#define V2_NAMES "('pats', 'pats_active_name', 'pats_by_owner', 'audit_events', 'audit_events_by_time'," \
	" 'audit_events_by_repo')"
#define v2_objects                                                        \
	t_sql("SELECT count(*) FROM sqlite_schema WHERE name IN " V2_NAMES, \
	      "SELECT count(*) FROM pg_class WHERE relname IN " V2_NAMES)

/* Fills a version-1 database with a manifest, its tag, a blob link and an upload. */
static void fill_v1(const char *path)
{
	struct digest layer = dg("v1-layer"), m = dg("v1-manifest");
	struct manifest_ref r = { .kind = REF_LAYER, .digest = layer, .size = 3 };
	struct manifest_info mi = { .media_type = mt_manifest, .refs = &r, .nrefs = 1 };
	struct meta_actor who = { .name = "olduser", .how = "push", .client = "192.0.2.50" };

	CHECK_EQ_INT(t_meta_open_at_version(path, 1), 0);
	CHECK_EQ_INT(meta_schema_version(tm), 1);
	CHECK_EQ_INT(raw_int(path, T_SQL_VERSION), 1);
	CHECK_EQ_INT(raw_int(path, v2_objects), 0);
	CHECK_EQ_INT(meta_blob_link(tm, "old/repo", &layer, 3), 0);
	CHECK_EQ_INT(meta_manifest_put(tm, "old/repo", &m, 40, &mi, "v1", &who, NULL), 0);
	CHECK_EQ_INT(meta_upload_create(tm, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "old/repo"), 0);
	t_meta_close();
}

static int history_cb(void *ctx, const struct meta_tag_event *ev)
{
	struct buf *b = ctx;
	buf_addf(b, "%s %s %s;", ev->actor ? ev->actor : "-", ev->how ? ev->how : "-",
		 ev->client ? ev->client : "-");
	return 0;
}

/* What fill_v1() stored is all there. */
static void check_v1_data(void)
{
	struct digest layer = dg("v1-layer"), m = dg("v1-manifest");
	struct reference ref;
	struct meta_manifest got;
	struct buf b = BUF_INIT;
	int64_t size = 0;
	CHECK_EQ_INT(meta_blob_linked(tm, "old/repo", &layer, &size), 0);
	CHECK_EQ_INT(size, 3);
	CHECK_EQ_INT(reference_parse("v1", 2, &ref), 0);
	CHECK_EQ_INT(meta_manifest_get(tm, "old/repo", &ref, &got), 0);
	CHECK(digest_eq(&got.digest, &m));
	CHECK_EQ_INT(got.size, 40);
	/* stored before schema 3: its bytes are in the blob store, not here */
	CHECK(got.content == NULL && got.content_len == 0);
	meta_manifest_release(&got);
	CHECK_EQ_INT(meta_tag_history(tm, "old/repo", "v1", history_cb, &b), 0);
	CHECK_STR(b.buf, "olduser push 192.0.2.50;");
	CHECK_EQ_INT(meta_upload_check(tm, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "old/repo"), 0);
	buf_release(&b);
}

static void test_upgrade(const char *dir)
{
	struct buf p = BUF_INIT;
	unsigned char h[HASH_LEN];
	struct meta_pat pat;
	struct events e;
	int64_t id = 0;
	int rc;

	buf_addf(&p, "%s/v1.db", dir);
	fill_v1(p.buf);

	/* a migration that fails part-way leaves the file at version 1, untouched */
	CHECK_EQ_INT(raw_exec(p.buf, "CREATE TABLE audit_events(x INTEGER)"), 0);
	CHECK_EQ_INT(t_meta_open(p.buf), E_IO);
	CHECK_EQ_INT(meta_schema_version(tm), 0);
	CHECK_EQ_INT(raw_int(p.buf, T_SQL_VERSION), 1);
	CHECK_EQ_INT(raw_int(p.buf, t_sql("SELECT count(*) FROM sqlite_schema WHERE name = 'pats'",
				    "SELECT count(*) FROM pg_class WHERE relname = 'pats'")), 0);
	CHECK_EQ_INT(raw_exec(p.buf, "DROP TABLE audit_events"), 0);

	/* opening migrates in place */
	CHECK_EQ_INT(t_meta_open(p.buf), 0);
	CHECK_EQ_INT(meta_schema_version(tm), 4);
	CHECK_EQ_INT(raw_int(p.buf, T_SQL_VERSION), 4);
	CHECK_EQ_INT(raw_int(p.buf, v2_objects), 6);
	check_v1_data();

	/* the new tables work */
	hash_of("upgrade-secret", h);
	CHECK_EQ_INT(meta_pat_create(tm, "olduser", "laptop", "", 0, h, &id), 0);
	CHECK(id > 0);
	CHECK_EQ_INT(meta_pat_lookup(tm, h, now_ms(), &pat), 0);
	CHECK_EQ_INT(pat.id, id);
	CHECK_STR(pat.owner, "olduser");
	meta_pat_release(&pat);
	CHECK_EQ_INT(meta_pat_check(tm, id, now_ms()), 0);
	CHECK_EQ_INT(meta_audit_add(tm, "olduser", "token_create", NULL, "{\"name\":\"laptop\"}", NULL), 0);
	CHECK_STR(list_audit(0, NULL, -1, &e, &rc), "olduser token_create - {\"name\":\"laptop\"} -\n");
	CHECK_EQ_INT(rc, 0);
	buf_release(&e.text);
	CHECK_EQ_INT(meta_upload_touch(tm, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 0);
	t_meta_close();

	/* reopening an up-to-date file changes nothing */
	CHECK_EQ_INT(t_meta_open(p.buf), 0);
	CHECK_EQ_INT(meta_schema_version(tm), 4);
	check_v1_data();
	CHECK_EQ_INT(meta_pat_check(tm, id, now_ms()), 0);
	/* asking for an older version than the file has does not downgrade it */
	t_meta_close();
	CHECK_EQ_INT(t_meta_open_at_version(p.buf, 1), 0);
	CHECK_EQ_INT(meta_schema_version(tm), 4);
	t_meta_close();
	CHECK_EQ_INT(raw_int(p.buf, T_SQL_INTEGRITY), 1);
	CHECK_EQ_INT(raw_int(p.buf, T_SQL_FK_ROWS), 0);
	buf_release(&p);
}

/* ---- personal access tokens ---- */

static void test_pat_create_lookup(void)
{
	unsigned char h1[HASH_LEN], h2[HASH_LEN], h3[HASH_LEN], none[HASH_LEN];
	const char *scopes = "repository:team-a/*:pull,push repository:team-b/app:pull";
	struct meta_pat p;
	int64_t id1 = 0, id2 = 0, id = -5, before = now_ms();

	hash_of("secret-1", h1);
	hash_of("secret-2", h2);
	hash_of("secret-3", h3);
	hash_of("never issued", none);

	CHECK_EQ_INT(meta_pat_create(tm, "alice", "ci", scopes, 0, h1, &id1), 0);
	CHECK(id1 > 0);
	CHECK_EQ_INT(meta_pat_lookup(tm, h1, now_ms(), &p), 0);
	CHECK_EQ_INT(p.id, id1);
	CHECK_STR(p.owner, "alice");
	CHECK_STR(p.name, "ci");
	CHECK_STR(p.scopes, scopes);
	CHECK(p.created_ms >= before && p.created_ms <= now_ms());
	CHECK_EQ_INT(p.expires_ms, 0);
	CHECK_EQ_INT(p.last_used_ms, 0);
	CHECK_EQ_INT(p.revoked_ms, 0);
	meta_pat_release(&p);
	CHECK(p.owner == NULL && p.name == NULL && p.scopes == NULL);
	meta_pat_release(&p); /* harmless twice */
	/* stored by hash only: the secret itself is nowhere in the file */
	CHECK_EQ_INT(raw_int(dbpath.buf, t_sql("SELECT count(*) FROM pats WHERE length(secret_hash) = 32",
					  "SELECT count(*) FROM pats WHERE octet_length(secret_hash) = 32")), 1);

	/* unknown secret */
	p.id = 77;
	CHECK_EQ_INT(meta_pat_lookup(tm, none, now_ms(), &p), E_UNAUTHORIZED);
	CHECK(p.id == 0 && p.owner == NULL && p.name == NULL && p.scopes == NULL);
	meta_pat_release(&p);

	/* a name is unique per owner: refused for alice, fine for bob; id untouched on refusal */
	CHECK_EQ_INT(meta_pat_create(tm, "alice", "ci", "", 0, h2, &id), E_EXISTS);
	CHECK_EQ_INT(id, -5);
	CHECK_EQ_INT(meta_pat_lookup(tm, h2, now_ms(), &p), E_UNAUTHORIZED);
	CHECK_EQ_INT(meta_pat_create(tm, "bob", "ci", NULL, 0, h2, &id2), 0);
	CHECK(id2 > id1);
	/* names compare byte for byte */
	CHECK_EQ_INT(meta_pat_create(tm, "alice", "CI", NULL, 0, h3, NULL), 0);
	/* a secret hash belongs to one token only */
	hash_of("secret-1", h3);
	CHECK_EQ_INT(meta_pat_create(tm, "carol", "x", NULL, 0, h3, &id), E_EXISTS);
	CHECK_EQ_INT(id, -5);

	/* NULL scopes is stored as "" (all of the owner's rights) */
	CHECK_EQ_INT(meta_pat_lookup(tm, h2, now_ms(), &p), 0);
	CHECK_EQ_INT(p.id, id2);
	CHECK_STR(p.owner, "bob");
	CHECK_STR(p.scopes, "");
	meta_pat_release(&p);

	CHECK_EQ_INT(meta_pat_check(tm, id1, now_ms()), 0);
	CHECK_EQ_INT(meta_pat_check(tm, id2, now_ms()), 0);
	CHECK_EQ_INT(meta_pat_check(tm, id2 + 1000, now_ms()), E_UNAUTHORIZED);
	CHECK_EQ_INT(meta_pat_check(tm, 0, now_ms()), E_UNAUTHORIZED);
	CHECK_EQ_INT(meta_pat_check(tm, -1, now_ms()), E_UNAUTHORIZED);

	char *sc = NULL;
	CHECK_EQ_INT(meta_pat_get_scopes(tm, id1, &sc), 0);
	CHECK_STR(sc, scopes);
	free(sc);
	CHECK_EQ_INT(meta_pat_get_scopes(tm, id2, &sc), 0);
	CHECK_STR(sc, "");
	free(sc);
	sc = stale;
	CHECK_EQ_INT(meta_pat_get_scopes(tm, id2 + 1000, &sc), E_UNAUTHORIZED);
	CHECK(sc == NULL);
}

static void test_pat_expiry(void)
{
	unsigned char h[HASH_LEN], h2[HASH_LEN];
	struct meta_pat p;
	int64_t t = now_ms() + 3600 * 1000, id = 0, id2 = 0;

	hash_of("expiring", h);
	CHECK_EQ_INT(meta_pat_create(tm, "alice", "short", "repository:x:pull", t, h, &id), 0);
	CHECK_EQ_INT(meta_pat_lookup(tm, h, t - 1, &p), 0);
	CHECK_EQ_INT(p.expires_ms, t);
	meta_pat_release(&p);
	CHECK_EQ_INT(meta_pat_check(tm, id, t - 1), 0);
	/* expired at the very millisecond it names, and after */
	CHECK_EQ_INT(meta_pat_lookup(tm, h, t, &p), E_UNAUTHORIZED);
	CHECK(p.owner == NULL);
	CHECK_EQ_INT(meta_pat_lookup(tm, h, t + 1, &p), E_UNAUTHORIZED);
	CHECK_EQ_INT(meta_pat_check(tm, id, t), E_UNAUTHORIZED);
	CHECK_EQ_INT(meta_pat_check(tm, id, INT64_MAX), E_UNAUTHORIZED);
	/* a token that never expires is valid at any time */
	hash_of("secret-1", h2);
	CHECK_EQ_INT(meta_pat_lookup(tm, h2, INT64_MAX, &p), 0);
	meta_pat_release(&p);

	/* an expired token keeps its name until revoked */
	hash_of("expiring, again", h2);
	CHECK_EQ_INT(meta_pat_create(tm, "alice", "short", NULL, 0, h2, &id2), E_EXISTS);
	CHECK_EQ_INT(meta_pat_revoke(tm, "alice", "short", t + 5), 0);
	CHECK_EQ_INT(meta_pat_create(tm, "alice", "short", NULL, 0, h2, &id2), 0);
	CHECK(id2 > id);
	CHECK_EQ_INT(meta_pat_check(tm, id2, t + 10), 0);
	CHECK_EQ_INT(meta_pat_check(tm, id, t - 1), E_UNAUTHORIZED);
	CHECK_EQ_INT(meta_pat_revoke(tm, "alice", "short", now_ms()), 0);
}

static void test_pat_revoke(void)
{
	unsigned char h1[HASH_LEN], h4[HASH_LEN], h5[HASH_LEN];
	struct meta_pat p;
	int64_t id1, id4 = 0, id5 = 0, when = now_ms();

	hash_of("secret-1", h1);
	CHECK_EQ_INT(meta_pat_lookup(tm, h1, when, &p), 0);
	id1 = p.id;
	meta_pat_release(&p);

	CHECK_EQ_INT(meta_pat_revoke(tm, "alice", "ci", when), 0);
	CHECK_EQ_INT(meta_pat_lookup(tm, h1, when, &p), E_UNAUTHORIZED);
	CHECK_EQ_INT(meta_pat_check(tm, id1, when), E_UNAUTHORIZED);
	char *sc = stale;
	CHECK_EQ_INT(meta_pat_get_scopes(tm, id1, &sc), E_UNAUTHORIZED);
	CHECK(sc == NULL);
	/* revoked is revoked whatever now_ms says */
	CHECK_EQ_INT(meta_pat_check(tm, id1, when - 100000), E_UNAUTHORIZED);
	CHECK_EQ_INT(meta_pat_revoke(tm, "alice", "ci", when), E_NAME_UNKNOWN);
	CHECK_EQ_INT(meta_pat_revoke(tm, "alice", "nope", when), E_NAME_UNKNOWN);
	CHECK_EQ_INT(meta_pat_revoke(tm, "nobody", "ci", when), E_NAME_UNKNOWN);
	/* other owners' tokens of the same name are untouched */
	hash_of("secret-2", h4);
	CHECK_EQ_INT(meta_pat_lookup(tm, h4, when, &p), 0);
	CHECK_STR(p.owner, "bob");
	CHECK_STR(p.name, "ci");
	CHECK_EQ_INT(meta_pat_check(tm, p.id, when), 0);
	meta_pat_release(&p);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT revoked_ms FROM pats WHERE owner = 'alice' AND name = 'ci'"),
		     when);

	/* the name is free again; the old token stays revoked, its secret stays used */
	CHECK_EQ_INT(meta_pat_create(tm, "alice", "ci", NULL, 0, h1, &id4), E_EXISTS);
	hash_of("secret-4", h4);
	CHECK_EQ_INT(meta_pat_create(tm, "alice", "ci", "repository:a:pull", 0, h4, &id4), 0);
	CHECK(id4 > id1);
	CHECK_EQ_INT(meta_pat_lookup(tm, h4, when, &p), 0);
	CHECK_EQ_INT(p.id, id4);
	CHECK_STR(p.scopes, "repository:a:pull");
	meta_pat_release(&p);
	CHECK_EQ_INT(meta_pat_lookup(tm, h1, when, &p), E_UNAUTHORIZED);
	CHECK_EQ_INT(meta_pat_check(tm, id1, when), E_UNAUTHORIZED);

	/* any number of revoked tokens may share a name */
	CHECK_EQ_INT(meta_pat_revoke(tm, "alice", "ci", when + 1), 0);
	hash_of("secret-5", h5);
	CHECK_EQ_INT(meta_pat_create(tm, "alice", "ci", NULL, 0, h5, &id5), 0);
	CHECK(id5 > id4);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM pats WHERE owner = 'alice' AND name = 'ci'"), 3);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM pats WHERE owner = 'alice' AND name = 'ci'"
					 " AND revoked_ms = 0"), 1);
	/* revoking hits only the unrevoked one */
	CHECK_EQ_INT(meta_pat_revoke(tm, "alice", "ci", when + 2), 0);
	CHECK_EQ_INT(meta_pat_check(tm, id4, when), E_UNAUTHORIZED);
	CHECK_EQ_INT(meta_pat_check(tm, id5, when), E_UNAUTHORIZED);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT min(revoked_ms) FROM pats WHERE owner = 'alice' AND name = 'ci'"),
		     when);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT max(revoked_ms) FROM pats WHERE owner = 'alice' AND name = 'ci'"),
		     when + 2);
	hash_of("secret-6", h5);
	CHECK_EQ_INT(meta_pat_create(tm, "alice", "ci", NULL, 0, h5, NULL), 0);
}

static void test_pat_touch(void)
{
	unsigned char h[HASH_LEN];
	struct meta_pat p;
	int64_t id;

	hash_of("secret-2", h); /* bob's ci */
	CHECK_EQ_INT(meta_pat_lookup(tm, h, now_ms(), &p), 0);
	id = p.id;
	CHECK_EQ_INT(p.last_used_ms, 0);
	meta_pat_release(&p);

	CHECK_EQ_INT(meta_pat_touch(tm, id, 5000), 0);
	CHECK_EQ_INT(meta_pat_lookup(tm, h, now_ms(), &p), 0);
	CHECK_EQ_INT(p.last_used_ms, 5000);
	meta_pat_release(&p);
	/* a late, older touch does not move it backwards */
	CHECK_EQ_INT(meta_pat_touch(tm, id, 4000), 0);
	CHECK_EQ_INT(meta_pat_touch(tm, id, 5000), 0);
	CHECK_EQ_INT(meta_pat_lookup(tm, h, now_ms(), &p), 0);
	CHECK_EQ_INT(p.last_used_ms, 5000);
	meta_pat_release(&p);
	int64_t t = now_ms();
	CHECK_EQ_INT(meta_pat_touch(tm, id, t), 0);
	CHECK_EQ_INT(meta_pat_lookup(tm, h, t, &p), 0);
	CHECK_EQ_INT(p.last_used_ms, t);
	meta_pat_release(&p);
	/* touching does not extend or revive anything */
	CHECK_EQ_INT(meta_pat_check(tm, id, t), 0);

	CHECK_EQ_INT(meta_pat_touch(tm, id + 100000, t), E_UNAUTHORIZED);
	CHECK_EQ_INT(meta_pat_touch(tm, 0, t), E_UNAUTHORIZED);
	/* a revoked token still records its (refused) use, and stays revoked */
	int64_t revoked = raw_int(dbpath.buf, "SELECT min(id) FROM pats WHERE revoked_ms <> 0");
	CHECK(revoked > 0);
	CHECK_EQ_INT(meta_pat_touch(tm, revoked, t), 0);
	CHECK_EQ_INT(meta_pat_check(tm, revoked, t), E_UNAUTHORIZED);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM pats WHERE revoked_ms <> 0 AND last_used_ms <> 0"), 1);
}

static void test_pat_list(void)
{
	struct pats_seen s;
	int rc;

	/*
	 * Created so far, oldest first: alice/ci, bob/ci, alice/CI, alice/short
	 * twice, alice/ci three more times; all revoked but bob/ci, alice/CI
	 * and the last alice/ci.
	 */
	CHECK_STR(list_pats("alice", 0, &s, &rc), "alice/ci alice/CI");
	CHECK_EQ_INT(rc, 0);
	CHECK(s.ordered);
	buf_release(&s.text);
	CHECK_STR(list_pats("alice", 1, &s, &rc),
		  "alice/ci alice/ci! alice/ci! alice/short! alice/short! alice/CI alice/ci!");
	CHECK(s.ordered);
	buf_release(&s.text);
	CHECK_STR(list_pats(NULL, 0, &s, &rc), "alice/ci alice/CI bob/ci");
	CHECK_EQ_INT(rc, 0);
	buf_release(&s.text);
	CHECK_STR(list_pats(NULL, 1, &s, &rc),
		  "alice/ci alice/ci! alice/ci! alice/short! alice/short! alice/CI bob/ci alice/ci!");
	CHECK(s.ordered);
	buf_release(&s.text);
	CHECK_STR(list_pats("bob", 1, &s, &rc), "bob/ci");
	buf_release(&s.text);
	CHECK_STR(list_pats("nobody", 1, &s, &rc), "");
	CHECK_EQ_INT(rc, 0);
	buf_release(&s.text);
	/* owners are matched exactly */
	CHECK_STR(list_pats("Alice", 1, &s, &rc), "");
	buf_release(&s.text);

	/* expired but unrevoked tokens are listed (they still hold their name) */
	unsigned char h[HASH_LEN];
	int64_t id = 0;
	hash_of("dave-old", h);
	CHECK_EQ_INT(meta_pat_create(tm, "dave", "old", NULL, 1, h, &id), 0);
	CHECK_EQ_INT(meta_pat_check(tm, id, now_ms()), E_UNAUTHORIZED);
	char *sc = stale;
	CHECK_EQ_INT(meta_pat_get_scopes(tm, id, &sc), E_UNAUTHORIZED);
	CHECK(sc == NULL);
	CHECK_STR(list_pats("dave", 0, &s, &rc), "dave/old");
	buf_release(&s.text);

	/* a callback's non-zero return stops the listing and is returned */
	seen_init(&s);
	s.stop_after = 2;
	CHECK_EQ_INT(meta_pat_list(tm, NULL, 1, pat_cb, &s), 5);
	CHECK_EQ_INT(s.calls, 2);
	buf_release(&s.text);

	/* callbacks may read, even with the same listing */
	seen_init(&s);
	CHECK_EQ_INT(meta_pat_list(tm, "alice", 1, nested_pat_cb, &s), 0);
	CHECK_EQ_INT(s.nested_rc, 0);
	CHECK_EQ_INT(s.calls, 7);
	buf_release(&s.text);
}

/* Checks every field of bob's token as a listing shows it. */
static int bob_fields_cb(void *ctx, const struct meta_pat *p)
{
	int *ok = ctx;
	*ok = !strcmp(p->owner, "bob") && !strcmp(p->name, "ci") && !strcmp(p->scopes, "") && p->id > 0 &&
	      p->created_ms > 0 && p->expires_ms == 0 && p->last_used_ms > 5000 && p->revoked_ms == 0;
	return 0;
}

static void test_pat_list_fields(void)
{
	int ok = 0;
	CHECK_EQ_INT(meta_pat_list(tm, "bob", 0, bob_fields_cb, &ok), 0);
	CHECK(ok);
}

/* ---- audit log ---- */

static void test_audit(void)
{
	static const char detail1[] = "{\"digest\":\"sha256:abc\",\"tag\":\"v1\",\"size\":12}";
	struct events e;
	long calls = 0;
	int rc;
	int64_t before = now_ms();

	CHECK_STR(list_audit(0, NULL, -1, &e, &rc), "");
	CHECK_EQ_INT(rc, 0);
	buf_release(&e.text);

	CHECK_EQ_INT(meta_audit_add(tm, "alice", "push", "team-a/app", detail1, "192.0.2.1"), 0);
	CHECK_EQ_INT(meta_audit_add(tm, NULL, "login_failed", NULL, NULL, "198.51.100.2"), 0);
	CHECK_EQ_INT(meta_audit_add(tm, "bob", "delete", "team-b/x", "{}", NULL), 0);
	CHECK_EQ_INT(meta_audit_add(tm, "alice", "tag", "team-a/app", NULL, NULL), 0);

	/* detail must be a JSON object; refusals append nothing */
	CHECK_EQ_INT(meta_audit_add(tm, "alice", "push", NULL, "not json", NULL), E_INTERNAL);
	CHECK_EQ_INT(meta_audit_add(tm, "alice", "push", NULL, "[1,2]", NULL), E_INTERNAL);
	CHECK_EQ_INT(meta_audit_add(tm, "alice", "push", NULL, "\"text\"", NULL), E_INTERNAL);
	CHECK_EQ_INT(meta_audit_add(tm, "alice", "push", NULL, "42", NULL), E_INTERNAL);
	CHECK_EQ_INT(meta_audit_add(tm, "alice", "push", NULL, "{\"a\":", NULL), E_INTERNAL);
	CHECK_EQ_INT(meta_audit_add(tm, "alice", "push", NULL, "", NULL), E_INTERNAL);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM audit_events"), 4);

	const char *all = "alice push team-a/app {\"digest\":\"sha256:abc\",\"tag\":\"v1\",\"size\":12} 192.0.2.1\n"
			  "- login_failed - - 198.51.100.2\n"
			  "bob delete team-b/x {} -\n"
			  "alice tag team-a/app - -\n";
	CHECK_STR(list_audit(before, NULL, -1, &e, &rc), all);
	CHECK_EQ_INT(rc, 0);
	CHECK(e.ordered);
	CHECK(e.min_time >= before && e.max_time <= now_ms());
	buf_release(&e.text);
	CHECK_STR(list_audit(before, "team-a/app", -1, &e, &rc),
		  "alice push team-a/app {\"digest\":\"sha256:abc\",\"tag\":\"v1\",\"size\":12} 192.0.2.1\n"
		  "alice tag team-a/app - -\n");
	buf_release(&e.text);
	CHECK_STR(list_audit(0, "no/such", -1, &e, &rc), "");
	CHECK_EQ_INT(rc, 0);
	buf_release(&e.text);
	CHECK_STR(list_audit(now_ms() + 60000, NULL, -1, &e, &rc), "");
	buf_release(&e.text);

	/* limits */
	CHECK_STR(list_audit(0, NULL, 2, &e, &rc), "alice push team-a/app {\"digest\":\"sha256:abc\","
						   "\"tag\":\"v1\",\"size\":12} 192.0.2.1\n"
						   "- login_failed - - 198.51.100.2\n");
	buf_release(&e.text);
	CHECK_STR(list_audit(0, NULL, 0, &e, &rc), "");
	CHECK_EQ_INT(rc, 0);
	buf_release(&e.text);
	CHECK_STR(list_audit(0, NULL, 100, &e, &rc), all);
	buf_release(&e.text);
	CHECK_STR(list_audit(0, "team-a/app", 1, &e, &rc),
		  "alice push team-a/app {\"digest\":\"sha256:abc\",\"tag\":\"v1\",\"size\":12} 192.0.2.1\n");
	buf_release(&e.text);

	CHECK_EQ_INT(meta_audit_list(tm, 0, NULL, -1, audit_stop_cb, &calls), 9);
	CHECK_EQ_INT(calls, 1);

	/*
	 * Order is by time, then id, and since is inclusive: give the events
	 * times out of id order (a clock stepped back) by hand.
	 */
	CHECK_EQ_INT(raw_exec(dbpath.buf, "UPDATE audit_events SET time_ms = CASE action"
					  " WHEN 'push' THEN 1000 WHEN 'login_failed' THEN 3000"
					  " ELSE 2000 END"), 0);
	CHECK_STR(list_audit(0, NULL, -1, &e, &rc),
		  "alice push team-a/app {\"digest\":\"sha256:abc\",\"tag\":\"v1\",\"size\":12} 192.0.2.1\n"
		  "bob delete team-b/x {} -\n"
		  "alice tag team-a/app - -\n"
		  "- login_failed - - 198.51.100.2\n");
	CHECK(e.ordered);
	buf_release(&e.text);
	CHECK_STR(list_audit(2000, NULL, -1, &e, &rc),
		  "bob delete team-b/x {} -\n"
		  "alice tag team-a/app - -\n"
		  "- login_failed - - 198.51.100.2\n");
	buf_release(&e.text);
	CHECK_STR(list_audit(2001, NULL, -1, &e, &rc), "- login_failed - - 198.51.100.2\n");
	buf_release(&e.text);
	CHECK_STR(list_audit(1001, "team-a/app", -1, &e, &rc), "alice tag team-a/app - -\n");
	buf_release(&e.text);
	CHECK_STR(list_audit(1000, "team-a/app", -1, &e, &rc),
		  "alice push team-a/app {\"digest\":\"sha256:abc\",\"tag\":\"v1\",\"size\":12} 192.0.2.1\n"
		  "alice tag team-a/app - -\n");
	buf_release(&e.text);
	CHECK_STR(list_audit(3001, NULL, -1, &e, &rc), "");
	buf_release(&e.text);
	CHECK_STR(list_audit(INT64_MIN, NULL, 1, &e, &rc),
		  "alice push team-a/app {\"digest\":\"sha256:abc\",\"tag\":\"v1\",\"size\":12} 192.0.2.1\n");
	buf_release(&e.text);
}

/* ---- threads ---- */

#define N_THREADS 8
#define EVENTS_PER_THREAD 25

struct racer {
	int idx;
	int created, refused, errors;
	int64_t id;
};

static void *racer(void *arg)
{
	struct racer *r = arg;
	unsigned char h[HASH_LEN];
	char secret[32], detail[64];
	snprintf(secret, sizeof(secret), "race-%d", r->idx);
	hash_of(secret, h);
	/* every thread wants the same name: exactly one may get it */
	int rc = meta_pat_create(tm, "racer", "same", NULL, 0, h, &r->id);
	if (rc == 0)
		r->created++;
	else if (rc == E_EXISTS)
		r->refused++;
	else
		r->errors++;
	for (int i = 0; i < EVENTS_PER_THREAD; i++) {
		snprintf(detail, sizeof(detail), "{\"thread\":%d,\"i\":%d}", r->idx, i);
		if (meta_audit_add(tm, "racer", "push", "race/repo", detail, NULL))
			r->errors++;
		if (r->created && (meta_pat_check(tm, r->id, now_ms()) || meta_pat_touch(tm, r->id, now_ms())))
			r->errors++;
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[N_THREADS];
	struct racer r[N_THREADS];
	struct events e;
	int created = 0, refused = 0, rc;
	memset(r, 0, sizeof(r));
	for (int i = 0; i < N_THREADS; i++) {
		r[i].idx = i;
		CHECK_EQ_INT(pthread_create(&th[i], NULL, racer, &r[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++) {
		CHECK_EQ_INT(pthread_join(th[i], NULL), 0);
		CHECK_EQ_INT(r[i].errors, 0);
		created += r[i].created;
		refused += r[i].refused;
	}
	CHECK_EQ_INT(created, 1);
	CHECK_EQ_INT(refused, N_THREADS - 1);
	list_audit(0, "race/repo", -1, &e, &rc);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(e.count, N_THREADS * EVENTS_PER_THREAD);
	CHECK(e.ordered);
	buf_release(&e.text);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(DISTINCT id) FROM audit_events WHERE repo = 'race/repo'"),
		     N_THREADS * EVENTS_PER_THREAD);
}

/* ---- manifest bytes and audit rows in the manifest's transaction ---- */

struct hook {
	int calls;
	int refuse;
	const struct meta_tag_change *change;
	char detail[256];
};

static int hook_cb(void *ctx, struct meta_audit *ev)
{
	struct hook *h = ctx;
	h->calls++;
	if (h->refuse)
		return 1;
	snprintf(h->detail, sizeof(h->detail), "{\"moved\":%d,\"how\":\"%s\"}", h->change->count,
		 h->change->count ? h->change->how : "");
	ev->actor = "alice";
	ev->action = "push";
	ev->repo = "inline/app";
	ev->detail = h->detail;
	ev->client = "192.0.2.9";
	return 0;
}

static int content_cb(void *ctx, const char *ds, const void *bytes, size_t len)
{
	struct buf *b = ctx;
	buf_addf(b, "%.15s:%zu:%.*s;", ds, len, (int)len, (const char *)bytes);
	return 0;
}

static void test_content_and_audit(void)
{
	static const char body[] = "{\"schemaVersion\":2}";
	struct digest layer = dg("inline-layer"), m, other = dg("inline-other");
	struct manifest_ref r = { .kind = REF_LAYER, .digest = layer, .size = 3 };
	struct manifest_info mi = { .media_type = mt_manifest, .refs = &r, .nrefs = 1 };
	struct meta_tag_change ch;
	struct hook h = { .change = &ch };
	struct meta_actor who = { .name = "alice", .how = "push", .client = "192.0.2.9", .change = &ch,
				  .audit = hook_cb, .audit_ctx = &h };
	struct meta_manifest got;
	struct reference ref;
	struct buf b = BUF_INIT;
	struct events e;
	int found = -1, rc;
	char ds[DIGEST_STR_MAX];
	digest_of(DIGEST_SHA256, body, strlen(body), &m);
	digest_str(&m, ds);
	long long events_before = raw_int(dbpath.buf, "SELECT count(*) FROM audit_events");

	/* a refused manifest writes neither its bytes nor an audit row, and the hook is not asked */
	CHECK_EQ_INT(meta_manifest_put_content(tm, "inline/app", &m, (int64_t)strlen(body), body, &mi, "v1", &who, NULL),
		     E_MANIFEST_BLOB_UNKNOWN);
	CHECK_EQ_INT(h.calls, 0);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM blob_content"), 0);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM audit_events"), events_before);

	/* accepted: bytes, manifest and audit row in one transaction; the hook sees the tag change */
	CHECK_EQ_INT(meta_blob_link(tm, "inline/app", &layer, 3), 0);
	CHECK_EQ_INT(meta_manifest_put_content(tm, "inline/app", &m, (int64_t)strlen(body), body, &mi, "v1", &who, NULL), 0);
	CHECK_EQ_INT(h.calls, 1);
	CHECK_STR(list_audit(0, "inline/app", -1, &e, &rc), "alice push inline/app {\"moved\":1,\"how\":\"push\"} 192.0.2.9\n");
	CHECK_EQ_INT(rc, 0);
	buf_release(&e.text);

	/* read back by tag and by digest, and as a blob */
	CHECK_EQ_INT(reference_parse("v1", 2, &ref), 0);
	CHECK_EQ_INT(meta_manifest_get(tm, "inline/app", &ref, &got), 0);
	CHECK(got.content != NULL);
	CHECK_EQ_INT((long long)got.content_len, (long long)strlen(body));
	CHECK(got.content && !memcmp(got.content, body, strlen(body)));
	meta_manifest_release(&got);
	CHECK(got.content == NULL);
	CHECK_EQ_INT(meta_blob_content(tm, &m, &b, &found), 0);
	CHECK_EQ_INT(found, 1);
	CHECK_STR(b.buf, body);
	buf_reset(&b);
	CHECK_EQ_INT(meta_blob_content(tm, &other, &b, &found), 0);
	CHECK_EQ_INT(found, 0);
	CHECK_EQ_INT((long long)b.len, 0);

	/* the same bytes pushed again under another tag: one content row, a second event */
	CHECK_EQ_INT(meta_manifest_put_content(tm, "inline/app", &m, (int64_t)strlen(body), body, &mi, "v2", &who, NULL), 0);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM blob_content"), 1);
	CHECK_EQ_INT(h.calls, 2);
	/* a hook that declines records nothing, the write still happens */
	h.refuse = 1;
	CHECK_EQ_INT(meta_manifest_put_content(tm, "inline/app", &m, (int64_t)strlen(body), body, &mi, "v3", &who, NULL), 0);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM audit_events WHERE repo = 'inline/app'"), 2);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM tags WHERE name = 'v3'"), 1);
	h.refuse = 0;

	/* listing for fsck */
	CHECK_EQ_INT(meta_content_list(tm, content_cb, &b), 0);
	char want[128];
	snprintf(want, sizeof(want), "%.15s:%zu:%s;", ds, strlen(body), body);
	CHECK_STR(b.buf, want);

	/* tag deletes and manifest deletes are audited in their transaction too */
	CHECK_EQ_INT(meta_tag_delete(tm, "inline/app", "v3", &who), 0);
	CHECK_EQ_INT(h.calls, 4);
	CHECK_EQ_INT(meta_manifest_delete(tm, "inline/app", &m, &who), 0);
	CHECK_EQ_INT(h.calls, 5);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM audit_events WHERE repo = 'inline/app'"), 4);

	/* the bytes go with their blob record (a collection deletes it once nothing links it) */
	const char *digests[1] = { ds };
	unsigned char done[1] = { 0 };
	CHECK_EQ_INT(meta_gc_blobs_delete(tm, digests, 1, done), 0);
	CHECK_EQ_INT(done[0], 1);
	CHECK_EQ_INT(raw_int(dbpath.buf, "SELECT count(*) FROM blob_content"), 0);
	buf_release(&b);
}

int main(void)
{
	struct buf dir = BUF_INIT;
	t_meta_engine_or_skip();
	if (t_scratch(&dir, "meta-tokens"))
		return 1;
	buf_addf(&dbpath, "%s/berth.db", dir.buf);

	test_not_open();
	test_upgrade(dir.buf);
	CHECK_EQ_INT(t_meta_open(dbpath.buf), 0);
	CHECK_EQ_INT(meta_schema_version(tm), 4);
	test_pat_create_lookup();
	test_pat_expiry();
	test_pat_revoke();
	test_pat_touch();
	test_pat_list();
	test_pat_list_fields();
	test_audit();
	test_content_and_audit();
	test_threads();
	t_meta_close();
	CHECK_EQ_INT(raw_int(dbpath.buf, T_SQL_INTEGRITY), 1);

	CHECK_EQ_INT(t_rmtree(dir.buf), 0);
	buf_release(&dir);
	buf_release(&dbpath);
	return t_done();
}
