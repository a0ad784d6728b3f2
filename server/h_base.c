/* h_base: the API version check (/v2/) and liveness (/healthz). */
#include "handlers.h"

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
