/*
 * Unit tests for the pull-through cache's fill logic (server/h_mirror*.c)
 * that needs no upstream: the in-flight table (one fill per key shared by
 * every caller, a refused job, a finished fill off the table), waiting on
 * fills, freshness on the daemon's clock, the bounded maps, the mapping
 * of upstream failures to the client's errors, and what manifests
 * reference. Fills run gated jobs of the test instead of upstream fetches.
 */
#include <pthread.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "h_mirror_internal.h"
#include "log.h"
#include "t.h"

/* A job that waits for the test to open the gate, then ends its fill with the state the test chose. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open, jobs_started;
static enum fill_state gate_state = FILL_DONE;

static void gated_job(void *arg)
{
	struct fill *f = arg;
	pthread_mutex_lock(&gate_lock);
	jobs_started++;
	pthread_cond_broadcast(&gate_cond);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	fill_end(f, gate_state, gate_state == FILL_FAILED ? E_STORE_UNAVAILABLE : 0);
	fill_put(f);
}

static void gate_set(int open)
{
	pthread_mutex_lock(&gate_lock);
	gate_open = open;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

/* Gate closed, no job started yet; the jobs will end their fills with st. */
static void gate_reset(enum fill_state st)
{
	jobs_started = 0;
	gate_state = st;
	gate_set(0);
}

static void wait_started(int n)
{
	pthread_mutex_lock(&gate_lock);
	while (jobs_started < n)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

static int started(void)
{
	pthread_mutex_lock(&gate_lock);
	int n = jobs_started;
	pthread_mutex_unlock(&gate_lock);
	return n;
}

static void mirror_init(struct mirror *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->fresh.max = m->sizes.max = 64;
}

static void mirror_done(struct mirror *m)
{
	mirror_map_release(&m->fresh);
	mirror_map_release(&m->sizes);
	mirror_map_release(&m->referrers);
	pthread_mutex_destroy(&m->lock);
}

static struct fill *start(struct mirror *m, struct workq *q, const char *key)
{
	return fill_start(m, fill_new(m, NULL, FILL_BLOB, key, "hub/app", "sha256:x"), q, gated_job);
}

static int listed(struct mirror *m, const char *key)
{
	int found = 0;
	pthread_mutex_lock(&m->lock);
	for (struct fill *f = m->fills; f; f = f->next)
		found |= !strcmp(f->key, key);
	pthread_mutex_unlock(&m->lock);
	return found;
}

static void test_table_shares_one_fill(void)
{
	struct mirror m;
	struct workq *q = workq_new(4, 16);
	mirror_init(&m);
	gate_reset(FILL_DONE);
	struct fill *a = start(&m, q, "b hub/app@sha256:1");
	struct fill *b = start(&m, q, "b hub/app@sha256:1");
	struct fill *c = start(&m, q, "b hub/app@sha256:2");
	CHECK(a && b && c);
	CHECK(a == b); /* the second caller joined the first one's fill */
	CHECK(a != c);
	wait_started(2);
	CHECK_EQ_INT(started(), 2); /* one job per key */
	CHECK(listed(&m, "b hub/app@sha256:1") && listed(&m, "b hub/app@sha256:2"));
	gate_set(1);
	CHECK_EQ_INT(fill_wait(a, FILL_UNTIL_END), FILL_DONE);
	CHECK_EQ_INT(fill_wait(b, FILL_UNTIL_END), FILL_DONE);
	CHECK_EQ_INT(fill_wait(c, FILL_UNTIL_END), FILL_DONE);
	/* once ended, a fill is off the table: the next caller starts anew (the store has it by then) */
	CHECK(!listed(&m, "b hub/app@sha256:1"));
	struct fill *d = start(&m, q, "b hub/app@sha256:1");
	CHECK(d && d != a);
	CHECK_EQ_INT(fill_wait(d, FILL_UNTIL_END), FILL_DONE);
	fill_put(a);
	fill_put(b);
	fill_put(c);
	fill_put(d);
	workq_free(q);
	CHECK(m.fills == NULL);
	CHECK_EQ_INT(started(), 3);
	mirror_done(&m);
}

/* A pool that takes no more jobs: the caller gets NULL (a 429 to the client), nothing stays listed. */
static void test_table_refused_job(void)
{
	struct mirror m;
	struct workq *q = workq_new(1, 1);
	mirror_init(&m);
	gate_reset(FILL_FAILED);
	struct fill *a = start(&m, q, "k1");
	wait_started(1); /* running, so the next one is queued */
	struct fill *b = start(&m, q, "k2");
	struct fill *c = start(&m, q, "k3");
	CHECK(a && b);
	CHECK(c == NULL);
	CHECK(!listed(&m, "k3"));
	/* joining a running fill needs no room in the pool */
	struct fill *a2 = start(&m, q, "k1");
	CHECK(a2 == a);
	gate_set(1);
	CHECK_EQ_INT(fill_wait(a, FILL_UNTIL_END), FILL_FAILED);
	CHECK_EQ_INT(a->rc, E_STORE_UNAVAILABLE);
	CHECK_EQ_INT(fill_wait(b, FILL_UNTIL_END), FILL_FAILED);
	fill_put(a);
	fill_put(a2);
	fill_put(b);
	workq_free(q);
	CHECK(m.fills == NULL);
	mirror_done(&m);
}

/* A job that hands over a manifest's bytes (READY), then waits for the gate before it ends (stored). */
static void ready_job(void *arg)
{
	struct fill *f = arg;
	pthread_mutex_lock(&f->lock);
	digest_of(DIGEST_SHA256, "manifest", 8, &f->digest);
	buf_adds(&f->body, "manifest");
	f->state = FILL_READY;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	fill_end(f, FILL_DONE, 0);
	fill_put(f);
}

static void test_waits_and_pending_manifest(void)
{
	struct mirror m;
	struct workq *q = workq_new(2, 4);
	struct digest want, other;
	mirror_init(&m);
	gate_set(0);
	digest_of(DIGEST_SHA256, "manifest", 8, &want);
	digest_of(DIGEST_SHA256, "other", 5, &other);
	struct fill *f = fill_start(&m, fill_new(&m, NULL, FILL_MANIFEST, "m hub/app@v1", "hub/app", "v1"), q, ready_job);
	CHECK(f != NULL);
	CHECK_EQ_INT(fill_wait(f, FILL_UNTIL_READY), FILL_READY);
	CHECK_STR(f->body.buf, "manifest");
	/* a pull by the digest the tag's fill got joins that fill */
	struct fill *p = fill_manifest_pending(&m, "hub/app", &want);
	CHECK(p == f);
	CHECK(fill_manifest_pending(&m, "hub/app", &other) == NULL);
	CHECK(fill_manifest_pending(&m, "hub/other", &want) == NULL);
	gate_set(1);
	CHECK_EQ_INT(fill_wait(f, FILL_UNTIL_END), FILL_DONE);
	CHECK(fill_manifest_pending(&m, "hub/app", &want) == NULL); /* stored: the store answers now */
	fill_put(p);
	fill_put(f);

	/* a blob fill: waiting for bytes returns as soon as some arrived */
	gate_reset(FILL_DONE);
	struct fill *b = start(&m, q, "b hub/app@sha256:3");
	wait_started(1);
	pthread_mutex_lock(&b->lock);
	b->got = 10;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	CHECK_EQ_INT(fill_wait(b, FILL_UNTIL_BYTES), FILL_RUNNING);
	gate_set(1);
	CHECK_EQ_INT(fill_wait(b, FILL_UNTIL_END), FILL_DONE);
	fill_put(b);
	workq_free(q);
	mirror_done(&m);
}

static void test_freshness(void)
{
	struct mirror m;
	mirror_init(&m);
	int64_t now = clock_wall_ms();
	CHECK(mirror_fresh_since(now, 300));
	CHECK(mirror_fresh_since(now - 299 * 1000, 300));
	CHECK(!mirror_fresh_since(now - 301 * 1000, 300));
	CHECK(!mirror_fresh_since(now, 0)); /* freshness 0: every pull asks the upstream */
	CHECK(!mirror_is_fresh(&m, "hub/app:v1", 300));
	mirror_mark_fresh(&m, "hub/app:v1", clock_wall_ms());
	CHECK(mirror_is_fresh(&m, "hub/app:v1", 300));
	CHECK(!mirror_is_fresh(&m, "hub/app:v2", 300));
#ifdef BERTH_TEST_HOOKS
	/* on the daemon's clock, as the e2e tests move it */
	clock_test_advance(299 * 1000);
	CHECK(mirror_is_fresh(&m, "hub/app:v1", 300));
	clock_test_advance(2 * 1000);
	CHECK(!mirror_is_fresh(&m, "hub/app:v1", 300));
	CHECK(mirror_is_fresh(&m, "hub/app:v1", 600));
	mirror_mark_fresh(&m, "hub/app:v1", clock_wall_ms());
	CHECK(mirror_is_fresh(&m, "hub/app:v1", 300));
#endif
	mirror_done(&m);
}

static void test_maps(void)
{
	struct mirror_map mp = { .max = 3, .max_bytes = 10 };
	struct buf text = BUF_INIT;
	int64_t v = 0;
	mirror_map_set(&mp, "a", 1);
	mirror_map_set(&mp, "b", 2);
	mirror_map_set(&mp, "a", 3);
	CHECK(mirror_map_get(&mp, "a", &v) && v == 3);
	CHECK(!mirror_map_get(&mp, "z", &v));
	mirror_map_set(&mp, "c", 4);
	/* full: cleared whole, then the new entry kept */
	mirror_map_set(&mp, "d", 5);
	CHECK(!mirror_map_get(&mp, "a", &v));
	CHECK(mirror_map_get(&mp, "d", &v) && v == 5);
	CHECK_EQ_INT(mp.count, 1);
	mirror_map_set_text(&mp, "t", 7, "abcdef", 6);
	CHECK(mirror_map_get_text(&mp, "t", &v, &text) && v == 7);
	CHECK_STR(text.buf, "abcdef");
	mirror_map_set_text(&mp, "t", 8, "xy", 2); /* replaced, its bytes counted once */
	CHECK_EQ_INT(mp.bytes, 2);
	mirror_map_set_text(&mp, "big", 9, "01234567890", 11); /* over max_bytes alone: not kept */
	CHECK(!mirror_map_get(&mp, "big", &v));
	mirror_map_set_text(&mp, "u", 9, "012345678", 9); /* the bytes overflow: the rest goes */
	CHECK(!mirror_map_get(&mp, "t", &v));
	buf_reset(&text);
	CHECK(mirror_map_get_text(&mp, "u", &v, &text) && v == 9);
	CHECK_STR(text.buf, "012345678");
	CHECK_EQ_INT(mp.bytes, 9);
	buf_release(&text);
	mirror_map_release(&mp);
}

static void check_fail(struct mirror_up *up, enum upstream_fail kind, int status, int rc, int want, const char *detail)
{
	struct upstream_error ue = { .kind = kind, .status = status };
	struct buf out = BUF_INIT;
	unsigned long long before = atomic_load(&up->stats.errors);
	CHECK_EQ_INT(mirror_upstream_fail(up, rc, &ue, &out), want);
	CHECK_STR(out.buf, detail);
	CHECK_EQ_INT(atomic_load(&up->stats.errors), before + 1);
	buf_release(&out);
}

static void test_error_mapping(void)
{
	struct config_upstream cfg = { .name = "hub", .url = "https://registry-1.docker.io", .prefix = "hub/" };
	struct mirror_up up = { .name = "hub", .freshness_s = 300 };
	struct buf why = BUF_INIT;
	CHECK_EQ_INT(upstream_open(&cfg, NULL, &up.client), 0);
	const char *named = "upstream \"hub\" (https://registry-1.docker.io) ";
	struct buf want = BUF_INIT;
	buf_addf(&want, "%sanswered 404", named);
	check_fail(&up, UPSTREAM_NOT_FOUND, 404, E_MANIFEST_UNKNOWN, E_MANIFEST_UNKNOWN, want.buf);
	check_fail(&up, UPSTREAM_NOT_FOUND, 404, E_BLOB_UNKNOWN, E_BLOB_UNKNOWN, want.buf);
	buf_reset(&want);
	buf_addf(&want, "%sanswered 429", named);
	check_fail(&up, UPSTREAM_RATE_LIMITED, 429, E_TOOMANYREQUESTS, E_TOOMANYREQUESTS, want.buf);
	buf_reset(&want);
	buf_addf(&want, "%sanswered 500", named);
	check_fail(&up, UPSTREAM_SERVER, 500, E_STORE_UNAVAILABLE, E_STORE_UNAVAILABLE, want.buf);
	buf_reset(&want);
	buf_addf(&want, "%sanswered 401", named);
	check_fail(&up, UPSTREAM_DENIED, 401, E_DENIED, E_STORE_UNAVAILABLE, want.buf); /* not the client's denial */
	buf_reset(&want);
	buf_addf(&want, "%sis down", named);
	check_fail(&up, UPSTREAM_DOWN, 0, E_STORE_UNAVAILABLE, E_STORE_UNAVAILABLE, want.buf);
	buf_reset(&want);
	buf_addf(&want, "%sbad answer", named);
	check_fail(&up, UPSTREAM_BAD_ANSWER, 0, E_STORE, E_STORE_UNAVAILABLE, want.buf);

	/* stale serves: each counted, the warning once per freshness window */
	log_set_level(LOG_ERROR);
	buf_adds(&why, "down");
	mirror_stale_serve(&up, "hub/app:v1", &why);
	long long warned = atomic_load(&up.last_warn_ms);
	CHECK(warned != 0);
	mirror_stale_serve(&up, "hub/app:v1", &why);
	CHECK_EQ_INT(atomic_load(&up.last_warn_ms), warned);
	CHECK_EQ_INT(atomic_load(&up.stats.stale), 2);
#ifdef BERTH_TEST_HOOKS
	clock_test_advance(301 * 1000);
	mirror_stale_serve(&up, "hub/app:v1", &why);
	CHECK(atomic_load(&up.last_warn_ms) > warned);
#endif
	buf_release(&why);
	buf_release(&want);
	upstream_free(up.client);
}

#define CFG "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define L1 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define L2 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define FOREIGN "sha256:4444444444444444444444444444444444444444444444444444444444444444"

static void test_manifest_refs(void)
{
	struct mirror m;
	struct mirror_blob_ref refs[4];
	struct buf image = BUF_INIT, index = BUF_INIT;
	struct digest d;
	mirror_init(&m);
	buf_adds(&image, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"" CFG "\",\"size\":7},"
			 "\"layers\":[{\"mediaType\":\"l\",\"digest\":\"" L1 "\",\"size\":100},"
			 "{\"mediaType\":\"l\",\"digest\":\"" FOREIGN "\",\"size\":5,\"urls\":[\"https://x\"]},"
			 "{\"mediaType\":\"l\",\"digest\":\"" L2 "\",\"size\":200},"
			 "{\"mediaType\":\"l\",\"digest\":\"bad\",\"size\":1}]}");
	CHECK_EQ_INT(mirror_image_blobs(&image, refs, 4), 3); /* config and layers, not the foreign one */
	digest_parse(L2, &d);
	CHECK(digest_eq(&refs[2].d, &d) && refs[2].size == 200);
	CHECK_EQ_INT(mirror_image_blobs(&image, refs, 2), 2); /* bounded by the caller's room */
	buf_adds(&index, "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"m\",\"digest\":\"" L1 "\",\"size\":42}]}");
	CHECK_EQ_INT(mirror_image_blobs(&index, refs, 4), 0);
	mirror_learn_sizes(&m, &image);
	digest_parse(CFG, &d);
	CHECK_EQ_INT(mirror_size_hint(&m, &d), 7);
	mirror_learn_sizes(&m, &index); /* an index's children: their sizes too */
	digest_parse(L1, &d);
	CHECK_EQ_INT(mirror_size_hint(&m, &d), 42);
	digest_parse(FOREIGN, &d);
	CHECK_EQ_INT(mirror_size_hint(&m, &d), 5);
	digest_of(DIGEST_SHA256, "nothing", 7, &d);
	CHECK_EQ_INT(mirror_size_hint(&m, &d), -1);
	buf_release(&image);
	buf_release(&index);
	mirror_done(&m);
}

int main(void)
{
	test_table_shares_one_fill();
	test_table_refused_job();
	test_waits_and_pending_manifest();
	test_freshness();
	test_maps();
	test_error_mapping();
	test_manifest_refs();
	return t_done();
}
