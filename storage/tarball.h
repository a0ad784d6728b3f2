/*
 * tarball: a streaming reader and writer for the tar archives container
 * images travel in (docker save, OCI layouts packed with tar or skopeo).
 *
 * The reader understands POSIX ustar, pax extended headers ('x', and 'g'
 * as long as it only carries harmless keys) and GNU long names ('L'), and
 * is strict about everything else. It hands over only regular files,
 * directories and symbolic links whose names are relative paths without
 * "..", "." or empty components (a leading "./" is dropped, and the "."
 * entry of the top directory is skipped). A symbolic link is reported
 * without its target, as a name the caller must refuse or ignore but never
 * follow (docker-archive writers add such links for legacy paths). It
 * refuses hard links, devices, FIFOs, sparse files and unknown entry
 * types, bad header checksums,
 * malformed or overflowing number fields, sizes above TAR_MAX_SIZE,
 * extended headers above TAR_MAX_EXT bytes, names above TAR_NAME_MAX
 * bytes or holding control characters, and input that ends before the
 * end-of-archive block. It holds at most one header block and one extended
 * header in memory, whatever the archive's size; data is copied straight
 * into the caller's buffer.
 *
 * The writer emits POSIX ustar headers, adding a pax header when a name or
 * size does not fit, with fixed owner, mode and time so that the same
 * content always makes the same archive.
 *
 * Both work through caller-supplied I/O callbacks. Errors are returned as
 * E_BAD_REQUEST (the archive is malformed or hostile; detail says why and
 * where) or the callback's own code; after an error the object only
 * accepts release. A reader or writer belongs to one thread at a time.
 */
#ifndef BERTH_TARBALL_H
#define BERTH_TARBALL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define TAR_BLOCK 512
/* Longest entry name accepted or written, bytes. */
#define TAR_NAME_MAX 4096
/* Largest pax header or GNU long name accepted, bytes. */
#define TAR_MAX_EXT 65536
/* Largest entry accepted: 1 TiB. */
#define TAR_MAX_SIZE (INT64_C(1) << 40)

enum tar_type { TAR_FILE = 0, TAR_DIR = 1, TAR_SYMLINK = 2 };

/*
 * Reads up to len bytes into buf: returns the count (> 0), 0 at the end of
 * the input, or a negative E_* code (E_IO) on a read error.
 */
typedef ssize_t (*tar_read_fn)(void *ctx, void *buf, size_t len);

struct tar_reader {
	tar_read_fn read;
	void *ctx;
	int64_t pos;      /* bytes consumed from the input so far */
	int64_t left;     /* data bytes of the current entry not read yet */
	int64_t pad;      /* padding after them */
	int state;        /* 0 reading, 1 at the end, < 0 failed with that code */
	struct buf name;  /* the current entry's name */
	struct buf ext;   /* scratch: extended header being parsed */
};

struct tar_entry {
	const char *name; /* valid until the next tar_next() or tar_reader_release() */
	enum tar_type type;
	int64_t size;     /* data bytes (0 for directories and links) */
	int64_t offset;   /* where the entry's header started, for messages */
};

void tar_reader_init(struct tar_reader *tr, tar_read_fn fn, void *ctx);
void tar_reader_release(struct tar_reader *tr);
/*
 * Moves to the next entry (skipping what is left of the current one's
 * data). Returns 1 and fills *e, 0 at the end of the archive, or a
 * negative code with an explanation appended to detail (may be NULL).
 */
int tar_next(struct tar_reader *tr, struct tar_entry *e, struct buf *detail);
/*
 * Reads up to len bytes of the current entry's data into buf; *got is 0
 * once the entry's data is exhausted. Returns 0 or a negative code (a
 * truncated archive is E_BAD_REQUEST).
 */
int tar_read(struct tar_reader *tr, void *buf, size_t len, size_t *got, struct buf *detail);

/* Writes all len bytes or returns a negative E_* code (E_IO, E_NO_SPACE). */
typedef int (*tar_write_fn)(void *ctx, const void *data, size_t len);

struct tar_writer {
	tar_write_fn write;
	void *ctx;
	int64_t pos;  /* bytes written so far */
	int64_t left; /* data bytes the current entry still needs */
	int64_t pad;  /* padding owed once they are written */
	int state;    /* 0 writing, 1 ended, < 0 failed */
};

void tar_writer_init(struct tar_writer *tw, tar_write_fn fn, void *ctx);
/*
 * Starts an entry, a file or a directory (links are never written): name
 * is relative, without a trailing '/' (added for directories), at most
 * TAR_NAME_MAX bytes; size is 0 for directories.
 * The previous entry must be complete. Returns 0, E_INTERNAL on misuse or
 * the write callback's code.
 */
int tar_write_header(struct tar_writer *tw, const char *name, enum tar_type type, int64_t size);
/* Appends data to the current entry (never more than its size); pads the entry when it is complete. */
int tar_write_data(struct tar_writer *tw, const void *data, size_t len);
/* Writes the end-of-archive blocks; E_INTERNAL when an entry is incomplete. */
int tar_write_end(struct tar_writer *tw);

#endif
