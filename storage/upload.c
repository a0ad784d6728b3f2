/* upload: resumable uploads with a cached running hash per upload. */
#include "upload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "rand.h"
#include "xalloc.h"

/* Flush threshold: large writes keep syscalls few on fast pushes. */
#define WBUF_SIZE (512 * 1024)
/*
 * Writeback of the bytes written is started every this many bytes (Linux):
 * the disk works while the rest of the body arrives instead of all of it
 * at the final fsync, which stays what makes the upload durable.
 */
#define WRITEBACK_STEP ((int64_t)8 << 20)
/*
 * Disk space for the bytes a request announced is reserved this far ahead
 * of the writes, past the end of the file (its size stays the bytes
 * written): ext4 then skips its block reservation per page, and a client
 * announcing more than it sends holds at most this much for nothing.
 */
#define RESERVE_AHEAD ((int64_t)64 << 20)
/* Smaller announcements reserve nothing: not worth a system call and an extent to convert. */
#define RESERVE_MIN ((int64_t)1 << 20)
/* Space found allocated past the end of an upload file beyond this is given back. */
#define RESERVE_SLACK ((int64_t)1 << 20)
/* Idle cached hash states kept; beyond that the least recently used go. */
#define CACHE_MAX 1024

struct upload {
	char id[UPLOAD_ID_LEN + 1];
	struct hasher h;    /* sha256 of the first `flushed + wlen` bytes; ctx NULL = unknown */
	int64_t flushed;    /* bytes known to be in the file */
	struct hasher mark; /* h and flushed as upload_acquire() found them: what upload_rewind() restores */
	int64_t mark_off;
	int64_t wb_start;   /* writeback started for the bytes before this */
	int64_t want_end;   /* end of the bytes this request announced; 0 when unknown */
	int64_t reserved;   /* space reserved up to here (this request); past flushed: to give back */
	int stray;          /* space was found allocated past the end of the file: to give back */
	int64_t touched_ms; /* monotonic time of the last activity record in meta; 0: none */
	int fd;             /* open while busy */
	int busy;
	char *wbuf;
	size_t wlen;
	char *path;
	const struct blobstore *bs; /* outlives its cache */
	uint64_t last_used;
	struct upload *next;
};

/* The cached states of one blob store's uploads (blobstore.h owns it). */
struct upload_cache {
	pthread_mutex_t lock;
	struct upload *head;
	size_t n;
	uint64_t tick;
};

struct upload_cache *upload_cache_new(void)
{
	struct upload_cache *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static struct upload *find_locked(struct upload_cache *c, const char *id, struct upload ***link)
{
	struct upload **pp = &c->head;
	for (; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->id, id)) {
			if (link)
				*link = pp;
			return *pp;
		}
	}
	return NULL;
}

static void entry_free(struct upload *u)
{
	if (u->h.ctx)
		hasher_release(&u->h);
	if (u->mark.ctx)
		hasher_release(&u->mark);
	free(u->wbuf);
	free(u->path);
	free(u);
}

static void evict_locked(struct upload_cache *c)
{
	while (c->n > CACHE_MAX) {
		struct upload **pp, **victim = NULL;
		for (pp = &c->head; *pp; pp = &(*pp)->next)
			if (!(*pp)->busy && (!victim || (*pp)->last_used < (*victim)->last_used))
				victim = pp;
		if (!victim)
			return;
		struct upload *u = *victim;
		*victim = u->next;
		c->n--;
		entry_free(u);
	}
}

int upload_create_id(const struct blobstore *bs, const char *id)
{
	struct buf p = BUF_INIT;
	int fd, rc = 0;
	if (paths_upload_id_check(id))
		return E_BLOB_UPLOAD_UNKNOWN;
	paths_upload(&p, bs->root, id);
	fd = open(p.buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		rc = errno == EEXIST ? E_EXISTS : blobstore_errno(errno);
	else
		close(fd);
	buf_release(&p);
	return rc;
}

void upload_new_id(char id[UPLOAD_ID_LEN + 1])
{
	unsigned char rnd[UPLOAD_ID_LEN / 2];
	static const char hexd[] = "0123456789abcdef";
	rand_bytes(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++) {
		id[2 * i] = hexd[rnd[i] >> 4];
		id[2 * i + 1] = hexd[rnd[i] & 15];
	}
	id[UPLOAD_ID_LEN] = '\0';
}

int upload_create(const struct blobstore *bs, char id[UPLOAD_ID_LEN + 1])
{
	upload_new_id(id);
	return upload_create_id(bs, id);
}

/* Rebuilds the running hash from the file's current content. */
static int rehash(struct upload *u)
{
	char *tmp = xmalloc(1 << 20);
	int64_t off = 0;
	int rc = 0;
	hasher_init(&u->h, DIGEST_SHA256);
	for (;;) {
		ssize_t n = pread(u->fd, tmp, 1 << 20, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = blobstore_errno(errno);
			break;
		}
		if (n == 0)
			break;
		hasher_update(&u->h, tmp, (size_t)n);
		off += n;
	}
	free(tmp);
	if (rc)
		hasher_release(&u->h);
	else
		u->flushed = off;
	return rc;
}

int upload_acquire(const struct blobstore *bs, const char *id, struct upload **out)
{
	struct upload *u;
	struct stat st;
	int rc = 0;
	struct upload_cache *c = bs->uploads;
	if (paths_upload_id_check(id))
		return E_BLOB_UPLOAD_UNKNOWN;
	pthread_mutex_lock(&c->lock);
	u = find_locked(c, id, NULL);
	if (u && u->busy) {
		pthread_mutex_unlock(&c->lock);
		return E_UPLOAD_BUSY;
	}
	if (!u) {
		struct buf p = BUF_INIT;
		u = xcalloc(1, sizeof(*u));
		memcpy(u->id, id, UPLOAD_ID_LEN + 1);
		paths_upload(&p, bs->root, id);
		u->path = buf_detach(&p, NULL);
		u->fd = -1;
		u->next = c->head;
		c->head = u;
		c->n++;
	}
	u->busy = 1;
	u->bs = bs;
	u->last_used = ++c->tick;
	evict_locked(c);
	pthread_mutex_unlock(&c->lock);

	u->fd = open(u->path, O_RDWR | O_CLOEXEC);
	if (u->fd < 0) {
		rc = errno == ENOENT ? E_BLOB_UPLOAD_UNKNOWN : blobstore_errno(errno);
		goto fail;
	}
	if (fstat(u->fd, &st) < 0) {
		rc = blobstore_errno(errno);
		goto fail;
	}
	/* A size other than the cached one means the cache is stale (an
	 * interrupted flush, or another process): trust the file. */
	if (!u->h.ctx || st.st_size != u->flushed) {
		if (u->h.ctx)
			hasher_release(&u->h);
		if ((rc = rehash(u)))
			goto fail;
		u->wb_start = u->flushed;
	}
	u->reserved = u->flushed;
	u->want_end = 0;
	hasher_copy(&u->mark, &u->h);
	u->mark_off = u->flushed;
	/* Reserved by a request a crash cut short. */
	u->stray = (int64_t)st.st_blocks * 512 > (int64_t)st.st_size + RESERVE_SLACK;
	*out = u;
	return 0;
fail:
	upload_release(u);
	if (rc == E_BLOB_UPLOAD_UNKNOWN)
		upload_remove(bs, id);
	return rc;
}

int64_t upload_offset(const struct upload *u)
{
	return u->flushed + (int64_t)u->wlen;
}

static int write_all(int fd, const char *p, size_t len, int64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return blobstore_errno(errno);
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

void upload_expect(struct upload *u, int64_t len)
{
	int64_t off = upload_offset(u);
	u->want_end = len >= RESERVE_MIN && len <= INT64_MAX - off ? off + len : 0;
}

/* Cuts the file back to its last good length, which also frees the space reserved past it. */
static void cut_back(struct upload *u)
{
	if (ftruncate(u->fd, u->flushed) < 0) {
		log_error("upload %s: cannot truncate to %lld bytes", u->id, (long long)u->flushed);
		return;
	}
	u->stray = 0;
	u->reserved = u->flushed;
}

/* Whether space may be allocated past the end of the file. */
static int past_eof(const struct upload *u)
{
	return u->stray || u->reserved > u->flushed;
}

/*
 * Reserves space for the announced bytes up to at least end, RESERVE_AHEAD
 * ahead of the writes. Where the file system cannot, the writes go on
 * without. Returns 0 or E_NO_SPACE (the announced bytes do not fit).
 */
static int reserve(struct upload *u, int64_t end)
{
#ifdef FALLOC_FL_KEEP_SIZE
	int64_t to = u->flushed + RESERVE_AHEAD;
	if (u->reserved < u->flushed)
		u->reserved = u->flushed;
	if (end <= u->reserved || u->want_end <= u->reserved)
		return 0;
	if (to < end)
		to = end;
	if (to > u->want_end)
		to = u->want_end;
	if (fallocate(u->fd, FALLOC_FL_KEEP_SIZE, u->reserved, to - u->reserved) < 0) {
		if (errno == ENOSPC || errno == EDQUOT)
			return E_NO_SPACE;
		u->want_end = 0;
		return 0;
	}
	u->reserved = to;
#else
	(void)u;
	(void)end;
#endif
	return 0;
}

/* Starts writing the bytes written since the last start to disk, without waiting. */
static void start_writeback(struct upload *u)
{
#ifdef SYNC_FILE_RANGE_WRITE
	if (u->flushed - u->wb_start < WRITEBACK_STEP)
		return;
	/* A failure shows again at the fsync of upload_finish(). */
	(void)sync_file_range(u->fd, u->wb_start, u->flushed - u->wb_start, SYNC_FILE_RANGE_WRITE);
	u->wb_start = u->flushed;
#else
	(void)u;
#endif
}

/* Writes len bytes at the end of the file; on failure restores the last good length. */
static int store(struct upload *u, const char *p, size_t len)
{
	int64_t end = u->flushed + (int64_t)len;
	int rc = reserve(u, end);
	if (!rc)
		rc = write_all(u->fd, p, len, u->flushed);
	if (rc) {
		log_error("upload %s: write failed (%s)", u->id, rc == E_NO_SPACE ? "no space" : "i/o error");
		u->want_end = 0;
		cut_back(u);
		return rc;
	}
	u->flushed = end;
	start_writeback(u);
	return 0;
}

/* Writes the buffered bytes; on failure drops them. */
static int flush(struct upload *u)
{
	int rc;
	if (!u->wlen)
		return 0;
	rc = store(u, u->wbuf, u->wlen);
	if (rc)
		hasher_release(&u->h); /* it already covers the lost bytes */
	u->wlen = 0;
	return rc;
}

int upload_write(struct upload *u, const void *data, size_t len)
{
	const char *p = data;
	int rc;
	if (!u->h.ctx)
		return E_IO;
	while (len) {
		if (!u->wbuf)
			u->wbuf = xmalloc(WBUF_SIZE);
		/* Big pieces bypass the buffer: no extra copy on fast pushes. */
		if (!u->wlen && len >= WBUF_SIZE) {
			if ((rc = store(u, p, len)))
				return rc;
			hasher_update(&u->h, p, len);
			return 0;
		}
		size_t n = WBUF_SIZE - u->wlen;
		if (n > len)
			n = len;
		memcpy(u->wbuf + u->wlen, p, n);
		hasher_update(&u->h, p, n);
		u->wlen += n;
		p += n;
		len -= n;
		if (u->wlen == WBUF_SIZE && (rc = flush(u)))
			return rc;
	}
	return 0;
}

int upload_flush(struct upload *u)
{
	return flush(u);
}

int upload_rewind(struct upload *u)
{
	u->wlen = 0;
	if (u->flushed < 0 || u->fd < 0)
		return 0; /* finished: the bytes are a blob now */
	u->want_end = 0;
	if (u->flushed != u->mark_off || past_eof(u)) {
		if (ftruncate(u->fd, u->mark_off) < 0) {
			/* length unknown: the next acquire sees a size other than
			 * the cached one and reads the file back */
			log_error("upload %s: cannot truncate to %lld bytes", u->id, (long long)u->mark_off);
			if (u->h.ctx)
				hasher_release(&u->h);
			return blobstore_errno(errno);
		}
		u->flushed = u->mark_off;
		u->reserved = u->flushed;
		u->stray = 0;
		if (u->wb_start > u->flushed)
			u->wb_start = u->flushed;
	}
	hasher_copy(&u->h, &u->mark);
	return 0;
}

/* Digest of the whole file with another algorithm (second pass, rare). */
static int hash_file(int fd, enum digest_alg alg, struct digest *out)
{
	struct hasher h;
	char *tmp = xmalloc(1 << 20);
	int64_t off = 0;
	int rc = 0;
	hasher_init(&h, alg);
	for (;;) {
		ssize_t n = pread(fd, tmp, 1 << 20, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = blobstore_errno(errno);
			break;
		}
		if (!n)
			break;
		hasher_update(&h, tmp, (size_t)n);
		off += n;
	}
	if (!rc)
		hasher_final(&h, out);
	hasher_release(&h);
	free(tmp);
	return rc;
}

int upload_finish(struct upload *u, const struct digest *want, int64_t *size)
{
	struct digest got;
	int rc;
	if ((rc = flush(u)))
		return rc;
	if (!u->h.ctx)
		return E_IO;
	if (want->alg == DIGEST_SHA256) {
		struct hasher copy = { 0 };
		hasher_copy(&copy, &u->h);
		hasher_final(&copy, &got);
		hasher_release(&copy);
	} else if ((rc = hash_file(u->fd, want->alg, &got))) {
		return rc;
	}
	if (!digest_eq(&got, want))
		return E_DIGEST_INVALID;
	if (past_eof(u))
		cut_back(u); /* before the fsync, which then covers it */
	if (fsync(u->fd) < 0)
		return blobstore_errno(errno);
	if ((rc = blobstore_adopt(u->bs, u->path, want))) {
		/*
		 * When the file was moved into place before the failure (the
		 * directory fsync failed), it is a blob now, not this upload's
		 * tail: a rewind would truncate the stored blob under its
		 * digest. The upload is over either way.
		 */
		if (access(u->path, F_OK) < 0 && errno == ENOENT) {
			hasher_release(&u->h);
			u->flushed = -1;
		}
		return rc;
	}
	*size = u->flushed;
	hasher_release(&u->h);
	u->flushed = -1; /* gone: never matches a file size again */
	return 0;
}

void upload_release(struct upload *u)
{
	if (u->fd >= 0) {
		if (u->h.ctx && flush(u))
			log_error("upload %s: buffered data lost on release", u->id);
		if (u->flushed >= 0 && past_eof(u))
			cut_back(u);
		close(u->fd);
		u->fd = -1;
	}
	free(u->wbuf);
	u->wbuf = NULL;
	u->wlen = 0;
	struct upload_cache *c = u->bs->uploads;
	pthread_mutex_lock(&c->lock);
	u->busy = 0;
	if (u->flushed < 0) {
		struct upload **link;
		if (find_locked(c, u->id, &link) == u) {
			*link = u->next;
			c->n--;
			entry_free(u);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

int upload_touch_due(struct upload *u, int64_t every_ms)
{
	struct timespec ts;
	int64_t now;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1; /* never 0, which means none */
	if (u->touched_ms && now - u->touched_ms < every_ms)
		return 0;
	u->touched_ms = now;
	return 1;
}

int upload_size(const struct blobstore *bs, const char *id, int64_t *size)
{
	struct buf p = BUF_INIT;
	struct stat st;
	struct upload *u;
	int busy, rc = 0;
	if (paths_upload_id_check(id))
		return E_BLOB_UPLOAD_UNKNOWN;
	/* While a request writes (or a vanished client's request is being
	 * cleaned up), the size is still moving: say so instead of a figure
	 * that is stale a moment later. */
	pthread_mutex_lock(&bs->uploads->lock);
	u = find_locked(bs->uploads, id, NULL);
	busy = u && u->busy;
	pthread_mutex_unlock(&bs->uploads->lock);
	if (busy)
		return E_UPLOAD_BUSY;
	paths_upload(&p, bs->root, id);
	if (stat(p.buf, &st) < 0)
		rc = errno == ENOENT ? E_BLOB_UPLOAD_UNKNOWN : blobstore_errno(errno);
	else
		*size = (int64_t)st.st_size;
	buf_release(&p);
	return rc;
}

int upload_remove(const struct blobstore *bs, const char *id)
{
	struct upload *u, **link;
	struct buf p = BUF_INIT;
	int rc = 0;
	if (paths_upload_id_check(id))
		return E_BLOB_UPLOAD_UNKNOWN;
	struct upload_cache *c = bs->uploads;
	pthread_mutex_lock(&c->lock);
	u = find_locked(c, id, &link);
	if (u && u->busy) {
		pthread_mutex_unlock(&c->lock);
		return E_UPLOAD_BUSY;
	}
	if (u) {
		*link = u->next;
		c->n--;
		entry_free(u);
	}
	pthread_mutex_unlock(&c->lock);
	paths_upload(&p, bs->root, id);
	if (unlink(p.buf) < 0)
		rc = errno == ENOENT ? E_BLOB_UPLOAD_UNKNOWN : blobstore_errno(errno);
	buf_release(&p);
	return rc;
}

void upload_cache_free(struct upload_cache *c)
{
	if (!c)
		return;
	while (c->head) {
		struct upload *u = c->head;
		c->head = u->next;
		entry_free(u);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

