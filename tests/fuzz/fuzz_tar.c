/*
 * fuzz_tar: libFuzzer target for the streaming tar reader of
 * storage/tarball.c (ustar, pax, GNU long names) and its writer.
 *
 * The input is read as an archive, handed over in pieces whose sizes come
 * from the input's first byte (down to one byte at a time). Whatever the
 * input, every entry handed out must have a clean relative name (no
 * leading '/' or "./", no "..", "." or empty component, no control
 * character, at most TAR_NAME_MAX bytes), a size within TAR_MAX_SIZE that
 * its data matches exactly, and the reader must never consume more than
 * the input. A refusal must come with a printable explanation. The files
 * and directories of an archive read without error are then written again
 * with the writer and read back: same names, types and bytes. Seeds live
 * in corpus/tar/.
 */
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "fuzz.h"
#include "tarball.h"

struct tarfz_in {
	const uint8_t *p;
	size_t len, off, step;
};

static ssize_t tarfz_read(void *ctx, void *buf, size_t len)
{
	struct tarfz_in *in = ctx;
	size_t n = in->len - in->off;
	if (n > len)
		n = len;
	if (in->step && n > in->step)
		n = in->step;
	memcpy(buf, in->p + in->off, n);
	in->off += n;
	return (ssize_t)n;
}

static int tarfz_write(void *ctx, const void *data, size_t len)
{
	buf_add(ctx, data, len);
	return 0;
}

static void tarfz_check_name(const char *name)
{
	size_t len = strlen(name), start = 0;
	FUZZ_ASSERT(len > 0 && len <= TAR_NAME_MAX);
	FUZZ_ASSERT(name[0] != '/');
	for (size_t i = 0; i <= len; i++) {
		if (i < len) {
			FUZZ_ASSERT((unsigned char)name[i] >= 0x20 && name[i] != 0x7f);
			if (name[i] != '/')
				continue;
		}
		size_t c = i - start;
		FUZZ_ASSERT(c > 0);
		FUZZ_ASSERT(!(c == 1 && name[start] == '.'));
		FUZZ_ASSERT(!(c == 2 && name[start] == '.' && name[start + 1] == '.'));
		start = i + 1;
	}
}

/*
 * Reads the archive; lists "type name\n" in names and the data in data.
 * Returns the reader's final code (0 at a clean end).
 */
static int tarfz_read_all(const uint8_t *p, size_t len, size_t step, struct buf *names, struct buf *data)
{
	struct tarfz_in in = { p, len, 0, step };
	struct tar_reader tr;
	struct tar_entry e;
	struct buf why = BUF_INIT;
	char chunk[1024];
	int rc;
	tar_reader_init(&tr, tarfz_read, &in);
	while ((rc = tar_next(&tr, &e, &why)) == 1) {
		int64_t got_total = 0;
		size_t got;
		tarfz_check_name(e.name);
		FUZZ_ASSERT(e.size >= 0 && e.size <= TAR_MAX_SIZE);
		FUZZ_ASSERT(e.type == TAR_FILE || e.size == 0);
		buf_addf(names, "%d %s\n", (int)e.type, e.name);
		while (!(rc = tar_read(&tr, chunk, sizeof(chunk), &got, &why)) && got) {
			got_total += (int64_t)got;
			buf_add(data, chunk, got);
		}
		if (rc)
			break;
		FUZZ_ASSERT(got_total == e.size);
		FUZZ_ASSERT(tr.pos <= (int64_t)len);
	}
	FUZZ_ASSERT(in.off <= len && tr.pos == (int64_t)in.off);
	if (rc == 0) {
		FUZZ_ASSERT(tar_next(&tr, &e, NULL) == 0); /* stays at the end */
	} else {
		FUZZ_ASSERT(rc == E_BAD_REQUEST);
		FUZZ_ASSERT(why.len > 0 && fuzz_printable(why.buf, why.len));
		FUZZ_ASSERT(tar_next(&tr, &e, NULL) == rc); /* stays failed */
	}
	tar_reader_release(&tr);
	buf_release(&why);
	return rc;
}

/* Writes the entries of a valid archive again (links are skipped: the writer makes none) and compares. */
static void tarfz_rewrite(const uint8_t *p, size_t len)
{
	struct tarfz_in in = { p, len, 0, 0 };
	struct buf out = BUF_INIT, want = BUF_INIT, data = BUF_INIT, names2 = BUF_INIT, data2 = BUF_INIT;
	struct tar_reader tr;
	struct tar_writer tw;
	struct tar_entry e;
	char chunk[1024];
	size_t got;
	tar_reader_init(&tr, tarfz_read, &in);
	tar_writer_init(&tw, tarfz_write, &out);
	while (tar_next(&tr, &e, NULL) == 1) {
		if (e.type == TAR_SYMLINK)
			continue;
		buf_addf(&want, "%d %s\n", (int)e.type, e.name);
		FUZZ_ASSERT(tar_write_header(&tw, e.name, e.type, e.size) == 0);
		while (!tar_read(&tr, chunk, sizeof(chunk), &got, NULL) && got) {
			FUZZ_ASSERT(tar_write_data(&tw, chunk, got) == 0);
			buf_add(&data, chunk, got);
		}
	}
	FUZZ_ASSERT(tar_write_end(&tw) == 0);
	FUZZ_ASSERT(tarfz_read_all((const uint8_t *)out.buf, out.len, 0, &names2, &data2) == 0);
	FUZZ_ASSERT(names2.len == want.len && !memcmp(names2.buf, want.buf, want.len));
	FUZZ_ASSERT(data2.len == data.len && !memcmp(data2.buf, data.buf, data.len));
	tar_reader_release(&tr);
	buf_release(&out);
	buf_release(&want);
	buf_release(&data);
	buf_release(&names2);
	buf_release(&data2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf names = BUF_INIT, content = BUF_INIT, names1 = BUF_INIT, content1 = BUF_INIT;
	/* The first byte picks how the input is handed over: whole, or in small pieces. */
	size_t step = size ? (size_t)(data[0] % 8) : 0;
	int rc = tarfz_read_all(data, size, 0, &names, &content);
	/* Piece sizes must not change the outcome. */
	int rc1 = tarfz_read_all(data, size, step ? step : 1, &names1, &content1);
	FUZZ_ASSERT(rc == rc1);
	FUZZ_ASSERT(names.len == names1.len && !memcmp(names.buf, names1.buf, names.len));
	FUZZ_ASSERT(content.len == content1.len && !memcmp(content.buf, content1.buf, content.len));
	if (rc == 0)
		tarfz_rewrite(data, size);
	buf_release(&names);
	buf_release(&content);
	buf_release(&names1);
	buf_release(&content1);
	return 0;
}
