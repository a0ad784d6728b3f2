/* digest: digest grammar and EVP-based streaming hashes. */
#include "digest.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

static const struct {
	const char *name;
	size_t hexlen;
} algs[] = {
	[DIGEST_SHA256] = { "sha256", 64 },
	[DIGEST_SHA512] = { "sha512", 128 },
};

const char *digest_alg_name(enum digest_alg alg)
{
	return algs[alg].name;
}

size_t digest_hex_len(enum digest_alg alg)
{
	return algs[alg].hexlen;
}

int digest_parsen(const char *s, size_t len, struct digest *out)
{
	const char *colon = memchr(s, ':', len);
	if (!colon)
		return E_DIGEST_INVALID;
	size_t alen = (size_t)(colon - s);
	const char *hex = colon + 1;
	size_t hlen = len - alen - 1;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		if (strlen(algs[i].name) != alen || memcmp(s, algs[i].name, alen))
			continue;
		if (hlen != algs[i].hexlen)
			return E_DIGEST_INVALID;
		for (size_t j = 0; j < hlen; j++) {
			char c = hex[j];
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				return E_DIGEST_INVALID;
		}
		out->alg = (enum digest_alg)i;
		memcpy(out->hex, hex, hlen);
		out->hex[hlen] = '\0';
		return 0;
	}
	return E_DIGEST_INVALID;
}

int digest_parse(const char *s, struct digest *out)
{
	return digest_parsen(s, strnlen(s, DIGEST_STR_MAX + 1), out);
}

char *digest_str(const struct digest *d, char *out)
{
	snprintf(out, DIGEST_STR_MAX, "%s:%s", algs[d->alg].name, d->hex);
	return out;
}

int digest_eq(const struct digest *a, const struct digest *b)
{
	return a->alg == b->alg && !strcmp(a->hex, b->hex);
}

static const EVP_MD *md_of(enum digest_alg alg)
{
	return alg == DIGEST_SHA512 ? EVP_sha512() : EVP_sha256();
}

void hasher_init(struct hasher *h, enum digest_alg alg)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, md_of(alg), NULL) != 1)
		die("cannot initialise %s", algs[alg].name);
	h->ctx = ctx;
	h->alg = alg;
}

void hasher_update(struct hasher *h, const void *data, size_t len)
{
	if (len && EVP_DigestUpdate(h->ctx, data, len) != 1)
		die("digest update failed");
}

void hasher_final(struct hasher *h, struct digest *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	static const char hexd[] = "0123456789abcdef";
	if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1)
		die("digest final failed");
	out->alg = h->alg;
	for (unsigned int i = 0; i < n; i++) {
		out->hex[2 * i] = hexd[md[i] >> 4];
		out->hex[2 * i + 1] = hexd[md[i] & 15];
	}
	out->hex[2 * n] = '\0';
}

void hasher_copy(struct hasher *dst, const struct hasher *src)
{
	if (!dst->ctx)
		dst->ctx = EVP_MD_CTX_new();
	if (!dst->ctx || EVP_MD_CTX_copy_ex(dst->ctx, src->ctx) != 1)
		die("digest copy failed");
	dst->alg = src->alg;
}

void hasher_release(struct hasher *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

void digest_of(enum digest_alg alg, const void *data, size_t len, struct digest *out)
{
	struct hasher h;
	hasher_init(&h, alg);
	hasher_update(&h, data, len);
	hasher_final(&h, out);
	hasher_release(&h);
}
