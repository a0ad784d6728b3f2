/*
 * cli_audit: `berth audit`, the audit log read from the data directory of
 * a (possibly running) registry, oldest first, as a table or JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "clock.h"
#include "err.h"
#include "store.h"
#include "names.h"
#include "xalloc.h"

static const char audit_usage[] =
	"usage: berth audit [--since DURATION|TIME] [--repo REPO] [--limit N] [--json] [-c FILE] [--root DIR]\n"
	"\n"
	"  --since  events of the last DURATION (30m, 12h, 7d) or since TIME (UTC:\n"
	"           2024-05-01, 2024-05-01T12:00:00Z); default: all\n"
	"  --repo   only the events of this repository\n"
	"  --limit  only the N most recent of those events (still shown oldest first)\n"
	"  -c FILE  config file of the registry (env BERTH_CONFIG)\n"
	"  --root   its data directory (env BERTH_ROOT), as given to berth serve\n";

struct audit_args {
	const char *config, *root, *since, *repo, *limit;
	int json;
};

/* One event kept for --limit; owns its strings. */
struct kept {
	int64_t id, time_ms;
	char *actor, *action, *repo, *detail, *client;
};

struct audit_out {
	int json;
	long count;
	long limit;        /* < 0: print as they come */
	struct kept *ring; /* limit slots, the most recent events */
	long next;         /* events seen (next ring slot is next % limit) */
};

static int parse_args(int argc, char **argv, struct audit_args *a)
{
	const struct cli_opt opts[] = {
		{ "--json", NULL, &a->json, NULL },
		{ "--help", "-h", NULL, NULL },
		{ "--config", "-c", NULL, &a->config },
		{ "--root", NULL, NULL, &a->root },
		{ "--since", NULL, NULL, &a->since },
		{ "--repo", NULL, NULL, &a->repo },
		{ "--limit", NULL, NULL, &a->limit },
		{ 0 },
	};
	return cli_parse_opts(argc, argv, opts, NULL, audit_usage);
}

/* --since: a duration back from now, or a UTC date or time. */
static int parse_since(const char *s, int64_t *since_ms)
{
	static const char *formats[] = { "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d" };
	unsigned secs;
	if (!config_duration_parse(s, &secs, NULL)) {
		*since_ms = clock_wall_ms() - (int64_t)secs * 1000;
		return 0;
	}
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(s, formats[i], &tm);
		if (end && !*end) {
			*since_ms = (int64_t)timegm(&tm) * 1000;
			return 0;
		}
	}
	return -1;
}

static void json_field(struct buf *b, const char *key, const char *value)
{
	buf_addf(b, ",\"%s\":", key);
	buf_add_json_str(b, value);
}

static void print_event(struct audit_out *o, const struct store_audit *ev)
{
	struct buf b = BUF_INIT;
	char when[40];
	cli_fmt_time(ev->time_ms, when, sizeof(when));
	if (o->json) {
		buf_addf(&b, "%s{\"id\":%lld,\"time\":\"%s\"", o->count ? "," : "", (long long)ev->id, when);
		json_field(&b, "actor", ev->actor);
		json_field(&b, "action", ev->action);
		json_field(&b, "repo", ev->repo);
		json_field(&b, "client", ev->client);
		/* stored only after it was checked to be a JSON object */
		buf_addf(&b, ",\"detail\":%s}", ev->detail ? ev->detail : "null");
	} else {
		buf_addf(&b, "%-24s  %-24s  %-13s  %-30s  %-15s  %s\n", when, ev->actor ? ev->actor : "anonymous",
			 ev->action, ev->repo ? ev->repo : "-", ev->client ? ev->client : "-",
			 ev->detail ? ev->detail : "");
	}
	fputs(b.buf, stdout);
	buf_release(&b);
	o->count++;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void kept_release(struct kept *k)
{
	free(k->actor);
	free(k->action);
	free(k->repo);
	free(k->detail);
	free(k->client);
	memset(k, 0, sizeof(*k));
}

static int on_event(void *ctx, const struct store_audit *ev)
{
	struct audit_out *o = ctx;
	if (o->limit < 0) {
		print_event(o, ev);
		return 0;
	}
	if (!o->limit)
		return 0;
	struct kept *k = &o->ring[o->next++ % o->limit];
	kept_release(k);
	*k = (struct kept){ ev->id, ev->time_ms, dup_or_null(ev->actor), dup_or_null(ev->action),
			    dup_or_null(ev->repo), dup_or_null(ev->detail), dup_or_null(ev->client) };
	return 0;
}

/* Prints what the ring kept, oldest first, and empties it. */
static void flush_ring(struct audit_out *o)
{
	long n = o->next < o->limit ? o->next : o->limit;
	for (long i = 0; i < n; i++) {
		struct kept *k = &o->ring[(o->next - n + i) % o->limit];
		struct store_audit ev = { k->id, k->time_ms, k->actor, k->action, k->repo, k->detail, k->client };
		print_event(o, &ev);
		kept_release(k);
	}
}

int cli_audit_main(int argc, char **argv)
{
	struct audit_args a = { 0 };
	struct audit_out o = { 0 };
	struct cli cli;
	int64_t since = 0;
	int rc;
	if ((rc = parse_args(argc - 1, argv + 1, &a)))
		return rc < 0 ? 0 : rc; /* -1: help was asked for */
	if (a.since && parse_since(a.since, &since))
		return cli_usage_error(audit_usage, "--since wants a duration (7d) or a UTC time "
				       "(2024-05-01T12:00:00Z), not \"%s\"", a.since);
	if (a.repo && name_check(a.repo, strlen(a.repo)))
		return cli_usage_error(audit_usage, "\"%s\" is not a valid repository name", a.repo);
	o.json = a.json;
	o.limit = -1;
	if (a.limit) {
		char *end;
		o.limit = strtol(a.limit, &end, 10);
		if (*end || end == a.limit || o.limit < 0 || o.limit > 1000000)
			return cli_usage_error(audit_usage, "--limit wants a number from 0 to 1000000, not \"%s\"", a.limit);
		o.ring = xcalloc((size_t)o.limit + 1, sizeof(*o.ring));
	}
	if (cli_open(&cli, a.config, a.root)) {
		free(o.ring);
		return 1;
	}
	if (o.json)
		fputs("{\"events\":[", stdout);
	else
		printf("%-24s  %-24s  %-13s  %-30s  %-15s  %s\n", "TIME", "ACTOR", "ACTION", "REPO", "CLIENT", "DETAIL");
	rc = store_audit_list(cli.reg.store, since, a.repo, -1, on_event, &o);
	if (o.limit >= 0)
		flush_ring(&o);
	if (o.json)
		puts("]}");
	if (rc)
		fprintf(stderr, "error: cannot read the audit log (%s)\n", err_desc(rc)->message);
	cli_close(&cli);
	free(o.ring);
	return rc ? 1 : 0;
}
