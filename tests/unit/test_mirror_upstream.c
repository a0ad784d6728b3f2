/*
 * Unit tests for the upstream client's offline parts (mirror/): the
 * WWW-Authenticate parser, names on the upstream, the referrers tag
 * schema's tag and how errors are described. No network.
 */
#include <string.h>

#include "err.h"
#include "t.h"
#include "upstream.h"

static int parse(const char *h, struct upstream_challenge *c)
{
	return upstream_challenge_parse(h, c);
}

/* h parses to these fields. */
static void check_challenge(const char *h, const char *scheme, const char *realm, const char *service,
			    const char *scope)
{
	struct upstream_challenge c;
	CHECK_EQ_INT(parse(h, &c), 0);
	CHECK_STR(c.scheme, scheme);
	CHECK_STR(c.realm, realm);
	CHECK_STR(c.service, service);
	CHECK_STR(c.scope, scope);
}

static void test_challenge_good(void)
{
	struct upstream_challenge c;
	check_challenge("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
			"scope=\"repository:library/alpine:pull\"",
			"Bearer", "https://auth.docker.io/token", "registry.docker.io", "repository:library/alpine:pull");
	check_challenge("Basic realm=\"mirror-test\"", "Basic", "mirror-test", "", "");
	/* a comma inside quotes, escapes, unknown params (quoted and token), parameter names in any case */
	check_challenge("Bearer error=\"invalid_token\",REALM=\"http://h/t?x=1\",service=\"liar, the \\\"service\\\"\","
			"note=plain,Scope=\"a\\\\b\"",
			"Bearer", "http://h/t?x=1", "liar, the \"service\"", "a\\b");
	/* token values, spaces around '=' and ',', a tab inside quotes */
	check_challenge("  Bearer realm = https://a/b ,  service=\"x\ty\"", "Bearer", "https://a/b", "x\ty", "");
	/* only the first challenge is read; challenges are separated by commas */
	check_challenge("Bearer realm=\"first\", Basic realm=\"second\"", "Bearer", "first", "", "");
	CHECK_EQ_INT(parse("Bearer realm=\"first\" Basic realm=\"second\"", &c), -1);
	/* a scheme alone; an empty quoted value */
	check_challenge("Negotiate", "Negotiate", "", "", "");
	check_challenge("Bearer realm=\"\"", "Bearer", "", "", "");
}

static void test_challenge_bad(void)
{
	static const char *bad[] = {
		"",
		"   ",
		"=realm",
		"Bearer realm=\"unterminated",
		"Bearer realm=\"ends in a backslash\\",
		"Bearer realm=",
		"Bearer realm=\"a\",=x",
		"Bearer realm=\"a\";service=\"b\"",
		"Bearer realm=\"control\001char\"",
		"Bearer realm=\"a\" junk\"",
		"Bearer@ realm=\"a\"",
		"AVeryLongSchemeName realm=\"a\"",
	};
	struct upstream_challenge c;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i], &c);
		if (rc != -1)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK_EQ_INT(rc, -1);
	}
}

/* A value that does not fit its field is refused, one that fits exactly is kept; unknown params may be long. */
static void test_challenge_bounds(void)
{
	struct upstream_challenge c;
	struct buf h = BUF_INIT;
	char realm[sizeof(c.realm) + 1];
	memset(realm, 'r', sizeof(realm));
	realm[sizeof(c.realm) - 1] = '\0';
	buf_addf(&h, "Bearer realm=\"%s\"", realm);
	CHECK_EQ_INT(parse(h.buf, &c), 0);
	CHECK_EQ_INT(strlen(c.realm), sizeof(c.realm) - 1);
	buf_reset(&h);
	realm[sizeof(c.realm) - 1] = 'r';
	realm[sizeof(c.realm)] = '\0';
	buf_addf(&h, "Bearer realm=\"%s\"", realm);
	CHECK_EQ_INT(parse(h.buf, &c), -1);
	buf_reset(&h);
	buf_addf(&h, "Bearer realm=%s", realm);
	CHECK_EQ_INT(parse(h.buf, &c), -1);
	buf_reset(&h);
	buf_addf(&h, "Bearer thisparameternameislongerthanthirtytwocharacters=1,realm=\"r\"");
	CHECK_EQ_INT(parse(h.buf, &c), 0);
	CHECK_STR(c.realm, "r");
	buf_release(&h);
}

static struct upstream *open_up(const char *url, const char *prefix, int is_default)
{
	struct config_upstream cfg = { .name = "hub", .url = (char *)url, .prefix = (char *)prefix,
				       .is_default = is_default };
	struct upstream *u = NULL;
	CHECK_EQ_INT(upstream_open(&cfg, NULL, &u), 0);
	return u;
}

static void check_remote(struct upstream *u, const char *name, int want_rc, const char *want)
{
	struct buf out = BUF_INIT;
	CHECK_EQ_INT(upstream_remote_name(u, name, &out), want_rc);
	if (!want_rc)
		CHECK_STR(out.buf, want);
	buf_release(&out);
}

static void test_remote_names(void)
{
	struct upstream *hub = open_up("https://registry-1.docker.io", "hub/", 1);
	struct upstream *quay = open_up("https://quay.io", "quay/", 0);
	check_remote(hub, "hub/alpine", 0, "library/alpine");
	check_remote(hub, "hub/library/alpine", 0, "library/alpine");
	check_remote(hub, "hub/me/app", 0, "me/app");
	check_remote(hub, "alpine", 0, "library/alpine"); /* the default upstream takes unprefixed names */
	check_remote(hub, "hub/", E_NAME_UNKNOWN, NULL);
	check_remote(quay, "quay/coreos/etcd", 0, "coreos/etcd");
	check_remote(quay, "quay/single", 0, "single"); /* library/ is Docker Hub's only */
	check_remote(quay, "hub/alpine", E_NAME_UNKNOWN, NULL);
	CHECK_STR(upstream_name(quay), "hub");
	CHECK_STR(upstream_url(quay), "https://quay.io");
	upstream_free(hub);
	upstream_free(quay);
	struct config_upstream bad = { .name = "x", .url = "ftp://x", .prefix = "x/" };
	struct upstream *u = (struct upstream *)&bad;
	CHECK_EQ_INT(upstream_open(&bad, NULL, &u), E_CONFIG);
	CHECK(u == NULL);
}

static void test_referrers_tag(void)
{
	struct digest d;
	char tag[UPSTREAM_REFERRERS_TAG_MAX + 1];
	digest_of(DIGEST_SHA256, "x", 1, &d);
	upstream_referrers_tag(&d, tag);
	CHECK(!strncmp(tag, "sha256-", 7));
	CHECK_STR(tag + 7, d.hex);
	digest_of(DIGEST_SHA512, "x", 1, &d);
	upstream_referrers_tag(&d, tag);
	/* the tag grammar allows 128 characters: sha512's 7 + 128 are cut */
	CHECK_EQ_INT(strlen(tag), UPSTREAM_REFERRERS_TAG_MAX);
	CHECK(!strncmp(tag, "sha512-", 7));
	CHECK(!strncmp(tag + 7, d.hex, UPSTREAM_REFERRERS_TAG_MAX - 7));
}

static void describe(struct upstream *u, const struct upstream_error *e, const char *want)
{
	struct buf out = BUF_INIT;
	upstream_error_describe(u, e, &out);
	CHECK_STR(out.buf, want);
	buf_release(&out);
}

static void test_error_describe(void)
{
	struct upstream *u = open_up("https://quay.io", "quay/", 0);
	struct upstream_error e = { .kind = UPSTREAM_RATE_LIMITED, .status = 429, .retry_after_s = 7 };
	snprintf(e.code, sizeof(e.code), "TOOMANYREQUESTS");
	snprintf(e.message, sizeof(e.message), "slow down");
	describe(u, &e, "upstream \"hub\" (https://quay.io) answered 429 TOOMANYREQUESTS: slow down (retry after 7s)");
	e = (struct upstream_error){ .kind = UPSTREAM_DOWN };
	snprintf(e.message, sizeof(e.message), "Couldn't connect to server");
	describe(u, &e, "upstream \"hub\" (https://quay.io) is down: Couldn't connect to server");
	e = (struct upstream_error){ .kind = UPSTREAM_TIMEOUT };
	describe(u, &e, "upstream \"hub\" (https://quay.io) timeout");
	e = (struct upstream_error){ .kind = UPSTREAM_NOT_FOUND, .status = 404 };
	describe(u, &e, "upstream \"hub\" (https://quay.io) answered 404");
	CHECK_STR(upstream_fail_name(UPSTREAM_SERVER), "server error");
	CHECK_STR(upstream_fail_name((enum upstream_fail)99), "?");
	upstream_free(u);
}

int main(void)
{
	test_challenge_good();
	test_challenge_bad();
	test_challenge_bounds();
	test_remote_names();
	test_referrers_tag();
	test_error_describe();
	return t_done();
}
