/* h_base: the API version check (/v2/), liveness, readiness and metrics. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "fault.h"
#include "handlers.h"
#include "metrics.h"

int h_base_get(struct req *r)
{
	buf_adds(&r->out, "{}");
	resp_body(r, 200, "application/json");
	return 0;
}

int h_health_get(struct req *r)
{
	buf_adds(&r->out, "ok\n");
	resp_body(r, 200, "text/plain");
	return 0;
}

/* One part of the storage in the readiness report: {"name":..,"ok":..[,"reason":..]}. */
static void ready_part(struct buf *out, const char *name, int ok, const struct buf *why)
{
	buf_adds(out, "{\"name\":");
	buf_add_json_str(out, name);
	buf_addf(out, ",\"ok\":%s", ok ? "true" : "false");
	if (!ok) {
		buf_adds(out, ",\"reason\":");
		buf_add_json_str(out, why->len ? why->buf : "not available");
	}
	buf_addch(out, '}');
}

/*
 * Ready when the blob storage takes a write and the database answers: a
 * load balancer should not send pushes to a node that cannot store them.
 * Ready is the plain "ready"; not ready is a 503 naming each part (the
 * database, the blob store) with why the one that is down is.
 */
int h_ready_get(struct req *r)
{
	struct store_health h;
	int ok = store_health(r->reg->store, &h) == 0;
	if (ok) {
		buf_adds(&r->out, "ready\n");
	} else {
		buf_adds(&r->out, "{\"ready\":false,\"database\":");
		ready_part(&r->out, h.db_name, h.db_ok, &h.db_why);
		buf_adds(&r->out, ",\"blobs\":");
		ready_part(&r->out, h.blobs_name, h.blobs_ok, &h.blobs_why);
		buf_adds(&r->out, "}\n");
	}
	store_health_release(&h);
	resp_body(r, ok ? 200 : 503, ok ? "text/plain" : "application/json");
	return 0;
}

int h_metrics_get(struct req *r)
{
	metrics_render(r->reg->store, &r->out);
	resp_body(r, 200, "text/plain; version=0.0.4; charset=utf-8");
	return 0;
}

#ifdef BERTH_TEST_HOOKS
/* Tests move time instead of sleeping through windows and TTLs. */
int h_test_clock(struct req *r)
{
	const char *v = query_get(&r->query, "advance");
	char *end;
	long long secs = v ? strtoll(v, &end, 10) : 0;
	if (!v || *end || secs < 0)
		return req_fail(r, E_BAD_REQUEST, "want advance=SECONDS");
	clock_test_advance(secs * 1000);
	buf_addf(&r->out, "{\"now_ms\":%lld}", (long long)clock_wall_ms());
	resp_body(r, 200, "application/json");
	return 0;
}

/* Storage fault injection (common/fault.h): what the last arming saw, then the new arming. */
int h_test_fault(struct req *r)
{
	const char *v = query_get(&r->query, "at"), *p = query_get(&r->query, "persist");
	const char *e = query_get(&r->query, "errno");
	char *end;
	long long at = v ? strtoll(v, &end, 10) : 0;
	struct fault_status st;
	if (!v || *end || at < 0 || (e && strcmp(e, "EIO") && strcmp(e, "ENOSPC")))
		return req_fail(r, E_BAD_REQUEST, "want at=STEP (0: count only), persist=1, errno=EIO|ENOSPC");
	fault_arm(at, p && !strcmp(p, "1"), e && !strcmp(e, "ENOSPC") ? ENOSPC : EIO, &st);
	buf_addf(&r->out, "{\"steps\":%lld,\"failed_at\":%lld,\"failures\":%lld,\"kind\":\"%s\"}",
		 (long long)st.steps, (long long)st.failed_at, (long long)st.failures,
		 st.failed_at ? fault_kind_name(st.kind) : "");
	resp_body(r, 200, "application/json");
	return 0;
}
#endif
