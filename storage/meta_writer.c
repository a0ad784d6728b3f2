/* meta_writer: the single writer: write transactions queued by any thread, run in batches on one connection. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

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
 * other processes (the CLI). On PostgreSQL the same batching saves round
 * trips and turns of the cluster-wide write order (meta_schema_pg.c).
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

/* Set on writer threads (of any meta): a body must not queue another transaction. */
static _Thread_local int on_writer;

static const struct meta_query q_savepoint = { .id = MS_SAVEPOINT, .sql = "SAVEPOINT batch_tx" };
static const struct meta_query q_release = { .id = MS_RELEASE, .sql = "RELEASE batch_tx" };
static const struct meta_query q_rollback_to = { .id = MS_ROLLBACK_TO, .sql = "ROLLBACK TO batch_tx" };

/*
 * A transaction that lost a conflict (DB_E_RETRY: PostgreSQL rolled it
 * back) runs again from its start, up to RETRY_MAX more times, after a
 * short pause growing with each attempt; then its callers get E_BUSY.
 */
#define RETRY_MAX 8

static void retry_pause(struct meta_writer *w, int attempt)
{
	struct timespec ts = { 0, (long)(attempt + 1) * 2 * 1000 * 1000 };
	pthread_mutex_lock(&w->lock);
	w->retries++;
	pthread_mutex_unlock(&w->lock);
	nanosleep(&ts, NULL);
}

/* One transaction alone: its own BEGIN, COMMIT and sync; a conflict runs it again. */
static void run_solo(struct meta_conn *c, struct wjob *j)
{
	int rc;
	for (int attempt = 0;; attempt++) {
		rc = meta_tx_begin(c);
		if (!rc)
			rc = meta_tx_end(c, j->fn(c, j->arg));
		if (rc != DB_E_RETRY)
			break;
		if (attempt == RETRY_MAX) {
			log_warn("meta: a write transaction kept conflicting; giving up");
			rc = E_BUSY;
			break;
		}
		retry_pause(&c->m->w, attempt);
	}
	j->rc = rc;
	j->final = 1;
}

/* Errors of the database or the disk rather than of the transaction's own content. */
static int batch_error(int rc)
{
	return rc == E_IO || rc == E_NO_SPACE || rc == E_BUSY || rc == E_INTERNAL || rc == E_STORE_UNAVAILABLE ||
	       rc == DB_E_RETRY;
}

/*
 * Runs job j inside the batch's open transaction, in a savepoint. Returns
 * 0 when the batch can go on (j kept its changes, or its own failure was
 * undone by the savepoint and j->rc is final), else why the batch's
 * transaction cannot be trusted any more (DB_E_RETRY: it lost a conflict).
 */
static int run_in_batch(struct meta_conn *c, struct wjob *j)
{
	int rc = meta_run_simple(c, &q_savepoint);
	if (rc)
		return rc;
	rc = j->fn(c, j->arg);
	/* after some I/O errors SQLite rolls back the whole transaction */
	if (!db_in_tx(c->db))
		return batch_error(rc) ? rc : E_IO;
	if (batch_error(rc))
		return rc;
	if (!rc)
		return meta_run_simple(c, &q_release);
	int undo = meta_run_simple(c, &q_rollback_to);
	if (undo || (undo = meta_run_simple(c, &q_release)))
		return undo;
	j->rc = rc;
	j->final = 1;
	return 0;
}

/*
 * Runs jobs[0..n) in one transaction: 0 once it committed, else its
 * failure, rolled back, with every job's final flag cleared again;
 * *began tells whether BEGIN succeeded.
 */
static int batch_once(struct meta_conn *c, struct wjob **jobs, size_t n, int *began)
{
	for (size_t i = 0; i < n; i++)
		jobs[i]->final = 0;
	int rc = meta_tx_begin(c);
	*began = !rc;
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++)
		rc = run_in_batch(c, jobs[i]);
	if (!rc)
		rc = meta_tx_commit(c);
	else
		meta_tx_rollback(c);
	if (rc)
		for (size_t i = 0; i < n; i++)
			jobs[i]->final = 0;
	return rc;
}

/*
 * Runs jobs[0..n) as one transaction, again from the start after a
 * conflict. When BEGIN fails, every job gets its error (nothing would do
 * better alone). When the batch's transaction fails otherwise, each job
 * runs again alone, so one transaction's trouble never costs its
 * batch-mates their writes.
 */
static void run_batch(struct meta_conn *c, struct wjob **jobs, size_t n)
{
	if (n == 1) {
		run_solo(c, jobs[0]);
		return;
	}
	int rc, began = 0;
	for (int attempt = 0;; attempt++) {
		rc = batch_once(c, jobs, n, &began);
		if (rc != DB_E_RETRY || attempt == RETRY_MAX)
			break;
		retry_pause(&c->m->w, attempt);
	}
	if (!rc) {
		/* committed: each job's result is its own, or the sync's error */
		rc = meta_tx_durable(c);
		for (size_t i = 0; i < n; i++)
			if (!jobs[i]->final)
				jobs[i]->rc = rc;
		return;
	}
	if (!began) {
		for (size_t i = 0; i < n; i++)
			jobs[i]->rc = rc == DB_E_RETRY ? E_BUSY : rc;
		return;
	}
	log_warn("meta: a batch of %zu write transactions failed; running them one by one", n);
	for (size_t i = 0; i < n; i++)
		if (!jobs[i]->final)
			run_solo(c, jobs[i]);
}

/* The writer connection's own settings (the dialect's: SQLite keeps savepoint journals in memory). */
static int writer_conn_setup(struct meta_conn *c)
{
	const char *sql = c->dialect->writer_setup;
	return sql ? db_exec(c->db, sql, "writer settings") : 0;
}

static void *writer_main(void *arg)
{
	struct meta *m = arg;
	struct meta_writer *w = &m->w;
	struct wjob *jobs[BATCH_MAX];
	struct meta_conn *ready = NULL; /* the connection writer_conn_setup() ran on */
	on_writer = 1;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->head)
			break;
		size_t n = 0;
		while (w->head && n < BATCH_MAX) {
			jobs[n++] = w->head;
			w->head = w->head->next;
		}
		if (!w->head)
			w->tail = &w->head;
		w->len -= n;
		w->batches++;
		w->txs += n;
		pthread_mutex_unlock(&w->lock);

		struct meta_conn *c;
		int rc = meta_conn_get(m, &c);
		if (!rc && c != ready && !(rc = writer_conn_setup(c)))
			ready = c;
		if (rc) {
			for (size_t i = 0; i < n; i++)
				jobs[i]->rc = rc;
		} else {
			run_batch(c, jobs, n);
		}

		pthread_mutex_lock(&w->lock);
		for (size_t i = 0; i < n; i++) {
			jobs[i]->done = 1;
			pthread_cond_signal(&jobs[i]->cond);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Starts m's writer thread (under its lock), with every signal blocked: signals are the main thread's. */
static int writer_start(struct meta *m)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&m->w.thread, NULL, writer_main, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		log_error("meta: cannot start the writer thread");
		return E_INTERNAL;
	}
	m->w.running = 1;
	return 0;
}

void meta_writer_init(struct meta *m)
{
	pthread_mutex_init(&m->w.lock, NULL);
	pthread_cond_init(&m->w.cond, NULL);
	m->w.tail = &m->w.head;
}

int meta_tx_run(struct meta *m, meta_tx_fn fn, void *arg)
{
	if (on_writer) {
		log_error("meta: write transaction started inside another");
		return E_INTERNAL;
	}
	if (!m) {
		log_error("meta: database used while not open");
		return E_INTERNAL;
	}
	struct meta_writer *w = &m->w;
	struct wjob j = { .fn = fn, .arg = arg, .rc = E_INTERNAL };
	pthread_cond_init(&j.cond, NULL);
	pthread_mutex_lock(&w->lock);
	int rc = w->running ? 0 : writer_start(m);
	if (!rc) {
		*w->tail = &j;
		w->tail = &j.next;
		w->len++;
		pthread_cond_signal(&w->cond);
		while (!j.done)
			pthread_cond_wait(&j.cond, &w->lock);
		rc = j.rc;
	}
	pthread_mutex_unlock(&w->lock);
	pthread_cond_destroy(&j.cond);
	return rc;
}

void meta_writer_stop(struct meta *m)
{
	struct meta_writer *w = &m->w;
	pthread_mutex_lock(&w->lock);
	if (!w->running) {
		pthread_mutex_unlock(&w->lock);
		return;
	}
	w->stop = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_mutex_lock(&w->lock);
	w->running = 0;
	w->stop = 0;
	pthread_mutex_unlock(&w->lock);
}

uint64_t meta_writer_retries(struct meta *m)
{
	pthread_mutex_lock(&m->w.lock);
	uint64_t n = m->w.retries;
	pthread_mutex_unlock(&m->w.lock);
	return n;
}

void meta_writer_stats(struct meta *m, size_t *queued, uint64_t *batches, uint64_t *txs)
{
	pthread_mutex_lock(&m->w.lock);
	if (queued)
		*queued = m->w.len;
	if (batches)
		*batches = m->w.batches;
	if (txs)
		*txs = m->w.txs;
	pthread_mutex_unlock(&m->w.lock);
}
