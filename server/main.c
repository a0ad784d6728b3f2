/* main: the berth command line. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth_version.h"
#include "cli.h"
#include "config.h"
#include "datadir.h"
#include "err.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "gcsched.h"
#include "registry.h"
#include "store.h"

#define SERVE_USAGE                                                                                            \
	"usage: berth serve [-c FILE] [--listen HOST:PORT] [--root DIR] [--threads N]\n"                        \
	"  -c FILE    config file (env BERTH_CONFIG); without one, the embedded default:\n"                     \
	"             listen on " CONFIG_DEFAULT_LISTEN ", data in " CONFIG_DEFAULT_ROOT ", one user \"admin\"\n" \
	"             whose password is printed at the first start\n"                                            \
	"  --listen   address to listen on (env BERTH_LISTEN)\n"                                                 \
	"  --root     data directory (env BERTH_ROOT), created when missing; one serve per directory\n"         \
	"  --threads  HTTP worker threads (default: number of cores, env BERTH_THREADS)\n"

static const char serve_usage[] = SERVE_USAGE;

static const char usage[] =
	"usage: berth <command> [options]\n"
	"\n"
	"commands:\n"
	"  serve          run the registry\n"
	"  passwd         print the argon2id hash of a password, for the config file\n"
	"  token          create, list and revoke personal access tokens\n"
	"  tag            list tags, show their history, roll a tag back\n"
	"  audit          show the audit log\n"
	"  gc             delete manifests and blobs nothing keeps any more (--dry-run: only report)\n"
	"  fsck           re-hash every blob and cross-check metadata and disk (--repair: remove orphans)\n"
	"  migrate        copy this single node's store into a cluster's (--to CONFIG: PostgreSQL and S3)\n"
	"  config check   validate a config file\n"
	"  import         load a docker save tarball or OCI layout into a repository\n"
	"  export         write an image as an OCI layout tar\n"
	"  healthcheck    exit 0 when the local registry answers /healthz (for container health checks)\n"
	"  help           show this help\n"
	"  --version      print the version\n"
	"\n"
	"Every command that works on a data directory takes -c FILE and --root DIR as serve does;\n"
	"only serve creates a data directory. \"berth COMMAND --help\" shows a command's options.\n"
	"\n"
	SERVE_USAGE;

struct serve_opts {
	const char *config, *listen, *root, *threads;
};

static int serve_args(int argc, char **argv, struct serve_opts *o)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **slot = NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(serve_usage, stdout);
			return -1;
		}
		if (!strcmp(a, "-c") || !strcmp(a, "--config"))
			slot = &o->config;
		else if (!strcmp(a, "--listen"))
			slot = &o->listen;
		else if (!strcmp(a, "--root"))
			slot = &o->root;
		else if (!strcmp(a, "--threads"))
			slot = &o->threads;
		if (!slot || !v)
			return cli_usage_error(serve_usage, "unknown or incomplete option \"%s\"", a);
		*slot = v;
		i++;
	}
	return 0;
}

/* Command-line flags win over the file and the environment. */
static int apply_flags(struct config *cfg, const struct serve_opts *o)
{
	if (o->listen)
		config_set_str(&cfg->listen, o->listen);
	if (o->root)
		config_set_str(&cfg->root, o->root);
	if (o->threads) {
		char *end;
		long n = strtol(o->threads, &end, 10);
		if (*end || n < 0 || n > 1024) {
			fprintf(stderr, "error: --threads wants a number from 0 to 1024, not \"%s\"\n", o->threads);
			return 2;
		}
		cfg->threads = (unsigned)n;
	}
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	struct serve_opts o = { 0 };
	struct config cfg;
	struct registry reg;
	struct http_server *srv = NULL;
	struct buf err = BUF_INIT, warn = BUF_INIT, url = BUF_INIT;
	sigset_t set;
	int sig, rc, lock_fd = -1;

	memset(&reg, 0, sizeof(reg));
	if ((rc = serve_args(argc, argv, &o)))
		return rc < 0 ? 0 : rc;
	if (config_load(&cfg, o.config, &err)) {
		fprintf(stderr, "error: %s\n", err.buf);
		rc = 1;
		goto out_cfg;
	}
	if ((rc = apply_flags(&cfg, &o)))
		goto out_cfg;
	rc = 1;
	log_set_level(cfg.log_level);
	log_set_format(cfg.log_format);
	/* Before anything in the directory is created or read: a second daemon
	 * must not even make an administrator password. */
	if (datadir_lock(cfg.root, &lock_fd))
		goto out_cfg;
	if (!cfg.path && datadir_admin(&cfg, 1))
		goto out_cfg;

	/* Signals are taken synchronously by this thread; every thread started
	 * below inherits the blocked mask. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (registry_open(&reg, &cfg))
		goto out;
	/* The registry owns the settings from here on. */
	const struct config *c = &reg.snap->cfg;
	store_reserve(reg.store); /* room kept for deletes on a full disk; failures are logged */
	metrics_start();
	config_warnings(c, &warn);
	if (warn.len)
		log_warn("%.*s", (int)(warn.len - 1), warn.buf);
	if (http_start(&reg, c, &srv))
		goto out;
	config_external_url(c, &url);
	log_info("berth %s listening on %s (%s), data in %s", BERTH_VERSION, c->listen, url.buf, c->root);
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP: reloading the configuration");
			registry_reload(&reg);
			continue;
		}
		break;
	}
	log_info("shutting down");
	registry_close(&reg);
	http_stop(srv);
	rc = 0;
out:
	registry_release(&reg); /* the store gives its reserve back */
out_cfg:
	datadir_unlock(lock_fd);
	buf_release(&err);
	buf_release(&warn);
	buf_release(&url);
	config_release(&cfg);
	return rc;
}

int cli_open(struct cli *cli, const char *config_path, const char *root)
{
	struct buf err = BUF_INIT;
	memset(cli, 0, sizeof(*cli));
	if (config_load(&cli->cfg, config_path, &err)) {
		fprintf(stderr, "error: %s\n", err.buf);
		buf_release(&err);
		config_release(&cli->cfg);
		return 1;
	}
	buf_release(&err);
	if (root)
		config_set_str(&cli->cfg.root, root);
	log_set_level(LOG_WARN);
	gcsched_inhibit(); /* a command-line process never runs the collection schedule */
	/* only serve creates a data directory or an administrator password; on PostgreSQL the data is there */
	if ((!cli->cfg.database.url && datadir_check(cli->cfg.root)) ||
	    (!cli->cfg.path && datadir_admin(&cli->cfg, 0))) {
		config_release(&cli->cfg);
		return 1;
	}
	if (registry_open(&cli->reg, &cli->cfg)) {
		registry_release(&cli->reg);
		config_release(&cli->cfg);
		return 1;
	}
	return 0;
}

void cli_close(struct cli *cli)
{
	registry_release(&cli->reg);
	config_release(&cli->cfg);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;
	if (!cmd || !strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		fputs(usage, cmd ? stdout : stderr);
		return cmd ? 0 : 2;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("berth %s\n", BERTH_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "serve"))
		return cmd_serve(argc - 2, argv + 2);
	if (!strcmp(cmd, "passwd"))
		return policy_passwd_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "token"))
		return cli_token_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "import"))
		return cli_import_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "export"))
		return cli_export_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "tag"))
		return cli_tag_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "audit"))
		return cli_audit_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "gc"))
		return cli_gc_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "fsck"))
		return cli_fsck_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate"))
		return cli_migrate_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "healthcheck"))
		return cli_health_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "config") && argc > 2 && !strcmp(argv[2], "check"))
		return config_check_main(argc - 2, argv + 2);
	if (!strcmp(cmd, "config") && argc > 2 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) {
		char *help[] = { argv[1], argv[2], NULL };
		return config_check_main(2, help); /* check is the only config command */
	}
	if (!strcmp(cmd, "config"))
		return cli_usage_error(usage, "berth config wants a command: check");
	return cli_usage_error(usage, "unknown command \"%s\"", cmd);
}
