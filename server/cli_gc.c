/*
 * cli_gc: `berth gc` and `berth fsck`, storage maintenance from the command
 * line on the data directory of a (possibly running) registry.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "gcsched.h"
#include "store.h"

static const char gc_usage[] =
	"usage: berth gc [--dry-run] [--json] [--verbose] [-c FILE] [--root DIR]\n"
	"\n"
	"  --dry-run  report what would be deleted; change nothing\n"
	"  --json     print the summary as one JSON object\n"
	"  --verbose  list every manifest, link, blob and upload deleted\n"
	"  -c FILE    config file of the registry (env BERTH_CONFIG)\n"
	"  --root     its data directory (env BERTH_ROOT), as given to berth serve\n";

static const char fsck_usage[] =
	"usage: berth fsck [--repair] [--verify] [--json] [--verbose] [-c FILE] [--root DIR]\n"
	"\n"
	"  --repair   remove what is provably orphaned: blob files no metadata refers to and\n"
	"             stray files under blobs/ (older than gc.grace), and stale uploads\n"
	"             (an object store: objects nothing refers to, and stale uploads)\n"
	"  --verify   an object store: read and re-hash every blob (a data directory's\n"
	"             files are always re-hashed)\n"
	"  --json     print the result as one JSON object\n"
	"  --verbose  also list notes (fresh orphans, idle uploads)\n"
	"  -c FILE    config file of the registry (env BERTH_CONFIG)\n"
	"  --root     its data directory (env BERTH_ROOT), as given to berth serve\n"
	"exit status: 0 when no problem is left, 1 otherwise\n";

struct args {
	const char *config, *root, *grace;
	int flag, json, verbose; /* flag: --dry-run or --repair */
	int verify;              /* fsck --verify */
};

/*
 * --grace DURATION (not in the usage text) overrides gc.grace for this run,
 * below its one-minute minimum too: for tests that cannot wait a minute. A
 * grace shorter than a push takes can cost a push in progress its blobs.
 */
static int parse_args(int argc, char **argv, const char *flag, const char *usage, struct args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, flag))
			a->flag = 1;
		else if (!strcmp(o, "--verify") && !strcmp(flag, "--repair"))
			a->verify = 1;
		else if (!strcmp(o, "--json"))
			a->json = 1;
		else if (!strcmp(o, "--verbose") || !strcmp(o, "-v"))
			a->verbose = 1;
		else if ((!strcmp(o, "-c") || !strcmp(o, "--config")) && i + 1 < argc)
			a->config = argv[++i];
		else if (!strcmp(o, "--root") && i + 1 < argc)
			a->root = argv[++i];
		else if (!strcmp(o, "--grace") && i + 1 < argc)
			a->grace = argv[++i];
		else if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			fputs(usage, stdout);
			return -1;
		} else {
			return cli_usage_error(usage, "unknown or incomplete option \"%s\"", o);
		}
	}
	return 0;
}

/* The grace period in force: the config's, or --grace. */
static int grace_of(const struct args *a, const struct config *c, int64_t *grace_s)
{
	unsigned secs;
	const char *why;
	*grace_s = c->gc_grace_s;
	if (!a->grace)
		return 0;
	if (config_duration_parse(a->grace, &secs, &why)) {
		fprintf(stderr, "error: --grace: %s\n", why);
		return 2;
	}
	*grace_s = secs;
	return 0;
}

struct gc_out {
	const struct args *a;
	int dry;
	struct buf items; /* JSON array elements */
};

static const char *const kind_names[] = { "manifest", "link", "blob", "upload" };

static void on_item(void *ctx, const struct gc_item *it)
{
	struct gc_out *g = ctx;
	if (!g->a->verbose)
		return;
	if (g->a->json) {
		if (g->items.len)
			buf_addch(&g->items, ',');
		buf_addf(&g->items, "{\"kind\":\"%s\",\"repository\":", kind_names[it->kind]);
		buf_add_json_str(&g->items, it->repo);
		buf_adds(&g->items, ",\"name\":");
		buf_add_json_str(&g->items, it->name);
		buf_addf(&g->items, ",\"size\":%lld}", (long long)it->size);
		return;
	}
	struct buf size = BUF_INIT;
	gc_human_size(it->size, &size);
	printf("%s%-8s  %s%s%s  %s\n", g->dry ? "would delete " : "deleted ", kind_names[it->kind],
	       it->repo ? it->repo : "", it->repo ? "  " : "", it->name, size.buf);
	buf_release(&size);
}

int cli_gc_main(int argc, char **argv)
{
	struct args a = { 0 };
	struct cli cli;
	struct gc_opts o;
	struct gc_report r;
	struct buf out = BUF_INIT;
	int64_t grace;
	int rc = parse_args(argc, argv, "--dry-run", gc_usage, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (cli_open(&cli, a.config, a.root))
		return 1;
	if ((rc = grace_of(&a, &cli.reg.snap->cfg, &grace)))
		goto out;
	struct gc_out g = { &a, a.flag, BUF_INIT };
	gcsched_opts(&cli.reg.snap->cfg, &o);
	gc_opts_init(&o, o.history_s, o.untagged_s, grace, o.upload_ttl_s);
	o.dry_run = a.flag;
	o.on_item = on_item;
	o.ctx = &g;
	int err = store_gc(cli.reg.store, &o, &r);
	if (r.busy) {
		fprintf(stderr, "error: another garbage collection is running on %s\n",
			cli.reg.snap->cfg.database.url ? "the cluster's database" : "this data directory");
		rc = 1;
	} else {
		if (a.json) {
			gc_report_json(&r, &out);
			if (a.verbose) {
				buf_setlen(&out, out.len - 1);
				buf_addf(&out, ",\"items\":[%s]}", g.items.buf);
			}
		} else {
			gc_report_text(&r, &out);
		}
		printf("%s\n", out.buf);
		gcsched_record(cli.reg.store, &r, 1);
		if (err) {
			fprintf(stderr, "error: the collection stopped early: %s\n", err_desc(err)->message);
			rc = 1;
		}
	}
	buf_release(&g.items);
out:
	buf_release(&out);
	cli_close(&cli);
	return rc;
}

static const char *plural(int64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

struct fsck_out {
	const struct args *a;
	struct buf items;
};

static void on_problem(void *ctx, const struct fsck_problem *p)
{
	struct fsck_out *f = ctx;
	if (p->note && !f->a->verbose)
		return;
	if (f->a->json) {
		if (f->items.len)
			buf_addch(&f->items, ',');
		buf_addf(&f->items, "{\"kind\":\"%s\",\"repository\":", p->kind);
		buf_add_json_str(&f->items, p->repo);
		buf_adds(&f->items, ",\"name\":");
		buf_add_json_str(&f->items, p->name);
		buf_adds(&f->items, ",\"detail\":");
		buf_add_json_str(&f->items, p->detail);
		buf_addf(&f->items, ",\"note\":%s,\"repaired\":%s}", p->note ? "true" : "false",
			 p->repaired ? "true" : "false");
		return;
	}
	printf("%s%-9s %s%s%s%s%s%s\n", p->note ? "note: " : "", p->kind, p->repo ? p->repo : "", p->repo ? " " : "",
	       p->name ? p->name : "", p->name ? ": " : "", p->detail, p->repaired ? " [repaired]" : "");
}

int cli_fsck_main(int argc, char **argv)
{
	struct args a = { 0 };
	struct cli cli;
	struct fsck_report r;
	struct buf size = BUF_INIT;
	int rc = parse_args(argc, argv, "--repair", fsck_usage, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (cli_open(&cli, a.config, a.root))
		return 1;
	struct fsck_out f = { &a, BUF_INIT };
	struct fsck_opts o = { .repair = a.flag, .verify = a.verify, .upload_ttl_s = cli.reg.snap->cfg.upload_ttl_s,
			       .on_problem = on_problem, .ctx = &f };
	if ((rc = grace_of(&a, &cli.reg.snap->cfg, &o.grace_s)))
		goto out;
	int err = store_fsck(cli.reg.store, &o, &r);
	int64_t left = r.problems - r.repaired;
	if (a.json) {
		printf("{\"ok\":%s,\"files\":%lld,\"bytes\":%lld,\"contents\":%lld,\"content_bytes\":%lld,"
		       "\"blobs\":%lld,\"manifests\":%lld,\"uploads\":%lld,"
		       "\"problems\":%lld,\"repaired\":%lld,\"notes\":%lld,\"error\":",
		       !err && !left ? "true" : "false", (long long)r.files, (long long)r.bytes,
		       (long long)r.contents, (long long)r.content_bytes, (long long)r.blobs,
		       (long long)r.manifests, (long long)r.uploads, (long long)r.problems, (long long)r.repaired,
		       (long long)r.notes);
		struct buf e = BUF_INIT;
		if (err)
			buf_add_json_str(&e, err_desc(err)->message);
		printf("%s,\"items\":[%s]}\n", err ? e.buf : "null", f.items.buf);
		buf_release(&e);
	} else {
		gc_human_size(r.bytes, &size);
		printf("fsck: %s: %lld blob %s (%s) and %lld %s in the database re-hashed, %lld blob %s, %lld %s, "
		       "%lld %s checked",
		       err ? "incomplete" : left ? "PROBLEMS" : "ok", (long long)r.files, plural(r.files, "file", "files"),
		       size.buf, (long long)r.contents, plural(r.contents, "content", "contents"), (long long)r.blobs, plural(r.blobs, "record", "records"), (long long)r.manifests,
		       plural(r.manifests, "manifest", "manifests"), (long long)r.uploads,
		       plural(r.uploads, "upload", "uploads"));
		printf("; %lld %s", (long long)r.problems, plural(r.problems, "problem", "problems"));
		if (a.flag)
			printf(" (%lld repaired)", (long long)r.repaired);
		printf("\n");
		if (err)
			fprintf(stderr, "error: the check could not finish: %s\n", err_desc(err)->message);
	}
	rc = err || left ? 1 : 0;
out:
	buf_release(&f.items);
	buf_release(&size);
	cli_close(&cli);
	return rc;
}
