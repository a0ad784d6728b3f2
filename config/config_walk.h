/*
 * config_walk: private to config/: the JSON walk shared by config_file.c
 * (generic keys and scalar sections) and config_access.c (users, groups,
 * access rules). Not for use outside config/.
 *
 * A walk belongs to one config_load_file() call and one thread. Every
 * reader returns 0 or E_CONFIG, with one line appended to w->err naming the
 * file and the key path; anything read is stored in (and owned by) the
 * struct config, so config_release() cleans up after a failure too.
 */
#ifndef BERTH_CONFIG_WALK_H
#define BERTH_CONFIG_WALK_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "config.h"

/* The walk's state: where errors go and the path of the key being read. */
struct config_walk {
	const char *file;
	struct buf *err;
	struct buf path; /* e.g. "access[2].actions[0]" */
};

/* Appends "<file>: \"<key path>\": <message>" to w->err; returns E_CONFIG. */
int config_walk_fail(struct config_walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Path push/pop: a push returns the length to give back to config_walk_pop(). */
size_t config_walk_push_key(struct config_walk *w, const char *key);
size_t config_walk_push_index(struct config_walk *w, size_t i);
void config_walk_pop(struct config_walk *w, size_t old);
/* Returns 1 for keys ignored in every object ("_comment"). */
int config_walk_is_comment(const char *key);
/* Reads one key of an object for config_walk_object(); w->path already ends with the key. */
typedef int (*config_walk_key_fn)(struct config_walk *w, const char *key, json_t *item, void *arg);
/*
 * Calls fn for each key of the object v but comments, in file order, with
 * the key pushed onto w->path; stops at the first non-zero return and
 * returns it. When v is not an object, fails with "expected <what>".
 */
int config_walk_object(struct config_walk *w, json_t *v, const char *what, config_walk_key_fn fn, void *arg);
/* Reads an array of strings, each passing check (when not NULL), into out. */
int config_walk_strv(struct config_walk *w, json_t *v, int (*check)(const char *, const char **),
		     const char *what, struct config_strv *out);

/* A credential file's value into s (config_secret_read()); token as there. */
int config_walk_secret_file(struct config_walk *w, json_t *v, struct config_secret *s, int token);
/* A CA bundle: a readable file name into *field, or null (none). */
int config_walk_ca_file(struct config_walk *w, json_t *v, char **field);
/* Readers for "users", "groups" and "access"; each replaces the list c holds. */
int config_walk_users(struct config_walk *w, json_t *v, struct config *c);
int config_walk_groups(struct config_walk *w, json_t *v, struct config *c);
int config_walk_access(struct config_walk *w, json_t *v, struct config *c);
int config_walk_immutable(struct config_walk *w, json_t *v, struct config *c);
/* Checks that every user and group named anywhere exists; run after the whole file. */
int config_walk_references(struct config_walk *w, const struct config *c);

/* Settings of the cluster shape (config_cluster.c). */
/*
 * Reads the one-line credential in the file path into s (replacing what s
 * held): a regular file, not readable by every user, at most 4 KiB, one
 * trailing newline dropped. token: printable ASCII only (S3 keys). Returns
 * 0, or E_CONFIG with the problem, naming path but never the content, in why.
 */
int config_secret_read(struct config_secret *s, const char *path, int token, struct buf *why);
/*
 * The environment fallback of one secret: used only when s is still unset.
 * Returns 0, or E_CONFIG with the problem (naming var, never the value) in err.
 */
int config_secret_from_env(struct config_secret *s, const char *var, int token, struct buf *err);
/* Makes dst (released first) a copy of src. */
void config_secret_copy(struct config_secret *dst, const struct config_secret *src);
/* Zeroes the value, frees it and the file name, and leaves s unset. */
void config_secret_release(struct config_secret *s);
/* Checks that path is a regular file this process can read; 0, or E_CONFIG with the problem in why. */
int config_file_readable(const char *path, struct buf *why);
/* After the whole file: the checks that span storage keys. */
int config_cluster_check(struct config_walk *w, struct config *c);
/* After the environment: PGPASSWORD and AWS_* for what no file gave; both S3 keys must then be set. */
int config_cluster_env(struct config *c, struct buf *err);
/* Frees the database and storage.s3 settings (config_release()'s part). */
void config_cluster_release(struct config *c);

/* Upstreams (config_upstreams.c). */
/* Reads "upstreams", replacing the list c holds; checks names, prefixes and the default across entries. */
int config_walk_upstreams(struct config_walk *w, json_t *v, struct config *c);
/* After the environment: BERTH_UPSTREAM_<NAME>_PASSWORD / _TOKEN for what no file gave. */
int config_upstreams_env(struct config *c, struct buf *err);
/* Frees the upstreams (config_release()'s part). */
void config_upstreams_release(struct config *c);

#endif
