/*
 * store_browse: what the web interface and its JSON views read that the
 * registry API does not give: repositories with their last push, tag count
 * and size; tags with push time, pusher and image size. Read-only verbs of
 * the struct store (store.h), answered by the metadata module.
 *
 * Pages are keyset-paginated: a page continues after the last row of the
 * previous one (its sort value and name), never by an offset, so the cost
 * of a page does not grow with its position among 100,000 repositories.
 *
 * Ownership as in store.h: strings passed in are borrowed for the call;
 * the summaries handed to callbacks are valid only during the callback; a
 * non-zero callback result stops the walk and is returned. Thread-safe.
 * Like store.h, this header is copied into server/'s build directory.
 */
#ifndef BERTH_STORE_BROWSE_H
#define BERTH_STORE_BROWSE_H

#include <stdint.h>

#include "store.h"

enum store_browse_sort {
	STORE_SORT_NAME = 0,
	STORE_SORT_PUSHED, /* last push (repositories), last move (tags) */
	STORE_SORT_SIZE,
};

/* Which page: the order, where it starts, which names it holds, how many rows. */
struct store_browse_page {
	enum store_browse_sort sort;
	int desc;
	/* the previous page's last row: its sort value (ignored for STORE_SORT_NAME) and name; NULL: first page */
	const char *after_name;
	int64_t after_value;
	const char *contains; /* only names holding this (tags: ignoring ASCII case); NULL or "": all */
	long n;               /* rows wanted, > 0 */
};

/* One repository; size counts every blob and manifest its manifests reference once. */
struct store_repo_summary {
	const char *name;
	int64_t pushed_ms; /* last tag move or manifest push; 0 when none */
	int64_t tags;
	int64_t size;
};

/*
 * Repositories in pg's order; filter (may be NULL) returns non-zero for
 * the ones to include (rows it drops do not count towards pg->n). *more
 * is set when a further included row exists.
 */
int store_browse_repos(struct store *st, const struct store_browse_page *pg, store_str_cb filter, void *fctx,
		       int (*cb)(void *ctx, const struct store_repo_summary *r), void *ctx, int *more);

/* One tag; size is the image's: its manifest, config and layers (an index: its images'), each once. */
struct store_tag_summary {
	const char *name;
	const char *digest;
	const char *media_type;
	const char *pusher; /* who made the last move; NULL when anonymous or unknown */
	int64_t pushed_ms;  /* last move */
	int64_t size;
};

/* Tags of repo in pg's order (STORE_SORT_NAME, _PUSHED or _SIZE); E_NAME_UNKNOWN. */
int store_browse_tags(struct store *st, const char *repo, const struct store_browse_page *pg,
		      int (*cb)(void *ctx, const struct store_tag_summary *t), void *ctx, int *more);

/*
 * Tags of repo pointing at manifest digest (a digest string), in name
 * order, at most n; *more is set when further ones exist. None is no error.
 */
int store_browse_tags_at(struct store *st, const char *repo, const char *digest, long n, store_str_cb cb, void *ctx,
			 int *more);

#endif
