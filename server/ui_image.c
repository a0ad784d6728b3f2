/*
 * ui_image: the image page (/ui/r/<name>/_image/<ref>) and its raw
 * manifest (/ui/r/<name>/_raw/<digest>). For an index: its platforms, each
 * linking to its image; for an image: its config (created, entrypoint,
 * cmd, env, labels, ports), the build steps next to the layers they made,
 * the referrers, the tags pointing at it, the manifest as indented JSON.
 * Only for callers with pull; anyone else gets the page of a repository
 * that does not exist.
 */
#include <stdlib.h>
#include <string.h>

#include "authn.h"
#include "err.h"
#include "handlers.h"
#include "router.h"
#include "ui.h"
#include "ui_image.h"
#include "ui_page.h"

/* "algorithm:" and the first 12 hex digits, the full digest in a title. */
static void short_digest(struct buf *o, const char *ds)
{
	const char *colon = ds ? strchr(ds, ':') : NULL;
	buf_adds(o, "<code class=\"digest\" title=\"");
	ui_esc(o, ds);
	buf_adds(o, "\">");
	if (colon && strlen(colon + 1) > 12) {
		struct buf s = BUF_INIT;
		buf_add(&s, ds, (size_t)(colon - ds) + 13);
		ui_esc(o, s.buf);
		buf_release(&s);
	} else {
		ui_esc(o, ds);
	}
	buf_adds(o, "</code>");
}

void ui_image_link(struct buf *o, const char *repo, const char *ref, int short_form)
{
	buf_adds(o, "<a href=\"/ui/r/");
	ui_esc(o, repo);
	buf_adds(o, "/_image/");
	ui_esc(o, ref);
	buf_adds(o, "\">");
	if (short_form)
		short_digest(o, ref);
	else
		ui_esc(o, ref);
	buf_adds(o, "</a>");
}

/* A JSON value as text: strings as they are, anything else as compact JSON. */
static void json_text(struct buf *o, json_t *v)
{
	if (json_is_string(v)) {
		ui_esc(o, json_string_value(v));
		return;
	}
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	ui_esc(o, s);
	free(s);
}

/* A command (entrypoint, cmd): its words joined by spaces, or an em dash. */
static void words(struct buf *o, json_t *arr)
{
	size_t i;
	json_t *w;
	if (!json_is_array(arr) || !json_array_size(arr)) {
		buf_adds(o, "<span class=\"muted\">—</span>");
		return;
	}
	buf_adds(o, "<code>");
	json_array_foreach(arr, i, w) {
		if (i)
			buf_addch(o, ' ');
		json_text(o, w);
	}
	buf_adds(o, "</code>");
}

static void capped(struct buf *o, size_t total)
{
	if (total > UI_LIST_CAP)
		buf_addf(o, "<p class=\"muted\">The first %d of %zu are shown.</p>", UI_LIST_CAP, total);
}

/* A table of key and value rows from env (KEY=VALUE strings) or an object (labels, annotations). */
static void kv_table(struct buf *o, const char *id, const char *what, json_t *v)
{
	size_t n = json_is_array(v) ? json_array_size(v) : json_is_object(v) ? json_object_size(v) : 0, i = 0;
	const char *key;
	json_t *item;
	if (!n)
		return;
	buf_addf(o, "<h3>%s</h3><div class=\"scroll\"><table class=\"list kv\" id=\"%s\"><tbody>", what, id);
	if (json_is_array(v)) {
		json_array_foreach(v, i, item) {
			const char *s = json_string_value(item), *eq = s ? strchr(s, '=') : NULL;
			struct buf k = BUF_INIT;
			if (i == UI_LIST_CAP)
				break;
			buf_add(&k, s ? s : "", eq ? (size_t)(eq - s) : (s ? strlen(s) : 0));
			buf_adds(o, "<tr><th scope=\"row\"><code>");
			ui_esc(o, k.buf);
			buf_adds(o, "</code></th><td><code>");
			ui_esc(o, eq ? eq + 1 : "");
			buf_adds(o, "</code></td></tr>");
			buf_release(&k);
		}
	} else {
		json_object_foreach(v, key, item) {
			if (i++ == UI_LIST_CAP)
				break;
			buf_adds(o, "<tr><th scope=\"row\"><code>");
			ui_esc(o, key);
			buf_adds(o, "</code></th><td><code>");
			json_text(o, item);
			buf_adds(o, "</code></td></tr>");
		}
	}
	buf_adds(o, "</tbody></table></div>");
	capped(o, n);
}

/* The step a history entry records, as a Dockerfile would say it. */
void ui_step_text(struct buf *o, const char *created_by)
{
	static const char nop[] = "/bin/sh -c #(nop) ", sh[] = "/bin/sh -c ";
	const char *s = created_by ? created_by : "";
	if (!strncmp(s, nop, sizeof(nop) - 1)) {
		s += sizeof(nop) - 1;
		while (*s == ' ')
			s++;
	} else if (!strncmp(s, sh, sizeof(sh) - 1)) {
		buf_adds(o, "RUN ");
		s += sizeof(sh) - 1;
	}
	ui_esc(o, s);
}

static void layer_cells(struct buf *o, json_t *layer)
{
	buf_adds(o, "<td>");
	short_digest(o, ui_jstr(layer, "digest"));
	buf_adds(o, "</td><td class=\"num\">");
	ui_size(o, ui_jint(layer, "size"));
	buf_adds(o, "</td>");
}

/*
 * The build steps next to the layers: each step that made a layer takes
 * the next one in order; empty-layer steps get none. Layers left over
 * (a config without history) follow as rows of their own.
 */
static void steps_and_layers(struct buf *o, const struct ui_image *im)
{
	json_t *layers = ui_image_parts(im), *cfg_history = im->config ? json_object_get(im->config, "history") : NULL;
	json_t *h;
	size_t nlayers = json_array_size(layers), next = 0, i, rows = 0;
	buf_adds(o, "<h2 id=\"layers-heading\">Build steps and layers</h2><div class=\"scroll\"><table class=\"list\" "
		    "id=\"layers\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Step</th><th scope=\"col\">"
		    "Created</th><th scope=\"col\">Layer</th><th class=\"num\" scope=\"col\">Size</th></tr></thead><tbody>");
	json_array_foreach(cfg_history, i, h) {
		int empty = json_is_true(json_object_get(h, "empty_layer"));
		if (rows++ == UI_LIST_CAP)
			break;
		buf_addf(o, "<tr%s><td class=\"num\">%zu</td><td class=\"step\"><code>", empty ? " class=\"empty-layer\"" : "",
			 i + 1);
		ui_step_text(o, ui_jstr(h, "created_by"));
		buf_adds(o, "</code>");
		if (ui_jstr(h, "comment")) {
			buf_adds(o, " <span class=\"muted\">");
			ui_esc(o, ui_jstr(h, "comment"));
			buf_adds(o, "</span>");
		}
		buf_adds(o, "</td><td>");
		ui_esc(o, ui_jstr(h, "created"));
		buf_adds(o, "</td>");
		if (empty || next >= nlayers)
			buf_adds(o, "<td class=\"muted\">no layer</td><td></td>");
		else
			layer_cells(o, json_array_get(layers, next++));
		buf_adds(o, "</tr>");
	}
	for (; next < nlayers && rows < UI_LIST_CAP; next++, rows++) {
		buf_addf(o, "<tr><td class=\"num\"></td><td class=\"muted\">(no recorded step)</td><td></td>");
		layer_cells(o, json_array_get(layers, next));
		buf_adds(o, "</tr>");
	}
	buf_adds(o, "</tbody></table></div>");
	capped(o, json_array_size(cfg_history) + (nlayers > next ? nlayers - next : 0));
}

static void config_section(struct buf *o, const struct ui_image *im)
{
	json_t *c = json_object_get(im->config, "config"), *ports = json_object_get(c, "ExposedPorts");
	const char *key;
	json_t *v;
	size_t i = 0;
	buf_adds(o, "<h2>Config</h2><dl class=\"facts\" id=\"config\"><dt>Created</dt><dd>");
	ui_esc(o, ui_jstr(im->config, "created") ? ui_jstr(im->config, "created") : "—");
	buf_adds(o, "</dd><dt>Platform</dt><dd>");
	ui_esc(o, ui_jstr(im->config, "os"));
	buf_addch(o, '/');
	ui_esc(o, ui_jstr(im->config, "architecture"));
	buf_adds(o, "</dd><dt>Entrypoint</dt><dd id=\"entrypoint\">");
	words(o, json_object_get(c, "Entrypoint"));
	buf_adds(o, "</dd><dt>Cmd</dt><dd id=\"cmd\">");
	words(o, json_object_get(c, "Cmd"));
	if (ui_jstr(c, "User") && *ui_jstr(c, "User")) {
		buf_adds(o, "</dd><dt>User</dt><dd><code>");
		ui_esc(o, ui_jstr(c, "User"));
		buf_adds(o, "</code>");
	}
	if (ui_jstr(c, "WorkingDir") && *ui_jstr(c, "WorkingDir")) {
		buf_adds(o, "</dd><dt>Working directory</dt><dd><code>");
		ui_esc(o, ui_jstr(c, "WorkingDir"));
		buf_adds(o, "</code>");
	}
	buf_adds(o, "</dd><dt>Exposed ports</dt><dd id=\"ports\">");
	json_object_foreach(ports, key, v) {
		if (i++ == UI_LIST_CAP)
			break;
		buf_adds(o, "<code class=\"port\">");
		ui_esc(o, key);
		buf_adds(o, "</code> ");
	}
	if (!json_object_size(ports))
		buf_adds(o, "<span class=\"muted\">none</span>");
	buf_adds(o, "</dd></dl>");
	kv_table(o, "env", "Environment", json_object_get(c, "Env"));
	kv_table(o, "labels", "Labels", json_object_get(c, "Labels"));
}

static void platforms(struct buf *o, const char *repo, const struct ui_image *im)
{
	json_t *d;
	size_t i;
	buf_adds(o, "<h2>Platforms</h2><div class=\"scroll\"><table class=\"list\" id=\"platforms\"><thead><tr>"
		    "<th scope=\"col\">Platform</th><th scope=\"col\">Image</th><th class=\"num\" scope=\"col\">Manifest size"
		    "</th></tr></thead><tbody>");
	json_array_foreach(ui_image_parts(im), i, d) {
		struct buf p = BUF_INIT;
		if (i == UI_LIST_CAP)
			break;
		ui_platform(d, &p);
		buf_adds(o, "<tr><th scope=\"row\">");
		ui_esc(o, p.len ? p.buf : "(no platform)");
		buf_adds(o, "</th><td>");
		if (ui_jstr(d, "digest"))
			ui_image_link(o, repo, ui_jstr(d, "digest"), 1);
		buf_adds(o, "</td><td class=\"num\">");
		ui_size(o, ui_jint(d, "size"));
		buf_adds(o, "</td></tr>");
		buf_release(&p);
	}
	buf_adds(o, "</tbody></table></div>");
	capped(o, json_array_size(ui_image_parts(im)));
}

static void referrers(struct buf *o, const char *repo, const struct ui_referrers *rf)
{
	buf_adds(o, "<h2>Referrers</h2>");
	if (!rf->n) {
		buf_adds(o, "<p class=\"empty\">No signatures, SBOMs or other artifacts refer to this image.</p>");
		return;
	}
	buf_adds(o, "<div class=\"scroll\"><table class=\"list\" id=\"referrers\"><thead><tr><th scope=\"col\">"
		    "Artifact type</th><th scope=\"col\">Manifest</th><th class=\"num\" scope=\"col\">Size</th>"
		    "<th scope=\"col\">Annotations</th></tr></thead><tbody>");
	for (size_t i = 0; i < rf->n; i++) {
		const char *key;
		json_t *v;
		size_t k = 0;
		buf_adds(o, "<tr><td><code>");
		ui_esc(o, rf->v[i].artifact_type ? rf->v[i].artifact_type : rf->v[i].media_type);
		buf_adds(o, "</code></td><td>");
		ui_image_link(o, repo, rf->v[i].digest, 1);
		buf_adds(o, "</td><td class=\"num\">");
		ui_size(o, rf->v[i].size);
		buf_adds(o, "</td><td>");
		json_object_foreach(rf->v[i].annotations, key, v) {
			if (k++ == 20)
				break;
			buf_adds(o, "<div><code>");
			ui_esc(o, key);
			buf_adds(o, "</code>: ");
			json_text(o, v);
			buf_adds(o, "</div>");
		}
		buf_adds(o, "</td></tr>");
	}
	buf_adds(o, "</tbody></table></div>");
	if (rf->more)
		buf_addf(o, "<p class=\"muted\">The first %d are shown.</p>", UI_LIST_CAP);
}

/* The tags pointing at the image, each with its history link when the caller may see history. */
static void tag_list(struct req *r, const char *repo, const struct ui_names *tags, int may_push)
{
	struct buf *o = &r->out;
	buf_adds(o, "<dt>Tags</dt><dd id=\"image-tags\">");
	if (!tags->n)
		buf_adds(o, "<span class=\"muted\">none (reachable by digest only)</span>");
	for (size_t i = 0; i < tags->n; i++) {
		buf_adds(o, "<span class=\"tag\">");
		ui_esc(o, tags->v[i]);
		buf_adds(o, "</span>");
		if (config_immutable_rule(r->cfg, repo, tags->v[i]) >= 0)
			buf_adds(o, " <span class=\"badge\">immutable</span>");
		if (may_push) {
			buf_adds(o, " <a class=\"small\" href=\"/ui/r/");
			ui_esc(o, repo);
			buf_adds(o, "/_history/");
			ui_esc(o, tags->v[i]);
			buf_adds(o, "\">history</a>");
		}
		buf_adds(o, " ");
	}
	if (tags->more)
		buf_adds(o, "<span class=\"muted\">and more</span>");
	buf_adds(o, "</dd>");
}

/* Delete buttons (tag by tag, and the whole manifest) for a caller who may delete where deletes are on. */
static void delete_forms(struct req *r, const char *repo, const struct ui_image *im, const struct ui_names *tags)
{
	struct buf *o = &r->out, csrf = BUF_INIT;
	if (!r->cfg->delete_enabled || !router_may(r, repo, ACTION_DELETE) || !ui_csrf(r, &csrf)) {
		buf_release(&csrf);
		return;
	}
	buf_adds(o, "<h2>Delete</h2><div class=\"actions\" id=\"deletes\">");
	for (size_t i = 0; i <= tags->n; i++) {
		const char *ref = i < tags->n ? tags->v[i] : im->digest;
		buf_adds(o, "<form method=\"post\" action=\"/ui/r/");
		ui_esc(o, repo);
		buf_adds(o, "/_delete\"><input type=\"hidden\" name=\"csrf\" value=\"");
		ui_esc(o, csrf.buf);
		buf_adds(o, "\"><input type=\"hidden\" name=\"ref\" value=\"");
		ui_esc(o, ref);
		if (i < tags->n) {
			buf_adds(o, "\"><button type=\"submit\" class=\"danger\">Delete tag ");
			ui_esc(o, ref);
		} else {
			buf_adds(o, "\"><button type=\"submit\" class=\"danger\" id=\"delete-manifest\">Delete this manifest "
				    "and its tags");
		}
		buf_adds(o, "</button></form>");
	}
	buf_adds(o, "</div>");
	buf_release(&csrf);
}

/* A form that compares this image with another reference. */
static void compare_form(struct buf *o, const char *repo, const char *digest)
{
	buf_adds(o, "<form class=\"filter\" method=\"get\" action=\"/ui/r/");
	ui_esc(o, repo);
	buf_adds(o, "/_compare\"><input type=\"hidden\" name=\"a\" value=\"");
	ui_esc(o, digest);
	buf_adds(o, "\"><label for=\"b\">Compare with</label><input id=\"b\" name=\"b\" placeholder=\"tag or digest\" "
		    "required><button type=\"submit\">Compare</button></form>");
}

static void manifest_section(struct buf *o, const char *repo, const struct ui_image *im)
{
	char *pretty = json_dumps(im->doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	buf_adds(o, "<h2>Manifest</h2><p><a id=\"raw\" download href=\"/ui/r/");
	ui_esc(o, repo);
	buf_adds(o, "/_raw/");
	ui_esc(o, im->digest);
	buf_adds(o, "\">Raw manifest</a> <span class=\"muted\">(");
	ui_esc(o, im->media_type);
	buf_adds(o, ")</span></p><pre class=\"json\" id=\"manifest\">");
	ui_esc(o, pretty);
	buf_adds(o, "</pre>");
	free(pretty);
}

static void no_config(struct buf *o, const struct ui_image *im)
{
	buf_adds(o, "<p class=\"muted\" id=\"no-config\">No config shown: ");
	ui_esc(o, im->config_why);
	buf_adds(o, ".</p>");
}

static void not_found(struct req *r)
{
	ui_page_message(r, 404, "Not found", "There is no such image, or you may not see it.");
}

int ui_image_page(struct req *r, const char *repo, const char *refs)
{
	struct reference ref;
	struct ui_image im;
	struct ui_names tags = { 0 };
	struct ui_referrers rf = { 0 };
	struct buf *o = &r->out, title = BUF_INIT;
	int rc;
	memset(&im, 0, sizeof(im));
	if (!router_may(r, repo, ACTION_PULL) || ui_ref_parse(refs, &ref)) {
		not_found(r);
		return 0;
	}
	rc = ui_image_load(r->reg->store, repo, &ref, r->cfg->manifest_max, &im, NULL);
	if (!rc)
		rc = ui_image_tags(r->reg->store, repo, &im, &tags);
	if (!rc)
		rc = ui_image_referrers(r->reg->store, repo, &im, &rf);
	if (rc == E_MANIFEST_UNKNOWN || rc == E_NAME_UNKNOWN) {
		not_found(r);
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	buf_addf(&title, "%s%c%s", repo, ref.is_digest ? '@' : ':', refs);
	ui_page_begin(r, title.buf);
	buf_adds(o, "<nav class=\"crumbs\" aria-label=\"Breadcrumb\"><a href=\"/ui/\">Repositories</a> / <a href=\"/ui/r/");
	ui_esc(o, repo);
	buf_adds(o, "\">");
	ui_esc(o, repo);
	buf_adds(o, "</a></nav><h1>");
	ui_esc(o, title.buf);
	buf_adds(o, "</h1><dl class=\"facts\" id=\"summary\"><dt>Digest</dt><dd><code id=\"digest\">");
	ui_esc(o, im.digest);
	buf_adds(o, "</code></dd><dt>Type</dt><dd><code>");
	ui_esc(o, im.media_type);
	buf_adds(o, "</code>");
	if (im.is_index)
		buf_adds(o, " <span class=\"badge\">multi-platform</span>");
	/* the store records a plain image's config type as its artifact type: worth showing for artifacts only */
	if (im.artifact_type && !im.config) {
		buf_adds(o, "</dd><dt>Artifact type</dt><dd><code>");
		ui_esc(o, im.artifact_type);
		buf_adds(o, "</code>");
	}
	buf_adds(o, "</dd><dt>Size</dt><dd id=\"size\">");
	ui_size(o, im.total);
	buf_adds(o, "</dd>");
	tag_list(r, repo, &tags, router_may(r, repo, ACTION_PUSH));
	buf_adds(o, "</dl>");
	compare_form(o, repo, im.digest);
	if (im.is_index)
		platforms(o, repo, &im);
	else if (im.config)
		config_section(o, &im);
	else
		no_config(o, &im);
	if (!im.is_index)
		steps_and_layers(o, &im);
	referrers(o, repo, &rf);
	manifest_section(o, repo, &im);
	delete_forms(r, repo, &im, &tags);
	ui_page_end(r, 200);
out:
	buf_release(&title);
	ui_names_release(&tags);
	ui_referrers_release(&rf);
	ui_image_release(&im);
	return rc;
}

int ui_raw_manifest(struct req *r, const char *repo, const char *refs)
{
	struct reference ref;
	struct ui_image im;
	int rc;
	if (!router_may(r, repo, ACTION_PULL) || ui_ref_parse(refs, &ref) || !ref.is_digest) {
		not_found(r);
		return 0;
	}
	rc = ui_image_load(r->reg->store, repo, &ref, r->cfg->manifest_max, &im, NULL);
	if (rc == E_MANIFEST_UNKNOWN || rc == E_NAME_UNKNOWN) {
		ui_image_release(&im);
		not_found(r);
		return 0;
	}
	if (!rc) {
		const char *hex = strchr(im.digest, ':');
		buf_reset(&r->out);
		buf_add(&r->out, im.raw.buf, im.raw.len);
		resp_header(r, "Content-Disposition", "attachment; filename=\"%s.json\"", hex ? hex + 1 : "manifest");
		resp_header(r, "Docker-Content-Digest", "%s", im.digest);
		ui_security_headers(r, 1);
		resp_body(r, 200, im.media_type);
	}
	ui_image_release(&im);
	return rc;
}
