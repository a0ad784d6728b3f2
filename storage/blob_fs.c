/* blob_fs: the store's blob backend on a local directory, over blobstore.c and upload.c. */
#include "blob_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "paths.h"
#include "upload.h"
#include "xalloc.h"

struct blob_fs {
	struct blob_backend be; /* first: the backend's view of it */
	struct blobstore bs;
};

static const struct blob_backend_ops fs_ops;

static struct blobstore *bs_of(struct blob_backend *be)
{
	return &((struct blob_fs *)(void *)be)->bs;
}

const struct blobstore *blob_fs_blobstore(const struct blob_backend *be)
{
	return be && be->ops == &fs_ops ? &((const struct blob_fs *)(const void *)be)->bs : NULL;
}

int blob_fs_open(const char *root, struct blob_backend **out)
{
	struct blob_fs *fs = xcalloc(1, sizeof(*fs));
	int rc;
	fs->be.ops = &fs_ops;
	*out = NULL;
	if ((rc = blobstore_init(&fs->bs, root))) {
		blobstore_release(&fs->bs);
		free(fs);
		return rc;
	}
	*out = &fs->be;
	return 0;
}

static void fs_close(struct blob_backend *be)
{
	blobstore_release(bs_of(be));
	free(be);
}

/* A readiness probe: the data directory takes a small write. */
static int fs_probe(struct blob_backend *be, struct buf *detail)
{
	struct buf p = BUF_INIT;
	int fd, rc = 0;
	paths_probe(&p, bs_of(be)->root);
	fd = mkstemp(p.buf);
	if (fd < 0) {
		buf_addf(detail, "storage not writable: %s", strerror(errno));
		rc = E_IO;
	} else {
		if (write(fd, "x", 1) != 1)
			rc = E_IO;
		close(fd);
		unlink(p.buf);
		if (rc)
			buf_adds(detail, "storage not writable");
	}
	buf_release(&p);
	return rc;
}

static int fs_stat(struct blob_backend *be, const struct digest *d, const char *loc, int64_t *size)
{
	(void)loc;
	return blobstore_stat(bs_of(be), d, size);
}

static int fs_open(struct blob_backend *be, const struct digest *d, const char *loc, struct store_reader *rd)
{
	(void)loc;
	return blobstore_open(bs_of(be), d, &rd->fd, &rd->size);
}

static int fs_read(struct blob_backend *be, struct store_reader *rd, int64_t off, void *buf, size_t len, size_t *n)
{
	(void)be;
	for (;;) {
		ssize_t got = pread(rd->fd, buf, len, off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return blobstore_errno(errno);
		*n = (size_t)got;
		return 0;
	}
}

static void fs_reader_release(struct blob_backend *be, struct store_reader *rd)
{
	(void)be;
	(void)rd; /* the descriptor is the store's to close */
}

static int fs_write(struct blob_backend *be, const struct digest *d, const void *data, size_t len, struct buf *loc)
{
	(void)loc;
	return blobstore_write(bs_of(be), d, data, len);
}

static int fs_remove(struct blob_backend *be, const struct digest *d, const char *loc)
{
	(void)loc;
	return blobstore_remove(bs_of(be), d);
}

static int fs_up_create(struct blob_backend *be, const char *id, struct buf *state)
{
	(void)state;
	return upload_create_id(bs_of(be), id);
}

static int fs_up_acquire(struct blob_backend *be, const char *id, const void *state, size_t state_len,
			 struct blob_upload **out)
{
	struct upload *u;
	int rc;
	(void)state;
	(void)state_len;
	if ((rc = upload_acquire(bs_of(be), id, &u)))
		return rc;
	*out = (struct blob_upload *)(void *)u;
	return 0;
}

/* struct blob_upload of this backend is upload.c's struct upload. */
static struct upload *up(struct blob_upload *u)
{
	return (struct upload *)(void *)u;
}

static int64_t fs_up_offset(const struct blob_upload *u)
{
	return upload_offset((const struct upload *)(const void *)u);
}

static void fs_up_expect(struct blob_upload *u, int64_t len)
{
	upload_expect(up(u), len);
}

static int fs_up_write(struct blob_upload *u, const void *data, size_t len)
{
	return upload_write(up(u), data, len);
}

static int fs_up_flush(struct blob_upload *u, struct buf *state)
{
	(void)state; /* the file is the state */
	return upload_flush(up(u));
}

static int fs_up_finish(struct blob_upload *u, const struct digest *want, int64_t *size, struct buf *loc)
{
	(void)loc;
	return upload_finish(up(u), want, size);
}

static int fs_up_rewind(struct blob_upload *u)
{
	return upload_rewind(up(u));
}

static void fs_up_release(struct blob_upload *u)
{
	upload_release(up(u));
}

static int fs_up_touch_due(struct blob_upload *u, int64_t every_ms)
{
	return upload_touch_due(up(u), every_ms);
}

static int fs_up_size(struct blob_backend *be, const char *id, const void *state, size_t state_len, int64_t *size)
{
	(void)state;
	(void)state_len;
	return upload_size(bs_of(be), id, size);
}

static int fs_up_remove(struct blob_backend *be, const char *id, const void *state, size_t state_len)
{
	(void)state;
	(void)state_len;
	return upload_remove(bs_of(be), id);
}

static const struct blob_backend_ops fs_ops = {
	.name = "fs",
	.close = fs_close,
	.probe = fs_probe,
	.stat = fs_stat,
	.open = fs_open,
	.read = fs_read,
	.reader_release = fs_reader_release,
	.write = fs_write,
	.remove = fs_remove,
	.presign = NULL,
	.list = NULL, /* garbage collection and fsck walk the directory themselves (gc_files.c) */
	.up_create = fs_up_create,
	.up_acquire = fs_up_acquire,
	.up_offset = fs_up_offset,
	.up_expect = fs_up_expect,
	.up_write = fs_up_write,
	.up_flush = fs_up_flush,
	.up_finish = fs_up_finish,
	.up_rewind = fs_up_rewind,
	.up_release = fs_up_release,
	.up_touch_due = fs_up_touch_due,
	.up_size = fs_up_size,
	.up_remove = fs_up_remove,
};
