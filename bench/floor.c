/*
 * floor: the least a registry built on berth's libraries can be resident
 * with, as a yardstick for berth's idle memory (bench/run reads it like
 * berth's idle RSS).
 *
 * It links the same shared libraries as berth (libmicrohttpd, SQLite,
 * OpenSSL's libcrypto and libssl, jansson, libargon2, pthreads: the
 * pkg-config names of meson.build) and does only what any registry
 * on them must do at start: a libmicrohttpd daemon with berth's thread
 * model (internal epoll polling, a pool of one thread per online CPU,
 * suspend/resume allowed, the same connection limits) and a SQLite database
 * in WAL mode. Then it waits. It prints nothing; SIGTERM or SIGINT stops it
 * (exit 0) and removes its database.
 *
 *   floor [DIR]    DIR: where the database's temporary directory goes
 *                  (default $TMPDIR, else /tmp)
 *
 * Build: cc -O2 bench/floor.c $(pkg-config --cflags --libs libmicrohttpd
 *        sqlite3 openssl jansson libargon2) -lpthread -o floor
 */
#define _GNU_SOURCE
#include <argon2.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * One symbol of each library nothing else here uses, so that the linker
 * keeps all of them even with --as-needed: the point is to load what berth
 * loads. Taking the addresses runs none of their code.
 */
static void *volatile keep_linked[] = {
	(void *)OpenSSL_version_num,
	(void *)OPENSSL_init_ssl,
	(void *)jansson_version_str,
	(void *)argon2_error_message,
};

/* Every request gets an empty 404: the floor serves nothing. */
static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				 const char *version, const char *upload_data, size_t *upload_data_size,
				 void **req_cls)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	(void)cls, (void)url, (void)method, (void)version, (void)upload_data, (void)req_cls;
	*upload_data_size = 0;
	resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	ret = MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int open_db(const char *dir, sqlite3 **db)
{
	char path[4096];
	sqlite3_stmt *s = NULL;
	int ok;
	snprintf(path, sizeof(path), "%s/floor.db", dir);
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		return -1;
	/* The mode must be asked for and checked: "PRAGMA journal_mode" answers the mode in force. */
	ok = sqlite3_prepare_v2(*db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK &&
	     sqlite3_step(s) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	return ok ? 0 : -1;
}

static void remove_db(const char *dir)
{
	static const char *const names[] = { "floor.db", "floor.db-wal", "floor.db-shm" };
	char path[4096];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int main(int argc, char **argv)
{
	const char *parent = argc > 1 ? argv[1] : getenv("TMPDIR");
	char dir[4000]; /* room for "/floor.db-wal" in the 4096 of a path */
	struct sockaddr_in sin;
	struct MHD_Daemon *d;
	sqlite3 *db = NULL;
	sigset_t set;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = ncpu > 0 ? (unsigned)ncpu : 1;
	int sig, rc = 1;

	(void)keep_linked;
	int n = snprintf(dir, sizeof(dir), "%s/floor-XXXXXX", parent && *parent ? parent : "/tmp");
	if (n < 0 || (size_t)n >= sizeof(dir) || !mkdtemp(dir))
		return 1;
	/* Blocked before any thread starts, so every thread inherits the mask and sigwait() gets them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (open_db(dir, &db))
		goto out;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* berth's daemon (server/http.c) without its callbacks and TLS; port 0: any free one. */
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL,
			     NULL, access_cb, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
			     MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, 1024u + threads,
			     MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
			     (size_t)(64 * 1024), MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
	if (!d)
		goto out;
	while (sigwait(&set, &sig))
		;
	MHD_stop_daemon(d);
	rc = 0;
out:
	sqlite3_close(db);
	remove_db(dir);
	return rc;
}
