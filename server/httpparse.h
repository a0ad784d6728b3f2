/*
 * httpparse: parsers for the HTTP-level inputs the registry reads from
 * clients: Range and Content-Range headers, the pagination number `n`,
 * and percent-encoded query strings.
 *
 * Pure functions on caller-owned strings; nothing kept between calls.
 * struct query owns its decoded keys and values until query_release().
 * Thread-safe.
 */
#ifndef BERTH_HTTPPARSE_H
#define BERTH_HTTPPARSE_H

#include <stddef.h>
#include <stdint.h>

/* Most query parameters accepted on one request; more is E_BAD_REQUEST. */
#define QUERY_MAX_PARAMS 64

/*
 * Parses a request `Range: bytes=a-b | a- | -n` header against a resource of
 * size bytes. Returns 1 with [*first, *last] set for a satisfiable single
 * range, 0 when the header should be ignored (not a bytes range we serve:
 * multiple ranges or a unit other than bytes), or E_RANGE_INVALID when it
 * is syntactically a bytes range that cannot be satisfied.
 */
int range_parse(const char *hdr, uint64_t size, uint64_t *first, uint64_t *last);

/*
 * Parses an upload chunk's `Content-Range: a-b` (also accepting the
 * RFC 9110 spelling "bytes a-b/total", where total must exceed b). Returns
 * 0 with *first, *last set (first <= last < INT64_MAX, so the length
 * last - first + 1 and the end last + 1 never overflow, in uint64_t or
 * int64_t), or E_UPLOAD_RANGE for anything else: a malformed range, one
 * that ends before it starts, or one whose arithmetic would overflow.
 */
int content_range_parse(const char *hdr, uint64_t *first, uint64_t *last);

/*
 * Parses a decimal page size: digits only, no sign, no leading junk.
 * Values above cap are clamped to cap. Returns 0 or E_PAGINATION.
 */
int pagesize_parse(const char *s, long cap, long *out);

struct query_param {
	char *key;
	char *value;
};

struct query {
	struct query_param *params;
	size_t n;
};

/*
 * Splits and percent-decodes a query string (without the '?'); '+' means a
 * space. Returns 0, or E_BAD_REQUEST on a malformed escape, an escaped NUL
 * or too many parameters (q is then empty).
 */
int query_parse(const char *qs, struct query *q);
/* First value for key, or NULL. */
const char *query_get(const struct query *q, const char *key);
void query_release(struct query *q);

#endif
