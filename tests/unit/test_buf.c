/* Unit tests for common/buf. */
#include <stdlib.h>

#include "buf.h"
#include "t.h"

int main(void)
{
	struct buf b = BUF_INIT;
	CHECK_STR(b.buf, "");
	CHECK_EQ_INT(b.len, 0);
	buf_adds(&b, "abc");
	buf_addch(&b, 'd');
	buf_addf(&b, "-%d-%s", 42, "x");
	CHECK_STR(b.buf, "abcd-42-x");
	for (int i = 0; i < 10000; i++)
		buf_addch(&b, 'z');
	CHECK_EQ_INT(b.len, 9 + 10000);
	CHECK_EQ_INT(b.buf[b.len], '\0');
	buf_reset(&b);
	CHECK_STR(b.buf, "");
	buf_add_json_str(&b, "a\"b\\c\n\x01");
	CHECK_STR(b.buf, "\"a\\\"b\\\\c\\n\\u0001\"");
	buf_reset(&b);
	buf_add_json_str(&b, NULL);
	CHECK_STR(b.buf, "null");
	size_t len;
	char *s = buf_detach(&b, &len);
	CHECK_EQ_INT(len, strlen(s));
	CHECK_STR(b.buf, "");
	free(s);
	s = buf_detach(&b, NULL);
	CHECK_STR(s, "");
	free(s);
	buf_release(&b);
	return t_done();
}
