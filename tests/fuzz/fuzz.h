/*
 * fuzz.h: helpers shared by the libFuzzer targets of tests/fuzz/.
 *
 * Every target defines LLVMFuzzerTestOneInput() and nothing else that is
 * exported. The targets are also compiled together into one program, the
 * regression replayer (tests/unit/test_fuzz_regressions.c), which renames
 * each entry point with a macro before including the target's source: so
 * a target's static functions, variables and macros carry its own prefix
 * (names_, digest_, ...) and never clash with another target's.
 *
 * An invariant that does not hold aborts, which libFuzzer reports as a
 * crash and the replayer as a failed test.
 */
#ifndef BERTH_FUZZ_H
#define BERTH_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define FUZZ_ASSERT(cond)                                                              \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                \
			abort();                                                       \
		}                                                                      \
	} while (0)

/* A NUL-terminated copy of the input (the caller frees it); a NUL inside cuts it short. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Non-zero when needle occurs in the len bytes at s. */
static inline int fuzz_contains(const char *s, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++)
		if (!memcmp(s + i, needle, n))
			return 1;
	return 0;
}

/* Non-zero when every byte is printable ASCII (what may go into an error reply). */
static inline int fuzz_printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

#endif
