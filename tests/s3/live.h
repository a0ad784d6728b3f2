/*
 * live.h: what the live S3 test programs share: the engine's settings from
 * the environment (tests/engines/run-s3-tests exports them), a random
 * prefix per run, a clock, and a plain libcurl GET for presigned URLs.
 * Header-only (static functions), included by each program once.
 */
#ifndef BERTH_TESTS_S3_LIVE_H
#define BERTH_TESTS_S3_LIVE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "buf.h"
#include "rand.h"
#include "s3.h"

static inline double live_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Fills cfg from S3_ENDPOINT, S3_REGION, S3_BUCKET, S3_PATH_STYLE,
 * S3_CA_FILE and the AWS_* keys (the strings stay the environment's), and
 * prefix with "<tag>-<random>/". Returns 0, or 77 (meson's "skipped")
 * with a message when the engine's settings are missing.
 */
static inline int live_config(struct s3_config *cfg, const char *tag, char *prefix, size_t size)
{
	const char *ep = getenv("S3_ENDPOINT");
	unsigned char rnd[4];
	if (!ep || !*ep || !getenv("AWS_ACCESS_KEY_ID") || !getenv("AWS_SECRET_ACCESS_KEY")) {
		printf("S3_ENDPOINT/AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set: "
		       "run tests/engines/run-s3-tests\n");
		return 77;
	}
	memset(cfg, 0, sizeof(*cfg));
	cfg->endpoint = ep;
	cfg->region = getenv("S3_REGION") ? getenv("S3_REGION") : "us-east-1";
	cfg->bucket = getenv("S3_BUCKET") ? getenv("S3_BUCKET") : "berth-test";
	cfg->path_style = !getenv("S3_PATH_STYLE") || strcmp(getenv("S3_PATH_STYLE"), "0");
	cfg->access_key = getenv("AWS_ACCESS_KEY_ID");
	cfg->secret_key = getenv("AWS_SECRET_ACCESS_KEY");
	cfg->ca_file = getenv("S3_CA_FILE");
	rand_bytes(rnd, sizeof(rnd));
	snprintf(prefix, size, "%s-%02x%02x%02x%02x/", tag, rnd[0], rnd[1], rnd[2], rnd[3]);
	printf("endpoint %s, bucket %s, prefix %s\n", cfg->endpoint, cfg->bucket, prefix);
	return 0;
}

static inline size_t live_curl_to_buf(char *data, size_t size, size_t nmemb, void *ud)
{
	buf_add(ud, data, size * nmemb);
	return size * nmemb;
}

/* GETs url with plain libcurl (no signing of ours) into out; returns the status, 0 on failure. */
static inline long live_plain_get(const char *url, struct buf *out)
{
	CURL *c = curl_easy_init();
	long status = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, live_curl_to_buf);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status;
}

#endif
