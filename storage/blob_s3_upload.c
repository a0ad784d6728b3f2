/*
 * blob_s3_upload: one request's part of an S3 upload: read the tail back,
 * hash and buffer the body, send parts, and end with a new state (PATCH)
 * or the finished blob (PUT).
 */
#include <stdlib.h>
#include <string.h>

#include "blob_s3_internal.h"
#include "err.h"
#include "log.h"
#include "xalloc.h"

struct blob_s3_upload {
	struct blob_s3 *b;
	struct blob_s3_state st; /* as persisted, advanced by what this request sent */
	struct buf target;       /* the multipart upload's key, blobs/uploaded/<id> */
	char *pend;              /* the tail read back, then body bytes not yet in a part */
	size_t plen, palloc;     /* plen < part_size between calls */
	uint64_t written;        /* body bytes since the handle was opened or last committed */
	int loaded;              /* the tail is in pend */
	int lost;                /* the store no longer has the upload: only hashing goes on */
	int err;                 /* the first error: every later call returns it */
};

int blob_s3_upload_open(struct blob_s3 *b, const char *state, size_t len,
			struct blob_s3_upload **out)
{
	struct blob_s3_state st;
	*out = NULL;
	int rc = blob_s3_state_decode(state, len, &st);
	if (rc)
		return rc;
	struct blob_s3_upload *u = xcalloc(1, sizeof(*u));
	u->b = b;
	u->st = st;
	buf_init(&u->target, 0);
	blob_s3_key_upload_data(st.id, &u->target);
	u->loaded = st.offset == st.parts_bytes;
	*out = u;
	return 0;
}

void blob_s3_upload_free(struct blob_s3_upload *u)
{
	if (!u)
		return;
	blob_s3_state_release(&u->st);
	buf_release(&u->target);
	free(u->pend);
	free(u);
}

uint64_t blob_s3_upload_size(const struct blob_s3_upload *u)
{
	return u->st.offset;
}

/* Makes room for need bytes in pend: small uploads stay small, none exceeds a part. */
static void reserve(struct blob_s3_upload *u, size_t need)
{
	if (need <= u->palloc)
		return;
	size_t n = u->palloc ? 2 * u->palloc : 64 * 1024;
	if (n < need)
		n = need;
	if (n > u->b->part_size)
		n = u->b->part_size;
	u->pend = xrealloc(u->pend, n);
	u->palloc = n;
}

struct tail_sink {
	struct blob_s3_upload *u;
	size_t want;
};

static int tail_in(void *ctx, const void *data, size_t len)
{
	struct tail_sink *t = ctx;
	struct blob_s3_upload *u = t->u;
	if (len > t->want - u->plen)
		return 1; /* longer than the state says: not the tail it recorded */
	memcpy(u->pend + u->plen, data, len);
	u->plen += len;
	return 0;
}

/* Reads the tail the state recorded into pend and checks it is that tail. */
static int load_tail(struct blob_s3_upload *u)
{
	struct buf key = BUF_INIT;
	struct tail_sink t = { u, (size_t)(u->st.offset - u->st.parts_bytes) };
	struct s3_object_info info;
	struct digest d;
	reserve(u, t.want);
	blob_s3_key_tail(u->st.id, u->st.tail_slot, &key);
	int rc = s3_get(u->b->s3, key.buf, 0, UINT64_MAX, tail_in, &t, &info);
	if (rc == E_BLOB_UNKNOWN) {
		rc = E_BLOB_UPLOAD_UNKNOWN; /* cancelled or finished by another request */
	} else if (rc == E_IO || (!rc && u->plen != t.want)) {
		rc = E_BLOB_UPLOAD_INVALID;
	} else if (!rc) {
		digest_of(DIGEST_SHA256, u->pend, u->plen, &d);
		if (strcmp(d.hex, u->st.tail_sha))
			rc = E_BLOB_UPLOAD_INVALID; /* a tail another request wrote from the same state */
	}
	if (rc) {
		log_warn("s3 upload %s: reading its tail \"%s\" failed (%d)", u->st.id, key.buf, rc);
		u->plen = 0;
	}
	u->loaded = !rc;
	buf_release(&key);
	return rc;
}

/* Sends pend as the next part, creating the multipart upload with the first. */
static int send_part(struct blob_s3_upload *u)
{
	struct s3_part p;
	if (u->st.nparts >= BLOB_S3_PARTS_MAX) {
		log_warn("s3 upload %s: more than %d parts of %zu bytes", u->st.id, BLOB_S3_PARTS_MAX,
			 u->b->part_size);
		return E_BLOB_UPLOAD_INVALID;
	}
	if (!u->st.mpu_id) {
		int rc = s3_mpu_create(u->b->s3, u->target.buf, &u->st.mpu_id);
		if (rc)
			return rc;
	}
	int rc = s3_mpu_put_part(u->b->s3, u->target.buf, u->st.mpu_id, (int)u->st.nparts + 1,
				 u->pend, u->plen, NULL, &p);
	if (rc)
		return rc;
	blob_s3_state_add_part(&u->st, &p, u->plen);
	u->plen = 0;
	return 0;
}

static int fail(struct blob_s3_upload *u, int rc)
{
	if (rc && !u->err)
		u->err = rc;
	return rc;
}

/*
 * An upload the store no longer has is not an error yet: a finish whose
 * answer was lost may have stored the blob, which only the retried
 * finish can tell (recover()). Until then the body is hashed, not kept.
 */
static int lose(struct blob_s3_upload *u, int rc)
{
	if (rc != E_BLOB_UPLOAD_UNKNOWN)
		return fail(u, rc);
	u->lost = 1;
	u->plen = 0;
	return 0;
}

int blob_s3_upload_write(struct blob_s3_upload *u, const void *data, size_t len)
{
	const char *p = data;
	if (u->err)
		return u->err;
	if (!u->loaded && !u->lost && len && lose(u, load_tail(u)))
		return u->err;
	while (len) {
		size_t take = u->b->part_size - u->plen;
		if (take > len || u->lost)
			take = len;
		if (!u->lost) {
			reserve(u, u->plen + take);
			memcpy(u->pend + u->plen, p, take);
			u->plen += take;
		}
		blob_s3_sha_update(&u->st.sha, p, take);
		u->st.offset += take;
		u->written += take;
		p += take;
		len -= take;
		if (!u->lost && u->plen == u->b->part_size && lose(u, send_part(u)))
			return u->err;
	}
	return 0;
}

int blob_s3_upload_commit(struct blob_s3_upload *u, struct buf *state)
{
	struct buf key = BUF_INIT;
	struct digest d;
	int rc = u->err ? u->err : u->lost ? E_BLOB_UPLOAD_UNKNOWN : 0;
	if (rc || !u->written)
		goto out;
	if (u->plen >= S3_MIN_PART_SIZE && (rc = send_part(u)))
		goto out;
	if (u->plen) {
		/* the other slot: the persisted state's tail stays intact until the new state replaces it */
		int slot = !u->st.tail_slot;
		digest_of(DIGEST_SHA256, u->pend, u->plen, &d);
		blob_s3_key_tail(u->st.id, slot, &key);
		if ((rc = s3_put(u->b->s3, key.buf, u->pend, u->plen, d.hex)))
			goto out;
		u->st.tail_slot = slot;
		memcpy(u->st.tail_sha, d.hex, sizeof(u->st.tail_sha));
	}
out:
	if (!fail(u, rc)) {
		blob_s3_state_encode(&u->st, state);
		u->written = 0;
	}
	buf_release(&key);
	return rc;
}

struct hash_sink {
	struct hasher h;
};

static int hash_in(void *ctx, const void *data, size_t len)
{
	hasher_update(&((struct hash_sink *)ctx)->h, data, len);
	return 0;
}

/*
 * The store no longer has the upload: a finish before this one may have
 * stored the blob and lost its answer. Success only if the blob it would
 * have stored is there with want's content: a digest key is checked by
 * the store on PUT, a completed multipart upload is read back and hashed
 * (once, on this rare path) since another body may have completed it.
 */
static int recover(struct blob_s3_upload *u, const struct digest *want, struct buf *key)
{
	struct buf k = BUF_INIT;
	struct hash_sink hs;
	struct digest got;
	int rc;
	if (u->st.mpu_id) {
		buf_add(&k, u->target.buf, u->target.len);
		hasher_init(&hs.h, DIGEST_SHA256);
		rc = s3_get(u->b->s3, k.buf, 0, UINT64_MAX, hash_in, &hs, NULL);
		hasher_final(&hs.h, &got);
		hasher_release(&hs.h);
		if (!rc && strcmp(got.hex, want->hex)) {
			log_warn("s3 upload %s: completed before with other content", u->st.id);
			rc = E_BLOB_UNKNOWN;
		}
	} else {
		blob_s3_digest_key(want, &k);
		rc = s3_head(u->b->s3, k.buf, NULL);
	}
	if (rc == E_BLOB_UNKNOWN)
		rc = E_BLOB_UPLOAD_UNKNOWN;
	if (!rc)
		buf_add(key, k.buf, k.len);
	buf_release(&k);
	return rc;
}

/* Stores the verified content: one PUT, or the last part and the completion. */
static int store(struct blob_s3_upload *u, const struct digest *want, struct buf *key)
{
	int rc;
	if (!u->st.mpu_id) {
		struct buf k = BUF_INIT;
		blob_s3_digest_key(want, &k);
		rc = s3_put(u->b->s3, k.buf, u->pend, u->plen, want->hex);
		if (!rc)
			buf_add(key, k.buf, k.len);
		buf_release(&k);
		return rc;
	}
	if (u->plen && (rc = send_part(u)))
		return rc;
	rc = s3_mpu_complete(u->b->s3, u->target.buf, u->st.mpu_id, u->st.parts, u->st.nparts, NULL);
	if (!rc)
		buf_add(key, u->target.buf, u->target.len);
	return rc;
}

static void delete_tails(struct blob_s3_upload *u)
{
	struct buf key = BUF_INIT;
	for (int slot = 0; slot < 2; slot++) {
		buf_reset(&key);
		blob_s3_key_tail(u->st.id, slot, &key);
		int rc = s3_delete(u->b->s3, key.buf);
		if (rc)
			log_warn("s3 upload %s: deleting \"%s\" failed (%d), left as garbage", u->st.id,
				 key.buf, rc);
	}
	buf_release(&key);
}

int blob_s3_upload_finish(struct blob_s3_upload *u, const struct digest *want, struct buf *key,
			  uint64_t *size)
{
	char hex[65];
	int rc = u->err;
	if (rc)
		return rc;
	if (want->alg != DIGEST_SHA256)
		return fail(u, E_UNSUPPORTED);
	if (!u->loaded && !u->lost && lose(u, load_tail(u)))
		return u->err;
	/* the running hash covers every byte, even when the store lost the upload */
	blob_s3_sha_peek(&u->st.sha, hex);
	if (strcmp(hex, want->hex))
		return fail(u, E_DIGEST_INVALID);
	rc = u->lost ? E_BLOB_UPLOAD_UNKNOWN : store(u, want, key);
	if (rc == E_BLOB_UPLOAD_UNKNOWN)
		rc = recover(u, want, key);
	if (rc)
		return fail(u, rc);
	delete_tails(u);
	*size = u->st.offset;
	u->err = E_INTERNAL; /* spent */
	return 0;
}
