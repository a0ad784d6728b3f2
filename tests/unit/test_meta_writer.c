/*
 * Unit tests for storage/meta_writer: write transactions queued by several
 * threads run in one batch, in the order they were queued, each caller
 * gets its own result, a failing transaction does not undo its
 * batch-mates, a batch that cannot commit is replayed one transaction at a
 * time, and a transaction cannot start another. A gate transaction holds
 * the writer while the others queue, so what forms a batch is certain.
 * Runs in a fresh scratch directory that is removed at the end.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "meta.h"
#include "meta_internal.h"
#include "t.h"
#include "t_meta.h"

enum mode {
	M_OK,     /* inserts its repository */
	M_FAIL,   /* inserts, then fails with its own error */
	M_BREAK,  /* inserts, then rolls back the whole transaction (as SQLite does after some I/O errors) */
	M_DEFER,  /* inserts and leaves a deferred foreign-key violation: the COMMIT fails */
	M_NESTED, /* starts a transaction from inside one */
};

struct job {
	int idx;
	enum mode mode;
	int fail_rc;
	int rc;   /* what meta_tx_run(tm, ) returned */
	int runs; /* how many times the body ran */
	pthread_t th;
};

/* Written only by bodies, which all run on the writer thread one at a time. */
static int run_order[64];
static int n_run;

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_running, gate_open;

static int exec(struct meta_conn *c, const char *sql)
{
	return db_exec(c->db, sql, "test") ? E_IO : 0;
}

static int insert_repo(struct meta_conn *c, int idx)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "INSERT INTO repos(name, created_ms) VALUES ('w/r%d', 0)", idx);
	return exec(c, sql);
}

static int job_tx(struct meta_conn *c, void *arg)
{
	struct job *j = arg;
	j->runs++;
	if (n_run < (int)(sizeof(run_order) / sizeof(run_order[0])))
		run_order[n_run++] = j->idx;
	int rc = insert_repo(c, j->idx);
	if (rc)
		return rc;
	switch (j->mode) {
	case M_OK:
		return 0;
	case M_FAIL:
		return j->fail_rc;
	case M_BREAK:
		exec(c, "ROLLBACK");
		return E_IO;
	case M_DEFER:
		/* PostgreSQL defers only constraints declared deferrable: main() made one */
		rc = t_meta_pg() ? 0 : exec(c, "PRAGMA defer_foreign_keys = ON");
		if (!rc)
			rc = exec(c, t_sql("INSERT INTO blob_links(repo_id, digest, linked_ms) VALUES (999999, 'nope', 0)",
					   "INSERT INTO t_defer(repo_id) VALUES (999999)"));
		return rc;
	case M_NESTED:
		return meta_tx_run(tm, job_tx, j);
	}
	return E_INTERNAL;
}

static void *job_main(void *arg)
{
	struct job *j = arg;
	j->rc = meta_tx_run(tm, job_tx, j);
	return NULL;
}

/* Holds the writer until the test opens the gate. */
static int gate_tx(struct meta_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	pthread_mutex_lock(&gate_lock);
	gate_running = 1;
	pthread_cond_broadcast(&gate_cond);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	return 0;
}

static void *gate_main(void *arg)
{
	*(int *)arg = meta_tx_run(tm, gate_tx, NULL);
	return NULL;
}

static void pause_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

/* Waits (at most ~20 s) until n transactions are queued. */
static int wait_queued(size_t n)
{
	for (int i = 0; i < 20000; i++) {
		size_t q;
		meta_writer_stats(tm, &q, NULL, NULL);
		if (q == n)
			return 0;
		pause_ms(1);
	}
	return -1;
}

/*
 * Runs jobs[0..n) as one batch: the gate holds the writer while they are
 * queued one after the other, then lets them go. Checks that they formed
 * exactly one batch.
 */
static void run_as_batch(struct job *jobs, int n)
{
	pthread_t gate;
	int gate_rc = -1;
	uint64_t b0, b1, t0, t1;
	gate_running = gate_open = 0;
	CHECK_EQ_INT(pthread_create(&gate, NULL, gate_main, &gate_rc), 0);
	pthread_mutex_lock(&gate_lock);
	while (!gate_running)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	meta_writer_stats(tm, NULL, &b0, &t0);
	n_run = 0;
	for (int i = 0; i < n; i++) {
		CHECK_EQ_INT(pthread_create(&jobs[i].th, NULL, job_main, &jobs[i]), 0);
		CHECK_EQ_INT(wait_queued((size_t)i + 1), 0);
	}
	pthread_mutex_lock(&gate_lock);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	CHECK_EQ_INT(pthread_join(gate, NULL), 0);
	CHECK_EQ_INT(gate_rc, 0);
	for (int i = 0; i < n; i++)
		CHECK_EQ_INT(pthread_join(jobs[i].th, NULL), 0);
	meta_writer_stats(tm, NULL, &b1, &t1);
	CHECK_EQ_INT(b1 - b0, 1);
	CHECK_EQ_INT(t1 - t0, n);
}

static void init_jobs(struct job *jobs, int n, int base)
{
	memset(jobs, 0, sizeof(*jobs) * (size_t)n);
	for (int i = 0; i < n; i++)
		jobs[i].idx = base + i;
}

static struct buf dbpath = BUF_INIT;

/* 1 when the repository row w/r<idx> exists, read by a connection of the test's own. */
static int repo_present(int idx)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM repos WHERE name = 'w/r%d'", idx);
	return (int)t_raw_int(dbpath.buf, sql);
}

/* Each transaction of a batch gets its own result; a failure undoes only its own writes. */
static void test_results_and_order(void)
{
	struct job jobs[8];
	init_jobs(jobs, 8, 0);
	jobs[2].mode = M_FAIL;
	jobs[2].fail_rc = E_MANIFEST_INVALID;
	jobs[5].mode = M_FAIL;
	jobs[5].fail_rc = E_TAG_IMMUTABLE;
	run_as_batch(jobs, 8);
	CHECK_EQ_INT(n_run, 8);
	for (int i = 0; i < 8; i++) {
		CHECK_EQ_INT(run_order[i], i); /* in the order queued */
		CHECK_EQ_INT(jobs[i].runs, 1);
		CHECK_EQ_INT(jobs[i].rc, i == 2 ? E_MANIFEST_INVALID : i == 5 ? E_TAG_IMMUTABLE : 0);
		CHECK_EQ_INT(repo_present(i), i != 2 && i != 5);
	}
}

/* A transaction that loses the batch's transaction: the others are replayed alone and kept. */
static void test_broken_batch(void)
{
	struct job jobs[6];
	init_jobs(jobs, 6, 100);
	jobs[3].mode = M_BREAK;
	run_as_batch(jobs, 6);
	for (int i = 0; i < 6; i++) {
		CHECK_EQ_INT(jobs[i].rc, i == 3 ? E_IO : 0);
		CHECK_EQ_INT(repo_present(100 + i), i != 3);
		/* those before it ran in the batch and again alone; those after, alone only */
		CHECK_EQ_INT(jobs[i].runs, i <= 3 ? 2 : 1);
	}
	/* the replay keeps the queue's order: 0 1 2 3 in the batch, then 0 .. 5 alone */
	CHECK_EQ_INT(n_run, 10);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(run_order[i], 100 + i);
	for (int i = 0; i < 6; i++)
		CHECK_EQ_INT(run_order[4 + i], 100 + i);
}

/* A batch whose COMMIT fails is replayed one by one: only the culprit fails. */
static void test_commit_fails(void)
{
	struct job jobs[5];
	init_jobs(jobs, 5, 200);
	jobs[1].mode = M_DEFER;
	run_as_batch(jobs, 5);
	for (int i = 0; i < 5; i++) {
		CHECK(i == 1 ? jobs[i].rc != 0 : jobs[i].rc == 0);
		CHECK_EQ_INT(repo_present(200 + i), i != 1);
		CHECK_EQ_INT(jobs[i].runs, 2);
	}
}

/* A transaction cannot start another (it would wait for itself). */
static void test_nested(void)
{
	struct job j = { .idx = 300, .mode = M_NESTED };
	CHECK_EQ_INT(meta_tx_run(tm, job_tx, &j), E_INTERNAL);
	CHECK_EQ_INT(j.runs, 1); /* the inner body never ran */
	CHECK_EQ_INT(repo_present(300), 0);
}

/* One thread's writes are seen by its next read, and by the next write, in order. */
static void test_sequential(void)
{
	for (int i = 0; i < 20; i++) {
		struct job j = { .idx = 400 + i, .mode = M_OK };
		CHECK_EQ_INT(meta_tx_run(tm, job_tx, &j), 0);
		CHECK_EQ_INT(repo_present(400 + i), 1);
	}
}

/* After t_meta_close() the writer is gone; reopening starts a new one on the new connection. */
static void test_reopen(void)
{
	t_meta_close();
	struct job j = { .idx = 500, .mode = M_OK };
	CHECK_EQ_INT(meta_tx_run(tm, job_tx, &j), E_INTERNAL);
	t_meta_close();
	CHECK_EQ_INT(t_meta_open(dbpath.buf), 0);
	CHECK_EQ_INT(meta_tx_run(tm, job_tx, &j), 0);
	CHECK_EQ_INT(repo_present(500), 1);
	CHECK_EQ_INT(repo_present(0), 1);
}

int main(void)
{
	struct buf dir = BUF_INIT;
	t_meta_engine_or_skip();
	if (t_scratch(&dir, "meta-writer"))
		return 1;
	buf_addf(&dbpath, "%s/berth.db", dir.buf);
	CHECK_EQ_INT(t_meta_open(dbpath.buf), 0);
	if (t_meta_pg())
		CHECK_EQ_INT(t_raw_exec(dbpath.buf, "CREATE TABLE t_defer (repo_id BIGINT REFERENCES repos(id)"
						    " DEFERRABLE INITIALLY DEFERRED)"), 0);
	test_results_and_order();
	test_broken_batch();
	test_commit_fails();
	test_nested();
	test_sequential();
	test_reopen();
	t_meta_close();
	CHECK_EQ_INT(t_rmtree(dir.buf), 0);
	buf_release(&dir);
	buf_release(&dbpath);
	return t_done();
}
