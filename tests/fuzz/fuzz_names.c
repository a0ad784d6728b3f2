/*
 * fuzz_names: libFuzzer target for the repository name, tag and reference
 * grammar (common/names.c): name_check(), tag_check(), reference_parse().
 *
 * Whatever the input, a name that name_check() accepts must be what the
 * storage layer may turn into a path: 1..255 bytes of [a-z0-9._/-], no "..",
 * "//", '%', uppercase, leading or trailing '/', every component starting
 * and ending with an alphanumeric. The verdict is also compared with an
 * independent reading of the OCI grammar. Accepted references must give
 * back exactly the input (a digest re-formats to the same string). Seeds
 * live in corpus/names/.
 */
#include <stdint.h>
#include <string.h>

#include "digest.h"
#include "err.h"
#include "fuzz.h"
#include "names.h"

static int names_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/*
 * The OCI rule for one component, read as "alnum runs separated by exactly
 * one separator run", where a separator run is ".", "_", "__" or "-"+.
 */
static int names_component_ref(const char *s, size_t len)
{
	size_t i = 0;
	if (!len)
		return 0;
	for (;;) {
		size_t run = 0;
		while (i < len && names_alnum(s[i]))
			i++, run++;
		if (!run)
			return 0; /* empty alnum run: leading/trailing/double separator */
		if (i == len)
			return 1;
		size_t sep = i;
		while (i < len && !names_alnum(s[i]))
			i++;
		size_t n = i - sep;
		int dashes = 1;
		for (size_t k = sep; k < i; k++)
			dashes &= s[k] == '-';
		if (!(dashes || (n == 1 && s[sep] == '.') || (n == 1 && s[sep] == '_') ||
		      (n == 2 && s[sep] == '_' && s[sep + 1] == '_')))
			return 0;
	}
}

static int names_name_ref(const char *s, size_t len)
{
	size_t start = 0;
	if (!len || len > NAME_MAX_LEN)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '/') {
			if (!names_component_ref(s + start, i - start))
				return 0;
			start = i + 1;
		}
	}
	return 1;
}

static void names_check_name(const char *s, size_t len)
{
	int rc = name_check(s, len);
	FUZZ_ASSERT(rc == 0 || rc == E_NAME_INVALID);
	FUZZ_ASSERT((rc == 0) == names_name_ref(s, len));
	if (rc)
		return;
	FUZZ_ASSERT(len >= 1 && len <= NAME_MAX_LEN);
	FUZZ_ASSERT(s[0] != '/' && s[len - 1] != '/');
	FUZZ_ASSERT(!fuzz_contains(s, len, "..") && !fuzz_contains(s, len, "//"));
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		FUZZ_ASSERT(names_alnum(c) || c == '.' || c == '_' || c == '-' || c == '/');
		if (c == '/')
			FUZZ_ASSERT(names_alnum(s[i - 1]) && names_alnum(s[i + 1]));
	}
}

static void names_check_tag(const char *s, size_t len)
{
	int rc = tag_check(s, len);
	int ok = len >= 1 && len <= TAG_MAX_LEN;
	for (size_t i = 0; ok && i < len; i++) {
		char c = s[i];
		int word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
		ok = word || (i > 0 && (c == '.' || c == '-'));
	}
	FUZZ_ASSERT(rc == 0 || rc == E_TAG_INVALID);
	FUZZ_ASSERT((rc == 0) == ok);
}

static void names_check_reference(const char *s, size_t len)
{
	struct reference ref;
	char str[DIGEST_STR_MAX];
	int rc = reference_parse(s, len, &ref);
	if (memchr(s, ':', len))
		FUZZ_ASSERT(rc == 0 || rc == E_DIGEST_INVALID);
	else
		FUZZ_ASSERT(rc == 0 || rc == E_TAG_INVALID);
	if (rc)
		return;
	if (ref.is_digest) {
		digest_str(&ref.digest, str);
		FUZZ_ASSERT(strlen(str) == len && !memcmp(str, s, len));
	} else {
		FUZZ_ASSERT(strlen(ref.tag) == len && !memcmp(ref.tag, s, len));
		FUZZ_ASSERT(tag_check(ref.tag, len) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	names_check_name(s, size);
	names_check_tag(s, size);
	names_check_reference(s, size);
	return 0;
}
