/* atomicfile: small files published whole and at most once (see atomicfile.h). */
#include "atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "xalloc.h"

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int atomicfile_sync_parent(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int fd, rc = 0;
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		log_error("cannot sync directory \"%s\": %s", dir, strerror(errno));
		rc = E_IO;
	}
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

/*
 * Gives tmp the name path unless path exists: 0, ATOMICFILE_EXISTS, or
 * E_IO (logged). *renamed tells whether tmp is gone (else the caller
 * removes it).
 */
static int publish(const char *tmp, const char *path, int *renamed)
{
	*renamed = 0;
	if (link(tmp, path) == 0)
		return 0;
	if (errno == EEXIST)
		return ATOMICFILE_EXISTS;
	if (errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS)
		goto fail;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
		*renamed = 1;
		return 0;
	}
	if (errno == EEXIST)
		return ATOMICFILE_EXISTS;
	if (errno != EINVAL && errno != ENOSYS)
		goto fail;
	if (access(path, F_OK) == 0)
		return ATOMICFILE_EXISTS;
	if (rename(tmp, path) == 0) {
		*renamed = 1;
		return 0;
	}
fail:
	log_error("cannot create \"%s\": %s", path, strerror(errno));
	return E_IO;
}

int atomicfile_create(const char *path, const void *data, size_t len, mode_t mode)
{
	struct buf tmp = BUF_INIT;
	int fd, rc = E_IO, renamed = 0;
	buf_addf(&tmp, "%s.tmp-XXXXXX", path);
	fd = mkostemp(tmp.buf, O_CLOEXEC);
	if (fd < 0) {
		log_error("cannot create a file beside \"%s\": %s", path, strerror(errno));
		buf_release(&tmp);
		return E_IO;
	}
	/* fchmod, not the umask: a key file must not end up more open than asked */
	if (fchmod(fd, mode) < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		log_error("cannot write \"%s\": %s", tmp.buf, strerror(errno));
		close(fd);
		goto out;
	}
	if (close(fd) < 0) {
		log_error("cannot write \"%s\": %s", tmp.buf, strerror(errno));
		goto out;
	}
	rc = publish(tmp.buf, path, &renamed);
	if (rc == 0)
		rc = atomicfile_sync_parent(path);
out:
	if (!renamed)
		unlink(tmp.buf);
	buf_release(&tmp);
	return rc;
}
