/* meta_stats: aggregate counts for monitoring. */
#include <string.h>

#include "meta.h"
#include "meta_internal.h"

/*
 * One statement, several aggregates. Counting scans whole tables; a scrape
 * every few seconds on a registry with a million blobs is still cheap next
 * to the scrape interval, and no counter can drift from the truth.
 */
static const struct meta_query q_stats = { .id = MS_STATS, .sql =
	"SELECT (SELECT count(*) FROM blobs), (SELECT coalesce(sum(size), 0) FROM blobs),"
	" (SELECT count(DISTINCT repo_id) FROM blob_links),"
	" (SELECT count(*) FROM manifests), (SELECT count(*) FROM tags),"
	" (SELECT count(*) FROM uploads),"
	" (SELECT count(*) FROM audit_events WHERE action = 'gc'),"
	" (SELECT coalesce(sum(json_extract(detail, '$.bytes_freed')), 0) FROM audit_events WHERE action = 'gc')",
	/* the same; only the JSON function differs */
	.pg = "SELECT (SELECT count(*) FROM blobs), (SELECT coalesce(sum(size), 0) FROM blobs),"
	" (SELECT count(DISTINCT repo_id) FROM blob_links),"
	" (SELECT count(*) FROM manifests), (SELECT count(*) FROM tags),"
	" (SELECT count(*) FROM uploads),"
	" (SELECT count(*) FROM audit_events WHERE action = 'gc'),"
	" (SELECT coalesce(sum((detail::jsonb ->> 'bytes_freed')::numeric), 0) FROM audit_events"
	"  WHERE action = 'gc')" };

static int stats_row(struct db_stmt *s, void *arg)
{
	struct meta_stats *out = arg;
	int64_t *f[] = { &out->blobs, &out->blob_bytes, &out->repos, &out->manifests,
			 &out->tags, &out->uploads, &out->gc_runs, &out->gc_bytes_freed };
	for (int i = 0; i < (int)(sizeof(f) / sizeof(f[0])); i++)
		*f[i] = db_col_int64(s, i);
	return 0;
}

int meta_stats(struct meta *m, struct meta_stats *out)
{
	memset(out, 0, sizeof(*out));
	return meta_each(m, &q_stats, NULL, NULL, stats_row, out);
}
