/* Unit tests for common/names: repository, tag and reference grammar. */
#include <string.h>

#include "err.h"
#include "names.h"
#include "t.h"

static int name_ok(const char *s)
{
	return name_check(s, strlen(s)) == 0;
}

static int tag_ok(const char *s)
{
	return tag_check(s, strlen(s)) == 0;
}

int main(void)
{
	const char *good[] = { "a", "library/ubuntu", "team-a/app", "a.b_c__d--e/f0",
			       "x/y/z/w", "0", "a-----b" };
	const char *bad[] = { "", "A", "library/Ubuntu", "a/../b", "..", "a//b", "/a", "a/",
			      "a%2Fb", "a___b", "-a", "a-", "a.", ".a", "a..b", "a/b/", "a b",
			      "a\n", "_a", "a._b" };
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		CHECK(name_ok(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		if (name_ok(bad[i]))
			fprintf(stderr, "accepted bad name \"%s\"\n", bad[i]);
		CHECK(!name_ok(bad[i]));
	}
	char longname[300];
	memset(longname, 'a', sizeof(longname));
	CHECK_EQ_INT(name_check(longname, 255), 0);
	CHECK_EQ_INT(name_check(longname, 256), E_NAME_INVALID);

	CHECK(tag_ok("latest"));
	CHECK(tag_ok("v1.2.3-rc_1"));
	CHECK(tag_ok("_x"));
	CHECK(tag_ok("A"));
	CHECK(!tag_ok(".x"));
	CHECK(!tag_ok("-x"));
	CHECK(!tag_ok(""));
	CHECK(!tag_ok("a/b"));
	CHECK(!tag_ok("a:b"));
	char longtag[200];
	memset(longtag, 'a', sizeof(longtag));
	CHECK_EQ_INT(tag_check(longtag, 128), 0);
	CHECK_EQ_INT(tag_check(longtag, 129), E_TAG_INVALID);

	struct reference ref;
	CHECK_EQ_INT(reference_parse("latest", 6, &ref), 0);
	CHECK(!ref.is_digest);
	CHECK_STR(ref.tag, "latest");
	const char *d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	CHECK_EQ_INT(reference_parse(d, strlen(d), &ref), 0);
	CHECK(ref.is_digest);
	CHECK_EQ_INT(reference_parse("sha256:abc", 10, &ref), E_DIGEST_INVALID);
	CHECK_EQ_INT(reference_parse("..", 2, &ref), E_TAG_INVALID);
	return t_done();
}
