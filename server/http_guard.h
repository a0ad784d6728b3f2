/*
 * http_guard: the HTTP glue's connection guard (part of the glue, used
 * only by http.c). It counts connections in total and per client address,
 * closes a new connection past max_connections_per_client, makes room at
 * max_connections by shutting down the connection that has waited longest
 * for a request head, shuts down a connection whose request head is not
 * complete in time, and names the client of a failed TLS handshake.
 *
 * struct http_guard is embedded in the server and owned by it: init before
 * the daemon starts (its callbacks take the guard as their closure),
 * http_guard_release() after the daemon stopped. Its state is guarded by
 * its own lock; the callbacks run on libmicrohttpd's threads.
 */
#ifndef BERTH_HTTP_GUARD_H
#define BERTH_HTTP_GUARD_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct registry;

/*
 * The connection guard. MHD's timeout is an idle timeout: every byte
 * received restarts it, so a client sending its request head a byte a
 * second would hold a connection for ever. The guard shuts down (MHD then
 * reaps it like any disconnect) a connection whose request head is not
 * complete within HEAD_TIMEOUTS idle timeouts of the connection opening or
 * of its previous request ending. It also counts connections, in total and
 * per client address: past max_connections_per_client a client's new
 * connection is closed at once (accept_cb); past max_connections the
 * connection that has waited longest for a request head is shut down to
 * make room, and only when none waits is the new one closed.
 */
#define HEAD_TIMEOUTS 2
/* How often the guard looks, nanoseconds. */
#define GUARD_PERIOD_NS 250000000u
/* Evictions whose connection MHD has not reaped yet; beyond, refuse instead. */
#define EVICT_PENDING_MAX 16u
/* Buckets of the per-address connection counts. */
#define CLIENT_BUCKETS 256u

/* Connections open from one client address (key: family and address bytes). */
struct client_count {
	struct client_count *next;
	int family;
	unsigned char addr[16];
	unsigned n;
};

/* One open connection, from MHD's STARTED to its CLOSED notification. */
struct conn_watch {
	struct conn_watch *prev, *next;
	struct http_guard *srv;
	struct client_count *client; /* this address's count */
	int fd;
	int in_head;          /* waiting for a request head (guarded by srv->guard_lock) */
	int evicted;          /* shut down to make room; not yet reaped by MHD */
	unsigned requests;    /* request heads received on this connection */
	uint64_t deadline_ns; /* when in_head: shut down past this */
	uint64_t idle_ns;     /* when in_head: since when */
	char addr[INET6_ADDRSTRLEN];
};

struct http_guard {
	struct registry *reg;
	int tls;
	pthread_mutex_t guard_lock;   /* the list, the counts and evicting below */
	pthread_cond_t guard_cond;
	pthread_t guard_thread;
	int guard_running, guard_stop;
	struct conn_watch watched;    /* list sentinel, newest first */
	struct client_count *clients[CLIENT_BUCKETS];
	unsigned nconns;              /* connections MHD reported STARTED and not CLOSED */
	unsigned evicting;            /* of those, shut down by accept_cb and not CLOSED yet */
	uint64_t head_ns;             /* time allowed for a request head */
	unsigned max_conns;
	atomic_uint_fast64_t refused_logged_ns, client_refused_logged_ns, evict_logged_ns;
};

/* Real monotonic nanoseconds (never the test clock: deadlines of live sockets). */
uint64_t http_now_ns(void);
/* Sets g up (no thread yet); head_ns: time allowed for a request head. */
void http_guard_init(struct http_guard *g, struct registry *reg, uint64_t head_ns, unsigned max_conns, int tls);
/* Starts the deadline thread; aborts when it cannot. */
void http_guard_start(struct http_guard *g);
/* Stops the thread and frees what init and the callbacks left. */
void http_guard_release(struct http_guard *g);
/* MHD's accept policy and connection notification, with g as closure. */
enum MHD_Result http_guard_accept_cb(void *cls, const struct sockaddr *addr, socklen_t addrlen);
void http_guard_notify_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code);
/* Marks conn as inside a request (waiting 0) or waiting for its next head (1). */
void http_guard_watch_head(struct MHD_Connection *conn, int waiting);
/* MHD reported a failed TLS handshake on this thread; the next close names the client. */
void http_guard_tls_failure(void);

#endif
