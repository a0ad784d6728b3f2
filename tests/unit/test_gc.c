/*
 * Unit tests for storage/gc and storage/fsck on a real blob store and
 * database in a scratch directory: what a collection keeps (tags, history
 * window, young manifests, index children, referrers of live manifests,
 * fresh links, blobs shared across repositories) and what it frees, dry
 * runs, stale uploads, orphan and re-linked files, crash leftovers, and
 * the integrity check with its repair. "Old" is made by moving every
 * recorded time and file modification time back (white-box, through a
 * second SQLite connection), so nothing waits.
 */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blobstore.h"
#include "buf.h"
#include "err.h"
#include "fsck.h"
#include "gc.h"
#include "gc_internal.h"
#include "manifest.h"
#include "meta.h"
#include "paths.h"
#include "store_backend.h"
#include "t.h"
#include "upload.h"

static char mt_manifest[] = MT_OCI_MANIFEST;
static char mt_index[] = MT_OCI_INDEX;
static struct buf base = BUF_INIT, root = BUF_INIT;
static struct store *store;
static const struct blobstore *bsp; /* store's blob directory */
static sqlite3 *raw;
static int store_no;

/* Windows of the tests: history 100 s, untagged 100 s, grace 60 s, upload ttl 100 s. */
#define OLD 200

static void scratch_open(void)
{
	struct buf p = BUF_INIT;
	buf_reset(&root);
	buf_addf(&root, "%s/s%d", base.buf, ++store_no);
	CHECK_EQ_INT(store_open(root.buf, &store), 0);
	bsp = store_blobstore(store);
	CHECK(bsp != NULL);
	paths_db(&p, root.buf);
	CHECK_EQ_INT(sqlite3_open(p.buf, &raw), SQLITE_OK);
	sqlite3_busy_timeout(raw, 5000);
	buf_release(&p);
}

static void scratch_close(void)
{
	sqlite3_close(raw);
	store_close(store);
	store = NULL;
	bsp = NULL;
}

static int age_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_F) {
		struct timespec ts[2] = { st->st_atim, st->st_mtim };
		ts[0].tv_sec -= OLD;
		ts[1].tv_sec -= OLD;
		utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
	}
	return 0;
}

/* Everything recorded or written so far becomes OLD seconds older. */
static void age_all(void)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "UPDATE manifests SET created_ms = created_ms - %d; UPDATE blob_links SET linked_ms = linked_ms - %d;"
		 "UPDATE tag_history SET time_ms = time_ms - %d; UPDATE uploads SET updated_ms = updated_ms - %d,"
		 " created_ms = created_ms - %d; UPDATE tags SET updated_ms = updated_ms - %d;",
		 OLD * 1000, OLD * 1000, OLD * 1000, OLD * 1000, OLD * 1000, OLD * 1000);
	CHECK_EQ_INT(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
	nftw(root.buf, age_file, 8, FTW_PHYS);
}

static struct digest blob(const char *repo, const char *seed)
{
	struct buf data = BUF_INIT;
	struct digest d;
	buf_addf(&data, "blob %s ", seed);
	for (int i = 0; i < 40; i++)
		buf_adds(&data, seed);
	digest_of(DIGEST_SHA256, data.buf, data.len, &d);
	CHECK_EQ_INT(blobstore_write(bsp, &d, data.buf, data.len), 0);
	CHECK_EQ_INT(meta_blob_link(store->meta, repo, &d, (int64_t)data.len), 0);
	buf_release(&data);
	return d;
}

/* A manifest of repo (tag may be NULL) with the given references; its bytes are just unique text. */
static struct digest manifest(const char *repo, const char *tag, const char *seed, struct manifest_ref *refs,
			      size_t n, const struct digest *subject)
{
	struct manifest_info mi;
	struct meta_actor actor = { .name = "test", .how = "push" };
	struct buf data = BUF_INIT;
	struct digest d;
	int is_index = n && refs[0].kind == REF_CHILD;
	memset(&mi, 0, sizeof(mi));
	mi.media_type = is_index ? mt_index : mt_manifest;
	mi.is_index = is_index;
	mi.refs = refs;
	mi.nrefs = n;
	if (subject) {
		mi.has_subject = 1;
		mi.subject = *subject;
	}
	buf_addf(&data, "{\"manifest\":\"%s\"}", seed);
	digest_of(DIGEST_SHA256, data.buf, data.len, &d);
	CHECK_EQ_INT(blobstore_write(bsp, &d, data.buf, data.len), 0);
	CHECK_EQ_INT(meta_manifest_put(store->meta, repo, &d, (int64_t)data.len, &mi, tag, &actor, NULL), 0);
	buf_release(&data);
	return d;
}

struct image {
	struct digest config, layer, manifest;
};

static struct image image(const char *repo, const char *tag, const char *seed)
{
	struct image im;
	struct buf s = BUF_INIT;
	buf_addf(&s, "%s-config", seed);
	im.config = blob(repo, s.buf);
	buf_reset(&s);
	buf_addf(&s, "%s-layer", seed);
	im.layer = blob(repo, s.buf);
	struct manifest_ref refs[2] = { { REF_CONFIG, im.config, 1, 0 }, { REF_LAYER, im.layer, 1, 0 } };
	im.manifest = manifest(repo, tag, seed, refs, 2, NULL);
	buf_release(&s);
	return im;
}

static int has_manifest(const char *repo, const struct digest *d)
{
	struct reference ref = { .is_digest = 1, .digest = *d };
	struct meta_manifest m;
	int rc = meta_manifest_get(store->meta, repo, &ref, &m);
	meta_manifest_release(&m);
	return rc == 0;
}

static int has_file(const struct digest *d)
{
	return blobstore_stat(bsp, d, NULL) == 0;
}

static int linked(const char *repo, const struct digest *d)
{
	return meta_blob_linked(store->meta, repo, d, NULL) == 0;
}

static struct gc_report gc(int dry)
{
	struct gc_opts o;
	struct gc_report r;
	gc_opts_init(&o, 100, 100, 60, 100);
	o.settle_ms = 0;
	o.dry_run = dry;
	CHECK_EQ_INT(store_gc(store, &o, &r), 0);
	return r;
}

static void test_images(void)
{
	scratch_open();
	struct image tagged = image("app", "v1", "tagged");
	struct image old = image("app", NULL, "old");
	age_all();
	struct image young = image("app", NULL, "young");
	struct gc_report r = gc(0);
	CHECK(has_manifest("app", &tagged.manifest) && has_file(&tagged.layer) && linked("app", &tagged.config));
	CHECK(!has_manifest("app", &old.manifest));
	CHECK(!has_file(&old.layer) && !has_file(&old.config) && !has_file(&old.manifest));
	CHECK(!linked("app", &old.layer));
	CHECK(has_manifest("app", &young.manifest) && has_file(&young.layer));
	CHECK_EQ_INT(r.manifests, 1);
	CHECK_EQ_INT(r.links, 3);
	CHECK_EQ_INT(r.blobs, 3);
	CHECK(r.bytes > 0);
	/* a second run finds nothing */
	r = gc(0);
	CHECK_EQ_INT(r.manifests + r.links + r.blobs, 0);
	scratch_close();
}

static void test_index_and_referrers(void)
{
	scratch_open();
	struct image a = image("multi", NULL, "arch-a"), b = image("multi", NULL, "arch-b");
	struct manifest_ref kids[2] = { { REF_CHILD, a.manifest, 1, 0 }, { REF_CHILD, b.manifest, 1, 0 } };
	struct digest index = manifest("multi", "latest", "index", kids, 2, NULL);
	/* a signature of the tagged index, and one of a manifest nobody keeps */
	struct image lone = image("multi", NULL, "lone");
	struct digest sig = manifest("multi", NULL, "sig-of-index", NULL, 0, &index);
	struct digest sig_dead = manifest("multi", NULL, "sig-of-lone", NULL, 0, &lone.manifest);
	/* a referrer of a referrer of the index: kept through the chain */
	struct digest sig2 = manifest("multi", NULL, "sig-of-sig", NULL, 0, &sig);
	/* an untagged index whose child is only its own: both go, parent first */
	struct image c = image("multi", NULL, "arch-c");
	struct manifest_ref kid[1] = { { REF_CHILD, c.manifest, 1, 0 } };
	struct digest dead_index = manifest("multi", NULL, "dead-index", kid, 1, NULL);
	age_all();
	struct gc_report r = gc(0);
	CHECK(has_manifest("multi", &index) && has_manifest("multi", &a.manifest) && has_manifest("multi", &b.manifest));
	CHECK(has_file(&a.layer) && has_file(&b.config));
	CHECK(has_manifest("multi", &sig) && has_manifest("multi", &sig2) && has_file(&sig));
	CHECK(!has_manifest("multi", &lone.manifest) && !has_manifest("multi", &sig_dead) && !has_file(&sig_dead));
	CHECK(!has_manifest("multi", &dead_index) && !has_manifest("multi", &c.manifest) && !has_file(&c.layer));
	CHECK_EQ_INT(r.manifests, 4);
	scratch_close();
}

static void test_history_window(void)
{
	struct meta_actor actor = { .name = "test", .how = "push" };
	scratch_open();
	struct image first = image("hist", "prod", "first");
	age_all();
	struct image second = image("hist", "prod", "second");
	gc(0);
	/* prod moved away from first only now: rollback must still find it */
	CHECK(has_manifest("hist", &first.manifest) && has_file(&first.layer));
	age_all();
	gc(0);
	CHECK(!has_manifest("hist", &first.manifest) && !has_file(&first.layer));
	CHECK(has_manifest("hist", &second.manifest));
	/* a deleted tag's digest is kept for the window too */
	CHECK_EQ_INT(meta_tag_delete(store->meta, "hist", "prod", &actor), 0);
	gc(0);
	CHECK(has_manifest("hist", &second.manifest));
	age_all();
	gc(0);
	CHECK(!has_manifest("hist", &second.manifest) && !has_file(&second.layer));
	/* nothing left: gone from the catalog */
	CHECK_EQ_INT(meta_repo_exists(store->meta, "hist"), E_NAME_UNKNOWN);
	scratch_close();
}

static void test_grace_and_shared(void)
{
	scratch_open();
	struct digest loose_old = blob("lib", "loose-old");
	struct image keep = image("lib", "v1", "shared-keep");
	/* the same layer in a second repository, under an image that goes */
	struct digest shared = blob("other", "shared-keep-layer");
	CHECK(digest_eq(&shared, &keep.layer));
	struct image drop = image("other", NULL, "drop");
	age_all();
	struct digest loose_new = blob("lib", "loose-new");
	struct gc_report r = gc(0);
	CHECK(!linked("lib", &loose_old) && !has_file(&loose_old));
	CHECK(linked("lib", &loose_new) && has_file(&loose_new));
	CHECK(!linked("other", &shared) && linked("lib", &shared) && has_file(&shared));
	CHECK(!has_manifest("other", &drop.manifest) && !has_file(&drop.layer));
	CHECK_EQ_INT(meta_repo_exists(store->meta, "other"), E_NAME_UNKNOWN);
	CHECK_EQ_INT(r.repos_emptied, 1);
	CHECK_EQ_INT(meta_repo_exists(store->meta, "lib"), 0);
	scratch_close();
}

static int count_files(void *ctx, const struct gc_file *f)
{
	(void)f;
	(*(long *)ctx)++;
	return 0;
}

static void test_dry_run(void)
{
	scratch_open();
	image("dry", "v1", "dry-kept");
	image("dry", NULL, "dry-old-1");
	image("dry", NULL, "dry-old-2");
	blob("dry2", "dry-loose");
	age_all();
	long before = 0, after = 0;
	gc_walk_blobs(root.buf, count_files, &before);
	sqlite3_int64 changes = sqlite3_total_changes64(raw);
	struct gc_report dry = gc(1);
	gc_walk_blobs(root.buf, count_files, &after);
	CHECK_EQ_INT(before, after);
	CHECK(dry.dry_run && dry.manifests == 2 && dry.blobs == 7);
	CHECK_EQ_INT(dry.repos_emptied, 1);
	CHECK_EQ_INT(meta_repo_exists(store->meta, "dry2"), 0);
	CHECK_EQ_INT(sqlite3_total_changes64(raw), changes);
	struct gc_report real = gc(0);
	CHECK_EQ_INT(real.manifests, dry.manifests);
	CHECK_EQ_INT(real.links, dry.links);
	CHECK_EQ_INT(real.blobs, dry.blobs);
	CHECK_EQ_INT(real.bytes, dry.bytes);
	CHECK_EQ_INT(real.repos_emptied, dry.repos_emptied);
	after = 0;
	gc_walk_blobs(root.buf, count_files, &after);
	CHECK_EQ_INT(after, before - 7);
	scratch_close();
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_uploads(void)
{
	char stale[UPLOAD_ID_LEN + 1], fresh[UPLOAD_ID_LEN + 1], orphan[UPLOAD_ID_LEN + 1];
	struct buf p = BUF_INIT;
	scratch_open();
	CHECK_EQ_INT(upload_create(bsp, stale), 0);
	CHECK_EQ_INT(meta_upload_create(store->meta, stale, "up"), 0);
	CHECK_EQ_INT(upload_create(bsp, orphan), 0); /* a monolithic upload cut short by a crash */
	paths_uploads_dir(&p, root.buf);
	buf_adds(&p, "/tmp-0123456789abcdef");
	write_file(p.buf, "half a manifest");
	age_all();
	CHECK_EQ_INT(upload_create(bsp, fresh), 0);
	CHECK_EQ_INT(meta_upload_create(store->meta, fresh, "up"), 0);
	struct gc_report r = gc(1);
	CHECK_EQ_INT(r.uploads, 3);
	CHECK_EQ_INT(meta_upload_check(store->meta, stale, "up"), 0);
	r = gc(0);
	CHECK_EQ_INT(r.uploads, 3);
	CHECK(r.upload_bytes >= 15);
	CHECK_EQ_INT(meta_upload_check(store->meta, stale, "up"), E_BLOB_UPLOAD_UNKNOWN);
	int64_t size;
	CHECK_EQ_INT(upload_size(bsp, stale, &size), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(upload_size(bsp, orphan, &size), E_BLOB_UPLOAD_UNKNOWN);
	CHECK(access(p.buf, F_OK) != 0);
	CHECK_EQ_INT(meta_upload_check(store->meta, fresh, "up"), 0);
	CHECK_EQ_INT(upload_size(bsp, fresh, &size), 0);
	buf_release(&p);
	scratch_close();
}

/* Writes the bytes of a blob without any record: what a crash between rename and commit leaves. */
static struct digest orphan_file(const char *seed)
{
	struct digest d;
	digest_of(DIGEST_SHA256, seed, strlen(seed), &d);
	CHECK_EQ_INT(blobstore_write(bsp, &d, seed, strlen(seed)), 0);
	return d;
}

struct relink {
	struct digest d;
	int64_t size;
	int done;
};

/* Plays an upload of the same content finishing while the file sits in the trash. */
static void *relink_thread(void *arg)
{
	struct relink *rl = arg;
	struct buf p = BUF_INIT;
	paths_uploads_dir(&p, root.buf);
	buf_addf(&p, "/tmp-gc-sha256-%s", rl->d.hex);
	for (int i = 0; i < 2000 && access(p.buf, F_OK) != 0; i++)
		usleep(1000);
	rl->done = meta_blob_link(store->meta, "again", &rl->d, rl->size) == 0;
	buf_release(&p);
	return NULL;
}

static void test_orphans_and_relink(void)
{
	scratch_open();
	struct digest old_orphan = orphan_file("orphan file, old");
	struct digest dead = blob("gone", "dead but wanted again");
	age_all();
	struct digest new_orphan = orphan_file("orphan file, new");
	struct relink rl = { .d = dead, .size = 0 };
	blobstore_stat(bsp, &dead, &rl.size);
	pthread_t t;
	pthread_create(&t, NULL, relink_thread, &rl);
	struct gc_opts o;
	struct gc_report r;
	gc_opts_init(&o, 100, 100, 60, 100);
	o.settle_ms = 1000;
	CHECK_EQ_INT(store_gc(store, &o, &r), 0);
	pthread_join(t, NULL);
	CHECK(rl.done);
	CHECK(!has_file(&old_orphan) && has_file(&new_orphan));
	/* re-linked while in the trash: moved back, and whole */
	CHECK(has_file(&dead) && linked("again", &dead));
	CHECK_EQ_INT(r.restored, 1);
	CHECK_EQ_INT(r.blobs, 1);
	/* a run that died with files in the trash: known ones come back, unknown ones go */
	struct digest known = blob("crash", "known in the trash");
	struct digest unknown = orphan_file("unknown in the trash");
	struct gc_trash tr;
	int64_t size;
	CHECK_EQ_INT(gc_trash_open(&tr, store->meta, root.buf), 0);
	CHECK_EQ_INT(gc_trash_add(&tr, bsp, &known, &size), 0);
	CHECK_EQ_INT(gc_trash_add(&tr, bsp, &unknown, &size), 0);
	close(tr.upfd);
	free(tr.v);
	CHECK(!has_file(&known) && !has_file(&unknown));
	r = gc(0);
	CHECK(has_file(&known) && !has_file(&unknown));
	CHECK_EQ_INT(r.blobs, 1);
	/* one run at a time */
	int fd;
	CHECK_EQ_INT(gc_lock(root.buf, &fd), 0);
	CHECK_EQ_INT(store_gc(store, &o, &r), E_BUSY);
	gc_unlock(fd);
	scratch_close();
}

struct problems {
	struct buf text; /* "kind:repaired " per problem, notes left out */
};

static void on_problem(void *ctx, const struct fsck_problem *p)
{
	struct problems *pr = ctx;
	if (!p->note)
		buf_addf(&pr->text, "%s%s ", p->kind, p->repaired ? "+" : "");
}

/* How often word (followed by a space) occurs in text. */
static int count_word(const char *text, const char *word)
{
	int n = 0;
	size_t len = strlen(word);
	for (const char *t = text; (t = strstr(t, word)); t += len)
		if ((t == text || t[-1] == ' ') && t[len] == ' ')
			n++;
	return n;
}

static struct fsck_report fsck(int repair, struct problems *pr)
{
	struct fsck_opts o = { .repair = repair, .grace_s = 60, .upload_ttl_s = 100, .on_problem = on_problem, .ctx = pr };
	struct fsck_report r;
	buf_reset(&pr->text);
	CHECK_EQ_INT(store_fsck(store, &o, &r), 0);
	return r;
}

static void test_fsck(void)
{
	struct problems pr = { BUF_INIT };
	struct buf p = BUF_INIT;
	scratch_open();
	struct image a = image("fs", "v1", "fsck-a");
	struct image b = image("fs", "v2", "fsck-b");
	struct manifest_ref kids[1] = { { REF_CHILD, a.manifest, 1, 0 } };
	manifest("fs", "idx", "fsck-index", kids, 1, NULL);
	struct fsck_report r = fsck(0, &pr);
	CHECK_STR(pr.text.buf, "");
	CHECK_EQ_INT(r.problems, 0);
	CHECK_EQ_INT(r.files, 7);
	CHECK_EQ_INT(r.manifests, 3);
	/* corrupt a referenced layer, lose another blob, leave an orphan and a stray file */
	paths_blob(&p, root.buf, &a.layer);
	CHECK_EQ_INT(chmod(p.buf, 0644), 0);
	write_file(p.buf, "flipped bits");
	buf_reset(&p);
	paths_blob(&p, root.buf, &b.config);
	CHECK_EQ_INT(unlink(p.buf), 0);
	struct digest orphan = orphan_file("fsck orphan");
	buf_reset(&p);
	paths_blob_dir(&p, root.buf, &orphan);
	buf_adds(&p, "/not-a-digest");
	write_file(p.buf, "junk");
	age_all();
	struct digest young = orphan_file("fsck young orphan");
	r = fsck(0, &pr);
	CHECK(count_word(pr.text.buf, "corrupt") == 1 && count_word(pr.text.buf, "size") == 1);
	CHECK(count_word(pr.text.buf, "missing") == 1 && count_word(pr.text.buf, "stray") == 1);
	CHECK(count_word(pr.text.buf, "orphan") == 1);
	CHECK_EQ_INT(r.problems, 5);
	CHECK_EQ_INT(r.notes, 1);
	/* repair removes the orphan and the stray file only */
	r = fsck(1, &pr);
	CHECK(count_word(pr.text.buf, "stray+") == 1 && count_word(pr.text.buf, "orphan+") == 1);
	CHECK(count_word(pr.text.buf, "corrupt") == 1 && count_word(pr.text.buf, "missing") == 1);
	CHECK_EQ_INT(r.problems, 5);
	CHECK_EQ_INT(r.repaired, 2);
	CHECK(!has_file(&orphan) && has_file(&young) && has_file(&a.layer));
	CHECK(access(p.buf, F_OK) != 0);
	r = fsck(0, &pr);
	CHECK_EQ_INT(r.problems, 3);
	CHECK(count_word(pr.text.buf, "stray") == 0 && count_word(pr.text.buf, "orphan") == 0);
	/* a dangling child reference and a manifest without its bytes */
	CHECK_EQ_INT(sqlite3_exec(raw, "PRAGMA foreign_keys = OFF; DELETE FROM manifests WHERE digest = (SELECT"
				  " digest FROM manifest_refs WHERE kind = 2);", NULL, NULL, NULL), SQLITE_OK);
	buf_reset(&p);
	paths_blob(&p, root.buf, &b.manifest);
	CHECK_EQ_INT(unlink(p.buf), 0);
	int64_t notes_before = fsck(0, &pr).notes;
	buf_reset(&pr.text);
	r = fsck(0, &pr);
	/* a deleted index child is a note, not a problem; the missing bytes are a problem */
	CHECK_EQ_INT(count_word(pr.text.buf, "reference"), 0);
	CHECK(r.notes >= 1 && r.notes == notes_before);
	CHECK_EQ_INT(count_word(pr.text.buf, "manifest"), 1);
	CHECK(count_word(pr.text.buf, "database") >= 1); /* foreign_key_check sees the tag left pointing nowhere */
	buf_release(&pr.text);
	buf_release(&p);
	scratch_close();
}

int main(void)
{
	if (t_scratch(&base, "gc"))
		return 1;
	test_images();
	test_index_and_referrers();
	test_history_window();
	test_grace_and_shared();
	test_dry_run();
	test_uploads();
	test_orphans_and_relink();
	test_fsck();
	t_rmtree(base.buf);
	buf_release(&base);
	buf_release(&root);
	return t_done();
}
