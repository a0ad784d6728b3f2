/* http_guard: connection accounting, caps, eviction and the request-head deadline. */
#include "http_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "registry.h"
#include "xalloc.h"

/*
 * TLS handshake failures MHD reported on this thread whose connection has
 * not closed yet. MHD's message names no connection; it closes the failed
 * one right after, on the same thread, and that close logs the client.
 */
static _Thread_local unsigned tls_failures_pending;

uint64_t http_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* True at most once a minute per *last: a flood must not flood the log too. */
static int log_now(atomic_uint_fast64_t *last_ns)
{
	uint64_t now = http_now_ns(), last = atomic_load(last_ns);
	return (!last || now - last > 60000000000u) && atomic_compare_exchange_strong(last_ns, &last, now);
}

/* The address bytes of sa into key (16 bytes, zero-padded); its family, or -1. */
static int addr_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa && sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa && sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return AF_INET6;
	}
	return -1;
}

static unsigned addr_bucket(int family, const unsigned char key[16])
{
	uint32_t h = 2166136261u ^ (uint32_t)family;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % CLIENT_BUCKETS;
}

/* The count of family/key, or NULL; guard_lock held. */
static struct client_count *client_find(struct http_guard *s, int family, const unsigned char key[16])
{
	struct client_count *c = s->clients[addr_bucket(family, key)];
	while (c && (c->family != family || memcmp(c->addr, key, 16)))
		c = c->next;
	return c;
}

/* Trusted proxies carry many clients on their connections: no per-address cap for them. */
static int client_exempt(const struct config *cfg, int family, const unsigned char key[16])
{
	for (size_t i = 0; i < cfg->n_trusted_proxies; i++)
		if (config_net_contains(&cfg->trusted_proxies[i], family, key))
			return 1;
	return 0;
}

/* The connection that has waited longest for a request head and is not being evicted; guard_lock held. */
static struct conn_watch *oldest_idle(struct http_guard *s)
{
	struct conn_watch *best = NULL;
	for (struct conn_watch *w = s->watched.next; w != &s->watched; w = w->next)
		if (w->in_head && !w->evicted && w->fd >= 0 && (!best || w->idle_ns <= best->idle_ns))
			best = w;
	return best;
}

/*
 * MHD's accept policy: past the client's own cap, close the new
 * connection at once; past max_connections, make room by shutting down
 * the longest-idle connection, or close the new one when none is idle.
 */
enum MHD_Result http_guard_accept_cb(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct http_guard *s = cls;
	struct snapshot *snap = registry_snapshot_get(s->reg);
	unsigned per_client = snap->cfg.max_connections_per_client;
	unsigned char key[16];
	int family = addr_key(addr, key);
	enum MHD_Result ok = MHD_YES;
	char victim[INET6_ADDRSTRLEN] = "";
	(void)addrlen;
	pthread_mutex_lock(&s->guard_lock);
	if (family >= 0 && !client_exempt(&snap->cfg, family, key)) {
		struct client_count *c = client_find(s, family, key);
		if (c && c->n >= per_client) {
			ok = MHD_NO;
			pthread_mutex_unlock(&s->guard_lock);
			if (log_now(&s->client_refused_logged_ns))
				log_warn("a client reached max_connections_per_client (%u): refusing its new connections",
					 per_client);
			goto out;
		}
	}
	if (s->nconns - s->evicting >= s->max_conns) {
		struct conn_watch *w = s->evicting < EVICT_PENDING_MAX ? oldest_idle(s) : NULL;
		if (!w) {
			ok = MHD_NO;
		} else {
			w->evicted = 1;
			w->in_head = 0;
			s->evicting++;
			shutdown(w->fd, SHUT_RDWR);
			memcpy(victim, w->addr, sizeof(victim));
		}
	}
	pthread_mutex_unlock(&s->guard_lock);
	if (!ok && log_now(&s->refused_logged_ns))
		log_warn("connection limit reached (%u) and no connection is idle: refusing new connections",
			 s->max_conns);
	if (*victim && log_now(&s->evict_logged_ns))
		log_info("connection limit reached (%u): closing idle connections (such as one from %s) to make room",
			 s->max_conns, victim);
out:
	registry_snapshot_put(s->reg, snap);
	return ok;
}

static void conn_started(struct http_guard *s, struct MHD_Connection *conn, void **socket_context)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *ai = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct conn_watch *w = xcalloc(1, sizeof(*w));
	unsigned char key[16];
	int family = addr_key(ai ? ai->client_addr : NULL, key);
	w->srv = s;
	w->fd = ci ? ci->connect_fd : -1;
	w->in_head = 1;
	w->idle_ns = http_now_ns();
	w->deadline_ns = w->idle_ns + s->head_ns;
	if (family < 0 || !inet_ntop(family, key, w->addr, sizeof(w->addr)))
		strcpy(w->addr, "-");
	pthread_mutex_lock(&s->guard_lock);
	if (family >= 0) {
		struct client_count *c = client_find(s, family, key);
		if (!c) {
			unsigned b = addr_bucket(family, key);
			c = xcalloc(1, sizeof(*c));
			c->family = family;
			memcpy(c->addr, key, 16);
			c->next = s->clients[b];
			s->clients[b] = c;
		}
		c->n++;
		w->client = c;
	}
	w->next = s->watched.next;
	w->prev = &s->watched;
	w->next->prev = w;
	s->watched.next = w;
	s->nconns++;
	pthread_mutex_unlock(&s->guard_lock);
	*socket_context = w;
}

/* Drops w's count from its address; guard_lock held. */
static void client_put(struct http_guard *s, struct client_count *c)
{
	struct client_count **p;
	if (!c || --c->n)
		return;
	for (p = &s->clients[addr_bucket(c->family, c->addr)]; *p != c; p = &(*p)->next)
		;
	*p = c->next;
	free(c);
}

void http_guard_notify_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_guard *s = cls;
	struct conn_watch *w;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		conn_started(s, conn, socket_context);
		return;
	}
	/* CLOSED comes before MHD closes the socket: the guard never sees a reused fd. */
	if (!(w = *socket_context))
		return;
	if (s->tls && !w->requests && tls_failures_pending) {
		tls_failures_pending--;
		log_warn("tls: handshake with %s failed: the client rejected the certificate or closed the connection "
			 "(a client that does not trust the certificate's issuer refuses it)", w->addr);
	}
	pthread_mutex_lock(&s->guard_lock);
	w->prev->next = w->next;
	w->next->prev = w->prev;
	client_put(s, w->client);
	s->nconns--;
	if (w->evicted)
		s->evicting--;
	pthread_mutex_unlock(&s->guard_lock);
	free(w);
	*socket_context = NULL;
}

/* Marks conn as inside a request (head received) or waiting for the next head. */
void http_guard_watch_head(struct MHD_Connection *conn, int waiting)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_watch *w = ci ? ci->socket_context : NULL;
	if (!w)
		return;
	pthread_mutex_lock(&w->srv->guard_lock);
	if (!w->evicted) {
		w->in_head = waiting;
		w->idle_ns = http_now_ns();
		w->deadline_ns = w->idle_ns + w->srv->head_ns;
	}
	if (!waiting)
		w->requests++;
	pthread_mutex_unlock(&w->srv->guard_lock);
}

static void *guard_main(void *arg)
{
	struct http_guard *s = arg;
	struct timespec ts;
	pthread_mutex_lock(&s->guard_lock);
	while (!s->guard_stop) {
		uint64_t now = http_now_ns();
		for (struct conn_watch *w = s->watched.next; w != &s->watched; w = w->next) {
			if (w->in_head && w->fd >= 0 && now >= w->deadline_ns) {
				w->in_head = 0;
				shutdown(w->fd, SHUT_RDWR);
				log_info("closed a connection whose request head was not complete in %llus",
					 (unsigned long long)(s->head_ns / 1000000000u));
			}
		}
		now += GUARD_PERIOD_NS;
		ts.tv_sec = (time_t)(now / 1000000000u);
		ts.tv_nsec = (long)(now % 1000000000u);
		pthread_cond_timedwait(&s->guard_cond, &s->guard_lock, &ts);
	}
	pthread_mutex_unlock(&s->guard_lock);
	return NULL;
}

void http_guard_tls_failure(void)
{
	tls_failures_pending++;
}

void http_guard_init(struct http_guard *g, struct registry *reg, uint64_t head_ns, unsigned max_conns, int tls)
{
	pthread_condattr_t ca;
	memset(g, 0, sizeof(*g));
	g->reg = reg;
	g->tls = tls;
	g->head_ns = head_ns;
	g->max_conns = max_conns;
	pthread_mutex_init(&g->guard_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->guard_cond, &ca);
	pthread_condattr_destroy(&ca);
	g->watched.next = g->watched.prev = &g->watched;
}

void http_guard_start(struct http_guard *g)
{
	if (pthread_create(&g->guard_thread, NULL, guard_main, g))
		die("cannot start the connection guard thread");
	g->guard_running = 1;
}

void http_guard_release(struct http_guard *g)
{
	if (g->guard_running) {
		pthread_mutex_lock(&g->guard_lock);
		g->guard_stop = 1;
		pthread_cond_signal(&g->guard_cond);
		pthread_mutex_unlock(&g->guard_lock);
		pthread_join(g->guard_thread, NULL);
		g->guard_running = 0;
	}
	pthread_cond_destroy(&g->guard_cond);
	pthread_mutex_destroy(&g->guard_lock);
}
