/* Unit tests for storage/paths. */
#include "digest.h"
#include "err.h"
#include "paths.h"
#include "t.h"

int main(void)
{
	struct digest d;
	struct buf b = BUF_INIT;
	digest_parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", &d);
	paths_blob(&b, "/data", &d);
	CHECK_STR(b.buf, "/data/blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	buf_reset(&b);
	paths_blob_dir(&b, "/data", &d);
	CHECK_STR(b.buf, "/data/blobs/sha256/e3");
	buf_reset(&b);
	paths_upload(&b, "r", "0123456789abcdef0123456789abcdef");
	CHECK_STR(b.buf, "r/uploads/0123456789abcdef0123456789abcdef");
	buf_reset(&b);
	paths_probe(&b, "r");
	CHECK_STR(b.buf, "r/uploads/.readyz-XXXXXX");
	CHECK_EQ_INT(paths_upload_id_check("0123456789abcdef0123456789abcdef"), 0);
	CHECK_EQ_INT(paths_upload_id_check("0123456789abcdef0123456789abcde"), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(paths_upload_id_check("0123456789abcdef0123456789abcdeF"), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(paths_upload_id_check("../../../../../../../../etc/pass"), E_BLOB_UPLOAD_UNKNOWN);
	buf_release(&b);
	return t_done();
}
