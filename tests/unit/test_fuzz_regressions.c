/*
 * test_fuzz_regressions: replays every input of tests/fuzz/regressions/<t>/
 * (inputs that once crashed a fuzz target, kept after the fix) and of the
 * seed corpus tests/fuzz/corpus/<t>/ through the fuzz targets' own code, in
 * the ordinary build: no clang nor libFuzzer needed, and the sanitizer and
 * valgrind runs of the unit suite cover them too. A target's invariants
 * abort on failure, which fails this test.
 *
 * The targets are compiled into this one program: each source is included
 * with its entry point renamed (see tests/fuzz/fuzz.h for the naming rule
 * that makes that safe). The directories are found from this file's path
 * as the compiler saw it (meson runs tests from the build directory), or
 * from $BERTH_SOURCE_ROOT.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "t.h"

#define LLVMFuzzerTestOneInput fuzz_names_one
#include "../fuzz/fuzz_names.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_digest_one
#include "../fuzz/fuzz_digest.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_range_one
#include "../fuzz/fuzz_range.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_query_one
#include "../fuzz/fuzz_query.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_scope_one
#include "../fuzz/fuzz_scope.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_manifest_one
#include "../fuzz/fuzz_manifest.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_authn_one
#include "../fuzz/fuzz_authn.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_config_one
#include "../fuzz/fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_jwt_one
#include "../fuzz/fuzz_jwt.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tar_one
#include "../fuzz/fuzz_tar.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_s3xml_one
#include "../fuzz/fuzz_s3xml.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_import_one
#include "../fuzz/fuzz_import.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_challenge_one
#include "../fuzz/fuzz_challenge.c"
#undef LLVMFuzzerTestOneInput

static const struct {
	const char *name;
	int (*one)(const uint8_t *data, size_t size);
} targets[] = {
	{ "names", fuzz_names_one },
	{ "digest", fuzz_digest_one },
	{ "range", fuzz_range_one },
	{ "query", fuzz_query_one },
	{ "scope", fuzz_scope_one },
	{ "manifest", fuzz_manifest_one },
	{ "authn", fuzz_authn_one },
	{ "config", fuzz_config_one },
	{ "jwt", fuzz_jwt_one },
	{ "tar", fuzz_tar_one },
	{ "s3xml", fuzz_s3xml_one },
	{ "import", fuzz_import_one },
	{ "challenge", fuzz_challenge_one },
};

/* Reads a whole file into out; 0 or -1. */
static int read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	char tmp[4096];
	size_t n;
	if (!f)
		return -1;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_add(out, tmp, n);
	fclose(f);
	return 0;
}

/* Runs every regular file of dir through one; returns how many, or -1 when dir is missing. */
static int replay_dir(const char *dir, int (*one)(const uint8_t *, size_t))
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int count = 0;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		struct buf path = BUF_INIT, data = BUF_INIT;
		struct stat st;
		buf_addf(&path, "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.' && !stat(path.buf, &st) && S_ISREG(st.st_mode)) {
			CHECK(read_file(path.buf, &data) == 0);
			one((const uint8_t *)data.buf, data.len);
			count++;
		}
		buf_release(&data);
		buf_release(&path);
	}
	closedir(d);
	return count;
}

/* tests/fuzz in the source tree, into out. */
static void fuzz_dir(struct buf *out)
{
	const char *root = getenv("BERTH_SOURCE_ROOT");
	const char *slash = strrchr(__FILE__, '/');
	if (root && *root) {
		buf_addf(out, "%s/tests/fuzz", root);
		return;
	}
	if (slash)
		buf_add(out, __FILE__, (size_t)(slash - __FILE__));
	else
		buf_adds(out, ".");
	buf_adds(out, "/../fuzz");
}

int main(void)
{
	struct buf dir = BUF_INIT;
	fuzz_dir(&dir);
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		struct buf corpus = BUF_INIT, regress = BUF_INIT;
		buf_addf(&corpus, "%s/corpus/%s", dir.buf, targets[i].name);
		buf_addf(&regress, "%s/regressions/%s", dir.buf, targets[i].name);
		int nc = replay_dir(corpus.buf, targets[i].one);
		int nr = replay_dir(regress.buf, targets[i].one);
		/* every target has seeds; regressions exist only where a crash was found */
		if (nc <= 0)
			fprintf(stderr, "no seed corpus in %s\n", corpus.buf);
		CHECK(nc > 0);
		printf("%s: %d seeds, %d regressions replayed\n", targets[i].name, nc, nr < 0 ? 0 : nr);
		buf_release(&corpus);
		buf_release(&regress);
	}
	jwt_key_release(&authn_key);
	jwt_key_release(&jwt_fuzz_key);
	buf_release(&dir);
	return t_done();
}
