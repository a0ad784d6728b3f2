/*
 * Unit tests for storage/reserve in a scratch directory: nothing to give
 * back before it is opened; opening allocates the file; release empties it
 * and asks for a retry (also when already given back); restore allocates
 * it again; a reserve that cannot be made is none at all.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "paths.h"
#include "reserve.h"
#include "t.h"

#define SIZE ((int64_t)1 << 20)

static struct buf base = BUF_INIT;

/* Whether the reserve file holds SIZE allocated bytes; 0 when it is empty; -1 otherwise. */
static int held(void)
{
	struct buf p = BUF_INIT;
	struct stat st;
	int rc = -1;
	paths_reserve(&p, base.buf);
	if (stat(p.buf, &st) == 0) {
		if (st.st_size == SIZE && (int64_t)st.st_blocks * 512 >= SIZE)
			rc = 1;
		else if (st.st_size == 0)
			rc = 0;
	}
	buf_release(&p);
	return rc;
}

int main(void)
{
	struct buf missing = BUF_INIT;
	if (t_scratch(&base, "reserve"))
		return 1;
	struct reserve *r = NULL;
	/* no reserve: no room to make, pushes go on */
	CHECK_EQ_INT(reserve_release(NULL), 0);
	CHECK_EQ_INT(reserve_restore(NULL), 0);

	CHECK_EQ_INT(reserve_open(base.buf, SIZE, &r), 0);
	CHECK_EQ_INT(held(), 1);
	CHECK_EQ_INT(reserve_restore(r), 0); /* held: nothing to do */
	CHECK_EQ_INT(reserve_release(r), 1);
	CHECK_EQ_INT(held(), 0);
	CHECK_EQ_INT(reserve_release(r), 1); /* already given back: still worth a retry */
	CHECK_EQ_INT(held(), 0);
	CHECK_EQ_INT(reserve_restore(r), 0); /* the scratch file system has room */
	CHECK_EQ_INT(held(), 1);
	reserve_close(r);
	CHECK_EQ_INT(held(), 1); /* the file stays for the next start */

	/* opened again on an existing reserve: kept as it is */
	CHECK_EQ_INT(reserve_open(base.buf, SIZE, &r), 0);
	CHECK_EQ_INT(held(), 1);
	reserve_close(r);
	CHECK_EQ_INT(reserve_release(NULL), 0);

	/* a reserve that cannot be made: none (deletes and pushes as without) */
	buf_addf(&missing, "%s/no/such/dir", base.buf);
	CHECK_EQ_INT(reserve_open(missing.buf, SIZE, &r), E_IO);
	CHECK_EQ_INT(reserve_release(r), 0);
	CHECK_EQ_INT(reserve_restore(r), 0);
	reserve_close(r);

	t_rmtree(base.buf);
	buf_release(&missing);
	buf_release(&base);
	return t_done();
}
