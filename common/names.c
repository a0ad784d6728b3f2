/* names: OCI repository name, tag and reference grammar. */
#include "names.h"

#include <string.h>

#include "err.h"

static int is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static int component_ok(const char *s, size_t len)
{
	size_t i = 0;
	if (!len || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
		return 0;
	while (i < len) {
		if (is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		size_t start = i;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < len && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < len && s[i] == '-')
				i++;
		} else {
			return 0;
		}
		/* a separator must be followed by an alphanumeric */
		if (i == start || i >= len || !is_lower_alnum(s[i]))
			return 0;
	}
	return 1;
}

int name_check(const char *s, size_t len)
{
	if (!len || len > NAME_MAX_LEN)
		return E_NAME_INVALID;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '/') {
			if (!component_ok(s + start, i - start))
				return E_NAME_INVALID;
			start = i + 1;
		}
	}
	return 0;
}

static int tag_char(char c, int first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
		return 1;
	return !first && (c == '.' || c == '-');
}

int tag_check(const char *s, size_t len)
{
	if (!len || len > TAG_MAX_LEN)
		return E_TAG_INVALID;
	for (size_t i = 0; i < len; i++)
		if (!tag_char(s[i], i == 0))
			return E_TAG_INVALID;
	return 0;
}

int reference_parse(const char *s, size_t len, struct reference *out)
{
	memset(out, 0, sizeof(*out));
	if (memchr(s, ':', len)) {
		out->is_digest = 1;
		return digest_parsen(s, len, &out->digest);
	}
	int rc = tag_check(s, len);
	if (rc)
		return rc;
	memcpy(out->tag, s, len);
	out->tag[len] = '\0';
	return 0;
}
