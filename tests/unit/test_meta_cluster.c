/*
 * Unit tests for storage/meta on PostgreSQL as a cluster uses it: several
 * processes (nodes) writing the same database at once, a deadlock retried
 * by the writer, and the server going away and coming back. Needs a server
 * (BERTH_PG_URL, set by tests/engines/run-pg-tests); without one it skips
 * (77). The kill-and-restart test also needs BERTH_PG_KILL and
 * BERTH_PG_START (shell commands), and is left out without them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "digest.h"
#include "err.h"
#include "manifest.h"
#include "meta.h"
#include "t.h"
#include "t_meta.h"

static char mt_manifest[] = MT_OCI_MANIFEST;
static struct buf dbpath = BUF_INIT;

static struct digest dg(const char *seed)
{
	struct digest d;
	digest_of(DIGEST_SHA256, seed, strlen(seed), &d);
	return d;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Records manifest seed (no references) in repo, pointing tag at it when not NULL. */
static int put(const char *repo, const char *seed, const char *tag, const struct meta_actor *actor)
{
	struct manifest_info mi = { .media_type = mt_manifest };
	struct digest d = dg(seed);
	return meta_manifest_put(tm, repo, &d, 100, &mi, tag, actor, NULL);
}

/* Every existing tag is immutable. */
static int all_immutable(void *ctx, const char *tag)
{
	(void)ctx;
	(void)tag;
	return 0;
}

/* ---- nodes: child processes with a meta of their own ---- */

#define NODES 2
#define TAGS 20
#define MOVES 30

/*
 * Runs node(i) in NODES child processes that start together (each opens
 * the database of path itself: meta is closed in the parent while they
 * run) and returns their exit statuses in status[] (-1 when one did not
 * exit; 250 when its open failed).
 */
static void run_nodes_on(const char *path, int (*node)(int i), int *status)
{
	int gate[2];
	pid_t pid[NODES];
	t_meta_close();
	CHECK_EQ_INT(pipe(gate), 0);
	fflush(NULL);
	for (int i = 0; i < NODES; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			char c;
			close(gate[1]);
			int rc = t_meta_open(path);
			/* the parent closing its end lets every node go at once */
			if (read(gate[0], &c, 1) < 0 || rc)
				_exit(250);
			rc = node(i);
			t_meta_close();
			_exit(rc);
		}
	}
	close(gate[0]);
	pause_ms(300); /* every node connected and waiting */
	close(gate[1]);
	for (int i = 0; i < NODES; i++) {
		int ws = 0;
		status[i] = pid[i] > 0 && waitpid(pid[i], &ws, 0) == pid[i] && WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
	}
	CHECK_EQ_INT(t_meta_open(dbpath.buf), 0);
}

static void run_nodes(int (*node)(int i), int *status)
{
	run_nodes_on(dbpath.buf, node, status);
}

static int node_nothing(int i)
{
	(void)i;
	return 0;
}

/* Nodes starting together on an empty database: one creates the schema, the other waits and finds it. */
static void test_first_start(void)
{
	struct buf p = BUF_INIT, t = BUF_INIT;
	int status[NODES];
	buf_addf(&p, "%s.fresh", dbpath.buf);
	t_meta_target(p.buf, &t); /* the empty database exists before the nodes race to set it up */
	run_nodes_on(p.buf, node_nothing, status);
	CHECK_EQ_INT(status[0], 0);
	CHECK_EQ_INT(status[1], 0);
	CHECK_EQ_INT(t_raw_int(p.buf, "SELECT version FROM berth_schema"), 4);
	buf_release(&t);
	buf_release(&p);
}

/* Node i creates tags v0 .. v(TAGS-1) at its own manifest; the tags are immutable. Exit: tags it created. */
static int node_create(int i)
{
	char seed[32], tag[16];
	struct meta_actor a = { .name = i ? "node1" : "node0", .how = "push", .guard = all_immutable };
	int created = 0;
	snprintf(seed, sizeof(seed), "node-%d", i);
	for (int t = 0; t < TAGS; t++) {
		snprintf(tag, sizeof(tag), "v%d", t);
		int rc = put("race/imm", seed, tag, &a);
		if (rc == 0)
			created++;
		else if (rc != E_TAG_IMMUTABLE)
			return 251;
	}
	return created;
}

static int count_event(void *ctx, const struct meta_tag_event *ev)
{
	(void)ev;
	(*(int *)ctx)++;
	return 0;
}

/* Two nodes creating the same immutable tags at once: each tag is created once, never moved. */
static void test_immutable_race(void)
{
	int status[NODES];
	run_nodes(node_create, status);
	CHECK(status[0] >= 0 && status[0] <= TAGS);
	CHECK(status[1] >= 0 && status[1] <= TAGS);
	CHECK_EQ_INT(status[0] + status[1], TAGS);
	for (int t = 0; t < TAGS; t++) {
		char tag[16];
		int events = 0;
		snprintf(tag, sizeof(tag), "v%d", t);
		CHECK_EQ_INT(meta_tag_history(tm, "race/imm", tag, count_event, &events), 0);
		CHECK_EQ_INT(events, 1);
	}
}

/* Node i moves "latest" MOVES times between its two manifests. Exit: 0, or 252 on an error. */
static int node_move(int i)
{
	char seed[32];
	struct meta_actor a = { .name = i ? "node1" : "node0", .how = "push" };
	for (int k = 0; k < MOVES; k++) {
		snprintf(seed, sizeof(seed), "mover-%d-%d", i, k % 2);
		if (put("race/move", seed, "latest", &a))
			return 252;
	}
	return 0;
}

/* The history walk: each move must start where the one before it (in id order) ended. */
struct chain {
	char newer_old[DIGEST_STR_MAX]; /* old digest of the newer event seen last */
	int events, broken;
	char latest[DIGEST_STR_MAX];
};

static int chain_event(void *ctx, const struct meta_tag_event *ev)
{
	struct chain *c = ctx;
	const char *nw = ev->new_digest ? ev->new_digest : "";
	if (!c->events++)
		snprintf(c->latest, sizeof(c->latest), "%s", nw);
	else if (strcmp(c->newer_old, nw))
		c->broken++;
	snprintf(c->newer_old, sizeof(c->newer_old), "%s", ev->old_digest ? ev->old_digest : "");
	return 0;
}

/* Two nodes moving one tag at once: the history is one unbroken chain ending where the tag points. */
static void test_tag_moves(void)
{
	int status[NODES];
	struct chain c = { .events = 0 };
	struct meta_manifest m;
	struct reference ref;
	char s[DIGEST_STR_MAX];
	run_nodes(node_move, status);
	CHECK_EQ_INT(status[0], 0);
	CHECK_EQ_INT(status[1], 0);
	CHECK_EQ_INT(meta_tag_history(tm, "race/move", "latest", chain_event, &c), 0);
	CHECK(c.events > 2 && c.events <= NODES * MOVES);
	CHECK_EQ_INT(c.broken, 0);
	CHECK_STR(c.newer_old, ""); /* the first event created the tag */
	CHECK_EQ_INT(reference_parse("latest", 6, &ref), 0);
	CHECK_EQ_INT(meta_manifest_get(tm, "race/move", &ref, &m), 0);
	CHECK_STR(digest_str(&m.digest, s), c.latest);
	meta_manifest_release(&m);
}

/* ---- a deadlock with another session, retried ---- */

static atomic_int deadlock_rc = 1;

static void *retag_main(void *arg)
{
	(void)arg;
	atomic_store(&deadlock_rc, put("dl/app", "dl-2", "x", NULL));
	return NULL;
}

/*
 * An operator's session locks the tag row, the writer (holding the version
 * row) waits for it, then the session waits for the version row: the
 * server breaks the cycle by failing the writer, which waited first
 * (40P01). The writer runs the transaction again and succeeds once the
 * session is gone.
 */
static void test_deadlock_retry(void)
{
	pthread_t th;
	struct db *op = t_raw_open(dbpath.buf);
	CHECK(op != NULL);
	if (!op)
		return;
	CHECK_EQ_INT(put("dl/app", "dl-1", "x", NULL), 0);
	CHECK_EQ_INT(put("dl/app", "dl-2", NULL, NULL), 0);
	uint64_t retries = meta_writer_retries(tm);
	CHECK_EQ_INT(db_exec(op, "BEGIN; UPDATE tags SET updated_ms = updated_ms WHERE name = 'x'", "lock"), 0);
	CHECK_EQ_INT(pthread_create(&th, NULL, retag_main, NULL), 0);
	pause_ms(300); /* the writer waits for the tag row */
	int64_t t0 = now_ms();
	CHECK_EQ_INT(db_exec(op, "UPDATE berth_version SET n = n + 1", "cycle"), 0);
	CHECK(now_ms() - t0 < 4000); /* the writer was the victim, within deadlock_timeout */
	pause_ms(200);
	CHECK_EQ_INT(atomic_load(&deadlock_rc), 1); /* its retry waits for the session */
	CHECK_EQ_INT(db_exec(op, "ROLLBACK", "unlock"), 0);
	CHECK_EQ_INT(pthread_join(th, NULL), 0);
	CHECK_EQ_INT(atomic_load(&deadlock_rc), 0);
	CHECK(meta_writer_retries(tm) > retries);
	db_close(op);
	struct meta_manifest m;
	struct reference ref;
	struct digest want = dg("dl-2");
	CHECK_EQ_INT(reference_parse("x", 1, &ref), 0);
	CHECK_EQ_INT(meta_manifest_get(tm, "dl/app", &ref, &m), 0);
	CHECK(digest_eq(&m.digest, &want));
	meta_manifest_release(&m);
}

/* ---- the server going away ---- */

static atomic_int writing = 1;
static atomic_int n_ok_before, n_unavailable, n_other, n_ok_after, killed;
static atomic_llong longest_ms;

static void *writes_main(void *arg)
{
	(void)arg;
	for (int i = 0; atomic_load(&writing); i++) {
		char seed[32];
		snprintf(seed, sizeof(seed), "gone-%d", i);
		struct digest d = dg(seed);
		int64_t t0 = now_ms();
		int rc = meta_blob_link(tm, "gone/repo", &d, 1);
		int64_t took = now_ms() - t0;
		if (took > atomic_load(&longest_ms))
			atomic_store(&longest_ms, took);
		if (rc == 0)
			atomic_fetch_add(atomic_load(&killed) ? &n_ok_after : &n_ok_before, 1);
		else if (rc == E_STORE_UNAVAILABLE)
			atomic_fetch_add(&n_unavailable, 1);
		else
			atomic_fetch_add(&n_other, 1);
		if (rc)
			pause_ms(50);
	}
	return NULL;
}

/*
 * pg_ctl -m immediate stop while a thread writes and another reads: every
 * call ends soon with E_STORE_UNAVAILABLE (nothing else, no hang); once the
 * server is back, both work again on new connections without reopening.
 */
static void test_server_gone(void)
{
	const char *kill_cmd = getenv("BERTH_PG_KILL"), *start_cmd = getenv("BERTH_PG_START");
	if (!kill_cmd || !start_cmd) {
		printf("server restart test left out: BERTH_PG_KILL/BERTH_PG_START not set\n");
		return;
	}
	pthread_t th;
	struct digest d = dg("gone-0");
	CHECK_EQ_INT(pthread_create(&th, NULL, writes_main, NULL), 0);
	pause_ms(500);
	CHECK_EQ_INT(system(kill_cmd), 0);
	atomic_store(&killed, 1);
	pause_ms(500);
	int64_t t0 = now_ms();
	CHECK_EQ_INT(meta_blob_known(tm, &d, NULL), E_STORE_UNAVAILABLE);
	CHECK_EQ_INT(meta_repo_exists(tm, "gone/repo"), E_STORE_UNAVAILABLE);
	CHECK(now_ms() - t0 < 5000);
	CHECK_EQ_INT(system(start_cmd), 0);
	for (int i = 0; i < 200 && !atomic_load(&n_ok_after); i++)
		pause_ms(100);
	atomic_store(&writing, 0);
	CHECK_EQ_INT(pthread_join(th, NULL), 0);
	CHECK(atomic_load(&n_ok_before) > 0);
	CHECK(atomic_load(&n_unavailable) > 0);
	CHECK(atomic_load(&n_ok_after) > 0);
	CHECK_EQ_INT(atomic_load(&n_other), 0);
	CHECK(atomic_load(&longest_ms) < 15000);
	CHECK_EQ_INT(meta_blob_known(tm, &d, NULL), 0);
	CHECK_EQ_INT(meta_repo_exists(tm, "gone/repo"), 0);
}

int main(void)
{
	struct buf dir = BUF_INIT;
	if (!t_meta_pg()) {
		printf("skipped: BERTH_PG_URL is not set (tests/engines/run-pg-tests sets it)\n");
		return 77;
	}
	if (t_scratch(&dir, "meta-cluster"))
		return 1;
	buf_addf(&dbpath, "%s/berth.db", dir.buf);
	CHECK_EQ_INT(t_meta_open(dbpath.buf), 0);
	test_first_start();
	test_immutable_race();
	test_tag_moves();
	test_deadlock_retry();
	test_server_gone();
	t_meta_close();
	CHECK_EQ_INT(t_rmtree(dir.buf), 0);
	buf_release(&dir);
	buf_release(&dbpath);
	return t_done();
}
