/*
 * buf: the one growable byte buffer used everywhere instead of ad hoc realloc.
 *
 * A struct buf is never NULL-backed: after BUF_INIT or buf_init() its .buf
 * points at a NUL-terminated string (a shared empty one until the first
 * growth), so it can always be printed. .len excludes the terminating NUL.
 * The buffer owns its memory; buf_release() frees it and leaves the buffer
 * empty and reusable; buf_detach() hands the memory to the caller (free()).
 * Growth is overflow-checked and aborts on out-of-memory. Not thread-safe:
 * one buffer, one thread.
 */
#ifndef BERTH_BUF_H
#define BERTH_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *buf;
	size_t len;
	size_t alloc;
};

extern char buf_empty_[1];
#define BUF_INIT { buf_empty_, 0, 0 }

void buf_init(struct buf *b, size_t hint);
void buf_release(struct buf *b);
/* Makes room for at least extra more bytes (plus the NUL). */
void buf_grow(struct buf *b, size_t extra);
void buf_setlen(struct buf *b, size_t len);
void buf_reset(struct buf *b);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addch(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vaddf(struct buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included; NULL appends null. */
void buf_add_json_str(struct buf *b, const char *s);
/* Returns the contents (caller frees) and leaves b empty; *len may be NULL. */
char *buf_detach(struct buf *b, size_t *len);

#endif
