/*
 * fuzz_query: libFuzzer target for query strings and page sizes
 * (server/httpparse.c): query_parse(), query_get(), pagesize_parse().
 *
 * The input (up to a NUL) is a query string. A parse that succeeds holds at
 * most QUERY_MAX_PARAMS pairs, none longer than the input, and encoding the
 * pairs again then parsing gives back the same pairs; a parse that fails
 * leaves nothing behind. Every value, and the input itself, is also read as
 * a page size: the result is never negative nor above the cap. Seeds live
 * in corpus/query/.
 */
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "fuzz.h"
#include "httpparse.h"

static void query_encode(const char *s, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			buf_addch(out, (char)*p);
		} else {
			buf_addch(out, '%');
			buf_addch(out, hex[*p >> 4]);
			buf_addch(out, hex[*p & 15]);
		}
	}
}

static void query_check_pagesize(const char *s)
{
	static const long caps[] = { 1, 100, 1000, 100000 };
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		long n = -1;
		int rc = pagesize_parse(s, caps[i], &n);
		FUZZ_ASSERT(rc == 0 || rc == E_PAGINATION);
		if (rc)
			continue;
		FUZZ_ASSERT(n >= 0 && n <= caps[i]);
		FUZZ_ASSERT(*s >= '0' && *s <= '9' && strspn(s, "0123456789") == strlen(s));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *qs = fuzz_cstr(data, size);
	size_t len = strlen(qs);
	struct query q, q2;
	struct buf again = BUF_INIT;
	int rc = query_parse(qs, &q);

	FUZZ_ASSERT(rc == 0 || rc == E_BAD_REQUEST);
	query_check_pagesize(qs);
	if (rc) {
		FUZZ_ASSERT(q.n == 0 && q.params == NULL);
		free(qs);
		return 0;
	}
	FUZZ_ASSERT(q.n <= QUERY_MAX_PARAMS);
	for (size_t i = 0; i < q.n; i++) {
		FUZZ_ASSERT(q.params[i].key && q.params[i].value);
		FUZZ_ASSERT(strlen(q.params[i].key) + strlen(q.params[i].value) <= len);
		query_check_pagesize(q.params[i].value);
		if (i)
			buf_addch(&again, '&');
		query_encode(q.params[i].key, &again);
		buf_addch(&again, '=');
		query_encode(q.params[i].value, &again);
	}
	if (q.n)
		FUZZ_ASSERT(query_get(&q, q.params[0].key) == q.params[0].value);
	FUZZ_ASSERT(query_parse(again.buf, &q2) == 0 && q2.n == q.n);
	for (size_t i = 0; i < q.n; i++)
		FUZZ_ASSERT(!strcmp(q.params[i].key, q2.params[i].key) &&
			    !strcmp(q.params[i].value, q2.params[i].value));
	query_release(&q2);
	query_release(&q);
	FUZZ_ASSERT(q.n == 0 && q.params == NULL);
	buf_release(&again);
	free(qs);
	return 0;
}
