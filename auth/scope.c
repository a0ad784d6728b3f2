/* scope: action sets, token request scopes and personal access token scopes. */
#include "scope.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "names.h"
#include "glob.h"
#include "xalloc.h"

unsigned actions_parse(const char *list)
{
	unsigned acts = 0;
	const char *p = list;
	while (*p) {
		size_t n = strcspn(p, ",");
		acts |= action_from_name(p, n);
		p += n;
		if (*p == ',')
			p++;
	}
	return acts;
}

void actions_format(unsigned actions, struct buf *out)
{
	int first = 1;
	for (unsigned bit = 1; bit & ACTION_ALL; bit <<= 1) {
		if (!(actions & bit))
			continue;
		if (!first)
			buf_addch(out, ',');
		buf_adds(out, action_name(bit));
		first = 0;
	}
}

int scope_parse(const char *s, struct scope *out)
{
	const char *c1 = strchr(s, ':'), *c2 = strrchr(s, ':');
	memset(out, 0, sizeof(*out));
	if (!c1 || c1 == c2 || c1 == s || c2 == c1 + 1 || strlen(s) > 512)
		return E_BAD_REQUEST;
	out->type = xstrndup(s, (size_t)(c1 - s));
	out->name = xstrndup(c1 + 1, (size_t)(c2 - c1 - 1));
	out->actions = actions_parse(c2 + 1);
	if (!strcmp(out->type, "repository")) {
		if (name_check(out->name, strlen(out->name)))
			goto bad;
	} else if (!strcmp(out->type, "registry")) {
		if (strcmp(out->name, "catalog"))
			goto bad;
	} else {
		goto bad;
	}
	return 0;
bad:
	scope_release(out);
	return E_BAD_REQUEST;
}

void scope_release(struct scope *sc)
{
	free(sc->type);
	free(sc->name);
	sc->type = sc->name = NULL;
}

/* Calls fn on each "repository:<glob>:<actions>" entry; stops on non-zero. */
static int each_entry(const char *scopes, int (*fn)(void *ctx, const char *glob, size_t glen, const char *acts, size_t alen),
		      void *ctx)
{
	const char *p = scopes;
	while (*p) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (!n)
			break;
		const char *colon = memchr(p, ':', n);
		const char *last = NULL;
		for (size_t i = n; i > 0; i--)
			if (p[i - 1] == ':') {
				last = p + i - 1;
				break;
			}
		int rc;
		if (!colon || colon == last || (size_t)(colon - p) != strlen("repository") ||
		    memcmp(p, "repository", strlen("repository")))
			rc = fn(ctx, NULL, 0, NULL, 0);
		else
			rc = fn(ctx, colon + 1, (size_t)(last - colon - 1), last + 1, (size_t)(p + n - last - 1));
		if (rc)
			return rc;
		p += n;
	}
	return 0;
}

struct check_ctx {
	struct buf *err;
};

static int check_one(void *ctx, const char *glob, size_t glen, const char *acts, size_t alen)
{
	struct check_ctx *cc = ctx;
	if (!glob || !glen || !alen) {
		buf_adds(cc->err, "scope entries look like repository:<glob>:<actions>");
		return E_CONFIG;
	}
	for (size_t i = 0; i < glen; i++) {
		char c = glob[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("._-/*", c))) {
			buf_addf(cc->err, "invalid character '%c' in repository glob", c);
			return E_CONFIG;
		}
	}
	char *a = xstrndup(acts, alen);
	unsigned bits = actions_parse(a);
	free(a);
	if (!bits) {
		buf_adds(cc->err, "scope actions must be among pull, push, delete or *");
		return E_CONFIG;
	}
	return 0;
}

int scopes_check(const char *scopes, struct buf *err)
{
	struct check_ctx cc = { err };
	return each_entry(scopes, check_one, &cc);
}

struct acts_ctx {
	const char *repo;
	unsigned acts;
	int any;
};

static int acts_one(void *ctx, const char *glob, size_t glen, const char *acts, size_t alen)
{
	struct acts_ctx *ac = ctx;
	ac->any = 1;
	if (!glob)
		return 0;
	char *g = xstrndup(glob, glen), *a = xstrndup(acts, alen);
	if (glob_match(g, ac->repo))
		ac->acts |= actions_parse(a);
	free(g);
	free(a);
	return 0;
}

unsigned scopes_actions(const char *scopes, const char *repo)
{
	struct acts_ctx ac = { repo, 0, 0 };
	if (!scopes)
		return ACTION_ALL;
	each_entry(scopes, acts_one, &ac);
	return ac.any ? ac.acts : ACTION_ALL;
}
