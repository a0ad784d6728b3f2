/*
 * Unit tests for storage/upload on a real blob store in a scratch
 * directory: appending in pieces of every size, resuming after a release
 * and after the cached hash is gone, space reserved for announced bytes
 * (never counted in the size, given back at the end, also when a crash
 * left it behind), bodies shorter than announced, a digest mismatch, a
 * body long enough to cross the writeback and reservation steps, a
 * refused request's bytes given up (buffered, flushed, reserved), and when
 * an upload's activity is due to be recorded again.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blobstore.h"
#include "buf.h"
#include "digest.h"
#include "err.h"
#include "fault.h"
#include "paths.h"
#include "t.h"
#include "upload.h"

#define MiB (1 << 20)
/* More than upload.c keeps reserved past the end of a file it is done with. */
#define SLACK (1 << 20)

static struct buf base = BUF_INIT;
static struct blobstore bs;
static int can_reserve; /* the scratch file system supports fallocate(FALLOC_FL_KEEP_SIZE) */

/* Drops every cached upload state, as a restart does. */
static void forget_cache(void)
{
	upload_cache_free(bs.uploads);
	bs.uploads = upload_cache_new();
}

/* Byte i of every test blob: a pattern whose digest tells misplaced bytes apart. */
static unsigned char byte_at(int64_t i)
{
	return (unsigned char)((i * 131 + (i >> 12)) & 0xff);
}

static void fill(unsigned char *p, int64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = byte_at(off + (int64_t)i);
}

static void digest_pattern(int64_t len, struct digest *out)
{
	unsigned char *tmp = malloc(MiB);
	struct hasher h;
	hasher_init(&h, DIGEST_SHA256);
	for (int64_t off = 0; off < len; off += MiB) {
		size_t n = len - off < MiB ? (size_t)(len - off) : MiB;
		fill(tmp, off, n);
		hasher_update(&h, tmp, n);
	}
	hasher_final(&h, out);
	hasher_release(&h);
	free(tmp);
}

/* Appends the pattern's bytes [off, off + len) in pieces of piece bytes. */
static int append(struct upload *u, int64_t off, int64_t len, size_t piece)
{
	unsigned char *tmp = malloc(piece);
	int rc = 0;
	while (len > 0 && !rc) {
		size_t n = len < (int64_t)piece ? (size_t)len : piece;
		fill(tmp, off, n);
		rc = upload_write(u, tmp, n);
		off += (int64_t)n;
		len -= (int64_t)n;
	}
	free(tmp);
	return rc;
}

static void stat_upload(const char *id, struct stat *st)
{
	struct buf p = BUF_INIT;
	paths_upload(&p, bs.root, id);
	CHECK_EQ_INT(stat(p.buf, st), 0);
	buf_release(&p);
}

/* Bytes allocated past the end of the file (0 where the file system says less). */
static int64_t past_eof(const char *id)
{
	struct stat st;
	int64_t used;
	stat_upload(id, &st);
	used = (int64_t)st.st_blocks * 512 - (int64_t)st.st_size;
	return used > 0 ? used : 0;
}

static void finish_ok(struct upload *u, int64_t len)
{
	struct digest d;
	int64_t size = -1, bsize = -1;
	digest_pattern(len, &d);
	CHECK_EQ_INT(upload_finish(u, &d, &size), 0);
	CHECK_EQ_INT(size, len);
	upload_release(u);
	CHECK_EQ_INT(blobstore_stat(&bs, &d, &bsize), 0);
	CHECK_EQ_INT(bsize, len);
}

static void test_append_resume_finish(void)
{
	char id[UPLOAD_ID_LEN + 1];
	struct upload *u, *other;
	int64_t size = -1;
	CHECK_EQ_INT(upload_create(&bs, id), 0);
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	CHECK_EQ_INT(upload_acquire(&bs, id, &other), E_UPLOAD_BUSY);
	CHECK_EQ_INT(upload_size(&bs, id, &size), E_UPLOAD_BUSY);
	CHECK_EQ_INT(append(u, 0, 1000, 7), 0);
	CHECK_EQ_INT(append(u, 1000, 3 * MiB, 64 * 1024), 0);
	CHECK_EQ_INT(append(u, 1000 + 3 * MiB, MiB, MiB), 0); /* a piece as big as the buffer or more */
	CHECK_EQ_INT(upload_offset(u), 1000 + 4 * MiB);
	CHECK_EQ_INT(upload_flush(u), 0);
	upload_release(u);
	CHECK_EQ_INT(upload_size(&bs, id, &size), 0);
	CHECK_EQ_INT(size, 1000 + 4 * MiB);

	/* resumed with the cached hash, then with a hash rebuilt from the file */
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	CHECK_EQ_INT(upload_offset(u), 1000 + 4 * MiB);
	CHECK_EQ_INT(append(u, 1000 + 4 * MiB, 5000, 4096), 0);
	upload_release(u); /* flushes the buffered bytes */
	forget_cache();
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	CHECK_EQ_INT(upload_offset(u), 6000 + 4 * MiB);
	finish_ok(u, 6000 + 4 * MiB);
	CHECK_EQ_INT(upload_size(&bs, id, &size), E_BLOB_UPLOAD_UNKNOWN);
}

static void test_reserved_space(void)
{
	char id[UPLOAD_ID_LEN + 1];
	struct upload *u;
	struct stat st;
	int64_t size = -1;
	CHECK_EQ_INT(upload_create(&bs, id), 0);
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	upload_expect(u, 16 * MiB);
	CHECK_EQ_INT(append(u, 0, MiB + 10, 64 * 1024), 0);
	CHECK_EQ_INT(upload_flush(u), 0);
	/* the reservation never counts as received bytes */
	stat_upload(id, &st);
	CHECK_EQ_INT(st.st_size, MiB + 10);
	if (can_reserve)
		CHECK(past_eof(id) >= 14 * MiB);
	CHECK_EQ_INT(upload_size(&bs, id, &size), E_UPLOAD_BUSY);
	/* a body shorter than announced: the end of the request gives the space back */
	upload_release(u);
	CHECK_EQ_INT(upload_size(&bs, id, &size), 0);
	CHECK_EQ_INT(size, MiB + 10);
	CHECK(past_eof(id) < SLACK);

	/* the next request announces the rest and brings it */
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	upload_expect(u, 3 * MiB - 10);
	CHECK_EQ_INT(append(u, MiB + 10, 3 * MiB - 10, 100 * 1024), 0);
	finish_ok(u, 4 * MiB);

	/* a small body reserves nothing */
	CHECK_EQ_INT(upload_create(&bs, id), 0);
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	upload_expect(u, 500 * 1024);
	CHECK_EQ_INT(append(u, 0, 10, 10), 0);
	CHECK_EQ_INT(upload_flush(u), 0);
	CHECK(past_eof(id) < 64 * 1024);
	upload_release(u);
	CHECK_EQ_INT(upload_remove(&bs, id), 0);

	/* an absurd announcement reserves no more than one step ahead */
	CHECK_EQ_INT(upload_create(&bs, id), 0);
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	upload_expect(u, INT64_MAX);
	CHECK_EQ_INT(append(u, 0, 1, 1), 0);
	CHECK_EQ_INT(upload_flush(u), 0);
	CHECK(past_eof(id) <= 64 * MiB + SLACK);
	if (can_reserve)
		CHECK(past_eof(id) > SLACK);
	upload_release(u);
	CHECK(past_eof(id) < SLACK);
	CHECK_EQ_INT(upload_remove(&bs, id), 0);
}

/* Space a crash left reserved past the end of an upload file is given back when it completes. */
static void test_crash_leftover(void)
{
	char id[UPLOAD_ID_LEN + 1];
	struct buf p = BUF_INIT;
	unsigned char head[3000];
	struct upload *u;
	int fd;
	CHECK_EQ_INT(upload_create(&bs, id), 0);
	paths_upload(&p, bs.root, id);
	fd = open(p.buf, O_WRONLY);
	CHECK(fd >= 0);
	fill(head, 0, sizeof(head));
	CHECK_EQ_INT(pwrite(fd, head, sizeof(head), 0), sizeof(head));
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 8 * MiB) < 0)
		fprintf(stderr, "no fallocate here: the leftover is not simulated\n");
	close(fd);
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	CHECK_EQ_INT(upload_offset(u), sizeof(head));
	CHECK_EQ_INT(append(u, sizeof(head), MiB, 64 * 1024), 0);
	finish_ok(u, sizeof(head) + MiB);
	{
		struct digest d;
		struct stat st;
		buf_reset(&p);
		digest_pattern(sizeof(head) + MiB, &d);
		paths_blob(&p, bs.root, &d);
		CHECK_EQ_INT(stat(p.buf, &st), 0);
		CHECK((int64_t)st.st_blocks * 512 < st.st_size + SLACK);
	}
	buf_release(&p);
}

static void test_digest_mismatch(void)
{
	char id[UPLOAD_ID_LEN + 1];
	struct upload *u;
	struct digest d;
	int64_t size = -1;
	CHECK_EQ_INT(upload_create(&bs, id), 0);
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	upload_expect(u, 2 * MiB);
	CHECK_EQ_INT(append(u, 0, 2 * MiB, 64 * 1024), 0);
	digest_pattern(2 * MiB - 1, &d);
	CHECK_EQ_INT(upload_finish(u, &d, &size), E_DIGEST_INVALID);
	upload_release(u);
	CHECK_EQ_INT(upload_size(&bs, id, &size), 0);
	CHECK_EQ_INT(size, 2 * MiB);
	CHECK(blobstore_stat(&bs, &d, NULL) == E_BLOB_UNKNOWN);
	/* still usable: the right digest completes it */
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	finish_ok(u, 2 * MiB);
}

/*
 * upload_rewind(): everything since acquire goes, buffered or already in
 * the file, with the space reserved for it; the hash is the one from
 * before, so the right bytes sent again complete the blob.
 */
static void test_rewind(void)
{
	char id[UPLOAD_ID_LEN + 1];
	struct upload *u;
	int64_t size = -1;
	CHECK_EQ_INT(upload_create(&bs, id), 0);
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	CHECK_EQ_INT(append(u, 0, 1000, 1000), 0);
	upload_release(u);
	/* a small chunk, still buffered */
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	CHECK_EQ_INT(append(u, 1000, 5000, 999), 0);
	CHECK_EQ_INT(upload_offset(u), 6000);
	CHECK_EQ_INT(upload_rewind(u), 0);
	CHECK_EQ_INT(upload_offset(u), 1000);
	upload_release(u);
	CHECK_EQ_INT(upload_size(&bs, id, &size), 0);
	CHECK_EQ_INT(size, 1000);
	/* a large one, flushed to the file with space reserved ahead of it */
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	upload_expect(u, 8 * MiB);
	CHECK_EQ_INT(append(u, 1000, 3 * MiB, 256 * 1024), 0);
	CHECK_EQ_INT(upload_flush(u), 0);
	CHECK_EQ_INT(upload_rewind(u), 0);
	CHECK_EQ_INT(upload_offset(u), 1000);
	upload_release(u);
	CHECK_EQ_INT(upload_size(&bs, id, &size), 0);
	CHECK_EQ_INT(size, 1000);
	CHECK(past_eof(id) <= SLACK);
	/* a rewind with nothing new changes nothing */
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	CHECK_EQ_INT(upload_rewind(u), 0);
	CHECK_EQ_INT(upload_offset(u), 1000);
	/* the running hash went back too: the rest, sent again, completes it */
	CHECK_EQ_INT(append(u, 1000, 3 * MiB, 64 * 1024), 0);
	finish_ok(u, 1000 + 3 * MiB);
}

/* Long enough to cross several writeback steps and reservation steps, in the pieces libmicrohttpd hands over. */
static void test_long_body(void)
{
	const int64_t len = 150 * (int64_t)MiB + 12345;
	char id[UPLOAD_ID_LEN + 1];
	struct upload *u;
	CHECK_EQ_INT(upload_create(&bs, id), 0);
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	upload_expect(u, len);
	CHECK_EQ_INT(append(u, 0, len, 61 * 1024), 0);
	CHECK_EQ_INT(upload_offset(u), len);
	finish_ok(u, len);
}

static void test_touch_due(void)
{
	char id[UPLOAD_ID_LEN + 1];
	struct upload *u;
	CHECK_EQ_INT(upload_create(&bs, id), 0);
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	CHECK_EQ_INT(upload_touch_due(u, 60000), 1);
	CHECK_EQ_INT(upload_touch_due(u, 60000), 0);
	upload_release(u);
	/* remembered across requests while the upload is cached */
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	CHECK_EQ_INT(upload_touch_due(u, 60000), 0);
	CHECK_EQ_INT(upload_touch_due(u, 0), 1);
	upload_release(u);
	/* forgotten with the cache, as after a restart */
	forget_cache();
	CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
	CHECK_EQ_INT(upload_touch_due(u, 60000), 1);
	upload_release(u);
	CHECK_EQ_INT(upload_remove(&bs, id), 0);
}

#ifdef BERTH_TEST_HOOKS
/* Non-zero when the stored blob d exists and its bytes hash to d. */
static int blob_intact(const struct digest *d)
{
	struct hasher h;
	struct digest got;
	unsigned char tmp[65536];
	int64_t size;
	ssize_t n;
	int fd;
	if (blobstore_open(&bs, d, &fd, &size))
		return 1; /* absent: nothing stored, nothing corrupt */
	hasher_init(&h, d->alg);
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		hasher_update(&h, tmp, (size_t)n);
	close(fd);
	hasher_final(&h, &got);
	hasher_release(&h);
	return digest_eq(&got, d);
}

/*
 * Every step of a finish made to fail in turn (the file's fsync, the move
 * into place, the directory's fsync), then the rewind a refused request
 * does and the release: whatever is stored under the digest is the whole
 * blob. A directory fsync failing after the move once let the rewind
 * truncate the stored blob.
 */
static void test_finish_faults(void)
{
	const int64_t len = 3 * MiB + 17;
	for (int n = 1; n < 20; n++) {
		char id[UPLOAD_ID_LEN + 1];
		struct upload *u;
		struct fault_status st;
		struct digest d;
		int64_t size = -1;
		int rc;
		/* each round stores the same content: start without it */
		digest_pattern(len, &d);
		blobstore_remove(&bs, &d);
		CHECK_EQ_INT(upload_create(&bs, id), 0);
		CHECK_EQ_INT(upload_acquire(&bs, id, &u), 0);
		CHECK_EQ_INT(append(u, 0, len, 256 * 1024), 0);
		CHECK_EQ_INT(upload_flush(u), 0);
		fault_arm(n, 0, EIO, NULL);
		rc = upload_finish(u, &d, &size);
		fault_arm(0, 0, EIO, &st);
		if (rc)
			upload_rewind(u);
		upload_release(u);
		CHECK(blob_intact(&d));
		upload_remove(&bs, id);
		if (!st.failed_at) {
			CHECK_EQ_INT(rc, 0);
			CHECK(n > 2); /* at least the fsync and the move were swept */
			return;
		}
		CHECK(rc != 0);
	}
	CHECK(0); /* a finish never takes 20 steps */
}
#endif

int main(void)
{
	struct buf root = BUF_INIT;
	if (t_scratch(&base, "upload"))
		return 1;
	buf_addf(&root, "%s/probe", base.buf);
	{
		int fd = open(root.buf, O_WRONLY | O_CREAT | O_EXCL, 0600);
		can_reserve = fd >= 0 && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, MiB) == 0;
		if (fd >= 0)
			close(fd);
		unlink(root.buf);
	}
	if (!can_reserve)
		fprintf(stderr, "no fallocate here: reservations are not checked\n");
	buf_reset(&root);
	buf_addf(&root, "%s/data", base.buf);
	CHECK_EQ_INT(blobstore_init(&bs, root.buf), 0);
	test_append_resume_finish();
	test_reserved_space();
	test_crash_leftover();
	test_digest_mismatch();
#ifdef BERTH_TEST_HOOKS
	test_finish_faults();
#endif
	test_rewind();
	test_long_body();
	test_touch_due();
	blobstore_release(&bs);
	t_rmtree(base.buf);
	buf_release(&root);
	buf_release(&base);
	return t_done();
}
