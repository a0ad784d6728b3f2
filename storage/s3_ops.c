/* s3_ops: the S3 verbs (objects, multipart uploads, listings, presigning) over the request engine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "err.h"
#include "s3_internal.h"
#include "xalloc.h"

static void info_from(const struct s3_resp *resp, struct s3_object_info *info)
{
	if (!info)
		return;
	info->size = resp->has_size ? resp->total_size : 0;
	memcpy(info->etag, resp->etag, sizeof(info->etag));
}

static int put(struct s3 *s, const char *key, const struct s3_kv *q, size_t nq, const void *data,
	       size_t len, int fd, uint64_t off, uint64_t flen, const char *sha256_hex,
	       char etag[S3_ETAG_MAX])
{
	struct s3_req r = { .method = "PUT", .key = key, .query = q, .nquery = nq, .fd = fd };
	struct s3_resp resp;
	struct digest d;
	if (fd >= 0) {
		r.fd_off = off;
		r.fd_len = flen;
		r.payload_hash = sha256_hex ? sha256_hex : S3_UNSIGNED_PAYLOAD;
	} else {
		/* a zero-length body still needs a non-NULL pointer to count as a body */
		r.body = data ? data : "";
		r.body_len = len;
		if (!sha256_hex) {
			digest_of(DIGEST_SHA256, data, len, &d);
			sha256_hex = d.hex;
		}
		r.payload_hash = sha256_hex;
	}
	int rc = s3_request(s, &r, &resp);
	if (!rc && etag)
		memcpy(etag, resp.etag, S3_ETAG_MAX);
	s3_resp_release(&resp);
	return rc;
}

int s3_put(struct s3 *s, const char *key, const void *data, size_t len, const char *sha256_hex)
{
	return put(s, key, NULL, 0, data, len, -1, 0, 0, sha256_hex, NULL);
}

int s3_put_fd(struct s3 *s, const char *key, int fd, uint64_t offset, uint64_t len,
	      const char *sha256_hex)
{
	if (fd < 0)
		return E_IO;
	return put(s, key, NULL, 0, NULL, 0, fd, offset, len, sha256_hex, NULL);
}

int s3_head(struct s3 *s, const char *key, struct s3_object_info *info)
{
	struct s3_req r = { .method = "HEAD", .key = key, .fd = -1, .head = 1 };
	struct s3_resp resp;
	int rc = s3_request(s, &r, &resp);
	if (!rc)
		info_from(&resp, info);
	s3_resp_release(&resp);
	return rc;
}

int s3_get(struct s3 *s, const char *key, uint64_t first, uint64_t len, s3_write_fn write,
	   void *ctx, struct s3_object_info *info)
{
	return s3_get_told(s, key, first, len, NULL, write, ctx, info);
}

int s3_get_told(struct s3 *s, const char *key, uint64_t first, uint64_t len, s3_head_fn on_head,
		s3_write_fn write, void *ctx, struct s3_object_info *info)
{
	struct s3_req r = {
		.method = "GET",
		.key = key,
		.fd = -1,
		.sink = write,
		.sink_ctx = ctx,
		.on_head = on_head,
		.range_first = first,
		.range_len = len,
		.ranged = first != 0 || len != UINT64_MAX,
	};
	struct s3_resp resp;
	if (!len) {
		/* a Range cannot say "no bytes": the object's existence and size come from HEAD */
		struct s3_object_info tmp;
		int rc = s3_head(s, key, &tmp);
		if (!rc && first > tmp.size)
			rc = E_RANGE_INVALID;
		if (!rc && info)
			*info = tmp;
		if (!rc && on_head)
			on_head(ctx, &tmp, 1);
		return rc;
	}
	if (len != UINT64_MAX && first > UINT64_MAX - len)
		return E_RANGE_INVALID;
	int rc = s3_request(s, &r, &resp);
	if (!rc)
		info_from(&resp, info);
	s3_resp_release(&resp);
	return rc;
}

int s3_delete(struct s3 *s, const char *key)
{
	struct s3_req r = { .method = "DELETE", .key = key, .fd = -1 };
	struct s3_resp resp;
	int rc = s3_request(s, &r, &resp);
	s3_resp_release(&resp);
	/* a retried DELETE whose first try went through finds nothing: that is success too */
	return rc == E_BLOB_UNKNOWN ? 0 : rc;
}

int s3_mpu_create(struct s3 *s, const char *key, char **upload_id)
{
	const struct s3_kv q[] = { { "uploads", "" } };
	struct s3_req r = { .method = "POST", .key = key, .query = q, .nquery = 1, .fd = -1 };
	struct s3_resp resp;
	*upload_id = NULL;
	int rc = s3_request(s, &r, &resp);
	if (!rc && s3xml_upload_id(resp.body.buf, resp.body.len, upload_id)) {
		snprintf(s3_error_slot()->message, sizeof(s3_error_slot()->message),
			 "malformed InitiateMultipartUploadResult");
		rc = E_STORE;
	}
	s3_resp_release(&resp);
	return rc;
}

static int part(struct s3 *s, const char *key, const char *upload_id, int number, const void *data,
		size_t len, int fd, uint64_t off, uint64_t flen, const char *sha, struct s3_part *p)
{
	char num[16];
	if (number < 1 || number > 10000)
		return E_BLOB_UPLOAD_INVALID;
	snprintf(num, sizeof(num), "%d", number);
	const struct s3_kv q[] = { { "partNumber", num }, { "uploadId", upload_id } };
	p->number = number;
	p->etag[0] = '\0';
	int rc = put(s, key, q, 2, data, len, fd, off, flen, sha, p->etag);
	if (!rc && !p->etag[0]) {
		snprintf(s3_error_slot()->message, sizeof(s3_error_slot()->message),
			 "part stored without an ETag");
		rc = E_STORE;
	}
	return rc;
}

int s3_mpu_put_part(struct s3 *s, const char *key, const char *upload_id, int number,
		    const void *data, size_t len, const char *sha256_hex, struct s3_part *p)
{
	return part(s, key, upload_id, number, data, len, -1, 0, 0, sha256_hex, p);
}

int s3_mpu_put_part_fd(struct s3 *s, const char *key, const char *upload_id, int number, int fd,
		       uint64_t offset, uint64_t len, const char *sha256_hex, struct s3_part *p)
{
	if (fd < 0)
		return E_IO;
	return part(s, key, upload_id, number, NULL, 0, fd, offset, len, sha256_hex, p);
}

/* Appends s with XML's special characters escaped. */
static void xml_escape(struct buf *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': buf_adds(out, "&amp;"); break;
		case '<': buf_adds(out, "&lt;"); break;
		case '>': buf_adds(out, "&gt;"); break;
		case '"': buf_adds(out, "&quot;"); break;
		default: buf_addch(out, *s);
		}
	}
}

int s3_mpu_complete(struct s3 *s, const char *key, const char *upload_id,
		    const struct s3_part *parts, size_t nparts, struct s3_object_info *info)
{
	const struct s3_kv q[] = { { "uploadId", upload_id } };
	struct buf body = BUF_INIT;
	struct s3_resp resp;
	struct digest d;
	struct s3xml_error e;
	char *etag = NULL;
	buf_adds(&body, "<CompleteMultipartUpload>");
	for (size_t i = 0; i < nparts; i++) {
		buf_addf(&body, "<Part><PartNumber>%d</PartNumber><ETag>\"", parts[i].number);
		xml_escape(&body, parts[i].etag);
		buf_adds(&body, "\"</ETag></Part>");
	}
	buf_adds(&body, "</CompleteMultipartUpload>");
	digest_of(DIGEST_SHA256, body.buf, body.len, &d);
	struct s3_req r = { .method = "POST", .key = key, .query = q, .nquery = 1, .fd = -1,
			    .body = body.buf, .body_len = body.len, .payload_hash = d.hex };
	int rc = s3_request(s, &r, &resp);
	int attempts = s3_last_error()->attempts;
	if (!rc) {
		/* S3 may answer 200 and still fail: the body says which */
		int x = s3xml_complete(resp.body.buf, resp.body.len, &etag, &e);
		struct s3_last_error *le = s3_error_slot();
		if (x == 1) {
			memcpy(le->code, e.code, sizeof(e.code));
			memcpy(le->message, e.message, sizeof(e.message));
			rc = !strcmp(e.code, "NoSuchUpload") ? E_BLOB_UPLOAD_UNKNOWN : E_STORE;
		} else if (x) {
			snprintf(le->message, sizeof(le->message), "malformed CompleteMultipartUploadResult");
			rc = E_STORE;
		} else if (info) {
			info->size = 0;
			snprintf(info->etag, sizeof(info->etag), "%s", etag);
		}
	}
	if (rc == E_BLOB_UPLOAD_UNKNOWN && attempts > 1 && !s3_head(s, key, info)) {
		/* a retry after a completion that went through but whose answer was lost */
		rc = 0;
	}
	free(etag);
	buf_release(&body);
	s3_resp_release(&resp);
	return rc;
}

int s3_mpu_abort(struct s3 *s, const char *key, const char *upload_id)
{
	const struct s3_kv q[] = { { "uploadId", upload_id } };
	struct s3_req r = { .method = "DELETE", .key = key, .query = q, .nquery = 1, .fd = -1 };
	struct s3_resp resp;
	int rc = s3_request(s, &r, &resp);
	s3_resp_release(&resp);
	return rc;
}

int s3_list(struct s3 *s, const char *prefix, const char *token, unsigned max_keys,
	    struct s3xml_list *out)
{
	struct buf full = BUF_INIT;
	char max[16];
	struct s3_kv q[4];
	size_t nq = 0, plen = strlen(s3_prefix(s));
	struct s3_resp resp;
	memset(out, 0, sizeof(*out));
	if (max_keys == 0 || max_keys > 1000)
		max_keys = 1000;
	snprintf(max, sizeof(max), "%u", max_keys);
	buf_addf(&full, "%s%s", s3_prefix(s), prefix ? prefix : "");
	q[nq++] = (struct s3_kv){ "list-type", "2" };
	q[nq++] = (struct s3_kv){ "max-keys", max };
	if (full.len)
		q[nq++] = (struct s3_kv){ "prefix", full.buf };
	if (token && *token)
		q[nq++] = (struct s3_kv){ "continuation-token", token };
	struct s3_req r = { .method = "GET", .key = NULL, .query = q, .nquery = nq, .fd = -1 };
	int rc = s3_request(s, &r, &resp);
	if (!rc && s3xml_list(resp.body.buf, resp.body.len, out))
		rc = E_STORE;
	for (size_t i = 0; !rc && i < out->count; i++) {
		char *k = out->objects[i].key;
		/* the store answered for our prefix: a key outside it is a broken answer */
		if (strncmp(k, s3_prefix(s), plen) || !k[plen]) {
			rc = E_STORE;
			break;
		}
		memmove(k, k + plen, strlen(k + plen) + 1);
	}
	if (rc) {
		s3xml_list_release(out);
		if (rc == E_STORE && !s3_last_error()->message[0])
			snprintf(s3_error_slot()->message, sizeof(s3_error_slot()->message),
				 "malformed ListBucketResult");
	}
	buf_release(&full);
	s3_resp_release(&resp);
	return rc;
}

int s3_presign_get(struct s3 *s, const char *key, unsigned expires, struct buf *url)
{
	return s3_presign(s, key, expires, url);
}
