/* glob: repository and tag globs matched against names. */
#include "glob.h"

#include <stdint.h>
#include <string.h>

/* One component (no '/'): '*' matches any run of characters, including none. */
static int component_match(const char *g, size_t gl, const char *n, size_t nl)
{
	size_t gi = 0, ni = 0, star_g = SIZE_MAX, star_n = 0;
	/* Greedy with one backtrack point: the last '*' absorbs one more character on a mismatch. */
	while (ni < nl) {
		if (gi < gl && g[gi] == '*') {
			star_g = ++gi;
			star_n = ni;
		} else if (gi < gl && g[gi] == n[ni]) {
			gi++;
			ni++;
		} else if (star_g != SIZE_MAX) {
			gi = star_g;
			ni = ++star_n;
		} else {
			return 0;
		}
	}
	while (gi < gl && g[gi] == '*')
		gi++;
	return gi == gl;
}

/*
 * A cursor over '/'-separated components; at == NULL once past the last
 * one. "" has no components; "a/" has two, the second empty.
 */
struct comp {
	const char *at;
	size_t len;
};

static struct comp comp_at(const char *s)
{
	return (struct comp){ s, strcspn(s, "/") };
}

static struct comp comp_first(const char *s)
{
	return *s ? comp_at(s) : (struct comp){ NULL, 0 };
}

static struct comp comp_next(struct comp c)
{
	return c.at[c.len] == '/' ? comp_at(c.at + c.len + 1) : (struct comp){ NULL, 0 };
}

static int is_double_star(struct comp c)
{
	return c.at && c.len == 2 && c.at[0] == '*' && c.at[1] == '*';
}

int glob_match(const char *glob, const char *name)
{
	struct comp g = comp_first(glob), n = comp_first(name);
	struct comp star_g = { NULL, 0 }, star_n = { NULL, 0 };
	int have_star = 0;
	/*
	 * The same greedy scheme as component_match, one level up: components
	 * are the symbols and "**" the star. Linear in practice, never
	 * exponential, whatever the glob.
	 */
	while (n.at) {
		if (is_double_star(g)) {
			have_star = 1;
			star_g = comp_next(g);
			star_n = n;
			g = star_g;
		} else if (g.at && component_match(g.at, g.len, n.at, n.len)) {
			g = comp_next(g);
			n = comp_next(n);
		} else if (have_star) {
			star_n = comp_next(star_n);
			n = star_n;
			g = star_g;
		} else {
			return 0;
		}
	}
	while (is_double_star(g))
		g = comp_next(g);
	return g.at == NULL;
}
