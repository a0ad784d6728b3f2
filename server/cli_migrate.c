/*
 * cli_migrate: `berth migrate --to CONFIG`, moving a single node's store
 * (SQLite and its data directory) into the store another config describes
 * (PostgreSQL and S3), with both open in this one process.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "datadir.h"
#include "err.h"
#include "log.h"
#include "registry.h"
#include "store.h"
#include "store_maint.h"

static const char migrate_usage[] =
	"usage: berth migrate --to CONFIG [--force] [--verify] [-c FILE] [--root DIR]\n"
	"\n"
	"Copies this registry's store (its SQLite database and blobs under the data directory)\n"
	"into the store CONFIG describes (database.url, and storage.backend s3): repositories,\n"
	"blobs, manifests, tags with their history, personal access tokens (their hashes) and\n"
	"the audit log, keeping times and ids. Upload sessions in progress are not copied.\n"
	"The registry must be stopped: migrate takes its data directory's lock. Run it again\n"
	"after an interruption: what the destination has is kept, the rest is copied. A tag the\n"
	"destination points elsewhere, or an id it uses for something else, refuses the copy\n"
	"before anything is written. At the end every row and blob is looked up again.\n"
	"\n"
	"  --to CONFIG  config file of the destination\n"
	"  --force      move tags the destination points elsewhere to this registry's digest\n"
	"  --verify     also read back and re-hash every blob in the destination\n"
	"  -c FILE      config file of this registry (env BERTH_CONFIG)\n"
	"  --root DIR   its data directory (env BERTH_ROOT), as given to berth serve\n"
	"exit status: 0 when everything is in the destination, 1 otherwise, 2 for a usage error\n";

static void on_problem(void *ctx, const char *table, const char *what)
{
	(void)ctx;
	fprintf(stderr, "%s: %s\n", table, what);
}

static void on_progress(void *ctx, const char *table, int64_t rows)
{
	(void)ctx;
	fprintf(stderr, "copying %s: %lld\n", table, (long long)rows);
}

/* Loads the config at path (NULL: $BERTH_CONFIG or the embedded default); 1 after printing why not. */
static int load(struct config *c, const char *path, const char *root)
{
	struct buf err = BUF_INIT;
	int rc = config_load(c, path, &err);
	if (rc)
		fprintf(stderr, "error: %s%s%s\n", path ? path : "", path ? ": " : "", err.buf);
	else if (root)
		config_set_str(&c->root, root);
	buf_release(&err);
	return rc ? 1 : 0;
}

static int open_store(const struct config *c, const char *what, struct store **out)
{
	struct store_config sc;
	if (!store_open_config(registry_store_config(c, &sc), out))
		return 0;
	fprintf(stderr, "error: cannot open the %s store (see the log above)\n", what);
	return 1;
}

static void print_report(const struct store_mig_report *r)
{
	printf("%-24s %10s %12s %10s %10s %10s\n", "", "source", "destination", "added", "there", "moved");
	for (int i = 0; i < STORE_MIG_TABLES; i++) {
		const struct store_mig_table *t = &r->t[i];
		printf("%-24s %10lld %12lld %10lld %10lld %10lld\n", t->name, (long long)t->source, (long long)t->dest,
		       (long long)t->added, (long long)t->same, (long long)t->replaced);
	}
	printf("blob bytes copied: %lld in %lld blobs (%lld already in the destination's backend)\n",
	       (long long)r->bytes_copied, (long long)r->blobs_copied, (long long)r->blobs_present);
}

int cli_migrate_main(int argc, char **argv)
{
	const char *config = NULL, *root = NULL, *to = NULL;
	int force = 0, verify = 0, lock_fd = -1, rc = 1;
	struct cli_opt opts[] = {
		{ "--to", NULL, NULL, &to },
		{ "--force", NULL, &force, NULL },
		{ "--verify", NULL, &verify, NULL },
		{ "-c", "--config", NULL, &config },
		{ "--root", NULL, NULL, &root },
		{ "-h", "--help", NULL, NULL },
		{ NULL, NULL, NULL, NULL },
	};
	struct config src = { 0 }, dst = { 0 };
	struct store *from = NULL, *into = NULL;
	int prc = cli_parse_opts(argc - 1, argv + 1, opts, NULL, migrate_usage);
	if (prc)
		return prc < 0 ? 0 : prc;
	if (!to)
		return cli_usage_error(migrate_usage, "migrate wants --to CONFIG, the destination's config file");
	log_set_level(LOG_WARN);
	if (load(&src, config, root) || load(&dst, to, NULL))
		goto out;
	if (src.database.url || src.storage_backend == CONFIG_BACKEND_S3) {
		fprintf(stderr, "error: the source must be a single node (SQLite and blobs in its data directory)\n");
		goto out;
	}
	if (!dst.database.url) {
		fprintf(stderr, "error: %s names no database.url: the destination must be a PostgreSQL database\n", to);
		goto out;
	}
	if (datadir_check(src.root))
		goto out;
	/* the daemon holds this lock while it runs: the source must not change under the copy */
	if (datadir_lock(src.root, &lock_fd)) {
		fprintf(stderr, "error: stop the registry on %s first\n", src.root);
		lock_fd = -1;
		goto out;
	}
	if (open_store(&src, "source", &from) || open_store(&dst, "destination", &into))
		goto out;
	struct store_mig_opts mo = { .replace = force, .verify = verify, .on_problem = on_problem,
				     .on_progress = on_progress };
	struct store_mig_report r;
	int mrc = store_migrate(from, into, &mo, &r);
	if (mrc == E_EXISTS) {
		fprintf(stderr, "error: the destination has %lld conflicting row%s (listed above); nothing was copied. "
				"--force moves tags; other conflicts need a destination without them\n",
			(long long)r.conflicts, r.conflicts == 1 ? "" : "s");
		goto out;
	}
	print_report(&r);
	if (mrc) {
		fprintf(stderr, "error: the copy stopped: %s; run berth migrate again to go on\n", err_desc(mrc)->message);
	} else if (r.problems) {
		fprintf(stderr, "error: the verification found %lld problem%s (listed above)\n", (long long)r.problems,
			r.problems == 1 ? "" : "s");
	} else {
		printf("verified: every row and blob of this registry is in the destination%s\n",
		       verify ? " (blobs re-hashed)" : "");
		printf("next: berth fsck -c %s%s, then start the cluster's nodes\n", to, verify ? "" : " --verify");
		rc = 0;
	}
out:
	store_close(into);
	store_close(from);
	if (lock_fd >= 0)
		datadir_unlock(lock_fd);
	config_release(&dst);
	config_release(&src);
	return rc;
}
