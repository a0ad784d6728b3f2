/* httpparse: Range, Content-Range, page sizes and query strings. */
#include "httpparse.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

/* Reads a decimal uint64 at *p; returns 0 and advances, or -1 (no digits / overflow). */
static int read_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -1;
		s++;
	}
	*p = s;
	*out = v;
	return 0;
}

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

int range_parse(const char *hdr, uint64_t size, uint64_t *first, uint64_t *last)
{
	const char *p = skip_ws(hdr);
	uint64_t a, b;
	if (strncmp(p, "bytes=", 6))
		return 0;
	p = skip_ws(p + 6);
	if (strchr(p, ','))
		return 0;
	if (*p == '-') {
		p++;
		if (read_u64(&p, &b) || *skip_ws(p))
			return E_RANGE_INVALID;
		if (b == 0 || size == 0)
			return E_RANGE_INVALID;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 1;
	}
	if (read_u64(&p, &a) || *p != '-')
		return E_RANGE_INVALID;
	p++;
	if (!*skip_ws(p)) {
		b = UINT64_MAX;
	} else if (read_u64(&p, &b) || *skip_ws(p)) {
		return E_RANGE_INVALID;
	}
	if (b < a || a >= size)
		return E_RANGE_INVALID;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return 1;
}

int content_range_parse(const char *hdr, uint64_t *first, uint64_t *last)
{
	const char *p = skip_ws(hdr);
	uint64_t a, b;
	if (!strncmp(p, "bytes ", 6))
		p += 6;
	p = skip_ws(p);
	if (read_u64(&p, &a) || *p != '-')
		return E_UPLOAD_RANGE;
	p++;
	if (read_u64(&p, &b))
		return E_UPLOAD_RANGE;
	/* b < INT64_MAX: the length b - a + 1 and the end offset b + 1 are
	 * then exact in every type the upload uses; beyond, they would wrap */
	if (b < a || b >= (uint64_t)INT64_MAX)
		return E_UPLOAD_RANGE;
	if (*p == '/') {
		p++;
		if (*p == '*')
			p++;
		else {
			uint64_t total;
			if (read_u64(&p, &total) || total <= b)
				return E_UPLOAD_RANGE;
		}
	}
	if (*skip_ws(p))
		return E_UPLOAD_RANGE;
	*first = a;
	*last = b;
	return 0;
}

int pagesize_parse(const char *s, long cap, long *out)
{
	const char *p = s;
	uint64_t v;
	if (read_u64(&p, &v) || *p)
		return E_PAGINATION;
	*out = v > (uint64_t)cap ? cap : (long)v;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes s[0..len) into a new string; returns NULL on a bad or NUL escape. */
static char *pct_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1), *o = out;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;
			if (i + 2 >= len)
				goto bad;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '+') {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

int query_parse(const char *qs, struct query *q)
{
	q->params = NULL;
	q->n = 0;
	if (!qs)
		return 0;
	const char *p = qs;
	while (*p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len) {
			const char *eq = memchr(p, '=', len);
			size_t klen = eq ? (size_t)(eq - p) : len;
			char *k, *v;
			if (q->n >= QUERY_MAX_PARAMS)
				goto bad;
			k = pct_decode(p, klen);
			v = eq ? pct_decode(eq + 1, len - klen - 1) : xstrdup("");
			if (!k || !v) {
				free(k);
				free(v);
				goto bad;
			}
			q->params = xrealloc(q->params, (q->n + 1) * sizeof(*q->params));
			q->params[q->n].key = k;
			q->params[q->n].value = v;
			q->n++;
		}
		if (!amp)
			break;
		p = amp + 1;
	}
	return 0;
bad:
	query_release(q);
	return E_BAD_REQUEST;
}

const char *query_get(const struct query *q, const char *key)
{
	for (size_t i = 0; i < q->n; i++)
		if (!strcmp(q->params[i].key, key))
			return q->params[i].value;
	return NULL;
}

void query_release(struct query *q)
{
	for (size_t i = 0; i < q->n; i++) {
		free(q->params[i].key);
		free(q->params[i].value);
	}
	free(q->params);
	q->params = NULL;
	q->n = 0;
}
