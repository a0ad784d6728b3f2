/*
 * fuzz_import: libFuzzer target for the JSON an image import reads
 * (storage/imgimport.c): a `docker save` archive's manifest.json and an OCI
 * layout's index.json, the files a user hands over from outside.
 *
 * The input's first byte picks the form; the rest is that form's JSON
 * file. It is packed into a tar next to fixed, valid content for it to
 * point at (an image config, a layer and, for the OCI form, an image
 * manifest stored under its digest), so inputs near a valid one reach the
 * import's later stages. The import runs against a real blob store and
 * database in a scratch directory made once per process.
 *
 * Invariants: the import never crashes, a refusal comes with a one-line
 * printable explanation, a success names a manifest that the tag then
 * resolves to, and a refusal leaves the tag where it was (all or nothing).
 * Seeds live in corpus/import/.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "digest.h"
#include "err.h"
#include "fuzz.h"
#include "imgimport.h"
#include "meta.h"
#include "names.h"
#include "store.h"
#include "store_backend.h"
#include "tarball.h"

#define IMPORT_REPO "fuzz/import"
#define IMPORT_TAG "t"

static char import_dir[64];
static struct store *import_store;
static struct buf import_path;

static const char import_config[] =
	"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":"
	"[\"sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef\"]},\"config\":{}}";

static int import_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void import_cleanup(void)
{
	store_close(import_store);
	import_store = NULL;
	buf_release(&import_path);
	if (import_dir[0])
		nftw(import_dir, import_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void import_setup(void)
{
	if (import_dir[0])
		return;
	strcpy(import_dir, "/tmp/berth-fuzz-import-XXXXXX");
	FUZZ_ASSERT(mkdtemp(import_dir));
	FUZZ_ASSERT(store_open(import_dir, &import_store) == 0);
	buf_init(&import_path, 0);
	buf_addf(&import_path, "%s/input.tar", import_dir);
	atexit(import_cleanup);
}

static int import_put(void *ctx, const void *data, size_t len)
{
	return fwrite(data, 1, len, ctx) == len ? 0 : E_IO;
}

static void import_entry(struct tar_writer *tw, const char *name, const void *data, size_t len)
{
	FUZZ_ASSERT(tar_write_header(tw, name, TAR_FILE, (int64_t)len) == 0);
	FUZZ_ASSERT(tar_write_data(tw, data, len) == 0);
}

static void import_blob(struct tar_writer *tw, const void *data, size_t len, struct digest *d)
{
	char name[32 + DIGEST_HEX_MAX];
	digest_of(DIGEST_SHA256, data, len, d);
	snprintf(name, sizeof(name), "blobs/sha256/%s", d->hex);
	import_entry(tw, name, data, len);
}

/* Writes the archive: the fuzzed JSON and the fixed content beside it. */
static void import_archive(int oci, const uint8_t *json, size_t len)
{
	static const unsigned char layer[1024]; /* an empty tar: two zero blocks */
	struct tar_writer tw;
	struct digest cfg, lay, man;
	struct buf m = BUF_INIT;
	char cs[DIGEST_STR_MAX], ls[DIGEST_STR_MAX];
	FILE *f = fopen(import_path.buf, "wb");
	FUZZ_ASSERT(f);
	tar_writer_init(&tw, import_put, f);
	if (oci) {
		import_entry(&tw, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
		import_blob(&tw, import_config, sizeof(import_config) - 1, &cfg);
		import_blob(&tw, layer, sizeof(layer), &lay);
		buf_addf(&m, "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			     "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\","
			     "\"size\":%zu},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
			     "\"digest\":\"%s\",\"size\":%zu}]}",
			 digest_str(&cfg, cs), sizeof(import_config) - 1, digest_str(&lay, ls), sizeof(layer));
		import_blob(&tw, m.buf, m.len, &man);
		import_entry(&tw, "index.json", json, len);
	} else {
		import_entry(&tw, "config.json", import_config, sizeof(import_config) - 1);
		import_entry(&tw, "layer/layer.tar", layer, sizeof(layer));
		import_entry(&tw, "manifest.json", json, len);
	}
	FUZZ_ASSERT(tar_write_end(&tw) == 0);
	FUZZ_ASSERT(fclose(f) == 0);
	buf_release(&m);
}

/* The tag's digest into out ("" when the tag does not exist). */
static void import_tagged(char out[DIGEST_STR_MAX])
{
	struct reference ref;
	struct meta_manifest mm;
	out[0] = '\0';
	FUZZ_ASSERT(reference_parse(IMPORT_TAG, strlen(IMPORT_TAG), &ref) == 0);
	memset(&mm, 0, sizeof(mm));
	if (meta_manifest_get(import_store->meta, IMPORT_REPO, &ref, &mm) == 0)
		digest_str(&mm.digest, out);
	meta_manifest_release(&mm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imgimport_opts o = { IMPORT_REPO, IMPORT_TAG, NULL, 4 << 20, NULL };
	struct imgimport_result res;
	struct buf detail = BUF_INIT;
	char before[DIGEST_STR_MAX], after[DIGEST_STR_MAX], top[DIGEST_STR_MAX];
	int rc;
	if (!size || size > (1 << 20))
		return 0;
	import_setup();
	import_archive(data[0] & 1, data + 1, size - 1);
	import_tagged(before);
	memset(&res, 0, sizeof(res));
	rc = store_import(import_store, import_path.buf, &o, &res, &detail);
	import_tagged(after);
	if (rc == 0) {
		digest_str(&res.top, top);
		FUZZ_ASSERT(!strcmp(after, top));
	} else {
		FUZZ_ASSERT(rc < 0);
		FUZZ_ASSERT(!strcmp(before, after));
		FUZZ_ASSERT(detail.len > 0);
		for (size_t i = 0; i < detail.len; i++)
			FUZZ_ASSERT((unsigned char)detail.buf[i] >= 0x20 && detail.buf[i] != 0x7f);
	}
	imgimport_result_release(&res);
	buf_release(&detail);
	return 0;
}
