/* s3_sign: AWS Signature Version 4 (header and presigned URL) with OpenSSL's HMAC-SHA256. */
#include "s3_sign.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "xalloc.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

void s3_uri_encode(struct buf *out, const char *s, size_t len, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/'))
			continue;
		/* copy the unreserved run before this byte in one go */
		buf_add(out, s + run, i - run);
		char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
		buf_add(out, esc, 3);
		run = i + 1;
	}
	buf_add(out, s + run, len - run);
}

void s3_amz_date(time_t when, char out[S3_AMZ_DATE_LEN])
{
	struct tm tm;
	gmtime_r(&when, &tm);
	/* years past 9999 do not fit: not a date a request is signed with */
	if (strftime(out, S3_AMZ_DATE_LEN, "%Y%m%dT%H%M%SZ", &tm) != S3_AMZ_DATE_LEN - 1)
		die("date out of range for a signature");
}

static void hexify(char *out, const unsigned char *md, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * n] = '\0';
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)data, len, md);
	hexify(out, md, sizeof(md));
}

static void hmac(const void *key, size_t keylen, const char *data, size_t len,
		 unsigned char out[SHA256_DIGEST_LENGTH])
{
	unsigned int n = SHA256_DIGEST_LENGTH;
	if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, len, out, &n))
		die("HMAC-SHA256 failed");
}

/* Encoded (name, value) pairs, sortable. */
struct pair {
	struct buf name;
	struct buf value;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c = strcmp(x->name.buf, y->name.buf);
	return c ? c : strcmp(x->value.buf, y->value.buf);
}

static void pairs_free(struct pair *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf_release(&p[i].name);
		buf_release(&p[i].value);
	}
	free(p);
}

/* The canonical query of q plus extra (both unencoded), into out. */
static void canonical_query2(struct buf *out, const struct s3_kv *q, size_t nq,
			     const struct s3_kv *extra, size_t nextra)
{
	size_t n = nq + nextra;
	struct pair *p = xcalloc(n ? n : 1, sizeof(*p));
	for (size_t i = 0; i < n; i++) {
		const struct s3_kv *kv = i < nq ? &q[i] : &extra[i - nq];
		buf_init(&p[i].name, 0);
		buf_init(&p[i].value, 0);
		s3_uri_encode(&p[i].name, kv->name, strlen(kv->name), 0);
		s3_uri_encode(&p[i].value, kv->value, strlen(kv->value), 0);
	}
	qsort(p, n, sizeof(*p), pair_cmp);
	for (size_t i = 0; i < n; i++)
		buf_addf(out, "%s%s=%s", i ? "&" : "", p[i].name.buf, p[i].value.buf);
	pairs_free(p, n);
}

void s3_sign_canonical_query(struct buf *out, const struct s3_kv *query, size_t nquery)
{
	canonical_query2(out, query, nquery, NULL, 0);
}

/* Lowercase name; value trimmed with inner runs of spaces made one (SigV4's rule). */
static void header_pair(struct pair *p, const char *name, const char *value)
{
	const char *v = value, *end = value + strlen(value);
	buf_init(&p->name, 0);
	buf_init(&p->value, 0);
	for (const char *c = name; *c; c++)
		buf_addch(&p->name, (char)tolower((unsigned char)*c));
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (; v < end; v++) {
		if ((*v == ' ' || *v == '\t') && (v[1] == ' ' || v[1] == '\t'))
			continue;
		buf_addch(&p->value, *v == '\t' ? ' ' : *v);
	}
}

/*
 * Appends the canonical request to out and the signed header list to
 * signed_hdrs. presign: only host and the caller's headers are signed and
 * the X-Amz-* parameters in presign_q join the query.
 */
static void canonical(struct buf *out, struct buf *signed_hdrs, const struct s3_sign_req *req,
		      const struct s3_kv *presign_q, size_t npresign)
{
	char date[S3_AMZ_DATE_LEN];
	int presign = presign_q != NULL;
	size_t n = req->nheaders + (presign ? 1 : 3);
	struct pair *h = xcalloc(n, sizeof(*h));
	size_t k = 0;
	s3_amz_date(req->when, date);
	header_pair(&h[k++], "host", req->host);
	if (!presign) {
		header_pair(&h[k++], "x-amz-content-sha256", req->payload_hash);
		header_pair(&h[k++], "x-amz-date", date);
	}
	for (size_t i = 0; i < req->nheaders; i++)
		header_pair(&h[k++], req->headers[i].name, req->headers[i].value);
	qsort(h, n, sizeof(*h), pair_cmp);

	buf_addf(out, "%s\n", req->method);
	s3_uri_encode(out, req->path, strlen(req->path), 1);
	buf_addch(out, '\n');
	canonical_query2(out, req->query, req->nquery, presign_q, npresign);
	buf_addch(out, '\n');
	for (size_t i = 0; i < n; i++) {
		/* the same name twice would need joining with commas: callers never do that */
		assert(i == 0 || strcmp(h[i - 1].name.buf, h[i].name.buf) != 0);
		buf_addf(out, "%s:%s\n", h[i].name.buf, h[i].value.buf);
		buf_addf(signed_hdrs, "%s%s", i ? ";" : "", h[i].name.buf);
	}
	buf_addf(out, "\n%s\n%s", signed_hdrs->buf, presign ? S3_UNSIGNED_PAYLOAD : req->payload_hash);
	pairs_free(h, n);
}

static void scope(struct buf *out, const struct s3_sign_req *req)
{
	char date[S3_AMZ_DATE_LEN];
	s3_amz_date(req->when, date);
	buf_addf(out, "%.8s/%s/s3/aws4_request", date, req->region);
}

static void string_to_sign(struct buf *out, const struct s3_sign_req *req, const struct buf *creq)
{
	char date[S3_AMZ_DATE_LEN], hash[65];
	s3_amz_date(req->when, date);
	sha256_hex(creq->buf, creq->len, hash);
	buf_addf(out, ALGORITHM "\n%s\n", date);
	scope(out, req);
	buf_addf(out, "\n%s", hash);
}

/* hex signature of sts with the key derived from req's secret, date and region */
static void signature(char out[65], const struct s3_sign_req *req, const struct buf *sts)
{
	unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
	char date[S3_AMZ_DATE_LEN];
	struct buf secret = BUF_INIT;
	s3_amz_date(req->when, date);
	buf_addf(&secret, "AWS4%s", req->secret_key);
	hmac(secret.buf, secret.len, date, 8, a);
	hmac(a, sizeof(a), req->region, strlen(req->region), b);
	hmac(b, sizeof(b), "s3", 2, a);
	hmac(a, sizeof(a), "aws4_request", 12, b);
	hmac(b, sizeof(b), sts->buf, sts->len, a);
	hexify(out, a, sizeof(a));
	/* neither the secret nor a key derived from it is left in freed memory */
	OPENSSL_cleanse(secret.buf, secret.len);
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	buf_release(&secret);
}

void s3_sign_canonical_request(struct buf *out, const struct s3_sign_req *req)
{
	struct buf sh = BUF_INIT;
	canonical(out, &sh, req, NULL, 0);
	buf_release(&sh);
}

void s3_sign_string_to_sign(struct buf *out, const struct s3_sign_req *req)
{
	struct buf creq = BUF_INIT;
	s3_sign_canonical_request(&creq, req);
	string_to_sign(out, req, &creq);
	buf_release(&creq);
}

void s3_sign_authorization(struct buf *out, const struct s3_sign_req *req)
{
	struct buf creq = BUF_INIT, sh = BUF_INIT, sts = BUF_INIT;
	char sig[65];
	canonical(&creq, &sh, req, NULL, 0);
	string_to_sign(&sts, req, &creq);
	signature(sig, req, &sts);
	buf_addf(out, ALGORITHM " Credential=%s/", req->access_key);
	scope(out, req);
	buf_addf(out, ",SignedHeaders=%s,Signature=%s", sh.buf, sig);
	buf_release(&creq);
	buf_release(&sh);
	buf_release(&sts);
}

int s3_sign_presign(struct buf *out, const struct s3_sign_req *req, const char *scheme,
		    unsigned expires)
{
	struct buf cred = BUF_INIT, creq = BUF_INIT, sh = BUF_INIT, sts = BUF_INIT;
	struct buf hdrs = BUF_INIT, query = BUF_INIT;
	char date[S3_AMZ_DATE_LEN], exp[16], sig[65];
	if (expires < 1 || expires > 604800)
		return -1;
	s3_amz_date(req->when, date);
	snprintf(exp, sizeof(exp), "%u", expires);
	buf_addf(&cred, "%s/", req->access_key);
	scope(&cred, req);
	/* SignedHeaders must be known before the canonical request is built,
	 * and it is part of the query that request contains */
	{
		struct pair *h = xcalloc(req->nheaders + 1, sizeof(*h));
		header_pair(&h[0], "host", req->host);
		for (size_t i = 0; i < req->nheaders; i++)
			header_pair(&h[i + 1], req->headers[i].name, req->headers[i].value);
		qsort(h, req->nheaders + 1, sizeof(*h), pair_cmp);
		for (size_t i = 0; i <= req->nheaders; i++)
			buf_addf(&hdrs, "%s%s", i ? ";" : "", h[i].name.buf);
		pairs_free(h, req->nheaders + 1);
	}
	const struct s3_kv amz[] = {
		{ "X-Amz-Algorithm", ALGORITHM },
		{ "X-Amz-Credential", cred.buf },
		{ "X-Amz-Date", date },
		{ "X-Amz-Expires", exp },
		{ "X-Amz-SignedHeaders", hdrs.buf },
	};
	size_t namz = sizeof(amz) / sizeof(amz[0]);
	canonical(&creq, &sh, req, amz, namz);
	string_to_sign(&sts, req, &creq);
	signature(sig, req, &sts);
	canonical_query2(&query, req->query, req->nquery, amz, namz);
	buf_addf(out, "%s://%s", scheme, req->host);
	s3_uri_encode(out, req->path, strlen(req->path), 1);
	buf_addf(out, "?%s&X-Amz-Signature=%s", query.buf, sig);
	buf_release(&cred);
	buf_release(&creq);
	buf_release(&sh);
	buf_release(&sts);
	buf_release(&hdrs);
	buf_release(&query);
	return 0;
}
