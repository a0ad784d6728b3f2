/* jwtverify: strict verification of ES256 compact tokens against our own key. */
#include "jwt.h"

#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "err.h"
#include "log.h"
#include "xalloc.h"

/* JOSE writes an ES256 signature as r||s, each padded to 32 bytes. */
#define ES256_HALF 32
#define ES256_SIG (2 * ES256_HALF)

/* The order n of the P-256 group: r and s must lie in [1, n-1]. */
static const unsigned char p256_order[ES256_HALF] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

static EVP_MD_CTX *md_ctx_new(void)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md)
		die("out of memory");
	return md;
}

/* 1 when the big-endian scalar v is in [1, n-1]. */
static int scalar_ok(const unsigned char *v)
{
	static const unsigned char zero[ES256_HALF];
	return memcmp(v, zero, ES256_HALF) != 0 && memcmp(v, p256_order, ES256_HALF) < 0;
}

/* Converts raw r||s back to DER, which is what EVP_DigestVerify takes. */
static int es256_verify(EVP_PKEY *pkey, const void *msg, size_t len, const unsigned char *raw,
			size_t rawlen)
{
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *sig = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	int dlen, rc = E_UNAUTHORIZED;

	if (rawlen != ES256_SIG || !scalar_ok(raw) || !scalar_ok(raw + ES256_HALF))
		goto out;
	sig = ECDSA_SIG_new();
	r = BN_bin2bn(raw, ES256_HALF, NULL);
	s = BN_bin2bn(raw + ES256_HALF, ES256_HALF, NULL);
	if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1)
		goto out;
	r = s = NULL; /* now owned by sig */
	dlen = i2d_ECDSA_SIG(sig, &der);
	if (dlen <= 0)
		goto out;
	md = md_ctx_new();
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestVerify(md, der, (size_t)dlen, msg, len) != 1)
		goto out;
	rc = 0;
out:
	if (rc)
		ERR_clear_error();
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	return rc;
}

static json_t *parse_object(const struct buf *b)
{
	/* Duplicate members are refused: two "alg" or "aud" members would
	 * mean whatever the parser reading them happens to choose. */
	json_t *j = json_loadb(b->buf, b->len, JSON_REJECT_DUPLICATES, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static int str_is(const json_t *j, const char *want, size_t want_len)
{
	return json_is_string(j) && json_string_length(j) == want_len &&
	       !memcmp(json_string_value(j), want, want_len);
}

/* Returns why the header is unacceptable, or NULL. */
static const char *check_header(const struct buf *b, const struct jwt_key *key)
{
	/* Members naming a key or certificate chain: such a token would have us
	 * trust whatever key it brings. "crit" demands extensions we lack. */
	static const char *const refused[] = { "jwk", "jku", "x5c", "x5u", "crit" };
	const char *why = NULL;
	json_t *h = parse_object(b), *kid;

	if (!h) {
		why = "header is not a JSON object";
		goto out;
	}
	if (!str_is(json_object_get(h, "alg"), "ES256", 5)) {
		why = "alg is not ES256";
		goto out;
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (json_object_get(h, refused[i])) {
			why = "header carries a key reference or crit";
			goto out;
		}
	}
	kid = json_object_get(h, "kid");
	if (kid && !str_is(kid, key->kid, strlen(key->kid)))
		why = "kid is not our key's";
out:
	json_decref(h);
	return why;
}

static int64_t add_sat(int64_t a, int64_t b)
{
	int64_t r;
	if (!__builtin_add_overflow(a, b, &r))
		return r;
	return b > 0 ? INT64_MAX : INT64_MIN;
}

/* Reads an optional integer member; returns -1 when present but not one. */
static int get_time(const json_t *o, const char *key, int *present, int64_t *out)
{
	const json_t *j = json_object_get(o, key);
	*present = j != NULL;
	*out = 0;
	if (!j)
		return 0;
	if (!json_is_integer(j))
		return -1;
	*out = (int64_t)json_integer_value(j);
	return 0;
}

static const char *check_times(const json_t *o, int64_t now, int64_t leeway, struct jwt_claims *c)
{
	int has_exp, has_nbf, has_iat;
	if (leeway < 0)
		leeway = 0;
	if (get_time(o, "exp", &has_exp, &c->exp) || get_time(o, "nbf", &has_nbf, &c->nbf) ||
	    get_time(o, "iat", &has_iat, &c->iat))
		return "exp, nbf or iat is not an integer";
	if (!has_exp)
		return "exp is missing";
	if (add_sat(c->exp, leeway) <= now)
		return "token expired";
	if (has_nbf && c->nbf > add_sat(now, leeway))
		return "token not yet valid (nbf)";
	if (has_iat && c->iat > add_sat(now, leeway))
		return "token issued in the future (iat)";
	return NULL;
}

/* Copies an optional string member ("" when absent); NULL on a non-string. */
static char *opt_string(const json_t *o, const char *key)
{
	const json_t *j = json_object_get(o, key);
	if (!j)
		return xstrdup("");
	/* jansson refuses \u0000 by default; the length check keeps C strings
	 * honest should that ever change. */
	if (!json_is_string(j) || strlen(json_string_value(j)) != json_string_length(j))
		return NULL;
	return xstrdup(json_string_value(j));
}

static int aud_matches(const json_t *aud, const char *want)
{
	size_t i, n = strlen(want);
	const json_t *v;
	if (json_is_string(aud))
		return str_is(aud, want, n);
	if (!json_is_array(aud))
		return 0;
	json_array_foreach(aud, i, v) {
		if (!json_is_string(v))
			return 0;
	}
	json_array_foreach(aud, i, v) {
		if (str_is(v, want, n))
			return 1;
	}
	return 0;
}

/* Unknown action names are skipped: newer issuers may grant more kinds. */
static int parse_actions(const json_t *arr, unsigned *out)
{
	size_t i;
	const json_t *v;
	*out = 0;
	if (!json_is_array(arr))
		return -1;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			return -1;
		*out |= action_from_name(json_string_value(v), json_string_length(v));
	}
	return 0;
}

static const char *parse_access(const json_t *o, struct jwt_claims *c)
{
	const json_t *arr = json_object_get(o, "access"), *e;
	size_t i;
	if (!arr)
		return NULL;
	if (!json_is_array(arr))
		return "access is not an array";
	c->access = xcalloc(json_array_size(arr) ? json_array_size(arr) : 1, sizeof(*c->access));
	json_array_foreach(arr, i, e) {
		struct jwt_access *a = &c->access[i];
		unsigned actions;
		if (!json_is_object(e) || !json_is_string(json_object_get(e, "type")) ||
		    !json_is_string(json_object_get(e, "name")) ||
		    parse_actions(json_object_get(e, "actions"), &actions))
			return "malformed access entry";
		c->naccess = i + 1;
		a->type = opt_string(e, "type");
		a->name = opt_string(e, "name");
		a->actions = actions;
		if (!a->type || !a->name)
			return "malformed access entry";
	}
	return NULL;
}

static const char *private_claims(const json_t *o, struct jwt_claims *c)
{
	const json_t *pat = json_object_get(o, "pat_id");
	if (pat) {
		if (!json_is_integer(pat) || json_integer_value(pat) <= 0)
			return "pat_id is not a positive integer";
		c->pat_id = (int64_t)json_integer_value(pat);
	}
	if (json_object_get(o, "cred") && !(c->cred = opt_string(o, "cred")))
		return "cred is not a string";
	return NULL;
}

/* Returns why the claims are unacceptable, or NULL with c filled. */
static const char *check_claims(const struct buf *b, const char *want_iss, const char *want_aud,
				int64_t now, int64_t leeway, struct jwt_claims *c)
{
	const char *why = NULL;
	json_t *o = parse_object(b);

	if (!o) {
		why = "payload is not a JSON object";
		goto out;
	}
	if ((why = check_times(o, now, leeway, c)))
		goto out;
	if (!str_is(json_object_get(o, "iss"), want_iss, strlen(want_iss))) {
		why = "wrong issuer";
		goto out;
	}
	if (!aud_matches(json_object_get(o, "aud"), want_aud)) {
		why = "wrong audience";
		goto out;
	}
	c->iss = xstrdup(want_iss);
	c->aud = xstrdup(want_aud);
	c->sub = opt_string(o, "sub");
	c->jti = opt_string(o, "jti");
	if (!c->sub || !c->jti) {
		why = "sub or jti is not a string";
		goto out;
	}
	if ((why = private_claims(o, c)))
		goto out;
	why = parse_access(o, c);
out:
	json_decref(o);
	return why;
}

/* Splits into exactly three non-empty parts; part[i] = {start, length}. */
static int split3(const char *t, size_t len, const char **part, size_t *plen)
{
	const char *end = t + len, *p = t;
	for (int i = 0; i < 3; i++) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		const char *stop = dot ? dot : end;
		if ((i < 2) != (dot != NULL) || stop == p)
			return -1;
		part[i] = p;
		plen[i] = (size_t)(stop - p);
		p = dot ? dot + 1 : end;
	}
	return 0;
}

int jwt_verify(const struct jwt_key *key, const char *token, size_t len, const char *want_iss,
	       const char *want_aud, int64_t now, int64_t leeway, struct jwt_claims *out)
{
	struct buf hdr = BUF_INIT, payload = BUF_INIT, sig = BUF_INIT;
	const char *part[3], *why = NULL;
	size_t plen[3];
	int rc = E_UNAUTHORIZED;

	memset(out, 0, sizeof(*out));
	if (!key || !key->pkey || !want_iss || !want_aud) {
		why = "no key, issuer or audience to check against";
		goto out;
	}
	if (!token || len > JWT_MAX_TOKEN || split3(token, len, part, plen)) {
		why = "not three non-empty dot-separated parts of at most 8 KiB";
		goto out;
	}
	if (b64url_decode(part[0], plen[0], &hdr) || b64url_decode(part[1], plen[1], &payload) ||
	    b64url_decode(part[2], plen[2], &sig)) {
		why = "invalid base64url";
		goto out;
	}
	if ((why = check_header(&hdr, key)))
		goto out;
	/* The signed input is the two encoded parts exactly as received. */
	if (es256_verify(key->pkey, token, plen[0] + 1 + plen[1], (unsigned char *)sig.buf,
			 sig.len)) {
		why = "bad signature";
		goto out;
	}
	if ((why = check_claims(&payload, want_iss, want_aud, now, leeway, out)))
		goto out;
	rc = 0;
out:
	if (rc) {
		log_debug("bearer token rejected: %s", why);
		jwt_claims_release(out);
	}
	buf_release(&hdr);
	buf_release(&payload);
	buf_release(&sig);
	return rc;
}
