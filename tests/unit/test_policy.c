/* Unit tests for auth/policy: actions, group membership, password checks, berth passwd. */
#include <argon2.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "policy.h"
#include "t.h"

static char dir[4096];
static char file[sizeof(dir) + 32];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/* Tiny argon2id costs keep the tests fast; the code paths are the same. */
static void make_hash(const char *pw, uint32_t m, char *out, size_t len)
{
	static const char salt[] = "0123456789abcdef";
	int rc = argon2id_hash_encoded(1, m, 1, pw, strlen(pw), salt, 16, 32, out, len);
	if (rc != ARGON2_OK) {
		fprintf(stderr, "argon2: %s\n", argon2_error_message(rc));
		exit(1);
	}
}

static struct policy *build(const char *json)
{
	struct config c;
	struct buf err = BUF_INIT;
	struct policy *p = NULL;
	write_file(file, json);
	config_init_defaults(&c);
	if (config_load_file(&c, file, &err)) {
		fprintf(stderr, "config: %s\n", err.buf);
		exit(1);
	}
	CHECK_EQ_INT(policy_build(&c, &p), 0);
	config_release(&c); /* the policy must not need it any more */
	buf_release(&err);
	return p;
}

static char alice_hash[128], bob_hash[128], carol_hash[128];

static struct policy *sample_policy(void)
{
	char json[4096];
	make_hash("alice-pw", 8, alice_hash, sizeof(alice_hash));
	make_hash("bob-pw", 8, bob_hash, sizeof(bob_hash));
	make_hash("carol-pw", 8, carol_hash, sizeof(carol_hash));
	snprintf(json, sizeof(json),
		 "{\"users\": {"
		 "  \"alice\": {\"password\": \"%s\", \"groups\": [\"dev\"]},"
		 "  \"bob\": {\"password\": \"%s\"},"
		 "  \"carol\": {\"password\": \"%s\"},"
		 "  \"dave\": {},"
		 "  \"eve\": {}"
		 "},"
		 "\"groups\": {\"ops\": [\"carol\"], \"qa\": [\"bob\"]},"
		 "\"access\": ["
		 "  {\"repositories\": [\"team-a/**\"], \"users\": [\"alice\"], \"actions\": [\"pull\", \"push\"]},"
		 "  {\"repositories\": [\"team-a/**\"], \"groups\": [\"dev\"], \"actions\": [\"delete\"]},"
		 "  {\"repositories\": [\"team-b/*\"], \"groups\": [\"qa\"], \"actions\": [\"pull\"]},"
		 "  {\"repositories\": [\"library/**\"], \"anonymous\": true, \"actions\": [\"pull\"]},"
		 "  {\"repositories\": [\"**\"], \"groups\": [\"ops\"], \"actions\": [\"*\"]},"
		 "  {\"repositories\": [\"shared/x\", \"shared/y\"], \"users\": [\"dave\"], \"anonymous\": true,"
		 "   \"actions\": [\"pull\"]},"
		 "  {\"repositories\": [\"shared/y\"], \"users\": [\"dave\"], \"actions\": [\"push\"]}"
		 "]}",
		 alice_hash, bob_hash, carol_hash);
	return build(json);
}

static void test_actions(struct policy *p)
{
	static const struct {
		const char *user, *repo;
		unsigned want;
	} cases[] = {
		/* alice: by name (pull, push) and through her own group dev (delete) */
		{ "alice", "team-a/app", ACTION_ALL },
		{ "alice", "team-a", ACTION_ALL },
		{ "alice", "team-a/x/y", ACTION_ALL },
		{ "alice", "team-b/x", 0 },
		{ "alice", "library/debian", ACTION_PULL },
		{ "alice", "other", 0 },
		/* bob: in qa because the group lists him */
		{ "bob", "team-b/x", ACTION_PULL },
		{ "bob", "team-b", 0 },
		{ "bob", "team-a/x", 0 },
		/* carol: ops, everything */
		{ "carol", "anything/at/all", ACTION_ALL },
		{ "carol", "team-a", ACTION_ALL },
		/* dave: one rule for him and anonymous, one for him only */
		{ "dave", "shared/x", ACTION_PULL },
		{ "dave", "shared/y", ACTION_PULL | ACTION_PUSH },
		{ "dave", "shared/z", 0 },
		/* eve: known, no rules of her own */
		{ "eve", "library/debian", ACTION_PULL },
		{ "eve", "team-a/x", 0 },
		/* anonymous and unknown users get only the anonymous rules */
		{ NULL, "library/debian", ACTION_PULL },
		{ NULL, "library", ACTION_PULL },
		{ NULL, "shared/y", ACTION_PULL },
		{ NULL, "team-a/x", 0 },
		{ NULL, "librar", 0 },
		{ "mallory", "library/debian", ACTION_PULL },
		{ "mallory", "team-a/x", 0 },
		{ "", "team-a/x", 0 },
		{ "Alice", "team-a/x", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned got = policy_actions(p, cases[i].user, cases[i].repo);
		if (got != cases[i].want)
			fprintf(stderr, "actions(%s, %s): got %u, want %u\n", cases[i].user ? cases[i].user : "(anon)",
				cases[i].repo, got, cases[i].want);
		CHECK_EQ_INT(got, cases[i].want);
	}
	CHECK(policy_user_exists(p, "alice"));
	CHECK(policy_user_exists(p, "dave"));
	CHECK(!policy_user_exists(p, "mallory"));
	CHECK(!policy_user_exists(p, NULL));
}

static void test_passwords(struct policy *p)
{
	CHECK_STR(policy_user_hash(p, "alice"), alice_hash);
	CHECK_STR(policy_user_hash(p, "carol"), carol_hash);
	CHECK(policy_user_hash(p, "dave") == NULL);
	CHECK(policy_user_hash(p, "mallory") == NULL);
	CHECK(policy_user_hash(p, NULL) == NULL);

	CHECK_EQ_INT(policy_check_password(p, "alice", "alice-pw", 8), 0);
	CHECK_EQ_INT(policy_check_password(p, "bob", "bob-pw", 6), 0);
	CHECK_EQ_INT(policy_check_password(p, "alice", "bob-pw", 6), E_UNAUTHORIZED);
	CHECK_EQ_INT(policy_check_password(p, "alice", "alice-pw", 7), E_UNAUTHORIZED);  /* prefix */
	CHECK_EQ_INT(policy_check_password(p, "alice", "alice-pwx", 9), E_UNAUTHORIZED); /* longer */
	CHECK_EQ_INT(policy_check_password(p, "alice", "alice-pw\0", 9), E_UNAUTHORIZED);
	CHECK_EQ_INT(policy_check_password(p, "alice", "", 0), E_UNAUTHORIZED);
	CHECK_EQ_INT(policy_check_password(p, "alice", NULL, 0), E_UNAUTHORIZED);
	CHECK_EQ_INT(policy_check_password(p, "mallory", "alice-pw", 8), E_UNAUTHORIZED);
	CHECK_EQ_INT(policy_check_password(p, NULL, "alice-pw", 8), E_UNAUTHORIZED);
	CHECK_EQ_INT(policy_check_password(p, "dave", "", 0), E_UNAUTHORIZED);
	CHECK_EQ_INT(policy_check_password(p, "ALICE", "alice-pw", 8), E_UNAUTHORIZED);
}

/* The argon2 parameters of a PHC string: everything up to the salt. */
static size_t cost_prefix_len(const char *phc)
{
	const char *salt = strchr(phc + strlen("$argon2id$"), '$');
	salt = salt ? strchr(salt + 1, '$') : NULL;
	return salt ? (size_t)(salt - phc) : 0;
}

/*
 * An unknown user, or one without a password, must cost what a known one
 * does: the hash checked for them carries the same argon2 parameters. (No
 * stopwatch: timings are not asserted in tests.)
 */
static void test_same_cost(void)
{
	char json[1024], hash[128];
	make_hash("pw", 4096, hash, sizeof(hash));
	snprintf(json, sizeof(json), "{\"users\": {\"u\": {\"password\": \"%s\"}, \"nopw\": {}}}", hash);
	struct policy *p = build(json);
	const char *known = policy_verified_hash(p, "u"), *unknown = policy_verified_hash(p, "nobody"),
		   *nopw = policy_verified_hash(p, "nopw");
	size_t n = cost_prefix_len(known);
	CHECK(n > 0);
	CHECK_STR(known, hash);
	CHECK(unknown != known && strcmp(unknown, known));
	CHECK_EQ_INT(cost_prefix_len(unknown), n);
	CHECK(!strncmp(unknown, known, n));
	CHECK(!strncmp(nopw, known, n));
	CHECK_EQ_INT(policy_check_password(p, "nobody", "pw", 2), E_UNAUTHORIZED);
	CHECK_EQ_INT(policy_check_password(p, "u", "pw", 2), 0);
	policy_free(p);
}

static void test_empty_policy(void)
{
	struct config c;
	struct policy *p = NULL;
	config_init_defaults(&c);
	CHECK_EQ_INT(policy_build(&c, &p), 0);
	config_release(&c);
	CHECK_EQ_INT(policy_actions(p, NULL, "library/debian"), 0);
	CHECK_EQ_INT(policy_actions(p, "alice", "x"), 0);
	CHECK(!policy_user_exists(p, "alice"));
	/* The dummy hash has the default cost here: one real-cost run. */
	CHECK_EQ_INT(policy_check_password(p, "alice", "pw", 2), E_UNAUTHORIZED);
	policy_free(p);
	policy_free(NULL);
}

static void test_build_rejects(void)
{
	/* A config that skipped validation still cannot produce a dangling reference. */
	struct config c;
	struct policy *p = (struct policy *)1;
	char *names[] = { "ghost" };
	struct config_rule rule = { .users = { names, 1 }, .actions = ACTION_PULL };
	config_init_defaults(&c);
	c.rules = &rule;
	c.n_rules = 1;
	CHECK_EQ_INT(policy_build(&c, &p), E_CONFIG);
	CHECK(p == NULL);
	c.rules = NULL;
	c.n_rules = 0;
	config_release(&c);
}

/* Runs `berth passwd` with stdin fed from input and stdout captured into out. */
static int run_passwd(int argc, char **argv, const char *input, char *out, size_t outlen)
{
	char in_path[sizeof(dir) + 16], out_path[sizeof(dir) + 16];
	int saved_in = dup(STDIN_FILENO), saved_out = dup(STDOUT_FILENO), rc, fd;
	snprintf(in_path, sizeof(in_path), "%s/in", dir);
	snprintf(out_path, sizeof(out_path), "%s/out", dir);
	write_file(in_path, input);
	fflush(stdout);
	fd = open(in_path, O_RDONLY);
	dup2(fd, STDIN_FILENO);
	close(fd);
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	rc = policy_passwd_main(argc, argv);
	fflush(stdout);
	dup2(saved_in, STDIN_FILENO);
	dup2(saved_out, STDOUT_FILENO);
	close(saved_in);
	close(saved_out);
	FILE *f = fopen(out_path, "r");
	size_t n = f ? fread(out, 1, outlen - 1, f) : 0;
	out[n] = '\0';
	if (f)
		fclose(f);
	unlink(in_path);
	unlink(out_path);
	return rc;
}

static void test_passwd(void)
{
	char out[1024], hash[512], line[600];
	char *argv[] = { "passwd", "--user", "alice", "-m", "64", "-t", "1", "-p", "1", NULL };
	CHECK_EQ_INT(run_passwd(9, argv, "s3cret pass\n", out, sizeof(out)), 0);
	char *nl = strchr(out, '\n');
	CHECK(nl != NULL);
	if (!nl)
		return;
	snprintf(hash, sizeof(hash), "%.*s", (int)(nl - out), out);
	CHECK(!strncmp(hash, "$argon2id$v=19$m=64,t=1,p=1$", 28));
	CHECK_EQ_INT(config_phc_check(hash, NULL), 0);
	CHECK_EQ_INT(argon2id_verify(hash, "s3cret pass", 11), ARGON2_OK);
	CHECK(argon2id_verify(hash, "s3cret pass\n", 12) != ARGON2_OK);
	snprintf(line, sizeof(line), "\"alice\": {\"password\": \"%s\"}\n", hash);
	CHECK_STR(nl + 1, line);

	/* A second run salts differently; CRLF and a missing final newline are fine. */
	char *argv2[] = { "passwd", "-m", "64", "-t", "1", NULL };
	CHECK_EQ_INT(run_passwd(5, argv2, "s3cret pass\r\n", out, sizeof(out)), 0);
	CHECK(strncmp(out, hash, strlen(hash)) != 0);
	out[strcspn(out, "\n")] = '\0';
	CHECK_EQ_INT(argon2id_verify(out, "s3cret pass", 11), ARGON2_OK);
	CHECK_EQ_INT(run_passwd(5, argv2, "no newline", out, sizeof(out)), 0);
	out[strcspn(out, "\n")] = '\0';
	CHECK_EQ_INT(argon2id_verify(out, "no newline", 10), ARGON2_OK);

	/* Errors. */
	CHECK_EQ_INT(run_passwd(5, argv2, "\n", out, sizeof(out)), 1);
	CHECK_EQ_INT(run_passwd(5, argv2, "", out, sizeof(out)), 1);
	CHECK_STR(out, "");
	char *bad_user[] = { "passwd", "--user", "Alice", NULL };
	CHECK_EQ_INT(run_passwd(3, bad_user, "x\n", out, sizeof(out)), 2);
	char *bad_m[] = { "passwd", "-m", "4", NULL };
	CHECK_EQ_INT(run_passwd(3, bad_m, "x\n", out, sizeof(out)), 2);
	char *bad_p[] = { "passwd", "-m", "8", "-p", "2", NULL };
	CHECK_EQ_INT(run_passwd(5, bad_p, "x\n", out, sizeof(out)), 2);
	char *incomplete[] = { "passwd", "--user", NULL };
	CHECK_EQ_INT(run_passwd(2, incomplete, "x\n", out, sizeof(out)), 2);
	char *unknown[] = { "passwd", "--bogus", "x", NULL };
	CHECK_EQ_INT(run_passwd(3, unknown, "x\n", out, sizeof(out)), 2);
	char *help[] = { "passwd", "--help", NULL };
	CHECK_EQ_INT(run_passwd(2, help, "", out, sizeof(out)), 0);
	CHECK(strstr(out, "usage: berth passwd") != NULL);

	/* Too long a line is refused rather than cut. */
	char big[1200];
	memset(big, 'x', sizeof(big) - 2);
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ_INT(run_passwd(5, argv2, big, out, sizeof(out)), 1);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/berth-test-policy-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(file, sizeof(file), "%s/config.json", dir);
	struct policy *p = sample_policy();
	test_actions(p);
	test_passwords(p);
	policy_free(p);
	test_same_cost();
	test_empty_policy();
	test_build_rejects();
	test_passwd();
	unlink(file);
	rmdir(dir);
	return t_done();
}
