/* Unit tests for config/: "upstreams" (keys, checks across entries, credentials, routing, description, reload). */
#include "t_config.h"

#define HUB_PW "hub-Secret-0xBADC0DE"
#define QUAY_TOKEN "quay-Token-0xFEEDFACE"
#define HUB "{\"name\": \"hub\", \"url\": \"https://registry-1.docker.io\", \"prefix\": \"hub/\""
#define UP(extra) "{\"upstreams\": [" HUB extra "}]}"
#define UP_WITH(url, prefix) "{\"upstreams\": [{\"name\": \"hub\", \"url\": \"" url "\", \"prefix\": \"" prefix "\"}]}"

static void unset_upstream_env(void)
{
	unsetenv("BERTH_UPSTREAM_HUB_PASSWORD");
	unsetenv("BERTH_UPSTREAM_HUB_TOKEN");
	unsetenv("BERTH_UPSTREAM_MY_QUAY_TOKEN");
	unsetenv("BERTH_UPSTREAM_MY_QUAY_PASSWORD");
}

static void test_good(void)
{
	struct config c;
	const struct config_upstream *u;
	clear_env();
	unset_upstream_env();
	secret_file("hub.pw", HUB_PW "\n", 0600);
	secret_file("quay.token", QUAY_TOKEN "\n", 0440);
	secret_file("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
	CHECK_EQ_INT(load_env("{\"upstreams\": [" HUB ", \"default\": true, \"username\": \"me\", "
			      "\"password_file\": \"hub.pw\", \"ca_file\": null, \"freshness\": \"10m\", \"ttl\": \"30d\", "
			      "\"max_size\": \"50GiB\", \"allow_push\": true, \"sync\": [{\"repositories\": [\"library/alpine\"], \"tags\": "
			      "[\"3.*\"], \"every\": \"6h\"}, {\"repositories\": [\"library/**\"]}]}, "
			      "{\"name\": \"my-quay\", \"url\": \"https://quay.io/\", \"prefix\": \"quay\", \"token_file\": "
			      "\"quay.token\", \"ca_file\": \"ca.pem\"}, {\"name\": \"local\", \"url\": "
			      "\"http://127.0.0.1:5001\", \"prefix\": \"mirror/local/\"}]}", &c), 0);
	CHECK_EQ_INT(c.n_upstreams, 3);
	u = &c.upstreams[0];
	CHECK_STR(u->name, "hub");
	CHECK_STR(u->url, "https://registry-1.docker.io");
	CHECK_STR(u->prefix, "hub/");
	CHECK_EQ_INT(u->is_default, 1);
	CHECK_EQ_INT(u->allow_push, 1);
	CHECK_STR(u->username, "me");
	CHECK_STR(u->password.value, HUB_PW);
	CHECK_EQ_INT(u->password.from, CONFIG_SECRET_FILE);
	CHECK(u->ca_file == NULL && u->token.value == NULL);
	CHECK_EQ_INT(u->freshness_s, 600);
	CHECK_EQ_INT(u->ttl_s, 30 * 86400);
	CHECK(u->max_size == 50ULL << 30);
	CHECK_EQ_INT(u->n_sync, 2);
	CHECK_STR(u->sync[0].repositories.v[0], "library/alpine");
	CHECK_STR(u->sync[0].tags.v[0], "3.*");
	CHECK_EQ_INT(u->sync[0].every_s, 6 * 3600);
	CHECK_EQ_INT(u->sync[1].tags.n, 0);
	CHECK_EQ_INT(u->sync[1].every_s, 0);
	u = &c.upstreams[1];
	CHECK_STR(u->url, "https://quay.io");
	CHECK_STR(u->prefix, "quay/");
	CHECK_STR(u->token.value, QUAY_TOKEN);
	CHECK_STR(u->ca_file, "ca.pem");
	CHECK_EQ_INT(u->is_default, 0);
	CHECK_EQ_INT(u->allow_push, 0); /* pushes into a cache are refused unless asked for */
	u = &c.upstreams[2];
	CHECK_EQ_INT(u->freshness_s, CONFIG_DEFAULT_FRESHNESS);
	CHECK(u->ttl_s == 0 && u->max_size == 0 && u->n_sync == 0);
	CHECK(u->username == NULL && u->token.from == CONFIG_SECRET_UNSET);

	/* routing: the prefix wins, unprefixed names go to the default */
	CHECK_STR(config_upstream_for(&c, "hub/library/alpine")->name, "hub");
	CHECK_STR(config_upstream_for(&c, "quay/coreos/etcd")->name, "my-quay");
	CHECK_STR(config_upstream_for(&c, "mirror/local/x")->name, "local");
	CHECK_STR(config_upstream_for(&c, "alpine")->name, "hub");
	CHECK_STR(config_upstream_for(&c, "mirror/other")->name, "hub");
	CHECK_STR(config_upstream_for(&c, "hubx/a")->name, "hub");
	config_release(&c);

	CHECK_EQ_INT(load_env("{\"upstreams\": []}", &c), 0);
	CHECK(c.n_upstreams == 0 && config_upstream_for(&c, "hub/a") == NULL);
	config_release(&c);
	CHECK_EQ_INT(load_env(UP(""), &c), 0);
	CHECK(config_upstream_for(&c, "alpine") == NULL);
	config_release(&c);
	good(UP(", \"freshness\": \"0s\", \"max_size\": \"1048576\""));
	good(UP(", \"max_size\": \"1024TiB\", \"ttl\": \"0s\""));
}

static void test_bad(void)
{
	clear_env();
	unset_upstream_env();
	secret_file("hub.pw", HUB_PW, 0600);
	secret_file("open.pw", HUB_PW, 0644);
	bad("{\"upstreams\": {}}", "F: \"upstreams\": expected an array of objects");
	bad("{\"upstreams\": [5]}", "F: \"upstreams[0]\": expected an object");
	bad("{\"upstreams\": [{\"url\": \"https://a.io\", \"prefix\": \"a/\"}]}", "F: \"upstreams[0]\": \"name\" is required");
	bad("{\"upstreams\": [{\"name\": \"a\", \"prefix\": \"a/\"}]}", "F: \"upstreams[0]\": \"url\" is required");
	bad("{\"upstreams\": [{\"name\": \"a\", \"url\": \"https://a.io\"}]}",
	    "F: \"upstreams[0]\": \"prefix\" is required (the local repositories it serves, like \"a/\")");
	bad("{\"upstreams\": [{\"name\": \"Hub\"}]}",
	    "F: \"upstreams[0].name\": expected 1 to 32 of [a-z0-9-], starting with a letter or digit");
	bad("{\"upstreams\": [{\"name\": \"my.hub\"}]}",
	    "F: \"upstreams[0].name\": expected 1 to 32 of [a-z0-9-], starting with a letter or digit");
	bad(UP_WITH("ftp://x", "hub/"), "F: \"upstreams[0].url\": expected an http:// or https:// URL like "
	    "\"https://registry.example.com\" (no query, fragment, user or quotes)");
	bad(UP_WITH("https://me:pw@x.io", "hub/"), "F: \"upstreams[0].url\": expected an http:// or https:// URL like "
	    "\"https://registry.example.com\" (no query, fragment, user or quotes)");
	bad(UP_WITH("https://x.io", "Hub/"), "F: \"upstreams[0].prefix\": expected a repository name prefix like \"hub/\" "
	    "(lowercase name components joined by '/', at most 128 characters)");
	bad(UP_WITH("https://x.io", "/"), "F: \"upstreams[0].prefix\": expected a repository name prefix like \"hub/\" "
	    "(lowercase name components joined by '/', at most 128 characters)");
	bad(UP_WITH("https://x.io", "a//"), "F: \"upstreams[0].prefix\": expected a repository name prefix like \"hub/\" "
	    "(lowercase name components joined by '/', at most 128 characters)");
	bad(UP(", \"default\": 1"), "F: \"upstreams[0].default\": expected true or false");
	bad(UP(", \"allow_push\": \"yes\""), "F: \"upstreams[0].allow_push\": expected true or false");
	bad(UP(", \"password\": \"x\""), "F: \"upstreams[0].password\": unknown key (expected one of: name, url, prefix, "
	    "default, allow_push, username, password_file, token_file, ca_file, freshness, ttl, max_size, sync)");
	bad(UP(", \"username\": \"me:you\""), "F: \"upstreams[0].username\": expected printable ASCII without spaces or ':'");
	bad(UP(", \"password_file\": \"hub.pw\""), "F: \"upstreams[0]\": \"password_file\" needs \"username\"");
	bad(UP(", \"username\": \"me\", \"password_file\": \"open.pw\""),
	    "F: \"upstreams[0].password_file\": \"open.pw\" is readable by every user (mode 0644): remove that "
	    "(chmod o-rwx)");
	bad(UP(", \"username\": \"me\", \"token_file\": \"hub.pw\""),
	    "F: \"upstreams[0]\": \"token_file\" and \"username\" exclude each other (a token is sent as it is; a "
	    "username goes with a password)");
	bad(UP(", \"ca_file\": \"nope.pem\""), "F: \"upstreams[0].ca_file\": cannot open \"nope.pem\": No such file or "
	    "directory");
	bad(UP(", \"freshness\": \"31d\""), "F: \"upstreams[0].freshness\": \"31d\" is out of range (0s to 30d)");
	bad(UP(", \"ttl\": 30"), "F: \"upstreams[0].ttl\": expected a duration string like \"5m\"");
	bad(UP(", \"max_size\": \"50G\""), "F: \"upstreams[0].max_size\": expected a size like \"50GiB\" (digits and one "
	    "of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)");
	bad(UP(", \"max_size\": \"1025TiB\""), "F: \"upstreams[0].max_size\": size too large (at most 1024TiB)");
	bad(UP(", \"max_size\": 5"), "F: \"upstreams[0].max_size\": expected a size string like \"50GiB\"");
	bad(UP(", \"sync\": [{\"tags\": [\"v*\"]}]"),
	    "F: \"upstreams[0].sync[0]\": \"repositories\" is required (a non-empty list)");
	bad(UP(", \"sync\": [{\"repositories\": [\"a\"], \"every\": \"30s\"}]"),
	    "F: \"upstreams[0].sync[0]\": \"every\" must be at least 1m (or 0s: only when run by hand)");
	bad(UP(", \"sync\": [{\"repositories\": [\"a\"], \"tags\": [\"v 1\"]}]"),
	    "F: \"upstreams[0].sync[0].tags[0]\": \"v 1\": tag globs hold letters, digits, '.', '_', '-' and '*'");
	bad(UP(", \"sync\": [{\"repositories\": [\"A\"]}]"), "F: \"upstreams[0].sync[0].repositories[0]\": \"A\": "
	    "expected a repository glob: lowercase name components joined by '/', '*' within a component, '**' as a "
	    "whole component");
	bad(UP(", \"sync\": [{\"repositories\": [\"a\"], \"when\": \"6h\"}]"),
	    "F: \"upstreams[0].sync[0].when\": unknown key (expected one of: repositories, tags, every)");

	/* across entries */
	bad("{\"upstreams\": [" HUB "}, " HUB "}]}", "F: \"upstreams[1]\": the name \"hub\" is also upstreams[0]'s");
	bad("{\"upstreams\": [" HUB "}, {\"name\": \"b\", \"url\": \"https://b.io\", \"prefix\": \"hub/x/\"}]}",
	    "F: \"upstreams[1]\": the prefix \"hub/x/\" overlaps upstreams[0]'s \"hub/\"");
	bad("{\"upstreams\": [{\"name\": \"b\", \"url\": \"https://b.io\", \"prefix\": \"hub\"}, " HUB "}]}",
	    "F: \"upstreams[1]\": the prefix \"hub/\" overlaps upstreams[0]'s \"hub/\"");
	bad("{\"upstreams\": [" HUB ", \"default\": true}, {\"name\": \"b\", \"url\": \"https://b.io\", \"prefix\": "
	    "\"b/\", \"default\": true}]}", "F: \"upstreams[1]\": only one upstream may be the default (upstreams[0] is)");
	good("{\"upstreams\": [" HUB "}, {\"name\": \"b\", \"url\": \"https://b.io\", \"prefix\": \"hubx/\"}]}");
}

static void test_env(void)
{
	struct config c;
	clear_env();
	unset_upstream_env();
	secret_file("hub.pw", HUB_PW, 0600);
	setenv("BERTH_UPSTREAM_HUB_PASSWORD", "from-env", 1);
	CHECK_EQ_INT(load_env(UP(", \"username\": \"me\""), &c), 0);
	CHECK_STR(c.upstreams[0].password.value, "from-env");
	CHECK_EQ_INT(c.upstreams[0].password.from, CONFIG_SECRET_ENV);
	config_release(&c);
	/* the file wins */
	CHECK_EQ_INT(load_env(UP(", \"username\": \"me\", \"password_file\": \"hub.pw\""), &c), 0);
	CHECK_STR(c.upstreams[0].password.value, HUB_PW);
	config_release(&c);
	/* a password variable without a username is not read */
	CHECK_EQ_INT(load_env(UP(""), &c), 0);
	CHECK(c.upstreams[0].password.value == NULL && c.upstreams[0].token.value == NULL);
	config_release(&c);
	unsetenv("BERTH_UPSTREAM_HUB_PASSWORD");
	CHECK_EQ_INT(load_env(UP(", \"username\": \"me\""), &c), E_CONFIG);
	CHECK_STR(msg, "upstreams.hub: \"username\" is set but there is no password: set \"password_file\" or "
		  "BERTH_UPSTREAM_HUB_PASSWORD");
	config_release(&c);
	setenv("BERTH_UPSTREAM_MY_QUAY_TOKEN", QUAY_TOKEN, 1);
	CHECK_EQ_INT(load_env("{\"upstreams\": [{\"name\": \"my-quay\", \"url\": \"https://quay.io\", \"prefix\": "
			      "\"quay/\"}]}", &c), 0);
	CHECK_STR(c.upstreams[0].token.value, QUAY_TOKEN);
	CHECK_EQ_INT(c.upstreams[0].token.from, CONFIG_SECRET_ENV);
	config_release(&c);
	setenv("BERTH_UPSTREAM_MY_QUAY_TOKEN", "has space", 1);
	CHECK_EQ_INT(load_env("{\"upstreams\": [{\"name\": \"my-quay\", \"url\": \"https://quay.io\", \"prefix\": "
			      "\"quay/\"}]}", &c), E_CONFIG);
	CHECK_STR(msg, "BERTH_UPSTREAM_MY_QUAY_TOKEN holds a space, a control character or a non-ASCII character");
	config_release(&c);
	unset_upstream_env();
}

static void test_describe_and_reload(void)
{
	struct config cur, next;
	struct buf out = BUF_INIT, changed = BUF_INIT;
	clear_env();
	unset_upstream_env();
	secret_file("hub.pw", HUB_PW, 0600);
	setenv("BERTH_UPSTREAM_MY_QUAY_TOKEN", QUAY_TOKEN, 1);
	const char *json = "{\"upstreams\": [" HUB ", \"default\": true, \"username\": \"me\", \"password_file\": "
		"\"hub.pw\", \"ttl\": \"30d\", \"max_size\": \"1KiB\", \"sync\": [{\"repositories\": [\"a\"]}]}, "
		"{\"name\": \"my-quay\", \"url\": \"https://quay.io\", \"prefix\": \"quay/\"}, "
		"{\"name\": \"anon\", \"url\": \"http://127.0.0.1:5001\", \"prefix\": \"anon/\", \"freshness\": \"90s\"}]}";
	CHECK_EQ_INT(load_env(json, &cur), 0);
	config_describe_upstreams(&cur, &out);
	CHECK_STR(out.buf,
		  "upstreams.hub.url: https://registry-1.docker.io\nupstreams.hub.prefix: \"hub/\"\n"
		  "upstreams.hub.default: true\nupstreams.hub.allow_push: false\nupstreams.hub.username: me\n"
		  "upstreams.hub.password: (from file hub.pw)\nupstreams.hub.ca_file: (the system's)\n"
		  "upstreams.hub.freshness: 5m\nupstreams.hub.ttl: 30d\nupstreams.hub.max_size: 1024 bytes\n"
		  "upstreams.hub.sync: 1 rule\n"
		  "upstreams.my-quay.url: https://quay.io\nupstreams.my-quay.prefix: \"quay/\"\n"
		  "upstreams.my-quay.default: false\nupstreams.my-quay.allow_push: false\n"
		  "upstreams.my-quay.token: (from environment BERTH_UPSTREAM_MY_QUAY_TOKEN)\n"
		  "upstreams.my-quay.ca_file: (the system's)\nupstreams.my-quay.freshness: 5m\n"
		  "upstreams.my-quay.ttl: (none)\nupstreams.my-quay.max_size: (no cap)\nupstreams.my-quay.sync: 0 rules\n"
		  "upstreams.anon.url: http://127.0.0.1:5001\nupstreams.anon.prefix: \"anon/\"\n"
		  "upstreams.anon.default: false\nupstreams.anon.allow_push: false\nupstreams.anon.token: (not set: anonymous)\n"
		  "upstreams.anon.ca_file: (the system's)\nupstreams.anon.freshness: 90s\nupstreams.anon.ttl: (none)\n"
		  "upstreams.anon.max_size: (no cap)\nupstreams.anon.sync: 0 rules\n");
	CHECK(!strstr(out.buf, HUB_PW) && !strstr(out.buf, QUAY_TOKEN));

	/* reload: the same settings change nothing; any change (a rotated secret too) keeps the running ones */
	CHECK_EQ_INT(load_env(json, &next), 0);
	config_keep_upstreams(&next, &cur, &changed);
	CHECK_EQ_INT(changed.len, 0);
	config_release(&next);
	secret_file("hub.pw", HUB_PW "-rotated", 0600);
	CHECK_EQ_INT(load_env(json, &next), 0);
	config_keep_upstreams(&next, &cur, &changed);
	CHECK_STR(changed.buf, "upstreams\n");
	CHECK_STR(next.upstreams[0].password.value, HUB_PW);
	CHECK_EQ_INT(next.n_upstreams, 3);
	config_release(&next);
	buf_reset(&changed);
	CHECK_EQ_INT(load_env("{}", &next), 0);
	config_keep_upstreams(&next, &cur, &changed);
	CHECK_STR(changed.buf, "upstreams\n");
	CHECK_EQ_INT(next.n_upstreams, 3);
	CHECK_STR(next.upstreams[2].prefix, "anon/");
	CHECK_STR(next.upstreams[0].sync[0].repositories.v[0], "a");
	buf_reset(&out);
	config_describe_upstreams(&next, &out);
	CHECK(strstr(out.buf, "upstreams.hub.sync: 1 rule\n") != NULL);
	config_release(&next);
	config_release(&cur);
	buf_release(&out);
	buf_release(&changed);
	unset_upstream_env();
}

static void test_size_parse(void)
{
	unsigned long long n = 0;
	const char *why;
	CHECK(config_size_parse("0", &n, &why) == 0 && n == 0);
	CHECK(config_size_parse("12B", &n, &why) == 0 && n == 12);
	CHECK(config_size_parse("3KB", &n, &why) == 0 && n == 3000);
	CHECK(config_size_parse("3KiB", &n, &why) == 0 && n == 3072);
	CHECK(config_size_parse("2TB", &n, &why) == 0 && n == 2000000000000ULL);
	CHECK_EQ_INT(config_size_parse("", &n, &why), -1);
	CHECK_EQ_INT(config_size_parse("GiB", &n, &why), -1);
	CHECK_EQ_INT(config_size_parse("1 GiB", &n, &why), -1);
	CHECK_EQ_INT(config_size_parse("-1", &n, &why), -1);
	CHECK_EQ_INT(config_size_parse("99999999999999999999999", &n, &why), -1);
	CHECK_EQ_INT(config_upstream_name_check("a-1", &why), 0);
	CHECK_EQ_INT(config_upstream_name_check("-a", &why), -1);
	CHECK_EQ_INT(config_upstream_name_check("a_b", &why), -1);
	CHECK_EQ_INT(config_upstream_name_check("a23456789012345678901234567890123", &why), -1);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/berth-test-config-upstreams-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir) || chdir(dir)) {
		perror(dir);
		return 1;
	}
	snprintf(file, sizeof(file), "%s/config.json", dir);
	test_good();
	test_bad();
	test_env();
	test_describe_and_reload();
	test_size_parse();
	if (chdir("/"))
		perror("/");
	t_rmtree(dir);
	return t_done();
}
