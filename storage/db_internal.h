/*
 * db_internal: what db.c shares with the two drivers (db_sqlite.c, db_pg.c)
 * and nothing else includes: each driver's table of operations, and the
 * head every driver's connection and statement struct starts with.
 */
#ifndef BERTH_DB_INTERNAL_H
#define BERTH_DB_INTERNAL_H

#include "db.h"

struct db_ops {
	int (*open)(const char *target, const char *password, int flags, struct db **out);
	void (*close)(struct db *db);
	int (*exec)(struct db *db, const char *sql, const char *what);
	int (*prepare)(struct db *db, const char *sql, int persistent, struct db_stmt **out);
	void (*finalize)(struct db_stmt *s);
	void (*reset)(struct db_stmt *s);
	const char *(*sql)(const struct db_stmt *s);
	void (*bind_text)(struct db_stmt *s, int i, const char *t);
	void (*bind_int64)(struct db_stmt *s, int i, int64_t v);
	void (*bind_blob)(struct db_stmt *s, int i, const void *data, size_t len);
	void (*bind_null)(struct db_stmt *s, int i);
	int (*step)(struct db_stmt *s);
	int64_t (*col_int64)(struct db_stmt *s, int i);
	const char *(*col_text)(struct db_stmt *s, int i);
	const void *(*col_blob)(struct db_stmt *s, int i, size_t *len);
	int (*col_is_null)(struct db_stmt *s, int i);
	int64_t (*changes)(const struct db *db);
	uint64_t (*total_changes)(const struct db *db);
	int (*in_tx)(const struct db *db);
	int (*sync_log)(struct db *db);
};

/* The first member of every driver's connection. */
struct db {
	const struct db_ops *ops;
	enum db_engine engine;
};

/* The first member of every driver's statement. */
struct db_stmt {
	struct db *db;
};

extern const struct db_ops db_sqlite_ops;
extern const struct db_ops db_pg_ops;

#endif
