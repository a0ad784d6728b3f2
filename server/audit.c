/* audit: one database row and one JSON log line per event worth an auditor's attention. */
#include "audit.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "authn.h"
#include "err.h"
#include "log.h"
#include "handlers.h"
#include "store.h"
#include "policy.h"
#include "router.h"

int audit_actor(struct req *r, struct buf *out)
{
	const struct ident *id = r ? r->ident : NULL;
	char *pat = NULL;
	if (!r) {
		buf_adds(out, "cli");
		return 1;
	}
	if (!id || id->failed || !id->user || !*id->user)
		return 0;
	buf_adds(out, id->user);
	if (!id->pat_id)
		return 1;
	/* one primary-key read, paid only by requests that change something */
	if (!store_pat_name(r->reg->store, id->pat_id, &pat))
		buf_addf(out, " (token %s)", pat);
	else
		buf_addf(out, " (token #%lld)", (long long)id->pat_id);
	free(pat);
	return 1;
}

void audit_json_str(struct buf *out, const char *s, size_t max)
{
	size_t n = 0;
	buf_addch(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
		if (n == max) {
			buf_adds(out, "...");
			break;
		}
		if (*p == '"' || *p == '\\')
			buf_addch(out, '\\');
		buf_addch(out, *p >= 0x20 && *p < 0x7f ? (char)*p : '?');
	}
	buf_addch(out, '"');
}

/* Non-zero when text is a JSON object (the only detail the audit log takes). */
static int is_json_object(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	int ok = j && json_is_object(j);
	json_decref(j);
	return ok;
}

/* Adds ,"key":"value" (or null) to a log line. */
static void add_field(struct buf *b, const char *key, const char *value)
{
	buf_addf(b, ",\"%s\":", key);
	if (value)
		buf_add_json_str(b, value);
	else
		buf_adds(b, "null");
}

static void log_line(const char *actor, const char *client, const char *action, const char *repo,
		     const char *detail)
{
	struct buf b = BUF_INIT;
	if (log_get_level() < LOG_INFO)
		return;
	buf_adds(&b, "{\"audit\":{\"time\":\"");
	log_timestamp(&b);
	buf_addch(&b, '"');
	add_field(&b, "actor", actor);
	add_field(&b, "action", action);
	add_field(&b, "repo", repo);
	add_field(&b, "client", client);
	buf_adds(&b, ",\"detail\":");
	buf_adds(&b, detail ? detail : "null");
	buf_adds(&b, "}}\n");
	log_raw(b.buf, b.len);
	buf_release(&b);
}

__attribute__((format(printf, 6, 0))) static int record(struct store *st, const char *actor,
							const char *client, const char *action,
							const char *repo, const char *detail_fmt, va_list ap)
{
	struct buf detail = BUF_INIT;
	int rc;
	if (detail_fmt) {
		buf_vaddf(&detail, detail_fmt, ap);
		if (!is_json_object(detail.buf)) {
			log_error("audit: the detail of a \"%s\" event is not a JSON object; recorded without it",
				  action);
			buf_release(&detail);
			detail_fmt = NULL;
		}
	}
	log_line(actor, client, action, repo, detail_fmt ? detail.buf : NULL);
	rc = store_audit_add(st, actor, action, repo, detail_fmt ? detail.buf : NULL, client);
	if (rc)
		log_error("audit: cannot record a \"%s\" event: %s", action, err_desc(rc)->message);
	buf_release(&detail);
	return rc;
}

void audit_log_event(const struct store_audit *ev)
{
	log_line(ev->actor, ev->client, ev->action, ev->repo, ev->detail);
}

int audit_event(struct req *r, const char *action, const char *repo, const char *detail_fmt, ...)
{
	struct buf actor = BUF_INIT;
	va_list ap;
	int named = audit_actor(r, &actor);
	va_start(ap, detail_fmt);
	int rc = record(r->reg->store, named ? actor.buf : NULL, r->client, action, repo, detail_fmt, ap);
	va_end(ap);
	buf_release(&actor);
	return rc;
}

int audit_event_as(struct store *st, const char *actor, const char *client, const char *action, const char *repo,
		   const char *detail_fmt, ...)
{
	va_list ap;
	va_start(ap, detail_fmt);
	int rc = record(st, actor, client, action, repo, detail_fmt, ap);
	va_end(ap);
	return rc;
}

void audit_login(struct req *r, const char *user, int with_token, int64_t pat_id, int rc)
{
	struct buf who = BUF_INIT;
	const char *method = with_token ? "token" : "password";
	if (!rc) {
		char *name = NULL;
		buf_adds(&who, user);
		if (pat_id && !store_pat_name(r->reg->store, pat_id, &name))
			buf_addf(&who, " (token %s)", name);
		free(name);
		audit_event_as(r->reg->store, who.buf, r->client, "login", NULL, "{\"method\":\"%s\",\"endpoint\":\"%s\"}", method,
			       router_label(r));
	} else {
		/*
		 * Nobody proved who they are: the claimed name is only detail, and
		 * only when such a user exists, since people type their password
		 * at the user name prompt.
		 */
		if (policy_user_exists(r->policy, user))
			audit_json_str(&who, user, 64);
		else
			buf_adds(&who, "null");
		audit_event_as(r->reg->store, NULL, r->client, "login_failed", NULL,
			       "{\"user\":%s,\"method\":\"%s\",\"endpoint\":\"%s\"}", who.buf, method,
			       router_label(r));
	}
	buf_release(&who);
}
