/*
 * db_pg: the PostgreSQL driver of storage/db.h, on libpq.
 *
 * Statements are written with ?N and rewritten to $N once, at prepare.
 * Persistent ones are prepared on the server under a per-connection name
 * (again after a reconnect: the server forgot them); others go with
 * PQexecParams. Parameters travel as text, blobs as binary; results come
 * back as text (bytea as hex, decoded here). A statement's whole result is
 * fetched at its first step: a row callback may then run other statements
 * on the same connection, which a half-read result would not allow (the
 * listings this costs memory for are bounded by the registry's size, as
 * with any other client).
 *
 * A connection that broke is reset before its next statement; a statement
 * that fails because the connection broke while no transaction was open is
 * sent once more on the new connection. That is safe because the metadata
 * module runs every write inside BEGIN ... COMMIT: outside a transaction
 * only reads and BEGIN are sent.
 */
#include <ctype.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db_internal.h"
#include "err.h"
#include "log.h"
#include "xalloc.h"

#define PG_BOOLOID 16
#define PG_TEXTOID 25
#define MAX_PARAMS 16

struct pg_db {
	struct db base;
	PGconn *conn;
	int down;             /* a reconnect failed and was logged: the next failures are not */
	unsigned gen;         /* bumped by every reconnect: prepared names are gone */
	unsigned next_name;
	int64_t changes;
	uint64_t total_changes;
};

struct pg_stmt {
	struct db_stmt base;
	char *sql;            /* with $N */
	Oid types[MAX_PARAMS]; /* 0: the server infers it; text for a parameter the SQL never uses */
	char name[24];        /* "" for a one-off */
	unsigned prepared_gen; /* gen + 1 of the connection it was prepared on; 0: not prepared */
	int nparams;
	const char *vals[MAX_PARAMS];
	int lens[MAX_PARAMS];
	int fmts[MAX_PARAMS];
	char ints[MAX_PARAMS][24];
	PGresult *res;
	int row, nrows;
	int ran;
	unsigned char *blob; /* the last bytea column decoded */
	size_t blob_alloc;
};

static struct pg_db *D(struct db *db)
{
	return (struct pg_db *)db;
}

static const struct pg_db *DC(const struct db *db)
{
	return (const struct pg_db *)db;
}

static struct pg_stmt *ST(struct db_stmt *s)
{
	return (struct pg_stmt *)s;
}

static int conn_lost(const struct pg_db *d)
{
	return PQstatus(d->conn) != CONNECTION_OK;
}

/* libpq's messages run over several lines; the log gets the first. */
static int line_len(const char *msg)
{
	return (int)strcspn(msg, "\n");
}

/*
 * Maps a failed result (res may be NULL) by its SQLSTATE and logs one line.
 * Server messages name the statement and the failing constraint, never a
 * bound value's secret: parameters are not echoed in errors of the kinds
 * our statements raise.
 */
static int pg_error(struct pg_db *d, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!msg)
		msg = PQerrorMessage(d->conn);
	if (!state)
		state = "";
	if (conn_lost(d) || !strncmp(state, "08", 2) || !strcmp(state, "57P01") || !strcmp(state, "57P02") ||
	    !strcmp(state, "57P03")) {
		if (!d->down)
			log_error("meta: the database server is unavailable: %.*s", line_len(msg), msg);
		return E_STORE_UNAVAILABLE;
	}
	if (!strcmp(state, "40001") || !strcmp(state, "40P01")) {
		log_info("meta: transaction conflict (%s), to be retried", state);
		return DB_E_RETRY;
	}
	if (!strcmp(state, "53100")) {
		log_error("meta: the database server's disk is full");
		return E_NO_SPACE;
	}
	if (!strcmp(state, "55P03") || !strcmp(state, "57014") || !strncmp(state, "53", 2)) {
		log_warn("meta: database busy (%s): %.*s", state, line_len(msg), msg);
		return E_BUSY;
	}
	log_error("meta: postgresql error %s: %.*s%s%.80s", state, line_len(msg), msg, what ? "; in: " : "",
		  what ? what : "");
	return E_IO;
}

static void no_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/*
 * Session settings. lock_timeout bounds how long a write waits for
 * another node's (E_BUSY after), like SQLite's busy timeout.
 */
static int session_setup(struct pg_db *d)
{
	PQsetNoticeProcessor(d->conn, no_notices, NULL);
	PGresult *res = PQexec(d->conn, "SET lock_timeout = '5s'");
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : pg_error(d, res, "session settings");
	PQclear(res);
	return rc;
}

/*
 * Defaults that keep a call from hanging on a server that vanished without
 * closing its connections (a host down, a network cut): connecting gives
 * up after 10 s, unacknowledged data after 30 s, an idle connection is
 * probed after 10 s. target comes last and is expanded: what it says
 * overrides them.
 */
static int pg_connect(const char *target, const char *password, PGconn **out)
{
	/* a NULL value is skipped by libpq: the password then comes from its own sources */
	const char *keys[] = { "connect_timeout", "tcp_user_timeout", "keepalives", "keepalives_idle",
			       "keepalives_interval", "keepalives_count", "application_name", "client_encoding",
			       "password", "dbname", NULL };
	const char *vals[] = { "10", "30000", "1", "10", "5", "3", "berth", "UTF8", password, target, NULL };
	*out = PQconnectdbParams(keys, vals, 1);
	if (!*out)
		die("meta: out of memory connecting to the database");
	if (PQstatus(*out) == CONNECTION_OK)
		return 0;
	/* libpq's message names host and port, never the password */
	const char *msg = PQerrorMessage(*out);
	log_error("meta: cannot connect to the database: %.*s", line_len(msg), msg);
	return E_STORE_UNAVAILABLE;
}

static int pg_open(const char *target, const char *password, int flags, struct db **out)
{
	(void)flags;
	struct pg_db *d = xcalloc(1, sizeof(*d));
	int rc = pg_connect(target, password, &d->conn);
	if (!rc)
		rc = session_setup(d);
	if (rc) {
		PQfinish(d->conn);
		free(d);
		return rc;
	}
	*out = &d->base;
	return 0;
}

/* Before a statement: a broken connection is reset (prepared statements are then re-made). */
static int ensure_conn(struct pg_db *d)
{
	if (!conn_lost(d))
		return 0;
	PQreset(d->conn);
	d->gen++;
	if (conn_lost(d)) {
		/* once per outage and connection: every statement tries again until the server is back */
		const char *msg = PQerrorMessage(d->conn);
		if (!d->down)
			log_error("meta: cannot reconnect to the database: %.*s", line_len(msg), msg);
		d->down = 1;
		return E_STORE_UNAVAILABLE;
	}
	if (d->down)
		log_info("meta: reconnected to the database");
	d->down = 0;
	return session_setup(d);
}

static void pg_close(struct db *db)
{
	PQfinish(D(db)->conn);
	free(db);
}

static int exec_once(struct pg_db *d, const char *sql, const char *what)
{
	int rc = ensure_conn(d);
	if (rc)
		return rc;
	PGresult *res = PQexec(d->conn, sql);
	ExecStatusType st = PQresultStatus(res);
	rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : pg_error(d, res, what);
	PQclear(res);
	return rc;
}

static int pg_exec(struct db *db, const char *sql, const char *what)
{
	struct pg_db *d = D(db);
	int idle = !conn_lost(d) && PQtransactionStatus(d->conn) == PQTRANS_IDLE;
	int rc = exec_once(d, sql, what);
	/* as pg_step: a connection found dead outside a transaction (a BEGIN after a restart) ran nothing */
	if (rc == E_STORE_UNAVAILABLE && idle)
		rc = exec_once(d, sql, what);
	return rc;
}

/*
 * ?N -> $N, outside string literals and quoted identifiers; the highest N
 * into *nparams, and used[N - 1] set for each N that appears (N <= MAX_PARAMS).
 */
static char *rewrite(const char *sql, int *nparams, unsigned char *used)
{
	struct buf b = BUF_INIT;
	char quote = 0;
	int max = 0;
	for (const char *p = sql; *p; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (*p == '?' && isdigit((unsigned char)p[1])) {
			int n = atoi(p + 1);
			if (n > max)
				max = n;
			if (n >= 1 && n <= MAX_PARAMS)
				used[n - 1] = 1;
			buf_addch(&b, '$');
			continue;
		}
		buf_addch(&b, *p);
	}
	*nparams = max;
	return buf_detach(&b, NULL);
}

static int pg_prepare(struct db *db, const char *sql, int persistent, struct db_stmt **out)
{
	struct pg_db *d = D(db);
	struct pg_stmt *s = xcalloc(1, sizeof(*s));
	unsigned char used[MAX_PARAMS] = { 0 };
	s->base.db = db;
	s->sql = rewrite(sql, &s->nparams, used);
	if (s->nparams > MAX_PARAMS)
		die("meta: statement with %d parameters (at most %d): %.80s", s->nparams, MAX_PARAMS, sql);
	/* a statement may skip a number (one binder for two statements): the server cannot infer that one */
	for (int i = 0; i < s->nparams; i++)
		s->types[i] = used[i] ? 0 : PG_TEXTOID;
	if (persistent)
		snprintf(s->name, sizeof(s->name), "berth_%u", d->next_name++);
	*out = &s->base;
	return 0;
}

static void drop_result(struct pg_stmt *s)
{
	PQclear(s->res);
	s->res = NULL;
	s->row = s->nrows = 0;
	s->ran = 0;
}

static void pg_finalize(struct db_stmt *st)
{
	struct pg_stmt *s = ST(st);
	drop_result(s);
	/* the server's prepared statement goes with the connection (none outlives it here) */
	free(s->sql);
	free(s->blob);
	free(s);
}

static void pg_reset(struct db_stmt *st)
{
	struct pg_stmt *s = ST(st);
	drop_result(s);
	memset(s->vals, 0, sizeof(s->vals));
	memset(s->lens, 0, sizeof(s->lens));
	memset(s->fmts, 0, sizeof(s->fmts));
}

static const char *pg_sql(const struct db_stmt *s)
{
	return ((const struct pg_stmt *)s)->sql;
}

static void bind_check(struct pg_stmt *s, int i)
{
	if (i < 1 || i > s->nparams)
		die("meta: parameter %d out of range (statement has %d): %.80s", i, s->nparams, s->sql);
}

static void pg_bind_text(struct db_stmt *st, int i, const char *t)
{
	struct pg_stmt *s = ST(st);
	bind_check(s, i);
	s->vals[i - 1] = t;
	s->fmts[i - 1] = 0;
}

static void pg_bind_int64(struct db_stmt *st, int i, int64_t v)
{
	struct pg_stmt *s = ST(st);
	bind_check(s, i);
	snprintf(s->ints[i - 1], sizeof(s->ints[i - 1]), "%" PRId64, v);
	s->vals[i - 1] = s->ints[i - 1];
	s->fmts[i - 1] = 0;
}

static void pg_bind_blob(struct db_stmt *st, int i, const void *data, size_t len)
{
	struct pg_stmt *s = ST(st);
	bind_check(s, i);
	if (len > INT32_MAX)
		die("meta: blob parameter too large");
	s->vals[i - 1] = data ? data : "";
	s->lens[i - 1] = (int)len;
	s->fmts[i - 1] = 1;
}

static void pg_bind_null(struct db_stmt *st, int i)
{
	pg_bind_text(st, i, NULL);
}

/* Sends s once: 0 with s->res holding the whole result, or the mapped error. */
static int send_once(struct pg_db *d, struct pg_stmt *s)
{
	int rc = ensure_conn(d);
	if (rc)
		return rc;
	if (s->name[0] && s->prepared_gen != d->gen + 1) {
		PGresult *p = PQprepare(d->conn, s->name, s->sql, s->nparams, s->types);
		rc = PQresultStatus(p) == PGRES_COMMAND_OK ? 0 : pg_error(d, p, s->sql);
		PQclear(p);
		if (rc)
			return rc;
		s->prepared_gen = d->gen + 1;
	}
	if (s->name[0])
		s->res = PQexecPrepared(d->conn, s->name, s->nparams, s->vals, s->lens, s->fmts, 0);
	else
		s->res = PQexecParams(d->conn, s->sql, s->nparams, s->types, s->vals, s->lens, s->fmts, 0);
	ExecStatusType st = PQresultStatus(s->res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return 0;
	rc = pg_error(d, s->res, s->sql);
	PQclear(s->res);
	s->res = NULL;
	return rc;
}

/* Counts the rows an INSERT, UPDATE or DELETE changed (RETURNING or not). */
static void count_changes(struct pg_db *d, PGresult *res)
{
	const char *cmd = PQcmdStatus(res);
	if (strncmp(cmd, "INSERT", 6) && strncmp(cmd, "UPDATE", 6) && strncmp(cmd, "DELETE", 6))
		return;
	d->changes = strtoll(PQcmdTuples(res), NULL, 10);
	d->total_changes += (uint64_t)d->changes;
}

static int pg_step(struct db_stmt *st)
{
	struct pg_stmt *s = ST(st);
	struct pg_db *d = D(st->db);
	if (!s->ran) {
		int idle = !conn_lost(d) && PQtransactionStatus(d->conn) == PQTRANS_IDLE;
		int rc = send_once(d, s);
		/* a connection found dead outside a transaction: the statement never ran, once more */
		if (rc == E_STORE_UNAVAILABLE && idle)
			rc = send_once(d, s);
		if (rc)
			return rc;
		s->ran = 1;
		s->row = -1;
		s->nrows = PQntuples(s->res);
		count_changes(d, s->res);
	}
	if (s->row + 1 >= s->nrows) {
		s->row = s->nrows;
		return 0;
	}
	s->row++;
	return 1;
}

static int in_row(const struct pg_stmt *s, int i)
{
	return s->res && s->row >= 0 && s->row < s->nrows && i >= 0 && i < PQnfields(s->res);
}

static int pg_col_is_null(struct db_stmt *st, int i)
{
	struct pg_stmt *s = ST(st);
	return !in_row(s, i) || PQgetisnull(s->res, s->row, i);
}

static int64_t pg_col_int64(struct db_stmt *st, int i)
{
	struct pg_stmt *s = ST(st);
	if (pg_col_is_null(st, i))
		return 0;
	const char *v = PQgetvalue(s->res, s->row, i);
	if (PQftype(s->res, i) == PG_BOOLOID)
		return v[0] == 't';
	/* sum() of a bigint is numeric: the integer part is what we stored */
	return strtoll(v, NULL, 10);
}

static const char *pg_col_text(struct db_stmt *st, int i)
{
	struct pg_stmt *s = ST(st);
	return pg_col_is_null(st, i) ? NULL : PQgetvalue(s->res, s->row, i);
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* bytea in text form is "\x" and two hex digits a byte (bytea_output = hex, the default since 9.0). */
static const void *pg_col_blob(struct db_stmt *st, int i, size_t *len)
{
	struct pg_stmt *s = ST(st);
	*len = 0;
	if (pg_col_is_null(st, i))
		return NULL;
	const char *v = PQgetvalue(s->res, s->row, i);
	size_t n = (size_t)PQgetlength(s->res, s->row, i);
	if (n < 2 || v[0] != '\\' || v[1] != 'x' || n % 2) {
		/* not bytea: the text's own bytes */
		*len = n;
		return v;
	}
	size_t out = (n - 2) / 2;
	if (out + 1 > s->blob_alloc) {
		free(s->blob);
		s->blob_alloc = out + 1;
		s->blob = xmalloc(s->blob_alloc);
	}
	for (size_t k = 0; k < out; k++) {
		int hi = hexval(v[2 + 2 * k]), lo = hexval(v[3 + 2 * k]);
		if (hi < 0 || lo < 0) {
			log_error("meta: malformed bytea value");
			return NULL;
		}
		s->blob[k] = (unsigned char)(hi << 4 | lo);
	}
	*len = out;
	return s->blob;
}

static int64_t pg_changes(const struct db *db)
{
	return DC(db)->changes;
}

static uint64_t pg_total_changes(const struct db *db)
{
	return DC(db)->total_changes;
}

static int pg_in_tx(const struct db *db)
{
	PGTransactionStatusType t = PQtransactionStatus(DC(db)->conn);
	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

static int pg_sync_log(struct db *db)
{
	(void)db;
	return 0;
}

const struct db_ops db_pg_ops = {
	.open = pg_open,
	.close = pg_close,
	.exec = pg_exec,
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.reset = pg_reset,
	.sql = pg_sql,
	.bind_text = pg_bind_text,
	.bind_int64 = pg_bind_int64,
	.bind_blob = pg_bind_blob,
	.bind_null = pg_bind_null,
	.step = pg_step,
	.col_int64 = pg_col_int64,
	.col_text = pg_col_text,
	.col_blob = pg_col_blob,
	.col_is_null = pg_col_is_null,
	.changes = pg_changes,
	.total_changes = pg_total_changes,
	.in_tx = pg_in_tx,
	.sync_log = pg_sync_log,
};
