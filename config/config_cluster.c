/*
 * config_cluster: the cluster shape's settings (PostgreSQL, S3): credential
 * files, environment fallbacks, the checks that span keys, the description
 * `config check` prints and what a reload keeps.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_walk.h"
#include "err.h"
#include "xalloc.h"

#define SECRET_MAX 4096

void config_secret_release(struct config_secret *s)
{
	if (s->value)
		explicit_bzero(s->value, strlen(s->value));
	free(s->value);
	free(s->file);
	memset(s, 0, sizeof(*s));
}

void config_secret_copy(struct config_secret *dst, const struct config_secret *src)
{
	config_secret_release(dst);
	dst->value = src->value ? xstrdup(src->value) : NULL;
	dst->file = src->file ? xstrdup(src->file) : NULL;
	dst->from = src->from;
}

/* What is wrong with a secret's bytes, or NULL; token: an S3 key, sent in headers, so printable ASCII only. */
static const char *secret_content_problem(const char *v, size_t len, int token)
{
	if (!len)
		return "is empty";
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch == '\n' || ch == '\r')
			return "holds more than one line";
		if (!ch)
			return "holds a NUL byte";
		if (token && (ch <= ' ' || ch >= 0x7f))
			return "holds a space, a control character or a non-ASCII character";
	}
	return NULL;
}

/*
 * Opens path for reading if it is a regular file; the descriptor, or -1
 * with the problem naming path in why. O_NONBLOCK: a FIFO put there by
 * mistake must not hang the start; it is refused as not regular.
 */
static int open_regular(const char *path, struct stat *st, struct buf *why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		buf_addf(why, "cannot open \"%s\": %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) || !S_ISREG(st->st_mode)) {
		buf_addf(why, "\"%s\" is not a regular file", path);
		close(fd);
		return -1;
	}
	return fd;
}

int config_file_readable(const char *path, struct buf *why)
{
	struct stat st;
	int fd = open_regular(path, &st, why);
	if (fd < 0)
		return E_CONFIG;
	close(fd);
	return 0;
}

/* Reads up to SECRET_MAX + 1 bytes of an open regular file into data; the count, or -1 with errno. */
static ssize_t read_small(int fd, char *data)
{
	size_t len = 0;
	while (len <= SECRET_MAX) {
		ssize_t n = read(fd, data + len, SECRET_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (!n)
			break;
		len += (size_t)n;
	}
	return (ssize_t)len;
}

int config_secret_read(struct config_secret *s, const char *path, int token, struct buf *why)
{
	char data[SECRET_MAX + 1];
	const char *problem;
	struct stat st;
	ssize_t n = -1;
	size_t len;
	int rc = E_CONFIG;
	int fd = open_regular(path, &st, why);
	if (fd < 0)
		return E_CONFIG;
	/* a secret every local account can read is not one; the mode is the operator's fix */
	if (st.st_mode & S_IROTH) {
		buf_addf(why, "\"%s\" is readable by every user (mode %04o): remove that (chmod o-rwx)", path,
			 (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if ((n = read_small(fd, data)) < 0) {
		buf_addf(why, "cannot read \"%s\": %s", path, strerror(errno));
		goto out;
	}
	len = (size_t)n;
	if (len > SECRET_MAX) {
		buf_addf(why, "\"%s\" is too large for a credential (over %d bytes)", path, SECRET_MAX);
		goto out;
	}
	if (len && data[len - 1] == '\n' && --len && data[len - 1] == '\r')
		len--;
	if ((problem = secret_content_problem(data, len, token))) {
		buf_addf(why, "\"%s\" %s", path, problem);
		goto out;
	}
	config_secret_release(s);
	s->value = xstrndup(data, len);
	s->file = xstrdup(path);
	s->from = CONFIG_SECRET_FILE;
	rc = 0;
out:
	if (n > 0)
		explicit_bzero(data, (size_t)n);
	close(fd);
	return rc;
}

int config_secret_from_env(struct config_secret *s, const char *var, int token, struct buf *err)
{
	const char *v = getenv(var), *problem;
	if (s->from != CONFIG_SECRET_UNSET || !v || !*v)
		return 0;
	if ((problem = secret_content_problem(v, strlen(v), token))) {
		buf_addf(err, "%s %s", var, problem);
		return E_CONFIG;
	}
	s->value = xstrdup(v);
	s->from = CONFIG_SECRET_ENV;
	return 0;
}

int config_cluster_env(struct config *c, struct buf *err)
{
	if (c->database.url && config_secret_from_env(&c->database.password, "PGPASSWORD", 0, err))
		return E_CONFIG;
	if (c->storage_backend != CONFIG_BACKEND_S3)
		return 0;
	if (config_secret_from_env(&c->s3.access_key, "AWS_ACCESS_KEY_ID", 1, err) ||
	    config_secret_from_env(&c->s3.secret_key, "AWS_SECRET_ACCESS_KEY", 1, err))
		return E_CONFIG;
	if (!c->s3.access_key.value || !c->s3.secret_key.value) {
		int none = !c->s3.access_key.value && !c->s3.secret_key.value;
		buf_addf(err, "storage.s3: no %s: set %s%s%s",
			 none ? "credentials" : !c->s3.access_key.value ? "access key" : "secret key",
			 !c->s3.access_key.value ? "\"access_key_file\" or AWS_ACCESS_KEY_ID" : "",
			 none ? ", and " : "",
			 !c->s3.secret_key.value ? "\"secret_key_file\" or AWS_SECRET_ACCESS_KEY" : "");
		return E_CONFIG;
	}
	return 0;
}

int config_cluster_check(struct config_walk *w, struct config *c)
{
	size_t old = config_walk_push_key(w, "storage");
	int rc = 0;
	if (c->storage_backend == CONFIG_BACKEND_S3 && !c->s3.given)
		rc = config_walk_fail(w, "\"backend\" is \"s3\" but there is no \"s3\" object");
	else if (c->storage_backend != CONFIG_BACKEND_S3 && c->s3.given)
		/* refused, not ignored: forgetting "backend" would put every node's blobs on its own disk */
		rc = config_walk_fail(w, "an \"s3\" object needs \"backend\": \"s3\" (the backend is \"filesystem\")");
	else if (c->storage_backend != CONFIG_BACKEND_S3 && c->storage_redirect)
		rc = config_walk_fail(w, "\"redirect\": true needs \"backend\": \"s3\" (a filesystem has no URL to "
			"redirect to)");
	config_walk_pop(w, old);
	return rc;
}

void config_secret_describe(const struct config_secret *s, const char *env_name, struct buf *out)
{
	switch (s->from) {
	case CONFIG_SECRET_FILE:
		buf_addf(out, "(from file %s)", s->file);
		return;
	case CONFIG_SECRET_ENV:
		buf_addf(out, "(from environment %s)", env_name);
		return;
	case CONFIG_SECRET_UNSET:
		break;
	}
	buf_adds(out, "(not set)");
}

void config_describe_cluster(const struct config *c, struct buf *out)
{
	const struct config_s3 *s = &c->s3;
	if (!c->database.url && c->storage_backend != CONFIG_BACKEND_S3)
		return;
	if (c->database.url) {
		/* the url cannot hold a password: config_pg_url_check() refuses it */
		buf_addf(out, "database.url: %s\ndatabase.password: ", c->database.url);
		config_secret_describe(&c->database.password, "PGPASSWORD", out);
		buf_addch(out, '\n');
	} else {
		buf_addf(out, "database: SQLite under %s\n", c->root);
	}
	if (c->storage_backend != CONFIG_BACKEND_S3) {
		buf_addf(out, "storage.backend: filesystem (under %s)\n", c->root);
		return;
	}
	buf_addf(out, "storage.backend: s3\nstorage.redirect: %s", c->storage_redirect ? "true" : "false");
	if (c->storage_redirect)
		buf_addf(out, " (presigned URLs valid %us)", s->redirect_expiry_s);
	buf_addf(out, "\nstorage.s3.endpoint: %s\nstorage.s3.region: %s\nstorage.s3.bucket: %s\n"
		 "storage.s3.prefix: \"%s\"\nstorage.s3.path_style: %s\nstorage.s3.ca_file: %s\n",
		 s->endpoint, s->region, s->bucket, s->prefix ? s->prefix : "", s->path_style ? "true" : "false",
		 s->ca_file ? s->ca_file : "(the system's)");
	buf_adds(out, "storage.s3.access_key: ");
	config_secret_describe(&s->access_key, "AWS_ACCESS_KEY_ID", out);
	buf_adds(out, "\nstorage.s3.secret_key: ");
	config_secret_describe(&s->secret_key, "AWS_SECRET_ACCESS_KEY", out);
	buf_addch(out, '\n');
}

void config_pg_params(const struct config *c, const char *keywords[3], const char *values[3])
{
	keywords[0] = "dbname"; /* with expand_dbname, libpq reads a URI or key=value string here */
	values[0] = c->database.url;
	keywords[1] = "password";
	values[1] = c->database.password.value;
	keywords[2] = NULL;
	values[2] = NULL;
}

void config_cluster_release(struct config *c)
{
	free(c->database.url);
	config_secret_release(&c->database.password);
	free(c->s3.endpoint);
	free(c->s3.region);
	free(c->s3.bucket);
	free(c->s3.prefix);
	free(c->s3.ca_file);
	config_secret_release(&c->s3.access_key);
	config_secret_release(&c->s3.secret_key);
}

static int str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

static int secret_differs(const struct config_secret *a, const struct config_secret *b)
{
	return a->from != b->from || str_differs(a->file, b->file) || str_differs(a->value, b->value);
}

/* Keeps cur's string in *next, noting name in changed when they differed. */
static void keep_str(char **next, const char *cur, const char *name, struct buf *changed)
{
	if (str_differs(*next, cur))
		buf_addf(changed, "%s\n", name);
	free(*next);
	*next = cur ? xstrdup(cur) : NULL;
}

static void keep_int(int *next, int cur, const char *name, struct buf *changed)
{
	if (*next != cur)
		buf_addf(changed, "%s\n", name);
	*next = cur;
}

static void keep_secret(struct config_secret *next, const struct config_secret *cur, const char *name,
			struct buf *changed)
{
	if (secret_differs(next, cur))
		buf_addf(changed, "%s\n", name);
	config_secret_copy(next, cur);
}

void config_keep_cluster(struct config *next, const struct config *cur, struct buf *changed)
{
	struct config_s3 *n = &next->s3;
	const struct config_s3 *o = &cur->s3;
	int backend = (int)next->storage_backend, expiry = (int)n->redirect_expiry_s;
	keep_str(&next->database.url, cur->database.url, "database.url", changed);
	keep_secret(&next->database.password, &cur->database.password, "database.password_file", changed);
	keep_int(&backend, (int)cur->storage_backend, "storage.backend", changed);
	next->storage_backend = cur->storage_backend;
	keep_int(&next->storage_redirect, cur->storage_redirect, "storage.redirect", changed);
	n->given = o->given;
	keep_str(&n->endpoint, o->endpoint, "storage.s3.endpoint", changed);
	keep_str(&n->region, o->region, "storage.s3.region", changed);
	keep_str(&n->bucket, o->bucket, "storage.s3.bucket", changed);
	keep_str(&n->prefix, o->prefix, "storage.s3.prefix", changed);
	keep_int(&n->path_style, o->path_style, "storage.s3.path_style", changed);
	keep_str(&n->ca_file, o->ca_file, "storage.s3.ca_file", changed);
	keep_secret(&n->access_key, &o->access_key, "storage.s3.access_key_file", changed);
	keep_secret(&n->secret_key, &o->secret_key, "storage.s3.secret_key_file", changed);
	keep_int(&expiry, (int)o->redirect_expiry_s, "storage.s3.redirect_expiry", changed);
	n->redirect_expiry_s = o->redirect_expiry_s;
}
