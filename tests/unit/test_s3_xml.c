/*
 * test_s3_xml: the reader of S3's XML answers accepts the documents S3
 * sends (as Swift's s3api and the S3 reference spell them) and refuses
 * what is not well-formed or exceeds its bounds.
 */
#include <string.h>

#include "err.h"
#include "s3_xml.h"
#include "t.h"

static int parse(const char *s)
{
	const struct s3xml_cb cb = { NULL, NULL };
	return s3xml_parse(s, strlen(s), &cb, NULL);
}

static void test_documents(void)
{
	const char *list =
		"<?xml version='1.0' encoding='UTF-8'?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>b</Name><IsTruncated>true</IsTruncated><NextContinuationToken>t/1=</NextContinuationToken>"
		"<Contents><Key>p/a&amp;b &#xE9;&#233;</Key><ETag>&quot;abc&quot;</ETag><Size>12</Size></Contents>"
		"<Contents><Key>p/c</Key><Size>0</Size></Contents>"
		"</ListBucketResult>";
	struct s3xml_list l;
	CHECK_EQ_INT(s3xml_list(list, strlen(list), &l), 0);
	CHECK_EQ_INT(l.count, 2);
	CHECK_STR(l.objects[0].key, "p/a&b \xc3\xa9\xc3\xa9");
	CHECK_STR(l.objects[0].etag, "abc");
	CHECK_EQ_INT(l.objects[0].size, 12);
	CHECK(l.truncated && !strcmp(l.next_token, "t/1="));
	s3xml_list_release(&l);

	/* truncated without a token, an object without a size, a bad size */
	const char *bad[] = {
		"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999</Size></Contents></ListBucketResult>",
		"<Error><Code>X</Code></Error>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(s3xml_list(bad[i], strlen(bad[i]), &l), E_STORE);
		CHECK(!l.objects && !l.next_token);
	}

	struct s3xml_error e;
	const char *err = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce"
			  " your request rate.</Message><RequestId>tx1</RequestId></Error>";
	CHECK_EQ_INT(s3xml_error(err, strlen(err), &e), 0);
	CHECK_STR(e.code, "SlowDown");
	CHECK_STR(e.message, "Please reduce your request rate.");
	CHECK_STR(e.request_id, "tx1");
	CHECK_EQ_INT(s3xml_error("<Error></Error>", 15, &e), E_STORE);

	char *id = NULL, *etag = NULL;
	const char *init = "<InitiateMultipartUploadResult><UploadId>abc-1</UploadId></InitiateMultipartUploadResult>";
	CHECK_EQ_INT(s3xml_upload_id(init, strlen(init), &id), 0);
	CHECK_STR(id, "abc-1");
	free(id);
	CHECK_EQ_INT(s3xml_upload_id("<X><UploadId>a</UploadId></X>", 29, &id), E_STORE);
	const char *done = "<CompleteMultipartUploadResult><ETag>\"e-2\"</ETag></CompleteMultipartUploadResult>";
	CHECK_EQ_INT(s3xml_complete(done, strlen(done), &etag, &e), 0);
	CHECK_STR(etag, "e-2");
	free(etag);
	/* a 200 whose body is an error */
	CHECK_EQ_INT(s3xml_complete(err, strlen(err), &etag, &e), 1);
	CHECK(!etag);
	CHECK_STR(e.code, "SlowDown");
}

static void test_strictness(void)
{
	CHECK_EQ_INT(parse("<a><b>x</b><c/><!-- note --></a>\n"), 0);
	CHECK_EQ_INT(parse("<a x=\"1\" y='2'/>"), 0);
	const char *bad[] = {
		"", "   ", "text", "<a>", "<a></b>", "<a></a><b/>", "<a></a>x", "<a><b></a></b>",
		"<!DOCTYPE a><a/>", "<a><![CDATA[x]]></a>", "<a>&unknown;</a>", "<a>&#0;</a>",
		"<a>&#xD800;</a>", "<a>&#x110000;</a>", "<a>&amp</a>", "<a x=1/>", "<a x=\"1\"y=\"2\"/>",
		"<a>\x01</a>", "<?xml version='1.0'", "<1a/>", "<a><?pi?></a>", "</a>", "<a/><!-- open",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i]);
		if (rc != E_STORE)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK_EQ_INT(rc, E_STORE);
	}
	/* bounds: depth, name and text */
	struct buf b = BUF_INIT;
	for (int i = 0; i < S3XML_MAX_DEPTH; i++)
		buf_adds(&b, "<a>");
	for (int i = 0; i < S3XML_MAX_DEPTH; i++)
		buf_adds(&b, "</a>");
	CHECK_EQ_INT(parse(b.buf), 0);
	buf_reset(&b);
	for (int i = 0; i <= S3XML_MAX_DEPTH; i++)
		buf_adds(&b, "<a>");
	CHECK_EQ_INT(parse(b.buf), E_STORE);
	buf_reset(&b);
	buf_adds(&b, "<a>");
	for (int i = 0; i <= S3XML_MAX_TEXT; i++)
		buf_addch(&b, 'x');
	buf_adds(&b, "</a>");
	CHECK_EQ_INT(parse(b.buf), E_STORE);
	buf_reset(&b);
	buf_addch(&b, '<');
	for (int i = 0; i <= S3XML_MAX_NAME; i++)
		buf_addch(&b, 'n');
	buf_adds(&b, "/>");
	CHECK_EQ_INT(parse(b.buf), E_STORE);
	buf_release(&b);
}

int main(void)
{
	test_documents();
	test_strictness();
	return t_done();
}
