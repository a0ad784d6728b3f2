/* Unit tests for common/rand. */
#include <stdlib.h>
#include <string.h>

#include "rand.h"
#include "t.h"

/* The kernel hands out at most 32 MiB - 1 per getrandom() call. */
#define PAST_ONE_CALL ((size_t)33554431 + 4096)

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

int main(void)
{
	unsigned char a[32] = { 0 }, b[32] = { 0 }, guard[8];
	size_t seen[256] = { 0 }, missing = 0;

	/* n == 0 writes nothing, not even through a NULL pointer */
	rand_bytes(NULL, 0);
	memset(guard, 0x5a, sizeof(guard));
	rand_bytes(guard, 0);
	CHECK(guard[0] == 0x5a && guard[7] == 0x5a);

	/* two draws differ (a 2^-256 chance of a false failure) */
	rand_bytes(a, sizeof(a));
	rand_bytes(b, sizeof(b));
	CHECK(!all_zero(a, sizeof(a)));
	CHECK(memcmp(a, b, sizeof(a)) != 0);

	/* only the bytes asked for are written */
	memset(guard, 0, sizeof(guard));
	rand_bytes(guard, 4);
	CHECK(all_zero(guard + 4, 4));

	/*
	 * More than one getrandom() call can return: the loop must fill the
	 * whole buffer, so every byte value shows up in the first MiB and the
	 * last page is not left as calloc gave it.
	 */
	unsigned char *big = calloc(1, PAST_ONE_CALL);
	CHECK(big != NULL);
	if (big) {
		rand_bytes(big, PAST_ONE_CALL);
		for (size_t i = 0; i < (size_t)1 << 20; i++)
			seen[big[i]]++;
		for (size_t v = 0; v < 256; v++)
			missing += !seen[v];
		CHECK_EQ_INT(missing, 0);
		CHECK(!all_zero(big + PAST_ONE_CALL - 4096, 4096));
		free(big);
	}
	return t_done();
}
