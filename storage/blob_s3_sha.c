/*
 * blob_s3_sha: a running SHA-256 whose state can be written out and read
 * back on another node, so an upload's hash continues where the last
 * request stopped without reading its bytes again.
 *
 * OpenSSL 3's EVP interface cannot export a digest's state, so this file
 * uses the low-level SHA256_CTX, whose fields (eight chaining words, the
 * bit count, the unfinished block) are public in <openssl/sha.h>. Those
 * functions are deprecated in OpenSSL 3 but present and using the same
 * accelerated block function as EVP (SHA-NI/AVX2, several times the speed
 * of portable C, which matters on the path every pushed byte takes).
 * OPENSSL_SUPPRESS_DEPRECATED is defined for this one file only, so the
 * rest of berth still gets the warnings. The exported text does not
 * depend on OpenSSL's struct layout: should the low-level API go away, a
 * SHA-256 of our own can read the same states.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "blob_s3_internal.h"
#include "xalloc.h"

static const char hexdig[] = "0123456789abcdef";

static SHA256_CTX *ctx_of(const struct blob_s3_sha *h)
{
	return h->ctx;
}

void blob_s3_sha_init(struct blob_s3_sha *h)
{
	h->ctx = xmalloc(sizeof(SHA256_CTX));
	SHA256_Init(h->ctx);
}

void blob_s3_sha_update(struct blob_s3_sha *h, const void *data, size_t len)
{
	if (len)
		SHA256_Update(ctx_of(h), data, len);
}

void blob_s3_sha_peek(const struct blob_s3_sha *h, char hex[65])
{
	SHA256_CTX copy = *ctx_of(h);
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256_Final(md, &copy);
	for (size_t i = 0; i < sizeof(md); i++) {
		hex[2 * i] = hexdig[md[i] >> 4];
		hex[2 * i + 1] = hexdig[md[i] & 15];
	}
	hex[64] = '\0';
}

uint64_t blob_s3_sha_length(const struct blob_s3_sha *h)
{
	const SHA256_CTX *c = ctx_of(h);
	return (((uint64_t)c->Nh << 32) | c->Nl) >> 3;
}

void blob_s3_sha_export(const struct blob_s3_sha *h, struct buf *out)
{
	const SHA256_CTX *c = ctx_of(h);
	for (int i = 0; i < 8; i++)
		buf_addf(out, "%08x", (unsigned)c->h[i]);
	buf_addch(out, ' ');
	/* the unfinished block is kept as bytes in data[], whatever the host's byte order */
	const unsigned char *block = (const unsigned char *)c->data;
	if (!c->num)
		buf_addch(out, '-');
	for (unsigned i = 0; i < c->num; i++) {
		buf_addch(out, hexdig[block[i] >> 4]);
		buf_addch(out, hexdig[block[i] & 15]);
	}
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Decodes n bytes from 2n lowercase hex digits; 0 or -1. */
static int unhex(const char *s, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int blob_s3_sha_import(struct blob_s3_sha *h, const char *words, size_t wlen, const char *block,
		       size_t blen, uint64_t length)
{
	unsigned char w[32];
	size_t num = (size_t)(length % SHA256_CBLOCK);
	if (wlen != 64 || unhex(words, 32, w))
		return -1;
	if (num ? blen != 2 * num : blen != 1 || block[0] != '-')
		return -1;
	if (length > UINT64_MAX >> 3)
		return -1;
	SHA256_CTX c;
	SHA256_Init(&c);
	for (int i = 0; i < 8; i++)
		c.h[i] = (SHA_LONG)w[4 * i] << 24 | (SHA_LONG)w[4 * i + 1] << 16 |
			 (SHA_LONG)w[4 * i + 2] << 8 | w[4 * i + 3];
	if (num && unhex(block, num, (unsigned char *)c.data))
		return -1;
	c.num = (unsigned)num;
	c.Nl = (SHA_LONG)(length << 3);
	c.Nh = (SHA_LONG)(length >> 29);
	*ctx_of(h) = c;
	return 0;
}

void blob_s3_sha_release(struct blob_s3_sha *h)
{
	free(h->ctx);
	h->ctx = NULL;
}
