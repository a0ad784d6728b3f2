/*
 * config_values: checkers for the config's value syntaxes (durations, networks, hashes, names, globs, URLs,
 * PostgreSQL connection strings, S3 endpoints, buckets, regions and key prefixes).
 */
#include "config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "names.h"

/*
 * Sanity limits on argon2id costs accepted from the config file: far above
 * anything sensible, low enough that a typo cannot make every login take
 * minutes or gigabytes.
 */
#define PHC_M_MAX 4194304u /* KiB: 4 GiB */
#define PHC_T_MAX 64u
#define PHC_P_MAX 64u
#define PHC_LEN_MAX 512u

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

static int is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || is_digit(c);
}

int config_duration_parse(const char *s, unsigned *secs, const char **why)
{
	static const char msg[] = "expected a duration string like \"5m\" (a number and one of s, m, h, d)";
	unsigned long long v = 0, unit;
	const char *p = s;
	if (!is_digit(*p))
		return set_why(why, msg);
	for (; is_digit(*p); p++) {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > UINT_MAX)
			return set_why(why, "duration too long");
	}
	switch (*p) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: return set_why(why, msg);
	}
	if (p[1])
		return set_why(why, msg);
	if (v * unit > UINT_MAX)
		return set_why(why, "duration too long");
	*secs = (unsigned)(v * unit);
	return 0;
}

int config_net_parse(const char *s, struct config_net *out, const char **why)
{
	static const char msg[] = "expected an IPv4 or IPv6 address or CIDR block like \"10.0.0.0/8\"";
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned prefix = 0, max, full, rest;
	if (!alen || alen >= sizeof(addr))
		return set_why(why, msg);
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return set_why(why, msg);
	}
	if (!slash) {
		out->prefix = max;
		return 0;
	}
	const char *p = slash + 1;
	if (!is_digit(*p) || (p[0] == '0' && p[1]))
		return set_why(why, msg);
	for (; is_digit(*p) && prefix <= max; p++)
		prefix = prefix * 10 + (unsigned)(*p - '0');
	if (*p || prefix > max)
		return set_why(why, "CIDR prefix length out of range");
	/* Host bits set usually means a typo in the block; refuse rather than guess. */
	full = prefix / 8;
	rest = prefix % 8;
	if (rest && (out->addr[full] & (0xffu >> rest)))
		return set_why(why, "CIDR block has host bits set (write the network address, like \"10.0.0.0/8\")");
	for (unsigned i = full + (rest ? 1 : 0); i < max / 8; i++)
		if (out->addr[i])
			return set_why(why, "CIDR block has host bits set (write the network address, like \"10.0.0.0/8\")");
	out->prefix = prefix;
	return 0;
}

/* Reads a decimal without sign or leading zeros (as libargon2's decoder wants) up to max. */
static const char *phc_decimal(const char *p, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	const char *start = p;
	for (; is_digit(*p); p++) {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > max)
			return NULL;
	}
	if (p == start || (*start == '0' && p - start > 1))
		return NULL;
	*out = v;
	return p;
}

static int b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '+' || c == '/';
}

static unsigned b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return (unsigned)(c - 'A');
	if (c >= 'a' && c <= 'z')
		return (unsigned)(c - 'a') + 26;
	if (is_digit(c))
		return (unsigned)(c - '0') + 52;
	return c == '+' ? 62 : 63;
}

/*
 * Unpadded base64 as libargon2 decodes it: a length of 1 mod 4 is invalid
 * and the unused low bits of the last character must be zero. Stores the
 * decoded length and returns the end of the field, or NULL.
 */
static const char *phc_b64(const char *p, size_t *bytes)
{
	size_t n = 0;
	while (b64_char(p[n]))
		n++;
	if (n % 4 == 1)
		return NULL;
	if (n % 4 == 2 && (b64_value(p[n - 1]) & 0xf))
		return NULL;
	if (n % 4 == 3 && (b64_value(p[n - 1]) & 0x3))
		return NULL;
	*bytes = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	return p + n;
}

int config_phc_check(const char *s, const char **why)
{
	static const char msg[] = "expected an argon2id hash like \"$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>\" "
		"(berth passwd prints one)";
	unsigned long m, t, par;
	size_t salt, hash;
	const char *p = s;
	if (strlen(s) > PHC_LEN_MAX)
		return set_why(why, msg);
	if (strncmp(p, "$argon2id$v=19$m=", 17))
		return set_why(why, msg);
	p += 17;
	if (!(p = phc_decimal(p, UINT32_MAX, &m)) || strncmp(p, ",t=", 3))
		return set_why(why, msg);
	if (!(p = phc_decimal(p + 3, UINT32_MAX, &t)) || strncmp(p, ",p=", 3))
		return set_why(why, msg);
	if (!(p = phc_decimal(p + 3, UINT32_MAX, &par)) || *p != '$')
		return set_why(why, msg);
	if (!(p = phc_b64(p + 1, &salt)) || *p != '$')
		return set_why(why, msg);
	if (!(p = phc_b64(p + 1, &hash)) || *p)
		return set_why(why, msg);
	/* libargon2's own input limits, then ours. */
	if (salt < 8 || hash < 4)
		return set_why(why, "argon2id hash: salt or hash too short");
	if (t < 1 || par < 1 || m < 8 * par)
		return set_why(why, "argon2id hash: invalid cost parameters");
	if (m > PHC_M_MAX || t > PHC_T_MAX || par > PHC_P_MAX)
		return set_why(why, "argon2id hash: cost parameters too high (at most m=4194304, t=64, p=64)");
	return 0;
}

int config_name_check(const char *s, const char **why)
{
	static const char msg[] = "expected a name of lowercase letters, digits, '.', '_' and '-' "
		"(starting with a letter or digit, at most 64 characters)";
	size_t i;
	if (!is_lower_alnum(s[0]))
		return set_why(why, msg);
	for (i = 1; s[i]; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return set_why(why, msg);
	if (i > CONFIG_NAME_MAX)
		return set_why(why, msg);
	return 0;
}

int config_glob_check(const char *s, const char **why)
{
	static const char msg[] = "expected a repository glob: lowercase name components joined by '/', "
		"'*' within a component, '**' as a whole component";
	char sub[NAME_MAX_LEN + 1];
	size_t len = strlen(s), n = 0;
	if (!len || len > NAME_MAX_LEN)
		return set_why(why, msg);
	for (size_t i = 0; i < len;) {
		size_t start = i, end = i;
		while (end < len && s[end] != '/')
			end++;
		const char *dbl = memmem(s + start, end - start, "**", 2);
		if (dbl && (end - start != 2))
			return set_why(why, "'**' must be a whole path component, like \"team/**\"");
		/*
		 * Replacing each run of '*' by one letter yields a name that must
		 * satisfy the OCI grammar; that rejects uppercase, stray separators
		 * and empty components without a second grammar here.
		 */
		for (size_t j = start; j < end; j++) {
			if (s[j] == '*') {
				while (j + 1 < end && s[j + 1] == '*')
					j++;
				sub[n++] = 'x';
			} else {
				sub[n++] = s[j];
			}
		}
		if (end < len)
			sub[n++] = '/';
		i = end + 1;
		if (end + 1 == len)
			return set_why(why, msg); /* trailing '/' */
	}
	if (name_check(sub, n))
		return set_why(why, msg);
	return 0;
}

int config_url_check(const char *s, const char **why)
{
	static const char msg[] = "expected an http:// or https:// URL like \"https://registry.example.com\" "
		"(no query, fragment, user or quotes)";
	const char *p;
	size_t hlen;
	if (!strncmp(s, "https://", 8))
		p = s + 8;
	else if (!strncmp(s, "http://", 7))
		p = s + 7;
	else
		return set_why(why, msg);
	if (strlen(s) > 1024)
		return set_why(why, msg);
	/* The URL is quoted in WWW-Authenticate headers: nothing that could break out. */
	for (const char *q = s; *q; q++)
		if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f || strchr("\"\\?#@<>", *q))
			return set_why(why, msg);
	if (*p == '[') {
		const char *close = strchr(p, ']');
		if (!close || close == p + 1)
			return set_why(why, msg);
		p = close + 1;
	} else {
		hlen = strcspn(p, ":/");
		if (!hlen)
			return set_why(why, msg);
		p += hlen;
	}
	if (*p == ':') {
		unsigned long port = 0;
		const char *d = ++p;
		for (; is_digit(*p) && port <= 65535; p++)
			port = port * 10 + (unsigned long)(*p - '0');
		if (p == d || !port || port > 65535)
			return set_why(why, msg);
	}
	if (*p && *p != '/')
		return set_why(why, msg);
	return 0;
}

/* The cluster shape's values. */

#define PG_URL_MAX 4096
#define S3_PREFIX_MAX 512

static const char pg_msg[] = "expected a PostgreSQL connection URI like \"postgresql://berth@db.lan:5432/berth\" "
	"or key=value pairs like \"host=db.lan dbname=berth user=berth\"";
/* Never quotes the string: it is the one place a password would be. */
static const char pg_password[] = "the connection string must not hold a password: put it in "
	"\"password_file\" or the PGPASSWORD environment variable";

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
