/*
 * workq: a small pool of threads running jobs that must not run on the
 * HTTP worker threads (password hashing, fsync), with a bounded queue.
 *
 * The pool starts with one thread and grows, one thread per submit, while
 * more jobs wait than threads are idle, up to its maximum; threads once
 * started stay until workq_free(). An idle daemon so keeps one thread (and
 * its stack) per pool instead of the maximum.
 *
 * A job is a function and its argument; the argument is owned by the
 * caller, who must keep it alive until the job ran. workq_free() waits for
 * queued and running jobs, then joins the threads. Thread-safe.
 */
#ifndef BERTH_WORKQ_H
#define BERTH_WORKQ_H

struct workq;

typedef void (*workq_fn)(void *arg);

/*
 * A pool of at most threads workers (0 counts as 1), one started now; at
 * most max_queued jobs wait for a worker. Aborts when not even the first
 * thread starts.
 */
struct workq *workq_new(unsigned threads, unsigned max_queued);
/* Queues a job; E_TOO_MANY when the queue is full (the job is not run). */
int workq_submit(struct workq *q, workq_fn fn, void *arg);
/* Jobs waiting or running right now. */
unsigned workq_pending(struct workq *q);
/* Worker threads started so far (never more than the maximum). */
unsigned workq_threads(struct workq *q);
void workq_free(struct workq *q);

#endif
