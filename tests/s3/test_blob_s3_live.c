/*
 * test_blob_s3_live: the S3 blob store (storage/blob_s3.h) against a real
 * engine, run by tests/engines/run-s3-tests like test_s3_live; without
 * S3_ENDPOINT and the keys in the environment it exits 77 (skipped).
 *
 * Each request of an upload runs on a fresh module instance that knows
 * only the state the previous request returned, as another node of a
 * cluster would; every test works under its own random prefix, so what it
 * lists is only its own.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "blob_s3.h"
#include "blob_s3_internal.h"
#include "digest.h"
#include "err.h"
#include "live.h"
#include "rand.h"
#include "t.h"
#include "xalloc.h"

#define MIB (1024u * 1024)

static struct blob_s3_config cfg;
static char run_prefix[64];

#define now_s live_now_s

/* A fresh instance ("another node") on this run's prefix plus sub. */
static struct blob_s3 *node(const char *sub, const struct blob_s3_config *over)
{
	static char prefixes[16][128];
	static int n;
	struct blob_s3_config c = over ? *over : cfg;
	struct blob_s3 *b = NULL;
	char *p = prefixes[n++ % 16];
	snprintf(p, sizeof(prefixes[0]), "%s%s", run_prefix, sub);
	c.s3.prefix = p;
	if (blob_s3_open(&c, &b))
		abort();
	return b;
}

static char *random_data(size_t n, struct digest *d)
{
	char *data = xmalloc(n ? n : 1);
	rand_bytes(data, n);
	if (d)
		digest_of(DIGEST_SHA256, data, n, d);
	return data;
}

/*
 * One PATCH on a fresh node: the body in uneven pieces, then commit. On
 * success the state (the metadata row) is replaced; on failure it is kept.
 */
static int patch(const char *sub, const struct blob_s3_config *over, struct buf *state,
		 const char *data, size_t len)
{
	struct blob_s3 *b = node(sub, over);
	struct blob_s3_upload *u = NULL;
	struct buf next = BUF_INIT;
	int rc = blob_s3_upload_open(b, state->buf, state->len, &u);
	for (size_t off = 0, piece = 1; !rc && off < len; piece = piece * 3 + 4093) {
		size_t n = piece % (512 * 1024) + 1;
		if (n > len - off)
			n = len - off;
		rc = blob_s3_upload_write(u, data + off, n);
		off += n;
	}
	if (!rc)
		rc = blob_s3_upload_commit(u, &next);
	if (!rc) {
		buf_reset(state);
		buf_add(state, next.buf, next.len);
	}
	blob_s3_upload_free(u);
	buf_release(&next);
	blob_s3_free(b);
	return rc;
}

/* The final PUT on a fresh node: its body, then finish. */
static int put_final(const char *sub, const struct buf *state, const char *data, size_t len,
		     const struct digest *want, struct buf *key, uint64_t *size)
{
	struct blob_s3 *b = node(sub, NULL);
	struct blob_s3_upload *u = NULL;
	int rc = blob_s3_upload_open(b, state->buf, state->len, &u);
	if (!rc)
		rc = blob_s3_upload_write(u, data, len);
	if (!rc)
		rc = blob_s3_upload_finish(u, want, key, size);
	blob_s3_upload_free(u);
	blob_s3_free(b);
	return rc;
}

static uint64_t offset_of(const struct buf *state)
{
	uint64_t off = UINT64_MAX;
	CHECK_EQ_INT(blob_s3_upload_offset(state->buf, state->len, &off), 0);
	return off;
}

/* Keys under sub/ + under (all pages), one per line, into out; returns the count. */
static size_t list(const char *sub, const char *under, struct buf *out)
{
	struct blob_s3 *b = node(sub, NULL);
	char *token = NULL;
	size_t n = 0;
	buf_reset(out);
	do {
		struct s3xml_list l;
		if (s3_list(b->s3, under, token, 0, &l)) {
			CHECK(!"listing failed");
			break;
		}
		free(token);
		token = l.next_token ? xstrdup(l.next_token) : NULL;
		for (size_t i = 0; i < l.count; i++, n++)
			buf_addf(out, "%s\n", l.objects[i].key);
		s3xml_list_release(&l);
	} while (token);
	blob_s3_free(b);
	return n;
}

static int to_buf(void *ctx, const void *data, size_t len)
{
	buf_add(ctx, data, len);
	return 0;
}

/* Checks the stored blob at key is exactly data. */
static void check_blob(const char *sub, const char *key, const char *data, size_t len)
{
	struct blob_s3 *b = node(sub, NULL);
	struct buf got = BUF_INIT;
	uint64_t size = 0;
	CHECK_EQ_INT(blob_s3_stat(b, key, &size), 0);
	CHECK_EQ_INT(size, len);
	CHECK_EQ_INT(blob_s3_read(b, key, 0, UINT64_MAX, to_buf, &got, &size), 0);
	CHECK(got.len == len && !memcmp(got.buf, data, len));
	buf_release(&got);
	blob_s3_free(b);
}

/* A small blob in one request: one PUT to its digest key, nothing else left. */
static void test_small(void)
{
	struct buf state = BUF_INIT, key = BUF_INIT, want_key = BUF_INIT, keys = BUF_INIT;
	struct digest d;
	uint64_t size = 0;
	char *data = random_data(1000, &d);
	blob_s3_upload_begin(&state);
	CHECK_EQ_INT(offset_of(&state), 0);
	CHECK_EQ_INT(put_final("small/", &state, data, 1000, &d, &key, &size), 0);
	blob_s3_digest_key(&d, &want_key);
	CHECK_STR(key.buf, want_key.buf);
	CHECK_EQ_INT(size, 1000);
	check_blob("small/", key.buf, data, 1000);
	buf_addch(&want_key, '\n');
	CHECK_EQ_INT(list("small/", NULL, &keys), 1);
	CHECK_STR(keys.buf, want_key.buf);

	/* an empty blob, and a blob put whole */
	struct digest empty;
	digest_of(DIGEST_SHA256, "", 0, &empty);
	buf_reset(&state);
	buf_reset(&key);
	blob_s3_upload_begin(&state);
	CHECK_EQ_INT(put_final("small/", &state, NULL, 0, &empty, &key, &size), 0);
	CHECK_EQ_INT(size, 0);
	check_blob("small/", key.buf, "", 0);
	struct blob_s3 *b = node("small/", NULL);
	struct digest other;
	buf_reset(&key);
	digest_of(DIGEST_SHA256, "put whole", 9, &other);
	CHECK_EQ_INT(blob_s3_put(b, &other, "put whole", 9, &key), 0);
	check_blob("small/", key.buf, "put whole", 9);
	buf_reset(&key);
	CHECK_EQ_INT(blob_s3_put(b, &other, "put wrong", 9, &key), E_STORE); /* the store checks the hash */
	CHECK_EQ_INT(key.len, 0);
	blob_s3_digest_key(&other, &key);
	CHECK_EQ_INT(blob_s3_delete(b, key.buf), 0);
	CHECK_EQ_INT(blob_s3_stat(b, key.buf, &size), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(blob_s3_delete(b, key.buf), 0);
	/* keys that are not blob keys never reach the store */
	CHECK_EQ_INT(blob_s3_stat(b, "uploads/x/tail.0", &size), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(blob_s3_stat(b, "blobs/sha256/ab/cd", &size), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(blob_s3_delete(b, "blobs/uploaded/../../x"), E_BLOB_UNKNOWN);
	blob_s3_free(b);
	free(data);
	buf_release(&state);
	buf_release(&key);
	buf_release(&want_key);
	buf_release(&keys);
}

/* 20 MiB in uneven PATCHes, each on another node, then the blob read back in ranges. */
static void test_many_nodes(void)
{
	const size_t sizes[] = { 1, 3 * MIB, 7 * MIB, 4 * MIB, 1, 2 * MIB };
	const size_t total = 20 * MIB;
	struct buf state = BUF_INIT, key = BUF_INIT, keys = BUF_INIT, got = BUF_INIT, url = BUF_INIT;
	struct digest d;
	uint64_t size = 0, off = 0;
	char *data = random_data(total, &d);
	blob_s3_upload_begin(&state);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CHECK_EQ_INT(patch("many/", NULL, &state, data + off, sizes[i]), 0);
		off += sizes[i];
		CHECK_EQ_INT(offset_of(&state), off);
		/* at most the two tail slots, never a finished blob before the end */
		CHECK(list("many/", NULL, &keys) <= 2);
		CHECK(!strstr(keys.buf, "blobs/"));
	}
	/* 1 + 3 + 7 MiB made a full part and a tail, 4 MiB more a part at the PATCH's end */
	struct blob_s3_state st;
	CHECK_EQ_INT(blob_s3_state_decode(state.buf, state.len, &st), 0);
	CHECK_EQ_INT(st.nparts, 2);
	CHECK_EQ_INT(st.offset - st.parts_bytes, 2 * MIB + 1);
	blob_s3_state_release(&st);
	CHECK_EQ_INT(put_final("many/", &state, data + off, total - off, &d, &key, &size), 0);
	CHECK_EQ_INT(size, total);
	CHECK(!strncmp(key.buf, "blobs/uploaded/", 15));
	check_blob("many/", key.buf, data, total);
	/* the tails are gone: the blob is all that is left */
	CHECK_EQ_INT(list("many/", NULL, &keys), 1);

	struct blob_s3 *b = node("many/", NULL);
	const uint64_t ranges[][2] = { { 0, 1 }, { 8 * MIB - 5, 10 }, { 13 * MIB, 3 * MIB + 7 },
				       { total - 3, 3 }, { total - 3, 100 } };
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		uint64_t first = ranges[i][0], want = ranges[i][1];
		if (first + want > total)
			want = total - first;
		buf_reset(&got);
		CHECK_EQ_INT(blob_s3_read(b, key.buf, first, ranges[i][1], to_buf, &got, &size), 0);
		CHECK(got.len == want && !memcmp(got.buf, data + first, want));
		CHECK_EQ_INT(size, total);
	}
	CHECK_EQ_INT(blob_s3_read(b, key.buf, total, 1, to_buf, &got, NULL), E_RANGE_INVALID);

	/* a presigned GET fetched by plain libcurl */
	CHECK_EQ_INT(blob_s3_presign(b, key.buf, 60, &url), 0);
	CHECK_EQ_INT(blob_s3_presign(b, key.buf, 7 * 86400 + 1, &got), E_CONFIG);
	buf_reset(&got);
	long status = live_plain_get(url.buf, &got);
	CHECK_EQ_INT(status, 200);
	CHECK(got.len == total && !memcmp(got.buf, data, total));
	blob_s3_free(b);
	free(data);
	buf_release(&state);
	buf_release(&key);
	buf_release(&keys);
	buf_release(&got);
	buf_release(&url);
}

#include "blob_live_more.c"

int main(void)
{
	int skip = live_config(&cfg.s3, "blob", run_prefix, sizeof(run_prefix));
	if (skip)
		return skip;
	curl_global_init(CURL_GLOBAL_DEFAULT);

	test_small();
	test_many_nodes();
	test_mismatch();
	test_cancel();
	test_interrupted();
	test_finish_retried();
	test_one_handle();
	test_store_down();
	test_bad_state();
	curl_global_cleanup();
	return t_done();
}
