/*
 * workq: a small pool of threads running jobs that must not run on the
 * HTTP worker threads (password hashing), with a bounded queue.
 *
 * A job is a function and its argument; the argument is owned by the
 * caller, who must keep it alive until the job ran. workq_free() waits for
 * queued and running jobs, then joins the threads. Thread-safe.
 */
#ifndef BERTH_WORKQ_H
#define BERTH_WORKQ_H

struct workq;

typedef void (*workq_fn)(void *arg);

/* Starts threads workers; at most max_queued jobs wait for a worker. */
struct workq *workq_new(unsigned threads, unsigned max_queued);
/* Queues a job; E_TOO_MANY when the queue is full (the job is not run). */
int workq_submit(struct workq *q, workq_fn fn, void *arg);
/* Jobs waiting or running right now. */
unsigned workq_pending(struct workq *q);
void workq_free(struct workq *q);

#endif
