/* httpc: the libcurl handle pool, request options, header cutting and retry timing of the outgoing clients. */
#include "httpc.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rand.h"
#include "xalloc.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_start(void)
{
	/* never undone: handles may outlive any one client */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		die("curl_global_init failed");
}

void httpc_global_init(void)
{
	pthread_once(&curl_once, curl_start);
}

/* ---- the pool ---- */

void httpc_pool_init(struct httpc_pool *p)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
}

void httpc_pool_release(struct httpc_pool *p)
{
	for (size_t i = 0; i < p->nidle; i++)
		curl_easy_cleanup(p->idle[i]);
	free(p->idle);
	pthread_mutex_destroy(&p->lock);
	p->idle = NULL;
	p->nidle = p->alloc = 0;
}

CURL *httpc_pool_borrow(struct httpc_pool *p)
{
	CURL *c = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->nidle)
		c = p->idle[--p->nidle];
	pthread_mutex_unlock(&p->lock);
	if (!c && !(c = curl_easy_init()))
		die("curl_easy_init failed");
	return c;
}

void httpc_pool_give_back(struct httpc_pool *p, CURL *c)
{
	/* options (credentials among them) go, the connection cache stays */
	curl_easy_reset(c);
	pthread_mutex_lock(&p->lock);
	p->idle = xgrow(p->idle, &p->alloc, p->nidle, sizeof(*p->idle));
	p->idle[p->nidle++] = c;
	pthread_mutex_unlock(&p->lock);
}

/* ---- requests ---- */

void httpc_setup(CURL *c, const struct httpc_opts *o)
{
	curl_easy_setopt(c, CURLOPT_URL, o->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, o->headers);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_ms);
	if (o->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
	if (o->flow == HTTPC_WHOLE) {
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->request_ms);
	} else {
		/* data moves: bounded by progress, not by a total that a large object would exceed */
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->stall_s);
		/* larger chunks than curl's 16 KiB: fewer callbacks and syscalls per MiB */
		if (o->flow == HTTPC_DOWNLOAD)
			curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);
		else
			curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
	}
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, o->on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, o->ud);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, o->on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, o->ud);
}

int httpc_broke(CURLcode cc)
{
	return cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING ||
	       cc == CURLE_PARTIAL_FILE || cc == CURLE_HTTP2 || cc == CURLE_HTTP2_STREAM;
}

struct curl_slist *httpc_header_add(struct curl_slist *l, const char *name, const char *value)
{
	struct buf h = BUF_INIT;
	struct curl_slist *n;
	buf_addf(&h, "%s: %s", name, value);
	n = curl_slist_append(l, h.buf);
	explicit_bzero(h.buf, h.len);
	buf_release(&h);
	if (!n)
		die("out of memory");
	return n;
}

void httpc_headers_free(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		explicit_bzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

/* ---- answers ---- */

int httpc_header_parse(const char *data, size_t n, char *line, size_t cap, struct httpc_header *h)
{
	char *colon, *sp;
	h->status = -1;
	h->name = h->value = NULL;
	if (n >= cap)
		return -1;
	memcpy(line, data, n);
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (!strncmp(line, "HTTP/", 5)) {
		sp = strchr(line, ' ');
		h->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		return 0;
	}
	if (!(colon = strchr(line, ':')))
		return -1;
	*colon = '\0';
	h->name = line;
	h->value = colon + 1 + strspn(colon + 1, " \t");
	return 0;
}

int httpc_value_copy(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		return -1;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

int httpc_parse_u64(const char *s, const char *stops, uint64_t *out)
{
	char *end;
	unsigned long long v;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || (*end && !isspace((unsigned char)*end) && !strchr(stops, *end)))
		return -1;
	*out = v;
	return 0;
}

int httpc_body_add(struct buf *body, const char *data, size_t n, size_t max)
{
	if (body->len > max || n > max - body->len)
		return -1;
	buf_add(body, data, n);
	return 0;
}

/* ---- retry timing ---- */

long httpc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void httpc_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

long httpc_backoff_ms(const struct httpc_backoff *b, int retry)
{
	long cap = b->base_ms;
	uint32_t r;
	/* stops doubling at the ceiling, so no retry count overflows it */
	for (int i = 0; i < retry && cap < b->max_ms; i++)
		cap *= 2;
	if (cap > b->max_ms)
		cap = b->max_ms;
	if (cap <= 0)
		return 0;
	rand_bytes(&r, sizeof(r));
	return (long)(r % ((uint32_t)cap + 1));
}

int httpc_backoff_wait(const struct httpc_backoff *b, long start_ms, int retry)
{
	long wait = httpc_backoff_ms(b, retry);
	if (httpc_now_ms() - start_ms + wait > b->budget_ms)
		return -1;
	httpc_sleep_ms(wait);
	return 0;
}
