/* imgsource: image import input, a tar streamed once or an OCI layout directory (see imgsource.h). */
#include "imgsource.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "meta.h"
#include "store_backend.h"
#include "tarball.h"
#include "xalloc.h"

/* Copy granularity between input and blob store. */
#define CHUNK (1 << 20)

static const char *const meta_names[IMGSRC_NMETA] = { "oci-layout", "index.json", "manifest.json" };

void imgsrc_quote(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	buf_addch(b, '"');
	for (size_t i = 0; i < n && i < 200; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
			buf_addf(b, "\\x%02x", c);
		else
			buf_addch(b, (char)c);
	}
	buf_adds(b, n > 200 ? "...\"" : "\"");
}

/* ------------------------------------------------------------------ blob sink */

/*
 * A blob on its way into the store: a one-shot upload of the import's
 * repository (the store's own write path, so an object store receives it
 * in parts as it streams, with nothing kept on the local disk), hashed
 * here as well, since a docker save file's digest is known only at its end.
 */
struct sink {
	struct store_upload *u;
	int finished;
	struct hasher h;
	int64_t size;
	unsigned char magic[4];
	size_t nmagic;
};

/*
 * Whether blob d is in the store: recorded in the metadata and its bytes
 * present (in the blob backend, or in the database for a manifest). An
 * object with no record may be an orphan that a collection is about to
 * delete, so it is never trusted.
 */
static int recorded(struct imgsrc *s, const struct digest *d)
{
	struct store_reader rd;
	int rc = meta_blob_known(s->st->meta, d, NULL);
	if (rc)
		return rc;
	rc = store_blob_open_any(s->st, d, &rd);
	store_reader_release(&rd);
	return rc;
}

static int sink_open(struct imgsrc *s, struct sink *k, enum digest_alg alg, int64_t expect)
{
	int rc;
	memset(k, 0, sizeof(*k));
	hasher_init(&k->h, alg);
	if (!(rc = store_upload_oneshot(s->st, s->repo, &k->u, NULL)) && expect > 0)
		store_upload_expect(k->u, expect);
	return rc;
}

static int sink_write(struct sink *k, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; k->nmagic < sizeof(k->magic) && i < len; i++)
		k->magic[k->nmagic++] = p[i];
	hasher_update(&k->h, data, len);
	k->size += (int64_t)len;
	return store_upload_write(k->u, data, len);
}

/*
 * Gives the upload up unless it was finished. Its state is flushed first:
 * a one-shot upload is removed from the state it last flushed, and on an
 * object store only that names the multipart upload begun meanwhile,
 * which the removal then aborts (a failure path: the flush's tail object
 * goes with it).
 */
static void sink_abort(struct sink *k)
{
	if (k->u && !k->finished)
		(void)store_upload_flush(k->u);
	store_upload_release(k->u, 0);
	k->u = NULL;
	if (k->h.ctx)
		hasher_release(&k->h);
}

/*
 * Finishes the blob: its digest goes to *out; when want is not NULL and
 * differs, E_DIGEST_INVALID and nothing is stored. Otherwise the upload
 * is finished under that digest (stored and linked to the repository).
 * *existed tells whether the store had it recorded already. The sink is
 * released either way.
 */
static int sink_commit(struct imgsrc *s, struct sink *k, const struct digest *want, struct digest *out,
		       int *existed)
{
	int rc;
	hasher_final(&k->h, out);
	hasher_release(&k->h);
	/* no flush first: on an object store it would write a small blob's bytes as a tail object */
	if (want && !digest_eq(want, out)) {
		rc = E_DIGEST_INVALID;
		goto out;
	}
	if (existed)
		*existed = recorded(s, out) == 0;
	int was_linked = store_blob_stat(s->st, s->repo, out, NULL) == 0;
	if (!(rc = store_upload_finish(k->u, out))) {
		k->finished = 1;
		if (!was_linked) {
			s->fresh = xgrow(s->fresh, &s->alloc_fresh, s->nfresh, sizeof(*s->fresh));
			s->fresh[s->nfresh++] = *out;
		}
	}
out:
	sink_abort(k);
	return rc;
}

/* Why the store refused a blob, for a detail: the error's own words. */
static const char *refusal(int rc)
{
	return err_desc(rc)->message;
}

/* ------------------------------------------------------------------ tar input */

struct fdin {
	int fd;
	int err; /* errno of a failed read */
	unsigned char head[8];
	size_t nhead;
};

static ssize_t fd_read(void *ctx, void *buf, size_t len)
{
	struct fdin *in = ctx;
	for (;;) {
		ssize_t n = read(in->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			in->err = errno;
			return E_IO;
		}
		for (ssize_t i = 0; i < n && in->nhead < sizeof(in->head); i++)
			in->head[in->nhead++] = ((unsigned char *)buf)[i];
		return n;
	}
}

/* Names a compression format from the first bytes of the input, or NULL. */
static const char *compression(const unsigned char *h, size_t n)
{
	if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b)
		return "gzip";
	if (n >= 4 && !memcmp(h, "\x28\xb5\x2f\xfd", 4))
		return "zstd";
	if (n >= 3 && !memcmp(h, "BZh", 3))
		return "bzip2";
	if (n >= 6 && !memcmp(h, "\xfd" "7zXZ\0", 6))
		return "xz";
	return NULL;
}

static int meta_index(const char *name)
{
	for (int i = 0; i < IMGSRC_NMETA; i++)
		if (!strcmp(name, meta_names[i]))
			return i;
	return -1;
}

/* Parses "blobs/<alg>/<hex>" into d; -1 for anything else. */
static int blob_name(const char *name, struct digest *d)
{
	char tmp[DIGEST_STR_MAX + 8];
	size_t n = strlen(name);
	if (strncmp(name, "blobs/", 6) || n - 6 >= sizeof(tmp))
		return -1;
	memcpy(tmp, name + 6, n - 6 + 1);
	char *slash = strchr(tmp, '/');
	if (!slash)
		return -1;
	*slash = ':';
	return digest_parse(tmp, d) ? -1 : 0;
}

/* docker save's legacy metadata (repositories, <id>/json, <id>/VERSION): never needed. */
static int legacy_file(const char *name)
{
	const char *slash = strrchr(name, '/');
	if (!slash)
		return !strcmp(name, "repositories");
	return strncmp(name, "blobs/", 6) && (!strcmp(slash + 1, "json") || !strcmp(slash + 1, "VERSION"));
}

static int read_meta(struct imgsrc *s, struct tar_reader *tr, const struct tar_entry *e, int which,
		     struct buf *detail)
{
	size_t got;
	int rc;
	if (s->has_meta[which]) {
		buf_addf(detail, "\"%s\" appears twice in the archive", e->name);
		return E_BAD_REQUEST;
	}
	if (e->size > IMGSRC_META_MAX) {
		buf_addf(detail, "\"%s\" is %lld bytes, more than the %d accepted", e->name, (long long)e->size,
			 IMGSRC_META_MAX);
		return E_BAD_REQUEST;
	}
	s->has_meta[which] = 1;
	buf_grow(&s->meta[which], (size_t)e->size);
	while (!(rc = tar_read(tr, s->meta[which].buf + s->meta[which].len, (size_t)e->size - s->meta[which].len,
			       &got, detail)) && got)
		buf_setlen(&s->meta[which], s->meta[which].len + got);
	return rc;
}

static int store_entry(struct imgsrc *s, struct tar_reader *tr, const struct tar_entry *e, char *chunk,
		       struct buf *detail)
{
	struct digest want, got_d;
	int check = blob_name(e->name, &want) == 0, existed = 0, rc;
	struct sink k;
	size_t got;
	if (!check && !strncmp(e->name, "blobs/", 6))
		return 0; /* an algorithm berth does not know: nothing can reference it */
	if ((rc = sink_open(s, &k, check ? want.alg : DIGEST_SHA256, e->size))) {
		buf_addf(detail, "cannot start storing \"%s\": %s", e->name, refusal(rc));
		sink_abort(&k);
		return rc;
	}
	while (!(rc = tar_read(tr, chunk, CHUNK, &got, detail)) && got)
		if ((rc = sink_write(&k, chunk, got))) {
			buf_addf(detail, "cannot store \"%s\": %s", e->name, refusal(rc));
			break;
		}
	if (rc) {
		sink_abort(&k);
		return rc;
	}
	struct imgsrc_file f = { .size = k.size, .nmagic = k.nmagic };
	memcpy(f.magic, k.magic, sizeof(f.magic));
	rc = sink_commit(s, &k, check ? &want : NULL, &got_d, &existed);
	if (rc == E_DIGEST_INVALID) {
		char ds[DIGEST_STR_MAX];
		buf_addf(detail, "\"%s\" hashes to %s: its content does not match its name", e->name,
			 digest_str(&got_d, ds));
		return rc;
	}
	if (rc) {
		buf_addf(detail, "cannot store \"%s\": %s", e->name, refusal(rc));
		return rc;
	}
	s->files = xgrow(s->files, &s->alloc, s->nfiles, sizeof(*s->files));
	f.name = xstrdup(e->name);
	f.digest = got_d;
	f.existed = existed;
	s->files[s->nfiles++] = f;
	return 0;
}

/* Refuses a link where a metadata file or a blob belongs; remembers any other. */
static int take_link(struct imgsrc *s, const char *name, struct buf *detail)
{
	if (meta_index(name) >= 0 || !strncmp(name, "blobs/", 6)) {
		imgsrc_quote(detail, name);
		buf_adds(detail, " is a symbolic link: links in archives are never followed, "
			 "the archive must hold the file itself");
		return E_BAD_REQUEST;
	}
	s->links = xgrow(s->links, &s->alloc_links, s->nlinks, sizeof(*s->links));
	s->links[s->nlinks++] = xstrdup(name);
	return 0;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct imgsrc_file *)a)->name, ((const struct imgsrc_file *)b)->name);
}

static int scan_entries(struct imgsrc *s, struct tar_reader *tr, struct buf *detail)
{
	char *chunk = xmalloc(CHUNK);
	struct tar_entry e;
	size_t count = 0;
	int rc;
	while ((rc = tar_next(tr, &e, detail)) == 1) {
		int which = meta_index(e.name);
		if (++count > IMGSRC_MAX_ENTRIES) {
			buf_addf(detail, "the archive has more than %d entries", IMGSRC_MAX_ENTRIES);
			rc = E_BAD_REQUEST;
			break;
		}
		if (e.type == TAR_DIR || legacy_file(e.name))
			continue;
		if (e.type == TAR_SYMLINK) {
			if ((rc = take_link(s, e.name, detail)))
				break;
			continue;
		}
		if (!s->nested) {
			const char *base = strrchr(e.name, '/');
			if (base && (!strcmp(base + 1, "index.json") || !strcmp(base + 1, "manifest.json")))
				s->nested = xstrdup(e.name);
		}
		rc = which >= 0 ? read_meta(s, tr, &e, which, detail) : store_entry(s, tr, &e, chunk, detail);
		if (rc)
			break;
	}
	free(chunk);
	if (rc < 0)
		return rc;
	qsort(s->files, s->nfiles, sizeof(*s->files), by_name);
	if (s->nlinks)
		qsort(s->links, s->nlinks, sizeof(*s->links), by_str);
	for (size_t i = 1; i < s->nfiles; i++)
		if (!strcmp(s->files[i - 1].name, s->files[i].name)) {
			imgsrc_quote(detail, s->files[i].name);
			buf_adds(detail, " appears twice in the archive");
			return E_BAD_REQUEST;
		}
	return 0;
}

static int open_tar(struct imgsrc *s, int fd, struct buf *detail)
{
	struct fdin in = { .fd = fd };
	struct tar_reader tr;
	struct buf why = BUF_INIT;
	int rc;
	tar_reader_init(&tr, fd_read, &in);
	rc = scan_entries(s, &tr, &why);
	s->bytes = tr.pos;
	if (rc == E_IO && in.err) {
		buf_addf(detail, "cannot read the archive: %s", strerror(in.err));
	} else if (rc && tr.pos <= TAR_BLOCK && compression(in.head, in.nhead)) {
		buf_addf(detail, "the input is %s-compressed: decompress it first "
			 "(e.g. %s -dc FILE | berth import REPO:TAG -)", compression(in.head, in.nhead),
			 compression(in.head, in.nhead));
		rc = E_BAD_REQUEST;
	} else if (rc && tr.pos == 0) {
		buf_adds(detail, "the input is empty");
	} else if (rc) {
		buf_addf(detail, "%s", why.buf);
	}
	buf_release(&why);
	tar_reader_release(&tr);
	return rc;
}

/* ------------------------------------------------------------------ directory input */

/* Opens name below the layout, one component at a time, never following a symbolic link. */
static int dir_open(struct imgsrc *s, const char *name, int64_t *size, int *fd, struct buf *detail)
{
	char *copy = xstrdup(name), *save = NULL;
	int cur = s->dirfd, rc = 0;
	struct stat st;
	*fd = -1;
	for (char *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		int last = !save || !*save;
		int next = openat(cur, part, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY));
		if (cur != s->dirfd)
			close(cur);
		cur = next;
		if (next < 0)
			break;
	}
	if (cur < 0) {
		rc = (errno == ENOENT || errno == ENOTDIR) ? E_BLOB_UNKNOWN : E_IO;
		if (errno == ELOOP)
			buf_addf(detail, "\"%s\" in the layout is a symbolic link: not followed", name);
		else if (rc == E_IO)
			buf_addf(detail, "cannot open \"%s\" in the layout: %s", name, strerror(errno));
		rc = errno == ELOOP ? E_BAD_REQUEST : rc;
	} else if (fstat(cur, &st) < 0 || !S_ISREG(st.st_mode)) {
		buf_addf(detail, "\"%s\" in the layout is not a regular file", name);
		close(cur);
		rc = E_BAD_REQUEST;
	} else {
		*fd = cur;
		*size = (int64_t)st.st_size;
	}
	free(copy);
	return rc;
}

static int read_fd_all(int fd, struct buf *out, size_t max)
{
	char tmp[65536];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return E_IO;
		if (n == 0)
			return 0;
		if (out->len + (size_t)n > max)
			return E_MANIFEST_TOO_BIG;
		buf_add(out, tmp, (size_t)n);
	}
}

static int open_dir(struct imgsrc *s, int dirfd, struct buf *detail)
{
	s->dirfd = dirfd;
	for (int i = 0; i < IMGSRC_NMETA; i++) {
		int64_t size;
		int fd, rc = dir_open(s, meta_names[i], &size, &fd, detail);
		if (rc == E_BLOB_UNKNOWN)
			continue;
		if (rc)
			return rc;
		rc = read_fd_all(fd, &s->meta[i], IMGSRC_META_MAX);
		close(fd);
		if (rc) {
			buf_addf(detail, rc == E_IO ? "cannot read \"%s\"" : "\"%s\" is larger than %d bytes", meta_names[i],
				 IMGSRC_META_MAX);
			return rc == E_IO ? E_IO : E_BAD_REQUEST;
		}
		s->has_meta[i] = 1;
	}
	return 0;
}

static int dir_blob(struct imgsrc *s, const struct digest *d, int64_t size, int *existed, struct buf *detail)
{
	struct buf name = BUF_INIT;
	char ds[DIGEST_STR_MAX];
	struct digest got_d;
	struct sink k;
	char *chunk = NULL;
	int64_t have;
	int fd = -1, read_err = 0, rc;
	buf_addf(&name, "blobs/%s/%s", digest_alg_name(d->alg), d->hex);
	digest_str(d, ds);
	if ((rc = dir_open(s, name.buf, &have, &fd, detail))) {
		if (rc == E_BLOB_UNKNOWN)
			buf_addf(detail, "blob %s is missing from the layout (no %s)", ds, name.buf);
		goto out;
	}
	if (size >= 0 && have != size) {
		buf_addf(detail, "blob %s is %lld bytes in the layout, but its descriptor says %lld", ds,
			 (long long)have, (long long)size);
		rc = E_SIZE_INVALID;
		goto out;
	}
	if (recorded(s, d) == 0) {
		*existed = 1; /* the store holds exactly these bytes already */
		goto out;
	}
	chunk = xmalloc(CHUNK);
	if (!(rc = sink_open(s, &k, d->alg, have))) {
		for (;;) {
			ssize_t n = read(fd, chunk, CHUNK);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				read_err = n < 0 ? errno : 0;
				rc = n < 0 ? E_IO : 0;
				break;
			}
			if ((rc = sink_write(&k, chunk, (size_t)n)))
				break;
		}
		if (!rc)
			rc = sink_commit(s, &k, d, &got_d, existed);
	}
	if (rc)
		sink_abort(&k);
	if (rc == E_DIGEST_INVALID)
		buf_addf(detail, "%s in the layout hashes to %s: its content does not match its name", name.buf,
			 digest_str(&got_d, ds));
	else if (read_err)
		buf_addf(detail, "cannot read %s in the layout: %s", name.buf, strerror(read_err));
	else if (rc)
		buf_addf(detail, "cannot store %s: %s", name.buf, refusal(rc));
out:
	free(chunk);
	if (fd >= 0)
		close(fd);
	buf_release(&name);
	return rc;
}

/* ------------------------------------------------------------------ public */

int imgsrc_open(struct imgsrc *s, struct store *st, const char *repo, const char *path, struct buf *detail)
{
	struct stat sb;
	int fd, rc;
	memset(s, 0, sizeof(*s));
	s->st = st;
	s->repo = repo;
	s->dirfd = -1;
	for (int i = 0; i < IMGSRC_NMETA; i++)
		buf_init(&s->meta[i], 0);
	if (!strcmp(path, "-")) {
		s->kind = IMGSRC_TAR;
		return open_tar(s, STDIN_FILENO, detail);
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		buf_addf(detail, "cannot open \"%s\": %s", path, strerror(errno));
		return errno == ENOENT ? E_NAME_UNKNOWN : E_IO;
	}
	if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		s->kind = IMGSRC_DIR;
		return open_dir(s, fd, detail);
	}
	s->kind = IMGSRC_TAR;
	rc = open_tar(s, fd, detail);
	close(fd);
	return rc;
}

void imgsrc_unlink_fresh(struct imgsrc *s)
{
	for (size_t i = 0; i < s->nfresh; i++)
		(void)store_blob_unlink(s->st, s->repo, &s->fresh[i]);
	s->nfresh = 0;
}

void imgsrc_release(struct imgsrc *s)
{
	free(s->fresh);
	for (size_t i = 0; i < s->nfiles; i++)
		free(s->files[i].name);
	free(s->files);
	for (size_t i = 0; i < s->nlinks; i++)
		free(s->links[i]);
	free(s->links);
	for (int i = 0; i < IMGSRC_NMETA; i++)
		buf_release(&s->meta[i]);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->nested);
	memset(s, 0, sizeof(*s));
	s->dirfd = -1;
}

const struct imgsrc_file *imgsrc_find(const struct imgsrc *s, const char *name)
{
	struct imgsrc_file key = { .name = (char *)name };
	if (!s->nfiles)
		return NULL;
	return bsearch(&key, s->files, s->nfiles, sizeof(*s->files), by_name);
}

int imgsrc_is_link(const struct imgsrc *s, const char *name)
{
	return s->nlinks && bsearch(&name, s->links, s->nlinks, sizeof(*s->links), by_str) != NULL;
}

int imgsrc_blob(struct imgsrc *s, const struct digest *d, int64_t size, int *existed, struct buf *detail)
{
	struct buf name = BUF_INIT;
	char ds[DIGEST_STR_MAX];
	int dummy, rc = 0;
	if (!existed)
		existed = &dummy;
	*existed = 0;
	if (s->kind == IMGSRC_DIR)
		return dir_blob(s, d, size, existed, detail);
	buf_addf(&name, "blobs/%s/%s", digest_alg_name(d->alg), d->hex);
	const struct imgsrc_file *f = imgsrc_find(s, name.buf);
	digest_str(d, ds);
	if (!f) {
		buf_addf(detail, "blob %s is missing from the archive (no %s)", ds, name.buf);
		rc = E_BLOB_UNKNOWN;
	} else if (size >= 0 && f->size != size) {
		buf_addf(detail, "blob %s is %lld bytes in the archive, but its descriptor says %lld", ds,
			 (long long)f->size, (long long)size);
		rc = E_SIZE_INVALID;
	} else {
		*existed = f->existed;
	}
	buf_release(&name);
	return rc;
}
