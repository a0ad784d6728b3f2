/* main: the berth command line (serve, help, --version). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth_version.h"
#include "blobstore.h"
#include "config.h"
#include "err.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "meta.h"
#include "paths.h"
#include "upload.h"

static const char usage[] =
	"usage: berth <command> [options]\n"
	"\n"
	"commands:\n"
	"  serve      run the registry\n"
	"  help       show this help\n"
	"  --version  print the version\n"
	"\n"
	"berth serve [--listen HOST:PORT] [--root DIR] [--threads N]\n"
	"  --listen   address to listen on (default " CONFIG_DEFAULT_LISTEN ", env BERTH_LISTEN)\n"
	"  --root     data directory (default " CONFIG_DEFAULT_ROOT ", env BERTH_ROOT)\n"
	"  --threads  HTTP worker threads (default: number of cores, env BERTH_THREADS)\n";

/* Parses serve's flags over the defaults and environment. Returns 0 or 2 (usage). */
static int serve_args(int argc, char **argv, struct config *cfg)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--listen") && v) {
			config_set_str(&cfg->listen, v);
			i++;
		} else if (!strcmp(a, "--root") && v) {
			config_set_str(&cfg->root, v);
			i++;
		} else if (!strcmp(a, "--threads") && v) {
			char *end;
			long n = strtol(v, &end, 10);
			if (*end || n < 0 || n > 1024) {
				fprintf(stderr, "error: --threads wants a number from 0 to 1024, not \"%s\"\n", v);
				return 2;
			}
			cfg->threads = (unsigned)n;
			i++;
		} else {
			fprintf(stderr, "error: unknown or incomplete option \"%s\"\n\n%s", a, usage);
			return 2;
		}
	}
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	struct config cfg;
	struct registry reg = { .cfg = &cfg };
	struct http_server *srv = NULL;
	struct buf err = BUF_INIT, dbpath = BUF_INIT;
	sigset_t set;
	int sig, rc = 1;

	config_init_defaults(&cfg);
	if (config_apply_env(&cfg, &err)) {
		fprintf(stderr, "error: %s\n", err.buf);
		goto out_cfg;
	}
	if ((rc = serve_args(argc, argv, &cfg)))
		goto out_cfg;
	rc = 1;
	log_set_level(cfg.log_level);

	/* Signals are taken synchronously by this thread; the worker threads
	 * started below inherit the blocked mask. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (blobstore_init(&reg.bs, cfg.root)) {
		log_error("cannot prepare data directory \"%s\"", cfg.root);
		goto out_bs;
	}
	paths_db(&dbpath, cfg.root);
	if (meta_open(dbpath.buf)) {
		log_error("cannot open database \"%s\"", dbpath.buf);
		goto out_bs;
	}
	if (http_start(&reg, &cfg, &srv))
		goto out_meta;
	log_info("berth %s listening on http://%s, data in %s", BERTH_VERSION, cfg.listen, cfg.root);
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP: nothing to reload without a config file");
			continue;
		}
		break;
	}
	log_info("shutting down");
	http_stop(srv);
	rc = 0;
out_meta:
	meta_close();
out_bs:
	upload_cache_clear();
	blobstore_release(&reg.bs);
out_cfg:
	buf_release(&err);
	buf_release(&dbpath);
	config_release(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("berth %s\n", BERTH_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "serve"))
		return cmd_serve(argc - 2, argv + 2);
	fprintf(stderr, "error: unknown command \"%s\"\n\n%s", argv[1], usage);
	return 2;
}
