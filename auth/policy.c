/* policy: users, groups and access rules in memory; password checks; `berth passwd`. */
#include "policy.h"

#include <argon2.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "err.h"
#include "glob.h"
#include "log.h"
#include "rand.h"
#include "xalloc.h"

struct policy_user {
	char *name;
	char *hash;            /* NULL: no password login */
	unsigned char *rules;  /* rules[i] = 1 when rule i names the user or one of its groups */
};

struct policy_rule {
	char **globs;
	size_t n_globs;
	unsigned actions;
	int anonymous;
};

struct policy {
	struct policy_user *users; /* sorted by name, for bsearch */
	size_t n_users;
	struct policy_rule *rules; /* in config order (order does not change the result) */
	size_t n_rules;
	char *dummy_hash;          /* same cost as the real hashes, matches no password */
};

/* ---- building ---- */

static int user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct policy_user *)a)->name, ((const struct policy_user *)b)->name);
}

static struct policy_user *find_user(const struct policy *p, const char *name)
{
	struct policy_user key = { .name = (char *)name };
	if (!name || !p->n_users)
		return NULL;
	return bsearch(&key, p->users, p->n_users, sizeof(*p->users), user_cmp);
}

static int strv_has(const struct config_strv *s, const char *x)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], x))
			return 1;
	return 0;
}

/* Marks rule ri on every user it reaches by name or through a group (both ways of membership). */
static int mark_rule(struct policy *p, const struct config *c, size_t ri)
{
	const struct config_rule *r = &c->rules[ri];
	struct policy_user *u;
	for (size_t i = 0; i < r->users.n; i++) {
		if (!(u = find_user(p, r->users.v[i])))
			return E_CONFIG;
		u->rules[ri] = 1;
	}
	for (size_t i = 0; i < r->groups.n; i++) {
		const char *g = r->groups.v[i];
		for (size_t j = 0; j < c->n_groups; j++) {
			if (strcmp(c->groups[j].name, g))
				continue;
			for (size_t k = 0; k < c->groups[j].members.n; k++) {
				if (!(u = find_user(p, c->groups[j].members.v[k])))
					return E_CONFIG;
				u->rules[ri] = 1;
			}
		}
		for (size_t j = 0; j < c->n_users; j++) {
			if (!strv_has(&c->users[j].groups, g))
				continue;
			if (!(u = find_user(p, c->users[j].name)))
				return E_CONFIG;
			u->rules[ri] = 1;
		}
	}
	return 0;
}

/*
 * The dummy hash copies the cost prefix ("$argon2id$v=19$m=..,t=..,p=..$")
 * used by most users, so an unknown name costs what a real one does; its
 * salt and hash are zeros, which no password produces.
 */
static char *make_dummy(const struct config *c)
{
	static const char zeros16[] = "AAAAAAAAAAAAAAAAAAAAAA";                       /* 16 bytes */
	static const char zeros32[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"; /* 32 bytes */
	const char *best = NULL;
	size_t best_len = 0, best_count = 0;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < c->n_users; i++) {
		const char *h = c->users[i].password, *salt;
		size_t len, count = 0;
		if (!h || !(salt = strchr(h + 17, '$'))) /* h passed config_phc_check */
			continue;
		len = (size_t)(salt - h) + 1;
		for (size_t j = 0; j < c->n_users; j++)
			count += c->users[j].password && !strncmp(c->users[j].password, h, len);
		if (count > best_count) {
			best = h;
			best_len = len;
			best_count = count;
		}
	}
	if (best)
		buf_add(&b, best, best_len);
	else
		buf_addf(&b, "$argon2id$v=19$m=%d,t=%d,p=%d$", POLICY_ARGON2_M_KIB, POLICY_ARGON2_T,
			 POLICY_ARGON2_P);
	buf_addf(&b, "%s$%s", zeros16, zeros32);
	return buf_detach(&b, NULL);
}

static void strv_copy(char ***dst, size_t *n, const struct config_strv *src)
{
	*dst = xcalloc(src->n ? src->n : 1, sizeof(char *));
	for (*n = 0; *n < src->n; (*n)++)
		(*dst)[*n] = xstrdup(src->v[*n]);
}

int policy_build(const struct config *c, struct policy **out)
{
	struct policy *p = xcalloc(1, sizeof(*p));
	int rc = 0;

	p->users = xcalloc(c->n_users ? c->n_users : 1, sizeof(*p->users));
	for (size_t i = 0; i < c->n_users; i++) {
		struct policy_user *u = &p->users[p->n_users++];
		u->name = xstrdup(c->users[i].name);
		u->hash = c->users[i].password ? xstrdup(c->users[i].password) : NULL;
		u->rules = xcalloc(c->n_rules ? c->n_rules : 1, 1);
		if (u->hash && config_phc_check(u->hash, NULL))
			rc = E_CONFIG;
	}
	qsort(p->users, p->n_users, sizeof(*p->users), user_cmp);
	for (size_t i = 1; i < p->n_users; i++)
		if (!strcmp(p->users[i - 1].name, p->users[i].name))
			rc = E_CONFIG;

	p->rules = xcalloc(c->n_rules ? c->n_rules : 1, sizeof(*p->rules));
	for (size_t i = 0; i < c->n_rules && !rc; i++) {
		struct policy_rule *r = &p->rules[p->n_rules++];
		strv_copy(&r->globs, &r->n_globs, &c->rules[i].repositories);
		r->actions = c->rules[i].actions & ACTION_ALL;
		r->anonymous = c->rules[i].anonymous;
		rc = mark_rule(p, c, i);
	}
	p->dummy_hash = rc ? NULL : make_dummy(c);
	if (rc) {
		policy_free(p);
		p = NULL;
	}
	*out = p;
	return rc;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_users; i++) {
		free(p->users[i].name);
		free(p->users[i].hash);
		free(p->users[i].rules);
	}
	for (size_t i = 0; i < p->n_rules; i++) {
		for (size_t j = 0; j < p->rules[i].n_globs; j++)
			free(p->rules[i].globs[j]);
		free(p->rules[i].globs);
	}
	free(p->users);
	free(p->rules);
	free(p->dummy_hash);
	free(p);
}

/* ---- queries ---- */

unsigned policy_actions(const struct policy *p, const char *user, const char *repo)
{
	const struct policy_user *u = find_user(p, user);
	unsigned acts = 0;
	for (size_t i = 0; i < p->n_rules && acts != ACTION_ALL; i++) {
		const struct policy_rule *r = &p->rules[i];
		if (!(r->actions & ~acts))
			continue; /* would add nothing */
		if (!r->anonymous && !(u && u->rules[i]))
			continue;
		for (size_t j = 0; j < r->n_globs; j++) {
			if (glob_match(r->globs[j], repo)) {
				acts |= r->actions;
				break;
			}
		}
	}
	return acts;
}

int policy_user_exists(const struct policy *p, const char *user)
{
	return find_user(p, user) != NULL;
}

int policy_has_users(const struct policy *p)
{
	return p->n_users > 0;
}

const char *policy_user_hash(const struct policy *p, const char *user)
{
	const struct policy_user *u = find_user(p, user);
	return u ? u->hash : NULL;
}

const char *policy_verified_hash(const struct policy *p, const char *user)
{
	const char *h = policy_user_hash(p, user);
	return h ? h : p->dummy_hash;
}

int policy_check_password(const struct policy *p, const char *user, const char *password, size_t len)
{
	const struct policy_user *u = find_user(p, user);
	const char *hash = u && u->hash ? u->hash : p->dummy_hash;
	int rc;
	/* Always one full argon2id run, whatever the user or the password's length. */
	rc = argon2id_verify(hash, password ? password : "", len);
	if (rc == ARGON2_MEMORY_ALLOCATION_ERROR)
		log_error("password check: argon2id could not allocate its memory");
	return rc == ARGON2_OK && hash != p->dummy_hash ? 0 : E_UNAUTHORIZED;
}

/* ---- hashing, and berth passwd ---- */

static int hash_with_cost(const char *pw, size_t len, const uint32_t cost[3], struct buf *out)
{
	unsigned char salt[16];
	size_t enclen = argon2_encodedlen(cost[1], cost[0], cost[2], sizeof(salt), 32, Argon2_id);
	int rc;
	rand_bytes(salt, sizeof(salt));
	buf_grow(out, enclen);
	rc = argon2_hash(cost[1], cost[0], cost[2], pw, len, salt, sizeof(salt), NULL, 32, out->buf + out->len,
			 enclen, Argon2_id, ARGON2_VERSION_13);
	if (rc != ARGON2_OK) {
		out->buf[out->len] = '\0';
		return E_INTERNAL;
	}
	buf_setlen(out, out->len + strlen(out->buf + out->len));
	return 0;
}

int policy_hash_password(const char *password, size_t len, struct buf *out)
{
	static const uint32_t cost[3] = { POLICY_ARGON2_M_KIB, POLICY_ARGON2_T, POLICY_ARGON2_P };
	return hash_with_cost(password ? password : "", len, cost, out);
}

#define PW_MAX 1024 /* bytes including the NUL */

static struct termios saved_tty;
static volatile sig_atomic_t tty_dirty;

/* A signal while echo is off must not leave the terminal silent. */
static void restore_and_die(int sig)
{
	if (tty_dirty)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads one line into pw (NUL-terminated, newline dropped). Returns its length, or -1 with a message printed. */
static long read_line(char *pw)
{
	size_t n = 0;
	char ch;
	for (;;) {
		ssize_t r = read(STDIN_FILENO, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r < 0 || !n) {
				fprintf(stderr, "error: no password read\n");
				return -1;
			}
			break;
		}
		if (ch == '\n')
			break;
		if (n + 1 >= PW_MAX) {
			fprintf(stderr, "error: password too long (at most %d bytes)\n", PW_MAX - 1);
			return -1;
		}
		pw[n++] = ch;
	}
	if (n && pw[n - 1] == '\r')
		n--;
	pw[n] = '\0';
	return (long)n;
}

static long prompt_line(const char *prompt, char *pw)
{
	struct termios quiet;
	struct sigaction sa = { .sa_handler = restore_and_die }, old[3];
	const int sigs[3] = { SIGINT, SIGTERM, SIGQUIT };
	long n;
	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &saved_tty)) {
		fprintf(stderr, "\nerror: cannot read the terminal settings\n");
		return -1;
	}
	quiet = saved_tty;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	quiet.c_lflag |= ECHONL;
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	tty_dirty = 1;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	n = read_line(pw);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	tty_dirty = 0;
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	return n;
}

/* Reads the password: twice, compared, from a terminal; one line otherwise. Returns its length or -1. */
static long read_password(char *pw, char *again)
{
	long n, m;
	if (!isatty(STDIN_FILENO))
		return read_line(pw);
	if ((n = prompt_line("password: ", pw)) < 0 || (m = prompt_line("again: ", again)) < 0)
		return -1;
	if (n != m || memcmp(pw, again, (size_t)n)) {
		fprintf(stderr, "error: the passwords differ\n");
		return -1;
	}
	return n;
}

static int parse_cost(const char *opt, const char *s, unsigned long lo, unsigned long hi, uint32_t *out)
{
	char *end;
	unsigned long v;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || v < lo || v > hi) {
		fprintf(stderr, "error: %s wants a number from %lu to %lu, not \"%s\"\n", opt, lo, hi, s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static const char passwd_usage[] =
	"usage: berth passwd [--user NAME] [-m KIB] [-t N] [-p N]\n"
	"Reads a password (twice, without echo, from a terminal; one line from a pipe)\n"
	"and prints its argon2id hash for the \"users\" section of the config file.\n"
	"  --user NAME  also print a line to paste into \"users\"\n"
	"  -m KIB       memory cost in KiB (default 65536)\n"
	"  -t N         passes (default 3)\n"
	"  -p N         lanes (default 1)\n";

static int passwd_args(int argc, char **argv, const char **user, uint32_t cost[3])
{
	const char *why;
	/* Every option but --help takes a value. */
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(passwd_usage, stdout);
			return 1;
		} else if (!v) {
			bad = 1;
		} else if (!strcmp(a, "--user")) {
			if (config_name_check(v, &why)) {
				fprintf(stderr, "error: --user: %s\n", why);
				return 2;
			}
			*user = v;
		} else if (!strcmp(a, "-m") || !strcmp(a, "--memory")) {
			bad = parse_cost(a, v, 8, 4194304, &cost[0]);
		} else if (!strcmp(a, "-t") || !strcmp(a, "--iterations")) {
			bad = parse_cost(a, v, 1, 64, &cost[1]);
		} else if (!strcmp(a, "-p") || !strcmp(a, "--parallelism")) {
			bad = parse_cost(a, v, 1, 64, &cost[2]);
		} else {
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "error: unknown or incomplete option \"%s\"\n%s", a, passwd_usage);
			return 2;
		}
	}
	if (cost[0] < 8 * cost[2]) {
		fprintf(stderr, "error: -m must be at least 8 KiB per lane\n");
		return 2;
	}
	return 0;
}

int policy_passwd_main(int argc, char **argv)
{
	char pw[PW_MAX], again[PW_MAX];
	uint32_t cost[3] = { POLICY_ARGON2_M_KIB, POLICY_ARGON2_T, POLICY_ARGON2_P };
	struct buf hash = BUF_INIT;
	const char *user = NULL;
	long n;
	int rc;

	if ((rc = passwd_args(argc, argv, &user, cost)))
		return rc == 1 ? 0 : rc;
	rc = 1;
	if ((n = read_password(pw, again)) < 0)
		goto out;
	if (n == 0) {
		fprintf(stderr, "error: empty password\n");
		goto out;
	}
	if (hash_with_cost(pw, (size_t)n, cost, &hash)) {
		fprintf(stderr, "error: argon2id failed (not enough memory for -m?)\n");
		goto out;
	}
	puts(hash.buf);
	if (user)
		printf("\"%s\": {\"password\": \"%s\"}\n", user, hash.buf);
	rc = fflush(stdout) ? 1 : 0;
out:
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(again, sizeof(again));
	buf_release(&hash);
	return rc;
}
