/* Unit tests for common/glob: components, '*', '**', and inputs that would make a backtracking matcher slow. */
#include <stdio.h>

#include "glob.h"
#include "t.h"

static void test_cases(void)
{
	static const struct {
		const char *glob, *name;
		int match;
	} cases[] = {
		{ "exact", "exact", 1 },
		{ "exact", "exac", 0 },
		{ "exact", "exactly", 0 },
		{ "a/b", "a/b", 1 },
		{ "a/b", "a/b/c", 0 },
		{ "a/b", "a", 0 },
		{ "team-a/*", "team-a/app", 1 },
		{ "team-a/*", "team-a", 0 },
		{ "team-a/*", "team-a/x/y", 0 },
		{ "team-a/*", "team-ab/x", 0 },
		{ "team-a/**", "team-a", 1 },
		{ "team-a/**", "team-a/x", 1 },
		{ "team-a/**", "team-a/x/y/z", 1 },
		{ "team-a/**", "team-ab", 0 },
		{ "team-a/**", "team-ab/x", 0 },
		{ "team-a/**", "team-b/x", 0 },
		{ "team-a/**", "x/team-a", 0 },
		{ "*", "a", 1 },
		{ "*", "a/b", 0 },
		{ "*", "", 0 },
		{ "**", "a", 1 },
		{ "**", "a/b/c", 1 },
		{ "**", "", 1 },
		{ "a/**/b", "a/b", 1 },
		{ "a/**/b", "a/x/b", 1 },
		{ "a/**/b", "a/x/y/b", 1 },
		{ "a/**/b", "a/b/b", 1 },
		{ "a/**/b", "a/x/y/c", 0 },
		{ "a/**/b", "a/b/c", 0 },
		{ "a/**/b", "b", 0 },
		{ "**/cache", "cache", 1 },
		{ "**/cache", "x/y/cache", 1 },
		{ "**/cache", "x/cache2", 0 },
		{ "**/cache", "cache/x", 0 },
		{ "**/b/**", "b", 1 },
		{ "**/b/**", "a/b/c", 1 },
		{ "**/b/**", "a/c", 0 },
		{ "**/**", "a", 1 },
		{ "a/**/**/b", "a/b", 1 },
		{ "a/**/*/b", "a/b", 0 },
		{ "a/**/*/b", "a/x/b", 1 },
		{ "*/**", "a", 1 },
		{ "*/**", "a/b/c", 1 },
		{ "*-cache", "go-cache", 1 },
		{ "*-cache", "-cache", 1 },
		{ "*-cache", "x/go-cache", 0 },
		{ "*-cache", "go-cache2", 0 },
		{ "lib*", "lib", 1 },
		{ "lib*", "library", 1 },
		{ "lib*", "li", 0 },
		{ "lib*", "library/x", 0 },
		{ "*/app", "team/app", 1 },
		{ "*/app", "app", 0 },
		{ "a*b*c", "abc", 1 },
		{ "a*b*c", "axbyc", 1 },
		{ "a*b*c", "abcbc", 1 },
		{ "a*b*c", "axby", 0 },
		{ "a*c", "abcbd", 0 },
		{ "**", "a**", 1 },
		{ "a*", "a*", 1 },
		{ "", "", 1 },
		{ "", "a", 0 },
		{ "a", "", 0 },
		/* Backtracking-hostile inputs must stay fast. */
		{ "*a*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0 },
		{ "**/**/**/**/**/**/**/**/**/**/z", "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/y", 0 },
		{ "**/**/**/**/**/**/**/**/**/**/z", "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/z", 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = glob_match(cases[i].glob, cases[i].name);
		if (got != cases[i].match)
			fprintf(stderr, "glob \"%s\" vs \"%s\": got %d\n", cases[i].glob, cases[i].name, got);
		CHECK_EQ_INT(got, cases[i].match);
	}
}

int main(void)
{
	test_cases();
	return t_done();
}
