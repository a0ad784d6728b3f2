/* tarball: streaming ustar/pax reader and writer with strict checks (see tarball.h). */
#include "tarball.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

/* POSIX ustar header layout: offsets and lengths of the fields used. */
#define H_NAME 0
#define L_NAME 100
#define H_MODE 100
#define H_UID 108
#define H_GID 116
#define H_SIZE 124
#define L_SIZE 12
#define H_MTIME 136
#define H_CHKSUM 148
#define L_CHKSUM 8
#define H_TYPE 156
#define H_MAGIC 257
#define H_DEVMAJOR 329
#define H_DEVMINOR 337
#define H_PREFIX 345
#define L_PREFIX 155

/* Extended headers allowed in a row before one entry. */
#define EXT_CHAIN_MAX 8
/* Largest size an octal size field holds (11 digits). */
#define OCTAL_SIZE_MAX INT64_C(077777777777)

/* ------------------------------------------------------------------ reader */

/* Extended-header state gathered for the entry that follows. */
struct pending {
	int name_src;  /* 0: none, 1: GNU long name, 2: pax path (wins) */
	int has_size;
	int64_t size;
	int has_x, has_l, chain;
};

void tar_reader_init(struct tar_reader *tr, tar_read_fn fn, void *ctx)
{
	memset(tr, 0, sizeof(*tr));
	tr->read = fn;
	tr->ctx = ctx;
	buf_init(&tr->name, 0);
	buf_init(&tr->ext, 0);
}

void tar_reader_release(struct tar_reader *tr)
{
	buf_release(&tr->name);
	buf_release(&tr->ext);
}

/* Appends s (len bytes) quoted, showing bytes that are not printable ASCII as \xNN, cut at 200 bytes. */
static void add_quoted(struct buf *b, const char *s, size_t len)
{
	size_t n = len > 200 ? 200 : len;
	buf_addch(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
			buf_addf(b, "\\x%02x", c);
		else
			buf_addch(b, (char)c);
	}
	buf_adds(b, n < len ? "...\"" : "\"");
}

/* Records a malformed-archive failure of the header at byte at; name (may be NULL) is quoted first. */
__attribute__((format(printf, 5, 6)))
static int bad(struct tar_reader *tr, struct buf *detail, int64_t at, const struct buf *name, const char *fmt, ...)
{
	if (detail) {
		va_list ap;
		if (name) {
			add_quoted(detail, name->buf, name->len);
			buf_addch(detail, ' ');
		}
		va_start(ap, fmt);
		buf_vaddf(detail, fmt, ap);
		va_end(ap);
		buf_addf(detail, " (tar header at byte %lld)", (long long)at);
	}
	tr->state = E_BAD_REQUEST;
	return E_BAD_REQUEST;
}

static int io_fail(struct tar_reader *tr, ssize_t r)
{
	tr->state = (r < E_ERR_MIN || r >= 0) ? E_IO : (int)r;
	return tr->state;
}

/* Reads up to n bytes, stopping early only at the end of the input; *got says how many. */
static int read_full(struct tar_reader *tr, void *buf, size_t n, size_t *got)
{
	*got = 0;
	while (*got < n) {
		ssize_t r = tr->read(tr->ctx, (char *)buf + *got, n - *got);
		if (r < 0 || (size_t)r > n - *got)
			return io_fail(tr, r < 0 ? r : E_INTERNAL);
		if (r == 0)
			break;
		*got += (size_t)r;
		tr->pos += r;
	}
	return 0;
}

/* Consumes n bytes of entry data or padding. */
static int skip(struct tar_reader *tr, int64_t n, struct buf *detail)
{
	char scratch[8192];
	while (n > 0) {
		size_t want = n > (int64_t)sizeof(scratch) ? sizeof(scratch) : (size_t)n, got;
		int rc = read_full(tr, scratch, want, &got);
		if (rc)
			return rc;
		if (got < want)
			return bad(tr, detail, tr->pos, &tr->name, "is cut short: the archive is truncated");
		n -= (int64_t)got;
	}
	return 0;
}

/*
 * Parses a numeric header field: octal digits (leading blanks, then NUL
 * or blank padding) or the base-256 form (first byte 0x80..0xbf). Returns
 * 0, or -1 when malformed, negative or too large for 62 bits.
 */
static int parse_num(const unsigned char *f, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	if (f[0] & 0x80) {
		if (f[0] & 0x40)
			return -1;
		v = f[0] & 0x3f;
		for (i = 1; i < n; i++) {
			if (v >> 54)
				return -1;
			v = (v << 8) | f[i];
		}
		*out = v;
		return 0;
	}
	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 58)
			return -1;
		v = v * 8 + (uint64_t)(f[i] - '0');
	}
	while (i < n && (f[i] == ' ' || f[i] == '\0'))
		i++;
	if (i != n)
		return -1;
	*out = v;
	return 0;
}

static int all_zero(const unsigned char *h)
{
	for (size_t i = 0; i < TAR_BLOCK; i++)
		if (h[i])
			return 0;
	return 1;
}

/* Checksum and magic; sets *posix for the POSIX ustar magic (which has the prefix field). */
static int check_header(struct tar_reader *tr, const unsigned char *h, int64_t at, int *posix, struct buf *detail)
{
	uint64_t want, usum = 0;
	int64_t ssum = 0;
	for (size_t i = 0; i < TAR_BLOCK; i++) {
		unsigned char c = (i >= H_CHKSUM && i < H_CHKSUM + L_CHKSUM) ? ' ' : h[i];
		usum += c;
		ssum += (signed char)c;
	}
	if (!memcmp(h + H_MAGIC, "ustar\0" "00", 8))
		*posix = 1;
	else if (!memcmp(h + H_MAGIC, "ustar  \0", 8))
		*posix = 0;
	else
		return bad(tr, detail, at, NULL, "not a tar archive: a header without the ustar magic");
	if (parse_num(h + H_CHKSUM, L_CHKSUM, &want) || (want != usum && (int64_t)want != ssum))
		return bad(tr, detail, at, NULL, "header checksum mismatch: the archive is corrupt");
	return 0;
}

/* Reads an extended header's data (n bytes) into tr->ext, with its padding. */
static int read_ext(struct tar_reader *tr, uint64_t n, int64_t at, struct buf *detail)
{
	size_t got;
	int rc;
	if (n > TAR_MAX_EXT)
		return bad(tr, detail, at, NULL, "extended header of %llu bytes exceeds the limit of %d",
			   (unsigned long long)n, TAR_MAX_EXT);
	buf_reset(&tr->ext);
	buf_grow(&tr->ext, (size_t)n);
	if ((rc = read_full(tr, tr->ext.buf, (size_t)n, &got)))
		return rc;
	if (got < n)
		return bad(tr, detail, at, NULL, "extended header is cut short: the archive is truncated");
	buf_setlen(&tr->ext, (size_t)n);
	return skip(tr, (TAR_BLOCK - (int64_t)(n % TAR_BLOCK)) % TAR_BLOCK, detail);
}

/* A strict decimal (the pax "size" value): digits only, no overflow, at most TAR_MAX_SIZE. */
static int parse_dec(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;
	if (!n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > TAR_MAX_SIZE)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > TAR_MAX_SIZE)
		return -1;
	*out = v;
	return 0;
}

/* Applies one pax record's key and value. */
static int pax_apply(struct tar_reader *tr, int global, struct pending *p, const char *k, size_t klen,
		     const char *v, size_t vlen, int64_t at, struct buf *detail)
{
	if (klen == 4 && !memcmp(k, "path", 4)) {
		if (global)
			return bad(tr, detail, at, NULL, "global pax header sets a path");
		if (vlen > TAR_NAME_MAX + 1)
			return bad(tr, detail, at, NULL, "pax path of %zu bytes exceeds the limit of %d", vlen,
				   TAR_NAME_MAX);
		buf_reset(&tr->name);
		buf_add(&tr->name, v, vlen);
		p->name_src = vlen ? 2 : 0;
	} else if (klen == 4 && !memcmp(k, "size", 4)) {
		if (global)
			return bad(tr, detail, at, NULL, "global pax header sets a size");
		if (parse_dec(v, vlen, &p->size))
			return bad(tr, detail, at, NULL, "pax size is not a number up to %lld",
				   (long long)TAR_MAX_SIZE);
		p->has_size = 1;
	} else if (klen > 11 && !memcmp(k, "GNU.sparse.", 11)) {
		return bad(tr, detail, at, NULL, "sparse files are not supported in image archives");
	}
	/* Times, owners, link paths, charsets: nothing an image import uses. */
	return 0;
}

/* Parses the records "<length> <key>=<value>\n" of the pax header in tr->ext. */
static int pax_parse(struct tar_reader *tr, int global, struct pending *p, int64_t at, struct buf *detail)
{
	const char *s = tr->ext.buf;
	size_t n = tr->ext.len, i = 0;
	while (i < n) {
		size_t len = 0, j = i;
		for (; j < n && s[j] >= '0' && s[j] <= '9'; j++) {
			len = len * 10 + (size_t)(s[j] - '0');
			if (len > n)
				return bad(tr, detail, at, NULL, "pax record longer than its header");
		}
		if (j == i || j >= n || s[j] != ' ')
			return bad(tr, detail, at, NULL, "malformed pax record");
		if (len > n - i || i + len < j + 3 || s[i + len - 1] != '\n')
			return bad(tr, detail, at, NULL, "malformed pax record length");
		const char *kv = s + j + 1;
		size_t kvlen = i + len - 1 - (j + 1);
		const char *eq = memchr(kv, '=', kvlen);
		if (!eq || eq == kv)
			return bad(tr, detail, at, NULL, "malformed pax record: no key");
		size_t klen = (size_t)(eq - kv);
		int rc = pax_apply(tr, global, p, kv, klen, eq + 1, kvlen - klen - 1, at, detail);
		if (rc)
			return rc;
		i += len;
	}
	return 0;
}

/*
 * Normalises and checks the name in tr->name: drops leading "./" and a
 * directory's trailing '/' (extended names may be TAR_NAME_MAX + 1 bytes
 * for that '/'); what remains must fit TAR_NAME_MAX. Sets *skip for the
 * archive's "." entry.
 */
static int clean_name(struct tar_reader *tr, enum tar_type type, int64_t at, int *skip_entry, struct buf *detail)
{
	struct buf *nm = &tr->name;
	size_t off = 0, len = nm->len;
	*skip_entry = 0;
	if (memchr(nm->buf, '\0', len))
		return bad(tr, detail, at, nm, "has a NUL byte in its name");
	if (len && nm->buf[0] == '/')
		return bad(tr, detail, at, nm, "has an absolute name");
	while (len - off >= 2 && nm->buf[off] == '.' && nm->buf[off + 1] == '/')
		off += 2;
	if (type == TAR_DIR && len > off && nm->buf[len - 1] == '/')
		len--;
	if (len == off || (len - off == 1 && nm->buf[off] == '.')) {
		if (type == TAR_DIR && nm->len) {
			*skip_entry = 1;
			return 0;
		}
		return bad(tr, detail, at, nm, "has no name");
	}
	if (len - off > TAR_NAME_MAX)
		return bad(tr, detail, at, NULL, "entry name of %zu bytes exceeds the limit of %d", len - off,
			   TAR_NAME_MAX);
	for (size_t i = off, start = off; i <= len; i++) {
		if (i < len && ((unsigned char)nm->buf[i] < 0x20 || nm->buf[i] == 0x7f))
			return bad(tr, detail, at, nm, "has a control character in its name");
		if (i < len && nm->buf[i] != '/')
			continue;
		size_t clen = i - start;
		if (clen == 0)
			return bad(tr, detail, at, nm, "has an empty path component");
		if (clen == 1 && nm->buf[start] == '.')
			return bad(tr, detail, at, nm, "has a \".\" path component");
		if (clen == 2 && nm->buf[start] == '.' && nm->buf[start + 1] == '.')
			return bad(tr, detail, at, nm, "climbs out of the archive with \"..\"");
		start = i + 1;
	}
	memmove(nm->buf, nm->buf + off, len - off);
	buf_setlen(nm, len - off);
	return 0;
}

/* The ustar name: prefix "/" name (the prefix only with the POSIX magic). */
static void ustar_name(struct buf *out, const unsigned char *h, int posix)
{
	size_t nlen = strnlen((const char *)h + H_NAME, L_NAME);
	size_t plen = posix ? strnlen((const char *)h + H_PREFIX, L_PREFIX) : 0;
	buf_reset(out);
	if (plen) {
		buf_add(out, h + H_PREFIX, plen);
		buf_addch(out, '/');
	}
	buf_add(out, h + H_NAME, nlen);
}

/* Handles one extended header ('x', 'g', 'L', 'K'); its data follows in the input. */
static int take_ext(struct tar_reader *tr, char type, uint64_t size, int64_t at, struct pending *p,
		    struct buf *detail)
{
	int rc;
	if (++p->chain > EXT_CHAIN_MAX)
		return bad(tr, detail, at, NULL, "more than %d extended headers for one entry", EXT_CHAIN_MAX);
	if ((type == 'x' && p->has_x) || (type == 'L' && p->has_l))
		return bad(tr, detail, at, NULL, "two extended headers of type '%c' for one entry", type);
	if ((rc = read_ext(tr, size, at, detail)))
		return rc;
	if (type == 'x') {
		p->has_x = 1;
		return pax_parse(tr, 0, p, at, detail);
	}
	if (type == 'g')
		return pax_parse(tr, 1, p, at, detail);
	if (type == 'L') {
		p->has_l = 1;
		if (p->name_src < 2) {
			size_t n = strnlen(tr->ext.buf, tr->ext.len);
			if (n > TAR_NAME_MAX + 1)
				return bad(tr, detail, at, NULL, "long name of %zu bytes exceeds the limit of %d", n,
					   TAR_NAME_MAX);
			buf_reset(&tr->name);
			buf_add(&tr->name, tr->ext.buf, n);
			p->name_src = n ? 1 : 0;
		}
	}
	return 0; /* 'K': the target of a link, which is refused anyway */
}

/* Refuses the entry types an image archive must not hold. */
static int check_type(struct tar_reader *tr, char type, int64_t at, struct buf *detail)
{
	const char *what;
	switch (type) {
	case '0': case '\0': case '7': case '5': case '2':
		return 0;
	case '1': what = "is a hard link"; break;
	case '3': case '4': what = "is a device node"; break;
	case '6': what = "is a FIFO"; break;
	case 'S': what = "is a sparse file"; break;
	default:
		return bad(tr, detail, at, &tr->name, "has an unsupported entry type 0x%02x",
			   (unsigned)(unsigned char)type);
	}
	return bad(tr, detail, at, &tr->name, "%s: image archives hold only files, directories and symbolic links",
		   what);
}

int tar_next(struct tar_reader *tr, struct tar_entry *e, struct buf *detail)
{
	unsigned char h[TAR_BLOCK];
	struct pending p = { 0 };
	int rc;
	if (tr->state)
		return tr->state < 0 ? tr->state : 0;
	if ((rc = skip(tr, tr->left + tr->pad, detail)))
		return rc;
	tr->left = tr->pad = 0;
	buf_reset(&tr->name);
	for (;;) {
		int64_t at = tr->pos;
		uint64_t size;
		size_t got;
		int posix = 0, skip_entry;
		if ((rc = read_full(tr, h, TAR_BLOCK, &got)))
			return rc;
		if (got < TAR_BLOCK)
			return bad(tr, detail, at, NULL, got ? "archive truncated inside a header"
							     : "archive ends without its end-of-archive block: it is truncated");
		if (all_zero(h)) {
			if (p.chain)
				return bad(tr, detail, at, NULL, "archive ends right after an extended header");
			tr->state = 1;
			return 0;
		}
		if ((rc = check_header(tr, h, at, &posix, detail)))
			return rc;
		char type = (char)h[H_TYPE];
		if (parse_num(h + H_SIZE, L_SIZE, &size))
			return bad(tr, detail, at, NULL, "malformed size field");
		if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
			if ((rc = take_ext(tr, type, size, at, &p, detail)))
				return rc;
			continue;
		}
		if (p.name_src == 0)
			ustar_name(&tr->name, h, posix);
		if ((rc = check_type(tr, type, at, detail)))
			return rc;
		if (p.has_size)
			size = (uint64_t)p.size;
		if (size > (uint64_t)TAR_MAX_SIZE)
			return bad(tr, detail, at, &tr->name, "has a size of %llu bytes, above the limit of %lld",
				   (unsigned long long)size, (long long)TAR_MAX_SIZE);
		enum tar_type t = type == '5' ? TAR_DIR : type == '2' ? TAR_SYMLINK : TAR_FILE;
		if ((rc = clean_name(tr, t, at, &skip_entry, detail)))
			return rc;
		tr->left = (int64_t)size;
		tr->pad = (TAR_BLOCK - (int64_t)(size % TAR_BLOCK)) % TAR_BLOCK;
		if (skip_entry) {
			/* The "./" entry of a directory packed from inside. */
			if ((rc = skip(tr, tr->left + tr->pad, detail)))
				return rc;
			tr->left = tr->pad = 0;
			memset(&p, 0, sizeof(p));
			buf_reset(&tr->name);
			continue;
		}
		e->name = tr->name.buf;
		e->type = t;
		e->size = t == TAR_FILE ? (int64_t)size : 0;
		e->offset = at;
		return 1;
	}
}

int tar_read(struct tar_reader *tr, void *buf, size_t len, size_t *got, struct buf *detail)
{
	*got = 0;
	if (tr->state < 0)
		return tr->state;
	if (!tr->left || !len)
		return 0;
	size_t want = (int64_t)len < tr->left ? len : (size_t)tr->left;
	ssize_t r = tr->read(tr->ctx, buf, want);
	if (r < 0 || (size_t)r > want)
		return io_fail(tr, r < 0 ? r : E_INTERNAL);
	if (r == 0)
		return bad(tr, detail, tr->pos, &tr->name, "is cut short: the archive is truncated");
	tr->left -= r;
	tr->pos += r;
	*got = (size_t)r;
	return 0;
}

/* ------------------------------------------------------------------ writer */

void tar_writer_init(struct tar_writer *tw, tar_write_fn fn, void *ctx)
{
	memset(tw, 0, sizeof(*tw));
	tw->write = fn;
	tw->ctx = ctx;
}

static int emit(struct tar_writer *tw, const void *data, size_t len)
{
	int rc = len ? tw->write(tw->ctx, data, len) : 0;
	if (rc) {
		tw->state = rc < 0 && rc >= E_ERR_MIN ? rc : E_IO;
		return tw->state;
	}
	tw->pos += (int64_t)len;
	return 0;
}

/* Writes value into an n-byte field as n-1 octal digits and a NUL; the caller checked it fits. */
static void put_octal(unsigned char *f, size_t n, uint64_t v)
{
	f[n - 1] = '\0';
	for (size_t i = n - 1; i-- > 0; v >>= 3)
		f[i] = (unsigned char)('0' + (v & 7));
}

static int emit_block(struct tar_writer *tw, unsigned char *h, char type, uint64_t size)
{
	unsigned sum = 0;
	put_octal(h + H_MODE, 8, type == '5' ? 0755 : 0644);
	put_octal(h + H_UID, 8, 0);
	put_octal(h + H_GID, 8, 0);
	put_octal(h + H_SIZE, L_SIZE, size <= (uint64_t)OCTAL_SIZE_MAX ? size : 0);
	put_octal(h + H_MTIME, 12, 0);
	h[H_TYPE] = (unsigned char)type;
	memcpy(h + H_MAGIC, "ustar\0" "00", 8);
	put_octal(h + H_DEVMAJOR, 8, 0);
	put_octal(h + H_DEVMINOR, 8, 0);
	memset(h + H_CHKSUM, ' ', L_CHKSUM);
	for (size_t i = 0; i < TAR_BLOCK; i++)
		sum += h[i];
	put_octal(h + H_CHKSUM, 7, sum);
	h[H_CHKSUM + 7] = ' ';
	return emit(tw, h, TAR_BLOCK);
}

/* Appends the pax record "<len> key=value\n", whose length counts itself. */
static void pax_record(struct buf *b, const char *key, const char *value, size_t vlen)
{
	size_t body = strlen(key) + vlen + 3, len = body + 1, digits;
	for (;;) {
		char tmp[24];
		digits = (size_t)snprintf(tmp, sizeof(tmp), "%zu", len);
		if (digits + body == len)
			break;
		len = digits + body;
	}
	buf_addf(b, "%zu %s=", len, key);
	buf_add(b, value, vlen);
	buf_addch(b, '\n');
}

static int write_pad(struct tar_writer *tw, int64_t n)
{
	static const unsigned char zeros[TAR_BLOCK];
	return emit(tw, zeros, (size_t)n);
}

int tar_write_header(struct tar_writer *tw, const char *name, enum tar_type type, int64_t size)
{
	unsigned char h[TAR_BLOCK];
	struct buf full = BUF_INIT, pax = BUF_INIT;
	size_t len = strlen(name), split = 0;
	int rc = 0;
	if (tw->state || tw->left || !len || len > TAR_NAME_MAX || name[0] == '/' || name[len - 1] == '/' ||
	    size < 0 || size > TAR_MAX_SIZE || (type == TAR_DIR && size) || type == TAR_SYMLINK)
		return tw->state < 0 ? tw->state : E_INTERNAL;
	buf_add(&full, name, len);
	if (type == TAR_DIR)
		buf_addch(&full, '/');
	memset(h, 0, sizeof(h));
	if (full.len > L_NAME) {
		/* The ustar prefix holds up to 155 bytes before a '/'. */
		for (size_t k = full.len - 1; k > 0 && !split; k--)
			if (full.buf[k] == '/' && k <= L_PREFIX && full.len - k - 1 <= L_NAME && full.len - k - 1 > 0)
				split = k;
		if (!split)
			pax_record(&pax, "path", full.buf, full.len);
	}
	if (size > OCTAL_SIZE_MAX) {
		char num[24];
		int n = snprintf(num, sizeof(num), "%lld", (long long)size);
		pax_record(&pax, "size", num, (size_t)n);
	}
	if (pax.len) {
		memcpy(h + H_NAME, "PaxHeader", 9);
		if ((rc = emit_block(tw, h, 'x', pax.len)) || (rc = emit(tw, pax.buf, pax.len)) ||
		    (rc = write_pad(tw, (TAR_BLOCK - (int64_t)(pax.len % TAR_BLOCK)) % TAR_BLOCK)))
			goto out;
		memset(h, 0, sizeof(h));
	}
	if (split) {
		memcpy(h + H_PREFIX, full.buf, split);
		memcpy(h + H_NAME, full.buf + split + 1, full.len - split - 1);
	} else {
		memcpy(h + H_NAME, full.buf, full.len > L_NAME ? L_NAME : full.len);
	}
	if ((rc = emit_block(tw, h, type == TAR_DIR ? '5' : '0', (uint64_t)size)))
		goto out;
	tw->left = size;
	tw->pad = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
out:
	buf_release(&full);
	buf_release(&pax);
	return rc;
}

int tar_write_data(struct tar_writer *tw, const void *data, size_t len)
{
	int rc;
	if (tw->state || (int64_t)len > tw->left)
		return tw->state < 0 ? tw->state : E_INTERNAL;
	if ((rc = emit(tw, data, len)))
		return rc;
	tw->left -= (int64_t)len;
	if (!tw->left && tw->pad) {
		rc = write_pad(tw, tw->pad);
		tw->pad = 0;
	}
	return rc;
}

int tar_write_end(struct tar_writer *tw)
{
	int rc;
	if (tw->state || tw->left)
		return tw->state < 0 ? tw->state : E_INTERNAL;
	if ((rc = write_pad(tw, TAR_BLOCK)) || (rc = write_pad(tw, TAR_BLOCK)))
		return rc;
	tw->state = 1;
	return 0;
}
