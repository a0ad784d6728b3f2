/*
 * t.h: the minimal assertion helpers shared by the unit test programs.
 * A failed check prints file:line and the expression and marks the program
 * failed; main() returns t_done(), which prints a summary line.
 */
#ifndef BERTH_T_H
#define BERTH_T_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"

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

/* Creates a fresh directory $TMPDIR/berth-<name>-XXXXXX (TMPDIR default /tmp) into dir; 0, or -1 (reported). */
static inline int t_scratch(struct buf *dir, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	buf_addf(dir, "%s/berth-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	if (mkdtemp(dir->buf))
		return 0;
	perror("mkdtemp");
	return -1;
}

static inline int t_rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes the tree at path (a scratch directory); 0 or -1. */
static inline int t_rmtree(const char *path)
{
	return nftw(path, t_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static inline int t_done(void)
{
	printf("%d passed, %d failed\n", t_pass, t_fail);
	return t_fail ? 1 : 0;
}

#endif
