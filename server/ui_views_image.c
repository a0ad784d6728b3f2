/*
 * ui_views_image: the JSON views of one image and of a comparison, under
 * the _berth prefix (docs/api.md), authorized like a manifest read (pull):
 *   GET /v2/<name>/_berth/image/<ref>
 *   GET /v2/<name>/_berth/compare?a=REF&b=REF
 * They read what the image and compare pages show (ui_image.h), with the
 * same caps.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "handlers.h"
#include "ui.h"
#include "ui_image.h"
#include "ui_page.h"

/* A copy of the array v cut to UI_LIST_CAP items (a new reference). */
static json_t *capped(json_t *v)
{
	json_t *out = json_array(), *it;
	size_t i;
	json_array_foreach(v, i, it) {
		if (i == UI_LIST_CAP)
			break;
		json_array_append(out, it);
	}
	return out;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* The config members the page shows; NULL members left out. */
static json_t *config_json(const struct ui_image *im)
{
	static const char *members[] = { "Entrypoint", "Cmd", "User", "WorkingDir", "Labels", "ExposedPorts" };
	json_t *c = json_object_get(im->config, "config"), *out = json_object();
	json_object_set_new(out, "created", str_or_null(ui_jstr(im->config, "created")));
	json_object_set_new(out, "os", str_or_null(ui_jstr(im->config, "os")));
	json_object_set_new(out, "architecture", str_or_null(ui_jstr(im->config, "architecture")));
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		if (json_object_get(c, members[i]))
			json_object_set(out, members[i], json_object_get(c, members[i]));
	if (json_is_array(json_object_get(c, "Env")))
		json_object_set_new(out, "Env", capped(json_object_get(c, "Env")));
	return out;
}

/* The build steps, each with the layer it made (null for an empty-layer step), as the page aligns them. */
static json_t *history_json(const struct ui_image *im)
{
	json_t *out = json_array(), *h, *layers = ui_image_parts(im);
	size_t i, next = 0;
	json_array_foreach(json_object_get(im->config, "history"), i, h) {
		int empty = json_is_true(json_object_get(h, "empty_layer"));
		json_t *layer = !empty && next < json_array_size(layers) ? json_array_get(layers, next++) : NULL;
		if (i == UI_LIST_CAP)
			break;
		json_array_append_new(out, json_pack("{s:o, s:o, s:b, s:o}", "created", str_or_null(ui_jstr(h, "created")),
						     "created_by", str_or_null(ui_jstr(h, "created_by")), "empty_layer",
						     empty, "layer", str_or_null(ui_jstr(layer, "digest"))));
	}
	return out;
}

static json_t *parts_json(const struct ui_image *im)
{
	json_t *out = json_array(), *d;
	size_t i;
	json_array_foreach(ui_image_parts(im), i, d) {
		struct buf p = BUF_INIT;
		if (i == UI_LIST_CAP)
			break;
		json_t *o = json_pack("{s:o, s:o, s:I}", "digest", str_or_null(ui_jstr(d, "digest")), "media_type",
				      str_or_null(ui_jstr(d, "mediaType")), "size", (json_int_t)ui_jint(d, "size"));
		if (im->is_index) {
			ui_platform(d, &p);
			json_object_set_new(o, "platform", p.len ? json_string(p.buf) : json_null());
		}
		json_array_append_new(out, o);
		buf_release(&p);
	}
	return out;
}

static void reply(struct req *r, json_t *doc)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	buf_adds(&r->out, s);
	free(s);
	json_decref(doc);
	resp_header(r, "Cache-Control", "no-store");
	resp_header(r, "X-Content-Type-Options", "nosniff");
	resp_body(r, 200, "application/json");
}

int ui_view_image(struct req *r)
{
	struct ui_image im;
	struct ui_names tags = { 0 };
	struct ui_referrers rf = { 0 };
	json_t *doc = NULL, *jt, *jr;
	int rc = ui_image_load(r->reg->store, r->name, &r->reference, r->cfg->manifest_max, &im, &r->err_detail);
	if (!rc)
		rc = ui_image_tags(r->reg->store, r->name, &im, &tags);
	if (!rc)
		rc = ui_image_referrers(r->reg->store, r->name, &im, &rf);
	if (rc)
		goto out;
	jt = json_array();
	for (size_t i = 0; i < tags.n; i++)
		json_array_append_new(jt, json_string(tags.v[i]));
	jr = json_array();
	for (size_t i = 0; i < rf.n; i++)
		json_array_append_new(jr, json_pack("{s:s, s:s, s:o, s:I, s:O}", "digest", rf.v[i].digest, "media_type",
						    rf.v[i].media_type, "artifact_type", str_or_null(rf.v[i].artifact_type),
						    "size", (json_int_t)rf.v[i].size, "annotations",
						    rf.v[i].annotations ? rf.v[i].annotations : json_null()));
	doc = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:o}", "name", r->name, "digest", im.digest, "media_type",
			im.media_type, "artifact_type", str_or_null(im.artifact_type), "manifest_size",
			(json_int_t)im.size, "size", (json_int_t)im.total, "tags", jt);
	json_object_set_new(doc, im.is_index ? "platforms" : "layers", parts_json(&im));
	json_object_set_new(doc, "config", im.config ? config_json(&im) : json_null());
	json_object_set_new(doc, "config_note", str_or_null(im.config ? NULL : im.config_why));
	if (!im.is_index)
		json_object_set_new(doc, "history", history_json(&im));
	json_object_set_new(doc, "referrers", jr);
	reply(r, doc);
out:
	ui_names_release(&tags);
	ui_referrers_release(&rf);
	ui_image_release(&im);
	return rc;
}

static json_t *parts_of(const struct ui_part *v, size_t n)
{
	json_t *out = json_array();
	for (size_t i = 0; i < n && i < UI_LIST_CAP; i++) {
		json_t *o = json_pack("{s:s, s:I}", "digest", v[i].digest, "size", (json_int_t)v[i].size);
		if (v[i].label)
			json_object_set_new(o, "platform", json_string(v[i].label));
		json_array_append_new(out, o);
	}
	return out;
}

static json_t *side(const char *ref, const struct ui_image *im)
{
	return json_pack("{s:s, s:s, s:s, s:I}", "ref", ref, "digest", im->digest, "media_type", im->media_type, "size",
			 (json_int_t)im->total);
}

int ui_view_compare(struct req *r)
{
	const char *ra = req_arg(r, "a"), *rb = req_arg(r, "b");
	struct ui_image a, b;
	struct ui_comparison c;
	json_t *doc, *diffs;
	int rc;
	memset(&c, 0, sizeof(c));
	if (!ra || !rb || !*ra || !*rb)
		return req_fail(r, E_BAD_REQUEST, "give two references: a and b");
	rc = ui_load_pair(r, r->name, ra, rb, &a, &b);
	if (rc)
		goto out;
	ui_compare(&a, &b, &c);
	diffs = json_array();
	for (size_t i = 0; i < c.ndiffs; i++)
		json_array_append_new(diffs, json_pack("{s:s, s:o, s:o, s:o}", "field", c.diffs[i].field, "key",
						       str_or_null(c.diffs[i].key), "a", str_or_null(c.diffs[i].a), "b",
						       str_or_null(c.diffs[i].b)));
	doc = json_pack("{s:s, s:o, s:o, s:I, s:o, s:o, s:o, s:o}", "name", r->name, "a", side(ra, &a), "b",
			side(rb, &b), "size_difference", (json_int_t)(b.total - a.total), "added",
			parts_of(c.added, c.nadded), "removed", parts_of(c.removed, c.nremoved), "shared",
			parts_of(c.shared, c.nshared), "config", diffs);
	reply(r, doc);
out:
	ui_comparison_release(&c);
	ui_image_release(&a);
	ui_image_release(&b);
	return rc;
}
