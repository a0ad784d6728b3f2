/*
 * fuzz_challenge: libFuzzer target for upstream_challenge_parse()
 * (mirror/upstream_auth.c), which reads the WWW-Authenticate header of
 * any upstream the mirror talks to.
 *
 * Input: the header value (a NUL cuts it short). The parse answers 0 or
 * -1; an accepted challenge has a scheme of token characters, and its
 * values are NUL-terminated inside their fields with no control byte but
 * a tab. Written back as `<scheme> realm="...",service="...",scope="..."`
 * (quotes and backslashes escaped), it parses to the same fields, and so
 * does it with another challenge after it. Seeds live in corpus/challenge/.
 */
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "upstream.h"

static int challenge_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void challenge_check_field(const char *v, size_t size)
{
	size_t n = strnlen(v, size);
	FUZZ_ASSERT(n < size);
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT((unsigned char)v[i] >= 0x20 || v[i] == '\t');
}

static void challenge_quote(struct buf *b, const char *name, const char *v)
{
	buf_addf(b, "%s=\"", name);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			buf_addch(b, '\\');
		buf_addch(b, *v);
	}
	buf_addch(b, '"');
}

static void challenge_round_trip(const struct upstream_challenge *c, const char *more)
{
	struct upstream_challenge again;
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s ", c->scheme);
	challenge_quote(&b, "realm", c->realm);
	buf_addch(&b, ',');
	challenge_quote(&b, "service", c->service);
	buf_addch(&b, ',');
	challenge_quote(&b, "scope", c->scope);
	buf_adds(&b, more);
	FUZZ_ASSERT(upstream_challenge_parse(b.buf, &again) == 0);
	FUZZ_ASSERT(!strcmp(again.scheme, c->scheme));
	FUZZ_ASSERT(!strcmp(again.realm, c->realm));
	FUZZ_ASSERT(!strcmp(again.service, c->service));
	FUZZ_ASSERT(!strcmp(again.scope, c->scope));
	buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	struct upstream_challenge c;
	int rc = upstream_challenge_parse(s, &c);
	FUZZ_ASSERT(rc == 0 || rc == -1);
	if (rc == 0) {
		FUZZ_ASSERT(c.scheme[0]);
		for (const char *p = c.scheme; *p; p++)
			FUZZ_ASSERT(challenge_tchar(*p));
		challenge_check_field(c.scheme, sizeof(c.scheme));
		challenge_check_field(c.realm, sizeof(c.realm));
		challenge_check_field(c.service, sizeof(c.service));
		challenge_check_field(c.scope, sizeof(c.scope));
		challenge_round_trip(&c, "");
		challenge_round_trip(&c, ", Basic realm=\"other\"");
	}
	free(s);
	return 0;
}
