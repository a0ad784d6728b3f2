/*
 * fuzz_scope: libFuzzer target for token scopes (auth/scope.c) and the
 * repository globs they carry (common/glob.c): actions_parse(),
 * actions_format(), scope_parse(), scopes_check(), scopes_actions() and
 * glob_match().
 *
 * Input layout: "<scope text>\n<repository name>". Actions never leave
 * ACTION_ALL and survive a format/parse round trip; a parsed scope names a
 * valid repository or the catalog; a refused scope list says why; adding
 * "repository:**:*" to a list grants everything on any valid name. For a
 * valid glob and a valid name, glob_match() must agree with a plain
 * dynamic-programming matcher written here. Seeds live in corpus/scope/.
 */
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "err.h"
#include "fuzz.h"
#include "glob.h"
#include "names.h"
#include "scope.h"

/* Longest glob or name compared with the reference matcher. */
#define SCOPE_REF_MAX 96

/* '*' within one component: table[i][j] = g[i..] matches n[j..]. */
static int scope_ref_component(const char *g, size_t gl, const char *n, size_t nl)
{
	unsigned char t[SCOPE_REF_MAX + 1][SCOPE_REF_MAX + 1];
	for (size_t i = gl + 1; i-- > 0;) {
		for (size_t j = nl + 1; j-- > 0;) {
			if (i == gl)
				t[i][j] = j == nl;
			else if (g[i] == '*')
				t[i][j] = t[i + 1][j] || (j < nl && t[i][j + 1]);
			else
				t[i][j] = j < nl && g[i] == n[j] && t[i + 1][j + 1];
		}
	}
	return t[0][0];
}

struct scope_comps {
	const char *at[SCOPE_REF_MAX];
	size_t len[SCOPE_REF_MAX];
	size_t n;
};

static void scope_split(const char *s, struct scope_comps *c)
{
	c->n = 0;
	for (const char *p = s;;) {
		size_t l = strcspn(p, "/");
		c->at[c->n] = p;
		c->len[c->n++] = l;
		if (!p[l])
			break;
		p += l + 1;
	}
}

/* "**" as a whole component matches any number of components. */
static int scope_ref_glob(const char *glob, const char *name)
{
	struct scope_comps g, n;
	unsigned char t[SCOPE_REF_MAX + 1][SCOPE_REF_MAX + 1];
	scope_split(glob, &g);
	scope_split(name, &n);
	for (size_t i = g.n + 1; i-- > 0;) {
		for (size_t j = n.n + 1; j-- > 0;) {
			if (i == g.n)
				t[i][j] = j == n.n;
			else if (g.len[i] == 2 && !memcmp(g.at[i], "**", 2))
				t[i][j] = t[i + 1][j] || (j < n.n && t[i][j + 1]);
			else
				t[i][j] = j < n.n && t[i + 1][j + 1] &&
					  scope_ref_component(g.at[i], g.len[i], n.at[j], n.len[j]);
		}
	}
	return t[0][0];
}

static void scope_check_actions(const char *s)
{
	struct buf b = BUF_INIT;
	unsigned a = actions_parse(s);
	FUZZ_ASSERT((a & ~(unsigned)ACTION_ALL) == 0);
	actions_format(a, &b);
	FUZZ_ASSERT(actions_parse(b.buf) == a);
	buf_release(&b);
}

static void scope_check_request(const char *s)
{
	struct scope sc;
	int rc = scope_parse(s, &sc);
	FUZZ_ASSERT(rc == 0 || rc == E_BAD_REQUEST);
	if (rc) {
		FUZZ_ASSERT(!sc.type && !sc.name);
		return;
	}
	FUZZ_ASSERT((sc.actions & ~(unsigned)ACTION_ALL) == 0);
	if (!strcmp(sc.type, "repository"))
		FUZZ_ASSERT(name_check(sc.name, strlen(sc.name)) == 0);
	else
		FUZZ_ASSERT(!strcmp(sc.type, "registry") && !strcmp(sc.name, "catalog"));
	scope_release(&sc);
	FUZZ_ASSERT(!sc.type && !sc.name);
}

static void scope_check_pat(const char *s, const char *repo)
{
	struct buf err = BUF_INIT, more = BUF_INIT;
	int valid_repo = name_check(repo, strlen(repo)) == 0;
	int rc = scopes_check(s, &err);
	unsigned a = scopes_actions(s, repo);
	FUZZ_ASSERT(rc == 0 || rc == E_CONFIG);
	FUZZ_ASSERT((rc == 0) == (err.len == 0));
	FUZZ_ASSERT((a & ~(unsigned)ACTION_ALL) == 0);
	if (!s[strspn(s, " ")])
		FUZZ_ASSERT(a == ACTION_ALL);
	buf_addf(&more, "%s repository:**:*", s);
	FUZZ_ASSERT(!valid_repo || scopes_actions(more.buf, repo) == ACTION_ALL);
	FUZZ_ASSERT(scopes_actions(NULL, repo) == ACTION_ALL);
	buf_release(&more);
	buf_release(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	char *nl = strchr(s, '\n');
	const char *repo = "team-a/app";
	if (nl) {
		*nl = '\0';
		repo = nl + 1;
		if ((nl = strchr(nl + 1, '\n')))
			*nl = '\0';
	}
	scope_check_actions(s);
	scope_check_request(s);
	scope_check_pat(s, repo);
	(void)glob_match(s, repo);
	if (strlen(s) <= SCOPE_REF_MAX && strlen(repo) <= SCOPE_REF_MAX && !config_glob_check(s, NULL) &&
	    !name_check(repo, strlen(repo)))
		FUZZ_ASSERT(glob_match(s, repo) == scope_ref_glob(s, repo));
	free(s);
	return 0;
}
