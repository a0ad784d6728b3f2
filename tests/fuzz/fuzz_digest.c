/*
 * fuzz_digest: libFuzzer target for the digest grammar (common/digest.c):
 * digest_parsen() on the raw bytes and digest_parse() on a NUL-terminated
 * copy.
 *
 * A digest has exactly one spelling: whatever parses must re-format to the
 * very same bytes, with the hex length of its algorithm and lowercase hex
 * only, and both parsers must agree. The digest of the input itself must
 * format to a string that parses back to it. Seeds live in corpus/digest/.
 */
#include <stdint.h>
#include <string.h>

#include "digest.h"
#include "err.h"
#include "fuzz.h"

static void digest_check_parsed(const struct digest *d, const char *s, size_t len)
{
	char str[DIGEST_STR_MAX];
	size_t hlen = strlen(d->hex);
	FUZZ_ASSERT(d->alg == DIGEST_SHA256 || d->alg == DIGEST_SHA512);
	FUZZ_ASSERT(hlen == digest_hex_len(d->alg));
	for (size_t i = 0; i < hlen; i++)
		FUZZ_ASSERT((d->hex[i] >= '0' && d->hex[i] <= '9') || (d->hex[i] >= 'a' && d->hex[i] <= 'f'));
	digest_str(d, str);
	FUZZ_ASSERT(strlen(str) == len && !memcmp(str, s, len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct digest d, d2, own;
	char str[DIGEST_STR_MAX];
	char *c = fuzz_cstr(data, size);
	int rc = digest_parsen(s, size, &d);
	int rc2 = digest_parse(c, &d2);

	FUZZ_ASSERT(rc == 0 || rc == E_DIGEST_INVALID);
	FUZZ_ASSERT(rc2 == 0 || rc2 == E_DIGEST_INVALID);
	if (!rc)
		digest_check_parsed(&d, s, size);
	if (!memchr(s, '\0', size)) {
		FUZZ_ASSERT(rc == rc2);
		if (!rc)
			FUZZ_ASSERT(digest_eq(&d, &d2));
	} else if (!rc2) {
		/* the C-string parser saw only the part before the NUL */
		digest_check_parsed(&d2, c, strlen(c));
	}

	digest_of(size % 2 ? DIGEST_SHA512 : DIGEST_SHA256, data, size, &own);
	digest_str(&own, str);
	FUZZ_ASSERT(digest_parse(str, &d2) == 0 && digest_eq(&own, &d2));
	free(c);
	return 0;
}
