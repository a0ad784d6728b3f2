/* reserve: a preallocated file given back so that deletes can commit on a full disk. */
#include "reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "blobstore.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "paths.h"
#include "xalloc.h"

/*
 * Free space a file system needs beyond the reserve before it is taken
 * back: what is left then lets pushes go on, instead of the reserve
 * filling the disk again the moment it returns.
 */
#define RESTORE_MARGIN ((int64_t)1 << 20)

struct reserve {
	pthread_mutex_t lock;
	char *path; /* NULL: no reserve (it could not be made) */
	char *root;
	int64_t want;
	/* Given back: read without the lock on every push, so atomic. */
	atomic_int released;
};

/* Allocates want bytes to the file; on failure leaves it empty. Called with lock held. */
static int fill_locked(struct reserve *r)
{
	int fd = open(r->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	int e, rc = 0;
	if (fd < 0)
		return blobstore_errno(errno);
	/* emulated by writing where the file system has no fallocate */
	e = posix_fallocate(fd, 0, (off_t)r->want);
	if (e) {
		rc = blobstore_errno(e);
		if (ftruncate(fd, 0) < 0)
			log_error("reserve %s: cannot empty it after a failed allocation", r->path);
	}
	close(fd);
	return rc;
}

int reserve_open(const char *dir, int64_t size, struct reserve **out)
{
	struct reserve *r = xcalloc(1, sizeof(*r));
	struct buf p = BUF_INIT;
	int rc;
	pthread_mutex_init(&r->lock, NULL);
	paths_reserve(&p, dir);
	r->path = buf_detach(&p, NULL);
	r->root = xstrdup(dir);
	r->want = size;
	rc = fill_locked(r);
	atomic_init(&r->released, rc == E_NO_SPACE);
	if (rc == E_NO_SPACE) {
		log_warn("reserve %s: no room for its %lld MiB; pushes are refused until there is "
			 "(delete content, then run berth gc)", r->path, (long long)(size >> 20));
	} else if (rc) {
		log_error("reserve %s: cannot create it; deletes may fail on a full disk", r->path);
		free(r->path);
		r->path = NULL;
	}
	*out = r;
	return rc;
}

int reserve_release(struct reserve *r)
{
	int have;
	if (!r)
		return 0;
	pthread_mutex_lock(&r->lock);
	have = r->path != NULL;
	if (have && !atomic_load(&r->released)) {
		if (truncate(r->path, 0) < 0 && errno != ENOENT) {
			log_error("reserve %s: cannot give its space back", r->path);
		} else {
			atomic_store(&r->released, 1);
			log_warn("disk full: gave back the %lld MiB reserve so that deletes can proceed; pushes are "
				 "refused until space is freed (delete content, then run berth gc)",
				 (long long)(r->want >> 20));
		}
	}
	pthread_mutex_unlock(&r->lock);
	return have;
}

/* Whether the file system under root has room for the reserve and the margin. */
static int has_room_locked(const struct reserve *r)
{
	struct statvfs sv;
	if (statvfs(r->root, &sv) < 0)
		return 0;
	return (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize >= (uint64_t)(r->want + RESTORE_MARGIN);
}

int reserve_restore(struct reserve *r)
{
	int rc = 0;
	if (!r || !atomic_load(&r->released))
		return 0;
	pthread_mutex_lock(&r->lock);
	if (!r->path || !atomic_load(&r->released))
		goto out;
	if (!has_room_locked(r)) {
		rc = E_NO_SPACE;
		goto out;
	}
	rc = fill_locked(r);
	if (!rc) {
		atomic_store(&r->released, 0);
		log_info("reserve of %lld MiB taken back: pushes go on", (long long)(r->want >> 20));
	} else if (rc != E_NO_SPACE) {
		/* never block pushes on a reserve that cannot be made */
		log_error("reserve %s: cannot re-create it; going on without", r->path);
		free(r->path);
		r->path = NULL;
		atomic_store(&r->released, 0);
		rc = 0;
	}
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void reserve_close(struct reserve *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->path);
	free(r->root);
	free(r);
}
