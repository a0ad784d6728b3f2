/* buf: growable, always NUL-terminated byte buffer. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

char buf_empty_[1];

void buf_init(struct buf *b, size_t hint)
{
	b->buf = buf_empty_;
	b->len = 0;
	b->alloc = 0;
	if (hint)
		buf_grow(b, hint);
}

void buf_release(struct buf *b)
{
	if (b->alloc)
		free(b->buf);
	buf_init(b, 0);
}

void buf_grow(struct buf *b, size_t extra)
{
	size_t need;
	if (size_add(b->len, extra, &need) || size_add(need, 1, &need))
		die("buffer size overflow");
	if (need <= b->alloc)
		return;
	size_t n = b->alloc ? b->alloc : 64;
	while (n < need) {
		if (size_add(n, n / 2, &n))
			n = need;
	}
	if (!b->alloc) {
		b->buf = xmalloc(n);
		b->buf[0] = '\0';
	} else {
		b->buf = xrealloc(b->buf, n);
	}
	b->alloc = n;
}

void buf_setlen(struct buf *b, size_t len)
{
	if (len > (b->alloc ? b->alloc - 1 : 0))
		die("buf_setlen beyond allocation");
	b->len = len;
	b->buf[len] = '\0';
}

void buf_reset(struct buf *b)
{
	if (b->alloc)
		buf_setlen(b, 0);
}

void buf_add(struct buf *b, const void *data, size_t len)
{
	if (!len)
		return;
	buf_grow(b, len);
	memcpy(b->buf + b->len, data, len);
	buf_setlen(b, b->len + len);
}

void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_addch(struct buf *b, char c)
{
	buf_grow(b, 1);
	b->buf[b->len] = c;
	buf_setlen(b, b->len + 1);
}

void buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	char probe[1];
	if (!fmt)
		die("null format string");
	va_copy(cp, ap);
	int n = vsnprintf(probe, sizeof(probe), fmt, cp);
	va_end(cp);
	if (n < 0)
		die("bad format string");
	buf_grow(b, (size_t)n);
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	buf_setlen(b, b->len + (size_t)n);
}

void buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(b, fmt, ap);
	va_end(ap);
}

void buf_add_json_str(struct buf *b, const char *s)
{
	if (!s) {
		buf_adds(b, "null");
		return;
	}
	buf_addch(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		/* runs that need no escaping (names, tags, digests: all of them) go in one copy */
		const unsigned char *q = p;
		while (*q >= 0x20 && *q != '"' && *q != '\\')
			q++;
		if (q != p) {
			buf_add(b, p, (size_t)(q - p));
			p = q;
			if (!*p)
				break;
		}
		switch (*p) {
		case '"': buf_adds(b, "\\\""); break;
		case '\\': buf_adds(b, "\\\\"); break;
		case '\n': buf_adds(b, "\\n"); break;
		case '\r': buf_adds(b, "\\r"); break;
		case '\t': buf_adds(b, "\\t"); break;
		default:
			if (*p < 0x20)
				buf_addf(b, "\\u%04x", *p);
			else
				buf_addch(b, (char)*p);
		}
	}
	buf_addch(b, '"');
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *s;
	if (len)
		*len = b->len;
	s = b->alloc ? b->buf : xstrdup("");
	buf_init(b, 0);
	return s;
}
