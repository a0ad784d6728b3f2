/* Unit tests for the auth building blocks: scopes, limiter, credential cache, work queue. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "credcache.h"
#include "err.h"
#include "ratelimit.h"
#include "scope.h"
#include "t.h"
#include "workq.h"

static void test_actions(void)
{
	struct buf b = BUF_INIT;
	CHECK_EQ_INT(actions_parse("pull"), ACTION_PULL);
	CHECK_EQ_INT(actions_parse("pull,push"), ACTION_PULL | ACTION_PUSH);
	CHECK_EQ_INT(actions_parse("*"), ACTION_ALL);
	CHECK_EQ_INT(actions_parse("delete,bogus,,pull"), ACTION_DELETE | ACTION_PULL);
	CHECK_EQ_INT(actions_parse(""), 0);
	CHECK_EQ_INT(actions_parse("pullpush"), 0);
	actions_format(ACTION_ALL, &b);
	CHECK_STR(b.buf, "pull,push,delete");
	buf_reset(&b);
	actions_format(ACTION_PUSH, &b);
	CHECK_STR(b.buf, "push");
	buf_release(&b);
}

static void test_scope(void)
{
	struct scope sc;
	CHECK_EQ_INT(scope_parse("repository:team-a/app:pull,push", &sc), 0);
	CHECK_STR(sc.type, "repository");
	CHECK_STR(sc.name, "team-a/app");
	CHECK_EQ_INT(sc.actions, ACTION_PULL | ACTION_PUSH);
	scope_release(&sc);
	CHECK_EQ_INT(scope_parse("registry:catalog:*", &sc), 0);
	CHECK_EQ_INT(sc.actions, ACTION_ALL);
	scope_release(&sc);
	CHECK_EQ_INT(scope_parse("repository:Upper:pull", &sc), E_BAD_REQUEST);
	CHECK_EQ_INT(scope_parse("repository:a/../b:pull", &sc), E_BAD_REQUEST);
	CHECK_EQ_INT(scope_parse("repository:pull", &sc), E_BAD_REQUEST);
	CHECK_EQ_INT(scope_parse("registry:other:*", &sc), E_BAD_REQUEST);
	CHECK_EQ_INT(scope_parse("bogus:x:pull", &sc), E_BAD_REQUEST);
	CHECK_EQ_INT(scope_parse(":x:pull", &sc), E_BAD_REQUEST);
	CHECK_EQ_INT(scope_parse("", &sc), E_BAD_REQUEST);
}

static void test_pat_scopes(void)
{
	struct buf err = BUF_INIT;
	CHECK_EQ_INT(scopes_check("repository:team-a/*:pull,push repository:b:pull", &err), 0);
	CHECK_EQ_INT(scopes_check("repository:team-a/*:", &err), E_CONFIG);
	buf_reset(&err);
	CHECK_EQ_INT(scopes_check("repo:x:pull", &err), E_CONFIG);
	buf_reset(&err);
	CHECK_EQ_INT(scopes_check("repository:X:pull", &err), E_CONFIG);
	buf_reset(&err);
	CHECK_EQ_INT(scopes_check("repository:x:bogus", &err), E_CONFIG);
	buf_release(&err);
	CHECK_EQ_INT(scopes_actions("repository:team-a/*:pull,push repository:b:pull", "team-a/app"),
		     ACTION_PULL | ACTION_PUSH);
	CHECK_EQ_INT(scopes_actions("repository:team-a/*:pull,push repository:b:pull", "b"), ACTION_PULL);
	CHECK_EQ_INT(scopes_actions("repository:team-a/*:pull,push", "team-b/app"), 0);
	CHECK_EQ_INT(scopes_actions("", "anything"), ACTION_ALL);
	CHECK_EQ_INT(scopes_actions(NULL, "anything"), ACTION_ALL);
}

static void test_ratelimit(void)
{
	struct ratelimit *rl = ratelimit_new(3, 1000, 64);
	struct ratelimit_ticket t[4], u;
	/* attempts count while in progress: three admitted, the fourth waits for the window */
	CHECK_EQ_INT(ratelimit_take(rl, "1.2.3.4", 0, &t[0]), 0);
	CHECK_EQ_INT(ratelimit_take(rl, "1.2.3.4", 10, &t[1]), 0);
	CHECK_EQ_INT(ratelimit_take(rl, "1.2.3.4", 20, &t[2]), 0);
	CHECK_EQ_INT(ratelimit_take(rl, "1.2.3.4", 400, &t[3]), 600);
	CHECK(t[3].key == 0);
	CHECK_EQ_INT(ratelimit_take(rl, "5.6.7.8", 40, &u), 0);
	/* one that did not fail is given back, and once only */
	ratelimit_refund(rl, &t[1]);
	CHECK(t[1].key == 0);
	ratelimit_refund(rl, &t[1]);
	CHECK_EQ_INT(ratelimit_take(rl, "1.2.3.4", 50, &t[1]), 0);
	CHECK(ratelimit_take(rl, "1.2.3.4", 60, &t[3]) > 0);
	/* a new window forgives, and a refund from the old one cannot eat into it */
	CHECK_EQ_INT(ratelimit_take(rl, "1.2.3.4", 1000, &t[3]), 0);
	CHECK_EQ_INT(ratelimit_take(rl, "1.2.3.4", 1001, &u), 0);
	ratelimit_refund(rl, &t[0]);
	ratelimit_refund(rl, &t[2]);
	CHECK(ratelimit_take(rl, "1.2.3.4", 1002, &u) == 0);
	CHECK(ratelimit_take(rl, "1.2.3.4", 1003, &u) == 997);
	/* a clock that steps back starts a new window rather than refusing for ever */
	CHECK_EQ_INT(ratelimit_take(rl, "1.2.3.4", 500, &u), 0);
	ratelimit_free(rl);
	/* no limit */
	rl = ratelimit_new(0, 1000, 64);
	for (int i = 0; i < 100; i++)
		CHECK_EQ_INT(ratelimit_take(rl, "1.2.3.4", 0, &u), 0);
	ratelimit_free(rl);
}

/* A flood of fresh keys does not make the table forget a key at its limit. */
static void test_ratelimit_churn(void)
{
	struct ratelimit *rl = ratelimit_new(2, 60000, 64);
	struct ratelimit_ticket t;
	char key[32];
	CHECK_EQ_INT(ratelimit_take(rl, "attacker", 0, &t), 0);
	CHECK_EQ_INT(ratelimit_take(rl, "attacker", 0, &t), 0);
	CHECK(ratelimit_take(rl, "attacker", 0, &t) > 0);
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ratelimit_take(rl, key, 1, &t);
	}
	CHECK(ratelimit_take(rl, "attacker", 2, &t) > 0);
	ratelimit_free(rl);
}

static void test_credcache(void)
{
	struct credcache *cc = credcache_new(16, 1000);
	int64_t pat = -1;
	char *scopes = (char *)"x";
	CHECK(!credcache_get(cc, "alice", "h1", "pw", 2, 0, &pat, &scopes));
	credcache_put(cc, "alice", "h1", "pw", 2, 0, 0, NULL);
	CHECK(credcache_get(cc, "alice", "h1", "pw", 2, 10, &pat, &scopes));
	CHECK_EQ_INT(pat, 0);
	CHECK(scopes == NULL);
	CHECK(!credcache_get(cc, "alice", "h1", "pW", 2, 10, &pat, &scopes));
	CHECK(!credcache_get(cc, "alicepw", "h1", "", 0, 10, &pat, &scopes));
	CHECK(!credcache_get(cc, "alice", "h1pw", "", 0, 10, &pat, &scopes));
	/* bound to what it was checked against: a new password hash misses */
	CHECK(!credcache_get(cc, "alice", "h2", "pw", 2, 10, &pat, &scopes));
	CHECK(!credcache_get(cc, "alice", "h1", "pw", 2, 1000, &pat, &scopes)); /* expired */
	CHECK(!credcache_get(cc, "alice", "h1", "pw", 2, -10, &pat, &scopes)); /* clock stepped back */
	credcache_put(cc, "bob", "pat", "berth_pat_x", 11, 0, 7, "repository:a:pull");
	CHECK(credcache_get(cc, "bob", "pat", "berth_pat_x", 11, 1, &pat, &scopes));
	CHECK_EQ_INT(pat, 7);
	CHECK_STR(scopes, "repository:a:pull");
	free(scopes);
	credcache_clear(cc);
	CHECK(!credcache_get(cc, "bob", "pat", "berth_pat_x", 11, 1, &pat, &scopes));
	credcache_free(cc);
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int ran;

static void job(void *arg)
{
	(void)arg;
	usleep(1000);
	pthread_mutex_lock(&mu);
	ran++;
	pthread_mutex_unlock(&mu);
}

static void test_workq(void)
{
	struct workq *q = workq_new(2, 4);
	int accepted = 0, refused = 0;
	for (int i = 0; i < 50; i++) {
		if (workq_submit(q, job, NULL) == 0)
			accepted++;
		else
			refused++;
	}
	CHECK(accepted >= 4);
	CHECK(refused > 0);
	workq_free(q); /* waits for every accepted job */
	CHECK_EQ_INT(ran, accepted);
}

/* Jobs that hold their worker until released, to see how many run at once. */
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open, holding, most_held;

static void held_job(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	holding++;
	if (holding > most_held)
		most_held = holding;
	pthread_cond_broadcast(&gate_cond);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &mu);
	holding--;
	ran++;
	pthread_mutex_unlock(&mu);
}

/* Waits (up to 10 s) until n jobs hold their workers; returns 1 when they do. */
static int wait_holding(int n)
{
	struct timespec until;
	int ok;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&mu);
	while (holding < n && pthread_cond_timedwait(&gate_cond, &mu, &until) == 0)
		;
	ok = holding >= n;
	pthread_mutex_unlock(&mu);
	return ok;
}

/* The pool starts with one thread and grows to, never past, its maximum. */
static void test_workq_growth(void)
{
	struct workq *q = workq_new(3, 16);
	CHECK_EQ_INT(workq_threads(q), 1);
	ran = 0;
	/* sequential jobs are served by the first thread alone */
	for (int i = 0; i < 5; i++) {
		CHECK_EQ_INT(workq_submit(q, job, NULL), 0);
		while (workq_pending(q))
			usleep(1000);
	}
	CHECK_EQ_INT(workq_threads(q), 1);
	/* blocking jobs: three run at once, the other five wait in the queue */
	for (int i = 0; i < 8; i++)
		CHECK_EQ_INT(workq_submit(q, held_job, NULL), 0);
	CHECK(wait_holding(3));
	usleep(20000);
	CHECK_EQ_INT(workq_threads(q), 3);
	pthread_mutex_lock(&mu);
	CHECK_EQ_INT(most_held, 3);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&mu);
	workq_free(q); /* the queued five run on the three threads */
	CHECK_EQ_INT(ran, 5 + 8);
	CHECK_EQ_INT(most_held, 3);
}

int main(void)
{
	test_actions();
	test_scope();
	test_pat_scopes();
	test_ratelimit();
	test_ratelimit_churn();
	test_credcache();
	test_workq();
	test_workq_growth();
	return t_done();
}
