/*
 * names: the OCI grammar for repository names, tags and references.
 *
 * Pure functions on caller-owned strings; nothing allocated, thread-safe.
 * These checks run before any name or tag reaches the disk or the database.
 */
#ifndef BERTH_NAMES_H
#define BERTH_NAMES_H

#include <stddef.h>

#include "digest.h"

#define NAME_MAX_LEN 255
#define TAG_MAX_LEN 128

/*
 * Repository name: path components of [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
 * joined by '/', at most NAME_MAX_LEN bytes. Returns 0 or E_NAME_INVALID.
 */
int name_check(const char *s, size_t len);
/* Tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. Returns 0 or E_TAG_INVALID. */
int tag_check(const char *s, size_t len);

/* A manifest reference is either a tag or a digest. */
struct reference {
	int is_digest;
	char tag[TAG_MAX_LEN + 1];
	struct digest digest;
};

/*
 * Parses a reference: a string holding ':' must be a valid digest
 * (E_DIGEST_INVALID otherwise), else it must be a valid tag (E_TAG_INVALID).
 */
int reference_parse(const char *s, size_t len, struct reference *out);

#endif
