/* clock: wall and monotonic time, shiftable in test builds. */
#include "clock.h"

#include <stdlib.h>

#ifdef BERTH_TEST_HOOKS
#include <pthread.h>
#include <stdatomic.h>

static atomic_int_fast64_t offset_ms;
static pthread_once_t offset_once = PTHREAD_ONCE_INIT;

static void offset_init(void)
{
	const char *s = getenv("BERTH_TEST_CLOCK_OFFSET");
	if (s && *s)
		atomic_store(&offset_ms, (int_fast64_t)strtoll(s, NULL, 10) * 1000);
}

static int64_t offset(void)
{
	pthread_once(&offset_once, offset_init);
	return (int64_t)atomic_load(&offset_ms);
}

void clock_test_advance(int64_t ms)
{
	pthread_once(&offset_once, offset_init);
	atomic_fetch_add(&offset_ms, (int_fast64_t)ms);
}
#else
static int64_t offset(void)
{
	return 0;
}
#endif

int64_t clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + offset();
}

time_t clock_wall_s(void)
{
	return (time_t)(clock_wall_ms() / 1000);
}

uint64_t clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + (uint64_t)offset() * 1000000u;
}
