/* jwt: the strict base64url codec, and signing ES256 compact tokens. */
#include "jwt.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "err.h"
#include "rand.h"
#include "xalloc.h"

/* JOSE writes an ES256 signature as r||s, each padded to 32 bytes. */
#define ES256_HALF 32
#define ES256_SIG (2 * ES256_HALF)

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void b64url_encode(const void *data, size_t len, struct buf *out)
{
	const unsigned char *p = data;
	size_t i;
	if (len > SIZE_MAX / 2)
		die("base64url input too large");
	buf_grow(out, len / 3 * 4 + 4);
	for (i = 0; i + 3 <= len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		buf_addch(out, b64_alphabet[v >> 18]);
		buf_addch(out, b64_alphabet[(v >> 12) & 63]);
		buf_addch(out, b64_alphabet[(v >> 6) & 63]);
		buf_addch(out, b64_alphabet[v & 63]);
	}
	if (len - i == 1) {
		unsigned v = (unsigned)p[i] << 16;
		buf_addch(out, b64_alphabet[v >> 18]);
		buf_addch(out, b64_alphabet[(v >> 12) & 63]);
	} else if (len - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		buf_addch(out, b64_alphabet[v >> 18]);
		buf_addch(out, b64_alphabet[(v >> 12) & 63]);
		buf_addch(out, b64_alphabet[(v >> 6) & 63]);
	}
}

/* Value of a base64url character, or -1. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int b64url_decode(const char *s, size_t len, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t orig = out->len;
	unsigned acc = 0;
	int bits = 0;

	/* One leftover character carries only 6 bits: never a whole byte. */
	if (len % 4 == 1)
		return E_BAD_REQUEST;
	buf_grow(out, len / 4 * 3 + 2);
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(p[i]);
		if (v < 0)
			goto bad;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_addch(out, (char)((acc >> bits) & 0xff));
		}
	}
	/* Nonzero leftover bits would give the same bytes a second spelling. */
	if (acc & ((1u << bits) - 1))
		goto bad;
	return 0;
bad:
	if (out->alloc)
		buf_setlen(out, orig);
	return E_BAD_REQUEST;
}

void jwt_claims_release(struct jwt_claims *c)
{
	free(c->iss);
	free(c->sub);
	free(c->aud);
	free(c->jti);
	free(c->cred);
	for (size_t i = 0; i < c->naccess; i++) {
		free(c->access[i].type);
		free(c->access[i].name);
	}
	free(c->access);
	memset(c, 0, sizeof(*c));
}

static EVP_MD_CTX *md_ctx_new(void)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md)
		die("out of memory");
	return md;
}

/* Signs msg and converts OpenSSL's DER ECDSA-Sig-Value to raw r||s. */
static int es256_sign(EVP_PKEY *pkey, const void *msg, size_t len, unsigned char out[ES256_SIG])
{
	EVP_MD_CTX *md = md_ctx_new();
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t dlen = 0;
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r, *s;
	int rc = E_INTERNAL;

	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestSign(md, NULL, &dlen, msg, len) != 1)
		goto out;
	der = xmalloc(dlen);
	if (EVP_DigestSign(md, der, &dlen, msg, len) != 1)
		goto out;
	p = der;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
	if (!sig)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, out, ES256_HALF) != ES256_HALF ||
	    BN_bn2binpad(s, out + ES256_HALF, ES256_HALF) != ES256_HALF)
		goto out;
	rc = 0;
out:
	if (rc)
		ERR_clear_error();
	ECDSA_SIG_free(sig);
	free(der);
	EVP_MD_CTX_free(md);
	return rc;
}

static int put_str(json_t *obj, const char *key, const char *val)
{
	/* json_string() refuses invalid UTF-8 by returning NULL, and so does
	 * json_object_set_new() when handed that NULL. */
	return json_object_set_new(obj, key, json_string(val)) ? E_INTERNAL : 0;
}

static int put_int(json_t *obj, const char *key, int64_t val)
{
	return json_object_set_new(obj, key, json_integer((json_int_t)val)) ? E_INTERNAL : 0;
}

static json_t *actions_json(unsigned actions)
{
	json_t *arr = json_array();
	if (!arr)
		die("out of memory");
	for (unsigned bit = 1; bit & ACTION_ALL; bit <<= 1) {
		if ((actions & bit) && json_array_append_new(arr, json_string(action_name(bit))))
			die("out of memory");
	}
	return arr;
}

static int access_json(const struct jwt_claims *c, json_t **out)
{
	json_t *arr = json_array();
	int rc = 0;
	if (!arr)
		die("out of memory");
	for (size_t i = 0; i < c->naccess; i++) {
		const struct jwt_access *a = &c->access[i];
		json_t *o = json_object();
		if (!o)
			die("out of memory");
		if (!a->type || !a->name || put_str(o, "type", a->type) ||
		    put_str(o, "name", a->name)) {
			rc = E_INTERNAL;
			json_decref(o);
			break;
		}
		if (json_object_set_new(o, "actions", actions_json(a->actions)) ||
		    json_array_append_new(arr, o))
			die("out of memory");
	}
	if (rc)
		json_decref(arr);
	else
		*out = arr;
	return rc;
}

static void random_jti(struct buf *out)
{
	unsigned char id[16];
	rand_bytes(id, sizeof(id));
	b64url_encode(id, sizeof(id), out);
}

/* The payload JSON as the Docker token spec lays it out; caller frees. */
static int payload_json(const struct jwt_claims *c, char **out)
{
	struct buf jti = BUF_INIT;
	json_t *o = json_object(), *access = NULL;
	int rc = E_INTERNAL;
	if (!o)
		die("out of memory");
	if (!c->iss || !c->aud)
		goto out;
	if (!c->jti)
		random_jti(&jti);
	if ((rc = put_str(o, "iss", c->iss)) || (rc = put_str(o, "sub", c->sub ? c->sub : "")) ||
	    (rc = put_str(o, "aud", c->aud)) || (rc = put_int(o, "exp", c->exp)) ||
	    (rc = put_int(o, "nbf", c->nbf)) || (rc = put_int(o, "iat", c->iat)) ||
	    (rc = put_str(o, "jti", c->jti ? c->jti : jti.buf)) || (rc = access_json(c, &access)))
		goto out;
	if (json_object_set_new(o, "access", access))
		die("out of memory");
	if ((c->pat_id && (rc = put_int(o, "pat_id", c->pat_id))) ||
	    (c->cred && (rc = put_str(o, "cred", c->cred))))
		goto out;
	*out = json_dumps(o, JSON_COMPACT);
	if (!*out)
		die("out of memory");
	rc = 0;
out:
	json_decref(o);
	buf_release(&jti);
	return rc;
}

int jwt_sign(const struct jwt_key *key, const struct jwt_claims *c, struct buf *out)
{
	struct buf tok = BUF_INIT, hdr = BUF_INIT;
	unsigned char sig[ES256_SIG];
	char *payload = NULL;
	int rc;

	if ((rc = payload_json(c, &payload)))
		goto out;
	/* The kid is base32 and ':' only, so it needs no JSON escaping. */
	buf_addf(&hdr, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", key->kid);
	b64url_encode(hdr.buf, hdr.len, &tok);
	buf_addch(&tok, '.');
	b64url_encode(payload, strlen(payload), &tok);
	if ((rc = es256_sign(key->pkey, tok.buf, tok.len, sig)))
		goto out;
	buf_addch(&tok, '.');
	b64url_encode(sig, sizeof(sig), &tok);
	buf_add(out, tok.buf, tok.len);
out:
	free(payload);
	buf_release(&hdr);
	buf_release(&tok);
	return rc;
}
