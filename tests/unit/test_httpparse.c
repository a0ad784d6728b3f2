/* Unit tests for server/httpparse: Range, Content-Range, n, query strings. */
#include "err.h"
#include "httpparse.h"
#include "t.h"

int main(void)
{
	uint64_t a, b;
	long n;
	struct query q;

	CHECK_EQ_INT(range_parse("bytes=0-9", 100, &a, &b), 1);
	CHECK_EQ_INT(a, 0);
	CHECK_EQ_INT(b, 9);
	CHECK_EQ_INT(range_parse("bytes=10-", 100, &a, &b), 1);
	CHECK_EQ_INT(a, 10);
	CHECK_EQ_INT(b, 99);
	CHECK_EQ_INT(range_parse("bytes=-10", 100, &a, &b), 1);
	CHECK_EQ_INT(a, 90);
	CHECK_EQ_INT(b, 99);
	CHECK_EQ_INT(range_parse("bytes=-1000", 100, &a, &b), 1);
	CHECK_EQ_INT(a, 0);
	CHECK_EQ_INT(range_parse("bytes=50-1000", 100, &a, &b), 1);
	CHECK_EQ_INT(b, 99);
	CHECK_EQ_INT(range_parse("bytes=100-", 100, &a, &b), E_RANGE_INVALID);
	CHECK_EQ_INT(range_parse("bytes=9-3", 100, &a, &b), E_RANGE_INVALID);
	CHECK_EQ_INT(range_parse("bytes=-0", 100, &a, &b), E_RANGE_INVALID);
	CHECK_EQ_INT(range_parse("bytes=x-3", 100, &a, &b), E_RANGE_INVALID);
	CHECK_EQ_INT(range_parse("bytes=0-0", 0, &a, &b), E_RANGE_INVALID);
	CHECK_EQ_INT(range_parse("bytes=99999999999999999999999-", 100, &a, &b), E_RANGE_INVALID);
	CHECK_EQ_INT(range_parse("bytes=0-1,5-6", 100, &a, &b), 0);
	CHECK_EQ_INT(range_parse("items=0-1", 100, &a, &b), 0);

	CHECK_EQ_INT(content_range_parse("0-99", &a, &b), 0);
	CHECK_EQ_INT(a, 0);
	CHECK_EQ_INT(b, 99);
	CHECK_EQ_INT(content_range_parse("bytes 100-199/*", &a, &b), 0);
	CHECK_EQ_INT(a, 100);
	CHECK_EQ_INT(content_range_parse("bytes=5-6", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("9-3", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("-3", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("3-", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("1-2 junk", &a, &b), E_UPLOAD_RANGE);
	/* ranges whose length or end would wrap around */
	CHECK_EQ_INT(content_range_parse("0-18446744073709551615", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("bytes 0-18446744073709551615/*", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("5-18446744073709551615", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("0-18446744073709551616", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("0-9223372036854775807", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("9223372036854775807-9223372036854775807", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("18446744073709551615-18446744073709551615", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("18446744073709551614-18446744073709551615", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("0-9223372036854775806", &a, &b), 0);
	CHECK_EQ_INT(b, 9223372036854775806ULL);
	CHECK_EQ_INT(content_range_parse("9223372036854775806-9223372036854775806", &a, &b), 0);
	CHECK_EQ_INT(b - a + 1, 1);
	/* start past end, huge start */
	CHECK_EQ_INT(content_range_parse("18446744073709551615-0", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("100-99", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("100-100", &a, &b), 0);
	/* a total must cover the range */
	CHECK_EQ_INT(content_range_parse("bytes 0-99/100", &a, &b), 0);
	CHECK_EQ_INT(content_range_parse("bytes 0-99/99", &a, &b), E_UPLOAD_RANGE);
	CHECK_EQ_INT(content_range_parse("bytes 0-99/18446744073709551616", &a, &b), E_UPLOAD_RANGE);

	CHECK_EQ_INT(pagesize_parse("10", 1000, &n), 0);
	CHECK_EQ_INT(n, 10);
	CHECK_EQ_INT(pagesize_parse("0", 1000, &n), 0);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(pagesize_parse("5000", 1000, &n), 0);
	CHECK_EQ_INT(n, 1000);
	CHECK_EQ_INT(pagesize_parse("99999999999999999999999999", 1000, &n), E_PAGINATION);
	CHECK_EQ_INT(pagesize_parse("-1", 1000, &n), E_PAGINATION);
	CHECK_EQ_INT(pagesize_parse("", 1000, &n), E_PAGINATION);
	CHECK_EQ_INT(pagesize_parse("1x", 1000, &n), E_PAGINATION);

	CHECK_EQ_INT(query_parse("mount=sha256%3Aab&from=library%2Fubuntu&x&y=a+b", &q), 0);
	CHECK_EQ_INT(q.n, 4);
	CHECK_STR(query_get(&q, "mount"), "sha256:ab");
	CHECK_STR(query_get(&q, "from"), "library/ubuntu");
	CHECK_STR(query_get(&q, "x"), "");
	CHECK_STR(query_get(&q, "y"), "a b");
	CHECK(query_get(&q, "z") == NULL);
	query_release(&q);
	CHECK_EQ_INT(query_parse("a=%zz", &q), E_BAD_REQUEST);
	CHECK_EQ_INT(query_parse("a=%4", &q), E_BAD_REQUEST);
	CHECK_EQ_INT(query_parse("a=%00", &q), E_BAD_REQUEST);
	CHECK_EQ_INT(query_parse("", &q), 0);
	CHECK_EQ_INT(q.n, 0);
	query_release(&q);
	return t_done();
}
