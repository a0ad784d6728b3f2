/*
 * fuzz_manifest: libFuzzer target for manifest and index validation
 * (storage/manifest.c): manifest_parse().
 *
 * Input layout: "<Content-Type>\n<body>"; an empty first line means no
 * Content-Type header. An accepted manifest has a known media type, at most
 * MANIFEST_MAX_REFS references whose digests re-format and parse back, the
 * shape its kind requires (a config first for image manifests, children
 * only for indexes), a subject exactly when a subject reference is listed,
 * and annotations that are a JSON object. A refused one leaves *out empty
 * and explains itself in printable ASCII (the text goes into an error
 * reply). The verdict never depends on whether a detail buffer is passed.
 * Seeds live in corpus/manifest/.
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "fuzz.h"
#include "manifest.h"

static void manifest_check_ok(const struct manifest_info *mi)
{
	size_t configs = 0, subjects = 0;
	char str[DIGEST_STR_MAX];
	struct digest d;
	FUZZ_ASSERT(mi->media_type && manifest_media_type_known(mi->media_type));
	FUZZ_ASSERT(mi->is_index == (!strcmp(mi->media_type, MT_OCI_INDEX) ||
				     !strcmp(mi->media_type, MT_DOCKER_LIST)));
	FUZZ_ASSERT(mi->nrefs <= MANIFEST_MAX_REFS);
	FUZZ_ASSERT(!mi->nrefs || mi->refs);
	for (size_t i = 0; i < mi->nrefs; i++) {
		const struct manifest_ref *r = &mi->refs[i];
		FUZZ_ASSERT(r->size >= 0);
		FUZZ_ASSERT(digest_parse(digest_str(&r->digest, str), &d) == 0 && digest_eq(&d, &r->digest));
		switch (r->kind) {
		case REF_CONFIG:
			FUZZ_ASSERT(!mi->is_index && i == 0);
			configs++;
			break;
		case REF_LAYER:
			FUZZ_ASSERT(!mi->is_index);
			break;
		case REF_CHILD:
			FUZZ_ASSERT(mi->is_index);
			break;
		case REF_SUBJECT:
			FUZZ_ASSERT(mi->has_subject && digest_eq(&r->digest, &mi->subject));
			subjects++;
			break;
		default:
			FUZZ_ASSERT(!"unknown reference kind");
		}
		FUZZ_ASSERT(!r->external || r->kind == REF_LAYER);
	}
	FUZZ_ASSERT(configs == (mi->is_index ? 0u : 1u));
	FUZZ_ASSERT(subjects == (mi->has_subject ? 1u : 0u));
	if (mi->annotations) {
		json_t *a = json_loads(mi->annotations, 0, NULL);
		FUZZ_ASSERT(json_is_object(a));
		json_decref(a);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t ctlen = nl ? (size_t)(nl - (const char *)data) : 0;
	char *ct = nl && ctlen ? fuzz_cstr(data, ctlen) : NULL;
	const char *body = nl ? nl + 1 : (const char *)data;
	size_t blen = nl ? size - ctlen - 1 : size;
	struct manifest_info mi, mi2;
	struct buf detail = BUF_INIT;
	int rc = manifest_parse(body, blen, ct, &mi, &detail);
	int rc2 = manifest_parse(body, blen, ct, &mi2, NULL);

	FUZZ_ASSERT(rc == rc2);
	if (rc) {
		static const struct manifest_info empty;
		FUZZ_ASSERT(rc == E_MANIFEST_INVALID || rc == E_SCHEMA1 || rc == E_MEDIATYPE_MISMATCH);
		FUZZ_ASSERT(!memcmp(&mi, &empty, sizeof(mi)));
		FUZZ_ASSERT(detail.len > 0 && fuzz_printable(detail.buf, detail.len));
	} else {
		manifest_check_ok(&mi);
		FUZZ_ASSERT(mi.nrefs == mi2.nrefs && !strcmp(mi.media_type, mi2.media_type));
		for (size_t i = 0; i < mi.nrefs; i++)
			FUZZ_ASSERT(mi.refs[i].kind == mi2.refs[i].kind && mi.refs[i].size == mi2.refs[i].size &&
				    digest_eq(&mi.refs[i].digest, &mi2.refs[i].digest));
	}
	manifest_info_release(&mi);
	manifest_info_release(&mi2);
	/* released twice must be safe, as the header promises */
	manifest_info_release(&mi);
	buf_release(&detail);
	free(ct);
	return 0;
}
