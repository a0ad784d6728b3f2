/* gc_util: small pieces garbage collection and fsck share: clock, item reports, a string map, the run lock, reports. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "gc.h"
#include "gc_internal.h"
#include "log.h"
#include "xalloc.h"

int64_t gc_now_ms(void)
{
	return clock_wall_ms();
}

int gc_cancelled(const struct gc_opts *o)
{
	return o->cancel && atomic_load(o->cancel);
}

void gc_tell(const struct gc_opts *o, enum gc_item_kind kind, const char *repo, const char *name, int64_t size)
{
	struct gc_item it = { kind, repo, name, size };
	if (o->on_item)
		o->on_item(o->ctx, &it);
}

void gc_opts_init(struct gc_opts *o, int64_t history_s, int64_t untagged_s, int64_t grace_s, int64_t upload_ttl_s)
{
	memset(o, 0, sizeof(*o));
	o->history_s = history_s;
	o->untagged_s = untagged_s;
	o->grace_s = grace_s;
	o->upload_ttl_s = upload_ttl_s;
	o->settle_ms = grace_s * 1000 < GC_SETTLE_MS_MAX ? grace_s * 1000 : GC_SETTLE_MS_MAX;
}

/* ---- string map ---- */

static size_t str_hash(const char *s)
{
	size_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void strmap_grow(struct strmap *m)
{
	struct strmap bigger = { 0 };
	bigger.cap = m->cap ? 2 * m->cap : 64;
	bigger.keys = xcalloc(bigger.cap, sizeof(*bigger.keys));
	bigger.vals = xcalloc(bigger.cap, sizeof(*bigger.vals));
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->keys[i])
			continue;
		size_t j = str_hash(m->keys[i]) & (bigger.cap - 1);
		while (bigger.keys[j])
			j = (j + 1) & (bigger.cap - 1);
		bigger.keys[j] = m->keys[i];
		bigger.vals[j] = m->vals[i];
	}
	bigger.n = m->n;
	free(m->keys);
	free(m->vals);
	*m = bigger;
}

int64_t *strmap_get(struct strmap *m, const char *key, int add)
{
	if (!m->cap || (add && 2 * (m->n + 1) > m->cap)) {
		if (!add)
			return NULL;
		strmap_grow(m);
	}
	size_t j = str_hash(key) & (m->cap - 1);
	while (m->keys[j]) {
		if (!strcmp(m->keys[j], key))
			return &m->vals[j];
		j = (j + 1) & (m->cap - 1);
	}
	if (!add)
		return NULL;
	m->keys[j] = xstrdup(key);
	m->vals[j] = 0;
	m->n++;
	return &m->vals[j];
}

void strmap_release(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ---- the run lock ---- */

int gc_lock(const char *root, int *fd)
{
	/* flock on the data directory itself: no extra file, released by the kernel when the process dies */
	*fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0) {
		log_error("gc: cannot open \"%s\": %s", root, strerror(errno));
		return E_IO;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(*fd);
		*fd = -1;
		if (e == EWOULDBLOCK)
			return E_BUSY;
		log_error("gc: cannot lock \"%s\": %s", root, strerror(e));
		return E_IO;
	}
	return 0;
}

void gc_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

int gc_runlock_take(struct store *st, struct gc_runlock *l)
{
	l->fd = -1;
	l->pg = st->pg;
	l->meta = st->meta;
	if (!st->pg)
		return gc_lock(st->root, &l->fd);
	int rc = meta_gc_lock(st->meta);
	if (rc && rc != E_BUSY)
		log_error("gc: cannot take the collection lock in the database: %s", err_desc(rc)->message);
	return rc;
}

void gc_runlock_drop(struct gc_runlock *l)
{
	if (l->pg)
		meta_gc_unlock(l->meta);
	else
		gc_unlock(l->fd);
	l->fd = -1;
	l->pg = 0;
}

/* ---- reports ---- */

void gc_human_size(int64_t bytes, struct buf *out)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	if (bytes < 1024) {
		buf_addf(out, "%lld B", (long long)bytes);
		return;
	}
	double v = (double)bytes / 1024;
	int u = 0;
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	buf_addf(out, "%.1f %s", v, units[u]);
}

static const char *plural(int64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

void gc_report_text(const struct gc_report *r, struct buf *out)
{
	int dry = r->dry_run;
	buf_adds(out, dry ? "gc (dry run): would delete " : "gc: deleted ");
	buf_addf(out, "%lld %s and %lld blob %s, ", (long long)r->manifests, plural(r->manifests, "manifest", "manifests"),
		 (long long)r->links, plural(r->links, "link", "links"));
	buf_addf(out, "%s %lld %s (", dry ? "would free" : "freed", (long long)r->blobs, plural(r->blobs, "blob", "blobs"));
	gc_human_size(r->bytes, out);
	buf_addf(out, "), %s %lld %s (", dry ? "would purge" : "purged", (long long)r->uploads,
		 plural(r->uploads, "upload", "uploads"));
	gc_human_size(r->upload_bytes, out);
	buf_addf(out, "); %lld %s", (long long)r->repos, plural(r->repos, "repository", "repositories"));
	if (r->repos_emptied)
		buf_addf(out, ", %lld %s", (long long)r->repos_emptied, dry ? "would be left empty" : "left empty");
	if (r->restored)
		buf_addf(out, "; %lld %s linked again meanwhile, kept", (long long)r->restored,
			 plural(r->restored, "blob", "blobs"));
	if (r->cancelled)
		buf_adds(out, "; stopped early");
	buf_addf(out, "; %.1f s", (double)r->duration_ms / 1000);
}

void gc_report_json(const struct gc_report *r, struct buf *out)
{
	buf_addf(out,
		 "{\"dry_run\":%s,\"cancelled\":%s,\"repositories\":%lld,\"repositories_emptied\":%lld,"
		 "\"manifests\":%lld,\"links\":%lld,\"blobs\":%lld,\"blob_bytes\":%lld,\"uploads\":%lld,"
		 "\"upload_bytes\":%lld,\"bytes_freed\":%lld,\"restored\":%lld,\"duration_ms\":%lld}",
		 r->dry_run ? "true" : "false", r->cancelled ? "true" : "false", (long long)r->repos,
		 (long long)r->repos_emptied, (long long)r->manifests, (long long)r->links, (long long)r->blobs,
		 (long long)r->bytes, (long long)r->uploads, (long long)r->upload_bytes,
		 (long long)(r->bytes + r->upload_bytes), (long long)r->restored, (long long)r->duration_ms);
}
