/*
 * config: the daemon's settings: safe defaults, the JSON config file, and
 * environment overrides, applied in that order (command-line flags, handled
 * by the caller, come last).
 *
 * struct config owns every string and array it points at; config_release()
 * frees them all (and is safe on a config that failed to load half-way).
 * A config is built once (at start-up, or into a fresh struct on reload) and
 * read-only afterwards, so any thread may read it. The value checkers at the
 * end are pure functions: thread-safe, nothing allocated.
 */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include <stddef.h>

#include "action.h"
#include "buf.h"
#include "log.h"

#define CONFIG_DEFAULT_LISTEN "127.0.0.1:5000"
#define CONFIG_DEFAULT_ROOT "./berth-data"
#define CONFIG_PAGE_MAX 1000
#define CONFIG_MANIFEST_MAX (4 * 1024 * 1024)
#define CONFIG_DEFAULT_SERVICE "berth"
#define CONFIG_DEFAULT_ISSUER "berth"
#define CONFIG_DEFAULT_TOKEN_TTL 300
#define CONFIG_NAME_MAX 64 /* user and group names */
#define CONFIG_DEFAULT_S3_REGION "us-east-1"
#define CONFIG_DEFAULT_REDIRECT_EXPIRY 300

/* A list of owned strings. */
struct config_strv {
	char **v;
	size_t n;
};

/* A trusted proxy: one address (prefix = full length) or a CIDR block. */
struct config_net {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char addr[16];  /* network byte order; host bits are zero */
	unsigned prefix;         /* 0..32 or 0..128 */
};

struct config_user {
	char *name;
	char *password;             /* argon2id PHC string; NULL: no password login */
	struct config_strv groups;  /* the user's own "groups" list, as written */
};

struct config_group {
	char *name;
	struct config_strv members; /* user names */
};

struct config_rule {
	struct config_strv repositories; /* globs, see glob_match() */
	struct config_strv users;
	struct config_strv groups;
	int anonymous;                   /* grants to every caller, signed in or not */
	unsigned actions;                /* enum action bits */
};

/* Tags that may be set once and never moved or deleted ("immutable_tags"). */
struct config_immutable {
	struct config_strv repositories; /* repository globs */
	struct config_strv tags;         /* tag globs: '*' matches any run of characters */
};

/*
 * A credential read from a file or the environment. The value is never
 * printed or logged; what may be shown is where it came from
 * (config_secret_describe()). config_release() zeroes it before freeing.
 */
enum config_secret_from {
	CONFIG_SECRET_UNSET = 0,
	CONFIG_SECRET_FILE,      /* read from file at load time */
	CONFIG_SECRET_ENV,       /* from an environment variable */
};

struct config_secret {
	char *value;                 /* NULL when unset; one line, trailing newline removed */
	char *file;                  /* the file it was read from (CONFIG_SECRET_FILE), else NULL */
	enum config_secret_from from;
};

/* "database": the metadata store of the cluster shape. url NULL: SQLite under root. */
struct config_database {
	char *url;                      /* libpq URI or key=value string; never holds a password */
	struct config_secret password;  /* "password_file", else PGPASSWORD; may stay unset */
};

enum config_backend {
	CONFIG_BACKEND_FILESYSTEM = 0, /* blobs under root */
	CONFIG_BACKEND_S3,
};

/*
 * "storage.s3": plain strings, named as in storage/s3.h's struct s3_config
 * so that the storage layer maps them field by field (config/ cannot
 * include storage/ headers).
 */
struct config_s3 {
	int given;                  /* the file has a "storage.s3" object */
	char *endpoint;             /* "http[s]://host[:port]", no trailing '/' */
	char *region;               /* default CONFIG_DEFAULT_S3_REGION */
	char *bucket;               /* required with the s3 backend */
	char *prefix;               /* NULL for none, else ends with '/' */
	int path_style;             /* default 1 */
	char *ca_file;              /* NULL: the system's CAs */
	struct config_secret access_key; /* "access_key_file", else AWS_ACCESS_KEY_ID */
	struct config_secret secret_key; /* "secret_key_file", else AWS_SECRET_ACCESS_KEY */
	unsigned redirect_expiry_s; /* lifetime of presigned URLs with storage.redirect */
};

/* "upstreams[].sync[]": repositories of the upstream copied ahead of time (not acted upon yet). */
struct config_upstream_sync {
	struct config_strv repositories; /* globs over the upstream's names ("library/alpine") */
	struct config_strv tags;         /* tag globs; empty: every tag */
	unsigned every_s;                /* 0: only when run by hand */
};

/*
 * "upstreams[]": a registry berth caches under a repository prefix. At most
 * one credential source: username with a password, or a bearer token, or
 * neither (anonymous). Secrets as in struct config_secret.
 */
struct config_upstream {
	char *name;                      /* [a-z0-9][a-z0-9-]{0,31}, unique; names the env variables */
	char *url;                       /* "http[s]://host[:port][/path]", no trailing '/' */
	char *prefix;                    /* local repository prefix, ends with '/' ("hub/") */
	int is_default;                  /* serves unprefixed names too ("default": true) */
	int allow_push;                  /* "allow_push": pushes into its repositories are taken (default false) */
	char *username;                  /* NULL: no Basic credentials */
	struct config_secret password;   /* "password_file", else BERTH_UPSTREAM_<NAME>_PASSWORD */
	struct config_secret token;      /* "token_file", else BERTH_UPSTREAM_<NAME>_TOKEN */
	char *ca_file;                   /* NULL: the system's CAs */
	unsigned freshness_s;            /* a tag is re-checked upstream after this long */
	unsigned ttl_s;                  /* evicted when not pulled this long; 0: never */
	unsigned long long max_size;     /* bytes kept for this upstream; 0: no cap */
	struct config_upstream_sync *sync;
	size_t n_sync;
};

#define CONFIG_UPSTREAMS_MAX 64
#define CONFIG_DEFAULT_FRESHNESS 300

enum config_metrics_access {
	METRICS_AUTHENTICATED = 0, /* any signed-in user (anyone when no users are configured) */
	METRICS_ANONYMOUS,         /* everybody */
	METRICS_OFF,               /* /metrics answers 404 */
};

struct config {
	char *path;               /* the file loaded, or NULL for built-in defaults */
	char *listen;             /* host:port or [v6]:port */
	char *external_url;       /* NULL: derived, see config_external_url() */
	char *root;               /* data directory */
	unsigned threads;         /* HTTP worker threads; 0 = number of cores */
	int reuse_port;           /* "reuse_port": SO_REUSEPORT on the listening socket */
	char *tls_cert;           /* PEM files; both set or both NULL (plain HTTP) */
	char *tls_key;
	char *tls_priorities;     /* GnuTLS priority string; NULL: berth's default (server/http.c) */
	struct config_net *trusted_proxies;
	size_t n_trusted_proxies;

	char *token_service;
	char *token_issuer;
	unsigned token_ttl_s;
	char *token_key;          /* NULL: <root>/keys/token.pem, see config_token_key() */

	struct config_user *users;   /* in file order; names unique */
	size_t n_users;
	struct config_group *groups; /* the "groups" object, in file order */
	size_t n_groups;
	struct config_rule *rules;   /* the "access" list, in file order */
	size_t n_rules;

	unsigned max_connections; /* concurrent connections; beyond, refused */
	unsigned idle_timeout_s;  /* a connection idle this long is closed */
	unsigned max_connections_per_client; /* concurrent connections from one address; beyond, refused */
	size_t manifest_max;      /* largest manifest accepted, bytes */
	long page_max;            /* cap on n for tags and catalog */
	unsigned login_concurrency;         /* password checks running at once */
	unsigned login_failures_per_minute; /* per client address and user (3x per address); 0 = no limit */
	int delete_enabled;
	enum config_backend storage_backend; /* "storage.backend" */
	int storage_redirect;     /* "storage.redirect": answer blob GETs with a presigned URL (s3 only) */
	struct config_s3 s3;      /* "storage.s3" */
	struct config_database database; /* "database" */
	enum log_level log_level;
	enum log_format log_format;        /* "log.format" */
	enum config_metrics_access metrics_access; /* "metrics.access" */
	int ui_enabled;           /* "ui.enabled": the web interface under /ui/ */
	unsigned ui_session_ttl_s; /* "ui.session_ttl": lifetime of a web interface sign-in */

	struct config_immutable *immutable; /* "immutable_tags", in file order */
	size_t n_immutable;
	unsigned gc_interval_s;   /* "gc.schedule": run GC this often; 0 = never by itself */
	unsigned gc_history_s;    /* "gc.history_window": digests a tag pointed at this recently stay */
	unsigned gc_untagged_s;   /* "gc.untagged_age": untagged manifests younger than this stay */
	unsigned gc_grace_s;      /* "gc.grace": blobs uploaded or linked this recently stay */
	unsigned upload_ttl_s;    /* "gc.upload_ttl": uploads idle this long are purged */

	struct config_upstream *upstreams; /* "upstreams", in file order; names and prefixes unique */
	size_t n_upstreams;
};

/*
 * The immutable-tag rule matching repo:tag (its index in c->immutable), or
 * -1 when none does.
 */
int config_immutable_rule(const struct config *c, const char *repo, const char *tag);

/* Fills c with the built-in defaults (no users, no rules: nobody has access). */
void config_init_defaults(struct config *c);
/* Frees everything c owns and leaves it zeroed; c itself is the caller's. */
void config_release(struct config *c);
/* Sets a string field, freeing the previous value. */
void config_set_str(char **field, const char *value);

/*
 * Reads the JSON config file at path over what c holds (normally the
 * defaults). Every key is optional; an unknown key, a wrong type or a bad
 * value fails with E_CONFIG and one line in err naming the file and the key
 * path. On failure c may be partly updated: release it, do not use it.
 */
int config_load_file(struct config *c, const char *path, struct buf *err);
/*
 * Applies BERTH_LISTEN, BERTH_ROOT, BERTH_THREADS, BERTH_LOG_LEVEL,
 * BERTH_EXTERNAL_URL, BERTH_TLS_CERT and BERTH_TLS_KEY when set (non-empty),
 * then checks that the TLS cert and key are set together. Returns 0, or
 * E_CONFIG with the problem appended to err.
 */
int config_apply_env(struct config *c, struct buf *err);
/*
 * The whole sequence: defaults, then the file (path, or $BERTH_CONFIG when
 * path is NULL; none at all when both are unset), then the environment.
 * Returns 0 or E_CONFIG (message in err); c must be released either way.
 */
int config_load(struct config *c, const char *path, struct buf *err);

/*
 * Adds user name with the argon2id hash phc and a rule granting it every
 * action on every repository: the embedded default's administrator, for
 * running without a config file. Returns 0, or E_CONFIG (nothing changed)
 * when the name or hash is invalid or the user already exists.
 */
int config_add_admin(struct config *c, const char *name, const char *phc);

/* Splits c->listen into host and port; returns 0 or E_CONFIG. host must hold 256 bytes. */
int config_listen_split(const char *listen, char *host, unsigned *port);
/*
 * Appends the URL clients reach the registry at (no trailing slash):
 * external_url when set, else http(s)://<listen>, with a wildcard listen
 * address (0.0.0.0, ::) replaced by "localhost".
 */
void config_external_url(const struct config *c, struct buf *out);
/* Appends the token signing key path: token_key, or <root>/keys/token.pem. */
void config_token_key(const struct config *c, struct buf *out);
/*
 * Appends one line ("...\n") per risky but valid setting (anonymous push or
 * delete, passwords over plain HTTP on a non-loopback address, ...).
 */
void config_warnings(const struct config *c, struct buf *out);
/* Returns 1 when the address (family AF_INET/AF_INET6, network order) is in n. */
int config_net_contains(const struct config_net *n, int family, const void *addr);

/*
 * Appends what a secret is and where it came from, never its value:
 * "(from file PATH)", "(from environment VAR)" or "(not set)".
 */
void config_secret_describe(const struct config_secret *s, const char *env_name, struct buf *out);
/*
 * Appends one "key: value\n" line per setting of the cluster shape
 * (database, storage backend, S3), secrets described as above; appends
 * nothing when c uses neither PostgreSQL nor S3.
 */
void config_describe_cluster(const struct config *c, struct buf *out);
/*
 * The arguments of libpq's PQconnectdbParams(keywords, values, 1) for
 * c->database: "dbname" (the url, which libpq expands) and "password"
 * (NULL when unset, so that libpq falls back on its own sources), then a
 * NULL terminator. The strings stay c's; valid while c is.
 */
void config_pg_params(const struct config *c, const char *keywords[3], const char *values[3]);
/*
 * Reload: settings of the cluster shape (database.*, storage.backend,
 * storage.redirect, storage.s3.*) cannot change while the daemon runs.
 * Replaces next's with copies of cur's and appends to changed the key path
 * of each that differed, one per line ("storage.s3.bucket\n").
 */
void config_keep_cluster(struct config *next, const struct config *cur, struct buf *changed);

/*
 * The upstream serving local repository name (the one whose prefix starts
 * it, else the default upstream when there is one), or NULL.
 */
const struct config_upstream *config_upstream_for(const struct config *c, const char *name);
/*
 * Appends one "upstreams.NAME.KEY: value\n" line per setting of each
 * upstream, credentials by their source only (config_secret_describe()).
 */
void config_describe_upstreams(const struct config *c, struct buf *out);
/*
 * Reload: upstreams cannot change while the daemon runs (the mirror's
 * clients, token caches and routing are built at start). When next's
 * differ from cur's (credentials included), replaces them with copies of
 * cur's and appends "upstreams\n" to changed.
 */
void config_keep_upstreams(struct config *next, const struct config *cur, struct buf *changed);

/*
 * `berth config check [-c FILE]`: argv[0] names the command ("check") and is
 * ignored, as in main(). Prints "config ok" and returns 0, or prints the
 * error on stderr and returns 1 (2 on a usage error).
 */
int config_check_main(int argc, char **argv);

/*
 * Value checkers shared by the file loader, the environment and auth/.
 * Each returns 0 when the value is acceptable, or -1 with *why pointing at a
 * static message (when why is not NULL).
 */
/* "30s", "5m", "1h", "90d": digits then one unit; into seconds. */
int config_duration_parse(const char *s, unsigned *secs, const char **why);
/* An IPv4 or IPv6 address, optionally with "/prefix"; host bits must be zero. */
int config_net_parse(const char *s, struct config_net *out, const char **why);
/* The shape argon2id_verify() accepts: $argon2id$v=19$m=M,t=T,p=P$salt$hash. */
int config_phc_check(const char *s, const char **why);
/* User and group names: [a-z0-9][a-z0-9._-]{0,63}. */
int config_name_check(const char *s, const char **why);
/* Repository globs: OCI name components, "*" within one, "**" as a whole one. */
int config_glob_check(const char *s, const char **why);
/* "http://" or "https://", a host, optional port and path; no query or fragment. */
int config_url_check(const char *s, const char **why);
/* A libpq connection URI (postgresql://, postgres://) or key=value string, without a password. */
int config_pg_url_check(const char *s, const char **why);
/* An S3 endpoint: "http://" or "https://", a host and an optional port; one trailing '/' at most. */
int config_s3_endpoint_check(const char *s, const char **why);
/* S3 bucket naming rules: 3 to 63 of [a-z0-9.-], ends alphanumeric, no "..", not an IPv4 address. */
int config_s3_bucket_check(const char *s, const char **why);
/* A region name: 1 to 63 of [A-Za-z0-9._-]. */
int config_s3_region_check(const char *s, const char **why);
/* Tag globs: 1 to 128 of the tag alphabet plus '*'. */
int config_tag_glob_check(const char *s, const char **why);
/* "512MiB", "50GiB", "1TB", "1048576": digits, then B, KB, MB, GB, TB (10^3) or KiB, MiB, GiB, TiB (2^10). */
int config_size_parse(const char *s, unsigned long long *bytes, const char **why);
/* An upstream's name: [a-z0-9][a-z0-9-]{0,31} (it is part of environment variable names). */
int config_upstream_name_check(const char *s, const char **why);
/* A key prefix: [A-Za-z0-9._/-], no leading '/', no empty, "." or ".." component; "" allowed. */
int config_s3_prefix_check(const char *s, const char **why);

#endif
