/*
 * test_s3_live: the S3 client against a real engine (tests/engines/run-s3-tests
 * starts OpenStack Swift with s3api and runs this). Reads S3_ENDPOINT,
 * S3_REGION, S3_BUCKET, S3_PATH_STYLE, AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY; without them it exits 77 (skipped), so a plain
 * `meson test` passes without an engine. With S3_ENGINE (the start/stop
 * script) and S3_ENGINE_DIR it also stops, freezes and restarts the engine
 * to check the retries and the errors of a store that is down.
 *
 * Every object goes under a fresh random prefix, so runs never see each
 * other's keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "digest.h"
#include "err.h"
#include "live.h"
#include "rand.h"
#include "s3.h"
#include "t.h"
#include "xalloc.h"

static struct s3_config cfg;
static char run_prefix[64];

#define now_s live_now_s

/* A client on the test bucket under this run's prefix plus sub ("" for none). */
static struct s3 *client(const char *sub, struct s3_config *over)
{
	static char prefixes[8][128];
	static int n;
	struct s3_config c = over ? *over : cfg;
	struct s3 *s = NULL;
	char *p = prefixes[n++ % 8];
	snprintf(p, sizeof(prefixes[0]), "%s%s", run_prefix, sub);
	c.prefix = p;
	if (s3_open(&c, &s))
		abort();
	return s;
}

static void fill_random(char *b, size_t n)
{
	rand_bytes(b, n);
}

static void sha_hex(const void *data, size_t len, char out[65])
{
	struct digest d;
	digest_of(DIGEST_SHA256, data, len, &d);
	memcpy(out, d.hex, 65);
}

/* A sink that appends to a struct buf. */
static int to_buf(void *ctx, const void *data, size_t len)
{
	buf_add(ctx, data, len);
	return 0;
}

/* A sink that only hashes and counts: a large GET holds nothing. */
struct hashsink {
	struct hasher h;
	uint64_t n;
};

static int to_hash(void *ctx, const void *data, size_t len)
{
	struct hashsink *hs = ctx;
	hasher_update(&hs->h, data, len);
	hs->n += len;
	return 0;
}

static int refuse(void *ctx, const void *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return 1;
}

/* What s3_get_told() told, and whether data came before it. */
struct told_rec {
	int calls, sized, data_first;
	uint64_t size, n;
};

static void on_told(void *ctx, const struct s3_object_info *info, int sized)
{
	struct told_rec *t = ctx;
	t->calls++;
	t->sized = sized;
	t->size = info->size;
}

static int told_data(void *ctx, const void *data, size_t len)
{
	struct told_rec *t = ctx;
	(void)data;
	t->data_first |= !t->calls;
	t->n += len;
	return 0;
}

/* The answer's headers are told once, before any data: an object's size without a HEAD. */
static void check_told(struct s3 *s, const char *key, uint64_t first, uint64_t len, uint64_t size)
{
	struct told_rec t = { 0 };
	CHECK_EQ_INT(s3_get_told(s, key, first, len, on_told, told_data, &t, NULL), 0);
	CHECK_EQ_INT(t.calls, 1);
	CHECK(t.sized && !t.data_first);
	CHECK_EQ_INT(t.size, size); /* the whole object's, also for a range */
	CHECK_EQ_INT(t.n, len == UINT64_MAX ? size - first : len);
}

static void test_objects(void)
{
	struct s3 *s = client("obj/", NULL);
	struct s3_object_info info;
	struct buf got = BUF_INIT;
	const char *msg = "hello, object store";
	const char *odd = "dir/a b+c=d&e%f~(g)\xc3\xa9!*'";
	char sha[65];

	CHECK_EQ_INT(s3_put(s, "small", msg, strlen(msg), NULL), 0);
	CHECK_EQ_INT(s3_head(s, "small", &info), 0);
	CHECK_EQ_INT(info.size, strlen(msg));
	CHECK(strlen(info.etag) == 32); /* a single PUT's ETag is the MD5 */
	CHECK_EQ_INT(s3_get(s, "small", 0, UINT64_MAX, to_buf, &got, &info), 0);
	CHECK_STR(got.buf, msg);
	CHECK_EQ_INT(info.size, strlen(msg));
	buf_reset(&got);
	CHECK_EQ_INT(s3_get(s, "small", 7, 5, to_buf, &got, &info), 0);
	CHECK_STR(got.buf, "objec");
	CHECK_EQ_INT(info.size, strlen(msg)); /* the total, not the range */
	buf_reset(&got);
	CHECK_EQ_INT(s3_get(s, "small", 100, UINT64_MAX, to_buf, &got, NULL), E_RANGE_INVALID);
	CHECK_EQ_INT(s3_get(s, "small", 3, 0, to_buf, &got, &info), 0);
	CHECK_EQ_INT(got.len, 0);
	CHECK_EQ_INT(s3_get(s, "small", 0, UINT64_MAX, refuse, NULL, NULL), E_IO);
	check_told(s, "small", 0, UINT64_MAX, strlen(msg));
	check_told(s, "small", 7, 5, strlen(msg));

	/* the signed payload hash is checked by the store */
	sha_hex("other", 5, sha);
	CHECK_EQ_INT(s3_put(s, "bad-hash", msg, strlen(msg), sha), E_STORE);
	CHECK(s3_last_error()->http_status == 400 && s3_last_error()->code[0]);
	CHECK_EQ_INT(s3_last_error()->attempts, 1);
	CHECK_EQ_INT(s3_head(s, "bad-hash", NULL), E_BLOB_UNKNOWN);

	/* empty objects and keys that need encoding */
	CHECK_EQ_INT(s3_put(s, "empty", NULL, 0, NULL), 0);
	CHECK_EQ_INT(s3_head(s, "empty", &info), 0);
	CHECK_EQ_INT(info.size, 0);
	check_told(s, "empty", 0, UINT64_MAX, 0);
	CHECK_EQ_INT(s3_put(s, odd, msg, 5, NULL), 0);
	buf_reset(&got);
	CHECK_EQ_INT(s3_get(s, odd, 0, UINT64_MAX, to_buf, &got, NULL), 0);
	CHECK_STR(got.buf, "hello");

	/* missing objects */
	buf_reset(&got);
	CHECK_EQ_INT(s3_get(s, "missing", 0, UINT64_MAX, to_buf, &got, NULL), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(s3_last_error()->http_status, 404);
	CHECK_STR(s3_last_error()->code, "NoSuchKey");
	CHECK_EQ_INT(got.len, 0);
	struct told_rec none = { 0 };
	CHECK_EQ_INT(s3_get_told(s, "missing", 0, UINT64_MAX, on_told, told_data, &none, NULL), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(none.calls, 0); /* an error answer's headers are not told */
	CHECK_EQ_INT(s3_head(s, "missing", NULL), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(s3_delete(s, "small"), 0);
	CHECK_EQ_INT(s3_head(s, "small", NULL), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(s3_delete(s, "small"), 0);
	buf_release(&got);
	s3_free(s);
}

/* A scratch file of n random bytes; returns its fd and fills its SHA-256. */
static int scratch_file(size_t n, char sha[65], char **data_out)
{
	char path[] = "/tmp/berth-s3-XXXXXX";
	int fd = mkstemp(path);
	char *data = xmalloc(n);
	if (fd < 0)
		abort();
	unlink(path);
	fill_random(data, n);
	sha_hex(data, n, sha);
	for (size_t off = 0; off < n;) {
		ssize_t w = write(fd, data + off, n - off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	if (data_out)
		*data_out = data;
	else
		free(data);
	return fd;
}

static void test_fd_and_ranges(void)
{
	struct s3 *s = client("fd/", NULL);
	const size_t n = 7 * 1024 * 1024 + 13;
	char sha[65], *data;
	int fd = scratch_file(n, sha, &data);
	struct buf got = BUF_INIT;
	struct s3_object_info info;
	struct hashsink hs;
	struct digest d;

	/* the body is read with pread: the file position is irrelevant */
	lseek(fd, 0, SEEK_SET);
	CHECK_EQ_INT(s3_put_fd(s, "blob", fd, 0, n, sha), 0);
	CHECK_EQ_INT(s3_put_fd(s, "tail", fd, n - 100, 100, NULL), 0); /* unsigned payload */
	hasher_init(&hs.h, DIGEST_SHA256);
	hs.n = 0;
	CHECK_EQ_INT(s3_get(s, "blob", 0, UINT64_MAX, to_hash, &hs, &info), 0);
	hasher_final(&hs.h, &d);
	hasher_release(&hs.h);
	CHECK_EQ_INT(hs.n, n);
	CHECK_STR(d.hex, sha);
	CHECK_EQ_INT(info.size, n);

	const uint64_t ranges[][2] = { { 0, 10 }, { 1 << 20, 100 }, { n - 1, 1 }, { 5, n - 5 }, { n - 7, 1000 } };
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		uint64_t first = ranges[i][0], len = ranges[i][1];
		uint64_t want = first + len > n ? n - first : len;
		buf_reset(&got);
		CHECK_EQ_INT(s3_get(s, "blob", first, len, to_buf, &got, &info), 0);
		CHECK_EQ_INT(got.len, want);
		CHECK(got.len == want && !memcmp(got.buf, data + first, want));
		CHECK_EQ_INT(info.size, n);
	}
	buf_reset(&got);
	CHECK_EQ_INT(s3_get(s, "blob", 4096, UINT64_MAX, to_buf, &got, NULL), 0);
	CHECK(got.len == n - 4096 && !memcmp(got.buf, data + 4096, n - 4096));
	buf_reset(&got);
	CHECK_EQ_INT(s3_get(s, "tail", 0, UINT64_MAX, to_buf, &got, NULL), 0);
	CHECK(got.len == 100 && !memcmp(got.buf, data + n - 100, 100));
	CHECK_EQ_INT(s3_put_fd(s, "short", fd, n - 10, 20, NULL), E_IO); /* past the file's end */
	close(fd);
	free(data);
	buf_release(&got);
	s3_free(s);
}

static void test_multipart(void)
{
	struct s3 *s = client("mpu/", NULL);
	const size_t p1 = S3_MIN_PART_SIZE + 1000, p2 = 3 * 1024 * 1024 + 7;
	char sha1[65], sha2[65], *d1 = xmalloc(p1), *d2;
	int fd = scratch_file(p2, sha2, &d2);
	struct s3_part parts[2];
	struct s3_object_info info;
	char *id = NULL, *id2 = NULL;
	struct hashsink hs;
	struct hasher whole;
	struct digest want, got;

	fill_random(d1, p1);
	sha_hex(d1, p1, sha1);
	CHECK_EQ_INT(s3_mpu_create(s, "big", &id), 0);
	CHECK(id && *id);
	CHECK_EQ_INT(s3_mpu_put_part(s, "big", id, 1, d1, p1, sha1, &parts[0]), 0);
	CHECK_EQ_INT(s3_mpu_put_part_fd(s, "big", id, 2, fd, 0, p2, sha2, &parts[1]), 0);
	CHECK(parts[0].etag[0] && parts[1].etag[0]);
	CHECK_EQ_INT(s3_mpu_complete(s, "big", id, parts, 2, &info), 0);
	CHECK(info.etag[0]);
	hasher_init(&whole, DIGEST_SHA256);
	hasher_update(&whole, d1, p1);
	hasher_update(&whole, d2, p2);
	hasher_final(&whole, &want);
	hasher_release(&whole);
	hasher_init(&hs.h, DIGEST_SHA256);
	hs.n = 0;
	CHECK_EQ_INT(s3_get(s, "big", 0, UINT64_MAX, to_hash, &hs, &info), 0);
	hasher_final(&hs.h, &got);
	hasher_release(&hs.h);
	CHECK_EQ_INT(hs.n, p1 + p2);
	CHECK_EQ_INT(info.size, p1 + p2);
	CHECK_STR(got.hex, want.hex);
	/* a Range across the part boundary */
	struct buf b = BUF_INIT;
	CHECK_EQ_INT(s3_get(s, "big", p1 - 3, 6, to_buf, &b, NULL), 0);
	CHECK(b.len == 6 && !memcmp(b.buf, d1 + p1 - 3, 3) && !memcmp(b.buf + 3, d2, 3));
	buf_release(&b);

	/* a part under 5 MiB that is not the last: the store refuses the completion */
	CHECK_EQ_INT(s3_mpu_create(s, "small-parts", &id2), 0);
	CHECK_EQ_INT(s3_mpu_put_part(s, "small-parts", id2, 1, d1, 1024, NULL, &parts[0]), 0);
	CHECK_EQ_INT(s3_mpu_put_part(s, "small-parts", id2, 2, d1, 1024, NULL, &parts[1]), 0);
	CHECK_EQ_INT(s3_mpu_complete(s, "small-parts", id2, parts, 2, NULL), E_STORE);
	CHECK(s3_last_error()->code[0]);
	CHECK_EQ_INT(s3_mpu_abort(s, "small-parts", id2), 0);
	CHECK_EQ_INT(s3_mpu_abort(s, "small-parts", id2), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(s3_mpu_put_part(s, "small-parts", id2, 3, d1, 10, NULL, &parts[0]), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(s3_mpu_put_part(s, "small-parts", id2, 0, d1, 10, NULL, &parts[0]), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(s3_head(s, "small-parts", NULL), E_BLOB_UNKNOWN);
	free(id);
	free(id2);
	free(d1);
	free(d2);
	close(fd);
	s3_free(s);
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_listing(void)
{
	struct s3 *s = client("list/", NULL);
	struct s3 *outer = client("", NULL);
	const int n = 25;
	char key[64], *seen[64];
	int count = 0, pages = 0;
	char *token = NULL;

	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k/%03d", i);
		CHECK_EQ_INT(s3_put(s, key, key, strlen(key), NULL), 0);
	}
	CHECK_EQ_INT(s3_put(s, "other/x", "x", 1, NULL), 0);
	do {
		struct s3xml_list l;
		CHECK_EQ_INT(s3_list(s, "k/", token, 7, &l), 0);
		free(token);
		token = l.next_token ? xstrdup(l.next_token) : NULL;
		CHECK(l.count <= 7);
		for (size_t i = 0; i < l.count && count < 64; i++) {
			seen[count++] = xstrdup(l.objects[i].key);
			CHECK_EQ_INT(l.objects[i].size, 5);
		}
		s3xml_list_release(&l);
		pages++;
	} while (token && pages < 20);
	CHECK_EQ_INT(pages, 4);
	CHECK_EQ_INT(count, n);
	qsort(seen, (size_t)count, sizeof(seen[0]), key_cmp);
	for (int i = 0; i < count; i++) {
		snprintf(key, sizeof(key), "k/%03d", i);
		CHECK_STR(seen[i], key);
		free(seen[i]);
	}
	/* the configured prefix is applied and stripped; the outer client sees it */
	struct s3xml_list all;
	CHECK_EQ_INT(s3_list(s, NULL, NULL, 0, &all), 0);
	CHECK_EQ_INT(all.count, n + 1);
	CHECK(!all.next_token);
	s3xml_list_release(&all);
	CHECK_EQ_INT(s3_list(outer, "list/other/", NULL, 0, &all), 0);
	CHECK(all.count == 1 && !strcmp(all.objects[0].key, "list/other/x"));
	s3xml_list_release(&all);
	CHECK_EQ_INT(s3_list(s, "nothing-here/", NULL, 0, &all), 0);
	CHECK_EQ_INT(all.count, 0);
	s3xml_list_release(&all);
	s3_free(outer);
	s3_free(s);
}

static void test_presign_and_auth(void)
{
	struct s3 *s = client("presign/", NULL);
	struct buf url = BUF_INIT, got = BUF_INIT;
	const char *msg = "fetched without credentials";
	CHECK_EQ_INT(s3_put(s, "a b/c", msg, strlen(msg), NULL), 0);
	CHECK_EQ_INT(s3_presign_get(s, "a b/c", 60, &url), 0);
	CHECK_EQ_INT(live_plain_get(url.buf, &got), 200);
	CHECK_STR(got.buf, msg);
	/* one changed character of the signature: refused */
	url.buf[url.len - 1] = url.buf[url.len - 1] == '0' ? '1' : '0';
	buf_reset(&got);
	CHECK_EQ_INT(live_plain_get(url.buf, &got), 403);
	CHECK_EQ_INT(s3_presign_get(s, "a b/c", 0, &url), E_CONFIG);

	/* a wrong secret is an error of configuration: not retried */
	struct s3_config bad = cfg;
	bad.secret_key = "not-the-secret";
	struct s3 *b = client("presign/", &bad);
	CHECK_EQ_INT(s3_head(b, "a b/c", NULL), E_STORE);
	CHECK_EQ_INT(s3_put(b, "x", "x", 1, NULL), E_STORE);
	CHECK_EQ_INT(s3_last_error()->http_status, 403);
	CHECK_EQ_INT(s3_last_error()->attempts, 1);
	CHECK(s3_last_error()->code[0]);
	s3_free(b);

	/* a bucket that is not there: the store cannot hold anything, clients come back later */
	struct s3_config nobucket = cfg;
	nobucket.bucket = "berth-no-such-bucket";
	b = client("", &nobucket);
	CHECK_EQ_INT(s3_put(b, "x", "x", 1, NULL), E_STORE_UNAVAILABLE);
	CHECK_EQ_INT(s3_last_error()->http_status, 404);
	CHECK_STR(s3_last_error()->code, "NoSuchBucket");
	CHECK_EQ_INT(s3_last_error()->attempts, 1);
	s3_free(b);
	buf_release(&url);
	buf_release(&got);
	s3_free(s);
}

struct worker {
	struct s3 *s;
	int id, failures;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	char key[32], val[32];
	for (int i = 0; i < 15; i++) {
		struct buf got = BUF_INIT;
		snprintf(key, sizeof(key), "t%d/%d", w->id, i);
		snprintf(val, sizeof(val), "value %d %d", w->id, i);
		if (s3_put(w->s, key, val, strlen(val), NULL) ||
		    s3_get(w->s, key, 0, UINT64_MAX, to_buf, &got, NULL) || strcmp(got.buf, val))
			w->failures++;
		buf_release(&got);
	}
	return NULL;
}

/* One handle shared by threads (its pool hands each its own easy handle). */
static void test_threads(void)
{
	struct s3 *s = client("threads/", NULL);
	pthread_t th[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ s, i, 0 };
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(w[i].failures, 0);
	}
	s3_free(s);
}

/* the engine-level tests: throughput, a frozen and a stopped store */
#include "live_engine.c"

int main(void)
{
	int skip = live_config(&cfg, "test", run_prefix, sizeof(run_prefix));
	if (skip)
		return skip;
	curl_global_init(CURL_GLOBAL_DEFAULT);

	test_objects();
	test_fd_and_ranges();
	test_multipart();
	test_listing();
	test_presign_and_auth();
	test_threads();
	test_throughput();
	test_engine_down();
	curl_global_cleanup();
	return t_done();
}
