/*
 * jwt: the bearer tokens of the Docker token flow, signed with ES256
 * (ECDSA P-256 + SHA-256), plus the strict base64url codec they use.
 *
 * Ownership. A struct jwt_key owns its EVP_PKEY; jwt_key_release() frees it.
 * The claims filled in by jwt_verify() are owned by the caller and freed with
 * jwt_claims_release(). jwt_sign() only reads the claims it is given, so a
 * caller may point their strings at anything (literals, stack buffers) and
 * must then not release them. Results are appended to caller-owned bufs.
 *
 * Trust. jwt_verify() checks tokens with our own key only: a key embedded in
 * or referenced by a token (jwk, jku, x5c, x5u) makes it invalid, and the
 * only algorithm accepted is ES256, so "none" and HMAC-with-the-public-key
 * forgeries cannot work. It returns E_UNAUTHORIZED for every bad token and
 * says why only in a debug log line (tokens themselves are never logged).
 *
 * Key id. The kid is the libtrust key id that Docker's token spec uses: the
 * SHA-256 of the DER SubjectPublicKeyInfo, truncated to 240 bits, encoded in
 * RFC 4648 base32 and written as 12 groups of 4 characters joined by ':'
 * (59 characters, e.g. "ABCD:EFGH:...:WXYZ").
 *
 * Thread-safety. A loaded key is never modified, so one key may sign and
 * verify from any number of threads at once. Everything else works only on
 * its arguments.
 */
#ifndef BERTH_JWT_H
#define BERTH_JWT_H

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>

#include "action.h"
#include "buf.h"

/* Longest token jwt_verify() looks at; anything longer is refused unread. */
#define JWT_MAX_TOKEN 8192

#define JWT_KID_LEN 59

struct jwt_key {
	EVP_PKEY *pkey; /* EC P-256 private key */
	char kid[JWT_KID_LEN + 1];
};

/*
 * Loads a P-256 private key from a PEM file (PKCS#8 or "EC PRIVATE KEY").
 * The file must be a regular file with no group or other permission bits,
 * like ssh insists for its keys. Returns 0, E_IO when the file cannot be
 * read (ENOENT included), or E_CONFIG for bad permissions, encrypted or
 * unparsable PEM, or a key that is not P-256; out is untouched on error.
 */
int jwt_key_load(const char *pem_path, struct jwt_key *out);
/*
 * As jwt_key_load(), but when pem_path does not exist a new key is generated
 * and stored there as PKCS#8 PEM, mode 0600, atomically (written to a temp
 * file, fsync'd, linked into place, directory fsync'd). If another process
 * creates the file first, its key is loaded instead, so concurrent starts
 * agree on one key. The parent directory must exist. Errors as for
 * jwt_key_load(), plus E_IO when the new file cannot be written.
 */
int jwt_key_load_or_create(const char *pem_path, struct jwt_key *out);
/*
 * The checks of jwt_key_load() that need no parsing: the file opens for
 * reading, is a non-empty regular file and has no group or other
 * permission bits. Same errors and log lines; never touches OpenSSL.
 */
int jwt_key_check(const char *pem_path);
/* Generates a fresh P-256 key held in memory only. Returns 0 or E_INTERNAL. */
int jwt_key_generate(struct jwt_key *out);
/* Frees the key and zeroes *key; a zeroed key may be released again. */
void jwt_key_release(struct jwt_key *key);

struct jwt_access {
	char *type;       /* "repository", "registry", ... */
	char *name;       /* e.g. "library/alpine" */
	unsigned actions; /* enum action bits */
};

struct jwt_claims {
	char *iss, *sub, *aud, *jti; /* sub is "" for anonymous */
	int64_t iat, nbf, exp;       /* seconds since the epoch */
	struct jwt_access *access;
	size_t naccess;
	/* berth's private claims, in the payload only when set: */
	int64_t pat_id; /* "pat_id": personal access token behind the token, 0 for none */
	char *cred;     /* "cred": fingerprint of the password used, NULL for none */
};

/* Frees every string and the access array, and zeroes *c. */
void jwt_claims_release(struct jwt_claims *c);

/*
 * Appends a compact ES256 token for c to out. iss and aud are required;
 * sub NULL is written as "" (anonymous); jti NULL gets a random 128-bit id;
 * pat_id 0 and cred NULL are left out.
 * An access entry's actions are written as the names of its bits, in the
 * order pull, push, delete. Returns 0, or E_INTERNAL when a string is not
 * valid UTF-8, iss or aud is missing, or signing fails; out is unchanged on
 * error.
 */
int jwt_sign(const struct jwt_key *key, const struct jwt_claims *c, struct buf *out);

/*
 * Verifies token (len bytes, need not be NUL-terminated) against key and
 * fills *out. The token must be three non-empty unpadded base64url parts,
 * at most JWT_MAX_TOKEN bytes; its header must say alg "ES256", carry no
 * jwk/jku/x5c/x5u/crit, and a kid, if present, must be key's. The signature
 * (raw r||s, 64 bytes) is checked with key whatever the kid says. Then: exp
 * is required and now must be before exp + leeway; nbf and iat, when
 * present, must not be after now + leeway; iss must equal want_iss; aud (a
 * string or an array of strings) must be or contain want_aud; access, when
 * present, must be an array of {type, name, actions} objects. Action names
 * other than pull, push, delete and "*" (all three) are ignored. Missing
 * sub and jti are returned as "", aud as want_aud. pat_id, when present,
 * must be a positive integer, and cred a string (NULL when absent).
 * Returns 0 or E_UNAUTHORIZED. *out is always initialised: on error it is
 * empty, so jwt_claims_release() is safe either way.
 */
int jwt_verify(const struct jwt_key *key, const char *token, size_t len,
	       const char *want_iss, const char *want_aud, int64_t now,
	       int64_t leeway, struct jwt_claims *out);

/* Appends the unpadded base64url encoding of data to out. */
void b64url_encode(const void *data, size_t len, struct buf *out);
/*
 * Appends the bytes that s (len characters) encodes to out. Strict: only
 * [A-Za-z0-9_-], no padding, no whitespace, and the unused low bits of the
 * last character must be zero, so every byte string has exactly one
 * encoding. Returns 0 or E_BAD_REQUEST; out is unchanged on error.
 */
int b64url_decode(const char *s, size_t len, struct buf *out);

#endif
