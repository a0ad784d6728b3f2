/* datadir: creating, locking and checking the data directory; the embedded default's administrator. */
#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "policy.h"
#include "rand.h"
#include "store.h"

/* Appends " (pid N)" when the lock file names the process holding it. */
static void holder_of(int fd, struct buf *out)
{
	char text[32];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	char *end;
	long pid;
	if (n <= 0)
		return;
	text[n] = '\0';
	pid = strtol(text, &end, 10);
	if (end != text && (*end == '\n' || !*end) && pid > 0)
		buf_addf(out, " (pid %ld)", pid);
}

int datadir_lock(const char *root, int *fd_out)
{
	struct buf path = BUF_INIT, who = BUF_INIT;
	char pid[32];
	int fd = -1, rc = E_IO, len;
	*fd_out = -1;
	if (mkdir(root, 0750) < 0 && errno != EEXIST) {
		log_error("cannot create data directory \"%s\": %s", root, strerror(errno));
		goto out;
	}
	store_local_path(root, STORE_PATH_LOCK, &path);
	fd = open(path.buf, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
	if (fd < 0) {
		log_error("cannot open lock file \"%s\": %s", path.buf, strerror(errno));
		goto out;
	}
	/* flock(), not fcntl(): an fcntl lock would vanish when any descriptor of the file closes */
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			holder_of(fd, &who);
			log_error("data directory \"%s\" is in use by another berth serve%s: one daemon per data "
				  "directory (the admin commands work beside it)", root, who.buf);
			rc = DATADIR_BUSY;
		} else {
			log_error("cannot lock \"%s\": %s", path.buf, strerror(errno));
		}
		goto out;
	}
	len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		log_error("cannot write lock file \"%s\": %s", path.buf, strerror(errno));
		goto out;
	}
	*fd_out = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	buf_release(&path);
	buf_release(&who);
	return rc;
}

void datadir_unlock(int fd)
{
	/* the file stays: see datadir_lock() */
	if (fd >= 0)
		close(fd);
}

int datadir_check(const char *root)
{
	struct buf db = BUF_INIT;
	struct stat st;
	int ok;
	store_local_path(root, STORE_PATH_DB, &db);
	ok = stat(root, &st) == 0 && S_ISDIR(st.st_mode) && stat(db.buf, &st) == 0 && S_ISREG(st.st_mode);
	buf_release(&db);
	if (ok)
		return 0;
	fprintf(stderr, "error: no berth data directory at %s (use --root or -c)\n", root);
	return 1;
}

/* Reads a whole small file into out; returns 0 or -1 (errno set). */
static int read_small(const char *path, struct buf *out)
{
	char tmp[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	if (fd < 0)
		return -1;
	while ((n = read(fd, tmp, sizeof(tmp))) > 0 && out->len < 65536)
		buf_add(out, tmp, (size_t)n);
	close(fd);
	return n < 0 ? -1 : 0;
}

/* The host[:port] clients log in to: the external URL's, else the listen address (config_external_url()). */
static void login_host(const struct config *cfg, struct buf *out)
{
	struct buf url = BUF_INIT;
	const char *h;
	config_external_url(cfg, &url);
	h = strstr(url.buf, "://");
	h = h ? h + 3 : url.buf;
	buf_add(out, h, strcspn(h, "/"));
	buf_release(&url);
}

/*
 * Makes a password, publishes its hash at path and prints it. Returns 0
 * with the hash in *hash, ATOMICFILE_EXISTS when another process created
 * path first (nothing printed: its password stands), or an E_* code.
 */
static int create_admin(const struct config *cfg, const char *path, struct buf *hash)
{
	static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	unsigned char rnd[18];
	struct buf pw = BUF_INIT, host = BUF_INIT;
	int rc;
	rand_bytes(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		buf_addch(&pw, alphabet[rnd[i] % (sizeof(alphabet) - 1)]);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	if ((rc = policy_hash_password(pw.buf, pw.len, hash)))
		goto out;
	buf_addch(hash, '\n');
	rc = atomicfile_create(path, hash->buf, hash->len, 0600);
	buf_setlen(hash, hash->len - 1);
	if (rc)
		goto out;
	login_host(cfg, &host);
	fprintf(stderr,
		"\n  berth: created user \"admin\" with password: %s\n"
		"  It is shown this once; only its hash is kept (%s).\n"
		"  Log in with: docker login %s -u admin\n\n",
		pw.buf, path, host.buf);
out:
	OPENSSL_cleanse(pw.buf, pw.len);
	buf_release(&pw);
	buf_release(&host);
	return rc;
}

int datadir_admin(struct config *cfg, int create)
{
	struct buf path = BUF_INIT, hash = BUF_INIT;
	int rc = 0;
	store_local_path(cfg->root, STORE_PATH_KEYS, &path);
	if (create && mkdir(path.buf, 0700) < 0 && errno != EEXIST) {
		log_error("cannot create \"%s\": %s", path.buf, strerror(errno));
		rc = E_IO;
		goto out;
	}
	buf_adds(&path, "/admin.argon2");
	if (create && access(path.buf, F_OK) < 0 && errno == ENOENT) {
		rc = create_admin(cfg, path.buf, &hash);
		if (rc == ATOMICFILE_EXISTS)
			buf_reset(&hash); /* lost a race: read the winner's */
		else if (rc)
			goto out;
	}
	if (!hash.len && read_small(path.buf, &hash) < 0) {
		if (errno == ENOENT && !create)
			goto out; /* no administrator here (the admin commands never make one) */
		log_error("cannot read \"%s\": %s", path.buf, strerror(errno));
		rc = E_IO;
		goto out;
	}
	while (hash.len && (hash.buf[hash.len - 1] == '\n' || hash.buf[hash.len - 1] == '\r'))
		buf_setlen(&hash, hash.len - 1);
	rc = config_add_admin(cfg, "admin", hash.buf);
out:
	buf_release(&path);
	buf_release(&hash);
	return rc;
}
