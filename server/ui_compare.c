/*
 * ui_compare: what two images differ in (layers added, removed and
 * shared, by digest; config fields), and the compare page
 * /ui/r/<name>/_compare?a=REF&b=REF that shows it, also as the preview of
 * a rollback (ui_history.c).
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "handlers.h"
#include "router.h"
#include "ui.h"
#include "ui_image.h"
#include "ui_page.h"
#include "xalloc.h"

/* Parts compared at most per image: past the manifest limit of any real image. */
#define PARTS_MAX 4096

static const char *keep(struct ui_comparison *c, char *s)
{
	c->owned = xgrow(c->owned, &c->nowned_alloc, c->nowned, sizeof(*c->owned));
	c->owned[c->nowned++] = s;
	return s;
}

static void add_part(struct ui_part **v, size_t *n, size_t *alloc, const struct ui_part *p)
{
	*v = xgrow(*v, alloc, *n, sizeof(**v));
	(*v)[(*n)++] = *p;
}

/* The parts of im (layers, or an index's images with their platform) in manifest order. */
static size_t parts_of(struct ui_comparison *c, const struct ui_image *im, struct ui_part **out)
{
	json_t *d;
	size_t i, n = 0, alloc = 0;
	*out = NULL;
	json_array_foreach(ui_image_parts(im), i, d) {
		struct ui_part p = { ui_jstr(d, "digest"), NULL, ui_jint(d, "size") };
		if (i == PARTS_MAX)
			break;
		if (!p.digest)
			continue;
		if (im->is_index) {
			struct buf pl = BUF_INIT;
			ui_platform(d, &pl);
			p.label = keep(c, buf_detach(&pl, NULL));
		}
		add_part(out, &n, &alloc, &p);
	}
	return n;
}

static int has_digest(const struct ui_part *v, size_t n, const char *digest)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].digest, digest))
			return 1;
	return 0;
}

static void diff(struct ui_comparison *c, const char *field, const char *key, const char *a, const char *b)
{
	if ((a && b && !strcmp(a, b)) || (!a && !b))
		return;
	c->diffs = xgrow(c->diffs, &c->ndiffs_alloc, c->ndiffs, sizeof(*c->diffs));
	c->diffs[c->ndiffs++] = (struct ui_config_diff){ field, key, a, b };
}

/* A member of a config as text for comparing: strings as they are, else compact JSON; NULL when absent. */
static const char *value_text(struct ui_comparison *c, json_t *v)
{
	if (!v || json_is_null(v))
		return NULL;
	if (json_is_string(v))
		return json_string_value(v);
	return keep(c, json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS));
}

/* The value of KEY in env (KEY=VALUE strings), or NULL. */
static const char *env_get(json_t *env, const char *key, size_t klen)
{
	size_t i;
	json_t *e;
	json_array_foreach(env, i, e) {
		const char *s = json_string_value(e);
		if (s && !strncmp(s, key, klen) && s[klen] == '=')
			return s + klen + 1;
	}
	return NULL;
}

/* Variables of a that b lacks or holds otherwise; with both orders, every difference once. */
static void env_diff(struct ui_comparison *c, json_t *ea, json_t *eb, int reversed)
{
	size_t i;
	json_t *e;
	json_array_foreach(ea, i, e) {
		const char *s = json_string_value(e), *eq = s ? strchr(s, '=') : NULL;
		if (!eq || i == UI_LIST_CAP)
			continue;
		const char *other = env_get(eb, s, (size_t)(eq - s));
		const char *key = keep(c, xstrndup(s, (size_t)(eq - s)));
		if (reversed && other)
			continue; /* both have it: the first pass told */
		if (reversed)
			diff(c, "env", key, NULL, eq + 1);
		else
			diff(c, "env", key, eq + 1, other);
	}
}

static void object_diff(struct ui_comparison *c, const char *field, json_t *oa, json_t *ob)
{
	const char *key;
	json_t *v;
	size_t n = 0;
	json_object_foreach(oa, key, v) {
		if (n++ == UI_LIST_CAP)
			break;
		diff(c, field, key, value_text(c, v), value_text(c, json_object_get(ob, key)));
	}
	n = 0;
	json_object_foreach(ob, key, v) {
		if (n++ == UI_LIST_CAP)
			break;
		if (!json_object_get(oa, key))
			diff(c, field, key, NULL, value_text(c, v));
	}
}

static void config_diff(struct ui_comparison *c, json_t *a, json_t *b)
{
	static const struct {
		const char *field, *member;
	} whole[] = { { "entrypoint", "Entrypoint" }, { "cmd", "Cmd" }, { "user", "User" },
		      { "working_dir", "WorkingDir" } };
	json_t *ca = json_object_get(a, "config"), *cb = json_object_get(b, "config");
	diff(c, "created", NULL, ui_jstr(a, "created"), ui_jstr(b, "created"));
	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
		diff(c, whole[i].field, NULL, value_text(c, json_object_get(ca, whole[i].member)),
		     value_text(c, json_object_get(cb, whole[i].member)));
	env_diff(c, json_object_get(ca, "Env"), json_object_get(cb, "Env"), 0);
	env_diff(c, json_object_get(cb, "Env"), json_object_get(ca, "Env"), 1);
	object_diff(c, "labels", json_object_get(ca, "Labels"), json_object_get(cb, "Labels"));
	object_diff(c, "ports", json_object_get(ca, "ExposedPorts"), json_object_get(cb, "ExposedPorts"));
}

void ui_compare(const struct ui_image *a, const struct ui_image *b, struct ui_comparison *c)
{
	struct ui_part *pa, *pb;
	size_t na, nb, as = 0, aa = 0, ar = 0;
	memset(c, 0, sizeof(*c));
	na = parts_of(c, a, &pa);
	nb = parts_of(c, b, &pb);
	for (size_t i = 0; i < nb; i++) {
		if (has_digest(pa, na, pb[i].digest))
			add_part(&c->shared, &c->nshared, &as, &pb[i]);
		else
			add_part(&c->added, &c->nadded, &aa, &pb[i]);
	}
	for (size_t i = 0; i < na; i++)
		if (!has_digest(pb, nb, pa[i].digest))
			add_part(&c->removed, &c->nremoved, &ar, &pa[i]);
	free(pa);
	free(pb);
	if (a->config && b->config)
		config_diff(c, a->config, b->config);
}

void ui_comparison_release(struct ui_comparison *c)
{
	free(c->shared);
	free(c->added);
	free(c->removed);
	free(c->diffs);
	for (size_t i = 0; i < c->nowned; i++)
		free(c->owned[i]);
	free(c->owned);
	memset(c, 0, sizeof(*c));
}

/* ---- the page ---- */

static void part_rows(struct buf *o, const char *repo, const char *what, const char *id, const struct ui_part *v,
		      size_t n, int index)
{
	int64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += v[i].size > 0 ? v[i].size : 0;
	buf_addf(o, "<h3>%s: %zu (", what, n);
	ui_size(o, sum);
	buf_addf(o, ")</h3>");
	buf_addf(o, "<div class=\"scroll\"><table class=\"list\" id=\"%s\"><tbody>", id);
	for (size_t i = 0; i < n && i < UI_LIST_CAP; i++) {
		buf_adds(o, "<tr><td>");
		if (index) {
			ui_esc(o, v[i].label && *v[i].label ? v[i].label : "(no platform)");
			buf_adds(o, "</td><td>");
			ui_image_link(o, repo, v[i].digest, 1);
		} else {
			buf_adds(o, "<code class=\"digest\">");
			ui_esc(o, v[i].digest);
			buf_adds(o, "</code>");
		}
		buf_adds(o, "</td><td class=\"num\">");
		ui_size(o, v[i].size);
		buf_adds(o, "</td></tr>");
	}
	buf_adds(o, "</tbody></table></div>");
}

static void value_cell(struct buf *o, const char *v)
{
	buf_adds(o, "<td>");
	if (v) {
		buf_adds(o, "<code>");
		ui_esc(o, v);
		buf_adds(o, "</code>");
	} else {
		buf_adds(o, "<span class=\"muted\">absent</span>");
	}
	buf_adds(o, "</td>");
}

void ui_compare_html(struct buf *o, const char *repo, const char *la, const char *lb, const struct ui_image *a,
		     const struct ui_image *b, const struct ui_comparison *c)
{
	int64_t d = b->total - a->total;
	buf_adds(o, "<div class=\"scroll\"><table class=\"list\" id=\"sizes\"><thead><tr><th scope=\"col\"></th>"
		    "<th scope=\"col\">Image</th><th class=\"num\" scope=\"col\">Size</th></tr></thead><tbody><tr>"
		    "<th scope=\"row\">");
	ui_esc(o, la);
	buf_adds(o, "</th><td>");
	ui_image_link(o, repo, a->digest, 1);
	buf_adds(o, "</td><td class=\"num\">");
	ui_size(o, a->total);
	buf_adds(o, "</td></tr><tr><th scope=\"row\">");
	ui_esc(o, lb);
	buf_adds(o, "</th><td>");
	ui_image_link(o, repo, b->digest, 1);
	buf_adds(o, "</td><td class=\"num\">");
	ui_size(o, b->total);
	buf_addf(o, "</td></tr><tr><th scope=\"row\">Difference</th><td></td><td class=\"num\" id=\"size-diff\">%s",
		 d > 0 ? "+" : d < 0 ? "−" : "");
	ui_size(o, d < 0 ? -d : d);
	buf_adds(o, "</td></tr></tbody></table></div>");
	if (!strcmp(a->digest, b->digest))
		buf_adds(o, "<p class=\"message\" id=\"same\">Both are the same image.</p>");
	buf_adds(o, a->is_index || b->is_index ? "<h2>Images</h2>" : "<h2>Layers</h2>");
	part_rows(o, repo, "Added", "added", c->added, c->nadded, b->is_index);
	part_rows(o, repo, "Removed", "removed", c->removed, c->nremoved, a->is_index);
	part_rows(o, repo, "Shared", "shared", c->shared, c->nshared, b->is_index);
	buf_adds(o, "<h2>Config</h2>");
	if (!a->config || !b->config) {
		buf_adds(o, "<p class=\"muted\">Only images with an image config have config differences.</p>");
		return;
	}
	if (!c->ndiffs) {
		buf_adds(o, "<p class=\"empty\" id=\"no-config-diff\">No differences in created, entrypoint, cmd, user, "
			    "working directory, environment, labels and ports.</p>");
		return;
	}
	buf_adds(o, "<div class=\"scroll\"><table class=\"list\" id=\"config-diff\"><thead><tr><th scope=\"col\">Field"
		    "</th><th scope=\"col\">Key</th><th scope=\"col\">");
	ui_esc(o, la);
	buf_adds(o, "</th><th scope=\"col\">");
	ui_esc(o, lb);
	buf_adds(o, "</th></tr></thead><tbody>");
	for (size_t i = 0; i < c->ndiffs; i++) {
		buf_addf(o, "<tr><th scope=\"row\">%s</th><td><code>", c->diffs[i].field);
		ui_esc(o, c->diffs[i].key);
		buf_adds(o, "</code></td>");
		value_cell(o, c->diffs[i].a);
		value_cell(o, c->diffs[i].b);
		buf_adds(o, "</tr>");
	}
	buf_adds(o, "</tbody></table></div>");
}

/* The form that picks two references (prefilled with what was given). */
static void pick_form(struct buf *o, const char *repo, const char *a, const char *b)
{
	buf_adds(o, "<form class=\"filter\" method=\"get\" id=\"pick\" action=\"/ui/r/");
	ui_esc(o, repo);
	buf_adds(o, "/_compare\"><label for=\"a\">From</label><input id=\"a\" name=\"a\" required placeholder=\"tag or "
		    "digest\" value=\"");
	ui_esc(o, a);
	buf_adds(o, "\"><label for=\"b\">to</label><input id=\"b\" name=\"b\" required placeholder=\"tag or digest\" "
		    "value=\"");
	ui_esc(o, b);
	buf_adds(o, "\"><button type=\"submit\">Compare</button></form>");
}

int ui_load_pair(struct req *r, const char *repo, const char *ra, const char *rb, struct ui_image *a,
		 struct ui_image *b)
{
	struct reference x, y;
	int rc;
	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	if (ui_ref_parse(ra, &x) || ui_ref_parse(rb, &y))
		return E_MANIFEST_UNKNOWN;
	rc = ui_image_load(r->reg->store, repo, &x, r->cfg->manifest_max, a, NULL);
	if (!rc)
		rc = ui_image_load(r->reg->store, repo, &y, r->cfg->manifest_max, b, NULL);
	return rc;
}

int ui_compare_page(struct req *r, const char *repo)
{
	const char *ra = req_arg(r, "a"), *rb = req_arg(r, "b");
	struct ui_image a, b;
	struct ui_comparison c;
	struct buf *o = &r->out;
	int rc;
	memset(&c, 0, sizeof(c));
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	if (!router_may(r, repo, ACTION_PULL)) {
		ui_page_no_repo(r);
		return 0;
	}
	rc = ra && rb && *ra && *rb ? ui_load_pair(r, repo, ra, rb, &a, &b) : 1;
	if (rc < 0 && rc != E_MANIFEST_UNKNOWN && rc != E_NAME_UNKNOWN)
		goto out;
	ui_page_begin(r, "Compare");
	buf_adds(o, "<nav class=\"crumbs\" aria-label=\"Breadcrumb\"><a href=\"/ui/\">Repositories</a> / <a href=\"/ui/r/");
	ui_esc(o, repo);
	buf_adds(o, "\">");
	ui_esc(o, repo);
	buf_adds(o, "</a></nav><h1>Compare two images</h1>");
	pick_form(o, repo, ra, rb);
	if (rc == 1) {
		buf_adds(o, "<p class=\"message\">Give two tags or digests of this repository.</p>");
	} else if (rc) {
		buf_adds(o, "<p class=\"error\" id=\"unknown\">One of the two names no image of this repository.</p>");
	} else {
		ui_compare(&a, &b, &c);
		ui_compare_html(o, repo, ra, rb, &a, &b, &c);
	}
	ui_page_end(r, rc < 0 ? 404 : 200);
	rc = 0;
out:
	ui_comparison_release(&c);
	ui_image_release(&a);
	ui_image_release(&b);
	return rc;
}
