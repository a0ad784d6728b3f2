/* config_file: reads the JSON config file into a struct config, checking every key, type and value. */
#include "config.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_walk.h"
#include "err.h"
#include "xalloc.h"

int config_walk_fail(struct config_walk *w, const char *fmt, ...)
{
	va_list ap;
	buf_addf(w->err, "%s: \"%s\": ", w->file, w->path.buf);
	va_start(ap, fmt);
	buf_vaddf(w->err, fmt, ap);
	va_end(ap);
	return E_CONFIG;
}

/* Path push/pop: a push returns the length to restore. */
size_t config_walk_push_key(struct config_walk *w, const char *key)
{
	size_t old = w->path.len;
	if (old)
		buf_addch(&w->path, '.');
	buf_adds(&w->path, key);
	return old;
}

size_t config_walk_push_index(struct config_walk *w, size_t i)
{
	size_t old = w->path.len;
	buf_addf(&w->path, "[%zu]", i);
	return old;
}

void config_walk_pop(struct config_walk *w, size_t old)
{
	buf_setlen(&w->path, old);
}

/*
 * "_comment" keys are accepted and ignored in every object so that the
 * example file can explain itself; no real key starts with '_' and no user
 * or group name can.
 */
int config_walk_is_comment(const char *key)
{
	return !strcmp(key, "_comment");
}

int config_walk_object(struct config_walk *w, json_t *v, const char *what, config_walk_key_fn fn, void *arg)
{
	const char *key;
	json_t *item;
	int rc = 0;
	if (!json_is_object(v))
		return config_walk_fail(w, "expected %s", what);
	json_object_foreach(v, key, item) {
		size_t old;
		if (config_walk_is_comment(key))
			continue;
		old = config_walk_push_key(w, key);
		rc = fn(w, key, item, arg);
		config_walk_pop(w, old);
		if (rc)
			break;
	}
	return rc;
}

/* Reads an array of strings, each passing check (when given), into an owned list. */
int config_walk_strv(struct config_walk *w, json_t *v, int (*check)(const char *, const char **),
		     const char *what, struct config_strv *out)
{
	size_t i;
	json_t *item;
	const char *why;
	int rc = 0;
	if (!json_is_array(v))
		return config_walk_fail(w, "expected an array of %s", what);
	out->v = xcalloc(json_array_size(v), sizeof(char *));
	json_array_foreach(v, i, item) {
		size_t old = config_walk_push_index(w, i);
		if (!json_is_string(item))
			rc = config_walk_fail(w, "expected a string");
		else if (check && check(json_string_value(item), &why))
			rc = config_walk_fail(w, "\"%s\": %s", json_string_value(item), why);
		config_walk_pop(w, old);
		if (rc)
			return rc;
		out->v[out->n++] = xstrdup(json_string_value(item));
	}
	return 0;
}

/*
 * A table entry describes one key of an object: how to read it and where
 * it goes. Scalars are stored at an offset into struct config; anything
 * with structure has its own reader (fn).
 */
enum kind { K_STR, K_UINT, K_SIZE, K_LONG, K_BOOL, K_DURATION, K_LOGLEVEL, K_OBJECT, K_FN };

struct field {
	const char *key;
	enum kind kind;
	size_t off;
	long long min, max;                       /* K_UINT, K_SIZE, K_LONG, K_DURATION */
	int (*check)(const char *s, const char **why); /* K_STR, optional */
	const struct field *sub;                  /* K_OBJECT */
	int (*fn)(struct config_walk *w, json_t *v, struct config *c); /* K_FN */
};

#define FIELD_PTR(c, f, type) ((type *)(void *)((char *)(c) + (f)->off))

static int walk_object(struct config_walk *w, json_t *obj, const struct field *fields, struct config *c);

/* Bounds are shown in the largest whole unit, with "24h" rather than "1d". */
static void describe_secs(char *out, size_t len, long long s)
{
	if (s > 86400 && s % 86400 == 0)
		snprintf(out, len, "%lldd", s / 86400);
	else if (s % 3600 == 0 && s)
		snprintf(out, len, "%lldh", s / 3600);
	else if (s % 60 == 0 && s)
		snprintf(out, len, "%lldm", s / 60);
	else
		snprintf(out, len, "%llds", s);
}

static int read_integer(struct config_walk *w, json_t *v, const struct field *f, long long *out)
{
	long long n;
	if (!json_is_integer(v))
		return config_walk_fail(w, "expected an integer from %lld to %lld", f->min, f->max);
	n = json_integer_value(v);
	if (n < f->min || n > f->max)
		return config_walk_fail(w, "%lld is out of range (%lld to %lld)", n, f->min, f->max);
	*out = n;
	return 0;
}

static int read_duration(struct config_walk *w, json_t *v, const struct field *f, unsigned *out)
{
	const char *why;
	char lo[32], hi[32];
	unsigned secs;
	if (!json_is_string(v))
		return config_walk_fail(w, "expected a duration string like \"5m\"");
	if (config_duration_parse(json_string_value(v), &secs, &why))
		return config_walk_fail(w, "%s", why);
	if (secs < f->min || secs > f->max) {
		describe_secs(lo, sizeof(lo), f->min);
		describe_secs(hi, sizeof(hi), f->max);
		return config_walk_fail(w, "\"%s\" is out of range (%s to %s)", json_string_value(v), lo, hi);
	}
	*out = secs;
	return 0;
}

static int read_field(struct config_walk *w, json_t *v, const struct field *f, struct config *c)
{
	const char *why;
	long long n = 0;
	int rc;
	switch (f->kind) {
	case K_STR:
		if (!json_is_string(v) || !json_string_length(v))
			return config_walk_fail(w, "expected a non-empty string");
		if (f->check && f->check(json_string_value(v), &why))
			return config_walk_fail(w, "%s", why);
		config_set_str(FIELD_PTR(c, f, char *), json_string_value(v));
		return 0;
	case K_UINT:
		if ((rc = read_integer(w, v, f, &n)))
			return rc;
		*FIELD_PTR(c, f, unsigned) = (unsigned)n;
		return 0;
	case K_SIZE:
		if ((rc = read_integer(w, v, f, &n)))
			return rc;
		*FIELD_PTR(c, f, size_t) = (size_t)n;
		return 0;
	case K_LONG:
		if ((rc = read_integer(w, v, f, &n)))
			return rc;
		*FIELD_PTR(c, f, long) = (long)n;
		return 0;
	case K_BOOL:
		if (!json_is_boolean(v))
			return config_walk_fail(w, "expected true or false");
		*FIELD_PTR(c, f, int) = json_is_true(v);
		return 0;
	case K_DURATION:
		return read_duration(w, v, f, FIELD_PTR(c, f, unsigned));
	case K_LOGLEVEL:
		if (!json_is_string(v) || log_level_parse(json_string_value(v), FIELD_PTR(c, f, enum log_level)))
			return config_walk_fail(w, "expected one of \"error\", \"warn\", \"info\", \"debug\"");
		return 0;
	case K_OBJECT:
		return walk_object(w, v, f->sub, c);
	case K_FN:
		return f->fn(w, v, c);
	}
	return config_walk_fail(w, "internal error: unknown field kind");
}

static int unknown_key(struct config_walk *w, const struct field *fields)
{
	struct buf known = BUF_INIT;
	int rc;
	for (const struct field *f = fields; f->key; f++)
		buf_addf(&known, "%s%s", f == fields ? "" : ", ", f->key);
	rc = config_walk_fail(w, "unknown key (expected one of: %s)", known.buf);
	buf_release(&known);
	return rc;
}

/* An object read by walk_object(): its table and where the values go. */
struct fields_of {
	const struct field *fields;
	struct config *c;
};

static int read_key(struct config_walk *w, const char *key, json_t *v, void *arg)
{
	const struct fields_of *o = arg;
	const struct field *f = o->fields;
	while (f->key && strcmp(f->key, key))
		f++;
	return f->key ? read_field(w, v, f, o->c) : unknown_key(w, o->fields);
}

static int walk_object(struct config_walk *w, json_t *obj, const struct field *fields, struct config *c)
{
	struct fields_of o = { fields, c };
	return config_walk_object(w, obj, "an object", read_key, &o);
}

static int read_tls(struct config_walk *w, json_t *v, struct config *c);
static int read_proxies(struct config_walk *w, json_t *v, struct config *c);

static int check_listen(const char *s, const char **why)
{
	char host[256];
	unsigned port;
	if (config_listen_split(s, host, &port)) {
		*why = "expected host:port, like \"0.0.0.0:5000\" or \"[::]:5000\"";
		return -1;
	}
	return 0;
}

/* service and issuer are quoted inside WWW-Authenticate and JWT claims. */
static int check_token_name(const char *s, const char **why)
{
	size_t len = strlen(s);
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '"' || *p == '\\') {
			*why = "expected printable ASCII without spaces, quotes or backslashes";
			return -1;
		}
	}
	if (len > 255) {
		*why = "too long (at most 255 characters)";
		return -1;
	}
	return 0;
}

#define OFF(field) offsetof(struct config, field)

static const struct field token_fields[] = {
	{ .key = "service", .kind = K_STR, .off = OFF(token_service), .check = check_token_name },
	{ .key = "issuer", .kind = K_STR, .off = OFF(token_issuer), .check = check_token_name },
	{ .key = "ttl", .kind = K_DURATION, .off = OFF(token_ttl_s), .min = 30, .max = 86400 },
	{ .key = "key", .kind = K_STR, .off = OFF(token_key) },
	{ 0 },
};

static const struct field limits_fields[] = {
	{ .key = "manifest_max", .kind = K_SIZE, .off = OFF(manifest_max), .min = CONFIG_MANIFEST_MAX,
	  .max = 256 * 1024 * 1024 },
	{ .key = "page_max", .kind = K_LONG, .off = OFF(page_max), .min = 1, .max = 100000 },
	{ .key = "max_connections", .kind = K_UINT, .off = OFF(max_connections), .min = 1, .max = 1000000 },
	{ .key = "idle_timeout", .kind = K_DURATION, .off = OFF(idle_timeout_s), .min = 1, .max = 86400 },
	{ .key = "max_connections_per_client", .kind = K_UINT, .off = OFF(max_connections_per_client), .min = 1,
	  .max = 1000000 },
	{ .key = "login_concurrency", .kind = K_UINT, .off = OFF(login_concurrency), .min = 1, .max = 1024 },
	{ .key = "login_failures_per_minute", .kind = K_UINT, .off = OFF(login_failures_per_minute),
	  .min = 0, .max = 1000000 },
	{ 0 },
};

/* A credential file: read now, so that a missing or exposed file stops the start, not the first push. */
int config_walk_secret_file(struct config_walk *w, json_t *v, struct config_secret *s, int token)
{
	struct buf why = BUF_INIT;
	int rc = 0;
	if (!json_is_string(v) || !json_string_length(v))
		return config_walk_fail(w, "expected a non-empty string (a file name)");
	if (config_secret_read(s, json_string_value(v), token, &why))
		rc = config_walk_fail(w, "%s", why.buf);
	buf_release(&why);
	return rc;
}

static int read_pg_password(struct config_walk *w, json_t *v, struct config *c)
{
	return config_walk_secret_file(w, v, &c->database.password, 0);
}

static int read_s3_access_key(struct config_walk *w, json_t *v, struct config *c)
{
	return config_walk_secret_file(w, v, &c->s3.access_key, 1);
}

static int read_s3_secret_key(struct config_walk *w, json_t *v, struct config *c)
{
	return config_walk_secret_file(w, v, &c->s3.secret_key, 1);
}

/* null: the system's CAs, as when the key is left out. */
int config_walk_ca_file(struct config_walk *w, json_t *v, char **field)
{
	struct buf why = BUF_INIT;
	int rc = 0;
	if (json_is_null(v)) {
		free(*field);
		*field = NULL;
		return 0;
	}
	if (!json_is_string(v) || !json_string_length(v))
		return config_walk_fail(w, "expected a file name or null");
	if (config_file_readable(json_string_value(v), &why))
		rc = config_walk_fail(w, "%s", why.buf);
	else
		config_set_str(field, json_string_value(v));
	buf_release(&why);
	return rc;
}

static int read_s3_ca_file(struct config_walk *w, json_t *v, struct config *c)
{
	return config_walk_ca_file(w, v, &c->s3.ca_file);
}

/* "" means none; anything else is stored ending with '/', so that keys never run into the prefix. */
static int read_s3_prefix(struct config_walk *w, json_t *v, struct config *c)
{
	const char *why, *s = json_string_value(v);
	struct buf b = BUF_INIT;
	size_t len;
	if (!json_is_string(v))
		return config_walk_fail(w, "expected a string like \"registry/\" (or \"\" for none)");
	if (config_s3_prefix_check(s, &why))
		return config_walk_fail(w, "%s", why);
	free(c->s3.prefix);
	c->s3.prefix = NULL;
	if ((len = strlen(s))) {
		buf_addf(&b, "%s%s", s, s[len - 1] == '/' ? "" : "/");
		c->s3.prefix = buf_detach(&b, NULL);
	}
	return 0;
}

static int read_backend(struct config_walk *w, json_t *v, struct config *c)
{
	const char *s = json_string_value(v);
	if (s && !strcmp(s, "filesystem"))
		c->storage_backend = CONFIG_BACKEND_FILESYSTEM;
	else if (s && !strcmp(s, "s3"))
		c->storage_backend = CONFIG_BACKEND_S3;
	else
		return config_walk_fail(w, "expected \"filesystem\" or \"s3\"");
	return 0;
}

static const struct field s3_fields[] = {
	{ .key = "endpoint", .kind = K_STR, .off = OFF(s3.endpoint), .check = config_s3_endpoint_check },
	{ .key = "region", .kind = K_STR, .off = OFF(s3.region), .check = config_s3_region_check },
	{ .key = "bucket", .kind = K_STR, .off = OFF(s3.bucket), .check = config_s3_bucket_check },
	{ .key = "prefix", .kind = K_FN, .fn = read_s3_prefix },
	{ .key = "path_style", .kind = K_BOOL, .off = OFF(s3.path_style) },
	{ .key = "ca_file", .kind = K_FN, .fn = read_s3_ca_file },
	{ .key = "access_key_file", .kind = K_FN, .fn = read_s3_access_key },
	{ .key = "secret_key_file", .kind = K_FN, .fn = read_s3_secret_key },
	/* S3 caps presigned URLs at 7 days; under a minute a slow client would be refused its blob */
	{ .key = "redirect_expiry", .kind = K_DURATION, .off = OFF(s3.redirect_expiry_s), .min = 60,
	  .max = 7 * 86400 },
	{ 0 },
};

static int read_s3(struct config_walk *w, json_t *v, struct config *c)
{
	int rc = walk_object(w, v, s3_fields, c);
	size_t len;
	if (rc)
		return rc;
	c->s3.given = 1;
	if (!c->s3.endpoint)
		return config_walk_fail(w, "\"endpoint\" is required");
	if (!c->s3.bucket)
		return config_walk_fail(w, "\"bucket\" is required");
	/* one trailing '/' is accepted and dropped: the client appends the paths */
	len = strlen(c->s3.endpoint);
	if (c->s3.endpoint[len - 1] == '/')
		c->s3.endpoint[len - 1] = '\0';
	return 0;
}

static const struct field storage_fields[] = {
	{ .key = "delete", .kind = K_BOOL, .off = OFF(delete_enabled) },
	{ .key = "backend", .kind = K_FN, .fn = read_backend },
	{ .key = "redirect", .kind = K_BOOL, .off = OFF(storage_redirect) },
	{ .key = "s3", .kind = K_FN, .fn = read_s3 },
	{ 0 },
};

static const struct field database_fields[] = {
	{ .key = "url", .kind = K_STR, .off = OFF(database.url), .check = config_pg_url_check },
	{ .key = "password_file", .kind = K_FN, .fn = read_pg_password },
	{ 0 },
};

static int read_database(struct config_walk *w, json_t *v, struct config *c)
{
	int rc = walk_object(w, v, database_fields, c);
	if (!rc && !c->database.url)
		rc = config_walk_fail(w, "\"url\" is required (leave \"database\" out for SQLite under root)");
	return rc;
}

static const struct field gc_fields[] = {
	{ .key = "schedule", .kind = K_DURATION, .off = OFF(gc_interval_s), .min = 0, .max = 365 * 86400 },
	{ .key = "history_window", .kind = K_DURATION, .off = OFF(gc_history_s), .min = 0, .max = 3650 * 86400 },
	{ .key = "untagged_age", .kind = K_DURATION, .off = OFF(gc_untagged_s), .min = 0, .max = 3650 * 86400 },
	{ .key = "grace", .kind = K_DURATION, .off = OFF(gc_grace_s), .min = 60, .max = 30 * 86400 },
	{ .key = "upload_ttl", .kind = K_DURATION, .off = OFF(upload_ttl_s), .min = 60, .max = 365 * 86400 },
	{ 0 },
};

static int read_log_format(struct config_walk *w, json_t *v, struct config *c)
{
	if (!json_is_string(v) || log_format_parse(json_string_value(v), &c->log_format))
		return config_walk_fail(w, "expected one of \"auto\", \"json\", \"text\"");
	return 0;
}

static int read_metrics_access(struct config_walk *w, json_t *v, struct config *c)
{
	static const char *names[] = { [METRICS_AUTHENTICATED] = "authenticated", [METRICS_ANONYMOUS] = "anonymous",
				       [METRICS_OFF] = "off" };
	for (size_t i = 0; json_is_string(v) && i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(json_string_value(v), names[i])) {
			c->metrics_access = (enum config_metrics_access)i;
			return 0;
		}
	}
	return config_walk_fail(w, "expected one of \"authenticated\", \"anonymous\", \"off\"");
}

static const struct field metrics_fields[] = {
	{ .key = "access", .kind = K_FN, .fn = read_metrics_access },
	{ 0 },
};

static const struct field ui_fields[] = {
	{ .key = "enabled", .kind = K_BOOL, .off = OFF(ui_enabled) },
	{ .key = "session_ttl", .kind = K_DURATION, .off = OFF(ui_session_ttl_s), .min = 60, .max = 30 * 86400 },
	{ 0 },
};

static const struct field log_fields[] = {
	{ .key = "level", .kind = K_LOGLEVEL, .off = OFF(log_level) },
	{ .key = "format", .kind = K_FN, .fn = read_log_format },
	{ 0 },
};

static const struct field top_fields[] = {
	{ .key = "listen", .kind = K_STR, .off = OFF(listen), .check = check_listen },
	{ .key = "external_url", .kind = K_STR, .off = OFF(external_url), .check = config_url_check },
	{ .key = "root", .kind = K_STR, .off = OFF(root) },
	{ .key = "threads", .kind = K_UINT, .off = OFF(threads), .min = 0, .max = 1024 },
	{ .key = "reuse_port", .kind = K_BOOL, .off = OFF(reuse_port) },
	{ .key = "tls", .kind = K_FN, .fn = read_tls },
	{ .key = "trusted_proxies", .kind = K_FN, .fn = read_proxies },
	{ .key = "token", .kind = K_OBJECT, .sub = token_fields },
	{ .key = "users", .kind = K_FN, .fn = config_walk_users },
	{ .key = "groups", .kind = K_FN, .fn = config_walk_groups },
	{ .key = "access", .kind = K_FN, .fn = config_walk_access },
	{ .key = "limits", .kind = K_OBJECT, .sub = limits_fields },
	{ .key = "storage", .kind = K_OBJECT, .sub = storage_fields },
	{ .key = "database", .kind = K_FN, .fn = read_database },
	{ .key = "gc", .kind = K_OBJECT, .sub = gc_fields },
	{ .key = "immutable_tags", .kind = K_FN, .fn = config_walk_immutable },
	{ .key = "metrics", .kind = K_OBJECT, .sub = metrics_fields },
	{ .key = "log", .kind = K_OBJECT, .sub = log_fields },
	{ .key = "ui", .kind = K_OBJECT, .sub = ui_fields },
	{ .key = "upstreams", .kind = K_FN, .fn = config_walk_upstreams },
	{ 0 },
};

static const struct field tls_fields[] = {
	{ .key = "cert", .kind = K_STR, .off = OFF(tls_cert) },
	{ .key = "key", .kind = K_STR, .off = OFF(tls_key) },
	{ .key = "priorities", .kind = K_STR, .off = OFF(tls_priorities) },
	{ 0 },
};

static int read_tls(struct config_walk *w, json_t *v, struct config *c)
{
	int rc = walk_object(w, v, tls_fields, c);
	if (rc)
		return rc;
	/* Both or neither: half a TLS setup would silently serve plain HTTP. */
	if (!json_object_get(v, "cert") != !json_object_get(v, "key"))
		return config_walk_fail(w, "\"cert\" and \"key\" must be given together");
	return 0;
}

static int read_proxies(struct config_walk *w, json_t *v, struct config *c)
{
	struct config_strv list = { 0 };
	const char *why;
	int rc = config_walk_strv(w, v, NULL, "IP addresses or CIDR blocks", &list);
	free(c->trusted_proxies);
	c->trusted_proxies = xcalloc(list.n ? list.n : 1, sizeof(*c->trusted_proxies));
	c->n_trusted_proxies = 0;
	for (size_t i = 0; !rc && i < list.n; i++) {
		size_t old = config_walk_push_index(w, i);
		if (config_net_parse(list.v[i], &c->trusted_proxies[i], &why))
			rc = config_walk_fail(w, "\"%s\": %s", list.v[i], why);
		else
			c->n_trusted_proxies++;
		config_walk_pop(w, old);
	}
	for (size_t i = 0; i < list.n; i++)
		free(list.v[i]);
	free(list.v);
	return rc;
}

int config_load_file(struct config *c, const char *path, struct buf *err)
{
	struct config_walk w = { .file = path, .err = err, .path = BUF_INIT };
	json_error_t jerr;
	json_t *root;
	int rc;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (jerr.line > 0)
			buf_addf(err, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		else
			buf_addf(err, "%s: %s", path, jerr.text);
		return E_CONFIG;
	}
	config_set_str(&c->path, path);
	if (!json_is_object(root)) {
		buf_addf(err, "%s: expected a JSON object at the top level", path);
		rc = E_CONFIG;
		goto out;
	}
	if ((rc = walk_object(&w, root, top_fields, c)))
		goto out;
	if ((rc = config_walk_references(&w, c)))
		goto out;
	rc = config_cluster_check(&w, c);
out:
	json_decref(root);
	buf_release(&w.path);
	return rc;
}
