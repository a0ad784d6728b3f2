/*
 * blob_s3_backend_list: the S3 backend's side of garbage collection and
 * fsck: every object under blobs/ and uploads/ (ListObjectsV2, paged)
 * told apart by the key layout of blob_s3.h, the name an upload's objects
 * carry, and deleting what a listing showed.
 *
 * It reaches under blob_s3's interface (blob_s3_internal.h) for two
 * things only that module owns: its S3 client, for listings and deletes
 * of keys that are no blob (tails), and the state codec, for the id that
 * names an upload's keys. Only those two prefixes are listed, so a bucket
 * shared with other data under an empty prefix is never walked whole.
 */
#include <stdlib.h>
#include <string.h>

#include "blob_s3_backend.h"
#include "blob_s3_internal.h"
#include "err.h"
#include "xalloc.h"

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* "<32 hex>" followed by rest exactly; the id copied to id. */
static int upload_id(const char *s, const char *rest, char id[BLOB_S3_ID_LEN + 1])
{
	if (strlen(s) != BLOB_S3_ID_LEN + strlen(rest) || !is_hex(s, BLOB_S3_ID_LEN) ||
	    strcmp(s + BLOB_S3_ID_LEN, rest))
		return 0;
	memcpy(id, s, BLOB_S3_ID_LEN);
	id[BLOB_S3_ID_LEN] = '\0';
	return 1;
}

/* Tells what key is by blob_s3's layout (see blob_s3.h); e's strings point into key, id and d. */
static void classify(const char *key, struct blob_entry *e, struct digest *d, char id[BLOB_S3_ID_LEN + 1])
{
	static const char uploaded[] = "blobs/uploaded/", uploads[] = "uploads/";
	if (!strncmp(key, uploaded, sizeof(uploaded) - 1)) {
		if (upload_id(key + sizeof(uploaded) - 1, "", id)) {
			e->location = key;
			e->upload = id;
		}
		return;
	}
	if (!strncmp(key, uploads, sizeof(uploads) - 1)) {
		const char *rest = key + sizeof(uploads) - 1;
		if (upload_id(rest, "/tail.0", id) || upload_id(rest, "/tail.1", id))
			e->upload = id;
		return;
	}
	/* blobs/<alg>/<2 hex>/<hex>: the key rebuilt from the digest must come out the same */
	if (strncmp(key, "blobs/", 6))
		return;
	const char *alg = key + 6, *slash = strchr(alg, '/');
	if (!slash || strlen(slash) < 5 || slash[3] != '/')
		return;
	struct buf s = BUF_INIT, again = BUF_INIT;
	buf_add(&s, alg, (size_t)(slash - alg));
	buf_addf(&s, ":%s", slash + 4);
	if (!digest_parse(s.buf, d)) {
		blob_s3_digest_key(d, &again);
		if (!strcmp(again.buf, key))
			e->digest = d;
	}
	buf_release(&s);
	buf_release(&again);
}

static int list_prefix(struct s3 *s3, const char *prefix, int (*cb)(void *ctx, const struct blob_entry *e),
		       void *ctx)
{
	char *token = NULL;
	int rc = 0;
	do {
		struct s3xml_list page = { 0 };
		if ((rc = s3_list(s3, prefix, token, 1000, &page)))
			break;
		free(token);
		token = page.next_token ? xstrdup(page.next_token) : NULL;
		for (size_t i = 0; i < page.count && !rc; i++) {
			char id[BLOB_S3_ID_LEN + 1];
			struct digest d;
			struct blob_entry e = { .label = page.objects[i].key, .size = (int64_t)page.objects[i].size };
			classify(e.label, &e, &d, id);
			rc = cb(ctx, &e);
		}
		s3xml_list_release(&page);
	} while (!rc && token);
	free(token);
	return rc;
}

int blob_s3_backend_list(struct blob_backend *be, int (*cb)(void *ctx, const struct blob_entry *e), void *ctx)
{
	struct s3 *s3 = blob_s3_backend_client(be)->s3;
	int rc = list_prefix(s3, "blobs/", cb, ctx);
	if (!rc)
		rc = list_prefix(s3, "uploads/", cb, ctx);
	return rc < 0 ? blob_s3_backend_note(be, rc) : rc;
}

int blob_s3_backend_drop(struct blob_backend *be, const char *label)
{
	/* only berth's own two prefixes: a label is never a way to other data of the bucket */
	if (strncmp(label, "blobs/", 6) && strncmp(label, "uploads/", 8))
		return E_BLOB_UNKNOWN;
	return blob_s3_backend_note(be, s3_delete(blob_s3_backend_client(be)->s3, label));
}

int blob_s3_backend_up_name(struct blob_backend *be, const void *state, size_t state_len, struct buf *name)
{
	struct blob_s3_state st;
	(void)be;
	int rc = blob_s3_state_decode((const char *)state, state_len, &st);
	if (!rc) {
		buf_adds(name, st.id);
		blob_s3_state_release(&st);
	}
	return rc;
}
