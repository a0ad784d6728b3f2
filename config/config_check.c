/* config_check: `berth config check`, which validates a config file the way `berth serve` would read it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char check_usage[] =
	"usage: berth config check [-c FILE]\n"
	"  -c, --config FILE  the config file (default: $BERTH_CONFIG)\n"
	"Reads the file, then the environment overrides, as berth serve does, and reads\n"
	"the credential files it names; prints the PostgreSQL, S3 and upstream settings\n"
	"(credentials only by their source) and \"config ok\" and exits 0, or prints the\n"
	"first problem and exits 1. It contacts neither the database, the object store\n"
	"nor the upstreams.\n";

int config_check_main(int argc, char **argv)
{
	struct config c;
	struct buf err = BUF_INIT, warn = BUF_INIT, desc = BUF_INIT;
	const char *path = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(check_usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "error: unknown or incomplete option \"%s\"\n%s", argv[i], check_usage);
			return 2;
		}
	}
	if (!path)
		path = getenv("BERTH_CONFIG");
	if (!path || !*path) {
		/* Checking only the built-in defaults would say "ok" about a file never read. */
		fprintf(stderr, "error: no config file: give -c FILE or set BERTH_CONFIG\n%s", check_usage);
		return 2;
	}
	if (config_load(&c, path, &err)) {
		fprintf(stderr, "error: %s\n", err.buf);
		rc = 1;
		goto out;
	}
	config_warnings(&c, &warn);
	for (char *line = warn.buf, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		fprintf(stderr, "warning: %.*s\n", (int)(nl - line), line);
	}
	/* what the cluster settings resolved to, credentials by their source only */
	config_describe_cluster(&c, &desc);
	config_describe_upstreams(&c, &desc);
	fputs(desc.buf, stdout);
	puts("config ok");
	rc = 0;
out:
	config_release(&c);
	buf_release(&err);
	buf_release(&warn);
	buf_release(&desc);
	return rc;
}
