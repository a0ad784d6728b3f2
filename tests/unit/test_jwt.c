/*
 * Unit tests for auth/jwt: the base64url codec, the signing key (load,
 * create, permissions, key id), the sign/verify round trip, and every way a
 * token must be refused. Hostile tokens are built here by hand with OpenSSL
 * directly; a hand-built token that differs from the hostile ones only in
 * the flaw under test is checked to pass first, so each refusal is known to
 * come from that flaw. Runs in a fresh scratch directory removed at the end.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "err.h"
#include "jwt.h"
#include "t.h"

#define ISS "berth-test"
#define AUD "registry.test"
#define NOW INT64_C(1700000000)
#define LEEWAY 30

/* A fixed key and its libtrust key id, computed independently with
 * "openssl pkey -pubout -outform DER | sha256sum" and RFC 4648 base32. */
static const char fixed_pkcs8[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQglJJgIeKXhHC64coC\n"
	"9po+p6YWib5nWdYmMr52OjCR6VKhRANCAATTPm/EhDO5OruJrLjppAFL1axy1kjU\n"
	"MfbukcQuCXN1ghcqD1ptVffdmbarU3Yfl5BfKXamvjlZmLaxAo+Z/FIB\n"
	"-----END PRIVATE KEY-----\n";
static const char fixed_sec1[] =
	"-----BEGIN EC PRIVATE KEY-----\n"
	"MHcCAQEEIJSSYCHil4RwuuHKAvaaPqemFom+Z1nWJjK+djowkelSoAoGCCqGSM49\n"
	"AwEHoUQDQgAE0z5vxIQzuTq7iay46aQBS9WsctZI1DH27pHELglzdYIXKg9abVX3\n"
	"3Zm2q1N2H5eQXyl2pr45WZi2sQKPmfxSAQ==\n"
	"-----END EC PRIVATE KEY-----\n";
static const char fixed_kid[] = "B3K2:ZIKO:ZO7T:5F2C:S5OG:YQRF:GJ2H:KGX6:JK6W:5WEX:ZHIB:VLQT";

static struct buf scratch = BUF_INIT;
static struct jwt_key key; /* the registry's key, used by most tests */

static void path_in(struct buf *out, const char *name)
{
	buf_reset(out);
	buf_addf(out, "%s/%s", scratch.buf, name);
}

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_EQ_INT(write(fd, data, len), (long long)len);
	CHECK_EQ_INT(fchmod(fd, mode), 0);
	close(fd);
}

static void write_pkey(const char *path, EVP_PKEY *pkey, const EVP_CIPHER *enc)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	CHECK_EQ_INT(PEM_write_bio_PKCS8PrivateKey(bio, pkey, enc, enc ? "secret" : NULL,
						   enc ? 6 : 0, NULL, NULL), 1);
	long n = BIO_get_mem_data(bio, &data);
	write_file(path, data, (size_t)n, 0600);
	BIO_free(bio);
}

static int kid_well_formed(const char *kid)
{
	if (strlen(kid) != JWT_KID_LEN)
		return 0;
	for (int i = 0; i < JWT_KID_LEN; i++) {
		char c = kid[i];
		if (i % 5 == 4 ? c != ':' : !((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')))
			return 0;
	}
	return 1;
}

static size_t count_dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void test_b64url(void)
{
	static const struct {
		const char *plain, *enc;
	} v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
		{ "\xfb\xff", "-_8" }, { "\xff\xfe\xfd", "__79" },
	};
	static const char *bad[] = {
		"Zg==", "Zm8=", "Zh", "Zm9", "Z", "Zm9vY", "Zm9v YmFy", "Zm+v", "Zm/v", "Zm9v\n", "Zm.v",
	};
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		buf_reset(&b);
		b64url_encode(v[i].plain, strlen(v[i].plain), &b);
		CHECK_STR(b.buf, v[i].enc);
		buf_reset(&b);
		CHECK_EQ_INT(b64url_decode(v[i].enc, strlen(v[i].enc), &b), 0);
		CHECK_STR(b.buf, v[i].plain);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		buf_adds(&b, "keep");
		CHECK_EQ_INT(b64url_decode(bad[i], strlen(bad[i]), &b), E_BAD_REQUEST);
		CHECK_STR(b.buf, "keep"); /* unchanged on error */
	}
	/* a NUL inside the counted string is just another invalid character */
	CHECK_EQ_INT(b64url_decode("Zm\0v", 4, &b), E_BAD_REQUEST);
	/* appends */
	buf_reset(&b);
	buf_adds(&b, "x");
	CHECK_EQ_INT(b64url_decode("Zm9v", 4, &b), 0);
	CHECK_STR(b.buf, "xfoo");
	buf_release(&b);
}

static void test_key_files(void)
{
	struct buf p = BUF_INIT, p2 = BUF_INIT;
	struct jwt_key k = { 0 }, k2 = { 0 };
	struct stat st;

	/* the kid is exactly the libtrust key id, for both PEM flavours */
	path_in(&p, "fixed.pem");
	write_file(p.buf, fixed_pkcs8, strlen(fixed_pkcs8), 0600);
	CHECK_EQ_INT(jwt_key_load(p.buf, &k), 0);
	CHECK_STR(k.kid, fixed_kid);
	jwt_key_release(&k);
	CHECK(k.pkey == NULL);
	jwt_key_release(&k); /* twice is harmless */
	path_in(&p, "fixed-sec1.pem");
	write_file(p.buf, fixed_sec1, strlen(fixed_sec1), 0400);
	CHECK_EQ_INT(jwt_key_load(p.buf, &k), 0);
	CHECK_STR(k.kid, fixed_kid);
	jwt_key_release(&k);

	/* a key others can read is refused, by both entry points */
	path_in(&p, "open.pem");
	write_file(p.buf, fixed_pkcs8, strlen(fixed_pkcs8), 0644);
	CHECK_EQ_INT(jwt_key_load(p.buf, &k), E_CONFIG);
	CHECK(k.pkey == NULL);
	CHECK_EQ_INT(jwt_key_load_or_create(p.buf, &k), E_CONFIG);
	CHECK_EQ_INT(chmod(p.buf, 0640), 0);
	CHECK_EQ_INT(jwt_key_load_or_create(p.buf, &k), E_CONFIG);
	CHECK_EQ_INT(chmod(p.buf, 0604), 0);
	CHECK_EQ_INT(jwt_key_load(p.buf, &k), E_CONFIG);
	CHECK_EQ_INT(chmod(p.buf, 0600), 0);
	CHECK_EQ_INT(jwt_key_load(p.buf, &k), 0);
	jwt_key_release(&k);

	/* missing, not a file, not a key, wrong curve or type, encrypted */
	path_in(&p, "missing.pem");
	CHECK_EQ_INT(jwt_key_load(p.buf, &k), E_IO);
	path_in(&p, "no-such-dir/key.pem");
	CHECK_EQ_INT(jwt_key_load_or_create(p.buf, &k), E_IO);
	CHECK_EQ_INT(jwt_key_load(scratch.buf, &k), E_CONFIG);
	path_in(&p, "garbage.pem");
	write_file(p.buf, "hello\n", 6, 0600);
	CHECK_EQ_INT(jwt_key_load(p.buf, &k), E_CONFIG);
	path_in(&p, "empty.pem");
	write_file(p.buf, "", 0, 0600);
	CHECK_EQ_INT(jwt_key_load(p.buf, &k), E_CONFIG);
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	path_in(&p, "p384.pem");
	write_pkey(p.buf, p384, NULL);
	CHECK_EQ_INT(jwt_key_load(p.buf, &k), E_CONFIG);
	path_in(&p, "ed25519.pem");
	write_pkey(p.buf, ed, NULL);
	CHECK_EQ_INT(jwt_key_load(p.buf, &k), E_CONFIG);
	path_in(&p, "encrypted.pem");
	write_pkey(p.buf, key.pkey, EVP_aes_256_cbc());
	CHECK_EQ_INT(jwt_key_load(p.buf, &k), E_CONFIG);
	CHECK(k.pkey == NULL);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);

	/* creation: 0600 PKCS#8, no temp file left, reload gives the same kid */
	path_in(&p2, "keys");
	CHECK_EQ_INT(mkdir(p2.buf, 0700), 0);
	path_in(&p, "keys/token.pem");
	CHECK_EQ_INT(jwt_key_load_or_create(p.buf, &k), 0);
	CHECK(k.pkey != NULL);
	CHECK(kid_well_formed(k.kid));
	CHECK_EQ_INT(stat(p.buf, &st), 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ_INT(st.st_mode & 07777, 0600);
	CHECK_EQ_INT(count_dir_entries(p2.buf), 1);
	FILE *f = fopen(p.buf, "r");
	char line[64] = "";
	CHECK(f && fgets(line, sizeof(line), f));
	CHECK_STR(line, "-----BEGIN PRIVATE KEY-----\n");
	if (f)
		fclose(f);
	CHECK_EQ_INT(jwt_key_load(p.buf, &k2), 0);
	CHECK_STR(k2.kid, k.kid);
	jwt_key_release(&k2);
	CHECK_EQ_INT(jwt_key_load_or_create(p.buf, &k2), 0);
	CHECK_STR(k2.kid, k.kid);
	CHECK(EVP_PKEY_eq(k.pkey, k2.pkey) == 1);
	jwt_key_release(&k2);
	/* a second new key is a different key */
	path_in(&p, "keys/other.pem");
	CHECK_EQ_INT(jwt_key_load_or_create(p.buf, &k2), 0);
	CHECK(strcmp(k2.kid, k.kid) != 0);
	jwt_key_release(&k2);
	jwt_key_release(&k);

	/* in-memory keys */
	CHECK_EQ_INT(jwt_key_generate(&k), 0);
	CHECK(kid_well_formed(k.kid));
	jwt_key_release(&k);
	buf_release(&p);
	buf_release(&p2);
}

/* ---- hand-built tokens ---- */

enum sigform { SIG_RAW, SIG_DER, SIG_EMPTY, SIG_HMAC };

static size_t sign_der(EVP_PKEY *signer, const void *msg, size_t len, unsigned char *der, size_t cap)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t n = cap;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, signer) != 1 ||
	    EVP_DigestSign(md, der, &n, msg, len) != 1)
		n = 0;
	EVP_MD_CTX_free(md);
	CHECK(n > 0);
	return n;
}

static size_t sign_raw(EVP_PKEY *signer, const void *msg, size_t len, unsigned char *raw)
{
	unsigned char der[128];
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	size_t n = sign_der(signer, msg, len, der, sizeof(der));
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)n);
	CHECK(sig != NULL);
	if (!sig)
		return 0;
	ECDSA_SIG_get0(sig, &r, &s);
	BN_bn2binpad(r, raw, 32);
	BN_bn2binpad(s, raw + 32, 32);
	ECDSA_SIG_free(sig);
	return 64;
}

/* header.payload.signature from JSON texts, signed as form says. */
static void craft(struct buf *out, const char *hdr, const char *payload, EVP_PKEY *signer,
		  enum sigform form, const void *hmac_key, size_t hmac_len)
{
	unsigned char sig[256];
	size_t n = 0;
	buf_reset(out);
	b64url_encode(hdr, strlen(hdr), out);
	buf_addch(out, '.');
	b64url_encode(payload, strlen(payload), out);
	switch (form) {
	case SIG_RAW:
		n = sign_raw(signer, out->buf, out->len, sig);
		break;
	case SIG_DER:
		n = sign_der(signer, out->buf, out->len, sig, sizeof(sig));
		break;
	case SIG_HMAC:
		CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, hmac_key, hmac_len,
				(unsigned char *)out->buf, out->len, sig, sizeof(sig), &n) != NULL);
		break;
	case SIG_EMPTY:
		break;
	}
	buf_addch(out, '.');
	b64url_encode(sig, n, out);
}

static void craft_raw_sig(struct buf *out, const char *hdr, const char *payload,
			  const unsigned char *sig, size_t n)
{
	buf_reset(out);
	b64url_encode(hdr, strlen(hdr), out);
	buf_addch(out, '.');
	b64url_encode(payload, strlen(payload), out);
	buf_addch(out, '.');
	b64url_encode(sig, n, out);
}

static struct buf hdr_ok = BUF_INIT;

/* A valid payload with extra members spliced in first (may be ""). Members
 * given in extra replace the defaults: duplicates would be refused. */
static void payload_with(struct buf *out, const char *extra, const char *skip)
{
	static const char *const defaults[][2] = {
		{ "iss", "\"" ISS "\"" },
		{ "sub", "\"alice\"" },
		{ "aud", "\"" AUD "\"" },
		{ "exp", "1700000300" },
		{ "nbf", "1700000000" },
		{ "iat", "1700000000" },
		{ "jti", "\"id-1\"" },
		{ "access", "[{\"type\":\"repository\",\"name\":\"library/alpine\",\"actions\":[\"pull\"]}]" },
	};
	buf_reset(out);
	buf_addf(out, "{%s", extra);
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		char quoted[32];
		snprintf(quoted, sizeof(quoted), "\"%s\":", defaults[i][0]);
		if (strstr(extra, quoted) || (skip && !strcmp(skip, defaults[i][0])))
			continue;
		buf_addf(out, "%s%s%s", out->len > 1 ? "," : "", quoted, defaults[i][1]);
	}
	buf_addch(out, '}');
}

/* Verifies with the standard expectations; on failure *out must be empty. */
static int verify_tok(const char *tok, size_t len, struct jwt_claims *c)
{
	struct jwt_claims tmp;
	struct jwt_claims *out = c ? c : &tmp;
	int rc = jwt_verify(&key, tok, len, ISS, AUD, NOW, LEEWAY, out);
	CHECK(rc == 0 || rc == E_UNAUTHORIZED);
	if (rc)
		CHECK(!out->iss && !out->sub && !out->aud && !out->jti && !out->access &&
		      !out->naccess && !out->exp && !out->pat_id && !out->cred);
	if (!c)
		jwt_claims_release(&tmp);
	return rc;
}

static int verify_buf(const struct buf *tok)
{
	return verify_tok(tok->buf, tok->len, NULL);
}

/* Hand-signed token with a payload made by payload_with(). */
static int verify_payload(const char *extra, const char *skip)
{
	struct buf pl = BUF_INIT, tok = BUF_INIT;
	payload_with(&pl, extra, skip);
	craft(&tok, hdr_ok.buf, pl.buf, key.pkey, SIG_RAW, NULL, 0);
	int rc = verify_buf(&tok);
	buf_release(&pl);
	buf_release(&tok);
	return rc;
}

static void test_round_trip(void)
{
	struct jwt_access acc[] = {
		{ "repository", "library/alpine", ACTION_PULL | ACTION_PUSH },
		{ "repository", "team/app", ACTION_DELETE },
		{ "registry", "catalog", ACTION_ALL },
		{ "repository", "none/granted", 0 },
	};
	struct jwt_claims in = {
		.iss = ISS, .sub = "alice", .aud = AUD, .jti = "token-1",
		.iat = NOW, .nbf = NOW, .exp = NOW + 300,
		.access = acc, .naccess = sizeof(acc) / sizeof(acc[0]),
	};
	struct jwt_claims c;
	struct buf tok = BUF_INIT, part = BUF_INIT, want = BUF_INIT;

	CHECK_EQ_INT(jwt_sign(&key, &in, &tok), 0);
	CHECK_EQ_INT(verify_tok(tok.buf, tok.len, &c), 0);
	CHECK_STR(c.iss, ISS);
	CHECK_STR(c.sub, "alice");
	CHECK_STR(c.aud, AUD);
	CHECK_STR(c.jti, "token-1");
	CHECK_EQ_INT(c.iat, NOW);
	CHECK_EQ_INT(c.nbf, NOW);
	CHECK_EQ_INT(c.exp, NOW + 300);
	CHECK_EQ_INT(c.naccess, 4);
	for (size_t i = 0; i < c.naccess && i < 4; i++) {
		CHECK_STR(c.access[i].type, acc[i].type);
		CHECK_STR(c.access[i].name, acc[i].name);
		CHECK_EQ_INT(c.access[i].actions, acc[i].actions);
	}
	CHECK_EQ_INT(c.pat_id, 0);
	CHECK(c.cred == NULL);
	jwt_claims_release(&c);
	CHECK(c.iss == NULL && c.access == NULL && c.naccess == 0);

	/* berth's private claims travel only when set */
	struct jwt_claims priv = in;
	priv.pat_id = 42;
	priv.cred = "0123456789abcdef";
	buf_reset(&tok);
	CHECK_EQ_INT(jwt_sign(&key, &priv, &tok), 0);
	CHECK_EQ_INT(verify_tok(tok.buf, tok.len, &c), 0);
	CHECK_EQ_INT(c.pat_id, 42);
	CHECK_STR(c.cred, "0123456789abcdef");
	jwt_claims_release(&c);
	CHECK(c.cred == NULL && c.pat_id == 0);
	buf_reset(&tok);
	CHECK_EQ_INT(jwt_sign(&key, &in, &tok), 0);

	/* the header is exactly what the token spec shows, the signature raw */
	const char *dot1 = memchr(tok.buf, '.', tok.len);
	const char *dot2 = dot1 ? memchr(dot1 + 1, '.', tok.len - (size_t)(dot1 + 1 - tok.buf)) : NULL;
	CHECK(dot1 && dot2);
	if (dot1 && dot2) {
		CHECK_EQ_INT(b64url_decode(tok.buf, (size_t)(dot1 - tok.buf), &part), 0);
		buf_addf(&want, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", key.kid);
		CHECK_STR(part.buf, want.buf);
		buf_reset(&part);
		CHECK_EQ_INT(b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &part), 0);
		CHECK(strstr(part.buf, "\"actions\":[\"pull\",\"push\"]") != NULL);
		CHECK(strstr(part.buf, "\"actions\":[\"pull\",\"push\",\"delete\"]") != NULL);
		CHECK(strstr(part.buf, "\"actions\":[]") != NULL);
		CHECK(strstr(part.buf, "pat_id") == NULL && strstr(part.buf, "cred") == NULL);
		buf_reset(&part);
		CHECK_EQ_INT(b64url_decode(dot2 + 1, tok.len - (size_t)(dot2 + 1 - tok.buf), &part), 0);
		CHECK_EQ_INT(part.len, 64);
	}

	/* anonymous, no access, generated jti: two tokens get different ids */
	struct jwt_claims anon = { .iss = ISS, .aud = AUD, .iat = NOW, .nbf = NOW, .exp = NOW + 60 };
	struct jwt_claims c2;
	buf_reset(&tok);
	CHECK_EQ_INT(jwt_sign(&key, &anon, &tok), 0);
	CHECK_EQ_INT(verify_tok(tok.buf, tok.len, &c), 0);
	CHECK_STR(c.sub, "");
	CHECK_EQ_INT(c.naccess, 0);
	CHECK(c.jti && strlen(c.jti) >= 16);
	buf_reset(&tok);
	CHECK_EQ_INT(jwt_sign(&key, &anon, &tok), 0);
	CHECK_EQ_INT(verify_tok(tok.buf, tok.len, &c2), 0);
	CHECK(c.jti && c2.jti && strcmp(c.jti, c2.jti) != 0);
	jwt_claims_release(&c);
	jwt_claims_release(&c2);

	/* an unterminated token works: only len bytes are read */
	buf_reset(&tok);
	CHECK_EQ_INT(jwt_sign(&key, &in, &tok), 0);
	char *copy = malloc(tok.len);
	memcpy(copy, tok.buf, tok.len);
	CHECK_EQ_INT(verify_tok(copy, tok.len, NULL), 0);
	free(copy);

	/* sign refuses what it cannot write faithfully; out is untouched */
	struct jwt_claims bad = in;
	buf_reset(&tok);
	buf_adds(&tok, "keep");
	bad.iss = NULL;
	CHECK_EQ_INT(jwt_sign(&key, &bad, &tok), E_INTERNAL);
	bad = in;
	bad.aud = NULL;
	CHECK_EQ_INT(jwt_sign(&key, &bad, &tok), E_INTERNAL);
	bad = in;
	bad.sub = "\xff\xfe";
	CHECK_EQ_INT(jwt_sign(&key, &bad, &tok), E_INTERNAL);
	struct jwt_access badacc[] = { { "repository", NULL, ACTION_PULL } };
	bad = in;
	bad.access = badacc;
	bad.naccess = 1;
	CHECK_EQ_INT(jwt_sign(&key, &bad, &tok), E_INTERNAL);
	CHECK_STR(tok.buf, "keep");

	buf_release(&tok);
	buf_release(&part);
	buf_release(&want);
}

static void test_times(void)
{
	struct jwt_claims in = { .iss = ISS, .sub = "bob", .aud = AUD, .jti = "t" };
	struct buf tok = BUF_INIT;
	const struct {
		int64_t iat, nbf, exp;
		int ok;
	} v[] = {
		{ NOW, NOW, NOW + 1, 1 },
		{ NOW, NOW, NOW, 1 },                   /* within leeway */
		{ NOW - 100, NOW - 100, NOW - LEEWAY + 1, 1 },
		{ NOW - 100, NOW - 100, NOW - LEEWAY, 0 }, /* expired beyond leeway */
		{ NOW - 9000, NOW - 9000, NOW - 3600, 0 },
		{ NOW, NOW + LEEWAY, NOW + 300, 1 },
		{ NOW, NOW + LEEWAY + 1, NOW + 300, 0 }, /* not yet valid */
		{ NOW + LEEWAY + 1, NOW, NOW + 300, 0 }, /* issued in the future */
		{ NOW, NOW, INT64_MAX, 1 },
		{ NOW, INT64_MIN, NOW + 300, 1 },
		{ NOW, NOW, INT64_MIN, 0 },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		in.iat = v[i].iat;
		in.nbf = v[i].nbf;
		in.exp = v[i].exp;
		buf_reset(&tok);
		CHECK_EQ_INT(jwt_sign(&key, &in, &tok), 0);
		int rc = verify_buf(&tok);
		if (v[i].ok != (rc == 0))
			fprintf(stderr, "time case %zu\n", i);
		CHECK_EQ_INT(rc, v[i].ok ? 0 : E_UNAUTHORIZED);
	}
	/* a negative leeway counts as none */
	in.iat = in.nbf = NOW;
	in.exp = NOW + 1;
	buf_reset(&tok);
	CHECK_EQ_INT(jwt_sign(&key, &in, &tok), 0);
	struct jwt_claims c;
	CHECK_EQ_INT(jwt_verify(&key, tok.buf, tok.len, ISS, AUD, NOW, -1000, &c), 0);
	jwt_claims_release(&c);
	CHECK_EQ_INT(jwt_verify(&key, tok.buf, tok.len, ISS, AUD, NOW + 1, 0, &c), E_UNAUTHORIZED);

	/* exp required; all times must be JSON integers */
	CHECK_EQ_INT(verify_payload("", NULL), 0);
	CHECK_EQ_INT(verify_payload("", "nbf"), 0);
	CHECK_EQ_INT(verify_payload("", "iat"), 0);
	CHECK_EQ_INT(verify_payload("", "exp"), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"exp\":\"1700000300\"", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"exp\":1700000300.0", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"exp\":1e10", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"exp\":null", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"exp\":99999999999999999999999", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"nbf\":true", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"iat\":[1]", NULL), E_UNAUTHORIZED);
	buf_release(&tok);
}

static void test_claims(void)
{
	struct jwt_claims c;
	struct buf pl = BUF_INIT, tok = BUF_INIT;

	/* issuer and audience */
	CHECK_EQ_INT(verify_payload("\"iss\":\"someone-else\"", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"iss\":\"berth-tes\"", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"iss\":\"berth-testx\"", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"iss\":\"BERTH-TEST\"", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"iss\":\"berth-test\\u0000x\"", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"iss\":[\"berth-test\"]", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("", "iss"), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"aud\":\"other.registry\"", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("", "aud"), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"aud\":[\"a\",\"registry.test\"]", NULL), 0);
	CHECK_EQ_INT(verify_payload("\"aud\":[\"a\",\"b\"]", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"aud\":[]", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"aud\":[\"registry.test\",7]", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"aud\":{\"registry.test\":1}", NULL), E_UNAUTHORIZED);
	/* sub and jti optional but strings */
	CHECK_EQ_INT(verify_payload("", "sub"), 0);
	CHECK_EQ_INT(verify_payload("", "jti"), 0);
	CHECK_EQ_INT(verify_payload("\"sub\":42", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"jti\":null", NULL), E_UNAUTHORIZED);
	/* private claims: pat_id a positive integer, cred a string */
	CHECK_EQ_INT(verify_payload("\"pat_id\":7,\"cred\":\"abc\"", NULL), 0);
	CHECK_EQ_INT(verify_payload("\"pat_id\":0", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"pat_id\":-3", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"pat_id\":\"7\"", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"pat_id\":7.5", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"cred\":7", NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_payload("\"cred\":null", NULL), E_UNAUTHORIZED);
	/* duplicate members: ambiguous, refused */
	CHECK_EQ_INT(verify_payload("\"aud\":\"x\",\"aud\":\"registry.test\"", NULL), E_UNAUTHORIZED);
	/* not an object, not JSON, trailing bytes */
	const char *bodies[] = { "[]", "\"x\"", "42", "{", "{\"iss\":}", "", "{} {}", "null" };
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		craft(&tok, hdr_ok.buf, bodies[i], key.pkey, SIG_RAW, NULL, 0);
		CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	}

	/* access: actions by name, "*" for all, unknown names skipped */
	payload_with(&pl, "\"access\":[{\"type\":\"repository\",\"name\":\"a/b\",\"class\":\"image\","
			  "\"actions\":[\"pull\",\"tag\",\"delete\"]},"
			  "{\"type\":\"repository\",\"name\":\"c\",\"actions\":[\"*\"]},"
			  "{\"type\":\"registry\",\"name\":\"catalog\",\"actions\":[\"Pull\",\"PUSH\"]}]", NULL);
	craft(&tok, hdr_ok.buf, pl.buf, key.pkey, SIG_RAW, NULL, 0);
	CHECK_EQ_INT(verify_tok(tok.buf, tok.len, &c), 0);
	CHECK_EQ_INT(c.naccess, 3);
	if (c.naccess == 3) {
		CHECK_STR(c.access[0].name, "a/b");
		CHECK_EQ_INT(c.access[0].actions, ACTION_PULL | ACTION_DELETE);
		CHECK_EQ_INT(c.access[1].actions, ACTION_ALL);
		CHECK_STR(c.access[2].type, "registry");
		CHECK_EQ_INT(c.access[2].actions, 0);
	}
	CHECK_STR(c.sub, "alice");
	jwt_claims_release(&c);
	CHECK_EQ_INT(verify_payload("\"access\":[]", NULL), 0);
	CHECK_EQ_INT(verify_payload("", "access"), 0);
	static const char *bad_access[] = {
		"\"access\":{}",
		"\"access\":\"repository:a:pull\"",
		"\"access\":[1]",
		"\"access\":[[]]",
		"\"access\":[{\"name\":\"a\",\"actions\":[\"pull\"]}]",
		"\"access\":[{\"type\":\"repository\",\"actions\":[\"pull\"]}]",
		"\"access\":[{\"type\":\"repository\",\"name\":\"a\"}]",
		"\"access\":[{\"type\":\"repository\",\"name\":\"a\",\"actions\":\"pull\"}]",
		"\"access\":[{\"type\":\"repository\",\"name\":\"a\",\"actions\":[\"pull\",1]}]",
		"\"access\":[{\"type\":\"repository\",\"name\":7,\"actions\":[\"pull\"]}]",
		"\"access\":[{\"type\":null,\"name\":\"a\",\"actions\":[]}]",
		"\"access\":[{\"type\":\"repository\",\"name\":\"a\",\"actions\":[]},5]",
		"\"access\":[{\"type\":\"repository\",\"name\":\"a\",\"actions\":[],\"name\":\"b\"}]",
	};
	for (size_t i = 0; i < sizeof(bad_access) / sizeof(bad_access[0]); i++) {
		if (verify_payload(bad_access[i], NULL) != E_UNAUTHORIZED) {
			fprintf(stderr, "accepted: %s\n", bad_access[i]);
			CHECK(0);
		}
	}
	buf_release(&pl);
	buf_release(&tok);
}

static void test_header_and_signature(void)
{
	struct buf pl = BUF_INIT, tok = BUF_INIT, h = BUF_INIT, spki = BUF_INIT;
	unsigned char raw[64];

	payload_with(&pl, "", NULL);
	/* positive controls for the hand-built tokens */
	craft(&tok, hdr_ok.buf, pl.buf, key.pkey, SIG_RAW, NULL, 0);
	CHECK_EQ_INT(verify_buf(&tok), 0);
	craft(&tok, "{\"alg\":\"ES256\"}", pl.buf, key.pkey, SIG_RAW, NULL, 0);
	CHECK_EQ_INT(verify_buf(&tok), 0); /* kid is optional */

	/* alg allow-list: exact "ES256" only */
	static const char *algs[] = {
		"{\"alg\":\"none\"}", "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}", "{\"alg\":\"es256\"}",
		"{\"alg\":\"ES256 \"}", "{\"alg\":\"ES384\"}", "{\"alg\":\"ES512\"}", "{\"alg\":\"RS256\"}",
		"{\"alg\":\"PS256\"}", "{\"alg\":\"HS256\"}", "{\"alg\":\"EdDSA\"}", "{\"alg\":\"\"}",
		"{\"alg\":null}", "{\"alg\":[\"ES256\"]}", "{\"typ\":\"JWT\"}", "{}",
		"{\"alg\":\"ES256\\u0000\"}",
	};
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		craft(&tok, algs[i], pl.buf, key.pkey, SIG_RAW, NULL, 0);
		if (verify_buf(&tok) != E_UNAUTHORIZED) {
			fprintf(stderr, "accepted header %s\n", algs[i]);
			CHECK(0);
		}
	}
	/* alg none with an empty signature part, and with no third part */
	craft(&tok, "{\"alg\":\"none\",\"typ\":\"JWT\"}", pl.buf, NULL, SIG_EMPTY, NULL, 0);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_tok(tok.buf, tok.len - 1, NULL), E_UNAUTHORIZED);
	/* ES256 header but no signature */
	craft(&tok, hdr_ok.buf, pl.buf, NULL, SIG_EMPTY, NULL, 0);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);

	/* HS256 keyed with our public key, as PEM and as DER */
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem;
	PEM_write_bio_PUBKEY(bio, key.pkey);
	long pemlen = BIO_get_mem_data(bio, &pem);
	buf_add(&spki, pem, (size_t)pemlen);
	BIO_free(bio);
	unsigned char *der = NULL;
	int derlen = i2d_PUBKEY(key.pkey, &der);
	CHECK(derlen > 0);
	buf_reset(&h);
	buf_addf(&h, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", key.kid);
	craft(&tok, h.buf, pl.buf, NULL, SIG_HMAC, spki.buf, spki.len);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	craft(&tok, h.buf, pl.buf, NULL, SIG_HMAC, der, (size_t)derlen);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	craft(&tok, "{\"alg\":\"ES256\"}", pl.buf, NULL, SIG_HMAC, der, (size_t)derlen);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	OPENSSL_free(der);

	/* embedded or referenced keys and crit, even when our key signed */
	static const char *members[] = {
		"\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}",
		"\"jku\":\"https://evil.example/keys\"",
		"\"x5c\":[\"MIIB\"]",
		"\"x5u\":\"https://evil.example/cert\"",
		"\"crit\":[\"exp\"]",
		"\"jwk\":null",
		"\"crit\":[]",
	};
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
		buf_reset(&h);
		buf_addf(&h, "{\"alg\":\"ES256\",\"kid\":\"%s\",%s}", key.kid, members[i]);
		craft(&tok, h.buf, pl.buf, key.pkey, SIG_RAW, NULL, 0);
		if (verify_buf(&tok) != E_UNAUTHORIZED) {
			fprintf(stderr, "accepted header %s\n", h.buf);
			CHECK(0);
		}
	}
	/* header: duplicates, wrong shapes, bad kid */
	buf_reset(&h);
	buf_addf(&h, "{\"alg\":\"none\",\"alg\":\"ES256\",\"kid\":\"%s\"}", key.kid);
	craft(&tok, h.buf, pl.buf, key.pkey, SIG_RAW, NULL, 0);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	static const char *hdrs[] = {
		"[\"ES256\"]", "{", "not json", "", "{\"alg\":\"ES256\"} x",
		"{\"alg\":\"ES256\",\"kid\":\"AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA\"}",
		"{\"alg\":\"ES256\",\"kid\":\"\"}", "{\"alg\":\"ES256\",\"kid\":7}",
	};
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		craft(&tok, hdrs[i], pl.buf, key.pkey, SIG_RAW, NULL, 0);
		CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	}
	buf_reset(&h);
	buf_addf(&h, "{\"alg\":\"ES256\",\"kid\":\"%.58s\"}", key.kid); /* truncated kid */
	craft(&tok, h.buf, pl.buf, key.pkey, SIG_RAW, NULL, 0);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);

	/* another P-256 key: with its own kid, and lying with ours */
	struct jwt_key other = { 0 };
	struct jwt_claims in = { .iss = ISS, .sub = "mallory", .aud = AUD, .jti = "x",
				 .iat = NOW, .nbf = NOW, .exp = NOW + 300 };
	CHECK_EQ_INT(jwt_key_generate(&other), 0);
	buf_reset(&tok);
	CHECK_EQ_INT(jwt_sign(&other, &in, &tok), 0);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	memcpy(other.kid, key.kid, sizeof(other.kid));
	buf_reset(&tok);
	CHECK_EQ_INT(jwt_sign(&other, &in, &tok), 0);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	/* control: that token is fine for the key that signed it */
	struct jwt_claims c;
	CHECK_EQ_INT(jwt_verify(&other, tok.buf, tok.len, ISS, AUD, NOW, LEEWAY, &c), 0);
	jwt_claims_release(&c);
	craft(&tok, hdr_ok.buf, pl.buf, other.pkey, SIG_RAW, NULL, 0);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	jwt_key_release(&other);

	/* signature encodings: DER instead of raw, wrong lengths, bad scalars */
	craft(&tok, hdr_ok.buf, pl.buf, key.pkey, SIG_DER, NULL, 0);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	buf_reset(&tok);
	b64url_encode(hdr_ok.buf, hdr_ok.len, &tok);
	buf_addch(&tok, '.');
	b64url_encode(pl.buf, pl.len, &tok);
	CHECK_EQ_INT(sign_raw(key.pkey, tok.buf, tok.len, raw), 64);
	craft_raw_sig(&tok, hdr_ok.buf, pl.buf, raw, 64);
	CHECK_EQ_INT(verify_buf(&tok), 0); /* control */
	craft_raw_sig(&tok, hdr_ok.buf, pl.buf, raw, 63);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	craft_raw_sig(&tok, hdr_ok.buf, pl.buf, raw, 32);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	unsigned char longer[66] = { 0 };
	memcpy(longer, raw, 64);
	craft_raw_sig(&tok, hdr_ok.buf, pl.buf, longer, 65);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	/* r and s as 33-byte halves with a leading zero: still not 64 bytes */
	unsigned char padded[66] = { 0 };
	memcpy(padded + 1, raw, 32);
	memcpy(padded + 34, raw + 32, 32);
	craft_raw_sig(&tok, hdr_ok.buf, pl.buf, padded, 66);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	/* one flipped bit anywhere in the signature */
	for (int i = 0; i < 64; i += 7) {
		unsigned char t[64];
		memcpy(t, raw, 64);
		t[i] ^= 0x10;
		craft_raw_sig(&tok, hdr_ok.buf, pl.buf, t, 64);
		CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	}
	static const unsigned char order[32] = {
		0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
	};
	unsigned char t[64];
	memcpy(t, raw, 64);
	memset(t, 0, 32); /* r = 0 */
	craft_raw_sig(&tok, hdr_ok.buf, pl.buf, t, 64);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	memcpy(t, raw, 64);
	memset(t + 32, 0, 32); /* s = 0 */
	craft_raw_sig(&tok, hdr_ok.buf, pl.buf, t, 64);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	memcpy(t, order, 32); /* r = n */
	memcpy(t + 32, raw + 32, 32);
	craft_raw_sig(&tok, hdr_ok.buf, pl.buf, t, 64);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	memcpy(t, raw, 32);
	memset(t + 32, 0xff, 32); /* s > n */
	craft_raw_sig(&tok, hdr_ok.buf, pl.buf, t, 64);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	memset(t, 0, 64);
	craft_raw_sig(&tok, hdr_ok.buf, pl.buf, t, 64);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);

	buf_release(&pl);
	buf_release(&tok);
	buf_release(&h);
	buf_release(&spki);
}

static void test_structure(void)
{
	struct jwt_claims in = { .iss = ISS, .sub = "alice", .aud = AUD, .jti = "s",
				 .iat = NOW, .nbf = NOW, .exp = NOW + 300 };
	struct buf good = BUF_INIT, tok = BUF_INIT, part = BUF_INIT;
	CHECK_EQ_INT(jwt_sign(&key, &in, &good), 0);
	CHECK_EQ_INT(verify_buf(&good), 0);
	const char *dot1 = strchr(good.buf, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot1 || !dot2) {
		CHECK(0);
		goto out;
	}
	size_t h = (size_t)(dot1 - good.buf), p = (size_t)(dot2 - good.buf);

	/* tampered payload: one character, and one decoded byte */
	buf_reset(&tok);
	buf_add(&tok, good.buf, good.len);
	tok.buf[h + 6] = tok.buf[h + 6] == 'A' ? 'B' : 'A';
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	CHECK_EQ_INT(b64url_decode(dot1 + 1, p - h - 1, &part), 0);
	char *alice = strstr(part.buf, "alice");
	CHECK(alice != NULL);
	if (alice)
		alice[0] = 'A';
	buf_reset(&tok);
	buf_add(&tok, good.buf, h + 1);
	b64url_encode(part.buf, part.len, &tok);
	buf_adds(&tok, dot2);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	/* tampered header: a byte of the kid */
	buf_reset(&tok);
	buf_add(&tok, good.buf, good.len);
	tok.buf[h - 3] = tok.buf[h - 3] == 'A' ? 'B' : 'A';
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);

	/* part counts */
	buf_reset(&tok);
	buf_add(&tok, good.buf, p); /* header.payload */
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	buf_reset(&tok);
	buf_addf(&tok, "%s.%s", good.buf, dot2 + 1); /* four parts */
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	buf_reset(&tok);
	buf_addf(&tok, "%s.", good.buf);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	buf_reset(&tok);
	buf_addf(&tok, ".%s", good.buf);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	buf_reset(&tok);
	buf_add(&tok, good.buf, h + 1);
	buf_adds(&tok, dot2); /* empty payload */
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	static const char *tiny[] = { "", ".", "..", "...", "a.b.c", "a..c", "e30.e30.", ".e30.e30" };
	for (size_t i = 0; i < sizeof(tiny) / sizeof(tiny[0]); i++)
		CHECK_EQ_INT(verify_tok(tiny[i], strlen(tiny[i]), NULL), E_UNAUTHORIZED);
	CHECK_EQ_INT(verify_tok(NULL, 0, NULL), E_UNAUTHORIZED);

	/* padding, foreign characters, whitespace, NUL */
	const size_t spots[] = { h, p, good.len };
	static const char *junk[] = { "=", "==", "+", "/", " ", "\n", "%3D" };
	for (size_t s = 0; s < 3; s++) {
		for (size_t j = 0; j < sizeof(junk) / sizeof(junk[0]); j++) {
			buf_reset(&tok);
			buf_add(&tok, good.buf, spots[s]);
			buf_adds(&tok, junk[j]);
			buf_adds(&tok, good.buf + spots[s]);
			CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
		}
		buf_reset(&tok);
		buf_add(&tok, good.buf, spots[s]);
		buf_addch(&tok, '\0');
		buf_adds(&tok, good.buf + spots[s]);
		CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	}
	/* a trailing NUL counted in len is not ignored */
	CHECK_EQ_INT(verify_tok(good.buf, good.len + 1, NULL), E_UNAUTHORIZED);
	/* a standard-base64 spelling of the signature */
	buf_reset(&tok);
	buf_add(&tok, good.buf, good.len);
	for (size_t i = p + 1; i < tok.len; i++) {
		if (tok.buf[i] == '-')
			tok.buf[i] = '+';
		else if (tok.buf[i] == '_')
			tok.buf[i] = '/';
	}
	if (strcmp(tok.buf, good.buf))
		CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	/* the last signature character with its spare bits set */
	buf_reset(&tok);
	buf_add(&tok, good.buf, good.len);
	{
		static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		const char *at = strchr(a, tok.buf[tok.len - 1]);
		if (at)
			tok.buf[tok.len - 1] = a[(at - a) ^ 1];
		/* 64 bytes encode to 86 characters: 4 spare bits in the last one */
		CHECK_EQ_INT(good.len - p - 1, 86);
		CHECK(strcmp(tok.buf, good.buf) != 0);
		CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	}

	/* size limit: a big but valid token passes, one over 8 KiB does not */
	struct jwt_access acc[200];
	char names[200][16];
	for (int i = 0; i < 200; i++) {
		snprintf(names[i], sizeof(names[i]), "repo/n%03d", i);
		acc[i] = (struct jwt_access){ "repository", names[i], ACTION_PULL };
	}
	in.access = acc;
	in.naccess = 60;
	buf_reset(&tok);
	CHECK_EQ_INT(jwt_sign(&key, &in, &tok), 0);
	CHECK(tok.len < JWT_MAX_TOKEN);
	struct jwt_claims c;
	CHECK_EQ_INT(verify_tok(tok.buf, tok.len, &c), 0);
	CHECK_EQ_INT(c.naccess, 60);
	jwt_claims_release(&c);
	in.naccess = 200;
	buf_reset(&tok);
	CHECK_EQ_INT(jwt_sign(&key, &in, &tok), 0);
	CHECK(tok.len > JWT_MAX_TOKEN);
	CHECK_EQ_INT(verify_buf(&tok), E_UNAUTHORIZED);
	/* and a huge run of junk */
	size_t huge = 1 << 20;
	char *big = malloc(huge);
	memset(big, 'A', huge);
	big[1000] = big[2000] = '.';
	CHECK_EQ_INT(verify_tok(big, huge, NULL), E_UNAUTHORIZED);
	free(big);
out:
	buf_release(&good);
	buf_release(&tok);
	buf_release(&part);
}

struct thread_arg {
	const char *tok;
	size_t len;
	int fails;
};

static void *verify_many(void *p)
{
	struct thread_arg *a = p;
	for (int i = 0; i < 100; i++) {
		struct jwt_claims c;
		if (jwt_verify(&key, a->tok, a->len, ISS, AUD, NOW, LEEWAY, &c))
			a->fails++;
		jwt_claims_release(&c);
	}
	return NULL;
}

/* One key verifies from several threads at once, as the header promises. */
static void test_threads(void)
{
	struct jwt_claims in = { .iss = ISS, .sub = "t", .aud = AUD, .iat = NOW, .nbf = NOW,
				 .exp = NOW + 60 };
	struct buf tok = BUF_INIT;
	pthread_t th[4];
	struct thread_arg args[4];
	CHECK_EQ_INT(jwt_sign(&key, &in, &tok), 0);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ tok.buf, tok.len, 0 };
		CHECK_EQ_INT(pthread_create(&th[i], NULL, verify_many, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(args[i].fails, 0);
	}
	buf_release(&tok);
}

int main(void)
{
	struct buf p = BUF_INIT;
	if (t_scratch(&scratch, "jwt"))
		return 1;
	path_in(&p, "registry.pem");
	write_file(p.buf, fixed_pkcs8, strlen(fixed_pkcs8), 0600);
	if (jwt_key_load(p.buf, &key)) {
		fprintf(stderr, "cannot load the test key\n");
		return 1;
	}
	buf_addf(&hdr_ok, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", key.kid);

	test_b64url();
	test_key_files();
	test_round_trip();
	test_times();
	test_claims();
	test_header_and_signature();
	test_structure();
	test_threads();

	jwt_key_release(&key);
	CHECK_EQ_INT(t_rmtree(scratch.buf), 0);
	buf_release(&p);
	buf_release(&hdr_ok);
	buf_release(&scratch);
	return t_done();
}
