/*
 * fuzz_config: libFuzzer target for the config file (config/config_file.c
 * and the value checkers it calls), followed by auth/policy.c on what it
 * accepted: config_load_file() on the input written to a temporary file,
 * then policy_build(), policy_actions() and config_warnings().
 *
 * The value checkers (durations, addresses, names, globs, URLs, password
 * hash shapes) also get the raw input as one string. A refused file says
 * why; an accepted one has every action set within
 * the three actions, user names that pass config_name_check() and limits
 * within their documented ranges, and it must build a policy: the loader
 * is the validation policy_build() relies on. Seeds live in corpus/config/.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "err.h"
#include "fuzz.h"
#include "log.h"
#include "policy.h"

static char config_fuzz_path[64];

static void config_remove_temp(void)
{
	unlink(config_fuzz_path);
}

/* Writes the input to the (reused) temporary file; returns its path. */
static const char *config_write(const uint8_t *data, size_t size)
{
	FILE *f;
	if (!config_fuzz_path[0]) {
		const char *dir = getenv("TMPDIR");
		int fd;
		snprintf(config_fuzz_path, sizeof(config_fuzz_path), "%s/berth-fuzz-config-XXXXXX",
			 dir && strlen(dir) < 24 ? dir : "/tmp");
		fd = mkstemp(config_fuzz_path);
		FUZZ_ASSERT(fd >= 0);
		close(fd);
		atexit(config_remove_temp);
	}
	f = fopen(config_fuzz_path, "wb");
	FUZZ_ASSERT(f);
	FUZZ_ASSERT(fwrite(data, 1, size, f) == size || size == 0);
	FUZZ_ASSERT(fclose(f) == 0);
	return config_fuzz_path;
}

static void config_check_ok(const struct config *c)
{
	static const char *const repos[] = { "library/alpine", "team-a/app", "x" };
	struct policy *p = NULL;
	struct buf warn = BUF_INIT;
	FUZZ_ASSERT(c->max_connections >= 1 && c->idle_timeout_s >= 1);
	FUZZ_ASSERT(c->page_max >= 1 && c->manifest_max >= CONFIG_MANIFEST_MAX);
	FUZZ_ASSERT(c->listen && c->root && c->token_service && c->token_issuer);
	FUZZ_ASSERT(!c->tls_cert == !c->tls_key);
	for (size_t i = 0; i < c->n_users; i++)
		FUZZ_ASSERT(config_name_check(c->users[i].name, NULL) == 0);
	for (size_t i = 0; i < c->n_rules; i++) {
		FUZZ_ASSERT((c->rules[i].actions & ~ACTION_ALL) == 0);
		for (size_t j = 0; j < c->rules[i].repositories.n; j++)
			FUZZ_ASSERT(config_glob_check(c->rules[i].repositories.v[j], NULL) == 0);
	}
	FUZZ_ASSERT(policy_build(c, &p) == 0 && p);
	for (size_t i = 0; i < sizeof(repos) / sizeof(repos[0]); i++) {
		FUZZ_ASSERT((policy_actions(p, NULL, repos[i]) & ~ACTION_ALL) == 0);
		for (size_t u = 0; u < c->n_users; u++) {
			unsigned a = policy_actions(p, c->users[u].name, repos[i]);
			FUZZ_ASSERT((a & ~ACTION_ALL) == 0);
			/* a user gets at least what anonymous callers get */
			FUZZ_ASSERT((a & policy_actions(p, NULL, repos[i])) == policy_actions(p, NULL, repos[i]));
			FUZZ_ASSERT(policy_user_exists(p, c->users[u].name));
		}
		(void)config_immutable_rule(c, repos[i], "latest");
	}
	policy_free(p);
	config_warnings(c, &warn);
	buf_release(&warn);
}

/*
 * The value checkers on the raw input as one string: cheap, so they get
 * far more executions than through a whole file.
 */
static void config_check_values(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	const char *why = NULL;
	unsigned secs = 0, port = 0;
	struct config_net net;
	char host[256];
	size_t len = strlen(s);
	if (!config_duration_parse(s, &secs, &why))
		FUZZ_ASSERT(len >= 2 && s[0] >= '0' && s[0] <= '9');
	else
		FUZZ_ASSERT(why && *why);
	if (!config_net_parse(s, &net, &why))
		FUZZ_ASSERT((net.family == AF_INET && net.prefix <= 32) || (net.family == AF_INET6 && net.prefix <= 128));
	if (!config_listen_split(s, host, &port))
		FUZZ_ASSERT(port >= 1 && port <= 65535 && strlen(host) < len);
	if (!config_name_check(s, NULL))
		FUZZ_ASSERT(len >= 1 && len <= CONFIG_NAME_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == len);
	if (!config_glob_check(s, NULL))
		FUZZ_ASSERT(len >= 1 && !strstr(s, "***") && !strchr(s, '%') && s[0] != '/');
	(void)config_phc_check(s, NULL);
	if (!config_url_check(s, NULL))
		FUZZ_ASSERT(!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8));
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	struct buf err = BUF_INIT;
	const char *path = config_write(data, size);
	int rc;

	log_set_level(LOG_ERROR);
	config_check_values(data, size);
	config_init_defaults(&c);
	rc = config_load_file(&c, path, &err);
	FUZZ_ASSERT(rc == 0 || rc == E_CONFIG);
	FUZZ_ASSERT((rc == 0) == (err.len == 0));
	if (!rc)
		config_check_ok(&c);
	config_release(&c);
	buf_release(&err);
	return 0;
}
