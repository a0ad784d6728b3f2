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

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *path; /* NULL: no reserve in this process */
static char *root;
static int64_t want;
/* Given back: read without the lock on every push, so atomic. */
static atomic_int released;

/* Allocates want bytes to the file; on failure leaves it empty. Called with lock held. */
static int fill_locked(void)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	int e, rc = 0;
	if (fd < 0)
		return blobstore_errno(errno);
	/* emulated by writing where the file system has no fallocate */
	e = posix_fallocate(fd, 0, (off_t)want);
	if (e) {
		rc = blobstore_errno(e);
		if (ftruncate(fd, 0) < 0)
			log_error("reserve %s: cannot empty it after a failed allocation", path);
	}
	close(fd);
	return rc;
}

int reserve_open(const char *dir, int64_t size)
{
	struct buf p = BUF_INIT;
	int rc;
	paths_reserve(&p, dir);
	pthread_mutex_lock(&lock);
	free(path);
	free(root);
	path = buf_detach(&p, NULL);
	root = xstrdup(dir);
	want = size;
	rc = fill_locked();
	atomic_store(&released, rc == E_NO_SPACE);
	if (rc == E_NO_SPACE) {
		log_warn("reserve %s: no room for its %lld MiB; pushes are refused until there is "
			 "(delete content, then run berth gc)", path, (long long)(size >> 20));
	} else if (rc) {
		log_error("reserve %s: cannot create it; deletes may fail on a full disk", path);
		free(path);
		path = NULL;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int reserve_release(void)
{
	int have;
	pthread_mutex_lock(&lock);
	have = path != NULL;
	if (have && !atomic_load(&released)) {
		if (truncate(path, 0) < 0 && errno != ENOENT) {
			log_error("reserve %s: cannot give its space back", path);
		} else {
			atomic_store(&released, 1);
			log_warn("disk full: gave back the %lld MiB reserve so that deletes can proceed; pushes are "
				 "refused until space is freed (delete content, then run berth gc)",
				 (long long)(want >> 20));
		}
	}
	pthread_mutex_unlock(&lock);
	return have;
}

/* Whether the file system under root has room for the reserve and the margin. */
static int has_room_locked(void)
{
	struct statvfs sv;
	if (statvfs(root, &sv) < 0)
		return 0;
	return (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize >= (uint64_t)(want + RESTORE_MARGIN);
}

int reserve_restore(void)
{
	int rc = 0;
	if (!atomic_load(&released))
		return 0;
	pthread_mutex_lock(&lock);
	if (!path || !atomic_load(&released))
		goto out;
	if (!has_room_locked()) {
		rc = E_NO_SPACE;
		goto out;
	}
	rc = fill_locked();
	if (!rc) {
		atomic_store(&released, 0);
		log_info("reserve of %lld MiB taken back: pushes go on", (long long)(want >> 20));
	} else if (rc != E_NO_SPACE) {
		/* never block pushes on a reserve that cannot be made */
		log_error("reserve %s: cannot re-create it; going on without", path);
		free(path);
		path = NULL;
		atomic_store(&released, 0);
		rc = 0;
	}
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

void reserve_close(void)
{
	pthread_mutex_lock(&lock);
	free(path);
	free(root);
	path = root = NULL;
	atomic_store(&released, 0);
	pthread_mutex_unlock(&lock);
}
