/*
 * fuzz_s3xml: libFuzzer target for the reader of S3's XML answers
 * (storage/s3_xml.c): s3xml_parse() and the four documents built on it.
 *
 * The whole input is one answer body. Invariants: every call returns one of
 * its documented codes; the generic parse reports balanced, bounded paths
 * (each close matches the last open, depth within S3XML_MAX_DEPTH, text
 * within S3XML_MAX_TEXT and NUL-free); an accepted listing has a key for
 * every object and a continuation token exactly when truncated; an error
 * has a code; an upload id is non-empty. Seeds live in corpus/s3xml/.
 */
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "s3_xml.h"

struct s3xml_walk {
	char stack[S3XML_MAX_DEPTH][S3XML_MAX_DEPTH * (S3XML_MAX_NAME + 1) + 1];
	int depth;
};

static int s3xml_open(void *ctx, const char *path)
{
	struct s3xml_walk *w = ctx;
	FUZZ_ASSERT(w->depth < S3XML_MAX_DEPTH);
	FUZZ_ASSERT(strlen(path) < sizeof(w->stack[0]));
	strcpy(w->stack[w->depth++], path);
	return 0;
}

static int s3xml_close(void *ctx, const char *path, const char *text, size_t len)
{
	struct s3xml_walk *w = ctx;
	FUZZ_ASSERT(w->depth > 0);
	FUZZ_ASSERT(!strcmp(w->stack[--w->depth], path));
	FUZZ_ASSERT(len <= S3XML_MAX_TEXT && strlen(text) == len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct s3xml_walk *w = xcalloc(1, sizeof(*w));
	const struct s3xml_cb cb = { s3xml_open, s3xml_close };
	struct s3xml_error e;
	struct s3xml_list l;
	char *id = NULL, *etag = NULL;
	int rc = s3xml_parse(s, size, &cb, w);
	FUZZ_ASSERT(rc == 0 || rc == E_STORE);
	FUZZ_ASSERT(rc != 0 || w->depth == 0);
	free(w);

	rc = s3xml_error(s, size, &e);
	FUZZ_ASSERT(rc == 0 || rc == E_STORE);
	FUZZ_ASSERT(rc != 0 || e.code[0]);

	rc = s3xml_upload_id(s, size, &id);
	FUZZ_ASSERT((rc == 0 && id && id[0]) || (rc == E_STORE && !id));
	free(id);

	rc = s3xml_complete(s, size, &etag, &e);
	FUZZ_ASSERT(rc == 0 || rc == 1 || rc == E_STORE);
	FUZZ_ASSERT((rc == 0) == (etag != NULL));
	FUZZ_ASSERT(rc != 1 || e.code[0]);
	free(etag);

	rc = s3xml_list(s, size, &l);
	FUZZ_ASSERT(rc == 0 || rc == E_STORE);
	if (!rc) {
		FUZZ_ASSERT(l.count <= l.alloc || l.count == 0);
		FUZZ_ASSERT(l.truncated == (l.next_token != NULL));
		for (size_t i = 0; i < l.count; i++)
			FUZZ_ASSERT(l.objects[i].key && l.objects[i].key[0]);
	} else {
		FUZZ_ASSERT(!l.objects && !l.count && !l.next_token);
	}
	s3xml_list_release(&l);
	return 0;
}
