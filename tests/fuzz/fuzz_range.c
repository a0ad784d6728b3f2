/*
 * fuzz_range: libFuzzer target for the Range and Content-Range parsers
 * (server/httpparse.c): range_parse() and content_range_parse().
 *
 * Input layout: the first byte picks the resource size (below 0x80: that
 * byte itself, so tiny and empty resources are common; otherwise the next
 * eight bytes, little-endian); the rest, up to a NUL, is the header value.
 * A satisfiable range must lie inside the resource (first <= last < size),
 * an upload range must be ordered with its end below INT64_MAX, and both
 * must read back the same from their canonical spelling. Seeds live in
 * corpus/range/.
 */
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "httpparse.h"

static void range_check_range(const char *hdr, uint64_t size)
{
	uint64_t first = 0, last = 0, f2 = 0, l2 = 0;
	char canon[64];
	int rc = range_parse(hdr, size, &first, &last);
	FUZZ_ASSERT(rc == 0 || rc == 1 || rc == E_RANGE_INVALID);
	if (rc != 1)
		return;
	FUZZ_ASSERT(size > 0 && first <= last && last < size);
	snprintf(canon, sizeof(canon), "bytes=%" PRIu64 "-%" PRIu64, first, last);
	FUZZ_ASSERT(range_parse(canon, size, &f2, &l2) == 1 && f2 == first && l2 == last);
}

static void range_check_content_range(const char *hdr)
{
	uint64_t first = 0, last = 0, f2 = 0, l2 = 0;
	char canon[64];
	int rc = content_range_parse(hdr, &first, &last);
	FUZZ_ASSERT(rc == 0 || rc == E_UPLOAD_RANGE);
	if (rc)
		return;
	/* ordered, and its length and end fit an int64_t (no wrap) */
	FUZZ_ASSERT(first <= last && last < (uint64_t)INT64_MAX);
	snprintf(canon, sizeof(canon), "%" PRIu64 "-%" PRIu64, first, last);
	FUZZ_ASSERT(content_range_parse(canon, &f2, &l2) == 0 && f2 == first && l2 == last);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t rsize = 0;
	size_t skip = 1;
	char *hdr;
	if (!size)
		return 0;
	if (data[0] < 0x80) {
		rsize = data[0];
	} else {
		for (size_t i = 0; i < 8 && 1 + i < size; i++)
			rsize |= (uint64_t)data[1 + i] << (8 * i);
		skip = size < 9 ? size : 9;
	}
	hdr = fuzz_cstr(data + skip, size - skip);
	range_check_range(hdr, rsize);
	range_check_content_range(hdr);
	free(hdr);
	return 0;
}
