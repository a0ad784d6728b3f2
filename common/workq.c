/* workq: bounded job queue served by a pool of threads that grows on demand. */
#include "workq.h"

#include <pthread.h>
#include <stdlib.h>

#include "err.h"
#include "xalloc.h"

struct job {
	workq_fn fn;
	void *arg;
};

struct workq {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *ring;
	unsigned cap, head, count, running;
	unsigned idle;     /* workers waiting for a job, or started and not yet looking */
	unsigned nthreads; /* started so far, never more than max_threads */
	unsigned max_threads;
	int stopping;
	pthread_t *threads;
};

static void *worker(void *arg)
{
	struct workq *q = arg;
	pthread_mutex_lock(&q->lock);
	q->idle--; /* counted idle by grow() from its creation */
	for (;;) {
		while (!q->count && !q->stopping) {
			q->idle++;
			pthread_cond_wait(&q->cond, &q->lock);
			q->idle--;
		}
		if (!q->count && q->stopping)
			break;
		struct job j = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->count--;
		q->running++;
		pthread_mutex_unlock(&q->lock);
		j.fn(j.arg);
		pthread_mutex_lock(&q->lock);
		q->running--;
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* Starts one more worker; lock held. Returns 0 or -1 (pthread_create failed). */
static int grow(struct workq *q)
{
	if (pthread_create(&q->threads[q->nthreads], NULL, worker, q))
		return -1;
	q->nthreads++;
	/* it will take a job as soon as it gets the lock: no other thread needed for that one */
	q->idle++;
	return 0;
}

struct workq *workq_new(unsigned threads, unsigned max_queued)
{
	struct workq *q = xcalloc(1, sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->cap = max_queued ? max_queued : 1;
	q->ring = xcalloc(q->cap, sizeof(*q->ring));
	q->max_threads = threads ? threads : 1;
	q->threads = xcalloc(q->max_threads, sizeof(*q->threads));
	/* One worker from the start, so a queued job always has a thread that will run it. */
	if (grow(q))
		die("cannot start worker thread");
	return q;
}

int workq_submit(struct workq *q, workq_fn fn, void *arg)
{
	int rc = 0;
	pthread_mutex_lock(&q->lock);
	if (q->count >= q->cap || q->stopping) {
		rc = E_TOO_MANY;
	} else {
		q->ring[(q->head + q->count) % q->cap] = (struct job){ fn, arg };
		q->count++;
		/*
		 * Waiting workers each take one job, so when more jobs wait than
		 * workers do, one more worker is started, up to the maximum. If
		 * that fails (thread limits), the job waits for a running worker.
		 */
		if (q->count > q->idle && q->nthreads < q->max_threads)
			(void)grow(q);
		pthread_cond_signal(&q->cond);
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

unsigned workq_pending(struct workq *q)
{
	unsigned n;
	pthread_mutex_lock(&q->lock);
	n = q->count + q->running;
	pthread_mutex_unlock(&q->lock);
	return n;
}

unsigned workq_threads(struct workq *q)
{
	unsigned n;
	pthread_mutex_lock(&q->lock);
	n = q->nthreads;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void workq_free(struct workq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = 1;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	/* No submit succeeds once stopping is set, so nthreads no longer changes. */
	for (unsigned i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	free(q->ring);
	free(q->threads);
	free(q);
}
