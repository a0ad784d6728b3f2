/* config: defaults and environment overrides for the daemon's settings. */
#include "config.h"

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
	c->max_connections = 1024;
	c->idle_timeout_s = 60;
	c->manifest_max = CONFIG_MANIFEST_MAX;
	c->page_max = CONFIG_PAGE_MAX;
	c->delete_enabled = 1;
	c->log_level = LOG_INFO;
}

void config_release(struct config *c)
{
	free(c->listen);
	free(c->root);
	c->listen = c->root = NULL;
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
	const char *v;
	if ((v = getenv("BERTH_LISTEN")) && *v)
		config_set_str(&c->listen, v);
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
	return 0;
}
