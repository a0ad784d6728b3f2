/* blob_s3: the S3 blob store's handle, its keys, and the verbs on finished blobs. */
#include "blob_s3.h"

#include <stdlib.h>
#include <string.h>

#include "blob_s3_internal.h"
#include "err.h"
#include "xalloc.h"

#define PART_SIZE_MAX (512u * 1024 * 1024)

int blob_s3_open(const struct blob_s3_config *cfg, struct blob_s3 **out)
{
	size_t part = cfg->part_size ? cfg->part_size : BLOB_S3_PART_SIZE;
	struct s3 *s3 = NULL;
	*out = NULL;
	if (part < S3_MIN_PART_SIZE || part > PART_SIZE_MAX)
		return E_CONFIG;
	int rc = s3_open(&cfg->s3, &s3);
	if (rc)
		return rc;
	struct blob_s3 *b = xcalloc(1, sizeof(*b));
	b->s3 = s3;
	b->part_size = part;
	*out = b;
	return 0;
}

void blob_s3_free(struct blob_s3 *b)
{
	if (!b)
		return;
	s3_free(b->s3);
	free(b);
}

void blob_s3_digest_key(const struct digest *d, struct buf *key)
{
	buf_addf(key, "blobs/%s/%.2s/%s", digest_alg_name(d->alg), d->hex, d->hex);
}

void blob_s3_key_upload_data(const char *id, struct buf *out)
{
	buf_addf(out, "blobs/uploaded/%s", id);
}

void blob_s3_key_tail(const char *id, int slot, struct buf *out)
{
	buf_addf(out, "uploads/%s/tail.%d", id, slot);
}

static int lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

/* Whether key is one this module names blobs with. */
static int blob_key_valid(const char *key)
{
	static const char uploaded[] = "blobs/uploaded/";
	struct digest d;
	if (!strncmp(key, uploaded, sizeof(uploaded) - 1)) {
		const char *id = key + sizeof(uploaded) - 1;
		return strlen(id) == BLOB_S3_ID_LEN && lower_hex(id, BLOB_S3_ID_LEN);
	}
	/* blobs/<alg>/<2 hex>/<hex>: rebuilt from the digest it names, it must come out the same */
	if (strncmp(key, "blobs/", 6))
		return 0;
	const char *alg = key + 6, *slash = strchr(alg, '/');
	if (!slash || strlen(slash) < 4 || slash[3] != '/')
		return 0;
	struct buf s = BUF_INIT, again = BUF_INIT;
	buf_add(&s, alg, (size_t)(slash - alg));
	buf_addf(&s, ":%s", slash + 4);
	int ok = !digest_parse(s.buf, &d);
	if (ok) {
		blob_s3_digest_key(&d, &again);
		ok = !strcmp(again.buf, key);
	}
	buf_release(&s);
	buf_release(&again);
	return ok;
}

int blob_s3_stat(struct blob_s3 *b, const char *key, uint64_t *size)
{
	struct s3_object_info info;
	if (!blob_key_valid(key))
		return E_BLOB_UNKNOWN;
	int rc = s3_head(b->s3, key, &info);
	if (!rc)
		*size = info.size;
	return rc;
}

int blob_s3_read(struct blob_s3 *b, const char *key, uint64_t first, uint64_t len,
		 s3_write_fn write, void *ctx, uint64_t *size)
{
	return blob_s3_read_told(b, key, first, len, NULL, write, ctx, size);
}

int blob_s3_read_told(struct blob_s3 *b, const char *key, uint64_t first, uint64_t len, s3_head_fn on_head,
		      s3_write_fn write, void *ctx, uint64_t *size)
{
	struct s3_object_info info;
	if (!blob_key_valid(key))
		return E_BLOB_UNKNOWN;
	int rc = s3_get_told(b->s3, key, first, len, on_head, write, ctx, &info);
	if (!rc && size)
		*size = info.size;
	return rc;
}

int blob_s3_delete(struct blob_s3 *b, const char *key)
{
	if (!blob_key_valid(key))
		return E_BLOB_UNKNOWN;
	return s3_delete(b->s3, key);
}

int blob_s3_presign(struct blob_s3 *b, const char *key, unsigned expires, struct buf *url)
{
	if (!blob_key_valid(key))
		return E_BLOB_UNKNOWN;
	return s3_presign_get(b->s3, key, expires ? expires : BLOB_S3_PRESIGN_EXPIRY, url);
}

int blob_s3_put(struct blob_s3 *b, const struct digest *d, const void *data, size_t len,
		struct buf *key)
{
	struct buf k = BUF_INIT;
	blob_s3_digest_key(d, &k);
	/* only a SHA-256 digest is also the payload hash; others are hashed by the client */
	int rc = s3_put(b->s3, k.buf, data, len, d->alg == DIGEST_SHA256 ? d->hex : NULL);
	if (!rc)
		buf_add(key, k.buf, k.len);
	buf_release(&k);
	return rc;
}

void blob_s3_upload_begin(struct buf *state)
{
	struct blob_s3_state st;
	struct buf text = BUF_INIT;
	blob_s3_state_new(&st);
	blob_s3_state_encode(&st, &text);
	buf_add(state, text.buf, text.len);
	buf_release(&text);
	blob_s3_state_release(&st);
}

int blob_s3_upload_offset(const char *state, size_t len, uint64_t *offset)
{
	struct blob_s3_state st;
	int rc = blob_s3_state_decode(state, len, &st);
	if (!rc) {
		*offset = st.offset;
		blob_s3_state_release(&st);
	}
	return rc;
}

int blob_s3_upload_cancel(struct blob_s3 *b, const char *state, size_t len)
{
	struct blob_s3_state st;
	struct buf key = BUF_INIT;
	int rc = blob_s3_state_decode(state, len, &st);
	if (rc)
		return rc;
	if (st.mpu_id) {
		blob_s3_key_upload_data(st.id, &key);
		rc = s3_mpu_abort(b->s3, key.buf, st.mpu_id);
		if (rc == E_BLOB_UPLOAD_UNKNOWN) /* aborted before, or completed: nothing to abort */
			rc = 0;
	}
	/* both slots: a failed request may have left a tail in the one the state does not use */
	for (int slot = 0; slot < 2 && !rc; slot++) {
		buf_reset(&key);
		blob_s3_key_tail(st.id, slot, &key);
		rc = s3_delete(b->s3, key.buf);
	}
	buf_release(&key);
	blob_s3_state_release(&st);
	return rc;
}
