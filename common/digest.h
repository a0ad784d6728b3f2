/*
 * digest: content digests ("sha256:<64 hex>", "sha512:<128 hex>") and
 * streaming hashing with OpenSSL EVP.
 *
 * struct digest is a plain value (no heap). struct hasher owns an EVP
 * context; hasher_release() frees it. A hasher is used by one thread at a
 * time. Only lowercase hex is accepted, so a digest string has exactly one
 * spelling and can name a file safely.
 */
#ifndef BERTH_DIGEST_H
#define BERTH_DIGEST_H

#include <stddef.h>

enum digest_alg { DIGEST_SHA256 = 0, DIGEST_SHA512 = 1 };

#define DIGEST_HEX_MAX 128
/* "sha512:" + 128 hex + NUL */
#define DIGEST_STR_MAX 136

struct digest {
	enum digest_alg alg;
	char hex[DIGEST_HEX_MAX + 1];
};

/*
 * Parses s; returns 0, or E_DIGEST_INVALID for anything that is not a
 * supported algorithm followed by the right number of lowercase hex digits.
 */
int digest_parse(const char *s, struct digest *out);
/* Same, on a counted string that need not be NUL-terminated. */
int digest_parsen(const char *s, size_t len, struct digest *out);
const char *digest_alg_name(enum digest_alg alg);
size_t digest_hex_len(enum digest_alg alg);
/* Writes "alg:hex" into out (DIGEST_STR_MAX bytes); returns out. */
char *digest_str(const struct digest *d, char *out);
int digest_eq(const struct digest *a, const struct digest *b);

struct hasher {
	void *ctx; /* EVP_MD_CTX */
	enum digest_alg alg;
};

void hasher_init(struct hasher *h, enum digest_alg alg);
void hasher_update(struct hasher *h, const void *data, size_t len);
/* Finishes into out; the hasher must be re-initialised before reuse. */
void hasher_final(struct hasher *h, struct digest *out);
/* Copies src's state into dst (dst initialised or zeroed). */
void hasher_copy(struct hasher *dst, const struct hasher *src);
void hasher_release(struct hasher *h);
/* One-shot digest of a buffer. */
void digest_of(enum digest_alg alg, const void *data, size_t len, struct digest *out);

#endif
