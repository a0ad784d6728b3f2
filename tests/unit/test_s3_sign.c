/*
 * test_s3_sign: SigV4 against the examples published in the S3 API
 * reference (examplebucket, AKIAIOSFODNN7EXAMPLE, 24 May 2013): GET object
 * with a Range, PUT object with a signed payload and a '$' in the key,
 * GET ?lifecycle, list objects with a sorted query, and a presigned GET.
 * The expected signatures are the documented ones.
 */
#include <string.h>
#include <time.h>

#include "s3_sign.h"
#include "t.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define HOST "examplebucket.s3.amazonaws.com"
#define CRED AK "/20130524/us-east-1/s3/aws4_request"
/* 2013-05-24T00:00:00Z */
#define WHEN ((time_t)1369353600)

static struct s3_sign_req base(const char *method, const char *path, const char *hash)
{
	struct s3_sign_req r = {
		.method = method,
		.host = HOST,
		.path = path,
		.payload_hash = hash,
		.when = WHEN,
		.region = "us-east-1",
		.access_key = AK,
		.secret_key = SK,
	};
	return r;
}

static void check_auth(const struct s3_sign_req *r, const char *want)
{
	struct buf out = BUF_INIT;
	s3_sign_authorization(&out, r);
	CHECK_STR(out.buf, want);
	buf_release(&out);
}

static void test_get_object(void)
{
	const struct s3_kv range[] = { { "Range", "bytes=0-9" } };
	struct s3_sign_req r = base("GET", "/test.txt", S3_EMPTY_SHA256);
	struct buf creq = BUF_INIT, sts = BUF_INIT;
	r.headers = range;
	r.nheaders = 1;
	s3_sign_canonical_request(&creq, &r);
	CHECK_STR(creq.buf, "GET\n/test.txt\n\nhost:" HOST "\nrange:bytes=0-9\n"
			    "x-amz-content-sha256:" S3_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
			    "host;range;x-amz-content-sha256;x-amz-date\n" S3_EMPTY_SHA256);
	s3_sign_string_to_sign(&sts, &r);
	CHECK_STR(sts.buf, "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
			   "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	check_auth(&r, "AWS4-HMAC-SHA256 Credential=" CRED ",SignedHeaders=host;range;"
		       "x-amz-content-sha256;x-amz-date,Signature="
		       "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	buf_release(&creq);
	buf_release(&sts);
}

static void test_put_object(void)
{
	/* header names in any case and order, a value with spaces to trim */
	const struct s3_kv hdrs[] = {
		{ "X-Amz-Storage-Class", "REDUCED_REDUNDANCY" },
		{ "Date", "  Fri, 24 May 2013   00:00:00 GMT " },
	};
	struct s3_sign_req r = base("PUT", "/test$file.text",
				    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	struct buf creq = BUF_INIT;
	r.headers = hdrs;
	r.nheaders = 2;
	s3_sign_canonical_request(&creq, &r);
	CHECK(!strncmp(creq.buf, "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n", 58));
	check_auth(&r, "AWS4-HMAC-SHA256 Credential=" CRED ",SignedHeaders=date;host;"
		       "x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature="
		       "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	buf_release(&creq);
}

static void test_lifecycle(void)
{
	const struct s3_kv q[] = { { "lifecycle", "" } };
	struct s3_sign_req r = base("GET", "/", S3_EMPTY_SHA256);
	r.query = q;
	r.nquery = 1;
	check_auth(&r, "AWS4-HMAC-SHA256 Credential=" CRED ",SignedHeaders=host;"
		       "x-amz-content-sha256;x-amz-date,Signature="
		       "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void test_list_objects(void)
{
	/* given unsorted: the canonical query sorts them */
	const struct s3_kv q[] = { { "prefix", "J" }, { "max-keys", "2" } };
	struct s3_sign_req r = base("GET", "/", S3_EMPTY_SHA256);
	r.query = q;
	r.nquery = 2;
	check_auth(&r, "AWS4-HMAC-SHA256 Credential=" CRED ",SignedHeaders=host;"
		       "x-amz-content-sha256;x-amz-date,Signature="
		       "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void test_presign(void)
{
	struct s3_sign_req r = base("GET", "/test.txt", NULL);
	struct buf url = BUF_INIT;
	CHECK(s3_sign_presign(&url, &r, "https", 86400) == 0);
	CHECK_STR(url.buf, "https://" HOST "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
			   "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
			   "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
			   "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
	buf_reset(&url);
	CHECK(s3_sign_presign(&url, &r, "https", 0) == -1);
	CHECK(s3_sign_presign(&url, &r, "https", 604801) == -1);
	CHECK(url.len == 0);
	buf_release(&url);
}

static void test_encoding(void)
{
	struct buf b = BUF_INIT;
	const char *raw = "a b+c/d~e_f.g-h%é*";
	s3_uri_encode(&b, raw, strlen(raw), 1);
	CHECK_STR(b.buf, "a%20b%2Bc/d~e_f.g-h%25%C3%A9%2A");
	buf_reset(&b);
	s3_uri_encode(&b, raw, strlen(raw), 0);
	CHECK_STR(b.buf, "a%20b%2Bc%2Fd~e_f.g-h%25%C3%A9%2A");
	buf_reset(&b);
	/* names sort by their encoded form; values break ties; flags have "=" */
	const struct s3_kv q[] = { { "uploadId", "x/y=" }, { "a", "2" }, { "a", "1" }, { "uploads", "" } };
	s3_sign_canonical_query(&b, q, 4);
	CHECK_STR(b.buf, "a=1&a=2&uploadId=x%2Fy%3D&uploads=");
	buf_release(&b);
	char d[S3_AMZ_DATE_LEN];
	s3_amz_date(WHEN + 86399, d);
	CHECK_STR(d, "20130524T235959Z");
}

int main(void)
{
	test_get_object();
	test_put_object();
	test_lifecycle();
	test_list_objects();
	test_presign();
	test_encoding();
	return t_done();
}
