/*
 * fuzz_authn: libFuzzer target for the Authorization header
 * (server/authn.c): authn_basic_decode() for "Basic <base64>", and
 * jwt_verify() for "Bearer <token>" as the dispatcher calls it (fuzz_jwt
 * goes deeper into the token itself).
 *
 * The input, up to a NUL, is the header value; it is dispatched on its
 * scheme as authn_begin() does, and its whole text is also decoded as Basic
 * credentials. Decoded credentials never hold a NUL, the user name never a
 * ':', the secret length is exact, and encoding "user:secret" again decodes
 * to the same pair. A refused bearer token leaves no claims behind. Seeds
 * live in corpus/authn/.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "authn.h"
#include "buf.h"
#include "fuzz.h"
#include "jwt.h"
#include "log.h"

/* Time the tokens are checked at, as in fuzz_jwt. */
#define AUTHN_FUZZ_NOW INT64_C(1700000000)

static struct jwt_key authn_key;

static void authn_check_basic(const char *b64)
{
	char *user = NULL, *secret = NULL, *user2 = NULL, *secret2 = NULL;
	size_t slen = 0, slen2 = 0;
	if (authn_basic_decode(b64, &user, &secret, &slen))
		return;
	FUZZ_ASSERT(user && secret);
	FUZZ_ASSERT(!strchr(user, ':'));
	FUZZ_ASSERT(strlen(secret) == slen);

	size_t ulen = strlen(user), rawlen = ulen + 1 + slen;
	unsigned char *raw = xmalloc(rawlen + 1);
	unsigned char *enc = xmalloc(4 * (rawlen / 3 + 1) + 1);
	memcpy(raw, user, ulen);
	raw[ulen] = ':';
	memcpy(raw + ulen + 1, secret, slen);
	EVP_EncodeBlock(enc, raw, (int)rawlen);
	FUZZ_ASSERT(authn_basic_decode((const char *)enc, &user2, &secret2, &slen2) == 0);
	FUZZ_ASSERT(!strcmp(user, user2) && slen == slen2 && !memcmp(secret, secret2, slen));
	free(raw);
	free(enc);
	free(user);
	free(user2);
	OPENSSL_cleanse(secret, slen);
	free(secret);
	free(secret2);
}

static void authn_check_bearer(const char *tok)
{
	struct jwt_claims c;
	int rc = jwt_verify(&authn_key, tok, strlen(tok), "berth", "registry", AUTHN_FUZZ_NOW, 30, &c);
	if (rc)
		FUZZ_ASSERT(!c.iss && !c.sub && !c.access && !c.naccess);
	else
		FUZZ_ASSERT(c.iss && c.sub && c.aud && (!c.naccess || c.access));
	jwt_claims_release(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *h = fuzz_cstr(data, size);
	if (!authn_key.pkey) {
		log_set_level(LOG_ERROR);
		FUZZ_ASSERT(jwt_key_generate(&authn_key) == 0);
	}
	if (!strncasecmp(h, "Bearer ", 7))
		authn_check_bearer(h + 7);
	else if (!strncasecmp(h, "Basic ", 6))
		authn_check_basic(h + 6);
	authn_check_basic(h);
	free(h);
	return 0;
}
