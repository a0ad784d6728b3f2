/*
 * t_meta.h: the metadata tests' choice of engine. Without BERTH_PG_URL they
 * run on SQLite files as always; with it (tests/engines/run-pg-tests sets
 * it to a throwaway server) on PostgreSQL, where each database path a test
 * names becomes a fresh database of that server (named after the path, so
 * reopening the same path reopens the same database). Raw statements go
 * through storage/db.h on a connection of their own.
 */
#ifndef BERTH_T_META_H
#define BERTH_T_META_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db.h"
#include "err.h"
#include "meta.h"
#include "meta_internal.h"

static inline const char *t_pg_url(void)
{
	const char *u = getenv("BERTH_PG_URL");
	return u && *u ? u : NULL;
}

static inline int t_meta_pg(void)
{
	return t_pg_url() != NULL;
}

/*
 * Called first by main(): in meson's "pg" suite (BERTH_TEST_PG=1) a test
 * without a server to run on skips itself (77) instead of running on
 * SQLite again.
 */
static inline void t_meta_engine_or_skip(void)
{
	const char *want = getenv("BERTH_TEST_PG");
	if (want && *want == '1' && !t_meta_pg()) {
		printf("skipped: BERTH_PG_URL is not set (tests/engines/run-pg-tests sets it)\n");
		exit(77);
	}
}

/* base with its database replaced by name (a URL's path, or a later dbname= of a key=value string). */
static inline void t_pg_conninfo(struct buf *out, const char *base, const char *name)
{
	const char *scheme = strstr(base, "://");
	buf_reset(out);
	if (!scheme) {
		buf_addf(out, "%s dbname=%s", base, name);
		return;
	}
	const char *path = strchr(scheme + 3, '/');
	const char *query = strchr(scheme + 3, '?');
	if (!path || (query && query < path))
		path = query ? query : base + strlen(base);
	buf_add(out, base, (size_t)(path - base));
	buf_addf(out, "/%s%s", name, query ? query : "");
}

/* Runs sql on a new connection to the server's default database; 0 or an E_*. */
static inline int t_pg_admin(const char *sql)
{
	struct db *db = NULL;
	int rc = db_open(DB_PG, t_pg_url(), 0, &db);
	if (!rc)
		rc = db_exec(db, sql, "test set-up");
	db_close(db);
	return rc;
}

/*
 * The target meta opens for path: path itself on SQLite; on PostgreSQL the
 * connection string of database "bt_<hash of path>", created when missing.
 */
static inline void t_meta_target(const char *path, struct buf *out)
{
	buf_reset(out);
	if (!t_meta_pg()) {
		buf_adds(out, path);
		return;
	}
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = path; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	char name[32], sql[128];
	snprintf(name, sizeof(name), "bt_%016llx", (unsigned long long)h);
	struct db *db = NULL;
	int64_t n = 0;
	if (!db_open(DB_PG, t_pg_url(), 0, &db)) {
		struct db_stmt *s = NULL;
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_database WHERE datname = '%s'", name);
		if (!db_prepare(db, sql, 0, &s) && db_step(s) == 1)
			n = db_col_int64(s, 0);
		db_finalize(s);
		if (!n) {
			snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
			db_exec(db, sql, "test database");
		}
	}
	db_close(db);
	t_pg_conninfo(out, t_pg_url(), name);
}

/* The database a test works on: opened by t_meta_open(), closed by t_meta_close(). */
static struct meta *tm;

/* Opens path's database into *out (on PostgreSQL, t_meta_target()'s). */
static inline int t_meta_open_as(const char *path, struct meta **out)
{
	struct buf t = BUF_INIT;
	t_meta_target(path, &t);
	int rc = t_meta_pg() ? meta_open_url(t.buf, out) : meta_open(path, out);
	buf_release(&t);
	return rc;
}

/* Opens path's database as tm; E_INTERNAL while tm is open (a test's slip). */
static inline int t_meta_open(const char *path)
{
	if (tm)
		return E_INTERNAL;
	return t_meta_open_as(path, &tm);
}

static inline void t_meta_close(void)
{
	meta_close(tm);
	tm = NULL;
}

static inline int t_meta_open_at_version(const char *path, int version)
{
	struct buf t = BUF_INIT;
	if (tm)
		return E_INTERNAL;
	t_meta_target(path, &t);
	int rc = meta_open_engine(t_meta_pg() ? DB_PG : DB_SQLITE, t.buf, version, &tm);
	buf_release(&t);
	return rc;
}

/* A connection of the test's own to path's database (created on SQLite); NULL when it cannot open. */
static inline struct db *t_raw_open(const char *path)
{
	struct buf t = BUF_INIT;
	struct db *db = NULL;
	t_meta_target(path, &t);
	if (db_open(t_meta_pg() ? DB_PG : DB_SQLITE, t.buf, DB_CREATE, &db))
		db = NULL;
	buf_release(&t);
	return db;
}

/* Runs sql on a raw connection: the first column of the first row, -2 for no row, -1 on error. */
static inline long long t_raw_int(const char *path, const char *sql)
{
	struct db *db = t_raw_open(path);
	struct db_stmt *s = NULL;
	long long v = -1;
	if (db && !db_prepare(db, sql, 0, &s)) {
		int rc = db_step(s);
		v = rc == 1 ? db_col_int64(s, 0) : rc == 0 ? -2 : -1;
	}
	db_finalize(s);
	db_close(db);
	return v;
}

/* Runs sql (several statements allowed) on a raw connection; 0 or an E_*. */
static inline int t_raw_exec(const char *path, const char *sql)
{
	struct db *db = t_raw_open(path);
	int rc = db ? db_exec(db, sql, "test statement") : E_IO;
	db_close(db);
	return rc;
}

/* The engine's own form of a white-box query (catalogs, checks): sqlite's or pg's. */
static inline const char *t_sql(const char *sqlite, const char *pg)
{
	return t_meta_pg() ? pg : sqlite;
}

/* The schema version recorded in the database. */
#define T_SQL_VERSION t_sql("PRAGMA user_version", "SELECT version FROM berth_schema")
/* 1 when the engine's own check of the database finds nothing wrong (PostgreSQL checks as it writes). */
#define T_SQL_INTEGRITY t_sql("SELECT integrity_check = 'ok' FROM pragma_integrity_check", "SELECT 1")
/* Rows that break a foreign key (PostgreSQL refuses them as they come). */
#define T_SQL_FK_ROWS t_sql("SELECT count(*) FROM pragma_foreign_key_check", "SELECT 0")

#endif
