/* meta_audit: the append-only audit log of who did what, when and from where. */
#include <assert.h>
#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "log.h"
#include "meta.h"
#include "meta_internal.h"

/*
 * detail ends up verbatim inside JSON output, so only a JSON object (or
 * NULL) gets in, and action must not be empty: both are checked before the
 * insert (meta_audit_insert()), so a caller bug is told apart from a
 * database failure on either engine (their JSON functions differ).
 */
static const struct meta_query q_audit_insert = { .id = MS_AUDIT_INSERT, .sql =
	"INSERT INTO audit_events(time_ms, actor, action, repo, detail, client)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6)" };
/* Index entries carry the id after time_ms, so both orderings come from the index without a sort. */
static const struct meta_query q_audit_list = { .id = MS_AUDIT_LIST, .sql =
	"SELECT id, time_ms, actor, action, repo, detail, client FROM audit_events"
	" WHERE time_ms >= ?1 ORDER BY time_ms, id LIMIT ?3" };
static const struct meta_query q_audit_list_repo = { .id = MS_AUDIT_LIST_REPO, .sql =
	"SELECT id, time_ms, actor, action, repo, detail, client FROM audit_events"
	" WHERE repo = ?2 AND time_ms >= ?1 ORDER BY time_ms, id LIMIT ?3" };

/* Whether text is NULL or a JSON object (a single one: nothing after it). */
static int json_object_or_null(const char *text)
{
	if (!text)
		return 1;
	json_t *j = json_loads(text, 0, NULL);
	int ok = j && json_is_object(j);
	json_decref(j);
	return ok;
}

int meta_audit_insert(struct meta_conn *c, const struct meta_audit *ev)
{
	struct db_stmt *s;
	int changes = 0;
	assert(ev->action && *ev->action);
	if (!ev->action || !*ev->action || !json_object_or_null(ev->detail)) {
		log_error("meta: audit event \"%s\" refused: empty action or detail not a JSON object",
			  ev->action ? ev->action : "");
		return E_INTERNAL;
	}
	int rc = meta_stmt(c, &q_audit_insert, &s);
	if (rc)
		return rc;
	db_bind_int64(s, 1, meta_now_ms());
	db_bind_text(s, 2, ev->actor);
	db_bind_text(s, 3, ev->action);
	db_bind_text(s, 4, ev->repo);
	db_bind_text(s, 5, ev->detail);
	db_bind_text(s, 6, ev->client);
	rc = meta_exec(c, s);
	changes = (int)db_changes(c->db);
	meta_stmt_done(c, &q_audit_insert, s);
	if (!rc && !changes) {
		log_error("meta: audit event \"%s\" refused: empty action or detail not a JSON object",
			  ev->action ? ev->action : "");
		rc = E_INTERNAL;
	}
	return rc;
}

static int audit_add_tx(struct meta_conn *c, void *ev)
{
	return meta_audit_insert(c, ev);
}

int meta_audit_add(struct meta *m, const char *actor, const char *action, const char *repo, const char *detail_json,
		   const char *client)
{
	struct meta_audit ev = { .actor = actor, .action = action, .repo = repo, .detail = detail_json,
				 .client = client };
	return meta_tx_run(m, audit_add_tx, &ev);
}

int meta_audit_list(struct meta *m, int64_t since_ms, const char *repo, long limit, meta_audit_cb cb, void *ctx)
{
	struct meta_conn *c;
	struct db_stmt *s;
	const struct meta_query *q = repo ? &q_audit_list_repo : &q_audit_list;
	int rc = meta_conn_get(m, &c);
	if (!rc)
		rc = meta_stmt(c, q, &s);
	if (rc)
		return rc;
	db_bind_int64(s, 1, since_ms);
	if (repo)
		db_bind_text(s, 2, repo);
	/* no limit: the largest (PostgreSQL refuses SQLite's -1) */
	db_bind_int64(s, 3, limit < 0 ? INT64_MAX : (int64_t)limit);
	while ((rc = meta_step(c, s)) == 1) {
		struct meta_audit ev = {
			.id = db_col_int64(s, 0),
			.time_ms = db_col_int64(s, 1),
			.actor = db_col_text(s, 2),
			.action = db_col_text(s, 3),
			.repo = db_col_text(s, 4),
			.detail = db_col_text(s, 5),
			.client = db_col_text(s, 6),
		};
		if (!ev.action) {
			log_error("meta: malformed audit row");
			rc = E_IO;
			break;
		}
		int r = cb(ctx, &ev);
		if (r) {
			rc = r;
			break;
		}
	}
	meta_stmt_done(c, q, s);
	return rc;
}
