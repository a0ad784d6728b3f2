/*
 * xalloc: allocation wrappers that abort on out-of-memory, and die().
 *
 * Owns nothing. Every pointer returned is owned by the caller and released
 * with free(). Running out of memory is not an error path in berth: the
 * process prints a message and aborts, so error paths stay reserved for I/O,
 * bad input and missing objects. Thread-safe.
 */
#ifndef BERTH_XALLOC_H
#define BERTH_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/*
 * Makes room for element n (n <= *alloc) in the array v of *alloc elements
 * of size bytes: returns v, or when full v reallocated to twice as many
 * (at least 16), *alloc updated. Dies when the size would overflow.
 */
void *xgrow(void *v, size_t *alloc, size_t n, size_t size);

/* Prints "fatal: <message>" to stderr and exits with status 1. */
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Adds a and b into *out; returns 0, or -1 when the sum would overflow. */
static inline int size_add(size_t a, size_t b, size_t *out)
{
	return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

#endif
