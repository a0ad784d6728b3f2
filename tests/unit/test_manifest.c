/* Unit tests for storage/manifest: media types, structure, descriptors, refs and hostile input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "manifest.h"
#include "t.h"

#define H64(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c \
	       c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c
#define D_A "sha256:" H64("a")
#define D_B "sha256:" H64("b")
#define D_C "sha256:" H64("c")
#define D_S "sha256:" H64("5")
#define D_512 "sha512:" H64("d") H64("e")

#define CONFIG_OCI "application/vnd.oci.image.config.v1+json"
#define CONFIG_DOCKER "application/vnd.docker.container.image.v1+json"
#define LAYER_OCI "application/vnd.oci.image.layer.v1.tar+gzip"
#define LAYER_DOCKER "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define LAYER_FOREIGN "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define LAYER_NONDIST "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

/* A descriptor as JSON text. */
#define DESC(mt, dg, size) "{\"mediaType\":\"" mt "\",\"digest\":\"" dg "\",\"size\":" #size "}"

static struct buf detail = BUF_INIT;

static int parse(const char *body, const char *ct, struct manifest_info *mi)
{
	buf_reset(&detail);
	return manifest_parse(body, strlen(body), ct, mi, &detail);
}

static int is_released(const struct manifest_info *mi)
{
	return !mi->media_type && !mi->artifact_type && !mi->annotations && !mi->refs &&
	       !mi->nrefs && !mi->is_index && !mi->has_subject;
}

/*
 * Expects body (pushed with ct) to fail with rc and a detail holding want;
 * also checks the detail's form and that *out was left released.
 */
#define EXPECT_FAIL(body, ct, rc, want) expect_fail(__LINE__, body, ct, rc, want)
static void expect_fail(int line, const char *body, const char *ct, int rc, const char *want)
{
	struct manifest_info mi;
	memset(&mi, 0xa5, sizeof(mi)); /* garbage in: manifest_parse must not read it */
	int got = parse(body, ct, &mi);
	if (got != rc || !strstr(detail.buf, want))
		fprintf(stderr, "line %d: rc %d (want %d), detail \"%s\" (want \"%s\")\n", line, got,
			rc, detail.buf, want);
	CHECK_EQ_INT(got, rc);
	CHECK(strstr(detail.buf, want) != NULL);
	CHECK(detail.len > 0 && detail.buf[detail.len - 1] != '.');
	CHECK(detail.buf[0] < 'A' || detail.buf[0] > 'Z');
	CHECK(is_released(&mi));
	manifest_info_release(&mi);
	manifest_info_release(&mi);
}

static char *oci_manifest_with(const char *config, const char *layers, const char *extra)
{
	struct buf b = BUF_INIT;
	buf_addf(&b, "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\"%s%s%s%s%s}",
		 config ? ",\"config\":" : "", config ? config : "",
		 layers ? ",\"layers\":" : "", layers ? layers : "", extra ? extra : "");
	return buf_detach(&b, NULL);
}

/* An OCI manifest whose single layer is layer (JSON text). */
static void expect_layer_fail(const char *layer, const char *want)
{
	struct buf layers = BUF_INIT;
	buf_addf(&layers, "[" DESC(LAYER_OCI, D_B, 1) ",%s]", layer);
	char *body = oci_manifest_with(DESC(CONFIG_OCI, D_A, 2), layers.buf, NULL);
	EXPECT_FAIL(body, MT_OCI_MANIFEST, E_MANIFEST_INVALID, want);
	free(body);
	buf_release(&layers);
}

static void test_oci_manifest(void)
{
	struct manifest_info mi;
	const char *body =
		"{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"" MT_OCI_MANIFEST "\",\n"
		"  \"config\": " DESC(CONFIG_OCI, D_A, 7023) ",\n"
		"  \"layers\": [" DESC(LAYER_OCI, D_B, 32654) ", " DESC(LAYER_OCI, D_512, 0) "]\n}\n";

	CHECK_EQ_INT(parse(body, MT_OCI_MANIFEST, &mi), 0);
	CHECK_STR(mi.media_type, MT_OCI_MANIFEST);
	CHECK_EQ_INT(mi.is_index, 0);
	CHECK_STR(mi.artifact_type, CONFIG_OCI);
	CHECK(mi.annotations == NULL);
	CHECK_EQ_INT(mi.has_subject, 0);
	CHECK_EQ_INT(mi.nrefs, 3);
	CHECK_EQ_INT(mi.refs[0].kind, REF_CONFIG);
	CHECK_STR(mi.refs[0].digest.hex, H64("a"));
	CHECK_EQ_INT(mi.refs[0].size, 7023);
	CHECK_EQ_INT(mi.refs[1].kind, REF_LAYER);
	CHECK_STR(mi.refs[1].digest.hex, H64("b"));
	CHECK_EQ_INT(mi.refs[1].size, 32654);
	CHECK_EQ_INT(mi.refs[1].external, 0);
	CHECK_EQ_INT(mi.refs[2].kind, REF_LAYER);
	CHECK_EQ_INT(mi.refs[2].digest.alg, DIGEST_SHA512);
	CHECK_EQ_INT(mi.refs[2].size, 0);
	CHECK_EQ_INT(detail.len, 0);
	manifest_info_release(&mi);
	CHECK(is_released(&mi));
	manifest_info_release(&mi);

	/* no mediaType, no Content-Type: "config" makes it an OCI image manifest */
	CHECK_EQ_INT(parse("{\"schemaVersion\":2,\"config\":" DESC(CONFIG_OCI, D_A, 1) ",\"layers\":[]}",
			   NULL, &mi), 0);
	CHECK_STR(mi.media_type, MT_OCI_MANIFEST);
	CHECK_EQ_INT(mi.nrefs, 1);
	manifest_info_release(&mi);

	/* no mediaType in the body: the Content-Type (with parameters) decides */
	CHECK_EQ_INT(parse("{\"schemaVersion\":2,\"config\":" DESC(CONFIG_OCI, D_A, 1) ",\"layers\":[]}",
			   "application/vnd.oci.image.manifest.v1+json; charset=utf-8", &mi), 0);
	CHECK_STR(mi.media_type, MT_OCI_MANIFEST);
	manifest_info_release(&mi);

	/* an empty Content-Type counts as absent */
	CHECK_EQ_INT(parse(body, " ", &mi), 0);
	CHECK_STR(mi.media_type, MT_OCI_MANIFEST);
	manifest_info_release(&mi);

	/* OCI allows an artifact without layers at all */
	CHECK_EQ_INT(parse("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
			   "\"config\":" DESC(MT_OCI_EMPTY, D_A, 2) "}", MT_OCI_MANIFEST, &mi), 0);
	CHECK_EQ_INT(mi.nrefs, 1);
	manifest_info_release(&mi);

	/* unknown members are ignored, here and in descriptors */
	CHECK_EQ_INT(parse("{\"schemaVersion\":2,\"x-extra\":[1,{}],\"config\":{\"mediaType\":\"" CONFIG_OCI
			   "\",\"digest\":\"" D_A "\",\"size\":1,\"whatever\":null},\"layers\":[]}", NULL, &mi), 0);
	manifest_info_release(&mi);
}

static void test_oci_index(void)
{
	struct manifest_info mi;
	const char *body =
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":["
		"{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D_A "\",\"size\":7143,"
		"\"platform\":{\"architecture\":\"ppc64le\",\"os\":\"linux\"}},"
		"{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D_B "\",\"size\":7682,"
		"\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\","
		"\"os.version\":\"10.0\",\"os.features\":[\"win32k\"],\"features\":[]},"
		"\"annotations\":{\"k\":\"v\"},\"urls\":[]}],"
		"\"annotations\":{\"com.example.key1\":\"value1\"}}";

	CHECK_EQ_INT(parse(body, "application/vnd.oci.image.index.v1+json; charset=utf-8", &mi), 0);
	CHECK_STR(mi.media_type, MT_OCI_INDEX);
	CHECK_EQ_INT(mi.is_index, 1);
	CHECK(mi.artifact_type == NULL);
	CHECK_STR(mi.annotations, "{\"com.example.key1\":\"value1\"}");
	CHECK_EQ_INT(mi.nrefs, 2);
	CHECK_EQ_INT(mi.refs[0].kind, REF_CHILD);
	CHECK_STR(mi.refs[0].digest.hex, H64("a"));
	CHECK_EQ_INT(mi.refs[0].size, 7143);
	CHECK_EQ_INT(mi.refs[1].kind, REF_CHILD);
	CHECK_STR(mi.refs[1].digest.hex, H64("b"));
	manifest_info_release(&mi);

	/* inferred from "manifests"; an empty index is valid and has no refs */
	CHECK_EQ_INT(parse("{\"schemaVersion\":2,\"manifests\":[]}", NULL, &mi), 0);
	CHECK_STR(mi.media_type, MT_OCI_INDEX);
	CHECK_EQ_INT(mi.is_index, 1);
	CHECK_EQ_INT(mi.nrefs, 0);
	manifest_info_release(&mi);

	/* an index may be an artifact too */
	CHECK_EQ_INT(parse("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\","
			   "\"artifactType\":\"application/vnd.example.bundle\",\"manifests\":["
			   DESC(MT_OCI_MANIFEST, D_A, 1) "],\"subject\":" DESC(MT_OCI_INDEX, D_S, 9) "}",
			   MT_OCI_INDEX, &mi), 0);
	CHECK_STR(mi.artifact_type, "application/vnd.example.bundle");
	CHECK_EQ_INT(mi.has_subject, 1);
	CHECK_STR(mi.subject.hex, H64("5"));
	CHECK_EQ_INT(mi.nrefs, 2);
	CHECK_EQ_INT(mi.refs[1].kind, REF_SUBJECT);
	manifest_info_release(&mi);
}

static void test_docker(void)
{
	struct manifest_info mi;
	const char *manifest =
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
		"\"config\":" DESC(CONFIG_DOCKER, D_A, 1469) ","
		"\"layers\":[" DESC(LAYER_DOCKER, D_B, 2479) "]}";
	const char *list =
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_LIST "\",\"manifests\":["
		"{\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"digest\":\"" D_A "\",\"size\":528,"
		"\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
		"{\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"digest\":\"" D_B "\",\"size\":527,"
		"\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}}]}";

	CHECK_EQ_INT(parse(manifest, MT_DOCKER_MANIFEST, &mi), 0);
	CHECK_STR(mi.media_type, MT_DOCKER_MANIFEST);
	CHECK_EQ_INT(mi.is_index, 0);
	CHECK_STR(mi.artifact_type, CONFIG_DOCKER);
	CHECK_EQ_INT(mi.nrefs, 2);
	CHECK_EQ_INT(mi.refs[0].kind, REF_CONFIG);
	CHECK_EQ_INT(mi.refs[1].kind, REF_LAYER);
	CHECK_EQ_INT(mi.refs[1].size, 2479);
	manifest_info_release(&mi);

	/* the media type compares case-insensitively; blanks and parameters are dropped */
	CHECK_EQ_INT(parse(list, " Application/VND.Docker.Distribution.Manifest.List.V2+JSON ; charset=utf-8",
			   &mi), 0);
	CHECK_STR(mi.media_type, MT_DOCKER_LIST);
	CHECK_EQ_INT(mi.is_index, 1);
	CHECK(mi.artifact_type == NULL);
	CHECK_EQ_INT(mi.nrefs, 2);
	CHECK_EQ_INT(mi.refs[0].kind, REF_CHILD);
	CHECK_EQ_INT(mi.refs[1].kind, REF_CHILD);
	manifest_info_release(&mi);

	/* a body without mediaType takes the Content-Type's */
	CHECK_EQ_INT(parse("{\"schemaVersion\":2,\"config\":" DESC(CONFIG_DOCKER, D_A, 1) ",\"layers\":[]}",
			   MT_DOCKER_MANIFEST, &mi), 0);
	CHECK_STR(mi.media_type, MT_DOCKER_MANIFEST);
	manifest_info_release(&mi);

	/* Docker schema 2 requires "layers" */
	EXPECT_FAIL("{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"config\":"
		    DESC(CONFIG_DOCKER, D_A, 1) "}", MT_DOCKER_MANIFEST, E_MANIFEST_INVALID, "layers: missing");
	/* and the manifest list "manifests" */
	EXPECT_FAIL("{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_LIST "\"}", NULL, E_MANIFEST_INVALID,
		    "manifests: missing");
}

static void test_artifacts(void)
{
	struct manifest_info mi;
	const char *sbom =
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
		"\"artifactType\":\"application/vnd.example.sbom.v1\","
		"\"config\":{\"mediaType\":\"" MT_OCI_EMPTY "\",\"digest\":\"" D_A "\",\"size\":2,\"data\":\"e30=\"},"
		"\"layers\":[{\"mediaType\":\"application/spdx+json\",\"digest\":\"" D_B "\",\"size\":1234,"
		"\"annotations\":{\"org.opencontainers.image.title\":\"sbom.json\"}}],"
		"\"subject\":" DESC(MT_OCI_MANIFEST, D_S, 7682) ","
		"\"annotations\":{\"z.last\":\"1\",\"a.first\":\"two \\\"quoted\\\"\",\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\"}}";

	CHECK_EQ_INT(parse(sbom, MT_OCI_MANIFEST, &mi), 0);
	CHECK_STR(mi.artifact_type, "application/vnd.example.sbom.v1");
	CHECK_EQ_INT(mi.has_subject, 1);
	CHECK_EQ_INT(mi.subject.alg, DIGEST_SHA256);
	CHECK_STR(mi.subject.hex, H64("5"));
	CHECK_EQ_INT(mi.nrefs, 3);
	CHECK_EQ_INT(mi.refs[0].kind, REF_CONFIG);
	CHECK_EQ_INT(mi.refs[1].kind, REF_LAYER);
	CHECK_EQ_INT(mi.refs[2].kind, REF_SUBJECT);
	CHECK_STR(mi.refs[2].digest.hex, H64("5"));
	CHECK_EQ_INT(mi.refs[2].size, 7682);
	/* compact, in body order */
	CHECK_STR(mi.annotations, "{\"z.last\":\"1\",\"a.first\":\"two \\\"quoted\\\"\","
				  "\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\"}");
	manifest_info_release(&mi);

	/* without artifactType, the config media type names the artifact */
	CHECK_EQ_INT(parse("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
			   "\"config\":" DESC("application/vnd.example.config.v1+json", D_A, 3) ","
			   "\"layers\":[" DESC(MT_OCI_EMPTY, D_B, 2) "]}", NULL, &mi), 0);
	CHECK_STR(mi.artifact_type, "application/vnd.example.config.v1+json");
	CHECK_EQ_INT(mi.has_subject, 0);
	manifest_info_release(&mi);

	/* empty annotations stay an (empty) object */
	CHECK_EQ_INT(parse("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{}}", NULL, &mi), 0);
	CHECK_STR(mi.annotations, "{}");
	manifest_info_release(&mi);

	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],\"artifactType\":5}", NULL, E_MANIFEST_INVALID,
		    "artifactType: must be a string");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],\"artifactType\":\"not a type\"}", NULL,
		    E_MANIFEST_INVALID, "artifactType: invalid media type \"not a type\"");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],\"artifactType\":\"\"}", NULL,
		    E_MANIFEST_INVALID, "artifactType: invalid media type \"\"");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":[]}", NULL, E_MANIFEST_INVALID,
		    "annotations: must be an object");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"a\":\"b\",\"n\":1}}", NULL,
		    E_MANIFEST_INVALID, "annotations[\"n\"]: must be a string");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],\"subject\":\"" D_S "\"}", NULL, E_MANIFEST_INVALID,
		    "subject: must be an object");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],\"subject\":{\"mediaType\":\"" MT_OCI_MANIFEST
		    "\",\"digest\":\"sha256:1234\",\"size\":1}}", NULL, E_MANIFEST_INVALID,
		    "subject.digest: invalid digest \"sha256:1234\"");
}

static void test_media_types(void)
{
	const char *oci = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":"
			  DESC(CONFIG_OCI, D_A, 1) ",\"layers\":[]}";
	const char *bare = "{\"schemaVersion\":2,\"config\":" DESC(CONFIG_OCI, D_A, 1) ",\"layers\":[]}";

	EXPECT_FAIL(oci, MT_DOCKER_MANIFEST, E_MEDIATYPE_MISMATCH,
		    "mediaType \"" MT_OCI_MANIFEST "\" does not match content type \"" MT_DOCKER_MANIFEST "\"");
	EXPECT_FAIL(oci, MT_OCI_INDEX "; charset=utf-8", E_MEDIATYPE_MISMATCH,
		    "does not match content type \"" MT_OCI_INDEX "\"");
	EXPECT_FAIL(oci, "application/json", E_MEDIATYPE_MISMATCH, "does not match");
	EXPECT_FAIL(bare, "application/json", E_MANIFEST_INVALID,
		    "unsupported manifest media type \"application/json\"");
	EXPECT_FAIL("{\"schemaVersion\":2,\"mediaType\":\"" CONFIG_OCI "\",\"config\":" DESC(CONFIG_OCI, D_A, 1)
		    ",\"layers\":[]}", NULL, E_MANIFEST_INVALID,
		    "unsupported manifest media type \"" CONFIG_OCI "\"");
	EXPECT_FAIL("{\"schemaVersion\":2,\"mediaType\":7,\"manifests\":[]}", NULL, E_MANIFEST_INVALID,
		    "mediaType: must be a string");
	EXPECT_FAIL("{\"schemaVersion\":2}", NULL, E_MANIFEST_INVALID, "cannot tell the manifest media type");
	EXPECT_FAIL("{\"schemaVersion\":2,\"layers\":[]}", NULL, E_MANIFEST_INVALID,
		    "cannot tell the manifest media type");

	CHECK(manifest_media_type_known(MT_OCI_MANIFEST));
	CHECK(manifest_media_type_known(MT_OCI_INDEX));
	CHECK(manifest_media_type_known(MT_DOCKER_MANIFEST));
	CHECK(manifest_media_type_known(MT_DOCKER_LIST));
	CHECK(manifest_media_type_known("Application/Vnd.Oci.Image.Manifest.V1+Json"));
	CHECK(!manifest_media_type_known(MT_DOCKER_V1));
	CHECK(!manifest_media_type_known(MT_DOCKER_V1_SIGNED));
	CHECK(!manifest_media_type_known(MT_OCI_EMPTY));
	CHECK(!manifest_media_type_known(CONFIG_OCI));
	CHECK(!manifest_media_type_known(MT_OCI_MANIFEST "; charset=utf-8"));
	CHECK(!manifest_media_type_known(""));
	CHECK(!manifest_media_type_known(NULL));
}

static void test_schema(void)
{
	const char *v1 = "{\"schemaVersion\":1,\"name\":\"library/hello\",\"tag\":\"latest\",\"architecture\":\"amd64\","
			 "\"fsLayers\":[{\"blobSum\":\"" D_A "\"}],\"history\":[{\"v1Compatibility\":\"{}\"}],"
			 "\"signatures\":[{\"header\":{\"alg\":\"ES256\"},\"signature\":\"x\",\"protected\":\"y\"}]}";

	/* by schemaVersion, by body mediaType, by Content-Type (even before parsing) */
	EXPECT_FAIL(v1, NULL, E_SCHEMA1, "docker schema 1 manifests are not supported");
	EXPECT_FAIL(v1, MT_DOCKER_V1_SIGNED, E_SCHEMA1, "schema 1");
	EXPECT_FAIL("{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_V1 "\"}", NULL, E_SCHEMA1, "schema 1");
	EXPECT_FAIL("{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_V1_SIGNED "\"}", NULL, E_SCHEMA1, "schema 1");
	EXPECT_FAIL("not even json", MT_DOCKER_V1_SIGNED, E_SCHEMA1, "schema 1");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[]}", MT_DOCKER_V1 "; charset=utf-8", E_SCHEMA1, "schema 1");
	EXPECT_FAIL("{\"schemaVersion\":1}", "Application/Vnd.Docker.Distribution.Manifest.V1+PrettyJWS",
		    E_SCHEMA1, "schema 1");

	EXPECT_FAIL("{\"manifests\":[]}", NULL, E_MANIFEST_INVALID, "schemaVersion: missing");
	EXPECT_FAIL("{\"schemaVersion\":\"2\",\"manifests\":[]}", NULL, E_MANIFEST_INVALID,
		    "schemaVersion: must be the integer 2");
	EXPECT_FAIL("{\"schemaVersion\":2.0,\"manifests\":[]}", NULL, E_MANIFEST_INVALID,
		    "schemaVersion: must be the integer 2");
	EXPECT_FAIL("{\"schemaVersion\":3,\"manifests\":[]}", NULL, E_MANIFEST_INVALID,
		    "schemaVersion: must be the integer 2");
	EXPECT_FAIL("{\"schemaVersion\":null,\"manifests\":[]}", NULL, E_MANIFEST_INVALID,
		    "schemaVersion: must be the integer 2");
}

static void test_shape(void)
{
	const char *cfg = DESC(CONFIG_OCI, D_A, 1);

	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],\"layers\":[]}", NULL, E_MANIFEST_INVALID,
		    "both \"manifests\" and \"layers\" present");
	EXPECT_FAIL("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":[],\"config\":"
		    DESC(CONFIG_OCI, D_A, 1) "}", MT_OCI_INDEX, E_MANIFEST_INVALID,
		    "both \"manifests\" and \"config\" present");
	EXPECT_FAIL("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"manifests\":[],\"layers\":[],"
		    "\"config\":" DESC(CONFIG_OCI, D_A, 1) "}", NULL, E_MANIFEST_INVALID, "both \"manifests\"");
	EXPECT_FAIL("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"layers\":[]}", NULL,
		    E_MANIFEST_INVALID, "\"layers\" not allowed in an image index");
	EXPECT_FAIL("{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_LIST "\",\"config\":"
		    DESC(CONFIG_DOCKER, D_A, 1) "}", NULL, E_MANIFEST_INVALID, "\"config\" not allowed in an image index");
	EXPECT_FAIL("{\"schemaVersion\":2,\"config\":" DESC(CONFIG_OCI, D_A, 1) "}", MT_OCI_INDEX,
		    E_MANIFEST_INVALID, "\"config\" not allowed in an image index");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[]}", MT_OCI_MANIFEST, E_MANIFEST_INVALID,
		    "\"manifests\" not allowed in an image manifest");
	EXPECT_FAIL("{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"manifests\":[]}", NULL,
		    E_MANIFEST_INVALID, "\"manifests\" not allowed in an image manifest");

	char *body = oci_manifest_with(NULL, "[]", NULL);
	EXPECT_FAIL(body, NULL, E_MANIFEST_INVALID, "config: missing");
	free(body);
	body = oci_manifest_with("[]", "[]", NULL);
	EXPECT_FAIL(body, NULL, E_MANIFEST_INVALID, "config: must be an object");
	free(body);
	body = oci_manifest_with("null", "[]", NULL);
	EXPECT_FAIL(body, NULL, E_MANIFEST_INVALID, "config: must be an object");
	free(body);
	body = oci_manifest_with(cfg, "{}", NULL);
	EXPECT_FAIL(body, NULL, E_MANIFEST_INVALID, "layers: must be an array");
	free(body);
	body = oci_manifest_with(cfg, "[]", ",\"subject\":[]");
	EXPECT_FAIL(body, NULL, E_MANIFEST_INVALID, "subject: must be an object");
	free(body);
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":{}}", NULL, E_MANIFEST_INVALID,
		    "manifests: must be an array");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[" DESC(MT_OCI_MANIFEST, D_A, 1) ",\"" D_B "\"]}", NULL,
		    E_MANIFEST_INVALID, "manifests[1]: must be an object");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\""
		    D_A "\",\"size\":1,\"platform\":\"linux/amd64\"}]}", NULL, E_MANIFEST_INVALID,
		    "manifests[0].platform: must be an object");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\""
		    D_A "\",\"size\":1,\"platform\":{\"architecture\":\"amd64\",\"os\":1}}]}", NULL,
		    E_MANIFEST_INVALID, "manifests[0].platform.os: must be a string");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\""
		    D_A "\",\"size\":1,\"platform\":{\"os.features\":[\"a\",2]}}]}", NULL,
		    E_MANIFEST_INVALID, "manifests[0].platform.os.features[1]: must be a string");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\""
		    D_A "\",\"size\":1,\"platform\":{\"variant\":[]}}]}", NULL,
		    E_MANIFEST_INVALID, "manifests[0].platform.variant: must be a string");
}

static void test_descriptors(void)
{
	/* digests */
	expect_layer_fail(DESC(LAYER_OCI, "sha256:abc", 1), "layers[1].digest: invalid digest \"sha256:abc\"");
	expect_layer_fail(DESC(LAYER_OCI, "sha256:" H64("A"), 1), "layers[1].digest: invalid digest");
	expect_layer_fail(DESC(LAYER_OCI, "md5:d41d8cd98f00b204e9800998ecf8427e", 1),
			  "invalid digest \"md5:d41d8cd98f00b204e9800998ecf8427e\"");
	expect_layer_fail(DESC(LAYER_OCI, "sha384:" H64("a"), 1), "invalid digest");
	expect_layer_fail(DESC(LAYER_OCI, H64("a"), 1), "invalid digest");
	expect_layer_fail(DESC(LAYER_OCI, "", 1), "layers[1].digest: invalid digest \"\"");
	expect_layer_fail(DESC(LAYER_OCI, "sha256:" H64("a") " ", 1), "invalid digest");
	expect_layer_fail(DESC(LAYER_OCI, "sha256:../../../../etc/passwd", 1), "invalid digest");
	expect_layer_fail(DESC(LAYER_OCI, "sha256:\\\"\\\\x", 1), "invalid digest \"sha256:\\\"\\\\x\"");
	expect_layer_fail("{\"mediaType\":\"" LAYER_OCI "\",\"size\":1}", "layers[1].digest: missing");
	expect_layer_fail("{\"mediaType\":\"" LAYER_OCI "\",\"size\":1,\"digest\":42}",
			  "layers[1].digest: must be a string");
	EXPECT_FAIL("{\"schemaVersion\":2,\"config\":" DESC(CONFIG_OCI, "sha256:" H64("g"), 1) "}", NULL,
		    E_MANIFEST_INVALID, "config.digest: invalid digest");

	/* sizes */
	expect_layer_fail(DESC(LAYER_OCI, D_C, -1), "layers[1].size: must be a non-negative integer");
	expect_layer_fail(DESC(LAYER_OCI, D_C, 1.5), "layers[1].size: must be a non-negative integer");
	expect_layer_fail(DESC(LAYER_OCI, D_C, 1.0), "layers[1].size: must be a non-negative integer");
	expect_layer_fail(DESC(LAYER_OCI, D_C, 1e3), "layers[1].size: must be a non-negative integer");
	expect_layer_fail(DESC(LAYER_OCI, D_C, "12"), "layers[1].size: must be a non-negative integer");
	expect_layer_fail(DESC(LAYER_OCI, D_C, null), "layers[1].size: must be a non-negative integer");
	expect_layer_fail(DESC(LAYER_OCI, D_C, true), "layers[1].size: must be a non-negative integer");
	expect_layer_fail("{\"mediaType\":\"" LAYER_OCI "\",\"digest\":\"" D_C "\"}", "layers[1].size: missing");
	expect_layer_fail(DESC(LAYER_OCI, D_C, 99999999999999999999), "invalid json");

	/* media types */
	expect_layer_fail("{\"digest\":\"" D_C "\",\"size\":1}", "layers[1].mediaType: missing");
	expect_layer_fail(DESC("", D_C, 1), "layers[1].mediaType: invalid media type \"\"");
	expect_layer_fail(DESC("tar", D_C, 1), "layers[1].mediaType: invalid media type \"tar\"");
	expect_layer_fail(DESC("a/b/c", D_C, 1), "invalid media type");
	expect_layer_fail(DESC("/b", D_C, 1), "invalid media type");
	expect_layer_fail(DESC("a/", D_C, 1), "invalid media type");
	expect_layer_fail(DESC("a/b; x=y", D_C, 1), "invalid media type");
	expect_layer_fail(DESC("a/b\\r\\nX-Evil: 1", D_C, 1), "invalid media type \"a/b\\u000d\\u000aX-Evil: 1\"");
	expect_layer_fail("{\"mediaType\":[],\"digest\":\"" D_C "\",\"size\":1}",
			  "layers[1].mediaType: must be a string");

	/* optional members, typed when present */
	expect_layer_fail("{\"mediaType\":\"" LAYER_OCI "\",\"digest\":\"" D_C "\",\"size\":1,\"urls\":\"http://x\"}",
			  "layers[1].urls: must be an array");
	expect_layer_fail("{\"mediaType\":\"" LAYER_OCI "\",\"digest\":\"" D_C "\",\"size\":1,\"urls\":[\"a\",{}]}",
			  "layers[1].urls[1]: must be a string");
	expect_layer_fail("{\"mediaType\":\"" LAYER_OCI "\",\"digest\":\"" D_C "\",\"size\":1,\"annotations\":[]}",
			  "layers[1].annotations: must be an object");
	expect_layer_fail("{\"mediaType\":\"" LAYER_OCI "\",\"digest\":\"" D_C "\",\"size\":1,"
			  "\"annotations\":{\"k\":null}}", "layers[1].annotations[\"k\"]: must be a string");
	expect_layer_fail("{\"mediaType\":\"" LAYER_OCI "\",\"digest\":\"" D_C "\",\"size\":1,\"artifactType\":1}",
			  "layers[1].artifactType: must be a string");
	expect_layer_fail("{\"mediaType\":\"" LAYER_OCI "\",\"digest\":\"" D_C "\",\"size\":1,\"artifactType\":\"x\"}",
			  "layers[1].artifactType: invalid media type \"x\"");
	expect_layer_fail("{\"mediaType\":\"" LAYER_OCI "\",\"digest\":\"" D_C "\",\"size\":1,\"data\":0}",
			  "layers[1].data: must be a string");
	expect_layer_fail("[]", "layers[1]: must be an object");

	/* the largest sizes JSON integers carry are fine */
	struct manifest_info mi;
	char *body = oci_manifest_with(DESC(CONFIG_OCI, D_A, 9223372036854775807), "[]", NULL);
	CHECK_EQ_INT(parse(body, NULL, &mi), 0);
	CHECK(mi.refs[0].size == INT64_MAX);
	manifest_info_release(&mi);
	free(body);
}

static void test_foreign_layers(void)
{
	struct manifest_info mi;
	const char *body =
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
		"\"config\":{\"mediaType\":\"" CONFIG_DOCKER "\",\"digest\":\"" D_A "\",\"size\":1,"
		"\"urls\":[\"https://example.com/c\"]},\"layers\":["
		"{\"mediaType\":\"" LAYER_FOREIGN "\",\"digest\":\"" D_B "\",\"size\":5,"
		"\"urls\":[\"https://mcr.example.com/b\"]},"
		"{\"mediaType\":\"" LAYER_FOREIGN "\",\"digest\":\"" D_C "\",\"size\":5},"
		"{\"mediaType\":\"" LAYER_FOREIGN "\",\"digest\":\"" D_C "\",\"size\":5,\"urls\":[]},"
		"{\"mediaType\":\"" LAYER_DOCKER "\",\"digest\":\"" D_C "\",\"size\":5,"
		"\"urls\":[\"https://example.com/d\"]},"
		"{\"mediaType\":\"" LAYER_NONDIST "\",\"digest\":\"" D_S "\",\"size\":5,"
		"\"urls\":[\"https://example.com/e\"]},"
		"{\"mediaType\":\"application/vnd.oci.image.layer.nondistributable.v1.tar\",\"digest\":\"" D_S
		"\",\"size\":5,\"urls\":[\"https://example.com/f\"]},"
		"{\"mediaType\":\"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip\",\"digest\":\"" D_S
		"\",\"size\":5,\"urls\":[\"https://example.com/g\"]}]}";

	CHECK_EQ_INT(parse(body, MT_DOCKER_MANIFEST, &mi), 0);
	CHECK_EQ_INT(mi.nrefs, 8);
	CHECK_EQ_INT(mi.refs[0].external, 0); /* configs always live here */
	CHECK_EQ_INT(mi.refs[1].external, 1);
	CHECK_EQ_INT(mi.refs[2].external, 0); /* foreign but nowhere else to get it */
	CHECK_EQ_INT(mi.refs[3].external, 0);
	CHECK_EQ_INT(mi.refs[4].external, 0); /* distributable despite urls */
	CHECK_EQ_INT(mi.refs[5].external, 1);
	CHECK_EQ_INT(mi.refs[6].external, 1);
	CHECK_EQ_INT(mi.refs[7].external, 1);
	manifest_info_release(&mi);
}

/* A manifest with nlayers layers, plus a subject when asked. */
static char *many_layers(size_t nlayers, int subject)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "{\"schemaVersion\":2,\"config\":" DESC(CONFIG_OCI, D_A, 1) ",\"layers\":[");
	for (size_t i = 0; i < nlayers; i++)
		buf_addf(&b, "%s" DESC(LAYER_OCI, "sha256:%064zx", 1), i ? "," : "", i);
	buf_adds(&b, "]");
	if (subject)
		buf_adds(&b, ",\"subject\":" DESC(MT_OCI_MANIFEST, D_S, 1));
	buf_adds(&b, "}");
	return buf_detach(&b, NULL);
}

static void test_limits(void)
{
	struct manifest_info mi;
	char *body;

	body = many_layers(MANIFEST_MAX_REFS - 1, 0);
	CHECK_EQ_INT(parse(body, NULL, &mi), 0);
	CHECK_EQ_INT(mi.nrefs, MANIFEST_MAX_REFS);
	CHECK_EQ_INT(mi.refs[MANIFEST_MAX_REFS - 1].kind, REF_LAYER);
	CHECK_STR(mi.refs[MANIFEST_MAX_REFS - 1].digest.hex,
		  "000000000000000000000000000000000000000000000000000000000000270e");
	manifest_info_release(&mi);
	free(body);

	body = many_layers(MANIFEST_MAX_REFS, 0);
	EXPECT_FAIL(body, NULL, E_MANIFEST_INVALID, "too many descriptors: 10001 (at most 10000)");
	free(body);
	body = many_layers(MANIFEST_MAX_REFS - 1, 1);
	EXPECT_FAIL(body, NULL, E_MANIFEST_INVALID, "too many descriptors");
	free(body);

	struct buf b = BUF_INIT;
	buf_adds(&b, "{\"schemaVersion\":2,\"manifests\":[");
	for (size_t i = 0; i <= MANIFEST_MAX_REFS; i++)
		buf_addf(&b, "%s" DESC(MT_OCI_MANIFEST, D_A, 1), i ? "," : "");
	buf_adds(&b, "]}");
	EXPECT_FAIL(b.buf, NULL, E_MANIFEST_INVALID, "too many descriptors");
	buf_release(&b);
}

static void test_hostile(void)
{
	struct manifest_info mi;
	struct buf b = BUF_INIT;
	size_t i;

	EXPECT_FAIL("", NULL, E_MANIFEST_INVALID, "empty manifest");
	EXPECT_FAIL("", MT_OCI_MANIFEST, E_MANIFEST_INVALID, "empty manifest");
	EXPECT_FAIL("   \n", NULL, E_MANIFEST_INVALID, "invalid json");
	EXPECT_FAIL("null", NULL, E_MANIFEST_INVALID, "invalid json");
	EXPECT_FAIL("42", NULL, E_MANIFEST_INVALID, "invalid json");
	EXPECT_FAIL("\"manifest\"", NULL, E_MANIFEST_INVALID, "invalid json");
	EXPECT_FAIL("[{\"schemaVersion\":2,\"manifests\":[]}]", NULL, E_MANIFEST_INVALID,
		    "manifest must be a json object");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[]", NULL, E_MANIFEST_INVALID, "invalid json");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[]} x", NULL, E_MANIFEST_INVALID, "invalid json");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[]}{}", NULL, E_MANIFEST_INVALID, "invalid json");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],}", NULL, E_MANIFEST_INVALID, "invalid json");
	EXPECT_FAIL("\xef\xbb\xbf{\"schemaVersion\":2,\"manifests\":[]}", NULL, E_MANIFEST_INVALID, "invalid json");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],\"x\":\"\xff\xfe\"}", NULL, E_MANIFEST_INVALID,
		    "invalid json");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],\"x\":\"a\\u0000b\"}", NULL, E_MANIFEST_INVALID,
		    "invalid json");

	/* duplicate keys: two readers could see two different manifests */
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],\"manifests\":[]}", NULL, E_MANIFEST_INVALID,
		    "duplicate object key");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\""
		    D_A "\",\"digest\":\"" D_B "\",\"size\":1}]}", NULL, E_MANIFEST_INVALID, "duplicate object key");
	EXPECT_FAIL("{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"a\":\"1\",\"a\":\"2\"}}", NULL,
		    E_MANIFEST_INVALID, "duplicate object key");

	/* a NUL byte inside the counted body */
	static const char nul[] = "{\"schemaVersion\":2,\"manifests\":[]}\0garbage";
	buf_reset(&detail);
	CHECK_EQ_INT(manifest_parse(nul, sizeof(nul) - 1, NULL, &mi, &detail), E_MANIFEST_INVALID);
	CHECK(is_released(&mi));
	/* the length is honoured: the same prefix alone parses */
	CHECK_EQ_INT(manifest_parse(nul, strlen(nul), NULL, &mi, NULL), 0);
	manifest_info_release(&mi);

	/* deep nesting, at the top and inside a member */
	for (i = 0; i < 100000; i++)
		buf_addch(&b, '[');
	EXPECT_FAIL(b.buf, NULL, E_MANIFEST_INVALID, "invalid json");
	buf_reset(&b);
	buf_adds(&b, "{\"schemaVersion\":2,\"manifests\":[],\"x\":");
	for (i = 0; i < 100000; i++)
		buf_adds(&b, "{\"a\":");
	buf_adds(&b, "1");
	for (i = 0; i < 100000; i++)
		buf_addch(&b, '}');
	buf_addch(&b, '}');
	EXPECT_FAIL(b.buf, NULL, E_MANIFEST_INVALID, "invalid json");
	buf_reset(&b);
	/* nesting the decoder accepts in an ignored member is harmless */
	buf_adds(&b, "{\"schemaVersion\":2,\"manifests\":[],\"x\":");
	for (i = 0; i < 1000; i++)
		buf_addch(&b, '[');
	for (i = 0; i < 1000; i++)
		buf_addch(&b, ']');
	buf_addch(&b, '}');
	CHECK_EQ_INT(parse(b.buf, NULL, &mi), 0);
	manifest_info_release(&mi);

	/* a megabyte of pseudo-random bytes, with and without a valid start */
	uint32_t x = 2463534242u;
	char *junk = malloc(1 << 20);
	for (i = 0; i < (1u << 20); i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		junk[i] = (char)(x & 0xff);
	}
	buf_reset(&detail);
	CHECK_EQ_INT(manifest_parse(junk, 1 << 20, NULL, &mi, &detail), E_MANIFEST_INVALID);
	CHECK(is_released(&mi));
	CHECK(detail.len < 512);
	memcpy(junk, "{\"schemaVersion\":2,\"x\":\"", 24);
	buf_reset(&detail);
	CHECK_EQ_INT(manifest_parse(junk, 1 << 20, MT_OCI_INDEX, &mi, &detail), E_MANIFEST_INVALID);
	CHECK(is_released(&mi));
	for (i = 0; i < detail.len; i++) /* decoder text echoes input: it must stay printable */
		CHECK((unsigned char)detail.buf[i] >= 0x20 && (unsigned char)detail.buf[i] < 0x7f);
	free(junk);

	/* an enormous bad value is cut short in detail, and control characters are escaped */
	buf_reset(&b);
	buf_adds(&b, "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"size\":1,\"digest\":\"sha256:\\n");
	for (i = 0; i < 100000; i++)
		buf_addch(&b, 'f');
	buf_adds(&b, "\"}]}");
	EXPECT_FAIL(b.buf, NULL, E_MANIFEST_INVALID, "manifests[0].digest: invalid digest \"sha256:\\u000afff");
	CHECK(detail.len < 300);
	CHECK(strstr(detail.buf, "ffff\" (truncated)") != NULL);
	buf_release(&b);

	/* a hostile Content-Type is echoed printable and short */
	EXPECT_FAIL("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":[]}",
		    "application/\xc3\xa9\x01x", E_MEDIATYPE_MISMATCH, "content type \"application/??\\u0001x\"");
}

static void test_detail(void)
{
	struct manifest_info mi;

	/* detail is appended to, never reset */
	buf_reset(&detail);
	buf_adds(&detail, "manifest invalid: ");
	CHECK_EQ_INT(manifest_parse("{}", 2, NULL, &mi, &detail), E_MANIFEST_INVALID);
	CHECK_STR(detail.buf, "manifest invalid: schemaVersion: missing");

	/* a NULL detail is fine on every path */
	CHECK_EQ_INT(manifest_parse("", 0, NULL, &mi, NULL), E_MANIFEST_INVALID);
	CHECK_EQ_INT(manifest_parse("{", 1, NULL, &mi, NULL), E_MANIFEST_INVALID);
	CHECK_EQ_INT(manifest_parse("{}", 2, MT_DOCKER_V1, &mi, NULL), E_SCHEMA1);
	CHECK_EQ_INT(manifest_parse("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\"}",
				    strlen("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\"}"),
				    MT_OCI_MANIFEST, &mi, NULL), E_MEDIATYPE_MISMATCH);
	CHECK(is_released(&mi));

	/* a failure after refs were partly filled releases them */
	char *body = oci_manifest_with(DESC(CONFIG_OCI, D_A, 1), "[" DESC(LAYER_OCI, D_B, 1) "]",
				       ",\"annotations\":{\"a\":1}");
	EXPECT_FAIL(body, NULL, E_MANIFEST_INVALID, "annotations[\"a\"]: must be a string");
	free(body);
	body = oci_manifest_with(DESC(CONFIG_OCI, D_A, 1), "[" DESC(LAYER_OCI, D_B, 1) "]",
				 ",\"subject\":" DESC(MT_OCI_MANIFEST, D_S, -5));
	EXPECT_FAIL(body, NULL, E_MANIFEST_INVALID, "subject.size: must be a non-negative integer");
	free(body);

	/* one struct reused across parses */
	CHECK_EQ_INT(parse("{\"schemaVersion\":2,\"manifests\":[]}", NULL, &mi), 0);
	manifest_info_release(&mi);
	CHECK_EQ_INT(parse("{\"schemaVersion\":2,\"config\":" DESC(CONFIG_OCI, D_A, 1) "}", NULL, &mi), 0);
	CHECK_STR(mi.media_type, MT_OCI_MANIFEST);
	manifest_info_release(&mi);
}

int main(void)
{
	test_oci_manifest();
	test_oci_index();
	test_docker();
	test_artifacts();
	test_media_types();
	test_schema();
	test_shape();
	test_descriptors();
	test_foreign_layers();
	test_limits();
	test_hostile();
	test_detail();
	buf_release(&detail);
	return t_done();
}
