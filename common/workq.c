/* workq: bounded job queue served by a fixed pool of threads. */
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
	unsigned nthreads;
	int stopping;
	pthread_t *threads;
};

static void *worker(void *arg)
{
	struct workq *q = arg;
	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->count && !q->stopping)
			pthread_cond_wait(&q->cond, &q->lock);
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

struct workq *workq_new(unsigned threads, unsigned max_queued)
{
	struct workq *q = xcalloc(1, sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->cap = max_queued ? max_queued : 1;
	q->ring = xcalloc(q->cap, sizeof(*q->ring));
	q->nthreads = threads ? threads : 1;
	q->threads = xcalloc(q->nthreads, sizeof(*q->threads));
	for (unsigned i = 0; i < q->nthreads; i++)
		if (pthread_create(&q->threads[i], NULL, worker, q))
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

void workq_free(struct workq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = 1;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	free(q->ring);
	free(q->threads);
	free(q);
}
