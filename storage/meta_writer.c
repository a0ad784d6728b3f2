/* meta_writer: the single writer: write transactions queued by any thread, run in batches on one connection. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "err.h"
#include "log.h"
#include "meta_internal.h"

/*
 * Why one writer: SQLite lets one connection write at a time. With a
 * connection per thread, every writer that finds the write lock taken
 * sleeps in SQLite's busy handler (1, 2, 5 ... 100 ms, not woken when the
 * lock frees), which gave concurrent manifest pushes a tail of ~100 ms.
 * Here callers queue their transaction and wait on a condition variable;
 * the writer thread takes everything queued (up to BATCH_MAX), runs it in
 * one BEGIN IMMEDIATE ... COMMIT, each transaction in a savepoint, syncs
 * the WAL once and wakes each caller with its own result. While it runs a
 * batch, the next one gathers. The busy handler now only matters against
 * other processes (the CLI).
 */
#define BATCH_MAX 64

struct wjob {
	meta_tx_fn fn;
	void *arg;
	int rc;
	int done;      /* rc is final and the caller may go (under q_lock) */
	int final;     /* set by the writer: rc stands, no solo re-run */
	pthread_cond_t cond;
	struct wjob *next;
};

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER; /* the writer waits for work */
static struct wjob *q_head, **q_tail = &q_head;
static size_t q_len;
static int w_running, w_stop;
static pthread_t w_thread;
static uint64_t n_batches, n_txs;
static _Thread_local int on_writer;

static const struct meta_query q_savepoint = { MS_SAVEPOINT, "SAVEPOINT batch_tx" };
static const struct meta_query q_release = { MS_RELEASE, "RELEASE batch_tx" };
static const struct meta_query q_rollback_to = { MS_ROLLBACK_TO, "ROLLBACK TO batch_tx" };

/* One transaction alone: its own BEGIN, COMMIT and sync. */
static void run_solo(struct meta_conn *c, struct wjob *j)
{
	int rc = meta_tx_begin(c);
	if (!rc)
		rc = meta_tx_end(c, j->fn(c, j->arg));
	j->rc = rc;
	j->final = 1;
}

/* Errors of the database or the disk rather than of the transaction's own content. */
static int batch_error(int rc)
{
	return rc == E_IO || rc == E_NO_SPACE || rc == E_BUSY || rc == E_INTERNAL;
}

/*
 * Runs job j inside the batch's open transaction, in a savepoint. Returns
 * 0 when the batch can go on (j kept its changes, or its own failure was
 * undone by the savepoint and j->rc is final), non-zero when the batch's
 * transaction cannot be trusted any more.
 */
static int run_in_batch(struct meta_conn *c, struct wjob *j)
{
	if (meta_run_simple(c, &q_savepoint))
		return -1;
	int rc = j->fn(c, j->arg);
	/* after some I/O errors SQLite rolls back the whole transaction */
	if (sqlite3_get_autocommit(c->db) || batch_error(rc))
		return -1;
	if (!rc)
		return meta_run_simple(c, &q_release);
	if (meta_run_simple(c, &q_rollback_to) || meta_run_simple(c, &q_release))
		return -1;
	j->rc = rc;
	j->final = 1;
	return 0;
}

/*
 * Runs jobs[0..n) as one transaction. When the batch's transaction fails
 * (BEGIN aside: nothing would do better alone), it is rolled back and each
 * job without a final result runs again alone, so one transaction's
 * trouble never costs its batch-mates their writes.
 */
static void run_batch(struct meta_conn *c, struct wjob **jobs, size_t n)
{
	if (n == 1) {
		run_solo(c, jobs[0]);
		return;
	}
	int rc = meta_tx_begin(c);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			jobs[i]->rc = rc;
		return;
	}
	size_t i = 0;
	while (i < n && !run_in_batch(c, jobs[i]))
		i++;
	if (i == n && !(rc = meta_tx_commit(c))) {
		/* committed: each job's result is its own, or the sync's error */
		rc = meta_tx_durable(c);
		for (i = 0; i < n; i++)
			if (!jobs[i]->final)
				jobs[i]->rc = rc;
		return;
	}
	meta_tx_rollback(c);
	log_warn("meta: a batch of %zu write transactions failed; running them one by one", n);
	for (i = 0; i < n; i++)
		if (!jobs[i]->final)
			run_solo(c, jobs[i]);
}

/*
 * The writer connection's own settings. temp_store=MEMORY keeps the
 * savepoints' sub-journal in memory: by default SQLite moves it to a
 * temporary file past 64 KiB, which a batch of manifests exceeds, and
 * every page a savepoint changes was then written there first.
 */
static int writer_conn_setup(struct meta_conn *c)
{
	int rc = sqlite3_exec(c->db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : meta_sql_error(c, rc, "writer pragmas");
}

static void *writer_main(void *unused)
{
	struct wjob *jobs[BATCH_MAX];
	struct meta_conn *ready = NULL; /* the connection writer_conn_setup() ran on */
	(void)unused;
	on_writer = 1;
	pthread_mutex_lock(&q_lock);
	for (;;) {
		while (!q_head && !w_stop)
			pthread_cond_wait(&q_cond, &q_lock);
		if (!q_head)
			break;
		size_t n = 0;
		while (q_head && n < BATCH_MAX) {
			jobs[n++] = q_head;
			q_head = q_head->next;
		}
		if (!q_head)
			q_tail = &q_head;
		q_len -= n;
		n_batches++;
		n_txs += n;
		pthread_mutex_unlock(&q_lock);

		struct meta_conn *c;
		int rc = meta_conn_get(&c);
		if (!rc && c != ready && !(rc = writer_conn_setup(c)))
			ready = c;
		if (rc) {
			for (size_t i = 0; i < n; i++)
				jobs[i]->rc = rc;
		} else {
			run_batch(c, jobs, n);
		}

		pthread_mutex_lock(&q_lock);
		for (size_t i = 0; i < n; i++) {
			jobs[i]->done = 1;
			pthread_cond_signal(&jobs[i]->cond);
		}
	}
	pthread_mutex_unlock(&q_lock);
	return NULL;
}

/* Starts the writer thread (under q_lock), with every signal blocked: signals are the main thread's. */
static int writer_start(void)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&w_thread, NULL, writer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		log_error("meta: cannot start the writer thread");
		return E_INTERNAL;
	}
	w_running = 1;
	return 0;
}

int meta_tx_run(meta_tx_fn fn, void *arg)
{
	if (on_writer) {
		log_error("meta: write transaction started inside another");
		return E_INTERNAL;
	}
	struct wjob j = { .fn = fn, .arg = arg, .rc = E_INTERNAL };
	pthread_cond_init(&j.cond, NULL);
	pthread_mutex_lock(&q_lock);
	int rc = w_running ? 0 : writer_start();
	if (!rc) {
		*q_tail = &j;
		q_tail = &j.next;
		q_len++;
		pthread_cond_signal(&q_cond);
		while (!j.done)
			pthread_cond_wait(&j.cond, &q_lock);
		rc = j.rc;
	}
	pthread_mutex_unlock(&q_lock);
	pthread_cond_destroy(&j.cond);
	return rc;
}

void meta_writer_stop(void)
{
	pthread_mutex_lock(&q_lock);
	if (!w_running) {
		pthread_mutex_unlock(&q_lock);
		return;
	}
	w_stop = 1;
	pthread_cond_signal(&q_cond);
	pthread_mutex_unlock(&q_lock);
	pthread_join(w_thread, NULL);
	pthread_mutex_lock(&q_lock);
	w_running = 0;
	w_stop = 0;
	pthread_mutex_unlock(&q_lock);
}

void meta_writer_stats(size_t *queued, uint64_t *batches, uint64_t *txs)
{
	pthread_mutex_lock(&q_lock);
	if (queued)
		*queued = q_len;
	if (batches)
		*batches = n_batches;
	if (txs)
		*txs = n_txs;
	pthread_mutex_unlock(&q_lock);
}
