/*
 * blob_s3_internal: what the files of the S3 blob store share (blob_s3.c,
 * blob_s3_upload.c, blob_s3_state.c, blob_s3_sha.c) and what its unit test
 * looks into: the decoded upload state, its text codec, and the running
 * SHA-256 whose state can be exported. Not for other modules: they use
 * blob_s3.h.
 */
#ifndef BERTH_BLOB_S3_INTERNAL_H
#define BERTH_BLOB_S3_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "blob_s3.h"
#include "buf.h"
#include "s3.h"

struct blob_s3 {
	struct s3 *s3;
	size_t part_size;
};

/*
 * A SHA-256 in progress whose state can leave the process: eight chaining
 * words, the byte count and the 0..63 bytes of the unfinished block. ctx
 * is OpenSSL's SHA256_CTX (heap; blob_s3_sha.c is the only file that
 * knows its type). init allocates, release frees; one thread at a time.
 */
struct blob_s3_sha {
	void *ctx;
};

void blob_s3_sha_init(struct blob_s3_sha *h);
void blob_s3_sha_update(struct blob_s3_sha *h, const void *data, size_t len);
/* The digest of what was hashed so far; h goes on unchanged. */
void blob_s3_sha_peek(const struct blob_s3_sha *h, char hex[65]);
/* Bytes hashed so far. */
uint64_t blob_s3_sha_length(const struct blob_s3_sha *h);
/* Appends "<64 hex: the eight words> <hex of the unfinished block, or ->". */
void blob_s3_sha_export(const struct blob_s3_sha *h, struct buf *out);
/*
 * Replaces h's state (h initialised) with the exported words and block
 * text of a hash of length bytes; the block must hold exactly length % 64
 * bytes. Returns 0 or -1 for text that is not such a state (h unchanged).
 */
int blob_s3_sha_import(struct blob_s3_sha *h, const char *words, size_t wlen, const char *block,
		       size_t blen, uint64_t length);
void blob_s3_sha_release(struct blob_s3_sha *h);

/* The largest part any node may have written (S3's own limit), for validating states. */
#define BLOB_S3_PART_MAX (5ull * 1024 * 1024 * 1024)
#define BLOB_S3_PARTS_MAX 10000
/* An upload id of S3's is opaque; AWS's are ~100-200 characters. */
#define BLOB_S3_MPU_ID_MAX 1024

/*
 * An upload's state, decoded. Owns mpu_id, parts and sha; released with
 * blob_s3_state_release(). The tail (bytes not yet in a part) is
 * offset - parts_bytes bytes long and lives in tail slot tail_slot.
 */
struct blob_s3_state {
	char id[BLOB_S3_ID_LEN + 1]; /* lowercase hex: names the upload's keys */
	uint64_t offset;             /* bytes received and stored */
	uint64_t parts_bytes;        /* of which in parts 1..nparts */
	int tail_slot;               /* 0 or 1 */
	char tail_sha[65];           /* the tail's SHA-256 hex; "" when the tail is empty */
	char *mpu_id;                /* NULL until the first part was sent */
	struct s3_part *parts;       /* numbers 1..nparts, in order */
	size_t nparts, parts_alloc;
	struct blob_s3_sha sha;      /* the running hash of all offset bytes */
};

/* A fresh state: a random id, nothing stored. */
void blob_s3_state_new(struct blob_s3_state *st);
/* Encodes st (version 1 text, see blob_s3_state.c) into out, which is reset first. */
void blob_s3_state_encode(const struct blob_s3_state *st, struct buf *out);
/*
 * Decodes and validates; st is filled only on success (release it then).
 * Returns 0 or E_BLOB_UPLOAD_INVALID for anything that is not a state this
 * version wrote intact.
 */
int blob_s3_state_decode(const char *text, size_t len, struct blob_s3_state *st);
/* Appends a part (number nparts + 1) of len bytes. */
void blob_s3_state_add_part(struct blob_s3_state *st, const struct s3_part *p, uint64_t len);
void blob_s3_state_release(struct blob_s3_state *st);

/* Keys of an upload: the multipart target and the two tail slots. */
void blob_s3_key_upload_data(const char *id, struct buf *out);
void blob_s3_key_tail(const char *id, int slot, struct buf *out);

#endif
