/* manifest: validation of pushed manifests and extraction of their references (see manifest.h). */
#include "manifest.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "xalloc.h"

/* Longest piece of a client-supplied value echoed back in a detail message (a sha512 digest fits). */
#define QUOTE_SRC_MAX 160
/* Worst case: every byte escaped as \u00XX, plus quotes, " (truncated)" and the NUL. */
#define QUOTE_BUF (QUOTE_SRC_MAX * 6 + 16)
/* A field location such as "manifests[123].platform.os.features[4]". */
#define WHERE_MAX 96

static const struct {
	const char *mt;
	int is_index;
	int docker;
} known_types[] = {
	{ MT_OCI_MANIFEST, 0, 0 },
	{ MT_OCI_INDEX, 1, 0 },
	{ MT_DOCKER_MANIFEST, 0, 1 },
	{ MT_DOCKER_LIST, 1, 1 },
};

/* Layers that may live outside the registry when they carry urls. */
static const char *const foreign_layer_types[] = {
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* What one descriptor says; media_type is borrowed from the JSON tree. */
struct desc {
	const char *media_type;
	struct digest digest;
	int64_t size;
	int has_urls;
};

/* Appends the explanation to detail when it is not NULL; returns rc. */
__attribute__((format(printf, 3, 4)))
static int fail(struct buf *detail, int rc, const char *fmt, ...)
{
	va_list ap;
	if (detail) {
		va_start(ap, fmt);
		buf_vaddf(detail, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/*
 * Writes s into out as a JSON string literal, cut after QUOTE_SRC_MAX bytes
 * (then followed by " (truncated)") so that a hostile value cannot bloat an
 * error reply. Control characters are escaped and non-ASCII bytes shown as '?':
 * the offending values are digests, media types and keys, and a raw header
 * byte must not make the reply invalid UTF-8.
 */
static const char *quote(char out[QUOTE_BUF], const char *s)
{
	size_t n = strnlen(s, QUOTE_SRC_MAX + 1), o = 0;
	int cut = n > QUOTE_SRC_MAX;

	if (cut)
		n = QUOTE_SRC_MAX;
	out[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, 7, "\\u%04x", c);
		} else {
			out[o++] = c < 0x80 ? (char)c : '?';
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	if (cut)
		strcat(out + o, " (truncated)");
	return out;
}

/* Joins a field location and a key: ("layers[1]", "digest") -> "layers[1].digest". */
static const char *at(char out[WHERE_MAX], const char *where, const char *key)
{
	snprintf(out, WHERE_MAX, "%s%s%s", where, *where ? "." : "", key);
	return out;
}

/* Index of mt in known_types (media types compare case-insensitively), or -1. */
static int known_index(const char *mt)
{
	for (size_t i = 0; i < NELEM(known_types); i++)
		if (!strcasecmp(mt, known_types[i].mt))
			return (int)i;
	return -1;
}

int manifest_media_type_known(const char *mt)
{
	return mt && known_index(mt) >= 0;
}

static int is_schema1_type(const char *mt)
{
	return mt && (!strcasecmp(mt, MT_DOCKER_V1) || !strcasecmp(mt, MT_DOCKER_V1_SIGNED));
}

static int is_foreign_layer(const char *mt)
{
	for (size_t i = 0; i < NELEM(foreign_layer_types); i++)
		if (!strcasecmp(mt, foreign_layer_types[i]))
			return 1;
	return 0;
}

/*
 * The descriptor media type grammar of the image spec (RFC 6838 names):
 * type "/" subtype, each 1-127 of [A-Za-z0-9!#$&^_.+-] starting with an
 * alphanumeric. Parameters are not allowed, so the value is safe to store
 * and to echo in headers.
 */
static int media_type_ok(const char *s)
{
	static const char extra[] = "!#$&^_.+-";
	int part = 0;

	for (;;) {
		size_t n = 0;
		for (; s[n] && s[n] != '/'; n++) {
			unsigned char c = (unsigned char)s[n];
			int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				    (c >= '0' && c <= '9');
			if (!alnum && (n == 0 || !strchr(extra, c)))
				return 0;
		}
		if (n == 0 || n > 127)
			return 0;
		s += n;
		if (part++ == 1)
			return *s == '\0';
		if (*s != '/')
			return 0;
		s++;
	}
}

/*
 * Reads an optional string member key of obj into *out (borrowed; NULL when
 * absent). When is_media_type, the value must follow media_type_ok().
 */
static int opt_string(json_t *obj, const char *where, const char *key, int is_media_type,
		      const char **out, struct buf *detail)
{
	char w[WHERE_MAX], q[QUOTE_BUF];
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return fail(detail, E_MANIFEST_INVALID, "%s: must be a string", at(w, where, key));
	if (is_media_type && !media_type_ok(json_string_value(v)))
		return fail(detail, E_MANIFEST_INVALID, "%s: invalid media type %s",
			    at(w, where, key), quote(q, json_string_value(v)));
	*out = json_string_value(v);
	return 0;
}

/* An optional member key of obj that, when present, must be an array of strings. */
static int opt_string_array(json_t *obj, const char *where, const char *key, struct buf *detail)
{
	char w[WHERE_MAX];
	json_t *a = json_object_get(obj, key), *v;
	size_t i;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return fail(detail, E_MANIFEST_INVALID, "%s: must be an array", at(w, where, key));
	json_array_foreach(a, i, v) {
		if (!json_is_string(v))
			return fail(detail, E_MANIFEST_INVALID, "%s[%zu]: must be a string",
				    at(w, where, key), i);
	}
	return 0;
}

/* An optional member key of obj that, when present, must map strings to strings. */
static int opt_string_map(json_t *obj, const char *where, const char *key, struct buf *detail)
{
	char w[WHERE_MAX], q[QUOTE_BUF];
	json_t *m = json_object_get(obj, key), *v;
	const char *k;

	if (!m)
		return 0;
	if (!json_is_object(m))
		return fail(detail, E_MANIFEST_INVALID, "%s: must be an object", at(w, where, key));
	json_object_foreach(m, k, v) {
		if (!json_is_string(v))
			return fail(detail, E_MANIFEST_INVALID, "%s[%s]: must be a string",
				    at(w, where, key), quote(q, k));
	}
	return 0;
}

/* Type checks on the optional platform object of an index entry. */
static int check_platform(json_t *d, const char *where, struct buf *detail)
{
	static const char *const strings[] = { "architecture", "os", "os.version", "variant" };
	char w[WHERE_MAX];
	const char *ignored;
	json_t *p = json_object_get(d, "platform");
	int rc = 0;

	if (!p)
		return 0;
	at(w, where, "platform");
	if (!json_is_object(p))
		return fail(detail, E_MANIFEST_INVALID, "%s: must be an object", w);
	for (size_t i = 0; i < NELEM(strings) && !rc; i++)
		rc = opt_string(p, w, strings[i], 0, &ignored, detail);
	if (!rc)
		rc = opt_string_array(p, w, "os.features", detail);
	if (!rc)
		rc = opt_string_array(p, w, "features", detail);
	return rc;
}

/*
 * Validates the descriptor d found at where (e.g. "layers[2]") and fills
 * *out. Unknown members are ignored, as the descriptor spec requires.
 */
static int parse_descriptor(json_t *d, const char *where, struct desc *out, struct buf *detail)
{
	char w[WHERE_MAX], q[QUOTE_BUF];
	const char *ignored;
	json_t *v;
	int rc;

	if (!json_is_object(d))
		return fail(detail, E_MANIFEST_INVALID, "%s: must be an object", where);

	rc = opt_string(d, where, "mediaType", 1, &out->media_type, detail);
	if (rc)
		return rc;
	if (!out->media_type)
		return fail(detail, E_MANIFEST_INVALID, "%s: missing", at(w, where, "mediaType"));

	v = json_object_get(d, "digest");
	if (!v)
		return fail(detail, E_MANIFEST_INVALID, "%s: missing", at(w, where, "digest"));
	if (!json_is_string(v))
		return fail(detail, E_MANIFEST_INVALID, "%s: must be a string", at(w, where, "digest"));
	if (digest_parse(json_string_value(v), &out->digest))
		return fail(detail, E_MANIFEST_INVALID, "%s: invalid digest %s",
			    at(w, where, "digest"), quote(q, json_string_value(v)));

	v = json_object_get(d, "size");
	if (!v)
		return fail(detail, E_MANIFEST_INVALID, "%s: missing", at(w, where, "size"));
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return fail(detail, E_MANIFEST_INVALID, "%s: must be a non-negative integer",
			    at(w, where, "size"));
	out->size = (int64_t)json_integer_value(v);

	rc = opt_string_array(d, where, "urls", detail);
	if (!rc)
		rc = opt_string_map(d, where, "annotations", detail);
	if (!rc)
		rc = opt_string(d, where, "artifactType", 1, &ignored, detail);
	if (!rc)
		rc = opt_string(d, where, "data", 0, &ignored, detail);
	if (!rc)
		rc = check_platform(d, where, detail);
	out->has_urls = json_array_size(json_object_get(d, "urls")) > 0;
	return rc;
}

/* mi->refs was sized by check_shape(), which counted every descriptor added here. */
static void add_ref(struct manifest_info *mi, enum ref_kind kind, const struct desc *d, int external)
{
	struct manifest_ref *r = &mi->refs[mi->nrefs++];
	r->kind = kind;
	r->digest = d->digest;
	r->size = d->size;
	r->external = external;
}

/* Parses every descriptor of the array a (named key) as refs of the given kind. */
static int parse_descriptor_array(json_t *a, const char *key, enum ref_kind kind,
				  struct manifest_info *mi, struct buf *detail)
{
	char w[WHERE_MAX];
	struct desc d;
	json_t *v;
	size_t i;

	json_array_foreach(a, i, v) {
		snprintf(w, sizeof(w), "%s[%zu]", key, i);
		int rc = parse_descriptor(v, w, &d, detail);
		if (rc)
			return rc;
		add_ref(mi, kind, &d, kind == REF_LAYER && d.has_urls && is_foreign_layer(d.media_type));
	}
	return 0;
}

/*
 * Settles the manifest's media type into *kind (an index of known_types).
 * The body's mediaType wins but must agree with the Content-Type; without
 * it the Content-Type decides; without both, the shape of the document.
 */
static int resolve_media_type(json_t *root, const char *ct_type, int *kind, struct buf *detail)
{
	char q1[QUOTE_BUF], q2[QUOTE_BUF];
	const char *body_mt = NULL, *mt;
	json_t *v = json_object_get(root, "mediaType");

	if (v && !json_is_string(v))
		return fail(detail, E_MANIFEST_INVALID, "mediaType: must be a string");
	if (v)
		body_mt = json_string_value(v);
	if (body_mt && ct_type && strcasecmp(body_mt, ct_type))
		return fail(detail, E_MEDIATYPE_MISMATCH, "mediaType %s does not match content type %s",
			    quote(q1, body_mt), quote(q2, ct_type));

	mt = body_mt ? body_mt : ct_type;
	if (!mt && json_object_get(root, "manifests"))
		mt = MT_OCI_INDEX;
	else if (!mt && json_object_get(root, "config"))
		mt = MT_OCI_MANIFEST;
	if (!mt)
		return fail(detail, E_MANIFEST_INVALID, "cannot tell the manifest media type: "
			    "no mediaType, content type, \"config\" or \"manifests\"");
	*kind = known_index(mt);
	if (*kind < 0)
		return fail(detail, E_MANIFEST_INVALID, "unsupported manifest media type %s", quote(q1, mt));
	return 0;
}

/*
 * Checks which members may appear for the given kind and counts the
 * descriptors, so the refs array is sized once and bounded up front.
 */
static int check_shape(json_t *root, int kind, size_t *count, struct buf *detail)
{
	json_t *config = json_object_get(root, "config");
	json_t *layers = json_object_get(root, "layers");
	json_t *manifests = json_object_get(root, "manifests");
	const char *what = known_types[kind].is_index ? "an image index" : "an image manifest";

	if (known_types[kind].is_index) {
		if (config || layers)
			return fail(detail, E_MANIFEST_INVALID, "\"%s\" not allowed in %s",
				    config ? "config" : "layers", what);
		if (!manifests)
			return fail(detail, E_MANIFEST_INVALID, "manifests: missing");
		if (!json_is_array(manifests))
			return fail(detail, E_MANIFEST_INVALID, "manifests: must be an array");
		*count = json_array_size(manifests);
	} else {
		if (manifests)
			return fail(detail, E_MANIFEST_INVALID, "\"manifests\" not allowed in %s", what);
		if (!config)
			return fail(detail, E_MANIFEST_INVALID, "config: missing");
		/* OCI artifacts may omit layers; Docker schema 2 always lists them. */
		if (!layers && known_types[kind].docker)
			return fail(detail, E_MANIFEST_INVALID, "layers: missing");
		if (layers && !json_is_array(layers))
			return fail(detail, E_MANIFEST_INVALID, "layers: must be an array");
		*count = 1 + json_array_size(layers);
	}
	if (json_object_get(root, "subject"))
		(*count)++;
	if (*count > MANIFEST_MAX_REFS)
		return fail(detail, E_MANIFEST_INVALID, "too many descriptors: %zu (at most %d)",
			    *count, MANIFEST_MAX_REFS);
	return 0;
}

/* Fills refs, subject and artifact type; root has passed check_shape(). */
static int parse_refs(json_t *root, struct manifest_info *mi, struct buf *detail)
{
	const char *artifact_type;
	json_t *subject = json_object_get(root, "subject");
	struct desc d;
	int rc;

	rc = opt_string(root, "", "artifactType", 1, &artifact_type, detail);
	if (rc)
		return rc;
	if (mi->is_index) {
		rc = parse_descriptor_array(json_object_get(root, "manifests"), "manifests", REF_CHILD,
					    mi, detail);
	} else {
		rc = parse_descriptor(json_object_get(root, "config"), "config", &d, detail);
		if (rc)
			return rc;
		add_ref(mi, REF_CONFIG, &d, 0);
		/* The image spec: without artifactType, the config media type names the artifact. */
		if (!artifact_type)
			artifact_type = d.media_type;
		rc = parse_descriptor_array(json_object_get(root, "layers"), "layers", REF_LAYER,
					    mi, detail);
	}
	if (rc)
		return rc;
	if (subject) {
		rc = parse_descriptor(subject, "subject", &d, detail);
		if (rc)
			return rc;
		add_ref(mi, REF_SUBJECT, &d, 0);
		mi->has_subject = 1;
		mi->subject = d.digest;
	}
	if (artifact_type)
		mi->artifact_type = xstrdup(artifact_type);
	return 0;
}

static int parse_annotations(json_t *root, struct manifest_info *mi, struct buf *detail)
{
	json_t *a = json_object_get(root, "annotations");
	int rc = opt_string_map(root, "", "annotations", detail);

	if (rc || !a)
		return rc;
	/* Insertion order is kept by jansson, so the text follows the body. */
	mi->annotations = json_dumps(a, JSON_COMPACT);
	if (!mi->annotations)
		die("cannot serialise manifest annotations");
	return 0;
}

/* Everything after decoding: the rules applied to the top-level object. */
static int parse_root(json_t *root, const char *ct_type, struct manifest_info *mi, struct buf *detail)
{
	json_t *version = json_object_get(root, "schemaVersion");
	json_t *mt = json_object_get(root, "mediaType");
	size_t count = 0;
	int kind, rc;

	if ((json_is_integer(version) && json_integer_value(version) == 1) ||
	    (json_is_string(mt) && is_schema1_type(json_string_value(mt))))
		return fail(detail, E_SCHEMA1, "docker schema 1 manifests are not supported");
	if (!version)
		return fail(detail, E_MANIFEST_INVALID, "schemaVersion: missing");
	if (!json_is_integer(version) || json_integer_value(version) != 2)
		return fail(detail, E_MANIFEST_INVALID, "schemaVersion: must be the integer 2");
	if (json_object_get(root, "manifests") &&
	    (json_object_get(root, "layers") || json_object_get(root, "config")))
		return fail(detail, E_MANIFEST_INVALID, "both \"manifests\" and \"%s\" present",
			    json_object_get(root, "layers") ? "layers" : "config");

	rc = resolve_media_type(root, ct_type, &kind, detail);
	if (!rc)
		rc = check_shape(root, kind, &count, detail);
	if (rc)
		return rc;
	mi->media_type = xstrdup(known_types[kind].mt);
	mi->is_index = known_types[kind].is_index;
	if (count)
		mi->refs = xcalloc(count, sizeof(*mi->refs));
	rc = parse_refs(root, mi, detail);
	if (!rc)
		rc = parse_annotations(root, mi, detail);
	return rc;
}

/* The media type part of a Content-Type value (no parameters or blanks); NULL when empty. */
static char *content_type_media(const char *ct)
{
	size_t n;

	if (!ct)
		return NULL;
	ct += strspn(ct, " \t");
	n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return n ? xstrndup(ct, n) : NULL;
}

/* Appends a decoder message, masking bytes that do not belong in a reply. */
static void add_json_error(struct buf *detail, const json_error_t *jerr)
{
	buf_addf(detail, "invalid json at line %d column %d: ", jerr->line, jerr->column);
	for (const char *p = jerr->text; *p; p++)
		buf_addch(detail, (*p >= 0x20 && *p < 0x7f) ? *p : '?');
}

int manifest_parse(const char *body, size_t len, const char *content_type,
		   struct manifest_info *out, struct buf *detail)
{
	char *ct_type = content_type_media(content_type);
	json_t *root = NULL;
	json_error_t jerr;
	int rc;

	memset(out, 0, sizeof(*out));
	if (is_schema1_type(ct_type)) {
		rc = fail(detail, E_SCHEMA1, "docker schema 1 manifests are not supported");
		goto out;
	}
	if (len == 0) {
		rc = fail(detail, E_MANIFEST_INVALID, "empty manifest");
		goto out;
	}
	/* Duplicate keys would let two readers of the same bytes see different manifests. */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (detail)
			add_json_error(detail, &jerr);
		rc = E_MANIFEST_INVALID;
		goto out;
	}
	if (!json_is_object(root)) {
		rc = fail(detail, E_MANIFEST_INVALID, "manifest must be a json object");
		goto out;
	}
	rc = parse_root(root, ct_type, out, detail);
out:
	if (rc)
		manifest_info_release(out);
	json_decref(root);
	free(ct_type);
	return rc;
}

void manifest_info_release(struct manifest_info *mi)
{
	free(mi->media_type);
	free(mi->artifact_type);
	free(mi->annotations);
	free(mi->refs);
	memset(mi, 0, sizeof(*mi));
}
