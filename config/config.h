/*
 * config: the daemon's settings, their safe defaults and environment
 * overrides.
 *
 * struct config owns its strings; config_release() frees them. A config is
 * built once at start-up (defaults, then the environment, then command-line
 * flags) and read-only afterwards, so any thread may read it.
 */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include <stddef.h>

#include "buf.h"
#include "log.h"

#define CONFIG_DEFAULT_LISTEN "127.0.0.1:5000"
#define CONFIG_DEFAULT_ROOT "./berth-data"
#define CONFIG_PAGE_MAX 1000
#define CONFIG_MANIFEST_MAX (4 * 1024 * 1024)

struct config {
	char *listen;             /* host:port or [v6]:port */
	char *root;               /* data directory */
	unsigned threads;         /* HTTP worker threads; 0 = number of cores */
	unsigned max_connections; /* concurrent connections; beyond, refused */
	unsigned idle_timeout_s;  /* a connection idle this long is closed */
	size_t manifest_max;      /* largest manifest accepted, bytes */
	long page_max;            /* cap on n for tags and catalog */
	int delete_enabled;
	enum log_level log_level;
};

void config_init_defaults(struct config *c);
void config_release(struct config *c);
/* Sets a string field, freeing the previous value. */
void config_set_str(char **field, const char *value);
/*
 * Applies BERTH_LISTEN, BERTH_ROOT, BERTH_THREADS and BERTH_LOG_LEVEL when
 * set. Returns 0, or E_CONFIG with the problem appended to err.
 */
int config_apply_env(struct config *c, struct buf *err);
/* Splits c->listen into host and port; returns 0 or E_CONFIG. host must hold 256 bytes. */
int config_listen_split(const char *listen, char *host, unsigned *port);

#endif
