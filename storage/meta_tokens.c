/* meta_tokens: personal access tokens, stored by the SHA-256 of their secret. */
#include <assert.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "meta.h"
#include "meta_internal.h"
#include "xalloc.h"

#define PAT_HASH_LEN 32
#define PAT_COLUMNS "id, owner, name, scopes, created_ms, expires_ms, last_used_ms, revoked_ms"
/* SQL form of "active at ?2": neither revoked nor expired. */
#define PAT_ACTIVE " revoked_ms = 0 AND (expires_ms = 0 OR expires_ms > ?2)"

/* No conflict target: a name clash (partial unique index) and a hash clash both do nothing. */
static const struct meta_query q_pat_insert = { .id = MS_PAT_INSERT, .sql =
	"INSERT INTO pats(owner, name, secret_hash, scopes, created_ms, expires_ms)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING RETURNING id" };
static const struct meta_query q_pat_by_hash = { .id = MS_PAT_BY_HASH, .sql =
	"SELECT " PAT_COLUMNS ", secret_hash FROM pats WHERE secret_hash = ?1" };
static const struct meta_query q_pat_check = { .id = MS_PAT_CHECK, .sql =
	"SELECT 1 FROM pats WHERE id = ?1 AND" PAT_ACTIVE };
static const struct meta_query q_pat_scopes = { .id = MS_PAT_SCOPES, .sql =
	"SELECT scopes FROM pats WHERE id = ?1 AND" PAT_ACTIVE };
/* Counts the row even when last_used_ms stays: the change count tells whether the token exists. */
static const struct meta_query q_pat_touch = { .id = MS_PAT_TOUCH, .sql =
	"UPDATE pats SET last_used_ms = CASE WHEN last_used_ms > ?2 THEN last_used_ms ELSE ?2 END WHERE id = ?1" };
static const struct meta_query q_pat_list_owner = { .id = MS_PAT_LIST_OWNER, .sql =
	"SELECT " PAT_COLUMNS " FROM pats WHERE owner = ?1 AND (?2 <> 0 OR revoked_ms = 0)"
	" ORDER BY id DESC" };
static const struct meta_query q_pat_list_all = { .id = MS_PAT_LIST_ALL, .sql =
	"SELECT " PAT_COLUMNS " FROM pats WHERE ?2 <> 0 OR revoked_ms = 0 ORDER BY id DESC" };
static const struct meta_query q_pat_revoke = { .id = MS_PAT_REVOKE, .sql =
	"UPDATE pats SET revoked_ms = ?3 WHERE owner = ?1 AND name = ?2 AND revoked_ms = 0" };
static const struct meta_query q_pat_name = { .id = MS_PAT_NAME, .sql = "SELECT name FROM pats WHERE id = ?1" };

void meta_pat_release(struct meta_pat *p)
{
	free(p->owner);
	free(p->name);
	free(p->scopes);
	p->owner = p->name = p->scopes = NULL;
}

struct pat_create_args {
	const char *owner, *name, *scopes;
	int64_t created_ms, expires_ms;
	const unsigned char *hash;
};

static void bind_create(struct db_stmt *s, const void *p)
{
	const struct pat_create_args *a = p;
	db_bind_text(s, 1, a->owner);
	db_bind_text(s, 2, a->name);
	db_bind_blob(s, 3, a->hash, PAT_HASH_LEN);
	db_bind_text(s, 4, a->scopes ? a->scopes : "");
	db_bind_int64(s, 5, a->created_ms);
	db_bind_int64(s, 6, a->expires_ms);
}

int meta_pat_create(struct meta *m, const char *owner, const char *name, const char *scopes, int64_t expires_ms,
		    const unsigned char hash[32], int64_t *id)
{
	struct pat_create_args a = { owner, name, scopes, meta_now_ms(), expires_ms, hash };
	int changes = 0;
	int64_t rowid = 0;
	assert(owner && *owner && name && *name && hash && expires_ms >= 0);
	int rc = meta_write(m, &q_pat_insert, bind_create, &a, &changes, &rowid);
	if (rc)
		return rc;
	if (!changes)
		return E_EXISTS;
	if (id)
		*id = rowid;
	return 0;
}

/* Whether a row with these times is active at now (the C twin of PAT_ACTIVE). */
static int pat_active(int64_t expires_ms, int64_t revoked_ms, int64_t now_ms)
{
	return !revoked_ms && (!expires_ms || expires_ms > now_ms);
}

/* A row of PAT_COLUMNS as a struct whose strings point into the row (valid until the next step). */
static int pat_from_row(struct db_stmt *s, struct meta_pat *p)
{
	p->id = db_col_int64(s, 0);
	p->owner = (char *)db_col_text(s, 1);
	p->name = (char *)db_col_text(s, 2);
	p->scopes = (char *)db_col_text(s, 3);
	p->created_ms = db_col_int64(s, 4);
	p->expires_ms = db_col_int64(s, 5);
	p->last_used_ms = db_col_int64(s, 6);
	p->revoked_ms = db_col_int64(s, 7);
	if (!p->owner || !p->name || !p->scopes) {
		log_error("meta: malformed access token row");
		return E_IO;
	}
	return 0;
}

/*
 * The index finds the row; the stored hash is then compared again in
 * constant time, so what authenticates is never a short-circuiting compare.
 */
static int pat_match(struct db_stmt *s, const unsigned char *hash, int64_t now_ms, struct meta_pat *out)
{
	struct meta_pat row;
	size_t len;
	const void *stored = db_col_blob(s, 8, &len);
	if (len != PAT_HASH_LEN || !stored ||
	    CRYPTO_memcmp(stored, hash, PAT_HASH_LEN))
		return E_UNAUTHORIZED;
	int rc = pat_from_row(s, &row);
	if (rc)
		return rc;
	if (!pat_active(row.expires_ms, row.revoked_ms, now_ms))
		return E_UNAUTHORIZED;
	*out = row;
	out->owner = xstrdup(row.owner);
	out->name = xstrdup(row.name);
	out->scopes = xstrdup(row.scopes);
	return 0;
}

int meta_pat_lookup(struct meta *m, const unsigned char hash[32], int64_t now_ms, struct meta_pat *out)
{
	struct meta_conn *c;
	struct db_stmt *s;
	memset(out, 0, sizeof(*out));
	int rc = meta_conn_get(m, &c);
	if (!rc)
		rc = meta_stmt(c, &q_pat_by_hash, &s);
	if (rc)
		return rc;
	db_bind_blob(s, 1, hash, PAT_HASH_LEN);
	rc = meta_step(c, s);
	if (rc == 1)
		rc = pat_match(s, hash, now_ms, out);
	else if (rc == 0)
		rc = E_UNAUTHORIZED;
	meta_stmt_done(c, &q_pat_by_hash, s);
	return rc;
}

/* Stops at the first row, copying its first column ("" for NULL) into the char * at arg. */
static int first_text(struct db_stmt *s, void *arg)
{
	const char *t = db_col_text(s, 0);
	*(char **)arg = xstrdup(t ? t : "");
	return 1;
}

int meta_pat_check(struct meta *m, int64_t id, int64_t now_ms)
{
	struct meta_ints a = { 2, { id, now_ms } };
	int rc = meta_each(m, &q_pat_check, meta_bind_ints, &a, meta_first_int64, NULL);
	return rc == 1 ? 0 : rc == 0 ? E_UNAUTHORIZED : rc;
}

int meta_pat_get_scopes(struct meta *m, int64_t id, char **scopes)
{
	struct meta_ints a = { 2, { id, meta_now_ms() } };
	*scopes = NULL;
	int rc = meta_each(m, &q_pat_scopes, meta_bind_ints, &a, first_text, scopes);
	return rc == 1 ? 0 : rc == 0 ? E_UNAUTHORIZED : rc;
}

int meta_pat_name(struct meta *m, int64_t id, char **name)
{
	*name = NULL;
	int rc = meta_each(m, &q_pat_name, meta_bind_int64_1, &id, first_text, name);
	return rc == 1 ? 0 : rc == 0 ? E_NAME_UNKNOWN : rc;
}

int meta_pat_touch(struct meta *m, int64_t id, int64_t now_ms)
{
	struct meta_ints a = { 2, { id, now_ms } };
	int changes = 0;
	int rc = meta_write(m, &q_pat_touch, meta_bind_ints, &a, &changes, NULL);
	return rc ? rc : changes ? 0 : E_UNAUTHORIZED;
}

struct pat_list_args {
	const char *owner;
	int64_t all;
	meta_pat_cb cb;
	void *ctx;
};

static void bind_list(struct db_stmt *s, const void *p)
{
	const struct pat_list_args *a = p;
	if (a->owner)
		db_bind_text(s, 1, a->owner);
	db_bind_int64(s, 2, a->all);
}

static int list_row(struct db_stmt *s, void *p)
{
	const struct pat_list_args *a = p;
	struct meta_pat pat;
	int rc = pat_from_row(s, &pat);
	return rc ? rc : a->cb(a->ctx, &pat);
}

int meta_pat_list(struct meta *m, const char *owner, int all, meta_pat_cb cb, void *ctx)
{
	struct pat_list_args a = { owner, all != 0, cb, ctx };
	return meta_each(m, owner ? &q_pat_list_owner : &q_pat_list_all, bind_list, &a, list_row, &a);
}

struct pat_revoke_args {
	const char *owner, *name;
	int64_t now_ms;
};

static void bind_revoke(struct db_stmt *s, const void *p)
{
	const struct pat_revoke_args *a = p;
	db_bind_text(s, 1, a->owner);
	db_bind_text(s, 2, a->name);
	db_bind_int64(s, 3, a->now_ms);
}

int meta_pat_revoke(struct meta *m, const char *owner, const char *name, int64_t now_ms)
{
	struct pat_revoke_args a = { owner, name, now_ms };
	int changes = 0;
	/* revoked_ms = 0 means active, so a revocation needs a real time */
	assert(now_ms > 0);
	int rc = meta_write(m, &q_pat_revoke, bind_revoke, &a, &changes, NULL);
	return rc ? rc : changes ? 0 : E_NAME_UNKNOWN;
}
