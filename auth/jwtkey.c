/* jwtkey: the token signing key: load, generate, store, and its libtrust key id. */
#include "jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "atomicfile.h"
#include "err.h"
#include "log.h"
#include "xalloc.h"

/* A PEM P-256 key is a few hundred bytes; anything this big is not one. */
#define KEY_FILE_MAX 65536

/* libtrust keeps 240 of the 256 hash bits: exactly 48 base32 characters. */
#define KID_HASH_BYTES 30

static void kid_encode(const unsigned char *h, char *out)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	unsigned acc = 0;
	int bits = 0;
	size_t n = 0;
	for (size_t i = 0; i < KID_HASH_BYTES; i++) {
		acc = (acc << 8) | h[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			if (n && n % 5 == 4)
				out[n++] = ':';
			out[n++] = alphabet[(acc >> bits) & 31];
		}
	}
	out[n] = '\0';
}

static int kid_of(EVP_PKEY *pkey, char *out)
{
	unsigned char *der = NULL;
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned hlen = 0;
	int rc = E_INTERNAL;
	int len = i2d_PUBKEY(pkey, &der);
	if (len <= 0)
		goto out;
	if (EVP_Digest(der, (size_t)len, h, &hlen, EVP_sha256(), NULL) != 1 || hlen != 32)
		goto out;
	kid_encode(h, out);
	rc = 0;
out:
	OPENSSL_free(der);
	return rc;
}

/* Only P-256 keys can make ES256 signatures. */
static int is_p256(EVP_PKEY *pkey)
{
	char name[64];
	size_t len = 0;
	if (!EVP_PKEY_is_a(pkey, "EC"))
		return 0;
	if (EVP_PKEY_get_group_name(pkey, name, sizeof(name), &len) != 1)
		return 0;
	return !strcmp(name, "prime256v1") || !strcmp(name, "P-256");
}

/* Encrypted keys fail instead of prompting on a terminal nobody watches. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

static int read_all(int fd, const char *path, struct buf *out)
{
	for (;;) {
		buf_grow(out, 4096);
		ssize_t n = read(fd, out->buf + out->len, out->alloc - out->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("cannot read key file \"%s\": %s", path, strerror(errno));
			return E_IO;
		}
		if (n == 0)
			return 0;
		buf_setlen(out, out->len + (size_t)n);
		if (out->len > KEY_FILE_MAX) {
			log_error("key file \"%s\" is too large to be a key", path);
			return E_CONFIG;
		}
	}
}

/* What can be said about an open key file without parsing it (no OpenSSL). */
static int check_fd(int fd, const char *path)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		log_error("cannot stat key file \"%s\": %s", path, strerror(errno));
		return E_IO;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("key file \"%s\" is not a regular file", path);
		return E_CONFIG;
	}
	/* Whoever can read the key can mint tokens for any repository. */
	if (st.st_mode & 077) {
		log_error("key file \"%s\" is accessible by group or others (mode %03o); run chmod 600 on it",
			  path, (unsigned)(st.st_mode & 0777));
		return E_CONFIG;
	}
	return 0;
}

static int load_fd(int fd, const char *path, struct jwt_key *out)
{
	struct buf pem = BUF_INIT;
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;
	char kid[JWT_KID_LEN + 1];
	int rc;

	if ((rc = check_fd(fd, path)) || (rc = read_all(fd, path, &pem)))
		goto out;
	rc = E_CONFIG;
	bio = BIO_new_mem_buf(pem.buf, (int)pem.len);
	if (!bio)
		die("out of memory");
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
	if (!pkey) {
		log_error("key file \"%s\" holds no usable unencrypted PEM private key", path);
		goto out;
	}
	if (!is_p256(pkey)) {
		log_error("key file \"%s\" is not an EC P-256 key (ES256 needs one)", path);
		goto out;
	}
	if (kid_of(pkey, kid)) {
		rc = E_INTERNAL;
		goto out;
	}
	out->pkey = pkey;
	memcpy(out->kid, kid, sizeof(kid));
	pkey = NULL;
	rc = 0;
out:
	if (rc)
		ERR_clear_error();
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	OPENSSL_cleanse(pem.buf, pem.len);
	buf_release(&pem);
	return rc;
}

int jwt_key_check(const char *pem_path)
{
	int fd = open(pem_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		log_error("cannot open key file \"%s\": %s", pem_path, strerror(errno));
		return E_IO;
	}
	struct stat st;
	int rc = check_fd(fd, pem_path);
	/* An empty file (a `touch` too many) is the one malformed key seen without parsing. */
	if (!rc && fstat(fd, &st) == 0 && st.st_size == 0) {
		log_error("key file \"%s\" holds no usable unencrypted PEM private key", pem_path);
		rc = E_CONFIG;
	}
	close(fd);
	return rc;
}

int jwt_key_generate(struct jwt_key *out)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char kid[JWT_KID_LEN + 1];
	if (!pkey || kid_of(pkey, kid)) {
		EVP_PKEY_free(pkey);
		ERR_clear_error();
		return E_INTERNAL;
	}
	out->pkey = pkey;
	memcpy(out->kid, kid, sizeof(kid));
	return 0;
}

void jwt_key_release(struct jwt_key *key)
{
	EVP_PKEY_free(key->pkey);
	memset(key, 0, sizeof(*key));
}

/* PKCS#8 PEM of the private key, through a BIO that wipes its memory. */
static int pem_of(EVP_PKEY *pkey, struct buf *out)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *data;
	long n;
	int rc = E_INTERNAL;
	if (!bio)
		die("out of memory");
	if (PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0)
		goto out;
	buf_add(out, data, (size_t)n);
	rc = 0;
out:
	BIO_free(bio);
	return rc;
}

/*
 * Generates a key and publishes it at path without ever replacing a file
 * there: when another process got there first, its key wins and is loaded.
 */
static int create_key(const char *path, struct jwt_key *out)
{
	struct jwt_key k = { 0 };
	struct buf pem = BUF_INIT;
	int rc;

	if ((rc = jwt_key_generate(&k)) || (rc = pem_of(k.pkey, &pem)))
		goto out;
	rc = atomicfile_create(path, pem.buf, pem.len, 0600);
	if (rc == ATOMICFILE_EXISTS) {
		rc = jwt_key_load(path, out);
		goto out;
	}
	if (rc) {
		log_error("cannot create key file \"%s\"", path);
		goto out;
	}
	log_info("generated token signing key \"%s\" (kid %s)", path, k.kid);
	*out = k;
	k.pkey = NULL;
out:
	jwt_key_release(&k);
	OPENSSL_cleanse(pem.buf, pem.len);
	buf_release(&pem);
	return rc;
}

/* Loads the key at pem_path; with create, a missing file is created (with a new key) instead. */
static int load_path(const char *pem_path, int create, struct jwt_key *out)
{
	int fd = open(pem_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && create && errno == ENOENT)
		return create_key(pem_path, out);
	if (fd < 0) {
		log_error("cannot open key file \"%s\": %s", pem_path, strerror(errno));
		return E_IO;
	}
	int rc = load_fd(fd, pem_path, out);
	close(fd);
	return rc;
}

int jwt_key_load(const char *pem_path, struct jwt_key *out)
{
	return load_path(pem_path, 0, out);
}

int jwt_key_load_or_create(const char *pem_path, struct jwt_key *out)
{
	return load_path(pem_path, 1, out);
}
