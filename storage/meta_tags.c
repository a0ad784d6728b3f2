/* meta_tags: tag overviews, manifest references for comparing images, and rolling tags back. */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "meta.h"
#include "meta_internal.h"

static const struct meta_query q_tag_info = { .id = MS_TAG_INFO, .sql =
	"SELECT t.name, t.digest, m.size, t.updated_ms FROM tags t"
	" JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest"
	" WHERE t.repo_id = (SELECT id FROM repos WHERE name = ?1) ORDER BY t.name" };
/* A child (or subject) manifest's size comes from manifests, a blob's from blobs; externals have none. */
static const struct meta_query q_tag_refs = { .id = MS_TAG_REFS, .sql =
	"SELECT r.kind, r.digest, coalesce(m.size, b.size, -1) FROM manifest_refs r"
	" LEFT JOIN manifests m ON m.repo_id = r.repo_id AND m.digest = r.digest"
	" LEFT JOIN blobs b ON b.digest = r.digest"
	" WHERE r.repo_id = ?1 AND r.manifest = ?2 ORDER BY r.kind, r.digest" };
/* The tag_history_by_tag index carries the id, so this walks back without sorting. */
static const struct meta_query q_history_back = { .id = MS_HISTORY_BACK, .sql =
	"SELECT old_digest FROM tag_history WHERE repo_id = ?1 AND tag = ?2 AND old_digest IS NOT NULL"
	" ORDER BY id DESC LIMIT 1 OFFSET ?3" };
static const struct meta_query q_manifest_size = { .id = MS_MANIFEST_SIZE, .sql =
	"SELECT size FROM manifests WHERE repo_id = ?1 AND digest = ?2" };

/* The caller's callback, for the row functions below. */
struct sink {
	union {
		meta_tag_info_cb tag;
		meta_ref_cb ref;
	} cb;
	void *ctx;
	long count; /* rows passed on */
};

static int tag_info_row(struct db_stmt *s, void *arg)
{
	struct sink *k = arg;
	struct meta_tag_info t = {
		.name = db_col_text(s, 0),
		.digest = db_col_text(s, 1),
		.size = db_col_int64(s, 2),
		.updated_ms = db_col_int64(s, 3),
	};
	if (!t.name || !t.digest) {
		log_error("meta: malformed tag row");
		return E_IO;
	}
	k->count++;
	return k->cb.tag(k->ctx, &t);
}

int meta_tags_info(struct meta *m, const char *repo, meta_tag_info_cb cb, void *ctx)
{
	struct sink k = { .cb.tag = cb, .ctx = ctx };
	int rc = meta_each(m, &q_tag_info, meta_bind_text1, repo, tag_info_row, &k);
	/* a tag proves the repository exists; only an empty answer needs asking */
	if (!rc && !k.count)
		rc = meta_repo_exists(m, repo);
	return rc;
}


/* Parameters ?1 (a repository id) and ?2 (a digest). */
struct repo_digest {
	int64_t repo_id;
	const char *digest;
};

static void bind_repo_digest(struct db_stmt *s, const void *arg)
{
	const struct repo_digest *a = arg;
	db_bind_int64(s, 1, a->repo_id);
	db_bind_text(s, 2, a->digest);
}

/* Size of manifest ds of repo_id into *size; *found is 0 when it is not one. */
static int manifest_size(struct meta *m, int64_t repo_id, const char *ds, int64_t *size, int *found)
{
	struct repo_digest a = { repo_id, ds };
	int rc = meta_each(m, &q_manifest_size, bind_repo_digest, &a, meta_first_int64, size);
	if (rc < 0)
		return rc;
	*found = rc;
	return 0;
}

static int ref_row(struct db_stmt *s, void *arg)
{
	const struct sink *k = arg;
	int64_t kind = db_col_int64(s, 0);
	struct meta_ref_info ri = {
		.kind = (enum ref_kind)kind,
		.digest = db_col_text(s, 1),
		.size = db_col_int64(s, 2),
	};
	if (kind < REF_CONFIG || kind > REF_SUBJECT || !ri.digest) {
		log_error("meta: malformed manifest reference row");
		return E_IO;
	}
	return k->cb.ref(k->ctx, &ri);
}

int meta_manifest_refs(struct meta *m, const char *repo, const struct digest *d, meta_ref_cb cb, void *ctx)
{
	struct meta_conn *c;
	char ds[DIGEST_STR_MAX];
	struct repo_digest a = { 0, digest_str(d, ds) };
	struct sink k = { .cb.ref = cb, .ctx = ctx };
	int64_t size;
	int found = 0;
	int rc = meta_conn_get(m, &c);
	if (rc)
		return rc;
	rc = meta_repo_id(c, repo, 0, &a.repo_id);
	if (!rc)
		rc = manifest_size(m, a.repo_id, ds, &size, &found);
	if (rc == E_NAME_UNKNOWN || (!rc && !found))
		return E_MANIFEST_UNKNOWN;
	return rc ? rc : meta_each(m, &q_tag_refs, bind_repo_digest, &a, ref_row, &k);
}

/* The old digest of the (skip+1)-th most recent move of repo_id:tag away from a digest. */
static int history_back(struct meta_conn *c, int64_t repo_id, const char *tag, long skip, char *out, int *found)
{
	struct db_stmt *s;
	int rc = meta_stmt(c, &q_history_back, &s);
	if (rc)
		return rc;
	db_bind_int64(s, 1, repo_id);
	db_bind_text(s, 2, tag);
	db_bind_int64(s, 3, skip);
	rc = meta_step(c, s);
	if (rc == 1) {
		const char *t = db_col_text(s, 0);
		if (!t || strlen(t) >= DIGEST_STR_MAX) {
			log_error("meta: malformed tag history row");
			rc = E_IO;
		} else {
			memcpy(out, t, strlen(t) + 1);
		}
	}
	meta_stmt_done(c, &q_history_back, s);
	if (rc < 0)
		return rc;
	*found = rc;
	return 0;
}

/* Picks and checks the rollback target into out->to and out->to_size. */
static int rollback_target(struct meta_conn *c, int64_t repo_id, const char *repo, const char *tag, long steps,
			   const char *to, struct meta_rollback *out, struct buf *detail)
{
	struct digest parsed;
	int found = 0, rc;
	if (to) {
		if (digest_parse(to, &parsed)) {
			if (detail)
				buf_addf(detail, "not a digest: \"%.80s\"", to);
			return E_DIGEST_INVALID;
		}
		digest_str(&parsed, out->to);
	} else {
		if (steps < 1) {
			if (detail)
				buf_adds(detail, "steps must be at least 1");
			return E_BAD_REQUEST;
		}
		if ((rc = history_back(c, repo_id, tag, steps - 1, out->to, &found)))
			return rc;
		if (!found) {
			if (detail)
				buf_addf(detail, "tag \"%s\" has fewer than %ld earlier digest%s in its history", tag,
					 steps, steps == 1 ? "" : "s");
			return E_MANIFEST_UNKNOWN;
		}
	}
	if ((rc = manifest_size(c->m, repo_id, out->to, &out->to_size, &found)))
		return rc;
	if (!found) {
		if (detail)
			buf_addf(detail, "%s is not a manifest of repository %s (deleted or collected)", out->to,
				 repo);
		return E_MANIFEST_UNKNOWN;
	}
	return 0;
}

/* The arguments of meta_tag_rollback(). */
struct rollback_write {
	const char *repo;
	const char *tag;
	long steps;
	const char *to;
	int dry_run;
	const struct meta_actor *actor;
	struct meta_rollback *out;
	struct buf *detail;
	size_t detail_len; /* detail's length before the write: a re-run starts from it */
};

static void rollback_reset(const struct rollback_write *w)
{
	memset(w->out, 0, sizeof(*w->out));
	if (w->actor && w->actor->change)
		memset(w->actor->change, 0, sizeof(*w->actor->change));
}

static int rollback_tx(struct meta_conn *c, void *arg)
{
	const struct rollback_write *w = arg;
	const struct meta_actor *actor = w->actor;
	struct meta_rollback *out = w->out;
	int64_t repo_id;
	int exists = 0, found = 0;
	rollback_reset(w);
	if (w->detail)
		buf_setlen(w->detail, w->detail_len);
	int rc = meta_repo_id(c, w->repo, 0, &repo_id);
	if (rc == E_NAME_UNKNOWN && w->detail)
		buf_addf(w->detail, "repository %s is not known", w->repo);
	if (!rc)
		rc = meta_tag_current(c, repo_id, w->tag, out->from, &exists);
	if (!rc && exists)
		rc = manifest_size(c->m, repo_id, out->from, &out->from_size, &found);
	if (!rc)
		rc = rollback_target(c, repo_id, w->repo, w->tag, w->steps, w->to, out, w->detail);
	if (rc || (exists && !strcmp(out->from, out->to)))
		return rc;
	/* asked here too, so that a dry run tells about a refusal */
	if (exists && actor && actor->guard && actor->guard(actor->guard_ctx, w->tag) >= 0)
		return E_TAG_IMMUTABLE;
	out->moved = 1;
	if (!w->dry_run)
		rc = meta_tag_set(c, repo_id, w->tag, out->to, meta_now_ms(), actor,
				  actor && actor->how ? NULL : "rollback");
	return rc;
}

int meta_tag_rollback(struct meta *m, const char *repo, const char *tag, long steps, const char *to, int dry_run,
		      const struct meta_actor *actor, struct meta_rollback *out, struct buf *detail)
{
	struct rollback_write w = { .repo = repo, .tag = tag, .steps = steps, .to = to, .dry_run = dry_run,
				    .actor = actor, .out = out, .detail = detail,
				    .detail_len = detail ? detail->len : 0 };
	rollback_reset(&w);
	int rc = meta_tx_run(m, rollback_tx, &w);
	if (rc && actor && actor->change)
		memset(actor->change, 0, sizeof(*actor->change));
	if (rc)
		out->moved = 0;
	return rc;
}
