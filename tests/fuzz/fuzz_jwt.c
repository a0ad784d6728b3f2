/*
 * fuzz_jwt: libFuzzer target for auth/jwt's verifier.
 *
 * Every input is handed to jwt_verify() as a token, which also exercises
 * the strict base64url decoder. Random bytes almost never carry a valid
 * signature, which would leave the claims parser unreached, so an input
 * holding a NUL byte is also read as "<header JSON>\0<payload JSON>": both
 * are base64url-encoded and signed with the fuzzing key, and the resulting
 * well-signed token is verified too. Seeds live in corpus/jwt/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "buf.h"
#include "jwt.h"
#include "log.h"

#define JWT_FUZZ_NOW INT64_C(1700000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct jwt_key jwt_fuzz_key;

static void jwt_fuzz_verify(const char *tok, size_t len)
{
	struct jwt_claims c;
	int rc = jwt_verify(&jwt_fuzz_key, tok, len, "berth", "registry", JWT_FUZZ_NOW, 30, &c);
	if (rc == 0 && (!c.iss || !c.sub || !c.aud || !c.jti || (c.naccess && !c.access)))
		abort();
	if (rc != 0 && (c.iss || c.access || c.naccess))
		abort();
	jwt_claims_release(&c);
}

/* Appends '.' and the raw r||s ES256 signature of tok's contents. */
static void jwt_fuzz_sign(struct buf *tok)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[128], raw[64];
	const unsigned char *p = der;
	size_t n = sizeof(der);
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r, *s;
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, jwt_fuzz_key.pkey) != 1 ||
	    EVP_DigestSign(md, der, &n, (const unsigned char *)tok->buf, tok->len) != 1 ||
	    !(sig = d2i_ECDSA_SIG(NULL, &p, (long)n)))
		abort();
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32)
		abort();
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	buf_addch(tok, '.');
	b64url_encode(raw, sizeof(raw), tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *nul = memchr(in, '\0', size);

	if (!jwt_fuzz_key.pkey) {
		log_set_level(LOG_ERROR);
		if (jwt_key_generate(&jwt_fuzz_key))
			abort();
	}
	jwt_fuzz_verify(in, size);
	if (nul) {
		struct buf tok = BUF_INIT;
		size_t hlen = (size_t)(nul - in);
		b64url_encode(in, hlen, &tok);
		buf_addch(&tok, '.');
		b64url_encode(nul + 1, size - hlen - 1, &tok);
		jwt_fuzz_sign(&tok);
		jwt_fuzz_verify(tok.buf, tok.len);
		buf_release(&tok);
	}
	return 0;
}
