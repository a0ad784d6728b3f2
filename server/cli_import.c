/*
 * cli_import: `berth import` and `berth export`, moving images in and out
 * of the storage of a (possibly running) registry as files, for air-gapped
 * sites: docker save tarballs and OCI layouts in, OCI layout tars out.
 * The storage is what the config names: a data directory, or the object
 * store and database the nodes of a cluster share.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "names.h"
#include "store.h"
#include "xalloc.h"

static const char import_usage[] =
	"usage: berth import REPO:TAG FILE [--ref NAME] [-c CONFIG] [--root DIR]\n"
	"\n"
	"  FILE       a docker save tarball, an OCI image layout directory, or an OCI layout\n"
	"             packed in a tar (skopeo's oci-archive:); \"-\" reads a tar from standard input\n"
	"  --ref NAME which image to take when FILE holds several: its org.opencontainers.image.ref.name\n"
	"             (OCI) or one of its RepoTags (docker save); by default the only one, or the one\n"
	"             whose ref name is TAG\n"
	"  -c CONFIG  config file of the registry (env BERTH_CONFIG)\n"
	"  --root DIR its data directory (env BERTH_ROOT), as given to berth serve\n";

static const char export_usage[] =
	"usage: berth export REPO:TAG|REPO@DIGEST FILE [-c CONFIG] [--root DIR]\n"
	"\n"
	"  FILE       the OCI layout tar to write (all platforms of an index); \"-\" writes to standard output\n"
	"  -c CONFIG  config file of the registry (env BERTH_CONFIG)\n"
	"  --root DIR its data directory (env BERTH_ROOT), as given to berth serve\n";

struct io_args {
	const char *image, *file, *config, *root, *ref;
};

static int parse_args(int argc, char **argv, struct io_args *a, int with_ref, const char *usage)
{
	int npos = 0;
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **slot = NULL;
		if (!strcmp(o, "-c") || !strcmp(o, "--config"))
			slot = &a->config;
		else if (!strcmp(o, "--root"))
			slot = &a->root;
		else if (with_ref && !strcmp(o, "--ref"))
			slot = &a->ref;
		else if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			fputs(usage, stdout);
			return 3;
		}
		if (slot) {
			if (!v)
				return cli_usage_error(usage, "option \"%s\" needs a value", o);
			*slot = v;
			i++;
		} else if (o[0] == '-' && o[1]) {
			return cli_usage_error(usage, "unknown option \"%s\"", o);
		} else if (npos < 2) {
			*(npos++ ? &a->file : &a->image) = o;
		} else {
			return cli_usage_error(usage, "unexpected argument \"%s\"", o);
		}
	}
	if (npos != 2) {
		fputs(usage, stderr);
		return 2;
	}
	return 0;
}

/* Splits "REPO:TAG" (or "REPO@DIGEST" when digest_ok) into *repo (caller frees) and *ref. */
static int parse_image(const char *s, int digest_ok, char **repo, struct reference *ref)
{
	const char *at = strchr(s, '@'), *colon = strrchr(s, ':');
	const char *sep = at ? at : (colon && !strchr(colon, '/') ? colon : NULL);
	*repo = NULL;
	if (!sep || (at && !digest_ok)) {
		fprintf(stderr, "error: \"%s\": want REPO:TAG%s\n", s, digest_ok ? " or REPO@DIGEST" : "");
		return 2;
	}
	if (name_check(s, (size_t)(sep - s))) {
		fprintf(stderr, "error: \"%.*s\" is not a valid repository name\n", (int)(sep - s), s);
		return 2;
	}
	memset(ref, 0, sizeof(*ref));
	ref->is_digest = at != NULL;
	if (at ? digest_parse(at + 1, &ref->digest) : tag_check(sep + 1, strlen(sep + 1))) {
		fprintf(stderr, "error: \"%s\" is not a valid %s\n", sep + 1, at ? "digest" : "tag");
		return 2;
	}
	if (!at)
		memcpy(ref->tag, sep + 1, strlen(sep + 1) + 1);
	*repo = xstrndup(s, (size_t)(sep - s));
	return 0;
}

struct guard_ctx {
	const struct config *cfg;
	const char *repo;
	int rule;
};

static int immutable_guard(void *ctx, const char *tag)
{
	struct guard_ctx *g = ctx;
	g->rule = config_immutable_rule(g->cfg, g->repo, tag);
	return g->rule;
}

static void audit(struct store *st, const char *action, const char *repo, const char *tag, const struct digest *d,
		  const char *format)
{
	struct buf j = BUF_INIT;
	char ds[DIGEST_STR_MAX];
	buf_adds(&j, "{\"tag\":");
	buf_add_json_str(&j, tag);
	buf_addf(&j, ",\"digest\":\"%s\",\"format\":\"%s\"}", digest_str(d, ds), format);
	store_audit_add(st, "cli", action, repo, j.buf, NULL);
	buf_release(&j);
}

static void print_import(FILE *out, const char *repo, const char *tag, const char *file,
			 const struct imgimport_result *r, const struct store_tag_change *ch)
{
	char ds[DIGEST_STR_MAX];
	fprintf(out, "%s \"%s\"", r->format, file);
	if (r->archive_bytes)
		fprintf(out, ", %lld bytes read", (long long)r->archive_bytes);
	if (r->selected)
		fprintf(out, ", image \"%s\"", r->selected);
	fputc('\n', out);
	for (size_t i = 0; i < r->nitems; i++) {
		const struct imgimport_item *it = &r->items[i];
		const char *status = it->existed ? "stored" : "new";
		fprintf(out, "  %-8s %s %12lld ", it->role, digest_str(&it->digest, ds), (long long)it->size);
		if (it->media_type)
			fprintf(out, "%-6s %s\n", status, it->media_type);
		else
			fprintf(out, "%s\n", status);
	}
	if (r->fallback)
		fputs("note: index.json names content the archive does not hold (a partial multi-platform save); "
		      "imported the image manifest.json describes\n", out);
	if (r->layers_unchecked)
		fprintf(out, "note: %d compressed layer(s) kept as they are; their diff_ids were not re-computed\n",
			r->layers_unchecked);
	fprintf(out, "%s:%s -> %s", repo, tag, digest_str(&r->top, ds));
	if (!ch->count)
		fputs(" (tag unchanged: it pointed there already)\n", out);
	else if (ch->old_digest[0])
		fprintf(out, " (tag moved from %s)\n", ch->old_digest);
	else
		fputs(" (tag created)\n", out);
}

int cli_import_main(int argc, char **argv)
{
	struct io_args a = { 0 };
	struct reference ref;
	struct cli cli;
	struct buf detail = BUF_INIT;
	struct imgimport_result res = { 0 };
	struct store_tag_change change;
	char *repo = NULL;
	int rc;
	if ((rc = parse_args(argc - 1, argv + 1, &a, 1, import_usage)))
		return rc == 3 ? 0 : rc;
	if ((rc = parse_image(a.image, 0, &repo, &ref)))
		return rc;
	if (cli_open(&cli, a.config, a.root)) {
		free(repo);
		return 1;
	}
	struct guard_ctx g = { &cli.reg.snap->cfg, repo, -1 };
	struct store_actor actor = { .name = "cli", .how = "import", .guard = immutable_guard, .guard_ctx = &g, .change = &change };
	struct imgimport_opts o = { repo, ref.tag, a.ref, cli.reg.snap->cfg.manifest_max, &actor };
	rc = store_import(cli.reg.store, a.file, &o, &res, &detail);
	if (rc == E_TAG_IMMUTABLE) {
		fprintf(stderr, "error: %s:%s is immutable (rule %d of immutable_tags): it cannot be moved\n", repo,
			ref.tag, g.rule + 1);
	} else if (rc) {
		fprintf(stderr, "error: %s\n", detail.len ? detail.buf : err_desc(rc)->message);
	} else {
		print_import(stdout, repo, ref.tag, a.file, &res, &change);
		audit(cli.reg.store, "import", repo, ref.tag, &res.top, res.format);
	}
	if (rc)
		fprintf(stderr, "import failed: %s:%s was not changed\n", repo, ref.tag);
	imgimport_result_release(&res);
	cli_close(&cli);
	buf_release(&detail);
	free(repo);
	return rc ? 1 : 0;
}

/* Opens the file to write: a temporary beside it, renamed over it once complete. */
static int open_output(const char *file, struct buf *tmp, int *fd)
{
	mode_t mask = umask(0);
	umask(mask);
	buf_addf(tmp, "%s.tmp-XXXXXX", file);
	*fd = mkostemp(tmp->buf, O_CLOEXEC);
	if (*fd < 0 || fchmod(*fd, 0666 & ~mask) < 0) {
		fprintf(stderr, "error: cannot create \"%s\": %s\n", tmp->buf, strerror(errno));
		if (*fd >= 0) {
			close(*fd);
			unlink(tmp->buf);
		}
		return 1;
	}
	return 0;
}

/* Makes the finished temporary file durable and moves it into place. */
static int finish_output(const char *file, const char *tmp, int fd)
{
	char *copy = xstrdup(file);
	int dfd, rc = 0;
	if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, file) < 0) {
		fprintf(stderr, "error: cannot write \"%s\": %s\n", file, strerror(errno));
		unlink(tmp);
		rc = 1;
	} else if ((dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(copy);
	return rc;
}

static void print_export(FILE *out, const char *image, const char *file, const struct imgexport_result *r)
{
	char ds[DIGEST_STR_MAX];
	fprintf(out, "%s -> %s (%s)\n", image, digest_str(&r->top, ds), r->top_media_type);
	for (size_t i = 0; i < r->nblobs; i++)
		fprintf(out, "  %-8s %s %12lld\n", r->blobs[i].role, digest_str(&r->blobs[i].digest, ds),
			(long long)r->blobs[i].size);
	fprintf(out, "wrote OCI layout archive \"%s\": %zu blobs, %lld bytes\n", file, r->nblobs,
		(long long)r->archive_bytes);
}

int cli_export_main(int argc, char **argv)
{
	struct io_args a = { 0 };
	struct reference ref;
	struct cli cli;
	struct buf detail = BUF_INIT, tmp = BUF_INIT;
	struct imgexport_result res = { 0 };
	char *repo = NULL;
	int fd = STDOUT_FILENO, to_stdout, rc;
	if ((rc = parse_args(argc - 1, argv + 1, &a, 0, export_usage)))
		return rc == 3 ? 0 : rc;
	if ((rc = parse_image(a.image, 1, &repo, &ref)))
		return rc;
	to_stdout = !strcmp(a.file, "-");
	if (to_stdout && isatty(STDOUT_FILENO)) {
		fprintf(stderr, "error: refusing to write a tar archive to a terminal\n");
		free(repo);
		return 2;
	}
	if (cli_open(&cli, a.config, a.root)) {
		free(repo);
		return 1;
	}
	if (!to_stdout && open_output(a.file, &tmp, &fd)) {
		rc = 1;
		goto out;
	}
	rc = store_export(cli.reg.store, repo, &ref, fd, &res, &detail);
	if (rc) {
		fprintf(stderr, "error: %s\n", detail.len ? detail.buf : err_desc(rc)->message);
		if (!to_stdout) {
			close(fd);
			unlink(tmp.buf);
		}
		rc = 1;
		goto out;
	}
	if (!to_stdout && (rc = finish_output(a.file, tmp.buf, fd)))
		goto out;
	print_export(to_stdout ? stderr : stdout, a.image, a.file, &res);
	audit(cli.reg.store, "export", repo, ref.is_digest ? "" : ref.tag, &res.top, "oci-archive");
out:
	imgexport_result_release(&res);
	cli_close(&cli);
	buf_release(&detail);
	buf_release(&tmp);
	free(repo);
	return rc;
}
