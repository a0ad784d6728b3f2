/* ui_image_load: reads one image for the web interface: manifest bytes and document, image config, size. */
#include "ui_image.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "names.h"
#include "store_browse.h"
#include "xalloc.h"

const char *ui_jstr(json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int64_t ui_jint(json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

int ui_ref_parse(const char *s, struct reference *ref)
{
	memset(ref, 0, sizeof(*ref));
	if (!s || !*s || reference_parse(s, strlen(s), ref))
		return E_MANIFEST_UNKNOWN;
	return 0;
}

json_t *ui_image_parts(const struct ui_image *im)
{
	json_t *v = json_object_get(im->doc, im->is_index ? "manifests" : "layers");
	if (!v && !im->is_index)
		v = json_object_get(im->doc, "blobs"); /* the OCI artifact manifest of image-spec 1.1's drafts */
	return json_is_array(v) ? v : NULL;
}

json_t *ui_image_config_desc(const struct ui_image *im)
{
	json_t *v = im->is_index ? NULL : json_object_get(im->doc, "config");
	return json_is_object(v) ? v : NULL;
}

void ui_platform(json_t *desc, struct buf *out)
{
	json_t *p = json_object_get(desc, "platform");
	const char *os = ui_jstr(p, "os"), *arch = ui_jstr(p, "architecture"), *variant = ui_jstr(p, "variant");
	if (!os && !arch)
		return;
	buf_addf(out, "%s/%s", os ? os : "?", arch ? arch : "?");
	if (variant)
		buf_addf(out, "/%s", variant);
}

static int is_index_type(const char *mt)
{
	return mt && (strstr(mt, "image.index") || strstr(mt, "manifest.list"));
}

static int is_image_config(const char *mt)
{
	return mt && (!strcmp(mt, "application/vnd.oci.image.config.v1+json") ||
		      !strcmp(mt, "application/vnd.docker.container.image.v1+json"));
}

/* All of rd (at most max bytes) into out; E_IO when it is larger or unreadable. */
static int read_all(struct store_reader *rd, int64_t max, struct buf *out)
{
	unsigned char chunk[16384];
	int64_t off = 0;
	if (rd->size > max)
		return E_IO;
	if (rd->mem) {
		buf_add(out, rd->mem, (size_t)rd->size);
		return 0;
	}
	while (off < rd->size) {
		size_t n = 0;
		int rc = store_reader_read(rd, off, chunk, sizeof(chunk), &n);
		if (rc)
			return rc;
		if (!n)
			return E_IO;
		buf_add(out, chunk, n);
		off += (int64_t)n;
	}
	return 0;
}

/* The image config of im, when its config descriptor names one small enough to read. */
static void load_config(struct store *st, const char *repo, struct ui_image *im)
{
	json_t *desc = ui_image_config_desc(im);
	const char *ds = ui_jstr(desc, "digest");
	struct store_reader rd;
	struct digest d;
	struct buf body = BUF_INIT;
	json_error_t e;
	memset(&rd, 0, sizeof(rd));
	rd.fd = -1;
	if (!desc || !is_image_config(ui_jstr(desc, "mediaType"))) {
		im->config_why = "not an image: its config is no image config";
		return;
	}
	if (!ds || digest_parse(ds, &d)) {
		im->config_why = "the config descriptor has no valid digest";
		return;
	}
	if (ui_jint(desc, "size") > UI_CONFIG_MAX) {
		im->config_why = "the config is too large to show";
		return;
	}
	if (store_blob_open(st, repo, &d, &rd, NULL) || read_all(&rd, UI_CONFIG_MAX, &body)) {
		im->config_why = "the config could not be read";
	} else {
		im->config = json_loadb(body.buf, body.len, 0, &e);
		if (!json_is_object(im->config)) {
			json_decref(im->config);
			im->config = NULL;
			im->config_why = "the config is not a JSON object";
		}
	}
	store_reader_release(&rd);
	buf_release(&body);
}

/* Sizes of what a child manifest references, each as stored. */
static int add_ref_size(void *ctx, const struct store_ref_info *ri)
{
	int64_t *total = ctx;
	if (ri->kind != STORE_REF_SUBJECT && ri->size > 0)
		*total += ri->size;
	return 0;
}

/* The size shown for im: manifest, config, layers; an index adds its images' (as stored). */
static void total_size(struct store *st, const char *repo, struct ui_image *im)
{
	json_t *parts = ui_image_parts(im), *desc;
	size_t i;
	im->total = im->size;
	if (!im->is_index && ui_jint(ui_image_config_desc(im), "size") > 0)
		im->total += ui_jint(ui_image_config_desc(im), "size");
	json_array_foreach(parts, i, desc) {
		struct digest d;
		if (ui_jint(desc, "size") > 0)
			im->total += ui_jint(desc, "size");
		if (im->is_index && i < UI_LIST_CAP && ui_jstr(desc, "digest") && !digest_parse(ui_jstr(desc, "digest"), &d))
			store_manifest_refs(st, repo, &d, add_ref_size, &im->total);
	}
}

int ui_image_load(struct store *st, const char *repo, const struct reference *ref, size_t manifest_max,
		  struct ui_image *im, struct buf *detail)
{
	struct store_manifest m;
	struct store_reader rd;
	json_error_t e;
	int rc;
	memset(im, 0, sizeof(*im));
	buf_init(&im->raw, 0);
	memset(&m, 0, sizeof(m));
	memset(&rd, 0, sizeof(rd));
	rd.fd = -1;
	rc = store_manifest_get(st, repo, ref, &m, &rd, detail);
	if (!rc)
		rc = read_all(&rd, (int64_t)manifest_max, &im->raw);
	store_reader_release(&rd);
	if (rc)
		goto out;
	digest_str(&m.digest, im->digest);
	im->media_type = xstrdup(m.media_type);
	im->artifact_type = m.artifact_type ? xstrdup(m.artifact_type) : NULL;
	im->size = m.size;
	im->is_index = is_index_type(m.media_type);
	im->doc = json_loadb(im->raw.buf, im->raw.len, 0, &e);
	if (!json_is_object(im->doc)) {
		/* the store validated it when it was pushed: a document that does not parse now is damage */
		rc = E_IO;
		goto out;
	}
	if (!im->is_index)
		load_config(st, repo, im);
	else
		im->config_why = "an index: each platform's image has its own config";
	total_size(st, repo, im);
out:
	store_manifest_release(&m);
	return rc;
}

void ui_image_release(struct ui_image *im)
{
	free(im->media_type);
	free(im->artifact_type);
	buf_release(&im->raw);
	json_decref(im->doc);
	json_decref(im->config);
	memset(im, 0, sizeof(*im));
}

static int add_name(void *ctx, const char *s)
{
	struct ui_names *l = ctx;
	l->v = xgrow(l->v, &l->alloc, l->n, sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
	return 0;
}

int ui_image_tags(struct store *st, const char *repo, const struct ui_image *im, struct ui_names *out)
{
	return store_browse_tags_at(st, repo, im->digest, UI_LIST_CAP, add_name, out, &out->more);
}

void ui_names_release(struct ui_names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int add_referrer(void *ctx, const struct store_manifest *m)
{
	struct ui_referrers *l = ctx;
	char ds[DIGEST_STR_MAX];
	if (l->n == UI_LIST_CAP) {
		l->more = 1;
		return 1;
	}
	l->v = xgrow(l->v, &l->alloc, l->n, sizeof(*l->v));
	struct ui_referrer *it = &l->v[l->n++];
	it->digest = xstrdup(digest_str(&m->digest, ds));
	it->media_type = xstrdup(m->media_type);
	it->artifact_type = m->artifact_type ? xstrdup(m->artifact_type) : NULL;
	it->annotations = m->annotations ? json_loads(m->annotations, 0, NULL) : NULL;
	it->size = m->size;
	return 0;
}

int ui_image_referrers(struct store *st, const char *repo, const struct ui_image *im, struct ui_referrers *out)
{
	struct digest d;
	if (digest_parse(im->digest, &d))
		return E_INTERNAL;
	int rc = store_referrers(st, repo, &d, NULL, add_referrer, out);
	return rc == 1 ? 0 : rc;
}

void ui_referrers_release(struct ui_referrers *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].digest);
		free(l->v[i].media_type);
		free(l->v[i].artifact_type);
		json_decref(l->v[i].annotations);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}
