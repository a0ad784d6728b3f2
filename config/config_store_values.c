/* config_store_values: checkers for the cluster shape's values (PostgreSQL connection strings, S3 names). */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#define PG_URL_MAX 4096
#define S3_PREFIX_MAX 512

static const char pg_msg[] = "expected a PostgreSQL connection URI like \"postgresql://berth@db.lan:5432/berth\" "
	"or key=value pairs like \"host=db.lan dbname=berth user=berth\"";
/* Never quotes the string: it is the one place a password would be. */
static const char pg_password[] = "the connection string must not hold a password: put it in "
	"\"password_file\" or the PGPASSWORD environment variable";

static int set_why(const char **why, const char *msg)
{
	if (why)
		*why = msg;
	return -1;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Keywords whose value is a secret; both go in files or the environment instead. */
static int pg_secret_keyword(const char *k, size_t len)
{
	return (len == 8 && !memcmp(k, "password", 8)) || (len == 11 && !memcmp(k, "sslpassword", 11));
}

static size_t pg_keyword_len(const char *p)
{
	size_t n = 0;
	while ((p[n] >= 'a' && p[n] <= 'z') || p[n] == '_')
		n++;
	return n;
}

/* ":port" with port 1..65535, or nothing; returns the end, or NULL. */
static const char *port_end(const char *p, const char *end)
{
	unsigned long port = 0;
	const char *d;
	if (p == end || *p != ':')
		return p;
	d = ++p;
	for (; p < end && is_digit(*p) && port <= 65535; p++)
		port = port * 10 + (unsigned long)(*p - '0');
	return p == d || !port || port > 65535 ? NULL : p;
}

/* One host of the URI's comma-separated list: "[v6]", a name or an address, optional port; may be empty. */
static int pg_host_check(const char *p, const char *end)
{
	if (p < end && *p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));
		if (!close || close == p + 1)
			return -1;
		p = close + 1;
	} else {
		while (p < end && (is_alnum(*p) || *p == '.' || *p == '-' || *p == '_' || *p == '%'))
			p++;
	}
	return port_end(p, end) == end ? 0 : -1;
}

/* "k=v&k=v" after the '?': keywords as libpq spells them, no secret among them. */
static int pg_query_check(const char *p, const char **why)
{
	for (;;) {
		size_t klen = pg_keyword_len(p);
		if (!klen || p[klen] != '=')
			return set_why(why, pg_msg);
		if (pg_secret_keyword(p, klen))
			return set_why(why, pg_password);
		p += klen + 1;
		p += strcspn(p, "&");
		if (!*p)
			return 0;
		p++;
	}
}

/* postgresql://[user@][host[:port][,...]][/dbname][?k=v&...], p just after "//". */
static int pg_uri_check(const char *p, const char **why)
{
	size_t alen = strcspn(p, "/?");
	const char *end = p + alen, *at = memchr(p, '@', alen), *h;
	if (at) {
		/* user:password@ is the URI's own place for a password */
		if (memchr(p, ':', (size_t)(at - p)))
			return set_why(why, pg_password);
		if (memchr(at + 1, '@', (size_t)(end - at - 1)))
			return set_why(why, pg_msg);
		p = at + 1;
	}
	for (h = p;; h++) {
		const char *comma = memchr(h, ',', (size_t)(end - h));
		const char *hend = comma ? comma : end;
		if (pg_host_check(h, hend))
			return set_why(why, pg_msg);
		if (!comma)
			break;
		h = comma;
	}
	p = end + strcspn(end, "?");
	return *p ? pg_query_check(p + 1, why) : 0;
}

/* libpq's value syntax: single-quoted with backslash escapes, or a run of non-blanks; returns the end or NULL. */
static const char *pg_value_end(const char *p)
{
	if (*p == '\'') {
		for (p++; *p && *p != '\''; p++)
			if (*p == '\\' && p[1])
				p++;
		return *p ? p + 1 : NULL;
	}
	const char *start = p;
	for (; *p && *p != ' '; p++)
		if (*p == '\\' && p[1])
			p++;
	return p == start ? NULL : p;
}

/* "keyword = value ..." pairs separated by spaces. */
static int pg_pairs_check(const char *p, const char **why)
{
	size_t n = 0;
	for (;;) {
		size_t klen;
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		klen = pg_keyword_len(p);
		if (!klen)
			return set_why(why, pg_msg);
		if (pg_secret_keyword(p, klen))
			return set_why(why, pg_password);
		p += klen;
		while (*p == ' ')
			p++;
		if (*p++ != '=')
			return set_why(why, pg_msg);
		while (*p == ' ')
			p++;
		if (!(p = pg_value_end(p)))
			return set_why(why, pg_msg);
		n++;
	}
	return n ? 0 : set_why(why, pg_msg);
}

int config_pg_url_check(const char *s, const char **why)
{
	const char *rest = NULL;
	int uri;
	if (strlen(s) > PG_URL_MAX)
		return set_why(why, "connection string too long (at most 4096 characters)");
	if (!strncmp(s, "postgresql://", 13))
		rest = s + 13;
	else if (!strncmp(s, "postgres://", 11))
		rest = s + 11;
	uri = rest != NULL;
	for (const char *q = s; *q; q++) {
		unsigned char ch = (unsigned char)*q;
		/* control characters: a line break in a log line, or a keyword separator libpq would accept */
		if (ch < ' ' || ch == 0x7f)
			return set_why(why, pg_msg);
		if (uri && (ch == ' ' || ch >= 0x80 || strchr("\"\\#<>`{}|^", ch)))
			return set_why(why, pg_msg);
		if (uri && ch == '%' && !(is_hex(q[1]) && is_hex(q[2])))
			return set_why(why, pg_msg);
	}
	/*
	 * A bare word would be taken by libpq as a database name; requiring one
	 * of the two documented forms catches a URL with a mistyped scheme.
	 */
	return uri ? pg_uri_check(rest, why) : pg_pairs_check(s, why);
}

int config_s3_endpoint_check(const char *s, const char **why)
{
	static const char msg[] = "expected an http:// or https:// URL with a host and an optional port, "
		"like \"https://s3.example.com:9000\" (no path, query or user)";
	const char *host, *slash;
	if (config_url_check(s, NULL))
		return set_why(why, msg);
	host = s + (s[4] == 's' ? 8 : 7);
	/* a path would change every signed request; brackets of an IPv6 host hold no '/' */
	slash = strchr(host, '/');
	if (slash && slash[1])
		return set_why(why, msg);
	return 0;
}

int config_s3_bucket_check(const char *s, const char **why)
{
	static const char msg[] = "expected an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-', "
		"starting and ending with a letter or digit";
	size_t len = strlen(s);
	unsigned char addr[4];
	if (len < 3 || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return set_why(why, msg);
	for (size_t i = 0; i < len; i++)
		if (!(is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'z') || s[i] == '.' || s[i] == '-'))
			return set_why(why, msg);
	if (strstr(s, ".."))
		return set_why(why, "bucket name: two '.' in a row");
	if (inet_pton(AF_INET, s, addr) == 1)
		return set_why(why, "bucket name: must not be an IP address");
	if (!strncmp(s, "xn--", 4) || !strncmp(s, "sthree-", 7) || (len > 8 && !strcmp(s + len - 8, "-s3alias")) ||
	    (len > 7 && !strcmp(s + len - 7, "--ol-s3")))
		return set_why(why, "bucket name: a prefix or suffix S3 reserves (\"xn--\", \"sthree-\", "
			"\"-s3alias\", \"--ol-s3\")");
	return 0;
}

int config_s3_region_check(const char *s, const char **why)
{
	size_t len = strlen(s);
	if (!len || len > 63 || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len)
		return set_why(why, "expected a region name like \"us-east-1\" (letters, digits, '.', '_', '-')");
	return 0;
}

int config_s3_prefix_check(const char *s, const char **why)
{
	size_t len = strlen(s);
	if (len > S3_PREFIX_MAX)
		return set_why(why, "prefix too long (at most 512 characters)");
	if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") != len)
		return set_why(why, "expected a key prefix of letters, digits, '.', '_', '-' and '/', like \"registry/\"");
	if (s[0] == '/')
		return set_why(why, "the prefix must not start with '/'");
	for (const char *p = s; *p;) {
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return set_why(why, "the prefix must not have a \".\" or \"..\" component");
		if (!n)
			return set_why(why, "the prefix must not have an empty component (\"//\")");
		p += n;
		if (*p)
			p++;
	}
	return 0;
}
