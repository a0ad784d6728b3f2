/* config: defaults, environment overrides and derived values of the daemon's settings. */
#include "config.h"
#include "config_walk.h"
#include "glob.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

void config_init_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen = xstrdup(CONFIG_DEFAULT_LISTEN);
	c->root = xstrdup(CONFIG_DEFAULT_ROOT);
	c->threads = 0;
	c->token_service = xstrdup(CONFIG_DEFAULT_SERVICE);
	c->token_issuer = xstrdup(CONFIG_DEFAULT_ISSUER);
	c->token_ttl_s = CONFIG_DEFAULT_TOKEN_TTL;
	c->max_connections = 1024;
	c->idle_timeout_s = 60;
	c->max_connections_per_client = 64;
	c->manifest_max = CONFIG_MANIFEST_MAX;
	c->page_max = CONFIG_PAGE_MAX;
	c->login_concurrency = 2;
	c->login_failures_per_minute = 10;
	c->delete_enabled = 1;
	c->gc_interval_s = 0;
	c->gc_history_s = 30 * 86400;
	c->gc_untagged_s = 86400;
	c->gc_grace_s = 3600;
	c->upload_ttl_s = 86400;
	c->log_level = LOG_INFO;
	c->ui_enabled = 1;
	c->ui_session_ttl_s = 8 * 3600;
	c->s3.region = xstrdup(CONFIG_DEFAULT_S3_REGION);
	c->s3.path_style = 1;
	c->s3.redirect_expiry_s = CONFIG_DEFAULT_REDIRECT_EXPIRY;
}

static void strv_release(struct config_strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

void config_release(struct config *c)
{
	for (size_t i = 0; i < c->n_users; i++) {
		free(c->users[i].name);
		free(c->users[i].password);
		strv_release(&c->users[i].groups);
	}
	for (size_t i = 0; i < c->n_groups; i++) {
		free(c->groups[i].name);
		strv_release(&c->groups[i].members);
	}
	for (size_t i = 0; i < c->n_rules; i++) {
		strv_release(&c->rules[i].repositories);
		strv_release(&c->rules[i].users);
		strv_release(&c->rules[i].groups);
	}
	for (size_t i = 0; i < c->n_immutable; i++) {
		strv_release(&c->immutable[i].repositories);
		strv_release(&c->immutable[i].tags);
	}
	free(c->immutable);
	free(c->users);
	free(c->groups);
	free(c->rules);
	free(c->trusted_proxies);
	free(c->path);
	free(c->listen);
	free(c->external_url);
	free(c->root);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_priorities);
	free(c->token_service);
	free(c->token_issuer);
	free(c->token_key);
	config_cluster_release(c);
	config_upstreams_release(c);
	memset(c, 0, sizeof(*c));
}

void config_set_str(char **field, const char *value)
{
	free(*field);
	*field = xstrdup(value);
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;
	if (!*s || *s < '0' || *s > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int config_listen_split(const char *listen, char *host, unsigned *port)
{
	const char *colon = strrchr(listen, ':');
	size_t hlen;
	if (!colon || colon == listen)
		return E_CONFIG;
	hlen = (size_t)(colon - listen);
	if (listen[0] == '[') {
		if (hlen < 3 || listen[hlen - 1] != ']')
			return E_CONFIG;
		listen++;
		hlen -= 2;
	}
	if (hlen >= 256)
		return E_CONFIG;
	memcpy(host, listen, hlen);
	host[hlen] = '\0';
	if (parse_uint(colon + 1, 65535, port) || *port == 0)
		return E_CONFIG;
	return 0;
}

int config_apply_env(struct config *c, struct buf *err)
{
	const char *v, *why;
	char host[256];
	unsigned port;
	if ((v = getenv("BERTH_LISTEN")) && *v) {
		if (config_listen_split(v, host, &port)) {
			buf_addf(err, "BERTH_LISTEN: expected host:port, not \"%s\"", v);
			return E_CONFIG;
		}
		config_set_str(&c->listen, v);
	}
	if ((v = getenv("BERTH_ROOT")) && *v)
		config_set_str(&c->root, v);
	if ((v = getenv("BERTH_THREADS")) && *v && parse_uint(v, 1024, &c->threads)) {
		buf_addf(err, "BERTH_THREADS: not a number of threads: \"%s\"", v);
		return E_CONFIG;
	}
	if ((v = getenv("BERTH_LOG_LEVEL")) && *v && log_level_parse(v, &c->log_level)) {
		buf_addf(err, "BERTH_LOG_LEVEL: unknown level \"%s\"", v);
		return E_CONFIG;
	}
	if ((v = getenv("BERTH_EXTERNAL_URL")) && *v) {
		if (config_url_check(v, &why)) {
			buf_addf(err, "BERTH_EXTERNAL_URL: %s", why);
			return E_CONFIG;
		}
		config_set_str(&c->external_url, v);
	}
	if ((v = getenv("BERTH_TLS_CERT")) && *v)
		config_set_str(&c->tls_cert, v);
	if ((v = getenv("BERTH_TLS_KEY")) && *v)
		config_set_str(&c->tls_key, v);
	/* Checked after the merge: the file may set one and the environment the other. */
	if (!c->tls_cert != !c->tls_key) {
		buf_addf(err, "tls: the certificate and the key must be set together (%s is missing)",
			c->tls_cert ? "the key" : "the certificate");
		return E_CONFIG;
	}
	if (config_cluster_env(c, err))
		return E_CONFIG;
	return config_upstreams_env(c, err);
}

int config_load(struct config *c, const char *path, struct buf *err)
{
	config_init_defaults(c);
	if (!path) {
		path = getenv("BERTH_CONFIG");
		if (path && !*path)
			path = NULL;
	}
	if (path) {
		int rc = config_load_file(c, path, err);
		if (rc)
			return rc;
	}
	return config_apply_env(c, err);
}

int config_add_admin(struct config *c, const char *name, const char *phc)
{
	struct config_user *u;
	struct config_rule *r;
	if (config_name_check(name, NULL) || config_phc_check(phc, NULL))
		return E_CONFIG;
	for (size_t i = 0; i < c->n_users; i++)
		if (!strcmp(c->users[i].name, name))
			return E_CONFIG;
	c->users = xrealloc(c->users, (c->n_users + 1) * sizeof(*c->users));
	u = &c->users[c->n_users++];
	memset(u, 0, sizeof(*u));
	u->name = xstrdup(name);
	u->password = xstrdup(phc);
	c->rules = xrealloc(c->rules, (c->n_rules + 1) * sizeof(*c->rules));
	r = &c->rules[c->n_rules++];
	memset(r, 0, sizeof(*r));
	r->repositories.v = xmalloc(sizeof(char *));
	r->repositories.v[0] = xstrdup("**");
	r->repositories.n = 1;
	r->users.v = xmalloc(sizeof(char *));
	r->users.v[0] = xstrdup(name);
	r->users.n = 1;
	r->actions = ACTION_ALL;
	return 0;
}

static int is_wildcard(const char *host)
{
	return !*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "*");
}

void config_external_url(const struct config *c, struct buf *out)
{
	char host[256];
	unsigned port;
	if (c->external_url) {
		size_t len = strlen(c->external_url);
		while (len && c->external_url[len - 1] == '/')
			len--;
		buf_add(out, c->external_url, len);
		return;
	}
	buf_adds(out, c->tls_cert ? "https://" : "http://");
	if (config_listen_split(c->listen, host, &port)) {
		/* An unusable listen address fails at start-up; this is only a fallback. */
		buf_adds(out, "localhost");
		return;
	}
	if (is_wildcard(host))
		buf_addf(out, "localhost:%u", port);
	else if (strchr(host, ':'))
		buf_addf(out, "[%s]:%u", host, port);
	else
		buf_addf(out, "%s:%u", host, port);
}

void config_token_key(const struct config *c, struct buf *out)
{
	if (c->token_key)
		buf_adds(out, c->token_key);
	else
		buf_addf(out, "%s/keys/token.pem", c->root);
}

int config_net_contains(const struct config_net *n, int family, const void *addr)
{
	const unsigned char *a = addr;
	unsigned full = n->prefix / 8, rest = n->prefix % 8;
	if (family != n->family)
		return 0;
	if (memcmp(a, n->addr, full))
		return 0;
	if (rest) {
		unsigned char mask = (unsigned char)(0xffu << (8 - rest));
		if ((a[full] & mask) != n->addr[full])
			return 0;
	}
	return 1;
}

static int loopback_listen(const struct config *c)
{
	char host[256];
	unsigned port;
	if (config_listen_split(c->listen, host, &port))
		return 0;
	return !strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1");
}

void config_warnings(const struct config *c, struct buf *out)
{
	int passwords = 0;
	for (size_t i = 0; i < c->n_rules; i++) {
		const struct config_rule *r = &c->rules[i];
		if (r->anonymous && (r->actions & (ACTION_PUSH | ACTION_DELETE)))
			buf_addf(out, "access[%zu]: anonymous callers may %s%s%s\n", i,
				r->actions & ACTION_PUSH ? "push" : "",
				(r->actions & ACTION_PUSH) && (r->actions & ACTION_DELETE) ? " and " : "",
				r->actions & ACTION_DELETE ? "delete" : "");
	}
	for (size_t i = 0; i < c->n_users; i++)
		passwords |= c->users[i].password != NULL;
	if (passwords && !c->tls_cert && !loopback_listen(c) &&
	    !(c->external_url && !strncmp(c->external_url, "https://", 8)))
		buf_addf(out, "listen: passwords would cross the network unencrypted "
			"on %s (set tls, or external_url to the https:// URL of a TLS proxy)\n", c->listen);
	if (!c->n_rules)
		buf_adds(out, "access: no rules, so nobody can pull or push\n");
}

int config_immutable_rule(const struct config *c, const char *repo, const char *tag)
{
	for (size_t i = 0; i < c->n_immutable; i++) {
		const struct config_immutable *im = &c->immutable[i];
		int repo_ok = 0, tag_ok = 0;
		for (size_t j = 0; j < im->repositories.n && !repo_ok; j++)
			repo_ok = glob_match(im->repositories.v[j], repo);
		for (size_t j = 0; j < im->tags.n && repo_ok && !tag_ok; j++)
			tag_ok = glob_match(im->tags.v[j], tag);
		if (repo_ok && tag_ok)
			return (int)i;
	}
	return -1;
}
