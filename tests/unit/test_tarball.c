/* Unit tests for storage/tarball: writer/reader round trips, the formats read, and hostile archives. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "tarball.h"
#include "t.h"

/* ---- in-memory input and output */

struct mem {
	const char *p;
	size_t len, off, step; /* step: most bytes handed out per read (0: any) */
};

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
	struct mem *m = ctx;
	size_t n = m->len - m->off;
	if (n > len)
		n = len;
	if (m->step && n > m->step)
		n = m->step;
	memcpy(buf, m->p + m->off, n);
	m->off += n;
	return (ssize_t)n;
}

static int buf_write(void *ctx, const void *data, size_t len)
{
	buf_add(ctx, data, len);
	return 0;
}

static int fail_write(void *ctx, const void *data, size_t len)
{
	(void)ctx, (void)data, (void)len;
	return E_NO_SPACE;
}

/* ---- raw archive construction, for what the writer never produces */

static void fix_sum(unsigned char *h)
{
	unsigned sum = 0;
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

/* A POSIX ustar header; size_field NULL means the octal of size. */
static void raw_header(unsigned char *h, const char *name, char type, const char *size_field, uint64_t size)
{
	memset(h, 0, 512);
	memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
	memcpy(h + 100, "0000644", 8);
	memcpy(h + 108, "0000000", 8);
	memcpy(h + 116, "0000000", 8);
	if (size_field)
		memcpy(h + 124, size_field, strlen(size_field) < 12 ? strlen(size_field) : 12);
	else
		snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	memcpy(h + 136, "00000000000", 12);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar\0" "00", 8);
	fix_sum(h);
}

static void add_block(struct buf *b, const unsigned char *h)
{
	buf_add(b, h, 512);
}

static void add_data(struct buf *b, const void *data, size_t len)
{
	static const char zeros[512];
	buf_add(b, data, len);
	buf_add(b, zeros, (512 - len % 512) % 512);
}

static void add_entry(struct buf *b, const char *name, char type, const void *data, size_t len)
{
	unsigned char h[512];
	raw_header(h, name, type, NULL, len);
	add_block(b, h);
	add_data(b, data, len);
}

static void add_end(struct buf *b)
{
	static const char zeros[1024];
	buf_add(b, zeros, sizeof(zeros));
}

/* A pax record list as one string: records separated by '|' in spec, lengths computed here. */
static void pax_records(struct buf *out, const char *key, const char *value)
{
	size_t body = strlen(key) + strlen(value) + 3, len = body + 1;
	while ((size_t)snprintf(NULL, 0, "%zu", len) + body != len)
		len = (size_t)snprintf(NULL, 0, "%zu", len) + body;
	buf_addf(out, "%zu %s=%s\n", len, key, value);
}

static void add_pax(struct buf *b, char type, const char *records, size_t len)
{
	add_entry(b, "PaxHeader", type, records, len);
}

/* ---- reading helpers */

static struct buf why = BUF_INIT;

/* Reads the whole archive; returns the first error (0 at a clean end) and lists "name:type:size;" in got. */
static int read_all(const struct buf *archive, size_t step, struct buf *got, struct buf *content)
{
	struct mem m = { archive->buf, archive->len, 0, step };
	struct tar_reader tr;
	struct tar_entry e;
	int rc;
	buf_reset(&why);
	tar_reader_init(&tr, mem_read, &m);
	while ((rc = tar_next(&tr, &e, &why)) == 1) {
		char chunk[700];
		size_t n;
		buf_addf(got, "%s:%d:%lld;", e.name, (int)e.type, (long long)e.size);
		while (!(rc = tar_read(&tr, chunk, sizeof(chunk), &n, &why)) && n)
			if (content)
				buf_add(content, chunk, n);
		if (rc)
			break;
	}
	tar_reader_release(&tr);
	return rc;
}

#define EXPECT_BAD(archive, want) expect_bad(__LINE__, archive, want)
static void expect_bad(int line, const struct buf *archive, const char *want)
{
	struct buf got = BUF_INIT;
	int rc = read_all(archive, 0, &got, NULL);
	if (rc != E_BAD_REQUEST || !strstr(why.buf, want))
		fprintf(stderr, "line %d: rc %d, detail \"%s\" (want \"%s\")\n", line, rc, why.buf, want);
	CHECK_EQ_INT(rc, E_BAD_REQUEST);
	CHECK(strstr(why.buf, want) != NULL);
	buf_release(&got);
}

/* ---- tests */

static void test_round_trip(void)
{
	struct buf ar = BUF_INIT, got = BUF_INIT, content = BUF_INIT, want = BUF_INIT, longname = BUF_INIT,
		   split = BUF_INIT;
	struct tar_writer tw;
	char data[1500];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7 + 3);
	buf_adds(&longname, "blobs/sha512/");
	for (int i = 0; i < 128; i++)
		buf_addch(&longname, "0123456789abcdef"[i % 16]);
	buf_adds(&split, "dir-with-a-fairly-long-name-to-need-the-prefix-field/and-another-one/");
	buf_adds(&split, "file-name-that-is-long-enough-too.json");
	tar_writer_init(&tw, buf_write, &ar);
	CHECK_EQ_INT(tar_write_header(&tw, "blobs", TAR_DIR, 0), 0);
	CHECK_EQ_INT(tar_write_header(&tw, "empty", TAR_FILE, 0), 0);
	const size_t sizes[] = { 1, 511, 512, 513, 1500 };
	for (size_t i = 0; i < 5; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%zu", sizes[i]);
		CHECK_EQ_INT(tar_write_header(&tw, name, TAR_FILE, (int64_t)sizes[i]), 0);
		/* in two pieces, to cross the padding logic */
		CHECK_EQ_INT(tar_write_data(&tw, data, sizes[i] / 2), 0);
		CHECK_EQ_INT(tar_write_data(&tw, data + sizes[i] / 2, sizes[i] - sizes[i] / 2), 0);
		buf_add(&want, data, sizes[i]);
	}
	CHECK_EQ_INT(tar_write_header(&tw, longname.buf, TAR_FILE, 3), 0);
	CHECK_EQ_INT(tar_write_data(&tw, "abc", 3), 0);
	CHECK_EQ_INT(tar_write_header(&tw, split.buf, TAR_FILE, 2), 0);
	CHECK_EQ_INT(tar_write_data(&tw, "xy", 2), 0);
	buf_adds(&want, "abcxy");
	CHECK_EQ_INT(tar_write_end(&tw), 0);
	CHECK_EQ_INT(ar.len % 512, 0);
	CHECK_EQ_INT(tw.pos, (int64_t)ar.len);

	for (size_t step = 0; step < 3; step++) { /* any read size, down to one byte */
		buf_reset(&got);
		buf_reset(&content);
		CHECK_EQ_INT(read_all(&ar, step == 2 ? 1 : step * 100, &got, &content), 0);
		struct buf expect = BUF_INIT;
		buf_addf(&expect, "blobs:1:0;empty:0:0;f1:0:1;f511:0:511;f512:0:512;f513:0:513;f1500:0:1500;%s:0:3;%s:0:2;",
			 longname.buf, split.buf);
		CHECK_STR(got.buf, expect.buf);
		CHECK(content.len == want.len && !memcmp(content.buf, want.buf, want.len));
		buf_release(&expect);
	}
	/* The same input always makes the same bytes. */
	struct buf again = BUF_INIT;
	tar_writer_init(&tw, buf_write, &again);
	CHECK_EQ_INT(tar_write_header(&tw, "blobs", TAR_DIR, 0), 0);
	CHECK(again.len == 512 && !memcmp(again.buf, ar.buf, 512));
	buf_release(&again);
	buf_release(&ar);
	buf_release(&got);
	buf_release(&content);
	buf_release(&want);
	buf_release(&longname);
	buf_release(&split);
}

static void test_writer_misuse(void)
{
	struct buf ar = BUF_INIT;
	struct tar_writer tw;
	tar_writer_init(&tw, buf_write, &ar);
	CHECK_EQ_INT(tar_write_header(&tw, "/abs", TAR_FILE, 1), E_INTERNAL);
	CHECK_EQ_INT(tar_write_header(&tw, "", TAR_FILE, 1), E_INTERNAL);
	CHECK_EQ_INT(tar_write_header(&tw, "d", TAR_DIR, 5), E_INTERNAL);
	CHECK_EQ_INT(tar_write_header(&tw, "l", TAR_SYMLINK, 0), E_INTERNAL);
	CHECK_EQ_INT(tar_write_header(&tw, "f", TAR_FILE, 2), 0);
	CHECK_EQ_INT(tar_write_data(&tw, "abc", 3), E_INTERNAL); /* more than announced */
	CHECK_EQ_INT(tar_write_header(&tw, "g", TAR_FILE, 0), E_INTERNAL); /* f incomplete */
	CHECK_EQ_INT(tar_write_end(&tw), E_INTERNAL);
	CHECK_EQ_INT(tar_write_data(&tw, "ab", 2), 0);
	CHECK_EQ_INT(tar_write_end(&tw), 0);
	CHECK_EQ_INT(tar_write_header(&tw, "h", TAR_FILE, 0), E_INTERNAL); /* after the end */
	buf_release(&ar);

	tar_writer_init(&tw, fail_write, NULL);
	CHECK_EQ_INT(tar_write_header(&tw, "f", TAR_FILE, 1), E_NO_SPACE);
	CHECK_EQ_INT(tar_write_data(&tw, "a", 1), E_NO_SPACE); /* stays failed */
}

static void test_big_size_header(void)
{
	struct buf ar = BUF_INIT;
	struct tar_writer tw;
	struct tar_reader tr;
	struct tar_entry e;
	int64_t big = INT64_C(9) << 30; /* beyond the 11 octal digits of ustar: needs a pax size */
	tar_writer_init(&tw, buf_write, &ar);
	CHECK_EQ_INT(tar_write_header(&tw, "big", TAR_FILE, big), 0);
	CHECK_EQ_INT(tar_write_header(&tw, "toobig", TAR_FILE, TAR_MAX_SIZE + 1), E_INTERNAL);
	struct mem m = { ar.buf, ar.len, 0, 0 };
	tar_reader_init(&tr, mem_read, &m);
	CHECK_EQ_INT(tar_next(&tr, &e, NULL), 1);
	CHECK_STR(e.name, "big");
	CHECK_EQ_INT(e.size, big);
	/* The data is not there: the next entry finds the archive truncated. */
	CHECK_EQ_INT(tar_next(&tr, &e, NULL), E_BAD_REQUEST);
	CHECK_EQ_INT(tar_next(&tr, &e, NULL), E_BAD_REQUEST); /* stays failed */
	tar_reader_release(&tr);
	buf_release(&ar);
}

static void test_formats_read(void)
{
	struct buf ar = BUF_INIT, got = BUF_INIT, content = BUF_INIT, rec = BUF_INIT, name = BUF_INIT;
	unsigned char h[512];

	/* "./" prefixes, the "." entry, a symbolic link, contiguous files */
	add_entry(&ar, "./", '5', NULL, 0);
	add_entry(&ar, "./index.json", '0', "{}", 2);
	add_entry(&ar, "././blobs/", '5', NULL, 0);
	raw_header(h, "id/layer.tar", '2', NULL, 0);
	memcpy(h + 157, "../x.tar", 8);
	fix_sum(h);
	add_block(&ar, h);
	add_entry(&ar, "c", '7', "z", 1);
	add_entry(&ar, "old", '\0', "q", 1);
	add_end(&ar);
	CHECK_EQ_INT(read_all(&ar, 0, &got, &content), 0);
	CHECK_STR(got.buf, "index.json:0:2;blobs:1:0;id/layer.tar:2:0;c:0:1;old:0:1;");
	CHECK_STR(content.buf, "{}zq");

	/* pax path and size override the header; a global header with harmless keys; GNU long names */
	buf_reset(&ar);
	buf_reset(&got);
	buf_reset(&content);
	pax_records(&rec, "comment", "hello");
	add_pax(&ar, 'g', rec.buf, rec.len);
	buf_reset(&rec);
	for (int i = 0; i < 300; i++)
		buf_addch(&name, 'a' + i % 26);
	pax_records(&rec, "mtime", "1700000000.5");
	pax_records(&rec, "path", name.buf);
	pax_records(&rec, "size", "5");
	add_pax(&ar, 'x', rec.buf, rec.len);
	raw_header(h, "short", '0', NULL, 99); /* the pax size (5) wins */
	add_block(&ar, h);
	add_data(&ar, "12345", 5);
	/* GNU: magic "ustar  ", long name in an 'L' entry */
	memset(h, 0, 512);
	raw_header(h, "././@LongLink", 'L', NULL, 200);
	memcpy(h + 257, "ustar  \0", 8);
	fix_sum(h);
	add_block(&ar, h);
	struct buf gname = BUF_INIT;
	for (int i = 0; i < 199; i++)
		buf_addch(&gname, 'g');
	add_data(&ar, gname.buf, 200); /* includes the NUL */
	raw_header(h, "trunc", '0', NULL, 2);
	memcpy(h + 257, "ustar  \0", 8);
	fix_sum(h);
	add_block(&ar, h);
	add_data(&ar, "ok", 2);
	add_end(&ar);
	struct buf expect = BUF_INIT;
	buf_addf(&expect, "%s:0:5;%s:0:2;", name.buf, gname.buf);
	CHECK_EQ_INT(read_all(&ar, 7, &got, &content), 0);
	CHECK_STR(got.buf, expect.buf);
	CHECK_STR(content.buf, "12345ok");

	/* base-256 size field, octal with blanks, and a single end block then EOF */
	buf_reset(&ar);
	buf_reset(&got);
	raw_header(h, "b256", '0', NULL, 0);
	memset(h + 124, 0, 12);
	h[124] = 0x80;
	h[135] = 3;
	fix_sum(h);
	add_block(&ar, h);
	add_data(&ar, "abc", 3);
	raw_header(h, "blank", '0', "     4 ", 0);
	add_block(&ar, h);
	add_data(&ar, "abcd", 4);
	buf_add(&ar, (char[512]){ 0 }, 512);
	CHECK_EQ_INT(read_all(&ar, 0, &got, NULL), 0);
	CHECK_STR(got.buf, "b256:0:3;blank:0:4;");

	buf_release(&expect);
	buf_release(&gname);
	buf_release(&ar);
	buf_release(&got);
	buf_release(&content);
	buf_release(&rec);
	buf_release(&name);
}

static void test_hostile_names(void)
{
	static const struct {
		const char *name;
		char type;
		const char *want;
	} cases[] = {
		{ "../etc/passwd", '0', "climbs out" },
		{ "a/../../b", '0', "climbs out" },
		{ "a/..", '5', "climbs out" },
		{ "./../x", '0', "climbs out" },
		{ "/etc/passwd", '0', "absolute" },
		{ ".//x", '0', "empty path component" },
		{ "a//b", '0', "empty path component" },
		{ "a/./b", '0', "\".\" path component" },
		{ "file/", '0', "empty path component" },
		{ "", '0', "has no name" },
		{ ".", '0', "has no name" },
		{ "a\nb", '0', "control character" },
		{ "evil/link", '1', "hard link" },
		{ "dev", '3', "device node" },
		{ "blk", '4', "device node" },
		{ "fifo", '6', "FIFO" },
		{ "sparse", 'S', "sparse" },
		{ "volume", 'V', "unsupported entry type" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf ar = BUF_INIT;
		add_entry(&ar, "ok", '0', "x", 1);
		add_entry(&ar, cases[i].name, cases[i].type, NULL, 0);
		add_end(&ar);
		EXPECT_BAD(&ar, cases[i].want);
		buf_release(&ar);
	}
	/* The same through a pax path and a GNU long name. */
	struct buf ar = BUF_INIT, rec = BUF_INIT;
	pax_records(&rec, "path", "../../root/.ssh/authorized_keys");
	add_pax(&ar, 'x', rec.buf, rec.len);
	add_entry(&ar, "innocent", '0', "x", 1);
	add_end(&ar);
	EXPECT_BAD(&ar, "climbs out");
	buf_reset(&ar);
	add_entry(&ar, "././@LongLink", 'L', "/abs/path", 10);
	add_entry(&ar, "innocent", '0', "x", 1);
	add_end(&ar);
	EXPECT_BAD(&ar, "absolute");
	/* A NUL inside a pax path. */
	buf_reset(&ar);
	buf_reset(&rec);
	buf_add(&rec, "12 path=a\0b\n", 12);
	add_pax(&ar, 'x', rec.buf, rec.len);
	add_entry(&ar, "x", '0', NULL, 0);
	add_end(&ar);
	EXPECT_BAD(&ar, "NUL");
	/* Names longer than TAR_NAME_MAX. */
	buf_reset(&ar);
	buf_reset(&rec);
	struct buf huge = BUF_INIT;
	for (int i = 0; i < TAR_NAME_MAX + 10; i++)
		buf_addch(&huge, 'n');
	pax_records(&rec, "path", huge.buf);
	add_pax(&ar, 'x', rec.buf, rec.len);
	add_entry(&ar, "x", '0', NULL, 0);
	add_end(&ar);
	EXPECT_BAD(&ar, "exceeds the limit");
	buf_reset(&ar);
	add_entry(&ar, "././@LongLink", 'L', huge.buf, huge.len);
	add_entry(&ar, "x", '0', NULL, 0);
	add_end(&ar);
	EXPECT_BAD(&ar, "exceeds the limit");
	buf_release(&huge);
	buf_release(&ar);
	buf_release(&rec);
}

static void test_truncated(void)
{
	struct buf full = BUF_INIT, ar = BUF_INIT;
	char data[1000];
	memset(data, 'd', sizeof(data));
	add_entry(&full, "a", '0', data, sizeof(data));
	add_entry(&full, "b", '0', "x", 1);
	add_end(&full);
	/* Cut anywhere before the end block: always an error, never a silent success. */
	size_t cuts[] = { 1, 100, 511, 512, 513, 1000, 1024, 1535, 1536, 1600, 2048, 2559, 2560 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		buf_reset(&ar);
		buf_add(&ar, full.buf, cuts[i]);
		EXPECT_BAD(&ar, "truncated");
	}
	buf_reset(&ar);
	EXPECT_BAD(&ar, "truncated"); /* empty input */
	/* Ending right after an extended header. */
	struct buf rec = BUF_INIT;
	buf_reset(&ar);
	pax_records(&rec, "path", "x");
	add_pax(&ar, 'x', rec.buf, rec.len);
	add_end(&ar);
	EXPECT_BAD(&ar, "after an extended header");
	buf_release(&rec);
	buf_release(&full);
	buf_release(&ar);
}

static void test_bad_numbers(void)
{
	static const char *fields[] = { "1234567890x", "-1", "0x10", "8" };
	unsigned char h[512];
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		struct buf ar = BUF_INIT;
		raw_header(h, "f", '0', fields[i], 0);
		add_block(&ar, h);
		add_end(&ar);
		EXPECT_BAD(&ar, "malformed size field");
		buf_release(&ar);
	}
	struct buf ar = BUF_INIT;
	/* base-256: negative, and more bits than fit */
	raw_header(h, "neg", '0', NULL, 0);
	memset(h + 124, 0xff, 12);
	fix_sum(h);
	add_block(&ar, h);
	add_end(&ar);
	EXPECT_BAD(&ar, "malformed size field");
	buf_reset(&ar);
	raw_header(h, "wide", '0', NULL, 0);
	memset(h + 124, 0xff, 12);
	h[124] = 0x80;
	fix_sum(h);
	add_block(&ar, h);
	add_end(&ar);
	EXPECT_BAD(&ar, "malformed size field");
	/* valid octal, but above TAR_MAX_SIZE: 12 digits (64 GiB) fit, base-256 2^50 does not */
	buf_reset(&ar);
	raw_header(h, "huge", '0', NULL, 0);
	memset(h + 124, 0, 12);
	h[124] = 0x80;
	h[129] = 0x04; /* 2^50 */
	fix_sum(h);
	add_block(&ar, h);
	add_end(&ar);
	EXPECT_BAD(&ar, "above the limit");
	/* pax sizes */
	static const char *pax_sizes[] = { "-1", "12a", "", "99999999999999999999999", "1099511627777" };
	for (size_t i = 0; i < sizeof(pax_sizes) / sizeof(pax_sizes[0]); i++) {
		struct buf rec = BUF_INIT;
		buf_reset(&ar);
		pax_records(&rec, "size", pax_sizes[i]);
		add_pax(&ar, 'x', rec.buf, rec.len);
		add_entry(&ar, "f", '0', NULL, 0);
		add_end(&ar);
		EXPECT_BAD(&ar, "pax size");
		buf_release(&rec);
	}
	buf_release(&ar);
}

static void test_bad_headers(void)
{
	struct buf ar = BUF_INIT, rec = BUF_INIT;
	unsigned char h[512];
	/* checksum */
	raw_header(h, "f", '0', NULL, 0);
	h[0] = 'g';
	add_block(&ar, h);
	add_end(&ar);
	EXPECT_BAD(&ar, "checksum");
	/* no ustar magic (a V7 header, or not a tar at all) */
	buf_reset(&ar);
	raw_header(h, "f", '0', NULL, 0);
	memset(h + 257, 0, 8);
	fix_sum(h);
	add_block(&ar, h);
	add_end(&ar);
	EXPECT_BAD(&ar, "not a tar archive");
	buf_reset(&ar);
	static const char gz[] = "\x1f\x8b\x08\x00 gzip data, not a tar";
	buf_add(&ar, gz, sizeof(gz) - 1);
	for (int i = 0; i < 40; i++)
		buf_add(&ar, "0123456789abcdef", 16);
	EXPECT_BAD(&ar, "not a tar archive");
	/* a huge extended header is refused before it is read */
	buf_reset(&ar);
	raw_header(h, "PaxHeader", 'x', NULL, (uint64_t)TAR_MAX_EXT + 1);
	add_block(&ar, h);
	add_end(&ar);
	EXPECT_BAD(&ar, "extended header of");
	buf_reset(&ar);
	raw_header(h, "././@LongLink", 'L', NULL, 1u << 30);
	add_block(&ar, h);
	EXPECT_BAD(&ar, "extended header of");
	/* malformed pax records */
	static const char *records[] = { "x path=a\n", "5 path=a\n", "99 path=a\n", "10 patha\n", "9 =value\n",
					 "10 path=ab", " 9 path=a\n" };
	for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
		buf_reset(&ar);
		add_pax(&ar, 'x', records[i], strlen(records[i]));
		add_entry(&ar, "f", '0', NULL, 0);
		add_end(&ar);
		EXPECT_BAD(&ar, "pax record");
	}
	/* sparse keys, a global path, two 'x' in a row, too many extended headers */
	buf_reset(&ar);
	pax_records(&rec, "GNU.sparse.map", "0,10");
	add_pax(&ar, 'x', rec.buf, rec.len);
	add_entry(&ar, "f", '0', NULL, 0);
	add_end(&ar);
	EXPECT_BAD(&ar, "sparse");
	buf_reset(&ar);
	buf_reset(&rec);
	pax_records(&rec, "path", "etc/passwd");
	add_pax(&ar, 'g', rec.buf, rec.len);
	add_entry(&ar, "f", '0', NULL, 0);
	add_end(&ar);
	EXPECT_BAD(&ar, "global pax header sets a path");
	buf_reset(&ar);
	add_pax(&ar, 'x', rec.buf, rec.len);
	add_pax(&ar, 'x', rec.buf, rec.len);
	add_entry(&ar, "f", '0', NULL, 0);
	add_end(&ar);
	EXPECT_BAD(&ar, "two extended headers");
	buf_reset(&ar);
	buf_reset(&rec);
	pax_records(&rec, "comment", "c");
	for (int i = 0; i < 9; i++)
		add_pax(&ar, 'g', rec.buf, rec.len);
	add_entry(&ar, "f", '0', NULL, 0);
	add_end(&ar);
	EXPECT_BAD(&ar, "extended headers for one entry");
	buf_release(&ar);
	buf_release(&rec);
}

static ssize_t broken_read(void *ctx, void *buf, size_t len)
{
	(void)ctx, (void)buf, (void)len;
	return E_IO;
}

static void test_read_error(void)
{
	struct tar_reader tr;
	struct tar_entry e;
	tar_reader_init(&tr, broken_read, NULL);
	CHECK_EQ_INT(tar_next(&tr, &e, NULL), E_IO);
	CHECK_EQ_INT(tar_next(&tr, &e, NULL), E_IO);
	tar_reader_release(&tr);
}

int main(void)
{
	test_round_trip();
	test_writer_misuse();
	test_big_size_header();
	test_formats_read();
	test_hostile_names();
	test_truncated();
	test_bad_numbers();
	test_bad_headers();
	test_read_error();
	buf_release(&why);
	return t_done();
}
