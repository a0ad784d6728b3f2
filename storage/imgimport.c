/* imgimport: docker save and OCI layout import, verified, committed all or nothing (see imgimport.h). */
#include "imgimport.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "imgsource.h"
#include "log.h"
#include "manifest.h"
#include "meta.h"
#include "store_backend.h"
#include "xalloc.h"

/* Most images listed in one index.json or manifest.json. */
#define MAX_IMAGES 10000
/* Half-second looks for a blob a concurrent collection may be putting back (15 s). */
#define STILL_STORED_POLLS 30

struct plan_blob {
	struct digest d;
	int64_t size;
};

struct plan_manifest {
	struct digest d;
	int64_t size;
	struct manifest_info mi;
	struct buf body; /* its bytes, for the store's manifest put */
	int from_input;  /* a file of the input, stored as a blob on its way in */
};

/* What a verified import commits: blobs to link, then manifests, children before parents. */
struct plan {
	struct store *st;
	struct imgsrc *src;
	const struct imgimport_opts *o;
	struct imgimport_result *res;
	struct buf *detail;
	struct plan_blob *blobs;
	size_t nblobs, ablobs;
	struct plan_manifest *mans;
	size_t nmans, amans;
};

static int fail(struct plan *p, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct plan *p, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(p->detail, fmt, ap);
	va_end(ap);
	return rc;
}

static void add_item(struct plan *p, const char *role, const struct digest *d, int64_t size, const char *mt,
		     int existed)
{
	struct imgimport_result *r = p->res;
	r->items = xgrow(r->items, &r->alloc, r->nitems, sizeof(*r->items));
	r->items[r->nitems++] = (struct imgimport_item){ role, *d, size, mt ? xstrdup(mt) : NULL, existed };
}

/* Queues blob d for linking (once); returns 1 when it was queued before. */
static int plan_blob(struct plan *p, const struct digest *d, int64_t size)
{
	for (size_t i = 0; i < p->nblobs; i++)
		if (digest_eq(&p->blobs[i].d, d))
			return 1;
	p->blobs = xgrow(p->blobs, &p->ablobs, p->nblobs, sizeof(*p->blobs));
	p->blobs[p->nblobs++] = (struct plan_blob){ *d, size };
	return 0;
}

static int plan_has_manifest(const struct plan *p, const struct digest *d)
{
	for (size_t i = 0; i < p->nmans; i++)
		if (digest_eq(&p->mans[i].d, d))
			return 1;
	return 0;
}

/* Takes mi and body over. */
static void plan_manifest(struct plan *p, const struct digest *d, int64_t size, struct manifest_info *mi,
			  struct buf *body)
{
	p->mans = xgrow(p->mans, &p->amans, p->nmans, sizeof(*p->mans));
	p->mans[p->nmans++] = (struct plan_manifest){ *d, size, *mi, *body, 0 };
	memset(mi, 0, sizeof(*mi));
	buf_init(body, 0);
}

static void plan_manifests_release(struct plan *p)
{
	for (size_t i = 0; i < p->nmans; i++) {
		manifest_info_release(&p->mans[i].mi);
		buf_release(&p->mans[i].body);
	}
	p->nmans = 0;
}

/* A stored blob of the input, its digest known: queue and report it. */
static int take_blob(struct plan *p, const char *role, const struct digest *d, int64_t size, const char *mt)
{
	int existed, rc = imgsrc_blob(p->src, d, size, &existed, p->detail);
	if (!rc && !plan_blob(p, d, size))
		add_item(p, role, d, size, mt, existed);
	return rc;
}

/* A file of a docker save archive, stored while the archive was read: queue and report it. */
static void take_file(struct plan *p, const char *role, const struct imgsrc_file *f, const char *mt)
{
	if (!plan_blob(p, &f->digest, f->size))
		add_item(p, role, &f->digest, f->size, mt, f->existed);
}

/* ------------------------------------------------------------------ OCI layouts */

/* Reads a descriptor's mediaType (may be NULL), digest and size. */
static int descriptor(struct plan *p, json_t *desc, const char **mt, struct digest *d, int64_t *size)
{
	json_t *jmt = json_object_get(desc, "mediaType");
	json_t *jd = json_object_get(desc, "digest");
	json_t *js = json_object_get(desc, "size");
	*mt = json_is_string(jmt) ? json_string_value(jmt) : NULL;
	if (!json_is_object(desc) || !json_is_string(jd) || digest_parse(json_string_value(jd), d) ||
	    !json_is_integer(js) || json_integer_value(js) < 0)
		return fail(p, E_MANIFEST_INVALID, "malformed descriptor (needs digest and size)");
	*size = (int64_t)json_integer_value(js);
	return 0;
}

static int oci_manifest(struct plan *p, const char *mt, const struct digest *d, int64_t size, int depth);

/* Imports every child of the index in body (already validated by manifest_parse). */
static int oci_children(struct plan *p, const struct buf *body, int depth)
{
	json_t *root = json_loadb(body->buf, body->len, 0, NULL);
	json_t *list = json_object_get(root, "manifests"), *child;
	size_t i;
	int rc = 0;
	json_array_foreach(list, i, child) {
		const char *cmt;
		struct digest cd;
		int64_t csize;
		if ((rc = descriptor(p, child, &cmt, &cd, &csize)) ||
		    (rc = oci_manifest(p, cmt, &cd, csize, depth + 1)))
			break;
	}
	json_decref(root);
	return rc;
}

/* Verifies manifest d (media type mt from its descriptor, may be NULL) and all it references. */
static int oci_manifest(struct plan *p, const char *mt, const struct digest *d, int64_t size, int depth)
{
	struct manifest_info mi = { 0 };
	struct buf body = BUF_INIT, why = BUF_INIT;
	char ds[DIGEST_STR_MAX];
	int existed, rc;
	digest_str(d, ds);
	if (plan_has_manifest(p, d))
		return 0;
	if (depth > IMGIMPORT_MAX_DEPTH)
		return fail(p, E_MANIFEST_INVALID, "indexes nested deeper than %d levels", IMGIMPORT_MAX_DEPTH);
	if (size > (int64_t)p->o->manifest_max)
		return fail(p, E_MANIFEST_TOO_BIG, "manifest %s is %lld bytes, above the limit of %zu", ds,
			    (long long)size, p->o->manifest_max);
	if ((rc = imgsrc_blob(p->src, d, size, &existed, p->detail)))
		return rc;
	if ((rc = store_blob_read_all(p->st, d, p->o->manifest_max, &body))) {
		fail(p, rc, "cannot read manifest %s back from storage", ds);
		goto out;
	}
	if ((rc = manifest_parse(body.buf, body.len, mt, &mi, &why))) {
		fail(p, rc, "manifest %s: %s", ds, why.buf);
		goto out;
	}
	if (mi.is_index) {
		rc = oci_children(p, &body, depth);
	} else {
		for (size_t i = 0; i < mi.nrefs && !rc; i++) {
			const struct manifest_ref *r = &mi.refs[i];
			if (r->kind == REF_SUBJECT || r->external)
				continue; /* a subject need not exist; foreign layers are fetched from their urls */
			rc = take_blob(p, r->kind == REF_CONFIG ? "config" : "layer", &r->digest, r->size, NULL);
		}
	}
	if (!rc) {
		add_item(p, mi.is_index ? "index" : "manifest", d, size, mi.media_type, existed);
		plan_manifest(p, d, size, &mi, &body);
		p->mans[p->nmans - 1].from_input = 1;
	}
out:
	manifest_info_release(&mi);
	buf_release(&body);
	buf_release(&why);
	return rc;
}

/* The annotation key of a descriptor, or NULL. */
static const char *annotation(json_t *desc, const char *key)
{
	json_t *v = json_object_get(json_object_get(desc, "annotations"), key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int named(json_t *desc, const char *name)
{
	const char *a = annotation(desc, OCI_REF_NAME), *b = annotation(desc, "io.containerd.image.name");
	return (a && !strcmp(a, name)) || (b && !strcmp(b, name));
}

static void list_names(struct buf *out, json_t *list)
{
	size_t i;
	json_t *desc;
	json_array_foreach(list, i, desc) {
		const char *n = annotation(desc, OCI_REF_NAME);
		buf_adds(out, i ? ", " : "");
		if (n)
			imgsrc_quote(out, n);
		else
			buf_adds(out, "(unnamed)");
	}
}

/* Chooses the image of index.json to import: --ref, the only one, or the one named like the tag. */
static int oci_select(struct plan *p, json_t *list, json_t **out)
{
	size_t n = json_array_size(list), i;
	const char *want = p->o->ref;
	json_t *desc;
	*out = n == 1 && !want ? json_array_get(list, 0) : NULL;
	if (!n)
		return fail(p, E_BAD_REQUEST, "index.json lists no images");
	if (n > MAX_IMAGES)
		return fail(p, E_BAD_REQUEST, "index.json lists more than %d images", MAX_IMAGES);
	if (!*out) {
		json_array_foreach(list, i, desc) {
			if (named(desc, want ? want : p->o->tag)) {
				*out = desc;
				break;
			}
		}
	}
	if (!*out) {
		if (want) {
			buf_adds(p->detail, "no image named ");
			imgsrc_quote(p->detail, want);
			buf_adds(p->detail, " in index.json (names: ");
		} else {
			buf_addf(p->detail, "index.json lists %zu images; choose one with --ref NAME (names: ", n);
		}
		list_names(p->detail, list);
		buf_addch(p->detail, ')');
		return E_BAD_REQUEST;
	}
	const char *name = annotation(*out, OCI_REF_NAME);
	if (name && (n > 1 || want))
		p->res->selected = xstrdup(name);
	return 0;
}

static int oci_import(struct plan *p)
{
	struct manifest_info mi = { 0 };
	struct buf why = BUF_INIT;
	const struct buf *layout = &p->src->meta[IMGSRC_OCI_LAYOUT], *index = &p->src->meta[IMGSRC_INDEX];
	json_t *lj = NULL, *ij = NULL, *desc, *v;
	const char *mt;
	struct digest d;
	int64_t size;
	int rc;
	if (!p->src->has_meta[IMGSRC_OCI_LAYOUT]) {
		rc = fail(p, E_BAD_REQUEST, "not an OCI image layout: index.json without an oci-layout file");
		goto out;
	}
	lj = json_loadb(layout->buf, layout->len, 0, NULL);
	v = json_object_get(lj, "imageLayoutVersion");
	if (!json_is_string(v) || strncmp(json_string_value(v), "1.", 2)) {
		rc = fail(p, E_BAD_REQUEST, "oci-layout: imageLayoutVersion 1.x expected");
		goto out;
	}
	if ((rc = manifest_parse(index->buf, index->len, MT_OCI_INDEX, &mi, &why))) {
		rc = fail(p, E_BAD_REQUEST, "index.json: %s", why.buf);
		goto out;
	}
	ij = json_loadb(index->buf, index->len, 0, NULL);
	if ((rc = oci_select(p, json_object_get(ij, "manifests"), &desc)) ||
	    (rc = descriptor(p, desc, &mt, &d, &size)))
		goto out;
	rc = oci_manifest(p, mt, &d, size, 0);
out:
	manifest_info_release(&mi);
	buf_release(&why);
	json_decref(lj);
	json_decref(ij);
	return rc;
}

/* ------------------------------------------------------------------ docker save */

static int repo_tagged(json_t *entry, const char *name)
{
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(entry, "RepoTags"), i, t)
		if (json_is_string(t) && !strcmp(json_string_value(t), name))
			return 1;
	return 0;
}

static int docker_select(struct plan *p, json_t *list, json_t **out)
{
	size_t n = json_array_size(list), i;
	json_t *e;
	*out = NULL;
	if (!json_is_array(list) || !n || n > MAX_IMAGES)
		return fail(p, E_BAD_REQUEST, "manifest.json: an array of 1 to %d images expected", MAX_IMAGES);
	if (!p->o->ref && n == 1) {
		*out = json_array_get(list, 0);
		return 0;
	}
	json_array_foreach(list, i, e) {
		if (p->o->ref && repo_tagged(e, p->o->ref)) {
			*out = e;
			p->res->selected = xstrdup(p->o->ref);
			return 0;
		}
	}
	if (p->o->ref) {
		buf_adds(p->detail, "no image tagged ");
		imgsrc_quote(p->detail, p->o->ref);
		buf_adds(p->detail, " in manifest.json (tags: ");
	} else {
		buf_addf(p->detail, "manifest.json lists %zu images; choose one with --ref REPO:TAG (tags: ", n);
	}
	json_array_foreach(list, i, e) {
		json_t *t = json_array_get(json_object_get(e, "RepoTags"), 0);
		buf_adds(p->detail, i ? ", " : "");
		if (json_is_string(t))
			imgsrc_quote(p->detail, json_string_value(t));
		else
			buf_adds(p->detail, "(untagged)");
	}
	buf_addch(p->detail, ')');
	return E_BAD_REQUEST;
}

/* The archive file called by a string member of manifest.json. */
static const struct imgsrc_file *docker_file(struct plan *p, json_t *v, const char *what, int *rc)
{
	const struct imgsrc_file *f = json_is_string(v) ? imgsrc_find(p->src, json_string_value(v)) : NULL;
	*rc = 0;
	if (!json_is_string(v)) {
		*rc = fail(p, E_BAD_REQUEST, "manifest.json: %s is not a file name", what);
	} else if (!f) {
		int link = imgsrc_is_link(p->src, json_string_value(v));
		buf_addf(p->detail, "%s ", what);
		imgsrc_quote(p->detail, json_string_value(v));
		buf_adds(p->detail, link ? " named by manifest.json is a symbolic link: links in archives are never followed"
				 : " named by manifest.json is missing from the archive");
		*rc = link ? E_BAD_REQUEST : E_BLOB_UNKNOWN;
	}
	return f;
}

/* Checks one layer against its diff_id and picks its media type. */
static int docker_layer(struct plan *p, const struct imgsrc_file *f, json_t *diff_id, size_t i, const char **mt)
{
	struct digest want;
	char got[DIGEST_STR_MAX];
	if (!json_is_string(diff_id) || digest_parse(json_string_value(diff_id), &want))
		return fail(p, E_BAD_REQUEST, "image config: rootfs.diff_ids[%zu] is not a digest", i);
	if (f->nmagic >= 2 && f->magic[0] == 0x1f && f->magic[1] == 0x8b) {
		*mt = MT_DOCKER_LAYER_GZIP;
		p->res->layers_unchecked++;
		return 0;
	}
	if (f->nmagic >= 4 && !memcmp(f->magic, "\x28\xb5\x2f\xfd", 4))
		return fail(p, E_UNSUPPORTED, "layer \"%s\" is zstd-compressed, which Docker schema 2 cannot describe",
			    f->name);
	*mt = MT_DOCKER_LAYER_TAR;
	if (!digest_eq(&want, &f->digest))
		return fail(p, E_DIGEST_INVALID, "layer \"%s\" hashes to %s, but the image config's diff_id %zu is %s",
			    f->name, digest_str(&f->digest, got), i, json_string_value(diff_id));
	return 0;
}

/* Appends a descriptor in the field order docker uses. */
static void add_desc(struct buf *m, const char *mt, const struct digest *d, int64_t size)
{
	char ds[DIGEST_STR_MAX];
	buf_addf(m, "{\"mediaType\":\"%s\",\"size\":%lld,\"digest\":\"%s\"}", mt, (long long)size, digest_str(d, ds));
}

static int docker_import(struct plan *p)
{
	const struct buf *mj = &p->src->meta[IMGSRC_MANIFEST];
	struct buf cfg = BUF_INIT, m = BUF_INIT, why = BUF_INIT;
	struct manifest_info mi = { 0 };
	json_t *root = json_loadb(mj->buf, mj->len, JSON_REJECT_DUPLICATES, NULL), *entry, *cj = NULL;
	const struct imgsrc_file *cf = NULL, *lf;
	struct digest d;
	size_t i;
	int rc;
	if (!root) {
		rc = fail(p, E_BAD_REQUEST, "manifest.json is not valid JSON");
		goto out;
	}
	if ((rc = docker_select(p, root, &entry)) || !(cf = docker_file(p, json_object_get(entry, "Config"), "config", &rc)))
		goto out;
	json_t *layers = json_object_get(entry, "Layers");
	if (!json_is_array(layers) || json_array_size(layers) > MANIFEST_MAX_REFS - 1) {
		rc = fail(p, E_BAD_REQUEST, "manifest.json: Layers must be an array of file names");
		goto out;
	}
	if ((rc = store_blob_read_all(p->st, &cf->digest, IMGIMPORT_CONFIG_MAX, &cfg))) {
		fail(p, rc, "cannot read the image config \"%s\" back (more than %d bytes?)", cf->name,
		     IMGIMPORT_CONFIG_MAX);
		goto out;
	}
	cj = json_loadb(cfg.buf, cfg.len, JSON_REJECT_DUPLICATES, NULL);
	json_t *diff_ids = json_object_get(json_object_get(cj, "rootfs"), "diff_ids");
	if (!json_is_array(diff_ids) || json_array_size(diff_ids) != json_array_size(layers)) {
		rc = fail(p, E_BAD_REQUEST, "image config \"%s\": rootfs.diff_ids must list one digest per layer (%zu)",
			  cf->name, json_array_size(layers));
		goto out;
	}
	take_file(p, "config", cf, MT_DOCKER_CONFIG);
	buf_addf(&m, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":", MT_DOCKER_MANIFEST);
	add_desc(&m, MT_DOCKER_CONFIG, &cf->digest, cf->size);
	buf_adds(&m, ",\"layers\":[");
	for (i = 0; i < json_array_size(layers); i++) {
		const char *mt;
		if (!(lf = docker_file(p, json_array_get(layers, i), "layer", &rc)) ||
		    (rc = docker_layer(p, lf, json_array_get(diff_ids, i), i, &mt)))
			goto out;
		take_file(p, "layer", lf, mt);
		buf_adds(&m, i ? "," : "");
		add_desc(&m, mt, &lf->digest, lf->size);
	}
	buf_adds(&m, "]}");
	digest_of(DIGEST_SHA256, m.buf, m.len, &d);
	if ((rc = manifest_parse(m.buf, m.len, MT_DOCKER_MANIFEST, &mi, &why))) {
		fail(p, rc, "converted manifest: %s", why.buf);
		goto out;
	}
	/* its bytes go into the database with the manifest (store_manifest_put()) */
	struct store_reader rd;
	int existed = store_blob_open_any(p->st, &d, &rd) == 0;
	store_reader_release(&rd);
	add_item(p, "manifest", &d, (int64_t)m.len, MT_DOCKER_MANIFEST, existed);
	plan_manifest(p, &d, (int64_t)m.len, &mi, &m);
out:
	manifest_info_release(&mi);
	json_decref(root);
	json_decref(cj);
	buf_release(&cfg);
	buf_release(&m);
	buf_release(&why);
	return rc;
}

/* ------------------------------------------------------------------ commit */

/*
 * Checks that blob d is (still) stored. A collection running beside the
 * import may have set an unlinked file aside just before it was linked:
 * it puts such a file back within seconds once it sees the link, so this
 * waits a little before giving up.
 */
static int still_stored(struct plan *p, const struct digest *d)
{
	char ds[DIGEST_STR_MAX];
	for (int i = 0; i < STILL_STORED_POLLS; i++) {
		if (store_blob_held(p->st, d, NULL) == 0)
			return 0;
		nanosleep(&(struct timespec){ 0, 500 * 1000 * 1000 }, NULL);
	}
	return fail(p, E_BLOB_UNKNOWN, "blob %s disappeared from storage during the import "
		    "(collected by a garbage collection?); run the import again", digest_str(d, ds));
}

/*
 * An object store keeps no object for content the database holds (what
 * keeps an object is a blob record without content): the manifests of an
 * OCI input went into the store as blobs on their way in, and once
 * committed their objects are garbage that the next collection would
 * delete and fsck would report. The import drops them itself. A local
 * directory keeps such a file with its record, as before.
 */
static void drop_manifest_objects(struct plan *p)
{
	struct blob_backend *be = p->st->blobs;
	struct buf loc = BUF_INIT;
	char ds[DIGEST_STR_MAX];
	if (!be->ops->locates)
		return;
	for (size_t i = 0; i < p->nmans; i++) {
		int found = 0, rc;
		if (!p->mans[i].from_input || meta_blob_location(p->st->meta, &p->mans[i].d, &loc, &found) || !found)
			continue;
		if ((rc = be->ops->remove(be, &p->mans[i].d, loc.buf)))
			log_warn("import: removing the object of manifest %s failed (%d); garbage collection will",
				 digest_str(&p->mans[i].d, ds), rc);
	}
	buf_release(&loc);
}

/* Links the blobs, then puts the manifests (children first); only the last one moves the tag. */
static int commit(struct plan *p)
{
	const char *repo = p->o->repo;
	char ds[DIGEST_STR_MAX];
	int rc = 0;
	for (size_t i = 0; i < p->nblobs && !rc; i++)
		if ((rc = store_blob_link(p->st, repo, &p->blobs[i].d, p->blobs[i].size)))
			fail(p, rc, "cannot record blob %s", digest_str(&p->blobs[i].d, ds));
	/* Linked blobs are protected from garbage collection; check none went before that. */
	for (size_t i = 0; i < p->nblobs && !rc; i++)
		rc = still_stored(p, &p->blobs[i].d);
	for (size_t i = 0; i < p->nmans && !rc; i++) {
		struct plan_manifest *pm = &p->mans[i];
		struct store_put_result put;
		int last = i + 1 == p->nmans;
		/* the one write path of manifests, as a push takes it: bytes and records in one commit */
		rc = store_manifest_put(p->st, repo, pm->d.alg, &pm->d, pm->body.buf, pm->body.len, pm->mi.media_type,
					last ? p->o->tag : NULL, p->o->actor, &put, p->detail);
		store_put_result_release(&put);
		if (rc && rc != E_TAG_IMMUTABLE && !p->detail->len)
			fail(p, rc, "cannot record manifest %s", digest_str(&pm->d, ds));
	}
	if (!rc)
		drop_manifest_objects(p);
	return rc;
}

/* Forgets what a failed attempt planned and reported. */
static void plan_reset(struct plan *p)
{
	plan_manifests_release(p);
	for (size_t i = 0; i < p->res->nitems; i++)
		free(p->res->items[i].media_type);
	free(p->res->selected);
	p->res->selected = NULL;
	p->res->nitems = 0;
	p->nmans = p->nblobs = 0;
}

int store_import(struct store *st, const char *path, const struct imgimport_opts *o,
		 struct imgimport_result *res, struct buf *detail)
{
	struct imgsrc src;
	struct plan p = { .st = st, .src = &src, .o = o, .res = res, .detail = detail };
	int committing = 0, rc;
	memset(res, 0, sizeof(*res));
	memset(&src, 0, sizeof(src));
	rc = imgsrc_open(&src, st, o->repo, path, detail);
	res->archive_bytes = src.bytes;
	if (rc)
		goto out;
	int docker = src.has_meta[IMGSRC_MANIFEST] && src.kind == IMGSRC_TAR;
	if (src.has_meta[IMGSRC_INDEX]) {
		size_t mark = detail->len;
		res->format = src.kind == IMGSRC_DIR ? "oci-layout" : "oci-archive";
		rc = oci_import(&p);
		if (rc == E_BLOB_UNKNOWN && docker) {
			/* A docker save (Docker 25 and later) holds both forms; its index may name
			 * platforms it did not save. manifest.json describes what it did save. */
			plan_reset(&p);
			buf_setlen(detail, mark);
			res->format = "docker-archive";
			res->fallback = 1;
			rc = docker_import(&p);
		}
	} else if (docker) {
		res->format = "docker-archive";
		rc = docker_import(&p);
	} else {
		rc = fail(&p, E_BAD_REQUEST, "neither an OCI image layout (no index.json) nor a docker save archive "
			  "(no manifest.json)");
		if (src.nested)
			buf_addf(detail, "; found \"%s\": pack the archive from inside that directory "
				 "(tar -C DIR -cf FILE .)", src.nested);
	}
	if (!rc) {
		struct plan_manifest *top = &p.mans[p.nmans - 1];
		res->top = top->d;
		res->top_size = top->size;
		res->top_media_type = xstrdup(top->mi.media_type);
		committing = 1;
		rc = commit(&p);
	}
out:
	if (rc && !committing)
		imgsrc_unlink_fresh(&src); /* refused before anything was committed: no trace in the repository */
	plan_manifests_release(&p);
	free(p.mans);
	free(p.blobs);
	imgsrc_release(&src);
	return rc;
}

void imgimport_result_release(struct imgimport_result *res)
{
	for (size_t i = 0; i < res->nitems; i++)
		free(res->items[i].media_type);
	free(res->items);
	free(res->top_media_type);
	free(res->selected);
	memset(res, 0, sizeof(*res));
}
