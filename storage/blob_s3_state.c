/*
 * blob_s3_state: an S3 upload's state as text, the form the metadata store
 * keeps between two requests (possibly on two nodes). Version 1:
 *
 *   berth-blob-s3 1
 *   id <32 hex>
 *   offset <bytes stored>
 *   tail <length> <slot 0|1> <SHA-256 hex of the tail | ->
 *   sha256 <8 chaining words, 64 hex> <unfinished block in hex | ->
 *   mpu <multipart upload id | ->
 *   parts <n>
 *   part <ETag>                       n lines: parts 1..n in order
 *   check <16 hex: the start of the SHA-256 of every line above>
 *
 * Every line ends with "\n"; numbers are decimal without leading zeros.
 * Decoding is strict (one spelling per state) and checks what the fields
 * imply of each other (the hash has seen exactly offset bytes, parts hold
 * at least 5 MiB each, a multipart upload exists exactly when parts do),
 * so a corrupt, truncated or foreign state is refused, not half-used.
 */
#include <stdlib.h>
#include <string.h>

#include "blob_s3_internal.h"
#include "digest.h"
#include "err.h"
#include "rand.h"
#include "xalloc.h"

#define MAGIC "berth-blob-s3 1"
#define CHECK_LEN 16

void blob_s3_state_new(struct blob_s3_state *st)
{
	static const char hexdig[] = "0123456789abcdef";
	unsigned char rnd[BLOB_S3_ID_LEN / 2];
	memset(st, 0, sizeof(*st));
	rand_bytes(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++) {
		st->id[2 * i] = hexdig[rnd[i] >> 4];
		st->id[2 * i + 1] = hexdig[rnd[i] & 15];
	}
	blob_s3_sha_init(&st->sha);
}

void blob_s3_state_add_part(struct blob_s3_state *st, const struct s3_part *p, uint64_t len)
{
	st->parts = xgrow(st->parts, &st->parts_alloc, st->nparts, sizeof(*st->parts));
	st->parts[st->nparts++] = *p;
	st->parts_bytes += len;
}

void blob_s3_state_release(struct blob_s3_state *st)
{
	free(st->mpu_id);
	free(st->parts);
	blob_s3_sha_release(&st->sha);
	memset(st, 0, sizeof(*st));
}

static void add_check(struct buf *out)
{
	struct digest d;
	digest_of(DIGEST_SHA256, out->buf, out->len, &d);
	buf_addf(out, "check %.*s\n", CHECK_LEN, d.hex);
}

void blob_s3_state_encode(const struct blob_s3_state *st, struct buf *out)
{
	uint64_t tail = st->offset - st->parts_bytes;
	buf_reset(out);
	buf_addf(out, MAGIC "\nid %s\noffset %llu\ntail %llu %d %s\nsha256 ", st->id,
		 (unsigned long long)st->offset, (unsigned long long)tail, st->tail_slot,
		 tail ? st->tail_sha : "-");
	blob_s3_sha_export(&st->sha, out);
	buf_addf(out, "\nmpu %s\nparts %zu\n", st->mpu_id ? st->mpu_id : "-", st->nparts);
	for (size_t i = 0; i < st->nparts; i++)
		buf_addf(out, "part %s\n", st->parts[i].etag);
	add_check(out);
}

/* A cursor over the state's lines. */
struct cur {
	const char *p, *end;
};

/*
 * Takes the next line if it starts with "name "; *v and *vlen get the rest
 * (without the newline). 0 or -1.
 */
static int field(struct cur *c, const char *name, const char **v, size_t *vlen)
{
	size_t n = strlen(name);
	const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
	if (!nl || (size_t)(nl - c->p) < n + 1 || memcmp(c->p, name, n) || c->p[n] != ' ')
		return -1;
	*v = c->p + n + 1;
	*vlen = (size_t)(nl - *v);
	c->p = nl + 1;
	return 0;
}

/* Splits the first space-separated word off s; 0, or -1 when there is none. */
static int word(const char **s, size_t *len, const char **w, size_t *wlen)
{
	const char *sp = memchr(*s, ' ', *len);
	size_t n = sp ? (size_t)(sp - *s) : *len;
	if (!n)
		return -1;
	*w = *s;
	*wlen = n;
	*s += sp ? n + 1 : n;
	*len -= sp ? n + 1 : n;
	return 0;
}

static int number(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (!len || len > 20 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int is_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* A token S3 handed us (upload id, ETag): visible ASCII, no quote, 1..max-1 bytes. */
static int is_token(const char *s, size_t len, size_t max)
{
	if (!len || len >= max)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '"')
			return 0;
	return !(len == 1 && s[0] == '-');
}

static int decode_tail(const char *v, size_t n, struct blob_s3_state *st, uint64_t *tail)
{
	const char *w;
	size_t wl;
	if (word(&v, &n, &w, &wl) || number(w, wl, tail) || word(&v, &n, &w, &wl) || wl != 1 ||
	    (w[0] != '0' && w[0] != '1'))
		return -1;
	st->tail_slot = w[0] - '0';
	if (word(&v, &n, &w, &wl) || n)
		return -1;
	if (!*tail)
		return wl == 1 && w[0] == '-' ? 0 : -1;
	if (wl != 64 || !is_hex(w, 64) || *tail >= S3_MIN_PART_SIZE)
		return -1;
	memcpy(st->tail_sha, w, 64);
	st->tail_sha[64] = '\0';
	return 0;
}

static int decode_parts(struct cur *c, struct blob_s3_state *st)
{
	const char *v;
	size_t n;
	uint64_t count;
	if (field(c, "mpu", &v, &n))
		return -1;
	if (!(n == 1 && v[0] == '-')) {
		if (!is_token(v, n, BLOB_S3_MPU_ID_MAX + 1))
			return -1;
		st->mpu_id = xstrndup(v, n);
	}
	if (field(c, "parts", &v, &n) || number(v, n, &count) || count > BLOB_S3_PARTS_MAX)
		return -1;
	if (!count != !st->mpu_id)
		return -1;
	for (uint64_t i = 0; i < count; i++) {
		struct s3_part p = { .number = (int)i + 1 };
		if (field(c, "part", &v, &n) || !is_token(v, n, S3_ETAG_MAX))
			return -1;
		memcpy(p.etag, v, n);
		p.etag[n] = '\0';
		blob_s3_state_add_part(st, &p, 0);
	}
	return 0;
}

static int decode(const char *text, size_t len, struct blob_s3_state *st)
{
	struct cur c = { text, text + len };
	const char *v, *w;
	size_t n, wl;
	uint64_t tail;
	struct digest d;
	if (len > BLOB_S3_STATE_MAX || len < sizeof(MAGIC) ||
	    memcmp(text, MAGIC "\n", sizeof(MAGIC)))
		return -1;
	c.p += sizeof(MAGIC);
	if (field(&c, "id", &v, &n) || n != BLOB_S3_ID_LEN || !is_hex(v, n))
		return -1;
	memcpy(st->id, v, n);
	if (field(&c, "offset", &v, &n) || number(v, n, &st->offset) ||
	    field(&c, "tail", &v, &n) || decode_tail(v, n, st, &tail) || tail > st->offset)
		return -1;
	st->parts_bytes = st->offset - tail;
	if (field(&c, "sha256", &v, &n) || word(&v, &n, &w, &wl) ||
	    blob_s3_sha_import(&st->sha, w, wl, v, n, st->offset))
		return -1;
	if (decode_parts(&c, st))
		return -1;
	/* each part but the last is at least 5 MiB, and a persisted state has no last part yet */
	if (!st->parts_bytes != !st->nparts || st->parts_bytes / S3_MIN_PART_SIZE < st->nparts ||
	    st->parts_bytes > st->nparts * BLOB_S3_PART_MAX)
		return -1;
	size_t body = (size_t)(c.p - text);
	digest_of(DIGEST_SHA256, text, body, &d);
	if (field(&c, "check", &v, &n) || n != CHECK_LEN || memcmp(v, d.hex, CHECK_LEN) || c.p != c.end)
		return -1;
	return 0;
}

int blob_s3_state_decode(const char *text, size_t len, struct blob_s3_state *st)
{
	struct blob_s3_state tmp;
	memset(&tmp, 0, sizeof(tmp));
	blob_s3_sha_init(&tmp.sha);
	if (!text || decode(text, len, &tmp)) {
		blob_s3_state_release(&tmp);
		return E_BLOB_UPLOAD_INVALID;
	}
	*st = tmp;
	return 0;
}
