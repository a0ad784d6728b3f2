/* gcsched: the daemon's periodic garbage collection thread. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "err.h"
#include "gcsched.h"
#include "log.h"
#include "registry.h"

/* Longest sleep between looks at the settings: a reload that shortens the schedule is seen this soon. */
#define WAKE_MS 60000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static pthread_t thread;
static int running, stopping, inhibited;
static atomic_int cancel;

void gcsched_opts(const struct config *c, struct gc_opts *o)
{
	gc_opts_init(o, c->gc_history_s, c->gc_untagged_s, c->gc_grace_s, c->upload_ttl_s);
}

void gcsched_record(struct store *st, const struct gc_report *r, int from_cli)
{
	struct buf json = BUF_INIT;
	if (r->dry_run)
		return;
	gc_report_json(r, &json);
	/* the counts, and who started it: the schedule or an operator */
	buf_setlen(&json, json.len - 1);
	buf_addf(&json, ",\"trigger\":\"%s\"}", from_cli ? "cli" : "schedule");
	audit_event_as(st, from_cli ? "cli" : "gc", NULL, "gc", NULL, "%s", json.buf);
	buf_release(&json);
}

/*
 * The schedule's period runs on real time, never on the test clock
 * (common/clock.h): it paces a timer. The ages a run compares (grace,
 * TTLs, untagged age) are read through gc_now_ms(), which is clock_wall_ms().
 */
static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run_once(struct registry *reg)
{
	struct snapshot *sn = registry_snapshot_get(reg);
	struct gc_opts o;
	struct gc_report r;
	struct buf line = BUF_INIT;
	gcsched_opts(&sn->cfg, &o);
	o.cancel = &cancel;
	int rc = store_gc(reg->store, &o, &r);
	registry_snapshot_put(reg, sn);
	if (r.busy) {
		log_info("gc: skipped, another collection is running (on this data directory, or on another node "
			 "of the cluster)");
		return;
	}
	gc_report_text(&r, &line);
	if (rc)
		log_error("%s; stopped by an error: %s", line.buf, err_desc(rc)->message);
	else
		log_info("%s", line.buf);
	gcsched_record(reg->store, &r, 0);
	buf_release(&line);
}

/* Sleeps until deadline (monotonic ms) or a stop; called and returns with lock held. */
static void sleep_until(int64_t deadline)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t left = deadline - mono_ms();
	if (left <= 0)
		return;
	ts.tv_sec += (time_t)(left / 1000);
	ts.tv_nsec += (long)(left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&wake, &lock, &ts);
}

static void *loop(void *arg)
{
	struct registry *reg = arg;
	int64_t last = mono_ms();
	pthread_mutex_lock(&lock);
	while (!stopping) {
		struct snapshot *sn = registry_snapshot_get(reg);
		int64_t interval_ms = (int64_t)sn->cfg.gc_interval_s * 1000;
		registry_snapshot_put(reg, sn);
		int64_t now = mono_ms();
		if (interval_ms && now >= last + interval_ms) {
			pthread_mutex_unlock(&lock);
			run_once(reg);
			pthread_mutex_lock(&lock);
			last = mono_ms();
			continue;
		}
		int64_t deadline = now + WAKE_MS;
		if (interval_ms && last + interval_ms < deadline)
			deadline = last + interval_ms;
		sleep_until(deadline);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

void gcsched_inhibit(void)
{
	pthread_mutex_lock(&lock);
	inhibited = 1;
	pthread_mutex_unlock(&lock);
}

int gcsched_start(struct registry *reg)
{
	pthread_condattr_t ca;
	int rc = 0;
	pthread_mutex_lock(&lock);
	if (inhibited || running)
		goto out;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wake, &ca);
	pthread_condattr_destroy(&ca);
	stopping = 0;
	atomic_store(&cancel, 0);
	if (pthread_create(&thread, NULL, loop, reg)) {
		log_error("gc: cannot start the schedule thread");
		pthread_cond_destroy(&wake);
		rc = E_INTERNAL;
		goto out;
	}
	running = 1;
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

void gcsched_stop(void)
{
	pthread_mutex_lock(&lock);
	if (!running) {
		pthread_mutex_unlock(&lock);
		return;
	}
	stopping = 1;
	atomic_store(&cancel, 1);
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	pthread_mutex_lock(&lock);
	running = 0;
	pthread_cond_destroy(&wake);
	pthread_mutex_unlock(&lock);
}
