/* Unit tests for common/httpc: header cutting and bounds, numbers, body bounds, backoff, and the pool under threads. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpc.h"
#include "t.h"

static void test_header_parse(void)
{
	struct httpc_header h;
	char line[32];
	const char *s;

	s = "HTTP/1.1 206 Partial Content\r\n";
	CHECK_EQ_INT(httpc_header_parse(s, strlen(s), line, sizeof(line), &h), 0);
	CHECK_EQ_INT(h.status, 206);
	CHECK(!h.name && !h.value);

	s = "ETag: \t\"abc\"\r\n";
	CHECK_EQ_INT(httpc_header_parse(s, strlen(s), line, sizeof(line), &h), 0);
	CHECK_EQ_INT(h.status, -1);
	CHECK_STR(h.name, "ETag");
	CHECK_STR(h.value, "\"abc\"");

	/* a value may hold colons; the name ends at the first */
	s = "Location: http://x:1/\n";
	CHECK_EQ_INT(httpc_header_parse(s, strlen(s), line, sizeof(line), &h), 0);
	CHECK_STR(h.name, "Location");
	CHECK_STR(h.value, "http://x:1/");

	/* the blank line ending the headers, and junk, are passed over */
	CHECK_EQ_INT(httpc_header_parse("\r\n", 2, line, sizeof(line), &h), -1);
	CHECK_EQ_INT(httpc_header_parse("junk\r\n", 6, line, sizeof(line), &h), -1);

	/* bounds: cap - 1 bytes fit, cap do not, and nothing past cap is written */
	char big[64];
	memset(big, 'a', sizeof(big));
	memcpy(big, "X:", 2);
	CHECK_EQ_INT(httpc_header_parse(big, sizeof(line) - 1, line, sizeof(line), &h), 0);
	CHECK_EQ_INT(strlen(h.value), sizeof(line) - 3);
	char guard[sizeof(line) + 1];
	memset(guard, 0x5a, sizeof(guard));
	CHECK_EQ_INT(httpc_header_parse(big, sizeof(line), guard, sizeof(line), &h), -1);
	CHECK_EQ_INT(httpc_header_parse(big, sizeof(big), guard, sizeof(line), &h), -1);
	CHECK(guard[sizeof(line)] == 0x5a && guard[0] == 0x5a);
	/* a status line with no code */
	CHECK_EQ_INT(httpc_header_parse("HTTP/2", 6, line, sizeof(line), &h), 0);
	CHECK_EQ_INT(h.status, 0);
}

static void test_value_copy(void)
{
	char dst[4] = "old";
	CHECK_EQ_INT(httpc_value_copy(dst, sizeof(dst), "abcd", 4), -1);
	CHECK_STR(dst, "old");
	CHECK_EQ_INT(httpc_value_copy(dst, sizeof(dst), "abcd", 3), 0);
	CHECK_STR(dst, "abc");
	CHECK_EQ_INT(httpc_value_copy(dst, sizeof(dst), "", 0), 0);
	CHECK_STR(dst, "");
}

static void test_parse_u64(void)
{
	uint64_t v = 7;
	CHECK_EQ_INT(httpc_parse_u64("123", "", &v), 0);
	CHECK_EQ_INT(v, 123);
	CHECK_EQ_INT(httpc_parse_u64("42 \t", "", &v), 0);
	CHECK_EQ_INT(v, 42);
	CHECK_EQ_INT(httpc_parse_u64("5-9/10", "/-", &v), 0);
	CHECK_EQ_INT(v, 5);
	CHECK_EQ_INT(httpc_parse_u64("18446744073709551615", "", &v), 0);
	CHECK(v == UINT64_MAX);
	v = 7;
	CHECK_EQ_INT(httpc_parse_u64("5-9", "", &v), -1);
	CHECK_EQ_INT(httpc_parse_u64("18446744073709551616", "", &v), -1);
	CHECK_EQ_INT(httpc_parse_u64("-1", "", &v), -1);
	CHECK_EQ_INT(httpc_parse_u64("+1", "", &v), -1);
	CHECK_EQ_INT(httpc_parse_u64(" 1", "", &v), -1);
	CHECK_EQ_INT(httpc_parse_u64("", "", &v), -1);
	CHECK_EQ_INT(httpc_parse_u64("*", "", &v), -1);
	CHECK_EQ_INT(httpc_parse_u64("12x", "", &v), -1);
	CHECK_EQ_INT(v, 7);
}

static void test_body_add(void)
{
	struct buf b = BUF_INIT;
	CHECK_EQ_INT(httpc_body_add(&b, "abcd", 4, 6), 0);
	CHECK_EQ_INT(httpc_body_add(&b, "efg", 3, 6), -1);
	CHECK_EQ_INT(b.len, 4);
	CHECK_EQ_INT(httpc_body_add(&b, "ef", 2, 6), 0);
	CHECK_EQ_INT(httpc_body_add(&b, "", 0, 6), 0);
	CHECK_EQ_INT(httpc_body_add(&b, "g", 1, 6), -1);
	CHECK(b.len == 6 && !memcmp(b.buf, "abcdef", 6));
	buf_release(&b);
}

static void test_backoff(void)
{
	const struct httpc_backoff b[] = {
		{ .base_ms = 100, .max_ms = 1000 },
		{ .base_ms = 100, .max_ms = 2000 },
		{ .base_ms = 3, .max_ms = 2000 },
		{ .base_ms = 5000, .max_ms = 2000 },
	};
	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
		for (int retry = 0; retry < 70; retry++) {
			long cap = b[i].base_ms, top = 0, w;
			for (int k = 0; k < retry && cap < b[i].max_ms; k++)
				cap *= 2;
			if (cap > b[i].max_ms)
				cap = b[i].max_ms;
			for (int k = 0; k < 300; k++) {
				w = httpc_backoff_ms(&b[i], retry);
				if (w < 0 || w > cap) {
					CHECK(w >= 0 && w <= cap);
					break;
				}
				top = w > top ? w : top;
			}
			/* full jitter spreads over the whole range: 300 draws under half the cap are 2^-300 */
			CHECK(top > cap / 2);
		}
	}
	struct httpc_backoff zero = { .base_ms = 0, .max_ms = 1000 };
	CHECK_EQ_INT(httpc_backoff_ms(&zero, 3), 0);

	/* past the budget: no sleep */
	struct httpc_backoff slow = { .base_ms = 1000, .max_ms = 1000, .budget_ms = 50 };
	long t0 = httpc_now_ms();
	CHECK_EQ_INT(httpc_backoff_wait(&slow, t0 - 100, 0), -1);
	CHECK(httpc_now_ms() - t0 < 500);
	/* within it: sleeps at most the cap */
	struct httpc_backoff fast = { .base_ms = 20, .max_ms = 20, .budget_ms = 60000 };
	t0 = httpc_now_ms();
	CHECK_EQ_INT(httpc_backoff_wait(&fast, t0, 5), 0);
	CHECK(httpc_now_ms() - t0 < 1000);
	CHECK(httpc_now_ms() >= t0);
}

/* ---- a keep-alive HTTP server on loopback, counting connections ---- */

#define MAX_CONNS 64

struct server {
	int fd;
	int port;
	pthread_t accepter;
	pthread_t conn[MAX_CONNS];
	int conn_fd[MAX_CONNS];
	atomic_int nconn;
};

static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nETag: \"e1\"\r\n\r\nok";
	char in[4096];
	size_t have = 0;
	for (;;) {
		ssize_t n = read(fd, in + have, sizeof(in) - 1 - have);
		char *end;
		if (n <= 0)
			break;
		have += (size_t)n;
		in[have] = '\0';
		/* one request at a time: curl does not pipeline */
		while ((end = strstr(in, "\r\n\r\n"))) {
			size_t used = (size_t)(end + 4 - in);
			if (write(fd, answer, sizeof(answer) - 1) != (ssize_t)sizeof(answer) - 1)
				goto out;
			memmove(in, in + used, have - used + 1);
			have -= used;
		}
		if (have == sizeof(in) - 1)
			break;
	}
out:
	return NULL;
}

static void *accept_loop(void *arg)
{
	struct server *s = arg;
	for (;;) {
		int fd = accept(s->fd, NULL, NULL);
		int i;
		if (fd < 0)
			break;
		i = atomic_load(&s->nconn);
		if (i >= MAX_CONNS) {
			close(fd);
			continue;
		}
		struct timeval tv = { 10, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		s->conn_fd[i] = fd;
		if (pthread_create(&s->conn[i], NULL, serve_conn, (void *)(intptr_t)fd)) {
			close(fd);
			continue;
		}
		atomic_store(&s->nconn, i + 1);
	}
	return NULL;
}

static int server_start(struct server *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	memset(s, 0, sizeof(*s));
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) || listen(s->fd, 64) ||
	    getsockname(s->fd, (struct sockaddr *)&a, &alen))
		return -1;
	s->port = ntohs(a.sin_port);
	return pthread_create(&s->accepter, NULL, accept_loop, s) ? -1 : 0;
}

/* Call after every client connection closed: the connection threads end on EOF. */
static void server_stop(struct server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->accepter, NULL);
	close(s->fd);
	for (int i = 0; i < atomic_load(&s->nconn); i++) {
		pthread_join(s->conn[i], NULL);
		close(s->conn_fd[i]);
	}
}

/* ---- the pool under threads ---- */

#define THREADS 8
#define REQUESTS 40

struct answer {
	long status;
	char etag[8];
	struct buf body;
};

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct answer *a = ud;
	struct httpc_header h;
	char line[128];
	if (httpc_header_parse(data, size * nmemb, line, sizeof(line), &h))
		return size * nmemb;
	if (h.status >= 0)
		a->status = h.status;
	else if (!strcasecmp(h.name, "etag"))
		httpc_value_copy(a->etag, sizeof(a->etag), h.value, strlen(h.value));
	return size * nmemb;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct answer *a = ud;
	return httpc_body_add(&a->body, data, size * nmemb, 16) ? 0 : size * nmemb;
}

struct worker {
	struct httpc_pool *pool;
	const char *url;
	int ok;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < REQUESTS; i++) {
		struct answer a = { .body = BUF_INIT };
		struct curl_slist *list = httpc_header_add(NULL, "X-Test", "value");
		CURL *c = httpc_pool_borrow(w->pool);
		httpc_setup(c, &(struct httpc_opts){
			.url = w->url,
			.headers = list,
			.connect_ms = 5000,
			.request_ms = 10000,
			.flow = i % 2 ? HTTPC_DOWNLOAD : HTTPC_WHOLE,
			.stall_s = 10,
			.on_header = on_header,
			.on_body = on_body,
			.ud = &a,
		});
		if (curl_easy_perform(c) == CURLE_OK && a.status == 200 && !strcmp(a.etag, "\"e1\"") &&
		    a.body.len == 2 && !memcmp(a.body.buf, "ok", 2))
			w->ok++;
		httpc_pool_give_back(w->pool, c);
		httpc_headers_free(list);
		buf_release(&a.body);
	}
	return NULL;
}

static void test_pool_threads(void)
{
	struct server s;
	struct httpc_pool pool;
	struct worker w[THREADS];
	pthread_t t[THREADS];
	char url[64];
	int ok = 0;
	if (server_start(&s)) {
		CHECK(!"loopback server");
		return;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", s.port);
	httpc_pool_init(&pool);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .pool = &pool, .url = url };
		CHECK_EQ_INT(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		ok += w[i].ok;
	}
	CHECK_EQ_INT(ok, THREADS * REQUESTS);
	/* never more handles than borrowers at once, and every one came back */
	CHECK(pool.nidle >= 1 && pool.nidle <= THREADS);
	/* each handle kept its one connection: reused, not reopened per request */
	CHECK(atomic_load(&s.nconn) >= 1 && (size_t)atomic_load(&s.nconn) <= pool.nidle);

	/* a borrower gets a pooled handle back, options reset */
	size_t before = pool.nidle;
	CURL *c = httpc_pool_borrow(&pool);
	CHECK_EQ_INT(pool.nidle, before - 1);
	httpc_pool_give_back(&pool, c);
	CHECK_EQ_INT(pool.nidle, before);

	/* closing the idle handles closes their connections, which ends the server's threads */
	httpc_pool_release(&pool);
	CHECK(pool.nidle == 0 && !pool.idle);
	server_stop(&s);
}

int main(void)
{
	test_header_parse();
	test_value_copy();
	test_parse_u64();
	test_body_add();
	test_backoff();
	httpc_global_init();
	httpc_global_init(); /* once only, whoever calls */
	test_pool_threads();
	/* the process is ending: the global state goes so that leak checkers see none of it */
	curl_global_cleanup();
	return t_done();
}
