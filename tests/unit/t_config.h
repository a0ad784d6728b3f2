/*
 * What the config unit tests share: a scratch directory and its config file,
 * loading JSON over the defaults with the file name in messages replaced by
 * "F", and the good/bad expectations. Each test program has its own copy.
 */
#ifndef BERTH_T_CONFIG_H
#define BERTH_T_CONFIG_H

#include <argon2.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "t.h"

static char dir[4096];
static char file[sizeof(dir) + 32];
static char msg[2048];

static const char *env_names[] = {
	"BERTH_CONFIG", "BERTH_LISTEN", "BERTH_ROOT", "BERTH_THREADS", "BERTH_LOG_LEVEL",
	"BERTH_EXTERNAL_URL", "BERTH_TLS_CERT", "BERTH_TLS_KEY",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD",
};

static inline void clear_env(void)
{
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
		unsetenv(env_names[i]);
}

static inline void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/*
 * Loads json over the defaults into *c (released by the caller). Returns
 * the rc; msg gets the error with the file name replaced by "F", so
 * expected messages do not depend on the scratch directory.
 */
static inline int load(const char *json, struct config *c)
{
	struct buf err = BUF_INIT;
	size_t flen = strlen(file);
	int rc;
	write_file(file, json);
	config_init_defaults(c);
	rc = config_load_file(c, file, &err);
	if (!strncmp(err.buf, file, flen))
		snprintf(msg, sizeof(msg), "F%s", err.buf + flen);
	else
		snprintf(msg, sizeof(msg), "%s", err.buf);
	buf_release(&err);
	return rc;
}

/* Expects json to fail with exactly want (after "F"). */
static inline void bad(const char *json, const char *want)
{
	struct config c;
	int rc = load(json, &c);
	CHECK_EQ_INT(rc, E_CONFIG);
	if (strcmp(msg, want))
		fprintf(stderr, "for %s\n  got  %s\n  want %s\n", json, msg, want);
	CHECK_STR(msg, want);
	config_release(&c);
}

/* Expects json to fail with a message starting with prefix. */
static inline void bad_prefix(const char *json, const char *prefix)
{
	struct config c;
	int rc = load(json, &c);
	CHECK_EQ_INT(rc, E_CONFIG);
	if (strncmp(msg, prefix, strlen(prefix)))
		fprintf(stderr, "for %s\n  got  %s\n  want %s...\n", json, msg, prefix);
	CHECK(!strncmp(msg, prefix, strlen(prefix)));
	config_release(&c);
}

static inline void good(const char *json)
{
	struct config c;
	int rc = load(json, &c);
	if (rc)
		fprintf(stderr, "for %s\n  got %s\n", json, msg);
	CHECK_EQ_INT(rc, 0);
	config_release(&c);
}

#define HASH "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* Finds a file of the source tree from this file's compile-time path (tests run in the build dir). */
static inline void source_path(char *out, size_t len, const char *rel)
{
	const char *slash = strrchr(__FILE__, '/');
	snprintf(out, len, "%.*s/../../%s", slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".", rel);
}

/* A credential file with mode, in the current directory (tests run inside the scratch directory, so messages name it plainly). */
static inline void secret_file(const char *name, const char *content, mode_t mode)
{
	unlink(name);
	write_file(name, content);
	if (chmod(name, mode)) {
		perror(name);
		exit(1);
	}
}

/* The file, then the environment, as config_load() does; msg gets either's error. */
static inline int load_env(const char *json, struct config *c)
{
	struct buf err = BUF_INIT;
	int rc = load(json, c);
	if (!rc && (rc = config_apply_env(c, &err)))
		snprintf(msg, sizeof(msg), "%s", err.buf);
	buf_release(&err);
	return rc;
}

#endif
