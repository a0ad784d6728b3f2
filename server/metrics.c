/* metrics: lock-free counters rendered in the Prometheus text format. */
#include "metrics.h"

#include <stdatomic.h>
#include <time.h>

#include "berth_version.h"
#include "h_mirror.h"
#include "store.h"
#include "router.h"

/* Request duration buckets, seconds: from a cached manifest GET to a large push. */
static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))
#define NROUTES (ROUTE_NONE + 1)
#define NCLASSES 5 /* 1xx..5xx */

static atomic_uint_fast64_t requests[NROUTES][NCLASSES];
static atomic_uint_fast64_t buckets[NROUTES][NBOUNDS + 1];
static atomic_uint_fast64_t duration_us[NROUTES];
static atomic_uint_fast64_t bytes_in_total, bytes_out_total;
static atomic_int_fast64_t uploads_active;
static atomic_uint_fast64_t tokens_ok, tokens_refused, logins_failed;
static time_t started;


void metrics_request(int route, int status, double seconds, uint64_t bytes_in, uint64_t bytes_out)
{
	int cls = status / 100 - 1;
	size_t b = 0;
	if (route < 0 || route >= (int)NROUTES)
		route = ROUTE_NONE;
	if (cls < 0 || cls >= NCLASSES)
		cls = NCLASSES - 1;
	while (b < NBOUNDS && seconds > bounds[b])
		b++;
	atomic_fetch_add_explicit(&requests[route][cls], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&buckets[route][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&duration_us[route], (uint64_t)(seconds * 1e6), memory_order_relaxed);
	atomic_fetch_add_explicit(&bytes_in_total, bytes_in, memory_order_relaxed);
	atomic_fetch_add_explicit(&bytes_out_total, bytes_out, memory_order_relaxed);
}

void metrics_upload_begin(void)
{
	atomic_fetch_add(&uploads_active, 1);
}

void metrics_upload_end(void)
{
	atomic_fetch_sub(&uploads_active, 1);
}

void metrics_token(int ok)
{
	atomic_fetch_add_explicit(ok ? &tokens_ok : &tokens_refused, 1, memory_order_relaxed);
}

void metrics_login_failed(void)
{
	atomic_fetch_add_explicit(&logins_failed, 1, memory_order_relaxed);
}

static void head(struct buf *o, const char *name, const char *type, const char *help)
{
	buf_addf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* An unlabelled sample with its HELP and TYPE lines. */
static void sample(struct buf *o, const char *name, const char *type, const char *help, long long v)
{
	head(o, name, type, help);
	buf_addf(o, "%s %lld\n", name, v);
}

static void render_requests(struct buf *o)
{
	head(o, "berth_http_requests_total", "counter", "HTTP requests served, by route and status class.");
	for (int r = 0; r < (int)NROUTES; r++)
		for (int c = 0; c < NCLASSES; c++) {
			uint64_t v = atomic_load_explicit(&requests[r][c], memory_order_relaxed);
			if (v)
				buf_addf(o, "berth_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n",
					 router_kind_label(r), c + 1, (unsigned long long)v);
		}
	head(o, "berth_http_request_duration_seconds", "histogram", "Time from request start to response sent.");
	for (int r = 0; r < (int)NROUTES; r++) {
		uint64_t cum = 0;
		for (size_t b = 0; b <= NBOUNDS; b++)
			cum += atomic_load_explicit(&buckets[r][b], memory_order_relaxed);
		if (!cum)
			continue;
		cum = 0;
		for (size_t b = 0; b <= NBOUNDS; b++) {
			cum += atomic_load_explicit(&buckets[r][b], memory_order_relaxed);
			if (b < NBOUNDS)
				buf_addf(o, "berth_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
					 router_kind_label(r), bounds[b], (unsigned long long)cum);
			else
				buf_addf(o, "berth_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
					 router_kind_label(r), (unsigned long long)cum);
		}
		buf_addf(o, "berth_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", router_kind_label(r),
			 (double)atomic_load_explicit(&duration_us[r], memory_order_relaxed) / 1e6);
		buf_addf(o, "berth_http_request_duration_seconds_count{route=\"%s\"} %llu\n", router_kind_label(r),
			 (unsigned long long)cum);
	}
}

void metrics_start(void)
{
	started = time(NULL);
}

void metrics_render(struct store *store, struct buf *o)
{
	struct store_stats st;
	head(o, "berth_build_info", "gauge", "Build information; the value is always 1.");
	buf_addf(o, "berth_build_info{version=\"%s\"} 1\n", BERTH_VERSION);
	render_requests(o);
	head(o, "berth_http_received_bytes_total", "counter", "Request body bytes received.");
	buf_addf(o, "berth_http_received_bytes_total %llu\n", (unsigned long long)atomic_load(&bytes_in_total));
	head(o, "berth_http_sent_bytes_total", "counter", "Response body bytes sent.");
	buf_addf(o, "berth_http_sent_bytes_total %llu\n", (unsigned long long)atomic_load(&bytes_out_total));
	sample(o, "berth_uploads_in_progress", "gauge", "Blob upload requests streaming a body right now.",
	       (long long)atomic_load(&uploads_active));
	head(o, "berth_token_requests_total", "counter", "Token endpoint answers, by result.");
	buf_addf(o, "berth_token_requests_total{result=\"issued\"} %llu\n", (unsigned long long)atomic_load(&tokens_ok));
	buf_addf(o, "berth_token_requests_total{result=\"refused\"} %llu\n",
		 (unsigned long long)atomic_load(&tokens_refused));
	head(o, "berth_login_failures_total", "counter", "Failed password or access-token checks.");
	buf_addf(o, "berth_login_failures_total %llu\n", (unsigned long long)atomic_load(&logins_failed));
	if (store_stats(store, &st) == 0) {
		sample(o, "berth_blobs_stored", "gauge", "Distinct blobs in the store.", st.blobs);
		sample(o, "berth_blobs_stored_bytes", "gauge", "Total size of the distinct blobs in the store.",
		       st.blob_bytes);
		sample(o, "berth_repositories", "gauge", "Repositories holding blobs.", st.repos);
		sample(o, "berth_manifests", "gauge", "Manifests across all repositories.", st.manifests);
		sample(o, "berth_tags", "gauge", "Tags across all repositories.", st.tags);
		sample(o, "berth_upload_sessions", "gauge", "Upload sessions open (started, not finished or purged).",
		       st.uploads);
		sample(o, "berth_gc_runs_total", "counter", "Garbage collections run (daemon and command line).",
		       st.gc_runs);
		sample(o, "berth_gc_freed_bytes_total", "counter", "Bytes freed by garbage collection.", st.gc_bytes_freed);
	}
	mirror_metrics_render(o);
	sample(o, "berth_start_time_seconds", "gauge", "When the process started, seconds since the epoch.",
	       (long long)started);
}
