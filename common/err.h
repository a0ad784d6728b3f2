/*
 * err: the one error vocabulary of berth.
 *
 * Every function that can fail returns 0 or one of the negative codes below.
 * One table (err.c) maps each code to its OCI error code, HTTP status and
 * default message; handlers never pick statuses themselves. The table is
 * static and read-only: thread-safe, nothing to free.
 */
#ifndef BERTH_ERR_H
#define BERTH_ERR_H

enum {
	E_OK = 0,
	E_BLOB_UNKNOWN = -1,
	E_BLOB_UPLOAD_INVALID = -2,
	E_BLOB_UPLOAD_UNKNOWN = -3,
	E_DIGEST_INVALID = -4,
	E_MANIFEST_BLOB_UNKNOWN = -5,
	E_MANIFEST_INVALID = -6,
	E_MANIFEST_UNKNOWN = -7,
	E_NAME_INVALID = -8,
	E_NAME_UNKNOWN = -9,
	E_SIZE_INVALID = -10,
	E_UNAUTHORIZED = -11,
	E_DENIED = -12,
	E_UNSUPPORTED = -13,
	E_TOOMANYREQUESTS = -14,
	E_TAG_INVALID = -15,
	E_MANIFEST_TOO_BIG = -16,   /* 413 */
	E_RANGE_INVALID = -17,      /* 416 on blob GET */
	E_UPLOAD_RANGE = -18,       /* 416 on out-of-order chunk */
	E_SCHEMA1 = -19,            /* docker schema 1 refused */
	E_MEDIATYPE_MISMATCH = -20, /* Content-Type vs mediaType */
	E_METHOD = -21,             /* 405 */
	E_NOT_FOUND = -22,          /* no such endpoint */
	E_PAGINATION = -23,         /* bad n/last */
	E_BODY_TOO_BIG = -24,       /* 413 on other bodies */
	E_NO_SPACE = -25,           /* 507 */
	E_IO = -26,                 /* 500 */
	E_INTERNAL = -27,           /* 500 */
	E_BUSY = -28,               /* 503: database locked too long */
	E_DELETE_DISABLED = -29,    /* 405 */
	E_TAG_IMMUTABLE = -30,      /* 409 */
	E_UPLOAD_BUSY = -31,        /* 409: concurrent use of one upload */
	E_BAD_REQUEST = -32,        /* 400: malformed HTTP-level input */
	E_CONFIG = -33,             /* operator config error (CLI only) */
	E_EXISTS = -34,             /* CLI: object already exists */
	E_TOO_MANY = -35,           /* 429: a count limit was reached */
	E_STORE_UNAVAILABLE = -36,  /* 503: the object store cannot be reached (retries exhausted) */
	E_STORE = -37,              /* 500: the object store refused or answered nonsense */
	E_URI_TOO_LONG = -38,       /* 414: request target over the limit */
	E_HEAD_TOO_BIG = -39,       /* 431: request head over the limit */
	E_ERR_MIN = -39,
};

struct err_desc {
	const char *code;    /* OCI error code, e.g. "BLOB_UNKNOWN" */
	int status;          /* HTTP status */
	const char *message; /* default human message */
};

/* Returns the descriptor for err (any unknown value maps to E_INTERNAL). */
const struct err_desc *err_desc(int err);

#endif
