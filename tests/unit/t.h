/*
 * t.h: the minimal assertion helpers shared by the unit test programs.
 * A failed check prints file:line and the expression and marks the program
 * failed; main() returns t_done(), which prints a summary line.
 */
#ifndef BERTH_T_H
#define BERTH_T_H

#include <stdio.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(expr)                                                            \
	do {                                                                   \
		if (expr) {                                                    \
			t_pass++;                                              \
		} else {                                                       \
			t_fail++;                                              \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #expr);                              \
		}                                                              \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                     \
	do {                                                                   \
		long long t_a = (long long)(a), t_b = (long long)(b);          \
		if (t_a == t_b) {                                              \
			t_pass++;                                              \
		} else {                                                       \
			t_fail++;                                              \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", \
				__FILE__, __LINE__, #a, #b, t_a, t_b);         \
		}                                                              \
	} while (0)

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *t_a = (a), *t_b = (b);                             \
		if (t_a && t_b && !strcmp(t_a, t_b)) {                         \
			t_pass++;                                              \
		} else {                                                       \
			t_fail++;                                              \
			fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", \
				__FILE__, __LINE__, #a, #b, t_a ? t_a : "(null)", \
				t_b ? t_b : "(null)");                         \
		}                                                              \
	} while (0)

static inline int t_done(void)
{
	printf("%d passed, %d failed\n", t_pass, t_fail);
	return t_fail ? 1 : 0;
}

#endif
