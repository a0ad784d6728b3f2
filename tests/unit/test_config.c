/* Unit tests for config/: defaults, the JSON file (good and bad), value checkers, environment overrides. */
#include <argon2.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "t.h"

static char dir[4096];
static char file[sizeof(dir) + 32];
static char msg[2048];

static const char *env_names[] = {
	"BERTH_CONFIG", "BERTH_LISTEN", "BERTH_ROOT", "BERTH_THREADS", "BERTH_LOG_LEVEL",
	"BERTH_EXTERNAL_URL", "BERTH_TLS_CERT", "BERTH_TLS_KEY",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD",
};

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
		unsetenv(env_names[i]);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/*
 * Loads json over the defaults into *c (released by the caller). Returns
 * the rc; msg gets the error with the file name replaced by "F", so
 * expected messages do not depend on the scratch directory.
 */
static int load(const char *json, struct config *c)
{
	struct buf err = BUF_INIT;
	size_t flen = strlen(file);
	int rc;
	write_file(file, json);
	config_init_defaults(c);
	rc = config_load_file(c, file, &err);
	if (!strncmp(err.buf, file, flen))
		snprintf(msg, sizeof(msg), "F%s", err.buf + flen);
	else
		snprintf(msg, sizeof(msg), "%s", err.buf);
	buf_release(&err);
	return rc;
}

/* Expects json to fail with exactly want (after "F"). */
static void bad(const char *json, const char *want)
{
	struct config c;
	int rc = load(json, &c);
	CHECK_EQ_INT(rc, E_CONFIG);
	if (strcmp(msg, want))
		fprintf(stderr, "for %s\n  got  %s\n  want %s\n", json, msg, want);
	CHECK_STR(msg, want);
	config_release(&c);
}

/* Expects json to fail with a message starting with prefix. */
static void bad_prefix(const char *json, const char *prefix)
{
	struct config c;
	int rc = load(json, &c);
	CHECK_EQ_INT(rc, E_CONFIG);
	if (strncmp(msg, prefix, strlen(prefix)))
		fprintf(stderr, "for %s\n  got  %s\n  want %s...\n", json, msg, prefix);
	CHECK(!strncmp(msg, prefix, strlen(prefix)));
	config_release(&c);
}

static void good(const char *json)
{
	struct config c;
	int rc = load(json, &c);
	if (rc)
		fprintf(stderr, "for %s\n  got %s\n", json, msg);
	CHECK_EQ_INT(rc, 0);
	config_release(&c);
}

#define HASH "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static void test_defaults(void)
{
	struct config c;
	struct buf b = BUF_INIT, err = BUF_INIT;
	clear_env();
	CHECK_EQ_INT(config_load(&c, NULL, &err), 0);
	CHECK_STR(c.listen, CONFIG_DEFAULT_LISTEN);
	CHECK_STR(c.root, CONFIG_DEFAULT_ROOT);
	CHECK(c.path == NULL);
	CHECK(c.external_url == NULL);
	CHECK(c.tls_cert == NULL && c.tls_key == NULL);
	CHECK_EQ_INT(c.threads, 0);
	CHECK_STR(c.token_service, "berth");
	CHECK_STR(c.token_issuer, "berth");
	CHECK_EQ_INT(c.token_ttl_s, 300);
	CHECK(c.token_key == NULL);
	CHECK_EQ_INT(c.n_users + c.n_groups + c.n_rules + c.n_trusted_proxies, 0);
	CHECK_EQ_INT(c.manifest_max, 4194304);
	CHECK_EQ_INT(c.page_max, 1000);
	CHECK_EQ_INT(c.max_connections, 1024);
	CHECK_EQ_INT(c.idle_timeout_s, 60);
	CHECK_EQ_INT(c.max_connections_per_client, 64);
	CHECK_EQ_INT(c.reuse_port, 0);
	CHECK_EQ_INT(c.login_concurrency, 2);
	CHECK_EQ_INT(c.login_failures_per_minute, 10);
	CHECK_EQ_INT(c.delete_enabled, 1);
	CHECK_EQ_INT(c.log_level, LOG_INFO);
	config_external_url(&c, &b);
	CHECK_STR(b.buf, "http://127.0.0.1:5000");
	buf_reset(&b);
	config_token_key(&c, &b);
	CHECK_STR(b.buf, "./berth-data/keys/token.pem");
	buf_reset(&b);
	config_warnings(&c, &b);
	CHECK(strstr(b.buf, "no rules") != NULL);
	config_release(&c);
	config_release(&c); /* idempotent */
	buf_release(&b);
	buf_release(&err);
}

static const char full[] =
	"{\n"
	"  \"_comment\": \"every key\",\n"
	"  \"listen\": \"0.0.0.0:5443\",\n"
	"  \"external_url\": \"https://registry.example.com/\",\n"
	"  \"root\": \"/srv/berth\",\n"
	"  \"threads\": 8,\n"
	"  \"tls\": {\"cert\": \"/etc/berth/tls/cert.pem\", \"key\": \"/etc/berth/tls/key.pem\"},\n"
	"  \"trusted_proxies\": [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\"],\n"
	"  \"token\": {\"service\": \"reg\", \"issuer\": \"reg-issuer\", \"ttl\": \"10m\", \"key\": \"/k.pem\"},\n"
	"  \"users\": {\n"
	"    \"_comment\": \"users by name\",\n"
	"    \"alice\": {\"password\": \"" HASH "\", \"groups\": [\"dev\"]},\n"
	"    \"bob\": {\"password\": \"" HASH "\", \"_comment\": \"ops\"},\n"
	"    \"ci\": {}\n"
	"  },\n"
	"  \"groups\": {\"ops\": [\"bob\"], \"empty\": []},\n"
	"  \"access\": [\n"
	"    {\"repositories\": [\"team-a/*\", \"team-a/**\"], \"users\": [\"alice\"], \"groups\": [\"dev\"],\n"
	"     \"anonymous\": false, \"actions\": [\"pull\", \"push\", \"delete\"]},\n"
	"    {\"_comment\": \"public\", \"repositories\": [\"library/**\"], \"anonymous\": true, \"actions\": [\"pull\"]},\n"
	"    {\"repositories\": [\"**\"], \"groups\": [\"ops\"], \"actions\": [\"*\"]}\n"
	"  ],\n"
	"  \"limits\": {\"manifest_max\": 8388608, \"page_max\": 500, \"max_connections\": 64,\n"
	"             \"idle_timeout\": \"2m\", \"login_concurrency\": 4, \"login_failures_per_minute\": 0},\n"
	"  \"storage\": {\"delete\": false},\n"
	"  \"log\": {\"level\": \"debug\"}\n"
	"}\n";

static void test_full(void)
{
	struct config c;
	struct buf b = BUF_INIT;
	CHECK_EQ_INT(load(full, &c), 0);
	CHECK_STR(c.path, file);
	CHECK_STR(c.listen, "0.0.0.0:5443");
	CHECK_STR(c.external_url, "https://registry.example.com/");
	CHECK_STR(c.root, "/srv/berth");
	CHECK_EQ_INT(c.threads, 8);
	CHECK_STR(c.tls_cert, "/etc/berth/tls/cert.pem");
	CHECK_STR(c.tls_key, "/etc/berth/tls/key.pem");
	CHECK_EQ_INT(c.n_trusted_proxies, 3);
	CHECK_EQ_INT(c.trusted_proxies[0].family, AF_INET);
	CHECK_EQ_INT(c.trusted_proxies[0].prefix, 32);
	CHECK_EQ_INT(c.trusted_proxies[1].prefix, 8);
	CHECK_EQ_INT(c.trusted_proxies[2].family, AF_INET6);
	CHECK_STR(c.token_service, "reg");
	CHECK_STR(c.token_issuer, "reg-issuer");
	CHECK_EQ_INT(c.token_ttl_s, 600);
	CHECK_STR(c.token_key, "/k.pem");
	CHECK_EQ_INT(c.n_users, 3);
	CHECK_STR(c.users[0].name, "alice");
	CHECK_STR(c.users[0].password, HASH);
	CHECK_EQ_INT(c.users[0].groups.n, 1);
	CHECK_STR(c.users[0].groups.v[0], "dev");
	CHECK_STR(c.users[1].name, "bob");
	CHECK_STR(c.users[2].name, "ci");
	CHECK(c.users[2].password == NULL);
	CHECK_EQ_INT(c.n_groups, 2);
	CHECK_STR(c.groups[0].name, "ops");
	CHECK_STR(c.groups[0].members.v[0], "bob");
	CHECK_EQ_INT(c.groups[1].members.n, 0);
	CHECK_EQ_INT(c.n_rules, 3);
	CHECK_EQ_INT(c.rules[0].repositories.n, 2);
	CHECK_STR(c.rules[0].repositories.v[1], "team-a/**");
	CHECK_EQ_INT(c.rules[0].actions, ACTION_PULL | ACTION_PUSH | ACTION_DELETE);
	CHECK_EQ_INT(c.rules[0].anonymous, 0);
	CHECK_EQ_INT(c.rules[1].anonymous, 1);
	CHECK_EQ_INT(c.rules[1].actions, ACTION_PULL);
	CHECK_EQ_INT(c.rules[2].actions, ACTION_ALL);
	CHECK_EQ_INT(c.manifest_max, 8388608);
	CHECK_EQ_INT(c.page_max, 500);
	CHECK_EQ_INT(c.max_connections, 64);
	CHECK_EQ_INT(c.idle_timeout_s, 120);
	CHECK_EQ_INT(c.login_concurrency, 4);
	CHECK_EQ_INT(c.login_failures_per_minute, 0);
	CHECK_EQ_INT(c.delete_enabled, 0);
	CHECK_EQ_INT(c.log_level, LOG_DEBUG);
	config_external_url(&c, &b);
	CHECK_STR(b.buf, "https://registry.example.com");
	buf_reset(&b);
	config_token_key(&c, &b);
	CHECK_STR(b.buf, "/k.pem");
	buf_reset(&b);
	config_warnings(&c, &b);
	CHECK_STR(b.buf, "");
	config_release(&c);
	buf_release(&b);
}

static void test_partial_and_derived(void)
{
	struct config c;
	struct buf b = BUF_INIT;
	/* Keys not given keep their defaults. */
	CHECK_EQ_INT(load("{\"limits\": {\"page_max\": 50}, \"root\": \"/data\"}", &c), 0);
	CHECK_EQ_INT(c.page_max, 50);
	CHECK_EQ_INT(c.manifest_max, 4194304);
	CHECK_STR(c.listen, CONFIG_DEFAULT_LISTEN);
	config_token_key(&c, &b);
	CHECK_STR(b.buf, "/data/keys/token.pem");
	config_release(&c);
	buf_reset(&b);

	CHECK_EQ_INT(load("{\"listen\": \"0.0.0.0:5000\", \"tls\": {\"cert\": \"c\", \"key\": \"k\"}}", &c), 0);
	config_external_url(&c, &b);
	CHECK_STR(b.buf, "https://localhost:5000");
	config_release(&c);
	buf_reset(&b);

	CHECK_EQ_INT(load("{\"listen\": \"[::1]:5001\"}", &c), 0);
	config_external_url(&c, &b);
	CHECK_STR(b.buf, "http://[::1]:5001");
	config_release(&c);
	buf_reset(&b);

	CHECK_EQ_INT(load("{\"listen\": \"reg.lan:80\"}", &c), 0);
	config_external_url(&c, &b);
	CHECK_STR(b.buf, "http://reg.lan:80");
	config_release(&c);
	buf_reset(&b);

	good("{}");
	good("{\"_comment\": [\"any\", 1, {}]}");
	good("{\"users\": {}, \"groups\": {}, \"access\": [], \"trusted_proxies\": []}");
	good("{\"token\": {\"ttl\": \"30s\"}, \"limits\": {\"idle_timeout\": \"1s\"}}");
	good("{\"token\": {\"ttl\": \"24h\"}}");
	good("{\"token\": {\"ttl\": \"1d\"}}");
	/* A group exists when a user lists it, even if "groups" does not define it. */
	good("{\"users\": {\"a\": {\"groups\": [\"g\"]}}, "
	     "\"access\": [{\"repositories\": [\"x\"], \"groups\": [\"g\"], \"actions\": [\"pull\"]}]}");
	/* References may come before the definitions in the file. */
	good("{\"access\": [{\"repositories\": [\"x\"], \"users\": [\"a\"], \"actions\": [\"pull\"]}], "
	     "\"groups\": {\"g\": [\"a\"]}, \"users\": {\"a\": {}}}");

	/* A second file's lists replace the first's. */
	CHECK_EQ_INT(load("{\"users\": {\"a\": {}, \"b\": {}}}", &c), 0);
	{
		struct buf err = BUF_INIT;
		write_file(file, "{\"users\": {\"c\": {}}}");
		CHECK_EQ_INT(config_load_file(&c, file, &err), 0);
		CHECK_EQ_INT(c.n_users, 1);
		CHECK_STR(c.users[0].name, "c");
		buf_release(&err);
	}
	config_release(&c);
	buf_release(&b);
}

static void test_syntax(void)
{
	struct config c;
	bad_prefix("{\"listen\": }", "F:1:12: ");
	bad_prefix("{\n\"root\": \"a\",\n\"root\": \"b\"\n}", "F:3:");
	CHECK(strstr(msg, "duplicate") != NULL);
	bad("[1, 2]", "F: expected a JSON object at the top level");
	bad_prefix("\"x\"", "F:1:3: "); /* jansson wants an object or array at the top */

	struct buf err = BUF_INIT;
	config_init_defaults(&c);
	CHECK_EQ_INT(config_load_file(&c, "/nonexistent/berth.json", &err), E_CONFIG);
	CHECK(strstr(err.buf, "/nonexistent/berth.json") != NULL);
	CHECK(strstr(err.buf, "No such file") != NULL);
	config_release(&c);
	buf_release(&err);
}

static void test_bad_keys(void)
{
	/* unknown keys, at every level */
	bad("{\"lisen\": \"x\"}",
	    "F: \"lisen\": unknown key (expected one of: listen, external_url, root, threads, reuse_port, tls, "
	    "trusted_proxies, token, users, groups, access, limits, storage, database, gc, immutable_tags, metrics, log)");
	bad("{\"limits\": {\"page_maxx\": 1}}",
	    "F: \"limits.page_maxx\": unknown key (expected one of: manifest_max, page_max, max_connections, "
	    "idle_timeout, max_connections_per_client, login_concurrency, login_failures_per_minute)");
	bad("{\"tls\": {\"cert\": \"a\", \"key\": \"b\", \"ca\": \"c\"}}",
	    "F: \"tls.ca\": unknown key (expected one of: cert, key, priorities)");
	bad("{\"users\": {\"alice\": {\"pass\": \"x\"}}}",
	    "F: \"users.alice.pass\": unknown key (expected one of: password, groups)");
	bad("{\"access\": [{\"repos\": [\"a\"]}]}",
	    "F: \"access[0].repos\": unknown key (expected one of: repositories, users, groups, anonymous, actions)");
	bad("{\"_Comment\": 1}",
	    "F: \"_Comment\": unknown key (expected one of: listen, external_url, root, threads, reuse_port, tls, "
	    "trusted_proxies, token, users, groups, access, limits, storage, database, gc, immutable_tags, metrics, log)");

	/* wrong types */
	bad("{\"token\": {\"ttl\": 300}}", "F: \"token.ttl\": expected a duration string like \"5m\"");
	bad("{\"threads\": \"4\"}", "F: \"threads\": expected an integer from 0 to 1024");
	bad("{\"threads\": 1.5}", "F: \"threads\": expected an integer from 0 to 1024");
	bad("{\"listen\": 5000}", "F: \"listen\": expected a non-empty string");
	bad("{\"root\": \"\"}", "F: \"root\": expected a non-empty string");
	bad("{\"storage\": {\"delete\": \"yes\"}}", "F: \"storage.delete\": expected true or false");
	bad("{\"storage\": true}", "F: \"storage\": expected an object");
	bad("{\"log\": {\"level\": 3}}",
	    "F: \"log.level\": expected one of \"error\", \"warn\", \"info\", \"debug\"");
	bad("{\"tls\": \"on\"}", "F: \"tls\": expected an object");
	bad("{\"trusted_proxies\": \"10.0.0.0/8\"}",
	    "F: \"trusted_proxies\": expected an array of IP addresses or CIDR blocks");
	bad("{\"trusted_proxies\": [\"10.0.0.0/8\", 7]}", "F: \"trusted_proxies[1]\": expected a string");
	bad("{\"users\": []}", "F: \"users\": expected an object of users by name");
	bad("{\"users\": {\"a\": \"pw\"}}",
	    "F: \"users.a\": expected an object like {\"password\": \"$argon2id$...\", \"groups\": [...]}");
	bad("{\"users\": {\"a\": {\"password\": 1}}}", "F: \"users.a.password\": expected a string");
	bad("{\"users\": {\"a\": {\"groups\": \"dev\"}}}", "F: \"users.a.groups\": expected an array of group names");
	bad("{\"groups\": {\"g\": \"a\"}}", "F: \"groups.g\": expected an array of user names");
	bad("{\"access\": {}}", "F: \"access\": expected an array of rules");
	bad("{\"access\": [1]}", "F: \"access[0]\": expected an object");
	bad("{\"access\": [{\"repositories\": [\"a\"], \"anonymous\": 1, \"actions\": [\"pull\"]}]}",
	    "F: \"access[0].anonymous\": expected true or false");
	bad("{\"access\": [{\"repositories\": \"a\"}]}",
	    "F: \"access[0].repositories\": expected an array of repository globs");
}

static void test_bad_values(void)
{
	bad("{\"listen\": \"nope\"}",
	    "F: \"listen\": expected host:port, like \"0.0.0.0:5000\" or \"[::]:5000\"");
	bad("{\"listen\": \"a:70000\"}",
	    "F: \"listen\": expected host:port, like \"0.0.0.0:5000\" or \"[::]:5000\"");
	bad_prefix("{\"external_url\": \"ftp://x\"}", "F: \"external_url\": expected an http:// or https:// URL");
	bad_prefix("{\"external_url\": \"https://x/?a=b\"}", "F: \"external_url\": expected an http://");
	bad("{\"threads\": 2000}", "F: \"threads\": 2000 is out of range (0 to 1024)");
	bad("{\"threads\": -1}", "F: \"threads\": -1 is out of range (0 to 1024)");
	bad("{\"tls\": {\"cert\": \"/a\"}}", "F: \"tls\": \"cert\" and \"key\" must be given together");
	bad("{\"trusted_proxies\": [\"10.0.0.1/8\"]}",
	    "F: \"trusted_proxies[0]\": \"10.0.0.1/8\": CIDR block has host bits set "
	    "(write the network address, like \"10.0.0.0/8\")");
	bad("{\"trusted_proxies\": [\"300.1.1.1\"]}",
	    "F: \"trusted_proxies[0]\": \"300.1.1.1\": expected an IPv4 or IPv6 address or CIDR block like \"10.0.0.0/8\"");
	bad("{\"trusted_proxies\": [\"::/129\"]}",
	    "F: \"trusted_proxies[0]\": \"::/129\": CIDR prefix length out of range");
	bad("{\"token\": {\"ttl\": \"10s\"}}", "F: \"token.ttl\": \"10s\" is out of range (30s to 24h)");
	bad("{\"token\": {\"ttl\": \"2d\"}}", "F: \"token.ttl\": \"2d\" is out of range (30s to 24h)");
	bad("{\"token\": {\"ttl\": \"5 m\"}}",
	    "F: \"token.ttl\": expected a duration string like \"5m\" (a number and one of s, m, h, d)");
	bad("{\"token\": {\"ttl\": \"5min\"}}",
	    "F: \"token.ttl\": expected a duration string like \"5m\" (a number and one of s, m, h, d)");
	bad("{\"token\": {\"service\": \"a\\\"b\"}}",
	    "F: \"token.service\": expected printable ASCII without spaces, quotes or backslashes");
	bad("{\"limits\": {\"idle_timeout\": \"0s\"}}", "F: \"limits.idle_timeout\": \"0s\" is out of range (1s to 24h)");
	bad("{\"limits\": {\"manifest_max\": 1024}}",
	    "F: \"limits.manifest_max\": 1024 is out of range (4194304 to 268435456)");
	bad("{\"limits\": {\"page_max\": 0}}", "F: \"limits.page_max\": 0 is out of range (1 to 100000)");
	bad("{\"limits\": {\"login_concurrency\": 0}}",
	    "F: \"limits.login_concurrency\": 0 is out of range (1 to 1024)");
	bad("{\"log\": {\"level\": \"verbose\"}}",
	    "F: \"log.level\": expected one of \"error\", \"warn\", \"info\", \"debug\"");

	/* users and groups */
	bad("{\"users\": {\"Alice\": {}}}",
	    "F: \"users.Alice\": bad user name: expected a name of lowercase letters, digits, '.', '_' and '-' "
	    "(starting with a letter or digit, at most 64 characters)");
	bad_prefix("{\"users\": {\"-a\": {}}}", "F: \"users.-a\": bad user name: ");
	bad_prefix("{\"users\": {\"a\": {\"groups\": [\"Dev\"]}}}", "F: \"users.a.groups[0]\": \"Dev\": expected a name");
	bad_prefix("{\"groups\": {\"a b\": []}}", "F: \"groups.a b\": bad group name: ");
	bad("{\"users\": {\"a\": {\"password\": \"secret\"}}}",
	    "F: \"users.a.password\": expected an argon2id hash like \"$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>\" "
	    "(berth passwd prints one)");
	bad_prefix("{\"users\": {\"a\": {\"password\": \"$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAA\"}}}",
		   "F: \"users.a.password\": expected an argon2id hash");
	bad("{\"users\": {\"a\": {\"password\": \"$argon2id$v=19$m=8,t=1,p=1$c2FsdA$AAAAAAAAAAA\"}}}",
	    "F: \"users.a.password\": argon2id hash: salt or hash too short");
	bad("{\"users\": {\"a\": {\"password\": \"$argon2id$v=19$m=8,t=1,p=2$c2FsdHNhbHQ$AAAAAAAAAAA\"}}}",
	    "F: \"users.a.password\": argon2id hash: invalid cost parameters");
	bad("{\"users\": {\"a\": {\"password\": \"$argon2id$v=19$m=9999999,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAA\"}}}",
	    "F: \"users.a.password\": argon2id hash: cost parameters too high (at most m=4194304, t=64, p=64)");
	bad("{\"groups\": {\"ops\": [\"bob\"]}}", "F: \"groups.ops[0]\": unknown user \"bob\" (not in \"users\")");

	/* access rules */
	bad("{\"access\": [{\"repositories\": [\"a\"], \"actions\": [\"pull\"]}]}",
	    "F: \"access[0]\": a rule must name \"users\", \"groups\" or \"anonymous\": true");
	bad("{\"access\": [{\"repositories\": [\"a\"], \"anonymous\": false, \"users\": [], \"actions\": [\"pull\"]}]}",
	    "F: \"access[0]\": a rule must name \"users\", \"groups\" or \"anonymous\": true");
	bad("{\"access\": [{\"anonymous\": true, \"actions\": [\"pull\"]}]}",
	    "F: \"access[0]\": a rule needs \"repositories\"");
	bad("{\"access\": [{\"repositories\": [], \"anonymous\": true, \"actions\": [\"pull\"]}]}",
	    "F: \"access[0].repositories\": expected at least one repository glob");
	bad("{\"access\": [{\"repositories\": [\"a\"], \"anonymous\": true}]}",
	    "F: \"access[0]\": a rule needs \"actions\"");
	bad("{\"access\": [{\"repositories\": [\"a\"], \"anonymous\": true, \"actions\": []}]}",
	    "F: \"access[0].actions\": expected a non-empty array of actions (\"pull\", \"push\", \"delete\" or \"*\")");
	bad("{\"access\": [{\"repositories\": [\"a\"], \"anonymous\": true, \"actions\": [\"pull\", \"pul\"]}]}",
	    "F: \"access[0].actions[1]\": unknown action \"pul\" (expected \"pull\", \"push\", \"delete\" or \"*\")");
	bad("{\"access\": [{\"repositories\": [\"a\"], \"anonymous\": true, \"actions\": [1]}]}",
	    "F: \"access[0].actions[0]\": expected \"pull\", \"push\", \"delete\" or \"*\"");
	bad_prefix("{\"access\": [{\"repositories\": [\"ok\", \"Team/*\"], \"anonymous\": true, \"actions\": [\"pull\"]}]}",
		   "F: \"access[0].repositories[1]\": \"Team/*\": expected a repository glob");
	bad("{\"access\": [{\"repositories\": [\"a**\"], \"anonymous\": true, \"actions\": [\"pull\"]}]}",
	    "F: \"access[0].repositories[0]\": \"a**\": '**' must be a whole path component, like \"team/**\"");
	bad("{\"users\": {\"alice\": {}}, \"access\": [{\"repositories\": [\"a\"], \"users\": [\"alice\", \"bob\"], "
	    "\"actions\": [\"pull\"]}]}",
	    "F: \"access[0].users[1]\": unknown user \"bob\" (not in \"users\")");
	bad("{\"access\": [{\"repositories\": [\"a\"], \"anonymous\": true, \"actions\": [\"pull\"]}, "
	    "{\"repositories\": [\"a\"], \"groups\": [\"dev\"], \"actions\": [\"pull\"]}]}",
	    "F: \"access[1].groups[0]\": unknown group \"dev\" (not in \"groups\" nor in any user's \"groups\")");
}

static void test_checkers(void)
{
	unsigned s = 0;
	const char *why = NULL;
	struct config_net n;
	unsigned char a4[4], a6[16];

	CHECK_EQ_INT(config_duration_parse("30s", &s, &why), 0);
	CHECK_EQ_INT(s, 30);
	CHECK_EQ_INT(config_duration_parse("5m", &s, &why), 0);
	CHECK_EQ_INT(s, 300);
	CHECK_EQ_INT(config_duration_parse("1h", &s, &why), 0);
	CHECK_EQ_INT(s, 3600);
	CHECK_EQ_INT(config_duration_parse("90d", &s, &why), 0);
	CHECK_EQ_INT(s, 7776000);
	CHECK_EQ_INT(config_duration_parse("0s", &s, &why), 0);
	CHECK_EQ_INT(s, 0);
	const char *bad_durations[] = { "", "s", "5", "-5m", "+5m", "5M", "5ms", "1h30m", " 5m", "5m ",
					"99999999999s", "50000d", "1.5h" };
	for (size_t i = 0; i < sizeof(bad_durations) / sizeof(bad_durations[0]); i++) {
		why = NULL;
		CHECK_EQ_INT(config_duration_parse(bad_durations[i], &s, &why), -1);
		CHECK(why != NULL);
	}

	CHECK_EQ_INT(config_net_parse("192.168.1.0/24", &n, &why), 0);
	inet_pton(AF_INET, "192.168.1.77", a4);
	CHECK(config_net_contains(&n, AF_INET, a4));
	inet_pton(AF_INET, "192.168.2.1", a4);
	CHECK(!config_net_contains(&n, AF_INET, a4));
	CHECK_EQ_INT(config_net_parse("10.1.0.0/17", &n, &why), 0);
	inet_pton(AF_INET, "10.1.127.255", a4);
	CHECK(config_net_contains(&n, AF_INET, a4));
	inet_pton(AF_INET, "10.1.128.0", a4);
	CHECK(!config_net_contains(&n, AF_INET, a4));
	CHECK_EQ_INT(config_net_parse("0.0.0.0/0", &n, &why), 0);
	CHECK(config_net_contains(&n, AF_INET, a4));
	inet_pton(AF_INET6, "::1", a6);
	CHECK(!config_net_contains(&n, AF_INET6, a6));
	CHECK_EQ_INT(config_net_parse("::1", &n, &why), 0);
	CHECK_EQ_INT(n.prefix, 128);
	CHECK(config_net_contains(&n, AF_INET6, a6));
	CHECK_EQ_INT(config_net_parse("2001:db8::/32", &n, &why), 0);
	inet_pton(AF_INET6, "2001:db8:ffff::1", a6);
	CHECK(config_net_contains(&n, AF_INET6, a6));
	const char *bad_nets[] = { "", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08", "10.0.0.0/8/8",
				   "10.0.0", "fe80::1%eth0", "2001:db8::1/32", "10.0.0.0/x", "localhost" };
	for (size_t i = 0; i < sizeof(bad_nets) / sizeof(bad_nets[0]); i++)
		CHECK_EQ_INT(config_net_parse(bad_nets[i], &n, &why), -1);

	const char *good_names[] = { "a", "alice", "0", "ci-bot", "a.b_c-d",
				     "a234567890123456789012345678901234567890123456789012345678901234" };
	for (size_t i = 0; i < sizeof(good_names) / sizeof(good_names[0]); i++)
		CHECK_EQ_INT(config_name_check(good_names[i], &why), 0);
	const char *bad_names[] = { "", "Alice", "-a", ".a", "_a", "a b", "a/b", "a@b", "é",
				    "a2345678901234567890123456789012345678901234567890123456789012345" };
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		CHECK_EQ_INT(config_name_check(bad_names[i], &why), -1);

	const char *good_globs[] = { "a", "team-a/*", "team-a/**", "**", "*", "a/**/b", "**/cache", "*-cache",
				     "lib*/x", "a.b/c_d/e__f/g--h", "*.*" };
	for (size_t i = 0; i < sizeof(good_globs) / sizeof(good_globs[0]); i++) {
		int rc = config_glob_check(good_globs[i], &why);
		if (rc)
			fprintf(stderr, "glob %s: %s\n", good_globs[i], why);
		CHECK_EQ_INT(rc, 0);
	}
	const char *bad_globs[] = { "", "/a", "a/", "a//b", "A", "a**", "**a", "***", "a/b**/c", "a b", "a?",
				    "-a", "a..b", "a/../b", "a%2fb" };
	for (size_t i = 0; i < sizeof(bad_globs) / sizeof(bad_globs[0]); i++) {
		int rc = config_glob_check(bad_globs[i], &why);
		if (!rc)
			fprintf(stderr, "glob %s accepted\n", bad_globs[i]);
		CHECK_EQ_INT(rc, -1);
	}

	const char *good_urls[] = { "http://a", "https://reg.example.com:5000", "https://[::1]:5000/",
				    "https://reg/prefix/path" };
	for (size_t i = 0; i < sizeof(good_urls) / sizeof(good_urls[0]); i++)
		CHECK_EQ_INT(config_url_check(good_urls[i], &why), 0);
	const char *bad_urls[] = { "", "reg:5000", "ftp://a", "https://", "https://:5000", "https://a:0",
				   "https://a:99999", "https://a:x", "https://u@a", "https://a/\"", "https://a b",
				   "https://a#f", "https://[::1" };
	for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++)
		CHECK_EQ_INT(config_url_check(bad_urls[i], &why), -1);
}

/*
 * config_phc_check must accept only what argon2id_verify can decode: each
 * string here goes through both (with costs kept tiny so libargon2 runs fast).
 */
static void test_phc_vs_libargon2(void)
{
	static const struct {
		const char *s;
		int ok;
	} cases[] = {
		{ HASH, 1 },
		{ "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAA", 1 },      /* 5-byte hash */
		{ "$argon2id$v=19$m=16,t=2,p=2$c2FsdHNhbHQ$AAAAAAA", 1 },
		{ "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAB", 0 },      /* trailing bits set */
		{ "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHR$AAAAAAA", 0 },      /* salt trailing bits */
		{ "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAA", 0 },        /* length 1 mod 4 */
		{ "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAA=", 0 },     /* padding */
		{ "$argon2id$v=19$m=08,t=1,p=1$c2FsdHNhbHQ$AAAAAAA", 0 },     /* leading zero */
		{ "$argon2id$v=19$m=8,t=0,p=1$c2FsdHNhbHQ$AAAAAAA", 0 },
		{ "$argon2id$v=19$m=8,t=1,p=0$c2FsdHNhbHQ$AAAAAAA", 0 },
		{ "$argon2id$v=19$m=7,t=1,p=1$c2FsdHNhbHQ$AAAAAAA", 0 },
		{ "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$AAAAAAA", 0 },           /* 4-byte salt */
		{ "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAA", 0 },          /* 2-byte hash */
		{ "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAA$", 0 },
		{ "$argon2id$v=19$m=8,t=1$c2FsdHNhbHQ$AAAAAAA", 0 },
		{ "$argon2id$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAA", 0 },          /* no version: argon2 1.0 */
		{ "$argon2id$v=16$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAA", 0 },
		{ "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAA", 0 },
		{ "$argon2id$v=19$m=8,t=1,p=1,k=1$c2FsdHNhbHQ$AAAAAAA", 0 },
		{ "$argon2id$v=19$m=8,t=1,p=1$c2Fsd-NhbHQ$AAAAAAA", 0 },
		{ "$argon2id$v=19$m=8,t=1,p=1$$AAAAAAA", 0 },
		{ "$argon2id$v=19$m=4294967296,t=1,p=1$c2FsdHNhbHQ$AAAAAAA", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ours = config_phc_check(cases[i].s, NULL) == 0;
		int rc = argon2id_verify(cases[i].s, "pw", 2);
		int lib = rc == ARGON2_OK || rc == ARGON2_VERIFY_MISMATCH;
		if (ours != cases[i].ok || (ours && !lib))
			fprintf(stderr, "phc case %zu: ours %d, libargon2 %d (%s)\n", i, ours, rc, argon2_error_message(rc));
		CHECK_EQ_INT(ours, cases[i].ok);
		if (ours)
			CHECK(lib);
	}
}

static void test_env(void)
{
	struct config c;
	struct buf err = BUF_INIT;
	char cfgpath[sizeof(file) + 8];

	clear_env();
	snprintf(cfgpath, sizeof(cfgpath), "%s/env.json", dir);
	write_file(cfgpath, "{\"listen\": \"0.0.0.0:6000\", \"root\": \"/from-file\", \"threads\": 3, "
			    "\"log\": {\"level\": \"warn\"}, \"tls\": {\"cert\": \"/c\", \"key\": \"/k\"}}");
	setenv("BERTH_CONFIG", cfgpath, 1);
	CHECK_EQ_INT(config_load(&c, NULL, &err), 0);
	CHECK_STR(c.path, cfgpath);
	CHECK_STR(c.listen, "0.0.0.0:6000");
	CHECK_EQ_INT(c.threads, 3);
	config_release(&c);

	/* The environment wins over the file. */
	setenv("BERTH_LISTEN", "127.0.0.1:7000", 1);
	setenv("BERTH_ROOT", "/from-env", 1);
	setenv("BERTH_THREADS", "5", 1);
	setenv("BERTH_LOG_LEVEL", "error", 1);
	setenv("BERTH_EXTERNAL_URL", "https://env.example.com", 1);
	setenv("BERTH_TLS_CERT", "/env-c", 1);
	setenv("BERTH_TLS_KEY", "/env-k", 1);
	CHECK_EQ_INT(config_load(&c, NULL, &err), 0);
	CHECK_STR(c.listen, "127.0.0.1:7000");
	CHECK_STR(c.root, "/from-env");
	CHECK_EQ_INT(c.threads, 5);
	CHECK_EQ_INT(c.log_level, LOG_ERROR);
	CHECK_STR(c.external_url, "https://env.example.com");
	CHECK_STR(c.tls_cert, "/env-c");
	CHECK_STR(c.tls_key, "/env-k");
	config_release(&c);

	/* An explicit path beats BERTH_CONFIG. */
	write_file(file, "{\"root\": \"/explicit\"}");
	unsetenv("BERTH_ROOT");
	CHECK_EQ_INT(config_load(&c, file, &err), 0);
	CHECK_STR(c.root, "/explicit");
	CHECK_STR(c.path, file);
	config_release(&c);

	/* Empty values are ignored. */
	clear_env();
	setenv("BERTH_LISTEN", "", 1);
	setenv("BERTH_CONFIG", "", 1);
	CHECK_EQ_INT(config_load(&c, NULL, &err), 0);
	CHECK_STR(c.listen, CONFIG_DEFAULT_LISTEN);
	CHECK(c.path == NULL);
	config_release(&c);

	/* Bad values. */
	static const struct {
		const char *name, *value, *want;
	} bad_env[] = {
		{ "BERTH_THREADS", "many", "BERTH_THREADS: not a number of threads: \"many\"" },
		{ "BERTH_THREADS", "5000", "BERTH_THREADS: not a number of threads: \"5000\"" },
		{ "BERTH_LOG_LEVEL", "loud", "BERTH_LOG_LEVEL: unknown level \"loud\"" },
		{ "BERTH_LISTEN", "5000", "BERTH_LISTEN: expected host:port, not \"5000\"" },
		{ "BERTH_EXTERNAL_URL", "registry:5000",
		  "BERTH_EXTERNAL_URL: expected an http:// or https:// URL like \"https://registry.example.com\" "
		  "(no query, fragment, user or quotes)" },
		{ "BERTH_TLS_CERT", "/c", "tls: the certificate and the key must be set together (the key is missing)" },
		{ "BERTH_TLS_KEY", "/k",
		  "tls: the certificate and the key must be set together (the certificate is missing)" },
	};
	for (size_t i = 0; i < sizeof(bad_env) / sizeof(bad_env[0]); i++) {
		clear_env();
		setenv(bad_env[i].name, bad_env[i].value, 1);
		buf_reset(&err);
		CHECK_EQ_INT(config_load(&c, NULL, &err), E_CONFIG);
		CHECK_STR(err.buf, bad_env[i].want);
		config_release(&c);
	}

	/* A bad file named by BERTH_CONFIG fails config_load. */
	clear_env();
	write_file(cfgpath, "{\"threads\": \"x\"}");
	setenv("BERTH_CONFIG", cfgpath, 1);
	buf_reset(&err);
	CHECK_EQ_INT(config_load(&c, NULL, &err), E_CONFIG);
	CHECK(strstr(err.buf, "\"threads\": expected an integer") != NULL);
	config_release(&c);
	clear_env();
	buf_release(&err);
}

static void test_warnings(void)
{
	struct config c;
	struct buf b = BUF_INIT;
	CHECK_EQ_INT(load("{\"listen\": \"0.0.0.0:5000\", \"users\": {\"a\": {\"password\": \"" HASH "\"}},"
			  "\"access\": [{\"repositories\": [\"**\"], \"anonymous\": true, \"actions\": [\"*\"]}]}",
			  &c),
		     0);
	config_warnings(&c, &b);
	CHECK(strstr(b.buf, "access[0]: anonymous callers may push and delete\n") != NULL);
	CHECK(strstr(b.buf, "unencrypted") != NULL);
	config_release(&c);
	buf_release(&b);
}

/* Finds a file of the source tree from this file's compile-time path (tests run in the build dir). */
static void source_path(char *out, size_t len, const char *rel)
{
	const char *slash = strrchr(__FILE__, '/');
	snprintf(out, len, "%.*s/../../%s", slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".", rel);
}

static void test_examples_and_check(void)
{
	char path[4096];
	struct config c;
	struct buf err = BUF_INIT;
	const char *names[] = { "config/example.json", "config/minimal.json" };
	clear_env();
	for (size_t i = 0; i < 2; i++) {
		source_path(path, sizeof(path), names[i]);
		if (access(path, R_OK)) {
			fprintf(stderr, "cannot find %s (looked at %s)\n", names[i], path);
			CHECK(0);
			continue;
		}
		buf_reset(&err);
		config_init_defaults(&c);
		int rc = config_load_file(&c, path, &err);
		if (rc)
			fprintf(stderr, "%s\n", err.buf);
		CHECK_EQ_INT(rc, 0);
		config_release(&c);

		char *argv[] = { "check", "-c", path, NULL };
		CHECK_EQ_INT(config_check_main(3, argv), 0);
	}
	write_file(file, "{\"threads\": -4}");
	char *argv_bad[] = { "check", "--config", file, NULL };
	CHECK_EQ_INT(config_check_main(3, argv_bad), 1);
	char *argv_none[] = { "check", NULL };
	CHECK_EQ_INT(config_check_main(1, argv_none), 2);
	char *argv_junk[] = { "check", "-x", NULL };
	CHECK_EQ_INT(config_check_main(2, argv_junk), 2);
	setenv("BERTH_CONFIG", file, 1);
	CHECK_EQ_INT(config_check_main(1, argv_none), 1);
	clear_env();
	buf_release(&err);
}

/* ---- the cluster shape: database, storage.backend, storage.s3 ---- */

#define PG_SECRET "pg-Secret-0xC0FFEE"
#define S3_AK "AKIAEXAMPLEKEY0001"
#define S3_SK "s3-Secret-wJalrXUtnFEMI"
#define S3_WITH(ep, bucket, ak, extra)                                                                   \
	"{\"endpoint\": \"" ep "\", \"bucket\": \"" bucket "\", \"access_key_file\": \"" ak "\", "           \
	"\"secret_key_file\": \"s3.secret\"" extra "}"
#define S3_OBJ(extra) S3_WITH("https://s3.lan:9000", "berth", "s3.key", extra)
#define S3_CFG(extra) "{\"storage\": {\"backend\": \"s3\", \"s3\": " S3_OBJ(extra) "}}"
#define S3_CFG_WITH(ep, bucket, ak) "{\"storage\": {\"backend\": \"s3\", \"s3\": " S3_WITH(ep, bucket, ak, "") "}}"
#define PG_CFG(extra) "{\"database\": {\"url\": \"postgresql://berth@db.lan/berth\"" extra "}}"

static int cwd_fd = -1;

/* The cluster tests run inside the scratch directory, so that messages name credential files as "pg.pw". */
static void enter_dir(void)
{
	cwd_fd = open(".", O_RDONLY | O_DIRECTORY);
	if (cwd_fd < 0 || chdir(dir)) {
		perror(dir);
		exit(1);
	}
}

static void leave_dir(void)
{
	if (fchdir(cwd_fd)) {
		perror("fchdir");
		exit(1);
	}
	close(cwd_fd);
}

static void secret_file(const char *name, const char *content, mode_t mode)
{
	unlink(name);
	write_file(name, content);
	if (chmod(name, mode)) {
		perror(name);
		exit(1);
	}
}

/* The three credential files of the good configs. */
static void good_secrets(void)
{
	secret_file("pg.pw", PG_SECRET "\n", 0600);
	secret_file("s3.key", S3_AK "\r\n", 0640);
	secret_file("s3.secret", S3_SK, 0400);
}

/* The file, then the environment, as config_load() does; msg as in load(). */
static int load_env(const char *json, struct config *c)
{
	struct buf err = BUF_INIT;
	int rc = load(json, c);
	if (!rc && (rc = config_apply_env(c, &err)))
		snprintf(msg, sizeof(msg), "%s", err.buf);
	buf_release(&err);
	return rc;
}

static void test_cluster_good(void)
{
	struct config c;
	const char *kw[3], *val[3];
	clear_env();
	good_secrets();
	secret_file("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644); /* a CA bundle is no secret */
	CHECK_EQ_INT(load_env("{\"database\": {\"url\": \"postgresql://berth@db.lan:5432/berth\", \"password_file\": "
			      "\"pg.pw\"}, \"storage\": {\"delete\": false, \"backend\": \"s3\", \"redirect\": true, "
			      "\"s3\": {\"endpoint\": \"https://s3.lan:9000/\", \"region\": \"eu-west-3\", \"bucket\": "
			      "\"berth.images\", \"prefix\": \"team/registry\", \"path_style\": false, \"ca_file\": "
			      "\"ca.pem\", \"access_key_file\": \"s3.key\", \"secret_key_file\": \"s3.secret\", "
			      "\"redirect_expiry\": \"10m\"}}}", &c), 0);
	CHECK_STR(c.database.url, "postgresql://berth@db.lan:5432/berth");
	CHECK_STR(c.database.password.value, PG_SECRET);
	CHECK_STR(c.database.password.file, "pg.pw");
	CHECK_EQ_INT(c.database.password.from, CONFIG_SECRET_FILE);
	CHECK_EQ_INT(c.delete_enabled, 0);
	CHECK_EQ_INT(c.storage_backend, CONFIG_BACKEND_S3);
	CHECK_EQ_INT(c.storage_redirect, 1);
	CHECK_EQ_INT(c.s3.given, 1);
	CHECK_STR(c.s3.endpoint, "https://s3.lan:9000");
	CHECK_STR(c.s3.region, "eu-west-3");
	CHECK_STR(c.s3.bucket, "berth.images");
	CHECK_STR(c.s3.prefix, "team/registry/");
	CHECK_EQ_INT(c.s3.path_style, 0);
	CHECK_STR(c.s3.ca_file, "ca.pem");
	CHECK_STR(c.s3.access_key.value, S3_AK);
	CHECK_STR(c.s3.access_key.file, "s3.key");
	CHECK_STR(c.s3.secret_key.value, S3_SK);
	CHECK_EQ_INT(c.s3.secret_key.from, CONFIG_SECRET_FILE);
	CHECK_EQ_INT(c.s3.redirect_expiry_s, 600);
	config_pg_params(&c, kw, val);
	CHECK_STR(kw[0], "dbname");
	CHECK_STR(val[0], "postgresql://berth@db.lan:5432/berth");
	CHECK_STR(kw[1], "password");
	CHECK_STR(val[1], PG_SECRET);
	CHECK(kw[2] == NULL && val[2] == NULL);
	config_release(&c);

	/* Defaults, and the single-node shape when nothing is said. */
	CHECK_EQ_INT(load_env(S3_CFG(""), &c), 0);
	CHECK_STR(c.s3.region, "us-east-1");
	CHECK_EQ_INT(c.s3.path_style, 1);
	CHECK(c.s3.prefix == NULL && c.s3.ca_file == NULL && c.database.url == NULL);
	CHECK_EQ_INT(c.s3.redirect_expiry_s, 300);
	CHECK_EQ_INT(c.storage_redirect, 0);
	config_pg_params(&c, kw, val);
	CHECK(val[0] == NULL && val[1] == NULL);
	config_release(&c);
	CHECK_EQ_INT(load_env("{}", &c), 0);
	CHECK_EQ_INT(c.storage_backend, CONFIG_BACKEND_FILESYSTEM);
	CHECK(c.database.url == NULL && !c.s3.given && c.s3.access_key.value == NULL);
	config_release(&c);

	CHECK_EQ_INT(load_env(S3_CFG(", \"prefix\": \"\", \"ca_file\": null"), &c), 0);
	CHECK(c.s3.prefix == NULL && c.s3.ca_file == NULL);
	config_release(&c);
	CHECK_EQ_INT(load_env(S3_CFG_WITH("http://[::1]:8080", "berth", "s3.key"), &c), 0);
	CHECK_STR(c.s3.endpoint, "http://[::1]:8080");
	config_release(&c);
	CHECK_EQ_INT(load_env(S3_CFG(", \"prefix\": \"a/b/\"") , &c), 0);
	CHECK_STR(c.s3.prefix, "a/b/");
	config_release(&c);

	good("{\"storage\": {\"backend\": \"filesystem\", \"redirect\": false, \"delete\": true}}");
	/* No password: libpq's own sources (PGPASSWORD, ~/.pgpass) or a method without one. */
	CHECK_EQ_INT(load_env(PG_CFG(""), &c), 0);
	CHECK_EQ_INT(c.database.password.from, CONFIG_SECRET_UNSET);
	CHECK(c.database.password.value == NULL);
	config_release(&c);
	good("{\"database\": {\"url\": \"host=db.lan port=5432 dbname=berth user=berth\", \"password_file\": \"pg.pw\"}}");
	/* Group-readable is fine (root:berth 0640); CRLF and a missing final newline both read. */
	CHECK_EQ_INT(load_env(S3_CFG(""), &c), 0);
	CHECK_STR(c.s3.access_key.value, S3_AK);
	config_release(&c);
}

static void test_cluster_bad(void)
{
	char big[5000];
	clear_env();
	good_secrets();
	bad("{\"database\": \"postgresql://db.lan/berth\"}", "F: \"database\": expected an object");
	bad("{\"database\": {}}", "F: \"database\": \"url\" is required (leave \"database\" out for SQLite under root)");
	bad(PG_CFG(", \"port\": 5"), "F: \"database.port\": unknown key (expected one of: url, password_file)");
	bad(PG_CFG(", \"password\": \"" PG_SECRET "\""),
	    "F: \"database.password\": unknown key (expected one of: url, password_file)");
	bad("{\"database\": {\"url\": \"postgresql://berth:" PG_SECRET "@db.lan/berth\"}}",
	    "F: \"database.url\": the connection string must not hold a password: put it in \"password_file\" "
	    "or the PGPASSWORD environment variable");
	bad("{\"database\": {\"url\": \"db.lan\"}}",
	    "F: \"database.url\": expected a PostgreSQL connection URI like \"postgresql://berth@db.lan:5432/berth\" "
	    "or key=value pairs like \"host=db.lan dbname=berth user=berth\"");
	bad(PG_CFG(", \"password_file\": \"\""), "F: \"database.password_file\": expected a non-empty string (a file name)");
	bad(PG_CFG(", \"password_file\": \"missing.pw\""),
	    "F: \"database.password_file\": cannot open \"missing.pw\": No such file or directory");

	/* Credential files: permissions, type and content. */
	secret_file("open.pw", PG_SECRET, 0604);
	bad(PG_CFG(", \"password_file\": \"open.pw\""),
	    "F: \"database.password_file\": \"open.pw\" is readable by every user (mode 0604): remove that "
	    "(chmod o-rwx)");
	CHECK(mkdir("adir", 0700) == 0);
	bad(PG_CFG(", \"password_file\": \"adir\""), "F: \"database.password_file\": \"adir\" is not a regular file");
	rmdir("adir");
	CHECK(mkfifo("fifo", 0600) == 0);
	bad(PG_CFG(", \"password_file\": \"fifo\""), "F: \"database.password_file\": \"fifo\" is not a regular file");
	unlink("fifo");
	secret_file("empty.pw", "\n", 0600);
	bad(PG_CFG(", \"password_file\": \"empty.pw\""), "F: \"database.password_file\": \"empty.pw\" is empty");
	secret_file("two.pw", PG_SECRET "\nsecond\n", 0600);
	bad(PG_CFG(", \"password_file\": \"two.pw\""),
	    "F: \"database.password_file\": \"two.pw\" holds more than one line");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	secret_file("big.pw", big, 0600);
	bad(PG_CFG(", \"password_file\": \"big.pw\""),
	    "F: \"database.password_file\": \"big.pw\" is too large for a credential (over 4096 bytes)");
	secret_file("sp.key", "AKIA SPACE", 0600);
	bad(S3_CFG_WITH("https://s3.lan:9000", "berth", "sp.key"),
	    "F: \"storage.s3.access_key_file\": \"sp.key\" holds a space, a control character or a non-ASCII "
	    "character");
	secret_file("s3.secret", S3_SK, 0644);
	bad(S3_CFG(""), "F: \"storage.s3.secret_key_file\": \"s3.secret\" is readable by every user (mode 0644): "
	    "remove that (chmod o-rwx)");
	secret_file("s3.secret", S3_SK, 0400);

	/* storage */
	bad("{\"storage\": {\"backend\": \"gcs\"}}", "F: \"storage.backend\": expected \"filesystem\" or \"s3\"");
	bad("{\"storage\": {\"backend\": \"s3\"}}", "F: \"storage\": \"backend\" is \"s3\" but there is no \"s3\" object");
	bad("{\"storage\": {\"redirect\": true}}",
	    "F: \"storage\": \"redirect\": true needs \"backend\": \"s3\" (a filesystem has no URL to redirect to)");
	bad("{\"storage\": {\"redirect\": \"yes\"}}", "F: \"storage.redirect\": expected true or false");
	bad("{\"storage\": {\"s3\": " S3_OBJ("") "}}",
	    "F: \"storage\": an \"s3\" object needs \"backend\": \"s3\" (the backend is \"filesystem\")");
	bad("{\"storage\": {\"backend\": \"filesystem\", \"s3\": " S3_OBJ("") "}}",
	    "F: \"storage\": an \"s3\" object needs \"backend\": \"s3\" (the backend is \"filesystem\")");
	bad("{\"storage\": {\"backend\": \"s3\", \"s3\": []}}", "F: \"storage.s3\": expected an object");
	bad("{\"storage\": {\"backend\": \"s3\", \"s3\": {\"endpoint\": \"https://s3.lan\"}}}",
	    "F: \"storage.s3\": \"bucket\" is required");
	bad("{\"storage\": {\"backend\": \"s3\", \"s3\": {\"bucket\": \"berth\"}}}",
	    "F: \"storage.s3\": \"endpoint\" is required");
	bad(S3_CFG(", \"secret_key\": \"" S3_SK "\""),
	    "F: \"storage.s3.secret_key\": unknown key (expected one of: endpoint, region, bucket, prefix, "
	    "path_style, ca_file, access_key_file, secret_key_file, redirect_expiry)");
	bad(S3_CFG_WITH("https://s3.lan:9000", "Berth", "s3.key"),
	    "F: \"storage.s3.bucket\": expected an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-', "
	    "starting and ending with a letter or digit");
	bad(S3_CFG_WITH("https://s3.lan:9000/bucket", "berth", "s3.key"),
	    "F: \"storage.s3.endpoint\": expected an http:// or https:// URL with a host and an optional port, "
	    "like \"https://s3.example.com:9000\" (no path, query or user)");
	bad(S3_CFG(", \"region\": \"us east\""),
	    "F: \"storage.s3.region\": expected a region name like \"us-east-1\" (letters, digits, '.', '_', '-')");
	bad(S3_CFG(", \"prefix\": \"/registry\""), "F: \"storage.s3.prefix\": the prefix must not start with '/'");
	bad(S3_CFG(", \"prefix\": \"a/../b\""),
	    "F: \"storage.s3.prefix\": the prefix must not have a \".\" or \"..\" component");
	bad(S3_CFG(", \"prefix\": 5"), "F: \"storage.s3.prefix\": expected a string like \"registry/\" (or \"\" for none)");
	bad(S3_CFG(", \"path_style\": 1"), "F: \"storage.s3.path_style\": expected true or false");
	bad(S3_CFG(", \"ca_file\": \"nope.pem\""), "F: \"storage.s3.ca_file\": cannot open \"nope.pem\": No such file "
	    "or directory");
	bad(S3_CFG(", \"redirect_expiry\": \"30s\""), "F: \"storage.s3.redirect_expiry\": \"30s\" is out of range (1m to 7d)");
	bad(S3_CFG(", \"redirect_expiry\": \"8d\""), "F: \"storage.s3.redirect_expiry\": \"8d\" is out of range (1m to 7d)");
}

/* Expects check to return want (0 or -1) for each value; a refusal's reason must not be not_why (when given). */
static void check_each(int (*check)(const char *, const char **), const char *const *v, size_t n, int want,
		       const char *not_why)
{
	for (size_t i = 0; i < n; i++) {
		const char *why = "";
		int rc = check(v[i], &why);
		if (rc != want)
			fprintf(stderr, "%s \"%s\" %s\n", want ? "accepted" : "refused", v[i], rc ? why : "");
		CHECK_EQ_INT(rc, want);
		CHECK(!rc || !not_why || strcmp(why, not_why));
	}
}
#define CHECK_EACH(fn, list, want, not_why) check_each(fn, list, sizeof(list) / sizeof(list[0]), want, not_why)

static void test_cluster_checkers(void)
{
	static const char pw[] = "the connection string must not hold a password: put it in \"password_file\" or the "
		"PGPASSWORD environment variable";
	static const char *good_pg[] = {
		"postgresql://berth@db.lan:5432/berth", "postgres://db.lan/berth", "postgresql://",
		"postgresql:///berth?host=/var/run/postgresql", "postgresql://berth@[::1]:5432/berth",
		"postgresql://h1:5432,h2:5433/berth?target_session_attrs=read-write",
		"postgresql://berth@db.lan/berth?sslmode=verify-full&sslrootcert=/etc/berth/pg-ca.pem",
		"postgresql://us%40er@db.lan/b%20db", "host=db.lan port=5432 dbname=berth user=berth",
		"host = db.lan dbname='my db' user=berth", "dbname='it\\'s' sslmode=require",
		"passfile=/etc/berth/pgpass host=db", "dbname=b\xc3\xa9rth",
	};
	static const char *bad_pg[] = {
		"", "berth", "mysql://db/berth", "postgresql://db.lan:99999/berth", "postgresql://db.lan:port/berth",
		"postgresql://a@b@c/berth", "postgresql://db lan/berth", "postgresql://db.lan/berth?sslmode",
		"postgresql://db.lan/berth?=x", "postgresql://db.lan/%zz", "postgresql://db.lan/berth#frag",
		"postgresql://db.lan/berth?a=1&&b=2", "postgresql://db.lan:0/berth", "host=db.lan dbname", "host=",
		"host='unterminated", "Host=db", "host=db\nport=1", "host=db\tport=1",
	};
	static const char *pw_pg[] = {
		"postgresql://berth:hunter2@db.lan/berth", "postgresql://berth:@db.lan/berth",
		"postgresql://db.lan/berth?password=hunter2", "postgresql://db.lan/berth?sslmode=require&sslpassword=hunter2",
		"host=db password=hunter2", "host=db  password = 'hunter2'", "sslpassword=x host=db",
	};
	static const char *good_bucket[] = { "berth", "my.bucket-1", "abc", "a23456789012345678901234567890123456789012345678901234567890123" };
	static const char *bad_bucket[] = { "ab", "a234567890123456789012345678901234567890123456789012345678901234", "Berth",
		"-berth", "berth-", "my..bucket", "192.168.1.1", "xn--berth", "berth-s3alias", "my_bucket", "sthree-x" };
	static const char *good_prefix[] = { "", "registry/", "a/b/c", "a.b/c-d_e/", "..a/b" };
	static const char *bad_prefix[] = { "/registry", "a//b", "../x", "a/./b", "a/..", "a b", "a\\b", "%", "./" };
	static const char *good_ep[] = { "http://127.0.0.1:8080", "https://s3.lan:9000/", "https://[::1]:9000", "https://s3.lan" };
	static const char *bad_ep[] = { "s3.lan:9000", "https://s3.lan/bucket", "https://user@s3.lan", "https://s3.lan?x=1",
		"ftp://s3.lan", "https://s3.lan:0", "https://", "https://s3.lan//" };
	const char *why;
	CHECK_EACH(config_pg_url_check, good_pg, 0, NULL);
	CHECK_EACH(config_pg_url_check, bad_pg, -1, pw); /* refused for their shape, not as passwords */
	for (size_t i = 0; i < sizeof(pw_pg) / sizeof(pw_pg[0]); i++) {
		why = NULL;
		CHECK_EQ_INT(config_pg_url_check(pw_pg[i], &why), -1);
		CHECK_STR(why, pw);
	}
	CHECK_EACH(config_s3_bucket_check, good_bucket, 0, NULL);
	CHECK_EACH(config_s3_bucket_check, bad_bucket, -1, NULL);
	CHECK_EACH(config_s3_prefix_check, good_prefix, 0, NULL);
	CHECK_EACH(config_s3_prefix_check, bad_prefix, -1, NULL);
	CHECK_EACH(config_s3_endpoint_check, good_ep, 0, NULL);
	CHECK_EACH(config_s3_endpoint_check, bad_ep, -1, NULL);
	CHECK_EQ_INT(config_s3_region_check("us-east-1", &why), 0);
	CHECK_EQ_INT(config_s3_region_check("garage", &why), 0);
	CHECK_EQ_INT(config_s3_region_check("", &why), -1);
	CHECK_EQ_INT(config_s3_region_check("us east", &why), -1);
}

/* config_load() with the file as json; msg gets the error. */
static int load_full(const char *json, struct config *c)
{
	struct buf err = BUF_INIT;
	int rc;
	write_file(file, json);
	rc = config_load(c, file, &err);
	snprintf(msg, sizeof(msg), "%s", err.buf);
	buf_release(&err);
	return rc;
}

static void test_cluster_env(void)
{
	static const char no_secret[] = "storage.s3: no secret key: set \"secret_key_file\" or AWS_SECRET_ACCESS_KEY";
	struct config c;
	const char *no_keys = "{\"storage\": {\"backend\": \"s3\", \"s3\": {\"endpoint\": \"http://127.0.0.1:8080\", "
		"\"bucket\": \"berth\"}}}";
	clear_env();
	good_secrets();
	setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env", 1);
	CHECK_EQ_INT(load_full(no_keys, &c), 0);
	CHECK_STR(c.s3.access_key.value, "AKIAFROMENV");
	CHECK_EQ_INT(c.s3.access_key.from, CONFIG_SECRET_ENV);
	CHECK(c.s3.access_key.file == NULL);
	CHECK_STR(c.s3.secret_key.value, "secret-from-env");
	config_release(&c);

	/* A file wins over the environment, key by key. */
	CHECK_EQ_INT(load_full("{\"storage\": {\"backend\": \"s3\", \"s3\": {\"endpoint\": \"http://127.0.0.1:8080\", "
			       "\"bucket\": \"berth\", \"secret_key_file\": \"s3.secret\"}}}", &c), 0);
	CHECK_STR(c.s3.access_key.value, "AKIAFROMENV");
	CHECK_STR(c.s3.secret_key.value, S3_SK);
	CHECK_EQ_INT(c.s3.secret_key.from, CONFIG_SECRET_FILE);
	config_release(&c);

	unsetenv("AWS_SECRET_ACCESS_KEY");
	CHECK_EQ_INT(load_full(no_keys, &c), E_CONFIG);
	CHECK_STR(msg, no_secret);
	config_release(&c);
	setenv("AWS_SECRET_ACCESS_KEY", "", 1); /* empty counts as unset */
	CHECK_EQ_INT(load_full(no_keys, &c), E_CONFIG);
	CHECK_STR(msg, no_secret);
	config_release(&c);
	clear_env();
	setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env", 1);
	CHECK_EQ_INT(load_full(no_keys, &c), E_CONFIG);
	CHECK_STR(msg, "storage.s3: no access key: set \"access_key_file\" or AWS_ACCESS_KEY_ID");
	config_release(&c);
	clear_env();
	CHECK_EQ_INT(load_full(no_keys, &c), E_CONFIG);
	CHECK_STR(msg, "storage.s3: no credentials: set \"access_key_file\" or AWS_ACCESS_KEY_ID, and "
		  "\"secret_key_file\" or AWS_SECRET_ACCESS_KEY");
	config_release(&c);
	setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "has space-" S3_SK, 1);
	CHECK_EQ_INT(load_full(no_keys, &c), E_CONFIG);
	CHECK_STR(msg, "AWS_SECRET_ACCESS_KEY holds a space, a control character or a non-ASCII character");
	config_release(&c);

	/* The filesystem backend never reads the AWS variables. */
	CHECK_EQ_INT(load_full("{}", &c), 0);
	CHECK_EQ_INT(c.s3.access_key.from + c.s3.secret_key.from, CONFIG_SECRET_UNSET);
	config_release(&c);

	clear_env();
	setenv("PGPASSWORD", PG_SECRET, 1);
	CHECK_EQ_INT(load_full(PG_CFG(""), &c), 0);
	CHECK_EQ_INT(c.database.password.from, CONFIG_SECRET_ENV);
	CHECK_STR(c.database.password.value, PG_SECRET);
	config_release(&c);
	setenv("PGPASSWORD", "other", 1);
	CHECK_EQ_INT(load_full(PG_CFG(", \"password_file\": \"pg.pw\""), &c), 0);
	CHECK_EQ_INT(c.database.password.from, CONFIG_SECRET_FILE);
	CHECK_STR(c.database.password.value, PG_SECRET);
	config_release(&c);
	CHECK_EQ_INT(load_full("{}", &c), 0);
	CHECK_EQ_INT(c.database.password.from, CONFIG_SECRET_UNSET);
	config_release(&c);
	setenv("PGPASSWORD", PG_SECRET "\nx", 1);
	CHECK_EQ_INT(load_full(PG_CFG(""), &c), E_CONFIG);
	CHECK_STR(msg, "PGPASSWORD holds more than one line");
	config_release(&c);
	clear_env();
}

/* Appends the contents of the file at path to out; 0, or -1 when it cannot be opened. */
static int slurp(const char *path, struct buf *out)
{
	char chunk[4096];
	size_t n;
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while ((n = fread(chunk, 1, sizeof(chunk), f)))
		buf_add(out, chunk, n);
	fclose(f);
	return 0;
}

/* Runs `config check -c path` with stdout and stderr captured into out; returns its exit code. */
static int check_captured(const char *path, struct buf *out)
{
	char cap[sizeof(dir) + 16];
	char *argv[] = { "check", "-c", (char *)path, NULL };
	int fd, saved1, saved2, rc;
	snprintf(cap, sizeof(cap), "%s/captured", dir);
	fflush(stdout);
	fflush(stderr);
	fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	saved1 = dup(1);
	saved2 = dup(2);
	if (fd < 0 || saved1 < 0 || saved2 < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
		perror("capture");
		exit(1);
	}
	close(fd);
	rc = config_check_main(3, argv);
	fflush(stdout);
	fflush(stderr);
	if (dup2(saved1, 1) < 0 || dup2(saved2, 2) < 0) {
		perror("capture");
		exit(1);
	}
	close(saved1);
	close(saved2);
	buf_reset(out);
	if (slurp(cap, out)) {
		perror(cap);
		exit(1);
	}
	unlink(cap);
	return rc;
}

static int shows_secret(const struct buf *out)
{
	return strstr(out->buf, PG_SECRET) || strstr(out->buf, S3_AK) || strstr(out->buf, S3_SK) ||
	       strstr(out->buf, "hunter2");
}

static void test_cluster_check_output(void)
{
	struct buf out = BUF_INIT;
	struct config c;
	clear_env();
	good_secrets();
	setenv("AWS_SECRET_ACCESS_KEY", S3_SK, 1);
	write_file(file, "{\"database\": {\"url\": \"postgresql://berth@db.lan/berth\", \"password_file\": \"pg.pw\"}, "
			 "\"storage\": {\"backend\": \"s3\", \"redirect\": true, \"s3\": {\"endpoint\": "
			 "\"https://s3.lan:9000\", \"bucket\": \"berth\", \"prefix\": \"registry\", "
			 "\"access_key_file\": \"s3.key\"}}}");
	CHECK_EQ_INT(check_captured(file, &out), 0);
	CHECK_STR(out.buf, "warning: access: no rules, so nobody can pull or push\n"
		  "database.url: postgresql://berth@db.lan/berth\n"
		  "database.password: (from file pg.pw)\n"
		  "storage.backend: s3\n"
		  "storage.redirect: true (presigned URLs valid 300s)\n"
		  "storage.s3.endpoint: https://s3.lan:9000\n"
		  "storage.s3.region: us-east-1\n"
		  "storage.s3.bucket: berth\n"
		  "storage.s3.prefix: \"registry/\"\n"
		  "storage.s3.path_style: true\n"
		  "storage.s3.ca_file: (the system's)\n"
		  "storage.s3.access_key: (from file s3.key)\n"
		  "storage.s3.secret_key: (from environment AWS_SECRET_ACCESS_KEY)\n"
		  "config ok\n");
	CHECK(!shows_secret(&out));

	/* Only a database: the storage line says where blobs stay. */
	clear_env();
	setenv("PGPASSWORD", PG_SECRET, 1);
	write_file(file, "{\"root\": \"/srv/berth\", \"database\": {\"url\": \"host=db dbname=berth\"}}");
	CHECK_EQ_INT(check_captured(file, &out), 0);
	CHECK(strstr(out.buf, "database.password: (from environment PGPASSWORD)\n"
			      "storage.backend: filesystem (under /srv/berth)\nconfig ok\n") != NULL);
	CHECK(!shows_secret(&out));
	/* The single-node shape prints what it always did. */
	write_file(file, "{\"access\": [{\"repositories\": [\"**\"], \"anonymous\": true, \"actions\": [\"pull\"]}]}");
	CHECK_EQ_INT(check_captured(file, &out), 0);
	CHECK_STR(out.buf, "config ok\n");

	/* Refusals never quote a secret: a password in the URL, a bad credential file, a bad variable. */
	write_file(file, "{\"database\": {\"url\": \"postgresql://berth:hunter2@db.lan/berth\"}}");
	CHECK_EQ_INT(check_captured(file, &out), 1);
	CHECK(strstr(out.buf, "must not hold a password") != NULL);
	CHECK(!shows_secret(&out));
	write_file(file, "{\"database\": {\"url\": \"host=db password=hunter2\"}}");
	CHECK_EQ_INT(check_captured(file, &out), 1);
	CHECK(!shows_secret(&out));
	secret_file("two.pw", PG_SECRET "\nhunter2\n", 0600);
	write_file(file, PG_CFG(", \"password_file\": \"two.pw\""));
	CHECK_EQ_INT(check_captured(file, &out), 1);
	CHECK(strstr(out.buf, "\"two.pw\" holds more than one line") != NULL);
	CHECK(!shows_secret(&out));
	secret_file("open.pw", PG_SECRET, 0644);
	write_file(file, PG_CFG(", \"password_file\": \"open.pw\""));
	CHECK_EQ_INT(check_captured(file, &out), 1);
	CHECK(!shows_secret(&out));
	setenv("PGPASSWORD", "hunter2\n", 1);
	write_file(file, PG_CFG(""));
	CHECK_EQ_INT(check_captured(file, &out), 1);
	CHECK(!shows_secret(&out));
	clear_env();
	/* described from a loaded config too, with nothing when neither PostgreSQL nor S3 is used */
	CHECK_EQ_INT(load("{}", &c), 0);
	buf_reset(&out);
	config_describe_cluster(&c, &out);
	CHECK_EQ_INT(out.len, 0);
	config_release(&c);
	buf_release(&out);
}

static void test_cluster_reload(void)
{
	struct config cur, next;
	struct buf changed = BUF_INIT;
	clear_env();
	good_secrets();
	CHECK_EQ_INT(load(S3_CFG(""), &cur), 0);
	CHECK_EQ_INT(load(S3_CFG(""), &next), 0);
	config_keep_cluster(&next, &cur, &changed);
	CHECK_EQ_INT(changed.len, 0);
	config_release(&next);

	secret_file("s3.secret", S3_SK "-rotated", 0600);
	CHECK_EQ_INT(load("{\"database\": {\"url\": \"postgresql://db.lan/berth\", \"password_file\": \"pg.pw\"}, "
			  "\"storage\": {\"backend\": \"s3\", \"redirect\": true, \"s3\": " S3_WITH("https://s3.lan:9000", "other", "s3.key", "")
			  "}}", &next), 0);
	config_keep_cluster(&next, &cur, &changed);
	CHECK_STR(changed.buf, "database.url\ndatabase.password_file\nstorage.redirect\nstorage.s3.bucket\n"
		  "storage.s3.secret_key_file\n");
	CHECK(next.database.url == NULL && next.database.password.value == NULL);
	CHECK_EQ_INT(next.storage_redirect, 0);
	CHECK_STR(next.s3.bucket, "berth");
	CHECK_STR(next.s3.secret_key.value, S3_SK);
	config_release(&next);

	/* Back to the filesystem: refused as a change, the S3 settings stay. */
	buf_reset(&changed);
	CHECK_EQ_INT(load("{}", &next), 0);
	config_keep_cluster(&next, &cur, &changed);
	CHECK(strncmp(changed.buf, "storage.backend\n", 16) == 0);
	CHECK_EQ_INT(next.storage_backend, CONFIG_BACKEND_S3);
	CHECK_STR(next.s3.endpoint, "https://s3.lan:9000");
	CHECK_STR(next.s3.access_key.value, S3_AK);
	config_release(&next);
	config_release(&cur);
	buf_release(&changed);
	secret_file("s3.secret", S3_SK, 0400);
}

/* config/cluster-example.json with its /etc/berth/ files made in the scratch directory. */
static void test_cluster_example(void)
{
	char path[4096];
	struct buf text = BUF_INIT, err = BUF_INIT;
	struct config c;
	clear_env();
	good_secrets();
	secret_file("s3-ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
	source_path(path, sizeof(path), "config/cluster-example.json");
	/* the path is relative to the build directory */
	if (fchdir(cwd_fd) || slurp(path, &text) || chdir(dir)) {
		fprintf(stderr, "cannot read %s\n", path);
		CHECK(0);
		if (chdir(dir))
			perror(dir);
		buf_release(&text);
		return;
	}
	/* the example's absolute /etc/berth/ paths, pointed at the files made above */
	for (char *p; (p = strstr(text.buf, "/etc/berth/"));)
		memmove(p, p + 11, strlen(p + 11) + 1);
	text.len = strlen(text.buf);
	write_file(file, text.buf);
	CHECK_EQ_INT(config_load(&c, file, &err), 0);
	if (err.len)
		fprintf(stderr, "%s\n", err.buf);
	CHECK_EQ_INT(c.storage_backend, CONFIG_BACKEND_S3);
	CHECK_STR(c.s3.prefix, "registry/");
	CHECK_STR(c.database.password.value, PG_SECRET);
	config_release(&c);
	buf_release(&text);
	buf_release(&err);
}

static void test_cluster(void)
{
	enter_dir();
	test_cluster_good();
	test_cluster_bad();
	test_cluster_checkers();
	test_cluster_env();
	test_cluster_check_output();
	test_cluster_reload();
	test_cluster_example();
	leave_dir();
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/berth-test-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(file, sizeof(file), "%s/config.json", dir);
	test_defaults();
	test_full();
	test_partial_and_derived();
	test_syntax();
	test_bad_keys();
	test_bad_values();
	test_checkers();
	test_phc_vs_libargon2();
	test_env();
	test_warnings();
	test_examples_and_check();
	test_cluster();
	t_rmtree(dir);
	return t_done();
}
