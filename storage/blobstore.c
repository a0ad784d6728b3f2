/* blobstore: durable, content-addressed blob files (layout in paths.h). */
#include "blobstore.h"

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
#include "paths.h"
#include "rand.h"
#include "upload.h"
#include "xalloc.h"

int blobstore_errno(int e)
{
	return (e == ENOSPC || e == EDQUOT) ? E_NO_SPACE : E_IO;
}

static int mkdir_p1(const char *path)
{
	if (mkdir(path, 0750) == 0 || errno == EEXIST)
		return 0;
	log_error("cannot create directory \"%s\": %s", path, strerror(errno));
	return blobstore_errno(errno);
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	if (fd < 0)
		return blobstore_errno(errno);
	if (fsync(fd) < 0)
		rc = blobstore_errno(errno);
	close(fd);
	return rc;
}

int blobstore_init(struct blobstore *bs, const char *root)
{
	struct buf p = BUF_INIT;
	int rc;
	bs->root = xstrdup(root);
	bs->uploads = upload_cache_new();
	if ((rc = mkdir_p1(root)))
		goto out;
	paths_blobs_dir(&p, root);
	if ((rc = mkdir_p1(p.buf)))
		goto out;
	/* Every fan-out directory exists from the start, so committing a blob
	 * only ever needs an fsync of its own leaf directory. */
	for (int alg = DIGEST_SHA256; alg <= DIGEST_SHA512; alg++) {
		buf_reset(&p);
		paths_blob_alg_dir(&p, root, (enum digest_alg)alg);
		if ((rc = mkdir_p1(p.buf)))
			goto out;
		for (int i = 0; i < 256; i++) {
			struct digest d = { .alg = (enum digest_alg)alg };
			snprintf(d.hex, sizeof(d.hex), "%02x", i);
			buf_reset(&p);
			paths_blob_dir(&p, root, &d);
			if ((rc = mkdir_p1(p.buf)))
				goto out;
		}
		buf_reset(&p);
		paths_blob_alg_dir(&p, root, (enum digest_alg)alg);
		if ((rc = fsync_dir(p.buf)))
			goto out;
	}
	buf_reset(&p);
	paths_uploads_dir(&p, root);
	if ((rc = mkdir_p1(p.buf)))
		goto out;
	buf_reset(&p);
	paths_blobs_dir(&p, root);
	if ((rc = fsync_dir(p.buf)) || (rc = fsync_dir(root)))
		goto out;
out:
	buf_release(&p);
	return rc;
}

void blobstore_release(struct blobstore *bs)
{
	upload_cache_free(bs->uploads);
	bs->uploads = NULL;
	free(bs->root);
	bs->root = NULL;
}

int blobstore_open(const struct blobstore *bs, const struct digest *d, int *fd, int64_t *size)
{
	struct buf p = BUF_INIT;
	struct stat st;
	int rc = 0;
	paths_blob(&p, bs->root, d);
	*fd = open(p.buf, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		rc = errno == ENOENT ? E_BLOB_UNKNOWN : blobstore_errno(errno);
		goto out;
	}
	if (fstat(*fd, &st) < 0) {
		rc = blobstore_errno(errno);
		close(*fd);
		*fd = -1;
		goto out;
	}
	if (size)
		*size = (int64_t)st.st_size;
out:
	buf_release(&p);
	return rc;
}

int blobstore_stat(const struct blobstore *bs, const struct digest *d, int64_t *size)
{
	struct buf p = BUF_INIT;
	struct stat st;
	int rc = 0;
	paths_blob(&p, bs->root, d);
	if (stat(p.buf, &st) < 0)
		rc = errno == ENOENT ? E_BLOB_UNKNOWN : blobstore_errno(errno);
	else if (size)
		*size = (int64_t)st.st_size;
	buf_release(&p);
	return rc;
}

int blobstore_adopt(const struct blobstore *bs, const char *tmp_path, const struct digest *d)
{
	struct buf p = BUF_INIT, dir = BUF_INIT;
	struct stat st;
	int rc = 0;
	paths_blob(&p, bs->root, d);
	paths_blob_dir(&dir, bs->root, d);
	if (stat(p.buf, &st) == 0) {
		/* Identical content is stored once; the existing file wins. */
		unlink(tmp_path);
		goto out;
	}
	if (rename(tmp_path, p.buf) < 0) {
		rc = blobstore_errno(errno);
		log_error("cannot move blob into place: %s", strerror(errno));
		goto out;
	}
	rc = fsync_dir(dir.buf);
out:
	buf_release(&p);
	buf_release(&dir);
	return rc;
}

int blobstore_tmp_create(const struct blobstore *bs, struct buf *path, int *fd)
{
	unsigned char rnd[8];
	rand_bytes(rnd, sizeof(rnd));
	paths_uploads_dir(path, bs->root);
	buf_adds(path, "/tmp-");
	for (size_t i = 0; i < sizeof(rnd); i++)
		buf_addf(path, "%02x", rnd[i]);
	*fd = open(path->buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	return *fd < 0 ? blobstore_errno(errno) : 0;
}

int blobstore_write(const struct blobstore *bs, const struct digest *d, const void *data, size_t len)
{
	struct buf tmp = BUF_INIT;
	int fd = -1, rc = 0;
	if (blobstore_stat(bs, d, NULL) == 0)
		return 0;
	if ((rc = blobstore_tmp_create(bs, &tmp, &fd))) {
		buf_release(&tmp);
		return rc;
	}
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = blobstore_errno(errno);
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	if (fsync(fd) < 0) {
		rc = blobstore_errno(errno);
		goto out;
	}
	close(fd);
	fd = -1;
	rc = blobstore_adopt(bs, tmp.buf, d);
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp.buf);
	buf_release(&tmp);
	return rc;
}

int blobstore_remove(const struct blobstore *bs, const struct digest *d)
{
	struct buf p = BUF_INIT;
	int rc = 0;
	paths_blob(&p, bs->root, d);
	if (unlink(p.buf) < 0 && errno != ENOENT)
		rc = blobstore_errno(errno);
	buf_release(&p);
	return rc;
}
