/*
 * blob_live_more.c: the failure cases of test_blob_s3_live (included by it,
 * whose functions it uses): digest mismatches, cancels, requests cut off or
 * whose answer was lost, a store that cannot be reached, bad states.
 */

/* The multipart upload id a state names ("" for none). */
static void mpu_of(const struct buf *state, char *id, size_t size, struct buf *target)
{
	struct blob_s3_state st;
	id[0] = '\0';
	if (blob_s3_state_decode(state->buf, state->len, &st)) {
		CHECK(!"state decodes");
		return;
	}
	snprintf(id, size, "%s", st.mpu_id ? st.mpu_id : "");
	buf_reset(target);
	blob_s3_key_upload_data(st.id, target);
	blob_s3_state_release(&st);
}

/* A wrong digest at finish: refused before anything is visible; the upload goes on. */
static void test_mismatch(void)
{
	struct buf state = BUF_INIT, key = BUF_INIT, keys = BUF_INIT;
	struct digest d, wrong, sha512;
	uint64_t size = 0;
	const size_t total = 6 * MIB + 100;
	char *data = random_data(total, &d);
	digest_of(DIGEST_SHA256, "something else", 14, &wrong);
	digest_of(DIGEST_SHA512, data, total, &sha512);

	blob_s3_upload_begin(&state);
	CHECK_EQ_INT(patch("mismatch/", NULL, &state, data, 6 * MIB), 0); /* one part sent */
	CHECK_EQ_INT(put_final("mismatch/", &state, data + 6 * MIB, 100, &wrong, &key, &size),
		     E_DIGEST_INVALID);
	CHECK_EQ_INT(put_final("mismatch/", &state, data + 6 * MIB, 100, &sha512, &key, &size),
		     E_UNSUPPORTED);
	CHECK_EQ_INT(key.len, 0);
	CHECK_EQ_INT(list("mismatch/", "blobs/", &keys), 0);
	CHECK_EQ_INT(put_final("mismatch/", &state, data + 6 * MIB, 100, &d, &key, &size), 0);
	check_blob("mismatch/", key.buf, data, total);

	/* the same for a blob that would have been a single PUT */
	buf_reset(&state);
	buf_reset(&key);
	blob_s3_upload_begin(&state);
	CHECK_EQ_INT(patch("mismatch2/", NULL, &state, data, 10), 0);
	CHECK_EQ_INT(put_final("mismatch2/", &state, data + 10, 5, &wrong, &key, &size), E_DIGEST_INVALID);
	CHECK_EQ_INT(list("mismatch2/", "blobs/", &keys), 0);
	free(data);
	buf_release(&state);
	buf_release(&key);
	buf_release(&keys);
}

static void test_cancel(void)
{
	struct buf state = BUF_INIT, key = BUF_INIT, keys = BUF_INIT, target = BUF_INIT;
	struct digest d;
	struct s3_part part;
	uint64_t size;
	char mpu[BLOB_S3_MPU_ID_MAX + 1];
	char *data = random_data(12 * MIB, &d);
	blob_s3_upload_begin(&state);
	CHECK_EQ_INT(patch("cancel/", NULL, &state, data, 12 * MIB), 0); /* a part and a tail */
	CHECK_EQ_INT(list("cancel/", NULL, &keys), 1);
	mpu_of(&state, mpu, sizeof(mpu), &target);
	CHECK(mpu[0]);

	struct blob_s3 *b = node("cancel/", NULL);
	CHECK_EQ_INT(blob_s3_upload_cancel(b, state.buf, state.len), 0);
	CHECK_EQ_INT(list("cancel/", NULL, &keys), 0);
	CHECK_EQ_INT(s3_mpu_put_part(b->s3, target.buf, mpu, 2, "x", 1, NULL, &part), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(blob_s3_upload_cancel(b, state.buf, state.len), 0); /* idempotent */
	blob_s3_free(b);
	/* the old state is of an upload the store no longer has */
	CHECK_EQ_INT(patch("cancel/", NULL, &state, data, 100), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(put_final("cancel/", &state, NULL, 0, &d, &key, &size), E_BLOB_UPLOAD_UNKNOWN);
	CHECK_EQ_INT(list("cancel/", NULL, &keys), 0);

	/* an upload with only a tail */
	buf_reset(&state);
	blob_s3_upload_begin(&state);
	CHECK_EQ_INT(patch("cancel2/", NULL, &state, data, 10), 0);
	CHECK_EQ_INT(list("cancel2/", NULL, &keys), 1);
	b = node("cancel2/", NULL);
	CHECK_EQ_INT(blob_s3_upload_cancel(b, state.buf, state.len), 0);
	blob_s3_free(b);
	CHECK_EQ_INT(list("cancel2/", NULL, &keys), 0);
	free(data);
	buf_release(&state);
	buf_release(&key);
	buf_release(&keys);
	buf_release(&target);
}

/*
 * A node killed mid-PATCH (parts sent, no new state), a PATCH whose answer
 * was lost (new state never persisted), a request that sent other bytes
 * and died: each time the retry from the persisted state succeeds.
 */
static void test_interrupted(void)
{
	const size_t total = 18 * MIB;
	struct buf state = BUF_INIT, lost = BUF_INIT, key = BUF_INIT;
	struct digest d;
	uint64_t size = 0;
	char *data = random_data(total, &d);
	char *other = random_data(10 * MIB, NULL);
	blob_s3_upload_begin(&state);
	CHECK_EQ_INT(patch("cut/", NULL, &state, data, 1 * MIB), 0);

	/* killed after its first part went out: freed without commit */
	struct blob_s3 *b = node("cut/", NULL);
	struct blob_s3_upload *u = NULL;
	CHECK_EQ_INT(blob_s3_upload_open(b, state.buf, state.len, &u), 0);
	CHECK_EQ_INT(blob_s3_upload_write(u, other, 10 * MIB), 0);
	CHECK_EQ_INT(blob_s3_upload_size(u), 11 * MIB);
	blob_s3_upload_free(u);
	blob_s3_free(b);
	CHECK_EQ_INT(offset_of(&state), 1 * MIB);
	CHECK_EQ_INT(patch("cut/", NULL, &state, data + 1 * MIB, 10 * MIB), 0);

	/* committed, but the answer never reached the metadata store */
	buf_add(&lost, state.buf, state.len);
	CHECK_EQ_INT(patch("cut/", NULL, &lost, other, 3 * MIB), 0);
	CHECK_EQ_INT(patch("cut/", NULL, &state, data + 11 * MIB, 3 * MIB), 0);
	CHECK_EQ_INT(offset_of(&state), 14 * MIB);
	CHECK_EQ_INT(put_final("cut/", &state, data + 14 * MIB, total - 14 * MIB, &d, &key, &size), 0);
	CHECK_EQ_INT(size, total);
	check_blob("cut/", key.buf, data, total);
	free(data);
	free(other);
	buf_release(&state);
	buf_release(&lost);
	buf_release(&key);
}

/* A finish retried after one that stored the blob and lost its answer. */
static void test_finish_retried(void)
{
	struct buf state = BUF_INIT, k1 = BUF_INIT, k2 = BUF_INIT;
	struct digest d, d2;
	uint64_t size = 0;
	const size_t total = 7 * MIB;
	char *data = random_data(total, &d);

	/* a single PUT: found again under its digest */
	struct digest small;
	digest_of(DIGEST_SHA256, data, 150, &small);
	blob_s3_upload_begin(&state);
	CHECK_EQ_INT(patch("again/", NULL, &state, data, 100), 0);
	CHECK_EQ_INT(put_final("again/", &state, data + 100, 50, &small, &k1, &size), 0);
	CHECK_EQ_INT(put_final("again/", &state, data + 100, 50, &small, &k2, &size), 0);
	CHECK_STR(k2.buf, k1.buf);
	CHECK_EQ_INT(size, 150);

	/*
	 * A multipart upload with a tail, which the first finish deleted: found
	 * completed and read back. (Without a tail, stores differ: Swift takes
	 * the parts and the completion again, AWS answers NoSuchUpload; both
	 * end with the blob the last finish verified.)
	 */
	buf_reset(&state);
	buf_reset(&k1);
	buf_reset(&k2);
	blob_s3_upload_begin(&state);
	CHECK_EQ_INT(patch("again2/", NULL, &state, data, 6 * MIB), 0);
	CHECK_EQ_INT(patch("again2/", NULL, &state, data + 6 * MIB, 100), 0);
	CHECK_EQ_INT(put_final("again2/", &state, data + 6 * MIB + 100, 1 * MIB - 100, &d, &k1, &size), 0);
	CHECK_EQ_INT(put_final("again2/", &state, data + 6 * MIB + 100, 1 * MIB - 100, &d, &k2, &size), 0);
	CHECK_STR(k2.buf, k1.buf);
	CHECK_EQ_INT(size, total);
	/* another last MiB with its own right digest: not what was completed */
	struct hasher h;
	char *alt = random_data(1 * MIB, NULL);
	hasher_init(&h, DIGEST_SHA256);
	hasher_update(&h, data, 6 * MIB + 100);
	hasher_update(&h, alt, 1 * MIB - 100);
	hasher_final(&h, &d2);
	hasher_release(&h);
	buf_reset(&k2);
	CHECK_EQ_INT(put_final("again2/", &state, alt, 1 * MIB - 100, &d2, &k2, &size), E_BLOB_UPLOAD_UNKNOWN);
	check_blob("again2/", k1.buf, data, total);
	free(alt);
	free(data);
	buf_release(&state);
	buf_release(&k1);
	buf_release(&k2);
}

/*
 * One request that commits as it goes (a long PUT whose bytes are made
 * durable along the way), then finishes: each state it returned is one
 * another node could carry on from.
 */
static void test_one_handle(void)
{
	const size_t total = 13 * MIB + 5;
	const size_t cuts[] = { 100, 2 * MIB, 6 * MIB, 6 * MIB + 1, 11 * MIB };
	struct buf state = BUF_INIT, mid = BUF_INIT, key = BUF_INIT;
	struct digest d, dmid;
	uint64_t size = 0;
	size_t off = 0;
	char *data = random_data(total, &d);
	struct blob_s3 *b = node("handle/", NULL);
	struct blob_s3_upload *u = NULL;
	blob_s3_upload_begin(&state);
	CHECK_EQ_INT(blob_s3_upload_open(b, state.buf, state.len, &u), 0);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		CHECK_EQ_INT(blob_s3_upload_write(u, data + off, cuts[i] - off), 0);
		off = cuts[i];
		CHECK_EQ_INT(blob_s3_upload_commit(u, &state), 0);
		CHECK_EQ_INT(offset_of(&state), off);
		if (off == 6 * MIB + 1) {
			buf_add(&mid, state.buf, state.len);
			digest_of(DIGEST_SHA256, data, off, &dmid);
		}
	}
	CHECK_EQ_INT(blob_s3_upload_commit(u, &key), 0); /* nothing new: the same state */
	CHECK(key.len == state.len && !memcmp(key.buf, state.buf, key.len));
	buf_reset(&key);
	CHECK_EQ_INT(blob_s3_upload_write(u, data + off, total - off), 0);
	CHECK_EQ_INT(blob_s3_upload_finish(u, &d, &key, &size), 0);
	CHECK_EQ_INT(size, total);
	CHECK_EQ_INT(blob_s3_upload_write(u, "x", 1), E_INTERNAL); /* finished: only free is left */
	blob_s3_upload_free(u);
	blob_s3_free(b);
	check_blob("handle/", key.buf, data, total);
	/* the state from the middle still opens: its multipart upload is gone now */
	buf_reset(&key);
	CHECK_EQ_INT(put_final("handle/", &mid, NULL, 0, &dmid, &key, &size), E_BLOB_UPLOAD_UNKNOWN);
	free(data);
	buf_release(&state);
	buf_release(&mid);
	buf_release(&key);
}

/* A port nothing listens on: connections are refused at once. */
static int dead_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &len))
		abort();
	close(fd);
	return ntohs(a.sin_port);
}

static void test_store_down(void)
{
	struct buf state = BUF_INIT, before = BUF_INIT, key = BUF_INIT;
	struct digest d;
	uint64_t size = 0;
	char endpoint[64];
	const size_t total = 9 * MIB;
	char *data = random_data(total, &d);
	struct blob_s3_config down = cfg;
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", dead_port());
	down.s3.endpoint = endpoint;
	down.s3.connect_timeout_ms = 500;
	down.s3.max_attempts = 3;
	down.s3.retry_budget_ms = 1500;
	down.s3.retry_base_ms = 50;

	/* no tail yet: the part's multipart upload cannot be created */
	blob_s3_upload_begin(&state);
	buf_add(&before, state.buf, state.len);
	double t0 = now_s();
	CHECK_EQ_INT(patch("down/", &down, &state, data, 6 * MIB), E_STORE_UNAVAILABLE);
	CHECK(state.len == before.len && !memcmp(state.buf, before.buf, state.len));
	/* a tail to read back first */
	CHECK_EQ_INT(patch("down/", NULL, &state, data, 3 * MIB), 0);
	buf_reset(&before);
	buf_add(&before, state.buf, state.len);
	CHECK_EQ_INT(patch("down/", &down, &state, data + 3 * MIB, 3 * MIB), E_STORE_UNAVAILABLE);
	struct blob_s3 *b = node("down/", &down);
	CHECK_EQ_INT(blob_s3_upload_cancel(b, state.buf, state.len), E_STORE_UNAVAILABLE);
	CHECK_EQ_INT(blob_s3_stat(b, "blobs/uploaded/0123456789abcdef0123456789abcdef", &size),
		     E_STORE_UNAVAILABLE);
	blob_s3_free(b);
	double t1 = now_s();
	printf("store down: 4 calls refused in %.1fs\n", t1 - t0);
	CHECK(t1 - t0 < 10);
	CHECK(state.len == before.len && !memcmp(state.buf, before.buf, state.len));

	/* the store is back: the old state carries on */
	CHECK_EQ_INT(patch("down/", NULL, &state, data + 3 * MIB, 3 * MIB), 0);
	CHECK_EQ_INT(put_final("down/", &state, data + 6 * MIB, total - 6 * MIB, &d, &key, &size), 0);
	check_blob("down/", key.buf, data, total);
	free(data);
	buf_release(&state);
	buf_release(&before);
	buf_release(&key);
}

static void test_bad_state(void)
{
	struct buf state = BUF_INIT, a = BUF_INIT, bb = BUF_INIT;
	struct blob_s3_upload *u = NULL;
	uint64_t off;
	blob_s3_upload_begin(&state);
	CHECK_EQ_INT(patch("bad/", NULL, &state, "0123456789", 10), 0);
	struct blob_s3 *b = node("bad/", NULL);
	buf_add(&a, state.buf, state.len);
	a.buf[a.len / 2] ^= 1;
	CHECK_EQ_INT(blob_s3_upload_open(b, a.buf, a.len, &u), E_BLOB_UPLOAD_INVALID);
	CHECK(!u);
	CHECK_EQ_INT(blob_s3_upload_cancel(b, a.buf, a.len), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(blob_s3_upload_offset(a.buf, a.len, &off), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(blob_s3_upload_open(b, "garbage", 7, &u), E_BLOB_UPLOAD_INVALID);
	blob_s3_free(b);

	/* two requests from one state (the caller failed to serialise them): the first one's state is stale */
	buf_reset(&a);
	buf_add(&a, state.buf, state.len);
	buf_add(&bb, state.buf, state.len);
	CHECK_EQ_INT(patch("bad/", NULL, &a, "aaaa", 4), 0);
	CHECK_EQ_INT(patch("bad/", NULL, &bb, "bbbb", 4), 0);
	CHECK_EQ_INT(patch("bad/", NULL, &a, "x", 1), E_BLOB_UPLOAD_INVALID);
	CHECK_EQ_INT(patch("bad/", NULL, &bb, "x", 1), 0);
	CHECK_EQ_INT(offset_of(&bb), 15);
	buf_release(&state);
	buf_release(&a);
	buf_release(&bb);
}
