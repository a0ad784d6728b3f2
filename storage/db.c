/* db: the engine-independent entry points, each handed to the connection's driver. */
#include "db_internal.h"

int db_open(enum db_engine e, const char *target, int flags, struct db **out)
{
	return db_open_auth(e, target, NULL, flags, out);
}

int db_open_auth(enum db_engine e, const char *target, const char *password, int flags, struct db **out)
{
	const struct db_ops *ops = e == DB_PG ? &db_pg_ops : &db_sqlite_ops;
	*out = NULL;
	int rc = ops->open(target, password, flags, out);
	if (!rc) {
		(*out)->ops = ops;
		(*out)->engine = e;
	}
	return rc;
}

void db_close(struct db *db)
{
	if (db)
		db->ops->close(db);
}

enum db_engine db_engine_of(const struct db *db)
{
	return db->engine;
}

int db_exec(struct db *db, const char *sql, const char *what)
{
	return db->ops->exec(db, sql, what);
}

int db_prepare(struct db *db, const char *sql, int persistent, struct db_stmt **out)
{
	return db->ops->prepare(db, sql, persistent, out);
}

void db_finalize(struct db_stmt *s)
{
	if (s)
		s->db->ops->finalize(s);
}

void db_reset(struct db_stmt *s)
{
	s->db->ops->reset(s);
}

const char *db_stmt_sql(const struct db_stmt *s)
{
	return s->db->ops->sql(s);
}

void db_bind_text(struct db_stmt *s, int i, const char *t)
{
	s->db->ops->bind_text(s, i, t);
}

void db_bind_int64(struct db_stmt *s, int i, int64_t v)
{
	s->db->ops->bind_int64(s, i, v);
}

void db_bind_blob(struct db_stmt *s, int i, const void *data, size_t len)
{
	s->db->ops->bind_blob(s, i, data, len);
}

void db_bind_null(struct db_stmt *s, int i)
{
	s->db->ops->bind_null(s, i);
}

int db_step(struct db_stmt *s)
{
	return s->db->ops->step(s);
}

int64_t db_col_int64(struct db_stmt *s, int i)
{
	return s->db->ops->col_int64(s, i);
}

const char *db_col_text(struct db_stmt *s, int i)
{
	return s->db->ops->col_text(s, i);
}

const void *db_col_blob(struct db_stmt *s, int i, size_t *len)
{
	return s->db->ops->col_blob(s, i, len);
}

int db_col_is_null(struct db_stmt *s, int i)
{
	return s->db->ops->col_is_null(s, i);
}

int64_t db_changes(const struct db *db)
{
	return db->ops->changes(db);
}

uint64_t db_total_changes(const struct db *db)
{
	return db->ops->total_changes(db);
}

int db_in_tx(const struct db *db)
{
	return db->ops->in_tx(db);
}

int db_sync_log(struct db *db)
{
	return db->ops->sync_log(db);
}
