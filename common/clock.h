/*
 * clock: the program's one source of wall-clock and monotonic time.
 *
 * Everything that compares times against windows, TTLs or expiries (rate
 * limits, upload TTLs, token expiry, GC ages, credential caches) asks here,
 * so that a test build can move time forward without the tests sleeping.
 *
 * In a build configured with -Dtest_hooks=true, both clocks carry an
 * offset: it starts from the environment variable BERTH_TEST_CLOCK_OFFSET
 * (seconds, read once at first use) and clock_test_advance() adds to it.
 * In any other build the offset does not exist and clock_test_advance() is
 * not compiled. Owns no memory. Thread-safe.
 */
#ifndef BERTH_CLOCK_H
#define BERTH_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch. */
int64_t clock_wall_ms(void);
/* Seconds since the Unix epoch (clock_wall_ms() / 1000). */
time_t clock_wall_s(void);
/* Nanoseconds of CLOCK_MONOTONIC, for durations and deadlines. */
uint64_t clock_mono_ns(void);

#ifdef BERTH_TEST_HOOKS
/* Moves both clocks forward by ms (test builds only). */
void clock_test_advance(int64_t ms);
#endif

#endif
