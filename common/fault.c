/* fault: the step counter and the --wrap shims of the file system calls (test builds only). */
#include "fault.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

static atomic_int active;          /* armed (counting), from the environment or fault_arm() */
static atomic_int_fast64_t steps;
static atomic_int_fast64_t fail_at; /* 0: count only */
static atomic_int persist, fail_errno = EIO;
static atomic_int_fast64_t failed_at, failures;
static atomic_int failed_kind;
static int no_fsync, from_env;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t arm_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const kind_names[] = {
	[FAULT_WRITE] = "write",
	[FAULT_TRUNCATE] = "truncate",
	[FAULT_SYNC] = "fsync",
	[FAULT_RENAME] = "rename",
	[FAULT_LINK] = "link",
	[FAULT_UNLINK] = "unlink",
	[FAULT_SQL_WRITE] = "sqlite-write",
	[FAULT_SQL_SYNC] = "sqlite-sync",
	[FAULT_SQL_TRUNCATE] = "sqlite-truncate",
};

const char *fault_kind_name(enum fault_kind k)
{
	return (unsigned)k < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[k] : "?";
}

void fault_status_get(struct fault_status *st)
{
	st->steps = (int64_t)atomic_load(&steps);
	st->failed_at = (int64_t)atomic_load(&failed_at);
	st->failures = (int64_t)atomic_load(&failures);
	st->kind = (enum fault_kind)atomic_load(&failed_kind);
}

/* A process armed from the environment says what happened: the tests read it. */
static void report_at_exit(void)
{
	struct fault_status st;
	char line[160];
	fault_status_get(&st);
	int n = st.failed_at ? snprintf(line, sizeof(line), "berth: test fault: step %lld (%s) failed, %lld steps\n",
					(long long)st.failed_at, fault_kind_name(st.kind), (long long)st.steps)
			     : snprintf(line, sizeof(line), "berth: test fault: not reached, %lld steps\n",
					(long long)st.steps);
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

static void init(void)
{
	const char *s = getenv("BERTH_TEST_NO_FSYNC");
	no_fsync = s && !strcmp(s, "1");
	s = getenv("BERTH_TEST_FAULT");
	if (!s || !*s)
		return;
	char *end;
	long long at = strtoll(s, &end, 10);
	int pers = *end == '+';
	if (pers)
		end++;
	int err = !strcmp(end, ":ENOSPC") ? ENOSPC : EIO;
	fault_arm(at > 0 ? at : 0, pers, err, NULL);
	from_env = 1;
	atexit(report_at_exit);
}

void fault_arm(int64_t at, int pers, int err, struct fault_status *before)
{
	pthread_mutex_lock(&arm_lock);
	if (before)
		fault_status_get(before);
	atomic_store(&fail_at, 0);
	atomic_store(&steps, 0);
	atomic_store(&failed_at, 0);
	atomic_store(&failures, 0);
	atomic_store(&persist, pers);
	atomic_store(&fail_errno, err == ENOSPC ? ENOSPC : EIO);
	atomic_store(&fail_at, (int_fast64_t)at);
	atomic_store(&active, 1);
	pthread_mutex_unlock(&arm_lock);
}

int fault_no_fsync(void)
{
	pthread_once(&once, init);
	return no_fsync;
}

int fault_step(enum fault_kind k)
{
	pthread_once(&once, init);
	if (!atomic_load(&active))
		return 0;
	int_fast64_t n = atomic_fetch_add(&steps, 1) + 1, at = atomic_load(&fail_at);
	if (!at || n < at || (n > at && !atomic_load(&persist)))
		return 0;
	int_fast64_t none = 0;
	if (atomic_compare_exchange_strong(&failed_at, &none, n))
		atomic_store(&failed_kind, (int)k);
	atomic_fetch_add(&failures, 1);
	return atomic_load(&fail_errno);
}

/* ---- the shims: -Wl,--wrap=NAME sends the program's calls of NAME here ---- */

static int regular_fd(int fd)
{
	struct stat st;
	return fd > STDERR_FILENO && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* Writes count on regular files only: log lines (stderr) and sockets are not storage. */
static int fd_step(int fd, enum fault_kind k)
{
	pthread_once(&once, init);
	if (!atomic_load(&active) || !regular_fd(fd))
		return 0;
	return fault_step(k);
}

/* While the test clock is shifted, a file berth wrote carries the shifted time. */
static void stamp(int fd)
{
	struct timespec real;
	clock_gettime(CLOCK_REALTIME, &real);
	int64_t now = clock_wall_ms(), off = now - ((int64_t)real.tv_sec * 1000 + real.tv_nsec / 1000000);
	if ((off > -500 && off < 500) || !regular_fd(fd))
		return;
	struct timespec ts[2] = { { (time_t)(now / 1000), (long)(now % 1000) * 1000000 } };
	ts[1] = ts[0];
	futimens(fd, ts);
}

#define FAIL_IF(e)              \
	do {                    \
		int e_ = (e);   \
		if (e_) {       \
			errno = e_; \
			return -1;  \
		}               \
	} while (0)

ssize_t __real_write(int fd, const void *b, size_t n);
ssize_t __wrap_write(int fd, const void *b, size_t n);
ssize_t __real_pwrite(int fd, const void *b, size_t n, off_t off);
ssize_t __wrap_pwrite(int fd, const void *b, size_t n, off_t off);
ssize_t __real_pwrite64(int fd, const void *b, size_t n, off_t off);
ssize_t __wrap_pwrite64(int fd, const void *b, size_t n, off_t off);
int __real_ftruncate(int fd, off_t len);
int __wrap_ftruncate(int fd, off_t len);
int __real_ftruncate64(int fd, off_t len);
int __wrap_ftruncate64(int fd, off_t len);
int __real_fallocate(int fd, int mode, off_t off, off_t len);
int __wrap_fallocate(int fd, int mode, off_t off, off_t len);
int __real_fallocate64(int fd, int mode, off_t off, off_t len);
int __wrap_fallocate64(int fd, int mode, off_t off, off_t len);
int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __real_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to);
int __real_renameat(int fromfd, const char *from, int tofd, const char *to);
int __wrap_renameat(int fromfd, const char *from, int tofd, const char *to);
int __real_link(const char *from, const char *to);
int __wrap_link(const char *from, const char *to);
int __real_linkat(int fromfd, const char *from, int tofd, const char *to, int flags);
int __wrap_linkat(int fromfd, const char *from, int tofd, const char *to, int flags);
int __real_unlink(const char *path);
int __wrap_unlink(const char *path);
int __real_unlinkat(int dirfd, const char *path, int flags);
int __wrap_unlinkat(int dirfd, const char *path, int flags);

ssize_t __wrap_write(int fd, const void *b, size_t n)
{
	FAIL_IF(fd_step(fd, FAULT_WRITE));
	ssize_t r = __real_write(fd, b, n);
	if (r > 0)
		stamp(fd);
	return r;
}

ssize_t __wrap_pwrite(int fd, const void *b, size_t n, off_t off)
{
	FAIL_IF(fd_step(fd, FAULT_WRITE));
	ssize_t r = __real_pwrite(fd, b, n, off);
	if (r > 0)
		stamp(fd);
	return r;
}

ssize_t __wrap_pwrite64(int fd, const void *b, size_t n, off_t off)
{
	FAIL_IF(fd_step(fd, FAULT_WRITE));
	ssize_t r = __real_pwrite64(fd, b, n, off);
	if (r > 0)
		stamp(fd);
	return r;
}

int __wrap_ftruncate(int fd, off_t len)
{
	FAIL_IF(fd_step(fd, FAULT_TRUNCATE));
	int r = __real_ftruncate(fd, len);
	if (!r)
		stamp(fd);
	return r;
}

int __wrap_ftruncate64(int fd, off_t len)
{
	FAIL_IF(fd_step(fd, FAULT_TRUNCATE));
	int r = __real_ftruncate64(fd, len);
	if (!r)
		stamp(fd);
	return r;
}

int __wrap_fallocate(int fd, int mode, off_t off, off_t len)
{
	FAIL_IF(fd_step(fd, FAULT_TRUNCATE));
	return __real_fallocate(fd, mode, off, len);
}

int __wrap_fallocate64(int fd, int mode, off_t off, off_t len)
{
	FAIL_IF(fd_step(fd, FAULT_TRUNCATE));
	return __real_fallocate64(fd, mode, off, len);
}

int __wrap_fsync(int fd)
{
	FAIL_IF(fault_step(FAULT_SYNC));
	return fault_no_fsync() ? 0 : __real_fsync(fd);
}

int __wrap_fdatasync(int fd)
{
	FAIL_IF(fault_step(FAULT_SYNC));
	return fault_no_fsync() ? 0 : __real_fdatasync(fd);
}

int __wrap_rename(const char *from, const char *to)
{
	FAIL_IF(fault_step(FAULT_RENAME));
	return __real_rename(from, to);
}

int __wrap_renameat(int fromfd, const char *from, int tofd, const char *to)
{
	FAIL_IF(fault_step(FAULT_RENAME));
	return __real_renameat(fromfd, from, tofd, to);
}

int __wrap_link(const char *from, const char *to)
{
	FAIL_IF(fault_step(FAULT_LINK));
	return __real_link(from, to);
}

int __wrap_linkat(int fromfd, const char *from, int tofd, const char *to, int flags)
{
	FAIL_IF(fault_step(FAULT_LINK));
	return __real_linkat(fromfd, from, tofd, to, flags);
}

int __wrap_unlink(const char *path)
{
	FAIL_IF(fault_step(FAULT_UNLINK));
	return __real_unlink(path);
}

int __wrap_unlinkat(int dirfd, const char *path, int flags)
{
	FAIL_IF(fault_step(FAULT_UNLINK));
	return __real_unlinkat(dirfd, path, flags);
}
