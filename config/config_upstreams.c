/*
 * config_upstreams: the "upstreams" list (registries berth caches under a
 * repository prefix): reading and checking each entry and the rules across
 * entries, credentials from files or the environment, routing a local name
 * to its upstream, the description `config check` prints and what a reload
 * keeps.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config_walk.h"
#include "err.h"
#include "names.h"
#include "xalloc.h"

#define UPSTREAM_NAME_MAX 32
#define USERNAME_MAX 255
#define SYNC_MAX 64

static int set_why(const char **why, const char *msg)
{
	if (why)
		*why = msg;
	return -1;
}

int config_upstream_name_check(const char *s, const char **why)
{
	size_t len = strlen(s);
	if (!len || len > UPSTREAM_NAME_MAX || !(islower((unsigned char)*s) || isdigit((unsigned char)*s)))
		return set_why(why, "expected 1 to 32 of [a-z0-9-], starting with a letter or digit");
	for (const char *p = s; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
			return set_why(why, "expected 1 to 32 of [a-z0-9-], starting with a letter or digit");
	return 0;
}

int config_size_parse(const char *s, unsigned long long *bytes, const char **why)
{
	static const struct { const char *unit; unsigned long long mult; } units[] = {
		{ "", 1 }, { "B", 1 }, { "KB", 1000ULL }, { "MB", 1000000ULL }, { "GB", 1000000000ULL },
		{ "TB", 1000000000000ULL }, { "KiB", 1ULL << 10 }, { "MiB", 1ULL << 20 }, { "GiB", 1ULL << 30 },
		{ "TiB", 1ULL << 40 },
	};
	static const char msg[] = "expected a size like \"50GiB\" (digits and one of B, KB, MB, GB, TB, KiB, MiB, "
		"GiB, TiB)";
	unsigned long long v = 0;
	const char *p = s;
	if (!isdigit((unsigned char)*p))
		return set_why(why, msg);
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (1ULL << 50))
			return set_why(why, "size too large");
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit))
			continue;
		/* 1 PiB is far past any disk a cache sits on; larger is a typo */
		if (v > (1ULL << 50) / units[i].mult)
			return set_why(why, "size too large (at most 1024TiB)");
		*bytes = v * units[i].mult;
		return 0;
	}
	return set_why(why, msg);
}

/* "hub/", "mirror/quay": repository name components; stored ending with '/'. */
static int check_prefix(const char *s, const char **why)
{
	size_t len = strlen(s);
	if (len && s[len - 1] == '/')
		len--;
	if (!len || name_check(s, len) || len > 128)
		return set_why(why, "expected a repository name prefix like \"hub/\" (lowercase name components "
			"joined by '/', at most 128 characters)");
	return 0;
}

/* Basic credentials put the username before a ':'; printable ASCII keeps it loggable. */
static int check_username(const char *s, const char **why)
{
	if (strlen(s) > USERNAME_MAX)
		return set_why(why, "too long (at most 255 characters)");
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == ':')
			return set_why(why, "expected printable ASCII without spaces or ':'");
	return 0;
}

static void strv_free(struct config_strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void upstream_release(struct config_upstream *u)
{
	free(u->name);
	free(u->url);
	free(u->prefix);
	free(u->username);
	free(u->ca_file);
	config_secret_release(&u->password);
	config_secret_release(&u->token);
	for (size_t i = 0; i < u->n_sync; i++) {
		strv_free(&u->sync[i].repositories);
		strv_free(&u->sync[i].tags);
	}
	free(u->sync);
	memset(u, 0, sizeof(*u));
}

void config_upstreams_release(struct config *c)
{
	for (size_t i = 0; i < c->n_upstreams; i++)
		upstream_release(&c->upstreams[i]);
	free(c->upstreams);
	c->upstreams = NULL;
	c->n_upstreams = 0;
}

/* A string value passing check (may be NULL) into *field. */
static int read_str(struct config_walk *w, json_t *v, int (*check)(const char *, const char **), char **field)
{
	const char *why;
	if (!json_is_string(v) || !json_string_length(v))
		return config_walk_fail(w, "expected a non-empty string");
	if (check && check(json_string_value(v), &why))
		return config_walk_fail(w, "%s", why);
	free(*field);
	*field = xstrdup(json_string_value(v));
	return 0;
}

static int read_duration(struct config_walk *w, json_t *v, unsigned max, const char *max_text, unsigned *out)
{
	const char *why;
	unsigned secs;
	if (!json_is_string(v))
		return config_walk_fail(w, "expected a duration string like \"5m\"");
	if (config_duration_parse(json_string_value(v), &secs, &why))
		return config_walk_fail(w, "%s", why);
	if (secs > max)
		return config_walk_fail(w, "\"%s\" is out of range (0s to %s)", json_string_value(v), max_text);
	*out = secs;
	return 0;
}

static int sync_key(struct config_walk *w, const char *key, json_t *item, void *arg)
{
	struct config_upstream_sync *s = arg;
	if (!strcmp(key, "repositories"))
		return config_walk_strv(w, item, config_glob_check, "repository globs", &s->repositories);
	if (!strcmp(key, "tags"))
		return config_walk_strv(w, item, config_tag_glob_check, "tag globs", &s->tags);
	if (!strcmp(key, "every"))
		return read_duration(w, item, 365 * 86400, "365d", &s->every_s);
	return config_walk_fail(w, "unknown key (expected one of: repositories, tags, every)");
}

static int read_sync(struct config_walk *w, json_t *v, struct config_upstream *u)
{
	size_t i;
	json_t *item;
	if (!json_is_array(v))
		return config_walk_fail(w, "expected an array of objects");
	if (json_array_size(v) > SYNC_MAX)
		return config_walk_fail(w, "too many entries (at most %d)", SYNC_MAX);
	u->sync = xcalloc(json_array_size(v) + 1, sizeof(*u->sync));
	json_array_foreach(v, i, item) {
		size_t old = config_walk_push_index(w, i);
		struct config_upstream_sync *s = &u->sync[u->n_sync++];
		int rc = config_walk_object(w, item, "an object", sync_key, s);
		if (!rc && !s->repositories.n)
			rc = config_walk_fail(w, "\"repositories\" is required (a non-empty list)");
		if (!rc && s->every_s && s->every_s < 60)
			rc = config_walk_fail(w, "\"every\" must be at least 1m (or 0s: only when run by hand)");
		config_walk_pop(w, old);
		if (rc)
			return rc;
	}
	return 0;
}

static int upstream_key(struct config_walk *w, const char *key, json_t *item, void *arg)
{
	struct config_upstream *u = arg;
	const char *why;
	if (!strcmp(key, "name"))
		return read_str(w, item, config_upstream_name_check, &u->name);
	if (!strcmp(key, "url"))
		return read_str(w, item, config_url_check, &u->url);
	if (!strcmp(key, "prefix"))
		return read_str(w, item, check_prefix, &u->prefix);
	if (!strcmp(key, "default") || !strcmp(key, "allow_push")) {
		if (!json_is_boolean(item))
			return config_walk_fail(w, "expected true or false");
		*(key[0] == 'd' ? &u->is_default : &u->allow_push) = json_is_true(item);
		return 0;
	}
	if (!strcmp(key, "username"))
		return read_str(w, item, check_username, &u->username);
	if (!strcmp(key, "password_file"))
		return config_walk_secret_file(w, item, &u->password, 0);
	if (!strcmp(key, "token_file"))
		return config_walk_secret_file(w, item, &u->token, 1);
	if (!strcmp(key, "ca_file"))
		return config_walk_ca_file(w, item, &u->ca_file);
	if (!strcmp(key, "freshness"))
		return read_duration(w, item, 30 * 86400, "30d", &u->freshness_s);
	if (!strcmp(key, "ttl"))
		return read_duration(w, item, 3650 * 86400, "3650d", &u->ttl_s);
	if (!strcmp(key, "max_size")) {
		if (!json_is_string(item))
			return config_walk_fail(w, "expected a size string like \"50GiB\"");
		if (config_size_parse(json_string_value(item), &u->max_size, &why))
			return config_walk_fail(w, "%s", why);
		return 0;
	}
	if (!strcmp(key, "sync"))
		return read_sync(w, item, u);
	return config_walk_fail(w, "unknown key (expected one of: name, url, prefix, default, allow_push, username, "
		"password_file, token_file, ca_file, freshness, ttl, max_size, sync)");
}

/* Completes one entry: required keys, normal forms, credential shape. */
static int upstream_finish(struct config_walk *w, struct config_upstream *u)
{
	size_t len;
	if (!u->name)
		return config_walk_fail(w, "\"name\" is required");
	if (!u->url)
		return config_walk_fail(w, "\"url\" is required");
	if (!u->prefix)
		return config_walk_fail(w, "\"prefix\" is required (the local repositories it serves, like \"%s/\")",
			u->name);
	len = strlen(u->url);
	while (len > 8 && u->url[len - 1] == '/')
		u->url[--len] = '\0';
	len = strlen(u->prefix);
	if (u->prefix[len - 1] != '/') {
		u->prefix = xrealloc(u->prefix, len + 2);
		memcpy(u->prefix + len, "/", 2);
	}
	if (u->token.from != CONFIG_SECRET_UNSET && u->username)
		return config_walk_fail(w, "\"token_file\" and \"username\" exclude each other (a token is sent as it is; "
			"a username goes with a password)");
	if (u->password.from != CONFIG_SECRET_UNSET && !u->username)
		return config_walk_fail(w, "\"password_file\" needs \"username\"");
	return 0;
}

/* "a/" and "a/b/" overlap: a repository under both would have two upstreams. */
static int prefixes_overlap(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	return !strncmp(a, b, la < lb ? la : lb);
}

/* The rules across entries: unique names, prefixes that do not overlap, one default at most. */
static int upstreams_check(struct config_walk *w, const struct config *c)
{
	for (size_t i = 0; i < c->n_upstreams; i++) {
		const struct config_upstream *u = &c->upstreams[i];
		for (size_t j = 0; j < i; j++) {
			const struct config_upstream *o = &c->upstreams[j];
			size_t old = config_walk_push_index(w, i);
			int rc = 0;
			if (!strcmp(u->name, o->name))
				rc = config_walk_fail(w, "the name \"%s\" is also upstreams[%zu]'s", u->name, j);
			else if (prefixes_overlap(u->prefix, o->prefix))
				rc = config_walk_fail(w, "the prefix \"%s\" overlaps upstreams[%zu]'s \"%s\"", u->prefix, j,
					o->prefix);
			else if (u->is_default && o->is_default)
				rc = config_walk_fail(w, "only one upstream may be the default (upstreams[%zu] is)", j);
			config_walk_pop(w, old);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int config_walk_upstreams(struct config_walk *w, json_t *v, struct config *c)
{
	size_t i;
	json_t *item;
	config_upstreams_release(c);
	if (!json_is_array(v))
		return config_walk_fail(w, "expected an array of objects");
	if (json_array_size(v) > CONFIG_UPSTREAMS_MAX)
		return config_walk_fail(w, "too many upstreams (at most %d)", CONFIG_UPSTREAMS_MAX);
	c->upstreams = xcalloc(json_array_size(v) + 1, sizeof(*c->upstreams));
	json_array_foreach(v, i, item) {
		size_t old = config_walk_push_index(w, i);
		struct config_upstream *u = &c->upstreams[c->n_upstreams++];
		int rc;
		u->freshness_s = CONFIG_DEFAULT_FRESHNESS;
		rc = config_walk_object(w, item, "an object", upstream_key, u);
		if (!rc)
			rc = upstream_finish(w, u);
		config_walk_pop(w, old);
		if (rc)
			return rc;
	}
	return upstreams_check(w, c);
}

/* BERTH_UPSTREAM_<NAME>_<WHAT>: the name upper-cased, '-' as '_'. */
static void env_name(const struct config_upstream *u, const char *what, struct buf *out)
{
	buf_adds(out, "BERTH_UPSTREAM_");
	for (const char *p = u->name; *p; p++)
		buf_addch(out, *p == '-' ? '_' : (char)toupper((unsigned char)*p));
	buf_addf(out, "_%s", what);
}

int config_upstreams_env(struct config *c, struct buf *err)
{
	struct buf var = BUF_INIT;
	int rc = 0;
	for (size_t i = 0; !rc && i < c->n_upstreams; i++) {
		struct config_upstream *u = &c->upstreams[i];
		buf_reset(&var);
		if (u->username) {
			env_name(u, "PASSWORD", &var);
			rc = config_secret_from_env(&u->password, var.buf, 0, err);
			if (!rc && !u->password.value) {
				buf_addf(err, "upstreams.%s: \"username\" is set but there is no password: set "
					"\"password_file\" or %s", u->name, var.buf);
				rc = E_CONFIG;
			}
		} else if (u->token.from == CONFIG_SECRET_UNSET) {
			env_name(u, "TOKEN", &var);
			rc = config_secret_from_env(&u->token, var.buf, 1, err);
		}
	}
	buf_release(&var);
	return rc;
}

const struct config_upstream *config_upstream_for(const struct config *c, const char *name)
{
	const struct config_upstream *def = NULL;
	for (size_t i = 0; i < c->n_upstreams; i++) {
		const struct config_upstream *u = &c->upstreams[i];
		if (!strncmp(name, u->prefix, strlen(u->prefix)))
			return u;
		if (u->is_default)
			def = u;
	}
	return def;
}

static void describe_secs(struct buf *out, unsigned s)
{
	if (s && s % 86400 == 0)
		buf_addf(out, "%ud", s / 86400);
	else if (s && s % 3600 == 0)
		buf_addf(out, "%uh", s / 3600);
	else if (s && s % 60 == 0)
		buf_addf(out, "%um", s / 60);
	else
		buf_addf(out, "%us", s);
}

void config_describe_upstreams(const struct config *c, struct buf *out)
{
	struct buf var = BUF_INIT;
	for (size_t i = 0; i < c->n_upstreams; i++) {
		const struct config_upstream *u = &c->upstreams[i];
		const char *n = u->name;
		buf_addf(out, "upstreams.%s.url: %s\nupstreams.%s.prefix: \"%s\"\nupstreams.%s.default: %s\n"
			 "upstreams.%s.allow_push: %s\n", n, u->url, n, u->prefix, n, u->is_default ? "true" : "false", n,
			 u->allow_push ? "true" : "false");
		buf_reset(&var);
		if (u->username) {
			env_name(u, "PASSWORD", &var);
			buf_addf(out, "upstreams.%s.username: %s\nupstreams.%s.password: ", n, u->username, n);
			config_secret_describe(&u->password, var.buf, out);
		} else {
			env_name(u, "TOKEN", &var);
			buf_addf(out, "upstreams.%s.token: ", n);
			if (u->token.from == CONFIG_SECRET_UNSET)
				buf_adds(out, "(not set: anonymous)");
			else
				config_secret_describe(&u->token, var.buf, out);
		}
		buf_addf(out, "\nupstreams.%s.ca_file: %s\nupstreams.%s.freshness: ", n,
			 u->ca_file ? u->ca_file : "(the system's)", n);
		describe_secs(out, u->freshness_s);
		buf_addf(out, "\nupstreams.%s.ttl: ", n);
		if (u->ttl_s)
			describe_secs(out, u->ttl_s);
		else
			buf_adds(out, "(none)");
		buf_addf(out, "\nupstreams.%s.max_size: ", n);
		if (u->max_size)
			buf_addf(out, "%llu bytes", u->max_size);
		else
			buf_adds(out, "(no cap)");
		buf_addf(out, "\nupstreams.%s.sync: %zu rule%s\n", n, u->n_sync, u->n_sync == 1 ? "" : "s");
	}
	buf_release(&var);
}

static char *dup_opt(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void strv_copy(struct config_strv *dst, const struct config_strv *src)
{
	dst->v = xcalloc(src->n + 1, sizeof(char *));
	for (dst->n = 0; dst->n < src->n; dst->n++)
		dst->v[dst->n] = xstrdup(src->v[dst->n]);
}

static void upstream_copy(struct config_upstream *dst, const struct config_upstream *src)
{
	*dst = *src;
	dst->name = dup_opt(src->name);
	dst->url = dup_opt(src->url);
	dst->prefix = dup_opt(src->prefix);
	dst->username = dup_opt(src->username);
	dst->ca_file = dup_opt(src->ca_file);
	memset(&dst->password, 0, sizeof(dst->password));
	memset(&dst->token, 0, sizeof(dst->token));
	config_secret_copy(&dst->password, &src->password);
	config_secret_copy(&dst->token, &src->token);
	dst->sync = xcalloc(src->n_sync + 1, sizeof(*dst->sync));
	for (size_t i = 0; i < src->n_sync; i++) {
		strv_copy(&dst->sync[i].repositories, &src->sync[i].repositories);
		strv_copy(&dst->sync[i].tags, &src->sync[i].tags);
		dst->sync[i].every_s = src->sync[i].every_s;
	}
}

static int str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static int secret_eq(const struct config_secret *a, const struct config_secret *b)
{
	return a->from == b->from && str_eq(a->file, b->file) && str_eq(a->value, b->value);
}

static int strv_eq(const struct config_strv *a, const struct config_strv *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return 0;
	return 1;
}

static int upstream_eq(const struct config_upstream *a, const struct config_upstream *b)
{
	if (!str_eq(a->name, b->name) || !str_eq(a->url, b->url) || !str_eq(a->prefix, b->prefix) ||
	    a->is_default != b->is_default || a->allow_push != b->allow_push || !str_eq(a->username, b->username) ||
	    !secret_eq(&a->password, &b->password) || !secret_eq(&a->token, &b->token) ||
	    !str_eq(a->ca_file, b->ca_file) || a->freshness_s != b->freshness_s || a->ttl_s != b->ttl_s ||
	    a->max_size != b->max_size || a->n_sync != b->n_sync)
		return 0;
	for (size_t i = 0; i < a->n_sync; i++)
		if (!strv_eq(&a->sync[i].repositories, &b->sync[i].repositories) ||
		    !strv_eq(&a->sync[i].tags, &b->sync[i].tags) || a->sync[i].every_s != b->sync[i].every_s)
			return 0;
	return 1;
}

void config_keep_upstreams(struct config *next, const struct config *cur, struct buf *changed)
{
	int same = next->n_upstreams == cur->n_upstreams;
	for (size_t i = 0; same && i < cur->n_upstreams; i++)
		same = upstream_eq(&next->upstreams[i], &cur->upstreams[i]);
	if (same)
		return;
	buf_adds(changed, "upstreams\n");
	config_upstreams_release(next);
	next->upstreams = xcalloc(cur->n_upstreams + 1, sizeof(*next->upstreams));
	for (size_t i = 0; i < cur->n_upstreams; i++)
		upstream_copy(&next->upstreams[i], &cur->upstreams[i]);
	next->n_upstreams = cur->n_upstreams;
}
