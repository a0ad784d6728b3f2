/*
 * rand: random bytes from the kernel's CSPRNG (getrandom(2)), for ids,
 * salts, secrets and hash seeds.
 *
 * Owns nothing and keeps no state, so using it costs no memory and does
 * not start OpenSSL's provider and DRBG machinery (about 2 MiB resident)
 * just to make an id. Thread-safe. The kernel source never fails once it
 * is seeded (getrandom() waits for that at early boot), so a failure means
 * a broken system: the process prints a message and aborts, and callers
 * have no error path to handle.
 */
#ifndef BERTH_RAND_H
#define BERTH_RAND_H

#include <stddef.h>

/* Fills buf with n random bytes (n may be 0); aborts if the kernel cannot. */
void rand_bytes(void *buf, size_t n);

#endif
