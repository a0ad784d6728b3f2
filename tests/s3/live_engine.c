/*
 * live_engine.c: the part of test_s3_live that measures the engine and
 * takes it away (included by test_s3_live.c, whose helpers it uses).
 */

static size_t count_only(char *data, size_t size, size_t nmemb, void *ud)
{
	(void)data;
	*(uint64_t *)ud += size * nmemb;
	return size * nmemb;
}

static int count_sink(void *ctx, const void *data, size_t len)
{
	(void)data;
	*(uint64_t *)ctx += len;
	return 0;
}

/*
 * One large object through the client, PUT from a file and GET into a
 * counting sink, beside a GET of the same object by plain libcurl from a
 * presigned URL (the engine with no client of ours in the way). Printed,
 * not asserted: a figure for the docs, not a timed test.
 */
static void test_throughput(void)
{
	const char *mb = getenv("S3_BENCH_MIB");
	size_t n = (size_t)(mb ? atoi(mb) : 64) * 1024 * 1024;
	struct s3 *s = client("bench/", NULL);
	char sha[65];
	int fd = scratch_file(n, sha, NULL);
	uint64_t got = 0, plain = 0;
	struct buf url = BUF_INIT;
	double t0 = now_s();
	CHECK_EQ_INT(s3_put_fd(s, "large", fd, 0, n, sha), 0);
	double put = now_s() - t0, get = 1e9, direct = 1e9;
	CHECK_EQ_INT(s3_presign_get(s, "large", 60, &url), 0);
	/* alternated, best of two each: the first read of an object is the slow one */
	for (int round = 0; round < 2; round++) {
		double t1 = now_s();
		got = 0;
		CHECK_EQ_INT(s3_get(s, "large", 0, UINT64_MAX, count_sink, &got, NULL), 0);
		double t2 = now_s();
		CHECK_EQ_INT(got, n);
		CURL *c = curl_easy_init();
		plain = 0;
		curl_easy_setopt(c, CURLOPT_URL, url.buf);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, count_only);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &plain);
		CHECK(curl_easy_perform(c) == CURLE_OK);
		double t3 = now_s();
		curl_easy_cleanup(c);
		CHECK_EQ_INT(plain, n);
		get = t2 - t1 < get ? t2 - t1 : get;
		direct = t3 - t2 < direct ? t3 - t2 : direct;
	}
	printf("throughput: %zu MiB object: PUT %.0f MB/s, GET %.0f MB/s through the client; "
	       "GET %.0f MB/s by plain libcurl (presigned)\n", n >> 20, (double)n / 1e6 / put,
	       (double)n / 1e6 / get, (double)n / 1e6 / direct);
	CHECK_EQ_INT(s3_delete(s, "large"), 0);
	buf_release(&url);
	close(fd);
	s3_free(s);
}

/* The pid recorded for name in $S3_ENGINE_DIR/pids, or -1. */
static pid_t engine_pid(const char *name)
{
	char path[512], line[128], who[64];
	int pid;
	pid_t found = -1;
	snprintf(path, sizeof(path), "%s/pids", getenv("S3_ENGINE_DIR"));
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %d", who, &pid) == 2 && !strcmp(who, name))
			found = pid;
	fclose(f);
	return found;
}

/* Runs the engine script with verb; in the background when wait is 0 (returns the pid). */
static pid_t engine(const char *verb, int wait)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execl(getenv("S3_ENGINE"), getenv("S3_ENGINE"), verb, getenv("S3_ENGINE_DIR"), (char *)NULL);
		_exit(127);
	}
	if (pid > 0 && wait) {
		int st = 0;
		waitpid(pid, &st, 0);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	return pid;
}

static void test_engine_down(void)
{
	if (!getenv("S3_ENGINE") || !getenv("S3_ENGINE_DIR")) {
		printf("S3_ENGINE/S3_ENGINE_DIR not set: the tests of a store that is down are skipped\n");
		return;
	}
	struct s3_config quick = cfg;
	quick.request_timeout_ms = 1000;
	quick.stall_timeout_s = 1;
	quick.max_attempts = 3;
	quick.retry_budget_ms = 3000;
	struct s3 *s = client("down/", &quick);
	struct buf got = BUF_INIT;
	CHECK_EQ_INT(s3_put(s, "before", "kept", 4, NULL), 0);

	/* a proxy that accepts and never answers: timeouts, then a clear error */
	pid_t proxy = engine_pid("proxy");
	CHECK(proxy > 0);
	if (proxy > 0) {
		kill(proxy, SIGSTOP);
		double t0 = now_s();
		CHECK_EQ_INT(s3_head(s, "before", NULL), E_STORE_UNAVAILABLE);
		CHECK_EQ_INT(s3_get(s, "before", 0, UINT64_MAX, to_buf, &got, NULL), E_STORE_UNAVAILABLE);
		double t1 = now_s();
		printf("frozen store: 2 calls failed in %.1fs, %d attempts, curl code %d (%s)\n", t1 - t0,
		       s3_last_error()->attempts, s3_last_error()->curl_code, s3_last_error()->message);
		CHECK(t1 - t0 < 12);
		CHECK(s3_last_error()->attempts >= 2);
		CHECK_EQ_INT(s3_last_error()->curl_code, CURLE_OPERATION_TIMEDOUT);
		kill(proxy, SIGCONT);
		CHECK_EQ_INT(s3_head(s, "before", NULL), 0);
	}

	/* a stopped engine: connection refused, bounded by the retry budget */
	engine("stop", 1);
	double t0 = now_s();
	CHECK_EQ_INT(s3_head(s, "before", NULL), E_STORE_UNAVAILABLE);
	double t1 = now_s();
	printf("stopped store: failed in %.1fs after %d attempts: %s\n", t1 - t0,
	       s3_last_error()->attempts, s3_last_error()->message);
	CHECK(t1 - t0 < 5);
	CHECK_EQ_INT(s3_last_error()->http_status, 0);
	CHECK_EQ_INT(s3_last_error()->curl_code, CURLE_COULDNT_CONNECT);

	/* started again while a patient client retries: the call goes through */
	struct s3_config patient = cfg;
	patient.max_attempts = 1000;
	patient.retry_budget_ms = 120000;
	patient.retry_base_ms = 200;
	struct s3 *p = client("down/", &patient);
	pid_t starter = engine("start", 0);
	t0 = now_s();
	CHECK_EQ_INT(s3_put(p, "after", "back", 4, NULL), 0);
	printf("restarted store: PUT went through after %.1fs and %d attempts\n", now_s() - t0,
	       s3_last_error()->attempts);
	buf_reset(&got);
	CHECK_EQ_INT(s3_get(p, "before", 0, UINT64_MAX, to_buf, &got, NULL), 0);
	CHECK_STR(got.buf, "kept");
	int st = 0;
	if (starter > 0)
		waitpid(starter, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	buf_release(&got);
	s3_free(p);
	s3_free(s);
}
