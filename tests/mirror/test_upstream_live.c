/*
 * The upstream client (mirror/upstream.h) against real registries on
 * loopback, started by tests/engines/run-mirror-tests (tests/mirror/
 * upstreams.py): berth with the token flow, distribution 2.8 with htpasswd,
 * and a server that lies (tests/mirror/liar.py). Without their environment
 * (MIRROR_BERTH_URL, ...) the test skips itself (77).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "t.h"
#include "upstream.h"

#define FLAKY_SIZE (300 * 1024)

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static char *read_line(const char *path)
{
	char line[512] = "";
	FILE *f = fopen(path, "r");
	if (!f || !fgets(line, sizeof(line), f)) {
		perror(path);
		exit(1);
	}
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	return strdup(line);
}

/* A client for url; user and pwfile may be NULL (anonymous). */
static struct upstream *client(const char *name, const char *url, const char *user, const char *pwfile)
{
	struct config_upstream cfg = { .name = (char *)name, .url = (char *)url, .prefix = "up/",
				       .username = (char *)user };
	struct upstream *u = NULL;
	if (pwfile) {
		cfg.password.value = read_line(pwfile);
		cfg.password.from = CONFIG_SECRET_FILE;
	}
	CHECK_EQ_INT(upstream_open(&cfg, NULL, &u), 0);
	free(cfg.password.value);
	return u;
}

/* What a blob's sink saw. */
struct got {
	struct hasher h;
	size_t bytes, calls, max_chunk;
	int stop_after; /* > 0: refuse the call after this many */
};

static int sink(void *ctx, const void *data, size_t len)
{
	struct got *g = ctx;
	if (g->stop_after && g->calls >= (size_t)g->stop_after)
		return -1;
	hasher_update(&g->h, data, len);
	g->bytes += len;
	g->calls++;
	if (len > g->max_chunk)
		g->max_chunk = len;
	return 0;
}

static size_t to_buf(char *data, size_t size, size_t nmemb, void *ud)
{
	buf_add(ud, data, size * nmemb);
	return size * nmemb;
}

/* A plain GET of url's body (the upstream's metrics, the liar's counters). */
static void fetch(const char *url, struct buf *out)
{
	CURL *c = curl_easy_init();
	buf_reset(out);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, to_buf);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	CHECK_EQ_INT(curl_easy_perform(c), CURLE_OK);
	curl_easy_cleanup(c);
}

/* Tokens the berth upstream issued so far (its /metrics). */
static long berth_tokens(void)
{
	struct buf url = BUF_INIT, out = BUF_INIT;
	const char *key = "berth_token_requests_total{result=\"issued\"} ", *p;
	long n = -1;
	buf_addf(&url, "%s/metrics", env("MIRROR_BERTH_URL"));
	fetch(url.buf, &out);
	if ((p = strstr(out.buf, key)))
		n = strtol(p + strlen(key), NULL, 10);
	buf_release(&url);
	buf_release(&out);
	return n;
}

static long liar_count(const char *what)
{
	struct buf url = BUF_INIT, out = BUF_INIT;
	json_t *root;
	long n;
	buf_addf(&url, "%s/_counts", env("MIRROR_LIAR_URL"));
	fetch(url.buf, &out);
	root = json_loads(out.buf, 0, NULL);
	n = (long)json_integer_value(json_object_get(root, what));
	json_decref(root);
	buf_release(&url);
	buf_release(&out);
	return n;
}

/* Fetches blob d (size) of remote into a sink and checks what arrived. */
static void check_blob(struct upstream *u, const char *remote, const char *digest, int64_t size)
{
	struct upstream_blob_req req = { .remote = remote, .size = size };
	struct upstream_error e;
	struct got g = { 0 };
	struct digest seen;
	int64_t total = -1;
	CHECK_EQ_INT(digest_parse(digest, &req.digest), 0);
	hasher_init(&g.h, req.digest.alg);
	CHECK_EQ_INT(upstream_blob_get(u, &req, sink, &g, &total, &e), 0);
	CHECK_EQ_INT(total, size);
	CHECK_EQ_INT(g.bytes, size);
	hasher_final(&g.h, &seen);
	CHECK(digest_eq(&seen, &req.digest));
	/* streamed: a large blob arrives in many pieces, never one buffer */
	if (size > 1024 * 1024)
		CHECK(g.calls > 1 && g.max_chunk <= 512 * 1024);
	hasher_release(&g.h);
}

/*
 * The fixture through u: the index "v1" by tag (HEAD and GET), each child
 * by digest, every blob of the first child streamed. Returns the requests it made.
 */
static int pull_fixture(struct upstream *u, const char *remote)
{
	struct upstream_manifest idx, m, head;
	struct upstream_error e;
	char d[DIGEST_STR_MAX];
	json_t *root, *children, *child;
	size_t i;
	int ops = 0;
	upstream_manifest_init(&idx);
	upstream_manifest_init(&m);
	upstream_manifest_init(&head);
	CHECK_EQ_INT(upstream_manifest_head(u, remote, "v1", &head, &e), 0);
	CHECK_EQ_INT(upstream_manifest_get(u, remote, "v1", &idx, &e), 0);
	ops += 2;
	CHECK_STR(idx.media_type, "application/vnd.oci.image.index.v1+json");
	CHECK(head.has_digest && digest_eq(&head.digest, &idx.digest));
	CHECK_EQ_INT(head.size, idx.body.len);
	root = json_loadb(idx.body.buf, idx.body.len, 0, NULL);
	children = json_object_get(root, "manifests");
	CHECK_EQ_INT(json_array_size(children), 2);
	json_array_foreach(children, i, child) {
		const char *cd = json_string_value(json_object_get(child, "digest"));
		CHECK_EQ_INT(upstream_manifest_get(u, remote, cd, &m, &e), 0);
		ops++;
		CHECK_STR(digest_str(&m.digest, d), cd);
		CHECK_STR(m.media_type, "application/vnd.oci.image.manifest.v1+json");
		if (i == 0) {
			json_t *mroot = json_loadb(m.body.buf, m.body.len, 0, NULL), *layer;
			size_t j;
			json_array_foreach(json_object_get(mroot, "layers"), j, layer) {
				check_blob(u, remote, json_string_value(json_object_get(layer, "digest")),
					   json_integer_value(json_object_get(layer, "size")));
				ops++;
			}
			json_decref(mroot);
		}
	}
	json_decref(root);
	/* the Docker image: its own media type */
	CHECK_EQ_INT(upstream_manifest_get(u, remote, "docker", &m, &e), 0);
	ops++;
	CHECK_STR(m.media_type, "application/vnd.docker.distribution.manifest.v2+json");
	upstream_manifest_release(&idx);
	upstream_manifest_release(&m);
	upstream_manifest_release(&head);
	return ops;
}

static void test_berth_token_flow(void)
{
	struct upstream *anon = client("anon", env("MIRROR_BERTH_URL"), NULL, NULL);
	struct upstream *auth = client("auth", env("MIRROR_BERTH_URL"), env("MIRROR_BERTH_USER"),
				       env("MIRROR_BERTH_PWFILE"));
	struct upstream_manifest m;
	struct upstream_error e;
	struct upstream_stats st;
	struct buf text = BUF_INIT;
	long t0 = berth_tokens(), t1, t2;
	int ops;
	upstream_manifest_init(&m);

	/* anonymous, where the upstream allows it */
	pull_fixture(anon, "pub/app");
	CHECK_EQ_INT(upstream_manifest_get(anon, "priv/app", "v1", &m, &e), E_DENIED);
	CHECK_EQ_INT(e.kind, UPSTREAM_DENIED);
	CHECK_EQ_INT(e.status, 401);
	upstream_error_describe(anon, &e, &text);
	CHECK(strstr(text.buf, "answered 401") != NULL);
	fprintf(stderr, "anonymous, private repository: %s\n", text.buf);

	/* with credentials: one token for the repository, reused by every later request */
	t1 = berth_tokens();
	ops = pull_fixture(auth, "priv/app");
	t2 = berth_tokens();
	upstream_stats(auth, &st);
	fprintf(stderr, "credentials: %d operations, %ld tokens issued, %llu reused\n", ops, t2 - t1,
		(unsigned long long)st.token_reuses);
	CHECK(t0 >= 0 && t1 > t0);
	CHECK_EQ_INT(t2 - t1, 1);
	CHECK_EQ_INT(st.token_requests, 1);
	CHECK(st.token_reuses >= (uint64_t)ops - 1);
	/* a second repository is a second scope: one more token */
	pull_fixture(auth, "pub/app");
	CHECK_EQ_INT(berth_tokens() - t2, 1);

	/* 404s */
	CHECK_EQ_INT(upstream_manifest_get(auth, "priv/app", "nope", &m, &e), E_MANIFEST_UNKNOWN);
	CHECK_EQ_INT(e.kind, UPSTREAM_NOT_FOUND);
	CHECK_EQ_INT(e.status, 404);
	CHECK_STR(e.code, "MANIFEST_UNKNOWN");
	CHECK_EQ_INT(upstream_manifest_head(auth, "priv/app", "nope", &m, &e), E_MANIFEST_UNKNOWN);
	CHECK_EQ_INT(e.kind, UPSTREAM_NOT_FOUND);
	struct upstream_blob_req req = { .remote = "priv/app", .size = -1 };
	struct got g = { 0 };
	digest_of(DIGEST_SHA256, "absent", 6, &req.digest);
	hasher_init(&g.h, DIGEST_SHA256);
	CHECK_EQ_INT(upstream_blob_get(auth, &req, sink, &g, NULL, &e), E_BLOB_UNKNOWN);
	CHECK_EQ_INT(e.kind, UPSTREAM_NOT_FOUND);
	CHECK_EQ_INT(g.bytes, 0);
	hasher_release(&g.h);

	/* wrong password: the token service refuses */
	char pw[] = "/tmp/berth-mirror-wrong-XXXXXX";
	int fd = mkstemp(pw);
	CHECK(fd >= 0 && write(fd, "wrong\n", 6) == 6);
	close(fd);
	struct upstream *bad = client("bad", env("MIRROR_BERTH_URL"), "mirror", pw);
	CHECK_EQ_INT(upstream_manifest_get(bad, "priv/app", "v1", &m, &e), E_DENIED);
	CHECK_EQ_INT(e.kind, UPSTREAM_DENIED);
	unlink(pw);
	upstream_free(bad);
	upstream_manifest_release(&m);
	buf_release(&text);
	upstream_free(anon);
	upstream_free(auth);
}

static void test_distribution_basic(void)
{
	struct upstream *auth = client("dist", env("MIRROR_DIST_URL"), env("MIRROR_DIST_USER"), env("MIRROR_DIST_PWFILE"));
	struct upstream *anon = client("dist-anon", env("MIRROR_DIST_URL"), NULL, NULL);
	struct upstream_manifest m;
	struct upstream_error e;
	struct upstream_stats st;
	int ops;
	upstream_manifest_init(&m);
	ops = pull_fixture(auth, "app");
	upstream_stats(auth, &st);
	/* one 401 taught it Basic; every later request carried it up front */
	CHECK_EQ_INT(st.requests, (uint64_t)ops + 1);
	CHECK_EQ_INT(st.token_requests, 0);
	CHECK_EQ_INT(upstream_manifest_get(anon, "app", "v1", &m, &e), E_DENIED);
	CHECK_EQ_INT(e.status, 401);
	CHECK_EQ_INT(upstream_manifest_get(auth, "app", "nope", &m, &e), E_MANIFEST_UNKNOWN);
	CHECK_EQ_INT(e.status, 404);
	upstream_manifest_release(&m);
	upstream_free(auth);
	upstream_free(anon);
}

static void test_liar(void)
{
	struct upstream *u = client("liar", env("MIRROR_LIAR_URL"), NULL, NULL);
	struct upstream_manifest m;
	struct upstream_error e;
	struct upstream_stats st0, st1;
	struct buf text = BUF_INIT;
	unsigned char *flaky = malloc(FLAKY_SIZE);
	char d[DIGEST_STR_MAX];
	long tokens;
	upstream_manifest_init(&m);

	/* a forged Docker-Content-Digest, and bytes that are not the digest asked for */
	CHECK_EQ_INT(upstream_manifest_get(u, "lie", "latest", &m, &e), E_STORE);
	CHECK_EQ_INT(e.kind, UPSTREAM_BAD_ANSWER);
	CHECK(strstr(e.message, "the upstream named") != NULL);
	CHECK(m.body.len == 0);
	digest_of(DIGEST_SHA256, "x", 1, &m.digest);
	CHECK_EQ_INT(upstream_manifest_get(u, "lie", digest_str(&m.digest, d), &m, &e), E_STORE);
	CHECK(strstr(e.message, "not the sha256:") != NULL);
	CHECK_EQ_INT(upstream_manifest_head(u, "lie", d, &m, &e), E_STORE);

	struct upstream_blob_req req = { .remote = "lie", .size = -1 };
	struct got g = { 0 };
	digest_of(DIGEST_SHA256, "x", 1, &req.digest);
	hasher_init(&g.h, DIGEST_SHA256);
	CHECK_EQ_INT(upstream_blob_get(u, &req, sink, &g, NULL, &e), E_STORE);
	CHECK(strstr(e.message, "the blob's bytes are") != NULL);
	hasher_release(&g.h);
	/* more bytes than the descriptor's size: stopped early */
	req.size = 10;
	hasher_init(&g.h, DIGEST_SHA256);
	g.bytes = 0;
	CHECK_EQ_INT(upstream_blob_get(u, &req, sink, &g, NULL, &e), E_STORE);
	CHECK_EQ_INT(e.kind, UPSTREAM_BAD_ANSWER);
	CHECK(g.bytes <= 10);
	hasher_release(&g.h);

	/* 429 with Retry-After, 500 with a message */
	CHECK_EQ_INT(upstream_manifest_get(u, "busy", "latest", &m, &e), E_TOOMANYREQUESTS);
	CHECK_EQ_INT(e.kind, UPSTREAM_RATE_LIMITED);
	CHECK_EQ_INT(e.status, 429);
	CHECK_EQ_INT(e.retry_after_s, 7);
	CHECK_STR(e.code, "TOOMANYREQUESTS");
	upstream_error_describe(u, &e, &text);
	buf_addch(&text, '|');
	CHECK_EQ_INT(upstream_manifest_get(u, "broken", "latest", &m, &e), E_STORE_UNAVAILABLE);
	CHECK_EQ_INT(e.kind, UPSTREAM_SERVER);
	CHECK_EQ_INT(e.status, 500);
	upstream_error_describe(u, &e, &text);
	buf_addch(&text, '|');
	fprintf(stderr, "%s\n", text.buf);
	CHECK(strstr(text.buf, "answered 429 TOOMANYREQUESTS: slow down, please (retry after 7s)|") != NULL);
	CHECK(strstr(text.buf, "answered 500 UNKNOWN: the disk is on fire|") != NULL);

	/* a blob cut off halfway: resumed with Range, verified whole */
	for (size_t i = 0; i < FLAKY_SIZE; i++)
		flaky[i] = (unsigned char)(i * 7 % 251);
	req = (struct upstream_blob_req){ .remote = "flaky", .size = FLAKY_SIZE };
	digest_of(DIGEST_SHA256, flaky, FLAKY_SIZE, &req.digest);
	upstream_stats(u, &st0);
	check_blob(u, "flaky", digest_str(&req.digest, d), FLAKY_SIZE);
	upstream_stats(u, &st1);
	CHECK_EQ_INT(st1.requests - st0.requests, 2);
	CHECK_EQ_INT(liar_count("flaky"), 2);

	/* resuming from what the caller holds, from a server that ignores Range */
	struct hasher held;
	int64_t total = 0;
	hasher_init(&held, DIGEST_SHA256);
	hasher_update(&held, flaky, 1000);
	req = (struct upstream_blob_req){ .remote = "norange", .size = FLAKY_SIZE, .offset = 1000, .held = &held };
	digest_of(DIGEST_SHA256, flaky, FLAKY_SIZE, &req.digest);
	memset(&g, 0, sizeof(g));
	hasher_init(&g.h, DIGEST_SHA256);
	CHECK_EQ_INT(upstream_blob_get(u, &req, sink, &g, &total, &e), 0);
	CHECK_EQ_INT(g.bytes, FLAKY_SIZE - 1000);
	CHECK_EQ_INT(total, FLAKY_SIZE);
	hasher_release(&g.h);
	/* the receiver stops: E_IO, nothing verified */
	memset(&g, 0, sizeof(g));
	g.stop_after = 1;
	hasher_init(&g.h, DIGEST_SHA256);
	req.offset = 0;
	req.held = NULL;
	CHECK_EQ_INT(upstream_blob_get(u, &req, sink, &g, NULL, &e), E_IO);
	CHECK_EQ_INT(e.kind, UPSTREAM_STOPPED);
	hasher_release(&g.h);
	hasher_release(&held);

	/* the token flow with an awkward challenge; tokens reused until they expire (2 s) */
	tokens = liar_count("token");
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(upstream_manifest_get(u, "tok", "latest", &m, &e), 0);
	CHECK_EQ_INT(liar_count("token") - tokens, 1);
	usleep(2200 * 1000);
	CHECK_EQ_INT(upstream_manifest_get(u, "tok", "latest", &m, &e), 0);
	CHECK_EQ_INT(liar_count("token") - tokens, 2);

	free(flaky);
	buf_release(&text);
	upstream_manifest_release(&m);
	upstream_free(u);
}

static void test_down(void)
{
	struct upstream *u = client("down", env("MIRROR_DOWN_URL"), NULL, NULL);
	struct upstream_manifest m;
	struct upstream_error e;
	struct buf text = BUF_INIT;
	struct timespec a, b;
	upstream_manifest_init(&m);
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK_EQ_INT(upstream_manifest_get(u, "any", "latest", &m, &e), E_STORE_UNAVAILABLE);
	clock_gettime(CLOCK_MONOTONIC, &b);
	CHECK_EQ_INT(e.kind, UPSTREAM_DOWN);
	CHECK_EQ_INT(e.status, 0);
	/* refused is down at once: no retries, no backoff */
	CHECK((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 1000);
	upstream_error_describe(u, &e, &text);
	fprintf(stderr, "%s\n", text.buf);
	CHECK(strstr(text.buf, "is down: ") != NULL);
	buf_release(&text);
	upstream_manifest_release(&m);
	upstream_free(u);
}

int main(void)
{
	if (!env("MIRROR_BERTH_URL") || !env("MIRROR_DIST_URL") || !env("MIRROR_LIAR_URL") || !env("MIRROR_DOWN_URL")) {
		fprintf(stderr, "no upstreams (run tests/engines/run-mirror-tests): skipped\n");
		return 77;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_berth_token_flow();
	test_distribution_basic();
	test_liar();
	test_down();
	curl_global_cleanup();
	return t_done();
}
