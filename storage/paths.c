/* paths: file system layout of a data directory (see paths.h for the tree). */
#include "paths.h"

#include <string.h>

#include "err.h"

void paths_db(struct buf *out, const char *root)
{
	buf_addf(out, "%s/berth.db", root);
}

void paths_lock(struct buf *out, const char *root)
{
	buf_addf(out, "%s/berth.lock", root);
}

void paths_reserve(struct buf *out, const char *root)
{
	buf_addf(out, "%s/reserve", root);
}

void paths_blobs_dir(struct buf *out, const char *root)
{
	buf_addf(out, "%s/blobs", root);
}

void paths_blob_alg_dir(struct buf *out, const char *root, enum digest_alg alg)
{
	buf_addf(out, "%s/blobs/%s", root, digest_alg_name(alg));
}

void paths_blob_dir(struct buf *out, const char *root, const struct digest *d)
{
	buf_addf(out, "%s/blobs/%s/%.2s", root, digest_alg_name(d->alg), d->hex);
}

void paths_blob(struct buf *out, const char *root, const struct digest *d)
{
	buf_addf(out, "%s/blobs/%s/%.2s/%s", root, digest_alg_name(d->alg), d->hex, d->hex);
}

void paths_uploads_dir(struct buf *out, const char *root)
{
	buf_addf(out, "%s/uploads", root);
}

void paths_upload(struct buf *out, const char *root, const char *id)
{
	buf_addf(out, "%s/uploads/%s", root, id);
}

void paths_keys_dir(struct buf *out, const char *root)
{
	buf_addf(out, "%s/keys", root);
}

void paths_probe(struct buf *out, const char *root)
{
	buf_addf(out, "%s/uploads/.readyz-XXXXXX", root);
}

int paths_upload_id_check(const char *id)
{
	size_t n = strnlen(id, UPLOAD_ID_LEN + 1);
	if (n != UPLOAD_ID_LEN)
		return E_BLOB_UPLOAD_UNKNOWN;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return E_BLOB_UPLOAD_UNKNOWN;
	return 0;
}
