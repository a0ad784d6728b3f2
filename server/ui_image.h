/*
 * ui_image: one image as the web interface shows it (ui_image_load.c):
 * its manifest's bytes and parsed document, its image config when it has
 * one, and its size; and what two images differ in (ui_compare.c). The
 * image page, the compare page, the rollback preview and their JSON views
 * all read images through this, so they agree on every number.
 *
 * Work is bounded: manifests are at most manifest_max bytes; a config is
 * read only up to UI_CONFIG_MAX; every list a page renders stops at
 * UI_LIST_CAP rows (and says so).
 *
 * A struct ui_image owns everything it holds until ui_image_release(); the
 * json_t pointers it hands out borrow from it. Not shared between threads.
 */
#ifndef BERTH_UI_IMAGE_H
#define BERTH_UI_IMAGE_H

#include <jansson.h>
#include <stdint.h>

#include "buf.h"
#include "req.h"
#include "store.h"

/* The largest image config read (bytes); larger ones are not shown. */
#define UI_CONFIG_MAX (4 << 20)
/* Rows of one list (history steps, env, labels, ports, referrers, tags, layers) rendered at most. */
#define UI_LIST_CAP 500

struct ui_image {
	char digest[DIGEST_STR_MAX];
	char *media_type;
	char *artifact_type; /* may be NULL */
	int64_t size;        /* of the manifest */
	struct buf raw;      /* the manifest's bytes */
	json_t *doc;         /* the manifest, parsed */
	int is_index;
	json_t *config;         /* the image config ("config" member of it: config->config), NULL when none */
	const char *config_why; /* why there is no config to show (NULL: an image config was read) */
	int64_t total;          /* manifest, config and layers (an index: its images' too), each as listed */
};

/*
 * Loads ref of repo into im (release it in every case): the manifest, and
 * for an image manifest whose config is an image config, that config.
 * E_MANIFEST_UNKNOWN, E_NAME_UNKNOWN, E_IO; detail (may be NULL) says why.
 */
int ui_image_load(struct store *st, const char *repo, const struct reference *ref, size_t manifest_max,
		  struct ui_image *im, struct buf *detail);
void ui_image_release(struct ui_image *im);

/* The layer descriptors (an index: the manifest descriptors), an array; NULL when none (json_array_* take it). */
json_t *ui_image_parts(const struct ui_image *im);
/* The config descriptor, or NULL. */
json_t *ui_image_config_desc(const struct ui_image *im);
/* "os/arch[/variant]" of an index entry's platform into out; "" when it has none. */
void ui_platform(json_t *desc, struct buf *out);
/* A string member of obj, or NULL. */
const char *ui_jstr(json_t *obj, const char *key);
/* An integer member of obj, or -1. */
int64_t ui_jint(json_t *obj, const char *key);

/* Parses a reference from a page's path or query: 0, or E_MANIFEST_UNKNOWN for something that names nothing. */
int ui_ref_parse(const char *s, struct reference *ref);

/* Names of the tags pointing at an image (at most UI_LIST_CAP; more says there are further ones). */
struct ui_names {
	char **v;
	size_t n, alloc;
	int more;
};
int ui_image_tags(struct store *st, const char *repo, const struct ui_image *im, struct ui_names *out);
void ui_names_release(struct ui_names *l);

/* Manifests whose subject is the image: signatures, SBOMs, attestations (at most UI_LIST_CAP). */
struct ui_referrer {
	char *digest, *media_type, *artifact_type; /* artifact_type may be NULL */
	json_t *annotations;                       /* may be NULL */
	int64_t size;
};
struct ui_referrers {
	struct ui_referrer *v;
	size_t n, alloc;
	int more;
};
int ui_image_referrers(struct store *st, const char *repo, const struct ui_image *im, struct ui_referrers *out);
void ui_referrers_release(struct ui_referrers *l);

/* ---- comparing (ui_compare.c) ---- */

/* One difference of two configs: field ("env", "labels", "ports", "entrypoint", "cmd", ...), key, values. */
struct ui_config_diff {
	const char *field;
	const char *key; /* the variable, label or port; NULL for whole values */
	const char *a;   /* NULL: absent in a */
	const char *b;   /* NULL: absent in b */
};
/* One layer (an index: one image) of a comparison. */
struct ui_part {
	const char *digest;
	const char *label; /* an index's platform, else NULL */
	int64_t size;
};
/* What two images share and differ in; parts in manifest order, borrowing from the two images. */
struct ui_comparison {
	struct ui_part *shared, *added, *removed; /* added: in b only; removed: in a only */
	size_t nshared, nadded, nremoved;
	struct ui_config_diff *diffs;
	size_t ndiffs, ndiffs_alloc;
	char **owned; /* the texts of diffs that are not in either image */
	size_t nowned, nowned_alloc;
};
/* Compares a with b into c (release it); the images must outlive c. */
void ui_compare(const struct ui_image *a, const struct ui_image *b, struct ui_comparison *c);
void ui_comparison_release(struct ui_comparison *c);
/* The comparison as HTML into o: sizes, parts added, removed and shared, config differences; la, lb name a and b. */
void ui_compare_html(struct buf *o, const char *repo, const char *la, const char *lb, const struct ui_image *a,
		     const struct ui_image *b, const struct ui_comparison *c);
/* Loads ra and rb (tags or digests) of repo for r's caller into a and b (release both in every case). */
int ui_load_pair(struct req *r, const char *repo, const char *ra, const char *rb, struct ui_image *a,
		 struct ui_image *b);

#endif
