/* meta_audit: the append-only audit log of who did what, when and from where. */
#include <assert.h>
#include <stdint.h>

#include "err.h"
#include "log.h"
#include "meta.h"
#include "meta_internal.h"

/*
 * detail ends up verbatim inside JSON output, so only a JSON object (or
 * NULL) gets in; CASE because json_type() fails on malformed text. OR
 * IGNORE likewise turns an empty action (the CHECK) into "no row", so a
 * caller bug is told apart from a database failure.
 */
static const struct meta_query q_audit_insert = { MS_AUDIT_INSERT,
	"INSERT OR IGNORE INTO audit_events(time_ms, actor, action, repo, detail, client)"
	" SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE CASE WHEN ?5 IS NULL THEN 1"
	" WHEN json_valid(?5) THEN json_type(?5) = 'object' ELSE 0 END" };
/* Index entries carry the id after time_ms, so both orderings come from the index without a sort. */
static const struct meta_query q_audit_list = { MS_AUDIT_LIST,
	"SELECT id, time_ms, actor, action, repo, detail, client FROM audit_events"
	" WHERE time_ms >= ?1 ORDER BY time_ms, id LIMIT ?3" };
static const struct meta_query q_audit_list_repo = { MS_AUDIT_LIST_REPO,
	"SELECT id, time_ms, actor, action, repo, detail, client FROM audit_events"
	" WHERE repo = ?2 AND time_ms >= ?1 ORDER BY time_ms, id LIMIT ?3" };

int meta_audit_insert(struct meta_conn *c, const struct meta_audit *ev)
{
	sqlite3_stmt *s;
	int changes = 0;
	assert(ev->action && *ev->action);
	int rc = meta_stmt(c, &q_audit_insert, &s);
	if (rc)
		return rc;
	meta_bind_int64(s, 1, meta_now_ms());
	meta_bind_text(s, 2, ev->actor);
	meta_bind_text(s, 3, ev->action);
	meta_bind_text(s, 4, ev->repo);
	meta_bind_text(s, 5, ev->detail);
	meta_bind_text(s, 6, ev->client);
	rc = meta_exec(c, s);
	changes = sqlite3_changes(c->db);
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

int meta_audit_add(const char *actor, const char *action, const char *repo, const char *detail_json,
		   const char *client)
{
	struct meta_audit ev = { .actor = actor, .action = action, .repo = repo, .detail = detail_json,
				 .client = client };
	return meta_tx_run(audit_add_tx, &ev);
}

int meta_audit_list(int64_t since_ms, const char *repo, long limit, meta_audit_cb cb, void *ctx)
{
	struct meta_conn *c;
	sqlite3_stmt *s;
	const struct meta_query *q = repo ? &q_audit_list_repo : &q_audit_list;
	int rc = meta_conn_get(&c);
	if (!rc)
		rc = meta_stmt(c, q, &s);
	if (rc)
		return rc;
	meta_bind_int64(s, 1, since_ms);
	if (repo)
		meta_bind_text(s, 2, repo);
	/* a negative LIMIT means none */
	meta_bind_int64(s, 3, limit < 0 ? -1 : (int64_t)limit);
	while ((rc = meta_step(c, s)) == 1) {
		struct meta_audit ev = {
			.id = sqlite3_column_int64(s, 0),
			.time_ms = sqlite3_column_int64(s, 1),
			.actor = meta_col_text(s, 2),
			.action = meta_col_text(s, 3),
			.repo = meta_col_text(s, 4),
			.detail = meta_col_text(s, 5),
			.client = meta_col_text(s, 6),
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
