/* meta_schema: the SQLite schema, as the ordered list of its migrations, and SQLite's dialect entries. */
#include <string.h>

#include "err.h"
#include "log.h"
#include "meta_internal.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/*
 * Migrations, applied in order, each in its own transaction; after step i
 * the database's user_version is i + 1. Never edit a released step: append
 * a new one. manifest_refs.kind holds enum ref_kind values, which therefore
 * must not be renumbered.
 */
static const char *const migrations[] = {
	/* 1: initial schema */
	"PRAGMA application_id = " STR(BERTH_APP_ID) ";"
	/* Rows are never deleted, so ids stay stable for history and links. */
	"CREATE TABLE repos ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL COLLATE BINARY UNIQUE,"
	"  created_ms INTEGER NOT NULL);"
	"CREATE TABLE blobs ("
	"  digest TEXT NOT NULL PRIMARY KEY,"
	"  size INTEGER NOT NULL CHECK (size >= 0),"
	"  created_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE blob_links ("
	"  repo_id INTEGER NOT NULL REFERENCES repos(id),"
	"  digest TEXT NOT NULL REFERENCES blobs(digest),"
	"  linked_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (repo_id, digest)"
	") WITHOUT ROWID;"
	"CREATE INDEX blob_links_by_digest ON blob_links(digest);"
	"CREATE TABLE manifests ("
	"  repo_id INTEGER NOT NULL REFERENCES repos(id),"
	"  digest TEXT NOT NULL,"
	"  size INTEGER NOT NULL CHECK (size >= 0),"
	"  media_type TEXT NOT NULL,"
	"  artifact_type TEXT,"
	"  subject TEXT,"
	"  annotations TEXT,"
	"  created_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (repo_id, digest)"
	") WITHOUT ROWID;"
	/* Entries also carry the digest (primary key), so referrers come out in digest order. */
	"CREATE INDEX manifests_by_subject ON manifests(repo_id, subject) WHERE subject IS NOT NULL;"
	"CREATE TABLE manifest_refs ("
	"  repo_id INTEGER NOT NULL,"
	"  manifest TEXT NOT NULL,"
	"  kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 3),"
	"  digest TEXT NOT NULL,"
	"  PRIMARY KEY (repo_id, manifest, kind, digest),"
	"  FOREIGN KEY (repo_id, manifest) REFERENCES manifests(repo_id, digest)"
	") WITHOUT ROWID;"
	"CREATE INDEX manifest_refs_by_digest ON manifest_refs(digest, repo_id);"
	"CREATE TABLE tags ("
	"  repo_id INTEGER NOT NULL,"
	"  name TEXT NOT NULL COLLATE BINARY,"
	"  digest TEXT NOT NULL,"
	"  updated_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (repo_id, name),"
	"  FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest)"
	") WITHOUT ROWID;"
	"CREATE INDEX tags_by_digest ON tags(repo_id, digest);"
	/* AUTOINCREMENT: ids are shown to operators and must never be reused. */
	"CREATE TABLE tag_history ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  repo_id INTEGER NOT NULL REFERENCES repos(id),"
	"  tag TEXT NOT NULL,"
	"  old_digest TEXT,"
	"  new_digest TEXT,"
	"  time_ms INTEGER NOT NULL,"
	"  actor TEXT,"
	"  how TEXT,"
	"  client TEXT);"
	"CREATE INDEX tag_history_by_tag ON tag_history(repo_id, tag);"
	"CREATE TABLE uploads ("
	"  id TEXT NOT NULL PRIMARY KEY,"
	"  repo_id INTEGER NOT NULL REFERENCES repos(id),"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	/* For purging stale uploads by age. */
	"CREATE INDEX uploads_by_updated ON uploads(updated_ms);",

	/* 2: personal access tokens, audit log */
	/*
	 * AUTOINCREMENT: tokens issued from a PAT carry its id, so an id must
	 * never name another token later. Revoked rows are kept; the partial
	 * index makes a name unique only among the owner's unrevoked tokens.
	 */
	"CREATE TABLE pats ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  owner TEXT NOT NULL COLLATE BINARY CHECK (owner <> ''),"
	"  name TEXT NOT NULL COLLATE BINARY CHECK (name <> ''),"
	"  secret_hash BLOB NOT NULL UNIQUE"
	"    CHECK (typeof(secret_hash) = 'blob' AND length(secret_hash) = 32),"
	"  scopes TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  expires_ms INTEGER NOT NULL CHECK (expires_ms >= 0),"
	"  last_used_ms INTEGER NOT NULL DEFAULT 0,"
	"  revoked_ms INTEGER NOT NULL DEFAULT 0 CHECK (revoked_ms >= 0));"
	"CREATE UNIQUE INDEX pats_active_name ON pats(owner, name) WHERE revoked_ms = 0;"
	/* Entries also carry the id, so an owner's tokens come out newest first without sorting. */
	"CREATE INDEX pats_by_owner ON pats(owner);"
	/*
	 * detail holds JSON object text (checked on insert, not by a CHECK:
	 * with trusted_schema off, JSON functions may not appear in the schema).
	 */
	"CREATE TABLE audit_events ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time_ms INTEGER NOT NULL,"
	"  actor TEXT,"
	"  action TEXT NOT NULL CHECK (action <> ''),"
	"  repo TEXT,"
	"  detail TEXT,"
	"  client TEXT);"
	"CREATE INDEX audit_events_by_time ON audit_events(time_ms);"
	"CREATE INDEX audit_events_by_repo ON audit_events(repo, time_ms);",

	/* 3: manifest bytes inside the database */
	/*
	 * A blob's bytes live either here or in blobs/<alg>/<xx>/<hex>; readers
	 * look here first. Manifests are written here, in the transaction that
	 * records them: one group-committed WAL sync instead of a file, two
	 * fsyncs and a rename per manifest. They go with their blobs row (GC).
	 * WITHOUT ROWID: one b-tree to write per manifest instead of a table
	 * and its key index (large rows spill to overflow pages either way).
	 */
	"CREATE TABLE blob_content ("
	"  digest TEXT NOT NULL PRIMARY KEY REFERENCES blobs(digest) ON DELETE CASCADE,"
	"  content BLOB NOT NULL"
	") WITHOUT ROWID;",

	/* 4: the cluster shape's blob locations and upload state (meta_cluster.c) */
	/*
	 * location: where an object store keeps a blob when not under its
	 * digest (NULL: derived from the digest; always NULL on a local
	 * directory). state: the blob backend's opaque upload state (NULL when
	 * it keeps none); state_version: bumped by every change of state or
	 * lease, for compare-and-set; lease_ms: the request holding the upload
	 * until then (0: free).
	 */
	"ALTER TABLE blobs ADD COLUMN location TEXT;"
	"ALTER TABLE uploads ADD COLUMN state BLOB;"
	"ALTER TABLE uploads ADD COLUMN state_version INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE uploads ADD COLUMN lease_ms INTEGER NOT NULL DEFAULT 0;",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == 4,
	       "a migration is added to both engines' lists (meta_schema.c, meta_schema_pg.c)");
const int meta_n_migrations = (int)(sizeof(migrations) / sizeof(migrations[0]));

/* Switches a new database to WAL (readers never wait for the writer); fails when it cannot. */
static int set_wal(struct meta_conn *c, const char *what)
{
	struct db_stmt *s = NULL;
	int rc = db_prepare(c->db, "PRAGMA journal_mode = WAL", 0, &s);
	if (rc)
		return rc;
	rc = meta_step(c, s);
	if (rc == 1) {
		const char *mode = db_col_text(s, 0);
		rc = 0;
		if (!mode || strcmp(mode, "wal")) {
			log_error("meta: %s: cannot switch to WAL journal mode", what);
			rc = E_IO;
		}
	} else if (rc == 0) {
		rc = E_IO;
	}
	db_finalize(s);
	return rc;
}

/* Refuses a file that is some other program's SQLite database, then sets the journal mode. */
static int sqlite_prepare(struct meta_conn *c, const char *what)
{
	int64_t app_id, version, objects;
	int rc = meta_query_int(c, "PRAGMA application_id", &app_id);
	if (!rc)
		rc = meta_query_int(c, "PRAGMA user_version", &version);
	if (!rc)
		rc = meta_query_int(c, "SELECT count(*) FROM sqlite_schema", &objects);
	if (rc)
		return rc;
	if (app_id != BERTH_APP_ID && (app_id || version || objects)) {
		log_error("meta: %s is not a berth database", what);
		return E_IO;
	}
	return set_wal(c, what);
}

static int sqlite_version_get(struct meta_conn *c, int *v)
{
	int64_t n = 0;
	int rc = meta_query_int(c, "PRAGMA user_version", &n);
	*v = (int)n;
	return rc;
}

static int sqlite_version_set(struct meta_conn *c, int v)
{
	struct buf b = BUF_INIT;
	buf_addf(&b, "PRAGMA user_version = %d", v);
	int rc = db_exec(c->db, b.buf, "setting the schema version");
	buf_release(&b);
	return rc;
}

const struct meta_dialect meta_dialect_sqlite = {
	.name = "sqlite",
	/* take the write lock at BEGIN: a write never fails half-way on another's lock */
	.begin = "BEGIN IMMEDIATE",
	/*
	 * temp_store=MEMORY keeps the savepoints' sub-journal in memory: by
	 * default SQLite moves it to a temporary file past 64 KiB, which a
	 * batch of manifests exceeds, and every page a savepoint changes was
	 * then written there first.
	 */
	.writer_setup = "PRAGMA temp_store = MEMORY",
	.migrations = migrations,
	.n_migrations = (int)(sizeof(migrations) / sizeof(migrations[0])),
	.prepare = sqlite_prepare,
	.version_get = sqlite_version_get,
	.version_set = sqlite_version_set,
	/* commits append to the WAL unsynced; meta_tx_end() syncs (group commit) */
	.sync_commits = 1,
};

