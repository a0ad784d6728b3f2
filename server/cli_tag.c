/*
 * cli_tag: `berth tag ls | history | rollback`, tags looked at and moved
 * back from the command line on the data directory of a (possibly running)
 * registry. Rollbacks are recorded like any tag move (actor "cli") and in
 * the audit log, and obey the immutable-tag rules of the config.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "cli.h"
#include "err.h"
#include "handlers.h"
#include "names.h"
#include "xalloc.h"

static const char tag_usage[] =
	"usage: berth tag ls REPO [--json] [-c FILE] [--root DIR]\n"
	"       berth tag history REPO:TAG [--json] [--no-trunc] [-c FILE] [--root DIR]\n"
	"       berth tag rollback REPO:TAG [--steps N | --to DIGEST] [--dry-run] [--json] [-c FILE] [--root DIR]\n"
	"\n"
	"  rollback  points the tag back at the digest it had before its last move\n"
	"            (--steps N: N moves back; --to: any manifest of the repository);\n"
	"            --dry-run shows what would change and changes nothing\n"
	"  -c FILE   config file of the registry (env BERTH_CONFIG)\n"
	"  --root    its data directory (env BERTH_ROOT), as given to berth serve\n";

/* Digests shown in tables without --no-trunc: the algorithm and this many hex digits. */
#define SHORT_HEX 12

struct tag_args {
	const char *config, *root, *target, *to, *steps;
	int json, dry_run, no_trunc;
	char repo[NAME_MAX_LEN + 1];
	char tag[TAG_MAX_LEN + 1];
};

static int parse_args(int argc, char **argv, struct tag_args *a)
{
	const struct cli_opt opts[] = {
		{ "--json", NULL, &a->json, NULL },
		{ "--dry-run", NULL, &a->dry_run, NULL },
		{ "--no-trunc", NULL, &a->no_trunc, NULL },
		{ "--config", "-c", NULL, &a->config },
		{ "--root", NULL, NULL, &a->root },
		{ "--help", "-h", NULL, NULL },
		{ "--to", NULL, NULL, &a->to },
		{ "--steps", NULL, NULL, &a->steps },
		{ 0 },
	};
	return cli_parse_opts(argc, argv, opts, &a->target, tag_usage);
}

/* Splits REPO or REPO:TAG (tag wanted or not) into a->repo and a->tag, checking both. */
static int parse_target(struct tag_args *a, int want_tag)
{
	const char *t = a->target, *colon;
	if (!t)
		return cli_usage_error(tag_usage, "%s", want_tag ? "REPO:TAG is missing" : "REPO is missing");
	colon = strchr(t, ':');
	size_t nlen = colon ? (size_t)(colon - t) : strlen(t);
	if (!want_tag && colon)
		return cli_usage_error(tag_usage, "\"%s\": give a repository, without a tag", t);
	if (want_tag && !colon)
		return cli_usage_error(tag_usage, "\"%s\": give REPO:TAG", t);
	if (name_check(t, nlen)) {
		fprintf(stderr, "error: \"%.*s\" is not a valid repository name\n", (int)nlen, t);
		return 1;
	}
	memcpy(a->repo, t, nlen);
	a->repo[nlen] = '\0';
	if (colon) {
		if (tag_check(colon + 1, strlen(colon + 1))) {
			fprintf(stderr, "error: \"%s\" is not a valid tag\n", colon + 1);
			return 1;
		}
		memcpy(a->tag, colon + 1, strlen(colon + 1) + 1);
	}
	return 0;
}

/* A digest for a table: "-" for none, shortened unless full. */
static const char *shown(const char *digest, int full, char *out, size_t n)
{
	const char *colon = digest ? strchr(digest, ':') : NULL;
	if (!digest || !*digest)
		return "-";
	if (full || !colon)
		return digest;
	snprintf(out, n, "%.*s%.*s", (int)(colon - digest + 1), digest, SHORT_HEX, colon + 1);
	return out;
}

/* Says what went wrong: the detail when there is one, else the error's message. */
static int fail(int rc, const struct buf *detail, const char *what)
{
	if (rc == E_TAG_IMMUTABLE)
		fprintf(stderr, "error: refused: %s\n", detail->len ? detail->buf : "the tag is immutable");
	else if (detail->len)
		fprintf(stderr, "error: %s\n", detail->buf);
	else
		fprintf(stderr, "error: %s (%s)\n", what, err_desc(rc)->message);
	return 1;
}

/* ---- ls ---- */

struct ls_out {
	int json;
	long count;
	struct buf out; /* printed once complete */
};

static int ls_row(void *ctx, const struct store_tag_info *t)
{
	struct ls_out *o = ctx;
	char when[40];
	cli_fmt_time(t->updated_ms, when, sizeof(when));
	if (o->json) {
		buf_adds(&o->out, o->count ? "," : "");
		buf_adds(&o->out, "{\"tag\":");
		buf_add_json_str(&o->out, t->name);
		buf_adds(&o->out, ",\"digest\":");
		buf_add_json_str(&o->out, t->digest);
		buf_addf(&o->out, ",\"size\":%lld,\"updated\":\"%s\"}", (long long)t->size, when);
	} else {
		buf_addf(&o->out, "%-24s %-71s %10lld  %s\n", t->name, t->digest, (long long)t->size, when);
	}
	o->count++;
	return 0;
}

static int tag_ls(struct cli *cli, struct tag_args *a)
{
	struct ls_out o = { a->json, 0, BUF_INIT };
	struct buf none = BUF_INIT;
	int rc = parse_target(a, 0);
	if (rc)
		return rc;
	if (a->json) {
		buf_adds(&o.out, "{\"name\":");
		buf_add_json_str(&o.out, a->repo);
		buf_adds(&o.out, ",\"tags\":[");
	} else {
		buf_addf(&o.out, "%-24s %-71s %10s  %s\n", "TAG", "DIGEST", "SIZE", "UPDATED");
	}
	rc = store_tag_info(cli->reg.store, a->repo, ls_row, &o);
	if (!rc) {
		buf_adds(&o.out, a->json ? "]}\n" : "");
		fputs(o.out.buf, stdout);
	}
	buf_release(&o.out);
	if (rc == E_NAME_UNKNOWN) {
		fprintf(stderr, "error: repository \"%s\" is not known\n", a->repo);
		return 1;
	}
	return rc ? fail(rc, &none, "cannot list the tags") : 0;
}

/* ---- history ---- */

struct hist_out {
	int full;
	long count;
};

static int history_row(void *ctx, const struct store_tag_event *ev)
{
	struct hist_out *h = ctx;
	char when[40], o[DIGEST_STR_MAX], n[DIGEST_STR_MAX];
	cli_fmt_time(ev->time_ms, when, sizeof(when));
	h->count++;
	printf("%-24s  %-8s  %-24s  %-15s  %s -> %s\n", when, ev->how ? ev->how : "-",
	       ev->actor ? ev->actor : "anonymous", ev->client ? ev->client : "-",
	       shown(ev->old_digest, h->full, o, sizeof(o)), shown(ev->new_digest, h->full, n, sizeof(n)));
	return 0;
}

static int tag_history(struct cli *cli, struct tag_args *a)
{
	struct buf out = BUF_INIT, none = BUF_INIT;
	struct hist_out h = { a->no_trunc, 0 };
	int rc = parse_target(a, 1);
	if (rc)
		return rc;
	if (a->json) {
		rc = h_history_json(cli->reg.store, a->repo, a->tag, &out);
		if (!rc)
			puts(out.buf);
	} else {
		printf("%-24s  %-8s  %-24s  %-15s  %s\n", "TIME", "HOW", "ACTOR", "CLIENT", "FROM -> TO");
		rc = store_tag_history(cli->reg.store, a->repo, a->tag, history_row, &h);
		/* history outlives its repository; only an empty one needs the repository to exist */
		if (!rc && !h.count)
			rc = store_repo_exists(cli->reg.store, a->repo);
	}
	buf_release(&out);
	if (rc == E_NAME_UNKNOWN) {
		fprintf(stderr, "error: repository \"%s\" is not known\n", a->repo);
		return 1;
	}
	return rc ? fail(rc, &none, "cannot read the history") : 0;
}

/* ---- rollback ---- */

/* Prints the references listed under key in the rollback document. */
static void print_refs(json_t *doc, const char *key, const char *title)
{
	json_t *list = json_object_get(doc, key), *it;
	size_t i;
	if (!json_array_size(list))
		return;
	printf("  %s:\n", title);
	json_array_foreach(list, i, it) {
		json_t *size = json_object_get(it, "size");
		printf("    %-8s %s", json_string_value(json_object_get(it, "kind")),
		       json_string_value(json_object_get(it, "digest")));
		if (json_is_integer(size))
			printf("  (%lld bytes)", (long long)json_integer_value(size));
		putchar('\n');
	}
}

/* The human form, read back from the JSON document so both always agree. */
static void print_rollback(const char *repo, const char *tag, const char *text)
{
	json_error_t e;
	json_t *doc = json_loads(text, 0, &e);
	if (!doc) {
		puts(text);
		return;
	}
	const char *from = json_string_value(json_object_get(doc, "from"));
	const char *to = json_string_value(json_object_get(doc, "to"));
	int dry = json_is_true(json_object_get(doc, "dry_run"));
	if (!json_is_true(json_object_get(doc, "moved"))) {
		printf("%s:%s already points at %s: nothing to do\n", repo, tag, to ? to : "-");
		json_decref(doc);
		return;
	}
	printf("%s:%s %s\n", repo, tag, dry ? "would be rolled back (dry run: nothing changed)" : "rolled back");
	printf("  from  %s", from ? from : "(no tag)");
	if (from)
		printf("  (manifest %lld bytes)", (long long)json_integer_value(json_object_get(doc, "from_size")));
	printf("\n  to    %s  (manifest %lld bytes)\n", to ? to : "-",
	       (long long)json_integer_value(json_object_get(doc, "to_size")));
	print_refs(doc, "added", "added (in the target, not in the current image)");
	print_refs(doc, "removed", "removed (in the current image, not in the target)");
	json_decref(doc);
}

static int tag_rollback(struct cli *cli, struct tag_args *a)
{
	struct buf detail = BUF_INIT, out = BUF_INIT;
	struct store_rollback rb;
	struct h_actor who;
	long steps = 1;
	int rc = parse_target(a, 1);
	if (rc)
		return rc;
	if (a->steps && a->to)
		return cli_usage_error(tag_usage, "%s", "give --steps or --to, not both");
	if (a->steps) {
		char *end;
		steps = strtol(a->steps, &end, 10);
		if (*end || end == a->steps || steps < 1 || steps > 1000000)
			return cli_usage_error(tag_usage, "--steps wants a number from 1 to 1000000, not \"%s\"", a->steps);
	}
	h_actor_init(&who, NULL, &cli->reg.snap->cfg, a->repo, "rollback", &detail);
	rc = store_tag_rollback(cli->reg.store, a->repo, a->tag, steps, a->to, a->dry_run, &who.actor, &rb, &detail);
	if (!rc && rb.moved && !a->dry_run)
		audit_event_as(cli->reg.store, "cli", NULL, "rollback", a->repo, "{\"tag\":\"%s\",\"from\":%s%s%s,\"to\":\"%s\"}", a->tag,
			    *rb.from ? "\"" : "", *rb.from ? rb.from : "null", *rb.from ? "\"" : "", rb.to);
	if (!rc)
		rc = h_rollback_json(cli->reg.store, a->repo, a->tag, &rb, a->dry_run, &out);
	if (!rc && a->json)
		puts(out.buf);
	else if (!rc)
		print_rollback(a->repo, a->tag, out.buf);
	else
		fail(rc, &detail, "cannot roll the tag back");
	h_actor_release(&who);
	buf_release(&detail);
	buf_release(&out);
	return rc ? 1 : 0;
}

int cli_tag_main(int argc, char **argv)
{
	struct tag_args a = { 0 };
	struct cli cli;
	int rc;
	if (argc < 2) {
		fputs(tag_usage, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(tag_usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "ls") && strcmp(argv[1], "history") && strcmp(argv[1], "rollback"))
		return cli_usage_error(tag_usage, "unknown tag command \"%s\"", argv[1]);
	if ((rc = parse_args(argc - 2, argv + 2, &a)))
		return rc < 0 ? 0 : rc; /* -1: help was asked for */
	if (strcmp(argv[1], "rollback") && (a.to || a.steps || a.dry_run))
		return cli_usage_error(tag_usage, "--to, --steps and --dry-run go with rollback, not %s", argv[1]);
	if (cli_open(&cli, a.config, a.root))
		return 1;
	if (!strcmp(argv[1], "ls"))
		rc = tag_ls(&cli, &a);
	else if (!strcmp(argv[1], "history"))
		rc = tag_history(&cli, &a);
	else
		rc = tag_rollback(&cli, &a);
	cli_close(&cli);
	return rc;
}
