/* s3_xml: strict, bounded reader for S3's XML answers (errors, multipart, listings). */
#include "s3_xml.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

struct level {
	size_t path_len; /* path length up to and including this element's name */
	size_t name_off; /* where this element's name starts in the path */
	size_t text_len;
	char text[S3XML_MAX_TEXT + 1];
};

struct parser {
	const char *p, *end;
	int depth;
	char path[S3XML_MAX_DEPTH * (S3XML_MAX_NAME + 1) + 1];
	struct level lv[S3XML_MAX_DEPTH];
};

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int name_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':';
}

static int name_char(unsigned char c)
{
	return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static int starts(const struct parser *ps, const char *s)
{
	size_t n = strlen(s);
	return (size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, s, n);
}

static void skip_space(struct parser *ps)
{
	while (ps->p < ps->end && is_space(*ps->p))
		ps->p++;
}

/* Skips "<!-- ... -->" (the caller saw "<!--"); 0 or E_STORE when unterminated. */
static int skip_comment(struct parser *ps)
{
	for (ps->p += 4; ps->p + 3 <= ps->end; ps->p++)
		if (!memcmp(ps->p, "-->", 3)) {
			ps->p += 3;
			return 0;
		}
	return E_STORE;
}

/* Reads a name at ps->p into name (NUL-terminated); 0 or E_STORE. */
static int read_name(struct parser *ps, char name[S3XML_MAX_NAME + 1])
{
	size_t n = 0;
	if (ps->p >= ps->end || !name_start((unsigned char)*ps->p))
		return E_STORE;
	while (ps->p < ps->end && name_char((unsigned char)*ps->p)) {
		if (n == S3XML_MAX_NAME)
			return E_STORE;
		name[n++] = *ps->p++;
	}
	name[n] = '\0';
	return 0;
}

/* Skips attributes up to '>' or "/>"; sets *empty for the latter; 0 or E_STORE. */
static int skip_attrs(struct parser *ps, int *empty)
{
	char name[S3XML_MAX_NAME + 1];
	for (;;) {
		int had_space = ps->p < ps->end && is_space(*ps->p);
		skip_space(ps);
		if (ps->p >= ps->end)
			return E_STORE;
		if (*ps->p == '>' || starts(ps, "/>")) {
			*empty = *ps->p == '/';
			ps->p += *empty ? 2 : 1;
			return 0;
		}
		if (!had_space || read_name(ps, name))
			return E_STORE;
		skip_space(ps);
		if (ps->p >= ps->end || *ps->p++ != '=')
			return E_STORE;
		skip_space(ps);
		if (ps->p >= ps->end || (*ps->p != '"' && *ps->p != '\''))
			return E_STORE;
		char q = *ps->p++;
		while (ps->p < ps->end && *ps->p != q) {
			if (*ps->p == '<')
				return E_STORE;
			ps->p++;
		}
		if (ps->p >= ps->end)
			return E_STORE;
		ps->p++;
	}
}

static int add_text(struct level *l, const char *s, size_t n)
{
	if (n > S3XML_MAX_TEXT - l->text_len)
		return E_STORE;
	memcpy(l->text + l->text_len, s, n);
	l->text_len += n;
	return 0;
}

/* Decodes the reference at ps->p ('&') into l's text; 0 or E_STORE. */
static int entity(struct parser *ps, struct level *l)
{
	static const struct {
		const char *ref;
		char c;
	} named[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' } };
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
		if (starts(ps, named[i].ref)) {
			ps->p += strlen(named[i].ref);
			return add_text(l, &named[i].c, 1);
		}
	if (!starts(ps, "&#"))
		return E_STORE;
	ps->p += 2;
	int hex = ps->p < ps->end && *ps->p == 'x';
	unsigned long cp = 0;
	int digits = 0;
	ps->p += hex;
	for (; ps->p < ps->end && *ps->p != ';'; ps->p++, digits++) {
		char c = *ps->p;
		int v = c >= '0' && c <= '9' ? c - '0'
			: hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
			: hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (v < 0 || digits >= 8)
			return E_STORE;
		cp = cp * (hex ? 16 : 10) + (unsigned long)v;
	}
	if (ps->p >= ps->end || !digits || !cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return E_STORE;
	ps->p++;
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return add_text(l, u, n);
}

/* Reads character data up to the next '<' into the current level's text. */
static int text(struct parser *ps)
{
	struct level *l = &ps->lv[ps->depth - 1];
	while (ps->p < ps->end && *ps->p != '<') {
		unsigned char c = (unsigned char)*ps->p;
		int rc;
		if (c == '&') {
			rc = entity(ps, l);
		} else if (c < 0x20 && !is_space((char)c)) {
			rc = E_STORE;
		} else {
			rc = add_text(l, ps->p, 1);
			ps->p++;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int open_elem(struct parser *ps, const struct s3xml_cb *cb, void *ctx, int *empty)
{
	char name[S3XML_MAX_NAME + 1];
	int rc;
	ps->p++;
	if ((rc = read_name(ps, name)) || (rc = skip_attrs(ps, empty)))
		return rc;
	if (ps->depth == S3XML_MAX_DEPTH)
		return E_STORE;
	struct level *l = &ps->lv[ps->depth];
	size_t off = ps->depth ? ps->lv[ps->depth - 1].path_len : 0;
	if (ps->depth)
		ps->path[off++] = '/';
	l->name_off = off;
	memcpy(ps->path + off, name, strlen(name) + 1);
	l->path_len = off + strlen(name);
	l->text_len = 0;
	ps->depth++;
	return cb->open ? cb->open(ctx, ps->path) : 0;
}

static int close_elem(struct parser *ps, const struct s3xml_cb *cb, void *ctx)
{
	struct level *l = &ps->lv[ps->depth - 1];
	int rc;
	ps->path[l->path_len] = '\0';
	l->text[l->text_len] = '\0';
	rc = cb->close ? cb->close(ctx, ps->path, l->text, l->text_len) : 0;
	ps->depth--;
	if (ps->depth)
		ps->path[ps->lv[ps->depth - 1].path_len] = '\0';
	return rc;
}

/* "</name>" at ps->p must close the innermost open element. */
static int end_tag(struct parser *ps)
{
	char name[S3XML_MAX_NAME + 1];
	struct level *l = &ps->lv[ps->depth - 1];
	ps->p += 2;
	if (read_name(ps, name))
		return E_STORE;
	skip_space(ps);
	if (ps->p >= ps->end || *ps->p++ != '>')
		return E_STORE;
	ps->path[l->path_len] = '\0';
	return strcmp(name, ps->path + l->name_off) ? E_STORE : 0;
}

/* Whitespace and comments outside the root; 0 or E_STORE. */
static int misc(struct parser *ps)
{
	for (;;) {
		skip_space(ps);
		if (!starts(ps, "<!--"))
			return 0;
		if (skip_comment(ps))
			return E_STORE;
	}
}

int s3xml_parse(const char *data, size_t len, const struct s3xml_cb *cb, void *ctx)
{
	struct parser *ps = xcalloc(1, sizeof(*ps));
	int rc = 0, seen_root = 0;
	ps->p = data;
	ps->end = data + len;
	if (starts(ps, "\xEF\xBB\xBF"))
		ps->p += 3;
	skip_space(ps);
	if (starts(ps, "<?xml") && ps->end - ps->p > 5 && is_space(ps->p[5])) {
		const char *q = ps->p;
		while (q + 1 < ps->end && !(q[0] == '?' && q[1] == '>'))
			q++;
		if (q + 1 >= ps->end) {
			rc = E_STORE;
			goto out;
		}
		ps->p = q + 2;
	}
	while (!rc) {
		if (!ps->depth) {
			if ((rc = misc(ps)))
				break;
			if (ps->p == ps->end) {
				rc = seen_root ? 0 : E_STORE;
				break;
			}
			if (seen_root || *ps->p != '<') {
				rc = E_STORE;
				break;
			}
		} else if ((rc = text(ps))) {
			break;
		}
		if (ps->p >= ps->end) {
			rc = E_STORE; /* an element left open */
		} else if (starts(ps, "<!--")) {
			rc = skip_comment(ps);
		} else if (starts(ps, "</")) {
			if (!ps->depth || (rc = end_tag(ps)))
				rc = E_STORE;
			else
				rc = close_elem(ps, cb, ctx);
		} else {
			int empty = 0;
			seen_root = 1;
			rc = open_elem(ps, cb, ctx, &empty);
			if (!rc && empty)
				rc = close_elem(ps, cb, ctx);
		}
	}
out:
	free(ps);
	return rc;
}

/* ---- the documents S3 answers with ---- */

static void copy_text(char *dst, size_t cap, const char *text, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, text, len);
	dst[len] = '\0';
}

struct error_ctx {
	struct s3xml_error *e;
	int is_error;
};

static int error_close(void *ctx, const char *path, const char *text, size_t len)
{
	struct error_ctx *c = ctx;
	if (!strcmp(path, "Error"))
		c->is_error = 1;
	else if (!strcmp(path, "Error/Code"))
		copy_text(c->e->code, sizeof(c->e->code), text, len);
	else if (!strcmp(path, "Error/Message"))
		copy_text(c->e->message, sizeof(c->e->message), text, len);
	else if (!strcmp(path, "Error/RequestId"))
		copy_text(c->e->request_id, sizeof(c->e->request_id), text, len);
	return 0;
}

int s3xml_error(const char *data, size_t len, struct s3xml_error *e)
{
	struct error_ctx c = { e, 0 };
	const struct s3xml_cb cb = { NULL, error_close };
	memset(e, 0, sizeof(*e));
	if (s3xml_parse(data, len, &cb, &c) || !c.is_error || !e->code[0]) {
		memset(e, 0, sizeof(*e));
		return E_STORE;
	}
	return 0;
}

/* Collects the text of one element path (the last one seen wins). */
struct one_ctx {
	const char *want;
	char *value;
	const char *root;
	int root_seen;
};

static int one_close(void *ctx, const char *path, const char *text, size_t len)
{
	struct one_ctx *c = ctx;
	if (!strcmp(path, c->want)) {
		free(c->value);
		c->value = xstrndup(text, len);
	} else if (!strcmp(path, c->root)) {
		c->root_seen = 1;
	}
	return 0;
}

static int one_text(const char *data, size_t len, const char *root, const char *want, char **out)
{
	struct one_ctx c = { want, NULL, root, 0 };
	const struct s3xml_cb cb = { NULL, one_close };
	*out = NULL;
	if (s3xml_parse(data, len, &cb, &c) || !c.root_seen || !c.value || !c.value[0]) {
		free(c.value);
		return E_STORE;
	}
	*out = c.value;
	return 0;
}

int s3xml_upload_id(const char *data, size_t len, char **upload_id)
{
	return one_text(data, len, "InitiateMultipartUploadResult",
			"InitiateMultipartUploadResult/UploadId", upload_id);
}

static char *unquote(char *s)
{
	size_t n = strlen(s);
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		memmove(s, s + 1, n - 2);
		s[n - 2] = '\0';
	}
	return s;
}

int s3xml_complete(const char *data, size_t len, char **etag, struct s3xml_error *e)
{
	*etag = NULL;
	if (!s3xml_error(data, len, e))
		return 1;
	if (one_text(data, len, "CompleteMultipartUploadResult",
		     "CompleteMultipartUploadResult/ETag", etag))
		return E_STORE;
	unquote(*etag);
	return 0;
}

struct list_ctx {
	struct s3xml_list *l;
	int in_contents, has_key, has_size, bad, root_seen;
};

#define LIST_ROOT "ListBucketResult"
#define CONTENTS LIST_ROOT "/Contents"

static int list_open(void *ctx, const char *path)
{
	struct list_ctx *c = ctx;
	if (strcmp(path, CONTENTS))
		return 0;
	struct s3xml_list *l = c->l;
	l->objects = xgrow(l->objects, &l->alloc, l->count, sizeof(*l->objects));
	memset(&l->objects[l->count++], 0, sizeof(*l->objects));
	c->in_contents = 1;
	c->has_key = c->has_size = 0;
	return 0;
}

/* Parses a decimal size with no sign, no spaces and no overflow; 0 or -1. */
static int parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static int list_close(void *ctx, const char *path, const char *text, size_t len)
{
	struct list_ctx *c = ctx;
	struct s3xml_list *l = c->l;
	struct s3xml_object *o = c->in_contents ? &l->objects[l->count - 1] : NULL;
	if (o && !strcmp(path, CONTENTS "/Key")) {
		free(o->key);
		o->key = xstrndup(text, len);
		/* a NUL inside (from &#0; which the reader refuses) or an empty key is unusable */
		c->has_key = len > 0;
	} else if (o && !strcmp(path, CONTENTS "/Size")) {
		c->has_size = !parse_size(text, &o->size);
	} else if (o && !strcmp(path, CONTENTS "/ETag")) {
		free(o->etag);
		o->etag = unquote(xstrndup(text, len));
	} else if (o && !strcmp(path, CONTENTS)) {
		c->in_contents = 0;
		if (!c->has_key || !c->has_size)
			c->bad = 1;
	} else if (!strcmp(path, LIST_ROOT "/IsTruncated")) {
		if (!strcmp(text, "true"))
			l->truncated = 1;
		else if (!strcmp(text, "false"))
			l->truncated = 0;
		else
			c->bad = 1;
	} else if (!strcmp(path, LIST_ROOT "/NextContinuationToken")) {
		free(l->next_token);
		l->next_token = xstrndup(text, len);
	} else if (!strcmp(path, LIST_ROOT)) {
		c->root_seen = 1;
	}
	return 0;
}

int s3xml_list(const char *data, size_t len, struct s3xml_list *out)
{
	struct list_ctx c = { .l = out };
	const struct s3xml_cb cb = { list_open, list_close };
	memset(out, 0, sizeof(*out));
	if (s3xml_parse(data, len, &cb, &c) || c.bad || !c.root_seen ||
	    (out->truncated && (!out->next_token || !out->next_token[0]))) {
		s3xml_list_release(out);
		return E_STORE;
	}
	if (!out->truncated) {
		free(out->next_token);
		out->next_token = NULL;
	}
	return 0;
}

void s3xml_list_release(struct s3xml_list *l)
{
	for (size_t i = 0; i < l->count; i++) {
		free(l->objects[i].key);
		free(l->objects[i].etag);
	}
	free(l->objects);
	free(l->next_token);
	memset(l, 0, sizeof(*l));
}
