/*
 * Unit tests for storage/store: the interface the registry uses, on a real
 * data directory in a scratch directory and only through store.h: an
 * upload's exclusive use, the rewind of a refused request, the digest
 * check and the link at finish; a one-shot upload that goes unless
 * finished; blob readers at any offset; mounts with a filter; the one
 * manifest write path with its bytes read back from wherever they live;
 * tag moves reported to the actor; deletes.
 */
#include <string.h>

#include "err.h"
#include "store.h"
#include "t.h"

static struct store *st;

#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_CONFIG "application/vnd.oci.image.config.v1+json"

/* Reads every byte of rd through the ranged reader, in pieces of step. */
static void read_all(struct store_reader *rd, size_t step, struct buf *out)
{
	char tmp[64];
	for (int64_t off = 0; off < rd->size;) {
		size_t n = 0;
		CHECK_EQ_INT(store_reader_read(rd, off, tmp, step < sizeof(tmp) ? step : sizeof(tmp), &n), 0);
		if (!n)
			break;
		buf_add(out, tmp, n);
		off += (int64_t)n;
	}
}

/* Pushes data to repo as a blob through a resumable upload, in two requests; its digest into d. */
static void push_blob(const char *repo, const char *data, struct digest *d)
{
	char id[STORE_UPLOAD_ID_LEN + 1];
	struct store_upload *u, *other;
	size_t half = strlen(data) / 2;
	digest_of(DIGEST_SHA256, data, strlen(data), d);
	CHECK_EQ_INT(store_upload_create(st, repo, id), 0);
	CHECK_EQ_INT(store_upload_id_check(id), 0);
	CHECK_EQ_INT(store_upload_acquire(st, repo, id, &u, NULL), 0);
	/* one request at a time */
	CHECK_EQ_INT(store_upload_acquire(st, repo, id, &other, NULL), E_UPLOAD_BUSY);
	CHECK_EQ_INT(store_upload_acquire(st, "other/repo", id, &other, NULL), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(store_upload_write(u, data, half), 0);
	CHECK_EQ_INT(store_upload_flush(u), 0);
	store_upload_touch(u);
	store_upload_release(u, 0);

	/* a refused request leaves the upload where it found it */
	CHECK_EQ_INT(store_upload_acquire(st, repo, id, &u, NULL), 0);
	CHECK_EQ_INT(store_upload_offset(u), (long long)half);
	CHECK_EQ_INT(store_upload_write(u, "garbage", 7), 0);
	CHECK_EQ_INT(store_upload_flush(u), 0);
	store_upload_release(u, 1);
	int64_t size = -1;
	CHECK_EQ_INT(store_upload_status(st, repo, id, &size), 0);
	CHECK_EQ_INT(size, (long long)half);

	CHECK_EQ_INT(store_upload_acquire(st, repo, id, &u, NULL), 0);
	CHECK_EQ_INT(store_upload_write(u, data + half, strlen(data) - half), 0);
	struct digest wrong = *d;
	wrong.hex[0] = wrong.hex[0] == '0' ? '1' : '0';
	CHECK_EQ_INT(store_upload_finish(u, &wrong), E_DIGEST_INVALID);
	CHECK_EQ_INT(store_upload_finish(u, d), 0);
	store_upload_release(u, 0);
	CHECK_EQ_INT(store_upload_status(st, repo, id, &size), E_BLOB_UPLOAD_UNKNOWN);
}

static void test_uploads_and_blobs(void)
{
	const char *data = "the bytes of a layer, long enough to be split in two requests";
	struct store_reader rd;
	struct buf got = BUF_INIT;
	struct digest d;
	int64_t size = 0;
	push_blob("team/app", data, &d);
	CHECK_EQ_INT(store_blob_stat(st, "team/app", &d, &size), 0);
	CHECK_EQ_INT(size, (long long)strlen(data));
	CHECK_EQ_INT(store_blob_stat(st, "team/other", &d, NULL), E_BLOB_UNKNOWN);

	CHECK_EQ_INT(store_blob_open(st, "team/app", &d, &rd, NULL), 0);
	CHECK_EQ_INT(rd.size, (long long)strlen(data));
	read_all(&rd, 7, &got);
	CHECK_STR(got.buf, data);
	store_reader_release(&rd);

	/* a one-shot upload not finished leaves nothing behind */
	struct store_upload *u;
	char id[STORE_UPLOAD_ID_LEN + 1];
	int64_t osize;
	CHECK_EQ_INT(store_upload_oneshot(st, "team/app", &u, NULL), 0);
	memcpy(id, store_upload_id(u), sizeof(id));
	CHECK_EQ_INT(store_upload_write(u, "x", 1), 0);
	store_upload_release(u, 1);
	CHECK_EQ_INT(store_upload_status(st, "team/app", id, &osize), E_BLOB_UPLOAD_UNKNOWN);

	/* mounts: refused by the filter, then taken from the only repository linking it */
	CHECK_EQ_INT(store_blob_mount(st, "team/copy", &d, NULL, NULL, NULL), 0);
	CHECK_EQ_INT(store_blob_stat(st, "team/copy", &d, NULL), 0);
	CHECK_EQ_INT(store_blob_mount(st, "team/copy2", &d, "team/none", NULL, NULL), STORE_MOUNT_FALLBACK);
	CHECK_EQ_INT(store_blob_unlink(st, "team/copy", &d), 0);
	CHECK_EQ_INT(store_blob_unlink(st, "team/copy", &d), E_BLOB_UNKNOWN);
	buf_release(&got);
}

static int refuse_all(void *ctx, const char *repo)
{
	(void)ctx;
	(void)repo;
	return 0;
}

static int audit_seen;

static int describe(void *ctx, struct store_audit *ev)
{
	const struct store_tag_change *ch = ctx;
	audit_seen = ch->count; /* the change is known when the event is described */
	ev->action = "push";
	ev->repo = "team/app";
	return 0;
}

static void test_manifests(void)
{
	struct buf m = BUF_INIT, got = BUF_INIT;
	struct store_tag_change change;
	struct store_actor actor = { .name = "alice", .how = "push", .change = &change, .audit = describe,
				     .audit_ctx = &change };
	struct store_put_result res;
	struct store_manifest sm;
	struct store_reader rd;
	struct reference ref = { 0 };
	struct digest cfg;
	char ds[DIGEST_STR_MAX];
	push_blob("team/app", "{\"config\":true}", &cfg);
	CHECK_EQ_INT(store_blob_mount(st, "team/none", &cfg, NULL, refuse_all, NULL), STORE_MOUNT_FALLBACK);
	buf_addf(&m, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\","
		 "\"size\":15},\"layers\":[]}", OCI_MANIFEST, OCI_CONFIG, digest_str(&cfg, ds));

	/* a digest that does not match is refused before anything is parsed */
	struct digest other = cfg;
	CHECK_EQ_INT(store_manifest_put(st, "team/app", DIGEST_SHA256, &other, m.buf, m.len, OCI_MANIFEST, "v1",
					&actor, &res, NULL), E_DIGEST_INVALID);
	store_put_result_release(&res);
	CHECK_EQ_INT(store_manifest_put(st, "team/app", DIGEST_SHA256, NULL, "{}", 2, OCI_MANIFEST, "v1", &actor,
					&res, NULL), E_MANIFEST_INVALID);
	store_put_result_release(&res);
	/* a blob the repository does not link */
	CHECK_EQ_INT(store_manifest_put(st, "team/empty", DIGEST_SHA256, NULL, m.buf, m.len, OCI_MANIFEST, "v1",
					&actor, &res, NULL), E_MANIFEST_BLOB_UNKNOWN);
	store_put_result_release(&res);

	CHECK_EQ_INT(store_manifest_put(st, "team/app", DIGEST_SHA256, NULL, m.buf, m.len, OCI_MANIFEST, "v1", &actor,
					&res, NULL), 0);
	CHECK_EQ_INT(change.count, 1);
	CHECK_EQ_INT(audit_seen, 1);
	CHECK_STR(res.media_type, OCI_MANIFEST);
	CHECK_EQ_INT(res.has_subject, 0);

	/* read back by tag, wherever the bytes live */
	strcpy(ref.tag, "v1");
	CHECK_EQ_INT(store_manifest_get(st, "team/app", &ref, &sm, &rd, NULL), 0);
	CHECK(digest_eq(&sm.digest, &res.digest));
	CHECK_STR(sm.media_type, OCI_MANIFEST);
	CHECK_EQ_INT(rd.size, (long long)m.len);
	read_all(&rd, 10, &got);
	CHECK(got.len == m.len && !memcmp(got.buf, m.buf, m.len));
	store_reader_release(&rd);
	store_manifest_release(&sm);

	/* and as a blob of the repository */
	buf_reset(&got);
	CHECK_EQ_INT(store_blob_open(st, "team/app", &res.digest, &rd, NULL), 0);
	read_all(&rd, 64, &got);
	CHECK(got.len == m.len && !memcmp(got.buf, m.buf, m.len));
	store_reader_release(&rd);

	/* the tag goes, the manifest stays */
	CHECK_EQ_INT(store_manifest_delete(st, "team/app", &ref, &actor), 0);
	CHECK_EQ_INT(change.count, 1);
	CHECK_EQ_INT(store_manifest_get(st, "team/app", &ref, &sm, &rd, NULL), E_MANIFEST_UNKNOWN);
	store_reader_release(&rd);
	store_manifest_release(&sm);
	ref.is_digest = 1;
	ref.digest = res.digest;
	CHECK_EQ_INT(store_manifest_delete(st, "team/app", &ref, NULL), 0);
	CHECK_EQ_INT(store_manifest_delete(st, "team/app", &ref, NULL), E_MANIFEST_UNKNOWN);
	store_put_result_release(&res);
	buf_release(&m);
	buf_release(&got);
}

int main(void)
{
	struct buf base = BUF_INIT, root = BUF_INIT;
	struct buf why = BUF_INIT;
	if (t_scratch(&base, "store"))
		return 1;
	buf_addf(&root, "%s/data", base.buf);
	CHECK_EQ_INT(store_open(root.buf, &st), 0);
	CHECK_EQ_INT(store_ready(st, &why), 0);
	CHECK_EQ_INT(store_push_allowed(st), 0); /* no reserve in this process: never refused */
	test_uploads_and_blobs();
	test_manifests();
	store_close(st);
	t_rmtree(base.buf);
	buf_release(&why);
	buf_release(&root);
	buf_release(&base);
	return t_done();
}
