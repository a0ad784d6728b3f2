/* rand: the kernel CSPRNG through getrandom(2), with no state of its own. */
#include "rand.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void rand_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n) {
		/* Large requests come back in parts, and a signal can cut one short. */
		ssize_t got = getrandom(p, n, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			fprintf(stderr, "fatal: cannot get random bytes from the kernel: %s\n",
				got < 0 ? strerror(errno) : "no data");
			abort();
		}
		p += got;
		n -= (size_t)got;
	}
}
