/*
 * tls_ceiling: what a pull over TLS could reach with GnuTLS on this machine,
 * without HTTP machinery: the like-for-like ceiling of berth's TLS pull
 * (bench/tls measures it in the same alternation as the registries).
 *
 * It serves one file over HTTPS on 127.0.0.1 with nothing else: a blocking
 * socket, one connection at a time, each request's headers read and
 * ignored, every GET answered 200 with the whole file: pread() of BLOCK
 * bytes, then gnutls_record_send() until the block is out (one record of at
 * most 16 KiB per call, as libmicrohttpd sends). With --cork N, N records
 * are corked (gnutls_record_cork) and leave in one write: what coalescing
 * records would give, which libmicrohttpd 0.9.75 does not do.
 *
 *   tls_ceiling CERT KEY FILE [--block BYTES] [--priority STRING] [--cork N]
 *
 * It prints the port on stdout ("port N"), then serves until SIGTERM.
 * The default priority is GnuTLS's "NORMAL" (what berth used before its
 * tls.priorities key).
 *
 * Build: cc -O2 bench/tls_ceiling.c $(pkg-config --cflags --libs gnutls) -o tls_ceiling
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "tls_ceiling: %s: %s\n", what, detail);
	exit(1);
}

/* Reads one request's header block; 0 when it arrived, -1 on EOF or error. */
static int read_request(gnutls_session_t s)
{
	char buf[8192];
	size_t have = 0;
	for (;;) {
		ssize_t n = gnutls_record_recv(s, buf + have, sizeof(buf) - 1 - have);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = 0;
		if (strstr(buf, "\r\n\r\n"))
			return 0;
		if (have == sizeof(buf) - 1)
			return -1;
	}
}

static int send_all(gnutls_session_t s, const char *p, size_t len)
{
	while (len) {
		ssize_t n = gnutls_record_send(s, p, len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends the response: headers, then the file block by block; -1 on error. */
static int send_file(gnutls_session_t s, int fd, off_t size, char *block, size_t block_size, unsigned cork)
{
	char head[128];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n\r\n", (long long)size);
	unsigned corked = 0;
	if (send_all(s, head, (size_t)n))
		return -1;
	for (off_t off = 0; off < size;) {
		ssize_t got = pread(fd, block, block_size, off);
		if (got <= 0)
			return -1;
		for (ssize_t at = 0; at < got;) {
			size_t len = (size_t)(got - at);
			ssize_t sent;
			if (cork > 1 && corked == 0)
				gnutls_record_cork(s);
			sent = gnutls_record_send(s, block + at, len);
			if (sent == GNUTLS_E_AGAIN || sent == GNUTLS_E_INTERRUPTED)
				continue;
			if (sent < 0)
				return -1;
			at += sent;
			if (cork > 1 && ++corked == cork) {
				if (gnutls_record_uncork(s, GNUTLS_RECORD_WAIT) < 0)
					return -1;
				corked = 0;
			}
		}
		off += got;
	}
	if (corked && gnutls_record_uncork(s, GNUTLS_RECORD_WAIT) < 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *priority = "NORMAL";
	size_t block_size = 16384;
	unsigned cork = 0;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	struct stat st;
	char *block;
	int ls, fd, one = 1, rc;

	if (argc < 4)
		die("usage", "tls_ceiling CERT KEY FILE [--block BYTES] [--priority STRING] [--cork N]");
	for (int i = 4; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--block"))
			block_size = (size_t)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--priority"))
			priority = argv[i + 1];
		else if (!strcmp(argv[i], "--cork"))
			cork = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else
			die("unknown option", argv[i]);
	}
	if (block_size < 1 || block_size > (64u << 20))
		die("--block", "want 1 to 64 MiB");
	signal(SIGPIPE, SIG_IGN);
	fd = open(argv[3], O_RDONLY);
	if (fd < 0 || fstat(fd, &st))
		die(argv[3], strerror(errno));
	block = malloc(block_size);
	if (!block)
		die("malloc", "out of memory");
	gnutls_global_init();
	gnutls_certificate_allocate_credentials(&cred);
	rc = gnutls_certificate_set_x509_key_file(cred, argv[1], argv[2], GNUTLS_X509_FMT_PEM);
	if (rc < 0)
		die("certificate", gnutls_strerror(rc));
	rc = gnutls_priority_init(&prio, priority, NULL);
	if (rc < 0)
		die("priority", gnutls_strerror(rc));

	ls = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 16) ||
	    getsockname(ls, (struct sockaddr *)&sa, &salen))
		die("listen", strerror(errno));
	printf("port %u\n", ntohs(sa.sin_port));
	fflush(stdout);

	for (;;) {
		gnutls_session_t s;
		int c = accept(ls, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			die("accept", strerror(errno));
		}
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		gnutls_init(&s, GNUTLS_SERVER);
		gnutls_priority_set(s, prio);
		gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
		gnutls_transport_set_int(s, c);
		do
			rc = gnutls_handshake(s);
		while (rc < 0 && !gnutls_error_is_fatal(rc));
		if (rc >= 0)
			while (!read_request(s) && !send_file(s, fd, st.st_size, block, block_size, cork))
				;
		gnutls_deinit(s);
		close(c);
	}
}
