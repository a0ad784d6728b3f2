/* Unit tests for common/digest: grammar and hashing. */
#include <string.h>

#include "digest.h"
#include "err.h"
#include "t.h"

int main(void)
{
	struct digest d;
	char s[DIGEST_STR_MAX];
	const char *empty256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	const char *empty512 = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
			       "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

	CHECK_EQ_INT(digest_parse(empty256, &d), 0);
	CHECK_EQ_INT(d.alg, DIGEST_SHA256);
	CHECK_STR(digest_str(&d, s), empty256);
	CHECK_EQ_INT(digest_parse(empty512, &d), 0);
	CHECK_EQ_INT(d.alg, DIGEST_SHA512);

	CHECK_EQ_INT(digest_parse("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", &d), E_DIGEST_INVALID);
	CHECK_EQ_INT(digest_parse("sha256:e3b0", &d), E_DIGEST_INVALID);
	CHECK_EQ_INT(digest_parse("md5:d41d8cd98f00b204e9800998ecf8427e", &d), E_DIGEST_INVALID);
	CHECK_EQ_INT(digest_parse("sha256", &d), E_DIGEST_INVALID);
	CHECK_EQ_INT(digest_parse("", &d), E_DIGEST_INVALID);
	CHECK_EQ_INT(digest_parse("sha256:../../../../etc/passwd00000000000000000000000000000000000000", &d), E_DIGEST_INVALID);

	struct digest got, want;
	digest_of(DIGEST_SHA256, "", 0, &got);
	digest_parse(empty256, &want);
	CHECK(digest_eq(&got, &want));
	digest_of(DIGEST_SHA512, "", 0, &got);
	digest_parse(empty512, &want);
	CHECK(digest_eq(&got, &want));

	/* streaming equals one-shot, and copies continue independently */
	struct hasher h = { 0 }, h2 = { 0 };
	hasher_init(&h, DIGEST_SHA256);
	hasher_update(&h, "hello ", 6);
	hasher_copy(&h2, &h);
	hasher_update(&h, "world", 5);
	hasher_final(&h, &got);
	digest_of(DIGEST_SHA256, "hello world", 11, &want);
	CHECK(digest_eq(&got, &want));
	hasher_update(&h2, "world", 5);
	hasher_final(&h2, &got);
	CHECK(digest_eq(&got, &want));
	hasher_release(&h);
	hasher_release(&h2);
	return t_done();
}
