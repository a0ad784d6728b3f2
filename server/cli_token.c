/*
 * cli_token: `berth token create | list | revoke`, personal access tokens
 * managed from the command line on the data directory of a (possibly
 * running) registry.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authn.h"
#include "cli.h"
#include "clock.h"
#include "err.h"
#include "jwt.h"
#include "store.h"
#include "policy.h"
#include "rand.h"
#include "scope.h"
#include "xalloc.h"

static const char token_usage[] =
	"usage: berth token create --user USER --name NAME [--scope SCOPE]... [--expires DURATION] [-c FILE] [--root DIR]\n"
	"       berth token list [--user USER] [--all] [-c FILE] [--root DIR]\n"
	"       berth token revoke --user USER --name NAME [-c FILE] [--root DIR]\n"
	"\n"
	"  SCOPE     repository:<glob>:<actions>, e.g. 'repository:team-a/*:pull,push' (default: all of USER's rights)\n"
	"  DURATION  e.g. 30d, 12h (default: never expires)\n"
	"  -c FILE   config file of the registry (env BERTH_CONFIG)\n"
	"  --root    its data directory (env BERTH_ROOT), as given to berth serve\n";

static int64_t now_ms(void)
{
	return clock_wall_ms();
}

struct token_args {
	const char *user, *name, *expires, *config, *root;
	struct buf scopes;
	int all;
};

/* Parses the options after "create", "list" or "revoke"; returns 0, -1 after printing help, or 2. */
static int parse_args(int argc, char **argv, struct token_args *a)
{
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			fputs(token_usage, stdout);
			return -1;
		}
		if (!strcmp(o, "--all")) {
			a->all = 1;
			continue;
		}
		if (!v)
			return cli_usage_error(token_usage, "option \"%s\" needs a value or is unknown", o);
		if (!strcmp(o, "--user"))
			a->user = v;
		else if (!strcmp(o, "--name"))
			a->name = v;
		else if (!strcmp(o, "--expires"))
			a->expires = v;
		else if (!strcmp(o, "-c") || !strcmp(o, "--config"))
			a->config = v;
		else if (!strcmp(o, "--root"))
			a->root = v;
		else if (!strcmp(o, "--scope")) {
			if (a->scopes.len)
				buf_addch(&a->scopes, ' ');
			buf_adds(&a->scopes, v);
		} else {
			return cli_usage_error(token_usage, "unknown option \"%s\"", o);
		}
		i++;
	}
	return 0;
}

static void fmt_time(int64_t ms, char *out, size_t n)
{
	if (!ms) {
		snprintf(out, n, "-");
		return;
	}
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int token_create(struct cli *cli, struct token_args *a)
{
	unsigned char rnd[32], hash[32];
	struct buf secret = BUF_INIT, err = BUF_INIT;
	int64_t expires = 0, id;
	unsigned secs;
	unsigned int hl;
	int rc;
	if (!a->user || !a->name)
		return cli_usage_error(token_usage, "token create needs --user and --name");
	if (!policy_user_exists(cli->reg.snap->policy, a->user)) {
		fprintf(stderr, "error: unknown user \"%s\" (users are defined in the config file)\n", a->user);
		return 1;
	}
	const char *why;
	if (config_name_check(a->name, &why)) {
		fprintf(stderr, "error: --name: %s\n", why);
		return 1;
	}
	if (a->scopes.len && scopes_check(a->scopes.buf, &err)) {
		fprintf(stderr, "error: --scope: %s\n", err.buf);
		buf_release(&err);
		return 1;
	}
	if (a->expires) {
		if (config_duration_parse(a->expires, &secs, &why)) {
			fprintf(stderr, "error: --expires: %s\n", why);
			return 1;
		}
		if (secs == 0) {
			fprintf(stderr, "error: --expires: a token must live longer than 0s\n");
			return 1;
		}
		expires = now_ms() + (int64_t)secs * 1000;
	}
	rand_bytes(rnd, sizeof(rnd));
	buf_adds(&secret, PAT_PREFIX);
	b64url_encode(rnd, sizeof(rnd), &secret);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	if (!EVP_Digest(secret.buf, secret.len, hash, &hl, EVP_sha256(), NULL))
		die("hash failed");
	rc = store_pat_create(cli->reg.store, a->user, a->name, a->scopes.buf, expires, hash, &id);
	if (rc == E_EXISTS) {
		fprintf(stderr, "error: user \"%s\" already has an active token named \"%s\"\n", a->user, a->name);
	} else if (rc) {
		fprintf(stderr, "error: cannot store the token (%s)\n", err_desc(rc)->message);
	} else {
		store_audit_add(cli->reg.store, "cli", "token_create", NULL, NULL, NULL);
		printf("%s\n", secret.buf);
		fprintf(stderr, "token \"%s\" of user \"%s\" created; the secret above is shown only once.\n"
				"use it as the password: docker login -u %s --password-stdin <host>\n",
			a->name, a->user, a->user);
	}
	OPENSSL_cleanse(secret.buf, secret.len);
	buf_release(&secret);
	return rc ? 1 : 0;
}

static int print_pat(void *ctx, const struct store_pat *p)
{
	char created[32], expires[32], used[32];
	int64_t now = *(int64_t *)ctx;
	const char *status = p->revoked_ms ? "revoked" : (p->expires_ms && p->expires_ms <= now) ? "expired" : "active";
	fmt_time(p->created_ms, created, sizeof(created));
	fmt_time(p->expires_ms, expires, sizeof(expires));
	fmt_time(p->last_used_ms, used, sizeof(used));
	printf("%-16s %-20s %-8s %-20s %-20s %-20s %s\n", p->owner, p->name, status, created, expires, used,
	       p->scopes && *p->scopes ? p->scopes : "(all of the user's rights)");
	return 0;
}

static int token_list(struct cli *cli, struct token_args *a)
{
	int64_t now = now_ms();
	printf("%-16s %-20s %-8s %-20s %-20s %-20s %s\n", "USER", "NAME", "STATUS", "CREATED", "EXPIRES", "LAST USED",
	       "SCOPES");
	return store_pat_list(cli->reg.store, a->user, a->all, print_pat, &now) ? 1 : 0;
}

static int token_revoke(struct cli *cli, struct token_args *a)
{
	int rc;
	if (!a->user || !a->name)
		return cli_usage_error(token_usage, "token revoke needs --user and --name");
	rc = store_pat_revoke(cli->reg.store, a->user, a->name, now_ms());
	if (rc == E_NAME_UNKNOWN) {
		fprintf(stderr, "error: user \"%s\" has no active token named \"%s\"\n", a->user, a->name);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "error: cannot revoke the token (%s)\n", err_desc(rc)->message);
		return 1;
	}
	store_audit_add(cli->reg.store, "cli", "token_revoke", NULL, NULL, NULL);
	fprintf(stderr, "token \"%s\" of user \"%s\" revoked\n", a->name, a->user);
	return 0;
}

int cli_token_main(int argc, char **argv)
{
	struct token_args a = { .scopes = BUF_INIT };
	struct cli cli;
	int rc;
	if (argc < 2) {
		fputs(token_usage, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(token_usage, stdout);
		return 0;
	}
	/* before anything is opened: a mistyped command must not create a data directory */
	if (strcmp(argv[1], "create") && strcmp(argv[1], "list") && strcmp(argv[1], "revoke")) {
		fprintf(stderr, "error: unknown token command \"%s\"\n\n%s", argv[1], token_usage);
		return 2;
	}
	if ((rc = parse_args(argc - 2, argv + 2, &a))) {
		rc = rc < 0 ? 0 : rc;
		goto out;
	}
	if (cli_open(&cli, a.config, a.root)) {
		rc = 1;
		goto out;
	}
	if (!strcmp(argv[1], "create"))
		rc = token_create(&cli, &a);
	else if (!strcmp(argv[1], "list"))
		rc = token_list(&cli, &a);
	else
		rc = token_revoke(&cli, &a);
	cli_close(&cli);
out:
	buf_release(&a.scopes);
	return rc;
}
