/* Unit tests for common/atomicfile: whole files, created at most once, even by racing processes. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomicfile.h"
#include "buf.h"
#include "t.h"

/* Racing processes per round, and rounds. */
#define RACERS 8
#define ROUNDS 25

static int read_file(const char *path, char *out, size_t n)
{
	int fd = open(path, O_RDONLY);
	ssize_t got;
	if (fd < 0)
		return -1;
	got = read(fd, out, n - 1);
	close(fd);
	if (got < 0)
		return -1;
	out[got] = '\0';
	return 0;
}

/* Entries of dir besides "." and "..". */
static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void test_create_once(const char *dir)
{
	struct buf path = BUF_INIT;
	struct stat st;
	char got[64];
	mode_t mask = umask(0077);
	buf_addf(&path, "%s/secret", dir);
	CHECK_EQ_INT(atomicfile_create(path.buf, "first\n", 6, 0600), 0);
	CHECK(read_file(path.buf, got, sizeof(got)) == 0 && !strcmp(got, "first\n"));
	CHECK(stat(path.buf, &st) == 0 && (st.st_mode & 0777) == 0600);
	/* a second creation changes nothing and says so */
	CHECK_EQ_INT(atomicfile_create(path.buf, "second\n", 7, 0600), ATOMICFILE_EXISTS);
	CHECK(read_file(path.buf, got, sizeof(got)) == 0 && !strcmp(got, "first\n"));
	/* the mode asked for, whatever the umask */
	umask(0);
	buf_reset(&path);
	buf_addf(&path, "%s/public", dir);
	CHECK_EQ_INT(atomicfile_create(path.buf, "", 0, 0640), 0);
	CHECK(stat(path.buf, &st) == 0 && (st.st_mode & 0777) == 0640 && st.st_size == 0);
	umask(mask);
	/* no temporary is left behind */
	CHECK_EQ_INT(entries(dir), 2);
	/* a directory that does not exist is an error, not a crash */
	buf_reset(&path);
	buf_addf(&path, "%s/missing/file", dir);
	CHECK(atomicfile_create(path.buf, "x", 1, 0600) < 0);
	buf_release(&path);
}

/*
 * RACERS processes create the same file at once: exactly one is told it
 * created it, and the file holds exactly that one's content.
 */
static void test_race(const char *dir, int round)
{
	struct buf path = BUF_INIT, sub = BUF_INIT;
	int go[2], winners = 0, winner = -1;
	pid_t pids[RACERS];
	char got[64], want[64];
	buf_addf(&sub, "%s/round-%d", dir, round);
	CHECK(mkdir(sub.buf, 0700) == 0);
	buf_addf(&path, "%s/admin.argon2", sub.buf);
	CHECK(pipe(go) == 0);
	for (int i = 0; i < RACERS; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			char c, content[64];
			int n = snprintf(content, sizeof(content), "racer %d of round %d\n", i, round);
			close(go[1]);
			/* all start together: the read returns when the parent closes the pipe */
			(void)!read(go[0], &c, 1);
			int rc = atomicfile_create(path.buf, content, (size_t)n, 0600);
			_exit(rc == 0 ? 0 : rc == ATOMICFILE_EXISTS ? 1 : 2);
		}
		CHECK(pids[i] > 0);
	}
	close(go[0]);
	close(go[1]);
	for (int i = 0; i < RACERS; i++) {
		int status = 0;
		CHECK(waitpid(pids[i], &status, 0) == pids[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) <= 1);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			winners++;
			winner = i;
		}
	}
	CHECK_EQ_INT(winners, 1);
	snprintf(want, sizeof(want), "racer %d of round %d\n", winner, round);
	CHECK(read_file(path.buf, got, sizeof(got)) == 0);
	CHECK_STR(got, want);
	CHECK_EQ_INT(entries(sub.buf), 1);
	buf_release(&path);
	buf_release(&sub);
}

int main(void)
{
	struct buf dir = BUF_INIT, one = BUF_INIT;
	if (t_scratch(&dir, "atomicfile"))
		return 1;
	buf_addf(&one, "%s/once", dir.buf);
	CHECK(mkdir(one.buf, 0700) == 0);
	test_create_once(one.buf);
	for (int round = 0; round < ROUNDS; round++)
		test_race(dir.buf, round);
	t_rmtree(dir.buf);
	buf_release(&dir);
	buf_release(&one);
	return t_done();
}
