/*
 * test_blob_s3_state: the S3 upload state without a store: the running
 * SHA-256 exported and imported at every block position, the state text
 * round-tripping byte for byte, and corrupt, truncated, foreign or
 * inconsistent states refused (never half-used, never a crash).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob_s3.h"
#include "blob_s3_internal.h"
#include "digest.h"
#include "err.h"
#include "rand.h"
#include "t.h"
#include "xalloc.h"

#define MIB (1024u * 1024)

/* Hashes data in two halves split at cut, moving the state through its text in between. */
static void split_hash(const unsigned char *data, size_t len, size_t cut, char hex[65])
{
	struct blob_s3_sha a, b;
	struct buf text = BUF_INIT;
	blob_s3_sha_init(&a);
	blob_s3_sha_update(&a, data, cut);
	CHECK_EQ_INT(blob_s3_sha_length(&a), cut);
	blob_s3_sha_export(&a, &text);
	blob_s3_sha_release(&a);
	const char *sp = strchr(text.buf, ' ');
	blob_s3_sha_init(&b);
	CHECK(sp && blob_s3_sha_import(&b, text.buf, (size_t)(sp - text.buf), sp + 1,
				       text.len - (size_t)(sp + 1 - text.buf), cut) == 0);
	blob_s3_sha_update(&b, data + cut, len - cut);
	CHECK_EQ_INT(blob_s3_sha_length(&b), len);
	blob_s3_sha_peek(&b, hex);
	blob_s3_sha_release(&b);
	buf_release(&text);
}

static void test_sha(void)
{
	unsigned char data[300];
	char hex[65];
	struct blob_s3_sha h;
	struct digest d;

	blob_s3_sha_init(&h);
	blob_s3_sha_update(&h, "abc", 3);
	blob_s3_sha_peek(&h, hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	blob_s3_sha_peek(&h, hex); /* peeking leaves the hash going on */
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	blob_s3_sha_release(&h);

	rand_bytes(data, sizeof(data));
	for (size_t len = 0; len <= sizeof(data); len += 37) {
		digest_of(DIGEST_SHA256, data, len, &d);
		for (size_t cut = 0; cut <= len; cut++) {
			split_hash(data, len, cut, hex);
			if (strcmp(hex, d.hex)) {
				CHECK_STR(hex, d.hex);
				fprintf(stderr, "  length %zu cut at %zu\n", len, cut);
				return;
			}
		}
	}

	/* the block must hold exactly length % 64 bytes of lowercase hex */
	static const char words[] = "6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19";
	blob_s3_sha_init(&h);
	CHECK_EQ_INT(blob_s3_sha_import(&h, words, 64, "-", 1, 0), 0);
	CHECK_EQ_INT(blob_s3_sha_import(&h, words, 64, "-", 1, 128), 0);
	CHECK_EQ_INT(blob_s3_sha_length(&h), 128);
	CHECK_EQ_INT(blob_s3_sha_import(&h, words, 64, "-", 1, 1), -1);
	CHECK_EQ_INT(blob_s3_sha_import(&h, words, 64, "ab", 2, 0), -1);
	CHECK_EQ_INT(blob_s3_sha_import(&h, words, 64, "ab", 2, 65), 0);
	CHECK_EQ_INT(blob_s3_sha_import(&h, words, 64, "AB", 2, 65), -1);
	CHECK_EQ_INT(blob_s3_sha_import(&h, words, 64, "abc", 3, 65), -1);
	CHECK_EQ_INT(blob_s3_sha_import(&h, words, 63, "-", 1, 0), -1);
	CHECK_EQ_INT(blob_s3_sha_import(&h, "x", 1, "-", 1, 0), -1);
	CHECK_EQ_INT(blob_s3_sha_import(&h, words, 64, "-", 1, UINT64_MAX - 63), -1);
	CHECK_EQ_INT(blob_s3_sha_length(&h), 65); /* failed imports left it as it was */
	blob_s3_sha_release(&h);
}

/* A state with parts, a multipart upload and a tail, as requests leave it. */
static void sample(struct blob_s3_state *st, size_t nparts)
{
	unsigned char chunk[4096];
	struct digest d;
	blob_s3_state_new(st);
	rand_bytes(chunk, sizeof(chunk));
	for (size_t i = 0; i < nparts; i++) {
		struct s3_part p = { .number = (int)i + 1 };
		snprintf(p.etag, sizeof(p.etag), "%032zx-%zu", i * 7919, i);
		blob_s3_state_add_part(st, &p, 5 * MIB + i);
		st->offset += 5 * MIB + i;
	}
	if (nparts)
		st->mpu_id = xstrdup("tx1f2e-0065a1b2c3~d.e_f");
	/* the hash need not be of these bytes: only its length is checked against offset */
	for (uint64_t n = 0; n < st->offset + 777; n += sizeof(chunk)) {
		uint64_t left = st->offset + 777 - n;
		blob_s3_sha_update(&st->sha, chunk, left < sizeof(chunk) ? (size_t)left : sizeof(chunk));
	}
	st->offset += 777;
	st->tail_slot = 1;
	digest_of(DIGEST_SHA256, "tail", 4, &d);
	memcpy(st->tail_sha, d.hex, 65);
}

static void test_roundtrip(void)
{
	struct blob_s3_state a, b;
	struct buf t1 = BUF_INIT, t2 = BUF_INIT;
	uint64_t off = 0;
	const size_t counts[] = { 0, 1, 3, BLOB_S3_PARTS_MAX };
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		if (counts[i] == BLOB_S3_PARTS_MAX) {
			/* the largest state: every part with the longest ETag */
			blob_s3_state_new(&a);
			for (size_t n = 0; n < counts[i]; n++) {
				struct s3_part p = { .number = (int)n + 1 };
				memset(p.etag, 'e', S3_ETAG_MAX - 1);
				p.etag[S3_ETAG_MAX - 1] = '\0';
				blob_s3_state_add_part(&a, &p, 5 * MIB);
				a.offset += 5 * MIB;
			}
			a.mpu_id = xmalloc(BLOB_S3_MPU_ID_MAX + 1);
			memset(a.mpu_id, 'u', BLOB_S3_MPU_ID_MAX);
			a.mpu_id[BLOB_S3_MPU_ID_MAX] = '\0';
			/* a hash of the right length: imported rather than fed 48 GiB */
			struct buf w = BUF_INIT;
			blob_s3_sha_export(&a.sha, &w);
			CHECK_EQ_INT(blob_s3_sha_import(&a.sha, w.buf, 64, "-", 1, a.offset), 0);
			buf_release(&w);
		} else {
			sample(&a, counts[i]);
		}
		blob_s3_state_encode(&a, &t1);
		CHECK(t1.len <= BLOB_S3_STATE_MAX);
		CHECK_EQ_INT(blob_s3_state_decode(t1.buf, t1.len, &b), 0);
		blob_s3_state_encode(&b, &t2);
		CHECK(t1.len == t2.len && !memcmp(t1.buf, t2.buf, t1.len));
		CHECK_STR(b.id, a.id);
		CHECK_EQ_INT(b.offset, a.offset);
		CHECK_EQ_INT(b.offset - b.parts_bytes, a.offset - a.parts_bytes);
		CHECK_EQ_INT(b.nparts, a.nparts);
		CHECK_EQ_INT(b.tail_slot, a.tail_slot);
		for (size_t n = 0; n < b.nparts && n < a.nparts; n++) {
			CHECK_EQ_INT(b.parts[n].number, n + 1);
			if (strcmp(b.parts[n].etag, a.parts[n].etag))
				CHECK_STR(b.parts[n].etag, a.parts[n].etag);
		}
		CHECK_EQ_INT(blob_s3_upload_offset(t1.buf, t1.len, &off), 0);
		CHECK_EQ_INT(off, a.offset);
		blob_s3_state_release(&a);
		blob_s3_state_release(&b);
	}
	if (counts[0] == 0) {
		/* a new upload: nothing stored, a fresh id each time */
		struct buf s1 = BUF_INIT, s2 = BUF_INIT;
		blob_s3_upload_begin(&s1);
		blob_s3_upload_begin(&s2);
		CHECK_EQ_INT(blob_s3_upload_offset(s1.buf, s1.len, &off), 0);
		CHECK_EQ_INT(off, 0);
		CHECK(strcmp(s1.buf, s2.buf));
		CHECK(!strncmp(s1.buf, "berth-blob-s3 1\nid ", 19));
		buf_release(&s1);
		buf_release(&s2);
	}
	buf_release(&t1);
	buf_release(&t2);
}

/* Every changed byte and every truncation of a valid state is refused. */
static void test_corruption(void)
{
	struct blob_s3_state st, out;
	struct buf text = BUF_INIT;
	int accepted = 0;
	sample(&st, 3);
	blob_s3_state_encode(&st, &text);
	char *copy = xmalloc(text.len);
	for (size_t i = 0; i < text.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(copy, text.buf, text.len);
			copy[i] = (char)(copy[i] ^ (1 << bit));
			if (!blob_s3_state_decode(copy, text.len, &out)) {
				accepted++;
				blob_s3_state_release(&out);
			}
		}
	}
	CHECK_EQ_INT(accepted, 0);
	for (size_t n = 0; n < text.len; n++) {
		if (!blob_s3_state_decode(text.buf, n, &out)) {
			accepted++;
			blob_s3_state_release(&out);
		}
	}
	CHECK_EQ_INT(accepted, 0);
	/* random bytes, random lengths: refused, and no crash under the sanitizers */
	for (int i = 0; i < 2000; i++) {
		unsigned char r[2];
		rand_bytes(r, sizeof(r));
		size_t n = r[0] % (text.len + 1), at = r[1] % text.len, k = 1 + r[0] % 4;
		memcpy(copy, text.buf, text.len);
		rand_bytes(copy + at, k < text.len - at ? k : text.len - at);
		if (!blob_s3_state_decode(copy, n, &out)) {
			/* only the state itself, when the random bytes happened to be the same */
			CHECK(n == text.len && !memcmp(copy, text.buf, n));
			blob_s3_state_release(&out);
		}
	}
	CHECK_EQ_INT(blob_s3_state_decode(NULL, 0, &out), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(blob_s3_state_decode("", 0, &out), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(blob_s3_upload_offset("{\"offset\": 5}", 13, &(uint64_t){ 0 }), E_BLOB_UPLOAD_INVALID);
	free(copy);
	buf_release(&text);
	blob_s3_state_release(&st);
}

/* Builds a state from its lines with a correct check line, as a foreign writer could. */
static int decode_crafted(const char *head, uint64_t offset, const char *tail, const char *block,
			  const char *mpu, long nparts, const char *etag)
{
	struct buf t = BUF_INIT;
	struct digest d;
	struct blob_s3_state st;
	buf_addf(&t, "%sid 0123456789abcdef0123456789abcdef\noffset %llu\ntail %s\n", head,
		 (unsigned long long)offset, tail);
	buf_addf(&t, "sha256 6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19 %s\n",
		 block);
	buf_addf(&t, "mpu %s\nparts %ld\n", mpu, nparts);
	for (long i = 0; i < nparts; i++)
		buf_addf(&t, "part %s\n", etag);
	digest_of(DIGEST_SHA256, t.buf, t.len, &d);
	buf_addf(&t, "check %.16s\n", d.hex);
	int rc = blob_s3_state_decode(t.buf, t.len, &st);
	if (!rc)
		blob_s3_state_release(&st);
	buf_release(&t);
	return rc;
}

static void test_inconsistent(void)
{
	const char *v1 = "berth-blob-s3 1\n";
	const char *sha = "0a0b0c0d0e0f000102030405060708090a0b0c0d0e0f00010203040506070809";
	char tail[160], block[140] = "";
	const uint64_t p = 5 * MIB;
	/* offset 2 parts + 10 bytes of tail: the block holds (offset % 64) bytes */
	uint64_t off = 2 * p + 10;
	for (uint64_t i = 0; i < off % 64; i++)
		strcat(block, "ab");
	snprintf(tail, sizeof(tail), "10 0 %s", sha);
	CHECK_EQ_INT(decode_crafted(v1, off, tail, block, "mpu-1", 2, "etag"), 0);
	/* the same with one thing wrong */
	CHECK_EQ_INT(decode_crafted("berth-blob-s3 2\n", off, tail, block, "mpu-1", 2, "etag"),
		     E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(decode_crafted(v1, off + 1, tail, block, "mpu-1", 2, "etag"), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(decode_crafted(v1, off, tail, block, "-", 2, "etag"), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(decode_crafted(v1, off, tail, block, "mpu-1", 0, "etag"), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(decode_crafted(v1, off, tail, block, "mpu-1", 3, "etag"), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(decode_crafted(v1, off, tail, block, "mpu 1", 2, "etag"), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(decode_crafted(v1, off, tail, block, "mpu-1", 2, "\"etag\""), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(decode_crafted(v1, off, tail, block, "mpu-1", 2, "-"), E_BLOB_UPLOAD_INVALID);
	snprintf(tail, sizeof(tail), "10 2 %s", sha);
	CHECK_EQ_INT(decode_crafted(v1, off, tail, block, "mpu-1", 2, "etag"), E_BLOB_UPLOAD_INVALID);
	snprintf(tail, sizeof(tail), "010 0 %s", sha);
	CHECK_EQ_INT(decode_crafted(v1, off, tail, block, "mpu-1", 2, "etag"), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(decode_crafted(v1, off, "10 0 -", block, "mpu-1", 2, "etag"), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(decode_crafted(v1, off, "10 0 ABC", block, "mpu-1", 2, "etag"), E_BLOB_UPLOAD_INVALID);
	/* a tail of a part's size, or longer than everything */
	snprintf(tail, sizeof(tail), "%u 0 %s", S3_MIN_PART_SIZE, sha);
	CHECK_EQ_INT(decode_crafted(v1, p + 10 + S3_MIN_PART_SIZE - 10, tail, block, "mpu-1", 1, "etag"),
		     E_BLOB_UPLOAD_INVALID);
	/* no parts, tail only: fine; parts smaller than S3 accepts: refused */
	snprintf(tail, sizeof(tail), "10 1 %s", sha);
	CHECK_EQ_INT(decode_crafted(v1, 10, tail, "ababababababababababab" + 2, "-", 0, "x"), 0);
	CHECK_EQ_INT(decode_crafted(v1, 0, "0 0 -", "-", "-", 0, "x"), 0);
	CHECK_EQ_INT(decode_crafted(v1, 0, "0 0 -", "-", "mpu-1", 0, "x"), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(decode_crafted(v1, 1024, "0 0 -", "-", "mpu-1", 1, "x"), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(decode_crafted(v1, 64, "0 0 -", "-", "-", 0, "x"), E_BLOB_UPLOAD_INVALID);
	/* more parts than S3 allows */
	block[0] = '\0';
	CHECK_EQ_INT(decode_crafted(v1, 10001ull * p, "0 0 -", "-", "mpu-1", 10001, "e"), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(decode_crafted(v1, 10000ull * p, "0 0 -", "-", "mpu-1", 10000, "e"), 0);
	/* numbers that do not fit */
	CHECK_EQ_INT(decode_crafted(v1, UINT64_MAX, "0 0 -", "-", "-", 0, "x"), E_BLOB_UPLOAD_INVALID);
}

int main(void)
{
	test_sha();
	test_roundtrip();
	test_corruption();
	test_inconsistent();
	return t_done();
}
