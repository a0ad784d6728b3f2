/*
 * blob_s3_backend_read: reading blobs from the object store without
 * holding them in memory and without blocking an event loop.
 *
 * blob_s3_read() pushes an object's bytes into a callback as curl receives
 * them, while the store's readers are pulled (the HTTP server asks for the
 * next block when the socket has room). The two meet in a stream: a GET
 * runs on a thread of its own and writes into a bounded ring (STREAM_RING
 * bytes); the reader takes bytes out of it. When the ring is full the
 * GET's callback waits, so curl stops reading from the store (TCP flow
 * control does the rest); when it is empty a pull parks its caller (the
 * HTTP server suspends the connection) and the GET wakes it once
 * WAKE_BYTES have arrived, or all that remain, or the first of them has
 * waited WAKE_DELAY_MS: each suspend/resume moves a large block instead
 * of whatever one read from the store brought. Closing the reader makes
 * the callback fail, which stops the GET.
 *
 * Opening costs no HEAD: it starts the GET of the whole object and waits
 * for the answer's headers, which give the size (a missing object is a
 * clean 404 before any header goes out). The GET's data is held (not
 * read from the socket) until the reader takes the stream, so an open
 * that ends without reading (a HEAD request) leaves at most what the
 * kernel buffered, and the GET is dropped with its connection. A reader
 * asking for the whole object takes that GET; a Range gets one ranged GET
 * of exactly that range instead.
 *
 * Memory per download: the ring (STREAM_RING), curl's receive buffer
 * (256 KiB, common/httpc.c) and the HTTP server's block.
 *
 * Why not a pipe served by the HTTP library: the library reads a pipe with
 * a blocking read on its event thread, so one slow object store stalls
 * every connection of that thread; a ring with park/wake keeps the event
 * thread free. The stream is shared by the GET thread and the reader and
 * freed by whichever lets go last.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "blob_s3_backend.h"
#include "err.h"
#include "httpc.h"
#include "log.h"
#include "xalloc.h"

#define STREAM_RING (1024 * 1024)
#define WAKE_BYTES (256 * 1024)
#define WAKE_DELAY_MS 10

struct stream {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;                /* the GET thread and the reader */
	char *ring;
	size_t head, len;        /* bytes buffered start at ring[head], wrapping */
	long since_ms;           /* when the ring last went from empty to not */
	int done, rc;            /* the GET ended, with rc */
	int closed;              /* the reader let go */
	int held;                /* the data waits until the reader takes the stream */
	int told, sized;         /* the answer's headers are in; they gave the size */
	struct store_waiter w;   /* a parked caller to wake (w.wake NULL: none) */
	struct blob_backend *be;
	char *key;
	uint64_t first, count;   /* count UINT64_MAX: the whole object, without a Range */
	int64_t pos;             /* object offset of the next byte the reader takes */
	int64_t end;             /* object offset past the last byte; -1 until known */
};

struct reader {
	char *key;
	struct stream *cur;
};

static void stream_put(struct stream *s)
{
	int last = --s->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (!last)
		return;
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->ring);
	free(s->key);
	free(s);
}

/* Wakes a parked caller once; called with the lock held. */
static void wake(struct stream *s)
{
	if (s->w.wake) {
		void (*fn)(void *) = s->w.wake;
		s->w.wake = NULL;
		fn(s->w.ctx);
	}
	pthread_cond_broadcast(&s->cv);
}

/* Whether what is buffered is worth a parked caller's wake-up; with the lock held. */
static int ready(const struct stream *s)
{
	if (!s->len)
		return 0;
	if (s->len >= WAKE_BYTES || (s->end >= 0 && (int64_t)s->len >= s->end - s->pos))
		return 1;
	return httpc_now_ms() - s->since_ms >= WAKE_DELAY_MS;
}

static int sink(void *ctx, const void *data, size_t len)
{
	struct stream *s = ctx;
	const char *p = data;
	pthread_mutex_lock(&s->mu);
	while (len && !s->closed) {
		if (s->held || s->len == STREAM_RING) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		size_t tail = (s->head + s->len) % STREAM_RING;
		size_t room = STREAM_RING - s->len, run = STREAM_RING - tail;
		size_t n = len < room ? len : room;
		if (n > run)
			n = run;
		if (!s->ring)
			s->ring = xmalloc(STREAM_RING); /* on the first bytes: an open that reads nothing has none */
		if (!s->len)
			s->since_ms = httpc_now_ms();
		memcpy(s->ring + tail, p, n);
		s->len += n;
		p += n;
		len -= n;
		if (!s->w.wake)
			pthread_cond_broadcast(&s->cv); /* a blocking reader takes any bytes */
		else if (ready(s))
			wake(s);
	}
	int stop = s->closed;
	pthread_mutex_unlock(&s->mu);
	return stop; /* non-zero stops the GET */
}

/* The answer's headers: the whole object's GET learns its size (its end) here. */
static void told(void *ctx, const struct s3_object_info *info, int sized)
{
	struct stream *s = ctx;
	pthread_mutex_lock(&s->mu);
	s->told = 1;
	s->sized = sized;
	if (sized && s->end < 0)
		s->end = (int64_t)info->size;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void *get_thread(void *arg)
{
	struct stream *s = arg;
	int rc = blob_s3_read_told(blob_s3_backend_client(s->be), s->key, s->first, s->count, told, sink, s, NULL);
	pthread_mutex_lock(&s->mu);
	if (!s->closed)
		(void)blob_s3_backend_note(s->be, rc);
	s->done = 1;
	s->rc = rc;
	wake(s);
	stream_put(s);
	return NULL;
}

static struct reader *R(struct store_reader *rd)
{
	return rd->be_state;
}

/* Lets go of the reader's stream: the GET stops at its next bytes. */
static void stream_close(struct reader *r)
{
	struct stream *s = r->cur;
	if (!s)
		return;
	r->cur = NULL;
	pthread_mutex_lock(&s->mu);
	s->closed = 1;
	s->w.wake = NULL;
	pthread_cond_broadcast(&s->cv);
	stream_put(s);
}

/*
 * Replaces r's stream with a GET of count bytes from first (count
 * UINT64_MAX: the whole object, its end learnt from the answer). held:
 * its data waits for the reader's first pull or stream call.
 */
static struct stream *stream_start(struct blob_backend *be, struct reader *r, uint64_t first, uint64_t count, int held)
{
	pthread_t t;
	pthread_attr_t attr;
	stream_close(r);
	struct stream *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->be = be;
	s->key = xstrdup(r->key);
	s->first = first;
	s->count = count;
	s->pos = (int64_t)first;
	s->end = count == UINT64_MAX ? -1 : (int64_t)(first + count);
	s->held = held;
	r->cur = s;
	if (!count) {
		s->done = 1;
		s->refs = 1;
		return s;
	}
	s->refs = 2;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int err = pthread_create(&t, &attr, get_thread, s);
	pthread_attr_destroy(&attr);
	if (err) {
		log_error("s3: cannot start a reader thread: %s", strerror(err));
		s->refs = 1;
		s->done = 1;
		s->rc = E_IO;
	}
	return s;
}

int blob_s3_backend_rd_open(struct blob_backend *be, const struct digest *d, const char *loc, struct store_reader *rd)
{
	struct buf key = BUF_INIT;
	struct reader *r = xcalloc(1, sizeof(*r));
	int64_t size;
	int rc;
	blob_s3_backend_key(d, loc, &key);
	r->key = buf_detach(&key, NULL);
	rd->be_state = r;
	struct stream *s = stream_start(be, r, 0, UINT64_MAX, 1);
	pthread_mutex_lock(&s->mu);
	while (!s->told && !s->done)
		pthread_cond_wait(&s->cv, &s->mu);
	rc = s->told ? 0 : s->rc;
	size = s->sized ? s->end : -1;
	pthread_mutex_unlock(&s->mu);
	if (!rc && size < 0) {
		/* an answer without the object's size (S3 always gives it): ask for it */
		uint64_t n = 0;
		stream_close(r);
		rc = blob_s3_backend_note(be, blob_s3_stat(blob_s3_backend_client(be), r->key, &n));
		size = (int64_t)n;
	}
	if (rc) {
		blob_s3_backend_rd_release(be, rd);
		return rc;
	}
	rd->size = size;
	return 0;
}

int blob_s3_backend_rd_stream(struct blob_backend *be, struct store_reader *rd, int64_t first, int64_t len)
{
	struct reader *r = R(rd);
	struct stream *s = r->cur;
	if (s && len > 0) {
		/* the open's GET (or one under way) sends exactly this range: take it */
		pthread_mutex_lock(&s->mu);
		int same = s->pos == first && s->end == first + len;
		if (same) {
			s->held = 0;
			pthread_cond_broadcast(&s->cv);
		}
		pthread_mutex_unlock(&s->mu);
		if (same)
			return 0;
	}
	stream_start(be, r, (uint64_t)first, len > 0 ? (uint64_t)len : 0, 0);
	return 0;
}

int blob_s3_backend_rd_pull(struct blob_backend *be, struct store_reader *rd, void *buf, size_t max, size_t *n,
			    const struct store_waiter *w)
{
	struct stream *s = R(rd)->cur;
	int rc = 0;
	(void)be;
	*n = 0;
	if (!s)
		return E_INTERNAL;
	pthread_mutex_lock(&s->mu);
	if (s->held) {
		s->held = 0;
		pthread_cond_broadcast(&s->cv);
	}
	for (;;) {
		/* a caller that can park waits for a block worth its wake-up (ready()) */
		if (s->len && (!w || s->done || ready(s))) {
			size_t take = s->len < max ? s->len : max, run = STREAM_RING - s->head;
			size_t a = take < run ? take : run;
			memcpy(buf, s->ring + s->head, a);
			memcpy((char *)buf + a, s->ring, take - a);
			s->head = (s->head + take) % STREAM_RING;
			s->len -= take;
			s->pos += (int64_t)take;
			*n = take;
			pthread_cond_broadcast(&s->cv); /* room for the GET */
			break;
		}
		if (s->done) {
			rc = s->rc;
			break;
		}
		if (w) {
			s->w = *w;
			w->park(w->ctx);
			rc = STORE_PULL_WAIT;
			break;
		}
		pthread_cond_wait(&s->cv, &s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int blob_s3_backend_rd_read(struct blob_backend *be, struct store_reader *rd, int64_t off, void *buf, size_t len,
			    size_t *n)
{
	struct reader *r = R(rd);
	*n = 0;
	if (off >= rd->size)
		return 0;
	/* sequential reads share one GET; a jump starts another from there */
	if (!r->cur || r->cur->pos != off) {
		int rc = blob_s3_backend_rd_stream(be, rd, off, rd->size - off);
		if (rc)
			return rc;
	}
	return blob_s3_backend_rd_pull(be, rd, buf, len, n, NULL);
}

void blob_s3_backend_rd_release(struct blob_backend *be, struct store_reader *rd)
{
	struct reader *r = R(rd);
	(void)be;
	if (!r)
		return;
	stream_close(r);
	free(r->key);
	free(r);
	rd->be_state = NULL;
}
